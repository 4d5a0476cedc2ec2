"""Op groups made into canonical `Cluster`s, in an order the executable can run them.

Cluster conventions: a one-op cluster carries the op's own `inputs` (with -1 for omitted optional
inputs and repeats) and all its `outputs`, because backends call the op's kernel with them
positionally. A multi-op cluster lists the distinct tensor ids read from outside (graph inputs and
constants included) in first-use order, and as outputs every tensor produced inside that is read
outside the cluster or is a subgraph output, in production order (`OpGraph.boundary`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tflite_jit.backends.base import Cluster
from tflite_jit.ir.graph import OpGraph, group_order
from tflite_jit.ir.model import Subgraph


def single_cluster(sg: Subgraph, oi: int) -> Cluster:
    """The cluster of op `oi` alone (its own inputs and outputs, positionally)."""
    op = sg.ops[oi]
    return Cluster(ops=(oi,), inputs=tuple(op.inputs), outputs=tuple(op.outputs))


def cluster_of(graph: OpGraph, op_list: Iterable[int]) -> Cluster:
    """The canonical Cluster for a set of ops of `graph`."""
    ops_t = tuple(sorted(op_list))
    if len(ops_t) == 1:
        return single_cluster(graph.sg, ops_t[0])
    ins, outs = graph.boundary(ops_t)
    return Cluster(ops=ops_t, inputs=ins, outputs=outs)


def ordered_clusters(graph: OpGraph, groups: Sequence[Sequence[int]]) -> list[Cluster]:
    """Clusters for a partition of the ops (each group sorted) in a topological order of the
    cluster graph, the lowest first op first."""
    order = group_order(graph, groups)
    if order is None:
        raise ValueError("fusion: the clusters form a cycle (internal error)")
    return [cluster_of(graph, groups[gi]) for gi in order]


def make_cluster(sg: Subgraph, op_indices: Iterable[int]) -> Cluster:
    """The canonical Cluster for a set of ops (see the module docstring for the conventions)."""
    return cluster_of(OpGraph(sg), op_indices)


def make_clusters(sg: Subgraph, groups: Iterable[Iterable[int]]) -> list[Cluster]:
    """Canonical clusters for a partition of the ops, in an executable order (ties: lowest op)."""
    return ordered_clusters(OpGraph(sg), [sorted(g) for g in groups])
