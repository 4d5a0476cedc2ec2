"""MediaPipe's Convolution2DTransposeBias (ops/mediapipe.py), the op the selfie-segmentation
models end in (128x128x16 -> 256x256x1): the reference's tensordot plus strided scatter-adds
cost tens of milliseconds there, more than the rest of the model.

The kernel gathers instead of scattering: each output pixel (oy, ox) is reached from input rows
iy = (oy + pad_top - fy) / stride for the kernel rows fy with a zero remainder (and likewise for
columns), so every output element is one bias plus a short dot product, written once, and the
output rows are independent (prange over them). Shapes, strides, padding and the weights'
layout (OHWI) are literals; weights and bias travel as arguments (constants or run-time inputs).
"""

from __future__ import annotations

import math

import numpy as np

from tflite_jit.backends.numba_cpu import emit, simd
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.quantized import no_epilogue
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported

F32 = np.dtype(np.float32)


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
    src = ("# MediaPipe Convolution2DTransposeBias\n" + emit.helper_import(simd, "ld", "st")
           + emit.module("\n".join(body) + "\n", rows > 1))
    return KernelSource(src, "entry", [Arg("input", 0), _arg(req, 1), _arg(req, 2), Arg("output", 0)], rows > 1)
