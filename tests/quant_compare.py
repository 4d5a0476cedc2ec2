"""Tensor-by-tensor comparison of a quantized model on tflite_jit and on LiteRT's builtin kernels:
every integer tensor of subgraph 0, grouped by the op that produced it. Used by the quantizer's
end-to-end tests and by benchmarks/quantized_exactness.py (the per-op exact-match table)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

import tflite_jit
from tests.oracle import litert_interpreter
from tflite_jit.format.reader import load_bytes


@dataclass
class OpTally:
    elements: int = 0
    exact: int = 0
    max_diff: int = 0
    tensors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.exact / self.elements if self.elements else 1.0


def compare_all_tensors(model: bytes, inputs: Sequence[np.ndarray]) -> dict[str, OpTally]:
    """{op name: tally} over every integer tensor produced by that op type."""
    with warnings.catch_warnings():  # "preserve_all_tensors is for debugging": that is the point
        warnings.simplefilter("ignore")
        ours = tflite_jit.Interpreter(model_content=model, experimental_preserve_all_tensors=True)
    theirs = litert_interpreter(model, experimental_preserve_all_tensors=True)
    for it in (ours, theirs):
        it.allocate_tensors()
        for d, x in zip(it.get_input_details(), inputs):
            it.set_tensor(d["index"], x)
        it.invoke()
    sg = load_bytes(model).subgraphs[0]
    out: dict[str, OpTally] = {}
    for op in sg.ops:
        for t in op.outputs:
            if np.dtype(sg.tensors[t].dtype).kind not in "iu":
                continue
            a, b = ours.get_tensor(t).astype(np.int64), theirs.get_tensor(t).astype(np.int64)
            tally = out.setdefault(op.name, OpTally())
            diff = np.abs(a - b)
            tally.elements += diff.size
            tally.exact += int(np.count_nonzero(diff == 0))
            tally.max_diff = max(tally.max_diff, int(diff.max()) if diff.size else 0)
            tally.tensors.append(sg.tensors[t].name)
    return out
