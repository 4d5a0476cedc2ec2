"""Register-tiled dot products for CONV_2D (one group) and FULLY_CONNECTED.

PERFORMANCE.md §3 measured PoCL at 1-5 GF/s for one output per work-item (its work-item loop
cannot vectorize around an inner reduction loop) and 18-24 GF/s with explicit vector register
tiles. Here a work-item computes PX output pixels x 8 output channels: weights are packed once
at plan time into [CO/8][KH][KW][CI][8] panels (zero-padded), so each reduction step is one float8
load and PX float8 multiply-adds over a broadcast input value. The bias, the root's activation
and the cluster's epilogue then run per lane.
"""

from __future__ import annotations

import numpy as np

from tflite_jit.backends.opencl.kernels.common import Gen, activation_clamp
from tflite_jit.ops import expr as E

LANES = 8


def pack_weights(w: np.ndarray) -> np.ndarray:
    """[CO, KH, KW, CI] -> [CO/8, KH, KW, CI, 8] float32, zero-padded to whole panels."""
    co, kh, kw, ci = w.shape
    cb = -(-co // LANES)
    p = np.zeros((cb * LANES, kh, kw, ci), np.float32)
    p[:co] = w
    return np.ascontiguousarray(p.reshape(cb, LANES, kh, kw, ci).transpose(0, 2, 3, 4, 1))


def tiled(g: Gen, *, n: int, h: int, w: int, c: int, oh: int, ow: int, co: int, kh: int, kw: int,
          stride: tuple[int, int], dilation: tuple[int, int], pad: tuple[int, int],
          weights: np.ndarray, has_bias: bool, act: str) -> tuple[list[str], int]:
    npix = n * oh * ow
    # the epilogue is printed once per lane and pixel: keep big fused epilogues to 8 copies
    epilogue_nodes = sum(len(E.nodes(o.expr)) for o in g.req.outputs)
    px = max(1, min(4 if epilogue_nodes <= 64 else 1, npix))
    cb = -(-co // LANES)
    tiles = -(-npix // px)
    wname = g.param("const", 0, pack_weights(weights))
    half = g.fmt("const", 0) == "f16"
    wtype = "half" if half else "float"
    needs_check = not (kh == 1 and kw == 1 and pad == (0, 0) and (oh - 1) * stride[0] < h
                       and (ow - 1) * stride[1] < w)
    body = [f"const int cb = gid % {cb};", f"const int pt = gid / {cb};",
            f"__global const {wtype}* restrict wp = {wname} + cb * {kh * kw * c * LANES};"]
    for p in range(px):
        body += [f"const int pix{p} = min(pt * {px} + {p}, {npix - 1});",
                 f"const int ox{p} = pix{p} % {ow};", f"const int oy{p} = (pix{p} / {ow}) % {oh};",
                 f"const int xb{p} = (pix{p} / {oh * ow}) * {h * w * c};",
                 f"const int iy0{p} = oy{p} * {stride[0]} - {pad[0]};",
                 f"const int ix0{p} = ox{p} * {stride[1]} - {pad[1]};",
                 f"float8 acc{p} = (float8)(0.0f);"]
    body += [f"for (int ky = 0; ky < {kh}; ky++) {{", f"  for (int kx = 0; kx < {kw}; kx++) {{",
             f"    __global const {wtype}* restrict wk = wp + (ky * {kw} + kx) * {c * LANES};"]
    for p in range(px):
        body += [f"    const int iy{p} = iy0{p} + ky * {dilation[0]};",
                 f"    const int ix{p} = ix0{p} + kx * {dilation[1]};",
                 f"    const int ok{p} = " + (f"iy{p} >= 0 && iy{p} < {h} && ix{p} >= 0 && ix{p} < {w};"
                                               if needs_check else "1;"),
                 f"    const int xo{p} = ok{p} ? xb{p} + (iy{p} * {w} + ix{p}) * {c} : 0;"]
    body += [f"    for (int ci = 0; ci < {c}; ci++) {{", f"      const float8 wv = {'vload_half8' if half else 'vload8'}(ci, wk);"]
    for p in range(px):
        xv = g.load("input", 0, f"xo{p} + ci")
        body.append(f"      acc{p} += (ok{p} ? {xv} : 0.0f) * wv;" if needs_check else f"      acc{p} += {xv} * wv;")
    body += ["    }", "  }", "}"]
    for p in range(px):
        body.append(f"if (pt * {px} + {p} < {npix}) {{")
        for lane in range(LANES):
            guard = f"cb * {LANES} + {lane} < {co}" if co % LANES else "1"
            body.append(f"  if ({guard}) {{")
            body.append(f"    const int co{lane} = cb * {LANES} + {lane};")
            v = f"acc{p}.s{lane}"
            if has_bias:
                v = f"({v} + {g.load('input', 2, f'co{lane}')})"
            body.append(f"    const float v0 = {activation_clamp(v, act)};")
            body += ["    " + s for s in g.epilogue(f"(pix{p} * {co} + co{lane})", "v0")]
            body.append("  }")
        body.append("}")
    return body, tiles * cb
