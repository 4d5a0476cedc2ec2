"""tflite_jit.tables (columns of examples in files) and tflite_jit.columns (binding them to model
inputs): every way a tensor column is stored reads back as (N, *item); what cannot fit an input is
refused naming the column."""

from __future__ import annotations

import numpy as np
import pytest

from tflite_jit import columns, tables
from tflite_jit.batch import InputSpec

pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install 'tflite-jit[parquet]')")


def spec(name: str = "x", shape=(2, 3), dtype=np.float32) -> InputSpec:
    return InputSpec(name, 0, (1, *shape), (-1, *shape), dtype)


def test_tensor_columns_in_every_storage_read_as_arrays(tmp_path):
    x = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
    nested = pa.array(x.tolist(), pa.list_(pa.list_(pa.float32())))
    flat = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 6)
    tensor = pa.FixedShapeTensorArray.from_numpy_ndarray(x)
    for col, shape in ((nested, (4, 2, 3)), (flat, (4, 6)), (tensor, (4, 2, 3))):
        got = tables.column_to_numpy(pa.chunked_array([col[:1], col[1:]]), "x")
        assert got.shape == shape and got.dtype == np.float32
        assert np.array_equal(columns.conform(got, spec(), "x"), x)  # flat rows are reshaped
    tables.write(tmp_path / "t.parquet", {"x": x, "id": np.arange(4), "name": np.array(list("abcd"), object)})
    back = tables.read(tmp_path / "t.parquet")
    assert np.array_equal(back["x"], x) and back["id"].tolist() == [0, 1, 2, 3]
    assert back["name"].tolist() == list("abcd")


def test_ragged_and_null_columns_are_refused_naming_the_column():
    ragged = pa.array([[1.0, 2.0], [3.0]], pa.list_(pa.float32()))
    with pytest.raises(ValueError, match="column 'r' is ragged"):
        tables.column_to_numpy(ragged, "r")
    with pytest.raises(ValueError, match=r"column 'n' has 1 null value\(s\)"):
        tables.column_to_numpy(pa.array([1.0, None]), "n")


def test_a_failed_parquet_write_leaves_no_file(tmp_path):
    out = tmp_path / "o.parquet"
    with pytest.raises(RuntimeError), tables.ParquetWriter(out) as w:
        w.write({"y": np.zeros((2, 3), np.float32)})
        raise RuntimeError("the run died")
    assert not out.exists() and not (tmp_path / "o.parquet.partial").exists()
    with tables.ParquetWriter(out) as w:
        w.write({"y": np.zeros((2, 3), np.float32)})
        w.write({"y": np.ones((1, 3), np.float32)})
    assert tables.read(out)["y"].tolist() == [[0, 0, 0], [0, 0, 0], [1, 1, 1]]


def test_binding_mapping_and_kept_columns():
    specs = [spec("a"), spec("b")]
    assert columns.bind_columns(["b", "id", "a"], specs) == {"a": "a", "b": "b"}
    assert columns.bind_columns(["p", "b"], specs, {"a": "p"}) == {"a": "p", "b": "b"}
    assert columns.bind_columns(["pixels"], [spec("a")]) == {"a": "pixels"}  # one input, one column
    with pytest.raises(ValueError, match=r"model input 'a' \(float32, per-example shape \(2, 3\)\) has no column"):
        columns.bind_columns(["b", "id"], specs)
    with pytest.raises(ValueError, match="maps model input 'a' to column 'q', which the data does not have"):
        columns.bind_columns(["b"], specs, {"a": "q"})
    assert columns.kept_columns(["a", "b", "id"], {"a": "a", "b": "b"}, None, ["y"]) == ["id"]
    assert columns.kept_columns(["a", "b", "id"], {"a": "a", "b": "b"}, False, ["y"]) == []
    with pytest.raises(ValueError, match=r"column\(s\) \['y'\] would be overwritten"):
        columns.kept_columns(["a", "b", "y"], {"a": "a", "b": "b"}, None, ["y"])


def test_conform_never_casts():
    with pytest.raises(ValueError, match=r"column 'c' \(model input 'x'\): expected float32 .* got float64"):
        columns.conform(np.zeros((2, 2, 3)), spec(), "c")
    with pytest.raises(ValueError, match=r"got float32 with per-example shape \(7,\)"):
        columns.conform(np.zeros((2, 7), np.float32), spec(), "c")
    rows = np.empty(2, object)
    rows[:] = [np.zeros((2, 3), np.float32), np.ones((2, 3), np.float32)]
    assert columns.conform(rows, spec(), "c").shape == (2, 2, 3)  # uniform object rows are stacked
