"""One submission's child: load its code, call its function, read its replies with deadlines and caps.

Nothing here trusts the child: every reply is read with a deadline and a size cap and decoded by
:mod:`grader.sandbox.wire`, which rebuilds plain arrays from raw bytes. Learner stdout and stderr
arrive on their own capped pipes; the protocol uses separate pipes that printed text cannot reach.
The pipes are made for this session only, so no reply of one session can reach another.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import select
import signal
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from grader.sandbox import wire
from grader.sandbox.limits import Limits, SandboxError, SandboxLost, SandboxUnavailable, Tries
from grader.verdicts import Verdict

if TYPE_CHECKING:
    from grader.sandbox.core import Sandbox

F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20  # the request and reply pipes' capacity, when the system allows it
READ_BYTES = 1 << 16  # the most one read of the reply takes (a larger reply takes more reads)
# The verdicts a child may report in an error frame (anything else there is a forged frame).
CHILD_VERDICTS = frozenset(
    v.value for v in (Verdict.SYNTAX_ERROR, Verdict.RUNTIME_ERROR, Verdict.FORBIDDEN, Verdict.MEMORY_LIMIT_EXCEEDED)
)
Value = Any  # float | int | bool | None | np.ndarray | tuple/list of Value | dict[str, Value]


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
    if text.startswith("\ufeff"):  # a UTF-8 byte order mark, as some editors save files
        text = text[1:]
    if "\x00" in text:
        raise SandboxError(Verdict.SYNTAX_ERROR, "your file contains a NUL character; save it as plain text")
    return text


class Session:
    """One submission's child process. Calls are synchronous; the child lives across calls.

    Opened by :meth:`Sandbox.session` (``with sandbox.session(...) as session:``); a Session is also
    its own context manager, closed (the child killed and reaped) on leaving the block.

    ``idle``, when given, is trusted work to do instead of waiting for the child: while no reply
    (and no output) is ready, the session calls it, one small piece of work a call, until it returns
    False (nothing left); what it computes is the caller's business. If it raises, the child is
    killed (its reply would come out of turn) and the error propagates from the call.
    """

    def __init__(
        self,
        sandbox: Sandbox,
        function_name: str,
        limits: Limits,
        tries: Tries | None = None,
        idle: Callable[[], bool] | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.tries = tries if tries is not None else Tries()
        self.function_name = function_name
        self.limits = limits
        self.idle = idle
        self._pid: int | None = None
        self._fds: dict[str, int] = {}
        # One poller for the session's life: reply, stdout and stderr while they are open, the
        # request pipe only while a request waits for room in it.
        self._poller = select.poll()
        self._watched: dict[int, str] = {}
        self._chunk = bytearray(READ_BYTES)  # each read of the reply lands here, then in the frame
        self._leftover = b""  # a streamed reply's bytes that belong to the next frame
        self._out = bytearray()
        self._err = bytearray()
        self._deadline = math.inf
        self._closed = False
        self._generation = -1  # which zygote forked the child

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

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
                    fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)
            self._pid, self._generation = self.sandbox._spawn_child(config, theirs, self.tries)
        finally:
            for fd in theirs:
                os.close(fd)
        for fd in self._fds.values():
            os.set_blocking(fd, False)
        for name in ("reply", "out", "err"):
            self._watch(self._fds[name], name, select.POLLIN)
        now = time.monotonic()
        self._deadline = now + self.limits.wall_time_s
        header, _ = self._exchange({"kind": "load", "source": source}, [], during="loading your code")
        if header.get("kind") != "ready":
            raise self._protocol_violation()

    def _call(self, args: tuple[Value, ...], *, return_inputs: bool) -> tuple[Value, Value]:
        if self._closed or self._pid is None:
            raise SandboxUnavailable("this session is closed")
        buffers: list[memoryview] = []
        try:
            node = wire.encode_value(tuple(args), buffers)
        except wire.UnsupportedValue as error:
            raise TypeError(f"cannot send {error.what} to the sandbox") from None
        header, data = self._exchange(
            {"kind": "call", "args": node, "return_inputs": return_inputs}, buffers, during="running your code"
        )
        try:
            return wire.result_fields(header, data)
        except wire.WireError:
            raise self._protocol_violation() from None

    def _exchange(
        self, header: dict[str, Any], buffers: list[memoryview], *, during: str
    ) -> tuple[dict[str, Any], list[wire.Buffer]]:
        """Send one request frame and read one reply frame, pumping stdout/stderr meanwhile.

        A request that fits in the pipe goes out in one writev, without a poll; the child writes its
        reply in one writev too, so a reply that fits in the pipe is read in one poll and one read.
        """
        pending = [memoryview(piece).cast("B") for piece in wire.pack(header, buffers) if len(piece)]
        deadline = min(self._deadline, time.monotonic() + self.limits.call_wall_time_s)
        reader = wire.FrameReader(self.limits.max_array_bytes)
        request_fd = self._fds["request"]
        _write_some(request_fd, pending)
        if pending:
            self._watch(request_fd, "request", select.POLLOUT)
        try:
            return self._await_reply(reader, pending, deadline, during, self.idle)
        finally:
            if request_fd in self._watched:
                self._unwatch(request_fd)

    def stream(self, run: dict[str, Any], arrays: dict[str, Value]) -> Generator[Value, None, None]:
        """Have the child make a training run's calls itself and yield each call's result as it comes.

        The child runs `run` (plain JSON: the network's name, steps, rate, the function's argument
        and output names) from `arrays` (its parameters and batch) with runner.py's ``train_here``,
        replying once per call of the learner's function as to a plain call (no inputs back), and
        stops after an error or a gradient that cannot be used. Each result has a call's deadline,
        counted from the previous one; an error frame raises its SandboxError. A stream is the
        session's last use: once the generator is closed the child is killed, so nothing it still
        sends can be read as another reply.
        """
        if self._closed or self._pid is None:
            raise SandboxUnavailable("this session is closed")
        buffers: list[memoryview] = []
        node = wire.encode_value(arrays, buffers)
        pending = [
            memoryview(piece).cast("B")
            for piece in wire.pack({"kind": "train", "run": run, "args": node, "return_inputs": False}, buffers)
            if len(piece)
        ]
        request_fd = self._fds["request"]
        started = time.monotonic()
        _write_some(request_fd, pending)
        if pending:
            self._watch(request_fd, "request", select.POLLOUT)
        self._leftover = b""
        try:
            while True:
                deadline = min(self._deadline, started + self.limits.call_wall_time_s)
                reader = wire.FrameReader(self.limits.max_array_bytes)
                header, data = self._await_reply(
                    reader, pending, deadline, "running your code", self.idle, streaming=True
                )
                started = time.monotonic()  # the child went on with the next call when it sent this reply
                try:
                    value, _ = wire.result_fields(header, data)
                except wire.WireError:
                    raise self._protocol_violation() from None
                yield value
        finally:
            if request_fd in self._watched:
                self._unwatch(request_fd)
            self._reap()

    def _await_reply(
        self,
        reader: wire.FrameReader,
        pending: list[memoryview],
        deadline: float,
        during: str,
        idle: Callable[[], bool] | None,
        *,
        streaming: bool = False,
    ) -> tuple[dict[str, Any], list[wire.Buffer]]:
        """Read one reply frame. `streaming`: frames follow each other, so bytes past this frame's end
        are kept for the next (any other reply is a frame alone in the pipe)."""
        reply_open = True
        chunk = memoryview(self._chunk)
        if streaming and self._leftover and self._feed(reader, self._leftover, streaming):
            self._drain_output()
            return self._interpret(reader)
        while True:
            events = self._next_events(deadline, idle)
            if events is None:
                self._reap()
                session_wide = deadline >= self._deadline
                limit = self.limits.wall_time_s if session_wide else self.limits.call_wall_time_s
                raise self._error(
                    Verdict.TIME_LIMIT_EXCEEDED, f"your code took longer than {limit:g} s (wall clock) {during}"
                )
            for fd, event in events:
                name = self._watched.get(fd)
                if name == "request":
                    if event & (select.POLLERR | select.POLLHUP):
                        self._unwatch(fd)  # the child is gone; its EOF on reply tells how
                        continue
                    _write_some(fd, pending)
                    if not pending:
                        self._unwatch(fd)
                    continue
                if name in ("out", "err"):
                    if not self._pump(fd, name):
                        self._unwatch(fd)
                    continue
                while name == "reply" and reply_open:
                    try:
                        count = os.readv(fd, [chunk])
                    except BlockingIOError:
                        break
                    except OSError:
                        count = 0
                    if not count:
                        reply_open = False
                        self._unwatch(fd)
                        break
                    if self._feed(reader, chunk[:count], streaming):
                        self._drain_output()
                        return self._interpret(reader)
            if not reply_open:
                if reader.received:  # the pipe closed in the middle of a frame: not one the runner wrote
                    self._check_zygote()  # unless the zygote went down under the child
                    raise self._protocol_violation()
                raise self._death_error(during)

    def _feed(self, reader: wire.FrameReader, data: wire.Buffer, streaming: bool) -> bool:
        """Give `data` to the frame being read; True once it is complete. Streaming, what follows is kept."""
        try:
            if not streaming:
                return reader.feed(data)
            used = reader.feed_some(data)
            self._leftover = bytes(data[used:])
            return reader.complete
        except wire.FrameTooLarge as error:
            self._reap()
            raise self._error(
                Verdict.RUNTIME_ERROR,
                f"{self.function_name} returned {error.size / 2**20:.1f} MiB of arrays, over the "
                f"limit of {self.limits.max_array_bytes / 2**20:.0f} MiB",
            ) from None
        except wire.WireError:
            raise self._protocol_violation() from None

    def _next_events(self, deadline: float, idle: Callable[[], bool] | None) -> list[tuple[int, int]] | None:
        """The pipes' next events (possibly none yet), or None when ``deadline`` has passed.

        The idle work runs first, a piece at a time while nothing is ready: the pipes are looked at
        after every piece, so a reply that came in meanwhile is taken whatever the piece took.
        """
        poll = self._poller.poll
        if idle is not None:
            try:
                while not (events := poll(0)) and time.monotonic() < deadline and idle():
                    pass
            except BaseException:
                self._reap()
                raise
            if events:
                return events
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        return poll(max(1, int(remaining * 1000)))

    def _watch(self, fd: int, name: str, events: int) -> None:
        self._poller.register(fd, events)
        self._watched[fd] = name

    def _unwatch(self, fd: int) -> None:
        self._poller.unregister(fd)
        del self._watched[fd]

    def _interpret(self, reader: wire.FrameReader) -> tuple[dict[str, Any], list[wire.Buffer]]:
        header = reader.header
        assert header is not None
        if header.get("kind") == "error":
            try:
                verdict, message, line = wire.error_fields(header, CHILD_VERDICTS)
            except wire.WireError:
                raise self._protocol_violation() from None
            raise self._error(Verdict(verdict), message, line=line)
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

    def _reap(self, *, wait: bool = False) -> dict[str, Any]:
        """Kill the child's process group; with ``wait``, its exit status and CPU time (asked once)."""
        if self._pid is None:
            return getattr(self, "_death", {})
        pid, self._pid = self._pid, None
        self._death = self.sandbox._reap_child(pid, self._generation, wait=wait)
        with contextlib.suppress(OSError):
            self._drain_output()
        return self._death

    def _check_zygote(self) -> dict[str, Any]:
        """The dead child's exit information; SandboxLost when the zygote went down under it (killed, OOM)."""
        info = self._reap(wait=True)
        if not info or not self.sandbox.is_alive():
            raise SandboxLost(
                "the sandbox stopped while grading (not the submission's doing); it is restarted",
                retry=self.tries.left > 0,
            )
        return info

    def _death_error(self, during: str) -> SandboxError:
        with contextlib.suppress(SandboxError):
            self._drain_output()
        info = self._check_zygote()
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


def _write_some(fd: int, pending: list[memoryview]) -> None:
    """Write what the non-blocking pipe takes of ``pending`` (consumed in place); a closed pipe drops it all."""
    while pending:
        try:
            written = os.writev(fd, pending[:64])
        except BlockingIOError:
            return
        except (BrokenPipeError, ConnectionResetError):
            pending.clear()  # the child is gone; its EOF on the reply pipe tells how
            return
        while pending and written >= len(pending[0]):
            written -= len(pending.pop(0))
        if written:
            pending[0] = pending[0][written:]
