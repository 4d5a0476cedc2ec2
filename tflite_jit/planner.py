"""The delegate planner: which ops a device backend runs, grouped into which partitions, and why.

Backends come in order of preference. Host backends (numba_cpu, reference: no transfer cost)
keep today's rule, each op on the first host backend that supports it, the last one being the
complete fallback. Device backends (a non-zero `transfer_seconds`, or `is_host = False`) get
*partitions*: convex sets of ops that collapse to one kernel, the unit of TFLite's delegate
kernels (FUSION.md §3.1). How they are chosen (FUSION.md §5.3):

1. Capability: `backend.supports(op, env)` for every op, every refusal's reason kept.
2. Candidates: ONNX Runtime's "waves" over a topological walk (FUSION.md §3.2) give maximal convex
   groups of the ops one device supports; each group is split into its weakly connected
   components, which stay convex (a path leaving a component and coming back would leave the
   group) and are independent delegate kernels. Both walks live in `tflite_jit.ir.graph`, with
   the convexity and cycle checks the fusion validator uses, so the two agree on what is convex.
3. Choice by estimated time, not by node count (tensorflow#66677): a candidate is delegated when
   device time (`backend.cost`) plus the transfers of its non-constant boundary tensors
   (`backend.transfer_seconds`) is less than the host time of the same ops. TFLite's
   `min_nodes_per_partition` and `max_delegated_partitions` (the best ones by time saved) apply,
   and a candidate that would make the partition graph cyclic is refused.
4. Every decision keeps its reason, for `Interpreter.get_execution_plan()` and tflite_jit.explain.

The planner is pure: it reads the backends and the env and returns a `DelegationPlan`; the
executable (runtime/executable.py) compiles it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflite_jit.backends.base import Backend, Cluster, CompileEnv, Partition
from tflite_jit.ir.graph import OpGraph, components, is_cyclic, waves

log = logging.getLogger("tflite_jit.planner")


class NoBackendError(ValueError):
    """No backend runs op `op_index`; `reason` joins every backend's refusal."""

    def __init__(self, op_index: int, reason: str):
        super().__init__(reason)
        self.op_index = op_index
        self.reason = reason


@dataclass(frozen=True)
class PartitionLimits:
    """TFLite's delegate options. `min_nodes_per_partition`: smaller candidates stay on the host
    (0 or 1: no minimum). `max_delegated_partitions`: at most this many partitions per device and
    subgraph, the ones saving the most estimated time (0: no limit)."""

    min_nodes_per_partition: int = 0
    max_delegated_partitions: int = 0


def is_host(backend: Backend) -> bool:
    """A backend working on host memory: an explicit `is_host` attribute, else no transfer cost."""
    flag = getattr(backend, "is_host", None)
    if flag is not None:
        return bool(flag)
    try:
        return float(backend.transfer_seconds(1 << 20)) == 0.0
    except Exception:  # a backend whose cost model fails is not trusted with device work
        return True


@dataclass
class Candidate:
    """A convex group of ops one device backend supports, with its estimated times and the
    planner's verdict (`delegated`, `reason` when not)."""

    backend: str
    ops: tuple[int, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    device_s: float
    transfer_s: float
    host_s: float
    delegated: bool = False
    reason: str = ""

    @property
    def predicted_s(self) -> float:
        """Estimated time on the device, transfers included."""
        return self.device_s + self.transfer_s

    @property
    def gain_s(self) -> float:
        """Estimated time saved against running the same ops on the host."""
        return self.host_s - self.predicted_s

    def partition(self, clusters: Sequence[Cluster]) -> Partition:
        return Partition(self.backend, tuple(clusters), self.inputs, self.outputs)

    def as_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "ops": list(self.ops), "inputs": list(self.inputs),
                "outputs": list(self.outputs), "delegated": self.delegated, "reason": self.reason,
                "predicted_s": _finite(self.predicted_s), "device_s": _finite(self.device_s),
                "transfer_s": _finite(self.transfer_s), "host_predicted_s": _finite(self.host_s)}


@dataclass
class DelegationPlan:
    """The planner's answer. `placement[op]` is a backend index: the device's for delegated ops,
    else the first host backend that supports the op (`host_placement`, kept for delegated ops
    too: where they go if the device fails to compile their partition). `reasons[op]` says why the backends before
    the chosen one did not take it. `partitions` are the delegated candidates in op order;
    `rejected` the others, each with its reason."""

    placement: list[int]
    reasons: list[str]
    host_placement: list[int]  # per op: first host backend that supports it (-1: none)
    partitions: list[Candidate] = field(default_factory=list)
    rejected: list[Candidate] = field(default_factory=list)

    def partition_of(self) -> dict[int, int]:
        """op index -> index into `partitions`, for delegated ops."""
        return {oi: pi for pi, p in enumerate(self.partitions) for oi in p.ops}


def plan_delegation(sg: Any, env: CompileEnv, backends: Sequence[Backend],
                    limits: Mapping[str, PartitionLimits] | None = None, *,
                    preserve_all_tensors: bool = False, folded: Collection[int] = ()) -> DelegationPlan:
    """Place every op of `sg` (see the module docstring). Raises NoBackendError (a ValueError)
    when no backend can run an op; the caller words it as LiteRT's prepare error. `folded` ops
    were evaluated at plan time (runtime.folding) and never run: they go to the last host
    backend unasked and into no device partition."""
    n = len(sg.ops)
    limits = limits or {}
    host = [bi for bi, b in enumerate(backends) if is_host(b)]
    devices = [bi for bi, b in enumerate(backends) if bi not in host]
    # capability: first host backend per op (today's placement); device support per op
    host_of: list[int | None] = []
    host_why: list[list[str]] = []
    for oi, op in enumerate(sg.ops):
        why: list[str] = []
        chosen = host[-1] if oi in folded and host else None
        for bi in host if chosen is None else ():
            ok, reason = _supports(backends[bi], op, env)
            if ok:
                chosen = bi
                break
            why.append(f"{backends[bi].name}: {reason}")
        host_of.append(chosen)
        host_why.append(why)
    if not devices:
        for oi in range(n):
            if host_of[oi] is None:
                raise NoBackendError(oi, "; ".join(host_why[oi]))
        placement = [int(b) for b in host_of]  # type: ignore[arg-type]
        return DelegationPlan(placement, ["; ".join(w) for w in host_why], placement)

    graph = OpGraph(sg)
    host_cost = [_op_cost(backends[b], sg, oi, env) if b is not None else math.inf
                 for oi, b in enumerate(host_of)]
    claimed: dict[int, int] = {}  # op -> device backend index
    dev_why: list[list[str]] = [[] for _ in range(n)]
    chosen: list[Candidate] = []
    rejected: list[Candidate] = []
    for bi in devices:
        b = backends[bi]
        lim = limits.get(b.name, PartitionLimits())
        supported = set()
        for oi, op in enumerate(sg.ops):
            if oi in claimed or oi in folded:
                continue
            ok, reason = _supports(b, op, env)
            if ok:
                supported.add(oi)
            else:
                dev_why[oi].append(f"{b.name}: {reason}")
        cands = [_candidate(b, graph, env, comp, host_cost, preserve_all_tensors)
                 for group in waves(graph, supported) for comp in components(graph, group)]
        viable = []
        for c in cands:
            if c.reason:
                pass
            elif len(c.ops) < lim.min_nodes_per_partition:
                c.reason = (f"{len(c.ops)} node(s), fewer than min_nodes_per_partition="
                            f"{lim.min_nodes_per_partition}")
            elif not c.gain_s > 0:
                c.reason = (f"estimated slower on {b.name}: {_fmt(c.device_s)} + transfers "
                            f"{_fmt(c.transfer_s)} vs {_fmt(c.host_s)} on the host")
            else:
                viable.append(c)
        viable.sort(key=lambda c: (-c.gain_s, c.ops[0]))
        taken = 0
        for c in viable:
            if lim.max_delegated_partitions > 0 and taken >= lim.max_delegated_partitions:
                c.reason = (f"max_delegated_partitions={lim.max_delegated_partitions} reached "
                            "(partitions saving more time were delegated)")
                continue
            if is_cyclic(graph, [p.ops for p in chosen] + [c.ops]):
                c.reason = "would make the partition graph cyclic with an earlier partition"
                continue
            c.delegated = True
            taken += 1
            chosen.append(c)
            for oi in c.ops:
                claimed[oi] = bi
        for c in cands:
            if not c.delegated:
                rejected.append(c)
                for oi in c.ops:
                    dev_why[oi].append(f"{b.name}: {c.reason}")
    placement: list[int] = []
    reasons: list[str] = []
    for oi in range(n):
        if oi in claimed:
            placement.append(claimed[oi])
            reasons.append("")
            continue
        if host_of[oi] is None:
            raise NoBackendError(oi, "; ".join(dev_why[oi] + host_why[oi]))
        placement.append(int(host_of[oi]))
        reasons.append("; ".join(dev_why[oi] + host_why[oi]))
    chosen.sort(key=lambda c: c.ops[0])
    for c in chosen:
        log.debug("partition %s ops %s..%s: predicted %s (device %s + transfers %s) vs host %s",
                  c.backend, c.ops[0], c.ops[-1], _fmt(c.predicted_s), _fmt(c.device_s),
                  _fmt(c.transfer_s), _fmt(c.host_s))
    fallback = [b if b is not None else -1 for b in host_of]
    return DelegationPlan(placement, reasons, fallback, chosen, rejected)


# ---- helpers ------------------------------------------------------------------------------------

def partition_boundary(graph: OpGraph, ops: Sequence[int], *,
                       preserve_all_tensors: bool = False) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(inputs, outputs) of a partition: tensors read from outside (constants included: a device
    uploads them once), and tensors read after it or graph outputs (every produced tensor when
    all tensors must stay readable)."""
    ins, outs = graph.boundary(sorted(ops))
    if preserve_all_tensors:
        outs = tuple(dict.fromkeys(t for oi in sorted(ops) for t in graph.sg.ops[oi].outputs))
    return ins, outs


def _candidate(b: Backend, graph: OpGraph, env: CompileEnv, ops: list[int],
               host_cost: list[float], preserve_all_tensors: bool) -> Candidate:
    sg = graph.sg
    ins, outs = partition_boundary(graph, ops, preserve_all_tensors=preserve_all_tensors)
    c = Candidate(b.name, tuple(ops), ins, outs, math.inf, 0.0, sum(host_cost[oi] for oi in ops))
    try:
        c.device_s = float(b.cost(Cluster(tuple(ops), ins, outs), env))
        moved = [t for t in ins if sg.tensors[t].data is None] + list(outs)
        c.transfer_s = float(sum(b.transfer_seconds(_nbytes(env, t)) for t in moved))
    except Exception as e:  # a cost model failing is a reason to stay on the host, never fatal
        c.reason = f"{b.name} cost model failed: {type(e).__name__}: {e}"
    return c


def _supports(b: Backend, op: Any, env: CompileEnv) -> tuple[bool, str]:
    try:
        ok, reason = b.supports(op, env)
    except Exception as e:  # a capability check that trips is a refusal with its reason
        return False, f"capability check failed: {type(e).__name__}: {e}"
    return bool(ok), reason


def _op_cost(b: Backend, sg: Any, oi: int, env: CompileEnv) -> float:
    op = sg.ops[oi]
    try:
        return float(b.cost(Cluster((oi,), tuple(op.inputs), tuple(op.outputs)), env))
    except Exception:
        return 0.0


def _nbytes(env: CompileEnv, t: int) -> int:
    info = env.infos[t]
    if info.shape is None:
        return 0
    return int(np.prod(info.shape, dtype=np.int64)) * np.dtype(info.dtype).itemsize


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _fmt(s: float) -> str:
    if not math.isfinite(s):
        return "inf"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"


def format_seconds(s: float | None) -> str:
    """'1.2 ms' / '35 us' / '-' (unknown): how plans print times."""
    return "-" if s is None else _fmt(s)
