"""The one validator every strategy's clusters pass through (inside `FusionStrategy.__call__`).

It is separate from the strategies so that none of them can relax it: a cluster that is not
convex, not in a runnable order, or lists other inputs/outputs than the canonical ones
(fusion.clusters) would make a backend compute the wrong tensors, not fail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tflite_jit.backends.base import Cluster, CompileEnv
from tflite_jit.ir.graph import OpGraph, outside_on_path
from tflite_jit.ir.model import Subgraph


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
    graph = OpGraph(sg)
    for k, c in enumerate(clusters):
        label = _label(sg, k, c)
        pos = {oi: j for j, oi in enumerate(c.ops)}
        for oi in c.ops:
            for p in graph.pred[oi]:
                if p in pos and pos[p] > pos[oi]:
                    raise ValueError(f"{pre}{label} runs op {oi} before op {p} that it depends on")
        if len(c.ops) > 1:
            if len(c.ops) > max_ops:
                raise ValueError(f"{pre}{label} has {len(c.ops)} ops, over the cap of {max_ops}")
            for oi in c.ops:
                if graph.stateful[oi]:
                    raise ValueError(f"{pre}{label} fuses op {oi} ({sg.ops[oi].name}), which has side "
                                     "effects or state and must run alone")
                if env is not None and any(env.infos[t].shape is None
                                           for t in (*sg.ops[oi].inputs, *sg.ops[oi].outputs) if t >= 0):
                    raise ValueError(f"{pre}{label} fuses op {oi} ({sg.ops[oi].name}), whose shapes are "
                                     "only known at run time")
            ins, outs = graph.boundary(c.ops)
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
        x = outside_on_path(graph, c.ops)
        if x is not None:
            raise ValueError(f"{pre}{label} is not convex: op {x} ({sg.ops[x].name}) lies outside it "
                             "on a path that leaves the cluster and comes back")
    for u in range(n):
        for v in graph.succ[u]:
            if where[u] > where[v]:
                ts = [t for t in sg.ops[u].outputs if t in sg.ops[v].inputs]
                what = (f"tensor {ts[0]} ('{sg.tensors[ts[0]].name}')" if ts
                        else "its turn among the ops with side effects")
                raise ValueError(
                    f"{pre}{_label(sg, where[v], clusters[where[v]])} needs {what} from op {u} "
                    f"({sg.ops[u].name}) in the later {_label(sg, where[u], clusters[where[u]])}: "
                    "the clusters are not in a topological order or form a cycle")

