"""Image-shaped ops (float32): RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR, TRANSPOSE_CONV, CONV_3D
and EMBEDDING_LOOKUP.

Resize follows LiteRT's float formulas (shared/QUANTIZATION.md §3.12): the scale is in/out (or
(in-1)/(out-1) with align_corners), the source coordinate o*scale (or (o+0.5)*scale-0.5 with
half_pixel_centers), all in float32. The convolutions reuse ops.nn's padding geometry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tflite_jit.ops.base import Cost, InferCtx, OpError, PatternKind, ShapeDtype
from tflite_jit.ops.common import F32, activation_name, define, float_bytes, movement_cost, numel
from tflite_jit.ops.nn import add_bias_clamp, axis_geometry, padding_name


def _shape(ctx: InferCtx, i: int, rank: int | None, what: str) -> tuple[int, ...]:
    s = ctx.shapes[i] if i < len(ctx.shapes) else None
    if s is None:
        raise OpError(f"{ctx.op_name}: {what} (input {i}) is required but omitted")
    if rank is not None and len(s) != rank:
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' must be {rank}-D, got shape "
                      f"{list(s)}; reshape it to rank {rank}")
    return tuple(s)


def _dtype(ctx: InferCtx, i: int, want: Any, what: str) -> None:
    dt = np.dtype(ctx.dtypes[i])
    if dt != np.dtype(want):
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' has type {dt}; this op needs "
                      f"{np.dtype(want)} (quantized variants are not supported here)")


def _check_bias(ctx: InferCtx, i: int, channels: int, owner: str) -> None:
    """The optional bias (input i) is float32 with one element per output channel; `owner` names
    what has the channels ('the weights have')."""
    if len(ctx.shapes) > i and ctx.shapes[i] is not None:
        if numel(ctx.shapes[i]) != channels:
            raise OpError(f"{ctx.op_name}: bias '{ctx.name(i)}' has {numel(ctx.shapes[i])} "
                          f"elements but {owner} {channels} output channels; give it shape [{channels}]")
        _dtype(ctx, i, np.float32, "bias")


# ---- RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR ------------------------------------------------


@dataclass(frozen=True)
class ResizeAttrs:
    align_corners: bool
    half_pixel_centers: bool


def _parse_resize(o: dict[str, Any]) -> ResizeAttrs:
    return ResizeAttrs(bool(o.get("align_corners", False)), bool(o.get("half_pixel_centers", False)))


def _infer_resize(ctx: InferCtx) -> list[ShapeDtype]:
    a: ResizeAttrs = ctx.attrs
    n, _, _, c = _shape(ctx, 0, 4, "input")
    _dtype(ctx, 0, np.float32, "input")
    _shape(ctx, 1, 1, "size")
    if ctx.shapes[1] != (2,) or np.dtype(ctx.dtypes[1]) != np.int32:
        raise OpError(f"{ctx.op_name}: size '{ctx.name(1)}' must be an int32 tensor of shape [2] "
                      f"(new_height, new_width), got {np.dtype(ctx.dtypes[1])} {list(ctx.shapes[1])}")
    if ctx.op_name == "RESIZE_BILINEAR" and a.align_corners and a.half_pixel_centers:
        # LiteRT's bilinear Prepare rejects this combination; nearest-neighbour accepts it
        # (rounds (o + 0.5) * (in - 1) / (out - 1)).
        raise OpError(f"{ctx.op_name}: align_corners and half_pixel_centers cannot both be true; "
                      f"clear one of them")
    size = ctx.value(1, f"size '{ctx.name(1)}'")
    oh, ow = (int(v) for v in np.asarray(size).reshape(-1))
    if oh < 1 or ow < 1:
        raise OpError(f"{ctx.op_name}: size '{ctx.name(1)}' is [{oh}, {ow}]; both must be >= 1")
    return [((n, oh, ow, c), F32)]


def _scale(in_size: int, out_size: int, align: bool) -> np.float32:
    if align and out_size > 1:
        return np.float32(in_size - 1) / np.float32(out_size - 1)
    return np.float32(in_size) / np.float32(out_size)


def _check_size(size: np.ndarray, op: str) -> tuple[int, int]:
    oh, ow = (int(v) for v in np.asarray(size).reshape(-1)[:2])
    if oh < 1 or ow < 1:
        raise OpError(f"{op}: output size [{oh}, {ow}] must be >= 1 in both dimensions")
    return oh, ow


def bilinear_axis(in_size: int, out_size: int, a: ResizeAttrs):
    """Neighbours lo, hi and float32 fraction of every output position along one axis (also
    the Numba kernel's tables, backends/numba_cpu/generators/resize.py)."""
    sc = _scale(in_size, out_size, a.align_corners)
    o = np.arange(out_size, dtype=np.float32)
    src = (o + np.float32(0.5)) * sc - np.float32(0.5) if a.half_pixel_centers else o * sc
    lo = np.maximum(np.floor(src), 0).astype(np.int64)
    hi = np.minimum(np.ceil(src), in_size - 1).astype(np.int64)
    frac = (src - lo.astype(np.float32)).astype(np.float32)  # may lie outside [0, 1] at the edge
    return lo, hi, frac


def _bilinear_reference(inputs: Sequence[np.ndarray | None], a: ResizeAttrs) -> list[np.ndarray]:
    x = np.asarray(inputs[0], np.float32)
    oh, ow = _check_size(inputs[1], "RESIZE_BILINEAR")
    y0, y1, dy = bilinear_axis(x.shape[1], oh, a)
    x0, x1, dx = bilinear_axis(x.shape[2], ow, a)
    one = np.float32(1)
    dy, dx = dy[None, :, None, None], dx[None, None, :, None]
    r0, r1 = x[:, y0], x[:, y1]
    out = (r0[:, :, x0] * (one - dy) * (one - dx) + r1[:, :, x0] * dy * (one - dx)
           + r0[:, :, x1] * (one - dy) * dx + r1[:, :, x1] * dy * dx)
    return [np.ascontiguousarray(out, dtype=np.float32)]


def _nearest_axis(in_size: int, out_size: int, a: ResizeAttrs) -> np.ndarray:
    sc = _scale(in_size, out_size, a.align_corners)
    o = np.arange(out_size, dtype=np.float32)
    if a.half_pixel_centers:
        o = o + np.float32(0.5)
    v = o * sc
    # align_corners rounds half away from zero (roundf); v >= 0 so floor(v + 0.5) is the same.
    idx = np.floor(v + np.float32(0.5)) if a.align_corners else np.floor(v)
    return np.clip(idx.astype(np.int64), 0, in_size - 1)


def _nearest_reference(inputs: Sequence[np.ndarray | None], a: ResizeAttrs) -> list[np.ndarray]:
    x = np.asarray(inputs[0])
    oh, ow = _check_size(inputs[1], "RESIZE_NEAREST_NEIGHBOR")
    iy = _nearest_axis(x.shape[1], oh, a)
    ix = _nearest_axis(x.shape[2], ow, a)
    return [np.ascontiguousarray(x[:, iy][:, :, ix])]


def _resize_cost(ins: list, outs: list, a: Any) -> Cost:
    return Cost(flops=8.0 * numel(outs[0]), bytes=float_bytes([ins[0], outs[0]]))


# ---- TRANSPOSE_CONV ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TransposeConvAttrs:
    padding: str
    stride_h: int
    stride_w: int
    activation: str


def _parse_tconv(o: dict[str, Any]) -> TransposeConvAttrs:
    return TransposeConvAttrs(padding=padding_name(o.get("padding", 0)),
                              stride_h=int(o.get("stride_h", 0)), stride_w=int(o.get("stride_w", 0)),
                              activation=activation_name(o.get("fused_activation_function", 0)))


def _infer_tconv(ctx: InferCtx) -> list[ShapeDtype]:
    a: TransposeConvAttrs = ctx.attrs
    if _shape(ctx, 0, 1, "output_shape") != (4,) or np.dtype(ctx.dtypes[0]) != np.int32:
        raise OpError(f"{ctx.op_name}: output_shape '{ctx.name(0)}' must be an int32 tensor of "
                      f"shape [4] (N, H, W, C), got {np.dtype(ctx.dtypes[0])} {list(ctx.shapes[0])}")
    o, kh, kw, i = _shape(ctx, 1, 4, "weights")
    n, h, w, c = _shape(ctx, 2, 4, "input")
    _dtype(ctx, 2, np.float32, "input")
    _dtype(ctx, 1, np.float32, "weights")
    if c != i:
        raise OpError(f"{ctx.op_name}: weights '{ctx.name(1)}' [O, KH, KW, I] = {[o, kh, kw, i]} "
                      f"have {i} input channels but input '{ctx.name(2)}' has {c}; make the "
                      f"weights' last dimension {c}")
    if kh < 1 or kw < 1:
        raise OpError(f"{ctx.op_name}: weights '{ctx.name(1)}' have an empty spatial size {kh}x{kw}")
    for name, v in (("stride_h", a.stride_h), ("stride_w", a.stride_w)):
        if v < 1:
            raise OpError(f"{ctx.op_name}: option {name} is {v}; it must be >= 1")
    _check_bias(ctx, 3, o, "the weights have")
    shape = tuple(int(v) for v in np.asarray(ctx.value(0, f"output_shape '{ctx.name(0)}'")).reshape(-1))
    if shape[0] != n or shape[3] != o or min(shape) < 1:
        raise OpError(f"{ctx.op_name}: output_shape '{ctx.name(0)}' is {list(shape)}; it must be "
                      f"[{n}, H, W, {o}] (batch of the input, output channels of the weights, "
                      f"H and W >= 1)")
    _check_tconv_geometry(a, shape, (h, w), (kh, kw), ctx.op_name)
    return [(shape, F32)]


def _check_tconv_geometry(a: TransposeConvAttrs, out_shape: Sequence[int], in_hw: Sequence[int],
                          k_hw: Sequence[int], op: str) -> None:
    """LiteRT's Prepare: a forward conv over the output must give back the input's size."""
    for axis, o, i, k, s in (("height", out_shape[1], in_hw[0], k_hw[0], a.stride_h),
                             ("width", out_shape[2], in_hw[1], k_hw[1], a.stride_w)):
        back = axis_geometry(a.padding, o, k, s, 1).out
        if back != i:
            raise OpError(f"{op}: output_shape {list(out_shape)} does not match the input: a "
                          f"{a.padding} conv with stride {s} and kernel {k} over output {axis} "
                          f"{o} gives {back}, but the input {axis} is {i}; fix output_shape")


def _tconv_reference(inputs: Sequence[np.ndarray | None], a: TransposeConvAttrs) -> list[np.ndarray]:
    out_shape = tuple(int(v) for v in np.asarray(inputs[0]).reshape(-1))
    wt = np.asarray(inputs[1], np.float32)
    x = np.asarray(inputs[2], np.float32)
    bias = inputs[3] if len(inputs) > 3 else None
    n, h, w, _ = x.shape
    o, kh, kw, _ = wt.shape
    _, oh, ow, _ = out_shape
    _check_tconv_geometry(a, out_shape, (h, w), (kh, kw), "TRANSPOSE_CONV")
    sh, sw = a.stride_h, a.stride_w
    ph = axis_geometry(a.padding, oh, kh, sh, 1).pad_before
    pw = axis_geometry(a.padding, ow, kw, sw, 1).pad_before
    contrib = np.tensordot(x, wt, axes=([3], [3]))  # [N, H, W, O, KH, KW]
    full_h = max((h - 1) * sh + kh, ph + oh)
    full_w = max((w - 1) * sw + kw, pw + ow)
    full = np.zeros((n, full_h, full_w, o), np.float32)
    for i in range(kh):
        for j in range(kw):
            full[:, i:i + (h - 1) * sh + 1:sh, j:j + (w - 1) * sw + 1:sw, :] += contrib[..., i, j]
    return [add_bias_clamp(full[:, ph:ph + oh, pw:pw + ow, :], bias, a.activation)]


def _tconv_cost(ins: list, outs: list, a: Any) -> Cost:
    o, kh, kw, i = ins[1]
    return Cost(flops=2.0 * numel(ins[2]) * o * kh * kw, bytes=float_bytes([*ins, *outs]))


# ---- CONV_3D -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conv3DAttrs:
    padding: str
    stride: tuple[int, int, int]  # d, h, w
    dilation: tuple[int, int, int]
    activation: str


def parse_conv3d(o: dict[str, Any]) -> Conv3DAttrs:
    return Conv3DAttrs(
        padding=padding_name(o.get("padding", 0)),
        stride=(int(o.get("stride_d", 0)), int(o.get("stride_h", 0)), int(o.get("stride_w", 0))),
        dilation=(int(o.get("dilation_d_factor", 1)), int(o.get("dilation_h_factor", 1)),
                  int(o.get("dilation_w_factor", 1))),
        activation=activation_name(o.get("fused_activation_function", 0)))


def _infer_conv3d(ctx: InferCtx) -> list[ShapeDtype]:
    a: Conv3DAttrs = ctx.attrs
    n, d, h, w, c = _shape(ctx, 0, 5, "input")
    _dtype(ctx, 0, np.float32, "input")
    kd, kh, kw, ci, co = _shape(ctx, 1, 5, "filter")
    _dtype(ctx, 1, np.float32, "filter")
    if ci != c:
        raise OpError(f"{ctx.op_name}: filter '{ctx.name(1)}' [KD, KH, KW, I, O] = "
                      f"{[kd, kh, kw, ci, co]} has {ci} input channels but input '{ctx.name(0)}' "
                      f"has {c}; make the filter's fourth dimension {c}")
    if min(kd, kh, kw) < 1:
        raise OpError(f"{ctx.op_name}: filter '{ctx.name(1)}' has an empty spatial size")
    for name, v in zip(("stride_d", "stride_h", "stride_w", "dilation_d_factor",
                        "dilation_h_factor", "dilation_w_factor"), a.stride + a.dilation):
        if v < 1:
            raise OpError(f"{ctx.op_name}: option {name} is {v}; it must be >= 1")
    _check_bias(ctx, 2, co, "the filter has")
    outs = []
    for axis, i, k, s, dl in zip(("depth", "height", "width"), (d, h, w), (kd, kh, kw), a.stride,
                                 a.dilation):
        g = axis_geometry(a.padding, i, k, s, dl)
        if g.out < 1:
            raise OpError(f"{ctx.op_name}: the (dilated) filter {axis} {(k - 1) * dl + 1} does not "
                          f"fit the input {axis} {i} of '{ctx.name(0)}' with VALID padding; use "
                          f"SAME padding or a smaller filter")
        outs.append(g.out)
    return [((n, *outs, co), F32)]


def _conv3d_reference(inputs: Sequence[np.ndarray | None], a: Conv3DAttrs) -> list[np.ndarray]:
    x = np.asarray(inputs[0], np.float32)
    f = np.asarray(inputs[1], np.float32)
    bias = inputs[2] if len(inputs) > 2 else None
    n, c = x.shape[0], x.shape[4]
    ks = f.shape[:3]
    geo = [axis_geometry(a.padding, x.shape[1 + i], ks[i], a.stride[i], a.dilation[i])
           for i in range(3)]
    pads = [(0, 0)]
    for i, g in enumerate(geo):
        need = (g.out - 1) * a.stride[i] + (ks[i] - 1) * a.dilation[i] + 1
        pads.append((g.pad_before, max(need - g.pad_before - x.shape[1 + i], 0)))
    pads.append((0, 0))
    xp = np.pad(x, pads)
    st = xp.strides
    win = as_strided(xp, shape=(n, *(g.out for g in geo), *ks, c),
                     strides=(st[0], *(st[1 + i] * a.stride[i] for i in range(3)),
                              *(st[1 + i] * a.dilation[i] for i in range(3)), st[4]),
                     writeable=False)
    acc = np.tensordot(win, f, axes=([4, 5, 6, 7], [0, 1, 2, 3]))
    return [add_bias_clamp(acc, bias, a.activation)]


def _conv3d_cost(ins: list, outs: list, a: Any) -> Cost:
    kd, kh, kw, ci, _ = ins[1]
    return Cost(flops=2.0 * numel(outs[0]) * kd * kh * kw * ci, bytes=float_bytes([*ins, *outs]))


# ---- EMBEDDING_LOOKUP --------------------------------------------------------------------------


def infer_embedding(ctx: InferCtx) -> list[ShapeDtype]:
    (k,) = _shape(ctx, 0, 1, "ids")
    _dtype(ctx, 0, np.int32, "ids")
    table = _shape(ctx, 1, None, "table")
    if len(table) < 2:
        raise OpError(f"{ctx.op_name}: table '{ctx.name(1)}' must have rank >= 2 (rows first), "
                      f"got shape {list(table)}")
    _dtype(ctx, 1, np.float32, "table")
    if ctx.values[0] is not None:
        check_ids(np.asarray(ctx.values[0]), table[0], ctx.op_name)
    return [((k, *table[1:]), F32)]


def check_ids(ids: np.ndarray, rows: int, op: str) -> None:
    """Every id indexes a row of a table of `rows` rows."""
    bad = (ids < 0) | (ids >= rows)
    if bad.any():
        # LiteRT fails Invoke with "Embedding Lookup: index out of bounds" here.
        raise OpError(f"{op}: id {int(ids[bad][0])} is out of range for a table of {rows} rows; "
                      f"ids must lie in [0, {rows - 1}]")


def _embedding_reference(inputs: Sequence[np.ndarray | None], a: Any) -> list[np.ndarray]:
    ids, table = np.asarray(inputs[0]).reshape(-1), np.asarray(inputs[1])
    check_ids(ids, table.shape[0], "EMBEDDING_LOOKUP")
    return [np.ascontiguousarray(table[ids.astype(np.int64)])]


# ---- registration ------------------------------------------------------------------------------

RESIZE_BILINEAR = define("RESIZE_BILINEAR", parse=_parse_resize, infer=_infer_resize,
                         reference=_bilinear_reference, kind=PatternKind.INJECTIVE, cost=_resize_cost,
                         shape_inputs=(1,))
RESIZE_NEAREST_NEIGHBOR = define("RESIZE_NEAREST_NEIGHBOR", parse=_parse_resize, infer=_infer_resize,
                                 reference=_nearest_reference, kind=PatternKind.INJECTIVE, cost=movement_cost,
                                 shape_inputs=(1,))
TRANSPOSE_CONV = define("TRANSPOSE_CONV", parse=_parse_tconv, infer=_infer_tconv, reference=_tconv_reference,
                        kind=PatternKind.OUT_ELEMWISE_FUSABLE, cost=_tconv_cost, shape_inputs=(0,))
CONV_3D = define("CONV_3D", parse=parse_conv3d, infer=_infer_conv3d, reference=_conv3d_reference,
                 kind=PatternKind.OUT_ELEMWISE_FUSABLE, cost=_conv3d_cost)
EMBEDDING_LOOKUP = define("EMBEDDING_LOOKUP", infer=infer_embedding, reference=_embedding_reference,
                          kind=PatternKind.INJECTIVE, cost=movement_cost)
