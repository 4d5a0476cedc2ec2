"""Reductions over axes (MEAN, SUM) and SOFTMAX (float32 reference kernels).

MEAN/SUM read their axes from input 1, a tensor whose value the shape rule needs, so the planner
folds it at plan time when it is constant (`shape_inputs=(1,)`); otherwise infer raises Dynamic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from tflite_jit.ops.base import (
    Cost,
    InferCtx,
    OpDef,
    OpError,
    PatternKind,
    ShapeDtype,
    register,
)

_AXIS_TYPES = (np.dtype(np.int32), np.dtype(np.int64))


def _numel(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64))


# ---- MEAN / SUM --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReduceAttrs:
    keep_dims: bool


def _parse_reducer(o: dict[str, Any]) -> ReduceAttrs:
    return ReduceAttrs(keep_dims=bool(o.get("keep_dims", False)))


def resolve_axes(axis: np.ndarray, rank: int, op: str, input_name: str = "input") -> tuple[int, ...]:
    """LiteRT's ResolveAxis: each value in [-rank, rank), negatives wrap, repeats collapse.
    Sorted so the result is canonical (the reduction is order-independent)."""
    out = set()
    for v in np.asarray(axis).reshape(-1).tolist():
        a = int(v)
        if not -rank <= a < rank:
            raise OpError(f"{op}: axis {a} is out of range for '{input_name}' of rank {rank}; "
                          f"axes must lie in [{-rank}, {rank})")
        out.add(a + rank if a < 0 else a)
    return tuple(sorted(out))


def _reduced_shape(shape: tuple[int, ...], axes: tuple[int, ...], keep_dims: bool) -> tuple[int, ...]:
    if keep_dims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _infer_reduce(ctx: InferCtx) -> list[ShapeDtype]:
    a: ReduceAttrs = ctx.attrs
    if ctx.dtypes[1] is None or np.dtype(ctx.dtypes[1]) not in _AXIS_TYPES:
        raise OpError(f"{ctx.op_name}: axis tensor '{ctx.name(1)}' must be int32, got "
                      f"{ctx.dtypes[1]}")
    shape = tuple(ctx.shapes[0])
    axes = resolve_axes(ctx.value(1, "axis"), len(shape), ctx.op_name, ctx.name(0))
    return [(_reduced_shape(shape, axes, a.keep_dims), np.dtype(ctx.dtypes[0]))]


def _reducer(np_fn: Any, op: str) -> Any:
    def reference(inputs: Sequence[np.ndarray | None], a: ReduceAttrs) -> list[np.ndarray]:
        """Accumulates in float64 and rounds once: LiteRT sums sequentially in float32, so this
        is the exact answer its rounding drifts around (see test_reduce for measured error)."""
        x = inputs[0]
        if x.dtype != np.float32:
            raise OpError(f"{op}: the float reference kernel got a {x.dtype} input")
        axes = resolve_axes(inputs[1], x.ndim, op)
        with np.errstate(invalid="ignore", divide="ignore"):  # empty MEAN is NaN, as in LiteRT
            y = np_fn(x, axis=axes, dtype=np.float64, keepdims=a.keep_dims)
        return [np.ascontiguousarray(y, dtype=np.float32).reshape(_reduced_shape(x.shape, axes,
                                                                                  a.keep_dims))]

    return reference


def _reduce_cost(ins: list, outs: list, a: Any) -> Cost:
    n_in, n_out = _numel(ins[0]), _numel(outs[0])
    return Cost(flops=float(n_in), bytes=4.0 * (n_in + n_out))


# ---- SOFTMAX -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoftmaxAttrs:
    beta: float


def _parse_softmax(o: dict[str, Any]) -> SoftmaxAttrs:
    return SoftmaxAttrs(beta=float(o.get("beta", 0.0)))


def _infer_softmax(ctx: InferCtx) -> list[ShapeDtype]:
    shape = ctx.shapes[0]
    if shape is None or len(shape) < 1:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' must have rank >= 1 (softmax runs "
                      f"over the last axis), got shape {None if shape is None else list(shape)}")
    return [(tuple(shape), np.dtype(ctx.dtypes[0]))]


def _softmax_reference(inputs: Sequence[np.ndarray | None], a: SoftmaxAttrs) -> list[np.ndarray]:
    """exp(beta * (x - max)) / sum, over the last axis; the max shift keeps exp finite."""
    x = inputs[0]
    if x.dtype != np.float32:
        raise OpError(f"SOFTMAX: the float reference kernel got a {x.dtype} input")
    z = x.astype(np.float64)
    e = np.exp(a.beta * (z - z.max(axis=-1, keepdims=True)))
    return [(e / e.sum(axis=-1, keepdims=True)).astype(np.float32)]


def _softmax_cost(ins: list, outs: list, a: SoftmaxAttrs) -> Cost:
    n = _numel(ins[0])
    return Cost(flops=5.0 * n, bytes=8.0 * n)  # max, sub, exp, sum, div per element


# ---- registration ------------------------------------------------------------------------------

register(OpDef("MEAN", _parse_reducer, _infer_reduce, _reducer(np.mean, "MEAN"),
               PatternKind.REDUCTION, _reduce_cost, shape_inputs=(1,),
               doc="mean over the axes in input 1"))
register(OpDef("SUM", _parse_reducer, _infer_reduce, _reducer(np.sum, "SUM"),
               PatternKind.REDUCTION, _reduce_cost, shape_inputs=(1,),
               doc="sum over the axes in input 1"))
# OPAQUE, not REDUCTION: softmax reduces (max, sum) and then broadcasts the result back over the
# same row, so its output is not a reduced tensor; treating it as a plain reduction would let
# rule-based fusion pull producers into a kernel that reads each input element twice.
register(OpDef("SOFTMAX", _parse_softmax, _infer_softmax, _softmax_reference, PatternKind.OPAQUE,
               _softmax_cost, doc="softmax over the last axis with temperature beta"))
