"""Frames forged by learner code on the reply pipe: the trusted decoder is total.

Whatever bytes arrive, `grader.sandbox.wire` raises WireError and nothing else (property tests on
arbitrary bytes, arbitrary header trees and mutated valid frames), and the session turns a WireError
into the learner's own `runtime_error` ("interfered with the grader's channel"). The forged frames
of the review are then written by real submissions through the real sandbox, back to back in one
warm engine, each followed by a correct submission that must be accepted.
"""

from __future__ import annotations

import itertools
import json
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.engine import Engine
from grader.sandbox import wire
from grader.sandbox.core import CHILD_VERDICTS
from grader.spec import ExerciseSpec
from grader.verdicts import Verdict

EXERCISES = Path(__file__).resolve().parent.parent / "content" / "exercises"
CAP = 1 << 20
INTERFERED = "interfered with the grader's channel"


def read_reply(pieces: list[bytes], cap: int = CAP) -> Any:
    """What the session does with the bytes of one reply: read the frame, then decode it by kind.

    Returns None when the frame is incomplete; raises WireError (only) when it is unreadable.
    """
    reader = wire.FrameReader(cap)
    for piece in pieces:
        if reader.feed(piece):
            break
    else:
        return None
    header = reader.header
    assert header is not None
    if header.get("kind") == "error":
        return wire.error_fields(header, CHILD_VERDICTS)
    buffers = reader.buffers()
    if header.get("kind") == "ready":
        return header
    return wire.result_fields(header, buffers)


def frame(header: Any, *buffers: bytes, sizes: list[Any] | None = None) -> bytes:
    """A frame with any header (even one that is not an object); `sizes` overrides the byte counts."""
    if isinstance(header, dict):
        header = dict(header, buffers=[len(b) for b in buffers] if sizes is None else sizes)
    data = json.dumps(header).encode()
    return struct.pack("<I", len(data)) + data + b"".join(buffers)


def valid_result(value: Any) -> bytes:
    buffers: list[memoryview] = []
    node = wire.encode_value(value, buffers)
    pieces = wire.pack({"kind": "result", "value": node, "inputs": None}, buffers)
    return b"".join(bytes(piece) for piece in pieces)


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"t": "none"}
    for _ in range(depth):
        node = {"t": "list", "items": [node]}
    return node


ARRAY = {"t": "array", "dtype": "<f8", "shape": [2], "buf": 0}

# The review's forged frames and more of each class, as (name, bytes).
FORGED: list[tuple[str, bytes]] = [
    ("an int of '--5'", frame({"kind": "result", "value": {"t": "int", "v": "--5"}, "inputs": None})),
    ("an int of '-'", frame({"kind": "result", "value": {"t": "int", "v": "-"}, "inputs": None})),
    ("an int of unicode digits", frame({"kind": "result", "value": {"t": "int", "v": "\u0663"}, "inputs": None})),
    ("a list as the verdict", frame({"kind": "error", "verdict": ["runtime_error"], "message": "x"})),
    ("a dict as the verdict", frame({"kind": "error", "verdict": {"a": 1}, "message": "x"})),
    ("accepted as the verdict", frame({"kind": "error", "verdict": "accepted", "message": "all good"})),
    ("a list as the message", frame({"kind": "error", "verdict": "runtime_error", "message": ["x"]})),
    (
        "an array of shape [0, 10**30]",
        frame({"kind": "result", "value": dict(ARRAY, shape=[0, 10**30]), "inputs": None}, b""),
    ),
    (
        "an array of 32 axes of 2**31",
        frame({"kind": "result", "value": dict(ARRAY, shape=[0] + [2**31] * 31), "inputs": None}, b""),
    ),
    ("a negative size", frame({"kind": "result", "value": ARRAY, "inputs": None}, bytes(16), sizes=[-16])),
    ("a size of a float", frame({"kind": "result", "value": ARRAY, "inputs": None}, bytes(16), sizes=[16.0])),
    ("a big-endian dtype", frame({"kind": "result", "value": dict(ARRAY, dtype=">f8"), "inputs": None}, bytes(16))),
    ("an object dtype", frame({"kind": "result", "value": dict(ARRAY, dtype="|O"), "inputs": None}, bytes(16))),
    ("a dtype of a list", frame({"kind": "result", "value": dict(ARRAY, dtype=["<f8"]), "inputs": None}, bytes(16))),
    ("a shape of a string", frame({"kind": "result", "value": dict(ARRAY, shape="2"), "inputs": None}, bytes(16))),
    ("a buffer index of a list", frame({"kind": "result", "value": dict(ARRAY, buf=[0]), "inputs": None}, bytes(16))),
    ("a shape lying about the bytes", frame({"kind": "result", "value": ARRAY, "inputs": None}, bytes(24))),
    ("a header that is a list", frame(["result"])),
    ("a header without a kind", frame({"value": {"t": "none"}})),
    ("extra header keys", frame({"kind": "result", "value": {"t": "none"}, "inputs": None, "verdict": "accepted"})),
    ("a nesting bomb in the value", frame({"kind": "result", "value": nested(200), "inputs": None})),
    ("a JSON nesting bomb", struct.pack("<I", 200_002) + b"[" * 100_001 + b"]" * 100_001),
    ("a header that is not UTF-8", struct.pack("<I", 4) + b"\xff\xfe{}"),
    ("bytes after the frame", valid_result(2.0) + b"!!"),
    ("a frame of a bool as a float", frame({"kind": "result", "value": {"t": "float", "v": True}, "inputs": None})),
    ("a float of 'inf; import os'", frame({"kind": "result", "value": {"t": "float", "v": "inf;x"}, "inputs": None})),
    ("a scalar with a shape", frame({"kind": "result", "value": dict(ARRAY, t="scalar"), "inputs": None}, bytes(16))),
]
TRUNCATED: list[tuple[str, bytes]] = [
    ("a truncated header", frame({"kind": "result", "value": {"t": "none"}, "inputs": None})[:9]),
    ("a truncated buffer", frame({"kind": "result", "value": ARRAY, "inputs": None}, bytes(16))[:-5]),
]


@pytest.mark.parametrize("data", [data for _, data in FORGED], ids=[name for name, _ in FORGED])
def test_every_forged_frame_is_a_wire_error(data: bytes) -> None:
    with pytest.raises(wire.WireError):
        read_reply([data])


@pytest.mark.parametrize("data", [data for _, data in TRUNCATED], ids=[name for name, _ in TRUNCATED])
def test_a_truncated_frame_is_incomplete_and_never_decoded(data: bytes) -> None:
    assert read_reply([data]) is None


def test_a_frame_announcing_more_than_the_cap_is_refused_before_its_bytes_arrive() -> None:
    head = frame({"kind": "result", "value": ARRAY, "inputs": None}, sizes=[2**40])
    with pytest.raises(wire.FrameTooLarge) as refused:
        read_reply([head])
    assert refused.value.size == 2**40


def test_a_valid_frame_still_decodes_in_any_chunking() -> None:
    data = valid_result((np.arange(6.0).reshape(2, 3), {"k": [1, -5, 2.5, None, True]}))
    for cut in (1, 3, 7, len(data) - 1):
        value, inputs = read_reply([data[:cut], data[cut:]])
        assert np.array_equal(value[0], np.arange(6.0).reshape(2, 3))
        assert value[1] == {"k": [1, -5, 2.5, None, True]} and inputs is None


def only_wire_errors(pieces: list[bytes]) -> None:
    try:
        read_reply(pieces)
    except wire.WireError:
        pass  # the only exception allowed; anything else fails the property


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0, max_value=400), max_size=3))
def test_arbitrary_bytes_raise_nothing_but_wire_errors(data: bytes, cuts: list[int]) -> None:
    points = sorted({0, len(data), *(min(cut, len(data)) for cut in cuts)})
    only_wire_errors([data[a:b] for a, b in itertools.pairwise(points)] or [data])


# Header trees made of the format's own vocabulary, so that most examples get past the JSON.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.sampled_from(["none", "bool", "int", "float", "array", "scalar", "tuple", "list", "dict", "<f8", "|b1",
                     ">f8", "|O", "--5", "-", "0x1p+0", "inf", "nan", "", "result", "error", "runtime_error"]),
)  # fmt: skip
KEYS = st.sampled_from(["t", "v", "dtype", "shape", "buf", "items", "kind", "value", "inputs", "verdict", "message"])
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["result", "error", "ready", "other"]),
    fields=st.dictionaries(st.sampled_from(["value", "inputs", "verdict", "message", "line"]), TREES, max_size=4),
    buffers=st.lists(st.binary(max_size=48), max_size=3),
    sizes=st.none() | st.lists(st.integers(min_value=-4, max_value=64), max_size=3),
)
def test_arbitrary_header_trees_raise_nothing_but_wire_errors(
    kind: str, fields: dict[str, Any], buffers: list[bytes], sizes: list[int] | None
) -> None:
    only_wire_errors([frame({"kind": kind, **fields}, *buffers, sizes=sizes)])


@settings(max_examples=300, deadline=None)
@given(
    st.data(),
    st.sampled_from(
        [
            valid_result(np.arange(6.0).reshape(2, 3)),
            valid_result((np.ones(3, dtype=np.float32), 2, -7.5, {"a": np.int8(3)}, [None, True])),
            valid_result(np.zeros((0, 4))),
        ]
    ),
)
def test_mutated_valid_frames_raise_nothing_but_wire_errors(data: st.DataObject, good: bytes) -> None:
    frame_bytes = bytearray(good)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        position = data.draw(st.integers(min_value=0, max_value=len(frame_bytes) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if action == "flip":
            frame_bytes[position] = data.draw(st.integers(min_value=0, max_value=255))
        elif action == "delete":
            del frame_bytes[position]
        elif action == "insert":
            frame_bytes[position:position] = data.draw(st.binary(min_size=1, max_size=8))
        else:
            del frame_bytes[position + 1 :]
        if not frame_bytes:
            break
    only_wire_errors([bytes(frame_bytes)])


# --- Through the real sandbox and one warm engine -----------------------------------------

# linear_backward that writes `FRAME` on every writable pipe above stderr (the reply pipe among
# them), then sleeps: the trusted side must decide on what it read, not wait.
FORGER = """\
import numpy as np
_wrap = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]
sys = _wrap.__init__.__globals__['sys']
os = sys.modules['os']
FRAME = {frame!r}


def linear_backward(dout, x, w, b):
    for fd in range(3, 1100):  # every descriptor number (children have no /proc to list)
        if int(fd) > 2:
            try:
                os.write(int(fd), FRAME)
            except OSError:
                pass
    {after}
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)
"""
CORRECT = """\
import numpy as np


def linear_backward(dout, x, w, b):
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)
"""
WRITTEN = [
    (name, data, "os._exit(0)" if (name, data) in TRUNCATED else "while True: pass")
    for name, data in [*FORGED, *TRUNCATED]
    if name != "a JSON nesting bomb"  # larger than one atomic pipe write; covered above
]


@pytest.mark.sandbox
def test_forged_frames_written_by_submissions_are_their_own_runtime_error(engine: Engine) -> None:
    spec = ExerciseSpec.from_folder(EXERCISES / "linear-backward")
    for name, data, after in WRITTEN:
        result = engine.grade(spec, FORGER.format(frame=data, after=after))
        assert result.verdict == Verdict.RUNTIME_ERROR, (name, result.feedback)
        assert INTERFERED in result.feedback, (name, result.feedback)
    assert engine.grade(spec, CORRECT).verdict == Verdict.ACCEPTED


# --- Amplification: what the trusted process does with a large reply ----------------------

HOARD_MIB = 63  # just under the 64 MiB frame cap, returned by every call
BOOL_DX = f"""\
import numpy as np


def linear_backward(dout, x, w, b):
    return np.ones({HOARD_MIB} * 2**20, dtype=bool), x.T @ dout, dout.sum(axis=0)
"""


@pytest.mark.sandbox
def test_a_63_mib_bool_array_returned_as_dx_costs_the_trusted_process_about_its_own_size(engine: Engine) -> None:
    """Every call returns it; the trusted side reads its shape and drops it (it was 756 MiB at peak)."""
    spec = ExerciseSpec.from_folder(EXERCISES / "linear-backward")
    engine.grade(spec, CORRECT)  # warm: first-use allocations are not the submission's
    tracemalloc.start()
    try:
        result = engine.grade(spec, BOOL_DX)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.verdict == Verdict.WRONG_ANSWER
    assert "dx has the wrong shape" in result.feedback
    outputs = next(check for check in result.checks if check.name == "outputs")
    assert "dx has shape (66060288,); expected (4, 3)" in outputs.message
    assert [(d.output, d.title) for d in result.diagnosis] == [("dx", "dx has the wrong shape")]
    assert peak < 1.5 * HOARD_MIB * 2**20, f"peak {peak / 2**20:.0f} MiB while grading"
    assert engine.grade(spec, CORRECT).verdict == Verdict.ACCEPTED


# --- Every value the wire can carry, returned where a gradient is expected -----------------

ODD_VALUES = [
    "10**399",  # the longest int the wire carries: beyond float64
    "-(10**398)",
    "True",
    "None",
    "[1, 2]",
    "{'a': 1}",
    "{'fc1.weight': 10**399}",
    "((1,),)",
    "np.full(3, 2**64 - 1, dtype=np.uint64)",
    "np.ones((4, 3), dtype=np.int64) * 2**62",
    "np.int8(3)",
    "np.float16(1)",
    "np.array(5.0)",
    "np.zeros((0, 10**6))",
    "np.ones((2, 2), dtype=bool)",
    "np.full((4, 3), 1e308) * 10",
    "float('nan')",
]
SIGNATURES = {"linear-backward": "linear_backward(dout, x, w, b)", "simple-nn": "simple_nn_backward(params, x, y)"}


@pytest.mark.sandbox
@pytest.mark.parametrize("slug", SIGNATURES)
def test_no_value_a_submission_returns_makes_the_grader_fail(engine: Engine, slug: str) -> None:
    spec = ExerciseSpec.from_folder(EXERCISES / slug)
    outputs = len(spec.get_kind().outputs)
    for value in ODD_VALUES:
        for position in range(outputs):
            returned = ["0.0"] * outputs
            returned[position] = value
            source = f"import numpy as np\n\n\ndef {SIGNATURES[slug]}:\n    return ({', '.join(returned)})\n"
            result = engine.grade(spec, source)
            assert result.verdict in {Verdict.WRONG_ANSWER, Verdict.RUNTIME_ERROR}, (value, position, result.feedback)


# Right-shaped arrays of every other dtype, wrong shapes and huge values, for every exercise: the
# kinds' own mistake detectors see them too (any exception there would be an internal_error).
ODD_ARRAYS = [
    "np.zeros_like({a}, dtype=bool)",
    "np.full_like({a}, 200, dtype=np.uint8)",
    "np.full_like({a}, 2**62, dtype=np.int64)",
    "np.asarray({a}, dtype=np.float16)",
    "np.full_like({a}, np.nan, dtype=np.float32)",
    "np.asarray({a}).T.copy()",
    "np.asarray({a})[None]",
    "np.zeros((0,) + np.shape({a}))",
    "np.asarray({a}).ravel()[::-1].copy()",
    "np.full_like(np.asarray({a}, dtype=float), 1e300)",
    "{{'fc1.weight': np.zeros(3, dtype=bool)}}",
]
ALL_EXERCISES = sorted(path.name for path in EXERCISES.iterdir() if (path / "exercise.yaml").is_file())


@pytest.mark.sandbox
@pytest.mark.slow
@pytest.mark.parametrize("slug", ALL_EXERCISES)
def test_odd_arrays_in_every_output_of_every_exercise_are_the_learners_verdict(engine: Engine, slug: str) -> None:
    spec = ExerciseSpec.from_folder(EXERCISES / slug)
    kind = spec.get_kind()
    first = "x" if kind.arg_names[0] == "params" else kind.arg_names[0]
    zeros = f"np.zeros_like(np.asarray({first}, dtype=float))"
    for number, template in enumerate(ODD_ARRAYS):
        position = number % len(kind.outputs)  # each template in one output, every output in turn
        parts = [zeros] * len(kind.outputs)
        parts[position] = template.format(a=first)
        returned = parts[0] if len(parts) == 1 else f"({', '.join(parts)})"
        source = (
            f"import numpy as np\n\n\ndef {kind.function_name}({', '.join(kind.arg_names)}):\n    return {returned}\n"
        )
        result = engine.grade(spec, source)
        assert result.verdict != Verdict.INTERNAL_ERROR, (template, position, result.feedback)
        assert result.verdict != Verdict.ACCEPTED, (template, position)
