"""int8 dot products on 16 int32 lanes: the product of dynamic-range FULLY_CONNECTED and CONV_2D
nodes (generators/hybrid.py), LiteRT's int32 accumulator computed as an integer instead of as
float32 sums of integers.

Why: the float32 path (quantized inputs and int8 weights as float32 integers, the GEMM of
gemm.py) moves 4x the weight bytes and is exact only while sums stay below 2**24. Here the
integer accumulator is exact for any row length, as LiteRT's. On AVX512-VNNI hosts the weights
stay int8, packed [N/16, K/4, 16, 4], and each step multiplies 4 input bytes (splat over 16
lanes) by 16 columns x 4 weight bytes and adds the 4 products into each lane: one `vpdpbusd`
(qsimd.dpbusd, which qconv's int8 GEMM uses too). vpdpbusd multiplies *unsigned* bytes by signed
ones, so inputs are stored as q + 128 and 128 * sum(w) is subtracted after (`hybrid_fc_i8`):
exact integer algebra. Elsewhere (`host.PAIRS`) the weights are widened to int16 pairs
[N/16, K/2, 16, 2] at plan time and each step multiplies 2 input bytes (zero-extended, the same
q + 128) with `vpmaddwd` (qsimd.pmaddwd); tiles of 2 rows x 2 blocks fit AVX2's 16 registers.

The kernels take their shapes as arguments, so one compile (Numba's cache=True) serves every
such node of every model on this machine. (qconv.int_gemm, the int8 models' GEMM, is generated
per shape instead: its register tiles are literal, which pays for full-integer layers.)
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from tflite_jit.backends.numba_cpu.helpercache import njit as helper_njit
from tflite_jit.backends.numba_cpu.host import GROUP, LANES, PAIRS, PIX_BLOCK, SERIAL_OPS, pack_weights  # noqa: F401 (re-exported)
from tflite_jit.backends.numba_cpu.hybridq import finish_rows, hq_row_u8
from tflite_jit.backends.numba_cpu.qsimd import dpbusd, pmaddwd
from tflite_jit.backends.numba_cpu.simd import check_array, check_int, elem_ptr, splat

_I32, _I64 = ir.IntType(32), ir.IntType(64)
_V32 = ir.VectorType(_I32, LANES)
_V2U8, _V2I16 = ir.VectorType(ir.IntType(8), 2), ir.VectorType(ir.IntType(16), 2)
#: bytes per 16-column block and k4 group of the packed weights (host.pack_weights)
_WG = 128 if PAIRS else 64


def _dot_tile(rows: int, blocks: int):
    """An intrinsic computing `rows` input rows x `blocks` 16-column blocks over k4 steps (see
    module doc): rows * blocks independent accumulator chains, so the multiply-adds overlap
    instead of waiting on each other (one chain is latency-bound)."""
    name = f"dot{rows}x{blocks}"

    def typer(typingctx, x, xi, xs, w, wi, ws, k4, acc, ai, as_):
        check_array(x, name, types.uint8)
        check_array(w, name, types.int8)
        check_array(acc, name, types.int32)
        for i in (xi, xs, wi, ws, k4, ai, as_):
            check_int(i, name)

        def codegen(context, builder, sig, args):
            x, xi, xs, w, wi, ws, k4, acc, ai, as_ = args
            tys = sig.args
            xp = elem_ptr(context, builder, tys[0], x, xi, tys[1])
            wp = elem_ptr(context, builder, tys[3], w, wi, tys[4])
            ap = elem_ptr(context, builder, tys[7], acc, ai, tys[8])
            xs64 = context.cast(builder, xs, tys[2], types.int64)
            ws64 = context.cast(builder, ws, tys[5], types.int64)
            as64 = context.cast(builder, as_, tys[9], types.int64)
            n = context.cast(builder, k4, tys[6], types.int64)
            zero = ir.Constant(_V32, None)
            slots = [[cgutils.alloca_once_value(builder, zero) for _ in range(blocks)] for _ in range(rows)]
            xrows = [builder.gep(xp, [builder.mul(xs64, ir.Constant(_I64, r))]) for r in range(rows)]
            wblocks = [builder.gep(wp, [builder.mul(ws64, ir.Constant(_I64, b))]) for b in range(blocks)]
            if PAIRS:  # k4 groups of 4 = 2 * k4 steps of a pair of int16 (64 weight bytes each)
                n = builder.mul(n, ir.Constant(_I64, 2))
            with cgutils.for_range(builder, n) as loop:
                j = loop.index
                j64 = builder.mul(j, ir.Constant(_I64, 64))
                wv = [builder.load(builder.bitcast(builder.gep(wb, [j64]), _V32.as_pointer()), align=1)
                      for wb in wblocks]
                for r in range(rows):
                    if PAIRS:  # bytes 2j, 2j+1 (q + 128, unsigned) as two int16 in every lane
                        pair = builder.load(builder.bitcast(builder.gep(xrows[r], [builder.mul(j, ir.Constant(_I64, 2))]),
                                                            _V2U8.as_pointer()), align=1)
                        xb = builder.bitcast(builder.zext(pair, _V2I16), _I32)
                    else:
                        xb = builder.load(builder.bitcast(builder.gep(xrows[r], [builder.mul(j, ir.Constant(_I64, 4))]),
                                                          _I32.as_pointer()), align=1)
                    xv = splat(builder, xb, _V32)
                    for b in range(blocks):
                        step = pmaddwd if PAIRS else dpbusd
                        builder.store(step(builder, builder.load(slots[r][b]), xv, wv[b]), slots[r][b])
            for r in range(rows):
                for b in range(blocks):
                    out = builder.gep(ap, [builder.add(builder.mul(as64, ir.Constant(_I64, r)),
                                                       ir.Constant(_I64, LANES * b))])
                    builder.store(builder.load(slots[r][b]), builder.bitcast(out, _V32.as_pointer()), align=1)
            return context.get_dummy_value()

        return types.void(x, xi, xs, w, wi, ws, k4, acc, ai, as_), codegen

    typer.__name__ = name
    return intrinsic(typer)


#: rows x 16-column blocks per tile: 4 x 4 (16 chains of one zmm each) on VNNI; 2 x 2 for int16
#: pairs on AVX2 (4 chains of two ymm each: a sweep on an AVX2 EPYC, 64 rows x 128 columns,
#: K 256 / 1152: 2x2 57-58 GMAC/s, 4x1 45, 1x4 40-48, 4x2 35-37, 2x4 31-37, 4x4 28-32; the
#: larger tiles spill accumulators out of the 16 registers)
_TR, _TB = (2, 2) if PAIRS else (4, 4)
dot_tile = _dot_tile(_TR, _TB)
dot_half = _dot_tile(_TR, max(_TB // 2, 1))
dot_col = _dot_tile(_TR, 1)
dot_row = _dot_tile(1, _TB)
dot1x1 = _dot_tile(1, 1)


@intrinsic
def copy_bytes(typingctx, dst, di, src, si, n):
    """dst[di:di+n] = src[si:si+n] for byte arrays: one memcpy (an im2col tap's channels)."""
    check_array(dst, "copy_bytes", types.uint8)
    check_array(src, "copy_bytes", types.uint8)
    for i in (di, si, n):
        check_int(i, "copy_bytes")

    def codegen(context, builder, sig, args):
        d = elem_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        s = elem_ptr(context, builder, sig.args[2], args[2], args[3], sig.args[3])
        cgutils.raw_memcpy(builder, d, s, context.cast(builder, args[4], sig.args[4], types.intp), 1)
        return context.get_dummy_value()

    return types.void(dst, di, src, si, n), codegen


@intrinsic
def zero_bytes(typingctx, dst, di, n):
    """dst[di:di+n] = 0 for a byte array: one memset."""
    check_array(dst, "zero_bytes", types.uint8)
    for i in (di, n):
        check_int(i, "zero_bytes")

    def codegen(context, builder, sig, args):
        d = elem_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        cgutils.memset(builder, d, context.cast(builder, args[2], sig.args[2], types.intp), 0)
        return context.get_dummy_value()

    return types.void(dst, di, n), codegen


_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy", boundscheck=False)


@helper_njit(**_JIT)
def dot_rows(XU, xo, xs, WP, k4, nb, ACC, rows):
    """ACC[r, :] (row stride nb * 16) = the products of byte rows XU[xo + r * xs:] with every
    16-column block, in tiles of _TR rows x _TB blocks where they fit."""
    npad = nb * 16
    ws = k4 * _WG
    r = 0
    while r + _TR <= rows:
        cb = 0
        while cb + _TB <= nb:
            dot_tile(XU, xo + r * xs, xs, WP, cb * ws, ws, k4, ACC, r * npad + cb * 16, npad)
            cb += _TB
        while _TB >= 4 and cb + _TB // 2 <= nb:
            dot_half(XU, xo + r * xs, xs, WP, cb * ws, ws, k4, ACC, r * npad + cb * 16, npad)
            cb += _TB // 2
        while cb < nb:
            dot_col(XU, xo + r * xs, xs, WP, cb * ws, ws, k4, ACC, r * npad + cb * 16, npad)
            cb += 1
        r += _TR
    while r < rows:
        cb = 0
        while cb + _TB <= nb:
            dot_row(XU, xo + r * xs, xs, WP, cb * ws, ws, k4, ACC, r * npad + cb * 16, npad)
            cb += _TB
        while cb < nb:
            dot1x1(XU, xo + r * xs, xs, WP, cb * ws, ws, k4, ACC, r * npad + cb * 16, npad)
            cb += 1
        r += 1


@helper_njit(**_JIT)
def hybrid_fc_i8(x, SF, ZP, XU, WP, CS, SW, B, ACC, o, rows, depth, units, k4, nb, asym, has_bias, lo, hi):
    """Dynamic-range FULLY_CONNECTED over `rows` rows of `depth`: each row quantized as LiteRT
    does (hybridq.hq_row_u8: raw q stored as the byte q + 128); the int32 products on 16 lanes;
    acc = sum((q + 128) * w) - (128 + zp) * sum(w), LiteRT's accumulator; then the float finish
    (hybridq.finish_rows). Scratch: XU [rows * k4 * 4] u8 (padding 128,
    i.e. q = 0), ACC [rows * nb * 16] i32. x / o: the node's input / output buffers, any rank."""
    xf = x.reshape(x.size)
    of = o.reshape(o.size)
    kpad = k4 * 4
    npad = nb * 16
    for r in range(rows):
        sf, zp = hq_row_u8(xf, r * depth, depth, XU, r * kpad, asym)
        SF[r] = sf
        ZP[r] = zp
        for k in range(r * kpad + depth, (r + 1) * kpad):
            XU[k] = np.uint8(128)
    dot_rows(XU, np.int64(0), kpad, WP, k4, nb, ACC, rows)  # not a literal 0: one specialisation
    for r in range(rows):
        off = np.int64(128 + ZP[r])
        a = ACC[r * npad:r * npad + units]
        o = of[r * units:(r + 1) * units]
        for c in range(units):
            o[c] = np.float32(np.int64(a[c]) - off * np.int64(CS[c]))
    finish_rows(of, SF, SW, B, rows, 1, units, has_bias, lo, hi)




@helper_njit(**_JIT)
def _conv_blocks(SF, XU, PATCH, WP, RS, PH, PW, SW, B, ACC, of, img, b0, b1, h, w, c, kh, kw, sh, sw, dh, dw,
                 pad_t, pad_l, ow, npix, co, k4, nb, nw, off, has_bias, lo, hi):
    """Pixel blocks [b0, b1) of image `img` of hybrid_conv_i8, with this caller's scratch PATCH
    [PIX_BLOCK * k4 * 4] and ACC [PIX_BLOCK * nb * 16]: gather, multiply, subtract the zero
    point's share, finish."""
    kpad = k4 * 4
    npad = nb * 16
    direct = kh == 1 and kw == 1 and sh == 1 and sw == 1 and pad_t == 0 and pad_l == 0 and c == kpad
    for blk in range(b0, b1):
        p0 = blk * PIX_BLOCK
        m = min(PIX_BLOCK, npix - p0)
        if direct:
            dot_rows(XU, p0 * c, c, WP, k4, nb, ACC, m)
        else:
            for i in range(m):
                p = p0 + i
                oy = p // ow
                ox = p - oy * ow
                t = i * kpad
                ix0 = ox * sw - pad_l
                row_inside = dw == 1 and ix0 >= 0 and ix0 + kw <= w
                for ky in range(kh):
                    iy = oy * sh - pad_t + ky * dh
                    if 0 <= iy < h:
                        if row_inside:  # the row's taps are adjacent in the image: one copy
                            copy_bytes(PATCH, t, XU, (iy * w + ix0) * c, kw * c)
                            t += kw * c
                            continue
                        for kx in range(kw):
                            ix = ix0 + kx * dw
                            if 0 <= ix < w:
                                copy_bytes(PATCH, t, XU, (iy * w + ix) * c, c)
                            else:
                                zero_bytes(PATCH, t, c)
                            t += c
                    else:
                        zero_bytes(PATCH, t, kw * c)
                        t += kw * c
                zero_bytes(PATCH, t, (i + 1) * kpad - t)
            dot_rows(PATCH, np.int64(0), kpad, WP, k4, nb, ACC, m)
        for i in range(m):
            p = p0 + i
            oy = p // ow
            ox = p - oy * ow
            rb = (PH[oy] * nw + PW[ox]) * co
            a = ACC[i * npad:i * npad + co]
            o = of[(img * npix + p) * co:(img * npix + p + 1) * co]
            for ch in range(co):
                o[ch] = np.float32(np.int64(a[ch]) - off * RS[rb + ch])
        finish_rows(of[(img * npix + p0) * co:(img * npix + p0 + m) * co], SF[img:img + 1], SW, B, 1, m, co,
                    has_bias, lo, hi)


@helper_njit(**_JIT)
def hybrid_conv_i8(x, SF, XU, PATCH, WP, RS, PH, PW, SW, B, ACC, o, nimg, h, w, c, kh, kw, sh, sw, dh, dw,
                   pad_t, pad_l, oh, ow, co, k4, nb, nw, asym, has_bias, lo, hi):
    """Dynamic-range CONV_2D: each image quantized as one row (LiteRT's per-batch scale) into
    bytes q + 128 (XU [h * w * c]); the patches of PIX_BLOCK output pixels gathered into PATCH
    in (ky, kx, c) order, taps outside the image as byte 0 (they contribute nothing, as LiteRT
    skips them); the 16-lane products; then LiteRT's accumulator
    sum over inside taps of (q - zp) * w = dot - (128 + zp) * RS[pattern(y, x), c], RS the
    weights' sums over the taps inside the image for each border pattern (generators/hybrid.py
    `_raw_join`, int64 here); then hybridq.finish_rows. A 1x1, stride-1 convolution over
    channels that fill whole 4-byte groups multiplies the image's bytes in place. x / o: the
    node's input / output buffers, any rank."""
    xf = x.reshape(x.size)
    of = o.reshape(o.size)
    npix = oh * ow
    for img in range(nimg):
        sf, zp = hq_row_u8(xf, img * h * w * c, h * w * c, XU, 0, asym)
        SF[img] = sf
        _conv_blocks(SF, XU, PATCH, WP, RS, PH, PW, SW, B, ACC, of, img, 0, -(-npix // PIX_BLOCK), h, w, c, kh,
                     kw, sh, sw, dh, dw, pad_t, pad_l, ow, npix, co, k4, nb, nw, np.int64(128 + zp), has_bias,
                     lo, hi)


@helper_njit(parallel=True, **_JIT)
def hybrid_conv_i8_par(x, SF, XU, PATCH, WP, RS, PH, PW, SW, B, ACC, o, nimg, h, w, c, kh, kw, sh, sw, dh, dw,
                       pad_t, pad_l, oh, ow, co, k4, nb, nw, asym, has_bias, lo, hi, tasks):
    """hybrid_conv_i8 with the pixel blocks split into `tasks` contiguous runs on Numba's
    threads, each with its own slice of PATCH / ACC ([tasks] x the serial scratch); the image's
    quantization stays serial (one row: LiteRT's per-image scale)."""
    xf = x.reshape(x.size)
    of = o.reshape(o.size)
    npix = oh * ow
    nblk = -(-npix // PIX_BLOCK)
    psz = PIX_BLOCK * k4 * 4
    asz = PIX_BLOCK * nb * 16
    for img in range(nimg):
        sf, zp = hq_row_u8(xf, img * h * w * c, h * w * c, XU, 0, asym)
        SF[img] = sf
        off = np.int64(128 + zp)
        for t_ in numba.prange(tasks):
            t = min(max(np.int64(t_), 0), tasks - 1)
            _conv_blocks(SF, XU, PATCH[t * psz:(t + 1) * psz], WP, RS, PH, PW, SW, B, ACC[t * asz:(t + 1) * asz],
                         of, img, t * nblk // tasks, (t + 1) * nblk // tasks, h, w, c, kh, kw, sh, sw, dh, dw,
                         pad_t, pad_l, ow, npix, co, k4, nb, nw, off, has_bias, lo, hi)

