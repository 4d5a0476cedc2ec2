"""Classify sentences with NLClassifier (regex tokenizer) or BertNLClassifier (WordPiece).

    python examples/text_classification.py --model movie_review.tflite "What a great movie"
    python examples/text_classification.py --bert --model mobilebert_sentiment.tflite "Boring."
    python examples/text_classification.py           # the repo's tiny demo models
"""

from __future__ import annotations

import argparse

from _common import demo_model

from tflite_jit.support.task import text


def main(argv: list[str] | None = None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sentences", nargs="*", default=["the movie was great", "not bad, boring"])
    ap.add_argument("--model", default=None)
    ap.add_argument("--bert", action="store_true", help="a BERT classifier (BertNLClassifier)")
    args = ap.parse_args(argv)
    if args.bert:
        clf = text.BertNLClassifier.create_from_file(args.model or demo_model("bert_classifier"))
    else:
        clf = text.NLClassifier.create_from_file(args.model or demo_model("nl_classifier"))
    results = []
    for s in args.sentences:
        result = clf.classify(s)
        best = max(result.classifications[0].categories, key=lambda c: c.score)
        print(f"{best.category_name:>10s} {best.score:.3f}  {s!r}")
        results.append(result)
    return results


if __name__ == "__main__":
    main()
