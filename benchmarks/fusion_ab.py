"""Fusion strategies side by side on one model: steps, median invoke time, prepare time.

    python benchmarks/fusion_ab.py MODEL.tflite [--fusion epilogue,elementwise,elementwise+complex]
        [--rounds 2] [--runs 300] [--threads 1]

`elementwise+complex` is `elementwise` with `into_complex=True` (element-wise groups may join a
conv's or matmul's cluster: the default before 2026-12-07). Rounds alternate the strategies in
one process, so compare rows of one run; the kernels are compiled (jit="eager") before timing.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier

from tflite_jit import Interpreter  # noqa: E402
from tflite_jit.fusion import get_strategy  # noqa: E402


def _strategy(name: str):
    return get_strategy("elementwise", into_complex=True) if name == "elementwise+complex" else name


def measure(path: str, fusion: str, runs: int, threads: int) -> tuple[int, float, float]:
    """(steps of subgraph 0, median invoke seconds, prepare seconds) for one strategy."""
    t0 = time.perf_counter()
    it = Interpreter(model_path=path, num_threads=threads, fusion=_strategy(fusion))
    it.allocate_tensors()
    prepare = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        if np.dtype(d["dtype"]).kind == "f":
            x = rng.standard_normal(d["shape"]).astype(d["dtype"])
        else:
            x = rng.integers(0, 10, d["shape"]).astype(d["dtype"])
        it.set_tensor(d["index"], x)
    for _ in range(20):
        it.invoke()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        it.invoke()
        ts.append(time.perf_counter() - t)
    return len(it._interpreter.execs[0].steps), float(np.median(ts)), prepare


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--fusion", default="epilogue,elementwise+complex,elementwise")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    for r in range(a.rounds):
        for f in a.fusion.split(","):
            steps, med, prep = measure(a.model, f, a.runs, a.threads)
            print(f"round {r + 1} {f:22s} steps {steps:4d}  median {med * 1e6:9.1f} us  prepare {prep:5.1f} s",
                  flush=True)


if __name__ == "__main__":
    main()
