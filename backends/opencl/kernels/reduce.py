"""MEAN / SUM over constant axes (one work-item per output element, sequential float32
accumulation like LiteRT) and SOFTMAX over the last axis (one work-item per row: max, sum of
exponentials, then the normalised row through the epilogue)."""

from __future__ import annotations

import numpy as np

from tflite_jit.backends.opencl.kernels.common import Gen, register
from tflite_jit.backends.opencl.printer import PrintError, float_literal
from tflite_jit.ops.common import c_strides, numel
from tflite_jit.ops.reduce import resolve_axes


@register("MEAN", "SUM")
def mean_sum(g: Gen) -> tuple[list[str], int]:
    x = g.req.inputs[0]
    axis = g.req.inputs[1].value if g.req.inputs[1] is not None else None
    if axis is None:
        raise PrintError(f"{g.req.op_name}: the axes are only known at run time")
    shape = tuple(x.shape)
    axes = sorted(set(resolve_axes(np.asarray(axis), len(shape), g.req.op_name)))
    st = c_strides(shape)
    kept = [d for d in range(len(shape)) if d not in axes]
    body = ["int t = gid;", "int base = 0;"]
    for d in reversed(kept):
        body += [f"base += (t % {shape[d]}) * {st[d]};", f"t /= {shape[d]};"]
    body.append("float acc = 0.0f;")
    idx = " + ".join(["base"] + [f"r{d} * {st[d]}" for d in axes])
    depth = 0
    for d in axes:
        body.append("    " * depth + f"for (int r{d} = 0; r{d} < {shape[d]}; r{d}++) {{")
        depth += 1
    body.append("    " * depth + f"acc += {g.load('input', 0, idx)};")
    for _ in axes:
        depth -= 1
        body.append("    " * depth + "}")
    if g.req.op_name == "MEAN":
        count = int(np.prod([shape[d] for d in axes], dtype=np.int64))
        body.append(f"const float v0 = acc / {float_literal(count)};")
    else:
        body.append("const float v0 = acc;")
    return body + g.epilogue("gid", "v0"), numel(g.req.out_shape)


@register("SOFTMAX")
def softmax(g: Gen) -> tuple[list[str], int]:
    shape = g.req.out_shape
    n = shape[-1]
    beta = float_literal(g.req.attrs.beta)
    ld = g.load("input", 0, "base + j")
    ldo = g.load("input", 0, "o")
    body = [f"const int base = gid * {n};", "float mx = -INFINITY;",
            f"for (int j = 0; j < {n}; j++) {{ const float v = {ld}; mx = (v > mx || v != v) ? v : mx; }}",
            "float s = 0.0f;",
            f"for (int j = 0; j < {n}; j++) s += exp(({ld} - mx) * {beta});",
            "const float inv = 1.0f / s;",
            f"for (int j = 0; j < {n}; j++) {{",
            "    const int o = base + j;",
            f"    const float v0 = exp(({ldo} - mx) * {beta}) * inv;"]
    body += ["    " + line for line in g.epilogue("o", "v0")]
    body.append("}")
    return body, numel(shape) // n if n else 0
