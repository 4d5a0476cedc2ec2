"""Quantized SOFTMAX with an 8-bit input (int8 -> int8 / int16, uint8 -> uint8 / int16), bit-exact
with ops/qreduce.py (LiteRT's optimized float-table kernel). Float SOFTMAX is delegated to
reduce.py; int16 SOFTMAX and LOG_SOFTMAX stay on the reference backend.

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

from tflite_jit.backends.numba_cpu.generators import reduce as _float_reduce
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.generators.qquant import exact_module
from tflite_jit.backends.numba_cpu.printer import const_literal
from tflite_jit.backends.numba_cpu.quantized import QDTYPES, no_epilogue
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops import qmath
from tflite_jit.ops.base import Quantized

F32 = np.dtype(np.float32)


@register_generator("SOFTMAX")
def generate_softmax(req: KernelRequest) -> KernelSource:
    a = req.attrs
    if not isinstance(a, Quantized):
        return _float_reduce.generate_softmax(req)
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
