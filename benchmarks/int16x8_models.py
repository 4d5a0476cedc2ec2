"""The suite's int16x8 models (issue #13): which ops compile, whether the outputs are bit-exact
with LiteRT's builtin kernels (experimental_op_resolver_type=BUILTIN_WITHOUT_DEFAULT_DELEGATES;
XNNPACK does not take 16x8), and 1-thread invoke medians of both, in one process.

    TFLITE_JIT_JIT=eager python benchmarks/int16x8_models.py [--dir /work/suite] [--reps 5] [names...]

Models are read from --dir (benchmarks/suite generates them; none is committed)."""

from __future__ import annotations

import argparse
import collections
import os
import time
import warnings
from pathlib import Path

import numpy as np

MODELS = ("mobilenet_v1", "mobilenet_v2", "efficientnet_b0", "efficientnet_v2_b0", "resnet50", "densenet121",
          "nasnet_mobile")
MINE = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _feed(details, rng):
    out = []
    for d in details:
        dt = np.dtype(d["dtype"])
        shape = tuple(int(s) for s in d["shape"])
        if dt.kind == "f":
            out.append(rng.uniform(-1, 1, shape).astype(dt))
        else:
            info = np.iinfo(dt)
            out.append(rng.integers(info.min, info.max + 1, shape).astype(dt))
    return out


def _node_outputs_exact(model: bytes, xs, lite, tflite_jit) -> str:
    """Every CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED output tensor, ours against LiteRT's
    (experimental_preserve_all_tensors on both): the model's final output alone can hide a wrong
    layer behind a saturated or degenerate one."""
    its = [tflite_jit.Interpreter(model_content=model, num_threads=1, experimental_preserve_all_tensors=True),
           lite.Interpreter(model_content=model, num_threads=1, experimental_preserve_all_tensors=True,
                            experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)]
    for it in its:
        it.allocate_tensors()
        for d, x in zip(it.get_input_details(), xs):
            it.set_tensor(d["index"], x)
        it.invoke()
    same = varied = total = 0
    for op in its[1]._get_ops_details():
        if op["op_name"] not in MINE:
            continue
        t = int(op["outputs"][0])
        a, b = its[0].get_tensor(t), its[1].get_tensor(t)
        total += 1
        same += int(np.array_equal(a, b))
        varied += int(np.unique(b).size > 1)
    compiled = sum(op in MINE for p in its[0]._interpreter.execs[0].plan if p["backend"] == "numba_cpu"
                   for op in p["op_names"])
    return (f"{same}/{total} conv/depthwise/FC outputs bit-exact ({varied} of them not constant; "
            f"{compiled} ran on numba_cpu)")


def _median_invoke(it, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        it.invoke()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", default=list(MODELS))
    ap.add_argument("--dir", default="/work/suite")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("TFLITE_JIT_JIT", "eager")
    warnings.filterwarnings("ignore", message=".*preserve_all_tensors")
    from ai_edge_litert import interpreter as lite

    import tflite_jit

    for name in args.names:
        path = Path(args.dir) / f"{name}_int16x8.tflite"
        model = path.read_bytes()
        rng = np.random.default_rng(0)
        ours = tflite_jit.Interpreter(model_content=model, num_threads=1, jit="eager")
        ours.allocate_tensors()
        xs = _feed(ours.get_input_details(), rng)
        theirs = lite.Interpreter(model_content=model, num_threads=1,
                                  experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        try:
            theirs.allocate_tensors()
        except RuntimeError as e:  # LiteRT refuses some of these models at Prepare
            theirs = None
            refused = str(e).split("\n")[0]
        for it in (ours, theirs) if theirs is not None else (ours,):
            for d, x in zip(it.get_input_details(), xs):
                it.set_tensor(d["index"], x)
            it.invoke()
        if theirs is not None:
            print(f"{name}_int16x8: {_node_outputs_exact(model, xs, lite, tflite_jit)}", flush=True)
        exact = theirs is not None and all(
            np.array_equal(ours.get_tensor(a["index"]), theirs.get_tensor(b["index"]))
            for a, b in zip(ours.get_output_details(), theirs.get_output_details()))
        placed = collections.Counter()
        for p in ours._interpreter.execs[0].plan:
            for op in p["op_names"]:
                placed[(op, p["backend"])] += 1
        t_ours = _median_invoke(ours, args.reps)
        t_theirs = _median_invoke(theirs, args.reps) if theirs is not None else float("nan")
        mine = {op: (placed[(op, "numba_cpu")], sum(v for (o, _), v in placed.items() if o == op)) for op in MINE}
        ref = sorted({o for (o, b) in placed if b != "numba_cpu"})
        if theirs is None:  # then against our NumPy reference backend (bit-exact with LiteRT's kernels)
            rit = tflite_jit.Interpreter(model_content=model, num_threads=1, backend="reference")
            rit.allocate_tensors()
            for d, x in zip(rit.get_input_details(), xs):
                rit.set_tensor(d["index"], x)
            rit.invoke()
            same = all(np.array_equal(ours.get_tensor(a["index"]), rit.get_tensor(a["index"]))
                       for a in ours.get_output_details())
            print(f"{name}_int16x8: LiteRT builtin refuses the model ({refused}); "
                  f"bit-exact with tflite_jit's reference backend: {same}", flush=True)
        print(f"{name}_int16x8: bit-exact={exact} | " + ", ".join(f"{op} {c}/{n} compiled" for op, (c, n) in mine.items() if n)
              + f" | still reference: {', '.join(ref) or '-'} | 1 thread: tflite_jit {t_ours * 1e3:.1f} ms, "
              f"LiteRT builtin {t_theirs * 1e3:.1f} ms ({t_theirs / t_ours:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
