"""The trusted side of the sandbox: start the warm zygote, keep it healthy, open sessions.

The zygote is started once per worker (inside bubblewrap wherever it is installed) and forks one
child per submission (:mod:`grader.sandbox.session`). The control channel (:mod:`grader.sandbox.control`)
matches every reply to its request; when it breaks, the zygote is replaced at once and a spawn that
was in flight is retried once on the new one. The trusted side never opens a path inside the sandbox.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from grader.sandbox.control import CONTROL_TIMEOUT_S, Control
from grader.sandbox.layout import THREAD_ENV, bwrap_layout, process_command
from grader.sandbox.limits import (
    BWRAP,
    INSTALL_HINT,
    IsolationTooLow,
    Limits,
    SandboxBroken,
    SandboxError,
    SandboxLost,
    SandboxUnavailable,
    Tries,
)
from grader.sandbox.session import CHILD_VERDICTS, Session, _check_source
from grader.verdicts import Isolation

log = logging.getLogger(__name__)

START_TIMEOUT_S = 20.0
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|KEY|CREDENTIAL|DATABASE_URL|DSN", re.IGNORECASE)
# Characters a child can put in its text that no database column or UTF-8 page can hold: NUL
# (PostgreSQL's text and jsonb refuse it) and lone surrogates (from "\ud800" escapes in a frame).
UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
DEFAULT_ALLOWED_IMPORTS = frozenset(
    {
        *("numpy", "math", "cmath", "functools", "itertools", "operator", "typing"),
        *("dataclasses", "collections", "numbers", "abc", "enum"),
    }
)

T = TypeVar("T")


def _secret_values() -> list[str]:
    values = [v for k, v in os.environ.items() if SECRET_NAME.search(k) and len(v) >= 8]
    try:
        from django.conf import settings

        if settings.configured and len(str(getattr(settings, "SECRET_KEY", ""))) >= 8:
            values.append(str(settings.SECRET_KEY))
    except ImportError:
        pass
    return sorted(set(values), key=len, reverse=True)


def _database_file() -> Path | None:
    try:
        from django.conf import settings

        if settings.configured:
            database = settings.DATABASES.get("default", {})
            if str(database.get("ENGINE", "")).endswith("sqlite3") and database.get("NAME"):
                return Path(str(database["NAME"])).resolve()
    except (ImportError, AttributeError):
        pass
    return None


def protected_paths() -> tuple[list[str], list[str]]:
    """(files learner code must not read, folders a root-started child covers) for the start probe.

    The worker's own ``/proc`` entries, the project's files and the SQLite database: the probe child
    builds the private world like every child and must fail to open each of them.
    """
    pid = os.getpid()
    files = [f"/proc/{pid}/environ", f"/proc/{pid}/mem", str(PROJECT_ROOT / "manage.py")]
    files.append(str(PROJECT_ROOT / "gradlab" / "settings.py"))
    folders = [str(PROJECT_ROOT)]
    database = _database_file()
    if database is not None:
        files.append(str(database))
        folders.append(str(database.parent))
    return files, folders


@dataclass(frozen=True)
class _Options:
    bwrap: bool
    seccomp: bool
    redact_secrets: bool
    control_timeout_s: float
    min_isolation: Isolation | None = None


@dataclass
class _Zygote:
    process: subprocess.Popen[bytes]
    control: Control
    isolation: Isolation
    generation: int
    scratch: tempfile.TemporaryDirectory[str] | None
    details: dict[str, Any]


class Sandbox:
    """A warm zygote (NumPy imported once) from which every submission's child is forked.

    ``isolation`` is measured at start: ``namespaces+seccomp`` when the zygote runs in bubblewrap and
    the children's seccomp filter loads, ``namespaces`` with bubblewrap only, ``process`` without
    bubblewrap (started as root: learner code runs as uid 65534, in the same private world).
    """

    def __init__(self, options: _Options) -> None:
        self._options = options
        self._lock = threading.Lock()
        self._generation = 0
        self._secrets = _secret_values() if options.redact_secrets else []
        self._zygote = _Launcher.run(self._launch)
        self.restarts = 0

    # ------------------------------------------------------------------ start
    @classmethod
    def start(
        cls,
        min_isolation: Isolation | str | None = None,
        *,
        use_bwrap: bool | None = None,
        redact_secrets: bool = True,
        seccomp: bool = True,
        control_timeout_s: float = CONTROL_TIMEOUT_S,
    ) -> Sandbox:
        """Start the zygote and measure the isolation level; raise IsolationTooLow when below ``min_isolation``.

        ``use_bwrap=None`` uses bubblewrap when it is installed (``GRADLAB_SANDBOX_BWRAP=0`` asks for
        process isolation instead). When bubblewrap is used and cannot start, this raises
        SandboxUnavailable with the reason: it never falls back to a weaker level on its own.
        ``seccomp=False`` leaves the filter out (only for tests of the namespace layer).
        ``control_timeout_s`` bounds each control request; a zygote slower than that is replaced.
        """
        if use_bwrap is None:
            use_bwrap = os.environ.get("GRADLAB_SANDBOX_BWRAP", "1") != "0"
            if use_bwrap and not os.access(BWRAP, os.X_OK):
                log.warning(
                    "WARNING: %s not found: learner code gets PROCESS isolation at best; %s", BWRAP, INSTALL_HINT
                )
                use_bwrap = False
        required = Isolation(min_isolation) if min_isolation is not None else None
        options = _Options(bool(use_bwrap), seccomp, redact_secrets, control_timeout_s, required)
        sandbox = cls(options)
        if not options.bwrap:
            log.warning(
                "WARNING: grader sandbox isolation is '%s' (no namespaces from bubblewrap); never for production",
                sandbox.isolation,
            )
        problem = sandbox._below_minimum()
        if problem is not None:
            sandbox.close()
            raise problem
        return sandbox

    def _below_minimum(self) -> IsolationTooLow | None:
        """The error to raise when the running zygote is below the required isolation (None if it is not)."""
        required = self._options.min_isolation
        if required is None or self.isolation.rank >= required.rank:
            return None
        reason = "" if self._options.bwrap else "bubblewrap not used"
        if self._options.bwrap and not self.details.get("seccomp"):
            reason = "the seccomp filter did not load: install libseccomp2 and pyseccomp"
        return IsolationTooLow(self.isolation, required, reason)

    def _launch(self) -> _Zygote:
        """Start a zygote and check what it reports; raise SandboxUnavailable saying why it cannot run."""
        bwrap = self._options.bwrap
        if not bwrap and os.getuid() != 0:
            raise SandboxUnavailable(
                "process isolation needs the worker to run as root (learner code must run under another uid "
                f"that cannot read the worker's files or /proc); {INSTALL_HINT}"
            )
        files, folders = protected_paths()
        layout = bwrap_layout() if bwrap else None
        if layout is not None:
            exposed = layout.exposed(files)
            if exposed:
                where = "; ".join(f"{path} at {inside}" for path, inside in exposed)
                raise SandboxUnavailable(
                    f"the sandbox would show protected files to learner code ({where}): move the project "
                    "or the database out of the interpreter's folders"
                )
            # Nothing protected is bound inside, so the probe has nothing to try, and the zygote never
            # holds a host path: a child can read every byte of the memory it inherits.
            files, folders = [], []
        setup = json.dumps(
            {
                "world": "userns" if bwrap else "root",
                "limits": asdict(Limits()),
                "protected": files,
                "hide": folders,
                "seccomp": self._options.seccomp,
                # RLIMIT_NPROC caps a child's threads, except for tasks of uid 0: under a bubblewrap
                # started by root, children are uid 0 of the host and get no threads (runner.py).
                "threads": not (bwrap and os.geteuid() == 0),
            }
        )
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        scratch = None
        env = dict(THREAD_ENV, GRADLAB_SANDBOX_FD=str(theirs.fileno()), GRADLAB_SANDBOX_SETUP=setup)
        if layout is not None:
            command = layout.argv(theirs.fileno(), setup)
        else:
            scratch = tempfile.TemporaryDirectory(prefix="gradlab-sandbox-")
            command = process_command(Path(scratch.name))
            env["LD_LIBRARY_PATH"] = str(Path(os.path.realpath(command[0])).parent.parent / "lib")
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                cwd="/",
            )
        except OSError as error:
            ours.close()
            theirs.close()
            raise SandboxUnavailable(f"cannot start the sandbox ({command[0]}): {error}; {INSTALL_HINT}") from None
        theirs.close()
        ours.settimeout(START_TIMEOUT_S)
        try:
            ready = json.loads(ours.recv(1 << 16) or b"null")
        except (OSError, ValueError):
            ready = None
        problem = _start_problem(ready, bwrap)
        if problem:
            process.kill()
            detail = process.stderr.read(4000).decode("utf-8", "replace").strip() if process.stderr else ""
            process.wait()
            ours.close()
            if scratch is not None:
                scratch.cleanup()
            where = "bubblewrap" if bwrap else "process isolation"
            output = f" Output: {detail[-1500:]}" if detail else ""
            raise SandboxUnavailable(f"the grader sandbox ({where}) did not start: {problem}.{output}")
        assert isinstance(ready, dict)
        if process.stderr is not None:
            process.stderr.close()  # the zygote prints nothing once ready; a write now just fails
        if bwrap:
            isolation = Isolation.NAMESPACES_SECCOMP if ready.get("seccomp") else Isolation.NAMESPACES
        else:
            isolation = Isolation.PROCESS
        self._generation += 1
        log.info(
            "grader sandbox started: isolation=%s seccomp=%s ipc_limits=%s threads=%s",
            isolation,
            ready.get("seccomp"),
            ready.get("ipc_limits"),
            ready.get("threads"),
        )
        control = Control(ours, self._options.control_timeout_s)
        return _Zygote(process, control, isolation, self._generation, scratch, ready)

    # ------------------------------------------------------------------ state
    @property
    def isolation(self) -> Isolation:
        return self._zygote.isolation

    @property
    def pid(self) -> int:
        """The pid of the process started for the zygote (bwrap's, when bubblewrap is used)."""
        return self._zygote.process.pid

    @property
    def details(self) -> dict[str, Any]:
        """What the zygote reported at start (seccomp, ipc_limits, world, uid)."""
        return dict(self._zygote.details)

    @property
    def _process(self) -> subprocess.Popen[bytes]:
        return self._zygote.process

    def is_alive(self) -> bool:
        """True while the zygote runs and its control channel is in order."""
        return self._zygote.process.poll() is None and self._zygote.control.broken is None

    def restart(self) -> None:
        """Replace the zygote (its children die with it); raise SandboxUnavailable if a new one cannot start."""
        with self._lock:
            self._restart_locked()

    def _restart_locked(self) -> None:
        _stop(self._zygote)
        self.restarts += 1
        log.warning("grader sandbox restarted (%d so far)", self.restarts)
        self._zygote = _Launcher.run(self._launch)
        problem = self._below_minimum()  # a replacement is held to the same minimum as the first zygote
        if problem is not None:
            _stop(self._zygote)
            raise problem

    def close(self) -> None:
        """Stop the zygote; with bubblewrap every process inside dies with it (PID namespace)."""
        _stop(self._zygote)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def redact(self, text: str) -> str:
        """A child's ``text`` made safe to show and store: every known secret of this process
        replaced (defence in depth), and every NUL and lone surrogate replaced by U+FFFD.

        Every text of a child the learner sees (its stdout, stderr and error messages) passes here,
        so a result holding them can always be stored: PostgreSQL refused the whole verdict
        otherwise, and the learner's print of a NUL left the submission failed by the grader.
        """
        text = UNSTORABLE.sub("\ufffd", text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return text

    # ------------------------------------------------------------------ children
    def _spawn_child(self, config: dict[str, Any], fds: Sequence[int], tries: Tries) -> tuple[int, int]:
        """Fork a child with ``fds``; (pid, generation).

        Each spawn request uses one of the submission's ``tries``: a zygote that breaks under it is
        replaced and the spawn retried while a try is left, then SandboxLost(retry=False) is raised.
        """
        while True:
            if not tries.take():
                raise SandboxLost("the sandbox was lost twice while grading this submission", retry=False)
            with self._lock:
                if not self.is_alive():
                    self._restart_locked()
                zygote = self._zygote
            try:
                reply = zygote.control.request({"op": "spawn", "config": config}, fds)
            except SandboxBroken as error:
                _stop(zygote)
                log.warning("a spawn broke the sandbox zygote (%s); %d tries left", error, tries.left)
                continue
            pid = reply.get("pid")
            if type(pid) is not int or pid <= 0:
                _stop(zygote)
                log.warning("the sandbox zygote did not fork a child; %d tries left", tries.left)
                continue
            return pid, zygote.generation

    def _reap_child(self, pid: int, generation: int, *, wait: bool) -> dict[str, Any]:
        """Kill a child; with ``wait``, its status, CPU time and peak memory ({} when its zygote is gone).

        Without ``wait`` the zygote replies as soon as the child is killed and collects it later, so
        nobody waits while the kernel drops the child's namespaces and mounts.
        """
        zygote = self._zygote
        if generation != zygote.generation:
            return {}
        try:
            return zygote.control.request({"op": "reap", "pid": pid, "wait": wait})
        except SandboxBroken:
            _stop(zygote)  # every child of that zygote dies with it; the next spawn starts a new one
            return {}

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
        tries: Tries | None = None,
        idle: Callable[[], bool] | None = None,
    ) -> Iterator[Session]:
        """Fork a fresh child, load ``source`` in it, and yield a Session that calls ``function_name``.

        ``allowed_imports`` are top-level module names learner code may import (``__future__`` always).
        Raises SandboxError before yielding when the source is too large or not UTF-8, does not
        compile (SYNTAX_ERROR with the line), imports a forbidden module (FORBIDDEN), fails while
        loading, or lacks the function; with ``arg_names`` it also checks the function accepts them.
        On exit the child and everything it started are killed.

        ``tries`` is the submission's allowance of children (a fresh :class:`Tries` when not given):
        pass the same one to every session of one submission. When the zygote is lost under the
        child this raises SandboxLost, whose ``retry`` says whether a try is left.

        ``idle`` is trusted work the session does instead of waiting for the child, from the loading
        of the source on (see :class:`Session`).
        """
        limits = limits or Limits()
        text = _check_source(source, limits)
        with Session(self, function_name, limits, tries if tries is not None else Tries(), idle) as session:
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


def _start_problem(ready: object, bwrap: bool) -> str:
    """Why a zygote's ready message means it must not be used ('' when it is fine)."""
    if not isinstance(ready, dict):
        return "no ready message (bubblewrap or the interpreter failed; see the output)"
    if not ready.get("world"):
        return f"children cannot get a private world of their own ({ready.get('error', 'unknown reason')})"
    readable = ready.get("readable") or []
    if readable:
        return (
            f"learner code (uid {ready.get('uid')}) could read {', '.join(readable)}; make them unreadable to "
            "other users or use bubblewrap"
        )
    if not ready.get("ok"):
        return "the zygote reported a failure"
    return ""


def _stop(zygote: _Zygote) -> None:
    zygote.control.close()
    process = zygote.process
    if process.poll() is None:
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        process.kill()
    process.wait()
    if zygote.scratch is not None:
        zygote.scratch.cleanup()
        zygote.scratch = None


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


__all__ = [
    "CHILD_VERDICTS",
    "DEFAULT_ALLOWED_IMPORTS",
    "IsolationTooLow",
    "Limits",
    "Sandbox",
    "SandboxError",
    "SandboxUnavailable",
]
