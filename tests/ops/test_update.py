"""SPARSE_TO_DENSE, DYNAMIC_UPDATE_SLICE, RANK and BITCAST against LiteRT's builtin kernels,
through tflite_jit.Interpreter (numba and reference backends) and the reference kernel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import (
    Const,
    check_all_backends,
    declared_op_model,
    litert_interpreter,
    one_op_model,
    rand_data,
    run_interpreter,
)
from tests.shapes import draw_shape
from tflite_jit import Interpreter, ops
from tflite_jit.ops.base import Dynamic

I32 = np.int32


# ---- SPARSE_TO_DENSE -----------------------------------------------------------------------------

S2D_TYPES = [np.float32, np.int32, np.int64, np.int8, np.uint8]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(S2D_TYPES), st.sampled_from([np.int32, np.int64]), st.sampled_from([np.int32, np.int64]),
       st.booleans(), st.booleans(), st.booleans(), st.data())
def test_sparse_to_dense(dtype, itype, stype, flat, scalar_value, const_shape, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    shape = draw_shape(data.draw, 1, 4, 1, 1 if flat else 4)
    n = data.draw(st.integers(0 if not flat else 1, 5))
    idx = np.stack([rng.integers(0, d, n) for d in shape], axis=-1).astype(itype)  # repeats: last wins
    if flat:
        idx = idx.reshape(-1)
    values = rand_data(rng, () if scalar_value else (n,), dtype, 0, 100)
    default = rand_data(rng, data.draw(st.sampled_from([(), (1,)])), dtype, 0, 100)
    oshape = np.array(shape, stype)
    check_all_backends("SPARSE_TO_DENSE", [idx, Const(oshape) if const_shape else oshape, values, default])


def test_sparse_to_dense_is_dynamic_on_a_run_time_shape() -> None:
    ctx = ops.InferCtx("SPARSE_TO_DENSE", None, [(2, 2), (2,), (2,), ()],
                       [np.dtype(I32)] * 4, [None, None, None, None])
    with pytest.raises(Dynamic):
        ops.get("SPARSE_TO_DENSE").infer(ctx)


def test_sparse_to_dense_errors() -> None:
    f32 = ((), np.float32)
    s2d = ops.get("SPARSE_TO_DENSE")
    # LiteRT writes out of bounds for these: rejected when they are known
    with pytest.raises(ops.OpError, match=r"index \[2, 4\] .* out of bounds"):
        s2d.reference([np.array([[0, 1], [2, 4]], I32), np.array([3, 4], I32), np.array(1, np.float32),
                       np.array(0, np.float32)], None)
    with pytest.raises(ops.OpError, match=r"index \[-1\] .* out of bounds"):
        s2d.reference([np.array([-1], I32), np.array([3], I32), np.array(1, np.float32),
                       np.array(0, np.float32)], None)
    with pytest.raises(ops.OpError, match="negative dimension"):
        one_op_model("SPARSE_TO_DENSE", [((1,), I32), np.array([-3], I32), f32, f32])
    with pytest.raises(ops.OpError, match="1-D .* or 2-D"):
        one_op_model("SPARSE_TO_DENSE", [((), I32), np.array([3], I32), f32, f32])
    with pytest.raises(ops.OpError, match="at most 4"):
        one_op_model("SPARSE_TO_DENSE", [((1, 5), I32), np.array([1, 1, 1, 1, 1], I32), f32, f32])
    with pytest.raises(ops.OpError, match="3 elements for 2 indices"):
        one_op_model("SPARSE_TO_DENSE", [((2,), I32), np.array([5], I32), ((3,), np.float32), f32])
    with pytest.raises(ops.OpError, match="has 2 entries"):
        one_op_model("SPARSE_TO_DENSE", [((2,), I32), np.array([5, 1], I32), f32, f32])
    with pytest.raises(ops.OpError, match="exactly one value"):
        one_op_model("SPARSE_TO_DENSE", [((2,), I32), np.array([5], I32), f32, ((2,), np.float32)])
    with pytest.raises(ops.OpError, match="int16"):
        one_op_model("SPARSE_TO_DENSE", [((2,), I32), np.array([5], I32), ((), np.int16), ((), np.int16)])
    with pytest.raises(ops.OpError, match="must match the values' type"):
        one_op_model("SPARSE_TO_DENSE", [((2,), I32), np.array([5], I32), f32, ((), np.int32)])
    model = declared_op_model("SPARSE_TO_DENSE", [np.zeros((1, 2), I32), Const(np.array([3, 4], I32)), np.zeros((), np.float32),
                                       np.zeros((), np.float32)], [((3, 4), np.float32)])
    feeds = [np.array([[3, 0]], I32), np.array(1, np.float32), np.array(0, np.float32)]
    for backend in ("numba", "reference"):
        with pytest.raises(RuntimeError, match="SPARSE_TO_DENSE.*out of bounds"):
            run_interpreter(Interpreter(model_content=model, backend=backend), feeds)


# ---- DYNAMIC_UPDATE_SLICE ------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.sampled_from([np.float32, np.int32, np.int64, np.int8, np.uint8, np.int16, np.bool_, np.float16]),
       st.sampled_from([np.int32, np.int64]), st.booleans(), st.data())
def test_dynamic_update_slice(dtype, itype, const_start, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    shape = draw_shape(data.draw, 1, 5, 1, 4)
    upd_shape = tuple(data.draw(st.integers(0 if i == 0 else 1, d)) for i, d in enumerate(shape))
    start = np.array([data.draw(st.integers(-3, d + 2)) for d in shape], itype)  # clamped into range

    def arr(s):
        return rng.integers(0, 2, s).astype(np.bool_) if dtype is np.bool_ else rand_data(rng, s, dtype, 0, 100)

    check_all_backends("DYNAMIC_UPDATE_SLICE", [arr(shape), arr(upd_shape), Const(start) if const_start else start])


def test_dynamic_update_slice_scalar_and_full() -> None:
    check_all_backends("DYNAMIC_UPDATE_SLICE", [np.array(1, np.float32), np.array(2, np.float32), np.zeros(0, I32)])
    check_all_backends("DYNAMIC_UPDATE_SLICE", [np.zeros((2, 3), np.float32), np.ones((2, 3), np.float32),
                                       np.array([5, -5], I32)])


def test_dynamic_update_slice_errors() -> None:
    x = ((3, 4), np.float32)
    with pytest.raises(ops.OpError, match="fit inside"):
        one_op_model("DYNAMIC_UPDATE_SLICE", [x, ((4, 1), np.float32), np.array([0, 0], I32)])
    with pytest.raises(ops.OpError, match="fit inside"):
        one_op_model("DYNAMIC_UPDATE_SLICE", [x, ((2,), np.float32), np.array([0, 0], I32)])
    with pytest.raises(ops.OpError, match=r"must be \[2\]"):
        one_op_model("DYNAMIC_UPDATE_SLICE", [x, ((2, 2), np.float32), np.array([0], I32)])
    with pytest.raises(ops.OpError, match="must match the operand's type"):
        one_op_model("DYNAMIC_UPDATE_SLICE", [x, ((2, 2), np.int32), np.array([0, 0], I32)])
    with pytest.raises(ops.OpError, match="int16"):
        one_op_model("DYNAMIC_UPDATE_SLICE", [x, ((2, 2), np.float32), np.array([0, 0], np.int16)])
    with pytest.raises(ops.OpError, match="at most 8"):
        one_op_model("DYNAMIC_UPDATE_SLICE", [((1,) * 9, np.float32), ((1,) * 9, np.float32), np.zeros(9, I32)])
    model = declared_op_model("DYNAMIC_UPDATE_SLICE", [np.zeros((3, 4), np.float32), np.zeros((4, 1), np.float32),
                                            np.zeros(2, I32)], [((3, 4), np.float32)])
    with pytest.raises(RuntimeError, match="DYNAMIC_UPDATE_SLICE.*fit inside"):
        Interpreter(model_content=model).allocate_tensors()
    with pytest.raises(RuntimeError):
        litert_interpreter(model).allocate_tensors()


# ---- RANK ----------------------------------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(st.sampled_from([np.float32, np.int8, np.int64, np.bool_, np.float16]), st.booleans(), st.data())
def test_rank(dtype, const_input, data) -> None:
    x = np.zeros(draw_shape(data.draw, 0, 3, 0, 5), dtype)
    check_all_backends("RANK", [Const(x) if const_input and x.size else x])


def test_rank_errors() -> None:
    # LiteRT forces the output to int32; a model declaring int64 is rejected here
    model = declared_op_model("RANK", [np.zeros((2, 3), np.float32)], [((), np.int64)])
    with pytest.raises(RuntimeError, match="RANK.*int64"):
        Interpreter(model_content=model).allocate_tensors()


# ---- BITCAST -------------------------------------------------------------------------------------

BITCAST_TYPES = [np.float32, np.int32, np.uint32, np.int8, np.uint8, np.int16, np.uint16, np.float16,
                 np.int64, np.uint64, np.float64, np.complex64]


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(BITCAST_TYPES), st.sampled_from(BITCAST_TYPES), st.data())
def test_bitcast(src, dst, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a, b = np.dtype(src).itemsize, np.dtype(dst).itemsize
    shape = draw_shape(data.draw, 1, 3, 0 if a >= b else 1, 3)
    if a < b:
        shape = shape[:-1] + (b // a,)
    x = np.frombuffer(rng.integers(0, 256, int(np.prod(shape)) * a).astype(np.uint8).tobytes(),
                      dtype=src).reshape(shape)
    out = ops.get("BITCAST").reference([x], ops.get("BITCAST").bind(None, [None], [_T(dst)]))[0]
    assert out.tobytes() == x.tobytes()
    check_bitcast(x, out, const=data.draw(st.booleans()))


class _T:
    def __init__(self, dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.name = "out"


def check_bitcast(x: np.ndarray, ours: np.ndarray, const: bool = False) -> None:
    model = declared_op_model("BITCAST", [Const(x) if const else x], [(ours.shape, ours.dtype)])
    feeds = [] if const else [x]
    (theirs,) = run_interpreter(litert_interpreter(model), feeds)
    assert theirs.tobytes() == ours.tobytes() and theirs.shape == ours.shape and theirs.dtype == ours.dtype
    for backend in ("numba", "reference"):
        (got,) = run_interpreter(Interpreter(model_content=model, backend=backend), feeds)
        assert got.tobytes() == theirs.tobytes() and got.shape == theirs.shape and got.dtype == theirs.dtype


def test_bitcast_bool_keeps_raw_bytes() -> None:
    x = np.array([1, 0, 0, 1], np.uint8)
    check_bitcast(x, x.view(np.bool_))
    check_bitcast(np.array([1, 0], np.int8).view(np.bool_), np.array([1, 0], np.int8))


def test_bitcast_errors() -> None:
    def model(shape, src, dst):
        return declared_op_model("BITCAST", [np.zeros(shape, src)], [(shape, dst)])

    with pytest.raises(RuntimeError, match="BITCAST.*last dimension to be 2"):
        Interpreter(model_content=model((4,), np.float32, np.float64)).allocate_tensors()
    with pytest.raises(RuntimeError):
        litert_interpreter(model((4,), np.float32, np.float64)).allocate_tensors()
    # LiteRT reads dims[-1] of a rank-0 input when widening; rejected here
    with pytest.raises(RuntimeError, match="BITCAST.*last dimension"):
        Interpreter(model_content=model((), np.float32, np.int64)).allocate_tensors()
    with pytest.raises(ops.OpError, match="output type is unknown"):
        ops.get("BITCAST").infer(ops.InferCtx("BITCAST", ops.get("BITCAST").parse({}), [(2,)],
                                              [np.dtype(np.float32)], [None]))
