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

:func:`decode_value` treats its input as hostile: every field is checked (node keys, dtype against a
whitelist, shape against the byte count, nesting depth, node count, key names), and arrays are
rebuilt with ``np.frombuffer`` into plain, writable, C-ordered ``np.ndarray`` objects.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np

HEADER_LENGTH = struct.Struct("<I")
MAX_HEADER_BYTES = 1024 * 1024
MAX_DEPTH = 16
MAX_NODES = 20_000
MAX_NDIM = 32
MAX_KEY_CHARS = 200
MAX_INT_DIGITS = 400

# Little-endian (or byte-order free) dtypes only: what the trusted side accepts is a fixed list.
DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(name)
    for name in ("<f8", "<f4", "<f2", "<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "<u2", "|u1", "|b1")
}


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


def encode_value(value: object, buffers: list[memoryview], depth: int = 0) -> dict[str, Any]:
    """Encode ``value`` into a header node, appending array bytes to ``buffers``.

    Only exact built-in containers and numbers, NumPy arrays (any subclass is reduced to its
    plain base data) and NumPy scalars are encodable; anything else raises UnsupportedValue.
    """
    if depth > MAX_DEPTH:
        raise UnsupportedValue("a value nested too deeply")
    kind = type(value)
    if value is None:
        return {"t": "none"}
    if kind is bool:
        return {"t": "bool", "v": bool(value)}
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        if type(array) is not np.ndarray:  # a subclass: take its raw data, never its methods
            array = array.view(np.ndarray)
        wire = _wire_dtype(array.dtype)
        array = np.asarray(array, dtype=wire, order="C")  # keeps 0-d arrays 0-d
        buffers.append(memoryview(array).cast("B") if array.size else memoryview(b""))  # type: ignore[arg-type]
        return {
            "t": "scalar" if isinstance(value, np.generic) else "array",
            "dtype": wire.str,
            "shape": [int(n) for n in array.shape],
            "buf": len(buffers) - 1,
        }
    if kind is int:
        text = str(value)
        if len(text) > MAX_INT_DIGITS:
            raise UnsupportedValue("an integer with too many digits")
        return {"t": "int", "v": text}
    if kind is float:
        return {"t": "float", "v": float.hex(value)}  # type: ignore[arg-type]
    if kind is tuple or kind is list:
        items = [encode_value(item, buffers, depth + 1) for item in value]  # type: ignore[attr-defined]
        return {"t": "tuple" if kind is tuple else "list", "items": items}
    if kind is dict:
        pairs = []
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                raise UnsupportedValue(f"a dict with {describe(key)} key")
            pairs.append([key, encode_value(item, buffers, depth + 1)])
        return {"t": "dict", "items": pairs}
    raise UnsupportedValue(describe(value))


def pack(header: dict[str, Any], buffers: list[memoryview]) -> list[bytes | memoryview]:
    """The pieces of one frame, ready for ``os.writev``-style writing in order."""
    header = dict(header, buffers=[len(b) for b in buffers])
    data = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    if len(data) > MAX_HEADER_BYTES:
        raise UnsupportedValue("a value with too many parts")
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


class _Decoder:
    def __init__(self, buffers: list[bytearray]) -> None:
        self.buffers = buffers
        self.next_buffer = 0
        self.nodes = 0

    def node(self, node: object, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise WireError("value too large or nested too deeply")
        if type(node) is not dict:
            raise WireError("node is not an object")
        kind = node.get("t")
        keys = set(node)
        if kind == "none" and keys == {"t"}:
            return None
        if kind == "bool" and keys == {"t", "v"} and type(node["v"]) is bool:
            return node["v"]
        if kind == "int" and keys == {"t", "v"} and type(node["v"]) is str:
            text = node["v"]
            if not 0 < len(text) <= MAX_INT_DIGITS or not text.lstrip("-").isdigit() or not text.isascii():
                raise WireError("bad int")
            return int(text)
        if kind == "float" and keys == {"t", "v"} and type(node["v"]) is str and len(node["v"]) <= 40:
            try:
                return float.fromhex(node["v"])
            except (ValueError, OverflowError):
                raise WireError("bad float") from None
        if kind in ("array", "scalar") and keys == {"t", "dtype", "shape", "buf"}:
            return self.array(node, scalar=kind == "scalar")
        if kind in ("tuple", "list") and keys == {"t", "items"} and type(node["items"]) is list:
            items = [self.node(item, depth + 1) for item in node["items"]]
            return tuple(items) if kind == "tuple" else items
        if kind == "dict" and keys == {"t", "items"} and type(node["items"]) is list:
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
        dtype = DTYPES.get(node["dtype"]) if type(node["dtype"]) is str else None
        shape = node["shape"]
        if dtype is None:
            raise WireError("dtype not allowed")
        if type(shape) is not list or len(shape) > MAX_NDIM or any(type(n) is not int or n < 0 for n in shape):
            raise WireError("bad shape")
        if scalar and shape:
            raise WireError("a scalar has a shape")
        if node["buf"] != self.next_buffer or type(node["buf"]) is not int or self.next_buffer >= len(self.buffers):
            raise WireError("buffers out of order")
        data = self.buffers[self.next_buffer]
        self.next_buffer += 1
        if math.prod(shape) * dtype.itemsize != len(data):
            raise WireError("shape does not match the byte count")
        array = np.frombuffer(data, dtype=dtype).reshape(shape) if data else np.zeros(shape, dtype=dtype)
        # Native byte order and a plain, writable, C-contiguous ndarray of our own.
        array = array.astype(dtype.newbyteorder("="), copy=False)
        if scalar:
            return array[()]
        return array


def decode_value(node: object, buffers: list[bytearray]) -> Any:
    """Rebuild a value from a hostile header node and the frame's buffers (all must be used)."""
    decoder = _Decoder(buffers)
    value = decoder.node(node, 0)
    if decoder.next_buffer != len(buffers):
        raise WireError("unused buffers")
    return value
