"""The control channel to the zygote: one request, one reply, matched by id, with a deadline.

The zygote answers requests strictly in turn, each reply carrying the id of the request it answers.
A reply with another id, no reply before the deadline, an unreadable reply or a closed socket mean
the channel can no longer be trusted to line up: it raises :class:`SandboxBroken` and refuses every
later request, and the sandbox replaces the zygote. So a slow or stuck zygote costs one submission a
retry, never a drift in which one submission receives another's reply.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from grader.sandbox.limits import SandboxBroken

CONTROL_TIMEOUT_S = 5.0
MAX_REPLY_BYTES = 1 << 16


class Control:
    """Requests to one zygote over a SOCK_SEQPACKET socket (one message per request and per reply)."""

    def __init__(self, sock: socket.socket, timeout_s: float = CONTROL_TIMEOUT_S) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._next_id = 0
        self._timeout_s = timeout_s
        self.broken: str | None = None

    def request(
        self, message: dict[str, Any], fds: Sequence[int] = (), *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Send ``message`` (plus ``fds``) and return the reply that answers it, or raise SandboxBroken."""
        with self._lock:
            if self.broken is not None:
                raise SandboxBroken(f"the sandbox zygote is out of service: {self.broken}")
            self._next_id += 1
            request_id = self._next_id
            data = json.dumps(dict(message, id=request_id)).encode()
            deadline = time.monotonic() + (timeout_s if timeout_s is not None else self._timeout_s)
            try:
                self._sock.settimeout(max(0.001, deadline - time.monotonic()))
                if fds:
                    socket.send_fds(self._sock, [data], list(fds))
                else:
                    self._sock.sendall(data)
                self._sock.settimeout(max(0.001, deadline - time.monotonic()))
                raw = self._sock.recv(MAX_REPLY_BYTES)
            except TimeoutError:
                raise self._break(f"no reply to '{message.get('op')}' within the deadline") from None
            except OSError as error:
                raise self._break(f"the control socket failed ({error})") from None
            if not raw:
                raise self._break("the zygote closed the control socket")
            try:
                reply = json.loads(raw)
            except ValueError:
                raise self._break("unreadable reply") from None
            if type(reply) is not dict or reply.get("id") != request_id:
                raise self._break(f"a reply out of turn (expected id {request_id})")
            return reply

    def _break(self, reason: str) -> SandboxBroken:
        self.broken = reason
        with contextlib.suppress(OSError):
            self._sock.close()
        return SandboxBroken(f"the sandbox zygote is out of service: {reason}")

    def close(self) -> None:
        self.broken = self.broken or "closed"
        with contextlib.suppress(OSError):
            self._sock.close()
