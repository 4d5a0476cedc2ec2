"""int8 BATCH_MATMUL (attention's Q·Kᵀ and A·V in int8 transformers), bit-exact with
ops/qmath_ops.py (LiteRT's reference/batch_matmul.h, its only integer kernel):
acc = Σ (x - zx)(y - zy) in int32, MBQM by the float-derived multiplier, + zo, clamped.

Batch dims broadcast (leading dims of size 1 repeat); adj_x / adj_y read the transposed
operand in place through strides. The inner product runs over contiguous memory of both
operands when neither is adjointed on the reduction side; int16 stays on reference (it
requantizes with the 64-bit overload).
"""

from __future__ import annotations

import math

import numpy as np

from tflite_jit.backends.numba_cpu import emit, host
from tflite_jit.backends.numba_cpu.generators import GENERATORS, hybrid, register_generator
from tflite_jit.backends.numba_cpu.quantized import no_epilogue, round_shift_rt, shift_params
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops import Quantized
from tflite_jit.ops.common import c_strides
from tflite_jit.ops.qhybrid import HybridAttrs


def generate_qbmm(req: KernelRequest) -> KernelSource:
    a = req.attrs
    no_epilogue(req, "quantized BATCH_MATMUL")
    if np.dtype(a.dtype) != np.dtype(np.int8):
        raise Unsupported(f"quantized BATCH_MATMUL on {a.dtype} runs on reference")
    x, y = req.inputs[0], req.inputs[1]
    if x is None or y is None or len(x.shape) < 2 or len(y.shape) < 2:
        raise Unsupported("quantized BATCH_MATMUL: operands of rank >= 2")
    xs, ys, out = tuple(x.shape), tuple(y.shape), tuple(req.out_shape)
    adj_x, adj_y = bool(a.base.adj_x), bool(a.base.adj_y)
    M, K = (xs[-1], xs[-2]) if adj_x else (xs[-2], xs[-1])
    K2, N = (ys[-1], ys[-2]) if adj_y else (ys[-2], ys[-1])
    if K != K2 or out[-2:] != (M, N):
        raise Unsupported(f"quantized BATCH_MATMUL: shapes {xs} x {ys} -> {out}")
    batch = out[:-2]
    if len(batch) > 4:
        raise Unsupported("quantized BATCH_MATMUL: more than 4 batch dims")
    # element strides of x[m, k] and y[k, n] within one matrix, and per batch dim (0: broadcast)
    sxm, sxk = (1, M) if adj_x else (K, 1)
    syk, syn = (1, K) if adj_y else (N, 1)

    def batch_strides(shape: tuple[int, ...]) -> list[int]:
        full = (1,) * (len(batch) + 2 - len(shape)) + shape
        st = c_strides(full)
        return [0 if full[d] == 1 else st[d] for d in range(len(batch))]

    bx, by, bo = batch_strides(xs), batch_strides(ys), c_strides(out)[:len(batch)]
    m, s = a.m
    # zero points, multiplier and shift amounts are run-time parameters (only the shift's sign is
    # in the code), so a re-quantized twin reuses the kernel (issue #14)
    qp = np.array([a.zx, a.zy, a.zo, m, *shift_params(s)], np.int64)
    lines = ["def entry(x, y, qp, o):", "    zx, zy, zo, m, l_, h_, k_, r_ = "
             + ", ".join(f"qp[{k}]" for k in range(8))]
    ind = "    "
    offs = {"xb": [], "yb": [], "ob": []}
    for d, n in enumerate(batch):
        lines.append(f"{ind}for d{d} in range({n}):")
        ind += "    "
        for name, st in (("xb", bx), ("yb", by), ("ob", bo)):
            if st[d]:
                offs[name].append(f"d{d} * {st[d]}")
    for name in offs:
        lines.append(f"{ind}{name} = {' + '.join(offs[name]) or '0'}")
    v = "np.int64(np.int32(acc << l_))" if s > 0 else "np.int64(np.int32(acc))"
    lines += [f"{ind}for i in range({M}):",
              f"{ind}    for j in range({N}):",
              f"{ind}        acc = np.int64(0)",
              f"{ind}        for k in range({K}):",
              f"{ind}            acc += (np.int64(ld(x, xb + i * {sxm} + k * {sxk})) - zx)"
              f" * (np.int64(ld(y, yb + k * {syk} + j * {syn})) - zy)",
              f"{ind}        r = ({v} * m + {1 << 30}) >> 31"]
    if s <= 0:
        lines.append(f"{ind}        r = {round_shift_rt('r', 'h_', 'k_', 'r_')}")
    lines.append(f"{ind}        st(o, ob + i * {N} + j, min(max(r + zo, -128), 127))")
    if math.prod(out) == 0:
        lines = ["def entry(x, y, qp, o):", "    return"]
    src = ("# quantized BATCH_MATMUL (int8)\n" + emit.helper_import(host.SIMD, "ld", "st")
           + emit.module("\n".join(lines) + "\n", False))
    return KernelSource(src, "entry", [Arg("input", 0), Arg("input", 1), Arg("const", value=qp),
                                       Arg("output", 0)], False)


assert hybrid  # imported first: its BATCH_MATMUL (hybrid nodes, else gemm.py's float kernel) is wrapped here
_PREV = GENERATORS["BATCH_MATMUL"]


@register_generator("BATCH_MATMUL")
def generate_bmm(req: KernelRequest, *rest) -> KernelSource:
    """int8 nodes here; hybrid and float ones to the generator registered before."""
    if isinstance(req.attrs, Quantized) and not isinstance(req.attrs, HybridAttrs):
        return generate_qbmm(req)
    return _PREV(req, *rest)
