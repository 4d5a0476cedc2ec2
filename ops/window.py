"""Window ops: L2_POOL_2D, CONV_3D_TRANSPOSE, DILATE and REDUCE_WINDOW (reference kernels).

Shape rules make the checks LiteRT's kernels make in Prepare/Eval, plus the ones it skips where
skipping them would read or write out of bounds (each such check says so in a comment).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops.base import Cost, InferCtx, OpError, PatternKind, ShapeDtype
from tflite_jit.ops.common import F32, define, float_bytes, movement_cost, numel, shape_of
from tflite_jit.ops.image import Conv3DAttrs, parse_conv3d
from tflite_jit.ops.nn import (
    PoolAttrs,
    add_bias_clamp,
    axis_geometry,
    parse_pool,
    pool_counts,
    require_rank,
    spatial_out,
    windows,
)


def _require_input(ctx: InferCtx, i: int, what: str) -> tuple[int, ...]:
    s = shape_of(ctx, i)
    if s is None:
        raise OpError(f"{ctx.op_name}: input {i} ({what}) is required but omitted")
    return s


def _n_inputs(ctx: InferCtx, allowed: Sequence[int], names: str) -> None:
    if len(ctx.shapes) not in tuple(allowed):
        raise OpError(f"{ctx.op_name}: expected {' or '.join(map(str, allowed))} inputs ({names}), "
                      f"got {len(ctx.shapes)}")


# ---- L2_POOL_2D (AVERAGE_POOL_2D's options) ---------------------------------------------------------


def _l2pool_infer(ctx: InferCtx) -> list[ShapeDtype]:
    a: PoolAttrs = ctx.attrs
    _n_inputs(ctx, (1,), "input")
    _require_input(ctx, 0, "input")
    if np.dtype(ctx.dtypes[0]) != F32:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' is {np.dtype(ctx.dtypes[0]).name}; LiteRT's "
                      "L2 pool kernel supports float32 only (dequantize the input first)")
    n, h, w, c = require_rank(ctx, 0, 4, "input")
    oh, ow = spatial_out(ctx, a.padding, (h, w), a.filter, a.stride, (1, 1))
    return [((n, oh, ow, c), F32)]


def _l2pool_reference(inputs: Sequence[np.ndarray | None], a: PoolAttrs) -> list[np.ndarray]:
    x = np.asarray(inputs[0], np.float32)
    win = windows(x * x, a.filter, a.stride, (1, 1), a.padding, 0.0)
    total = win.sum(axis=(3, 4), dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (total / pool_counts(a, x.shape)).astype(np.float32)
    # TANH / SIGN_BIT have no clamp range in LiteRT's float kernels: add_bias_clamp skips them as it does
    return [add_bias_clamp(np.sqrt(mean), None, a.activation)]


def _l2pool_cost(ins: list, outs: list, a: PoolAttrs) -> Cost:
    return Cost(flops=2.0 * numel(outs[0]) * a.filter_h * a.filter_w, bytes=float_bytes([*ins, *outs]))


# ---- CONV_3D_TRANSPOSE (CONV_3D's options) ---------------------------------------------------------


def _conv3dt_plan(ctx_name: str, a: Conv3DAttrs, out_shape: Sequence[int], filt: tuple[int, ...],
                  x: tuple[int, ...]) -> list[int]:
    """Check the requested output shape against input and filter; return the leading padding
    per spatial axis (LiteRT: the forward conv of the output, with this padding, gives the input)."""
    out_shape = [int(v) for v in out_shape]
    if any(v < 0 for v in out_shape):
        raise OpError(f"{ctx_name}: output_shape {out_shape} has a negative dimension")
    if out_shape[0] != x[0]:
        raise OpError(f"{ctx_name}: output_shape batch {out_shape[0]} must equal the input batch {x[0]}")
    # LiteRT only checks that the output channels are a multiple of the filter's; its kernel
    # then reads the filter as if it had output_shape[4] channels (out of bounds): require equality
    if out_shape[4] != filt[3]:
        raise OpError(f"{ctx_name}: output_shape channels {out_shape[4]} must equal the filter's "
                      f"output channels (filter dim 3) {filt[3]}")
    pads = []
    for name, o, k, s, d, i in zip(("depth", "height", "width"), out_shape[1:4], filt[:3], a.stride,
                                   a.dilation, x[1:4]):
        g = axis_geometry(a.padding, o, k, s, d)
        if g.out != i:
            raise OpError(f"{ctx_name}: output_shape {name} {o} is inconsistent with the input {name} {i}: "
                          f"a {a.padding} convolution of it with filter {k}, stride {s}, dilation {d} gives "
                          f"{g.out}; fix output_shape (input 0)")
        pads.append(g.pad_before)
    return pads


def _conv3dt_infer(ctx: InferCtx) -> list[ShapeDtype]:
    a: Conv3DAttrs = ctx.attrs
    _n_inputs(ctx, (3, 4), "output_shape, filter, input[, bias]")
    os_shape = _require_input(ctx, 0, "output_shape")
    filt = _require_input(ctx, 1, "filter")
    x = _require_input(ctx, 2, "input")
    if len(os_shape) != 1 or os_shape[0] != 5:
        raise OpError(f"{ctx.op_name}: output_shape '{ctx.name(0)}' must be a 1-D tensor of 5 elements, "
                      f"got shape {list(os_shape)}")
    if np.dtype(ctx.dtypes[0]) != np.int32:
        raise OpError(f"{ctx.op_name}: output_shape '{ctx.name(0)}' must be int32, got "
                      f"{np.dtype(ctx.dtypes[0]).name}")
    if len(x) != 5:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(2)}' must be 5-D [batch, depth, height, width, "
                      f"channels], got {list(x)}")
    if len(filt) != 5:
        raise OpError(f"{ctx.op_name}: filter '{ctx.name(1)}' must be 5-D [depth, height, width, "
                      f"out_channels, in_channels], got {list(filt)}")
    if np.dtype(ctx.dtypes[2]) != F32 or np.dtype(ctx.dtypes[1]) != F32:
        raise OpError(f"{ctx.op_name}: input and filter must be float32 (got "
                      f"{np.dtype(ctx.dtypes[2]).name} and {np.dtype(ctx.dtypes[1]).name}); quantized "
                      "CONV_3D_TRANSPOSE is not supported")
    if x[4] != filt[4]:
        raise OpError(f"{ctx.op_name}: input channels {x[4]} must equal the filter's input channels "
                      f"(filter dim 4) {filt[4]}")
    for name, v in zip(("stride_d", "stride_h", "stride_w", "dilation_d_factor", "dilation_h_factor",
                        "dilation_w_factor"), a.stride + a.dilation):
        if v < 1:  # LiteRT does not check; a zero stride divides by zero in its padding maths
            raise OpError(f"{ctx.op_name}: option {name} is {v}; it must be >= 1")
    if min(filt[:3]) < 1:
        raise OpError(f"{ctx.op_name}: filter '{ctx.name(1)}' has an empty spatial size {list(filt[:3])}")
    b = shape_of(ctx, 3)
    if b is not None:
        if numel(b) != filt[3]:
            raise OpError(f"{ctx.op_name}: bias '{ctx.name(3)}' has {numel(b)} elements; it needs "
                          f"{filt[3]} (the filter's output channels)")
        if np.dtype(ctx.dtypes[3]) != F32:
            raise OpError(f"{ctx.op_name}: bias '{ctx.name(3)}' must be float32")
    out_shape = tuple(int(v) for v in np.asarray(ctx.value(0, "output_shape")).reshape(-1))
    _conv3dt_plan(ctx.op_name, a, out_shape, filt, x)
    return [(out_shape, F32)]


def _conv3dt_reference(inputs: Sequence[np.ndarray | None], a: Conv3DAttrs) -> list[np.ndarray]:
    out_shape = [int(v) for v in np.asarray(inputs[0]).reshape(-1)]
    filt = np.asarray(inputs[1], np.float32)
    x = np.asarray(inputs[2], np.float32)
    bias = None if len(inputs) < 4 or inputs[3] is None else np.asarray(inputs[3], np.float32)
    pads = _conv3dt_plan("CONV_3D_TRANSPOSE", a, out_shape, filt.shape, x.shape)
    n, oc = out_shape[0], out_shape[4]
    kd, kh, kw = filt.shape[:3]
    # scatter every input voxel times each filter tap into a buffer wide enough for all taps
    # and the requested output window, then cut the output window out of it
    ext = []
    for i, k, s, d, p, o in zip(x.shape[1:4], filt.shape[:3], a.stride, a.dilation, pads, out_shape[1:4]):
        full = (i - 1) * s + (k - 1) * d + 1 if i > 0 else 0
        ext.append(max(full, p + o))
    buf = np.zeros((n, *ext, oc), np.float32)
    (sd, sh, sw), (dd, dh, dw) = a.stride, a.dilation
    di, hi, wi = x.shape[1:4]
    for td in range(kd):
        for th in range(kh):
            for tw in range(kw):
                contrib = np.matmul(x, filt[td, th, tw].T)  # [n, d, h, w, oc]
                buf[:, td * dd: td * dd + (di - 1) * sd + 1: sd,
                    th * dh: th * dh + (hi - 1) * sh + 1: sh,
                    tw * dw: tw * dw + (wi - 1) * sw + 1: sw, :] += contrib
    pd, ph, pw = pads
    out = buf[:, pd:pd + out_shape[1], ph:ph + out_shape[2], pw:pw + out_shape[3], :]
    return [add_bias_clamp(out, bias, a.activation)]


def _conv3dt_cost(ins: list, outs: list, a: Conv3DAttrs) -> Cost:
    return Cost(flops=2.0 * numel(ins[2]) * numel(ins[1]) / max(1, ins[1][4]) if ins[1] else 0.0,
                bytes=float_bytes([*ins[1:], *outs]))


# ---- DILATE ----------------------------------------------------------------------------------------

_DILATE_TYPES = tuple(np.dtype(t) for t in (np.float32, np.float16, np.float64, np.int8, np.int16, np.int32,
                                            np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.bool_,
                                            np.complex64, np.complex128))


def _dilate_check(op: str, x_shape: tuple[int, ...], dil: np.ndarray) -> tuple[int, ...]:
    dil = np.asarray(dil)
    if dil.ndim != 1 or dil.shape[0] != len(x_shape):
        raise OpError(f"{op}: dilations must be a 1-D int32 tensor with one factor per input dimension "
                      f"({len(x_shape)}), got shape {list(dil.shape)}")
    if np.any(dil < 1):
        raise OpError(f"{op}: dilation factors must be >= 1, got {dil.tolist()}")
    # an empty axis stays empty (LiteRT's (d - 1) * factor + 1 would go negative for factor > 1)
    return tuple(0 if d == 0 else (d - 1) * int(f) + 1 for d, f in zip(x_shape, dil))


def _dilate_infer(ctx: InferCtx) -> list[ShapeDtype]:
    _n_inputs(ctx, (3,), "input, dilations, padding_value")
    x = _require_input(ctx, 0, "input")
    dil_shape = _require_input(ctx, 1, "dilations")
    pv = _require_input(ctx, 2, "padding_value")
    dt = np.dtype(ctx.dtypes[0])
    if dt not in _DILATE_TYPES:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' has unsupported type {dt.name}")
    if len(x) == 0:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' must have rank >= 1 (got a scalar)")
    if np.dtype(ctx.dtypes[2]) != dt:
        raise OpError(f"{ctx.op_name}: padding_value '{ctx.name(2)}' is {np.dtype(ctx.dtypes[2]).name} but "
                      f"the input is {dt.name}; they must have the same type")
    if numel(pv) < 1:  # LiteRT reads one element from it
        raise OpError(f"{ctx.op_name}: padding_value '{ctx.name(2)}' is empty; give a scalar")
    if np.dtype(ctx.dtypes[1]) != np.int32:
        raise OpError(f"{ctx.op_name}: dilations '{ctx.name(1)}' must be int32, got {np.dtype(ctx.dtypes[1]).name}")
    if len(dil_shape) != 1 or dil_shape[0] != len(x):
        raise OpError(f"{ctx.op_name}: dilations '{ctx.name(1)}' must have shape [{len(x)}] (one factor per "
                      f"input dimension), got {list(dil_shape)}")
    return [(_dilate_check(ctx.op_name, x, ctx.value(1, "dilations")), dt)]


def _dilate_reference(inputs: Sequence[np.ndarray | None], a: Any) -> list[np.ndarray]:
    x = np.asarray(inputs[0])
    out_shape = _dilate_check("DILATE", x.shape, inputs[1])
    fill = np.asarray(inputs[2]).reshape(-1)[0]
    out = np.full(out_shape, fill, dtype=x.dtype)
    dil = [int(v) for v in np.asarray(inputs[1])]
    out[tuple(slice(None, None, f) for f in dil)] = x
    return [out]


# ---- REDUCE_WINDOW ---------------------------------------------------------------------------------

_RW_FUNCS = {1: "ADD", 2: "MUL", 3: "MINIMUM", 4: "MAXIMUM", 5: "ALL", 6: "ANY"}
_RW_TYPES = tuple(np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                        np.float32, np.float64))


@dataclass(frozen=True)
class ReduceWindowAttrs:
    function: str


def _parse_reduce_window(o: dict[str, Any]) -> ReduceWindowAttrs:
    code = int(o.get("reduce_function", 0) or 0)
    if code not in _RW_FUNCS:
        raise OpError(f"REDUCE_WINDOW: reduce_function {code} is not supported (use 1 ADD, 2 MUL, "
                      "3 MINIMUM, 4 MAXIMUM, 5 ALL or 6 ANY)")
    return ReduceWindowAttrs(_RW_FUNCS[code])


def _rw_plan(op: str, x_shape: tuple[int, ...], win, strides, dils) -> tuple[int, ...]:
    rank = len(x_shape)
    vecs = []
    for what, v in (("window_dimensions", win), ("window_strides", strides), ("window_dilations", dils)):
        v = np.asarray(v)
        if v.ndim != 1 or v.shape[0] != rank:  # LiteRT reads `rank` values without checking
            raise OpError(f"{op}: {what} must be a 1-D int64 tensor with {rank} values (one per input "
                          f"dimension), got shape {list(v.shape)}")
        if np.any(v < 1):  # LiteRT does not check: a zero stride divides by zero in its kernel
            raise OpError(f"{op}: {what} must all be >= 1, got {v.tolist()}")
        vecs.append([int(t) for t in v])
    out = []
    for d, w, s, dl in zip(x_shape, *vecs):
        eff = (w - 1) * dl + 1
        if eff > 2**31 - 1:
            raise OpError(f"{op}: the dilated window {eff} overflows int32")
        out.append(0 if d < eff else (d - eff) // s + 1)
    return tuple(out)


def _rw_infer(ctx: InferCtx) -> list[ShapeDtype]:
    a: ReduceWindowAttrs = ctx.attrs
    _n_inputs(ctx, (5,), "input, init_value, window_dimensions, window_strides, window_dilations")
    x = _require_input(ctx, 0, "input")
    _require_input(ctx, 1, "init_value")
    dt = np.dtype(ctx.dtypes[0])
    if dt not in _RW_TYPES:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' has unsupported type {dt.name} (supported: "
                      "bool, int8, int16, int32, int64, uint8, float32, float64)")
    if np.dtype(ctx.dtypes[1]) != dt:
        raise OpError(f"{ctx.op_name}: init_value '{ctx.name(1)}' is {np.dtype(ctx.dtypes[1]).name} but the "
                      f"input is {dt.name}; they must have the same type")
    if numel(ctx.shapes[1]) < 1:
        raise OpError(f"{ctx.op_name}: init_value '{ctx.name(1)}' is empty; give a scalar")
    if not 1 <= len(x) <= 6:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' must have rank 1 to 6, got {len(x)}")
    if dt == np.bool_ and a.function in ("ADD", "MUL"):
        # LiteRT adds/multiplies bools as int8 bytes, producing bool tensors holding 2, 3, ...
        raise OpError(f"{ctx.op_name}: reduce_function {a.function} on a bool input is not defined; "
                      "use ALL/ANY (or MINIMUM/MAXIMUM)")
    vals = []
    for i, what in ((2, "window_dimensions"), (3, "window_strides"), (4, "window_dilations")):
        _require_input(ctx, i, what)
        if np.dtype(ctx.dtypes[i]) != np.int64:
            raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' must be int64, got {np.dtype(ctx.dtypes[i]).name}")
        if i >= len(ctx.values) or ctx.values[i] is None:
            raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' must be a constant tensor")
        vals.append(ctx.values[i])
    return [(_rw_plan(ctx.op_name, x, *vals), dt)]


def _rw_reference(inputs: Sequence[np.ndarray | None], a: ReduceWindowAttrs) -> list[np.ndarray]:
    x = np.asarray(inputs[0])
    init = np.asarray(inputs[1]).reshape(-1)[0]
    win, strides, dils = ([int(t) for t in np.asarray(v)] for v in inputs[2:5])
    out_shape = _rw_plan("REDUCE_WINDOW", x.shape, win, strides, dils)
    dt = x.dtype
    if 0 in out_shape:
        return [np.zeros(out_shape, dt)]
    # one strided view per window tap: tap (k_0..k_n) of output o reads x[o*s + k*dil]
    # (sequentially from init, in LiteRT's order, so NaN handling of MINIMUM/MAXIMUM matches)
    acc = np.full(out_shape, init, dt)
    for tap in np.ndindex(*win):
        view = x[tuple(slice(k * dl, k * dl + (o - 1) * s + 1, s)
                       for k, dl, o, s in zip(tap, dils, out_shape, strides))]
        acc = _rw_combine(a.function, acc, view)
    return [np.ascontiguousarray(acc)]


def _rw_combine(f: str, acc: np.ndarray, v: np.ndarray) -> np.ndarray:
    dt = acc.dtype
    with np.errstate(over="ignore", invalid="ignore"):
        if f == "ADD":
            return (acc + v).astype(dt)
        if f == "MUL":
            return (acc * v).astype(dt)
        if f == "MINIMUM":  # a <= b ? a : b  (NaN in b wins when a is not <= b)
            return np.where(acc <= v, acc, v)
        if f == "MAXIMUM":
            return np.where(acc >= v, acc, v)
        if f == "ALL":
            return np.logical_and(acc, v).astype(dt)
        return np.logical_or(acc, v).astype(dt)


def _rw_cost(ins: list, outs: list, a: ReduceWindowAttrs) -> Cost:
    return Cost(flops=float(numel(ins[0])), bytes=float_bytes([*ins[:1], *outs]))


define("L2_POOL_2D", parse=parse_pool, infer=_l2pool_infer, reference=_l2pool_reference, cost=_l2pool_cost)
define("CONV_3D_TRANSPOSE", parse=parse_conv3d, infer=_conv3dt_infer, reference=_conv3dt_reference,
       cost=_conv3dt_cost, shape_inputs=(0,))
define("DILATE", infer=_dilate_infer, reference=_dilate_reference, kind=PatternKind.INJECTIVE,
       cost=movement_cost, shape_inputs=(1,))
define("REDUCE_WINDOW", parse=_parse_reduce_window, infer=_rw_infer, reference=_rw_reference, cost=_rw_cost,
       shape_inputs=(2, 3, 4))
