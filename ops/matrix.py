"""Diagonals and sequence reversal: MATRIX_DIAG, MATRIX_SET_DIAG, REVERSE_SEQUENCE.

LiteRT behaviours followed here (ai_edge_litert, builtin kernels, probed):
* MATRIX_DIAG / MATRIX_SET_DIAG: float32, int8, uint8, int16, int32, int64. LiteRT's kernels treat
  every other type as float32 words (bool and float16 come out as garbage when probed): rejected.
  MATRIX_DIAG needs rank >= 1 ([..., N] -> [..., N, N]); MATRIX_SET_DIAG rank >= 2.
* MATRIX_SET_DIAG: LiteRT checks neither the diagonal's type nor its shape and reads
  batch * min(M, N) elements from it (out of bounds when it is smaller): here the diagonal must
  have the input's type and shape [..., min(M, N)].
* REVERSE_SEQUENCE: float32, uint8, int16, int32, int64 input (no int8, no bool); seq_lengths
  int32/int64, 1-D, one per row of batch_dim; seq_dim and batch_dim >= 0, distinct and < rank
  (LiteRT checks these at invoke; here at plan time). Each batch row reverses its first
  seq_lengths[b] entries along seq_dim; a length of 0, 1 or a negative one leaves the row as is
  (LiteRT). LiteRT bounds-checks only seq_lengths[0] against the seq_dim size and writes garbage
  for a later one that is larger: every length is checked here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops.base import InferCtx, OpError, PatternKind
from tflite_jit.ops.common import INDEX_TYPES, check_type, ctx_from_arrays, define, movement_cost, need

_DIAG_TYPES = tuple(np.dtype(t) for t in (np.float32, np.int8, np.uint8, np.int16, np.int32, np.int64))
_REVSEQ_TYPES = tuple(np.dtype(t) for t in (np.float32, np.uint8, np.int16, np.int32, np.int64))


# ---- MATRIX_DIAG ---------------------------------------------------------------------------------

def _matrix_diag_infer(ctx: InferCtx) -> list:
    need(ctx, 1, " (diagonal)")
    dt = check_type(ctx, 0, "input", _DIAG_TYPES)
    shape = tuple(ctx.shapes[0])
    if len(shape) == 0:
        raise OpError(f"MATRIX_DIAG: input '{ctx.name(0)}' must have rank >= 1 (the diagonals are its last axis)")
    return [(shape + (shape[-1],), dt)]


def _matrix_diag_ref(inputs, attrs) -> list:
    ((shape, dt),) = _matrix_diag_infer(ctx_from_arrays("MATRIX_DIAG", attrs, inputs))
    x = np.asarray(inputs[0])
    out = np.zeros(shape, dt)
    i = np.arange(shape[-1])
    out[..., i, i] = x
    return [out]


define("MATRIX_DIAG", infer=_matrix_diag_infer, reference=_matrix_diag_ref, kind=PatternKind.INJECTIVE,
       cost=movement_cost)


# ---- MATRIX_SET_DIAG -----------------------------------------------------------------------------

def _matrix_set_diag_infer(ctx: InferCtx) -> list:
    need(ctx, 2, " (input, diagonal)")
    dt = check_type(ctx, 0, "input", _DIAG_TYPES)
    shape = tuple(ctx.shapes[0])
    if len(shape) < 2:
        raise OpError(f"MATRIX_SET_DIAG: input '{ctx.name(0)}' must have rank >= 2, got shape {list(shape)}")
    if np.dtype(ctx.dtypes[1]) != dt:
        raise OpError(f"MATRIX_SET_DIAG: diagonal '{ctx.name(1)}' has type {np.dtype(ctx.dtypes[1]).name}; "
                      f"it must match the input's type {dt.name}")
    want = shape[:-2] + (min(shape[-2], shape[-1]),)
    if tuple(ctx.shapes[1]) != want:
        raise OpError(f"MATRIX_SET_DIAG: diagonal '{ctx.name(1)}' has shape {list(ctx.shapes[1])}; it must be "
                      f"{list(want)} (the input's batch dims + min(rows, cols))")
    return [(shape, dt)]


def _matrix_set_diag_ref(inputs, attrs) -> list:
    ((shape, dt),) = _matrix_set_diag_infer(ctx_from_arrays("MATRIX_SET_DIAG", attrs, inputs))
    out = np.array(inputs[0], dtype=dt, order="C", copy=True)
    i = np.arange(min(shape[-2], shape[-1]))
    out[..., i, i] = np.asarray(inputs[1])
    return [out]


define("MATRIX_SET_DIAG", infer=_matrix_set_diag_infer, reference=_matrix_set_diag_ref,
       kind=PatternKind.INJECTIVE, cost=movement_cost)


# ---- REVERSE_SEQUENCE ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ReverseSequenceAttrs:
    seq_dim: int = 0
    batch_dim: int = 0


def _parse_reverse_sequence(options: dict[str, Any]) -> ReverseSequenceAttrs:
    return ReverseSequenceAttrs(int(options.get("seq_dim", 0)), int(options.get("batch_dim", 0)))


def _check_lengths(op: str, lengths: np.ndarray, limit: int) -> None:
    bad = np.flatnonzero(np.asarray(lengths).reshape(-1).astype(np.int64) > limit)
    if bad.size:
        b = int(bad[0])
        raise OpError(f"{op}: seq_lengths[{b}] = {int(np.asarray(lengths).reshape(-1)[b])} exceeds the "
                      f"size {limit} of the sequence dimension")


def _reverse_sequence_infer(ctx: InferCtx) -> list:
    need(ctx, 2, " (input, seq_lengths)")
    dt = check_type(ctx, 0, "input", _REVSEQ_TYPES)
    check_type(ctx, 1, "seq_lengths", INDEX_TYPES)
    shape = tuple(ctx.shapes[0])
    a: ReverseSequenceAttrs = ctx.attrs
    rank = len(shape)
    for what, d in (("seq_dim", a.seq_dim), ("batch_dim", a.batch_dim)):
        if not 0 <= d < rank:
            raise OpError(f"REVERSE_SEQUENCE: {what} = {d} must lie in [0, {rank - 1}] for input "
                          f"'{ctx.name(0)}' of shape {list(shape)} (negative values are not accepted)")
    if a.seq_dim == a.batch_dim:
        raise OpError(f"REVERSE_SEQUENCE: seq_dim and batch_dim are both {a.seq_dim}; they must differ")
    if tuple(ctx.shapes[1]) != (shape[a.batch_dim],):
        raise OpError(f"REVERSE_SEQUENCE: seq_lengths '{ctx.name(1)}' has shape {list(ctx.shapes[1])}; it must "
                      f"be [{shape[a.batch_dim]}] (one length per entry of batch_dim {a.batch_dim})")
    if ctx.values[1] is not None:
        _check_lengths("REVERSE_SEQUENCE", ctx.values[1], shape[a.seq_dim])
    return [(shape, dt)]


def _reverse_sequence_ref(inputs, a: ReverseSequenceAttrs) -> list:
    ((shape, dt),) = _reverse_sequence_infer(ctx_from_arrays("REVERSE_SEQUENCE", a, inputs))
    x = np.asarray(inputs[0])
    lengths = np.asarray(inputs[1]).astype(np.int64).reshape(-1)
    _check_lengths("REVERSE_SEQUENCE", lengths, shape[a.seq_dim])
    view = [1] * len(shape)
    view[a.batch_dim] = shape[a.batch_dim]
    n = lengths.reshape(view)
    view = [1] * len(shape)
    view[a.seq_dim] = shape[a.seq_dim]
    j = np.arange(shape[a.seq_dim], dtype=np.int64).reshape(view)
    src = np.where(j < n, n - 1 - j, j)  # the first n entries reversed, the rest in place
    src = np.broadcast_to(src, shape)
    return [np.ascontiguousarray(np.take_along_axis(x, src, axis=a.seq_dim)).astype(dt, copy=False)]


define("REVERSE_SEQUENCE", parse=_parse_reverse_sequence, infer=_reverse_sequence_infer,
       reference=_reverse_sequence_ref, kind=PatternKind.INJECTIVE, cost=movement_cost)
