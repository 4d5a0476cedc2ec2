"""NON_MAX_SUPPRESSION_V4/V5 and the custom TFLite_Detection_PostProcess against LiteRT's builtin
kernels, plus the shape-rule errors. Scores are kept distinct: LiteRT breaks ties with a heap /
an unstable sort, so equal scores may legitimately come out in another order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import Const, assert_close, litert_run, one_op_model, run_both
from tflite_jit import ops
from tflite_jit.format.builder import ModelBuilder

HYP = settings(max_examples=20, deadline=None)
PP = "TFLite_Detection_PostProcess"


def _rng(data):
    return np.random.default_rng(data.draw(st.integers(0, 2**16)))


def _boxes(rng, n: int) -> np.ndarray:
    """Clustered boxes (so IoUs spread over [0, 1]), corners sometimes swapped, a few empty
    (empty boxes are used only where LiteRT handles them: see test_nms_empty_box_rejected)."""
    c = rng.uniform(0, 1, (n, 2)) * rng.choice([0.2, 1.0])
    hw = rng.uniform(0.05, 0.6, (n, 2))
    b = np.concatenate([c - hw / 2, c + hw / 2], axis=1)
    swap = rng.random(n) < 0.2
    b[swap] = b[swap][:, [2, 3, 0, 1]]
    empty = rng.random(n) < 0.05
    b[empty, 2] = b[empty, 0]
    return b.astype(np.float32)


def _scores(rng, shape) -> np.ndarray:
    n = int(np.prod(shape))
    return ((rng.permutation(n) + rng.uniform(0.1, 0.9, n)) / n).reshape(shape).astype(np.float32)


@HYP
@given(st.booleans(), st.data())
def test_nms(v5: bool, data) -> None:
    rng = _rng(data)
    n = data.draw(st.integers(1, 24))
    boxes, scores = _boxes(rng, n), _scores(rng, (n,))
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    boxes[area == 0, 2] += 0.25  # LiteRT repeats an empty box once selected (rejected by us)
    max_out = np.array(data.draw(st.integers(0, 12)), np.int32)
    iou = np.array(data.draw(st.sampled_from([0.0, 0.2, 0.5, 0.7, 1.0])), np.float32)
    score_thr = np.array(data.draw(st.sampled_from([-1.0, 0.0, 0.3, 0.6])), np.float32)
    specs = [boxes, scores, Const(max_out), Const(iou), Const(score_thr)]
    op = "NON_MAX_SUPPRESSION_V4"
    if v5:
        op = "NON_MAX_SUPPRESSION_V5"
        specs.append(Const(np.array(data.draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])), np.float32)))
    ours, theirs = run_both(op, specs, n_outputs=3 if v5 else 2)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert_close(a, b)


def _pp_model(n: int, cols: int, options: dict) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    ins = [g.input("boxes", (1, n, 4)), g.input("scores", (1, n, cols)), g.input("anchors", (n, 4))]
    k = options["max_detections"] * options.get("max_classes_per_detection", 1)
    outs = [g.tensor("det_boxes", (1, k, 4)), g.tensor("det_classes", (1, k)),
            g.tensor("det_scores", (1, k)), g.tensor("num_det", (1,))]
    g.op(PP, ins, outs, custom=True, custom_options=options)
    g.output(*outs)
    return mb.build()


@HYP
@given(st.booleans(), st.data())
def test_detection_postprocess(regular: bool, data) -> None:
    rng = _rng(data)
    n = data.draw(st.integers(1, 20))
    num_classes = data.draw(st.integers(1, 4))
    background = data.draw(st.booleans())
    cols = num_classes + int(background)
    options = {
        "max_detections": data.draw(st.integers(1, 8)),
        "max_classes_per_detection": data.draw(st.integers(1, num_classes)),
        "detections_per_class": data.draw(st.integers(1, 6)),
        "use_regular_nms": regular,
        "nms_score_threshold": data.draw(st.sampled_from([0.0, 0.2, 0.5])),
        "nms_iou_threshold": data.draw(st.sampled_from([0.1, 0.3, 0.6, 1.0])),
        "num_classes": num_classes,
        "y_scale": 10.0, "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0,
    }
    enc = rng.normal(0, 1, (1, n, 4)).astype(np.float32)
    cls = _scores(rng, (1, n, cols))
    anchors = np.concatenate([rng.uniform(0, 1, (n, 2)) * rng.choice([0.2, 1.0]),
                              rng.uniform(0.05, 0.5, (n, 2))], axis=1).astype(np.float32)
    theirs = litert_run(_pp_model(n, cols, options), [enc, cls, anchors])
    opdef = ops.get(PP)
    ours = opdef.reference([enc, cls, anchors], opdef.parse(options))
    assert_close(ours[3], theirs[3], what="num_detections")
    # rows past the detections are not written by LiteRT (uninitialised memory)
    rows = int(theirs[3][0]) * (1 if regular else options["max_classes_per_detection"])
    for a, b, what in zip(ours[:3], theirs[:3], ("boxes", "classes", "scores")):
        assert_close(a[:, :rows], b[:, :rows], what=what)
        assert not a[:, rows:].any(), f"{what}: our unused rows are not zero"


def _nms_inputs(n=4, boxes_shape=None, scores_shape=None, max_out=None):
    max_out = np.array(3, np.int32) if max_out is None else max_out
    return [(boxes_shape or (n, 4), np.float32), (scores_shape or (n,), np.float32), max_out,
            np.array(0.5, np.float32), np.array(0.0, np.float32)]


@pytest.mark.parametrize("inputs,match", [
    (_nms_inputs(boxes_shape=(4, 3)), r"\[num_boxes, 4\]"),
    (_nms_inputs(scores_shape=(5,)), "one per box"),
    (_nms_inputs(max_out=np.array([3, 3], np.int32)), "scalar"),
    (_nms_inputs(max_out=np.array(3.0, np.float32)), "int32"),
    (_nms_inputs(max_out=np.array(-1, np.int32)), ">= 0"),
])
def test_nms_shape_errors(inputs, match) -> None:
    with pytest.raises(ops.OpError, match=match):
        one_op_model("NON_MAX_SUPPRESSION_V4", inputs, n_outputs=2)


def test_nms_empty_box_rejected() -> None:
    boxes = np.array([[0, 0, 1, 1], [2, 2, 2, 3], [4, 4, 5, 5]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    args = [np.array(3, np.int32), np.array(0.5, np.float32), np.array(0.0, np.float32)]
    with pytest.raises(ops.OpError, match="zero area"):
        ops.get("NON_MAX_SUPPRESSION_V4").reference([boxes, scores, *args], None)
    # selected last, an empty box is harmless (LiteRT agrees)
    scores = np.array([0.9, 0.6, 0.7], np.float32)
    ours, theirs = run_both("NON_MAX_SUPPRESSION_V4", [boxes, scores, *map(Const, args)],
                            n_outputs=2)
    for a, b in zip(ours, theirs):
        assert_close(a, b)


def test_nms_bad_iou_threshold_rejected() -> None:
    b = np.zeros((2, 4), np.float32)
    s = np.ones(2, np.float32)
    with pytest.raises(ops.OpError, match="iou_threshold"):
        ops.get("NON_MAX_SUPPRESSION_V4").reference(
            [b, s, np.array(2, np.int32), np.array(1.5, np.float32), np.array(0, np.float32)], None)


def _pp_infer(enc, cls, anc, **over):
    options = {"max_detections": 3, "max_classes_per_detection": 1, "num_classes": 2,
               "nms_score_threshold": 0.1, "nms_iou_threshold": 0.5, "y_scale": 10.0,
               "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0, **over}
    opdef = ops.get(PP)
    f = np.dtype(np.float32)
    ctx = ops.InferCtx(op_name=PP, attrs=opdef.parse(options), shapes=[enc, cls, anc],
                       dtypes=[f, f, f], values=[None, None, None])
    return opdef.infer(ctx)


def test_postprocess_shapes_and_errors() -> None:
    assert _pp_infer((1, 5, 4), (1, 5, 3), (5, 4), max_classes_per_detection=2)[0][0] == (1, 6, 4)
    with pytest.raises(ops.OpError, match="anchors"):
        _pp_infer((1, 5, 4), (1, 5, 3), (4, 4))
    with pytest.raises(ops.OpError, match="num_classes"):
        _pp_infer((1, 5, 4), (1, 5, 5), (5, 4))
    with pytest.raises(ops.OpError, match="box encodings"):
        _pp_infer((2, 5, 4), (2, 5, 3), (5, 4))
    with pytest.raises(ops.OpError, match=r"\(0, 1\]"):
        _pp_infer((1, 5, 4), (1, 5, 3), (5, 4), nms_iou_threshold=0.0)
    with pytest.raises(ops.OpError, match="exceeds num_classes"):
        _pp_infer((1, 5, 4), (1, 5, 3), (5, 4), max_classes_per_detection=3)
    with pytest.raises(ops.OpError, match="lack"):
        ops.get(PP).parse({"max_detections": 3})


def _pp_edge(regular: bool, scores, anchors, score_thr: float, iou_thr: float) -> None:
    options = {"max_detections": 3, "max_classes_per_detection": 1, "detections_per_class": 3,
               "use_regular_nms": regular, "nms_score_threshold": score_thr,
               "nms_iou_threshold": iou_thr, "num_classes": 1, "y_scale": 10.0, "x_scale": 10.0,
               "h_scale": 5.0, "w_scale": 5.0}
    enc = np.zeros((1, 3, 4), np.float32)
    cls = np.array(scores, np.float32).reshape(1, 3, 1)
    anchors = np.array(anchors, np.float32)
    opdef = ops.get(PP)
    ours = opdef.reference([enc, cls, anchors], opdef.parse(options))
    theirs = litert_run(_pp_model(3, 1, options), [enc, cls, anchors])
    for a, b in zip(ours, theirs):
        assert_close(a, b)


@pytest.mark.parametrize("regular", [False, True])
def test_postprocess_threshold_edges(regular: bool) -> None:
    """score >= nms_score_threshold is kept; IoU == nms_iou_threshold is not suppressed; a
    zero-height anchor gives an empty box that LiteRT handles."""
    anchors = [[0.5, 0.5, 1, 1], [0.5, 0.25, 1, 0.5], [5, 5, 1, 1]]  # boxes 0 and 1: IoU 0.5
    _pp_edge(regular, [0.9, 0.8, 0.5], anchors, 0.5, 0.9)
    _pp_edge(regular, [0.9, 0.8, 0.7], anchors, 0.0, 0.5)
    _pp_edge(regular, [0.9, 0.8, 0.7], [[0.5, 0.5, 0, 1], *anchors[1:]], 0.0, 0.5)


def test_postprocess_negative_anchor_rejected() -> None:
    options = {"max_detections": 3, "num_classes": 1, "nms_score_threshold": 0.0,
               "nms_iou_threshold": 0.5, "y_scale": 10.0, "x_scale": 10.0, "h_scale": 5.0,
               "w_scale": 5.0}
    anchors = np.array([[0.5, 0.5, -1, 1], [0.5, 0.5, 1, 1]], np.float32)
    opdef = ops.get(PP)
    with pytest.raises(ops.OpError, match="ymin > ymax"):
        opdef.reference([np.zeros((1, 2, 4), np.float32), np.ones((1, 2, 1), np.float32), anchors],
                        opdef.parse(options))
