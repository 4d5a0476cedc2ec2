"""MediaPipe's custom ops, built in: Convolution2DTransposeBias, MaxPoolingWithArgmax2D,
MaxUnpooling2D, TransformTensorBilinear (and its v1 name TransformTensor), TransformLandmarks,
Landmarks2TransformMatrix.

MediaPipe's models (the selfie segmenter, face_landmark_with_attention, ...) carry these as
custom ops, and MediaPipe's own op resolver adds them to LiteRT's builtins; we do the same, so
those models run with no registration. They are registered only where nobody registered the name
first, and `tflite_jit.register_custom_op` (or `custom_ops=`) with one of these names overrides
ours; `unregister_custom_op` gives it back (`MEDIAPIPE_OPS` keeps the definitions).

Semantics are those of MediaPipe's CPU kernels (mediapipe/util/tflite/operations/*.cc) and the
attribute parsers they share with LiteRT's GPU delegate, written here from their published
formulas:

* The pooling and transpose-conv ops keep their options as a raw C struct, not a flexbuffer:
  TfLiteTransposeConvParams {padding, stride_width, stride_height} and TfLitePoolParams
  {padding, stride_width, stride_height, filter_width, filter_height, activation}, all int32,
  where padding is TfLitePadding (1 = SAME, 2 = VALID; anything else pads nothing) and
  activation is TfLiteFusedActivation (0 none, 1 relu, 2 relu_n1_to_1, 3 relu6; the others clamp
  nothing). `MediaPipeOpDef.parse_op` gets the whole node for these raw bytes and the op version.
* The transform ops keep a flexbuffer map; their v1 and v2 differ (op version), see each op.

MediaPipe's kernels trust their inputs (indices into landmarks, argmax indices); ours refuse an
index that would read out of bounds, with the op and tensor named.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ir.model import Op
from tflite_jit.ops import image  # noqa: F401  (TRANSPOSE_CONV registers first)
from tflite_jit.ops.base import Cost, InferCtx, OpDef, OpError, PatternKind, register, registered
from tflite_jit.ops.common import float_bytes, numel
from tflite_jit.ops.image import TRANSPOSE_CONV, TransposeConvAttrs

F32 = np.dtype(np.float32)


@dataclass(frozen=True)
class MediaPipeOpDef(OpDef):
    """A MediaPipe custom op: `parse_op(op)` replaces `parse` (it needs the raw custom options
    and the op version, not only the decoded flexbuffer)."""

    parse_op: Callable[[Op], Any] | None = None


# ---- shared checks -----------------------------------------------------------------------------------

def _check(ctx: InferCtx, n_in: int, ranks: Sequence[int | None]) -> list[tuple[int, ...]]:
    """The node has `n_in` float32 inputs of these ranks (None: any); their shapes."""
    if len(ctx.shapes) != n_in or any(s is None for s in ctx.shapes):
        raise OpError(f"{ctx.op_name} takes {n_in} inputs, got {len(ctx.shapes)}")
    shapes = [tuple(int(d) for d in s) for s in ctx.shapes]
    for i, (s, r) in enumerate(zip(shapes, ranks)):
        if np.dtype(ctx.dtypes[i]) != F32:
            raise OpError(f"{ctx.op_name}: input '{ctx.name(i)}' is {np.dtype(ctx.dtypes[i]).name}; "
                          "MediaPipe's kernel takes float32 only")
        if r is not None and len(s) != r:
            raise OpError(f"{ctx.op_name}: input '{ctx.name(i)}' must have rank {r}, got shape {list(s)}")
    return shapes


def _matrix_check(ctx: InferCtx, i: int) -> None:
    if math.prod(ctx.shapes[i]) < 8:
        raise OpError(f"{ctx.op_name}: the transform matrix '{ctx.name(i)}' must hold at least 8 "
                      f"floats (its first two rows; MediaPipe passes [1, 4, 4]), got shape "
                      f"{list(ctx.shapes[i])}")


def _struct_ints(op: Op, n: int) -> tuple[int, ...]:
    raw = op.custom_options or b""
    if len(raw) < 4 * n:
        raise OpError(f"{op.name}: custom options must be the {4 * n}-byte parameter struct "
                      f"({n} int32), got {len(raw)} bytes")
    return struct.unpack_from(f"<{n}i", raw)


def _padding(code: int) -> str:
    return "SAME" if code == 1 else "VALID"


_CLAMPS = {1: (0.0, math.inf), 2: (-1.0, 1.0), 3: (0.0, 6.0)}


def _positive(op: str, **values: int) -> None:
    for k, v in values.items():
        if v < 1:
            raise OpError(f"{op}: {k} is {v} in the custom options; it must be >= 1")


# ---- Convolution2DTransposeBias ------------------------------------------------------------------------

@dataclass(frozen=True)
class TconvBiasAttrs:
    padding: str
    stride_h: int
    stride_w: int


def _tconv_parse(op: Op) -> TconvBiasAttrs:
    padding, sw, sh = _struct_ints(op, 3)
    _positive(op.name, stride_width=sw, stride_height=sh)
    return TconvBiasAttrs(_padding(padding), sh, sw)


def _tconv_out(a: TconvBiasAttrs, hw: Sequence[int], k: Sequence[int]) -> tuple[int, int]:
    out = []
    for i, kk, s in zip(hw, k, (a.stride_h, a.stride_w)):
        pad = max(0, kk - (i - 1) % s - 1) if a.padding == "SAME" else 0
        out.append(s * (i - 1) + kk - pad)
    return out[0], out[1]


def _tconv_infer(ctx: InferCtx) -> list:
    (n, h, w, c), (o, kh, kw, i), (b,) = _check(ctx, 3, (4, 4, 1))
    if i != c:
        raise OpError(f"{ctx.op_name}: weights '{ctx.name(1)}' [O, KH, KW, I] have {i} input "
                      f"channels but input '{ctx.name(0)}' has {c}")
    if b != o:
        raise OpError(f"{ctx.op_name}: bias '{ctx.name(2)}' has {b} values for {o} output channels")
    if min(kh, kw, h, w) < 1:
        raise OpError(f"{ctx.op_name}: empty input or kernel ({[n, h, w, c]}, kernel {kh}x{kw})")
    oh, ow = _tconv_out(ctx.attrs, (h, w), (kh, kw))
    return [((n, oh, ow, o), F32)]


def _tconv_reference(inputs: Sequence[np.ndarray | None], a: TconvBiasAttrs) -> list[np.ndarray]:
    x, wt, bias = (np.asarray(v, np.float32) for v in inputs[:3])
    oh, ow = _tconv_out(a, x.shape[1:3], wt.shape[1:3])
    out_shape = np.array([x.shape[0], oh, ow, wt.shape[0]], np.int32)
    # the builtin's kernel: the same geometry (pad_before = total // 2), plus the bias
    return TRANSPOSE_CONV.reference([out_shape, wt, x, bias],
                                    TransposeConvAttrs(a.padding, a.stride_h, a.stride_w, "NONE"))


def _tconv_cost(ins: list, outs: list, a: Any) -> Cost:
    o, kh, kw, _ = ins[1]
    return Cost(flops=2.0 * numel(ins[0]) * o * kh * kw, bytes=float_bytes([*ins, *outs]))


# ---- MaxPoolingWithArgmax2D / MaxUnpooling2D -----------------------------------------------------------

@dataclass(frozen=True)
class PoolParams:
    padding: str
    stride_h: int
    stride_w: int
    filter_h: int
    filter_w: int
    clamp: tuple[float, float]


def _pool_parse(op: Op) -> PoolParams:
    padding, sw, sh, fw, fh, act = _struct_ints(op, 6)
    _positive(op.name, stride_width=sw, stride_height=sh, filter_width=fw, filter_height=fh)
    return PoolParams(_padding(padding) if padding in (1, 2) else "NONE", sh, sw, fh, fw,
                      _CLAMPS.get(act, (-math.inf, math.inf)))


def _compute_padding(stride: int, in_size: int, filter_size: int, out_size: int) -> int:
    """TFLite's ComputePadding (dilation 1): half the overhang, at least 0."""
    return max(int(((out_size - 1) * stride + filter_size - in_size) / 2), 0)


def _pool_out(a: PoolParams, size: int, f: int, s: int) -> int:
    if a.padding == "SAME":
        return (size + s - 1) // s
    if a.padding == "VALID":
        return (size - f + s) // s
    return 0


def _argmax_infer(ctx: InferCtx) -> list:
    ((n, h, w, c),) = _check(ctx, 1, (4,))
    a: PoolParams = ctx.attrs
    oh, ow = _pool_out(a, h, a.filter_h, a.stride_h), _pool_out(a, w, a.filter_w, a.stride_w)
    if oh < 0 or ow < 0:
        raise OpError(f"{ctx.op_name}: the {a.filter_h}x{a.filter_w} window does not fit input "
                      f"'{ctx.name(0)}' {[n, h, w, c]} with VALID padding")
    return [((n, oh, ow, c), F32), ((n, oh, ow, c), F32)]


def _argmax_reference(inputs: Sequence[np.ndarray | None], a: PoolParams) -> list[np.ndarray]:
    x = np.asarray(inputs[0], np.float32)
    n, h, w, c = x.shape
    oh, ow = _pool_out(a, h, a.filter_h, a.stride_h), _pool_out(a, w, a.filter_w, a.stride_w)
    ph = _compute_padding(a.stride_h, h, a.filter_h, oh)
    pw = _compute_padding(a.stride_w, w, a.filter_w, ow)
    best = np.full((n, oh, ow, c), np.finfo(np.float32).min, np.float32)
    idx = np.zeros((n, oh, ow, c), np.int64)
    ys, xs = np.arange(oh) * a.stride_h - ph, np.arange(ow) * a.stride_w - pw
    for fy in range(a.filter_h):  # window order; a later tap wins only if strictly greater
        iy = ys + fy
        vy = (iy >= 0) & (iy < h)
        for fx in range(a.filter_w):
            ix = xs + fx
            vx = (ix >= 0) & (ix < w)
            v = x[:, np.clip(iy, 0, h - 1)][:, :, np.clip(ix, 0, w - 1)]
            take = (v > best) & vy[None, :, None, None] & vx[None, None, :, None]
            best = np.where(take, v, best)
            idx = np.where(take, fy * a.filter_w + fx, idx)
    lo, hi = a.clamp
    out = np.minimum(np.maximum(best, np.float32(lo)), np.float32(hi)).astype(np.float32)
    return [out, (idx.astype(np.float32) + np.float32(0.1)).astype(np.float32)]


def _unpool_infer(ctx: InferCtx) -> list:
    (n, h, w, c), ishape = _check(ctx, 2, (4, 4))
    if ishape != (n, h, w, c):
        raise OpError(f"{ctx.op_name}: indices '{ctx.name(1)}' {list(ishape)} must have the shape "
                      f"of input '{ctx.name(0)}' {[n, h, w, c]}")
    a: PoolParams = ctx.attrs
    return [((n, h * a.filter_h, w * a.filter_w, c), F32)]


def _unpool_reference(inputs: Sequence[np.ndarray | None], a: PoolParams) -> list[np.ndarray]:
    x = np.asarray(inputs[0], np.float32)
    ind = np.asarray(inputs[1], np.float32)
    n, h, w, c = x.shape
    oh, ow = h * a.filter_h, w * a.filter_w
    ph = _compute_padding(a.stride_h, oh, a.filter_h, h)
    pw = _compute_padding(a.stride_w, ow, a.filter_w, w)
    ok = np.isfinite(ind) & (np.abs(ind) < 2.0**31)  # the C cast to int is defined only there
    k = np.trunc(np.where(ok, ind, 0)).astype(np.int64)
    mx = np.fmod(k, a.filter_w)  # C's % and / truncate toward zero
    my = (k - mx) // a.filter_w
    oy = (np.arange(h) * a.stride_h - ph)[None, :, None, None] + my
    ox = (np.arange(w) * a.stride_w - pw)[None, None, :, None] + mx
    ok &= (oy >= 0) & (oy < oh) & (ox >= 0) & (ox < ow)
    bi = np.broadcast_to(np.arange(n)[:, None, None, None], x.shape)
    ci = np.broadcast_to(np.arange(c)[None, None, None, :], x.shape)
    dst = ((bi * oh + oy) * ow + ox) * c + ci
    dst, src = dst[ok], x[ok]  # C order: the kernel's loop order, so a later write wins
    last = dst.size - 1 - np.unique(dst[::-1], return_index=True)[1]
    out = np.zeros(n * oh * ow * c, np.float32)
    out[dst[last]] = src[last]
    return [out.reshape(n, oh, ow, c)]


# ---- TransformTensorBilinear -----------------------------------------------------------------------------

@dataclass(frozen=True)
class BilinearAttrs:
    out_h: int
    out_w: int
    align_corners: bool  # v2: the half-pixel correction of the matrix


def _bilinear_parse(op: Op) -> BilinearAttrs:
    o = op.options
    if op.name == "TransformTensor" or op.version < 2:
        if "mode" in o and o["mode"] != "bilinear":
            raise OpError(f"{op.name}: only mode 'bilinear' exists, got {o['mode']!r}")
        size = list(o.get("output_size") or [])
        if len(size) != 2:
            raise OpError(f"{op.name} v1: custom option output_size must be [height, width], got {size}")
        h, w, align = int(size[0]), int(size[1]), False
    else:
        if "output_height" not in o or "output_width" not in o:
            raise OpError(f"{op.name}: custom options output_height and output_width are required, "
                          f"got {sorted(o)}")
        h, w, align = int(o["output_height"]), int(o["output_width"]), True
    _positive(op.name, output_height=h, output_width=w)
    return BilinearAttrs(h, w, align)


def _bilinear_infer(ctx: InferCtx) -> list:
    (n, _, _, c), _ = _check(ctx, 2, (4, None))
    _matrix_check(ctx, 1)
    if n != 1:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' must have batch 1 (MediaPipe's "
                      f"kernel reads only the first), got {n}")
    return [((1, ctx.attrs.out_h, ctx.attrs.out_w, c), F32)]


def _bilinear_reference(inputs: Sequence[np.ndarray | None], a: BilinearAttrs) -> list[np.ndarray]:
    x = np.asarray(inputs[0], np.float32)[0]
    m = np.asarray(inputs[1], np.float32).reshape(-1)[:8]
    h, w, _ = x.shape
    tx, ty = m[:4].copy(), m[4:8].copy()
    if a.align_corners:  # T -> S (T A): the shift written back into the float matrix
        for t in (tx, ty):
            t[3] = np.float32(float(t[3]) + (float(t[0]) * 0.5 + float(t[1]) * 0.5 - 0.5))
    oy, ox = np.meshgrid(np.arange(a.out_h, dtype=np.float32), np.arange(a.out_w, dtype=np.float32),
                         indexing="ij")
    cx = tx[0] * ox + tx[1] * oy + tx[2] * np.float32(0) + tx[3]  # float32 dot products
    cy = ty[0] * ox + ty[1] * oy + ty[2] * np.float32(0) + ty[3]
    inside = (cx >= 0) & (cx <= w - 1) & (cy >= 0) & (cy <= h - 1)
    fx, fy = np.floor(cx.astype(np.float64)), np.floor(cy.astype(np.float64))
    x0, y0 = np.where(inside, fx, 0).astype(np.int64), np.where(inside, fy, 0).astype(np.int64)
    # the kernel keeps the weights and the two row blends in float variables, the arithmetic
    # around them in double
    rc = (cx - fx).astype(np.float32).astype(np.float64)[..., None]
    lc = (cy - fy).astype(np.float32).astype(np.float64)[..., None]

    def read(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        ok = (yy < h) & (xx < w)
        return np.where(ok[..., None], x[np.minimum(yy, h - 1), np.minimum(xx, w - 1)], 0).astype(np.float64)

    upper = ((1.0 - rc) * read(y0, x0) + rc * read(y0, x0 + 1)).astype(np.float32).astype(np.float64)
    lower = ((1.0 - rc) * read(y0 + 1, x0) + rc * read(y0 + 1, x0 + 1)).astype(np.float32).astype(np.float64)
    out = np.where(inside[..., None], lc * lower + (1.0 - lc) * upper, 0.0)
    return [out.astype(np.float32)[None]]


def _bilinear_cost(ins: list, outs: list, a: Any) -> Cost:
    return Cost(flops=8.0 * numel(outs[0]), bytes=float_bytes([*ins, *outs]))


# ---- TransformLandmarks -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LandmarksAttrs:
    version: int
    dimensions: int  # v1 only (v2: the last dimension of the landmarks)
    scale: float


def _landmarks_parse(op: Op) -> LandmarksAttrs:
    o = op.options
    if op.version >= 2:
        return LandmarksAttrs(2, 0, 1.0)
    dims, scale = int(o.get("dimensions", 0)), float(np.float32(o.get("scale", 0.0)))
    if dims not in (2, 3):
        raise OpError(f"{op.name} v1: custom option dimensions must be 2 or 3, got {dims}")
    if scale == 0:
        raise OpError(f"{op.name} v1: custom option scale must not be 0")
    return LandmarksAttrs(1, dims, scale)


def _landmarks_infer(ctx: InferCtx) -> list:
    a: LandmarksAttrs = ctx.attrs
    (shape, _) = _check(ctx, 2, (3 if a.version >= 2 else 4, None))
    _matrix_check(ctx, 1)
    dims = shape[-1] if a.version >= 2 else a.dimensions
    if shape[0] != 1:
        raise OpError(f"{ctx.op_name}: landmarks '{ctx.name(0)}' must have batch 1, got {list(shape)}")
    if a.version >= 2 and dims not in (2, 3):
        raise OpError(f"{ctx.op_name}: landmarks '{ctx.name(0)}' {list(shape)} must end in 2 or 3 "
                      "(x, y[, z]) coordinates")
    if shape[-1] % dims:
        raise OpError(f"{ctx.op_name}: the last dimension of '{ctx.name(0)}' ({shape[-1]}) is not a "
                      f"multiple of dimensions={dims}")
    return [(shape, F32)]


def _landmarks_reference(inputs: Sequence[np.ndarray | None], a: LandmarksAttrs) -> list[np.ndarray]:
    x = np.asarray(inputs[0], np.float32)
    m = np.asarray(inputs[1], np.float32).reshape(-1)[:8]
    dims = x.shape[-1] if a.version >= 2 else a.dimensions
    scale = np.float32(a.scale)
    tx = np.array([m[0], m[1], m[2], m[3] * scale], np.float32)
    ty = np.array([m[4], m[5], m[6], m[7] * scale], np.float32)
    p = x.reshape(-1, dims)
    out = p.copy()
    zero, one = np.float32(0), np.float32(1)
    out[:, 0] = tx[0] * p[:, 0] + tx[1] * p[:, 1] + tx[2] * zero + tx[3] * one
    out[:, 1] = ty[0] * p[:, 0] + ty[1] * p[:, 1] + ty[2] * zero + ty[3] * one
    return [out.reshape(x.shape)]


# ---- Landmarks2TransformMatrix ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class L2TAttrs:
    version: int
    subset: tuple[tuple[int, int], ...]
    left: int
    right: int
    options: tuple[tuple[str, float], ...]  # the version's scalar options

    def opt(self, k: str) -> float:
        return dict(self.options)[k]


def _pairs(flat: Any, op: str, key: str) -> tuple[tuple[int, int], ...]:
    v = [int(i) for i in (flat or [])]
    if not v:
        raise OpError(f"{op}: custom option {key} is empty")
    pairs = [(v[2 * i], v[2 * i + 1]) for i in range(len(v) // 2)]
    if len(v) % 2:
        pairs.append((v[-1], v[-1]))  # as MediaPipe's parser pairs an odd last index
    return tuple(pairs)


def _l2t_parse(op: Op) -> L2TAttrs:
    o = op.options

    def need(*keys: str) -> None:
        missing = [k for k in keys if k not in o]
        if missing:
            raise OpError(f"{op.name} v{op.version}: custom options {missing} are missing")

    need("left_rotation_idx", "right_rotation_idx")
    left, right = int(o["left_rotation_idx"]), int(o["right_rotation_idx"])
    if op.version >= 2:
        need("subset_idxs", "output_height", "output_width", "scale_x", "scale_y")
        a = L2TAttrs(2, _pairs(o["subset_idxs"], op.name, "subset_idxs"), left, right, tuple(
            (k, float(np.float32(o.get(k, 0.0)))) for k in
            ("target_rotation_radians", "output_height", "output_width", "scale_x", "scale_y")))
        _positive(op.name, output_height=int(a.opt("output_height")), output_width=int(a.opt("output_width")))
        if a.opt("scale_x") <= 0 or a.opt("scale_y") <= 0:
            raise OpError(f"{op.name}: scale_x and scale_y must be > 0")
    else:
        need("subset", "input_hw", "output_hw", "dimensions", "landmarks_range", "bbox_size_multiplier")
        ih, iw = (int(v) for v in o["input_hw"])
        oh, ow = (int(v) for v in o["output_hw"])
        a = L2TAttrs(1, _pairs(o["subset"], op.name, "subset"), left, right, (
            ("input_h", ih), ("input_w", iw), ("output_h", oh), ("output_w", ow),
            ("dimensions", int(o["dimensions"])), ("landmarks_range", int(o["landmarks_range"])),
            ("bbox_size_multiplier", float(np.float32(o["bbox_size_multiplier"])))))
        if a.opt("dimensions") != 3:
            raise OpError(f"{op.name} v1: dimensions must be 3, got {int(a.opt('dimensions'))}")
        _positive(op.name, input_height=ih, input_width=iw, output_height=oh, output_width=ow,
                  landmarks_range=int(a.opt("landmarks_range")))
        if a.opt("bbox_size_multiplier") == 0:
            raise OpError(f"{op.name} v1: bbox_size_multiplier must not be 0")
    if min(left, right, *(i for p in a.subset for i in p)) < 0:
        raise OpError(f"{op.name}: landmark indices must be >= 0")
    return a


def _l2t_infer(ctx: InferCtx) -> list:
    a: L2TAttrs = ctx.attrs
    (shape,) = _check(ctx, 1, (3 if a.version >= 2 else 4,))
    n = math.prod(shape) // 3 if a.version < 2 else shape[1]
    if a.version >= 2 and (shape[0] != 1 or shape[2] != 3):
        raise OpError(f"{ctx.op_name}: landmarks '{ctx.name(0)}' must be [1, N, 3], got {list(shape)}")
    if a.version < 2 and shape[:3] != (1, 1, 1):
        raise OpError(f"{ctx.op_name} v1: landmarks '{ctx.name(0)}' must be [1, 1, 1, 3N], got {list(shape)}")
    top = max(a.left, a.right, *(i for p in a.subset for i in p))
    if top >= n:
        raise OpError(f"{ctx.op_name}: the custom options name landmark {top} but "
                      f"'{ctx.name(0)}' holds {n} landmarks")
    return [((1, 4, 4), F32)]


def _f(v: float) -> np.float32:
    return np.float32(v)


def _matmul(a: list, b: list, n: int) -> list:
    """Row-major n x n float32 product, each sum from 0 in order (the kernel's Mat3/Mat4)."""
    out = []
    for r in range(n):
        for c in range(n):
            s = _f(0)
            for k in range(n):
                s = _f(s + _f(a[r * n + k] * b[k * n + c]))
            out.append(s)
    return out


def _l2t_v2(lm: np.ndarray, a: L2TAttrs) -> np.ndarray:
    p = lm.reshape(-1, 3)
    lx, ly = p[a.left, 0], p[a.left, 1]
    rx, ry = p[a.right, 0], p[a.right, 1]
    rot = _f(_f(a.opt("target_rotation_radians")) - _f(math.atan2(float(_f(ry - ly)), float(_f(rx - lx)))))
    c, s = _f(math.cos(rot)), _f(math.sin(rot))
    cn, sn = _f(math.cos(-rot)), _f(math.sin(-rot))
    pts = [p[i] for pair in a.subset for i in pair]
    rotated = [(_f(_f(c * q[0]) + _f(-s * q[1])) + _f(0), _f(_f(s * q[0]) + _f(c * q[1])) + _f(0))
               for q in pts]  # rows of R times (x, y, 1)
    xs, ys = [r[0] for r in rotated], [r[1] for r in rotated]
    w, h = _f(max(xs) - min(xs)), _f(max(ys) - min(ys))
    mx, my = _f(_f(min(xs) + max(xs)) / _f(2)), _f(_f(min(ys) + max(ys)) / _f(2))
    cx = _f(_f(_f(cn * mx) + _f(-sn * my)) + _f(0))
    cy = _f(_f(_f(sn * mx) + _f(cn * my)) + _f(0))
    eye = [_f(1.0 if i % 5 == 0 else 0.0) for i in range(16)]
    t = _matmul(eye, [_f(1), _f(0), _f(0), cx, _f(0), _f(1), _f(0), cy, _f(0), _f(0), _f(1), _f(0),
                      _f(0), _f(0), _f(0), _f(1)], 4)
    r = -rot
    cr, sr = _f(math.cos(r)), _f(math.sin(r))
    t = _matmul(t, [cr, -sr, _f(0), _f(0), sr, cr, _f(0), _f(0), _f(0), _f(0), _f(1), _f(0),
                    _f(0), _f(0), _f(0), _f(1)], 4)
    ow, oh = _f(a.opt("output_width")), _f(a.opt("output_height"))
    sx = _f(_f(_f(a.opt("scale_x")) * w) / ow)
    sy = _f(_f(_f(a.opt("scale_y")) * h) / oh)
    t = _matmul(t, [sx, _f(0), _f(0), _f(0), _f(0), sy, _f(0), _f(0), _f(0), _f(0), _f(1), _f(0),
                    _f(0), _f(0), _f(0), _f(1)], 4)
    shx, shy = _f(-1.0 * (float(ow) / 2.0)), _f(-1.0 * (float(oh) / 2.0))
    t = _matmul(t, [_f(1), _f(0), _f(0), shx, _f(0), _f(1), _f(0), shy, _f(0), _f(0), _f(1), _f(0),
                    _f(0), _f(0), _f(0), _f(1)], 4)
    return np.array(t, np.float32).reshape(1, 4, 4)


def _l2t_v1(lm: np.ndarray, a: L2TAttrs) -> np.ndarray:
    p = lm.reshape(-1, 3)
    lx, ly = p[a.left, 0], p[a.left, 1]
    rx, ry = p[a.right, 0], p[a.right, 1]
    alpha = _f(-math.atan(float(_f(_f(ry - ly) / _f(rx - lx)))))
    ca, sa = math.cos(float(alpha)), math.sin(float(alpha))  # double cos/sin of a float
    pts = [p[i] for pair in a.subset for i in pair]
    xs = [_f(float(q[0]) * ca - float(q[1]) * sa) for q in pts]
    ys = [_f(float(q[0]) * sa + float(q[1]) * ca) for q in pts]
    mxx, mnx = max([_f(-100000), *xs]), min([_f(100000), *xs])
    mxy, mny = max([_f(-100000), *ys]), min([_f(100000), *ys])
    mult = a.opt("bbox_size_multiplier")
    bw, bh = _f(float(_f(mxx - mnx)) * mult), _f(float(_f(mxy - mny)) * mult)
    rng = a.opt("landmarks_range")
    scale = [_f(float(bw) / rng), _f(0), _f(0), _f(0), _f(float(bh) / rng), _f(0), _f(0), _f(0), _f(1)]
    midx, midy = _f((float(mxx) + float(mnx)) / 2.0), _f((float(mxy) + float(mny)) / 2.0)
    cm, sm = math.cos(-float(alpha)), math.sin(-float(alpha))
    rmx, rmy = _f(float(midx) * cm - float(midy) * sm), _f(float(midx) * sm + float(midy) * cm)
    rotation = [_f(cm), _f(-sm), _f((float(rmx) / rng) * 2.0 - 1.0),
                _f(sm), _f(cm), _f((float(rmy) / rng) * 2.0 - 1.0), _f(0), _f(0), _f(1)]
    ow, oh, iw, ih = a.opt("output_w"), a.opt("output_h"), a.opt("input_w"), a.opt("input_h")
    to_rel = [_f(2.0 / (ow - 1.0)), _f(0), _f(-1), _f(0), _f(2.0 / (oh - 1.0)), _f(-1), _f(0), _f(0), _f(1)]
    to_abs = [_f((iw - 1.0) / 2.0), _f(0), _f((iw - 1.0) / 2.0), _f(0), _f((ih - 1.0) / 2.0),
              _f((ih - 1.0) / 2.0), _f(0), _f(0), _f(1)]
    itm = _matmul(_matmul(_matmul(to_abs, rotation, 3), scale, 3), to_rel, 3)
    out = [itm[0], itm[1], 0, itm[2], itm[3], itm[4], 0, itm[5], itm[6], itm[7], itm[8], 0, 0, 0, 0, 1]
    return np.array(out, np.float32).reshape(1, 4, 4)


def _l2t_reference(inputs: Sequence[np.ndarray | None], a: L2TAttrs) -> list[np.ndarray]:
    lm = np.asarray(inputs[0], np.float32)
    with np.errstate(all="ignore"):  # degenerate landmarks give inf/nan, as the C++ does
        return [_l2t_v2(lm, a) if a.version >= 2 else _l2t_v1(lm, a)]


# ---- registration ---------------------------------------------------------------------------------------------

def _opdef(name: str, parse_op: Callable[[Op], Any], infer: Callable, reference: Callable,
           kind: PatternKind = PatternKind.OPAQUE, cost: Callable | None = None) -> MediaPipeOpDef:
    def parse(options: dict[str, Any]) -> Any:
        raise OpError(f"{name}: MediaPipe's ops are parsed from the whole node (parse_op)")

    def checked(op: Op) -> Any:
        try:
            return parse_op(op)
        except OpError:
            raise
        # a string, a list or inf where a size goes: the node's fault, said as such
        except (TypeError, ValueError, KeyError, IndexError, ArithmeticError, struct.error) as e:
            raise OpError(f"{name}: malformed custom options {op.options!r} ({type(e).__name__}: {e}); "
                          "they must hold what MediaPipe's converter writes for this op") from None

    return MediaPipeOpDef(name=name, parse=parse, infer=infer, reference=reference, kind=kind, cost=cost,
                          parse_op=checked)


#: the definitions, by custom op name (what `unregister_custom_op` restores)
MEDIAPIPE_OPS: dict[str, MediaPipeOpDef] = {d.name: d for d in (
    _opdef("Convolution2DTransposeBias", _tconv_parse, _tconv_infer, _tconv_reference,
           PatternKind.OPAQUE, _tconv_cost),
    _opdef("MaxPoolingWithArgmax2D", _pool_parse, _argmax_infer, _argmax_reference),
    _opdef("MaxUnpooling2D", _pool_parse, _unpool_infer, _unpool_reference),
    _opdef("TransformTensorBilinear", _bilinear_parse, _bilinear_infer, _bilinear_reference,
           cost=_bilinear_cost),
    _opdef("TransformTensor", _bilinear_parse, _bilinear_infer, _bilinear_reference, cost=_bilinear_cost),
    _opdef("TransformLandmarks", _landmarks_parse, _landmarks_infer, _landmarks_reference),
    _opdef("Landmarks2TransformMatrix", _l2t_parse, _l2t_infer, _l2t_reference),
)}

for _d in MEDIAPIPE_OPS.values():
    if registered(_d.name) is None:  # a user's register_custom_op made before we loaded wins
        register(_d)
