"""NLClassifier: text in (a string tensor, or int32 ids from the metadata's RegexTokenizer),
one score per class out, labels from the score tensor's metadata (else the label tensor, else
the class index). Categories come in the model's class order, unsorted, as tflite_support's."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tflite_jit.support import metadata_schema_py_generated as fb
from tflite_jit.support.task import engine, tokenizers
from tflite_jit.support.task.core.base_options import BaseOptions
from tflite_jit.support.task.processor.results import (
    Category,
    ClassificationResult,
    Classifications,
)

_SCORE_TYPES = (np.uint8, np.int8, np.int16, np.float32, np.float64, np.bool_)


@dataclasses.dataclass
class NLClassifierOptions:
    base_options: BaseOptions


def _find(details: list[dict[str, Any]], mds: list[dict[str, Any]] | None, name: str,
          index: int) -> int:
    """FindTensorIndex: by metadata name when the metadata has it, else by index."""
    i = engine.find_by_name(mds, name) if mds else -1
    if i < 0:
        i = index
    return i if 0 <= i < len(details) else -1


def result_from_scores(scores: np.ndarray, detail: dict[str, Any],
                       labels: list[str] | None, label_values: np.ndarray | None
                       ) -> ClassificationResult:
    flat = np.asarray(scores).reshape(-1)
    shape = detail["shape"]
    n = int(shape[1]) if len(shape) == 2 else int(shape[0])
    scale, zero_point = detail["quantization"]
    categories = []
    for i in range(n):
        if labels is not None:
            label = labels[i] if i < len(labels) else ""
        elif label_values is not None:
            v = label_values.reshape(-1)[i]
            label = v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(int(v))
        else:
            label = str(i)
        if flat.dtype.kind in "iu":
            score = (float(flat[i]) - zero_point) * scale
        elif flat.dtype == np.bool_:
            score = 1.0 if flat[i] else 0.0
        else:
            score = float(flat[i])
        categories.append(Category(index=0, score=float(np.float32(score)), display_name="",
                                   category_name=label))
    return ClassificationResult(classifications=[Classifications(
        categories=categories, head_index=0, head_name="")])


def labels_from_metadata(model: engine.TaskModel, md: dict[str, Any] | None) -> list[str] | None:
    """The score tensor's first associated file, when it is a TENSOR_AXIS_LABELS file."""
    files = (md or {}).get("associated_files") or []
    if not files or files[0].get("type", 0) != fb.AssociatedFileType.TENSOR_AXIS_LABELS:
        return None
    try:
        return tokenizers.vocab_lines(model.associated_file(files[0].get("name", "")))
    except ValueError:
        return None


class NLClassifier:
    INPUT_NAME, SCORE_NAME, LABEL_NAME = "INPUT", "OUTPUT_SCORE", "OUTPUT_LABEL"

    def __init__(self, options: NLClassifierOptions, model: engine.TaskModel) -> None:
        self._options = options
        self._model = model
        in_mds, out_mds = model.input_metadata(), model.output_metadata()
        self._input = _find(model.inputs, in_mds, self.INPUT_NAME, 0)
        if self._input < 0:
            raise ValueError(f"No input tensor found with name {self.INPUT_NAME} or at index 0")
        detail = model.inputs[self._input]
        self._tokenizer = None
        if np.dtype(detail["dtype"]) != np.object_:
            md = in_mds[self._input] if in_mds and self._input < len(in_mds) else None
            unit = None
            for u in (md or {}).get("process_units") or []:
                if u.get("options_type") == engine.PU_REGEX_TOKENIZER:
                    unit = u
                    break
            if unit is not None and np.dtype(detail["dtype"]) != np.int32:
                raise ValueError(f"Type mismatch for input tensor {detail['name']}. Requested "
                                 "INT32 for RegexTokenizer.")
            if unit is None:
                raise ValueError("No metadata or input process unit found.")
            tok = tokenizers.from_process_unit(model, unit)
            for special, msg in (("<UNKNOWN>", "<UNKNOWN>"), ("<PAD>", "<PAD>")):
                if tok.lookup(special) is None:
                    raise ValueError(f"RegexTokenizer doesn't have {msg} token.")
            self._tokenizer = tok
        self._score = _find(model.outputs, out_mds, self.SCORE_NAME, 0)
        if self._score < 0:
            raise ValueError(f"No output score tensor found with name {self.SCORE_NAME} or at "
                             "index 0")
        sd = model.outputs[self._score]
        if np.dtype(sd["dtype"]) not in [np.dtype(t) for t in _SCORE_TYPES]:
            raise ValueError(f"Type mismatch for score tensor {sd['name']}. Requested one of "
                             "these types: INT8/UINT8/INT16/FLOAT32/FLOAT64/BOOL.")
        self._labels = None
        if out_mds and len(out_mds) == len(model.outputs):
            for i, md in enumerate(out_mds):
                if md.get("name") == self.SCORE_NAME or i == 0:
                    self._labels = labels_from_metadata(model, md)
                    if self._labels is not None:
                        break
        self._label_tensor = -1
        if self._labels is None:
            self._label_tensor = _find(model.outputs, out_mds, self.LABEL_NAME, -1)

    @classmethod
    def create_from_file(cls, file_path: str) -> NLClassifier:
        return cls.create_from_options(NLClassifierOptions(BaseOptions(file_name=file_path)))

    @classmethod
    def create_from_options(cls, options: NLClassifierOptions) -> NLClassifier:
        return cls(options, engine.TaskModel(options.base_options))

    def _input_tensor(self, text: str) -> list[np.ndarray]:
        detail = self._model.inputs[self._input]
        if self._tokenizer is None:
            return [np.array([text.encode("utf-8")], dtype=object).reshape(detail["shape"])]
        shape = detail["shape"]
        n = int(shape[1]) if len(shape) == 2 else int(shape[0])
        tok = self._tokenizer
        ids = [tok.lookup("<PAD>")] * n
        i = 0
        start = tok.lookup("<START>")
        if start is not None and n:
            ids[0], i = start, 1
        unknown = tok.lookup("<UNKNOWN>")
        for word in tok.tokenize(text):
            if i >= n:
                break
            found = tok.lookup(word)
            ids[i] = unknown if found is None else found
            i += 1
        return [np.array(ids, np.int32).reshape(shape)]

    def classify(self, text: str) -> ClassificationResult:
        inputs = []
        for j, d in enumerate(self._model.inputs):
            if j == self._input:
                inputs += self._input_tensor(text)
            else:
                inputs.append(np.zeros(d["shape"], d["dtype"]))
        outputs = self._model.run(inputs)
        labels = outputs[self._label_tensor] if self._label_tensor >= 0 else None
        return result_from_scores(outputs[self._score], self._model.outputs[self._score],
                                  self._labels, labels)

    @property
    def options(self) -> NLClassifierOptions:
        return self._options
