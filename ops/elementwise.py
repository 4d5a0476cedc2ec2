"""Elementwise ops (float32, plus the integer forms LiteRT's builtin kernels accept).

Each op's math is written once as an `ops.expr` tree (`OpDef.expr(attrs) -> Expr`); the NumPy
reference kernel is `evaluate_numpy` of that tree, so every backend prints the same math.

LiteRT facts these definitions follow (checked against ai_edge_litert 2.3.0, builtin kernels):
* ADD/SUB/MUL/DIV's fused activation is a clamp only: RELU, RELU6 and RELU_N1_TO_1 clamp (for
  integer types too, e.g. int32 ADD with RELU6 clamps to [0, 6]); TANH and SIGN_BIT are ignored.
  The clamp is always applied, with the type's finite limits as the default range: float results
  of +-inf become +-FLT_MAX (NaN passes through). SQUARED_DIFFERENCE does not clamp.
* Integer ADD/SUB/MUL/NEG wrap around; int32 DIV truncates toward zero and fails at invoke when a
  divisor is 0; DIV and SQUARED_DIFFERENCE accept int32 but not int64.
* Binary ops broadcast NumPy-style at any rank.
* PRELU's broadcast shape must equal the input's shape (alpha broadcasts into the input).
* LEAKY_RELU is ``x > 0 ? x : alpha * x``; PRELU is ``x >= 0 ? x : alpha * x``.
* RELU_0_TO_1 (float32; its int8/uint8 forms are quantized kernels) clamps to [0, 1] and passes
  NaN through.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops import expr as E
from tflite_jit.ops.base import InferCtx, OpError, PatternKind
from tflite_jit.ops.common import (
    F32,
    I32,
    I64,
    activation_name,
    broadcast_shapes,
    define,
    elementwise_cost,
    parse_none,
    type_names,
)

X0, X1 = E.Var(0), E.Var(1)


# ---- attrs ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ActAttrs:
    """ADD/SUB/MUL/DIV: the fused activation (a name from base.ACTIVATIONS)."""

    activation: str = "NONE"


@dataclass(frozen=True)
class LeakyReluAttrs:
    alpha: float = 0.0


@dataclass(frozen=True)
class GeluAttrs:
    approximate: bool = False


def _parse_act(options: dict[str, Any]) -> ActAttrs:
    return ActAttrs(activation_name(options.get("fused_activation_function", 0)))


def _parse_leaky(options: dict[str, Any]) -> LeakyReluAttrs:
    # alpha is a float32 in the file; keep exactly that value
    return LeakyReluAttrs(float(np.float32(options.get("alpha", 0.0))))


def _parse_gelu(options: dict[str, Any]) -> GeluAttrs:
    return GeluAttrs(bool(options.get("approximate", False)))


def _clamp_expr(x: E.Expr, act: str) -> E.Expr:
    """ADD/SUB/MUL/DIV clamp to the activation range (LiteRT ignores TANH and SIGN_BIT; with no
    clamping activation the range is the type's finite limits, so float +-inf -> +-FLT_MAX)."""
    return E.clamp_activation_expr(x, act)


# ---- shape rules ---------------------------------------------------------------------------------

def check_input(ctx: InferCtx, i: int, allowed: tuple[np.dtype, ...]) -> None:
    """Input i is present and of one of the `allowed` types."""
    if i >= len(ctx.shapes) or ctx.shapes[i] is None:
        raise OpError(f"{ctx.op_name}: input {i} is missing; the op needs it")
    dt = np.dtype(ctx.dtypes[i])
    if dt not in allowed:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(i)}' has type {dt.name}; this op supports "
                      f"{type_names(allowed)} (quantized forms are handled elsewhere)")


def unary_infer(allowed: tuple[np.dtype, ...]) -> Callable[[InferCtx], list]:
    """The shape rule of a one-input elementwise op on the `allowed` types."""
    def infer(ctx: InferCtx) -> list:
        if len(ctx.shapes) != 1:
            raise OpError(f"{ctx.op_name}: expected 1 input, got {len(ctx.shapes)}; the node is damaged")
        check_input(ctx, 0, allowed)
        return [(tuple(ctx.shapes[0]), np.dtype(ctx.dtypes[0]))]
    return infer


def binary_infer(allowed: tuple[np.dtype, ...]) -> Callable[[InferCtx], list]:
    """The shape rule of a broadcasting two-input elementwise op on the `allowed` types (both of
    one type)."""
    def infer(ctx: InferCtx) -> list:
        if len(ctx.shapes) != 2:
            raise OpError(f"{ctx.op_name}: expected 2 inputs, got {len(ctx.shapes)}; the node is damaged")
        check_input(ctx, 0, allowed)
        check_input(ctx, 1, allowed)
        d0, d1 = np.dtype(ctx.dtypes[0]), np.dtype(ctx.dtypes[1])
        if d0 != d1:
            raise OpError(f"{ctx.op_name}: inputs '{ctx.name(0)}' ({d0.name}) and '{ctx.name(1)}' "
                          f"({d1.name}) must have the same type; insert a CAST")
        try:
            shape = broadcast_shapes(tuple(ctx.shapes[0]), tuple(ctx.shapes[1]), ctx.op_name)
        except OpError as e:
            raise OpError(f"{e} (inputs '{ctx.name(0)}' and '{ctx.name(1)}'); each dimension must "
                          "match or be 1") from None
        return [(shape, d0)]
    return infer


def _prelu_infer(ctx: InferCtx) -> list:
    (shape, dt), = binary_infer((F32,))(ctx)
    if shape != tuple(ctx.shapes[0]):
        raise OpError(f"PRELU: alpha '{ctx.name(1)}' of shape {list(ctx.shapes[1])} must broadcast "
                      f"into the input '{ctx.name(0)}' of shape {list(ctx.shapes[0])} (the output "
                      f"keeps the input's shape), but broadcasting gives {list(shape)}")
    return [(shape, dt)]


# ---- reference kernels ---------------------------------------------------------------------------

def _reference(name: str, expr_fn: Callable[[Any], E.Expr]):
    def reference(inputs, attrs) -> list[np.ndarray]:
        arrays = [np.asarray(a) for a in inputs]
        if name == "DIV" and arrays[0].dtype.kind in "iu":
            zero = np.flatnonzero(arrays[1] == 0)
            if zero.size:
                raise OpError(f"DIV: integer division by zero (divisor element {int(zero[0])} is 0)")
        return [E.evaluate_numpy(expr_fn(attrs), arrays, dtype=arrays[0].dtype)]
    return reference


# ---- expressions ---------------------------------------------------------------------------------

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu_expr(a: GeluAttrs) -> E.Expr:
    if a.approximate:
        # 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
        cube = E.mul(E.mul(X0, X0), X0)
        inner = E.mul(_SQRT_2_OVER_PI, E.add(X0, E.mul(0.044715, cube)))
        return E.mul(E.mul(0.5, X0), E.add(1, E.call("tanh", inner)))
    # 0.5 * x * erfc(-x / sqrt(2))
    return E.mul(E.mul(0.5, X0), E.call("erfc", E.mul(X0, -_INV_SQRT2)))


_EXPRS: dict[str, Callable[[Any], E.Expr]] = {
    "ADD": lambda a: _clamp_expr(E.add(X0, X1), a.activation),
    "SUB": lambda a: _clamp_expr(E.sub(X0, X1), a.activation),
    "MUL": lambda a: _clamp_expr(E.mul(X0, X1), a.activation),
    "DIV": lambda a: _clamp_expr(E.div(X0, X1), a.activation),
    "SQUARED_DIFFERENCE": lambda a: E.call("square", E.sub(X0, X1)),
    "RSQRT": lambda a: E.call("rsqrt", X0),
    "SQRT": lambda a: E.call("sqrt", X0),
    "NEG": lambda a: E.call("neg", X0),
    "LOGISTIC": lambda a: E.div(1, E.add(1, E.call("exp", E.call("neg", X0)))),
    "TANH": lambda a: E.call("tanh", X0),
    "RELU": lambda a: E.maximum(X0, 0),
    "RELU6": lambda a: E.minimum(E.maximum(X0, 0), 6),
    "RELU_N1_TO_1": lambda a: E.minimum(E.maximum(X0, -1), 1),
    # LiteRT: x < 0 ? 0 : (x > 1 ? 1 : x), so NaN passes through
    "RELU_0_TO_1": lambda a: E.where(E.call("lt", X0, 0), 0,
                                     E.where(E.call("gt", X0, 1), 1, X0)),
    "LEAKY_RELU": lambda a: E.where(E.call("gt", X0, 0), X0, E.mul(X0, a.alpha)),
    "PRELU": lambda a: E.where(E.call("ge", X0, 0), X0, E.mul(X0, X1)),
    "HARD_SWISH": lambda a: E.div(E.mul(X0, E.minimum(E.maximum(E.add(X0, 3), 0), 6)), 6),
    "GELU": _gelu_expr,
}

# flops per output element, for the cost model (transcendentals counted as ~10)
_FLOPS = {"ADD": 1, "SUB": 1, "MUL": 1, "DIV": 1, "SQUARED_DIFFERENCE": 2, "RSQRT": 2, "SQRT": 1,
          "NEG": 1, "LOGISTIC": 12, "TANH": 10, "RELU": 1, "RELU6": 2, "RELU_N1_TO_1": 2, "RELU_0_TO_1": 2,
          "LEAKY_RELU": 2, "PRELU": 2, "HARD_SWISH": 5, "GELU": 15}

_BINARY: dict[str, tuple[np.dtype, ...]] = {
    "ADD": (F32, I32, I64), "SUB": (F32, I32, I64), "MUL": (F32, I32, I64), "DIV": (F32, I32),
    "SQUARED_DIFFERENCE": (F32, I32),
}
_UNARY: dict[str, tuple[np.dtype, ...]] = {
    "RSQRT": (F32,), "SQRT": (F32,), "NEG": (F32, I32, I64), "LOGISTIC": (F32,), "TANH": (F32,),
    "RELU": (F32,), "RELU6": (F32,), "RELU_N1_TO_1": (F32,), "RELU_0_TO_1": (F32,), "LEAKY_RELU": (F32,),
    "HARD_SWISH": (F32,), "GELU": (F32,),
}
_PARSE = {"ADD": _parse_act, "SUB": _parse_act, "MUL": _parse_act, "DIV": _parse_act,
          "LEAKY_RELU": _parse_leaky, "GELU": _parse_gelu}


def _cost(name: str):
    flops = _FLOPS[name]
    return lambda ins, outs, attrs: elementwise_cost(ins, outs, attrs, flops_per=flops)


_FORMS = [*((n, binary_infer(d), PatternKind.BROADCAST) for n, d in _BINARY.items()),
          *((n, unary_infer(d), PatternKind.ELEMWISE) for n, d in _UNARY.items()),
          ("PRELU", _prelu_infer, PatternKind.BROADCAST)]  # alpha broadcasts into the input
for _n, _infer, _kind in _FORMS:
    define(_n, parse=_PARSE.get(_n, parse_none), infer=_infer, reference=_reference(_n, _EXPRS[_n]), kind=_kind,
           cost=_cost(_n), expr=_EXPRS[_n])

ELEMENTWISE_OPS = tuple(_EXPRS)
