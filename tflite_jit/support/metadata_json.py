"""Metadata as JSON, character for character what tflite_support prints.

tflite_support renders metadata with flatc's text generator (`strict_json`, everything else
default), so these are flatc's rules: fields in schema declaration order and only those present
in the buffer (never defaults the buffer omits), two-space indent, every vector element on its
own line (an empty vector is `[`, a blank line, `]`), enum values by name (a value without a
name as a number), floats in fixed notation with 6 decimals and trailing zeros stripped (so
1e-7 prints as 0.0), strings with printable ASCII kept and everything else escaped as uppercase
`\\uXXXX` (surrogate pairs beyond the BMP).
"""

from __future__ import annotations

import math
from typing import Any

from tflite_jit.support.metadata_codec import decode
from tflite_jit.support.metadata_schema_data import ENUMS, FIELD_ENUMS, ROOT_TABLE, TABLES

_INDENT = "  "
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f", '"': '\\"',
            "\\": "\\\\"}
_NAMES = {enum: {v: k for k, v in members} for enum, members in ENUMS.items()}


def convert_to_json(metadata_buffer: Any) -> str:
    """The metadata buffer as tflite_support's `convert_to_json` prints it."""
    return to_json(decode(metadata_buffer))


def to_json(meta: dict[str, Any]) -> str:
    """A decoded metadata dict (metadata_codec.decode's shape) as JSON."""
    return _table(ROOT_TABLE, meta, 0) + "\n"


def _table(table: str, values: dict[str, Any], depth: int) -> str:
    pad = _INDENT * (depth + 1)
    parts = []
    for name, kind, _ in TABLES[table]:
        if name not in values:
            continue
        v = values[name]
        if kind.startswith("union:"):
            text = _table(values[name + "_table"], v, depth + 1)
        elif kind.startswith("table:"):
            text = _table(kind[6:], v, depth + 1)
        elif kind.startswith("["):
            elem = kind[1:-1]
            items = [_value(table, name, elem, x, depth + 2) for x in v]
            inner = ",\n".join(_INDENT * (depth + 2) + s for s in items)
            text = "[\n" + inner + "\n" + pad + "]"
        else:
            text = _value(table, name, kind, v, depth + 1)
        parts.append(f'{pad}"{name}": {text}')
    body = ",\n".join(parts)
    return "{\n" + body + ("\n" if parts else "") + _INDENT * depth + "}"


def _value(table: str, field: str, kind: str, v: Any, depth: int) -> str:
    if kind == "str":
        return _string(v, f"{table}.{field}")
    if kind.startswith("table:"):
        return _table(kind[6:], v, depth)
    if kind == "bool":
        return "true" if v else "false"
    if kind[0] == "f":
        return _float(float(v), 6 if kind == "f32" else 12)
    enum = FIELD_ENUMS.get((table, field))
    if enum is not None and int(v) in _NAMES[enum]:
        return f'"{_NAMES[enum][int(v)]}"'
    return str(int(v))


def _float(v: float, decimals: int) -> str:
    if not math.isfinite(v):
        # flatc prints these as the C library does ("nan", "-nan", "inf", "-inf"), which strict
        # JSON lacks; we print the same so the outputs stay identical
        return ("-" if math.copysign(1.0, v) < 0 else "") + ("nan" if v != v else "inf")
    s = f"{v:.{decimals}f}"
    s = s.rstrip("0")
    return s + "0" if s.endswith(".") else s


def _string(s: str, what: str) -> str:
    out = ['"']
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            code = ord(ch)
            if 0xD800 <= code <= 0xDFFF:
                raise ValueError(f"metadata field {what} is not valid UTF-8 text")
            if code <= 0xFFFF:
                out.append(f"\\u{code:04X}")
            else:
                base = code - 0x10000
                out.append(f"\\u{0xD800 + (base >> 10):04X}\\u{0xDC00 + (base & 0x3FF):04X}")
    out.append('"')
    return "".join(out)
