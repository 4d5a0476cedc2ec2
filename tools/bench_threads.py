"""Speedup of separate interpreters in separate threads over the same work in one thread.

    .venv/bin/python -m tools.bench_threads --threads 2                      # ResNet50, 224 px
    .venv/bin/python -m tools.bench_threads --model mobilenet_v2 --invokes 20  # glue-bound

Generated Numba kernels are compiled with nogil=True and NumPy's C loops release the GIL, so N
interpreters in N threads should approach N x the throughput of one when N cores are free; what
stays serial is the Python glue between kernels (one bound call per cluster). The test suite
checks only that results are identical (tests/test_threads.py): timing is never asserted there.
Each interpreter uses num_threads=1, so the only parallelism is between interpreters.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

import numpy as np


def _work(it, x: np.ndarray, n: int) -> None:
    for _ in range(n):
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()


def main(argv: list[str] | None = None) -> int:
    import os

    import tflite_jit
    from tflite_jit.tools import models

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--invokes", type=int, default=4, help="per interpreter per repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--backend", default="numba", choices=["numba", "reference"])
    p.add_argument("--model", default="resnet50", help="a tflite_jit.tools.models builder name")
    p.add_argument("--input-size", type=int, default=224)
    a = p.parse_args(argv)

    kw = {"input_size": a.input_size}
    if a.model == "mobilenet_v2":
        kw["alpha"] = 0.35
    content = models.build(a.model, **kw)
    its = []
    for _ in range(a.threads):
        it = tflite_jit.Interpreter(model_content=content, backend=a.backend, num_threads=1)
        it.allocate_tensors()
        its.append(it)
    d = its[0].get_input_details()[0]
    x = np.random.default_rng(0).normal(size=d["shape"]).astype(d["dtype"])
    for it in its:
        _work(it, x, 2)  # warm-up

    serial, parallel = [], []
    for _ in range(a.repeats):
        t = time.perf_counter()
        for it in its:
            _work(it, x, a.invokes)
        serial.append(time.perf_counter() - t)
        threads = [threading.Thread(target=_work, args=(it, x, a.invokes)) for it in its]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        parallel.append(time.perf_counter() - t)
    s, par = statistics.median(serial), statistics.median(parallel)
    n = a.threads * a.invokes
    print(f"model {a.model} ({a.input_size}px), backend {a.backend}, {a.threads} interpreters x "
          f"{a.invokes} invokes, median of {a.repeats}; {os.cpu_count()} CPUs visible")
    print(f"one thread : {s * 1e3:8.1f} ms  ({s / n * 1e3:.2f} ms/invoke)")
    print(f"{a.threads} threads  : {par * 1e3:8.1f} ms  ({par / n * 1e3:.2f} ms/invoke)")
    print(f"speedup    : {s / par:.2f}x (ideal {a.threads}x with {a.threads} free cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
