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
from tflite_jit.ops.base import (
    InferCtx,
    OpDef,
    OpError,
    PatternKind,
    ShapeDtype,
    broadcast_shapes,
    elementwise_cost,
    register,
)

_COMPARABLE = tuple(np.dtype(t) for t in (np.float32, np.int32, np.int64, np.int8, np.uint8, np.int16))
_FNS = {"LESS": "lt", "LESS_EQUAL": "le", "GREATER": "gt", "GREATER_EQUAL": "ge",
        "EQUAL": "eq", "NOT_EQUAL": "ne"}
_EQUALITY_EXTRA = (np.dtype(np.bool_),)  # EQUAL / NOT_EQUAL also compare bools


def _no_attrs(options: dict[str, Any]) -> None:
    return None


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
    def reference(inputs: Sequence[np.ndarray | None], a: None) -> list[np.ndarray]:
        x, y = np.asarray(inputs[0]), np.asarray(inputs[1])
        return [np.asarray(E.evaluate_numpy(_compare_expr(fn)(a), [x, y], dtype=x.dtype), np.bool_)]

    return reference


for _name, _fn in _FNS.items():
    register(OpDef(_name, _no_attrs, _compare_infer, _compare_reference(_fn), PatternKind.BROADCAST,
                   elementwise_cost, expr=_compare_expr(_fn), doc=f"elementwise {_fn}, broadcasting"))


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


def _select_reference(inputs: Sequence[np.ndarray | None], a: None) -> list[np.ndarray]:
    c, x, y = (np.asarray(v) for v in inputs)
    return [np.array(np.where(c, x, y), dtype=x.dtype)]


def _select_v1_reference(inputs: Sequence[np.ndarray | None], a: None) -> list[np.ndarray]:
    c, x, y = (np.asarray(v) for v in inputs)
    if c.ndim == 1 and x.ndim > 1:
        c = c.reshape(c.shape + (1,) * (x.ndim - 1))  # a 1-D condition selects whole rows
    return [np.array(np.where(c, x, y), dtype=x.dtype)]


_SELECT_EXPR = lambda a: E.where(E.Var(0), E.Var(1), E.Var(2))  # noqa: E731
register(OpDef("SELECT_V2", _no_attrs, _select_infer, _select_reference, PatternKind.BROADCAST,
               elementwise_cost, expr=_SELECT_EXPR, doc="where(condition, x, y) with broadcasting"))
register(OpDef("SELECT", _no_attrs, _select_infer, _select_v1_reference, PatternKind.INJECTIVE,
               elementwise_cost, doc="where(condition, x, y); the condition may select rows"))
