"""ATAN2, BITWISE_XOR, RIGHT_SHIFT, RELU_0_TO_1 and FAKE_QUANT against LiteRT's builtin kernels,
on the Numba backend (which compiles the float32/int32 forms and falls back to reference for the
other integer types) and on the reference backend."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import both_reject, chain_model, check_backends, check_one_fused_kernel, one_op_model
from tests.shapes import draw_broadcast_pair, draw_shape
from tflite_jit.ops.math import FakeQuantAttrs, fake_quant_nudge

F32, I8, I16, I32, I64, U8, U16, U32 = (np.float32, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                       np.uint16, np.uint32)
BITWISE_TYPES = [I8, I16, I32, U8, U16, U32]


def _check(op: str, xs: list[np.ndarray], compiled: bool, **options) -> None:
    """Ours (Numba and reference backends) against LiteRT; `compiled`: Numba must compile it."""
    backends = check_backends(op, xs, **options)
    assert backends == ({"numba_cpu"} if compiled else {"reference"}), backends


SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, 1e-30, -1e30], F32)


def _floats(rng, shape, lo=-5.0, hi=5.0) -> np.ndarray:
    x = rng.uniform(lo, hi, shape).astype(F32)
    if x.size:
        k = min(x.size, 3)
        x.flat[rng.choice(x.size, k, replace=False)] = rng.choice(SPECIALS, k)
    return x


# ---- ATAN2 -------------------------------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_atan2(data) -> None:
    shape = draw_shape(data.draw, min_rank=0)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    _check("ATAN2", [_floats(rng, shape), _floats(rng, shape)], compiled=True)


def test_atan2_quadrants_and_signed_zeros() -> None:
    y = np.array([np.nan, 1, np.inf, -0.0, 0.0, -np.inf, 1, -1, 0, -0.0, 3, -3], F32)
    x = np.array([1, np.nan, np.inf, -0.0, -0.0, np.inf, 0, 0, 0, 0, -4, -4], F32)
    _check("ATAN2", [y, x], compiled=True)


@pytest.mark.parametrize("ys,xs,dt,match,litert_too", [
    ((2, 3), (1, 3), F32, "does not broadcast", False),  # LiteRT reads x out of bounds
    ((2, 3), (3,), F32, "does not broadcast", True),
    ((3,), (3,), I32, "float32", True),
])
def test_atan2_rejects(ys, xs, dt, match, litert_too) -> None:
    model = one_op_model("ATAN2", [(ys, dt), (xs, dt)], outputs=[(ys, dt)])
    both_reject(model, [np.ones(ys, dt), np.ones(xs, dt)], match, litert_too)


# ---- BITWISE_XOR / RIGHT_SHIFT --------------------------------------------------------------------

def _int_values(rng, shape, dt) -> np.ndarray:
    info = np.iinfo(dt)
    return rng.integers(info.min, int(info.max) + 1, shape, dtype=np.int64).astype(dt)


def _counts(rng, shape, dt) -> np.ndarray:
    bits = np.dtype(dt).itemsize * 8
    lo = 0 if np.dtype(dt).kind == "u" else -4
    hi = min(bits + 6, int(np.iinfo(dt).max))
    return rng.integers(lo, hi + 1, shape).astype(dt)


@settings(max_examples=30, deadline=None)
@given(op=st.sampled_from(["BITWISE_XOR", "RIGHT_SHIFT"]), dt=st.sampled_from(BITWISE_TYPES),
       data=st.data())
def test_bitwise_broadcasting(op, dt, data) -> None:
    a_shape, b_shape = draw_broadcast_pair(data.draw, max_rank=5)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    b = _counts(rng, b_shape, dt) if op == "RIGHT_SHIFT" else _int_values(rng, b_shape, dt)
    _check(op, [_int_values(rng, a_shape, dt), b], compiled=dt == I32)


@pytest.mark.parametrize("dt", BITWISE_TYPES)
def test_right_shift_clamps_the_count(dt) -> None:
    bits = np.dtype(dt).itemsize * 8
    counts = [0, 1, bits - 1, bits, bits + 1, min(100, int(np.iinfo(dt).max)), int(np.iinfo(dt).max)]
    if np.dtype(dt).kind == "i":
        counts += [-1, -2, int(np.iinfo(dt).min)]
    counts = np.array(counts, dt)
    info = np.iinfo(dt)
    for v in (info.min, info.max, -1 if info.min < 0 else 1, 0):
        _check("RIGHT_SHIFT", [np.full(counts.shape, v, dt), counts], compiled=dt == I32)


@pytest.mark.parametrize("op", ["BITWISE_XOR", "RIGHT_SHIFT"])
@pytest.mark.parametrize("da,db,match", [(F32, F32, "supports"), (I64, I64, "supports"),
                                         (I32, I16, "same type")])
def test_bitwise_rejects_types(op, da, db, match) -> None:
    model = one_op_model(op, [((3,), da), ((3,), db)], outputs=[((3,), da)])
    both_reject(model, [np.ones(3, da), np.ones(3, db)], match)


def test_bitwise_rejects_unbroadcastable_shapes() -> None:
    model = one_op_model("BITWISE_XOR", [((2, 3), I32), ((2, 2), I32)], outputs=[((2, 3), I32)])
    both_reject(model, [np.ones((2, 3), I32), np.ones((2, 2), I32)], "broadcast")


# ---- RELU_0_TO_1 -----------------------------------------------------------------------------------

@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_relu_0_to_1(data) -> None:
    shape = draw_shape(data.draw, min_rank=0)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    _check("RELU_0_TO_1", [_floats(rng, shape, -2, 2)], compiled=True)


def test_relu_0_to_1_rejects_int32() -> None:
    model = one_op_model("RELU_0_TO_1", [((3,), I32)], outputs=[((3,), I32)])
    both_reject(model, [np.ones(3, I32)], "float32")


# ---- FAKE_QUANT ------------------------------------------------------------------------------------

def _fq_values(rng, shape, lo: float, hi: float, num_bits: int) -> np.ndarray:
    x = rng.uniform(lo - 1, hi + 1, shape).astype(F32)
    if x.size:
        # points of the nudged grid and midpoints between them (rounding ties), plus NaN/inf
        nlo, _, step = fake_quant_nudge(FakeQuantAttrs(lo, hi, num_bits))
        k = rng.integers(0, (1 << num_bits), x.size)
        grid = (nlo + (k + rng.choice([0.0, 0.5], x.size)) * np.float32(step)).astype(F32)
        pick = rng.random(x.size) < 0.6
        x.flat[pick] = grid[pick]
        x.flat[0] = rng.choice(SPECIALS)
    return x


@settings(max_examples=25, deadline=None)
@given(lo=st.floats(-20, 1, width=32), width=st.floats(float(np.float32(0.01)), 30, width=32),
       num_bits=st.integers(1, 16), data=st.data())
def test_fake_quant(lo, width, num_bits, data) -> None:
    hi = float(np.float32(lo + width))
    if not lo < hi:
        return
    shape = draw_shape(data.draw, min_rank=0)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    _check("FAKE_QUANT", [_fq_values(rng, shape, lo, hi, num_bits)], compiled=True,
           min=lo, max=hi, num_bits=num_bits)


@pytest.mark.parametrize("lo,hi,bits", [(-6.0, 6.0, 8), (-1.0, 1.0, 8), (0.5, 3.0, 8), (-3.0, -0.5, 4),
                                        (-6.0, 6.0, 1), (-6.0, 6.0, 16), (0.0, 1.0, 2)])
def test_fake_quant_fixed_ranges(lo, hi, bits) -> None:
    x = np.concatenate([np.linspace(-8, 8, 161), [np.nan, np.inf, -np.inf, 0.0]]).astype(F32)
    _check("FAKE_QUANT", [x], compiled=True, min=lo, max=hi, num_bits=bits)


@pytest.mark.parametrize("opts,dt,match", [
    (dict(min=-1.0, max=1.0, num_bits=8, narrow_range=True), F32, "narrow_range"),
    (dict(min=-1.0, max=1.0, num_bits=0), F32, "num_bits"),
    (dict(min=3.0, max=3.0, num_bits=8), F32, "min < max"),
    (dict(min=4.0, max=2.0, num_bits=8), F32, "min < max"),
])
def test_fake_quant_rejects(opts, dt, match) -> None:
    model = one_op_model("FAKE_QUANT", [((3,), dt)], outputs=[((3,), dt)], **opts)
    # LiteRT runs all but narrow_range (NaN / meaningless results); we reject them all
    both_reject(model, [np.ones(3, dt)], match, litert_too=bool(opts.get("narrow_range")))


@pytest.mark.parametrize("opts", [dict(min=-1.0, max=1.0, num_bits=17), dict(min=-1.0, max=1.0, num_bits=31)])
def test_fake_quant_rejects_wide_bits(opts) -> None:
    # LiteRT casts an out-of-range zero point to uint16 (undefined behaviour); we reject
    model = one_op_model("FAKE_QUANT", [((3,), F32)], outputs=[((3,), F32)], **opts)
    both_reject(model, [np.ones(3, F32)], "num_bits", litert_too=False)


def test_fake_quant_rejects_int32_input() -> None:
    # LiteRT reads the int32 buffer as float32 (no type check); we reject
    model = one_op_model("FAKE_QUANT", [((3,), I32)], outputs=[((3,), I32)], min=-1.0, max=1.0,
                         num_bits=8)
    both_reject(model, [np.ones(3, I32)], "float32", litert_too=False)


# ---- fusion ----------------------------------------------------------------------------------------

def test_numba_fuses_the_new_ops_into_one_kernel() -> None:
    model = chain_model({"y": ((4, 9), F32), "x": ((4, 9), F32)},
                        [("ATAN2", "y", "x"), ("RELU_0_TO_1", "t"),
                         ("FAKE_QUANT", "t", dict(min=-0.5, max=1.5, num_bits=5))])
    rng = np.random.default_rng(5)
    xs = [_floats(rng, (4, 9)), _floats(rng, (4, 9))]
    check_one_fused_kernel(model, xs)


def test_numba_fuses_int32_bitwise_chain() -> None:
    model = chain_model({"a": ((3, 8), I32), "b": ((8,), I32), "c": ((3, 1), I32)},
                        [("BITWISE_XOR", "a", "b"), ("RIGHT_SHIFT", "t", "c"), ("ADD", "t", "a")])
    rng = np.random.default_rng(6)
    xs = [_int_values(rng, (3, 8), I32), _int_values(rng, (8,), I32), _counts(rng, (3, 1), I32)]
    check_one_fused_kernel(model, xs)
