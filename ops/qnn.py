"""Integer kernels of the ops in ops/nn.py: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
AVERAGE_POOL_2D, MAX_POOL_2D for int8 (per-channel weights), legacy uint8 (per-tensor weights
with a zero point) and int16x8 (int16 activations, int8 weights, int64 or int32 bias).

The shape rules and options are nn.py's (`add_quantized` keeps one definition per op); this
module adds what the integer kernels need: the accumulator, the requantization multipliers and
LiteRT's rounding, bit for bit against its optimized builtin kernels (QUANTIZATION.md §3.1, §3.4):

* accumulator: acc = sum w * (x - zi) (- zw for uint8 / per-tensor FC) + bias, exact (products
  are summed in float64, exact far beyond any real layer's depth, then taken as int64);
  padding taps are skipped, which equals padding with the input zero point;
* multiplier per output channel: double(si) * double(sw[c]) / double(so) for int8/int16 convs
  and per-channel FC; double(float(si * sw)) / double(so) for uint8 and per-tensor FC;
* rounding: CONV_2D and FULLY_CONNECTED go through ruy (RHU2 on every channel);
  DEPTHWISE_CONV_2D uses RHU2 on channel blocks of 8 and MBQM on the last C mod 8 channels;
  int16x8 with an int64 bias uses the int64 overload (16-bit multiplier, round half up); 16x8
  FULLY_CONNECTED requantizes in double (round(acc * multiplier), half away from zero);
* output: + zo, clamped to the fused activation's quantized range.
Pools move no scale: the average rounds half away from zero over the in-image taps only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tflite_jit.ops import nn, qmath
from tflite_jit.ops.base import InferCtx, OpError, Quantized, QuantizedKernel, add_quantized
from tflite_jit.ops.common import I8, I16, U8, clamping_activation
from tflite_jit.ops.quant import quant_params

_QTYPES = (I8, U8, I16)


def _is_quantized_input(ins: list) -> bool:
    t = ins[0] if ins else None
    return t is not None and np.dtype(t.dtype) in _QTYPES


@dataclass(frozen=True)
class QConvAttrs(Quantized):
    dtype: str  # activation type: int8, uint8 or int16
    in_zp: int
    w_zps: tuple[int, ...]
    out_zp: int
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    real_multipliers: tuple[float, ...]  # 16x8 FULLY_CONNECTED requantizes in double
    act_min: int
    act_max: int
    rounding: str  # "rhu2" | "depthwise" | "mbqm" | "mbqm64" | "double"


def _params(t: Any, what: str, op: str) -> tuple[tuple[float, ...], tuple[int, ...], int]:
    q = quant_params(t)
    if q is None:
        raise OpError(f"{op}: {what} '{t.name}' has no quantization parameters; a quantized {op} "
                      f"needs scale and zero point on its input, filter and output")
    return q


def _bind_weighted(op: str, fa: Any, ins: list, outs: list, per_channel_axis: int) -> QConvAttrs | None:
    if not _is_quantized_input(ins):
        return None
    dt = np.dtype(ins[0].dtype)
    si, zi, _ = _params(ins[0], "input", op)
    sw, zw, axis = _params(ins[1], "filter", op)
    so, zo, _ = _params(outs[0], "output", op)
    if np.dtype(outs[0].dtype) != dt:
        raise OpError(f"{op}: output '{outs[0].name}' is {np.dtype(outs[0].dtype).name} but the input "
                      f"is {dt.name}; a quantized {op} keeps the activation type")
    every = np.array((*si, *sw, *so), np.float64)
    if not (np.all(every > 0) and np.all(np.isfinite(every))):
        raise OpError(f"{op}: input, filter and output scales must be positive")
    if len(sw) > 1 and axis != per_channel_axis:
        raise OpError(f"{op}: filter '{ins[1].name}' is quantized along dimension {axis}; LiteRT "
                      f"expects per-channel scales on dimension {per_channel_axis}")
    has_i64_bias = len(ins) > 2 and ins[2] is not None and np.dtype(ins[2].dtype) == np.int64
    # per-tensor FULLY_CONNECTED computes its multiplier from a float32 product, except the 16x8
    # reference kernel (int64 bias), which works per channel in double
    per_channel_math = dt != U8 and not (op == "FULLY_CONNECTED" and len(sw) == 1
                                         and (dt == I8 or not has_i64_bias))
    w = np.array(sw, np.float64)
    if per_channel_math:
        real = np.float64(si[0]) * w / np.float64(so[0])
    else:
        real = (np.float32(si[0]) * w.astype(np.float32)).astype(np.float64) / np.float64(so[0])
    reals = real.tolist()
    ms, shs = (v.tolist() for v in qmath.quantize_multipliers(real))
    act = clamping_activation(getattr(fa, "activation", "NONE"))  # skips TANH / SIGN_BIT, as float
    lo, hi = qmath.activation_range(act, so[0], zo[0], dt)
    if dt == I16:  # int64 bias: the reference 16x8 kernels; int32 or no bias: ruy's int16 path
        if has_i64_bias:
            rounding = "double" if op == "FULLY_CONNECTED" else "mbqm64"
        else:
            rounding = "rhu2"
    else:
        rounding = "depthwise" if op == "DEPTHWISE_CONV_2D" else "rhu2"
    return QConvAttrs(fa, dt.name, zi[0], tuple(zw), zo[0], tuple(ms), tuple(shs), tuple(reals),
                      lo, hi, rounding)


def _check_weighted(ctx: InferCtx) -> None:
    a: QConvAttrs = ctx.attrs
    op = ctx.op_name
    dt = np.dtype(a.dtype)
    wdt = np.dtype(ctx.dtypes[1])
    want_w = U8 if dt == U8 else I8
    if wdt != want_w:
        raise OpError(f"{op}: filter '{ctx.name(1)}' is {wdt.name}; a {dt.name} {op} needs "
                      f"{want_w.name} weights")
    if dt != U8 and any(a.w_zps) and (len(a.w_zps) > 1 or op != "FULLY_CONNECTED"):
        raise OpError(f"{op}: filter '{ctx.name(1)}' has non-zero zero points {a.w_zps}; int8 "
                      "weights must be symmetric (zero point 0)")
    if dt == I16 and (a.in_zp or a.out_zp):
        raise OpError(f"{op}: int16 activations must have zero point 0 (input {a.in_zp}, output "
                      f"{a.out_zp})")
    if len(ctx.shapes) > 2 and ctx.shapes[2] is not None:
        bdt = np.dtype(ctx.dtypes[2])
        ok = (np.dtype(np.int32), np.dtype(np.int64)) if dt == I16 else (np.dtype(np.int32),)
        if dt == I16 and op != "FULLY_CONNECTED":
            # LiteRT's 16x8 convolutions with an int32 bias return saturated values (probed:
            # every output 32767); TF's converter writes int64 biases for 16x8.
            ok = (np.dtype(np.int64),)
        if bdt not in ok:
            raise OpError(f"{op}: bias '{ctx.name(2)}' is {bdt.name}; a {dt.name} {op} takes "
                          f"{' or '.join(d.name for d in ok)} bias")
    n_out = ctx.shapes[1][3] if op == "DEPTHWISE_CONV_2D" else ctx.shapes[1][0]
    if len(a.multipliers) not in (1, n_out):
        raise OpError(f"{op}: filter '{ctx.name(1)}' has {len(a.multipliers)} scales for {n_out} "
                      "output channels")


def _requantize(acc: np.ndarray, a: QConvAttrs) -> np.ndarray:
    """acc [..., C] int64 -> activation dtype, with the op's rounding and clamp."""
    c = acc.shape[-1]
    m = np.broadcast_to(np.asarray(a.multipliers, np.int64), (c,))
    s = np.broadcast_to(np.asarray(a.shifts, np.int64), (c,))
    if a.rounding == "rhu2":
        r = qmath.rhu2(acc, m, s)
    elif a.rounding == "depthwise":
        head = c // 8 * 8
        r = np.concatenate([qmath.rhu2(acc[..., :head], m[:head], s[:head]),
                            qmath.mbqm(acc[..., head:], m[head:], s[head:])], axis=-1)
    elif a.rounding == "mbqm":
        r = qmath.mbqm(acc, m, s)
    elif a.rounding == "mbqm64":
        r = qmath.mbqm64(acc, m, s)
    else:  # "double": round(double(acc) * double multiplier), half away from zero
        real = np.broadcast_to(np.asarray(a.real_multipliers, np.float64), (c,))
        r = qmath.round_half_away(acc.astype(np.float64) * real).astype(np.int64)
    return np.clip(r + a.out_zp, a.act_min, a.act_max).astype(np.dtype(a.dtype))


def _centered(x: np.ndarray, zp: int) -> np.ndarray:
    return x.astype(np.float64) - float(zp)


def _filter(w: np.ndarray, a: QConvAttrs, axis: int) -> np.ndarray:
    zw = np.asarray(a.w_zps, np.float64)
    if zw.size > 1:
        shape = [1] * w.ndim
        shape[axis] = -1
        zw = zw.reshape(shape)
    return w.astype(np.float64) - zw


def _bias(inputs: Sequence[np.ndarray | None], c: int) -> np.ndarray:
    b = inputs[2] if len(inputs) > 2 else None
    return np.zeros(c, np.int64) if b is None else b.reshape(-1).astype(np.int64)


def _conv_reference(inputs: Sequence[np.ndarray | None], a: QConvAttrs) -> list[np.ndarray]:
    x, w = inputs[0], inputs[1]
    f: nn.ConvAttrs = a.base
    co, kh, kw, ci = w.shape
    groups = x.shape[3] // ci
    win = nn.windows(_centered(x, a.in_zp), (kh, kw), f.stride, f.dilation, f.padding, 0.0)
    acc = np.rint(nn.conv_windows(win, _filter(w, a, 0), groups)).astype(np.int64) + _bias(inputs, co)
    if groups != 1 and a.rounding == "rhu2":  # grouped conv leaves ruy for the reference kernel
        a = replace(a, rounding="mbqm")
    return [_requantize(acc, a)]


def _depthwise_reference(inputs: Sequence[np.ndarray | None], a: QConvAttrs) -> list[np.ndarray]:
    x, w = inputs[0], inputs[1]
    f: nn.ConvAttrs = a.base
    _, kh, kw, co = w.shape
    c = x.shape[3]
    m = co // c
    win = nn.windows(_centered(x, a.in_zp), (kh, kw), f.stride, f.dilation, f.padding, 0.0)
    taps = _filter(w, a, 3).reshape(kh, kw, c, m)
    acc = np.zeros(win.shape[:3] + (c, m), np.float64)
    for i in range(kh):
        for j in range(kw):
            acc += win[:, :, :, i, j, :, None] * taps[i, j]
    acc = np.rint(acc.reshape(acc.shape[:3] + (co,))).astype(np.int64) + _bias(inputs, co)
    return [_requantize(acc, a)]


def _fc_reference(inputs: Sequence[np.ndarray | None], a: QConvAttrs) -> list[np.ndarray]:
    x, w = inputs[0], inputs[1]
    f: nn.FcAttrs = a.base
    units, depth = w.shape
    rows = x.size // depth
    xm = _centered(x.reshape(-1)[:rows * depth].reshape(rows, depth), a.in_zp)
    acc = np.rint(xm @ _filter(w, a, 0).T).astype(np.int64) + _bias(inputs, units)
    if f.keep_num_dims:
        acc = acc.reshape(x.shape[:-1] + (units,))
    return [_requantize(acc, a)]


for _name, _ref, _axis in (("CONV_2D", _conv_reference, 0), ("DEPTHWISE_CONV_2D", _depthwise_reference, 3),
                           ("FULLY_CONNECTED", _fc_reference, 0)):
    add_quantized(_name, QuantizedKernel(
        bind=lambda fa, ins, outs, _n=_name, _ax=_axis: _bind_weighted(_n, fa, ins, outs, _ax),
        reference=_ref, check=_check_weighted))


# ---- pooling ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QPoolAttrs(Quantized):
    dtype: str
    act_min: int
    act_max: int


def _bind_pool(op: str, fa: nn.PoolAttrs, ins: list, outs: list) -> QPoolAttrs | None:
    if not _is_quantized_input(ins):
        return None
    dt = np.dtype(ins[0].dtype)
    q = quant_params(outs[0]) or quant_params(ins[0])
    if q is None:
        raise OpError(f"{op}: quantized input '{ins[0].name}' and output '{outs[0].name}' have no "
                      "quantization parameters")
    if dt == I16 and (q[1][0] != 0):
        raise OpError(f"{op}: int16 output '{outs[0].name}' must have zero point 0")
    act = clamping_activation(fa.activation)
    lo, hi = qmath.activation_range(act, q[0][0], q[1][0], dt)
    return QPoolAttrs(fa, dt.name, lo, hi)


def _avg_pool_reference(inputs: Sequence[np.ndarray | None], a: QPoolAttrs) -> list[np.ndarray]:
    x = inputs[0]
    f: nn.PoolAttrs = a.base
    win = nn.windows(x.astype(np.int64), f.filter, f.stride, (1, 1), f.padding, 0)
    total = win.sum(axis=(3, 4))
    cnt_h = nn.in_image_counts(f.padding, x.shape[1], f.filter_h, f.stride_h).astype(np.int64)
    cnt_w = nn.in_image_counts(f.padding, x.shape[2], f.filter_w, f.stride_w).astype(np.int64)
    n = np.maximum((cnt_h[:, None] * cnt_w[None, :])[None, :, :, None], 1)
    avg = np.where(total > 0, (total + n // 2) // n, -((-total + n // 2) // n))
    return [np.clip(avg, a.act_min, a.act_max).astype(np.dtype(a.dtype))]


def _max_pool_reference(inputs: Sequence[np.ndarray | None], a: QPoolAttrs) -> list[np.ndarray]:
    x = inputs[0]
    f: nn.PoolAttrs = a.base
    win = nn.windows(x.astype(np.int64), f.filter, f.stride, (1, 1), f.padding, -(1 << 40))
    return [np.clip(win.max(axis=(3, 4)), a.act_min, a.act_max).astype(np.dtype(a.dtype))]


for _name, _ref in (("AVERAGE_POOL_2D", _avg_pool_reference), ("MAX_POOL_2D", _max_pool_reference)):
    add_quantized(_name, QuantizedKernel(
        bind=lambda fa, ins, outs, _n=_name: _bind_pool(_n, fa, ins, outs), reference=_ref))
