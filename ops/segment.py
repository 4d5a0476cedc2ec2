"""Segment reductions, UNIQUE and BUCKETIZE: SEGMENT_SUM, UNSORTED_SEGMENT_SUM / PROD / MAX / MIN,
UNIQUE, BUCKETIZE.

SEGMENT_SUM's segment count and UNIQUE's value count depend on data: infer raises Dynamic unless
the deciding input is known at plan time (then the shape folds), and the runtime sizes the output
when it is produced. The UNSORTED_SEGMENT_* output shape depends only on num_segments, so it is
known at plan time whenever num_segments is a constant.

LiteRT behaviours followed here (ai_edge_litert, builtin kernels, probed):
* Segment ops take float32 or int32 data only, int32 segment ids and an int32 num_segments with
  one element (shape [] or [1]). Integer sums and products wrap.
* SEGMENT_SUM ids must start at 0 and grow by 0 or 1 per row; the output has max id + 1 rows.
* UNSORTED_SEGMENT_*: a negative id drops its row; an id >= num_segments fails. Empty segments
  hold 0 (SUM), 1 (PROD), the type's lowest finite value (MAX: -3.4028235e38 for float32, not
  -inf) or its largest finite value (MIN). MAX/MIN keep the current value when the incoming one
  is NaN (std::max/std::min), which is what np.fmax/np.fmin do here.
* Segment ids must be 1-D with one id per row of data (LiteRT reads only dims[0] but walks the
  whole ids buffer: other shapes are rejected here), and data must have rank >= 1.
* UNIQUE: 1-D input of float32, int8, int16, int32, int64 or uint8 (LiteRT fails at invoke for
  others; here at plan time); values in first-appearance order; idx_out_type INT32 (2, the
  default) or INT64 (4), which must match the index output's type. A NaN input is rejected at
  run time: LiteRT keys a std::map with the floats, and NaN breaks its ordering (it merged NaN
  with -0.0 when probed), so the result is not defined. -0.0 and 0.0 are one value (the first
  seen is kept).
* BUCKETIZE: boundaries (float32 option) must be present and sorted ascending (NaN boundaries are
  rejected here); input float32, float64, int32 or int64; output int32 = the number of
  boundaries <= x (std::upper_bound). Integer inputs are compared as float32 (C++'s usual
  arithmetic conversions), float64 inputs in double. NaN lands past the last boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops.base import InferCtx, OpError, PatternKind
from tflite_jit.ops.common import F32, F64, I32, I64, check_type, ctx_from_arrays, define, movement_cost, need

_SEGMENT_DATA = (F32, I32)


def _check_segment_inputs(ctx: InferCtx) -> tuple[int, ...]:
    check_type(ctx, 0, "data", _SEGMENT_DATA)
    check_type(ctx, 1, "segment_ids", (I32,))
    data, ids = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
    if len(data) == 0:
        raise OpError(f"{ctx.op_name}: data '{ctx.name(0)}' must have rank >= 1 (one segment id per row)")
    if len(ids) != 1 or ids[0] != data[0]:
        raise OpError(f"{ctx.op_name}: segment_ids '{ctx.name(1)}' has shape {list(ids)}; it must be 1-D "
                      f"with one id per row of data '{ctx.name(0)}', i.e. [{data[0]}]")
    return data


def _declared_types_bind(op: str, expected):
    """A bind that checks the output tensors' declared types up front: these ops' outputs are often
    run-time sized (no plan-time shape rule runs), and a mismatch must still fail at prepare."""

    def bind(attrs: Any, inputs: list, outputs: list) -> Any:
        want = expected(attrs, inputs)
        for j, (t, w) in enumerate(zip(outputs, want)):
            if w is not None and t is not None and np.dtype(t.dtype) != w:
                raise OpError(f"{op}: output {j} ('{t.name}') is declared {np.dtype(t.dtype).name} but the op "
                              f"produces {np.dtype(w).name}; declare it as {np.dtype(w).name}")
        return attrs

    return bind


def _same_as_data(attrs: Any, inputs: list) -> list:
    return [np.dtype(inputs[0].dtype) if inputs and inputs[0] is not None else None]


# ---- SEGMENT_SUM ---------------------------------------------------------------------------------

def _segment_count(op: str, ids: np.ndarray) -> int:
    ids = np.asarray(ids).reshape(-1).astype(np.int64)
    if ids.size == 0:
        return 0
    if ids[0] != 0:
        raise OpError(f"{op}: segment ids must start at 0, got {int(ids[0])}")
    steps = np.diff(ids)
    bad = np.flatnonzero((steps != 0) & (steps != 1))
    if bad.size:
        i = int(bad[0]) + 1
        raise OpError(f"{op}: segment ids must be sorted and grow by 0 or 1 per row; id {int(ids[i])} at "
                      f"row {i} follows {int(ids[i - 1])} (use UNSORTED_SEGMENT_SUM for arbitrary ids)")
    return int(ids[-1]) + 1


def _segment_sum_infer(ctx: InferCtx) -> list:
    need(ctx, 2, " (data, segment_ids)")
    data = _check_segment_inputs(ctx)
    n = _segment_count(ctx.op_name, ctx.value(1, "the segment ids"))
    return [((n,) + data[1:], np.dtype(ctx.dtypes[0]))]


def _segment_sum_ref(inputs, attrs) -> list:
    ((shape, dt),) = _segment_sum_infer(ctx_from_arrays("SEGMENT_SUM", attrs, inputs))
    out = np.zeros(shape, dt)
    np.add.at(out, np.asarray(inputs[1]).astype(np.int64), np.asarray(inputs[0]))
    return [out]


define("SEGMENT_SUM", infer=_segment_sum_infer, reference=_segment_sum_ref, cost=movement_cost,
       bind=_declared_types_bind("SEGMENT_SUM", _same_as_data))


# ---- UNSORTED_SEGMENT_SUM / PROD / MAX / MIN -----------------------------------------------------

def _unsorted_plan(ctx: InferCtx) -> tuple[int, ...]:
    need(ctx, 3, " (data, segment_ids, num_segments)")
    data = _check_segment_inputs(ctx)
    check_type(ctx, 2, "num_segments", (I32,))
    if tuple(ctx.shapes[2]) not in ((), (1,)):
        raise OpError(f"{ctx.op_name}: num_segments '{ctx.name(2)}' must be a scalar or a [1] tensor, got "
                      f"shape {list(ctx.shapes[2])}")
    n = int(np.asarray(ctx.value(2, "num_segments")).reshape(-1)[0])
    if n < 0:
        raise OpError(f"{ctx.op_name}: num_segments must be >= 0, got {n}")
    ids = ctx.values[1] if len(ctx.values) > 1 else None
    if ids is not None and np.asarray(ids).size:
        top = int(np.max(ids))
        if top >= n:
            raise OpError(f"{ctx.op_name}: segment id {top} is out of range for num_segments = {n}; "
                          f"ids must be < num_segments (negative ids drop their row)")
    return (n,) + data[1:]


def _unsorted_infer(ctx: InferCtx) -> list:
    return [(_unsorted_plan(ctx), np.dtype(ctx.dtypes[0]))]


def _initial(name: str, dt: np.dtype):
    info = np.finfo(dt) if dt.kind == "f" else np.iinfo(dt)
    return {"SUM": 0, "PROD": 1, "MAX": info.min, "MIN": info.max}[name]


_UFUNCS = {"SUM": np.add, "PROD": np.multiply, "MAX": np.fmax, "MIN": np.fmin}


def _unsorted_ref_for(op: str, kind: str):
    def ref(inputs, attrs) -> list:
        shape = _unsorted_plan(ctx_from_arrays(op, attrs, inputs))
        data = np.asarray(inputs[0])
        ids = np.asarray(inputs[1]).astype(np.int64)
        out = np.full(shape, _initial(kind, data.dtype), data.dtype)
        keep = ids >= 0
        _UFUNCS[kind].at(out, ids[keep], data[keep])
        return [out]

    return ref


for _kind in ("SUM", "PROD", "MAX", "MIN"):
    _name = f"UNSORTED_SEGMENT_{_kind}"
    define(_name, infer=_unsorted_infer, reference=_unsorted_ref_for(_name, _kind), cost=movement_cost,
           shape_inputs=(2,), bind=_declared_types_bind(_name, _same_as_data))


# ---- UNIQUE --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UniqueAttrs:
    idx_out_type: int = 2


def _parse_unique(options: dict[str, Any]) -> UniqueAttrs:
    return UniqueAttrs(int(options.get("idx_out_type", 2)))


_UNIQUE_TYPES = tuple(np.dtype(t) for t in (np.float32, np.int8, np.int16, np.int32, np.int64, np.uint8))
_IDX_TYPES = {2: I32, 4: I64}


def _unique_plan(ctx: InferCtx) -> np.dtype:
    if len(ctx.shapes) != 1 or ctx.shapes[0] is None:
        raise OpError(f"UNIQUE: expected 1 input, got {len(ctx.shapes)}")
    check_type(ctx, 0, "input", _UNIQUE_TYPES)
    if len(ctx.shapes[0]) != 1:
        raise OpError(f"UNIQUE: input '{ctx.name(0)}' must be 1-D, got shape {list(ctx.shapes[0])}")
    idx = _IDX_TYPES.get(ctx.attrs.idx_out_type)
    if idx is None:
        raise OpError(f"UNIQUE: idx_out_type {ctx.attrs.idx_out_type} is not supported; use INT32 (2) or "
                      "INT64 (4)")
    return idx


def _unique(op: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.dtype.kind == "f" and np.isnan(x).any():
        raise OpError(f"{op}: the input contains NaN; LiteRT's result for NaN is undefined (its value map "
                      "cannot order NaN), so remove or replace NaNs before UNIQUE")
    _, first, inverse = np.unique(x, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # sorted groups -> first-appearance order
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return x[first[order]], rank[inverse.reshape(-1)]


def _unique_infer(ctx: InferCtx) -> list:
    idx = _unique_plan(ctx)
    vals, _ = _unique("UNIQUE", np.asarray(ctx.value(0, "the input")))
    return [(vals.shape, np.dtype(ctx.dtypes[0])), (tuple(ctx.shapes[0]), idx)]


def _unique_ref(inputs, attrs: UniqueAttrs) -> list:
    idx = _unique_plan(ctx_from_arrays("UNIQUE", attrs, inputs))
    x = np.asarray(inputs[0])
    vals, where = _unique("UNIQUE", x)
    return [np.array(vals, dtype=x.dtype), where.astype(idx)]


def _unique_types(attrs: UniqueAttrs, inputs: list) -> list:
    return _same_as_data(attrs, inputs) + [_IDX_TYPES.get(attrs.idx_out_type)]


define("UNIQUE", parse=_parse_unique, infer=_unique_infer, reference=_unique_ref, cost=movement_cost,
       bind=_declared_types_bind("UNIQUE", _unique_types))


# ---- BUCKETIZE -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BucketizeAttrs:
    boundaries: tuple[float, ...] | None = None


def _parse_bucketize(options: dict[str, Any]) -> BucketizeAttrs:
    b = options.get("boundaries")
    if b is None:
        return BucketizeAttrs(None)
    return BucketizeAttrs(tuple(float(v) for v in np.asarray(b, dtype=np.float32).reshape(-1)))


_BUCKET_TYPES = (F32, F64, I32, I64)


def _bucketize_infer(ctx: InferCtx) -> list:
    if len(ctx.shapes) != 1 or ctx.shapes[0] is None:
        raise OpError(f"BUCKETIZE: expected 1 input, got {len(ctx.shapes)}")
    b = ctx.attrs.boundaries
    if b is None:
        raise OpError("BUCKETIZE: the boundaries option is missing; give the sorted float32 bucket boundaries")
    arr = np.asarray(b, np.float32)
    if np.isnan(arr).any():
        raise OpError("BUCKETIZE: boundaries contain NaN; give sorted, non-NaN boundaries")
    if arr.size > 1 and np.any(arr[1:] < arr[:-1]):
        raise OpError(f"BUCKETIZE: boundaries must be sorted ascending, got {arr.tolist()}")
    check_type(ctx, 0, "input", _BUCKET_TYPES)
    return [(tuple(ctx.shapes[0]), I32)]


def _bucketize_ref(inputs, attrs: BucketizeAttrs) -> list:
    ((shape, _),) = _bucketize_infer(ctx_from_arrays("BUCKETIZE", attrs, inputs))
    x = np.asarray(inputs[0])
    if x.dtype == F64:
        b, key = np.asarray(attrs.boundaries, np.float32).astype(np.float64), x
    else:  # int32/int64 inputs meet a float boundary: compared as float32
        b, key = np.asarray(attrs.boundaries, np.float32), x.astype(np.float32)
    return [np.searchsorted(b, key, side="right").astype(np.int32).reshape(shape)]


define("BUCKETIZE", parse=_parse_bucketize, infer=_bucketize_infer, reference=_bucketize_ref,
       kind=PatternKind.ELEMWISE, cost=movement_cost)
