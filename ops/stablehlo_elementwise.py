"""StableHLO elementwise binary ops that LiteRT's builtin resolver runs: STABLEHLO_ADD,
STABLEHLO_MULTIPLY, STABLEHLO_MAXIMUM, STABLEHLO_MINIMUM, STABLEHLO_AND and STABLEHLO_SHIFT_LEFT.

LiteRT facts these definitions follow (probed on ai_edge_litert 2.3.0, builtin kernels):
* No broadcasting: both operands must have the same type and exactly the same shape (LiteRT fails
  at prepare on a rank or dimension mismatch). STABLEHLO_SHIFT_LEFT does not check shapes at all:
  it returns the first operand's shape and reads the second at every index of the first (out of
  bounds when it is smaller), so we require equal shapes for it too.
* ADD/MULTIPLY/MAXIMUM/MINIMUM accept float32, int8/16/32/64, uint8/16/32 and bool; integers wrap
  around (C arithmetic truncated to the type); on bool ADD and MAXIMUM are a logical OR, MULTIPLY
  and MINIMUM a logical AND (C++ bool arithmetic converted back to bool).
* MAXIMUM is std::max(a, b) = ``a < b ? b : a`` and MINIMUM std::min(a, b) = ``b < a ? b : a``:
  when either operand is NaN the result is the first operand.
* AND is bitwise on int8/16/32/64 and uint8/16/32, logical on bool; float fails at invoke.
* SHIFT_LEFT accepts int8/16/32 only. It computes ``a << b`` in C (int8/int16 promoted to int) and
  truncates to the type, so counts 0..31 are well defined (an int8 shifted by 8..31 gives 0).
  Counts outside [0, 31] are undefined behaviour in C and LiteRT's results for them depend on the
  code path (its vector loop gives INT_MIN or 0 for int32, the scalar tail masks the count): we
  reject them at run time with an error. Because a generated loop cannot raise, SHIFT_LEFT has
  no expression and runs on the reference backend.
* Empty operands give an empty result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tflite_jit.ops import expr as E
from tflite_jit.ops.base import InferCtx, OpError, PatternKind, ShapeDtype
from tflite_jit.ops.common import (
    BOOL,
    F32,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    define,
    elementwise_cost,
    type_names,
)

_ARITH_TYPES = (F32, I8, I16, I32, I64, U8, U16, U32, BOOL)
_AND_TYPES = (I8, I16, I32, I64, U8, U16, U32, BOOL)
_SHIFT_TYPES = (I8, I16, I32)

X0, X1 = E.Var(0), E.Var(1)


def _same_shape_infer(allowed: tuple[np.dtype, ...]) -> Callable[[InferCtx], list[ShapeDtype]]:
    def infer(ctx: InferCtx) -> list[ShapeDtype]:
        op = ctx.op_name
        if len(ctx.shapes) != 2:
            raise OpError(f"{op}: expected 2 inputs, got {len(ctx.shapes)}")
        for i in (0, 1):
            if ctx.shapes[i] is None:
                raise OpError(f"{op}: input {i} is missing; the op needs it")
            dt = np.dtype(ctx.dtypes[i])
            if dt not in allowed:
                raise OpError(f"{op}: input '{ctx.name(i)}' has type {dt.name}; this op supports "
                              f"{type_names(allowed)}")
        d0, d1 = np.dtype(ctx.dtypes[0]), np.dtype(ctx.dtypes[1])
        if d0 != d1:
            raise OpError(f"{op}: inputs '{ctx.name(0)}' ({d0.name}) and '{ctx.name(1)}' ({d1.name}) "
                          "must have the same type; insert a CAST")
        s0, s1 = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
        if s0 != s1:
            raise OpError(f"{op}: inputs '{ctx.name(0)}' of shape {list(s0)} and '{ctx.name(1)}' of "
                          f"shape {list(s1)} must have the same shape (StableHLO ops do not "
                          "broadcast; insert a BROADCAST_TO or STABLEHLO_BROADCAST_IN_DIM)")
        return [(s0, d0)]
    return infer


_EXPRS: dict[str, Callable[[Any], E.Expr]] = {
    "STABLEHLO_ADD": lambda a: E.add(X0, X1),
    "STABLEHLO_MULTIPLY": lambda a: E.mul(X0, X1),
    # std::max / std::min: the first operand wins unless the comparison holds
    "STABLEHLO_MAXIMUM": lambda a: E.where(E.call("lt", X0, X1), X1, X0),
    "STABLEHLO_MINIMUM": lambda a: E.where(E.call("lt", X1, X0), X1, X0),
    "STABLEHLO_AND": lambda a: E.call("bitand", X0, X1),
}


def _reference(expr_fn: Callable[[Any], E.Expr]):
    def reference(inputs: Sequence[np.ndarray | None], attrs: Any) -> list[np.ndarray]:
        a, b = (np.asarray(x) for x in inputs)
        return [E.evaluate_numpy(expr_fn(attrs), [a, b], dtype=a.dtype)]
    return reference


def _cost(ins: list, outs: list, attrs: Any):
    return elementwise_cost(ins, outs, attrs, flops_per=1)


for _n, _fn in _EXPRS.items():
    _types = _AND_TYPES if _n == "STABLEHLO_AND" else _ARITH_TYPES
    define(_n, infer=_same_shape_infer(_types), reference=_reference(_fn), kind=PatternKind.ELEMWISE,
           cost=_cost, expr=_fn)


def _shift_left_reference(inputs: Sequence[np.ndarray | None], attrs: Any) -> list[np.ndarray]:
    a, b = (np.asarray(x) for x in inputs)
    if a.shape != b.shape or a.dtype != b.dtype or a.dtype not in _SHIFT_TYPES:
        raise OpError(f"STABLEHLO_SHIFT_LEFT: operands must be two {type_names(_SHIFT_TYPES)} tensors "
                      f"of one type and shape, got {a.dtype.name}{list(a.shape)} and "
                      f"{b.dtype.name}{list(b.shape)}")
    bad = np.flatnonzero((b < 0) | (b > 31))
    if bad.size:
        i = int(bad[0])
        raise OpError(f"STABLEHLO_SHIFT_LEFT: shift count {int(b.flat[i])} (element {i} of the second "
                      "operand) is outside [0, 31]; LiteRT's result is undefined there. Clamp the "
                      "counts first")
    # C: the value is promoted to (at least) 32-bit int, shifted, then truncated to the type
    wide = np.left_shift(a.astype(np.int64), b.astype(np.int64))
    return [wide.astype(a.dtype)]


define("STABLEHLO_SHIFT_LEFT", infer=_same_shape_infer(_SHIFT_TYPES), reference=_shift_left_reference,
       kind=PatternKind.ELEMWISE, cost=_cost)
