"""What a set of clusters looks like, for reports and experiments (FUSION.md §5.5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tflite_jit import ops
from tflite_jit.backends.base import Cluster
from tflite_jit.ir.model import Subgraph
from tflite_jit.ops.base import PatternKind as K


def cluster_kind(cluster: Cluster, sg: Subgraph) -> str:
    """'single', 'epilogue' (one complex op + its element-wise ops), 'reduce' (one reduction +
    element-wise/injective ops), 'loop' (element-wise/broadcast only), 'injective' (with
    reshapes/transposes/...), or 'mixed' (anything else)."""
    if len(cluster.ops) == 1:
        return "single"
    kinds = []
    for oi in cluster.ops:
        d = ops.get(sg.ops[oi].name)
        kinds.append(K.OPAQUE if d is None else d.kind)
    heavy = sum(k in (K.OUT_ELEMWISE_FUSABLE, K.REDUCTION) for k in kinds)
    if K.OPAQUE in kinds or heavy > 1:
        return "mixed"
    if K.OUT_ELEMWISE_FUSABLE in kinds:
        return "epilogue"
    if K.REDUCTION in kinds:
        return "reduce"
    if K.INJECTIVE in kinds:
        return "injective"
    return "loop"


def describe(clusters: Sequence[Cluster], sg: Subgraph) -> list[dict[str, Any]]:
    """One dict per cluster for reports: index, kind, op indices and names, inputs, outputs."""
    return [{"index": k, "kind": cluster_kind(c, sg), "ops": list(c.ops),
             "op_names": [sg.ops[i].name for i in c.ops], "inputs": list(c.inputs),
             "outputs": list(c.outputs), "size": len(c.ops)} for k, c in enumerate(clusters)]


def summary(clusters: Sequence[Cluster], sg: Subgraph) -> dict[str, Any]:
    """Structure metrics (FUSION.md §5.5): op and cluster counts, sizes, histogram of kinds."""
    sizes = [len(c.ops) for c in clusters]
    hist: dict[str, int] = {}
    for c in clusters:
        k = cluster_kind(c, sg)
        hist[k] = hist.get(k, 0) + 1
    return {"ops": len(sg.ops), "clusters": len(clusters),
            "mean_size": (sum(sizes) / len(sizes)) if sizes else 0.0,
            "max_size": max(sizes, default=0), "kinds": dict(sorted(hist.items()))}
