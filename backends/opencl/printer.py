"""Print ops/expr.py trees as OpenCL C (1.2) statements: the OpenCL renderer of the one shared
definition of each elementwise op's math (numba_cpu/printer.py is the Numba renderer).

Why these choices (PERFORMANCE.md §3):
* max/min/abs-free clamps are printed as ternary selects, not fmin/fmax: PoCL 3.0 does not
  inline those builtins and the work-item loop stops vectorizing; selects also give NumPy's
  NaN-propagating maximum/minimum, which fmax (NaN-ignoring) would not.
* Every program starts with `#pragma OPENCL FP_CONTRACT OFF`: OpenCL C allows a*b+c to be
  contracted into an FMA by default, which changes last bits (FAKE_QUANT's quant_steps must not
  change) and would make results differ between devices.
* A fused DAG is printed as straight-line code, one temporary per distinct node, so shared
  subtrees are computed once and the text never grows exponentially.
* Float constants are printed as the shortest decimal that round-trips the float32 value, with
  an `f` suffix (a bare literal would be a double, which devices without fp64 reject).
"""

from __future__ import annotations

import numpy as np

from tflite_jit.ops.expr import Const, Expr, ScalarOps, Var, nodes

#: Helpers printed expressions may call; pasted at the top of every program.
PRELUDE = """#pragma OPENCL FP_CONTRACT OFF
inline float tj_floormod(float a, float b) {
    float r = fmod(a, b);
    return (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) ? r + b : r;
}
inline float tj_sat_half(float v) {
    return v > 65504.0f ? 65504.0f : (v < -65504.0f ? -65504.0f : v);
}
inline float tj_round_away(float x) {
    float m = fabs(x);
    float w = floor(m);
    float r = (m - w >= 0.5f) ? w + 1.0f : w;
    return (x >= 0.0f) ? r : -r;
}
inline float tj_quant_steps(float x, float lo, float inv) {
    float d = x - lo;
    float p = d * inv;
    return tj_round_away(p);
}
"""

_BOOL_RESULT = frozenset(("lt", "gt", "le", "ge", "eq", "ne", "and", "or", "not"))


class PrintError(ValueError):
    """The tree uses something this printer cannot express in float32 OpenCL C."""


def float_literal(value: float | int | str) -> str:
    """A float32 constant as OpenCL C source (LIMITS strings are FLT_MAX-based)."""
    if isinstance(value, str):
        return "(-FLT_MAX)" if value == "lowest" else "FLT_MAX"
    f = np.float32(value)
    if np.isnan(f):
        return "NAN"
    if np.isinf(f):
        return "INFINITY" if f > 0 else "(-INFINITY)"
    text = repr(float(f))
    if "e" not in text and "." not in text:
        text += ".0"
    return f"({text}f)" if text.startswith("-") else f"{text}f"


class OpenCLOps(ScalarOps[str]):
    """ops/expr.py's vocabulary as OpenCL C 1.2 expressions over float32 operands (bool results
    are C ints 0/1). The integer-only functions are refused: float32 trees never contain them,
    and an integer tree is refused before printing."""

    error = PrintError
    infix = {"add": "+", "sub": "-", "mul": "*", "div": "/", "lt": "<", "gt": ">", "le": "<=",
             "ge": ">=", "eq": "==", "ne": "!=", "and": "&&", "or": "||"}
    calls = {"abs": "fabs", "sqrt": "sqrt", "exp": "exp", "log": "log", "erf": "erf", "erfc": "erfc",
             "floor": "floor", "ceil": "ceil", "round": "rint", "sin": "sin", "cos": "cos",
             "power": "pow", "atan2": "atan2", "floormod": "tj_floormod",
             "round_away": "tj_round_away", "quant_steps": "tj_quant_steps"}
    refused = dict.fromkeys(("bitand", "bitxor", "rshift", "power_wrap"),
                            "expression function {fn!r} is integer-only; the OpenCL backend prints "
                            "float32 trees")

    def neg(self, x): return f"(-{x})"  # noqa: E704
    def square(self, x): return f"({x} * {x})"  # noqa: E704
    def max(self, a, b): return f"((({a}) > ({b}) || ({a}) != ({a})) ? ({a}) : ({b}))"  # noqa: E704
    def min(self, a, b): return f"((({a}) < ({b}) || ({a}) != ({a})) ? ({a}) : ({b}))"  # noqa: E704
    def rsqrt(self, x): return f"(1.0f / sqrt({x}))"  # noqa: E704
    def where(self, c, a, b): return f"(({c}) ? ({a}) : ({b}))"  # noqa: E704
    def floordiv(self, a, b): return f"floor({a} / {b})"  # noqa: E704
    def not_(self, x): return f"(!{x})"  # noqa: E704

    def tanh(self, x):
        # PoCL's tanh returns +-0.99999994 even at +-inf (measured), so GELU's 1 + tanh(-inf) is
        # not 0 there; tanh(x) rounds to exactly +-1 in float32 for |x| >= 10 anyway
        return f"(({x}) >= 10.0f ? 1.0f : (({x}) <= -10.0f ? -1.0f : tanh({x})))"

    def sign(self, x):  # NaN passes through (x * 0 is NaN), like NumPy's sign
        return f"(({x}) > 0.0f ? 1.0f : (({x}) < 0.0f ? -1.0f : ({x}) * 0.0f))"


_OPS = OpenCLOps()


def is_bool(e: Expr, var_is_bool: dict[int, bool]) -> bool:
    """Whether `e` yields a truth value (comparisons, logic, bool inputs) rather than a float."""
    if isinstance(e, Var):
        return var_is_bool.get(e.index, False)
    if isinstance(e, Const):
        return False
    if e.fn in _BOOL_RESULT:
        return True
    if e.fn == "where":
        return is_bool(e.args[1], var_is_bool)
    return False


def emit(outputs: list[Expr], names: dict[int, str], var_is_bool: dict[int, bool] | None = None,
         prefix: str = "e") -> tuple[list[str], list[str]]:
    """(statements, one result expression per output) computing `outputs` over Var(i) = names[i].

    Each distinct Call node becomes one `float`/`int` temporary (bool results are C ints 0/1)."""
    vb = var_is_bool or {}
    lines: list[str] = []
    done: dict[int, str] = {}
    results = []
    for out in outputs:
        for e in nodes(out):
            if id(e) in done:
                continue
            if isinstance(e, Var):
                if e.index not in names:
                    raise PrintError(f"expression reads input {e.index}, which the kernel does not have")
                done[id(e)] = names[e.index]
            elif isinstance(e, Const):
                done[id(e)] = float_literal(e.value)
            else:
                text = _OPS.call(e.fn, [done[id(a)] for a in e.args])
                name = f"{prefix}{len(done)}"
                ctype = "int" if is_bool(e, vb) else "float"
                lines.append(f"const {ctype} {name} = {text};")
                done[id(e)] = name
        results.append(done[id(out)])
    return lines, results
