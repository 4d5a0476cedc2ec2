"""OpenCL backend (PoCL, a CPU driver) against the Numba CPU backend, per model, same process.

    python benchmarks/bench_opencl.py [--models tiny_convnet,mobilenet_v2] [--runs 20]
        [--device 'Portable Computing Language'] [--allow-fp16] [--json out.json]

--allow-fp16 forces half storage even on a CPU device (fp16_on_cpu), to measure its cost.

Numba runs through the Executable (numba_cpu + reference, epilogue fusion); OpenCL runs the
model as partitions of consecutive OpenCL clusters (tflite_jit/runtime/one_backend.py: intermediates stay
on the device, one finish per partition), the rest on reference. Each round runs both once, in
alternating order, so the shared machine's noise hits both alike; medians and the ratio
OpenCL / Numba are printed. PoCL is a CPU OpenCL: this is a correctness path, not a target
(PERFORMANCE.md §3), so the ratio is recorded, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import numpy as np

from tflite_jit.format.reader import load_bytes
from tflite_jit.tools import models

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)

MODELS: dict[str, dict[str, Any]] = {
    "tiny_convnet": {},
    "mobilenet_v2": {"input_size": 64, "alpha": 0.5},
    "mobilenet_v2_224": {"input_size": 224, "alpha": 1.0},
    "transformer_encoder": {"seq_len": 32, "d_model": 64, "num_heads": 2, "d_ff": 128, "num_layers": 2},
}


def _inputs(model: Any) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    sg = model.subgraphs[0]
    out = []
    for i in sg.inputs:
        t = sg.tensors[i]
        if np.dtype(t.dtype) == np.int32:
            out.append(rng.integers(0, 100, t.shape, dtype=np.int32))
        else:
            out.append(np.ones(t.shape, np.float32) if "mask" in t.name else
                       rng.standard_normal(t.shape).astype(np.float32))
    return out


def _numba_runner(model: Any, inputs: list[np.ndarray]) -> Any:
    from tflite_jit.backends.numba_cpu.backend import NumbaBackend
    from tflite_jit.backends.numba_cpu.generators import load_all
    from tflite_jit.backends.reference.backend import ReferenceBackend
    from tflite_jit.runtime.executable import Executable

    load_all()
    sg = model.subgraphs[0]
    ex = Executable(model, 0, [NumbaBackend(), ReferenceBackend()], fusion="epilogue")
    ex.prepare({i: tuple(sg.tensors[i].shape) for i in sg.inputs})

    def run() -> list[np.ndarray]:
        for tid, v in zip(sg.inputs, inputs):
            ex.buffers[tid][...] = v
        ex.run()
        return [np.array(ex.buffers[t], copy=True) for t in sg.outputs]

    return run


def bench(name: str, runs: int, options: dict[str, Any]) -> dict[str, Any]:
    from tflite_jit.backends.opencl import OpenCLBackend
    from tflite_jit.runtime.one_backend import GraphKernel

    kw = dict(MODELS[name])
    builder = "mobilenet_v2" if name.startswith("mobilenet_v2") else name
    model = load_bytes(models.build(builder, **kw))
    inputs = _inputs(model)
    t = time.perf_counter()
    numba = _numba_runner(model, inputs)
    numba()
    t_numba_first = time.perf_counter() - t
    t = time.perf_counter()
    graph = GraphKernel(model, OpenCLBackend(options), "epilogue")
    graph(inputs)
    t_cl_first = time.perf_counter() - t
    engines = {"numba": numba, "opencl": lambda: graph(inputs)}
    times: dict[str, list[float]] = {k: [] for k in engines}
    for r in range(runs):
        order = list(engines) if r % 2 == 0 else list(engines)[::-1]
        for k in order:
            t = time.perf_counter()
            engines[k]()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"model": name, "numba_ms": med["numba"] * 1e3, "opencl_ms": med["opencl"] * 1e3,
            "ratio": med["opencl"] / med["numba"], "numba_first_s": t_numba_first,
            "opencl_first_s": t_cl_first, **graph.stats, "ops": len(model.subgraphs[0].ops)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="tiny_convnet,mobilenet_v2,transformer_encoder")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--device", default=None)
    ap.add_argument("--allow-fp16", action="store_true")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    options = {"allow_fp16": a.allow_fp16, "fp16_on_cpu": a.allow_fp16}
    if a.device:
        options["device"] = a.device
    rows = []
    print(f"{'model':22s} {'numba ms':>9s} {'opencl ms':>10s} {'ratio':>6s} {'ops on cl':>10s} "
          f"{'partitions':>10s} {'kernels':>8s} {'compile s (numba/cl)':>21s}")
    for name in a.models.split(","):
        r = bench(name, a.runs, options)
        rows.append(r)
        print(f"{name:22s} {r['numba_ms']:9.2f} {r['opencl_ms']:10.2f} {r['ratio']:6.2f} "
              f"{r['opencl_ops']:4d}/{r['ops']:<5d} {r['partitions']:10d} {r['kernels']:8d} "
              f"{r['numba_first_s']:10.1f}/{r['opencl_first_s']:.1f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
