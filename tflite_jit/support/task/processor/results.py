"""The result dataclasses, field for field as tflite_support's (which wrap its protobufs).

Arrays compare by value (`==` on two results is True when every field matches), as
tflite_support's results compare through their protobufs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


def _arrays_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return np.array_equal(np.asarray(a), np.asarray(b))


@dataclasses.dataclass
class Category:
    index: int
    score: float
    display_name: str
    category_name: str


@dataclasses.dataclass
class Classifications:
    categories: list[Category]
    head_index: int
    head_name: str


@dataclasses.dataclass
class ClassificationResult:
    classifications: list[Classifications]


@dataclasses.dataclass
class BoundingBox:
    origin_x: int
    origin_y: int
    width: int
    height: int


@dataclasses.dataclass
class Detection:
    bounding_box: BoundingBox
    categories: list[Category]


@dataclasses.dataclass
class DetectionResult:
    detections: list[Detection]


@dataclasses.dataclass(eq=False)
class ConfidenceMask:
    value: np.ndarray

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, ConfidenceMask) and _arrays_equal(self.value, other.value)


@dataclasses.dataclass
class ColoredLabel:
    color: tuple[int, int, int]
    category_name: str
    display_name: str


@dataclasses.dataclass(eq=False)
class Segmentation:
    height: int
    width: int
    colored_labels: list[ColoredLabel]
    category_mask: np.ndarray | None = None
    confidence_masks: list[ConfidenceMask] | None = None

    def __eq__(self, other: Any) -> bool:
        return (isinstance(other, Segmentation) and (self.height, self.width) == (
            other.height, other.width) and self.colored_labels == other.colored_labels
            and _arrays_equal(self.category_mask, other.category_mask)
            and self.confidence_masks == other.confidence_masks)


@dataclasses.dataclass
class SegmentationResult:
    segmentations: list[Segmentation]


@dataclasses.dataclass(eq=False)
class FeatureVector:
    value: np.ndarray

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, FeatureVector) and _arrays_equal(self.value, other.value)


@dataclasses.dataclass
class Embedding:
    feature_vector: FeatureVector
    output_index: int


@dataclasses.dataclass
class EmbeddingResult:
    embeddings: list[Embedding]


@dataclasses.dataclass
class Pos:
    start: int
    end: int
    logit: float


@dataclasses.dataclass
class QaAnswer:
    pos: Pos
    text: str


@dataclasses.dataclass
class QuestionAnswererResult:
    answers: list[QaAnswer]
