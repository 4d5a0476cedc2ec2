"""Integer kernels of reductions and row normalisations: MEAN, SUM (int8, uint8, int16),
REDUCE_MAX / REDUCE_MIN (int8, uint8, int16), REDUCE_PROD (quantized int8 / int16; unquantized
int8 / uint8 / int16), SOFTMAX (int8 / uint8 input with 8-bit or int16 output; int16),
LOG_SOFTMAX (int8, uint8), L2_NORMALIZATION (int8, uint8).

Semantics are LiteRT's builtin kernels without XNNPACK, bit for bit (QUANTIZATION.md §3.6, §3.7,
§4):

* MEAN: the integer formula of the reference kernel -- the multiplier of si/so is divided by the
  reduced count with `k` guard bits, then one MBQM of (sum - zi*n). LiteRT's optimized kernel has
  a special case for 4-D input, keep_dims, an axis tensor naming exactly dims 1 and 2 (repeated
  entries included), on int8/uint8: a float-derived bias and multiplier, RHU2 rounding on blocks of 16 channels and
  MBQM on the last C mod 16 channels. That block split is the single-threaded one (LiteRT's
  default); with num_threads > 1 LiteRT splits the channels per thread and the int8 tail moves.
  An empty input gives zeros (LiteRT casts a quiet NaN to the type).
* SUM: LiteRT's float formula, all in float32: round_half_away(float(sum) * (si/so) +
  (-zi * (si/so)) * n) + zo, clamped. This holds even when input and output share their
  parameters (no raw wrapping sum).
* REDUCE_MAX / REDUCE_MIN: the raw integers; LiteRT requires equal scale and zero point.
* REDUCE_PROD: each multiplication step is rescaled by si / so**(1/n) with the int64-input
  MultiplyByQuantizedMultiplier (16-bit reduced multiplier, round half up), elements folded in
  memory order, then a last rescale; quantized uint8 is rejected as LiteRT does. When every
  reduced dimension has size 1, LiteRT copies the raw input (no rescale); so do we.
  Unquantized 8/16-bit inputs multiply in the element type, wrapping.
* SOFTMAX (8-bit input): a 256-entry float32 table expf((-si*beta) * j) for j = max - x, the row
  sum accumulated sequentially in float32, inv = 1 / (sum * so), out = round(e * inv) + zo
  (C round; the uint8 output adds 0.5 and truncates and ignores its zero point).
* SOFTMAX int16: LiteRT's two 513-entry interpolated tables (exp over [-10, 0], 1/(1+x) over
  [0, 1]) and its fixed-point row normalisation.
* LOG_SOFTMAX (8-bit): the same table with beta = 1, log_sum = logf(sum), out =
  rint((si/so) * x - (si*max + log_sum)/so) + zo (the zero point added in float), clamped.
* L2_NORMALIZATION: sum of squared (q - zi) in int32, gemmlowp's Newton-Raphson inverse square
  root, then MBQM (int8) or a 128x rescale with a rounding shift (uint8, output zero point 128).

Where LiteRT converts an out-of-range or NaN float to int32 (undefined in C) the x86 result,
INT32_MIN, is reproduced, and a following int32 zero-point addition wraps as in C (negative
SOFTMAX beta gives 127 on int8, as LiteRT does); where LiteRT reads garbage (quantized
SUM/REDUCE_PROD over an empty input leave the output unwritten) the input is rejected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tflite_jit.ops import math as _float_math  # noqa: F401  (the float ops register first)
from tflite_jit.ops import qmath, reduce
from tflite_jit.ops.base import InferCtx, OpError, Quantized, QuantizedKernel, add_quantized
from tflite_jit.ops.common import F32, I8, I16, I64, U8
from tflite_jit.ops.quant import per_tensor_params, quant_params, quantized_input_dtype


def _f2i32(v: np.ndarray) -> np.ndarray:
    """C's float -> int32 conversion as x86 does it (cvttss2si): truncation, and INT32_MIN for
    NaN and out-of-range values (undefined behaviour in C; this is what LiteRT computes)."""
    v = np.asarray(v, np.float64)
    ok = np.isfinite(v) & (v >= -2.0**31) & (v < 2.0**31)
    return np.where(ok, np.trunc(np.where(ok, v, 0.0)), qmath.INT32_MIN).astype(I64)


def _same_type(op: str, ins: list, outs: list, dt: np.dtype) -> None:
    for t in (ins[0], *outs):
        if t is not None and np.dtype(t.dtype) != dt:
            raise OpError(f"{op}: tensor '{t.name}' is {np.dtype(t.dtype).name} but the op runs on "
                          f"{dt.name}; the quantized input and output must share one type")


# ---- reductions ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QReduceAttrs(Quantized):
    op: str
    dtype: str
    si: float
    zi: int
    so: float
    zo: int


def _bind_reduce(op: str, fa: Any, ins: list, outs: list) -> QReduceAttrs | None:
    dt = quantized_input_dtype(ins, (I8, U8, I16))
    if dt is None:
        return None
    if op in ("REDUCE_MAX", "REDUCE_MIN") and quant_params(ins[0]) is None:
        if dt == I16:
            return None  # the plain int16 kernel of the float op definition
        _same_type(op, ins, outs, dt)
        return QReduceAttrs(fa, op, dt.name, 1.0, 0, 1.0, 0)  # plain integers: raw max / min
    if op == "REDUCE_PROD" and dt == U8 and quant_params(ins[0]) is not None:
        raise OpError(f"REDUCE_PROD: input '{ins[0].name}' is quantized uint8; LiteRT's quantized "
                      "REDUCE_PROD takes int8 or int16")
    if op == "REDUCE_PROD" and quant_params(ins[0]) is None:
        _same_type(op, ins, outs, dt)
        return QReduceAttrs(fa, "REDUCE_PROD_RAW", dt.name, 1.0, 0, 1.0, 0)  # plain integers
    _same_type(op, ins, outs, dt)
    (si, zi), (so, zo) = per_tensor_params(ins[0], op, "input"), per_tensor_params(outs[0], op, "output")
    if dt == I16 and (zi or zo):
        raise OpError(f"{op}: int16 tensors must have zero point 0 (input {zi}, output {zo}), as "
                      "LiteRT requires")
    if op in ("REDUCE_MAX", "REDUCE_MIN") and (np.float32(si) != np.float32(so) or zi != zo):
        raise OpError(f"{op}: input '{ins[0].name}' (scale {si}, zero point {zi}) and output "
                      f"'{outs[0].name}' (scale {so}, zero point {zo}) must have the same scale and "
                      "zero point; LiteRT's quantized max/min only moves raw values")
    return QReduceAttrs(fa, op, dt.name, float(np.float32(si)), int(zi), float(np.float32(so)), int(zo))


def infer_reduce(ctx: InferCtx) -> list:
    a: QReduceAttrs = ctx.attrs
    fctx = InferCtx(ctx.op_name, a.base, ctx.shapes, ctx.dtypes, ctx.values, ctx.tensor_names)
    out = reduce.infer_reduce(fctx)
    shape = tuple(ctx.shapes[0])
    if a.op in ("SUM", "REDUCE_PROD") and 0 in shape and int(np.prod(out[0][0])) > 0:
        # LiteRT returns early without writing the output: its values would be garbage
        raise OpError(f"{a.op}: input '{ctx.name(0)}' of shape {list(shape)} is empty; LiteRT's "
                      f"quantized {a.op} leaves the output unwritten for it")
    if a.op == "REDUCE_PROD" and 0 not in shape:
        axes = reduce.resolve_axes(ctx.value(1, "axis"), len(shape), a.op, ctx.name(0))
        _prod_multiplier(a, int(np.prod([shape[i] for i in axes], dtype=np.int64)))
    return [(out[0][0], np.dtype(a.dtype))]


def _prod_multiplier(a: QReduceAttrs, n: int) -> tuple[int, int]:
    """REDUCE_PROD's per-step rescale si / so**(1/n), in double as LiteRT computes it."""
    scaling = a.si / math.pow(a.so, 1.0 / n)
    m, s = qmath.quantize_multiplier(scaling)
    if s > 14:  # the int64 requantization would shift by 15 - s <= 0: undefined in LiteRT
        raise OpError(f"REDUCE_PROD: the per-step rescale si / so**(1/n) = {scaling:.6g} is too large "
                      "(>= 2**14) for LiteRT's 64-bit requantization; use a larger output scale")
    return m, s


def _move_reduced_last(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Rows = kept positions (C order), columns = reduced positions in memory order."""
    kept = [i for i in range(x.ndim) if i not in axes]
    t = np.transpose(x, kept + list(axes))
    n_out = int(np.prod([x.shape[i] for i in kept], dtype=np.int64))
    return t.reshape(n_out, -1)


def _mean_is_opt_special(x: np.ndarray, axis: np.ndarray, keep_dims: bool, dt: np.dtype) -> bool:
    """LiteRT's optimized MEAN kernel: 4-D, keep_dims, int8 or uint8, and an axis tensor whose
    entries name exactly the dimensions 1 and 2. Negative spellings and repeated entries count:
    [1, 2, 1] and [1, 2, -2] take this kernel too (probed: 0 mismatches against LiteRT, where the
    general formula differed on about a quarter of the outputs), [1, 1] does not."""
    raw = {int(v) % 4 for v in np.asarray(axis).reshape(-1)}
    return dt in (I8, U8) and keep_dims and x.ndim == 4 and raw == {1, 2}


def _mean_opt_special(x: np.ndarray, a: QReduceAttrs, lo: int, hi: int) -> np.ndarray:
    n = x.shape[1] * x.shape[2]
    si, so = np.float32(a.si), np.float32(a.so)
    t = np.float32(np.float32(np.float32(a.zi) * si) / so)
    t = np.float32(t + np.float32(0.5)) if t > 0 else np.float32(t - np.float32(0.5))
    bias = a.zo - int(np.trunc(t))
    real = np.float32(si / np.float32(np.float32(n) * so))
    m, s = qmath.quantize_multiplier(float(real))
    acc = x.astype(I64).sum(axis=(1, 2), keepdims=True)  # [B, 1, 1, C]
    c = x.shape[3]
    blocks = (c // 16) * 16  # blocks of 16 channels: NEON-on-SSE rounding; the rest: scalar MBQM
    ch = np.arange(c).reshape(1, 1, 1, c)
    r = np.where(ch < blocks, qmath.rhu2(acc, m, s), qmath.mbqm(acc, m, s)) + bias
    return np.clip(r, lo, hi)


def _reduce_reference(inputs: Sequence[np.ndarray | None], a: QReduceAttrs) -> list[np.ndarray]:
    x = inputs[0]
    dt = np.dtype(a.dtype)
    lo, hi = qmath.qrange(dt)
    axes = reduce.resolve_axes(inputs[1], x.ndim, a.op)
    out_shape = reduce.reduced_shape(x.shape, axes, a.base.keep_dims)
    n = int(np.prod([x.shape[i] for i in axes], dtype=np.int64))
    if a.op == "REDUCE_PROD_RAW":
        # LiteRT's generic kernel: the product in the element type, wrapping like C's narrowing
        y = np.prod(x.astype(I64), axis=axes, keepdims=a.base.keep_dims) if x.size else \
            np.ones(out_shape, I64)
        return [np.ascontiguousarray(y.astype(dt)).reshape(out_shape)]
    if a.op in ("REDUCE_MAX", "REDUCE_MIN"):
        fn = np.max if a.op == "REDUCE_MAX" else np.min
        init = lo if a.op == "REDUCE_MAX" else hi
        y = fn(x, axis=axes, keepdims=a.base.keep_dims, initial=init)
        return [np.ascontiguousarray(y, dtype=dt).reshape(out_shape)]
    if x.size == 0:
        if a.op != "MEAN" and int(np.prod(out_shape)) > 0:
            raise OpError(f"{a.op}: the input is empty; LiteRT's quantized {a.op} leaves the "
                          "output unwritten for it")
        return [np.zeros(out_shape, dt)]
    if a.op == "MEAN" and _mean_is_opt_special(x, inputs[1], a.base.keep_dims, dt):
        return [_mean_opt_special(x, a, lo, hi).astype(dt).reshape(out_shape)]
    rows = _move_reduced_last(x, axes).astype(I64)
    if a.op == "MEAN":
        m, s = qmath.quantize_multiplier(a.si / a.so)
        k = min(int(math.floor(math.log2(n))), 32, 31 + s)
        m2 = (m << k) // n
        total = rows.sum(axis=1) - a.zi * n
        r = qmath.mbqm(total, m2, s - k) + a.zo
    elif a.op == "SUM":
        sc = np.float32(np.float32(a.si) / np.float32(a.so))
        bias = np.float32(np.float32(np.float32(-a.zi) * sc) * np.float32(n))
        # the int32 accumulator converted to float; then float multiply-add, C round, to int32
        v = (rows.sum(axis=1).astype(np.int32).astype(F32) * sc).astype(F32) + bias
        r = qmath.wrap32(_f2i32(qmath.round_half_away(v.astype(F32))) + a.zo)
    elif all(x.shape[i] == 1 for i in axes):
        # LiteRT drops size-1 dimensions before reducing; with nothing left to reduce its
        # quantized REDUCE_PROD copies the raw input (no rescale to the output parameters)
        return [np.ascontiguousarray(x).reshape(out_shape)]
    else:  # REDUCE_PROD
        m, s = _prod_multiplier(a, n)
        d = rows - a.zi
        acc = d[:, 0]
        for j in range(1, d.shape[1]):
            acc = qmath.wrap32(qmath.mbqm64(acc * d[:, j], m, s))
        r = qmath.wrap32(qmath.mbqm64(acc, m, s)) + a.zo
    return [np.clip(r, lo, hi).astype(dt).reshape(out_shape)]


# ---- SOFTMAX / LOG_SOFTMAX ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class QSoftmaxAttrs(Quantized):
    op: str
    in_dtype: str
    out_dtype: str
    si: float
    so: float
    zo: int
    table: np.ndarray  # float32 expf((-si*beta) * j), j = max - x in [0, 255]


def _exp_table(si: float, beta: float) -> np.ndarray:
    expf = qmath.libm_f32("expf")
    scale = np.float32(np.float32(-np.float32(si)) * np.float32(beta))
    return np.array([expf(np.float32(scale * np.float32(j))) for j in range(256)], F32)


_SOFTMAX_OUT = {I8: (I8, I16), U8: (U8, I16)}


def _bind_softmax(op: str, fa: Any, ins: list, outs: list) -> QSoftmaxAttrs | None:
    dt = quantized_input_dtype(ins, (I8, U8, I16))
    if dt is None:
        return None
    odt = np.dtype(outs[0].dtype)
    if dt == I16:
        if op == "LOG_SOFTMAX":
            raise OpError("LOG_SOFTMAX: int16 input is not supported by LiteRT; use int8, uint8 "
                          "or float32")
        return _bind_softmax16(fa, ins, outs)
    allowed = _SOFTMAX_OUT[dt] if op == "SOFTMAX" else (dt,)
    if odt not in allowed:
        raise OpError(f"{op}: output '{outs[0].name}' is {odt.name}; with {dt.name} input LiteRT "
                      f"takes {' or '.join(t.name for t in allowed)} output")
    (si, _zi), (so, zo) = per_tensor_params(ins[0], op, "input"), per_tensor_params(outs[0], op, "output")
    if op == "SOFTMAX":
        if dt == I8 and odt == I8:
            if zo != -128 or abs(np.float32(so) - np.float32(1.0 / 256)) > np.float32(0.001 / 256):
                raise OpError(f"SOFTMAX: output '{outs[0].name}' must be quantized with scale 1/256 "
                              f"and zero point -128 (got {so}, {zo}), as LiteRT requires")
        beta = float(fa.beta)
    else:
        want = 255 if dt == U8 else 127
        if np.float32(so) != np.float32(16.0 / 256) or zo != want:
            raise OpError(f"LOG_SOFTMAX: output '{outs[0].name}' must be quantized with scale 16/256 "
                          f"and zero point {want} (got {so}, {zo}), as LiteRT requires")
        beta = 1.0
    return QSoftmaxAttrs(fa, op, dt.name, odt.name, float(np.float32(si)), float(np.float32(so)), int(zo),
                         _exp_table(si, beta))


def _infer_softmax(ctx: InferCtx) -> list:
    a = ctx.attrs
    op = ctx.op_name
    if len(ctx.shapes) != 1 or ctx.shapes[0] is None:
        raise OpError(f"{op}: expected 1 input")
    shape = tuple(ctx.shapes[0])
    if len(shape) < 1:
        raise OpError(f"{op}: input '{ctx.name(0)}' is a scalar; it needs at least 1 dimension "
                      "(the softmax axis); reshape it to [1]")
    return [(shape, I16 if isinstance(a, QSoftmax16Attrs) else np.dtype(a.out_dtype))]


def _softmax_reference(inputs: Sequence[np.ndarray | None], a: Any) -> list[np.ndarray]:
    if isinstance(a, QSoftmax16Attrs):
        return _softmax16_reference(inputs, a)
    x = inputs[0]
    odt = np.dtype(a.out_dtype)
    if x.size == 0:
        return [np.zeros(x.shape, odt)]
    xi = x.astype(I64)
    mx = xi.max(axis=-1, keepdims=True)
    e = a.table[mx - xi]  # float32
    # the row sum is a sequential float32 loop in LiteRT; cumsum accumulates in the same order
    s = np.cumsum(e, axis=-1, dtype=F32)[..., -1:]
    lo, hi = qmath.qrange(odt)
    with np.errstate(all="ignore"):
        if a.op == "SOFTMAX":
            inv = (np.float32(1) / (s * np.float32(a.so)).astype(F32)).astype(F32)
            p = (e * inv).astype(F32)
            if odt == U8:
                r = _f2i32((p + np.float32(0.5)).astype(F32))  # +0.5 and truncate; zero point unused
            else:
                # int32 addition of the zero point wraps, as in C: INT32_MIN - 128 -> large
                r = qmath.wrap32(_f2i32(qmath.round_half_away(p)) + a.zo)
        else:
            log_sum = np.vectorize(qmath.libm_f32("logf"), otypes=[F32])(s)
            si, so = np.float32(a.si), np.float32(a.so)
            scale = np.float32(si / so)
            pre = ((np.float32(si) * mx.astype(F32)).astype(F32) + log_sum).astype(F32) / so
            lp = ((scale * xi.astype(F32)).astype(F32) - pre.astype(F32)).astype(F32)
            # std::rint (round half to even) returns a float; the zero point is added in float32
            r = _f2i32((np.rint(lp) + np.float32(a.zo)).astype(F32))
    return [np.clip(r, lo, hi).astype(odt)]


# ---- SOFTMAX int16 (§4: two interpolated 513-entry tables) ------------------------------------------

def lut_int16(f: Any, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """LUTPopulate<int16> (double version): 512 samples of f over the input range with a
    midpoint-error correction, plus the end value; C round (half away) everywhere."""
    def rnd(v: float) -> float:
        return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)

    imin, imax = in_scale * (-32768 - in_zp), in_scale * (32767 - in_zp)
    omin, omax = out_scale * (-32768 - out_zp), out_scale * (32767 - out_zp)
    step = (imax - imin) / 512
    half = step / 2
    inv = 65536.0 / (omax - omin)
    lut = np.empty(513, I64)
    for i in range(512):
        val, mid, nxt = f(imin + i * step), f(imin + i * step + half), f(imin + (i + 1) * step)
        interp = rnd((nxt * inv + rnd(val * inv)) / 2)
        bias = rnd((interp - rnd(mid * inv)) / 2)
        lut[i] = min(max(rnd(val * inv) - bias, -32768.0), 32767.0)
    lut[512] = min(max(rnd(f(imax) * inv), -32768.0), 32767.0)
    return lut


def lut16_lookup(v: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """generic_int16_table_lookup: linear interpolation between lut[256 + (v >> 7)] and the next
    entry, int16 arithmetic (wrapping) as in C."""
    v = np.asarray(v, I64)
    idx = 256 + (v >> 7)
    base = lut[idx]
    slope = qmath.wrap32(lut[idx + 1] - base)
    slope = ((slope + 32768) & 0xFFFF) - 32768
    delta = (slope * (v & 127) + 64) >> 7
    delta = ((delta + 32768) & 0xFFFF) - 32768
    return ((base + delta + 32768) & 0xFFFF) - 32768


_RANGE16 = 65535


@dataclass(frozen=True, eq=False)
class QSoftmax16Attrs(Quantized):
    m: tuple[int, int]
    exp_lut: np.ndarray
    recip_lut: np.ndarray
    #: the activation type (the backends' dtype checks read it; not a field)
    dtype: ClassVar[str] = "int16"


def softmax16_exp(diff: np.ndarray, a: QSoftmax16Attrs) -> np.ndarray:
    """exp of x - max (<= 0) as LiteRT's int16 SOFTMAX computes it: the rescale to the exp
    table's input range, then the interpolated lookup (the compiled kernel tabulates it)."""
    return lut16_lookup(np.clip(qmath.mbqm(diff, *a.m) + 32767, -32768, 32767), a.exp_lut)


def softmax16_recip(v: np.ndarray, a: QSoftmax16Attrs) -> np.ndarray:
    """1 / (1 + x) of the row sum's normalised mantissa v (after LiteRT's offset), looked up."""
    return lut16_lookup(np.clip(v, -32768, 32767), a.recip_lut)


def _bind_softmax16(fa: Any, ins: list, outs: list) -> QSoftmax16Attrs:
    op = "SOFTMAX"
    _same_type(op, ins, outs, I16)
    (si, zi), (so, zo) = per_tensor_params(ins[0], op, "input"), per_tensor_params(outs[0], op, "output")
    if zi != 0 or zo != 0:
        raise OpError(f"SOFTMAX: int16 tensors must have zero point 0 (input {zi}, output {zo}), as "
                      "LiteRT requires")
    if abs(np.float32(so) - np.float32(1.0 / 32768)) > np.float32(0.001 / 32768):
        raise OpError(f"SOFTMAX: int16 output '{outs[0].name}' must be quantized with scale 1/32768 "
                      f"(got {so}), as LiteRT requires")
    real = float(np.float32(np.float32(si) * np.float32(fa.beta))) / (10.0 / 65535.0)
    exp_lut = lut_int16(math.exp, 10.0 / _RANGE16, 32767, 2.0 / _RANGE16, 0)
    recip_lut = lut_int16(lambda v: 1.0 / (1.0 + v), 1.0 / _RANGE16, -32768, 2.0 / _RANGE16, 0)
    return QSoftmax16Attrs(fa, qmath.quantize_multiplier(real), exp_lut, recip_lut)


def _softmax16_reference(inputs: Sequence[np.ndarray | None], a: QSoftmax16Attrs) -> list[np.ndarray]:
    x = inputs[0]
    if x.size == 0:
        return [np.zeros(x.shape, I16)]
    xi = x.astype(I64)
    diff = xi - xi.max(axis=-1, keepdims=True)
    e = softmax16_exp(diff, a)
    total = qmath.wrap32(e.sum(axis=-1, keepdims=True))
    # clz32 of the (positive) sum; the row max contributes exp(0) ~ 32767, so total > 0
    h = 32 - np.frexp(np.maximum(total, 1).astype(np.float64))[1].astype(I64)
    shifted = ((total << (h - 1)) + (1 << 13)) >> 14
    rec = softmax16_recip(shifted - ((1 << 15) + (1 << 16)), a)
    rs = 31 - h
    r = (e * rec + (np.int64(1) << (rs - 1))) >> rs
    return [np.clip(qmath.wrap32(r), 0, 32767).astype(I16)]


# ---- L2_NORMALIZATION --------------------------------------------------------------------------------

def inv_sqrt_multiplier(acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GetInvSqrtQuantizedMultiplierExp(acc, reverse_shift=-1), vectorised: (multiplier, left
    shift) with 1/sqrt(acc) ~ multiplier * 2**(shift - 31). Newton-Raphson in gemmlowp Q3.28
    fixed point, 5 iterations from x = 1; acc <= 1 gives (INT32_MAX, 0). A new primitive of this
    module (qmath has no inverse square root)."""
    acc = np.asarray(acc, I64)
    small = acc <= 1
    inp = np.where(small, 2, acc)
    shift = np.full(inp.shape, 11, I64)
    for _ in range(2):  # int32 input: at most two divisions by 4 bring it below 2**29
        big = inp >= (1 << 29)
        inp = np.where(big, inp // 4, inp)
        shift = shift + big
    clz = 32 - np.frexp(inp.astype(np.float64))[1].astype(I64)  # exact: inp < 2**29
    pairs = (clz - 1) // 2 - 1
    shift = shift - pairs
    inp = inp << (2 * pairs)
    half_input = qmath.rdbpot(inp >> 1, 1)
    half_three = (1 << 28) + (1 << 27)
    x = np.full(inp.shape, 1 << 28, I64)  # 1.0 in Q3.28
    for _ in range(5):
        x3 = qmath.saturating_shl(qmath.srdhm(qmath.srdhm(x, x), x), 6)
        x = qmath.saturating_shl(qmath.wrap32(qmath.srdhm(half_three, x) - qmath.srdhm(half_input, x3)), 3)
    x = qmath.srdhm(x, 1518500250)  # times sqrt(2)/2 in Q0.31
    x = np.where(shift < 0, qmath.wrap32(x << np.maximum(-shift, 0)), x)
    shift = np.maximum(shift, 0)
    return np.where(small, qmath.INT32_MAX, x), np.where(small, 0, -shift)


@dataclass(frozen=True)
class QL2Attrs(Quantized):
    dtype: str
    zi: int


def _bind_l2(fa: Any, ins: list, outs: list) -> QL2Attrs | None:
    dt = quantized_input_dtype(ins, (I8, U8, I16))
    if dt is None:
        return None
    if dt == I16:
        raise OpError("L2_NORMALIZATION: int16 input is not supported by LiteRT; use int8, uint8 or "
                      "float32")
    _same_type("L2_NORMALIZATION", ins, outs, dt)
    (_si, zi), (so, zo) = per_tensor_params(ins[0], "L2_NORMALIZATION", "input"), per_tensor_params(outs[0], "L2_NORMALIZATION", "output")
    want = 128 if dt == U8 else 0
    if float(np.float32(so)) != 1.0 / 128 or zo != want:
        raise OpError(f"L2_NORMALIZATION: output '{outs[0].name}' must be quantized with scale 1/128 "
                      f"and zero point {want} (got {so}, {zo}), as LiteRT requires")
    if getattr(fa, "activation", 0) != 0:
        raise OpError(f"L2_NORMALIZATION: fused activation {fa.activation} is not supported (LiteRT "
                      "accepts only NONE); apply the activation as a separate op")
    return QL2Attrs(fa, dt.name, int(zi))


def _infer_l2(ctx: InferCtx) -> list:
    a: QL2Attrs = ctx.attrs
    if len(ctx.shapes) != 1 or ctx.shapes[0] is None:
        raise OpError("L2_NORMALIZATION: expected 1 input")
    shape = tuple(ctx.shapes[0])
    if len(shape) < 1:
        raise OpError(f"L2_NORMALIZATION: input '{ctx.name(0)}' is a scalar; it needs at least 1 "
                      "dimension (reshape it to [1])")
    return [(shape, np.dtype(a.dtype))]


def _l2_reference(inputs: Sequence[np.ndarray | None], a: QL2Attrs) -> list[np.ndarray]:
    x = inputs[0]
    dt = np.dtype(a.dtype)
    if x.size == 0:
        return [np.zeros(x.shape, dt)]
    d = x.astype(I64) - a.zi
    acc = qmath.wrap32(np.sum(d * d, axis=-1, keepdims=True))  # LiteRT's int32 accumulator
    m, s = inv_sqrt_multiplier(acc)
    if dt == I8:
        r = np.clip(qmath.mbqm(d, m, s + 7), -128, 127)
    else:
        r = np.clip(128 + qmath.rdbpot(qmath.srdhm(128 * d, m), -s), 0, 255)
    return [r.astype(dt)]


# ---- registration ------------------------------------------------------------------------------------

for _name in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"):
    add_quantized(_name, QuantizedKernel(
        bind=lambda fa, ins, outs, _n=_name: _bind_reduce(_n, fa, ins, outs),
        reference=_reduce_reference, infer=infer_reduce))
for _name in ("SOFTMAX", "LOG_SOFTMAX"):
    add_quantized(_name, QuantizedKernel(
        bind=lambda fa, ins, outs, _n=_name: _bind_softmax(_n, fa, ins, outs),
        reference=_softmax_reference, infer=_infer_softmax))
add_quantized("L2_NORMALIZATION", QuantizedKernel(bind=_bind_l2, reference=_l2_reference, infer=_infer_l2))
