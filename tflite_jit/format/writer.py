"""Serialize the IR to .tflite bytes that LiteRT loads and our reader round-trips unchanged.

Tables are written generically from the schema facts table, so every field the reader knows the
writer can emit. Constant buffers are 16-byte aligned (what TFLite's own exporter guarantees and
what zero-copy views want). `external_buffers=True` places buffer data after the flatbuffer via
Buffer.offset/size, the layout TFLite uses for models over 2 GiB.
"""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np
from flatbuffers import flexbuffers

from tflite_jit.format.schema import FILE_IDENTIFIER, enum_values, options_table_for
from tflite_jit.format.schema_data import ENUMS, TABLES
from tflite_jit.ir.model import BUILTIN_CODES, Model, Op, Quantization, Sparsity, Tensor

_ENUM_TENSOR_TYPES = ENUMS["TensorType"]
_SLOT_FNS = {
    "bool": "PrependBoolSlot", "i8": "PrependInt8Slot", "u8": "PrependUint8Slot",
    "i16": "PrependInt16Slot", "u16": "PrependUint16Slot", "i32": "PrependInt32Slot",
    "u32": "PrependUint32Slot", "i64": "PrependInt64Slot", "u64": "PrependUint64Slot",
    "f32": "PrependFloat32Slot", "f64": "PrependFloat64Slot",
}
_NP = {"bool": np.bool_, "i8": np.int8, "u8": np.uint8, "i16": np.int16, "u16": np.uint16,
       "i32": np.int32, "u32": np.uint32, "i64": np.int64, "u64": np.uint64, "f32": np.float32,
       "f64": np.float64}
_ALIGN = 16
_CUSTOM = 32
_STRING = dict(_ENUM_TENSOR_TYPES)["STRING"]


def write_table(b: flatbuffers.Builder, table: str, values: dict[str, Any],
                 tables: dict | None = None) -> int:
    """Write one table into `b` from a dict of field values (None/missing fields are omitted);
    `tables` selects the schema (default: TFLite's). Returns the table's offset."""
    tables = TABLES if tables is None else tables
    fields = tables[table]
    offsets: dict[int, int] = {}
    for slot, f in enumerate(fields):  # children first: flatbuffers builds bottom-up
        if f is None or values.get(f[0]) is None:
            continue
        name, kind, _ = f
        v = values[name]
        if kind == "str":
            offsets[slot] = b.CreateString(v)
        elif kind.startswith("table:"):
            offsets[slot] = write_table(b, kind[6:], v, tables)
        elif kind.startswith("union:"):
            offsets[slot] = write_table(b, values[name + "_table"], v, tables)
        elif kind == "[str]":
            offsets[slot] = _offset_vector(b, [b.CreateString(s) for s in v])
        elif kind.startswith("[table:"):
            offsets[slot] = _offset_vector(b, [write_table(b, kind[7:-1], t, tables) for t in v])
        elif kind.startswith("["):
            arr = np.ascontiguousarray(np.asarray(v, dtype=_NP[kind[1:-1]]).ravel())
            offsets[slot] = _bytes_vector(b, arr.view(np.uint8).tobytes(), arr.itemsize,
                                          _ALIGN if kind == "[u8]" else arr.itemsize)
    b.StartObject(len(fields))
    for slot, f in enumerate(fields):
        if f is None:
            continue
        name, kind, default = f
        if slot in offsets:
            b.PrependUOffsetTRelativeSlot(slot, offsets[slot], 0)
        elif kind in _SLOT_FNS and values.get(name) is not None:
            v = values[name]
            v = bool(v) if kind == "bool" else (float(v) if kind[0] == "f" else int(v))
            # force=True: keep fields explicitly set to their default (the round trip stays exact)
            getattr(b, _SLOT_FNS[kind])(slot, v, None)
    return b.EndObject()


def write_root(table: str, values: dict[str, Any], *, file_identifier: bytes,
               tables: dict | None = None) -> bytes:
    """Serialize one root table from a dict shaped like `flat.FlatReader.read_table`'s output.

    `tables` selects the schema (default: TFLite's); every scalar given is written, even when it
    equals the default, so callers drop the fields they want absent.
    """
    b = flatbuffers.Builder(1024)
    b.Finish(write_table(b, table, values, tables), file_identifier=file_identifier)
    return bytes(b.Output())


def _offset_vector(b: flatbuffers.Builder, offs: list[int]) -> int:
    b.StartVector(4, len(offs), 4)
    for o in reversed(offs):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def _bytes_vector(b: flatbuffers.Builder, data: bytes, elem: int, align: int) -> int:
    n = len(data) // elem
    b.StartVector(elem, n, align)
    b.head = b.head - len(data)
    b.Bytes[b.head:b.head + len(data)] = data
    return b.EndVector()


# ---- IR -> dicts -------------------------------------------------------------------------------

def _quant_dict(q: Quantization | None) -> dict | None:
    if q is None:
        return None
    d: dict[str, Any] = {"scale": q.scales, "zero_point": q.zero_points,
                         "quantized_dimension": q.quantized_dimension, "min": q.min, "max": q.max}
    if q.details:
        det = dict(q.details)
        table = det.pop("type")
        d["details"] = det
        d["details_table"] = table
        d["details_type"] = enum_values("QuantizationDetails")[table]
    return d


def _sparsity_dict(s: Sparsity | None) -> dict | None:
    if s is None:
        return None
    dims = []
    fmt = enum_values("DimensionType")
    vec_tables = {np.dtype(np.int32): "Int32Vector", np.dtype(np.uint16): "Uint16Vector",
                  np.dtype(np.uint8): "Uint8Vector"}
    for d in s.dim_metadata:
        dd: dict[str, Any] = {"format": fmt[d["format"]], "dense_size": d["dense_size"]}
        for key in ("array_segments", "array_indices"):
            if d.get(key) is not None:
                arr = np.asarray(d[key])
                t = vec_tables.get(arr.dtype, "Int32Vector")
                dd[key] = {"values": arr}
                dd[key + "_table"] = t
                dd[key + "_type"] = enum_values("SparseIndexVector")[t]
        dims.append(dd)
    return {"traversal_order": list(s.traversal_order),
            "block_map": None if s.block_map is None else list(s.block_map),
            "dim_metadata": dims}


def _tensor_dict(t: Tensor, buffer: int) -> dict:
    return {"shape": list(t.shape), "type": t.type, "buffer": buffer, "name": t.name,
            "quantization": _quant_dict(t.quantization), "is_variable": t.is_variable or None,
            "sparsity": _sparsity_dict(t.sparsity),
            "shape_signature": list(t.shape_signature) if t.shape_signature is not None else None,
            "has_rank": True if t.has_rank and not t.shape else None}


def _op_dict(op: Op, opcode_index: int) -> dict:
    d: dict[str, Any] = {"opcode_index": opcode_index, "inputs": list(op.inputs),
                         "outputs": list(op.outputs),
                         "intermediates": list(op.intermediates) or None}
    if op.is_custom:
        raw = op.custom_options
        if raw is None and op.options:
            raw = bytes(flexbuffers.Dumps(op.options))
        if raw is not None:
            d["custom_options"] = np.frombuffer(raw, np.uint8)
            d["custom_options_format"] = 0
    else:
        found = options_table_for(op.name)
        table = op.options_type or (found[1] if found else None)
        if table is not None and (op.options or op.options_type):
            for union in ("BuiltinOptions", "BuiltinOptions2"):
                if table in enum_values(union):
                    key = "builtin_options" if union == "BuiltinOptions" else "builtin_options2"
                    d[key] = op.options
                    d[key + "_table"] = table
                    d[key + "_type"] = enum_values(union)[table]
        elif op.options:
            raise ValueError(f"op {op.name} takes no options, got {sorted(op.options)}")
    return d


def write_model(model: Model, *, external_buffers: bool = False) -> bytes:
    """Serialize `model`. Buffers are numbered in tensor order (0 is the empty sentinel)."""
    if not external_buffers:
        return _serialize(model, None)
    # Offsets are u64 fields whose encoding size does not depend on their value: lay out once
    # with placeholders to learn the flatbuffer's length, then again with the real offsets.
    probe = _serialize(model, {})
    end = _align(len(probe))
    offsets: dict[int, int] = {}
    for i, blob in enumerate(_buffer_blobs(model)):
        if blob:
            offsets[i] = end
            end = _align(end + len(blob))
    head = _serialize(model, offsets)
    if len(head) != len(probe):  # pragma: no cover - guarded by the layout argument above
        raise AssertionError("flatbuffer length changed between passes")
    out = bytearray(head)
    for i, blob in enumerate(_buffer_blobs(model)):
        if blob:
            out.extend(b"\0" * (offsets[i] - len(out)))
            out.extend(blob)
    return bytes(out)


def _align(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def encode_strings(values: Any) -> bytes:
    """TFLite's string buffer for an array of bytes/str: int32 count, count+1 int32 offsets
    from the buffer start, then the bytes (str is UTF-8 encoded, as LiteRT's set_tensor does)."""
    items = []
    for v in np.asarray(values, dtype=object).reshape(-1):
        if isinstance(v, str):
            v = v.encode("utf-8")
        if not isinstance(v, (bytes, bytearray)):
            raise ValueError(f"a string tensor element must be bytes or str, got {type(v).__name__}")
        items.append(bytes(v))
    n = len(items)
    offsets = np.cumsum([4 * (n + 2)] + [len(v) for v in items], dtype=np.int64)
    if offsets[-1] > np.iinfo(np.int32).max:
        raise ValueError(f"string tensor of {int(offsets[-1])} bytes is over the int32 offset limit")
    return np.int32(n).astype("<i4").tobytes() + offsets.astype("<i4").tobytes() + b"".join(items)


def _buffer_blobs(model: Model) -> list[bytes]:
    """Buffer contents in buffer-index order: sentinel, tensor constants, then metadata."""
    blobs = [b""]
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.data is None:
                continue
            if t.type == _STRING and t.data.dtype != np.uint8:
                blobs.append(encode_strings(t.data))  # raw uint8 data is written as it is
            else:
                blobs.append(np.ascontiguousarray(t.data).tobytes())
    blobs.extend(model.metadata.values())
    return blobs


def _serialize(model: Model, ext: dict[int, int] | None) -> bytes:
    b = flatbuffers.Builder(1024)
    blobs = _buffer_blobs(model)
    buffers = []
    for i, blob in enumerate(blobs):
        if ext is not None and blob:
            buffers.append({"offset": ext.get(i, 1), "size": len(blob)})
        else:
            buffers.append({"data": np.frombuffer(blob, np.uint8) if blob else None})
    codes: list[tuple] = []
    code_index: dict[tuple, int] = {}
    subgraphs = []
    next_buffer = 1
    for sg in model.subgraphs:
        tensors = []
        for t in sg.tensors:
            if t.data is not None:
                tensors.append(_tensor_dict(t, next_buffer))
                next_buffer += 1
            else:
                tensors.append(_tensor_dict(t, 0))
        ops = []
        for op in sg.ops:
            builtin = _CUSTOM if op.is_custom else BUILTIN_CODES[op.name]
            key = (builtin, op.custom_code, op.version)
            if key not in code_index:
                code_index[key] = len(codes)
                codes.append(key)
            ops.append(_op_dict(op, code_index[key]))
        subgraphs.append({"tensors": tensors, "inputs": list(sg.inputs), "outputs": list(sg.outputs),
                          "operators": ops, "name": sg.name or None})
    metadata = [{"name": name, "buffer": next_buffer + i} for i, name in enumerate(model.metadata)]
    sigs = [{"inputs": [{"name": n, "tensor_index": i} for n, i in s.inputs.items()],
             "outputs": [{"name": n, "tensor_index": i} for n, i in s.outputs.items()],
             "signature_key": s.key, "subgraph_index": s.subgraph_index} for s in model.signatures]
    root = write_table(b, "Model", {
        "version": model.version,
        "operator_codes": [{"deprecated_builtin_code": min(c[0], 127), "builtin_code": c[0],
                            "custom_code": c[1], "version": c[2]} for c in codes],
        "subgraphs": subgraphs, "description": model.description or None,
        "buffers": buffers, "metadata": metadata or None, "signature_defs": sigs or None,
    })
    b.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())
