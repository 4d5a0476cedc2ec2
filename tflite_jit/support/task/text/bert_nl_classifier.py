"""BertNLClassifier: [CLS] wordpieces [SEP] (lower-cased, truncated to the model's sequence
length, or the model resized to fit when its length is dynamic) -> class scores in model order."""

from __future__ import annotations

import dataclasses

import numpy as np

from tflite_jit.support.task import engine, tokenizers
from tflite_jit.support.task.core.base_options import BaseOptions
from tflite_jit.support.task.processor.results import ClassificationResult
from tflite_jit.support.task.text.nl_classifier import labels_from_metadata, result_from_scores

SCORE_NAME = "probability"


@dataclasses.dataclass
class BertNLClassifierOptions:
    base_options: BaseOptions


def ascii_lower(text: str) -> str:
    """absl::AsciiStrToLower: only A-Z change."""
    return text.translate(_LOWER)


_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def bert_input_indices(model: engine.TaskModel) -> list[int]:
    """Input positions of [ids, segment_ids, mask]: by metadata name, else 0, 1, 2."""
    if len(model.inputs) < 3:
        raise ValueError("Expected at least 3 input tensors (ids, mask, segment ids), found "
                         f"{len(model.inputs)}.")
    mds = model.input_metadata()
    idx = [engine.find_by_name(mds, n) for n in ("ids", "segment_ids", "mask")]
    return [0, 1, 2] if -1 in idx else idx


class BertNLClassifier:
    def __init__(self, options: BertNLClassifierOptions, model: engine.TaskModel) -> None:
        self._options = options
        self._model = model
        self._ids, self._segments, self._mask = bert_input_indices(model)
        units = model.input_process_units()
        self._tokenizer = tokenizers.from_process_unit(model, units[0] if units else None)
        shapes = [tuple(int(d) for d in model.inputs[i]["shape"])
                  for i in (self._ids, self._mask, self._segments)]
        if any(len(s) != 2 for s in shapes):
            raise ValueError("The three input tensors in Bert models are expected to have dim 2, "
                             f"but got {[len(s) for s in shapes]}.")
        if any(s[0] != 1 for s in shapes):
            raise ValueError("The three input tensors in Bert models are expected to have same "
                             f"batch size 1, but got {[s[0] for s in shapes]}.")
        if len({s[1] for s in shapes}) != 1:
            raise ValueError("The three input tensors in Bert models are expected to have same "
                             f"length, but got {[s[1] for s in shapes]}.")
        sigs = [model.inputs[i].get("shape_signature") for i in (self._ids, self._mask,
                                                                 self._segments)]
        dynamic = [s is not None and len(s) == 2 and int(s[1]) == -1 for s in sigs]
        if any(dynamic) and not all(dynamic):
            raise ValueError("Input tensors contain a mix of static and dynamic tensors")
        self._dynamic = all(dynamic)
        self._max_len = shapes[0][1]
        if not self._dynamic and self._max_len < 2:
            raise ValueError(f"bert_max_seq_len_ should be at least 2, got: ({self._max_len}).")
        if len(model.outputs) != 1:
            raise ValueError("BertNLClassifier models are expected to have only 1 output, found "
                             f"{len(model.outputs)}")
        out_mds = model.output_metadata()
        found = engine.find_by_name(out_mds, SCORE_NAME)
        if found < 0:
            raise ValueError(f"No output tensor named {SCORE_NAME!r} in the model's metadata.")
        self._score = found
        self._labels = labels_from_metadata(model, out_mds[0] if out_mds else None)

    @classmethod
    def create_from_file(cls, file_path: str) -> BertNLClassifier:
        return cls.create_from_options(BertNLClassifierOptions(BaseOptions(file_name=file_path)))

    @classmethod
    def create_from_options(cls, options: BertNLClassifierOptions) -> BertNLClassifier:
        return cls(options, engine.TaskModel(options.base_options))

    def classify(self, text: str) -> ClassificationResult:
        pieces = self._tokenizer.tokenize(ascii_lower(text))
        n_tokens = len(pieces) + 2
        length = n_tokens
        if self._dynamic:
            for i in (self._ids, self._mask, self._segments):
                self._model.resize_input(i, (1, length))
        else:
            n_tokens, length = min(self._max_len, n_tokens), self._max_len
        tokens = ["[CLS]", *pieces[: n_tokens - 2], "[SEP]"]
        ids = np.zeros(length, np.int32)
        mask = np.zeros(length, np.int32)
        for i, t in enumerate(tokens):
            found = self._tokenizer.lookup(t)
            ids[i] = 0 if found is None else found
            mask[i] = 1
        feeds = {self._ids: ids, self._mask: mask, self._segments: np.zeros(length, np.int32)}
        inputs = [feeds[i].reshape(1, length) if i in feeds
                  else np.zeros(d["shape"], d["dtype"]) for i, d in enumerate(self._model.inputs)]
        outputs = self._model.run(inputs)
        return result_from_scores(outputs[self._score], self._model.outputs[self._score],
                                  self._labels, None)

    @property
    def options(self) -> BertNLClassifierOptions:
        return self._options
