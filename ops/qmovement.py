"""Integer kernels of data-movement ops where quantization changes what the op does:
RESIZE_BILINEAR and RESIZE_NEAREST_NEIGHBOR (int8, uint8, int16), CONCATENATION (uint8 rescales
each input; int8/int16 copy after LiteRT's parameter checks), SPACE_TO_BATCH_ND (pads with the
output zero point), and the Prepare-time checks LiteRT makes on PADV2 (constant vs output),
MIRROR_PAD, BATCH_TO_SPACE_ND, SPACE_TO_BATCH_ND, PACK, UNPACK, EXPAND_DIMS and FILL (input vs
output scale and zero point), which otherwise move raw values.

The other movement ops (RESHAPE, TRANSPOSE, GATHER, SLICE, ...) move raw integers and their float
definitions already give LiteRT's results on quantized tensors; PAD pads with the output zero
point through ops.shape's own bind. Semantics are LiteRT's builtin kernels (QUANTIZATION.md §1,
§3.12):

* RESIZE_BILINEAR int8/int16: 10-bit fixed-point source coordinates and weights, a 20-bit
  rounding (half away from zero) of the int64 weighted sum. uint8: float32 interpolation with
  +0.5 and truncation.
* RESIZE_NEAREST_NEIGHBOR: the float index rule of ops.image, except that the optimized 8-bit
  kernel (no align_corners, no half_pixel_centers) uses a 16.16 fixed-point scale.
* CONCATENATION uint8: an input whose (scale, zero point) differ from the output's is mapped with
  scale = float(si * float(1/so)), bias = float(-zi * scale), out = round(q*scale + bias) + zo,
  clamped to [0, 255]; others are copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops import image as _image  # noqa: F401  (the float ops register first)
from tflite_jit.ops import movement as _movement  # noqa: F401
from tflite_jit.ops import shape as _shape  # noqa: F401
from tflite_jit.ops.base import InferCtx, OpError, Quantized, QuantizedKernel, add_quantized, registered
from tflite_jit.ops.common import F32, I8, I16, U8
from tflite_jit.ops.quant import quantized_input_dtype, scale_zero_point

_QTYPES = (I8, U8, I16)

_FLOAT = {name: registered(name) for name in (
    "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "CONCATENATION", "PADV2", "MIRROR_PAD",
    "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "PACK", "UNPACK", "EXPAND_DIMS", "FILL")}


def _float_ctx(ctx: InferCtx, attrs: Any, float_inputs: Sequence[int]) -> InferCtx:
    """The ctx the float shape rule sees: attrs unwrapped, the data inputs typed float32 (their
    shape rule is the same; only the element type differs)."""
    dts = list(ctx.dtypes)
    for i in float_inputs:
        if i < len(dts) and dts[i] is not None:
            dts[i] = np.dtype(F32)
    return InferCtx(ctx.op_name, attrs, ctx.shapes, dts, ctx.values, ctx.tensor_names)


# ---- RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR ----------------------------------------------------

@dataclass(frozen=True)
class QResizeAttrs(Quantized):
    dtype: str


def _bind_resize(fa: Any, ins: list, outs: list) -> QResizeAttrs | None:
    dt = quantized_input_dtype(ins, _QTYPES)
    if dt is None:
        return None
    return QResizeAttrs(fa, dt.name)


def _resize_infer(ctx: InferCtx) -> list:
    a: QResizeAttrs = ctx.attrs
    if len(ctx.shapes) < 2 or ctx.shapes[0] is None:
        raise OpError(f"{ctx.op_name}: expected 2 inputs (input, size)")
    # the float rule checks shapes, size and flags; the element type is the input's
    out = _FLOAT[ctx.op_name].infer(_float_ctx(ctx, a.base, (0,)))
    return [(out[0][0], np.dtype(a.dtype))]


def _trunc_div(x: np.ndarray, d: int) -> np.ndarray:
    """C integer division (truncates toward zero) of int64 values by a positive int."""
    return np.where(x >= 0, x // d, -((-x) // d))


def bilinear_int_axis(n_in: int, n_out: int, align: bool, half: bool):
    """Integer source positions (10 fractional bits), neighbours and weights along one axis."""
    if align and n_out > 1:
        sc = (1024 * (n_in - 1) + (n_out - 1) // 2) // (n_out - 1)
    else:
        sc = (1024 * n_in + n_out // 2) // n_out
    o = np.arange(n_out, dtype=np.int64)
    p = o * sc + (sc // 2 - 512 if half else 0)
    i0 = np.maximum(_trunc_div(p, 1024), 0)
    i1 = np.minimum(_trunc_div(p + 1023, 1024), n_in - 1)
    w1 = p - 1024 * i0
    return i0, i1, 1024 - w1, w1


def _bilinear_int(x: np.ndarray, oh: int, ow: int, align: bool, half: bool) -> np.ndarray:
    y0, y1, wy0, wy1 = bilinear_int_axis(x.shape[1], oh, align, half)
    x0, x1, wx0, wx1 = bilinear_int_axis(x.shape[2], ow, align, half)
    v = x.astype(np.int64)
    r0, r1 = v[:, y0], v[:, y1]
    wy0, wy1 = wy0[None, :, None, None], wy1[None, :, None, None]
    wx0, wx1 = wx0[None, None, :, None], wx1[None, None, :, None]
    s = (r0[:, :, x0] * wy0 * wx0 + r1[:, :, x0] * wy1 * wx0
         + r0[:, :, x1] * wy0 * wx1 + r1[:, :, x1] * wy1 * wx1)
    half_unit = np.int64(1 << 19)
    return _trunc_div(s + np.where(s >= 0, half_unit, -half_unit), 1 << 20)


def _bilinear_f32_axis(n_in: int, n_out: int, align: bool, half: bool):
    """Float32 source positions as ComputeInterpolationValues computes them: the neighbours and
    the fractional offset d = src - lo (may lie outside [0, 1] at the top/left edge)."""
    if align and n_out > 1:
        sc = np.float32(np.float32(n_in - 1) / np.float32(n_out - 1))
    else:
        sc = np.float32(np.float32(n_in) / np.float32(n_out))
    o = np.arange(n_out, dtype=F32)
    src = (o + np.float32(0.5)) * sc - np.float32(0.5) if half else o * sc
    lo = np.maximum(np.floor(src), 0).astype(np.int64)
    hi = np.minimum(np.ceil(src), n_in - 1).astype(np.int64)
    return lo, hi, (src - lo.astype(F32)).astype(F32)


def _bilinear_u8(x: np.ndarray, oh: int, ow: int, align: bool, half: bool) -> np.ndarray:
    """The optimized uint8 kernel (ResizeBilinearGenericSmallChannel): four float32 weights
    (1-dy)(1-dx), (1-dy)dx, dy(1-dx), dy*dx, the sum q00*w0 + q01*w1 + q10*w2 + q11*w3 + 0.5 in
    that order, truncated to uint8."""
    y0, y1, dy = _bilinear_f32_axis(x.shape[1], oh, align, half)
    x0, x1, dx = _bilinear_f32_axis(x.shape[2], ow, align, half)
    one = np.float32(1)
    dy, dx = dy[None, :, None, None], dx[None, None, :, None]
    w = ((one - dy) * (one - dx), (one - dy) * dx, dy * (one - dx), dy * dx)
    v = x.astype(F32)
    r0, r1 = v[:, y0], v[:, y1]
    acc = r0[:, :, x0] * w[0]
    acc = acc + r0[:, :, x1] * w[1]
    acc = acc + r1[:, :, x0] * w[2]
    acc = acc + r1[:, :, x1] * w[3]
    return np.trunc((acc + np.float32(0.5)).astype(F32))


def _size_of(size: np.ndarray, op: str) -> tuple[int, int]:
    oh, ow = (int(v) for v in np.asarray(size).reshape(-1)[:2])
    if oh < 1 or ow < 1:
        raise OpError(f"{op}: output size [{oh}, {ow}] must be >= 1 in both dimensions")
    return oh, ow


def _bilinear_reference(inputs: Sequence[np.ndarray | None], a: QResizeAttrs) -> list[np.ndarray]:
    dt = np.dtype(a.dtype)
    x = np.asarray(inputs[0])
    oh, ow = _size_of(inputs[1], "RESIZE_BILINEAR")
    b = a.base
    if dt == U8:
        r = _bilinear_u8(x, oh, ow, b.align_corners, b.half_pixel_centers)
    else:
        r = _bilinear_int(x, oh, ow, b.align_corners, b.half_pixel_centers)
    lo, hi = np.iinfo(dt).min, np.iinfo(dt).max
    return [np.clip(r, lo, hi).astype(dt)]


def _nearest_fixed_axis(n_in: int, n_out: int) -> np.ndarray:
    """The optimized 8-bit kernel's index: 16.16 fixed-point scale (in << 16) / out + 1."""
    sc = (n_in << 16) // n_out + 1
    return np.minimum((np.arange(n_out, dtype=np.int64) * sc) >> 16, n_in - 1)


def _nearest_reference(inputs: Sequence[np.ndarray | None], a: QResizeAttrs) -> list[np.ndarray]:
    dt = np.dtype(a.dtype)
    b = a.base
    if dt in (I8, U8) and not b.align_corners and not b.half_pixel_centers:
        x = np.asarray(inputs[0])
        oh, ow = _size_of(inputs[1], "RESIZE_NEAREST_NEIGHBOR")
        iy = _nearest_fixed_axis(x.shape[1], oh)
        ix = _nearest_fixed_axis(x.shape[2], ow)
        return [np.ascontiguousarray(x[:, iy][:, :, ix])]
    return _FLOAT["RESIZE_NEAREST_NEIGHBOR"].reference(inputs, b)


# ---- CONCATENATION ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QConcatAttrs(Quantized):
    dtype: str
    # per input: (scale multiplier, bias) as float32 when the input is rescaled, else None
    maps: tuple[tuple[float, float] | None, ...]
    zo: int


def _bind_concat(fa: Any, ins: list, outs: list) -> QConcatAttrs | None:
    dt = quantized_input_dtype(ins, _QTYPES)
    if dt is None or not outs or outs[0] is None:
        return None
    so, zo = scale_zero_point(outs[0])
    params = [scale_zero_point(t) for t in ins]
    if dt == I8:
        for t, (s, z) in zip(ins, params):
            if np.float32(s) != np.float32(so) or z != zo:
                raise OpError(f"CONCATENATION: int8 input '{t.name}' has scale {s} and zero point "
                              f"{z} but the output '{outs[0].name}' has {so} and {zo}; LiteRT's "
                              "int8 kernel does not rescale, so every input must share the output's "
                              "quantization (requantize the input first)")
    if dt == I16:
        for t, (_, z) in zip([*ins, outs[0]], [*params, (so, zo)]):
            if z != 0:
                raise OpError(f"CONCATENATION: int16 tensor '{t.name}' has zero point {z}; int16 "
                              "quantized tensors must have zero point 0")
    maps: list[tuple[float, float] | None] = []
    for s, z in params:
        if dt != U8 or (z == zo and np.float32(s) == np.float32(so)):
            maps.append(None)
            continue
        if not so > 0:
            raise OpError(f"CONCATENATION: output '{outs[0].name}' has scale {so}; rescaling uint8 "
                          "inputs needs a positive output scale")
        m = np.float32(np.float32(s) * np.float32(np.float32(1.0) / np.float32(so)))
        maps.append((float(m), float(np.float32(np.float32(-z) * m))))
    return QConcatAttrs(fa, dt.name, tuple(maps), zo)


def _concat_reference(inputs: Sequence[np.ndarray | None], a: QConcatAttrs) -> list[np.ndarray]:
    parts = []
    for x, mp in zip(inputs, a.maps):
        x = np.asarray(x)
        if mp is None:
            parts.append(x)
            continue
        v = np.float32(np.float32(x.astype(F32) * np.float32(mp[0])) + np.float32(mp[1]))
        # roundf: half away from zero, in float64 so that 0.49999997 + 0.5 does not round up
        w = v.astype(np.float64)
        r = np.sign(w) * np.floor(np.abs(w) + 0.5)
        parts.append(np.clip(r.astype(np.int64) + a.zo, 0, 255).astype(U8))
    return _FLOAT["CONCATENATION"].reference(parts, a.base)


# ---- PADV2 / MIRROR_PAD / SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND -------------------------------------------

@dataclass(frozen=True)
class QMoveAttrs(Quantized):
    dtype: str
    zo: int


def _same_params(op: str, t: Any, out: Any, what: str, check_zp: bool = True) -> None:
    (s, z), (so, zo) = scale_zero_point(t), scale_zero_point(out)
    if np.float32(s) != np.float32(so) or (check_zp and z != zo):
        raise OpError(f"{op}: {what} '{t.name}' is quantized with scale {s} and zero point {z} but "
                      f"the output '{out.name}' with {so} and {zo}; LiteRT's {op} moves raw "
                      "values and requires them to be equal (requantize first)")


def _bind_padv2(fa: Any, ins: list, outs: list) -> QMoveAttrs | None:
    dt = quantized_input_dtype(ins, _QTYPES)
    if dt is None or not outs or outs[0] is None:
        return None
    if len(ins) > 2 and ins[2] is not None:
        _same_params("PADV2", ins[2], outs[0], "constant_values")
    return QMoveAttrs(fa, dt.name, scale_zero_point(outs[0])[1])


def _bind_mirror(fa: Any, ins: list, outs: list) -> QMoveAttrs | None:
    dt = quantized_input_dtype(ins, _QTYPES)
    if dt is None or not outs or outs[0] is None:
        return None
    _same_params("MIRROR_PAD", ins[0], outs[0], "input")
    return QMoveAttrs(fa, dt.name, scale_zero_point(outs[0])[1])


def _bind_batch(op: str):
    def bind(fa: Any, ins: list, outs: list) -> QMoveAttrs | None:
        dt = quantized_input_dtype(ins, _QTYPES)
        if dt is None or not outs or outs[0] is None:
            return None
        _same_params(op, ins[0], outs[0], "input")
        return QMoveAttrs(fa, dt.name, scale_zero_point(outs[0])[1])
    return bind


def _bind_same_params(op: str, data: int):
    """PACK, UNPACK, EXPAND_DIMS, FILL: LiteRT's Prepare requires the data input (index `data`)
    and every output to share scale and zero point; the kernel then copies raw values."""
    def bind(fa: Any, ins: list, outs: list) -> QMoveAttrs | None:
        dt = quantized_input_dtype(ins[data:data + 1], _QTYPES)
        if dt is None or not outs or outs[0] is None:
            return None
        for t in ins if op == "PACK" else ins[data:data + 1]:
            for o in outs:
                if t is not None and o is not None:
                    _same_params(op, t, o, "input")
        return QMoveAttrs(fa, dt.name, scale_zero_point(outs[0])[1])
    return bind


def _float_reference(op: str):
    def ref(inputs: Sequence[np.ndarray | None], a: QMoveAttrs) -> list[np.ndarray]:
        return _FLOAT[op].reference(inputs, a.base)
    return ref


def _s2b_reference(inputs: Sequence[np.ndarray | None], a: QMoveAttrs) -> list[np.ndarray]:
    # LiteRT pads quantized SPACE_TO_BATCH_ND with the output zero point: shift so that the
    # float kernel's zero padding lands on it.
    dt = np.dtype(a.dtype)
    x = np.asarray(inputs[0]).astype(np.int64) - a.zo
    (y,) = _FLOAT["SPACE_TO_BATCH_ND"].reference([x, *inputs[1:]], a.base)
    return [(y + a.zo).astype(dt)]


# ---- registration -------------------------------------------------------------------------------------------

for _name, _ref in (("RESIZE_BILINEAR", _bilinear_reference), ("RESIZE_NEAREST_NEIGHBOR", _nearest_reference)):
    add_quantized(_name, QuantizedKernel(bind=_bind_resize, reference=_ref, infer=_resize_infer))
add_quantized("CONCATENATION", QuantizedKernel(bind=_bind_concat, reference=_concat_reference))
add_quantized("PADV2", QuantizedKernel(bind=_bind_padv2, reference=_float_reference("PADV2")))
add_quantized("MIRROR_PAD", QuantizedKernel(bind=_bind_mirror, reference=_float_reference("MIRROR_PAD")))
add_quantized("SPACE_TO_BATCH_ND", QuantizedKernel(bind=_bind_batch("SPACE_TO_BATCH_ND"),
                                                   reference=_s2b_reference))
add_quantized("BATCH_TO_SPACE_ND", QuantizedKernel(bind=_bind_batch("BATCH_TO_SPACE_ND"),
                                                   reference=_float_reference("BATCH_TO_SPACE_ND")))
for _name, _data in (("PACK", 0), ("UNPACK", 0), ("EXPAND_DIMS", 0), ("FILL", 1)):
    add_quantized(_name, QuantizedKernel(bind=_bind_same_params(_name, _data),
                                         reference=_float_reference(_name)))
