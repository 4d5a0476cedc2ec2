"""The Numba backend's int16x8 CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED
(generators/q16conv.py): int16 activations (zero point 0), int8 per-channel weights, int64 /
int32 / no bias; bit for bit against ops/qnn.py's reference kernels and LiteRT's builtin kernels,
with the plan proving that the Numba kernel ran (no silent fallback). Power-of-two scales put the
requantization on exact ties (negative ties tell half up from half away from zero); small output
scales saturate; output scales below input x filter scale give multipliers above 1."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.backends.test_numba_quantized import check, rand_q, run
from tests.ops.test_qnn import conv_out, weighted_model
from tflite_jit.backends.numba_cpu.generators import q16conv
from tflite_jit.ops import qmath

HYP = settings(max_examples=3, deadline=None)  # tests/ops/test_qnn.py adds 16x8 cases through these kernels
ACTS = st.sampled_from([0, 1, 3, 2])  # NONE, RELU, RELU6, RELU_N1_TO_1
I16 = np.int16


def _weights(rng, shape, n, pow2):
    w = rand_q(rng, shape, np.int8)
    w[w == -128] = -127
    s = (2.0 ** -rng.integers(6, 9, n)).astype(np.float32) if pow2 else rng.uniform(0.002, 0.02, n).astype(np.float32)
    return w, (s, np.zeros(n, np.int64))


def _act_scale(rng, pow2, lo=1e-4, hi=1e-3):
    return (2.0 ** -int(rng.integers(10, 14)) if pow2 else float(rng.uniform(lo, hi))), 0


def _conv_model(rng, op, n, h, w, ci, k, stride, dil, padding, act, pow2, bias, co=None, mult=1,
                out_scale=None):
    if padding == 1 and (k - 1) * dil + 1 > min(h, w):
        k, dil = min(k, h, w), 1
    oh, ow = conv_out(h, k, stride, dil, padding), conv_out(w, k, stride, dil, padding)
    in_q = _act_scale(rng, pow2)
    out_q = (out_scale, 0) if out_scale else (in_q[0] * (2.0 ** int(rng.integers(1, 4)) if pow2
                                                         else in_q[0] * float(rng.uniform(2, 20))), 0)
    opts = dict(padding=padding, stride_h=stride, stride_w=stride, dilation_h_factor=dil, dilation_w_factor=dil,
                fused_activation_function=act)
    if op == "DEPTHWISE_CONV_2D":
        co = ci * mult
        wq, w_q = _weights(rng, (1, k, k, co), co, pow2)
        opts["depth_multiplier"] = mult
    else:
        wq, w_q = _weights(rng, (co, k, k, ci), co, pow2)
    b = rng.integers(-40000, 40000, co).astype(np.int64) if bias else np.zeros(co, np.int64)
    return weighted_model(op, (n, h, w, ci), wq, b, I16, in_q, w_q, out_q, (n, oh, ow, co),
                          3 if op == "DEPTHWISE_CONV_2D" else 0, **opts)


CASE = dict(n=st.integers(1, 2), h=st.integers(3, 9), w=st.integers(3, 9), k=st.sampled_from([1, 2, 3, 3, 5]),
            stride=st.integers(1, 2), dil=st.integers(1, 2), padding=st.sampled_from([0, 1]), act=ACTS,
            pow2=st.booleans(), bias=st.booleans(), seed=st.integers(0, 2**31 - 1))


@HYP
@given(ci=st.integers(1, 20), co=st.integers(1, 40), **CASE)
def test_conv2d(ci, co, n, h, w, k, stride, dil, padding, act, pow2, bias, seed):
    rng = np.random.default_rng(seed)
    m = _conv_model(rng, "CONV_2D", n, h, w, ci, k, stride, dil, padding, act, pow2, bias, co=co)
    check(m, rand_q(rng, (n, h, w, ci), I16), litert=True)


@HYP
@given(c=st.integers(1, 40), mult=st.sampled_from([1, 1, 2]), **CASE)
def test_depthwise(c, mult, n, h, w, k, stride, dil, padding, act, pow2, bias, seed):
    rng = np.random.default_rng(seed)
    m = _conv_model(rng, "DEPTHWISE_CONV_2D", n, h, w, c, k, stride, dil, padding, act, pow2, bias, mult=mult)
    check(m, rand_q(rng, (n, h, w, c), I16), litert=True)


@settings(max_examples=5, deadline=None)
@given(rows=st.integers(1, 6), depth=st.integers(1, 300), units=st.integers(1, 40), per_channel=st.booleans(),
       act=ACTS, pow2=st.booleans(), bias=st.sampled_from([np.int64, np.int32, None]), keep=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_fully_connected(rows, depth, units, per_channel, act, pow2, bias, keep, seed):
    """int64 bias: LiteRT's reference kernel (double requantization); int32 or no bias: its ruy
    int16 path (RHU2)."""
    rng = np.random.default_rng(seed)
    wq, w_q = _weights(rng, (units, depth), units if per_channel else 1, pow2)
    in_q = _act_scale(rng, pow2)
    out_q = (in_q[0] * (2.0 ** int(rng.integers(2, 6)) if pow2 else float(rng.uniform(5, 50))), 0)
    b = None if bias is None else rng.integers(-40000, 40000, units).astype(bias)
    x_shape = (rows, 1, depth) if keep else (rows, depth)
    m = weighted_model("FULLY_CONNECTED", x_shape, wq, b, I16, in_q, w_q, out_q,
                       (rows, 1, units) if keep else (rows, units), 0, fused_activation_function=act, keep_num_dims=keep)
    check(m, rand_q(rng, x_shape, I16), litert=True)


def _single_scale_conv(op, c, in_s, w_s, out_s, x, bias=None, act=0):
    wq = np.ones((1, 1, 1, c), np.int8) if op == "DEPTHWISE_CONV_2D" else np.eye(c, dtype=np.int8).reshape(c, 1, 1, c)
    b = np.zeros(c, np.int64) if bias is None else bias
    opts = dict(padding=1, stride_h=1, stride_w=1, fused_activation_function=act)
    if op == "DEPTHWISE_CONV_2D":
        opts["depth_multiplier"] = 1
    return weighted_model(op, x.shape, wq, b, I16, (in_s, 0), (np.full(c, w_s, np.float32), np.zeros(c, np.int64)),
                          (out_s, 0), x.shape, 3 if op == "DEPTHWISE_CONV_2D" else 0, **opts)


@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D"])
def test_ties_round_half_up(op):
    """acc / 8 with acc = x: every x = 4 mod 8 is a tie; the int64 MultiplyByQuantizedMultiplier
    rounds them half up (-4 / 8 -> 0, not -1), as LiteRT does."""
    c = 12
    x = np.arange(-96, 96, dtype=I16).reshape(1, 4, 4, c)
    m = _single_scale_conv(op, c, 1.0, 2.0 ** -3, 1.0, x)
    out = check(m, x, litert=True) and run(m, x)[0]
    mult, shift = qmath.quantize_multiplier(2.0 ** -3)
    assert np.array_equal(out, qmath.mbqm64(x.astype(np.int64), mult, shift))
    ties = (x % 8 == 4) & (x < 0)
    assert ties.any() and np.array_equal(out[ties], (x[ties] + 4) // 8)


def test_fc_double_ties_round_half_away():
    """16x8 FULLY_CONNECTED with an int64 bias rounds acc * multiplier half away from zero."""
    depth = 1
    x = np.arange(-40, 40, dtype=I16).reshape(-1, depth)
    m = weighted_model("FULLY_CONNECTED", x.shape, np.ones((1, depth), np.int8), np.zeros(1, np.int64), I16, (1.0, 0),
                       (np.full(1, 0.25, np.float32), np.zeros(1, np.int64)), (1.0, 0), (x.shape[0], 1), 0)
    check(m, x, litert=True)
    out = run(m, x)[0][:, 0].astype(np.int64)
    v = x[:, 0].astype(np.int64)
    assert np.array_equal(out, np.sign(v) * ((np.abs(v) + 2) // 4))


@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"])
@pytest.mark.parametrize("act", [0, 3])  # NONE, RELU6 (the others: the hypothesis tests)
def test_saturation_and_large_multipliers(op, act):
    """Multipliers above 1 (output scale below input x filter scale: positive shifts) push most
    outputs to the int16 limits or the activation's clamp; large biases too. (Kept below 2**31
    after scaling: beyond it LiteRT's int32 casts wrap, which ops/qnn.py does not model.)"""
    rng = np.random.default_rng(11 + act)
    if op == "FULLY_CONNECTED":
        wq, w_q = _weights(rng, (24, 64), 24, False)
        b = rng.integers(-(1 << 24), 1 << 24, 24).astype(np.int64)
        m = weighted_model(op, (5, 64), wq, b, I16, (1e-3, 0), w_q, (2e-4, 0), (5, 24), 0, fused_activation_function=act)
        x = rand_q(rng, (5, 64), I16)
    else:
        m = _conv_model(rng, op, 1, 7, 6, 9, 3, 1, 1, 0, act, False, True, co=17, out_scale=3e-6)
        x = rand_q(rng, (1, 7, 6, 9), I16)
    out = run(m, x)[0]
    check(m, x, litert=True)
    lo, hi = int(out.min()), int(out.max())
    assert lo < 0 or act in (1, 3)
    assert (out == hi).sum() > 1


@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"])
def test_parallel_kernels(monkeypatch, op):
    monkeypatch.setattr(q16conv, "SERIAL_MACS", 1e3)  # every kernel parallel
    rng = np.random.default_rng(5)
    if op == "FULLY_CONNECTED":
        wq, w_q = _weights(rng, (33, 70), 33, False)
        m = weighted_model(op, (9, 70), wq, rng.integers(-999, 999, 33).astype(np.int64), I16, (1e-3, 0), w_q,
                           (2e-2, 0), (9, 33), 0, fused_activation_function=1)
        x = rand_q(rng, (9, 70), I16)
    else:
        ci = 13 if op == "CONV_2D" else 6  # past PIXELS_MAX_C: the int32-pair path, with an odd channel
        m = _conv_model(rng, op, 2, 9, 8, ci, 3, 2, 1, 0, 1, False, True, co=10)
        x = rand_q(rng, (2, 9, 8, ci), I16)
    ex = check(m, x, threads=3, litert=True)
    assert any(getattr(getattr(s.kernel, "src", None), "parallel", False) for s in ex.steps)


def test_refusals_fall_back_with_a_reason():
    """Grouped 16x8 convolutions are not compiled: the node runs on reference, and the plan says why."""
    rng = np.random.default_rng(2)
    wq, w_q = _weights(rng, (4, 1, 1, 2), 4, False)
    m = weighted_model("CONV_2D", (1, 4, 4, 4), wq, np.zeros(4, np.int64), I16, (1e-3, 0), w_q, (1e-2, 0),
                       (1, 4, 4, 4), 0, padding=1, stride_h=1, stride_w=1)
    ex = check(m, rand_q(rng, (1, 4, 4, 4), I16), expect_numba=False)
    assert ex.plan[0]["backend"] != "numba_cpu" and "grouped" in ex.plan[0]["fallback_reason"]


@pytest.mark.parametrize("k,ci", [(3, 64), (1, 601)])
def test_int32_pair_flush_at_extremes(k, ci):
    """Input-channel pairs accumulate in int32 and are flushed to float64 every 255 pairs: with
    every product at its extreme (-32768 x -128, 2**22) a 3x3x64 filter (288 pairs) and a 601-deep
    1x1 (an odd channel left over) cross a flush, and the sums (up to 2.4e9, past int32) stay exact."""
    co = 12
    wq = np.full((co, k, k, ci), -128, np.int8)
    wq[1::2] = 127
    w_q = (np.full(co, 1e-2, np.float32), np.zeros(co, np.int64))
    m = weighted_model("CONV_2D", (1, k + 2, k + 2, ci), wq, np.full(co, 7, np.int64), I16, (1e-3, 0), w_q,
                       (1.0, 0), (1, 3, 3, co), 0, padding=1, stride_h=1, stride_w=1)
    x = np.full((1, k + 2, k + 2, ci), -32768, I16)
    x[0, 0, 0, : ci // 2] = 32767
    out = check(m, x) and run(m, x)[0]
    assert np.abs(out).max() > 10000  # the sums are large, not saturated away
    check(m, x, litert=True)


def test_int32_flush_is_load_bearing(monkeypatch):
    """Without the flush the int32 lanes wrap on the same data: the test above would catch it."""
    monkeypatch.setattr(q16conv, "PAIRS_PER_FLUSH", 10**6)
    co, ci = 4, 64
    wq = np.full((co, 3, 3, ci), -128, np.int8)
    m = weighted_model("CONV_2D", (1, 5, 5, ci), wq, np.zeros(co, np.int64), I16, (1e-3, 0), (np.full(co, 1e-2, np.float32),
                       np.zeros(co, np.int64)), (1.0, 0), (1, 3, 3, co), 0, padding=1, stride_h=1, stride_w=1)
    x = np.full((1, 5, 5, ci), -32768, I16)
    ours, ex = run(m, x)
    ref, _ = run(m, x, backend="reference")
    assert {p["backend"] for p in ex.plan} == {"numba_cpu"}
    assert not np.array_equal(ours, ref)
