"""Run a model over many inputs: `tflite_jit.batch.predict(model, inputs)`.

Why a function of its own: the loop everyone writes around `set_tensor` / `invoke` /
`get_tensor` either runs one example per invoke (per-call overhead dominates small models) or
resizes per call (every new shape is a re-plan). `predict` resizes once to `batch_size` when the
model's first axis is a batch axis it can resize, pads the last batch by repeating its last
example (so the shape never changes and no re-plan happens; repeating rather than zero-filling
avoids values the model never sees, e.g. log(0)) and drops the padding from the results. Inputs
are checked against the model before anything runs, so a wrong dtype or shape fails in
milliseconds with the input's name instead of after an hour of work (docs/scale-out.md).
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from tflite_jit import tables
from tflite_jit.interpreter import Interpreter

DEFAULT_BATCH_SIZE = 32


class InputSpec:
    """One model input as predict sees it: its name, dtype, per-example shape and declared batch
    (public: tflite_jit.ray and the predict CLI check their columns against it)."""

    def __init__(self, name: str, index: int, shape: Sequence[int], signature: Sequence[int], dtype: Any):
        if len(shape) == 0:
            raise ValueError(f"input {name!r} is a scalar: predict needs a batch axis (the first axis) "
                             "on every input")
        self.name = name
        self.index = index
        self.dtype = np.dtype(dtype)
        self.item_shape = tuple(int(d) for d in shape[1:])
        self.batch = int(shape[0])
        self.resizable = int(signature[0]) == -1 or self.batch == 1
        self.declared = list(int(d) for d in signature)

    def check(self, arr: np.ndarray, where: str, stacked: bool) -> None:
        shape = arr.shape[1:] if stacked else arr.shape
        if arr.dtype != self.dtype or tuple(shape) != self.item_shape:
            what = "examples of shape (N, *item)" if stacked else "one example"
            raise ValueError(
                f"input {self.name!r}{where}: expected {self.dtype} with per-example shape "
                f"{self.item_shape} (the model's input is {self.declared}, first axis = batch), got "
                f"{arr.dtype} with shape {tuple(arr.shape)} ({what})")


def predict(model: str | os.PathLike | bytes | Interpreter, inputs: Any, *,
            batch_size: int = DEFAULT_BATCH_SIZE, num_threads: int | None = None,
            signature: str | None = None, progress: bool | None = None,
            output: str | os.PathLike | None = None,
            **interpreter_options: Any) -> list[np.ndarray] | dict[str, np.ndarray]:
    """Run `model` over every example in `inputs` and return the stacked outputs.

    model: a .tflite path, the model's bytes, or an Interpreter (which is resized and left
    allocated at the batch size used). inputs: an array (N, *item) for a one-input model; a dict
    {input name: array (N, *item)}; or an iterable of examples, each an array (one-input model),
    a dict by input name, or a tuple of arrays in input-detail order. Input names are the
    signature's input names when `signature` is given, else the tensor names of
    get_input_details(). Returns a list of arrays in output-detail order (or a dict by output name
    for a signature), each with the examples along the first axis. `output` also writes them: a
    path ending .npy (one output), .npz (keyed by output name) or .parquet (one row per example,
    one column per output, tensors as Arrow's fixed_shape_tensor; needs pyarrow; see
    tflite_jit.tables). `progress`: a tqdm bar on stderr (None: only when stderr is a terminal and
    the run takes over a second).
    `interpreter_options` go to Interpreter() when predict opens the model (backend=, fusion=...).

    Stacked arrays and sequences are checked in full before anything runs; examples from a
    generator are checked as they are drawn, before the batch that holds them runs.
    """
    return Predictor(model, batch_size=batch_size, num_threads=num_threads, signature=signature,
                     **interpreter_options)(inputs, progress=progress, output=output)


class Predictor:
    """`predict` for many calls on one model: the interpreter is planned (and compiled) for the
    batch size at the first call and stays so, so later calls are invokes only. Why: a worker
    that gets its examples in batches (a Ray actor, a Dask task on a long-lived thread) would
    otherwise resize and re-allocate per call, and allocate_tensors() re-plans the subgraph
    (a MobileNetV2 at 96 px: ~120 ms of planning per call for ~10 ms of work).

    Arguments as for `predict`; `specs` and `output_names` say what it expects and returns.
    """

    def __init__(self, model: str | os.PathLike | bytes | Interpreter, *,
                 batch_size: int = DEFAULT_BATCH_SIZE, num_threads: int | None = None,
                 signature: str | None = None, **interpreter_options: Any):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.interpreter = it = _open(model, num_threads, interpreter_options)
        self.signature = signature
        runner = it.get_signature_runner(signature) if signature is not None else None
        self.specs = input_specs(it, runner)
        self.output_names = output_names(it, runner)
        self._out_indices = _output_indices(it, runner)
        if runner is not None and _is_main_subgraph(it, runner):
            runner = None  # a live SignatureRunner blocks invoke() (LiteRT's rule)
        self._runner = runner
        self._batch = _batch_size(self.specs, batch_size)
        self._run: _Runner | None = None

    def __call__(self, inputs: Any, *, progress: bool | None = None,
                 output: str | os.PathLike | None = None) -> list[np.ndarray] | dict[str, np.ndarray]:
        """The outputs for `inputs` (the forms `predict` takes), checked before anything runs."""
        writer = _writer_suffix(output)
        out_names = self.output_names
        if writer == ".npy" and len(out_names) != 1:
            raise ValueError(f"output={os.fspath(output)!r}: a .npy file holds one array but the model has "
                             f"{len(out_names)} outputs ({', '.join(out_names)}); write .npz or .parquet")
        if writer == ".parquet":
            tables.require_pyarrow()  # before the work, not after it
        total, examples = _examples(inputs, self.specs)
        if self._run is None:  # plans and compiles: only once the inputs passed their checks
            self._run = _Runner(self.interpreter, self._runner, self.specs, self._out_indices, self._batch)
        run = self._run
        chunks: list[list[np.ndarray]] = [[] for _ in out_names]
        with progress_bar(progress, total) as bar:
            for rows, n in _batches(examples, self.specs, run.batch):
                for k, out in enumerate(run(rows, n)):
                    chunks[k].append(_take(out, n))
                bar.update(n)
        if not chunks or not chunks[0]:
            raise ValueError("predict got no examples: `inputs` is empty")
        results = [_stack(c, name) for c, name in zip(chunks, out_names)]
        if writer is not None:
            tables.write(output, dict(zip(out_names, results)))
        return dict(zip(out_names, results)) if self.signature is not None else results


def _writer_suffix(output: str | os.PathLike | None) -> str | None:
    return None if output is None else tables.file_format(output)


def _open(model: Any, num_threads: int | None, options: dict[str, Any]) -> Interpreter:
    if isinstance(model, Interpreter):
        if num_threads is not None or options:
            given = ["num_threads"] * (num_threads is not None) + sorted(options)
            raise ValueError(f"{', '.join(given)} apply when predict opens the model; this Interpreter "
                             "is already open (pass them to Interpreter() instead)")
        return model
    # a batch job wants every item on the same, compiled kernels (bitwise identical results
    # whatever the batch, and full speed): compile before the first batch unless told otherwise
    options = {"jit": "eager", **options}
    if isinstance(model, (bytes, bytearray, memoryview)):
        return Interpreter(model_content=bytes(model), num_threads=num_threads, **options)
    if isinstance(model, (str, os.PathLike)):
        return Interpreter(model_path=model, num_threads=num_threads, **options)
    raise TypeError(f"model must be a .tflite path, bytes or a tflite_jit.Interpreter, got "
                    f"{type(model).__name__}")


def input_specs(it: Interpreter, runner: Any = None) -> list[InputSpec]:
    """The inputs predict feeds: the signature runner's by input name, else the interpreter's by
    tensor name."""
    details = runner.get_input_details().items() if runner is not None else \
        ((d["name"], d) for d in it.get_input_details())
    return [InputSpec(name, d["index"], d["shape"], d["shape_signature"], d["dtype"]) for name, d in details]


def output_names(it: Interpreter, runner: Any = None) -> list[str]:
    """The names predict gives the outputs: the signature's output names, else the tensor names."""
    if runner is not None:
        return list(runner.get_output_details())
    return [d["name"] for d in it.get_output_details()]


def _output_indices(it: Interpreter, runner: Any) -> list[int]:
    details = runner.get_output_details().values() if runner is not None else it.get_output_details()
    return [int(d["index"]) for d in details]


def _is_main_subgraph(it: Interpreter, runner: Any) -> bool:
    """Whether the signature is subgraph 0's inputs and outputs (the usual single-signature
    model): then predict drives the interpreter directly, without a runner's per-call input
    checks and output copies."""
    def key(details: Any) -> set[tuple[int, str]]:
        return {(int(d["index"]), d["name"]) for d in details}

    return (key(runner.get_input_details().values()) == key(it.get_input_details())
            and key(runner.get_output_details().values()) == key(it.get_output_details()))


def _batch_size(specs: list[InputSpec], wanted: int) -> int:
    """The batch to run: `wanted` when every input's batch axis may be resized, else the model's
    own (1: example by example)."""
    if all(s.resizable for s in specs):
        return wanted
    fixed = {s.batch for s in specs}
    if len(fixed) != 1:
        raise ValueError("the model's inputs have different fixed batch sizes "
                         f"({', '.join(f'{s.name}: {s.batch}' for s in specs)}): predict needs one batch axis")
    return fixed.pop()


def _examples(inputs: Any, specs: list[InputSpec]) -> tuple[int | None, Iterator[dict[str, np.ndarray]] | dict]:
    """(count if known, the examples): a dict of stacked arrays (checked here), or an iterator of
    per-example dicts (a sequence is checked here in full, a generator as it is drawn)."""
    names = [s.name for s in specs]
    if isinstance(inputs, np.ndarray) or isinstance(inputs, Mapping):
        stacked = _as_named(inputs, specs, " (stacked inputs)")
        for s in specs:
            arr = stacked[s.name]
            if arr.ndim == 0:
                raise ValueError(f"input {s.name!r}: expected an array (N, *{s.item_shape}), got a scalar")
            s.check(arr, "", stacked=True)
        counts = {len(a) for a in stacked.values()}
        if len(counts) != 1:
            raise ValueError("stacked inputs have different numbers of examples: "
                             + ", ".join(f"{n}: {len(stacked[n])}" for n in names))
        return counts.pop(), stacked
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Iterable):
        raise TypeError(f"inputs must be an array, a dict of arrays or an iterable of examples, got "
                        f"{type(inputs).__name__}")

    def checked(items: Iterable[Any]) -> Iterator[dict[str, np.ndarray]]:
        for i, item in enumerate(items):
            ex = _as_named(item, specs, f" (example {i})")
            for s in specs:
                s.check(ex[s.name], f" (example {i})", stacked=False)
            yield ex

    if isinstance(inputs, Sequence):
        examples = list(checked(inputs))
        return len(examples), iter(examples)
    return None, checked(inputs)


def _as_named(value: Any, specs: list[InputSpec], where: str) -> dict[str, np.ndarray]:
    names = [s.name for s in specs]
    if isinstance(value, Mapping):
        missing = [s for s in specs if s.name not in value]
        if missing:
            s = missing[0]
            raise ValueError(f"input {s.name!r}{where} is missing: expected {s.dtype} with per-example "
                             f"shape {s.item_shape}; the model's inputs are {names}")
        extra = sorted(set(value) - set(names), key=str)
        if extra:
            raise ValueError(f"unknown input name(s) {extra}{where}: the model's inputs are {names}")
        return {n: np.asarray(value[n]) for n in names}
    if isinstance(value, (tuple, list)):
        if len(value) != len(specs):
            raise ValueError(f"{len(value)} arrays given{where} but the model has {len(specs)} inputs "
                             f"{names}")
        return {n: np.asarray(v) for n, v in zip(names, value)}
    if len(specs) != 1:
        raise ValueError(f"one array given{where} but the model has {len(specs)} inputs {names}: "
                         "pass a dict by input name")
    return {names[0]: np.asarray(value)}


def _batches(examples: Iterator[dict[str, np.ndarray]] | dict[str, np.ndarray], specs: list[InputSpec],
             size: int) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """(rows padded to `size` by repeating the last example, number of real rows)."""
    if isinstance(examples, dict):
        total = len(next(iter(examples.values())))
        for start in range(0, total, size):
            rows = {n: a[start:start + size] for n, a in examples.items()}
            yield _pad(rows, size), len(next(iter(rows.values())))
        return
    while True:
        group = list(itertools.islice(examples, size))
        if not group:
            return
        rows = {s.name: np.stack([ex[s.name] for ex in group]) for s in specs}
        yield _pad(rows, size), len(group)


def _pad(rows: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    n = len(next(iter(rows.values())))
    if n == size:
        return {k: np.ascontiguousarray(v) for k, v in rows.items()}
    return {k: np.concatenate([v, np.repeat(v[-1:], size - n, axis=0)]) for k, v in rows.items()}


class _Runner:
    """Runs one padded batch. The batch size settles on the first batch: when the model refuses
    the resize (a RESHAPE to a constant batch-1 shape, say) or an output comes back without the
    batch along its first axis, it goes back to one example per invoke."""

    def __init__(self, it: Interpreter, runner: Any, specs: list[InputSpec], out_indices: list[int], batch: int):
        self.it, self.runner, self.specs, self.batch = it, runner, specs, batch
        self.out_indices = out_indices
        self.settled = batch == 1
        if runner is None:
            try:
                self._resize(batch)
            except RuntimeError:
                if batch == 1:
                    raise
                self._one_by_one()

    def _one_by_one(self) -> None:
        self.batch, self.settled = 1, True
        if self.runner is None:
            self._resize(1)

    def _resize(self, batch: int) -> None:
        for s in self.specs:
            self.it.resize_tensor_input(s.index, (batch, *s.item_shape))
        self.it.allocate_tensors()

    def _invoke(self, rows: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self.runner is not None:
            outs = list(self.runner(**rows).values())
        else:
            for s in self.specs:
                self.it.set_tensor(s.index, rows[s.name])
            self.it.invoke()
            outs = [self.it.get_tensor(i) for i in self.out_indices]
        if self.batch == 1:  # an output without a batch axis gets one
            outs = [o if o.ndim and o.shape[0] == 1 else o[None] for o in outs]
        return outs

    def __call__(self, rows: dict[str, np.ndarray], n: int) -> list[np.ndarray]:
        """Outputs for the first n of `rows` (a full, padded batch), batch along the first axis."""
        if not self.settled:
            self.settled = True
            try:
                outs = self._invoke(rows)
            except RuntimeError:  # a signature runner plans at its first call
                outs = None
            if outs is not None and all(o.ndim and o.shape[0] == self.batch for o in outs):
                return outs
            self._one_by_one()
        if len(next(iter(rows.values()))) == self.batch:
            return self._invoke(rows)
        per = [self._invoke({k: v[i:i + 1] for k, v in rows.items()}) for i in range(n)]
        return [np.concatenate([p[k] for p in per]) for k in range(len(per[0]))]


def _take(out: np.ndarray, n: int) -> np.ndarray:
    """The first n examples of one batch's output (the padding dropped)."""
    return out[:n] if n < out.shape[0] else out


def _stack(chunks: list[np.ndarray], name: str) -> np.ndarray:
    try:
        return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
    except ValueError:
        shapes = sorted({c.shape[1:] for c in chunks})
        raise ValueError(f"output {name!r} changes shape between examples ({shapes}): it cannot be "
                         "stacked") from None


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def progress_bar(progress: bool | None, total: int | None) -> Any:
    """A tqdm bar: always when progress=True; when None only on a terminal and only after the run
    has taken a second (short runs print nothing)."""
    if progress is False or (progress is None and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())):
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="tflite_jit: predict", unit="example", delay=0.0 if progress else 1.0)
