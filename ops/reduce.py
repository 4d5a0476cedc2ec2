"""Reductions over axes (MEAN, SUM, REDUCE_PROD/MAX/MIN) and SOFTMAX (float32 reference kernels).

MEAN/SUM read their axes from input 1, a tensor whose value the shape rule needs, so the planner
folds it at plan time when it is constant (`shape_inputs=(1,)`); otherwise infer raises Dynamic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops.base import Cost, InferCtx, OpError, PatternKind, ShapeDtype
from tflite_jit.ops.common import F32, I16, I32, I64, define, numel

_AXIS_TYPES = (I32,)  # LiteRT rejects int64 axes (reduce.cc)


# ---- MEAN / SUM --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReduceAttrs:
    keep_dims: bool


def parse_reducer(o: dict[str, Any]) -> ReduceAttrs:
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


def reduced_shape(shape: tuple[int, ...], axes: tuple[int, ...], keep_dims: bool) -> tuple[int, ...]:
    if keep_dims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def infer_reduce(ctx: InferCtx) -> list[ShapeDtype]:
    a: ReduceAttrs = ctx.attrs
    if len(ctx.shapes) < 2 or ctx.shapes[0] is None or ctx.shapes[1] is None:
        raise OpError(f"{ctx.op_name}: needs two inputs (the tensor and an int32 axis tensor)")
    if np.dtype(ctx.dtypes[1]) not in _AXIS_TYPES:
        raise OpError(f"{ctx.op_name}: axis tensor '{ctx.name(1)}' must be int32, got "
                      f"{np.dtype(ctx.dtypes[1])}")
    shape = tuple(ctx.shapes[0])
    axes = resolve_axes(ctx.value(1, "axis"), len(shape), ctx.op_name, ctx.name(0))
    return [(reduced_shape(shape, axes, a.keep_dims), np.dtype(ctx.dtypes[0]))]


def _reducer(op: str, mean: bool) -> Any:
    def reference(inputs: Sequence[np.ndarray | None], a: ReduceAttrs) -> list[np.ndarray]:
        """Accumulates in float32 like LiteRT: NumPy adds outer axes sequentially in the same order
        LiteRT does, so the common spatial MEAN ([1, 2], global average pooling) is bit-exact; a
        float64 sum would be more accurate but further from LiteRT (measured on LiteRT 2.x).
        MEAN is that sum divided by the element count, so an empty reduction gives NaN, as there."""
        x = inputs[0]
        if x.dtype in (np.int32, np.int64):
            return [_integer_reduce(x, resolve_axes(inputs[1], x.ndim, op), a.keep_dims, op, mean)]
        if x.dtype != np.float32:
            raise OpError(f"{op}: the float reference kernel got a {x.dtype} input")
        axes = resolve_axes(inputs[1], x.ndim, op)
        y = np.sum(x, axis=axes, dtype=np.float32, keepdims=a.keep_dims)
        if mean:
            count = np.float32(numel([x.shape[i] for i in axes]))
            with np.errstate(invalid="ignore", divide="ignore"):
                y = y / count
        return [np.ascontiguousarray(y, dtype=np.float32).reshape(reduced_shape(x.shape, axes,
                                                                                  a.keep_dims))]

    return reference


def _integer_reduce(x: np.ndarray, axes: tuple[int, ...], keep_dims: bool, op: str, mean: bool) -> np.ndarray:
    """int32/int64 SUM and MEAN as LiteRT computes them (measured on ai_edge_litert 2.3): SUM
    wraps around in the input's type; MEAN sums in int64 (wrapping), divides truncating toward
    zero and casts back."""
    shape = reduced_shape(x.shape, axes, keep_dims)
    if not mean:
        return np.ascontiguousarray(np.sum(x, axis=axes, dtype=x.dtype, keepdims=keep_dims)).reshape(shape)
    count = numel([x.shape[i] for i in axes])
    if count == 0:
        raise OpError(f"{op}: integer mean over an empty axis (division by zero)")
    total = np.sum(x, axis=axes, dtype=np.int64, keepdims=keep_dims)
    quotient = total // count  # floor; C++ truncates toward zero, one more for inexact negatives
    quotient = quotient + ((total < 0) & (total % count != 0))
    return np.ascontiguousarray(quotient.astype(x.dtype)).reshape(shape)


def _reduce_cost(ins: list, outs: list, a: Any) -> Cost:
    n_in, n_out = numel(ins[0]), numel(outs[0])
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
    """LiteRT's float formula in float32: e = exp((x - max) * beta), out = e * (1 / sum(e)) over
    the last axis. Kept in float32 on purpose: with beta < 0 the shift no longer bounds the
    exponent, exp overflows to inf and LiteRT returns NaN/0 there; we return the same."""
    x = inputs[0]
    if x.dtype != np.float32:
        raise OpError(f"SOFTMAX: the float reference kernel got a {x.dtype} input")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        e = np.exp((x - x.max(axis=-1, keepdims=True)) * np.float32(a.beta))
        return [np.ascontiguousarray(e * (np.float32(1) / e.sum(axis=-1, keepdims=True)))]


def _softmax_cost(ins: list, outs: list, a: SoftmaxAttrs) -> Cost:
    n = numel(ins[0])
    return Cost(flops=5.0 * n, bytes=8.0 * n)  # max, sub, exp, sum, div per element


# ---- registration ------------------------------------------------------------------------------

MEAN = define("MEAN", parse=parse_reducer, infer=infer_reduce, reference=_reducer("MEAN", mean=True),
              kind=PatternKind.REDUCTION, cost=_reduce_cost, shape_inputs=(1,))
SUM = define("SUM", parse=parse_reducer, infer=infer_reduce, reference=_reducer("SUM", mean=False),
             kind=PatternKind.REDUCTION, cost=_reduce_cost, shape_inputs=(1,))
# OPAQUE, not REDUCTION: softmax reduces (max, sum) and then broadcasts the result back over the
# same row, so its output is not a reduced tensor; treating it as a plain reduction would let
# rule-based fusion pull producers into a kernel that reads each input element twice.
SOFTMAX = define("SOFTMAX", parse=_parse_softmax, infer=_infer_softmax, reference=_softmax_reference,
                 kind=PatternKind.OPAQUE, cost=_softmax_cost)


def _extremum_reducer(op: str, fn: Any, types: tuple[np.dtype, ...]) -> Any:
    """REDUCE_PROD / REDUCE_MAX / REDUCE_MIN keep the input dtype (float32 and the integer types
    LiteRT's reduce.cc takes; converter shape arithmetic uses int32 REDUCE_PROD). An empty
    reduction gives the identity (1, lowest, highest), as LiteRT initialises its accumulator."""

    def reference(inputs: Sequence[np.ndarray | None], a: ReduceAttrs) -> list[np.ndarray]:
        x = inputs[0]
        if x.dtype not in types:
            raise OpError(f"{op}: input of type {x.dtype} is not supported; use one of "
                          f"{', '.join(t.name for t in types)}")
        axes = resolve_axes(inputs[1], x.ndim, op)
        if fn is np.prod:
            y = np.prod(x, axis=axes, dtype=x.dtype, keepdims=a.keep_dims)
        else:
            info = np.finfo(x.dtype) if x.dtype.kind == "f" else np.iinfo(x.dtype)
            initial = info.min if fn is np.max else info.max
            if x.dtype.kind == "f":
                initial = -np.inf if fn is np.max else np.inf
            y = fn(x, axis=axes, keepdims=a.keep_dims, initial=initial)
        return [np.ascontiguousarray(y, dtype=x.dtype).reshape(reduced_shape(x.shape, axes, a.keep_dims))]

    return reference


def _infer_typed_reduce(types: tuple[np.dtype, ...]) -> Any:
    def infer(ctx: InferCtx) -> list[ShapeDtype]:
        out = infer_reduce(ctx)
        if np.dtype(ctx.dtypes[0]) not in types:
            raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' has type {np.dtype(ctx.dtypes[0])}; "
                          f"supported: {', '.join(t.name for t in types)}")
        return out

    return infer


_PROD_TYPES = (F32, I32, I64)
_EXTREMUM_TYPES = (F32, I32, I64, I16)
REDUCE_PROD = define("REDUCE_PROD", parse=parse_reducer, infer=_infer_typed_reduce(_PROD_TYPES),
                     reference=_extremum_reducer("REDUCE_PROD", np.prod, _PROD_TYPES),
                     kind=PatternKind.REDUCTION, cost=_reduce_cost, shape_inputs=(1,))
REDUCE_MAX = define("REDUCE_MAX", parse=parse_reducer, infer=_infer_typed_reduce(_EXTREMUM_TYPES),
                    reference=_extremum_reducer("REDUCE_MAX", np.max, _EXTREMUM_TYPES),
                    kind=PatternKind.REDUCTION, cost=_reduce_cost, shape_inputs=(1,))
REDUCE_MIN = define("REDUCE_MIN", parse=parse_reducer, infer=_infer_typed_reduce(_EXTREMUM_TYPES),
                    reference=_extremum_reducer("REDUCE_MIN", np.min, _EXTREMUM_TYPES),
                    kind=PatternKind.REDUCTION, cost=_reduce_cost, shape_inputs=(1,))
