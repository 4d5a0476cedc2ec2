"""GATHER_ND, SCATTER_ND, ONE_HOT, CUMSUM, REDUCE_ANY/ALL, ARG_MAX/MIN, WHERE, TOPK_V2 against
LiteRT's builtin kernels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import Const, assert_close, check_reference, litert_interpreter, one_op_model
from tests.shapes import draw_shape
from tflite_jit import Interpreter, ops
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.ops.base import Dynamic

DTYPES = [np.float32, np.int32, np.int64, np.int8, np.uint8]


def _arr(rng, shape, dtype, lo=0, hi=100) -> np.ndarray:
    if np.dtype(dtype) == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(lo, hi, shape).astype(dtype)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(DTYPES + [np.bool_, np.int16]), st.sampled_from([np.int16, np.int32, np.int64]), st.data())
def test_gather_nd(dtype, itype, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    shape = draw_shape(data.draw)
    k = data.draw(st.integers(1, len(shape)))
    batch = draw_shape(data.draw, 1, 3, 0, 2)
    idx = np.stack([rng.integers(0, d, batch) for d in shape[:k]], axis=-1).astype(itype)
    check_reference("GATHER_ND", [_arr(rng, shape, dtype), idx])


def test_gather_nd_errors() -> None:
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ops.OpError, match="out of bounds"):
        ops.get("GATHER_ND").reference([x, np.array([[1, 3]], np.int32)], None)
    with pytest.raises(ops.OpError, match="out of bounds"):
        ops.get("GATHER_ND").reference([x, np.array([[-1, 0]], np.int32)], None)
    with pytest.raises(ops.OpError, match="exceeds the rank"):
        one_op_model("GATHER_ND", [((2, 3), np.float32), ((1, 3), np.int32)])
    with pytest.raises(ops.OpError, match="empty last dimension"):
        one_op_model("GATHER_ND", [((2, 3), np.float32), ((1, 0), np.int32)])


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(DTYPES + [np.bool_]), st.data())
def test_scatter_nd(dtype, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    shape = draw_shape(data.draw)
    k = data.draw(st.integers(1, len(shape)))
    batch = draw_shape(data.draw, 1, 3, 0 if k < len(shape) else 1, 2)  # LiteRT: updates of rank >= 1
    idx = np.stack([rng.integers(0, d, batch) for d in shape[:k]], axis=-1).astype(np.int32)
    # small values: repeated indices add up, and int8 must not overflow
    upd = _arr(rng, tuple(batch) + shape[k:], dtype, 0, 5)
    check_reference("SCATTER_ND", [idx, upd, Const(np.array(shape, np.int32))])


def test_scatter_nd_errors() -> None:
    with pytest.raises(ops.OpError, match="out of bounds"):
        ops.get("SCATTER_ND").reference([np.array([[2]], np.int32), np.ones((1, 3), np.float32),
                                         np.array([2, 3], np.int32)], None)
    with pytest.raises(ops.OpError, match="updates .* must have shape"):
        one_op_model("SCATTER_ND", [((2, 1), np.int32), ((2, 4), np.float32), np.array([2, 3], np.int32)])
    with pytest.raises(ops.OpError, match="int32"):
        one_op_model("SCATTER_ND", [((2, 1), np.int64), ((2, 3), np.float32), np.array([2, 3], np.int64)])


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([np.float32, np.int32, np.int64, np.int8, np.bool_]),
       st.sampled_from([np.int32, np.int64]), st.data())
def test_one_hot(dtype, itype, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    shape = draw_shape(data.draw, 1, 3, 0, 3)
    depth = data.draw(st.integers(0, 4))
    axis = data.draw(st.integers(-1, len(shape)))
    idx = rng.integers(-1, depth + 2, shape).astype(itype)  # out-of-range rows are all off_value
    on, off = _arr(rng, (), dtype), _arr(rng, (), dtype)
    dtype_depth = data.draw(st.sampled_from([np.int32, np.int64]))
    check_reference("ONE_HOT", [idx, Const(np.array(depth, dtype_depth)), on, off], axis=axis)


def test_one_hot_errors() -> None:
    with pytest.raises(ops.OpError, match="axis 3 is out of range"):
        one_op_model("ONE_HOT", [((2,), np.int32), np.array(3, np.int32), ((), np.float32), ((), np.float32)],
                     axis=3)
    with pytest.raises(ops.OpError, match="same type"):
        one_op_model("ONE_HOT", [((2,), np.int32), np.array(3, np.int32), ((), np.float32), ((), np.int32)])


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([np.float32, np.int32, np.int64]), st.booleans(), st.booleans(), st.booleans(), st.data())
def test_cumsum(dtype, exclusive, reverse, const_axis, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    shape = draw_shape(data.draw)
    axis = np.array(data.draw(st.integers(-len(shape), len(shape) - 1)), np.int32)
    x = _arr(rng, shape, dtype, -50, 50)
    check_reference("CUMSUM", [x, Const(axis) if const_axis else axis], exclusive=exclusive, reverse=reverse)


def test_cumsum_errors() -> None:
    with pytest.raises(ops.OpError, match="int8"):
        one_op_model("CUMSUM", [((2,), np.int8), np.array(0, np.int32)])
    with pytest.raises(ops.OpError, match="must be int32"):
        one_op_model("CUMSUM", [((2,), np.float32), np.array(0, np.int64)])
    with pytest.raises(ops.OpError, match="out of range"):
        one_op_model("CUMSUM", [((2,), np.float32), np.array(1, np.int32)])


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["REDUCE_ANY", "REDUCE_ALL"]), st.booleans(), st.data())
def test_bool_reductions(op, keep_dims, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    shape = draw_shape(data.draw)
    axes = data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=0, max_size=3))
    x = rng.random(shape) < data.draw(st.sampled_from([0.1, 0.5, 0.9]))
    check_reference(op, [x, Const(np.array(axes, np.int32))], keep_dims=keep_dims)


def test_bool_reduction_errors() -> None:
    with pytest.raises(ops.OpError, match="must be bool"):
        one_op_model("REDUCE_ANY", [((2,), np.float32), np.array([0], np.int32)])
    with pytest.raises(ops.OpError, match="out of range"):
        one_op_model("REDUCE_ALL", [((2,), np.bool_), np.array([1], np.int32)])


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["ARG_MAX", "ARG_MIN"]), st.sampled_from([np.float32, np.int32, np.int8, np.uint8, np.bool_]),
       st.sampled_from([2, 4]), st.sampled_from([np.int32, np.int64]), st.data())
def test_arg_max_min(op, dtype, output_type, atype, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    shape = draw_shape(data.draw)
    axis = np.array([data.draw(st.integers(-len(shape), len(shape) - 1))], atype)
    x = _arr(rng, shape, dtype, 0, 3)  # few distinct values: ties go to the first index
    check_reference(op, [x, Const(axis)], output_type=output_type)


def test_arg_max_errors() -> None:
    with pytest.raises(ops.OpError, match="output_type 0"):
        one_op_model("ARG_MAX", [((2, 3), np.float32), np.array([1], np.int32)])
    for bad in (np.int16, np.int64):
        with pytest.raises(ops.OpError, match=np.dtype(bad).name):
            one_op_model("ARG_MIN", [((2, 3), bad), np.array([1], np.int32)], output_type=2)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(DTYPES + [np.bool_]), st.data())
def test_where_constant(dtype, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    shape = draw_shape(data.draw, 1, 4, 1, 4)
    x = _arr(rng, shape, dtype, 0, 2)
    # a constant condition: the output shape is known at plan time
    check_reference("WHERE", [Const(x)])


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(DTYPES + [np.int16]), st.sampled_from([np.int32, np.int16]), st.data())
def test_topk(dtype, ktype, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    shape = draw_shape(data.draw, 1, 5)
    k = np.array(data.draw(st.integers(0, shape[-1])), ktype)
    x = _arr(rng, shape, dtype, 0, 4)  # ties: the lower index comes first
    if np.dtype(dtype).kind == "f" and data.draw(st.booleans()):
        x = np.round(x)
    check_reference("TOPK_V2", [x, Const(k)], n_outputs=2)


def test_topk_errors() -> None:
    with pytest.raises(ops.OpError, match="k = 5"):
        one_op_model("TOPK_V2", [((2, 4), np.float32), np.array(5, np.int32)], n_outputs=2)
    with pytest.raises(ops.OpError, match="bool"):
        one_op_model("TOPK_V2", [((2, 4), np.bool_), np.array(1, np.int32)], n_outputs=2)
    with pytest.raises(ops.OpError, match="int64"):
        one_op_model("TOPK_V2", [((2, 4), np.float32), np.array(1, np.int64)], n_outputs=2)


def test_where_infer_is_dynamic_on_a_graph_input() -> None:
    ctx = ops.InferCtx("WHERE", None, [(2, 3)], [np.dtype(np.bool_)], [None])
    with pytest.raises(Dynamic):
        ops.get("WHERE").infer(ctx)


# ---- run-time sized outputs through the Interpreter ----------------------------------------------

def _where_model(shape, dtype) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("cond", shape, dtype)
    o = g.tensor("coords", (0, len(shape)), np.int64)
    g.op("WHERE", [x], [o])
    g.output(o)
    return mb.build()


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([np.bool_, np.float32, np.int32]), st.data())
def test_where_on_graph_input_through_interpreter(dtype, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    shape = draw_shape(data.draw, 1, 4, 1, 3)
    x = _arr(rng, shape, dtype, 0, 2)
    if np.dtype(dtype).kind == "f":
        x = x * (x > 0)
    model = _where_model(shape, dtype)
    got = []
    for ours, it in ((False, litert_interpreter(model)),
                     (True, Interpreter(model_content=model, backend="reference"))):
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        od = it.get_output_details()[0]
        # LiteRT's get_tensor raises "Invalid tensor size" on an empty result
        out = it.get_tensor(od["index"]) if ours or np.prod(od["shape"]) else None
        got.append((tuple(od["shape"]), tuple(od["shape_signature"]), out))
    (ts, tsig, theirs), (os_, osig, ours_out) = got
    assert os_ == ts and osig == tsig
    assert ours_out.shape == os_
    if theirs is not None:
        assert_close(ours_out, theirs)
    else:
        assert ts[0] == 0


def test_where_invoked_twice_resizes_output() -> None:
    model = _where_model((6,), np.bool_)
    ours = Interpreter(model_content=model, backend="reference")
    theirs = litert_interpreter(model)
    for it in (ours, theirs):
        it.allocate_tensors()
    for x in (np.array([1, 0, 1, 1, 0, 1], np.bool_), np.array([0, 1, 0, 0, 0, 0], np.bool_)):
        outs = []
        for it in (theirs, ours):
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
            od = it.get_output_details()[0]
            outs.append(it.get_tensor(od["index"]))
            assert tuple(od["shape"]) == outs[-1].shape
        assert_close(outs[1], outs[0])


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_where_feeds_gather_nd_and_topk_with_run_time_k(backend) -> None:
    # run-time sized tensors flowing into later ops: WHERE -> GATHER_ND, and TOPK_V2 with k an input
    mb = ModelBuilder()
    g = mb.subgraph()
    c = g.input("cond", (3, 4), np.bool_)
    p = g.input("params", (3, 4), np.float32)
    k = g.input("k", (), np.int32)
    coords = g.tensor("coords", (0, 2), np.int64)
    picked = g.tensor("picked", (0,), np.float32)
    vals, idx = g.tensor("vals", (3, 0), np.float32), g.tensor("idx", (3, 0), np.int32)
    g.op("WHERE", [c], [coords])
    g.op("GATHER_ND", [p, coords], [picked])
    g.op("TOPK_V2", [p, k], [vals, idx])
    g.output(picked, vals, idx)
    model = mb.build()
    rng = np.random.default_rng(3)
    feeds = [rng.random((3, 4)) < 0.5, rng.standard_normal((3, 4)).astype(np.float32), np.array(2, np.int32)]
    results = []
    for it in (litert_interpreter(model), Interpreter(model_content=model, backend=backend)):
        it.allocate_tensors()
        for d, v in zip(it.get_input_details(), feeds):
            it.set_tensor(d["index"], v)
        it.invoke()
        results.append([(tuple(d["shape"]), it.get_tensor(d["index"])) for d in it.get_output_details()])
    for (ts, theirs), (os_, ours) in zip(*results):
        assert ts == os_ == ours.shape
        assert_close(ours, theirs)
