"""Dynamic-range ("hybrid") FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D and BATCH_MATMUL: float32
activations, int8 constant weights, float32 outputs, equal to ops/qhybrid.py (which is bit-exact
with LiteRT's builtin hybrid kernels) to the bit.

One kernel call does the three steps LiteRT does, in one generated module:

1. quantize: each row of the input (FULLY_CONNECTED / BATCH_MATMUL: a row of `depth` values;
   convolutions: a whole image) is quantized exactly as ops/qhybrid.py `quantize_rows` does it
   (symmetric or asymmetric, the 8-wide vector rounding and the scalar tail), and written
   *centered* (q - zero point, an integer) as float32 into a scratch copy of the input; the
   row's scale goes to a small table;
2. multiply: the float32 GEMM of gemm.py (or the depthwise kernel of depthwise.py) runs on that
   scratch and on the weights as float32 integers, with no bias and no activation. Every
   product is an integer of at most 255 * 128 and a float32 sum of integers is exact while it
   stays below 2**24, in any order (the kernels' reassociation included); the weights are
   constants, so this is checked per output channel at plan time (sum_k |w| * max|q - zp|),
   else a FULLY_CONNECTED multiplies in int64 instead (hybridq.int_rows_gemm), a CONV_2D with
   asymmetric inputs whose raw q (in [-128, 127], half the range of q - zp) keeps the sums
   exact multiplies the raw q and subtracts zp * sum(w) after (`_raw_join`: one GEMM, ~1% more
   time), any other CONV_2D splits its weights as 16 * hi + lo and runs the GEMM on both halves
   (`_split_conv2d`: exact for ~16x longer rows, ~1.7x the time), and other nodes are refused
   (reference backend). The result is LiteRT's int32
   accumulator exactly. (Taps in a convolution's padding contribute 0, as LiteRT skips them.)
3. finish: float32(acc) times the row's scale and the channel's weight scale in LiteRT's order
   (ops/qhybrid.py `_scale_out` / `_spatial_scale`), + bias, the fused clamp (../hybridq.py).
   The whole module is compiled without fast-math, so nothing is contracted into an FMA or
   reordered.

Not compiled (reference backend, with the reason in the plan): weights that are not constant,
-128 weights where LiteRT's SSE dot product mis-multiplies them (ops/qhybrid.py
`_minus128_error`), grouped convolutions, fused TANH / SIGN_BIT, BATCH_MATMUL with adj_x or a
broadcast input, and sums that could leave float32's exact range.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from tflite_jit.backends.numba_cpu import emit, hybridq, printer, qdot
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
_PRECISE = "@numba.njit(cache=True, nogil=True, fastmath=False, error_model='numpy', boundscheck=False)"
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


#: the base of `_split_weights`: hi and lo both within [-8, 8], 1/16 of an int8's magnitude
SPLIT = 16


def _split_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w = SPLIT * hi + lo with hi = floor((w + 8) / 16) in [-8, 8] and lo in [-8, 7]: each half's
    sums stay exact in float32 for ~16x longer rows than the weights' own."""
    wi = w.astype(np.int32)
    hi = (wi + SPLIT // 2) >> 4
    return hi, wi - SPLIT * hi


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
              inner: int, sw: np.ndarray, bias: np.ndarray | None, act: str,
              split: int = 0, raw: _RawJoin | None = None) -> KernelSource:
    """The module: the core kernel's entry becomes `hentry`, which first quantizes the input rows
    (hybridq.hq_row), then runs the core's body, then the float finish (hybridq.`finish`) over
    the output viewed as [rows * inner, n]. `split`: the core ran on weights split as
    split * hi + lo (`_split_weights`) into a scratch of 2n channels, which hybridq.join_split
    combines into the output first. `raw`: the input rows are quantized without subtracting
    their zero points (hybridq.hq_row_zp) and hybridq.join_zero_point subtracts zp * sum(w)
    from the output first (`_raw_conv2d`)."""
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
    if split:  # the core writes the scratch S [rows * inner, 2n]; hentry gets the output as `o_`
        out, helpers, extra = "o_", ("hq_row", "join_split", finish), ", o_"
    elif raw is not None:
        helpers, extra = ("hq_row_zp", "join_zero_point", finish), ""
    else:
        helpers, extra = ("hq_row", finish), ""
    # The steps go into the core's own function (not a wrapper calling it: Numba would link and
    # optimize the core's code a second time, measured 3-4x the compile time).
    pro = [f"xf = xin.reshape({rows * row_len})",
           f"for r in range({rows}):",
           f"    SF[r] = hq_row(xf, r * {row_len}, {row_len}, {xq}, {asym})" if raw is None else
           f"    SF[r], ZP[r] = hq_row_zp(xf, r * {row_len}, {row_len}, {xq}, {asym}, True)"]
    epi = [f"join_split({params[oi[0]]}.reshape({2 * out_size}), o_.reshape({out_size}), {out_size // n}, "
           f"{n}, {float(split)!r})"] if split else []
    if raw is not None:
        epi += [f"join_zero_point({out}.reshape({out_size}), ZP, RS, PH, PW, {rows}, {req.out_shape[1]}, "
                f"{req.out_shape[2]}, {n}, {raw.rs.shape[1]})"]
    epi += [f"{finish}({out}.reshape({out_size}), SF, SW, B, {rows}, {inner}, {n}, "
            f"{bias is not None}, np.float32({_lit(lo)}), np.float32({_lit(hi)}))"]
    how = f", weights split by {split}" if split else ", raw input, zero point joined" if raw is not None else ""
    head = (f"# tflite_jit hybrid {req.op_name} v{HVERSION}: {rows} rows of {row_len}, "
            f"{'asymmetric' if asym else 'symmetric'}{how}\n"
            + emit.helper_import(hybridq, *helpers))
    zpa = "ZP, RS, PH, PW, " if raw is not None else ""
    src = (head + core.source[:m.start()] + f"def hentry(xin, SF, SW, B, {zpa}{m.group(1)}{extra}):\n"
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
    if raw is not None:
        args += [Arg("const", value=np.zeros(rows, np.int64)), Arg("const", value=raw.rs.reshape(-1)),
                 Arg("const", value=raw.ph), Arg("const", value=raw.pw)]
    for i, a in enumerate(core.args):
        if i == xi[0]:
            a = Arg("const", value=np.zeros(math.prod(req.inputs[0].shape), F32))
        elif split and i == oi[0]:
            a = Arg("const", value=np.zeros(2 * out_size, F32))
        args.append(a)
    if split:
        args.append(Arg("output", 0))
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
    accumulator for any row length, a quarter of the float32 path's weight bytes; the kernel
    takes its shapes as arguments, so this module is a one-line call compiled in milliseconds."""
    units, depth = w.shape
    lo, hi = _clamp(act)
    wp, cs, k4, nb = qdot.pack_weights(w)
    src = (printer.PRELUDE + f"# tflite_jit hybrid FULLY_CONNECTED v{HVERSION} (int8 product): {rows} rows of "
           f"{depth}, {'asymmetric' if a.asymmetric else 'symmetric'}\n"
           + emit.helper_import(qdot, "hybrid_fc_i8") + "\n\n"
           + _PRECISE + "\ndef hentry(xin, SF, ZP, XU, WP, CS, SW, B, ACC, o):\n"
           f"    hybrid_fc_i8(xin.reshape({rows * depth}), SF, ZP, XU, WP, CS, SW, B, ACC, "
           f"o.reshape({rows * units}), {rows}, {depth}, {units}, {k4}, {nb}, {a.asymmetric}, "
           f"{bias is not None}, np.float32({_lit(lo)}), np.float32({_lit(hi)}))\n")
    args = [Arg("input", 0), Arg("const", value=np.zeros(rows, F32)), Arg("const", value=np.zeros(rows, np.int64)),
            Arg("const", value=np.zeros(rows * k4 * 4, np.uint8)),
            Arg("const", value=wp), Arg("const", value=cs), Arg("const", value=_scales(a, units)),
            Arg("const", value=np.zeros(units, F32) if bias is None else bias),
            Arg("const", value=np.zeros(rows * nb * qdot.LANES, np.int32)), Arg("output", 0)]
    return KernelSource(src, "hentry", args)


# ---- CONV_2D ---------------------------------------------------------------------------------------

def conv2d(req: KernelRequest, tile=None) -> KernelSource:
    a = _attrs(req)
    w = _int8_weights(req)
    co, kh, kw, ci = w.shape
    nimg, h, wd, c = req.inputs[0].shape
    if ci != c:
        raise Unsupported("hybrid CONV_2D: grouped convolution runs on reference")
    act = _act(a, req)
    w_nk = w.reshape(co, -1)
    if not a.asymmetric and co % 4:
        _no_minus128(w_nk, "CONV_2D")
    bias = _bias(req, co)
    npix = math.prod(req.out_shape[1:3])
    if _worst(w_nk, a.asymmetric) < EXACT or (a.asymmetric and _worst(w_nk, False) * 128 / 127 < EXACT):
        # asymmetric inputs whose centered sums could pass 2**24 but whose raw ones cannot: the
        # raw q in [-128, 127] (half the range of q - zp), zp * sum(w) subtracted after
        raw = None if _worst(w_nk, a.asymmetric) < EXACT else _raw_join(req, a, w)
        shadow = _shadow(req, replace(a.base, activation="NONE"), w.astype(F32))
        return _assemble(req, gemm.conv2d(shadow, tile), nimg, h * wd * c, a.asymmetric, "finish_rows", npix,
                         _scales(a, co), bias, act, raw=raw)
    return _split_conv2d(req, a, w, tile, npix, bias, act)


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


def _split_conv2d(req: KernelRequest, a: HybridAttrs, w: np.ndarray, tile, npix: int, bias: np.ndarray | None,
                  act: str) -> KernelSource:
    """A CONV_2D whose sums could pass float32's exact integers even from raw q (symmetric
    inputs, or rows of more than ~1030 full-range weights): its weights are split as
    SPLIT * hi + lo and the float32 GEMM runs once with both halves as 2 * C_out output
    channels, each sum exact; hybridq.join_split combines them exactly (float64) into LiteRT's
    int32 accumulator, rounded once to float32. Twice the multiplies of the plain path
    (measured 1.7x its time, benchmarks/hybrid_conv_split.py), still the register-tiled GEMM."""
    co = w.shape[0]
    hi, lo = _split_weights(w)
    for half in (hi, lo):
        _check_exact(half.reshape(co, -1), a.asymmetric, "CONV_2D (split weights)")
    both = np.concatenate([hi, lo]).astype(F32)
    x = req.inputs[0]
    out_shape = (*req.out_shape[:-1], 2 * co)
    ins = [TensorArg(tuple(x.shape), F32), TensorArg(tuple(both.shape), F32, both), None]
    shadow = KernelRequest(req.op_name, replace(a.base, activation="NONE"), ins, [],
                           [Output(E.Var(0), TensorArg(out_shape, F32))], req.num_threads)
    nimg, h, wd, c = x.shape
    return _assemble(req, gemm.conv2d(shadow, tile), nimg, h * wd * c, a.asymmetric, "finish_rows", npix,
                     _scales(a, co), bias, act, split=SPLIT)


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
