"""List the external-data files an ONNX model refers to, with the standard library only.

A bundle must be self-contained: every tensor stored outside the ``.onnx`` file must live
in a file inside the bundle folder. Checking that needs the ``location`` of each external
tensor. The ``onnx`` package is not part of a runtime-only install, so this module reads
the protobuf wire format directly (memory-mapped, skipping tensor payloads) and walks the
messages that can hold tensors: graph initializers, sparse initializers, node attributes
(including subgraphs), functions and training-info graphs.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

__all__ = ["OnnxParseError", "external_data_locations"]

# (message, field number) -> message type of that field; fields not listed are skipped.
_MODEL, _GRAPH, _NODE, _ATTR, _FUNC, _TENSOR, _SPARSE, _TRAINING, _ENTRY = range(9)
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNC},
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTR},
    _FUNC: {7: _NODE, 11: _ATTR},
    _ATTR: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
    _TENSOR: {13: _ENTRY},
}
_MAX_DEPTH = 64


class OnnxParseError(ValueError):
    """The file is not a well-formed ONNX (protobuf) model."""


def _varint(buf: mmap.mmap | bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise OnnxParseError("truncated or malformed varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: mmap.mmap | bytes, start: int, end: int):
    """Yield ``(field_number, wire_type, value_or_span)`` of one message in ``buf[start:end]``."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise OnnxParseError("length-delimited field runs past the end of its message")
            yield number, wire, (pos, pos + length)
            pos += length
        else:
            raise OnnxParseError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise OnnxParseError("field runs past the end of its message")


def _entry(buf: mmap.mmap | bytes, span: tuple[int, int]) -> tuple[str, str]:
    key = value = ""
    for number, wire, val in _fields(buf, *span):
        if wire == 2 and number in (1, 2):
            text = bytes(buf[val[0] : val[1]]).decode("utf-8", errors="replace")
            key, value = (text, value) if number == 1 else (key, text)
    return key, value


def _walk(buf: mmap.mmap | bytes, kind: int, span: tuple[int, int], out: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise OnnxParseError("ONNX graph nesting is too deep")
    children = _CHILDREN.get(kind, {})
    external = False
    locations: list[str] = []
    for number, wire, value in _fields(buf, *span):
        if kind == _TENSOR and number == 14 and wire == 0:
            external = value == 1
        elif wire == 2 and number in children:
            child = children[number]
            if child == _ENTRY:
                key, loc = _entry(buf, value)
                if key == "location":
                    locations.append(loc)
            else:
                _walk(buf, child, value, out, depth + 1)
    if kind == _TENSOR and (external or locations):
        out.extend(locations if locations else [""])


def external_data_locations(path: str | os.PathLike[str]) -> list[str]:
    """``location`` strings of every externally stored tensor in the ONNX file ``path``.

    Returns the raw strings as written in the model (possibly absolute or with ``..``);
    an external tensor without a location yields ``""``. Order follows the file; duplicates
    are kept (several tensors usually share one data file).

    Raises:
        OnnxParseError: the file is not a parseable ONNX protobuf.
        OSError: the file cannot be read.
    """
    file = Path(path)
    size = file.stat().st_size
    out: list[str] = []
    if size == 0:
        raise OnnxParseError(f"{file} is empty")
    with file.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        _walk(buf, _MODEL, (0, size), out, 0)
    return out
