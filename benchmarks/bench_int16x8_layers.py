"""int16x8 layers (generators/q16conv.py) against LiteRT's builtin kernels, one op per model.

    TFLITE_JIT_JIT=eager python benchmarks/bench_int16x8_layers.py [--threads 1] [--reps 9] [--zeros 0.5]

Each layer: int16 input (zero point 0) with a fraction `--zeros` of zero activations (a ReLU's
output; the kernels skip zeros), int8 per-channel weights, int64 bias, RELU6. Both engines run in
one process, alternating rounds of `--reps` invokes (the machine is shared: medians of the best
round); outputs are checked bit for bit first."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.oracle, tests.ops.test_qnn (models)

LAYERS = (("CONV_2D", 56, 64, 128, 1, 1), ("CONV_2D", 28, 128, 128, 3, 1), ("CONV_2D", 14, 256, 256, 3, 1),
          ("CONV_2D", 112, 3, 32, 3, 2), ("DEPTHWISE_CONV_2D", 56, 128, 128, 3, 1),
          ("DEPTHWISE_CONV_2D", 14, 512, 512, 3, 1), ("FULLY_CONNECTED", 1, 1280, 1000, 1, 1))


def _model(rng, op, hw, ci, co, k, stride):
    from tests.ops.test_qnn import conv_out, weighted_model

    oh = conv_out(hw, k, stride, 1, 0)
    ws = rng.uniform(0.002, 0.02, co if op != "DEPTHWISE_CONV_2D" else ci).astype(np.float32)
    if op == "FULLY_CONNECTED":
        wq = rng.integers(-127, 128, (co, ci)).astype(np.int8)
        return weighted_model(op, (1, ci), wq, rng.integers(-9999, 9999, co).astype(np.int64), np.int16, (1e-3, 0),
                              (ws, np.zeros(co, np.int64)), (0.5, 0), (1, co), 0), (1, ci)
    extra = {}
    if op == "DEPTHWISE_CONV_2D":
        co = ci
        wq, axis, extra = rng.integers(-127, 128, (1, k, k, co)).astype(np.int8), 3, {"depth_multiplier": 1}
    else:
        wq, axis = rng.integers(-127, 128, (co, k, k, ci)).astype(np.int8), 0
    m = weighted_model(op, (1, hw, hw, ci), wq, rng.integers(-9999, 9999, co).astype(np.int64), np.int16, (1e-3, 0),
                       (ws, np.zeros(co, np.int64)), (0.5, 0), (1, oh, oh, co), axis, padding=0, stride_h=stride,
                       stride_w=stride, fused_activation_function=3, **extra)
    return m, (1, hw, hw, ci)


def _median(it, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        it.invoke()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--zeros", type=float, default=0.5)
    args = ap.parse_args()
    os.environ.setdefault("TFLITE_JIT_JIT", "eager")
    import tflite_jit
    from tests.oracle import litert_interpreter

    rng = np.random.default_rng(0)
    for op, hw, ci, co, k, stride in LAYERS:
        m, shape = _model(rng, op, hw, ci, co, k, stride)
        x = rng.integers(-32768, 32768, shape).astype(np.int16)
        x[rng.random(shape) < args.zeros] = 0
        its = [tflite_jit.Interpreter(model_content=m, num_threads=args.threads),
               litert_interpreter(m, num_threads=args.threads)]
        outs = []
        for it in its:
            it.allocate_tensors()
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
            outs.append(it.get_tensor(it.get_output_details()[0]["index"]).copy())
        assert np.array_equal(outs[0], outs[1]), f"{op}: outputs differ from LiteRT"
        best = [min(_median(it, args.reps) for _ in range(3)) for it in its]
        what = f"{op} {hw}x{hw}x{ci}->{co} k{k} s{stride}" if op != "FULLY_CONNECTED" else f"{op} {ci}->{co}"
        print(f"{what}: tflite_jit {best[0] * 1e3:.2f} ms, LiteRT builtin {best[1] * 1e3:.2f} ms "
              f"({best[1] / best[0]:.1f}x), bit-exact", flush=True)


if __name__ == "__main__":
    main()
