"""Text tasks (tflite_support.task.text)."""

from tflite_jit.support.task.text.bert_nl_classifier import (
    BertNLClassifier,
    BertNLClassifierOptions,
)
from tflite_jit.support.task.text.bert_question_answerer import (
    BertQuestionAnswerer,
    BertQuestionAnswererOptions,
)
from tflite_jit.support.task.text.nl_classifier import NLClassifier, NLClassifierOptions

__all__ = ["BertNLClassifier", "BertNLClassifierOptions", "BertQuestionAnswerer",
           "BertQuestionAnswererOptions", "NLClassifier", "NLClassifierOptions"]
