"""TensorFlow ops inside a .tflite (Flex ops), run natively: the training subset.

TF's converter with ``SELECT_TF_OPS`` keeps the ops TFLite has no builtin for as custom ops
named ``Flex<TFOp>`` whose options are a flexbuffer vector [TF op name, serialized NodeDef].
LiteRT's pip package ships no Flex delegate, so on-device training models (the guide's
``train``/``save``/``restore`` signatures) do not run there at all. We implement the gradient,
batch-norm and checkpoint ops that TF's converter emits for such models, with TensorFlow's
semantics (reference: TF's own outputs, tests/data/make_training_models.py), on the reference
backend: they run once per training step on small tensors, and NumPy's vectorised forms are
within a small factor of what a compiled kernel would do there.

A Flex op we do not implement fails at allocate_tensors() with LiteRT's Flex message naming
the node. The NodeDef is decoded with protobuf (`tflite_jit.format.tf_proto`, extra ``flex``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.format import tf_checkpoint, tf_proto
from tflite_jit.ops.base import Dynamic, InferCtx, OpError, ShapeDtype
from tflite_jit.ops.common import define

PREFIX = "Flex"


@dataclass(frozen=True)
class FlexAttrs:
    node: tf_proto.NodeDef

    @property
    def op(self) -> str:
        return PREFIX + self.node.op


def _parse(tf_op: str) -> Callable[[dict[str, Any]], FlexAttrs]:
    def parse(options: dict[str, Any]) -> FlexAttrs:
        what = PREFIX + tf_op
        data = options.get("node_def")
        if not isinstance(data, bytes):
            raise OpError(f"{what}: the custom options are not a Flex op's [op name, NodeDef] vector "
                          "(the model is damaged or was not written by TensorFlow's converter)")
        try:
            node = tf_proto.parse_node_def(data, what)
        except (ValueError, ImportError) as e:
            raise OpError(str(e)) from None
        if node.op != tf_op:
            raise OpError(f"{what}: its NodeDef is for TensorFlow op '{node.op}', not '{tf_op}'")
        fmt = node.attr("data_format", b"NHWC")
        if fmt not in (b"NHWC", None):
            raise OpError(f"{what}: data_format {fmt.decode()} is not supported (only NHWC, the layout "
                          "TFLite models use); convert the model from an NHWC Keras model")
        return FlexAttrs(node)
    return parse


def _float_type(ctx: InferCtx, i: int = 0) -> np.dtype:
    dt = ctx.dtypes[i]
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise OpError(f"{ctx.op_name}: input '{ctx.name(i)}' is {dt}; only float32 and float64 are "
                      "implemented")
    return dt


def _flex(tf_op: str, infer: Callable[[InferCtx], list[ShapeDtype]],
          reference: Callable[[Sequence[np.ndarray | None], FlexAttrs], list[np.ndarray]],
          **fields: Any) -> None:
    define(PREFIX + tf_op, parse=_parse(tf_op), infer=infer, reference=reference, **fields)


# ---- activation gradients ---------------------------------------------------------------------

def _same_as(i: int) -> Callable[[InferCtx], list[ShapeDtype]]:
    def infer(ctx: InferCtx) -> list[ShapeDtype]:
        dt = _float_type(ctx, i)
        if ctx.shapes[0] != ctx.shapes[1]:
            raise OpError(f"{ctx.op_name}: inputs must have the same shape, got {list(ctx.shapes[0])} "
                          f"and {list(ctx.shapes[1])}")
        return [(ctx.shapes[i], dt)]
    return infer


_flex("ReluGrad", _same_as(0), lambda x, a: [x[0] * (x[1] > 0).astype(x[0].dtype)])
_flex("Relu6Grad", _same_as(0), lambda x, a: [x[0] * ((x[1] > 0) & (x[1] < 6)).astype(x[0].dtype)])
# TF evaluates dy * y * (1 - y) and dy * (1 - y * y) in this order; so do we (same rounding)
_flex("SigmoidGrad", _same_as(0), lambda x, a: [x[1] * x[0] * (x[0].dtype.type(1) - x[0])])
_flex("TanhGrad", _same_as(0), lambda x, a: [x[1] * (x[0].dtype.type(1) - x[0] * x[0])])


# ---- BroadcastGradientArgs ----------------------------------------------------------------------

def broadcast_gradient_args(s0: Sequence[int], s1: Sequence[int]) -> tuple[list[int], list[int]]:
    """The axes to sum each operand's gradient over after a broadcasting binary op: where an
    operand (left-padded with 1s) has size 1 — unless the shapes are equal (nothing to reduce)."""
    s0, s1 = [int(d) for d in s0], [int(d) for d in s1]
    if s0 == s1:
        return [], []
    n = max(len(s0), len(s1))
    p0, p1 = [1] * (n - len(s0)) + s0, [1] * (n - len(s1)) + s1
    for a, b in zip(p0, p1):
        if a != b and a != 1 and b != 1:
            raise OpError(f"FlexBroadcastGradientArgs: Incompatible shapes: {s0} vs. {s1}")
    return [i for i, d in enumerate(p0) if d == 1], [i for i, d in enumerate(p1) if d == 1]


def _bga_infer(ctx: InferCtx) -> list[ShapeDtype]:
    for i in (0, 1):
        if len(ctx.shapes[i]) != 1:
            raise OpError(f"{ctx.op_name}: input '{ctx.name(i)}' must be a shape vector, got rank "
                          f"{len(ctx.shapes[i])}")
    if ctx.dtypes[0] != ctx.dtypes[1] or ctx.dtypes[0] not in (np.dtype(np.int32), np.dtype(np.int64)):
        raise OpError(f"{ctx.op_name}: shapes must both be int32 or both int64")
    r0, r1 = broadcast_gradient_args(ctx.value(0, "s0"), ctx.value(1, "s1"))
    return [((len(r0),), ctx.dtypes[0]), ((len(r1),), ctx.dtypes[0])]


def _bga(x: Sequence[np.ndarray], a: FlexAttrs) -> list[np.ndarray]:
    r0, r1 = broadcast_gradient_args(x[0], x[1])
    return [np.array(r0, x[0].dtype), np.array(r1, x[0].dtype)]


_flex("BroadcastGradientArgs", _bga_infer, _bga)


# ---- convolution backprops ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Window:
    """One spatial axis of a convolution: stride, dilation, padding before, output size."""

    stride: int
    dilation: int
    before: int
    out: int


def _windows(a: FlexAttrs, what: str, in_hw: Sequence[int], k_hw: Sequence[int]) -> list[_Window]:
    n = a.node
    strides = list(n.attr("strides", [1, 1, 1, 1]))
    dil = list(n.attr("dilations", [1, 1, 1, 1]) or [1, 1, 1, 1])
    if n.op.startswith("DepthwiseConv2dNativeBackprop"):
        # TensorFlow's CPU kernels for these two ignore `dilations` (measured: TF's outputs equal
        # the undilated gradient; Keras builds dilated depthwise convs from SpaceToBatchND
        # instead); we compute what TensorFlow computes
        dil = [1, 1, 1, 1]
    if len(strides) != 4 or strides[0] != 1 or strides[3] != 1 or min(strides) < 1:
        raise OpError(f"{what}: strides must be [1, sh, sw, 1] with positive sh, sw; got {strides}")
    if len(dil) != 4 or dil[0] != 1 or dil[3] != 1 or min(dil) < 1:
        raise OpError(f"{what}: dilations must be [1, dh, dw, 1] with positive dh, dw; got {dil}")
    padding = n.attr("padding", b"VALID")
    explicit = list(n.attr("explicit_paddings", []) or [])
    out = []
    for ax, (size, k) in enumerate(zip(in_hw, k_hw)):
        s, d = strides[1 + ax], dil[1 + ax]
        keff = (k - 1) * d + 1
        if padding == b"VALID":
            before, o = 0, (size - keff + s) // s
        elif padding == b"SAME":
            o = -(-size // s)
            before = max(0, (o - 1) * s + keff - size) // 2
        elif padding == b"EXPLICIT":
            if len(explicit) != 8:
                raise OpError(f"{what}: EXPLICIT padding needs 8 explicit_paddings, got {len(explicit)}")
            before, after = explicit[2 + 2 * ax], explicit[3 + 2 * ax]
            o = (size + before + after - keff) // s + 1
        else:
            raise OpError(f"{what}: unknown padding {padding!r}")
        if o < 1:
            raise OpError(f"{what}: the window ({k} with dilation {d}) does not fit the input ({size})")
        out.append(_Window(s, d, before, o))
    return out


def _sizes(ctx: InferCtx, i: int, what: str) -> tuple[int, ...]:
    v = ctx.value(i, what)
    if v.shape != (4,) or (np.asarray(v) < 0).any():
        raise OpError(f"{ctx.op_name}: '{ctx.name(i)}' must hold 4 non-negative sizes, got {v.tolist()}")
    return tuple(int(d) for d in v)


def _check_dy(ctx: InferCtx, a: FlexAttrs, x_shape: tuple[int, ...], w_shape: tuple[int, ...],
              out_channels: int) -> None:
    dy = ctx.shapes[2]
    wins = _windows(a, ctx.op_name, x_shape[1:3], w_shape[:2])
    want = (x_shape[0], wins[0].out, wins[1].out, out_channels)
    if tuple(dy) != want:
        raise OpError(f"{ctx.op_name}: out_backprop '{ctx.name(2)}' has shape {list(dy)}, the convolution's "
                      f"output is {list(want)}")


def _padded(x: np.ndarray, wins: list[_Window], k_hw: Sequence[int]) -> np.ndarray:
    """x zero-padded so every window position of every output element is in range."""
    pads = [(0, 0)]
    for size, w, k in zip(x.shape[1:3], wins, k_hw):
        need = (w.out - 1) * w.stride + (k - 1) * w.dilation + 1
        pads.append((w.before, max(0, need - size - w.before)))
    return np.pad(x, pads + [(0, 0)])


def _taps(wins: list[_Window], k_hw: Sequence[int]) -> list[tuple[int, int, tuple[slice, slice]]]:
    """For each filter tap (kh, kw), the strided slice of the padded input it reads."""
    h, w = wins
    return [(kh, kw, (slice(kh * h.dilation, kh * h.dilation + (h.out - 1) * h.stride + 1, h.stride),
                      slice(kw * w.dilation, kw * w.dilation + (w.out - 1) * w.stride + 1, w.stride)))
            for kh in range(k_hw[0]) for kw in range(k_hw[1])]


def _conv_filter_infer(depthwise: bool) -> Callable[[InferCtx], list[ShapeDtype]]:
    def infer(ctx: InferCtx) -> list[ShapeDtype]:
        dt = _float_type(ctx, 0)
        x = ctx.shapes[0]
        w = _sizes(ctx, 1, "filter_sizes")
        if len(x) != 4 or w[2] != x[3]:
            raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' {list(x)} must be NHWC with {w[2]} channels "
                          f"(filter_sizes {list(w)})")
        _check_dy(ctx, ctx.attrs, x, w, w[2] * w[3] if depthwise else w[3])
        return [(w, dt)]
    return infer


def _conv_input_infer(depthwise: bool) -> Callable[[InferCtx], list[ShapeDtype]]:
    def infer(ctx: InferCtx) -> list[ShapeDtype]:
        dt = _float_type(ctx, 1)
        x = _sizes(ctx, 0, "input_sizes")
        w = ctx.shapes[1]
        if len(w) != 4 or w[2] != x[3]:
            raise OpError(f"{ctx.op_name}: filter '{ctx.name(1)}' {list(w)} must be [kh, kw, {x[3]}, ...] for "
                          f"input_sizes {list(x)}")
        _check_dy(ctx, ctx.attrs, x, w, w[2] * w[3] if depthwise else w[3])
        return [(x, dt)]
    return infer


def _conv_filter(depthwise: bool) -> Callable[[Sequence[np.ndarray], FlexAttrs], list[np.ndarray]]:
    def reference(x: Sequence[np.ndarray], a: FlexAttrs) -> list[np.ndarray]:
        inp, dy = x[0], x[2]
        w_shape = tuple(int(d) for d in x[1])
        wins = _windows(a, a.op, inp.shape[1:3], w_shape[:2])
        xp = _padded(inp.astype(np.float64), wins, w_shape[:2])
        g = dy.astype(np.float64)
        if depthwise:
            g = g.reshape(*g.shape[:3], w_shape[2], w_shape[3])
        out = np.zeros(w_shape, np.float64)
        for kh, kw, (sh, sw) in _taps(wins, w_shape[:2]):
            patch = xp[:, sh, sw, :]
            out[kh, kw] = (np.einsum("nhwc,nhwcm->cm", patch, g) if depthwise
                           else np.tensordot(patch, g, axes=([0, 1, 2], [0, 1, 2])))
        return [out.astype(inp.dtype)]
    return reference


def _conv_input(depthwise: bool) -> Callable[[Sequence[np.ndarray], FlexAttrs], list[np.ndarray]]:
    def reference(x: Sequence[np.ndarray], a: FlexAttrs) -> list[np.ndarray]:
        x_shape = tuple(int(d) for d in x[0])
        w, dy = x[1].astype(np.float64), x[2].astype(np.float64)
        wins = _windows(a, a.op, x_shape[1:3], w.shape[:2])
        acc = _padded(np.zeros(x_shape, np.float64), wins, w.shape[:2])
        if depthwise:
            dy = dy.reshape(*dy.shape[:3], w.shape[2], w.shape[3])
        for kh, kw, (sh, sw) in _taps(wins, w.shape[:2]):
            acc[:, sh, sw, :] += (np.einsum("nhwcm,cm->nhwc", dy, w[kh, kw]) if depthwise
                                  else np.tensordot(dy, w[kh, kw], axes=([3], [1])))
        h, wd = wins
        return [acc[:, h.before:h.before + x_shape[1], wd.before:wd.before + x_shape[2], :].astype(x[1].dtype)]
    return reference


for _dw, _filter, _input in ((False, "Conv2DBackpropFilter", "Conv2DBackpropInput"),
                             (True, "DepthwiseConv2dNativeBackpropFilter", "DepthwiseConv2dNativeBackpropInput")):
    _flex(_filter, _conv_filter_infer(_dw), _conv_filter(_dw), shape_inputs=(1,))
    _flex(_input, _conv_input_infer(_dw), _conv_input(_dw), shape_inputs=(0,))


# ---- batch normalization ----------------------------------------------------------------------------

def _channels(ctx: InferCtx, first: int, last: int) -> int:
    x = ctx.shapes[1 if ctx.op_name.endswith("GradV3") else 0]
    if len(x) != 4:
        raise OpError(f"{ctx.op_name}: x must be NHWC (rank 4), got {list(x)}")
    for i in range(first, last):
        if ctx.shapes[i] != (x[3],):
            raise OpError(f"{ctx.op_name}: input '{ctx.name(i)}' must have shape [{x[3]}], got "
                          f"{list(ctx.shapes[i])}")
    return x[3]


def _bn_infer(ctx: InferCtx) -> list[ShapeDtype]:
    dt = _float_type(ctx, 0)
    c = _channels(ctx, 1, 5)
    training = bool(ctx.attrs.node.attr("is_training", True))
    if not training and any(s == (0,) for s in ctx.shapes[3:5]):
        raise OpError(f"{ctx.op_name}: inference needs the population mean and variance")
    return [(ctx.shapes[0], dt)] + [((c,), np.dtype(np.float32))] * 4 + [((0,), np.dtype(np.float32))]


def _bn(x: Sequence[np.ndarray], a: FlexAttrs) -> list[np.ndarray]:
    """TF's CPU FusedBatchNormV3: in training, y uses the batch's biased variance while the
    running variance is updated with the unbiased one (n / (n - 1)); the reserve spaces keep
    the batch mean and biased variance for the gradient."""
    inp, scale, offset, mean, var = x
    n = a.node
    eps = np.float32(n.attr("epsilon", 1e-4))
    if not n.attr("is_training", True):
        y = (inp - mean) * (1 / np.sqrt(var + eps)) * scale + offset
        return [y.astype(inp.dtype), mean.copy(), var.copy(), mean.copy(), var.copy(), np.zeros(0, np.float32)]
    factor = np.float32(n.attr("exponential_avg_factor", 1.0))
    flat = inp.reshape(-1, inp.shape[-1])
    count = flat.shape[0]
    batch_mean = flat.mean(axis=0, dtype=np.float32)
    centered = flat - batch_mean
    batch_var = (centered * centered).mean(axis=0, dtype=np.float32)
    y = centered * ((1 / np.sqrt(batch_var + eps)) * scale) + offset
    unbiased = batch_var * np.float32(count / max(count - 1, 1))
    if factor == 1:
        mean_out, var_out = batch_mean, unbiased
    else:
        mean_out = (1 - factor) * mean + factor * batch_mean
        var_out = (1 - factor) * var + factor * unbiased
    return [y.reshape(inp.shape).astype(inp.dtype), mean_out.astype(np.float32), var_out.astype(np.float32),
            batch_mean, batch_var, np.zeros(0, np.float32)]


def _bn_grad_infer(ctx: InferCtx) -> list[ShapeDtype]:
    dt = _float_type(ctx, 0)
    c = _channels(ctx, 2, 5)
    if ctx.shapes[0] != ctx.shapes[1]:
        raise OpError(f"{ctx.op_name}: y_backprop {list(ctx.shapes[0])} and x {list(ctx.shapes[1])} differ")
    f32 = np.dtype(np.float32)
    return [(ctx.shapes[1], dt), ((c,), f32), ((c,), f32), ((), f32), ((), f32)]


def _bn_grad(x: Sequence[np.ndarray], a: FlexAttrs) -> list[np.ndarray]:
    dy, inp, scale, mean, var = (v.astype(np.float64) for v in x[:5])
    eps = float(a.node.attr("epsilon", 1e-4))
    c = inp.shape[-1]
    dy2, x2 = dy.reshape(-1, c), inp.reshape(-1, c)
    inv = 1 / np.sqrt(var + eps)
    x_hat = (x2 - mean) * inv
    offset_bp = dy2.sum(axis=0)
    scale_bp = (dy2 * x_hat).sum(axis=0)
    if a.node.attr("is_training", True):
        dx = scale * inv * (dy2 - dy2.mean(axis=0) - x_hat * (dy2 * x_hat).mean(axis=0))
    else:
        dx = dy2 * (scale * inv)
    f32 = np.float32
    return [dx.reshape(inp.shape).astype(x[1].dtype), scale_bp.astype(f32), offset_bp.astype(f32),
            np.zeros((), f32), np.zeros((), f32)]


_flex("FusedBatchNormV3", _bn_infer, _bn)
_flex("FusedBatchNormGradV3", _bn_grad_infer, _bn_grad)


# ---- Save / Restore: TensorFlow's V1 checkpoint ------------------------------------------------------

def _path(v: np.ndarray, what: str) -> str:
    if v.size != 1:
        raise OpError(f"{what} must be a single string, got {v.size} values")
    s = v.reshape(-1)[0]
    return s.decode() if isinstance(s, bytes) else str(s)


def _save_infer(ctx: InferCtx) -> list[ShapeDtype]:
    names = ctx.shapes[1]
    if len(names) != 1 or names[0] != len(ctx.shapes) - 2:
        raise OpError(f"{ctx.op_name}: tensor_names has shape {list(names)} but {len(ctx.shapes) - 2} tensors "
                      "are saved")
    return []


def _save(x: Sequence[np.ndarray], a: FlexAttrs) -> list[np.ndarray]:
    path = _path(x[0], "FlexSave: filename")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in x[1].reshape(-1)]
    if len(set(names)) != len(names):
        raise OpError(f"FlexSave: tensor names must be unique, got {names}")
    tf_checkpoint.save(path, dict(zip(names, x[2:])))
    return []


def _restore_infer(ctx: InferCtx) -> list[ShapeDtype]:
    dt = tf_proto.DTYPES.get(int(ctx.attrs.node.attr("dt", 1)))
    if dt is None:
        raise OpError(f"{ctx.op_name}: cannot restore a tensor of type "
                      f"{tf_proto.DTYPE_NAMES.get(ctx.attrs.node.attr('dt'), ctx.attrs.node.attr('dt'))}")
    raise Dynamic(f"{ctx.op_name}: the restored tensor's shape is in the checkpoint file")


def _restore(x: Sequence[np.ndarray], a: FlexAttrs) -> list[np.ndarray]:
    pattern = _path(x[0], "FlexRestore: file_pattern")
    name = _path(x[1], "FlexRestore: tensor_name")
    try:
        tensors = tf_checkpoint.load(pattern)
    except (OSError, ValueError) as e:
        raise OpError(f"FlexRestore: {e}") from None
    if name not in tensors:
        raise OpError(f'FlexRestore: Tensor name "{name}" not found in checkpoint files {pattern}')
    want = np.dtype(tf_proto.DTYPES[int(a.node.attr("dt", 1))])
    got = tensors[name]
    if got.dtype != want:
        raise OpError(f"FlexRestore: Expected to restore a tensor of type {want}, got a tensor of type "
                      f"{got.dtype} instead: tensor_name = {name}")
    return [got]


_flex("Save", _save_infer, _save, foldable=False)
_flex("Restore", _restore_infer, _restore, foldable=False)
