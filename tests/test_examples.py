"""The examples run end to end on the repository's tiny Task fixtures (no network): their
results are the Task API's, and the pose example's geometry holds on stand-in models with
MediaPipe's input and output shapes whose outputs are known."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from tflite_jit.format.builder import ModelBuilder
from tflite_jit.support.task import text, vision

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))


def _example(name: str):
    return importlib.import_module(name)


def test_image_classification() -> None:
    ex, common = _example("image_classification"), _example("_common")
    (result,) = ex.main(["--max-results", "2"])
    want = vision.ImageClassifier.create_from_file(common.demo_model("classifier_float")).classify(
        vision.TensorImage.create_from_array(common.demo_image()))
    assert [c.index for c in result.classifications[0].categories] == [
        c.index for c in want.classifications[0].categories[:2]]


def test_object_detection_draws(tmp_path) -> None:
    pytest.importorskip("PIL", reason="drawing the boxes needs Pillow (extra `image`)")
    out = tmp_path / "boxes.png"
    (result,) = _example("object_detection").main(["--out", str(out), "--max-results", "3"])
    assert 1 <= len(result.detections) <= 3 and out.stat().st_size > 0


def test_text_examples() -> None:
    nl = _example("text_classification").main(["good movie", ""])
    assert len(nl) == 2 and len(nl[0].classifications[0].categories) == 2
    bert = _example("text_classification").main(["--bert", "a great movie"])
    assert bert[0] == text.BertNLClassifier.create_from_file(
        _example("_common").demo_model("bert_classifier")).classify("a great movie")
    (answers,) = _example("question_answering").main(["Where is the dog?"])
    assert 1 <= len(answers.answers) <= 5 and all(a.text for a in answers.answers)


ANCHOR = 100  # the anchor the stand-in detector fires on
KP1_UP = 40.0  # its body-scale keypoint, this many detector pixels above the hip centre


def _const_model(in_shape, outputs: list[np.ndarray]) -> bytes:
    """A model whose outputs are constants (plus 0 x the input's mean, so the input is used)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("input_1", in_shape, np.float32)
    m = g.apply("MEAN", [x, g.const("axes", np.arange(1, len(in_shape), dtype=np.int32))],
                keep_dims=False)[0]
    zero = g.apply("MUL", [m, g.const("zero", np.zeros(1, np.float32))])[0]
    outs = []
    for i, value in enumerate(outputs):
        outs.append(g.apply("ADD", [zero, g.const(f"value{i}", value.astype(np.float32))],
                            out_name=f"Identity{'_' + str(i) if i else ''}")[0])
    g.output(*outs)
    return mb.build()


def test_pose_geometry(tmp_path) -> None:
    pose = _example("pose_landmarks")
    anchors = pose.ssd_anchors()
    assert anchors.shape == (2254, 2)
    reg = np.zeros((1, 2254, 12))
    reg[0, ANCHOR, 2:4] = 30.0
    reg[0, ANCHOR, 7] = -KP1_UP  # keypoint 1: y offset (x first, then y)
    scores = np.full((1, 2254, 1), -5.0)
    scores[0, ANCHOR] = 5.0
    det = tmp_path / "det.tflite"
    det.write_bytes(_const_model((1, 224, 224, 3), [reg, scores]))
    lm = np.zeros((39, 5))
    lm[:, :2] = 128.0
    lm[11, :2] = (192.0, 64.0)
    lmk = tmp_path / "lm.tflite"
    lmk.write_bytes(_const_model((1, 256, 256, 3), [lm.reshape(1, 195), np.array([[0.9]])]))
    image = np.zeros((120, 200, 3), np.uint8)
    score, roi, points, flag = pose.run(image, det, lmk)
    side = 200  # the letterbox square is the long side
    ax, ay = anchors[ANCHOR]
    cx, cy = (ax - 0.5) * side + 100, (ay - 0.5) * side + 60
    assert score == pytest.approx(1 / (1 + math.exp(-5)), rel=1e-6)
    assert (roi.cx, roi.cy) == pytest.approx((cx, cy), abs=1e-3)
    assert roi.w == pytest.approx(2 * KP1_UP / 224 * side * 1.25, rel=1e-5)
    assert roi.rotation == pytest.approx(0.0, abs=1e-9)  # keypoint 1 straight above: upright
    assert points.shape == (33, 4) and flag == pytest.approx(0.9)
    assert points[0, :2] == pytest.approx((cx, cy), abs=1e-3)
    assert points[11, :2] == pytest.approx((cx + 0.25 * roi.w, cy - 0.25 * roi.h), abs=1e-3)


def test_pose_weighted_nms(tmp_path) -> None:
    """Two overlapping candidates above 0.5 average their keypoints by score."""
    pose = _example("pose_landmarks")
    reg = np.zeros((1, 2254, 12))
    reg[0, [ANCHOR, ANCHOR + 1], 2:4] = 30.0  # the same cell: identical boxes, IoU 1
    reg[0, ANCHOR, 4] = 0.0
    reg[0, ANCHOR + 1, 4] = 10.0  # keypoint 0 x: 0 and 10 detector pixels from the anchor
    scores = np.full((1, 2254, 1), -5.0)
    scores[0, ANCHOR, 0], scores[0, ANCHOR + 1, 0] = 3.0, 1.0
    det = tmp_path / "det.tflite"
    det.write_bytes(_const_model((1, 224, 224, 3), [reg, scores]))
    interp = pose.Interpreter(model_path=str(det))
    interp.allocate_tensors()
    anchors = pose.ssd_anchors()
    _, _, keypoints = pose.detect(interp, np.zeros((224, 224, 3), np.uint8), anchors)
    s1, s2 = 1 / (1 + math.exp(-3)), 1 / (1 + math.exp(-1))
    want = anchors[ANCHOR, 0] * 224 + 10.0 * s2 / (s1 + s2)
    assert keypoints[0, 0] == pytest.approx(want, abs=1e-3)


def test_pose_roi_rotation() -> None:
    pose = _example("pose_landmarks")
    # body-scale keypoint to the right of the hip: the crop turns 90 degrees so its top is +x
    roi = pose.pose_roi(np.array([[50.0, 50.0], [90.0, 50.0]]))
    assert roi.rotation == pytest.approx(math.pi / 2)
    crop = pose.warp(np.arange(100 * 100 * 3, dtype=np.float32).reshape(100, 100, 3) % 251,
                     pose.Rect(50, 50, 20, 20), 20)
    assert crop.shape == (20, 20, 3)
