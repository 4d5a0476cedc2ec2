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

from tflite_jit.ops import qmath
from tflite_jit.ops.base import InferCtx, OpError, PatternKind
from tflite_jit.ops.common import F16, F32, I8, I16, U8, define, elementwise_cost

INT_TYPES = (I8, U8, I16)


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


define("DEQUANTIZE", parse=_parse, infer=_infer, reference=_reference, kind=PatternKind.ELEMWISE,
       cost=lambda ins, outs, attrs: elementwise_cost(ins, outs, attrs, flops_per=2.0), bind=_bind)


# ---- QUANTIZE ------------------------------------------------------------------------------------
# float32 -> int8 / uint8 / int16 (per tensor, or per channel along the output's quantized
# dimension), and requantization between integer types. LiteRT's optimized builtin kernel (the
# oracle, QUANTIZATION.md §3.11) rounds differently by element position, so we do too:
#   float per tensor: 8-element blocks q = rint_half_even(f32(x * f32(1/s))); the tail (size mod 8)
#     q = round_half_away(double(x) / double(s)).        [probed: 0 mismatches, ties included]
#   float per channel: the reference kernel, q = round_half_away(f32(x / s)).
#   8-bit -> 8-bit requantize: RHU2 on 16-element blocks, MBQM on the tail; every other integer
#     pair (int16 / int32 sources, int8 -> int16): MBQM.                     [probed]
# The multiplier is QuantizeMultiplier(double(s_in) / double(s_out)).

_FLOAT_OUT = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))
_REQUANT_OUT = {np.dtype(np.int8): (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16)),
                np.dtype(np.uint8): (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16)),
                np.dtype(np.int16): (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32)),
                np.dtype(np.int32): (np.dtype(np.int8), np.dtype(np.int16))}


@dataclass(frozen=True)
class QuantizeAttrs:
    """Input and output quantization, filled by `bind` (None until then)."""

    in_scale: float | None = None
    in_zero_point: int = 0
    out_scales: tuple[float, ...] | None = None
    out_zero_points: tuple[int, ...] = (0,)
    axis: int = 0
    out_dtype: str | None = None  # the output tensor's type: QUANTIZE's options do not say it


def quant_params(tensor: Any) -> tuple[tuple[float, ...], tuple[int, ...], int] | None:
    """(scales, zero points, quantized_dimension) of an IR tensor, or None if it has none."""
    q = getattr(tensor, "quantization", None)
    if q is None or q.scales is None or np.size(q.scales) == 0:
        return None
    # tolist(): Python floats / ints, without a generator per channel (warm starts bind every op)
    scales = tuple(np.asarray(q.scales, np.float32).reshape(-1).astype(np.float64).tolist())
    zps = np.asarray(q.zero_points if q.zero_points is not None else [0], np.int64).reshape(-1)
    return scales, tuple(zps.tolist() if zps.size else [0]), int(q.quantized_dimension or 0)


def scale_zero_point(t: Any) -> tuple[float, int]:
    """(scale, zero point) of a tensor as LiteRT's per-tensor params see them ((0, 0) when it has
    none or is omitted)."""
    q = quant_params(t) if t is not None else None
    if q is None:
        return 0.0, 0
    return float(np.float32(q[0][0])), int(q[1][0])


def quantized_input_dtype(ins: list, types: tuple[np.dtype, ...]) -> np.dtype | None:
    """Input 0's dtype when it is one of `types`, else None: how a quantized kernel's bind tells
    the nodes it claims from the float ones."""
    t = ins[0] if ins else None
    if t is None or np.dtype(t.dtype) not in types:
        return None
    return np.dtype(t.dtype)


def check_same_type(op: str, tensors: list, dt: np.dtype) -> None:
    """Every (present) tensor of a quantized node has the node's type `dt`."""
    for t in tensors:
        if t is not None and np.dtype(t.dtype) != dt:
            raise OpError(f"{op}: tensor '{t.name}' is {np.dtype(t.dtype).name} but the op runs on "
                          f"{dt.name}; quantized inputs and output must share one type")


def per_tensor_params(t: Any, op: str, what: str) -> tuple[float, int]:
    """(scale, zero point) of a per-tensor quantized IR tensor, or a clear OpError naming the op
    and the tensor: quantized elementwise and reduction kernels all need exactly this."""
    q = quant_params(t)
    if q is None:
        raise OpError(f"{op}: {what} '{t.name}' has no quantization parameters; quantized {op} "
                      "needs a scale and zero point on every input and the output")
    if len(q[0]) != 1:
        raise OpError(f"{op}: {what} '{t.name}' is quantized per channel; {op} takes per-tensor "
                      "quantization")
    if not (q[0][0] > 0 and np.isfinite(q[0][0])):
        raise OpError(f"{op}: {what} '{t.name}' has scale {q[0][0]}; scales must be positive")
    return q[0][0], q[1][0]


def _bind_quantize(attrs: QuantizeAttrs, inputs: list, outputs: list) -> QuantizeAttrs:
    qi = quant_params(inputs[0]) if inputs else None
    qo = quant_params(outputs[0]) if outputs else None
    if qi is not None:
        attrs = replace(attrs, in_scale=qi[0][0], in_zero_point=qi[1][0])
    if qo is not None:
        attrs = replace(attrs, out_scales=qo[0], out_zero_points=qo[1], axis=qo[2])
    if outputs and outputs[0] is not None:
        attrs = replace(attrs, out_dtype=np.dtype(outputs[0].dtype).name)
    return attrs


def _check_quantize(a: QuantizeAttrs, shape: tuple[int, ...], src: np.dtype, dst: np.dtype,
                    names: tuple[str, str]) -> None:
    op = "QUANTIZE"
    if src == F32:
        if dst not in _FLOAT_OUT:
            raise OpError(f"{op}: output '{names[1]}' has type {dst.name}; float32 quantizes to int8, "
                          "uint8 or int16")
    elif src in _REQUANT_OUT:
        if dst not in _REQUANT_OUT[src]:
            allowed = ", ".join(d.name for d in _REQUANT_OUT[src])
            raise OpError(f"{op}: requantizing {src.name} input '{names[0]}' to {dst.name} is not "
                          f"supported; LiteRT requantizes {src.name} to {allowed}")
    else:
        raise OpError(f"{op}: input '{names[0]}' has type {src.name}; QUANTIZE takes float32, int8, "
                      "uint8, int16 or int32")
    if a.out_scales is None:
        return  # not bound yet (shape inference only)
    scales = np.asarray(a.out_scales, np.float64)
    if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise OpError(f"{op}: output '{names[1]}' has scale {a.out_scales}; scales must be positive")
    ns, nz = len(a.out_scales), len(a.out_zero_points)
    if ns > 1:
        if src != F32:
            raise OpError(f"{op}: output '{names[1]}' is quantized per channel; LiteRT requantizes "
                          "per tensor only (per-channel QUANTIZE needs a float32 input)")
        if not 0 <= a.axis < len(shape) or shape[a.axis] != ns:
            raise OpError(f"{op}: output '{names[1]}' has {ns} per-channel scales on dimension "
                          f"{a.axis}, which does not match its shape {list(shape)}")
    if nz not in (1, ns):
        raise OpError(f"{op}: output '{names[1]}' has {ns} scales but {nz} zero points")
    lo, hi = qmath.qrange(dst)
    if any(not lo <= z <= hi for z in a.out_zero_points):
        raise OpError(f"{op}: output '{names[1]}' zero point {a.out_zero_points} is outside "
                      f"{dst.name}'s range")
    if src != F32:
        if a.in_scale is None or not np.isfinite(a.in_scale) or a.in_scale <= 0:
            raise OpError(f"{op}: integer input '{names[0]}' needs a positive quantization scale to "
                          "be requantized")
        if src == dst == np.dtype(np.int16) and (a.in_zero_point or a.out_zero_points[0]):
            raise OpError(f"{op}: int16 -> int16 requantization needs zero points 0 (input "
                          f"'{names[0]}' has {a.in_zero_point}, output '{names[1]}' "
                          f"{a.out_zero_points[0]})")


def _infer_quantize(ctx: InferCtx) -> list:
    if len(ctx.shapes) != 1 or ctx.shapes[0] is None:
        raise OpError("QUANTIZE: expected 1 input")
    a: QuantizeAttrs = ctx.attrs
    if a.out_dtype is None:
        raise OpError("QUANTIZE: the output tensor's type and quantization were not bound "
                      "(QUANTIZE's output type is its output tensor's)")
    if a.out_scales is None:
        raise OpError("QUANTIZE: the output tensor has no quantization parameters; QUANTIZE needs "
                      "an affine-quantized output (scale and zero point)")
    src, dst = np.dtype(ctx.dtypes[0]), np.dtype(a.out_dtype)
    _check_quantize(a, tuple(ctx.shapes[0]), src, dst, (ctx.name(0), "output"))
    return [(tuple(ctx.shapes[0]), dst)]


def _requantize(q: np.ndarray, a: QuantizeAttrs, dst: np.dtype) -> np.ndarray:
    m, shift = qmath.quantize_multiplier(float(np.float64(np.float32(a.in_scale))
                                               / np.float64(np.float32(a.out_scales[0]))))
    flat = q.reshape(-1).astype(np.int64) - a.in_zero_point
    if q.dtype.itemsize == 1 and dst.itemsize == 1:
        n = flat.size // 16 * 16  # vector blocks round half up, the scalar tail half away
        r = np.concatenate([qmath.rhu2(flat[:n], m, shift), qmath.mbqm(flat[n:], m, shift)])
    else:
        r = qmath.mbqm(flat, m, shift)
    lo, hi = qmath.qrange(dst)
    return np.clip(r + a.out_zero_points[0], lo, hi).astype(dst).reshape(q.shape)


def _quantize_float(x: np.ndarray, a: QuantizeAttrs, dst: np.dtype) -> np.ndarray:
    lo, hi = qmath.qrange(dst)
    if len(a.out_scales) > 1:
        shape = [1] * x.ndim
        shape[a.axis] = -1
        s = np.asarray(a.out_scales, np.float32).reshape(shape)
        zp = np.asarray(a.out_zero_points, np.int64)
        zp = zp.reshape(shape) if zp.size > 1 else zp.reshape(())
        with np.errstate(over="ignore", invalid="ignore"):
            r = qmath.round_half_away((x / s).astype(np.float32))
    else:
        s = np.float32(a.out_scales[0])
        zp = np.int64(a.out_zero_points[0])
        flat = x.reshape(-1)
        n = flat.size // 8 * 8
        with np.errstate(over="ignore", invalid="ignore"):
            head = np.rint(flat[:n] * np.float32(np.float32(1.0) / s))
            tail = qmath.round_half_away(flat[n:].astype(np.float64) / np.float64(s))
        r = np.concatenate([head.astype(np.float64), tail]).reshape(x.shape)
    # LiteRT converts to int32 the x86 way: NaN, +-inf and |values| >= 2**31 become INT32_MIN;
    # the zero point is added with int32 wrap-around, then the type's clamp (probed: 1e30 with
    # zero point -3 gives int8 127, with 0 gives -128).
    r = np.asarray(r, np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(r) & (r >= -2.0**31) & (r < 2.0**31)
    r = np.where(ok, np.where(ok, r, 0.0), float(qmath.INT32_MIN)).astype(np.int64)
    return np.clip(qmath.wrap32(r + zp), lo, hi).astype(dst)


def _reference_quantize(inputs, attrs: QuantizeAttrs) -> list:
    x = np.asarray(inputs[0])
    if attrs.out_dtype is None or attrs.out_scales is None:
        raise OpError("QUANTIZE: the output's type and quantization were not bound")
    dst = np.dtype(attrs.out_dtype)
    _check_quantize(attrs, x.shape, x.dtype, dst, ("input", "output"))
    if x.dtype == F32:
        return [_quantize_float(x, attrs, dst)]
    return [_requantize(x, attrs, dst)]


define("QUANTIZE", parse=lambda options: QuantizeAttrs(), infer=_infer_quantize,
       reference=_reference_quantize, kind=PatternKind.ELEMWISE,
       cost=lambda ins, outs, attrs: elementwise_cost(ins, outs, attrs, flops_per=3.0), bind=_bind_quantize)
