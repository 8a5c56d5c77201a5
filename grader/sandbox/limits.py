"""What a session may use (``Limits``) and how the sandbox reports failure (the exceptions)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from grader.verdicts import Isolation, Verdict

BWRAP = "/usr/bin/bwrap"
INSTALL_HINT = (
    "install bubblewrap and libseccomp2 (apt-get install bubblewrap libseccomp2, or scripts/install-system-deps.sh)"
)


@dataclass(frozen=True)
class Limits:
    """Resource limits of one session (one submission). Exercises may override any of them.

    ``cpu_time_s`` and ``wall_time_s`` bound the whole session, ``call_wall_time_s`` each call (and
    loading the code). ``memory_mib`` is what learner code may allocate on top of the warm
    interpreter (RLIMIT_AS). ``output_bytes`` caps stdout and stderr each. ``max_array_bytes`` caps
    the arrays of one message in either direction. ``source_bytes`` caps the submitted file.

    Memory outside RLIMIT_AS lives in the child's own namespaces and is capped there: ``tmp_mib``
    and ``tmp_inodes`` bound its fresh ``/tmp`` tmpfs, ``shm_mib`` its fresh ``/dev/shm`` tmpfs and,
    separately, its IPC namespace's System V shared memory (message queues and semaphores get small
    fixed limits; where the namespace's limits cannot be set, the seccomp filter denies those calls).
    ``memfd`` files and pipes are held by descriptors, so ``open_files`` x ``file_size_mib`` bounds them.
    All of it is dropped by the kernel when the child dies.
    """

    cpu_time_s: float = 10
    wall_time_s: float = 20
    call_wall_time_s: float = 5
    memory_mib: int = 512
    max_processes: int = 1
    max_threads: int = 16
    output_bytes: int = 64 * 1024
    file_size_mib: float = 1
    open_files: int = 64
    max_array_bytes: int = 64 * 1024 * 1024
    source_bytes: int = 64 * 1024
    tmp_mib: int = 16
    tmp_inodes: int = 4096
    shm_mib: int = 16

    @property
    def outside_address_space_mib(self) -> float:
        """The most a session can hold outside RLIMIT_AS: /tmp, /dev/shm, SysV shm, message queues, memfds."""
        return self.tmp_mib + 2 * self.shm_mib + 1 + self.open_files * self.file_size_mib

    @classmethod
    def from_settings(cls, **overrides: Any) -> Limits:
        """Defaults from Django settings when configured (GRADER_MAX_SOURCE_BYTES), then ``overrides``."""
        values: dict[str, Any] = {}
        try:
            from django.conf import settings

            if settings.configured:
                values["source_bytes"] = int(settings.GRADER_MAX_SOURCE_BYTES)
        except (ImportError, AttributeError):
            pass
        names = {field.name for field in fields(cls)}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"unknown limits: {', '.join(sorted(unknown))}")
        values.update(overrides)
        return cls(**values)


class SandboxError(Exception):
    """Learner code failed in a way that decides the verdict. ``message`` is safe to show the learner."""

    def __init__(
        self, verdict: Verdict, message: str, *, line: int | None = None, stdout: str = "", stderr: str = ""
    ) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.message = message
        self.line = line
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self) -> str:
        return f"SandboxError({self.verdict.value!r}, {self.message!r}, line={self.line})"


class SandboxUnavailable(Exception):
    """The sandbox itself could not run (an internal error, never the learner's fault)."""


class SandboxBroken(SandboxUnavailable):
    """The zygote stopped answering, answered out of turn, or died; the sandbox restarts it."""


class SandboxLost(SandboxUnavailable):
    """The zygote died or broke while a submission's child was in flight: never the learner's doing.

    ``retry`` is True when the submission may still get its one retry (a new child from a new zygote,
    see :class:`Tries`), False when it already had it: then it must end as an internal failure.
    """

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class Tries:
    """How many children one submission may be given: the first and, when the sandbox is lost under
    it, exactly one more. Shared by every spawn of that submission (the sandbox's own spawn retry and
    a grading restarted by the engine), so a submission is never retried twice."""

    ALLOWED = 2

    def __init__(self) -> None:
        self.used = 0

    def take(self) -> bool:
        """Use one try; False when none is left (nothing is used then)."""
        if self.used >= self.ALLOWED:
            return False
        self.used += 1
        return True

    @property
    def left(self) -> int:
        return self.ALLOWED - self.used


class IsolationTooLow(SandboxUnavailable):
    """The measured isolation level is below the required minimum."""

    def __init__(self, measured: Isolation, required: Isolation, reason: str = "") -> None:
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"sandbox isolation is '{measured}' but at least '{required}' is required{why}; "
            f"{INSTALL_HINT}, or lower GRADER_MIN_ISOLATION"
        )
        self.measured = measured
        self.required = required
