"""Every submission starts in a pristine world and leaves nothing behind; the zygote cannot be stalled.

Writer-then-reader pairs run back to back in ONE warm sandbox: each writer leaves state of one kind
(files in /tmp, a mode-000 folder, /dev/shm, /dev, System V shared memory, message queues and
semaphores, POSIX message queues), then a reader takes a census of everything a later child could
see and must find exactly what a fresh child finds. The pairs run with the full sandbox and again
without the seccomp filter, so the namespaces alone are shown to hold. Hoarders try to keep memory
outside RLIMIT_AS; a stall (hundreds of thousands of folders) and a crash (a folder chain thousands
deep) are each followed by three correct submissions that must be accepted promptly.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grader.sandbox import Limits, Sandbox, SandboxError
from grader.sandbox.control import Control
from grader.sandbox.limits import BWRAP, SandboxBroken
from grader.verdicts import Isolation, Verdict

pytestmark = pytest.mark.sandbox

HAS_BWRAP = os.access(BWRAP, os.X_OK)
FAST = Limits(cpu_time_s=5, wall_time_s=10, call_wall_time_s=8, memory_mib=256)
# A cold walk of the whole tree (the interpreter, NumPy, PyTorch) takes seconds on a busy machine.
WALK = Limits(cpu_time_s=30, wall_time_s=90, call_wall_time_s=90, memory_mib=256)
ROOT = Path(__file__).resolve().parent.parent

# Learner code that reaches past the import guard (a boundary only for honest mistakes).
PRELUDE = """
_wrap = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]
sys = _wrap.__init__.__globals__['sys']
os = sys.modules['os']
ctypes = sys.modules['ctypes']
json = sys.modules['json']
libc = ctypes.CDLL(None, use_errno=True)
IPC_CREAT, O_CREAT, O_RDWR = 0o1000, 0o100, 2
libc.mq_open.restype = ctypes.c_int
libc.shmat.restype = ctypes.c_void_p

def census():
    # Everything a child could find of an earlier one, without knowing what it made.
    info = ctypes.create_string_buffer(512)
    found = {
        'tmp': sorted(os.listdir('/tmp')),
        'dev_shm': sorted(os.listdir('/dev/shm')),
        'dev': sorted(os.listdir('/dev')),
        'cwd': sorted(os.listdir('.')),
    }
    libc.shmctl(0, 14, info)  # SHM_INFO: the first int is the number of segments
    found['sysv_shm'] = ctypes.c_int.from_buffer(info).value
    libc.msgctl(0, 12, info)  # MSG_INFO: msgpool is the number of queues
    found['sysv_msg'] = ctypes.c_int.from_buffer(info).value
    libc.semctl(0, 0, 19, info)  # SEM_INFO: semusz (the 8th int) is the number of sets
    found['sysv_sem'] = (ctypes.c_int * 10).from_buffer(info)[7]
    fd = libc.mq_open(b'/gradlab-queue', 0)
    found['mqueue'] = fd >= 0
    return found

def writable():
    # Every folder of the whole tree this child may write to.
    found = []
    for folder, dirs, _ in os.walk('/'):
        if os.access(folder, os.W_OK):
            found.append(folder)
    return sorted(found)

def f():
    print(json.dumps(census()))
    return 1
"""

WRITERS = {
    "tmp-files": "for i in range(50):\n        open(f'/tmp/left-{i}', 'w').write('x' * 1000)\n",
    "cwd-files": "open('left-here', 'w').write('x')\n",
    "tmp-mode-000-folder": (
        "os.makedirs('/tmp/locked/inner')\n"
        "    open('/tmp/locked/inner/f', 'w').write('x')\n"
        "    os.chmod('/tmp/locked/inner', 0)\n"
        "    os.chmod('/tmp/locked', 0)\n"
    ),
    "dev-shm-files": "open('/dev/shm/left', 'wb').write(b'x' * 100000)\n",
    "dev-files": (
        "for path in ('/dev/left', '/dev/pts/left', '/dev/mqueue'):\n"
        "        try:\n"
        "            open(path, 'w').write('x')\n"
        "        except OSError as error:\n"
        "            print(path, error.errno)\n"
    ),
    "sysv-shm": (
        "sid = libc.shmget(0x4711, 1 << 20, IPC_CREAT | 0o666)\n"
        "    address = libc.shmat(sid, None, 0)\n"
        "    if address not in (None, ctypes.c_void_p(-1).value):\n"
        "        ctypes.memset(address, 7, 1 << 20)\n"
        "        libc.shmdt(ctypes.c_void_p(address))\n"
    ),
    "sysv-msg": (
        "qid = libc.msgget(0x4712, IPC_CREAT | 0o666)\n"
        "    message = ctypes.create_string_buffer(b'\\x01\\0\\0\\0\\0\\0\\0\\0' + b'left' * 100)\n"
        "    libc.msgsnd(qid, message, 400, 0o4000)\n"
    ),
    "sysv-sem": "libc.semget(0x4713, 4, IPC_CREAT | 0o666)\n",
    "posix-mqueue": "libc.mq_open(b'/gradlab-queue', O_CREAT | O_RDWR, 0o666, None)\n",
}


def writer(kind: str) -> str:
    return PRELUDE + "\ndef f():\n    " + WRITERS[kind] + "    print(json.dumps(census()))\n    return 1\n"


@pytest.fixture(scope="module", params=["full", "namespaces-only"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    if not HAS_BWRAP:
        pytest.skip(f"{BWRAP} is not installed (scripts/install-system-deps.sh)")
    box = Sandbox.start(seccomp=request.param == "full")
    expected = Isolation.NAMESPACES_SECCOMP if request.param == "full" else Isolation.NAMESPACES
    assert box.isolation == expected
    yield box
    box.close()


def census(box: Sandbox, source: str = PRELUDE) -> dict[str, Any]:
    """What the child's census printed (its last line)."""
    with box.session(source, "f", limits=FAST) as session:
        session.call()
        return dict(json.loads(session.stdout.splitlines()[-1]))


def test_a_fresh_child_may_write_only_to_its_own_tmp_and_dev_shm(sandbox: Sandbox) -> None:
    source = PRELUDE + "\ndef g():\n    print(json.dumps(writable()))\n    return 1\n"
    with sandbox.session(source, "g", limits=WALK) as session:
        session.call()
        assert json.loads(session.stdout) == ["/dev/shm", "/tmp"]
    fresh = census(sandbox)
    assert fresh["tmp"] == fresh["dev_shm"] == fresh["cwd"] == []
    assert (fresh["sysv_shm"], fresh["sysv_msg"], fresh["sysv_sem"], fresh["mqueue"]) == (0, 0, 0, False)


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_what_one_child_leaves_the_next_cannot_find(sandbox: Sandbox, kind: str) -> None:
    fresh = census(sandbox)
    for _ in range(2):  # twice: a writer meets its own leftovers if anything survived
        made = census(sandbox, writer(kind))
        assert made != fresh or kind == "dev-files", f"the {kind} writer changed nothing: the test would prove nothing"
        assert census(sandbox) == fresh, kind


def _call(box: Sandbox, source: str) -> Any:
    with box.session(source, "f", limits=FAST) as session:
        return session.call()


def test_the_writers_could_write_where_a_child_may(sandbox: Sandbox) -> None:
    """The pairs above prove something only if the writers' state existed while they ran."""
    made = {kind: census(sandbox, writer(kind)) for kind in WRITERS}
    assert len(made["tmp-files"]["tmp"]) == 50 and made["cwd-files"]["cwd"] == ["left-here"]
    assert made["tmp-mode-000-folder"]["tmp"] == ["locked"] and made["dev-shm-files"]["dev_shm"] == ["left"]
    assert "left" not in made["dev-files"]["dev"]
    if sandbox.details.get("ipc_limits"):  # otherwise the filter denies System V and POSIX IPC
        assert made["sysv-shm"]["sysv_shm"] == 1 and made["sysv-msg"]["sysv_msg"] == 1
        assert made["sysv-sem"]["sysv_sem"] == 1 and made["posix-mqueue"]["mqueue"] is True


def test_no_child_can_make_namespaces_of_its_own_even_without_the_filter(sandbox: Sandbox) -> None:
    """Its own user and mount namespaces would let it mount an uncapped tmpfs and hold memory there."""
    source = PRELUDE + (
        "\ndef g():\n"
        "    made = libc.unshare(0x10000000 | 0x00020000)\n"
        "    tmpfs = libc.mount(b'tmpfs', b'/tmp', b'tmpfs', 0, b'size=1g')\n"
        "    return [made, tmpfs]\n"
    )
    with sandbox.session(source, "g", limits=FAST) as session:
        assert session.call() == [-1, -1]


HOARDER = (
    PRELUDE
    + """
def f():
    held = {'dev_shm': 0, 'tmp': 0, 'sysv': 0}
    for folder, key in (('/dev/shm', 'dev_shm'), ('/tmp', 'tmp')):
        try:
            for i in range(1024):
                with open(f'{folder}/hoard-{i}', 'wb') as out:
                    for _ in range(4):
                        out.write(b'x' * (256 * 1024))
                        held[key] += 256 * 1024
        except OSError:
            pass
    for i in range(64):
        sid = libc.shmget(0x5000 + i, 16 << 20, IPC_CREAT | 0o666)
        if sid < 0:
            break
        address = libc.shmat(sid, None, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            break
        ctypes.memset(address, 1, 16 << 20)
        libc.shmdt(ctypes.c_void_p(address))
        held['sysv'] += 16 << 20
    print(json.dumps(held))
    return 1
"""
)


def _host_shmem_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1])
    raise AssertionError("no Shmem line in /proc/meminfo")


def _settled_shmem_kib(baseline: int, within_s: float = 2.0) -> int:
    """Host Shmem once it is back within 8 MiB of ``baseline``, or its value after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        value = _host_shmem_kib()
        if value - baseline < 8 * 1024 or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def test_a_hoarder_holds_at_most_its_caps_and_nothing_after_its_verdict(sandbox: Sandbox) -> None:
    limits = Limits(cpu_time_s=5, wall_time_s=10, call_wall_time_s=8, memory_mib=256, file_size_mib=1)
    before = _host_shmem_kib()
    with sandbox.session(HOARDER, "f", limits=limits) as session:
        session.call()
        held = json.loads(session.stdout)
        during = _host_shmem_kib()
    mib = 1 << 20
    assert held["dev_shm"] <= limits.shm_mib * mib and held["tmp"] <= limits.tmp_mib * mib, held
    assert held["sysv"] <= limits.shm_mib * mib, held
    assert sum(held.values()) / mib <= limits.outside_address_space_mib
    assert held["dev_shm"] >= (limits.shm_mib - 1) * mib  # it really filled what it was allowed
    # Host memory (other processes share this machine, hence the slack): held while it ran, gone after.
    assert during - before > 8 * 1024, (before, during)
    # The kernel frees a dead IPC namespace from a work queue, a few milliseconds after the child.
    after = _settled_shmem_kib(before)
    assert after - before < 8 * 1024, (before, during, after)


def test_hoarders_back_to_back_do_not_add_up(sandbox: Sandbox) -> None:
    before = _host_shmem_kib()
    for _ in range(5):
        _call(sandbox, HOARDER)
    assert _settled_shmem_kib(before) - before < 8 * 1024


# ----------------------------------------------------------------------------- stall and crash, graded


STALL = PRELUDE + (
    "\ndef linear_backward(dout, x, w, b):\n"
    "    made = 0\n"
    "    try:\n"
    "        for i in range(330_000):\n"
    "            os.mkdir(f'/tmp/{i}')\n"
    "            made += 1\n"
    "    except OSError:\n"
    "        pass\n"
    "    print('made', made)\n"
    "    return dout @ w.T, x.T @ dout, dout.sum(axis=0)\n"
)
CRASH = PRELUDE + (
    "\ndef linear_backward(dout, x, w, b):\n"
    "    os.chdir('/tmp')\n"
    "    made = 0\n"
    "    try:\n"
    "        for i in range(3000):\n"
    "            os.mkdir('d')\n"
    "            os.chdir('d')\n"
    "            made += 1\n"
    "    except OSError:\n"
    "        pass\n"
    "    print('deep', made)\n"
    "    return dout @ w.T, x.T @ dout, dout.sum(axis=0)\n"
)


@pytest.mark.parametrize("attack", [STALL, CRASH], ids=["330k-folders", "3000-deep-chain"])
def test_a_stall_or_a_crash_is_followed_by_three_prompt_accepts(engine: Any, attack: str) -> None:
    from grader.spec import ExerciseSpec

    folder = ROOT / "content" / "exercises" / "linear-backward"
    spec = ExerciseSpec.from_folder(folder)
    solution = (folder / "solution.py").read_text()
    engine.grade(spec, solution)  # warm
    started = time.monotonic()
    result = engine.grade(spec, attack)
    assert result.verdict != Verdict.INTERNAL_ERROR
    assert time.monotonic() - started < 15
    for _ in range(3):
        started = time.monotonic()
        after = engine.grade(spec, solution)
        elapsed = time.monotonic() - started
        assert after.verdict == Verdict.ACCEPTED, after.feedback
        assert elapsed < 2.0, f"a correct submission after the attack took {elapsed:.2f} s"


# ----------------------------------------------------------------------------- the control channel


def _zygote_pid(box: Sandbox) -> int:
    """The host pid of the zygote (bwrap's child), found through the host's /proc."""
    children = Path(f"/proc/{box.pid}/task/{box.pid}/children").read_text().split()
    return int(children[0]) if children else box.pid


def test_a_reply_out_of_turn_breaks_the_channel_for_good() -> None:
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    control = Control(ours, timeout_s=1)
    theirs.send(json.dumps({"id": 7, "pid": 42}).encode())  # an old reply, waiting in the socket
    with pytest.raises(SandboxBroken, match="out of turn"):
        control.request({"op": "spawn"})
    with pytest.raises(SandboxBroken, match="out of service"):
        control.request({"op": "spawn"})  # never resynchronised: broken stays broken (the socket is closed)
    theirs.close()


def test_no_reply_within_the_deadline_breaks_the_channel() -> None:
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    control = Control(ours, timeout_s=0.2)
    started = time.monotonic()
    with pytest.raises(SandboxBroken, match="deadline"):
        control.request({"op": "reap", "pid": 3})
    assert time.monotonic() - started < 1
    theirs.close()


@pytest.mark.skipif(not HAS_BWRAP, reason=f"{BWRAP} is not installed")
def test_a_stuck_zygote_is_replaced_and_the_next_submission_is_graded() -> None:
    with Sandbox.start(control_timeout_s=1) as box:
        assert _call(box, "def f():\n    return 1\n") == 1
        stuck = _zygote_pid(box)
        os.kill(stuck, signal.SIGSTOP)  # it stops answering, as a zygote blocked on anything would
        started = time.monotonic()
        assert _call(box, "def f():\n    return 2\n") == 2  # the spawn timed out, was retried on a new zygote
        assert time.monotonic() - started < 5
        assert box.restarts == 1 and _zygote_pid(box) != stuck
        assert not Path(f"/proc/{stuck}").exists() or "Z" in Path(f"/proc/{stuck}/stat").read_text().split()[2]
        for value in range(3, 6):
            assert _call(box, f"def f():\n    return {value}\n") == value


@pytest.mark.skipif(not HAS_BWRAP, reason=f"{BWRAP} is not installed")
def test_a_zygote_killed_between_submissions_is_replaced_at_once() -> None:
    with Sandbox.start() as box:
        os.kill(_zygote_pid(box), signal.SIGKILL)
        box._process.wait()
        assert _call(box, "def f():\n    return 3\n") == 3
        assert box.restarts == 1 and box.is_alive()


def test_a_child_that_dies_while_the_zygote_is_replaced_is_not_the_learners_fault() -> None:
    from grader.sandbox import SandboxUnavailable

    with Sandbox.start() as box:
        with box.session("def f():\n    return 1\n", "f", limits=FAST) as session:
            box.restart()
            with pytest.raises(SandboxUnavailable):
                session.call()
        with pytest.raises(SandboxError) as caught:  # a learner error stays the learner's afterwards
            _call(box, "def f():\n    raise ValueError('x')\n")
        assert caught.value.verdict == Verdict.RUNTIME_ERROR


# ----------------------------------------------------------------------------- explicit process isolation


@pytest.mark.skipif(os.getuid() != 0, reason="process isolation needs a worker started as root")
def test_process_isolation_runs_learner_code_as_another_uid_that_reads_nothing_of_the_worker() -> None:
    from grader.sandbox.core import protected_paths

    files, _ = protected_paths()
    probe = PRELUDE + (
        f"\nPATHS = {[*files, '/proc/1/environ', '/etc/shadow']!r}\n"
        "def g():\n"
        "    opened = []\n"
        "    for path in PATHS:\n"
        "        try:\n"
        "            open(path, 'rb').read(1)\n"
        "            opened.append(path)\n"
        "        except OSError:\n"
        "            pass\n"
        "    print(json.dumps({'uid': os.getuid(), 'opened': opened, 'world': census()}))\n"
        "    return 1\n"
    )
    with Sandbox.start(use_bwrap=False) as box:
        assert box.isolation == Isolation.PROCESS
        for _ in range(2):  # the second child finds nothing of the first
            with box.session(probe, "g", limits=FAST) as session:
                session.call()
                report = json.loads(session.stdout)
            assert report["uid"] == 65534 and report["opened"] == []
            assert report["world"]["tmp"] == [] and report["world"]["sysv_shm"] == 0
            _call(box, writer("tmp-files"))
