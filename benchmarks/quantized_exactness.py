"""Per-op exact-match rate of int8 models against LiteRT's builtin kernels (issue #5's report).

Each float model from tflite_jit.tools.models is quantized with tflite_jit.quantizer (int8 in/out,
per-channel weights, calibrated on random inputs), run on tflite_jit and on LiteRT's builtin
resolver with every tensor kept, and every integer tensor is compared element by element.

    .venv/bin/python benchmarks/quantized_exactness.py [--size 224] [--models mobilenet_v2 ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import os

from tests.quant_compare import compare_all_tensors  # noqa: E402
from tests.test_quantizer import samples, to_int8  # noqa: E402
from tflite_jit.quantizer import quantize  # noqa: E402
from tflite_jit.tools import models  # noqa: E402

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224, help="input size of the conv nets")
    ap.add_argument("--models", nargs="+", default=["mobilenet_v2", "efficientnet_b0", "mobilenet_v3_small",
                                                    "transformer_encoder"])
    args = ap.parse_args()
    for name in args.models:
        kw = {} if name == "transformer_encoder" else {"input_size": args.size}
        float_model = getattr(models, name)(**kw)
        q = quantize(float_model, samples(float_model, 4), inference_input_type=np.int8,
                     inference_output_type=np.int8)
        tallies = compare_all_tensors(q, to_int8(q, samples(float_model, 1, seed=9)[0]))
        total = sum(t.elements for t in tallies.values())
        exact = sum(t.exact for t in tallies.values())
        print(f"\n{name} (input {args.size}): {exact}/{total} elements bit-exact ({100 * exact / total:.4f} %)")
        print(f"  {'op':<22}{'tensors':>8}{'elements':>12}{'exact %':>10}{'max |diff|':>12}")
        for op, t in sorted(tallies.items()):
            print(f"  {op:<22}{len(t.tensors):>8}{t.elements:>12}{100 * t.rate:>10.4f}{t.max_diff:>12}")


if __name__ == "__main__":
    main()
