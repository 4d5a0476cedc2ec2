"""Graph analysis of one subgraph: who writes and reads each tensor, the op DAG, convexity, the
order of op groups, and the groupings the delegate planner starts from.

Fusion strategies, the fusion validator, the delegate planner and the executable all ask these
questions of the same graph; answering them here once keeps their answers identical (a cluster
the planner calls convex is one the validator accepts) and keeps the algorithms apart from the
policies that use them (TVM keeps its indexed graph in relax/analysis for the same reason).

The op DAG has the data edges (producer -> reader) plus an order chain through the ops with side
effects or hidden state (`is_stateful`), so that no grouping may reorder two of those. Sets of
ops are Python ints used as bitsets (bit i = op i): convexity and cycle checks on graphs of a few
thousand ops are then a handful of big-integer ORs instead of walks.

This module is part of the IR layer: it reads `ir.Subgraph` only (op names, tensor ids,
variable flags), never op definitions or backends.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from functools import cached_property

from tflite_jit.ir.model import Op, Subgraph

# Ops with side effects or hidden state: always singletons, and kept in their original order.
_STATEFUL_SUBSTRINGS = ("VARIABLE", "VAR_HANDLE", "CALL_ONCE", "RANDOM", "MULTINOMIAL", "HASHTABLE")
# Exact names only: "IF" is a substring of e.g. SQUARED_DIFFERENCE.
_STATEFUL_NAMES = frozenset({"WHILE", "IF"})


def is_stateful(op: Op, sg: Subgraph) -> bool:
    """Ops with side effects or hidden state: variables, control flow, custom ops, random ops,
    and any op touching a variable tensor."""
    if op.is_custom or op.name in _STATEFUL_NAMES or any(s in op.name for s in _STATEFUL_SUBSTRINGS):
        return True
    return any(t >= 0 and sg.tensors[t].is_variable for t in (*op.inputs, *op.outputs))


class OpGraph:
    """Producer/consumer maps, the op DAG (data edges plus an order chain through stateful ops),
    a topological order, and strict descendant/ancestor bitsets per op.

    `succ`/`pred` are sorted lists per op; `consumers[t]` lists each reader of tensor t once, in
    op order; `chain` holds the order-only edges between consecutive stateful ops. Raises
    ValueError for a cyclic graph (ir.validate rejects those first)."""

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
        # ops are in a topological order when the model passed ir.validate, but the analyses
        # walk a true one (lowest op first among the ready ones) to be safe
        self.order = self._topological_order()

    def _topological_order(self) -> list[int]:
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

    @cached_property
    def desc(self) -> list[int]:
        """Strict descendants of each op, as a bitset."""
        desc = [0] * self.n
        for u in reversed(self.order):
            d = 0
            for v in self.succ[u]:
                d |= (1 << v) | desc[v]
            desc[u] = d
        return desc

    @cached_property
    def anc(self) -> list[int]:
        """Strict ancestors of each op, as a bitset."""
        anc = [0] * self.n
        for v in self.order:
            a = 0
            for u in self.pred[v]:
                a |= (1 << u) | anc[u]
            anc[v] = a
        return anc

    def boundary(self, op_list: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(inputs, outputs) of a group of ops run in this order: the distinct tensors read from
        outside (graph inputs and constants included) in first-use order, and every tensor made
        inside that is read outside or is a subgraph output, in production order."""
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


def bitset(ops: Iterable[int]) -> int:
    """The ops as a bitset (bit i = op i)."""
    mask = 0
    for oi in ops:
        mask |= 1 << oi
    return mask


def outside_on_path(graph: OpGraph, ops: Iterable[int]) -> int | None:
    """The lowest op outside `ops` on a path that leaves the set and comes back, or None when
    the set is convex (a kernel running the set at once would need that op's result early)."""
    ops = list(ops)
    down = up = 0
    for oi in ops:
        down |= graph.desc[oi]
        up |= graph.anc[oi]
    bad = down & up & ~bitset(ops)
    return (bad & -bad).bit_length() - 1 if bad else None


def is_convex(graph: OpGraph, ops: Sequence[int]) -> bool:
    """No path leaves the set and comes back."""
    return outside_on_path(graph, ops) is None


def group_order(graph: OpGraph, groups: Sequence[Sequence[int]]) -> list[int] | None:
    """Indices of `groups` (a partition of the ops) in a topological order of the graph with each
    group collapsed to one node, the group with the lowest op first among the ready ones; None
    when the collapsed graph has a cycle."""
    where = {}
    for gi, g in enumerate(groups):
        for oi in g:
            where[oi] = gi
    succ: list[set[int]] = [set() for _ in groups]
    indeg = [0] * len(groups)
    for u in range(graph.n):
        for v in graph.succ[u]:
            a, b = where[u], where[v]
            if a != b and b not in succ[a]:
                succ[a].add(b)
                indeg[b] += 1
    first = [min(g) for g in groups]
    heap = [(first[gi], gi) for gi in range(len(groups)) if indeg[gi] == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        _, gi = heapq.heappop(heap)
        out.append(gi)
        for b in sorted(succ[gi]):
            indeg[b] -= 1
            if indeg[b] == 0:
                heapq.heappush(heap, (first[b], b))
    return out if len(out) == len(groups) else None


def is_cyclic(graph: OpGraph, groups: Sequence[Sequence[int]]) -> bool:
    """Whether collapsing each group to one node (other ops stay single) makes a cycle."""
    covered = {oi for g in groups for oi in g}
    singles = [[oi] for oi in range(graph.n) if oi not in covered]
    return group_order(graph, [*groups, *singles]) is None


def waves(graph: OpGraph, supported: set[int]) -> list[list[int]]:
    """ONNX Runtime's CreateSupportedPartitions: a topological walk in waves; supported ops join the
    wave's group, other ops are processed at once unless they read the group (then they wait for
    the next wave). Each group is convex."""
    n = graph.n
    indeg = [len(p) for p in graph.pred]
    ready = sorted(i for i in range(n) if indeg[i] == 0)
    done = 0
    groups: list[list[int]] = []
    while done < n:
        group: list[int] = []
        in_group: set[int] = set()
        deferred: list[int] = []
        while ready:
            u = ready.pop(0)
            if u not in supported and any(p in in_group for p in graph.pred[u]):
                deferred.append(u)
                continue
            done += 1
            if u in supported:
                group.append(u)
                in_group.add(u)
            for v in graph.succ[u]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    ready.append(v)
            ready.sort()
        if group:
            groups.append(sorted(group))
        elif not deferred:
            break  # pragma: no cover - only a cyclic graph gets here; ir.validate rejects those
        ready = sorted(deferred)
    return groups


def components(graph: OpGraph, group: Sequence[int]) -> list[list[int]]:
    """The weakly connected components of `group` (edges inside it), each sorted. Components of
    a convex group stay convex: a path leaving one and coming back would leave the group."""
    inside = set(group)
    seen: set[int] = set()
    out = []
    for s in sorted(group):
        if s in seen:
            continue
        comp, stack = [], [s]
        seen.add(s)
        while stack:
            u = stack.pop()
            comp.append(u)
            for v in (*graph.succ[u], *graph.pred[u]):
                if v in inside and v not in seen:
                    seen.add(v)
                    stack.append(v)
        out.append(sorted(comp))
    return out


class ConvexGroups:
    """A partition of the ops grown by merges, each group keyed by its lowest op. `desc`/`anc`
    are bitsets of the ops in groups reachable from / reaching a group in the group graph, kept
    up to date on every merge, so whether a merge keeps the group graph acyclic is one test."""

    def __init__(self, graph: OpGraph):
        self.graph = graph
        n = graph.n
        self.root = list(range(n))
        self.members: dict[int, list[int]] = {i: [i] for i in range(n)}
        self.mask = {i: 1 << i for i in range(n)}
        self.desc = dict(enumerate(graph.desc))
        self.anc = dict(enumerate(graph.anc))

    def find(self, oi: int) -> int:
        return self.root[oi]

    def ops_of(self, roots: Iterable[int]) -> list[int]:
        return sorted(m for r in set(roots) for m in self.members[r])

    def stays_acyclic(self, roots: Iterable[int]) -> bool:
        """Merging these groups leaves no group outside both after and before the result."""
        m = d = a = 0
        for r in set(roots):
            m |= self.mask[r]
            d |= self.desc[r]
            a |= self.anc[r]
        return not d & a & ~m

    def merge(self, roots: Iterable[int]) -> int:
        """Merge the groups (the caller checked `stays_acyclic`); the new group's root."""
        roots = sorted(set(roots))
        members = self.ops_of(roots)
        new = members[0]
        m = d = a = 0
        for r in roots:
            m |= self.mask.pop(r)
            d |= self.desc.pop(r)
            a |= self.anc.pop(r)
            del self.members[r]
        d &= ~m
        a &= ~m
        self.members[new] = members
        self.mask[new], self.desc[new], self.anc[new] = m, d, a
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
        out = {self.root[v] for u in self.members[r] for v in self.graph.succ[u]}
        out.discard(r)
        return sorted(out)

    def pred_groups(self, r: int) -> list[int]:
        out = {self.root[u] for v in self.members[r] for u in self.graph.pred[v]}
        out.discard(r)
        return sorted(out)
