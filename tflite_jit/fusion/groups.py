"""The op graph as the strategies see it, and the groups they grow on it.

`FusionGraph` adds to the subgraph's `OpGraph` what the config and the env decide: which ops may
be fused at all (not opaque, stateful, denied or of run-time shape), their effective pattern
kinds, tensor shapes and sizes, and the cuts `stop_fusion` asks for. `FusionGroups` adds the
config's caps to `ConvexGroups`, so every merge a strategy makes keeps the partition valid.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from tflite_jit import ops
from tflite_jit.backends.base import CompileEnv
from tflite_jit.fusion.config import FusionConfig
from tflite_jit.ir.graph import ConvexGroups, OpGraph
from tflite_jit.ir.model import Subgraph
from tflite_jit.ops.base import PatternKind as K


class FusionGraph(OpGraph):
    """OpGraph plus which ops may be fused, their effective pattern kinds (injective ops count
    as opaque unless `allow_injective`), shapes, and the cuts config.stop_fusion asks for."""

    def __init__(self, sg: Subgraph, env: CompileEnv, cfg: FusionConfig, *, allow_injective: bool = True):
        super().__init__(sg)
        self.env = env
        self.cfg = cfg
        infos = env.infos
        self.opdefs = [ops.get(op.name) for op in sg.ops]
        self.fusable: list[bool] = []
        self.kind: list[K] = []
        for oi, op in enumerate(sg.ops):
            d = self.opdefs[oi]
            ok = (d is not None and d.kind != K.OPAQUE and not self.stateful[oi]
                  and op.name not in cfg.deny_ops
                  and all(infos[t].shape is not None for t in (*op.inputs, *op.outputs) if t >= 0))
            kind = d.kind if ok else K.OPAQUE
            if kind == K.INJECTIVE and not allow_injective:
                kind = K.OPAQUE
            self.fusable.append(kind != K.OPAQUE)
            self.kind.append(kind)
        self.forbid = [0] * self.n
        stops = cfg.stop_fusion
        if stops:
            for t, tensor in enumerate(sg.tensors):
                if t in stops or tensor.name in stops:
                    p = self.producer.get(t)
                    if p is None:
                        continue
                    for c in self.consumers.get(t, ()):
                        self.forbid[p] |= 1 << c
                        self.forbid[c] |= 1 << p

    def shape(self, t: int) -> tuple[int, ...] | None:
        return self.env.infos[t].shape

    def out_shape(self, oi: int) -> tuple[int, ...] | None:
        return self.shape(self.sg.ops[oi].outputs[0]) if self.sg.ops[oi].outputs else None

    def numel(self, t: int) -> int:
        s = self.shape(t)
        return int(np.prod(s, dtype=np.int64)) if s is not None else 0

    def nbytes(self, t: int) -> int:
        return self.numel(t) * np.dtype(self.env.infos[t].dtype).itemsize

    def is_const(self, t: int) -> bool:
        """A constant of the file or a value folded at plan time (runtime.folding)."""
        return self.sg.tensors[t].data is not None or self.env.infos[t].value is not None

    def private(self, t: int) -> bool:
        """Not a graph output and not a stop_fusion cut (the producer may hide it)."""
        return t not in self.graph_outputs and not (self.cfg.stop_fusion and (
            t in self.cfg.stop_fusion or self.sg.tensors[t].name in self.cfg.stop_fusion))


class FusionGroups(ConvexGroups):
    """ConvexGroups whose merges also respect the strategy's caps: only fusable ops, at most
    `cap` ops and `max_args` inputs + outputs per group, no stop_fusion cut inside a group."""

    graph: FusionGraph

    def __init__(self, g: FusionGraph, cap: int, max_args: int | None):
        super().__init__(g)
        self.cap, self.max_args = cap, max_args
        self.forbid = dict(enumerate(g.forbid))

    def can_merge(self, roots: Iterable[int]) -> bool:
        roots = sorted(set(roots))
        if len(roots) < 2:
            return False
        g = self.graph
        if not all(g.fusable[r] for r in roots):  # a group's lowest op is fusable iff all are
            return False
        size = sum(len(self.members[r]) for r in roots)
        if size > self.cap:
            return False
        m = f = 0
        for r in roots:
            m |= self.mask[r]
            f |= self.forbid[r]
        if f & m:
            return False
        if not self.stays_acyclic(roots):  # some group outside would be both after and before
            return False
        if self.max_args is not None:
            ins, outs = g.boundary(self.ops_of(roots))
            if len(ins) + len(outs) > self.max_args:
                return False
        return True

    def merge(self, roots: Iterable[int]) -> int:
        roots = set(roots)
        f = 0
        for r in roots:
            f |= self.forbid.pop(r)
        new = super().merge(roots)
        self.forbid[new] = f
        return new
