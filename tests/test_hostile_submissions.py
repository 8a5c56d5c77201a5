"""Hostile submissions against the real sandbox: escapes, resources, secrets, the host (threat model).

Every test runs one attack and asserts its verdict, or that it had no effect and the result is
the honest one; tests/hostile.py's fixtures check after each that the host is unchanged, that
nothing of the session is left and that the next honest submission grades normally.
tests/test_hostile_returns.py attacks what comes back (forged results, lying values, imports).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grader.sandbox import Limits, Sandbox
from grader.verdicts import Verdict
from tests.hostile import (  # noqa: F401 - host is a fixture
    FAST,
    MARKS,
    REDIS_KEY,
    RUNTIME,
    SECRET_ENV,
    TOKEN,
    Host,
    assert_honest_result,
    attack,
    host,
)

pytestmark = MARKS


# ----------------------------------------------------------------------------- refused attacks

SOCKET_TO_REDIS = (
    "def solve(x):\n"
    "    s = load('socket').create_connection(('127.0.0.1', 6379), timeout=1)\n"
    "    s.sendall(b'SET gradlab:pwned:TOKEN 1\\r\\n')\n"
    "    return 2 * x\n"
)
IGNORES_SIGNALS = (
    "signal = load('signal')\n"
    "for number in (signal.SIGXCPU, signal.SIGTERM, signal.SIGINT):\n"
    "    signal.signal(number, signal.SIG_IGN)\n"
    "def solve(x):\n"
    "    while True:\n"
    "        pass\n"
)
PROTOCOL_GARBAGE = (
    "def solve(x):\n"
    "    for fd in range(3, 1100):  # every descriptor number (children have no /proc to list)\n"
    "        if int(fd) > 2:\n"
    "            try:\n"
    "                os.write(int(fd), b'\\xff' * 64)\n"
    "            except OSError:\n"
    "                pass\n"
    "    return 2 * x\n"
)
TERABYTE_FRAME = (
    "import json, struct\n"
    "def solve(x):\n"
    "    head = json.dumps({'kind': 'result', 'value': {'t': 'array', 'dtype': '<f8', 'shape': [2**37],"
    " 'buf': 0}, 'inputs': None, 'buffers': [2**40]}).encode()\n"
    "    for fd in range(3, 1100):  # every descriptor number (children have no /proc to list)\n"
    "        try:\n"
    "            os.write(int(fd), struct.pack('<I', len(head)) + head)\n"
    "        except OSError:\n"
    "            pass\n"
    "    load('time').sleep(60)\n"
)
REDUCE_ARRAY = (
    "class Evil:\n"
    "    def __reduce__(self):\n"
    "        return (os.system, ('touch /tmp/pwned-TOKEN',))\n"
    "def solve(x):\n"
    "    return np.array([Evil(), Evil()], dtype=object)\n"
)
WITH_STRUCT = {"allowed": frozenset({"numpy", "json", "struct"})}
ONE_MIB_ARRAYS = {"limits": Limits(cpu_time_s=2, wall_time_s=6, call_wall_time_s=5, max_array_bytes=1024 * 1024)}
SLOW_CPU = {"limits": Limits(cpu_time_s=1, wall_time_s=6, call_wall_time_s=5)}


@dataclass(frozen=True)
class Refused:
    """An attack that ends the call with `verdict`, saying `says` (when given), on `line` (when given)."""

    body: str
    verdict: Verdict
    says: str | None = None
    line: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


REFUSED = {
    # processes
    "a fork bomb cannot fork": Refused("def solve(x):\n    while True:\n        os.fork()\n", RUNTIME, "PermissionError"),
    "subprocess cannot execute anything": Refused(
        "def solve(x):\n    load('subprocess').run(['/bin/sh', '-c', 'touch /tmp/pwned-TOKEN'])\n    return 2 * x\n",
        RUNTIME,
        "PermissionError",
    ),
    "killing the parent": Refused("def solve(x):\n    os.kill(os.getppid(), 9)\n    return 2 * x\n", RUNTIME,
                                  "PermissionError"),
    "setuid to root": Refused("def solve(x):\n    os.setuid(0)\n    return 2 * x\n", RUNTIME, "PermissionError"),
    # resources
    "a memory bomb": Refused("def solve(x):\n    hoard = []\n    while True:\n        hoard.append(bytearray(10**7))\n",
                             Verdict.MEMORY_LIMIT_EXCEEDED),
    "a numpy allocation bomb": Refused("def solve(x):\n    return np.ones((10**5, 10**5))\n",
                                       Verdict.MEMORY_LIMIT_EXCEEDED),
    "a busy loop": Refused("def solve(x):\n    while True:\n        pass\n", Verdict.TIME_LIMIT_EXCEEDED),
    "sleeping, on the wall clock": Refused("def solve(x):\n    load('time').sleep(60)\n", Verdict.TIME_LIMIT_EXCEEDED,
                                           "wall clock"),
    "ignoring sigxcpu and sigterm": Refused(IGNORES_SIGNALS, Verdict.TIME_LIMIT_EXCEEDED, options=SLOW_CPU),
    "an output flood": Refused("def solve(x):\n    while True:\n        print('spam ' * 1000)\n",
                               Verdict.OUTPUT_LIMIT_EXCEEDED),
    "a stderr flood": Refused("def solve(x):\n    while True:\n        sys.stderr.write('e' * 4096)\n",
                              Verdict.OUTPUT_LIMIT_EXCEEDED),
    "unbounded recursion, with its line": Refused("def solve(x):\n    return solve(x)\n", RUNTIME, "RecursionError",
                                                  line=7),
    # Each level goes through map(), a C function, so the C stack overflows before any Python limit.
    "recursion that crashes the interpreter": Refused(
        "sys.setrecursionlimit(10**8)\ndef solve(x, depth=0):\n    return list(map(solve, [x], [depth + 1]))\n",
        RUNTIME,
        "your code crashed (signal SIGSEGV)",
    ),
    "a segfault through ctypes": Refused("def solve(x):\n    return sys.modules['ctypes'].string_at(0)\n", RUNTIME,
                                         "your code crashed (signal SIGSEGV)"),
    # network
    "a socket to redis": Refused(SOCKET_TO_REDIS, RUNTIME, "PermissionError"),
    "a socket to postgresql": Refused(
        "def solve(x):\n    load('socket').create_connection(('127.0.0.1', 5432), timeout=1)\n    return 2 * x\n",
        RUNTIME,
        "PermissionError",
    ),
    # exits
    "os._exit before returning": Refused("def solve(x):\n    os._exit(0)\n", RUNTIME,
                                         "your code exited before returning"),
    "sys.exit before returning": Refused("def solve(x):\n    sys.exit(0)\n", RUNTIME,
                                         "your code exited (SystemExit) before returning"),
    # forging results
    "patching ndarray methods": Refused("np.ndarray.__eq__ = lambda a, b: True\ndef solve(x):\n    return 2 * x\n",
                                        RUNTIME, "TypeError"),
    "an object array with __reduce__, never unpickled": Refused(REDUCE_ARRAY, RUNTIME, "dtype object"),
    "garbage on the protocol fd": Refused(PROTOCOL_GARBAGE, RUNTIME, "interfered with the grader's channel"),
    "a forged frame announcing a terabyte, unread": Refused(TERABYTE_FRAME, RUNTIME, "over the limit",
                                                            options=WITH_STRUCT),
    "a huge array return": Refused("def solve(x):\n    return np.zeros(10**6)\n", RUNTIME, "over the limit of 1 MiB",
                                   options=ONE_MIB_ARRAYS),
}  # fmt: skip


@pytest.mark.parametrize("refused", REFUSED.values(), ids=REFUSED.keys())
def test_an_attack_is_refused_with_its_own_verdict(sandbox: Sandbox, host: Host, refused: Refused) -> None:
    outcome = attack(sandbox, host, refused.body, **refused.options)
    assert outcome.verdict == refused.verdict, outcome.error
    assert outcome.error is not None
    if refused.says is not None:
        assert refused.says in outcome.error.message
    if refused.line is not None:
        assert outcome.error.line == refused.line
    limits = refused.options.get("limits", FAST)
    assert len(outcome.stdout) <= limits.output_bytes and len(outcome.stderr) <= limits.output_bytes
    assert host.redis.exists(REDIS_KEY) == 0


# System calls made through ctypes (no Python-level guard in the way): each must fail with -1.
SYSCALLS = {
    "ptrace of the parent, and TRACEME": "print(libc.ptrace(16, os.getppid(), 0, 0), libc.ptrace(0, 0, 0, 0))",
    "new namespaces and mounts": "print(libc.unshare(0x10000000), libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))",
    "a raw socket syscall": "print(libc.socket(2, 1, 0), libc.socket(1, 1, 0))",
}


@pytest.mark.parametrize("call", SYSCALLS.values(), ids=SYSCALLS.keys())
def test_a_refused_system_call_fails_and_the_function_still_returns(sandbox: Sandbox, host: Host, call: str) -> None:
    body = f"def solve(x):\n    libc = sys.modules['ctypes'].CDLL(None, use_errno=True)\n    {call}\n    return 2 * x\n"
    outcome = attack(sandbox, host, body)
    assert_honest_result(outcome)
    assert outcome.stdout == "-1 -1\n"


# ----------------------------------------------------------------------------- processes


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
        "    try:  # a child of a root-started sandbox gets no threads at all (runner.py)\n"
        "        load('threading').Thread(target=load('time').sleep, args=(3600,), daemon=False).start()\n"
        "    except RuntimeError as error:\n"
        "        print('thread', type(error).__name__)\n"
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
    # PermissionError where /proc is mounted, FileNotFoundError now that children have it covered.
    words = outcome.stdout.split()
    assert len(words) == 4 and set(words) <= {"PermissionError", "FileNotFoundError"}, words


# ----------------------------------------------------------------------------- resources


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
    assert after.stdout.strip() == "[]"  # the next child starts with a fresh, empty /tmp of its own


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


# ----------------------------------------------------------------------------- network


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
    assert int(outcome.stdout.split()[0]) == 0  # /proc is covered in every child: no process is visible


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


@pytest.mark.parametrize("raised", ["SystemExit(3)", "KeyboardInterrupt()", "type('Escape', (BaseException,), {})()"])
def test_base_exceptions_are_runtime_errors(sandbox: Sandbox, host: Host, raised: str) -> None:
    outcome = attack(sandbox, host, f"def solve(x):\n    raise {raised}\n")
    assert outcome.verdict == Verdict.RUNTIME_ERROR
    assert outcome.error.line == 7  # type: ignore[union-attr]
