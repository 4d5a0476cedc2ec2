"""DENSIFY: a sparse constant (TACO format, as the TFLite converter writes pruned weights) made dense.

The sparse tensor is always a constant, so the work happens once, at plan time: `bind` decodes
the tensor's sparsity parameters and values into the dense array, and `reference` only returns
it. The format, per TFLite's schema: `traversal_order` lists the n original dims then the k block
dims in storage order; `block_map[j]` names the original dim that block dim n+j subdivides; each
traversal level is DENSE (`dense_size` children per parent) or SPARSE_CSR (children of parent p
are `array_indices[array_segments[p]:array_segments[p+1]]`). Leaves, in order, are the values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops.base import InferCtx, OpError, ShapeDtype
from tflite_jit.ops.common import define, movement_cost


@dataclass(frozen=True, eq=False)
class DensifyAttrs:
    dense: np.ndarray | None = None  # filled by bind from the sparse constant


def _parse(options: dict[str, Any]) -> DensifyAttrs:
    return DensifyAttrs()


def densify(values: np.ndarray, shape: Sequence[int], sparsity: Any) -> np.ndarray:
    """Decode TFLite's sparse format, level by level with NumPy (no per-element Python loop)."""
    order = list(sparsity.traversal_order)
    block_map = list(sparsity.block_map or ())
    dims = sparsity.dim_metadata
    n = len(shape)
    if sorted(order) != list(range(n + len(block_map))) or len(dims) != len(order):
        raise OpError(f"DENSIFY: traversal_order {order} does not cover the {n} dims and "
                      f"{len(block_map)} block dims; the model's sparsity parameters are damaged")
    pos = np.zeros(1, np.int64)  # position of each partial path in the current level
    coords: list[np.ndarray] = []  # coordinate along each traversal level, per path
    for level, meta in enumerate(dims):
        if meta["format"] == "DENSE":
            size = int(meta["dense_size"])
            if size < 0:
                raise OpError(f"DENSIFY: negative dense_size at level {level}")
            child = np.arange(size, dtype=np.int64)
            coords = [np.repeat(c, size) for c in coords] + [np.tile(child, pos.size)]
            pos = (pos[:, None] * size + child[None, :]).reshape(-1)
        else:
            seg = np.asarray(meta["array_segments"], np.int64)
            idx = np.asarray(meta["array_indices"], np.int64)
            if seg.size < pos.size + 1 or (pos.size and pos.max() + 1 >= seg.size) or np.any(np.diff(seg) < 0) \
                    or (seg.size and (seg[0] < 0 or seg[-1] > idx.size)):
                raise OpError(f"DENSIFY: array_segments at level {level} do not fit the tree; the "
                              "model's sparsity parameters are damaged")
            counts = seg[pos + 1] - seg[pos]
            starts = np.repeat(seg[pos], counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            child_pos = starts + offsets
            coords = [np.repeat(c, counts) for c in coords] + [idx[child_pos]]
            pos = child_pos
    if pos.size != values.size:
        raise OpError(f"DENSIFY: the sparse tree has {pos.size} leaves but the tensor stores "
                      f"{values.size} values")
    # original coordinate of each leaf: outer (block-grid) coordinate * block size + inner
    block_size = {block_map[j]: int(dims[order.index(n + j)]["dense_size"]) for j in range(len(block_map))}
    full = []
    for d in range(n):
        c = coords[order.index(d)]
        if d in block_size:
            c = c * block_size[d] + coords[order.index(n + block_map.index(d))]
        if c.size and (c.min() < 0 or c.max() >= shape[d]):
            raise OpError(f"DENSIFY: a stored index lies outside dimension {d} of size {shape[d]}")
        full.append(c)
    dense = np.zeros(tuple(shape), values.dtype)
    if values.size:
        dense[tuple(full)] = values  # leaves are visited in storage order
    return dense


def dense_value(t: Any) -> np.ndarray:
    """The dense array of a sparse constant IR tensor (its buffer holds only the stored values,
    little-endian, in traversal order)."""
    raw = np.ascontiguousarray(t.data).tobytes()
    dt = np.dtype(t.dtype)
    if len(raw) % dt.itemsize:
        raise OpError(f"sparse tensor '{t.name}' has a {len(raw)}-byte buffer, not a whole number of "
                      f"{dt.name} values")
    values = np.frombuffer(raw, dtype=dt.newbyteorder("<")).astype(dt)
    return densify(values, t.shape, t.sparsity)


def _bind(attrs: DensifyAttrs, inputs: list, outputs: list) -> DensifyAttrs:
    t = inputs[0] if inputs else None
    if t is None or t.sparsity is None or t.data is None:
        raise OpError("DENSIFY: input 0 must be a constant tensor with sparsity parameters")
    return DensifyAttrs(dense=dense_value(t))


def _infer(ctx: InferCtx) -> list[ShapeDtype]:
    if len(ctx.shapes) != 1 or ctx.shapes[0] is None:
        raise OpError("DENSIFY: expected one input (the sparse constant)")
    return [(tuple(ctx.shapes[0]), np.dtype(ctx.dtypes[0]))]


def _reference(inputs: Sequence[np.ndarray | None], attrs: DensifyAttrs) -> list[np.ndarray]:
    if attrs.dense is None:
        raise OpError("DENSIFY: the sparse constant was not bound at plan time")
    return [attrs.dense.copy()]


define("DENSIFY", parse=_parse, infer=_infer, reference=_reference, cost=movement_cost, bind=_bind)
