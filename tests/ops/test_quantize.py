"""QUANTIZE against LiteRT's builtin kernels, bit for bit: float -> int (per tensor and per
channel, near-tie inputs that separate the roundings), integer requantization for every type pair
LiteRT accepts, and the rejections (unsupported pairs, missing or bad parameters)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import assert_bit_exact, litert_run
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.ops import qmath

HYP = settings(max_examples=30, deadline=None)
BACKENDS = ("numba", "reference")


def quantize_model(shape, src, dst, in_q=None, out_q=None, axis: int = 0) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    kw = {} if in_q is None else dict(scale=in_q[0], zero_point=in_q[1])
    x = g.input("x", shape, src, **kw)
    okw = {} if out_q is None else dict(scale=out_q[0], zero_point=out_q[1], quantized_dimension=axis)
    y = g.tensor("y", shape, dst, **okw)
    g.op("QUANTIZE", [x], [y])
    g.output(y)
    return mb.build()


@HYP
@given(dst=st.sampled_from([np.int8, np.uint8, np.int16]), rows=st.integers(1, 4), cols=st.integers(1, 37),
       scale=st.floats(1e-3, 1.0), zp=st.integers(-128, 255), seed=st.integers(0, 2**31 - 1))
def test_float_per_tensor_bit_exact(dst, rows, cols, scale, zp, seed):
    lo, hi = qmath.qrange(np.dtype(dst))
    zp = 0 if dst is np.int16 else int(np.clip(zp, lo, hi))
    s = float(np.float32(scale))
    rng = np.random.default_rng(seed)
    k = rng.integers(-300, 300, size=(rows, cols))
    x = ((k + 0.5) * s).astype(np.float32)  # near ties: the two roundings of LiteRT disagree here
    x.reshape(-1)[::3] = (rng.standard_normal(x.size)[::3] * 100 * s).astype(np.float32)
    assert_bit_exact(quantize_model(x.shape, np.float32, dst, out_q=(s, zp)), [x], backends=BACKENDS)


@HYP
@given(dst=st.sampled_from([np.int8, np.uint8, np.int16]), shape=st.lists(st.integers(1, 5), min_size=1,
       max_size=4), data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_float_per_channel_bit_exact(dst, shape, data, seed):
    axis = data.draw(st.integers(0, len(shape) - 1))
    rng = np.random.default_rng(seed)
    n = shape[axis]
    scales = rng.uniform(0.01, 0.5, n).astype(np.float32)
    lo, hi = qmath.qrange(np.dtype(dst))
    zps = np.zeros(n, np.int64) if dst is np.int16 else rng.integers(lo, hi + 1, n)
    x = (rng.standard_normal(shape) * 20).astype(np.float32)
    assert_bit_exact(quantize_model(tuple(shape), np.float32, dst, out_q=(scales, zps), axis=axis), [x], backends=BACKENDS)


PAIRS = [(np.int8, np.int8), (np.int8, np.uint8), (np.int8, np.int16), (np.uint8, np.int8),
         (np.uint8, np.uint8), (np.uint8, np.int16), (np.int16, np.int8), (np.int16, np.int16),
         (np.int16, np.int32), (np.int32, np.int8), (np.int32, np.int16)]


@HYP
@given(pair=st.sampled_from(PAIRS), n=st.integers(1, 70), ratio=st.sampled_from([0.25, 0.5, 2.0, 0.3, 1.7, 0.0625]),
       seed=st.integers(0, 2**31 - 1))
def test_requantize_bit_exact(pair, n, ratio, seed):
    src, dst = (np.dtype(t) for t in pair)
    rng = np.random.default_rng(seed)
    si = float(np.float32(rng.uniform(0.01, 0.1)))
    so = float(np.float32(si / ratio))
    lo, hi = qmath.qrange(src) if src != np.int32 else (-50_000, 50_000)
    dlo, dhi = qmath.qrange(dst)

    def zp(dt, lo_, hi_):
        if dt == np.int16 and src == dst:
            return 0
        return int(rng.integers(max(lo_, -20) if dt != np.uint8 else 110, (min(hi_, 20) if dt != np.uint8 else 146) + 1))

    zi, zo = zp(src, lo, hi), zp(dst, dlo, dhi)
    if src == dst == np.int16:
        zi = zo = 0
    x = rng.integers(lo, hi + 1, size=(2, n)).astype(src)
    assert_bit_exact(quantize_model(x.shape, src, dst, in_q=(si, zi), out_q=(so, zo)), [x], backends=BACKENDS)


@pytest.mark.parametrize("dst,zp", [(np.int8, 0), (np.int8, -3), (np.int8, 5), (np.uint8, 0), (np.uint8, 200),
                                    (np.int16, 0)])
@pytest.mark.parametrize("n", [8, 13, 5])
def test_non_finite_and_huge_values_like_litert(dst, zp, n):
    """x86's float->int32 gives INT32_MIN for NaN, inf and |x| >= 2**31; LiteRT then adds the zero
    point with int32 wrap-around: 1e30 with zero point -3 is int8 127, with 0 it is -128."""
    vals = np.array([1e30, -1e30, np.inf, -np.inf, np.nan, 3e9, -3e9, 1.0, 2.5, -7.0, 0.0, 1e-30, 60.0],
                    np.float32)
    x = vals[:n].reshape(1, n)
    assert_bit_exact(quantize_model(x.shape, np.float32, dst, out_q=(0.5, zp)), [x], backends=BACKENDS)


@pytest.mark.parametrize("src,dst", [(np.float32, np.int32), (np.int16, np.uint8), (np.int32, np.uint8),
                                     (np.int32, np.int32), (np.int8, np.float32), (np.float16, np.int8)])
def test_unsupported_pairs_rejected_like_litert(src, dst):
    in_q = None if np.dtype(src).kind == "f" else (0.5, 0)
    m = quantize_model((2, 3), src, dst, in_q=in_q, out_q=(0.25, 0))
    with pytest.raises(RuntimeError) as theirs:
        litert_run(m, [np.zeros((2, 3), src)])
    it = tflite_jit.Interpreter(model_content=m)
    with pytest.raises(RuntimeError) as ours_:
        it.allocate_tensors()
    assert "QUANTIZE" in str(ours_.value) and "failed to prepare" in str(theirs.value)


def test_missing_output_quantization_rejected():
    m = quantize_model((2, 3), np.float32, np.int8)
    with pytest.raises(RuntimeError, match="quantization"):
        tflite_jit.Interpreter(model_content=m).allocate_tensors()


@pytest.mark.parametrize("out_q,axis,match", [((0.0, 0), 0, "positive"), ((-1.0, 0), 0, "positive"),
                                              ((0.1, 300), 0, "zero point")])
def test_bad_output_parameters_rejected(out_q, axis, match):
    m = quantize_model((2, 2), np.float32, np.int8, out_q=out_q, axis=axis)
    with pytest.raises(RuntimeError, match=match):
        tflite_jit.Interpreter(model_content=m).allocate_tensors()


def test_int16_requantize_needs_zero_points_zero():
    m = quantize_model((2, 2), np.int16, np.int16, in_q=(0.5, 3), out_q=(0.25, 0))
    with pytest.raises(RuntimeError, match="zero points 0"):
        tflite_jit.Interpreter(model_content=m).allocate_tensors()


def test_per_channel_count_mismatch_rejected_at_load_like_litert():
    m = quantize_model((2, 2), np.float32, np.int8, out_q=([0.1, 0.2, 0.3], [0, 0, 0]), axis=1)
    with pytest.raises(ValueError, match="num_scales"):
        tflite_jit.Interpreter(model_content=m)


def test_per_channel_requantize_rejected():
    m = quantize_model((2, 2), np.int8, np.int8, in_q=(0.5, 0), out_q=([0.1, 0.2], [0, 0]), axis=1)
    with pytest.raises(RuntimeError, match="per tensor only"):
        tflite_jit.Interpreter(model_content=m).allocate_tensors()
