"""The sandbox side: a warm fork server (zygote) and the per-submission child that runs learner code.

Run as a script (``python -I -S -B runner.py``), inside bubblewrap when available. It imports only
the standard library, NumPy, ``wire`` (its sibling file) and, when present, ``pyseccomp``; never the
project package. The trusted side (``grader.sandbox.core``) talks to it over a SOCK_SEQPACKET control
socket on fd 3:

- ``{"id": n, "op": "spawn", "config": {...}}`` with four file descriptors (request read end, reply
  write end, stdout and stderr write ends): fork a child, reply ``{"id": n, "pid": p}``;
- ``{"id": n, "op": "reap", "pid": p}``: kill the child's process group, wait for it, reply its
  status, CPU time and peak memory.

Every reply echoes the request's ``id``: the trusted side treats any other reply as a broken sandbox.

A child locks itself down BEFORE it reads the learner's source from its request pipe: new session and
process group, closed fds, then a private world (:func:`enter_private_world`: its own IPC and mount
namespaces, every inherited mount read-only, fresh size-capped tmpfs on ``/tmp`` and ``/dev/shm``, ``/proc``
hidden, IPC limits of its own), an unprivileged uid, rlimits, NO_NEW_PRIVS, the seccomp filter. What
it makes lives in namespaces and mounts that only it holds, so the kernel drops all of it when the
child dies: the zygote never walks, wipes or even looks at what a child left behind.
"""

from __future__ import annotations

import builtins
import gc
import json
import os
import resource
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), *sys.argv[1:]]

import numpy as np  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable

    from grader.sandbox import networks, wire
else:
    import networks
    import wire

# Protocol fds live far from the small numbers learner code would guess (and above its NOFILE limit).
REQUEST_FD = max(100, min(1000, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 2))
REPLY_FD = REQUEST_FD + 1
IOV_MAX = 1024  # the most pieces one writev takes (Linux's UIO_MAXIOV)
_ARRAY = np.array  # bound before learner code exists, like networks.py's NumPy functions
LEARNER_MODULE = "submission"
LEARNER_FILE = "submission.py"
NOBODY = 65534
PRELOADED = (
    "math",
    "cmath",
    "functools",
    "itertools",
    "operator",
    "typing",
    "dataclasses",
    "collections",
    "numbers",
    "abc",
    "enum",
    "inspect",
    "traceback",
    "numpy.linalg",
    "numpy.random",
    "numpy.fft",
)

# Denied with EPERM inside every child (ENOSYS for clone3, so that glibc falls back to clone, whose
# flags can be inspected). Threads stay possible; new processes, networking, exec, tracing,
# signalling other processes, mounts and privilege changes do not. Neither do the calls that make a
# pipe hold references to pages instead of copies of bytes (vmsplice, splice, tee, sendfile): one
# pipe slot then keeps a whole huge page or large folio alive after the child unmapped it, so a
# child could hold gigabytes outside RLIMIT_AS (tests/test_hostile_native.py).
PAGE_REFERENCE_SYSCALLS = ("vmsplice", "splice", "tee", "sendfile")
# Objects the kernel counts per user of the host, a count the child shares with the trusted worker
# (and, under a bubblewrap started by root, with every root process of the machine): while a child
# held them all, nothing else of that user could watch a file. Queued signals are counted the same
# way; lock_down caps them with RLIMIT_SIGPENDING.
PER_USER_SYSCALLS = ("inotify_init", "inotify_init1", "fanotify_init")
DENIED_SYSCALLS = (
    *PAGE_REFERENCE_SYSCALLS,
    *PER_USER_SYSCALLS,
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "execve",
    "execveat",
    "fork",
    "vfork",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "tkill",
    "tgkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "swapon",
    "swapoff",
    "reboot",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "acct",
    "quotactl",
    "syslog",
    "personality",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "capset",
    "settimeofday",
    "clock_settime",
    "sethostname",
    "setdomainname",
    "ioperm",
    "iopl",
)
CLONE_THREAD = 0x00010000
# The zygote and every other child run under the child's kernel uid, and these calls need no more
# than that to act on another process: each may only name the child itself (pid 0), or is denied
# with EPERM. (argument index, value that means "this process"); ``setpriority`` and ``ioprio_set``
# also need their "which" to be one process (0 and 1), not a group or every process of the uid.
OWN_PROCESS_ONLY = (
    *(("prlimit64", 0, 0), ("sched_setaffinity", 0, 0), ("sched_setscheduler", 0, 0)),
    *(("sched_setparam", 0, 0), ("sched_setattr", 0, 0), ("migrate_pages", 0, 0), ("move_pages", 0, 0)),
    *(("setpriority", 0, 0), ("setpriority", 1, 0), ("ioprio_set", 0, 1), ("ioprio_set", 1, 0)),
)
# fcntl commands that make the kernel signal a descriptor's owner (SIGIO) on I/O, any pid it names.
F_SETOWN, F_SETOWN_EX = 8, 15
# Queued signals (and POSIX timers, each holding one) a child may have: the kernel counts them per
# user of the host as well, and the default is the whole user's budget.
SIGNALS_PENDING = 64
NUMPY_REFUSED = ("numpy.ctypeslib", "numpy.f2py", "numpy.distutils", "numpy.testing")

seccomp: Any = None
_libc: Any = None
FILTER: Any = None  # the compiled seccomp program, set by the zygote
try:
    import ctypes
    import ctypes.util

    # pyseccomp finds its libraries through ldconfig, which the sandbox has no /etc for.
    _find_library = ctypes.util.find_library
    ctypes.util.find_library = lambda name: (
        {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}.get(name) or _find_library(name)
    )
    import pyseccomp

    seccomp = pyseccomp
    ctypes.util.find_library = _find_library
    _libc = ctypes.CDLL("libc.so.6", use_errno=True)
except Exception:
    seccomp = None
    _libc = None

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REC, MS_PRIVATE = 16384, 1 << 18
MOUNT_ATTR_RDONLY = 1
AT_RECURSIVE = 0x8000
LINUX_CAPABILITY_VERSION_3 = 0x20080522
# System V and POSIX message-queue calls: denied by the filter when the child's IPC namespace cannot
# be given limits of its own (then nothing of that kind can hold memory at all).
IPC_SYSCALLS = (
    *("shmget", "shmat", "shmdt", "shmctl", "msgget", "msgsnd", "msgrcv", "msgctl"),
    *("semget", "semop", "semtimedop", "semctl", "mq_open", "mq_unlink", "mq_timedsend"),
    *("mq_timedreceive", "mq_notify", "mq_getsetattr"),
)
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def _prctl(option: int, value: int) -> bool:
    return _libc is not None and _libc.prctl(option, value, 0, 0, 0) == 0


def compile_filter(deny_ipc: bool = False) -> Any:
    """Build the deny-list filter once, in the zygote, as a ready ``sock_fprog`` (or None).

    The program depends on nothing per child (signals may only go to the own process group, whose
    only member is the child), so each child loads it with one prctl instead of compiling it.
    """
    if seccomp is None:
        return None
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    eperm = seccomp.ERRNO(1)
    for name in DENIED_SYSCALLS + (IPC_SYSCALLS if deny_ipc else ()):
        try:
            rules.add_rule(eperm, name)
        except (OSError, ValueError, RuntimeError):
            continue  # a syscall this architecture does not have
    rules.add_rule(seccomp.ERRNO(38), "clone3")  # ENOSYS: glibc retries with clone, whose flags we see
    rules.add_rule(eperm, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))
    rules.add_rule(eperm, "kill", seccomp.Arg(0, seccomp.NE, 0))  # kill(0, ...) reaches only the child
    for name, index, own in OWN_PROCESS_ONLY:
        rules.add_rule(eperm, name, seccomp.Arg(index, seccomp.NE, own))
    for command in (F_SETOWN, F_SETOWN_EX):  # the kernel reads an unsigned int: ignore the high bits
        rules.add_rule(eperm, "fcntl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, command))
    read_end, write_end = os.pipe()
    try:
        rules.export_bpf(os.fdopen(os.dup(write_end), "wb"))
        os.close(write_end)
        write_end = -1
        program = b""
        while chunk := os.read(read_end, 1 << 16):
            program += chunk
    finally:
        os.close(read_end)
        if write_end != -1:
            os.close(write_end)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    return (fprog, buffer)  # keep the buffer alive with the struct


def load_filter(compiled: Any) -> None:
    """Load the compiled filter into this process: irreversible, inherited by its threads."""
    if not _prctl(PR_SET_NO_NEW_PRIVS, 1):
        raise OSError("PR_SET_NO_NEW_PRIVS failed")
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(compiled[0]), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter not loaded")


# ----------------------------------------------------------------------------- child: private world


class WorldError(OSError):
    """The child could not build its private world: it must not run learner code."""


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise WorldError(number, f"{what}: {os.strerror(number)}")


def _write_file(path: str, text: str, dir_fd: int | None = None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _mount_tmpfs(path: str, size_bytes: int, inodes: int, flags: int = 0) -> None:
    options = f"size={size_bytes},nr_inodes={inodes},mode=1777".encode()
    _check(_libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV | flags, options), f"mount {path}")


def ipc_limits(limits: dict[str, Any]) -> dict[str, str]:
    """The IPC namespace's own sysctls: SysV shared memory, message queues, semaphores, POSIX mqueues."""
    shm_bytes = int(limits["shm_mib"]) * 1024 * 1024
    # Defaults kept where they already bound memory: msgmnb (16 KiB a queue), POSIX queue sizes (and
    # RLIMIT_MSGQUEUE, set in lock_down, bounds the bytes of all of them).
    return {
        "kernel/shmmax": str(shm_bytes),
        "kernel/shmall": str(max(1, shm_bytes // os.sysconf("SC_PAGE_SIZE"))),
        "kernel/msgmni": "8",
        "kernel/sem": "32 256 32 8",
        "fs/mqueue/queues_max": "8",
    }


def enter_private_world(config: dict[str, Any]) -> None:
    """Give this freshly forked child a world of its own, before any learner code exists in it.

    Own IPC namespace (SysV objects and POSIX message queues start empty and die with it, with
    limits of its own) and own mount namespace: every inherited mount read-only, fresh tmpfs mounts
    on ``/tmp`` and ``/dev/shm`` capped in bytes and inodes, ``/proc`` covered by an empty read-only
    tmpfs (no other process, no mount table with host paths, no ``/proc/*/mem``). Nothing here is
    shared with another child, so there is nothing to wipe: it all goes with the child's last thread.

    Inside bubblewrap (``world == "userns"``) the child has no capability, so it enters a user
    namespace of its own (root in it, mapped to its own uid) to get the IPC namespace and its limits,
    then a second one mapped back to uid 65534 with its own mount namespace, builds the mounts and
    drops every capability. Started as root without bubblewrap (``world == "root"``) it uses its real
    privileges, makes every mount private first, covers the project, then becomes uid 65534.
    """
    world = config.get("world")
    if world not in ("userns", "root") or _libc is None:
        raise WorldError(0, f"no private world available ({world})")
    limits = config["limits"]
    uid, gid = os.getuid(), os.getgid()
    # Inherited from the non-dumpable zygote, this child's /proc files belong to the host's root; it
    # must own them to write its id maps. Learner code has not run yet; lock_down resets it after.
    _prctl(PR_SET_DUMPABLE, 1)
    if world == "userns":
        _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWIPC), "unshare")
        _map_ids(f"0 {uid} 1", f"0 {gid} 1")
    else:
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare")
        _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
        for folder in config.get("hide", []):  # the project and its database: an empty tmpfs over them
            if os.path.isdir(folder):
                _check(
                    _libc.mount(b"tmpfs", folder.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=4k,nr_inodes=4"),
                    "hide",
                )
    if config.get("ipc_limits"):  # the IPC namespace's root may set its limits
        for name, value in ipc_limits(limits).items():
            _write_file(f"/proc/sys/{name}", value)
    if world == "userns":
        # Below here, one more user namespace (the next line's) and no other: without the seccomp
        # filter, learner code could otherwise make its own namespaces and an uncapped tmpfs in them.
        for name in ("user/max_user_namespaces", "user/max_mnt_namespaces"):
            try:
                _write_file(f"/proc/sys/{name}", "1")
            except OSError:
                pass  # an older kernel: the filter (namespaces+seccomp) still denies unshare
        # The kernel skips RLIMIT_NPROC for tasks of uid 0, and a child of a bubblewrap started by root
        # runs as uid 0 of the host: its thread cap cannot be counted there. Such a child gets no thread
        # at all instead of unbounded ones (each a pid of the host): with a pid namespace for its
        # children that it is not in, the kernel refuses every new thread (EINVAL).
        threads = 0 if config.get("threads", True) else CLONE_NEWPID
        _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | threads), "unshare user and mounts")
        _map_ids(f"{NOBODY} 0 1", f"{NOBODY} 0 1")
    # Every mount this child inherited becomes read-only in its namespace (bubblewrap's /dev and its
    # devpts, any tmpfs): the only writable places are the fresh ones mounted next.
    attr = (ctypes.c_uint64 * 4)(MOUNT_ATTR_RDONLY, 0, 0, 0)
    _check(_libc.mount_setattr(-100, b"/", AT_RECURSIVE, attr, ctypes.sizeof(attr)), "read-only mounts")
    mib = 1024 * 1024
    _mount_tmpfs("/tmp", int(limits["tmp_mib"]) * mib, int(limits["tmp_inodes"]))  # noqa: S108
    shm = "/dev/shm"  # noqa: S108 - the child's own fresh tmpfs, mounted here
    if os.path.isdir(shm):
        _mount_tmpfs(shm, int(limits["shm_mib"]) * mib, 64, MS_NOEXEC)
    hidden = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY
    _check(_libc.mount(b"tmpfs", b"/proc", b"tmpfs", hidden, b"size=4k,nr_inodes=4"), "cover /proc")
    if world == "root":
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    _drop_capabilities()


def _map_ids(uid_map: str, gid_map: str) -> None:
    _write_file("/proc/self/setgroups", "deny")
    _write_file("/proc/self/uid_map", uid_map)
    _write_file("/proc/self/gid_map", gid_map)


def _drop_capabilities() -> None:
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    _check(_libc.capset(header, data), "drop capabilities")


def probe_world(config: dict[str, Any], protected: list[str]) -> dict[str, Any]:
    """In a forked child: build the world and report what learner code could reach (0 = all is well)."""
    report: dict[str, Any] = {"world": False, "ipc_limits": False, "readable": []}
    try:
        enter_private_world(config)
    except (OSError, ValueError) as error:
        report["error"] = str(error)
        return report
    if not config.get("threads", True):  # the world must refuse threads, or nothing caps them
        import _thread

        try:
            _thread.start_new_thread(int, ())
        except RuntimeError:
            pass
        else:
            report["error"] = "a child could start threads that RLIMIT_NPROC does not count (uid 0)"
            return report
    report["world"] = True
    report["ipc_limits"] = bool(config.get("ipc_limits"))
    report["uid"] = os.getuid()
    for path in protected:
        try:
            with open(path, "rb") as handle:
                handle.read(1)
        except OSError:
            try:
                os.listdir(path)
            except OSError:
                continue
        report["readable"].append(path)
    return report


# ----------------------------------------------------------------------------- child: lock down


class FrameInput:
    """Frames from the trusted side, read in as few system calls as they arrive in.

    The trusted side sends one request and waits for its reply, so whatever the pipe holds belongs
    to the current frame: one large read usually takes the whole of it.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = bytearray()

    def take(self, count: int) -> bytearray:
        while len(self.pending) < count:
            chunk = os.read(self.fd, max(1 << 16, min(count - len(self.pending), 1 << 22)))
            if not chunk:
                raise EOFError
            self.pending += chunk
        data = self.pending[:count]
        del self.pending[:count]
        return data

    def frame(self, max_buffer_bytes: int) -> tuple[dict[str, Any], list[bytearray]]:
        """Read one frame (blocking)."""
        (length,) = wire.HEADER_LENGTH.unpack(self.take(wire.HEADER_LENGTH.size))
        if length > wire.MAX_HEADER_BYTES:
            raise wire.WireError("header too large")
        header = wire.parse_header(bytes(self.take(length)))
        if sum(header["buffers"]) > max_buffer_bytes:
            raise wire.WireError("buffers too large")
        return header, [self.take(n) for n in header["buffers"]]


def write_frame(fd: int, header: dict[str, Any], buffers: list[memoryview] | None = None) -> None:
    """Write one frame with as few system calls as the pipe allows: one ``writev`` when it fits.

    The trusted side wakes up for every write it sees, so a frame written piece by piece would
    cost it a poll and a read per piece.
    """
    pieces = [memoryview(piece).cast("B") for piece in wire.pack(header, buffers or []) if len(piece)]
    first = 0  # the first piece not written in full
    while first < len(pieces):
        written = os.writev(fd, pieces[first : first + IOV_MAX])
        while first < len(pieces) and written >= len(pieces[first]):
            written -= len(pieces[first])
            first += 1
        if written:
            pieces[first] = pieces[first][written:]


def _count_own_tasks(uid: int) -> int:
    """Tasks (threads included) that run as ``uid`` and are visible here: what RLIMIT_NPROC counts."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                continue
    return count


def _virtual_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def lock_down(fds: list[int], config: dict[str, Any]) -> None:
    """Turn this freshly forked process into a sandboxed child; the learner's code is not read yet."""
    os.setsid()  # own session and process group: the zygote kills the whole group at the end
    request, reply, out, err = fds
    os.dup2(request, REQUEST_FD)
    os.dup2(reply, REPLY_FD)
    os.dup2(out, 1)
    os.dup2(err, 2)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.closerange(3, REQUEST_FD)
    os.closerange(REPLY_FD + 1, 1 << 16)
    os.set_inheritable(REQUEST_FD, False)
    os.set_inheritable(REPLY_FD, False)
    memory = _virtual_bytes() + int(config["limits"]["memory_mib"]) * 1024 * 1024  # before /proc goes
    # RLIMIT_NPROC counts tasks per user (per user namespace): in its own namespace the child is alone;
    # as uid 65534 of the host (process isolation) it shares the count with every such task.
    own_tasks = 1 if config.get("world") == "userns" else _count_own_tasks(NOBODY) + 1
    enter_private_world(config)
    os.chdir("/tmp")  # noqa: S108 - the child's own fresh tmpfs
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)  # no ptrace attach or /proc/<pid>/mem from anything of the same uid

    limits = config["limits"]
    cpu = max(1, int(limits["cpu_time_s"] + 0.999))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    queues = min(1 << 20, resource.getrlimit(resource.RLIMIT_MSGQUEUE)[1])  # the default is 800 KiB
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (queues, queues))
    signals = min(SIGNALS_PENDING, resource.getrlimit(resource.RLIMIT_SIGPENDING)[1])  # POSIX timers too
    resource.setrlimit(resource.RLIMIT_SIGPENDING, (signals, signals))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    file_bytes = int(limits["file_size_mib"] * 1024 * 1024)
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(limits["open_files"]), int(limits["open_files"])))
    tasks = own_tasks + int(limits["max_threads"]) + int(limits["max_processes"]) - 1
    resource.setrlimit(resource.RLIMIT_NPROC, (tasks, tasks))
    if FILTER is not None:
        load_filter(FILTER)


# ----------------------------------------------------------------------------- child: run code


class Refusal(Exception):
    """A learner-facing error raised by the runner itself, with its verdict."""

    def __init__(self, verdict: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.message = message
        self.line = line


# Modules that real solutions carry and that give learner code nothing it does not already have:
# `builtins` is the namespace every module sees as __builtins__, `__future__` only flags the compiler,
# `typing` holds annotations (e.g. CS231n's `from builtins import range`, `from typing import Tuple`).
HARMLESS_IMPORTS = frozenset({"__future__", "builtins", "typing"})


def make_import_guard(allowed: frozenset[str], real_import: Any) -> Any:
    """An ``__import__`` that refuses, in learner code, every top-level module not in ``allowed``.

    Imports made by modules that are already loaded (NumPy importing ``os`` lazily, say) go through:
    the guard looks at the importing frame's code file, not at what the caller claims. This guard
    gives honest mistakes a clear message; the namespaces and the seccomp filter are the boundary.
    """
    getframe = sys._getframe

    def guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        frame = getframe(1)
        from_learner = frame.f_code.co_filename in (LEARNER_FILE, "<string>") or frame.f_globals.get("__name__") in (
            LEARNER_MODULE,
            None,
        )
        if from_learner:
            name = str(name)
            top = name.partition(".")[0]
            refused = level != 0 or (top not in allowed and top not in HARMLESS_IMPORTS)
            if not refused and top == "numpy":  # NumPy's doors to ctypes, compilers and subprocesses
                wanted = {name} | {f"{name}.{item}" for item in (fromlist or ()) if isinstance(item, str)}
                refused = any(w.startswith(NUMPY_REFUSED) for w in wanted)
            if refused:
                shown = name if level == 0 else "." * level + name
                raise Refusal("forbidden", _forbidden_message(shown, allowed), frame.f_lineno)
        return real_import(name, globals, locals, fromlist, level)

    return guarded_import


def _forbidden_message(name: str, allowed: frozenset[str]) -> str:
    names = ", ".join(sorted(allowed))
    if "numpy" in allowed:
        return f"import of '{name}' is not allowed here: this exercise is NumPy only (allowed: {names})"
    return f"import of '{name}' is not allowed here (allowed: {names})"


def _learner_line(tb: Any) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == LEARNER_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _describe_exception(error: BaseException) -> tuple[str, str, int | None]:
    """(verdict, message, line) for an exception raised by learner code."""
    if isinstance(error, Refusal):
        return error.verdict, error.message, error.line or _learner_line(error.__traceback__)
    line = _learner_line(error.__traceback__)
    where = f" (line {line})" if line else ""
    if isinstance(error, MemoryError):
        return "memory_limit_exceeded", f"MemoryError: your code ran out of memory{where}", line
    if isinstance(error, SystemExit):
        return "runtime_error", f"your code exited (SystemExit) before returning{where}", line
    # The learner's own __str__ (or a metaclass's __name__) runs here: it may raise anything or
    # return something else than text, and that still ends as a runtime error at the learner's line.
    text = _learner_text(lambda: str(error), "(its message could not be shown)")
    if len(text) > 500:
        text = text[:500] + "..."
    name = _learner_text(lambda: type(error).__name__, "an exception")
    return "runtime_error", (f"{name}: {text}" if text else name) + where, line


def _learner_text(describe: Callable[[], object], fallback: str) -> str:
    try:
        text = describe()
    except BaseException:
        return fallback
    return text if type(text) is str else fallback


def flush_output() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # noqa: S110 - learner code may have replaced or broken the stream
            pass


def send_error(verdict: str, message: str, line: int | None) -> None:
    flush_output()
    write_frame(REPLY_FD, {"kind": "error", "verdict": verdict, "message": message, "line": line})


def load_learner(config: dict[str, Any], source: str) -> Any:
    """Compile and execute the source; return the learner's function (or raise Refusal)."""
    try:
        code = compile(source, LEARNER_FILE, "exec", dont_inherit=True)
    except SyntaxError as error:
        line = error.lineno
        detail = error.msg or "invalid syntax"
        raise Refusal("syntax_error", f"SyntaxError: {detail} (line {line})", line) from None
    except (ValueError, MemoryError, RecursionError) as error:
        raise Refusal("syntax_error", f"your code could not be compiled: {type(error).__name__}") from None

    allowed = frozenset(config["allowed_imports"])
    builtins.__import__ = make_import_guard(allowed, builtins.__import__)
    module_globals: dict[str, Any] = {"__name__": LEARNER_MODULE, "__file__": LEARNER_FILE, "__builtins__": builtins}
    module = type(sys)(LEARNER_MODULE)
    module.__dict__.update(module_globals)
    sys.modules[LEARNER_MODULE] = module
    exec(code, module.__dict__)  # noqa: S102 - running learner code is this process's only purpose

    name = config["function"]
    function = module.__dict__.get(name)
    if function is None:
        raise Refusal("runtime_error", f"your code does not define a function named '{name}'")
    if not callable(function):
        raise Refusal("runtime_error", f"'{name}' is {wire.describe(function)}, not a function")
    arg_names = config.get("arg_names")
    if arg_names is not None:
        import inspect

        try:
            inspect.signature(function).bind(*arg_names)
        except TypeError:
            expected = ", ".join(arg_names)
            raise Refusal(
                "runtime_error",
                f"'{name}' must accept {len(arg_names)} arguments ({expected}); check its parameters",
            ) from None
        except ValueError:
            pass  # no signature available (a builtin): the call itself will tell
    return function


def serve(config: dict[str, Any]) -> None:
    """The child's life after lock-down: load the code, then answer call requests until EOF."""
    max_bytes = int(config["limits"]["max_array_bytes"])
    function_name = config["function"]
    requests = FrameInput(REQUEST_FD)
    header, _ = requests.frame(0)
    try:
        function = load_learner(config, header["source"])
    except BaseException as error:
        send_error(*_describe_exception(error))
        return
    flush_output()
    write_frame(REPLY_FD, {"kind": "ready"})
    while True:
        try:
            header, buffers = requests.frame(max_bytes)
        except EOFError:
            return
        args = wire.decode_value(header["args"], buffers)
        if header.get("kind") == "train":
            train_here(function, function_name, header["run"], args, max_bytes)
            continue
        try:
            result = function(*args)
        except BaseException as error:
            send_error(*_describe_exception(error))
            continue
        reply(function_name, result, args if header.get("return_inputs") else None, max_bytes)


def reply(function_name: str, result: Any, inputs: Any, max_bytes: int) -> bool:
    """Send what a call returned (and ``inputs``, the arguments after it, unless None).

    False when an error frame went instead.
    """
    out: list[memoryview] = []
    try:
        node = wire.encode_value(result, out)
        inputs_node = wire.encode_value(inputs, out) if inputs is not None else None
    except wire.UnsupportedValue as error:
        send_error("runtime_error", _unsupported(function_name, error), None)
        return False
    except BaseException as error:
        send_error(*_describe_exception(error))
        return False
    total = sum(len(b) for b in out)
    if total > max_bytes:
        send_error(
            "runtime_error",
            f"{function_name} returned {total / 2**20:.1f} MiB of arrays, over the limit of "
            f"{max_bytes / 2**20:.0f} MiB",
            None,
        )
        return False
    flush_output()
    try:
        write_frame(REPLY_FD, {"kind": "result", "value": node, "inputs": inputs_node}, out)
    except wire.UnsupportedValue as error:  # refused before a byte is written: a header over its cap
        send_error("runtime_error", _unsupported(function_name, error), None)
        return False
    return True


class _Stopped(Exception):
    """A streamed training run ends here: an error was sent, or the trusted side stops at this result."""


def train_here(function: Any, function_name: str, run: dict[str, Any], arrays: dict[str, Any], max_bytes: int) -> None:
    """A training run whose calls this child makes itself: one reply per call, as a call's reply.

    The trusted side sent the network's name, its start and the function's argument and output
    names; it runs the same network (networks.py) on its own parameters with the results sent
    here, so what this loop computes only chooses the arguments of the next call, which are those
    the trusted side would have sent. The function gets copies, as it gets decoded copies from a
    call. The loop stops after an error (sent as a call's would be) or a result whose gradients the
    trusted side refuses by the same check (networks.gradients).
    """
    network = networks.NETWORKS[run["network"]]
    arg_names, upstream_name = list(run["arg_names"]), run["upstream"]
    outputs = [(name, of) for name, of in run["outputs"]]
    differentiable = list(run["differentiable"])

    def backward(args: dict[str, Any], upstream: Any) -> dict[str, Any]:
        full = dict(args)
        if upstream_name is not None:
            full[upstream_name] = upstream
        call_args = [_copied(full[name]) for name in arg_names]
        try:
            result = function(*call_args)
        except BaseException as error:
            send_error(*_describe_exception(error))
            raise _Stopped from None
        if not reply(function_name, result, None, max_bytes):
            raise _Stopped
        layout, shapes = networks.layout_of(differentiable, args)
        try:
            grads = networks.gradients(outputs, result, layout, shapes)
        except networks.GradientError:
            raise _Stopped from None
        return networks.rebuild(layout, grads, upstream, chain=upstream_name is None)

    try:
        networks.train(network, arrays["params"], arrays["batch"], backward, steps=int(run["steps"]), lr=run["lr"])
    except _Stopped:
        pass
    except BaseException as error:  # in this loop's own code: the learner's doing (memory, replaced builtins)
        send_error(*_describe_exception(error))


def _copied(value: Any) -> Any:
    if type(value) is dict:
        return {key: _copied(item) for key, item in value.items()}
    return _ARRAY(value, copy=True) if type(value) is np.ndarray else value


def _unsupported(function_name: str, error: wire.UnsupportedValue) -> str:
    return f"{function_name} returned {error.what}; return numbers or NumPy arrays (or tuples, lists or dicts of them)"


def child_main(fds: list[int], config: dict[str, Any]) -> None:
    status = 0
    try:
        lock_down(fds, config)
        serve(config)
    except BaseException:
        status = 70
    finally:
        flush_output()
        os._exit(status)


# ----------------------------------------------------------------------------- zygote


def _probe_seccomp() -> bool:
    """Fork a child that loads the filter and checks that socket() and fork() are refused."""
    if FILTER is None:
        return False
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            load_filter(FILTER)
            try:
                socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
            except PermissionError:
                try:
                    os.fork()
                except PermissionError:
                    code = 0
                else:
                    os._exit(3)  # the grandchild: only reached if fork was allowed
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _kill_orphans(active: set[int]) -> None:
    """Kill every process re-parented to this subreaper that is not a live session child."""
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in active:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            if fields[1].decode() == me:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, IndexError):
            continue
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _send(control: socket.socket, message: dict[str, Any]) -> None:
    control.sendall(json.dumps(message).encode())


def _kill(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _death(status: int, usage: Any) -> dict[str, Any]:
    return {"status": status, "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss}


class Children:
    """The zygote's children: live ones, and how the ones that ended on their own ended.

    A child's exit includes dropping its namespaces and mounts, which the kernel may take a while to
    finish; the zygote does not wait for it. ``collect`` takes whatever has ended (never blocking)
    before each request; only a caller that needs a child's exit status waits for that child.
    """

    def __init__(self) -> None:
        self.active: set[int] = set()
        self.ended: dict[int, dict[str, Any]] = {}

    def add(self, pid: int) -> None:
        self.ended.pop(pid, None)  # a reused pid: the old record is not this child's
        self.active.add(pid)

    def collect(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.active:  # ended before anyone asked: keep how, for a later reap
                self.active.discard(pid)
                self.ended[pid] = _death(status, usage)

    def reap(self, pid: int, wait: bool) -> dict[str, Any]:
        """Kill ``pid``; with ``wait``, its exit status, CPU time and peak memory."""
        if pid in self.ended:
            return self.ended.pop(pid)
        if pid not in self.active:
            return {"status": None}
        self.active.discard(pid)
        _kill(pid)
        if not wait:
            return {"status": None, "killed": True}  # collected later, off everyone's path
        _, status, usage = os.wait4(pid, 0)
        return _death(status, usage)


def zygote_main() -> None:
    for name in PRELOADED:
        __import__(name)
    np.zeros(1) @ np.zeros(1)  # warm BLAS once here, not in every child
    control = socket.socket(fileno=int(os.environ.pop("GRADLAB_SANDBOX_FD")))
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    # Not dumpable: a child of the same uid must not open /proc/<zygote>/mem and write into this
    # unfiltered process (ptrace access then needs CAP_SYS_PTRACE, which nothing in here has).
    _prctl(PR_SET_DUMPABLE, 0)
    setup = json.loads(os.environ.pop("GRADLAB_SANDBOX_SETUP", "{}"))
    world = "userns" if setup.get("world") == "userns" or os.getuid() != 0 else "root"
    hide = setup.get("hide", []) if world == "root" else []  # only a root-started child covers folders
    base = {"world": world, "limits": setup.get("limits", {}), "ipc_limits": True, "hide": hide}
    base["threads"] = bool(setup.get("threads", True))  # False: no thread can be counted, so none at all
    # Can this child's IPC namespace get limits of its own? If not, the filter denies IPC instead.
    report = _run_probe(base, setup.get("protected", []))
    if not report.get("world"):
        base["ipc_limits"] = False
        report = _run_probe(base, setup.get("protected", []))
    global FILTER  # noqa: PLW0603 - set once, before any fork, read by every child
    try:
        FILTER = compile_filter(deny_ipc=not base["ipc_limits"]) if setup.get("seccomp", True) else None
    except Exception:
        FILTER = None
    del setup  # its host paths: a child can walk up its frames into this one
    use_seccomp = _probe_seccomp()
    if not use_seccomp:
        FILTER = None
    gc.collect()
    gc.freeze()  # children then do not dirty the warm heap's pages just by collecting garbage
    ready = {"ok": bool(report.get("world")), "seccomp": use_seccomp, "uid": os.getuid(), "mode": world}
    ready["threads"] = base["threads"]
    ready.update(report)
    _send(control, ready)
    if not ready["ok"]:
        return
    children = Children()
    active = children.active
    while True:
        children.collect()
        try:
            data, fds, _, _ = socket.recv_fds(control, 1 << 16, 8)
        except OSError:
            break
        if not data:
            break
        try:
            message = json.loads(data)
            request_id = message["id"]
            op = message["op"]
        except (ValueError, KeyError, TypeError):
            for fd in fds:
                os.close(fd)
            break  # the trusted side never sends this: stop, and let it restart a clean zygote
        if op == "spawn" and len(fds) == 4:
            config = dict(message["config"], world=world, ipc_limits=base["ipc_limits"], hide=base["hide"])
            config["threads"] = base["threads"]
            pid = os.fork()
            if pid == 0:
                child_main(fds, config)
            for fd in fds:
                os.close(fd)
            children.add(pid)
            _send(control, {"id": request_id, "pid": pid})
        elif op == "reap":
            pid = message.get("pid")
            reply: dict[str, Any] = {"id": request_id, "pid": pid}
            reply.update(children.reap(pid, bool(message.get("wait"))) if type(pid) is int else {"status": None})
            _send(control, reply)
            if not use_seccomp:  # without the filter a child can fork: kill what it left (no walk otherwise)
                _kill_orphans(active)
        else:
            for fd in fds:
                os.close(fd)
            _send(control, {"id": request_id, "error": "unknown request"})
    for pid in active:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def _run_probe(config: dict[str, Any], protected: list[str]) -> dict[str, Any]:
    """Fork a child that builds the private world and reports what it could reach."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            report = probe_world(config, protected)
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 1 << 16):
        data += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    try:
        return dict(json.loads(data))
    except ValueError:
        return {"world": False, "error": "the probe child failed"}


if __name__ == "__main__":
    zygote_main()
