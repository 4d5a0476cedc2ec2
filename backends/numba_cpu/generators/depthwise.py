"""DEPTHWISE_CONV_2D, and the windowed-kernel emitter that pool.py shares.

Layout: NHWC, channels innermost; every output pixel runs one inner loop over its output
channels (contiguous, vectorized), the window taps unrolled inside it with literal offsets into
flat views of the input and of the packed weights.

Borders without bounds checks: output rows (and columns) are grouped into bands whose windows
cover the same range of filter taps inside the image (TFLite SAME padding: one band for the
interior, a few at each edge; VALID: one). A (row band, column band) block is emitted with
exactly its in-image taps unrolled, so no tap is tested at run time and none reads padding; for
3x3 kernels every block is (at most 9). Bigger kernels unroll the interior block (and the
interior rows' edge columns when that stays small) and send every other pixel through one shared
generic path: a plan-time table of (oh, ow, tap ranges) drives a run-time tap loop that
accumulates per channel into a scratch row ('const' buffer allocated at plan time), still
vectorized over channels. So code size, i.e. compile time, stays bounded (5x5: 0.7 s, 7x7: 0.9 s;
unrolling all 49 blocks of a 7x7 took 26 s).

Each row band is its own `range` loop so that every index is an affine function of loop variables
with known bounds; LLVM then proves it non-negative and drops Numba's negative-index wrap-around
selects (7x on 56x56x144 s1). Interior depthwise blocks compute two adjacent output pixels per
channel iteration, sharing the weight loads and, at stride 1, most input loads (1.45x).

Weights are packed at plan time as [KH*KW, C*M] (tap-major, the channel row contiguous) plus a
bias row [C*M]; both are 'const' arguments. Channel co reads input channel co // M (depth
multiplier M). The fused activation is LiteRT's clamp (RELU, RELU6, RELU_N1_TO_1; TANH/SIGN_BIT
are ignored by LiteRT's float depthwise/pool kernels, as in ops/nn.py), then the epilogue.
Big kernels prange over the rows of the interior band (and over chunks of the generic table).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tflite_jit.backends.numba_cpu import emit, printer
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops import expr as E
from tflite_jit.ops.nn import axis_geometry

#: a block with more taps than this goes through the generic path instead of being unrolled
MAX_BLOCK_TAPS = 49
#: unrolled taps summed over the unrolled blocks of a kernel, and their count (code size is
#: compile time)
MAX_TOTAL_TAPS = 100
MAX_BLOCKS = 9
#: serial throughput assumed for the threading decision (flops/s; measured 50-75 GF/s for 3x3
#: depthwise interiors here, 35 for max pooling), and for the generic border path
SERIAL_FLOPS = 40e9
GENERIC_FLOPS = 10e9

_CLAMPS = ("RELU", "RELU6", "RELU_N1_TO_1")


def activation_root(act: str) -> E.Expr:
    """The op's result in terms of its pre-activation value Var(0): LiteRT's float kernels clamp
    for RELU/RELU6/RELU_N1_TO_1 and ignore TANH/SIGN_BIT (ops/nn.py `add_bias_clamp`)."""
    return E.activation_expr(E.Var(0), act) if act in _CLAMPS else E.Var(0)


def compose(req: KernelRequest, root: E.Expr) -> KernelRequest:
    """The request with each output's Var(0) replaced by `root` (the activation)."""
    if root == E.Var(0):
        return req
    from dataclasses import replace

    outs = [replace(o, expr=E.substitute(o.expr, {0: root})) for o in req.outputs]
    return replace(req, outputs=outs)


@dataclass(frozen=True)
class Band:
    """Consecutive output positions [o0, o1) whose windows use taps [k0, k1) inside the image."""

    o0: int
    o1: int
    k0: int
    k1: int


def bands(out: int, size: int, k: int, stride: int, dilation: int, pad: int) -> list[Band]:
    res: list[Band] = []
    for o in range(out):
        i0 = o * stride - pad
        ks = [t for t in range(k) if 0 <= i0 + t * dilation < size]
        k0, k1 = (ks[0], ks[-1] + 1) if ks else (0, 0)
        if res and (res[-1].k0, res[-1].k1) == (k0, k1) and res[-1].o1 == o:
            res[-1] = Band(res[-1].o0, o + 1, k0, k1)
        else:
            res.append(Band(o, o + 1, k0, k1))
    return res


@dataclass
class Window:
    kind: str  # 'dw', 'avg', 'max'
    n: int
    h: int
    w: int
    c: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    m: int  # depth multiplier (1 for pools)
    oh: int
    ow: int
    pad_top: int
    pad_left: int

    @property
    def co(self) -> int:
        return self.c * self.m


def _tap_terms(win: Window, k0: int, k1: int, j0: int, j1: int) -> list[tuple[int, int]]:
    """(x offset relative to the window origin, tap index) for taps [k0,k1) x [j0,j1)."""
    return [((a * win.dh * win.w + b * win.dw) * win.c, a * win.kw + b)
            for a in range(k0, k1) for b in range(j0, j1)]


def _finish_lines(win: Window, acc: str, ntaps: int) -> list[str]:
    """`_acc` (the pre-activation value) from the accumulated `acc`."""
    if win.kind == "dw":
        return [f"_acc = {acc} + fb[co]"]
    if win.kind == "avg":
        return [f"_acc = {acc} / {printer.const_literal(float(ntaps), emit.F32)}"]
    return [f"_acc = {acc}"]


def _unrolled(win: Window, terms: list[tuple[int, int]]) -> list[str]:
    ci = "co" if win.m == 1 else f"co // {win.m}"
    if not terms:
        init = "-np.inf" if win.kind == "max" else "0.0"
        return [f"_s = np.float32({init})"]
    lines = []
    for i, (off, t) in enumerate(terms):
        xv = f"fx[xb + {off} + {ci}]" if off else f"fx[xb + {ci}]"
        if win.kind == "dw":
            wv = f"fw[{t * win.co} + co]" if t else "fw[co]"
            lines.append(f"_s = {xv} * {wv}" if i == 0 else f"_s = _s + {xv} * {wv}")
        elif win.kind == "avg":
            lines.append(f"_s = {xv}" if i == 0 else f"_s = _s + {xv}")
        else:
            lines.append(f"_s = {xv}" if i == 0 else f"_s = _max(_s, {xv})")
    return lines


def _generic(win: Window, req: KernelRequest, ef: Sequence[str], of: Sequence[str], chunks: int,
             nb: int) -> list[str]:
    """The one shared path for every pixel outside the unrolled blocks: pixel q of the plan-time
    table `bt` (oh, ow, row taps [k0, k1), column taps [j0, j1)), taps looped at run time and
    accumulated per channel in the scratch row of its chunk (`fs`), vectorized over channels.
    Table values and offsets are clamped to their known ranges (no-ops) so that LLVM can prove
    every index non-negative."""
    ci = "co" if win.m == 1 else f"co // {win.m}"
    init = "-np.inf" if win.kind == "max" else "0.0"
    xlast = win.n * win.h * win.w * win.c - win.c
    wlast = (win.kh * win.kw - 1) * win.co
    lines = [f"oh = min(max(bt[6 * q], 0), {win.oh - 1})",
             f"ow = min(max(bt[6 * q + 1], 0), {win.ow - 1})",
             "k0 = bt[6 * q + 2]", "k1 = bt[6 * q + 3]", "j0 = bt[6 * q + 4]", "j1 = bt[6 * q + 5]",
             f"p = (n * {win.oh} + oh) * {win.ow} + ow",
             f"xb = ((n * {win.h} + oh * {win.sh} - {win.pad_top}) * {win.w} + ow * {win.sw}"
             f" - {win.pad_left}) * {win.c}",
             f"for co in range({win.co}):", f"    fs[sb + co] = np.float32({init})",
             "for a in range(k0, k1):",
             "    for b in range(j0, j1):",
             f"        xo = min(max(xb + (a * {win.dh * win.w} + b * {win.dw}) * {win.c}, 0), {xlast})",
             f"        wo = min(max((a * {win.kw} + b) * {win.co}, 0), {wlast})",
             f"        for co in range({win.co}):"]
    if win.kind == "dw":
        lines.append(f"            fs[sb + co] += fx[xo + {ci}] * fw[wo + co]")
    elif win.kind == "avg":
        lines.append(f"            fs[sb + co] += fx[xo + {ci}]")
    else:
        lines.append(f"            fs[sb + co] = _max(fs[sb + co], fx[xo + {ci}])")
    if win.kind == "avg":
        lines.append("cnt = np.float32((k1 - k0) * (j1 - j0))")
    rows = emit.Rows({0: "n", 1: "oh", 2: "ow"}.__getitem__, "co", ("p", (win.n, win.oh, win.ow)))
    store = emit.outputs_code(req, rows, ("_acc", emit.F32), ef, of)
    fin = {"dw": ["_acc = fs[sb + co] + fb[co]"], "avg": ["_acc = fs[sb + co] / cnt"],
           "max": ["_acc = fs[sb + co]"]}[win.kind]
    lines += rows.pre + rows.hoist + [f"for co in range({win.co}):"] + emit.indent(fin + store, 1)
    if chunks > 1:
        per = -(-nb // chunks)
        head = emit.prange_head("g", 0, chunks) + [
                f"    sb = g * {win.co}",
                f"    for q in range(g * {per}, min(g * {per} + {per}, {nb})):"]
        return head + emit.indent(lines, 2)
    return ["sb = 0", f"for q in range({nb}):"] + emit.indent(lines, 1)


def _block(win: Window, req: KernelRequest, rb: Band, cb: Band, ntaps: int, ef: Sequence[str],
           of: Sequence[str], pair: bool) -> list[str]:
    """The column loop of one unrolled block (inside its row loop). With `pair` (the interior
    row band), depthwise blocks of 4+ columns compute two adjacent output pixels per channel
    iteration: both share the weight loads and, at stride 1, most input loads (LLVM merges the
    equal addresses): measured 1.45x on the 56x56x144 interior."""
    terms = _tap_terms(win, rb.k0, rb.k1, cb.k0, cb.k1)
    dims = {0: "n", 1: "oh", 2: "ow"}
    out: list[str] = []
    npair = (cb.o1 - cb.o0) // 2 if pair and win.kind == "dw" and cb.o1 - cb.o0 >= 4 else 0
    if npair:
        rows0 = emit.Rows(dims.__getitem__, "co", ("p", (win.n, win.oh, win.ow)), prefix="a")
        rows1 = emit.Rows({0: "n", 1: "oh", 2: "ow1"}.__getitem__, "co", ("p1", (win.n, win.oh, win.ow)),
                     prefix="b")
        acc0 = _unrolled(win, terms)
        acc1 = [ln.replace("_s", "_u").replace("fx[xb", "fx[xc") for ln in acc0]
        st0 = emit.outputs_code(req, rows0, ("_acc", emit.F32), ef, of)
        st1 = emit.outputs_code(req, rows1, ("_acc", emit.F32), ef, of)
        pix = [f"ow = {cb.o0} + 2 * q", "ow1 = ow + 1", f"p = r * {win.ow} + ow", "p1 = p + 1",
               f"xb = xr + (ow * {win.sw} - {win.pad_left}) * {win.c}",
               f"xc = xb + {win.sw * win.c}"]
        out.append(f"for q in range({npair}):")
        out += emit.indent(pix + rows0.pre + rows1.pre + rows0.hoist + rows1.hoist
                      + [f"for co in range({win.co}):"], 1)
        out += emit.indent(acc0 + acc1 + _finish_lines(win, "_s", ntaps) + st0
                      + _finish_lines(win, "_u", ntaps) + st1, 2)
    lo = cb.o0 + 2 * npair
    if lo < cb.o1:
        rows = emit.Rows(dims.__getitem__, "co", ("p", (win.n, win.oh, win.ow)))
        store = emit.outputs_code(req, rows, ("_acc", emit.F32), ef, of)
        pix = [f"p = r * {win.ow} + ow", f"xb = xr + (ow * {win.sw} - {win.pad_left}) * {win.c}"]
        out.append(f"for ow in range({lo}, {cb.o1}):")
        out += emit.indent(pix + rows.pre + rows.hoist + [f"for co in range({win.co}):"], 1)
        out += emit.indent(_unrolled(win, terms) + _finish_lines(win, "_s", ntaps) + store, 2)
    return out


def _choose_unrolled(rbands: list[Band], cbands: list[Band], ntaps: dict) -> set:
    """Blocks emitted with unrolled taps: all of them when there are few (3x3-style borders),
    else the interior rows' column bands, else the interior block only; every other pixel goes
    through the generic path. Keeps code size (compile time) bounded for big kernels."""
    blocks = list(ntaps)
    if max(ntaps.values()) <= MAX_BLOCK_TAPS and len(blocks) <= MAX_BLOCKS and \
            sum(ntaps.values()) <= MAX_TOTAL_TAPS:
        return set(blocks)
    rm = max(rbands, key=lambda b: b.o1 - b.o0)
    cm = max(cbands, key=lambda b: b.o1 - b.o0)
    row = [(rm, cb) for cb in cbands]
    if len(row) <= 3 and max(ntaps[b] for b in row) <= MAX_BLOCK_TAPS and \
            sum(ntaps[b] for b in row) <= MAX_TOTAL_TAPS:
        return set(row)
    return {(rm, cm)} if ntaps[(rm, cm)] <= MAX_BLOCK_TAPS else set()


def window_source(req: KernelRequest, win: Window, consts: Sequence[tuple[str, np.ndarray]]) -> KernelSource:
    """The kernel emit.module for a windowed op; `consts` are (parameter name, array) packed at plan
    time ('fw', 'fb' for depthwise)."""
    req = compose(req, activation_root(req.attrs.activation))
    if tuple(req.out_shape) != (win.n, win.oh, win.ow, win.co):
        raise Unsupported(f"output shape {req.out_shape} != {(win.n, win.oh, win.ow, win.co)}")
    rbands = bands(win.oh, win.h, win.kh, win.sh, win.dh, win.pad_top)
    cbands = bands(win.ow, win.w, win.kw, win.sw, win.dw, win.pad_left)
    blocks = [(rb, cb) for rb in rbands for cb in cbands]
    ntaps = {(rb, cb): (rb.k1 - rb.k0) * (cb.k1 - cb.k0) for rb, cb in blocks}
    unroll = _choose_unrolled(rbands, cbands, ntaps) if blocks else set()
    generic = [(o_h, o_w, rb.k0, rb.k1, cb.k0, cb.k1) for rb, cb in blocks if (rb, cb) not in unroll
               for o_h in range(rb.o0, rb.o1) for o_w in range(cb.o0, cb.o1)]
    nb = len(generic)
    nrows = win.n * win.oh
    flops = 2.0 * nrows * win.ow * win.co * win.kh * win.kw
    parallel = emit.want_parallel(req, flops / SERIAL_FLOPS) and nrows > 1
    gen_flops = 2.0 * win.n * nb * win.co * win.kh * win.kw
    chunks = min(nb, 4 * req.num_threads) if parallel and gen_flops / GENERIC_FLOPS >= 25e-6 else 1

    first = [(Arg("input", 0), "x")] + [(Arg("const", value=v), name) for name, v in consts]
    if nb:
        first.append((Arg("const", value=np.asarray(generic, np.int32).reshape(-1)), "bt"))
        first.append((Arg("const", value=np.zeros(chunks * win.co, np.float32)), "fs"))
    args = emit.std_args(req, first)
    arglist, params = emit.signature(args)
    views, ef, of = emit.std_flats(req)
    body = [f"def entry({params}):", f"    fx = x.reshape({win.n * win.h * win.w * win.c})"]
    body += emit.indent(views, 1)
    if nrows * win.ow * win.co == 0:
        body.append("    return")
        return KernelSource(emit.module("\n".join(body) + "\n", False), "entry", arglist, False)
    # One loop per row band, so every index is an affine function of range() variables with
    # known bounds: LLVM then proves it non-negative and drops Numba's wrap-around selects
    # (measured 7x on 56x56x144 3x3 s1). The biggest band is the parallel one; a prange index has
    # unknown bounds inside the outlined loop, so it is clamped to the band (min/max).
    main = max(range(len(rbands)), key=lambda i: rbands[i].o1 - rbands[i].o0)
    if win.n > 1:
        body.append(f"    for n in range({win.n}):")
        lvl = 2
    else:
        body.append("    n = 0")
        lvl = 1
    for bi, rb in enumerate(rbands):
        mine = [cb for cb in cbands if (rb, cb) in unroll]
        if not mine:
            continue
        if bi == main and parallel and rb.o1 - rb.o0 > 1:
            rl = emit.prange_head("oh", rb.o0, rb.o1)
        else:
            rl = [f"for oh in range({rb.o0}, {rb.o1}):"]
        blk = [f"r = n * {win.oh} + oh",
               f"xr = (n * {win.h} + oh * {win.sh} - {win.pad_top}) * {win.w * win.c}"]
        for cb in mine:
            blk += _block(win, req, rb, cb, ntaps[(rb, cb)], ef, of, pair=bi == main)
        body += emit.indent(rl, lvl) + emit.indent(blk, lvl + 1)
    if nb:
        body += emit.indent(_generic(win, req, ef, of, chunks, nb), lvl)
    return KernelSource(emit.module("\n".join(body) + "\n", parallel), "entry", arglist, parallel)


def geometry(padding: str, h: int, w: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int) -> tuple[int, int, int, int]:
    gh = axis_geometry(padding, h, kh, sh, dh)
    gw = axis_geometry(padding, w, kw, sw, dw)
    return gh.out, gw.out, gh.pad_before, gw.pad_before


@register_generator("DEPTHWISE_CONV_2D")
def generate_depthwise(req: KernelRequest) -> KernelSource:
    a = req.attrs
    x = req.inputs[0]
    f = req.inputs[1] if len(req.inputs) > 1 else None
    b = req.inputs[2] if len(req.inputs) > 2 else None
    if x is None or f is None or np.dtype(x.dtype) != emit.F32 or np.dtype(f.dtype) != emit.F32:
        raise Unsupported("DEPTHWISE_CONV_2D: float32 input and filter only")
    if f.value is None or (b is not None and b.value is None):
        raise Unsupported("DEPTHWISE_CONV_2D: the filter and bias must be constant (packed at plan time)")
    if b is not None and np.dtype(b.dtype) != emit.F32:
        raise Unsupported("DEPTHWISE_CONV_2D: float32 bias only")
    if len(x.shape) != 4 or len(f.shape) != 4:
        raise Unsupported("DEPTHWISE_CONV_2D: 4-D input and filter only")
    n, h, w, c = x.shape
    _, kh, kw, co = f.shape
    if c < 1 or co % c:
        raise Unsupported("DEPTHWISE_CONV_2D: filter channels are not a multiple of input channels")
    oh, ow, pt, pl = geometry(a.padding, h, w, kh, kw, a.stride_h, a.stride_w, a.dilation_h, a.dilation_w)
    win = Window("dw", n, h, w, c, kh, kw, a.stride_h, a.stride_w, a.dilation_h, a.dilation_w,
                 co // c, oh, ow, pt, pl)
    wpk = np.ascontiguousarray(np.asarray(f.value, np.float32).reshape(kh * kw * co))
    bias = (np.zeros(co, np.float32) if b is None
            else np.ascontiguousarray(np.asarray(b.value, np.float32).reshape(co)))
    return window_source(req, win, [("fw", wpk), ("fb", bias)])
