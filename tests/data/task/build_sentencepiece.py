"""Trains the tiny SentencePiece model the BERT classifier fixture with a SentencePiece
tokenizer uses (files/sp_tiny.model; run once with the project's venv and `sentencepiece`):

    python tests/data/task/build_sentencepiece.py
"""

from __future__ import annotations

import io
from pathlib import Path

import sentencepiece as spm

HERE = Path(__file__).resolve().parent
TEXT = """the movie was great and i loved it
the movie was bad and boring
not bad at all, quite good actually
what a wonderful film, the actors were great
a dull and boring story with bad acting
i would watch it again, loved the music
terrible pacing, not worth the ticket
the cat sat on the mat while the dog ran in the park
"""


def main() -> None:
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(TEXT.splitlines() * 20),
                                   model_writer=out, vocab_size=64, model_type="unigram",
                                   character_coverage=1.0, user_defined_symbols=["[CLS]", "[SEP]"],
                                   normalization_rule_name="identity",
                                   minloglevel=2)
    (HERE / "files" / "sp_tiny.model").write_bytes(out.getvalue())
    print(len(out.getvalue()), "bytes")


if __name__ == "__main__":
    main()
