"""Classification heads: output tensor -> sorted, filtered, labelled categories.

One head per classification output tensor, built from its metadata (labels, display names,
score calibration, score threshold) and the ClassificationOptions, with the Task Library's
checks and messages. Image, text and audio classifiers all post-process through it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tflite_jit.support import metadata_schema_py_generated as fb
from tflite_jit.support.task import engine, labels
from tflite_jit.support.task.processor.options import ClassificationOptions
from tflite_jit.support.task.processor.results import Category, Classifications


class ClassNameFilter:
    """The allowlist or denylist, reduced to the names the labels know."""

    def __init__(self, options: Any, heads_labels: list[tuple[str, list[labels.LabelItem]]],
                 words: tuple[str, str] = ("allowlist", "denylist")):
        allow = list(options.category_name_allowlist or [])
        deny = list(options.category_name_denylist or [])
        if allow and deny:
            raise ValueError(f"`class_name_{words[0]}` and `class_name_{words[1]}` are mutually "
                             "exclusive options.")
        self.values: set[str] = set()
        self.is_allowlist = bool(allow)
        if not allow and not deny:
            return
        known: set[str] = set()
        for i, (name, items) in enumerate(heads_labels):
            names = {it.name for it in items if it.name}
            if not names:
                raise ValueError(f"Using `class_name_{words[0]}` or `class_name_{words[1]}` "
                                 "requires labels to be present but none was found for "
                                 f"classification head: {name or f'#{i}'}")
            known |= names
        self.values = {n for n in (allow or deny) if n in known}
        if not self.values:
            raise ValueError(f"Invalid class names specified via `class_name_"
                             f"{words[0] if allow else words[1]}`: none match with model labels.")

    @property
    def active(self) -> bool:
        return bool(self.values)

    def allows(self, name: str) -> bool:
        return (name in self.values) == self.is_allowlist


def check_max_results(options: Any) -> None:
    if options.max_results is not None and options.max_results == 0:
        raise ValueError("Invalid `max_results` option: value must be != 0")


class ClassificationHead:
    """One output tensor's post-processing."""

    def __init__(self, model: engine.TaskModel, output_index: int,
                 tensor_md: dict[str, Any] | None, locale: str | None):
        self.output_index = output_index
        self.name = (tensor_md or {}).get("name", "")
        self.labels = labels.label_map(model, tensor_md, fb.AssociatedFileType.TENSOR_AXIS_LABELS,
                                       locale)
        self.threshold = labels.score_threshold(tensor_md, 0.0)
        self.calibration = labels.ScoreCalibration.from_metadata(model, tensor_md, self.labels,
                                                                 require_labels=True)
        detail = model.outputs[output_index]
        shape = tuple(int(d) for d in detail["shape"])
        if len(shape) == 4:
            if shape[1] != 1 or shape[2] != 1:
                raise ValueError(f"Unexpected WxH sizes for output index {output_index}: got "
                                 f"{shape[2]}x{shape[1]}, expected 1x1.")
        elif len(shape) != 2:
            raise ValueError(f"Unexpected number of dimensions for output index {output_index}: "
                             f"got {len(shape)}D, expected either 2D (BxN with B=1) or 4D "
                             "(BxHxWxN with B=1, W=1, H=1).")
        if shape[0] != 1:
            raise ValueError("The output array is expected to have a batch size of 1. Got "
                             f"{shape[0]} for output index {output_index}.")
        n = shape[-1]
        if not self.labels:
            self.labels = [labels.LabelItem() for _ in range(n)]
        if n != len(self.labels):
            raise ValueError(f"Got {n} class(es) for output index {output_index}, expected "
                             f"{len(self.labels)} according to the label map.")
        self.dtype = np.dtype(detail["dtype"])
        if self.dtype not in (np.uint8, np.float32):
            raise ValueError(f"Type mismatch for output tensor {detail['name']}. Requested one "
                             "of these types: kTfLiteUint8/kTfLiteFloat32, got "
                             f"{_type_name(self.dtype)}.")
        scale, zero_point = detail["quantization"]
        self.scale, self.zero_point = np.float32(scale), int(zero_point)

    def scores(self, output: np.ndarray) -> list[float]:
        flat = np.asarray(output).reshape(-1)[: len(self.labels)]
        if self.dtype == np.uint8:
            values = (self.scale * (flat.astype(np.int32) - self.zero_point).astype(np.float32))
        else:
            values = flat.astype(np.float32)
        out = [float(v) for v in values]
        if self.calibration is not None:
            out = [self.calibration.calibrate(self.labels[i].name, s) for i, s in enumerate(out)]
        return out

    def classify(self, output: np.ndarray, options: Any, name_filter: ClassNameFilter,
                 head_index: int, head_name: str) -> Classifications:
        scores = self.scores(output)
        n = len(self.labels)
        max_results = options.max_results
        num_results = n if max_results is None or max_results < 0 else min(n, max_results)
        threshold = (self.threshold if options.score_threshold is None
                     else float(np.float32(options.score_threshold)))
        order = sorted(range(n), key=lambda i: -scores[i])
        categories = []
        for i in order:
            if scores[i] < threshold or len(categories) >= num_results:
                break
            if name_filter.active and not name_filter.allows(self.labels[i].name):
                continue
            categories.append(Category(index=i, score=scores[i],
                                       display_name=self.labels[i].display_name,
                                       category_name=self.labels[i].name))
        return Classifications(categories=categories, head_index=head_index, head_name=head_name)


def _type_name(dtype: np.dtype) -> str:
    return {np.dtype(np.int8): "INT8", np.dtype(np.int32): "INT32", np.dtype(np.int64): "INT64",
            np.dtype(np.float16): "FLOAT16", np.dtype(np.int16): "INT16",
            np.dtype(np.bool_): "BOOL"}.get(np.dtype(dtype), str(dtype).upper())


def options_or_default(options: ClassificationOptions | None) -> ClassificationOptions:
    return options if options is not None else ClassificationOptions()
