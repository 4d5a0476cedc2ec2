"""The Task Library's per-call cost: ImageClassifier.classify on a MobileNetV2-224 with metadata,
for an image at the model's size and a 640x480 one (libyuv-exact scaling in NumPy), ours or
tflite_support's (same model file, same images).

    python benchmarks/bench_tasks.py --make-model /tmp/mnv2_task.tflite      # project venv
    python benchmarks/bench_tasks.py /tmp/mnv2_task.tflite [--runs 50]         # ours
    PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python <tfs-venv>/bin/python \\
        benchmarks/bench_tasks.py /tmp/mnv2_task.tflite --lib tflite_support   # theirs

Reports the median and best per-call milliseconds after 3 warm-up calls, and, for ours, the
pre-processing alone (image -> input tensor).
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import tempfile
import time

import numpy as np

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)


def make_model(path: str) -> None:
    from tflite_jit.support.metadata_writers import image_classifier
    from tflite_jit.tools.models_spec import load_model

    buf, _ = load_model("mobilenet_v2:input_size=224")
    with tempfile.TemporaryDirectory() as d:
        labels = os.path.join(d, "labels.txt")
        n = 1000
        with open(labels, "w") as f:
            f.write("".join(f"class_{i}\n" for i in range(n)))
        writer = image_classifier.MetadataWriter.create_for_inference(
            buf, [127.5], [127.5], [labels])
        with open(path, "wb") as f:
            f.write(writer.populate())
    print("wrote", path)


def timed(fn, runs: int) -> tuple[float, float]:
    for _ in range(3):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(1000 * (time.perf_counter() - t0))
    return statistics.median(ts), min(ts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--make-model", default=None)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--lib", choices=("tflite_jit", "tflite_support"), default="tflite_jit")
    args = ap.parse_args()
    if args.make_model:
        make_model(args.make_model)
        return
    root = "tflite_jit.support" if args.lib == "tflite_jit" else "tflite_support"
    vision = importlib.import_module(f"{root}.task.vision")
    clf = vision.ImageClassifier.create_from_file(args.model)
    rng = np.random.default_rng(0)
    keep = {"224x224": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
            "640x480": rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)}
    for name, arr in keep.items():
        image = vision.TensorImage.create_from_array(arr)
        med, best = timed(lambda image=image: clf.classify(image), args.runs)
        line = f"{args.lib:14s} classify {name}: median {med:7.2f} ms  best {best:7.2f} ms"
        if args.lib == "tflite_jit":
            pre = clf._preprocessor  # noqa: SLF001 - the benchmark looks inside on purpose
            pm, _ = timed(lambda arr=arr, pre=pre: pre.tensor(arr), args.runs)
            line += f"  (pre-processing {pm:.2f} ms)"
        print(line)


if __name__ == "__main__":
    main()
