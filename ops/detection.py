"""Detection ops (float32): NON_MAX_SUPPRESSION_V4, NON_MAX_SUPPRESSION_V5 and the custom op
TFLite_Detection_PostProcess (SSD box decoding + fast or regular NMS).

Boxes are [y1, x1, y2, x2] (corners in either order); IoU is 0 when either box has no area.
The greedy loops are over selected boxes (small); the IoU of one box against many is vectorised.
Equal scores: LiteRT orders candidates with a heap / an unstable sort, so ties may come out in a
different order there; we take the lower box index first.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops.base import Cost, InferCtx, OpError, ShapeDtype
from tflite_jit.ops.common import F32, I32, define


class _Boxes:
    """Normalised corners and areas of [N, 4] boxes, computed once; iou() against many at once."""

    def __init__(self, boxes: np.ndarray) -> None:
        b = boxes.astype(np.float32, copy=False)
        self.ymin = np.minimum(b[:, 0], b[:, 2])
        self.xmin = np.minimum(b[:, 1], b[:, 3])
        self.ymax = np.maximum(b[:, 0], b[:, 2])
        self.xmax = np.maximum(b[:, 1], b[:, 3])
        self.area = (self.ymax - self.ymin) * (self.xmax - self.xmin)
        self._rows: dict[int, np.ndarray] = {}

    def iou(self, i: int, others: np.ndarray | slice = slice(None)) -> np.ndarray:
        """IoU (float32) of box i against boxes[others]; 0 where either area is <= 0."""
        ih = np.maximum(np.minimum(self.ymax[i], self.ymax[others])
                        - np.maximum(self.ymin[i], self.ymin[others]), 0)
        iw = np.maximum(np.minimum(self.xmax[i], self.xmax[others])
                        - np.maximum(self.xmin[i], self.xmin[others]), 0)
        inter = (ih * iw).astype(np.float32)
        union = self.area[i] + self.area[others] - inter
        ok = (self.area[i] > 0) & (self.area[others] > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(ok, inter / np.where(ok, union, np.float32(1)), np.float32(0))
        return out.astype(np.float32)

    def iou_cached(self, i: int, others: np.ndarray) -> np.ndarray:
        """iou(), with box i's row against every box computed once and kept (SSD
        post-processing revisits the same boxes once per class)."""
        row = self._rows.get(i)
        if row is None:
            row = self._rows[i] = self.iou(i)
        return row[others]


def _shape(ctx: InferCtx, i: int, what: str) -> tuple[int, ...]:
    s = ctx.shapes[i] if i < len(ctx.shapes) else None
    if s is None:
        raise OpError(f"{ctx.op_name}: {what} (input {i}) is required but omitted")
    return tuple(s)


def _want(ctx: InferCtx, i: int, dtype: Any, what: str) -> None:
    if np.dtype(ctx.dtypes[i]) != np.dtype(dtype):
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' has type {np.dtype(ctx.dtypes[i])}; "
                      f"it must be {np.dtype(dtype)}")


def _want_scalar(ctx: InferCtx, i: int, dtype: Any, what: str) -> None:
    s = _shape(ctx, i, what)
    if int(np.prod(s, dtype=np.int64)) != 1:
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' must be a scalar, got shape {list(s)}")
    _want(ctx, i, dtype, what)


# ---- NON_MAX_SUPPRESSION_V4 / V5 ---------------------------------------------------------------


def _infer_nms(ctx: InferCtx) -> list[ShapeDtype]:
    v5 = ctx.op_name == "NON_MAX_SUPPRESSION_V5"
    boxes = _shape(ctx, 0, "boxes")
    if len(boxes) != 2 or boxes[1] != 4:
        raise OpError(f"{ctx.op_name}: boxes '{ctx.name(0)}' must have shape [num_boxes, 4], got "
                      f"{list(boxes)}")
    _want(ctx, 0, np.float32, "boxes")
    scores = _shape(ctx, 1, "scores")
    if scores != (boxes[0],):
        raise OpError(f"{ctx.op_name}: scores '{ctx.name(1)}' must have shape [{boxes[0]}] (one per "
                      f"box), got {list(scores)}")
    _want(ctx, 1, np.float32, "scores")
    _want_scalar(ctx, 2, np.int32, "max_output_size")
    _want_scalar(ctx, 3, np.float32, "iou_threshold")
    _want_scalar(ctx, 4, np.float32, "score_threshold")
    if v5:
        _want_scalar(ctx, 5, np.float32, "soft_nms_sigma")
    m = int(np.asarray(ctx.value(2, f"max_output_size '{ctx.name(2)}'")).reshape(-1)[0])
    if m < 0:
        raise OpError(f"{ctx.op_name}: max_output_size '{ctx.name(2)}' is {m}; it must be >= 0")
    if v5:
        return [((m,), I32), ((m,), F32), ((), I32)]
    return [((m,), I32), ((), I32)]


def _scalar(x: np.ndarray | None, dtype: Any) -> Any:
    return np.asarray(x, dtype).reshape(-1)[0]


def _nms_select(boxes: np.ndarray, scores: np.ndarray, max_out: int, iou_thr: np.float32,
                score_thr: np.float32, sigma: np.float32) -> tuple[list[int], list[np.float32]]:
    """Greedy (soft-)NMS: a candidate is compared, lazily, with the boxes selected since it was
    last looked at; hard suppression when IoU >= iou_threshold, else its score decays by
    exp(-0.5 * iou^2 / sigma) (sigma > 0). A decayed candidate goes back into the queue.
    Measured on LiteRT: hard suppression is IoU >= iou_threshold (so a threshold of 0 keeps one
    box), candidates need score > score_threshold (strictly)."""
    scale = np.float32(-0.5) / sigma if sigma > 0 else np.float32(0)
    heap = [(-float(scores[i]), i, 0, np.float32(scores[i]))
            for i in np.flatnonzero(scores > score_thr)]
    heapq.heapify(heap)
    sel: list[int] = []
    sel_scores: list[np.float32] = []
    geo = _Boxes(boxes)
    empty_selected: list[int] = []
    while heap and len(sel) < max_out:
        _, idx, begin, score = heapq.heappop(heap)
        original = score
        suppressed = False
        if len(sel) > begin:
            ious = geo.iou(idx, np.array(sel[begin:], np.int64))[::-1]  # most recent first
            for iou in ious:
                if iou >= iou_thr:
                    suppressed = True
                    break
                score = np.float32(score * np.float32(np.exp(scale * iou * iou)))
                if score <= score_thr:
                    break
        if suppressed:
            continue
        if score == original:
            if empty_selected:
                # Measured: once LiteRT has selected a box with no area, every later selection
                # repeats that box's index (and score): garbage, so we refuse the input instead.
                raise OpError(f"NON_MAX_SUPPRESSION: box {empty_selected[0]} has zero area and was "
                              f"selected; LiteRT returns corrupt indices after selecting such a "
                              f"box. Drop empty boxes (or give them scores <= score_threshold)")
            if geo.area[idx] <= 0:
                empty_selected.append(idx)
            sel.append(idx)
            sel_scores.append(score)
        elif score > score_thr:
            heapq.heappush(heap, (-float(score), idx, len(sel), score))
    return sel, sel_scores


def _check_thresholds(op: str, iou_thr: float, sigma: float) -> None:
    # LiteRT does not check iou_threshold: above 1 it returns a valid count with every index 0
    # (garbage), below 0 it suppresses everything after the first box. We reject both. A
    # negative sigma fails LiteRT's Invoke ("Invalid sigma value for soft NMS").
    if not 0.0 <= iou_thr <= 1.0:
        raise OpError(f"{op}: iou_threshold is {iou_thr}; it must lie in [0, 1]")
    if sigma < 0:
        raise OpError(f"{op}: soft_nms_sigma is {sigma}; it must be >= 0")


def _nms_reference(inputs: Sequence[np.ndarray | None], v5: bool) -> list[np.ndarray]:
    op = "NON_MAX_SUPPRESSION_V5" if v5 else "NON_MAX_SUPPRESSION_V4"
    boxes = np.asarray(inputs[0], np.float32).reshape(-1, 4)
    scores = np.asarray(inputs[1], np.float32).reshape(-1)
    max_out = int(_scalar(inputs[2], np.int32))
    if max_out < 0:
        raise OpError(f"{op}: max_output_size is {max_out}; it must be >= 0")
    iou_thr = np.float32(_scalar(inputs[3], np.float32))
    score_thr = np.float32(_scalar(inputs[4], np.float32))
    sigma = np.float32(_scalar(inputs[5], np.float32)) if v5 else np.float32(0)
    _check_thresholds(op, float(iou_thr), float(sigma))
    sel, sel_scores = _nms_select(boxes, scores, max_out, iou_thr, score_thr, sigma)
    idx = np.zeros(max_out, np.int32)
    idx[:len(sel)] = sel
    valid = np.array(len(sel), np.int32)
    if not v5:
        return [idx, valid]
    sc = np.zeros(max_out, np.float32)
    sc[:len(sel)] = sel_scores
    return [idx, sc, valid]


def _nms_cost(ins: list, outs: list, a: Any) -> Cost:
    n = ins[0][0] if ins[0] else 0
    return Cost(flops=20.0 * n * max(1, int(np.prod(outs[0]))), bytes=4.0 * 5 * n)


# ---- TFLite_Detection_PostProcess --------------------------------------------------------------


@dataclass(frozen=True)
class PostProcessAttrs:
    max_detections: int
    max_classes_per_detection: int
    detections_per_class: int
    use_regular_nms: bool
    nms_score_threshold: float
    nms_iou_threshold: float
    num_classes: int
    y_scale: float
    x_scale: float
    h_scale: float
    w_scale: float


_PP = "TFLite_Detection_PostProcess"


def _parse_pp(o: dict[str, Any]) -> PostProcessAttrs:
    missing = [k for k in ("max_detections", "num_classes", "nms_score_threshold",
                           "nms_iou_threshold", "y_scale", "x_scale", "h_scale", "w_scale")
               if k not in o]
    if missing:
        raise OpError(f"{_PP}: custom options lack {missing}; the SSD post-processing op needs "
                      f"them in its flexbuffer map")
    try:
        return PostProcessAttrs(
            max_detections=int(o["max_detections"]),
            max_classes_per_detection=int(o.get("max_classes_per_detection", 1)),
            detections_per_class=int(o.get("detections_per_class", 100)),
            use_regular_nms=bool(o.get("use_regular_nms", False)),
            nms_score_threshold=float(o["nms_score_threshold"]),
            nms_iou_threshold=float(o["nms_iou_threshold"]),
            num_classes=int(o["num_classes"]),
            y_scale=float(o["y_scale"]), x_scale=float(o["x_scale"]),
            h_scale=float(o["h_scale"]), w_scale=float(o["w_scale"]))
    except (TypeError, ValueError) as e:
        raise OpError(f"{_PP}: a custom option has the wrong type ({e}); options must be numbers "
                      f"(use_regular_nms a bool)") from None


def _infer_pp(ctx: InferCtx) -> list[ShapeDtype]:
    a: PostProcessAttrs = ctx.attrs
    if len(ctx.shapes) != 3:
        raise OpError(f"{_PP}: takes 3 inputs (box encodings, class predictions, anchors), got "
                      f"{len(ctx.shapes)}")
    enc = _shape(ctx, 0, "box encodings")
    cls = _shape(ctx, 1, "class predictions")
    anc = _shape(ctx, 2, "anchors")
    for i, what in ((0, "box encodings"), (1, "class predictions"), (2, "anchors")):
        _want(ctx, i, np.float32, what)
    if len(enc) != 3 or enc[0] != 1 or enc[2] < 4:
        raise OpError(f"{_PP}: box encodings '{ctx.name(0)}' must have shape [1, num_boxes, 4 (or "
                      f"more)], got {list(enc)}")
    n = enc[1]
    if len(cls) != 3 or cls[0] != 1 or cls[1] != n:
        raise OpError(f"{_PP}: class predictions '{ctx.name(1)}' must have shape [1, {n}, "
                      f"num_classes(+1)], got {list(cls)}")
    if anc != (n, 4):
        raise OpError(f"{_PP}: anchors '{ctx.name(2)}' must have shape [{n}, 4] (ycenter, xcenter, "
                      f"h, w per box), got {list(anc)}")
    if a.num_classes < 1 or cls[2] - a.num_classes not in (0, 1):
        raise OpError(f"{_PP}: class predictions '{ctx.name(1)}' have {cls[2]} columns but "
                      f"num_classes is {a.num_classes}; there must be num_classes or "
                      f"num_classes + 1 (background first) columns")
    if a.max_detections < 1 or a.max_classes_per_detection < 1 or a.detections_per_class < 1:
        raise OpError(f"{_PP}: max_detections, max_classes_per_detection and detections_per_class "
                      f"must be >= 1, got {a.max_detections}, {a.max_classes_per_detection}, "
                      f"{a.detections_per_class}")
    if not a.use_regular_nms and a.max_classes_per_detection > a.num_classes:
        # Measured: LiteRT's fast path lays rows out as box_rank * max_classes_per_detection +
        # class_rank but writes only num_classes of them per box; the rest of each box's rows
        # inside the reported detections stay uninitialised (garbage). We refuse the model.
        raise OpError(f"{_PP}: max_classes_per_detection ({a.max_classes_per_detection}) exceeds "
                      f"num_classes ({a.num_classes}); LiteRT leaves output rows uninitialised "
                      f"then. Set max_classes_per_detection <= num_classes")
    if not 0.0 < a.nms_iou_threshold <= 1.0:  # LiteRT's Invoke fails the same check
        raise OpError(f"{_PP}: nms_iou_threshold is {a.nms_iou_threshold}; it must lie in (0, 1]")
    k = a.max_detections * a.max_classes_per_detection
    return [((1, k, 4), F32), ((1, k), F32), ((1, k), F32), ((1,), F32)]


def _decode(enc: np.ndarray, anchors: np.ndarray, a: PostProcessAttrs) -> np.ndarray:
    f = np.float32
    ay, ax, ah, aw = (anchors[:, i] for i in range(4))
    yc = enc[:, 0] / f(a.y_scale) * ah + ay
    xc = enc[:, 1] / f(a.x_scale) * aw + ax
    hh = f(0.5) * np.exp(enc[:, 2] / f(a.h_scale)) * ah
    hw = f(0.5) * np.exp(enc[:, 3] / f(a.w_scale)) * aw
    return np.stack([yc - hh, xc - hw, yc + hh, xc + hw], axis=1).astype(np.float32)


def _single_class_nms(geo: _Boxes, scores: np.ndarray, limit: int,
                      a: PostProcessAttrs) -> list[int]:
    """Greedy hard NMS over the boxes scoring >= the score threshold, at most `limit` kept."""
    keep = np.flatnonzero(scores >= np.float32(a.nms_score_threshold))
    cand = keep[np.argsort(-scores[keep], kind="stable")]
    sel: list[int] = []
    while cand.size and len(sel) < limit:  # one numpy pass per selected box
        sel.append(int(cand[0]))
        rest = cand[1:]
        cand = rest[geo.iou_cached(cand[0], rest) <= np.float32(a.nms_iou_threshold)]
    return sel


def _pp_reference(inputs: Sequence[np.ndarray | None], a: PostProcessAttrs) -> list[np.ndarray]:
    enc = np.asarray(inputs[0], np.float32)[0]
    cls = np.asarray(inputs[1], np.float32)[0]
    anchors = np.asarray(inputs[2], np.float32)
    boxes = _decode(enc, anchors, a)
    bad = (boxes[:, 0] > boxes[:, 2]) | (boxes[:, 1] > boxes[:, 3])
    if bad.any():  # LiteRT's Invoke fails its ValidateBoxes check here
        raise OpError(f"{_PP}: decoded box {int(np.flatnonzero(bad)[0])} has ymin > ymax or "
                      f"xmin > xmax (a negative anchor height or width); anchors must be "
                      f"[ycenter, xcenter, h >= 0, w >= 0]")
    scores = cls[:, cls.shape[1] - a.num_classes:]  # drop the background column if present
    geo = _Boxes(boxes)
    k = a.max_detections * a.max_classes_per_detection
    out_boxes = np.zeros((1, k, 4), np.float32)
    out_cls = np.zeros((1, k), np.float32)
    out_scores = np.zeros((1, k), np.float32)
    if a.use_regular_nms:
        cand_s, cand_b, cand_c = [], [], []
        for c in range(a.num_classes):
            sel = _single_class_nms(geo, scores[:, c], a.detections_per_class, a)
            cand_s += [scores[i, c] for i in sel]
            cand_b += sel
            cand_c += [c] * len(sel)
        order = np.argsort(-np.array(cand_s, np.float32), kind="stable")[:a.max_detections]
        for j, o in enumerate(order):
            out_boxes[0, j] = boxes[cand_b[o]]
            out_cls[0, j] = cand_c[o]
            out_scores[0, j] = cand_s[o]
        count = len(order)
    else:
        per = a.max_classes_per_detection  # <= num_classes (checked in infer)
        if per > a.num_classes:
            raise OpError(f"{_PP}: max_classes_per_detection ({per}) exceeds num_classes "
                          f"({a.num_classes}); set max_classes_per_detection <= num_classes")
        top = np.argsort(-scores, axis=1, kind="stable")[:, :per]
        best = np.take_along_axis(scores, top[:, :1], axis=1)[:, 0]
        sel = _single_class_nms(geo, best, a.max_detections, a)
        row = 0
        for b in sel:
            for c in top[b]:
                out_boxes[0, row] = boxes[b]
                out_cls[0, row] = c
                out_scores[0, row] = scores[b, c]
                row += 1
        # Measured: LiteRT counts selected boxes, not the rows written (per boxes x classes).
        count = len(sel)
    return [out_boxes, out_cls, out_scores, np.array([count], np.float32)]


def _pp_cost(ins: list, outs: list, a: Any) -> Cost:
    n = ins[0][1]
    return Cost(flops=30.0 * n * max(1, outs[0][1]), bytes=4.0 * n * (8 + ins[1][2]))


# ---- registration ------------------------------------------------------------------------------

NON_MAX_SUPPRESSION_V4 = define("NON_MAX_SUPPRESSION_V4", infer=_infer_nms,
                                reference=lambda x, a: _nms_reference(x, False), cost=_nms_cost,
                                shape_inputs=(2,))
NON_MAX_SUPPRESSION_V5 = define("NON_MAX_SUPPRESSION_V5", infer=_infer_nms,
                                reference=lambda x, a: _nms_reference(x, True), cost=_nms_cost,
                                shape_inputs=(2,))
DETECTION_POSTPROCESS = define(_PP, parse=_parse_pp, infer=_infer_pp, reference=_pp_reference, cost=_pp_cost)
