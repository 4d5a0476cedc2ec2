"""Fixed costs: entering a Numba parallel region, and the Python on the invoke() path.

    python benchmarks/bench_overhead.py

Numbers go to docs/performance.md. Medians of many repeats; the machine is shared and noisy.
"""

from __future__ import annotations

import time

import numpy as np

import tflite_jit.backends.numba_cpu  # noqa: F401  (sets the threading layer before numba loads)


def _median_us(fn, repeat: int = 2000) -> float:
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter_ns()
        fn()
        ts.append(time.perf_counter_ns() - t)
    return float(np.median(ts)) / 1e3


def parallel_region() -> None:
    import numba

    @numba.njit(parallel=True, nogil=True)
    def regions(a, n):  # n back-to-back tiny prange regions inside one call
        for _ in range(n):
            for i in numba.prange(a.shape[0]):
                a[i] += 1.0

    a = np.zeros(64, np.float32)
    regions(a, 1)
    print(f"threading layer: {numba.threading_layer()}")
    for threads in (1, 2):
        numba.set_num_threads(threads)
        per = _median_us(lambda: regions(a, 1000), repeat=50) / 1000
        call = _median_us(lambda: regions(a, 1))
        print(f"  {threads} thread(s): {per:.2f} us per prange region; {call:.2f} us per call from Python")


def invoke_path() -> None:
    from tflite_jit import Interpreter
    from tflite_jit.format.builder import ModelBuilder

    for n_ops in (1, 60):
        mb = ModelBuilder()
        g = mb.subgraph()
        x = g.input("x", (1, 8), np.float32)
        for _ in range(n_ops):  # ADD/RELU alternate so no strategy fuses them away... except loops
            (x,) = g.apply("ADD", [x, x])
        g.output(x)
        content = mb.build()
        for fusion in ("none", "elementwise"):
            it = Interpreter(model_content=content, fusion=fusion)
            it.allocate_tensors()
            kernels = len(it._interpreter.execs[0].steps)
            us = _median_us(it.invoke)
            print(f"  {n_ops:2d} ADD ops, fusion={fusion:11s}: {kernels:2d} kernels, invoke {us:6.2f} us"
                  f" ({us / max(kernels, 1):.2f} us per kernel)")


if __name__ == "__main__":
    print("Numba parallel region entry:")
    parallel_region()
    print("invoke() on tiny models (per-kernel cost = Python loop + njit dispatch):")
    invoke_path()
