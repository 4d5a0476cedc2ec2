"""Run a whole subgraph with one device backend and no planner: the fusion strategy's clusters,
maximal runs of consecutive clusters the backend supports as one partition each (a contiguous
run of a topological order is convex), everything else on the reference backend.

This is what the OpenCL benchmark and tests use to measure and check device residency directly;
the interpreter reaches a device backend through the planner instead. It lives in the runtime
because it plans (fusion, shapes) like the runtime does; backends never import upwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tflite_jit.backends.base import Backend, Cluster, CompileEnv, Partition
from tflite_jit.backends.reference.backend import ReferenceBackend
from tflite_jit.fusion import get_strategy
from tflite_jit.ir.model import Model
from tflite_jit.runtime.executable import resolve_ops
from tflite_jit.runtime.shapes import infer_subgraph


def env_of(model: Model, si: int = 0, input_shapes: dict[int, tuple[int, ...]] | None = None) -> CompileEnv:
    sg = model.subgraphs[si]
    opdefs, attrs = resolve_ops(model, si)
    shapes = input_shapes or {i: tuple(sg.tensors[i].shape) for i in sg.inputs}
    return CompileEnv(sg, attrs, infer_subgraph(sg, shapes, attrs, opdefs))


def single_cluster(sg: Any, oi: int) -> Cluster:
    op = sg.ops[oi]
    return Cluster((oi,), tuple(op.inputs), tuple(op.outputs))


class GraphKernel:
    """`run(inputs)` -> graph outputs. `stats`: partitions, ops on the device, kernels per run;
    `transfers()`: host<->device copies so far."""

    def __init__(self, model: Model, backend: Backend | None, fusion: str = "epilogue", si: int = 0):
        env = env_of(model, si)
        sg = self.sg = env.subgraph
        ref = ReferenceBackend()
        steps: list[tuple[bool, Cluster]] = []
        for c in get_strategy(fusion)(sg, env):
            ok = backend is not None and all(backend.supports(sg.ops[i], env)[0] for i in c.ops)
            if ok and len(c.ops) > 1:
                try:
                    backend.compile(c, env)
                except Exception:  # not fusable on this backend: its ops one by one
                    steps.extend((True, single_cluster(sg, i)) for i in c.ops)
                    continue
            steps.append((ok, c))
        runs: list[tuple[bool, list[Cluster]]] = []
        for ok, c in steps:
            if runs and runs[-1][0] and ok:
                runs[-1][1].append(c)
            else:
                runs.append((ok, [c]))
        self.consts = {i: t.data for i, t in enumerate(sg.tensors) if t.data is not None}
        self.plan: list[tuple[Any, tuple[int, ...], tuple[int, ...]]] = []
        self.device_kernels: list[Any] = []
        self.stats = {"partitions": 0, "opencl_ops": 0, "kernels": 0}
        for ri, (ok, clusters) in enumerate(runs):
            if not ok:
                for c in clusters:
                    self.plan.append((ref.compile(c, env), c.inputs, c.outputs))
                continue
            produced = {t for c in clusters for oi in c.ops for t in sg.ops[oi].outputs}
            p_in: list[int] = []
            for c in clusters:
                p_in += [t for t in c.inputs if t >= 0 and t not in produced and t not in p_in]
            later = {t for _, cs in runs[ri + 1:] for c in cs for t in c.inputs} | set(sg.outputs)
            p_out = tuple(t for c in clusters for t in c.outputs if t in later)
            k = backend.compile_partition(Partition(backend.name, tuple(clusters), tuple(p_in), p_out), env)
            self.plan.append((k, tuple(p_in), p_out))
            self.device_kernels.append(k)
            self.stats["partitions"] += 1
            self.stats["opencl_ops"] += sum(len(c.ops) for c in clusters)
            self.stats["kernels"] += len(getattr(k, "launches", ()))

    def transfers(self) -> int:
        return sum(getattr(k, "transfers", 0) for k in self.device_kernels)

    def __call__(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        values: dict[int, Any] = dict(self.consts)
        values.update(zip(self.sg.inputs, inputs))
        for kernel, ins, outs in self.plan:
            values.update(zip(outs, kernel([values.get(t) if t >= 0 else None for t in ins])))
        return [values[t] for t in self.sg.outputs]
