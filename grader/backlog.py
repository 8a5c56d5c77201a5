"""Trusted work a grading does ahead, while the sandbox child loads the code or runs calls.

What a grading compares the submission with (each case's expected outputs, the central
differences of the numerical check, the reference training curve) depends on the exercise and the
seed only, never on the submission. Rather than compute it while the child waits, and then wait
for the child, the engine queues that work in a Backlog whose `step` is the sandbox session's idle
work: whenever the trusted side would wait for the child, it does one more small piece instead
(grader/sandbox/session.py). What is not done by the time it is
needed is done then. Either way the same values are computed from the same inputs, so results
and verdicts do not depend on how much was done ahead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class Lazy(Generic[T]):
    """A value computed once: ahead (`step`) or when first needed (`value`).

    Computing it may raise, wherever that happens (a bug of the grader, a time limit of the worker):
    the error is never kept for later, and the value is still to compute.
    """

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute: Callable[[], T] | None = compute
        self._value: T | None = None

    def step(self) -> bool:
        """Compute the value if it is not yet; False when there was nothing to do."""
        if self._compute is None:
            return False
        self._value = self._compute()
        self._compute = None
        return True

    def value(self) -> T:
        self.step()
        return cast(T, self._value)


class Backlog:
    """Jobs done one piece at a time, oldest first: each is a `step()` that returns False once it has nothing left."""

    def __init__(self) -> None:
        self._jobs: deque[Callable[[], bool]] = deque()

    def add(self, step: Callable[[], bool]) -> None:
        self._jobs.append(step)

    def step(self) -> bool:
        """Do one piece of the oldest unfinished job; False when no job has anything left.

        Raises what the job raised (the job stays queued).
        """
        while self._jobs:
            if self._jobs[0]():
                return True
            self._jobs.popleft()
        return False
