"""`tflite-jit classify|detect|segment MODEL IMAGE...`: the Task Library from the shell.

Each runs the matching tflite_jit.support.task vision task (pre- and post-processing from the
model's metadata) on every image and prints the results, or one JSON document with --json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

import numpy as np

from tflite_jit.tools.models_spec import UserError


def add_parsers(sub: Any) -> None:
    for name, help_, func in (
            ("classify", "classify images with an image classifier (metadata labels, options)",
             cmd_classify),
            ("detect", "detect objects with an SSD-style detector (TFLite_Detection_PostProcess)",
             cmd_detect),
            ("segment", "segment images with an image segmenter (category or confidence masks)",
             cmd_segment)):
        p = sub.add_parser(name, help=help_)
        p.add_argument("model", help="a .tflite model with Task Library metadata")
        p.add_argument("images", nargs="+", help="image files (PNG, JPEG, BMP, ...: Pillow)")
        p.add_argument("--json", action="store_true", help="print one JSON document")
        p.add_argument("--threads", type=int, default=-1, help="interpreter threads (-1: default)")
        if name in ("classify", "detect"):
            p.add_argument("--max-results", type=int, default=None)
            p.add_argument("--score-threshold", type=float, default=None)
            p.add_argument("--allow", nargs="+", default=None, metavar="LABEL",
                           help="keep only these labels")
            p.add_argument("--deny", nargs="+", default=None, metavar="LABEL",
                           help="drop these labels")
        p.add_argument("--locale", default=None, help="display names' locale (default en)")
        if name == "segment":
            p.add_argument("--confidence", action="store_true",
                           help="confidence masks (one per class) instead of a category mask")
        p.set_defaults(func=func)


def _task() -> Any:
    from tflite_jit.support import task

    return task


def _base(args: argparse.Namespace) -> Any:
    return _task().core.BaseOptions(file_name=args.model, num_threads=args.threads)


def _options(args: argparse.Namespace, cls: Any) -> Any:
    return cls(max_results=args.max_results, score_threshold=args.score_threshold,
               category_name_allowlist=args.allow, category_name_denylist=args.deny,
               display_names_locale=args.locale)


def _images(args: argparse.Namespace) -> list[tuple[str, Any]]:
    vision = _task().vision
    out = []
    for path in args.images:
        try:
            out.append((path, vision.TensorImage.create_from_file(path)))
        except ImportError as e:
            raise UserError(str(e)) from None
        except ValueError as e:
            raise UserError(f"{path}: {e}") from None
    return out


def _create(factory: Any, options: Any) -> Any:
    try:
        return factory(options)
    except ValueError as e:
        raise UserError(f"{options.base_options.file_name}: {e}") from None


def plain(x: Any) -> Any:
    """Results as JSON-ready data (arrays as nested lists)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if hasattr(x, "name") and hasattr(x, "value") and not isinstance(x, (str, bytes)):
        return x.name
    return x


def _label(c: Any) -> str:
    name = c.display_name or c.category_name or f"#{c.index}"
    return name if not c.display_name or c.display_name == c.category_name else (
        f"{c.display_name} ({c.category_name})")


def _emit(args: argparse.Namespace, results: list[tuple[str, Any]], text: Any) -> int:
    if args.json:
        print(json.dumps([{"image": p, "result": plain(r)} for p, r in results], indent=1))
    else:
        for path, r in results:
            print(path)
            for line in text(r):
                print("  " + line)
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    t = _task()
    clf = _create(t.vision.ImageClassifier.create_from_options, t.vision.ImageClassifierOptions(
        _base(args), _options(args, t.processor.ClassificationOptions)))
    results = [(p, clf.classify(im)) for p, im in _images(args)]

    def text(r: Any) -> list[str]:
        lines = []
        for head in r.classifications:
            if len(r.classifications) > 1:
                lines.append(f"head {head.head_index}{' ' + head.head_name if head.head_name else ''}:")
            for k, c in enumerate(head.categories, 1):
                lines.append(f"{k:3d}. {c.score:.6f}  {_label(c)}  [index {c.index}]")
        return lines

    return _emit(args, results, text)


def cmd_detect(args: argparse.Namespace) -> int:
    t = _task()
    det = _create(t.vision.ObjectDetector.create_from_options, t.vision.ObjectDetectorOptions(
        _base(args), _options(args, t.processor.DetectionOptions)))
    results = [(p, det.detect(im)) for p, im in _images(args)]

    def text(r: Any) -> list[str]:
        if not r.detections:
            return ["no detections"]
        lines = []
        for k, d in enumerate(r.detections, 1):
            b, c = d.bounding_box, d.categories[0]
            lines.append(f"{k:3d}. {c.score:.6f}  {_label(c)}  box x={b.origin_x} y={b.origin_y} "
                         f"w={b.width} h={b.height}")
        return lines

    return _emit(args, results, text)


def cmd_segment(args: argparse.Namespace) -> int:
    t = _task()
    kind = (t.processor.OutputType.CONFIDENCE_MASK if args.confidence
            else t.processor.OutputType.CATEGORY_MASK)
    seg = _create(t.vision.ImageSegmenter.create_from_options, t.vision.ImageSegmenterOptions(
        _base(args), t.processor.SegmentationOptions(display_names_locale=args.locale,
                                                     output_type=kind)))
    results = [(p, seg.segment(im)) for p, im in _images(args)]

    def text(r: Any) -> list[str]:
        s = r.segmentations[0]
        lines = [f"mask {s.width}x{s.height}"]
        total = s.width * s.height
        for i, lab in enumerate(s.colored_labels):
            if s.category_mask is not None:
                share = float(np.count_nonzero(s.category_mask == i)) / total
                what = f"{100 * share:6.2f}% of pixels"
            else:
                what = f"mean confidence {float(np.mean(s.confidence_masks[i].value)):.6f}"
            name = lab.display_name or lab.category_name or f"#{i}"
            lines.append(f"{i:3d}. {name:<20s} rgb{tuple(lab.color)}  {what}")
        return lines

    return _emit(args, results, text)
