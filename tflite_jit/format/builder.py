"""A small authoring API for .tflite models: tests, benchmarks and the quantizer build models here.

    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 8, 8, 3), np.float32)
    w = g.const("w", weights)
    y = g.tensor("y", (1, 8, 8, 4), np.float32)
    g.op("CONV_2D", [x, w, b], [y], padding="SAME", stride_w=1, stride_h=1)
    g.output(y)
    tflite_bytes = mb.build()

Builds the IR (so the same object can be validated or run directly) and serializes it with
format.writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tflite_jit.format.schema import FIELD_ENUMS, enum_values, options_table_for, table_defaults
from tflite_jit.format.writer import write_model
from tflite_jit.ir.model import (
    BUILTIN_CODES,
    TENSOR_TYPE_CODES,
    Model,
    Op,
    Quantization,
    SignatureDef,
    Sparsity,
    Subgraph,
    Tensor,
    type_code_of,
)

_STRING = TENSOR_TYPE_CODES["STRING"]


class SubgraphBuilder:
    def __init__(self, name: str = ""):
        self.sg = Subgraph(tensors=[], inputs=(), outputs=(), ops=[], name=name)

    def tensor(self, name: str, shape: Sequence[int], dtype: Any = np.float32, *,
               shape_signature: Sequence[int] | None = None, quantization: Quantization | None = None,
               scale: float | Sequence[float] | None = None, zero_point: int | Sequence[int] = 0,
               quantized_dimension: int = 0, is_variable: bool = False,
               data: np.ndarray | None = None, sparsity: Sparsity | None = None) -> int:
        """Add a tensor; returns its id. `scale`/`zero_point` are a shortcut for quantization."""
        if quantization is None and scale is not None:
            scales = np.atleast_1d(np.asarray(scale, np.float32))
            zps = np.atleast_1d(np.asarray(zero_point, np.int64))
            if zps.size == 1 and scales.size > 1:  # one zero point per scale, as LiteRT requires
                zps = np.repeat(zps, scales.size)
            quantization = Quantization(scales=scales, zero_points=zps,
                                        quantized_dimension=quantized_dimension)
        type_code = dtype if isinstance(dtype, int) else type_code_of(dtype)
        if type_code == _STRING and data is not None and data.dtype != np.uint8:
            data = _as_strings(data)  # strings are object arrays of bytes (raw uint8: as written)
        t = Tensor(name=name, type=type_code, shape=tuple(int(d) for d in shape),
                   shape_signature=None if shape_signature is None else tuple(int(d) for d in shape_signature),
                   data=data, quantization=quantization, sparsity=sparsity, is_variable=is_variable)
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def input(self, name: str, shape: Sequence[int], dtype: Any = np.float32, **kw: Any) -> int:
        tid = self.tensor(name, shape, dtype, **kw)
        self.sg.inputs = (*self.sg.inputs, tid)
        return tid

    def const(self, name: str, value: Any, dtype: Any = None, **kw: Any) -> int:
        arr = np.asarray(value, dtype=dtype)
        if not arr.flags.c_contiguous:  # (ascontiguousarray would turn scalars into shape (1,))
            arr = arr.copy(order="C")
        if arr.dtype.kind in "SUO":  # bytes / str / object arrays of them: a STRING constant
            return self.tensor(name, arr.shape, np.bytes_, data=_as_strings(arr), **kw)
        return self.tensor(name, arr.shape, arr.dtype, data=arr, **kw)

    def output(self, *tids: int) -> None:
        self.sg.outputs = (*self.sg.outputs, *tids)

    def op(self, name: str, inputs: Sequence[int], outputs: Sequence[int], *, version: int = 1,
           custom: bool = False, custom_options: bytes | dict | None = None, **options: Any) -> tuple[int, ...]:
        """Add an operator. Options are schema field names; enum fields accept member names."""
        if custom:
            raw = custom_options if isinstance(custom_options, (bytes, type(None))) else None
            op = Op(name=name, inputs=tuple(inputs), outputs=tuple(outputs), builtin_code=32,
                    version=version, custom_code=name, custom_options=raw,
                    options=dict(custom_options) if isinstance(custom_options, dict) else {})
        else:
            if name not in BUILTIN_CODES:
                raise ValueError(f"unknown builtin op {name!r}; pass custom=True for a custom op")
            found = options_table_for(name)
            table = found[1] if found else None
            if options and table is None:
                raise ValueError(f"{name} takes no options, got {sorted(options)}")
            if table is not None:
                known = table_defaults(table)
                bad = sorted(set(options) - set(known))
                if bad:
                    raise ValueError(f"{name} ({table}) has no option(s) {bad}; it has {sorted(known)}")
            op = Op(name=name, inputs=tuple(inputs), outputs=tuple(outputs),
                    options={**({k: v for k, v in table_defaults(table).items() if v is not None}
                                if table else {}),
                             **{k: _option_value(k, v) for k, v in options.items()}},
                    builtin_code=BUILTIN_CODES[name], version=version, options_type=table)
        self.sg.ops.append(op)
        return tuple(outputs)


    def apply(self, name: str, inputs: Sequence[int], *, n_outputs: int | None = None,
              out_name: str | None = None, **options: Any) -> tuple[int, ...]:
        """Add an op whose output tensors are created from the op's own shape rule (ops/)."""
        from tflite_jit import ops

        opdef = ops.get(name)
        if opdef is None:
            raise ValueError(f"no shape rule for {name}: create outputs with tensor() and use op()")
        raw = {k: _option_value(k, v) for k, v in options.items()}
        found = options_table_for(name)
        if found:
            raw = {**{k: v for k, v in table_defaults(found[1]).items() if v is not None}, **raw}
        ts = [None if i < 0 else self.sg.tensors[i] for i in inputs]
        ctx = ops.InferCtx(op_name=name, attrs=opdef.parse(raw),
                           shapes=[None if t is None else t.shape for t in ts],
                           dtypes=[None if t is None else np.dtype(t.dtype) for t in ts],
                           values=[None if t is None else t.data for t in ts],
                           tensor_names=[getattr(t, "name", "") for t in ts])
        results = opdef.infer(ctx)
        if n_outputs is not None:
            results = results[:n_outputs]
        base = out_name or f"{name.lower()}_{len(self.sg.ops)}"
        outs = [self.tensor(base if len(results) == 1 else f"{base}:{j}", shape, dtype)
                for j, (shape, dtype) in enumerate(results)]
        return self.op(name, inputs, outs, **options)


def _as_strings(arr: Any) -> np.ndarray:
    """An object array of `bytes` (str elements UTF-8 encoded), the runtime form of strings."""
    arr = np.asarray(arr)
    out = np.empty(arr.shape, dtype=object)
    flat = out.reshape(-1)
    for i, v in enumerate(arr.reshape(-1).tolist()):
        if isinstance(v, str):
            v = v.encode("utf-8")
        if not isinstance(v, (bytes, bytearray)):
            raise ValueError(f"a string constant's elements must be bytes or str, got {type(v).__name__}")
        flat[i] = bytes(v)
    return out


def _option_value(field: str, v: Any) -> Any:
    if isinstance(v, str) and field in FIELD_ENUMS:
        values = enum_values(FIELD_ENUMS[field])
        if v not in values:
            raise ValueError(f"option {field}={v!r}: expected one of {sorted(values)}")
        return values[v]
    if isinstance(v, type) or isinstance(v, np.dtype):
        return type_code_of(v)
    return v


class ModelBuilder:
    def __init__(self, description: str = "tflite_jit.format.builder"):
        self.subgraphs: list[SubgraphBuilder] = []
        self.signatures: list[SignatureDef] = []
        self.metadata: dict[str, bytes] = {}
        self.description = description

    def subgraph(self, name: str = "") -> SubgraphBuilder:
        g = SubgraphBuilder(name)
        self.subgraphs.append(g)
        return g

    def signature(self, key: str, inputs: dict[str, int], outputs: dict[str, int],
                  subgraph_index: int = 0) -> None:
        self.signatures.append(SignatureDef(key=key, subgraph_index=subgraph_index,
                                            inputs=dict(inputs), outputs=dict(outputs)))

    def add_metadata(self, name: str, data: bytes) -> None:
        self.metadata[name] = bytes(data)

    def model(self) -> Model:
        return Model(subgraphs=[g.sg for g in self.subgraphs], description=self.description,
                     signatures=list(self.signatures), metadata=dict(self.metadata))

    def build(self, *, external_buffers: bool = False) -> bytes:
        return write_model(self.model(), external_buffers=external_buffers)
