"""Fixed costs: entering a Numba parallel region, and the Python on the invoke() path.

    python benchmarks/bench_overhead.py [model.tflite ...]

For each model given: its steps, invoke() and Executable.run() medians, and the call cost per
kernel, measured by running the same loop over the same bound arguments with every Numba kernel
replaced by an empty compiled function (what the invoke path costs besides the kernels' work).

Numbers go to docs/performance.md. Medians of many repeats; the machine is shared and noisy.
"""

from __future__ import annotations

import os
import time

import numpy as np

import tflite_jit.backends.numba_cpu  # noqa: F401  (sets the threading layer before numba loads)

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)


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


def model_overhead(path: str) -> None:
    import collections
    import functools

    import numba

    from tflite_jit import Interpreter

    empties: dict[int, object] = {}

    def empty(n: int):  # a compiled function of n arguments that does nothing
        if n not in empties:
            ns: dict = {}
            exec(f"def f({', '.join(f'a{i}' for i in range(n))}):\n    return None\n", ns)
            empties[n] = numba.njit(ns["f"])
        return empties[n]

    it = Interpreter(model_path=path)
    it.allocate_tensors()
    ex = it._interpreter.execs[0]
    backends = collections.Counter(s.backend for s in ex.steps)
    calls = []
    for call in ex._calls:
        args = getattr(call, "args", None)
        if isinstance(call, functools.partial) and args is not None:
            entry = empty(len(args)).compile(tuple(numba.typeof(a) for a in args))
            calls.append(functools.partial(entry, *args))

    def loop() -> None:
        for c in calls:
            c()

    n = len(calls)
    print(f"  {path.rsplit('/', 1)[-1]}: {len(ex.steps)} steps {dict(backends)}, "
          f"{len(ex.folded)} ops folded at plan time")
    print(f"    invoke {_median_us(it.invoke, 500):.1f} us, Executable.run {_median_us(ex.run, 500):.1f} us; "
          f"calling the {n} Numba kernels with empty bodies: {_median_us(loop, 500):.2f} us "
          f"({_median_us(loop, 500) / max(n, 1) * 1e3:.0f} ns per kernel)")


if __name__ == "__main__":
    import sys

    print("Numba parallel region entry:")
    parallel_region()
    print("invoke() on tiny models (per-kernel cost = Python loop + njit dispatch):")
    invoke_path()
    if sys.argv[1:]:
        print("models:")
    for p in sys.argv[1:]:
        model_overhead(p)
