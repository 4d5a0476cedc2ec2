"""Print ops/expr.py trees as Numba-compilable Python expressions.

Float32 trees must stay float32 inside Numba: a bare Python float literal would promote the
arithmetic to float64 (PERFORMANCE.md §1.1), so every constant is printed as np.float32(...)
(or the integer dtype's constructor).
"""

from __future__ import annotations

import numpy as np

from tflite_jit.ops.expr import Call, Const, Expr, Var

_BINOPS = {"add": "+", "sub": "-", "mul": "*", "lt": "<", "gt": ">", "le": "<=", "ge": ">=",
           "eq": "==", "ne": "!="}
_FUNCS = {"sqrt": "np.sqrt", "exp": "np.exp", "log": "np.log", "tanh": "np.tanh", "abs": "abs",
          "floor": "np.floor", "ceil": "np.ceil", "erf": "math.erf", "erfc": "math.erfc",
          "round": "np.rint", "sin": "np.sin", "cos": "np.cos"}


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


def to_python(expr: Expr, names: dict[int, str], dtype: np.dtype,
              vector_fns: dict[str, str] | None = None) -> str:
    """Source text of `expr` with Var(i) printed as names[i], computed in `dtype`. `vector_fns`
    maps functions (exp, erfc, tanh...) to float32 helpers LLVM can vectorise, for callers that
    include their definitions (loop.EXP_PRELUDE); otherwise the scalar libm call is printed."""
    dt = np.dtype(dtype)
    t = f"np.{dt.name}"

    def p(e: Expr) -> str:
        if isinstance(e, Var):
            return names[e.index]
        if isinstance(e, Const):
            return const_literal(e.value, dt)
        assert isinstance(e, Call)
        a = [p(x) for x in e.args]
        fn = e.fn
        if fn in _BINOPS:
            return f"({a[0]} {_BINOPS[fn]} {a[1]})"
        if fn == "div":
            return f"({a[0]} / {a[1]})" if dt.kind == "f" else f"_tdiv({a[0]}, {a[1]})"
        if fn == "neg":
            return f"(-{a[0]})"
        if fn == "square":
            return f"({a[0]} * {a[0]})"
        if fn == "rsqrt":
            return f"({t}(1.0) / np.sqrt({a[0]}))"
        if fn in ("max", "min"):
            # NaN-propagating like NumPy's maximum/minimum; LLVM turns the selects into vmax/vmin
            op = ">" if fn == "max" else "<"
            return f"_{fn}({a[0]}, {a[1]})" if dt.kind == "f" else f"({a[0]} if {a[0]} {op} {a[1]} else {a[1]})"
        if fn == "where":
            return f"({a[1]} if {a[0]} else {a[2]})"
        if fn == "sign":
            if dt.kind == "f":  # NaN passes through (NumPy's sign)
                return f"({t}(1) if {a[0]} > 0 else ({t}(-1) if {a[0]} < 0 else {a[0]} * {t}(0)))"
            return f"({t}(1) if {a[0]} > 0 else ({t}(-1) if {a[0]} < 0 else {t}(0)))"
        if fn == "power":
            return f"{t}(np.power({a[0]}, {a[1]}))" if dt.kind == "f" else f"{t}(_ipow({a[0]}, {a[1]}, {const_literal('lowest', dt)}, {const_literal('highest', dt)}))"
        if fn == "power_wrap":
            return f"{t}(np.power({a[0]}, {a[1]}))" if dt.kind == "f" else f"{t}(_ipow_wrap({a[0]}, {a[1]}))"
        if fn == "floordiv":
            return f"{t}(np.floor({a[0]} / {a[1]}))" if dt.kind == "f" else f"{t}({a[0]} // {a[1]})"
        if fn == "floormod":
            return f"{t}(_floormod({a[0]}, {a[1]}))" if dt.kind == "f" else f"{t}({a[0]} % {a[1]})"
        if fn in ("and", "or"):
            return f"({a[0]} {fn} {a[1]})"
        if fn == "not":
            return f"(not {a[0]})"
        if fn == "atan2":
            return f"{t}(np.arctan2({a[0]}, {a[1]}))"
        if fn == "bitand":
            return f"({a[0]} & {a[1]})"
        if fn == "bitxor":
            return f"({a[0]} ^ {a[1]})"
        if fn == "rshift":
            if dt.kind not in "iu":
                raise ValueError(f"rshift on {dt}")
            return f"_rshift({a[0]}, {a[1]}, {dt.itemsize * 8 - 1})"
        if fn == "round_away":
            return f"_round_away({a[0]})"
        if fn == "quant_steps":
            return f"_quant_steps({a[0]}, {a[1]}, {a[2]})"
        if vector_fns and fn in vector_fns and dt == np.float32:
            return f"{vector_fns[fn]}({a[0]})"
        if fn in ("erf", "erfc"):
            return f"{t}({_FUNCS[fn]}(np.float64({a[0]})))"
        if fn in _FUNCS:
            return f"{t}({_FUNCS[fn]}({a[0]}))"
        raise ValueError(f"no Numba printing for expression function {fn!r}")

    return p(expr)


#: Helpers that printed expressions may call; generators paste this into every module.
PRELUDE = '''
import math
import numba
import numpy as np


@numba.njit(inline="always")
def _max(a, b):
    return a if (a > b or a != a) else b


@numba.njit(inline="always")
def _min(a, b):
    return a if (a < b or a != a) else b


@numba.njit(inline="always")
def _tdiv(a, b):
    q = a // b
    return q + 1 if (q < 0 and q * b != a) else q


@numba.njit(inline="always")
def _floormod(a, b):
    r = np.fmod(a, b)
    return r + b if (r != 0 and ((r < 0) != (b < 0))) else r


@numba.njit(inline="always")
def _ipow_wrap(a, b):
    # a ** b (b >= 0) by squaring, wrapping around in a's type (ops/expr.py power_wrap)
    r = a - a + 1
    base = a
    while b > 0:
        if b & 1:
            r = r * base
        base = base * base
        b >>= 1
    return r


@numba.njit(inline="always")
def _ipow(a, b, lo, hi):
    # exact integer power (b >= 0) when it fits [lo, hi], else lo (ops/expr.py)
    if a == 0 or a == 1:
        return lo - lo + (a if b > 0 else 1)
    if a == -1:
        return lo - lo + (1 if b % 2 == 0 else -1)
    r = np.int64(1)
    base = np.int64(a)
    for _ in range(b):
        r = r * base
        if r > hi or r < lo:
            return lo
    return lo - lo + r


@numba.njit(inline="always")
def _rshift(a, b, hi):
    # a >> b with the count clamped to [0, hi] (ops/expr.py rshift)
    c = b if b > 0 else b - b
    c = c if c < hi else hi
    return a >> c


@numba.njit(inline="always")
def _round_away(x):
    # C's roundf: ties away from zero; NaN and +-inf pass through (ops/expr.py round_away)
    m = abs(x)
    w = np.floor(m)
    r = w + np.float32(1.0) if m - w >= np.float32(0.5) else w
    return r if x >= np.float32(0.0) else -r


@numba.njit(error_model="numpy", nogil=True, fastmath=False)
def _quant_steps(x, lo, inv):
    # roundf((x - lo) * inv). fastmath=False must be explicit (a callee without it inherits the
    # kernel's flags) and the function is not inlined by Numba, so its instructions carry no
    # fast-math flags even after LLVM inlines it: with 'reassoc'/'contract' LLVM turns the product
    # into an FMA of x * inv - lo * inv, and a last-bit change flips the rounding by a whole step
    p = (x - lo) * inv
    m = abs(p)
    w = np.floor(m)
    r = w + np.float32(1.0) if m - w >= np.float32(0.5) else w
    return r if p >= np.float32(0.0) else -r
'''


def index_expr(name: str, shape: tuple[int, ...], loop_vars: list[str]) -> str:
    """`name[i, j, ...]` for an array broadcast to the loop's rank: 0 where its dim is 1."""
    idx = ["0" if d == 1 else v for d, v in zip(shape, loop_vars)]
    return f"{name}[{', '.join(idx)}]" if idx else f"{name}[()]"
