"""Quantized SOFTMAX with an 8-bit input (int8 -> int8 / int16, uint8 -> uint8 / int16), bit-exact
with ops/qreduce.py (LiteRT's optimized float-table kernel). Float SOFTMAX is delegated to
reduce.py; LOG_SOFTMAX stays on the reference backend. int16 SOFTMAX (16x8 models) is compiled
too, see `_softmax16`.

Per row of the last axis: the integer maximum, e = table[max - x] (the node's 256-entry float32
exp table), the row sum accumulated sequentially in float32 (LiteRT's loop order: the module is
compiled without fastmath, so LLVM may not reassociate it into vector partial sums),
inv = 1 / (sum * so), and per element p = e * inv in float32, then
* int8 / int16 output: C round (half away from zero) to int32 -- INT32_MIN when p is NaN or out
  of range, as x86 converts -- plus the zero point with int32 wrap-around, clamped;
* uint8 output: p + 0.5 truncated to int32 (the zero point is not used), clamped.
"""

from __future__ import annotations

import math

import numpy as np

from tflite_jit.backends.numba_cpu import emit, host
from tflite_jit.backends.numba_cpu.generators import reduce as _float_reduce
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.generators.qquant import exact_module
from tflite_jit.backends.numba_cpu.printer import const_literal
from tflite_jit.backends.numba_cpu.quantized import QDTYPES, no_epilogue
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops import qmath
from tflite_jit.ops.base import Quantized
from tflite_jit.ops.qreduce import QSoftmax16Attrs, softmax16_exp, softmax16_recip

F32 = np.dtype(np.float32)


@register_generator("SOFTMAX")
def generate_softmax(req: KernelRequest) -> KernelSource:
    a = req.attrs
    if not isinstance(a, Quantized):
        return _float_reduce.generate_softmax(req)
    if isinstance(a, QSoftmax16Attrs):
        return _softmax16(req, a)
    if getattr(a, "op", None) != "SOFTMAX" or np.dtype(getattr(a, "in_dtype", "int16")) not in QDTYPES:
        raise Unsupported("quantized SOFTMAX: 8-bit input only (int16 runs on reference)")
    no_epilogue(req, "quantized SOFTMAX")
    x = req.inputs[0] if req.inputs else None
    odt = np.dtype(a.out_dtype)
    if x is None or len(x.shape) < 1 or tuple(x.shape) != tuple(req.out_shape):
        raise Unsupported("quantized SOFTMAX: input of rank >= 1, output of its shape")
    if np.dtype(x.dtype) != np.dtype(a.in_dtype) or np.dtype(req.outputs[0].arg.dtype) != odt:
        raise Unsupported("quantized SOFTMAX: tensor types differ from the node's")
    shape = tuple(int(d) for d in x.shape)
    L = shape[-1]
    rows = math.prod(shape[:-1])
    if L == 0 or rows == 0:
        raise Unsupported("quantized SOFTMAX: empty input")
    lo, hi = qmath.qrange(odt)
    so = const_literal(np.float32(a.so), F32)
    if odt == np.dtype(np.uint8):
        conv = ["        q = p + np.float32(0.5)",
                "        r = np.int64(q) if q >= -2147483648.0 and q < 2147483648.0 else -2147483648"]
    else:
        conv = ["        d = np.float64(p)",
                "        f = np.floor(abs(d))",
                "        d = (f + (1.0 if abs(d) - f >= 0.5 else 0.0)) * (-1.0 if d < 0 else 1.0)",
                "        r = np.int64(d) if d >= -2147483648.0 and d < 2147483648.0 else -2147483648",
                f"        r = ((r + {a.zo} + 2147483648) & 4294967295) - 2147483648"]
    body = ["def entry(x, tab, o):",
            f"    for row in range({rows}):",
            f"        b = row * {L}",
            "        mx = np.int64(ld(x, b))",
            f"        for i in range(b + 1, b + {L}):",
            "            mx = max(mx, np.int64(ld(x, i)))",
            "        s = np.float32(0.0)",
            f"        for i in range(b, b + {L}):",
            "            s = s + ld(tab, mx - np.int64(ld(x, i)))",
            f"        inv = np.float32(1.0) / (s * {so})",
            f"        for i in range(b, b + {L}):",
            "            p = ld(tab, mx - np.int64(ld(x, i))) * inv"]
    body += ["    " + ln for ln in conv]
    body.append(f"            st(o, i, min(max(r, {lo}), {hi}))")
    table = np.ascontiguousarray(np.asarray(a.table, np.float32))
    assert table.shape == (256,)
    return KernelSource(exact_module(f"quantized SOFTMAX {a.in_dtype} -> {odt.name}", body), "entry",
                        [Arg("input", 0), Arg("const", value=table), Arg("output", 0)], False)


#: LiteRT's offset of the normalised row sum before the 1 / (1 + x) lookup (ops/qreduce.py)
_RECIP_OFFSET = (1 << 15) + (1 << 16)


def _softmax16(req: KernelRequest, a: QSoftmax16Attrs) -> KernelSource:
    """int16 -> int16 SOFTMAX, bit-exact with ops/qreduce.py `_softmax16_reference` (LiteRT's
    two interpolated 513-entry tables). The exp of x - max depends only on max - x in
    [0, 65535], so the rescale and the interpolated lookup are one 65536-entry table made at plan
    time from the reference's own functions; likewise 1 / (1 + x) over its clamped int16 input.
    Per row: the maximum, e = etab[max - x] summed in int64 (wrapped to int32 as C), the sum's
    leading zeros h, its normalised mantissa's reciprocal, and (e * rec) rounded by 2**(31 - h)."""
    no_epilogue(req, "quantized SOFTMAX")
    x = req.inputs[0] if req.inputs else None
    i16 = np.dtype(np.int16)
    if (x is None or len(x.shape) < 1 or tuple(x.shape) != tuple(req.out_shape)
            or np.dtype(x.dtype) != i16 or np.dtype(req.outputs[0].arg.dtype) != i16):
        raise Unsupported("quantized SOFTMAX: int16 input of rank >= 1, int16 output of its shape")
    shape = tuple(int(d) for d in x.shape)
    L, rows = shape[-1], math.prod(shape[:-1])
    if L == 0 or rows == 0:
        raise Unsupported("quantized SOFTMAX: empty input")
    span = np.arange(65536, dtype=np.int64)
    etab = np.ascontiguousarray(softmax16_exp(-span, a).astype(np.int32))
    rtab = np.ascontiguousarray(softmax16_recip(span - 32768, a).astype(np.int32))
    body = ["def entry(x, etab, rtab, o):",
            f"    for row in range({rows}):",
            f"        b = row * {L}",
            "        mx = np.int64(ld(x, b))",
            f"        for i in range(b + 1, b + {L}):",
            "            mx = max(mx, np.int64(ld(x, i)))",
            "        t = np.int64(0)",
            f"        for i in range(b, b + {L}):",
            "            t += np.int64(ld(etab, mx - np.int64(ld(x, i))))",
            "        t = ((t + 2147483648) & 4294967295) - 2147483648",
            "        v = max(t, 1)",  # the bit length of max(t, 1): 32 - h
            "        bl = 0",
            "        while v > 0:",
            "            v >>= 1",
            "            bl += 1",
            "        h = 32 - bl",
            "        sh = ((t << (h - 1)) + 8192) >> 14",
            f"        rec = np.int64(ld(rtab, min(max(sh - {_RECIP_OFFSET}, -32768), 32767) + 32768))",
            "        rs = 31 - h",
            "        half = (np.int64(1) << (rs - 1)) if rs > 0 else np.int64(0)",
            f"        for i in range(b, b + {L}):",
            "            r = (np.int64(ld(etab, mx - np.int64(ld(x, i)))) * rec + half) >> rs",
            "            r = ((r + 2147483648) & 4294967295) - 2147483648",
            "            st(o, i, min(max(r, 0), 32767))"]
    src = ("# quantized SOFTMAX int16\n" + emit.helper_import(host.SIMD, "ld", "st")
           + emit.module("\n".join(body) + "\n", False))
    return KernelSource(src, "entry", [Arg("input", 0), Arg("const", value=etab), Arg("const", value=rtab),
                                       Arg("output", 0)], False)
