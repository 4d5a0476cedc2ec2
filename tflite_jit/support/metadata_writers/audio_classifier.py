"""Metadata and label files for audio classifiers (one audio clip in, class scores out; several
heads with create_from_metadata_info_for_multihead)."""

from __future__ import annotations

from typing import Any

from tflite_jit.support.metadata_writers import metadata_info, metadata_writer, writer_utils

_MODEL_NAME = "AudioClassifier"
_MODEL_DESCRIPTION = ("Identify the most prominent type in the audio clip from a known set of "
                      "categories.")
_INPUT_NAME = "audio_clip"
_INPUT_DESCRIPTION = "Input audio clip to be classified."
_OUTPUT_NAME = "probability"
_OUTPUT_DESCRIPTION = "Scores of the labels respectively."


class MetadataWriter(metadata_writer.MetadataWriter):
    """Writes audio classifier metadata."""

    @classmethod
    def create_from_metadata_info(cls, model_buffer: Any,
                                  general_md: metadata_info.GeneralMd | None = None,
                                  input_md: metadata_info.InputAudioTensorMd | None = None,
                                  output_md: metadata_info.ClassificationTensorMd | None = None
                                  ) -> MetadataWriter:
        output_md = output_md or metadata_info.ClassificationTensorMd(
            name=_OUTPUT_NAME, description=_OUTPUT_DESCRIPTION)
        return cls.create_from_metadata_info_for_multihead(model_buffer, general_md, input_md,
                                                           [output_md])

    @classmethod
    def create_from_metadata_info_for_multihead(
            cls, model_buffer: Any, general_md: metadata_info.GeneralMd | None = None,
            input_md: metadata_info.InputAudioTensorMd | None = None,
            output_md_list: list[metadata_info.ClassificationTensorMd] | None = None
    ) -> MetadataWriter:
        general_md = general_md or metadata_info.GeneralMd(name=_MODEL_NAME,
                                                           description=_MODEL_DESCRIPTION)
        input_md = input_md or metadata_info.InputAudioTensorMd(name=_INPUT_NAME,
                                                                description=_INPUT_DESCRIPTION)
        files = [f.file_path for md in output_md_list or [] for f in md.associated_files or []]
        return super().create_from_metadata_info(
            model_buffer=model_buffer, general_md=general_md, input_md=[input_md],
            output_md=output_md_list, associated_files=files)

    @classmethod
    def create_for_inference(cls, model_buffer: Any, sample_rate: int, channels: int,
                             label_file_paths: list[str],
                             score_calibration_md: metadata_info.ScoreCalibrationMd | None = None
                             ) -> MetadataWriter:
        """The Task Library's AudioClassifier needs a positive sample rate and channel count."""
        if sample_rate <= 0:
            raise ValueError(f"sample_rate should be positive, but got {sample_rate}.")
        if channels <= 0:
            raise ValueError(f"channels should be positive, but got {channels}.")
        input_md = metadata_info.InputAudioTensorMd(_INPUT_NAME, _INPUT_DESCRIPTION, sample_rate,
                                                    channels)
        output_md = metadata_info.ClassificationTensorMd(
            name=_OUTPUT_NAME, description=_OUTPUT_DESCRIPTION,
            label_files=[metadata_info.LabelFileMd(file_path=p) for p in label_file_paths],
            tensor_type=writer_utils.first_output_type(model_buffer),
            score_calibration_md=score_calibration_md)
        return cls.create_from_metadata_info(model_buffer, input_md=input_md, output_md=output_md)
