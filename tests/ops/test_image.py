"""RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR, TRANSPOSE_CONV, CONV_3D and EMBEDDING_LOOKUP against
LiteRT's builtin kernels, plus the shape-rule errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import Const, assert_close, one_op_model, run_both
from tflite_jit import ops
from tflite_jit.ops.base import Dynamic

HYP = settings(max_examples=20, deadline=None)
CLAMPS = ["NONE", "RELU", "RELU_N1_TO_1", "RELU6"]


def _rng(data):
    return np.random.default_rng(data.draw(st.integers(0, 2**16)))


@HYP
@given(st.sampled_from(["RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"]),
       st.sampled_from([(False, False), (True, False), (False, True), (True, True)]), st.data())
def test_resize(op, flags, data) -> None:
    if op == "RESIZE_BILINEAR" and all(flags):
        flags = (False, True)  # LiteRT rejects both for bilinear (test_shape_errors)
    rng = _rng(data)
    n, h, w, c = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 6)),
                  data.draw(st.integers(1, 6)), data.draw(st.integers(1, 3)))
    size = np.array([data.draw(st.integers(1, 13)), data.draw(st.integers(1, 13))], np.int32)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    ours, theirs = run_both(op, [x, Const(size)], align_corners=flags[0],
                            half_pixel_centers=flags[1])
    assert_close(ours[0], theirs[0])


@HYP
@given(st.sampled_from(["SAME", "VALID"]), st.sampled_from(CLAMPS), st.booleans(), st.data())
def test_transpose_conv(padding, act, with_bias, data) -> None:
    rng = _rng(data)
    n, h, w, ci, co = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 5)),
                       data.draw(st.integers(1, 5)), data.draw(st.integers(1, 3)),
                       data.draw(st.integers(1, 3)))
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    sh, sw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    # the output size whose forward conv gives back the input size
    if padding == "SAME":
        oh = data.draw(st.integers((h - 1) * sh + 1, h * sh))
        ow = data.draw(st.integers((w - 1) * sw + 1, w * sw))
    else:
        oh, ow = (h - 1) * sh + kh, (w - 1) * sw + kw
    shape = np.array([n, oh, ow, co], np.int32)
    wt = rng.standard_normal((co, kh, kw, ci)).astype(np.float32)
    x = rng.standard_normal((n, h, w, ci)).astype(np.float32)
    bias = Const(rng.standard_normal(co).astype(np.float32)) if with_bias else None
    specs = [Const(shape), Const(wt), x] + ([bias] if with_bias else [])
    ours, theirs = run_both("TRANSPOSE_CONV", specs, padding=padding, stride_h=sh, stride_w=sw,
                            fused_activation_function=act)
    assert_close(ours[0], theirs[0])


@HYP
@given(st.sampled_from(["SAME", "VALID"]), st.sampled_from(CLAMPS), st.booleans(), st.data())
def test_conv3d(padding, act, with_bias, data) -> None:
    rng = _rng(data)
    n, ci, co = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    sizes = [data.draw(st.integers(1, 5)) for _ in range(3)]
    ks = [data.draw(st.integers(1, 3)) for _ in range(3)]
    strides = [data.draw(st.integers(1, 2)) for _ in range(3)]
    dil = [data.draw(st.integers(1, 2)) for _ in range(3)]
    if padding == "VALID":
        sizes = [max(s, (k - 1) * d + 1) for s, k, d in zip(sizes, ks, dil)]
    x = rng.standard_normal((n, *sizes, ci)).astype(np.float32)
    f = rng.standard_normal((*ks, ci, co)).astype(np.float32)
    specs = [x, Const(f)] + ([Const(rng.standard_normal(co).astype(np.float32))] if with_bias else [])
    ours, theirs = run_both("CONV_3D", specs, padding=padding, stride_d=strides[0],
                            stride_h=strides[1], stride_w=strides[2], dilation_d_factor=dil[0],
                            dilation_h_factor=dil[1], dilation_w_factor=dil[2],
                            fused_activation_function=act)
    assert_close(ours[0], theirs[0])


@HYP
@given(st.data())
def test_embedding_lookup(data) -> None:
    rng = _rng(data)
    rows = data.draw(st.integers(1, 6))
    tail = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    ids = rng.integers(0, rows, data.draw(st.integers(1, 8))).astype(np.int32)
    table = rng.standard_normal((rows, *tail)).astype(np.float32)
    ours, theirs = run_both("EMBEDDING_LOOKUP", [ids, Const(table)])
    assert_close(ours[0], theirs[0])


def test_embedding_out_of_range_rejected() -> None:
    table = np.zeros((3, 2), np.float32)
    with pytest.raises(ops.OpError, match="out of range"):
        ops.get("EMBEDDING_LOOKUP").reference([np.array([0, 3], np.int32), table], None)
    with pytest.raises(ops.OpError, match="out of range"):
        one_op_model("EMBEDDING_LOOKUP", [np.array([-1], np.int32), table])


@pytest.mark.parametrize("op,inputs,options,match", [
    ("RESIZE_BILINEAR", [((1, 2, 2), np.float32), np.array([2, 2], np.int32)], {}, "4-D"),
    ("RESIZE_BILINEAR", [((1, 2, 2, 1), np.float32), np.array([2, 2, 2], np.int32)], {}, r"\[2\]"),
    ("RESIZE_NEAREST_NEIGHBOR", [((1, 2, 2, 1), np.float32), np.array([0, 2], np.int32)], {},
     ">= 1"),
    ("RESIZE_BILINEAR", [((1, 2, 2, 1), np.float32), np.array([2, 2], np.int32)],
     {"align_corners": True, "half_pixel_centers": True}, "cannot both"),
    ("TRANSPOSE_CONV", [np.array([1, 4, 4, 2], np.int32), np.zeros((2, 3, 3, 3), np.float32),
                        ((1, 2, 2, 2), np.float32)], {"stride_h": 2, "stride_w": 2}, "input channels"),
    ("TRANSPOSE_CONV", [np.array([1, 4, 4, 5], np.int32), np.zeros((2, 3, 3, 2), np.float32),
                        ((1, 2, 2, 2), np.float32)], {"stride_h": 2, "stride_w": 2}, "output_shape"),
    ("TRANSPOSE_CONV", [np.array([1, 4, 4, 2], np.int32), np.zeros((2, 3, 3, 2), np.float32),
                        ((1, 2, 2, 2), np.float32)], {"stride_h": 0, "stride_w": 2}, "stride_h"),
    ("TRANSPOSE_CONV", [np.array([1, 4, 4, 2], np.int32), np.zeros((2, 3, 3, 2), np.float32),
                        ((1, 3, 3, 2), np.float32)], {"stride_h": 2, "stride_w": 2}, "gives 2"),
    ("CONV_3D", [((1, 2, 2, 2, 3), np.float32), np.zeros((1, 1, 1, 2, 4), np.float32)],
     {"stride_d": 1, "stride_h": 1, "stride_w": 1}, "input channels"),
    ("CONV_3D", [((1, 2, 2, 2, 3), np.float32), np.zeros((3, 1, 1, 3, 4), np.float32)],
     {"padding": "VALID", "stride_d": 1, "stride_h": 1, "stride_w": 1}, "does not fit"),
    ("CONV_3D", [((1, 2, 2, 2, 3), np.float32), np.zeros((1, 1, 1, 3, 4), np.float32),
                 np.zeros(3, np.float32)], {"stride_d": 1, "stride_h": 1, "stride_w": 1}, "bias"),
    ("EMBEDDING_LOOKUP", [((2, 2), np.int32), np.zeros((3, 2), np.float32)], {}, "1-D"),
    ("EMBEDDING_LOOKUP", [((2,), np.float32), np.zeros((3, 2), np.float32)], {}, "int32"),
    ("EMBEDDING_LOOKUP", [((2,), np.int32), np.zeros((3,), np.float32)], {}, "rank >= 2"),
])
def test_shape_errors(op, inputs, options, match) -> None:
    with pytest.raises(ops.OpError, match=match):
        one_op_model(op, inputs, **options)


def test_resize_dynamic_size() -> None:
    ctx = ops.InferCtx(op_name="RESIZE_BILINEAR", attrs=ops.get("RESIZE_BILINEAR").parse({}),
                       shapes=[(1, 2, 2, 1), (2,)], dtypes=[np.dtype(np.float32), np.dtype(np.int32)],
                       values=[None, None])
    with pytest.raises(Dynamic):
        ops.get("RESIZE_BILINEAR").infer(ctx)
