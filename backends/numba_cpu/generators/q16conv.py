"""int16x8 CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (int16 activations with zero point 0,
int8 symmetric per-channel weights, int64 / int32 / no bias), bit-exact with ops/qnn.py.

Accumulation: float64. Every product of an int16 and an int8 is an integer of at most 2**22 in
magnitude, and a float64 sum of integers is exact while its partial sums stay below 2**53, in any
order (checked per output channel at plan time from the weights: sum |w| * 2**15 < 2**53, i.e.
any real layer); so the sum equals the reference's int64 accumulator. float64 keeps the inner
loops plain (LLVM vectorizes them over the output channels, 8 lanes) where int64 products would
need the slow vpmullq. CONV_2D goes further: input channels in pairs are summed into int32
lanes (16 per vector; a pair adds at most 2**23, so the lanes are flushed into the float64
accumulators every 255 pairs, before they could wrap): 2-6x faster than float64 on 64-256
channel layers (A/B in one process). Activations are walked one at a time against a row of weights for all output channels
(weights packed [tap][ci][CO] as int8); a zero activation skips its row (ReLU outputs and a
padded border are mostly zeros, and skipping a zero term changes no sum).

Requantization (ops/qnn.py `_requantize`, per channel, in int64): 'mbqm64' (int64 bias, conv and
depthwise: the 16-bit reduced multiplier, half up by 2**(15 - shift)), 'double' (int64 bias,
FULLY_CONNECTED: round(double(acc) * multiplier) half away from zero) and 'rhu2' (int32 or no
bias: ruy's SRDHM of the int32-wrapped accumulator, half up); then the activation clamp. The clamp
bounds are run-time arguments, so a retrained twin of a model reuses the generated code.

Kernels are compiled without fastmath: the 'double' rounding must not be contracted or
reassociated. Grouped convolutions, run-time filters and 4-D FULLY_CONNECTED filters run on
reference.
"""

from __future__ import annotations

import math

import numpy as np

from tflite_jit.backends.numba_cpu import emit, printer
from tflite_jit.backends.numba_cpu.quantized import no_epilogue
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops.base import Quantized
from tflite_jit.ops.nn import axis_geometry

I16 = np.dtype(np.int16)
#: bump when the generated code changes meaning (printed into every module)
Q16VERSION = "1"
#: float64 sums of integers are exact below this magnitude
EXACT64 = float(1 << 53)
#: serial multiply-adds per second assumed for the threading decision (measured order)
SERIAL_MACS = 4e9
#: adjacent output pixels a CONV_2D step computes where the input has at most PIXELS_MAX_C
#: channels (they share the weight loads and the loop overhead of a short channel loop: 3.6x on
#: a 3-channel stem); deeper inputs go one pixel at a time and skip zero activations (2x faster
#: than 4 pixels on 64-256 channels at half zeros, measured)
PIXELS = 4
PIXELS_MAX_C = 8
#: single-pixel convolutions take this many input channels per pass over the accumulators
CI_GROUP = 2
#: input-channel pairs accumulate in int32 lanes, flushed into float64 (see _int32_pairs)
INT32_ACC = True
PAIRS_PER_FLUSH = 255


def is_int16(req: KernelRequest) -> bool:
    a = req.attrs
    return isinstance(a, Quantized) and hasattr(a, "multipliers") and np.dtype(a.dtype) == I16


# ---- checks and per-channel tables --------------------------------------------------------------


def _check(req: KernelRequest, w_dims: int) -> None:
    a = req.attrs
    no_epilogue(req, f"quantized {req.op_name}")
    x = req.inputs[0]
    if x is None or np.dtype(x.dtype) != I16 or np.dtype(req.outputs[0].arg.dtype) != I16:
        raise Unsupported(f"int16 {req.op_name}: input and output must be int16")
    if any(math.prod(o.arg.shape) == 0 for o in req.outputs) or math.prod(x.shape) == 0:
        raise Unsupported(f"{req.op_name}: empty tensor")
    w = req.inputs[1] if len(req.inputs) > 1 else None
    if w is None or w.value is None or np.dtype(w.dtype) != np.dtype(np.int8) or len(w.shape) != w_dims:
        raise Unsupported(f"int16 {req.op_name}: the filter must be a constant {w_dims}-D int8 tensor")
    b = req.inputs[2] if len(req.inputs) > 2 else None
    if b is not None and b.value is None:
        raise Unsupported(f"int16 {req.op_name}: the bias must be constant")
    if a.in_zp or a.out_zp or any(a.w_zps):
        raise Unsupported(f"int16 {req.op_name}: non-zero zero points run on reference")
    if a.rounding not in ("mbqm64", "double", "rhu2"):
        raise Unsupported(f"int16 {req.op_name}: rounding {a.rounding} runs on reference")


def _bias(req: KernelRequest, n: int) -> np.ndarray:
    b = req.inputs[2] if len(req.inputs) > 2 else None
    return np.zeros(n, np.int64) if b is None else np.asarray(b.value).reshape(-1).astype(np.int64)


def _exact(req: KernelRequest, wk: np.ndarray) -> None:
    """wk [n_out, K] int weights: refuse a channel whose float64 sums could leave the exact range."""
    bound = np.abs(wk.astype(np.float64)).sum(axis=1) * 32768.0
    if np.any(bound >= EXACT64):
        raise Unsupported(f"int16 {req.op_name}: a float64 accumulator could reach {bound.max():.3g} >= 2**53")


def _tables(req: KernelRequest, n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(RQ int64 [rows, n], RF float64 [n], requantization lines): the lines turn `acc[co]`
    (float64, exact integer) into `q` (int64, before the clamp)."""
    a = req.attrs
    m = np.broadcast_to(np.asarray(a.multipliers, np.int64), (n,))
    s = np.broadcast_to(np.asarray(a.shifts, np.int64), (n,))
    bias = _bias(req, n)
    rf = np.zeros(n, np.float64)
    if a.rounding == "mbqm64":
        m16 = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
        t = 15 - s
        if np.any(t < 1) or np.any(t > 62):
            raise Unsupported(f"int16 {req.op_name}: multiplier shift out of range (runs on reference)")
        rq = np.stack([bias, m16, np.left_shift(np.int64(1), t - 1), t])
        lines = ["v = np.int64(acc[co]) + RQ[co]",
                 f"q = (v * RQ[{n} + co] + RQ[{2 * n} + co]) >> RQ[{3 * n} + co]"]
    elif a.rounding == "double":
        rf = np.broadcast_to(np.asarray(a.real_multipliers, np.float64), (n,)).copy()
        rq = bias[None, :]
        lines = ["v = np.int64(acc[co]) + RQ[co]",
                 "p = np.float64(v) * RF[co]",
                 "ap = abs(p)",
                 "fl = math.floor(ap)",
                 "if ap - fl >= 0.5:",
                 "    fl += 1.0",
                 "if p < 0.0:",
                 "    fl = -fl",
                 "fl = min(max(fl, flo), fhi)",
                 "q = np.int64(fl)"]
    else:  # rhu2: SRDHM(wrap32(acc << ls), M), then >> rs rounded half up
        ls, rs = np.maximum(s, 0), np.maximum(-s, 0)
        if np.any(ls > 31) or np.any(rs > 31):
            raise Unsupported(f"int16 {req.op_name}: multiplier shift out of range (runs on reference)")
        half = np.where(rs > 0, np.left_shift(np.int64(1), np.maximum(rs - 1, 0)), 0)
        rq = np.stack([bias, m, ls, rs, half])
        lines = ["v = (np.int64(acc[co]) + RQ[co]) << RQ[{2n} + co]".replace("{2n}", str(2 * n)),
                 "v = ((v + 2147483648) & 4294967295) - 2147483648",
                 f"t = (v * RQ[{n} + co] + 1073741824) >> 31",
                 f"q = (t + RQ[{4 * n} + co]) >> RQ[{3 * n} + co]"]
    return np.ascontiguousarray(rq.astype(np.int64).reshape(-1)), rf, lines


def _store(n: int, ob: str, lines: list[str]) -> list[str]:
    return [f"for co in range({n}):"] + ["    " + ln for ln in lines] + [
        "    of[" + ob + " + co] = np.int16(min(max(q, lo), hi))"]


def _scalars(req: KernelRequest) -> np.ndarray:
    a = req.attrs
    return np.array([int(a.act_min), int(a.act_max)], np.int64)


def _module(name: str, body: list[str], params: str, parallel: bool) -> str:
    deco = ("@numba.njit(cache=True, nogil=True, error_model='numpy', boundscheck=False, "
            f"parallel={bool(parallel)})")
    return (printer.PRELUDE + f"# tflite_jit int16x8 {name} v{Q16VERSION}\n\n\n" + deco + "\n"
            + f"def entry({params}):\n" + "\n".join("    " + ln for ln in body) + "\n")


_HEAD = ["lo = np.int64(QS[0])", "hi = np.int64(QS[1])", "flo = np.float64(lo)", "fhi = np.float64(hi)"]


# ---- CONV_2D / DEPTHWISE_CONV_2D ---------------------------------------------------------------------


def _conv_like(req: KernelRequest, depthwise: bool) -> KernelSource:
    _check(req, 4)
    a = req.attrs
    f = a.base
    x, w = req.inputs[0], req.inputs[1]
    if len(x.shape) != 4:
        raise Unsupported(f"int16 {req.op_name}: 4-D input only")
    nimg, H, W, C = x.shape
    wv = np.asarray(w.value)
    if depthwise:
        _, KH, KW, CO = wv.shape
        if C < 1 or CO % C:
            raise Unsupported("DEPTHWISE_CONV_2D: filter channels are not a multiple of input channels")
        mult = CO // C
        _exact(req, wv.reshape(KH * KW, CO).T)
        wp = np.ascontiguousarray(wv.reshape(-1))  # [tap][CO]
    else:
        CO, KH, KW, CI = wv.shape
        if CI != C:
            raise Unsupported("int16 CONV_2D: grouped convolution runs on reference")
        _exact(req, wv.reshape(CO, -1))
        wp = np.ascontiguousarray(wv.reshape(CO, -1).T.reshape(-1))  # [tap][ci][CO]
    SH, SW = f.stride
    DH, DW = f.dilation
    if min(SH, SW, DH, DW) < 1:
        raise Unsupported(f"{req.op_name}: stride and dilation must be >= 1")
    gh = axis_geometry(f.padding, H, KH, SH, DH)
    gw = axis_geometry(f.padding, W, KW, SW, DW)
    OH, OW = gh.out, gw.out
    if tuple(req.out_shape) != (nimg, OH, OW, CO):
        raise Unsupported(f"output shape {req.out_shape} != {(nimg, OH, OW, CO)}")
    pt, pl = gh.pad_before, gw.pad_before
    HP = max(H + pt, (OH - 1) * SH + (KH - 1) * DH + 1)
    WP = max(W + pl, (OW - 1) * SW + (KW - 1) * DW + 1)
    padded = (HP, WP) != (H, W) or pt or pl
    if not padded:
        HP, WP = H, W
    rq, rf, requant = _tables(req, CO)
    taps = [(kh * DH * WP + kw * DW) * C for kh in range(KH) for kw in range(KW)]
    macs = nimg * OH * OW * CO * KH * KW * (1 if depthwise else C)
    parallel = emit.want_parallel(req, macs / SERIAL_MACS) and nimg * OH > 1
    A = "XP" if padded else "xf"
    body = [f"xf = x.reshape({nimg * H * W * C})", f"of = o.reshape({nimg * OH * OW * CO})"] + _HEAD
    if padded:  # zero point 0: the scratch's border stays zero
        body += [f"for rr in range({nimg * H}):",
                 f"    bi = rr // {H}",
                 f"    src = rr * {W * C}",
                 f"    dst = ((bi * {HP} + rr - bi * {H} + {pt}) * {WP} + {pl}) * {C}",
                 f"    for q in range({W * C}):",
                 "        XP[dst + q] = xf[src + q]"]
    rows = emit.prange_head("r", 0, nimg * OH) if parallel else [f"for r in range({nimg * OH}):"]
    inner = [f"bi = r // {OH}", f"oh = r - bi * {OH}", f"rb = (bi * {HP} + oh * {SH}) * {WP * C}"]
    npix = 1 if depthwise or C > PIXELS_MAX_C else min(PIXELS, OW)
    nq = OW // npix
    inner += [f"acc{p} = np.empty({CO}, np.float64)" for p in range(npix)]
    if not depthwise:
        inner.append(f"a32 = np.zeros({CO}, np.int32)")
    inner += [f"for q in range({nq}):"] + ["    " + ln for ln in _conv_pixels(
        npix, "q", C, CO, SW, taps, A, depthwise, mult if depthwise else 1, requant, OW)]
    if nq * npix < OW:
        inner += [f"for q in range({nq * npix}, {OW}):"] + ["    " + ln for ln in _conv_pixels(
            1, "q", C, CO, SW, taps, A, depthwise, mult if depthwise else 1, requant, OW)]
    body += rows + ["    " + ln for ln in inner]
    params = "x, XP, TO, Wp, RQ, RF, QS, o"
    args = [Arg("input", 0), Arg("const", value=np.zeros(nimg * HP * WP * C if padded else 1, I16)),
            Arg("const", value=np.array(taps, np.int64)),
            Arg("const", value=wp), Arg("const", value=rq), Arg("const", value=rf),
            Arg("const", value=_scalars(req)), Arg("output", 0)]
    name = f"{req.op_name} {a.rounding} {nimg}x{H}x{W}x{C} -> {CO} k{KH}x{KW}"
    return KernelSource(_module(name, body, params, parallel), "entry", args, parallel)


def _conv_pixels(npix: int, q: str, C: int, CO: int, SW: int, taps: list[int], A: str, depthwise: bool,
                 mult: int, requant: list[str], OW: int) -> list[str]:
    """The body for `npix` adjacent output pixels from column `q` * npix (npix 1: column `q`):
    they share each weight row. A single pixel skips zero activations."""
    ow0 = f"{q} * {npix}" if npix > 1 else q
    out = [f"ow0 = {ow0}", f"base = rb + ow0 * {SW * C}"]
    if depthwise:  # one pass over the channels, every tap summed in a register (literal offsets)
        ci = "co" if mult == 1 else f"co // {mult}"
        terms = [f"np.float64({A}[base + {off} + {ci}]) * Wp[{t * CO} + co]" for t, off in enumerate(taps)]
        out += [f"for co in range({CO}):", "    s = " + terms[0]] + [f"    s += {tm}" for tm in terms[1:]]
        out.append("    acc0[co] = s")
        return out + _store(CO, f"(r * {OW} + ow0) * {CO}", [ln.replace("acc[co]", "acc0[co]") for ln in requant])
    if npix == 1 and min(CI_GROUP, C) == 2 and INT32_ACC:
        return out + _int32_pairs(C, CO, A, len(taps)) + _store(
            CO, f"(r * {OW} + ow0) * {CO}", [x.replace("acc[co]", "acc0[co]") for x in requant])
    for p in range(npix):
        out += [f"for co in range({CO}):", f"    acc{p}[co] = 0.0"]
    # taps as a loop over the offset table TO (unrolled taps cost compile time, not run time)
    out += [f"for t in range({len(taps)}):", "    xb = base + TO[t]"]
    g = min(CI_GROUP, C) if npix == 1 else 1
    if g > 1:  # g activations per pass over the weight rows (one load and store of acc)
        xs = [f"x{j}" for j in range(g)]
        body = [f"for cg in range({C // g}):", f"    ci = cg * {g}"]
        body += [f"    {xj} = np.float64({A}[xb + ci + {j}])" for j, xj in enumerate(xs)]
        body += ["    if " + " or ".join(f"{xj} != 0.0" for xj in xs) + ":",
                 f"        wr = t * {C * CO} + ci * {CO}",
                 f"        for co in range({CO}):",
                 "            acc0[co] += " + " + ".join(f"{xj} * Wp[wr + {j * CO} + co]" for j, xj in enumerate(xs))]
        for c in range(C // g * g, C):
            body += [f"xv = np.float64({A}[xb + {c}])",
                     "if xv != 0.0:",
                     f"    wr = t * {C * CO} + {c * CO}",
                     f"    for co in range({CO}):",
                     "        acc0[co] += xv * Wp[wr + co]"]
    elif npix == 1:
        body = [f"for ci in range({C}):",
                f"    xv = np.float64({A}[xb + ci])",
                "    if xv != 0.0:",
                f"        wr = t * {C * CO} + ci * {CO}",
                f"        for co in range({CO}):",
                "            acc0[co] += xv * Wp[wr + co]"]
    else:
        body = [f"for ci in range({C}):"]
        body += [f"    x{p} = np.float64({A}[xb + {p * SW * C} + ci])" for p in range(npix)]
        body += [f"    wr = t * {C * CO} + ci * {CO}",
                 f"    for co in range({CO}):",
                 "        wv = np.float64(Wp[wr + co])"]
        body += [f"        acc{p}[co] += x{p} * wv" for p in range(npix)]
    out += ["    " + ln for ln in body]
    for p in range(npix):
        out += _store(CO, f"(r * {OW} + ow0 + {p}) * {CO}", [ln.replace("acc[co]", f"acc{p}[co]") for ln in requant])
    return out


def _int32_pairs(C: int, CO: int, A: str, T: int) -> list[str]:
    """Pairs of input channels summed into int32 lanes `a32` (16 per vector, twice float64's),
    flushed into the float64 `acc0` every PAIRS_PER_FLUSH pairs: a pair adds at most
    2 * 2**15 * 2**7 = 2**23 in magnitude, so 255 of them stay inside int32 whatever the data."""
    def pair(xs: list[str], wr: str) -> list[str]:
        terms = " + ".join(f"{x} * Wp[{wr} + {j * CO} + co]" for j, x in enumerate(xs))
        return ["    if " + " or ".join(f"{x} != 0" for x in xs) + ":",
                f"        for co in range({CO}):",
                f"            a32[co] += np.int32({terms})",
                "        npairs += 1",
                f"        if npairs == {PAIRS_PER_FLUSH}:",
                f"            for co in range({CO}):",
                "                acc0[co] += a32[co]",
                "                a32[co] = 0",
                "            npairs = 0"]

    out = [f"for co in range({CO}):", "    acc0[co] = 0.0", "npairs = 0", f"for t in range({T}):",
           "    xb = base + TO[t]",
           f"    for cg in range({C // 2}):",
           "        ci = cg * 2",
           f"        x0 = np.int32({A}[xb + ci])",
           f"        x1 = np.int32({A}[xb + ci + 1])"]
    out += ["    " + ln for ln in pair(["x0", "x1"], f"t * {C * CO} + ci * {CO}")]
    if C % 2:
        out += [f"    x0 = np.int32({A}[xb + {C - 1}])"] + pair(["x0"], f"t * {C * CO} + {(C - 1) * CO}")
    out += [f"for co in range({CO}):", "    acc0[co] += a32[co]", "    a32[co] = 0"]
    return out


def conv2d(req: KernelRequest) -> KernelSource:
    return _conv_like(req, depthwise=False)


def depthwise(req: KernelRequest) -> KernelSource:
    return _conv_like(req, depthwise=True)


# ---- FULLY_CONNECTED -------------------------------------------------------------------------------


def fully_connected(req: KernelRequest) -> KernelSource:
    _check(req, 2)
    x, w = req.inputs[0], req.inputs[1]
    wv = np.asarray(w.value)
    N, K = wv.shape
    size = math.prod(x.shape)
    if K < 1 or size % K:
        raise Unsupported("int16 FULLY_CONNECTED: input size is not a multiple of the filter depth")
    M = size // K
    if math.prod(req.out_shape) != M * N:
        raise Unsupported(f"output shape {req.out_shape} does not hold {M} x {N}")
    _exact(req, wv)
    rq, rf, requant = _tables(req, N)
    parallel = emit.want_parallel(req, M * N * K / SERIAL_MACS) and M > 1
    rows = emit.prange_head("r", 0, M) if parallel else [f"for r in range({M}):"]
    inner = [f"acc = np.zeros({N}, np.float64)",
             f"for k in range({K}):",
             f"    xv = np.float64(xf[r * {K} + k])",
             "    if xv != 0.0:",
             f"        wr = k * {N}",
             f"        for co in range({N}):",
             "            acc[co] += xv * Wp[wr + co]"]
    inner += _store(N, f"r * {N}", requant)
    body = [f"xf = x.reshape({size})", f"of = o.reshape({M * N})"] + _HEAD + rows + ["    " + ln for ln in inner]
    args = [Arg("input", 0), Arg("const", value=np.ascontiguousarray(wv.T.reshape(-1))),
            Arg("const", value=rq), Arg("const", value=rf), Arg("const", value=_scalars(req)), Arg("output", 0)]
    name = f"FULLY_CONNECTED {req.attrs.rounding} {M}x{K} -> {N}"
    return KernelSource(_module(name, body, "x, Wp, RQ, RF, QS, o", parallel), "entry", args, parallel)
