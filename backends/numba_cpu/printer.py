"""Print ops/expr.py trees as Numba-compilable Python expressions: `NumbaOps` is the Numba
renderer of the scalar vocabulary (ops/expr.py ScalarOps), `to_python` prints a tree with it, and
PRELUDE (imports of scalars.py's helpers) / EXP_PRELUDE (pasted) start every kernel module.

Float32 trees must stay float32 inside Numba: a bare Python float literal would promote the
arithmetic to float64 (PERFORMANCE.md §1.1), so every constant is printed as np.float32(...)
(or the integer dtype's constructor).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tflite_jit.ops.expr import Const, Expr, ScalarOps, Var

F32 = np.dtype(np.float32)


class PrintError(ValueError):
    """The tree uses something this printer cannot express for its dtype."""


def const_literal(value: float | int | str, dtype: np.dtype) -> str:
    dt = np.dtype(dtype)
    if isinstance(value, str):
        info = np.finfo(dt) if dt.kind == "f" else np.iinfo(dt)
        value = info.min if value == "lowest" else info.max
    if dt.kind == "f":
        return f"np.{dt.name}({float(np.asarray(value, dt))!r})"
    if dt.kind == "b":
        return "True" if value else "False"
    return f"np.{dt.name}({int(value)})"


def _typed(callee: str) -> Callable[..., str]:
    """A NumbaOps method printing ``np.<dtype>(callee(a, ...))`` (Numba may widen the call's
    result: the cast keeps the tree's dtype)."""

    def method(self: NumbaOps, *args: str) -> str:
        return f"{self.t}({callee}({', '.join(args)}))"

    method.__doc__ = f"``np.<dtype>({callee}(...))``"
    return method


class NumbaOps(ScalarOps[str]):
    """The vocabulary as Numba-compilable Python expressions over operands of `dtype` (source
    text in, source text out). With `vector_libm`, exp/erf/erfc/tanh on float32 print as the
    vectorizable helpers of EXP_PRELUDE (`VECTOR_FNS`), for callers that include it; otherwise
    as the scalar libm call."""

    error = PrintError
    infix = {"add": "+", "sub": "-", "mul": "*", "lt": "<", "gt": ">", "le": "<=", "ge": ">=",
             "eq": "==", "ne": "!=", "and": "and", "or": "or", "bitand": "&", "bitxor": "^"}
    calls = {"round_away": "_round_away", "quant_steps": "_quant_steps"}

    def __init__(self, dtype: np.dtype, vector_libm: bool = False):
        self.dt = np.dtype(dtype)
        self.t = f"np.{self.dt.name}"
        self.vector_libm = vector_libm and self.dt == F32

    def _libm(self, fn: str, x: str) -> str:
        if self.vector_libm:
            return f"{VECTOR_FNS[fn]}({x})"
        if fn in ("erf", "erfc"):
            return f"{self.t}(math.{fn}(np.float64({x})))"
        return f"{self.t}(np.{fn}({x}))"

    def _float_int(self, float_text: str, int_text: str) -> str:
        return float_text if self.dt.kind == "f" else int_text

    abs = _typed("abs")
    sqrt = _typed("np.sqrt")
    log = _typed("np.log")
    floor = _typed("np.floor")
    ceil = _typed("np.ceil")
    round = _typed("np.rint")
    sin = _typed("np.sin")
    cos = _typed("np.cos")
    atan2 = _typed("np.arctan2")

    def div(self, a, b): return self._float_int(f"({a} / {b})", f"_tdiv({a}, {b})")  # noqa: E704
    def neg(self, x): return f"(-{x})"  # noqa: E704
    def square(self, x): return f"({x} * {x})"  # noqa: E704

    def max(self, a, b):
        # NaN-propagating like NumPy's maximum; LLVM turns the selects into vmax
        return self._float_int(f"_max({a}, {b})", f"({a} if {a} > {b} else {b})")

    def min(self, a, b):
        return self._float_int(f"_min({a}, {b})", f"({a} if {a} < {b} else {b})")

    def rsqrt(self, x): return f"({self.t}(1.0) / np.sqrt({x}))"  # noqa: E704
    def exp(self, x): return self._libm("exp", x)  # noqa: E704
    def tanh(self, x): return self._libm("tanh", x)  # noqa: E704
    def erf(self, x): return self._libm("erf", x)  # noqa: E704
    def erfc(self, x): return self._libm("erfc", x)  # noqa: E704
    def where(self, c, a, b): return f"({a} if {c} else {b})"  # noqa: E704
    def not_(self, x): return f"(not {x})"  # noqa: E704

    def sign(self, x):
        t = self.t
        if self.dt.kind == "f":  # NaN passes through (NumPy's sign)
            return f"({t}(1) if {x} > 0 else ({t}(-1) if {x} < 0 else {x} * {t}(0)))"
        return f"({t}(1) if {x} > 0 else ({t}(-1) if {x} < 0 else {t}(0)))"

    def power(self, a, b):
        lo, hi = const_literal("lowest", self.dt), const_literal("highest", self.dt)
        return self._float_int(f"{self.t}(np.power({a}, {b}))", f"{self.t}(_ipow({a}, {b}, {lo}, {hi}))")

    def power_wrap(self, a, b):
        return self._float_int(f"{self.t}(np.power({a}, {b}))", f"{self.t}(_ipow_wrap({a}, {b}))")

    def floordiv(self, a, b):
        return self._float_int(f"{self.t}(np.floor({a} / {b}))", f"{self.t}({a} // {b})")

    def floormod(self, a, b):
        return self._float_int(f"{self.t}(_floormod({a}, {b}))", f"{self.t}({a} % {b})")

    def rshift(self, a, b):
        if self.dt.kind not in "iu":
            raise PrintError(f"rshift on {self.dt}")
        return f"_rshift({a}, {b}, {self.dt.itemsize * 8 - 1})"


def to_python(expr: Expr, names: dict[int, str], dtype: np.dtype, vector_libm: bool = False) -> str:
    """Source text of `expr` with Var(i) printed as names[i], computed in `dtype` (NumbaOps;
    `vector_libm`: the EXP_PRELUDE helpers for exp/erf/erfc/tanh)."""
    dt = np.dtype(dtype)
    ops = NumbaOps(dt, vector_libm)

    def p(e: Expr) -> str:
        if isinstance(e, Var):
            return names[e.index]
        if isinstance(e, Const):
            return const_literal(e.value, dt)
        return ops.call(e.fn, [p(x) for x in e.args])

    return p(expr)


#: The lines every generated module starts with; the helpers printed expressions call live in
#: scalars.py (imported, so their dispatchers exist once per process, not once per kernel).
PRELUDE = '''
import math
import numba
import numpy as np
from tflite_jit.backends.numba_cpu.scalars import (_floormod, _ipow, _ipow_wrap, _max, _min, _quant_steps,
                                                   _round_away, _rshift, _tdiv)
'''


#: A vectorizable float32 exp for generated modules that call `_exp32` (pasted into the module,
#: so its text is part of the kernel's content hash). libm's expf is a scalar call (no SVML in
#: pip llvmlite, PERFORMANCE.md §1.7): 2 ns per element here, 3x slower than NumPy. This is
#: Cody-Waite reduction by ln2, a degree-7 Taylor polynomial on |r| <= ln2/2 and the 2^n scale
#: built from exponent bits (an LLVM bitcast), applied as two factors so subnormal results and
#: results just below FLT_MAX stay exact. Measured over [-110, 95]: max error 0.91 ulp (NumPy's
#: float32 exp: 2.3 ulp), inf above ~88.72, 0 below ~-103.97, NaN passes through.
#: It is compiled as its own function with only 'contract': fast-math flags live on the
#: instructions, so after LLVM inlines it into a kernel compiled with 'reassoc' its scale
#: factors are still applied in order (reassociated, (p*2^64)*2^64 became p*inf).
EXP_PRELUDE = '''
from llvmlite import ir as _ir
from numba.core import types as _types
from numba.extending import intrinsic as _intrinsic


@_intrinsic
def _f32_from_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], _ir.FloatType())
    return _types.float32(_types.int32), codegen


@numba.njit(fastmath={'contract'}, error_model='numpy', nogil=True)
def _exp32(x):
    xc = x if x > np.float32(-104.0) else np.float32(-104.0)
    xc = xc if xc < np.float32(89.0) else np.float32(89.0)
    n = np.floor(xc * np.float32(1.4426950408889634) + np.float32(0.5))
    r = xc - n * np.float32(0.693359375)
    r = r - n * np.float32(-2.1219444005469057e-04)
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    ni = np.int32(n)
    h = np.int32(ni >> np.int32(1))
    s1 = _f32_from_bits(np.int32((h + np.int32(127)) << np.int32(23)))
    s2 = _f32_from_bits(np.int32((ni - h + np.int32(127)) << np.int32(23)))
    y = (p * s1) * s2
    return x if x != x else y


@numba.njit(fastmath={'contract'}, error_model='numpy', nogil=True, inline='always')
def _erfc32(x):
    # Numerical Recipes' erfcc Chebyshev fit (fractional error < 1.2e-7), the same formula the
    # NumPy reference evaluates in float64, here in float32 around the vectorizable _exp32.
    # Inlined at Numba IR level (13x faster measured: LLVM would not inline two call levels
    # and the loop stayed scalar); _exp32 itself stays a call so its flags are kept.
    z = abs(x)
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.5) * z)
    q = np.float32(0.17087277)
    q = q * t + np.float32(-0.82215223)
    q = q * t + np.float32(1.48851587)
    q = q * t + np.float32(-1.13520398)
    q = q * t + np.float32(0.27886807)
    q = q * t + np.float32(-0.18628806)
    q = q * t + np.float32(0.09678418)
    q = q * t + np.float32(0.37409196)
    q = q * t + np.float32(1.00002368)
    q = q * t + np.float32(-1.26551223)
    r = t * _exp32(q - z * z)
    return r if x >= np.float32(0.0) else np.float32(2.0) - r


@numba.njit(fastmath={'contract'}, error_model='numpy', nogil=True, inline='always')
def _erf32(x):
    return np.float32(1.0) - _erfc32(x)


@numba.njit(fastmath={'contract'}, error_model='numpy', nogil=True, inline='always')
def _tanh32(x):
    # tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1)); absolute error ~1e-7, far inside the float
    # contract, and vectorizable where libm's tanhf is a scalar call.
    e = _exp32(np.float32(2.0) * abs(x))
    y = np.float32(1.0) - np.float32(2.0) / (e + np.float32(1.0))
    y = y if x >= np.float32(0.0) else -y
    return x if x != x else y
'''

VECTOR_FNS = {"exp": "_exp32", "erfc": "_erfc32", "erf": "_erf32", "tanh": "_tanh32"}


# ---- vector expressions (GEMM epilogues over simd.py's <VW x float> intrinsics) -------------------

class VecOps(ScalarOps[str]):
    """ops/expr.py's vocabulary printed over float32 vectors with simd.py's intrinsics. Functions
    without a vector intrinsic here (libm calls, comparisons, selection, integer functions) are
    refused: a GEMM epilogue using one goes through a scratch row and the scalar printer."""

    error = PrintError
    refused = dict.fromkeys(
        ("exp", "log", "tanh", "erf", "erfc", "lt", "gt", "le", "ge", "eq", "ne", "where", "sign",
         "round", "sin", "cos", "power", "power_wrap", "floordiv", "floormod", "and", "or", "not",
         "atan2", "bitand", "bitxor", "rshift", "round_away", "quant_steps"),
        "{fn} has no vector form")
    calls = {"add": "vadd", "sub": "vsub", "mul": "vmul", "div": "vdiv", "neg": "vneg", "abs": "vabs",
             "square": "vsquare", "max": "vmax", "min": "vmin", "sqrt": "vsqrt", "rsqrt": "vrsqrt",
             "floor": "vfloor", "ceil": "vceil"}


_VEC_OPS = VecOps()

#: every intrinsic a GEMM kernel may call (its import line): the memory and FMA intrinsics, then
#: each one VecOps prints
INTRINSICS = ("vload", "vloadm", "vstore", "vstorem", "vbcast", "vsplat", "vfma", "ld", "st",
              *sorted(set(VecOps.calls.values())))


def vec_expr(expr: Expr, names: dict[int, str]) -> str | None:
    """`expr` printed over vectors (Var(i) -> names[i]); None if it needs a function with no
    vector form here (VecOps refuses it): the caller then uses the scalar path."""
    if isinstance(expr, Var):
        return names[expr.index]
    if isinstance(expr, Const):
        return f"vsplat({const_literal(expr.value, F32)})"
    if expr.fn in VecOps.refused:
        return None
    args = [vec_expr(a, names) for a in expr.args]
    if any(a is None for a in args):
        return None
    return _VEC_OPS.call(expr.fn, args)
