"""A session's idle work: trusted work done while the child runs, never at the cost of a reply or a limit."""

from __future__ import annotations

import time

import numpy as np
import pytest

from grader.sandbox import Limits, Sandbox, SandboxError, SandboxUnavailable
from grader.verdicts import Verdict

pytestmark = pytest.mark.sandbox

FAST = Limits(cpu_time_s=2, wall_time_s=6, call_wall_time_s=1, memory_mib=256)
SLOW_DOUBLE = "import time\n\ndef f(x):\n    time.sleep(0.05)\n    return 2 * x\n"
TIME = frozenset({"time", "numpy"})


class Work:
    """`count` pieces of work of `seconds` each; records when they ran."""

    def __init__(self, count: int, seconds: float = 0.0) -> None:
        self.left = count
        self.seconds = seconds
        self.done = 0

    def step(self) -> bool:
        if self.left == 0:
            return False
        self.left -= 1
        self.done += 1
        time.sleep(self.seconds)
        return True


def test_idle_work_runs_while_the_child_loads_and_computes(sandbox: Sandbox) -> None:
    work = Work(count=10_000, seconds=0.001)
    with sandbox.session(SLOW_DOUBLE, "f", limits=FAST, allowed_imports=TIME, idle=work.step) as session:
        loaded = work.done
        assert loaded > 0  # the child's start and load took more than a millisecond
        np.testing.assert_array_equal(session.call(np.arange(3.0)), [0.0, 2.0, 4.0])
    assert work.done - loaded >= 20  # the 50 ms sleep was spent on it
    assert work.left > 0  # and it stopped once the reply was there


def test_a_reply_that_came_during_long_idle_work_is_not_refused_for_its_time(sandbox: Sandbox) -> None:
    work = Work(count=1, seconds=FAST.call_wall_time_s + 0.5)  # one piece, longer than the call's limit
    with sandbox.session(SLOW_DOUBLE, "f", limits=FAST, allowed_imports=TIME) as session:
        session.idle = work.step
        assert session.call(1.5) == 3.0
    assert work.done == 1


def test_endless_idle_work_does_not_keep_a_stuck_child_from_its_time_limit(sandbox: Sandbox) -> None:
    stuck = "import time\n\ndef f():\n    time.sleep(60)\n"
    work = Work(count=10**9, seconds=0.001)
    started = time.monotonic()
    session = sandbox.session(stuck, "f", limits=FAST, allowed_imports=TIME, idle=work.step)
    with pytest.raises(SandboxError) as caught, session as opened:
        opened.call()
    assert caught.value.verdict == Verdict.TIME_LIMIT_EXCEEDED
    assert time.monotonic() - started < FAST.call_wall_time_s + 3
    assert work.done > 100


def test_output_printed_before_the_reply_is_collected_with_idle_work(sandbox: Sandbox) -> None:
    printing = "def f(x):\n    print('seen', x)\n    return x\n"
    work = Work(count=10_000, seconds=0.0005)
    with sandbox.session(printing, "f", limits=FAST, idle=work.step) as session:
        assert session.call(4) == 4
        assert session.stdout == "seen 4\n"


def test_idle_work_that_raises_ends_the_call_and_the_child(sandbox: Sandbox) -> None:
    def broken() -> bool:
        raise RuntimeError("a bug in trusted work")

    with sandbox.session(SLOW_DOUBLE, "f", limits=FAST, allowed_imports=TIME) as session:
        session.idle = broken
        with pytest.raises(RuntimeError):
            session.call(1.0)
        with pytest.raises(SandboxUnavailable):
            session.call(1.0)  # the child is gone: no reply of the abandoned call can come out of turn
