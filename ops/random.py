"""Random numbers: RANDOM_UNIFORM, RANDOM_STANDARD_NORMAL, MULTINOMIAL, STABLEHLO_RNG_BIT_GENERATOR.

LiteRT's numbers, bit for bit, for the same seeds. The generators (written here from their
published definitions, vectorised over blocks with uint64 NumPy arithmetic):

* Philox-4x32-10 (Salmon et al., SC 2011): a 128-bit counter and a 64-bit key; each block is ten
  rounds of two 32x32->64 multiplications (0xD2511F53, 0xCD9E8D57) mixing the four counter words
  with the key, the key bumped by (0x9E3779B9, 0xBB67AE85) after every round; four uint32 out.
* Threefry-2x32-20: a 64-bit counter, key words k0, k1 and k2 = k0 ^ k1 ^ 0x1BD11BDA; five groups
  of four add/rotate/xor rounds (rotations 13 15 26 6 / 17 29 16 24), a key injection after each.

RANDOM_UNIFORM / RANDOM_STANDARD_NORMAL / MULTINOMIAL (RandomOptions seed, seed2; probed on
ai_edge_litert, builtin kernels):
* The int64 seeds are truncated to int32 and sign-extended (LiteRT stores them in C ints), so
  seed 2**32 + 5 is seed 5. Philox key = seed (low word, high word), counter words 2-3 = seed2,
  words 0-1 start at 0. Each
  invoke draws ceil(n / 4) blocks and discards the unused tail of the last one.
* uniform: float32 with exponent 127 and the low 23 bits of a draw as mantissa, minus 1: [0, 1).
* normal: Box-Muller on consecutive pairs (u1 clamped below at 1e-7): sqrt(-2 ln u1) * (sin, cos)
  of 2*pi*u2, in float32. An odd count drops the last cosine (LiteRT writes it one element past
  the output buffer; we do not).
* MULTINOMIAL: float32 logits [batch, classes], int32 scalar num_samples; int32 or int64 output
  (the output tensor's type). Per row: cdf = cumulative sum in double of exp(logit - max finite
  logit), non-finite logits contributing 0; each sample is the first class whose cdf exceeds
  u * total, u in [0, 1) a double built from two draws (20 + 32 mantissa bits). Samples use
  consecutive pairs of draws across rows; afterwards the generator skips
  batch * round_up(num_samples, 4) * 512 blocks (TF's fixed skip). A row with no finite logit
  samples `classes` (one past the last class), as LiteRT does.
* The generator is per node and per interpreter (created when the node is resolved), seeded at
  prepare and advanced by every invoke. seed == seed2 == 0 (after truncation) means "nondeterministic": LiteRT draws
  both from a process-wide std::mt19937_64 seeded from /dev/urandom; we draw from the OS entropy
  source, so such outputs match LiteRT only statistically.
* LiteRT re-seeds at every Prepare, i.e. at allocate_tensors() after an input was resized to a
  different shape; allocate_tensors() without a resize continues the stream. We do the same: a
  prepare re-seeds when this node's own input shapes changed, and the executable calls
  `on_inputs_resized` on every node's attrs when any graph input changed shape. A node's shape
  input must be int32 and 1-D. A negative
  dimension in a run-time shape crashes LiteRT silently; we raise.

STABLEHLO_RNG_BIT_GENERATOR (option `algorithm`: DEFAULT/PHILOX = Philox-4x32, THREEFRY): a pure
function of its uint64[2] (Threefry) or uint64[2|3] (Philox) state input. Output 0 is the new
state (same shape), output 1 the random bits, int32/uint32/int64/uint64 with the output tensor's
declared static shape (64-bit types take two draws each, low word first). Key = state[0]
(low, high word); counter words 0-1 = state[1]; Philox counter words 2-3 = state[2] for a 3-word
state, else state[0] again. The counter advances as 64 bits (words 0-1, wrapping without carry
into word 2); the new state is (key, advanced counter, state[2] unchanged).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflite_jit.ir.validate import MAX_TENSOR_BYTES
from tflite_jit.ops.base import Cost, InferCtx, OpError, ShapeDtype
from tflite_jit.ops.common import F32, I32, I64, U32, U64, define

_U32 = 0xFFFFFFFF
_M64 = (1 << 64) - 1
_M128 = (1 << 128) - 1


# ---- the counter-based generators ----------------------------------------------------------------

def _philox(k0: int, k1: int, c: Sequence[np.ndarray]) -> np.ndarray:
    """Philox-4x32-10 on counter words c[0..3] (uint64 arrays holding 32-bit values, one entry
    per block); returns the blocks' uint32 outputs in order, flattened."""
    mask = np.uint64(_U32)
    s32 = np.uint64(32)
    ma, mb = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
    c0, c1, c2, c3 = (np.asarray(x, np.uint64) for x in c)
    for _ in range(10):
        p0 = c0 * ma  # a 32x32-bit product fits in 64 bits
        p1 = c2 * mb
        c0, c1, c2, c3 = ((p1 >> s32) ^ c1 ^ np.uint64(k0), p1 & mask,
                          (p0 >> s32) ^ c3 ^ np.uint64(k1), p0 & mask)
        k0 = (k0 + 0x9E3779B9) & _U32
        k1 = (k1 + 0xBB67AE85) & _U32
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32).reshape(-1)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def _threefry(k0: int, k1: int, c0: np.ndarray, c1: np.ndarray) -> np.ndarray:
    """Threefry-2x32-20 on counter words (uint32 arrays); outputs flattened in block order."""
    k2 = k0 ^ k1 ^ 0x1BD11BDA
    x0 = np.asarray(c0, np.uint32) + np.uint32(k0)
    x1 = np.asarray(c1, np.uint32) + np.uint32(k1)
    rotations = ((13, 15, 26, 6), (17, 29, 16, 24))
    schedule = ((0, k1, k2, 1), (1, k2, k0, 2), (0, k0, k1, 3), (1, k1, k2, 4), (0, k2, k0, 5))
    for r, ks0, ks1, b in schedule:
        for rot in rotations[r]:
            x0 = x0 + x1
            x1 = _rotl(x1, rot) ^ x0
        x0 = x0 + np.uint32(ks0)
        x1 = x1 + np.uint32((ks1 + b) & _U32)
    return np.stack([x0, x1], axis=-1).reshape(-1)


def _philox128(key: int, counter: int, blocks: int) -> np.ndarray:
    """`blocks` Philox blocks from a 128-bit counter (carrying through all four words)."""
    lo0, hi0 = counter & _M64, (counter >> 64) & _M64
    k = np.arange(blocks, dtype=np.uint64)
    lo = np.uint64(lo0) + k
    hi = np.uint64(hi0) + (lo < np.uint64(lo0)).astype(np.uint64)  # carry (hi wraps mod 2^64)
    mask, s32 = np.uint64(_U32), np.uint64(32)
    return _philox(key & _U32, (key >> 32) & _U32, (lo & mask, lo >> s32, hi & mask, hi >> s32))


def _uint32_to_float(x: np.ndarray) -> np.ndarray:
    """[0, 1): exponent 127, the low 23 bits as mantissa, minus one."""
    bits = (x & np.uint32(0x7FFFFF)) | np.uint32(127 << 23)
    return bits.view(np.float32) - np.float32(1)


def _uint64_to_double(x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """[0, 1): exponent 1023, 20 bits of x0 and all of x1 as mantissa, minus one."""
    man = ((x0.astype(np.uint64) & np.uint64(0xFFFFF)) << np.uint64(32)) | x1.astype(np.uint64)
    return (man | np.uint64(1023 << 52)).view(np.float64) - 1.0


def _box_muller(x: np.ndarray) -> np.ndarray:
    """Pairs (x[2i], x[2i+1]) -> (sin, cos) * radius, in float32 as LiteRT computes them."""
    u1 = np.maximum(_uint32_to_float(x[0::2]), np.float32(1e-7))
    # 2.0f * M_PI is a double product; the angle is rounded to float once
    v1 = (2.0 * np.pi * _uint32_to_float(x[1::2]).astype(np.float64)).astype(np.float32)
    radius = np.sqrt(np.float32(-2) * np.log(u1))
    return np.stack([np.sin(v1) * radius, np.cos(v1) * radius], axis=-1).reshape(-1)


# ---- per-node generator state --------------------------------------------------------------------

@dataclass(eq=False)
class _Generator:
    """LiteRT's OpData: one Philox generator per node, (re)seeded at prepare."""

    seed: int
    seed2: int
    key: int = 0
    counter: int = 0
    seeded: bool = False
    shapes: Any = None  # the input shapes of the last prepare

    def reseed(self) -> None:
        seed, seed2 = self.seed, self.seed2
        if seed == 0 and seed2 == 0:  # nondeterministic, as LiteRT
            seed, seed2 = (int.from_bytes(os.urandom(8), "little") for _ in range(2))
        self.key = seed & _M64
        self.counter = (seed2 & _M64) << 64
        self.seeded = True

    def prepare(self, shapes: Any) -> None:
        if not self.seeded or shapes != self.shapes:
            self.reseed()
        self.shapes = shapes

    def draw(self, n: int, advance: bool = True) -> np.ndarray:
        """The next n uint32 draws; a partly used block is discarded. advance=False draws from a
        copy of the generator (the state does not move)."""
        if not self.seeded:
            self.reseed()
        blocks = -(-n // 4)
        out = _philox128(self.key, self.counter, blocks)[:n]
        if advance:
            self.counter = (self.counter + blocks) & _M128
        return out

    def skip(self, blocks: int) -> None:
        self.counter = (self.counter + blocks) & _M128


@dataclass(frozen=True, eq=False)
class RandomAttrs:
    seed: int
    seed2: int
    gen: _Generator = field(repr=False)
    out_dtype: Any = None  # the output tensor's declared type (bind)

    def on_inputs_resized(self) -> None:
        """Any graph input changed shape: LiteRT re-prepares every node, which re-seeds."""
        self.gen.seeded = False


def _int32(v: Any) -> int:
    """LiteRT keeps the int64 seeds as C ints: the low 32 bits, sign-extended."""
    return ((int(v or 0) & _U32) ^ 0x80000000) - 0x80000000


def _parse_random(options: dict[str, Any]) -> RandomAttrs:
    # parse runs once per node per interpreter (resolve_ops): this is LiteRT's Init
    seed, seed2 = _int32(options.get("seed", 0)), _int32(options.get("seed2", 0))
    return RandomAttrs(seed, seed2, _Generator(seed, seed2))


def _bind_out_dtype(op: str, n_in: int, allowed: tuple[np.dtype, ...]):
    def bind(a: RandomAttrs, inputs: list, outputs: list) -> RandomAttrs:
        if len(inputs) != n_in or len(outputs) != 1:
            raise OpError(f"{op} takes {n_in} input(s) and 1 output, the node has {len(inputs)} "
                          f"and {len(outputs)}")
        if any(t is None for t in inputs):
            raise OpError(f"{op}: no input may be omitted")
        dt = np.dtype(outputs[0].dtype)
        if dt not in allowed:
            raise OpError(f"{op}: output tensor '{outputs[0].name}' is {dt.name}; LiteRT supports "
                          f"{'/'.join(d.name for d in allowed)} outputs (change the output type)")
        return RandomAttrs(a.seed, a.seed2, a.gen, dt)
    return bind


def _check_size(op: str, shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """A run-time sized output must stay under the tensor size limit (planned ones are checked
    by the planner)."""
    nbytes = itemsize * int(np.prod(shape, dtype=object))
    if nbytes > MAX_TENSOR_BYTES:
        raise OpError(f"{op}: the output would have shape {list(shape)} ({nbytes} bytes), over the "
                      f"{MAX_TENSOR_BYTES}-byte tensor limit")
    return shape


def _shape_from_input(op: str, value: np.ndarray) -> tuple[int, ...]:
    v = np.asarray(value).reshape(-1)
    if np.any(v < 0):  # LiteRT crashes on a negative dimension
        raise OpError(f"{op}: the shape input {v.tolist()} has a negative dimension; every "
                      "dimension must be >= 0")
    return _check_size(op, tuple(int(d) for d in v), 4)


def _check_shape_input(ctx: InferCtx, op: str) -> None:
    if len(ctx.shapes) != 1 or ctx.shapes[0] is None:
        raise OpError(f"{op} takes one input (the output shape), got {len(ctx.shapes)}")
    if np.dtype(ctx.dtypes[0]) != I32:
        raise OpError(f"{op}: the shape input '{ctx.name(0)}' is {np.dtype(ctx.dtypes[0]).name}; "
                      "it must be int32")
    if len(ctx.shapes[0]) != 1:
        raise OpError(f"{op}: the shape input '{ctx.name(0)}' has shape {list(ctx.shapes[0])}; it "
                      "must be 1-D")


def _dist_infer(op: str):
    def infer(ctx: InferCtx) -> list[ShapeDtype]:
        _check_shape_input(ctx, op)
        ctx.attrs.gen.prepare(tuple(ctx.shapes))
        return [(_shape_from_input(op, ctx.value(0, "the shape input")), F32)]
    return infer


def _uniform_reference(inputs: Sequence[np.ndarray | None], a: RandomAttrs) -> list[np.ndarray]:
    shape = _shape_from_input("RANDOM_UNIFORM", inputs[0])
    n = int(np.prod(shape, dtype=np.int64))
    return [_uint32_to_float(a.gen.draw(n)).reshape(shape)]


def _normal_reference(inputs: Sequence[np.ndarray | None], a: RandomAttrs) -> list[np.ndarray]:
    shape = _shape_from_input("RANDOM_STANDARD_NORMAL", inputs[0])
    n = int(np.prod(shape, dtype=np.int64))
    x = a.gen.draw(n + (n & 1))  # an odd count's last pair ends inside the same (last) block
    return [_box_muller(x)[:n].reshape(shape)]


def _random_cost(in_shapes: list, out_shapes: list, attrs: Any) -> Cost:
    n = sum(int(np.prod(s)) for s in out_shapes if s is not None)
    return Cost(flops=60.0 * n, bytes=4.0 * n)


# ---- MULTINOMIAL ---------------------------------------------------------------------------------

def _multinomial_infer(ctx: InferCtx) -> list[ShapeDtype]:
    op = "MULTINOMIAL"
    if len(ctx.shapes) != 2 or any(s is None for s in ctx.shapes):
        raise OpError(f"{op} takes two inputs (logits, num_samples), got {len(ctx.shapes)}")
    if np.dtype(ctx.dtypes[0]) != F32:
        raise OpError(f"{op}: logits '{ctx.name(0)}' are {np.dtype(ctx.dtypes[0]).name}; they must "
                      "be float32")
    if np.dtype(ctx.dtypes[1]) != I32:
        raise OpError(f"{op}: num_samples '{ctx.name(1)}' is {np.dtype(ctx.dtypes[1]).name}; it "
                      "must be int32")
    if len(ctx.shapes[0]) != 2:
        raise OpError(f"{op}: logits '{ctx.name(0)}' have shape {list(ctx.shapes[0])}; they must be "
                      "2-D [batch, classes]")
    if ctx.shapes[0][1] <= 0:
        raise OpError(f"{op}: logits '{ctx.name(0)}' have no classes (shape {list(ctx.shapes[0])})")
    if len(ctx.shapes[1]) != 0:
        raise OpError(f"{op}: num_samples '{ctx.name(1)}' has shape {list(ctx.shapes[1])}; it must "
                      "be a scalar")
    ctx.attrs.gen.prepare(tuple(ctx.shapes))
    ns = int(ctx.value(1, "num_samples"))
    if ns < 0:
        raise OpError(f"{op}: num_samples is {ns}; it must be >= 0")
    return [((ctx.shapes[0][0], ns), ctx.attrs.out_dtype or I64)]


def _multinomial_reference(inputs: Sequence[np.ndarray | None], a: RandomAttrs) -> list[np.ndarray]:
    logits = np.asarray(inputs[0], np.float32)
    ns_arr = np.asarray(inputs[1])
    if logits.ndim != 2 or logits.shape[1] <= 0 or ns_arr.ndim != 0:
        raise OpError(f"MULTINOMIAL: logits must be [batch, classes>0] and num_samples a scalar, got "
                      f"{list(logits.shape)} and {list(ns_arr.shape)}")
    ns = int(ns_arr)
    if ns < 0:
        raise OpError(f"MULTINOMIAL: num_samples is {ns}; it must be >= 0")
    batch, classes = logits.shape
    out_dtype = a.out_dtype or I64
    _check_size("MULTINOMIAL", (batch, ns), 8)  # 8: the draws and the doubles made from them
    draws = a.gen.draw(2 * batch * ns, advance=False)  # LiteRT samples from a copy ...
    a.gen.skip(batch * ((ns + 3) // 4 * 4) * 2 * 256)  # ... then skips the original by this much
    fin = np.isfinite(logits)
    mx = np.where(fin, logits, np.finfo(np.float32).min).max(axis=1).astype(np.float64)
    weights = np.exp(np.where(fin, logits.astype(np.float64) - mx[:, None], -np.inf))  # 0 if not finite
    cdf = np.cumsum(weights, axis=1)  # sequential, in double, as LiteRT sums
    u = _uint64_to_double(draws[0::2], draws[1::2]).reshape(batch, ns)
    target = u * cdf[:, -1:]
    out = np.empty((batch, ns), out_dtype)
    for b in range(batch):  # one vectorised search per row
        out[b] = np.searchsorted(cdf[b], target[b], side="right")
    return [out]


# ---- STABLEHLO_RNG_BIT_GENERATOR -----------------------------------------------------------------

_ALGORITHMS = {0: "DEFAULT", 1: "PHILOX", 2: "THREEFRY"}


@dataclass(frozen=True)
class RngBitAttrs:
    algorithm: int
    out_shape: tuple[int, ...] | None = None  # output 1's declared static shape (bind)
    out_dtype: Any = None


def _rng_parse(options: dict[str, Any]) -> RngBitAttrs:
    return RngBitAttrs(int(options.get("algorithm", 0) or 0))


def _rng_bind(a: RngBitAttrs, inputs: list, outputs: list) -> RngBitAttrs:
    op = "STABLEHLO_RNG_BIT_GENERATOR"
    if len(inputs) != 1 or len(outputs) != 2 or inputs[0] is None:
        raise OpError(f"{op} takes 1 input (the state) and 2 outputs (new state, bits), the node has "
                      f"{len(inputs)} and {len(outputs)}")
    if a.algorithm not in _ALGORITHMS:
        raise OpError(f"{op}: unknown RNG algorithm {a.algorithm}; use DEFAULT (0), PHILOX (1) or "
                      "THREEFRY (2)")
    out = outputs[1]
    dt = np.dtype(out.dtype)
    if dt not in (I32, I64, U32, U64):
        raise OpError(f"{op}: output tensor '{out.name}' is {dt.name}; it must be int32, int64, "
                      "uint32 or uint64")
    shape = tuple(int(d) for d in out.shape)
    if any(d < 0 for d in shape):
        raise OpError(f"{op}: output tensor '{out.name}' must have a static shape, it has {list(shape)}")
    return RngBitAttrs(a.algorithm, shape, dt)


def _rng_infer(ctx: InferCtx) -> list[ShapeDtype]:
    op = "STABLEHLO_RNG_BIT_GENERATOR"
    a = ctx.attrs
    if a.out_shape is None:
        raise OpError(f"{op}: the output tensors were not bound")
    if len(ctx.shapes) != 1 or ctx.shapes[0] is None:
        raise OpError(f"{op} takes one input (the state)")
    if np.dtype(ctx.dtypes[0]) != U64:
        raise OpError(f"{op}: the state '{ctx.name(0)}' is {np.dtype(ctx.dtypes[0]).name}; it must "
                      "be uint64")
    shape = tuple(ctx.shapes[0])
    if len(shape) != 1:
        raise OpError(f"{op}: the state '{ctx.name(0)}' has shape {list(shape)}; it must be 1-D")
    if a.algorithm == 2 and shape[0] != 2:
        raise OpError(f"{op}: THREEFRY needs a state of 2 uint64 values, '{ctx.name(0)}' has {shape[0]}")
    if a.algorithm != 2 and shape[0] not in (2, 3):
        raise OpError(f"{op}: {_ALGORITHMS[a.algorithm]} (Philox) needs a state of 2 or 3 uint64 "
                      f"values, '{ctx.name(0)}' has {shape[0]}")
    return [(shape, U64), (a.out_shape, a.out_dtype)]


def _rng_reference(inputs: Sequence[np.ndarray | None], a: RngBitAttrs) -> list[np.ndarray]:
    op = "STABLEHLO_RNG_BIT_GENERATOR"
    state = np.ascontiguousarray(inputs[0], dtype=np.dtype("<u8"))
    size = state.shape[0] if state.ndim == 1 else -1
    if (a.algorithm == 2 and size != 2) or (a.algorithm != 2 and size not in (2, 3)):
        raise OpError(f"{op}: the state has shape {list(state.shape)}; {_ALGORITHMS[a.algorithm]} "
                      "needs 2 (THREEFRY) or 2-3 (Philox) uint64 values")
    words = state.view(np.uint32)
    k0, k1 = int(words[0]), int(words[1])
    start = int(words[2]) | (int(words[3]) << 32)
    n_out = int(np.prod(a.out_shape, dtype=np.int64))
    need = n_out * (a.out_dtype.itemsize // 4)
    per_block = 2 if a.algorithm == 2 else 4
    blocks = -(-need // per_block)
    ctr = (np.uint64(start) + np.arange(blocks, dtype=np.uint64))  # 64-bit counter, wraps
    lo, hi = (ctr & np.uint64(_U32)), ctr >> np.uint64(32)
    if a.algorithm == 2:
        bits = _threefry(k0, k1, lo.astype(np.uint32), hi.astype(np.uint32))
    else:
        w2, w3 = (int(words[4]), int(words[5])) if size == 3 else (k0, k1)
        bits = _philox(k0, k1, (lo, hi, np.full(blocks, w2, np.uint64), np.full(blocks, w3, np.uint64)))
    out = np.ascontiguousarray(bits[:need]).view(a.out_dtype.newbyteorder("<")).astype(a.out_dtype)
    new_state = state.copy()
    new_words = new_state.view(np.uint32)
    end = (start + blocks) & _M64
    new_words[2], new_words[3] = end & _U32, end >> 32
    return [new_state.astype(U64), out.reshape(a.out_shape)]


define("RANDOM_UNIFORM", parse=_parse_random, infer=_dist_infer("RANDOM_UNIFORM"),
       reference=_uniform_reference, cost=_random_cost, shape_inputs=(0,),
       bind=_bind_out_dtype("RANDOM_UNIFORM", 1, (F32,)), foldable=False)
define("RANDOM_STANDARD_NORMAL", parse=_parse_random, infer=_dist_infer("RANDOM_STANDARD_NORMAL"),
       reference=_normal_reference, cost=_random_cost, shape_inputs=(0,),
       bind=_bind_out_dtype("RANDOM_STANDARD_NORMAL", 1, (F32,)), foldable=False)
define("MULTINOMIAL", parse=_parse_random, infer=_multinomial_infer, reference=_multinomial_reference,
       cost=_random_cost, shape_inputs=(1,), bind=_bind_out_dtype("MULTINOMIAL", 2, (I32, I64)),
       foldable=False)
define("STABLEHLO_RNG_BIT_GENERATOR", parse=_rng_parse, infer=_rng_infer, reference=_rng_reference,
       cost=_random_cost, bind=_rng_bind, foldable=False)
