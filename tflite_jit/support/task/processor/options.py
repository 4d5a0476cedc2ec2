"""The processors' options, with tflite_support's field names and defaults.

None means "not set": the task then uses the model's metadata (score threshold) or the Task
Library's default (all results, display names in "en").
"""

from __future__ import annotations

import dataclasses
import enum


@dataclasses.dataclass
class ClassificationOptions:
    score_threshold: float | None = None
    category_name_allowlist: list[str] | None = None
    category_name_denylist: list[str] | None = None
    display_names_locale: str | None = None
    max_results: int | None = None


@dataclasses.dataclass
class DetectionOptions:
    score_threshold: float | None = None
    category_name_allowlist: list[str] | None = None
    category_name_denylist: list[str] | None = None
    display_names_locale: str | None = None
    max_results: int | None = None


class OutputType(enum.Enum):
    UNSPECIFIED = 0
    CATEGORY_MASK = 1
    CONFIDENCE_MASK = 2


@dataclasses.dataclass
class SegmentationOptions:
    display_names_locale: str | None = None
    output_type: OutputType | None = OutputType.CATEGORY_MASK


@dataclasses.dataclass
class EmbeddingOptions:
    l2_normalize: bool | None = None
    quantize: bool | None = None
