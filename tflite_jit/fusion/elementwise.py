"""``elementwise``: ``epilogue`` plus maximal groups of ELEMWISE/BROADCAST ops joined through
intermediates that no other cluster reads and that have the consumer's output shape (XLA kLoop:
no duplication, no re-reads).
"""

from __future__ import annotations

from tflite_jit.backends.base import Cluster, CompileEnv
from tflite_jit.fusion.base import FusionStrategy, register_strategy
from tflite_jit.fusion.clusters import ordered_clusters
from tflite_jit.fusion.config import ElementwiseConfig
from tflite_jit.fusion.epilogue import epilogue_pass, pad_pass
from tflite_jit.fusion.groups import FusionGraph, FusionGroups
from tflite_jit.ir.model import Subgraph
from tflite_jit.ops.base import PatternKind as K

_LOOP = (K.ELEMWISE, K.BROADCAST)


def _loop_merge_ok(g: FusionGraph, grp: FusionGroups, pr: int, cr: int, into_complex: bool) -> bool:
    """The union stays 'loop' (element-wise/broadcast only) or 'epilogue' (one complex op, when
    `into_complex`)."""
    complex_ops = 0
    for r in (pr, cr):
        for m in grp.members[r]:
            k = g.kind[m]
            if k == K.OUT_ELEMWISE_FUSABLE:
                complex_ops += 1
            elif k not in _LOOP:
                return False
    return complex_ops <= (1 if into_complex else 0)


class ElementwiseFusion(FusionStrategy):
    """Epilogue fusion plus maximal groups of element-wise/broadcast ops (XLA kLoop): a producer
    joins its consumer when every reader of the intermediate is in the consumer's group, the
    intermediate has the consumer's output shape (read once, never recomputed) and the union has
    at most one complex op."""

    name = "elementwise"
    config_class = ElementwiseConfig

    def plan(self, sg: Subgraph, env: CompileEnv) -> list[Cluster]:
        cfg = self.config
        g = FusionGraph(sg, env, cfg)
        grp = FusionGroups(g, cfg.cap, cfg.max_args)
        if cfg.epilogue:
            epilogue_pass(g, grp, cfg)
            pad_pass(g, grp, cfg)
        for c in range(g.n):
            if not g.fusable[c] or g.kind[c] not in _LOOP:
                continue
            changed = True
            while changed:  # pull producers into c's group until none qualifies
                changed = False
                cr = grp.find(c)
                for m in list(grp.members[cr]):
                    if g.kind[m] not in _LOOP:
                        continue
                    for t in dict.fromkeys(i for i in sg.ops[m].inputs if i >= 0):
                        p = g.producer.get(t)
                        if p is None or not g.fusable[p] or not g.private(t):
                            continue
                        pr, cr = grp.find(p), grp.find(c)
                        if pr == cr:
                            continue
                        readers = g.consumers.get(t, ())
                        if any(grp.find(u) != cr or g.kind[u] not in _LOOP
                               or g.out_shape(u) != g.shape(t) for u in readers):
                            continue
                        if _loop_merge_ok(g, grp, pr, cr, cfg.into_complex) and grp.can_merge([pr, cr]):
                            grp.merge([pr, cr])
                            changed = True
        return ordered_clusters(g, grp.groups())



register_strategy("elementwise", ElementwiseFusion)
