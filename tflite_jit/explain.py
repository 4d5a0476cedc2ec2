"""The execution plan made visible: which backend runs each op, how ops were fused and
partitioned, what the cost model predicted, and why anything fell back (FUSION.md §4: users ask
for a machine-readable placement dump with a reason for every cut, and for fallback summaries
that are on by default).

`execution_plan(executable)` builds plain dicts (what `Interpreter.get_execution_plan()` returns),
`summary_line` the one line saying how much was delegated, and `announce` prints it on the first
allocation with delegates. This is the engine's half and imports nothing above the runtime; the
renderers (text, JSON, SVG, HTML) and the `tflite-jit plan` command that print these dicts are
tools (`tflite_jit.tools.plan`).

Plan keys (`execution_plan`): `subgraph`, `delegates` (names requested), `backends` (in
preference order), `ops` (index, name, inputs, outputs, backend, cluster, partition, reason),
`clusters` (id, ops, op_names, backend, partition, step, predicted_s, measured_s, reason),
`partitions` (id — None for rejected candidates —, backend, ops, inputs, outputs, delegated,
reason, predicted_s, device_s, transfer_s, host_predicted_s, measured_s), `tensors` (index,
name, shape, dtype, constant), `inputs`, `outputs`, `summary` (counts) and `summary_line`.
"""

from __future__ import annotations

import logging
import math
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from tflite_jit.ir.model import numpy_type

log = logging.getLogger("tflite_jit")


# ---- the plan as plain data ---------------------------------------------------------------------

def execution_plan(ex: Any, *, delegates: Sequence[str] = ()) -> dict[str, Any]:
    """The plan of a prepared `runtime.executable.Executable` as plain dicts and lists."""
    # Ops and tensors as the file has them: a subgraph rewritten for execution
    # (runtime/stacking.py) maps each of its ops to the file's ops it computes.
    sg = ex.sg.source or ex.sg
    origin = ex.sg.origin

    def file_ops(ops_: Sequence[int]) -> list[int]:
        return sorted({int(o) for i in ops_ for o in origin[i]}) if origin else [int(i) for i in ops_]

    n = len(sg.ops)
    op_backend = ["?"] * n
    op_cluster = [-1] * n
    op_partition: list[int | None] = [None] * n
    op_reason = [""] * n
    clusters: list[dict[str, Any]] = []
    measured = list(ex.measured) + [None] * (len(ex.plan) - len(ex.measured))
    for step_i, entry in enumerate(ex.plan):
        part = entry.get("partition")
        inner = entry.get("clusters") or [entry["ops"]]
        for ops_ in inner:
            ops_ = file_ops(ops_)
            if not ops_:  # a helper op of a rewrite (the SPLIT handing out stacked rows)
                continue
            cid = len(clusters)
            clusters.append({"id": cid, "ops": ops_,
                             "op_names": [sg.ops[i].name for i in ops_], "backend": entry["backend"],
                             "partition": part, "step": step_i,
                             "predicted_s": _num(entry.get("predicted_s")) if part is None or len(inner) == 1 else None,
                             "measured_s": _num(measured[step_i]) if part is None or len(inner) == 1 else None,
                             "reason": entry["fallback_reason"]})
            for oi in ops_:
                op_backend[oi] = entry["backend"]
                op_cluster[oi] = cid
                op_partition[oi] = part
                op_reason[oi] = entry["fallback_reason"] if part is None else ""
    partitions = []
    step_of_part = {e.get("partition"): i for i, e in enumerate(ex.plan) if e.get("partition") is not None}
    for p in ex.partitions:
        d = dict(p)
        if origin:  # the file's ops; tensors a rewrite added (ids past the file's) are not listed
            d["ops"] = file_ops(p.get("ops", ()))
            for key in ("inputs", "outputs"):
                if key in d:
                    d[key] = [t for t in d[key] if t < len(sg.tensors)]
        si = step_of_part.get(p["id"]) if p["id"] is not None else None
        d["measured_s"] = _num(measured[si]) if si is not None else None
        partitions.append(d)
    ops = [{"index": oi, "name": op.name, "inputs": [int(t) for t in op.inputs],
            "outputs": [int(t) for t in op.outputs], "backend": op_backend[oi], "cluster": op_cluster[oi],
            "partition": op_partition[oi], "reason": op_reason[oi]} for oi, op in enumerate(sg.ops)]
    tensors = []
    for ti, t in enumerate(sg.tensors):
        info = ex.infos[ti] if ti < len(ex.infos) else None
        shape = info.shape if info is not None and info.shape is not None else None
        tensors.append({"index": ti, "name": t.name, "shape": None if shape is None else [int(d) for d in shape],
                        "dtype": np.dtype(numpy_type(t.type)).name, "constant": t.data is not None})
    plan = {"subgraph": int(ex.si), "delegates": list(delegates), "backends": [b.name for b in ex.backends],
            "ops": ops, "clusters": clusters, "partitions": partitions, "tensors": tensors,
            "inputs": [int(t) for t in sg.inputs], "outputs": [int(t) for t in sg.outputs]}
    plan["summary"] = _summary(plan)
    plan["summary_line"] = summary_line(plan)
    return plan


def _num(x: Any) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def _summary(plan: dict[str, Any]) -> dict[str, Any]:
    by_backend = Counter(o["backend"] for o in plan["ops"])
    delegated = [p for p in plan["partitions"] if p["delegated"]]
    host_names = [b for b in plan["backends"] if b not in {p["backend"] for p in plan["partitions"]}]
    return {"ops": len(plan["ops"]), "ops_by_backend": dict(sorted(by_backend.items())),
            "clusters": len(plan["clusters"]), "delegated_partitions": len(delegated),
            "delegated_ops": sum(len(p["ops"]) for p in delegated),
            "rejected_partitions": sum(1 for p in plan["partitions"] if not p["delegated"]),
            "host_backends": host_names,
            "predicted_s": sum(c["predicted_s"] or 0.0 for c in plan["clusters"])
            + sum(p["predicted_s"] or 0.0 for p in delegated if len(_inner(plan, p["id"])) > 1)}


def _inner(plan: dict[str, Any], pid: Any) -> list[dict[str, Any]]:
    return [c for c in plan["clusters"] if c["partition"] == pid and pid is not None]


def summary_line(plan: dict[str, Any]) -> str:
    """One line: how much each requested delegate ran, and the main reasons the rest did not."""
    s = plan.get("summary") or _summary(plan)
    n = s["ops"]
    counts = ", ".join(f"{b} {c}" for b, c in s["ops_by_backend"].items())
    if not plan["delegates"]:
        return f"tflite_jit: {n} ops on {counts or 'nothing'} (no delegates requested)"
    done = s["delegated_ops"]
    pct = 100.0 * done / n if n else 0.0
    names = "/".join(plan["delegates"])
    head = "" if done else "WARNING: "
    line = (f"tflite_jit: {head}delegate {names} runs {done} of {n} ops ({pct:.0f}%) in "
            f"{s['delegated_partitions']} partition(s); ops by backend: {counts}")
    reasons = Counter()
    for o in plan["ops"]:
        if o["partition"] is None and o["reason"]:
            first = o["reason"].split("; ")[0]
            reasons[(o["name"], first[:90])] += 1
    if reasons:
        top = "; ".join(f"{name} x{c}: {r}" for (name, r), c in reasons.most_common(2))
        line += f". Not delegated: {top}" + (" ..." if len(reasons) > 2 else "")
    return line


def announce(plan: dict[str, Any]) -> None:
    """Print the summary line once to stderr (as LiteRT prints its delegate INFO line) and log it."""
    line = plan["summary_line"]
    print(f"INFO: {line}", file=sys.stderr)
    log.info(line)
