"""Dynamic-range ("hybrid") FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D and BATCH_MATMUL: float32
activations, int8 constant weights, float32 outputs, equal to ops/qhybrid.py (which is bit-exact
with LiteRT's builtin hybrid kernels) to the bit.

One kernel call does the three steps LiteRT does (FULLY_CONNECTED and CONV_2D: a shared,
shape-generic entry of ../qdot.py the step calls with its shapes as arguments, see `_shared`;
DEPTHWISE_CONV_2D and BATCH_MATMUL: one generated module per node):

1. quantize: each row of the input (FULLY_CONNECTED / BATCH_MATMUL: a row of `depth` values;
   convolutions: a whole image) is quantized exactly as ops/qhybrid.py `quantize_rows` does it
   (symmetric or asymmetric, the 8-wide vector rounding and the scalar tail) into a scratch
   (../hybridq.py); the row's scale goes to a small table;
2. multiply: FULLY_CONNECTED and CONV_2D multiply the int8 weights by the quantized inputs in
   integers (../qdot.py: int32 accumulators on 16 lanes, vpdpbusd on AVX512-VNNI hosts), exact
   for any row length; a convolution gathers each output pixel's taps (those outside the image
   as zero bytes) and subtracts zp * the sum of w over the taps inside the image per border
   pattern (`_raw_join`). DEPTHWISE_CONV_2D and BATCH_MATMUL run the float32 kernels of
   depthwise.py / gemm.py on the centered q as float32 integers and the weights as float32
   integers, exact while a sum stays below 2**24 (checked per output channel at plan time:
   sum_k |w| * max|q - zp|; other nodes are refused). Either way the result is LiteRT's int32
   accumulator exactly. (Taps in a convolution's padding contribute 0, as LiteRT skips them.)
3. finish: float32(acc) times the row's scale and the channel's weight scale in LiteRT's order
   (ops/qhybrid.py `_scale_out` / `_spatial_scale`), + bias, the fused clamp (../hybridq.py).
   The whole module is compiled without fast-math, so nothing is contracted into an FMA or
   reordered.

Not compiled (reference backend, with the reason in the plan): weights that are not constant,
-128 weights where LiteRT's SSE dot product mis-multiplies them (ops/qhybrid.py
`_minus128_error`), grouped convolutions, fused TANH / SIGN_BIT, BATCH_MATMUL with adj_x or a
broadcast input, and depthwise / batch-matmul sums that could leave float32's exact range.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from tflite_jit.backends.numba_cpu import emit, host
from tflite_jit.backends.numba_cpu.generators import GENERATORS, gemm, qconv, register_generator
from tflite_jit.backends.numba_cpu.generators import depthwise as fdw
from tflite_jit.backends.numba_cpu.quantized import no_epilogue
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Output, TensorArg, Unsupported
from tflite_jit.ops import expr as E
from tflite_jit.ops.nn import axis_geometry
from tflite_jit.ops.qhybrid import HybridAttrs

F32 = np.dtype(np.float32)
#: float32 sums of integers are exact below this magnitude
EXACT = float(1 << 24)
#: bump when the generated hybrid code changes meaning (printed into every module)
HVERSION = "1"
_CLAMPS = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}
#: the fast-math option of the core kernels' decorators (removed, see _assemble)
_FASTMATH = re.compile(r"fastmath=\{[^}]*\}, ")

def _int8_weights(req: KernelRequest) -> np.ndarray:
    w = req.inputs[1] if len(req.inputs) > 1 else None
    if w is None or w.value is None:
        raise Unsupported(f"hybrid {req.op_name}: the weights must be constant")
    v = np.asarray(w.value)
    return v.view(np.int8) if v.dtype == np.uint8 else v


def _bias(req: KernelRequest, n: int) -> np.ndarray | None:
    b = req.inputs[2] if len(req.inputs) > 2 else None
    if b is None:
        return None
    if b.value is None or np.dtype(b.dtype) != F32:
        raise Unsupported(f"hybrid {req.op_name}: the bias must be a constant float32 tensor")
    return np.ascontiguousarray(np.asarray(b.value, F32).reshape(n))


def _worst(w_nk: np.ndarray, asym: bool) -> float:
    """The largest |accumulator| any input could produce: sum_k |w[n, k]| * max|q - zp|."""
    return float(np.abs(w_nk.astype(np.int64)).sum(axis=1).max(initial=0)) * (255 if asym else 127)


def _check_exact(w_nk: np.ndarray, asym: bool, what: str) -> None:
    worst = _worst(w_nk, asym)
    if worst >= EXACT:
        raise Unsupported(f"hybrid {what}: an accumulator could reach {worst:.3g}, past float32's exact "
                          "integers (runs on reference)")


def _no_minus128(w_nk: np.ndarray, what: str) -> None:
    """LiteRT's SSE dot product mis-multiplies -128 weights in blocks of 16 columns (ops/qhybrid.py
    `_minus128_error`); those nodes stay on the reference, which reproduces it."""
    head = w_nk.shape[1] & ~15
    if head and np.any(w_nk[:, :head] == -128):
        raise Unsupported(f"hybrid {what}: -128 weights, which LiteRT's SSE dot product mis-multiplies "
                          "(runs on reference)")


def _lit(v: float) -> str:
    return "np.inf" if v == math.inf else "-np.inf" if v == -math.inf else repr(v)


def _clamp(act: str) -> tuple[float, float]:
    lo, hi = _CLAMPS[act]
    return (-math.inf if lo is None else lo, math.inf if hi is None else hi)


def _shadow(req: KernelRequest, attrs, w_f32: np.ndarray) -> KernelRequest:
    """The float request the integer product runs as: input 0 is the centered scratch (same
    shape), the weights float32 integers, no bias, no activation, no epilogue."""
    x = req.inputs[0]
    ins = [TensorArg(tuple(x.shape), F32), TensorArg(tuple(w_f32.shape), F32, w_f32), None]
    out = TensorArg(tuple(req.out_shape), F32)
    return KernelRequest(req.op_name, attrs, ins, [], [Output(E.Var(0), out)], req.num_threads)


def _assemble(req: KernelRequest, core: KernelSource, rows: int, row_len: int, asym: bool, finish: str,
              inner: int, sw: np.ndarray, bias: np.ndarray | None, act: str) -> KernelSource:
    """The module of the float32-GEMM path (DEPTHWISE_CONV_2D, BATCH_MATMUL): the core kernel's
    entry becomes `hentry`, which first quantizes the input rows (hybridq.hq_row), then runs the
    core's body, then the float finish (hybridq.`finish`) over the output viewed as
    [rows * inner, n]."""
    m = re.search(rf"^def {core.entry}\((.*?)\):", core.source, re.M)
    if m is None:
        raise Unsupported(f"hybrid {req.op_name}: unexpected core kernel source")
    params = [p.strip() for p in m.group(1).split(",")]
    xi = [i for i, a in enumerate(core.args) if a.kind == "input" and a.index == 0]
    oi = [i for i, a in enumerate(core.args) if a.kind == "output" and a.index == 0]
    if len(xi) != 1 or len(oi) != 1 or any(a.kind in ("input", "extra") and a is not core.args[xi[0]]
                                          for a in core.args):
        raise Unsupported(f"hybrid {req.op_name}: unexpected core kernel arguments")
    xq, out = params[xi[0]], params[oi[0]]
    if core.source[m.end():].count("\ndef ") or not core.source.endswith("\n"):
        raise Unsupported(f"hybrid {req.op_name}: the core kernel is not the module's last function")
    n = sw.size
    lo, hi = _clamp(act)
    out_size = math.prod(req.out_shape)
    # The steps go into the core's own function (not a wrapper calling it: Numba would link and
    # optimize the core's code a second time, measured 3-4x the compile time).
    pro = [f"xf = xin.reshape({rows * row_len})",
           f"for r in range({rows}):",
           f"    SF[r] = hq_row(xf, r * {row_len}, {row_len}, {xq}, {asym})"]
    epi = [f"{finish}({out}.reshape({out_size}), SF, SW, B, {rows}, {inner}, {n}, "
           f"{bias is not None}, np.float32({_lit(lo)}), np.float32({_lit(hi)}))"]
    head = (f"# tflite_jit hybrid {req.op_name} v{HVERSION}: {rows} rows of {row_len}, "
            f"{'asymmetric' if asym else 'symmetric'}\n"
            + emit.helper_import(host.HYBRIDQ, "hq_row", finish))
    src = (head + core.source[:m.start()] + f"def hentry(xin, SF, SW, B, {m.group(1)}):\n"
           + "".join(f"    {ln}\n" for ln in pro) + core.source[m.end():].lstrip("\n")
           + "".join(f"    {ln}\n" for ln in epi))
    # No fast-math in the module: LLVM inlines the precise helpers into their caller, and a
    # fast-math caller lets it reassociate their float32 products (measured: an ulp off). The
    # core's sums are of integers, exact in any order, so they lose nothing but some speed.
    src, k = _FASTMATH.subn("", src)
    if not k:
        raise Unsupported(f"hybrid {req.op_name}: unexpected core kernel decorators")
    args = [Arg("input", 0), Arg("const", value=np.zeros(rows, F32)), Arg("const", value=sw),
            Arg("const", value=np.zeros(n, F32) if bias is None else bias)]
    for i, a in enumerate(core.args):
        if i == xi[0]:
            a = Arg("const", value=np.zeros(math.prod(req.inputs[0].shape), F32))
        args.append(a)
    return KernelSource(src, "hentry", args, core.parallel)


def _attrs(req: KernelRequest) -> HybridAttrs:
    a = req.attrs
    if not isinstance(a, HybridAttrs):
        raise Unsupported(f"{req.op_name}: not a hybrid node")
    no_epilogue(req, f"hybrid {req.op_name}")
    x = req.inputs[0]
    if x is None or np.dtype(x.dtype) != F32 or math.prod(req.out_shape) == 0 or math.prod(x.shape) == 0:
        raise Unsupported(f"hybrid {req.op_name}: empty or non-float32 input / output")
    return a


def _scales(a: HybridAttrs, n: int) -> np.ndarray:
    sw = np.asarray(a.w_scales, F32)
    return np.ascontiguousarray(np.broadcast_to(sw, (n,)) if sw.size == 1 else sw[:n])


def _act(a: HybridAttrs, req: KernelRequest) -> str:
    act = getattr(a.base, "activation", "NONE")
    if act not in _CLAMPS:
        raise Unsupported(f"hybrid {req.op_name}: fused {act} (runs on reference)")
    return act


# ---- FULLY_CONNECTED -------------------------------------------------------------------------------

def fully_connected(req: KernelRequest, tile=None) -> KernelSource:
    a = _attrs(req)
    w = _int8_weights(req)
    units, depth = w.shape
    rows = math.prod(req.inputs[0].shape) // depth
    if rows * depth != math.prod(req.inputs[0].shape) or rows * units != math.prod(req.out_shape):
        raise Unsupported("hybrid FULLY_CONNECTED: input size is not rows x depth")
    act = _act(a, req)
    _no_minus128(w, "FULLY_CONNECTED")
    bias = _bias(req, units)
    return _int8_fc(req, a, w, rows, bias, act)


def _int8_fc(req: KernelRequest, a: HybridAttrs, w: np.ndarray, rows: int, bias: np.ndarray | None,
             act: str) -> KernelSource:
    """The product on int8 weights with int32 accumulators (qdot.hybrid_fc_i8): LiteRT's
    accumulator for any row length, a quarter of the float32 path's weight bytes. The step calls
    the shared entry qdot.hybrid_fc_i8 with its shapes as arguments (`_shared`)."""
    units, depth = w.shape
    lo, hi = _clamp(act)
    wp, cs, k4, nb = host.pack_weights(w)
    args = [Arg("input", 0), Arg("const", value=np.zeros(rows, F32)), Arg("const", value=np.zeros(rows, np.int64)),
            Arg("const", value=np.zeros(rows * k4 * 4, np.uint8)),
            Arg("const", value=wp), Arg("const", value=cs), Arg("const", value=_scales(a, units)),
            Arg("const", value=np.zeros(units, F32) if bias is None else bias),
            Arg("const", value=np.zeros(rows * nb * host.LANES, np.int32)), Arg("output", 0)]
    return _shared("FULLY_CONNECTED", "hybrid_fc_i8", args,
                   (rows, depth, units, k4, nb, a.asymmetric, bias is not None, np.float32(lo), np.float32(hi)))


def _shared(op: str, entry: str, args: list[Arg], scalars: tuple, parallel: bool = False) -> KernelSource:
    """A step bound straight to a shape-generic entry of qdot.py: the module only re-exports it,
    and the shapes, flags and clamp bounds are scalar arguments. One compile per machine and
    argument signature (the compile cache's helpers/) serves every such node of every model,
    where a module per node calling the helper with literal shapes made Numba specialise and
    LLVM re-optimise the helper for each (1.4-6 s a node: ~37 s of a dynamic-range MobileNetV2's
    48 s of compile work). What the literal shapes bought (faster kernels) and what the shared
    entries cost: docs/performance.md, "Shared hybrid entries"."""
    src = (f"# tflite_jit hybrid {op} v{HVERSION} (int8 product): the shared, shape-generic qdot.{entry}\n"
           + emit.helper_import(host.QDOT, f"{entry} as hentry"))
    return KernelSource(src, "hentry", args + [Arg("const", value=v) for v in scalars], parallel,
                        shared=f"{host.QDOT}:{entry}", weight=_SHARED_WEIGHT)


#: a shared entry's compile (measured 4.6 s FULLY_CONNECTED, 5.5 s CONV_2D, 10.5 s the threaded
#: CONV_2D) weighed as lines of generated source (CompileJob.weight: ~250 lines a second), so the
#: tiers start it first
_SHARED_WEIGHT = 2500


# ---- CONV_2D ---------------------------------------------------------------------------------------

def conv2d(req: KernelRequest, tile=None) -> KernelSource:
    a = _attrs(req)
    w = _int8_weights(req)
    co, kh, kw, ci = w.shape
    c = req.inputs[0].shape[3]
    if ci != c:
        raise Unsupported("hybrid CONV_2D: grouped convolution runs on reference")
    act = _act(a, req)
    if not a.asymmetric and co % 4:
        _no_minus128(w.reshape(co, -1), "CONV_2D")
    return _int8_conv2d(req, a, w, _bias(req, co), act)


def _int8_conv2d(req: KernelRequest, a: HybridAttrs, w: np.ndarray, bias: np.ndarray | None,
                 act: str) -> KernelSource:
    """CONV_2D on int8 weights with int32 accumulators (qdot.hybrid_conv_i8): exact for any
    filter size (no split weights), a quarter of the weight bytes; the step calls the shared
    entry qdot.hybrid_conv_i8(_par) with its shapes as arguments (`_shared`)."""
    f = a.base
    co, kh, kw, ci = w.shape
    nimg, h, wd, c = req.inputs[0].shape
    _, oh, ow, _ = req.out_shape
    (sh, sw), (dh, dw) = f.stride, f.dilation
    pad_t = axis_geometry(f.padding, h, kh, sh, dh).pad_before
    pad_l = axis_geometry(f.padding, wd, kw, sw, dw).pad_before
    raw = _raw_join(req, a, w)
    wp, _, k4, nb = host.pack_weights(w.reshape(co, -1))
    lo, hi = _clamp(act)
    npix = oh * ow
    nblk = -(-npix // host.PIX_BLOCK)
    tasks = min(req.num_threads, nblk) if emit.want_parallel(req, 2.0 * npix * co * kh * kw * c / host.SERIAL_OPS) else 1
    blk = min(host.PIX_BLOCK, npix) * tasks
    args = [Arg("input", 0), Arg("const", value=np.zeros(nimg, F32)), Arg("const", value=np.zeros(h * wd * c, np.uint8)),
            Arg("const", value=np.zeros(blk * k4 * 4, np.uint8)), Arg("const", value=wp),
            Arg("const", value=np.ascontiguousarray(raw.rs.reshape(-1).astype(np.int64))),
            Arg("const", value=raw.ph), Arg("const", value=raw.pw), Arg("const", value=_scales(a, co)),
            Arg("const", value=np.zeros(co, F32) if bias is None else bias),
            Arg("const", value=np.zeros(blk * nb * host.LANES, np.int32)), Arg("output", 0)]
    scalars = (nimg, h, wd, c, kh, kw, sh, sw, dh, dw, pad_t, pad_l, oh, ow, co, k4, nb, raw.rs.shape[1],
               a.asymmetric, bias is not None, np.float32(lo), np.float32(hi))
    if tasks > 1:
        return _shared("CONV_2D", "hybrid_conv_i8_par", args, (*scalars, tasks), True)
    return _shared("CONV_2D", "hybrid_conv_i8", args, scalars)


@dataclass(frozen=True)
class _RawJoin:
    """What hybridq.join_zero_point subtracts: rs [row patterns, column patterns, C_out], the
    weights' sums over the taps inside the image; ph [OH] / pw [OW]: each output row's / column's
    pattern."""

    rs: np.ndarray
    ph: np.ndarray
    pw: np.ndarray


def _valid_taps(n_out: int, n_in: int, k: int, stride: int, dil: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """For each output position along one axis, the pattern (index into the distinct rows of the
    returned [patterns, k] mask) of filter taps that land inside the input."""
    pos = np.arange(n_out)[:, None] * stride - pad + np.arange(k)[None, :] * dil
    inside = (pos >= 0) & (pos < n_in)
    pats, idx = np.unique(inside, axis=0, return_inverse=True)
    return pats, np.ascontiguousarray(idx.reshape(-1), np.int64)


def _raw_join(req: KernelRequest, a: HybridAttrs, w: np.ndarray) -> _RawJoin:
    f = a.base
    co, kh, kw, _ = w.shape
    _, h, wd, _ = req.inputs[0].shape
    _, oh, ow, _ = req.out_shape
    (sh, sw), (dh, dw) = f.stride, f.dilation
    mh, ph = _valid_taps(oh, h, kh, sh, dh, axis_geometry(f.padding, h, kh, sh, dh).pad_before)
    mw, pw = _valid_taps(ow, wd, kw, sw, dw, axis_geometry(f.padding, wd, kw, sw, dw).pad_before)
    ws = w.astype(np.int64).sum(axis=3)  # [co, kh, kw]
    rs = np.einsum("ak,bl,ckl->abc", mh.astype(np.int64), mw.astype(np.int64), ws).astype(np.float64)
    return _RawJoin(np.ascontiguousarray(rs), ph, pw)


# ---- DEPTHWISE_CONV_2D -----------------------------------------------------------------------------

def depthwise(req: KernelRequest) -> KernelSource:
    a = _attrs(req)
    w = _int8_weights(req)
    _, kh, kw, co = w.shape
    nimg, h, wd, c = req.inputs[0].shape
    act = _act(a, req)
    _check_exact(w.reshape(-1, co).T, a.asymmetric, "DEPTHWISE_CONV_2D")
    bias = _bias(req, co)
    shadow = _shadow(req, replace(a.base, activation="NONE"), w.astype(F32))
    core = fdw.generate_depthwise(shadow)
    npix = math.prod(req.out_shape[1:3])
    return _assemble(req, core, nimg, h * wd * c, a.asymmetric, "finish_depthwise", npix, _scales(a, co), bias,
                     act)


# ---- BATCH_MATMUL ----------------------------------------------------------------------------------

def batch_matmul(req: KernelRequest, tile=None) -> KernelSource:
    a = _attrs(req)
    f = a.base
    w = _int8_weights(req)
    x = req.inputs[0]
    if f.adj_x:
        raise Unsupported("hybrid BATCH_MATMUL: adj_x runs on reference")
    m, k = x.shape[-2:]
    n = req.out_shape[-1]
    out_batch = math.prod(req.out_shape[:-2])
    if math.prod(x.shape[:-2]) != out_batch:
        raise Unsupported("hybrid BATCH_MATMUL: a broadcast input runs on reference")
    wt = w if f.adj_y else np.swapaxes(w, -1, -2)  # [..., N, K]
    _check_exact(wt.reshape(-1, k), a.asymmetric, "BATCH_MATMUL")
    shadow = _shadow(req, f, w.astype(F32))
    core = gemm.batch_matmul(shadow, tile)
    return _assemble(req, core, out_batch * m, k, a.asymmetric, "finish_rows", 1, _scales(a, n), None, "NONE")


# ---- registration: hybrid nodes here, every other node to the generator registered before --------

_HYBRID = {"FULLY_CONNECTED": fully_connected, "CONV_2D": conv2d, "DEPTHWISE_CONV_2D": depthwise,
           "BATCH_MATMUL": batch_matmul}
assert qconv  # imported first, so that the quantized generators are the ones wrapped below


def _dispatch(name: str):
    prev = GENERATORS[name]
    mine = _HYBRID[name]

    def generate(req: KernelRequest, *rest) -> KernelSource:
        if isinstance(req.attrs, HybridAttrs):
            return mine(req, *rest)
        return prev(req, *rest)

    return generate


for _name in _HYBRID:
    register_generator(_name)(_dispatch(_name))
