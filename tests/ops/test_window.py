"""L2_POOL_2D, CONV_3D_TRANSPOSE, DILATE and REDUCE_WINDOW against LiteRT's builtin kernels.

Each differential test builds a one-op model, runs it on LiteRT and through
`tflite_jit.Interpreter` (the default backend, which falls back to the reference kernel, and
the reference backend) and compares; error tests check the exception types the API raises.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import Const, assert_close, check_differential, litert_run, one_op_model, run_engine
from tflite_jit import ops

_ACTS = ["NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH"]


# ---- L2_POOL_2D ------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 2), st.integers(1, 7), st.integers(1, 7), st.integers(1, 3), st.integers(1, 4),
       st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.sampled_from(["SAME", "VALID"]),
       st.sampled_from(_ACTS), st.integers(0, 999))
def test_l2_pool(n, h, w, c, fh, fw, sh, sw, padding, act, seed) -> None:
    if padding == "VALID" and (fh > h or fw > w):
        fh, fw = min(fh, h), min(fw, w)
    x = (np.random.default_rng(seed).standard_normal((n, h, w, c)) * 2).astype(np.float32)
    check_differential("L2_POOL_2D", [x], padding=padding, stride_h=sh, stride_w=sw, filter_height=fh,
                       filter_width=fw, fused_activation_function=act)


def test_l2_pool_errors() -> None:
    with pytest.raises(ops.OpError, match="float32 only"):
        one_op_model("L2_POOL_2D", [((1, 2, 2, 1), np.int8)], padding="SAME", stride_h=1, stride_w=1,
                     filter_height=1, filter_width=1)
    with pytest.raises(ops.OpError, match="4-D"):
        one_op_model("L2_POOL_2D", [((2, 2, 1), np.float32)], padding="SAME", stride_h=1, stride_w=1,
                     filter_height=1, filter_width=1)
    with pytest.raises(ops.OpError, match="stride_h"):
        one_op_model("L2_POOL_2D", [((1, 2, 2, 1), np.float32)], padding="SAME", stride_h=0, stride_w=1,
                     filter_height=1, filter_width=1)
    model = one_op_model("L2_POOL_2D", [((1, 2, 2, 1), np.uint8)], outputs=[((1, 2, 2, 1), np.uint8)],
                         padding="SAME", stride_h=1, stride_w=1, filter_height=1, filter_width=1)
    with pytest.raises((ValueError, RuntimeError), match="L2_POOL_2D"):
        run_engine(model, [np.zeros((1, 2, 2, 1), np.uint8)], "numba")


# ---- CONV_3D_TRANSPOSE -----------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 2), st.lists(st.integers(1, 3), min_size=3, max_size=3),
       st.lists(st.integers(1, 3), min_size=3, max_size=3), st.lists(st.integers(1, 2), min_size=3, max_size=3),
       st.lists(st.integers(1, 2), min_size=3, max_size=3), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["SAME", "VALID"]), st.sampled_from(_ACTS), st.booleans(), st.booleans(), st.data())
def test_conv3d_transpose(n, in_sp, k, stride, dil, cin, cout, padding, act, bias, extra, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    out_sp = []
    for i, kk, s, d in zip(in_sp, k, stride, dil):
        eff = (kk - 1) * d + 1
        if padding == "SAME":  # ceil(o / s) == i
            lo, hi = (i - 1) * s + 1, i * s
        else:  # (o - eff) // s + 1 == i
            lo, hi = (i - 1) * s + eff, (i - 1) * s + eff + s - 1
        out_sp.append(data.draw(st.integers(lo, hi)) if extra else lo)
    x = rng.standard_normal((n, *in_sp, cin)).astype(np.float32)
    f = rng.standard_normal((*k, cout, cin)).astype(np.float32)
    specs = [Const(np.array([n, *out_sp, cout], np.int32)), Const(f), x]
    if bias:
        specs.append(Const(rng.standard_normal(cout).astype(np.float32)))
    check_differential("CONV_3D_TRANSPOSE", specs, padding=padding, stride_d=stride[0], stride_h=stride[1],
                       stride_w=stride[2], dilation_d_factor=dil[0], dilation_h_factor=dil[1],
                       dilation_w_factor=dil[2], fused_activation_function=act)


def test_conv3d_transpose_errors() -> None:
    x, f = ((1, 2, 2, 2, 3), np.float32), np.zeros((2, 2, 2, 4, 3), np.float32)
    opts = dict(padding="VALID", stride_d=1, stride_h=1, stride_w=1)
    with pytest.raises(ops.OpError, match="inconsistent with the input depth"):
        one_op_model("CONV_3D_TRANSPOSE", [np.array([1, 5, 3, 3, 4], np.int32), f, x], **opts)
    with pytest.raises(ops.OpError, match="filter's output channels"):
        one_op_model("CONV_3D_TRANSPOSE", [np.array([1, 3, 3, 3, 8], np.int32), f, x], **opts)
    with pytest.raises(ops.OpError, match="input channels 3 must equal"):
        one_op_model("CONV_3D_TRANSPOSE", [np.array([1, 3, 3, 3, 4], np.int32), np.zeros((2, 2, 2, 4, 2),
                                                                                        np.float32), x], **opts)
    with pytest.raises(ops.OpError, match="stride_d is 0"):
        one_op_model("CONV_3D_TRANSPOSE", [np.array([1, 3, 3, 3, 4], np.int32), f, x],
                     **{**opts, "stride_d": 0})
    with pytest.raises(ops.OpError, match="bias"):
        one_op_model("CONV_3D_TRANSPOSE", [np.array([1, 3, 3, 3, 4], np.int32), f, x,
                                           np.zeros(3, np.float32)], **opts)
    with pytest.raises(ops.OpError, match="quantized"):
        one_op_model("CONV_3D_TRANSPOSE", [np.array([1, 3, 3, 3, 4], np.int32), f,
                                           ((1, 2, 2, 2, 3), np.int8)], **opts)
    # a run-time output shape that does not fit the input: a runtime error, not a crash
    model = one_op_model("CONV_3D_TRANSPOSE", [((5,), np.int32), f, x], outputs=[((1, 3, 3, 3, 4), np.float32)],
                         **opts)
    with pytest.raises((ValueError, RuntimeError), match="CONV_3D_TRANSPOSE"):
        run_engine(model, [np.array([1, 9, 3, 3, 4], np.int32), np.zeros((1, 2, 2, 2, 3), np.float32)],
                   backend="reference")


def test_conv3d_transpose_runtime_output_shape() -> None:
    """output_shape fed at run time: LiteRT sizes the output then; so do we."""
    rng = np.random.default_rng(3)
    f = rng.standard_normal((2, 1, 2, 2, 3)).astype(np.float32)
    x = rng.standard_normal((1, 2, 3, 2, 3)).astype(np.float32)
    shape = np.array([1, 4, 5, 4, 2], np.int32)
    model = one_op_model("CONV_3D_TRANSPOSE", [((5,), np.int32), f, ((1, 2, 3, 2, 3), np.float32)],
                         outputs=[((1, 4, 5, 4, 2), np.float32)], padding="SAME", stride_d=2, stride_h=2,
                         stride_w=2)
    theirs = litert_run(model, [shape, x])
    assert_close(run_engine(model, [shape, x], "reference")[0][0], theirs[0])


# ---- DILATE ----------------------------------------------------------------------------------------

_DILATE_DTYPES = [np.float32, np.float16, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.sampled_from(_DILATE_DTYPES), st.data())
def test_dilate(shape, dtype, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    dil = np.array([data.draw(st.integers(1, 3)) for _ in shape], np.int32)
    lo = 0 if np.dtype(dtype).kind == "u" else -9
    x = rng.integers(lo, 9, shape).astype(dtype)
    pad = np.array(data.draw(st.integers(max(lo, -5), 5)), dtype)
    check_differential("DILATE", [x, Const(dil), Const(pad)])


def test_dilate_runtime_dilations() -> None:
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    dil = np.array([3, 2], np.int32)
    model = one_op_model("DILATE", [((2, 3), np.int32), ((2,), np.int32), np.array(-1, np.int32)],
                         outputs=[((4, 5), np.int32)])
    theirs = litert_run(model, [x, dil])
    assert theirs[0].shape == (4, 5)
    assert_close(run_engine(model, [x, dil], "reference")[0][0], theirs[0])


def test_dilate_errors() -> None:
    with pytest.raises(ops.OpError, match=">= 1"):
        one_op_model("DILATE", [((2, 3), np.float32), np.array([1, 0], np.int32), np.array(0, np.float32)])
    with pytest.raises(ops.OpError, match="shape \\[2\\]"):
        one_op_model("DILATE", [((2, 3), np.float32), np.array([1, 2, 2], np.int32), np.array(0, np.float32)])
    with pytest.raises(ops.OpError, match="same type"):
        one_op_model("DILATE", [((2, 3), np.float32), np.array([1, 2], np.int32), np.array(0, np.int32)])
    with pytest.raises(ops.OpError, match="int32"):
        one_op_model("DILATE", [((2, 3), np.float32), np.array([1, 2], np.int64), np.array(0, np.float32)])
    model = one_op_model("DILATE", [((2, 3), np.int32), ((2,), np.int32), np.array(-1, np.int32)],
                         outputs=[((4, 5), np.int32)])
    with pytest.raises((ValueError, RuntimeError), match="DILATE"):
        run_engine(model, [np.zeros((2, 3), np.int32), np.array([0, 2], np.int32)], "reference")


# ---- REDUCE_WINDOW ---------------------------------------------------------------------------------

_RW = {"ADD": 1, "MUL": 2, "MINIMUM": 3, "MAXIMUM": 4, "ALL": 5, "ANY": 6}
_RW_DTYPES = [np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.sampled_from(_RW_DTYPES),
       st.sampled_from(sorted(_RW)), st.data())
def test_reduce_window(shape, dtype, fn, data) -> None:
    if dtype == np.bool_ and fn in ("ADD", "MUL"):
        fn = "ALL"
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    win = [data.draw(st.integers(1, 3)) for _ in shape]
    strides = [data.draw(st.integers(1, 3)) for _ in shape]
    dils = [data.draw(st.integers(1, 2)) for _ in shape]
    lo, hi = (-3, 4) if fn != "MUL" else (-2, 3)
    if np.dtype(dtype).kind == "u":
        lo = 0
    x = rng.integers(lo, hi, shape).astype(dtype)
    if np.dtype(dtype).kind == "f" and fn != "MUL":
        x = (x + rng.random(shape)).astype(dtype)
    init = np.array(data.draw(st.integers(0 if lo == 0 else -2, 2)), dtype)
    check_differential("REDUCE_WINDOW", [x, Const(init), Const(np.array(win, np.int64)),
                                         Const(np.array(strides, np.int64)), Const(np.array(dils, np.int64))],
                       reduce_function=_RW[fn])


def test_reduce_window_window_larger_than_input() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    check_differential("REDUCE_WINDOW", [x, Const(np.array(0, np.float32)), Const(np.array([3, 1], np.int64)),
                                         Const(np.array([1, 1], np.int64)), Const(np.array([1, 1], np.int64))],
                       reduce_function=1)


def test_reduce_window_errors() -> None:
    x = ((2, 3), np.float32)
    one, i64 = np.array(0, np.float32), (lambda v: np.array(v, np.int64))
    with pytest.raises(ops.OpError, match="window_strides must all be >= 1"):
        one_op_model("REDUCE_WINDOW", [x, one, i64([1, 1]), i64([0, 1]), i64([1, 1])], reduce_function=1)
    with pytest.raises(ops.OpError, match="2 values"):
        one_op_model("REDUCE_WINDOW", [x, one, i64([1, 1, 1]), i64([1, 1]), i64([1, 1])], reduce_function=1)
    with pytest.raises(ops.OpError, match="int64"):
        one_op_model("REDUCE_WINDOW", [x, one, np.array([1, 1], np.int32), i64([1, 1]), i64([1, 1])],
                     reduce_function=1)
    with pytest.raises(ops.OpError, match="constant"):
        one_op_model("REDUCE_WINDOW", [x, one, ((2,), np.int64), i64([1, 1]), i64([1, 1])], reduce_function=1)
    with pytest.raises(ops.OpError, match="same type"):
        one_op_model("REDUCE_WINDOW", [x, np.array(0, np.int32), i64([1, 1]), i64([1, 1]), i64([1, 1])],
                     reduce_function=1)
    with pytest.raises(ops.OpError, match="bool"):
        one_op_model("REDUCE_WINDOW", [((2, 3), np.bool_), np.array(True), i64([1, 1]), i64([1, 1]), i64([1, 1])],
                     reduce_function=1)
    with pytest.raises(ops.OpError, match="reduce_function 0"):
        ops.get("REDUCE_WINDOW").parse({"reduce_function": 0})
    model = one_op_model("REDUCE_WINDOW", [x, one, i64([1, 1]), i64([0, 1]), i64([1, 1])],
                         outputs=[((2, 3), np.float32)], reduce_function=1)
    with pytest.raises((ValueError, RuntimeError), match="REDUCE_WINDOW"):
        run_engine(model, [np.zeros((2, 3), np.float32)], "numba")


@pytest.mark.parametrize("fn", ["MINIMUM", "MAXIMUM", "ADD"])
def test_reduce_window_nan_and_inf(fn) -> None:
    """NaN propagation follows LiteRT's sequential `a <= b ? a : b` (MINIMUM) / `>=` (MAXIMUM)."""
    x = np.array([[np.nan, 1.0, 2.0, -np.inf], [3.0, np.nan, np.inf, 0.5], [1.0, 2.0, 3.0, 4.0]], np.float32)
    for init in (0.0, np.nan, np.inf):
        check_differential("REDUCE_WINDOW", [x, Const(np.array(init, np.float32)), Const(np.array([2, 2], np.int64)),
                                             Const(np.array([1, 1], np.int64)), Const(np.array([1, 1], np.int64))],
                           reduce_function=_RW[fn])
