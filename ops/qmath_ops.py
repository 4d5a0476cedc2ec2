"""Integer kernels of the remaining quantized math ops: comparisons (int8/uint8 rescale both
inputs), SQUARED_DIFFERENCE (int8), ABS, NEG, SQRT, RSQRT, EXP, LOG (int8, int16),
BATCH_MATMUL (int8/int16, per-tensor), TRANSPOSE_CONV (int8/int16 activations, int8 per-channel
weights) and PRELU (int8, uint8; int16 with an int8 alpha).

Semantics are LiteRT's builtin kernels, bit for bit:
* Comparisons (comparisons.cc): each input becomes RDBPOT(SRDHM((q - z) * 2**8, M), -s) with
  (M, s) = QuantizeMultiplier(its own scale), and the int32 results are compared; so do
  quantized int16 EQUAL / NOT_EQUAL. The int16 ordering comparisons and the other integer types
  compare raw values (the float definition already does that).
* SQUARED_DIFFERENCE int8 (squared_difference.cc): ADD-style rescale with left shift 7 and
  multipliers computed in double from tmax = 2 * max(s1, s2); the squared difference is
  requantized with tmax**2 / (2**14 * so).
* ABS (elementwise.cc): |q - zi|, then (only when si != so) MBQM by QM(float(si / so)); + zo.
  An int16 tensor without quantization takes the plain integer ABS.
* NEG: LiteRT negates the raw integers (two's complement wrap), ignoring quantization.
* SQRT: float: out = (int)(sqrtf(si * (q - zi)) / so) + zo (truncation), clamped; a negative
  dequantized input is a run-time error (as is q < zi for RSQRT).
* RSQRT int8: gemmlowp Newton-Raphson inverse square root (GetInvSqrtQuantizedMultiplierExp)
  and two MBQMs, evaluated once per input value into a table.
* EXP, LOG int8: 256-entry tables (LUTPopulate<int8>, float32 libm, roundf); LOG maps x <= 0 to
  the output's lowest representable value. EXP, LOG, RSQRT int16: LiteRT's 513-entry
  interpolated int16 tables (LUTPopulate<int16_t>, float32 arithmetic) and its lookup.
* BATCH_MATMUL (reference/batch_matmul.h, the only integer kernel): acc = sum (x - zx)(y - zy),
  requantized with MBQM by QM(double(float(sx * sy)) / so) for int8; int16 accumulates in int64
  and uses the int64 overload (16-bit multiplier, round half up).
* TRANSPOSE_CONV: acc = sum w * (x - zi) + bias, per-channel multiplier double(si)*double(sw)/
  double(so); int8 rounds like optimized_ops::Quantize (RHU2 on channel blocks of 8, MBQM on the
  last C mod 8 channels); int16 (int64 bias) uses the int64 MBQM overload.
* PRELU (reference/prelu.h): x >= zi: MBQM(x - zi, QM(float(si/so))); else
  MBQM((x - zi)(a - za), QM(float(si*sa/so))); + zo. int16 PRELU takes an int8 alpha (16x8);
  LiteRT reads an int16 alpha's bytes as int8 values, and so do we.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops import compare as _compare  # noqa: F401  (the float ops register first)
from tflite_jit.ops import elementwise as _elementwise  # noqa: F401
from tflite_jit.ops import image as _image  # noqa: F401
from tflite_jit.ops import math as _math  # noqa: F401
from tflite_jit.ops import nn as _nn  # noqa: F401
from tflite_jit.ops import qmath
from tflite_jit.ops.base import InferCtx, OpError, Quantized, QuantizedKernel, add_quantized, registered
from tflite_jit.ops.common import F32, I8, I16, I64, U8, broadcast_shapes, clamping_activation
from tflite_jit.ops.nn import axis_geometry
from tflite_jit.ops.quant import check_same_type, quant_params, quantized_input_dtype, scale_zero_point

_FLOAT_BMM = registered("BATCH_MATMUL")
_FLOAT_TCONV = registered("TRANSPOSE_CONV")


def _require_q(op: str, t: Any, what: str) -> tuple[float, int]:
    q = quant_params(t)
    if q is None:
        raise OpError(f"{op}: {what} '{t.name}' has no quantization parameters; quantized {op} "
                      "needs a scale and zero point on its inputs and output")
    if len(q[0]) != 1:
        raise OpError(f"{op}: {what} '{t.name}' is quantized per channel; {op} takes per-tensor "
                      "quantization")
    s = float(np.float32(q[0][0]))
    if not (s > 0 and math.isfinite(s)):
        raise OpError(f"{op}: {what} '{t.name}' has scale {s}; scales must be positive")
    return s, int(q[1][0])


def _clip_to(r: np.ndarray, dt: np.dtype) -> np.ndarray:
    lo, hi = qmath.qrange(dt)
    return np.clip(r, lo, hi).astype(dt)


# ---- comparisons ------------------------------------------------------------------------------------

_CMP = {"EQUAL": np.equal, "NOT_EQUAL": np.not_equal, "LESS": np.less, "LESS_EQUAL": np.less_equal,
        "GREATER": np.greater, "GREATER_EQUAL": np.greater_equal}


@dataclass(frozen=True)
class QCompareAttrs(Quantized):
    op: str
    z1: int
    z2: int
    m1: tuple[int, int]
    m2: tuple[int, int]


def _bind_compare(op: str):
    def bind(fa: Any, ins: list, outs: list) -> QCompareAttrs | None:
        # int16: EQUAL and NOT_EQUAL of quantized inputs rescale like int8 (measured against
        # LiteRT over all 65536 values at several scale pairs); the ordering comparisons compare
        # raw int16 values (the float rule)
        wide = (I16,) if op in ("EQUAL", "NOT_EQUAL") else ()
        dt = quantized_input_dtype(ins, (I8, U8, *wide))
        if dt is None or len(ins) < 2 or ins[1] is None or np.dtype(ins[1].dtype) != dt:
            return None  # the float rule reports mixed types
        if dt == I16 and any(quant_params(t) is None for t in ins[:2]):
            return None  # unquantized int16: a plain integer comparison
        ms = []
        for t in ins[:2]:
            s, _ = scale_zero_point(t)
            if s >= 1.0:
                # LiteRT quantizes the scale itself as a multiplier and applies it with a
                # right-shift-only helper; a scale >= 1 gives a negative shift (undefined
                # behaviour in its kernel), so refuse it instead of guessing.
                raise OpError(f"{op}: input '{t.name}' has scale {s}; LiteRT's quantized "
                              "comparison only handles input scales below 1")
            ms.append(qmath.quantize_multiplier(s))
        return QCompareAttrs(fa, op, scale_zero_point(ins[0])[1], scale_zero_point(ins[1])[1], ms[0], ms[1])
    return bind


def _compare_reference(inputs: Sequence[np.ndarray | None], a: QCompareAttrs) -> list[np.ndarray]:
    x = qmath.mbqm((inputs[0].astype(I64) - a.z1) << 8, *a.m1)
    y = qmath.mbqm((inputs[1].astype(I64) - a.z2) << 8, *a.m2)
    return [np.asarray(_CMP[a.op](x, y), np.bool_)]


# ---- SQUARED_DIFFERENCE -------------------------------------------------------------------------------

@dataclass(frozen=True)
class QSqDiffAttrs(Quantized):
    z1: int
    z2: int
    zo: int
    m1: tuple[int, int]
    m2: tuple[int, int]
    mo: tuple[int, int]
    dtype: str = "int8"  # LiteRT's quantized SQUARED_DIFFERENCE is int8 only


def _binary_infer(ctx: InferCtx) -> list:
    if len(ctx.shapes) != 2 or any(s is None for s in ctx.shapes):
        raise OpError(f"{ctx.op_name}: expected 2 inputs")
    d0, d1 = np.dtype(ctx.dtypes[0]), np.dtype(ctx.dtypes[1])
    if d0 != d1:
        raise OpError(f"{ctx.op_name}: inputs '{ctx.name(0)}' ({d0.name}) and '{ctx.name(1)}' "
                      f"({d1.name}) must have the same type")
    return [(broadcast_shapes(tuple(ctx.shapes[0]), tuple(ctx.shapes[1]), ctx.op_name), d0)]


def _unary_infer(ctx: InferCtx) -> list:
    if len(ctx.shapes) != 1 or ctx.shapes[0] is None:
        raise OpError(f"{ctx.op_name}: expected 1 input")
    return [(tuple(ctx.shapes[0]), np.dtype(ctx.dtypes[0]))]


def _smaller_than_one(op: str, m: float, what: str) -> tuple[int, int]:
    if not 0.0 < m < 1.0:
        raise OpError(f"{op}: the {what} multiplier {m} must lie in (0, 1) (LiteRT aborts "
                      "otherwise); choose an output scale closer to the inputs'")
    return qmath.quantize_multiplier(m)


def _bind_sqdiff(fa: Any, ins: list, outs: list) -> QSqDiffAttrs | None:
    dt = quantized_input_dtype(ins, (I8, U8, I16))
    if dt is None:
        return None
    if dt != I8:
        raise OpError(f"SQUARED_DIFFERENCE: input '{ins[0].name}' is {dt.name}; LiteRT's quantized "
                      "SQUARED_DIFFERENCE takes int8 only (or float32/int32)")
    check_same_type("SQUARED_DIFFERENCE", [*ins, *outs], dt)
    (s1, z1), (s2, z2) = _require_q("SQUARED_DIFFERENCE", ins[0], "input"), _require_q("SQUARED_DIFFERENCE", ins[1], "input")
    so, zo = _require_q("SQUARED_DIFFERENCE", outs[0], "output")
    tmax = 2.0 * max(s1, s2)
    mo = (tmax * tmax) / ((1 << 14) * so)
    return QSqDiffAttrs(fa, z1, z2, zo, _smaller_than_one("SQUARED_DIFFERENCE", s1 / tmax, "input 1"),
                        _smaller_than_one("SQUARED_DIFFERENCE", s2 / tmax, "input 2"),
                        _smaller_than_one("SQUARED_DIFFERENCE", mo, "output"))


def _sqdiff_reference(inputs: Sequence[np.ndarray | None], a: QSqDiffAttrs) -> list[np.ndarray]:
    x = qmath.mbqm((inputs[0].astype(I64) - a.z1) << 7, *a.m1)
    y = qmath.mbqm((inputs[1].astype(I64) - a.z2) << 7, *a.m2)
    d = x - y
    return [_clip_to(qmath.mbqm(d * d, *a.mo) + a.zo, I8)]


# ---- ABS / NEG / SQRT / EXP / LOG ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class QUnaryAttrs(Quantized):
    op: str
    dtype: str
    quantized: bool
    si: float = 0.0
    zi: int = 0
    so: float = 0.0
    zo: int = 0
    m: tuple[int, int] | None = None
    table: np.ndarray | None = None  # 256 entries indexed by q - qmin (int8 tables)


_UNARY_TYPES = {"ABS": (I8, I16), "NEG": (I8, I16), "SQRT": (I8, I16), "EXP": (I8, I16),
                "LOG": (I8, I16), "RSQRT": (I8, I16)}


def _log_fn(out_min: np.float32):
    logf = qmath.libm_f32("logf")
    return lambda x: logf(x) if x > 0 else out_min


def _bind_unary(op: str):
    def bind(fa: Any, ins: list, outs: list) -> QUnaryAttrs | None:
        dt = quantized_input_dtype(ins, (I8, U8, I16))
        if dt is None:
            return None
        if dt not in _UNARY_TYPES[op]:
            extra = (" (its int16 kernel uses LiteRT's interpolated 16-bit tables, which tflite_jit "
                     "does not implement)") if dt == I16 else ""
            raise OpError(f"{op}: input '{ins[0].name}' is {dt.name}; quantized {op} runs on "
                          f"{' or '.join(d.name for d in _UNARY_TYPES[op])}{extra}")
        check_same_type(op, [*ins, *outs], dt)
        if op == "NEG":
            return QUnaryAttrs(fa, op, dt.name, False)
        if op == "ABS" and dt == I16 and quant_params(ins[0]) is None:
            return QUnaryAttrs(fa, op, dt.name, False)  # plain int16 ABS
        si, zi = _require_q(op, ins[0], "input")
        so, zo = _require_q(op, outs[0], "output")
        if dt == I16 and (zi or zo):
            raise OpError(f"{op}: int16 tensors must have zero point 0 (got {zi}, {zo})")
        m = table = None
        if dt == I16 and op in ("EXP", "LOG", "RSQRT"):
            table = _lut16_for(op, si, zi, so, zo)
        elif op == "ABS" and np.float32(si) != np.float32(so):
            m = qmath.quantize_multiplier(float(np.float32(np.float32(si) / np.float32(so))))
        elif op == "EXP":
            table = qmath.lut8(qmath.libm_f32("expf"), si, zi, so, zo, dt)
        elif op == "RSQRT":
            table = _rsqrt_table(si, zi, so, zo)
        elif op == "LOG":
            lo, _ = qmath.qrange(dt)
            table = qmath.lut8(_log_fn(np.float32(np.float32(lo - zo) * np.float32(so))), si, zi, so, zo, dt)
        return QUnaryAttrs(fa, op, dt.name, True, si, zi, so, zo, m, table)
    return bind


def _unary_reference(inputs: Sequence[np.ndarray | None], a: QUnaryAttrs) -> list[np.ndarray]:
    dt = np.dtype(a.dtype)
    x = np.asarray(inputs[0])
    if a.op == "NEG":
        return [(-x.astype(I64)).astype(dt)]  # wraps like the C++ int negation stored back
    if a.op == "ABS" and not a.quantized:
        return [np.abs(x.astype(I64)).astype(dt)]
    if a.op == "RSQRT" and (x.astype(I64) < a.zi).any():
        raise OpError(f"RSQRT: the input holds a value below its zero point {a.zi} (a negative "
                      "real value); Rsqrt is only defined for positive values")
    if a.table is not None and dt == I16:
        return [qmath.lut16_lookup(x, a.table).astype(dt)]
    if a.table is not None:
        lo, _ = qmath.qrange(dt)
        return [a.table[x.astype(I64) - lo]]
    if a.op == "ABS":
        v = np.abs(x.astype(I64) - a.zi)
        if a.m is not None:
            v = qmath.mbqm(v, *a.m)
        return [_clip_to(v + a.zo, dt)]
    # SQRT: dequantize in float32, validate, sqrtf, divide, truncate
    d = (np.float32(a.si) * (x.astype(I64) - a.zi).astype(F32)).astype(F32)
    if (d < 0).any():
        raise OpError("SQRT: the input holds a negative value (dequantized "
                      f"{float(d.min())}); Sqrt is only defined for non-negative values")
    r = np.trunc((np.sqrt(d) / np.float32(a.so)).astype(F32)).astype(I64) + a.zo
    return [_clip_to(r, dt)]


# ---- int16 tables (LUTPopulate<int16_t>, float32 arithmetic) -------------------------------------------------

def _lut16_for(op: str, si: float, zi: int, so: float, zo: int) -> np.ndarray:
    if op == "EXP":
        return qmath.lut16(qmath.libm_f32("expf"), si, zi, so, zo)
    if op == "LOG":
        out_min = np.float32(np.float32(-32768 - zo) * np.float32(so))
        logf = qmath.libm_f32("logf")
        return qmath.lut16(lambda v: logf(v) if v > 0 else out_min, si, zi, so, zo)
    sqrtf = qmath.libm_f32("sqrtf")
    big = np.float32(np.float32(32767) * np.float32(so))
    return qmath.lut16(lambda v: np.float32(np.float32(1) / sqrtf(v)) if v > 0 else big, si, zi, so, zo)


# ---- RSQRT (int8) ----------------------------------------------------------------------------------------------

def _rdbpot_s(x: int, e: int) -> int:
    return int(qmath.rdbpot(np.int64(x), e))


def _srdhm_s(a: int, b: int) -> int:
    return int(qmath.srdhm(np.int64(a), np.int64(b)))


def _sat_shl_s(x: int, k: int) -> int:
    return int(qmath.saturating_shl(np.int64(x), k))


def _inv_sqrt_multiplier(v: int) -> tuple[int, int]:
    """LiteRT's GetInvSqrtQuantizedMultiplierExp(v, reverse_shift=-1): 1/sqrt(v) as a Q0.31
    multiplier and shift, by five Newton-Raphson steps in gemmlowp Q3.28 fixed point (a scalar
    re-implementation of the integer recipe; v > 1)."""
    if v <= 1:
        return (1 << 31) - 1, 0
    shift = 11
    while v >= (1 << 29):
        v //= 4
        shift += 1
    clz = 32 - int(v).bit_length()
    pairs = (clz - 1) // 2 - 1
    shift -= pairs
    v <<= 2 * pairs
    x_in = v >> 1  # F3 raw
    half_in = _rdbpot_s(x_in, 1)
    half_three = (1 << 28) + (1 << 27)
    x = 1 << 28  # F3 one
    for _ in range(5):
        x3 = _sat_shl_s(_srdhm_s(_srdhm_s(x, x), x), 6)  # F9 -> F3
        t = _srdhm_s(half_three, x) - _srdhm_s(half_in, x3)  # F6
        x = _sat_shl_s(t, 3)  # F6 -> F3
    x = _srdhm_s(x, 1518500250)  # * sqrt(2)/2 (F0)
    if shift < 0:
        x = int(qmath.wrap32(np.int64(x) << -shift))
        shift = 0
    return x, -shift


def _rsqrt_table(si: float, zi: int, so: float, zo: int) -> np.ndarray:
    """RsqrtEvalQuantizedInt8 for every input value >= zi (entries below zi are never used: the
    kernel rejects such inputs at run time)."""
    real = 1.0 / float(np.float32(np.float32(np.sqrt(np.float32(si))) * np.float32(so)))
    mult, shift = qmath.quantize_multiplier(real)
    table = np.full(256, 127, np.int64)
    for q in range(max(zi, -128), 128):
        v = q - zi
        if v == 0:
            continue  # the kernel returns the type's maximum for an exact zero
        im, ish = _inv_sqrt_multiplier(v)
        data = int(qmath.mbqm(np.int64(1), im, ish + 20))
        table[q + 128] = int(qmath.mbqm(np.int64(data), mult, shift - 20)) + zo
    return np.clip(table, -128, 127).astype(I8)


# ---- BATCH_MATMUL -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QBmmAttrs(Quantized):
    dtype: str
    zx: int
    zy: int
    zo: int
    m: tuple[int, int]


def _bind_bmm(fa: Any, ins: list, outs: list) -> QBmmAttrs | None:
    dt = quantized_input_dtype(ins, (I8, U8, I16))
    if dt is None:
        return None
    if dt == U8:
        raise OpError(f"BATCH_MATMUL: input '{ins[0].name}' is uint8; LiteRT's BATCH_MATMUL takes "
                      "float32, int8 or int16")
    check_same_type("BATCH_MATMUL", [*ins[:2], *outs], dt)
    (sx, zx), (sy, zy) = _require_q("BATCH_MATMUL", ins[0], "lhs"), _require_q("BATCH_MATMUL", ins[1], "rhs")
    so, zo = _require_q("BATCH_MATMUL", outs[0], "output")
    if dt == I16 and (zx or zy or zo):
        raise OpError(f"BATCH_MATMUL: int16 tensors must have zero point 0 (got {zx}, {zy}, {zo})")
    real = float(np.float32(np.float32(sx) * np.float32(sy))) / so
    return QBmmAttrs(fa, dt.name, zx, zy, zo, qmath.quantize_multiplier(real))


def _bmm_infer(ctx: InferCtx) -> list:
    a: QBmmAttrs = ctx.attrs
    dts = list(ctx.dtypes)
    for i in (0, 1):
        if np.dtype(dts[i]) != np.dtype(a.dtype):
            raise OpError(f"BATCH_MATMUL: '{ctx.name(i)}' is {np.dtype(dts[i]).name}; both operands "
                          f"must be {a.dtype}")
        dts[i] = np.dtype(F32)
    out = _FLOAT_BMM.infer(InferCtx(ctx.op_name, a.base, ctx.shapes, dts, ctx.values, ctx.tensor_names))
    return [(out[0][0], np.dtype(a.dtype))]


def _bmm_reference(inputs: Sequence[np.ndarray | None], a: QBmmAttrs) -> list[np.ndarray]:
    x = inputs[0].astype(I64) - a.zx
    y = inputs[1].astype(I64) - a.zy
    if a.base.adj_x:
        x = np.swapaxes(x, -1, -2)
    if a.base.adj_y:
        y = np.swapaxes(y, -1, -2)
    acc = np.matmul(x, y)
    dt = np.dtype(a.dtype)
    if dt == I16:
        r = qmath.mbqm64(acc, *a.m)
    else:
        r = qmath.mbqm(acc, *a.m)
    return [_clip_to(r + a.zo, dt)]


# ---- TRANSPOSE_CONV -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QTconvAttrs(Quantized):
    dtype: str
    zi: int
    zo: int
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    act_min: int
    act_max: int
    rounding: str  # "blocks8" (RHU2 on channel blocks of 8, MBQM on the rest) | "mbqm64"


def _bind_tconv(fa: Any, ins: list, outs: list) -> QTconvAttrs | None:
    op = "TRANSPOSE_CONV"
    x = ins[2] if len(ins) > 2 else None
    dt = quantized_input_dtype([x], (I8, U8, I16))
    if dt is None:
        return None
    if dt == U8:
        raise OpError(f"{op}: input '{x.name}' is uint8; tflite_jit's quantized {op} takes int8 "
                      "or int16 activations with int8 per-channel weights")
    check_same_type(op, [x, *outs], dt)
    w = ins[1]
    if np.dtype(w.dtype) != I8:
        raise OpError(f"{op}: weights '{w.name}' are {np.dtype(w.dtype).name}; a quantized {op} "
                      "needs int8 weights")
    si, zi = _require_q(op, x, "input")
    so, zo = _require_q(op, outs[0], "output")
    qw = quant_params(w)
    if qw is None:
        raise OpError(f"{op}: weights '{w.name}' have no quantization parameters")
    sw, zw, axis = qw
    if any(zw):
        raise OpError(f"{op}: weights '{w.name}' have non-zero zero points; int8 weights must be "
                      "symmetric (zero point 0)")
    if len(sw) > 1 and axis != 0:
        raise OpError(f"{op}: weights '{w.name}' are quantized along dimension {axis}; LiteRT "
                      "expects per-channel scales on dimension 0 (output channels)")
    if any(not (v > 0 and math.isfinite(v)) for v in sw):
        raise OpError(f"{op}: weights '{w.name}' scales must be positive")
    if dt == I16 and (zi or zo):
        raise OpError(f"{op}: int16 activations must have zero point 0 (input {zi}, output {zo})")
    reals = [float(np.float64(np.float32(si)) * np.float64(np.float32(v)) / np.float64(np.float32(so))) for v in sw]
    ms, shs = zip(*(qmath.quantize_multiplier(r) for r in reals))
    act = clamping_activation(getattr(fa, "activation", "NONE"))
    lo, hi = qmath.activation_range(act, so, zo, dt)
    return QTconvAttrs(fa, dt.name, zi, zo, tuple(ms), tuple(shs), lo, hi,
                       "mbqm64" if dt == I16 else "blocks8")


def _tconv_check(ctx: InferCtx) -> None:
    a: QTconvAttrs = ctx.attrs
    o = ctx.shapes[1][0]
    if len(a.multipliers) not in (1, o):
        raise OpError(f"TRANSPOSE_CONV: weights '{ctx.name(1)}' have {len(a.multipliers)} scales for "
                      f"{o} output channels")
    if len(ctx.shapes) > 3 and ctx.shapes[3] is not None:
        bdt = np.dtype(ctx.dtypes[3])
        want = np.dtype(np.int64) if a.dtype == "int16" else np.dtype(np.int32)
        if bdt != want:
            raise OpError(f"TRANSPOSE_CONV: bias '{ctx.name(3)}' is {bdt.name}; a {a.dtype} "
                          f"TRANSPOSE_CONV takes {want.name} bias")


def _tconv_infer(ctx: InferCtx) -> list:
    a: QTconvAttrs = ctx.attrs
    dts = list(ctx.dtypes)
    if np.dtype(dts[1]) != I8 or np.dtype(dts[2]) != np.dtype(a.dtype):
        raise OpError(f"TRANSPOSE_CONV: weights must be int8 and the input {a.dtype}")
    dts[1] = dts[2] = np.dtype(F32)
    if len(dts) > 3 and dts[3] is not None:
        dts[3] = np.dtype(F32)
    out = _FLOAT_TCONV.infer(InferCtx(ctx.op_name, a.base, ctx.shapes, dts, ctx.values,
                                               ctx.tensor_names))
    _tconv_check(ctx)
    return [(out[0][0], np.dtype(a.dtype))]


def _tconv_reference(inputs: Sequence[np.ndarray | None], a: QTconvAttrs) -> list[np.ndarray]:
    f = a.base
    out_shape = tuple(int(v) for v in np.asarray(inputs[0]).reshape(-1))
    wt = np.asarray(inputs[1]).astype(I64)
    x = np.asarray(inputs[2]).astype(I64) - a.zi
    bias = inputs[3] if len(inputs) > 3 else None
    n, h, w, _ = x.shape
    o, kh, kw, _ = wt.shape
    _, oh, ow, _ = out_shape
    sh, sw = f.stride_h, f.stride_w
    ph = axis_geometry(f.padding, oh, kh, sh, 1).pad_before
    pw = axis_geometry(f.padding, ow, kw, sw, 1).pad_before
    contrib = np.tensordot(x, wt, axes=([3], [3]))  # [N, H, W, O, KH, KW], exact in int64
    full_h = max((h - 1) * sh + kh, ph + oh)
    full_w = max((w - 1) * sw + kw, pw + ow)
    full = np.zeros((n, full_h, full_w, o), I64)
    for i in range(kh):
        for j in range(kw):
            full[:, i:i + (h - 1) * sh + 1:sh, j:j + (w - 1) * sw + 1:sw, :] += contrib[..., i, j]
    acc = full[:, ph:ph + oh, pw:pw + ow, :]
    if bias is not None:
        acc = acc + np.asarray(bias).astype(I64).reshape(-1)
    m = np.broadcast_to(np.asarray(a.multipliers, I64), (o,))
    s = np.broadcast_to(np.asarray(a.shifts, I64), (o,))
    if a.rounding == "mbqm64":
        r = qmath.mbqm64(acc, m, s)
    elif a.rounding == "mbqm":
        r = qmath.mbqm(acc, m, s)
    else:
        head = o // 8 * 8
        r = np.concatenate([qmath.rhu2(acc[..., :head], m[:head], s[:head]),
                            qmath.mbqm(acc[..., head:], m[head:], s[head:])], axis=-1)
    return [np.clip(r + a.zo, a.act_min, a.act_max).astype(np.dtype(a.dtype))]


# ---- PRELU ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QPreluAttrs(Quantized):
    dtype: str
    zi: int
    za: int
    zo: int
    m1: tuple[int, int]
    m2: tuple[int, int]
    alpha_bytes: bool = False  # int16 input with an int16 alpha: LiteRT reads alpha's bytes as int8


def _bind_prelu(fa: Any, ins: list, outs: list) -> QPreluAttrs | None:
    dt = quantized_input_dtype(ins, (I8, U8, I16))
    if dt is None:
        return None
    alpha_bytes = False
    if dt == I16:
        # 16x8: the int8 formula with an int8 alpha (a weight). LiteRT's int16 kernel reads alpha
        # as int8 data whatever its type, so an int16 alpha gives the first numel bytes of its
        # buffer read as int8 (measured: bit-exact over all 65536 inputs); we do the same.
        at = np.dtype(ins[1].dtype) if len(ins) > 1 and ins[1] is not None else None
        if at not in (I8, I16):
            raise OpError(f"PRELU: alpha '{ins[1].name if at is not None else '?'}' must be int8 (or "
                          f"int16) for an int16 input, got {at}")
        check_same_type("PRELU", [ins[0], *outs], dt)
        alpha_bytes = at == I16
    else:
        check_same_type("PRELU", [*ins[:2], *outs], dt)
    (si, zi), (sa, za) = _require_q("PRELU", ins[0], "input"), _require_q("PRELU", ins[1], "alpha")
    so, zo = _require_q("PRELU", outs[0], "output")
    m1 = qmath.quantize_multiplier(float(np.float32(np.float32(si) / np.float32(so))))
    m2 = qmath.quantize_multiplier(float(np.float32(np.float32(np.float32(si) * np.float32(sa)) / np.float32(so))))
    return QPreluAttrs(fa, dt.name, zi, za, zo, m1, m2, alpha_bytes)


def _prelu_infer(ctx: InferCtx) -> list:
    a: QPreluAttrs = ctx.attrs
    if np.dtype(a.dtype) == I16:  # 16x8: the int8 (or int16) alpha was checked by bind
        if len(ctx.shapes) != 2 or any(s is None for s in ctx.shapes):
            raise OpError("PRELU: expected 2 inputs")
        shape = broadcast_shapes(tuple(ctx.shapes[0]), tuple(ctx.shapes[1]), "PRELU")
    else:
        (shape, _), = _binary_infer(ctx)
    if shape != tuple(ctx.shapes[0]):
        raise OpError(f"PRELU: alpha '{ctx.name(1)}' of shape {list(ctx.shapes[1])} must broadcast "
                      f"into the input '{ctx.name(0)}' of shape {list(ctx.shapes[0])}")
    return [(shape, np.dtype(a.dtype))]


def _prelu_reference(inputs: Sequence[np.ndarray | None], a: QPreluAttrs) -> list[np.ndarray]:
    d = inputs[0].astype(I64) - a.zi
    alpha = np.asarray(inputs[1])
    if a.alpha_bytes:
        alpha = np.ascontiguousarray(alpha).reshape(-1).view(np.int8)[:alpha.size].reshape(alpha.shape)
    al = alpha.astype(I64) - a.za
    pos = qmath.mbqm(d, *a.m1)
    neg = qmath.mbqm(d * al, *a.m2)
    return [_clip_to(np.where(d >= 0, pos, neg) + a.zo, np.dtype(a.dtype))]


# ---- registration -------------------------------------------------------------------------------------------

for _name in _CMP:
    add_quantized(_name, QuantizedKernel(bind=_bind_compare(_name), reference=_compare_reference))
add_quantized("SQUARED_DIFFERENCE", QuantizedKernel(bind=_bind_sqdiff, reference=_sqdiff_reference,
                                                    infer=_binary_infer))
for _name in _UNARY_TYPES:
    add_quantized(_name, QuantizedKernel(bind=_bind_unary(_name), reference=_unary_reference,
                                         infer=_unary_infer))
add_quantized("BATCH_MATMUL", QuantizedKernel(bind=_bind_bmm, reference=_bmm_reference, infer=_bmm_infer))
add_quantized("TRANSPOSE_CONV", QuantizedKernel(bind=_bind_tconv, reference=_tconv_reference, infer=_tconv_infer))
add_quantized("PRELU", QuantizedKernel(bind=_bind_prelu, reference=_prelu_reference, infer=_prelu_infer))
