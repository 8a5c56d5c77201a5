"""Values at the edge of the wire's limits: each is the learner's own mistake, named as such.

The child encodes what the function returned and the trusted side decodes it with limits of its
own (grader/sandbox/wire.py). A value the child could encode but the trusted side refused was
reported as a forgery ("interfered with the grader's channel") or as the child dying ("exit
status 70"): a learner returning a long Python list was told they had tampered with the grader.
Through the warm engine on the real sandbox, each such value must get a verdict whose message
says what was returned, and the next grading must be normal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.engine import Engine, GradeResult
from grader.example_run import VALUES_SHOWN_CHARS, run_example, shown
from grader.sandbox import wire
from grader.spec import ExerciseSpec
from grader.verdicts import Verdict

pytestmark = pytest.mark.sandbox

EXERCISES = Path(__file__).resolve().parent.parent / "content" / "exercises"
SOURCE = """\
import numpy as np


def linear_backward(dout, x, w, b):
    dx = dout @ w.T
    print("returning it")
    return {returned}, x.T @ dout, dout.sum(axis=0)
"""
MISLEADING = ("interfered", "exit status", "exited before returning")

# Each: (what dx is replaced with, the verdict, what the message says).
AT_THE_LIMITS = {
    "a list of 20001 floats": ("[0.5] * 20001", Verdict.RUNTIME_ERROR, "linear_backward returned a value with"),
    "a dict of 19000 arrays": (
        "{f'key{i}': np.zeros(1) for i in range(19000)}",
        Verdict.RUNTIME_ERROR,
        "linear_backward returned a value with",
    ),
    "a dict key of 300 characters": ("{'k' * 300: dx}", Verdict.RUNTIME_ERROR, "linear_backward returned a dict"),
    "an array of 40 dimensions": (
        "dx.reshape(dx.shape + (1,) * 38)",
        Verdict.RUNTIME_ERROR,
        "linear_backward returned an array of 40 dimensions",
    ),
    "an empty array with an axis over 2**31": (
        "np.zeros((0, 2**31 + 1))",
        Verdict.RUNTIME_ERROR,
        "linear_backward returned an array of shape",
    ),
    "a list of 19995 arrays (and the four inputs sent back)": (
        "[dx] * 19995",
        Verdict.RUNTIME_ERROR,
        "linear_backward returned a value with",
    ),
    "an array nested 15 lists deep": ("[" * 15 + "dx" + "]" * 15, Verdict.WRONG_ANSWER, "dx must be a NumPy array"),
}


def nested_lists(depth: int) -> object:
    value: object = 1.0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        nested_lists(wire.MAX_DEPTH),
        nested_lists(wire.MAX_DEPTH + 1),
        [0.5] * (wire.MAX_NODES - 1),
        [0.5] * wire.MAX_NODES,
        {"k" * wire.MAX_KEY_CHARS: 1.0},
        {"k" * (wire.MAX_KEY_CHARS + 1): 1.0},
        np.zeros((1,) * wire.MAX_NDIM),
        np.zeros((1,) * (wire.MAX_NDIM + 1)),
        np.zeros((0, wire.MAX_DIM)),
        np.zeros((0, wire.MAX_DIM + 1)),
        np.zeros((0, 2**21, 2**20)),
        {f"key{i:05}": np.zeros(1) for i in range(wire.MAX_NODES // 2)},
    ],
    ids=lambda value: f"{type(value).__name__}-{np.shape(value) if isinstance(value, np.ndarray) else len(value)}",  # type: ignore[arg-type]
)
def test_what_the_child_can_encode_the_trusted_side_decodes(value: object) -> None:
    """Either the encoder refuses the value (the learner is told why), or the decoder takes it."""
    buffers: list[memoryview] = []
    try:
        node = wire.encode_value(value, buffers)
        inputs = wire.encode_value((value,), buffers)
        data = b"".join(
            bytes(piece) for piece in wire.pack({"kind": "result", "value": node, "inputs": inputs}, buffers)
        )
    except wire.UnsupportedValue:
        return
    reader = wire.FrameReader(2**30)
    assert reader.feed(data)
    assert reader.header is not None
    wire.result_fields(reader.header, reader.buffers())  # raises WireError if refused


def grade(engine: Engine, source: str) -> GradeResult:
    return engine.grade(ExerciseSpec.from_folder(EXERCISES / "linear-backward"), source)


@pytest.mark.parametrize("value", list(AT_THE_LIMITS))
def test_a_value_at_the_wires_limits_is_named_not_called_tampering(engine: Engine, value: str) -> None:
    returned, verdict, said = AT_THE_LIMITS[value]
    result = grade(engine, SOURCE.format(returned=returned))
    assert "returning it" in result.stdout  # the function ran and returned
    messages = " ".join([result.feedback, *(check.message for check in result.checks)])
    assert result.verdict == verdict, messages
    assert said in messages
    assert not any(word in messages for word in MISLEADING), messages
    assert grade(engine, SOURCE.format(returned="dx")).verdict == Verdict.ACCEPTED


class Counted:
    """Counts how often it is written out."""

    written = 0

    def __repr__(self) -> str:
        Counted.written += 1
        return "counted"


def test_showing_a_returned_value_writes_out_only_what_is_shown() -> None:
    """The example run shows 1500 characters of a value: writing out 20000 parts for them cost seconds."""
    Counted.written = 0
    text = shown([[Counted()] * 1000] * 20)["values"]
    assert text.endswith(" …") and len(text) <= VALUES_SHOWN_CHARS + 2
    assert 0 < Counted.written < 200
    assert shown({"a": [1.0, (2,)], "b": ()})["values"] == "{'a': [1.0, (2,)], 'b': ()}"


def test_an_example_run_of_a_value_with_thousands_of_arrays_shows_the_start_of_it(engine: Engine) -> None:
    spec = ExerciseSpec.from_folder(EXERCISES / "linear-backward")
    source = SOURCE.replace("return {returned}, x.T @ dout, dout.sum(axis=0)", "return [[dx] * 1000] * 17")
    report = run_example(engine, spec, source)
    assert "returning it" in report["stdout"]
    assert "expected a tuple of 3 values (dx, dw, db), got 17" in report["message"]
    assert report["returned"]["values"].startswith("[[[[") and report["returned"]["values"].endswith(" …")
