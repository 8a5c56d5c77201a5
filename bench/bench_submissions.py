"""HTTP submit -> verdict stored, through Redis and Celery, against a naive fresh-process grader.

Usage: ``.venv/bin/python bench/bench_submissions.py [--latency 200] [--burst 500] [--naive 20] [--no-write]``

Starts everything it measures, on its own: a database (a fresh PostgreSQL database if one
answers on 127.0.0.1:5432, else a SQLite file), an embedded redis-server on a free port,
`celery worker -c 2` (prefork, the grading queue) and gunicorn (2 processes) serving the site.

(a) latency: ``--latency`` submissions of linear-backward's reference solution, one at a
    time, through `POST /api/submissions` with a bearer token; for each, the time from just
    before the POST to the row's `finished_at` (the verdict stored). p50/p95, with the
    phases from the row's timestamps (budget p50 <= 300 ms, docs/performance.md);
(b) burst: ``--burst`` submissions posted at once by 8 client threads; the drain time is from
    the first POST to the last `finished_at`; every row must end graded, each claimed and
    graded exactly once;
(c) naive path, same machine, same run: each submission graded by a fresh
    `python manage.py grade linear-backward <file> --json` (a new interpreter that imports
    Django, NumPy and PyTorch and starts a sandbox), its verdict stored on the row. ``--naive``
    submissions one at a time (latency), and two at a time for the throughput, from which the
    drain time of the same burst is computed.
Replaces the "## Submissions" section of docs/benchmarks.md with the figures, the date and the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine, percentile, section_replace  # noqa: E402

SECTION = "## Submissions"
EXERCISE = "linear-backward"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def web_ready(http: Any, base: str, timeout_s: float = 60) -> None:
    """Wait until the web server answers GET /api/exercises with 200 (raise after timeout_s)."""
    import requests

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if http.get(f"{base}/api/exercises", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the web server did not answer")
        time.sleep(0.2)


def submit(http: Any, base: str, code: str, timeout_s: float = 30) -> tuple[int, float]:
    """POST one submission of EXERCISE; return its id and the wall-clock time it was sent."""
    sent = time.time()
    response = http.post(f"{base}/api/submissions", json={"exercise": EXERCISE, "code": code}, timeout=timeout_s)
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/submissions -> {response.status_code}: {response.text[:300]}")
    return int(response.json()["id"]), sent


def wait_finished(ids: list[int], timeout_s: float, poll_s: float = 0.002) -> None:
    """Wait until every submission in ids is graded or failed (raise after timeout_s)."""
    from grader.models import Submission, SubmissionStatus

    deadline = time.monotonic() + timeout_s
    pending = set(ids)
    while pending:
        done = Submission.objects.filter(
            pk__in=pending, status__in=[SubmissionStatus.GRADED, SubmissionStatus.FAILED]
        ).values_list("pk", flat=True)
        pending -= set(done)
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} submissions not graded after {timeout_s} s")
        if pending:
            time.sleep(poll_s)


def choose_database(workdir: Path) -> tuple[str, str, Any]:
    """(DATABASE_URL, label, cleanup) for a fresh database of this run."""
    name = f"gradlab_bench_{os.getpid()}"
    try:
        import psycopg

        with psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=2
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        return f"postgresql://postgres@127.0.0.1:5432/{name}", "PostgreSQL", drop
    except Exception:
        path = workdir / "bench.sqlite3"
        return f"sqlite:////{str(path).lstrip('/')}", "SQLite (file)", lambda: None


class Services:
    """redis-server, the Celery worker and gunicorn, as process groups of this run."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 (kept open for the process)
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
        self.processes.append(process)
        return process

    def wait_for(self, name: str, text: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in (self.workdir / f"{name}.log").read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not print {text!r}; see {self.workdir / f'{name}.log'}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    process.terminate()  # not a group leader (redis-server)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=int, default=200)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--naive", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="gradlab-bench-"))
    database_url, database_label, drop_database = choose_database(workdir)
    redis_port, web_port = free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    os.environ.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        GRADLAB_ENV="development",
        DEBUG="0",
        GRADLAB_VAR_DIR=str(workdir / "var"),
        GRADER_SUBMISSIONS_PER_MINUTE="1000000",
        DJANGO_SETTINGS_MODULE="gradlab.settings",
        LOG_LEVEL="WARNING",
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    services = Services(env, workdir)
    try:
        figures = run(options, services, redis_port, web_port, workdir)
    finally:
        services.stop()
        from django.db import connections

        connections.close_all()
        drop_database()
        shutil.rmtree(workdir, ignore_errors=True)
    figures["database"] = database_label
    report = render(figures)
    print(report)
    if not options.no_write:
        section_replace(SECTION, report)


def start_stack(services: Services, redis_port: int, web_port: int, workdir: Path) -> None:
    """Start Redis, a Celery worker (2 prefork processes on the grading queue) and gunicorn; wait until ready."""
    from gradlab.redis_embedded import start_redis_server

    redis = start_redis_server("127.0.0.1", redis_port, workdir / "redis")
    services.processes.append(redis)
    python = sys.executable
    services.spawn("worker", [python, "-m", "celery", "-A", "gradlab", "worker", "-Q", "grading", "-c", "2",
                              "--pool", "prefork", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                              "--without-heartbeat"])  # fmt: skip
    services.spawn("web", [python, "-m", "gunicorn", "gradlab.wsgi", "-w", "2", "-b", f"127.0.0.1:{web_port}"])
    services.wait_for("worker", " ready.")
    services.wait_for("web", "Booting worker")


def run(options: argparse.Namespace, services: Services, redis_port: int, web_port: int, workdir: Path) -> dict:
    import django

    django.setup()
    from django.core.management import call_command

    from grader.auth import api_token_create
    from grader.models import Submission, SubmissionStatus

    call_command("migrate", verbosity=0)
    call_command("import_content", verbosity=0, stdout=io.StringIO())
    from django.contrib.auth.models import User

    user = User.objects.create_user("bench", password="bench-password-2026")
    _, token = api_token_create(user)
    code = (ROOT / "content" / "exercises" / EXERCISE / "solution.py").read_text()

    start_stack(services, redis_port, web_port, workdir)

    import requests

    base = f"http://127.0.0.1:{web_port}"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    web_ready(session, base)

    def post(http: requests.Session) -> tuple[int, float]:
        return submit(http, base, code)

    # Warm up: each worker process pays its engine start before the measurement.
    warm = [post(session)[0] for _ in range(4)]
    wait_finished(warm, 120)

    # (a) latency, one at a time.
    sent_at: dict[int, float] = {}
    for _ in range(options.latency):
        submission_id, sent = post(session)
        sent_at[submission_id] = sent
        wait_finished([submission_id], 60)
    rows: list[dict[str, Any]] = [dict(row) for row in Submission.objects.filter(pk__in=sent_at).values()]
    latency_ms = [(row["finished_at"].timestamp() - sent_at[row["id"]]) * 1000 for row in rows]

    def phase(start: str, end: str) -> float:
        return statistics.median((row[end] - row[start]).total_seconds() * 1000 for row in rows)

    phases = {
        "POST -> row created": statistics.median(
            (row["created_at"].timestamp() - sent_at[row["id"]]) * 1000 for row in rows
        ),
        "created -> enqueued (commit, publish)": phase("created_at", "enqueued_at"),
        "enqueued -> started (Redis, worker claim)": phase("enqueued_at", "started_at"),
        "started -> finished (grading, stage writes, verdict)": phase("started_at", "finished_at"),
    }
    verdicts = {row["verdict"] for row in rows}

    # (b) burst.
    burst_ids: list[int] = []
    first_post = time.time()
    with ThreadPoolExecutor(max_workers=8) as pool:
        sessions = [requests.Session() for _ in range(8)]
        for http in sessions:
            http.headers["Authorization"] = f"Bearer {token}"
        futures = [pool.submit(post, sessions[index % 8]) for index in range(options.burst)]
        burst_ids = [future.result()[0] for future in futures]
    posted_s = time.time() - first_post
    wait_finished(burst_ids, 900)
    burst = Submission.objects.filter(pk__in=burst_ids)
    last_finished = max(row.finished_at.timestamp() for row in burst if row.finished_at is not None)
    drain_s = last_finished - first_post
    graded_once = burst.filter(status=SubmissionStatus.GRADED, claim_count=1, graded_count=1).count()

    # (c) naive: a fresh interpreter per submission.
    source = workdir / "solution.py"
    source.write_text(code)

    def naive_once() -> float:
        started = time.time()
        submission = Submission.objects.create(user=user, exercise_id=rows[0]["exercise_id"], code=code)
        result = subprocess.run(
            [sys.executable, "manage.py", "grade", EXERCISE, str(source), "--json"],
            cwd=ROOT, env=services.env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        data = json.loads(result.stdout)
        Submission.objects.filter(pk=submission.pk).update(
            status=SubmissionStatus.GRADED, verdict=data["verdict"], score=data["score"], result=data
        )
        return (time.time() - started) * 1000

    naive_ms = [naive_once() for _ in range(options.naive)]
    pair_started = time.time()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda _: naive_once(), range(options.naive)))
    naive_throughput = options.naive / (time.time() - pair_started)

    return {
        "latency_n": len(latency_ms),
        "latency_p50": statistics.median(latency_ms),
        "latency_p95": percentile(latency_ms, 0.95),
        "phases": phases,
        "verdicts": sorted(verdicts),
        "burst_n": options.burst,
        "burst_posted_s": posted_s,
        "burst_drain_s": drain_s,
        "burst_graded_once": graded_once,
        "naive_n": len(naive_ms),
        "naive_p50": statistics.median(naive_ms),
        "naive_p95": percentile(naive_ms, 0.95),
        "naive_drain_s": options.burst / naive_throughput,
        "load": os.getloadavg(),
    }


def render(figures: dict) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    p50, naive_p50 = figures["latency_p50"], figures["naive_p50"]
    meets = "meets" if p50 <= 300 else "misses"
    lines = [
        SECTION,
        "",
        "Measured by `.venv/bin/python bench/bench_submissions.py`: gunicorn (2 processes) serving the API, "
        f"an embedded redis-server, `celery worker -c 2 --pool prefork`, {figures['database']}, all on this machine.",
        "",
        f"### {now} — {machine()}",
        "",
        "Load average at the end of the run (1, 5, 15 min): "
        + ", ".join(f"{value:.1f}" for value in figures["load"])
        + "; the client, web server, worker and database share these cores.",
        "",
        "| what | p50 | p95 | n |",
        "|---|---|---|---|",
        f"| HTTP submit -> verdict stored, linear-backward reference, one at a time | {p50:.0f} ms | "
        f"{figures['latency_p95']:.0f} ms | {figures['latency_n']} |",
    ]
    for name, value in figures["phases"].items():
        lines.append(f"| - {name} | {value:.1f} ms | | |")
    lines += [
        f"| naive: fresh `python manage.py grade ... --json` per submission, verdict stored | {naive_p50:.0f} ms | "
        f"{figures['naive_p95']:.0f} ms | {figures['naive_n']} |",
        "",
        f"Target p50 <= 300 ms: **{meets}** ({p50:.0f} ms). Verdicts: {', '.join(figures['verdicts'])}. "
        f"Naive / Celery p50: **{naive_p50 / p50:.0f}x**.",
        "",
        f"Burst of {figures['burst_n']} submissions (8 client threads): "
        f"all posted in {figures['burst_posted_s']:.1f} s, "
        f"drained (last verdict stored) {figures['burst_drain_s']:.1f} s after the first POST; "
        f"{figures['burst_graded_once']} of {figures['burst_n']} graded, each claimed once and graded once "
        f"(none lost, none twice). The naive path, two graders at a time, would drain the same burst in "
        f"{figures['naive_drain_s']:.0f} s (from its measured throughput over {figures['naive_n']} submissions): "
        f"**{figures['naive_drain_s'] / figures['burst_drain_s']:.0f}x** longer.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
