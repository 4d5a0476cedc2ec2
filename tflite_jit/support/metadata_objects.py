"""flatc's Python object API for the metadata schema, built from the schema facts.

tflite_support users write metadata by filling `ModelMetadataT`, `TensorMetadataT`, ... and
calling `Pack(builder)`; they read it with `ModelMetadata.GetRootAsModelMetadata(buf, 0)` and
`ModelMetadataT.InitFromObj(...)`. This module provides the same names with the same attribute
spelling (lowerCamel attributes, UpperCamel accessors, enums as classes of ints), generated at
import from `metadata_schema_data` instead of being flatc output:

* `<Table>T` objects: attributes default to the schema default (scalars) or None; `Pack` writes
  through `format.writer.write_table` (scalars equal to their default are omitted, as the
  generated code does); `InitFromObj`/`InitFromBuf`/`InitFromPackedBuf` decode through the
  bounds-checked `format.flat` reader, so a damaged buffer raises ValueError naming the field.
  Strings read back as bytes, float/int vectors as numpy arrays, as with flatc's code.
* `<Table>` readers: lazy accessors (`Name()`, `SubgraphMetadata(j)`, `...Length()`,
  `...AsNumpy()`, `...IsNone()`), every read bounds-checked. A union accessor returns a
  `flatbuffers.table.Table` to `Init` the member's reader with, as flatc's code does.
"""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np
from flatbuffers.table import Table

from tflite_jit.format.flat import FlatReader
from tflite_jit.format.writer import write_table
from tflite_jit.support.metadata_codec import decode, drop_defaults
from tflite_jit.support.metadata_schema_data import ENUMS, FILE_IDENTIFIER, TABLES

_ELEM_SIZES = {"bool": 1, "i8": 1, "u8": 1, "i16": 2, "u16": 2, "i32": 4, "u32": 4, "i64": 8,
               "u64": 8, "f32": 4, "f64": 8, "str": 4}
_NP = {"bool": np.bool_, "i8": np.int8, "u8": np.uint8, "i16": np.int16, "u16": np.uint16,
       "i32": np.int32, "u32": np.uint32, "i64": np.int64, "u64": np.uint64, "f32": np.float32,
       "f64": np.float64}


def lower_camel(name: str) -> str:
    """flatc's object-API attribute name: `min_parser_version` -> `minParserVersion`."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def upper_camel(name: str) -> str:
    """flatc's accessor name: `min_parser_version` -> `MinParserVersion`."""
    c = lower_camel(name)
    return c[:1].upper() + c[1:]


def _reader(buf: Any) -> FlatReader:
    return FlatReader(buf, tables=TABLES, enums=ENUMS, subject="metadata")


# ---- object API (<Table>T) -------------------------------------------------------------------

class MetadataObject:
    """Base of the `<Table>T` classes; `_TABLE` names the schema table."""

    _TABLE = ""

    def __init__(self) -> None:
        for name, kind, default in TABLES[self._TABLE]:
            setattr(self, lower_camel(name), default if _is_scalar(kind) else None)

    def __repr__(self) -> str:
        fields = ", ".join(f"{lower_camel(n)}={getattr(self, lower_camel(n))!r}"
                           for n, _, _ in TABLES[self._TABLE])
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and _plain(self.to_dict()) == _plain(other.to_dict())

    __hash__ = None  # type: ignore[assignment]  # mutable, like the generated classes

    # -- conversion to and from the codec's dicts --------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """This object as `metadata_codec`'s dict (field names of the schema)."""
        out: dict[str, Any] = {}
        for name, kind, _ in TABLES[self._TABLE]:
            v = getattr(self, lower_camel(name), None)
            if v is None:
                continue
            if kind.startswith("union:"):
                if not isinstance(v, MetadataObject):
                    raise ValueError(f"{self._TABLE}.{lower_camel(name)} must be one of the "
                                     f"{kind[6:]} objects, got {type(v).__name__}")
                out[name] = v.to_dict()
                out[name + "_table"] = v._TABLE
            elif kind.startswith("table:"):
                out[name] = _expect(v, kind[6:], f"{self._TABLE}.{lower_camel(name)}").to_dict()
            elif kind.startswith("[table:"):
                out[name] = [_expect(t, kind[7:-1], f"{self._TABLE}.{lower_camel(name)}[{i}]")
                             .to_dict() for i, t in enumerate(v)]
            elif kind == "[str]":
                out[name] = [_text(s) for s in v]
            elif kind == "str":
                out[name] = _text(v)
            else:
                out[name] = _number(kind, v, f"{type(self).__name__}.{lower_camel(name)}")
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> MetadataObject:
        x = cls()
        for name, kind, _ in TABLES[cls._TABLE]:
            if name not in values:
                continue
            v = values[name]
            if kind.startswith("union:"):
                v = OBJECT_CLASSES[values[name + "_table"]].from_dict(v)
            elif kind.startswith("table:"):
                v = OBJECT_CLASSES[kind[6:]].from_dict(v)
            elif kind.startswith("[table:"):
                v = [OBJECT_CLASSES[kind[7:-1]].from_dict(t) for t in v]
            elif kind == "[str]":
                v = [s.encode("utf-8") for s in v]
            elif kind == "str":
                v = v.encode("utf-8")
            setattr(x, lower_camel(name), v)
        return x

    # -- flatc's object API -------------------------------------------------------------------
    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 - flatc's name
        return write_table(builder, self._TABLE, drop_defaults(self._TABLE, self.to_dict()),
                           tables=TABLES)

    @classmethod
    def InitFromObj(cls, obj: MetadataTable | None) -> MetadataObject:  # noqa: N802
        if obj is None:
            return cls()
        if not isinstance(obj, MetadataTable) or obj._TABLE != cls._TABLE:
            raise ValueError(f"{cls.__name__}.InitFromObj needs a {cls._TABLE} reader, got "
                             f"{type(obj).__name__}")
        r = _reader(obj._buf)
        return cls.from_dict(r.read_table(obj._pos, cls._TABLE, cls._TABLE))

    @classmethod
    def InitFromBuf(cls, buf: Any, pos: int) -> MetadataObject:  # noqa: N802
        return cls.InitFromObj(READER_CLASSES[cls._TABLE](buf, pos))

    @classmethod
    def InitFromPackedBuf(cls, buf: Any, pos: int = 0) -> MetadataObject:  # noqa: N802
        return cls.InitFromBuf(buf, _reader(buf).uoffset(pos, cls._TABLE + " root offset"))


def _is_scalar(kind: str) -> bool:
    return kind in _NP


def _number(kind: str, v: Any, what: str) -> Any:
    """A scalar or vector field's value, checked against its type (a ValueError naming the
    field rather than flatbuffers' TypeError/struct.error from deep inside Pack)."""
    vector = kind.startswith("[")
    dt = np.dtype(_NP[kind[1:-1] if vector else kind])
    if vector and isinstance(v, (bytes, bytearray, memoryview)):
        v = list(bytes(v))  # flatc's Pack indexes a bytes value element by element
    try:
        arr = np.asarray(v, dtype=np.float64 if dt.kind == "f" else object)
        if dt.kind != "f":
            flat = [int(x) for x in arr.reshape(-1)]
            info = np.iinfo(dt) if dt.kind in "iu" else None
            if info is not None and any(not info.min <= x <= info.max for x in flat):
                raise ValueError(f"out of range for {dt}")
        if arr.ndim != (1 if vector else 0):
            raise ValueError("a list of numbers" if vector else "a single number")
    except (TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"{what} = {v!r} is not a valid {kind} value: {e}") from None
    return arr.astype(dt) if vector else (float(arr) if dt.kind == "f" else int(arr))


def _text(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, (bytes, bytearray)) else str(v)


def _expect(v: Any, table: str, what: str) -> MetadataObject:
    if not isinstance(v, MetadataObject) or v._TABLE != table:
        raise ValueError(f"{what} must be a {table}T, got {type(v).__name__}")
    return v


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in v]
    return v


# ---- readers (<Table>) -----------------------------------------------------------------------

class MetadataTable:
    """Base of the lazy `<Table>` readers; `_TABLE` names the schema table."""

    _TABLE = ""

    def __init__(self, buf: Any = None, pos: int = 0) -> None:
        self._buf = buf
        self._pos = pos

    def Init(self, buf: Any, pos: int) -> None:  # noqa: N802 - flatc's name
        self._buf, self._pos = buf, pos

    @classmethod
    def GetRootAs(cls, buf: Any, offset: int = 0) -> MetadataTable:  # noqa: N802
        return cls(buf, _reader(buf).uoffset(offset, cls._TABLE + " root offset"))

    def _field(self, slot: int) -> tuple[FlatReader, int]:
        r = _reader(self._buf)
        name = TABLES[self._TABLE][slot][0]
        return r, r.field_pos(self._pos, slot, f"{self._TABLE}.{name}")


def _make_accessors(table: str) -> dict[str, Any]:
    methods: dict[str, Any] = {}
    for slot, (name, kind, default) in enumerate(TABLES[table]):
        label = f"{table}.{name}"
        acc = upper_camel(name)

        if _is_scalar(kind):
            def get(self, slot=slot, kind=kind, default=default, label=label):
                r, fp = self._field(slot)
                return r.scalar(kind, fp, label) if fp else default
        elif kind == "str":
            def get(self, slot=slot, label=label):
                r, fp = self._field(slot)
                return r.string(fp, label).encode("utf-8") if fp else None
        elif kind.startswith("table:"):
            def get(self, slot=slot, sub=kind[6:], label=label):
                r, fp = self._field(slot)
                return READER_CLASSES[sub](self._buf, r.uoffset(fp, label)) if fp else None
        elif kind.startswith("union:"):
            def get(self, slot=slot, label=label):
                r, fp = self._field(slot)
                return Table(self._buf, r.uoffset(fp, label)) if fp else None
        else:  # vectors
            elem = kind[1:-1]
            size = 4 if elem.startswith("table:") or elem == "str" else _ELEM_SIZES[elem]

            def span(self, slot=slot, size=size, label=label):
                r, fp = self._field(slot)
                if not fp:
                    return r, 0, 0
                start, n = r.vector(fp, size, label)
                return r, start, n

            def get(self, j, span=span, elem=elem, size=size, label=label):
                r, start, n = span(self)
                if not 0 <= j < n:
                    raise IndexError(f"{label}[{j}] is out of range (length {n})")
                pos = start + size * j
                if elem == "str":
                    return r.string(pos, f"{label}[{j}]").encode("utf-8")
                if elem.startswith("table:"):
                    return READER_CLASSES[elem[6:]](self._buf, r.uoffset(pos, f"{label}[{j}]"))
                return r.scalar(elem, pos, f"{label}[{j}]")

            def length(self, span=span):
                return span(self)[2]

            def is_none(self, slot=slot):
                return self._field(slot)[1] == 0

            methods[acc + "Length"] = length
            methods[acc + "IsNone"] = is_none
            if elem in _NP:
                def as_numpy(self, span=span, elem=elem, slot=slot):
                    if self._field(slot)[1] == 0:
                        return 0  # what flatc's generated code returns for an absent vector
                    r, start, n = span(self)
                    dt = np.dtype(_NP[elem]).newbyteorder("<")
                    return np.frombuffer(r.buf, dtype=dt, count=n, offset=start)
                methods[acc + "AsNumpy"] = as_numpy
        methods[acc] = get
    return methods


# ---- the generated names ---------------------------------------------------------------------

OBJECT_CLASSES: dict[str, type[MetadataObject]] = {}
READER_CLASSES: dict[str, type[MetadataTable]] = {}
ENUM_CLASSES: dict[str, type] = {}


def _has_identifier(buf: Any, offset: int = 0, size_prefixed: bool = False) -> bool:
    start = offset + (8 if size_prefixed else 4)
    return bytes(buf[start:start + 4]) == FILE_IDENTIFIER


def _build() -> dict[str, Any]:
    names: dict[str, Any] = {}
    for enum, members in ENUMS.items():
        ENUM_CLASSES[enum] = names[enum] = type(enum, (), dict(members, __doc__=f"enum {enum}"))
    for table in TABLES:
        obj = type(table + "T", (MetadataObject,), {"_TABLE": table, "__doc__":
                                                     f"object API of table {table}"})
        methods = _make_accessors(table)
        methods.update(_TABLE=table, __doc__=f"reader of table {table}")
        methods["GetRootAs" + table] = classmethod(
            lambda cls, buf, offset=0: MetadataTable.GetRootAs.__func__(cls, buf, offset))
        methods[table + "BufferHasIdentifier"] = classmethod(
            lambda cls, buf, offset, size_prefixed=False: _has_identifier(buf, offset,
                                                                         size_prefixed))
        reader = type(table, (MetadataTable,), methods)
        OBJECT_CLASSES[table] = names[table + "T"] = obj
        READER_CLASSES[table] = names[table] = reader
    return names


_GENERATED = _build()
globals().update(_GENERATED)
__all__ = sorted(_GENERATED) + ["lower_camel", "upper_camel"]


def _union_creator(enum: str):
    def create(union_type: int, table: Table | None) -> MetadataObject | None:
        name = dict((v, k) for k, v in ENUMS[enum]).get(union_type)
        if table is None or name is None or name == "NONE":
            return None
        return OBJECT_CLASSES[name].InitFromBuf(table.Bytes, table.Pos)
    create.__name__ = enum + "Creator"
    return create


ContentPropertiesCreator = _union_creator("ContentProperties")
ProcessUnitOptionsCreator = _union_creator("ProcessUnitOptions")
__all__ += ["ContentPropertiesCreator", "ProcessUnitOptionsCreator"]


def object_from_buffer(buf: Any) -> MetadataObject:
    """A metadata buffer as a `ModelMetadataT` (ValueError naming the field when damaged)."""
    return OBJECT_CLASSES["ModelMetadata"].from_dict(decode(buf))
