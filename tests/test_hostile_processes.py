"""Submissions that reach for the other processes of the sandbox, through the engine's warm sandbox.

A child runs under the same kernel uid as the warm zygote (and as any sibling child), so every
system call that names another process by pid and checks only "same owner" would reach them:
lowering the zygote's resource limits (then every later child fails to set its own, and honest
learners get a runtime error), renicing or pinning it (every later child inherits that), or making
the kernel signal it through a file descriptor's owner (``F_SETOWN`` and SIGIO; the zygote dies and
the submission, lost twice, would end as ``internal_error``). Each attack runs at load time, prints
what the kernel answered (so the test knows it ran), and returns honestly: the verdict must be its
own ``accepted``, the zygote untouched as the host sees it, and the next learner accepted.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.engine import Engine, GradeResult
from grader.spec import ExerciseSpec
from grader.verdicts import Verdict

pytestmark = pytest.mark.sandbox

SPEC = ExerciseSpec.from_folder(Path(__file__).resolve().parent.parent / "content" / "exercises" / "relu-backward")
HONEST = "def relu_backward(dout, x):\n    return dout * (x > 0)\n"
# os, ctypes and libc past the import guard (a boundary only for honest mistakes).
PRELUDE = (
    "_wrap = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]\n"
    "sys = _wrap.__init__.__globals__['sys']\n"
    "os = sys.modules['os']\n"
    "ctypes = sys.modules['ctypes']\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.syscall.restype = ctypes.c_long\n"
    "def tried(name, result):\n"
    "    print('tried', name, result, ctypes.get_errno())\n"
)
LIMITS = (
    "resource = sys.modules['resource']\n"
    "class Limit(ctypes.Structure):\n"
    "    _fields_ = [('soft', ctypes.c_uint64), ('hard', ctypes.c_uint64)]\n"
    "mine = resource.getrlimit(resource.RLIMIT_AS)[0]\n"
    "cap = Limit(mine - (100 << 20), mine - (100 << 20))  # the zygote still runs, its next child cannot\n"
    "for pid in (1, 2, 3):\n"
    "    tried('prlimit', libc.prlimit64(pid, resource.RLIMIT_AS, ctypes.byref(cap), None))\n"
    "    tried('prlimit', libc.prlimit64(pid, resource.RLIMIT_NPROC, ctypes.byref(Limit(0, 0)), None))\n"
)
SCHEDULING = (
    "one_cpu = ctypes.c_uint64(1)\n"
    "for pid in (1, 2, 3):\n"
    "    tried('setpriority', libc.setpriority(0, pid, 19))\n"
    "    tried('affinity', libc.sched_setaffinity(pid, 8, ctypes.byref(one_cpu)))\n"
    "    tried('scheduler', libc.sched_setscheduler(pid, 5, ctypes.byref(ctypes.c_int(0))))  # SCHED_IDLE\n"
    "    tried('ioprio', libc.syscall(251, 1, pid, 7 << 13))  # ioprio_set: idle class\n"
    "tried('setpriority', libc.setpriority(2, 0, 19))  # PRIO_USER: every process of this uid\n"
    "tried('ioprio', libc.syscall(251, 3, 0, 7 << 13))  # IOPRIO_WHO_USER\n"
)
# SIGIO (here SIGINT, for which the Python zygote has a handler) goes to a descriptor's owner when it
# becomes readable. The second form sets the high bits of the command, which the kernel ignores.
SIGNALS = (
    "fcntl = sys.modules['fcntl']\n"
    "F_SETOWN, F_SETSIG, F_SETOWN_EX = 8, 10, 15\n"
    "owner = (ctypes.c_int * 2)(1, 1)  # F_OWNER_PID, pid 1\n"
    "for pid in (1, 2, 3):\n"
    "    for command, argument in ((F_SETOWN, pid), ((1 << 32) | F_SETOWN, pid), (F_SETOWN_EX, owner)):\n"
    "        read_end, write_end = os.pipe()\n"
    "        tried('fcntl', libc.syscall(72, read_end, ctypes.c_long(command), argument))\n"
    "        libc.syscall(72, read_end, F_SETSIG, 2)\n"
    "        fcntl.fcntl(read_end, fcntl.F_SETFL, fcntl.fcntl(read_end, fcntl.F_GETFL) | os.O_ASYNC)\n"
    "        os.write(write_end, b'x')\n"
    "sys.modules['time'].sleep(0.2)\n"
)
ATTACKS = {"limits": LIMITS, "scheduling": SCHEDULING, "signals": SIGNALS}


def zygote_pid(engine: Engine) -> int:
    """The host pid of the engine's zygote (bwrap's only child)."""
    bwrap = engine._sandbox.pid
    children = Path(f"/proc/{bwrap}/task/{bwrap}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def zygote_state(pid: int) -> dict[str, object]:
    """What an attack would change about the zygote, read from the host."""
    limits = Path(f"/proc/{pid}/limits").read_text()
    return {
        "limits": limits,
        "nice": os.getpriority(os.PRIO_PROCESS, pid),
        "affinity": os.sched_getaffinity(pid),
        "scheduler": os.sched_getscheduler(pid),
    }


def grade(engine: Engine, source: str) -> GradeResult:
    return engine.grade(SPEC, source)


@pytest.mark.parametrize("name", ATTACKS)
def test_no_submission_reaches_the_zygote_or_the_next_learner(engine: Engine, name: str) -> None:
    assert grade(engine, HONEST).verdict == Verdict.ACCEPTED
    pid = zygote_pid(engine)
    before = zygote_state(pid)
    restarts = engine.sandbox_restarts

    result = grade(engine, PRELUDE + ATTACKS[name] + HONEST)

    assert result.verdict == Verdict.ACCEPTED, result.feedback
    tries = [line.split() for line in result.stdout.splitlines() if line.startswith("tried ")]
    assert len(tries) >= 6, result.stdout  # the attack ran, every call of it
    assert all(int(answer) == -1 for _, _, answer, _ in tries), result.stdout
    assert engine.sandbox_restarts == restarts
    assert zygote_pid(engine) == pid
    assert zygote_state(pid) == before
    assert grade(engine, HONEST).verdict == Verdict.ACCEPTED


# fork through the 32-bit and x32 system call tables, which a filter written for x86-64 numbers
# would not match: the filter kills the calling thread instead (SIGSYS), whatever the call.
OTHER_ABIS = {
    "i386 int 0x80": (
        "mmap = sys.modules['importlib._bootstrap']._gcd_import('mmap')\n"
        "page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "page.write(bytes([0xB8, 2, 0, 0, 0, 0xCD, 0x80, 0xC3]))  # mov eax, 2 (fork); int 0x80; ret\n"
        "i386_fork = ctypes.CFUNCTYPE(ctypes.c_long)(ctypes.addressof(ctypes.c_char.from_buffer(page)))\n"
        "os.write(1, b'forking\\n')\n"
        "print('forked', i386_fork())\n"
    ),
    "x32": "os.write(1, b'forking\\n')\nprint('forked', libc.syscall(0x40000000 | 57))\n",
}


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 only")
@pytest.mark.parametrize("name", OTHER_ABIS)
def test_a_system_call_through_another_abi_kills_the_child(engine: Engine, name: str) -> None:
    result = grade(engine, PRELUDE + OTHER_ABIS[name] + HONEST)

    assert result.verdict == Verdict.RUNTIME_ERROR, result.feedback
    assert "SIGSYS" in result.feedback
    assert result.stdout.startswith("forking")
    assert grade(engine, HONEST).verdict == Verdict.ACCEPTED
