"""CONV_2D, FULLY_CONNECTED and BATCH_MATMUL (float32) as register-tiled GEMM kernels.

One micro-kernel shape serves all three ops: an MR x NR block of the output (MR output rows,
NR = NV * VW output channels) is held in MR * NV SIMD accumulators; each step of the contraction
loads NV weight vectors and broadcasts MR activations (the "broadcast outer product" pattern,
PERFORMANCE.md §1.5 (B)), so no horizontal reduction is ever needed and small K is as fast as
large K. The accumulators start from the packed bias; the fused activation and the cluster's
elementwise epilogue are applied to the accumulators in registers and stored once.

SIMD: explicit <VW x float> vectors through the intrinsics of ../simd.py (vload, vbcast, vfma,
masked vloadm/vstorem...); measured on this machine (Zen 5): 0.2-0.7 s to compile a kernel,
180-250 GF/s single-threaded.

Operands:
* A (activations): read in place. Rows come in runs with affine offsets (CONV_2D: one run per
  output row, rows = output pixels; a 1x1 stride-1 conv, FULLY_CONNECTED and BATCH_MATMUL: one
  run), and a register tile never crosses a run, so its MR rows are one base offset plus literal
  steps; every filter tap adds a literal offset too (dilation included). A padded conv first
  copies its input into a zero-bordered 'const' scratch buffer of fixed shape, so no tap ever
  needs a bounds test. adj_x only changes the literal strides.
* B (weights): packed once at plan time into NR-wide panels [panel][k][NR] (zero-padded past N)
  and passed as a 'const' argument; conv k order is (kh, kw, ci), i.e. taps outer. Weights that
  are not constant (BATCH_MATMUL of two activations, a run-time filter) are packed by the
  kernel's prologue into a 'const' scratch buffer of the same layout, then run the same loop.
* Edges: the last tile of a run moves back to end at the run's end (it recomputes rows of the
  previous tile and skips their stores); a partial last panel uses masked loads/stores (lanes
  past N are never touched).
* Epilogue: Var(0) = act(acc) is printed over vectors when every function has a vector form
  (add/sub/mul/div/max/min/neg/abs/square/sqrt/rsqrt/floor/ceil, float32 in and out); otherwise
  (libm calls, comparisons, bool outputs) the tile goes through a scratch row and the scalar
  printer (printer.to_python).

Threading: kernels with >= ~50 µs of estimated serial work (and num_threads > 1) prange over
~10 coarse tasks (row tiles, panels, or batches); everything else is serial. Weight panels are
walked in blocks that fit L2 when the packed weights do not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tflite_jit.backends.numba_cpu import emit, host, printer
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.host import SIMD_VERSION, VW
from tflite_jit.backends.numba_cpu.printer import vec_expr
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops import expr as E
from tflite_jit.ops.nn import axis_geometry

F32 = np.dtype(np.float32)


# ---- problem description -----------------------------------------------------------------------


@dataclass
class _Gemm:
    """out[b, r, n] = epilogue(act(bias[n] + sum_k A(b, r, k) * B(b, k, n))) for batches b < NB,
    rows r < M = RO * L, laid out as rows (b*M + r) of the flat output [.., N].

    Rows come in RO runs of L rows whose A offsets are affine: row (ro, l) starts at
    outer(ro) + l * LS (a conv: ro = image row of output pixels, l = output column; a GEMM:
    RO = 1). Register tiles never cross a run, so a tile's MR rows are one base offset plus
    literals (one address register instead of MR)."""

    RO: int
    L: int
    LS: int  # A offset step between consecutive rows of a run
    outer_code: Callable[[str, str], list[str]]  # (dst name, run expr) -> lines: A offset of run
    N: int
    KT: int  # contraction length: len(taps) * CI
    CI: int  # inner contraction length per tap
    taps: tuple[int, ...]  # A offset of each tap
    ask: int  # A stride along the inner k
    a_name: str  # the A array argument
    NB: int = 1
    act: str = "NONE"
    # packed weights: const array (plan time) or None (packed by the prologue from `w_rt`)
    w_packed: np.ndarray | None = None
    w_pack_code: Callable[[int], list[str]] | None = None  # (NR) -> prologue lines
    w_batches: int = 1  # distinct weight matrices (BATCH_MATMUL)
    bias: np.ndarray | None = None  # plan-time bias [N] (None: none, or run-time `b_rt`)
    bias_rt: bool = False
    boff: np.ndarray | None = None  # [NB, 2]: A base offset, W batch index per output batch
    prologue: list[str] = field(default_factory=list)
    flops: float = 0.0
    taps_loop: tuple[int, int, int, int] | None = None  # (KH, KW, kh A step, kw A step) if looped
    consts: list[tuple[str, Arg]] = field(default_factory=list)  # extra (name, const arg)s

    @property
    def M(self) -> int:
        return self.RO * self.L


def _act_root(act: str) -> E.Expr:
    """The op's result over its pre-activation value: LiteRT's float conv/FC kernels clamp for
    RELU/RELU6/RELU_N1_TO_1 and ignore TANH/SIGN_BIT (ops/nn.py `add_bias_clamp`)."""
    if act in ("RELU", "RELU6", "RELU_N1_TO_1"):
        return E.activation_expr(E.Var(0), act)
    return E.Var(0)


def _f32(req: KernelRequest, idx: Sequence[int]) -> None:
    for i in idx:
        t = req.inputs[i] if i < len(req.inputs) else None
        if t is not None and np.dtype(t.dtype) != F32:
            raise Unsupported(f"{req.op_name}: input {i} is {np.dtype(t.dtype)}; the Numba GEMM "
                              f"kernels are float32 only")


def _pack_panels(wt: np.ndarray, NR: int) -> np.ndarray:
    """[..., N, K] -> flat [..., panel, K, NR], zero-padded past N."""
    *lead, n, k = wt.shape
    npan = -(-n // NR)
    w = np.zeros((*lead, npan * NR, k), F32)
    w[..., :n, :] = wt
    w = w.reshape(*lead, npan, NR, k).swapaxes(-1, -2)
    return np.ascontiguousarray(w).reshape(-1)


# ---- tile choice -------------------------------------------------------------------------------

#: serial throughput assumed for the threading decision (measured 150-250 GF/s on 1x1 shapes),
#: and the rate at which packed weights stream in (a GEMV is bound by it: 5 MB in ~50 µs)
SERIAL_FLOPS = 100e9
WEIGHT_BYTES_PER_S = 100e9
#: tasks per parallel region (XNNPACK: >= 5 tiles per thread; PERFORMANCE.md §1.4)
TASKS = 10
#: packed weights bigger than this are walked in blocks of panels of about L2_BLOCK bytes
L2_WHOLE = 512 * 1024
L2_BLOCK = 256 * 1024


#: (NV vectors per panel) -> (rows per tile, relative efficiency), measured on MobileNet shapes
#: (benchmarks/bench_numba_gemm.py): one vector column needs many rows to hide
#: the FMA latency; 7x2 (14 accumulators, XNNPACK's f32 tile on AVX-512) is the best all-rounder.
_TILES_512 = {1: (14, 0.85), 2: (7, 1.0), 3: (5, 0.97), 4: (4, 0.95)}
_TILES_256 = {1: (8, 0.8), 2: (6, 1.0), 3: (4, 0.97), 4: (2, 0.8)}


def choose_tile(RO: int, L: int, N: int) -> tuple[int, int]:
    """(MR rows, NV vectors) of the register tile for RO runs of L rows: least padded work (each
    run's rows rounded up to MR, columns to NV vectors) divided by the tile's efficiency.
    MR*NV + NV + 1 vector registers are live in the loop. A single row (GEMV) takes up to 8
    vectors."""
    nvec = -(-N // VW)
    table = _TILES_512 if VW == 16 else _TILES_256
    best = None
    for nv in range(1, min(nvec, 8 if L <= 2 else 4) + 1):
        cap, eff = table.get(nv, (1, 1.0))
        mr = min(cap, L)
        mr = -(-L // -(-L // mr))  # balance the tiles of a run: fewer recomputed rows
        work = RO * (-(-L // mr) * mr) * (-(-nvec // nv) * nv)
        key = (work / eff, -nv)
        if best is None or key < best[0]:
            best = (key, mr, nv)
    assert best is not None
    return best[1], best[2]


# ---- code emission -----------------------------------------------------------------------------


def _plus(*terms: str | int) -> str:
    """`a + b + ...` without zero terms."""
    out = [str(t) for t in terms if t not in (0, "0", "")]
    return " + ".join(out) if out else "0"


class _Emit:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ind = 1

    def __call__(self, *lines: str) -> None:
        for s in lines:
            self.lines.append("    " * self.ind + s)


def _extra_row_code(shape: tuple[int, ...], out_lead: tuple[int, ...], g: str) -> str:
    """Flat offset of the start of output row `g` (an index over out_lead) in a broadcast extra."""
    lead, last = shape[:-1], shape[-1]
    terms = []
    inner = 1
    stride = last
    for d in range(len(out_lead) - 1, -1, -1):
        if lead[d] != 1:
            q = f"({g})" if inner == 1 else f"(({g}) // {inner})"
            terms.append(f"({q} % {out_lead[d]}) * {stride}" if d > 0 else f"{q} * {stride}")
        stride *= lead[d]
        inner *= out_lead[d]
    return " + ".join(terms) if terms else "0"


def _generate(req: KernelRequest, g: _Gemm, arg_names: list[str], args: list[Arg],
              tile: tuple[int, int] | None) -> KernelSource:
    """The kernel for `g`; `arg_names` / `args`: the op's own parameters (the epilogue's extras
    and the outputs follow)."""
    n2, a2 = _common_args(req)
    arg_names, args = arg_names + n2, args + a2
    RO, L, N, NB, M = g.RO, g.L, g.N, g.NB, g.M
    MR, NV = tile or choose_tile(RO, L, N)
    MR = min(MR, L)
    NR = NV * VW
    NPAN = -(-N // NR)
    NLT = -(-L // MR)  # tiles per run
    NTILE = RO * NLT  # tiles per batch
    mask_n = N % NR != 0
    partial = L % MR != 0
    out_lead = tuple(req.out_shape[:-1])

    # ---- epilogue expressions
    root = _act_root(g.act)
    exprs = [E.substitute(o.expr, {0: root}) for o in req.outputs]
    used = sorted(set().union(*(E.variables(e) for e in exprs)) - {0})
    for k in used:
        if np.dtype(req.extras[k - 1].dtype) not in (F32, np.dtype(np.bool_)):
            raise Unsupported(f"{req.op_name}: epilogue input of type {req.extras[k - 1].dtype}")
    for o in req.outputs:
        if np.dtype(o.arg.dtype) not in (F32, np.dtype(np.bool_)):
            raise Unsupported(f"{req.op_name}: output of type {o.arg.dtype}")
    vec = all(np.dtype(o.arg.dtype) == F32 for o in req.outputs) and all(
        np.dtype(req.extras[k - 1].dtype) == F32 for k in used)
    vexprs = [vec_expr(e, {0: "v"} | {k: f"y{k}" for k in used}) for e in exprs] if vec else []
    vec = vec and all(v is not None for v in vexprs)
    # extras' row offsets: constant 0 (broadcast rows), affine in the row (full rows), or general
    ekind = {}
    for k in used:
        shape = req.extras[k - 1].shape
        if all(d == 1 for d in shape[:-1]):
            ekind[k] = "zero"
        elif tuple(shape[:-1]) == out_lead:
            ekind[k] = "affine"
        else:
            ekind[k] = "general"

    # ---- threading
    wp = (_pack_panels(g.w_packed, NR) if g.w_packed is not None
          else np.zeros(g.w_batches * NPAN * g.KT * NR, F32))
    serial_s = g.flops / SERIAL_FLOPS + wp.nbytes / WEIGHT_BYTES_PER_S
    parallel = emit.want_parallel(req, serial_s)
    split, count = None, 1
    if parallel:
        dims = (("b", NB), ("m", NTILE), ("p", NPAN))
        split, count = next(((d, c) for d, c in dims if c >= TASKS), max(dims, key=lambda t: t[1]))
        parallel = count >= 2
    ntask = min(TASKS, count) if parallel else 1

    # ---- constant and scratch arguments
    bp = np.zeros(NPAN * NR, F32)
    if g.bias is not None:
        bp[:N] = g.bias.reshape(-1)
    arg_names = arg_names + ["Wp", "Bp"]
    args = args + [Arg("const", value=wp), Arg("const", value=bp)]
    if g.boff is not None:
        arg_names.append("BOFF")
        args.append(Arg("const", value=np.ascontiguousarray(g.boff, np.int64).reshape(-1)))
    if not vec:
        arg_names.append("T")
        args.append(Arg("const", value=np.zeros(ntask * MR * NR, F32)))
    for name, arg in g.consts:
        arg_names.append(name)
        args.append(arg)

    # ---- prologue (serial): input padding, run-time weight/bias packing
    pro = _Emit()
    pro(*g.prologue)
    if g.w_pack_code is not None:
        pro(*g.w_pack_code(NR))
    if g.bias_rt:
        pro(f"for n in range({N}):", "    st(Bp, n, ld(b_rt, n))")

    # ---- the tiles of one task (all tiles when serial)
    em = _Emit()
    tb = f"task * {MR * NR}" if parallel else "0"

    def rng(dim: str, full: int) -> str:
        if split == dim:
            return f"range(task * {full} // {ntask}, (task + 1) * {full} // {ntask})"
        return f"range({full})"

    if NB > 1:
        em(f"for bo in {rng('b', NB)}:")
        em.ind += 1
        em("ab = ld(BOFF, 2 * bo)", f"wb = ld(BOFF, 2 * bo + 1) * {NPAN * g.KT * NR}", f"gb = bo * {M}")
        ab, wb, gb = "ab", "wb", "gb"
    else:
        ab = wb = gb = "0"
    if split == "p":
        em(f"p_lo = task * {NPAN} // {ntask}", f"p_hi = (task + 1) * {NPAN} // {ntask}")
        p_lo, p_hi = "p_lo", "p_hi"
    else:
        p_lo, p_hi = "0", str(NPAN)
    ncp = NPAN if NPAN * g.KT * NR * 4 <= L2_WHOLE else max(1, L2_BLOCK // (g.KT * NR * 4))
    if ncp < NPAN:  # weight panels in L2-sized blocks, all tiles per block
        em(f"for pb in range({p_lo}, {p_hi}, {ncp}):")
        em.ind += 1
        em(f"pe = min(pb + {ncp}, {p_hi})")
        prange_ = "range(pb, pe)"
    else:
        prange_ = f"range({p_lo}, {p_hi})"
    em(f"for t in {rng('m', NTILE)}:")
    em.ind += 1
    if RO == 1:
        ro, lt = "0", "t"
    elif NLT == 1:
        ro, lt = "t", "0"
    else:
        em(f"ro = t // {NLT}", f"lt = t - ro * {NLT}")
        ro, lt = "ro", "lt"
    if partial:  # the last tile of a run moves back to end at the run's end; rows < skip are done
        em(f"l0 = min({lt} * {MR}, {L - MR})", f"skip = {lt} * {MR} - l0")
    else:
        em(f"l0 = {lt} * {MR}")
    em(*g.outer_code("a0", ro))
    em(f"a0 += {_plus(f'l0 * {g.LS}' if g.LS != 1 else 'l0', ab)}")
    em(f"g0 = {_plus(gb, f'{ro} * {L}' if ro != '0' else 0, 'l0')}")
    em(f"q0 = g0 * {N}")
    for k in used:
        if ekind[k] == "affine":
            em(f"eo{k} = g0 * {req.extras[k - 1].shape[-1]}")
        elif ekind[k] == "general":
            for i in range(MR):
                em(f"eo{k}_{i} = {_extra_row_code(req.extras[k - 1].shape, out_lead, _plus('g0', i))}")
    em(f"for p in {prange_}:")
    em.ind += 1
    em(f"nb = p * {NR}", f"wo = {_plus(wb, f'p * {g.KT * NR}')}")
    for j in range(NV):
        em(f"b{j} = vload(Bp, {_plus('nb', j * VW)})")
    for i in range(MR):
        for j in range(NV):
            em(f"c{i}_{j} = b{j}")

    def kbody(wk: str, avar: str, aoff: int) -> None:
        for j in range(NV):
            em(f"w{j} = vload(Wp, {_plus(wk, j * VW)})")
        for i in range(MR):
            em(f"x{i} = vbcast({g.a_name}, {_plus('a0', aoff + i * g.LS, avar)})")
            for j in range(NV):
                em(f"c{i}_{j} = vfma(x{i}, w{j}, c{i}_{j})")

    kvar = "k" if g.ask == 1 else f"k * {g.ask}"
    if g.taps_loop is None:
        for t, toff in enumerate(g.taps):
            em(f"for k in range({g.CI}):")
            em.ind += 1
            em(f"wk = {_plus('wo', t * g.CI * NR, f'k * {NR}')}")
            kbody("wk", kvar, toff)
            em.ind -= 1
    else:
        KH, KW, hstep, wstep = g.taps_loop
        em(f"for kh in range({KH}):")
        em.ind += 1
        em(f"th = kh * {hstep}", f"wh = wo + kh * {KW * g.CI * NR}")
        for kw in range(KW):
            em(f"for k in range({g.CI}):")
            em.ind += 1
            em(f"wk = {_plus('wh', kw * g.CI * NR, f'k * {NR}')}")
            kbody("wk", _plus("th", kvar), kw * wstep)
            em.ind -= 1
        em.ind -= 1

    # ---- epilogue: act + expressions on the accumulators, stored once
    def nvalid(j: int) -> str:
        return f"{N - j * VW} - nb"

    def erow(k: int, i: int) -> str:
        if ekind[k] == "zero":
            return "0"
        if ekind[k] == "affine":
            return _plus(f"eo{k}", i * req.extras[k - 1].shape[-1])
        return f"eo{k}_{i}"

    for i in range(MR):
        guarded = partial and i < MR - 1
        if guarded:
            em(f"if skip <= {i}:")
            em.ind += 1
        if vec:
            for j in range(NV):
                em(f"v = c{i}_{j}")
                for k in used:
                    if req.extras[k - 1].shape[-1] == 1:
                        em(f"y{k} = vbcast(e{k}, {erow(k, i)})")
                    elif mask_n:
                        em(f"y{k} = vloadm(e{k}, {_plus(erow(k, i), 'nb', j * VW)}, {nvalid(j)})")
                    else:
                        em(f"y{k} = vload(e{k}, {_plus(erow(k, i), 'nb', j * VW)})")
                for q, ve in enumerate(vexprs):
                    dst = _plus("q0", i * N, "nb", j * VW)
                    if mask_n:
                        em(f"vstorem(o{q}, {dst}, {ve}, {nvalid(j)})")
                    else:
                        em(f"vstore(o{q}, {dst}, {ve})")
        else:  # scalar: through the task's scratch tile
            for j in range(NV):
                em(f"vstore(T, {_plus(tb, i * NR + j * VW)}, c{i}_{j})")
            em(f"for jj in range({NR}):")
            em.ind += 1
            em("n = nb + jj")
            if mask_n:
                em(f"if n < {N}:")
                em.ind += 1
            em(f"v = ld(T, {_plus(tb, i * NR, 'jj')})")
            names = {0: "v"}
            for k in used:
                col = "" if req.extras[k - 1].shape[-1] == 1 else "n"
                names[k] = f"ld(e{k}, {_plus(erow(k, i), col)})"
            for q, e in enumerate(exprs):
                em(f"st(o{q}, {_plus('q0', i * N, 'n')}, "
                   f"{printer.to_python(e, names, F32, vector_libm=True)})")
            em.ind -= 2 if mask_n else 1
        if guarded:
            em.ind -= 1

    header = (
        f"# tflite_jit gemm kernel: {req.op_name} M={M} N={N} K={g.KT} batches={NB} "
        f"tile={MR}x{NR} simd={SIMD_VERSION}/{VW}\n"
        + emit.helper_import(host.SIMD, *printer.INTRINSICS)
    )

    # A parallel kernel keeps its tile loops in a separate serial function that the prange body
    # calls: the parfor passes then see a one-line loop (measured: parallel compile of the stem
    # conv 4.4 s -> 2.5 s). The index is cast so that both typings of the prange body (int64,
    # then uint64 in the outlined gufunc) compile the same single signature.
    params = ", ".join(arg_names)
    uses_vector_libm = emit.uses_vector_libm("\n".join(em.lines))
    src = printer.PRELUDE + (printer.EXP_PRELUDE if uses_vector_libm else "") + header + "\n\n"
    if parallel:
        src += emit.njit_line(False) + "\n" + f"def gemm_task(task, {params}):\n" + "\n".join(em.lines) + "\n\n\n"
        pro(f"for task in numba.prange({ntask}):", f"    gemm_task(np.int64(task), {params})")
        src += emit.njit_line(True) + "\n" + f"def gemm_kernel({params}):\n" + "\n".join(pro.lines) + "\n"
    else:
        body = pro.lines + em.lines
        src += emit.njit_line(False) + "\n" + f"def gemm_kernel({params}):\n" + "\n".join(body or ["    pass"]) + "\n"
    return KernelSource(src, "gemm_kernel", args, parallel)


def _common_args(req: KernelRequest) -> tuple[list[str], list[Arg]]:
    names, args = [], []
    for k in range(len(req.extras)):
        names.append(f"e{k + 1}")
        args.append(Arg("extra", k))
    for q in range(len(req.outputs)):
        names.append(f"o{q}")
        args.append(Arg("output", q))
    return names, args


def _operands(req: KernelRequest, floats: Sequence[int]) -> tuple:
    """(x, weights, bias or None) of a GEMM node whose inputs `floats` are float32 and whose
    outputs are not empty."""
    _f32(req, floats)
    if any(math.prod(o.arg.shape) == 0 for o in req.outputs):
        raise Unsupported(f"{req.op_name}: empty output")
    return req.inputs[0], req.inputs[1], req.inputs[2] if len(req.inputs) > 2 else None


# ---- CONV_2D -----------------------------------------------------------------------------------


@register_generator("CONV_2D")
def conv2d(req: KernelRequest, tile: tuple[int, int] | None = None) -> KernelSource:
    a = req.attrs
    x, f, b = _operands(req, (0, 1, 2))
    nimg, H, W, C = x.shape
    CO, KH, KW, CI = f.shape
    if CI != C:
        raise Unsupported(f"CONV_2D: grouped convolution ({C // CI} groups) has no Numba kernel")
    SH, SW = a.stride
    DH, DW = a.dilation
    gh = axis_geometry(a.padding, H, KH, SH, DH)
    gw = axis_geometry(a.padding, W, KW, SW, DW)
    OH, OW = gh.out, gw.out
    need_h = (OH - 1) * SH + (KH - 1) * DH + 1
    need_w = (OW - 1) * SW + (KW - 1) * DW + 1
    pt, pl = gh.pad_before, gw.pad_before
    pb, pr = max(need_h - pt - H, 0), max(need_w - pl - W, 0)
    padded = bool(pt or pl or pb or pr)
    HP, WP = H + pt + pb, W + pl + pr
    names, args = ["x"], [Arg("input", 0)]
    consts: list[tuple[str, Arg]] = []
    prologue: list[str] = []
    if padded:
        consts.append(("XP", Arg("const", value=np.zeros(nimg * HP * WP * C, F32))))
        prologue += [
            f"for rr in range({nimg * H}):",
            f"    bi = rr // {H}" if nimg > 1 else "    bi = 0",
            f"    src = rr * {W * C}",
            f"    dst = ((bi * {HP} + rr - bi * {H} + {pt}) * {WP} + {pl}) * {C}",
            f"    for q in range({W * C}):",
            "        st(XP, dst + q, ld(x, src + q))",
        ]
    A = "XP" if padded else "x"
    npix = OH * OW

    taps = tuple((kh * DH * WP + kw * DW) * C for kh in range(KH) for kw in range(KW))
    taps_loop = (KH, KW, DH * WP * C, DW * C) if KH > 1 else None  # kh loop: compile time
    common = dict(N=CO, KT=KH * KW * C, CI=C, taps=taps, ask=1, a_name=A, act=a.activation,
                  flops=2.0 * nimg * npix * CO * KH * KW * C, prologue=prologue, taps_loop=taps_loop)
    if SH * WP == OW * SW and (nimg == 1 or HP == OH * SH):
        # consecutive output pixels are evenly spaced in the input across rows (and images),
        # e.g. a 1x1 stride-1 conv: one run over all pixels
        g = _Gemm(RO=1, L=nimg * npix, LS=SW * C, outer_code=lambda dst, ro: [f"{dst} = 0"], **common)
    else:  # one run per output row (image b, row oh)
        def outer(dst: str, ro: str) -> list[str]:
            if nimg == 1:
                return [f"{dst} = {ro} * {SH * WP * C}"]
            return [f"bi_ = {ro} // {OH}",
                    f"{dst} = bi_ * {HP * WP * C} + ({ro} - bi_ * {OH}) * {SH * WP * C}"]

        g = _Gemm(RO=nimg * OH, L=OW, LS=SW * C, outer_code=outer, **common)
    _weights_nk(g, f, CO, KH * KW * C, names, args)
    _bias(req, b, g, names, args, CO)
    g.consts = consts
    return _generate(req, g, names, args, tile)


def _weights_nk(g: _Gemm, w, N: int, K: int, names: list[str], args: list[Arg]) -> None:
    """An [N, K] weight matrix: packed at plan time when constant; otherwise input 1 (`w_rt`)
    is packed into the Wp panels by the kernel's prologue."""
    if w.value is not None:
        g.w_packed = np.asarray(w.value, F32).reshape(N, K)
        return
    names.append("w_rt")
    args.append(Arg("input", 1))

    def code(NR: int) -> list[str]:
        return [f"for n in range({N}):",
                f"    pw = (n // {NR}) * {K * NR} + n % {NR}",
                f"    for k in range({K}):",
                f"        st(Wp, pw + k * {NR}, ld(w_rt, n * {K} + k))"]

    g.w_pack_code = code


def _bias(req: KernelRequest, b, g: _Gemm, names: list[str], args: list[Arg], N: int) -> None:
    if b is None:
        return
    if b.value is not None:
        g.bias = np.asarray(b.value, F32).reshape(-1)
    else:
        names.append("b_rt")
        args.append(Arg("input", 2))
        g.bias_rt = True


# ---- FULLY_CONNECTED ---------------------------------------------------------------------------


@register_generator("FULLY_CONNECTED")
def fully_connected(req: KernelRequest, tile: tuple[int, int] | None = None) -> KernelSource:
    a = req.attrs
    x, w, b = _operands(req, (0, 1, 2))
    units, depth = w.shape
    rows = math.prod(x.shape) // depth
    if math.prod(req.out_shape) != rows * units:
        raise Unsupported("FULLY_CONNECTED: output shape does not match rows x units")
    names, args = ["x"], [Arg("input", 0)]
    g = _Gemm(RO=1, L=rows, LS=depth, outer_code=lambda dst, ro: [f"{dst} = 0"], N=units, KT=depth,
              CI=depth, taps=(0,), ask=1, a_name="x", act=a.activation, flops=2.0 * rows * units * depth)
    _weights_nk(g, w, units, depth, names, args)
    _bias(req, b, g, names, args, units)
    return _generate(req, g, names, args, tile)


# ---- BATCH_MATMUL ------------------------------------------------------------------------------


def _batch_index(out_batch: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Flat index into `shape`'s batch dims for every output batch (broadcast dims read 0)."""
    pad = (1,) * (len(out_batch) - len(shape)) + tuple(shape)
    idx = np.zeros(out_batch, np.int64)
    for d, s in enumerate(pad):
        if s != 1:
            coord = np.arange(out_batch[d]).reshape([-1 if e == d else 1 for e in range(len(out_batch))])
            idx = idx * s + coord
        # size-1 dims contribute nothing (and multiply by 1)
    return idx.reshape(-1)


@register_generator("BATCH_MATMUL")
def batch_matmul(req: KernelRequest, tile: tuple[int, int] | None = None) -> KernelSource:
    a = req.attrs
    x, y, _ = _operands(req, (0, 1))
    xs, ys = tuple(x.shape), tuple(y.shape)
    M, K = (xs[-1], xs[-2]) if a.adj_x else (xs[-2], xs[-1])
    N = ys[-2] if a.adj_y else ys[-1]
    out_batch = tuple(req.out_shape[:-2])
    NB = math.prod(out_batch)
    xb_n, yb_n = math.prod(xs[:-2]), math.prod(ys[:-2])
    xi = _batch_index(out_batch, xs[:-2])
    yi = _batch_index(out_batch, ys[:-2])
    names, args = ["x"], [Arg("input", 0)]
    ls, ask = (1, M) if a.adj_x else (K, 1)  # adj_x: x[b, k, m]
    g = _Gemm(RO=1, L=M, LS=ls, outer_code=lambda dst, ro: [f"{dst} = 0"], N=N, KT=K, CI=K,
              taps=(0,), ask=ask, a_name="x", NB=NB, flops=2.0 * NB * M * N * K, w_batches=yb_n)
    g.boff = np.stack([xi * (M * K), yi], axis=1)
    if NB == 1:
        g.boff = None
        assert xb_n == 1 and yb_n == 1
    if y.value is not None:
        yv = np.asarray(y.value, F32).reshape(yb_n, *ys[-2:])
        g.w_packed = yv if a.adj_y else np.ascontiguousarray(yv.swapaxes(-1, -2))  # [yb, N, K]
    else:
        names.append("w_rt")
        args.append(Arg("input", 1))

        def code(NR: int) -> list[str]:
            NPAN = -(-N // NR)
            if a.adj_y:  # y[yb, n, k]: a transpose, element by element
                return [f"for yb in range({yb_n}):",
                        f"    for n in range({N}):",
                        f"        pw = yb * {NPAN * K * NR} + (n // {NR}) * {K * NR} + n % {NR}",
                        f"        for k in range({K}):",
                        f"            st(Wp, pw + k * {NR}, ld(w_rt, (yb * {N} + n) * {K} + k))"]
            # y[yb, k, n]: each panel row is NR contiguous floats of a y row (masked past N)
            lines = [f"for yb in range({yb_n}):",
                     f"    for k in range({K}):",
                     f"        for p in range({NPAN}):",
                     f"            src = (yb * {K} + k) * {N} + p * {NR}",
                     f"            dst = ((yb * {NPAN} + p) * {K} + k) * {NR}"]
            for j in range(NR // VW):
                lines.append(f"            vstore(Wp, {_plus('dst', j * VW)}, vloadm(w_rt, "
                             f"{_plus('src', j * VW)}, {N - j * VW} - p * {NR}))")
            return lines

        g.w_pack_code = code
    return _generate(req, g, names, args, tile)


