"""Metadata writers for the model types the Task Library runs: the API of
`tflite_support.metadata_writers` (image_classifier, object_detector, image_segmenter,
nl_classifier, bert_nl_classifier, audio_classifier; metadata_info; writer_utils)."""

from tflite_jit.support.metadata_writers import (
    audio_classifier,
    bert_nl_classifier,
    image_classifier,
    image_segmenter,
    metadata_info,
    nl_classifier,
    object_detector,
    writer_utils,
)

__all__ = ["audio_classifier", "bert_nl_classifier", "image_classifier", "image_segmenter",
           "metadata_info", "nl_classifier", "object_detector", "writer_utils"]
