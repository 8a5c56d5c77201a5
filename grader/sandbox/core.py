"""The trusted side of the sandbox: start the warm zygote, open sessions, exchange frames with children.

Nothing here trusts the sandbox: every reply is read with a deadline and a size cap and decoded by
:mod:`grader.sandbox.wire`, which rebuilds plain arrays from raw bytes. Learner stdout and stderr
arrive on their own capped pipes; the protocol uses separate pipes that printed text cannot reach.
The trusted side never opens a path inside the sandbox: pipes and the control socket only.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import math
import os
import queue
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from grader.sandbox import wire
from grader.verdicts import Isolation, Verdict

log = logging.getLogger(__name__)

BWRAP = "/usr/bin/bwrap"
RUNNER = Path(__file__).with_name("runner.py")
WIRE = Path(__file__).with_name("wire.py")
START_TIMEOUT_S = 20.0
CONTROL_TIMEOUT_S = 10.0
TMP_SIZE_MIB = 16
F_SETPIPE_SZ = 1031
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|KEY|CREDENTIAL|DATABASE_URL|DSN", re.IGNORECASE)
DEFAULT_ALLOWED_IMPORTS = frozenset(
    {
        *("numpy", "math", "cmath", "functools", "itertools", "operator", "typing"),
        *("dataclasses", "collections", "numbers", "abc", "enum"),
    }
)
THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LANG": "C.UTF-8"}

T = TypeVar("T")
Value = Any  # float | int | bool | None | np.ndarray | tuple/list of Value | dict[str, Value]


@dataclass(frozen=True)
class Limits:
    """Resource limits of one session (one submission). Exercises may override any of them.

    ``cpu_time_s`` and ``wall_time_s`` bound the whole session, ``call_wall_time_s`` each call (and
    loading the code). ``memory_mib`` is what learner code may allocate on top of the warm
    interpreter. ``output_bytes`` caps stdout and stderr each. ``max_array_bytes`` caps the arrays
    of one message in either direction. ``source_bytes`` caps the submitted file.
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


class IsolationTooLow(SandboxUnavailable):
    """The measured isolation level is below the required minimum."""

    def __init__(self, measured: Isolation, required: Isolation) -> None:
        super().__init__(
            f"sandbox isolation is '{measured}' but at least '{required}' is required "
            f"(install bubblewrap at {BWRAP} and libseccomp2, or lower GRADER_MIN_ISOLATION)"
        )
        self.measured = measured
        self.required = required


def _secret_values() -> list[str]:
    values = [v for k, v in os.environ.items() if SECRET_NAME.search(k) and len(v) >= 8]
    try:
        from django.conf import settings

        if settings.configured and len(str(getattr(settings, "SECRET_KEY", ""))) >= 8:
            values.append(str(settings.SECRET_KEY))
    except ImportError:
        pass
    return sorted(set(values), key=len, reverse=True)


class Sandbox:
    """A warm zygote (NumPy imported once) from which every submission's child is forked.

    ``isolation`` is measured at start: ``namespaces+seccomp`` when the zygote runs in bubblewrap and
    the children's seccomp filter loads, ``namespaces`` with bubblewrap only, ``process`` without
    bubblewrap (rlimits, an unprivileged uid when started as root, seccomp if it loads).
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        control: socket.socket,
        isolation: Isolation,
        *,
        redact_secrets: bool,
        scratch: tempfile.TemporaryDirectory[str] | None,
    ) -> None:
        self._process = process
        self._control = control
        self._lock = threading.Lock()
        self._scratch = scratch
        self.isolation = isolation
        self.pid = process.pid
        self._secrets = _secret_values() if redact_secrets else []

    # ------------------------------------------------------------------ start
    @classmethod
    def start(
        cls,
        min_isolation: Isolation | str | None = None,
        *,
        use_bwrap: bool | None = None,
        redact_secrets: bool = True,
    ) -> Sandbox:
        """Start the zygote and measure the isolation level; raise IsolationTooLow when below ``min_isolation``.

        ``use_bwrap=None`` uses bubblewrap when it is installed (``GRADLAB_SANDBOX_BWRAP=0`` turns it
        off); without it the sandbox falls back to process isolation with a loud warning.
        """
        if use_bwrap is None:
            use_bwrap = os.environ.get("GRADLAB_SANDBOX_BWRAP", "1") != "0"
        sandbox: Sandbox | None = None
        if use_bwrap and os.access(BWRAP, os.X_OK):
            try:
                sandbox = cls._launch(bwrap=True, redact_secrets=redact_secrets)
            except SandboxUnavailable as error:
                log.warning("WARNING: bubblewrap is installed but could not start the sandbox: %s", error)
        elif use_bwrap:
            log.warning("WARNING: %s not found: learner code runs with PROCESS isolation only", BWRAP)
        if sandbox is None:
            sandbox = cls._launch(bwrap=False, redact_secrets=redact_secrets)
            log.warning(
                "WARNING: grader sandbox isolation is '%s' (no namespaces); fine for development, never for production",
                sandbox.isolation,
            )
        if min_isolation is not None:
            required = Isolation(min_isolation)
            if sandbox.isolation.rank < required.rank:
                sandbox.close()
                raise IsolationTooLow(sandbox.isolation, required)
        return sandbox

    @classmethod
    def _launch(cls, *, bwrap: bool, redact_secrets: bool) -> Sandbox:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        scratch = None
        if bwrap:
            command = _bwrap_command(theirs.fileno())
        else:
            scratch = tempfile.TemporaryDirectory(prefix="gradlab-sandbox-")
            command = _process_command(Path(scratch.name))
        env = dict(THREAD_ENV, GRADLAB_SANDBOX_FD=str(theirs.fileno()))
        if not bwrap:
            env["LD_LIBRARY_PATH"] = str(Path(sys.base_prefix) / "lib")
        try:
            process = _Launcher.run(
                lambda: subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    env=env,
                    pass_fds=(theirs.fileno(),),
                    start_new_session=True,
                    cwd="/",
                )
            )
        except OSError as error:
            ours.close()
            theirs.close()
            raise SandboxUnavailable(f"cannot start the sandbox: {error}") from None
        theirs.close()
        ours.settimeout(START_TIMEOUT_S)
        try:
            ready = json.loads(ours.recv(1 << 16) or b"null")
        except (OSError, ValueError):
            ready = None
        if not isinstance(ready, dict) or not ready.get("ok"):
            process.kill()
            detail = process.stderr.read(4000).decode("utf-8", "replace").strip() if process.stderr else ""
            process.wait()
            ours.close()
            if scratch is not None:
                scratch.cleanup()
            raise SandboxUnavailable(f"the sandbox zygote did not start: {detail[-2000:] or 'no output'}")
        if process.stderr is not None:
            process.stderr.close()  # the zygote prints nothing once ready; a write now just fails
        ours.settimeout(CONTROL_TIMEOUT_S)
        if bwrap:
            isolation = Isolation.NAMESPACES_SECCOMP if ready.get("seccomp") else Isolation.NAMESPACES
        else:
            isolation = Isolation.PROCESS
        log.info("grader sandbox started: isolation=%s seccomp=%s", isolation, ready.get("seccomp"))
        return cls(process, ours, isolation, redact_secrets=redact_secrets, scratch=scratch)

    # ------------------------------------------------------------------ lifecycle
    def is_alive(self) -> bool:
        """True while the zygote runs (the engine restarts a dead sandbox)."""
        return self._process.poll() is None

    def close(self) -> None:
        """Stop the zygote; with bubblewrap every process inside dies with it (PID namespace)."""
        with contextlib.suppress(OSError):
            self._control.close()
        if self._process.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.kill()
        self._process.wait()
        if self._scratch is not None:
            self._scratch.cleanup()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _control_request(self, message: dict[str, Any], fds: Sequence[int] = ()) -> dict[str, Any]:
        with self._lock:
            try:
                if fds:
                    socket.send_fds(self._control, [json.dumps(message).encode()], list(fds))
                else:
                    self._control.sendall(json.dumps(message).encode())
                data = self._control.recv(1 << 16)
                reply = json.loads(data) if data else None
            except (OSError, ValueError) as error:
                raise SandboxUnavailable(f"the sandbox zygote stopped answering: {error}") from None
        if not isinstance(reply, dict):
            raise SandboxUnavailable("the sandbox zygote is gone")
        return reply

    def redact(self, text: str) -> str:
        """``text`` with every known secret of this process replaced (defence in depth)."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return text

    # ------------------------------------------------------------------ sessions
    @contextlib.contextmanager
    def session(
        self,
        source: str | bytes,
        function_name: str,
        *,
        allowed_imports: frozenset[str] | set[str] | Sequence[str] = DEFAULT_ALLOWED_IMPORTS,
        limits: Limits | None = None,
        arg_names: Sequence[str] | None = None,
    ) -> Iterator[Session]:
        """Fork a fresh child, load ``source`` in it, and yield a Session that calls ``function_name``.

        ``allowed_imports`` are top-level module names learner code may import (``__future__`` always).
        Raises SandboxError before yielding when the source is too large or not UTF-8, does not
        compile (SYNTAX_ERROR with the line), imports a forbidden module (FORBIDDEN), fails while
        loading, or lacks the function; with ``arg_names`` it also checks the function accepts them.
        On exit the child and everything it started are killed.
        """
        limits = limits or Limits()
        text = _check_source(source, limits)
        session = Session(self, function_name, limits)
        try:
            session._spawn(
                {
                    "function": function_name,
                    "allowed_imports": sorted(set(allowed_imports)),
                    "arg_names": list(arg_names) if arg_names is not None else None,
                    "limits": asdict(limits),
                },
                text,
            )
            yield session
        finally:
            session.close()


class _Launcher:
    """Starts zygotes from a thread that lives as long as the process.

    bubblewrap's ``--die-with-parent`` is PR_SET_PDEATHSIG, which fires when the *thread* that
    started it exits: a sandbox started from a request thread would die with the request.
    """

    jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]]] | None = None
    lock = threading.Lock()

    @classmethod
    def run(cls, job: Callable[[], T]) -> T:
        if threading.current_thread() is threading.main_thread():
            return job()
        with cls.lock:
            if cls.jobs is None:
                cls.jobs = queue.Queue()
                threading.Thread(target=cls._serve, args=(cls.jobs,), name="sandbox-launcher", daemon=True).start()
            jobs = cls.jobs
        future: Future[T] = Future()
        jobs.put((job, future))
        return future.result()

    @staticmethod
    def _serve(jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]]]) -> None:
        while True:
            job, future = jobs.get()
            try:
                future.set_result(job())
            except BaseException as error:  # handed to the waiting thread
                future.set_exception(error)


def _check_source(source: str | bytes, limits: Limits) -> str:
    if isinstance(source, bytes):
        try:
            data, text = source, source.decode("utf-8")
        except UnicodeDecodeError as error:
            raise SandboxError(
                Verdict.SYNTAX_ERROR,
                f"your file is not UTF-8 text (byte 0x{source[error.start]:02x} at offset {error.start}); "
                "save it as UTF-8",
            ) from None
    else:
        try:
            data, text = source.encode("utf-8"), source
        except UnicodeEncodeError:
            raise SandboxError(Verdict.SYNTAX_ERROR, "your file is not valid UTF-8 text; save it as UTF-8") from None
    if len(data) > limits.source_bytes:
        raise SandboxError(
            Verdict.FORBIDDEN,
            f"your file is {len(data) // 1024} KiB; files over {limits.source_bytes // 1024} KiB are not accepted",
        )
    if "\x00" in text:
        raise SandboxError(Verdict.SYNTAX_ERROR, "your file contains a NUL character; save it as plain text")
    return text


class _FrameReader:
    """Incremental reader of one reply frame, enforcing the header and buffer caps as bytes arrive."""

    def __init__(self, max_buffer_bytes: int) -> None:
        self.max_buffer_bytes = max_buffer_bytes
        self.data = bytearray()
        self.header: dict[str, Any] | None = None
        self.total: int | None = None

    def feed(self, chunk: bytes) -> bool:
        """Add bytes; True once the frame is complete. Raises WireError on any violation."""
        self.data += chunk
        prefix = wire.HEADER_LENGTH.size
        if self.header is None and len(self.data) >= prefix:
            (length,) = wire.HEADER_LENGTH.unpack_from(self.data)
            if length > wire.MAX_HEADER_BYTES:
                raise wire.WireError("header too large")
            if len(self.data) >= prefix + length:
                self.header = wire.parse_header(bytes(self.data[prefix : prefix + length]))
                payload = sum(self.header["buffers"])
                if payload > self.max_buffer_bytes:
                    raise _TooLarge(payload)
                self.total = prefix + length + payload
        if self.total is None:
            return False
        if len(self.data) > self.total:
            raise wire.WireError("unexpected bytes after a frame")
        return len(self.data) == self.total

    def buffers(self) -> list[bytearray]:
        assert self.header is not None and self.total is not None
        view = memoryview(self.data)
        start = self.total - sum(self.header["buffers"])
        result = []
        for size in self.header["buffers"]:
            result.append(bytearray(view[start : start + size]))
            start += size
        return result


class _TooLarge(wire.WireError):
    def __init__(self, size: int) -> None:
        super().__init__("too large")
        self.size = size


class Session:
    """One submission's child process. Calls are synchronous; the child lives across calls."""

    def __init__(self, sandbox: Sandbox, function_name: str, limits: Limits) -> None:
        self.sandbox = sandbox
        self.function_name = function_name
        self.limits = limits
        self._pid: int | None = None
        self._fds: dict[str, int] = {}
        self._out = bytearray()
        self._err = bytearray()
        self._deadline = math.inf
        self._closed = False
        self.calls = 0

    @property
    def stdout(self) -> str:
        """Learner stdout so far, capped at ``limits.output_bytes``."""
        return self.sandbox.redact(self._out[: self.limits.output_bytes].decode("utf-8", "replace"))

    @property
    def stderr(self) -> str:
        """Learner stderr so far, capped at ``limits.output_bytes``."""
        return self.sandbox.redact(self._err[: self.limits.output_bytes].decode("utf-8", "replace"))

    # ------------------------------------------------------------------ public
    def call(self, *args: Value) -> Value:
        """Call the learner's function with ``args``; return its result rebuilt from raw buffers."""
        return self._call(args, return_inputs=False)[0]

    def call_with_inputs(self, *args: Value) -> tuple[Value, tuple[Value, ...]]:
        """Like :meth:`call`, plus the arguments as the child holds them after the call.

        Lets the caller detect in-place modification of inputs (compare with what it sent).
        """
        result, inputs = self._call(args, return_inputs=True)
        if type(inputs) is not tuple or len(inputs) != len(args):
            raise self._error(Verdict.RUNTIME_ERROR, "the grader could not read back the inputs")
        return result, inputs

    def close(self) -> None:
        """Kill the child and everything it started, and release the pipes (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._reap()
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()

    # ------------------------------------------------------------------ internals
    def _spawn(self, config: dict[str, Any], source: str) -> None:
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        theirs = (request_r, reply_w, out_w, err_w)
        self._fds = {"request": request_w, "reply": reply_r, "out": out_r, "err": err_r}
        try:
            for fd in (request_w, reply_r):
                with contextlib.suppress(OSError):
                    fcntl.fcntl(fd, F_SETPIPE_SZ, 1 << 20)
            reply = self.sandbox._control_request({"op": "spawn", "config": config}, theirs)
        finally:
            for fd in theirs:
                os.close(fd)
        pid = reply.get("pid")
        if type(pid) is not int or pid <= 0:
            raise SandboxUnavailable("the sandbox zygote did not fork a child")
        self._pid = pid
        for fd in self._fds.values():
            os.set_blocking(fd, False)
        now = time.monotonic()
        self._deadline = now + self.limits.wall_time_s
        header, _ = self._exchange({"kind": "load", "source": source}, [], during="loading your code")
        if header.get("kind") != "ready":
            raise self._error(Verdict.RUNTIME_ERROR, "the grader received an unexpected reply")

    def _call(self, args: tuple[Value, ...], *, return_inputs: bool) -> tuple[Value, Value]:
        if self._closed or self._pid is None:
            raise SandboxUnavailable("this session is closed")
        buffers: list[memoryview] = []
        try:
            node = wire.encode_value(tuple(args), buffers)
        except wire.UnsupportedValue as error:
            raise TypeError(f"cannot send {error.what} to the sandbox") from None
        self.calls += 1
        header, data = self._exchange(
            {"kind": "call", "args": node, "return_inputs": return_inputs}, buffers, during="running your code"
        )
        if header.get("kind") != "result" or set(header) != {"kind", "value", "inputs", "buffers"}:
            raise self._protocol_violation()
        try:
            decoder_buffers = data
            value, inputs = wire.decode_value(
                {"t": "tuple", "items": [header["value"], header["inputs"] or {"t": "none"}]}, decoder_buffers
            )
        except wire.WireError:
            raise self._protocol_violation() from None
        return value, inputs

    def _exchange(
        self, header: dict[str, Any], buffers: list[memoryview], *, during: str
    ) -> tuple[dict[str, Any], list[bytearray]]:
        """Send one request frame and read one reply frame, pumping stdout/stderr meanwhile."""
        pending = [memoryview(piece).cast("B") for piece in wire.pack(header, buffers)]
        deadline = min(self._deadline, time.monotonic() + self.limits.call_wall_time_s)
        reader = _FrameReader(self.limits.max_array_bytes)
        poller = select.poll()
        names = {}
        for name in ("reply", "out", "err"):
            poller.register(self._fds[name], select.POLLIN)
            names[self._fds[name]] = name
        request_fd = self._fds["request"]
        poller.register(request_fd, select.POLLOUT)
        names[request_fd] = "request"
        reply_open = True
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._reap()
                session_wide = deadline >= self._deadline
                limit = self.limits.wall_time_s if session_wide else self.limits.call_wall_time_s
                raise self._error(
                    Verdict.TIME_LIMIT_EXCEEDED, f"your code took longer than {limit:g} s (wall clock) {during}"
                )
            for fd, event in poller.poll(max(1, int(remaining * 1000))):
                name = names[fd]
                if name == "request":
                    if event & (select.POLLERR | select.POLLHUP):
                        poller.unregister(fd)  # the child is gone; its EOF on reply tells how
                        continue
                    while pending:
                        try:
                            written = os.write(fd, pending[0])
                        except BlockingIOError:
                            break
                        except BrokenPipeError:
                            pending.clear()
                            break
                        pending[0] = pending[0][written:]
                        if not pending[0]:
                            pending.pop(0)
                    if not pending:
                        poller.unregister(fd)
                    continue
                if name in ("out", "err"):
                    if not self._pump(fd, name):
                        poller.unregister(fd)
                    continue
                while reply_open:
                    try:
                        chunk = os.read(fd, 1 << 20)
                    except BlockingIOError:
                        break
                    except OSError:
                        chunk = b""
                    if not chunk:
                        reply_open = False
                        poller.unregister(fd)
                        break
                    try:
                        complete = reader.feed(chunk)
                    except _TooLarge as error:
                        self._reap()
                        raise self._error(
                            Verdict.RUNTIME_ERROR,
                            f"{self.function_name} returned {error.size / 2**20:.1f} MiB of arrays, over the "
                            f"limit of {self.limits.max_array_bytes / 2**20:.0f} MiB",
                        ) from None
                    except wire.WireError:
                        raise self._protocol_violation() from None
                    if complete:
                        self._drain_output()
                        return self._interpret(reader)
            if not reply_open:
                raise self._death_error(during)

    def _interpret(self, reader: _FrameReader) -> tuple[dict[str, Any], list[bytearray]]:
        header = reader.header
        assert header is not None
        if header.get("kind") == "error":
            verdict = header.get("verdict")
            message = header.get("message")
            line = header.get("line")
            allowed = {
                Verdict.SYNTAX_ERROR,
                Verdict.RUNTIME_ERROR,
                Verdict.FORBIDDEN,
                Verdict.MEMORY_LIMIT_EXCEEDED,
            }
            if verdict not in {v.value for v in allowed} or type(message) is not str:
                raise self._protocol_violation()
            if type(line) is not int or not 0 < line < 10**7:
                line = None
            raise self._error(Verdict(verdict), message[:2000], line=line)
        return header, reader.buffers()

    def _pump(self, fd: int, name: str) -> bool:
        """Read what learner output is available; False at EOF. Over the cap: kill, OUTPUT_LIMIT_EXCEEDED."""
        store = self._out if name == "out" else self._err
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            store += chunk
            if len(store) > self.limits.output_bytes:
                del store[self.limits.output_bytes :]
                self._reap()
                stream = "stdout" if name == "out" else "stderr"
                raise self._error(
                    Verdict.OUTPUT_LIMIT_EXCEEDED,
                    f"your code printed more than {self.limits.output_bytes // 1024} KiB to {stream}",
                )

    def _drain_output(self) -> None:
        for name in ("out", "err"):
            self._pump(self._fds[name], name)

    def _reap(self) -> dict[str, Any]:
        """Kill the child's process group and wait for it; its exit status and CPU time (once)."""
        if self._pid is None:
            return getattr(self, "_death", {})
        pid, self._pid = self._pid, None
        try:
            self._death = self.sandbox._control_request({"op": "reap", "pid": pid})
        except SandboxUnavailable:
            self._death = {}
        with contextlib.suppress(OSError):
            self._drain_output()
        return self._death

    def _death_error(self, during: str) -> SandboxError:
        with contextlib.suppress(SandboxError):
            self._drain_output()
        info = self._reap()
        if not self.sandbox.is_alive():  # the zygote went down (killed, OOM): not the learner's doing
            raise SandboxUnavailable("the sandbox stopped while grading; it must be restarted")
        status = info.get("status")
        cpu = info.get("cpu_s")
        if type(status) is not int:
            return self._error(Verdict.RUNTIME_ERROR, f"your code stopped {during}")
        if os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            try:
                name = signal.Signals(number).name
            except ValueError:
                name = f"signal {number}"
            cpu_spent = isinstance(cpu, int | float) and cpu >= self.limits.cpu_time_s - 0.05
            if number == signal.SIGXCPU or (number == signal.SIGKILL and cpu_spent):
                return self._error(
                    Verdict.TIME_LIMIT_EXCEEDED, f"your code used more than {self.limits.cpu_time_s:g} s of CPU time"
                )
            if number == signal.SIGXFSZ:
                return self._error(Verdict.RUNTIME_ERROR, "your code wrote a file larger than allowed")
            hint = ""
            if number == signal.SIGSEGV:
                hint = " (often unbounded recursion or a crash in native code)"
            return self._error(Verdict.RUNTIME_ERROR, f"your code crashed (signal {name}){hint} {during}")
        code = os.waitstatus_to_exitcode(status)
        return self._error(Verdict.RUNTIME_ERROR, f"your code exited before returning (exit status {code})")

    def _protocol_violation(self) -> SandboxError:
        self._reap()
        return self._error(
            Verdict.RUNTIME_ERROR,
            "your code interfered with the grader's channel (unreadable reply); do not write to unknown files",
        )

    def _error(self, verdict: Verdict, message: str, *, line: int | None = None) -> SandboxError:
        return SandboxError(verdict, self.sandbox.redact(message), line=line, stdout=self.stdout, stderr=self.stderr)


def _python_paths() -> tuple[Path, Path, Path, Path | None, Path | None]:
    """(prefix, interpreter, numpy folder, numpy.libs folder, pyseccomp file)."""
    prefix = Path(sys.base_prefix).resolve()
    interpreter = Path(sys.executable).resolve()
    numpy_dir = Path(np.__file__).resolve().parent
    libs = numpy_dir.parent / "numpy.libs"
    spec = importlib.util.find_spec("pyseccomp")
    seccomp_file = Path(spec.origin).resolve() if spec and spec.origin else None
    return prefix, interpreter, numpy_dir, libs if libs.is_dir() else None, seccomp_file


def _bwrap_command(control_fd: int) -> list[str]:
    """bwrap arguments: only /usr, the interpreter, NumPy and the two runner files, all read-only."""
    prefix, interpreter, numpy_dir, libs, seccomp_file = _python_paths()
    inner_prefix = "/opt/python"
    inner_python = f"{inner_prefix}/{interpreter.relative_to(prefix)}"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    command = [
        BWRAP,
        "--unshare-all",
        "--unshare-user",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--as-pid-1",  # the zygote is the namespace's init: no other unfiltered process in there
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for name in ("lib", "lib64", "bin", "sbin"):
        target = Path("/") / name
        if target.is_symlink():
            command += ["--symlink", os.readlink(target), f"/{name}"]
        elif target.is_dir():
            command += ["--ro-bind", str(target), f"/{name}"]
    command += ["--ro-bind", str(interpreter), inner_python]
    for library in sorted((prefix / "lib").glob("libpython*.so*")):
        command += ["--ro-bind", str(library), f"{inner_prefix}/lib/{library.name}"]
    command += [
        "--ro-bind",
        str(prefix / "lib" / version),
        f"{inner_prefix}/lib/{version}",
        "--tmpfs",
        f"{inner_prefix}/lib/{version}/site-packages",  # hide the base interpreter's own packages
        "--ro-bind",
        str(numpy_dir),
        "/opt/site/numpy",
    ]
    if libs is not None:
        command += ["--ro-bind", str(libs), "/opt/site/numpy.libs"]
    if seccomp_file is not None:
        command += ["--ro-bind", str(seccomp_file), "/opt/site/pyseccomp.py"]
    command += [
        "--ro-bind",
        str(RUNNER),
        "/opt/sandbox/runner.py",
        "--ro-bind",
        str(WIRE),
        "/opt/sandbox/wire.py",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(TMP_SIZE_MIB * 1024 * 1024),
        "--tmpfs",
        "/tmp",  # noqa: S108 - the sandbox's own size-capped tmpfs
        "--remount-ro",
        "/",
        "--chdir",
        "/tmp",  # noqa: S108
        "--setenv",
        "LD_LIBRARY_PATH",
        f"{inner_prefix}/lib",
        "--setenv",
        "PATH",
        "/usr/bin",
        "--setenv",
        "HOME",
        "/tmp",  # noqa: S108
        "--setenv",
        "GRADLAB_SANDBOX_PRIVATE_TMP",
        "1",
        "--setenv",
        "GRADLAB_SANDBOX_FD",
        str(control_fd),
    ]
    for key, value in THREAD_ENV.items():
        command += ["--setenv", key, value]
    command += [inner_python, "-I", "-S", "-B", "/opt/sandbox/runner.py", "/opt/site"]
    return command


def _process_command(scratch: Path) -> list[str]:
    """Without bubblewrap: the same runner, with a path holding only NumPy (and pyseccomp) links."""
    _, interpreter, numpy_dir, libs, seccomp_file = _python_paths()
    site = scratch / "site"
    site.mkdir()
    (site / "numpy").symlink_to(numpy_dir)
    if libs is not None:
        (site / "numpy.libs").symlink_to(libs)
    if seccomp_file is not None:
        (site / "pyseccomp.py").symlink_to(seccomp_file)
    os.chmod(scratch, 0o755)  # noqa: S103 - readable by the unprivileged uid the children switch to
    return [str(interpreter), "-I", "-S", "-B", str(RUNNER), str(site)]


def bwrap_available() -> bool:
    """True when Debian's bubblewrap is installed where the sandbox looks for it."""
    return os.access(BWRAP, os.X_OK) and shutil.which(BWRAP) is not None


__all__ = ["IsolationTooLow", "Limits", "Sandbox", "SandboxError", "SandboxUnavailable", "Session"]
