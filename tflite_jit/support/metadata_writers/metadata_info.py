"""Containers for the metadata of common model parts, each making its metadata objects.

The same classes, arguments and default texts as tflite_support's `metadata_info`, so writers
built on them produce the same metadata (and the same JSON).
"""

from __future__ import annotations

import collections
import csv
import os
from typing import Any

from tflite_jit.format.schema import enum_values
from tflite_jit.support import metadata_objects as fb
from tflite_jit.support.metadata_writers import writer_utils

_MIN_UINT8 = 0
_MAX_UINT8 = 255
_UINT8 = enum_values("TensorType")["UINT8"]
_FLOAT32 = enum_values("TensorType")["FLOAT32"]
_VOCAB_FILE_DESCRIPTION = "Vocabulary file to convert natural language words to embedding vectors."
_FileType = fb.AssociatedFileType
_Content = fb.ContentProperties
_Options = fb.ProcessUnitOptions


class GeneralMd:
    """Name, version, description, author and licenses of a model."""

    def __init__(self, name: str | None = None, version: str | None = None,
                 description: str | None = None, author: str | None = None,
                 licenses: str | None = None):
        self.name = name
        self.version = version
        self.description = description
        self.author = author
        self.licenses = licenses

    def create_metadata(self) -> Any:
        m = fb.ModelMetadataT()
        m.name, m.version, m.description = self.name, self.version, self.description
        m.author, m.license = self.author, self.licenses
        return m


class AssociatedFileMd:
    """A file packed with the model; the metadata records its base name."""

    def __init__(self, file_path: str, description: str | None = None,
                 file_type: int | None = _FileType.UNKNOWN, locale: str | None = None):
        self.file_path = file_path
        self.description = description
        self.file_type = file_type
        self.locale = locale

    def create_metadata(self) -> Any:
        f = fb.AssociatedFileT()
        f.name = os.path.basename(self.file_path)
        f.description, f.type, f.locale = self.description, self.file_type, self.locale
        return f


class LabelFileMd(AssociatedFileMd):
    """A label file: one label per line, for the tensor's last axis."""

    _LABEL_FILE_DESCRIPTION = "Labels for categories that the model can recognize."
    _FILE_TYPE = _FileType.TENSOR_AXIS_LABELS

    def __init__(self, file_path: str, locale: str | None = None):
        super().__init__(file_path, self._LABEL_FILE_DESCRIPTION, self._FILE_TYPE, locale)


def _vocab_file(path: str, description: str = _VOCAB_FILE_DESCRIPTION) -> Any:
    # Tokenizer files keep the path given until MetadataPopulator reduces it to the base name.
    f = fb.AssociatedFileT()
    f.name, f.description, f.type = path, description, _FileType.VOCABULARY
    return f


def _unit(options_type: int, options: Any) -> Any:
    u = fb.ProcessUnitT()
    u.optionsType, u.options = options_type, options
    return u


class RegexTokenizerMd:
    """A tokenizer that splits on a regular expression and looks tokens up in a vocabulary."""

    def __init__(self, delim_regex_pattern: str, vocab_file_path: str):
        self._delim_regex_pattern = delim_regex_pattern
        self._vocab_file_path = vocab_file_path

    def create_metadata(self) -> Any:
        opts = fb.RegexTokenizerOptionsT()
        opts.delimRegexPattern = self._delim_regex_pattern
        opts.vocabFile = [_vocab_file(self._vocab_file_path)]
        return _unit(_Options.RegexTokenizerOptions, opts)


class BertTokenizerMd:
    """BERT's WordPiece tokenizer with its vocabulary file."""

    def __init__(self, vocab_file_path: str):
        self._vocab_file_path = vocab_file_path

    def create_metadata(self) -> Any:
        opts = fb.BertTokenizerOptionsT()
        opts.vocabFile = [_vocab_file(self._vocab_file_path)]
        return _unit(_Options.BertTokenizerOptions, opts)


class SentencePieceTokenizerMd:
    """A SentencePiece model (mandatory) and an optional vocabulary file."""

    _SP_MODEL_DESCRIPTION = "The sentence piece model file."
    _SP_VOCAB_FILE_DESCRIPTION = (_VOCAB_FILE_DESCRIPTION + " This file is optional during "
                                  "tokenization, while the sentence piece model is mandatory.")

    def __init__(self, sentence_piece_model_path: str, vocab_file_path: str | None = None):
        self._sentence_piece_model_path = sentence_piece_model_path
        self._vocab_file_path = vocab_file_path

    def create_metadata(self) -> Any:
        opts = fb.SentencePieceTokenizerOptionsT()
        model = fb.AssociatedFileT()
        model.name = self._sentence_piece_model_path
        model.description = self._SP_MODEL_DESCRIPTION
        opts.sentencePieceModel = [model]
        if self._vocab_file_path:
            opts.vocabFile = [_vocab_file(self._vocab_file_path, self._SP_VOCAB_FILE_DESCRIPTION)]
        return _unit(_Options.SentencePieceTokenizerOptions, opts)


class ScoreCalibrationMd:
    """Sigmoid score calibration: the options and the per-class parameter file.

    The file is checked when the object is made (empty lines, or 3 or 4 comma-separated
    numbers with a non-negative scale), so a bad file fails before anything is written."""

    _SCORE_CALIBRATION_FILE_DESCRIPTION = (
        "Contains sigmoid-based score calibration parameters. The main purposes of score "
        "calibration is to make scores across classes comparable, so that a common threshold "
        "can be used for all output classes.")
    _FILE_TYPE = _FileType.TENSOR_AXIS_SCORE_CALIBRATION

    def __init__(self, score_transformation_type: int, default_score: float, file_path: str):
        self._score_transformation_type = score_transformation_type
        self._default_score = default_score
        self._file_path = file_path
        with open(file_path) as f:
            for line, row in enumerate(csv.reader(f, delimiter=","), 1):
                if row and len(row) not in (3, 4):
                    raise ValueError("Expected empty lines or 3 or 4 parameters per line in score"
                                     f" calibration file, but got {len(row)}.")
                if row:
                    try:
                        scale = float(row[0])
                    except ValueError:
                        raise ValueError(f"score calibration file {file_path}, line {line}: "
                                         f"scale {row[0]!r} is not a number") from None
                    if scale < 0:
                        raise ValueError("Expected scale to be a non-negative value, but got "
                                         f"{scale}.")

    def create_metadata(self) -> Any:
        opts = fb.ScoreCalibrationOptionsT()
        opts.scoreTransformation = self._score_transformation_type
        opts.defaultScore = self._default_score
        return _unit(_Options.ScoreCalibrationOptions, opts)

    def create_score_calibration_file_md(self) -> AssociatedFileMd:
        return AssociatedFileMd(self._file_path, self._SCORE_CALIBRATION_FILE_DESCRIPTION,
                                self._FILE_TYPE)


_CONTENT_OBJECTS = {_Content.FeatureProperties: "FeaturePropertiesT",
                    _Content.ImageProperties: "ImagePropertiesT",
                    _Content.BoundingBoxProperties: "BoundingBoxPropertiesT",
                    _Content.AudioProperties: "AudioPropertiesT"}


class TensorMd:
    """Name, description, per-channel range, content kind and files of one tensor.

    `tensor_name` is the tensor's name in the model, used to put tensor metadata in the model's
    tensor order."""

    def __init__(self, name: str | None = None, description: str | None = None,
                 min_values: list[float] | None = None, max_values: list[float] | None = None,
                 content_type: int = _Content.FeatureProperties,
                 associated_files: list[AssociatedFileMd] | None = None,
                 tensor_name: str | None = None):
        self.name = name
        self.description = description
        self.min_values = min_values
        self.max_values = max_values
        self.content_type = content_type
        self.associated_files = associated_files
        self.tensor_name = tensor_name

    def create_metadata(self) -> Any:
        t = fb.TensorMetadataT()
        t.name, t.description = self.name, self.description
        t.stats = fb.StatsT()
        t.stats.max, t.stats.min = self.max_values, self.min_values
        t.content = fb.ContentT()
        obj = _CONTENT_OBJECTS.get(self.content_type)
        t.content.contentProperties = getattr(fb, obj)() if obj else None
        t.content.contentPropertiesType = self.content_type
        if self.associated_files:
            t.associatedFiles = [f.create_metadata() for f in self.associated_files]
        return t


class InputImageTensorMd(TensorMd):
    """An input image: color space, normalization (mean/std per channel) and the value range
    that follows from the tensor type (0..255 for uint8, the normalized pixel range for
    float32)."""

    _MIN_PIXEL = 0.0
    _MAX_PIXEL = 255.0

    def __init__(self, name: str | None = None, description: str | None = None,
                 norm_mean: list[float] | None = None, norm_std: list[float] | None = None,
                 color_space_type: int | None = fb.ColorSpaceType.UNKNOWN,
                 tensor_type: int | None = None):
        if norm_std and norm_mean and len(norm_std) != len(norm_mean):
            raise ValueError("norm_mean and norm_std are expected to be the same dim. But got "
                             f"{len(norm_mean)} and {len(norm_std)}")
        if tensor_type == _UINT8:
            min_values, max_values = [_MIN_UINT8], [_MAX_UINT8]
        elif tensor_type == _FLOAT32 and norm_std and norm_mean:
            min_values = [float(self._MIN_PIXEL - m) / s for m, s in zip(norm_mean, norm_std)]
            max_values = [float(self._MAX_PIXEL - m) / s for m, s in zip(norm_mean, norm_std)]
        else:  # the Task Library runs uint8 and float32 image inputs only
            min_values = max_values = None
        super().__init__(name, description, min_values, max_values, _Content.ImageProperties)
        self.norm_mean = norm_mean
        self.norm_std = norm_std
        self.color_space_type = color_space_type

    def create_metadata(self) -> Any:
        t = super().create_metadata()
        t.content.contentProperties.colorSpace = self.color_space_type
        if self.norm_mean and self.norm_std:
            opts = fb.NormalizationOptionsT()
            opts.mean, opts.std = self.norm_mean, self.norm_std
            t.processUnits = [_unit(_Options.NormalizationOptions, opts)]
        return t


class InputTextTensorMd(TensorMd):
    """An input text tensor, optionally with a regex tokenizer (BERT-style tokenizers belong to
    `BertInputTensorsMd`)."""

    def __init__(self, name: str | None = None, description: str | None = None,
                 tokenizer_md: RegexTokenizerMd | None = None):
        super().__init__(name, description)
        self.tokenizer_md = tokenizer_md

    def create_metadata(self) -> Any:
        if not isinstance(self.tokenizer_md, (type(None), RegexTokenizerMd)):
            raise ValueError(f"The type of tokenizer_options, {type(self.tokenizer_md)}, is "
                             "unsupported")
        t = super().create_metadata()
        if self.tokenizer_md:
            t.processUnits = [self.tokenizer_md.create_metadata()]
        return t


class InputAudioTensorMd(TensorMd):
    """An input audio tensor with its sample rate and channel count."""

    def __init__(self, name: str | None = None, description: str | None = None,
                 sample_rate: int = 0, channels: int = 0):
        super().__init__(name, description, content_type=_Content.AudioProperties)
        self.sample_rate = sample_rate
        self.channels = channels

    def create_metadata(self) -> Any:
        if self.sample_rate < 0:
            raise ValueError(f"sample_rate should be non-negative, but got {self.sample_rate}.")
        if self.channels < 0:
            raise ValueError(f"channels should be non-negative, but got {self.channels}.")
        t = super().create_metadata()
        t.content.contentProperties.sampleRate = self.sample_rate
        t.content.contentProperties.channels = self.channels
        return t


class ClassificationTensorMd(TensorMd):
    """A classification output: label files, the score range of the tensor type (0..255 for
    uint8, 0..1 for float32) and optional score calibration."""

    _MIN_FLOAT = 0.0
    _MAX_FLOAT = 1.0

    def __init__(self, name: str | None = None, description: str | None = None,
                 label_files: list[LabelFileMd] | None = None, tensor_type: int | None = None,
                 score_calibration_md: ScoreCalibrationMd | None = None,
                 tensor_name: str | None = None):
        self.score_calibration_md = score_calibration_md
        if tensor_type == _UINT8:
            min_values, max_values = [_MIN_UINT8], [_MAX_UINT8]
        elif tensor_type == _FLOAT32:
            min_values, max_values = [self._MIN_FLOAT], [self._MAX_FLOAT]
        else:
            min_values = max_values = None
        files: list[AssociatedFileMd] = list(label_files or [])
        if score_calibration_md:
            files.append(score_calibration_md.create_score_calibration_file_md())
        super().__init__(name, description, min_values, max_values, _Content.FeatureProperties,
                         files, tensor_name)

    def create_metadata(self) -> Any:
        t = super().create_metadata()
        if self.score_calibration_md:
            t.processUnits = [self.score_calibration_md.create_metadata()]
        return t


class CategoryTensorMd(TensorMd):
    """A category output (class ids as values): its label files label tensor *values*."""

    def __init__(self, name: str | None = None, description: str | None = None,
                 label_files: list[LabelFileMd] | None = None):
        for f in label_files or []:
            f.file_type = _FileType.TENSOR_VALUE_LABELS
        super().__init__(name=name, description=description, associated_files=label_files)


class BertInputTensorsMd:
    """The three inputs of a BERT model (ids, mask, segment ids), matched to the model's inputs
    by tensor name, and its tokenizer."""

    _IDS_NAME = "ids"
    _IDS_DESCRIPTION = "Tokenized ids of the input text."
    _MASK_NAME = "mask"
    _MASK_DESCRIPTION = "Mask with 1 for real tokens and 0 for padding tokens."
    _SEGMENT_IDS_NAME = "segment_ids"
    _SEGMENT_IDS_DESCRIPTION = "0 for the first sequence, 1 for the second sequence if exists."

    def __init__(self, model_buffer: Any, ids_name: str, mask_name: str, segment_name: str,
                 ids_md: TensorMd | None = None, mask_md: TensorMd | None = None,
                 segment_ids_md: TensorMd | None = None,
                 tokenizer_md: BertTokenizerMd | SentencePieceTokenizerMd | None = None):
        self._input_names = [ids_name, mask_name, segment_name]
        self._ordered_input_names = writer_utils.get_input_tensor_names(model_buffer)
        if collections.Counter(self._ordered_input_names) != collections.Counter(
                self._input_names):
            raise ValueError(f"The input tensor names ({self._ordered_input_names}) do not match "
                             f"the tensor names read from the model ({self._input_names}).")
        if ids_md is None:
            ids_md = TensorMd(name=self._IDS_NAME, description=self._IDS_DESCRIPTION)
        if mask_md is None:
            mask_md = TensorMd(name=self._MASK_NAME, description=self._MASK_DESCRIPTION)
        if segment_ids_md is None:
            segment_ids_md = TensorMd(name=self._SEGMENT_IDS_NAME,
                                      description=self._SEGMENT_IDS_DESCRIPTION)
        self._input_md = [ids_md, mask_md, segment_ids_md]
        if not isinstance(tokenizer_md, (type(None), BertTokenizerMd, SentencePieceTokenizerMd)):
            raise ValueError(f"The type of tokenizer_options, {type(tokenizer_md)}, is "
                             "unsupported")
        self._tokenizer_md = tokenizer_md

    def create_input_tesnor_metadata(self) -> list[Any]:  # (sic) tflite_support's name
        by_name = dict(zip(self._input_names, self._input_md))
        return [by_name[n].create_metadata() for n in self._ordered_input_names]

    create_input_tensor_metadata = create_input_tesnor_metadata

    def create_input_process_unit_metadata(self) -> list[Any]:
        return [self._tokenizer_md.create_metadata()] if self._tokenizer_md else []

    def get_tokenizer_associated_files(self) -> list[str]:
        if not self._tokenizer_md:
            return []
        return writer_utils.get_tokenizer_associated_files(
            self._tokenizer_md.create_metadata().options)
