"""Label maps, score calibration and score thresholds from an output tensor's metadata.

The Task Library's rules: labels come from the first associated file of the asked type, display
names from the first one of that type whose locale is the asked locale ("en" by default); files
split on "\\n" only, a trailing empty line dropped. Score calibration applies a per-label
sigmoid in float32 with the C++ code's mix of float and double steps, so calibrated scores
match to the last bit.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from tflite_jit.support import metadata_schema_py_generated as fb
from tflite_jit.support.task import engine

DEFAULT_LOCALE = "en"
_f32 = np.float32


@dataclasses.dataclass
class LabelItem:
    name: str = ""
    display_name: str = ""


def _lines(data: bytes) -> list[str]:
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def label_map_from_files(labels: bytes, display_names: bytes | None) -> list[LabelItem]:
    if not labels:
        raise ValueError("Expected non-empty labels file.")
    items = [LabelItem(name=n) for n in _lines(labels)]
    if display_names:
        shown = _lines(display_names)
        if len(shown) != len(items):
            raise ValueError(f"Mismatch between number of labels ({len(items)}) and display "
                             f"names ({len(shown)}).")
        for item, d in zip(items, shown):
            item.display_name = d
    return items


def label_map(model: engine.TaskModel, tensor_md: dict[str, Any] | None, file_type: int,
              locale: str | None) -> list[LabelItem]:
    """The tensor's label map ([] without a labels file)."""
    name = engine.first_file_name(tensor_md, file_type)
    if not name:
        return []
    shown_name = engine.first_file_name(tensor_md, file_type,
                                        DEFAULT_LOCALE if locale is None else locale)
    shown = model.associated_file(shown_name) if shown_name else None
    return label_map_from_files(model.associated_file(name), shown)


def score_threshold(tensor_md: dict[str, Any] | None, default: float) -> float:
    opts = engine.process_unit(tensor_md, engine.PU_SCORE_THRESHOLDING)
    if opts is None:
        return default
    return float(_f32(opts.get("global_score_threshold", 0.0)))


def _clamped_log(x: float, threshold: float) -> float:
    x = float(_f32(x))
    if x < threshold:
        return float(_f32(2.0 * math.log(threshold) - math.log(2.0 * threshold - x)))
    if x <= 0.0:  # threshold <= 0 is never used (1e-16), kept total for safety
        return float("-inf")
    return float(_f32(math.log(x)))


_LOG_MIN = float(_f32(1e-16))


@dataclasses.dataclass
class Sigmoid:
    scale: float
    slope: float
    offset: float
    min_score: float | None = None


class ScoreCalibration:
    """Sigmoid score calibration (metadata ScoreCalibrationOptions + its parameters file)."""

    def __init__(self, transformation: int, default_score: float,
                 sigmoids: dict[str, Sigmoid]):
        self.transformation = transformation
        self.default_score = float(_f32(default_score))
        self.sigmoids = sigmoids

    @classmethod
    def from_metadata(cls, model: engine.TaskModel, tensor_md: dict[str, Any] | None,
                      labels: list[LabelItem], *, require_labels: bool) -> ScoreCalibration | None:
        opts = engine.process_unit(tensor_md, engine.PU_SCORE_CALIBRATION)
        if opts is None:
            return None
        if require_labels and not labels:
            raise ValueError("Using ScoreCalibrationOptions requires a label map to be provided "
                             "as TENSOR_AXIS_LABELS associated file.")
        name = engine.first_file_name(tensor_md, fb.AssociatedFileType.TENSOR_AXIS_SCORE_CALIBRATION)
        if not name:
            raise ValueError("Found ScoreCalibrationOptions but missing required associated "
                             "parameters file with type TENSOR_AXIS_SCORE_CALIBRATION.")
        data = model.associated_file(name)
        if not data:
            raise ValueError("Expected non-empty score calibration file.")
        lines = data.decode("utf-8", errors="replace").split("\n")
        if len(lines) != len(labels):
            raise ValueError(f"Mismatch between number of labels ({len(labels)}) and score "
                             f"calibration parameters ({len(lines)}).")
        sigmoids: dict[str, Sigmoid] = {}
        for item, line in zip(labels, lines):
            if line:
                sigmoids[item.name] = _sigmoid(line)
        return cls(opts.get("score_transformation", 0), opts.get("default_score", 0.0), sigmoids)

    def calibrate(self, label: str, score: float) -> float:
        s = self.sigmoids.get(label)
        score = float(_f32(score))
        if s is None or (s.min_score is not None and score < s.min_score):
            return self.default_score
        t = self.transformation
        if t == fb.ScoreTransformationType.IDENTITY:
            x = score
        elif t == fb.ScoreTransformationType.LOG:
            x = _clamped_log(score, _LOG_MIN)
        else:  # INVERSE_LOGISTIC
            x = float(_f32(_clamped_log(score, _LOG_MIN)
                           - _clamped_log(float(_f32(1.0 - score)), _LOG_MIN)))
        shifted = float(_f32(_f32(_f32(x) * _f32(s.slope)) + _f32(s.offset)))
        if shifted >= 0.0:
            calibrated = float(_f32(s.scale / (1.0 + math.exp(-shifted))))
        else:
            e = float(_f32(math.exp(shifted)))
            calibrated = float(_f32(float(_f32(s.scale * e)) / (1.0 + e)))
        return max(min(calibrated, s.scale), 0.0)


def _sigmoid(line: str) -> Sigmoid:
    parts = line.split(",")
    if len(parts) not in (3, 4):
        raise ValueError(f"Expected 3 or 4 parameters per line in score calibration file, got "
                         f"{len(parts)}.")
    values = []
    for p in parts:
        try:
            values.append(float(_f32(float(p.strip()))))
        except ValueError:
            raise ValueError(f"Could not parse score calibration parameter as float: {p}.") from None
    if values[0] < 0:
        raise ValueError(f"Expected scale to be a non-negative value, but got {values[0]:f}.")
    return Sigmoid(values[0], values[1], values[2], values[3] if len(values) == 4 else None)
