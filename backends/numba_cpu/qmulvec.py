"""16 lanes of quantized 8-bit MUL in int32 vector code (qeltwise.generate_mul's vector steps).

Numba types every int32 operation as int64, so the generated per-element MUL ran on 8 int64
lanes with a 64-bit multiply (vpmullq) for the requantization: 0.145 ns per element, ~1.4 ms of
int8 EfficientNet-B0's 65 MULs. This intrinsic writes the LLVM vector code itself, on 16 int32
lanes, and replaces the 64-bit SRDHM by an exact 32-bit decomposition:

    p = (x - z1) * (y - z2)                       |p| <= 255 * 255 < 2**16
    SRDHM(p, m) = floor((p * m + 2**30) / 2**31)  with m = a * 2**16 + c * 2**8 + d
                = (p*a + 2**14 + ((p*c + ((p*d) >> 8)) >> 8)) >> 15

(floor((A * 2**k + B) / 2**(k+j)) = floor((A + floor(B / 2**k)) / 2**j), applied twice; every
intermediate stays below 2**31 because a = m >> 16 < 2**15.) Then MBQM's rounding divide by
2**rs (half away from zero), the output zero point and the clamp, exactly as ops/qelementwise.py.
Only MUL nodes whose multiplier has no left shift (shift <= 0, the usual case) take this path
(others keep the scalar int64 loop); tests/backends/test_numba_quantized2.py runs every (x, y)
pair against the reference. The IR is generic LLVM vector code (no x86 intrinsic), so it runs on
any host: 0.145 -> 0.12 ns per element in cache here, 64 -> 44 us on a 112x112x32 swish MUL.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from tflite_jit.backends.numba_cpu.host import MUL_W, split_multiplier  # noqa: F401 (re-exported)
from tflite_jit.backends.numba_cpu.simd import check_array, check_int, elem_ptr, splat

_I8V = ir.VectorType(ir.IntType(8), MUL_W)
_I32V = ir.VectorType(ir.IntType(32), MUL_W)


def _splat32(builder, v, ty):
    """Integer scalar `v` of Numba type `ty` (truncated or extended to int32) in every lane."""
    s = v
    if ty.bitwidth > 32:
        s = builder.trunc(v, ir.IntType(32))
    elif ty.bitwidth < 32:
        s = builder.sext(v, ir.IntType(32)) if ty.signed else builder.zext(v, ir.IntType(32))
    return splat(builder, s, _I32V)


@intrinsic
def qmul16(typingctx, x, ix, y, iy, o, io, z1, z2, a, c, d, h, nm, rs, zo, lo, hi):
    """o[io:io+16] = clamp(MBQM((x[ix..] - z1) * (y[iy..] - z2)) + zo, lo, hi) for 8-bit x, y, o;
    h = 2**(rs-1) (0 if rs = 0), nm = -1 if rs > 0 else 0 (MBQM's negative-value correction)."""
    for arr in (x, y, o):
        check_array(arr, "qmul16", dtype=None)
        if arr.dtype.bitwidth != 8:
            raise TypeError("qmul16: 8-bit arrays only")
    for i in (ix, iy, io):
        check_int(i, "qmul16")
    scalars = (z1, z2, a, c, d, h, nm, rs, zo, lo, hi)
    for s in scalars:
        check_int(s, "qmul16")

    def codegen(context, builder, sig, args):
        def load(k):
            p = elem_ptr(context, builder, sig.args[k], args[k], args[k + 1], sig.args[k + 1])
            v = builder.load(builder.bitcast(p, _I8V.as_pointer()), align=1)
            signed = sig.args[k].dtype.signed
            return builder.sext(v, _I32V) if signed else builder.zext(v, _I32V)

        k = [_splat32(builder, args[6 + j], sig.args[6 + j]) for j in range(len(scalars))]
        z1v, z2v, av, cv, dv, hv, nmv, rsv, zov, lov, hiv = k
        xd = builder.sub(load(0), z1v)
        yd = builder.sub(load(2), z2v)
        p = builder.mul(xd, yd)
        c8 = ir.Constant(_I32V, [8] * MUL_W)
        e = builder.ashr(builder.add(builder.mul(p, cv), builder.ashr(builder.mul(p, dv), c8)), c8)
        t = builder.add(builder.add(builder.mul(p, av), ir.Constant(_I32V, [1 << 14] * MUL_W)), e)
        t = builder.ashr(t, ir.Constant(_I32V, [15] * MUL_W))
        neg = builder.and_(builder.ashr(t, ir.Constant(_I32V, [31] * MUL_W)), nmv)
        r = builder.ashr(builder.add(builder.add(t, hv), neg), rsv)
        r = builder.add(r, zov)
        r = builder.select(builder.icmp_signed("<", r, lov), lov, r)
        r = builder.select(builder.icmp_signed(">", r, hiv), hiv, r)
        po = elem_ptr(context, builder, sig.args[4], args[4], args[5], sig.args[5])
        builder.store(builder.trunc(r, _I8V), builder.bitcast(po, _I8V.as_pointer()), align=1)
        return context.get_dummy_value()

    return types.none(x, ix, y, iy, o, io, *scalars), codegen
