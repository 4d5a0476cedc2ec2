"""Fusion strategies: a subgraph (one backend's partition) in, convex clusters of ops out.

A strategy is a `FusionStrategy`: a callable `(subgraph, env) -> list[Cluster]` with a `name` and
a `config` (a small frozen dataclass of knobs). Users pick one by name (`get_strategy("rules",
max_depth=4)`), pass an instance, or register their own (`register_strategy(name, fn)`; `fn` may
be a plain function, a `FusionStrategy` subclass or an instance). Shipped strategies (FUSION.md §5):

- ``none``: one op a cluster; the numerical reference.
- ``epilogue``: XNNPACK/TFLite style. A conv/depthwise/FC/batch-matmul/pool absorbs a tail of
  single-consumer ops that neither grow nor re-read its output: activations, ADD/SUB/MUL/DIV/PRELU
  with a constant, and a residual ADD of another tensor of the same shape.
- ``elementwise``: ``epilogue`` plus maximal groups of ELEMWISE/BROADCAST ops joined through
  intermediates that no other cluster reads and that have the consumer's output shape (XLA kLoop,
  no duplication, no re-reads).
- ``rules``: TVM FuseOps semantics: post-dominator tree over the op DAG, three phases (complex ops
  take their element-wise epilogue; element-wise/broadcast ops fuse into post-dominators reached
  through at most injective paths, reductions and existing conv groups being valid sinks;
  injective ops fuse along all-injective paths), reductions never start a fusion, two complex ops
  never share a group, ``max_depth`` caps the group size.
- ``greedy_cost``: XLA PriorityFusion style: a max-heap of producer groups keyed by the time a
  roofline model says fusing them into one consumer group saves; stops when nothing saves time.

Every strategy's output goes through `validate_clusters` inside `FusionStrategy.__call__` (which
subclasses may not override), so strategies are interchangeable and cannot skip the checks.
Strategies are pure and deterministic: ties are broken by op index. The graph questions they ask
(producers, consumers, convexity, the order of groups) are answered by `tflite_jit.ir.graph`.

Layout: `config` (the knobs), `base` (the interface, the registry, ``none``), one module per
shipped strategy (`epilogue`, `elementwise`, `rules`, `greedy`), `groups` (the graph as the
strategies see it and the groups they grow), `clusters` (groups to canonical clusters),
`validate` (the one validator) and `report` (cluster kinds and summaries). This package's
namespace is the public API: import from `tflite_jit.fusion`.

Cluster conventions (`make_cluster`): see `tflite_jit.fusion.clusters`.
"""

from tflite_jit.fusion.base import (
    FunctionStrategy,
    FusionStrategy,
    NoFusion,
    get_strategy,
    register_strategy,
    strategies,
)
from tflite_jit.fusion.clusters import make_cluster, make_clusters, single_cluster
from tflite_jit.fusion.config import (
    ElementwiseConfig,
    EpilogueConfig,
    FusionConfig,
    GreedyCostConfig,
    RulesConfig,
)
from tflite_jit.fusion.elementwise import ElementwiseFusion
from tflite_jit.fusion.epilogue import EpilogueFusion
from tflite_jit.fusion.greedy import GreedyCostFusion
from tflite_jit.fusion.report import cluster_kind, describe, summary
from tflite_jit.fusion.rules import RuleFusion
from tflite_jit.fusion.validate import validate_clusters
from tflite_jit.ir.graph import is_stateful

__all__ = [
    "ElementwiseConfig", "ElementwiseFusion", "EpilogueConfig", "EpilogueFusion", "FunctionStrategy",
    "FusionConfig", "FusionStrategy", "GreedyCostConfig", "GreedyCostFusion", "NoFusion", "RuleFusion",
    "RulesConfig", "cluster_kind", "describe", "get_strategy", "is_stateful", "make_cluster",
    "make_clusters", "register_strategy", "single_cluster", "strategies", "summary", "validate_clusters",
]
