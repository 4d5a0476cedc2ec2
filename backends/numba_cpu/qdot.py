"""int8 dot products on 16 int32 lanes: the product of dynamic-range FULLY_CONNECTED nodes
(generators/hybrid.py), LiteRT's int32 accumulator computed as an integer instead of as float32
sums of integers.

Why: the float32 path (quantized inputs and int8 weights as float32 integers, the GEMM of
gemm.py) moves 4x the weight bytes and is exact only while sums stay below 2**24. Here the
weights stay int8, packed [N/16, K/4, 16, 4], and each step multiplies 4 input bytes (splat over
16 lanes) by 16 columns x 4 weight bytes and adds the 4 products into each lane — one
`vpdpbusd` on AVX512-VNNI hosts; elsewhere the same arithmetic in generic LLVM vector code (any
host, any sum: the int32 accumulator is exact, as LiteRT's). vpdpbusd multiplies *unsigned*
bytes by signed ones, so inputs are stored as q + 128 and 128 * sum(w) is subtracted after
(`hybrid_fc_i8`): exact integer algebra.

The kernel takes its shapes as arguments, so one compile (Numba's cache=True) serves every
such node of every model on this machine.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from tflite_jit.backends.numba_cpu.hybridq import finish_rows, hq_row_u8
from tflite_jit.backends.numba_cpu.simd import check_array, check_int, elem_ptr, host_features, llvm_fn, splat

#: columns per step (int32 lanes) and input bytes per lane per step
LANES, GROUP = 16, 4
#: AVX512-VNNI: one instruction per step (else generic vector code, the same integers)
VNNI = "+avx512vnni" in host_features() and "+avx512f" in host_features()

_I8, _I32, _I64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
_V32 = ir.VectorType(_I32, LANES)
_V8 = ir.VectorType(_I8, LANES * GROUP)
_VW = ir.VectorType(_I32, LANES * GROUP)


def _dpbusd(builder, acc, a, b):
    """acc + per lane sum of 4 (unsigned byte of a) * (signed byte of b)."""
    if VNNI:
        fn = llvm_fn(builder, "llvm.x86.avx512.vpdpbusd.512", _V32, [_V32, _V32, _V32])
        return builder.call(fn, [acc, a, b])
    pa = builder.zext(builder.bitcast(a, _V8), _VW)
    pb = builder.sext(builder.bitcast(b, _V8), _VW)
    p = builder.mul(pa, pb)
    for g in range(GROUP):
        idx = ir.Constant(ir.VectorType(_I32, LANES), [LANES * 0 + GROUP * lane + g for lane in range(LANES)])
        acc = builder.add(acc, builder.shuffle_vector(p, ir.Constant(_VW, ir.Undefined), idx))
    return acc


def _dot_rows(rows: int):
    """An intrinsic computing `rows` input rows x 16 columns over k4 steps (see module doc)."""

    def typer(typingctx, x, xi, xs, w, wi, k4, acc, ai, as_):
        name = f"dot16x{rows}"
        check_array(x, name, types.uint8)
        check_array(w, name, types.int8)
        check_array(acc, name, types.int32)
        for i in (xi, xs, wi, k4, ai, as_):
            check_int(i, name)

        def codegen(context, builder, sig, args):
            x, xi, xs, w, wi, k4, acc, ai, as_ = args
            tys = sig.args
            xp = elem_ptr(context, builder, tys[0], x, xi, tys[1])
            wp = elem_ptr(context, builder, tys[3], w, wi, tys[4])
            ap = elem_ptr(context, builder, tys[6], acc, ai, tys[7])
            xs64 = context.cast(builder, xs, tys[2], types.int64)
            as64 = context.cast(builder, as_, tys[8], types.int64)
            n = context.cast(builder, k4, tys[5], types.int64)
            slots = [cgutils.alloca_once_value(builder, ir.Constant(_V32, None)) for _ in range(rows)]
            xrows = [builder.gep(xp, [builder.mul(xs64, ir.Constant(_I64, r))]) for r in range(rows)]
            with cgutils.for_range(builder, n) as loop:
                j = loop.index
                wv = builder.load(builder.bitcast(builder.gep(wp, [builder.mul(j, ir.Constant(_I64, 64))]),
                                                  _V32.as_pointer()), align=1)
                for r in range(rows):
                    xb = builder.load(builder.bitcast(builder.gep(xrows[r], [builder.mul(j, ir.Constant(_I64, 4))]),
                                                      _I32.as_pointer()), align=1)
                    builder.store(_dpbusd(builder, builder.load(slots[r]), splat(builder, xb, _V32), wv), slots[r])
            for r in range(rows):
                out = builder.gep(ap, [builder.mul(as64, ir.Constant(_I64, r))])
                builder.store(builder.load(slots[r]), builder.bitcast(out, _V32.as_pointer()), align=1)
            return context.get_dummy_value()

        return types.void(x, xi, xs, w, wi, k4, acc, ai, as_), codegen

    typer.__name__ = f"dot16x{rows}"
    return intrinsic(typer)


dot16x4 = _dot_rows(4)
dot16x1 = _dot_rows(1)


def pack_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """w [N, K] int8 -> (packed [N/16, K/4, 16, 4] int8 flat, column sums int32 [N], k4, nb), N
    and K padded with zero weights (padding contributes nothing to any sum)."""
    n, k = w.shape
    nb, k4 = -(-n // LANES), -(-k // GROUP)
    wp = np.zeros((nb * LANES, k4 * GROUP), np.int8)
    wp[:n, :k] = w
    packed = wp.reshape(nb, LANES, k4, GROUP).transpose(0, 2, 1, 3)
    return (np.ascontiguousarray(packed).reshape(-1), w.astype(np.int64).sum(axis=1).astype(np.int32), k4, nb)


_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy", boundscheck=False)


@numba.njit(**_JIT)
def hybrid_fc_i8(xf, SF, ZP, XU, WP, CS, SW, B, ACC, of, rows, depth, units, k4, nb, asym, has_bias,
                 lo, hi):
    """Dynamic-range FULLY_CONNECTED over `rows` rows of `depth`: each row quantized as LiteRT
    does (hybridq.hq_row_u8: raw q stored as the byte q + 128); the int32 products on 16 lanes;
    acc = sum((q + 128) * w) - (128 + zp) * sum(w), LiteRT's accumulator; then the float finish
    (hybridq.finish_rows). Scratch: XU [rows * k4 * 4] u8 (padding 128,
    i.e. q = 0), ACC [rows * nb * 16] i32."""
    kpad = k4 * 4
    npad = nb * 16
    for r in range(rows):
        sf, zp = hq_row_u8(xf, r * depth, depth, XU, r * kpad, asym)
        SF[r] = sf
        ZP[r] = zp
        for k in range(r * kpad + depth, (r + 1) * kpad):
            XU[k] = np.uint8(128)
    r = 0
    while r + 4 <= rows:
        for cb in range(nb):
            dot16x4(XU, r * kpad, kpad, WP, cb * k4 * 64, k4, ACC, r * npad + cb * 16, npad)
        r += 4
    while r < rows:
        for cb in range(nb):
            dot16x1(XU, r * kpad, kpad, WP, cb * k4 * 64, k4, ACC, r * npad + cb * 16, npad)
        r += 1
    for r in range(rows):
        off = np.int64(128 + ZP[r])
        a = ACC[r * npad:r * npad + units]
        o = of[r * units:(r + 1) * units]
        for c in range(units):
            o[c] = np.float32(np.int64(a[c]) - off * np.int64(CS[c]))
    finish_rows(of, SF, SW, B, rows, 1, units, has_bias, lo, hi)
