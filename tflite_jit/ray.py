"""Batch inference on Ray Data (the `ray` extra): a predictor class for `map_batches`, and
`predict(dataset, model)` that wires it up.

    ds.map_batches(TFLitePredictor, fn_constructor_kwargs={"model_path": "m.tflite"},
                   batch_size=64, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=4))
    out = tflite_jit.ray.predict(ds, "m.tflite", batch_size=64, workers=4)

Why actors: an interpreter plans and compiles once for its batch shape and is reused for every
batch after that, so it must live as long as the worker (a task per batch would re-open the model
each time). Each actor runs its batches through one `tflite_jit.batch.Predictor`, padded to the
fixed batch size, so every batch is an invoke with no re-plan and results are bitwise those of
`Interpreter.invoke` example by example, whatever the batch size or the number of workers.

Compiling: kernels go to the compile cache (TFLITE_JIT_CACHE_DIR). `predict` compiles once on the
driver before any actor starts (`compile_on_driver`), so actors on the same machine, or on machines
sharing the directory (`cache_dir`), load machine code instead of each compiling the same kernels;
a cache pre-filled by `tflite-jit compile` serves the same way. Elsewhere each actor compiles once.

Checks: `predict` maps columns to inputs and checks the dataset's schema against the model on the
driver (tflite_jit.columns), so a wrong dtype or shape, or a missing input, fails before any work is
sent out, naming the column and the expected shape; every batch is checked again on the worker.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tflite_jit import batch, columns
from tflite_jit.interpreter import Interpreter

DEFAULT_BATCH_SIZE = 32


class TFLitePredictor:
    """A Ray Data callable class: dataset columns in (by the model's input names), the model's outputs
    out (by output name), plus the columns that feed no input (ids, labels) unless `keep_columns`
    says otherwise.

    model_path: a .tflite file every worker can read; or model_content: the model's bytes or a Ray
    ObjectRef to them (what `predict` passes, so workers need no shared file). signature: the
    signature whose names are used (default: the model's only one, 'serving_default' or the first;
    a model without signatures uses its tensor names). batch_size: the interpreter's batch, planned
    and compiled when the actor starts (default: the first batch's length, planned at that batch);
    shorter batches are padded, longer ones split. input_columns:
    {input name: column} for columns not named like the inputs. cache_dir: TFLITE_JIT_CACHE_DIR for
    this worker. stats: add the columns `tflite_jit_worker` (host:pid) and `tflite_jit_seconds`
    (model time per example in its batch), which `tflite-jit predict` summarises.
    Other keywords go to Interpreter() (backend=, fusion=...).
    """

    def __init__(self, model_path: str | os.PathLike | None = None, *, model_content: Any = None,
                 signature: str | None = None, batch_size: int | None = None, num_threads: int = 1,
                 input_columns: Mapping[str, str] | None = None,
                 keep_columns: Sequence[str] | bool | None = None, cache_dir: str | os.PathLike | None = None,
                 stats: bool = False, **interpreter_options: Any):
        if cache_dir is not None:  # before the first compile reads it
            os.environ["TFLITE_JIT_CACHE_DIR"] = os.fspath(cache_dir)
        content = _model_bytes(model_path, model_content)
        # every batch on the compiled kernels (from the cache the driver filled): bitwise stable
        self.interpreter = Interpreter(model_content=content, num_threads=num_threads,
                                       **{"jit": "eager", **interpreter_options})
        self.signature, self.specs, self.outputs = columns.model_io(self.interpreter, signature)
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.batch_size = batch_size
        self._predictor = None if batch_size is None else \
            batch.Predictor(self.interpreter, batch_size=batch_size, signature=self.signature)
        self.input_columns = dict(input_columns or {})
        self.keep_columns = keep_columns
        self.stats = stats
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._names: tuple[str, ...] | None = None
        self._binding: dict[str, str] = {}
        self._kept: list[str] = []
        if batch_size is not None:
            self._warm_up()

    def _warm_up(self) -> None:
        """Plan and compile (or load from the cache) for the batch size now, while Ray starts the
        actor, so that the first batch is not slower than the rest and `stats` time the model."""
        zeros = {s.name: np.zeros((self.batch_size, *s.item_shape), s.dtype) for s in self.specs}
        self._predictor(zeros, progress=False)

    def __call__(self, data: Mapping[str, Any]) -> dict[str, np.ndarray]:
        names = tuple(data)
        if names != self._names:  # the same every batch in practice: bound once
            self._binding = columns.bind_columns(names, self.specs, self.input_columns)
            self._kept = columns.kept_columns(names, self._binding, self.keep_columns, self.outputs)
            self._names = names
        feeds = {s.name: columns.conform(data[self._binding[s.name]], s, self._binding[s.name])
                 for s in self.specs}
        n = len(next(iter(feeds.values())))
        if n == 0:
            return {}
        if self._predictor is None:
            self.batch_size = n
            self._predictor = batch.Predictor(self.interpreter, batch_size=n, signature=self.signature)
        start = time.perf_counter()
        outs = self._predictor(feeds, progress=False)
        seconds = time.perf_counter() - start
        result = dict(outs) if isinstance(outs, dict) else dict(zip(self.outputs, outs))
        for c in self._kept:
            result[c] = np.asarray(data[c])
        if self.stats:
            result[columns.WORKER_COLUMN] = np.full(n, self.worker, dtype=object)
            result[columns.SECONDS_COLUMN] = np.full(n, seconds / n)
        return result


def predict(dataset: Any, model: str | os.PathLike | bytes, *, batch_size: int = DEFAULT_BATCH_SIZE,
            workers: int = 2, num_threads: int = 1, signature: str | None = None,
            input_columns: Mapping[str, str] | None = None, keep_columns: Sequence[str] | bool | None = None,
            cache_dir: str | os.PathLike | None = None, compile_on_driver: bool = True, stats: bool = False,
            **interpreter_options: Any) -> Any:
    """`dataset` (a ray.data.Dataset) mapped through the model by `workers` actors of `num_threads`
    CPUs each: a lazy Dataset with the output columns (and the kept ones), like map_batches.

    The model (a path on the driver or its bytes) travels with the actors' constructor arguments
    (Ray keeps large ones in its object store), so workers need no shared file. Columns are
    bound and the schema checked here, before anything runs; with `compile_on_driver` the driver
    then runs one batch of zeros so the kernels for `batch_size` are in the compile cache before the
    actors start. cache_dir: the workers' TFLITE_JIT_CACHE_DIR (default: the driver's, when set;
    the same directory as the driver's is what lets them load its compile). Rows come out in
    Ray's order (set DataContext.execution_options.preserve_order for the input order) and Ray
    retries the batches of a worker that dies.
    """
    import ray

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    cpus = ray.cluster_resources().get("CPU", 0) if ray.is_initialized() else 0
    if cpus and workers * num_threads >= cpus:
        warnings.warn(f"tflite_jit.ray.predict: {workers} workers x {num_threads} threads take all {cpus:g} "
                      "CPUs of the Ray cluster; if the dataset reads files, Ray Data waits forever for a CPU "
                      "for its read tasks. Use fewer workers or start Ray with more num_cpus.",
                      RuntimeWarning, stacklevel=2)
    content = _model_bytes(model, None)
    # compile on the driver, into the cache the workers read (the one-batch warm-up below)
    it = Interpreter(model_content=content, num_threads=num_threads, **{"jit": "eager", **interpreter_options})
    signature, specs, outputs = columns.model_io(it, signature)
    schema = dataset.schema()
    if schema is None:
        raise ValueError("the dataset is empty (it has no schema): nothing to predict")
    names = list(schema.names)
    binding = columns.bind_columns(names, specs, input_columns)
    types = dict(zip(names, schema.types))
    for s in specs:
        dtype, shape = column_type(types[binding[s.name]])
        if dtype is not None:
            columns.check_type(binding[s.name], s, dtype, shape)
    kept = columns.kept_columns(names, binding, keep_columns, outputs)
    if compile_on_driver:
        zeros = {s.name: np.zeros((batch_size, *s.item_shape), s.dtype) for s in specs}
        batch.predict(it, zeros, batch_size=batch_size, signature=signature, progress=False)
    del it
    if cache_dir is None:
        cache_dir = os.environ.get("TFLITE_JIT_CACHE_DIR")
    kwargs = dict(model_content=content, signature=signature, batch_size=batch_size,
                  num_threads=num_threads, input_columns=binding, keep_columns=kept,
                  cache_dir=None if cache_dir is None else os.fspath(cache_dir), stats=stats,
                  **interpreter_options)
    # zero_copy_batch: the predictor only reads its input columns (set_tensor copies them into the
    # interpreter), so Ray need not copy every batch to make it writable
    return dataset.map_batches(TFLitePredictor, fn_constructor_kwargs=kwargs, batch_size=batch_size,
                               batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
                               num_cpus=num_threads, zero_copy_batch=True)


def column_type(typ: Any) -> tuple[np.dtype | None, tuple[int, ...] | None]:
    """(dtype, per-row shape) of a dataset schema's column type, as far as the schema says: Ray's
    tensor types and Arrow's fixed_shape_tensor carry both, a plain Arrow type is a scalar per row,
    a NumPy dtype (pandas blocks) likewise; a variable-shaped tensor has no shape (None), a list or
    an unknown type says nothing (None, None) and is checked batch by batch."""
    import pyarrow as pa

    if isinstance(typ, np.dtype):
        return typ, ()
    shape = getattr(typ, "shape", None)
    scalar = getattr(typ, "scalar_type", None)
    if scalar is not None:  # Ray's ArrowTensorType / ArrowVariableShapedTensorType
        dtype = np.dtype(scalar.to_pandas_dtype())
        return dtype, (tuple(int(d) for d in shape) if shape is not None else None)
    if isinstance(typ, pa.FixedShapeTensorType):
        return np.dtype(typ.value_type.to_pandas_dtype()), tuple(int(d) for d in typ.shape)
    if isinstance(typ, pa.DataType) and (pa.types.is_integer(typ) or pa.types.is_floating(typ)
                                         or pa.types.is_boolean(typ)):
        return np.dtype(typ.to_pandas_dtype()), ()
    if isinstance(typ, pa.DataType) and (pa.types.is_string(typ) or pa.types.is_binary(typ)
                                         or pa.types.is_large_string(typ) or pa.types.is_large_binary(typ)):
        return np.dtype(object), ()
    return None, None


def _model_bytes(model: Any, content: Any) -> bytes:
    if content is not None:
        if model is not None:
            raise ValueError("pass model_path or model_content, not both")
        if type(content).__name__ == "ObjectRef":
            import ray

            content = ray.get(content)
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise TypeError(f"model_content must be the model's bytes or an ObjectRef to them, got "
                            f"{type(content).__name__}")
        return bytes(content)
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    if isinstance(model, (str, os.PathLike)):
        try:
            with open(model, "rb") as f:
                return f.read()
        except OSError as e:
            raise ValueError(f"Could not open '{os.fspath(model)}': {e.strerror}") from None
    if model is None:
        raise ValueError("TFLitePredictor needs model_path (a .tflite file every worker can read) or "
                         "model_content (the model's bytes or an ObjectRef to them)")
    raise TypeError(f"model must be a .tflite path or the model's bytes, got {type(model).__name__}")
