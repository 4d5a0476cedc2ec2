"""CONV_2D (grouped too) and DEPTHWISE_CONV_2D, NHWC, one work-item per output element.

The channel index is the fastest-varying work-item coordinate, so neighbouring work-items read
the same input pixel and neighbouring filter rows. Padding taps are skipped (they add zero).
"""

from __future__ import annotations

from tflite_jit.backends.opencl.kernels.common import Gen, activation_clamp, register
from tflite_jit.backends.opencl.kernels.tiled import tiled
from tflite_jit.ops.common import numel
from tflite_jit.ops.nn import axis_geometry


def _decompose(oh: int, ow: int, co: int) -> list[str]:
    return [f"const int co = gid % {co};", f"int t = gid / {co};", f"const int ox = t % {ow};",
            f"t /= {ow};", f"const int oy = t % {oh};", f"const int b = t / {oh};"]


def _has_bias(g: Gen) -> bool:
    return len(g.req.inputs) > 2 and g.req.inputs[2] is not None


@register("CONV_2D", "DEPTHWISE_CONV_2D")
def conv(g: Gen) -> tuple[list[str], int]:
    a = g.req.attrs
    depthwise = g.req.op_name == "DEPTHWISE_CONV_2D"
    _, h, w, c = g.req.inputs[0].shape
    fshape = g.req.inputs[1].shape
    out = g.req.out_shape
    _, oh, ow, co = out
    if depthwise:
        _, kh, kw, _ = fshape
    else:
        _, kh, kw, ci = fshape
    ph = axis_geometry(a.padding, h, kh, a.stride_h, a.dilation_h).pad_before
    pw = axis_geometry(a.padding, w, kw, a.stride_w, a.dilation_w).pad_before
    if not depthwise and ci == c and g.req.inputs[1].value is not None:
        return tiled(g, n=out[0], h=h, w=w, c=c, oh=oh, ow=ow, co=co, kh=kh, kw=kw,
                     stride=(a.stride_h, a.stride_w), dilation=(a.dilation_h, a.dilation_w), pad=(ph, pw),
                     weights=g.req.inputs[1].value, has_bias=_has_bias(g), act=a.activation)
    if depthwise and co == c and c % 8 == 0:
        return _depthwise8(g, h, w, c, oh, ow, kh, kw, ph, pw)
    body = _decompose(oh, ow, co)
    body += [f"const int iy0 = oy * {a.stride_h} - {ph};", f"const int ix0 = ox * {a.stride_w} - {pw};",
             "float acc = 0.0f;"]
    if depthwise:
        m = co // c
        body.append(f"const int xbase = b * {h * w * c} + co / {m};" if m > 1 else f"const int xbase = b * {h * w * c} + co;")
    else:
        cog = co // (c // ci)
        body += [f"const int xbase = b * {h * w * c} + (co / {cog}) * {ci};", f"const int wbase = co * {kh * kw * ci};"]
    body += [f"for (int ky = 0; ky < {kh}; ky++) {{",
             f"    const int iy = iy0 + ky * {a.dilation_h};",
             f"    if (iy < 0 || iy >= {h}) continue;",
             f"    for (int kx = 0; kx < {kw}; kx++) {{",
             f"        const int ix = ix0 + kx * {a.dilation_w};",
             f"        if (ix < 0 || ix >= {w}) continue;",
             f"        const int xo = xbase + (iy * {w} + ix) * {c};"]
    if depthwise:
        body.append(f"        acc += {g.load('input', 0, 'xo')} * {g.load('input', 1, f'(ky * {kw} + kx) * {co} + co')};")
    else:
        body += [f"        const int wo = wbase + (ky * {kw} + kx) * {ci};",
                 f"        for (int ci = 0; ci < {ci}; ci++) acc += {g.load('input', 0, 'xo + ci')} * {g.load('input', 1, 'wo + ci')};"]
    body += ["    }", "}"]
    if _has_bias(g):
        body.append(f"acc = acc + {g.load('input', 2, 'co')};")
    body.append(f"const float v0 = {activation_clamp('acc', a.activation)};")
    return body + g.epilogue("gid", "v0"), numel(out)


def _depthwise8(g: Gen, h: int, w: int, c: int, oh: int, ow: int, kh: int, kw: int, ph: int,
                pw: int) -> tuple[list[str], int]:
    """Depth multiplier 1, channels a multiple of 8: a work-item computes 8 channels of one pixel
    with float8 loads (NHWC keeps them contiguous); the taps are unrolled, so the work-item has
    no inner loop and PoCL's work-item loop stays vectorizable."""
    a = g.req.attrs
    cb = c // 8
    body = [f"const int cb = gid % {cb};", f"int t = gid / {cb};", f"const int ox = t % {ow};",
            f"t /= {ow};", f"const int oy = t % {oh};", f"const int b = t / {oh};",
            f"const int iy0 = oy * {a.stride_h} - {ph};", f"const int ix0 = ox * {a.stride_w} - {pw};",
            f"const int xbase = b * {h * w * c} + cb * 8;", "float8 acc = (float8)(0.0f);"]
    for ky in range(kh):
        body.append(f"const int ty{ky} = iy0 + {ky * a.dilation_h};")
    for kx in range(kw):
        body.append(f"const int tx{kx} = ix0 + {kx * a.dilation_w};")
    for ky in range(kh):
        for kx in range(kw):
            xv = g.load8("input", 0, f"xbase + (ty{ky} * {w} + tx{kx}) * {c}")
            wv = g.load8("input", 1, f"{(ky * kw + kx) * c} + cb * 8")
            body.append(f"if (ty{ky} >= 0 && ty{ky} < {h} && tx{kx} >= 0 && tx{kx} < {w}) acc += {xv} * {wv};")
    if _has_bias(g):
        body.append(f"acc = acc + {g.load8('input', 2, 'cb * 8')};")
    for lane in range(8):
        body += ["{", f"  const int co{lane} = cb * 8 + {lane};",
                 f"  const float v0 = {activation_clamp(f'acc.s{lane}', a.activation)};"]
        body += ["  " + s for s in g.epilogue(f"(gid / {cb} * {c} + co{lane})", "v0")]
        body.append("}")
    return body, numel(g.req.out_shape) // 8
