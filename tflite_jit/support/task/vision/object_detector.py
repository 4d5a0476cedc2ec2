"""ObjectDetector: SSD-style models whose last op is TFLite_Detection_PostProcess.

The model does the decoding and non-maximum suppression; the task reads its four outputs
(locations, classes, scores, count; found by metadata name), calibrates and filters scores, and
turns ratio boxes into pixel boxes on the input image as the Task Library rounds them.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tflite_jit.support import metadata_schema_py_generated as fb
from tflite_jit.support.task import engine, image_preprocessing, labels
from tflite_jit.support.task.core.base_options import BaseOptions
from tflite_jit.support.task.processor.options import DetectionOptions
from tflite_jit.support.task.processor.results import (
    BoundingBox,
    Category,
    Detection,
    DetectionResult,
)
from tflite_jit.support.task.vision.tensor_image import TensorImage

_NAMES = ("location", "category", "score", "number of detections")
_DIMS = (3, 2, 2, 1)


@dataclasses.dataclass
class ObjectDetectorOptions:
    base_options: BaseOptions
    detection_options: DetectionOptions = dataclasses.field(default_factory=DetectionOptions)


def _round_half_away(v: np.float32) -> int:
    f = math.floor(float(v))
    return int(f + 1) if float(v) - f >= 0.5 else int(f)


def denormalize(left: float, top: float, right: float, bottom: float, width: int,
                height: int) -> BoundingBox:
    """Ratio corners -> pixel box: origins truncated, sizes rounded, in float32."""
    f32 = np.float32
    w, h = f32(width), f32(height)
    ox, oy = f32(left) * w, f32(top) * h
    bw = abs(f32(right) - f32(left)) * w
    bh = abs(f32(bottom) - f32(top)) * h
    for v in (ox, oy, bw, bh):
        if not np.isfinite(v) or abs(float(v)) >= 2**31:
            raise RuntimeError("The detection model returned a box that is not a finite "
                               f"number of pixels ({left}, {top}, {right}, {bottom}).")
    return BoundingBox(origin_x=int(ox), origin_y=int(oy), width=_round_half_away(bw),
                       height=_round_half_away(bh))


class ObjectDetector:
    def __init__(self, options: ObjectDetectorOptions, model: engine.TaskModel) -> None:
        self._options = options
        self._model = model
        opts = options.detection_options or DetectionOptions()
        if opts.max_results is not None and opts.max_results == 0:
            raise ValueError("Invalid `max_results` option: value must be != 0")
        if opts.category_name_allowlist and opts.category_name_denylist:
            raise ValueError("`class_name_whitelist` and `class_name_blacklist` are mutually "
                             "exclusive options.")
        self._detection_options = opts
        self._preprocessor = image_preprocessing.ImagePreprocessor(model)
        if len(model.outputs) != 4:
            raise ValueError("Mobile SSD models are expected to have exactly 4 outputs, found "
                             f"{len(model.outputs)}")
        if model.metadata is None or not model.metadata.get("subgraph_metadata"):
            raise ValueError("Object detection models require TFLite Model Metadata but none "
                             "was found")
        mds = model.output_metadata()
        if mds is None or len(mds) != 4:
            raise ValueError("Mismatch between number of output tensors (4) and output tensors "
                             f"metadata ({0 if mds is None else len(mds)}).")
        idx = [engine.find_by_name(mds, n) for n in _NAMES]
        self._indices = idx if min(idx) >= 0 else [0, 1, 2, 3]
        loc_md = mds[self._indices[0]]
        content = loc_md.get("content") or {}
        name = loc_md.get("name", "#0")
        if content.get("content_properties_type") != fb.ContentProperties.BoundingBoxProperties:
            raise ValueError(f"Expected BoundingBoxProperties for tensor {name}, found none.")
        props = content.get("content_properties") or {}
        if props.get("type", 0) != fb.BoundingBoxType.BOUNDARIES:
            raise ValueError("Mobile SSD only supports BoundingBoxType BOUNDARIES.")
        if props.get("coordinate_type", 0) != fb.CoordinateType.RATIO:
            raise ValueError("Mobile SSD only supports CoordinateType RATIO.")
        order = props.get("index")
        if order is not None and len(order) != 4:
            raise ValueError("Expected BoundingBoxProperties index to contain 4 values, found "
                             f"{len(order)}")
        self._corners = [0, 1, 2, 3] if order is None else [int(v) for v in order]
        self._labels = labels.label_map(model, mds[self._indices[1]],
                                        fb.AssociatedFileType.TENSOR_VALUE_LABELS,
                                        opts.display_names_locale)
        if opts.score_threshold is not None:
            self._threshold = float(np.float32(opts.score_threshold))
        else:
            self._threshold = labels.score_threshold(mds[self._indices[2]],
                                                     float(np.finfo(np.float32).min))
        for i, j in enumerate(self._indices):
            shape = model.outputs[j]["shape"]
            if len(shape) != _DIMS[i]:
                raise ValueError(f"Output tensor at index {j} is expected to have {_DIMS[i]} "
                                 f"dimensions, found {len(shape)}.")
            if shape[0] != 1:
                raise ValueError(f"Expected batch size of 1, found {shape[0]}.")
        self._allowed: set[int] | None = None
        self._allow = True
        names = opts.category_name_allowlist or opts.category_name_denylist
        if names:
            if not self._labels:
                raise ValueError("Using `class_name_whitelist` or `class_name_blacklist` "
                                 "requires labels to be present in the TFLite Model Metadata "
                                 "but none was found.")
            self._allow = bool(opts.category_name_allowlist)
            first = {}
            for i, item in enumerate(self._labels):
                first.setdefault(item.name, i)
            self._allowed = {first[n] for n in names if n in first}
            if not self._allowed:
                raise ValueError("Invalid class names specified via `class_name_"
                                 f"{'whitelist' if self._allow else 'blacklist'}`: none match "
                                 "with model labels.")
        # the Task Library reads calibration from the third output's metadata, by position
        self._calibration = labels.ScoreCalibration.from_metadata(model, mds[2], self._labels,
                                                                  require_labels=False)

    @classmethod
    def create_from_file(cls, file_path: str) -> ObjectDetector:
        return cls.create_from_options(ObjectDetectorOptions(BaseOptions(file_name=file_path)))

    @classmethod
    def create_from_options(cls, options: ObjectDetectorOptions) -> ObjectDetector:
        return cls(options, engine.TaskModel(options.base_options))

    def detect(self, image: TensorImage) -> DetectionResult:
        pixels = image_preprocessing.check_image(image)
        outputs = self._model.run([self._preprocessor.tensor(pixels)])
        locations, classes, scores, count = (outputs[j] for j in self._indices)
        n = float(np.asarray(count).reshape(-1)[0])
        if not math.isfinite(n):
            raise RuntimeError("The detection model returned a number of detections that is "
                               f"not a number ({n}).")
        n = int(n)
        if locations.shape[1] < n or classes.shape[1] < n or scores.shape[1] < n:
            raise RuntimeError(f"The detection model returned {n} detections but its outputs "
                               f"hold {min(locations.shape[1], classes.shape[1], scores.shape[1])}.")
        opts = self._detection_options
        limit = min(opts.max_results, n) if opts.max_results and opts.max_results > 0 else n
        loc = locations.reshape(-1, 4)
        h, w = pixels.shape[:2]
        detections = []
        for i in range(n):
            c = float(classes.reshape(-1)[i])
            if not math.isfinite(c):
                raise RuntimeError(f"The detection model returned a class index {c}.")
            ci = int(c)
            if self._allowed is not None and (ci in self._allowed) != self._allow:
                continue
            score = float(scores.reshape(-1)[i])
            if self._calibration is not None:
                if not 0 <= ci < len(self._labels):
                    raise ValueError(_short_label_map(ci, len(self._labels)))
                score = self._calibration.calibrate(self._labels[ci].name, score)
            if score <= self._threshold:
                continue
            box = denormalize(*(loc[i, k] for k in self._corners), w, h)
            name = display = ""
            if self._labels:
                if not 0 <= ci < len(self._labels):
                    raise ValueError(_short_label_map(ci, len(self._labels)))
                name, display = self._labels[ci].name, self._labels[ci].display_name
            detections.append(Detection(bounding_box=box, categories=[Category(
                index=ci, score=score, display_name=display, category_name=name)]))
            if len(detections) == limit:
                break
        return DetectionResult(detections=detections)

    @property
    def options(self) -> ObjectDetectorOptions:
        return self._options


def _short_label_map(index: int, size: int) -> str:
    return (f"Label map does not contain enough elements: model returned class index {index} "
            f"but label map only contains {size} elements.")
