"""Body pose landmarks with MediaPipe's public pose models on tflite_jit: detection -> crop ->
landmarks, drawn with matplotlib (the `plot` extra).

    python examples/pose_landmarks.py person.jpg --out pose.png
    python examples/pose_landmarks.py person.jpg --models-dir /path/with/pose/models

The models (Apache-2.0) are MediaPipe 0.10.14's `pose_detection.tflite` and
`pose_landmark_full.tflite`: taken from --models-dir, else from the cache folder
(~/.cache/tflite_jit/mediapipe), else downloaded once by fetching the mediapipe 0.10.14 wheel
from PyPI and extracting the two files. They carry no Task metadata, so this example runs the
Interpreter directly and does MediaPipe's pre- and post-processing itself (its graph options:
SSD anchors, box and keypoint decoding, the ROI from the hip-centre and body-scale keypoints,
the rotated crop, the landmark projection). Like MediaPipe's pose graph it follows one person:
the best detection, merged with the candidates overlapping it by weighted non-maximum
suppression.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tflite_jit import Interpreter

MODELS = {"pose_detection.tflite": "mediapipe/modules/pose_detection/pose_detection.tflite",
          "pose_landmark_full.tflite": "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"}
CACHE = Path(os.environ.get("TFLITE_JIT_CACHE_DIR", Path.home() / ".cache" / "tflite_jit")) / "mediapipe"
DET_SIZE, LM_SIZE = 224, 256
#: the 33 body landmarks' skeleton (MediaPipe's pose topology)
CONNECTIONS = [(0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
               (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14),
               (14, 16), (16, 18), (16, 20), (16, 22), (18, 20), (11, 23), (12, 24), (23, 24),
               (23, 25), (24, 26), (25, 27), (26, 28), (27, 29), (28, 30), (29, 31), (30, 32),
               (27, 31), (28, 32)]


def find_models(models_dir: str | None) -> dict[str, Path]:
    for folder in [Path(models_dir)] if models_dir else [CACHE, Path("/work/mpmodels")]:
        paths = {k: folder / k for k in MODELS}
        if all(p.exists() for p in paths.values()):
            return paths
    if models_dir:
        sys.exit(f"{models_dir} lacks {', '.join(MODELS)}")
    return download_models()


def download_models() -> dict[str, Path]:
    """Fetch the mediapipe 0.10.14 wheel (any platform's: the models are the same) and keep
    only the two model files."""
    print("downloading the mediapipe 0.10.14 wheel from PyPI for its pose models ...")
    with urllib.request.urlopen("https://pypi.org/pypi/mediapipe/0.10.14/json") as r:
        urls = [u["url"] for u in json.load(r)["urls"] if u["filename"].endswith(".whl")]
    with urllib.request.urlopen(urls[0]) as r:
        wheel = zipfile.ZipFile(io.BytesIO(r.read()))
    CACHE.mkdir(parents=True, exist_ok=True)
    for name, member in MODELS.items():
        (CACHE / name).write_bytes(wheel.read(member))
    return {k: CACHE / k for k in MODELS}


def ssd_anchors() -> np.ndarray:
    """(2254, 2) anchor centres of MediaPipe's pose detector: strides 8, 16, 32, 32, 32 on a
    224 input, anchor offset 0.5, fixed-size anchors, two per cell per layer (layers with the
    same stride share cells)."""
    strides = [8, 16, 32, 32, 32]
    out, i = [], 0
    while i < len(strides):
        j, per_cell = i, 0
        while j < len(strides) and strides[j] == strides[i]:
            per_cell += 2
            j += 1
        n = math.ceil(DET_SIZE / strides[i])
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], 1)
        out.append(np.repeat(cells, per_cell, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


@dataclass
class Rect:
    """A rotated rectangle in pixels (centre, size, rotation in radians)."""
    cx: float
    cy: float
    w: float
    h: float
    rotation: float = 0.0


def warp(image: np.ndarray, rect: Rect, size: int) -> np.ndarray:
    """Sample `rect` of `image` into size x size (bilinear, zero outside): output pixel centres
    map through the rectangle's rotation and scale onto the image."""
    h, w = image.shape[:2]
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    nx, ny = (u + 0.5) / size - 0.5, (v + 0.5) / size - 0.5
    c, s = math.cos(rect.rotation), math.sin(rect.rotation)
    x = rect.cx + (c * nx * rect.w - s * ny * rect.h) - 0.5
    y = rect.cy + (s * nx * rect.w + c * ny * rect.h) - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    img = image.astype(np.float32)

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        inside = ((xx >= 0) & (xx < w) & (yy >= 0) & (yy < h))[..., None]
        return np.where(inside, img[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0.0)

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    return top * (1 - fy) + bottom * fy


def detect(interp: Interpreter, image: np.ndarray, anchors: np.ndarray):
    """The best person detection: (score, box centre/size in pixels, 4 keypoints in pixels)."""
    h, w = image.shape[:2]
    side = max(h, w)  # letterbox: a square around the image centre, zero padded
    square = Rect(w / 2, h / 2, side, side)
    x = warp(image, square, DET_SIZE) / 127.5 - 1.0
    interp.set_tensor(interp.get_input_details()[0]["index"], x[None].astype(np.float32))
    interp.invoke()
    out = interp.get_output_details()
    raw = interp.get_tensor(out[0]["index"])[0]
    logits = np.clip(interp.get_tensor(out[1]["index"])[0, :, 0].astype(np.float64), -100, 100)
    scores = 1 / (1 + np.exp(-logits))
    raw = raw / DET_SIZE
    boxes = np.concatenate([raw[:, :2] + anchors, raw[:, 2:4]], 1)  # centre x, y, w, h
    points = np.stack([raw[:, 4::2] + anchors[:, :1], raw[:, 5::2] + anchors[:, 1:]], -1)
    k = int(np.argmax(scores))
    # MediaPipe's weighted non-maximum suppression, for the best detection only: candidates
    # above 0.5 that overlap it with IoU > 0.3 average their boxes and keypoints by score
    near = np.flatnonzero((scores >= 0.5) & (_iou(boxes, boxes[k]) > 0.3))
    if near.size:
        wts = scores[near] / scores[near].sum()
        box = (boxes[near] * wts[:, None]).sum(0)
        pts = (points[near] * wts[:, None, None]).sum(0)
    else:
        box, pts = boxes[k], points[k]

    def to_image(nx: np.ndarray, ny: np.ndarray):
        return (nx - 0.5) * side + w / 2, (ny - 0.5) * side + h / 2

    px, py = to_image(pts[:, 0], pts[:, 1])
    bx, by = to_image(box[0], box[1])
    return float(scores[k]), (bx, by, box[2] * side, box[3] * side), np.stack([px, py], 1)


def _iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    lo = np.maximum(boxes[:, :2] - boxes[:, 2:] / 2, box[:2] - box[2:] / 2)
    hi = np.minimum(boxes[:, :2] + boxes[:, 2:] / 2, box[:2] + box[2:] / 2)
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    union = np.prod(boxes[:, 2:], axis=1) + np.prod(box[2:]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def pose_roi(keypoints: np.ndarray) -> Rect:
    """MediaPipe's ROI: centred on the hip-centre keypoint, sized twice the distance to the
    body-scale keypoint, scaled 1.25, square, turned so the body stands upright."""
    (x0, y0), (x1, y1) = keypoints[0], keypoints[1]
    size = 2 * math.hypot(x1 - x0, y1 - y0) * 1.25
    rotation = math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0)
    rotation = rotation - 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
    return Rect(x0, y0, size, size, rotation)


def landmarks(interp: Interpreter, image: np.ndarray, roi: Rect) -> tuple[np.ndarray, float]:
    """33 body landmarks (x, y in image pixels, z, visibility) and the pose presence score."""
    crop = warp(image, roi, LM_SIZE) / 255.0
    interp.set_tensor(interp.get_input_details()[0]["index"], crop[None].astype(np.float32))
    interp.invoke()
    out = interp.get_output_details()
    lm = interp.get_tensor(out[0]["index"])[0].reshape(39, 5)[:33]
    flag = float(interp.get_tensor(out[1]["index"]).reshape(-1)[0])
    nx, ny = lm[:, 0] / LM_SIZE - 0.5, lm[:, 1] / LM_SIZE - 0.5
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    x = roi.cx + c * nx * roi.w - s * ny * roi.h
    y = roi.cy + s * nx * roi.w + c * ny * roi.h
    visibility = 1 / (1 + np.exp(-lm[:, 3]))
    return np.stack([x, y, lm[:, 2] / LM_SIZE * roi.w, visibility], 1), flag


def draw(image: np.ndarray, points: np.ndarray, roi: Rect, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("drawing needs matplotlib: pip install 'tflite-jit[plot]'")
    fig, ax = plt.subplots(figsize=(6, 6 * image.shape[0] / image.shape[1]))
    ax.imshow(image)
    for a, b in CONNECTIONS:
        ax.plot(points[[a, b], 0], points[[a, b], 1], "-", color="lime", lw=2)
    ax.scatter(points[:, 0], points[:, 1], s=12, c="red", zorder=3)
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5]])
    cx = roi.cx + c * corners[:, 0] * roi.w - s * corners[:, 1] * roi.h
    cy = roi.cy + s * corners[:, 0] * roi.w + c * corners[:, 1] * roi.h
    ax.plot(cx, cy, "--", color="yellow", lw=1)
    ax.set_axis_off()
    fig.savefig(path, bbox_inches="tight", dpi=100)
    plt.close(fig)


def run(image: np.ndarray, detector_path: str, landmark_path: str, out: str | None = None):
    det, lm = Interpreter(model_path=str(detector_path)), Interpreter(model_path=str(landmark_path))
    det.allocate_tensors()
    lm.allocate_tensors()
    score, box, keypoints = detect(det, image, ssd_anchors())
    roi = pose_roi(keypoints)
    points, flag = landmarks(lm, image, roi)
    if out:
        draw(image, points, roi, out)
    return score, roi, points, flag


def main(argv: list[str] | None = None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image", help="an image with a person in it (Pillow decodes it)")
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--out", default=None, help="PNG with the skeleton drawn (matplotlib)")
    args = ap.parse_args(argv)
    from PIL import Image

    image = np.asarray(Image.open(args.image).convert("RGB"))
    paths = find_models(args.models_dir)
    score, roi, points, flag = run(image, paths["pose_detection.tflite"],
                                   paths["pose_landmark_full.tflite"], args.out)
    print(f"person score {score:.3f}, pose flag {flag:.3f}, ROI centre ({roi.cx:.0f}, "
          f"{roi.cy:.0f}) size {roi.w:.0f} rotation {math.degrees(roi.rotation):.1f} deg")
    for i in (0, 11, 12, 23, 24, 27, 28):
        print(f"  landmark {i:2d}: x={points[i, 0]:7.1f} y={points[i, 1]:7.1f} "
              f"visibility={points[i, 3]:.2f}")
    if args.out:
        print("drew", args.out)
    return score, roi, points, flag


if __name__ == "__main__":
    main()
