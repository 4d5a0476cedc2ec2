"""Ray Data scaling for a MobileNetV2-class model: 1 and 2 actors x 1 thread vs a plain local loop.

    TFLITE_JIT_CACHE_DIR=... python benchmarks/bench_ray.py [--input-size 96 --alpha 0.35]
        [--batch-size 8 --examples 1024 --workers 1 2 --repeat 3]

Every configuration runs the same images N and 2N at a time, each run end to end (a fresh actor
pool per run, as a job would), `--repeat` times each, the fastest run counting (the least
disturbed on a shared machine): the difference gives the steady rate (examples/s once
running) and the per-batch cost, the rest is the fixed cost (Ray Data planning, actor start-up,
loading the model and its kernels from the compile cache). Ray's overhead per batch is its
per-batch cost minus the local loop's. The kernels are compiled on the driver first
(tflite_jit.ray.predict's compile_on_driver), so no run includes a compile. Wall-clock times on a
shared machine: compare rows of one run, never across machines.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import numpy as np

from tflite_jit import Interpreter, batch
from tflite_jit.tools.models import build

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)


def local_loop(model: bytes, x: np.ndarray, batch_size: int) -> float:
    """Seconds for batch.predict over x in this process (warm interpreter: planned, compiled)."""
    it = Interpreter(model_content=model, num_threads=1)
    batch.predict(it, x[:batch_size], batch_size=batch_size)  # plan + compile (or load)
    start = time.perf_counter()
    batch.predict(it, x, batch_size=batch_size)
    return time.perf_counter() - start


def ray_run(model: bytes, x: np.ndarray, batch_size: int, workers: int) -> tuple[float, dict[str, float]]:
    """Seconds for tflite_jit.ray.predict over x end to end, and each worker's model seconds."""
    import ray

    import tflite_jit.ray as tray
    from tflite_jit import columns, tables

    ds = ray.data.from_arrow(tables.to_arrow({"x": x})).repartition(max(4 * workers, len(x) // (4 * batch_size)))
    ds = ds.materialize()  # the input is in the object store before the clock starts
    start = time.perf_counter()
    out = tray.predict(ds, model, batch_size=batch_size, workers=workers, num_threads=1, stats=True,
                       compile_on_driver=False)
    busy: dict[str, float] = {}
    for rows in out.iter_batches(batch_size=None, batch_format="numpy"):
        for w, s in zip(rows[columns.WORKER_COLUMN], rows[columns.SECONDS_COLUMN]):
            busy[str(w)] = busy.get(str(w), 0.0) + float(s)
    return time.perf_counter() - start, busy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input-size", type=int, default=96)
    p.add_argument("--alpha", type=float, default=0.35)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--examples", type=int, default=1024, help="N (the second run uses 2N)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=3, help="runs of each size; the fastest counts (default 3)")
    args = p.parse_args()
    import ray

    model = build("mobilenet_v2", input_size=args.input_size, alpha=args.alpha)
    n, b = args.examples, args.batch_size
    x = np.random.default_rng(0).standard_normal((2 * n, args.input_size, args.input_size, 3)).astype(np.float32)
    print(f"mobilenet_v2 input {args.input_size} alpha {args.alpha}, batch {b}, N = {n} and {2 * n}, "
          f"1 thread per worker, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    local_loop(model, x[:b], b)  # compile once here, as tflite_jit.ray.predict does on the driver
    rows = []
    t1 = min(local_loop(model, x[:n], b) for _ in range(args.repeat))
    t2 = min(local_loop(model, x, b) for _ in range(args.repeat))
    rows.append(("local loop", t1, t2, {"local": t2}))
    ray.init(num_cpus=max(os.cpu_count() or 1, max(args.workers) + 1), include_dashboard=False,
             log_to_driver=False, logging_level="warning")
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    for w in args.workers:
        r1 = min(ray_run(model, x[:n], b, w)[0] for _ in range(args.repeat))
        r2, busy = min((ray_run(model, x, b, w) for _ in range(args.repeat)), key=lambda r: r[0])
        rows.append((f"ray {w} actor{'s' if w > 1 else ''}", r1, r2, busy))
    ray.shutdown()
    base_per_batch = (rows[0][2] - rows[0][1]) / (n / b)
    print(f"{'':<14} {'N s':>7} {'2N s':>7} {'steady ex/s':>12} {'x local':>8} {'fixed s':>8} "
          f"{'ms/batch':>9} {'model ms/batch':>15} {'busy s per worker (2N)':>24}")
    for name, r1, r2, busy in rows:
        per_batch = (r2 - r1) / (n / b)
        steady = n / (r2 - r1)
        fixed = r1 - per_batch * (n / b)
        model_ms = 1000 * sum(busy.values()) / (2 * n / b)
        print(f"{name:<14} {r1:>7.2f} {r2:>7.2f} {steady:>12.1f} {per_batch and base_per_batch / per_batch:>8.2f} "
              f"{fixed:>8.2f} {1000 * per_batch:>9.2f} {model_ms:>15.2f} "
              f"{' '.join(f'{v:.2f}' for v in busy.values()):>24}")
    steady = {name: n / (r2 - r1) for name, r1, r2, _ in rows if r2 > r1}
    if "ray 1 actor" in steady and "ray 2 actors" in steady:
        print(f"scaling, steady ex/s of 2 actors / 1 actor: {steady['ray 2 actors'] / steady['ray 1 actor']:.2f}x; "
              f"end to end at 2N: {rows[1][2] / rows[2][2]:.2f}x")
    print("ms/batch: wall time per extra batch (steady state); model ms/batch: time inside the model per "
          "batch, per worker. Ray's overhead per batch = ms/batch of 'ray 1 actor' - that of the local loop "
          f"({1000 * base_per_batch:.2f} ms).")


if __name__ == "__main__":
    main()
