"""The Dask and Spark recipes of docs/scale-out.md, run as written there (model and shapes made
small): per-worker interpreters plus batch.predict give invoke()'s results bitwise. Each is skipped,
with the reason, where its dependency does not install (Spark also needs a Java runtime)."""

from __future__ import annotations

import shutil
import sys
import threading

import numpy as np
import pytest

from tests.test_batch import assert_identical, one_by_one
from tflite_jit import batch
from tflite_jit.format.builder import ModelBuilder

N = 40


def image_model() -> bytes:
    """x float32 (-1,4,4,3) -> CONV_2D + RELU6 -> y (-1,4,4,8): one input, one output."""
    rng = np.random.default_rng(11)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4, 4, 3), np.float32, shape_signature=(-1, 4, 4, 3))
    w = g.const("w", rng.standard_normal((8, 3, 3, 3)).astype(np.float32))
    b = g.const("bias", rng.standard_normal(8).astype(np.float32))
    (y,) = g.apply("CONV_2D", [x, w, b], padding="SAME", stride_w=1, stride_h=1,
                   fused_activation_function="RELU6", out_name="y")
    g.output(y)
    return mb.build()


def images(n: int = N) -> np.ndarray:
    return np.random.default_rng(12).standard_normal((n, 4, 4, 3)).astype(np.float32)


# -- Dask: the recipe's function, verbatim but for the batch size --------------------------------
_local = threading.local()


def predict_block(block: np.ndarray, model_path: str) -> np.ndarray:
    cache = _local.__dict__.setdefault("predictors", {})
    if model_path not in cache:
        cache[model_path] = batch.Predictor(model_path, batch_size=6, num_threads=1)
    return cache[model_path](block)[0]


def test_dask_recipe(tmp_path):
    da = pytest.importorskip("dask.array", reason="dask is not installed (pip install 'dask[array]')")
    path = tmp_path / "m.tflite"
    path.write_bytes(image_model())
    x = images()
    arr = da.from_array(x, chunks=(16, 4, 4, 3))  # blocks of 16, 16, 8: ragged batches inside each
    out = arr.map_blocks(predict_block, str(path), dtype=np.float32,
                         chunks=(arr.chunks[0], (4,), (4,), (8,)))
    got = out.compute(scheduler="threads", num_workers=2)
    assert_identical([got], one_by_one(image_model(), {"x": x}, backend="numba"))


# -- Spark: predict_batch_udf ---------------------------------------------------------------------
def test_spark_predict_batch_udf_recipe(tmp_path, monkeypatch):
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'tflite-jit[spark]')")
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime (17+) and none is on PATH")
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import SparkSession
    from pyspark.sql.types import ArrayType, FloatType

    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)  # Spark's Python workers: this interpreter
    path = str(tmp_path / "m.tflite")
    (tmp_path / "m.tflite").write_bytes(image_model())

    def make_predict_fn():
        from tflite_jit import batch

        run = batch.Predictor(path, batch_size=6, num_threads=1)

        def predict(images: np.ndarray) -> np.ndarray:
            out = run(images.astype(np.float32))[0]
            return out.reshape(len(out), -1)  # Spark's array column: one flat array per row

        return predict

    x = images()
    spark = (SparkSession.builder.master("local[2]").appName("tflite_jit-recipe")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())
    try:
        df = spark.createDataFrame([(i, x[i].ravel().tolist()) for i in range(N)],
                                   "id long, image array<float>").repartition(3)
        classify = predict_batch_udf(make_predict_fn, return_type=ArrayType(FloatType()), batch_size=6,
                                     input_tensor_shapes=[[4, 4, 3]])
        rows = df.withColumn("y", classify("image")).select("id", "y").orderBy("id").collect()
    finally:
        spark.stop()
    got = np.array([r["y"] for r in rows], np.float32).reshape(N, 4, 4, 8)
    assert [r["id"] for r in rows] == list(range(N))
    assert_identical([got], one_by_one(image_model(), {"x": x}, backend="numba"))
