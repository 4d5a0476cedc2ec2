"""`tflite-jit predict MODEL --input DATA --output OUT`: a model over a file of examples, here or on Ray.

Input: a .npy file (the examples of a one-input model), a .npz file or a .parquet file (one
column per input, named like the model's inputs or mapped with --column INPUT=COLUMN), or a
directory of such files (e.g. Ray's Parquet shards). Output: .parquet (the outputs as columns,
plus the input file's columns that feed no input, e.g. ids), .npz or .npy (one output). Without
--ray the examples run here through tflite_jit.batch.predict; with --ray (auto: the running
cluster, or a local one; else a cluster address) they run on `--workers` Ray actors through
tflite_jit.ray.predict, rows written in input order as they arrive. Either way it ends with a
summary: examples/s over the whole run and per worker (examples, busy seconds, ms per example).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections import defaultdict
from typing import Any

import numpy as np

from tflite_jit import batch, columns, tables
from tflite_jit.interpreter import Interpreter
from tflite_jit.tools.models_spec import UserError, load_model

#: (examples, seconds of the run, seconds of checks + plan + compile before it,
#: {worker: (examples, seconds inside the model)})
Summary = tuple[int, float, float, dict[str, tuple[int, float]]]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a .tflite file or a built-in model name")
    p.add_argument("--input", required=True, help="FILE.npy, FILE.npz, FILE.parquet or a directory of them")
    p.add_argument("--output", required=True, help="OUT.parquet, OUT.npz or OUT.npy (one output)")
    p.add_argument("--batch-size", type=int, default=batch.DEFAULT_BATCH_SIZE, help="examples per invoke "
                   f"(default {batch.DEFAULT_BATCH_SIZE})")
    p.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                   help="run on Ray: auto (the running cluster, else a local one) or a cluster address")
    p.add_argument("--workers", type=int, default=None, help="Ray actors (default 2; needs --ray)")
    p.add_argument("--num-threads", type=int, default=1, help="threads per interpreter (default 1)")
    p.add_argument("--signature", default=None, help="signature key (default: the model's only one, "
                   "serving_default, or tensor names for a model without signatures)")
    p.add_argument("--column", action="append", default=[], metavar="INPUT=COLUMN",
                   help="feed model input INPUT from column COLUMN (repeatable)")
    p.add_argument("--backend", default=None, help="numba (default) or reference")
    p.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                   help="progress bar on stderr (auto: on a terminal)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise UserError("--batch-size must be >= 1")
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be >= 1")
    if args.workers is not None and args.ray is None:
        raise UserError("--workers needs --ray (here, use --num-threads; or --ray auto for a local Ray)")
    mapping = {}
    for item in args.column:
        name, sep, col = item.partition("=")
        if not sep or not name or not col:
            raise UserError(f"--column {item!r}: expected INPUT=COLUMN")
        mapping[name] = col
    try:
        out_format = tables.file_format(args.output)
        if out_format == ".parquet" or _is_parquet(args.input):
            tables.require_pyarrow()
    except (ValueError, ImportError) as e:
        raise UserError(str(e)) from None
    content, _ = load_model(args.model)
    options = {"backend": args.backend} if args.backend else {}
    progress = {"auto": None, "on": True, "off": False}[args.progress]
    try:
        if args.ray is None:
            stats = _run_here(content, args, mapping, out_format, progress, options)
        else:
            stats = _run_on_ray(content, args, mapping, out_format, progress, options)
    except ValueError as e:
        raise UserError(" ".join(str(e).split())) from None
    print(format_summary(*stats))
    return 0


def _is_parquet(path: str) -> bool:
    if os.path.isdir(path):
        return any(f.lower().endswith(".parquet") for f in os.listdir(path))
    return path.lower().endswith(".parquet")


def _open(content: bytes, args: argparse.Namespace, options: dict[str, Any]) -> Interpreter:
    try:
        return Interpreter(model_content=content, num_threads=args.num_threads, **{"jit": "eager", **options})
    except ValueError as e:
        raise UserError(f"{args.model} is not a valid .tflite model: {' '.join(str(e).split())}") from None


def _run_here(content: bytes, args: argparse.Namespace, mapping: dict[str, str], out_format: str,
              progress: bool | None, options: dict[str, Any]) -> Summary:
    it = _open(content, args, options)
    signature, specs, outputs = columns.model_io(it, args.signature)
    data = tables.read(args.input)
    binding = columns.bind_columns(list(data), specs, mapping)
    keep = columns.kept_columns(list(data), binding, None if out_format != ".npy" else False, outputs)
    feeds = {s.name: columns.conform(data[binding[s.name]], s, binding[s.name]) for s in specs}
    run = batch.Predictor(it, batch_size=args.batch_size, signature=signature)
    start = time.perf_counter()  # plan + compile (or load) first, so the rate is the model's
    run({k: v[:args.batch_size] for k, v in feeds.items()}, progress=False)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    outs = run(feeds, progress=progress)
    seconds = time.perf_counter() - start
    result = dict(outs) if isinstance(outs, dict) else dict(zip(outputs, outs))
    n = len(next(iter(result.values())))
    tables.write(args.output, result | {c: data[c] for c in keep})
    return n, seconds, compile_s, {"local": (n, seconds)}


def _run_on_ray(content: bytes, args: argparse.Namespace, mapping: dict[str, str], out_format: str,
                progress: bool | None, options: dict[str, Any]) -> Summary:
    try:
        import ray
        import ray.data
    except ImportError:
        raise UserError("--ray needs Ray: pip install 'tflite-jit[ray]'") from None
    from tflite_jit import ray as tray

    _open(content, args, options)  # a bad model fails here, before a cluster starts
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # our summary replaces its progress lines
    workers = args.workers or 2
    if not ray.is_initialized():
        _connect(ray, args.ray, workers * args.num_threads)
    # before the dataset exists: a Ray Dataset snapshots the DataContext when it is created, so
    # setting preserve_order afterwards left the rows in completion order under load
    ctx = ray.data.DataContext.get_current()
    preserve, ctx.execution_options.preserve_order = ctx.execution_options.preserve_order, True
    verbose, ctx.enable_progress_bars = ctx.enable_progress_bars, False
    try:
        ds, total = _dataset(ray, args.input, blocks=4 * workers)
    except BaseException:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = preserve, verbose
        raise
    keep = False if out_format == ".npy" else None
    per_worker: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    chunks: list[dict[str, np.ndarray]] = []
    writer = tables.ParquetWriter(args.output) if out_format == ".parquet" else None
    n = 0
    try:
        start = time.perf_counter()  # checks the columns, then plans + compiles on the driver
        out = tray.predict(ds, content, batch_size=args.batch_size, workers=workers,
                           num_threads=args.num_threads, signature=args.signature, input_columns=mapping,
                           keep_columns=keep, stats=True, **options)
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        with batch.progress_bar(progress, total) as bar:
            for rows in out.iter_batches(batch_size=None, batch_format="numpy"):
                who, secs = rows.pop(columns.WORKER_COLUMN), rows.pop(columns.SECONDS_COLUMN)
                for w, s in zip(who, secs):
                    per_worker[str(w)][0] += 1
                    per_worker[str(w)][1] += float(s)
                if writer is not None:
                    writer.write(rows)
                else:
                    chunks.append(rows)
                n += len(secs)
                bar.update(len(secs))
        seconds = time.perf_counter() - start
        if writer is not None:
            writer.close()
        elif chunks:
            tables.write(args.output, {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]})
    except BaseException:
        if writer is not None:
            writer.close(ok=False)
        raise
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = preserve, verbose
    if n == 0:
        raise UserError(f"{args.input}: no examples")
    return n, seconds, compile_s, {w: (int(c), s) for w, (c, s) in sorted(per_worker.items())}


def _connect(ray: Any, address: str, cpus_wanted: int) -> None:
    """auto: the running cluster if there is one, else a local Ray with a CPU slot per worker
    thread plus one, so the tasks that read the input are not starved by the actors (Ray Data
    waits forever for a CPU when the actors hold them all)."""
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "warning"}
    if address != "auto":
        ray.init(address=address, **quiet)
        return
    try:
        ray.init(address="auto", **quiet)
    except ConnectionError:
        ray.init(num_cpus=max(os.cpu_count() or 1, cpus_wanted + 1), **quiet)


def _dataset(ray: Any, path: str, blocks: int) -> tuple[Any, int]:
    """(A Ray dataset over the input, its row count from the files' metadata), in at least `blocks`
    blocks so that every worker gets work (one small file is one block, which would keep all but
    one worker idle). Parquet is read by Ray's readers (streamed, in parallel); .npy/.npz are read
    here and handed over as Arrow."""
    if _is_parquet(path):
        import pyarrow.parquet as pq

        files = [path] if not os.path.isdir(path) else \
            sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(".parquet"))
        total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        ds = ray.data.read_parquet(files)
        return (ds.repartition(blocks) if len(files) < blocks else ds), total
    data = tables.read(path)
    return ray.data.from_arrow(tables.to_arrow(data)).repartition(blocks), len(next(iter(data.values())))


def format_summary(n: int, seconds: float, compile_s: float, per_worker: dict[str, tuple[int, float]]) -> str:
    """One line for the run and one per worker: examples, model seconds, ms per example."""
    rate = n / seconds if seconds > 0 else float("inf")
    lines = [f"predict: {n} examples in {seconds:.2f} s = {rate:.1f} examples/s "
             f"({len(per_worker)} worker{'s' if len(per_worker) != 1 else ''}; checks, plan and compile "
             f"before: {compile_s:.2f} s)",
             f"{'worker':<24} {'examples':>9} {'busy s':>8} {'ms/example':>11}"]
    for w, (count, busy) in per_worker.items():
        lines.append(f"{w:<24} {count:>9} {busy:>8.2f} {1000 * busy / max(count, 1):>11.3f}")
    return "\n".join(lines)

