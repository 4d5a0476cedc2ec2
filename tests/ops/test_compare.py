"""Comparisons, SELECT/SELECT_V2 and REDUCE_PROD/MAX/MIN against LiteRT's builtin kernels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import assert_close, litert_run, one_op_model
from tests.shapes import draw_broadcast_pair
from tflite_jit import ops

COMPARISONS = ["LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL"]


def _values(rng, shape, dtype) -> np.ndarray:
    if np.dtype(dtype) == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    return rng.integers(-3, 4, shape).astype(dtype)  # small ranges make ties likely


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(COMPARISONS), st.sampled_from([np.float32, np.int32, np.int64]), st.data())
def test_comparisons(op: str, dtype, data) -> None:
    a_shape, b_shape = draw_broadcast_pair(data.draw, swap=False)
    if data.draw(st.booleans()):
        a_shape, b_shape = b_shape, a_shape
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    a, b = _values(rng, a_shape, dtype), _values(rng, b_shape, dtype)
    model = one_op_model(op, [(a_shape, dtype), (b_shape, dtype)])
    (theirs,) = litert_run(model, [a, b])
    (ours,) = ops.get(op).reference([a, b], None)
    assert_close(ours, theirs)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([np.float32, np.int32]), st.data())
def test_select_v2_broadcasts(dtype, data) -> None:
    shape, c_shape = draw_broadcast_pair(data.draw, swap=False)
    x_shape = tuple(shape)
    y_shape = tuple(d if data.draw(st.booleans()) else 1 for d in shape)
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    c = rng.integers(0, 2, c_shape).astype(np.bool_)
    x, y = _values(rng, x_shape, dtype), _values(rng, y_shape, dtype)
    model = one_op_model("SELECT_V2", [(c_shape, np.bool_), (x_shape, dtype), (y_shape, dtype)])
    (theirs,) = litert_run(model, [c, x, y])
    (ours,) = ops.get("SELECT_V2").reference([c, x, y], None)
    assert_close(ours, theirs)


@pytest.mark.parametrize("c_shape", [(2, 3), (2,)])
def test_select_v1(c_shape) -> None:
    rng = np.random.default_rng(0)
    c = rng.integers(0, 2, c_shape).astype(np.bool_)
    x, y = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)
    model = one_op_model("SELECT", [(c_shape, np.bool_), ((2, 3), np.float32), ((2, 3), np.float32)])
    (theirs,) = litert_run(model, [c, x, y])
    (ours,) = ops.get("SELECT").reference([c, x, y], None)
    assert_close(ours, theirs)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["REDUCE_PROD", "REDUCE_MAX", "REDUCE_MIN"]),
       st.sampled_from([np.float32, np.int32]), st.booleans(), st.data())
def test_extremum_reductions(op: str, dtype, keep_dims: bool, data) -> None:
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    axes = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=3))
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    x = (rng.integers(-3, 4, shape) if dtype == np.int32 else rng.uniform(-1.5, 1.5, shape)).astype(dtype)
    axis = np.array(axes, np.int32)
    model = one_op_model(op, [(shape, dtype), axis], keep_dims=keep_dims)
    (theirs,) = litert_run(model, [x])
    (ours,) = ops.get(op).reference([x, axis], ops.get(op).parse({"keep_dims": keep_dims}))
    assert_close(ours, theirs)


def test_comparison_type_mismatch_is_rejected() -> None:
    with pytest.raises(ops.OpError, match="same|share"):
        one_op_model("LESS", [((2,), np.float32), ((2,), np.int32)])
