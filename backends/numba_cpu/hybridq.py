"""What every dynamic-range ("hybrid") kernel shares, compiled once (Numba's cache=True) instead of
once per generated module: the input quantizer and the float finishing passes. Generated modules
import them (generators/hybrid.py, tconv.py); modcache keys those modules on this file's text.

No fast-math anywhere here: every float32 / float64 operation rounds exactly where
ops/qhybrid.py's NumPy reference rounds, and nothing is contracted into an FMA.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from tflite_jit.backends.numba_cpu.helpercache import njit as helper_njit
from tflite_jit.backends.numba_cpu.simd import VW, vhmax, vhmin, vload, vmax, vmin, vsplat

#: fastmath=False explicitly: a callee without the option inherits its caller's fast-math
_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy", boundscheck=False)


@helper_njit(inline="always", **_JIT)
def row_range(x, xo, n):
    """(min(0, min x), max(0, max x)) of the row: VW-lane vector minima and maxima in four
    independent chains (one chain waits on each compare-and-select: latency-bound at ~5 cycles a
    vector, measured 0.16 ns per value; four run 4x faster), then the lanes and the tail (min /
    max are exact in any order)."""
    head4 = n - n % (4 * VW)
    head = n - n % VW
    lo0 = vsplat(np.float32(0.0))
    hi0, lo1, hi1, lo2, hi2, lo3, hi3 = lo0, lo0, lo0, lo0, lo0, lo0, lo0
    for i in range(0, head4, 4 * VW):
        v0 = vload(x, xo + i)
        v1 = vload(x, xo + i + VW)
        v2 = vload(x, xo + i + 2 * VW)
        v3 = vload(x, xo + i + 3 * VW)
        lo0 = vmin(lo0, v0)
        hi0 = vmax(hi0, v0)
        lo1 = vmin(lo1, v1)
        hi1 = vmax(hi1, v1)
        lo2 = vmin(lo2, v2)
        hi2 = vmax(hi2, v2)
        lo3 = vmin(lo3, v3)
        hi3 = vmax(hi3, v3)
    for i in range(head4, head, VW):
        v = vload(x, xo + i)
        lo0 = vmin(lo0, v)
        hi0 = vmax(hi0, v)
    lo = vhmin(vmin(vmin(lo0, lo1), vmin(lo2, lo3)))
    hi = vhmax(vmax(vmax(hi0, hi1), vmax(hi2, hi3)))
    for i in range(head, n):
        v = x[xo + i]
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


@helper_njit(**_JIT)
def hq_row(x, xo, n, XQ, asym):
    """ops/qhybrid.py `quantize_rows` for the row x[xo:xo+n]: writes q - zero point (an integer)
    as float32 to XQ[xo:xo+n] and returns the row's scale."""
    return hq_row_zp(x, xo, n, XQ, asym, False)[0]


@helper_njit(inline="always", **_JIT)
def row_params(lo, hi, asym):
    """(scale, the multiplier LiteRT quantizes with, zero point, lowest q, flat) of a row whose
    range is [lo, hi] (row_range); `flat`: an all-zero row (symmetric) or a constant one
    (asymmetric), which LiteRT quantizes to zeros with scale 1: its multiplier is 0, so the
    quantizing loops write zeros without a branch of their own (measured: an early-return
    branch for it cost ~10 ns a row, a third of a 64-value row's quantization)."""
    if not asym:
        rng = max(-lo, hi)
        if rng == np.float32(0.0):
            return np.float32(1.0), np.float32(0.0), 0, -127, True
        return np.float32(rng / np.float32(127.0)), np.float32(np.float32(127.0) / rng), 0, -127, False
    if lo == hi:
        return np.float32(1.0), np.float32(0.0), 0, -128, True
    scale = np.float64(np.float32(hi - lo)) / 255.0
    rmin = np.float64(lo)
    rmax = np.float64(hi)
    if 128.0 + abs(rmin / scale) < 127.0 + abs(rmax / scale):
        zpd = -128.0 - rmin / scale
    else:
        zpd = 127.0 - rmax / scale
    if zpd <= -128.0:
        zp = -128
    elif zpd >= 127.0:
        zp = 127
    else:
        zp = int(np.sign(zpd) * np.floor(abs(zpd) + 0.5))
    sf = np.float32(scale)
    return sf, np.float32(1.0 / np.float64(sf)), zp, -128, False


@helper_njit(inline="always", **_JIT)
def q_vec(v, inv, zpf, qlof):
    """One value of the 8-wide vector part of a row: trunc(y +- 0.5) + zp, clamped, with the add
    in float32 (every value here is an integer of magnitude < 2**9, exact), so that LLVM
    vectorizes the caller's loop (inlined by Numba: a call per value, across compiled libraries,
    would not vectorize); float32."""
    y = np.float32(v * inv)
    h = np.float32(-0.5) if y < np.float32(0.0) else np.float32(0.5)
    q = np.float32(np.trunc(np.float32(y + h)) + zpf)
    q = qlof if q < qlof else q
    return np.float32(127.0) if q > np.float32(127.0) else q


@helper_njit(inline="always", **_JIT)
def q_tail(v, inv, zp, qlo):
    """One value of the scalar tail of a row: std::round, half away from zero (in float64,
    where |y| + 0.5 is exact), + zp, clamped; an int."""
    d = np.float64(np.float32(v * inv))
    q = int(np.sign(d) * np.floor(abs(d) + 0.5)) + zp
    return min(max(q, qlo), 127)


@helper_njit(**_JIT)
def hq_row_zp(x, xo, n, XQ, asym, raw):
    """hq_row, returning (scale, zero point); `raw`: writes q itself (in [-128, 127]) instead of
    q - zero point (in [0, 255] for an all-positive row), for a caller that subtracts
    zero point * sum(w) afterwards."""
    lo, hi = row_range(x, xo, n)
    sf, inv, zp, qlo, _ = row_params(lo, hi, asym)  # a flat row: inv = 0 quantizes it to zeros
    sub = 0 if raw else zp
    head = n & ~7
    zpf = np.float32(zp)
    qlof = np.float32(qlo)
    subf = np.float32(sub)
    xr = x[xo:xo + head]  # views indexed from 0: no negative-index wrap-around test per element
    qr = XQ[xo:xo + head]
    for i in range(head):
        qr[i] = np.float32(q_vec(xr[i], inv, zpf, qlof) - subf)
    for i in range(head, n):
        XQ[xo + i] = np.float32(q_tail(x[xo + i], inv, zp, qlo) - sub)
    return sf, zp


@helper_njit(**_JIT)
def hq_row_u8(x, xo, n, XU, uo, asym):
    """hq_row_zp's raw q of the row x[xo:xo+n], written as the byte q + 128 to XU[uo:uo+n] (for
    an unsigned-by-signed int8 dot product, qdot.py); (scale, zero point)."""
    lo, hi = row_range(x, xo, n)
    sf, inv, zp, qlo, _ = row_params(lo, hi, asym)  # a flat row: inv = 0 quantizes it to zeros
    head = n & ~7
    zpf = np.float32(zp)
    qlof = np.float32(qlo)
    xr = x[xo:xo + head]
    ur = XU[uo:uo + head]
    for i in range(head):
        ur[i] = np.uint8(np.int32(q_vec(xr[i], inv, zpf, qlof)) + 128)
    for i in range(head, n):
        XU[uo + i] = np.uint8(q_tail(x[xo + i], inv, zp, qlo) + 128)
    return sf, zp


@helper_njit(**_JIT)
def finish_rows(o, SF, SW, B, rows, inner, n, has_bias, lo, hi):
    """o [rows * inner, n] float32 sums, in place: clamp(float32(o * float32(sf_r * sw_c)) + b_c)
    (FULLY_CONNECTED, BATCH_MATMUL: inner = 1; CONV_2D: the inner pixels of image r share its
    scale); lo / hi are -inf / inf for no clamp (NaN passes, as np.clip lets it)."""
    for r in range(rows):
        sf = SF[r]
        for p in range(inner):
            base = (r * inner + p) * n
            for c in range(n):
                v = np.float32(o[base + c] * np.float32(sf * SW[c]))
                if has_bias:
                    v = np.float32(v + B[c])
                if v < lo:
                    v = lo
                if v > hi:
                    v = hi
                o[base + c] = v


@helper_njit(**_JIT)
def finish_depthwise(o, SF, SW, B, rows, inner, n, has_bias, lo, hi):
    """finish_rows in DEPTHWISE_CONV_2D's order: (acc * sw) * sf on blocks of 4 channels,
    (acc * sf) * sw on the last n mod 4."""
    head = n & ~3
    for r in range(rows):
        sf = SF[r]
        for p in range(inner):
            base = (r * inner + p) * n
            for c in range(n):
                v = o[base + c]
                if c < head:
                    v = np.float32(np.float32(v * SW[c]) * sf)
                else:
                    v = np.float32(np.float32(v * sf) * SW[c])
                if has_bias:
                    v = np.float32(v + B[c])
                if v < lo:
                    v = lo
                if v > hi:
                    v = hi
                o[base + c] = v


@intrinsic
def _f32_from_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@helper_njit(inline="always", **_JIT)
def eigen_logistic(x):
    """ops/sequence.py `eigen_logistic` for one float32 (LiteRT's LSTM gate sigmoid), precise
    and branch-free (inlined into the caller's loop, which then vectorizes)."""
    f = np.float32
    xh = f(min(x, f(16.6355324)) * f(0.5))
    m = f(np.floor(f(f(xh * f(1.44269504088896341)) + f(0.5))))
    r = f(f(m * f(-0.693359375)) + xh)
    r = f(f(m * f(2.12194440e-4)) + r)
    r2 = f(r * r)
    p_even = f(f(r2 * f(4.1898667812347412109375e-2)) + f(0.49999141693115234375))
    p_odd = f(f(r2 * f(8.33471305668354034423828125e-3)) + f(0.16666877269744873046875))
    p = f(f(r * p_odd) + p_even)
    p = f(f(r2 * p) + f(r + f(1.0)))
    # 2**m from its bits (m in [-76, 12] once x >= -104; below, the result is 0 anyway)
    mi = np.int32(max(m, f(-126.0)))
    e = f(p * _f32_from_bits(np.int32((mi + np.int32(127)) << np.int32(23))))
    e = f(e * e)
    y = f(e / f(f(1.0) + e))
    return f(0.0) if x < f(-104.0) else y


@helper_njit(inline="always", **_JIT)
def eigen_tanh(x):
    """ops/sequence.py `eigen_tanh` for one float32 (LiteRT's LSTM tanh), precise."""
    f = np.float32
    xc = min(max(x, f(-7.90738964080810547)), f(7.90738964080810547))
    x2 = f(xc * xc)
    x3 = f(x2 * xc)
    p = f(f(f(1.394553628e-8) * x2) + f(2.102733560e-5))
    p = f(f(p * x2) + f(3.520756727e-3))
    p = f(f(p * x2) + f(1.340216100e-1))
    q = f(f(f(8.015776984e-7) * x2) + f(3.326951409e-4))
    q = f(f(q * x2) + f(2.597254514e-2))
    q = f(f(q * x2) + f(4.673548340e-1))
    q = f(f(q * x2) + f(1.0))
    p = f(f(x3 * p) + xc)
    return f(p / q)


@helper_njit(**_JIT)
def eigen_logistic_scalar(x):
    """ops/sequence.py `eigen_logistic_scalar` for one float32: Eigen's scalar logistic, which
    LiteRT's vector loop uses before the first aligned packet and after the last."""
    f = np.float32
    e = f(math.exp(np.float64(min(x, f(16.6355324)))))
    return f(e / f(f(1.0) + e))
