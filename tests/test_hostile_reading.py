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
from grader.spec import ExerciseSpec
from grader.verdicts import Verdict

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
