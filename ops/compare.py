"""Comparisons (-> bool) and selection: LESS ... NOT_EQUAL, SELECT, SELECT_V2.

Converter output uses them in index arithmetic (e.g. Keras Embedding wraps negative ids with
LESS + SELECT_V2), so they matter even for float models. Their math is an expression tree like
every elementwise op, so code-generating backends print them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tflite_jit.ops import expr as E
from tflite_jit.ops.base import InferCtx, OpError, PatternKind, ShapeDtype
from tflite_jit.ops.common import BOOL, F32, I8, I16, I32, I64, U8, broadcast_shapes, define, elementwise_cost

_COMPARABLE = (F32, I32, I64, I8, U8, I16)
_FNS = {"LESS": "lt", "LESS_EQUAL": "le", "GREATER": "gt", "GREATER_EQUAL": "ge",
        "EQUAL": "eq", "NOT_EQUAL": "ne"}
_EQUALITY_EXTRA = (BOOL,)  # EQUAL / NOT_EQUAL also compare bools


def _compare_infer(ctx: InferCtx) -> list[ShapeDtype]:
    if len(ctx.shapes) != 2 or any(s is None for s in ctx.shapes):
        raise OpError(f"{ctx.op_name}: expected 2 inputs, got {len(ctx.shapes)}")
    d0, d1 = np.dtype(ctx.dtypes[0]), np.dtype(ctx.dtypes[1])
    allowed = _COMPARABLE + (_EQUALITY_EXTRA if ctx.op_name in ("EQUAL", "NOT_EQUAL") else ())
    if d0 != d1 or d0 not in allowed:
        raise OpError(f"{ctx.op_name}: inputs '{ctx.name(0)}' ({d0.name}) and '{ctx.name(1)}' "
                      f"({d1.name}) must share one of the types {', '.join(t.name for t in allowed)}")
    return [(broadcast_shapes(tuple(ctx.shapes[0]), tuple(ctx.shapes[1]), ctx.op_name), np.dtype(np.bool_))]


def _compare_expr(fn: str) -> Any:
    return lambda a: E.call(fn, E.Var(0), E.Var(1))


def _compare_reference(fn: str) -> Any:
    def reference(inputs: Sequence[np.ndarray | None], a: Any) -> list[np.ndarray]:
        x, y = np.asarray(inputs[0]), np.asarray(inputs[1])
        return [np.asarray(E.evaluate_numpy(_compare_expr(fn)(a), [x, y], dtype=x.dtype), np.bool_)]

    return reference


for _name, _fn in _FNS.items():
    define(_name, infer=_compare_infer, reference=_compare_reference(_fn), kind=PatternKind.BROADCAST,
           cost=elementwise_cost, expr=_compare_expr(_fn))


def _select_infer(ctx: InferCtx) -> list[ShapeDtype]:
    if len(ctx.shapes) != 3 or any(s is None for s in ctx.shapes):
        raise OpError(f"{ctx.op_name}: expected 3 inputs (condition, x, y), got {len(ctx.shapes)}")
    if np.dtype(ctx.dtypes[0]) != np.bool_:
        raise OpError(f"{ctx.op_name}: condition '{ctx.name(0)}' must be bool, got {np.dtype(ctx.dtypes[0])}")
    if np.dtype(ctx.dtypes[1]) != np.dtype(ctx.dtypes[2]):
        raise OpError(f"{ctx.op_name}: '{ctx.name(1)}' and '{ctx.name(2)}' must have the same type")
    c, x, y = (tuple(s) for s in ctx.shapes)
    if ctx.op_name == "SELECT_V2":
        shape = broadcast_shapes(broadcast_shapes(c, x, ctx.op_name), y, ctx.op_name)
    else:
        # SELECT (v1): x and y have the same shape; the condition matches it or is 1-D over dim 0
        if x != y or not (c == x or (len(c) == 1 and len(x) >= 1 and c[0] == x[0])):
            raise OpError(f"SELECT: condition {list(c)}, x {list(x)} and y {list(y)} must have equal "
                          "shapes (or a 1-D condition over the first dimension); use SELECT_V2 to broadcast")
        shape = x
    return [(shape, np.dtype(ctx.dtypes[1]))]


def _select_reference(inputs: Sequence[np.ndarray | None], a: Any) -> list[np.ndarray]:
    c, x, y = (np.asarray(v) for v in inputs)
    return [np.array(np.where(c, x, y), dtype=x.dtype)]


def _select_v1_reference(inputs: Sequence[np.ndarray | None], a: Any) -> list[np.ndarray]:
    c, x, y = (np.asarray(v) for v in inputs)
    if c.ndim == 1 and x.ndim > 1:
        c = c.reshape(c.shape + (1,) * (x.ndim - 1))  # a 1-D condition selects whole rows
    return [np.array(np.where(c, x, y), dtype=x.dtype)]


_SELECT_EXPR = lambda a: E.where(E.Var(0), E.Var(1), E.Var(2))  # noqa: E731
define("SELECT_V2", infer=_select_infer, reference=_select_reference, kind=PatternKind.BROADCAST,
       cost=elementwise_cost, expr=_SELECT_EXPR)
define("SELECT", infer=_select_infer, reference=_select_v1_reference, kind=PatternKind.INJECTIVE,
       cost=elementwise_cost)
