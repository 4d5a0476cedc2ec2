"""Quantized unary elementwise ops as table lookups derived from their own reference.

An 8-bit (or 16-bit) input has only 256 (65536) possible values, so any unary elementwise
quantized op is a function of one byte: evaluate the op's NumPy reference (ops/q*.py, bit-exact
with LiteRT) once, at plan time, on every possible input value, and the kernel is
`out[i] = table[x[i] - min]` — bit-exact by construction, whatever rounding the op's integer
math does, and one definition of the op still (nothing re-derived here). 8-bit to 8-bit tables
use the vpermi2b lookup of qlut.py; other widths a scalar gather (int16: a 64 K-entry table,
128 KiB, read at random: the int16 path's cost is the cache, still ~10x the reference).

Ops whose reference raises on some input value (e.g. an int8 RSQRT of a non-positive value:
LiteRT fails that invoke) keep running on `reference`, which reports the error as LiteRT does.
"""

from __future__ import annotations

import math

import numpy as np

from tflite_jit import ops
from tflite_jit.backends.base import Cluster, CompileEnv
from tflite_jit.backends.numba_cpu import emit, host
from tflite_jit.backends.numba_cpu.generators import qeltwise, register_generator
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Output, Request, TensorArg, Unsupported
from tflite_jit.ops import expr as E

#: unary elementwise ops whose quantized (int8 / uint8 / int16) nodes become derived tables
DERIVED_TABLE_OPS = ("ABS", "NEG", "SQRT", "RSQRT", "EXP", "LOG", "LOGISTIC", "TANH", "GELU", "ELU",
                     "HARD_SWISH", "LEAKY_RELU", "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1")
#: input types a table covers
TABLE_DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))
_MAX_OUT_BYTES = 4


def derived_table(req: KernelRequest) -> np.ndarray:
    """The op's output for every input value, in input-value order; Unsupported if the op's
    reference cannot produce one (it raises on some value, or is not elementwise)."""
    x = req.inputs[0] if req.inputs else None
    if x is None or len(req.inputs) != 1:
        raise Unsupported(f"quantized {req.op_name}: a table needs exactly one input")
    dt = np.dtype(x.dtype)
    if dt not in TABLE_DTYPES:
        raise Unsupported(f"quantized {req.op_name} on {dt.name}: no table")
    info = np.iinfo(dt)
    domain = np.arange(info.min, info.max + 1, dtype=np.int64).astype(dt)
    out_dt = np.dtype(req.outputs[0].arg.dtype)
    try:
        res = ops.get(req.op_name).reference([domain], req.attrs)
    except Exception as e:  # the reference refuses some input value: it must run (and report) per invoke
        raise Unsupported(f"quantized {req.op_name}: its reference rejects some input values ({e})") from None
    table = np.asarray(res[0]) if len(res) == 1 else None
    if table is None or table.shape != domain.shape or table.dtype != out_dt or out_dt.itemsize > _MAX_OUT_BYTES:
        raise Unsupported(f"quantized {req.op_name}: the reference is not a per-element function here")
    return np.ascontiguousarray(table)


def generate_derived_table(req: KernelRequest) -> KernelSource:
    if not isinstance(req.attrs, ops.Quantized):
        raise Unsupported(f"{req.op_name}: only quantized nodes use a table")
    if req.extras or len(req.outputs) != 1 or not (isinstance(req.outputs[0].expr, E.Var)
                                                   and req.outputs[0].expr.index == 0):
        raise Unsupported(f"quantized {req.op_name}: fused epilogues are not compiled")
    if tuple(req.inputs[0].shape) != tuple(req.out_shape):
        raise Unsupported(f"quantized {req.op_name}: input and output shapes differ")
    table = derived_table(req)
    return table_source(req.op_name, table, np.dtype(req.inputs[0].dtype), math.prod(req.out_shape))


def table_source(label: str, table: np.ndarray, dt: np.dtype, n: int) -> KernelSource:
    """The kernel out[i] = table[x[i] - min(dt)] over n elements; the table is an argument (so a
    retrained model's tables share the kernel)."""
    lo = int(np.iinfo(dt).min)
    byte_lut = dt.itemsize == 1 and table.dtype.itemsize == 1 and host.HAS_VBMI
    head = n // host.LUT_W * host.LUT_W if byte_lut else 0
    lines = ["def entry(x, tab, btab, o):"]
    if head:
        lines += [f"    for i in range(0, {head}, {host.LUT_W}):", "        lut64(btab, x, o, i)"]
    if head < n:
        lines += [f"    for i in range({head}, {n}):", f"        st(o, i, ld(tab, np.int64(ld(x, i)) - {lo}))"]
    if n == 0:
        lines += ["    return"]
    btab = host.byte_table(table, table.dtype) if byte_lut else np.zeros(256, np.uint8)
    src = (f"# quantized {label} as a table derived from its reference\n"
           + emit.helper_import(host.SIMD, "ld", "st") + emit.helper_import(host.QLUT, "lut64")
           + emit.module("\n".join(lines) + "\n", False))
    return KernelSource(src, "entry", [Arg("input", 0), Arg("const", value=table), Arg("const", value=btab),
                                       Arg("output", 0)], False, lookup=(table, lo))


def chain_table(cluster: Cluster, env: CompileEnv) -> tuple[Request, KernelSource] | None:
    """A fused cluster of quantized element-wise nodes that reads one 8-bit (or int16) tensor x and
    scalar constants only -- swish's LOGISTIC(x) then MUL(x, .) in every int8 EfficientNet and
    MobileNetV3 -- is a function of each element of x alone: evaluated once on every value of x
    with the nodes' own references (bit-exact by construction), it is one table lookup instead of
    two kernels and an intermediate tensor. None when the cluster is not such a chain."""
    sg, infos = env.subgraph, env.infos
    if len(cluster.ops) < 2 or len(cluster.outputs) != 1:
        return None
    produced: dict[int, int] = {}
    x = None
    for oi in cluster.ops:
        op = sg.ops[oi]
        opdef = ops.get(op.name)
        if (opdef is None or opdef.reference is None
                or opdef.kind not in (ops.PatternKind.ELEMWISE, ops.PatternKind.BROADCAST)
                or not isinstance(env.attrs[oi], ops.Quantized) or len(op.outputs) != 1):
            return None
        for t in op.inputs:
            if t < 0 or t in produced:
                continue
            if infos[t].value is not None:
                if np.size(infos[t].value) != 1:
                    return None  # a per-channel constant: the result depends on the position
            elif x is None or x == t:
                x = t
            else:
                return None
        produced[op.outputs[0]] = oi
    out = cluster.outputs[0]
    if x is None or out not in produced:
        return None
    shape = infos[x].shape
    dt = np.dtype(infos[x].dtype)
    if dt not in TABLE_DTYPES or shape is None or any(infos[t].shape != shape for t in produced):
        return None
    domain = np.arange(np.iinfo(dt).min, np.iinfo(dt).max + 1, dtype=np.int64).astype(dt)
    vals: dict[int, np.ndarray] = {x: domain}
    try:
        for oi in cluster.ops:
            op = sg.ops[oi]
            ins = [None if t < 0 else vals[t] if t in vals else np.asarray(infos[t].value) for t in op.inputs]
            res = ops.get(op.name).reference(ins, env.attrs[oi])
            vals[op.outputs[0]] = np.asarray(res[0])
    except Exception:  # a reference that rejects some value must run per invoke (and report)
        return None
    table = np.ascontiguousarray(vals[out])
    if table.shape != domain.shape or table.dtype != np.dtype(infos[out].dtype) or table.itemsize > _MAX_OUT_BYTES:
        return None
    label = "+".join(sg.ops[oi].name for oi in cluster.ops)
    req = KernelRequest("TABLE", None, [TensorArg(shape, dt)], [],
                        [Output(E.Var(0), TensorArg(infos[out].shape, infos[out].dtype))], env.num_threads)
    return Request(req, [x], [], [out]), table_source(label, table, dt, math.prod(shape))


def generate_unary(req: KernelRequest) -> KernelSource:
    """LiteRT's own table ops keep their table (qeltwise.generate_table, 8-bit and int16
    LOGISTIC/TANH); every other quantized node of these ops gets the derived table."""
    if req.op_name in qeltwise.TABLE_OPS and getattr(req.attrs, "table", None) is not None:
        return qeltwise.generate_table(req)
    return generate_derived_table(req)


for _name in DERIVED_TABLE_OPS:
    register_generator(_name)(generate_unary)
