"""On-device training: TF-converted train/infer/save/restore models with Flex ops, run natively.

Fixtures (tests/data/training/, made by tests/data/make_training_models.py with TensorFlow):
the models, TensorFlow's own loss per `train` step on seeded batches, `infer`'s output after
training, the trained weights, a checkpoint written by TF's Save op, and every Flex op we
implement run by TensorFlow on seeded inputs. LiteRT's pip package has no Flex delegate, so
TensorFlow is the reference here.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

pytest.importorskip("google.protobuf", reason="Flex ops need the `flex` extra (protobuf)")
pytest.importorskip("google_crc32c", reason="TF checkpoints need the `flex` extra (google-crc32c)")

from flatbuffers import flexbuffers  # noqa: E402

import tflite_jit  # noqa: E402
from tflite_jit.format import sstable, tf_checkpoint, tf_proto  # noqa: E402
from tflite_jit.format.builder import ModelBuilder  # noqa: E402

DATA = pathlib.Path(__file__).parent / "data" / "training"
MODELS = ["conv_train", "bn_train"]


def _fixture(name: str) -> dict[str, np.ndarray]:
    return dict(np.load(DATA / f"{name}.npz"))


def _weights(z: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {str(n): z[f"w{i}"] for i, n in enumerate(z["weight_names"])}


def _path(p: pathlib.Path | str) -> np.ndarray:
    return np.array(str(p).encode())


def _trained(name: str) -> tuple[tflite_jit.Interpreter, list[float]]:
    z = _fixture(name)
    it = tflite_jit.Interpreter(model_path=str(DATA / f"{name}.tflite"))
    train = it.get_signature_runner("train")
    losses = [float(train(x=z["xs"][i], y=z["ys"][i])["loss"]) for i in range(len(z["losses"]))]
    return it, losses


@pytest.fixture(scope="module", params=MODELS)
def trained(request):
    it, losses = _trained(request.param)
    return request.param, it, losses


FLEX_OPS = {"conv_train": {"FlexReluGrad", "FlexConv2DBackpropFilter", "FlexSave", "FlexRestore"},
            "bn_train": {"FlexReluGrad", "FlexRelu6Grad", "FlexConv2DBackpropFilter",
                         "FlexDepthwiseConv2dNativeBackpropFilter", "FlexDepthwiseConv2dNativeBackpropInput",
                         "FlexFusedBatchNormV3", "FlexFusedBatchNormGradV3", "FlexSave", "FlexRestore"}}


def test_signatures_and_flex_ops_present(trained):
    """The fixtures really exercise the Flex ops the converter leaves to TensorFlow."""
    from tflite_jit.format import reader

    name, it, _ = trained
    assert set(it.get_signature_list()) == {"train", "infer", "save", "restore"}
    model = reader.load_file(str(DATA / f"{name}.tflite"))
    flex = {op.name for sg in model.subgraphs for op in sg.ops if op.name.startswith("Flex")}
    assert flex == FLEX_OPS[name]


def test_train_matches_tensorflow_loss_sequence(trained):
    name, _, losses = trained
    want = _fixture(name)["losses"]
    np.testing.assert_allclose(losses, want, rtol=1e-4)
    assert losses[-1] < losses[0] or name == "bn_train"  # SGD on a fixed problem makes progress


def test_infer_after_training_matches_tensorflow(trained):
    name, it, _ = trained
    z = _fixture(name)
    out = it.get_signature_runner("infer")(x=z["probe"])
    np.testing.assert_allclose(out["output"], z["probe_output"], atol=1e-5)
    np.testing.assert_allclose(out["logits"], z["probe_logits"], rtol=1e-4, atol=1e-5)


def test_save_restore_round_trip_is_bit_identical(trained, tmp_path):
    name, it, _ = trained
    z = _fixture(name)
    ckpt = tmp_path / "weights.ckpt"
    out = it.get_signature_runner("save")(checkpoint_path=_path(ckpt))
    assert out["checkpoint_path"].reshape(-1)[0] == str(ckpt).encode()
    saved = tf_checkpoint.load(str(ckpt))
    assert set(saved) == set(_weights(z))
    for k, v in _weights(z).items():  # what we trained is what TF trained, to float noise
        np.testing.assert_allclose(saved[k], v, rtol=1e-4, atol=1e-6)
    # the file is exactly what TF's Save writes for these tensors
    assert ckpt.read_bytes() == tf_checkpoint.encode(saved)

    fresh = tflite_jit.Interpreter(model_path=str(DATA / f"{name}.tflite"))
    before = fresh.get_signature_runner("infer")(x=z["probe"])["output"]
    restored = fresh.get_signature_runner("restore")(checkpoint_path=_path(ckpt))
    for k, v in restored.items():
        np.testing.assert_array_equal(v, saved[k])
    after = fresh.get_signature_runner("infer")(x=z["probe"])["output"]
    trained_out = it.get_signature_runner("infer")(x=z["probe"])["output"]
    np.testing.assert_array_equal(after, trained_out)
    assert not np.array_equal(before, after)


@pytest.mark.parametrize("name", MODELS)
def test_restores_a_checkpoint_written_by_tensorflow(name):
    z = _fixture(name)
    it = tflite_jit.Interpreter(model_path=str(DATA / f"{name}.tflite"))
    it.get_signature_runner("restore")(checkpoint_path=_path(DATA / f"{name}.ckpt"))
    out = it.get_signature_runner("infer")(x=z["probe"])
    np.testing.assert_allclose(out["output"], z["probe_output"], atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_checkpoint_writer_is_byte_identical_to_tensorflows(name):
    z = _fixture(name)
    assert tf_checkpoint.encode(_weights(z)) == (DATA / f"{name}.ckpt").read_bytes()
    loaded = tf_checkpoint.load(str(DATA / f"{name}.ckpt"))
    for k, v in _weights(z).items():
        np.testing.assert_array_equal(loaded[k], v)


def test_checkpoint_dtypes_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"f32": rng.standard_normal((2, 3)).astype(np.float32), "f64": rng.standard_normal(4),
               "i32": np.array([[1, -2], [3, 2**31 - 1]], np.int32), "i64": np.array([-(2**40), 5]),
               "i8": np.array([-128, 127], np.int8), "u8": np.array([0, 255], np.uint8),
               "b": np.array([True, False, True]), "h": np.array([1.5, -2.25], np.float16),
               "scalar": np.float32(3.5).reshape(()), "empty": np.zeros((0, 3), np.float32),
               "s": np.array([b"ab", b"\x00\xff"], dtype=object), "a/b:0": np.ones((1, 1, 1), np.float32)}
    tf_checkpoint.save(tmp_path / "c", tensors)
    back = tf_checkpoint.load(str(tmp_path / "c"))
    assert set(back) == set(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape, k
        np.testing.assert_array_equal(back[k], v)


def test_damaged_checkpoints_raise_valueerror(tmp_path):
    good = tf_checkpoint.encode({"w": np.arange(10, dtype=np.float32)})
    for bad, match in [(good[:30], "too short"), (good[:-1] + b"\x00", "magic"),
                       (good[:5] + bytes([good[5] ^ 0xFF]) + good[6:], "checksum"),
                       (b"\x00" * 100, "magic")]:
        with pytest.raises(ValueError, match=match):
            tf_checkpoint.decode(bad)
    with pytest.raises(FileNotFoundError, match="Failed to find any matching files"):
        tf_checkpoint.load(str(tmp_path / "nothing*"))


def test_sstable_many_entries_span_blocks():
    entries = [(f"k{i:06d}".encode(), bytes(300) + i.to_bytes(4, "little")) for i in range(2000)]
    table = sstable.write_table(entries)
    assert list(sstable.read_table(table)) == entries
    with pytest.raises(ValueError, match="must increase"):
        sstable.write_table([(b"b", b""), (b"a", b"")])


def test_restore_errors_name_the_op_and_tensor(tmp_path):
    name = "conv_train"
    it = tflite_jit.Interpreter(model_path=str(DATA / f"{name}.tflite"))
    restore = it.get_signature_runner("restore")
    with pytest.raises(RuntimeError, match="FlexRestore.*Failed to find any matching files"):
        restore(checkpoint_path=_path(tmp_path / "missing.ckpt"))
    tf_checkpoint.save(tmp_path / "other.ckpt", {"unrelated": np.zeros(2, np.float32)})
    with pytest.raises(RuntimeError, match='FlexRestore.*Tensor name ".*" not found'):
        restore(checkpoint_path=_path(tmp_path / "other.ckpt"))
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint" * 8)
    with pytest.raises(RuntimeError, match="FlexRestore.*bad magic"):
        restore(checkpoint_path=_path(tmp_path / "junk.ckpt"))


def test_reset_all_variables_keeps_resource_variables_as_litert():
    """LiteRT's reset_all_variables() resets variable tensors, not resource variables: a trained
    model stays trained (checked against LiteRT on a builtin-only train/infer model)."""
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    path = str(pathlib.Path(__file__).parent / "data" / "tf_trainable.tflite")
    results = []
    for cls in (LiteRT, tflite_jit.Interpreter):
        it = cls(model_path=path)
        train, infer = it.get_signature_runner("train"), it.get_signature_runner("infer")
        tin = {k: np.full(v["shape"], 0.5, v["dtype"]) for k, v in train.get_input_details().items()}
        iin = {k: np.full(v["shape"], 0.25, v["dtype"]) for k, v in infer.get_input_details().items()}
        first = infer(**iin)
        for _ in range(3):
            train(**tin)
        trained = infer(**iin)
        it.reset_all_variables()
        results.append((first, trained, infer(**iin)))
    for (a0, a1, a2), (b0, b1, b2) in zip([results[0]], [results[1]]):
        for x, y in ((a0, b0), (a1, b1), (a2, b2)):
            for k in x:
                np.testing.assert_allclose(y[k], x[k], rtol=1e-5, atol=1e-6)
        for k in a1:
            np.testing.assert_array_equal(b2[k], b1[k])


# ---- each Flex op against TensorFlow ----------------------------------------------------------

def _flex_model(op: str, attrs: dict, inputs: list[np.ndarray], outputs: list[np.ndarray],
                const: set[int]) -> bytes:
    m = tf_proto.messages()
    node = m["NodeDef"](op=op)
    for k, v in attrs.items():
        av = node.attr[k]
        if isinstance(v, bool):
            av.b = v
        elif isinstance(v, int):
            av.i = v
        elif isinstance(v, float):
            av.f = v
        elif isinstance(v, str):
            av.s = v.encode()
        else:
            av.list.i.extend(v)
    node.attr["T"].type = 1
    fbb = flexbuffers.Builder()
    with fbb.Vector():
        fbb.String(op)
        fbb.Blob(node.SerializeToString())
    mb = ModelBuilder()
    g = mb.subgraph()
    ids = [g.const(f"in{i}", v) if i in const else g.input(f"in{i}", v.shape, v.dtype)
           for i, v in enumerate(inputs)]
    outs = [g.tensor(f"out{k}", v.shape, v.dtype) for k, v in enumerate(outputs)]
    g.op("Flex" + op, ids, outs, custom=True, custom_options=bytes(fbb.Finish()))
    for o in outs:
        g.output(o)
    return mb.build()


def _cases() -> list[tuple[int, dict]]:
    z = np.load(DATA / "flex_ops.npz")
    return list(enumerate(json.loads(str(z["meta"]))))


@pytest.mark.parametrize("ci,case", _cases(), ids=lambda c: c["op"] if isinstance(c, dict) else str(c))
def test_flex_op_matches_tensorflow(ci, case):
    z = np.load(DATA / "flex_ops.npz")
    ins = [z[f"c{ci}_in{j}"] for j in range(case["inputs"])]
    want = [z[f"c{ci}_out{k}"] for k in range(case["outputs"])]
    op = case["op"]
    const = {"Conv2DBackpropFilter": {1}, "DepthwiseConv2dNativeBackpropFilter": {1},
             "Conv2DBackpropInput": {0}, "DepthwiseConv2dNativeBackpropInput": {0},
             "BroadcastGradientArgs": {0, 1}}.get(op, set())
    it = tflite_jit.Interpreter(model_content=_flex_model(op, case["attrs"], ins, want, const))
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], ins[int(d["name"][2:])])
    it.invoke()
    got = [it.get_tensor(d["index"]) for d in it.get_output_details()]
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        if w.dtype.kind == "f":
            scale = max(1.0, float(np.abs(w).max(initial=0)))
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=2e-6 * scale)
        else:
            np.testing.assert_array_equal(g, w)


def test_unimplemented_flex_op_fails_with_litert_message():
    model = _flex_model("MatrixExponential", {}, [np.eye(2, dtype=np.float32)], [np.eye(2, dtype=np.float32)],
                        set())
    it = tflite_jit.Interpreter(model_content=model)
    with pytest.raises(RuntimeError, match=r"(?s)Select TensorFlow op\(s\).*Node number 0 \(FlexMatrixExponential\)"):
        it.allocate_tensors()


def test_damaged_node_def_names_the_op():
    mb = ModelBuilder()
    g = mb.subgraph()
    a, b = g.input("a", (2,), np.float32), g.input("b", (2,), np.float32)
    out = g.tensor("out", (2,), np.float32)
    fbb = flexbuffers.Builder()
    with fbb.Vector():
        fbb.String("ReluGrad")
        fbb.Blob(b"\xff\xff\xff\xff")
    g.op("FlexReluGrad", [a, b], [out], custom=True, custom_options=bytes(fbb.Finish()))
    g.output(out)
    it = tflite_jit.Interpreter(model_content=mb.build())
    with pytest.raises(RuntimeError, match="FlexReluGrad.*NodeDef"):
        it.allocate_tensors()


def test_example_trains_saves_and_restores(capsys):
    import runpy

    example = pathlib.Path(__file__).parents[1] / "examples" / "on_device_training.py"
    mod = runpy.run_path(str(example))
    mod["main"](str(DATA / "conv_train.tflite"))
    out = capsys.readouterr().out
    losses = [float(line.split()[-1]) for line in out.splitlines() if line.startswith("epoch")]
    assert len(losses) == 8 and losses[-1] < 0.5 * losses[0]
    assert "bit for bit: True" in out
