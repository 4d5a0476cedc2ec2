"""tflite_jit against LiteRT (XNNPACK and builtin kernels), timed side by side.

    python benchmarks/side_by_side.py [--models mobilenet_v2,resnet50,path/to/model.tflite]
        [--threads 2] [--runs 30] [--backend numba] [--fusion epilogue] [--json out.json]
        [--harness isolated|shared]

Each round runs every engine, in rotating order, so machine noise (this is a shared 2-core box)
hits all of them alike; we report medians and the ratio of medians, plus the geometric mean of
tflite_jit / XNNPACK over the models. First-run (compile) time is reported separately. By default
each engine runs in its own worker process and is timed alone (benchmarks/isolated.py), because in
one process the engines' idle thread pools spin while the next engine runs; `--harness shared`
is the one-process loop (time_engines: one invoke per engine per round).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any

import numpy as np

from tflite_jit import Interpreter
from tflite_jit.tools import models

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)

DEFAULT_MODELS = ["one_op", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "resnet50",
                  "transformer_encoder"]


def one_op() -> bytes:
    """A single 3x3 conv (56x56x64 -> 64): kernel quality without graph effects."""
    from tflite_jit.format.builder import ModelBuilder

    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 56, 56, 64), np.float32)
    w = g.const("w", rng.standard_normal((64, 3, 3, 64), dtype=np.float32) * 0.05)
    b = g.const("b", rng.standard_normal(64, dtype=np.float32))
    (y,) = g.apply("CONV_2D", [x, w, b], padding="SAME", stride_w=1, stride_h=1,
                   fused_activation_function="RELU6")
    g.output(y)
    return mb.build()


def _model(name: str) -> bytes:
    """A built-in model by name, or a .tflite file by path (e.g. MediaPipe's models)."""
    if name.endswith(".tflite"):
        with open(name, "rb") as f:
            return f.read()
    return one_op() if name == "one_op" else models.build(name)


def inputs_for(it: Any, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for d in it.get_input_details():
        if np.dtype(d["dtype"]).kind in "iu":
            out.append(rng.integers(0, 100, d["shape"]).astype(d["dtype"]))
        else:
            out.append(rng.uniform(-0.5, 0.5, d["shape"]).astype(d["dtype"]))
    return out


def _runner(it: Any, xs: list[np.ndarray]):
    idx = [d["index"] for d in it.get_input_details()]

    def run() -> float:
        for i, x in zip(idx, xs):
            it.set_tensor(i, x)
        t0 = time.perf_counter()
        it.invoke()
        return time.perf_counter() - t0

    return run


def litert_engine(content: bytes, threads: int, kind: str) -> Any:
    """LiteRT, unallocated: 'litert_xnnpack' (its default XNNPACK delegate) or 'litert_builtin'
    (builtin kernels only)."""
    from ai_edge_litert import interpreter as lite

    if kind == "litert_xnnpack":
        return lite.Interpreter(model_content=content, num_threads=threads)
    if kind == "litert_builtin":
        return lite.Interpreter(model_content=content, num_threads=threads,
                                experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    raise ValueError(f"unknown LiteRT engine {kind!r}")


def litert_engines(content: bytes, threads: int) -> dict[str, Any]:
    """LiteRT with its default XNNPACK delegate and with builtin kernels only, unallocated."""
    return {k: litert_engine(content, threads, k) for k in ("litert_xnnpack", "litert_builtin")}


def time_engines(engines: dict[str, Any], xs: list[np.ndarray], runs: int) -> dict[str, Any]:
    """Medians and p90s (ms) of `runs` invokes per allocated engine, one warm-up each; each round
    runs every engine once in rotating order, so machine noise hits all of them alike."""
    runners = {k: _runner(it, xs) for k, it in engines.items()}
    for r in runners.values():  # warm-up
        r()
    times: dict[str, list[float]] = {k: [] for k in engines}
    keys = list(engines)
    for i in range(runs):
        j = i % len(keys)
        for k in keys[j:] + keys[:j]:
            times[k].append(runners[k]())
    return {"median_ms": {k: float(np.median(v)) * 1e3 for k, v in times.items()},
            "p90_ms": {k: float(np.percentile(v, 90)) * 1e3 for k, v in times.items()}}


def _time_shared(content: bytes, threads: int, runs: int, backend: str, fusion: str
                 ) -> tuple[float, float, dict[str, Any]]:
    """prepare_s, first invoke, timings: the three engines in this process, invokes interleaved."""
    t0 = time.perf_counter()
    ours = Interpreter(model_content=content, num_threads=threads, backend=backend, fusion=fusion)
    ours.allocate_tensors()
    prepare_s = time.perf_counter() - t0
    engines = {"tflite_jit": ours, **litert_engines(content, threads)}
    xs = inputs_for(ours, np.random.default_rng(0))
    for k, it in engines.items():
        if k != "tflite_jit":
            it.allocate_tensors()
    first = _runner(ours, xs)()
    return prepare_s, first, time_engines(engines, xs, runs)


def _time_isolated(content: bytes, threads: int, runs: int, backend: str, fusion: str
                   ) -> tuple[float, float, dict[str, Any]]:
    """The same, each engine in its own worker process, timed one at a time (benchmarks/isolated.py)."""
    from benchmarks.isolated import EngineFailed, EngineWorker, time_isolated

    workers = {k: EngineWorker(k) for k in ("tflite_jit", "litert_xnnpack", "litert_builtin")}
    try:
        for w in workers.values():
            w.load(content, threads, backend, fusion)
        xs = workers["tflite_jit"].inputs(0)
        for w in list(workers.values())[1:]:
            w.set_inputs(xs)
        first = workers["tflite_jit"].outputs()[1]
        t, failed = time_isolated(workers, runs)
        if failed:
            raise EngineFailed("; ".join(failed.values()))
        return workers["tflite_jit"].prepare_s, first, t
    finally:
        for w in workers.values():
            w.close()


def bench_model(name: str, threads: int, runs: int, backend: str, fusion: str,
                harness: str = "isolated") -> dict[str, Any]:
    content = _model(name)
    prepare_s, first, t = (_time_isolated if harness == "isolated" else _time_shared)(
        content, threads, runs, backend, fusion)
    med = t["median_ms"]
    return {"model": name, "threads": threads, "backend": backend, "fusion": fusion, "harness": harness,
            "prepare_s": prepare_s, "first_run_ms": first * 1e3,
            "median_ms": med, "p90_ms": t["p90_ms"],
            "ratio_vs_xnnpack": med["tflite_jit"] / med["litert_xnnpack"],
            "ratio_vs_builtin": med["tflite_jit"] / med["litert_builtin"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--backend", default="numba")
    p.add_argument("--fusion", default="epilogue")
    p.add_argument("--json", default="")
    p.add_argument("--harness", default="isolated", choices=("isolated", "shared"),
                   help="isolated: each engine in its own process, timed one at a time (benchmarks/isolated.py); "
                        "shared: one process, invokes interleaved (at 2+ threads the pools compete)")
    a = p.parse_args()
    rows = []
    print(f"{'model':22s} {'ours ms':>9s} {'xnnpack':>9s} {'builtin':>9s} {'/xnn':>6s} {'/builtin':>8s} "
          f"{'prepare s':>9s} {'first ms':>9s}")
    for name in a.models.split(","):
        r = bench_model(name, a.threads, a.runs, a.backend, a.fusion, a.harness)
        rows.append(r)
        m = r["median_ms"]
        label = name.rsplit("/", 1)[-1].removesuffix(".tflite")[:22]
        print(f"{label:22s} {m['tflite_jit']:9.2f} {m['litert_xnnpack']:9.2f} {m['litert_builtin']:9.2f} "
              f"{r['ratio_vs_xnnpack']:6.2f} {r['ratio_vs_builtin']:8.2f} {r['prepare_s']:9.2f} "
              f"{r['first_run_ms']:9.1f}", flush=True)
    geo = math.exp(np.mean([math.log(r["ratio_vs_xnnpack"]) for r in rows]))
    print(f"geomean tflite_jit / LiteRT-XNNPACK: {geo:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "geomean_vs_xnnpack": geo}, f, indent=2)


if __name__ == "__main__":
    if not __package__:  # run as a script: make `benchmarks.isolated` importable
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
