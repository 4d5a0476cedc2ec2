"""Data movement and generators: FILL, RANGE, TILE, BROADCAST_TO, BROADCAST_ARGS, SPLIT, SPLIT_V,
REVERSE_V2, MIRROR_PAD, SPACE_TO_DEPTH, DEPTH_TO_SPACE, SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND.

Values that decide output shapes (FILL's dims, RANGE's bounds, TILE's multiples, split sizes,
paddings, block shapes) are read with `ctx.value`, which raises Dynamic when they are only known
at run time; those inputs are listed in `shape_inputs`. The reference kernels rebuild an InferCtx
from the arrays and reuse the same plan, so infer() and reference() never disagree.

LiteRT behaviours followed here (ai_edge_litert 2.3.0, builtin kernels):
* SPLIT reads its axis from input 0 and the tensor from input 1; SPLIT_V is (tensor, sizes, axis).
  Neither takes bool.
* REVERSE_V2: axis int32 only, and the axes must be adjacent dimensions (LiteRT fails at invoke
  with "Non-contiguous `axes` not supported"): rejected at plan time here.
* SPACE_TO_DEPTH / DEPTH_TO_SPACE take float32, uint8, int8, int32, int64 (no int16, no bool).
* SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND: 3-D or 4-D input; block_shape and paddings/crops int32
  (LiteRT reads int64 ones as int32 words and fails).
* BROADCAST_TO exists in LiteRT from op version 2 (version 1 does not resolve).
* RANGE: delta 0, or a delta pointing away from limit, is an error; the length is
  ceil(|limit - start| / |delta|). Bounds known only at run time make the output run-time
  sized (Dynamic). An empty result is a [0] tensor here; LiteRT's get_tensor raises
  "Invalid tensor size" on it (its buffer is never allocated).
* FILL dims, TILE multiples, BROADCAST_TO/ARGS shapes, MIRROR_PAD paddings: int32 or int64 only.
* MIRROR_PAD: REFLECT pads at most dim - 1, SYMMETRIC at most dim, per side.
* SPACE_TO_DEPTH / DEPTH_TO_SPACE are NHWC, DCR order (TensorFlow's default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops.base import InferCtx, OpError, PatternKind
from tflite_jit.ops.common import (
    F32,
    I32,
    I64,
    INDEX_TYPES,
    broadcast_shapes,
    contig,
    ctx_from_arrays,
    define,
    int_values,
    movement_cost,
    need,
    norm_axis,
    same_dtype_out,
)


def _ints(ctx: InferCtx, i: int, what: str, types=INDEX_TYPES) -> list[int]:
    return [int(v) for v in int_values(ctx, i, what, types).reshape(-1)]


def _scalar_like(ctx: InferCtx, i: int, what: str) -> None:
    if int(np.prod(ctx.shapes[i], dtype=np.int64)) != 1:
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' must hold exactly one value, "
                      f"got shape {list(ctx.shapes[i])}")


# ---- FILL ----------------------------------------------------------------------------------------

def _fill_infer(ctx: InferCtx) -> list:
    need(ctx, 2, " (dims, value)")
    if len(ctx.shapes[0]) != 1:
        raise OpError(f"FILL: dims '{ctx.name(0)}' must be 1-D, got shape {list(ctx.shapes[0])}")
    if len(ctx.shapes[1]) != 0:
        raise OpError(f"FILL: value '{ctx.name(1)}' must be a scalar, got shape {list(ctx.shapes[1])}")
    dims = _ints(ctx, 0, "dims")
    if any(d < 0 for d in dims):
        raise OpError(f"FILL: dims '{ctx.name(0)}' = {dims} has a negative dimension")
    return [(tuple(dims), np.dtype(ctx.dtypes[1]))]


def _fill_ref(inputs, attrs) -> list:
    ((shape, dt),) = _fill_infer(ctx_from_arrays("FILL", attrs, inputs))
    return [np.full(shape, np.asarray(inputs[1]).reshape(()), dtype=dt)]


define("FILL", infer=_fill_infer, reference=_fill_ref, kind=PatternKind.INJECTIVE, cost=movement_cost,
       shape_inputs=(0,))


# ---- RANGE ---------------------------------------------------------------------------------------

_RANGE_TYPES = (I32, I64, F32)


def _range_plan(ctx: InferCtx) -> tuple[Any, Any, Any, int]:
    need(ctx, 3, " (start, limit, delta)")
    dt = np.dtype(ctx.dtypes[0])
    if dt not in _RANGE_TYPES or any(np.dtype(ctx.dtypes[i]) != dt for i in (1, 2)):
        raise OpError(f"RANGE: start '{ctx.name(0)}', limit '{ctx.name(1)}' and delta '{ctx.name(2)}' "
                      f"must share one type of int32, int64, float32; got "
                      f"{', '.join(np.dtype(d).name for d in ctx.dtypes[:3])}")
    for i, what in enumerate(("start", "limit", "delta")):
        if len(ctx.shapes[i]) != 0:
            raise OpError(f"RANGE: {what} '{ctx.name(i)}' must be a scalar, got shape {list(ctx.shapes[i])}")
    start, limit, delta = (np.asarray(ctx.value(i, w)).reshape(()).item()
                           for i, w in enumerate(("start", "limit", "delta")))
    if delta == 0:
        raise OpError(f"RANGE: delta '{ctx.name(2)}' must not be 0")
    if (start > limit and delta > 0) or (start < limit and delta < 0):
        raise OpError(f"RANGE: delta {delta} points away from limit {limit} (start {start}); "
                      "use a delta with the sign of limit - start")
    if dt.kind == "f":
        n = int(np.ceil(abs((np.float32(limit) - np.float32(start)) / np.float32(delta))))
    else:
        n = (abs(limit - start) + abs(delta) - 1) // abs(delta)
    return start, limit, delta, n


def _range_infer(ctx: InferCtx) -> list:
    n = _range_plan(ctx)[3]
    return [((n,), np.dtype(ctx.dtypes[0]))]


def _range_ref(inputs, attrs) -> list:
    start, _, delta, n = _range_plan(ctx_from_arrays("RANGE", attrs, inputs))
    dt = np.asarray(inputs[0]).dtype
    if dt.kind == "f":
        return [(np.float32(start) + np.arange(n, dtype=np.float32) * np.float32(delta)).astype(dt)]
    return [(start + np.arange(n, dtype=np.int64) * delta).astype(dt)]


define("RANGE", infer=_range_infer, reference=_range_ref, cost=movement_cost, shape_inputs=(0, 1, 2))


# ---- TILE ----------------------------------------------------------------------------------------

def _tile_infer(ctx: InferCtx) -> list:
    need(ctx, 2, " (input, multiples)")
    shape = tuple(ctx.shapes[0])
    if tuple(ctx.shapes[1]) != (len(shape),):
        raise OpError(f"TILE: multiples '{ctx.name(1)}' must have shape [{len(shape)}] (one per "
                      f"dimension of '{ctx.name(0)}'), got {list(ctx.shapes[1])}")
    mult = _ints(ctx, 1, "multiples")
    if any(m < 0 for m in mult):
        raise OpError(f"TILE: multiples '{ctx.name(1)}' = {mult} must be >= 0")
    return same_dtype_out(ctx, [d * m for d, m in zip(shape, mult)])


def _tile_ref(inputs, attrs) -> list:
    ctx = ctx_from_arrays("TILE", attrs, inputs)
    _tile_infer(ctx)
    return [contig(np.tile(inputs[0], _ints(ctx, 1, "multiples")).reshape(
        _tile_infer(ctx)[0][0]))]


define("TILE", infer=_tile_infer, reference=_tile_ref, kind=PatternKind.INJECTIVE, cost=movement_cost,
       shape_inputs=(1,))


# ---- BROADCAST_TO / BROADCAST_ARGS ---------------------------------------------------------------

def _broadcast_to_infer(ctx: InferCtx) -> list:
    need(ctx, 2, " (input, shape)")
    if len(ctx.shapes[1]) != 1:
        raise OpError(f"BROADCAST_TO: shape '{ctx.name(1)}' must be 1-D, got {list(ctx.shapes[1])}")
    target = tuple(_ints(ctx, 1, "shape"))
    shape = tuple(ctx.shapes[0])
    if len(target) > 8:
        raise OpError(f"BROADCAST_TO: the target shape {list(target)} has rank > 8")
    if len(shape) > len(target):
        raise OpError(f"BROADCAST_TO: input '{ctx.name(0)}' {list(shape)} has a higher rank than "
                      f"the target shape {list(target)}")
    for d, t in zip(shape[::-1], target[::-1]):
        if d != t and d != 1:
            raise OpError(f"BROADCAST_TO: input '{ctx.name(0)}' {list(shape)} cannot be broadcast "
                          f"to {list(target)}; each dimension must equal the target's or be 1")
    if any(t < 0 for t in target):
        raise OpError(f"BROADCAST_TO: the target shape {list(target)} has a negative dimension")
    return same_dtype_out(ctx, target)


def _broadcast_to_ref(inputs, attrs) -> list:
    ((shape, _),) = _broadcast_to_infer(ctx_from_arrays("BROADCAST_TO", attrs, inputs))
    return [contig(np.broadcast_to(inputs[0], shape))]


define("BROADCAST_TO", infer=_broadcast_to_infer, reference=_broadcast_to_ref, kind=PatternKind.BROADCAST,
       cost=movement_cost, shape_inputs=(1,))


def _broadcast_args_infer(ctx: InferCtx) -> list:
    need(ctx, 2, " (shape0, shape1)")
    d0, d1 = np.dtype(ctx.dtypes[0]), np.dtype(ctx.dtypes[1])
    if d0 != d1 or d0 not in INDEX_TYPES:
        raise OpError(f"BROADCAST_ARGS: '{ctx.name(0)}' ({d0.name}) and '{ctx.name(1)}' ({d1.name}) "
                      "must both be int32 or both int64")
    for i in (0, 1):
        if len(ctx.shapes[i]) != 1:
            raise OpError(f"BROADCAST_ARGS: '{ctx.name(i)}' must be a 1-D shape, got {list(ctx.shapes[i])}")
    return [((max(ctx.shapes[0][0], ctx.shapes[1][0]),), d0)]


def _broadcast_args_ref(inputs, attrs) -> list:
    _broadcast_args_infer(ctx_from_arrays("BROADCAST_ARGS", attrs, inputs))
    a, b = (tuple(int(v) for v in np.asarray(x).reshape(-1)) for x in inputs[:2])
    return [np.asarray(broadcast_shapes(a, b, "BROADCAST_ARGS"), dtype=np.asarray(inputs[0]).dtype)
            .reshape(-1)]


define("BROADCAST_ARGS", infer=_broadcast_args_infer, reference=_broadcast_args_ref, cost=movement_cost)


# ---- SPLIT / SPLIT_V -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SplitAttrs:
    num_splits: int = 0


def _parse_split(options: dict[str, Any]) -> SplitAttrs:
    return SplitAttrs(int(options.get("num_splits", 0)))


_SPLIT_TYPES = tuple(np.dtype(t) for t in (np.float32, np.uint8, np.int8, np.int16, np.int32, np.int64))


def _axis_value(ctx: InferCtx, i: int, rank: int) -> int:
    _scalar_like(ctx, i, "axis")
    src = 1 if ctx.op_name == "SPLIT" else 0
    dt = np.dtype(ctx.dtypes[src])
    if dt not in _SPLIT_TYPES:  # LiteRT: "is_supported_type was not true" (bool included)
        raise OpError(f"{ctx.op_name}: input '{ctx.name(src)}' has type {dt.name}; supported: "
                      f"{', '.join(t.name for t in _SPLIT_TYPES)}")
    (axis,) = _ints(ctx, i, "axis")
    return norm_axis(axis, rank, ctx.op_name)


def _split_plan(ctx: InferCtx) -> tuple[int, list[int]]:
    need(ctx, 2, " (axis, input)")
    shape = tuple(ctx.shapes[1])
    axis = _axis_value(ctx, 0, len(shape))
    n = ctx.attrs.num_splits
    if n <= 0:
        raise OpError(f"SPLIT: num_splits must be >= 1, got {n}")
    if shape[axis] % n:
        raise OpError(f"SPLIT: dimension {axis} of '{ctx.name(1)}' ({shape[axis]}) is not divisible "
                      f"by num_splits {n}")
    return axis, [shape[axis] // n] * n


def _split_v_plan(ctx: InferCtx) -> tuple[int, list[int]]:
    need(ctx, 3, " (input, size_splits, axis)")
    shape = tuple(ctx.shapes[0])
    axis = _axis_value(ctx, 2, len(shape))
    if len(ctx.shapes[1]) != 1:
        raise OpError(f"SPLIT_V: size_splits '{ctx.name(1)}' must be 1-D, got {list(ctx.shapes[1])}")
    sizes = _ints(ctx, 1, "size_splits")
    if ctx.attrs.num_splits and len(sizes) != ctx.attrs.num_splits:
        raise OpError(f"SPLIT_V: size_splits '{ctx.name(1)}' has {len(sizes)} entries but num_splits "
                      f"is {ctx.attrs.num_splits}")
    unknown = [i for i, s in enumerate(sizes) if s == -1]
    if len(unknown) > 1 or any(s < -1 for s in sizes):
        raise OpError(f"SPLIT_V: size_splits {sizes} may hold at most one -1 and no other negatives")
    known = sum(s for s in sizes if s != -1)
    if unknown:
        if known > shape[axis]:
            raise OpError(f"SPLIT_V: size_splits {sizes} exceed dimension {axis} ({shape[axis]})")
        sizes[unknown[0]] = shape[axis] - known
    elif known != shape[axis]:
        raise OpError(f"SPLIT_V: size_splits {sizes} sum to {known}, but dimension {axis} of "
                      f"'{ctx.name(0)}' is {shape[axis]}")
    return axis, sizes


def _split_outs(ctx: InferCtx, src: int, plan) -> list:
    axis, sizes = plan(ctx)
    shape = list(ctx.shapes[src])
    dt = np.dtype(ctx.dtypes[src])
    return [(tuple(shape[:axis] + [s] + shape[axis + 1:]), dt) for s in sizes]


def _split_ref_for(name: str, src: int, plan):
    def ref(inputs, attrs) -> list:
        axis, sizes = plan(ctx_from_arrays(name, attrs, inputs))
        return [contig(p) for p in np.split(np.asarray(inputs[src]), np.cumsum(sizes)[:-1], axis=axis)]

    return ref


define("SPLIT", parse=_parse_split, infer=lambda c: _split_outs(c, 1, _split_plan),
       reference=_split_ref_for("SPLIT", 1, _split_plan), kind=PatternKind.INJECTIVE, cost=movement_cost,
       shape_inputs=(0,))
define("SPLIT_V", parse=_parse_split, infer=lambda c: _split_outs(c, 0, _split_v_plan),
       reference=_split_ref_for("SPLIT_V", 0, _split_v_plan), kind=PatternKind.INJECTIVE, cost=movement_cost,
       shape_inputs=(1, 2))


# ---- REVERSE_V2 ----------------------------------------------------------------------------------

def _reverse_axes(ctx: InferCtx) -> tuple[int, ...]:
    need(ctx, 2, " (input, axis)")
    if len(ctx.shapes[1]) != 1:
        raise OpError(f"REVERSE_V2: axis '{ctx.name(1)}' must be 1-D, got {list(ctx.shapes[1])}")
    rank = len(ctx.shapes[0])
    axes = [norm_axis(a, rank, "REVERSE_V2") for a in _ints(ctx, 1, "axis", (I32,))]
    if len(set(axes)) != len(axes):
        raise OpError(f"REVERSE_V2: axis '{ctx.name(1)}' lists a dimension twice: {axes}")
    if axes and max(axes) - min(axes) + 1 != len(axes):
        # LiteRT: "Non-contiguous `axes` not supported" (at invoke)
        raise OpError(f"REVERSE_V2: axes {sorted(axes)} are not contiguous; LiteRT reverses only a "
                      "run of adjacent dimensions (use two REVERSE_V2 ops)")
    return tuple(axes)


def _reverse_infer(ctx: InferCtx) -> list:
    if len(ctx.values) > 1 and ctx.values[1] is not None:
        _reverse_axes(ctx)
    else:
        need(ctx, 2, " (input, axis)")
        if np.dtype(ctx.dtypes[1]) != I32:  # LiteRT: "Axis Type 'INT64' is not supported by reverse"
            raise OpError(f"REVERSE_V2: axis '{ctx.name(1)}' must be int32, got {np.dtype(ctx.dtypes[1]).name}")
    return same_dtype_out(ctx, ctx.shapes[0])


def _reverse_ref(inputs, attrs) -> list:
    axes = _reverse_axes(ctx_from_arrays("REVERSE_V2", attrs, inputs))
    return [contig(np.flip(inputs[0], axis=axes))]


define("REVERSE_V2", infer=_reverse_infer, reference=_reverse_ref, kind=PatternKind.INJECTIVE,
       cost=movement_cost, shape_inputs=(1,))


# ---- MIRROR_PAD ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MirrorPadAttrs:
    mode: int = 0  # 0 REFLECT, 1 SYMMETRIC


def _parse_mirror_pad(options: dict[str, Any]) -> MirrorPadAttrs:
    return MirrorPadAttrs(int(options.get("mode", 0)))


def _mirror_plan(ctx: InferCtx) -> np.ndarray:
    need(ctx, 2, " (input, paddings)")
    if ctx.attrs.mode not in (0, 1):
        raise OpError(f"MIRROR_PAD: mode {ctx.attrs.mode} is not REFLECT (0) or SYMMETRIC (1)")
    shape = tuple(ctx.shapes[0])
    if tuple(ctx.shapes[1]) != (len(shape), 2):
        raise OpError(f"MIRROR_PAD: paddings '{ctx.name(1)}' must have shape [{len(shape)}, 2], got "
                      f"{list(ctx.shapes[1])}")
    pads = int_values(ctx, 1, "paddings").reshape(len(shape), 2)
    extra = 1 if ctx.attrs.mode == 0 else 0
    for i, d in enumerate(shape):
        lim = d - extra
        if pads[i].min() < 0 or pads[i].max() > lim:
            raise OpError(f"MIRROR_PAD: paddings {pads[i].tolist()} for dimension {i} (size {d}) must "
                          f"lie in [0, {lim}] in {'REFLECT' if extra else 'SYMMETRIC'} mode")
    return pads


def _mirror_infer(ctx: InferCtx) -> list:
    pads = _mirror_plan(ctx)
    return same_dtype_out(ctx, [d + int(p.sum()) for d, p in zip(ctx.shapes[0], pads)])


def _mirror_ref(inputs, attrs) -> list:
    pads = _mirror_plan(ctx_from_arrays("MIRROR_PAD", attrs, inputs))
    return [contig(np.pad(inputs[0], pads, mode="reflect" if attrs.mode == 0 else "symmetric"))]


define("MIRROR_PAD", parse=_parse_mirror_pad, infer=_mirror_infer, reference=_mirror_ref,
       kind=PatternKind.INJECTIVE, cost=movement_cost, shape_inputs=(1,))


# ---- SPACE_TO_DEPTH / DEPTH_TO_SPACE -------------------------------------------------------------

@dataclass(frozen=True)
class BlockAttrs:
    block_size: int = 0


def _parse_block(options: dict[str, Any]) -> BlockAttrs:
    return BlockAttrs(int(options.get("block_size", 0)))


_S2D_TYPES = tuple(np.dtype(t) for t in (np.float32, np.uint8, np.int8, np.int32, np.int64))


def _s2d_infer(ctx: InferCtx) -> list:
    need(ctx, 1)
    shape, b = tuple(ctx.shapes[0]), ctx.attrs.block_size
    if len(shape) != 4:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' must be 4-D NHWC, got {list(shape)}")
    if b < 1:
        raise OpError(f"{ctx.op_name}: block_size must be >= 1, got {b}")
    dt = np.dtype(ctx.dtypes[0])
    if dt not in _S2D_TYPES:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' has type {dt.name}; supported: "
                      f"{', '.join(t.name for t in _S2D_TYPES)}")
    n, h, w, c = shape
    if ctx.op_name == "SPACE_TO_DEPTH":
        if h % b or w % b:
            raise OpError(f"SPACE_TO_DEPTH: height {h} and width {w} of '{ctx.name(0)}' must be "
                          f"divisible by block_size {b}")
        return same_dtype_out(ctx, (n, h // b, w // b, c * b * b))
    if c % (b * b):
        raise OpError(f"DEPTH_TO_SPACE: channels {c} of '{ctx.name(0)}' must be divisible by "
                      f"block_size^2 = {b * b}")
    return same_dtype_out(ctx, (n, h * b, w * b, c // (b * b)))


def _s2d_ref(inputs, attrs) -> list:
    ((out, _),) = _s2d_infer(ctx_from_arrays("SPACE_TO_DEPTH", attrs, inputs))
    x, b = np.asarray(inputs[0]), attrs.block_size
    n, h, w, c = x.shape
    return [contig(x.reshape(n, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5)).reshape(out)]


def _d2s_ref(inputs, attrs) -> list:
    ((out, _),) = _s2d_infer(ctx_from_arrays("DEPTH_TO_SPACE", attrs, inputs))
    x, b = np.asarray(inputs[0]), attrs.block_size
    n, h, w, c = x.shape
    return [contig(x.reshape(n, h, w, b, b, c // (b * b)).transpose(0, 1, 3, 2, 4, 5)).reshape(out)]


define("SPACE_TO_DEPTH", parse=_parse_block, infer=_s2d_infer, reference=_s2d_ref, kind=PatternKind.INJECTIVE,
       cost=movement_cost)
define("DEPTH_TO_SPACE", parse=_parse_block, infer=_s2d_infer, reference=_d2s_ref, kind=PatternKind.INJECTIVE,
       cost=movement_cost)


# ---- SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND -------------------------------------------------------

def _batch_plan(ctx: InferCtx) -> tuple[list[int], np.ndarray]:
    need(ctx, 3, " (input, block_shape, paddings/crops)")
    what = "paddings" if ctx.op_name == "SPACE_TO_BATCH_ND" else "crops"
    shape = tuple(ctx.shapes[0])
    if len(shape) not in (3, 4):
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' must be 3-D or 4-D, got {list(shape)}")
    m = len(shape) - 2
    if tuple(ctx.shapes[1]) != (m,):
        raise OpError(f"{ctx.op_name}: block_shape '{ctx.name(1)}' must have shape [{m}], got "
                      f"{list(ctx.shapes[1])}")
    if tuple(ctx.shapes[2]) != (m, 2):
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(2)}' must have shape [{m}, 2], got "
                      f"{list(ctx.shapes[2])}")
    # int32 only: LiteRT reads an int64 block_shape as int32 words (and fails "block_shape[dim] != 0")
    block = _ints(ctx, 1, "block_shape", (I32,))
    pads = int_values(ctx, 2, what, (I32,)).reshape(m, 2)
    if any(b < 1 for b in block):
        raise OpError(f"{ctx.op_name}: block_shape {block} must be >= 1")
    if pads.min(initial=0) < 0:
        raise OpError(f"{ctx.op_name}: {what} {pads.tolist()} must be >= 0")
    return block, pads


def _s2b_infer(ctx: InferCtx) -> list:
    block, pads = _batch_plan(ctx)
    shape = tuple(ctx.shapes[0])
    out = [shape[0] * int(np.prod(block))]
    for i, b in enumerate(block):
        p = shape[1 + i] + int(pads[i].sum())
        if p % b:
            raise OpError(f"SPACE_TO_BATCH_ND: padded dimension {i + 1} ({p}) of '{ctx.name(0)}' is "
                          f"not divisible by block_shape {b}")
        out.append(p // b)
    return same_dtype_out(ctx, out + list(shape[1 + len(block):]))


def _s2b_ref(inputs, attrs) -> list:
    ctx = ctx_from_arrays("SPACE_TO_BATCH_ND", attrs, inputs)
    ((out, _),) = _s2b_infer(ctx)
    block, pads = _batch_plan(ctx)
    x = np.asarray(inputs[0])
    m = len(block)
    xp = np.pad(x, [(0, 0), *pads.tolist(), *[(0, 0)] * (x.ndim - 1 - m)])
    n = x.shape[0]
    split = [n]
    for i, b in enumerate(block):
        split += [xp.shape[1 + i] // b, b]
    rest = list(xp.shape[1 + m:])
    y = xp.reshape(split + rest)
    # (n, s0, b0, s1, b1, rest) -> (b0, b1, n, s0, s1, rest)
    order = [2 + 2 * i for i in range(m)] + [0] + [1 + 2 * i for i in range(m)] + \
        list(range(1 + 2 * m, y.ndim))
    return [contig(y.transpose(order)).reshape(out)]


def _b2s_infer(ctx: InferCtx) -> list:
    block, crops = _batch_plan(ctx)
    shape = tuple(ctx.shapes[0])
    nb = int(np.prod(block))
    if shape[0] % nb:
        raise OpError(f"BATCH_TO_SPACE_ND: batch {shape[0]} of '{ctx.name(0)}' is not divisible by "
                      f"the block size product {nb}")
    out = [shape[0] // nb]
    for i, b in enumerate(block):
        full = shape[1 + i] * b
        if crops[i].sum() > full:
            raise OpError(f"BATCH_TO_SPACE_ND: crops {crops[i].tolist()} exceed dimension {i + 1} "
                          f"({full}) after un-blocking")
        out.append(full - int(crops[i].sum()))
    return same_dtype_out(ctx, out + list(shape[1 + len(block):]))


def _b2s_ref(inputs, attrs) -> list:
    ctx = ctx_from_arrays("BATCH_TO_SPACE_ND", attrs, inputs)
    ((out, _),) = _b2s_infer(ctx)
    block, crops = _batch_plan(ctx)
    x = np.asarray(inputs[0])
    m = len(block)
    n = x.shape[0] // int(np.prod(block))
    y = x.reshape(list(block) + [n] + list(x.shape[1:]))
    # (b0, b1, n, s0, s1, rest) -> (n, s0, b0, s1, b1, rest)
    order = [m]
    for i in range(m):
        order += [m + 1 + i, i]
    order += list(range(2 * m + 1, y.ndim))
    full = y.transpose(order).reshape([n] + [x.shape[1 + i] * b for i, b in enumerate(block)]
                                      + list(x.shape[1 + m:]))
    sl = (slice(None),) + tuple(slice(int(c[0]), full.shape[1 + i] - int(c[1])) for i, c in enumerate(crops))
    return [contig(full[sl]).reshape(out)]


define("SPACE_TO_BATCH_ND", infer=_s2b_infer, reference=_s2b_ref, kind=PatternKind.INJECTIVE,
       cost=movement_cost, shape_inputs=(1, 2))
define("BATCH_TO_SPACE_ND", infer=_b2s_infer, reference=_b2s_ref, kind=PatternKind.INJECTIVE,
       cost=movement_cost, shape_inputs=(1, 2))

