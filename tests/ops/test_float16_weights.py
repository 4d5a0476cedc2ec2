"""float16 weight quantization (what TF's converter emits for `target_spec.supported_types =
[tf.float16]`): float16 constants, each followed by DEQUANTIZE (float16 -> float32, exact), feeding
float CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED / BATCH_MATMUL.

Checked against LiteRT's builtin kernels: the dequantized weights bit for bit, the layer outputs
within the float contract, and bit-equal to the same model with the float32 weights inlined (the
DEQUANTIZE changes nothing but the storage)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import assert_close, litert_run, run_engine
from tflite_jit.format.builder import ModelBuilder

F32, F16 = np.float32, np.float16
BACKENDS = ("reference", "numba")


def layer_model(op: str, x_shape, w: np.ndarray, b: np.ndarray | None, out_shape, as_f16: bool,
                **options) -> bytes:
    """op(x, DEQUANTIZE(w16), DEQUANTIZE(b16)) when as_f16, else op(x, w, b) with float32 consts
    holding the same (float16-representable) values."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", x_shape, F32)
    ins = [x]
    for name, v in (("w", w), ("b", b)):
        if v is None:
            continue
        if as_f16:
            c = g.const(f"{name}16", v.astype(F16))
            d = g.tensor(f"{name}32", v.shape, F32)
            g.op("DEQUANTIZE", [c], [d])
            ins.append(d)
        else:
            ins.append(g.const(name, v.astype(F16).astype(F32)))
    y = g.tensor("y", out_shape, F32)
    g.op(op, ins, [y], **options)
    g.output(y)
    return mb.build()


def check(op: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, out_shape, **options) -> None:
    m16 = layer_model(op, x.shape, w, b, out_shape, True, **options)
    m32 = layer_model(op, x.shape, w, b, out_shape, False, **options)
    theirs16 = litert_run(m16, [x])[0]
    theirs32 = litert_run(m32, [x])[0]
    np.testing.assert_array_equal(theirs16, theirs32)  # LiteRT: the DEQUANTIZE is exact too
    for backend in BACKENDS:
        ours16 = run_engine(m16, [x], backend)[0][0]
        ours32 = run_engine(m32, [x], backend)[0][0]
        assert_close(ours16, theirs16, what=f"{op} {backend}")
        np.testing.assert_array_equal(ours16, ours32, err_msg=f"{op} {backend}")


def f16_values(rng: np.random.Generator, shape) -> np.ndarray:
    """Random float16 weights, including subnormals and values past float16's 11-bit mantissa."""
    v = (rng.normal(size=shape) * rng.choice([1e-6, 1e-3, 1.0, 300.0], size=shape)).astype(F16)
    return v.astype(F32)


@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 2), hw=st.integers(3, 7), ci=st.integers(1, 5), co=st.integers(1, 8),
       k=st.integers(1, 3), padding=st.sampled_from([0, 1]), act=st.sampled_from([0, 1, 3]),
       seed=st.integers(0, 2**31 - 1))
def test_conv_and_depthwise(n, hw, ci, co, k, padding, act, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, hw, hw, ci)).astype(F32)
    oh = hw if padding == 0 else hw - k + 1
    check("CONV_2D", x, f16_values(rng, (co, k, k, ci)), f16_values(rng, (co,)), (n, oh, oh, co),
          padding=padding, stride_h=1, stride_w=1, fused_activation_function=act)
    check("DEPTHWISE_CONV_2D", x, f16_values(rng, (1, k, k, ci * 2)), f16_values(rng, (ci * 2,)),
          (n, oh, oh, ci * 2), padding=padding, stride_h=1, stride_w=1, depth_multiplier=2,
          fused_activation_function=act)


@settings(max_examples=15, deadline=None)
@given(rows=st.integers(1, 4), depth=st.integers(1, 40), units=st.integers(1, 20), with_bias=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_fully_connected_and_batch_matmul(rows, depth, units, with_bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, depth)).astype(F32)
    check("FULLY_CONNECTED", x, f16_values(rng, (units, depth)),
          f16_values(rng, (units,)) if with_bias else None, (rows, units))
    check("BATCH_MATMUL", x, f16_values(rng, (depth, units)), None, (rows, units))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf * 0 in the matmul
@pytest.mark.parametrize("units", [8, 200])
def test_dequantize_output_exact_and_folding(units):
    rng = np.random.default_rng(units)
    w = f16_values(rng, (units, 64)).astype(F16)
    w[0, :4] = [np.inf, -np.inf, np.float16(6.0e-8), -0.0]
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 64), F32)
    d = g.tensor("w32", (units, 64), F32)
    g.op("DEQUANTIZE", [g.const("w16", w)], [d])
    y = g.tensor("y", (1, units), F32)
    g.op("FULLY_CONNECTED", [x, d], [y])
    g.output(d, y)
    m = mb.build()
    xv = rng.normal(size=(1, 64)).astype(F32)
    theirs = litert_run(m, [xv])
    expected = w.astype(F32)
    np.testing.assert_array_equal(theirs[0], expected)
    for backend in BACKENDS:
        it = tflite_jit.Interpreter(model_content=m, backend=backend)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], xv)
        it.invoke()
        outs = [it.get_tensor(o["index"]) for o in it.get_output_details()]
        np.testing.assert_array_equal(outs[0], expected)
        np.testing.assert_array_equal(np.isnan(outs[1]), np.isnan(theirs[1]))
        # DEQUANTIZE of a constant is folded at plan time whatever its size (runtime/shapes.py:
        # no bigger than its input): kernels see constant float32 weights they can pack. Here it
        # is also a graph output, so it keeps its own buffer and still runs (runtime/folding.py).
        assert it._interpreter.execs[0].infos[d].value is not None
