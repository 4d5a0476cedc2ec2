"""tflite_jit.batch.predict and pickled interpreters (issue #17): batched results are bitwise
those of invoking example by example; bad inputs fail before any work."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import tflite_jit
from tflite_jit import batch
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.tools.models import tiny_convnet

N = 10  # examples: with batch 3 and 7 the last batch is ragged


def float_model(signature: bool = False) -> bytes:
    """x (-1,4,4,3) -> CONV_2D+RELU6 -> y; y + b -> s: two inputs, two outputs, batch resizable."""
    rng = np.random.default_rng(1)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4, 4, 3), np.float32, shape_signature=(-1, 4, 4, 3))
    b = g.input("b", (1, 4, 4, 8), np.float32, shape_signature=(-1, 4, 4, 8))
    w = g.const("w", rng.standard_normal((8, 3, 3, 3)).astype(np.float32))
    bias = g.const("bias", rng.standard_normal(8).astype(np.float32))
    (y,) = g.apply("CONV_2D", [x, w, bias], padding="SAME", stride_w=1, stride_h=1,
                   fused_activation_function="RELU6", out_name="y")
    (s,) = g.apply("ADD", [y, b], out_name="s")
    g.output(y, s)
    if signature:
        mb.signature("serve", {"image": x, "offset": b}, {"features": y, "sum": s})
    return mb.build()


def elementwise_model(signature: bool = False) -> bytes:
    """x (-1,4,4,3) -> TANH(x * c) -> y; y + b -> s: float ops whose rounding cannot depend on the
    batch (the reference CONV_2D's can: test_reference_conv_is_batch_invariant)."""
    mb = ModelBuilder()
    elementwise_graph(mb, 0 if signature else None)
    return mb.build()


def elementwise_graph(mb: ModelBuilder, signature_subgraph: int | None) -> None:
    g = mb.subgraph()
    x = g.input("x", (1, 4, 4, 3), np.float32, shape_signature=(-1, 4, 4, 3))
    b = g.input("b", (1, 4, 4, 3), np.float32, shape_signature=(-1, 4, 4, 3))
    c = g.const("c", np.random.default_rng(6).standard_normal((4, 4, 3)).astype(np.float32))
    (t,) = g.apply("MUL", [x, c])
    (y,) = g.apply("TANH", [t], out_name="y")
    (s,) = g.apply("ADD", [y, b], out_name="s")
    g.output(y, s)
    if signature_subgraph is not None:
        mb.signature("serve", {"image": x, "offset": b}, {"features": y, "sum": s},
                     subgraph_index=signature_subgraph)


def elementwise_feeds(n: int = N) -> dict[str, np.ndarray]:
    feeds = float_feeds(n)
    return {"x": feeds["x"], "b": feeds["b"][..., :3]}


def int8_model() -> bytes:
    """x int8 (-1,5,5,3) -> quantized CONV_2D (per-channel weights, int32 bias) -> y int8."""
    rng = np.random.default_rng(2)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 5, 5, 3), np.int8, shape_signature=(-1, 5, 5, 3), scale=0.05, zero_point=-3)
    sw = rng.uniform(0.002, 0.02, 4).astype(np.float32)
    w = g.const("w", rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8), scale=sw,
                zero_point=np.zeros(4, np.int64), quantized_dimension=0)
    bias = g.const("bias", rng.integers(-500, 500, 4).astype(np.int32), scale=0.05 * sw,
                   zero_point=np.zeros(4, np.int64))
    y = g.tensor("y", (1, 5, 5, 4), np.int8, shape_signature=(-1, 5, 5, 4), scale=0.1, zero_point=2)
    g.op("CONV_2D", [x, w, bias], [y], padding="SAME", stride_w=1, stride_h=1)
    g.output(y)
    return mb.build()


def one_by_one(model: bytes, feeds: dict[str, np.ndarray], backend: str = "reference") -> list[np.ndarray]:
    """The oracle: Interpreter.invoke per example at batch 1."""
    it = tflite_jit.Interpreter(model_content=model, backend=backend)
    it.allocate_tensors()
    ins = {d["name"]: d["index"] for d in it.get_input_details()}
    outs = []
    for i in range(len(next(iter(feeds.values())))):
        for name, arr in feeds.items():
            it.set_tensor(ins[name], arr[i:i + 1])
        it.invoke()
        outs.append([it.get_tensor(d["index"]) for d in it.get_output_details()])
    return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]


def float_feeds(n: int = N) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {"x": rng.standard_normal((n, 4, 4, 3)).astype(np.float32),
            "b": rng.standard_normal((n, 4, 4, 8)).astype(np.float32)}


def int8_feeds(n: int = N) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(4).integers(-128, 128, (n, 5, 5, 3)).astype(np.int8)}


def assert_identical(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert np.array_equal(g, w)


CASES = {"float": (float_model, float_feeds, "numba"),
         "float-elementwise": (elementwise_model, elementwise_feeds, "reference"),
         "int8": (int8_model, int8_feeds, "reference"),
         "int8-numba": (int8_model, int8_feeds, "numba")}


@pytest.mark.parametrize("batch_size", [1, 3, 7, N])
@pytest.mark.parametrize("kind", list(CASES))
def test_predict_matches_invoke_bitwise(kind, batch_size):
    make, feeds_of, backend = CASES[kind]
    model, feeds = make(), feeds_of()
    want = one_by_one(model, feeds, backend)
    got = batch.predict(model, feeds, batch_size=batch_size, backend=backend)
    assert_identical(got, want)


def test_reference_conv_is_batch_invariant():
    """The reference CONV_2D runs one GEMM per image (BLAS rounds a row differently with the
    matrix's height), so a batch gives each image its batch-1 result to the bit."""
    model, feeds = float_model(), float_feeds()
    got = batch.predict(model, feeds, batch_size=3, backend="reference")
    assert_identical(got, one_by_one(model, feeds))


def test_reference_fully_connected_is_batch_invariant():
    """The same for FULLY_CONNECTED: one GEMM per batch item (a single (N, depth) GEMM differs
    from N row products in the last bits)."""
    rng = np.random.default_rng(3)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 64), np.float32)
    w = g.const("w", rng.standard_normal((128, 64)).astype(np.float32))
    b = g.const("b", rng.standard_normal(128).astype(np.float32))
    g.output(g.apply("FULLY_CONNECTED", [x, w, b])[0])
    model = mb.build()
    feeds = {"x": rng.standard_normal((N, 64)).astype(np.float32)}
    got = batch.predict(model, feeds, batch_size=7, backend="reference")
    assert_identical(got, one_by_one(model, feeds))


@pytest.mark.parametrize("signature", [False, True])
def test_one_plan_for_all_batches_ragged_last_included(monkeypatch, signature):
    from tflite_jit.runtime.executable import Executable

    plans = []
    prepare = Executable.prepare
    monkeypatch.setattr(Executable, "prepare", lambda self, shapes: (plans.append(shapes), prepare(self, shapes))[1])
    feeds = elementwise_feeds()
    inputs = {"image": feeds["x"], "offset": feeds["b"]} if signature else feeds
    batch.predict(elementwise_model(signature), inputs, batch_size=4, backend="reference",
                  signature="serve" if signature else None)
    assert len(plans) == 1 and {s[0] for s in plans[0].values()} == {4}


@pytest.mark.parametrize("signature", [False, True])
def test_predictor_plans_once_for_many_calls(monkeypatch, signature):
    """batch.Predictor (what a Ray actor holds): one plan at the first call, none after, whatever
    the calls' sizes (padded or split); each call's results bitwise those of invoke()."""
    from tflite_jit.runtime.executable import Executable

    plans = []
    prepare = Executable.prepare
    monkeypatch.setattr(Executable, "prepare", lambda self, shapes: (plans.append(shapes), prepare(self, shapes))[1])
    feeds = elementwise_feeds()
    want = one_by_one(elementwise_model(), feeds)
    inputs = {"image": feeds["x"], "offset": feeds["b"]} if signature else feeds
    plans.clear()  # one_by_one's own
    run = batch.Predictor(elementwise_model(signature), batch_size=4, backend="reference",
                          signature="serve" if signature else None)
    assert [s.name for s in run.specs] == (["image", "offset"] if signature else ["x", "b"])
    for lo, hi in ((0, 4), (4, 5), (5, N)):  # a full batch, a short one, one longer than a batch
        got = run({k: v[lo:hi] for k, v in inputs.items()})
        got = [got["features"], got["sum"]] if signature else got
        assert_identical(got, [w[lo:hi] for w in want])
    assert len(plans) == 1 and {s[0] for s in plans[0].values()} == {4}


def test_predict_input_forms_agree():
    model, feeds = elementwise_model(), elementwise_feeds()
    want = one_by_one(model, feeds)
    examples = [{k: v[i] for k, v in feeds.items()} for i in range(N)]
    assert_identical(batch.predict(model, examples, batch_size=3, backend="reference"), want)
    assert_identical(batch.predict(model, iter(examples), batch_size=3, backend="reference"), want)
    tuples = ((feeds["x"][i], feeds["b"][i]) for i in range(N))
    assert_identical(batch.predict(model, tuples, batch_size=4, backend="reference"), want)
    model8, feeds8 = int8_model(), int8_feeds()
    want8 = one_by_one(model8, feeds8)
    assert_identical(batch.predict(model8, feeds8["x"], batch_size=3, backend="reference"), want8)
    assert_identical(batch.predict(model8, list(feeds8["x"]), batch_size=3, backend="reference"), want8)


def test_predict_path_and_interpreter(tmp_path):
    model, feeds = int8_model(), int8_feeds()
    want = one_by_one(model, feeds)
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    assert_identical(batch.predict(str(path), feeds, batch_size=3, backend="reference"), want)
    it = tflite_jit.Interpreter(model_content=model, backend="reference")
    assert_identical(batch.predict(it, feeds, batch_size=7), want)
    assert it.get_input_details()[0]["shape"].tolist() == [7, 5, 5, 3]  # left allocated at the batch
    assert_identical(batch.predict(it, feeds, batch_size=7), want)
    with pytest.raises(ValueError, match="num_threads"):
        batch.predict(it, feeds, num_threads=2)


def test_predict_signature_returns_dict_by_output_name():
    feeds = elementwise_feeds()
    want = one_by_one(elementwise_model(), feeds)
    got = batch.predict(elementwise_model(signature=True), {"image": feeds["x"], "offset": feeds["b"]},
                        signature="serve", batch_size=3, backend="reference")
    assert list(got) == ["features", "sum"]
    assert_identical([got["features"], got["sum"]], want)


def test_signature_on_another_subgraph_runs_through_its_runner(monkeypatch):
    """Subgraph 0 is unrelated; the signature's subgraph 1 is elementwise_model's graph. The
    runner allocates only when an input shape changes (LiteRT's AllocateTensors is a no-op
    otherwise): one plan for the full batches, one for the ragged last (padded to 3 again, so
    still one), however many calls."""
    from tflite_jit.runtime.executable import Executable

    plans = []
    prepare = Executable.prepare
    monkeypatch.setattr(Executable, "prepare", lambda self, shapes: (plans.append(shapes), prepare(self, shapes))[1])
    mb = ModelBuilder()
    g0 = mb.subgraph()
    z = g0.input("z", (2,), np.float32)
    (zz,) = g0.apply("NEG", [z])
    g0.output(zz)
    elementwise_graph(mb, 1)
    feeds = elementwise_feeds()
    want = one_by_one(elementwise_model(), feeds)
    got = batch.predict(mb.build(), {"image": feeds["x"], "offset": feeds["b"]}, signature="serve",
                        batch_size=3, backend="reference")
    assert_identical([got["features"], got["sum"]], want)
    assert len([p for p in plans if {s[0] for s in p.values()} == {3}]) == 1


def test_model_that_refuses_the_resize_runs_example_by_example():
    """tiny_convnet RESHAPEs to a constant (1, 64): batch 3 cannot plan, predict falls back."""
    model = tiny_convnet()
    feeds = {"serving_default_input:0": np.random.default_rng(5).standard_normal((4, 64, 64, 3)).astype(np.float32)}
    want = one_by_one(model, feeds)
    it = tflite_jit.Interpreter(model_content=model, backend="reference")
    assert_identical(batch.predict(it, feeds, batch_size=3), want)
    assert it.get_input_details()[0]["shape"].tolist() == [1, 64, 64, 3]


@pytest.mark.parametrize("bad, match", [
    ({"x": np.zeros((N, 4, 4, 3), np.float64)}, r"input 'x'.*expected float32 with per-example shape \(4, 4, 3\).*float64"),
    ({"x": np.zeros((N, 4, 4, 2), np.float32)}, r"input 'x'.*per-example shape \(4, 4, 3\).*\(10, 4, 4, 2\)"),
    ({"x": np.zeros((N, 4, 4, 3), np.float32)}, r"input 'b'.*missing.*float32 with per-example shape \(4, 4, 8\)"),
    ({"x": np.zeros((N, 4, 4, 3), np.float32), "b": np.zeros((N - 1, 4, 4, 8), np.float32)},
     "different numbers of examples"),
])
def test_bad_inputs_fail_before_any_work(monkeypatch, bad, match):
    calls = []
    monkeypatch.setattr(tflite_jit.Interpreter, "invoke", lambda self: calls.append("invoke"))
    monkeypatch.setattr(tflite_jit.Interpreter, "allocate_tensors", lambda self: calls.append("allocate"))
    full = {"b": np.zeros((N, 4, 4, 8), np.float32), **bad} if "missing" not in match else bad
    with pytest.raises(ValueError, match=match):
        batch.predict(float_model(), full, backend="reference")
    assert calls == []


def test_bad_example_in_a_sequence_and_signature_name_fail_before_any_work(monkeypatch):
    calls = []
    monkeypatch.setattr(tflite_jit.Interpreter, "invoke", lambda self: calls.append("invoke"))
    monkeypatch.setattr(tflite_jit.Interpreter, "allocate_tensors", lambda self: calls.append("allocate"))
    examples = list(int8_feeds()["x"])
    examples[7] = examples[7].astype(np.int16)
    with pytest.raises(ValueError, match=r"input 'x' \(example 7\): expected int8 .*\(5, 5, 3\).*int16"):
        batch.predict(int8_model(), examples, backend="reference")
    assert calls == []
    feeds = float_feeds()
    with pytest.raises(ValueError, match=r"input 'offset'.*missing.*\(4, 4, 8\)"):
        batch.predict(float_model(signature=True), {"image": feeds["x"]}, signature="serve",
                      backend="reference")
    with pytest.raises(ValueError, match="unknown input name"):
        batch.predict(float_model(signature=True), {"image": feeds["x"], "offset": feeds["b"], "z": 1},
                      signature="serve", backend="reference")


def test_writers(tmp_path):
    model8, feeds8 = int8_model(), int8_feeds()
    got = batch.predict(model8, feeds8, batch_size=3, backend="reference", output=tmp_path / "y.npy")
    assert np.array_equal(np.load(tmp_path / "y.npy"), got[0])
    got = batch.predict(float_model(), float_feeds(), batch_size=3, backend="reference",
                        output=tmp_path / "o.npz")
    with np.load(tmp_path / "o.npz") as z:
        assert list(z) == ["y", "s"]
        assert np.array_equal(z["y"], got[0]) and np.array_equal(z["s"], got[1])
    with pytest.raises(ValueError, match=r"\.npy file holds one array.*2 outputs"):
        batch.predict(float_model(), float_feeds(), backend="reference", output=tmp_path / "o.npy")
    with pytest.raises(ValueError, match=r"\.npy, \.npz, \.parquet"):
        batch.predict(float_model(), float_feeds(), backend="reference", output=tmp_path / "o.csv")


def test_parquet_writer_round_trips_tensor_columns(tmp_path):
    """One row per example; a tensor output is Arrow's fixed_shape_tensor, which reads back (and
    into pyarrow's own API) with its shape and dtype, bitwise."""
    pa = pytest.importorskip("pyarrow")
    from tflite_jit import tables

    got = batch.predict(float_model(), float_feeds(), batch_size=3, backend="reference",
                        output=tmp_path / "o.parquet")
    back = tables.read(tmp_path / "o.parquet")
    assert list(back) == ["y", "s"]
    assert_identical([back["y"], back["s"]], got)
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "o.parquet")
    assert table.num_rows == N and isinstance(table.schema.field("y").type, pa.FixedShapeTensorType)
    assert np.array_equal(table.column("y").combine_chunks().to_numpy_ndarray(), got[0])
    assert not (tmp_path / "o.parquet.partial").exists()
    got8 = batch.predict(int8_model(), int8_feeds(), batch_size=4, backend="reference",
                         output=tmp_path / "q.parquet")
    assert_identical([tables.read(tmp_path / "q.parquet")["y"]], got8)


def test_progress_bar_on_request(capsys):
    batch.predict(int8_model(), int8_feeds(), batch_size=3, backend="reference", progress=True)
    assert "predict" in capsys.readouterr().err


# -- pickling ----------------------------------------------------------------------------------------

def test_pickled_interpreter_is_fresh_with_the_same_options(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(int8_model())
    it = tflite_jit.Interpreter(model_path=str(path), backend="reference", num_threads=2,
                                fusion="none", max_bytes="64M")
    it.allocate_tensors()
    data = pickle.dumps(it)
    path.unlink()  # the bytes travel, not the path
    back = pickle.loads(data)
    assert type(back) is tflite_jit.Interpreter
    assert back._num_threads == 2 and back._fusion == "none" and back._backend_name == "reference"
    assert back._interpreter.context.max_bytes == 64 << 20
    with pytest.raises(ValueError, match="allocate_tensors"):  # not allocated: a fresh interpreter
        back.get_tensor(back.get_input_details()[0]["index"])
    feeds = int8_feeds()
    assert_identical(batch.predict(back, feeds, batch_size=3), one_by_one(int8_model(), feeds))


def test_pickle_refuses_a_backend_object_delegate_and_unpicklable_custom_ops():
    from tests.test_delegates import NumpyDevice

    it = tflite_jit.Interpreter(model_content=int8_model(), backend="reference",
                                experimental_delegates=[tflite_jit.Delegate.from_backend(NumpyDevice())])
    with pytest.raises(TypeError, match="delegate 'npdev'"):
        pickle.dumps(it)
    it = tflite_jit.Interpreter(model_content=int8_model(), backend="reference",
                                custom_ops={"MyOp": lambda x, options: x})
    with pytest.raises(TypeError, match="custom op 'MyOp'"):
        pickle.dumps(it)


def test_pickled_interpreter_in_a_spawned_worker():
    model, feeds = elementwise_model(), elementwise_feeds()
    it = tflite_jit.Interpreter(model_content=model, backend="reference")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        got = pool.submit(batch.predict, it, feeds, batch_size=3).result(timeout=300)
    assert_identical(got, one_by_one(model, feeds))


def test_pickled_interpreter_with_custom_ops_keeps_its_class_and_ops():
    spec = tflite_jit.CustomOp("MyNeg", np.negative)
    it = tflite_jit.InterpreterWithCustomOps(custom_op_registerers=[spec], model_content=int8_model(),
                                             backend="reference", custom_ops={"MyAbs": np.abs})
    back = pickle.loads(pickle.dumps(it))
    assert type(back) is tflite_jit.InterpreterWithCustomOps
    assert set(back._interpreter.context.custom_ops) == {"MyNeg", "MyAbs"}


def test_batch_jobs_compile_eagerly_unless_told_otherwise(monkeypatch) -> None:
    """A batch job must not start on the reference tier (items would differ in float rounding
    from later ones): predict opens models with jit='eager', and a caller's jit= wins."""
    from tests.test_interpreter_api import TWO_IO as model
    from tflite_jit import batch as batch_mod

    monkeypatch.delenv("TFLITE_JIT_JIT", raising=False)
    assert batch_mod._open(model, None, {})._interpreter.context.jit == "eager"
    assert batch_mod._open(model, None, {"jit": "off"})._interpreter.context.jit == "off"
