"""The Task Library's text tokenizers, from a model's metadata.

- RegexTokenizer (NLClassifier): split on a delimiter regex, look tokens up in a "token id"
  vocabulary with <PAD>, <UNKNOWN> and optional <START>. RE2's classes are ASCII (`\\w`, `\\s`,
  `\\d`), so patterns compile with re.ASCII.
- BertTokenizer: BERT's basic split (ASCII whitespace drops; ASCII punctuation, Unicode
  punctuation and CJK ideographs become one-character tokens) then greedy longest-match-first
  WordPiece with "##" continuations; a word with no full cover, or over 100 bytes, is [UNK].
- SentencePieceTokenizer: through the optional `sentencepiece` package.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from tflite_jit.support.task import engine

MAX_BYTES_PER_TOKEN = 100
MAX_CHARS_PER_SUBTOKEN = 100
SUFFIX = "##"
UNKNOWN = "[UNK]"

_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def vocab_lines(data: bytes) -> list[str]:
    """Non-empty lines, as the Task Library reads vocabularies (a "\\r" stays part of a line)."""
    return [line for line in data.decode("utf-8", errors="replace").split("\n") if line]


class RegexTokenizer:
    def __init__(self, pattern: str, vocab: bytes):
        try:
            self.delim = re.compile(f"({pattern})", re.ASCII)
        except re.error as e:
            raise ValueError(f"Invalid delim_regex_pattern {pattern!r} in the RegexTokenizer "
                             f"metadata: {e}") from None
        self.ids: dict[str, int] = {}
        for line in vocab_lines(vocab):
            parts = line.split(" ")
            try:
                self.ids[parts[0]] = int(parts[1])
            except (IndexError, ValueError):
                raise ValueError(f"Malformed RegexTokenizer vocabulary line {line!r}: expected "
                                 "'<token> <id>'.") from None

    def tokenize(self, text: str) -> list[str]:
        out, pos = [], 0
        for m in self.delim.finditer(text):
            if m.end() == m.start():
                continue
            if m.start() > pos:
                out.append(text[pos:m.start()])
            pos = m.end()
        if pos < len(text):
            out.append(text[pos:])
        return out

    def lookup(self, token: str) -> int | None:
        return self.ids.get(token)


def _is_delim_kept(ch: str) -> bool:
    o = ord(ch)
    if 0x21 <= o <= 0x2F or 0x3A <= o <= 0x40 or 0x5B <= o <= 0x60 or 0x7B <= o <= 0x7E:
        return True
    if unicodedata.category(ch).startswith("P"):
        return True
    return any(lo <= o <= hi for lo, hi in _CJK)


def basic_split(text: str) -> list[str]:
    """Whitespace (RE2's ASCII \\s) separates; punctuation and CJK characters stand alone."""
    out: list[str] = []
    cur: list[str] = []
    for ch in text:
        if ch in " \t\n\f\r":
            if cur:
                out.append("".join(cur))
                cur = []
        elif _is_delim_kept(ch):
            if cur:
                out.append("".join(cur))
                cur = []
            out.append(ch)
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


class BertTokenizer:
    def __init__(self, vocab: bytes):
        self.vocab = vocab_lines(vocab)
        self.ids = {w: i for i, w in enumerate(self.vocab)}

    def wordpiece(self, token: str) -> list[str]:
        if len(token.encode("utf-8")) > MAX_BYTES_PER_TOKEN:
            return [UNKNOWN]
        pieces, start = [], 0
        while start < len(token):
            end = min(len(token), start + MAX_CHARS_PER_SUBTOKEN)
            found = None
            while end > start:
                piece = token[start:end] if start == 0 else SUFFIX + token[start:end]
                if piece in self.ids:
                    found = piece
                    break
                end -= 1
            if found is None:
                return [UNKNOWN]
            pieces.append(found)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        return [p for word in basic_split(text) for p in self.wordpiece(word)]

    def lookup(self, token: str) -> int | None:
        return self.ids.get(token)


class SentencePieceTokenizer:
    def __init__(self, model: bytes):
        try:
            import sentencepiece
        except ImportError as e:
            raise ImportError("This model tokenizes with SentencePiece: pip install "
                              "sentencepiece.") from e
        self.sp = sentencepiece.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(model)
        except Exception as e:  # noqa: BLE001 - sentencepiece raises its own types
            raise ValueError(f"The SentencePiece model in the metadata does not load: {e}") from None

    def tokenize(self, text: str) -> list[str]:
        return list(self.sp.EncodeAsPieces(text))

    def lookup(self, token: str) -> int | None:
        return int(self.sp.PieceToId(token))  # unknown pieces map to the model's unk id


def _first_file(model: engine.TaskModel, files: Any, what: str) -> bytes:
    if not files:
        raise ValueError(f"Invalid vocab_file from input process unit: the {what} names no file.")
    name = files[0].get("name", "")
    data = model.associated_file(name)
    if not data:
        raise ValueError(f"The {what} file {name} is empty.")
    return data


def from_process_unit(model: engine.TaskModel, unit: dict[str, Any] | None) -> Any:
    """A tokenizer from a BertTokenizer, SentencePiece or Regex process unit."""
    if unit is None:
        raise ValueError("No input process unit found from metadata.")
    kind, opts = unit.get("options_type", 0), unit.get("options") or {}
    if kind == engine.PU_BERT_TOKENIZER:
        return BertTokenizer(_first_file(model, opts.get("vocab_file"), "BertTokenizer vocab"))
    if kind == engine.PU_SENTENCE_PIECE:
        return SentencePieceTokenizer(_first_file(model, opts.get("sentencePiece_model"),
                                                  "SentencePiece model"))
    if kind == engine.PU_REGEX_TOKENIZER:
        if opts.get("delim_regex_pattern") is None:
            raise ValueError("Invalid delim_regex_pattern from input process unit.")
        return RegexTokenizer(opts["delim_regex_pattern"],
                              _first_file(model, opts.get("vocab_file"), "RegexTokenizer vocab"))
    raise ValueError(f"Incorrect options_type:{kind}")
