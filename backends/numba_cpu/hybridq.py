"""What every dynamic-range ("hybrid") kernel shares, compiled once (Numba's cache=True) instead of
once per generated module: the input quantizer and the float finishing passes. Generated modules
import them (generators/hybrid.py, tconv.py); modcache keys those modules on this file's text.

No fast-math anywhere here: every float32 / float64 operation rounds exactly where
ops/qhybrid.py's NumPy reference rounds, and nothing is contracted into an FMA.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from tflite_jit.backends.numba_cpu.simd import VW, vhmax, vhmin, vload, vmax, vmin, vsplat

#: fastmath=False explicitly: a callee without the option inherits its caller's fast-math
_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy", boundscheck=False)


@numba.njit(**_JIT)
def row_range(x, xo, n):
    """(min(0, min x), max(0, max x)) of the row: VW-lane vector minima and maxima, then the lanes
    and the tail (min / max are exact in any order; 0.03 ns per value where the scalar loop,
    which LLVM would not vectorize, took 0.47)."""
    head = n - n % VW
    vlo = vsplat(np.float32(0.0))
    vhi = vlo
    for i in range(0, head, VW):
        v = vload(x, xo + i)
        vlo = vmin(vlo, v)
        vhi = vmax(vhi, v)
    lo = vhmin(vlo)
    hi = vhmax(vhi)
    for i in range(head, n):
        v = x[xo + i]
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


@numba.njit(**_JIT)
def hq_row(x, xo, n, XQ, asym):
    """ops/qhybrid.py `quantize_rows` for the row x[xo:xo+n]: writes q - zero point (an integer)
    as float32 to XQ[xo:xo+n] and returns the row's scale."""
    return hq_row_zp(x, xo, n, XQ, asym, False)[0]


@numba.njit(**_JIT)
def hq_row_zp(x, xo, n, XQ, asym, raw):
    """hq_row, returning (scale, zero point); `raw`: writes q itself (in [-128, 127]) instead of
    q - zero point (in [0, 255] for an all-positive row), for a caller that subtracts
    zero point * sum(w) afterwards (join_zero_point)."""
    lo, hi = row_range(x, xo, n)
    zp = 0
    qlo = -127
    if not asym:
        rng = max(-lo, hi)
        if rng == np.float32(0.0):
            for i in range(n):
                XQ[xo + i] = np.float32(0.0)
            return np.float32(1.0), 0
        sf = np.float32(rng / np.float32(127.0))
        inv = np.float32(np.float32(127.0) / rng)
    else:
        if lo == hi:
            for i in range(n):
                XQ[xo + i] = np.float32(0.0)
            return np.float32(1.0), 0
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
        inv = np.float32(1.0 / np.float64(sf))
        qlo = -128
    sub = 0 if raw else zp
    head = n & ~7
    # the 8-wide vector rounding: trunc(y +- 0.5), the add in float32; all in float32 (every value
    # here is an integer of magnitude < 2**9, exact), so LLVM vectorizes the loop
    zpf = np.float32(zp)
    qlof = np.float32(qlo)
    subf = np.float32(sub)
    xr = x[xo:xo + head]  # views indexed from 0: no negative-index wrap-around test per element
    qr = XQ[xo:xo + head]
    for i in range(head):
        y = np.float32(xr[i] * inv)
        h = np.float32(-0.5) if y < np.float32(0.0) else np.float32(0.5)
        q = np.float32(np.trunc(np.float32(y + h)) + zpf)
        q = qlof if q < qlof else q
        q = np.float32(127.0) if q > np.float32(127.0) else q
        qr[i] = np.float32(q - subf)
    # the tail: std::round, half away from zero (in float64, where |y| + 0.5 is exact)
    for i in range(head, n):
        d = np.float64(np.float32(x[xo + i] * inv))
        q = int(np.sign(d) * np.floor(abs(d) + 0.5)) + zp
        q = min(max(q, qlo), 127)
        XQ[xo + i] = np.float32(q - sub)
    return sf, zp


@numba.njit(**_JIT)
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


@numba.njit(**_JIT)
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


@numba.njit(**_JIT)
def int_rows_gemm(XQ, W, o, rows, n, k):
    """o[r, c] = float32(sum_i XQ[r, i] * W[c, i]) in int64: the integer product where a float32
    sum could leave the exact range (a FULLY_CONNECTED with a long row); XQ holds integers."""
    for r in range(rows):
        for c in range(n):
            acc = 0
            for i in range(k):
                acc += np.int64(XQ[r * k + i]) * np.int64(W[c * k + i])
            o[r * n + c] = np.float32(acc)


@numba.njit(**_JIT)
def join_split(S, o, m, n, base):
    """o[i, c] = float32(base * S[i, c] + S[i, n + c]) for S [m, 2n]: a convolution whose weights
    were split as w = base * hi + lo (generators/hybrid.py `_split_weights`) ran as one float32
    GEMM with 2n output channels, each of whose sums is an exact integer below 2**24; their
    combination is exact in float64 (below 2**53), so the one rounding is float64 -> float32, as
    LiteRT's float(int32 accumulator) rounds."""
    for i in range(m):
        for c in range(n):
            acc = np.float64(S[i * 2 * n + c]) * base + np.float64(S[i * 2 * n + n + c])
            o[i * n + c] = np.float32(acc)


@numba.njit(**_JIT)
def join_zero_point(o, ZP, RS, PH, PW, rows, oh, ow, n, nw):
    """o [rows, oh, ow, n] float32 sums of q * w (q raw, hq_row_zp), in place: the centered
    accumulator sum (q - zp) * w over the taps inside the image = o - zp_r * RS[PH[y], PW[x], c],
    RS the weights' sums over those taps (a few distinct border patterns); exact in float64 and
    rounded once to float32, as LiteRT rounds its int32 accumulator. RS flat, nw column patterns."""
    for r in range(rows):
        zp = np.float64(ZP[r])
        for y in range(oh):
            for x in range(ow):
                base = ((r * oh + y) * ow + x) * n
                rb = (PH[y] * nw + PW[x]) * n
                for c in range(n):
                    o[base + c] = np.float32(np.float64(o[base + c]) - zp * RS[rb + c])

@intrinsic
def _f32_from_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@numba.njit(inline="always", **_JIT)
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


@numba.njit(inline="always", **_JIT)
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


@numba.njit(**_JIT)
def eigen_logistic_scalar(x):
    """ops/sequence.py `eigen_logistic_scalar` for one float32: Eigen's scalar logistic, which
    LiteRT's vector loop uses before the first aligned packet and after the last."""
    f = np.float32
    e = f(math.exp(np.float64(min(x, f(16.6355324)))))
    return f(e / f(f(1.0) + e))
