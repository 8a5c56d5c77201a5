"""Submissions with native code execution: raw system calls through ctypes, graded by the real engine.

The import guard is no boundary: learner code reaches ``sys``, ``os`` and ``ctypes`` (NumPy loads it in
the zygote) and from there calls any system call by number. These tests assume exactly that power and
check the layers under it: every call that reaches another process, the kernel's privileged
interfaces, the network, exec or new namespaces is refused by the seccomp filter or the kernel, and
tampering with the protocol's own descriptors is the learner's own verdict. Each attack runs at load
time, prints what the kernel answered (so the test knows it ran), and the next honest submission is
accepted on the same zygote. Attacks on the limits (memory the kernel holds for the child, per-user
counts, threads, CPU time) are in tests/test_hostile_native_limits.py, which shares these helpers.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from grader.engine import Engine, GradeResult
from grader.spec import ExerciseSpec
from grader.verdicts import Verdict

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(os.uname().machine != "x86_64", reason="system call numbers of x86-64"),
]

SPEC = ExerciseSpec.from_folder(Path(__file__).resolve().parent.parent / "content" / "exercises" / "relu-backward")
HONEST = "def relu_backward(dout, x):\n    return dout * (x > 0)\n"
# os, ctypes and a raw syscall() past the import guard; `tried` prints the kernel's answer.
PRELUDE = """\
_wrap = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]
sys = _wrap.__init__.__globals__['sys']
os, ctypes = sys.modules['os'], sys.modules['ctypes']
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
buf = ctypes.create_string_buffer(4096)
iov = (ctypes.c_ulong * 2)(ctypes.addressof(buf), 16)

def call(number, *args):
    ctypes.set_errno(0)
    return libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) if type(a) is int else a for a in args])

def tried(name, number, *args):
    result = call(number, *args)
    print('tried', name, result, ctypes.get_errno())
    return result

"""


def grade(engine: Engine, source: str) -> GradeResult:
    return engine.grade(SPEC, source)


def answers(result: GradeResult) -> dict[str, tuple[int, int]]:
    """What the kernel answered each call the attack printed: name -> (result, errno)."""
    found = {}
    for line in result.stdout.splitlines():
        if line.startswith("tried "):
            _, name, answer, number = line.split()
            found[name] = (int(answer), int(number))
    return found


def assert_next_learner_accepted(engine: Engine, restarts: int) -> None:
    assert engine.sandbox_restarts == restarts, "the attack cost the sandbox a restart"
    assert grade(engine, HONEST).verdict == Verdict.ACCEPTED


EPERM, EINVAL, ENOSYS = errno.EPERM, errno.EINVAL, errno.ENOSYS
CLONE_VM, CLONE_SIGHAND, CLONE_THREAD = 0x100, 0x800, 0x10000
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWPID = 0x20000, 0x10000000, 0x40000000, 0x20000000
THREAD = CLONE_VM | CLONE_SIGHAND | CLONE_THREAD
# name: (arguments after the number, the errnos that mean "refused"). Pid 1 is the zygote (bubblewrap's
# --as-pid-1), the only unfiltered process a child could hope to reach. `memfd` and the pipe ends are
# made by the attack before the calls (see REFUSED_SETUP).
REFUSED: dict[str, tuple[str, set[int]]] = {
    "ptrace_attach_zygote": ("101, 16, 1, 0, 0", {EPERM}),
    "ptrace_traceme": ("101, 0, 0, 0, 0", {EPERM}),
    "process_vm_readv_zygote": ("310, 1, iov, 1, iov, 1, 0", {EPERM}),
    "process_vm_writev_zygote": ("311, 1, iov, 1, iov, 1, 0", {EPERM}),
    "perf_event_open": ("298, buf, 0, -1, -1, 0", {EPERM}),
    "bpf": ("321, 0, buf, 48", {EPERM}),
    "userfaultfd": ("323, 0", {EPERM}),
    "keyctl": ("250, 0, 0, 0", {EPERM}),
    "add_key": ("248, b'user', b'gradlab', b'x', 1, -2", {EPERM}),
    "request_key": ("249, b'user', b'gradlab', 0, -2", {EPERM}),
    "io_uring_setup": ("425, 4, buf", {EPERM}),
    "open_by_handle_at": ("304, -100, buf, 0", {EPERM, EINVAL}),
    "mount_tmpfs": ("165, b'none', b'/tmp', b'tmpfs', 0, 0", {EPERM}),
    "umount_proc": ("166, b'/proc', 2", {EPERM}),
    "open_tree": ("428, -100, b'/', 1", {EPERM}),
    "fsopen": ("430, b'tmpfs', 0", {EPERM}),
    "chroot": ("161, b'/tmp'", {EPERM}),
    "pivot_root": ("155, b'/tmp', b'/tmp'", {EPERM}),
    "unshare_user": (f"272, {CLONE_NEWUSER}", {EPERM}),
    "unshare_net": (f"272, {CLONE_NEWNET}", {EPERM}),
    "setns": ("308, 0, 0", {EPERM}),
    "clone_process": ("56, 17, 0, 0, 0, 0", {EPERM}),
    "clone_namespaces": (f"56, {CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | 17}, 0, 0, 0, 0", {EPERM}),
    "clone_thread_new_mounts": (f"56, {THREAD | CLONE_NEWNS | CLONE_NEWNET}, 0, 0, 0, 0", {EPERM, EINVAL}),
    "clone3": ("435, buf, 88", {ENOSYS}),
    "fork": ("57", {EPERM}),
    "vfork": ("58", {EPERM}),
    "execve": ("59, b'/usr/bin/true', 0, 0", {EPERM}),
    "execveat_memfd": ("322, memfd, b'', 0, 0, 0x1000", {EPERM}),
    "personality": ("135, 0x0400000", {EPERM}),
    "kcmp": ("312, 1, os.getpid(), 0, 0, 0", {EPERM}),
    "pidfd_open_zygote": ("434, 1, 0", {EPERM}),
    "pidfd_getfd": ("438, 0, 0, 0", {EPERM}),
    "kill_zygote": ("62, 1, 0", {EPERM}),
    "kill_everyone": ("62, -1, 0", {EPERM}),
    "tgkill_zygote": ("234, 1, 1, 0", {EPERM}),
    "rt_sigqueueinfo_zygote": ("129, 1, 10, buf", {EPERM}),
    "socket_unix": ("41, 1, 1, 0", {EPERM}),
    "socket_netlink": ("41, 16, 3, 0", {EPERM}),
    "socket_packet": ("41, 17, 3, 0", {EPERM}),
    "socket_inet": ("41, 2, 1, 0", {EPERM}),
    "socket_inet6": ("41, 10, 2, 0", {EPERM}),
    "socketpair": ("53, 1, 1, 0, buf", {EPERM}),
    "vmsplice": ("278, pipe_w, iov, 1, 0", {EPERM}),
    "splice": ("275, memfd, 0, pipe_w, 0, 16, 0", {EPERM}),
    "tee": ("276, pipe_r, pipe2_w, 16, 0", {EPERM}),
    "sendfile": ("40, pipe_w, memfd, 0, 16", {EPERM}),
    "syslog": ("103, 3, buf, 100", {EPERM}),
    "iopl": ("172, 3", {EPERM}),
    "setuid_root": ("105, 0", {EPERM}),
}
REFUSED_SETUP = (
    "memfd = call(319, b'gradlab', 0)\n"
    "os.write(memfd, b'x' * 64)\n"
    "os.lseek(memfd, 0, 0)\n"
    "pipe_r, pipe_w = os.pipe()\n"
    "os.write(pipe_w, b'y' * 64)\n"
    "pipe2_r, pipe2_w = os.pipe()\n"
    "print('memfd', memfd)\n"
)


def test_every_privileged_or_outward_system_call_is_refused(engine: Engine) -> None:
    restarts = engine.sandbox_restarts
    calls = "".join(f"tried({name!r}, {arguments})\n" for name, (arguments, _) in REFUSED.items())

    result = grade(engine, PRELUDE + REFUSED_SETUP + calls + HONEST)

    assert result.verdict == Verdict.ACCEPTED, result.feedback
    assert int(result.stdout.split()[1]) > 2, result.stdout  # memfd_create itself is allowed
    answered = answers(result)
    assert set(answered) == set(REFUSED), result.stdout  # every call ran
    wrong = {name: answer for name, answer in answered.items() if answer[0] != -1 or answer[1] not in REFUSED[name][1]}
    assert not wrong, f"allowed or refused for another reason: {wrong}"
    assert_next_learner_accepted(engine, restarts)


# The protocol's own pipes, tampered with at native speed: each ends as the submission's own verdict
# (or, when it changes nothing the grader relies on, as the honest result), never as a failure of the
# grader, and the zygote is not replaced. REPLY and REQUEST are the runner's descriptor numbers.
CHANNEL = """\
runner = sys.modules['__main__']
REQUEST, REPLY = runner.REQUEST_FD, runner.REPLY_FD
"""
TAMPERING: dict[str, tuple[str, Verdict]] = {
    "close_the_reply_pipe": ("os.close(REPLY)\n", Verdict.RUNTIME_ERROR),
    "close_the_request_pipe": ("os.close(REQUEST)\n", Verdict.RUNTIME_ERROR),
    "stdout_into_the_reply_pipe": ("os.dup2(REPLY, 1)\nprint('accepted')\n", Verdict.RUNTIME_ERROR),
    "reply_pipe_closed_behind_a_copy": (
        'copy = os.dup(REPLY)\nos.close(REPLY)\nos.write(copy, b\'\\x10\\x00\\x00\\x00{"kind":"ready"}\')\n',
        Verdict.RUNTIME_ERROR,
    ),
    "non_blocking_pipes": (
        "for fd in (REQUEST, REPLY, 1, 2):\n    libc.fcntl(fd, 4, 0o4000)  # F_SETFL O_NONBLOCK\n",
        Verdict.RUNTIME_ERROR,  # the runner's own blocking read of the next request fails
    ),
    "one_page_pipes": (
        "for fd in (REQUEST, REPLY, 1, 2):\n    print('tried', 'shrink_' + str(fd), libc.fcntl(fd, 1031, 4096), 0)\n",
        Verdict.ACCEPTED,
    ),
    "native_flood_of_forged_frames": (
        "threading = sys.modules['importlib._bootstrap']._gcd_import('threading')\n"
        'forged = b\'\\x10\\x00\\x00\\x00{"kind":"ready"}\' * 4096\n'
        "def flood():\n"
        "    while libc.write(REPLY, forged, len(forged)) > 0:\n"
        "        pass\n"
        "threading.Thread(target=flood, daemon=True).start()\n",
        Verdict.RUNTIME_ERROR,
    ),
}


@pytest.mark.parametrize("name", TAMPERING)
def test_tampering_with_the_protocols_pipes_is_the_submissions_own_verdict(engine: Engine, name: str) -> None:
    restarts = engine.sandbox_restarts
    body, verdict = TAMPERING[name]

    result = grade(engine, PRELUDE + CHANNEL + body + HONEST)

    assert result.verdict == verdict, result.feedback
    assert result.timings["total_s"] < SPEC.sandbox_limits().wall_time_s
    assert_next_learner_accepted(engine, restarts)
