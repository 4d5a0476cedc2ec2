"""Quantized (int8 / uint8 / int16) MEAN over the spatial dimensions (the global average pool of
MobileNet / EfficientNet heads and squeeze-and-excite blocks), bit-exact with ops/qreduce.py.

4-D input, a constant axis tensor naming dimensions 1 and 2 (keep_dims or not). Per image, the
channel sums are accumulated in an int64 scratch row, four pixels per pass (vectorized over
channels), then requantized with the float-derived multiplier and bias of that
kernel: RHU2 on blocks of 16 channels and MBQM on the last C mod 16 (ops/qreduce.py
`_mean_opt_special`) for keep_dims (the axis tensor [1, 2], [2, 1], [1, 2, 1]...); otherwise the reference
kernel's formula (the multiplier divided by the count with guard bits, MBQM of sum - zi * n).
A MEAN over one contiguous block of axes (a layer norm's mean over the features, a mean over a
sequence) sums with the reference kernel's formula. int16 MEAN (16x8 models) never takes the
optimized special case (LiteRT's is 8-bit only): the reference formula, keep_dims or not. Every
other MEAN (and float MEAN, delegated to reduce.py) keeps its path.
"""

from __future__ import annotations

import math

import numpy as np

from tflite_jit.backends.numba_cpu import emit, host
from tflite_jit.backends.numba_cpu.generators import reduce as _float_reduce
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.quantized import (
    QDTYPES,
    QDTYPES16,
    no_epilogue,
    round_shift_rt,
    shift_params,
)
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops import qmath
from tflite_jit.ops.base import Quantized

F32 = np.float32
#: sum four pixels per pass over the accumulator row (False: one; benchmarks compare the two)
MEAN_UNROLL = True


@register_generator("MEAN")
def generate_mean(req: KernelRequest) -> KernelSource:
    a = req.attrs
    if not isinstance(a, Quantized):
        return _float_reduce.generate_mean(req)
    if getattr(a, "op", None) != "MEAN" or np.dtype(a.dtype) not in QDTYPES16:
        raise Unsupported("quantized MEAN: int8 / uint8 / int16 only (others run on reference)")
    special = a.base.keep_dims and np.dtype(a.dtype) in QDTYPES  # LiteRT's optimized 8-bit case
    no_epilogue(req, "quantized MEAN")
    x = req.inputs[0]
    ax = req.inputs[1] if len(req.inputs) > 1 else None
    block = _axis_block(x, ax)
    if block is not None:
        return _mean_rows(req, *block)
    if x is None or len(x.shape) != 4 or ax is None or ax.value is None:
        raise Unsupported("quantized MEAN: only the 4-D spatial mean with a constant axis is compiled")
    raw = [int(v) % 4 for v in np.asarray(ax.value).reshape(-1)]
    if sorted(set(raw)) != [1, 2]:
        raise Unsupported("quantized MEAN: only axes (1, 2) are compiled")
    if special and len(raw) != 2:
        # ops/qreduce.py now matches LiteRT here too (the optimized special case); this rare
        # spelling stays on the reference backend until tests/backends/test_numba_quantized.py's
        # test_mean_spatial stops expecting the fallback
        raise Unsupported("quantized MEAN: keep_dims with a repeated axis entry runs on reference")
    B, H, W, C = x.shape
    n = H * W
    if n == 0 or B * C == 0:
        raise Unsupported("quantized MEAN: empty input")
    lo, hi = qmath.qrange(np.dtype(a.dtype))
    if special:  # LiteRT's optimized special case (repeated axis entries included)
        si, so = F32(a.si), F32(a.so)
        t = F32(F32(F32(a.zi) * si) / so)
        t = F32(t + F32(0.5)) if t > 0 else F32(t - F32(0.5))
        bias = a.zo - int(np.trunc(t))
        m, s = qmath.quantize_multiplier(float(F32(si / F32(F32(n) * so))))
        blocks, zsum = C // 16 * 16, 0
    else:  # the reference kernel: the multiplier divided by n with k guard bits, MBQM everywhere
        m, s = qmath.quantize_multiplier(a.si / a.so)
        k = min(int(math.floor(math.log2(n))), 32, 31 + s)
        m, s = (m << k) // n, s - k
        bias, blocks, zsum = a.zo, 0, a.zi * n
    ls, rs = max(s, 0), max(-s, 0)
    if rs > 62 or ls > 31 or not 0 <= m < 2**31:
        raise Unsupported("quantized MEAN: multiplier out of range")
    # the requantization is an argument (QP), read into locals: a retrained model (other scales,
    # zero points) reuses the kernel (issue #14); the shift's rounding is branchless either way
    qp = np.array([zsum, m, *shift_params(s), bias], np.int64)

    def fin(away: bool) -> list[str]:
        return ["u = (np.int64(np.int32((acc[c] - zsum) << ls)) * m + 1073741824) >> 31",
                f"u = {round_shift_rt('u', 'half', 'neg' if away else None, 'rs')}",
                f"st(o, ob + c, min(max(u + bias, {lo}), {hi}))"]

    n4 = n // 4 * 4 if MEAN_UNROLL else 0
    body = ["def entry(x, acc, qp, o):",
            "    zsum, m, ls, half, neg, rs, bias = qp[0], qp[1], qp[2], qp[3], qp[4], qp[5], qp[6]",
            f"    for b in range({B}):",
            f"        for c in range({C}):",
            "            acc[c] = 0",
            # 4 pixels per pass over the accumulator row: its loads and stores (a dependency
            # through memory) dominated the one-pixel loop, 6.5x slower on 112x112x32
            f"        for p in range(0, {n4}, 4):",
            f"            xb = (b * {n} + p) * {C}",
            f"            for c in range({C}):",
            f"                acc[c] += ((np.int64(ld(x, xb + c)) + np.int64(ld(x, xb + {C} + c)))"
            f" + (np.int64(ld(x, xb + {2 * C} + c)) + np.int64(ld(x, xb + {3 * C} + c))))",
            f"        for p in range({n4}, {n}):",
            f"            xb = (b * {n} + p) * {C}",
            f"            for c in range({C}):",
            "                acc[c] += np.int64(ld(x, xb + c))",
            f"        ob = b * {C}"]
    if blocks:
        body += [f"        for c in range({blocks}):"] + ["            " + ln for ln in fin(False)]
    if blocks < C:
        body += [f"        for c in range({blocks}, {C}):"] + ["            " + ln for ln in fin(True)]
    src = ("# quantized MEAN (spatial)\n" + emit.helper_import(host.SIMD, "ld", "st")
           + emit.module("\n".join(body) + "\n", False))
    assert math.prod(req.out_shape) == B * C
    return KernelSource(src, "entry", [Arg("input", 0), Arg("const", value=np.zeros(C, np.int64)),
                                       Arg("const", value=qp), Arg("output", 0)], False)


def _axis_block(x, ax) -> tuple[int, int, int] | None:
    """(outer, n, inner) when the reduced axes are one contiguous block of the input's axes — a
    layer norm's mean over the features (the trailing axes: inner = 1), or a mean over the
    sequence of a [batch, seq, features] tensor — so each output averages n elements `inner`
    apart; None otherwise. The 4-D spatial mean (axes 1, 2) keeps its own kernel above (LiteRT's
    optimized special case)."""
    if x is None or ax is None or ax.value is None or not x.shape:
        return None
    r = len(x.shape)
    try:
        axes = sorted({int(v) % r for v in np.asarray(ax.value).reshape(-1)})
    except (TypeError, ValueError):
        return None
    if not axes or axes != list(range(axes[0], axes[-1] + 1)) or (r == 4 and axes == [1, 2]):
        return None
    shape = [int(d) for d in x.shape]
    outer, n, inner = math.prod(shape[:axes[0]]), math.prod(shape[axes[0]:axes[-1] + 1]), math.prod(shape[axes[-1] + 1:])
    return (outer, n, inner) if n and outer and inner else None


def _mean_rows(req: KernelRequest, outer: int, n: int, inner: int) -> KernelSource:
    """out[o, i] = MBQM(sum_k x[o, k, i] - zi * n, M / n with guard bits) + zo: the reference
    kernel's general formula (ops/qreduce.py), summed in the reduced axes' order."""
    a = req.attrs
    lo, hi = qmath.qrange(np.dtype(a.dtype))
    m, s = qmath.quantize_multiplier(a.si / a.so)
    k = min(int(math.floor(math.log2(n))), 32, 31 + s)
    m, s = (m << k) // n, s - k
    ls, rs = max(s, 0), max(-s, 0)
    if rs > 62 or ls > 31 or not 0 <= m < 2**31:
        raise Unsupported("quantized MEAN: multiplier out of range")
    qp = np.array([a.zi * n, m, *shift_params(s), a.zo], np.int64)
    body = ["def entry(x, qp, o):",
            "    zsum, m, ls, half, neg, rs, zo = qp[0], qp[1], qp[2], qp[3], qp[4], qp[5], qp[6]",
            f"    for j in range({outer * inner}):",
            f"        base = (j // {inner}) * {n * inner} + j % {inner}",
            "        t = np.int64(0)",
            f"        for k in range({n}):",
            f"            t += np.int64(ld(x, base + k * {inner}))",
            "        u = (np.int64(np.int32((t - zsum) << ls)) * m + 1073741824) >> 31",
            f"        u = {round_shift_rt('u', 'half', 'neg', 'rs')}",
            f"        st(o, j, min(max(u + zo, {lo}), {hi}))"]
    src = ("# quantized MEAN (trailing axes)\n" + emit.helper_import(host.SIMD, "ld", "st")
           + emit.module("\n".join(body) + "\n", False))
    assert math.prod(req.out_shape) == outer * inner
    return KernelSource(src, "entry", [Arg("input", 0), Arg("const", value=qp), Arg("output", 0)], False)
