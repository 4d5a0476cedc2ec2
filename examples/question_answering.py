"""Answer questions about a text with BertQuestionAnswerer (MobileBERT SQuAD models with
metadata work as published).

    python examples/question_answering.py --model mobilebert_qa.tflite \\
        --context "The cat sat on the mat." "Where did the cat sit?"
    python examples/question_answering.py            # the repo's tiny demo model
"""

from __future__ import annotations

import argparse

from _common import demo_model

from tflite_jit.support.task import text

CONTEXT = ("The cat sat on the mat. The dog is running fast in the park today, "
           "and the sun is shining.")


def main(argv: list[str] | None = None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("questions", nargs="*", default=["Where is the dog running?"])
    ap.add_argument("--model", default=None)
    ap.add_argument("--context", default=CONTEXT)
    args = ap.parse_args(argv)
    qa = text.BertQuestionAnswerer.create_from_file(args.model or demo_model("bert_qa"))
    results = []
    for q in args.questions:
        result = qa.answer(args.context, q)
        print(q)
        for a in result.answers:
            print(f"  {a.pos.logit:7.3f}  {a.text!r}  (tokens {a.pos.start}-{a.pos.end})")
        results.append(result)
    return results


if __name__ == "__main__":
    main()
