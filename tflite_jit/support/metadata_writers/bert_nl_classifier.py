"""Metadata and label files for BERT text classifiers (BertNLClassifier): three token inputs
and a WordPiece or SentencePiece tokenizer."""

from __future__ import annotations

from typing import Any

from tflite_jit.support.metadata_writers import metadata_info, metadata_writer, writer_utils

_MODEL_NAME = "BertNLClassifier"
_MODEL_DESCRIPTION = "Classify the input text into a set of known categories."
_OUTPUT_NAME = "probability"
_OUTPUT_DESCRIPTION = "Probabilities of the labels respectively."
# The input names TF Hub / Model Maker BERT exports give the three inputs.
_DEFAULT_ID_NAME = "serving_default_input_word_ids:0"
_DEFAULT_MASK_NAME = "serving_default_input_mask:0"
_DEFAULT_SEGMENT_ID_NAME = "serving_default_input_type_ids:0"


class MetadataWriter(metadata_writer.MetadataWriter):
    """Writes BERT NL classifier metadata."""

    @classmethod
    def create_from_metadata_info(cls, model_buffer: Any,
                                  general_md: metadata_info.GeneralMd | None = None,
                                  input_md: metadata_info.BertInputTensorsMd | None = None,
                                  output_md: metadata_info.ClassificationTensorMd | None = None
                                  ) -> MetadataWriter:
        general_md = general_md or metadata_info.GeneralMd(name=_MODEL_NAME,
                                                           description=_MODEL_DESCRIPTION)
        input_md = input_md or metadata_info.BertInputTensorsMd(
            model_buffer, _DEFAULT_ID_NAME, _DEFAULT_MASK_NAME, _DEFAULT_SEGMENT_ID_NAME)
        output_md = output_md or metadata_info.ClassificationTensorMd(
            name=_OUTPUT_NAME, description=_OUTPUT_DESCRIPTION)
        if output_md.associated_files is None:
            output_md.associated_files = []
        return cls.create_from_metadata(
            model_buffer, model_metadata=general_md.create_metadata(),
            input_metadata=input_md.create_input_tesnor_metadata(),
            output_metadata=[output_md.create_metadata()],
            associated_files=([f.file_path for f in output_md.associated_files]
                              + input_md.get_tokenizer_associated_files()),
            input_process_units=input_md.create_input_process_unit_metadata())

    @classmethod
    def create_for_inference(cls, model_buffer: Any,
                             tokenizer_md: (metadata_info.BertTokenizerMd
                                            | metadata_info.SentencePieceTokenizerMd),
                             label_file_paths: list[str], ids_name: str = _DEFAULT_ID_NAME,
                             mask_name: str = _DEFAULT_MASK_NAME,
                             segment_name: str = _DEFAULT_SEGMENT_ID_NAME) -> MetadataWriter:
        input_md = metadata_info.BertInputTensorsMd(model_buffer, ids_name, mask_name,
                                                    segment_name, tokenizer_md=tokenizer_md)
        output_md = metadata_info.ClassificationTensorMd(
            name=_OUTPUT_NAME, description=_OUTPUT_DESCRIPTION,
            label_files=[metadata_info.LabelFileMd(file_path=p) for p in label_file_paths],
            tensor_type=writer_utils.first_output_type(model_buffer))
        return cls.create_from_metadata_info(model_buffer, input_md=input_md, output_md=output_md)
