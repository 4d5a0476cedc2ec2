"""CONCATENATION (float32 / int32 / bool; no requantization), equal to ops/shape.py's reference.

On the reference backend a concatenation of small tensors cost 10-16 µs of Python per call
(argument lists, the shape rule re-checked, np.concatenate, then a copy into the planned buffer):
two of them were 5 % of face_detection_short_range's invoke. Here it is a kernel like any other:
for each row of the dimensions before the axis, each input's contiguous block (its axis length
times the trailing dimensions) is copied to its offset in the output row. Every bound and
offset is a literal, so the copies vectorize.
"""

from __future__ import annotations

import math

import numpy as np

from tflite_jit.backends.numba_cpu import emit, simd
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.quantized import no_epilogue
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported


@register_generator("CONCATENATION")
def generate_concatenation(req: KernelRequest) -> KernelSource:
    no_epilogue(req, "CONCATENATION")
    ins = req.inputs
    out = tuple(int(d) for d in req.out_shape)
    dt = np.dtype(req.outputs[0].arg.dtype)
    if not ins or any(x is None for x in ins):
        raise Unsupported("CONCATENATION: omitted input (the reference reports it)")
    if any(np.dtype(x.dtype) != dt for x in ins) or getattr(req.attrs, "activation", "NONE") != "NONE":
        raise Unsupported("CONCATENATION: mixed types or a fused activation (the reference reports it)")
    rank = len(out)
    if rank == 0 or any(len(x.shape) != rank for x in ins):
        raise Unsupported("CONCATENATION: ranks differ (the reference reports it)")
    axis = int(req.attrs.axis) + (rank if req.attrs.axis < 0 else 0)
    if not 0 <= axis < rank:
        raise Unsupported("CONCATENATION: axis out of range (the reference reports it)")
    shapes = [tuple(int(d) for d in x.shape) for x in ins]
    if (any(s[:axis] != out[:axis] or s[axis + 1:] != out[axis + 1:] for s in shapes)
            or sum(s[axis] for s in shapes) != out[axis]):
        raise Unsupported(f"CONCATENATION: inputs {shapes} do not make the output {list(out)}")
    outer, inner = math.prod(out[:axis]), math.prod(out[axis + 1:])
    row = out[axis] * inner
    names = [f"x{i}" for i in range(len(ins))]
    body = [f"def entry({', '.join(names)}, o):", f"    for r in range({outer}):"]
    offset = 0
    for name, s in zip(names, shapes):
        n = s[axis] * inner
        if n:
            body += [f"        ob = r * {row} + {offset}", f"        ib = r * {n}",
                     f"        for c in range({n}):", f"            st(o, ob + c, ld({name}, ib + c))"]
        offset += n
    if outer == 0 or row == 0:
        body = [f"def entry({', '.join(names)}, o):", "    pass"]
    src = ("# CONCATENATION\n" + emit.helper_import(simd, "ld", "st")
           + emit.module("\n".join(body) + "\n", False))
    return KernelSource(src, "entry", [Arg("input", i) for i in range(len(ins))] + [Arg("output", 0)], False)
