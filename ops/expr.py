"""A tiny scalar expression language for elementwise ops.

Each elementwise op describes its per-element math once, as a tree of `Var` (the op's i-th input),
`Const` (a number) and `Call` (one function from the fixed vocabulary `FNS`). The NumPy reference
kernels evaluate the tree with `evaluate_numpy`; code-generating backends (Numba, OpenCL) print the
same tree as source and can fuse chains of elementwise ops by substituting one op's tree for a
`Var` of the next (`substitute`).

An OpDef's `expr` field is a callable ``expr(attrs) -> Expr``, because the math may depend on the
op's options (fused activation, LEAKY_RELU's alpha, GELU's approximate flag). The tree itself is
dtype-agnostic: it is evaluated in the dtype of its operands.

Every renderer of the trees implements `ScalarOps`, one method per function (the vocabulary
`FNS` is read off that class): `NumpyOps` here, the Numba scalar and vector printers and the
OpenCL C printer in the backends. A function a renderer cannot render is refused explicitly
(`ScalarOps.refused`), never left out, so adding a function to the vocabulary makes every
renderer that lacks it fail (abstract: it cannot be instantiated).

Semantics (what every renderer must reproduce; each function's own rule is its method's
docstring):

* Operands of one call have the same dtype (the op's compute dtype); comparisons yield bool.
* ``Const(v)`` takes the compute dtype of the tree: ``np.float32(v)`` in float32 trees, the
  integer type in integer trees (then `v` must be integral). ``Const("lowest")`` and
  ``Const("highest")`` are the compute dtype's finite limits (C: -FLT_MAX / FLT_MAX,
  INT32_MIN / INT32_MAX): LiteRT's fused-activation clamp uses them, so its float ADD/SUB/MUL/DIV
  turn +-inf into +-FLT_MAX even with no activation.
* Float math is IEEE float32, as in C with ``float`` operands; ``exp``/``log``/``tanh``/``sqrt``/
  ``erf``/``erfc`` are the C library functions of that name (reference: within 2 ulp).
* Integer ``add``/``sub``/``mul``/``neg``/``square`` wrap around (two's complement), and
  ``div`` on integers truncates toward zero (C's ``/``); callers guarantee a non-zero divisor.
"""

from __future__ import annotations

import keyword
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np


@dataclass(frozen=True)
class Var:
    """The op's `index`-th input (after broadcasting to the output shape)."""

    index: int


@dataclass(frozen=True)
class Const:
    """A literal, converted to the tree's compute dtype; or "lowest"/"highest" (dtype limits)."""

    value: float | int | str

    def __post_init__(self) -> None:
        if isinstance(self.value, str) and self.value not in LIMITS:
            raise ValueError(f"Const string value must be one of {LIMITS}, got {self.value!r}")


@dataclass(frozen=True, eq=False)
class Call:
    """Fused chains share subtrees by reference (x + x nested n deep is a DAG of n nodes), so
    hashing and equality must not re-walk shared children: the hash is computed once from the
    children's cached hashes, and equality checks identity first."""

    fn: str
    args: tuple[Expr, ...]

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined]

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Call) or self._hash != other._hash or self.fn != other.fn:  # type: ignore[attr-defined]
            return False
        return all(a is b or a == b for a, b in zip(self.args, other.args))

    def __post_init__(self) -> None:
        arity = FNS.get(self.fn)
        if arity is None:
            raise ValueError(f"unknown expression function {self.fn!r}; the vocabulary is {sorted(FNS)}")
        if len(self.args) != arity:
            raise ValueError(f"{self.fn} takes {arity} argument(s), got {len(self.args)}")
        if not isinstance(self.args, tuple):
            object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "_hash", hash((self.fn, self.args)))


Expr = Var | Const | Call

LIMITS = ("lowest", "highest")

T = TypeVar("T")


class ScalarOps(ABC, Generic[T]):
    """The vocabulary as a contract (PyTorch Inductor's OpsHandler): one method per function,
    taking and returning a renderer's values (NumPy arrays for `NumpyOps`, source text for the
    printers). `FNS` is read off this class, so a function exists once: add it here (an abstract
    method with its semantics) and every renderer must implement or refuse it before it can be
    instantiated again. Keep the vocabulary small: every backend renders each function.
    ``and``/``or``/``not`` are spelled ``and_``/``or_``/``not_`` (Python keywords)."""

    # A renderer defines each function as a method, or names it in one of these tables (each
    # entry becomes the method; a function may be defined once only):
    #: functions rendered as ``(a <op> b)``: function -> operator
    infix: ClassVar[dict[str, str]] = {}
    #: functions rendered as a call: function -> the callee (printers: its name, printed as
    #: ``name(a, b)``; the NumPy evaluator: the function itself, applied)
    calls: ClassVar[dict[str, str | Callable[..., Any]]] = {}
    #: functions this renderer cannot render -> why (``{fn}`` is replaced by the function's name):
    #: the method raises `error` with that message, so a refusal is said, never implied
    refused: ClassVar[dict[str, str]] = {}
    #: what a refused function raises (the renderer's own error type)
    error: ClassVar[type[Exception]] = ValueError

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for table, make in (("infix", _infix), ("calls", _call), ("refused", _refusal)):
            for fn, how in cls.__dict__.get(table, {}).items():
                name = method_name(fn)
                if fn not in FNS:
                    raise TypeError(f"{cls.__name__}.{table} names {fn!r}, which is not in the vocabulary")
                if name in cls.__dict__:
                    raise TypeError(f"{cls.__name__} defines {fn!r} twice")
                setattr(cls, name, make(fn, how))

    def call(self, fn: str, args: Sequence[T]) -> T:
        """Function `fn` of the vocabulary applied to `args`."""
        return getattr(self, method_name(fn))(*args)

    # ---- arithmetic
    @abstractmethod
    def add(self, a: T, b: T) -> T:
        """a + b."""

    @abstractmethod
    def sub(self, a: T, b: T) -> T:
        """a - b."""

    @abstractmethod
    def mul(self, a: T, b: T) -> T:
        """a * b."""

    @abstractmethod
    def div(self, a: T, b: T) -> T:
        """a / b; integers truncate toward zero (C's ``/``)."""

    @abstractmethod
    def neg(self, x: T) -> T:
        """-x."""

    @abstractmethod
    def abs(self, x: T) -> T:
        """|x|."""

    @abstractmethod
    def square(self, x: T) -> T:
        """x * x."""

    @abstractmethod
    def max(self, a: T, b: T) -> T:
        """The larger operand; NaN when either operand is NaN (NumPy's ``maximum``)."""

    @abstractmethod
    def min(self, a: T, b: T) -> T:
        """The smaller operand; NaN when either operand is NaN (NumPy's ``minimum``)."""

    # ---- transcendental (float only)
    @abstractmethod
    def sqrt(self, x: T) -> T:
        """C's ``sqrtf``."""

    @abstractmethod
    def rsqrt(self, x: T) -> T:
        """1 / sqrt(x)."""

    @abstractmethod
    def exp(self, x: T) -> T:
        """C's ``expf``."""

    @abstractmethod
    def log(self, x: T) -> T:
        """C's ``logf``."""

    @abstractmethod
    def tanh(self, x: T) -> T:
        """C's ``tanhf``."""

    @abstractmethod
    def erf(self, x: T) -> T:
        """C's ``erff``."""

    @abstractmethod
    def erfc(self, x: T) -> T:
        """C's ``erfcf``."""

    @abstractmethod
    def floor(self, x: T) -> T:
        """C's ``floorf``."""

    @abstractmethod
    def ceil(self, x: T) -> T:
        """C's ``ceilf``."""

    # ---- comparisons (-> bool) and selection
    @abstractmethod
    def lt(self, a: T, b: T) -> T:
        """a < b."""

    @abstractmethod
    def gt(self, a: T, b: T) -> T:
        """a > b."""

    @abstractmethod
    def le(self, a: T, b: T) -> T:
        """a <= b."""

    @abstractmethod
    def ge(self, a: T, b: T) -> T:
        """a >= b."""

    @abstractmethod
    def eq(self, a: T, b: T) -> T:
        """a == b."""

    @abstractmethod
    def ne(self, a: T, b: T) -> T:
        """a != b."""

    @abstractmethod
    def where(self, c: T, a: T, b: T) -> T:
        """C's ``c ? a : b``."""

    # ---- math family (ops/math.py)
    @abstractmethod
    def sign(self, x: T) -> T:
        """-1, 0 or 1 in the operand's type; float NaN stays NaN (NumPy's ``sign``)."""

    @abstractmethod
    def round(self, x: T) -> T:
        """(float only) Nearest integer, ties to even (C's ``rint``; NumPy's ``rint``)."""

    @abstractmethod
    def sin(self, x: T) -> T:
        """(float only) The C library function."""

    @abstractmethod
    def cos(self, x: T) -> T:
        """(float only) The C library function."""

    @abstractmethod
    def power(self, a: T, b: T) -> T:
        """Float: C's ``powf``. Integer: the exact power when it fits the type, else the type's
        minimum (LiteRT computes in double and converts, which gives INT_MIN out of range on
        x86); callers guarantee ``b >= 0``."""

    @abstractmethod
    def power_wrap(self, a: T, b: T) -> T:
        """Float: as ``power``. Integer: ``a`` multiplied by itself ``b`` times, wrapping around
        (two's complement; NumPy's integer ``power``); callers guarantee ``b >= 0``. LiteRT's
        integer POW takes this path when the exponent has one element and is broadcast."""

    @abstractmethod
    def floordiv(self, a: T, b: T) -> T:
        """Float: ``floor(a / b)``; integer: division rounding toward minus infinity (Python's
        ``//``); callers guarantee a non-zero integer divisor."""

    @abstractmethod
    def floormod(self, a: T, b: T) -> T:
        """``r = fmod(a, b)`` (C's ``fmod``/``%``, sign of ``a``), then ``r + b`` when ``r != 0``
        and ``r`` and ``b`` have different signs (the result takes ``b``'s sign, as Python's
        ``%``); callers guarantee a non-zero integer divisor (float ``b == 0`` gives NaN)."""

    @abstractmethod
    def and_(self, a: T, b: T) -> T:
        """``and``: logical AND of bool operands."""

    @abstractmethod
    def or_(self, a: T, b: T) -> T:
        """``or``: logical OR of bool operands."""

    @abstractmethod
    def not_(self, x: T) -> T:
        """``not``: logical NOT of a bool operand."""

    # ---- bitwise/trigonometric family (ops/math.py, ops/stablehlo_elementwise.py)
    @abstractmethod
    def atan2(self, y: T, x: T) -> T:
        """(float only) C's ``atan2f`` (NumPy's ``arctan2``)."""

    @abstractmethod
    def bitand(self, a: T, b: T) -> T:
        """Bitwise AND of integer operands (on bool operands, logical AND)."""

    @abstractmethod
    def bitxor(self, a: T, b: T) -> T:
        """Bitwise XOR of integer operands (on bool operands, logical XOR)."""

    @abstractmethod
    def rshift(self, a: T, b: T) -> T:
        """(integer only) ``a >> c`` with the count ``c`` = ``b`` clamped to ``[0, bits - 1]``
        (bits = the operand type's width), arithmetic for signed types and logical for unsigned
        ones. This is LiteRT's RIGHT_SHIFT rule, which is defined for every count."""

    @abstractmethod
    def round_away(self, x: T) -> T:
        """(float only) Nearest integer, ties away from zero (C's ``roundf``); NaN and +-inf pass
        through."""

    @abstractmethod
    def quant_steps(self, x: T, lo: T, inv: T) -> T:
        """(float only) ``round_away((x - lo) * inv)`` with the difference and the product each
        rounded to the compute type, in that order (no fused multiply-add, no reassociation):
        FAKE_QUANT's step count, where a last-bit difference moves a result by a whole
        quantization step."""


def method_name(fn: str) -> str:
    """The `ScalarOps` method of vocabulary function `fn` (``and`` -> ``and_``)."""
    return fn + "_" if keyword.iskeyword(fn) else fn


def _infix(fn: str, op: str) -> Callable[..., Any]:
    def method(self: ScalarOps, a: str, b: str) -> str:
        return f"({a} {op} {b})"

    method.__doc__ = f"``(a {op} b)``"
    return method


def _call(fn: str, callee: str | Callable[..., Any]) -> Callable[..., Any]:
    if callable(callee):
        def method(self: ScalarOps, *args: Any) -> Any:
            return callee(*args)

        method.__doc__ = f"{getattr(callee, '__name__', callee)}(...)"
    else:
        def method(self: ScalarOps, *args: Any) -> Any:
            return f"{callee}({', '.join(args)})"

        method.__doc__ = f"``{callee}(...)``"
    return method


def _refusal(fn: str, why: str) -> Callable[..., Any]:
    def method(self: ScalarOps, *args: Any) -> Any:
        raise self.error(why.format(fn=fn))

    method.__doc__ = f"Refused: {why.format(fn=fn)}"
    return method


#: The vocabulary: function name -> arity, read off `ScalarOps` (definition order).
FNS: dict[str, int] = {
    name.rstrip("_"): member.__code__.co_argcount - 1
    for name, member in vars(ScalarOps).items() if getattr(member, "__isabstractmethod__", False)
}


# ---- builders (short names keep the op definitions readable) ------------------------------------

def _wrap(x: Expr | float | int) -> Expr:
    return x if isinstance(x, (Var, Const, Call)) else Const(x)


def call(fn: str, *args: Expr | float | int) -> Call:
    return Call(fn, tuple(_wrap(a) for a in args))


def add(a, b) -> Call: return call("add", a, b)  # noqa: E704
def sub(a, b) -> Call: return call("sub", a, b)  # noqa: E704
def mul(a, b) -> Call: return call("mul", a, b)  # noqa: E704
def div(a, b) -> Call: return call("div", a, b)  # noqa: E704
def maximum(a, b) -> Call: return call("max", a, b)  # noqa: E704
def minimum(a, b) -> Call: return call("min", a, b)  # noqa: E704
def where(c, a, b) -> Call: return call("where", c, a, b)  # noqa: E704


def clamp_activation_expr(x: Expr, act: str) -> Expr:
    """LiteRT's fused activation as its kernels apply it: a clamp to [min, max] computed by
    CalculateActivationRange. RELU -> [0, highest], RELU6 -> [0, 6], RELU_N1_TO_1 -> [-1, 1], and
    every other code (NONE, TANH, SIGN_BIT) -> [lowest, highest] (TANH/SIGN_BIT are ignored)."""
    lo, hi = {"RELU": (0, "highest"), "RELU6": (0, 6), "RELU_N1_TO_1": (-1, 1)}.get(
        act, ("lowest", "highest"))
    return minimum(maximum(x, lo), hi)


def activation_expr(x: Expr, act: str) -> Expr:
    """The fused activation's mathematical meaning applied to `x` (no clamp to finite limits;
    see clamp_activation_expr for what LiteRT's ADD/SUB/MUL/DIV do)."""
    if act == "NONE":
        return x
    if act == "RELU":
        return maximum(x, 0)
    if act == "RELU6":
        return minimum(maximum(x, 0), 6)
    if act == "RELU_N1_TO_1":
        return minimum(maximum(x, -1), 1)
    if act == "TANH":
        return call("tanh", x)
    raise ValueError(f"fused activation {act} has no expression form")


# ---- tree utilities ------------------------------------------------------------------------------

def substitute(expr: Expr, mapping: dict[int, Expr]) -> Expr:
    """Replace Var(i) by mapping[i] (fusing a producer's expression into a consumer). Shared
    subtrees are rewritten once and stay shared."""
    memo: dict[int, Expr] = {}

    def sub(e: Expr) -> Expr:
        if isinstance(e, Var):
            return mapping.get(e.index, e)
        if isinstance(e, Const):
            return e
        done = memo.get(id(e))
        if done is None:
            done = memo[id(e)] = Call(e.fn, tuple(sub(a) for a in e.args))
        return done

    return sub(expr)


def nodes(expr: Expr) -> list[Expr]:
    """Every distinct node of the DAG once, children before parents."""
    seen: set[int] = set()
    out: list[Expr] = []
    stack: list[tuple[Expr, bool]] = [(expr, False)]
    while stack:
        e, expanded = stack.pop()
        if expanded:
            out.append(e)
            continue
        if id(e) in seen:
            continue
        seen.add(id(e))
        stack.append((e, True))
        if isinstance(e, Call):
            stack.extend((a, False) for a in reversed(e.args))
    return out


def tree_size(expr: Expr) -> int:
    """Nodes of the expression written out as a tree (what an inline printer would emit)."""
    size: dict[int, int] = {}
    for e in nodes(expr):
        size[id(e)] = 1 + (sum(size[id(a)] for a in e.args) if isinstance(e, Call) else 0)
    return size[id(expr)]


def variables(expr: Expr) -> set[int]:
    return {e.index for e in nodes(expr) if isinstance(e, Var)}


def to_string(expr: Expr) -> str:
    """A readable prefix form, e.g. ``min(max(add(x0, x1), 0), 6)``."""
    if isinstance(expr, Var):
        return f"x{expr.index}"
    if isinstance(expr, Const):
        return repr(expr.value)
    return f"{expr.fn}({', '.join(to_string(a) for a in expr.args)})"


# ---- NumPy evaluation ----------------------------------------------------------------------------

_SQRT_PI_INV2 = 2.0 / math.sqrt(math.pi)


def _erfc64(x: np.ndarray) -> np.ndarray:
    """erfc in float64, relative error < 1.2e-7 everywhere (Chebyshev fit, Numerical Recipes'
    erfcc); ample for a float32 result."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    with np.errstate(under="ignore"):
        r = t * np.exp(poly)
    return np.where(x >= 0, r, 2.0 - r)


def _erf64(x: np.ndarray) -> np.ndarray:
    """erf in float64: Maclaurin series near 0 (keeps relative accuracy for tiny x), else 1 - erfc."""
    x2 = x * x
    # sum_{n} (-1)^n x^(2n+1) / (n! (2n+1)); 12 terms are exact to 1e-16 for |x| <= 0.5
    term = np.array(x, dtype=np.float64)
    series = term.copy()
    for n in range(1, 12):
        term = term * (-x2) / n
        series = series + term / (2 * n + 1)
    series *= _SQRT_PI_INV2
    big = np.sign(x) * (1.0 - _erfc64(np.abs(x)))
    return np.where(np.abs(x) <= 0.5, series, big)


def _trunc_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division rounding toward zero (C semantics); b must be non-zero."""
    q = np.floor_divide(a, b)
    fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    return q + fix.astype(q.dtype)


def _f32_64(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def run(x: np.ndarray) -> np.ndarray:
        if x.dtype.kind != "f":
            raise TypeError("float function applied to a non-float operand")
        return fn(x.astype(np.float64)).astype(x.dtype)
    return run


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu":
        return _trunc_div(a, b)
    return np.true_divide(a, b)


def _rsqrt(x: np.ndarray) -> np.ndarray:
    return np.reciprocal(np.sqrt(x))


def _pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.result_type(a, b).kind not in "iu":
        return np.power(a, b)
    dt = np.result_type(a, b)
    info = np.iinfo(dt)
    exact = np.power(np.asarray(a, np.int64), np.maximum(np.asarray(b, np.int64), 0))
    # the exact power fits when the float estimate is in range (|a| >= 2, or |a| < 2 never grows)
    est = np.power(np.abs(np.asarray(a, np.float64)), np.asarray(b, np.float64))
    fits = (est <= float(info.max)) & ((exact >= info.min) & (exact <= info.max))
    return np.where(fits, exact, info.min).astype(dt)


def _floordiv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.result_type(a, b).kind == "f":
        return np.floor(np.true_divide(a, b))
    return np.floor_divide(a, b)


def _floormod(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r = np.fmod(a, b)
    return np.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)


def _rshift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise TypeError("rshift applied to a non-integer operand")
    count = np.clip(np.asarray(b, np.int64), 0, a.dtype.itemsize * 8 - 1)
    return np.right_shift(a, count.astype(a.dtype))


def _round_away(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError("round_away applied to a non-float operand")
    mag = np.abs(x)
    whole = np.floor(mag)
    # mag - whole is exact in binary floating point, so the tie test is exact
    up = (mag - whole) >= x.dtype.type(0.5)
    return np.copysign(whole + up.astype(x.dtype), x)


def _quant_steps(x: np.ndarray, lo: np.ndarray, inv: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    diff = np.subtract(x, lo, dtype=x.dtype)
    return _round_away(np.multiply(diff, inv, dtype=x.dtype))


class NumpyOps(ScalarOps[np.ndarray]):
    """The reference semantics: every function on NumPy arrays (or scalars), in the operands'
    dtype. `evaluate_numpy` runs trees through it; the reference kernels are that."""

    calls = {
        "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": _div, "neg": np.negative,
        "abs": np.abs, "square": np.square, "max": np.maximum, "min": np.minimum,
        "sqrt": np.sqrt, "rsqrt": _rsqrt, "exp": np.exp, "log": np.log, "tanh": np.tanh,
        "erf": _f32_64(_erf64), "erfc": _f32_64(_erfc64), "floor": np.floor, "ceil": np.ceil,
        "lt": np.less, "gt": np.greater, "le": np.less_equal, "ge": np.greater_equal,
        "eq": np.equal, "ne": np.not_equal,
        "where": np.where,
        "sign": np.sign, "round": np.rint, "sin": np.sin, "cos": np.cos, "power": _pow,
        "power_wrap": np.power,
        "floordiv": _floordiv, "floormod": _floormod,
        "and": np.logical_and, "or": np.logical_or, "not": np.logical_not,
        "atan2": np.arctan2, "bitand": np.bitwise_and, "bitxor": np.bitwise_xor, "rshift": _rshift,
        "round_away": _round_away, "quant_steps": _quant_steps,
    }


_NUMPY = NumpyOps()


def evaluate_numpy(expr: Expr, arrays: list[np.ndarray] | tuple[np.ndarray, ...],
                   dtype: np.dtype | type | None = None) -> np.ndarray:
    """Evaluate `expr` elementwise over `arrays` (NumPy broadcasting), in the compute dtype.

    The compute dtype is `dtype` if given, else that of the first array (float32 trees stay
    float32: constants are made np.float32). The result is broadcast to the full output shape.
    """
    arrs = [np.asarray(a) for a in arrays]
    cdt = np.dtype(dtype) if dtype is not None else (arrs[0].dtype if arrs else np.dtype(np.float32))
    out_shape = np.broadcast_shapes(*(a.shape for a in arrs)) if arrs else ()

    memo: dict[int, np.ndarray] = {}

    def ev(e: Expr) -> np.ndarray:
        if isinstance(e, Call) and id(e) in memo:
            return memo[id(e)]
        if isinstance(e, Var):
            return arrs[e.index]
        if isinstance(e, Const):
            if isinstance(e.value, str):
                info = np.finfo(cdt) if cdt.kind == "f" else np.iinfo(cdt)
                return cdt.type(info.min if e.value == "lowest" else info.max)
            if cdt.kind in "iu" and float(e.value) != int(e.value):
                raise TypeError(f"non-integral constant {e.value} in an integer expression")
            return cdt.type(e.value)
        args = [ev(a) for a in e.args]
        memo[id(e)] = r = _NUMPY.call(e.fn, args)
        return r

    with np.errstate(all="ignore"):
        r = np.asarray(ev(expr))
    if r.dtype != np.bool_ and r.dtype != cdt:
        r = r.astype(cdt)
    if r.shape != out_shape:
        r = np.broadcast_to(r, out_shape).copy()
    return r
