"""AVERAGE_POOL_2D / MAX_POOL_2D, NHWC, one work-item per output element. Average divides by
the in-image taps only (LiteRT's rule); max propagates NaN like the NumPy reference."""

from __future__ import annotations

from tflite_jit.backends.opencl.kernels.common import Gen, activation_clamp, register
from tflite_jit.ops.common import numel
from tflite_jit.ops.nn import axis_geometry


@register("AVERAGE_POOL_2D", "MAX_POOL_2D")
def pool(g: Gen) -> tuple[list[str], int]:
    a = g.req.attrs
    is_max = g.req.op_name == "MAX_POOL_2D"
    _, h, w, c = g.req.inputs[0].shape
    _, oh, ow, _ = g.req.out_shape
    ph = axis_geometry(a.padding, h, a.filter_h, a.stride_h, 1).pad_before
    pw = axis_geometry(a.padding, w, a.filter_w, a.stride_w, 1).pad_before
    body = [f"const int ch = gid % {c};", f"int t = gid / {c};", f"const int ox = t % {ow};",
            f"t /= {ow};", f"const int oy = t % {oh};", f"const int b = t / {oh};",
            f"const int iy0 = oy * {a.stride_h} - {ph};", f"const int ix0 = ox * {a.stride_w} - {pw};",
            "float acc = -INFINITY;" if is_max else "float acc = 0.0f;", "int cnt = 0;",
            f"for (int ky = 0; ky < {a.filter_h}; ky++) {{",
            "    const int iy = iy0 + ky;",
            f"    if (iy < 0 || iy >= {h}) continue;",
            f"    for (int kx = 0; kx < {a.filter_w}; kx++) {{",
            "        const int ix = ix0 + kx;",
            f"        if (ix < 0 || ix >= {w}) continue;",
            f"        const float v = {g.load('input', 0, f'((b * {h} + iy) * {w} + ix) * {c} + ch')};"]
    body.append("        acc = (v > acc || v != v) ? v : acc;" if is_max else "        acc += v;")
    body += ["        cnt++;", "    }", "}"]
    if not is_max:
        body.append("acc = acc / (float)cnt;")
    body.append(f"const float v0 = {activation_clamp('acc', a.activation)};")
    return body + g.epilogue("gid", "v0"), numel(g.req.out_shape)
