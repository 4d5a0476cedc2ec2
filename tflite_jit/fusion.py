"""Fusion strategies: a subgraph (one backend's partition) in, convex clusters of ops out.

This slice ships `none` (one op a kernel, the numerical reference); the registry and the shared
validator are where `epilogue`, `elementwise`, `rules` and `greedy_cost` plug in (FUSION.md §5).
Strategies are pure functions of (subgraph, env) and deterministic.
"""

from __future__ import annotations

from collections.abc import Callable

from tflite_jit.backends.base import Cluster, CompileEnv
from tflite_jit.ir.model import Subgraph

FusionStrategy = Callable[[Subgraph, CompileEnv], list[Cluster]]

_STRATEGIES: dict[str, FusionStrategy] = {}


def register_strategy(name: str, fn: FusionStrategy) -> FusionStrategy:
    _STRATEGIES[name] = fn
    return fn


def get_strategy(spec: str | FusionStrategy) -> FusionStrategy:
    if callable(spec):
        return spec
    try:
        return _STRATEGIES[spec]
    except KeyError:
        raise ValueError(f"Unknown fusion strategy {spec!r}; known: {sorted(_STRATEGIES)}") from None


def strategies() -> list[str]:
    return sorted(_STRATEGIES)


def _none(sg: Subgraph, env: CompileEnv) -> list[Cluster]:
    return [Cluster(ops=(i,), inputs=tuple(op.inputs), outputs=tuple(op.outputs))
            for i, op in enumerate(sg.ops)]


register_strategy("none", _none)


def validate_clusters(sg: Subgraph, clusters: list[Cluster]) -> None:
    """Every op exactly once; clusters in an order where each reads only what is already made."""
    seen: set[int] = set()
    for c in clusters:
        if seen & set(c.ops):
            raise ValueError(f"fusion: ops {sorted(seen & set(c.ops))} appear in two clusters")
        seen |= set(c.ops)
    if seen != set(range(len(sg.ops))):
        raise ValueError(f"fusion: ops {sorted(set(range(len(sg.ops))) - seen)} are in no cluster")
    produced = set(sg.inputs) | {i for i, t in enumerate(sg.tensors) if t.is_constant or t.is_variable}
    for c in clusters:
        missing = [t for t in c.inputs if t >= 0 and t not in produced]
        if missing:
            raise ValueError(f"fusion: cluster {c.ops} reads {missing} before they are produced "
                             "(clusters are not convex or not in topological order)")
        for oi in c.ops:
            produced |= set(sg.ops[oi].outputs)
