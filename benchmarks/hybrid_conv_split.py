"""A dynamic-range CONV_2D whose integer sums pass 2**24 (generators/hybrid.py): unet_dynamic's 3x3
conv over 128 channels (1x32x32x128 -> 64, SAME, per-channel int8 weights, so asymmetric input
quantization) with weights of three magnitudes: 'plain' (|w| <= 7), 'raw' (uniform in [-127,
127], as unet_dynamic's) and 'split' (|w| >= 120). They once took three float32-GEMM paths (sums
as they are / raw q with zp * sum(w) subtracted after / weights split as 16 * hi + lo, 1.7x the
time); the int8 product (qdot.py) takes all three the same way, exactly. Against the NumPy
reference and LiteRT's builtin kernels on the same models. One op, 1 thread, alternating
rounds, medians.

    python benchmarks/hybrid_conv_split.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)

import tflite_jit  # noqa: E402
from tflite_jit.format.builder import ModelBuilder  # noqa: E402

F32 = np.float32


def model(w: np.ndarray, scales: np.ndarray, bias: np.ndarray) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 32, 32, 128), F32)
    wi = g.const("w", w, scale=scales, zero_point=np.zeros(scales.size, np.int64), quantized_dimension=0)
    y = g.tensor("y", (1, 32, 32, 64), F32)
    g.op("CONV_2D", [x, wi, g.const("b", bias)], [y], padding=0, stride_h=1, stride_w=1,
         fused_activation_function=1)
    g.output(y)
    return mb.build()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    from ai_edge_litert import interpreter as lite

    rng = np.random.default_rng(0)
    x = np.maximum(rng.standard_normal((1, 32, 32, 128)), 0).astype(F32)  # a ReLU'd activation
    sc = rng.uniform(0.001, 0.01, 64).astype(F32)
    b = rng.standard_normal(64).astype(F32)
    w_raw = rng.integers(-127, 128, (64, 3, 3, 128)).astype(np.int8)
    w_split = (rng.integers(120, 128, (64, 3, 3, 128)) * rng.choice([-1, 1], (64, 3, 3, 128))).astype(np.int8)
    models = {"plain": model(rng.integers(-7, 8, (64, 3, 3, 128)).astype(np.int8), sc, b),
              "raw": model(w_raw, sc, b), "split": model(w_split, sc, b)}

    def litert(m: bytes):
        return lite.Interpreter(model_content=m, num_threads=1,
                                experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)

    its = {f"{k} (numba)": tflite_jit.Interpreter(model_content=m, backend="numba", num_threads=1)
           for k, m in models.items()}
    its["raw (NumPy reference)"] = tflite_jit.Interpreter(model_content=models["raw"], backend="reference",
                                                          num_threads=1)
    its |= {f"{k} (LiteRT builtin)": litert(models[k]) for k in ("plain", "raw", "split")}
    outs = {}
    for k, it in its.items():
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        outs[k] = it.get_tensor(it.get_output_details()[0]["index"])
    for k in ("plain", "raw", "split"):
        print(f"{k} (numba): bit-exact with LiteRT builtin: "
              f"{np.array_equal(outs[f'{k} (numba)'], outs[f'{k} (LiteRT builtin)'])}")
    times: dict[str, list[float]] = {k: [] for k in its}
    for _ in range(args.runs):
        for k, it in its.items():
            t = time.perf_counter()
            it.invoke()
            times[k].append(time.perf_counter() - t)
    for k, v in times.items():
        print(f"{k:26} median {statistics.median(v) * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
