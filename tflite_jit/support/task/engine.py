"""A Task model: the model bytes, our Interpreter running them, and their metadata.

Every task builds one from its BaseOptions. Metadata come as the dict of
`MetadataDisplayer.get_metadata()` (schema field names, enum values as numbers, fields absent
when the buffer leaves them at their default), so lookups here supply the schema's defaults.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tflite_jit.interpreter import Interpreter
from tflite_jit.support import metadata as _metadata
from tflite_jit.support import metadata_schema_py_generated as fb
from tflite_jit.support.task.core.base_options import BaseOptions

#: ProcessUnitOptions / ContentProperties / AssociatedFileType members, by name
PU_NORMALIZATION = fb.ProcessUnitOptions.NormalizationOptions
PU_SCORE_CALIBRATION = fb.ProcessUnitOptions.ScoreCalibrationOptions
PU_SCORE_THRESHOLDING = fb.ProcessUnitOptions.ScoreThresholdingOptions
PU_BERT_TOKENIZER = fb.ProcessUnitOptions.BertTokenizerOptions
PU_SENTENCE_PIECE = fb.ProcessUnitOptions.SentencePieceTokenizerOptions
PU_REGEX_TOKENIZER = fb.ProcessUnitOptions.RegexTokenizerOptions


def read_model(base_options: BaseOptions) -> bytes:
    """The model bytes named by the options, with tflite_support's checks."""
    if base_options is None:
        raise ValueError("Missing mandatory `base_options`.")
    if base_options.use_coral:
        raise ValueError("`use_coral` is not supported: tflite_jit has no Edge TPU delegate.")
    if base_options.file_content is not None:
        return bytes(base_options.file_content)
    if not base_options.file_name:
        raise ValueError("Missing mandatory `model_file` field in `base_options`: set "
                         "`file_name` or `file_content`.")
    try:
        with open(base_options.file_name, "rb") as f:
            return f.read()
    except OSError as e:
        raise ValueError(f"Unable to open file at {base_options.file_name}: {e}") from e


def _num_threads(n: int | None) -> int | None:
    if n is None or n == -1:
        return None
    if n < 1:
        raise ValueError(f"`num_threads` must be greater than 0 or equal to -1, got {n}.")
    return int(n)


class TaskModel:
    """One model, ready to run: tensors allocated, metadata parsed, packed files at hand."""

    def __init__(self, base_options: BaseOptions):
        self.buffer = read_model(base_options)
        self.interpreter = Interpreter(model_content=self.buffer,
                                       num_threads=_num_threads(base_options.num_threads))
        self.interpreter.allocate_tensors()
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()
        meta = _metadata.get_metadata_buffer(self.buffer)
        self._displayer = (_metadata.MetadataDisplayer.with_model_buffer(self.buffer)
                           if meta else None)
        self.metadata: dict[str, Any] | None = (self._displayer.get_metadata()
                                                if self._displayer else None)

    # --- metadata -----------------------------------------------------------------------
    def _subgraph(self) -> dict[str, Any]:
        if not self.metadata:
            return {}
        sgs = self.metadata.get("subgraph_metadata") or [{}]
        return sgs[0]

    def input_metadata(self) -> list[dict[str, Any]] | None:
        """The input tensors' metadata, None when the model has none (as the extractor)."""
        return self._subgraph().get("input_tensor_metadata")

    def output_metadata(self) -> list[dict[str, Any]] | None:
        return self._subgraph().get("output_tensor_metadata")

    def input_process_units(self) -> list[dict[str, Any]]:
        return self._subgraph().get("input_process_units") or []

    def associated_file(self, name: str) -> bytes:
        if self._displayer is None or name not in self._displayer.get_packed_associated_file_list():
            raise ValueError(f"No associated file with name: {name}. The model's metadata "
                             "names it, but it is not packed in the model; populate it with "
                             "tflite_jit.support.metadata.MetadataPopulator.")
        return self._displayer.get_associated_file_buffer(name)

    # --- running ------------------------------------------------------------------------
    def resize_input(self, index: int, shape: tuple[int, ...]) -> None:
        current = tuple(int(d) for d in self.inputs[index]["shape"])
        if current != tuple(shape):
            self.interpreter.resize_tensor_input(self.inputs[index]["index"], list(shape),
                                                 strict=True)
            self.interpreter.allocate_tensors()
            self.inputs = self.interpreter.get_input_details()
            self.outputs = self.interpreter.get_output_details()

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        for detail, value in zip(self.inputs, inputs):
            self.interpreter.set_tensor(detail["index"], value)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(d["index"]) for d in self.outputs]


def process_unit(tensor_md: dict[str, Any] | None, options_type: int) -> dict[str, Any] | None:
    """The options of the first process unit of that type (FindFirstProcessUnit), or None."""
    for unit in (tensor_md or {}).get("process_units") or []:
        if unit.get("options_type", 0) == options_type:
            return unit.get("options") or {}
    return None


def first_file_name(tensor_md: dict[str, Any] | None, file_type: int, locale: str = "") -> str:
    """The first associated file of that type (and that locale, when one is asked for), or "":
    the metadata extractor's FindFirstAssociatedFileName."""
    for f in (tensor_md or {}).get("associated_files") or []:
        if f.get("type", 0) != file_type:
            continue
        if not locale or f.get("locale") == locale:
            return f.get("name", "")
    return ""


def find_by_name(tensor_mds: list[dict[str, Any]] | None, name: str) -> int:
    """The index of the tensor metadata with that name, or -1 (FindTensorIndexByMetadataName)."""
    for i, md in enumerate(tensor_mds or []):
        if md.get("name") == name:
            return i
    return -1
