"""RESIZE_BILINEAR on NHWC: float32 (ops/image.py's rule) and int8 / int16 (ops/qmovement.py's
10-bit fixed-point rule, bit-exact); RESIZE_NEAREST_NEIGHBOR is a pure copy (movement.py).

The per-axis tables (neighbours, fractions or integer weights) come from the same functions the
references use, computed once at plan time and passed as constant arguments; the kernel walks
output rows, hoists the two source rows and each column's neighbours and weights, and blends whole
channel vectors in the innermost loop (literal bounds, so it vectorizes). The float blend uses
the four products of the weights (1-dy)(1-dx), dy(1-dx), (1-dy)dx, dy*dx, which differs from the
reference's left-to-right products by rounding only (LiteRT's own optimized kernel uses yet
another order). uint8 stays on the reference: its float32 sum is truncated, so it would need the
reference's exact operation order, which fastmath does not keep.
"""

from __future__ import annotations

import numpy as np

from tflite_jit.backends.numba_cpu import emit, host
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.generators.movement import check_plain
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops.image import ResizeAttrs, bilinear_axis
from tflite_jit.ops.qmovement import QResizeAttrs, bilinear_int_axis


@register_generator("RESIZE_BILINEAR")
def generate_bilinear(req: KernelRequest) -> KernelSource:
    check_plain(req)
    x = req.inputs[0]
    if x is None or len(x.shape) != 4 or len(req.out_shape) != 4:
        raise Unsupported("RESIZE_BILINEAR: input and output must be 4-D (the reference reports it)")
    n, h, w, c = (int(d) for d in x.shape)
    on, oh, ow, oc = (int(d) for d in req.out_shape)
    if (on, oc) != (n, c) or min(h, w, oh, ow, c, n) < 1:
        raise Unsupported(f"RESIZE_BILINEAR: output {list(req.out_shape)} does not fit input {list(x.shape)}")
    a = req.attrs
    dt = np.dtype(x.dtype)
    quantized = isinstance(a, QResizeAttrs)
    base: ResizeAttrs = a.base if quantized else a
    if dt != np.dtype(req.outputs[0].arg.dtype):
        raise Unsupported("RESIZE_BILINEAR: input and output types differ")
    if not quantized and dt == np.float32:
        y0, y1, dy = bilinear_axis(h, oh, base)
        x0, x1, dx = bilinear_axis(w, ow, base)
        tabs = dict(ty0=y0 * (w * c), ty1=y1 * (w * c), tdy=dy.astype(np.float32),
                    tx0=x0 * c, tx1=x1 * c, tdx=dx.astype(np.float32))
        col = ["dx = tdx[ox]", "ex = np.float32(1.0) - dx",
               "w00 = ey * ex", "w10 = dy * ex", "w01 = ey * dx", "w11 = dy * dx"]
        blend = ["st(o, ob + k, ld(x, a0 + k) * w00 + ld(x, a1 + k) * w10"
                 " + ld(x, b0 + k) * w01 + ld(x, b1 + k) * w11)"]
        row = ["dy = tdy[oy]", "ey = np.float32(1.0) - dy"]
    elif quantized and dt in (np.dtype(np.int8), np.dtype(np.int16)):
        y0, y1, wy0, wy1 = bilinear_int_axis(h, oh, base.align_corners, base.half_pixel_centers)
        x0, x1, wx0, wx1 = bilinear_int_axis(w, ow, base.align_corners, base.half_pixel_centers)
        tabs = dict(ty0=y0 * (w * c), ty1=y1 * (w * c), twy0=wy0, twy1=wy1,
                    tx0=x0 * c, tx1=x1 * c, twx0=wx0, twx1=wx1)
        lo, hi = np.iinfo(dt).min, np.iinfo(dt).max
        row = ["vy0 = twy0[oy]", "vy1 = twy1[oy]"]
        col = ["vx0 = twx0[ox]", "vx1 = twx1[ox]",
               "w00 = vy0 * vx0", "w10 = vy1 * vx0", "w01 = vy0 * vx1", "w11 = vy1 * vx1"]
        blend = ["s = (np.int64(ld(x, a0 + k)) * w00 + np.int64(ld(x, a1 + k)) * w10"
                 " + np.int64(ld(x, b0 + k)) * w01 + np.int64(ld(x, b1 + k)) * w11)",
                 # round half away from zero, then C division by 2^20 (truncates toward zero)
                 "s = s + (np.int64(1 << 19) if s >= 0 else np.int64(-(1 << 19)))",
                 "q = (s >> 20) if s >= 0 else -((-s) >> 20)",
                 f"st(o, ob + k, min(max(q, {lo}), {hi}))"]
    else:
        raise Unsupported(f"RESIZE_BILINEAR on {'quantized ' if quantized else ''}{dt} runs on reference")
    for t, n_in in ((y0, h), (y1, h), (x0, w), (x1, w)):  # the kernel does not bounds-check
        if t.size and (t.min() < 0 or t.max() >= n_in):
            raise Unsupported("RESIZE_BILINEAR: a source index outside the input (runs on reference)")
    names = list(tabs)
    body = [f"def entry(xa, oa, {', '.join(names)}):",
            f"    x = xa.reshape({n * h * w * c})",
            f"    o = oa.reshape({on * oh * ow * oc})",
            f"    for b in range({n}):",
            f"        for oy in range({oh}):",
            f"            r0 = b * {h * w * c} + ty0[oy]",
            f"            r1 = b * {h * w * c} + ty1[oy]",
            *[f"            {ln}" for ln in row],
            f"            ob0 = (b * {oh} + oy) * {ow * c}",
            f"            for ox in range({ow}):",
            "                a0 = r0 + tx0[ox]",
            "                a1 = r1 + tx0[ox]",
            "                b0 = r0 + tx1[ox]",
            "                b1 = r1 + tx1[ox]",
            f"                ob = ob0 + ox * {c}",
            *[f"                {ln}" for ln in col],
            f"                for k in range({c}):",
            *[f"                    {ln}" for ln in blend]]
    src = ("# RESIZE_BILINEAR\n" + emit.helper_import(host.SIMD, "ld", "st")
           + emit.module("\n".join(body) + "\n", False))
    args = [Arg("input", 0), Arg("output", 0)] + [Arg("const", value=np.ascontiguousarray(tabs[k])) for k in names]
    return KernelSource(src, "entry", args, False)
