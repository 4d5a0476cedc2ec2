"""Integer SIMD for the quantized kernels (generators/qconv.py): the requantizing stores and the
int8 dot product of AVX512-VNNI, as Numba intrinsics over simd.py's helpers.

`qst` / `qstm` / `qsti` / `qstmi` are the requantizing stores (LLVM vector code, VW lanes): the
accumulator (float32 holding an integer, or int32) plus the per-channel int32 bias, wrapped as
C's int32 wraps, LiteRT's rounding, + output zero point, the activation clamp, narrowed to 8 bits.
Rounding (ops/qnn.py `_requantize`): t = SRDHM(wrap32(acc << ls), M), then t >> rs rounded half
up (RHU2) or half away from zero (MBQM). Both are (t + h) >> rs with a per-channel, per-sign h:
h+ = 2**(rs-1) (0 when rs = 0) and h- = h+ for RHU2, h+ - 1 for MBQM (when rs > 0). The
per-channel parameters come as one int32 table QP of QROWS rows (qconv.qparams builds it).

`vzi` / `vldw` / `vbc4` / `vbc4x` / `vdot` are the int8 GEMM's VNNI pieces (qconv.int_gemm):
vpdpbusd sums 4 (unsigned byte) x (signed byte) products into each int32 lane. Without VNNI the
same GEMM runs on int16 pairs instead (`vbc2` / `vdot2`: vpmaddwd, 2 products per lane).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from tflite_jit.backends.numba_cpu.host import HAS_PMADDWD, HAS_VNNI, PMADDWD_LANES, QROWS, VW  # noqa: F401 (re-exported)
from tflite_jit.backends.numba_cpu.simd import (
    SimdVector,
    check_array,
    check_int,
    elem_ptr,
    f32vec,
    lane_mask,
    llvm_fn,
    splat,
)

_V64 = ir.VectorType(ir.IntType(64), VW)
_V32 = ir.VectorType(ir.IntType(32), VW)
_V8 = ir.VectorType(ir.IntType(8), VW)

i32vec = SimdVector(f"int32x{VW}", _V32)

# ---- the requantizing stores --------------------------------------------------------------------


def _requant_vec(context, builder, sig, args):
    """<VW x i8> from the accumulator vector args[2] (float32 holding integers, or int32); args:
    (out, idx, v, ch, QP, np_, zo, lo, hi, has_ls[, n]). QP is int32 [QROWS, np_]. The
    accumulator, bias and left shift wrap in int32 lanes as C's int32 does (= qmath's wrap32);
    SRDHM multiplies sign-extended int32s (vpmuldq) and the rounding shift runs in int64."""
    ch = context.cast(builder, args[3], sig.args[3], types.intp)
    npr = context.cast(builder, args[5], sig.args[5], types.intp)
    qarr = context.make_array(sig.args[4])(context, builder, args[4])

    def row(r):
        off = builder.add(ch, builder.mul(npr, ir.Constant(ch.type, r)))
        p = builder.gep(qarr.data, [off], inbounds=True)
        ld = builder.load(builder.bitcast(p, _V32.as_pointer()), align=4)
        # the table is constant for the kernel's lifetime: lets LLVM share these loads between
        # the MR row stores of a tile (the int8 stores could otherwise alias them)
        ld.set_metadata("invariant.load", builder.module.add_metadata([]))
        return ld

    def splat64(x, xty):
        return splat(builder, context.cast(builder, x, xty, types.int64), _V64)

    v = args[2]
    acc = v if v.type == _V32 else builder.fptosi(v, _V32)
    acc = builder.add(acc, row(0))
    has_ls = context.cast(builder, args[9], sig.args[9], types.boolean)
    acc = builder.select(has_ls, builder.shl(acc, row(2)), acc)  # constant-folded per call site
    prod = builder.mul(builder.sext(acc, _V64), builder.sext(row(1), _V64))
    t = builder.ashr(builder.add(prod, ir.Constant(_V64, [1 << 30] * VW)), ir.Constant(_V64, [31] * VW))
    neg = builder.icmp_signed("<", t, ir.Constant(_V64, [0] * VW))
    h = builder.sext(builder.select(neg, row(5), row(4)), _V64)
    r = builder.ashr(builder.add(t, h), builder.sext(row(3), _V64))
    r = builder.add(r, splat64(args[6], sig.args[6]))
    lo, hi = splat64(args[7], sig.args[7]), splat64(args[8], sig.args[8])
    r = builder.select(builder.icmp_signed("<", r, lo), lo, r)
    r = builder.select(builder.icmp_signed(">", r, hi), hi, r)
    return builder.trunc(r, _V8)


def _out_ptr(context, builder, aty, arr, idx, ity):
    return builder.bitcast(elem_ptr(context, builder, aty, arr, idx, ity), _V8.as_pointer())


def _store(context, builder, sig, args):
    """Requantize the accumulators, store VW bytes."""
    r = _requant_vec(context, builder, sig, args)
    builder.store(r, _out_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1]), align=1)
    return context.get_dummy_value()


def _store_masked(context, builder, sig, args):
    """As _store, lanes < n only."""
    r = _requant_vec(context, builder, sig, args)
    p = _out_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
    m = lane_mask(context, builder, args[10], sig.args[10])
    fn = llvm_fn(builder, f"llvm.masked.store.v{VW}i8.p0", ir.VoidType(), [_V8, p.type, ir.IntType(32), m.type])
    builder.call(fn, [r, p, ir.Constant(ir.IntType(32), 1), m])
    return context.get_dummy_value()


def _requantizing_store(name: str, acc: SimdVector, masked: bool):
    """The intrinsic `name(out, idx, v, ch, qp, np_, zo, lo, hi, has_ls[, n])` for accumulators
    of type `acc`: requantize v (channels ch..) and store it at out[idx..] (lanes < n only)."""

    def check(out, idx, qp, *ints):
        check_array(out, name, dtype=None)
        if out.dtype not in (types.int8, types.uint8):
            raise TypeError(f"{name}: output must be int8 or uint8, got {out.dtype}")
        check_array(qp, name, dtype=types.int32)
        for i in (idx, *ints):
            check_int(i, name)

    if masked:
        def typer(typingctx, out, idx, v, ch, qp, np_, zo, lo, hi, has_ls, n):
            check(out, idx, qp, n)
            return types.none(out, idx, acc, ch, qp, np_, zo, lo, hi, has_ls, n), _store_masked
    else:
        def typer(typingctx, out, idx, v, ch, qp, np_, zo, lo, hi, has_ls):
            check(out, idx, qp)
            return types.none(out, idx, acc, ch, qp, np_, zo, lo, hi, has_ls), _store

    typer.__name__ = name
    return intrinsic(typer)


#: float32 accumulators (holding integers): the float GEMM / depthwise paths
qst = _requantizing_store("qst", f32vec, masked=False)
qstm = _requantizing_store("qstm", f32vec, masked=True)
#: int32 accumulators: the VNNI GEMM
qsti = _requantizing_store("qsti", i32vec, masked=False)
qstmi = _requantizing_store("qstmi", i32vec, masked=True)


# ---- VNNI ---------------------------------------------------------------------------------------


def _byte_ptr(context, builder, aty, arr, idx, ity):
    ary = context.make_array(aty)(context, builder, arr)
    i = context.cast(builder, idx, ity, types.intp)
    p = builder.bitcast(ary.data, ir.IntType(8).as_pointer())
    return builder.gep(p, [i], inbounds=True)


def _check_bytes(a, fn):
    check_array(a, fn, dtype=None)
    if a.dtype not in (types.int8, types.uint8):
        raise TypeError(f"{fn}: needs an int8 / uint8 array, got {a}")


@intrinsic
def vzi(typingctx):
    def codegen(context, builder, sig, args):
        return ir.Constant(_V32, [0] * VW)

    return i32vec(), codegen


@intrinsic
def vldw(typingctx, arr, idx):
    """16 int32 lanes (4 packed weight bytes each) from byte `idx` of an int8 array."""
    _check_bytes(arr, "vldw")
    check_int(idx, "vldw")

    def codegen(context, builder, sig, args):
        p = _byte_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        return builder.load(builder.bitcast(p, _V32.as_pointer()), align=1)

    return i32vec(arr, idx), codegen


def _bc4(flip: bool):
    def typer(typingctx, arr, idx):
        _check_bytes(arr, "vbc4")
        check_int(idx, "vbc4")

        def codegen(context, builder, sig, args):
            p = _byte_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
            x = builder.load(builder.bitcast(p, ir.IntType(32).as_pointer()), align=1)
            if flip:
                x = builder.xor(x, ir.Constant(ir.IntType(32), 0x80808080))
            return splat(builder, x, _V32)

        return i32vec(arr, idx), codegen

    return intrinsic(typer)


#: 4 bytes at a byte offset, in every lane (vbc4x: with the sign bits flipped, int8 -> x + 128)
vbc4 = _bc4(False)
vbc4x = _bc4(True)


def dpbusd(builder, acc, a, b):
    """LLVM IR: acc + per-lane sums of 4 (unsigned byte of a) x (signed byte of b), on <n x i32>
    vectors: vpdpbusd where the host has AVX512-VNNI and n = 16, else the same integers in
    generic vector code (widen to int16, multiply-add pairs, add the two pairs of each lane)."""
    n = acc.type.count
    if HAS_VNNI and n == 16:
        fn = llvm_fn(builder, "llvm.x86.avx512.vpdpbusd.512", _V32, [_V32] * 3)
        return builder.call(fn, [acc, a, b])
    # Bytes widened to int16 (u8 and s8 both fit), products of adjacent pairs summed in int32 —
    # the shape x86's vpmaddwd (and ARM's widening multiply-adds) compute in one instruction,
    # which LLVM selects for it — then the two pair sums of each lane added. Exact: |pair| <=
    # 2 * 255 * 128. (Widening every byte to int32 and multiplying there measured 8x slower
    # than LiteRT on an AVX2 host.)
    i8s = ir.VectorType(ir.IntType(8), 4 * n)
    i16s = ir.VectorType(ir.IntType(16), 4 * n)
    i32h = ir.VectorType(ir.IntType(32), 2 * n)
    a16 = builder.zext(builder.bitcast(a, i8s), i16s)
    b16 = builder.sext(builder.bitcast(b, i8s), i16s)

    def half(v, parity, count, ty):
        idx = ir.Constant(ir.VectorType(ir.IntType(32), count), [2 * j + parity for j in range(count)])
        return builder.shuffle_vector(v, ir.Constant(ty, ir.Undefined), idx)

    pairs = builder.add(
        builder.mul(builder.sext(half(a16, 0, 2 * n, i16s), i32h), builder.sext(half(b16, 0, 2 * n, i16s), i32h)),
        builder.mul(builder.sext(half(a16, 1, 2 * n, i16s), i32h), builder.sext(half(b16, 1, 2 * n, i16s), i32h)))
    return builder.add(acc, builder.add(half(pairs, 0, n, i32h), half(pairs, 1, n, i32h)))


def pmaddwd(builder, acc, a, b):
    """LLVM IR: acc + per-lane sums of the 2 int16 x int16 products of a and b's int32 lanes (each
    lane holds a pair of int16): x86's vpmaddwd where the host has it (LLVM does not find it in
    the generic form below when one operand is a broadcast: it multiplies in int32 instead, 2-3x
    slower), else generic vector code. Exact for our operands: int8 weights times activations of
    [-128, 127] (qconv) or bytes q + 128 of [0, 255] (qdot), so a pair sums to at most
    2 * 255 * 128 in magnitude."""
    n = acc.type.count
    i16s = ir.VectorType(ir.IntType(16), 2 * n)
    a16, b16 = builder.bitcast(a, i16s), builder.bitcast(b, i16s)
    if HAS_PMADDWD and n % PMADDWD_LANES == 0:
        m = PMADDWD_LANES
        name = "llvm.x86.avx2.pmadd.wd" if m == 8 else "llvm.x86.avx512.pmaddw.d.512"
        part16, part32 = ir.VectorType(ir.IntType(16), 2 * m), ir.VectorType(ir.IntType(32), m)
        fn = llvm_fn(builder, name, part32, [part16, part16])

        def chunk(v, i):
            return builder.shuffle_vector(v, ir.Constant(i16s, ir.Undefined),
                                          ir.Constant(ir.VectorType(ir.IntType(32), 2 * m),
                                                      list(range(2 * m * i, 2 * m * (i + 1)))))

        parts = [builder.call(fn, [chunk(a16, i), chunk(b16, i)]) for i in range(n // m)]
        while len(parts) > 1:  # concatenate the native-width results back into n lanes
            w = parts[0].type.count
            parts = [builder.shuffle_vector(parts[i], parts[i + 1],
                                            ir.Constant(ir.VectorType(ir.IntType(32), 2 * w), list(range(2 * w))))
                     for i in range(0, len(parts), 2)]
        return builder.add(acc, parts[0])

    def half(v, parity):
        idx = ir.Constant(ir.VectorType(ir.IntType(32), n), [2 * j + parity for j in range(n)])
        return builder.sext(builder.shuffle_vector(v, ir.Constant(i16s, ir.Undefined), idx), acc.type)

    return builder.add(acc, builder.add(builder.mul(half(a16, 0), half(b16, 0)),
                                        builder.mul(half(a16, 1), half(b16, 1))))


@intrinsic
def vbc2(typingctx, arr, idx):
    """Two int16 at element `idx` of an int16 array, as one int32 in every lane (the activation
    pair of vdot2)."""
    check_array(arr, "vbc2", types.int16)
    check_int(idx, "vbc2")

    def codegen(context, builder, sig, args):
        p = elem_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        x = builder.load(builder.bitcast(p, ir.IntType(32).as_pointer()), align=2)
        return splat(builder, x, _V32)

    return i32vec(arr, idx), codegen


@intrinsic
def vdot2(typingctx, acc, a, b):
    """acc + per-lane sums of 2 int16 x int16 products: vpmaddwd + vpaddd (qconv's int8 GEMM on
    hosts without VNNI, its operands widened to int16 at plan time / in the prologue)."""

    def codegen(context, builder, sig, args):
        return pmaddwd(builder, *args)

    return i32vec(i32vec, i32vec, i32vec), codegen


@intrinsic
def vdot(typingctx, acc, a, b):
    """acc + per-lane sums of 4 (unsigned byte of a) x (signed byte of b): vpdpbusd."""

    def codegen(context, builder, sig, args):
        return dpbusd(builder, *args)

    return i32vec(i32vec, i32vec, i32vec), codegen
