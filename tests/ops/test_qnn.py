"""Quantized CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D, MAX_POOL_2D against
LiteRT's builtin (optimized) kernels, bit for bit: int8 with per-channel and per-tensor weights,
legacy uint8, and int16x8; hypothesis over shapes, strides, padding, scales, zero points and
fused activations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import assert_bit_exact, run_engine
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.ops import qmath

HYP = settings(max_examples=25, deadline=None)
ACTS = st.sampled_from([0, 1, 3, 2])  # NONE, RELU, RELU6, RELU_N1_TO_1


def rand_q(rng, shape, dtype):
    lo, hi = qmath.qrange(np.dtype(dtype))
    return rng.integers(lo, hi + 1, size=shape).astype(dtype)


def act_params(rng, dtype):
    if dtype is np.int16:
        return float(rng.uniform(1e-4, 1e-3)), 0
    lo, hi = qmath.qrange(np.dtype(dtype))
    return float(rng.uniform(0.005, 0.05)), int(rng.integers(lo + 40, hi - 40))


def weighted_model(op: str, x_shape, w: np.ndarray, bias: np.ndarray | None, dtype, in_q, w_q, out_q,
                   out_shape, per_channel_axis: int, **options) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", x_shape, dtype, scale=in_q[0], zero_point=in_q[1])
    wi = g.const("w", w, scale=w_q[0], zero_point=w_q[1], quantized_dimension=per_channel_axis)
    ins = [xi, wi]
    if bias is not None:
        bscale = np.float32(in_q[0]) * np.asarray(w_q[0], np.float32)
        ins.append(g.const("b", bias, scale=bscale, zero_point=np.zeros(np.size(bscale), np.int64)))
    y = g.tensor("y", out_shape, dtype, scale=out_q[0], zero_point=out_q[1])
    g.op(op, ins, [y], **options)
    g.output(y)
    return mb.build()


def conv_out(size, k, stride, dil, padding):
    eff = (k - 1) * dil + 1
    return (size + stride - 1) // stride if padding == 0 else (size - eff + stride) // stride


CONV_CASE = dict(n=st.integers(1, 2), h=st.integers(3, 9), w=st.integers(3, 9), ci=st.integers(1, 6),
                 co=st.integers(1, 12), k=st.integers(1, 3), stride=st.integers(1, 2), dil=st.integers(1, 2),
                 padding=st.sampled_from([0, 1]), act=ACTS, seed=st.integers(0, 2**31 - 1))


@HYP
@given(dtype=st.sampled_from([np.int8, np.int16]), per_channel=st.booleans(), bias64=st.booleans(), **CONV_CASE)
def test_conv2d(dtype, per_channel, bias64, n, h, w, ci, co, k, stride, dil, padding, act, seed):
    rng = np.random.default_rng(seed)
    if padding == 1 and (k - 1) * dil + 1 > min(h, w):
        dil = 1
    oh, ow = conv_out(h, k, stride, dil, padding), conv_out(w, k, stride, dil, padding)
    in_q, out_q = act_params(rng, dtype), act_params(rng, dtype)
    out_q = (out_q[0] * 20, out_q[1])
    wq = rand_q(rng, (co, k, k, ci), np.int8)
    wq[wq == -128] = -127
    sw = rng.uniform(0.002, 0.02, co if per_channel else 1).astype(np.float32)
    bias_t = np.int64 if dtype is np.int16 and bias64 else np.int32
    bias = rng.integers(-5000, 5000, co).astype(bias_t)
    m = weighted_model("CONV_2D", (n, h, w, ci), wq, bias, dtype, in_q, (sw, np.zeros(sw.size, np.int64)), out_q,
                       (n, oh, ow, co), 0, padding=padding, stride_h=stride, stride_w=stride,
                       dilation_h_factor=dil, dilation_w_factor=dil, fused_activation_function=act)
    x = rand_q(rng, (n, h, w, ci), dtype)
    if dtype is np.int16 and not bias64:  # LiteRT returns saturated garbage here: we refuse
        with pytest.raises(RuntimeError, match="int64"):
            run_engine(m, [x])
        return
    assert_bit_exact(m, [x])


@HYP
@given(mult=st.integers(1, 2), dtype=st.sampled_from([np.int8, np.int16]), **CONV_CASE)
def test_depthwise(mult, dtype, n, h, w, ci, co, k, stride, dil, padding, act, seed):
    rng = np.random.default_rng(seed)
    ci = co  # channel counts around 8 and 16 exercise the vector blocks and the tails
    if padding == 1 and (k - 1) * dil + 1 > min(h, w):
        dil = 1
    c_out = ci * mult
    oh, ow = conv_out(h, k, stride, dil, padding), conv_out(w, k, stride, dil, padding)
    in_q, out_q = act_params(rng, dtype), act_params(rng, dtype)
    out_q = (out_q[0] * 5, out_q[1])
    wq = rand_q(rng, (1, k, k, c_out), np.int8)
    wq[wq == -128] = -127
    sw = rng.uniform(0.002, 0.02, c_out).astype(np.float32)
    bias_t = np.int64 if dtype is np.int16 else np.int32
    bias = rng.integers(-5000, 5000, c_out).astype(bias_t)
    m = weighted_model("DEPTHWISE_CONV_2D", (n, h, w, ci), wq, bias, dtype, in_q, (sw, np.zeros(c_out, np.int64)),
                       out_q, (n, oh, ow, c_out), 3, padding=padding, stride_h=stride, stride_w=stride,
                       dilation_h_factor=dil, dilation_w_factor=dil, depth_multiplier=mult,
                       fused_activation_function=act)
    assert_bit_exact(m, [rand_q(rng, (n, h, w, ci), dtype)])


@settings(max_examples=60, deadline=None)
@given(dtype=st.sampled_from([np.int8, np.int16]), per_channel=st.booleans(), rows=st.integers(1, 4),
       depth=st.integers(1, 40), units=st.integers(1, 20), act=ACTS, with_bias=st.booleans(),
       bias64=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_fully_connected(dtype, per_channel, rows, depth, units, act, with_bias, bias64, seed):
    """16x8: an int64 bias selects LiteRT's reference kernel (double requantization), an int32 or
    no bias its ruy int16 path (RHU2): both are covered."""
    rng = np.random.default_rng(seed)
    in_q, out_q = act_params(rng, dtype), act_params(rng, dtype)
    out_q = (out_q[0] * 10, out_q[1])
    wq = rand_q(rng, (units, depth), np.int8)
    wq[wq == -128] = -127
    sw = rng.uniform(0.002, 0.02, units if per_channel else 1).astype(np.float32)
    bias_t = np.int64 if dtype is np.int16 and bias64 else np.int32
    bias = rng.integers(-5000, 5000, units).astype(bias_t) if with_bias else None
    m = weighted_model("FULLY_CONNECTED", (rows, depth), wq, bias, dtype, in_q, (sw, np.zeros(sw.size, np.int64)),
                       out_q, (rows, units), 0, fused_activation_function=act)
    assert_bit_exact(m, [rand_q(rng, (rows, depth), dtype)])


@HYP
@given(n=st.integers(1, 2), h=st.integers(3, 9), w=st.integers(3, 9), ci=st.integers(1, 5), co=st.integers(1, 6),
       k=st.integers(1, 3), stride=st.integers(1, 2), padding=st.sampled_from([0, 1]), act=ACTS,
       seed=st.integers(0, 2**31 - 1))
def test_uint8_conv_and_fc_with_weight_zero_points(n, h, w, ci, co, k, stride, padding, act, seed):
    rng = np.random.default_rng(seed)
    oh, ow = conv_out(h, k, stride, 1, padding), conv_out(w, k, stride, 1, padding)
    in_q, out_q = act_params(rng, np.uint8), act_params(rng, np.uint8)
    wq = rand_q(rng, (co, k, k, ci), np.uint8)
    w_q = (np.float32(rng.uniform(0.002, 0.02)), int(rng.integers(100, 150)))
    bias = rng.integers(-5000, 5000, co).astype(np.int32)
    m = weighted_model("CONV_2D", (n, h, w, ci), wq, bias, np.uint8, in_q, w_q, (out_q[0] * 20, out_q[1]),
                       (n, oh, ow, co), 0, padding=padding, stride_h=stride, stride_w=stride,
                       fused_activation_function=act)
    assert_bit_exact(m, [rand_q(rng, (n, h, w, ci), np.uint8)])
    wf = rand_q(rng, (co, h * ci), np.uint8)
    m = weighted_model("FULLY_CONNECTED", (n * w, h * ci), wf, bias, np.uint8, in_q, w_q,
                       (out_q[0] * 20, out_q[1]), (n * w, co), 0, fused_activation_function=act)
    assert_bit_exact(m, [rand_q(rng, (n * w, h * ci), np.uint8)])


@HYP
@given(op=st.sampled_from(["AVERAGE_POOL_2D", "MAX_POOL_2D"]), dtype=st.sampled_from([np.int8, np.uint8, np.int16]),
       n=st.integers(1, 2), h=st.integers(2, 9), w=st.integers(2, 9), c=st.integers(1, 5), k=st.integers(1, 4),
       stride=st.integers(1, 3), padding=st.sampled_from([0, 1]), act=ACTS, seed=st.integers(0, 2**31 - 1))
def test_pools(op, dtype, n, h, w, c, k, stride, padding, act, seed):
    rng = np.random.default_rng(seed)
    k = min(k, h, w)
    oh, ow = conv_out(h, k, stride, 1, padding), conv_out(w, k, stride, 1, padding)
    q = act_params(rng, dtype)
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", (n, h, w, c), dtype, scale=q[0], zero_point=q[1])
    y = g.tensor("y", (n, oh, ow, c), dtype, scale=q[0], zero_point=q[1])
    g.op(op, [xi], [y], padding=padding, stride_h=stride, stride_w=stride, filter_height=k, filter_width=k,
         fused_activation_function=act)
    g.output(y)
    assert_bit_exact(mb.build(), [rand_q(rng, (n, h, w, c), dtype)])


def test_missing_output_quantization_is_a_clear_error():
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", (1, 4), np.int8, scale=0.1, zero_point=0)
    wi = g.const("w", np.ones((3, 4), np.int8), scale=0.1, zero_point=0)
    y = g.tensor("y", (1, 3), np.int8)
    g.op("FULLY_CONNECTED", [xi, wi], [y])
    g.output(y)
    with pytest.raises(RuntimeError, match="no quantization parameters"):
        tflite_jit.Interpreter(model_content=mb.build()).allocate_tensors()


def test_asymmetric_int8_filter_rejected():
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", (1, 3, 3, 2), np.int8, scale=0.1, zero_point=0)
    wi = g.const("w", np.ones((2, 1, 1, 2), np.int8), scale=[0.1, 0.1], zero_point=[3, 0])
    bi = g.const("b", np.zeros(2, np.int32), scale=[0.01, 0.01], zero_point=[0, 0])
    y = g.tensor("y", (1, 3, 3, 2), np.int8, scale=0.1, zero_point=0)
    g.op("CONV_2D", [xi, wi, bi], [y], stride_h=1, stride_w=1)
    g.output(y)
    with pytest.raises(RuntimeError, match="symmetric"):
        tflite_jit.Interpreter(model_content=mb.build()).allocate_tensors()


@settings(max_examples=15, deadline=None)
@given(op=st.sampled_from(["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"]), c=st.integers(1, 20),
       shift=st.integers(2, 6), zo=st.integers(-20, 20), seed=st.integers(0, 2**31 - 1))
def test_power_of_two_scales_hit_the_rounding_ties(op, c, shift, zo, seed):
    """With si * sw / so = 2**-shift every accumulator is an exact multiple of a half-step often,
    which is where LiteRT's kernels round differently (RHU2 vs MBQM, depthwise channel tails)."""
    rng = np.random.default_rng(seed)
    in_q, out_q = (2.0**-4, 3), (2.0**-4 * 2.0**-3 * 2.0**shift, zo)
    sw = np.full(c, 2.0**-3, np.float32)
    bias = rng.integers(-300, 300, c).astype(np.int32)
    if op == "FULLY_CONNECTED":
        x = rand_q(rng, (3, 7), np.int8)
        wq = rng.integers(-127, 128, (c, 7)).astype(np.int8)
        m = weighted_model(op, x.shape, wq, bias, np.int8, in_q, (sw, np.zeros(c, np.int64)), out_q, (3, c), 0)
    elif op == "CONV_2D":
        x = rand_q(rng, (1, 5, 5, 3), np.int8)
        wq = rng.integers(-127, 128, (c, 3, 3, 3)).astype(np.int8)
        m = weighted_model(op, x.shape, wq, bias, np.int8, in_q, (sw, np.zeros(c, np.int64)), out_q,
                           (1, 5, 5, c), 0, padding=0, stride_h=1, stride_w=1)
    else:
        x = rand_q(rng, (1, 5, 5, c), np.int8)
        wq = rng.integers(-127, 128, (1, 3, 3, c)).astype(np.int8)
        m = weighted_model(op, x.shape, wq, bias, np.int8, in_q, (sw, np.zeros(c, np.int64)), out_q,
                           (1, 5, 5, c), 3, padding=0, stride_h=1, stride_w=1, depth_multiplier=1)
    assert_bit_exact(m, [x])
