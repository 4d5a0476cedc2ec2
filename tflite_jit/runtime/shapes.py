"""Shape inference for concrete input shapes, with the small amount of value propagation that
shape arithmetic needs (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE chains of converter output).

Tensors whose shape depends on run-time data are marked dynamic (shape None); the executable
sizes them when they are produced, never guessing a buffer size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit import ops
from tflite_jit.ir.model import Subgraph
from tflite_jit.ir.validate import MAX_TENSOR_BYTES
from tflite_jit.ops.base import Dynamic, OpError

_MAX_DIM = 2**31 - 1  # TFLite stores dims as int32; detail dicts report them as np.int32
_FOLD_LIMIT = 4096  # small values (shape arithmetic) always fold
# Bigger ones fold when the result is no larger (in elements) than the constants it is computed
# from: weight transforms (DEQUANTIZE of float16 / int8 weights, DENSIFY, TRANSPOSE, CAST,
# RESHAPE) then run once here and the kernels see constant weights they can pack, while an op
# that would materialise a huge tensor from a small one (TILE, BROADCAST_TO, FILL) still runs
# at invoke. runtime.folding drops the folded ops from the run list.


@dataclass
class TensorInfo:
    shape: tuple[int, ...] | None  # None: only known at run time
    dtype: np.dtype
    value: np.ndarray | None = None  # known at plan time (constant or folded)


class PrepareError(RuntimeError):
    """A node failed to prepare; message ends like LiteRT's 'Node number N (OP) failed to prepare.'"""


def prepare_message(msg: str, index: int, name: str) -> str:
    return f"{msg}\nNode number {index} ({name}) failed to prepare.\n"


def unexpected_message(e: Exception, op: Any) -> str:
    """Text for an exception other than OpError escaping an op's own code. Model files are
    untrusted: a damaged node (wrong arity, absurd options) must surface as LiteRT's prepare /
    invoke RuntimeError naming the node, never as an IndexError or TypeError from inside an op."""
    return (f"{op.name}: this node ({len(op.inputs)} inputs, {len(op.outputs)} outputs) cannot be "
            f"handled: {type(e).__name__}: {e}")


def _densify(t: Any, tid: int) -> np.ndarray:
    """The dense value of a sparse constant. LiteRT's kernels (FULLY_CONNECTED, DENSIFY) read
    sparse weights directly; every op here sees the decoded array instead."""
    from tflite_jit.ops.sparse import dense_value

    try:
        v = dense_value(t)
    except OpError as e:
        raise PrepareError(f"Tensor {tid} ('{t.name}'): {e}") from None
    v.setflags(write=False)
    return v


def infer_subgraph(sg: Subgraph, input_shapes: dict[int, tuple[int, ...]],
                   attrs: list[Any], opdefs: list[ops.OpDef]) -> list[TensorInfo]:
    infos: list[TensorInfo] = []
    for tid, t in enumerate(sg.tensors):
        if t.data is not None and t.sparsity is None:
            infos.append(TensorInfo(tuple(t.data.shape), np.dtype(t.dtype), t.data))
        elif t.data is not None:  # a sparse constant (pruned weights): decoded once, here
            infos.append(TensorInfo(tuple(t.shape), np.dtype(t.dtype), _densify(t, tid)))
        else:
            shape = input_shapes.get(tid, t.shape)
            infos.append(TensorInfo(tuple(shape), np.dtype(t.dtype)))
    for oi, (op, opdef, a) in enumerate(zip(sg.ops, opdefs, attrs)):
        ins = [infos[i] if i >= 0 else None for i in op.inputs]
        if any(i is not None and i.shape is None for i in ins):
            results = None
        else:
            ctx = ops.InferCtx(
                op_name=op.name, attrs=a,
                shapes=[None if i is None else i.shape for i in ins],
                dtypes=[None if i is None else i.dtype for i in ins],
                values=[None if i is None else i.value for i in ins],
                tensor_names=[sg.tensors[i].name if i >= 0 else "(omitted)" for i in op.inputs])
            try:
                results = opdef.infer(ctx)
            except Dynamic:
                results = None
            except OpError as e:
                raise PrepareError(prepare_message(str(e), oi, op.name)) from None
            except Exception as e:  # the rule tripped over a node it cannot expect (damaged model)
                raise PrepareError(prepare_message(unexpected_message(e, op), oi, op.name)) from e
        if results is not None and len(results) != len(op.outputs):
            raise PrepareError(prepare_message(
                f"{op.name} produces {len(results)} outputs but the node lists {len(op.outputs)}",
                oi, op.name))
        for j, t in enumerate(op.outputs):
            declared = np.dtype(sg.tensors[t].dtype)
            if results is None:
                infos[t] = TensorInfo(None, declared)
                continue
            shape, dtype = results[j]
            if np.dtype(dtype) != declared:
                raise PrepareError(prepare_message(
                    f"{op.name}: output tensor {t} ('{sg.tensors[t].name}') is declared "
                    f"{declared.name} but the op produces {np.dtype(dtype).name} for these inputs",
                    oi, op.name))
            shape = tuple(int(d) for d in shape)
            nbytes = declared.itemsize * int(np.prod(shape, dtype=object))
            if any(d < 0 or d > _MAX_DIM for d in shape) or nbytes > MAX_TENSOR_BYTES:
                raise PrepareError(prepare_message(
                    f"{op.name}: output tensor {t} ('{sg.tensors[t].name}') would have shape "
                    f"{list(shape)} ({nbytes} bytes): a dimension negative or over {_MAX_DIM} (TFLite "
                    f"dims are int32), or over the {MAX_TENSOR_BYTES}-byte limit", oi, op.name))
            infos[t] = TensorInfo(shape, declared)
        _fold(op, opdef, a, ins, infos)
    return infos


def _fold(op: Any, opdef: ops.OpDef, a: Any, ins: list[TensorInfo | None], infos: list[TensorInfo]) -> None:
    """Compute an op's outputs at plan time when every input value is known: shape arithmetic,
    and constant subgraphs no bigger than their constants (see _FOLD_LIMIT). Ops with state or
    side effects (control flow, variables, custom ops) say `foldable=False`."""
    if not opdef.foldable:
        return
    if op.name == "SHAPE" and op.outputs and ins and ins[0] is not None and ins[0].shape is not None:
        out = infos[op.outputs[0]]
        out.value = np.asarray(ins[0].shape, dtype=out.dtype)
        out.value.setflags(write=False)
        return
    if any(i is not None and i.value is None for i in ins):
        return
    outs = [infos[t] for t in op.outputs]
    if any(o.shape is None for o in outs):
        return
    out_n = sum(int(np.prod(o.shape, dtype=np.int64)) for o in outs)
    if out_n > max(_FOLD_LIMIT, sum(int(i.value.size) for i in ins if i is not None)):
        return
    try:
        values = opdef.reference([None if i is None else i.value for i in ins], a)
    except Exception:  # folding is an optimisation; the op reports errors when it runs
        return
    for o, v in zip(outs, values):
        v = np.asarray(v)
        if v.shape == o.shape and v.dtype == o.dtype:
            v.setflags(write=False)
            o.value = v
