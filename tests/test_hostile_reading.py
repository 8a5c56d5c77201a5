"""Submissions that read what the child inherited from the warm zygote, through the engine.

A child is a fork of the zygote: its frames lead up into the zygote's loop and ``gc`` lists every
object the zygote held when it forked. Nothing there may name the host (the project's folder, the
worker's pid); a submission that walks it all, prints what it found and returns honestly must find
nothing and be accepted, and so must the next learner.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.engine import Engine
from grader.sandbox import Sandbox, SandboxUnavailable, core
from grader.sandbox.core import protected_paths
from grader.sandbox.layout import Bind, Layout, bwrap_layout
from grader.spec import ExerciseSpec
from grader.verdicts import Isolation, Verdict

pytestmark = pytest.mark.sandbox

PROJECT = Path(__file__).resolve().parent.parent
SPEC = ExerciseSpec.from_folder(PROJECT / "content" / "exercises" / "relu-backward")
HONEST = "def relu_backward(dout, x):\n    return dout * (x > 0)\n"
# Every string reachable from the frames above the learner's and from every object gc tracks.
WALK = """\
_wrap = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]
sys = _wrap.__init__.__globals__['sys']
gc = sys.modules['gc']

def strings(value, seen, found, depth=0):
    if id(value) in seen or depth > 12:
        return
    seen.add(id(value))
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, dict):
        for key, item in list(value.items()):
            strings(key, seen, found, depth + 1)
            strings(item, seen, found, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in list(value):
            strings(item, seen, found, depth + 1)

NEEDLES = [bytes.fromhex(needle).decode() for needle in HEX_NEEDLES]
found = []
seen = {id(found), id(NEEDLES), *map(id, NEEDLES)}  # the needles themselves are not hits
frame, depth = sys._getframe(), 0
while frame is not None:
    strings(frame.f_locals, seen, found)
    frame, depth = frame.f_back, depth + 1
for held in gc.get_objects():
    if isinstance(held, (dict, list, tuple)):
        strings(held, seen, found)
print('frames', depth, 'strings', len(found))
print('hits', [text[:200] for text in found if any(needle in text for needle in NEEDLES)])
"""


def test_nothing_the_child_inherits_names_the_host(engine: Engine) -> None:
    needles = [str(PROJECT), f"/proc/{os.getpid()}/"]
    # In hex: the source's own text is in the child too, and must not be found.
    source = f"HEX_NEEDLES = {[needle.encode().hex() for needle in needles]!r}\n" + WALK + HONEST
    result = engine.grade(SPEC, source)

    assert result.verdict == Verdict.ACCEPTED, result.feedback
    walked = result.stdout.splitlines()
    frames, strings = int(walked[0].split()[1]), int(walked[0].split()[3])
    assert frames >= 4 and strings > 100, walked[0]  # it walked up into the zygote's loop and its heap
    assert walked[1] == "hits []", walked[1]
    assert engine.grade(SPEC, HONEST).verdict == Verdict.ACCEPTED


# Every byte around the child's stack, its brk heap and its Python objects, read through ctypes
# (loaded by NumPy in the zygote, so reachable whatever the import guard says). write() from an
# address into a pipe fails with EFAULT where nothing is mapped, so the walk never crashes. Pages
# are read into one buffer and searched there: the needles' only copies are their own objects and
# that buffer, whose addresses are left out.
RAW = """\
_wrap = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]
sys = _wrap.__init__.__globals__['sys']
os, ctypes = sys.modules['os'], sys.modules['ctypes']
libc = ctypes.CDLL(None)
libc.getauxval.restype, libc.getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
libc.sbrk.restype, libc.sbrk.argtypes = ctypes.c_void_p, [ctypes.c_long]
libc.write.restype, libc.write.argtypes = ctypes.c_ssize_t, [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
NEEDLES = [bytes.fromhex(needle) for needle in HEX_NEEDLES]
PAGE, OVERLAP, LIMIT = 4096, 256, 4096
buffer = bytearray(PAGE + OVERLAP)
start = ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))
own = {id(needle) + sys.getsizeof(b'') - 1 for needle in NEEDLES} | set(range(start, start + len(buffer)))
read_end, write_end = os.pipe()

def read_at(address):
    for size in (PAGE + OVERLAP, PAGE):
        if libc.write(write_end, address, size) == size:
            got = 0
            while got < size:
                got += os.readv(read_end, [memoryview(buffer)[got:size]])
            return size
        os.set_blocking(read_end, False)
        try:
            while os.read(read_end, 1 << 16):
                pass
        except BlockingIOError:
            pass
        os.set_blocking(read_end, True)
    return 0

anchors = [libc.getauxval(31), libc.sbrk(0), id(sys), id(sys.modules), id(os.environ), id(NEEDLES)]
seen, hits = set(), []
for anchor in anchors:
    base = anchor - anchor % PAGE
    for step in (-PAGE, PAGE):
        address = base if step < 0 else base + PAGE
        for _ in range(LIMIT):
            if address not in seen:
                size = read_at(address)
                if not size:
                    break
                seen.add(address)
                for needle in NEEDLES:
                    at = buffer.find(needle, 0, size)
                    while at >= 0:
                        if address + at not in own:
                            hits.append(hex(address + at))
                        at = buffer.find(needle, at + 1, size)
            address += step
print('scanned', len(seen) * PAGE)
print('hits', hits[:20])
"""


def test_no_byte_of_the_childs_memory_names_the_host(engine: Engine) -> None:
    """The zygote never held a host path: not in its environment block, not in a freed heap chunk."""
    needles = [str(PROJECT)]
    source = f"HEX_NEEDLES = {[needle.encode().hex() for needle in needles]!r}\n" + RAW + HONEST
    result = engine.grade(SPEC, source)

    assert result.verdict == Verdict.ACCEPTED, result.feedback
    lines = result.stdout.splitlines()
    assert lines[-2].startswith("scanned") and int(lines[-2].split()[1]) > 4_000_000, lines
    assert lines[-1] == "hits []", lines


def test_a_layout_reports_a_host_path_it_would_show_and_where() -> None:
    layout = Layout(
        binds=(Bind(Path("/usr"), "/usr"), Bind(Path("/srv/venv/lib/site-packages/numpy"), "/opt/site/numpy")),
        links=(),
        hidden=("/usr/lib/python3/dist-packages",),
        python="/opt/python/bin/python3",
        library_path="/opt/python/lib",
    )
    paths = ["/usr/local/project/manage.py", "/usr/lib/python3/dist-packages/secret.py", "/srv/venv/settings.py"]
    assert layout.exposed(paths) == [("/usr/local/project/manage.py", "/usr/local/project/manage.py")]
    assert layout.exposed(["/srv/venv/lib/site-packages/numpy/db.sqlite3"]) == [
        ("/srv/venv/lib/site-packages/numpy/db.sqlite3", "/opt/site/numpy/db.sqlite3")
    ]
    assert bwrap_layout().exposed(protected_paths()[0]) == []  # this project: nothing protected is bound


def test_a_sandbox_that_would_show_a_protected_file_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "protected_paths", lambda: (["/usr/bin/env"], ["/usr/bin"]))
    with pytest.raises(SandboxUnavailable, match="would show protected files to learner code \\(/usr/bin/env at"):
        Sandbox.start(Isolation.NAMESPACES_SECCOMP)
