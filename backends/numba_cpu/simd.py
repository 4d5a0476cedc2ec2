"""Explicit SIMD for generated kernels: Numba intrinsics over an LLVM <VW x float> type, scalar
`ld`/`st` without wraparound or bounds checks, the LLVM helpers the other intrinsic modules
(qsimd.py, qlut.py, qmulvec.py) build on, and `VecOps`, the scalar vocabulary printed over
these vectors.

Why: Numba's loop vectorizer cannot keep a register tile in registers, and its SLP vectorizer
(which can) is off by default, global, and costs 1.2-8.5 s of compile per tile kernel when on
(measured here: SLP on 146-250 GF/s, off 6-10 GF/s for the same scalar-accumulator source). So
the GEMM kernels (generators/gemm.py) use explicit vectors instead: `vload`, `vbcast`, `vfma`,
masked `vloadm`/`vstorem`, `vmax`, scalar `ld`/`st`... over <VW x float>, independent of
NUMBA_SLP_VECTORIZE. VW is 16 on AVX-512 hosts and 8 otherwise; the GEMM source records VW and
SIMD_VERSION. Measured on this machine (Zen 5): 0.2-0.7 s to compile a kernel, 180-250 GF/s
single-threaded. The intrinsics read arrays through their data pointer at flat offsets with
literal strides (no wraparound, no bounds checks), so every array argument must be C-contiguous
(their typing rejects anything else).

Generated modules import these by name (`from tflite_jit.backends.numba_cpu.simd import ...`);
modcache keys every module on the text of the helper modules it imports, so a changed intrinsic
never meets a kernel compiled (and cached) against the old one.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, models, register_model

from tflite_jit.backends.numba_cpu.host import NREGS, SIMD_VERSION, VW, host_features  # noqa: F401 (re-exported)

_VEC = ir.VectorType(ir.FloatType(), VW)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)


class SimdVector(types.Type):
    """A Numba type for an LLVM vector (float32x16, int32x16...), lowered as the vector itself."""

    def __init__(self, name: str, llvm_type: ir.VectorType) -> None:
        self.llvm_type = llvm_type
        super().__init__(name=name)


@register_model(SimdVector)
class _SimdVectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, fe_type.llvm_type)


f32vec = SimdVector(f"float32x{VW}", _VEC)


# ---- helpers for writing intrinsics -------------------------------------------------------------


def check_array(a, fn: str, dtype=types.float32) -> None:
    """Typing: `a` must be a C-contiguous array of `dtype` (None: any dtype)."""
    if not isinstance(a, types.Array) or a.layout != "C" or (dtype is not None and a.dtype != dtype):
        raise TypingError(f"{fn}: needs a C-contiguous {dtype or ''} array, got {a}")


def check_int(i, fn: str) -> None:
    if not isinstance(i, types.Integer):
        raise TypingError(f"{fn}: index must be an integer, got {i}")


def check_indexed(fn: str, arr, *ints, dtype=types.float32) -> None:
    """Typing of `fn(arr, i, ...)`: check_array, then every integer argument."""
    check_array(arr, fn, dtype)
    for i in ints:
        check_int(i, fn)


def elem_ptr(context, builder, aty, arr, idx, ity):
    """Pointer to flat element `idx` (of Numba type `ity`) of array `arr` (of type `aty`)."""
    ary = context.make_array(aty)(context, builder, arr)
    i = context.cast(builder, idx, ity, types.intp)
    return builder.gep(ary.data, [i], inbounds=True)


def _vec_ptr(context, builder, aty, arr, idx, ity):
    return builder.bitcast(elem_ptr(context, builder, aty, arr, idx, ity), _VEC.as_pointer())


def splat(builder, x, vty):
    """Scalar `x` in every lane of a `vty` vector."""
    v = builder.insert_element(ir.Constant(vty, ir.Undefined), x, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, ir.Constant(vty, ir.Undefined),
                                  ir.Constant(ir.VectorType(_I32, vty.count), [0] * vty.count))


def lane_mask(context, builder, n, nty):
    """<VW x i1>: lane l is on when l < n."""
    n64 = context.cast(builder, n, nty, types.int64)
    lanes = ir.Constant(ir.VectorType(_I64, VW), list(range(VW)))
    return builder.icmp_signed("<", lanes, splat(builder, n64, ir.VectorType(_I64, VW)))


def llvm_fn(builder, name: str, ret, args):
    """The LLVM intrinsic or function `name` of the module being built (declared once)."""
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, args), name)


# ---- float32 vectors ----------------------------------------------------------------------------


@intrinsic
def vload(typingctx, arr, idx):
    """VW float32 lanes of flat `arr` from element `idx`."""
    check_indexed("vload", arr, idx)

    def codegen(context, builder, sig, args):
        return builder.load(_vec_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1]), align=4)

    return f32vec(arr, idx), codegen


@intrinsic
def vloadm(typingctx, arr, idx, n):
    """Like vload, but only lanes < n are read (others are 0); n may be <= 0 or >= VW."""
    check_indexed("vloadm", arr, idx, n)

    def codegen(context, builder, sig, args):
        p = _vec_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        m = lane_mask(context, builder, args[2], sig.args[2])
        fn = llvm_fn(builder, f"llvm.masked.load.v{VW}f32.p0", _VEC,
                     [p.type, _I32, m.type, _VEC])
        return builder.call(fn, [p, ir.Constant(_I32, 4), m, ir.Constant(_VEC, None)])

    return f32vec(arr, idx, n), codegen


@intrinsic
def vstore(typingctx, arr, idx, v):
    check_indexed("vstore", arr, idx)

    def codegen(context, builder, sig, args):
        builder.store(args[2], _vec_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1]),
                      align=4)
        return context.get_dummy_value()

    return types.none(arr, idx, f32vec), codegen


@intrinsic
def vstorem(typingctx, arr, idx, v, n):
    """Store lanes < n of v to flat `arr` from element `idx`."""
    check_indexed("vstorem", arr, idx, n)

    def codegen(context, builder, sig, args):
        p = _vec_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        m = lane_mask(context, builder, args[3], sig.args[3])
        fn = llvm_fn(builder, f"llvm.masked.store.v{VW}f32.p0", ir.VoidType(),
                     [_VEC, p.type, _I32, m.type])
        builder.call(fn, [args[2], p, ir.Constant(_I32, 4), m])
        return context.get_dummy_value()

    return types.none(arr, idx, f32vec, n), codegen


@intrinsic
def vbcast(typingctx, arr, idx):
    """The float32 element `idx` of flat `arr`, in every lane."""
    check_indexed("vbcast", arr, idx)

    def codegen(context, builder, sig, args):
        x = builder.load(elem_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1]), align=4)
        return splat(builder, x, _VEC)

    return f32vec(arr, idx), codegen


@intrinsic
def vsplat(typingctx, x):
    if x != types.float32:
        raise TypingError(f"vsplat: needs a float32, got {x}")

    def codegen(context, builder, sig, args):
        return splat(builder, args[0], _VEC)

    return f32vec(x), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """a * b + c (fused where the target has FMA)."""

    def codegen(context, builder, sig, args):
        fn = llvm_fn(builder, f"llvm.fmuladd.v{VW}f32", _VEC, [_VEC] * 3)
        return builder.call(fn, list(args))

    return f32vec(f32vec, f32vec, f32vec), codegen


def _binop(build: Callable) -> Callable:
    def typer(typingctx, a, b):
        def codegen(context, builder, sig, args):
            return build(builder, args[0], args[1])

        return f32vec(f32vec, f32vec), codegen

    return intrinsic(typer)


def _unop(build: Callable) -> Callable:
    def typer(typingctx, a):
        def codegen(context, builder, sig, args):
            return build(builder, args[0])

        return f32vec(f32vec), codegen

    return intrinsic(typer)


def _unary_llvm(name: str) -> Callable:
    return lambda b, a: b.call(llvm_fn(b, f"llvm.{name}.v{VW}f32", _VEC, [_VEC]), [a])


def _nan_select(op: str) -> Callable:
    """NumPy's maximum/minimum: `a if (a op b or a != a) else b` (NaN in either propagates)."""

    def build(b, x, y):
        pick = b.or_(b.fcmp_ordered(op, x, y), b.fcmp_unordered("uno", x, x))
        return b.select(pick, x, y)

    return build


vadd = _binop(lambda b, x, y: b.fadd(x, y))
vsub = _binop(lambda b, x, y: b.fsub(x, y))
vmul = _binop(lambda b, x, y: b.fmul(x, y))
vdiv = _binop(lambda b, x, y: b.fdiv(x, y))
vmax = _binop(_nan_select(">"))
vmin = _binop(_nan_select("<"))
vneg = _unop(lambda b, x: b.fsub(ir.Constant(_VEC, [-0.0] * VW), x))
vsquare = _unop(lambda b, x: b.fmul(x, x))
vabs = _unop(_unary_llvm("fabs"))
vsqrt = _unop(_unary_llvm("sqrt"))
vfloor = _unop(_unary_llvm("floor"))
vceil = _unop(_unary_llvm("ceil"))
vrsqrt = _unop(lambda b, x: b.fdiv(ir.Constant(_VEC, [1.0] * VW), _unary_llvm("sqrt")(b, x)))


def _reduce(name: str) -> Callable:
    """The lanes of a vector reduced to one float32 (llvm.vector.reduce.fmin / fmax: NaN lanes are
    ignored unless all are NaN; callers whose data may hold NaN must not rely on more)."""

    def typer(typingctx, a):
        def codegen(context, builder, sig, args):
            fn = llvm_fn(builder, f"llvm.vector.reduce.{name}.v{VW}f32", ir.FloatType(), [_VEC])
            return builder.call(fn, [args[0]])

        return types.float32(f32vec), codegen

    return intrinsic(typer)


def _reduce_tree(name: str) -> Callable:
    """The lanes of a vector reduced to one float32 by halving: llvm.{minnum,maxnum} of the two
    halves, log2(VW) times (the semantics of llvm.vector.reduce.fmin / fmax, which it replaces:
    a NaN lane is ignored unless all are NaN; callers whose data may hold NaN must not rely on
    more). Why: LLVM expands the reduce intrinsic without fast-math flags into VW - 1 dependent
    scalar steps (~30 ns a call here), which dominated a short row's quantization."""

    def typer(typingctx, a):
        def codegen(context, builder, sig, args):
            v, n = args[0], VW
            while n > 1:
                h = n // 2
                ty = ir.VectorType(ir.FloatType(), h)
                lo = builder.shuffle_vector(v, ir.Constant(v.type, ir.Undefined), ir.Constant(ir.VectorType(_I32, h), list(range(h))))
                hi = builder.shuffle_vector(v, ir.Constant(v.type, ir.Undefined), ir.Constant(ir.VectorType(_I32, h), list(range(h, n))))
                v = builder.call(llvm_fn(builder, f"llvm.{name}.v{h}f32", ty, [ty, ty]), [lo, hi])
                n = h
            return builder.extract_element(v, ir.Constant(_I32, 0))

        return types.float32(f32vec), codegen

    return intrinsic(typer)


vhmin = _reduce_tree("minnum")
vhmax = _reduce_tree("maxnum")


# ---- scalars ------------------------------------------------------------------------------------


@intrinsic
def ld(typingctx, arr, idx):
    """Scalar element `idx` of flat `arr` (any dtype), without wraparound or bounds checks."""
    check_indexed("ld", arr, idx, dtype=None)

    def codegen(context, builder, sig, args):
        p = elem_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        return context.unpack_value(builder, sig.args[0].dtype, p)

    return arr.dtype(arr, idx), codegen


@intrinsic
def st(typingctx, arr, idx, x):
    """Store scalar x (cast to the array's dtype) at flat element `idx` of `arr`."""
    check_indexed("st", arr, idx, dtype=None)

    def codegen(context, builder, sig, args):
        aty = sig.args[0]
        p = elem_ptr(context, builder, aty, args[0], args[1], sig.args[1])
        v = context.cast(builder, args[2], sig.args[2], aty.dtype)
        context.pack_value(builder, aty.dtype, v, p)
        return context.get_dummy_value()

    return types.none(arr, idx, x), codegen


# ---- the scalar vocabulary over vectors ---------------------------------------------------------
