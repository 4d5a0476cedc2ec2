"""SEGMENT_SUM, UNSORTED_SEGMENT_SUM/PROD/MAX/MIN, UNIQUE and BUCKETIZE against LiteRT's builtin
kernels, through tflite_jit.Interpreter (numba and reference backends) and the reference kernel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import (
    Const,
    assert_close,
    check_all_backends,
    declared_op_model,
    litert_interpreter,
    one_op_model,
    rand_data,
    run_interpreter,
)
from tflite_jit import Interpreter, ops
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.ops.base import Dynamic

I32 = np.int32


# ---- SEGMENT_SUM ---------------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(st.sampled_from([np.float32, np.int32]), st.booleans(), st.data())
def test_segment_sum(dtype, const_ids, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    n = data.draw(st.integers(1, 6))
    rest = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    ids = np.concatenate([[0], np.cumsum(rng.integers(0, 2, n - 1))]).astype(I32)
    x = rand_data(rng, (n,) + rest, dtype)
    check_all_backends("SEGMENT_SUM", [x, Const(ids) if const_ids else ids])


def test_segment_sum_is_dynamic_on_run_time_ids_and_folds_constants() -> None:
    op = ops.get("SEGMENT_SUM")
    ctx = ops.InferCtx("SEGMENT_SUM", None, [(3, 2), (3,)], [np.dtype(np.float32), np.dtype(I32)], [None, None])
    with pytest.raises(Dynamic):
        op.infer(ctx)
    ctx.values[1] = np.array([0, 1, 1], I32)
    assert op.infer(ctx) == [((2, 2), np.dtype(np.float32))]


@pytest.mark.parametrize("ids,match", [([1, 1, 2], "start at 0"), ([0, 2, 2], "grow by 0 or 1"),
                                       ([0, 1, 0], "grow by 0 or 1")])
def test_segment_sum_bad_ids(ids, match) -> None:
    x = np.ones((3, 2), np.float32)
    with pytest.raises(ops.OpError, match=match):
        ops.get("SEGMENT_SUM").reference([x, np.array(ids, I32)], None)
    model = declared_op_model("SEGMENT_SUM", [x, np.array(ids, I32)], [((3, 2), np.float32)])
    it = Interpreter(model_content=model)
    with pytest.raises(RuntimeError, match="SEGMENT_SUM"):
        run_interpreter(it, [x, np.array(ids, I32)])
    with pytest.raises(RuntimeError):  # LiteRT fails at invoke too
        run_interpreter(litert_interpreter(model), [x, np.array(ids, I32)])


def test_segment_sum_prepare_errors() -> None:
    with pytest.raises(ops.OpError, match="int8"):
        one_op_model("SEGMENT_SUM", [((2,), np.int8), np.array([0, 0], I32)])
    with pytest.raises(ops.OpError, match="int64"):
        one_op_model("SEGMENT_SUM", [((2,), np.float32), np.array([0, 0], np.int64)])
    with pytest.raises(ops.OpError, match=r"must be 1-D with one id per row"):
        one_op_model("SEGMENT_SUM", [((3,), np.float32), np.array([0, 0], I32)])
    with pytest.raises(ops.OpError, match="rank >= 1"):
        one_op_model("SEGMENT_SUM", [((), np.float32), np.array([0], I32)])
    model = declared_op_model("SEGMENT_SUM", [np.zeros(2, np.int8), np.zeros(2, I32)], [((1,), np.int8)])
    with pytest.raises(RuntimeError, match="SEGMENT_SUM.*int8"):
        Interpreter(model_content=model).allocate_tensors()


# ---- UNSORTED_SEGMENT_* --------------------------------------------------------------------------

UNSORTED = ["UNSORTED_SEGMENT_SUM", "UNSORTED_SEGMENT_PROD", "UNSORTED_SEGMENT_MAX", "UNSORTED_SEGMENT_MIN"]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(UNSORTED), st.sampled_from([np.float32, np.int32]), st.booleans(), st.booleans(),
       st.booleans(), st.data())
def test_unsorted_segment(op, dtype, const_ids, const_num, scalar_num, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    n = data.draw(st.integers(1, 6))
    rest = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    num = data.draw(st.integers(1, 5))
    ids = rng.integers(-1, num, n).astype(I32)  # -1: the row is dropped; some segments stay empty
    x = rand_data(rng, (n,) + rest, dtype, -3, 4)
    nseg = np.array(num if scalar_num else [num], I32)
    check_all_backends(op, [x, Const(ids) if const_ids else ids, Const(nseg) if const_num else nseg])


@pytest.mark.parametrize("op", UNSORTED)
def test_unsorted_segment_errors(op) -> None:
    x = np.ones((3, 2), np.float32)
    ids = np.array([0, 3, 1], I32)
    with pytest.raises(ops.OpError, match="out of range for num_segments = 3"):
        ops.get(op).reference([x, ids, np.array(3, I32)], None)
    model = declared_op_model(op, [x, ids, np.array(3, I32)], [((3, 2), np.float32)])
    with pytest.raises(RuntimeError, match=op):
        run_interpreter(Interpreter(model_content=model, backend="reference"), [x, ids, np.array(3, I32)])
    with pytest.raises(RuntimeError):
        run_interpreter(litert_interpreter(model), [x, ids, np.array(3, I32)])
    # constant ids and num_segments: caught at plan time
    with pytest.raises(ops.OpError, match="out of range"):
        one_op_model(op, [((3, 2), np.float32), ids, np.array([3], I32)])
    with pytest.raises(ops.OpError, match="int64"):
        one_op_model(op, [((3,), np.int64), np.array([0, 0, 0], I32), np.array(1, I32)])
    with pytest.raises(ops.OpError, match="num_segments .* must be a scalar"):
        one_op_model(op, [((3,), np.float32), np.array([0, 0, 0], I32), np.array([1, 1], I32)])
    with pytest.raises(ops.OpError, match=">= 0"):
        one_op_model(op, [((3,), np.float32), np.array([-1, -1, -1], I32), np.array(-2, I32)])
    with pytest.raises(ops.OpError, match="one id per row"):
        one_op_model(op, [((3,), np.float32), np.array([[0, 0, 0]], I32), np.array(1, I32)])


def test_unsorted_segment_shape_known_from_num_segments_alone() -> None:
    ctx = ops.InferCtx("UNSORTED_SEGMENT_MAX", None, [(4, 2), (4,), ()],
                       [np.dtype(np.float32), np.dtype(I32), np.dtype(I32)], [None, None, np.array(6, I32)])
    assert ops.get("UNSORTED_SEGMENT_MAX").infer(ctx) == [((6, 2), np.dtype(np.float32))]
    ctx.values[2] = None
    with pytest.raises(Dynamic):
        ops.get("UNSORTED_SEGMENT_MAX").infer(ctx)


# ---- UNIQUE --------------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.sampled_from([np.float32, np.int8, np.int16, np.int32, np.int64, np.uint8]),
       st.sampled_from([None, "INT32", "INT64"]), st.booleans(), st.data())
def test_unique(dtype, idx_type, const_input, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    n = data.draw(st.integers(1, 12))
    x = rng.integers(0, data.draw(st.integers(1, 6)), n).astype(dtype)
    if np.dtype(dtype).kind == "f":
        x = x - 2.5
    opts = {} if idx_type is None else {"idx_out_type": idx_type}
    check_all_backends("UNIQUE", [Const(x) if const_input else x], n_outputs=2, **opts)


def test_unique_signed_zero_keeps_the_first() -> None:
    theirs = check_all_backends("UNIQUE", [np.array([-0.0, 1.0, 0.0, -0.0], np.float32)], n_outputs=2)
    assert np.signbit(theirs[0][0])


def test_unique_errors() -> None:
    with pytest.raises(ops.OpError, match="NaN"):
        ops.get("UNIQUE").reference([np.array([1, np.nan], np.float32)], ops.get("UNIQUE").parse({}))
    model = declared_op_model("UNIQUE", [np.zeros(2, np.float32)], [((2,), np.float32), ((2,), I32)])
    with pytest.raises(RuntimeError, match="UNIQUE.*NaN"):
        run_interpreter(Interpreter(model_content=model), [np.array([1, np.nan], np.float32)])
    with pytest.raises(ops.OpError, match="1-D"):
        one_op_model("UNIQUE", [np.zeros((2, 2), np.float32)], n_outputs=2)
    with pytest.raises(ops.OpError, match="bool"):
        one_op_model("UNIQUE", [np.zeros(2, np.bool_)], n_outputs=2)
    with pytest.raises(ops.OpError, match="idx_out_type 9"):
        one_op_model("UNIQUE", [np.zeros(2, np.float32)], n_outputs=2, idx_out_type=9)
    # the index output declared int32 while the options ask for int64: LiteRT fails at prepare too
    model = declared_op_model("UNIQUE", [np.zeros(2, np.float32)], [((2,), np.float32), ((2,), I32)], idx_out_type="INT64")
    with pytest.raises(RuntimeError, match="UNIQUE.*declared int32"):
        Interpreter(model_content=model).allocate_tensors()
    with pytest.raises(RuntimeError):
        litert_interpreter(model).allocate_tensors()


def test_unique_run_time_sized_twice() -> None:
    model = declared_op_model("UNIQUE", [np.zeros(6, I32)], [((6,), I32), ((6,), I32)])
    ours, theirs = Interpreter(model_content=model, backend="reference"), litert_interpreter(model)
    for x in (np.array([1, 2, 1, 3, 3, 2], I32), np.array([5, 5, 5, 5, 5, 5], I32)):
        for a, b in zip(run_interpreter(ours, [x]), run_interpreter(theirs, [x])):
            assert_close(a, b)


# ---- BUCKETIZE -----------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.sampled_from([np.float32, np.float64, np.int32, np.int64]), st.data())
def test_bucketize(dtype, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    shape = tuple(data.draw(st.lists(st.integers(1, 4), max_size=3)))
    nb = data.draw(st.integers(0, 6))
    bounds = np.sort(rng.integers(-8, 9, nb) + rng.choice([0.0, 0.5], nb)).astype(np.float32)
    x = rng.integers(-10, 11, shape).astype(dtype)
    if np.dtype(dtype).kind == "f":
        x = (x + rng.choice([0.0, 0.5, 0.25], shape)).astype(dtype)  # hits boundaries exactly too
    check_all_backends("BUCKETIZE", [x], boundaries=bounds)


def test_bucketize_edge_values() -> None:
    bounds = np.array([0, 1], np.float32)
    check_all_backends("BUCKETIZE", [np.array([np.nan, -np.inf, np.inf, 0, 1], np.float32)], boundaries=bounds)
    # int32 compared as float32: 16777217 rounds to 16777216
    check_all_backends("BUCKETIZE", [np.array([16777217, 16777216], I32)],
              boundaries=np.array([16777216, 16777218], np.float32))


def test_bucketize_errors() -> None:
    with pytest.raises(ops.OpError, match="sorted"):
        one_op_model("BUCKETIZE", [((2,), np.float32)], boundaries=np.array([0, 5, 1], np.float32))
    with pytest.raises(ops.OpError, match="NaN"):
        one_op_model("BUCKETIZE", [((2,), np.float32)], boundaries=np.array([0, np.nan], np.float32))
    with pytest.raises(ops.OpError, match="missing"):
        one_op_model("BUCKETIZE", [((2,), np.float32)])
    with pytest.raises(ops.OpError, match="int8"):
        one_op_model("BUCKETIZE", [((2,), np.int8)], boundaries=np.array([0], np.float32))
    model = declared_op_model("BUCKETIZE", [np.zeros(2, np.float32)], [((2,), np.float32)],
                   boundaries=np.array([0, 5, 1], np.float32))
    with pytest.raises(RuntimeError, match="BUCKETIZE.*sorted"):
        Interpreter(model_content=model).allocate_tensors()
    with pytest.raises(RuntimeError, match="sorted"):
        litert_interpreter(model).allocate_tensors()


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_run_time_sized_outputs_feed_later_ops(backend) -> None:
    # UNIQUE's indices drive SEGMENT_SUM (run-time segment count); both results flow into ADD/MUL
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (6,), np.float32)
    v = g.input("v", (6, 2), np.float32)
    vals, idx = g.tensor("vals", (6,), np.float32), g.tensor("idx", (6,), I32)
    g.op("UNIQUE", [x], [vals, idx])
    sums = g.tensor("sums", (6, 2), np.float32)
    g.op("UNSORTED_SEGMENT_SUM", [v, idx, g.const("n", np.array(6, I32))], [sums])
    seg = g.tensor("seg", (6, 2), np.float32)
    g.op("SEGMENT_SUM", [v, g.const("ids", np.array([0, 0, 1, 2, 2, 2], I32))], [seg])
    (doubled,) = g.apply("ADD", [vals, vals])
    (prod,) = g.apply("MUL", [sums, sums])
    g.output(doubled, prod, seg)
    model = mb.build()
    rng = np.random.default_rng(5)
    for x_val in (np.array([1, 2, 1, 3, 2, 1], np.float32), np.array([4, 4, 4, 4, 4, 4], np.float32)):
        feeds = [x_val, rng.standard_normal((6, 2)).astype(np.float32)]
        theirs = run_interpreter(litert_interpreter(model), feeds)
        ours = run_interpreter(Interpreter(model_content=model, backend=backend), feeds)
        for a, b in zip(ours, theirs):
            assert_close(a, b)


def test_bucketize_compares_int_as_float32_and_float64_in_double() -> None:
    # 2**40 - 1 rounds to 2**40 in float32; float64 0.1 lies below float32(0.1)
    theirs = check_all_backends("BUCKETIZE", [np.array([2**40 + 1, 2**40, 2**40 - 1, -2**62], np.int64)],
                       boundaries=np.array([2**40], np.float32))
    assert theirs[0].tolist() == [1, 1, 1, 0]
    theirs = check_all_backends("BUCKETIZE", [np.array([0.1, 0.10000000149011612], np.float64)],
                       boundaries=np.array([0.1], np.float32))
    assert theirs[0].tolist() == [0, 1]


def test_empty_inputs_give_empty_outputs() -> None:
    check_all_backends("UNIQUE", [np.zeros(0, I32)], n_outputs=2)
    check_all_backends("SEGMENT_SUM", [np.zeros((0, 2), np.float32), np.zeros(0, I32)])
    check_all_backends("UNSORTED_SEGMENT_SUM", [np.ones((2, 2), np.float32), np.array([-1, -1], I32), np.array(0, I32)])
