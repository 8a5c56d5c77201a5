"""The grader's sandbox: learner code runs only in children forked from a warm, isolated zygote.

Layers, outermost first (docs/sandbox.md holds the threat model):

1. bubblewrap starts the zygote once per worker (``layout``): user, PID, network, IPC, UTS and cgroup
   namespaces, uid/gid 65534, no capabilities, an empty environment, ``--die-with-parent``; the root
   holds only ``/usr`` (read-only), the interpreter, NumPy and the two runner files under ``/opt``.
2. Per submission the zygote forks a child (``runner``) that, before reading any learner code, starts
   its own session, keeps only its pipes, enters a private world (own IPC and mount namespaces, fresh
   size-capped ``/tmp`` and ``/dev/shm``, ``/dev`` read-only, ``/proc`` covered), drops every
   capability, sets rlimits, NO_NEW_PRIVS, non-dumpable, and a seccomp filter. Everything it makes
   goes when it dies; the zygote never cleans up after it.
3. An import guard gives honest mistakes (``import torch``) a clear ``forbidden`` verdict; it is not a
   boundary, layers 1 and 2 are (tests/test_hostile_submissions.py bypasses it on purpose).
4. The trusted side (``core``, ``control``, ``session``) exchanges length-prefixed frames of JSON
   headers and raw array bytes with the child (``wire``), with deadlines and size caps; control
   requests to the zygote carry ids, and any drift replaces the zygote.

Without bubblewrap (``process`` isolation, loudly logged) the zygote runs as a plain process started
by root; children build the same private world and run as uid 65534, or the sandbox refuses to start.

Public API: Sandbox, Session, Limits, SandboxError, SandboxUnavailable, IsolationTooLow.
"""

from grader.sandbox.core import Sandbox
from grader.sandbox.limits import (
    IsolationTooLow,
    Limits,
    SandboxBroken,
    SandboxError,
    SandboxLost,
    SandboxUnavailable,
    Tries,
)
from grader.sandbox.session import Session

__all__ = [
    "IsolationTooLow",
    "Limits",
    "Sandbox",
    "SandboxBroken",
    "SandboxError",
    "SandboxLost",
    "SandboxUnavailable",
    "Session",
    "Tries",
]
