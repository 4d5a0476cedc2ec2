"""Text: SKIP_GRAM (string in, strings out).

SKIP_GRAM splits the first string of its input into words and outputs every skip-gram of them
as one space-joined string, in LiteRT's order: for each first word, the grams extending it
depth first, each prefix after its extensions (so with include_all_ngrams a shorter gram follows
the longer ones it starts). A gram's next word may skip at most max_skip_size words; with
include_all_ngrams every gram of 1..ngram_size words is output, else exactly ngram_size. With
fewer words than ngram_size (or ngram_size <= 0) the output is empty.

Word splitting reproduces LiteRT's exactly, quirks included: the C locale's whitespace separates
words, but the first character is never tested as a separator, so a string starting with
whitespace glues that whitespace to its first word, and that word is dropped when another
separator follows it (" a b" gives the single word "b"; " " is the single word " ").

The output length depends on the data: the output is dynamic, sized when produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops.base import Cost, Dynamic, InferCtx, OpError
from tflite_jit.ops.common import define

_SPACE = frozenset(b" \t\n\v\f\r")  # isspace() in the C locale


@dataclass(frozen=True)
class SkipGramAttrs:
    ngram_size: int
    max_skip_size: int
    include_all_ngrams: bool


def _parse(o: dict[str, Any]) -> SkipGramAttrs:
    return SkipGramAttrs(int(o.get("ngram_size", 0)), int(o.get("max_skip_size", 0)),
                         bool(o.get("include_all_ngrams", False)))


def _bind(a: SkipGramAttrs, ins: list, outs: list) -> SkipGramAttrs:
    if len(ins) != 1 or len(outs) != 1:
        raise OpError(f"SKIP_GRAM takes 1 input and 1 output, the node has {len(ins)} and {len(outs)}")
    for what, t in (("input", ins[0]), ("output", outs[0])):
        if t is None or t.type_name != "STRING":
            got = "omitted" if t is None else t.type_name
            raise OpError(f"SKIP_GRAM: the {what} '{getattr(t, 'name', '')}' must be a STRING tensor, "
                          f"it is {got}")
    return a


def _infer(ctx: InferCtx) -> list:
    if len(ctx.shapes) != 1 or ctx.dtypes[0] is None or np.dtype(ctx.dtypes[0]).kind != "S":
        raise OpError("SKIP_GRAM takes one STRING input")
    raise Dynamic("SKIP_GRAM: the number of n-grams depends on the input text")


def split_words(s: bytes) -> list[bytes]:
    """LiteRT's word split (see the module docstring for its leading-whitespace quirk)."""
    words = []
    start = 0
    for i in range(1, len(s)):
        if s[i] in _SPACE:
            if i > start and s[start] not in _SPACE:
                words.append(s[start:i])
            start = i + 1
    if len(s) > start:
        words.append(s[start:])
    return words


def skip_grams(n_words: int, n: int, max_skip: int, include_all: bool) -> list[list[int]]:
    """Word index lists of every gram, in LiteRT's order (an explicit stack: no recursion limit)."""
    if n <= 0 or n_words < n:
        return []
    out = []
    reach = max_skip + 1  # the most a next word's index may exceed the previous one's
    for first in range(n_words):
        path, nxt = [first], [first + 1]
        while path:
            c = nxt[-1]
            if len(path) < n and c < n_words and c - path[-1] <= reach:
                nxt[-1] = c + 1
                path.append(c)
                nxt.append(c + 1)
                continue
            if len(path) == n or include_all:
                out.append(list(path))
            path.pop()
            nxt.pop()
    return out


def _run(inputs: list, a: SkipGramAttrs) -> list[np.ndarray]:
    x = np.asarray(inputs[0])
    if x.size == 0:
        # LiteRT reads string 0 without checking there is one (out of bounds): refuse instead.
        raise OpError("SKIP_GRAM: the input has no string; give it at least one")
    words = split_words(bytes(x.reshape(-1)[0]))
    grams = skip_grams(len(words), a.ngram_size, a.max_skip_size, a.include_all_ngrams)
    out = np.empty(len(grams), dtype=object)
    for i, g in enumerate(grams):
        out[i] = b" ".join(words[j] for j in g)
    return [out]


def _cost(in_shapes: list, out_shapes: list, attrs: Any) -> Cost:
    n = sum(int(np.prod(s)) for s in (*in_shapes, *out_shapes) if s is not None)
    return Cost(flops=float(n), bytes=16.0 * n)


define("SKIP_GRAM", parse=_parse, infer=_infer, reference=_run, cost=_cost, bind=_bind)
