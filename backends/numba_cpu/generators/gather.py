"""GATHER with indices known only at run time: a bounds-checked copy of rows.

Why its own kernel: in a converted Keras RNN the loop body reads time step `i` of the input
sequence with GATHER(sequence, i), `i` being a loop variable. The plan-time index map of
generators/movement.py cannot serve it (the index changes every iteration), and running it on
`reference` kept the whole loop out of the compiled driver (runtime/loops.py).

Layout: params viewed as [B, O, N, R] (batch dims, dims before the axis, the axis, dims after),
indices as [B, I]; out[b, o, i, :] = params[b, o, indices[b, i], :]. An index outside [0, N)
raises in the kernel (LiteRT fails the invoke: "gather index out of bounds"), before anything
is read out of bounds.
"""

from __future__ import annotations

import numpy as np

from tflite_jit.backends.numba_cpu import emit
from tflite_jit.backends.numba_cpu.generators import movement, register_generator
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops import expr as E
from tflite_jit.ops.common import numel

#: the message a kernel raises with (the runtime adds the node)
OUT_OF_BOUNDS = "GATHER: gather index out of bounds"


def generate_dynamic_gather(req: KernelRequest) -> KernelSource:
    params, idx = req.inputs[0], req.inputs[1]
    if params is None or idx is None:
        raise Unsupported("GATHER: needs params and indices")
    if req.extras or len(req.outputs) != 1 or not (isinstance(req.outputs[0].expr, E.Var)
                                                   and req.outputs[0].expr.index == 0):
        raise Unsupported("GATHER: fused epilogues are not compiled")
    if np.dtype(req.outputs[0].arg.dtype) != np.dtype(params.dtype):
        raise Unsupported("GATHER: output type differs from params")
    if np.dtype(idx.dtype) not in (np.dtype(np.int16), np.dtype(np.int32), np.dtype(np.int64)):
        raise Unsupported(f"GATHER: {np.dtype(idx.dtype).name} indices")
    ps, ids = tuple(int(d) for d in params.shape), tuple(int(d) for d in idx.shape)
    a = req.attrs
    axis = a.axis + len(ps) if a.axis < 0 else a.axis
    bd = a.batch_dims + len(ids) if a.batch_dims < 0 else a.batch_dims
    if not (0 <= bd <= axis < len(ps)):
        raise Unsupported("GATHER: axis/batch_dims out of range (the reference reports it)")
    B, Ob, N, R = numel(ps[:bd]), numel(ps[bd:axis]), ps[axis], numel(ps[axis + 1:])
    Ii = numel(ids[bd:])
    if numel(req.out_shape) != B * Ob * Ii * R:
        raise Unsupported(f"GATHER: output shape {req.out_shape} does not match")
    args = [(Arg("input", 0), "p"), (Arg("input", 1), "ix"), (Arg("output", 0), "o0")]
    arglist, names = emit.signature(args)
    body = [f"def entry({names}):",
            f"    fp = p.reshape({B * Ob * N * R})",
            f"    fi = ix.reshape({max(B * Ii, 1)})",
            f"    fo = o0.reshape({max(B * Ob * Ii * R, 1)})",
            f"    for b in range({B}):",
            f"        for i in range({Ii}):",
            f"            k = np.int64(fi[b * {Ii} + i])",
            f"            if k < 0 or k >= {N}:",
            f"                raise IndexError('{OUT_OF_BOUNDS}')",
            f"            for o in range({Ob}):",
            f"                src = ((b * {Ob} + o) * {N} + k) * {R}",
            f"                dst = ((b * {Ob} + o) * {Ii} + i) * {R}",
            f"                for r in range({R}):",
            "                    fo[dst + r] = fp[src + r]"]
    if B * Ob * Ii * R == 0:
        body = [f"def entry({names}):", "    return"]
    return KernelSource(emit.module("\n".join(body) + "\n", False), "entry", arglist, False, may_raise=True)


@register_generator("GATHER")
def generate_gather(req: KernelRequest) -> KernelSource:
    """Constant indices: movement.py's plan-time copy map; run-time indices: the checked loop."""
    idx = req.inputs[1] if len(req.inputs) > 1 else None
    if idx is not None and idx.value is None:
        return generate_dynamic_gather(req)
    return movement.generate_movement(req)
