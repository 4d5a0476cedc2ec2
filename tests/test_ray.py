"""tflite_jit.ray and `tflite-jit predict --ray` on one local Ray for the module (issue #17):
results bitwise those of invoke() example by example (float and int8, any batch size and worker
count), no row lost or doubled when a worker dies mid-run, bad columns refused before any work."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'tflite-jit[ray]')")
pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install 'tflite-jit[parquet]')")

import ray  # noqa: E402

import tflite_jit.ray as tray  # noqa: E402
from tests.test_batch import (  # noqa: E402
    assert_identical,
    elementwise_feeds,
    elementwise_model,
    float_feeds,
    float_model,
    int8_feeds,
    int8_model,
    one_by_one,
)
from tflite_jit import tables  # noqa: E402
from tflite_jit.tools import cli  # noqa: E402

#: all Ray tests on one xdist worker: one Ray for the module (CI: pytest -n 2 --dist loadgroup)
pytestmark = pytest.mark.xdist_group("ray")

N = 23  # rows: ragged last batches for 3, 4 and 7


@pytest.fixture(scope="module", autouse=True)
def local_ray(tmp_path_factory):
    """One local Ray per module: 3 logical CPUs = 2 actors plus one for Ray Data's read tasks.
    The workers share this session's compile cache (TFLITE_JIT_CACHE_DIR, inherited)."""
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, logging_level="warning")
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield
    ray.shutdown()


def dataset(feeds: dict[str, np.ndarray], names: dict[str, str] | None = None, blocks: int = 4):
    """A dataset with an `id` column and the feeds as tensor columns (renamed by `names`)."""
    names = names or {}
    n = len(next(iter(feeds.values())))
    cols = {"id": np.arange(n)} | {names.get(k, k): v for k, v in feeds.items()}
    return ray.data.from_arrow(tables.to_arrow(cols)).repartition(blocks)


def by_id(rows: dict[str, np.ndarray], names: list[str]) -> list[np.ndarray]:
    order = np.argsort(rows["id"])
    assert rows["id"][order].tolist() == list(range(len(order)))  # every row once
    return [rows[k][order] for k in names]


def collect(ds) -> dict[str, np.ndarray]:
    batches = list(ds.iter_batches(batch_size=None, batch_format="numpy"))
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def test_map_batches_bitwise_float_and_int8_any_batch_and_workers():
    """The documented map_batches form (the model as an ObjectRef) and the predict one-liner, float
    (numba) and int8, against invoke() at batch 1 on the same backend."""
    feeds = float_feeds(N)
    want = one_by_one(float_model(), feeds, backend="numba")
    out = dataset(feeds).map_batches(
        tray.TFLitePredictor, fn_constructor_kwargs={"model_content": ray.put(float_model()), "backend": "numba"},
        batch_size=7, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=2))
    rows = collect(out)
    assert set(rows) == {"id", "y", "s"}  # outputs by tensor name (no signature), id kept
    assert_identical(by_id(rows, ["y", "s"]), want)

    feeds8 = int8_feeds(N)
    want8 = one_by_one(int8_model(), feeds8, backend="numba")
    rows8 = collect(tray.predict(dataset(feeds8), int8_model(), batch_size=3, workers=1, backend="numba"))
    assert_identical(by_id(rows8, ["y"]), want8)


def test_signature_names_column_mapping_and_stats():
    """A model with a signature: its input names are the columns (one mapped explicitly), its
    output names the result columns; stats name each worker."""
    feeds = elementwise_feeds(N)
    want = one_by_one(elementwise_model(), feeds, backend="numba")
    ds = dataset({"pic": feeds["x"], "offset": feeds["b"]})
    rows = collect(tray.predict(ds, elementwise_model(signature=True), batch_size=4, workers=2,
                                input_columns={"image": "pic"}, stats=True, backend="numba"))
    assert set(rows) == {"id", "features", "sum", "tflite_jit_worker", "tflite_jit_seconds"}
    assert_identical(by_id(rows, ["features", "sum"]), want)
    assert all(":" in w for w in rows["tflite_jit_worker"]) and (rows["tflite_jit_seconds"] > 0).all()


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(tmp_path):
    """The worker that gets the batch holding row 11 dies (os._exit) the first time; Ray restarts
    it and retries the batch. Written to Parquet and read back: every id once, values bitwise."""
    marker = str(tmp_path / "killed")

    class DiesOnce(tray.TFLitePredictor):
        def __call__(self, data):
            if 11 in data["id"] and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)
            return super().__call__(data)

    feeds = int8_feeds(N)
    want = one_by_one(int8_model(), feeds, backend="numba")
    out = dataset(feeds, blocks=6).map_batches(
        DiesOnce, fn_constructor_kwargs={"model_content": int8_model(), "backend": "numba", "batch_size": 4},
        batch_size=4, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=2))
    out.write_parquet(str(tmp_path / "out"))
    assert os.path.exists(marker)  # the worker did die
    rows = tables.read(tmp_path / "out")
    assert len(rows["id"]) == N
    assert_identical(by_id(rows, ["y"]), want)


@pytest.mark.parametrize("bad, match", [
    ({"x": np.zeros((N, 4, 4, 3), np.float64)}, r"column 'x' \(model input 'x'\): expected float32 with "
                                                r"per-example shape \(4, 4, 3\).*got float64"),
    ({"x": np.zeros((N, 4, 4, 2), np.float32)}, r"column 'x'.*per-example shape \(4, 4, 3\).*\(4, 4, 2\)"),
    ({"y": np.zeros((N, 4, 4, 3), np.float32)}, r"model input 'x' \(float32, per-example shape \(4, 4, 3\)\) "
                                                r"has no column.*\['id', 'b', 'y'\]"),
])
def test_bad_columns_fail_on_the_driver_before_any_work(bad, match):
    """Checked against the dataset's schema on the driver: predict raises before it builds the
    (lazy) map, so no actor starts and no batch is read."""
    ds = dataset({"b": float_feeds(N)["b"]} | bad)
    with pytest.raises(ValueError, match=match):
        tray.predict(ds, float_model(), batch_size=4)


def test_each_batch_is_checked_on_the_worker_too():
    """The predictor checks every batch (a schema may not know shapes, e.g. list columns)."""
    pred = tray.TFLitePredictor(model_content=int8_model(), backend="reference")
    with pytest.raises(ValueError, match=r"column 'x' \(model input 'x'\): expected int8 with per-example "
                                         r"shape \(5, 5, 3\).*got int16"):
        pred({"x": np.zeros((3, 5, 5, 3), np.int16)})
    flat = int8_feeds(5)["x"].reshape(5, -1)  # rows stored flat (a fixed-size list) are reshaped
    got = pred({"x": flat, "id": np.arange(5)})
    assert_identical([got["y"]], one_by_one(int8_model(), int8_feeds(5)))
    assert got["id"].tolist() == list(range(5))


def test_missing_signature_input_fails_before_any_work():
    feeds = elementwise_feeds(N)
    with pytest.raises(ValueError, match=r"model input 'offset' .*has no column.*\['id', 'image'\]"):
        tray.predict(dataset({"image": feeds["x"]}), elementwise_model(signature=True))


def test_cli_predict_on_ray_matches_the_local_run(tmp_path, capsys):
    """`tflite-jit predict --ray auto` (joins this module's Ray) reads Parquet with Ray's readers,
    writes the rows in input order, and equals the local run bitwise; the summary names workers."""
    model = tmp_path / "m.tflite"
    model.write_bytes(float_model())
    feeds = float_feeds(N)
    tables.write(tmp_path / "in.parquet", {"id": np.arange(N)} | feeds)
    common = [str(model), "--input", str(tmp_path / "in.parquet"), "--batch-size", "4", "--backend", "numba"]
    assert cli.main(["predict", *common, "--output", str(tmp_path / "here.parquet")]) == 0
    assert cli.main(["predict", *common, "--output", str(tmp_path / "ray.parquet"), "--ray", "auto",
                     "--workers", "2"]) == 0
    summary = capsys.readouterr().out
    assert "examples/s" in summary and summary.count("ms/example") == 2
    here, there = tables.read(tmp_path / "here.parquet"), tables.read(tmp_path / "ray.parquet")
    assert list(there) == ["y", "s", "id"] and there["id"].tolist() == list(range(N))
    assert_identical([there[k] for k in ("y", "s", "id")], [here[k] for k in ("y", "s", "id")])
    assert_identical([here["y"], here["s"]], one_by_one(float_model(), feeds, backend="numba"))
