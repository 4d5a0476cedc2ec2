"""Classify images with tflite_jit's Task Library (tflite_support's API, our Interpreter).

    python examples/image_classification.py --model efficientnet_lite0.tflite cat.jpg dog.png
    python examples/image_classification.py          # the repo's tiny demo model, a synthetic image

Any image classifier with TFLite metadata works (e.g. the EfficientNet-Lite or MobileNet models
published with metadata); image files need Pillow (`pip install 'tflite-jit[image]'`).
"""

from __future__ import annotations

import argparse
import time

from _common import demo_image, demo_model

from tflite_jit.support.task import core, processor, vision


def main(argv: list[str] | None = None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", nargs="*", help="image files (default: a synthetic image)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--max-results", type=int, default=3)
    args = ap.parse_args(argv)
    options = vision.ImageClassifierOptions(
        base_options=core.BaseOptions(file_name=args.model or demo_model("classifier_float")),
        classification_options=processor.ClassificationOptions(max_results=args.max_results))
    t0 = time.perf_counter()
    classifier = vision.ImageClassifier.create_from_options(options)
    print(f"model ready in {time.perf_counter() - t0:.2f} s (compiles once, then cached)")
    images = ([(p, vision.TensorImage.create_from_file(p)) for p in args.images]
              or [("synthetic", vision.TensorImage.create_from_array(demo_image()))])
    results = []
    for name, image in images:
        t0 = time.perf_counter()
        result = classifier.classify(image)
        ms = 1000 * (time.perf_counter() - t0)
        print(f"{name} ({ms:.1f} ms):")
        for c in result.classifications[0].categories:
            print(f"  {c.score:.4f}  {c.display_name or c.category_name}")
        results.append(result)
    return results


if __name__ == "__main__":
    main()
