"""The sandbox wire format: values as a JSON header plus raw array buffers. No pickle, ever.

This module imports only the standard library and NumPy, because it is also loaded inside the
sandbox (the runner reads it from a read-only bind mount, not from the project package).

A frame is ``u32 header length | header JSON | buffer bytes...``. The header is an object
``{"kind": ..., "buffers": [nbytes, ...], ...}``; values inside it are trees of nodes:

- ``{"t": "none"}``, ``{"t": "bool", "v": true}``, ``{"t": "int", "v": "123"}`` (decimal string),
  ``{"t": "float", "v": "0x1.8p+1"}`` (``float.hex``, so NaN, inf and every bit survive);
- ``{"t": "array", "dtype": "<f8", "shape": [2, 3], "buf": 0}`` and the same with ``"t": "scalar"``
  for a NumPy scalar; ``buf`` indexes the frame's buffers, in order;
- ``{"t": "tuple" | "list", "items": [...]}`` and ``{"t": "dict", "items": [[key, node], ...]}``.

The decoding side is total: learner code can write anything on the reply pipe, so
:class:`FrameReader`, :func:`parse_header`, :func:`decode_value`, :func:`result_fields` and
:func:`error_fields` raise :class:`WireError` and nothing else, whatever bytes they are given
(``tests/test_hostile_frames.py`` checks this property on arbitrary bytes and mutated frames). Every field
is checked (node keys, dtype against a whitelist, shape against the byte count, nesting depth,
node count, key names), and arrays are rebuilt with ``np.frombuffer`` into plain, writable,
C-ordered ``np.ndarray`` objects.
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

HEADER_LENGTH = struct.Struct("<I")
MAX_HEADER_BYTES = 1024 * 1024
MAX_DEPTH = 16
MAX_NODES = 20_000
MAX_NDIM = 32
MAX_KEY_CHARS = 200
MAX_INT_DIGITS = 400
MAX_DIM = 2**31  # one axis; also bounds the product of the non-zero axes (NumPy's own limit)
MAX_ELEMENTS = 2**40
MAX_MESSAGE_CHARS = 2000
INT_TEXT = re.compile(r"-?[0-9]+")

# Little-endian (or byte-order free) dtypes only: what the trusted side accepts is a fixed list.
DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(name)
    for name in ("<f8", "<f4", "<f2", "<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "<u2", "|u1", "|b1")
}


# Each wire dtype by the native dtype it stands for (the same on little-endian hosts), and the native
# dtype of each wire dtype: looked up once per array instead of derived again.
_WIRE_OF_NATIVE: dict[np.dtype[Any], np.dtype[Any]] = {dtype.newbyteorder("="): dtype for dtype in DTYPES.values()}
_NATIVE_OF_WIRE: dict[str, np.dtype[Any]] = {name: dtype.newbyteorder("=") for name, dtype in DTYPES.items()}
_NODE_KEYS = frozenset({"t"})
_VALUE_KEYS = frozenset({"t", "v"})
_ARRAY_KEYS = frozenset({"t", "dtype", "shape", "buf"})
_ITEMS_KEYS = frozenset({"t", "items"})
_HEADER_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)

Buffer = bytes | bytearray | memoryview


class WireError(Exception):
    """A frame or value that does not follow the format (from the peer, or unencodable locally)."""


class UnsupportedValue(WireError):
    """A value of a type that cannot cross the boundary; ``what`` names it for the learner."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def describe(value: object) -> str:
    """A short, learner-facing name of a value's type ('a str', 'a generator', 'an array of objects')."""
    if isinstance(value, np.ndarray) and value.dtype.kind not in "biuf":
        return f"an array of dtype {value.dtype}"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _wire_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The whitelisted little-endian dtype for ``dtype``, or UnsupportedValue."""
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise UnsupportedValue(f"an array of dtype {dtype}")
    wire = dtype.newbyteorder("<") if dtype.byteorder not in "|" else dtype
    if wire.str not in DTYPES:
        raise UnsupportedValue(f"an array of dtype {dtype}")
    return DTYPES[wire.str]


def _shape_allowed(shape: list[int]) -> bool:
    """True if no axis and no product of the non-zero axes is over the limits (both sides check it)."""
    return all(n <= MAX_DIM for n in shape) and math.prod(n for n in shape if n) <= MAX_ELEMENTS


def encode_value(value: object, buffers: list[memoryview]) -> dict[str, Any]:
    """Encode ``value`` into a header node, appending array bytes to ``buffers``.

    Only exact built-in containers and numbers, NumPy arrays (any subclass is reduced to its
    plain base data) and NumPy scalars are encodable; anything else raises UnsupportedValue, and
    so does a value beyond a limit the decoding side enforces (depth, parts, key length, shape):
    what is encoded here is always decodable, so a refusal there means a forged frame.
    """
    return _Encoder(buffers).node(value, 0)


class _Encoder:
    def __init__(self, buffers: list[memoryview]) -> None:
        self.buffers = buffers
        self.nodes = 0

    def node(self, value: object, depth: int) -> dict[str, Any]:
        self.nodes += 1
        if depth > MAX_DEPTH:
            raise UnsupportedValue(f"a value nested more than {MAX_DEPTH} deep")
        if self.nodes > MAX_NODES:
            raise UnsupportedValue(f"a value with more than {MAX_NODES} parts")
        kind = type(value)
        if isinstance(value, np.ndarray | np.generic):  # the common case first
            return self.array(value)
        if value is None:
            return {"t": "none"}
        if kind is bool:
            return {"t": "bool", "v": bool(value)}
        if kind is int:
            text = str(value)
            if len(text) > MAX_INT_DIGITS:
                raise UnsupportedValue("an integer with too many digits")
            return {"t": "int", "v": text}
        if kind is float:
            return {"t": "float", "v": float.hex(value)}  # type: ignore[arg-type]
        if kind is tuple or kind is list:
            items = [self.node(item, depth + 1) for item in value]  # type: ignore[attr-defined]
            return {"t": "tuple" if kind is tuple else "list", "items": items}
        if kind is dict:
            pairs = []
            for key, item in value.items():  # type: ignore[attr-defined]
                if type(key) is not str:
                    raise UnsupportedValue(f"a dict with {describe(key)} key")
                if len(key) > MAX_KEY_CHARS:
                    raise UnsupportedValue(f"a dict with a key longer than {MAX_KEY_CHARS} characters")
                pairs.append([key, self.node(item, depth + 1)])
            return {"t": "dict", "items": pairs}
        raise UnsupportedValue(describe(value))

    def array(self, value: np.ndarray[Any, Any] | np.generic) -> dict[str, Any]:
        array = value if type(value) is np.ndarray else np.asarray(value)
        if type(array) is not np.ndarray:  # a subclass: take its raw data, never its methods
            array = array.view(np.ndarray)
        wire = _WIRE_OF_NATIVE.get(array.dtype)
        if wire is None:
            wire = _wire_dtype(array.dtype)
        shape = list(array.shape)
        if len(shape) > MAX_NDIM:
            raise UnsupportedValue(f"an array of {len(shape)} dimensions (at most {MAX_NDIM})")
        if not _shape_allowed(shape):
            raise UnsupportedValue(f"an array of shape {tuple(shape)}")
        array = np.asarray(array, dtype=wire, order="C")  # keeps 0-d arrays 0-d
        self.buffers.append(memoryview(array).cast("B") if array.size else memoryview(b""))  # type: ignore[arg-type]
        return {
            "t": "scalar" if isinstance(value, np.generic) else "array",
            "dtype": wire.str,
            "shape": shape,
            "buf": len(self.buffers) - 1,
        }


def pack(header: dict[str, Any], buffers: list[memoryview]) -> list[bytes | memoryview]:
    """The pieces of one frame, ready for ``os.writev``-style writing in order."""
    header = dict(header, buffers=[len(b) for b in buffers])
    data = _HEADER_ENCODER.encode(header).encode()
    if len(data) > MAX_HEADER_BYTES:
        raise UnsupportedValue("a value with too many parts (its description is over 1 MiB)")
    return [HEADER_LENGTH.pack(len(data)), data, *buffers]


def parse_header(data: bytes) -> dict[str, Any]:
    """Parse a hostile header: a JSON object whose ``buffers`` is a list of byte counts."""
    try:
        header = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise WireError(f"unreadable header ({type(error).__name__})") from None
    if type(header) is not dict or type(header.get("kind")) is not str:
        raise WireError("header is not an object with a kind")
    sizes = header.get("buffers")
    if type(sizes) is not list or len(sizes) > MAX_NODES or any(type(n) is not int or n < 0 for n in sizes):
        raise WireError("header buffers are not a list of byte counts")
    return header


class FrameTooLarge(WireError):
    """A frame announcing more buffer bytes than the reader's cap (``size`` is what it announced)."""

    def __init__(self, size: int) -> None:
        super().__init__("too large")
        self.size = size


class FrameReader:
    """Incremental reader of one frame, enforcing the header and buffer caps as bytes arrive.

    Feed it what the pipe gives. Once the header is read, the frame's whole size is known and
    allocated once, and its largest buffer is handed out as a view into that allocation, so a
    frame costs the trusted process little more than its own size. Raises :class:`FrameTooLarge` (refused before the
    buffers are read) or :class:`WireError` (an unreadable header, bytes after the frame).
    """

    def __init__(self, max_buffer_bytes: int) -> None:
        self.max_buffer_bytes = max_buffer_bytes
        self.data = bytearray()
        self.received = 0
        self.header: dict[str, Any] | None = None
        self.total: int | None = None

    def feed(self, chunk: Buffer) -> bool:
        """Add bytes; True once the frame is complete."""
        if self.total is not None:
            end = self.received + len(chunk)
            if end > self.total:
                raise WireError("unexpected bytes after a frame")
            self.data[self.received : end] = chunk
            self.received = end
            return end == self.total
        self.data += chunk
        self.received = len(self.data)
        prefix = HEADER_LENGTH.size
        if len(self.data) >= prefix:
            (length,) = HEADER_LENGTH.unpack_from(self.data)
            if length > MAX_HEADER_BYTES:
                raise WireError("header too large")
            if len(self.data) >= prefix + length:
                self.header = parse_header(bytes(self.data[prefix : prefix + length]))
                payload = sum(self.header["buffers"])
                if payload > self.max_buffer_bytes:
                    raise FrameTooLarge(payload)
                self.total = prefix + length + payload
                if len(self.data) > self.total:
                    raise WireError("unexpected bytes after a frame")
                if len(self.data) < self.total:  # the rest is written into place as it comes
                    whole = bytearray(self.total)
                    whole[: len(self.data)] = self.data
                    self.data = whole
        return self.received == self.total

    @property
    def complete(self) -> bool:
        return self.total is not None and self.received == self.total

    def feed_some(self, chunk: Buffer) -> int:
        """For a stream of frames: take this frame's bytes from the start of `chunk`; how many it took.

        What is left belongs to the next frame. Raises as ``feed`` does.
        """
        view = memoryview(chunk).cast("B")
        used = 0
        while used < len(view) and not self.complete:
            take = min(self._wanted(), len(view) - used)
            self.feed(view[used : used + take])
            used += take
        return used

    def _wanted(self) -> int:
        """The bytes this frame needs before the next thing it learns (its header's length, its size, its end)."""
        if self.total is not None:
            return self.total - self.received
        prefix = HEADER_LENGTH.size
        if len(self.data) < prefix:
            return prefix - len(self.data)
        (length,) = HEADER_LENGTH.unpack_from(self.data)  # feed refuses a length over the cap
        return max(1, prefix + length - len(self.data))

    def buffers(self) -> list[Buffer]:
        """The complete frame's buffers, in order (call once ``feed`` returned True).

        A buffer holding most of the frame is a view into it (no copy); smaller ones are copied,
        so that a small array kept by the caller does not keep a large frame alive.
        """
        if self.header is None or self.total is None or self.received != self.total:
            raise WireError("incomplete frame")
        view = memoryview(self.data)
        start = self.total - sum(self.header["buffers"])
        result: list[Buffer] = []
        for size in self.header["buffers"]:
            piece = view[start : start + size]
            result.append(piece if 2 * size > self.total else bytearray(piece))
            start += size
        return result


def result_fields(header: dict[str, Any], buffers: Sequence[Buffer]) -> tuple[Any, Any]:
    """(value, inputs) of a ``result`` frame: exactly the keys kind, value, inputs, buffers."""
    if header.get("kind") != "result" or set(header) != {"kind", "value", "inputs", "buffers"}:
        raise WireError("not a result frame")
    # Each decoded from depth 0, as each was encoded (within the limits, with the buffers in order).
    decoder = _Decoder(buffers)
    value = decoder.whole(header["value"])
    inputs = decoder.whole(header["inputs"]) if header["inputs"] is not None else None
    decoder.finish()
    return value, inputs


def error_fields(header: dict[str, Any], verdicts: Collection[str]) -> tuple[str, str, int | None]:
    """(verdict, message, line) of an ``error`` frame whose verdict is one of ``verdicts``.

    The message is cut to MAX_MESSAGE_CHARS; a line that is not a plausible line number is None.
    """
    verdict, message, line = header.get("verdict"), header.get("message"), header.get("line")
    if header.get("kind") != "error" or type(verdict) is not str or verdict not in verdicts:
        raise WireError("not an error frame with a known verdict")
    if type(message) is not str:
        raise WireError("an error frame without a message")
    if type(line) is not int or not 0 < line < 10**7:
        line = None
    return verdict, message[:MAX_MESSAGE_CHARS], line


class _Decoder:
    def __init__(self, buffers: Sequence[Buffer]) -> None:
        self.buffers = buffers
        self.next_buffer = 0
        self.nodes = 0

    def whole(self, node: object) -> Any:
        """One value from depth 0, with its own count of nodes; WireError and nothing else."""
        self.nodes = 0
        try:
            return self.node(node, 0)
        except WireError:
            raise
        except Exception as error:  # the decoder's contract is WireError only
            raise WireError(f"malformed value ({type(error).__name__})") from None

    def finish(self) -> None:
        if self.next_buffer != len(self.buffers):
            raise WireError("unused buffers")

    def node(self, node: object, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise WireError("value too large or nested too deeply")
        if type(node) is not dict:
            raise WireError("node is not an object")
        kind = node.get("t")
        keys = node.keys()
        if kind in ("array", "scalar") and keys == _ARRAY_KEYS:  # the common cases first
            return self.array(node, scalar=kind == "scalar")
        if kind in ("tuple", "list") and keys == _ITEMS_KEYS and type(node["items"]) is list:
            items = [self.node(item, depth + 1) for item in node["items"]]
            return tuple(items) if kind == "tuple" else items
        if kind == "none" and keys == _NODE_KEYS:
            return None
        if kind == "bool" and keys == _VALUE_KEYS and type(node["v"]) is bool:
            return node["v"]
        if kind == "int" and keys == _VALUE_KEYS and type(node["v"]) is str:
            text = node["v"]
            if len(text) > MAX_INT_DIGITS or not INT_TEXT.fullmatch(text):
                raise WireError("bad int")
            return int(text)
        if kind == "float" and keys == _VALUE_KEYS and type(node["v"]) is str and len(node["v"]) <= 40:
            try:
                return float.fromhex(node["v"])
            except (ValueError, OverflowError):
                raise WireError("bad float") from None
        if kind == "dict" and keys == _ITEMS_KEYS and type(node["items"]) is list:
            result: dict[str, Any] = {}
            for pair in node["items"]:
                if type(pair) is not list or len(pair) != 2:
                    raise WireError("bad dict item")
                key, item = pair
                if type(key) is not str or len(key) > MAX_KEY_CHARS or key in result:
                    raise WireError("bad dict key")
                result[key] = self.node(item, depth + 1)
            return result
        raise WireError("unknown or malformed node")

    def array(self, node: dict[str, Any], *, scalar: bool) -> Any:
        name = node["dtype"]
        dtype = DTYPES.get(name) if type(name) is str else None
        shape = node["shape"]
        if dtype is None:
            raise WireError("dtype not allowed")
        if type(shape) is not list or len(shape) > MAX_NDIM:
            raise WireError("bad shape")
        for n in shape:
            if type(n) is not int or n < 0:
                raise WireError("bad shape")
        if not _shape_allowed(shape):
            raise WireError("shape too large")
        if scalar and shape:
            raise WireError("a scalar has a shape")
        if type(node["buf"]) is not int or node["buf"] != self.next_buffer or self.next_buffer >= len(self.buffers):
            raise WireError("buffers out of order")
        data = self.buffers[self.next_buffer]
        self.next_buffer += 1
        if math.prod(shape) * dtype.itemsize != len(data):
            raise WireError("shape does not match the byte count")
        array = np.frombuffer(data, dtype=dtype).reshape(shape) if data else np.zeros(shape, dtype=dtype)
        # Native byte order and a plain, writable, C-contiguous ndarray of our own.
        native = _NATIVE_OF_WIRE[name]
        if array.dtype != native:
            array = array.astype(native)
        if scalar:
            return array[()]
        return array


def decode_value(node: object, buffers: Sequence[Buffer]) -> Any:
    """Rebuild a value from a hostile header node and the frame's buffers (all must be used).

    Raises WireError and nothing else: the checks above are meant to catch every bad node, and
    anything they miss (an exception NumPy raises on an input no check foresaw) becomes a
    WireError here rather than a failure of the trusted process.
    """
    decoder = _Decoder(buffers)
    value = decoder.whole(node)
    decoder.finish()
    return value
