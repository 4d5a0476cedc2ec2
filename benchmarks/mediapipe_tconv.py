"""MediaPipe's Convolution2DTransposeBias as the selfie models use it (128x128x16 -> 256x256x1,
2x2 kernel, stride 2, SAME): the Numba kernel against the NumPy reference, one op, alternating
rounds, medians.

    python benchmarks/mediapipe_tconv.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import time

import numpy as np

import tflite_jit
from tflite_jit.format.builder import ModelBuilder

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)


def model(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", x.shape, np.float32)
    y = g.tensor("y", (x.shape[0], 2 * x.shape[1], 2 * x.shape[2], w.shape[0]), np.float32)
    g.op("Convolution2DTransposeBias", [xi, g.const("w", w), g.const("b", b)], [y], custom=True,
         custom_options=struct.pack("<3i", 1, 2, 2))
    g.output(y)
    return mb.build()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 128, 128, 16)).astype(np.float32)
    m = model(x, rng.standard_normal((1, 2, 2, 16)).astype(np.float32), np.zeros(1, np.float32))
    its = {be: tflite_jit.Interpreter(model_content=m, backend=be) for be in ("numba", "reference")}
    for it in its.values():
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
    times: dict[str, list[float]] = {k: [] for k in its}
    for _ in range(args.runs):
        for k, it in its.items():
            t = time.perf_counter()
            it.invoke()
            times[k].append(time.perf_counter() - t)
    for k, v in times.items():
        print(f"{k:10} median {statistics.median(v) * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
