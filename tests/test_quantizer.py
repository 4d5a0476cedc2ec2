"""The post-training quantizer (tflite_jit.quantizer): models laid out the way TF's converter lays
them out, and end-to-end int8 models shaped like MobileNetV2, EfficientNet-B0, MobileNetV3-Small and
a transformer encoder checked tensor by tensor against LiteRT's builtin kernels."""

from __future__ import annotations

import numpy as np
import pytest

import tflite_jit
from tests.oracle import litert_run
from tests.quant_compare import compare_all_tensors
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.reader import load_bytes
from tflite_jit.quantizer import affine_params, quantize
from tflite_jit.tools import models


def samples(model: bytes, n: int, seed: int = 0) -> list[list[np.ndarray]]:
    it = tflite_jit.Interpreter(model_content=model, backend="reference")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        row = []
        for d in it.get_input_details():
            if np.dtype(d["dtype"]) == np.float32:
                row.append(rng.standard_normal(d["shape"]).astype(np.float32))
            else:
                row.append(rng.integers(0, 100, d["shape"]).astype(d["dtype"]))
        out.append(row)
    return out


def to_int8(model: bytes, xs: list[np.ndarray]) -> list[np.ndarray]:
    it = tflite_jit.Interpreter(model_content=model, backend="reference")
    out = []
    for d, x in zip(it.get_input_details(), xs):
        if np.dtype(d["dtype"]) == np.int8:
            s, z = d["quantization"]
            x = np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)
        out.append(x)
    return out


E2E = {
    "mobilenet_v2": lambda: models.mobilenet_v2(input_size=64, alpha=0.5),
    "efficientnet_b0": lambda: models.efficientnet_b0(input_size=64),
    "mobilenet_v3_small": lambda: models.mobilenet_v3_small(input_size=64),
    "transformer_encoder": lambda: models.transformer_encoder(seq_len=32, d_model=64, num_heads=2, d_ff=128),
}


@pytest.mark.parametrize("name", sorted(E2E))
def test_end_to_end_int8_matches_litert_tensor_by_tensor(name):
    float_model = E2E[name]()
    q = quantize(float_model, samples(float_model, 3), inference_input_type=np.int8,
                 inference_output_type=np.int8)
    xs = to_int8(q, samples(float_model, 1, seed=9)[0])
    tallies = compare_all_tensors(q, xs)
    assert {"CONV_2D", "FULLY_CONNECTED"} & set(tallies)
    total = sum(t.elements for t in tallies.values())
    exact = sum(t.exact for t in tallies.values())
    worst = {op: t.max_diff for op, t in tallies.items() if t.max_diff}
    assert exact / total >= 0.999, f"{name}: exact rate {exact / total:.5f}, per op {worst}"
    assert max((t.max_diff for t in tallies.values()), default=0) <= 1, worst


def test_float_interface_adds_quantize_and_dequantize_at_the_edges():
    float_model = models.tiny_convnet()
    q = quantize(float_model, samples(float_model, 2))
    m = load_bytes(q)
    sg = m.subgraphs[0]
    assert sg.ops[0].name == "QUANTIZE" and sg.ops[-1].name == "DEQUANTIZE"
    it = tflite_jit.Interpreter(model_content=q)
    assert it.get_input_details()[0]["dtype"] == np.float32
    assert it.get_output_details()[0]["dtype"] == np.float32
    x = samples(float_model, 1, seed=3)[0]
    ours = tflite_jit.Interpreter(model_content=q)
    ours.allocate_tensors()
    ours.set_tensor(ours.get_input_details()[0]["index"], x[0])
    ours.invoke()
    got = ours.get_tensor(ours.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, litert_run(q, x)[0], rtol=0, atol=1e-6)
    # and it approximates the float model
    ref = tflite_jit.Interpreter(model_content=float_model)
    ref.allocate_tensors()
    ref.set_tensor(ref.get_input_details()[0]["index"], x[0])
    ref.invoke()
    want = ref.get_tensor(ref.get_output_details()[0]["index"])
    assert np.max(np.abs(got - want)) < 0.1 * max(1.0, float(np.max(np.abs(want))))


def test_layout_follows_the_converter():
    float_model = models.efficientnet_b0(input_size=32)
    q = load_bytes(quantize(float_model, samples(float_model, 2), inference_input_type=np.int8,
                            inference_output_type=np.int8))
    sg = q.subgraphs[0]
    for op in sg.ops:
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            x, w = sg.tensors[op.inputs[0]], sg.tensors[op.inputs[1]]
            assert w.type_name == "INT8" and np.all(w.quantization.zero_points == 0)
            assert np.abs(w.data.astype(int)).max() <= 127
            axis = 3 if op.name == "DEPTHWISE_CONV_2D" else 0
            assert w.quantization.scales.size == w.shape[axis] and w.quantization.quantized_dimension == axis
            if len(op.inputs) > 2 and op.inputs[2] >= 0:
                b = sg.tensors[op.inputs[2]]
                assert b.type_name == "INT32"
                np.testing.assert_allclose(b.quantization.scales, x.quantization.scales[0] * w.quantization.scales,
                                           rtol=1e-6)
        if op.name == "LOGISTIC":
            y = sg.tensors[op.outputs[0]]
            assert float(y.quantization.scales[0]) == 1 / 256 and int(y.quantization.zero_points[0]) == -128
        if op.name in ("MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "PAD"):
            a, b = sg.tensors[op.inputs[0]].quantization, sg.tensors[op.outputs[0]].quantization
            assert a.scales[0] == b.scales[0] and a.zero_points[0] == b.zero_points[0]


def test_affine_params_contain_zero():
    s, z = affine_params(0.5, 2.0, np.dtype(np.int8))
    assert z == -128 and s == pytest.approx(2.0 / 255)
    s, z = affine_params(-1.0, 1.0, np.dtype(np.int8))
    assert s == pytest.approx(2 / 255) and z in (-1, 0)
    s, z = affine_params(-3.0, 1.0, np.dtype(np.int16))
    assert z == 0 and s == pytest.approx(3 / 32767)


def _model_with_cumsum() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 8), np.float32)
    (y,) = g.apply("RELU", [x])
    axis = g.const("axis", np.array(1, np.int32))
    (z,) = g.apply("CUMSUM", [y, axis])
    (w,) = g.apply("RELU6", [z])
    g.output(w)
    return mb.build()


def test_op_without_integer_kernel_fails_or_stays_float():
    m = _model_with_cumsum()
    data = [[np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)]]
    with pytest.raises(ValueError, match="CUMSUM has no integer kernel"):
        quantize(m, data)
    q = quantize(m, data, allow_float=True)
    names = [op.name for op in load_bytes(q).subgraphs[0].ops]
    assert names == ["QUANTIZE", "RELU", "DEQUANTIZE", "CUMSUM", "QUANTIZE", "RELU6", "DEQUANTIZE"]
    x = data[0][0]
    ours = tflite_jit.Interpreter(model_content=q)
    ours.allocate_tensors()
    ours.set_tensor(ours.get_input_details()[0]["index"], x)
    ours.invoke()
    np.testing.assert_allclose(ours.get_tensor(ours.get_output_details()[0]["index"]), litert_run(q, [x])[0],
                               atol=1e-6)


def test_16x8_mode():
    mb = ModelBuilder()
    g = mb.subgraph()
    rng = np.random.default_rng(0)
    x = g.input("x", (1, 6, 6, 3), np.float32)
    w = g.const("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    b = g.const("b", rng.standard_normal(4).astype(np.float32))
    (y,) = g.apply("CONV_2D", [x, w, b], stride_h=1, stride_w=1, fused_activation_function=1)
    (z,) = g.apply("ADD", [y, y])
    g.output(z)
    m = mb.build()
    q = quantize(m, samples(m, 2), activations="int16", inference_input_type=np.int16,
                 inference_output_type=np.int16)
    sg = load_bytes(q).subgraphs[0]
    assert sg.tensors[sg.inputs[0]].type_name == "INT16"
    assert sg.tensors[sg.ops[0].inputs[2]].type_name == "INT64"
    xs = rng.integers(-30000, 30000, (1, 6, 6, 3)).astype(np.int16)
    tallies = compare_all_tensors(q, [xs])
    assert all(t.rate == 1.0 for t in tallies.values()), {k: t.rate for k, t in tallies.items()}


def test_16x8_prelu_alpha_is_int8():
    """LiteRT's int16 PRELU reads alpha as int8 (TF's 16x8 converter writes it so); an int16
    alpha would be read byte by byte. The quantizer gives 16x8 PRELU an int8 alpha."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 8, 4), np.float32)
    a = g.const("alpha", np.array([0.1, -0.2, 0.3, 0.05], np.float32))
    (y,) = g.apply("PRELU", [x, a])
    g.output(y)
    m = mb.build()
    q = quantize(m, samples(m, 4), activations="int16")
    sg = load_bytes(q).subgraphs[0]
    prelu = next(op for op in sg.ops if op.name == "PRELU")
    assert sg.tensors[prelu.inputs[1]].type_name == "INT8"
    xs = samples(m, 4)[0][0]  # a calibration sample: no clipping at the calibrated range
    tallies = compare_all_tensors(q, [xs])
    assert all(t.rate == 1.0 for t in tallies.values()), {k: t.rate for k, t in tallies.items()}
    np.testing.assert_allclose(litert_run(q, [xs])[0], litert_run(m, [xs])[0], atol=0.02)


def test_bad_arguments():
    m = models.tiny_convnet()
    with pytest.raises(ValueError, match="activations"):
        quantize(m, samples(m, 1), activations="int4")
    with pytest.raises(ValueError, match="inference_input_type"):
        quantize(m, samples(m, 1), inference_input_type=np.uint8)
    with pytest.raises(ValueError, match="no samples"):
        quantize(m, [])
    with pytest.raises(ValueError, match="arrays but the model has"):
        quantize(m, [[np.zeros((1, 64, 64, 3), np.float32)] * 2])
