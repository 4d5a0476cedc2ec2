"""Per .tflite model: which backend runs each op (and which ops stay on `reference`), prepare
time, and median invoke latency of tflite_jit against LiteRT XNNPACK and builtin kernels.

    python benchmarks/model_backends.py [--runs 20] [--threads 2] model.tflite [model.tflite ...]

One JSON line per model. Latency rounds alternate the three engines (rotating order), so machine
noise (a shared 2-core box) hits them alike; compare ratios, and rerun a baseline on the same
machine at the same time when comparing two versions of tflite_jit.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import time
from typing import Any

import numpy as np

from tflite_jit import Interpreter

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)


def _inputs(it: Any, rng: np.random.Generator) -> list[np.ndarray]:
    xs = []
    for d in it.get_input_details():
        dt = np.dtype(d["dtype"])
        if dt.kind in "iu":
            xs.append(rng.integers(-100, 100, d["shape"]).astype(dt))
        else:
            xs.append(rng.uniform(-1, 1, d["shape"]).astype(dt))
    return xs


def _runner(it: Any, xs: list[np.ndarray]):
    idx = [d["index"] for d in it.get_input_details()]

    def run() -> float:
        for i, x in zip(idx, xs):
            it.set_tensor(i, x)
        t = time.perf_counter()
        it.invoke()
        return time.perf_counter() - t

    return run


def measure(path: str, runs: int, threads: int) -> dict[str, Any]:
    from ai_edge_litert import interpreter as lite

    content = pathlib.Path(path).read_bytes()
    t0 = time.perf_counter()
    ours = Interpreter(model_content=content, num_threads=threads)
    ours.allocate_tensors()
    prepare = time.perf_counter() - t0
    ex = ours._interpreter.execs[0]
    per_backend: collections.Counter = collections.Counter()
    on_reference: collections.Counter = collections.Counter()
    for s in ex.steps:
        per_backend[s.backend] += len(s.cluster.ops)
        if s.backend == "reference":
            on_reference.update(ex.sg.ops[i].name for i in s.cluster.ops)
    engines = {"ours": ours,
               "xnnpack": lite.Interpreter(model_content=content, num_threads=threads),
               "builtin": lite.Interpreter(model_content=content, num_threads=threads,
                                           experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)}
    for k, it in engines.items():
        if k != "ours":
            it.allocate_tensors()
    xs = _inputs(ours, np.random.default_rng(0))
    runners = {k: _runner(it, xs) for k, it in engines.items()}
    for r in runners.values():  # warm-up
        r()
        r()
    times: dict[str, list[float]] = {k: [] for k in engines}
    keys = list(engines)
    for i in range(runs):
        for k in keys[i % 3:] + keys[:i % 3]:
            times[k].append(runners[k]())
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    return {"model": pathlib.Path(path).name, "prepare_s": round(prepare, 1), "steps": len(ex.steps),
            "ops": dict(per_backend), "on_reference": dict(on_reference),
            "median_ms": {k: round(v, 3) for k, v in med.items()},
            "ours_over_xnnpack": round(med["ours"] / med["xnnpack"], 2),
            "ours_over_builtin": round(med["ours"] / med["builtin"], 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    for m in a.models:
        print(json.dumps(measure(m, a.runs, a.threads)), flush=True)


if __name__ == "__main__":
    main()
