"""Constant subgraphs evaluated once at plan time and dropped from the run list.

`shapes.infer_subgraph` computes the value of every op whose inputs are all known (constants,
or values folded before it) when the result is no bigger than those constants: shape
arithmetic, and weight transforms such as DEQUANTIZE of float16 / int8 weights (issue #13: they
were re-run on every invoke, 44-64 % of a float16 model's run time). Here such an op stops being
a step: its outputs become constants for fusion, placement and the backends (a CONV_2D fed by
DEQUANTIZE(float16 weights) packs the same float32 weights as the float32 model's), and its
buffers are the folded values themselves (read-only, like the file's constants).

LiteRT does the same for DEQUANTIZE of a constant (it dequantizes once, into a persistent
tensor): after invoke, get_tensor of the folded tensor returns the values it returns.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from tflite_jit.backends.base import Cluster
from tflite_jit.fusion import make_cluster
from tflite_jit.ir.graph import is_stateful
from tflite_jit.ir.model import Subgraph
from tflite_jit.runtime.shapes import TensorInfo

#: the backend name plan entries of folded ops carry (get_execution_plan, tflite-jit plan)
FOLDED = "folded (plan time)"


def folded_ops(sg: Subgraph, infos: Sequence[TensorInfo], opdefs: Sequence[Any],
               keep: Collection[int]) -> frozenset[int]:
    """Ops that need not run: every output's value is known at plan time. `keep`: tensors that
    must keep their own writable buffer (graph inputs, outputs, variables), whose producers
    still run. Strings are held as object arrays, not as the folded values, so they run too."""
    out = set()
    for oi, (op, opdef) in enumerate(zip(sg.ops, opdefs)):
        if (op.outputs and getattr(opdef, "foldable", False) and not is_stateful(op, sg)
                and all(infos[t].value is not None and t not in keep and infos[t].dtype.kind not in "SO"
                        for t in op.outputs)):
            out.add(oi)
    return frozenset(out)


def folded_tensors(sg: Subgraph, folded: Collection[int]) -> set[int]:
    """The outputs of the folded ops: constants from now on."""
    return {t for oi in folded for t in sg.ops[oi].outputs}


def without_folded(sg: Subgraph, cluster: Cluster, folded: Collection[int]) -> Cluster | None:
    """`cluster` less its folded ops (None when nothing is left). A folded op reads only
    constants, so it has no predecessor outside the folded set: dropping it keeps the rest
    convex, and the tensors it made become inputs read from outside."""
    if not folded or not any(oi in folded for oi in cluster.ops):
        return cluster
    rest = [oi for oi in cluster.ops if oi not in folded]
    return make_cluster(sg, rest) if rest else None
