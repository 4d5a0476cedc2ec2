"""The NumPy reference backend: runs each op's reference kernel from ops/.

It is the numerical oracle for every other backend and the complete fallback, so it claims every
op that has a definition and does no fusion of its own (a cluster runs its ops in order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tflite_jit import ops
from tflite_jit.backends.base import Backend, Cluster, CompileEnv, Kernel
from tflite_jit.ir.model import Op

# Rough machine constants for the roofline estimate; calibrated per machine in a later issue.
_FLOPS_PER_S = 5e9
_BYTES_PER_S = 5e9
_CALL_OVERHEAD_S = 5e-6


def _opdef(name: str, env: CompileEnv) -> ops.OpDef | None:
    """The interpreter's own custom ops (runtime.executable.PlanEnv.extra_ops) first."""
    return getattr(env, "extra_ops", {}).get(name) or ops.get(name)


class ReferenceBackend(Backend):
    name = "reference"

    def supports(self, op: Op, env: CompileEnv) -> tuple[bool, str]:
        if _opdef(op.name, env) is None:
            return False, f"no definition of {op.name} in tflite_jit.ops"
        return True, ""

    def cost(self, cluster: Cluster, env: CompileEnv) -> float:
        total = 0.0
        for oi in cluster.ops:
            op = env.subgraph.ops[oi]
            opdef = _opdef(op.name, env)
            if opdef is None or opdef.cost is None:
                total += _CALL_OVERHEAD_S
                continue
            shapes_in = [env.infos[i].shape if i >= 0 else None for i in op.inputs]
            shapes_out = [env.infos[i].shape for i in op.outputs]
            if any(s is None for s in shapes_out):
                total += _CALL_OVERHEAD_S
                continue
            c = opdef.cost(shapes_in, shapes_out, env.attrs[oi])
            total += _CALL_OVERHEAD_S + max(c.flops / _FLOPS_PER_S, c.bytes / _BYTES_PER_S)
        return total

    def compile(self, cluster: Cluster, env: CompileEnv) -> Kernel:
        sg = env.subgraph
        steps = []
        for oi in cluster.ops:
            op = sg.ops[oi]
            steps.append((_opdef(op.name, env).reference, env.attrs[oi], op.inputs, op.outputs))
        if len(steps) == 1:
            ref, a, _, _ = steps[0]
            return lambda inputs: ref(inputs, a)
        pos = {t: i for i, t in enumerate(cluster.inputs)}

        def run(inputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
            vals = {t: inputs[i] for t, i in pos.items()}
            for ref, a, ins, outs in steps:
                for t, v in zip(outs, ref([vals[i] if i >= 0 else None for i in ins], a)):
                    vals[t] = v
            return [vals[t] for t in cluster.outputs]

        return run
