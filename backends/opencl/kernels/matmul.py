"""FULLY_CONNECTED and BATCH_MATMUL: one work-item per output element, a dot product each."""

from __future__ import annotations

import numpy as np

from tflite_jit.backends.opencl.kernels.common import Gen, activation_clamp, register
from tflite_jit.backends.opencl.kernels.tiled import tiled
from tflite_jit.ops.common import c_strides, numel


@register("FULLY_CONNECTED")
def fully_connected(g: Gen) -> tuple[list[str], int]:
    units, depth = g.req.inputs[1].shape
    has_bias = len(g.req.inputs) > 2 and g.req.inputs[2] is not None
    if g.req.inputs[1].value is not None:  # constant weights: the register-tiled kernel
        rows = numel(g.req.out_shape) // units
        wts = np.asarray(g.req.inputs[1].value, np.float32).reshape(units, 1, 1, depth)
        return tiled(g, n=rows, h=1, w=1, c=depth, oh=1, ow=1, co=units, kh=1, kw=1, stride=(1, 1),
                     dilation=(1, 1), pad=(0, 0), weights=wts, has_bias=has_bias, act=g.req.attrs.activation)
    body = [f"const int u = gid % {units};", f"const int r = gid / {units};",
            f"const int xo = r * {depth};", f"const int wo = u * {depth};", "float acc = 0.0f;",
            f"for (int k = 0; k < {depth}; k++) acc += {g.load('input', 0, 'xo + k')} * {g.load('input', 1, 'wo + k')};"]
    if len(g.req.inputs) > 2 and g.req.inputs[2] is not None:
        body.append(f"acc = acc + {g.load('input', 2, 'u')};")
    body.append(f"const float v0 = {activation_clamp('acc', g.req.attrs.activation)};")
    return body + g.epilogue("gid", "v0"), numel(g.req.out_shape)


@register("BATCH_MATMUL")
def batch_matmul(g: Gen) -> tuple[list[str], int]:
    a = g.req.attrs
    xs, ys = tuple(g.req.inputs[0].shape), tuple(g.req.inputs[1].shape)
    out = g.req.out_shape
    m, n = out[-2], out[-1]
    k = xs[-2] if a.adj_x else xs[-1]
    batch = out[:-2]
    body = [f"const int n = gid % {n};", f"const int m = (gid / {n}) % {m};",
            f"const int bf = gid / {m * n};"]
    offs = {}
    for name, s in (("x", xs), ("y", ys)):
        sb = (1,) * (len(batch) - len(s[:-2])) + s[:-2]
        mat = s[-1] * s[-2]
        bstr = c_strides(sb)
        ostr = c_strides(batch)
        terms = []
        for d, (sd, od) in enumerate(zip(sb, batch)):
            if sd != 1:
                terms.append(f"((bf / {ostr[d]}) % {od}) * {bstr[d] * mat}")
        offs[name] = " + ".join(terms) or "0"
    body += [f"const int xb = {offs['x']};", f"const int yb = {offs['y']};", "float acc = 0.0f;"]
    xi = f"xb + kk * {m} + m" if a.adj_x else f"xb + m * {k} + kk"
    yi = f"yb + n * {k} + kk" if a.adj_y else f"yb + kk * {n} + n"
    body.append(f"for (int kk = 0; kk < {k}; kk++) acc += {g.load('input', 0, xi)} * {g.load('input', 1, yi)};")
    body.append("const float v0 = acc;")
    return body + g.epilogue("gid", "v0"), numel(out)
