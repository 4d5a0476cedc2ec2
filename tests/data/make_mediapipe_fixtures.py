"""Regenerate the MediaPipe fixtures in tests/data from the .tflite files of the MediaPipe 0.10.14
wheel (PyPI `mediapipe`, Apache-2.0; the models live in mediapipe/modules/*/ inside it):

    .venv/bin/python tests/data/make_mediapipe_fixtures.py DIR   # DIR holds the wheel's .tflite files

* mediapipe_selfie_segmentation.tflite: selfie_segmentation.tflite, copied unchanged (250 KB; its
  last op is the custom Convolution2DTransposeBias).
* mediapipe_face_attention_custom_ops.tflite: the 11 custom-op nodes of
  face_landmark_with_attention.tflite (3 Landmarks2TransformMatrix, 3 TransformTensorBilinear,
  5 TransformLandmarks; the whole model is 2.5 MB), cut out with their tensors, options and
  wiring unchanged: the tensors they read from the rest of the network become graph inputs.
"""

from __future__ import annotations

import pathlib
import shutil
import sys

from tflite_jit.format.reader import load_file
from tflite_jit.format.writer import write_model
from tflite_jit.ir.model import Model, Subgraph

HERE = pathlib.Path(__file__).parent


def cut_custom_ops(model: Model) -> Model:
    """Subgraph 0's custom ops alone, in their order, reading what the rest computed as inputs."""
    sg = model.subgraphs[0]
    ops = [op for op in sg.ops if op.is_custom]
    produced = {t for op in ops for t in op.outputs}
    consumed = {t for op in ops for t in op.inputs if t >= 0}
    inputs = sorted(t for t in consumed - produced if sg.tensors[t].data is None)
    keep = sorted(consumed | produced)
    remap = {t: i for i, t in enumerate(keep)}
    tensors = [sg.tensors[t] for t in keep]
    new_ops = [type(op)(**{**op.__dict__, "inputs": tuple(remap[t] if t >= 0 else -1 for t in op.inputs),
                           "outputs": tuple(remap[t] for t in op.outputs)}) for op in ops]
    outputs = [remap[t] for op in ops for t in op.outputs]
    return Model(subgraphs=[Subgraph(tensors=tensors, inputs=tuple(remap[t] for t in inputs),
                                     outputs=tuple(outputs), ops=new_ops, name="custom_ops")],
                 description="custom-op nodes of MediaPipe's face_landmark_with_attention.tflite")


if __name__ == "__main__":
    src = pathlib.Path(sys.argv[1])
    shutil.copyfile(src / "selfie_segmentation.tflite", HERE / "mediapipe_selfie_segmentation.tflite")
    cut = cut_custom_ops(load_file(src / "face_landmark_with_attention.tflite"))
    (HERE / "mediapipe_face_attention_custom_ops.tflite").write_bytes(write_model(cut))
    for name in ("mediapipe_selfie_segmentation", "mediapipe_face_attention_custom_ops"):
        print(name, (HERE / f"{name}.tflite").stat().st_size)
