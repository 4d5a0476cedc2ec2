"""Tables of examples in files: `.npy`, `.npz` and Parquet (pyarrow, the `parquet` extra).

Why a module of its own: `batch.predict(output=...)`, the `tflite-jit predict` command and
`tflite_jit.ray` all move the same thing between arrays and files - one row per example, one
column per model input or output - and must agree on how a tensor-valued column is stored. A
column whose examples are tensors is written as Arrow's canonical `arrow.fixed_shape_tensor`
extension (pandas, Ray Data, DuckDB and Spark read it as a fixed-size list at worst); a column of
scalars as a plain column. Reading accepts that, Ray's own tensor columns, and nested or flat
fixed-size lists, and hands back `(N, *dims)` arrays without casting: whether they fit a model
input is `tflite_jit.columns`' business, so the error can name the model's input.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: what the writers and readers understand, by file suffix
SUFFIXES = (".npy", ".npz", ".parquet")
#: the column name of a .npy file's array
NPY_COLUMN = "data"


def file_format(path: str | os.PathLike, what: str = "output") -> str:
    """The suffix that decides how `path` is written or read; ValueError naming the ones we know."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{what}={os.fspath(path)!r}: expected a file ending {', '.join(SUFFIXES)}")
    return suffix


def require_pyarrow() -> Any:
    """pyarrow, or an ImportError that says which extra installs it."""
    try:
        import pyarrow
    except ImportError:
        raise ImportError("Parquet needs pyarrow: pip install 'tflite-jit[parquet]'") from None
    return pyarrow


def write(path: str | os.PathLike, columns: Mapping[str, np.ndarray]) -> None:
    """Write columns (each an array with the examples along its first axis) to `path`: .npy (one
    column), .npz (by column name) or .parquet (one row per example)."""
    suffix = file_format(path)
    if suffix == ".npy":
        if len(columns) != 1:
            raise ValueError(f"output={os.fspath(path)!r}: a .npy file holds one array but there are "
                             f"{len(columns)} columns ({', '.join(columns)}); write .npz or .parquet")
        np.save(path, next(iter(columns.values())))
    elif suffix == ".npz":
        np.savez(path, **columns)
    else:
        with ParquetWriter(path) as w:
            w.write(columns)


def to_arrow(columns: Mapping[str, np.ndarray]) -> Any:
    """A pyarrow Table with one row per example: tensor columns as fixed_shape_tensor."""
    pa = require_pyarrow()
    counts = {len(a) for a in columns.values()}
    if len(counts) > 1:
        raise ValueError("columns have different numbers of rows: "
                         + ", ".join(f"{k}: {len(a)}" for k, a in columns.items()))
    arrays = []
    for name, arr in columns.items():
        arr = np.asarray(arr)
        if arr.ndim == 0:
            raise ValueError(f"column {name!r} is a scalar: a table column needs one value per row")
        if arr.ndim == 1:
            arrays.append(pa.array(arr))
        elif arr.shape[0] == 0:  # from_numpy_ndarray needs a row to see the shape; an empty table is fine
            typ = pa.fixed_shape_tensor(pa.from_numpy_dtype(arr.dtype), list(arr.shape[1:]))
            arrays.append(pa.ExtensionArray.from_storage(
                typ, pa.array([], pa.list_(pa.from_numpy_dtype(arr.dtype), int(np.prod(arr.shape[1:]))))))
        else:
            arrays.append(pa.FixedShapeTensorArray.from_numpy_ndarray(np.ascontiguousarray(arr)))
    return pa.Table.from_arrays(arrays, names=list(columns))


class ParquetWriter:
    """Appends batches of columns to one Parquet file (the schema is the first batch's), so a long
    run writes as it goes. Written to `path + '.partial'` and renamed on a clean close: a run that
    dies leaves no file that looks complete."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.rows = 0
        self._writer: Any = None

    def write(self, columns: Mapping[str, np.ndarray]) -> None:
        table = to_arrow(columns)
        if self._writer is None:
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self.partial, table.schema)
        elif table.schema != self._writer.schema:
            table = table.cast(self._writer.schema)  # raises naming the field when it cannot
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self, ok: bool = True) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if ok and self.partial.exists():
            os.replace(self.partial, self.path)
        elif not ok:
            self.partial.unlink(missing_ok=True)

    def __enter__(self) -> ParquetWriter:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.close(ok=exc_type is None)


def read(path: str | os.PathLike, columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """All rows of a .npy, .npz or .parquet file, or of a directory of such files (in name order,
    e.g. the shards Ray writes), as arrays by column name. A .npy file is one column named
    'data' (Ray's name for an unnamed array), which a one-input model takes whatever its input's
    name (tflite_jit.columns.bind_columns)."""
    chunks = list(read_chunks(path, columns))
    if not chunks:
        raise ValueError(f"input={os.fspath(path)!r}: no .npy, .npz or .parquet files in the directory")
    names = list(chunks[0])
    for i, c in enumerate(chunks[1:], 1):
        if list(c) != names:
            raise ValueError(f"input={os.fspath(path)!r}: file {i} has columns {list(c)}, the first has {names}")
    return {n: np.concatenate([c[n] for c in chunks]) if len(chunks) > 1 else chunks[0][n] for n in names}


def read_chunks(path: str | os.PathLike, columns: Sequence[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
    """One dict of columns per file (a directory: per file in name order)."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"input={os.fspath(path)!r}: no such file or directory")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SUFFIXES)
        kinds = {f.suffix.lower() for f in files}
        if len(kinds) > 1:
            raise ValueError(f"input={os.fspath(path)!r}: the directory mixes {', '.join(sorted(kinds))} files")
        for f in files:
            yield _read_file(f, columns)
        return
    yield _read_file(p, columns)


def _read_file(path: Path, columns: Sequence[str] | None) -> dict[str, np.ndarray]:
    suffix = file_format(path, "input")
    if suffix == ".npy":
        return {NPY_COLUMN: np.load(path, allow_pickle=False)}
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files) if columns is None else [c for c in columns if c in z.files]
            return {n: z[n] for n in names}
    require_pyarrow()
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    names = schema.names if columns is None else [c for c in columns if c in schema.names]
    table = pq.read_table(path, columns=names)
    return {n: column_to_numpy(table.column(n), n) for n in names}


def column_to_numpy(col: Any, name: str) -> np.ndarray:
    """An Arrow column as an array (rows, *dims): scalars, fixed_shape_tensor, Ray's tensor
    columns, and lists of uniform length at every level (flat or nested). Nulls and ragged rows
    are refused naming the column: a model input has one shape."""
    pa = require_pyarrow()
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if col.null_count:
        raise ValueError(f"column {name!r} has {col.null_count} null value(s): every row needs a value")
    rows = len(col)
    if isinstance(col.type, pa.FixedShapeTensorType):
        return col.to_numpy_ndarray()
    if isinstance(col.type, pa.BaseExtensionType):
        to_numpy = getattr(col, "to_numpy", None)
        try:  # Ray's tensor arrays (when ray is imported) turn themselves into ndarrays
            out = to_numpy() if to_numpy is not None else None
        except Exception:
            out = None
        if isinstance(out, np.ndarray) and out.dtype != object:
            return out
        col = col.storage
    dims: list[int] = []
    values = col
    while pa.types.is_list(values.type) or pa.types.is_large_list(values.type) \
            or pa.types.is_fixed_size_list(values.type):
        if values.null_count:
            raise ValueError(f"column {name!r} has null values inside its lists")
        if pa.types.is_fixed_size_list(values.type):
            size = values.type.list_size
        else:
            import pyarrow.compute as pc

            lengths = np.unique(pc.list_value_length(values).to_numpy(zero_copy_only=False))
            if len(lengths) > 1:
                raise ValueError(f"column {name!r} is ragged: its rows (or their sub-lists) have "
                                 f"{len(lengths)} different lengths ({', '.join(map(str, lengths[:5]))}...); "
                                 "a model input has one shape per example")
            size = int(lengths[0]) if len(lengths) else 0
        dims.append(size)
        values = values.flatten()
    if values.null_count:
        raise ValueError(f"column {name!r} has null values inside its lists")
    flat = values.to_numpy(zero_copy_only=False)
    return flat.reshape(rows, *dims)
