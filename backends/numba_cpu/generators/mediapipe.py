"""MediaPipe's custom ops (ops/mediapipe.py): Convolution2DTransposeBias, the op the
selfie-segmentation models end in (128x128x16 -> 256x256x1): the reference's tensordot plus
strided scatter-adds cost tens of milliseconds there, more than the rest of the model; and the
transform ops of face_landmark_with_attention (TransformTensorBilinear / TransformTensor,
TransformLandmarks, Landmarks2TransformMatrix), whose modules only call ../mptransform.py's
precompiled functions with the node's shapes and options as literals (bit-exact with the
reference, see there).

The kernel gathers instead of scattering: each output pixel (oy, ox) is reached from input rows
iy = (oy + pad_top - fy) / stride for the kernel rows fy with a zero remainder (and likewise for
columns), so every output element is one bias plus a short dot product, written once, and the
output rows are independent (prange over them). Shapes, strides, padding and the weights'
layout (OHWI) are literals; weights and bias travel as arguments (constants or run-time inputs).
"""

from __future__ import annotations

import math

import numpy as np

from tflite_jit.backends.numba_cpu import emit, host, printer
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.quantized import no_epilogue
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported

F32 = np.dtype(np.float32)
#: the transform ops' entry: no fast-math (mptransform's functions round where the reference does)
_PRECISE = "@numba.njit(cache=True, nogil=True, fastmath=False, error_model='numpy', boundscheck=False)"


def _arg(req: KernelRequest, i: int) -> Arg:
    t = req.inputs[i]
    if t.value is not None:
        return Arg("const", value=np.ascontiguousarray(np.asarray(t.value, np.float32)).reshape(-1))
    return Arg("input", i)


@register_generator("Convolution2DTransposeBias")
def generate_tconv_bias(req: KernelRequest) -> KernelSource:
    no_epilogue(req, "Convolution2DTransposeBias")
    if len(req.inputs) != 3 or any(t is None or np.dtype(t.dtype) != F32 for t in req.inputs):
        raise Unsupported("Convolution2DTransposeBias: three float32 inputs expected (the reference reports it)")
    a = req.attrs
    n, h, w, c = (int(d) for d in req.inputs[0].shape)
    o, kh, kw, _ = (int(d) for d in req.inputs[1].shape)
    _, oh, ow, _ = (int(d) for d in req.out_shape)
    if math.prod(req.out_shape) == 0 or n * h * w * c == 0:
        raise Unsupported("Convolution2DTransposeBias: empty tensor")
    sh, sw = a.stride_h, a.stride_w
    pad_h = max(0, kh - (h - 1) % sh - 1) if a.padding == "SAME" else 0
    pad_w = max(0, kw - (w - 1) % sw - 1) if a.padding == "SAME" else 0
    ph, pw = pad_h // 2, pad_w // 2
    rows = n * oh
    body = [
        "def entry(x, wt, b, out):",
        f"    for r in numba.prange({rows}):",
        f"        bi = r // {oh}",
        f"        oy = r - bi * {oh}",
        f"        for ox in range({ow}):",
        f"            ob = (r * {ow} + ox) * {o}",
        f"            for oc in range({o}):",
        "                st(out, ob + oc, ld(b, oc))",
        f"            for fy in range({kh}):",
        f"                ty = oy + {ph} - fy",
        f"                if ty < 0 or ty % {sh} != 0:",
        "                    continue",
        f"                iy = ty // {sh}",
        f"                if iy >= {h}:",
        "                    continue",
        f"                for fx in range({kw}):",
        f"                    tx = ox + {pw} - fx",
        f"                    if tx < 0 or tx % {sw} != 0:",
        "                        continue",
        f"                    ix = tx // {sw}",
        f"                    if ix >= {w}:",
        "                        continue",
        f"                    xb = ((bi * {h} + iy) * {w} + ix) * {c}",
        f"                    for oc in range({o}):",
        f"                        wb = ((oc * {kh} + fy) * {kw} + fx) * {c}",
        "                        acc = np.float32(0)",
        f"                        for ic in range({c}):",
        "                            acc += ld(x, xb + ic) * ld(wt, wb + ic)",
        "                        st(out, ob + oc, ld(out, ob + oc) + acc)",
    ]
    src = ("# MediaPipe Convolution2DTransposeBias\n" + emit.helper_import(host.SIMD, "ld", "st")
           + emit.module("\n".join(body) + "\n", rows > 1))
    return KernelSource(src, "entry", [Arg("input", 0), _arg(req, 1), _arg(req, 2), Arg("output", 0)], rows > 1)


# ---- the transform ops: small modules calling ../mptransform.py's precompiled functions ------------

def _float_inputs(req: KernelRequest, n: int, what: str) -> None:
    no_epilogue(req, what)
    if len(req.inputs) != n or any(t is None or np.dtype(t.dtype) != F32 for t in req.inputs):
        raise Unsupported(f"{what}: {n} float32 inputs expected (the reference reports it)")
    if any(math.prod(t.shape) == 0 for t in req.inputs) or math.prod(req.out_shape) == 0:
        raise Unsupported(f"{what}: empty tensor")


def _call(req: KernelRequest, what: str, fn: str, n_in: int, literals: str,
          consts: tuple[np.ndarray, ...] = ()) -> KernelSource:
    """`entry(in_0 .. in_{n-1}, [C0 ..], out)`: fn(flattened inputs, consts, out, literals)."""
    ins = [f"x{i}" for i in range(n_in)]
    cs = [f"c{i}" for i in range(len(consts))]
    flat = ", ".join(f"{v}.reshape(-1)" for v in ins)
    body = (f"def entry({', '.join([*ins, *cs, 'out'])}):\n"
            f"    {fn}({flat}, {''.join(c + ', ' for c in cs)}out.reshape(-1), {literals})\n")
    src = (f"# MediaPipe {what}\n" + emit.helper_import(host.MPTRANSFORM, fn)
           + printer.PRELUDE + "\n\n" + _PRECISE + "\n" + body)
    args = [_arg(req, i) for i in range(n_in)] + [Arg("const", value=c) for c in consts] + [Arg("output", 0)]
    return KernelSource(src, "entry", args)


@register_generator("TransformTensorBilinear")
@register_generator("TransformTensor")
def generate_transform_bilinear(req: KernelRequest) -> KernelSource:
    what = req.op_name
    _float_inputs(req, 2, what)
    a = req.attrs
    _, h, w, c = (int(d) for d in req.inputs[0].shape)
    _, oh, ow, oc = (int(d) for d in req.out_shape)
    if req.inputs[0].shape[0] != 1 or oc != c or math.prod(req.inputs[1].shape) < 8:
        raise Unsupported(f"{what}: unexpected shapes (the reference reports it)")
    return _call(req, what, "transform_bilinear", 2, f"{h}, {w}, {c}, {oh}, {ow}, {bool(a.align_corners)}")


@register_generator("TransformLandmarks")
def generate_transform_landmarks(req: KernelRequest) -> KernelSource:
    what = req.op_name
    _float_inputs(req, 2, what)
    a = req.attrs
    shape = tuple(int(d) for d in req.inputs[0].shape)
    dims = shape[-1] if a.version >= 2 else a.dimensions
    n = math.prod(shape)
    if dims not in (2, 3) or n % dims or tuple(req.out_shape) != shape or math.prod(req.inputs[1].shape) < 8:
        raise Unsupported(f"{what}: unexpected shapes (the reference reports it)")
    return _call(req, what, "transform_landmarks", 2, f"{n // dims}, {dims}, np.float32({float(np.float32(a.scale))!r})")


@register_generator("Landmarks2TransformMatrix")
def generate_landmarks_to_matrix(req: KernelRequest) -> KernelSource:
    what = req.op_name
    _float_inputs(req, 1, what)
    a = req.attrs
    n = math.prod(req.inputs[0].shape) // 3
    subset = np.array([i for pair in a.subset for i in pair], np.int64)
    if max(a.left, a.right, int(subset.max())) >= n or math.prod(req.out_shape) != 16:
        raise Unsupported(f"{what}: a landmark index past the input (the reference reports it)")
    if a.version >= 2:
        lits = (f"{a.left}, {a.right}, np.float32({a.opt('target_rotation_radians')!r}), "
                f"{a.opt('output_height')!r}, {a.opt('output_width')!r}, {a.opt('scale_x')!r}, "
                f"{a.opt('scale_y')!r}")
        return _call(req, what, "l2t_v2", 1, lits, (subset,))
    lits = (f"{a.left}, {a.right}, {float(a.opt('input_h'))!r}, {float(a.opt('input_w'))!r}, "
            f"{float(a.opt('output_h'))!r}, {float(a.opt('output_w'))!r}, {float(a.opt('landmarks_range'))!r}, "
            f"{float(a.opt('bbox_size_multiplier'))!r}")
    return _call(req, what, "l2t_v1", 1, lits, (subset,))
