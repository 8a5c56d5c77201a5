"""Work done ahead (grader/backlog.py, grader/training.py's ReferenceRun) gives what work done when needed gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from grader.backlog import Backlog, Lazy
from grader.kinds import KINDS
from grader.training import ReferenceCurves, ReferenceRun


def test_a_lazy_value_is_computed_once_ahead_or_when_needed() -> None:
    calls: list[int] = []
    ahead = Lazy(lambda: calls.append(1) or 41 + len(calls))
    assert ahead.step() is True
    assert ahead.step() is False
    assert ahead.value() == 42
    when_needed = Lazy(lambda: calls.append(2) or "late")
    assert when_needed.value() == "late"
    assert when_needed.step() is False
    assert calls == [1, 2]


def test_a_lazy_value_raises_where_it_is_computed_and_stays_to_compute() -> None:
    attempts: list[int] = []

    def compute() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ZeroDivisionError
        return "second time"

    value = Lazy(compute)
    with pytest.raises(ZeroDivisionError):
        value.step()  # ahead: nothing is kept back for later
    assert value.value() == "second time"


def test_a_backlog_does_its_jobs_oldest_first_one_piece_at_a_time() -> None:
    order: list[str] = []

    def job(name: str, pieces: int) -> Callable[[], bool]:
        left = [pieces]

        def step() -> bool:
            if not left[0]:
                return False
            left[0] -= 1
            order.append(name)
            return True

        return step

    backlog = Backlog()
    backlog.add(job("a", 2))
    backlog.add(job("b", 1))
    assert [backlog.step() for _ in range(4)] == [True, True, True, False]
    assert order == ["a", "a", "b"]


def test_a_backlog_raises_what_a_job_raised() -> None:
    def broken() -> bool:
        raise RuntimeError("a bug in trusted work")

    backlog = Backlog()
    backlog.add(broken)
    with pytest.raises(RuntimeError):
        backlog.step()


def test_a_reference_run_whose_step_failed_does_not_go_on_from_a_half_done_step() -> None:
    kind = KINDS["linear-backward"]
    setup = kind.training()
    assert setup is not None
    calls: list[int] = []

    def failing_once(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError
        return kind.torch_forward(kwargs)

    run = ReferenceRun(kind, setup, seed=4)
    run._layer = failing_once  # type: ignore[method-assign]
    assert run.step() is True
    with pytest.raises(MemoryError):
        run.step()
    with pytest.raises(RuntimeError):
        run.losses()


@pytest.mark.parametrize("ahead", [0, 1, 7, 25])
def test_a_reference_run_gives_the_same_curve_whatever_was_done_ahead(ahead: int) -> None:
    kind = KINDS["linear-backward"]
    setup = kind.training()
    assert setup is not None
    at_once = ReferenceRun(kind, setup, seed=11).losses()
    run = ReferenceRun(kind, setup, seed=11)
    for _ in range(ahead):
        assert run.step() is True
    assert run.losses() == at_once
    assert run.step() is False
    assert len(at_once) == setup.steps


def test_a_reference_run_stores_its_complete_curve_and_a_later_one_is_served_from_it() -> None:
    kind = KINDS["linear-backward"]
    setup = kind.training()
    assert setup is not None
    cache = ReferenceCurves()
    first = ReferenceRun(kind, setup, seed=5, cache=(cache, "spec"))
    first.step()
    assert (cache.hits, cache.misses) == (0, 1)
    curve = first.losses()
    curve[0] = 99.0  # the caller's copy
    second = ReferenceRun(kind, setup, seed=5, cache=(cache, "spec"))
    assert (cache.hits, cache.misses) == (1, 1)
    assert second.step() is False  # nothing left to compute
    assert second.losses() == ReferenceRun(kind, setup, seed=5).losses()
    other_seed = ReferenceRun(kind, setup, seed=6, cache=(cache, "spec"))
    assert other_seed.step() is True
    assert (cache.hits, cache.misses) == (1, 2)
