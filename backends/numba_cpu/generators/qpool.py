"""Quantized (int8 / uint8 / int16) AVERAGE_POOL_2D and MAX_POOL_2D, bit-exact with ops/qnn.py.

Pools move no scale (LiteRT requires equal input and output quantization): only in-image taps
take part; the average is the integer sum divided by their count, rounded half away from zero
(a float64 division of |sum| + count // 2, exact for windows below 2**20 taps: 10x faster than
the int64 division, which did not vectorize);
the maximum starts below every value (an empty window gives the activation minimum); then the
fused activation's clamp. Per output pixel the tap ranges are computed at run time (min/max of
literals), the channels are the inner, vectorized loop over an int64 scratch row. Float pools
are delegated to pool.py.
"""

from __future__ import annotations

import math

import numpy as np

from tflite_jit.backends.numba_cpu import emit, host
from tflite_jit.backends.numba_cpu.generators import pool as _float_pool
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.generators.depthwise import geometry
from tflite_jit.backends.numba_cpu.quantized import check_8bit, no_epilogue
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops.base import Quantized


def _qpool(req: KernelRequest, kind: str) -> KernelSource:
    a = req.attrs
    f = a.base
    check_8bit(req, a.dtype, int16=True)  # int64 sums: 16-bit values need nothing else
    no_epilogue(req, f"quantized {req.op_name}")
    x = req.inputs[0] if req.inputs else None
    if x is None or len(x.shape) != 4 or np.dtype(x.dtype) != np.dtype(a.dtype):
        raise Unsupported(f"quantized {req.op_name}: 4-D input of the node's type only")
    if f.stride_h < 1 or f.stride_w < 1 or f.filter_h < 1 or f.filter_w < 1:
        raise Unsupported(f"quantized {req.op_name}: stride and filter must be >= 1")
    B, H, W, C = x.shape
    KH, KW, SH, SW = f.filter_h, f.filter_w, f.stride_h, f.stride_w
    OH, OW, pt, pl = geometry(f.padding, H, W, KH, KW, SH, SW, 1, 1)
    if tuple(req.out_shape) != (B, OH, OW, C) or math.prod(req.out_shape) == 0:
        raise Unsupported(f"quantized {req.op_name}: output shape {req.out_shape}")
    lo, hi = int(a.act_min), int(a.act_max)
    if kind == "avg" and KH * KW >= 1 << 20:  # the float64 division below is exact below this
        raise Unsupported(f"quantized {req.op_name}: a window of {KH * KW} taps runs on reference")
    if kind == "avg":
        init, upd = "0", "acc[c] += np.int64(ld(x, xb + c))"
        # (|t| + cnt // 2) // cnt with the sign of t, as a float64 division: exact (|t| < 2**40,
        # a non-integer quotient is >= 1 / cnt from an integer, far above the rounding error),
        # and it vectorizes where the int64 division did not
        fin = ["t = acc[c]", "q = np.floor((np.float64(abs(t)) + hcnt) / fcnt)",
               "r = np.int64(q) if t > 0 else -np.int64(q)"]
    else:
        init, upd = f"{-(1 << 40)}", "acc[c] = max(acc[c], np.int64(ld(x, xb + c)))"
        fin = ["r = acc[c]"]
    body = [
        "def entry(x, acc, o):",
        f"    for b in range({B}):",
        f"        for oh in range({OH}):",
        f"            h0 = oh * {SH} - {pt}",
        "            k0 = max(0, -h0)",
        f"            k1 = min({KH}, {H} - h0)",
        f"            for ow in range({OW}):",
        f"                w0 = ow * {SW} - {pl}",
        "                j0 = max(0, -w0)",
        f"                j1 = min({KW}, {W} - w0)",
        "                cnt = max((k1 - k0) * (j1 - j0), 1)",
        "                fcnt = np.float64(cnt)",
        "                hcnt = np.float64(cnt // 2)",
        f"                for c in range({C}):",
        f"                    acc[c] = {init}",
        "                for kh in range(k0, k1):",
        "                    for kw in range(j0, j1):",
        f"                        xb = ((b * {H} + h0 + kh) * {W} + w0 + kw) * {C}",
        f"                        for c in range({C}):",
        f"                            {upd}",
        f"                ob = ((b * {OH} + oh) * {OW} + ow) * {C}",
        f"                for c in range({C}):",
    ] + [f"                    {ln}" for ln in fin] + [
        f"                    st(o, ob + c, min(max(r, {lo}), {hi}))"]
    src = (f"# quantized {req.op_name}\n" + emit.helper_import(host.SIMD, "ld", "st")
           + emit.module("\n".join(body) + "\n", False, arcp=kind != "avg"))  # no reciprocal for / cnt
    return KernelSource(src, "entry", [Arg("input", 0), Arg("const", value=np.zeros(C, np.int64)),
                                       Arg("output", 0)], False)


@register_generator("AVERAGE_POOL_2D")
def generate_average_pool(req: KernelRequest) -> KernelSource:
    if not isinstance(req.attrs, Quantized):
        return _float_pool.generate_average_pool(req)
    return _qpool(req, "avg")


@register_generator("MAX_POOL_2D")
def generate_max_pool(req: KernelRequest) -> KernelSource:
    if not isinstance(req.attrs, Quantized):
        return _float_pool.generate_max_pool(req)
    return _qpool(req, "max")
