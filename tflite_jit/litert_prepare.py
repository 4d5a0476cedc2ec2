"""LiteRT's view of a subgraph after AllocateTensors, which the detail dicts reproduce.

LiteRT prepares nodes in order and stops at the first whose output shape depends on a value it
does not have at Prepare (or that outputs strings); until the next invoke that node's outputs
and every later node's keep their old shape and have no data. We infer more at plan time (shape
arithmetic folds), so `unprepared` replays what LiteRT knows at Prepare. The op tables were
measured on ai_edge_litert 2.3 and are pinned op by op by tests/test_detail_parity.py.
"""

from __future__ import annotations

from typing import Any

from tflite_jit.ops.base import Dynamic, InferCtx
from tflite_jit.runtime.executable import Executable

# Ops whose LiteRT kernel computes the output at Prepare ("persistent" tensors) when every input
# is a constant or persistent itself; SHAPE and RANK always do. Measured on ai_edge_litert 2.3:
# ADD, SUB, DIV, FLOOR_DIV, PACK, CAST, SLICE, SQUEEZE, EXPAND_DIMS, SUM, ... wait for invoke.
_AT_PREPARE_IF_KNOWN = frozenset({"MUL", "RESHAPE", "STRIDED_SLICE", "GATHER", "CONCATENATION", "TILE",
                                  "BROADCAST_ARGS", "REDUCE_PROD", "RANGE"})
_AT_PREPARE = frozenset({"SHAPE", "RANK"})
# Shape inputs a kernel reads at Prepare only when they are constants (others accept persistent).
_CONSTANT_ONLY = {"TRANSPOSE_CONV": (0,)}


def unprepared(ex: Executable) -> list[int]:
    """The tensors LiteRT has not sized after AllocateTensors: it prepares nodes in order and
    stops at the first whose output is dynamic (its shape depends on a value only known at run
    time, or it is a string) until invoke. That output keeps the shape it had (the file's
    placeholder, or the last run's), and so does every later node's output, even where a
    shape could have been known. We infer more (shape arithmetic folds at plan time), so this
    replays LiteRT's view: which values it knows at Prepare, and which node stops it."""
    sg, infos = ex.sg, ex.infos
    known = {tid for tid, t in enumerate(sg.tensors) if t.data is not None}
    for oi, op in enumerate(sg.ops):
        held = [t for t in op.outputs if infos[t].shape is None]
        if not held and _needs_run_time_values(ex, oi, known):
            held = list(op.outputs)
        if held or any(infos[t].dtype.kind in "SO" for t in op.outputs):
            return held + [t for later in sg.ops[oi + 1:] for t in later.outputs]
        ins = [i for i in op.inputs if i >= 0]
        if op.name in _AT_PREPARE or (op.name in _AT_PREPARE_IF_KNOWN and all(i in known for i in ins)):
            known.update(op.outputs)
    return []


def kernel_names(sg: Any, skip: Any = ()) -> dict[int, str]:
    """Tensor names LiteRT's kernels set when they prepare: DENSIFY names its output
    'Densify_output' (and the name stays). `skip`: tensors of nodes not prepared yet."""
    return {t: "Densify_output" for op in sg.ops if op.name == "DENSIFY" for t in op.outputs if t not in skip}


def _needs_run_time_values(ex: Executable, oi: int, known: set[int]) -> bool:
    """Whether node `oi`'s shape rule fails (Dynamic) without the values we folded but LiteRT
    does not have at Prepare."""
    op, infos = ex.sg.ops[oi], ex.infos
    const_only = _CONSTANT_ONLY.get(op.name, ())
    hidden = {i for j, i in enumerate(op.inputs) if i >= 0 and infos[i].value is not None
              and (i not in known or (j in const_only and ex.sg.tensors[i].data is None))}
    if not hidden:
        return False
    ctx = InferCtx(op_name=op.name, attrs=ex.attrs[oi],
                   shapes=[None if i < 0 else infos[i].shape for i in op.inputs],
                   dtypes=[None if i < 0 else infos[i].dtype for i in op.inputs],
                   values=[None if i < 0 or i in hidden else infos[i].value for i in op.inputs],
                   tensor_names=[ex.sg.tensors[i].name if i >= 0 else "(omitted)" for i in op.inputs])
    try:
        ex.opdefs[oi].infer(ctx)
    except Dynamic:
        return True
    except Exception:  # a rule tripping over a value it only checks: LiteRT sizes such a node
        return False
    return False
