"""Options and results of the pre- and post-processing steps (tflite_support.task.processor)."""

from tflite_jit.support.task.processor.options import (
    ClassificationOptions,
    DetectionOptions,
    EmbeddingOptions,
    OutputType,
    SegmentationOptions,
)
from tflite_jit.support.task.processor.results import (
    BoundingBox,
    Category,
    ClassificationResult,
    Classifications,
    ColoredLabel,
    ConfidenceMask,
    Detection,
    DetectionResult,
    Embedding,
    EmbeddingResult,
    FeatureVector,
    Pos,
    QaAnswer,
    QuestionAnswererResult,
    Segmentation,
    SegmentationResult,
)

__all__ = ["BoundingBox", "Category", "ClassificationOptions", "ClassificationResult",
           "Classifications", "ColoredLabel", "ConfidenceMask", "Detection", "DetectionOptions",
           "DetectionResult", "Embedding", "EmbeddingOptions", "EmbeddingResult", "FeatureVector",
           "OutputType", "Pos", "QaAnswer", "QuestionAnswererResult", "Segmentation",
           "SegmentationOptions", "SegmentationResult"]
