"""ops.quant (DEQUANTIZE): differential tests against LiteRT's builtin kernels, quantization
binding, and shape-rule errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import assert_close, litert_run
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.ops import quant
from tflite_jit.ops.base import InferCtx, OpError, PatternKind, get

HYP = settings(max_examples=25, deadline=None)
INT_TYPES = [np.int8, np.uint8, np.int16]


def dequant_model(x: np.ndarray, const: bool, scales, zero_points, axis: int = 0):
    """A DEQUANTIZE model; returns (model bytes, bound attrs from the IR input tensor)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    q = {} if scales is None else dict(scale=scales, zero_point=zero_points, quantized_dimension=axis)
    if const:
        xi = g.const("x", x, **q)
    else:
        xi = g.input("x", x.shape, x.dtype, **q)
    y = g.tensor("y", x.shape, np.float32)
    g.op("DEQUANTIZE", [xi], [y])
    g.output(y)
    opdef = get("DEQUANTIZE")
    tensors = mb.model().subgraphs[0].tensors
    attrs = opdef.bind(opdef.parse({}), [tensors[xi]], [tensors[y]])
    return mb.build(), attrs


def run_both(x, const, scales, zero_points, axis=0):
    data, attrs = dequant_model(x, const, scales, zero_points, axis)
    theirs = litert_run(data, [] if const else [x])[0]
    ours = get("DEQUANTIZE").reference([x], attrs)[0]
    return ours, theirs


def rand_q(rng, shape, dtype):
    info = np.iinfo(dtype)
    return np.asarray(rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype))


@HYP
@given(shape=st.lists(st.integers(1, 5), min_size=0, max_size=4).map(tuple), const=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_float16(shape, const, seed):
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.standard_normal(shape) * 100).astype(np.float16)
    if x.size:
        x.reshape(-1)[0] = np.float16(65504)
    ours, theirs = run_both(x, const, None, None)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)  # exact
    np.testing.assert_array_equal(ours, x.astype(np.float32))


@HYP
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple),
       dtype=st.sampled_from(INT_TYPES), const=st.booleans(),
       log_scale=st.floats(-12, 4), seed=st.integers(0, 2**31 - 1))
def test_per_tensor(shape, dtype, const, log_scale, seed):
    rng = np.random.default_rng(seed)
    x = rand_q(rng, shape, dtype)
    scale = float(np.float32(2.0 ** log_scale * rng.uniform(1, 2)))
    if dtype == np.int16:
        zp = 0  # LiteRT requires zero point 0 for int16
    else:
        info = np.iinfo(dtype)
        zp = int(rng.integers(info.min, info.max, endpoint=True))
    ours, theirs = run_both(x, const, scale, zp)
    assert_close(ours, theirs)


@HYP
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple),
       dtype=st.sampled_from([np.int8, np.uint8]), seed=st.integers(0, 2**31 - 1), data=st.data())
def test_per_channel(shape, dtype, seed, data):
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    x = rand_q(rng, shape, dtype)
    scales = (2.0 ** rng.uniform(-10, 0, size=n)).astype(np.float32)
    zps = rng.integers(-20, 20, size=n) + (128 if dtype == np.uint8 else 0)
    ours, theirs = run_both(x, True, scales, zps, axis)
    assert_close(ours, theirs)
    expect = (scales.astype(np.float64).reshape([-1 if i == axis else 1 for i in range(len(shape))])
              * (x.astype(np.int64) - zps.reshape([-1 if i == axis else 1 for i in range(len(shape))])))
    np.testing.assert_array_equal(ours, expect.astype(np.float32))


def test_exact_formula():
    # real = float32(double(scale) * (q - zp))
    x = np.array([-128, -1, 0, 1, 127], np.int8)
    attrs = quant.DequantizeAttrs(scales=(0.1,), zero_points=(3,), axis=0)
    out = get("DEQUANTIZE").reference([x], attrs)[0]
    np.testing.assert_array_equal(out, (0.1 * (x.astype(np.int64) - 3)).astype(np.float32))
    assert out.dtype == np.float32


def test_bind_quantization():
    class Q:
        scales = np.array([0.5, 0.25], np.float32)
        zero_points = np.array([1, 2])
        quantized_dimension = 1

    class T:
        quantization = Q()

    a = quant.bind_quantization(quant.DequantizeAttrs(), T())
    assert a == quant.DequantizeAttrs(scales=(0.5, 0.25), zero_points=(1, 2), axis=1)
    hash(a)
    assert a.bound and not quant.DequantizeAttrs().bound

    class NoQ:
        quantization = None

    assert quant.bind_quantization(quant.DequantizeAttrs(), NoQ()) == quant.DequantizeAttrs()
    opdef = get("DEQUANTIZE")
    assert opdef.kind == PatternKind.ELEMWISE and opdef.bind is not None
    assert opdef.cost([(4,)], [(4,)], a).flops > 0


def _infer(x: np.ndarray, attrs=None):
    opdef = get("DEQUANTIZE")
    ctx = InferCtx(op_name="DEQUANTIZE", attrs=attrs or opdef.parse({}), shapes=[x.shape],
                   dtypes=[x.dtype], values=[None], tensor_names=["w"])
    return opdef.infer(ctx)


def test_errors():
    assert _infer(np.zeros((2, 3), np.int8)) == [((2, 3), np.dtype(np.float32))]
    with pytest.raises(OpError, match="DEQUANTIZE: input 'w' has type float32"):
        _infer(np.zeros(3, np.float32))
    bad = quant.DequantizeAttrs(scales=(1.0, 2.0, 3.0), zero_points=(0,), axis=1)
    with pytest.raises(OpError, match="3 per-channel scales but dimension 1 has size 4"):
        _infer(np.zeros((2, 4), np.int8), bad)
    with pytest.raises(OpError, match="out of range"):
        _infer(np.zeros((3,), np.int8), quant.DequantizeAttrs(scales=(1.0,) * 3, zero_points=(0,), axis=2))
    with pytest.raises(OpError, match="2 zero points"):
        _infer(np.zeros((3,), np.int8), quant.DequantizeAttrs(scales=(1.0,) * 3, zero_points=(0, 0)))
    with pytest.raises(OpError, match="per channel"):
        _infer(np.zeros((2,), np.int16), quant.DequantizeAttrs(scales=(1.0, 2.0), zero_points=(0,)))
    with pytest.raises(OpError, match="zero point 3"):
        _infer(np.zeros((2,), np.int16), quant.DequantizeAttrs(scales=(1.0,), zero_points=(3,)))
    with pytest.raises(OpError, match="not bound"):
        get("DEQUANTIZE").reference([np.zeros(3, np.int8)], quant.DequantizeAttrs())
