"""Differential tests of ops.reduce (MEAN, SUM, SOFTMAX) against LiteRT's builtin kernels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ops.test_nn import Const, build, check, infer, litert_rejects, rand, run_both
from tests.oracle import assert_bit_exact, assert_close, litert_run, one_op_model
from tflite_jit.ops import reduce
from tflite_jit.ops.base import Dynamic, InferCtx, OpDef, OpError, PatternKind

HYP = settings(max_examples=25, deadline=None)


@st.composite
def reduce_case(draw: st.DrawFn) -> tuple[tuple[int, ...], np.ndarray]:
    """A shape and an axis tensor: values in [-rank, rank), repeats allowed, sometimes a scalar."""
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=0, max_size=5)))
    r = len(shape)
    if r and draw(st.booleans()):
        axis = np.array(draw(st.integers(-r, r - 1)), np.int32)  # rank-0 axis tensor
    else:
        axis = np.array(draw(st.lists(st.integers(-r, r - 1), max_size=6)) if r else [], np.int32)
    return shape, axis


@HYP
@given(case=reduce_case(), keep=st.booleans(), op=st.sampled_from([reduce.MEAN, reduce.SUM]),
       seed=st.integers(0, 2**16))
def test_mean_sum(case: tuple, keep: bool, op: OpDef, seed: int) -> None:
    shape, axis = case
    x = rand(np.random.default_rng(seed), shape, 2) + np.float32(1)
    check(op, [x, Const(axis)], keep_dims=keep)


@pytest.mark.parametrize("op", [reduce.MEAN, reduce.SUM], ids=["mean", "sum"])
@pytest.mark.parametrize("axes", [[1, 2], [3], [0, 1, 2, 3], [-1, 1]])
def test_mean_sum_large_is_tight(op: OpDef, axes: list) -> None:
    """Float32 accumulation in LiteRT's order: spatial MEAN ([1, 2]) is bit-exact, the rest stay
    far inside the contract."""
    x = rand(np.random.default_rng(0), (2, 48, 40, 16)) + np.float32(3)
    ours, theirs = run_both(op, [x, Const(np.array(axes, np.int32))], keep_dims=False)
    assert_close(ours[0], theirs[0], rtol=1e-5)
    if axes == [1, 2]:
        np.testing.assert_array_equal(ours[0], theirs[0])


def test_mean_with_run_time_axis() -> None:
    """A non-constant axis: infer cannot answer (Dynamic), the kernel still matches LiteRT."""
    x = rand(np.random.default_rng(1), (2, 3, 4))
    axis = np.array([-1, 0], np.int32)
    with pytest.raises(Dynamic):
        infer(reduce.MEAN, [x, axis], keep_dims=True)
    theirs = litert_run(build(reduce.MEAN, [x, axis], [((1, 3, 1), np.float32)], keep_dims=True),
                        [x, axis])
    ours = reduce.MEAN.reference([x, axis], reduce.MEAN.parse({"keep_dims": True}))
    assert_close(ours[0], theirs[0])


@pytest.mark.parametrize("dtype, bound", [(np.int32, 2**31 - 1), (np.int32, 1000), (np.int64, 2**62), (np.int64, 2**40)])
@pytest.mark.parametrize("op", ["SUM", "MEAN"])
@pytest.mark.parametrize("axes, keep", [([1], False), ([0, 2], True), ([-1], False)])
def test_integer_sum_and_mean_match_litert(op: str, dtype, bound: int, axes: list, keep: bool) -> None:
    """SUM wraps around in the input type; MEAN sums in int64 and truncates toward zero (values
    near the type's limits make both visible)."""
    x = np.random.default_rng(bound % 97).integers(-bound, bound, (2, 3, 5)).astype(dtype)
    x.flat[0] = np.iinfo(dtype).min  # a wrapping sum and a negative truncation
    model = one_op_model(op, [(x.shape, dtype), np.array(axes, np.int32)], keep_dims=keep)
    assert_bit_exact(model, [x], backends=(None, "reference"))


def test_mean_over_empty_axis_is_nan() -> None:
    ours, theirs = run_both(reduce.MEAN, [np.zeros((0, 3), np.float32), Const(np.array([0], np.int32))])
    assert np.isnan(theirs[0]).all()
    assert_close(ours[0], theirs[0])


@pytest.mark.parametrize("op", [reduce.MEAN, reduce.SUM], ids=["mean", "sum"])
def test_axis_out_of_range(op: OpDef) -> None:
    x = np.zeros((1, 5, 5, 3), np.float32)
    inputs = [x, Const(np.array([4], np.int32))]
    with pytest.raises(OpError, match=r"axis 4 .*'t0'.*\[-4, 4\)"):
        infer(op, inputs)
    litert_rejects(op, inputs, [((1, 5, 5), np.float32)])


def test_axis_must_be_int32() -> None:
    """LiteRT's reduce kernels refuse an int64 axis tensor (the converter always writes int32)."""
    inputs = [np.zeros((2, 3), np.float32), Const(np.array([1], np.int64))]
    with pytest.raises(OpError, match="'t1' must be int32"):
        infer(reduce.SUM, inputs)
    litert_rejects(reduce.SUM, inputs, [((2,), np.float32)])


def test_reduce_shape_rule() -> None:
    x = np.zeros((2, 3, 4, 5), np.float32)
    axis = Const(np.array([-1, 1, 3, 1], np.int32))  # repeats collapse, negatives wrap
    assert infer(reduce.MEAN, [x, axis]) == [((2, 4), np.float32)]
    assert infer(reduce.SUM, [x, axis], keep_dims=True) == [((2, 1, 4, 1), np.float32)]
    assert infer(reduce.SUM, [x, Const(np.zeros(0, np.int32))]) == [((2, 3, 4, 5), np.float32)]


# ---- SOFTMAX ------------------------------------------------------------------------------------


@HYP
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=6),
       beta=st.sampled_from([0.0, 0.5, 1.0, 2.5, -1.0]), scale=st.sampled_from([1.0, 30.0]),
       seed=st.integers(0, 2**16))
def test_softmax(shape: list, beta: float, scale: float, seed: int) -> None:
    x = rand(np.random.default_rng(seed), shape, scale)
    check(reduce.SOFTMAX, [x], beta=beta)


def test_softmax_wide_rows_stay_stable() -> None:
    """Large logits must not overflow: the max is subtracted before exp."""
    x = rand(np.random.default_rng(2), (3, 1000), 50)
    ours, theirs = run_both(reduce.SOFTMAX, [x], beta=1.0)
    assert np.isfinite(ours[0]).all()
    assert_close(ours[0], theirs[0], rtol=1e-5)


def test_softmax_rejects_scalar() -> None:
    inputs = [np.zeros((), np.float32)]
    with pytest.raises(OpError, match="'t0' must have rank >= 1"):
        infer(reduce.SOFTMAX, inputs, beta=1.0)
    litert_rejects(reduce.SOFTMAX, inputs, [((), np.float32)], beta=1.0)


def test_softmax_default_beta_is_uniform() -> None:
    """Options absent: beta reads as the schema default 0.0, so every row is uniform (as LiteRT)."""
    assert reduce.SOFTMAX.parse({}).beta == 0.0
    check(reduce.SOFTMAX, [rand(np.random.default_rng(3), (2, 5))])


# ---- metadata -----------------------------------------------------------------------------------


def test_kinds_costs_and_shape_inputs() -> None:
    assert reduce.MEAN.kind == reduce.SUM.kind == PatternKind.REDUCTION
    assert reduce.SOFTMAX.kind == PatternKind.OPAQUE
    assert reduce.MEAN.shape_inputs == reduce.SUM.shape_inputs == (1,)
    c = reduce.MEAN.cost([(2, 8, 8, 3), (2,)], [(2, 3)], reduce.MEAN.parse({}))
    assert c.flops == 384 and c.bytes == 4 * (384 + 6)
    assert reduce.SOFTMAX.cost([(4, 10)], [(4, 10)], reduce.SOFTMAX.parse({})).flops > 0
    ctx = InferCtx("SUM", reduce.SUM.parse({}), [(2, 3), (1,)], [np.float32, np.int32],
                   [None, np.array([1], np.int32)])
    assert reduce.SUM.infer(ctx) == [((2,), np.float32)]
