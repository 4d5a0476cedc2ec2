"""The interface every backend implements, so the planner can compare them and the runtime can
run any mix of them.

A backend answers three questions about a cluster of ops (a convex group chosen by a fusion
strategy): can you run it (and if not, why), what would it cost, and give me a kernel for these
concrete shapes. Kernels take and return numpy arrays; device backends keep their own buffers
behind that boundary.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit import ops
from tflite_jit.ir.model import Op, Subgraph

#: inputs (None for omitted optional inputs) -> outputs, one array per cluster output
Kernel = Callable[[Sequence[np.ndarray | None]], list[np.ndarray]]


@dataclass(frozen=True)
class Cluster:
    """A convex group of ops of one subgraph, run as one kernel."""

    ops: tuple[int, ...]  # op indices, in execution order
    inputs: tuple[int, ...]  # tensor ids read from outside the cluster (-1 kept for omitted inputs)
    outputs: tuple[int, ...]  # tensor ids visible outside the cluster


@dataclass(frozen=True)
class Partition:
    """A convex run of clusters given to one backend: the delegate unit (TFLite's delegate kernel).
    Host transfers happen only at its `inputs` (tensor ids read from outside) and `outputs`
    (tensor ids read after it, or graph outputs); intermediates may stay on the device."""

    backend: str
    clusters: tuple[Cluster, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass
class CompileEnv:
    """What compile() may rely on: the subgraph, each op's parsed attrs and every tensor's
    concrete shape, dtype and (when known at plan time) value."""

    subgraph: Subgraph
    attrs: list[Any]
    infos: list[Any]  # runtime.shapes.TensorInfo per tensor id
    num_threads: int = 1

    def opdef(self, name: str) -> ops.OpDef | None:
        """The definition of op `name`: the interpreter's own custom ops (`extra_ops`, set by the
        runtime's PlanEnv) first, then the global registry."""
        return getattr(self, "extra_ops", {}).get(name) or ops.get(name)

    def attrs_of(self, op: Op) -> Any:
        """The bound attrs of `op`, a node of this subgraph (found by identity; through an index
        built on first use: planning NASNet asks 1,669 times over 600 ops)."""
        index = self.__dict__.get("_attrs_index")
        if index is None or len(index) != len(self.attrs):
            index = self.__dict__["_attrs_index"] = {id(o): (o, a) for o, a in zip(self.subgraph.ops, self.attrs)}
        hit = index.get(id(op))
        if hit is not None and hit[0] is op:
            return hit[1]
        for o, a in zip(self.subgraph.ops, self.attrs):  # ops or attrs replaced since: look again
            if o is op:
                return a
        return None


class Backend(ABC):
    """A backend is constructed from a dict of options (`backends.registry.create`); the names it
    accepts are `OPTIONS`, and an unknown one is a ValueError naming the known ones."""

    name: str = "?"
    OPTIONS: tuple[str, ...] = ()

    def __init__(self, options: dict[str, Any] | None = None):
        unknown = sorted(set(options or {}) - set(self.OPTIONS))
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown option(s) {unknown}; known: {list(self.OPTIONS)}")

    @abstractmethod
    def supports(self, op: Op, env: CompileEnv) -> tuple[bool, str]:
        """(True, '') or (False, reason the user can act on)."""

    @abstractmethod
    def cost(self, cluster: Cluster, env: CompileEnv) -> float:
        """Estimated seconds for one run of the cluster."""

    @abstractmethod
    def compile(self, cluster: Cluster, env: CompileEnv) -> Kernel:
        """A kernel for the cluster at the concrete shapes in env."""

    def transfer_seconds(self, nbytes: int) -> float:
        """Estimated time to move `nbytes` between host memory and this backend (0 on the host)."""
        return 0.0

    def compile_partition(self, partition: Partition, env: CompileEnv) -> Kernel:
        """One kernel for a whole partition: arrays for `partition.inputs` in (in that order),
        arrays for `partition.outputs` out. Device backends override this to keep
        intermediates on the device; this default chains the clusters' kernels on the host."""
        kernels = [self.compile(c, env) for c in partition.clusters]

        def run(inputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
            values: dict[int, np.ndarray | None] = dict(zip(partition.inputs, inputs))
            for c, k in zip(partition.clusters, kernels):
                outs = k([values.get(t) if t >= 0 else None for t in c.inputs])
                values.update(zip(c.outputs, outs))
            return [values[t] for t in partition.outputs]

        return run


# Rough machine constants for the host roofline; the OpenCL backend measures its own
# (opencl/calibrate.py), the CPU backends are not calibrated yet.
HOST_FLOPS_PER_S = 5e9
HOST_BYTES_PER_S = 5e9
HOST_CALL_OVERHEAD_S = 5e-6


def roofline_seconds(cluster: Cluster, env: CompileEnv) -> float:
    """Sum over the cluster's ops of a call overhead plus max(FLOPs / peak, bytes / bandwidth)
    from each op's declared cost (ops without one, or with unknown shapes, cost the overhead)."""
    total = 0.0
    for oi in cluster.ops:
        op = env.subgraph.ops[oi]
        opdef = env.opdef(op.name)
        shapes_out = [env.infos[i].shape for i in op.outputs]
        if opdef is None or opdef.cost is None or any(s is None for s in shapes_out):
            total += HOST_CALL_OVERHEAD_S
            continue
        shapes_in = [env.infos[i].shape if i >= 0 else None for i in op.inputs]
        c = opdef.cost(shapes_in, shapes_out, env.attrs[oi])
        total += HOST_CALL_OVERHEAD_S + max(c.flops / HOST_FLOPS_PER_S, c.bytes / HOST_BYTES_PER_S)
    return total
