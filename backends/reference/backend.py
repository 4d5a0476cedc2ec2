"""The NumPy reference backend: runs each op's reference kernel from ops/.

It is the numerical oracle for every other backend and the complete fallback, so it claims every
op that has a definition and does no fusion of its own (a cluster runs its ops in order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tflite_jit.backends.base import Backend, Cluster, CompileEnv, Kernel, roofline_seconds
from tflite_jit.ir.model import Op


class ReferenceBackend(Backend):
    name = "reference"

    def supports(self, op: Op, env: CompileEnv) -> tuple[bool, str]:
        if env.opdef(op.name) is None:
            return False, f"no definition of {op.name} in tflite_jit.ops"
        return True, ""

    def cost(self, cluster: Cluster, env: CompileEnv) -> float:
        return roofline_seconds(cluster, env)

    def compile(self, cluster: Cluster, env: CompileEnv) -> Kernel:
        sg = env.subgraph
        steps = []
        for oi in cluster.ops:
            op = sg.ops[oi]
            steps.append((env.opdef(op.name).reference, env.attrs[oi], op.inputs, op.outputs))
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
