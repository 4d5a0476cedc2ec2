"""TensorFlow's protocol buffers that a .tflite file or a TF checkpoint can carry, decoded by
the protobuf library (the optional extra ``flex``: ``pip install 'tflite-jit[flex]'``).

A Flex op's custom options hold a serialized ``tensorflow.NodeDef``; a V1 checkpoint (what TF's
``Save`` op writes) holds ``SavedTensorSlices`` messages. We describe the messages we need as
descriptors written here from the public .proto files' field numbers (facts of the wire format)
and let protobuf generate the classes at run time — no generated code to keep in sync, no
TensorFlow import. They live in a private descriptor pool, so TensorFlow's own classes (same
full names) can be loaded in the same process. DataType fields are declared int32: the wire
encoding of a proto3 enum is the same varint, and `DTYPES` maps the numbers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

# tensorflow/core/framework/types.proto: DataType number -> numpy dtype (None: no numpy twin)
DTYPES: dict[int, Any] = {
    1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 7: object,
    8: np.complex64, 9: np.int64, 10: np.bool_, 14: None, 17: np.uint16, 18: np.complex128,
    19: np.float16, 20: None, 21: None, 22: np.uint32, 23: np.uint64,
}
DTYPE_NAMES = {1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 4: "DT_UINT8", 5: "DT_INT16", 6: "DT_INT8",
               7: "DT_STRING", 8: "DT_COMPLEX64", 9: "DT_INT64", 10: "DT_BOOL", 14: "DT_BFLOAT16",
               17: "DT_UINT16", 18: "DT_COMPLEX128", 19: "DT_HALF", 20: "DT_RESOURCE",
               21: "DT_VARIANT", 22: "DT_UINT32", 23: "DT_UINT64"}


def dtype_number(dtype: Any) -> int:
    """The DataType number of a numpy dtype (object arrays are strings)."""
    dt = np.dtype(dtype)
    for num, np_dt in DTYPES.items():
        if np_dt is not None and np.dtype(np_dt) == dt:
            return num
    raise ValueError(f"TensorFlow has no DataType for numpy dtype {dt}")


def numpy_dtype(num: int, what: str) -> np.dtype:
    dt = DTYPES.get(int(num))
    if dt is None:
        raise ValueError(f"{what}: TensorFlow DataType {DTYPE_NAMES.get(int(num), num)} has no "
                         "numpy equivalent here")
    return np.dtype(dt)


# (message, [(field name, number, label, type, message type or None)]); "A.B" is message B nested
# in A. Types are descriptor_pb2.FieldDescriptorProto TYPE_* names; labels: opt, rep (repeated;
# proto3 packs repeated scalars), oneof, map (map<string, type>).
_MESSAGES: list[tuple[str, list[tuple[str, int, str, str, str | None]]]] = [
    ("TensorShapeProto.Dim", [("size", 1, "opt", "int64", None), ("name", 2, "opt", "string", None)]),
    ("TensorShapeProto", [("dim", 2, "rep", "message", "TensorShapeProto.Dim"),
                          ("unknown_rank", 3, "opt", "bool", None)]),
    ("TensorProto", [("dtype", 1, "opt", "int32", None),
                     ("tensor_shape", 2, "opt", "message", "TensorShapeProto"),
                     ("version_number", 3, "opt", "int32", None),
                     ("tensor_content", 4, "opt", "bytes", None),
                     ("float_val", 5, "rep", "float", None), ("double_val", 6, "rep", "double", None),
                     ("int_val", 7, "rep", "int32", None), ("string_val", 8, "rep", "bytes", None),
                     ("scomplex_val", 9, "rep", "float", None), ("int64_val", 10, "rep", "int64", None),
                     ("bool_val", 11, "rep", "bool", None), ("dcomplex_val", 12, "rep", "double", None),
                     ("half_val", 13, "rep", "int32", None), ("uint32_val", 16, "rep", "uint32", None),
                     ("uint64_val", 17, "rep", "uint64", None)]),
    ("AttrValue.ListValue", [("s", 2, "rep", "bytes", None), ("i", 3, "rep", "int64", None),
                             ("f", 4, "rep", "float", None), ("b", 5, "rep", "bool", None),
                             ("type", 6, "rep", "int32", None),
                             ("shape", 7, "rep", "message", "TensorShapeProto"),
                             ("tensor", 8, "rep", "message", "TensorProto"),
                             ("func", 9, "rep", "message", "NameAttrList")]),
    ("AttrValue", [("list", 1, "oneof", "message", "AttrValue.ListValue"), ("s", 2, "oneof", "bytes", None),
                   ("i", 3, "oneof", "int64", None), ("f", 4, "oneof", "float", None),
                   ("b", 5, "oneof", "bool", None), ("type", 6, "oneof", "int32", None),
                   ("shape", 7, "oneof", "message", "TensorShapeProto"),
                   ("tensor", 8, "oneof", "message", "TensorProto"),
                   ("placeholder", 9, "oneof", "string", None),
                   ("func", 10, "oneof", "message", "NameAttrList")]),
    ("NameAttrList", [("name", 1, "opt", "string", None), ("attr", 2, "map", "message", "AttrValue")]),
    ("NodeDef", [("name", 1, "opt", "string", None), ("op", 2, "opt", "string", None),
                 ("input", 3, "rep", "string", None), ("device", 4, "opt", "string", None),
                 ("attr", 5, "map", "message", "AttrValue")]),
    # tensorflow/core/framework/tensor_slice.proto, versions.proto, core/util/saved_tensor_slice.proto
    ("TensorSliceProto.Extent", [("start", 1, "opt", "int64", None), ("length", 2, "oneof", "int64", None)]),
    ("TensorSliceProto", [("extent", 1, "rep", "message", "TensorSliceProto.Extent")]),
    ("VersionDef", [("producer", 1, "opt", "int32", None), ("min_consumer", 2, "opt", "int32", None),
                    ("bad_consumers", 3, "rep", "int32", None)]),
    ("SavedSliceMeta", [("name", 1, "opt", "string", None), ("shape", 2, "opt", "message", "TensorShapeProto"),
                        ("type", 3, "opt", "int32", None),
                        ("slice", 4, "rep", "message", "TensorSliceProto")]),
    ("SavedTensorSliceMeta", [("tensor", 1, "rep", "message", "SavedSliceMeta"),
                              ("versions", 2, "opt", "message", "VersionDef")]),
    ("SavedSlice", [("name", 1, "opt", "string", None), ("slice", 2, "opt", "message", "TensorSliceProto"),
                    ("data", 3, "opt", "message", "TensorProto")]),
    ("SavedTensorSlices", [("meta", 1, "opt", "message", "SavedTensorSliceMeta"),
                           ("data", 2, "opt", "message", "SavedSlice")]),
]

_PACKAGE = "tensorflow"


def _import_protobuf() -> Any:
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("TensorFlow ops (Flex ops) and TF checkpoints need the protobuf library: "
                          "pip install 'tflite-jit[flex]'") from None
    return descriptor_pb2, descriptor_pool, message_factory


@functools.cache
def messages() -> dict[str, Any]:
    """Message classes by name ('NodeDef', 'AttrValue', 'SavedTensorSlices', ...), built once."""
    descriptor_pb2, descriptor_pool, message_factory = _import_protobuf()
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="tflite_jit_tensorflow_subset.proto", package=_PACKAGE,
                                             syntax="proto3")
    protos: dict[str, Any] = {}
    for full, fields in sorted(_MESSAGES, key=lambda m: m[0].count(".")):  # parents first
        parent, _, short = full.rpartition(".")
        msg = protos[parent].nested_type.add(name=short) if parent else fdp.message_type.add(name=short)
        protos[full] = msg
        for fname, number, label, ftype, type_name in fields:
            f = msg.field.add(name=fname, number=number)
            if label == "map":
                entry = msg.nested_type.add(name=fname.capitalize() + "Entry")
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, label=F.LABEL_OPTIONAL, type=F.TYPE_STRING)
                entry.field.add(name="value", number=2, label=F.LABEL_OPTIONAL, type=F.TYPE_MESSAGE,
                                type_name=f".{_PACKAGE}.{type_name}")
                f.label, f.type = F.LABEL_REPEATED, F.TYPE_MESSAGE
                f.type_name = f".{_PACKAGE}.{full}.{entry.name}"
                continue
            f.label = F.LABEL_REPEATED if label == "rep" else F.LABEL_OPTIONAL
            f.type = getattr(F, "TYPE_" + ftype.upper())
            if type_name:
                f.type_name = f".{_PACKAGE}.{type_name}"
            if label == "oneof":
                name = "has_length" if full == "TensorSliceProto.Extent" else "value"
                if not any(o.name == name for o in msg.oneof_decl):
                    msg.oneof_decl.add(name=name)
                f.oneof_index = [o.name for o in msg.oneof_decl].index(name)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {full: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{full}"))
            for full, _ in _MESSAGES}


# ---- TensorProto <-> numpy ------------------------------------------------------------------------

# numpy kind -> the repeated field TF's checkpoint writer fills (SaveTypeTraits)
_VALUE_FIELDS = {np.dtype(np.float32): "float_val", np.dtype(np.float64): "double_val",
                 np.dtype(np.int32): "int_val", np.dtype(np.int16): "int_val", np.dtype(np.int8): "int_val",
                 np.dtype(np.uint8): "int_val", np.dtype(np.uint16): "int_val",
                 np.dtype(np.int64): "int64_val", np.dtype(np.bool_): "bool_val",
                 np.dtype(np.float16): "half_val", np.dtype(np.uint32): "uint32_val",
                 np.dtype(np.uint64): "uint64_val", np.dtype(object): "string_val"}


def fill_values(proto: Any, array: np.ndarray) -> None:
    """Put `array`'s elements (C order) into TensorProto `proto`'s typed repeated field."""
    field = _VALUE_FIELDS.get(array.dtype)
    if field is None:
        raise ValueError(f"cannot store a {array.dtype} tensor in a TensorFlow checkpoint")
    flat = array.reshape(-1)
    if array.dtype == np.float16:
        flat = flat.view(np.uint16).astype(np.int32)
    elif array.dtype == object:
        flat = [v if isinstance(v, bytes) else str(v).encode() for v in flat]
    getattr(proto, field).extend(flat.tolist() if isinstance(flat, np.ndarray) else flat)


def to_numpy(proto: Any, dtype: np.dtype | None = None, shape: tuple[int, ...] | None = None,
             what: str = "tensor") -> np.ndarray:
    """A TensorProto's value; `dtype`/`shape` where the proto leaves them out (checkpoint data)."""
    dt = np.dtype(dtype) if dtype is not None else numpy_dtype(proto.dtype, what)
    if shape is None:
        shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    n = int(np.prod(shape, dtype=np.int64))
    if proto.tensor_content:
        if dt.kind == "O":
            raise ValueError(f"{what}: a string tensor cannot use tensor_content")
        arr = np.frombuffer(proto.tensor_content, dtype=dt.newbyteorder("<")).astype(dt)
    else:
        field = _VALUE_FIELDS.get(dt)
        if field is None:
            raise ValueError(f"{what}: cannot read a {dt} tensor")
        vals = list(getattr(proto, field))
        if dt == np.float16:
            arr = np.array(vals, np.int32).astype(np.uint16).view(np.float16)
        elif dt.kind == "O":
            arr = np.empty(len(vals), dtype=object)
            arr[:] = vals
        else:
            arr = np.array(vals, dtype=dt)
        if arr.size == 1 and n > 1:  # TF stores a splat as one value
            arr = np.full(n, arr[0], dtype=dt)
    if arr.size != n:
        raise ValueError(f"{what}: holds {arr.size} values, its shape {list(shape)} needs {n}")
    return arr.reshape(shape)


# ---- NodeDef ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeDef:
    """A Flex op's TensorFlow node: op type, node name and attributes as Python values."""

    op: str
    name: str
    attrs: dict[str, Any]

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


def _attr_value(v: Any, what: str) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "list":
        lv = v.list
        for field in ("s", "i", "f", "b", "type", "shape", "tensor"):
            if len(getattr(lv, field)):
                return [_scalar(field, x, what) for x in getattr(lv, field)]
        return []
    return _scalar(kind, getattr(v, kind), what)


def _scalar(kind: str, x: Any, what: str) -> Any:
    if kind == "s":
        return bytes(x)
    if kind in ("i", "type"):
        return int(x)
    if kind == "f":
        return float(x)
    if kind == "b":
        return bool(x)
    if kind == "shape":
        return None if x.unknown_rank else tuple(int(d.size) for d in x.dim)
    if kind == "tensor":
        return to_numpy(x, what=what)
    if kind in ("placeholder",):
        return str(x)
    if kind == "func":
        return x.name
    return x


def parse_node_def(data: bytes, what: str = "Flex op") -> NodeDef:
    """Decode a serialized NodeDef; ValueError naming `what` if it is not one."""
    from google.protobuf.message import DecodeError

    msg = messages()["NodeDef"]()
    try:
        msg.ParseFromString(bytes(data))
    except DecodeError as e:
        raise ValueError(f"{what}: its custom options are not a serialized TensorFlow NodeDef ({e})") from None
    attrs = {k: _attr_value(v, f"{what} attribute {k}") for k, v in msg.attr.items()}
    return NodeDef(op=msg.op, name=msg.name, attrs=attrs)
