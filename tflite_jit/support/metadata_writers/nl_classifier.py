"""Metadata and label files for text classifiers with a regex tokenizer (NLClassifier)."""

from __future__ import annotations

from typing import Any

from tflite_jit.support.metadata_writers import metadata_info, metadata_writer, writer_utils

_MODEL_NAME = "NLClassifier"
_MODEL_DESCRIPTION = "Classify the input text into a set of known categories."
_INPUT_NAME = "input_text"
_INPUT_DESCRIPTION = "Embedding vectors representing the input text to be classified."
_OUTPUT_NAME = "probability"
_OUTPUT_DESCRIPTION = "Probabilities of the labels respectively."


class MetadataWriter(metadata_writer.MetadataWriter):
    """Writes NL classifier metadata."""

    @classmethod
    def create_from_metadata_info(cls, model_buffer: Any,
                                  general_md: metadata_info.GeneralMd | None = None,
                                  input_md: metadata_info.InputTextTensorMd | None = None,
                                  output_md: metadata_info.ClassificationTensorMd | None = None
                                  ) -> MetadataWriter:
        general_md = general_md or metadata_info.GeneralMd(name=_MODEL_NAME,
                                                           description=_MODEL_DESCRIPTION)
        input_md = input_md or metadata_info.InputTextTensorMd(name=_INPUT_NAME,
                                                               description=_INPUT_DESCRIPTION)
        output_md = output_md or metadata_info.ClassificationTensorMd(
            name=_OUTPUT_NAME, description=_OUTPUT_DESCRIPTION)
        if output_md.associated_files is None:
            output_md.associated_files = []
        tokenizer_files = []
        if input_md.tokenizer_md:
            tokenizer_files = writer_utils.get_tokenizer_associated_files(
                input_md.tokenizer_md.create_metadata().options)
        return super().create_from_metadata_info(
            model_buffer=model_buffer, general_md=general_md, input_md=[input_md],
            output_md=[output_md],
            associated_files=[f.file_path for f in output_md.associated_files] + tokenizer_files)

    @classmethod
    def create_for_inference(cls, model_buffer: Any,
                             tokenizer_md: metadata_info.RegexTokenizerMd | None,
                             label_file_paths: list[str]) -> MetadataWriter:
        input_md = metadata_info.InputTextTensorMd(name=_INPUT_NAME,
                                                   description=_INPUT_DESCRIPTION,
                                                   tokenizer_md=tokenizer_md)
        output_md = metadata_info.ClassificationTensorMd(
            name=_OUTPUT_NAME, description=_OUTPUT_DESCRIPTION,
            label_files=[metadata_info.LabelFileMd(file_path=p) for p in label_file_paths],
            tensor_type=writer_utils.first_output_type(model_buffer))
        return cls.create_from_metadata_info(model_buffer, input_md=input_md, output_md=output_md)
