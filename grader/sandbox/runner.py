"""The sandbox side: a warm fork server (zygote) and the per-submission child that runs learner code.

Run as a script (``python -I -S -B runner.py``), inside bubblewrap when available. It imports only
the standard library, NumPy, ``wire`` (its sibling file) and, when present, ``pyseccomp``; never the
project package. The trusted side (``grader.sandbox.core``) talks to it over a SOCK_SEQPACKET control
socket on fd 3:

- ``{"op": "spawn", "config": {...}}`` with four file descriptors (request read end, reply write end,
  stdout and stderr write ends): fork a child, reply ``{"pid": n}``;
- ``{"op": "reap", "pid": n}``: kill the child's process group, wait for it, reply its status, CPU
  time and peak memory, then kill any orphan and empty ``/tmp``.

A child locks itself down (new session and process group, closed fds, unprivileged uid when run as
root, rlimits, NO_NEW_PRIVS, seccomp filter) BEFORE it reads the learner's source from its request
pipe; then it compiles and executes the source with an import guard, and serves call requests.
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
import time
from typing import TYPE_CHECKING, Any

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), *sys.argv[1:]]

import numpy as np  # noqa: E402

if TYPE_CHECKING:
    from grader.sandbox import wire
else:
    import wire

# Protocol fds live far from the small numbers learner code would guess (and above its NOFILE limit).
REQUEST_FD = max(100, min(1000, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 2))
REPLY_FD = REQUEST_FD + 1
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
# signalling other processes, mounts and privilege changes do not.
DENIED_SYSCALLS = (
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

PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def _prctl(option: int, value: int) -> bool:
    return _libc is not None and _libc.prctl(option, value, 0, 0, 0) == 0


def compile_filter() -> Any:
    """Build the deny-list filter once, in the zygote, as a ready ``sock_fprog`` (or None).

    The program depends on nothing per child (signals may only go to the own process group, whose
    only member is the child), so each child loads it with one prctl instead of compiling it.
    """
    if seccomp is None:
        return None
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    eperm = seccomp.ERRNO(1)
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(eperm, name)
        except (OSError, ValueError, RuntimeError):
            continue  # a syscall this architecture does not have
    rules.add_rule(seccomp.ERRNO(38), "clone3")  # ENOSYS: glibc retries with clone, whose flags we see
    rules.add_rule(eperm, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))
    rules.add_rule(eperm, "kill", seccomp.Arg(0, seccomp.NE, 0))  # kill(0, ...) reaches only the child
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


# ----------------------------------------------------------------------------- child: lock down


def _read_exact(fd: int, count: int) -> bytearray:
    data = bytearray()
    while len(data) < count:
        chunk = os.read(fd, min(count - len(data), 1 << 20))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_frame(fd: int, max_buffer_bytes: int) -> tuple[dict[str, Any], list[bytearray]]:
    """Read one frame from the trusted side (blocking)."""
    (length,) = wire.HEADER_LENGTH.unpack(_read_exact(fd, wire.HEADER_LENGTH.size))
    if length > wire.MAX_HEADER_BYTES:
        raise wire.WireError("header too large")
    header = wire.parse_header(bytes(_read_exact(fd, length)))
    if sum(header["buffers"]) > max_buffer_bytes:
        raise wire.WireError("buffers too large")
    return header, [_read_exact(fd, n) for n in header["buffers"]]


def write_frame(fd: int, header: dict[str, Any], buffers: list[memoryview] | None = None) -> None:
    for piece in wire.pack(header, buffers or []):
        view = memoryview(piece)
        while view:
            view = view[os.write(fd, view) :]


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
    os.chdir("/")
    if config.get("private_tmp"):  # a fresh folder of the sandbox's own tmpfs, emptied after the session
        tmp_dir = f"/tmp/session-{os.getpid()}"  # noqa: S108
        try:
            os.mkdir(tmp_dir, 0o700)
            os.chdir(tmp_dir)
        except OSError:
            pass
    if os.getuid() == 0:  # process-level isolation run by root: become nobody, so that NPROC binds
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)  # no ptrace attach or /proc/<pid>/mem from anything of the same uid

    limits = config["limits"]
    cpu = max(1, int(limits["cpu_time_s"] + 0.999))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = _virtual_bytes() + int(limits["memory_mib"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    file_bytes = int(limits["file_size_mib"] * 1024 * 1024)
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(limits["open_files"]), int(limits["open_files"])))
    tasks = _count_own_tasks(os.getuid()) + int(limits["max_threads"]) + int(limits["max_processes"]) - 1
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
            refused = level != 0 or (top not in allowed and top != "__future__")
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
    text = str(error)
    if len(text) > 500:
        text = text[:500] + "..."
    name = type(error).__name__
    return "runtime_error", (f"{name}: {text}" if text else name) + where, line


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
    header, _ = read_frame(REQUEST_FD, 0)
    try:
        function = load_learner(config, header["source"])
    except BaseException as error:
        send_error(*_describe_exception(error))
        return
    flush_output()
    write_frame(REPLY_FD, {"kind": "ready"})
    encode, decode = wire.encode_value, wire.decode_value
    while True:
        try:
            header, buffers = read_frame(REQUEST_FD, max_bytes)
        except EOFError:
            return
        args = decode(header["args"], buffers)
        try:
            result = function(*args)
        except BaseException as error:
            send_error(*_describe_exception(error))
            continue
        out: list[memoryview] = []
        try:
            node = encode(result, out)
            inputs = encode(args, out) if header.get("return_inputs") else None
        except wire.UnsupportedValue as error:
            send_error(
                "runtime_error",
                f"{function_name} returned {error.what}; return numbers or NumPy arrays "
                "(or tuples, lists or dicts of them)",
                None,
            )
            continue
        except BaseException as error:
            send_error(*_describe_exception(error))
            continue
        total = sum(len(b) for b in out)
        if total > max_bytes:
            send_error(
                "runtime_error",
                f"{function_name} returned {total / 2**20:.1f} MiB of arrays, over the limit of "
                f"{max_bytes / 2**20:.0f} MiB",
                None,
            )
            continue
        flush_output()
        write_frame(REPLY_FD, {"kind": "result", "value": node, "inputs": inputs}, out)


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


def _wipe_tmp(keep: set[str]) -> None:
    """Empty /tmp between sessions, never following a link the learner planted."""
    import shutil

    try:
        entries = os.listdir("/tmp")  # noqa: S108 - the sandbox's private tmpfs, not the host's
    except OSError:
        return
    for entry in entries:
        if entry in keep:
            continue
        path = os.path.join("/tmp", entry)  # noqa: S108
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            continue


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


def zygote_main() -> None:
    for name in PRELOADED:
        __import__(name)
    np.zeros(1) @ np.zeros(1)  # warm BLAS once here, not in every child
    control = socket.socket(fileno=int(os.environ["GRADLAB_SANDBOX_FD"]))
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    # Not dumpable: a child of the same uid must not open /proc/<zygote>/mem and write into this
    # unfiltered process (ptrace access then needs CAP_SYS_PTRACE, which nothing in here has).
    _prctl(PR_SET_DUMPABLE, 0)
    private_tmp = os.environ.get("GRADLAB_SANDBOX_PRIVATE_TMP") == "1"
    global FILTER  # noqa: PLW0603 - set once, before any fork, read by every child
    try:
        FILTER = compile_filter()
    except Exception:
        FILTER = None
    use_seccomp = _probe_seccomp()
    if not use_seccomp:
        FILTER = None
    gc.collect()
    gc.freeze()  # children then do not dirty the warm heap's pages just by collecting garbage
    ready = {"ok": True, "seccomp": use_seccomp, "uid": os.getuid(), "private_tmp": private_tmp}
    control.sendall(json.dumps(ready).encode())
    active: set[int] = set()
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, 1 << 16, 8)
        except OSError:
            break
        if not data:
            break
        try:
            message = json.loads(data)
        except ValueError:
            for fd in fds:
                os.close(fd)
            continue
        if message.get("op") == "spawn" and len(fds) == 4:
            config = dict(message["config"], private_tmp=private_tmp)
            pid = os.fork()
            if pid == 0:
                child_main(fds, config)
            for fd in fds:
                os.close(fd)
            active.add(pid)
            control.sendall(json.dumps({"pid": pid}).encode())
        elif message.get("op") == "reap":
            pid = int(message["pid"])
            reply: dict[str, Any] = {"pid": pid, "status": None}
            if pid in active:
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                _, status, usage = os.wait4(pid, 0)
                active.discard(pid)
                reply.update(
                    status=status,
                    cpu_s=usage.ru_utime + usage.ru_stime,
                    maxrss_kib=usage.ru_maxrss,
                )
            control.sendall(json.dumps(reply).encode())
            # Off the trusted side's critical path, before the next request is read: with seccomp a
            # child cannot leave orphans, without it (process isolation) they are killed here.
            _kill_orphans(active)
            if private_tmp:
                _wipe_tmp({f"session-{p}" for p in active})
        else:
            for fd in fds:
                os.close(fd)
    for pid in active:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0)


if __name__ == "__main__":
    zygote_main()
