"""Dynamic-range ("hybrid") quantized kernels against LiteRT's builtin kernels, bit for bit:
float32 activations with int8 constant weights (per-tensor / per-channel scales) and float32
outputs for FULLY_CONNECTED (symmetric and asymmetric input quantization), CONV_2D,
DEPTHWISE_CONV_2D, BATCH_MATMUL, TRANSPOSE_CONV, and EMBEDDING_LOOKUP with int8 / uint8 tables.

Inputs include rows built to hit exact rounding ties and the one value (0.49999997) where the
vectorised quantizer's trunc(x + 0.5) differs from round(), in the 8-wide blocks and the tail."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import assert_close, litert_interpreter, litert_run, run_engine
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.ops import qhybrid

F32 = np.float32
HYP = settings(max_examples=60, deadline=None)
BACKENDS = ("reference", "numba")


def assert_bit_exact(model: bytes, xs: list[np.ndarray], exact: bool = True, seed: int = 0) -> None:
    """Ours on both backends against LiteRT. Hypothesis examples pass their seed: every example
    runs the reference, one in three also compiles its Numba kernel (generators/hybrid.py,
    tconv.py; each example is a new kernel, seconds to compile, so the sample keeps the file's
    run time bounded; tests/backends/test_numba_hybrid.py has fixed compiled cases)."""
    theirs = litert_run(model, xs)[0]
    for backend in BACKENDS if seed % 3 == 0 else ("reference",):
        ours = run_engine(model, xs, backend)[0][0]
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, backend
        if exact:
            np.testing.assert_array_equal(ours, theirs, err_msg=backend)
        else:
            assert_close(ours, theirs, what=backend)


def activations(rng: np.random.Generator, shape: tuple[int, ...], style: str, rows: int,
                asym: bool = False) -> np.ndarray:
    """Float inputs. 'normal': random; 'ties': every quantization row gets range 127 (symmetric)
    or [-128, 127] (asymmetric), so x * (1 / scale) is x itself and k + 0.5 values are exact
    ties, plus +-0.49999997 (rounded to +-1 by the vector path, 0 by the scalar tail)."""
    x = rng.normal(size=shape).astype(F32) * F32(rng.choice([0.01, 1.0, 30.0]))
    if style == "normal":
        return x
    flat = x.reshape(rows, -1)
    n = flat.shape[1]
    flat[:] = (rng.integers(-126, 126, size=flat.shape) + 0.5).astype(F32)
    near = np.float32(np.nextafter(F32(0.5), F32(0)))
    idx = rng.integers(0, n, size=(rows, max(1, n // 3)))
    for r in range(rows):
        flat[r, idx[r]] = near * rng.choice([-1, 1], size=idx.shape[1]).astype(F32)
        flat[r, rng.integers(0, n)] = F32(127)
        if asym and n > 1:
            flat[r, rng.integers(0, n)] = F32(-128)
    return flat.reshape(shape)


def int8_weights(rng: np.random.Generator, shape: tuple[int, ...], dtype=np.int8) -> np.ndarray:
    """Random weights; int8 ones are in [-127, 127] with, one time in two, some -128 (outside
    the spec, and mis-multiplied by LiteRT's FULLY_CONNECTED, which we reproduce)."""
    if dtype == np.uint8:
        return rng.integers(0, 256, size=shape).astype(np.uint8)
    w = rng.integers(-127, 128, size=shape).astype(np.int8)
    if rng.random() < 0.5:
        w[rng.random(shape) < 0.2] = -128
    return w


def quant_kw(scales: np.ndarray, axis: int) -> dict:
    return dict(scale=scales, zero_point=np.zeros(scales.size, np.int64), quantized_dimension=axis)


# ---- FULLY_CONNECTED ----------------------------------------------------------------------------

def fc_model(w: np.ndarray, scales: np.ndarray | None, x_shape, out_shape, bias: np.ndarray | None,
             **options) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", x_shape, F32)
    ins = [x, g.const("w", w, **({} if scales is None else quant_kw(scales, 0)))]
    if bias is not None:
        ins.append(g.const("b", bias))
    y = g.tensor("y", out_shape, F32)
    g.op("FULLY_CONNECTED", ins, [y], **options)
    g.output(y)
    return mb.build()


@HYP
@given(rows=st.integers(1, 5), depth=st.integers(1, 40), units=st.integers(1, 20),
       per_channel=st.booleans(), asym=st.booleans(), with_bias=st.booleans(),
       act=st.sampled_from([0, 1, 2, 3, 4, 5]), keep_dims=st.booleans(),
       wtype=st.sampled_from([np.int8, np.int8, np.uint8]), style=st.sampled_from(["normal", "ties"]),
       seed=st.integers(0, 2**31 - 1))
def test_fully_connected(rows, depth, units, per_channel, asym, with_bias, act, keep_dims, wtype, style,
                         seed):
    rng = np.random.default_rng(seed)
    w = int8_weights(rng, (units, depth), wtype)
    scales = rng.uniform(0.001, 0.05, units if per_channel else 1).astype(F32)
    bias = rng.normal(size=units).astype(F32) if with_bias else None
    x_shape = (rows, 1, depth) if keep_dims else (rows, depth)
    out_shape = (rows, 1, units) if keep_dims else (rows, units)
    m = fc_model(w, scales, x_shape, out_shape, bias, asymmetric_quantize_inputs=asym,
                 fused_activation_function=act, keep_num_dims=keep_dims)
    # A fused TANH is applied by LiteRT with Eigen's float tanh approximation (ulp-level
    # differences from libm); every other path is bit exact.
    assert_bit_exact(m, [activations(rng, x_shape, style, rows, asym)], exact=act != 4, seed=seed)


def test_fc_zero_rows_weights_without_scale_and_zero_points():
    rng = np.random.default_rng(1)
    w = int8_weights(rng, (6, 16))
    bias = rng.normal(size=6).astype(F32)
    x = rng.normal(size=(3, 16)).astype(F32)
    x[1] = 0  # an all-zero row: scale 1, all-zero quantized values
    for asym in (False, True):
        assert_bit_exact(fc_model(w, np.full(1, 0.02, F32), (3, 16), (3, 6), bias,
                                  asymmetric_quantize_inputs=asym), [x])
        assert_bit_exact(fc_model(w, np.full(1, 0.02, F32), (3, 16), (3, 6), bias,
                                  asymmetric_quantize_inputs=asym), [np.zeros((3, 16), F32)])
    # No quantization parameters: LiteRT's scale is 0, so the output is the bias.
    assert_bit_exact(fc_model(w, None, (3, 16), (3, 6), bias), [x])
    # Weight zero points are not read by the hybrid kernel.
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", (3, 16), F32)
    wi = g.const("w", w, scale=0.02, zero_point=7)
    y = g.tensor("y", (3, 6), F32)
    g.op("FULLY_CONNECTED", [xi, wi], [y])
    g.output(y)
    assert_bit_exact(mb.build(), [x])


def test_fc_float_weights_with_asymmetric_option_still_float():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(5, 7)).astype(F32)
    m = fc_model(w, None, (2, 7), (2, 5), None, asymmetric_quantize_inputs=True)
    x = rng.normal(size=(2, 7)).astype(F32)
    theirs = litert_run(m, [x])[0]
    for backend in BACKENDS:
        np.testing.assert_allclose(run_engine(m, [x], backend)[0][0], theirs, rtol=1e-5, atol=1e-5)


def test_quantizer_rounding_is_discriminating():
    """The tie / near-tie inputs really exercise the rounding rules: half-to-even, or one rule
    for head and tail, gives different quantized values on them."""
    rng = np.random.default_rng(3)
    for asym in (False, True):
        x = activations(rng, (4, 21), "ties", 4, asym)
        q, _, zp = qhybrid.quantize_rows(x, asym)
        q = q - zp[:, None]
        assert np.any(q != np.rint(x))  # half away from zero differs from half to even
        head = x[:, :16]
        near = np.abs(head) == np.float32(np.nextafter(F32(0.5), F32(0)))
        assert near.any() and np.all(np.abs(q[:, :16][near]) == 1)
        tail = np.abs(x[:, 16:]) == np.float32(np.nextafter(F32(0.5), F32(0)))
        assert np.all(q[:, 16:][tail] == 0)


# ---- CONV_2D / DEPTHWISE_CONV_2D ----------------------------------------------------------------

def conv_out(size, k, stride, dil, padding):
    eff = (k - 1) * dil + 1
    return (size + stride - 1) // stride if padding == 0 else (size - eff + stride) // stride


def conv_model(op, x_shape, w, scales, axis, bias, out_shape, **options) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", x_shape, F32)
    wi = g.const("w", w, **quant_kw(scales, axis))
    y = g.tensor("y", out_shape, F32)
    g.op(op, [x, wi, g.const("b", bias)], [y], **options)
    g.output(y)
    return mb.build()


CONV = dict(n=st.integers(1, 2), h=st.integers(3, 8), w=st.integers(3, 8), k=st.integers(1, 3),
            stride=st.integers(1, 2), dil=st.integers(1, 2), padding=st.sampled_from([0, 1]),
            act=st.sampled_from([0, 1, 2, 3, 4]), style=st.sampled_from(["normal", "ties"]),
            seed=st.integers(0, 2**31 - 1))


@HYP
@given(ci=st.integers(1, 6), co=st.integers(1, 10), per_channel=st.booleans(), groups=st.sampled_from([1, 1, 2]),
       wtype=st.sampled_from([np.int8, np.int8, np.uint8]), **CONV)
def test_conv2d(ci, co, per_channel, groups, wtype, n, h, w, k, stride, dil, padding, act, style, seed):
    rng = np.random.default_rng(seed)
    if groups == 2:  # LiteRT's grouped hybrid conv is per-channel, int8 only
        per_channel, co, wtype = True, 2 * ((co + 1) // 2), np.int8
    if per_channel:  # uint8 filters run per tensor only (see test_conv_uint8_per_channel_rejected)
        wtype = np.int8
    if padding == 1 and (k - 1) * dil + 1 > min(h, w):
        dil = 1
    oh, ow = conv_out(h, k, stride, dil, padding), conv_out(w, k, stride, dil, padding)
    wq = int8_weights(rng, (co, k, k, ci), wtype)
    scales = rng.uniform(0.001, 0.05, co if per_channel else 1).astype(F32)
    m = conv_model("CONV_2D", (n, h, w, ci * groups), wq, scales, 0, rng.normal(size=co).astype(F32),
                   (n, oh, ow, co), padding=padding, stride_h=stride, stride_w=stride,
                   dilation_h_factor=dil, dilation_w_factor=dil, fused_activation_function=act)
    assert_bit_exact(m, [activations(rng, (n, h, w, ci * groups), style, n, per_channel)], seed=seed)


@HYP
@given(c=st.integers(1, 11), mult=st.integers(1, 3), **CONV)
def test_depthwise(c, mult, n, h, w, k, stride, dil, padding, act, style, seed):
    rng = np.random.default_rng(seed)
    if padding == 1 and (k - 1) * dil + 1 > min(h, w):
        dil = 1
    co = c * mult  # channel counts around 4 and 8 exercise the vector blocks and the tails
    oh, ow = conv_out(h, k, stride, dil, padding), conv_out(w, k, stride, dil, padding)
    wq = int8_weights(rng, (1, k, k, co))
    scales = rng.uniform(0.001, 0.05, co).astype(F32)
    m = conv_model("DEPTHWISE_CONV_2D", (n, h, w, c), wq, scales, 3, rng.normal(size=co).astype(F32),
                   (n, oh, ow, co), padding=padding, stride_h=stride, stride_w=stride,
                   dilation_h_factor=dil, dilation_w_factor=dil, depth_multiplier=mult,
                   fused_activation_function=act)
    assert_bit_exact(m, [activations(rng, (n, h, w, c), style, n, True)], seed=seed)


# ---- BATCH_MATMUL -------------------------------------------------------------------------------

@HYP
@given(m=st.integers(1, 5), k=st.integers(1, 20), n=st.integers(1, 7),
       batches=st.sampled_from([((), ()), ((2,), ()), ((2,), (2,)), ((1, 3), (2, 1)), ((), (3,))]),
       adj_x=st.booleans(), adj_y=st.booleans(), asym=st.booleans(), per_channel=st.booleans(),
       const_rhs=st.booleans(), style=st.sampled_from(["normal", "ties"]), seed=st.integers(0, 2**31 - 1))
def test_batch_matmul(m, k, n, batches, adj_x, adj_y, asym, per_channel, const_rhs, style, seed):
    rng = np.random.default_rng(seed)
    bx, by = batches
    xs = bx + ((k, m) if adj_x else (m, k))
    ys = by + ((n, k) if adj_y else (k, n))
    wq = int8_weights(rng, ys)
    n_axis = len(ys) - (2 if adj_y else 1)
    scales = rng.uniform(0.001, 0.05, n if per_channel else 1).astype(F32)
    batch = np.broadcast_shapes(bx, by)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", xs, F32)
    if const_rhs:
        wi = g.const("w", wq, **quant_kw(scales, n_axis))
    else:
        wi = g.input("w", ys, np.int8, **quant_kw(scales, n_axis))
    y = g.tensor("y", batch + (m, n), F32)
    g.op("BATCH_MATMUL", [x, wi], [y], adj_x=adj_x, adj_y=adj_y, asymmetric_quantize_inputs=asym)
    g.output(y)
    rows = int(np.prod(bx, dtype=np.int64)) * m
    xv = activations(rng, bx + (m, k), style, rows, asym)
    if adj_x:
        xv = np.ascontiguousarray(np.swapaxes(xv, -1, -2))
    assert_bit_exact(mb.build(), [xv] if const_rhs else [xv, wq], seed=seed)


# ---- TRANSPOSE_CONV ------------------------------------------------------------------------------

def tconv_model(x_shape, w, scales, bias, out_shape, **options) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", x_shape, F32)
    ins = [g.const("os", np.array(out_shape, np.int32)), g.const("w", w, **quant_kw(scales, 0)), x]
    if bias is not None:
        ins.append(g.const("b", bias))
    y = g.tensor("y", out_shape, F32)
    g.op("TRANSPOSE_CONV", ins, [y], version=3, **options)
    g.output(y)
    return mb.build()


@HYP
@given(n=st.integers(1, 2), h=st.integers(1, 6), w=st.integers(1, 6), ci=st.integers(1, 9),
       co=st.integers(1, 11), kh=st.integers(1, 4), kw=st.integers(1, 4), stride=st.integers(1, 3),
       padding=st.sampled_from(["SAME", "VALID"]), per_channel=st.booleans(), with_bias=st.booleans(),
       act=st.sampled_from([0, 1, 2, 3]), style=st.sampled_from(["normal", "ties"]),
       seed=st.integers(0, 2**31 - 1))
def test_transpose_conv(n, h, w, ci, co, kh, kw, stride, padding, per_channel, with_bias, act, style, seed):
    """Issue #15 defect 3: a hybrid TRANSPOSE_CONV (float32 input, int8 weights) failed to
    prepare. LiteRT scatters float32 products in a fixed order; we match it bit for bit."""
    rng = np.random.default_rng(seed)
    oh, ow = (h * stride, w * stride) if padding == "SAME" else ((h - 1) * stride + kh, (w - 1) * stride + kw)
    wq = int8_weights(rng, (co, kh, kw, ci))
    scales = rng.uniform(0.001, 0.05, co if per_channel else 1).astype(F32)
    bias = rng.normal(size=co).astype(F32) if with_bias else None
    m = tconv_model((n, h, w, ci), wq, scales, bias, (n, oh, ow, co), padding=padding, stride_h=stride,
                    stride_w=stride, fused_activation_function=act)
    assert_bit_exact(m, [activations(rng, (n, h, w, ci), style, n, True)], seed=seed)


@pytest.mark.parametrize("case", ["uint8", "no_scale", "scales", "int_bias"])
def test_transpose_conv_errors(case):
    rng = np.random.default_rng(8)
    w = int8_weights(rng, (3, 2, 2, 2))
    scales, bias = np.full(3, 0.02, F32), np.zeros(3, F32)
    if case == "uint8":
        w = w.view(np.uint8)
    if case == "int_bias":
        bias = np.zeros(3, np.int32)
    if case == "scales":
        scales = np.full(2, 0.02, F32)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 2, 2, 2), F32)
    wi = g.const("w", w) if case == "no_scale" else g.const("w", w, **quant_kw(scales, 0))
    y = g.tensor("y", (1, 4, 4, 3), F32)
    g.op("TRANSPOSE_CONV", [g.const("os", np.array([1, 4, 4, 3], np.int32)), wi, x, g.const("b", bias)], [y],
         version=3, padding="SAME", stride_h=2, stride_w=2)
    g.output(y)
    m = mb.build()
    # (LiteRT checks the scale count when it loads the model: ValueError from the constructor.)
    err = ValueError if case == "scales" else RuntimeError
    with pytest.raises(err):
        litert_run(m, [np.ones((1, 2, 2, 2), F32)])
    with pytest.raises(err, match="TRANSPOSE_CONV" if err is RuntimeError else "quantization"):
        tflite_jit.Interpreter(model_content=m).allocate_tensors()


def test_converted_unet_with_hybrid_transpose_conv():
    """The regression of issue #15 defect 3, on the converter's own output: a U-Net converted with
    Optimize.DEFAULT (tests/data/make_tf_models.py) has hybrid CONV_2D and TRANSPOSE_CONV nodes;
    it prepares and matches LiteRT's builtin kernels on both backends (within the float contract:
    its float CONV_2D and TRANSPOSE_CONV nodes sum in another order than LiteRT's; the hybrid
    nodes are bit exact, test_transpose_conv and test_conv2d)."""
    model = (pathlib.Path(__file__).parent.parent / "data" / "tf_unet_dynamic_range.tflite").read_bytes()
    x = np.random.default_rng(3).standard_normal((1, 32, 32, 3)).astype(F32)
    assert_bit_exact(model, [x], exact=False)


# ---- EMBEDDING_LOOKUP ---------------------------------------------------------------------------

@HYP
@given(rows=st.integers(1, 8), inner=st.sampled_from([(3,), (2, 3), (1,)]), per_row=st.booleans(),
       tdt=st.sampled_from([np.int8, np.uint8]), out=st.sampled_from([np.float32, np.float16]),
       k=st.integers(0, 6), quantized=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_embedding_lookup(rows, inner, per_row, tdt, out, k, quantized, seed):
    rng = np.random.default_rng(seed)
    table = int8_weights(rng, (rows,) + inner, tdt)
    scales = rng.uniform(0.001, 2.0, rows if per_row else 1).astype(F32)
    ids = rng.integers(0, rows, size=k).astype(np.int32)
    mb = ModelBuilder()
    g = mb.subgraph()
    i = g.input("ids", (k,), np.int32)
    t = g.const("t", table, **(quant_kw(scales, 0) if quantized else {}))
    y = g.tensor("y", (k,) + inner, out)
    g.op("EMBEDDING_LOOKUP", [i, t], [y])
    g.output(y)
    assert_bit_exact(mb.build(), [ids])


# ---- errors ---------------------------------------------------------------------------------------

def test_depthwise_needs_per_channel_scales():
    rng = np.random.default_rng(4)
    m = conv_model("DEPTHWISE_CONV_2D", (1, 4, 4, 3), int8_weights(rng, (1, 2, 2, 3)), np.full(1, 0.02, F32),
                   3, np.zeros(3, F32), (1, 4, 4, 3), stride_h=1, stride_w=1)
    with pytest.raises(RuntimeError):
        litert_run(m, [np.ones((1, 4, 4, 3), F32)])
    with pytest.raises(RuntimeError, match="DEPTHWISE_CONV_2D.*per-channel"):
        tflite_jit.Interpreter(model_content=m).allocate_tensors()


def test_grouped_conv_needs_per_channel_scales():
    rng = np.random.default_rng(5)
    m = conv_model("CONV_2D", (1, 4, 4, 4), int8_weights(rng, (4, 1, 1, 2)), np.full(1, 0.02, F32), 0,
                   np.zeros(4, F32), (1, 4, 4, 4), stride_h=1, stride_w=1)
    with pytest.raises(RuntimeError):
        litert_run(m, [np.ones((1, 4, 4, 4), F32)])
    with pytest.raises(RuntimeError, match="grouped hybrid convolution"):
        tflite_jit.Interpreter(model_content=m).allocate_tensors()


@pytest.mark.parametrize("op, wdt", [("FULLY_CONNECTED", np.int16), ("DEPTHWISE_CONV_2D", np.uint8),
                                     ("BATCH_MATMUL", np.uint8), ("CONV_2D", np.int16)])
def test_unsupported_weight_types_rejected(op, wdt):
    mb = ModelBuilder()
    g = mb.subgraph()
    if op == "FULLY_CONNECTED":
        x, wshape, out, extra = (2, 4), (3, 4), (2, 3), {}
    elif op == "BATCH_MATMUL":
        x, wshape, out, extra = (2, 4), (4, 3), (2, 3), {}
    else:
        x, wshape, out, extra = (1, 3, 3, 2), (2, 1, 1, 2), (1, 3, 3, 2), dict(stride_h=1, stride_w=1)
        if op == "DEPTHWISE_CONV_2D":
            wshape = (1, 1, 1, 2)
    xi = g.input("x", x, F32)
    axis = 3 if op == "DEPTHWISE_CONV_2D" else 0
    ins = [xi, g.const("w", np.ones(wshape, wdt), scale=np.full(2, 0.1, F32) if op != "FULLY_CONNECTED"
                       and op != "BATCH_MATMUL" else 0.1,
                       zero_point=np.zeros(2, np.int64) if op not in ("FULLY_CONNECTED", "BATCH_MATMUL") else 0,
                       quantized_dimension=axis)]
    if op != "BATCH_MATMUL":
        ins.append(g.const("b", np.zeros(out[-1], F32)))
    y = g.tensor("y", out, F32)
    g.op(op, ins, [y], **extra)
    g.output(y)
    if wdt != np.int16 or op != "CONV_2D":  # (LiteRT runs int16 hybrid CONV_2D, returning the bias)
        with pytest.raises(RuntimeError):
            litert_run(mb.build(), [np.ones(x, F32)])
    with pytest.raises(RuntimeError, match=f"{op}: weights 'w' are {np.dtype(wdt).name}"):
        tflite_jit.Interpreter(model_content=mb.build()).allocate_tensors()


def test_conv_uint8_per_channel_rejected():
    # LiteRT runs it but reads the uint8 filter neither as int8 nor as uint8 values.
    m = conv_model("CONV_2D", (1, 3, 3, 1), np.array([217, 163], np.uint8).reshape(2, 1, 1, 1),
                   np.array([0.01, 0.02], F32), 0, np.zeros(2, F32), (1, 3, 3, 2), stride_h=1, stride_w=1)
    with pytest.raises(RuntimeError, match="per-channel hybrid convolution takes int8"):
        tflite_jit.Interpreter(model_content=m).allocate_tensors()


def test_fc_integer_bias_rejected():
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", (2, 4), F32)
    ins = [xi, g.const("w", np.ones((3, 4), np.int8), scale=0.1, zero_point=0), g.const("b", np.zeros(3, np.int32))]
    y = g.tensor("y", (2, 3), F32)
    g.op("FULLY_CONNECTED", ins, [y])
    g.output(y)
    with pytest.raises(RuntimeError):
        litert_run(mb.build(), [np.ones((2, 4), F32)])
    with pytest.raises(RuntimeError, match="bias 'b' is int32"):
        tflite_jit.Interpreter(model_content=mb.build()).allocate_tensors()


def test_bmm_fewer_scales_than_columns_rejected():
    # 3 scales along K for 5 output columns: LiteRT would index its scale array out of bounds.
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", (2, 3), F32)
    wi = g.const("w", np.ones((3, 5), np.int8), **quant_kw(np.full(3, 0.1, F32), 0))
    y = g.tensor("y", (2, 5), F32)
    g.op("BATCH_MATMUL", [xi, wi], [y])
    g.output(y)
    with pytest.raises(RuntimeError, match="3 scales .* 5 output columns"):
        tflite_jit.Interpreter(model_content=mb.build()).allocate_tensors()


def embedding_model(table: np.ndarray, k: int, **quant) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    i = g.input("ids", (k,), np.int32)
    t = g.const("t", table, **quant)
    y = g.tensor("y", (k,) + table.shape[1:], F32)
    g.op("EMBEDDING_LOOKUP", [i, t], [y])
    g.output(y)
    return mb.build()


def test_embedding_errors():
    table = np.arange(6, dtype=np.int8).reshape(3, 2)
    m = embedding_model(table, 2, scale=0.1, zero_point=1)
    with pytest.raises(RuntimeError):
        litert_run(m, [np.zeros(2, np.int32)])
    with pytest.raises(RuntimeError, match="zero point 1"):
        tflite_jit.Interpreter(model_content=m).allocate_tensors()
    m = embedding_model(table, 2, **quant_kw(np.full(2, 0.1, F32), 1))
    with pytest.raises(RuntimeError):
        litert_run(m, [np.zeros(2, np.int32)])
    with pytest.raises(RuntimeError, match="one scale per row"):
        tflite_jit.Interpreter(model_content=m).allocate_tensors()
    # int16 tables: LiteRT reads them as int8 bytes with the wrong row stride; rejected.
    m = embedding_model(table.astype(np.int16), 2, scale=0.1, zero_point=0)
    with pytest.raises(RuntimeError, match="must be int8 or uint8"):
        tflite_jit.Interpreter(model_content=m).allocate_tensors()
    m = embedding_model(table, 2, scale=0.1, zero_point=0)
    for ids in ([0, 3], [-1, 0]):
        with pytest.raises(RuntimeError, match="out of bounds"):
            litert_run(m, [np.array(ids, np.int32)])
        for backend in BACKENDS:
            it = tflite_jit.Interpreter(model_content=m, backend=backend)
            it.allocate_tensors()
            it.set_tensor(it.get_input_details()[0]["index"], np.array(ids, np.int32))
            with pytest.raises(RuntimeError, match="out of range"):
                it.invoke()


# ---- UNIDIRECTIONAL_SEQUENCE_RNN ------------------------------------------------------------------

def _allocated(model: bytes) -> tuple[Any, list[Any]]:
    """LiteRT's interpreter and ours on each of BACKENDS, allocated: for the stateful ops, which
    are invoked several times on the same interpreters."""
    theirs = litert_interpreter(model)
    theirs.allocate_tensors()
    ours = [tflite_jit.Interpreter(model_content=model, backend=be) for be in BACKENDS]
    for it in ours:
        it.allocate_tensors()
    return theirs, ours


def rnn_model(rng, t, b, i, u, time_major, act, asym, wtype=np.int8) -> tuple[bytes, tuple[int, ...]]:
    mb = ModelBuilder()
    g = mb.subgraph()
    xs = (t, b, i) if time_major else (b, t, i)
    x = g.input("x", xs, F32)
    w = g.const("w", int8_weights(rng, (u, i), wtype), scale=float(rng.uniform(0.005, 0.05)), zero_point=0)
    r = g.const("r", int8_weights(rng, (u, u), wtype), scale=float(rng.uniform(0.002, 0.02)), zero_point=0)
    bias = g.const("b", rng.normal(size=u).astype(F32))
    h = g.tensor("h", (b, u), F32, is_variable=True)
    y = g.tensor("y", (t, b, u) if time_major else (b, t, u), F32)
    g.op("UNIDIRECTIONAL_SEQUENCE_RNN", [x, w, r, bias, h], [y], time_major=time_major,
         fused_activation_function=act, asymmetric_quantize_inputs=asym)
    g.output(y)
    return mb.build(), xs


@settings(max_examples=25, deadline=None)
@given(t=st.integers(1, 5), b=st.integers(1, 3), i=st.integers(1, 40), u=st.integers(1, 20),
       time_major=st.booleans(), act=st.sampled_from([0, 1, 2, 3, 5]), asym=st.booleans(),
       wtype=st.sampled_from([np.int8, np.int8, np.uint8]), seed=st.integers(0, 2**31 - 1))
def test_sequence_rnn(t, b, i, u, time_major, act, asym, wtype, seed):
    """Two invokes (state carried), reset, a third; zero rows and zero steps included."""
    rng = np.random.default_rng(seed)
    model, xs = rnn_model(rng, t, b, i, u, time_major, act, asym, wtype)
    theirs, ours = _allocated(model)
    for k in range(3):
        if k == 2:
            theirs.reset_all_variables()
            for it in ours:
                it.reset_all_variables()
        x = (rng.normal(size=xs) * rng.choice([0.1, 1.0, 5.0])).astype(F32)
        if k == 1:
            x[0] = 0
        for it in (theirs, *ours):
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
        want = theirs.get_tensor(theirs.get_output_details()[0]["index"])
        for it, be in zip(ours, BACKENDS):
            np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]), want,
                                          err_msg=f"invoke {k} {be}")


def test_sequence_rnn_tanh_rejected():
    model, _ = rnn_model(np.random.default_rng(0), 2, 1, 3, 4, True, 4, False)
    with pytest.raises(RuntimeError, match="fused TANH is not supported"):
        tflite_jit.Interpreter(model_content=model).allocate_tensors()


# ---- SVDF -------------------------------------------------------------------------------------------

def svdf_model(rng, b, i, units, rank, memory, act, asym, bias=True, wt_dtype=np.int8) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (b, i), F32)
    nf = units * rank
    wf = g.const("wf", int8_weights(rng, (nf, i)), scale=float(rng.uniform(0.005, 0.05)), zero_point=0)
    if wt_dtype == np.int8:
        wt = g.const("wt", int8_weights(rng, (nf, memory)), scale=float(rng.uniform(0.005, 0.05)), zero_point=0)
    else:
        wt = g.const("wt", rng.normal(size=(nf, memory)).astype(F32))
    ins = [x, wf, wt, g.const("b", rng.normal(size=units).astype(F32)) if bias else -1,
           g.tensor("s", (b, memory * nf), F32, is_variable=True)]
    y = g.tensor("y", (b, units), F32)
    g.op("SVDF", ins, [y], rank=rank, fused_activation_function=act, asymmetric_quantize_inputs=asym)
    g.output(y)
    return mb.build()


@settings(max_examples=25, deadline=None)
@given(b=st.integers(1, 3), i=st.integers(1, 40), units=st.integers(1, 5), rank=st.integers(1, 3),
       memory=st.integers(1, 6), act=st.sampled_from([0, 1, 2, 3, 4]), asym=st.booleans(), bias=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_svdf(b, i, units, rank, memory, act, asym, bias, seed):
    """Four invokes (state carried; the second with a zero input), reset before the fourth. Bit
    exact except with TANH (LiteRT's tanh approximation; the state does not feed through it)."""
    rng = np.random.default_rng(seed)
    model = svdf_model(rng, b, i, units, rank, memory, act, asym, bias)
    theirs, ours = _allocated(model)
    for k in range(4):
        if k == 3:
            for it in (theirs, *ours):
                it.reset_all_variables()
        x = np.zeros((b, i), F32) if k == 1 else activations(rng, (b, i), "ties" if k == 2 else "normal", b, asym)
        for it in (theirs, *ours):
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
        want = theirs.get_tensor(theirs.get_output_details()[0]["index"])
        for it, be in zip(ours, BACKENDS):
            got = it.get_tensor(it.get_output_details()[0]["index"])
            if act == 4:
                assert_close(got, want, what=f"invoke {k} {be}")
            else:
                np.testing.assert_array_equal(got, want, err_msg=f"invoke {k} {be}")


def test_svdf_float_weights_time_rejected():
    model = svdf_model(np.random.default_rng(0), 1, 4, 2, 1, 3, 0, False, wt_dtype=np.float32)
    with pytest.raises(RuntimeError, match="takes int8 weights_time"):
        tflite_jit.Interpreter(model_content=model).allocate_tensors()
