"""Read a .tflite file into the IR without copying constant data.

The file is memory-mapped read-only; every constant tensor becomes a read-only numpy view of its
buffer (inside the flatbuffer, or past its end via Buffer.offset/size as in >2 GiB models).
"""

from __future__ import annotations

import mmap
import os
from typing import Any

import numpy as np
from flatbuffers import flexbuffers

from tflite_jit.format.flat import FlatReader
from tflite_jit.format.schema import FILE_IDENTIFIER, enum_names, table_defaults
from tflite_jit.ir.model import (
    BUILTIN_NAMES,
    TENSOR_TYPE_NAMES,
    Model,
    Op,
    Quantization,
    SignatureDef,
    Sparsity,
    Subgraph,
    Tensor,
    numpy_type,
)

_CUSTOM = 32  # BuiltinOperator.CUSTOM
_PLACEHOLDER = 127  # BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES


def load_file(path: str | os.PathLike | bytes) -> Model:
    """Map `path` and read it. Raises ValueError as LiteRT does for unreadable paths."""
    p = os.fspath(path)
    shown = p.decode(errors="replace") if isinstance(p, bytes) else p
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                raise ValueError(f"Could not open '{shown}'.The model allocation is null/empty")
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError:
        raise ValueError(f"Could not open '{shown}'.The model allocation is null/empty") from None
    return load_bytes(mm)


def load_bytes(buf: Any) -> Model:
    """Read a model from bytes / bytearray / mmap / memoryview (kept referenced, never copied)."""
    r = FlatReader(buf)
    if r.size < 8 or bytes(r.mv[4:8]) != FILE_IDENTIFIER:
        raise ValueError("The model is not a valid Flatbuffer buffer")
    raw = r.read_table(r.root(), "Model", "Model")
    model = _to_ir(raw, r)
    model.source = buf
    return model


# ---- raw dicts -> IR ---------------------------------------------------------------------------

def _buffer_bytes(raw_buffers: list[dict], idx: int, r: FlatReader, what: str) -> np.ndarray | None:
    if idx == 0:
        return None
    if idx >= len(raw_buffers):
        raise ValueError(f"{what} refers to buffer {idx}, but the model has {len(raw_buffers)} buffers")
    b = raw_buffers[idx]
    off, size = b.get("offset", 0), b.get("size", 0)
    if off > 1:
        r._check(off, size, f"buffer {idx} (offset/size)")
        return np.frombuffer(r.buf, dtype=np.uint8, count=size, offset=off) if size else None
    data = b.get("data")
    return data if data is not None and data.size else None


def _quantization(q: dict | None, what: str) -> Quantization | None:
    if not q:
        return None
    scales = q.get("scale")
    zps = q.get("zero_point")
    details = q.get("details")
    if (scales is None or not scales.size) and details is None and q.get("min") is None:
        return None
    scales = np.asarray(scales if scales is not None else np.zeros(0, np.float32), np.float32)
    zps = np.asarray(zps if zps is not None else np.zeros(0, np.int64), np.int64)
    return Quantization(scales=scales, zero_points=zps,
                        quantized_dimension=int(q.get("quantized_dimension", 0)),
                        min=q.get("min"), max=q.get("max"),
                        details=({"type": q.get("details_table"), **details} if details is not None else None))


def _sparsity(s: dict | None) -> Sparsity | None:
    if not s:
        return None
    fmt_names = enum_names("DimensionType")
    dims = []
    for d in s.get("dim_metadata", []):
        seg = d.get("array_segments")
        idx = d.get("array_indices")
        dims.append({
            "format": fmt_names.get(d.get("format", 0), str(d.get("format"))),
            "dense_size": int(d.get("dense_size", 0)),
            "array_segments": None if seg is None else seg.get("values"),
            "array_indices": None if idx is None else idx.get("values"),
        })
    to_t = lambda a: tuple(int(v) for v in a) if a is not None else ()  # noqa: E731
    return Sparsity(traversal_order=to_t(s.get("traversal_order")),
                    block_map=None if s.get("block_map") is None else to_t(s["block_map"]),
                    dim_metadata=dims)


def _tensor(t: dict, raw_buffers: list[dict], r: FlatReader, what: str) -> Tensor:
    name = t.get("name") or ""
    label = f"tensor {what} ('{name}')"
    type_code = int(t.get("type", 0))
    if type_code not in TENSOR_TYPE_NAMES:
        raise ValueError(f"{label} has unknown type code {type_code}")
    shape = tuple(int(v) for v in t["shape"]) if t.get("shape") is not None else ()
    sig = t.get("shape_signature")
    sig = tuple(int(v) for v in sig) if sig is not None and sig.size else None
    buf_idx = int(t.get("buffer", 0))
    data = _buffer_bytes(raw_buffers, buf_idx, r, label)
    tensor = Tensor(name=name, type=type_code, shape=shape, shape_signature=sig, buffer=buf_idx,
                    quantization=_quantization(t.get("quantization"), label),
                    sparsity=_sparsity(t.get("sparsity")),
                    is_variable=bool(t.get("is_variable", False)),
                    has_rank=bool(t.get("has_rank", False)) or bool(shape))
    if data is not None:
        tensor.data = _constant_view(tensor, data, label)
    return tensor


def _constant_view(t: Tensor, data: np.ndarray, label: str) -> np.ndarray:
    """View a buffer as the tensor's array. Packed/sparse stay raw uint8 bytes; strings are
    decoded into an object array of `bytes` (what LiteRT's get_tensor returns for them)."""
    tname = TENSOR_TYPE_NAMES[t.type]
    if tname == "STRING" and t.sparsity is None:
        return decode_strings(data, t.shape, label)
    if tname in ("STRING", "INT4", "UINT4", "INT2", "RESOURCE", "VARIANT") or t.sparsity is not None:
        return data
    if any(d < 0 for d in t.shape):
        raise ValueError(f"{label} is constant but has a negative dimension {list(t.shape)}")
    dt = np.dtype(numpy_type(t.type)).newbyteorder("<")
    count = int(np.prod(t.shape, dtype=np.int64))
    if data.size != count * dt.itemsize:
        raise ValueError(
            f"{label}: buffer holds {data.size} bytes but shape {list(t.shape)} of {tname} needs "
            f"{count * dt.itemsize}; the file is damaged"
        )
    return data.view(dt).reshape(t.shape)


def decode_strings(data: np.ndarray, shape: tuple[int, ...], label: str) -> np.ndarray:
    """TFLite's string buffer: int32 count N, N+1 int32 offsets from the buffer start (the last
    one is the end of the data), then the bytes. Every offset is checked against the buffer,
    and the count against the shape, before anything is sliced."""
    raw = np.asarray(data, np.uint8).reshape(-1)
    if any(d < 0 for d in shape):
        raise ValueError(f"{label} is constant but has a negative dimension {list(shape)}")
    count = int(np.prod(shape, dtype=np.int64))
    if raw.size < 4:
        raise ValueError(f"{label}: string buffer of {raw.size} bytes has no element count; "
                         "the file is damaged")
    n = int(raw[:4].view("<i4")[0])
    if n != count:
        raise ValueError(f"{label}: string buffer holds {n} strings but shape {list(shape)} needs "
                         f"{count}; the file is damaged")
    head = 4 * (n + 2)
    if raw.size < head:
        raise ValueError(f"{label}: string buffer of {raw.size} bytes is too short for the offsets "
                         f"of {n} strings; the file is damaged")
    offs = raw[4:head].view("<i4").astype(np.int64)
    if offs[0] < head or offs[-1] > raw.size or np.any(np.diff(offs) < 0):
        raise ValueError(f"{label}: string offsets {offs.tolist()[:8]} are not increasing within "
                         f"[{head}, {raw.size}]; the file is damaged")
    blob = raw.tobytes()
    out = np.empty(count, dtype=object)
    for i in range(count):
        out[i] = blob[offs[i]:offs[i + 1]]
    return out.reshape(shape)


def _op(o: dict, codes: list[dict], r: FlatReader, what: str) -> Op:
    idx = int(o.get("opcode_index", 0))
    if idx >= len(codes):
        raise ValueError(f"{what} uses opcode index {idx}, but the model has {len(codes)} operator codes")
    code = codes[idx]
    # builtin_code (int32) superseded deprecated_builtin_code (int8) at 127: take the larger.
    builtin = max(int(code.get("builtin_code", 0)), int(code.get("deprecated_builtin_code", 0)))
    if builtin == _CUSTOM or (builtin == _PLACEHOLDER and code.get("custom_code")):
        name = code.get("custom_code") or ""
        custom = name
    else:
        name = BUILTIN_NAMES.get(builtin, f"UNKNOWN_BUILTIN_{builtin}")
        custom = None
    options: dict[str, Any] = {}
    options_type = None
    for key in ("builtin_options", "builtin_options2"):
        if key in o:
            options_type = o[key + "_table"]
            options = {**table_defaults(options_type), **o[key]}
            options = {k: v for k, v in options.items() if v is not None}
    raw_custom = None
    if o.get("large_custom_options_size", 0):
        off, size = o["large_custom_options_offset"], o["large_custom_options_size"]
        r._check(off, size, f"{what} large custom options")
        raw_custom = bytes(r.mv[off:off + size])
    elif o.get("custom_options") is not None:
        raw_custom = o["custom_options"].tobytes()
    if raw_custom and custom is not None and int(o.get("custom_options_format", 0)) == 0:
        options = flex_options(raw_custom) if custom.startswith("Flex") else _decode_flexbuffer(raw_custom)
    to_t = lambda a: tuple(int(v) for v in a) if a is not None else ()  # noqa: E731
    return Op(name=name, inputs=to_t(o.get("inputs")), outputs=to_t(o.get("outputs")),
              options=options, builtin_code=builtin, version=int(code.get("version", 1)),
              custom_code=custom, custom_options=raw_custom, options_type=options_type,
              intermediates=to_t(o.get("intermediates")))


def _empty_constants(tensors: list[Tensor], ops: list[Op], inputs: tuple[int, ...]) -> None:
    """A zero-element tensor that nothing writes is a constant: the converter emits them (an
    empty shape or axis list) with an empty buffer, which reads as 'no data'. LiteRT runs them
    (there is nothing to read); we give them an empty array so they are constants here too."""
    written = set(inputs) | {t for op in ops for t in op.outputs}
    for i, t in enumerate(tensors):
        if (t.data is None and t.buffer > 0 and i not in written and not t.is_variable and t.shape
                and 0 in t.shape and TENSOR_TYPE_NAMES[t.type] not in ("STRING", "RESOURCE", "VARIANT")):
            t.data = np.zeros(t.shape, dtype=np.dtype(numpy_type(t.type)))


def flex_options(raw: bytes) -> dict[str, Any]:
    """A Flex op's custom options: a flexbuffer vector [TF op name, serialized NodeDef]. The
    NodeDef stays bytes (ops.flex decodes it with protobuf when the op is prepared); options
    of another shape are left empty for the op to reject."""
    try:
        v = flexbuffers.GetRoot(raw).AsVector
        node = v[1].AsBlob if v[1].IsBlob else v[1].AsStringBytes  # TF writes a string; a blob is fine
        return {"flex_op": bytes(v[0].AsStringBytes).decode(), "node_def": bytes(node)}
    except Exception:  # a damaged flexbuffer is the op's problem, not the loader's
        return {}


def _decode_flexbuffer(raw: bytes) -> dict[str, Any]:
    """Custom options as a dict; anything that is not a flexbuffer map is left undecoded ({})."""
    try:
        value = flexbuffers.Loads(raw)
    except Exception:  # a damaged flexbuffer is the custom op's problem, not the loader's
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _to_ir(raw: dict, r: FlatReader) -> Model:
    raw_buffers = raw.get("buffers", [])
    codes = raw.get("operator_codes", [])
    subgraphs = []
    for si, sg in enumerate(raw.get("subgraphs", [])):
        tensors = [_tensor(t, raw_buffers, r, f"{i} of subgraph {si}")
                   for i, t in enumerate(sg.get("tensors", []))]
        ops = [_op(o, codes, r, f"operator {i} of subgraph {si}")
               for i, o in enumerate(sg.get("operators", []))]
        to_t = lambda a: tuple(int(v) for v in a) if a is not None else ()  # noqa: E731
        inputs = to_t(sg.get("inputs"))
        _empty_constants(tensors, ops, inputs)
        subgraphs.append(Subgraph(tensors=tensors, inputs=inputs,
                                  outputs=to_t(sg.get("outputs")), ops=ops, name=sg.get("name") or ""))
    if not subgraphs:
        raise ValueError("The model is not a valid Flatbuffer buffer: it has no subgraphs")
    metadata = {}
    for m in raw.get("metadata", []):
        data = _buffer_bytes(raw_buffers, int(m.get("buffer", 0)), r, f"metadata '{m.get('name')}'")
        metadata[m.get("name") or ""] = b"" if data is None else data.tobytes()
    signatures = []
    for s in raw.get("signature_defs", []):
        signatures.append(SignatureDef(
            key=s.get("signature_key") or "", subgraph_index=int(s.get("subgraph_index", 0)),
            inputs={m.get("name") or "": int(m.get("tensor_index", 0)) for m in s.get("inputs", [])},
            outputs={m.get("name") or "": int(m.get("tensor_index", 0)) for m in s.get("outputs", [])},
        ))
    return Model(subgraphs=subgraphs, version=int(raw.get("version", 0)),
                 description=raw.get("description") or "", signatures=signatures, metadata=metadata)
