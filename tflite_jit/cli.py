"""`tflite-jit` command line. `bench` speaks TFLite benchmark_model's flags and output format.

argparse (stdlib) handles benchmark_model's `--name=value` syntax directly, so scripts written
for benchmark_model need no changes; booleans accept true/false like the C++ flag parser.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

import numpy as np


def _bool(v: str) -> bool:
    s = v.strip().lower()
    if s in ("true", "1", "yes"):
        return True
    if s in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {v!r}")


def _log(msg: str) -> None:
    print(f"INFO: {msg}", flush=True)


class Stats:
    """benchmark_model's stats line: population std, integer µs except the average."""

    def __init__(self) -> None:
        self.values: list[int] = []

    def add(self, us: int) -> None:
        self.values.append(us)

    def line(self) -> str:
        v = self.values
        if not v:
            return "count=0"
        if min(v) == max(v):
            return f"count={len(v)} curr={v[-1]}(all same)"
        a = np.asarray(v, dtype=np.float64)
        return (f"count={len(v)} first={v[0]} curr={v[-1]} min={min(v)} max={max(v)} "
                f"avg={a.mean():g} std={int(round(a.std()))}")

    @property
    def avg(self) -> float:
        return float(np.mean(self.values)) if self.values else 0.0

    @property
    def median(self) -> float:
        return float(np.median(self.values)) if self.values else 0.0


def _random_input(shape: Sequence[int], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    """benchmark_model's random input ranges, per dtype."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.uniform(-0.5, 0.5, size=shape).astype(dt)
    if dt == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    lo, hi = {np.dtype(np.uint8): (0, 254), np.dtype(np.int8): (-127, 127)}.get(dt, (0, 99))
    return rng.integers(lo, hi + 1, size=shape).astype(dt)


def _run_loop(invoke, set_inputs, min_runs: int, min_secs: float, max_secs: float,
              run_delay: float) -> Stats:
    stats = Stats()
    start = time.perf_counter()
    i = 0
    while True:
        elapsed = time.perf_counter() - start
        if not ((i < min_runs or elapsed < min_secs) and elapsed <= max_secs):
            break
        set_inputs()
        t0 = time.perf_counter_ns()
        invoke()
        stats.add((time.perf_counter_ns() - t0) // 1000)
        i += 1
        if run_delay > 0:
            time.sleep(run_delay)
    return stats


def bench(args: argparse.Namespace) -> int:
    from tflite_jit import Interpreter

    _log("STARTING!")
    if args.graph:
        _log(f"Graph: [{args.graph}]")
    if args.num_runs != 50:
        _log(f"Min num runs: [{args.num_runs}]")
    if args.num_threads != -1:
        _log(f"Num threads: [{args.num_threads}]")
    if args.graph:
        if not os.path.exists(args.graph):
            _log(f"Could not open '{args.graph}'.")
            _log("Benchmarking failed.")
            return 1
        with open(args.graph, "rb") as f:
            content = f.read()
        name = args.graph
    else:
        from tflite_jit.models import tiny_convnet

        content = tiny_convnet()
        name = "<built-in demo model: tiny_convnet>"
        _log("No --graph given: running the built-in demo model (pass --graph=MODEL.tflite for yours)")
    _log(f"Loaded model {name}")
    _log(f"The input model file size (MB): {len(content) / 1e6:g}")
    threads = None if args.num_threads == -1 else args.num_threads
    t0 = time.perf_counter()
    try:
        it = Interpreter(model_content=content, num_threads=threads, backend=args.backend,
                         fusion=args.fusion)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        _log(str(e).strip())
        _log("Benchmarking failed.")
        return 1
    init_ms = (time.perf_counter() - t0) * 1000
    _log(f"Initialized session in {init_ms:g}ms.")
    ex = it._interpreter.execs[0]
    by_backend: dict[str, int] = {}
    for step in ex.steps:
        by_backend[step.backend] = by_backend.get(step.backend, 0) + len(step.cluster.ops)
    _log(f"tflite_jit: {len(ex.sg.ops)} ops in {len(ex.steps)} kernels; ops per backend: "
         + ", ".join(f"{k}={v}" for k, v in sorted(by_backend.items()))
         + f"; arena {ex.arena_bytes / 1e6:g} MB (Init includes compiling; cached kernels load fast)")
    rng = np.random.default_rng(0)
    details = it.get_input_details()
    inputs = [_random_input(d["shape"], d["dtype"], rng) for d in details]

    def set_inputs() -> None:
        for d, x in zip(details, inputs):
            it.set_tensor(d["index"], x)

    litert = None
    if args.compare_litert:
        try:
            from ai_edge_litert.interpreter import Interpreter as LiteInterpreter
        except ImportError:
            _log("--compare_litert needs ai-edge-litert (pip install 'tflite-jit[test]')")
            return 1
        litert = LiteInterpreter(model_content=content, num_threads=threads)
        litert.allocate_tensors()

    _log(f"Running benchmark for at least {args.warmup_runs} iterations and at least "
         f"{args.warmup_min_secs:g} seconds but terminate if exceeding {args.max_secs:g} seconds.")
    warm = _run_loop(it.invoke, set_inputs, args.warmup_runs, args.warmup_min_secs, args.max_secs,
                     args.run_delay)
    _log(warm.line())
    print()
    _log(f"Running benchmark for at least {args.num_runs} iterations and at least {args.min_secs:g} "
         f"seconds but terminate if exceeding {args.max_secs:g} seconds.")
    if litert is None:
        runs = _run_loop(it.invoke, set_inputs, args.num_runs, args.min_secs, args.max_secs, args.run_delay)
    else:
        runs, lite_runs = _alternate(it, litert, inputs, details, args)
    _log(runs.line())
    print()
    first = warm.values[0] if warm.values else 0
    _log(f"Inference timings in us: Init: {int(init_ms * 1000)}, First inference: {first}, "
         f"Warmup (avg): {warm.avg:g}, Inference (avg): {runs.avg:g}")
    if litert is not None:
        _log(f"LiteRT (XNNPACK) timings in us: {lite_runs.line()}")
        _log(f"Median latency tflite_jit / LiteRT: {runs.median / max(lite_runs.median, 1):.2f}x "
             f"({runs.median:g} us vs {lite_runs.median:g} us)")
    return 0


def _alternate(it, litert, inputs, details, args) -> tuple[Stats, Stats]:
    """Time ours and LiteRT in one loop, alternating, so machine noise hits both alike."""
    ours, theirs = Stats(), Stats()
    lite_details = litert.get_input_details()
    start = time.perf_counter()
    i = 0
    while ((i < args.num_runs or time.perf_counter() - start < args.min_secs)
           and time.perf_counter() - start <= args.max_secs):
        for d, x in zip(details, inputs):
            it.set_tensor(d["index"], x)
        t0 = time.perf_counter_ns()
        it.invoke()
        ours.add((time.perf_counter_ns() - t0) // 1000)
        for d, x in zip(lite_details, inputs):
            litert.set_tensor(d["index"], x)
        t0 = time.perf_counter_ns()
        litert.invoke()
        theirs.add((time.perf_counter_ns() - t0) // 1000)
        i += 1
    return ours, theirs


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tflite-jit", description=__doc__)
    sub = p.add_subparsers(dest="command")
    b = sub.add_parser("bench", help="benchmark a model (TFLite benchmark_model flags and output)")
    b.add_argument("--graph", default="", help="the .tflite model (default: a built-in demo model)")
    b.add_argument("--num_runs", type=int, default=50)
    b.add_argument("--min_secs", type=float, default=1.0)
    b.add_argument("--max_secs", type=float, default=150.0)
    b.add_argument("--warmup_runs", type=int, default=1)
    b.add_argument("--warmup_min_secs", type=float, default=0.5)
    b.add_argument("--run_delay", type=float, default=-1.0)
    b.add_argument("--num_threads", type=int, default=-1)
    b.add_argument("--backend", default=None, help="tflite_jit backend: numba (default) or reference")
    b.add_argument("--fusion", default=None,
                   help="fusion strategy: none, epilogue (default), elementwise, rules, greedy_cost")
    b.add_argument("--compare_litert", type=_bool, nargs="?", const=True, default=False,
                   help="also time LiteRT (XNNPACK) in the same run, alternating, and print the ratio")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["bench"]
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        return bench(args)
    build_parser().print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
