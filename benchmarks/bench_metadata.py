"""tflite_jit.support.metadata against tflite_support (where it is importable): reading the
metadata JSON of a model and re-populating its metadata (which rewrites the model's flatbuffer).

    python benchmarks/bench_metadata.py MODEL.tflite... [--runs 5] [--lib tflite_jit|tflite_support]

Models must carry metadata (e.g. the MediaPipe wheel's). Reports the best of --runs, per model.
tflite_support needs Python <= 3.11: run this file with its venv's python and --lib
tflite_support (it imports nothing from tflite_jit then), on the same machine, for the
comparison.
"""

from __future__ import annotations

import argparse
import importlib
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--lib", choices=("tflite_jit", "tflite_support"), default="tflite_jit")
    args = ap.parse_args()
    metadata = (importlib.import_module("tflite_jit.support.metadata") if args.lib == "tflite_jit"
                else importlib.import_module("tflite_support").metadata)
    for path in args.models:
        with open(path, "rb") as f:
            src = f.read()
        meta = metadata.get_metadata_buffer(src)
        if not meta:
            print(f"{os.path.basename(path)}: no metadata, skipped")
            continue
        read, populate = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            metadata.MetadataDisplayer.with_model_buffer(src).get_metadata_json()
            read.append(time.perf_counter() - t)
            t = time.perf_counter()
            p = metadata.MetadataPopulator.with_model_buffer(src)
            p.load_metadata_buffer(meta)
            p.populate()
            p.get_model_buffer()
            populate.append(time.perf_counter() - t)
        print(f"{args.lib:15s} {os.path.basename(path):36s} {len(src) / 1e6:5.1f} MB  "
              f"displayer+JSON {min(read) * 1e3:7.1f} ms  populate {min(populate) * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
