"""Metadata and label files for image classifiers (one image in, class scores out)."""

from __future__ import annotations

from typing import Any

from tflite_jit.support import metadata_objects as fb
from tflite_jit.support.metadata_writers import metadata_info, metadata_writer, writer_utils

_MODEL_NAME = "ImageClassifier"
MODEL_DESCRIPTION = ("Identify the most prominent object in the image from a known set of "
                     "categories.")
INPUT_NAME = "image"
INPUT_DESCRIPTION = "Input image to be classified."
OUTPUT_NAME = "probability"
OUTPUT_DESCRIPTION = "Probabilities of the labels respectively."


class MetadataWriter(metadata_writer.MetadataWriter):
    """Writes image classifier metadata."""

    @classmethod
    def create_from_metadata_info(cls, model_buffer: Any,
                                  general_md: metadata_info.GeneralMd | None = None,
                                  input_md: metadata_info.InputImageTensorMd | None = None,
                                  output_md: metadata_info.ClassificationTensorMd | None = None
                                  ) -> MetadataWriter:
        general_md = general_md or metadata_info.GeneralMd(name=_MODEL_NAME,
                                                           description=MODEL_DESCRIPTION)
        input_md = input_md or metadata_info.InputImageTensorMd(
            name=INPUT_NAME, description=INPUT_DESCRIPTION,
            color_space_type=fb.ColorSpaceType.RGB)
        output_md = output_md or metadata_info.ClassificationTensorMd(
            name=OUTPUT_NAME, description=OUTPUT_DESCRIPTION)
        if output_md.associated_files is None:
            output_md.associated_files = []
        return super().create_from_metadata_info(
            model_buffer=model_buffer, general_md=general_md, input_md=[input_md],
            output_md=[output_md],
            associated_files=[f.file_path for f in output_md.associated_files])

    @classmethod
    def create_for_inference(cls, model_buffer: Any, input_norm_mean: list[float],
                             input_norm_std: list[float], label_file_paths: list[str],
                             score_calibration_md: metadata_info.ScoreCalibrationMd | None = None
                             ) -> MetadataWriter:
        """What the Task Library's ImageClassifier needs: normalization, labels, and optionally
        score calibration."""
        input_md = metadata_info.InputImageTensorMd(
            name=INPUT_NAME, description=INPUT_DESCRIPTION, norm_mean=input_norm_mean,
            norm_std=input_norm_std, color_space_type=fb.ColorSpaceType.RGB,
            tensor_type=writer_utils.first_input_type(model_buffer))
        output_md = metadata_info.ClassificationTensorMd(
            name=OUTPUT_NAME, description=OUTPUT_DESCRIPTION,
            label_files=[metadata_info.LabelFileMd(file_path=p) for p in label_file_paths],
            tensor_type=writer_utils.first_output_type(model_buffer),
            score_calibration_md=score_calibration_md)
        return cls.create_from_metadata_info(model_buffer, input_md=input_md, output_md=output_md)
