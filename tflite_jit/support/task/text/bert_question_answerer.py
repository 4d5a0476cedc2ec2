"""BertQuestionAnswerer: [CLS] question [SEP] context [SEP] in 384 tokens; the five best
(start, end) spans by start + end logit, mapped back to the context's space-separated words."""

from __future__ import annotations

import dataclasses

import numpy as np

from tflite_jit.support.task import engine, tokenizers
from tflite_jit.support.task.core.base_options import BaseOptions
from tflite_jit.support.task.processor.results import Pos, QaAnswer, QuestionAnswererResult
from tflite_jit.support.task.text.bert_nl_classifier import ascii_lower

MAX_QUERY_LEN = 64
MAX_SEQ_LEN = 384
PREDICT_ANS_NUM = 5
MAX_ANS_LEN = 32
OUTPUT_OFFSET = 1


@dataclasses.dataclass
class BertQuestionAnswererOptions:
    base_options: BaseOptions


class BertQuestionAnswerer:
    def __init__(self, options: BertQuestionAnswererOptions, model: engine.TaskModel) -> None:
        self._options = options
        self._model = model
        units = model.input_process_units()
        self._tokenizer = tokenizers.from_process_unit(model, units[0] if units else None)
        in_mds, out_mds = model.input_metadata(), model.output_metadata()

        def pick(mds, details, name, default, what):
            i = engine.find_by_name(mds, name) if mds else default
            if not 0 <= i < len(details):
                raise ValueError(f"The model has no {what} tensor named {name!r}.")
            return i

        self._ids = pick(in_mds, model.inputs, "ids", 0, "input")
        self._mask = pick(in_mds, model.inputs, "mask", 1, "input")
        self._segments = pick(in_mds, model.inputs, "segment_ids", 2, "input")
        self._end = pick(out_mds, model.outputs, "end_logits", 0, "output")
        self._start = pick(out_mds, model.outputs, "start_logits", 1, "output")
        for i in (self._ids, self._mask, self._segments):
            if int(np.prod(model.inputs[i]["shape"])) != MAX_SEQ_LEN:
                raise ValueError(f"Input tensor {model.inputs[i]['name']} must hold "
                                 f"{MAX_SEQ_LEN} tokens (the Task Library's sequence length), "
                                 f"it has shape {list(model.inputs[i]['shape'])}.")
        for i in (self._end, self._start):
            if int(np.prod(model.outputs[i]["shape"])) < MAX_SEQ_LEN:
                raise ValueError(f"Output tensor {model.outputs[i]['name']} must hold "
                                 f"{MAX_SEQ_LEN} logits, it has shape "
                                 f"{list(model.outputs[i]['shape'])}.")

    @classmethod
    def create_from_file(cls, file_path: str) -> BertQuestionAnswerer:
        return cls.create_from_options(
            BertQuestionAnswererOptions(BaseOptions(file_name=file_path)))

    @classmethod
    def create_from_options(cls, options: BertQuestionAnswererOptions) -> BertQuestionAnswerer:
        return cls(options, engine.TaskModel(options.base_options))

    def answer(self, context: str, question: str) -> QuestionAnswererResult:
        tok = self._tokenizer
        words = [w for w in context.split(" ") if w]
        query = tok.tokenize(ascii_lower(question))[:MAX_QUERY_LEN]
        doc, doc_word = [], []
        for i, w in enumerate(words):
            for piece in tok.tokenize(ascii_lower(w)):
                doc.append(piece)
                doc_word.append(i)
        doc = doc[: max(MAX_SEQ_LEN - len(query) - 3, 0)]
        tokens = ["[CLS]", *query, "[SEP]"]
        segments = [0] * len(tokens)
        to_word: dict[int, int] = {}
        for i, piece in enumerate(doc):
            tokens.append(piece)
            segments.append(1)
            to_word[len(tokens)] = doc_word[i]
        tokens.append("[SEP]")
        segments.append(1)
        ids = np.zeros(MAX_SEQ_LEN, np.int32)
        mask = np.zeros(MAX_SEQ_LEN, np.int32)
        seg = np.zeros(MAX_SEQ_LEN, np.int32)
        for i, t in enumerate(tokens[:MAX_SEQ_LEN]):
            found = tok.lookup(t)
            ids[i] = 0 if found is None else found
            mask[i] = 1
            seg[i] = segments[i]
        feeds = {self._ids: ids, self._mask: mask, self._segments: seg}
        inputs = [feeds[i].reshape(d["shape"]) if i in feeds else np.zeros(d["shape"], d["dtype"])
                  for i, d in enumerate(self._model.inputs)]
        outputs = self._model.run(inputs)
        end = np.asarray(outputs[self._end], np.float32).reshape(-1)
        start = np.asarray(outputs[self._start], np.float32).reshape(-1)
        starts = np.argsort(-start, kind="stable")[:PREDICT_ANS_NUM]
        ends = np.argsort(-end, kind="stable")[:PREDICT_ANS_NUM]
        spans = []
        for s in starts:
            for e in ends:
                s, e = int(s), int(e)
                if (s + OUTPUT_OFFSET not in to_word or e + OUTPUT_OFFSET not in to_word
                        or e < s or e - s + 1 > MAX_ANS_LEN):
                    continue
                spans.append(Pos(start=s, end=e, logit=float(np.float32(start[s] + end[e]))))
        spans.sort(key=lambda p: -p.logit)
        answers = []
        for p in spans[:PREDICT_ANS_NUM]:
            text = ""
            if p.start > 0:
                a, b = to_word[p.start + OUTPUT_OFFSET], to_word[p.end + OUTPUT_OFFSET]
                text = " ".join(words[a:b + 1])
            answers.append(QaAnswer(pos=p, text=text))
        return QuestionAnswererResult(answers=answers)

    @property
    def options(self) -> BertQuestionAnswererOptions:
        return self._options
