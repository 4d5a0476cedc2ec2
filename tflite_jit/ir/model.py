"""The in-memory model: plain dataclasses that every later stage reads.

The IR mirrors the .tflite schema closely (tensor ids stay the file's ids) so that detail dicts,
op indices and error messages can name exactly what the user sees in Netron or in LiteRT.
Constant data stays a read-only numpy view into the mapped file: nothing is copied at load time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflite_jit.format import schema_data as _schema

#: TensorType code -> name, from the schema.
TENSOR_TYPE_NAMES: dict[int, str] = {v: k for k, v in _schema.ENUMS["TensorType"]}
TENSOR_TYPE_CODES: dict[str, int] = {k: v for k, v in _schema.ENUMS["TensorType"]}
BUILTIN_NAMES: dict[int, str] = {v: k for k, v in _schema.ENUMS["BuiltinOperator"]}
BUILTIN_CODES: dict[str, int] = {k: v for k, v in _schema.ENUMS["BuiltinOperator"]}

# TensorType -> numpy dtype. Types numpy cannot hold natively map to None (the reader keeps their
# bytes as uint8 and ops reject them by name).
_NP_TYPES: dict[str, Any] = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "UINT8": np.uint8,
    "INT64": np.int64, "STRING": np.bytes_, "BOOL": np.bool_, "INT16": np.int16,
    "COMPLEX64": np.complex64, "INT8": np.int8, "FLOAT64": np.float64,
    "COMPLEX128": np.complex128, "UINT64": np.uint64, "RESOURCE": np.int32,
    "VARIANT": np.int32, "UINT32": np.uint32, "UINT16": np.uint16,
}
# What LiteRT's detail dicts report for types numpy lacks (it uses the nearest container type).
_DETAIL_TYPES = {"INT4": np.int8, "UINT4": np.uint8, "INT2": np.int8, "BFLOAT16": np.uint16,
                 "FLOAT8_E4M3FN": np.uint8, "FLOAT8_E5M2": np.uint8}

_CODE_OF_NP = {np.dtype(v): TENSOR_TYPE_CODES[k] for k, v in _NP_TYPES.items()
               if k not in ("RESOURCE", "VARIANT", "STRING")}


def numpy_type(type_code: int) -> Any:
    """The numpy scalar type class LiteRT reports for a TensorType code (np.float32, ...)."""
    name = TENSOR_TYPE_NAMES.get(type_code)
    if name is None:
        raise ValueError(f"Unknown tensor type code {type_code}")
    return _NP_TYPES.get(name) or _DETAIL_TYPES[name]


def type_code_of(dtype: Any) -> int:
    """The TensorType code for a numpy dtype (inverse of numpy_type for the common types)."""
    if np.dtype(dtype).kind == "S":
        return TENSOR_TYPE_CODES["STRING"]
    try:
        return _CODE_OF_NP[np.dtype(dtype)]
    except KeyError:
        raise ValueError(f"No TFLite tensor type for numpy dtype {np.dtype(dtype)}") from None


@dataclass
class Quantization:
    """Affine quantization: real = scale * (q - zero_point), per tensor or along one axis."""

    scales: np.ndarray  # float32, shape (n,)
    zero_points: np.ndarray  # int64, shape (n,)
    quantized_dimension: int = 0
    min: np.ndarray | None = None
    max: np.ndarray | None = None
    details: dict | None = None  # custom / blockwise quantization details, as read

    @property
    def per_tensor(self) -> bool:
        return self.scales.size == 1

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantization):
            return NotImplemented
        return (_arr_eq(self.scales, other.scales) and _arr_eq(self.zero_points, other.zero_points)
                and self.quantized_dimension == other.quantized_dimension
                and _arr_eq(self.min, other.min) and _arr_eq(self.max, other.max)
                and self.details == other.details)


@dataclass
class Sparsity:
    """TACO-style sparse format of a constant tensor (DENSIFY / sparse FULLY_CONNECTED input)."""

    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...] | None  # None: the file has no block_map (not even an empty one)
    # One dict per traversal dimension: format ('DENSE'|'SPARSE_CSR'), dense_size,
    # array_segments / array_indices (numpy int arrays or None).
    dim_metadata: list[dict]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sparsity):
            return NotImplemented
        if (self.traversal_order, self.block_map) != (other.traversal_order, other.block_map):
            return False
        if len(self.dim_metadata) != len(other.dim_metadata):
            return False
        for a, b in zip(self.dim_metadata, other.dim_metadata):
            if a.keys() != b.keys() or any(not _arr_eq(a[k], b[k]) for k in a):
                return False
        return True


@dataclass
class Tensor:
    name: str
    type: int  # TensorType code
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None = None  # None: same as shape
    buffer: int = 0  # index into Model.buffers; 0 is the empty sentinel
    data: np.ndarray | None = None  # constant contents (read-only view), reshaped to `shape`
    quantization: Quantization | None = None
    sparsity: Sparsity | None = None
    is_variable: bool = False
    has_rank: bool = True

    @property
    def dtype(self) -> Any:
        return numpy_type(self.type)

    @property
    def type_name(self) -> str:
        return TENSOR_TYPE_NAMES[self.type]

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def signature(self) -> tuple[int, ...]:
        return self.shape if self.shape_signature is None else self.shape_signature

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tensor):
            return NotImplemented
        return (self.name == other.name and self.type == other.type and self.shape == other.shape
                and self.signature == other.signature
                and _arr_eq(self.data, other.data) and self.quantization == other.quantization
                and self.sparsity == other.sparsity and self.is_variable == other.is_variable)


@dataclass
class Op:
    """One operator node. `name` is the builtin name ('CONV_2D') or the custom code."""

    name: str
    inputs: tuple[int, ...]  # tensor ids; -1 = omitted optional input
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)  # builtin options (schema field names)
    builtin_code: int = 0  # BuiltinOperator value (32 = CUSTOM)
    version: int = 1
    custom_code: str | None = None
    custom_options: bytes | None = None  # raw bytes as stored
    options_type: str | None = None  # schema table name, e.g. 'Conv2DOptions'
    intermediates: tuple[int, ...] = ()

    @property
    def is_custom(self) -> bool:
        return self.custom_code is not None


@dataclass
class Subgraph:
    tensors: list[Tensor]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    ops: list[Op]
    name: str = ""
    #: set only on a subgraph rewritten for execution (runtime.stacking): per op, the indices of
    #: the file's ops it computes (none for a helper op), and the file's subgraph itself
    origin: tuple[tuple[int, ...], ...] | None = field(default=None, repr=False, compare=False)
    source: Subgraph | None = field(default=None, repr=False, compare=False)


@dataclass
class SignatureDef:
    key: str
    subgraph_index: int
    inputs: dict[str, int]  # signature name -> tensor id in that subgraph, in file order
    outputs: dict[str, int]


@dataclass
class Model:
    subgraphs: list[Subgraph]
    version: int = 3
    description: str = ""
    signatures: list[SignatureDef] = field(default_factory=list)
    metadata: dict[str, bytes] = field(default_factory=dict)  # name -> buffer contents
    # The object that keeps the mapped file alive while constant views exist.
    source: Any = field(default=None, repr=False, compare=False)


def _arr_eq(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
        return a == b
    if a.dtype == object or b.dtype == object:  # string tensors: compare the strings, not pointers
        return a.dtype == b.dtype and a.shape == b.shape and a.tolist() == b.tolist()
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
