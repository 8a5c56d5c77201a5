"""Submissions with native code execution that go for the limits: memory the kernel holds for them,
counts it keeps per user of the host, threads, CPU time. Graded by the real engine.

The power assumed is tests/test_hostile_native.py's: ctypes and any system call by number, past the
import guard. Each attack prints what the kernel answered, and the next honest submission is accepted
on the same zygote.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from grader.engine import Engine
from grader.verdicts import Verdict
from tests.test_hostile_native import HONEST, PRELUDE, SPEC, answers, assert_next_learner_accepted, grade

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(os.uname().machine != "x86_64", reason="system call numbers of x86-64"),
]

EPERM = errno.EPERM

# Huge pages pinned by pipe slots: each round maps 4 MiB, asks for a transparent huge page in its
# aligned half, touches it, hands one 4 KiB page of it to a pipe (vmsplice keeps a reference to the
# page, not a copy) and unmaps it all. The pipe's reference keeps the whole 2 MiB folio alive, outside
# RLIMIT_AS: 256 slots a pipe, 2 MiB a slot. It stops at 1.5 GiB or after 3 s, holds for a second
# (for the host to see), and returns honestly.
PIN_HUGE_PAGES = """\
time = sys.modules['time']
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
HUGE, pinned, refused, started, pipes = 2 << 20, 0, 0, time.monotonic(), []
while pinned < 768 and time.monotonic() - started < 3:
    if pinned % 256 == 0 and len(pipes) <= pinned // 256:
        pipes.append(os.pipe())
        libc.fcntl(pipes[-1][1], 1031, 1 << 20)  # F_SETPIPE_SZ: 256 slots
    mapped = libc.mmap(None, 2 * HUGE, 3, 0x22, -1, 0)
    huge = (mapped + HUGE - 1) & ~(HUGE - 1)
    libc.madvise(huge, HUGE, 14)  # MADV_HUGEPAGE
    ctypes.memset(huge, 1, HUGE)
    page = (ctypes.c_ulong * 2)(huge, 4096)
    answer = call(278, pipes[-1][1], page, 1, 0)
    libc.munmap(mapped, 2 * HUGE)
    if answer != 4096:
        refused += 1
        if refused >= 8:
            break
        continue
    pinned += 1
print('pinned', pinned, 'refused', refused, ctypes.get_errno())
time.sleep(1)
"""


def _available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    raise AssertionError("no MemAvailable in /proc/meminfo")


@contextmanager
def lowest_available() -> Iterator[list[int]]:
    """Sample the host's MemAvailable (KiB) every 20 ms; yields [before, lowest so far]."""
    seen = [_available_kib()] * 2
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            seen[1] = min(seen[1], _available_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield seen
    finally:
        stop.set()
        sampler.join()


def test_pipes_cannot_pin_huge_pages_outside_the_memory_limits(engine: Engine) -> None:
    restarts = engine.sandbox_restarts
    limits = SPEC.sandbox_limits()

    with lowest_available() as seen:
        result = grade(engine, PRELUDE + PIN_HUGE_PAGES + HONEST)

    held_mib = (seen[0] - seen[1]) / 1024
    assert held_mib < limits.memory_mib + limits.outside_address_space_mib, f"{held_mib:.0f} MiB held: {result.stdout}"
    assert result.verdict == Verdict.ACCEPTED, result.feedback
    words = result.stdout.split()
    assert words[:1] == ["pinned"], result.stdout  # the attack ran
    assert (int(words[1]), int(words[3]), int(words[4])) == (0, 8, EPERM), result.stdout
    assert_next_learner_accepted(engine, restarts)


# Memory past RLIMIT_AS by other doors: address space reserved without backing, the limit raised, a
# memfd or a secret-memory file grown past the file size limit, everything locked, a System V segment
# larger than the child's IPC namespace allows. Each is refused.
MEMORY_DOORS = """\
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
GIB = 1 << 30
mapped = libc.mmap(None, 64 * GIB, 3, 0x22 | 0x4000, -1, 0)  # MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
print('tried', 'noreserve_64_gib', -1 if mapped == 2**64 - 1 else mapped, ctypes.get_errno())
print('tried', 'raise_rlimit_as', libc.setrlimit(9, (ctypes.c_ulong * 2)(1 << 40, 1 << 40)), ctypes.get_errno())
memfd = call(319, b'gradlab', 0)
tried('memfd_ftruncate_1_gib', 77, memfd, GIB)
tried('memfd_fallocate_1_gib', 285, memfd, 0, 0, GIB)
secret = call(447, 0)
tried('memfd_secret_64_mib', 77, secret, 64 << 20)
tried('mlockall', 151, 3)
tried('shmget_1_gib', 29, 0, GIB, 0o1600)
"""


def test_memory_past_the_limit_is_refused_by_every_other_door(engine: Engine) -> None:
    restarts = engine.sandbox_restarts

    result = grade(engine, PRELUDE + MEMORY_DOORS + HONEST)

    assert result.verdict == Verdict.ACCEPTED, result.feedback
    answered = answers(result)
    assert len(answered) == 7, result.stdout
    assert all(answer == -1 for answer, _ in answered.values()), result.stdout
    assert_next_learner_accepted(engine, restarts)


# CPU time with SIGXCPU ignored and every signal blocked, the soft limit raised to the hard one, and
# threads that spin in native code (ctypes releases the GIL): the verdict is still a time limit, in time.
CPU_HOG = """\
signal = sys.modules['signal']
signal.signal(signal.SIGXCPU, signal.SIG_IGN)
everything = (ctypes.c_ulong * 16)(*([2**64 - 1] * 16))
tried('block_every_signal', 14, 0, everything, 0, 8)  # rt_sigprocmask(SIG_BLOCK, ...)
hard = (ctypes.c_ulong * 2)()
libc.getrlimit(0, hard)
print('tried', 'raise_soft_cpu', libc.setrlimit(0, (ctypes.c_ulong * 2)(hard[1], hard[1])), 0)
print('tried', 'raise_hard_cpu', libc.setrlimit(0, (ctypes.c_ulong * 2)(hard[1] * 100, hard[1] * 100)), 0)
threading = sys.modules['importlib._bootstrap']._gcd_import('threading')
block = ctypes.create_string_buffer(1 << 22)
sys.stdout.flush()  # the child dies spinning: what it printed must be out before
def spin():
    while True:
        ctypes.memset(block, 1, len(block))
for _ in range(8):
    try:
        threading.Thread(target=spin, daemon=True).start()
    except RuntimeError:  # a child of a root-started sandbox gets no threads: one spinner then
        break
spin()
"""


def test_cpu_limit_holds_with_its_signal_ignored_and_blocked(engine: Engine) -> None:
    restarts = engine.sandbox_restarts

    result = grade(engine, PRELUDE + CPU_HOG + HONEST)

    assert result.verdict == Verdict.TIME_LIMIT_EXCEEDED, result.feedback
    answered = answers(result)
    assert answered["block_every_signal"][0] == 0 and answered["raise_soft_cpu"][0] == 0, result.stdout
    assert answered["raise_hard_cpu"][0] == -1, result.stdout
    assert result.timings["total_s"] < SPEC.sandbox_limits().wall_time_s + 2
    assert_next_learner_accepted(engine, restarts)


# Threads with small stacks (RLIMIT_AS then allows thousands; each is a task and a pid of the host).
# RLIMIT_NPROC caps them, except where the kernel does not count: for uid 0 of the host, which is
# what a child of a bubblewrap started by root is. There the child gets no thread at all.
THREADS = """\
threading, time = sys.modules['importlib._bootstrap']._gcd_import('threading'), sys.modules['time']
threading.stack_size(64 * 1024)
started = 0
try:
    for _ in range(64):
        threading.Thread(target=time.sleep, args=(1,), daemon=True).start()
        started += 1
except RuntimeError:
    pass
print('started', started)
"""


def test_threads_never_outnumber_the_cap_even_when_the_kernel_cannot_count_them(engine: Engine) -> None:
    restarts = engine.sandbox_restarts
    counted = engine._sandbox.details.get("threads", True)

    result = grade(engine, PRELUDE + THREADS + HONEST)

    assert result.verdict == Verdict.ACCEPTED, result.feedback
    started = int(result.stdout.split()[1])
    assert started <= (SPEC.sandbox_limits().max_threads if counted else 0), result.stdout
    assert counted == (os.geteuid() != 0)  # the worker's uid is the children's kernel uid under bubblewrap
    assert_next_learner_accepted(engine, restarts)


# Counts the kernel keeps per user of the host, which a child shares with the trusted worker (and,
# under a bubblewrap started by root, with every root process): queued signals, which POSIX timers
# hold one each of, and inotify watches. The child takes all it can and holds them; meanwhile this
# process, the worker, must still get a timer and a watch.
HOARD_PER_USER = """\
time = sys.modules['time']
timer = ctypes.c_int()
timers = 0
while timers < 200000 and call(222, 1, None, ctypes.byref(timer)) == 0:  # timer_create(CLOCK_MONOTONIC)
    timers += 1
paths, folders = [], ['/usr/lib']
while folders and len(paths) < 4000:  # 60 instances of 4000 watches: more than a user may have
    for entry in os.scandir(folders.pop()):
        paths.append(entry.path.encode())
        if entry.is_dir(follow_symlinks=False):
            folders.append(entry.path)
watches, instances, started = 0, 0, time.monotonic()
while instances < 60 and time.monotonic() - started < 3:
    group = libc.inotify_init1(0)
    if group < 0:
        break
    instances += 1
    for path in paths:
        if libc.inotify_add_watch(group, path, 0x100) < 0:
            break
        watches += 1
    else:
        continue
    break
print('timers', timers, 'instances', instances, 'watches', watches)
sys.stdout.flush()
time.sleep(1.5)
"""


def _worker_gets_a_timer_and_a_watch(folder: str) -> bool:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    timer = ctypes.c_void_p()
    if libc.timer_create(1, None, ctypes.byref(timer)) != 0:
        return False
    libc.timer_delete(timer)
    group = libc.inotify_init1(os.O_CLOEXEC)
    if group < 0:
        return False
    try:
        return bool(libc.inotify_add_watch(group, folder.encode(), 0x100) >= 0)
    finally:
        os.close(group)


def test_a_child_cannot_take_the_users_timers_or_file_watches(engine: Engine, tmp_path: Path) -> None:
    restarts = engine.sandbox_restarts
    refused: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.wait(0.05):
            if not _worker_gets_a_timer_and_a_watch(str(tmp_path)):
                refused.append(time.monotonic())

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        result = grade(engine, PRELUDE + HOARD_PER_USER + HONEST)
    finally:
        stop.set()
        prober.join()

    assert not refused, f"the worker was refused a timer or a watch {len(refused)} times: {result.stdout}"
    assert result.verdict == Verdict.ACCEPTED, result.feedback
    counts = result.stdout.split()
    assert counts[0] == "timers", result.stdout  # the attack ran
    assert int(counts[1]) <= 64 and int(counts[3]) == 0, result.stdout
    assert_next_learner_accepted(engine, restarts)
