"""A small, bounds-checked FlatBuffers decoder driven by the schema facts table.

Why not the generated accessors: a model file is untrusted input. Every offset here is checked
against the buffer before use and every failure is a ValueError naming what was being read, so a
damaged file can never read out of bounds, loop, or surface a struct.error to the user. Scalar
vectors come back as read-only numpy views into the buffer (zero-copy).
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from tflite_jit.format.schema_data import TABLES

_SCALARS = {
    "bool": ("<B", 1, np.uint8), "i8": ("<b", 1, np.int8), "u8": ("<B", 1, np.uint8),
    "i16": ("<h", 2, np.int16), "u16": ("<H", 2, np.uint16), "i32": ("<i", 4, np.int32),
    "u32": ("<I", 4, np.uint32), "i64": ("<q", 8, np.int64), "u64": ("<Q", 8, np.uint64),
    "f32": ("<f", 4, np.float32), "f64": ("<d", 8, np.float64),
}
_MAX_DEPTH = 16  # the TFLite schema nests 5 deep; anything deeper is damage


class FlatReader:
    """Reads tables of the TFLite schema by default; `tables`/`enums` (the same kinds of facts)
    make it read another schema, e.g. the metadata schema, and `subject` names the buffer in
    errors ("The metadata is not a valid Flatbuffer buffer: ...")."""

    def __init__(self, buf: Any, *, tables: dict | None = None,
                 enums: dict[str, tuple[tuple[str, int], ...]] | None = None,
                 subject: str = "model"):
        self.buf = buf
        self.tables = TABLES if tables is None else tables
        self.enums = enums
        self.subject = subject
        self.mv = memoryview(buf)
        if self.mv.ndim != 1 or self.mv.itemsize != 1:
            self.mv = self.mv.cast("B")
        self.size = len(self.mv)

    # -- primitives ------------------------------------------------------------------------------
    def _check(self, pos: int, n: int, what: str) -> None:
        if pos < 0 or n < 0 or pos + n > self.size:
            raise ValueError(
                f"The {self.subject} is not a valid Flatbuffer buffer: {what} at offset {pos} "
                f"(+{n} bytes) lies outside the {self.size}-byte "
                f"{'file' if self.subject == 'model' else 'buffer'}"
            )

    def scalar(self, kind: str, pos: int, what: str) -> Any:
        fmt, n, _ = _SCALARS[kind]
        self._check(pos, n, what)
        v = struct.unpack_from(fmt, self.mv, pos)[0]
        return bool(v) if kind == "bool" else v

    def uoffset(self, pos: int, what: str) -> int:
        return pos + self.scalar("u32", pos, what)

    def root(self) -> int:
        return self.uoffset(0, "root table offset")

    # -- tables ----------------------------------------------------------------------------------
    def field_pos(self, table_pos: int, slot: int, what: str) -> int:
        """Absolute position of a field's data, or 0 when the field is absent."""
        offsets = self._vtable(table_pos, what)
        return table_pos + offsets[slot] if slot < len(offsets) and offsets[slot] else 0

    def _vtable(self, table_pos: int, what: str) -> tuple[int, ...]:
        """Every field offset of a table's vtable at once (0: absent): decoding a model reads them
        all (NASNet: 38,000 fields), so read_table asks once per table."""
        vt = table_pos - self.scalar("i32", table_pos, what + " vtable offset")
        vt_size = self.scalar("u16", vt, what + " vtable size")
        if vt_size < 4 or vt_size % 2:
            raise ValueError(f"The {self.subject} is not a valid Flatbuffer buffer: bad vtable for "
                             f"{what}")
        self._check(vt, vt_size, what + " vtable")
        return struct.unpack_from(f"<{(vt_size - 4) // 2}H", self.mv, vt + 4)

    def vector(self, pos: int, elem_size: int, what: str) -> tuple[int, int]:
        start = self.uoffset(pos, what)
        n = self.scalar("u32", start, what + " length")
        self._check(start + 4, n * elem_size, what)
        return start + 4, n

    def string(self, pos: int, what: str) -> str:
        start, n = self.vector(pos, 1, what)
        return bytes(self.mv[start:start + n]).decode("utf-8", errors="replace")

    def read_table(self, pos: int, table: str, what: str, depth: int = 0) -> dict[str, Any]:
        """Decode one table into a dict of its present fields (schema snake_case names)."""
        if depth > _MAX_DEPTH:
            raise ValueError(f"The {self.subject} is not a valid Flatbuffer buffer: {what} nests "
                             "too deep")
        out: dict[str, Any] = {}
        fields = self.tables[table]
        first = next((f[0] for f in fields if f is not None), None)
        offsets = self._vtable(pos, f"{what}.{first}") if first is not None else ()
        size, mv = self.size, self.mv
        for slot, f in enumerate(fields):
            if f is None or slot >= len(offsets) or not offsets[slot]:
                continue
            name, kind, _ = f
            fp = pos + offsets[slot]
            scalar = _SCALARS.get(kind)
            if scalar is not None and fp + scalar[1] <= size:  # the common case, without a label
                v = struct.unpack_from(scalar[0], mv, fp)[0]
                out[name] = bool(v) if kind == "bool" else v
                continue
            label = f"{what}.{name}"
            if scalar is not None:
                out[name] = self.scalar(kind, fp, label)  # raises: it lies outside the buffer
            elif kind == "str":
                out[name] = self.string(fp, label)
            elif kind.startswith("table:"):
                out[name] = self.read_table(self.uoffset(fp, label), kind[6:], label, depth + 1)
            elif kind.startswith("union:"):
                out[name] = fp  # resolved below once the type field is known
            elif kind == "[str]":
                start, n = self.vector(fp, 4, label)
                out[name] = [self.string(start + 4 * i, f"{label}[{i}]") for i in range(n)]
            elif kind.startswith("[table:"):
                sub = kind[7:-1]
                start, n = self.vector(fp, 4, label)
                out[name] = [self.read_table(self.uoffset(start + 4 * i, label), sub,
                                             f"{label}[{i}]", depth + 1) for i in range(n)]
            elif kind.startswith("["):
                _, size, dt = _SCALARS[kind[1:-1]]
                start, n = self.vector(fp, size, label)
                out[name] = np.frombuffer(self.buf, dtype=np.dtype(dt).newbyteorder("<"),
                                          count=n, offset=start) if n else np.zeros(0, dt)
            else:  # pragma: no cover - schema kinds are closed
                raise AssertionError(kind)
        for f in fields:
            if f is None or not f[1].startswith("union:") or f[0] not in out:
                continue
            name, kind, _ = f
            enum = kind[6:]
            type_code = out.get(name + "_type", 0)
            sub = self._enum_name(enum, type_code)
            if type_code == 0 or sub is None or sub not in self.tables:
                del out[name]
                continue
            label = f"{what}.{name}"
            out[name] = self.read_table(self.uoffset(out[name], label), sub, label, depth + 1)
            out[name + "_table"] = sub
        return out

    def _enum_name(self, enum: str, value: int) -> str | None:
        if self.enums is None:
            from tflite_jit.format.schema import enum_names

            return enum_names(enum).get(value)
        return next((k for k, v in self.enums[enum] if v == value), None)
