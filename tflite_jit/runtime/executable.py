"""One subgraph made runnable: ops resolved, shapes inferred, kernels compiled, buffers allocated.

`prepare()` is everything LiteRT does in AllocateTensors (and may raise its prepare errors);
`run()` is Invoke: the kernels in order over the tensor buffers. Buffers of graph inputs,
outputs and variables keep their identity across runs so that `Interpreter.tensor()` views stay
live, as they do in LiteRT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit import ops
from tflite_jit.backends.base import Backend, Cluster, CompileEnv
from tflite_jit.fusion import FusionStrategy, get_strategy
from tflite_jit.ir.model import Model
from tflite_jit.ops.base import OpError
from tflite_jit.runtime.shapes import (
    PrepareError,
    TensorInfo,
    infer_subgraph,
    prepare_message,
    unexpected_message,
)

# LiteRT 2.x's wording, then the older TF wording (INTERPRETER_API.md §4) so that both match.
_FLEX_MSG = ("Select TensorFlow op(s), included in the given model, is(are) not supported by this "
             "interpreter. Make sure you apply/link the Flex delegate before inference. See instructions: "
             "https://www.tensorflow.org/lite/guide/ops_select\n"
             "Regular TensorFlow ops are not supported by this interpreter (tflite_jit has no Flex delegate).")


@dataclass
class Step:
    cluster: Cluster
    kernel: Any
    backend: str
    label: str  # "Node number 3 (CONV_2D)" or a range for fused clusters


def resolve_ops(model: Model, si: int) -> tuple[list[ops.OpDef], list[Any]]:
    """Find each op's definition and parse its options; LiteRT's unresolved-op errors otherwise."""
    sg = model.subgraphs[si]
    opdefs, attrs = [], []
    for oi, op in enumerate(sg.ops):
        opdef = ops.get(op.name)
        if opdef is None:
            if op.is_custom and op.name.startswith("Flex"):
                msg = _FLEX_MSG
            elif op.is_custom:
                msg = (f"Encountered unresolved custom op: {op.name}.\nSee instructions: "
                       "https://www.tensorflow.org/lite/guide/ops_custom")
            else:
                msg = (f"Didn't find op for builtin opcode '{op.name}' version '{op.version}'. "
                       f"tflite_jit does not implement {op.name} yet (see docs/ops.md for the supported "
                       "ops); run this model with ai_edge_litert meanwhile")
            raise PrepareError(prepare_message(msg, oi, op.name))
        try:
            a = opdef.parse(op.options)
            if opdef.bind is not None:
                a = opdef.bind(a, [sg.tensors[i] if i >= 0 else None for i in op.inputs],
                               [sg.tensors[i] for i in op.outputs])
        except OpError as e:
            raise PrepareError(prepare_message(str(e), oi, op.name)) from None
        except Exception as e:  # options of a damaged model the parser cannot expect
            raise PrepareError(prepare_message(unexpected_message(e, op), oi, op.name)) from e
        opdefs.append(opdef)
        attrs.append(a)
    return opdefs, attrs


class Executable:
    def __init__(self, model: Model, subgraph_index: int, backend: Backend, *,
                 fusion: str | FusionStrategy = "none", num_threads: int = 1):
        self.model = model
        self.si = subgraph_index
        self.sg = model.subgraphs[subgraph_index]
        self.backend = backend
        self.fusion = get_strategy(fusion)
        self.num_threads = num_threads
        self.opdefs, self.attrs = resolve_ops(model, subgraph_index)
        n = len(self.sg.tensors)
        self.buffers: list[np.ndarray | None] = [None] * n
        self.infos: list[TensorInfo] = []
        self.steps: list[Step] = []
        self._kernel_cache: dict[tuple, Any] = {}
        self.variables = [i for i, t in enumerate(self.sg.tensors) if t.is_variable]

    # -- AllocateTensors -------------------------------------------------------------------------
    def prepare(self, input_shapes: dict[int, tuple[int, ...]]) -> None:
        infos = infer_subgraph(self.sg, input_shapes, self.attrs, self.opdefs)
        env = CompileEnv(self.sg, self.attrs, infos, self.num_threads)
        for oi, op in enumerate(self.sg.ops):
            ok, why = self.backend.supports(op, env)
            if not ok:
                raise PrepareError(prepare_message(why, oi, op.name))
        steps = []
        for cluster in self.fusion(self.sg, env):
            key = (cluster, tuple(infos[t].shape for t in cluster.inputs if t >= 0))
            kernel = self._kernel_cache.get(key)
            if kernel is None:
                kernel = self.backend.compile(cluster, env)
                self._kernel_cache[key] = kernel
            first, last = cluster.ops[0], cluster.ops[-1]
            label = (f"Node number {first} ({self.sg.ops[first].name})" if first == last
                     else f"Nodes {first}..{last} ({self.sg.ops[first].name}..{self.sg.ops[last].name})")
            steps.append(Step(cluster, kernel, self.backend.name, label))
        old = self.buffers
        buffers: list[np.ndarray | None] = [None] * len(infos)
        for tid, info in enumerate(infos):
            t = self.sg.tensors[tid]
            if t.data is not None and t.sparsity is None:
                buffers[tid] = t.data
            elif info.shape is not None:
                prev = old[tid]
                if prev is not None and prev.shape == info.shape and prev.dtype == info.dtype:
                    buffers[tid] = prev  # keep identity: live tensor() views and variable state
                else:
                    buffers[tid] = np.zeros(info.shape, info.dtype)
        self.infos, self.steps, self.buffers = infos, steps, buffers

    def reset_variables(self) -> None:
        for tid in self.variables:
            b = self.buffers[tid]
            if b is not None:
                b[...] = 0

    # -- Invoke ----------------------------------------------------------------------------------
    def run(self) -> None:
        buffers = self.buffers
        for step in self.steps:
            c = step.cluster
            args = [buffers[i] if i >= 0 else None for i in c.inputs]
            try:
                results = step.kernel(args)
            except OpError as e:
                raise RuntimeError(f"{e}\n{step.label} failed to invoke.\n") from None
            except Exception as e:  # a kernel tripping over a damaged node: still LiteRT's error type
                op = self.sg.ops[c.ops[0]]
                raise RuntimeError(f"{unexpected_message(e, op)}\n{step.label} failed to invoke.\n") from e
            for t, r in zip(c.outputs, results):
                dst = buffers[t]
                if dst is not None and dst.shape == r.shape and dst.dtype == r.dtype:
                    np.copyto(dst, r)
                    continue
                planned = self.infos[t]
                if planned.shape is not None or r.dtype != planned.dtype:
                    raise RuntimeError(
                        f"{step.label} produced tensor {t} ('{self.sg.tensors[t].name}') with shape "
                        f"{list(r.shape)} {r.dtype}, planned {planned.shape} {planned.dtype}: internal error, "
                        "please report it with the model\n")
                buffers[t] = np.array(r, copy=True)  # dynamic: sized when produced
