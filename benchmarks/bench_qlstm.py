"""Benchmark: the integer (8x8_16) UNIDIRECTIONAL_SEQUENCE_LSTM, tflite_jit's Numba kernel
(generators/qlstm.py) and NumPy reference (ops/qsequence.py) against LiteRT's builtin kernel, one
thread, on models that hold nothing but the LSTM.

    .venv/bin/python benchmarks/bench_qlstm.py [model.tflite ...] [--runs 20]

Defaults to the committed converted fixtures (tests/data/tf_lstm_int8*.tflite, 10 and 7 steps).
A bigger one (64 steps, 64 features, 128 units) comes from the fixtures' generator:

    TF_USE_LEGACY_KERAS=1 /work/tfvenv/bin/python -c "import pathlib, sys; sys.path.insert(0, 'tests/data');
    import make_tf_models as m; m.HERE = pathlib.Path('/tmp'); m.lstm_int8('big_lstm_int8', seq=64,
    features=64, units=128)"

Each contender gets a fresh interpreter and the same seeded int8 input; the state is reset before
every timed invoke (as the tests do) so the outputs compared are those of one sequence from the
zero state, which must be equal to LiteRT's bytes. Times are medians of `--runs` invokes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernel, not the first tier

import tflite_jit  # noqa: E402
from tests.oracle import litert_interpreter  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def time_one(it, x: np.ndarray, runs: int) -> tuple[float, np.ndarray]:
    it.allocate_tensors()
    d = it.get_input_details()[0]
    out_index = it.get_output_details()[0]["index"]
    times = []
    for _ in range(runs + 1):
        it.reset_all_variables()
        it.set_tensor(d["index"], x)
        t0 = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:])) * 1e3, it.get_tensor(out_index).copy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    paths = args.models or sorted(DATA.glob("tf_lstm_int8*.tflite"))
    print(f"{'model':28s} {'LiteRT builtin ms':>18s} {'numba ms':>9s} {'reference ms':>13s}  bit-exact")
    for path in paths:
        content = path.read_bytes()
        theirs = litert_interpreter(content, num_threads=1)
        theirs.allocate_tensors()
        shape = theirs.get_input_details()[0]["shape"]
        x = np.random.default_rng(0).integers(-128, 128, size=shape).astype(np.int8)
        ms_l, out_l = time_one(theirs, x, args.runs)
        ms_n, out_n = time_one(tflite_jit.Interpreter(model_content=content, backend="numba_cpu", num_threads=1),
                               x, args.runs)
        ms_r, out_r = time_one(tflite_jit.Interpreter(model_content=content, backend="reference"), x,
                               max(3, args.runs // 4))
        exact = np.array_equal(out_n, out_l) and np.array_equal(out_r, out_l)
        print(f"{path.name:28s} {ms_l:18.3f} {ms_n:9.3f} {ms_r:13.3f}  {exact}")


if __name__ == "__main__":
    main()
