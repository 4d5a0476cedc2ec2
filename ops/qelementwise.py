"""Integer kernels of elementwise ops: ADD, SUB, MUL (int8, uint8, int16), the table ops
LOGISTIC, TANH, GELU (int8, uint8, int16), ELU, HARD_SWISH (int8, uint8), LEAKY_RELU and the standalone RELU,
RELU6, RELU_N1_TO_1 (int8, uint8, int16 where LiteRT has it).

Semantics are LiteRT's builtin kernels, bit for bit (QUANTIZATION.md §3.2, 3.3, 3.8-3.10):
* ADD/SUB rescale both inputs to a common scale with 20 extra bits (15 for int16) through three
  QuantizeMultiplierSmallerThanOneExp multipliers computed in double, then MBQM to the output.
* MUL uses ONE multiplier computed in float32: (s1 * s2) / so.
* Table ops: an 8-bit input has only 256 values, so LiteRT evaluates the float function once per
  value with C libm in float32 and rounds with roundf; so do we (`qmath.lut8`), and the kernel is a
  gather. HARD_SWISH's integer recipe is also evaluated per value into a table. int16 LOGISTIC
  and TANH are LiteRT's fixed-point kernels (ops/qsigmoid16.py), int16 GELU LiteRT's interpolated
  513-entry table (qmath.lut16), each evaluated for all 65536 inputs into a table, so they are
  gathers too.
* LEAKY_RELU and the RELU family: MBQM of (q - zi) with float32-computed multipliers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops import elementwise, qmath, qsigmoid16  # noqa: F401  (the float ops register first)
from tflite_jit.ops import math as _float_math  # noqa: F401
from tflite_jit.ops.base import InferCtx, OpError, Quantized, QuantizedKernel, add_quantized
from tflite_jit.ops.common import I8, I16, U8, broadcast_shapes, clamping_activation
from tflite_jit.ops.quant import check_same_type, per_tensor_params, quantized_input_dtype


def _zero_zp_for_int16(op: str, dt: np.dtype, *zps: int) -> None:
    if dt == I16 and any(zps):
        raise OpError(f"{op}: int16 tensors must have zero point 0 (got {zps})")


def _act(a: Any) -> str:
    return clamping_activation(getattr(a, "activation", "NONE"))


def _binary_infer(ctx: InferCtx) -> list:
    if len(ctx.shapes) != 2 or any(s is None for s in ctx.shapes):
        raise OpError(f"{ctx.op_name}: expected 2 inputs")
    shape = broadcast_shapes(tuple(ctx.shapes[0]), tuple(ctx.shapes[1]), ctx.op_name)
    return [(shape, np.dtype(ctx.attrs.dtype))]


def _unary_infer(ctx: InferCtx) -> list:
    if len(ctx.shapes) != 1 or ctx.shapes[0] is None:
        raise OpError(f"{ctx.op_name}: expected 1 input")
    return [(tuple(ctx.shapes[0]), np.dtype(ctx.attrs.dtype))]


# ---- ADD / SUB -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QAddAttrs(Quantized):
    dtype: str
    sub: bool
    z1: int
    z2: int
    zo: int
    left_shift: int
    m1: tuple[int, int]
    m2: tuple[int, int]
    mo: tuple[int, int]
    act_min: int
    act_max: int


def _is_pot(s: float) -> bool:
    return math.frexp(s)[0] == 0.5


def _bind_add(op: str, fa: Any, ins: list, outs: list) -> QAddAttrs | None:
    dt = quantized_input_dtype(ins, (I8, U8, I16))
    if dt is None:
        return None
    check_same_type(op, [*ins, *outs], dt)
    (s1, z1), (s2, z2), (so, zo) = per_tensor_params(ins[0], op, "input"), per_tensor_params(ins[1], op, "input"), per_tensor_params(outs[0], op, "output")
    _zero_zp_for_int16(op, dt, z1, z2, zo)
    if dt == I16 and _is_pot(s1) and _is_pot(s2) and _is_pot(so):
        raise OpError(f"{op}: int16 with power-of-two scales takes LiteRT's shift-only path "
                      "(pot_scale_int16), which tflite_jit does not implement; use general scales")
    ls = 15 if dt == I16 else 20
    twice_max = float(np.float32(2) * max(np.float32(s1), np.float32(s2)))
    real_out = twice_max / float(np.float32(np.float32(1 << ls) * np.float32(so)))
    lo, hi = qmath.activation_range(_act(fa), so, zo, dt)
    return QAddAttrs(fa, dt.name, op == "SUB", z1, z2, zo, ls,
                     qmath.quantize_multiplier(float(np.float32(s1)) / twice_max),
                     qmath.quantize_multiplier(float(np.float32(s2)) / twice_max),
                     qmath.quantize_multiplier(real_out), lo, hi)


def _add_reference(inputs: Sequence[np.ndarray | None], a: QAddAttrs) -> list[np.ndarray]:
    x = inputs[0].astype(np.int64) - a.z1
    y = inputs[1].astype(np.int64) - a.z2
    shape = np.broadcast_shapes(x.shape, y.shape)
    xs = qmath.mbqm(x << a.left_shift, *a.m1)
    ys = qmath.mbqm(y << a.left_shift, *a.m2)
    if x.shape == y.shape and not a.sub:  # (SUB has no vector path: it rounds twice everywhere)
        # LiteRT's optimized elementwise ADD, on 16-element vector blocks, folds the input
        # shift into the left shift and rounds once (SRDHM); the scalar tail rounds twice.
        xs, ys = xs.reshape(-1), ys.reshape(-1)
        n = xs.size // 16 * 16
        for flat, src, (m, sh) in ((xs, x, a.m1), (ys, y, a.m2)):
            head = src.reshape(-1)[:n]
            flat[:n] = qmath.srdhm(qmath.wrap32(head << (a.left_shift + sh)), m) if a.left_shift + sh >= 0 \
                else flat[:n]
        xs, ys = xs.reshape(shape), ys.reshape(shape)
    r = qmath.mbqm(xs - ys if a.sub else xs + ys, *a.mo) + a.zo
    return [np.clip(r, a.act_min, a.act_max).astype(np.dtype(a.dtype))]


# ---- MUL ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QMulAttrs(Quantized):
    dtype: str
    z1: int
    z2: int
    zo: int
    m: tuple[int, int]
    act_min: int
    act_max: int


def _bind_mul(fa: Any, ins: list, outs: list) -> QMulAttrs | None:
    dt = quantized_input_dtype(ins, (I8, U8, I16))
    if dt is None:
        return None
    check_same_type("MUL", [*ins, *outs], dt)
    (s1, z1), (s2, z2), (so, zo) = (per_tensor_params(ins[0], "MUL", "input"), per_tensor_params(ins[1], "MUL", "input"),
                                    per_tensor_params(outs[0], "MUL", "output"))
    _zero_zp_for_int16("MUL", dt, z1, z2, zo)
    real = float(np.float32(np.float32(s1) * np.float32(s2)) / np.float32(so))
    lo, hi = qmath.activation_range(_act(fa), so, zo, dt)
    return QMulAttrs(fa, dt.name, z1, z2, zo, qmath.quantize_multiplier(real), lo, hi)


def _mul_reference(inputs: Sequence[np.ndarray | None], a: QMulAttrs) -> list[np.ndarray]:
    p = (inputs[0].astype(np.int64) - a.z1) * (inputs[1].astype(np.int64) - a.z2)
    r = qmath.mbqm(p, *a.m) + a.zo
    return [np.clip(r, a.act_min, a.act_max).astype(np.dtype(a.dtype))]


# ---- table ops ---------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class QTableAttrs(Quantized):
    dtype: str
    table: np.ndarray  # one entry per input value (256, or 65536 for int16), indexed by q - qmin


def _table_reference(inputs: Sequence[np.ndarray | None], a: QTableAttrs) -> list[np.ndarray]:
    lo, _ = qmath.qrange(np.dtype(a.dtype))
    return [a.table[inputs[0].astype(np.int64) - lo]]


def _f32(name: str) -> Callable[[float], np.float32]:
    return qmath.libm_f32(name)


def _logistic(x: np.float32) -> np.float32:
    return np.float32(np.float32(1) / np.float32(np.float32(1) + _f32("expf")(-x)))


def _tanh(x: np.float32) -> np.float32:
    return _f32("tanhf")(x)


def _elu(x: np.float32) -> np.float32:
    return _f32("expm1f")(x) if x < 0 else x


def _gelu(approximate: bool) -> Callable[[np.float32], np.float32]:
    if approximate:
        k = np.float32(math.sqrt(2.0 / math.pi))

        def f(x: np.float32) -> np.float32:
            inner = np.float32(k * np.float32(x + np.float32(np.float32(np.float32(0.044715) * x) * x) * x))
            return np.float32(np.float32(np.float32(0.5) * x) * np.float32(np.float32(1) + _f32("tanhf")(inner)))
        return f
    neg_sqrt_half = np.float32(-math.sqrt(0.5))
    return lambda x: np.float32(np.float32(np.float32(0.5) * x) * _f32("erfcf")(np.float32(x * neg_sqrt_half)))


def _hard_swish_table(si: float, zi: int, so: float, zo: int, dt: np.dtype) -> np.ndarray:
    """LiteRT's integer HARD_SWISH (reference/hard_swish.h), evaluated for every input value."""
    hi_scale = np.float32(np.float32(1.0 / 128.0) * np.float32(si))
    m1, e1 = qmath.quantize_multiplier(float(np.float32(hi_scale / np.float32(so))))
    m2, e2 = qmath.quantize_multiplier(float(np.float32(hi_scale / np.float32(np.float32(3.0) / np.float32(32768.0)))))

    def down16(m: int) -> int:
        return 32767 if m >= (1 << 31) - 1 - (1 << 15) else (m + (1 << 15)) >> 16

    def srdhm16(a: np.ndarray, b: int) -> np.ndarray:
        r = (a * b + (1 << 14)) >> 15
        return np.where((a == -32768) & (b == -32768), 32767, r)

    def sat16(v: np.ndarray) -> np.ndarray:
        return np.clip(v, -32768, 32767)

    lo, hi = qmath.qrange(dt)
    q = np.arange(lo, hi + 1, dtype=np.int64)
    v = (q - zi) * 128
    p = srdhm16(v, down16(m1))
    r = v
    if e2 > 0:
        r = sat16(r << (e2 - 1))
    r = srdhm16(r, down16(m2))
    if e2 > 0:
        r = sat16(2 * r)
    elif e2 < 0:
        r = qmath.rdbpot(r, -e2)
    r = (r + 32768) >> 1
    prod = r * p
    o = np.where(prod >= 0, prod >> 15, -((-prod) >> 15))  # truncating doubling high multiply
    out = qmath.rdbpot(o, -e1) + zo
    return np.clip(out, lo, hi).astype(dt)


# LiteRT's ELU has no uint8 kernel; LOGISTIC, TANH and GELU also take int16; the others int8 and uint8
_TABLE_TYPES = {"ELU": (I8,), "LOGISTIC": (I8, U8, I16), "TANH": (I8, U8, I16), "GELU": (I8, U8, I16)}


def _bind_table(op: str, fa: Any, ins: list, outs: list) -> QTableAttrs | None:
    dt = quantized_input_dtype(ins, (I8, U8, I16))
    if dt is None:
        return None
    if dt not in _TABLE_TYPES.get(op, (I8, U8)):
        raise OpError(f"{op}: input '{ins[0].name}' is {dt.name}; LiteRT's {op} takes "
                      f"{' or '.join(d.name for d in _TABLE_TYPES.get(op, (I8, U8)))} quantized input")
    check_same_type(op, [*ins, *outs], dt)
    (si, zi), (so, zo) = per_tensor_params(ins[0], op, "input"), per_tensor_params(outs[0], op, "output")
    if dt == I16 and op == "GELU":
        # LiteRT's int16 GELU: LUTPopulate<int16_t> of the same float function and the
        # interpolating LUTLookup, evaluated here for every input value
        lut = qmath.lut16(_gelu(fa.approximate), si, zi, so, zo)
        return QTableAttrs(fa, dt.name, qmath.lut16_lookup(qsigmoid16.ALL_INT16, lut).astype(I16))
    if dt == I16:
        if zi or zo or np.float32(so) != np.float32(1.0 / 32768):
            raise OpError(f"{op}: int16 input '{ins[0].name}' and output '{outs[0].name}' need zero "
                          f"point 0 and output scale 1/32768 (got input zero point {zi}, output "
                          f"{so}, {zo}), as LiteRT requires")
        return QTableAttrs(fa, dt.name, qsigmoid16.int16_table(op, si))
    if op == "LOGISTIC":
        want_zp = -128 if dt == I8 else 0
        if np.float32(so) != np.float32(1.0 / 256) or zo != want_zp:
            raise OpError(f"LOGISTIC: output '{outs[0].name}' must be quantized with scale 1/256 and "
                          f"zero point {want_zp} (got {so}, {zo}), as LiteRT requires")
    if op == "HARD_SWISH":
        table = _hard_swish_table(si, zi, so, zo, dt)
    else:
        f = {"LOGISTIC": _logistic, "TANH": _tanh, "ELU": _elu}.get(op) or _gelu(fa.approximate)
        table = qmath.lut8(f, si, zi, so, zo, dt)
    return QTableAttrs(fa, dt.name, table)


# ---- LEAKY_RELU, RELU family ---------------------------------------------------------------------------

@dataclass(frozen=True)
class QRescaleAttrs(Quantized):
    dtype: str
    zi: int
    zo: int
    m_pos: tuple[int, int]
    m_neg: tuple[int, int]
    neg_sign: int
    act_min: int
    act_max: int


def _bind_rescale(op: str, fa: Any, ins: list, outs: list) -> QRescaleAttrs | None:
    dt = quantized_input_dtype(ins, (I8, U8, I16))
    if dt is None:
        return None
    if dt == I16 and op == "RELU_N1_TO_1":
        raise OpError("RELU_N1_TO_1: LiteRT has no int16 kernel for it; use int8 or float")
    check_same_type(op, [*ins, *outs], dt)
    (si, zi), (so, zo) = per_tensor_params(ins[0], op, "input"), per_tensor_params(outs[0], op, "output")
    _zero_zp_for_int16(op, dt, zi, zo)
    lo, hi = qmath.qrange(dt)
    m_pos = qmath.quantize_multiplier(float(np.float32(np.float32(si) / np.float32(so))))
    m_neg, sign = m_pos, 1
    if op == "LEAKY_RELU":
        alpha = np.float32(fa.alpha)
        real = np.float32(np.float32(np.float32(si) * alpha) / np.float32(so))
        m_neg, sign = qmath.quantize_multiplier(abs(float(real))), (-1 if real < 0 else 1)
    else:
        bounds = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}[op]
        lo = max(lo, zo + int(qmath.round_half_away(np.float32(np.float32(bounds[0]) / np.float32(so)))))
        if bounds[1] is not None:
            hi = min(hi, zo + int(qmath.round_half_away(np.float32(np.float32(bounds[1]) / np.float32(so)))))
    return QRescaleAttrs(fa, dt.name, zi, zo, m_pos, m_neg, sign, lo, hi)


def _rescale_reference(inputs: Sequence[np.ndarray | None], a: QRescaleAttrs) -> list[np.ndarray]:
    d = inputs[0].astype(np.int64) - a.zi
    pos = qmath.mbqm(d, *a.m_pos)
    neg = a.neg_sign * qmath.mbqm(d, *a.m_neg)
    r = a.zo + np.where(d >= 0, pos, neg)
    return [np.clip(r, a.act_min, a.act_max).astype(np.dtype(a.dtype))]


# ---- registration ----------------------------------------------------------------------------------------

for _name in ("ADD", "SUB"):
    add_quantized(_name, QuantizedKernel(
        bind=lambda fa, ins, outs, _n=_name: _bind_add(_n, fa, ins, outs), reference=_add_reference,
        infer=_binary_infer))
add_quantized("MUL", QuantizedKernel(bind=_bind_mul, reference=_mul_reference, infer=_binary_infer))
for _name in ("LOGISTIC", "TANH", "GELU", "ELU", "HARD_SWISH"):
    add_quantized(_name, QuantizedKernel(
        bind=lambda fa, ins, outs, _n=_name: _bind_table(_n, fa, ins, outs), reference=_table_reference,
        infer=_unary_infer))
for _name in ("LEAKY_RELU", "RELU", "RELU6", "RELU_N1_TO_1"):
    add_quantized(_name, QuantizedKernel(
        bind=lambda fa, ins, outs, _n=_name: _bind_rescale(_n, fa, ins, outs), reference=_rescale_reference,
        infer=_unary_infer))
