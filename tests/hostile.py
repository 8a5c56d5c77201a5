"""What the hostile-submission tests share: the sandbox and host fixtures, and running an attack.

The tests (tests/test_hostile_submissions.py, tests/test_hostile_returns.py) import the
fixtures from here. Every test runs one attack and asserts its verdict (or that it had no effect and the result is the
honest one); after every test a fixture checks that the host is unchanged (a canary folder, the
attack's target paths, a Redis key on the real Redis), that the sandbox holds no leftover process,
and that the next, honest submission grades normally. Every text the learner could see (message,
stdout, stderr) is checked for the sentinel secret planted in this process's environment and in a
file on the host.

Many attacks first get hold of ``os``, ``sys`` and the import machinery through a well-known
bypass of the import guard (``BYPASS`` below): the guard only gives honest mistakes a clear
message, and these tests show that namespaces, the unprivileged uid and seccomp hold without it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from grader.sandbox import Limits, Sandbox, SandboxError
from grader.sandbox.core import BWRAP
from grader.verdicts import Isolation, Verdict

MARKS = [
    pytest.mark.sandbox,
    pytest.mark.skipif(
        not os.access(BWRAP, os.X_OK),
        reason=f"{BWRAP} is missing: the namespace attacks need bubblewrap (scripts/install-system-deps.sh)",
    ),
]

FAST = Limits(cpu_time_s=1, wall_time_s=4, call_wall_time_s=2, memory_mib=256, output_bytes=16 * 1024)
SECRET = "gradlab-sentinel-" + secrets.token_hex(12)
SECRET_ENV = "GRADLAB_TEST_SECRET_KEY"
TOKEN = secrets.token_hex(6)
REDIS_KEY = f"gradlab:pwned:{TOKEN}"
X = np.array([1.0, -2.0, 3.5])
RUNTIME = Verdict.RUNTIME_ERROR
HONEST = "import numpy as np\n\ndef solve(x):\n    return 2 * x\n"

# Gets os, sys and an unguarded import without any import statement (a classic sandbox escape).
BYPASS = (
    "import numpy as np\n"
    "_wrap = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]\n"
    "sys = _wrap.__init__.__globals__['sys']\n"
    "os = sys.modules['os']\n"
    "load = sys.modules['importlib._bootstrap']._gcd_import\n"
)


@dataclass
class Host:
    canary_dir: Path
    canary_text: str
    secret_file: Path
    redis: redis.Redis
    zygote_pid: int
    baseline: set[int]  # the processes under the zygote before the attack (a child of the last test may still be going)


@dataclass
class Outcome:
    value: Any
    error: SandboxError | None
    stdout: str
    stderr: str

    @property
    def verdict(self) -> Verdict | None:
        return self.error.verdict if self.error else None

    @property
    def shown(self) -> str:
        """Everything the learner could see."""
        message = self.error.message if self.error else ""
        return "\n".join([message, self.stdout, self.stderr, repr(self.value)])


def descendants(pid: int) -> set[int]:
    """Every live process under ``pid`` (the sandbox's bwrap), from the host's /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            fields = stat.rsplit(b")", 1)[1].split()
            if fields[0] != b"Z":
                children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@pytest.fixture(autouse=True)
def host(sandbox: Sandbox) -> Iterator[Host]:
    # `sandbox` is the suite's (tests/conftest.py): these attacks run against the full sandbox only.
    assert sandbox.isolation == Isolation.NAMESPACES_SECCOMP
    canary_dir = Path(tempfile.mkdtemp(prefix="gradlab-canary-"))
    canary_text = f"canary {TOKEN}\n"
    (canary_dir / "canary.txt").write_text(canary_text)
    secret_file = canary_dir / "settings.py"
    secret_file.write_text(f"SECRET_KEY = {SECRET!r}\n")
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    client.delete(REDIS_KEY)
    state = Host(canary_dir, canary_text, secret_file, client, sandbox.pid, descendants(sandbox.pid))
    try:
        yield state
        # The host is unchanged.
        assert sorted(p.name for p in canary_dir.iterdir()) == ["canary.txt", "settings.py"]
        assert (canary_dir / "canary.txt").read_text() == canary_text
        for path in (Path(f"/tmp/pwned-{TOKEN}"), Path(f"/work/main/pwned-{TOKEN}"), Path(f"/pwned-{TOKEN}")):
            assert not path.exists(), f"the attack wrote {path}"
        assert client.exists(REDIS_KEY) == 0
        # Nothing of the session survives, and the next submission grades normally.
        assert sandbox.is_alive()
        # Killed children finish exiting (the kernel drops their namespaces) off the zygote's path:
        # give an already-SIGKILLed child time to go, then nothing may remain.
        deadline = time.monotonic() + 10  # a loaded machine can take seconds to tear a child down
        while _survivors(sandbox, state) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _survivors(sandbox, state), "a process of the attack outlived its grading"
        assert np.array_equal(run(sandbox, HONEST).value, 2 * X)
    finally:
        client.delete(REDIS_KEY)
        client.close()
        shutil.rmtree(canary_dir, ignore_errors=True)


def _survivors(sandbox: Sandbox, state: Host) -> set[int]:
    """Processes started since the fixture began that are still alive.

    A replaced zygote (a new bwrap) brings its own steady processes: then the old tree must be
    gone and the new one no bigger than the old one was.
    """
    if sandbox.pid == state.zygote_pid:
        return descendants(sandbox.pid) - state.baseline
    old_tree = descendants(state.zygote_pid) | (
        {state.zygote_pid} if Path(f"/proc/{state.zygote_pid}").exists() else set()
    )
    new_tree = descendants(sandbox.pid)
    return old_tree | (new_tree if len(new_tree) > len(state.baseline) else set())


def run(
    sandbox: Sandbox,
    source: str | bytes,
    *args: Any,
    limits: Limits = FAST,
    allowed: frozenset[str] = frozenset({"numpy", "math"}),
) -> Outcome:
    """Grade ``source``'s ``solve`` on X (or ``args``); the outcome, never raising SandboxError."""
    if isinstance(source, str):
        source = source.replace("TOKEN", TOKEN)
    session = None
    try:
        with sandbox.session(source, "solve", allowed_imports=allowed, limits=limits) as session:
            value = session.call(*(args or (X,)))
            return Outcome(value, None, session.stdout, session.stderr)
    except SandboxError as error:
        return Outcome(None, error, error.stdout, error.stderr)


def attack(sandbox: Sandbox, host: Host, body: str, **options: Any) -> Outcome:
    """Run BYPASS + ``body`` and check that nothing the learner sees holds a secret."""
    source = BYPASS + body.replace("CANARY", str(host.canary_dir)).replace("SECRET_FILE", str(host.secret_file))
    outcome = run(sandbox, source, **options)
    assert SECRET not in outcome.shown
    assert str(host.canary_dir) not in (outcome.error.message if outcome.error else "")
    return outcome


def assert_honest_result(outcome: Outcome) -> None:
    assert outcome.error is None, outcome.error
    assert type(outcome.value) is np.ndarray and np.array_equal(outcome.value, 2 * X)
