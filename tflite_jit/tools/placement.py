"""Where each op of a model would run, without paying for machine code.

`Interpreter.allocate_tensors()` decides placement (`Backend.supports`, then `Backend.compile`
with fallbacks) and then specialises every kernel for its buffers, which for numba_cpu is the
LLVM compilation that dominates a first run (tens of seconds for a real model). This module asks
the same two questions and stops before the specialisation: an op is placed on the preferred
backend when that backend supports it and `compile` of the op alone succeeds (for numba_cpu:
the request is built and the kernel module generated and imported; Numba compiles lazily, at
bind time). Fused clusters are not tried: the runtime splits a cluster that fails into single
ops, so the single op decides where an op finally runs.

What this cannot see is a kernel that generates but fails in Numba's type inference or LLVM;
`benchmarks/suite` compares this answer with the real plan of every suite model to keep that
gap measured (it was empty when the suite was written).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from tflite_jit import Interpreter
from tflite_jit.backends import registry
from tflite_jit.fusion import single_cluster
from tflite_jit.runtime.executable import PlanEnv, is_alias
from tflite_jit.runtime.folding import FOLDED

#: what the plan calls an op that became a view of its input (no step, no kernel)
ALIAS = "alias (no copy)"


def _seeded_inputs(it: Interpreter) -> None:
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        dt = np.dtype(d["dtype"])
        x = (rng.integers(0, 10, d["shape"]) if dt.kind in "iub" else rng.uniform(-1, 1, d["shape"]))
        it.set_tensor(d["index"], x.astype(dt))


def constant_tensors(sg: Any, opdefs: list[Any]) -> set[int]:
    """Tensors whose values do not depend on the inputs: constants and the outputs of foldable
    ops fed only by such tensors (a DENSIFY -> DEQUANTIZE weight chain, a SHAPE of a static shape)."""
    const = {i for i, t in enumerate(sg.tensors) if t.data is not None}
    for op, opdef in zip(sg.ops, opdefs):
        if getattr(opdef, "foldable", True) and all(t < 0 or t in const for t in op.inputs):
            const.update(t for t in op.outputs if t >= 0)
    return const


def variant(sg: Any, op: Any, infos: list[Any], const: set[int] | frozenset[int] = frozenset()) -> str:
    """Which form of the op a node is, as kernels are written: 'float', 'int8' (8-bit
    activations), 'int16' (16-bit activations), 'hybrid' (8-bit constant weights, float
    activations: dynamic-range quantization), 'constant' (every input constant, or the
    outputs' values already computed at plan time: a fold, not a kernel) or 'other' (integer/bool data ops)."""
    ins = [t for t in op.inputs if t >= 0]
    data = [t for t in ins if sg.tensors[t].data is None and t not in const]
    dts = {np.dtype(infos[t].dtype) for t in (*data, *op.outputs) if t >= 0 and infos[t].dtype is not None}
    consts = {np.dtype(infos[t].dtype) for t in ins if sg.tensors[t].data is not None and infos[t].dtype is not None}
    if not data or all(infos[t].value is not None for t in op.outputs if t >= 0):
        return "constant"  # every input constant, or the value already known at plan time
    if np.dtype(np.int16) in dts:
        return "int16"
    if dts & {np.dtype(np.int8), np.dtype(np.uint8)}:
        return "int8"
    if np.dtype(np.float32) in dts:
        return "hybrid" if consts & {np.dtype(np.int8), np.dtype(np.uint8)} and op.name != "DEQUANTIZE" else "float"
    return "other"


def placement(content: bytes, backend: str = "numba") -> list[dict[str, Any]]:
    """One row per op of every planned subgraph: subgraph, index, op, backend, reason.

    Shapes come from a reference-backend allocation (no compilation); a model with control flow
    is invoked once on seeded inputs so that its called subgraphs are prepared for real shapes.
    """
    it = Interpreter(model_content=content, backend="reference", fusion="none")
    it.allocate_tensors()
    execs = {0: it._interpreter.execs[0]}
    if len(it._interpreter.execs[0].model.subgraphs) > 1:
        _seeded_inputs(it)
        it.invoke()
        execs.update(it._interpreter.context.prepared_executables())
    chain = registry.host_chain(backend)
    rows = []
    for si, ex in execs.items():
        env = PlanEnv(ex.sg, ex.attrs, ex.infos, 1, extra_ops=ex.context.custom_ops)
        own = set(ex.sg.inputs) | set(ex.sg.outputs) | set(ex.variables)
        const = constant_tensors(ex.sg, ex.opdefs)
        folded = getattr(ex, "folded", frozenset())
        for oi, op in enumerate(ex.sg.ops):
            if oi in folded:  # evaluated once at plan time (runtime/folding.py): never a step
                rows.append({"subgraph": si, "index": oi, "op": op.name, "backend": FOLDED, "reason": "",
                             "variant": "constant"})
                continue
            if is_alias(ex.sg, oi, ex.infos, own):
                rows.append({"subgraph": si, "index": oi, "op": op.name, "backend": ALIAS, "reason": "",
                             "variant": variant(ex.sg, op, ex.infos, const)})
                continue
            placed, why = chain[-1].name, ""
            for b in chain[:-1]:
                try:
                    ok, reason = b.supports(op, env)
                    if ok:
                        b.compile(single_cluster(ex.sg, oi), env)
                except Exception as e:  # a failing check or generator is a "no" with its reason
                    ok, reason = False, f"{type(e).__name__}: {e}"
                if ok:
                    placed = b.name
                    break
                why = why or f"{b.name}: {reason}"
            rows.append({"subgraph": si, "index": oi, "op": op.name, "backend": placed, "reason": why,
                         "variant": variant(ex.sg, op, ex.infos, const)})
    return rows


def reference_ops(rows: list[dict[str, Any]], fallback: str = "reference") -> Counter[str]:
    """Op name -> how many of the rows run on the fallback backend."""
    return Counter(r["op"] for r in rows if r["backend"] == fallback)
