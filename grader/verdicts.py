"""Names shared by the grader engine, the database and the API (no Django here).

The verdict strings are a public contract (docs/result.md).
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    WRONG_ANSWER = "wrong_answer"
    SYNTAX_ERROR = "syntax_error"
    RUNTIME_ERROR = "runtime_error"
    TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
    MEMORY_LIMIT_EXCEEDED = "memory_limit_exceeded"
    OUTPUT_LIMIT_EXCEEDED = "output_limit_exceeded"
    FORBIDDEN = "forbidden"
    INTERNAL_ERROR = "internal_error"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


class Stage(StrEnum):
    """Where a submission is in its grading, in order."""

    QUEUED = "queued"
    SANDBOX = "sandbox"
    CHECKS = "checks"
    TRAINING = "training"
    DONE = "done"

    @property
    def label(self) -> str:
        return {
            "queued": "Queued",
            "sandbox": "Starting sandbox",
            "checks": "Gradient checks",
            "training": "Training run",
            "done": "Verdict",
        }[self.value]


class Isolation(StrEnum):
    """Isolation levels of the sandbox, weakest first (see settings.GRADER_ISOLATION_LEVELS)."""

    NONE = "none"
    PROCESS = "process"
    NAMESPACES = "namespaces"
    NAMESPACES_SECCOMP = "namespaces+seccomp"

    @property
    def rank(self) -> int:
        return list(Isolation).index(self)
