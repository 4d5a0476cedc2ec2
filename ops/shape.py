"""Data-movement ops: RESHAPE, SQUEEZE, EXPAND_DIMS, TRANSPOSE, CONCATENATION, PAD, PADV2,
STRIDED_SLICE, SLICE, GATHER, SHAPE, PACK, UNPACK.

All accept any dtype and keep it. Values that decide output shapes (RESHAPE's shape, TRANSPOSE's
perm, slice bounds, paddings, EXPAND_DIMS's axis) are read with `ctx.value`, which raises Dynamic
when they are only known at run time; those inputs are listed in `shape_inputs`. The reference
kernels recompute the same plan from the input arrays, so infer() and reference() never disagree.

LiteRT behaviours followed here (ai_edge_litert 2.3.0, builtin kernels):
* RESHAPE takes the new shape from input 1 only when it is a 1-D int32 tensor; otherwise from
  the `new_shape` option (absent, or the legacy [0], means a scalar). One -1 is allowed; with an
  empty input and a 0 among the given dims, the -1 becomes (product of the input's non-zero
  dims) // (product of the given non-zero dims).
* SQUEEZE with no squeeze_dims squeezes every 1; listed dims must be 1 (negative allowed).
* TRANSPOSE's perm must be int32 (LiteRT reads int64 perms as int32); negative entries count from
  the end. Duplicated entries are rejected here (LiteRT reads uninitialised memory).
* CONCATENATION rejects any fused activation and rank-0 inputs.
* PAD/PADV2: paddings (rank, 2) int32/int64, all >= 0, rank <= 5; PADV2's constant has exactly
  one element. Quantized (int8/uint8/int16) PAD without a constant pads with the output's
  zero point: OpDef.bind sets `PadAttrs.zero_point` from the output tensor.
* STRIDED_SLICE: begin/end/strides int32. `offset`: end = (clamped start) + end, and end_mask is
  ignored. LiteRT mis-sizes offset slices that do not list every dimension or that use an ellipsis
  or a new axis, and reads out of bounds when start + end runs past the dimension: all rejected
  here. Also rejected because LiteRT's kernel returns garbage: a shrink axis with a negative
  stride or an out-of-range index, more than one ellipsis, an ellipsis that covers no dimension,
  more spec entries than dimensions, ellipsis/new-axis mask bits beyond the spec's length.
* SLICE: begin >= 0, size >= -1 (-1 = to the end), begin + size <= dim.
* GATHER: out-of-range (and negative) indices fail at invoke ("gather index out of bounds").
* SHAPE: out_type must be INT32 (2) or INT64 (4); absent options mean type 0, which LiteRT rejects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tflite_jit.ops.base import InferCtx, OpError, PatternKind
from tflite_jit.ops.common import (
    I32,
    I64,
    activation_name,
    contig,
    ctx_from_arrays,
    define,
    int_values,
    movement_cost,
    need,
    norm_axis,
    same_dtype_out,
)


def _tuple_opt(v: Any) -> tuple[int, ...] | None:
    if v is None:
        return None
    return tuple(int(x) for x in np.asarray(v).reshape(-1))


# ---- RESHAPE -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReshapeAttrs:
    new_shape: tuple[int, ...] | None = None


def _parse_reshape(options: dict[str, Any]) -> ReshapeAttrs:
    return ReshapeAttrs(_tuple_opt(options.get("new_shape")))


def _reshape_target(ctx: InferCtx) -> tuple[int, ...]:
    need(ctx, 1)
    a: ReshapeAttrs = ctx.attrs
    has_tensor = (len(ctx.shapes) > 1 and ctx.shapes[1] is not None and len(ctx.shapes[1]) == 1
                  and np.dtype(ctx.dtypes[1]) == I32)
    if has_tensor:
        return tuple(int(v) for v in np.asarray(ctx.value(1, "the new shape")).reshape(-1))
    shape = a.new_shape or ()
    if shape == (0,):  # legacy converters wrote [0] for a scalar
        shape = ()
    return shape


def _reshape_infer(ctx: InferCtx) -> list:
    target = list(_reshape_target(ctx))
    in_shape = tuple(ctx.shapes[0])
    n_in = int(np.prod(in_shape, dtype=np.int64))
    stretch = [i for i, d in enumerate(target) if d == -1]
    if len(stretch) > 1:
        raise OpError(f"RESHAPE: new shape {target} for '{ctx.name(0)}' has more than one -1; "
                      "at most one dimension can be inferred")
    if any(d < -1 for d in target):
        raise OpError(f"RESHAPE: new shape {target} for '{ctx.name(0)}' contains a negative "
                      "dimension other than -1")
    if stretch:
        known = [d for i, d in enumerate(target) if i != stretch[0]]
        n_known = int(np.prod(known, dtype=np.int64))
        if n_known != 0:
            target[stretch[0]] = n_in // n_known
        elif n_in == 0:  # LiteRT: skip the zeros on both sides
            nz_in = int(np.prod([d for d in in_shape if d != 0], dtype=np.int64))
            nz_known = int(np.prod([d for d in known if d != 0], dtype=np.int64))
            target[stretch[0]] = nz_in // nz_known
        else:
            raise OpError(f"RESHAPE: cannot infer the -1 in new shape {list(_reshape_target(ctx))} "
                          f"for '{ctx.name(0)}' of shape {list(in_shape)}: the other dimensions "
                          "multiply to 0 (num_input_elements != num_output_elements)")
    n_out = int(np.prod(target, dtype=np.int64))
    if n_out != n_in:
        raise OpError(f"RESHAPE: num_input_elements != num_output_elements ({n_in} != {n_out}): "
                      f"'{ctx.name(0)}' of shape {list(in_shape)} cannot be reshaped to "
                      f"{list(_reshape_target(ctx))}; the new shape must have the same number of "
                      "elements")
    return same_dtype_out(ctx, target)


def _reshape_ref(inputs, attrs) -> list:
    (shape, _), = _reshape_infer(ctx_from_arrays("RESHAPE", attrs, inputs))
    return [np.asarray(inputs[0]).reshape(shape)]


define("RESHAPE", parse=_parse_reshape, infer=_reshape_infer, reference=_reshape_ref,
       kind=PatternKind.INJECTIVE, cost=movement_cost, shape_inputs=(1,))


# ---- SQUEEZE -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SqueezeAttrs:
    squeeze_dims: tuple[int, ...] = ()


def _parse_squeeze(options: dict[str, Any]) -> SqueezeAttrs:
    return SqueezeAttrs(_tuple_opt(options.get("squeeze_dims")) or ())


def _squeeze_infer(ctx: InferCtx) -> list:
    need(ctx, 1)
    shape = tuple(ctx.shapes[0])
    dims = ctx.attrs.squeeze_dims
    if not dims:
        return same_dtype_out(ctx, [d for d in shape if d != 1])
    drop = set()
    for d in dims:
        a = norm_axis(d, len(shape), "SQUEEZE", "squeeze_dims entry")
        if shape[a] != 1:
            raise OpError(f"SQUEEZE: cannot squeeze dimension {d} of '{ctx.name(0)}' (shape "
                          f"{list(shape)}): its size is {shape[a]}, not 1")
        drop.add(a)
    return same_dtype_out(ctx, [s for i, s in enumerate(shape) if i not in drop])


def _squeeze_ref(inputs, attrs) -> list:
    (shape, _), = _squeeze_infer(ctx_from_arrays("SQUEEZE", attrs, inputs))
    return [np.asarray(inputs[0]).reshape(shape)]


define("SQUEEZE", parse=_parse_squeeze, infer=_squeeze_infer, reference=_squeeze_ref,
       kind=PatternKind.INJECTIVE, cost=movement_cost)


# ---- EXPAND_DIMS ---------------------------------------------------------------------------------

def _expand_infer(ctx: InferCtx) -> list:
    need(ctx, 2, " (input, axis)")
    ax = int_values(ctx, 1, "axis")
    if ax.size != 1:
        raise OpError(f"EXPAND_DIMS: axis '{ctx.name(1)}' must hold exactly one value, got {ax.size}")
    shape = list(ctx.shapes[0])
    r = len(shape)
    a = int(ax.reshape(-1)[0])
    if not -r - 1 <= a <= r:
        raise OpError(f"EXPAND_DIMS: axis {a} is out of range for '{ctx.name(0)}' of rank {r} "
                      f"(valid: {-r - 1}..{r})")
    a = a + r + 1 if a < 0 else a
    return same_dtype_out(ctx, shape[:a] + [1] + shape[a:])


def _expand_ref(inputs, attrs) -> list:
    (shape, _), = _expand_infer(ctx_from_arrays("EXPAND_DIMS", attrs, inputs))
    return [np.asarray(inputs[0]).reshape(shape)]


define("EXPAND_DIMS", infer=_expand_infer, reference=_expand_ref, kind=PatternKind.INJECTIVE,
       cost=movement_cost, shape_inputs=(1,))


# ---- TRANSPOSE -----------------------------------------------------------------------------------

def _transpose_perm(ctx: InferCtx) -> list[int]:
    need(ctx, 2, " (input, perm)")
    perm = int_values(ctx, 1, "perm", (I32,)).reshape(-1).tolist()
    r = len(ctx.shapes[0])
    if len(perm) != r:
        raise OpError(f"TRANSPOSE: perm '{ctx.name(1)}' has {len(perm)} entries but the input "
                      f"'{ctx.name(0)}' has rank {r}")
    out = [norm_axis(p, r, "TRANSPOSE", "perm entry") for p in perm]
    if sorted(out) != list(range(r)):
        raise OpError(f"TRANSPOSE: perm {perm} is not a permutation of 0..{r - 1}")
    return out


def _transpose_infer(ctx: InferCtx) -> list:
    perm = _transpose_perm(ctx)
    shape = ctx.shapes[0]
    return same_dtype_out(ctx, [shape[p] for p in perm])


def _transpose_ref(inputs, attrs) -> list:
    perm = _transpose_perm(ctx_from_arrays("TRANSPOSE", attrs, inputs))
    return [contig(np.transpose(np.asarray(inputs[0]), perm))]


define("TRANSPOSE", infer=_transpose_infer, reference=_transpose_ref, kind=PatternKind.INJECTIVE,
       cost=movement_cost, shape_inputs=(1,))


# ---- CONCATENATION -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConcatAttrs:
    axis: int = 0
    activation: str = "NONE"


def _parse_concat(options: dict[str, Any]) -> ConcatAttrs:
    return ConcatAttrs(int(options.get("axis", 0)),
                       activation_name(options.get("fused_activation_function", 0)))


def _concat_infer(ctx: InferCtx) -> list:
    a: ConcatAttrs = ctx.attrs
    n = len(ctx.shapes)
    if n < 1 or any(s is None for s in ctx.shapes):
        raise OpError("CONCATENATION: needs at least one input and no omitted inputs")
    if a.activation != "NONE":
        raise OpError(f"CONCATENATION: fused activation {a.activation} is not supported by "
                      "LiteRT's kernel; use a separate activation op")
    s0 = tuple(ctx.shapes[0])
    if len(s0) == 0:
        raise OpError(f"CONCATENATION: input '{ctx.name(0)}' is a scalar; inputs need rank >= 1")
    ax = norm_axis(a.axis, len(s0), "CONCATENATION")
    d0 = np.dtype(ctx.dtypes[0])
    total = 0
    for i in range(n):
        s = tuple(ctx.shapes[i])
        if np.dtype(ctx.dtypes[i]) != d0:
            raise OpError(f"CONCATENATION: input '{ctx.name(i)}' has type {np.dtype(ctx.dtypes[i]).name}"
                          f" but '{ctx.name(0)}' has {d0.name}; all inputs must have the same type")
        if len(s) != len(s0) or any(x != y for k, (x, y) in enumerate(zip(s, s0)) if k != ax):
            raise OpError(f"CONCATENATION: input '{ctx.name(i)}' has shape {list(s)}, incompatible "
                          f"with '{ctx.name(0)}' {list(s0)} for axis {a.axis}: all dimensions "
                          "except the axis must match")
        total += s[ax]
    out = list(s0)
    out[ax] = total
    return same_dtype_out(ctx, out)


def _concat_ref(inputs, attrs) -> list:
    ctx = _concat_infer(ctx_from_arrays("CONCATENATION", attrs, inputs))
    ax = norm_axis(attrs.axis, len(ctx[0][0]), "CONCATENATION")
    return [np.concatenate([np.asarray(x) for x in inputs], axis=ax)]


define("CONCATENATION", parse=_parse_concat, infer=_concat_infer, reference=_concat_ref,
       kind=PatternKind.INJECTIVE, cost=movement_cost)


# ---- PAD / PADV2 ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class PadAttrs:
    """`zero_point`: for quantized PAD (no constant input) LiteRT pads with the output's zero
    point; OpDef.bind (`bind_pad_zero_point`) sets it. 0 for unquantized tensors."""

    zero_point: int = 0


def _parse_pad(options: dict[str, Any]) -> PadAttrs:
    return PadAttrs()


def bind_pad_zero_point(attrs: PadAttrs, output_tensor: Any) -> PadAttrs:
    """Return attrs with the zero point of `output_tensor` (an ir.model.Tensor) when quantized."""
    q = getattr(output_tensor, "quantization", None)
    if q is None or q.zero_points is None or np.size(q.zero_points) == 0:
        return attrs
    return replace(attrs, zero_point=int(np.asarray(q.zero_points).reshape(-1)[0]))


def _pad_plan(ctx: InferCtx) -> np.ndarray:
    need(ctx, 2, " (input, paddings)")
    r = len(ctx.shapes[0])
    if r > 5:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' has rank {r}; LiteRT's PAD supports "
                      "rank <= 5 (reshape to fewer dimensions first)")
    pads = int_values(ctx, 1, "paddings")
    if pads.shape != (r, 2):
        raise OpError(f"{ctx.op_name}: paddings '{ctx.name(1)}' has shape {list(pads.shape)}; it "
                      f"must be [{r}, 2] for a rank-{r} input")
    if (pads < 0).any():
        raise OpError(f"{ctx.op_name}: paddings '{ctx.name(1)}' = {pads.tolist()} contain a negative "
                      "value; paddings must be >= 0")
    return pads


def _pad_infer(ctx: InferCtx) -> list:
    pads = _pad_plan(ctx)
    if ctx.op_name == "PADV2" and len(ctx.shapes) > 2 and ctx.shapes[2] is not None:
        n = int(np.prod(ctx.shapes[2], dtype=np.int64))
        if n != 1:
            raise OpError(f"PADV2: constant_values '{ctx.name(2)}' has {n} elements; it must hold "
                          "exactly one")
        if np.dtype(ctx.dtypes[2]) != np.dtype(ctx.dtypes[0]):
            raise OpError(f"PADV2: constant_values '{ctx.name(2)}' has type {np.dtype(ctx.dtypes[2]).name}"
                          f" but the input has {np.dtype(ctx.dtypes[0]).name}; they must match")
    shape = [d + int(p[0]) + int(p[1]) for d, p in zip(ctx.shapes[0], pads)]
    return same_dtype_out(ctx, shape)


def _pad_ref_for(name: str):
    def ref(inputs, attrs) -> list:
        ctx = ctx_from_arrays(name, attrs, inputs)
        _pad_infer(ctx)
        pads = _pad_plan(ctx)
        x = np.asarray(inputs[0])
        if name == "PADV2" and len(inputs) > 2 and inputs[2] is not None:
            value = np.asarray(inputs[2]).reshape(-1)[0]
        else:
            value = attrs.zero_point
        if x.ndim == 0:
            return [contig(x)]
        return [np.pad(x, pads.tolist(), mode="constant", constant_values=x.dtype.type(value))]
    return ref


def _pad_bind(attrs: PadAttrs, inputs: list, outputs: list) -> PadAttrs:
    return bind_pad_zero_point(attrs, outputs[0]) if outputs else attrs


define("PAD", parse=_parse_pad, infer=_pad_infer, reference=_pad_ref_for("PAD"), kind=PatternKind.INJECTIVE,
       cost=movement_cost, shape_inputs=(1,), bind=_pad_bind)
define("PADV2", parse=_parse_pad, infer=_pad_infer, reference=_pad_ref_for("PADV2"),
       kind=PatternKind.INJECTIVE, cost=movement_cost, shape_inputs=(1,))


# ---- STRIDED_SLICE -------------------------------------------------------------------------------

@dataclass(frozen=True)
class StridedSliceAttrs:
    begin_mask: int = 0
    end_mask: int = 0
    ellipsis_mask: int = 0
    new_axis_mask: int = 0
    shrink_axis_mask: int = 0
    offset: bool = False


def _parse_strided_slice(options: dict[str, Any]) -> StridedSliceAttrs:
    return StridedSliceAttrs(*(int(options.get(k, 0)) for k in (
        "begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")),
        offset=bool(options.get("offset", False)))


def _clamp_index(v: int, dim: int, stride: int) -> int:
    if v < 0:
        v += dim
    return min(max(v, 0), dim) if stride > 0 else min(max(v, -1), dim - 1)


def _strided_slice_plan(ctx: InferCtx):
    """-> (effective input shape, per-dim (start, stop, stride), output shape)."""
    need(ctx, 4, " (input, begin, end, strides)")
    a: StridedSliceAttrs = ctx.attrs
    name = "STRIDED_SLICE"
    vals = [int_values(ctx, i, w, (I32,)).reshape(-1) for i, w in
            ((1, "begin"), (2, "end"), (3, "strides"))]
    for i in (1, 2, 3):
        if len(ctx.shapes[i]) != 1:
            raise OpError(f"{name}: '{ctx.name(i)}' must be 1-D, got shape {list(ctx.shapes[i])}")
    begin, end, strides = vals
    n = len(begin)
    if len(end) != n or len(strides) != n:
        raise OpError(f"{name}: begin, end and strides must have the same length, got "
                      f"{len(begin)}, {len(end)}, {len(strides)}")
    in_shape = [int(d) for d in ctx.shapes[0]]
    rank = len(in_shape)
    spec_bits = (1 << n) - 1
    for mask, what in ((a.ellipsis_mask, "ellipsis_mask"), (a.new_axis_mask, "new_axis_mask")):
        if mask & ~spec_bits:
            raise OpError(f"{name}: {what} {mask:#b} has bits beyond the {n} slice entries; "
                          "LiteRT's kernel misreads them")
    ell = [i for i in range(n) if a.ellipsis_mask >> i & 1]
    if len(ell) > 1:
        raise OpError(f"{name}: ellipsis_mask {a.ellipsis_mask:#b} marks more than one ellipsis")
    new_axis = [i for i in range(n) if (a.new_axis_mask >> i & 1) and i not in ell]
    consuming = n - len(ell) - len(new_axis)
    if consuming > rank:
        raise OpError(f"{name}: {consuming} slice entries index a rank-{rank} input "
                      f"'{ctx.name(0)}'; there can be at most {rank}")
    if a.offset and (ell or new_axis or consuming < rank):
        raise OpError(f"{name}: with offset=true the slice must give begin/end/strides for every "
                      f"dimension of '{ctx.name(0)}' (rank {rank}, {consuming} given) and use no "
                      "ellipsis or new axis; LiteRT's kernel mis-sizes the other dimensions")
    # dense spec: one entry per effective (input or new) dimension
    entries: list[tuple] = []  # ("new",) | ("full", in_dim) | ("idx", spec_i, in_dim)
    in_dim = 0
    for i in range(n):
        if i in ell:
            cover = rank - consuming
            if cover == 0:
                raise OpError(f"{name}: the ellipsis at slice entry {i} covers no dimension of the "
                              f"rank-{rank} input; LiteRT's kernel mis-slices that case, drop it")
            for _ in range(cover):
                entries.append(("full", in_dim))
                in_dim += 1
        elif i in new_axis:
            entries.append(("new",))
        else:
            entries.append(("idx", i, in_dim))
            in_dim += 1
    while in_dim < rank:  # implicit trailing ellipsis
        entries.append(("full", in_dim))
        in_dim += 1
    eff_shape, plan, out_shape = [], [], []
    for e in entries:
        if e[0] == "new":
            eff_shape.append(1)
            plan.append((0, 1, 1))
            out_shape.append(1)
            continue
        dim = in_shape[e[-1]]
        eff_shape.append(dim)
        if e[0] == "full":
            plan.append((0, dim, 1))
            out_shape.append(dim)
            continue
        i = e[1]
        b, en, s = int(begin[i]), int(end[i]), int(strides[i])
        if s == 0:
            raise OpError(f"{name}: stride of slice entry {i} is 0; strides must be non-zero")
        bit = 1 << i
        if a.begin_mask & bit:
            start = 0 if s > 0 else dim - 1
        else:
            start = _clamp_index(b, dim, s)
        if a.shrink_axis_mask & bit:
            if s < 0:
                raise OpError(f"{name}: slice entry {i} shrinks an axis with stride {s}; only a "
                              "positive stride is allowed on an indexing entry")
            if not a.begin_mask & bit and not -dim <= b < dim:
                raise OpError(f"{name}: index {b} of slice entry {i} is out of bounds for dimension "
                              f"{e[-1]} of size {dim} of '{ctx.name(0)}'")
            if dim == 0:
                raise OpError(f"{name}: slice entry {i} indexes an empty dimension")
            plan.append((start, start + 1, 1))
            continue
        if a.offset:
            stop = start + en
            lo, hi = (0, dim) if s > 0 else (-1, dim - 1)
            if not lo <= stop <= hi:
                raise OpError(f"{name}: with offset=true, slice entry {i} ends at {start} + {en} = "
                              f"{stop}, outside dimension {e[-1]} of size {dim} of '{ctx.name(0)}' "
                              "(LiteRT's kernel reads past the tensor there)")
        elif a.end_mask & bit:
            stop = dim if s > 0 else -1
        else:
            stop = _clamp_index(en, dim, s)
        size = max(0, -(-(stop - start) // s)) if s > 0 else max(0, -(-(start - stop) // -s))
        plan.append((start, stop, s))
        out_shape.append(size)
    return eff_shape, plan, out_shape


def _strided_slice_infer(ctx: InferCtx) -> list:
    return same_dtype_out(ctx, _strided_slice_plan(ctx)[2])


def _strided_slice_ref(inputs, attrs) -> list:
    eff, plan, out = _strided_slice_plan(ctx_from_arrays("STRIDED_SLICE", attrs, inputs))
    x = np.asarray(inputs[0]).reshape(eff)
    idx = []
    for start, stop, s in plan:
        if (stop - start) * s <= 0:
            idx.append(slice(0, 0, 1))
        else:
            idx.append(slice(start, stop if stop >= 0 else None, s))
    return [contig(x[tuple(idx)]).reshape(out)]


define("STRIDED_SLICE", parse=_parse_strided_slice, infer=_strided_slice_infer, reference=_strided_slice_ref,
       kind=PatternKind.INJECTIVE, cost=movement_cost, shape_inputs=(1, 2, 3))


# ---- SLICE ---------------------------------------------------------------------------------------

def _slice_plan(ctx: InferCtx) -> tuple[list[int], list[int]]:
    need(ctx, 3, " (input, begin, size)")
    begin = int_values(ctx, 1, "begin").reshape(-1).tolist()
    size = int_values(ctx, 2, "size").reshape(-1).tolist()
    shape = list(ctx.shapes[0])
    r = len(shape)
    if len(begin) != r or len(size) != r:
        raise OpError(f"SLICE: begin ({len(begin)} values) and size ({len(size)} values) must each "
                      f"have one value per dimension of '{ctx.name(0)}' (rank {r})")
    out = []
    for d, (b, s, dim) in enumerate(zip(begin, size, shape)):
        if b < 0:
            raise OpError(f"SLICE: begin[{d}] = {b} is negative (Invalid begin); begin must be >= 0")
        if s < -1:
            raise OpError(f"SLICE: size[{d}] = {s} is invalid; size must be >= 0 or -1 (to the end)")
        s = dim - b if s == -1 else s
        if b + s > dim or s < 0:
            raise OpError(f"SLICE: begin[{d}] = {b} with size {size[d]} runs past dimension {d} of "
                          f"'{ctx.name(0)}' (size {dim}) (Invalid begin and size)")
        out.append(s)
    return begin, out


def _slice_infer(ctx: InferCtx) -> list:
    return same_dtype_out(ctx, _slice_plan(ctx)[1])


def _slice_ref(inputs, attrs) -> list:
    begin, size = _slice_plan(ctx_from_arrays("SLICE", attrs, inputs))
    x = np.asarray(inputs[0])
    return [contig(x[tuple(slice(b, b + s) for b, s in zip(begin, size))])]


define("SLICE", infer=_slice_infer, reference=_slice_ref, kind=PatternKind.INJECTIVE, cost=movement_cost,
       shape_inputs=(1, 2))


# ---- GATHER --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GatherAttrs:
    axis: int = 0
    batch_dims: int = 0


def _parse_gather(options: dict[str, Any]) -> GatherAttrs:
    return GatherAttrs(int(options.get("axis", 0)), int(options.get("batch_dims", 0)))


GATHER_INDEX_TYPES = (np.dtype(np.int16), I32, I64)


def _gather_axes(ctx: InferCtx) -> tuple[int, int]:
    need(ctx, 2, " (params, indices)")
    a: GatherAttrs = ctx.attrs
    ps, ids = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
    if np.dtype(ctx.dtypes[1]) not in GATHER_INDEX_TYPES:
        raise OpError(f"GATHER: indices '{ctx.name(1)}' have type {np.dtype(ctx.dtypes[1]).name}; "
                      "they must be int16, int32 or int64")
    axis = norm_axis(a.axis, len(ps), "GATHER")
    bd = a.batch_dims + len(ids) if a.batch_dims < 0 else a.batch_dims
    if not 0 <= bd <= len(ids):
        raise OpError(f"GATHER: batch_dims {a.batch_dims} is out of range for indices "
                      f"'{ctx.name(1)}' of rank {len(ids)}")
    if bd > axis:
        raise OpError(f"GATHER: batch_dims ({a.batch_dims}) must be <= axis ({a.axis})")
    if ps[:bd] != ids[:bd]:
        raise OpError(f"GATHER: the first {bd} (batch) dimensions of params '{ctx.name(0)}' "
                      f"{list(ps)} and indices '{ctx.name(1)}' {list(ids)} must match")
    return axis, bd


def _gather_infer(ctx: InferCtx) -> list:
    axis, bd = _gather_axes(ctx)
    ps, ids = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
    return same_dtype_out(ctx, ps[:axis] + ids[bd:] + ps[axis + 1:])


def _gather_ref(inputs, attrs) -> list:
    ctx = ctx_from_arrays("GATHER", attrs, inputs)
    axis, bd = _gather_axes(ctx)
    params, idx = np.asarray(inputs[0]), np.asarray(inputs[1]).astype(np.int64)
    n = params.shape[axis]
    bad = np.flatnonzero((idx < 0) | (idx >= n))
    if bad.size:
        raise OpError(f"GATHER: gather index out of bounds: index {int(idx.reshape(-1)[bad[0]])} "
                      f"(element {int(bad[0])} of the indices) is outside [0, {n}) for axis "
                      f"{attrs.axis} of params shaped {list(params.shape)}")
    out_shape = params.shape[:axis] + idx.shape[bd:] + params.shape[axis + 1:]
    if bd == 0:
        return [np.take(params, idx, axis=axis)]
    # batched: flatten the batch dims to one, index (batch, position) together, then move the
    # gathered index dims behind the params dims that precede the axis
    B = int(np.prod(params.shape[:bd], dtype=np.int64))
    p = np.moveaxis(params.reshape((B,) + params.shape[bd:]), axis - bd + 1, 1)  # (B, n, mid, tail)
    q = idx.reshape((B,) + idx.shape[bd:])
    k, m = q.ndim - 1, axis - bd
    r = p[np.arange(B).reshape((B,) + (1,) * k), q]  # (B, qrest, mid, tail)
    order = [0, *range(k + 1, k + 1 + m), *range(1, k + 1), *range(k + 1 + m, r.ndim)]
    return [contig(r.transpose(order)).reshape(out_shape)]


define("GATHER", parse=_parse_gather, infer=_gather_infer, reference=_gather_ref, kind=PatternKind.INJECTIVE,
       cost=movement_cost)


# ---- SHAPE ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShapeAttrs:
    out_type: int = 0  # TensorType code; 2 = INT32, 4 = INT64


def _parse_shape(options: dict[str, Any]) -> ShapeAttrs:
    return ShapeAttrs(int(options.get("out_type", 0)))


_SHAPE_TYPES = {2: I32, 4: I64}


def _shape_infer(ctx: InferCtx) -> list:
    need(ctx, 1)
    dt = _SHAPE_TYPES.get(ctx.attrs.out_type)
    if dt is None:
        raise OpError(f"SHAPE: out_type {ctx.attrs.out_type} is not supported (Unknown shape output "
                      "data type); it must be INT32 (2) or INT64 (4)")
    return [((len(ctx.shapes[0]),), dt)]


def _shape_ref(inputs, attrs) -> list:
    (_, dt), = _shape_infer(ctx_from_arrays("SHAPE", attrs, inputs))
    return [np.asarray(np.shape(inputs[0]), dtype=dt).reshape(-1)]


define("SHAPE", parse=_parse_shape, infer=_shape_infer, reference=_shape_ref, cost=movement_cost)


# ---- PACK / UNPACK -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PackAttrs:
    values_count: int = 0
    axis: int = 0


def _parse_pack(options: dict[str, Any]) -> PackAttrs:
    return PackAttrs(int(options.get("values_count", 0)), int(options.get("axis", 0)))


def _pack_axis(ctx: InferCtx) -> int:
    a: PackAttrs = ctx.attrs
    n = len(ctx.shapes)
    if n < 1 or any(s is None for s in ctx.shapes):
        raise OpError("PACK: needs at least one input and no omitted inputs")
    if a.values_count != n:
        raise OpError(f"PACK: values_count is {a.values_count} but the op has {n} inputs; they "
                      "must be equal")
    s0, d0 = tuple(ctx.shapes[0]), np.dtype(ctx.dtypes[0])
    for i in range(1, n):
        if tuple(ctx.shapes[i]) != s0 or np.dtype(ctx.dtypes[i]) != d0:
            raise OpError(f"PACK: input '{ctx.name(i)}' ({np.dtype(ctx.dtypes[i]).name} "
                          f"{list(ctx.shapes[i])}) differs from '{ctx.name(0)}' ({d0.name} "
                          f"{list(s0)}); all inputs must have the same shape and type")
    r = len(s0)
    return norm_axis(a.axis, r + 1, "PACK")


def _pack_infer(ctx: InferCtx) -> list:
    ax = _pack_axis(ctx)
    s0 = list(ctx.shapes[0])
    return same_dtype_out(ctx, s0[:ax] + [len(ctx.shapes)] + s0[ax:])


def _pack_ref(inputs, attrs) -> list:
    ax = _pack_axis(ctx_from_arrays("PACK", attrs, inputs))
    return [np.stack([np.asarray(x) for x in inputs], axis=ax)]


define("PACK", parse=_parse_pack, infer=_pack_infer, reference=_pack_ref, kind=PatternKind.INJECTIVE,
       cost=movement_cost)


@dataclass(frozen=True)
class UnpackAttrs:
    num: int = 0
    axis: int = 0


def _parse_unpack(options: dict[str, Any]) -> UnpackAttrs:
    return UnpackAttrs(int(options.get("num", 0)), int(options.get("axis", 0)))


def _unpack_axis(ctx: InferCtx) -> int:
    need(ctx, 1)
    a: UnpackAttrs = ctx.attrs
    shape = tuple(ctx.shapes[0])
    ax = norm_axis(a.axis, len(shape), "UNPACK")
    if a.num != shape[ax]:
        raise OpError(f"UNPACK: num is {a.num} but dimension {a.axis} of '{ctx.name(0)}' "
                      f"{list(shape)} has size {shape[ax]}; they must be equal (and the op must "
                      "have that many outputs)")
    return ax


def _unpack_infer(ctx: InferCtx) -> list:
    ax = _unpack_axis(ctx)
    shape = list(ctx.shapes[0])
    out = shape[:ax] + shape[ax + 1:]
    return [(tuple(out), np.dtype(ctx.dtypes[0]))] * ctx.attrs.num


def _unpack_ref(inputs, attrs) -> list:
    ax = _unpack_axis(ctx_from_arrays("UNPACK", attrs, inputs))
    x = np.asarray(inputs[0])
    return [contig(np.take(x, i, axis=ax)) for i in range(attrs.num)]


define("UNPACK", parse=_parse_unpack, infer=_unpack_infer, reference=_unpack_ref, kind=PatternKind.INJECTIVE,
       cost=movement_cost)
