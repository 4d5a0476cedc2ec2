"""DEQUANTIZE: float16 -> float32 (exact cast) and int8 / uint8 / int16 -> float32.

How quantization reaches the kernel
-----------------------------------
`OpDef.parse` only sees the op's options, but DEQUANTIZE's math lives in its *input tensor's*
quantization parameters. So `DequantizeAttrs` carries optional `scales`, `zero_points` and `axis`
fields that the runtime fills before running the op, through `OpDef.bind`:

    attrs = opdef.bind(opdef.parse(op.options), input_tensors, output_tensors)
    # == bind_quantization(attrs, input_tensors[0])

`bind_quantization` takes an `ir.model.Tensor` (or anything with a `.quantization` attribute
holding `scales`, `zero_points`, `quantized_dimension`) and returns a new, hashable attrs object.
infer() works without binding (it only needs shapes and dtypes); reference() raises OpError if an
integer input was never bound.

LiteRT limits mirrored here: int16 needs zero point 0 and per-tensor parameters; per-channel
parameters are accepted for int8 and uint8.

Numerics (QUANTIZATION.md section 3.11): real = float32(double(scale) * (q - zero_point)), per
tensor or per channel along `axis`. LiteRT's optimized x86 kernel differs by at most 1 ulp on some
elements, well inside the float contract. float16 -> float32 is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tflite_jit.ops.base import InferCtx, OpDef, OpError, PatternKind, elementwise_cost, register

F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)
INT_TYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))


@dataclass(frozen=True)
class DequantizeAttrs:
    """`scales`/`zero_points`: one per tensor (length 1) or one per channel along `axis`.
    None until `bind_quantization` fills them from the input tensor."""

    scales: tuple[float, ...] | None = None
    zero_points: tuple[int, ...] | None = None
    axis: int = 0

    @property
    def bound(self) -> bool:
        return self.scales is not None


def _parse(options: dict[str, Any]) -> DequantizeAttrs:
    return DequantizeAttrs()


def bind_quantization(attrs: DequantizeAttrs, input_tensor: Any) -> DequantizeAttrs:
    """Return `attrs` with the quantization of `input_tensor` (an ir.model.Tensor).

    A tensor without quantization (e.g. a float16 input) returns attrs unchanged."""
    q = getattr(input_tensor, "quantization", None)
    if q is None or q.scales is None or np.size(q.scales) == 0:
        return attrs
    scales = tuple(float(s) for s in np.asarray(q.scales, np.float32).reshape(-1))
    zps = np.asarray(q.zero_points if q.zero_points is not None else [0], np.int64).reshape(-1)
    if zps.size == 0:
        zps = np.zeros(1, np.int64)
    return replace(attrs, scales=scales, zero_points=tuple(int(z) for z in zps),
                   axis=int(getattr(q, "quantized_dimension", 0) or 0))


def _check_params(attrs: DequantizeAttrs, shape: tuple[int, ...], dtype: np.dtype, name: str) -> None:
    if not attrs.bound or dtype == F16:
        return
    ns, nz = len(attrs.scales), len(attrs.zero_points)
    if dtype == np.int16:
        if ns > 1:
            raise OpError(f"DEQUANTIZE: int16 input '{name}' is quantized per channel; LiteRT "
                          "supports per-channel DEQUANTIZE for int8 and uint8 only")
        if any(attrs.zero_points):
            raise OpError(f"DEQUANTIZE: int16 input '{name}' has zero point {attrs.zero_points[0]}; "
                          "int16 quantization must be symmetric (zero point 0)")
    if ns > 1:
        if not 0 <= attrs.axis < len(shape):
            raise OpError(f"DEQUANTIZE: quantized_dimension {attrs.axis} of '{name}' is out of range "
                          f"for its rank {len(shape)}")
        if shape[attrs.axis] != ns:
            raise OpError(f"DEQUANTIZE: '{name}' has {ns} per-channel scales but dimension "
                          f"{attrs.axis} has size {shape[attrs.axis]}; they must match")
    if nz not in (1, ns):
        raise OpError(f"DEQUANTIZE: '{name}' has {ns} scales but {nz} zero points")


def _infer(ctx: InferCtx) -> list:
    if not ctx.shapes or ctx.shapes[0] is None:
        raise OpError("DEQUANTIZE: expected 1 input")
    dt = np.dtype(ctx.dtypes[0])
    if dt != F16 and dt not in INT_TYPES:
        raise OpError(f"DEQUANTIZE: input '{ctx.name(0)}' has type {dt.name}; DEQUANTIZE takes "
                      "float16, int8, uint8 or int16")
    _check_params(ctx.attrs, tuple(ctx.shapes[0]), dt, ctx.name(0))
    return [(tuple(ctx.shapes[0]), F32)]


def _reference(inputs, attrs: DequantizeAttrs) -> list:
    x = np.asarray(inputs[0])
    if x.dtype == F16:
        return [x.astype(np.float32)]
    if x.dtype not in INT_TYPES:
        raise OpError(f"DEQUANTIZE: input has type {x.dtype.name}; expected float16, int8, uint8 "
                      "or int16")
    if not attrs.bound:
        raise OpError("DEQUANTIZE: the input's quantization parameters were not bound "
                      "(call ops.quant.bind_quantization(attrs, input_tensor) before running)")
    _check_params(attrs, x.shape, x.dtype, "input")
    scales = np.asarray(attrs.scales, np.float64)
    zps = np.asarray(attrs.zero_points, np.int64)
    if scales.size > 1 or zps.size > 1:
        bshape = [1] * x.ndim
        bshape[attrs.axis] = -1
        scales = scales.reshape(bshape)
        zps = zps.reshape(bshape) if zps.size > 1 else zps.reshape(())
    else:
        scales, zps = scales.reshape(()), zps.reshape(())
    return [(scales * (x.astype(np.int64) - zps)).astype(np.float32)]


def _bind(attrs: DequantizeAttrs, inputs: list, outputs: list) -> DequantizeAttrs:
    return bind_quantization(attrs, inputs[0]) if inputs else attrs


register(OpDef(
    name="DEQUANTIZE", parse=_parse, infer=_infer, reference=_reference, kind=PatternKind.ELEMWISE,
    bind=_bind,
    cost=lambda ins, outs, attrs: elementwise_cost(ins, outs, attrs, flops_per=2.0),
    doc="DEQUANTIZE: float16 -> float32, or int8/uint8/int16 (per tensor / per channel) -> float32"))
