"""Cluster -> KernelRequest for the OpenCL backend: a root op (conv, pool, reduction...) whose
result is Var(0), or a pure elementwise LOOP, plus the epilogue composed from the tail ops'
shared expression trees (ops/expr.py).

It follows numba_cpu.backend.request_for and reuses that backend's request dataclasses
(numba_cpu/spec.py, which imports neither Numba nor generated code); it differs in the set of
roots and in keeping the tensor ids of every argument, which a partition needs to wire kernels
to device buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tflite_jit import ops
from tflite_jit.backends.base import Cluster, CompileEnv
from tflite_jit.backends.numba_cpu.spec import KernelRequest, Output, TensorArg
from tflite_jit.ir.model import Op
from tflite_jit.ops import expr as E
from tflite_jit.ops.base import PatternKind

#: ops with an OpenCL root kernel (kernels/*.py registers a generator for each)
ROOTS = frozenset(("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL",
                   "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "SUM", "SOFTMAX", "PAD", "TRANSPOSE"))
#: ops that only relabel their input's bytes: a device buffer alias, no kernel
VIEWS = frozenset(("RESHAPE", "SQUEEZE", "EXPAND_DIMS"))
#: the written-out size past which a fused expression splits the cluster (as numba_cpu)
MAX_EXPR_TREE = 4096


class Unsupported(Exception):
    """This backend cannot compile the cluster; the runtime splits it or falls back."""


def is_loop_op(op: Op) -> bool:
    opdef = ops.get(op.name)
    return (opdef is not None and opdef.expr is not None
            and opdef.kind in (PatternKind.ELEMWISE, PatternKind.BROADCAST))


@dataclass
class Request:
    """A KernelRequest plus the tensor ids behind its arguments."""

    req: KernelRequest
    input_ids: list[int]  # root inputs, -1 for omitted ones (LOOP: empty)
    extra_ids: list[int]
    output_ids: list[int]


def request_for(cluster: Cluster, env: CompileEnv) -> Request:
    sg, infos = env.subgraph, env.infos
    ops_ = [sg.ops[i] for i in cluster.ops]
    for oi, op in zip(cluster.ops, ops_):
        for t in (*op.inputs, *op.outputs):
            if t >= 0 and infos[t].shape is None:
                raise Unsupported(f"{op.name}: dynamic shape (only known at run time)")
        if isinstance(env.attrs[oi], ops.Quantized):
            raise Unsupported(f"quantized {op.name}: int8 not supported by the OpenCL backend")
    first_is_root = not is_loop_op(ops_[0])
    if first_is_root and ops_[0].name not in ROOTS:
        raise Unsupported(f"no OpenCL kernel for {ops_[0].name}")
    root_op = ops_[0] if first_is_root else None
    tail = list(zip(cluster.ops[1:], ops_[1:])) if first_is_root else list(zip(cluster.ops, ops_))
    if root_op is not None:
        if len(root_op.outputs) != 1:
            raise Unsupported(f"{root_op.name}: multi-output roots are not fused")
        iter_shape = infos[root_op.outputs[0]].shape
    else:
        iter_shape = infos[cluster.outputs[0]].shape if cluster.outputs else None
    if iter_shape is None:
        raise Unsupported("cluster without outputs")
    values: dict[int, E.Expr] = {}
    extras: list[int] = []
    if root_op is not None:
        values[root_op.outputs[0]] = E.Var(0)
    for oi, op in tail:
        if not is_loop_op(op):
            raise Unsupported(f"{op.name} cannot be fused as an elementwise epilogue")
        out = op.outputs[0]
        if infos[out].shape != iter_shape:
            raise Unsupported(f"{op.name}: output shape {infos[out].shape} differs from the "
                              f"cluster's iteration shape {iter_shape}")
        mapping = {}
        for j, t in enumerate(op.inputs):
            if t in values:
                mapping[j] = values[t]
            else:
                if t not in extras:
                    extras.append(t)
                mapping[j] = E.Var(1 + extras.index(t))
        values[out] = E.substitute(ops.get(op.name).expr(env.attrs[oi]), mapping)
    rank = len(iter_shape)
    extra_args = []
    for t in extras:
        shape = infos[t].shape
        if len(shape) > rank:
            raise Unsupported(f"epilogue input {t} has rank {len(shape)} > {rank}")
        padded = (1,) * (rank - len(shape)) + tuple(shape)
        value = infos[t].value
        extra_args.append(TensorArg(padded, infos[t].dtype, None if value is None else np.asarray(value).reshape(padded)))
    outputs = []
    for t in cluster.outputs:
        if t not in values:
            raise Unsupported(f"cluster output {t} is not produced by its epilogue")
        if E.tree_size(values[t]) > MAX_EXPR_TREE:
            raise Unsupported(f"fused expression for tensor {t} is too large; the cluster is split")
        outputs.append(Output(values[t], TensorArg(infos[t].shape, infos[t].dtype)))
    if root_op is not None:
        ins = [None if t < 0 else TensorArg(infos[t].shape, infos[t].dtype, infos[t].value)
               for t in root_op.inputs]
        req = KernelRequest(root_op.name, env.attrs[cluster.ops[0]], ins, extra_args, outputs, env.num_threads)
        return Request(req, list(root_op.inputs), extras, list(cluster.outputs))
    req = KernelRequest("LOOP", None, [], extra_args, outputs, env.num_threads)
    return Request(req, [], extras, list(cluster.outputs))
