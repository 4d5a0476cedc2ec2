"""Quantized (int8 / uint8) CONV_2D, FULLY_CONNECTED and DEPTHWISE_CONV_2D, bit-exact with
ops/qnn.py (which is bit-exact with LiteRT's optimized builtin kernels).

Three ways to accumulate, measured (PERFORMANCE.md: Numba widens int8 products to int64 and
never emits VNNI or vpmaddwd by itself):

* int8 CONV_2D / FULLY_CONNECTED with symmetric weights: an explicit register-tiled GEMM with
  int32 accumulators (`int_gemm`, below), exact at any depth, as LiteRT's. Where the host has
  AVX512-VNNI it multiplies byte quads with vpdpbusd (Zen 5: 1.1-2.4x LiteRT XNNPACK's int8 layer
  time and 1.1-6x faster than LiteRT's builtin int8 kernels, benchmarks/bench_numba_quantized.py);
  elsewhere int16 pairs with vpmaddwd (weights widened at plan time, activations in the prologue):
  on an AVX2 host (2026-12-08) 1.0-1.5x faster than the float32 GEMM below on the layers both
  can run, and it also takes the deep layers whose sums may pass 2**24, which the float32 GEMM
  must refuse (ResNet50's last blocks ran on reference there before).
* otherwise (uint8, int8 FULLY_CONNECTED with a filter zero point): float32 accumulation on
  gemm.py's FMA micro-kernel. Every product of two 8-bit values is an integer
  below 2**16 and a float32 sum of integers is exact while every partial sum stays below 2**24,
  in any order (fastmath reassociation included); the weights are constants, so this is checked
  per output channel at plan time: sum_k |w[n, k] - zw| * max|x| < 2**24, else the node is
  refused (Unsupported) and runs on the reference backend. The GEMM runs on a float32 "shadow"
  request (activation NONE, no bias, weights w - zw as floats); the input zero point is folded
  out of the inner loop (sum w (x - zi) = sum w x - zi * sum w, the second term joins the integer
  bias; a padded conv's border holds zi), and the GEMM's vector stores of its accumulators are
  rewritten into `qst` / `qstm`.
* DEPTHWISE_CONV_2D: its own kernel. The centered input (x - zi, zero border) is copied into a
  padded float32 scratch: serial kernels keep a ring of the KH (dilated) rows one output row
  reads and convert each input row just before its first use, so the scratch stays in L1/L2
  (a whole float32 image of a 112x112x96 layer is 4.8 MB: 5-12% faster per layer); parallel
  ones convert the whole image first. 4 adjacent output pixels share each 16-channel vector of
  weights, taps unrolled at literal offsets, float32 FMAs (exact: at most 49 taps), then `qst`.
  (Depth multiplier > 1: a scalar loop LLVM vectorizes, with the same requantization.)

The requantizing stores `qst` / `qstm` / `qsti` / `qstmi` (../qsimd.py, one table QP of
per-channel parameters from `qparams`) round as LiteRT does (ops/qnn.py `_requantize`): half up
(RHU2) for conv / FC and depthwise channel blocks of 8, half away from zero (MBQM) for the last
C mod 8 depthwise channels. int16 activations (16x8) go to q16conv.py. Grouped convolutions
(MBQM on every channel), run-time filters and fused epilogues are not compiled here (reference backend;
backend.request_for keeps quantized roots in single-op clusters).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np

from tflite_jit.backends.numba_cpu import emit, host, printer
from tflite_jit.backends.numba_cpu.generators import depthwise as _fdw
from tflite_jit.backends.numba_cpu.generators import gemm, q16conv, register_generator
from tflite_jit.backends.numba_cpu.host import QROWS, VW
from tflite_jit.backends.numba_cpu.quantized import quantized_attrs
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Output, TensorArg, Unsupported
from tflite_jit.ops import expr as E
from tflite_jit.ops import qmath
from tflite_jit.ops.base import Quantized
from tflite_jit.ops.nn import axis_geometry

F32 = np.dtype(np.float32)
I8, U8 = np.dtype(np.int8), np.dtype(np.uint8)
#: float32 sums of integers are exact below this magnitude
EXACT = float(1 << 24)
#: bump when the requantization code changes meaning (printed into every generated module)
QVERSION = "4"
#: int8 CONV_2D / FULLY_CONNECTED on the int32-accumulator GEMM (`int_gemm`, below); False forces
#: the float32 GEMM path
USE_INT_GEMM = True
#: that GEMM on int16 pairs (vpmaddwd) instead of VNNI's byte quads: hosts without VNNI
PAIRS = host.PAIRS
#: per-channel tables are padded by this many zero channels (a GEMM panel is at most 8 vectors)
_QPAD = 8 * VW

# ---- per-channel requantization parameters -------------------------------------------------------


def _rounding_halves(rs: np.ndarray, mbqm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hp = np.where(rs > 0, np.left_shift(np.int64(1), np.maximum(rs - 1, 0)), 0).astype(np.int64)
    hn = hp - ((rs > 0) & mbqm).astype(np.int64)
    return hp, hn


def qparams(a, n: int, bias: np.ndarray, mbqm: np.ndarray, pad: int = 0) -> np.ndarray:
    """qsimd's table QP, int32 [QROWS, n + pad]: bias (wrapped to int32, as C's accumulator wraps), M, ls, rs,
    h+, h- per channel (zero past n)."""
    m = np.broadcast_to(np.asarray(a.multipliers, np.int64), (n,))
    s = np.broadcast_to(np.asarray(a.shifts, np.int64), (n,))
    ls, rs = np.maximum(s, 0), np.maximum(-s, 0)
    if np.any(rs > 31) or np.any(ls > 31):
        raise Unsupported("quantized multiplier shift out of range (runs on reference)")
    hp, hn = _rounding_halves(rs, mbqm)
    qp = np.zeros((QROWS, n + pad), np.int64)
    for r, v in enumerate((qmath.wrap32(bias), m, ls, rs, hp, hn)):
        qp[r, :n] = v
    return np.ascontiguousarray(qp.astype(np.int32))


def qtail(qp: np.ndarray, a, zo: str = "", lo: str = "", hi: str = "") -> str:
    """The trailing arguments of qst / qsti for this table and node. `zo`, `lo`, `hi`: names of
    run-time values for the output zero point and clamp range (the generated code then stays the
    same for a retrained model whose quantization differs); literal constants otherwise."""
    has_ls = int(bool(np.any(qp[2])))
    zo, lo, hi = zo or str(int(a.out_zp)), lo or str(int(a.act_min)), hi or str(int(a.act_max))
    return f"{qp.shape[1]}, {zo}, {lo}, {hi}, {has_ls}"


def qscalars(a) -> np.ndarray:
    """The node's requantization scalars as a kernel argument QS, int32 [out_zp, act_min,
    act_max, in_zp]: read at run time, so they are not part of the generated code (issue #14: a
    retrained twin of a model reuses its kernels)."""
    return np.array([int(a.out_zp), int(a.act_min), int(a.act_max), int(a.in_zp)], np.int32)


def _check_attrs(req: KernelRequest) -> None:
    a = quantized_attrs(req, "multipliers", "conv node", " activations")
    if np.dtype(req.outputs[0].arg.dtype) != np.dtype(a.dtype):
        raise Unsupported(f"quantized {req.op_name}: output dtype differs from the input's")
    if any(math.prod(o.arg.shape) == 0 for o in req.outputs):
        raise Unsupported(f"{req.op_name}: empty output")
    x = req.inputs[0]
    if x is None or np.dtype(x.dtype) != np.dtype(a.dtype):
        raise Unsupported(f"quantized {req.op_name}: input dtype differs")
    w = req.inputs[1] if len(req.inputs) > 1 else None
    b = req.inputs[2] if len(req.inputs) > 2 else None
    if w is None or w.value is None:
        raise Unsupported(f"quantized {req.op_name}: the filter must be constant")
    if b is not None and (b.value is None or np.dtype(b.dtype) != np.int32):
        raise Unsupported(f"quantized {req.op_name}: the bias must be a constant int32 tensor")


def _centered_weights(w: np.ndarray, zps, axis: int) -> np.ndarray:
    zw = np.asarray(zps, np.float64)
    if zw.size > 1:
        shape = [1] * w.ndim
        shape[axis] = -1
        zw = zw.reshape(shape)
    return np.asarray(w, np.float64) - zw


def _max_abs_x(dt: np.dtype, zp: int = 0) -> int:
    lo, hi = (-128, 127) if dt == I8 else (0, 255)
    return max(abs(lo - zp), abs(hi - zp))


def _bias_of(req: KernelRequest, n: int) -> np.ndarray:
    b = req.inputs[2] if len(req.inputs) > 2 else None
    return np.zeros(n, np.int64) if b is None else np.asarray(b.value).reshape(-1).astype(np.int64)


# ---- CONV_2D / FULLY_CONNECTED: gemm.py with a requantizing store ---------------------------------

_STORE = re.compile(r"^(\s*)vstore\(o0, (.+), v\)$")
_STOREM = re.compile(r"^(\s*)vstorem\(o0, (.+), v, (.+)\)$")


def _channel(dst: str) -> str:
    """The output channel of a GEMM store offset `q0 + i*N + nb + j*VW`: the terms from nb on."""
    terms = dst.split(" + ")
    if "nb" not in terms:
        raise Unsupported("unexpected GEMM store offset")
    return " + ".join(terms[terms.index("nb"):])


def _gemm_q(req: KernelRequest, kind: str, tile=None) -> KernelSource:
    """A quantized CONV_2D (kind 'conv') or FULLY_CONNECTED ('fc') node: the VNNI GEMM, or the
    float32 GEMM with a requantizing store."""
    _check_attrs(req)
    w = req.inputs[1]
    if kind == "conv" and (len(w.shape) != 4 or len(req.inputs[0].shape) != 4):
        raise Unsupported("quantized CONV_2D: 4-D input and filter only")
    if kind == "fc" and len(w.shape) != 2:
        raise Unsupported("quantized FULLY_CONNECTED: 2-D filter only")
    a = req.attrs
    wc = _centered_weights(w.value, a.w_zps, 0)  # centered float weights, the float op's layout
    dt = np.dtype(a.dtype)
    x = req.inputs[0]
    n_out = wc.shape[0]
    wk = wc.reshape(n_out, -1)
    if USE_INT_GEMM and dt == I8 and a.rounding == "rhu2" and not any(a.w_zps):
        return int_gemm(req, wc.astype(np.int8), kind, tile)
    bound = np.abs(wk).sum(axis=1) * _max_abs_x(dt)
    if np.any(bound >= EXACT):
        raise Unsupported(f"quantized {req.op_name}: a float32 accumulator could reach "
                          f"{int(bound.max())} >= 2**24 (not exact); runs on reference")
    groups = 1
    if kind == "conv":
        groups = x.shape[3] // max(wc.shape[3], 1)
    if groups != 1:
        raise Unsupported("quantized CONV_2D: grouped convolution runs on reference")
    if a.rounding != "rhu2":
        raise Unsupported(f"quantized {req.op_name}: rounding {a.rounding} runs on reference")
    bias = _bias_of(req, n_out) - int(a.in_zp) * np.rint(wk.sum(axis=1)).astype(np.int64)
    qp = qparams(a, n_out, bias, np.zeros(n_out, bool), _QPAD)
    fake = KernelRequest(req.op_name, replace(a.base, activation="NONE"),
                         [TensorArg(tuple(x.shape), F32), TensorArg(tuple(wc.shape), F32, wc.astype(F32)), None],
                         [], [Output(E.Var(0), TensorArg(tuple(req.out_shape), F32))], req.num_threads)
    src = gemm.conv2d(fake, tile) if kind == "conv" else gemm.fully_connected(fake, tile)
    m = re.search(r"^def gemm_kernel\((.*)\):$", src.source, re.M)
    if m is None:
        raise Unsupported("unexpected GEMM source")
    params = m.group(1)
    names = params.split(", ")
    if len(names) != len(src.args) or names[0] != "x" or src.args[0].kind != "input":
        raise Unsupported("unexpected GEMM arguments")
    padded = "XP" in names
    tail = "QP, " + qtail(qp, a, "QS[0]", "QS[1]", "QS[2]")
    lines = []
    nrep = 0
    for ln in src.source.split("\n"):
        s, sm = _STORE.match(ln), _STOREM.match(ln)
        if s:
            ln = f"{s.group(1)}qst(o0, {s.group(2)}, v, {_channel(s.group(2))}, {tail})"
            nrep += 1
        elif sm:
            ln = f"{sm.group(1)}qstm(o0, {sm.group(2)}, v, {_channel(sm.group(2))}, {tail}, {sm.group(3)})"
            nrep += 1
        elif "o0" in ln and "def " not in ln and "gemm_task(" not in ln:
            raise Unsupported("unexpected GEMM epilogue (not the vector store)")
        lines.append(ln)
    if not nrep:
        raise Unsupported("unexpected GEMM epilogue")
    body = "\n".join(lines).replace(params, params + ", QP, QS")
    args = list(src.args)
    consts = [Arg("const", value=qp), Arg("const", value=qscalars(a))]
    size = math.prod(x.shape)
    if padded:  # the GEMM's padding copy converts the int8 input; the border holds zi
        xp = names.index("XP")
        args[xp] = Arg("const", value=np.full(src.args[xp].value.shape, float(a.in_zp), F32))
        entry = [f"def qentry({params}, QP, QS):", f"    gemm_kernel({params}, QP, QS)"]
        all_args = args + consts
    else:  # the int8 input, converted to float32 into the GEMM's `x` (a scratch const)
        args[0] = Arg("const", value=np.zeros(size, F32))
        entry = [f"def qentry(xq, {params}, QP, QS):",
                 f"    for i in range({size}):",
                 "        st(x, i, ld(xq, i))",
                 f"    gemm_kernel({params}, QP, QS)"]
        all_args = [Arg("input", 0)] + args + consts
    deco = "@numba.njit(cache=True, nogil=True, error_model='numpy', boundscheck=False)"
    source = (body + f"\n# quantized epilogue v{QVERSION} ({dt.name})\n"
              + emit.helper_import(host.QSIMD, "qst", "qstm") + "\n\n"
              + deco + "\n" + "\n".join(entry) + "\n")
    return KernelSource(source, "qentry", all_args, src.parallel)


@register_generator("CONV_2D")
def conv2d(req: KernelRequest, tile=None) -> KernelSource:
    if not isinstance(req.attrs, Quantized):
        return gemm.conv2d(req, tile)
    if q16conv.is_int16(req):
        return q16conv.conv2d(req)
    return _gemm_q(req, "conv", tile)


@register_generator("FULLY_CONNECTED")
def fully_connected(req: KernelRequest, tile=None) -> KernelSource:
    if not isinstance(req.attrs, Quantized):
        return gemm.fully_connected(req, tile)
    if q16conv.is_int16(req):
        return q16conv.fully_connected(req)
    return _gemm_q(req, "fc", tile)


# ---- DEPTHWISE_CONV_2D ------------------------------------------------------------------------------

#: serial throughput assumed for the threading decision (int8 depthwise, measured)
DW_SERIAL_FLOPS = 20e9
#: adjacent output pixels per step of the vector depthwise kernel (they share the weight loads)
DW_PIXELS = 4
#: serial depthwise (multiplier 1) converts the input into a ring of the padded rows one output
#: row reads, just before it needs them, instead of a whole-image float32 scratch (False: the
#: whole image first; tests and benchmarks compare the two)
DW_RING = True


@register_generator("DEPTHWISE_CONV_2D")
def depthwise(req: KernelRequest) -> KernelSource:
    if not isinstance(req.attrs, Quantized):
        return _fdw.generate_depthwise(req)
    if q16conv.is_int16(req):
        return q16conv.depthwise(req)
    _check_attrs(req)
    a = req.attrs
    f = a.base
    x, w = req.inputs[0], req.inputs[1]
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise Unsupported("quantized DEPTHWISE_CONV_2D: 4-D input and filter only")
    if a.rounding != "depthwise":
        raise Unsupported(f"quantized DEPTHWISE_CONV_2D: rounding {a.rounding} runs on reference")
    nimg, H, W, C = x.shape
    _, KH, KW, CO = w.shape
    if C < 1 or CO % C:
        raise Unsupported("DEPTHWISE_CONV_2D: filter channels are not a multiple of input channels")
    mult = CO // C
    SH, SW = f.stride
    DH, DW = f.dilation
    if min(SH, SW, DH, DW) < 1:
        raise Unsupported("DEPTHWISE_CONV_2D: stride and dilation must be >= 1")
    gh = axis_geometry(f.padding, H, KH, SH, DH)
    gw = axis_geometry(f.padding, W, KW, SW, DW)
    OH, OW = gh.out, gw.out
    if tuple(req.out_shape) != (nimg, OH, OW, CO):
        raise Unsupported(f"output shape {req.out_shape} != {(nimg, OH, OW, CO)}")
    pt, pl = gh.pad_before, gw.pad_before
    need_h = (OH - 1) * SH + (KH - 1) * DH + 1
    need_w = (OW - 1) * SW + (KW - 1) * DW + 1
    HP = max(H + pt, need_h)
    WP = max(W + pl, need_w)
    wc = _centered_weights(w.value, a.w_zps, 3).reshape(KH * KW, CO)
    dt = np.dtype(a.dtype)
    bound = np.abs(wc).sum(axis=0) * _max_abs_x(dt, int(a.in_zp))
    if np.any(bound >= EXACT):
        raise Unsupported("quantized DEPTHWISE_CONV_2D: float32 accumulation would not be exact")
    head = CO // 8 * 8
    qp = qparams(a, CO, _bias_of(req, CO), np.arange(CO) >= head)
    qp[5] = qp[4] - qp[5]  # this kernel subtracts h+ - h- (0 or 1) from negative values
    wp = np.ascontiguousarray(wc.astype(F32).reshape(-1))
    flops = 2.0 * nimg * OH * OW * CO * KH * KW
    parallel = emit.want_parallel(req, flops / DW_SERIAL_FLOPS) and nimg * OH > 1
    # serial, depth multiplier 1: the scratch is a ring of the `span` padded rows one output row
    # reads, filled just before use (it stays in L1/L2; a whole float32 image does not)
    ring = DW_RING and mult == 1 and not parallel
    span = (KH - 1) * DH + 1
    xp = np.zeros((span if ring else nimg * HP) * WP * C, F32)
    any_ls = bool(np.any(qp[2, :CO]))
    ci = "co" if mult == 1 else f"co // {mult}"
    taps = [((kh * DH * WP + kw * DW) * C, kh * KW + kw) for kh in range(KH) for kw in range(KW)]
    acc = []
    for i, (off, t) in enumerate(taps):
        term = f"ld(xp, xb + {off + 0} + {ci}) * ld(wp, {t * CO} + co)"
        acc.append(f"s = {term}" if i == 0 else f"s = s + {term}")
    requant = [
        "v = np.int64(s) + ld(qp, co)",
        f"v = np.int64(np.int32(v << ld(qp, {2 * CO} + co)))" if any_ls else "v = np.int64(np.int32(v))",
        f"t = (v * ld(qp, {CO} + co) + {1 << 30}) >> 31",
        # branchless (a select on the sign kept LLVM from vectorizing: 1.9x slower)
        f"t = (t + ld(qp, {4 * CO} + co) - ((t >> 63) & ld(qp, {5 * CO} + co))) >> ld(qp, {3 * CO} + co)",
        "st(o, ob + co, min(max(t + zo, lo), hi))",
    ]
    rows = emit.prange_head("r", 0, nimg * OH) if parallel else [f"for r in range({nimg * OH}):"]
    body = ["def entry(x, xp, wp, qp, qs, o):",
            "    zo, lo, hi = np.int64(qs[0]), np.int64(qs[1]), np.int64(qs[2])",
            "    zi = np.float32(qs[3])"]
    if not ring:
        body += [
            f"    for bi in range({nimg}):",
            f"        for hh in range({H}):",
            f"            src = (bi * {H} + hh) * {W * C}",
            f"            dst = ((bi * {HP} + hh + {pt}) * {WP} + {pl}) * {C}",
            f"            for q in range({W * C}):",
            "                st(xp, dst + q, np.float32(ld(x, src + q)) - zi)",
        ]
    inner = [
        f"bi = r // {OH}",
        f"oh = r - bi * {OH}",
        f"xr = (bi * {HP} + oh * {SH}) * {WP * C}",
    ]
    if ring:  # padded rows [first, oh * SH + span) are new to this output row: convert them
        inner = [
            f"bi = r // {OH}",
            f"oh = r - bi * {OH}",
            f"first = oh * {SH} if oh == 0 else max(oh * {SH}, (oh - 1) * {SH} + {span})",
            f"for pr in range(first, oh * {SH} + {span}):",
            f"    dst = (pr % {span}) * {WP * C} + {pl * C}",
            f"    hh = pr - {pt}",
            f"    if hh >= 0 and hh < {H}:",
            f"        src = (bi * {H} + hh) * {W * C}",
            f"        for q in range({W * C}):",
            "            st(xp, dst + q, np.float32(ld(x, src + q)) - zi)",
            "    else:",
            f"        for q in range({W * C}):",
            "            st(xp, dst + q, np.float32(0.0))",
        ] + [f"rb{kh} = ((oh * {SH} + {kh * DH}) % {span}) * {WP * C}" for kh in range(KH)]
        taps = [(f"rb{kh} + {kw * DW * C}", kh * KW + kw) for kh in range(KH) for kw in range(KW)]
    if mult == 1:  # explicit 16-lane vectors (LLVM's own choice is 256-bit) and qst's epilogue
        qp = qparams(a, CO, _bias_of(req, CO), np.arange(CO) >= head, _QPAD)
        tail = "qp, " + qtail(qp, a, "zo", "lo", "hi")
        nfull, rem = CO // VW, CO % VW

        def vec(co: str, masked: bool, npix: int) -> list[str]:
            """npix adjacent output pixels (xb{p}, ob{p}) at channels co..: the weights are
            loaded once, all accumulators finish before the first store (stores may alias)."""
            out = []
            for k, (_, t) in enumerate(taps):
                out.append(f"w{k} = vloadm(wp, {t * CO} + {co}, {rem})" if masked
                           else f"w{k} = vload(wp, {t * CO} + {co})")
            for p in range(npix):
                for k, (off, _) in enumerate(taps):
                    xv = f"vloadm(xp, xb{p} + {off} + {co}, {rem})" if masked else f"vload(xp, xb{p} + {off} + {co})"
                    out.append(f"s{p} = vmul({xv}, w{k})" if k == 0 else f"s{p} = vfma({xv}, w{k}, s{p})")
            for p in range(npix):
                out.append(f"qstm(o, ob{p} + {co}, s{p}, {co}, {tail}, {rem})" if masked
                           else f"qst(o, ob{p} + {co}, s{p}, {co}, {tail})")
            return out

        def pixels(npix: int) -> list[str]:
            out = []
            for p in range(npix):
                xb = f"(ow + {p}) * {SW * C}" if ring else f"xr + (ow + {p}) * {SW * C}"
                out += [f"xb{p} = {xb}", f"ob{p} = (r * {OW} + ow + {p}) * {CO}"]
            if nfull:
                out += [f"for cv in range({nfull}):", f"    co = cv * {VW}"] + emit.indent(vec("co", False, npix), 1)
            if rem:
                out += vec(str(nfull * VW), True, npix)
            return out

        npix = min(DW_PIXELS, OW)
        nq = OW // npix
        inner += [f"for q in range({nq}):", f"    ow = q * {npix}"] + emit.indent(pixels(npix), 1)
        if nq * npix < OW:
            inner += [f"for ow in range({nq * npix}, {OW}):"] + emit.indent(pixels(1), 1)
    else:
        inner += [f"for ow in range({OW}):", f"    xb = xr + ow * {SW * C}", f"    ob = (r * {OW} + ow) * {CO}",
                  f"    for co in range({CO}):"] + emit.indent(acc + requant, 2)
    body += emit.indent(rows, 1) + emit.indent(inner, 2)
    args = [Arg("input", 0), Arg("const", value=xp), Arg("const", value=wp),
            Arg("const", value=np.ascontiguousarray(qp.reshape(-1))), Arg("const", value=qscalars(a)),
            Arg("output", 0)]
    src = (f"# quantized depthwise v{QVERSION} ({dt.name})\n"
           + emit.helper_import(host.SIMD, "ld", "st", "vload", "vloadm", "vmul", "vfma")
           + emit.helper_import(host.QSIMD, "qst", "qstm")
           + emit.module("\n".join(body) + "\n", parallel))
    return KernelSource(src, "entry", args, parallel)


# ---- int8 GEMM with int32 accumulators (VNNI's vpdpbusd, or vpmaddwd on int16 pairs) -------------
#
# Where the host has AVX512-VNNI, int8 CONV_2D / FULLY_CONNECTED with symmetric weights run on
# vpdpbusd (u8 x s8, 4-byte groups summed into int32 lanes; 4x the multiply-adds of a float32
# FMA): the activations are made unsigned by flipping their sign bit (x + 128), which adds
# 128 * sum(w) to every accumulator, so the per-channel integer bias absorbs -(zi + 128) * sum(w).
# The int32 accumulator wraps like LiteRT's (the requantization's wrap32 is modular), so this
# path is exact for any depth. Weights are packed at plan time per panel of NV x 16 channels as
# [tap][k4 group][NV][16 lanes][4 bytes] (zero-padded past N and past the channel count, which is
# rounded up to 4). Activations are read in place (the sign flip folded into the 4-byte
# broadcast) when a row's channels are contiguous and a multiple of 4; otherwise (padding, odd
# channel counts) the prologue copies them into a zero-point-bordered uint8 scratch image.
#
# Without VNNI (`PAIRS`), the same tiles multiply int16 pairs: weights packed as
# [tap][k2 group][NV][lanes][2 int16], activations always copied into an int16 scratch image
# (bordered with zi, no sign flip: vpmaddwd is signed x signed, so the bias absorbs -zi * sum(w)),
# and each step is one vpmaddwd + vpaddd per accumulator (qsimd.vdot2). The tiles are smaller
# (`_PAIR_TILES`): AVX2 has 16 ymm registers.


#: (NV vectors per panel) -> MR rows per tile: MR * NV accumulators + NV weights + 1 broadcast
#: of the 32 zmm registers. Measured (benchmarks/bench_numba_quantized.py layers and a sweep of
#: every MR x NV on 3x3 and 1x1 layers, Zen 5): some row counts run 3-4x slower than their
#: neighbours for no reason visible in the source (13x1, 12x1, 7x2 on a 64x64x32 -> 32 3x3:
#: 410-500 us where 14x1, 16x1, 8x2, 13x2 take 121-142 us), so the row counts are these measured
#: ones and are not shrunk to balance a run's tiles (which turned 14 into 13).
_VNNI_TILES = {1: 16, 2: 8, 3: 7, 4: 5}
#: the same for the int16-pair GEMM of hosts without VNNI (16 ymm registers), from a sweep of
#: 12x1 .. 2x4 on 1x1 and 3x3 layers of 14-56 pixels (AVX2 EPYC, 2026-12-08: 6x2 and 2x4 best,
#: 4x3 and 3x4 20-30 % slower)
_PAIR_TILES = {1: 12, 2: 6, 3: 3, 4: 2}
#: serial int8 multiply-adds per second assumed for the threading decision (2 ops each)
VNNI_SERIAL_OPS = 300e9
PAIR_SERIAL_OPS = 100e9
_INT_GEMM_INTRINSICS = ("vzi", "vldw", "vbc4", "vbc4x", "vdot", "vbc2", "vdot2", "qsti", "qstmi")


def _int_gemm_tile(RO: int, L: int, N: int, pairs: bool = False) -> tuple[int, int]:
    nvec = -(-N // VW)
    best = None
    tiles = _PAIR_TILES if pairs else _VNNI_TILES
    for nv in range(1, min(nvec, 4) + 1):
        mr = min(tiles[nv], L)
        work = RO * (-(-L // mr) * mr) * (-(-nvec // nv) * nv)
        key = (work, -nv)
        if best is None or key < best[0]:
            best = (key, mr, nv)
    assert best is not None
    return best[1], best[2]


def _pack_int_gemm(w: np.ndarray, NR: int, kb: int = 4) -> np.ndarray:
    """w [N, T, C] int8 -> flat bytes [panel][T][G][NR][kb], C padded to G*kb, N to panels: kb=4
    int8 (VNNI's byte quads) or kb=2 int16 (pairs; the bytes of the int16 array)."""
    n, t, c = w.shape
    g = -(-c // kb)
    npan = -(-n // NR)
    wp = np.zeros((npan * NR, t, g * kb), np.int8 if kb == 4 else np.int16)
    wp[:n, :, :c] = w
    wp = wp.reshape(npan, NR, t, g, kb).transpose(0, 2, 3, 1, 4)
    return np.ascontiguousarray(wp).reshape(-1).view(np.int8)


def int_gemm(req: KernelRequest, w: np.ndarray, kind: str, tile=None) -> KernelSource:
    """int8 CONV_2D (kind 'conv', w [CO, KH, KW, CI]) / FULLY_CONNECTED ('fc', w [N, K]), the
    filter symmetric (zero points 0)."""
    a = req.attrs
    x = req.inputs[0]
    pairs = PAIRS
    KB = 2 if pairs else 4  # k values per int32 lane: int16 pairs or VNNI's byte quads

    def xval(load: str) -> str:  # an activation as the scratch image holds it
        return f"np.int16({load})" if pairs else f"np.int32({load}) + 128"

    if kind == "conv":
        f = a.base
        nimg, H, W, C = x.shape
        N, KH, KW, CI = w.shape
        if CI != C:
            raise Unsupported("quantized CONV_2D: grouped convolution runs on reference")
        SH, SW = f.stride
        DH, DW = f.dilation
        gh = axis_geometry(f.padding, H, KH, SH, DH)
        gw = axis_geometry(f.padding, W, KW, SW, DW)
        OH, OW = gh.out, gw.out
        pt, pl = gh.pad_before, gw.pad_before
        need_h = (OH - 1) * SH + (KH - 1) * DH + 1
        need_w = (OW - 1) * SW + (KW - 1) * DW + 1
        HP, WP = max(H + pt, need_h), max(W + pl, need_w)
        padded = pt or pl or HP != H or WP != W
        copy = bool(padded or C % KB or pairs)
        CP = -(-C // KB) * KB if copy else C
        if not copy:
            HP, WP = H, W
        taps = [(kh * DH * WP + kw * DW) * CP for kh in range(KH) for kw in range(KW)]
        wt = w.reshape(N, KH * KW, C)
        if KH == KW == 1 and SH == SW == 1 and not copy:
            RO, L, LS = 1, nimg * OH * OW, CP
            outer = ["a0 = 0"]
        else:
            RO, L, LS = nimg * OH, OW, SW * CP
            outer = [f"bi = ro // {OH}", f"a0 = (bi * {HP} + (ro - bi * {OH}) * {SH}) * {WP * CP}"]
        M = nimg * OH * OW
    else:
        N, K = w.shape
        M = math.prod(x.shape) // K
        copy = K % KB != 0 or pairs
        C = K
        CP = -(-K // KB) * KB if copy else K
        nimg, H, W, HP, WP, pt, pl = 1, M, 1, M, 1, 0, 0
        taps = [0]
        wt = w.reshape(N, 1, K)
        RO, L, LS = 1, M, CP
        outer = ["a0 = 0"]
    T = len(taps)
    G = CP // KB
    MR, NV = tile or _int_gemm_tile(RO, L, N, pairs)
    MR = min(MR, L)
    NR = NV * VW
    NPAN = -(-N // NR)
    NLT = -(-L // MR)
    NTILE = RO * NLT
    partial = L % MR != 0
    wsum = wt.astype(np.int64).reshape(N, -1).sum(axis=1)
    bias = _bias_of(req, N) - (int(a.in_zp) + (0 if pairs else 128)) * wsum
    qp = qparams(a, N, bias, np.zeros(N, bool), _QPAD)
    wp = _pack_int_gemm(wt, NR, KB)
    tail = "QP, " + qtail(qp, a, "QS[0]", "QS[1]", "QS[2]")
    flops = 2.0 * M * N * T * C
    parallel = emit.want_parallel(req, flops / (PAIR_SERIAL_OPS if pairs else VNNI_SERIAL_OPS)) and NTILE * NPAN >= 2
    split = "m" if NTILE >= 10 or NTILE >= NPAN else "p"
    ntask = min(10, NTILE if split == "m" else NPAN) if parallel else 1
    A = "XU" if copy else "x"
    bc = "vbc2" if pairs else "vbc4" if copy else "vbc4x"
    dot = "vdot2" if pairs else "vdot"
    pstride = T * G * NR * 4  # bytes per panel

    em = []

    def e(ind: int, *lines: str) -> None:
        em.extend("    " * ind + ln for ln in lines)

    if parallel and split == "m":
        e(1, f"for t in range(task * {NTILE} // {ntask}, (task + 1) * {NTILE} // {ntask}):")
    else:
        e(1, f"for t in range({NTILE}):")
    if RO == 1:
        e(2, "ro = 0", "lt = t")
    else:
        e(2, f"ro = t // {NLT}", f"lt = t - ro * {NLT}")
    if partial:
        e(2, f"l0 = min(lt * {MR}, {L - MR})", f"skip = lt * {MR} - l0")
    else:
        e(2, f"l0 = lt * {MR}")
    e(2, *outer)
    e(2, f"a0 += l0 * {LS}", f"q0 = (ro * {L} + l0) * {N}")
    if parallel and split == "p":
        e(2, f"for p in range(task * {NPAN} // {ntask}, (task + 1) * {NPAN} // {ntask}):")
    else:
        e(2, f"for p in range({NPAN}):")
    e(3, f"nb = p * {NR}", f"wo = p * {pstride}")
    for i in range(MR):
        for j in range(NV):
            e(3, f"c{i}_{j} = vzi()")
    for ti, toff in enumerate(taps):
        e(3, f"for g in range({G}):")
        e(4, f"wk = wo + {ti * G * NR * 4} + g * {NR * 4}", f"ak = a0 + {toff} + g * {KB}")
        for j in range(NV):
            e(4, f"w{j} = vldw(Wp, wk + {j * VW * 4})")
        for i in range(MR):
            e(4, f"x{i} = {bc}({A}, ak + {i * LS})")
            for j in range(NV):
                e(4, f"c{i}_{j} = {dot}(c{i}_{j}, x{i}, w{j})")
    for i in range(MR):
        ind = 3
        if partial and i < MR - 1:
            e(3, f"if skip <= {i}:")
            ind = 4
        for j in range(NV):
            dst = f"q0 + {i * N} + nb + {j * VW}"
            ch = f"nb + {j * VW}"
            if N % NR:
                e(ind, f"qstmi(o, {dst}, c{i}_{j}, {ch}, {tail}, {N - j * VW} - nb)")
            else:
                e(ind, f"qsti(o, {dst}, c{i}_{j}, {ch}, {tail})")

    pro = []
    if copy:
        if kind == "conv":
            pro += [f"for rr in range({nimg * H}):",
                    f"    bi = rr // {H}",
                    f"    src = rr * {W * C}",
                    f"    dst = ((bi * {HP} + rr - bi * {H} + {pt}) * {WP} + {pl}) * {CP}",
                    f"    for ww in range({W}):",
                    f"        for c in range({C}):",
                    f"            st(XU, dst + ww * {CP} + c, {xval('ld(x, src + ww * ' + str(C) + ' + c)')})"]
        else:
            pro += [f"for rr in range({M}):",
                    f"    for c in range({K}):",
                    f"        st(XU, rr * {CP} + c, {xval('ld(x, rr * ' + str(K) + ' + c)')})"]
    params = "x, XU, Wp, QP, QS, o" if copy else "x, Wp, QP, QS, o"
    deco = ("@numba.njit(cache=True, nogil=True, error_model='numpy', boundscheck=False, "
            "parallel={})\n")
    src = (printer.PRELUDE + f"# tflite_jit int8 {'int16-pair' if pairs else 'VNNI'} gemm v{QVERSION}: "
           f"{req.op_name} M={M} N={N} K={T * CP} tile={MR}x{NR}\n"
           + emit.helper_import(host.QSIMD, *_INT_GEMM_INTRINSICS) + emit.helper_import(host.SIMD, "ld", "st") + "\n\n")
    if parallel:
        src += deco.format(False) + f"def qgemm_task(task, {params}):\n" + "\n".join(em) + "\n\n\n"
        body = pro + [f"for task in numba.prange({ntask}):", f"    qgemm_task(np.int64(task), {params})"]
    else:
        body = pro + [ln[4:] for ln in em]
    src += deco.format(parallel) + f"def entry({params}):\n" + "\n".join("    " + ln for ln in body) + "\n"
    args = [Arg("input", 0)]
    if copy:
        border = np.zeros(nimg * HP * WP * CP, np.int16 if pairs else np.uint8)
        if kind == "conv":
            border.reshape(nimg, HP, WP, CP)[..., :C] = int(a.in_zp) if pairs else (int(a.in_zp) + 128) & 0xFF
        args.append(Arg("const", value=border))
    args += [Arg("const", value=wp), Arg("const", value=qp), Arg("const", value=qscalars(a)), Arg("output", 0)]
    return KernelSource(src, "entry", args, parallel)
