"""Long run: interpreters created, allocated, invoked, resized and dropped in a loop for N
minutes, reporting resident memory over time and, once every interpreter is gone, the open file
descriptors and memory mappings compared with before (leaks of the model file's mmap, of
temporary files, of compiled-kernel memory).

    .venv/bin/python -m benchmarks.long_run --minutes 3
    .venv/bin/python -m benchmarks.long_run --minutes 0.2 --backend reference --json out.json

Each cycle alternates model_path (the reader maps the file) and model_content, runs a few
invokes, resizes the batch (1 -> 2 -> 1: re-plans, re-allocates the arena), uses a signature
runner and reset_all_variables, then drops the interpreter. After a warm-up cycle (first
compile), RSS is sampled every `--every` seconds; the verdict compares the last quarter's
median with the first quarter's (flat: growth under `--tolerance-mb`). Linux only (/proc).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def open_fds() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed meanwhile
            pass
    return sorted(out)


def maps() -> list[str]:
    """File-backed mappings (path per mapping) and the count of anonymous ones."""
    with open("/proc/self/maps") as f:
        lines = f.read().splitlines()
    return [ln.split(maxsplit=5)[5] if len(ln.split(maxsplit=5)) == 6 else "[anon]" for ln in lines]


def model_bytes() -> bytes:
    """A small convnet with a dynamic batch, a signature and several kernel kinds."""
    from tflite_jit.format.builder import ModelBuilder

    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 16, 16, 3), np.float32, shape_signature=(-1, 16, 16, 3))
    w = g.const("w", rng.normal(size=(8, 3, 3, 3)).astype(np.float32))
    (c,) = g.apply("CONV_2D", [x, w, g.const("b", np.zeros(8, np.float32))], padding="SAME",
                   stride_w=2, stride_h=2, fused_activation_function="RELU")
    dw = g.const("dw", rng.normal(size=(1, 3, 3, 8)).astype(np.float32))
    (d,) = g.apply("DEPTHWISE_CONV_2D", [c, dw, g.const("db", np.zeros(8, np.float32))], padding="SAME",
                   stride_w=1, stride_h=1, depth_multiplier=1)
    (m,) = g.apply("MEAN", [d, g.const("axes", np.array([1, 2], np.int32))], keep_dims=False)
    fw = g.const("fw", rng.normal(size=(10, 8)).astype(np.float32))
    (y,) = g.apply("FULLY_CONNECTED", [m, fw, -1])
    (s,) = g.apply("SOFTMAX", [y], beta=1.0)
    g.output(s)
    mb.signature("serving_default", {"x": x}, {"probs": s})
    return mb.build()


def cycle(i: int, path: str, content: bytes, backend: str, invokes: int) -> float:
    import tflite_jit

    kw: dict[str, Any] = {"model_path": path} if i % 2 == 0 else {"model_content": content}
    it = tflite_jit.Interpreter(**kw, backend=backend)
    it.allocate_tensors()
    x = np.random.default_rng(i).normal(size=(1, 16, 16, 3)).astype(np.float32)
    out = it.get_output_details()[0]["index"]
    total = 0.0
    for _ in range(invokes):
        it.set_tensor(0, x)
        it.invoke()
        total += float(it.get_tensor(out).sum())
    it.resize_tensor_input(0, [2, 16, 16, 3])
    it.allocate_tensors()
    it.set_tensor(0, np.concatenate([x, x]))
    it.invoke()
    it.resize_tensor_input(0, [1, 16, 16, 3])
    it.allocate_tensors()
    run = it.get_signature_runner()
    total += float(run(x=x)["probs"].sum())
    del run
    it.reset_all_variables()
    view = it.tensor(out)  # a live view, dropped with the interpreter
    total += float(view().sum())
    del view, it
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--backend", default="numba", choices=["numba", "reference"])
    p.add_argument("--invokes", type=int, default=20, help="invokes per cycle")
    p.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--tolerance-mb", type=float, default=8.0)
    p.add_argument("--json", default="")
    a = p.parse_args(argv)

    content = model_bytes()
    fd, path = tempfile.mkstemp(suffix=".tflite", prefix="long_run_")
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    cycle(0, path, content, a.backend, a.invokes)  # warm-up: first compile, caches filled
    cycle(1, path, content, a.backend, a.invokes)
    gc.collect()
    fds0, maps0 = open_fds(), maps()
    start = time.monotonic()
    samples: list[tuple[float, float, int]] = []  # (seconds, RSS MiB, cycles)
    cycles, next_sample = 0, 0.0
    end = start + a.minutes * 60
    while True:
        now = time.monotonic()
        if now >= next_sample:
            samples.append((now - start, rss_mb(), cycles))
            print(f"[{now - start:6.0f}s] cycles {cycles:6d}  RSS {samples[-1][1]:8.1f} MiB  "
                  f"fds {len(open_fds())}  maps {len(maps())}", flush=True)
            next_sample = now + a.every
        if now >= end:
            break
        cycle(cycles + 2, path, content, a.backend, a.invokes)
        cycles += 1
    gc.collect()
    fds1, maps1 = open_fds(), maps()
    os.unlink(path)
    q = max(1, len(samples) // 4)
    first, last = statistics.median(s[1] for s in samples[:q]), statistics.median(s[1] for s in samples[-q:])
    model_maps = sum(1 for m in maps1 if m.startswith(path))
    leaked_fds = sorted(set(fds1) - set(fds0)) if len(fds1) > len(fds0) else []
    report = {
        "backend": a.backend, "minutes": a.minutes, "cycles": cycles,
        "invokes": cycles * (a.invokes + 3), "cycles_per_s": round(cycles / max(samples[-1][0], 1e-9), 1),
        "rss_mib": [[round(t), round(r, 1), c] for t, r, c in samples],
        "rss_first_quarter_mib": round(first, 1), "rss_last_quarter_mib": round(last, 1),
        "rss_growth_mib": round(last - first, 1), "rss_flat": last - first < a.tolerance_mb,
        "fds_before": len(fds0), "fds_after": len(fds1), "leaked_fds": leaked_fds,
        "maps_before": len(maps0), "maps_after": len(maps1), "model_file_maps_after": model_maps,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "rss_mib"}, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    ok = report["rss_flat"] and not leaked_fds and model_maps == 0
    print("OK: flat RSS, no leaked descriptors or mappings" if ok else "LEAK suspected (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
