"""``rules``: TVM FuseOps semantics on the op DAG (post-dominator tree, three phases)."""

from __future__ import annotations

from collections.abc import Callable

from tflite_jit.backends.base import Cluster, CompileEnv
from tflite_jit.fusion.base import FusionStrategy, register_strategy
from tflite_jit.fusion.clusters import ordered_clusters
from tflite_jit.fusion.config import RulesConfig
from tflite_jit.fusion.groups import FusionGraph, FusionGroups
from tflite_jit.ir.model import Subgraph
from tflite_jit.ops.base import PatternKind

K = PatternKind
_ROOT = -1  # the post-dominator tree's root: graph outputs and dead ends


class RuleFusion(FusionStrategy):
    """TVM FuseOps semantics on the op DAG (FUSION.md §1.1), written from its description.

    A node's immediate post-dominator is the least common ancestor of its consumers in the
    post-dominator tree (a graph output or a dead end post-dominates to the root), and the
    pattern of that relation is the worst edge pattern on the way. Edges take the consumer's
    pattern kind, except that a broadcast consumer reading an argument of its own output shape
    is an element-wise edge. Then, with union-find groups whose pattern is the worst of their
    members, for phase 0, 1, 2 and each op in topological order:

    - a complex (out-element-wise-fusable) group fuses, in phase 0 only, into its post-dominator
      when the relation is element-wise and every node on the way, the sink included, is at most
      broadcast;
    - an element-wise/broadcast group fuses into its post-dominator when the relation is at most
      injective or a reduction, the nodes on the way are at most injective and the sink is
      at most injective, a reduction or an existing complex group;
    - an injective group fuses, in phase 1 only, when every node on the way is at most injective;
    - phase 2 fuses injective groups into tuple nodes, which TFLite graphs do not have (no-op);
    - a reduction group never starts a fusion (unless fuse_reduce_epilogue, then like a complex
      op in phase 0).

    Fusing merges every node on the paths between the op and its post-dominator into one group,
    subject to max_depth / max_ops, max_args, stop_fusion and the convexity check.
    """

    name = "rules"
    config_class = RulesConfig

    def plan(self, sg: Subgraph, env: CompileEnv) -> list[Cluster]:
        cfg = self.config
        g = FusionGraph(sg, env, cfg, allow_injective=cfg.allow_injective)
        n = g.n
        kind, fusable = g.kind, g.fusable

        def edge_pattern(u: int, v: int) -> PatternKind:
            if (u, v) in g.chain or not fusable[v]:
                return K.OPAQUE
            kv = kind[v]
            worst = K.ELEMWISE
            outs = set(sg.ops[u].outputs)
            vshape = g.out_shape(v)
            for t in sg.ops[v].inputs:
                if t in outs:
                    k = K.ELEMWISE if kv == K.BROADCAST and g.shape(t) == vshape else kv
                    worst = max(worst, k)
            return worst

        # post-dominator tree, consumers before producers
        ipdom = [_ROOT] * n
        pd_pat = [K.OPAQUE] * n
        depth = [1] * n

        def dep(x: int) -> int:
            return 0 if x == _ROOT else depth[x]

        def lca(a: int, b: int, pat: PatternKind) -> tuple[int, PatternKind]:
            while a != b:
                if a == _ROOT or b == _ROOT:
                    return _ROOT, pat
                if dep(a) < dep(b):
                    a, b = b, a
                pat = max(pat, pd_pat[a])
                a = ipdom[a]
            return a, pat

        for u in reversed(g.order):
            outs = sg.ops[u].outputs
            if not g.succ[u] or any(t in g.graph_outputs for t in outs):
                continue  # post-dominated by the root only
            node, pat = _ROOT, K.ELEMWISE
            for j, v in enumerate(g.succ[u]):
                pat = max(pat, edge_pattern(u, v))
                node, pat = (v, pat) if j == 0 else lca(node, v, pat)
                if node == _ROOT:
                    break
            ipdom[u], pd_pat[u] = node, pat
            depth[u] = dep(node) + 1

        grp = FusionGroups(g, cfg.cap, cfg.max_args)
        gpat: dict[int, PatternKind] = {i: kind[i] for i in range(n)}

        def try_fuse(src: int, sink: int, cond: Callable[[PatternKind, bool], bool]) -> None:
            visited: set[int] = set()
            stack = list(g.succ[src])
            path: list[int] = []
            while stack:
                x = stack.pop()
                if x in visited:
                    continue
                visited.add(x)
                if x == sink:
                    if not cond(gpat[grp.find(x)], True):
                        return
                    continue
                if (src, x) in g.chain or not cond(gpat[grp.find(x)], False):
                    return
                path.append(x)
                stack.extend(g.succ[x])
            roots = {grp.find(src), grp.find(sink), *(grp.find(x) for x in path)}
            if grp.can_merge(roots):
                pat = max(gpat.pop(r) for r in roots)
                gpat[grp.merge(roots)] = pat

        def cond_complex(k: PatternKind, is_sink: bool) -> bool:
            return k <= K.BROADCAST

        def cond_elem(k: PatternKind, is_sink: bool) -> bool:
            if not is_sink:
                return k <= K.INJECTIVE
            return k <= K.INJECTIVE or k in (K.REDUCTION, K.OUT_ELEMWISE_FUSABLE)

        def cond_injective(k: PatternKind, is_sink: bool) -> bool:
            return k <= K.INJECTIVE

        order = g.order
        for phase in (0, 1, 2):
            for u in order:
                dom = ipdom[u]
                if dom == _ROOT or not fusable[u]:
                    continue
                gu = grp.find(u)
                gk = gpat[gu]
                if gk == K.OPAQUE or gu == grp.find(dom):
                    continue
                if phase == 2:
                    continue  # injective into tuples: TFLite has no tuple nodes
                if gk == K.OUT_ELEMWISE_FUSABLE or (gk == K.REDUCTION and cfg.fuse_reduce_epilogue):
                    if phase == 0 and pd_pat[u] == K.ELEMWISE:
                        try_fuse(u, dom, cond_complex)
                elif gk <= K.BROADCAST:
                    if pd_pat[u] <= K.INJECTIVE or pd_pat[u] == K.REDUCTION:
                        try_fuse(u, dom, cond_elem)
                elif gk == K.INJECTIVE:
                    if phase == 1:
                        try_fuse(u, dom, cond_injective)
                # reductions never start a fusion
        return ordered_clusters(g, grp.groups())



register_strategy("rules", RuleFusion)
