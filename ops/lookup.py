"""Sparse embedding lookup: EMBEDDING_LOOKUP_SPARSE (float32 reference kernel).

Inputs: 0 ids int32 [n] (rows of `value`), 1 indices int32 [n, lookup_rank] (the sparse
positions, last column ignored), 2 dense_shape int32 [lookup_rank], 3 weights float32 [n],
4 value float32 [rows, ...embedding dims]. Output float32 dense_shape[:-1] + value.shape[1:].

LiteRT's kernel walks the lookups in order and combines *consecutive* lookups that land in the
same output row (a "bucket"): SUM adds weight * row, MEAN divides the bucket by the sum of its
weights, SQRTN by the square root of the sum of squared weights. When a later, non-adjacent
run of lookups hits a row again, it adds to the row and divides the whole row again by that
run's own weights; the reference reproduces this run by run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops.base import Cost, InferCtx, OpError, ShapeDtype
from tflite_jit.ops.common import F32, I32, define

_COMBINERS = {0: "SUM", 1: "MEAN", 2: "SQRTN"}


@dataclass(frozen=True)
class SparseLookupAttrs:
    combiner: str


def _parse_els(o: dict[str, Any]) -> SparseLookupAttrs:
    code = int(o.get("combiner", 0) or 0)
    if code not in _COMBINERS:
        raise OpError(f"EMBEDDING_LOOKUP_SPARSE: unknown combiner {code} (0 SUM, 1 MEAN, 2 SQRTN)")
    return SparseLookupAttrs(_COMBINERS[code])


def _shape(ctx: InferCtx, i: int, what: str) -> tuple[int, ...]:
    s = ctx.shapes[i] if i < len(ctx.shapes) else None
    if s is None:
        raise OpError(f"{ctx.op_name}: input {i} ({what}) is required but omitted")
    return tuple(s)


def _check_type(ctx: InferCtx, i: int, what: str, dt: np.dtype) -> None:
    if np.dtype(ctx.dtypes[i]) != dt:
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' must be {dt.name}, got {np.dtype(ctx.dtypes[i]).name}")


def _out_shape(op: str, dense_shape: np.ndarray, lookup_rank: int, value_shape: tuple[int, ...]) -> tuple[int, ...]:
    ds = np.asarray(dense_shape).reshape(-1)
    if ds.shape[0] != lookup_rank:
        raise OpError(f"{op}: dense_shape has {ds.shape[0]} values but indices have {lookup_rank} columns; "
                      "they must agree")
    if np.any(ds[:-1] < 0):
        raise OpError(f"{op}: dense_shape {ds.tolist()} has a negative dimension")
    return tuple(int(d) for d in ds[:-1]) + tuple(value_shape[1:])


def _els_infer(ctx: InferCtx) -> list[ShapeDtype]:
    if len(ctx.shapes) != 5:
        raise OpError(f"{ctx.op_name}: expected 5 inputs (ids, indices, dense_shape, weights, value), got "
                      f"{len(ctx.shapes)}")
    ids = _shape(ctx, 0, "ids")
    idx = _shape(ctx, 1, "indices")
    ds = _shape(ctx, 2, "dense_shape")
    w = _shape(ctx, 3, "weights")
    v = _shape(ctx, 4, "value")
    for i, what, shp, rank, dt in ((0, "ids", ids, 1, I32), (1, "indices", idx, 2, I32),
                                   (2, "dense_shape", ds, 1, I32), (3, "weights", w, 1, F32)):
        if len(shp) != rank:
            raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' must be {rank}-D, got shape {list(shp)}")
        _check_type(ctx, i, what, dt)
    if len(v) < 2:
        raise OpError(f"{ctx.op_name}: value '{ctx.name(4)}' must be at least 2-D [rows, embedding...], got "
                      f"{list(v)}")
    _check_type(ctx, 4, "value", F32)
    if not idx[0] == ids[0] == w[0]:
        raise OpError(f"{ctx.op_name}: ids ({ids[0]}), indices ({idx[0]} rows) and weights ({w[0]}) must have "
                      "one entry per lookup")
    if idx[1] < 1:  # LiteRT would compute a negative output rank
        raise OpError(f"{ctx.op_name}: indices '{ctx.name(1)}' must have at least one column")
    if ds[0] != idx[1]:
        raise OpError(f"{ctx.op_name}: dense_shape '{ctx.name(2)}' has {ds[0]} values but indices have "
                      f"{idx[1]} columns; they must agree")
    return [(_out_shape(ctx.op_name, ctx.value(2, "dense_shape"), idx[1], v), F32)]


def _els_reference(inputs: Sequence[np.ndarray | None], a: SparseLookupAttrs) -> list[np.ndarray]:
    ids = np.asarray(inputs[0]).reshape(-1).astype(np.int64)
    idx = np.asarray(inputs[1]).astype(np.int64)
    ds = np.asarray(inputs[2]).reshape(-1).astype(np.int64)
    w = np.asarray(inputs[3], np.float32).reshape(-1)
    value = np.asarray(inputs[4], np.float32)
    op = "EMBEDDING_LOOKUP_SPARSE"
    out_shape = _out_shape(op, ds, idx.shape[1], value.shape)
    n_rows = value.shape[0]
    bad = np.flatnonzero((ids < 0) | (ids >= n_rows))
    if bad.size:
        raise OpError(f"{op}: ids[{bad[0]}] = {ids[bad[0]]} is out of range [0, {n_rows}) of value's rows")
    pos = idx[:, :-1]
    lim = ds[:-1]
    bad_r, bad_c = np.nonzero((pos < 0) | (pos >= lim[None, :]))
    if bad_r.size:
        r, c = bad_r[0], bad_c[0]
        raise OpError(f"{op}: indices[{r}, {c}] = {pos[r, c]} is out of range [0, {lim[c]}) of dense_shape")
    emb = value.reshape(n_rows, -1)
    n_buckets = int(np.prod(lim)) if lim.size else 1
    out = np.zeros((n_buckets, emb.shape[1]), np.float32)
    if ids.size:
        bucket = np.ravel_multi_index(tuple(pos.T), tuple(int(d) for d in lim)) if lim.size else \
            np.zeros(ids.size, np.int64)
        # runs of consecutive lookups into the same bucket
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        ends = np.r_[starts[1:], ids.size]
        contrib = emb[ids] * w[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            for s, e in zip(starts, ends):
                b = bucket[s]
                out[b] += contrib[s:e].sum(axis=0, dtype=np.float32)
                if a.combiner == "MEAN":
                    out[b] /= w[s:e].sum(dtype=np.float32)
                elif a.combiner == "SQRTN":
                    out[b] /= np.sqrt(np.square(w[s:e]).sum(dtype=np.float32))
    return [out.reshape(out_shape)]


def _els_cost(ins: list, outs: list, a: SparseLookupAttrs) -> Cost:
    n = int(ins[0][0]) if ins[0] else 0
    row = int(np.prod(ins[4][1:])) if ins[4] else 0
    return Cost(flops=2.0 * n * row, bytes=4.0 * (n * row + int(np.prod(outs[0]))))


define("EMBEDDING_LOOKUP_SPARSE", parse=_parse_els, infer=_els_infer, reference=_els_reference,
       cost=_els_cost, shape_inputs=(2,))


# ---- LSH_PROJECTION ------------------------------------------------------------------------------
#
# Inputs: 0 hash float32 [num_hash, num_bits] (seeds, num_bits <= 32), 1 input (any numeric type,
# rank >= 1; each of its dim-0 slices is one item), 2 weight float32 [input.shape[0]] (optional).
# For each seed, every item is hashed as the 4 bytes of the float seed followed by the item's
# raw bytes, with FarmHash's 64-bit fingerprint (farmhashna::Hash64, which LiteRT uses); the bit
# is 1 when the (weighted) sum of the signed fingerprints, in double, is positive. SPARSE packs
# each row's bits into an int32 and adds row * 2**num_bits; DENSE outputs every bit.

_M64 = (1 << 64) - 1
_K0 = 0xC3A5C85C97CB3127
_K1 = 0xB492B66FBE98F273
_K2 = 0x9AE16A3B2F90404F


def _u64(b: bytes, i: int) -> int:
    return int.from_bytes(b[i:i + 8], "little")


def _u32(b: bytes, i: int) -> int:
    return int.from_bytes(b[i:i + 4], "little")


def _rot(v: int, s: int) -> int:
    return v if s == 0 else ((v >> s) | (v << (64 - s))) & _M64


def _smix(v: int) -> int:
    return v ^ (v >> 47)


def _len16(u: int, v: int, mul: int) -> int:
    a = ((u ^ v) * mul) & _M64
    a ^= a >> 47
    b = ((v ^ a) * mul) & _M64
    b ^= b >> 47
    return (b * mul) & _M64


def _len0to16(s: bytes) -> int:
    n = len(s)
    if n >= 8:
        mul = _K2 + 2 * n
        a = (_u64(s, 0) + _K2) & _M64
        b = _u64(s, n - 8)
        c = (_rot(b, 37) * mul + a) & _M64
        d = ((_rot(a, 25) + b) * mul) & _M64
        return _len16(c, d, mul)
    if n >= 4:
        mul = _K2 + 2 * n
        return _len16(n + (_u32(s, 0) << 3), _u32(s, n - 4), mul)
    if n > 0:
        y = (s[0] + (s[n >> 1] << 8)) & 0xFFFFFFFF
        z = (n + (s[n - 1] << 2)) & 0xFFFFFFFF
        return (_smix(((y * _K2) ^ (z * _K0)) & _M64) * _K2) & _M64
    return _K2


def _len17to32(s: bytes) -> int:
    n = len(s)
    mul = _K2 + 2 * n
    a = (_u64(s, 0) * _K1) & _M64
    b = _u64(s, 8)
    c = (_u64(s, n - 8) * mul) & _M64
    d = (_u64(s, n - 16) * _K2) & _M64
    return _len16((_rot((a + b) & _M64, 43) + _rot(c, 30) + d) & _M64,
                  (a + _rot((b + _K2) & _M64, 18) + c) & _M64, mul)


def _len33to64(s: bytes) -> int:
    n = len(s)
    mul = _K2 + 2 * n
    a = (_u64(s, 0) * _K2) & _M64
    b = _u64(s, 8)
    c = (_u64(s, n - 8) * mul) & _M64
    d = (_u64(s, n - 16) * _K2) & _M64
    y = (_rot((a + b) & _M64, 43) + _rot(c, 30) + d) & _M64
    z = _len16(y, (a + _rot((b + _K2) & _M64, 18) + c) & _M64, mul)
    e = (_u64(s, 16) * mul) & _M64
    f = _u64(s, 24)
    g = ((y + _u64(s, n - 32)) * mul) & _M64
    h = ((z + _u64(s, n - 24)) * mul) & _M64
    return _len16((_rot((e + f) & _M64, 43) + _rot(g, 30) + h) & _M64,
                  (e + _rot((f + a) & _M64, 18) + g) & _M64, mul)


def _weak32(s: bytes, i: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = _u64(s, i), _u64(s, i + 8), _u64(s, i + 16), _u64(s, i + 24)
    a = (a + w) & _M64
    b = _rot((b + a + z) & _M64, 21)
    c = a
    a = (a + x + y) & _M64
    b = (b + _rot(a, 44)) & _M64
    return (a + z) & _M64, (b + c) & _M64


def fingerprint64(s: bytes) -> int:
    """FarmHash Fingerprint64 (farmhashna::Hash64) of a byte string, as an unsigned int."""
    n = len(s)
    if n <= 16:
        return _len0to16(s)
    if n <= 32:
        return _len17to32(s)
    if n <= 64:
        return _len33to64(s)
    seed = 81
    x = seed
    y = (seed * _K1 + 113) & _M64
    z = (_smix((y * _K2 + 113) & _M64) * _K2) & _M64
    v = (0, 0)
    w = (0, 0)
    x = (x * _K2 + _u64(s, 0)) & _M64
    end = ((n - 1) // 64) * 64
    last64 = end + ((n - 1) & 63) - 63
    i = 0
    while True:
        x = (_rot((x + y + v[0] + _u64(s, i + 8)) & _M64, 37) * _K1) & _M64
        y = (_rot((y + v[1] + _u64(s, i + 48)) & _M64, 42) * _K1) & _M64
        x ^= w[1]
        y = (y + v[0] + _u64(s, i + 40)) & _M64
        z = (_rot((z + w[0]) & _M64, 33) * _K1) & _M64
        v = _weak32(s, i, (v[1] * _K1) & _M64, (x + w[0]) & _M64)
        w = _weak32(s, i + 32, (z + w[1]) & _M64, (y + _u64(s, i + 16)) & _M64)
        z, x = x, z
        i += 64
        if i == end:
            break
    mul = _K1 + ((z & 0xFF) << 1)
    i = last64
    w0 = (w[0] + ((n - 1) & 63)) & _M64
    v0 = (v[0] + w0) & _M64
    w0 = (w0 + v0) & _M64
    v, w = (v0, v[1]), (w0, w[1])
    x = (_rot((x + y + v[0] + _u64(s, i + 8)) & _M64, 37) * mul) & _M64
    y = (_rot((y + v[1] + _u64(s, i + 48)) & _M64, 42) * mul) & _M64
    x ^= (w[1] * 9) & _M64
    y = (y + v[0] * 9 + _u64(s, i + 40)) & _M64
    z = (_rot((z + w[0]) & _M64, 33) * mul) & _M64
    v = _weak32(s, i, (v[1] * mul) & _M64, (x + w[0]) & _M64)
    w = _weak32(s, i + 32, (z + w[1]) & _M64, (y + _u64(s, i + 16)) & _M64)
    z, x = x, z
    return _len16((_len16(v[0], w[0], mul) + _smix(y) * _K0 + z) & _M64,
                  (_len16(v[1], w[1], mul) + x) & _M64, mul)


_LSH_TYPES = {1: "SPARSE", 2: "DENSE"}
_LSH_INPUT_TYPES = tuple(np.dtype(t) for t in (np.float32, np.float16, np.float64, np.int8, np.int16, np.int32,
                                               np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.bool_))


@dataclass(frozen=True)
class LshAttrs:
    type: str


def _parse_lsh(o: dict[str, Any]) -> LshAttrs:
    code = int(o.get("type", 0) or 0)
    if code not in _LSH_TYPES:
        raise OpError(f"LSH_PROJECTION: projection type {code} is not supported (1 SPARSE, 2 DENSE)")
    return LshAttrs(_LSH_TYPES[code])


def _lsh_infer(ctx: InferCtx) -> list[ShapeDtype]:
    a: LshAttrs = ctx.attrs
    if len(ctx.shapes) not in (2, 3):
        raise OpError(f"{ctx.op_name}: expected 2 or 3 inputs (hash, input[, weight]), got {len(ctx.shapes)}")
    h = _shape(ctx, 0, "hash")
    x = _shape(ctx, 1, "input")
    if len(h) != 2:
        raise OpError(f"{ctx.op_name}: hash '{ctx.name(0)}' must be 2-D [num_hash, num_bits], got {list(h)}")
    _check_type(ctx, 0, "hash", F32)
    if h[1] > 32:
        raise OpError(f"{ctx.op_name}: hash '{ctx.name(0)}' has {h[1]} bits per row; at most 32 fit an int32")
    if len(x) < 1:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(1)}' must have rank >= 1 (one item per dim-0 slice)")
    if np.dtype(ctx.dtypes[1]) not in _LSH_INPUT_TYPES:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(1)}' has unsupported type {np.dtype(ctx.dtypes[1]).name}")
    if x[0] < 1:  # LiteRT divides the input's byte size by this dimension
        raise OpError(f"{ctx.op_name}: input '{ctx.name(1)}' has no items (dimension 0 is 0)")
    if len(ctx.shapes) == 3 and ctx.shapes[2] is not None:
        wt = _shape(ctx, 2, "weight")
        if len(wt) != 1 or wt[0] != x[0]:
            raise OpError(f"{ctx.op_name}: weight '{ctx.name(2)}' must be 1-D with one value per input item "
                          f"({x[0]}), got {list(wt)}")
        _check_type(ctx, 2, "weight", F32)
    n = h[0] if a.type == "SPARSE" else h[0] * h[1]
    return [((n,), I32)]


def _lsh_reference(inputs: Sequence[np.ndarray | None], a: LshAttrs) -> list[np.ndarray]:
    seeds = np.asarray(inputs[0], np.float32)
    x = np.ascontiguousarray(inputs[1])
    wt = None if len(inputs) < 3 or inputs[2] is None else np.asarray(inputs[2], np.float32).reshape(-1)
    n_items = x.shape[0]
    raw = x.tobytes()
    step = len(raw) // n_items
    items = [raw[k * step:(k + 1) * step] for k in range(n_items)]
    num_hash, num_bits = seeds.shape
    bits = np.zeros((num_hash, num_bits), np.int64)
    for i in range(num_hash):
        for j in range(num_bits):
            key = seeds[i, j].tobytes()
            score = 0.0
            for k, item in enumerate(items):
                fp = fingerprint64(key + item)
                val = float(fp - (1 << 64) if fp >> 63 else fp)  # int64 -> double
                score += val if wt is None else float(wt[k]) * val
            bits[i, j] = 1 if score > 0 else 0
    if a.type == "DENSE":
        return [bits.reshape(-1).astype(np.int32)]
    packed = np.zeros(num_hash, np.int64)
    for j in range(num_bits):
        packed = ((packed << 1) | bits[:, j]) & 0xFFFFFFFF
    # LiteRT adds row * (1 << num_bits) in int; with 32 bits that shift is undefined in C++ and
    # x86 (where LiteRT was probed) masks the count to 5 bits: 1 << 32 == 1. Mirror that.
    packed = (packed + np.arange(num_hash, dtype=np.int64) * (1 << (num_bits % 32))) & 0xFFFFFFFF
    return [packed.astype(np.uint32).view(np.int32)]


def _lsh_cost(ins: list, outs: list, a: LshAttrs) -> Cost:
    n = int(np.prod(ins[0])) * int(np.prod(ins[1]))
    return Cost(flops=20.0 * n, bytes=4.0 * n)


define("LSH_PROJECTION", parse=_parse_lsh, infer=_lsh_infer, reference=_lsh_reference, cost=_lsh_cost)
