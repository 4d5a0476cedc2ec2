"""How a cluster becomes a kernel request: the one path every code-generating backend takes.

A cluster is a root op (conv, depthwise, FC, pool, reduction...) followed by an elementwise
epilogue, or a pure elementwise LOOP. `build_request` composes the tail ops' expression trees
(ops/expr.py) into one expression per cluster output, over
  Var(0)         the root op's result at the current output element (unused by a LOOP),
  Var(k), k >= 1 the element of `extras[k-1]` at the same output position,
so a backend prints the math that ops/ defined once and never re-derives it. What differs per
backend is only which root ops it has a kernel for and which nodes count as roots (quantized
nodes are roots on the CPU: their integer kernels are not expressions); both are arguments.

Extras are reshaped to the output's rank with broadcasting dims of size 1 (a per-channel bias of
an NHWC output has shape (1, 1, 1, C)); a generator indexes an extra with its output loop
variables, using 0 on size-1 dims.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit import ops
from tflite_jit.backends.base import Cluster, CompileEnv
from tflite_jit.ir.model import Op
from tflite_jit.ops import expr as E
from tflite_jit.ops import nn

#: Largest fused expression (counted as a tree) a generator is given: x = x + x repeated n times
#: is n shared nodes but 2^n written out, and printers may write it out.
MAX_EXPR_TREE = 4096


class Unsupported(Exception):
    """A backend cannot compile the cluster; the runtime splits it or falls back (and the plan
    says why)."""


@dataclass(frozen=True)
class TensorArg:
    shape: tuple[int, ...]
    dtype: np.dtype
    value: np.ndarray | None = None  # known at plan time (weights, constants)


@dataclass(frozen=True)
class Output:
    expr: E.Expr  # over Var(0) (root result) and Var(k >= 1) (extras)
    arg: TensorArg  # its shape equals the cluster's iteration shape


@dataclass
class KernelRequest:
    """One cluster with every shape concrete: what a generator turns into a kernel."""

    op_name: str  # root op ('CONV_2D', ...), or 'LOOP' for a pure elementwise/broadcast cluster
    attrs: Any  # the root op's parsed attrs (None for LOOP)
    inputs: list[TensorArg | None]  # root op's inputs in op order (None: omitted optional input)
    extras: list[TensorArg]  # epilogue inputs, reshaped to the output rank
    outputs: list[Output]  # at least one; all of the iteration shape
    num_threads: int = 1

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.outputs[0].arg.shape


@dataclass
class Request:
    """A KernelRequest plus the tensor ids behind its arguments, which a backend needs to wire a
    kernel to the runtime's (or the device's) buffers."""

    req: KernelRequest
    input_ids: list[int]  # root inputs, -1 for omitted ones (LOOP: empty)
    extra_ids: list[int]
    output_ids: list[int]


def is_loop_op(op: Op, opdef: ops.OpDef | None = None) -> bool:
    """An op a LOOP kernel (or an epilogue) can compute: elementwise/broadcast with an expression."""
    opdef = opdef if opdef is not None else ops.get(op.name)
    return (opdef is not None and opdef.expr is not None
            and opdef.kind in (ops.PatternKind.ELEMWISE, ops.PatternKind.BROADCAST))


def elementwise_root(op: Op, attrs: Any) -> bool:
    """The default root rule: every op that is not a LOOP op starts its own kernel."""
    return not is_loop_op(op)


def folds_pad(env: CompileEnv, pad_oi: int, conv_oi: int) -> bool:
    """Whether op `pad_oi` is a PAD (constant paddings) read only as the input of convolution
    `conv_oi` and folds into it as SAME padding (ops.nn.pad_folds_into). A cluster starting with
    such a pair is requested as the convolution alone, reading the PAD's input (build_request);
    fusion strategies merge the pair with this same test."""
    sg, infos = env.subgraph, env.infos
    pad, conv = sg.ops[pad_oi], sg.ops[conv_oi]
    if pad.name != "PAD" or conv.name not in nn.PAD_FOLDING_OPS or len(pad.inputs) < 2 or len(conv.inputs) < 2:
        return False
    t = pad.outputs[0]
    if conv.inputs[0] != t or t in conv.inputs[1:] or t in sg.outputs:
        return False
    x, w, p = infos[pad.inputs[0]], infos[conv.inputs[1]], infos[pad.inputs[1]]
    if p.value is None or x.shape is None or w.shape is None or len(w.shape) != 4:
        return False
    return nn.pad_folds_into(env.attrs[conv_oi], p.value, x.shape, w.shape[1:3])


def build_request(cluster: Cluster, env: CompileEnv, *, backend: str, roots: Container[str],
                  is_root: Callable[[Op, Any], bool] = elementwise_root,
                  multi_output: Container[str] = ()) -> Request:
    """Compose the cluster's ops into one request: a root + epilogue, or a LOOP.

    `roots`: the root op names this backend has kernels for; `is_root(op, attrs)`: whether the
    cluster's first op is a root (otherwise the whole cluster is one LOOP). `multi_output`: root
    ops with several outputs (SPLIT...) the backend compiles alone: their request has one Output
    per root output, in order, each Var(0) of its own shape. `backend` names the backend in the
    Unsupported messages the plan shows."""
    sg, infos = env.subgraph, env.infos
    ops_ = [sg.ops[i] for i in cluster.ops]
    for op in ops_:
        for t in (*op.inputs, *op.outputs):
            if t >= 0 and infos[t].shape is None:
                raise Unsupported(f"{op.name}: dynamic shape (only known at run time)")
    op_ids = list(cluster.ops)
    root_attrs = env.attrs[op_ids[0]]
    pre: Op | None = None  # a PAD folded into the convolution that follows it
    if len(op_ids) > 1 and folds_pad(env, op_ids[0], op_ids[1]):
        pre, ops_, op_ids = ops_[0], ops_[1:], op_ids[1:]
        root_attrs = nn.with_same_padding(env.attrs[op_ids[0]])
    root = ops_[0] if is_root(ops_[0], root_attrs) else None
    if pre is not None and root is None:
        raise Unsupported("a folded PAD needs its convolution as the root")
    if root is not None and root.name not in roots:
        raise Unsupported(f"no {backend} kernel for {root.name}")
    tail = list(zip(op_ids[1:], ops_[1:])) if root is not None else list(zip(op_ids, ops_))
    if root is not None:
        if tail and isinstance(root_attrs, ops.Quantized):
            raise Unsupported(f"quantized {root.name}: epilogues are not fused (single-op cluster)")
        if len(root.outputs) != 1:
            if tail or root.name not in multi_output or tuple(cluster.outputs) != tuple(root.outputs):
                raise Unsupported(f"{root.name}: multi-output roots are not fused")
            outs = [Output(E.Var(0), TensorArg(infos[t].shape, infos[t].dtype)) for t in root.outputs]
            inputs = [None if t < 0 else TensorArg(infos[t].shape, infos[t].dtype, infos[t].value)
                      for t in root.inputs]
            req = KernelRequest(root.name, root_attrs, inputs, [], outs, env.num_threads)
            return Request(req, list(root.inputs), [], list(root.outputs))
        iter_shape = infos[root.outputs[0]].shape
    else:
        iter_shape = infos[cluster.outputs[0]].shape if cluster.outputs else None
    if iter_shape is None:
        raise Unsupported("cluster without outputs")
    values: dict[int, E.Expr] = {}
    extras: list[int] = []
    if root is not None:
        values[root.outputs[0]] = E.Var(0)
    for oi, op in tail:
        opdef = ops.get(op.name)
        if not is_loop_op(op, opdef) or isinstance(env.attrs[oi], ops.Quantized):
            raise Unsupported(f"{op.name} cannot be fused as an elementwise epilogue")
        out = op.outputs[0]
        if infos[out].shape != iter_shape:
            raise Unsupported(f"{op.name}: output shape {infos[out].shape} differs from the "
                              f"cluster's iteration shape {iter_shape}")
        mapping = {}
        for j, t in enumerate(op.inputs):
            if t not in values and t not in extras:
                extras.append(t)
            mapping[j] = values[t] if t in values else E.Var(1 + extras.index(t))
        values[out] = E.substitute(opdef.expr(env.attrs[oi]), mapping)
    extra_args = [_extra_arg(t, env, len(iter_shape)) for t in extras]
    outputs = []
    for t in cluster.outputs:
        if t not in values:
            raise Unsupported(f"cluster output {t} is not produced by its epilogue")
        size = E.tree_size(values[t])
        if size > MAX_EXPR_TREE:
            raise Unsupported(f"fused expression for tensor {t} has {size} nodes written out "
                              f"(> {MAX_EXPR_TREE}); the cluster is split")
        outputs.append(Output(values[t], TensorArg(infos[t].shape, infos[t].dtype)))
    if root is None:
        req = KernelRequest("LOOP", None, [], extra_args, outputs, env.num_threads)
        return Request(req, [], extras, list(cluster.outputs))
    root_inputs = list(root.inputs)
    if pre is not None:
        root_inputs[0] = pre.inputs[0]
    inputs = [None if t < 0 else TensorArg(infos[t].shape, infos[t].dtype, infos[t].value) for t in root_inputs]
    req = KernelRequest(root.name, root_attrs, inputs, extra_args, outputs, env.num_threads)
    return Request(req, root_inputs, extras, list(cluster.outputs))


def _extra_arg(t: int, env: CompileEnv, rank: int) -> TensorArg:
    info = env.infos[t]
    if len(info.shape) > rank:
        raise Unsupported(f"epilogue input {t} has rank {len(info.shape)} > {rank}")
    padded = (1,) * (rank - len(info.shape)) + tuple(info.shape)
    value = None if info.value is None else np.asarray(info.value).reshape(padded)
    return TensorArg(padded, info.dtype, value)

