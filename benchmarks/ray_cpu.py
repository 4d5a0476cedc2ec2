"""Where the CPU goes while Ray Data runs a model on 2 actors (issue #17): every process's CPU
seconds over one `tflite_jit.ray.predict` run, read from /proc (Linux), grouped by what the
process is (the driver, the two actors, Ray's raylet / GCS / other workers and agents).

    TFLITE_JIT_CACHE_DIR=... python benchmarks/ray_cpu.py [--input-size 224 --alpha 1.0]
        [--examples 1024 --batch-size 32 --workers 2]

Why: on this 2-core machine two actors reach 1.35x one actor where two plain processes reach
1.8x; this shows whether the missing share goes to Ray's own processes or to the actors
themselves running slower side by side. Wall-clock figures on a shared machine: compare rows of
one run.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TFLITE_JIT_JIT", "eager")

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_by_pid() -> dict[int, tuple[str, float]]:
    """{pid: (command line, user + system CPU seconds)} of every process we may read."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(d.name)] = (cmd or stat[stat.index("(") + 1:stat.rindex(")")], (int(fields[11]) + int(fields[12])) / _TICK)
    return out


def _kind(cmd: str, me: int, pid: int) -> str:
    if pid == me:
        return "driver (this process)"
    for key, name in (("raylet", "raylet"), ("gcs_server", "gcs_server"), ("TFLitePredictor", "actor"),
                      ("MapWorker", "actor"), ("ray::", "other ray workers"), ("ray/", "ray agents"),
                      ("dashboard", "ray agents"), ("log_monitor", "ray agents")):
        if key in cmd:
            return name
    return "other"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--examples", type=int, default=1024)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    import ray

    import tflite_jit.ray as tray
    from tflite_jit import tables
    from tflite_jit.tools.models import build

    model = build("mobilenet_v2", input_size=args.input_size, alpha=args.alpha)
    x = np.random.default_rng(0).standard_normal((args.examples, args.input_size, args.input_size, 3)).astype(np.float32)
    ray.init(num_cpus=max(os.cpu_count() or 1, args.workers + 1), include_dashboard=False, log_to_driver=False,
             logging_level="warning")
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ds = ray.data.from_arrow(tables.to_arrow({"x": x})).repartition(max(4 * args.workers, args.examples // (4 * args.batch_size)))
    ds = ds.materialize()
    tray.predict(ds.limit(args.batch_size * args.workers), model, batch_size=args.batch_size, workers=args.workers,
                 num_threads=1).materialize()  # warm: actors started once, kernels cached
    before = _cpu_by_pid()
    t0 = time.perf_counter()
    out = tray.predict(ds, model, batch_size=args.batch_size, workers=args.workers, num_threads=1).materialize()
    wall = time.perf_counter() - t0
    after = _cpu_by_pid()
    assert out.count() == args.examples
    groups: dict[str, float] = {}
    me = os.getpid()
    for pid, (cmd, cpu) in after.items():
        used = cpu - before.get(pid, (cmd, 0.0))[1]
        if used > 0:
            k = _kind(cmd, me, pid)
            groups[k] = groups.get(k, 0.0) + used
    ray.shutdown()
    print(f"{args.examples} examples, batch {args.batch_size}, {args.workers} actors: {wall:.2f} s wall, "
          f"{args.examples / wall:.1f} ex/s, load average {os.getloadavg()[0]:.1f}")
    total = sum(groups.values())
    for k, v in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<24} {v:7.2f} CPU s  {v / wall:5.2f} cores  {100 * v / total:5.1f} %")
    print(f"  {'total':<24} {total:7.2f} CPU s  {total / wall:5.2f} cores")


if __name__ == "__main__":
    main()
