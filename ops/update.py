"""Writes into tensors and type/shape facts: SPARSE_TO_DENSE, DYNAMIC_UPDATE_SLICE, RANK, BITCAST.

LiteRT behaviours followed here (ai_edge_litert, builtin kernels, probed):
* SPARSE_TO_DENSE (indices, output_shape, values, default_value): indices int32/int64 of rank 1
  (one index per element into a 1-D output) or 2 ([n, rank] coordinates, rank <= 4); output_shape
  int32/int64, 1-D; values float32, int32, int64, int8 or uint8, a scalar (used for every index)
  or 1-D with one value per index; default_value of the values' type with one element. A run-time
  output_shape makes the output run-time sized. Repeated indices: the last write wins.
  Rejected here where LiteRT writes or reads out of bounds: out-of-range or negative indices,
  negative output dims, and 0-D indices (LiteRT reads the size of a dimension the tensor does
  not have). validate_indices is ignored (LiteRT too).
* DYNAMIC_UPDATE_SLICE (operand, update, start_indices): any fixed-size type (operand and update
  alike); start_indices int32/int64, 1-D, one per operand dim; update of the same rank and no
  larger in any dim; rank <= 8. Starts are clamped into [0, dim - update_dim] (XLA semantics).
* RANK: any input; the output is an int32 scalar (LiteRT sets the type itself: a model declaring
  another type is rejected here, as for every op whose declared output type differs).
* BITCAST: the output tensor's type decides (bound from the model, like CAST). A wider input
  type appends a dim of sizeof(in) / sizeof(out); a narrower one needs the last dim to equal
  sizeof(out) / sizeof(in) and drops it; equal sizes keep the shape. A rank-0 input cannot be
  widened (LiteRT reads dims[-1]). Bytes are copied as they are (a bool output holds the raw
  bytes, as in LiteRT).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops.base import InferCtx, OpError, PatternKind
from tflite_jit.ops.common import I32, INDEX_TYPES, check_type, ctx_from_arrays, define, movement_cost, need

# ---- SPARSE_TO_DENSE -----------------------------------------------------------------------------

_S2D_VALUES = tuple(np.dtype(t) for t in (np.float32, np.int32, np.int64, np.int8, np.uint8))


def _s2d_infer(ctx: InferCtx) -> list:
    need(ctx, 4, " (indices, output_shape, values, default_value)")
    check_type(ctx, 0, "indices", INDEX_TYPES)
    check_type(ctx, 1, "output_shape", INDEX_TYPES)
    dt = check_type(ctx, 2, "values", _S2D_VALUES)
    if np.dtype(ctx.dtypes[3]) != dt:
        raise OpError(f"SPARSE_TO_DENSE: default_value '{ctx.name(3)}' has type {np.dtype(ctx.dtypes[3]).name}; "
                      f"it must match the values' type {dt.name}")
    ids, oshape, vals = tuple(ctx.shapes[0]), tuple(ctx.shapes[1]), tuple(ctx.shapes[2])
    if len(ids) not in (1, 2):
        raise OpError(f"SPARSE_TO_DENSE: indices '{ctx.name(0)}' has shape {list(ids)}; it must be 1-D "
                      "(into a 1-D output) or 2-D [n, output rank]")
    if len(oshape) != 1:
        raise OpError(f"SPARSE_TO_DENSE: output_shape '{ctx.name(1)}' must be 1-D, got shape {list(oshape)}")
    if len(vals) > 1:
        raise OpError(f"SPARSE_TO_DENSE: values '{ctx.name(2)}' must be a scalar or 1-D, got shape {list(vals)}")
    if int(np.prod(ctx.shapes[3], dtype=np.int64)) != 1:
        raise OpError(f"SPARSE_TO_DENSE: default_value '{ctx.name(3)}' must hold exactly one value, got shape "
                      f"{list(ctx.shapes[3])}")
    n = ids[0]
    if len(ids) == 1:
        if oshape[0] != 1:
            raise OpError(f"SPARSE_TO_DENSE: 1-D indices '{ctx.name(0)}' address a 1-D output, but output_shape "
                          f"'{ctx.name(1)}' has {oshape[0]} entries")
    else:
        if ids[1] != oshape[0]:
            raise OpError(f"SPARSE_TO_DENSE: indices '{ctx.name(0)}' have {ids[1]} coordinates per row but "
                          f"output_shape '{ctx.name(1)}' has {oshape[0]} entries")
        if ids[1] > 4:
            raise OpError(f"SPARSE_TO_DENSE: the output rank is {ids[1]}; LiteRT supports at most 4")
    if len(vals) == 1 and vals[0] != n:
        raise OpError(f"SPARSE_TO_DENSE: values '{ctx.name(2)}' has {vals[0]} elements for {n} indices; give "
                      "one value per index or a scalar")
    out = tuple(int(d) for d in np.asarray(ctx.value(1, "output_shape")).reshape(-1))
    if any(d < 0 for d in out):
        raise OpError(f"SPARSE_TO_DENSE: output_shape {list(out)} has a negative dimension")
    return [(out, dt)]


def _s2d_ref(inputs, attrs) -> list:
    ((shape, dt),) = _s2d_infer(ctx_from_arrays("SPARSE_TO_DENSE", attrs, inputs))
    idx = np.asarray(inputs[0]).astype(np.int64)
    idx = idx.reshape(-1, 1) if idx.ndim == 1 else idx
    dims = np.asarray(shape, dtype=np.int64)
    bad = ((idx < 0) | (idx >= dims)).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise OpError(f"SPARSE_TO_DENSE: index {idx[row].tolist()} (row {row} of the indices) is out of bounds "
                      f"for output shape {list(shape)}")
    out = np.full(shape, np.asarray(inputs[3]).reshape(-1)[0], dt)
    if idx.shape[0]:
        strides = np.cumprod(np.concatenate([dims[1:], [1]])[::-1])[::-1].astype(np.int64)
        flat = idx @ strides if idx.shape[1] else np.zeros(idx.shape[0], np.int64)
        vals = np.broadcast_to(np.asarray(inputs[2], dt).reshape(-1), (idx.shape[0],))
        # last write wins for repeated indices: keep each flat position's last occurrence
        rev_flat = flat[::-1]
        uniq, first_in_rev = np.unique(rev_flat, return_index=True)
        out.reshape(-1)[uniq] = vals[::-1][first_in_rev]
    return [out]


define("SPARSE_TO_DENSE", infer=_s2d_infer, reference=_s2d_ref, cost=movement_cost, shape_inputs=(1,))


# ---- DYNAMIC_UPDATE_SLICE ------------------------------------------------------------------------

_DUS_MAX_RANK = 8


def _dus_infer(ctx: InferCtx) -> list:
    need(ctx, 3, " (operand, update, start_indices)")
    dt = np.dtype(ctx.dtypes[0])
    if dt.kind not in "biufc":
        raise OpError(f"DYNAMIC_UPDATE_SLICE: operand '{ctx.name(0)}' has type {dt.name}; a fixed-size numeric "
                      "or bool type is required")
    if np.dtype(ctx.dtypes[1]) != dt:
        raise OpError(f"DYNAMIC_UPDATE_SLICE: update '{ctx.name(1)}' has type {np.dtype(ctx.dtypes[1]).name}; "
                      f"it must match the operand's type {dt.name}")
    check_type(ctx, 2, "start_indices", INDEX_TYPES)
    shape, upd = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
    if len(shape) > _DUS_MAX_RANK:
        raise OpError(f"DYNAMIC_UPDATE_SLICE: operand '{ctx.name(0)}' has rank {len(shape)}; at most "
                      f"{_DUS_MAX_RANK} is supported")
    if tuple(ctx.shapes[2]) != (len(shape),):
        raise OpError(f"DYNAMIC_UPDATE_SLICE: start_indices '{ctx.name(2)}' has shape {list(ctx.shapes[2])}; it "
                      f"must be [{len(shape)}] (one start per operand dimension)")
    if len(upd) != len(shape) or any(u > d for u, d in zip(upd, shape)):
        raise OpError(f"DYNAMIC_UPDATE_SLICE: update '{ctx.name(1)}' of shape {list(upd)} must have the operand's "
                      f"rank and fit inside its shape {list(shape)}")
    return [(shape, dt)]


def _dus_ref(inputs, attrs) -> list:
    ((shape, dt),) = _dus_infer(ctx_from_arrays("DYNAMIC_UPDATE_SLICE", attrs, inputs))
    upd = np.asarray(inputs[1])
    start = np.asarray(inputs[2]).astype(np.int64).reshape(-1)
    out = np.array(inputs[0], dtype=dt, order="C", copy=True)
    lo = [int(min(max(0, s), d - u)) for s, d, u in zip(start, shape, upd.shape)]
    out[tuple(slice(b, b + u) for b, u in zip(lo, upd.shape))] = upd
    return [out]


define("DYNAMIC_UPDATE_SLICE", infer=_dus_infer, reference=_dus_ref, kind=PatternKind.INJECTIVE,
       cost=movement_cost)


# ---- RANK ----------------------------------------------------------------------------------------

def _rank_infer(ctx: InferCtx) -> list:
    if len(ctx.shapes) != 1 or ctx.shapes[0] is None:
        raise OpError(f"RANK: expected 1 input, got {len(ctx.shapes)}")
    return [((), I32)]


def _rank_ref(inputs, attrs) -> list:
    return [np.array(np.asarray(inputs[0]).ndim, dtype=np.int32)]


define("RANK", infer=_rank_infer, reference=_rank_ref, cost=movement_cost)


# ---- BITCAST -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BitcastAttrs:
    out: Any = None  # numpy dtype of the output tensor, bound from the model


def _parse_bitcast(options: dict[str, Any]) -> BitcastAttrs:
    return BitcastAttrs()


def _bitcast_bind(attrs: BitcastAttrs, inputs: list, outputs: list) -> BitcastAttrs:
    if not outputs:
        raise OpError("BITCAST: the node has no output tensor")
    return BitcastAttrs(np.dtype(outputs[0].dtype))


def _bitcast_infer(ctx: InferCtx) -> list:
    if len(ctx.shapes) != 1 or ctx.shapes[0] is None:
        raise OpError(f"BITCAST: expected 1 input, got {len(ctx.shapes)}")
    if ctx.attrs.out is None:
        raise OpError("BITCAST: the output type is unknown (it comes from the model's output tensor)")
    src, dst = np.dtype(ctx.dtypes[0]), np.dtype(ctx.attrs.out)
    for what, t in (("input", src), ("output", dst)):
        if t.kind not in "biufc" or t.itemsize == 0:
            raise OpError(f"BITCAST: {what} type {t.name} has no fixed size; use a numeric or bool type")
    shape = tuple(ctx.shapes[0])
    if src.itemsize > dst.itemsize:
        return [(shape + (src.itemsize // dst.itemsize,), dst)]
    if src.itemsize < dst.itemsize:
        ratio = dst.itemsize // src.itemsize
        if len(shape) == 0 or shape[-1] != ratio:
            raise OpError(f"BITCAST: casting {src.name} to the wider {dst.name} needs the input's last dimension "
                          f"to be {ratio}, but input '{ctx.name(0)}' has shape {list(shape)}")
        return [(shape[:-1], dst)]
    return [(shape, dst)]


def _bitcast_ref(inputs, attrs: BitcastAttrs) -> list:
    ((shape, dt),) = _bitcast_infer(ctx_from_arrays("BITCAST", attrs, inputs))
    raw = np.ascontiguousarray(np.asarray(inputs[0])).tobytes()
    return [np.frombuffer(raw, dtype=dt).reshape(shape).copy()]


define("BITCAST", parse=_parse_bitcast, infer=_bitcast_infer, reference=_bitcast_ref, cost=movement_cost,
       bind=_bitcast_bind)
