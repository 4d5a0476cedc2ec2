"""The cost of a dynamic-range CONV_2D whose integer sums could pass 2**24 (generators/hybrid.py
`_split_conv2d`: the float32 GEMM over the weights split as 16 * hi + lo, 2 * C_out channels):
unet_dynamic's 3x3 conv over 128 channels (1x32x32x128 -> 64, SAME, per-channel int8 weights),
against the same shape with small weights (|w| <= 7: sums fit float32, the plain one-GEMM path),
the NumPy reference (where that node ran before) and LiteRT's builtin kernels. One op, 1 thread,
alternating rounds, medians.

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
    big = model(rng.integers(-127, 128, (64, 3, 3, 128)).astype(np.int8), sc, b)
    small = model(rng.integers(-7, 8, (64, 3, 3, 128)).astype(np.int8), sc, b)
    its = {
        "split (numba)": tflite_jit.Interpreter(model_content=big, backend="numba", num_threads=1),
        "plain, |w|<=7 (numba)": tflite_jit.Interpreter(model_content=small, backend="numba", num_threads=1),
        "reference (NumPy)": tflite_jit.Interpreter(model_content=big, backend="reference", num_threads=1),
        "LiteRT builtin": lite.Interpreter(
            model_content=big, num_threads=1,
            experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES),
    }
    outs = {}
    for k, it in its.items():
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        outs[k] = it.get_tensor(it.get_output_details()[0]["index"])
    for k in ("split (numba)", "reference (NumPy)"):
        print(f"{k}: bit-exact with LiteRT builtin: {np.array_equal(outs[k], outs['LiteRT builtin'])}")
    times: dict[str, list[float]] = {k: [] for k in its}
    for _ in range(args.runs):
        for k, it in its.items():
            t = time.perf_counter()
            it.invoke()
            times[k].append(time.perf_counter() - t)
    for k, v in times.items():
        print(f"{k:24} median {statistics.median(v) * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
