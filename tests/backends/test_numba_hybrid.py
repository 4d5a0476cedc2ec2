"""The Numba kernels of dynamic-range ("hybrid") FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D,
BATCH_MATMUL and TRANSPOSE_CONV (generators/hybrid.py, tconv.py), and of float32 TRANSPOSE_CONV.

tests/ops/test_qhybrid.py runs every hybrid case on both backends bit for bit; here we check that
the Numba backend really compiles them (no silent fallback), that the nodes it must refuse fall
back to the reference with a reason and stay exact, and float32 TRANSPOSE_CONV against LiteRT."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ops.test_qhybrid import activations, conv_model, fc_model, int8_weights, quant_kw, tconv_model
from tests.oracle import assert_close, litert_run, run_engine
from tflite_jit.format.builder import ModelBuilder

F32 = np.float32


def _exact_on_numba(model: bytes, xs: list[np.ndarray]) -> None:
    theirs = litert_run(model, xs)[0]
    ours, steps = run_engine(model, xs, "numba")
    assert steps == ["numba_cpu"], steps
    np.testing.assert_array_equal(ours[0], theirs)


@pytest.mark.parametrize("asym", [False, True])
@pytest.mark.parametrize("per_channel", [False, True])
def test_fully_connected_compiles(asym, per_channel):
    rng = np.random.default_rng(1)
    w = rng.integers(-127, 128, (24, 37)).astype(np.int8)
    sc = rng.uniform(0.001, 0.05, 24 if per_channel else 1).astype(F32)
    m = fc_model(w, sc, (6, 37), (6, 24), rng.normal(size=24).astype(F32),
                 asymmetric_quantize_inputs=asym, fused_activation_function=1)
    _exact_on_numba(m, [activations(rng, (6, 37), "ties", 6, asym)])


@pytest.mark.parametrize("per_channel, padding, stride", [(False, 0, 1), (True, 0, 2), (True, 1, 1),
                                                          (False, 1, 2)])
def test_conv2d_compiles(per_channel, padding, stride):
    rng = np.random.default_rng(2)
    w = rng.integers(-127, 128, (6, 3, 3, 5)).astype(np.int8)
    sc = rng.uniform(0.001, 0.05, 6 if per_channel else 1).astype(F32)
    o = 7 // stride + (7 % stride > 0) if padding == 0 else (7 - 3) // stride + 1
    m = conv_model("CONV_2D", (2, 7, 7, 5), w, sc, 0, rng.normal(size=6).astype(F32), (2, o, o, 6),
                   padding=padding, stride_h=stride, stride_w=stride, fused_activation_function=3)
    _exact_on_numba(m, [activations(rng, (2, 7, 7, 5), "normal", 2, per_channel)])


@pytest.mark.parametrize("c, mult", [(10, 1), (3, 2)])
def test_depthwise_compiles(c, mult):
    rng = np.random.default_rng(3)
    co = c * mult
    w = rng.integers(-127, 128, (1, 3, 3, co)).astype(np.int8)
    m = conv_model("DEPTHWISE_CONV_2D", (2, 7, 7, c), w, rng.uniform(0.001, 0.05, co).astype(F32), 3,
                   rng.normal(size=co).astype(F32), (2, 4, 4, co), padding=0, stride_h=2, stride_w=2,
                   depth_multiplier=mult, fused_activation_function=1)
    _exact_on_numba(m, [activations(rng, (2, 7, 7, c), "ties", 2, True)])


@pytest.mark.parametrize("asym", [False, True])
def test_batch_matmul_compiles(asym):
    rng = np.random.default_rng(4)
    w = rng.integers(-127, 128, (2, 9, 5)).astype(np.int8)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (2, 3, 9), F32)
    y = g.tensor("y", (2, 3, 5), F32)
    g.op("BATCH_MATMUL", [x, g.const("w", w, **quant_kw(np.full(5, 0.01, F32), 2))], [y],
         asymmetric_quantize_inputs=asym)
    g.output(y)
    _exact_on_numba(mb.build(), [activations(rng, (2, 3, 9), "ties", 6, asym)])


@pytest.mark.parametrize("padding, stride, k", [("SAME", 2, 3), ("VALID", 1, 2), ("SAME", 1, 4)])
def test_transpose_conv_compiles(padding, stride, k):
    rng = np.random.default_rng(5)
    n, h, ci, co = 2, 4, 6, 9
    o = h * stride if padding == "SAME" else (h - 1) * stride + k
    w = int8_weights(rng, (co, k, k, ci))
    m = tconv_model((n, h, h, ci), w, rng.uniform(0.001, 0.05, co).astype(F32),
                    rng.normal(size=co).astype(F32), (n, o, o, co), padding=padding, stride_h=stride,
                    stride_w=stride, fused_activation_function=1)
    _exact_on_numba(m, [activations(rng, (n, h, h, ci), "ties", n, True)])


def test_minus128_weights_fall_back_exactly():
    """LiteRT's SSE dot product mis-multiplies -128 weights in blocks of 16 columns; the kernel
    does not reproduce that, so such a node runs on the reference (which does), still exact."""
    rng = np.random.default_rng(6)
    w = rng.integers(-127, 128, (8, 32)).astype(np.int8)
    w[3, 5] = -128
    m = fc_model(w, np.full(1, 0.02, F32), (4, 32), (4, 8), None)
    x = rng.normal(size=(4, 32)).astype(F32)
    ours, steps = run_engine(m, [x], "numba")
    assert steps == ["reference"]
    np.testing.assert_array_equal(ours[0], litert_run(m, [x])[0])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), h=st.integers(1, 5), ci=st.integers(1, 7), co=st.integers(1, 9),
       kh=st.integers(1, 4), kw=st.integers(1, 4), stride=st.integers(1, 3),
       padding=st.sampled_from(["SAME", "VALID"]), act=st.sampled_from([0, 1, 3]), with_bias=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_float_transpose_conv(n, h, ci, co, kh, kw, stride, padding, act, with_bias, seed):
    rng = np.random.default_rng(seed)
    oh, ow = (h * stride, h * stride) if padding == "SAME" else ((h - 1) * stride + kh, (h - 1) * stride + kw)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (n, h, h, ci), F32)
    ins = [g.const("os", np.array((n, oh, ow, co), np.int32)),
           g.const("w", rng.normal(size=(co, kh, kw, ci)).astype(F32)), x]
    if with_bias:
        ins.append(g.const("b", rng.normal(size=co).astype(F32)))
    y = g.tensor("y", (n, oh, ow, co), F32)
    g.op("TRANSPOSE_CONV", ins, [y], version=3, padding=padding, stride_h=stride, stride_w=stride,
         fused_activation_function=act)
    g.output(y)
    m = mb.build()
    xv = rng.normal(size=(n, h, h, ci)).astype(F32)
    ours, steps = run_engine(m, [xv], "numba")
    assert steps == ["numba_cpu"], steps
    assert_close(ours[0], litert_run(m, [xv])[0])


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
@pytest.mark.parametrize("n_out, padding, stride", [(11, "SAME", 2), (16, "VALID", 1), (3, "SAME", 1)])
def test_integer_transpose_conv_compiles(dtype, n_out, padding, stride):
    """int8 / 16x8 TRANSPOSE_CONV compile (generators/tconv.py) and equal LiteRT bit for bit;
    power-of-two scales put exact ties where the two rounding rules differ
    (tests/ops/test_qmath_ops.py runs the wider matrix on the default chain)."""
    from tests.ops.test_qmath_ops import rand
    from tests.ops.test_qmath_ops import tconv_model as int_tconv_model

    rng = np.random.default_rng(n_out + stride)
    for act, pow2, bias in ((0, True, True), (1, False, True), (0, False, False)):
        m = int_tconv_model(rng, dtype, n_out, padding, stride, act, pow2, bias)
        x = rand(rng, (1, 5, 5, 4), dtype)
        theirs = litert_run(m, [x])[0]
        ours, steps = run_engine(m, [x], "numba")
        assert steps == ["numba_cpu"], steps
        np.testing.assert_array_equal(ours[0], theirs)


@pytest.mark.parametrize("asym", [False, True])
def test_long_row_fully_connected_multiplies_in_int64(asym):
    """A 1280-feature classifier's sums can pass 2**24, past float32's exact integers: the kernel
    multiplies in int64 instead of the float32 GEMM (still compiled, still bit-exact)."""
    rng = np.random.default_rng(7)
    w = rng.integers(-127, 128, (10, 1280)).astype(np.int8)
    m = fc_model(w, rng.uniform(0.001, 0.05, 10).astype(F32), (2, 1280), (2, 10), rng.normal(size=10).astype(F32),
                 asymmetric_quantize_inputs=asym, fused_activation_function=3)
    _exact_on_numba(m, [activations(rng, (2, 1280), "ties", 2, asym)])


@pytest.mark.parametrize("asym, padding, stride", [(True, 0, 1), (True, 1, 2), (False, 0, 1)])
def test_conv2d_with_sums_past_float32_stays_exact(asym, padding, stride):
    """3x3 over 144 channels with weights near +-127: sums reach 2-4 * 10**7, past float32's exact
    integers (2**24); the int8 product's int32 accumulator is LiteRT's, rounded once to float32
    as LiteRT rounds it: compiled and bit-exact with LiteRT. Output channel 0 has every weight
    127 and the input is all positive, so its accumulator really passes 2**24 (odd sums that a
    float32 sum would round)."""
    rng = np.random.default_rng(8)
    co, c = 6, 144
    w = rng.choice(np.array([-127, -126, -125, 125, 126, 127], np.int8), (co, 3, 3, c))
    w[0] = 127
    w[1, ..., :5] = -128 if asym else -127
    sc = rng.uniform(0.001, 0.05, co if asym else 1).astype(F32)
    o = 7 // stride + (7 % stride > 0) if padding == 0 else (7 - 3) // stride + 1
    m = conv_model("CONV_2D", (2, 7, 7, c), w, sc, 0, rng.normal(size=co).astype(F32), (2, o, o, co),
                   padding=padding, stride_h=stride, stride_w=stride, fused_activation_function=0)
    x = rng.uniform(0.0, 4.0, (2, 7, 7, c)).astype(F32)
    x[0, 2:5, 2:5] = 4.0  # a window of the image's maximum: q - zp = 255 (asymmetric), 127 (symmetric)
    x[1] = activations(rng, (1, 7, 7, c), "ties", 1, asym)[0]
    assert "int8 product" in _kernel_header(m, x)
    theirs = litert_run(m, [x])[0]
    ours, steps = run_engine(m, [x], "numba")
    assert steps == ["numba_cpu"], steps
    np.testing.assert_array_equal(ours[0], theirs)
    # the accumulator of channel 0 at the all-maximum window passed 2**24 (so exactness mattered)
    assert float(np.abs(theirs[0, ..., 0]).max()) / float(sc[0] * 4.0 / (255 if asym else 127)) > 2 ** 24


def _kernel_header(model: bytes, x: np.ndarray) -> str:
    """The first line of the generated module of the model's one node (which path it took)."""
    from tflite_jit import Interpreter

    it = Interpreter(model_content=model, backend="numba")
    it.allocate_tensors()
    (step,) = it._interpreter.execs[0].steps
    return step.kernel.src.source.splitlines()[0]


@pytest.mark.parametrize("n, hw, k, c, co, stride, dil, padding, per_channel, act", [
    (1, (6, 5), 1, 600, 5, 1, 1, 1, True, 0),      # 1x1, channels in whole 4-byte groups: in place
    (1, (6, 5), 1, 1101, 5, 1, 1, 1, True, 0),     # 1x1, a partial group: gathered
    (2, (7, 6), 3, 80, 8, 2, 1, 0, True, 1),       # two images, SAME, stride 2, RELU
    (2, (7, 6), 3, 120, 8, 2, 1, 0, True, 1),
    (1, (9, 8), 3, 80, 4, 1, 2, 0, True, 3),       # dilation 2, SAME: border patterns
    (1, (9, 8), 3, 120, 4, 1, 2, 0, False, 3),     # per tensor, -128 weights allowed (C_out % 4 == 0)
    (1, (5, 5), 2, 200, 3, 1, 1, 1, True, 0),      # VALID
    (1, (5, 5), 2, 280, 3, 1, 1, 1, False, 0),     # VALID, per tensor, odd C_out
    (1, (12, 11), 3, 7, 20, 1, 1, 0, True, 0),     # 132 pixels: three pixel blocks; 20 channels: 2 lane blocks
])
def test_conv2d_past_float32_geometries(n, hw, k, c, co, stride, dil, padding, per_channel, act):
    """Sums past 2**24 over the int8 product's layouts (in place / gathered patches, taps outside
    the image, dilation, batches, pixel and channel blocks), bit-exact with LiteRT: an asymmetric
    input's zero point times the sum of w over the taps inside the image is subtracted per border
    pattern."""
    rng = np.random.default_rng(k * 100 + c)
    lo = -128 if (per_channel or co % 4 == 0) else -127
    w = rng.integers(lo, 128, (co, k, k, c)).astype(np.int8)
    w[0] = 127  # this channel's bound passes 2**24 whatever the draw
    assert c < 100 or k * k * c * 127 * (255 if per_channel else 127) >= 2 ** 24
    sc = rng.uniform(0.001, 0.05, co if per_channel else 1).astype(F32)
    h, wd = hw
    eff = (k - 1) * dil + 1
    oh, ow = ((h + stride - 1) // stride, (wd + stride - 1) // stride) if padding == 0 else \
        ((h - eff) // stride + 1, (wd - eff) // stride + 1)
    m = conv_model("CONV_2D", (n, h, wd, c), w, sc, 0, rng.normal(size=co).astype(F32), (n, oh, ow, co),
                   padding=padding, stride_h=stride, stride_w=stride, dilation_h_factor=dil,
                   dilation_w_factor=dil, fused_activation_function=act)
    x = np.abs(activations(rng, (n, h, wd, c), "normal", n, per_channel)) if per_channel else \
        activations(rng, (n, h, wd, c), "ties", n, per_channel)
    if per_channel:
        x[0, 0, 0, :3] = -x[0, 0, 0, :3]  # image 0 has a nonzero zero point; image 1 (if any) zp -128
    header = _kernel_header(m, x)
    assert "int8 product" in header, header
    _exact_on_numba(m, [x])


@pytest.mark.parametrize("asym", [False, True])
def test_fully_connected_int8_product_matches_litert_on_every_row_length(asym):
    """The int8 product (qdot.py) for row lengths around its 4-byte groups and 16-lane column
    blocks, rows around its 4-row tiles, and long rows whose sums pass 2**24 (exact here: the
    accumulator is an int32)."""
    rng = np.random.default_rng(11)
    for rows, depth, units in ((1, 1, 1), (3, 5, 17), (4, 64, 16), (5, 130, 33), (9, 1280, 10)):
        w = rng.integers(-127, 128, (units, depth)).astype(np.int8)
        m = fc_model(w, rng.uniform(0.001, 0.05, units).astype(F32), (rows, depth), (rows, units),
                     rng.normal(size=units).astype(F32), asymmetric_quantize_inputs=asym)
        _exact_on_numba(m, [activations(rng, (rows, depth), "ties", rows, asym)])


def test_fully_connected_int8_product_without_vnni(tmp_path):
    """On a host without AVX512-VNNI the int8 product multiplies int16 pairs (vpmaddwd, 2x2
    tiles): run the kernels compiled for a Haswell-class target (AVX2, no AVX-512) in a
    subprocess and compare them with LiteRT there."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from tflite_jit.backends.numba_cpu import qsimd, simd\n"
        "assert not qsimd.HAS_VNNI and simd.VW == 8 and qsimd.HAS_PMADDWD\n"
        "from tests.backends.test_numba_hybrid import test_fully_connected_int8_product_matches_litert_on_every_row_length as t\n"
        "t(False); t(True)\n"
        "print('ok')\n")
    env = dict(os.environ, NUMBA_CPU_NAME="haswell", TFLITE_JIT_CACHE_DIR=str(tmp_path / "cache"),
               NUMBA_CACHE_DIR=str(tmp_path / "numba"),
               NUMBA_CPU_FEATURES="+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+f16c,+fma,+fxsr,+lzcnt,+mmx,"
                                  "+movbe,+popcnt,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0 and "ok" in p.stdout, p.stdout[-2000:] + p.stderr[-4000:]


@pytest.mark.parametrize("asym, padding", [(True, 0), (False, 1)])
def test_conv2d_int8_product_on_two_threads(asym, padding):
    """With num_threads=2 a big enough CONV_2D splits its pixel blocks over Numba's threads (each
    task its own patch and accumulator scratch): bit-exact with LiteRT, and with the 1-thread
    kernel."""
    from tflite_jit import Interpreter

    rng = np.random.default_rng(21)
    n, h, c, co = 1, 40, 32, 24
    w = rng.integers(-127, 128, (co, 3, 3, c)).astype(np.int8)
    sc = rng.uniform(0.001, 0.05, co).astype(F32)
    o = h if padding == 0 else h - 2
    m = conv_model("CONV_2D", (n, h, h, c), w, sc, 0, rng.normal(size=co).astype(F32), (n, o, o, co),
                   padding=padding, stride_h=1, stride_w=1, fused_activation_function=1)
    x = activations(rng, (n, h, h, c), "ties", n, asym) if asym else rng.normal(size=(n, h, h, c)).astype(F32)
    theirs = litert_run(m, [x])[0]
    ours, steps = run_engine(m, [x], "numba", num_threads=2)
    assert steps == ["numba_cpu"], steps
    np.testing.assert_array_equal(ours[0], theirs)
    it = Interpreter(model_content=m, backend="numba", num_threads=2)
    it.allocate_tensors()
    (step,) = it._interpreter.execs[0].steps
    src = step.kernel.src
    assert src.shared.endswith(":hybrid_conv_i8_par") and src.args[-1].value == 2, src
