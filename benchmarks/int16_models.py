"""The suite's int16x8 models against LiteRT's builtin kernels (XNNPACK does not take 16x8):
bit-exactness of every output, where each op type runs (numba_cpu or reference), 1-thread
latency medians of both engines in the same process, and our per-op-type kernel time (the
profiler's per-cluster timings summed by op type).

    TFLITE_JIT_JIT=eager taskset -c 1 python -m benchmarks.int16_models /work/suite/mobilenet_v1_int16x8.tflite ...

Pin it to one core: the numbers are for one thread on whatever core it gets.
"""

from __future__ import annotations

import collections
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def _median_ms(fn, runs: int) -> float:
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts)


def measure(path: str, runs: int = 5) -> dict:
    import ai_edge_litert.interpreter as lite

    import tflite_jit
    from tflite_jit.tools.profiling import Profiler

    theirs = lite.Interpreter(model_path=path, num_threads=1,
                              experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    litert_error = None
    try:
        theirs.allocate_tensors()
    except RuntimeError as e:  # LiteRT refuses some 16x8 models: compare with our reference backend
        litert_error = str(e).strip().splitlines()[0]
        theirs = tflite_jit.Interpreter(model_path=path, num_threads=1, backend="reference")
        theirs.allocate_tensors()
    t0 = time.perf_counter()
    ours = tflite_jit.Interpreter(model_path=path, num_threads=1)
    ours.allocate_tensors()
    prep_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    for it in (ours, theirs):
        for d in it.get_input_details():
            shape, dt = d["shape"], np.dtype(d["dtype"])
            x = (rng.standard_normal(shape).astype(dt) if dt.kind == "f"
                 else rng.integers(np.iinfo(dt).min, np.iinfo(dt).max + 1, shape).astype(dt))
            it.set_tensor(d["index"], x)
        rng = np.random.default_rng(0)  # the same inputs for both
    ours.invoke()
    theirs.invoke()
    exact = all(np.array_equal(ours.get_tensor(a["index"]), theirs.get_tensor(b["index"]))
                for a, b in zip(ours.get_output_details(), theirs.get_output_details()))
    ex = ours._interpreter.execs[0]
    placement: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for p in ex.plan:
        for name in p["op_names"]:
            placement[name][p["backend"]] += 1
    lit_ms = _median_ms(theirs.invoke, runs)
    our_ms = _median_ms(ours.invoke, runs)
    prof = Profiler(ex)
    prof.install()
    for _ in range(runs):
        ours.invoke()
        prof.end_run()
    prof.remove()
    per_type: dict[str, float] = collections.Counter()
    for step, node in zip(ex.steps, prof.kernels()):
        key = f"{'+'.join(ex.sg.ops[i].name for i in step.cluster.ops)}@{step.backend}"
        per_type[key] += statistics.median(node.times_us) / 1e3
    return dict(model=Path(path).stem, exact=exact, litert_error=litert_error, prep_s=prep_s, litert_ms=lit_ms, ours_ms=our_ms,
                placement={k: dict(v) for k, v in placement.items()}, per_type_ms=dict(per_type))


def main(argv: list[str]) -> int:
    for path in argv:
        r = measure(path)
        if r["litert_error"]:
            print(f"{r['model']}: LiteRT builtin refuses it ({r['litert_error']}); compared with and "
                  "timed against our reference backend instead")
        other = "our_reference_backend" if r["litert_error"] else "litert_builtin"
        print(f"{r['model']}: bit-exact={r['exact']} {other}={r['litert_ms']:.1f} ms "
              f"ours={r['ours_ms']:.1f} ms (prepare {r['prep_s']:.0f} s)")
        print("  placement:", " ".join(f"{k}:{'/'.join(f'{b}={n}' for b, n in v.items())}"
                                      for k, v in sorted(r["placement"].items())))
        print("  our kernel time by op:", " ".join(f"{k}={v:.2f}ms" for k, v in
                                                   sorted(r["per_type_ms"].items(), key=lambda kv: -kv[1])))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
