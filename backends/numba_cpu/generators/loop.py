"""The LOOP generator: pure elementwise/broadcast clusters (the emitter toolkit it prints with is
../emit.py).

LOOP kernels: the iteration shape is collapsed first (size-1 dims dropped, adjacent dims merged
where every operand is either full or broadcast in both), so e.g. a per-channel bias add over
NHWC becomes [H*W, C] and a scalar or same-shape add becomes one flat loop. Outer dims are walked
by one flat row index (decomposed with literal div/mod where an operand needs a coordinate);
big kernels prange over rows, or over chunks of a 1-D loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tflite_jit.backends.numba_cpu import emit
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.spec import KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops.common import numel
from tflite_jit.ops.expr import Call, Expr, variables

# rough serial cost per element, ns (measured here: ADD+RELU6 0.1, LOGISTIC with _exp32 0.25);
# tanh/erf/erfc are built on _exp32 (EXP_PRELUDE); log stays a scalar libm call (no SVML,
# PERFORMANCE.md §1.7)
_BASE_NS = 0.06
_NODE_NS = {"exp": 0.15, "log": 4.0, "atan2": 6.0, "tanh": 0.3, "erf": 0.4, "erfc": 0.4, "sqrt": 0.05,
            "rsqrt": 0.06, "div": 0.05}


def exprs_cost_ns(exprs: Sequence[Expr]) -> float:
    """Estimated serial ns per element to evaluate `exprs` (shared nodes counted once)."""
    seen: set = set()

    def walk(e: Expr) -> float:
        if not isinstance(e, Call) or e in seen:
            return 0.0
        seen.add(e)
        return _NODE_NS.get(e.fn, 0.02) + sum(walk(a) for a in e.args)

    return sum(walk(e) for e in exprs)


# ---- LOOP -------------------------------------------------------------------------------------


def _collapse(shape: tuple[int, ...], operands: Sequence[tuple[int, ...]]) -> tuple[list[int], list[tuple[int, ...]]]:
    """Collapsed iteration dims and each operand's collapsed shape (1 where it broadcasts)."""
    dims = [d for d in range(len(shape)) if shape[d] != 1]
    groups: list[list[int]] = []
    for d in dims:
        pat = tuple(s[d] != 1 for s in operands)
        if groups and tuple(s[groups[-1][-1]] != 1 for s in operands) == pat:
            groups[-1].append(d)
        else:
            groups.append([d])
    if not groups:
        return [1], [(1,) for _ in operands]
    sizes = [numel([shape[d] for d in g]) for g in groups]
    shapes = [tuple(n if s[g[0]] != 1 else 1 for g, n in zip(groups, sizes)) for s in operands]
    return sizes, shapes


@register_generator("LOOP")
def generate_loop(req: KernelRequest) -> KernelSource:
    shape = tuple(req.out_shape)
    for o in req.outputs:
        if tuple(o.arg.shape) != shape:
            raise Unsupported(f"LOOP outputs of different shapes {o.arg.shape} and {shape}")
        used = variables(o.expr)
        if 0 in used:
            raise Unsupported("LOOP expressions have no root value (Var(0))")
        if any(not 1 <= k <= len(req.extras) for k in used):
            raise Unsupported(f"LOOP expression reads Var({max(used)}) but there are {len(req.extras)} inputs")
        emit.check_dtype(o.arg.dtype, "LOOP output")
    for k, x in enumerate(req.extras):
        emit.check_dtype(x.dtype, f"LOOP input {k}")
        if len(x.shape) != len(shape) or any(a not in (1, b) for a, b in zip(x.shape, shape)):
            raise Unsupported(f"LOOP input {k} of shape {x.shape} does not broadcast to {shape}")
    n = numel(shape)
    sizes, cshapes = _collapse(shape, [tuple(x.shape) for x in req.extras])
    est = n * (_BASE_NS + exprs_cost_ns([o.expr for o in req.outputs])) * 1e-9
    parallel = emit.want_parallel(req, est) and n >= 4096
    L = sizes[-1]
    outer = sizes[:-1]
    P = numel(outer)
    # a 1-D space (every operand full or a scalar) is split into chunks; else prange over rows
    chunked = parallel and len(sizes) == 1
    args = emit.std_args(req)
    arglist, params = emit.signature(args)
    ef = [f"fe{k}" for k in range(len(req.extras))]
    of = [f"fo{k}" for k in range(len(req.outputs))]
    body = [f"def entry({params}):"]
    pre = emit.flat_views([(ef[k], f"e{k}", x.shape) for k, x in enumerate(req.extras)]
                     + [(of[k], f"o{k}", shape) for k in range(len(req.outputs))])
    body += emit.indent(pre, 1)
    if n == 0:
        body.append("    return")
        return KernelSource(emit.module("\n".join(body) + "\n", False), "entry", arglist, False)
    if chunked:
        # one long 1-D loop: prange over equal chunks (multiples of 16 elements)
        nt = max(2 * req.num_threads, min(64, -(-n // 16384)))
        ch = -(-n // nt)
        ch = -(-ch // 16) * 16
        nt = -(-n // ch)
        lines = [f"lo = t * {ch}", f"hi = min(lo + {ch}, {n})"]
        rows_hoist: list[str] = []
        loads: dict[int, str] = {}
        dtypes: dict[int, np.dtype] = {}
        used: set[int] = set()
        for o in req.outputs:
            used |= variables(o.expr)
        for k in sorted(used):
            x = req.extras[k - 1]
            dtypes[k] = np.dtype(x.dtype)
            if numel(x.shape) == 1:
                rows_hoist.append(f"_r{k} = {ef[k - 1]}[0]")
                loads[k] = f"_r{k}"
            else:
                loads[k] = f"{ef[k - 1]}[i]"
        em = emit.Emitter(loads, dtypes)
        stores = []
        for j, o in enumerate(req.outputs):
            stores.append(f"{of[j]}[i] = {em.value(o.expr, o.arg.dtype)}")
        body += emit.indent(emit.prange_head("t", 0, nt), 1)
        body += emit.indent(lines + rows_hoist + ["for i in range(lo, hi):"], 2)
        body += emit.indent(em.lines + stores, 3)
        return KernelSource(emit.module("\n".join(body) + "\n", True), "entry", arglist, True)

    # rows over the collapsed outer dims, one flat row index `t`
    dim_var, row_lines = emit.dim_decoder(outer)
    rows = emit.Rows(dim_var, "i", ("t", outer))
    used = set()
    for o in req.outputs:
        used |= variables(o.expr)
    loads = {k: rows.load(ef[k - 1], cshapes[k - 1]) for k in sorted(used)}
    dtypes = {k: np.dtype(req.extras[k - 1].dtype) for k in sorted(used)}
    em = emit.Emitter(loads, dtypes)
    stores = []
    for j, o in enumerate(req.outputs):
        val = em.value(o.expr, o.arg.dtype)
        stores.append(f"{rows.load(of[j], tuple(sizes), store=True)} = {val}")
    inner = [f"for i in range({L}):"] + emit.indent(em.lines + stores, 1)
    body += emit.indent(rows.pre, 1)
    if P == 1:
        body += emit.indent(rows.hoist + inner, 1)
        parallel = False
    else:
        if parallel:
            head = emit.prange_head("t", 0, P)
        else:
            head = [f"for t in range({P}):"]
        body += emit.indent(head, 1) + emit.indent(row_lines + rows.hoist + inner, 2)
    return KernelSource(emit.module("\n".join(body) + "\n", parallel), "entry", arglist, parallel)
