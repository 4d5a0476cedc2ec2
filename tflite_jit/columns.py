"""Which data column feeds which model input, and whether it fits: one set of rules and error
messages for `tflite_jit.ray` and `tflite-jit predict`.

Why a module of its own: a table's columns are named by whoever made the data, a model's inputs by
whoever exported the model, and a mismatch found on a worker after an hour of queueing is the
worst way to learn of it. These checks run on the driver before anything is sent out (against a
dataset's schema where it knows shapes and dtypes, e.g. Ray's tensor columns) and again on every
batch, and every message names the column, the model input, and the dtype and per-example shape
expected. Values are never cast: like `set_tensor`, a float64 column for a float32 input is an
error, not a silent conversion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tflite_jit.batch import InputSpec, input_specs, output_names
from tflite_jit.interpreter import Interpreter

#: columns a worker adds when asked for statistics (tflite_jit.ray, `tflite-jit predict`)
WORKER_COLUMN = "tflite_jit_worker"
SECONDS_COLUMN = "tflite_jit_seconds"
STATS_COLUMNS = (WORKER_COLUMN, SECONDS_COLUMN)


def default_signature(it: Interpreter) -> str | None:
    """The signature a table maps onto: the given model's only one, 'serving_default', or the
    first; None for a model without signatures (then tensor names are the column names)."""
    keys = list(it.get_signature_list())
    if not keys:
        return None
    return "serving_default" if "serving_default" in keys else keys[0]


def model_io(it: Interpreter, signature: str | None) -> tuple[str | None, list[InputSpec], list[str]]:
    """(signature used, input specs, output names), the signature defaulting as above."""
    signature = signature if signature is not None else default_signature(it)
    runner = it.get_signature_runner(signature) if signature is not None else None
    specs, outs = input_specs(it, runner), output_names(it, runner)
    del runner  # a live SignatureRunner would block invoke() on `it`
    return signature, specs, outs


def bind_columns(columns: Sequence[str], specs: Sequence[InputSpec],
                 input_columns: Mapping[str, str] | None = None) -> dict[str, str]:
    """{model input name: column name}. A column named like the input feeds it; `input_columns`
    maps the others; a one-input model fed a one-column table takes that column."""
    columns = list(columns)
    names = [s.name for s in specs]
    given = dict(input_columns or {})
    unknown = [k for k in given if k not in names]
    if unknown:
        raise ValueError(f"input_columns names {unknown}, which the model does not have: its inputs are {names}")
    out = {}
    for s in specs:
        col = given.get(s.name)
        if col is None:
            if s.name in columns:
                col = s.name
            elif len(specs) == 1 and len(columns) == 1:
                col = columns[0]
            else:
                raise ValueError(
                    f"model input {s.name!r} ({s.dtype}, per-example shape {s.item_shape}) has no column: "
                    f"the data's columns are {columns}; name a column {s.name!r} or map one with "
                    f"input_columns={{{s.name!r}: 'your_column'}} (CLI: --column {s.name}=your_column)")
        elif col not in columns:
            raise ValueError(f"input_columns maps model input {s.name!r} to column {col!r}, which the "
                             f"data does not have: its columns are {columns}")
        out[s.name] = col
    return out


def kept_columns(columns: Sequence[str], binding: Mapping[str, str], keep: Sequence[str] | bool | None,
                 outputs: Sequence[str]) -> list[str]:
    """The columns carried through beside the outputs: None or True = every column that feeds no
    input (ids, labels); False = none; a list = those."""
    used = set(binding.values())
    if keep is None or keep is True:
        kept = [c for c in columns if c not in used]
    elif keep is False:
        kept = []
    else:
        kept = list(keep)
        missing = [c for c in kept if c not in columns]
        if missing:
            raise ValueError(f"keep_columns names {missing}, which the data does not have: its columns "
                             f"are {list(columns)}")
    clash = [c for c in kept if c in outputs or c in STATS_COLUMNS]
    if clash:
        raise ValueError(f"column(s) {clash} would be overwritten by the model's outputs {list(outputs)}: "
                         "rename them or leave them out with keep_columns")
    return kept


def conform(arr: Any, spec: InputSpec, column: str) -> np.ndarray:
    """The column's rows as the input's (N, *item) array: a ragged object column that is in fact
    uniform is stacked, rows stored flat (as a fixed-size list of the right length) are reshaped;
    anything else that does not fit is a ValueError naming column, input, dtype and shape."""
    arr = np.asarray(arr)
    if arr.dtype == object and arr.ndim == 1 and len(arr):
        rows = [np.asarray(r) for r in arr]
        if len({(r.dtype, r.shape) for r in rows}) == 1:
            arr = np.stack(rows)
        else:
            shapes = sorted({r.shape for r in rows})[:3]
            raise ValueError(f"column {column!r} (model input {spec.name!r}): rows of different shapes "
                             f"({', '.join(map(str, shapes))}...) but the input takes {spec.dtype} with "
                             f"per-example shape {spec.item_shape}")
    if arr.ndim == 0:
        raise ValueError(f"column {column!r} (model input {spec.name!r}) is a scalar, not a column")
    item = tuple(arr.shape[1:])
    size = int(np.prod(spec.item_shape, dtype=np.int64))
    if arr.dtype == spec.dtype and item != spec.item_shape and int(np.prod(item, dtype=np.int64)) == size \
            and len(item) <= 1:
        arr = arr.reshape(len(arr), *spec.item_shape)
        item = spec.item_shape
    if arr.dtype != spec.dtype or item != spec.item_shape:
        raise ValueError(
            f"column {column!r} (model input {spec.name!r}): expected {spec.dtype} with per-example shape "
            f"{spec.item_shape} (the model's input is {spec.declared}, first axis = batch), got {arr.dtype} "
            f"with per-example shape {item}; values are not cast (convert the column first)")
    return arr


def check_type(column: str, spec: InputSpec, dtype: Any, item_shape: Sequence[int] | None) -> None:
    """Check a column's declared type (a schema's, before any data is read) against the input: the
    same rules as `conform`; an unknown shape (ragged or list columns) is left to `conform`."""
    probe_shape = (0, *item_shape) if item_shape is not None else (0, *spec.item_shape)
    conform(np.empty(probe_shape, dtype=np.dtype(dtype)), spec, column)
