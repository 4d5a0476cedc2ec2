"""``epilogue``: XNNPACK/TFLite-style fusion of a conv/depthwise/FC/batch-matmul/pool with the
single-consumer tail that neither grows nor re-reads its output (activations, ADD/SUB/MUL/DIV
with a constant, PRELU with a constant alpha, a residual ADD of another tensor of the same
shape). `epilogue_pass` is also the first pass of ``elementwise``.
"""

from __future__ import annotations

from tflite_jit.backends.base import Cluster, CompileEnv
from tflite_jit.fusion.base import FusionStrategy, register_strategy
from tflite_jit.fusion.clusters import ordered_clusters
from tflite_jit.fusion.config import EpilogueConfig
from tflite_jit.fusion.groups import FusionGraph, FusionGroups
from tflite_jit.ir.model import Subgraph
from tflite_jit.ops.base import PatternKind as K


def epilogue_op_ok(g: FusionGraph, cfg: EpilogueConfig, c: int, t: int) -> bool:
    """Can op c be folded into the kernel that produces t (c reads t)?"""
    op = g.sg.ops[c]
    if len(op.outputs) != 1 or g.out_shape(c) != g.shape(t):
        return False  # the epilogue must map the tail's elements one to one
    others = [i for i in op.inputs if i >= 0 and i != t]
    if op.name in cfg.activations:
        return not others
    if not others:
        return op.name in cfg.const_ops or op.name in cfg.residual_ops
    if all(g.is_const(i) for i in others):
        return op.name in cfg.const_ops
    if len(others) == 1 and not g.is_const(others[0]):
        return op.name in cfg.residual_ops and g.shape(others[0]) == g.shape(t)
    return False


def epilogue_pass(g: FusionGraph, grp: FusionGroups, cfg: EpilogueConfig) -> None:
    for p in range(g.n):
        if not g.fusable[p] or g.kind[p] != K.OUT_ELEMWISE_FUSABLE or grp.find(p) != p \
                or len(grp.members[p]) != 1:
            continue
        tail = p
        while True:
            outs = g.sg.ops[tail].outputs
            if len(outs) != 1 or not g.private(outs[0]):
                break
            t = outs[0]
            cs = g.consumers.get(t, [])
            if len(cs) != 1:
                break
            c = cs[0]
            if not g.fusable[c] or len(grp.members[grp.find(c)]) != 1 \
                    or not epilogue_op_ok(g, cfg, c, t):
                break
            r = grp.find(p)
            if not grp.can_merge([r, c]):
                break
            grp.merge([r, c])
            tail = c


class EpilogueFusion(FusionStrategy):
    """Fold single-consumer activation / bias / scale / residual tails into conv, depthwise, FC,
    batch-matmul and pool ops (XNNPACK and the TFLite converter)."""

    name = "epilogue"
    config_class = EpilogueConfig

    def plan(self, sg: Subgraph, env: CompileEnv) -> list[Cluster]:
        g = FusionGraph(sg, env, self.config)
        grp = FusionGroups(g, self.config.cap, self.config.max_args)
        epilogue_pass(g, grp, self.config)
        return ordered_clusters(g, grp.groups())



register_strategy("epilogue", EpilogueFusion)
