"""Per-kernel and per-op profiling of a prepared executable, in benchmark_model's formats.

Why here and not in the runtime: an `Executable` runs a list of zero-argument callables, one per
cluster (`Executable._calls`). Timing hooks wrap those callables from the outside, so the
per-invoke path carries no profiling branch when profiling is off, and the runtime needs no
change. (A resize re-prepares the executable and drops the hooks: install after allocation.)

Attribution rule for fused clusters: a cluster is one kernel, so only its total time is measured.
That time is split over the cluster's original TFLite ops in proportion to each op's roofline
estimate, `max(flops / 5e9, bytes / 5e9)` seconds from the op's own `cost` function (the same
model the reference backend and the greedy fusion use). Ops without a cost function, or a cluster
whose estimates are all zero, share equally. The per-op tables are therefore *estimates* inside a
kernel and exact at kernel granularity; the per-cluster tables are measured.

Outputs: benchmark_model's "Operator-wise Profiling Info" tables (stdout or CSV text), a dict for
JSON, and Chrome/Perfetto trace events (JSON trace event format, `X` complete events, µs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Roofline constants of the attribution weights (only ratios within one cluster matter).
_PEAK_FLOPS = 5e9
_PEAK_BYTES = 5e9


@dataclass
class Node:
    """One row of a profile: a kernel (cluster) or an original op inside one."""

    type: str  # node type column: op name, or "CONV_2D+ADD" for a fused cluster
    name: str  # name column: "[output tensor]:index"
    times_us: list[float] = field(default_factory=list)  # one entry per profiled run

    @property
    def first_ms(self) -> float:
        return self.times_us[0] / 1000 if self.times_us else 0.0

    @property
    def avg_ms(self) -> float:
        return float(np.mean(self.times_us)) / 1000 if self.times_us else 0.0


def op_weights(ex: Any, op_indices: list[int] | tuple[int, ...]) -> list[float]:
    """Attribution weights of the ops of one cluster (see the module docstring); sum to 1."""
    from tflite_jit import ops

    sg, infos = ex.sg, ex.infos
    est = []
    for oi in op_indices:
        op = sg.ops[oi]
        opdef = ops.get(op.name) or ex.context.custom_ops.get(op.name)
        secs = 0.0
        try:
            if opdef is not None and opdef.cost is not None:
                shapes_in = [infos[i].shape if i >= 0 else None for i in op.inputs]
                shapes_out = [infos[i].shape for i in op.outputs]
                if all(s is not None for s in shapes_out):
                    c = opdef.cost(shapes_in, shapes_out, ex.attrs[oi])
                    secs = max(c.flops / _PEAK_FLOPS, c.bytes / _PEAK_BYTES)
        except Exception:  # a cost function that cannot price this node: share equally
            secs = 0.0
        est.append(max(float(secs), 0.0))
    total = sum(est)
    if total <= 0:
        return [1.0 / len(est)] * len(est)
    return [e / total for e in est]


def boundary_bytes(ex: Any, cluster: Any) -> int:
    """Estimated bytes a kernel moves: every tensor crossing its boundary (inputs, weights
    included, read once; outputs written once). Fused intermediates cost nothing: that is the
    saving fusion buys, and why experiments report it."""
    total = 0
    for t in set(cluster.inputs) | set(cluster.outputs):
        if t < 0:
            continue
        info = ex.infos[t]
        if info.shape is None or info.dtype.kind in "SO":
            continue
        total += int(np.prod(info.shape, dtype=np.int64)) * info.dtype.itemsize
    return total


class Profiler:
    """Timing hooks around one executable's per-cluster callables.

    `install()` wraps them, `end_run()` closes one invoke's record (call it after each timed
    invoke, outside the timer), `remove()` restores the originals."""

    def __init__(self, ex: Any):
        self.ex = ex
        self._orig: list[Any] | None = None
        self._current: list[tuple[int, int, int]] = []  # (step index, start ns, end ns)
        self.runs: list[list[tuple[int, int, int]]] = []

    def install(self) -> None:
        if self._orig is not None:
            return
        self._orig = list(self.ex._calls)
        self.ex._calls[:] = [self._wrap(i, c) for i, c in enumerate(self._orig)]

    def remove(self) -> None:
        if self._orig is not None:
            self.ex._calls[:] = self._orig
            self._orig = None

    def _wrap(self, i: int, call: Any) -> Any:
        rec = self._current
        clock = time.perf_counter_ns

        def timed() -> None:
            t0 = clock()
            call()
            rec.append((i, t0, clock()))

        return timed

    def end_run(self) -> None:
        if self._current:
            self.runs.append(list(self._current))
            self._current.clear()

    # -- results ----------------------------------------------------------------------------------
    def _step_label(self, si: int) -> tuple[str, str]:
        step = self.ex.steps[si]
        names = [self.ex.sg.ops[i].name for i in step.cluster.ops]
        if getattr(step, "partition", None) is not None:  # a delegated partition: one delegate kernel
            typ = f"{step.backend}_delegate"
        else:
            typ = names[0] if len(names) == 1 else "+".join(names)
        out = step.cluster.outputs[0] if step.cluster.outputs else -1
        tname = self.ex.sg.tensors[out].name if out >= 0 else ""
        return typ, f"[{tname}]:{si}"

    def kernels(self) -> list[Node]:
        """One node per kernel (cluster), in run order, with its measured time per run."""
        nodes = [Node(*self._step_label(i)) for i in range(len(self.ex.steps))]
        for run in self.runs:
            for i, t0, t1 in run:
                nodes[i].times_us.append((t1 - t0) / 1000)
        return nodes

    def ops(self) -> list[Node]:
        """One node per original TFLite op, in op order, time attributed within its cluster."""
        sg = self.ex.sg
        kern = self.kernels()
        rows: dict[int, Node] = {}
        for si, step in enumerate(self.ex.steps):
            w = op_weights(self.ex, step.cluster.ops)
            for oi, frac in zip(step.cluster.ops, w):
                op = sg.ops[oi]
                tname = sg.tensors[op.outputs[0]].name if op.outputs and op.outputs[0] >= 0 else ""
                rows[oi] = Node(op.name, f"[{tname}]:{oi}", [t * frac for t in kern[si].times_us])
        return [rows[k] for k in sorted(rows)]

    def trace_events(self, max_runs: int = 20) -> list[dict[str, Any]]:
        """Chrome/Perfetto trace events: kernels on thread 1, attributed ops on thread 2 (laid
        end to end inside their kernel's span, in proportion to their share)."""
        sg = self.ex.sg
        events: list[dict[str, Any]] = [
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": 1, "args": {"name": "kernels (measured)"}},
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": 2,
             "args": {"name": "TFLite ops (attributed by cost estimate)"}},
        ]
        if not self.runs:
            return events
        base = self.runs[0][0][1]
        weights = [op_weights(self.ex, s.cluster.ops) for s in self.ex.steps]
        for r, run in enumerate(self.runs[:max_runs]):
            for si, t0, t1 in run:
                typ, name = self._step_label(si)
                ts, dur = (t0 - base) / 1000, (t1 - t0) / 1000
                step = self.ex.steps[si]
                events.append({"name": typ, "cat": "kernel", "ph": "X", "pid": 1, "tid": 1, "ts": ts,
                               "dur": dur, "args": {"run": r, "kernel": name, "backend": step.backend,
                                                    "ops": list(step.cluster.ops)}})
                start = ts
                for oi, frac in zip(step.cluster.ops, weights[si]):
                    events.append({"name": sg.ops[oi].name, "cat": "op", "ph": "X", "pid": 1, "tid": 2,
                                   "ts": start, "dur": dur * frac,
                                   "args": {"run": r, "op_index": oi, "share": frac}})
                    start += dur * frac
        return events

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain data, for --json."""
        def rows(nodes: list[Node]) -> list[dict[str, Any]]:
            return [{"node_type": n.type, "name": n.name, "first_ms": n.first_ms, "avg_ms": n.avg_ms,
                     "times_called": len(n.times_us) / max(len(self.runs), 1)} for n in nodes]

        return {"runs": len(self.runs), "attribution": "cluster time split by each op's roofline estimate",
                "kernels": rows(self.kernels()), "ops": rows(self.ops())}


# -- benchmark_model's table format ----------------------------------------------------------------
_RUN_HDR = ("node type", "first", "avg ms", "%", "cdf%", "mem KB", "times called", "Name")
_RUN_W = (24, 9, 9, 8, 8, 10, 9)
_SUM_HDR = ("Node type", "count", "avg ms", "avg %", "cdf %", "mem KB", "times called")
_SUM_W = (24, 9, 10, 11, 11, 10, 10)
CSV_RUN_HEADER = "node type, first, avg_ms, %, cdf%, mem KB, times called, name"
CSV_SUM_HEADER = "node type, count, avg_ms, avg %, cdf %, mem KB, times called"


def _fields(values: list[str], widths: tuple[int, ...]) -> str:
    out = "".join(f"\t{v:>{w}}" for v, w in zip(values, widths))
    return out + "".join(f"\t{v}" for v in values[len(widths):])


def _run_rows(nodes: list[Node], runs: int) -> list[list[str]]:
    total = sum(n.avg_ms for n in nodes) or 1.0
    cdf, out = 0.0, []
    for n in nodes:
        pct = 100 * n.avg_ms / total
        cdf += pct
        times = len(n.times_us) // max(runs, 1)
        out.append([n.type, f"{n.first_ms:.3f}", f"{n.avg_ms:.3f}", f"{pct:.3f}%", f"{cdf:.3f}%", "0.000",
                    str(times), n.name])
    return out


def _type_rows(nodes: list[Node], runs: int) -> list[list[str]]:
    by: dict[str, list[Node]] = {}
    for n in nodes:
        by.setdefault(n.type, []).append(n)
    total = sum(n.avg_ms for n in nodes) or 1.0
    items = sorted(by.items(), key=lambda kv: -sum(n.avg_ms for n in kv[1]))
    cdf, out = 0.0, []
    for typ, ns in items:
        ms = sum(n.avg_ms for n in ns)
        pct = 100 * ms / total
        cdf += pct
        called = sum(len(n.times_us) for n in ns) // max(runs, 1)
        out.append([typ, str(len(ns)), f"{ms:.3f}", f"{pct:.3f}%", f"{cdf:.3f}%", "0.000", str(called)])
    return out


def _tables(nodes: list[Node], runs: int, csv: bool, top: int = 10) -> list[str]:
    run_rows = _run_rows(nodes, runs)
    top_rows = _run_rows(sorted(nodes, key=lambda n: -n.avg_ms), runs)[:top]  # cdf in this order
    type_rows = _type_rows(nodes, runs)
    lines: list[str] = []
    if csv:
        lines += ["Run Order", CSV_RUN_HEADER, *(", ".join(_csv(v) for v in r) for r in run_rows), ""]
        lines += ["Top by Computation Time", CSV_RUN_HEADER,
                  *(", ".join(_csv(v) for v in r) for r in top_rows), ""]
        lines += [f"Number of nodes executed: {len(nodes)}", "Summary by node type", CSV_SUM_HEADER,
                  *(", ".join(_csv(v) for v in r) for r in type_rows), ""]
        return lines
    hdr = _fields([f"[{h}]" for h in _RUN_HDR], _RUN_W)
    bar = "=" * 30
    lines += [f"{bar} Run Order {bar}", hdr, *(_fields(r, _RUN_W) for r in run_rows), ""]
    lines += [f"{bar} Top by Computation Time {bar}", hdr, *(_fields(r, _RUN_W) for r in top_rows), ""]
    lines += [f"Number of nodes executed: {len(nodes)}", f"{bar} Summary by node type {bar}",
              _fields([f"[{h}]" for h in _SUM_HDR], _SUM_W), *(_fields(r, _SUM_W) for r in type_rows), ""]
    return lines


def _csv(v: str) -> str:
    return f'"{v}"' if "," in v or '"' in v else v


def report(profiler: Profiler, init_us: float, run_stats_line: str, csv: bool = False) -> str:
    """The text benchmark_model prints with --enable_op_profiling=true: init tables, then the
    kernel tables (each fused cluster is one node, like a delegate kernel), then the original
    TFLite ops under `Delegate internal:` with their attributed times."""
    init = Node("AllocateTensors", "[AllocateTensors]:0", [init_us])
    kern, ops_ = profiler.kernels(), profiler.ops()
    runs = len(profiler.runs)
    lines = ["Profiling Info for Benchmark Initialization:", *_tables([init], 1, csv),
             "Operator-wise Profiling Info for Regular Benchmark Runs:", *_tables(kern, runs, csv),
             f"Timings (microseconds): {run_stats_line}", "Memory (bytes): count=0",
             f"{len(kern)} nodes observed", "",
             "Delegate internal:", *_tables(ops_, runs, csv),
             f"{len(ops_)} nodes observed "
             "(times inside a fused kernel are attributed by each op's cost estimate)", ""]
    return "\n".join(lines) + "\n"
