"""Published and converter-made landmark / segmentation models end to end against LiteRT's builtin
kernels, with the plan showing which ops still run on the reference backend.

* hand_recrop.tflite and face_detection_short_range.tflite: MediaPipe's models, copied unchanged
  from the mediapipe 0.10.14 wheel on PyPI (Apache-2.0; tests/data/README.md). PRELU, channel
  PAD, 5x5 depthwise, STRIDED_SLICE, CONCATENATION, RESHAPE of graph outputs, float16 weights.
* unet_f32.tflite / unet_int8.tflite: a small U-Net made by tests/data/make_unet_models.py with
  TensorFlow's converter (PRELU, 5x5 depthwise, RESIZE_BILINEAR, CONCATENATION, SPLIT, TILE).

Float outputs within the float contract, int8 outputs bit for bit. What may stay on the reference
backend is named per model: float16 DEQUANTIZE (constant folding is separate work), nothing else.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import tflite_jit
from tests.oracle import assert_close, litert_interpreter, run_seq

DATA = pathlib.Path(__file__).parent / "data"

#: model -> ops allowed to run on the reference backend
MODELS = {
    "hand_recrop.tflite": set(),
    "face_detection_short_range.tflite": {"DEQUANTIZE"},
    "unet_f32.tflite": set(),
    "unet_int8.tflite": set(),
}


def _inputs(details: list[dict], rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for d in details:
        dt = np.dtype(d["dtype"])
        if dt.kind in "iu":
            info = np.iinfo(dt)
            out.append(rng.integers(info.min, info.max + 1, size=d["shape"]).astype(dt))
        else:
            out.append(rng.uniform(-1, 1, d["shape"]).astype(dt))
    return out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_matches_litert_and_compiles(name: str) -> None:
    path = DATA / name
    rng = np.random.default_rng(0)
    theirs_it = litert_interpreter(path.read_bytes())
    batches = [_inputs(theirs_it.get_input_details(), rng) for _ in range(2)]
    ours_it = tflite_jit.Interpreter(model_path=str(path))
    ours = run_seq(ours_it, batches)
    theirs = run_seq(theirs_it, batches)
    for o_run, t_run in zip(ours, theirs):
        assert len(o_run) == len(t_run)
        for o, t in zip(o_run, t_run):
            assert_close(o, t, what=name)
    ex = ours_it._interpreter.execs[0]
    on_ref = {ex.sg.ops[i].name for s in ex.steps if s.backend == "reference" for i in s.cluster.ops}
    assert on_ref <= MODELS[name], f"{name}: {sorted(on_ref - MODELS[name])} run on reference"
