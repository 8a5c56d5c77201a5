"""The grader's sandbox: learner code runs only in children forked from a warm, isolated zygote.

Layers, outermost first (DESIGN.md, "Sandbox threat model"):

1. bubblewrap starts the zygote once per worker: user, PID, network, IPC, UTS and cgroup namespaces,
   uid/gid 65534, no capabilities, an empty environment, ``--die-with-parent``, ``--new-session``; the
   root holds only ``/usr`` (read-only), the interpreter, NumPy and the two runner files under ``/opt``
   (read-only), ``/proc``, a minimal ``/dev`` and a 16 MiB tmpfs ``/tmp`` (emptied between sessions).
2. Per submission the zygote forks a child that, before reading any learner code, starts its own
   session and process group, keeps only its pipes (the protocol ones moved to high fd numbers), sets
   rlimits (CPU, address space, data, file size, open files, processes/threads, no core), NO_NEW_PRIVS,
   non-dumpable, and a seccomp filter (no sockets, exec, fork, ptrace, signals to others, mounts,
   namespaces, privilege changes, io_uring, bpf...).
3. An import guard gives honest mistakes (``import torch``) a clear ``forbidden`` verdict; it is not a
   boundary, layers 1 and 2 are (tests/test_hostile_submissions.py bypasses it on purpose).
4. The trusted side exchanges length-prefixed frames of JSON headers and raw array bytes with the
   child (``wire``), with deadlines and size caps, rebuilding plain arrays; stdout and stderr come on
   their own capped pipes; it never opens a path inside the sandbox. Every process of a session is
   killed (process group, subreaper, PID namespace) when the session closes.

Without bubblewrap the same zygote runs as a plain process (``process`` isolation, loudly logged),
still with rlimits, seccomp when it loads, and uid 65534 when started as root.

Modules: ``core`` (trusted side), ``runner`` (sandbox side, stdlib + NumPy only), ``wire`` (the
pickle-free message format, shared by both). Public API: Sandbox, Session, Limits, SandboxError,
SandboxUnavailable, IsolationTooLow.
"""

from grader.sandbox.core import IsolationTooLow, Limits, Sandbox, SandboxError, SandboxUnavailable, Session

__all__ = ["IsolationTooLow", "Limits", "Sandbox", "SandboxError", "SandboxUnavailable", "Session"]
