"""PRELU on the Numba backend: quantized int8 / uint8 (generators/qeltwise.py) bit for bit against
LiteRT with per-channel and full alphas, and float PRELU fused as the epilogue of a CONV_2D /
DEPTHWISE_CONV_2D (fusion's const_ops), within the float contract; plus 5x5 depthwise
convolutions (the landmark models' kernel size), float and int8, compiled."""

from __future__ import annotations

import numpy as np
import pytest

from tests.oracle import assert_close, litert_run, run_engine
from tflite_jit.format.builder import ModelBuilder

RNG = np.random.default_rng(11)


def qrand(shape, dtype):
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max + 1, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("alpha_shape", [(8,), (1, 1, 8), (5, 6, 8), (1,)])
@pytest.mark.parametrize("qs", [((0.05, 3), (0.02, -5), (0.04, 1)), ((0.1, -20), (0.007, 9), (0.3, -2))])
def test_quantized_prelu_bit_exact(dtype, alpha_shape, qs):
    (si, zi), (sa, za), (so, zo) = qs
    if dtype is np.uint8:
        zi, za, zo = zi + 128, za + 128, zo + 128
    x = qrand((2, 5, 6, 8), dtype)
    alpha = qrand(alpha_shape, dtype)
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", x.shape, dtype, scale=si, zero_point=zi)
    ai = g.const("alpha", alpha, scale=sa, zero_point=za)
    y = g.tensor("y", x.shape, dtype, scale=so, zero_point=zo)
    g.op("PRELU", [xi, ai], [y])
    g.output(y)
    m = mb.build()
    (theirs,) = litert_run(m, [x])
    (ours,), steps = run_engine(m, [x])
    assert steps == ["numba_cpu"]
    np.testing.assert_array_equal(ours, theirs)


def conv_prelu_model(op: str, k: int, c: int = 8) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 12, 12, c), np.float32)
    if op == "CONV_2D":
        w = g.const("w", RNG.standard_normal((c, k, k, c)).astype(np.float32))
        opts = {}
    else:
        w = g.const("w", RNG.standard_normal((1, k, k, c)).astype(np.float32))
        opts = {"depth_multiplier": 1}
    b = g.const("b", RNG.standard_normal(c).astype(np.float32))
    (t,) = g.apply(op, [x, w, b], padding="SAME", stride_w=1, stride_h=1, **opts)
    alpha = g.const("alpha", RNG.uniform(-0.5, 0.5, (1, 1, c)).astype(np.float32))
    (y,) = g.apply("PRELU", [t, alpha])
    g.output(y)
    return mb.build()


@pytest.mark.parametrize("op,k", [("CONV_2D", 1), ("CONV_2D", 3), ("DEPTHWISE_CONV_2D", 3), ("DEPTHWISE_CONV_2D", 5)])
def test_float_prelu_fuses_into_the_convolution(op, k):
    m = conv_prelu_model(op, k)
    x = RNG.standard_normal((1, 12, 12, 8)).astype(np.float32)
    (theirs,) = litert_run(m, [x])
    (ours,), steps = run_engine(m, [x])
    assert steps == ["numba_cpu"], "conv + PRELU should be one Numba kernel"
    assert_close(ours, theirs, what=f"{op} + PRELU")
    assert (ours < 0).any() and (ours > 0).any()  # both branches of PRELU are exercised


def test_int8_depthwise_5x5_compiles():
    c = 16
    x = qrand((1, 10, 10, c), np.int8)
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", x.shape, np.int8, scale=0.05, zero_point=2)
    w = g.const("w", qrand((1, 5, 5, c), np.int8), scale=[0.01 + 0.001 * i for i in range(c)],
                zero_point=[0] * c, quantized_dimension=3)
    b = g.const("b", RNG.integers(-500, 500, c).astype(np.int32), scale=[0.05 * (0.01 + 0.001 * i) for i in range(c)],
                zero_point=[0] * c)
    y = g.tensor("y", (1, 10, 10, c), np.int8, scale=0.08, zero_point=-3)
    g.op("DEPTHWISE_CONV_2D", [xi, w, b], [y], padding="SAME", stride_w=1, stride_h=1, depth_multiplier=1)
    g.output(y)
    m = mb.build()
    (theirs,) = litert_run(m, [x])
    (ours,), steps = run_engine(m, [x])
    assert steps == ["numba_cpu"]
    np.testing.assert_array_equal(ours, theirs)
