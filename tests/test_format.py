"""format/: the reader is zero-copy and reads everything the schema has; the writer's files load
in LiteRT and round-trip through our reader unchanged; damaged files are clean ValueErrors."""

from __future__ import annotations

import mmap

import numpy as np
import pytest
from flatbuffers import flexbuffers
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import litert_interpreter
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.reader import load_bytes, load_file
from tflite_jit.format.writer import write_model
from tflite_jit.ir.model import TENSOR_TYPE_CODES, Quantization, Sparsity


def _conv_model(external: bool = False, metadata: bool = True) -> tuple[bytes, ModelBuilder]:
    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    g = mb.subgraph("main")
    x = g.input("x", (1, 5, 5, 3), np.float32, shape_signature=(-1, 5, 5, 3))
    w = g.const("w", rng.standard_normal((4, 3, 3, 3), dtype=np.float32))
    b = g.const("b", rng.standard_normal(4, dtype=np.float32))
    y = g.tensor("y", (1, 5, 5, 4), np.float32, shape_signature=(-1, 5, 5, 4))
    g.op("CONV_2D", [x, w, b], [y], padding="SAME", stride_w=1, stride_h=1,
         fused_activation_function="RELU6")
    g.output(y)
    mb.signature("serving_default", {"x": x}, {"y": y})
    if metadata:
        mb.add_metadata("min_runtime_version", b"1.14.0\0")
        mb.add_metadata("extra", bytes(range(40)))
    return mb.build(external_buffers=external), mb


@pytest.mark.parametrize("external", [False, True])
def test_round_trip_and_litert_loads(external: bool) -> None:
    data, mb = _conv_model(external)
    m = load_bytes(data)
    assert m.subgraphs == mb.model().subgraphs
    assert m.metadata == {"min_runtime_version": b"1.14.0\0", "extra": bytes(range(40))}
    assert [(s.key, s.inputs, s.outputs) for s in m.signatures] == [("serving_default", {"x": 0}, {"y": 3})]
    assert m.subgraphs[0].name == "main"
    # writing what we read gives the same bytes again (the writer is deterministic)
    assert write_model(m, external_buffers=external) == data
    it = litert_interpreter(data)
    it.allocate_tensors()
    x = np.ones((1, 5, 5, 3), np.float32)
    it.set_tensor(0, x)
    it.invoke()
    assert it.get_tensor(3).shape == (1, 5, 5, 4)


def test_external_buffers_live_past_the_flatbuffer() -> None:
    data, _ = _conv_model(external=True)
    m = load_bytes(data)
    w = m.subgraphs[0].tensors[1].data
    from tflite_jit.format.flat import FlatReader

    r = FlatReader(data)
    raw_buf = r.read_table(r.root(), "Model", "Model")["buffers"][1]
    assert "data" not in raw_buf and raw_buf["offset"] % 16 == 0 and raw_buf["size"] == w.nbytes
    # the weights are a view into the file at that offset, past the flatbuffer proper
    off = w.__array_interface__["data"][0] - np.frombuffer(data, np.uint8).__array_interface__["data"][0]
    assert off == raw_buf["offset"]


def test_constants_are_read_only_views_of_the_mapped_file(tmp_path) -> None:
    data, _ = _conv_model()
    p = tmp_path / "m.tflite"
    p.write_bytes(data)
    m = load_file(p)
    assert isinstance(m.source, mmap.mmap)
    w = m.subgraphs[0].tensors[1].data
    assert not w.flags.writeable and not w.flags.owndata
    with pytest.raises(ValueError):
        w[0, 0, 0, 0] = 1.0
    np.testing.assert_array_equal(w, load_bytes(data).subgraphs[0].tensors[1].data)


_TYPES = ["FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "BOOL", "INT16", "INT8", "FLOAT64",
          "COMPLEX64", "COMPLEX128", "UINT64", "UINT32", "UINT16"]


def test_every_numeric_tensor_type_round_trips() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    for name in _TYPES:
        from tflite_jit.ir.model import numpy_type

        dt = np.dtype(numpy_type(TENSOR_TYPE_CODES[name]))
        g.const(name, (np.arange(6) % 2 if dt == np.bool_ else np.arange(6)).astype(dt).reshape(2, 3))
    x = g.input("x", (2,), np.float32)
    g.output(x)
    m = load_bytes(mb.build())
    for t, name in zip(m.subgraphs[0].tensors, _TYPES):
        assert t.type_name == name
        assert t.data.dtype == np.dtype(t.dtype) and t.data.shape == (2, 3)


def test_string_and_packed_types_keep_raw_bytes() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    raw = np.frombuffer(b"\x01\x00\x00\x00\x0c\x00\x00\x00\x0d\x00\x00\x00a", np.uint8)
    g.tensor("s", (1,), TENSOR_TYPE_CODES["STRING"], data=raw)
    g.tensor("i4", (4,), TENSOR_TYPE_CODES["INT4"], data=np.array([0x21, 0x43], np.uint8))
    x = g.input("x", (1,), np.float32)
    g.output(x)
    m = load_bytes(mb.build())
    s, i4 = m.subgraphs[0].tensors[:2]
    # string constants are decoded to object arrays of bytes (shape inference needs their shape)
    from tflite_jit.format.writer import encode_strings

    assert s.type_name == "STRING" and s.data.dtype == object and s.data.tolist() == [b"a"]
    assert encode_strings(s.data) == raw.tobytes()
    assert i4.type_name == "INT4" and i4.data.tobytes() == b"\x21\x43"


def test_per_axis_quantization_and_sparsity_round_trip() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    q = Quantization(scales=np.array([0.1, 0.2, 0.3], np.float32), zero_points=np.zeros(3, np.int64),
                     quantized_dimension=3, min=np.array([-1.0], np.float32), max=np.array([1.0], np.float32))
    g.const("w", np.ones((2, 1, 1, 3), np.int8), quantization=q)
    sp = Sparsity(traversal_order=(0, 1), block_map=(),
                  dim_metadata=[{"format": "DENSE", "dense_size": 2, "array_segments": None, "array_indices": None},
                                {"format": "SPARSE_CSR", "dense_size": 0,
                                 "array_segments": np.array([0, 1, 2], np.int32),
                                 "array_indices": np.array([1, 0], np.int32)}])
    g.tensor("sp", (2, 2), np.float32, data=np.array([1.0, 2.0], np.float32), sparsity=sp)
    x = g.input("x", (1,), np.float32)
    g.output(x)
    m = load_bytes(mb.build())
    w, s = m.subgraphs[0].tensors[:2]
    assert w.quantization == q
    assert s.sparsity == sp
    assert s.data.tobytes() == np.array([1.0, 2.0], np.float32).tobytes()


def test_custom_options_decode_as_flexbuffers_and_large_opcodes() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4), np.float32)
    y = g.tensor("y", (1, 4), np.float32)
    opts = {"max_detections": 10, "nms_iou_threshold": 0.5, "use_regular_nms": False}
    g.op("MyCustomOp", [x], [y], custom=True, custom_options=bytes(flexbuffers.Dumps(opts)))
    z = g.tensor("z", (1, 4), np.float32)
    g.op("GELU", [y], [z], approximate=True)  # builtin code > 127: deprecated_builtin_code = 127
    g.output(z)
    m = load_bytes(mb.build())
    op, gelu = m.subgraphs[0].ops
    assert op.is_custom and op.name == "MyCustomOp"
    assert op.options["max_detections"] == 10 and op.options["use_regular_nms"] is False
    assert abs(op.options["nms_iou_threshold"] - 0.5) < 1e-6
    assert gelu.name == "GELU" and gelu.builtin_code == 150 and gelu.options["approximate"] is True


def test_undecodable_custom_options_stay_raw() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1,), np.float32)
    y = g.tensor("y", (1,), np.float32)
    g.op("Opaque", [x], [y], custom=True, custom_options=b"\xff\x00\x13")
    g.output(y)
    op = load_bytes(mb.build()).subgraphs[0].ops[0]
    assert op.custom_options == b"\xff\x00\x13"


def test_multiple_subgraphs_and_signatures() -> None:
    mb = ModelBuilder()
    for k in range(3):
        g = mb.subgraph(f"sg{k}")
        x = g.input("x", (2,), np.float32)
        y = g.tensor("y", (2,), np.float32)
        g.op("RELU", [x], [y])
        g.output(y)
        mb.signature(f"sig{k}", {"x": x}, {"y": y}, subgraph_index=k)
    m = load_bytes(mb.build())
    assert [s.name for s in m.subgraphs] == ["sg0", "sg1", "sg2"]
    assert [s.subgraph_index for s in m.signatures] == [0, 1, 2]
    assert litert_interpreter(mb.build()).get_signature_list() == {
        f"sig{k}": {"inputs": ["x"], "outputs": ["y"]} for k in range(3)}


# ---- damaged files: ValueError, never a crash or a hang ---------------------------------------

def _all_errors_are_value_errors(data: bytes) -> None:
    try:
        load_bytes(data)
    except ValueError:
        pass


def test_garbage_and_wrong_identifier() -> None:
    for data in (b"", b"\x00" * 3, b"\x00" * 8, b"hello world, not a model", b"\x08\x00\x00\x00TFL2" + b"\0" * 40):
        with pytest.raises(ValueError, match="not a valid Flatbuffer"):
            load_bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_truncations_and_bit_flips_never_crash(data) -> None:
    base, _ = _conv_model()
    kind = data.draw(st.sampled_from(["truncate", "flip", "overwrite"]))
    b = bytearray(base)
    if kind == "truncate":
        b = b[: data.draw(st.integers(0, len(b) - 1))]
    elif kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(b) - 1))
            b[i] ^= 1 << data.draw(st.integers(0, 7))
    else:
        i = data.draw(st.integers(0, len(b) - 4))
        b[i:i + 4] = data.draw(st.binary(min_size=4, max_size=4))
    _all_errors_are_value_errors(bytes(b))


def test_zero_element_constants_without_data_run_as_litert() -> None:
    """TF's converter emits zero-element constants (empty shape or axis lists) whose buffer
    holds no bytes; LiteRT runs such models, so they are constants, not unproduced tensors."""
    import tflite_jit

    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (3,), np.float32)
    empty = g.const("empty", np.zeros((0,), np.float32))  # a buffer of zero bytes: reads as "no data"
    out = g.tensor("out", (3,), np.float32)
    g.op("CONCATENATION", [x, empty], [out], axis=0)
    g.output(out)
    model = load_bytes(mb.build())
    t = model.subgraphs[0].tensors[empty]
    assert t.buffer > 0 and t.is_constant and t.data.shape == (0,)
    data = mb.build()
    value = np.array([1.0, -2.0, 3.5], np.float32)
    results = []
    for it in (litert_interpreter(data), tflite_jit.Interpreter(model_content=data)):
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], value)
        it.invoke()
        results.append(it.get_tensor(it.get_output_details()[0]["index"]))
    np.testing.assert_array_equal(results[1], results[0])
