"""Fusion strategies: a subgraph (one backend's partition) in, convex clusters of ops out.

A strategy is a `FusionStrategy`: a callable `(subgraph, env) -> list[Cluster]` with a `name` and
a `config` (a small frozen dataclass of knobs). Users pick one by name (`get_strategy("rules",
max_depth=4)`), pass an instance, or register their own (`register_strategy(name, fn)`; `fn` may
be a plain function, a `FusionStrategy` subclass or an instance). Shipped strategies (FUSION.md §5):

- ``none``: one op a cluster; the numerical reference.
- ``epilogue``: XNNPACK/TFLite style. A conv/depthwise/FC/batch-matmul/pool absorbs a tail of
  single-consumer ops that neither grow nor re-read its output: activations, ADD/SUB/MUL/DIV with
  a constant, and a residual ADD of another tensor of the same shape.
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
Strategies are pure and deterministic: ties are broken by op index.

Cluster conventions (`make_cluster`): a one-op cluster carries the op's own `inputs` (with -1 for
omitted optional inputs and repeats) and all its `outputs`, because backends call the op's kernel
with them positionally. A multi-op cluster lists the distinct tensor ids read from outside (graph
inputs and constants included) in first-use order, and as outputs every tensor produced inside
that is read outside the cluster or is a subgraph output, in production order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

import numpy as np

from tflite_jit import ops
from tflite_jit.backends.base import Cluster, CompileEnv
from tflite_jit.ir.model import Op, Subgraph
from tflite_jit.ops.base import PatternKind

K = PatternKind

# Ops with side effects or hidden state: always singletons, and kept in their original order.
_STATEFUL_SUBSTRINGS = ("VARIABLE", "VAR_HANDLE", "CALL_ONCE", "RANDOM", "MULTINOMIAL", "HASHTABLE")
# Exact names only: "IF" is a substring of e.g. SQUARED_DIFFERENCE.
_STATEFUL_NAMES = frozenset({"WHILE", "IF"})


# ---- configuration ------------------------------------------------------------------------------

def _frozen(v: Any) -> frozenset:
    if isinstance(v, (str, int)):
        return frozenset({v})
    return frozenset(v)


@dataclass(frozen=True)
class FusionConfig:
    """Knobs every strategy understands.

    max_ops: most ops in one cluster (TVM's kMaxFusedOps); max_args: most inputs + outputs of a
    multi-op cluster (None: no cap); deny_ops: op names never fused; stop_fusion: tensor names or
    ids whose producer and consumers are never put in one cluster (TVM's stop_fusion)."""

    max_ops: int = 256
    max_args: int | None = None
    deny_ops: frozenset[str] = frozenset()
    stop_fusion: frozenset[str | int] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "deny_ops", _frozen(self.deny_ops))
        object.__setattr__(self, "stop_fusion", _frozen(self.stop_fusion))
        if int(self.max_ops) < 1:
            raise ValueError(f"max_ops must be at least 1, got {self.max_ops}")
        if self.max_args is not None and int(self.max_args) < 1:
            raise ValueError(f"max_args must be at least 1 or None, got {self.max_args}")

    @property
    def cap(self) -> int:
        """The effective op cap (strategies with their own depth knob narrow it)."""
        return int(self.max_ops)


@dataclass(frozen=True)
class EpilogueConfig(FusionConfig):
    """activations: unary ops folded into the producer; const_ops: binary ops folded when the
    other operand is a constant (bias, scale); residual_ops: binary ops folded when the other
    operand is a computed tensor of the same shape (residual connection)."""

    activations: frozenset[str] = frozenset(
        {"RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC", "TANH", "HARD_SWISH"})
    const_ops: frozenset[str] = frozenset({"ADD", "SUB", "MUL", "DIV"})
    residual_ops: frozenset[str] = frozenset({"ADD"})

    def __post_init__(self) -> None:
        super().__post_init__()
        for f in ("activations", "const_ops", "residual_ops"):
            object.__setattr__(self, f, _frozen(getattr(self, f)))


@dataclass(frozen=True)
class ElementwiseConfig(EpilogueConfig):
    """epilogue: run the epilogue pass first (off: element-wise chains only)."""

    epilogue: bool = True


@dataclass(frozen=True)
class RulesConfig(FusionConfig):
    """max_depth: TVM's max_fuse_depth (None: max_ops); fuse_reduce_epilogue: let a reduction take
    its element-wise epilogue like a complex op (off reproduces TVM); allow_injective: off treats
    injective ops (reshape, transpose, pad, ...) as barriers."""

    max_depth: int | None = None
    fuse_reduce_epilogue: bool = False
    allow_injective: bool = True

    @property
    def cap(self) -> int:
        return int(self.max_ops) if self.max_depth is None else max(1, min(int(self.max_ops),
                                                                            int(self.max_depth)))


@dataclass(frozen=True)
class GreedyCostConfig(FusionConfig):
    """Roofline constants of the cost model t = launch_s + max(flops / peak_flops, bytes / bandwidth)
    where bytes counts the cluster's boundary tensors only (plus intermediates beyond cache_bytes,
    written and read again). A producer fused into a consumer that reads each of its elements r
    times (a broadcast that grows it) is charged r times its FLOPs. Fusion stops when the best
    candidate saves no more than min_benefit_s."""

    launch_s: float = 5e-6
    peak_flops: float = 5e9
    bandwidth: float = 5e9
    cache_bytes: float = float(1 << 20)
    min_benefit_s: float = 0.0
    fuse_reduce_epilogue: bool = False
    allow_injective: bool = True


# ---- the strategy interface ---------------------------------------------------------------------

class FusionStrategy:
    """Base class of every strategy. Subclasses implement `plan(sg, env)`; calling the strategy
    runs `plan` and then the shared validator, which cannot be skipped."""

    name: str = "custom"
    config_class: ClassVar[type[FusionConfig]] = FusionConfig

    def __init__(self, config: FusionConfig | None = None, **knobs: Any):
        cfg = config if config is not None else self.config_class()
        if not isinstance(cfg, self.config_class):  # e.g. a plain FusionConfig for "rules"
            mine = {f.name for f in fields(self.config_class)}
            cfg = self.config_class(**{f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name in mine})
        if knobs:
            known = {f.name for f in fields(cfg)}
            bad = sorted(set(knobs) - known)
            if bad:
                raise TypeError(f"fusion strategy {self.name!r} has no option(s) {bad}; "
                                f"it has {sorted(known)}")
            cfg = replace(cfg, **knobs)
        self.config = cfg

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "__call__" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: implement plan(), not __call__ (the validator runs there)")

    def plan(self, sg: Subgraph, env: CompileEnv) -> list[Cluster]:
        raise NotImplementedError

    def __call__(self, sg: Subgraph, env: CompileEnv) -> list[Cluster]:
        clusters = list(self.plan(sg, env))
        validate_clusters(sg, clusters, self.config, strategy=self.name, env=env)
        return clusters

    def with_config(self, config: FusionConfig | None = None, **knobs: Any) -> FusionStrategy:
        """A copy of this strategy with another config and/or some knobs changed."""
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__)
        FusionStrategy.__init__(other, config if config is not None else self.config, **knobs)
        return other

    def __repr__(self) -> str:
        return f"<fusion strategy {self.name!r} {self.config}>"


class FunctionStrategy(FusionStrategy):
    """A plain `(sg, env) -> list[Cluster]` function as a strategy (validated like the others)."""

    def __init__(self, fn: Callable[[Subgraph, CompileEnv], Sequence[Cluster]], name: str | None = None,
                 config: FusionConfig | None = None, **knobs: Any):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "custom")
        super().__init__(config, **knobs)

    def plan(self, sg: Subgraph, env: CompileEnv) -> list[Cluster]:
        return list(self.fn(sg, env))


_STRATEGIES: dict[str, Callable[..., FusionStrategy]] = {}
_ALIASES = {"elementwise_chain": "elementwise", "rule_based": "rules", "s0": "none",
            "s1": "epilogue", "s2": "elementwise", "s3": "rules", "s4": "greedy_cost"}


def register_strategy(name: str, fn: Any) -> Any:
    """Register a strategy under `name`: a `FusionStrategy` subclass or instance, or a plain
    `(sg, env) -> list[Cluster]` function. Returns `fn` (usable as a decorator via partial)."""
    if isinstance(fn, type) and issubclass(fn, FusionStrategy):
        cls = fn

        def factory(config: FusionConfig | None = None, **knobs: Any) -> FusionStrategy:
            s = cls(config, **knobs)
            s.name = name
            return s
    elif isinstance(fn, FusionStrategy):
        inst = fn

        def factory(config: FusionConfig | None = None, **knobs: Any) -> FusionStrategy:
            s = inst.with_config(config, **knobs)
            s.name = name
            return s
    elif callable(fn):
        func = fn

        def factory(config: FusionConfig | None = None, **knobs: Any) -> FusionStrategy:
            return FunctionStrategy(func, name, config, **knobs)
    else:
        raise TypeError(f"register_strategy({name!r}, ...): expected a FusionStrategy or a callable, "
                        f"got {type(fn).__name__}")
    _STRATEGIES[name] = factory
    return fn


def get_strategy(spec: str | FusionStrategy | Callable, config: FusionConfig | None = None,
                 **knobs: Any) -> FusionStrategy:
    """A strategy by name (with optional config / knobs), or an object made into a validated one."""
    if isinstance(spec, FusionStrategy):
        return spec if config is None and not knobs else spec.with_config(config, **knobs)
    if isinstance(spec, type) and issubclass(spec, FusionStrategy):
        return spec(config, **knobs)
    if isinstance(spec, str):
        key = _ALIASES.get(spec, spec)
        try:
            factory = _STRATEGIES[key]
        except KeyError:
            raise ValueError(f"Unknown fusion strategy {spec!r}; known: {sorted(_STRATEGIES)}") from None
        return factory(config, **knobs)
    if callable(spec):
        return FunctionStrategy(spec, None, config, **knobs)
    raise TypeError(f"fusion strategy must be a name, a FusionStrategy or a callable, got {type(spec).__name__}")


def strategies() -> list[str]:
    return sorted(_STRATEGIES)


# ---- graph facts shared by the strategies and the validator -------------------------------------

def is_stateful(op: Op, sg: Subgraph) -> bool:
    """Ops with side effects or hidden state: variables, control flow, custom ops, random ops,
    and any op touching a variable tensor."""
    if op.is_custom or op.name in _STATEFUL_NAMES or any(s in op.name for s in _STATEFUL_SUBSTRINGS):
        return True
    return any(t >= 0 and sg.tensors[t].is_variable for t in (*op.inputs, *op.outputs))


class _Index:
    """Producer/consumer maps, the op DAG (data edges plus an order chain through stateful ops)
    and strict descendant/ancestor bitsets per op."""

    def __init__(self, sg: Subgraph):
        self.sg = sg
        n = self.n = len(sg.ops)
        self.producer: dict[int, int] = {}
        self.consumers: dict[int, list[int]] = {}
        for oi, op in enumerate(sg.ops):
            for t in op.outputs:
                self.producer[t] = oi
        for oi, op in enumerate(sg.ops):
            for t in op.inputs:
                if t >= 0:
                    cs = self.consumers.setdefault(t, [])
                    if not cs or cs[-1] != oi:
                        cs.append(oi)
        self.graph_outputs = set(sg.outputs)
        self.stateful = [is_stateful(op, sg) for op in sg.ops]
        succ: list[set[int]] = [set() for _ in range(n)]
        for oi, op in enumerate(sg.ops):
            for t in op.inputs:
                p = self.producer.get(t) if t >= 0 else None
                if p is not None and p != oi:
                    succ[p].add(oi)
        self.chain: set[tuple[int, int]] = set()
        prev = None
        for oi in range(n):
            if self.stateful[oi]:
                if prev is not None:
                    succ[prev].add(oi)
                    self.chain.add((prev, oi))
                prev = oi
        self.succ = [sorted(s) for s in succ]
        pred: list[list[int]] = [[] for _ in range(n)]
        for u in range(n):
            for v in self.succ[u]:
                pred[v].append(u)
        self.pred = pred
        # strict descendants / ancestors as int bitsets; ops are in a topological order when the
        # model passed ir.validate, but compute in a true topological order to be safe
        order = self._topo()
        self.desc = [0] * n
        self.anc = [0] * n
        for u in reversed(order):
            d = 0
            for v in self.succ[u]:
                d |= (1 << v) | self.desc[v]
            self.desc[u] = d
        for v in order:
            a = 0
            for u in self.pred[v]:
                a |= (1 << u) | self.anc[u]
            self.anc[v] = a

    def _topo(self) -> list[int]:
        indeg = [len(p) for p in self.pred]
        heap = [i for i in range(self.n) if indeg[i] == 0]
        heapq.heapify(heap)
        out = []
        while heap:
            u = heapq.heappop(heap)
            out.append(u)
            for v in self.succ[u]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    heapq.heappush(heap, v)
        if len(out) != self.n:
            raise ValueError("fusion: the op graph has a cycle (run ir.validate on the model)")
        return out

    def boundary(self, op_list: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(inputs, outputs) of a multi-op cluster with these ops, in this order."""
        sg = self.sg
        inside = set(op_list)
        inputs: list[int] = []
        seen: set[int] = set()
        produced: set[int] = set()
        for oi in op_list:
            op = sg.ops[oi]
            for t in op.inputs:
                if t >= 0 and t not in produced and t not in seen:
                    seen.add(t)
                    inputs.append(t)
            produced.update(op.outputs)
        outputs: list[int] = []
        done: set[int] = set()
        for oi in op_list:
            for t in sg.ops[oi].outputs:
                if t in done:
                    continue
                if t in self.graph_outputs or any(c not in inside for c in self.consumers.get(t, ())):
                    done.add(t)
                    outputs.append(t)
        return tuple(inputs), tuple(outputs)

    def cluster(self, op_list: Iterable[int]) -> Cluster:
        ops_t = tuple(sorted(op_list))
        if len(ops_t) == 1:
            op = self.sg.ops[ops_t[0]]
            return Cluster(ops=ops_t, inputs=tuple(op.inputs), outputs=tuple(op.outputs))
        ins, outs = self.boundary(ops_t)
        return Cluster(ops=ops_t, inputs=ins, outputs=outs)


def make_cluster(sg: Subgraph, op_indices: Iterable[int]) -> Cluster:
    """The canonical Cluster for a set of ops (see the module docstring for the conventions)."""
    return _Index(sg).cluster(op_indices)


def make_clusters(sg: Subgraph, groups: Iterable[Iterable[int]]) -> list[Cluster]:
    """Canonical clusters for a partition of the ops, in an executable order (ties: lowest op)."""
    idx = _Index(sg)
    return _emit(idx, [sorted(g) for g in groups])


def _emit(idx: _Index, groups: list[list[int]]) -> list[Cluster]:
    """Clusters in a topological order of the cluster graph, the lowest first op first."""
    where = {}
    for gi, g in enumerate(groups):
        for oi in g:
            where[oi] = gi
    succ: list[set[int]] = [set() for _ in groups]
    indeg = [0] * len(groups)
    for u in range(idx.n):
        for v in idx.succ[u]:
            a, b = where[u], where[v]
            if a != b and b not in succ[a]:
                succ[a].add(b)
                indeg[b] += 1
    heap = [(g[0], gi) for gi, g in enumerate(groups) if indeg[gi] == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        _, gi = heapq.heappop(heap)
        out.append(idx.cluster(groups[gi]))
        for b in sorted(succ[gi]):
            indeg[b] -= 1
            if indeg[b] == 0:
                heapq.heappush(heap, (groups[b][0], b))
    if len(out) != len(groups):
        raise ValueError("fusion: the clusters form a cycle (internal error)")
    return out


class _Graph(_Index):
    """_Index plus what the strategies need from env and config: which ops may be fused, their
    effective pattern kinds, shapes, and the cuts config.stop_fusion asks for."""

    def __init__(self, sg: Subgraph, env: CompileEnv, cfg: FusionConfig):
        super().__init__(sg)
        self.env = env
        self.cfg = cfg
        infos = env.infos
        self.opdefs = [ops.get(op.name) for op in sg.ops]
        self.fusable = []
        self.kind: list[PatternKind] = []
        for oi, op in enumerate(sg.ops):
            d = self.opdefs[oi]
            ok = (d is not None and d.kind != K.OPAQUE and not self.stateful[oi]
                  and op.name not in cfg.deny_ops
                  and all(infos[t].shape is not None for t in (*op.inputs, *op.outputs) if t >= 0))
            self.fusable.append(ok)
            self.kind.append(d.kind if ok else K.OPAQUE)
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
        return self.sg.tensors[t].data is not None

    def private(self, t: int) -> bool:
        """Not a graph output and not a stop_fusion cut (the producer may hide it)."""
        return t not in self.graph_outputs and not (self.cfg.stop_fusion and (
            t in self.cfg.stop_fusion or self.sg.tensors[t].name in self.cfg.stop_fusion))


class _Groups:
    """A partition of the ops under construction. Each group is keyed by its lowest op; desc/anc
    are bitsets of the ops in groups reachable from / reaching the group in the group graph."""

    def __init__(self, g: _Graph, cap: int, max_args: int | None):
        self.g, self.cap, self.max_args = g, cap, max_args
        n = g.n
        self.root = list(range(n))
        self.members: dict[int, list[int]] = {i: [i] for i in range(n)}
        self.mask = {i: 1 << i for i in range(n)}
        self.desc = dict(enumerate(g.desc))
        self.anc = dict(enumerate(g.anc))
        self.forbid = dict(enumerate(g.forbid))

    def find(self, oi: int) -> int:
        return self.root[oi]

    def ops_of(self, roots: Iterable[int]) -> list[int]:
        return sorted(m for r in set(roots) for m in self.members[r])

    def can_merge(self, roots: Iterable[int]) -> bool:
        roots = sorted(set(roots))
        if len(roots) < 2:
            return False
        g = self.g
        if not all(g.fusable[r] for r in roots):  # a group's lowest op is fusable iff all are
            return False
        size = sum(len(self.members[r]) for r in roots)
        if size > self.cap:
            return False
        m = f = d = a = 0
        for r in roots:
            m |= self.mask[r]
            f |= self.forbid[r]
            d |= self.desc[r]
            a |= self.anc[r]
        if f & m:
            return False
        if d & a & ~m:  # some group outside would be both after and before the merged group
            return False
        if self.max_args is not None:
            ins, outs = g.boundary(self.ops_of(roots))
            if len(ins) + len(outs) > self.max_args:
                return False
        return True

    def merge(self, roots: Iterable[int]) -> int:
        roots = sorted(set(roots))
        members = self.ops_of(roots)
        new = members[0]
        m = f = d = a = 0
        for r in roots:
            m |= self.mask.pop(r)
            f |= self.forbid.pop(r)
            d |= self.desc.pop(r)
            a |= self.anc.pop(r)
            del self.members[r]
        d &= ~m
        a &= ~m
        self.members[new] = members
        self.mask[new], self.forbid[new], self.desc[new], self.anc[new] = m, f, d, a
        for oi in members:
            self.root[oi] = new
        for x in self.members:
            if x == new:
                continue
            if self.desc[x] & m:
                self.desc[x] |= m | d
            if self.anc[x] & m:
                self.anc[x] |= m | a
        return new

    def groups(self) -> list[list[int]]:
        return [self.members[r] for r in sorted(self.members)]

    def succ_groups(self, r: int) -> list[int]:
        out = {self.root[v] for u in self.members[r] for v in self.g.succ[u]}
        out.discard(r)
        return sorted(out)

    def pred_groups(self, r: int) -> list[int]:
        out = {self.root[u] for v in self.members[r] for u in self.g.pred[v]}
        out.discard(r)
        return sorted(out)


# ---- S0: none -----------------------------------------------------------------------------------

class NoFusion(FusionStrategy):
    """One op a cluster: the numerical reference."""

    name = "none"

    def plan(self, sg: Subgraph, env: CompileEnv) -> list[Cluster]:
        return [Cluster(ops=(i,), inputs=tuple(op.inputs), outputs=tuple(op.outputs))
                for i, op in enumerate(sg.ops)]


# ---- S1: epilogue -------------------------------------------------------------------------------

def _epilogue_op_ok(g: _Graph, cfg: EpilogueConfig, c: int, t: int) -> bool:
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


def _epilogue_pass(g: _Graph, grp: _Groups, cfg: EpilogueConfig) -> None:
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
                    or not _epilogue_op_ok(g, cfg, c, t):
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
        g = _Graph(sg, env, self.config)
        grp = _Groups(g, self.config.cap, self.config.max_args)
        _epilogue_pass(g, grp, self.config)
        return _emit(g, grp.groups())


# ---- S2: elementwise ----------------------------------------------------------------------------

_LOOP = (K.ELEMWISE, K.BROADCAST)


def _loop_merge_ok(g: _Graph, grp: _Groups, pr: int, cr: int) -> bool:
    """The union stays 'loop' (element-wise/broadcast only) or 'epilogue' (one complex op)."""
    complex_ops = 0
    for r in (pr, cr):
        for m in grp.members[r]:
            k = g.kind[m]
            if k == K.OUT_ELEMWISE_FUSABLE:
                complex_ops += 1
            elif k not in _LOOP:
                return False
    return complex_ops <= 1


class ElementwiseFusion(FusionStrategy):
    """Epilogue fusion plus maximal groups of element-wise/broadcast ops (XLA kLoop): a producer
    joins its consumer when every reader of the intermediate is in the consumer's group, the
    intermediate has the consumer's output shape (read once, never recomputed) and the union has
    at most one complex op."""

    name = "elementwise"
    config_class = ElementwiseConfig

    def plan(self, sg: Subgraph, env: CompileEnv) -> list[Cluster]:
        cfg = self.config
        g = _Graph(sg, env, cfg)
        grp = _Groups(g, cfg.cap, cfg.max_args)
        if cfg.epilogue:
            _epilogue_pass(g, grp, cfg)
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
                        if _loop_merge_ok(g, grp, pr, cr) and grp.can_merge([pr, cr]):
                            grp.merge([pr, cr])
                            changed = True
        return _emit(g, grp.groups())


# ---- S3: rules (TVM FuseOps) --------------------------------------------------------------------

_ROOT = -1


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
        g = _Graph(sg, env, cfg)
        n = g.n
        kind = list(g.kind)
        if not cfg.allow_injective:
            kind = [K.OPAQUE if k == K.INJECTIVE else k for k in kind]
        fusable = [k != K.OPAQUE for k in kind]

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

        for u in reversed(g._topo()):
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

        g.fusable = fusable  # groups follow the effective kinds (allow_injective)
        grp = _Groups(g, cfg.cap, cfg.max_args)
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

        order = g._topo()
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
        return _emit(g, grp.groups())


# ---- S4: greedy_cost (XLA PriorityFusion) -------------------------------------------------------

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
        g = _Graph(sg, env, cfg)
        n = g.n
        kind = list(g.kind)
        if not cfg.allow_injective:
            kind = [K.OPAQUE if k == K.INJECTIVE else k for k in kind]
        g.fusable = [k != K.OPAQUE for k in kind]
        g.kind = kind
        flops = [0.0] * n
        for oi, op in enumerate(sg.ops):
            d = g.opdefs[oi]
            if d is None or d.cost is None or not g.fusable[oi]:
                continue
            try:
                c = d.cost([g.shape(t) if t >= 0 else None for t in op.inputs],
                           [g.shape(t) for t in op.outputs], env.attrs[oi])
                flops[oi] = float(c.flops)
            except Exception:  # a cost rule that cannot handle this node: count it as free
                flops[oi] = 0.0
        grp = _Groups(g, cfg.cap, cfg.max_args)
        time_cache: dict[tuple[int, ...], float] = {}

        def reread(p: int, c: int) -> float:
            """How many times c reads each element p gives it (a growing broadcast re-reads)."""
            outs = set(sg.ops[p].outputs)
            worst = 1.0
            for t in sg.ops[c].inputs:
                if t in outs:
                    n_t = max(1, g.numel(t))
                    if kind[c] == K.OUT_ELEMWISE_FUSABLE:
                        r = flops[c] / (2.0 * n_t)
                    elif kind[c] == K.REDUCTION:
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
            anchors = [m for m in members if kind[m] in (K.OUT_ELEMWISE_FUSABLE, K.REDUCTION)]
            if len(anchors) > 1:
                return False
            if not anchors:
                return True
            a = anchors[0]
            mask = 0
            for m in members:
                mask |= 1 << m
            if kind[a] == K.OUT_ELEMWISE_FUSABLE:
                if any(mask >> p & 1 for p in g.pred[a]):
                    return False  # no prologue into a complex op
                below = g.desc[a] & mask
                return all(kind[m] <= K.BROADCAST for m in members if below >> m & 1)
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

        for p in range(n):
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
        return _emit(g, grp.groups())


register_strategy("none", NoFusion)
register_strategy("epilogue", EpilogueFusion)
register_strategy("elementwise", ElementwiseFusion)
register_strategy("rules", RuleFusion)
register_strategy("greedy_cost", GreedyCostFusion)


# ---- the shared validator -----------------------------------------------------------------------

def _label(sg: Subgraph, k: int, c: Cluster) -> str:
    names = ", ".join(f"{i} {sg.ops[i].name}" if 0 <= i < len(sg.ops) else str(i) for i in c.ops[:6])
    more = f", ... ({len(c.ops)} ops)" if len(c.ops) > 6 else ""
    return f"cluster #{k} (ops {names}{more})"


def validate_clusters(sg: Subgraph, clusters: Sequence[Cluster], caps: Any = None, *,
                      strategy: str = "?", env: CompileEnv | None = None) -> None:
    """Check a strategy's clusters; ValueError naming the strategy and the cluster otherwise.

    Every op is in exactly one cluster; each cluster lists its ops in an executable order, is
    convex (no path leaves it and comes back) and has exactly the canonical inputs and outputs
    (`make_cluster`); the list is a topological order of the cluster graph (so that graph is
    acyclic; ops with side effects keep their order); stateful ops, and when `env` is given ops
    with run-time shapes, are alone; multi-op clusters respect caps.max_ops (default 256) and
    caps.max_args. `caps` is a FusionConfig, anything with those attributes, or an int (max_ops).
    """
    if isinstance(caps, int):
        max_ops, max_args = caps, None
    else:
        max_ops = int(getattr(caps, "cap", getattr(caps, "max_ops", 256)) or 256)
        max_args = getattr(caps, "max_args", None)
    pre = f"fusion strategy {strategy!r}: "
    n = len(sg.ops)
    where = [-1] * n
    for k, c in enumerate(clusters):
        if not isinstance(c, Cluster):
            raise ValueError(f"{pre}item #{k} is a {type(c).__name__}, not a Cluster")
        if not c.ops:
            raise ValueError(f"{pre}cluster #{k} has no ops")
        for oi in c.ops:
            if not isinstance(oi, (int, np.integer)) or not 0 <= oi < n:
                raise ValueError(f"{pre}{_label(sg, k, c)} names op {oi!r}, not one of the {n} ops")
            if where[oi] != -1:
                raise ValueError(f"{pre}op {oi} ({sg.ops[oi].name}) is in cluster #{where[oi]} "
                                 f"and in {_label(sg, k, c)}")
            where[oi] = k
    missing = [i for i in range(n) if where[i] == -1]
    if missing:
        raise ValueError(f"{pre}ops {missing[:10]} ({', '.join(sg.ops[i].name for i in missing[:10])}) "
                         "are in no cluster")
    idx = _Index(sg)
    for k, c in enumerate(clusters):
        label = _label(sg, k, c)
        pos = {oi: j for j, oi in enumerate(c.ops)}
        for oi in c.ops:
            for p in idx.pred[oi]:
                if p in pos and pos[p] > pos[oi]:
                    raise ValueError(f"{pre}{label} runs op {oi} before op {p} that it depends on")
        if len(c.ops) > 1:
            if len(c.ops) > max_ops:
                raise ValueError(f"{pre}{label} has {len(c.ops)} ops, over the cap of {max_ops}")
            for oi in c.ops:
                if idx.stateful[oi]:
                    raise ValueError(f"{pre}{label} fuses op {oi} ({sg.ops[oi].name}), which has side "
                                     "effects or state and must run alone")
                if env is not None and any(env.infos[t].shape is None
                                           for t in (*sg.ops[oi].inputs, *sg.ops[oi].outputs) if t >= 0):
                    raise ValueError(f"{pre}{label} fuses op {oi} ({sg.ops[oi].name}), whose shapes are "
                                     "only known at run time")
            ins, outs = idx.boundary(c.ops)
        else:
            op = sg.ops[c.ops[0]]
            ins, outs = tuple(op.inputs), tuple(op.outputs)
        if tuple(c.inputs) != ins:
            raise ValueError(f"{pre}{label} lists inputs {list(c.inputs)}; expected {list(ins)}")
        if tuple(c.outputs) != outs:
            raise ValueError(f"{pre}{label} lists outputs {list(c.outputs)}; expected {list(outs)} "
                             "(every tensor made inside and read outside, or a subgraph output)")
        if len(c.ops) > 1 and max_args is not None and len(ins) + len(outs) > max_args:
            raise ValueError(f"{pre}{label} has {len(ins)} inputs + {len(outs)} outputs, over the "
                             f"cap of {max_args} arguments")
        mask = d = a = 0
        for oi in c.ops:
            mask |= 1 << oi
            d |= idx.desc[oi]
            a |= idx.anc[oi]
        bad = d & a & ~mask
        if bad:
            x = (bad & -bad).bit_length() - 1
            raise ValueError(f"{pre}{label} is not convex: op {x} ({sg.ops[x].name}) lies outside it "
                             "on a path that leaves the cluster and comes back")
    for u in range(n):
        for v in idx.succ[u]:
            if where[u] > where[v]:
                ts = [t for t in sg.ops[u].outputs if t in sg.ops[v].inputs]
                what = (f"tensor {ts[0]} ('{sg.tensors[ts[0]].name}')" if ts
                        else "its turn among the ops with side effects")
                raise ValueError(
                    f"{pre}{_label(sg, where[v], clusters[where[v]])} needs {what} from op {u} "
                    f"({sg.ops[u].name}) in the later {_label(sg, where[u], clusters[where[u]])}: "
                    "the clusters are not in a topological order or form a cycle")


# ---- reports ------------------------------------------------------------------------------------

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
