"""A submission whose sandbox is lost under it gets one retry, never a second one, and never the blame;
every restart of a zygote, inside the sandbox or by the engine, is counted for /metrics.

The zygote is killed (or stopped) by the test while a real grading runs in a real sandbox, at the
moment the engine reports a stage: once, and the grading is retried and accepted; at every attempt,
and the second loss ends the submission as an internal failure with no third attempt. The retry is
one allowance per submission, shared by the sandbox's own spawn retry and the engine's regrading.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from grader.sandbox import Sandbox, SandboxLost
from grader.sandbox.limits import BWRAP
from grader.spec import ExerciseSpec
from grader.verdicts import Stage, Verdict

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(not os.access(BWRAP, os.X_OK), reason=f"{BWRAP} is not installed"),
]

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "content" / "exercises" / "linear-backward"


def zygote_pid(box: Sandbox) -> int:
    """The host pid of the zygote (bwrap's child), found by its parent pid in the host's /proc.

    (/proc/<pid>/task/<pid>/children is not used: the kernel documents it as unreliable unless
    the children are stopped, and a kill aimed at a pid it missed did not land.)
    """
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == box.pid:
            return int(entry.name)
    return box.pid


def kill_and_wait(pid: int, how: signal.Signals, timeout_s: float = 10.0) -> None:
    """Send `how` to `pid` and wait until it has stopped running (gone or a zombie)."""
    os.kill(pid, how)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in {"Z", "X"} or (how == signal.SIGSTOP and state == "T"):
            return
        time.sleep(0.001)
    raise AssertionError(f"pid {pid} still runs {timeout_s} s after {how.name}")


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    """An engine of this module's own, so the zygotes killed here are nobody else's."""
    from grader.engine import Engine

    own = Engine(min_isolation=None)
    yield own
    own.close()


@pytest.fixture(scope="module")
def spec() -> ExerciseSpec:
    return ExerciseSpec.from_folder(FOLDER)


@pytest.fixture(scope="module")
def solution() -> str:
    return (FOLDER / "solution.py").read_text()


class Killer:
    """An on_stage callback that kills the zygote when the grading reaches ``at``, ``times`` times."""

    def __init__(self, engine: Any, at: Stage, times: int, how: signal.Signals = signal.SIGKILL) -> None:
        self.engine, self.at, self.times, self.how = engine, at, times, how
        self.stages: list[Stage] = []

    def __call__(self, stage: Stage) -> None:
        self.stages.append(stage)
        if stage == self.at and self.times > 0:
            self.times -= 1
            kill_and_wait(zygote_pid(self.engine._sandbox), self.how)

    def attempts(self) -> int:
        """Gradings started (each one reports SANDBOX before its child is spawned)."""
        return self.stages.count(Stage.SANDBOX)


def test_a_zygote_killed_under_a_grading_costs_it_one_retry_and_it_is_accepted(
    engine: Any, spec: ExerciseSpec, solution: str
) -> None:
    losses = engine.sandbox_losses
    killer = Killer(engine, Stage.CHECKS, times=1)
    result = engine.grade(spec, solution, on_stage=killer)
    assert result.verdict == Verdict.ACCEPTED, result.feedback
    assert killer.attempts() == 2 and killer.stages.count(Stage.CHECKS) == 2
    assert engine.sandbox_losses == losses + 1
    after = engine.grade(spec, solution)  # the next submission meets a healthy sandbox
    assert after.verdict == Verdict.ACCEPTED


@pytest.mark.parametrize("at", [Stage.CHECKS, Stage.TRAINING], ids=["checks", "training"])
def test_a_second_loss_ends_the_submission_without_a_third_attempt(
    engine: Any, spec: ExerciseSpec, solution: str, at: Stage
) -> None:
    killer = Killer(engine, at, times=5)
    with pytest.raises(SandboxLost) as caught:
        engine.grade(spec, solution, on_stage=killer)
    assert caught.value.retry is False and "no retry left" in str(caught.value)
    assert killer.attempts() == 2 and killer.times == 3  # killed twice, never a third attempt
    after = engine.grade(spec, solution)
    assert after.verdict == Verdict.ACCEPTED


def test_a_spawn_retried_by_the_sandbox_is_the_submissions_one_retry(spec: ExerciseSpec, solution: str) -> None:
    from grader.engine import Engine

    box = Sandbox.start(control_timeout_s=1)
    own = Engine(box)
    try:
        restarts = box.restarts
        stops = Killer(own, Stage.SANDBOX, times=1, how=signal.SIGSTOP)  # the spawn times out: retried inside
        kills = Killer(own, Stage.CHECKS, times=5)  # then the retried child's zygote is killed
        stages: Callable[[Stage], None] = lambda stage: (stops(stage), kills(stage))  # noqa: E731
        with pytest.raises(SandboxLost) as caught:
            own.grade(spec, solution, on_stage=stages)
        assert caught.value.retry is False
        assert box.restarts == restarts + 1  # the spawn's retry on a new zygote
        assert stops.attempts() == 1 and kills.times == 4  # so the engine did not grade it again
        assert own.grade(spec, solution).verdict == Verdict.ACCEPTED
    finally:
        own.close()


@pytest.mark.django_db
def test_through_the_service_a_second_loss_fails_the_row_once_and_blames_nobody(
    engine: Any, spec: ExerciseSpec, solution: str, learner: Any
) -> None:
    from grader import services
    from grader.models import Submission, SubmissionStatus
    from tests.submission_helpers import exercise_from_folder

    exercise = exercise_from_folder("linear-backward")
    row = Submission.objects.create(user=learner, exercise=exercise, code=solution)
    killers: list[Killer] = []

    class Killing:
        """The real engine, its zygote killed at every attempt's checks."""

        def grade(self, spec: ExerciseSpec, source: str, **options: Any) -> Any:
            killer = Killer(engine, Stage.CHECKS, times=5)
            killers.append(killer)
            recorder = options.pop("on_stage")
            return engine.grade(spec, source, on_stage=lambda stage: (killer(stage), recorder(stage)), **options)

    with pytest.raises(services.GradingInterrupted) as caught:
        services.submission_grade(row.pk, engine=Killing())  # type: ignore[arg-type]
    assert caught.value.released is False  # the task does not send it again
    row.refresh_from_db()
    assert row.status == SubmissionStatus.FAILED and row.verdict == Verdict.INTERNAL_ERROR
    assert row.claim_count == 1 and len(killers) == 1 and killers[0].attempts() == 2
    assert row.result["feedback"] == services.INTERNAL_ERROR_FEEDBACK  # "not a problem with your code"
    assert "SandboxLost" in row.result["internal_reason"]
    assert services.submission_claim(row.pk) is None  # never claimed again


@pytest.mark.django_db
def test_every_restart_inside_the_sandbox_and_by_the_engine_reaches_metrics(
    spec: ExerciseSpec, solution: str, private_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.test import Client
    from prometheus_client.parser import text_string_to_metric_families

    from grader.engine import Engine
    from grader.heartbeat import worker_heartbeat
    from grader.services import worker_identity

    own = Engine(Sandbox.start(control_timeout_s=1))
    try:
        assert own.sandbox_restarts == 0
        # A stuck zygote: the spawn times out and the sandbox restarts it itself.
        os.kill(zygote_pid(own._sandbox), signal.SIGSTOP)
        assert own.grade(spec, solution).verdict == Verdict.ACCEPTED
        assert own._sandbox.restarts == 1 and own.sandbox_restarts == 1
        # A zygote killed between submissions: the engine replaces the sandbox; the count goes on.
        os.kill(zygote_pid(own._sandbox), signal.SIGKILL)
        own._sandbox._process.wait()
        assert own.grade(spec, solution).verdict == Verdict.ACCEPTED
        assert own._sandbox.restarts == 0 and own.sandbox_restarts == 2
        # And one killed under a grading (its one retry).
        assert own.grade(spec, solution, on_stage=Killer(own, Stage.CHECKS, times=1)).verdict == Verdict.ACCEPTED
        assert own.sandbox_restarts == 3

        monkeypatch.setattr(Engine, "_instance", own)
        worker_heartbeat()  # what each pool process does after every task
        text = Client().get("/metrics").content.decode()
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        assert samples[("gradlab_sandbox_restarts_total", (("worker", worker_identity()),))] == 3
    finally:
        own.close()
