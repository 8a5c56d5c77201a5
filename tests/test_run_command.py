"""The README's run command end to end: `manage.py rundev` (what `make run` ends with)."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from gradlab.redis_embedded import redis_answers

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(
    process: subprocess.Popen[str], lines: queue.Queue[str], needle: str, seen: list[str], timeout_s: float
) -> bool:
    """Return True once a line containing `needle` was printed; False on timeout or exit."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                return False
            continue
        seen.append(line)
        if needle in line:
            return True
    return False


def _api(port: int, token: str, path: str, payload: dict[str, str] | None = None) -> dict[str, object]:
    """GET (or POST `payload` as JSON to) the API with a Bearer token; the decoded JSON answer."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if payload is None else json.dumps(payload).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


@pytest.mark.slow
@pytest.mark.integration
def test_rundev_serves_the_lessons_grades_a_submission_through_its_own_redis_and_worker_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    web_port, redis_port = _free_port(), _free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "GRADLAB_"))}
    environment.pop("DATABASE_URL", None)
    environment.update(GRADLAB_VAR_DIR=str(tmp_path), REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "rundev", "--addrport", f"127.0.0.1:{web_port}", "--workers", "1"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    seen: list[str] = []
    try:
        assert _wait_for(process, lines, "Gradlab is running", seen, 120), "".join(seen)
        assert _wait_for(process, lines, "instructor-demo-2026", seen, 5), "the instructor's login is printed"
        assert any("learner-demo-2026" in line for line in seen), "the learner's login is printed"
        assert any("started an embedded server" in line for line in seen)
        # `make run` says which isolation the grader reached (the full sandbox wherever bubblewrap is).
        levels = [line for line in seen if line.startswith("grader sandbox: isolation ")]
        assert levels, "".join(seen)
        if os.access("/usr/bin/bwrap", os.X_OK):
            assert levels[0].startswith("grader sandbox: isolation namespaces+seccomp "), levels
        assert redis_answers(redis_url)
        assert _wait_for(process, lines, "ready.", seen, 120), "the Celery worker came up: " + "".join(seen[-20:])
        deadline = time.monotonic() + 30
        body = b""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/healthz", timeout=2) as response:
                    body = response.read()
                    break
            except OSError:
                time.sleep(0.3)
        assert body == b"ok\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=10) as response:
            home = response.read().decode()
        assert home.count('class="card lesson-card"') == 5, "the five lessons were imported"
        # The demo learner's first accepted submission goes through this Redis and this worker.
        token = subprocess.run(
            [sys.executable, "manage.py", "api_token", "learner"],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        solution = (ROOT / "content" / "exercises" / "linear-backward" / "solution.py").read_text()
        submitted = _api(web_port, token, "/api/submissions", {"exercise": "linear-backward", "code": solution})
        deadline = time.monotonic() + 120
        status: dict[str, object] = {}
        while time.monotonic() < deadline:
            status = _api(web_port, token, f"/api/submissions/{submitted['id']}")
            if status["status"] in {"graded", "failed"}:
                break
            time.sleep(0.3)
        assert status.get("verdict") == "accepted", status
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert not redis_answers(redis_url), "the embedded Redis stops with the run command"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
