"""Indexing, scans and index-valued reductions: GATHER_ND, SCATTER_ND, ONE_HOT, CUMSUM,
REDUCE_ANY, REDUCE_ALL, ARG_MAX, ARG_MIN, WHERE, TOPK_V2.

WHERE's output shape depends on the data, so its infer raises Dynamic unless the input is known at
plan time; the runtime sizes the output when it is produced.

LiteRT behaviours followed here (ai_edge_litert 2.3.0, builtin kernels):
* GATHER_ND: indices int16/int32/int64; an out-of-range or negative index fails at invoke; here
  it is an OpError from reference(). An empty last index dimension is rejected (LiteRT fails).
* SCATTER_ND: int32 indices and shape only; repeated indices add up; out-of-range indices fail.
* CUMSUM: float32/int32/int64 and an int32 axis. REDUCE_ANY/ALL: int32 axes.
* WHERE accepts any numeric or bool condition (non-zero = true); output int64 [count, rank].
* TOPK_V2: k is int32 or int16; bool input is rejected at invoke by LiteRT, at plan time here.
* ONE_HOT: indices outside [0, depth) give a row of off_value.
* ARG_MAX / ARG_MIN: ties go to the first index; output_type INT32 (2) or INT64 (4), and absent
  options (output_type 0) are rejected as by LiteRT; no int16 or int64 input.
* TOPK_V2: ties go to the lower index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops.base import InferCtx, OpError, PatternKind
from tflite_jit.ops.common import (
    BOOL,
    F32,
    I32,
    I64,
    INDEX_TYPES,
    contig,
    ctx_from_arrays,
    define,
    int_values,
    movement_cost,
    need,
    norm_axis,
    same_dtype_out,
)
from tflite_jit.ops.reduce import ReduceAttrs, parse_reducer, reduced_shape, resolve_axes


def _scalar_int(ctx: InferCtx, i: int, what: str, types=(I32,)) -> int:
    if int(np.prod(ctx.shapes[i], dtype=np.int64)) != 1:
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' must hold exactly one value, got shape "
                      f"{list(ctx.shapes[i])}")
    return int(int_values(ctx, i, what, types).reshape(-1)[0])


def _check_index_type(ctx: InferCtx, i: int, what: str, types=INDEX_TYPES) -> None:
    dt = np.dtype(ctx.dtypes[i])
    if dt not in types:
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' has type {dt.name}; it must be "
                      f"{' or '.join(t.name for t in types)}")


# ---- GATHER_ND -----------------------------------------------------------------------------------

def _gather_nd_infer(ctx: InferCtx) -> list:
    need(ctx, 2, " (params, indices)")
    _check_index_type(ctx, 1, "indices", (np.dtype(np.int16), I32, I64))
    ps, ids = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
    if len(ps) == 0:
        raise OpError(f"GATHER_ND: params '{ctx.name(0)}' must have rank >= 1")
    if len(ids) == 0:
        raise OpError(f"GATHER_ND: indices '{ctx.name(1)}' must have rank >= 1")
    k = ids[-1]
    if k == 0:  # LiteRT fails at invoke ("gather_nd index out of bounds")
        raise OpError(f"GATHER_ND: indices '{ctx.name(1)}' have an empty last dimension; each index "
                      "must address at least one dimension of params")
    if k > len(ps):
        raise OpError(f"GATHER_ND: the last dimension of indices '{ctx.name(1)}' ({k}) exceeds the "
                      f"rank of params '{ctx.name(0)}' ({len(ps)})")
    return same_dtype_out(ctx, ids[:-1] + ps[k:])


def _check_bounds(op: str, idx: np.ndarray, dims: tuple[int, ...], what: str) -> None:
    bad = (idx < 0) | (idx >= np.asarray(dims, dtype=np.int64))
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=-1))[0])
        raise OpError(f"{op}: index {idx[row].tolist()} (row {row} of {what}) is out of bounds for "
                      f"shape {list(dims)}")


def _gather_nd_ref(inputs, attrs) -> list:
    ((out, _),) = _gather_nd_infer(ctx_from_arrays("GATHER_ND", attrs, inputs))
    params, idx = np.asarray(inputs[0]), np.asarray(inputs[1]).astype(np.int64)
    k = idx.shape[-1]
    flat = idx.reshape(-1, k)
    _check_bounds("GATHER_ND", flat, params.shape[:k], "the indices")
    return [contig(params[tuple(flat.T)]).reshape(out)]


define("GATHER_ND", infer=_gather_nd_infer, reference=_gather_nd_ref, kind=PatternKind.INJECTIVE,
       cost=movement_cost)


# ---- SCATTER_ND ----------------------------------------------------------------------------------

def _scatter_nd_infer(ctx: InferCtx) -> list:
    need(ctx, 3, " (indices, updates, shape)")
    # int32 only: "Indices of type 'INT64' are not supported by scatter_nd"
    _check_index_type(ctx, 0, "indices", (I32,))
    _check_index_type(ctx, 2, "shape", (I32,))
    if np.dtype(ctx.dtypes[0]) != np.dtype(ctx.dtypes[2]):
        raise OpError(f"SCATTER_ND: indices '{ctx.name(0)}' and shape '{ctx.name(2)}' must have the same type")
    ids, ups = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
    if len(ctx.shapes[2]) != 1:
        raise OpError(f"SCATTER_ND: shape '{ctx.name(2)}' must be 1-D, got {list(ctx.shapes[2])}")
    if len(ids) == 0 or len(ups) == 0:
        raise OpError(f"SCATTER_ND: indices '{ctx.name(0)}' and updates '{ctx.name(1)}' must have rank >= 1")
    out = tuple(int(v) for v in int_values(ctx, 2, "shape").reshape(-1))
    if any(d < 0 for d in out):
        raise OpError(f"SCATTER_ND: shape {list(out)} has a negative dimension")
    k = ids[-1]
    if k > len(out):
        raise OpError(f"SCATTER_ND: the last dimension of indices '{ctx.name(0)}' ({k}) exceeds the "
                      f"output rank {len(out)}")
    if ups != ids[:-1] + out[k:]:
        raise OpError(f"SCATTER_ND: updates '{ctx.name(1)}' {list(ups)} must have shape "
                      f"{list(ids[:-1] + out[k:])} (indices.shape[:-1] + shape[{k}:])")
    return [(out, np.dtype(ctx.dtypes[1]))]


def _scatter_nd_ref(inputs, attrs) -> list:
    ((out, dt),) = _scatter_nd_infer(ctx_from_arrays("SCATTER_ND", attrs, inputs))
    idx, upd = np.asarray(inputs[0]).astype(np.int64), np.asarray(inputs[1])
    k = idx.shape[-1]
    flat = idx.reshape(-1, k)
    _check_bounds("SCATTER_ND", flat, out[:k], "the indices")
    res = np.zeros(out, dtype=dt)
    np.add.at(res, tuple(flat.T), upd.reshape((flat.shape[0],) + out[k:]))
    return [res]


define("SCATTER_ND", infer=_scatter_nd_infer, reference=_scatter_nd_ref, cost=movement_cost,
       shape_inputs=(2,))


# ---- ONE_HOT -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OneHotAttrs:
    axis: int = 0


def _parse_one_hot(options: dict[str, Any]) -> OneHotAttrs:
    return OneHotAttrs(int(options.get("axis", 0)))


def _one_hot_plan(ctx: InferCtx) -> tuple[int, int]:
    need(ctx, 4, " (indices, depth, on_value, off_value)")
    _check_index_type(ctx, 0, "indices")
    if np.dtype(ctx.dtypes[2]) != np.dtype(ctx.dtypes[3]):
        raise OpError(f"ONE_HOT: on_value '{ctx.name(2)}' and off_value '{ctx.name(3)}' must have the same type")
    for i, w in ((2, "on_value"), (3, "off_value")):
        if len(ctx.shapes[i]) != 0:
            raise OpError(f"ONE_HOT: {w} '{ctx.name(i)}' must be a scalar, got {list(ctx.shapes[i])}")
    if len(ctx.shapes[1]) != 0:
        raise OpError(f"ONE_HOT: depth '{ctx.name(1)}' must be a scalar, got {list(ctx.shapes[1])}")
    depth = _scalar_int(ctx, 1, "depth", INDEX_TYPES)
    if depth < 0:
        raise OpError(f"ONE_HOT: depth must be >= 0, got {depth}")
    rank = len(ctx.shapes[0]) + 1
    axis = ctx.attrs.axis
    if axis == -1:
        axis = rank - 1
    if not 0 <= axis < rank:
        raise OpError(f"ONE_HOT: axis {ctx.attrs.axis} is out of range for an output of rank {rank} "
                      f"(valid: -1..{rank - 1})")
    return axis, depth


def _one_hot_infer(ctx: InferCtx) -> list:
    axis, depth = _one_hot_plan(ctx)
    shape = list(ctx.shapes[0])
    return [(tuple(shape[:axis] + [depth] + shape[axis:]), np.dtype(ctx.dtypes[2]))]


def _one_hot_ref(inputs, attrs) -> list:
    axis, depth = _one_hot_plan(ctx_from_arrays("ONE_HOT", attrs, inputs))
    idx = np.asarray(inputs[0]).astype(np.int64)
    on, off = np.asarray(inputs[2]), np.asarray(inputs[3])
    pos = np.arange(depth, dtype=np.int64).reshape((depth,) + (1,) * (idx.ndim - axis))
    hit = np.expand_dims(idx, axis) == pos
    return [np.where(hit, on, off).astype(on.dtype)]


define("ONE_HOT", parse=_parse_one_hot, infer=_one_hot_infer, reference=_one_hot_ref,
       kind=PatternKind.INJECTIVE, cost=movement_cost, shape_inputs=(1,))


# ---- CUMSUM --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CumsumAttrs:
    exclusive: bool = False
    reverse: bool = False


def _parse_cumsum(options: dict[str, Any]) -> CumsumAttrs:
    return CumsumAttrs(bool(options.get("exclusive", False)), bool(options.get("reverse", False)))


_CUMSUM_TYPES = (F32, I32, I64)


def _cumsum_infer(ctx: InferCtx) -> list:
    need(ctx, 2, " (input, axis)")
    dt = np.dtype(ctx.dtypes[0])
    if dt not in _CUMSUM_TYPES:
        raise OpError(f"CUMSUM: input '{ctx.name(0)}' has type {dt.name}; supported: float32, int32, int64")
    _check_index_type(ctx, 1, "axis", (I32,))
    if int(np.prod(ctx.shapes[1], dtype=np.int64)) != 1:
        raise OpError(f"CUMSUM: axis '{ctx.name(1)}' must be a scalar, got {list(ctx.shapes[1])}")
    if ctx.values[1] is not None:
        norm_axis(_scalar_int(ctx, 1, "axis"), len(ctx.shapes[0]), "CUMSUM")
    return same_dtype_out(ctx, ctx.shapes[0])


def _cumsum_ref(inputs, a: CumsumAttrs) -> list:
    ctx = ctx_from_arrays("CUMSUM", a, inputs)
    _cumsum_infer(ctx)
    x = np.asarray(inputs[0])
    axis = norm_axis(_scalar_int(ctx, 1, "axis"), x.ndim, "CUMSUM")
    if a.reverse:
        x = np.flip(x, axis)
    y = np.cumsum(x, axis=axis, dtype=x.dtype)
    if a.exclusive:
        y = y - x
    if a.reverse:
        y = np.flip(y, axis)
    return [contig(y)]


define("CUMSUM", parse=_parse_cumsum, infer=_cumsum_infer, reference=_cumsum_ref, cost=movement_cost,
       shape_inputs=(1,))


# ---- REDUCE_ANY / REDUCE_ALL ---------------------------------------------------------------------

def _bool_reduce_infer(ctx: InferCtx) -> list:
    need(ctx, 2, " (input, axis)")
    if np.dtype(ctx.dtypes[0]) != BOOL:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' must be bool, got {np.dtype(ctx.dtypes[0]).name}")
    _check_index_type(ctx, 1, "axis", (I32,))
    shape = tuple(ctx.shapes[0])
    axes = resolve_axes(ctx.value(1, "axis"), len(shape), ctx.op_name, ctx.name(0))
    return [(reduced_shape(shape, axes, ctx.attrs.keep_dims), BOOL)]


def _bool_reducer(name: str, fn):
    def ref(inputs, a: ReduceAttrs) -> list:
        ((out, _),) = _bool_reduce_infer(ctx_from_arrays(name, a, inputs))
        x = np.asarray(inputs[0])
        axes = resolve_axes(inputs[1], x.ndim, name)
        return [np.ascontiguousarray(fn(x, axis=axes)).reshape(out)]

    return ref


for _name, _fn in (("REDUCE_ANY", np.any), ("REDUCE_ALL", np.all)):
    define(_name, parse=parse_reducer, infer=_bool_reduce_infer, reference=_bool_reducer(_name, _fn),
           kind=PatternKind.REDUCTION, cost=movement_cost, shape_inputs=(1,))


# ---- ARG_MAX / ARG_MIN ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ArgAttrs:
    output_type: int = 0  # schema default FLOAT32: LiteRT rejects it ("Unknown index output data type")


def _parse_arg(options: dict[str, Any]) -> ArgAttrs:
    return ArgAttrs(int(options.get("output_type", 0)))


_ARG_OUT = {2: I32, 4: I64}
_ARG_TYPES = tuple(np.dtype(t) for t in (np.float32, np.int32, np.int8, np.uint8, np.bool_))


def _arg_plan(ctx: InferCtx) -> tuple[int, np.dtype]:
    need(ctx, 2, " (input, axis)")
    dt = np.dtype(ctx.dtypes[0])
    if dt not in _ARG_TYPES:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' has type {dt.name}; supported: "
                      f"{', '.join(t.name for t in _ARG_TYPES)}")
    out = _ARG_OUT.get(ctx.attrs.output_type)
    if out is None:
        raise OpError(f"{ctx.op_name}: output_type {ctx.attrs.output_type} is not supported; use INT32 (2) "
                      "or INT64 (4)")
    if len(ctx.shapes[0]) == 0:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' must have rank >= 1")
    axis = norm_axis(_scalar_int(ctx, 1, "axis", INDEX_TYPES), len(ctx.shapes[0]), ctx.op_name)
    return axis, out


def _arg_infer(ctx: InferCtx) -> list:
    axis, out = _arg_plan(ctx)
    shape = list(ctx.shapes[0])
    return [(tuple(shape[:axis] + shape[axis + 1:]), out)]


def _arg_ref_for(name: str, fn):
    def ref(inputs, a: ArgAttrs) -> list:
        axis, out = _arg_plan(ctx_from_arrays(name, a, inputs))
        x = np.asarray(inputs[0])
        return [np.array(fn(x, axis=axis), dtype=out)]

    return ref


define("ARG_MAX", parse=_parse_arg, infer=_arg_infer, reference=_arg_ref_for("ARG_MAX", np.argmax),
       kind=PatternKind.REDUCTION, cost=movement_cost, shape_inputs=(1,))
define("ARG_MIN", parse=_parse_arg, infer=_arg_infer, reference=_arg_ref_for("ARG_MIN", np.argmin),
       kind=PatternKind.REDUCTION, cost=movement_cost, shape_inputs=(1,))


# ---- WHERE ---------------------------------------------------------------------------------------

def _where_infer(ctx: InferCtx) -> list:
    if len(ctx.shapes) != 1 or ctx.shapes[0] is None:
        raise OpError(f"WHERE: expected 1 input (the condition), got {len(ctx.shapes)}; use SELECT_V2 "
                      "for the three-input form")
    x = ctx.value(0, "the condition")
    return [((int(np.count_nonzero(x)), len(ctx.shapes[0])), I64)]


def _where_ref(inputs, attrs) -> list:
    x = np.asarray(inputs[0])
    return [contig(np.argwhere(x).astype(np.int64)).reshape(int(np.count_nonzero(x)), x.ndim)]


define("WHERE", infer=_where_infer, reference=_where_ref, cost=movement_cost)


# ---- TOPK_V2 -------------------------------------------------------------------------------------

_TOPK_TYPES = tuple(np.dtype(t) for t in (np.float32, np.int32, np.int64, np.int8, np.uint8, np.int16))


def _topk_plan(ctx: InferCtx) -> int:
    need(ctx, 2, " (input, k)")
    dt = np.dtype(ctx.dtypes[0])
    if dt not in _TOPK_TYPES:
        raise OpError(f"TOPK_V2: input '{ctx.name(0)}' has type {dt.name}; supported: "
                      f"{', '.join(t.name for t in _TOPK_TYPES)}")
    shape = tuple(ctx.shapes[0])
    if len(shape) == 0:
        raise OpError(f"TOPK_V2: input '{ctx.name(0)}' must have rank >= 1")
    k = _scalar_int(ctx, 1, "k", (I32, np.dtype(np.int16)))
    if not 0 <= k <= shape[-1]:
        raise OpError(f"TOPK_V2: k = {k} must lie in [0, {shape[-1]}] (the last dimension of "
                      f"'{ctx.name(0)}')")
    return k


def _topk_infer(ctx: InferCtx) -> list:
    k = _topk_plan(ctx)
    shape = tuple(ctx.shapes[0])[:-1] + (k,)
    return [(shape, np.dtype(ctx.dtypes[0])), (shape, I32)]


def _topk_ref(inputs, attrs) -> list:
    k = _topk_plan(ctx_from_arrays("TOPK_V2", attrs, inputs))
    x = np.asarray(inputs[0])
    key = x.astype(np.float64) if x.dtype.kind == "f" else x.astype(np.int64)
    order = np.argsort(-key, axis=-1, kind="stable")[..., :k]  # stable: ties keep the lower index
    return [contig(np.take_along_axis(x, order, axis=-1)), contig(order.astype(np.int32))]


define("TOPK_V2", infer=_topk_infer, reference=_topk_ref, cost=movement_cost, shape_inputs=(1,))
