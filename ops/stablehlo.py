"""Structural StableHLO ops that LiteRT's builtin resolver runs: STABLEHLO_PAD, STABLEHLO_GATHER,
STABLEHLO_SCATTER, STABLEHLO_REDUCE_WINDOW, STABLEHLO_CASE and STABLEHLO_COMPOSITE.

Semantics follow the StableHLO spec as LiteRT's kernels implement it (probed against the
installed LiteRT; tests/ops/test_stablehlo.py):

* PAD: edge padding low/high (negative values crop), interior padding >= 0; every dtype (the
  kernel moves bytes); rank 1..8. The padding value is a one-element tensor of the operand's
  dtype. When any output dimension comes out <= 0, LiteRT returns an empty tensor with every
  dimension 0 (not an error), and so do we.
* GATHER: full dimension numbers; start indices (int32/int64) are clamped so the whole slice
  fits, as the spec says. The dimension numbers are validated here (LiteRT trusts them and
  indexes out of bounds on bad ones). index_vector_dim must name a dimension of the indices:
  the spec's implicit trailing index vector (index_vector_dim == rank) makes LiteRT read past
  the indices' shape (it segfaulted in our probes), so GATHER and SCATTER reject it.
  Data types (GATHER and SCATTER): bool, float16/32/64, int8/16/32/64, uint8/16/32/64.
* SCATTER: the update computation is a subgraph that LiteRT inspects rather than runs: no op
  means "replace", one STABLEHLO_ADD / STABLEHLO_MULTIPLY / STABLEHLO_MAXIMUM /
  STABLEHLO_MINIMUM means that combiner; anything else is rejected (as LiteRT does). Updates
  are applied one element at a time in row-major order of `updates` (duplicates combine in that
  order); an update whose target is past the end of a dimension is skipped, as in LiteRT. A
  negative scatter index makes LiteRT write before the output buffer (it only checks the upper
  bound), so we reject it with an OpError.
* REDUCE_WINDOW: base dilation (holes hold the init value), padding (init value; negative
  crops), window dimensions / strides / dilations. The body subgraph must hold exactly one
  ADD / MUL / MAXIMUM / MINIMUM / LOGICAL_AND / LOGICAL_OR (or STABLEHLO_ADD / _MULTIPLY /
  _MAXIMUM / _MINIMUM / _AND; STABLEHLO_OR is in the kernel but not in LiteRT's resolver). Each
  window is folded from the init value in row-major window order (LiteRT's order, which matters
  for float sums); max/min keep the accumulator unless the element compares greater/smaller,
  as LiteRT's `a >= b ? a : b` does with NaN. Types: bool, int8/16/32/64, uint8, float32/64,
  rank 1..6. An ADD body on bool data is rejected (LiteRT adds bools as int8 and stores the
  count in a bool). A padding that leaves the operand empty fails as in LiteRT.
* CASE: input 0 is an int32 scalar choosing among branch subgraphs; an index out of range runs
  the last branch (the spec's rule, which LiteRT follows).
* COMPOSITE: runs its decomposition subgraph on its inputs; like LiteRT it requires the
  composite_attributes option (a flexbuffer) to be present.

CASE, COMPOSITE, SCATTER and REDUCE_WINDOW are `ContextOpDef`s (ops/control.py): they need
the model's other subgraphs. All of these run on `reference`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflite_jit.ir.validate import MAX_TENSOR_BYTES
from tflite_jit.ops.base import Cost, Dynamic, InferCtx, OpError, PatternKind
from tflite_jit.ops.common import INDEX_TYPES, define, movement_cost
from tflite_jit.ops.control import ContextOpDef, check_subgraph, run_context

_ALL_NUMERIC = tuple(np.dtype(t) for t in (np.bool_, np.float16, np.float32, np.float64, np.int8, np.int16,
                                           np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                                           np.uint64))
_REDUCE_WINDOW_TYPES = tuple(np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64,
                                                   np.uint8, np.float32, np.float64))
_MAX_REDUCE_WINDOW_RANK = 6
_MAX_PAD_RANK = 8


def _ints(v: Any, key: str = "option") -> tuple[int, ...]:
    if v is None:
        return ()
    try:
        return tuple(int(x) for x in np.asarray(v).reshape(-1))
    except (TypeError, ValueError):
        raise OpError(f"option {key} must be a list of integers, got {v!r}") from None


def _int(v: Any, key: str) -> int:
    if v is None:
        return 0
    try:
        return int(v)
    except (TypeError, ValueError):
        raise OpError(f"option {key} must be an integer, got {v!r}") from None


@dataclass(frozen=True)
class _Attrs:
    """Options as tuples of ints (frozen), plus the RunContext for ops that need subgraphs."""

    opts: tuple[tuple[str, Any], ...]
    ctx: Any = field(default=None, compare=False)
    node: Any = None

    def __getitem__(self, key: str) -> Any:
        return dict(self.opts)[key]

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.opts).get(key, default)


def _parser(int_lists: Sequence[str], scalars: Sequence[str] = ()) -> Any:
    """Integer-list options as tuples, integer/bool options as ints (absent: 0)."""
    def parse(options: dict[str, Any]) -> _Attrs:
        opts = [(k, _ints(options.get(k), k)) for k in int_lists]
        opts += [(k, _int(options.get(k), k)) for k in scalars]
        return _Attrs(tuple(opts))
    return parse


def _attach(a: _Attrs, ctx: Any, node: Any = None) -> _Attrs:
    return _Attrs(a.opts, ctx, node)


def _subgraph(a: _Attrs, key: str, op: str, si: int | None = None) -> int:
    rc = run_context(a, op)
    return check_subgraph(rc, int(a.get(key) or 0) if si is None else si, key, op)


def _n_inputs(ctx: InferCtx, n: int) -> None:
    if len(ctx.shapes) != n or any(s is None for s in ctx.shapes):
        raise OpError(f"{ctx.op_name} takes {n} inputs, got {len(ctx.shapes)}")


def _dims_check(op: str, what: str, dims: tuple[int, ...], bound: int, *, sorted_: bool = False) -> None:
    """Each of `dims` in [0, bound), no repeats (and ascending where the spec requires it)."""
    for d in dims:
        if not 0 <= d < bound:
            raise OpError(f"{op}: {what} {list(dims)} has {d}, outside [0, {bound})")
    if len(set(dims)) != len(dims):
        raise OpError(f"{op}: {what} {list(dims)} repeats a dimension")
    if sorted_ and list(dims) != sorted(dims):
        raise OpError(f"{op}: {what} {list(dims)} must be sorted ascending")


def _scalar_like(ctx: InferCtx, i: int, dtype: Any, what: str) -> None:
    if np.dtype(ctx.dtypes[i]) != np.dtype(dtype):
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' is {np.dtype(ctx.dtypes[i]).name}, "
                      f"must match the operand's {np.dtype(dtype).name}")
    if int(np.prod(ctx.shapes[i])) != 1:
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' must hold one element, its shape is "
                      f"{list(ctx.shapes[i])}")


def _first(x: np.ndarray) -> Any:
    return np.asarray(x).reshape(-1)[0]


# ---- STABLEHLO_PAD ------------------------------------------------------------------------------

def _pad_out_shape(op: str, shape: tuple[int, ...], lo: tuple, hi: tuple, interior: tuple) -> tuple:
    r = len(shape)
    for name, v in (("edge_padding_low", lo), ("edge_padding_high", hi), ("interior_padding", interior)):
        if len(v) != r:
            raise OpError(f"{op}: {name} has {len(v)} entries, the operand has rank {r} "
                          f"(give one per dimension)")
    if any(p < 0 for p in interior):
        raise OpError(f"{op}: interior_padding {list(interior)} must be >= 0")
    if not 0 < r <= _MAX_PAD_RANK:
        raise OpError(f"{op}: the operand's rank must be 1..{_MAX_PAD_RANK}, got {r}")
    out = tuple(lo_ + hi_ + d + max(d - 1, 0) * it for d, lo_, hi_, it in zip(shape, lo, hi, interior))
    if any(n <= 0 for n in out):
        # LiteRT: when any output dimension is <= 0 (cropping more than there is included) the
        # result is an empty tensor whose every dimension is 0
        return (0,) * r
    return out


def _pad_infer(ctx: InferCtx) -> list:
    _n_inputs(ctx, 2)
    a = ctx.attrs
    _scalar_like(ctx, 1, ctx.dtypes[0], "padding value")
    shape = tuple(ctx.shapes[0])
    return [(_pad_out_shape("STABLEHLO_PAD", shape, a["edge_padding_low"], a["edge_padding_high"],
                            a["interior_padding"]), np.dtype(ctx.dtypes[0]))]


def _dilate_pad(x: np.ndarray, fill: Any, dil: Sequence[int], lo: Sequence[int], hi: Sequence[int]) -> np.ndarray:
    """Interior dilation by `dil` (stride between elements), then edge padding (negative crops)."""
    dshape = tuple((d - 1) * s + 1 if d > 0 else 0 for d, s in zip(x.shape, dil))
    big = tuple(n + max(lo_, 0) + max(hi_, 0) for n, lo_, hi_ in zip(dshape, lo, hi))
    out = np.full(big, fill, dtype=x.dtype)
    out[tuple(slice(max(lo_, 0), max(lo_, 0) + n, s) for lo_, n, s in zip(lo, dshape, dil))] = x
    crop = tuple(slice(max(-lo_, 0), b - max(-hi_, 0)) for lo_, hi_, b in zip(lo, hi, big))
    return out[crop]


def _pad_run(inputs: Sequence[np.ndarray], a: _Attrs) -> list[np.ndarray]:
    x = np.asarray(inputs[0])
    fill = _first(inputs[1])
    lo, hi, it = a["edge_padding_low"], a["edge_padding_high"], a["interior_padding"]
    out = _pad_out_shape("STABLEHLO_PAD", x.shape, lo, hi, it)
    if 0 in out:
        return [np.zeros(out, x.dtype)]
    return [np.ascontiguousarray(_dilate_pad(x, fill, [i + 1 for i in it], lo, hi))]


define("STABLEHLO_PAD", parse=_parser(("edge_padding_low", "edge_padding_high", "interior_padding")),
       infer=_pad_infer, reference=_pad_run, kind=PatternKind.INJECTIVE, cost=movement_cost)


# ---- STABLEHLO_GATHER ---------------------------------------------------------------------------

def _index_vector(op: str, idx_shape: tuple[int, ...], ivd: int) -> tuple[tuple[int, ...], int]:
    """(batch shape, index vector length) for indices of this shape and index_vector_dim."""
    # The spec allows index_vector_dim == rank (an implicit trailing index vector of length 1),
    # but LiteRT then reads the indices' shape past its end (it crashed in our probes): we ask
    # for an explicit trailing dimension of size 1 instead.
    if not 0 <= ivd < len(idx_shape):
        raise OpError(f"{op}: index_vector_dim {ivd} must be in [0, {len(idx_shape)}) for indices "
                      f"of shape {list(idx_shape)} (for scalar index vectors, reshape the indices "
                      f"to add a trailing dimension of size 1)")
    return tuple(idx_shape[:ivd] + idx_shape[ivd + 1:]), int(idx_shape[ivd])


def _index_rows(idx: np.ndarray, ivd: int) -> np.ndarray:
    """Indices as (batch elements, index vector) int64 rows, batch in row-major order."""
    idx = np.asarray(idx).astype(np.int64)
    moved = np.moveaxis(idx, ivd, -1)
    return moved.reshape(-1, moved.shape[-1])


def _gather_check(ctx_op: str, op_shape: tuple, idx_shape: tuple, idx_dtype: Any, a: _Attrs) -> tuple:
    if np.dtype(idx_dtype) not in INDEX_TYPES:
        raise OpError(f"{ctx_op}: start indices must be int32 or int64, got {np.dtype(idx_dtype).name}")
    r = len(op_shape)
    offset, collapsed, sim = a["offset_dims"], a["collapsed_slice_dims"], a["start_index_map"]
    sizes = a["slice_sizes"]
    batch, k = _index_vector(ctx_op, tuple(idx_shape), int(a["index_vector_dim"]))
    if len(sizes) != r:
        raise OpError(f"{ctx_op}: slice_sizes {list(sizes)} must have one entry per operand "
                      f"dimension ({r})")
    for d, (s, n) in enumerate(zip(sizes, op_shape)):
        if not 0 <= s <= n:
            raise OpError(f"{ctx_op}: slice_sizes[{d}] = {s} is outside [0, {n}] (the operand's "
                          f"dimension {d})")
    _dims_check(ctx_op, "collapsed_slice_dims", collapsed, r, sorted_=True)
    for d in collapsed:
        if sizes[d] > 1:
            raise OpError(f"{ctx_op}: collapsed dimension {d} has slice size {sizes[d]}; a "
                          f"collapsed dimension's slice size must be 0 or 1")
    _dims_check(ctx_op, "start_index_map", sim, r)
    if len(sim) != k:
        raise OpError(f"{ctx_op}: start_index_map {list(sim)} has {len(sim)} entries but the index "
                      f"vector (indices dimension {a['index_vector_dim']}) has {k}")
    n_off = r - len(collapsed)
    if len(offset) != n_off:
        raise OpError(f"{ctx_op}: offset_dims {list(offset)} must have {n_off} entries (operand rank "
                      f"{r} minus {len(collapsed)} collapsed dimensions)")
    out_rank = len(batch) + n_off
    _dims_check(ctx_op, "offset_dims", offset, out_rank, sorted_=True)
    slice_shape = [s for d, s in enumerate(sizes) if d not in collapsed]
    out, bi, si = [], iter(batch), iter(slice_shape)
    for d in range(out_rank):
        out.append(next(si) if d in offset else next(bi))
    return tuple(out)


def _gather_infer(ctx: InferCtx) -> list:
    _n_inputs(ctx, 2)
    if np.dtype(ctx.dtypes[0]) not in _ALL_NUMERIC:
        raise OpError(f"STABLEHLO_GATHER: operand '{ctx.name(0)}' type {np.dtype(ctx.dtypes[0]).name} "
                      f"is not supported")
    out = _gather_check("STABLEHLO_GATHER", tuple(ctx.shapes[0]), tuple(ctx.shapes[1]), ctx.dtypes[1],
                        ctx.attrs)
    return [(out, np.dtype(ctx.dtypes[0]))]


def _gather_run(inputs: Sequence[np.ndarray], a: _Attrs) -> list[np.ndarray]:
    x, idx = np.asarray(inputs[0]), np.asarray(inputs[1])
    out_shape = _gather_check("STABLEHLO_GATHER", x.shape, idx.shape, idx.dtype, a)
    r = x.ndim
    sizes = np.asarray(a["slice_sizes"], np.int64)
    if 0 in out_shape:
        return [np.zeros(out_shape, x.dtype)]
    rows = _index_rows(idx, int(a["index_vector_dim"]))
    start = np.zeros((rows.shape[0], r), np.int64)
    start[:, list(a["start_index_map"])] = rows
    # the spec (and LiteRT) clamp each start so the whole slice fits in the operand
    start = np.clip(start, 0, np.asarray(x.shape, np.int64) - sizes)
    grid = np.indices(tuple(int(s) for s in sizes)).reshape(r, -1).T  # (slice elements, r)
    coords = start[:, None, :] + grid[None, :, :]
    vals = x[tuple(coords[..., d] for d in range(r))]
    batch, _ = _index_vector("STABLEHLO_GATHER", idx.shape, int(a["index_vector_dim"]))
    kept = [int(s) for d, s in enumerate(sizes) if d not in a["collapsed_slice_dims"]]
    vals = vals.reshape(tuple(batch) + tuple(kept))
    nb = len(batch)
    vals = np.moveaxis(vals, list(range(nb, nb + len(kept))), list(a["offset_dims"]))
    return [np.ascontiguousarray(vals).reshape(out_shape)]


def _gather_cost(ins: list, outs: list, a: Any) -> Cost:
    return movement_cost(ins, outs, a)


define("STABLEHLO_GATHER",
       parse=_parser(("offset_dims", "collapsed_slice_dims", "start_index_map", "slice_sizes"),
                     ("index_vector_dim", "indices_are_sorted")),
       infer=_gather_infer, reference=_gather_run, kind=PatternKind.INJECTIVE, cost=_gather_cost)


# ---- STABLEHLO_SCATTER --------------------------------------------------------------------------

_SCATTER_COMBINERS = {"STABLEHLO_ADD": "add", "STABLEHLO_MULTIPLY": "mul", "STABLEHLO_MAXIMUM": "max",
                      "STABLEHLO_MINIMUM": "min"}


def _body_ops(a: _Attrs, key: str, op: str) -> list[str]:
    si = _subgraph(a, key, op)
    return [o.name for o in run_context(a, op).model.subgraphs[si].ops]


def _scatter_combiner(a: _Attrs) -> str:
    names = _body_ops(a, "update_computation_subgraph_index", "STABLEHLO_SCATTER")
    if not names:
        return "update"
    if len(names) > 1 or names[0] not in _SCATTER_COMBINERS:
        raise OpError(f"STABLEHLO_SCATTER: the update computation subgraph holds {names}; LiteRT "
                      f"supports no op (replace) or exactly one of "
                      f"{sorted(_SCATTER_COMBINERS)}")
    return _SCATTER_COMBINERS[names[0]]


def _scatter_check(op_shape: tuple, idx_shape: tuple, upd_shape: tuple, a: _Attrs) -> None:
    op = "STABLEHLO_SCATTER"
    r, ur = len(op_shape), len(upd_shape)
    uwd, iwd, sdod = a["update_window_dims"], a["inserted_window_dims"], a["scatter_dims_to_operand_dims"]
    batch, k = _index_vector(op, tuple(idx_shape), int(a["index_vector_dim"]))
    _dims_check(op, "update_window_dims", uwd, ur, sorted_=True)
    _dims_check(op, "inserted_window_dims", iwd, r, sorted_=True)
    if len(uwd) + len(iwd) != r:
        raise OpError(f"{op}: update_window_dims {list(uwd)} and inserted_window_dims {list(iwd)} "
                      f"must together have {r} entries (the operand's rank)")
    _dims_check(op, "scatter_dims_to_operand_dims", sdod, r)
    if len(sdod) != k:
        raise OpError(f"{op}: scatter_dims_to_operand_dims {list(sdod)} has {len(sdod)} entries but "
                      f"the index vector has {k}")
    scatter_shape = tuple(upd_shape[d] for d in range(ur) if d not in uwd)
    if scatter_shape != tuple(batch):
        raise OpError(f"{op}: the update scatter dimensions {list(scatter_shape)} of updates "
                      f"{list(upd_shape)} must equal the indices' batch dimensions {list(batch)}")
    window_dims = [d for d in range(r) if d not in iwd]
    for ud, od in zip(uwd, window_dims):
        if upd_shape[ud] > op_shape[od]:
            raise OpError(f"{op}: updates dimension {ud} has size {upd_shape[ud]}, larger than operand "
                          f"dimension {od} ({op_shape[od]})")


def _scatter_infer(ctx: InferCtx) -> list:
    _n_inputs(ctx, 3)
    op = "STABLEHLO_SCATTER"
    dt = np.dtype(ctx.dtypes[0])
    if dt not in _ALL_NUMERIC:
        raise OpError(f"{op}: operand '{ctx.name(0)}' type {dt.name} is not supported")
    if np.dtype(ctx.dtypes[1]) not in INDEX_TYPES:
        raise OpError(f"{op}: scatter indices '{ctx.name(1)}' must be int32 or int64, got "
                      f"{np.dtype(ctx.dtypes[1]).name}")
    if np.dtype(ctx.dtypes[2]) != dt:
        raise OpError(f"{op}: updates '{ctx.name(2)}' are {np.dtype(ctx.dtypes[2]).name}, the operand is "
                      f"{dt.name}")
    _scatter_check(tuple(ctx.shapes[0]), tuple(ctx.shapes[1]), tuple(ctx.shapes[2]), ctx.attrs)
    _scatter_combiner(ctx.attrs)
    return [(tuple(ctx.shapes[0]), dt)]


def _combine(kind: str, old: np.ndarray, new: np.ndarray) -> np.ndarray:
    if kind == "update":
        return new
    if kind == "add":
        return old + new
    if kind == "mul":
        return old * new
    if kind == "max":  # std::max(old, new)
        return np.where(old < new, new, old)
    return np.where(new < old, new, old)  # std::min(old, new)


def _scatter_run(inputs: Sequence[np.ndarray], a: _Attrs) -> list[np.ndarray]:
    # bool data: LiteRT's C++ add/multiply of bools store nonzero as true, i.e. or/and, which is
    # what NumPy's bool + and * do
    op = "STABLEHLO_SCATTER"
    x, idx, upd = (np.asarray(v) for v in inputs)
    _scatter_check(x.shape, idx.shape, upd.shape, a)
    kind = _scatter_combiner(a)
    out = np.array(x, copy=True)
    if upd.size == 0 or x.size == 0:
        return [out]
    r, ur = x.ndim, upd.ndim
    uwd, iwd = a["update_window_dims"], a["inserted_window_dims"]
    ivd = int(a["index_vector_dim"])
    rows = _index_rows(idx, ivd)  # (batch elements, k)
    if (rows < 0).any():
        # LiteRT only skips targets past the end; a negative index writes before the buffer
        bad = rows[(rows < 0).any(axis=1)][0]
        raise OpError(f"{op}: scatter index {bad.tolist()} is negative; indices must be >= 0")
    if idx.dtype == np.int32:
        # LiteRT adds window offsets in int32: an overflow there wraps to a negative index
        wmax = max((upd.shape[d] for d in uwd), default=1) - 1
        if int(rows.max()) + wmax > np.iinfo(np.int32).max:
            raise OpError(f"{op}: scatter index {int(rows.max())} plus the window overflows int32")
    coords = np.indices(upd.shape).reshape(ur, upd.size)  # every update element, row-major
    scatter_dims = [d for d in range(ur) if d not in uwd]
    batch_shape = tuple(upd.shape[d] for d in scatter_dims)
    if scatter_dims:
        b = np.ravel_multi_index(tuple(coords[d] for d in scatter_dims), batch_shape)
    else:
        b = np.zeros(coords.shape[1], np.int64)
    target = np.zeros((coords.shape[1], r), np.int64)
    target[:, list(a["scatter_dims_to_operand_dims"])] = rows[b]
    window_dims = [d for d in range(r) if d not in iwd]
    for ud, od in zip(uwd, window_dims):
        target[:, od] += coords[ud]
    ok = (target < np.asarray(x.shape, np.int64)).all(axis=1)
    flat = np.ravel_multi_index(tuple(target[ok].T), x.shape)
    vals = upd.reshape(-1)[ok]
    # apply in rounds: round j holds each target's j-th update (in updates' order), so every
    # round writes distinct elements and repeated targets combine sequentially, like LiteRT
    order = np.argsort(flat, kind="stable")
    sf = flat[order]
    starts = np.r_[0, np.flatnonzero(sf[1:] != sf[:-1]) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, sf.size]))
    rank = np.empty_like(order)
    rank[order] = np.arange(sf.size) - group_start
    o = out.reshape(-1)
    for j in range(int(rank.max()) + 1 if rank.size else 0):
        sel = rank == j
        t = flat[sel]
        o[t] = _combine(kind, o[t], vals[sel])
    return [out]


def _scatter_cost(ins: list, outs: list, a: Any) -> Cost:
    n = int(np.prod(ins[2])) if len(ins) > 2 and ins[2] is not None else 0
    return Cost(flops=float(n), bytes=8.0 * (int(np.prod(outs[0])) + 2 * n))


define("STABLEHLO_SCATTER",
       parse=_parser(("update_window_dims", "inserted_window_dims", "scatter_dims_to_operand_dims"),
                     ("index_vector_dim", "indices_are_sorted", "unique_indices",
                      "update_computation_subgraph_index")),
       infer=_scatter_infer, reference=_scatter_run, cost=_scatter_cost, opdef=ContextOpDef, attach=_attach)


# ---- STABLEHLO_REDUCE_WINDOW --------------------------------------------------------------------

_WINDOW_BODIES = {"ADD": "add", "STABLEHLO_ADD": "add", "MUL": "mul", "STABLEHLO_MULTIPLY": "mul",
                  "MAXIMUM": "max", "STABLEHLO_MAXIMUM": "max", "MINIMUM": "min",
                  "STABLEHLO_MINIMUM": "min", "LOGICAL_AND": "and", "STABLEHLO_AND": "and",
                  "LOGICAL_OR": "or"}  # LiteRT's kernel knows STABLEHLO_OR, its resolver does not


def _window_body(a: _Attrs) -> str:
    names = _body_ops(a, "body_subgraph_index", "STABLEHLO_REDUCE_WINDOW")
    if len(names) != 1 or names[0] not in _WINDOW_BODIES:
        raise OpError(f"STABLEHLO_REDUCE_WINDOW: the body subgraph holds {names}; LiteRT supports "
                      f"exactly one of {sorted(_WINDOW_BODIES)}")
    return _WINDOW_BODIES[names[0]]


def _window_plan(shape: tuple[int, ...], a: _Attrs) -> tuple:
    op = "STABLEHLO_REDUCE_WINDOW"
    r = len(shape)
    if not 0 < r <= _MAX_REDUCE_WINDOW_RANK:
        raise OpError(f"{op}: the operand's rank must be 1..{_MAX_REDUCE_WINDOW_RANK}, got {r}")
    names = ("window_dimensions", "window_strides", "base_dilations", "window_dilations")
    vals = {}
    for n in names:
        v = a[n]
        if len(v) != r:
            raise OpError(f"{op}: {n} has {len(v)} entries, the operand has rank {r}")
        if any(x <= 0 for x in v):
            raise OpError(f"{op}: {n} {list(v)} must all be > 0")
        vals[n] = v
    pad = a["padding"]
    if len(pad) != 2 * r:
        raise OpError(f"{op}: padding has {len(pad)} entries; it needs 2 per dimension "
                      f"(low, high), {2 * r} for rank {r}")
    lo, hi = pad[0::2], pad[1::2]
    dil = tuple((d - 1) * b + 1 if d > 0 else 0 for d, b in zip(shape, vals["base_dilations"]))
    padded = tuple(d + lo_ + hi_ for d, lo_, hi_ in zip(dil, lo, hi))
    if int(np.prod([max(p, 0) for p in padded], dtype=object)) * 8 > MAX_TENSOR_BYTES:
        raise OpError(f"{op}: the dilated and padded operand {list(padded)} would exceed the "
                      f"{MAX_TENSOR_BYTES}-byte tensor limit")
    if any(p <= 0 for p in padded) and any(pad):
        # LiteRT fails at invoke with 'The padding specification of stablehlo.reduce_window
        # gives an empty tensor.' (without padding an empty operand gives an empty result)
        raise OpError(f"{op}: the (dilated, padded) operand shape {list(padded)} is empty; the padding "
                      f"{list(pad)} crops too much for input shape {list(shape)}")
    out = []
    for p, w, s, wd in zip(padded, vals["window_dimensions"], vals["window_strides"],
                           vals["window_dilations"]):
        dw = (w - 1) * wd + 1
        out.append(0 if p < dw else (p - dw) // s + 1)
    return tuple(out), lo, hi, vals


def _reduce_window_infer(ctx: InferCtx) -> list:
    _n_inputs(ctx, 2)
    dt = np.dtype(ctx.dtypes[0])
    if dt not in _REDUCE_WINDOW_TYPES:
        raise OpError(f"STABLEHLO_REDUCE_WINDOW: operand '{ctx.name(0)}' type {dt.name} is not "
                      f"supported (LiteRT takes {[t.name for t in _REDUCE_WINDOW_TYPES]})")
    _scalar_like(ctx, 1, dt, "init value")
    out, *_ = _window_plan(tuple(ctx.shapes[0]), ctx.attrs)
    body = _window_body(ctx.attrs)
    if dt == np.bool_ and body == "add":
        # LiteRT adds bools as int8 and stores 2 in a bool; we do not reproduce that
        raise OpError("STABLEHLO_REDUCE_WINDOW: an ADD body on bool data is not supported; use "
                      "LOGICAL_OR")
    return [(out, dt)]


def _fold(kind: str, acc: np.ndarray, x: np.ndarray) -> np.ndarray:
    if kind == "add":
        return acc + x
    if kind == "mul":
        return acc * x
    if kind == "max":  # acc >= x ? acc : x
        return np.where(acc >= x, acc, x)
    if kind == "min":
        return np.where(acc <= x, acc, x)
    if kind == "and":
        return ((acc != 0) & (x != 0)).astype(acc.dtype)
    return ((acc != 0) | (x != 0)).astype(acc.dtype)


def _reduce_window_run(inputs: Sequence[np.ndarray], a: _Attrs) -> list[np.ndarray]:
    x = np.asarray(inputs[0])
    init = np.asarray(inputs[1]).reshape(-1)[:1].reshape(())
    out_shape, lo, hi, v = _window_plan(x.shape, a)
    kind = _window_body(a)
    acc = np.full(out_shape, init, dtype=x.dtype)
    if 0 in out_shape:
        return [acc]
    p = _dilate_pad(x, init, v["base_dilations"], lo, hi)
    strides, wdil = v["window_strides"], v["window_dilations"]
    with np.errstate(over="ignore", invalid="ignore"):
        for w in np.ndindex(*v["window_dimensions"]):
            sl = tuple(slice(wi * d, wi * d + (n - 1) * s + 1, s)
                       for wi, d, n, s in zip(w, wdil, out_shape, strides))
            acc = _fold(kind, acc, p[sl])
    return [np.ascontiguousarray(acc, dtype=x.dtype)]


def _reduce_window_cost(ins: list, outs: list, a: Any) -> Cost:
    n = int(np.prod(outs[0])) * int(np.prod(a["window_dimensions"] or (1,)))
    return Cost(flops=float(n), bytes=4.0 * (int(np.prod(ins[0])) + int(np.prod(outs[0]))))


define("STABLEHLO_REDUCE_WINDOW",
       parse=_parser(("window_dimensions", "window_strides", "base_dilations", "window_dilations",
                      "padding"), ("body_subgraph_index",)),
       infer=_reduce_window_infer, reference=_reduce_window_run, cost=_reduce_window_cost,
       opdef=ContextOpDef, attach=_attach)


# ---- STABLEHLO_CASE / STABLEHLO_COMPOSITE -------------------------------------------------------

def _branches(a: _Attrs) -> list[int]:
    idx = a["branch_subgraph_indices"]
    if not idx:
        raise OpError("STABLEHLO_CASE: branch_subgraph_indices is empty")
    return [_subgraph(a, "branch_subgraph_indices", "STABLEHLO_CASE", si) for si in idx]


def _known(ctx: InferCtx, start: int) -> list:
    for i in range(start, len(ctx.shapes)):
        if ctx.shapes[i] is None:
            raise OpError(f"{ctx.op_name}: input {i} is omitted; every operand must be a tensor")
    return [(tuple(s), d) for s, d in zip(ctx.shapes[start:], ctx.dtypes[start:])]


def _case_infer(ctx: InferCtx) -> list:
    a = ctx.attrs
    rc = run_context(a, "STABLEHLO_CASE")
    if (not ctx.shapes or ctx.shapes[0] is None or int(np.prod(ctx.shapes[0])) != 1
            or np.dtype(ctx.dtypes[0]) != np.int32):
        raise OpError("STABLEHLO_CASE: input 0 (the branch index) must be an int32 scalar")
    ins = _known(ctx, 1)
    outs = [rc.infer(si, ins, "STABLEHLO_CASE branch") for si in _branches(a)]
    first = outs[0]
    for si, o in zip(_branches(a)[1:], outs[1:]):
        if len(o) != len(first):
            raise OpError(f"STABLEHLO_CASE: branch subgraph {si} has {len(o)} outputs, branch "
                          f"{_branches(a)[0]} has {len(first)}")
        for j, (x, y) in enumerate(zip(o, first)):
            if np.dtype(x[1]) != np.dtype(y[1]):
                raise OpError(f"STABLEHLO_CASE: output {j} is {np.dtype(x[1]).name} in branch {si} but "
                              f"{np.dtype(y[1]).name} in branch {_branches(a)[0]}")
    if any(x[0] is None or x[0] != y[0] for o in outs for x, y in zip(o, first)):
        raise Dynamic("STABLEHLO_CASE: the branches produce different shapes")
    return first


def _case_run(inputs: Sequence[np.ndarray], a: _Attrs) -> list[np.ndarray]:
    rc = run_context(a, "STABLEHLO_CASE")
    br = _branches(a)
    c = np.asarray(inputs[0])
    if c.size != 1:
        raise OpError(f"STABLEHLO_CASE: the branch index must be a scalar, got shape {list(c.shape)}")
    i = int(_first(c))
    if not 0 <= i < len(br):
        i = len(br) - 1  # the spec: an out-of-range index runs the last branch
    return rc.run(br[i], [np.asarray(x) for x in inputs[1:]])


def _composite_infer(ctx: InferCtx) -> list:
    a = ctx.attrs
    if not a["has_attributes"]:
        # LiteRT refuses such a model when it loads it ("missing required option")
        raise OpError("STABLEHLO_COMPOSITE: the required option 'composite_attributes' is missing "
                      "(give a flexbuffer, e.g. an empty map)")
    si = _subgraph(a, "decomposition_subgraph_index", "STABLEHLO_COMPOSITE")
    outs = run_context(a, "STABLEHLO_COMPOSITE").infer(si, _known(ctx, 0), "STABLEHLO_COMPOSITE decomposition")
    if any(s is None for s, _ in outs):
        raise Dynamic("STABLEHLO_COMPOSITE: the decomposition's output shapes depend on run-time data")
    return outs


def _composite_run(inputs: Sequence[np.ndarray], a: _Attrs) -> list[np.ndarray]:
    si = _subgraph(a, "decomposition_subgraph_index", "STABLEHLO_COMPOSITE")
    return run_context(a, "STABLEHLO_COMPOSITE").run(si, [np.asarray(x) for x in inputs])


def _parse_case(options: dict[str, Any]) -> _Attrs:
    key = "branch_subgraph_indices"
    return _Attrs(((key, _ints(options.get(key), key)),))


def _parse_composite(options: dict[str, Any]) -> _Attrs:
    key = "decomposition_subgraph_index"
    return _Attrs((("name", str(options.get("name") or "")),
                   (key, _int(options.get(key), key)),
                   ("version", _int(options.get("version"), "version")),
                   ("has_attributes", options.get("composite_attributes") is not None)))


define("STABLEHLO_CASE", parse=_parse_case, infer=_case_infer, reference=_case_run, opdef=ContextOpDef,
       attach=_attach)
define("STABLEHLO_COMPOSITE", parse=_parse_composite, infer=_composite_infer, reference=_composite_run,
       opdef=ContextOpDef, attach=_attach)
