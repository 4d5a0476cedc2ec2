"""Convolution, fully-connected, batched matmul and 2-D pooling (float32 reference kernels).

Shape rules follow the checks LiteRT's builtin kernels make in Prepare, so a model LiteRT rejects
is rejected here too, with a message that says which tensor to fix. The reference kernels are
vectorised NumPy: every spatial op reads its input through one strided window view
(`windows`) and reduces over the kernel taps, so padding and dilation are handled once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tflite_jit.ops.base import Cost, InferCtx, OpError, PatternKind, Quantized, ShapeDtype
from tflite_jit.ops.common import (
    CLAMPING_ACTIVATIONS,
    F32,
    I8,
    I16,
    U8,
    activation_name,
    apply_activation,
    broadcast_shapes,
    define,
    float_bytes,
    numel,
)

_PADDING = {0: "SAME", 1: "VALID"}
# Element types whose shape rules are the same as float's (quantized kernels live elsewhere).
_NUMERIC = (F32, I8, U8, I16)


# ---- shared helpers -----------------------------------------------------------------------------


def padding_name(code: Any) -> str:
    try:
        return _PADDING[int(code)]
    except (KeyError, TypeError, ValueError):
        raise OpError(f"unknown padding code {code!r} (0 = SAME, 1 = VALID)") from None


def require_rank(ctx: InferCtx, i: int, rank: int, what: str) -> tuple[int, ...]:
    shape = ctx.shapes[i] if i < len(ctx.shapes) else None
    if shape is None or len(shape) != rank:
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' must be {rank}-D, got shape "
                      f"{None if shape is None else list(shape)}; reshape it to rank {rank}")
    return tuple(shape)


def _require_numeric(ctx: InferCtx, i: int) -> np.dtype:
    if i >= len(ctx.dtypes) or ctx.dtypes[i] is None:
        raise OpError(f"{ctx.op_name}: input {i} is required but omitted")
    dt = np.dtype(ctx.dtypes[i])
    if dt not in _NUMERIC:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(i)}' has type {dt}, which this op does not "
                      f"support; use float32 (or int8/uint8/int16 quantized)")
    return dt


def _require_float(op: str, *arrays: np.ndarray | None) -> None:
    """The reference kernels compute in float; quantized tensors need their scales (ops.quant)."""
    for a in arrays:
        if a is not None and a.dtype != np.float32:
            raise OpError(f"{op}: the float reference kernel got a {a.dtype} tensor; quantized "
                          f"variants run through the quantized kernels, not this one")


@dataclass(frozen=True)
class AxisGeometry:
    """Geometry of one spatial axis: TFLite's output size and leading padding."""

    out: int
    pad_before: int


def axis_geometry(padding: str, in_size: int, k: int, stride: int, dilation: int) -> AxisGeometry:
    """LiteRT's ComputeOutSize + ComputePaddingWithOffset: SAME puts the odd pixel of padding at
    the end (pad_before = total // 2), VALID never pads. C++ division truncates toward zero, so
    a window one stride too big yields an empty axis, not an error; `out` < 0 means it cannot fit.
    An empty filter axis (pool filter size 0, the schema default) gives an empty output axis."""
    if k < 1:
        return AxisGeometry(out=0, pad_before=0)
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
    else:
        num = in_size + stride - eff
        out = num // stride if num >= 0 else -(-num // stride)
    total = max((out - 1) * stride + eff - in_size, 0)
    return AxisGeometry(out=out, pad_before=total // 2)


#: convolutions a preceding PAD can fold into (`pad_folds_into`)
PAD_FOLDING_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def pad_folds_into(conv_attrs: Any, pads: Any, in_shape: Sequence[int], filter_hw: Sequence[int]) -> bool:
    """Whether PAD(pads) of an NHWC `in_shape` followed by this VALID convolution computes what the
    convolution computes with SAME padding on the unpadded input (XNNPACK folds such pads too):
    only H and W are padded, each by the leading padding SAME would add, and the output sizes
    agree, so every window sits where SAME puts it and its padded taps read the value SAME skips
    (0 in float; in integer kernels PAD's output zero point, which is the convolution's input
    zero point, so the centred tap is 0 again). MediaPipe's stride-1 PAD + VALID depthwise pairs
    and MobileNet's stride-2 bottom/right pads are of this kind."""
    f = conv_attrs.base if isinstance(conv_attrs, Quantized) else conv_attrs
    p = np.asarray(pads)
    if f.padding != "VALID" or len(in_shape) != 4 or p.shape != (4, 2) or (p < 0).any():
        return False
    if p[0].any() or p[3].any():
        return False
    for ax, k, s, d in ((1, filter_hw[0], f.stride_h, f.dilation_h), (2, filter_hw[1], f.stride_w, f.dilation_w)):
        lo, hi = int(p[ax][0]), int(p[ax][1])
        valid = axis_geometry("VALID", int(in_shape[ax]) + lo + hi, int(k), s, d)
        same = axis_geometry("SAME", int(in_shape[ax]), int(k), s, d)
        if valid.out != same.out or lo != same.pad_before or same.out < 1:
            return False
    return True


def with_same_padding(conv_attrs: Any) -> Any:
    """The convolution's attrs with SAME padding (after `pad_folds_into` said so)."""
    if isinstance(conv_attrs, Quantized):
        return replace(conv_attrs, base=replace(conv_attrs.base, padding="SAME"))
    return replace(conv_attrs, padding="SAME")


def spatial_out(ctx: InferCtx, padding: str, in_hw: tuple[int, int], k_hw: tuple[int, int],
                 stride: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """Output height/width. Rejects what LiteRT's Prepare rejects: strides/dilations < 1 and a
    VALID window so much larger than the input that the size formula goes negative."""
    for name, v in (("stride_h", stride[0]), ("stride_w", stride[1]),
                    ("dilation_h_factor", dilation[0]), ("dilation_w_factor", dilation[1])):
        if v < 1:
            raise OpError(f"{ctx.op_name}: option {name} is {v}; it must be >= 1 (set it in the "
                          f"op's builtin options)")
    outs = []
    for axis, i, kk, s, d in (("height", in_hw[0], k_hw[0], stride[0], dilation[0]),
                              ("width", in_hw[1], k_hw[1], stride[1], dilation[1])):
        o = axis_geometry(padding, i, kk, s, d).out
        if o < 0:
            raise OpError(f"{ctx.op_name}: the (dilated) filter {axis} {(kk - 1) * d + 1} exceeds the "
                          f"input {axis} {i} of '{ctx.name(0)}' with VALID padding; use SAME "
                          f"padding or a smaller filter")
        outs.append(o)
    return outs[0], outs[1]


def windows(x: np.ndarray, k_hw: tuple[int, int], stride: tuple[int, int],
             dilation: tuple[int, int], padding: str, fill: float) -> np.ndarray:
    """Read-only view [N, OH, OW, KH, KW, C] of every receptive field of NHWC `x`, padded with
    `fill` the way TFLite pads (zeros for conv/avg, -inf for max). No copy of the windows."""
    n, h, w, c = x.shape
    gh = axis_geometry(padding, h, k_hw[0], stride[0], dilation[0])
    gw = axis_geometry(padding, w, k_hw[1], stride[1], dilation[1])
    need_h = (gh.out - 1) * stride[0] + (k_hw[0] - 1) * dilation[0] + 1
    need_w = (gw.out - 1) * stride[1] + (k_hw[1] - 1) * dilation[1] + 1
    pad_after_h = max(need_h - gh.pad_before - h, 0)
    pad_after_w = max(need_w - gw.pad_before - w, 0)
    padded = n * (h + gh.pad_before + pad_after_h) * (w + gw.pad_before + pad_after_w) * c
    gathered = n * gh.out * gw.out * k_hw[0] * k_hw[1] * c
    if padded > max(4 * x.size, 1 << 20) and gathered < padded:
        # A huge dilation would pad the input to the dilated filter's extent (an 800-byte model
        # asking for GBs): gather the windows instead, taps outside the image read as `fill`.
        rows = (np.arange(gh.out)[:, None] * stride[0] + np.arange(k_hw[0])[None, :] * dilation[0]
                - gh.pad_before)
        cols = (np.arange(gw.out)[:, None] * stride[1] + np.arange(k_hw[1])[None, :] * dilation[1]
                - gw.pad_before)
        rv, cv = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
        win = x[:, np.clip(rows, 0, max(h - 1, 0))][:, :, :, np.clip(cols, 0, max(w - 1, 0))]
        win = win.transpose(0, 1, 3, 2, 4, 5)  # [N, OH, OW, KH, KW, C]
        mask = (rv[:, None, :, None] & cv[None, :, None, :])[None, :, :, :, :, None]
        out = np.where(mask, win, np.asarray(fill, dtype=x.dtype))
        out.setflags(write=False)
        return out
    if gh.pad_before or gw.pad_before or pad_after_h or pad_after_w:
        x = np.pad(x, ((0, 0), (gh.pad_before, pad_after_h), (gw.pad_before, pad_after_w), (0, 0)),
                   constant_values=fill)
    sn, sh, sw, sc = x.strides
    return as_strided(x, shape=(n, gh.out, gw.out, k_hw[0], k_hw[1], c),
                      strides=(sn, sh * stride[0], sw * stride[1], sh * dilation[0],
                               sw * dilation[1], sc), writeable=False)


def _check_bias(ctx: InferCtx, i: int, out_channels: int, required: bool) -> None:
    """LiteRT checks the bias by element count (NumElements(bias) == output channels), wants it
    float for float inputs, and its conv kernels refuse to run without one."""
    shape = ctx.shapes[i] if i < len(ctx.shapes) else None
    if shape is None:
        if required:
            raise OpError(f"{ctx.op_name}: LiteRT's kernel needs a bias input (input 2), but it is "
                          f"omitted; add a zero float32 bias of shape [{out_channels}]")
        return
    if numel(shape) != out_channels:
        raise OpError(f"{ctx.op_name}: bias '{ctx.name(i)}' has {numel(shape)} elements "
                      f"(shape {list(shape)}) but the filter has {out_channels} output "
                      f"channels; give the bias shape [{out_channels}]")
    if np.dtype(ctx.dtypes[0]) == np.float32 and np.dtype(ctx.dtypes[i]) != np.float32:
        raise OpError(f"{ctx.op_name}: bias '{ctx.name(i)}' is {np.dtype(ctx.dtypes[i])} but the "
                      f"input is float32; store the bias as float32")


def _check_dilation(ctx: InferCtx, a: ConvAttrs) -> None:
    """LiteRT's conv kernels keep dilations in int16 and refuse larger ones in Prepare."""
    for name, v in (("dilation_h_factor", a.dilation_h), ("dilation_w_factor", a.dilation_w)):
        if v > 32767:
            raise OpError(f"{ctx.op_name}: option {name} is {v}; LiteRT's kernel requires it to be at "
                          "most 32767 (INT16_MAX)")


def _check_filter_size(ctx: InferCtx, kh: int, kw: int) -> None:
    if kh < 1 or kw < 1:
        raise OpError(f"{ctx.op_name}: filter '{ctx.name(1)}' has an empty spatial size "
                      f"{kh}x{kw}; filter height and width must be >= 1")


def add_bias_clamp(acc: np.ndarray, bias: np.ndarray | None, act: str) -> np.ndarray:
    """Bias then the activation clamp, in float32 (TFLite adds the bias after the dot product).
    LiteRT's float conv, depthwise and pooling kernels skip TANH and SIGN_BIT, which have no clamp
    range (measured, see test_unclamped_activation_ignored); FULLY_CONNECTED rejects them."""
    acc = acc.astype(np.float32, copy=False)
    if bias is not None:
        acc = acc + bias.reshape(-1).astype(np.float32, copy=False)
    if act in CLAMPING_ACTIVATIONS:
        acc = apply_activation(acc, act)
    return np.ascontiguousarray(acc, dtype=np.float32)


# ---- CONV_2D / DEPTHWISE_CONV_2D -----------------------------------------------------------------


@dataclass(frozen=True)
class ConvAttrs:
    padding: str
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    activation: str
    depth_multiplier: int = 0  # DEPTHWISE_CONV_2D only; 0 = absent (derived from shapes)

    @property
    def stride(self) -> tuple[int, int]:
        return self.stride_h, self.stride_w

    @property
    def dilation(self) -> tuple[int, int]:
        return self.dilation_h, self.dilation_w


def _parse_conv(o: dict[str, Any]) -> ConvAttrs:
    """Schema defaults when fields are absent: SAME padding, stride 0 (rejected by infer),
    dilation 1, no activation."""
    return ConvAttrs(
        padding=padding_name(o.get("padding", 0)),
        stride_h=int(o.get("stride_h", 0)),
        stride_w=int(o.get("stride_w", 0)),
        dilation_h=int(o.get("dilation_h_factor", 1)),
        dilation_w=int(o.get("dilation_w_factor", 1)),
        activation=activation_name(o.get("fused_activation_function", 0)),
        depth_multiplier=int(o.get("depth_multiplier", 0)),
    )


def _infer_conv(ctx: InferCtx) -> list[ShapeDtype]:
    a: ConvAttrs = ctx.attrs
    dt = _require_numeric(ctx, 0)
    n, h, w, c = require_rank(ctx, 0, 4, "input")
    co, kh, kw, ci = require_rank(ctx, 1, 4, "filter")
    # LiteRT accepts grouped convolution: input channels a multiple of the filter's.
    if ci < 1 or c % ci:
        raise OpError(f"{ctx.op_name}: filter '{ctx.name(1)}' has {ci} input channels (shape "
                      f"[{co}, {kh}, {kw}, {ci}]) but input '{ctx.name(0)}' has {c}; the filter's "
                      f"last dimension must equal (or, for grouped convolution, divide) {c}")
    groups = c // ci
    if co % groups:
        raise OpError(f"{ctx.op_name}: grouped convolution with {groups} groups needs the output "
                      f"channels of filter '{ctx.name(1)}' ({co}) to be a multiple of {groups}")
    _check_bias(ctx, 2, co, required=True)
    _check_filter_size(ctx, kh, kw)
    _check_dilation(ctx, a)
    oh, ow = spatial_out(ctx, a.padding, (h, w), (kh, kw), a.stride, a.dilation)
    return [((n, oh, ow, co), dt)]


def _conv_reference(inputs: Sequence[np.ndarray | None], a: ConvAttrs) -> list[np.ndarray]:
    x, f = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    _require_float("CONV_2D", x, f, b)
    co, kh, kw, ci = f.shape
    win = windows(x, (kh, kw), a.stride, a.dilation, a.padding, 0.0)
    return [add_bias_clamp(conv_windows(win, f, x.shape[3] // ci), b, a.activation)]


def conv_windows(win: np.ndarray, filt: np.ndarray, groups: int) -> np.ndarray:
    """The convolution of windows [N, OH, OW, KH, KW, C] (see `windows`) with filters
    [O, KH, KW, C / groups]: one GEMM over im2col patches per group (tensordot copies the view
    into a matrix), in the operands' dtype. One GEMM per image: BLAS rounds a row differently
    with the matrix's height, and an image in a batch must get exactly its batch-1 result (what
    tflite_jit.batch promises, and what the compiled kernels give)."""
    if win.shape[0] > 1:
        return np.concatenate([conv_windows(win[n:n + 1], filt, groups) for n in range(win.shape[0])])
    if groups == 1:
        return np.tensordot(win, filt, axes=([3, 4, 5], [1, 2, 3]))
    co, ci = filt.shape[0], filt.shape[3]
    cog = co // groups
    return np.concatenate([np.tensordot(win[..., g * ci:(g + 1) * ci], filt[g * cog:(g + 1) * cog],
                                        axes=([3, 4, 5], [1, 2, 3])) for g in range(groups)], axis=-1)


def _conv_cost(ins: list, outs: list, a: ConvAttrs) -> Cost:
    co, kh, kw, ci = ins[1]
    return Cost(flops=2.0 * numel(outs[0]) * kh * kw * ci, bytes=float_bytes(list(ins) + list(outs)))


def _infer_depthwise(ctx: InferCtx) -> list[ShapeDtype]:
    a: ConvAttrs = ctx.attrs
    dt = _require_numeric(ctx, 0)
    n, h, w, c = require_rank(ctx, 0, 4, "input")
    one, kh, kw, co = require_rank(ctx, 1, 4, "filter")
    if one != 1:
        raise OpError(f"{ctx.op_name}: filter '{ctx.name(1)}' must have shape [1, KH, KW, "
                      f"channels * depth_multiplier], got [{one}, {kh}, {kw}, {co}]")
    if c < 1 or co % c:
        raise OpError(f"{ctx.op_name}: filter '{ctx.name(1)}' has {co} output channels, not a "
                      f"multiple of the {c} channels of input '{ctx.name(0)}'; its last dimension "
                      f"must be channels * depth_multiplier")
    # LiteRT derives the multiplier from the shapes and ignores the option; we do the same
    # (see test_depthwise_multiplier_option_ignored).
    _check_bias(ctx, 2, co, required=True)
    _check_filter_size(ctx, kh, kw)
    _check_dilation(ctx, a)
    oh, ow = spatial_out(ctx, a.padding, (h, w), (kh, kw), a.stride, a.dilation)
    return [((n, oh, ow, co), dt)]


def _depthwise_reference(inputs: Sequence[np.ndarray | None], a: ConvAttrs) -> list[np.ndarray]:
    x, f = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    _require_float("DEPTHWISE_CONV_2D", x, f, b)
    _, kh, kw, co = f.shape
    c = x.shape[3]
    m = co // c
    win = windows(x, (kh, kw), a.stride, a.dilation, a.padding, 0.0)
    taps = f.reshape(kh, kw, c, m)
    acc = np.zeros(win.shape[:3] + (c, m), np.float32)
    for i in range(kh):  # loop over taps only; each step is a whole-tensor multiply-add
        for j in range(kw):
            acc += win[:, :, :, i, j, :, None] * taps[i, j]
    return [add_bias_clamp(acc.reshape(acc.shape[:3] + (co,)), b, a.activation)]


def _depthwise_cost(ins: list, outs: list, a: ConvAttrs) -> Cost:
    _, kh, kw, _ = ins[1]
    return Cost(flops=2.0 * numel(outs[0]) * kh * kw, bytes=float_bytes(list(ins) + list(outs)))


# ---- FULLY_CONNECTED ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FcAttrs:
    activation: str
    keep_num_dims: bool


def _parse_fc(o: dict[str, Any]) -> FcAttrs:
    fmt = int(o.get("weights_format", 0))
    if fmt != 0:
        raise OpError(f"FULLY_CONNECTED: weights_format {fmt} (shuffled int8) is not supported; "
                      f"only DEFAULT (0) weights are")
    return FcAttrs(activation=activation_name(o.get("fused_activation_function", 0)),
                   keep_num_dims=bool(o.get("keep_num_dims", False)))


def _infer_fc(ctx: InferCtx) -> list[ShapeDtype]:
    a: FcAttrs = ctx.attrs
    dt = _require_numeric(ctx, 0)
    shape = ctx.shapes[0]
    units, depth = require_rank(ctx, 1, 2, "weights")
    size = numel(shape)
    if depth < 1:
        raise OpError(f"{ctx.op_name}: weights '{ctx.name(1)}' have input depth 0 (shape "
                      f"[{units}, {depth}]); the second dimension must be >= 1")
    # LiteRT does not check that depth divides the input's size: batch = size // depth and any
    # trailing elements are ignored. We follow it (test_fc_indivisible_input_truncates).
    _check_bias(ctx, 2, units, required=False)
    if a.activation not in CLAMPING_ACTIVATIONS:
        raise OpError(f"{ctx.op_name}: fused activation {a.activation} is not supported by LiteRT's "
                      f"kernel (only NONE, RELU, RELU_N1_TO_1, RELU6); apply it as a separate op")
    if a.keep_num_dims:
        if not shape or shape[-1] != depth:
            raise OpError(f"{ctx.op_name}: with keep_num_dims the last dimension of input "
                          f"'{ctx.name(0)}' (shape {list(shape)}) must equal the weights' input "
                          f"depth {depth}")
        return [(tuple(shape[:-1]) + (units,), dt)]
    return [((size // depth, units), dt)]


def _fc_reference(inputs: Sequence[np.ndarray | None], a: FcAttrs) -> list[np.ndarray]:
    x, wt = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    _require_float("FULLY_CONNECTED", x, wt, b)
    units, depth = wt.shape
    rows = x.size // depth
    flat = x.reshape(-1)[:rows * depth].reshape(rows, depth)
    n = x.shape[0] if x.ndim > 1 else 1
    if n > 1 and rows % n == 0 and (x.size // n) % depth == 0:
        # one GEMM per batch item: BLAS rounds a row differently with the matrix's height, and an
        # item in a batch must get exactly its batch-1 result (as the compiled kernels give)
        per = rows // n
        acc = np.concatenate([flat[i * per:(i + 1) * per] @ wt.T for i in range(n)])
    else:
        acc = flat @ wt.T
    if a.keep_num_dims:
        acc = acc.reshape(x.shape[:-1] + (units,))
    return [add_bias_clamp(acc, b, a.activation)]


def _fc_cost(ins: list, outs: list, a: FcAttrs) -> Cost:
    return Cost(flops=2.0 * numel(outs[0]) * ins[1][1], bytes=float_bytes(list(ins) + list(outs)))


# ---- BATCH_MATMUL ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchMatMulAttrs:
    adj_x: bool
    adj_y: bool


def _parse_bmm(o: dict[str, Any]) -> BatchMatMulAttrs:
    return BatchMatMulAttrs(adj_x=bool(o.get("adj_x", False)), adj_y=bool(o.get("adj_y", False)))


def _infer_bmm(ctx: InferCtx) -> list[ShapeDtype]:
    a: BatchMatMulAttrs = ctx.attrs
    dt = _require_numeric(ctx, 0)
    shapes = []
    for i, what in ((0, "lhs"), (1, "rhs")):
        s = ctx.shapes[i]
        if s is None or not 2 <= len(s) <= 5:
            raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' must have rank 2 to 5, got shape "
                          f"{None if s is None else list(s)}")
        shapes.append(tuple(s))
    x, y = shapes
    m, kx = (x[-1], x[-2]) if a.adj_x else (x[-2], x[-1])
    ky, n = (y[-1], y[-2]) if a.adj_y else (y[-2], y[-1])
    if kx != ky:
        raise OpError(f"{ctx.op_name}: inner dimensions differ: lhs '{ctx.name(0)}' {list(x)} "
                      f"(adj_x={a.adj_x}) contracts {kx}, rhs '{ctx.name(1)}' {list(y)} "
                      f"(adj_y={a.adj_y}) contracts {ky}; transpose one or fix adj_x/adj_y")
    try:
        batch = broadcast_shapes(x[:-2], y[:-2], ctx.op_name)
    except OpError:
        raise OpError(f"{ctx.op_name}: batch dimensions of lhs '{ctx.name(0)}' {list(x[:-2])} and "
                      f"rhs '{ctx.name(1)}' {list(y[:-2])} cannot be broadcast") from None
    return [(batch + (m, n), dt)]


def _bmm_reference(inputs: Sequence[np.ndarray | None], a: BatchMatMulAttrs) -> list[np.ndarray]:
    x, y = inputs[0], inputs[1]
    _require_float("BATCH_MATMUL", x, y)
    if a.adj_x:
        x = np.swapaxes(x, -1, -2)
    if a.adj_y:
        y = np.swapaxes(y, -1, -2)
    return [np.ascontiguousarray(np.matmul(x, y), dtype=np.float32)]


def _bmm_cost(ins: list, outs: list, a: BatchMatMulAttrs) -> Cost:
    k = ins[0][-2] if a.adj_x else ins[0][-1]
    return Cost(flops=2.0 * numel(outs[0]) * k, bytes=float_bytes(list(ins) + list(outs)))


# ---- AVERAGE_POOL_2D / MAX_POOL_2D -------------------------------------------------------------


@dataclass(frozen=True)
class PoolAttrs:
    padding: str
    stride_h: int
    stride_w: int
    filter_h: int
    filter_w: int
    activation: str

    @property
    def stride(self) -> tuple[int, int]:
        return self.stride_h, self.stride_w

    @property
    def filter(self) -> tuple[int, int]:
        return self.filter_h, self.filter_w


def parse_pool(o: dict[str, Any]) -> PoolAttrs:
    return PoolAttrs(
        padding=padding_name(o.get("padding", 0)),
        stride_h=int(o.get("stride_h", 0)),
        stride_w=int(o.get("stride_w", 0)),
        filter_h=int(o.get("filter_height", 0)),
        filter_w=int(o.get("filter_width", 0)),
        activation=activation_name(o.get("fused_activation_function", 0)),
    )


def _infer_pool(ctx: InferCtx) -> list[ShapeDtype]:
    a: PoolAttrs = ctx.attrs
    dt = _require_numeric(ctx, 0)
    n, h, w, c = require_rank(ctx, 0, 4, "input")
    oh, ow = spatial_out(ctx, a.padding, (h, w), a.filter, a.stride, (1, 1))
    return [((n, oh, ow, c), dt)]


def _avg_pool_reference(inputs: Sequence[np.ndarray | None], a: PoolAttrs) -> list[np.ndarray]:
    x = inputs[0]
    _require_float("AVERAGE_POOL_2D", x)
    win = windows(x, a.filter, a.stride, (1, 1), a.padding, 0.0)
    total = win.sum(axis=(3, 4), dtype=np.float32)
    return [add_bias_clamp(total / pool_counts(a, x.shape), None, a.activation)]


def pool_counts(a: PoolAttrs, shape: Sequence[int]) -> np.ndarray:
    """[1, OH, OW, 1] float32: how many taps of each output's window fall inside the NHWC image
    of this shape (only those count in a mean). The per-axis counts multiply because the window
    is a rectangle."""
    cnt_h = in_image_counts(a.padding, shape[1], a.filter_h, a.stride_h)
    cnt_w = in_image_counts(a.padding, shape[2], a.filter_w, a.stride_w)
    return (cnt_h[:, None] * cnt_w[None, :])[None, :, :, None]


def in_image_counts(padding: str, in_size: int, k: int, stride: int) -> np.ndarray:
    """How many taps of each output position's window fall inside the image, along one axis."""
    g = axis_geometry(padding, in_size, k, stride, 1)
    start = np.arange(g.out) * stride - g.pad_before
    return (np.clip(start + k, 0, in_size) - np.clip(start, 0, in_size)).astype(np.float32)


def _max_pool_reference(inputs: Sequence[np.ndarray | None], a: PoolAttrs) -> list[np.ndarray]:
    x = inputs[0]
    _require_float("MAX_POOL_2D", x)
    win = windows(x, a.filter, a.stride, (1, 1), a.padding, -np.inf)
    return [add_bias_clamp(win.max(axis=(3, 4)), None, a.activation)]


def _pool_cost(ins: list, outs: list, a: PoolAttrs) -> Cost:
    return Cost(flops=float(numel(outs[0]) * a.filter_h * a.filter_w),
                bytes=float_bytes(list(ins) + list(outs)))


# ---- registration ------------------------------------------------------------------------------

_EPILOGUE = PatternKind.OUT_ELEMWISE_FUSABLE

CONV_2D = define("CONV_2D", parse=_parse_conv, infer=_infer_conv, reference=_conv_reference, kind=_EPILOGUE,
                 cost=_conv_cost)
DEPTHWISE_CONV_2D = define("DEPTHWISE_CONV_2D", parse=_parse_conv, infer=_infer_depthwise,
                           reference=_depthwise_reference, kind=_EPILOGUE, cost=_depthwise_cost)
FULLY_CONNECTED = define("FULLY_CONNECTED", parse=_parse_fc, infer=_infer_fc, reference=_fc_reference,
                         kind=_EPILOGUE, cost=_fc_cost)
BATCH_MATMUL = define("BATCH_MATMUL", parse=_parse_bmm, infer=_infer_bmm, reference=_bmm_reference,
                      kind=_EPILOGUE, cost=_bmm_cost)
AVERAGE_POOL_2D = define("AVERAGE_POOL_2D", parse=parse_pool, infer=_infer_pool,
                         reference=_avg_pool_reference, kind=_EPILOGUE, cost=_pool_cost)
MAX_POOL_2D = define("MAX_POOL_2D", parse=parse_pool, infer=_infer_pool, reference=_max_pool_reference,
                     kind=_EPILOGUE, cost=_pool_cost)
