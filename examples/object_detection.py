"""Detect objects with tflite_jit's Task Library and draw the boxes.

    python examples/object_detection.py --model efficientdet_lite0.tflite street.jpg --out boxes.png
    python examples/object_detection.py          # the repo's tiny demo detector, a synthetic image

SSD-style detectors with metadata (outputs location/category/score/number of detections, the
model ending in TFLite_Detection_PostProcess) work; --out draws with Pillow.
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import demo_image, demo_model

from tflite_jit.support.task import core, processor, vision


def draw(pixels: np.ndarray, result, path: str) -> None:
    from PIL import Image, ImageDraw

    im = Image.fromarray(pixels[:, :, :3])
    d = ImageDraw.Draw(im)
    for det in result.detections:
        b, c = det.bounding_box, det.categories[0]
        d.rectangle([b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height],
                    outline=(255, 40, 40))
        d.text((b.origin_x + 2, b.origin_y + 1), f"{c.category_name} {c.score:.2f}",
               fill=(255, 255, 0))
    im.save(path)


def main(argv: list[str] | None = None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", nargs="*")
    ap.add_argument("--model", default=None)
    ap.add_argument("--score-threshold", type=float, default=0.3)
    ap.add_argument("--max-results", type=int, default=5)
    ap.add_argument("--out", default=None, help="draw the first image's detections to this PNG")
    args = ap.parse_args(argv)
    detector = vision.ObjectDetector.create_from_options(vision.ObjectDetectorOptions(
        base_options=core.BaseOptions(file_name=args.model or demo_model("detector")),
        detection_options=processor.DetectionOptions(score_threshold=args.score_threshold,
                                                     max_results=args.max_results)))
    images = ([(p, vision.TensorImage.create_from_file(p)) for p in args.images]
              or [("synthetic", vision.TensorImage.create_from_array(demo_image()))])
    results = []
    for name, image in images:
        result = detector.detect(image)
        print(f"{name}: {len(result.detections)} detection(s)")
        for det in result.detections:
            b, c = det.bounding_box, det.categories[0]
            print(f"  {c.score:.3f} {c.category_name:<10s} x={b.origin_x} y={b.origin_y} "
                  f"w={b.width} h={b.height}")
        results.append(result)
    if args.out:
        draw(images[0][1].buffer, results[0], args.out)
        print("drew", args.out)
    return results


if __name__ == "__main__":
    main()
