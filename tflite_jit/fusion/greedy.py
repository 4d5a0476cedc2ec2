"""``greedy_cost``: XLA PriorityFusion style, driven by a roofline model of each candidate kernel."""

from __future__ import annotations

import heapq

from tflite_jit.backends.base import Cluster, CompileEnv
from tflite_jit.fusion.base import FusionStrategy, register_strategy
from tflite_jit.fusion.clusters import ordered_clusters
from tflite_jit.fusion.config import GreedyCostConfig
from tflite_jit.fusion.groups import FusionGraph, FusionGroups
from tflite_jit.ir.model import Subgraph
from tflite_jit.ops.base import PatternKind as K


def op_flops(g: FusionGraph) -> list[float]:
    """FLOPs of each fusable op from its cost rule (0 for the others, and for a node its rule
    cannot handle: counted as free rather than failing the plan)."""
    flops = [0.0] * g.n
    for oi, op in enumerate(g.sg.ops):
        d = g.opdefs[oi]
        if d is None or d.cost is None or not g.fusable[oi]:
            continue
        try:
            c = d.cost([g.shape(t) if t >= 0 else None for t in op.inputs],
                       [g.shape(t) for t in op.outputs], g.env.attrs[oi])
            flops[oi] = float(c.flops)
        except Exception:  # a cost rule that cannot handle this node: count it as free
            flops[oi] = 0.0
    return flops


class GreedyCostFusion(FusionStrategy):
    """Priority fusion: every producer group is scored by the best time saved fusing it into one
    of its consumer groups, t(P) + t(C) - t(P + C) under a roofline model whose bytes are the
    cluster's boundary tensors only; a max-heap pops the best producer, fuses it, re-scores its
    neighbours, and stops when no candidate saves time. A cluster holds at most one complex op
    (conv/FC/matmul/pool, with no producer fused into its inputs) or one reduction (as the sink,
    unless fuse_reduce_epilogue), besides element-wise/broadcast/injective ops."""

    name = "greedy_cost"
    config_class = GreedyCostConfig

    def plan(self, sg: Subgraph, env: CompileEnv) -> list[Cluster]:
        cfg = self.config
        g = FusionGraph(sg, env, cfg, allow_injective=cfg.allow_injective)
        flops = op_flops(g)
        grp = FusionGroups(g, cfg.cap, cfg.max_args)
        time_cache: dict[tuple[int, ...], float] = {}

        def reread(p: int, c: int) -> float:
            """How many times c reads each element p gives it (a growing broadcast re-reads)."""
            outs = set(sg.ops[p].outputs)
            worst = 1.0
            for t in sg.ops[c].inputs:
                if t in outs:
                    n_t = max(1, g.numel(t))
                    if g.kind[c] == K.OUT_ELEMWISE_FUSABLE:
                        r = flops[c] / (2.0 * n_t)
                    elif g.kind[c] == K.REDUCTION:
                        r = 1.0
                    else:
                        r = sum(g.numel(o) for o in sg.ops[c].outputs) / n_t
                    worst = max(worst, r)
            return worst

        def kernel_time(members: list[int]) -> float:
            key = tuple(members)
            hit = time_cache.get(key)
            if hit is not None:
                return hit
            inside = set(members)
            ins, outs = g.boundary(members)
            boundary = sum(g.nbytes(t) for t in ins) + sum(g.nbytes(t) for t in outs)
            out_set = set(outs)
            internal = sum(g.nbytes(t) for m in members for t in sg.ops[m].outputs if t not in out_set)
            spill = 2.0 * max(0.0, internal - cfg.cache_bytes)
            factor: dict[int, float] = {}
            total_flops = 0.0
            for m in reversed(members):
                f = 1.0
                for c in g.succ[m]:
                    if c in inside and (m, c) not in g.chain:
                        f = max(f, factor[c] * reread(m, c))
                factor[m] = f
                total_flops += flops[m] * f
            t = cfg.launch_s + max(total_flops / cfg.peak_flops, (boundary + spill) / cfg.bandwidth)
            time_cache[key] = t
            return t

        def shape_ok(members: list[int]) -> bool:
            anchors = [m for m in members if g.kind[m] in (K.OUT_ELEMWISE_FUSABLE, K.REDUCTION)]
            if len(anchors) > 1:
                return False
            if not anchors:
                return True
            a = anchors[0]
            mask = 0
            for m in members:
                mask |= 1 << m
            if g.kind[a] == K.OUT_ELEMWISE_FUSABLE:
                if any(mask >> p & 1 for p in g.pred[a]):
                    return False  # no prologue into a complex op
                below = g.desc[a] & mask
                return all(g.kind[m] <= K.BROADCAST for m in members if below >> m & 1)
            return cfg.fuse_reduce_epilogue or not (g.desc[a] & mask)

        def score(p: int) -> tuple[float, int] | None:
            best: tuple[float, int] | None = None
            tp = kernel_time(grp.members[p])
            for c in grp.succ_groups(p):
                if not grp.can_merge([p, c]):
                    continue
                members = grp.ops_of([p, c])
                if not shape_ok(members):
                    continue
                b = tp + kernel_time(grp.members[c]) - kernel_time(members)
                if best is None or b > best[0]:
                    best = (b, c)
            return best

        heap: list[tuple[float, int, int, int]] = []
        token: dict[int, int] = {}
        counter = [0]

        def push(p: int) -> None:
            counter[0] += 1
            token[p] = counter[0]
            s = score(p)
            if s is not None and s[0] > cfg.min_benefit_s:
                heapq.heappush(heap, (-s[0], p, s[1], counter[0]))

        for p in range(g.n):
            if g.fusable[p]:
                push(p)
        while heap:
            negb, p, c, tok = heapq.heappop(heap)
            if token.get(p) != tok or p not in grp.members or c not in grp.members:
                continue
            s = score(p)  # values only fall as groups grow: re-check the popped one
            if s is None or s[0] <= cfg.min_benefit_s:
                token.pop(p, None)
                continue
            if (s[0], s[1]) != (-negb, c):
                counter[0] += 1
                token[p] = counter[0]
                heapq.heappush(heap, (-s[0], p, s[1], counter[0]))
                continue
            token.pop(p, None)
            token.pop(c, None)
            new = grp.merge([p, c])
            for q in [new, *grp.pred_groups(new)]:
                if g.fusable[q]:
                    push(q)
        return ordered_clusters(g, grp.groups())



register_strategy("greedy_cost", GreedyCostFusion)
