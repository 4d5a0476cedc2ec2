"""The Numba CPU backend: one generated, shape-specialised @njit kernel per cluster.

A cluster is a root op (conv, depthwise, FC, pool, reduction...) with its elementwise epilogue,
or a pure elementwise LOOP. `request_for` turns it into a `KernelRequest` by composing the tail
ops' expression trees; a generator (registered per root op name in GENERATORS) prints a module;
`modcache.load` imports it from the on-disk cache; `compile_request` binds the arguments and
compiles eagerly for the concrete argument types, so allocate_tensors() pays the compile cost and
invoke() pays none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tflite_jit import ops
from tflite_jit.backends.base import Backend, Cluster, CompileEnv, Kernel
from tflite_jit.backends.numba_cpu import modcache
from tflite_jit.backends.numba_cpu.spec import KernelRequest, KernelSource, Output, TensorArg
from tflite_jit.ir.model import Op
from tflite_jit.ops import expr as E
from tflite_jit.ops.base import PatternKind

#: Largest fused expression (counted as a tree) a generator is given: x = x + x repeated n times
#: is n shared nodes but 2^n written out, and printers may write it out.
MAX_EXPR_TREE = 4096

#: root op name (or 'LOOP') -> generator
GENERATORS: dict[str, Callable[[KernelRequest], KernelSource]] = {}
#: ops whose quantized (ops.Quantized attrs) int8/uint8 nodes have a generator
#: (generators/qconv.py, qeltwise.py, qreduce.py, qpool.py); other quantized nodes run on reference
QUANT_OPS = frozenset(("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "LOGISTIC",
                       "TANH", "GELU", "ELU", "HARD_SWISH", "MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D",
                       "SOFTMAX"))
#: ops whose int8/uint8 outputs are not ops.Quantized nodes (their attrs carry the quantization,
#: or none is needed) but have generators: QUANTIZE (qquant.py), PAD (qpad.py)
QUANT_IO_OPS = frozenset(("QUANTIZE", "PAD"))


class Unsupported(Exception):
    """This backend cannot compile the cluster; the caller falls back (and the plan says why)."""


def register_generator(name: str) -> Callable:
    def deco(fn: Callable[[KernelRequest], KernelSource]) -> Callable[[KernelRequest], KernelSource]:
        GENERATORS[name] = fn
        return fn

    return deco


def _is_loop_op(op: Op, opdef: ops.OpDef | None) -> bool:
    return (opdef is not None and opdef.expr is not None
            and opdef.kind in (PatternKind.ELEMWISE, PatternKind.BROADCAST))


def _is_root(oi: int, op: Op, env: CompileEnv) -> bool:
    """The cluster's first op is a root (its own generator), not part of a LOOP: every
    non-elementwise op, and quantized nodes (their integer kernels are not expressions)."""
    return not _is_loop_op(op, ops.get(op.name)) or isinstance(env.attrs[oi], ops.Quantized)


def request_for(cluster: Cluster, env: CompileEnv) -> KernelRequest:
    """Compose the cluster's ops into one request: root + epilogue, or a LOOP."""
    sg, infos = env.subgraph, env.infos
    ops_ = [sg.ops[i] for i in cluster.ops]
    for op in ops_:
        for t in (*op.inputs, *op.outputs):
            if t >= 0 and infos[t].shape is None:
                raise Unsupported(f"{op.name}: dynamic shape (only known at run time)")
    first_is_root = _is_root(cluster.ops[0], ops_[0], env)
    if first_is_root and ops_[0].name not in GENERATORS:
        raise Unsupported(f"no Numba kernel for {ops_[0].name}")
    tail = list(zip(cluster.ops[1:] if first_is_root else cluster.ops, ops_[1:] if first_is_root else ops_))
    if first_is_root and tail and isinstance(env.attrs[cluster.ops[0]], ops.Quantized):
        raise Unsupported(f"quantized {ops_[0].name}: epilogues are not fused (single-op cluster)")
    if first_is_root:
        root_op = ops_[0]
        if len(root_op.outputs) != 1:
            raise Unsupported(f"{root_op.name}: multi-output roots are not fused")
        iter_shape = infos[root_op.outputs[0]].shape
    else:
        iter_shape = infos[cluster.outputs[0]].shape if cluster.outputs else None
    values: dict[int, E.Expr] = {}
    extras: list[int] = []
    if first_is_root:
        values[ops_[0].outputs[0]] = E.Var(0)
    compute_dtype = None
    for oi, op in tail:
        opdef = ops.get(op.name)
        if not _is_loop_op(op, opdef) or isinstance(env.attrs[oi], ops.Quantized):
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
        values[out] = E.substitute(opdef.expr(env.attrs[oi]), mapping)
        compute_dtype = compute_dtype or infos[op.inputs[0]].dtype
    rank = len(iter_shape)
    extra_args = []
    for t in extras:
        shape = infos[t].shape
        if len(shape) > rank:
            raise Unsupported(f"epilogue input {t} has rank {len(shape)} > {rank}")
        padded = (1,) * (rank - len(shape)) + tuple(shape)
        value = infos[t].value
        extra_args.append(TensorArg(padded, infos[t].dtype, None if value is None else value.reshape(padded)))
    outputs = []
    for t in cluster.outputs:
        if t not in values:
            raise Unsupported(f"cluster output {t} is not produced by its epilogue")
        if E.tree_size(values[t]) > MAX_EXPR_TREE:
            raise Unsupported(f"fused expression for tensor {t} has {E.tree_size(values[t])} nodes "
                              f"written out (> {MAX_EXPR_TREE}); the cluster is split")
        outputs.append(Output(values[t], TensorArg(infos[t].shape, infos[t].dtype)))
    if first_is_root:
        root = ops_[0]
        inputs = [None if t < 0 else TensorArg(infos[t].shape, infos[t].dtype, infos[t].value)
                  for t in root.inputs]
        return KernelRequest(root.name, env.attrs[cluster.ops[0]], inputs, extra_args, outputs,
                             env.num_threads)
    return KernelRequest("LOOP", None, [], extra_args, outputs, env.num_threads)


def compile_request(req: KernelRequest) -> tuple[Callable[..., None], KernelSource]:
    gen = GENERATORS.get(req.op_name)
    if gen is None:
        raise Unsupported(f"no Numba kernel for {req.op_name}")
    src = gen(req)
    return modcache.load(src.source, src.entry), src


def bind(src: KernelSource, inputs: Sequence[np.ndarray | None], extras: Sequence[np.ndarray],
         outputs: Sequence[np.ndarray]) -> tuple:
    """The entry function's argument tuple for these buffers."""
    args: list[Any] = []
    for a in src.args:
        if a.kind == "input":
            args.append(inputs[a.index])
        elif a.kind == "extra":
            args.append(extras[a.index])
        elif a.kind == "output":
            args.append(outputs[a.index])
        else:
            args.append(a.value)
    return tuple(args)


def run_request(req: KernelRequest, inputs: Sequence[np.ndarray | None], extras: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Compile and run a request once on fresh output buffers (tests and tools)."""
    fn, src = compile_request(req)
    outs = [np.empty(o.arg.shape, o.arg.dtype) for o in req.outputs]
    extras = [np.ascontiguousarray(np.asarray(x).reshape(t.shape)) for x, t in zip(extras, req.extras)]
    fn(*bind(src, inputs, extras, outs))
    return outs


# Integer division by zero fails LiteRT's invoke; a generated loop cannot raise, so these run
# on the reference backend, which checks the divisor.
_CHECKED_INT_DIVISION = frozenset(("DIV", "FLOOR_DIV", "FLOOR_MOD"))


class NumbaBackend(Backend):
    name = "numba_cpu"

    def supports(self, op: Op, env: CompileEnv) -> tuple[bool, str]:
        opdef = ops.get(op.name)
        if opdef is None:
            return False, f"no definition of {op.name}"
        quantized = isinstance(env.attrs_of(op), ops.Quantized)
        if op.name not in GENERATORS and not (_is_loop_op(op, opdef) and "LOOP" in GENERATORS):
            return False, f"no Numba kernel for {op.name} yet (runs on reference)"
        if quantized:
            a = env.attrs_of(op)
            dt = getattr(a, "dtype", None) or getattr(a, "in_dtype", None)
            if op.name not in QUANT_OPS or dt is None or np.dtype(dt) not in (np.int8, np.uint8):
                on = f" on {np.dtype(dt).name}" if dt is not None else ""
                return False, f"quantized {op.name}{on} has no Numba kernel yet (runs on reference)"
        if op.name in _CHECKED_INT_DIVISION and env.infos[op.inputs[0]].dtype.kind in "iu":
            return False, f"integer {op.name} must raise on a zero divisor (runs on reference)"
        for t in (*op.inputs, *op.outputs):
            if t >= 0 and env.infos[t].shape is None:
                return False, f"{op.name} has a dynamic shape (runs on reference)"
            if (t >= 0 and not quantized and t in op.outputs
                    and env.infos[t].dtype not in (np.float32, np.bool_, np.int32)
                    and not (op.name in QUANT_IO_OPS and env.infos[t].dtype in (np.int8, np.uint8))):
                return False, f"{op.name} on {env.infos[t].dtype} (runs on reference)"
        return True, ""

    def cost(self, cluster: Cluster, env: CompileEnv) -> float:
        from tflite_jit.backends.reference.backend import ReferenceBackend

        return ReferenceBackend().cost(cluster, env) / 4.0

    def compile(self, cluster: Cluster, env: CompileEnv) -> Kernel:
        req = request_for(cluster, env)
        fn, src = compile_request(req)
        extras_t = [t for t in _extra_ids(cluster, env)]
        return NumbaKernel(fn, src, req, extras_t)


def _extra_ids(cluster: Cluster, env: CompileEnv) -> list[int]:
    """Tensor ids of the request's extras, in the order request_for assigns them."""
    sg = env.subgraph
    ops_ = [sg.ops[i] for i in cluster.ops]
    first_is_root = _is_root(cluster.ops[0], ops_[0], env)
    produced = set(ops_[0].outputs) if first_is_root else set()
    extras: list[int] = []
    for op in ops_[1:] if first_is_root else ops_:
        for t in op.inputs:
            if t not in produced and t not in extras:
                extras.append(t)
        produced |= set(op.outputs)
    return extras


class NumbaKernel:
    """An in-place kernel: called with the cluster's buffers, writes its outputs."""

    in_place = True

    def __init__(self, fn: Callable[..., None], src: KernelSource, req: KernelRequest, extra_ids: list[int]):
        self.fn, self.src, self.req, self.extra_ids = fn, src, req, extra_ids

    def bind(self, buffers: Sequence[np.ndarray | None], root_inputs: Sequence[int],
             outputs: Sequence[int]) -> Callable[[], None]:
        """A zero-argument callable over fixed buffers (the per-invoke path)."""
        ins = [buffers[t] if t >= 0 else None for t in root_inputs]
        extras = [buffers[t].reshape(a.shape) for t, a in zip(self.extra_ids, self.req.extras)]
        outs = [buffers[t] for t in outputs]
        args = bind(self.src, ins, extras, outs)
        fn = self.fn
        modcache.compile_now(fn, args)  # at allocate time, so invoke() never compiles
        return lambda: fn(*args)
