"""Hostile submissions against the real sandbox (DESIGN.md, "Sandbox threat model").

Every test runs one attack and asserts its verdict (or that it had no effect and the result is the
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
import sys
import tempfile
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

pytestmark = [
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
    baseline: int


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


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    os.environ[SECRET_ENV] = SECRET  # before the zygote starts: a leak of the environment would show it
    try:
        box = Sandbox.start(redact_secrets=False)  # redaction would hide a real leak from these tests
        assert box.isolation == Isolation.NAMESPACES_SECCOMP
        yield box
        box.close()
    finally:
        del os.environ[SECRET_ENV]


@pytest.fixture(autouse=True)
def host(sandbox: Sandbox) -> Iterator[Host]:
    canary_dir = Path(tempfile.mkdtemp(prefix="gradlab-canary-"))
    canary_text = f"canary {TOKEN}\n"
    (canary_dir / "canary.txt").write_text(canary_text)
    secret_file = canary_dir / "settings.py"
    secret_file.write_text(f"SECRET_KEY = {SECRET!r}\n")
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    client.delete(REDIS_KEY)
    state = Host(canary_dir, canary_text, secret_file, client, len(descendants(sandbox.pid)))
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
        assert len(descendants(sandbox.pid)) == state.baseline
        assert np.array_equal(run(sandbox, HONEST).value, 2 * X)
    finally:
        client.delete(REDIS_KEY)
        client.close()
        shutil.rmtree(canary_dir, ignore_errors=True)


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


# ----------------------------------------------------------------------------- processes


def test_a_fork_bomb_cannot_fork(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    while True:\n        os.fork()\n")
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "PermissionError" in outcome.error.message  # type: ignore[union-attr]


def test_subprocess_cannot_execute_anything(sandbox: Sandbox, host: Host) -> None:
    body = "def solve(x):\n    load('subprocess').run(['/bin/sh', '-c', 'touch /tmp/pwned-TOKEN'])\n    return 2 * x\n"
    outcome = attack(sandbox, host, body)
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "PermissionError" in outcome.error.message  # type: ignore[union-attr]


def test_a_daemonised_grandchild_does_not_outlive_the_grading(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    for attempt in ('fork', 'setsid-fork'):\n"
        "        try:\n"
        "            if attempt == 'setsid-fork':\n"
        "                os.setsid()\n"
        "            if os.fork() == 0:\n"
        "                os.fork()\n"
        "                load('time').sleep(3600)\n"
        "        except OSError as error:\n"
        "            print(attempt, type(error).__name__)\n"
        "    threading = load('threading')\n"
        "    threading.Thread(target=load('time').sleep, args=(3600,), daemon=False).start()\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    assert "fork PermissionError" in outcome.stdout
    # The host fixture then checks that no process of the session is left under the sandbox.


def test_a_thread_bomb_is_capped(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    threading, time = load('threading'), load('time')\n"
        "    started = 0\n"
        "    try:\n"
        "        for _ in range(10000):\n"
        "            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
        "            started += 1\n"
        "    except (RuntimeError, MemoryError) as error:\n"
        "        print('stopped after', started, type(error).__name__)\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    started = int(outcome.stdout.split()[2])
    assert started <= FAST.max_threads


def test_killing_the_parent_is_refused(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    os.kill(os.getppid(), 9)\n    return 2 * x\n")
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "PermissionError" in outcome.error.message  # type: ignore[union-attr]


def test_killing_every_process_of_the_uid_is_refused(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    for target in (-1, 1, os.getppid(), -os.getpgid(os.getppid())):\n"
        "        try:\n"
        "            os.kill(target, 9)\n"
        "        except OSError as error:\n"
        "            print(target, type(error).__name__)\n"
        "    os.killpg(os.getpgid(os.getppid()), 9)\n"
    )
    outcome = attack(sandbox, host, body)
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert outcome.stdout.count("PermissionError") == 4


def test_ptrace_of_the_parent_is_refused(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    libc = sys.modules['ctypes'].CDLL(None, use_errno=True)\n"
        "    print(libc.ptrace(16, os.getppid(), 0, 0), libc.ptrace(0, 0, 0, 0))\n"  # ATTACH, TRACEME
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    assert outcome.stdout == "-1 -1\n"


def test_the_memory_of_the_unfiltered_zygote_cannot_be_opened(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    for pid in ('1', str(os.getppid())):\n"
        "        for mode in ('rb', 'r+b'):\n"
        "            try:\n"
        "                open('/proc/' + pid + '/mem', mode).close()\n"
        "                print('opened', pid, mode)\n"
        "            except OSError as error:\n"
        "                print(type(error).__name__)\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    assert outcome.stdout.split() == ["PermissionError"] * 4


def test_setuid_to_root_is_refused(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    os.setuid(0)\n    return 2 * x\n")
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "PermissionError" in outcome.error.message  # type: ignore[union-attr]


def test_new_namespaces_and_mounts_are_refused(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    libc = sys.modules['ctypes'].CDLL(None, use_errno=True)\n"
        "    print(libc.unshare(0x10000000), libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    assert outcome.stdout == "-1 -1\n"


# ----------------------------------------------------------------------------- resources


def test_a_memory_bomb_is_memory_limit_exceeded(sandbox: Sandbox, host: Host) -> None:
    body = "def solve(x):\n    hoard = []\n    while True:\n        hoard.append(bytearray(10**7))\n"
    assert attack(sandbox, host, body).verdict == Verdict.MEMORY_LIMIT_EXCEEDED


def test_a_numpy_allocation_bomb_is_memory_limit_exceeded(sandbox: Sandbox, host: Host) -> None:
    body = "def solve(x):\n    return np.ones((10**5, 10**5))\n"
    assert attack(sandbox, host, body).verdict == Verdict.MEMORY_LIMIT_EXCEEDED


def test_a_busy_loop_is_time_limit_exceeded(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    while True:\n        pass\n")
    assert outcome.verdict == Verdict.TIME_LIMIT_EXCEEDED


def test_sleeping_is_time_limit_exceeded_on_the_wall_clock(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    load('time').sleep(60)\n")
    assert outcome.verdict == Verdict.TIME_LIMIT_EXCEEDED
    assert "wall clock" in outcome.error.message  # type: ignore[union-attr]


def test_ignoring_sigxcpu_and_sigterm_does_not_escape_the_cpu_limit(sandbox: Sandbox, host: Host) -> None:
    body = (
        "signal = load('signal')\n"
        "for number in (signal.SIGXCPU, signal.SIGTERM, signal.SIGINT):\n"
        "    signal.signal(number, signal.SIG_IGN)\n"
        "def solve(x):\n"
        "    while True:\n"
        "        pass\n"
    )
    limits = Limits(cpu_time_s=1, wall_time_s=6, call_wall_time_s=5)
    assert attack(sandbox, host, body, limits=limits).verdict == Verdict.TIME_LIMIT_EXCEEDED


def test_an_output_flood_is_output_limit_exceeded(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    while True:\n        print('spam ' * 1000)\n")
    assert outcome.verdict == Verdict.OUTPUT_LIMIT_EXCEEDED
    assert len(outcome.stdout) <= FAST.output_bytes


def test_a_stderr_flood_is_output_limit_exceeded(sandbox: Sandbox, host: Host) -> None:
    body = "def solve(x):\n    while True:\n        sys.stderr.write('e' * 4096)\n"
    assert attack(sandbox, host, body).verdict == Verdict.OUTPUT_LIMIT_EXCEEDED


def test_filling_tmp_stays_in_the_sandbox_and_is_wiped(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    written = 0\n"
        "    try:\n"
        "        for i in range(1000):\n"
        "            with open(f'/tmp/pwned-TOKEN-{i}', 'wb') as f:\n"
        "                f.write(b'x' * 1024 * 1024)\n"
        "            written += 1\n"
        "    except OSError as error:\n"
        "        print('stopped', written, error.errno)\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    _, written, errno = outcome.stdout.split()
    assert (int(written), int(errno)) == (16, 28)  # ENOSPC: the sandbox's tmpfs holds 16 MiB
    assert not list(Path("/tmp").glob(f"pwned-{TOKEN}*"))
    after = attack(sandbox, host, "def solve(x):\n    print(sorted(os.listdir('/tmp')))\n    return 2 * x\n")
    assert after.stdout.count("session-") == 1 and "pwned" not in after.stdout


def test_one_huge_file_is_stopped_by_the_file_size_limit(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    try:\n"
        "        with open('big', 'wb') as f:\n"
        "            f.write(b'x' * 4 * 1024 * 1024)\n"
        "    except OSError as error:\n"
        "        print(error.errno)\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    assert outcome.stdout == "27\n"  # EFBIG


def test_unbounded_recursion_is_a_runtime_error_with_a_line(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    return solve(x)\n")
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "RecursionError" in outcome.error.message and outcome.error.line == 7  # type: ignore[union-attr]


def test_recursion_deep_enough_to_crash_the_interpreter_is_a_clear_crash(sandbox: Sandbox, host: Host) -> None:
    # Each level goes through map(), a C function, so the C stack overflows before any Python limit.
    body = "sys.setrecursionlimit(10**8)\ndef solve(x, depth=0):\n    return list(map(solve, [x], [depth + 1]))\n"
    outcome = attack(sandbox, host, body)
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "your code crashed (signal SIGSEGV)" in outcome.error.message  # type: ignore[union-attr]


def test_a_segfault_through_ctypes_is_a_clear_crash(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    return sys.modules['ctypes'].string_at(0)\n")
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "your code crashed (signal SIGSEGV)" in outcome.error.message  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- network


def test_a_socket_to_redis_is_refused(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    s = load('socket').create_connection(('127.0.0.1', 6379), timeout=1)\n"
        "    s.sendall(b'SET gradlab:pwned:TOKEN 1\\r\\n')\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "PermissionError" in outcome.error.message  # type: ignore[union-attr]
    assert host.redis.exists(REDIS_KEY) == 0


def test_a_socket_to_postgresql_is_refused(sandbox: Sandbox, host: Host) -> None:
    body = "def solve(x):\n    load('socket').create_connection(('127.0.0.1', 5432), timeout=1)\n    return 2 * x\n"
    outcome = attack(sandbox, host, body)
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "PermissionError" in outcome.error.message  # type: ignore[union-attr]


def test_a_raw_socket_syscall_is_refused(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    libc = sys.modules['ctypes'].CDLL(None, use_errno=True)\n"
        "    print(libc.socket(2, 1, 0), libc.socket(1, 1, 0))\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    assert outcome.stdout == "-1 -1\n"


# ----------------------------------------------------------------------------- reading secrets


def test_the_environment_holds_no_secret(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    print(dict(os.environ))\n    return 2 * x\n")
    assert_honest_result(outcome)
    assert SECRET_ENV not in outcome.stdout


@pytest.mark.parametrize("target", ["1", "os.getppid()", "'self'", "'thread-self'"])
def test_proc_environ_holds_no_secret(sandbox: Sandbox, host: Host, target: str) -> None:
    body = (
        "def solve(x):\n"
        f"    path = '/proc/' + str({target}) + '/environ'\n"
        "    try:\n"
        "        print(open(path, 'rb').read())\n"
        "    except OSError as error:\n"
        "        print(type(error).__name__)\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    assert SECRET_ENV.encode().hex() not in outcome.stdout.encode().hex()


def test_every_proc_file_of_every_visible_process_holds_no_secret(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "    for pid in pids:\n"
        "        for name in ('environ', 'cmdline', 'status', 'maps', 'mountinfo'):\n"
        "            try:\n"
        "                data = open(f'/proc/{pid}/{name}', 'rb').read()\n"
        "            except OSError:\n"
        "                continue\n"
        "            if b'SECRET' in data or b'gradlab-sentinel' in data:\n"
        "                print('found in', pid, name)\n"
        "    print(len(pids), 'processes')\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    assert "found" not in outcome.stdout
    assert int(outcome.stdout.split()[0]) == 2  # the zygote (the namespace's init) and this child


def test_settings_and_secret_files_of_the_host_are_not_there(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    for path in ('/work/main/gradlab/settings.py', 'SECRET_FILE', '/work/main/.env', '/etc/shadow',"
        " '/etc/passwd', '/root/.bash_history', '/root'):\n"
        "        try:\n"
        "            print(open(path).read()[:100])\n"
        "        except OSError as error:\n"
        "            print(type(error).__name__)\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    assert outcome.stdout.split() == ["FileNotFoundError"] * 7


def test_reference_solutions_cannot_be_found_anywhere(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    found = []\n"
        "    for top in os.listdir('/'):\n"
        "        if top in ('proc', 'sys', 'usr', 'bin', 'lib', 'lib64', 'sbin'):  # /usr and its aliases\n"
        "            continue\n"
        "        for folder, subfolders, files in os.walk('/' + top):\n"
        "            if folder == '/opt/python/lib':\n"
        "                subfolders.clear()  # the standard library: thousands of files, none of ours\n"
        "            found += [folder + '/' + f for f in files if f in ('solution.py', 'settings.py', 'exercise.yaml')]\n"
        "    print(sorted(os.listdir('/')), found, len(found))\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    assert outcome.stdout.rstrip().endswith(" 0")
    assert "'work'" not in outcome.stdout and "'etc'" not in outcome.stdout


# ----------------------------------------------------------------------------- writing the host


def test_writing_into_the_project_fails(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    for path in ('/work/main/pwned-TOKEN', '/pwned-TOKEN', 'CANARY/canary.txt', 'CANARY/pwned',"
        " '/opt/site/numpy/__init__.py', '/usr/pwned-TOKEN'):\n"
        "        try:\n"
        "            open(path, 'w').write('pwned')\n"
        "            print('wrote', path)\n"
        "        except OSError as error:\n"
        "            print(type(error).__name__)\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    assert "wrote" not in outcome.stdout


def test_writing_tmp_writes_only_the_sandbox_tmp(sandbox: Sandbox, host: Host) -> None:
    body = "def solve(x):\n    open('/tmp/pwned-TOKEN', 'w').write('pwned')\n    return 2 * x\n"
    assert_honest_result(attack(sandbox, host, body))
    assert not Path(f"/tmp/pwned-{TOKEN}").exists()


def test_a_symlink_planted_in_the_sandbox_is_never_followed_by_the_trusted_side(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    for name in ('result.json', 'output', '/tmp/result'):\n"
        "        try:\n"
        "            os.symlink('CANARY/canary.txt', name)\n"
        "        except OSError:\n"
        "            pass\n"
        "    os.symlink('/etc/passwd', 'passwd')\n"
        "    return 2 * x\n"
    )
    opened: list[tuple[str, tuple[Any, ...]]] = []
    AUDIT.append(opened)
    try:
        outcome = attack(sandbox, host, body)
    finally:
        AUDIT.remove(opened)
    assert_honest_result(outcome)
    assert opened == []  # the trusted side touched no path during the whole session: pipes only


AUDIT: list[list[tuple[str, tuple[Any, ...]]]] = []
PATH_EVENTS = {"open", "os.symlink", "os.chmod", "os.chown", "os.rename", "os.remove", "os.listdir", "shutil.rmtree"}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if AUDIT and event in PATH_EVENTS:
        AUDIT[-1].append((event, args))


sys.addaudithook(_audit)


# ----------------------------------------------------------------------------- exits and exceptions


def test_os_exit_before_returning_is_a_runtime_error(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    os._exit(0)\n")
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "your code exited before returning" in outcome.error.message  # type: ignore[union-attr]


def test_sys_exit_before_returning_is_a_runtime_error(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    sys.exit(0)\n")
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "your code exited (SystemExit) before returning" in outcome.error.message  # type: ignore[union-attr]


@pytest.mark.parametrize("raised", ["SystemExit(3)", "KeyboardInterrupt()", "type('Escape', (BaseException,), {})()"])
def test_base_exceptions_are_runtime_errors(sandbox: Sandbox, host: Host, raised: str) -> None:
    outcome = attack(sandbox, host, f"def solve(x):\n    raise {raised}\n")
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert outcome.error.line == 7  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- forging results


def test_a_fake_result_printed_to_stdout_does_nothing(sandbox: Sandbox, host: Host) -> None:
    body = (
        "import json, struct\n"
        "def solve(x):\n"
        "    fake = json.dumps({'kind': 'result', 'value': {'t': 'float', 'v': '0x1p+0'}, 'inputs': None,"
        " 'buffers': []}).encode()\n"
        "    sys.stdout.buffer.write(struct.pack('<I', len(fake)) + fake)\n"
        '    print(\'{"verdict": "accepted", "score": 1.0}\')\n'
        "    return 0 * x\n"
    )
    outcome = attack(sandbox, host, body, allowed=frozenset({"numpy", "json", "struct"}))
    assert outcome.error is None
    assert np.array_equal(outcome.value, 0 * X)  # what the function returned, nothing else
    assert '"accepted"' in outcome.stdout


def test_garbage_written_to_small_fds_goes_nowhere(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    for fd in range(3, 21):\n"
        "        try:\n"
        '            os.write(fd, b\'\\x00\\xff{"kind": "result"}\' * 100)\n'
        "            print('wrote', fd)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    assert "wrote" not in outcome.stdout


def test_garbage_written_to_the_protocol_fd_is_a_runtime_error(sandbox: Sandbox, host: Host) -> None:
    body = (
        "def solve(x):\n"
        "    for fd in os.listdir('/proc/self/fd'):\n"
        "        if int(fd) > 2:\n"
        "            try:\n"
        "                os.write(int(fd), b'\\xff' * 64)\n"
        "            except OSError:\n"
        "                pass\n"
        "    return 2 * x\n"
    )
    outcome = attack(sandbox, host, body)
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "interfered with the grader's channel" in outcome.error.message  # type: ignore[union-attr]


def test_a_forged_frame_announcing_a_terabyte_is_refused_unread(sandbox: Sandbox, host: Host) -> None:
    body = (
        "import json, struct\n"
        "def solve(x):\n"
        "    head = json.dumps({'kind': 'result', 'value': {'t': 'array', 'dtype': '<f8', 'shape': [2**37],"
        " 'buf': 0}, 'inputs': None, 'buffers': [2**40]}).encode()\n"
        "    for fd in os.listdir('/proc/self/fd'):\n"
        "        try:\n"
        "            os.write(int(fd), struct.pack('<I', len(head)) + head)\n"
        "        except OSError:\n"
        "            pass\n"
        "    load('time').sleep(60)\n"
    )
    outcome = attack(sandbox, host, body, allowed=frozenset({"numpy", "json", "struct"}))
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "over the limit" in outcome.error.message  # type: ignore[union-attr]


def test_monkeypatching_numpy_changes_nothing_outside_the_child(sandbox: Sandbox, host: Host) -> None:
    body = (
        "np.allclose = lambda *a, **k: True\n"
        "np.array_equal = lambda *a, **k: True\n"
        "np.testing = None\n"
        "def solve(x):\n"
        "    return np.zeros_like(x)\n"
    )
    outcome = attack(sandbox, host, body)
    assert outcome.error is None
    assert not np.allclose(outcome.value, 2 * X)  # the trusted NumPy is untouched
    fresh = run(sandbox, "import numpy as np\ndef solve(x):\n    return float(np.allclose(x, x + 1))\n")
    assert fresh.value == 0.0  # and the next child starts from the pristine zygote


def test_patching_ndarray_methods_is_impossible(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "np.ndarray.__eq__ = lambda a, b: True\ndef solve(x):\n    return 2 * x\n")
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "TypeError" in outcome.error.message  # type: ignore[union-attr]


def test_a_lying_ndarray_subclass_arrives_as_its_plain_data(sandbox: Sandbox, host: Host) -> None:
    body = (
        "class Liar(np.ndarray):\n"
        "    def __array_function__(self, *a, **k):\n"
        "        return True\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "    def __array__(self, *a, **k):\n"
        "        return 2 * X_SENT\n"
        "def solve(x):\n"
        "    global X_SENT\n"
        "    X_SENT = x\n"
        "    return np.zeros_like(x).view(Liar)\n"
    )
    outcome = attack(sandbox, host, body)
    assert outcome.error is None
    assert type(outcome.value) is np.ndarray
    assert np.array_equal(outcome.value, np.zeros(3))
    assert not np.allclose(outcome.value, 2 * X)


def test_an_object_array_with_reduce_is_refused_without_unpickling(sandbox: Sandbox, host: Host) -> None:
    body = (
        "class Evil:\n"
        "    def __reduce__(self):\n"
        "        return (os.system, ('touch /tmp/pwned-TOKEN',))\n"
        "def solve(x):\n"
        "    return np.array([Evil(), Evil()], dtype=object)\n"
    )
    outcome = attack(sandbox, host, body)
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "dtype object" in outcome.error.message  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("returned", "named"),
    [
        ("(v for v in x)", "a generator"),
        ("'2 * x'", "a str"),
        ("type('Fake', (), {'__float__': lambda s: 1.0, '__array__': lambda s, *a, **k: x})()", "a Fake"),
        ("{1: x}", "a dict with an int key"),
    ],
)
def test_non_numeric_returns_are_named(sandbox: Sandbox, host: Host, returned: str, named: str) -> None:
    outcome = attack(sandbox, host, f"def solve(x):\n    return {returned}\n")
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert f"solve returned {named}" in outcome.error.message  # type: ignore[union-attr]


def test_nan_and_inf_pass_through_unchanged_for_the_engine_to_reject(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    return np.array([np.nan, np.inf, -np.inf])\n")
    assert outcome.error is None
    assert np.isnan(outcome.value[0]) and outcome.value[1] == np.inf and outcome.value[2] == -np.inf


def test_a_float16_return_keeps_its_dtype(sandbox: Sandbox, host: Host) -> None:
    outcome = attack(sandbox, host, "def solve(x):\n    return (2 * x).astype(np.float16)\n")
    assert outcome.error is None
    assert outcome.value.dtype == np.float16


def test_a_huge_array_return_is_refused(sandbox: Sandbox, host: Host) -> None:
    limits = Limits(cpu_time_s=2, wall_time_s=6, call_wall_time_s=5, max_array_bytes=1024 * 1024)
    outcome = attack(sandbox, host, "def solve(x):\n    return np.zeros(10**6)\n", limits=limits)
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert "over the limit of 1 MiB" in outcome.error.message  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- imports and source


@pytest.mark.parametrize("module", ["subprocess", "ctypes", "os", "socket", "torch", "importlib", "builtins"])
def test_importing_a_module_outside_the_exercise_is_forbidden(sandbox: Sandbox, host: Host, module: str) -> None:
    outcome = run(sandbox, f"import numpy as np\nimport {module}\ndef solve(x):\n    return 2 * x\n")
    assert outcome.verdict == Verdict.FORBIDDEN
    assert f"import of '{module}' is not allowed here" in outcome.error.message  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "trick",
    [
        "__import__('os')",
        "__builtins__.__import__('subprocess')",
        "exec('import os')",
        "eval(\"__import__('socket')\")",
        "__import__('numpy', fromlist=['x']) and __import__('os.path')",
        "__import__('os', {'__name__': 'numpy'})",
    ],
)
def test_import_tricks_are_forbidden(sandbox: Sandbox, host: Host, trick: str) -> None:
    outcome = run(sandbox, f"def solve(x):\n    {trick}\n    return 2 * x\n")
    assert outcome.verdict == Verdict.FORBIDDEN


def test_a_one_megabyte_source_is_refused_before_running(sandbox: Sandbox, host: Host) -> None:
    source = HONEST + "# padding\n" * 100_000
    outcome = run(sandbox, source)
    assert outcome.verdict == Verdict.FORBIDDEN
    assert "KiB are not accepted" in outcome.error.message  # type: ignore[union-attr]


def test_a_non_utf8_source_is_refused_before_running(sandbox: Sandbox, host: Host) -> None:
    outcome = run(sandbox, b"# caf\xe9\ndef solve(x):\n    return 2 * x\n")
    assert outcome.verdict == Verdict.SYNTAX_ERROR
    assert "not UTF-8" in outcome.error.message  # type: ignore[union-attr]
