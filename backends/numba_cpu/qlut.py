"""A vector 256-entry byte table lookup for the 8-bit table ops (LOGISTIC, TANH, GELU, ELU,
HARD_SWISH: qeltwise.generate_table), 64 elements per step.

LLVM does not vectorize `out[i] = table[x[i]]` (a byte gather), so the scalar loop costs ~0.19 ns
per element: 4.8x LiteRT XNNPACK's int8 LOGISTIC and ~1.3 ms of int8 EfficientNet-B0 (65 swish
activations). With AVX512-VBMI, `vpermi2b` looks up 64 bytes in a 128-byte table held in two
registers (the index's bit 6 picks the register); two of them cover the 256 entries and the index's
top bit selects between their results. The table is indexed by the input's raw byte, so int8
tables are stored rotated by 128 (`byte_table`). Hosts without VBMI keep the scalar loop.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from tflite_jit.backends.numba_cpu.host import HAS_VBMI, LUT_W, byte_table  # noqa: F401 (re-exported)
from tflite_jit.backends.numba_cpu.simd import check_array, check_int, elem_ptr, llvm_fn

_B64 = ir.VectorType(ir.IntType(8), LUT_W)


@intrinsic
def lut64(typingctx, tab, x, o, i):
    """o[i:i+64] = tab[raw bytes of x[i:i+64]] (tab: 256 uint8, x / o: 8-bit arrays, flat index)."""
    check_array(tab, "lut64", dtype=types.uint8)
    for a in (x, o):
        check_array(a, "lut64", dtype=None)
        if a.dtype.bitwidth != 8:
            raise TypeError("lut64: 8-bit arrays only")
    check_int(i, "lut64")

    def codegen(context, builder, sig, args):
        zero = context.get_constant(types.intp, 0)
        t0 = builder.bitcast(elem_ptr(context, builder, sig.args[0], args[0], zero, types.intp),
                             _B64.as_pointer())
        parts = [builder.load(builder.gep(t0, [ir.Constant(ir.IntType(64), k)]), align=1) for k in range(4)]
        px = builder.bitcast(elem_ptr(context, builder, sig.args[1], args[1], args[3], sig.args[3]),
                             _B64.as_pointer())
        idx = builder.load(px, align=1)
        perm = llvm_fn(builder, "llvm.x86.avx512.vpermi2var.qi.512", _B64, [_B64, _B64, _B64])
        lo = builder.call(perm, [parts[0], idx, parts[1]])
        hi = builder.call(perm, [parts[2], idx, parts[3]])
        top = builder.icmp_signed("<", idx, ir.Constant(_B64, None))
        r = builder.select(top, hi, lo)
        po = builder.bitcast(elem_ptr(context, builder, sig.args[2], args[2], args[3], sig.args[3]),
                             _B64.as_pointer())
        builder.store(r, po, align=1)
        return context.get_dummy_value()

    return types.none(tab, x, o, i), codegen
