"""The production path, run as docs/deployment.md says, on this machine (no Docker engine here).

One module-scoped deployment: a fresh virtualenv from requirements.lock only; collectstatic,
migrate and import_content with production settings on a PostgreSQL database of its own; gunicorn
on loopback, a Celery worker under an unprivileged uid (as the image runs it) and beat; Caddy in
front with a certificate made here. Through the proxy a learner signs up and submits through the
API until `accepted` with isolation `namespaces+seccomp`; the HTTPS redirect, HSTS and the proxy
header's trust are checked. Then docs/scaling.md: a second worker on a simulated second host (its
own network and UTS namespaces, joined by a veth pair) reaches PostgreSQL and Redis by address and
grades part of a burst beside the first, none lost or graded twice. Everything is stopped at the end.

Runs once, in the SQLite pass of scripts/run_tests.py: it uses no Django test database, so the
PostgreSQL pass (which keeps database tests only, tests/conftest.py) leaves it out.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gradlab.redis_embedded import redis_answers, redis_server_binary
from tests.conftest import unavailable
from tests.submission_helpers import solution

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.sandbox]

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "deployment.md").read_text()
POSTGRES = "postgres://postgres@127.0.0.1:5432"
DATABASE = f"gl_smoke_{os.getpid()}"
WORKER_UID = 10001  # the image's `gradlab` user
CADDY = shutil.which("caddy") or "/usr/bin/caddy"
BURST = 12
WAIT_S = 180

# The commands of docs/deployment.md ("Without Docker"), as run here; each must stay in the doc.
DOC_COMMANDS = [
    "python3 -m venv /opt/gradlab/venv",
    "/opt/gradlab/venv/bin/pip install -r requirements.lock",
    "/opt/gradlab/venv/bin/python manage.py collectstatic --noinput",
    "/opt/gradlab/venv/bin/python manage.py migrate --noinput",
    "/opt/gradlab/venv/bin/python manage.py import_content",
    "/opt/gradlab/venv/bin/gunicorn gradlab.wsgi:application --bind 127.0.0.1:8000 --workers 2 "
    "--forwarded-allow-ips 127.0.0.1 --access-logfile -",
    "setpriv --reuid=10001 --regid=10001 --clear-groups /opt/gradlab/venv/bin/celery -A gradlab worker "
    "-Q grading --concurrency 1 --loglevel INFO",
    "/opt/gradlab/venv/bin/celery -A gradlab beat --loglevel INFO -s /var/lib/gradlab/celerybeat-schedule",
    "caddy run --config deploy/Caddyfile --adapter caddyfile",
]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], what: str, timeout_s: float = WAIT_S, *, logs: Any = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}" + (f"\n{logs()}" if logs else ""))
        time.sleep(0.25)


def _doc_command(template: str, **paths: str) -> list[str]:
    """The doc's command with this run's paths and ports, split into arguments."""
    assert template in DOC, f"docs/deployment.md no longer says: {template}"
    text = template
    for old, new in paths.items():
        text = text.replace(old, new)
    return text.split()


def _psql(sql: str, database: str = "postgres") -> str:
    result = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-Atc", sql],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


class _Relay(socketserver.ThreadingTCPServer):
    """A TCP relay on the simulated network to PostgreSQL, which listens on loopback only here."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        super().__init__(listen, _RelayHandler)


class _RelayHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Any = self.server
        upstream = socket.create_connection(server.target)

        def pump(source: socket.socket, sink: socket.socket) -> None:
            try:
                while chunk := source.recv(65536):
                    sink.sendall(chunk)
            except OSError:
                pass
            finally:
                for sock in (source, sink):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        thread = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
        thread.start()
        pump(self.request, upstream)
        thread.join(timeout=5)
        upstream.close()


@dataclass
class Deployment:
    work: Path
    env: dict[str, str]
    venv: Path
    https_port: int
    http_port: int
    web_port: int
    redis_port: int
    cert: Path
    network: SimulatedHost | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    cleanups: list[Callable[[], object]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"https://localhost:{self.https_port}"

    def start(self, name: str, command: list[str], *, env: dict[str, str] | None = None) -> None:
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            command, cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)}" for name in self.processes)

    def manage(self, *arguments: str) -> None:
        result = subprocess.run(
            [str(self.venv / "bin" / "python"), "manage.py", *arguments],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"manage.py {' '.join(arguments)}:\n{result.stdout}\n{result.stderr}"

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for cleanup in reversed(self.cleanups):
            cleanup()


def _requirements() -> None:
    missing = [tool for tool in ("psql", "setpriv", "openssl", "bwrap") if shutil.which(tool) is None]
    if not os.access(CADDY, os.X_OK):
        missing.append("caddy")
    if missing:
        unavailable(
            f"{', '.join(missing)} missing: scripts/install-system-deps.sh test installs them",
            required_by="GRADLAB_REQUIRE_SANDBOX",
        )
    try:
        _psql("SELECT 1")
    except (AssertionError, OSError) as error:
        unavailable(
            f"PostgreSQL on 127.0.0.1:5432 (trust) is not answering: {error}", required_by="GRADLAB_REQUIRE_SANDBOX"
        )
    if os.getuid() != 0:
        unavailable(
            "the worker is started under uid 10001 as the image does: run as root",
            required_by="GRADLAB_REQUIRE_SANDBOX",
        )


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    _requirements()
    work = Path(tempfile.mkdtemp(prefix="gradlab-smoke-"))
    work.chmod(0o755)  # the unprivileged worker reads the virtualenv in here
    venv = work / "venv"
    var = work / "var"
    var.mkdir()
    os.chown(var, WORKER_UID, WORKER_UID)
    paths = {"/opt/gradlab/venv": str(venv), "/var/lib/gradlab": str(var)}

    # 1. The virtualenv: the runtime lock only (the base interpreter must be readable by uid 10001).
    pip_env = {key: value for key, value in os.environ.items() if not key.startswith(("VIRTUAL_ENV", "PYTHON"))}
    for template, extra in ((DOC_COMMANDS[0], []), (DOC_COMMANDS[1], ["--no-compile", "--quiet"])):
        command = _doc_command(template, **paths)
        if command[0] == "python3":
            command[0] = "/usr/bin/python3"
        result = subprocess.run(command + extra, cwd=ROOT, env=pip_env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True
    )
    names = {package["name"].lower().replace("_", "-") for package in json.loads(installed.stdout)}
    assert {"django", "gunicorn", "celery", "torch", "django-axes", "prometheus-client"} <= names
    assert not names & {"pytest", "mypy", "ruff", "playwright", "schemathesis", "hypothesis", "django-stubs"}

    # 2. A certificate for the proxy, PostgreSQL's database, Redis.
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    _psql(f"DROP DATABASE IF EXISTS {DATABASE}")
    _psql(f"CREATE DATABASE {DATABASE}")
    redis_port = free_port()
    deployment = Deployment(
        work=work,
        env={},
        venv=venv,
        https_port=free_port(),
        http_port=free_port(),
        web_port=free_port(),
        redis_port=redis_port,
        cert=cert,
    )
    deployment.cleanups.append(lambda: _psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
    deployment.cleanups.append(lambda: shutil.rmtree(work, ignore_errors=True))
    try:
        # Redis also listens on the second host's network when there is one (see the scaling test).
        network = SimulatedHost.create(work) if os.getuid() == 0 and shutil.which("ip") else None
        if network is not None:
            deployment.cleanups.append(network.destroy)
        binds = ["127.0.0.1", *([network.host_address] if network else [])]
        redis_process = subprocess.Popen(
            [redis_server_binary(), "--bind", *binds, "--port", str(redis_port), "--save", "", "--appendonly", "no",
             "--dir", str(work), "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deployment.cleanups.append(lambda: _stop_process(redis_process))
        wait_until(lambda: redis_answers(f"redis://127.0.0.1:{redis_port}/0", 0.2), "redis-server")
        deployment.network = network

        home = work / "home"
        home.mkdir(mode=0o777)
        home.chmod(0o777)
        deployment.env = {
            "PATH": f"{venv / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "GRADLAB_ENV": "production",
            "SECRET_KEY": "smoke-" + uuid.uuid4().hex + uuid.uuid4().hex,
            "ALLOWED_HOSTS": "localhost",
            "DATABASE_URL": f"{POSTGRES}/{DATABASE}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "STATIC_ROOT": str(work / "static"),
            "GRADLAB_VAR_DIR": str(var),
            "TRUSTED_PROXIES": "127.0.0.1/32",
            "GRADER_SUBMISSIONS_PER_MINUTE": "100",
            "GRADER_SWEEP_INTERVAL_S": "5",
            "XDG_DATA_HOME": str(work / "caddy-data"),
            "XDG_CONFIG_HOME": str(work / "caddy-config"),
        }
        # 3. Static files, schema, content.
        for template in DOC_COMMANDS[2:5]:
            deployment.manage(*_doc_command(template, **paths)[2:])
        assert (work / "static" / "staticfiles.json").is_file()

        # 4. gunicorn, the worker as uid 10001, beat, the proxy.
        web = _doc_command(DOC_COMMANDS[5], **paths, **{"127.0.0.1:8000": f"127.0.0.1:{deployment.web_port}"})
        deployment.start("web", web)
        deployment.start("worker", [*_doc_command(DOC_COMMANDS[6], **paths), "-n", "grader1@%h"])
        deployment.start("beat", _doc_command(DOC_COMMANDS[7], **paths))
        proxy_env = dict(
            deployment.env,
            GRADLAB_DOMAIN="localhost",
            GRADLAB_UPSTREAM=f"127.0.0.1:{deployment.web_port}",
            GRADLAB_TLS=f"{cert} {key}",
            GRADLAB_HTTP_PORT=str(deployment.http_port),
            GRADLAB_HTTPS_PORT=str(deployment.https_port),
        )
        deployment.start("proxy", [CADDY, *_doc_command(DOC_COMMANDS[8])[1:]], env=proxy_env)
        wait_until(lambda: _healthy(deployment), "gunicorn and the proxy to answer", logs=deployment.logs)
        yield deployment
    finally:
        deployment.stop()


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


def _healthy(deployment: Deployment) -> bool:
    try:
        return _get(deployment, "/healthz")[0] == 200
    except OSError:
        return False


def _tls_context(deployment: Deployment) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(deployment.cert))


def _get(deployment: Deployment, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPSConnection(
        "localhost", deployment.https_port, context=_tls_context(deployment), timeout=30
    )
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


class Browser:
    """Cookies and CSRF over the proxy, like a browser (http.client: no test-only dependency)."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
        connection = http.client.HTTPSConnection(
            "localhost", self.deployment.https_port, context=_tls_context(self.deployment), timeout=60
        )
        sent = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), **(headers or {})}
        sent["Referer"] = self.deployment.base + path
        if "csrftoken" in self.cookies:
            sent["X-CSRFToken"] = self.cookies["csrftoken"]
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                cookie = value.split(";", 1)[0]
                key, _, cookie_value = cookie.partition("=")
                self.cookies[key.strip()] = cookie_value
                assert ("Secure" in value and "HttpOnly" in value) or key.strip() == "csrftoken", value
        response.body = response.read()  # type: ignore[attr-defined]
        return response

    def sign_up(self, username: str) -> None:
        self.request("GET", "/accounts/signup/")
        password = "a-long-and-private-passphrase-" + username
        form = (
            f"csrfmiddlewaretoken={self.cookies['csrftoken']}&username={username}"
            f"&password1={password}&password2={password}"
        )
        response = self.request(
            "POST", "/accounts/signup/", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert response.status == 302, response.body[-2000:]
        assert "sessionid" in self.cookies

    def submit(self, code: str) -> int:
        body = json.dumps({"exercise": "linear-backward", "code": code}).encode()
        response = self.request("POST", "/api/submissions", body, {"Content-Type": "application/json"})
        assert response.status == 201, response.body
        return int(json.loads(response.body)["id"])

    def submission(self, submission_id: int) -> dict[str, Any]:
        response = self.request("GET", f"/api/submissions/{submission_id}")
        assert response.status == 200, response.body
        return dict(json.loads(response.body))


def test_a_learner_signs_up_and_is_graded_through_the_proxy_as_the_deployment_doc_says(
    deployment: Deployment,
) -> None:
    # HTTPS only: the proxy's HTTP port redirects, and gunicorn itself redirects plain HTTP.
    plain = http.client.HTTPConnection("127.0.0.1", deployment.http_port, timeout=30)
    plain.request("GET", "/exercises/", headers={"Host": "localhost"})
    response = plain.getresponse()
    assert response.status in {301, 308} and response.getheader("Location", "").startswith("https://localhost")
    direct = http.client.HTTPConnection("127.0.0.1", deployment.web_port, timeout=30)
    direct.request("GET", "/exercises/", headers={"Host": "localhost"})
    response = direct.getresponse()
    assert response.status == 301 and response.getheader("Location") == "https://localhost/exercises/"
    # A client other than the proxy that reaches gunicorn cannot claim HTTPS with the header.
    forged = http.client.HTTPConnection("127.0.0.1", deployment.web_port, timeout=30, source_address=("127.0.0.2", 0))
    forged.request("GET", "/exercises/", headers={"Host": "localhost", "X-Forwarded-Proto": "https"})
    assert forged.getresponse().status == 301

    status, headers, page = _get(deployment, "/exercises/")
    assert status == 200 and b"linear-backward" in page, deployment.log("web")
    assert headers["strict-transport-security"].startswith("max-age=31536000")
    assert "script-src 'self'" in headers["content-security-policy"]
    # Static files come from the collected, hashed copies.
    status, _, _ = _get(deployment, "/static/" + _manifest(deployment)["vendor/chart.js/chart.umd.js"])
    assert status == 200

    learner = Browser(deployment)
    learner.sign_up("smoke-ada")
    submission_id = learner.submit(solution())
    result = wait_until(
        lambda: (row := learner.submission(submission_id))["status"] in {"graded", "failed"} and row,
        "the verdict",
        logs=deployment.logs,
    )
    assert result["verdict"] == "accepted", json.dumps(result)[:2000]
    assert result["isolation"] == "namespaces+seccomp"
    # The worker that graded runs as the image's unprivileged user.
    worker_pid = deployment.processes["worker"].pid
    assert os.stat(f"/proc/{worker_pid}").st_uid == WORKER_UID
    # /metrics: served to the internal network (gunicorn directly), not through the proxy.
    scrape = http.client.HTTPConnection("127.0.0.1", deployment.web_port, timeout=30)
    scrape.request("GET", "/metrics", headers={"Host": "web:8000"})
    metrics = scrape.getresponse().read().decode()
    assert 'gradlab_submissions_total{status="graded",verdict="accepted"} 1.0' in metrics, metrics[:3000]
    assert 'isolation="namespaces+seccomp"' in metrics and "gradlab_worker_up{" in metrics
    assert 'gradlab_grading_phase_seconds_bucket{le="+Inf",phase="total"} 1.0' in metrics
    assert _get(deployment, "/metrics")[0] == 404
    # JSON logs in production.
    assert any(line.startswith("{") and '"level"' in line for line in deployment.log("beat").splitlines())


def _manifest(deployment: Deployment) -> dict[str, str]:
    return dict(json.loads((deployment.work / "static" / "staticfiles.json").read_text())["paths"])


@dataclass
class SimulatedHost:
    """A second machine: its own network namespace, joined to this one by a veth pair (a /30 of 10.200.x)."""

    name: str
    host_address: str
    peer_address: str
    relay: _Relay | None = None

    @classmethod
    def create(cls, work: Path) -> SimulatedHost:
        tag = os.getpid() % 200 + 20
        name = f"glsmoke{os.getpid()}"
        host, peer = f"10.200.{tag}.1", f"10.200.{tag}.2"
        commands = [
            ["ip", "netns", "add", name],
            ["ip", "link", "add", f"{name}h", "type", "veth", "peer", "name", f"{name}p"],
            ["ip", "link", "set", f"{name}p", "netns", name],
            ["ip", "addr", "add", f"{host}/30", "dev", f"{name}h"],
            ["ip", "link", "set", f"{name}h", "up"],
            ["ip", "-n", name, "addr", "add", f"{peer}/30", "dev", f"{name}p"],
            ["ip", "-n", name, "link", "set", f"{name}p", "up"],
            ["ip", "-n", name, "link", "set", "lo", "up"],
        ]
        simulated = cls(name, host, peer)
        for command in commands:
            result = subprocess.run(command, capture_output=True, text=True, timeout=30)
            if result.returncode != 0:
                simulated.destroy()
                unavailable(
                    f"`{' '.join(command)}` failed: {result.stderr.strip()}", required_by="GRADLAB_REQUIRE_SANDBOX"
                )
        simulated.relay = _Relay((host, 5432), ("127.0.0.1", 5432))
        threading.Thread(target=simulated.relay.serve_forever, daemon=True).start()
        return simulated

    def destroy(self) -> None:
        if self.relay is not None:
            self.relay.shutdown()
            self.relay.server_close()
        subprocess.run(["ip", "link", "del", f"{self.name}h"], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)


def test_a_worker_on_a_second_host_grades_part_of_a_burst_none_lost_or_twice(deployment: Deployment) -> None:
    network = deployment.network
    if network is None:
        unavailable("a second host needs `ip netns` as root", required_by="GRADLAB_REQUIRE_SANDBOX")
    # docs/scaling.md, "Adding a worker machine": the same code and lock, the shared database and
    # Redis by address, the worker command; here in its own network and UTS namespaces.
    env = dict(
        deployment.env,
        DATABASE_URL=f"postgres://postgres@{network.host_address}:5432/{DATABASE}",
        REDIS_URL=f"redis://{network.host_address}:{deployment.redis_port}/0",
    )
    scaling = (ROOT / "docs" / "scaling.md").read_text()
    worker_command = "celery -A gradlab worker -Q grading --pool prefork --concurrency"
    assert worker_command in scaling
    inner = (
        "hostname gradlab-host2 && exec setpriv --reuid=10001 --regid=10001 --clear-groups "
        f"{deployment.venv}/bin/{worker_command} 1 -n grader@%h --loglevel INFO"
    )
    deployment.start("worker2", ["ip", "netns", "exec", network.name, "unshare", "--uts", "sh", "-c", inner], env=env)
    # Ready once its pool process has started its sandbox (warm engine), not only connected.
    wait_until(
        lambda: (
            ("ready." in deployment.log("worker2") and "grader sandbox started" in deployment.log("worker2"))
            or deployment.processes["worker2"].poll() is not None
        ),
        "the second host's worker",
        logs=deployment.logs,
    )
    assert deployment.processes["worker2"].poll() is None, deployment.log("worker2")

    learner = Browser(deployment)
    learner.sign_up("smoke-burst")
    # The first worker, warm, grades faster than one client submits: hold it (SIGSTOP) until the
    # second host has graded one, so that the burst is shared whatever the machine's speed.
    first = deployment.processes["worker"].pid
    os.killpg(first, signal.SIGSTOP)
    try:
        ids = [learner.submit(solution()) for _ in range(BURST)]
        id_list = ",".join(map(str, ids))
        wait_until(
            lambda: (
                _psql(
                    f"SELECT count(*) FROM grader_submission WHERE id IN ({id_list}) AND worker LIKE 'gradlab-host2:%' "
                    "AND status = 'graded'",
                    DATABASE,
                )
                != "0"
            ),
            "the second host's first verdict",
            logs=deployment.logs,
        )
    finally:
        os.killpg(first, signal.SIGCONT)

    def finished() -> bool:
        count = _psql(f"SELECT count(*) FROM grader_submission WHERE id IN ({id_list}) AND status = 'graded'", DATABASE)
        return int(count) == BURST

    wait_until(finished, f"{BURST} verdicts", logs=deployment.logs)
    rows = _psql(
        f"SELECT split_part(worker, ':', 1), verdict, graded_count, isolation FROM grader_submission "
        f"WHERE id IN ({id_list})",
        DATABASE,
    ).splitlines()
    hosts = [row.split("|")[0] for row in rows]
    assert len(rows) == BURST
    assert {row.split("|", 1)[1] for row in rows} == {"accepted|1|namespaces+seccomp"}
    assert "gradlab-host2" in hosts and socket.gethostname() in hosts, f"{hosts}\n{deployment.log('worker2')}"
