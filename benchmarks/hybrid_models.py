"""Dynamic-range (hybrid) models: tflite_jit against LiteRT XNNPACK and builtin, one thread.

    python benchmarks/hybrid_models.py model.tflite [...] [--runs 40] [--hybrid-off]

Models: tests/data/make_tf_models.py's builders converted with `dynamic_range=True` (needs
TensorFlow), e.g. mobilenet_v2() and text_transformer(seq=64, d=128, heads=4), unet(size=128, c=16).

Two numbers for ours, because this machine is shared: the minimum over runs of a whole invoke
(comparable to LiteRT's, which is measured the same way), and the sum over steps of each step's
minimum (robust to the preemptions that hit multi-millisecond invokes on a loaded box).
`--hybrid-off` runs hybrid nodes on the reference backend, as before generators/hybrid.py and
tconv.py existed (hybrid TRANSPOSE_CONV did not run at all then).
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np

import tflite_jit


def _feed(it) -> None:
    it.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        if np.dtype(d["dtype"]).kind == "f":
            x = rng.uniform(-0.5, 0.5, d["shape"]).astype(d["dtype"])
        else:
            x = rng.integers(0, 100, d["shape"]).astype(d["dtype"])
        it.set_tensor(d["index"], x)


def _best(it, runs: int) -> float:
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        it.invoke()
        ts.append(time.perf_counter() - t0)
    return min(ts) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+")
    p.add_argument("--runs", type=int, default=40)
    p.add_argument("--hybrid-off", action="store_true")
    a = p.parse_args()
    from ai_edge_litert import interpreter as lite

    if a.hybrid_off:
        from tflite_jit.backends.numba_cpu import backend as nb

        nb.HYBRID_OPS = frozenset()
    print(f"{'model':28s} {'ours ms':>8s} {'steps ms':>8s} {'xnnpack':>8s} {'builtin':>8s} {'/xnn':>6s} {'/builtin':>8s}")
    for path in a.models:
        content = pathlib.Path(path).read_bytes()
        ours = tflite_jit.Interpreter(model_content=content, num_threads=1, backend="numba", jit="eager")
        xnn = lite.Interpreter(model_content=content, num_threads=1)
        builtin = lite.Interpreter(model_content=content, num_threads=1,
                                   experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        for it in (ours, xnn, builtin):
            _feed(it)
            it.invoke()
        t = {k: _best(it, a.runs) for k, it in (("ours", ours), ("xnn", xnn), ("builtin", builtin))}
        ex = ours._interpreter.execs[0]
        step_min = [float("inf")] * len(ex._calls)
        for _ in range(a.runs):
            for j, call in enumerate(ex._calls):
                t0 = time.perf_counter()
                call()
                step_min[j] = min(step_min[j], time.perf_counter() - t0)
        steps = sum(step_min) * 1e3
        print(f"{pathlib.Path(path).stem:28s} {t['ours']:8.3f} {steps:8.3f} {t['xnn']:8.3f} {t['builtin']:8.3f} "
              f"{steps / t['xnn']:6.2f} {steps / t['builtin']:8.2f}", flush=True)


if __name__ == "__main__":
    main()
