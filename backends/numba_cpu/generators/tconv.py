"""TRANSPOSE_CONV: float32; int8 and int16 (16x8) activations with int8 per-channel weights, equal
to ops/qmath_ops.py to the bit; and dynamic-range ("hybrid": float32 input, int8 weights,
float32 output) equal to ops/qhybrid.py to the bit.

A gather over the output: every output pixel (b, oy, ox) sums the input pixels whose taps reach
it, in the order LiteRT's scatter visits them — input row, input column, input channel
ascending (a later input row reaches the pixel through an earlier filter row). Which (filter
row, input row) pairs reach output row oy is a plan-time table (likewise for columns), so the
kernel never tests a bound. The output channels are held in up to 4 SIMD accumulators
(simd.py's intrinsics; more channels take more panels), each step broadcasting one input value
against weights packed at plan time as [KH, KW, C_in, C_out padded to the panels].

Float: sum of x * w per channel (fast-math: LiteRT's float kernel is a GEMM plus col2im, so the
order is its own and only the float contract applies), + bias, the clamp.

Hybrid (reference_ops::HybridTransposeConv): each image is quantized asymmetrically
(hybridq.py's quantizer, centered values q - zp as float32), and each product becomes
float32((float32(p) * sw[oc]) * sf_b), added in the order above — compiled without fast-math so
every rounding is LiteRT's (p = (q - zp) * w is an integer below 2**16, exact in float32).

int8, while every partial sum stays below 2**24: the float loop above over x - zi and the int8
weights (exact in float32 in any order), requantized by qsimd's vector store (`_int8_simd`; 10x the
int64 loop on the suite's U-Net). Otherwise, and for int16: sum of (x - zi) * w in int64 (exact;
the reference's arithmetic), + bias, then the
per-channel requantization of ops/qmath_ops.py (int8: round-half-up on channel blocks of 8 and
MultiplyByQuantizedMultiplier on the last C mod 8; int16: the int64 overload with its 16-bit
multiplier), + output zero point, the clamp.
"""

from __future__ import annotations

import math

import numpy as np

from tflite_jit.backends.numba_cpu import emit, host, printer
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.generators.qconv import qparams
from tflite_jit.backends.numba_cpu.host import VW
from tflite_jit.backends.numba_cpu.quantized import no_epilogue
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops.base import Quantized
from tflite_jit.ops.qhybrid import HybridAttrs, tconv_geometry

F32 = np.dtype(np.float32)
_CLAMPS = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0),
           # LiteRT's transpose conv clamps with CalculateActivationRange, which has no range for these
           "TANH": (None, None), "SIGN_BIT": (None, None)}
#: accumulator vectors per panel of output channels (more channels: more panels, each its own
#: pass over the taps)
MAX_VECTORS = 4
_FAST = ("@numba.njit(cache=True, nogil=True, fastmath={'reassoc', 'contract', 'nsz', 'arcp'}, "
         "error_model='numpy', boundscheck=False)")
_PRECISE = "@numba.njit(cache=True, nogil=True, error_model='numpy', boundscheck=False)"


def _taps(out: int, inp: int, k: int, stride: int, pad: int) -> tuple[np.ndarray, int]:
    """For every output index o: the (filter index, input index) pairs that reach it, input index
    ascending, as one flat table of rows [count, f0, i0, f1, i1, ...], and the row length."""
    pairs = []
    for o in range(out):
        row = []
        for i in range(inp):
            f = o + pad - i * stride
            if 0 <= f < k:
                row.append((f, i))
        pairs.append(row)
    most = max(1, max(len(r) for r in pairs))
    tab = np.zeros((out, 1 + 2 * most), np.int64)
    for o, row in enumerate(pairs):
        tab[o, 0] = len(row)
        for j, (f, i) in enumerate(row):
            tab[o, 1 + 2 * j] = f
            tab[o, 2 + 2 * j] = i
    return np.ascontiguousarray(tab.reshape(-1)), 1 + 2 * most



def _tap_loop(A: str, nvp: int, oh: int, ow: int, sy: int, sx: int, h: int, wd: int, c: int, kw: int,
              cop: int) -> list[str]:
    """The gather shared by every SIMD form (inside `for bi` / `for p` with `pc` set): per output
    pixel, nvp zeroed accumulators c0.., then each reaching (filter, input) tap's input values
    broadcast from array A as `xv`, with `wr` the packed weights' offset; the caller appends the
    per-form accumulate lines at the same depth."""
    return ([f"        for oy in range({oh}):",
             f"            yo = oy * {sy}",
             f"            for ox in range({ow}):",
             f"                xo_ = ox * {sx}"]
            + [f"                c{j} = zero" for j in range(nvp)]
            + ["                for ty in range(ld(YT, yo)):",
               "                    fy = ld(YT, yo + 1 + 2 * ty)",
               "                    iy = ld(YT, yo + 2 + 2 * ty)",
               "                    for tx in range(ld(XT, xo_)):",
               "                        fx = ld(XT, xo_ + 1 + 2 * tx)",
               "                        ix = ld(XT, xo_ + 2 + 2 * tx)",
               f"                        xb = ((bi * {h} + iy) * {wd} + ix) * {c}",
               f"                        wb = (fy * {kw} + fx) * {c * cop} + pc",
               f"                        for cc in range({c}):",
               f"                            xv = vbcast({A}, xb + cc)",
               f"                            wr = wb + cc * {cop}"])


@register_generator("TRANSPOSE_CONV")
def transpose_conv(req: KernelRequest) -> KernelSource:
    a = req.attrs
    hybrid = isinstance(a, HybridAttrs)
    integer = isinstance(a, Quantized) and not hybrid
    if integer and not hasattr(a, "multipliers"):
        raise Unsupported("TRANSPOSE_CONV: unknown quantized node")
    f = a.base if isinstance(a, Quantized) else a
    no_epilogue(req, "TRANSPOSE_CONV")
    _, w, x = req.inputs[:3]
    b = req.inputs[3] if len(req.inputs) > 3 else None
    if w is None or w.value is None or x is None:
        raise Unsupported("TRANSPOSE_CONV: constant weights only")
    if b is not None and b.value is None:
        raise Unsupported("TRANSPOSE_CONV: the bias must be constant")
    if integer:
        return _int8_simd(req, a) or _integer(req, a)
    if np.dtype(x.dtype) != F32 or (b is not None and np.dtype(b.dtype) != F32):
        raise Unsupported("TRANSPOSE_CONV: float32 input and bias")
    if f.activation not in _CLAMPS:
        raise Unsupported(f"TRANSPOSE_CONV: fused {f.activation}")
    out_shape = tuple(req.out_shape)
    if len(out_shape) != 4 or math.prod(out_shape) == 0 or math.prod(x.shape) == 0:
        raise Unsupported("TRANSPOSE_CONV: empty tensors")
    n, h, wd, c = x.shape
    co, kh, kw, ci = w.shape
    _, oh, ow, _ = out_shape
    wv = np.asarray(w.value)
    if hybrid:
        if wv.dtype != np.int8:
            raise Unsupported("hybrid TRANSPOSE_CONV: int8 weights only")
    elif wv.dtype != F32:
        raise Unsupported("TRANSPOSE_CONV: float32 weights")
    ph, pw = tconv_geometry(f, x.shape, w.shape, out_shape)
    yt, sy = _taps(oh, h, kh, f.stride_h, ph)
    xt, sx = _taps(ow, wd, kw, f.stride_w, pw)
    nv = -(-co // VW)
    nvp = min(nv, MAX_VECTORS)  # accumulator vectors per panel of output channels
    npan = -(-nv // nvp)
    cop = npan * nvp * VW
    wp = np.zeros((kh, kw, ci, cop), F32)
    wp[..., :co] = wv.astype(F32).transpose(1, 2, 3, 0)
    bias = np.zeros(cop, F32)
    if b is not None:
        bias[:co] = np.asarray(b.value, F32).reshape(co)
    lo, hi = _CLAMPS[f.activation]
    A = "XQ" if hybrid else "xf"
    body = [f"xf = x.reshape({n * h * wd * c})", f"of = o.reshape({n * oh * ow * co})"]
    if hybrid:
        body += [f"for bi in range({n}):",
                 f"    SF[bi] = hq_row(xf, bi * {h * wd * c}, {h * wd * c}, XQ, True)"]
    body += ["zero = vsplat(np.float32(0.0))"]
    if lo is not None:
        body.append(f"vlo = vsplat(np.float32({lo}))")
    if hi is not None:
        body.append(f"vhi = vsplat(np.float32({hi}))")
    body += [f"for bi in range({n}):"]
    if hybrid:
        body.append("    sfv = vsplat(ld(SF, bi))")
    body += [f"    for p in range({npan}):",
             f"        pc = p * {nvp * VW}"]
    for j in range(nvp):
        body.append(f"        b{j} = vload(B, pc + {j * VW})")
        if hybrid:
            body.append(f"        s{j} = vload(SW, pc + {j * VW})")
    body += _tap_loop(A, nvp, oh, ow, sy, sx, h, wd, c, kw, cop)
    for j in range(nvp):
        w_ = f"vload(WP, wr + {j * VW})"
        if hybrid:  # float32((float32(p) * sw) * sf), then the add: four roundings, no FMA
            body.append(f"                            c{j} = vadd(c{j}, vmul(vmul(vmul(xv, {w_}), s{j}), sfv))")
        else:
            body.append(f"                            c{j} = vfma(xv, {w_}, c{j})")
    body.append(f"                ob = ((bi * {oh} + oy) * {ow} + ox) * {co} + pc")
    for j in range(nvp):
        v = f"vadd(c{j}, b{j})"
        if lo is not None:
            v = f"vmax({v}, vlo)"
        if hi is not None:
            v = f"vmin({v}, vhi)"
        body.append(f"                vstorem(of, ob + {j * VW}, {v}, {co - j * VW} - pc)")
    names = ["x", "WP", "B", "YT", "XT", "o"]
    args = [Arg("input", 2), Arg("const", value=np.ascontiguousarray(wp.reshape(-1))), Arg("const", value=bias),
            Arg("const", value=yt), Arg("const", value=xt), Arg("output", 0)]
    if hybrid:
        sw = np.zeros(cop, F32)
        sw[:co] = np.broadcast_to(np.asarray(a.w_scales, F32), (co,)) if len(a.w_scales) == 1 else \
            np.asarray(a.w_scales, F32)[:co]
        names += ["SW", "SF", "XQ"]
        args += [Arg("const", value=sw), Arg("const", value=np.zeros(n, F32)),
                 Arg("const", value=np.zeros(n * h * wd * c, F32))]
    src = (printer.PRELUDE + f"# tflite_jit TRANSPOSE_CONV {'hybrid' if hybrid else 'float32'} v2 VW={VW}\n"
           + emit.helper_import(host.SIMD, "vload", "vstorem", "vbcast", "vsplat", "vfma", "vadd", "vmul", "vmax",
                                "vmin", "ld") + "\n\n")
    if hybrid:
        src += emit.helper_import(host.HYBRIDQ, "hq_row") + "\n\n"
    src += ((_PRECISE if hybrid else _FAST) + f"\ndef entry({', '.join(names)}):\n"
            + "\n".join("    " + ln for ln in body) + "\n")
    return KernelSource(src, "entry", args)


# ---- int8 / int16 -----------------------------------------------------------------------------------


def _int8_simd(req: KernelRequest, a) -> KernelSource | None:
    """int8 TRANSPOSE_CONV on the float kernel's SIMD loop, or None where it cannot be exact.

    (x - zi) and the int8 weights are small integers, so while every partial sum stays below 2**24
    (checked here from the zero point, the largest weight and the taps per pixel) float32 adds
    them exactly in any order; qsimd's requantizing store then adds the int32 bias and
    requantizes per channel with LiteRT's rounding (RHU2 on channel blocks of 8, MBQM on the
    rest, or MBQM everywhere). The int64 loop below stays for int16 and for larger sums."""
    f = a.base
    _, w, x = req.inputs[:3]
    b = req.inputs[3] if len(req.inputs) > 3 else None
    if np.dtype(a.dtype) != np.dtype(np.int8) or np.dtype(x.dtype) != np.dtype(np.int8):
        return None
    if a.rounding not in ("blocks8", "mbqm"):
        return None
    out_shape = tuple(req.out_shape)
    if len(out_shape) != 4 or math.prod(out_shape) == 0 or math.prod(x.shape) == 0:
        return None
    n, h, wd, c = x.shape
    co, kh, kw, ci = w.shape
    _, oh, ow, _ = out_shape
    wv = np.asarray(w.value).astype(np.int64)
    ph, pw = tconv_geometry(f, x.shape, w.shape, out_shape)
    yt, sy = _taps(oh, h, kh, f.stride_h, ph)
    xt, sx = _taps(ow, wd, kw, f.stride_w, pw)
    zi = int(a.zi)
    taps = int(yt.reshape(oh, sy)[:, 0].max()) * int(xt.reshape(ow, sx)[:, 0].max())
    if taps * c * max(abs(-128 - zi), abs(127 - zi)) * max(1, int(np.abs(wv).max())) >= 2 ** 24:
        return None
    nv = -(-co // VW)
    nvp = min(nv, MAX_VECTORS)
    npan = -(-nv // nvp)
    cop = npan * nvp * VW
    wp = np.zeros((kh, kw, ci, cop), F32)
    wp[..., :co] = wv.astype(F32).transpose(1, 2, 3, 0)
    bias = np.zeros(co, np.int64) if b is None else np.asarray(b.value).astype(np.int64).reshape(co)
    mbqm = np.ones(co, bool) if a.rounding == "mbqm" else np.arange(co) >= co // 8 * 8
    qp = qparams(a, co, bias, mbqm, cop - co)
    has_ls = int(bool(np.any(qp[2])))
    tail = f"QP, {cop}, QS[0], QS[1], QS[2], {has_ls}"
    body = [f"xf = x.reshape({n * h * wd * c})", f"of = o.reshape({n * oh * ow * co})",
            "zi = np.int32(QS[3])",
            f"for i in range({n * h * wd * c}):",
            "    XF[i] = np.float32(np.int32(xf[i]) - zi)",
            "zero = vsplat(np.float32(0.0))",
            f"for bi in range({n}):",
            f"    for p in range({npan}):",
            f"        pc = p * {nvp * VW}"]
    body += _tap_loop("XF", nvp, oh, ow, sy, sx, h, wd, c, kw, cop)
    body += [f"                            c{j} = vfma(xv, vload(WP, wr + {j * VW}), c{j})" for j in range(nvp)]
    body.append(f"                ob = ((bi * {oh} + oy) * {ow} + ox) * {co} + pc")
    for j in range(nvp):
        body += [f"                if pc + {j * VW} < {co}:",
                 f"                    qstm(of, ob + {j * VW}, c{j}, pc + {j * VW}, {tail}, {co - j * VW} - pc)"]
    names = ["x", "WP", "QP", "QS", "YT", "XT", "XF", "o"]
    args = [Arg("input", 2), Arg("const", value=np.ascontiguousarray(wp.reshape(-1))), Arg("const", value=qp),
            Arg("const", value=np.array([int(a.zo), int(a.act_min), int(a.act_max), zi], np.int32)),
            Arg("const", value=yt), Arg("const", value=xt),
            Arg("const", value=np.zeros(n * h * wd * c, F32)), Arg("output", 0)]
    src = (printer.PRELUDE + f"# tflite_jit TRANSPOSE_CONV int8 simd v1 VW={VW}\n"
           + emit.helper_import(host.SIMD, "vload", "vbcast", "vsplat", "vfma", "ld") + "\n"
           + emit.helper_import(host.QSIMD, "qstm") + "\n\n"
           + _FAST + f"\ndef entry({', '.join(names)}):\n" + "\n".join("    " + ln for ln in body) + "\n")
    return KernelSource(src, "entry", args)



_REQUANT = _PRECISE + '''
def requant(acc, m, sh, mode):
    if mode == 2:
        m16 = (m + 32768) >> 16 if m < 0x7FFF0000 else 0x7FFF
        t = 15 - sh
        return (acc * m16 + (1 << (t - 1))) >> t
    ls = sh if sh > 0 else 0
    rs = -sh if sh < 0 else 0
    v = acc << ls
    v = ((v + 2147483648) & 0xFFFFFFFF) - 2147483648
    if v == -2147483648 and m == -2147483648:
        t = 2147483647
    else:
        t = (v * m + 1073741824) >> 31
    if mode == 0:
        if rs == 0:
            return t
        return (t + (1 << (rs - 1))) >> rs
    mask = (1 << rs) - 1
    rem = t & mask
    thr = (mask >> 1) + (1 if t < 0 else 0)
    return (t >> rs) + (1 if rem > thr else 0)
'''


def _integer(req: KernelRequest, a) -> KernelSource:
    """int8 / int16 TRANSPOSE_CONV (ops/qmath_ops.py `_tconv_reference`)."""
    f = a.base
    _, w, x = req.inputs[:3]
    b = req.inputs[3] if len(req.inputs) > 3 else None
    dt = np.dtype(a.dtype)
    if np.dtype(x.dtype) != dt or dt not in (np.dtype(np.int8), np.dtype(np.int16)):
        raise Unsupported(f"quantized TRANSPOSE_CONV on {x.dtype} runs on reference")
    out_shape = tuple(req.out_shape)
    if len(out_shape) != 4 or math.prod(out_shape) == 0 or math.prod(x.shape) == 0:
        raise Unsupported("TRANSPOSE_CONV: empty tensors")
    n, h, wd, c = x.shape
    co, kh, kw, _ = w.shape
    _, oh, ow, _ = out_shape
    ph, pw = tconv_geometry(f, x.shape, w.shape, out_shape)
    yt, sy = _taps(oh, h, kh, f.stride_h, ph)
    xt, sx = _taps(ow, wd, kw, f.stride_w, pw)
    wp = np.ascontiguousarray(np.asarray(w.value).astype(np.int64).transpose(1, 2, 3, 0).reshape(-1))
    bias = np.zeros(co, np.int64) if b is None else np.asarray(b.value).astype(np.int64).reshape(co)
    m = np.ascontiguousarray(np.broadcast_to(np.asarray(a.multipliers, np.int64), (co,)))
    s = np.ascontiguousarray(np.broadcast_to(np.asarray(a.shifts, np.int64), (co,)))
    if a.rounding == "mbqm64":
        mode = np.full(co, 2, np.int64)
    elif a.rounding == "mbqm":
        mode = np.ones(co, np.int64)
    elif a.rounding == "blocks8":
        mode = np.where(np.arange(co) < co // 8 * 8, 0, 1).astype(np.int64)
    else:
        raise Unsupported(f"quantized TRANSPOSE_CONV: rounding {a.rounding} runs on reference")
    body = [
        f"xf = x.reshape({n * h * wd * c})",
        f"of = o.reshape({n * oh * ow * co})",
        f"for bi in range({n}):",
        f"    for oy in range({oh}):",
        f"        yo = oy * {sy}",
        f"        for ox in range({ow}):",
        f"            xo_ = ox * {sx}",
        f"            for oc in range({co}):",
        "                ACC[oc] = B[oc]",
        "            for ty in range(YT[yo]):",
        "                fy = YT[yo + 1 + 2 * ty]",
        "                iy = YT[yo + 2 + 2 * ty]",
        "                for tx in range(XT[xo_]):",
        "                    fx = XT[xo_ + 1 + 2 * tx]",
        "                    ix = XT[xo_ + 2 + 2 * tx]",
        f"                    xb = ((bi * {h} + iy) * {wd} + ix) * {c}",
        f"                    wb = (fy * {kw} + fx) * {c * co}",
        f"                    for cc in range({c}):",
        f"                        xv = np.int64(xf[xb + cc]) - {int(a.zi)}",
        f"                        wr = wb + cc * {co}",
        f"                        for oc in range({co}):",
        "                            ACC[oc] += xv * WP[wr + oc]",
        f"            ob = ((bi * {oh} + oy) * {ow} + ox) * {co}",
        f"            for oc in range({co}):",
        f"                v = requant(ACC[oc], M[oc], S[oc], MODE[oc]) + {int(a.zo)}",
        f"                v = min(max(v, {int(a.act_min)}), {int(a.act_max)})",
        "                of[ob + oc] = v",
    ]
    names = ["x", "WP", "B", "M", "S", "MODE", "YT", "XT", "ACC", "o"]
    args = [Arg("input", 2)] + [Arg("const", value=v) for v in (wp, bias, m, s, mode, yt, xt)]
    args += [Arg("const", value=np.zeros(co, np.int64)), Arg("output", 0)]
    src = (printer.PRELUDE + f"# tflite_jit TRANSPOSE_CONV {dt.name} v1\n\n" + _REQUANT + "\n\n" + _PRECISE
           + f"\ndef entry({', '.join(names)}):\n" + "\n".join("    " + ln for ln in body) + "\n")
    return KernelSource(src, "entry", args)
