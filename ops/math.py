"""Elementwise math and logic, CAST, ADD_N, and the row-wise normalisations.

Elementwise ops write their per-element math once as an `ops.expr` tree (their NumPy reference
is `evaluate_numpy` of it, and the Numba backend prints the same tree). CAST (its result type is
not its operand type), LOG_SOFTMAX, L2_NORMALIZATION and LOCAL_RESPONSE_NORMALIZATION have a
NumPy reference only.

LiteRT facts these definitions follow (probed on ai_edge_litert 2.3.0, builtin kernels):
* Types (non-quantized): ABS float32/int32; SIGN float32/int32 (int64 fails at invoke);
  CEIL/FLOOR/ROUND/EXP/LOG/SIN/COS/SQUARE/ELU/LOG_SOFTMAX/L2_NORMALIZATION/LRN float32;
  POW float32/int32; FLOOR_DIV float32/int32/int16/int8 (not int64); FLOOR_MOD float32/int32/
  int64/int16/int8; MAXIMUM/MINIMUM float32/int32/int64/int16/int8/uint8; ZEROS_LIKE float32/
  int32/int64; ADD_N float32/int32; LOGICAL_* bool. (int8/int16 forms of ABS/EXP/ELU are
  LiteRT's quantized kernels, handled elsewhere.) ONES_LIKE is not a TFLite builtin.
* ROUND rounds half to even. SIGN(NaN) is NaN.
* MAXIMUM is ``a > b ? a : b`` and MINIMUM ``a < b ? a : b``: a NaN in the first operand gives
  the second, a NaN in the second gives NaN.
* FLOOR_DIV fails at invoke on a zero divisor for float32 too; FLOOR_MOD fails on an integer
  zero divisor and gives NaN for a float one.
* Integer POW fails at invoke on a negative exponent. Results out of the type's range are the
  type's minimum (LiteRT computes in double and converts) -- except when the exponent has one
  element and the input shapes differ (LiteRT's scalar-exponent broadcast path): then the power
  wraps around (int32 12**10 == 1787822080).
* CAST: float -> integer truncates and saturates (NaN -> the maximum for int32); integer ->
  integer wraps; anything -> bool is ``x != 0``. The output tensor's type decides (the options'
  in/out types may be absent), for every pair of float32/int32/int64/int16/int8/uint8/bool.
* ELU is ``x > 0 ? x : expm1(x)``.
* ADD_N needs >= 2 inputs of one shape (no broadcasting).
* LOG_SOFTMAX works on the last axis at rank >= 1. On a scalar LiteRT returns garbage (random
  tiny numbers) and on an empty last axis it segfaults; we reject both.
* L2_NORMALIZATION: ``x / max(sqrt(sum(x^2)), 1e-6)`` over the last axis, rank >= 1; a fused
  activation other than NONE is rejected at prepare.
* LOCAL_RESPONSE_NORMALIZATION: 4-D input, ``x / (bias + alpha * sum(x^2 over channels
  c-radius..c+radius)) ** beta`` (alpha is not divided by the window size). A negative radius
  crashes LiteRT (heap corruption); we reject it.
* ATAN2 (float32) is ``atan2(y, x)``. LiteRT checks only that the ranks match, then reads x at
  every index of y and returns y's shape (out of bounds when x is smaller): we require equal shapes.
* BITWISE_XOR and RIGHT_SHIFT take int8/16/32 and uint8/16/32 (not int64) of one type and
  broadcast NumPy-style (rank 6 works). RIGHT_SHIFT clamps the count to [0, bits - 1] (a negative
  count shifts by 0, a count >= bits by bits - 1) and shifts signed values arithmetically.
* FAKE_QUANT (float32) follows TensorFlow's fake-quant functor in float32: scale = (max - min) /
  (2^num_bits - 1), zero point = round(-min / scale) clamped to [0, 2^num_bits - 1] (ties away
  from zero), nudged range = ((0 - zp) * scale, (qmax - zp) * scale); each x is clamped to the
  nudged range (NaN becomes the nudged minimum), then ``roundf((x - nmin) * (1 / scale)) * scale
  + nmin``. narrow_range fails at prepare. LiteRT does not check the input type (it reads any
  buffer as float), num_bits (0 gives NaN, > 16 an undefined uint16 cast) or min < max (NaN when
  equal): we reject a non-float32 input, num_bits outside [1, 16] and a range that is not finite
  with min < max.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np

from tflite_jit.ops import expr as E
from tflite_jit.ops.base import Cost, InferCtx, OpError, PatternKind, ShapeDtype
from tflite_jit.ops.common import (
    BOOL,
    F32,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    define,
    elementwise_cost,
    type_names,
)
from tflite_jit.ops.elementwise import binary_infer, check_input, unary_infer

X0, X1 = E.Var(0), E.Var(1)


# ---- elementwise ops with an expression ----------------------------------------------------------

_UNARY: dict[str, tuple[tuple[np.dtype, ...], Callable[[Any], E.Expr], float]] = {
    "ABS": ((F32, I32), lambda a: E.call("abs", X0), 1),
    "CEIL": ((F32,), lambda a: E.call("ceil", X0), 1),
    "FLOOR": ((F32,), lambda a: E.call("floor", X0), 1),
    "ROUND": ((F32,), lambda a: E.call("round", X0), 1),
    "SIGN": ((F32, I32), lambda a: E.call("sign", X0), 1),
    "EXP": ((F32,), lambda a: E.call("exp", X0), 10),
    "LOG": ((F32,), lambda a: E.call("log", X0), 10),
    "SIN": ((F32,), lambda a: E.call("sin", X0), 10),
    "COS": ((F32,), lambda a: E.call("cos", X0), 10),
    "SQUARE": ((F32,), lambda a: E.call("square", X0), 1),
    "ELU": ((F32,), lambda a: E.where(E.call("gt", X0, 0), X0, E.sub(E.call("exp", X0), 1)), 12),
    "LOGICAL_NOT": ((BOOL,), lambda a: E.call("not", X0), 1),
    "ZEROS_LIKE": ((F32, I32, I64), lambda a: E.Const(0), 0),
}

_BINARY: dict[str, tuple[tuple[np.dtype, ...], Callable[[Any], E.Expr], float]] = {
    "FLOOR_DIV": ((F32, I32, I16, I8), lambda a: E.call("floordiv", X0, X1), 2),
    "FLOOR_MOD": ((F32, I32, I64, I16, I8), lambda a: E.call("floormod", X0, X1), 3),
    "MAXIMUM": ((F32, I32, I64, I16, I8, U8), lambda a: E.where(E.call("gt", X0, X1), X0, X1), 1),
    "MINIMUM": ((F32, I32, I64, I16, I8, U8), lambda a: E.where(E.call("lt", X0, X1), X0, X1), 1),
    "LOGICAL_AND": ((BOOL,), lambda a: E.call("and", X0, X1), 1),
    "LOGICAL_OR": ((BOOL,), lambda a: E.call("or", X0, X1), 1),
}


def _check_data(name: str, arrays: list[np.ndarray]) -> None:
    """Data-dependent failures LiteRT reports at invoke."""
    if name == "FLOOR_DIV" or (name == "FLOOR_MOD" and arrays[0].dtype.kind in "iu"):
        zero = np.flatnonzero(arrays[1] == 0)
        if zero.size and arrays[0].size:
            raise OpError(f"{name}: division by zero (divisor element {int(zero[0])} is 0)")
    if name == "POW" and arrays[0].dtype.kind in "iu":
        neg = np.flatnonzero(arrays[1] < 0)
        if neg.size:
            raise OpError(f"POW: integer power with a negative exponent (exponent element "
                          f"{int(neg[0])} is {int(arrays[1].flat[neg[0]])}); cast to float32 first")


def _reference(name: str, expr_fn: Callable[[Any], E.Expr]):
    def reference(inputs: Sequence[np.ndarray | None], attrs: Any) -> list[np.ndarray]:
        arrays = [np.asarray(a) for a in inputs]
        _check_data(name, arrays)
        return [E.evaluate_numpy(expr_fn(attrs), arrays, dtype=arrays[0].dtype)]
    return reference


def _cost(flops: float):
    return lambda ins, outs, attrs: elementwise_cost(ins, outs, attrs, flops_per=flops)


for _n, (_dts, _fn, _fl) in _UNARY.items():
    define(_n, infer=unary_infer(_dts), reference=_reference(_n, _fn), kind=PatternKind.ELEMWISE,
           cost=_cost(_fl), expr=_fn)
for _n, (_dts, _fn, _fl) in _BINARY.items():
    define(_n, infer=binary_infer(_dts), reference=_reference(_n, _fn), kind=PatternKind.BROADCAST,
           cost=_cost(_fl), expr=_fn)


# ---- POW -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PowAttrs:
    # LiteRT's integer power wraps on its broadcast-a-one-element-exponent path (see the module
    # docstring); bound from the model's tensor shapes, recomputed from the arrays in reference()
    wrap: bool = False


def _pow_wraps(base_shape: Sequence[int], exp_shape: Sequence[int]) -> bool:
    return int(np.prod(exp_shape, dtype=np.int64)) == 1 and tuple(base_shape) != tuple(exp_shape)


def _pow_bind(attrs: PowAttrs, inputs: list, outputs: list) -> PowAttrs:
    if len(inputs) == 2 and all(t is not None for t in inputs):
        return PowAttrs(_pow_wraps(inputs[0].shape, inputs[1].shape))
    return attrs


def _pow_expr(attrs: PowAttrs) -> E.Expr:
    return E.call("power_wrap" if attrs.wrap else "power", X0, X1)


def _pow_reference(inputs: Sequence[np.ndarray | None], attrs: PowAttrs) -> list[np.ndarray]:
    a, b = (np.asarray(x) for x in inputs)
    _check_data("POW", [a, b])
    return [E.evaluate_numpy(_pow_expr(PowAttrs(_pow_wraps(a.shape, b.shape))), [a, b], dtype=a.dtype)]


define("POW", parse=lambda o: PowAttrs(), infer=binary_infer((F32, I32)), reference=_pow_reference,
       kind=PatternKind.BROADCAST, cost=_cost(10), expr=_pow_expr, bind=_pow_bind)


# ---- ADD_N ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AddNAttrs:
    n: int | None = None  # number of inputs, bound from the op's tensors


def _addn_bind(attrs: AddNAttrs, inputs: list, outputs: list) -> AddNAttrs:
    return AddNAttrs(len(inputs))


def _addn_infer(ctx: InferCtx) -> list[ShapeDtype]:
    if len(ctx.shapes) < 2:
        raise OpError(f"ADD_N: needs at least 2 inputs, got {len(ctx.shapes)}")
    for i in range(len(ctx.shapes)):
        check_input(ctx, i, (F32, I32))
    d0, s0 = np.dtype(ctx.dtypes[0]), tuple(ctx.shapes[0])
    for i in range(1, len(ctx.shapes)):
        if np.dtype(ctx.dtypes[i]) != d0:
            raise OpError(f"ADD_N: input '{ctx.name(i)}' has type {np.dtype(ctx.dtypes[i]).name} but "
                          f"'{ctx.name(0)}' has {d0.name}; all inputs must share one type")
        if tuple(ctx.shapes[i]) != s0:
            raise OpError(f"ADD_N: input '{ctx.name(i)}' has shape {list(ctx.shapes[i])} but "
                          f"'{ctx.name(0)}' has {list(s0)}; ADD_N does not broadcast, all shapes "
                          "must be equal")
    return [(s0, d0)]


def _addn_expr(attrs: AddNAttrs) -> E.Expr:
    if attrs.n is None:
        raise ValueError("ADD_N: the number of inputs is not bound")
    return reduce(E.add, (E.Var(i) for i in range(1, attrs.n)), X0)


def _addn_reference(inputs: Sequence[np.ndarray | None], attrs: AddNAttrs) -> list[np.ndarray]:
    arrays = [np.asarray(a) for a in inputs]
    return [E.evaluate_numpy(_addn_expr(AddNAttrs(len(arrays))), arrays, dtype=arrays[0].dtype)]


define("ADD_N", parse=lambda o: AddNAttrs(), infer=_addn_infer, reference=_addn_reference,
       kind=PatternKind.ELEMWISE, expr=_addn_expr, bind=_addn_bind,
       cost=lambda ins, outs, a: elementwise_cost(ins, outs, a, flops_per=max(1, len(ins) - 1)))


# ---- CAST ----------------------------------------------------------------------------------------

_CASTABLE = (F32, I32, I64, I16, I8, U8, BOOL)


@dataclass(frozen=True)
class CastAttrs:
    out: np.dtype | None = None  # the result type; the output tensor's type once bound


def _parse_cast(options: dict[str, Any]) -> CastAttrs:
    from tflite_jit.ir.model import numpy_type

    code = options.get("out_data_type")
    if code is None:
        return CastAttrs()
    try:
        dt = numpy_type(int(code))
        return CastAttrs(None if dt is None else np.dtype(dt))
    except (KeyError, ValueError, TypeError):
        return CastAttrs()


def _cast_bind(attrs: CastAttrs, inputs: list, outputs: list) -> CastAttrs:
    # LiteRT's CAST converts to the output tensor's type, whatever the options say
    if outputs and outputs[0] is not None and outputs[0].dtype is not None:
        return CastAttrs(np.dtype(outputs[0].dtype))
    return attrs


def _cast_infer(ctx: InferCtx) -> list[ShapeDtype]:
    if len(ctx.shapes) != 1:
        raise OpError(f"CAST: expected 1 input, got {len(ctx.shapes)}")
    check_input(ctx, 0, _CASTABLE)
    out = ctx.attrs.out if ctx.attrs.out is not None else F32  # schema default: FLOAT32
    if np.dtype(out) not in _CASTABLE:
        raise OpError(f"CAST: output type {np.dtype(out).name} is not supported; CAST converts "
                      f"between {type_names(_CASTABLE)}")
    return [(tuple(ctx.shapes[0]), np.dtype(out))]


def _cast_reference(inputs: Sequence[np.ndarray | None], attrs: CastAttrs) -> list[np.ndarray]:
    x = np.asarray(inputs[0])
    out = np.dtype(attrs.out) if attrs.out is not None else F32
    if out == BOOL:
        return [np.asarray(x != 0)]
    if x.dtype.kind == "f" and out.kind in "iu":
        # truncate toward zero and saturate; NaN -> the type's maximum (LiteRT on x86)
        info = np.iinfo(out)
        t = np.trunc(x.astype(np.float64))
        over = (t >= float(info.max)) | np.isnan(t)
        under = t <= float(info.min)
        mid = np.where(over | under, 0, t).astype(out)
        return [np.where(over, out.type(info.max), np.where(under, out.type(info.min), mid)).astype(out)]
    return [x.astype(out)]  # integer -> integer wraps; -> float rounds to nearest


define("CAST", parse=_parse_cast, infer=_cast_infer, reference=_cast_reference, kind=PatternKind.ELEMWISE,
       cost=lambda ins, outs, a: elementwise_cost(ins, outs, a, flops_per=1), bind=_cast_bind)


# ---- row-wise normalisations (OPAQUE) -------------------------------------------------------------

def _row_cost(flops: float):
    def cost(ins: list, outs: list, attrs: Any) -> Cost:
        n = sum(int(np.prod(s)) for s in outs)
        return Cost(flops=flops * n, bytes=8.0 * n)
    return cost


def _float_infer(min_rank: int, exact_rank: int | None = None):
    def infer(ctx: InferCtx) -> list[ShapeDtype]:
        if len(ctx.shapes) != 1:
            raise OpError(f"{ctx.op_name}: expected 1 input, got {len(ctx.shapes)}")
        check_input(ctx, 0, (F32,))
        shape = tuple(ctx.shapes[0])
        if exact_rank is not None and len(shape) != exact_rank:
            raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' has shape {list(shape)}; it must be "
                          f"{exact_rank}-D (NHWC)")
        if len(shape) < min_rank:
            raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' is a scalar; it needs at least "
                          f"{min_rank} dimension(s) (reshape it to [1])")
        if ctx.op_name == "LOG_SOFTMAX" and shape[-1] == 0:
            # LiteRT segfaults on an empty last axis; reject it
            raise OpError(f"LOG_SOFTMAX: input '{ctx.name(0)}' has shape {list(shape)}; the last "
                          "axis (the softmax axis) must not be empty")
        _check_attrs(ctx.op_name, ctx.attrs)
        return [(shape, F32)]
    return infer


def _log_softmax_reference(inputs: Sequence[np.ndarray | None], a: Any) -> list[np.ndarray]:
    x = np.asarray(inputs[0], np.float64)
    if x.size == 0:
        return [x.astype(F32)]
    with np.errstate(all="ignore"):
        s = x - np.max(x, axis=-1, keepdims=True)
        out = s - np.log(np.sum(np.exp(s), axis=-1, keepdims=True))
    return [out.astype(F32).reshape(np.shape(inputs[0]))]


@dataclass(frozen=True)
class L2Attrs:
    activation: int = 0


def _check_attrs(op: str, attrs: Any) -> None:
    if isinstance(attrs, L2Attrs) and attrs.activation != 0:
        raise OpError(f"L2_NORMALIZATION: fused activation {attrs.activation} is not supported "
                      "(LiteRT accepts only NONE); apply the activation as a separate op")
    if isinstance(attrs, LrnAttrs) and attrs.radius < 0:
        # LiteRT's kernel corrupts the heap on a negative radius; reject it
        raise OpError(f"LOCAL_RESPONSE_NORMALIZATION: radius {attrs.radius} must be >= 0")


L2_EPSILON = 1e-6


def _l2_reference(inputs: Sequence[np.ndarray | None], a: L2Attrs) -> list[np.ndarray]:
    x = np.asarray(inputs[0], np.float64)
    norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
    return [(x / np.maximum(norm, L2_EPSILON)).astype(F32)]


@dataclass(frozen=True)
class LrnAttrs:
    radius: int = 0
    bias: float = 0.0
    alpha: float = 0.0
    beta: float = 0.0


def _parse_lrn(o: dict[str, Any]) -> LrnAttrs:
    return LrnAttrs(int(o.get("radius", 0)), float(np.float32(o.get("bias", 0.0))),
                    float(np.float32(o.get("alpha", 0.0))), float(np.float32(o.get("beta", 0.0))))


def _lrn_reference(inputs: Sequence[np.ndarray | None], a: LrnAttrs) -> list[np.ndarray]:
    _check_attrs("LOCAL_RESPONSE_NORMALIZATION", a)
    x = np.asarray(inputs[0], np.float64)
    c = x.shape[-1]
    cs = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(x * x, axis=-1)], axis=-1)
    idx = np.arange(c)
    lo, hi = np.maximum(idx - a.radius, 0), np.minimum(idx + a.radius + 1, c)
    sqr_sum = (cs[..., hi] - cs[..., lo]).astype(F32)
    with np.errstate(all="ignore"):
        # the base in float32, as LiteRT forms it (matters for tiny, subnormal bias/alpha)
        base = np.float32(a.bias) + np.float32(a.alpha) * sqr_sum
        out = x / np.power(base.astype(np.float64), a.beta)
    return [out.astype(F32)]


define("LOG_SOFTMAX", infer=_float_infer(1), reference=_log_softmax_reference, cost=_row_cost(12))
define("L2_NORMALIZATION", parse=lambda o: L2Attrs(int(o.get("fused_activation_function", 0))),
       infer=_float_infer(1), reference=_l2_reference, cost=_row_cost(3))
define("LOCAL_RESPONSE_NORMALIZATION", parse=_parse_lrn, infer=_float_infer(4, 4), reference=_lrn_reference,
       cost=_row_cost(15))


# ---- ATAN2, BITWISE_XOR, RIGHT_SHIFT ---------------------------------------------------------------

_BITWISE_TYPES = (I8, I16, I32, U8, U16, U32)


def _atan2_infer(ctx: InferCtx) -> list[ShapeDtype]:
    if len(ctx.shapes) != 2:
        raise OpError(f"ATAN2: expected 2 inputs (y, x), got {len(ctx.shapes)}")
    check_input(ctx, 0, (F32,))
    check_input(ctx, 1, (F32,))
    sy, sx = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
    if sy != sx:
        # LiteRT checks only the ranks, then reads x at every index of y (out of bounds when x is
        # smaller) and returns y's shape: it does not broadcast. Require equal shapes.
        raise OpError(f"ATAN2: y '{ctx.name(0)}' has shape {list(sy)} and x '{ctx.name(1)}' has "
                      f"shape {list(sx)}; ATAN2 does not broadcast, the shapes must be equal "
                      "(insert a BROADCAST_TO)")
    return [(sy, F32)]


define("ATAN2", infer=_atan2_infer, reference=_reference("ATAN2", lambda a: E.call("atan2", X0, X1)),
       kind=PatternKind.ELEMWISE, cost=_cost(20), expr=lambda a: E.call("atan2", X0, X1))

_BITWISE: dict[str, Callable[[Any], E.Expr]] = {
    "BITWISE_XOR": lambda a: E.call("bitxor", X0, X1),
    # LiteRT clamps the shift count to [0, bits - 1]; signed values shift arithmetically
    "RIGHT_SHIFT": lambda a: E.call("rshift", X0, X1),
}
for _n, _fn in _BITWISE.items():
    define(_n, infer=binary_infer(_BITWISE_TYPES), reference=_reference(_n, _fn), kind=PatternKind.BROADCAST,
           cost=_cost(1), expr=_fn)


# ---- FAKE_QUANT ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FakeQuantAttrs:
    min: float = 0.0
    max: float = 0.0
    num_bits: int = 0
    narrow_range: bool = False


def _parse_fake_quant(o: dict[str, Any]) -> FakeQuantAttrs:
    return FakeQuantAttrs(float(np.float32(o.get("min", 0.0))), float(np.float32(o.get("max", 0.0))),
                          int(o.get("num_bits", 0)), bool(o.get("narrow_range", False)))


def _fake_quant_check(a: FakeQuantAttrs) -> None:
    if a.narrow_range:
        raise OpError("FAKE_QUANT: narrow_range is not supported (LiteRT rejects it at prepare: it is "
                      "meant for weights, not activations); set narrow_range to false")
    if not 1 <= a.num_bits <= 16:
        # LiteRT computes quant_max = (1 << num_bits) - 1 and casts the zero point to uint16: 0 bits
        # gives NaN everywhere, more than 16 bits an undefined cast. TensorFlow allows 2..16.
        raise OpError(f"FAKE_QUANT: num_bits {a.num_bits} is out of range; it must be in [1, 16]")
    if not (math.isfinite(a.min) and math.isfinite(a.max) and a.min < a.max):
        # min == max divides by a zero scale (NaN results) in LiteRT; min > max is meaningless
        raise OpError(f"FAKE_QUANT: the range [min={a.min}, max={a.max}] must be finite with "
                      "min < max")
    if not math.isfinite(float(np.float32(a.max) - np.float32(a.min))):
        raise OpError(f"FAKE_QUANT: the range [min={a.min}, max={a.max}] is too wide for float32 "
                      "(max - min overflows)")


def fake_quant_nudge(a: FakeQuantAttrs) -> tuple[np.float32, np.float32, np.float32]:
    """(nudged_min, nudged_max, scale) as TensorFlow's fake-quant functor computes them, in
    float32: the range is shifted so that 0.0 is exactly representable."""
    f = np.float32
    qmin, qmax = f(0.0), f((1 << a.num_bits) - 1)
    scale = (f(a.max) - f(a.min)) / (qmax - qmin)
    zp_from_min = qmin - f(a.min) / scale
    if zp_from_min < qmin:
        zp = qmin
    elif zp_from_min > qmax:
        zp = qmax
    else:
        # C's round: ties away from zero (zp_from_min >= 0 here; z - floor(z) is exact)
        whole = f(math.floor(zp_from_min))
        zp = whole + f(1.0) if zp_from_min - whole >= f(0.5) else whole
    return f((qmin - zp) * scale), f((qmax - zp) * scale), f(scale)


def _fake_quant_expr(a: FakeQuantAttrs) -> E.Expr:
    _fake_quant_check(a)
    lo, hi, scale = fake_quant_nudge(a)
    inv = np.float32(1.0) / scale
    lo_c, hi_c = E.Const(float(lo)), E.Const(float(hi))
    # std::min(hi, std::max(lo, x)): NaN becomes lo (both comparisons are false)
    clamped = E.where(E.call("lt", lo_c, X0), X0, lo_c)
    clamped = E.where(E.call("lt", clamped, hi_c), clamped, hi_c)
    steps = E.call("quant_steps", clamped, lo_c, float(inv))
    return E.add(E.mul(steps, float(scale)), lo_c)


def _fake_quant_infer(ctx: InferCtx) -> list[ShapeDtype]:
    if len(ctx.shapes) != 1:
        raise OpError(f"FAKE_QUANT: expected 1 input, got {len(ctx.shapes)}")
    check_input(ctx, 0, (F32,))
    _fake_quant_check(ctx.attrs)
    return [(tuple(ctx.shapes[0]), F32)]


def _fake_quant_reference(inputs: Sequence[np.ndarray | None], a: FakeQuantAttrs) -> list[np.ndarray]:
    x = np.asarray(inputs[0])
    if x.dtype != F32:
        raise OpError(f"FAKE_QUANT: input has type {x.dtype.name}; it must be float32")
    return [E.evaluate_numpy(_fake_quant_expr(a), [x], dtype=F32)]


define("FAKE_QUANT", parse=_parse_fake_quant, infer=_fake_quant_infer, reference=_fake_quant_reference,
       kind=PatternKind.ELEMWISE, cost=_cost(6), expr=_fake_quant_expr)
