"""`tflite-jit predict` without Ray: .npy/.npz/.parquet/DIR in, .parquet/.npz/.npy out, bitwise
those of invoke(); every bad input is one line and exit 1 before any work. (With --ray:
tests/test_ray.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_batch import (
    assert_identical,
    elementwise_feeds,
    elementwise_model,
    int8_feeds,
    int8_model,
    one_by_one,
)
from tflite_jit import tables
from tflite_jit.tools import cli

N = 11


def predict(tmp_path, model: bytes, *args: str) -> int:
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    return cli.main(["predict", str(path), "--backend", "reference", "--progress", "off", *args])


def test_npy_in_npy_and_npz_out(tmp_path, capsys):
    feeds = int8_feeds(N)
    np.save(tmp_path / "x.npy", feeds["x"])
    want = one_by_one(int8_model(), feeds)
    assert predict(tmp_path, int8_model(), "--input", str(tmp_path / "x.npy"), "--output",
                   str(tmp_path / "y.npy"), "--batch-size", "4") == 0
    assert_identical([np.load(tmp_path / "y.npy")], want)
    out = capsys.readouterr().out
    assert f"predict: {N} examples" in out and "local" in out and "ms/example" in out
    assert predict(tmp_path, int8_model(), "--input", str(tmp_path / "x.npy"), "--output",
                   str(tmp_path / "y.npz")) == 0
    with np.load(tmp_path / "y.npz") as z:
        assert list(z) == ["y"]
        assert_identical([z["y"]], want)


def test_parquet_signature_names_mapping_and_passthrough(tmp_path):
    """Signature input names are the columns (one mapped with --column); the id column is copied."""
    pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install 'tflite-jit[parquet]')")
    feeds = elementwise_feeds(N)
    tables.write(tmp_path / "in.parquet", {"id": np.arange(N), "pic": feeds["x"], "offset": feeds["b"]})
    assert predict(tmp_path, elementwise_model(signature=True), "--input", str(tmp_path / "in.parquet"),
                   "--output", str(tmp_path / "out.parquet"), "--column", "image=pic", "--batch-size", "3") == 0
    got = tables.read(tmp_path / "out.parquet")
    assert list(got) == ["features", "sum", "id"] and got["id"].tolist() == list(range(N))
    assert_identical([got["features"], got["sum"]], one_by_one(elementwise_model(), feeds))


def test_a_directory_of_shards_is_read_in_name_order(tmp_path):
    feeds = int8_feeds(N)
    (tmp_path / "shards").mkdir()
    np.save(tmp_path / "shards" / "part-0.npy", feeds["x"][:5])
    np.save(tmp_path / "shards" / "part-1.npy", feeds["x"][5:])
    assert predict(tmp_path, int8_model(), "--input", str(tmp_path / "shards"), "--output",
                   str(tmp_path / "y.npy")) == 0
    assert_identical([np.load(tmp_path / "y.npy")], one_by_one(int8_model(), feeds))


@pytest.mark.parametrize("make_input, extra, message", [
    (lambda d: np.save(d / "in.npy", np.zeros((3, 5, 5, 3), np.float32)), [],
     "column 'data' (model input 'x'): expected int8 with per-example shape (5, 5, 3)"),
    (lambda d: np.save(d / "in.npy", np.zeros((3, 5, 5, 2), np.int8)), [],
     "per-example shape (5, 5, 3) (the model's input is [-1, 5, 5, 3], first axis = batch), got int8 with "
     "per-example shape (5, 5, 2)"),
    (lambda d: np.savez(d / "in.npz", a=np.zeros((3, 5, 5, 3), np.int8), b=np.zeros(3)), [],
     "model input 'x' (int8, per-example shape (5, 5, 3)) has no column: the data's columns are ['a', 'b']"),
    (lambda d: np.save(d / "in.npy", np.zeros((3, 5, 5, 3), np.int8)), ["--column", "z=data"],
     "input_columns names ['z'], which the model does not have"),
    (lambda d: np.save(d / "in.npy", np.zeros((3, 5, 5, 3), np.int8)), ["--workers", "2"],
     "--workers needs --ray"),
])
def test_bad_input_is_one_line_and_exit_1(tmp_path, capsys, make_input, extra, message):
    make_input(tmp_path)
    src = next(p for p in tmp_path.iterdir() if p.name.startswith("in."))
    assert predict(tmp_path, int8_model(), "--input", str(src), "--output", str(tmp_path / "o.npz"), *extra) == 1
    err = capsys.readouterr().err
    assert err.startswith("tflite-jit predict: error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "o.npz").exists()


def test_bad_output_suffix_and_missing_input(tmp_path, capsys):
    assert predict(tmp_path, int8_model(), "--input", str(tmp_path / "none.npy"), "--output",
                   str(tmp_path / "o.csv")) == 1
    assert "expected a file ending .npy, .npz, .parquet" in capsys.readouterr().err
    assert predict(tmp_path, int8_model(), "--input", str(tmp_path / "none.npy"), "--output",
                   str(tmp_path / "o.npz")) == 1
    assert "no such file or directory" in capsys.readouterr().err
