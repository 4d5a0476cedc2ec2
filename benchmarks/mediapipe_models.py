"""Every .tflite of the MediaPipe wheel, on tflite_jit against LiteRT: error and median invoke time.

    python benchmarks/mediapipe_models.py DIR [--runs 10] [--backend numba]

DIR holds the wheel's models (pip download mediapipe==0.10.14, unzip, mediapipe/modules/*/*.tflite).
For each model: one random input in [0, 1), our outputs against LiteRT's builtin kernels and
against LiteRT + XNNPACK (max |ours - LiteRT| / max(1, max |LiteRT|) over the outputs; the float
contract is 1e-4), or the reason LiteRT cannot run it (MediaPipe's custom ops: its builtin
resolver lacks all six, XNNPACK has Convolution2DTransposeBias and the argmax pooling ops).
Where LiteRT runs nothing (face_landmark_with_attention) the model's custom-op nodes are checked
one by one, on the model's own intermediate tensors (preserve_all_tensors), against the test
suite's independent NumPy implementations (tests/test_mediapipe_ops.py). Timing rounds alternate
the engines (this is a shared machine); first-run (compile) time is reported separately.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
from typing import Any

import numpy as np

from tflite_jit import Interpreter

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def _litert(path: pathlib.Path, resolver: str) -> Any:
    from ai_edge_litert import interpreter as lite

    rtype = {"builtin": lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
             "xnnpack": lite.OpResolverType.AUTO}[resolver]
    it = lite.Interpreter(model_path=str(path), experimental_op_resolver_type=rtype)
    it.allocate_tensors()
    return it


def _run(it: Any, x: np.ndarray) -> list[np.ndarray]:
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def _rel_err(ours: list[np.ndarray], theirs: list[np.ndarray]) -> float:
    return max(float(np.abs(o.astype(np.float64) - t).max()) / max(1.0, float(np.abs(t).max()))
               for o, t in zip(ours, theirs))


def check_custom_nodes(path: pathlib.Path, x: np.ndarray) -> float:
    """Worst relative error of the model's custom-op nodes against the independent NumPy
    implementations, each fed the model's own intermediate tensors."""
    from tests import test_mediapipe_ops as ref
    from tflite_jit.format.reader import load_file

    sg = load_file(path).subgraphs[0]
    it = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    _run(it, x)
    worst = 0.0
    for op in sg.ops:
        if not op.is_custom:
            continue
        ins = [it.get_tensor(t) for t in op.inputs]
        if op.name == "Landmarks2TransformMatrix":
            want = ref.np_l2t_v2(ins[0], op.options)
        elif op.name == "TransformTensorBilinear":
            want = ref.np_bilinear(ins[0], ins[1], op.options["output_height"], op.options["output_width"], True)
        elif op.name == "TransformLandmarks":
            want = ref.np_transform_landmarks(ins[0], ins[1])
        else:
            raise ValueError(f"no independent implementation of {op.name} here")
        worst = max(worst, _rel_err([it.get_tensor(op.outputs[0])], [want]))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", type=pathlib.Path)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--backend", default=None)
    args = ap.parse_args()
    print(f"{'model':42} {'vs builtin':>11} {'vs XNNPACK':>11} {'first s':>8} {'ours ms':>8} "
          f"{'XNNPACK ms':>10} {'builtin ms':>10}")
    for path in sorted(args.dir.glob("*.tflite")):
        t0 = time.perf_counter()
        ours = Interpreter(model_path=str(path), backend=args.backend, jit="eager")
        ours.allocate_tensors()
        shape = ours.get_input_details()[0]["shape"]
        x = np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32)
        got = _run(ours, x)
        first = time.perf_counter() - t0
        engines: dict[str, Any] = {"ours": ours}
        cells = []
        for resolver in ("builtin", "xnnpack"):
            try:
                engines[resolver] = _litert(path, resolver)
                cells.append(f"{_rel_err(got, _run(engines[resolver], x)):11.2e}")
            except RuntimeError as e:
                cells.append(f"{'cannot':>11}")
                note = str(e).splitlines()[0]
        times: dict[str, list[float]] = {k: [] for k in engines}
        for _ in range(args.runs):
            for name, it in engines.items():
                t = time.perf_counter()
                _run(it, x)
                times[name].append(time.perf_counter() - t)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        print(f"{path.name:42} {cells[0]} {cells[1]} {first:8.1f} {med['ours']:8.2f} "
              f"{med.get('xnnpack', float('nan')):10.2f} {med.get('builtin', float('nan')):10.2f}")
        if "builtin" not in engines and "xnnpack" not in engines:
            print(f"    LiteRT: {note}")
            print(f"    custom-op nodes vs independent NumPy: worst rel err {check_custom_nodes(path, x):.2e}")


if __name__ == "__main__":
    main()
