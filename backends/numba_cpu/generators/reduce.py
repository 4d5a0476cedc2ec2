"""MEAN, SUM (axes constant at plan time) and SOFTMAX (last axis), each with its epilogue.

MEAN/SUM: the input's dims are collapsed into alternating kept/reduced groups (size-1 dims
dropped). The input is read once in memory order into a float32 accumulator row of the
output's size (a 'const' scratch buffer, zeroed by the kernel each call):
* innermost group kept (NHWC global average pooling: [H*W reduced, C kept]): for each input row,
  acc[out row + i] += x[row + i], vectorized over i. Every output element is summed
  sequentially over the reduced positions in memory order, which is the order NumPy's
  reference (and LiteRT) adds them in, so results match bit for bit up to the final division;
* innermost group reduced: a scalar sum per row (vectorized with reassoc), added to its slot.
Then one pass over the output computes acc / count (MEAN, a true division: the MEAN kernel is
compiled without 'arcp') and the epilogue.

SOFTMAX: per row of the last axis, in float32 like the reference: max, e = exp((x - max) *
beta) stored into the first float32 output (else a scratch buffer) while summing, then
e * (1 / sum) and the epilogue. exp is printer.py's vectorizable `_exp32` (< 1 ulp), not libm's
scalar expf.
"""

from __future__ import annotations

import numpy as np

from tflite_jit.backends.numba_cpu import emit, printer
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops.base import OpError
from tflite_jit.ops.common import c_strides, numel
from tflite_jit.ops.reduce import resolve_axes

#: serial cost estimates for the threading decision
_ADD_NS = 0.1
_EXP_NS = 0.8  # per element of a row: max, exp, sum, scale (measured on 4x128x128)


def _final_pass(req: KernelRequest, acc_flat: str, value: str, parallel: bool) -> list[str]:
    """Loop over the output: `_acc` = `value` (a format string of the accumulator element), then
    the epilogue and the stores."""
    keep = [d for d, n in enumerate(req.out_shape) if n != 1]  # size-1 dims dropped
    shape = tuple(req.out_shape[d] for d in keep) or (1,)
    outer, L = shape[:-1], shape[-1]
    P = numel(outer)
    dim_var, row_lines = emit.dim_decoder(outer)
    rows = emit.Rows(dim_var, "i", ("t", outer))
    _, ef, of = emit.std_flats(req)
    acc = rows.load(acc_flat, shape)
    store = emit.outputs_code(req, rows, ("_acc", emit.F32), ef, of, keep)
    inner = [f"for i in range({L}):"] + emit.indent([f"_acc = {value.format(acc)}"] + store, 1)
    if P == 1:
        return rows.pre + rows.hoist + inner
    if parallel:
        head = emit.prange_head("t", 0, P)
    else:
        head = [f"for t in range({P}):"]
    return rows.pre + head + emit.indent(row_lines + rows.hoist + inner, 1)


def _reduce(req: KernelRequest, mean: bool) -> KernelSource:
    x = req.inputs[0] if req.inputs else None
    ax = req.inputs[1] if len(req.inputs) > 1 else None
    if x is None or np.dtype(x.dtype) != emit.F32:
        raise Unsupported(f"{req.op_name}: float32 input only")
    if ax is None or ax.value is None:
        raise Unsupported(f"{req.op_name}: the axes must be known at plan time")
    shape = tuple(int(d) for d in x.shape)
    try:
        axes = resolve_axes(ax.value, len(shape), req.op_name)
    except OpError as e:
        raise Unsupported(str(e)) from None
    out_n = numel(req.out_shape)
    if out_n != numel([d for i, d in enumerate(shape) if i not in axes]):
        raise Unsupported(f"{req.op_name}: output shape {req.out_shape} does not match the reduction")
    count = numel([shape[i] for i in axes])
    # alternating groups of kept (K) / reduced (R) dims, size-1 dims dropped
    groups: list[list] = []
    for i, d in enumerate(shape):
        if d == 1:
            continue
        kind = "R" if i in axes else "K"
        if groups and groups[-1][0] == kind:
            groups[-1][1] *= d
        else:
            groups.append([kind, d])
    if not groups:
        groups = [["K", 1]]
    sizes = [g[1] for g in groups]
    kinds = [g[0] for g in groups]
    n_in = numel(shape)
    kept = [s for k, s in groups if k == "K"]
    kst = c_strides(kept)
    L = sizes[-1]
    outer = sizes[:-1]
    P = numel(outer)
    # parallel only where rows own distinct accumulator slots (all outer groups kept)
    par_acc = (kinds[-1] == "R" and all(k == "K" for k in kinds[:-1])
               and emit.want_parallel(req, n_in * _ADD_NS * 1e-9) and P > 1)

    args = emit.std_args(req, [(Arg("input", 0), "x"), (Arg("const", value=np.zeros(max(out_n, 1), np.float32)), "acc")])
    arglist, params = emit.signature(args)
    views, ef, of = emit.std_flats(req)
    body = [f"def entry({params}):", f"    fx = x.reshape({n_in})"] + emit.indent(views, 1)
    if out_n == 0:
        body.append("    return")
        return KernelSource(emit.module("\n".join(body) + "\n", False), "entry", arglist, False)
    body += [f"    for i in range({out_n}):", "        acc[i] = np.float32(0.0)"]
    if n_in:
        # the accumulator slot of row t: its kept-group coordinates in the output
        ost = c_strides(outer)
        terms = []
        ki = 0
        for g, (k, s) in enumerate(groups[:-1]):
            if k == "K":
                st = kst[ki]
                if len(outer) == 1:
                    coord = "t"
                elif g == 0:
                    coord = f"(t // {ost[0]})"
                else:
                    coord = f"((t // {ost[g]}) % {s})"
                terms.append(coord if st == 1 else f"{coord} * {st}")
                ki += 1
        ob = " + ".join(terms) if terms else "0"
        if kinds[-1] == "K":
            inner = [f"xb = t * {L}", f"ob = {ob}", f"for i in range({L}):",
                     "    acc[ob + i] += fx[xb + i]"]
        else:
            inner = [f"xb = t * {L}", "s = np.float32(0.0)", f"for i in range({L}):",
                     "    s += fx[xb + i]", f"acc[{ob}] += s"]
        if par_acc:
            body += emit.indent(emit.prange_head("t", 0, P), 1)
            body += emit.indent(inner, 2)
        else:
            body += [f"    for t in range({P}):"] + emit.indent(inner, 2)
    value = "{} / " + printer.const_literal(float(count), emit.F32) if mean else "{}"
    est = out_n * (0.2 + 0.1 * len(req.extras)) * 1e-9
    par_out = emit.want_parallel(req, est) and numel(tuple(req.out_shape)[:-1]) > 1
    body += emit.indent(_final_pass(req, "acc", value, par_out), 1)
    parallel = par_acc or par_out
    # no 'arcp' for MEAN: it would turn `/ count` into `* (1 / count)`, one ulp off the reference
    # (which divides); the division is a negligible part of the kernel
    return KernelSource(emit.module("\n".join(body) + "\n", parallel, arcp=not mean), "entry", arglist, parallel)


@register_generator("MEAN")
def generate_mean(req: KernelRequest) -> KernelSource:
    return _reduce(req, mean=True)


@register_generator("SUM")
def generate_sum(req: KernelRequest) -> KernelSource:
    return _reduce(req, mean=False)


@register_generator("SOFTMAX")
def generate_softmax(req: KernelRequest) -> KernelSource:
    x = req.inputs[0] if req.inputs else None
    if x is None or np.dtype(x.dtype) != emit.F32 or len(x.shape) < 1:
        raise Unsupported("SOFTMAX: float32 input of rank >= 1 only")
    shape = tuple(int(d) for d in x.shape)
    if tuple(req.out_shape) != shape:
        raise Unsupported(f"SOFTMAX: output shape {req.out_shape} != input shape {shape}")
    L = shape[-1]
    outer = shape[:-1]
    P = numel(outer)
    n = P * L
    beta = printer.const_literal(float(req.attrs.beta), emit.F32)
    # e is parked in the first float32 output (read back before that element is overwritten)
    tmp_out = next((k for k, o in enumerate(req.outputs) if np.dtype(o.arg.dtype) == emit.F32), None)
    first = [(Arg("input", 0), "x")]
    if tmp_out is None:
        first.append((Arg("const", value=np.zeros(max(n, 1), np.float32)), "tmp"))
    args = emit.std_args(req, first)
    arglist, params = emit.signature(args)
    views, ef, of = emit.std_flats(req)
    tmp = "tmp" if tmp_out is None else of[tmp_out]
    parallel = emit.want_parallel(req, n * _EXP_NS * 1e-9) and P > 1
    body = [f"def entry({params}):", f"    fx = x.reshape({n})"] + emit.indent(views, 1)
    if n == 0:
        body.append("    return")
        return KernelSource(emit.module("\n".join(body) + "\n", False), "entry", arglist, False)
    dim_var, row_lines = emit.dim_decoder(outer)
    rows = emit.Rows(dim_var, "i", ("t", outer))
    store = emit.outputs_code(req, rows, ("_acc", emit.F32), ef, of)
    row = [f"xb = t * {L}",
           "m = fx[xb]",
           f"for i in range(1, {L}):",
           "    v = fx[xb + i]",
           "    m = v if v > m else m",
           "s = np.float32(0.0)",
           f"for i in range({L}):",
           f"    e = _exp32((fx[xb + i] - m) * {beta})",
           f"    {tmp}[xb + i] = e",
           "    s += e",
           "inv = np.float32(1.0) / s"]
    row += row_lines + rows.hoist
    row += [f"for i in range({L}):"] + emit.indent([f"_acc = {tmp}[xb + i] * inv"] + store, 1)
    body += emit.indent(rows.pre, 1)
    if parallel:
        body += emit.indent(emit.prange_head("t", 0, P), 1)
    else:
        body += [f"    for t in range({P}):"]
    body += emit.indent(row, 2)
    return KernelSource(emit.module("\n".join(body) + "\n", parallel), "entry", arglist, parallel)
