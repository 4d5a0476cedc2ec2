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
   else the node is refused and runs on the reference backend. The result is LiteRT's int32
   accumulator exactly. (Taps in a convolution's padding contribute 0, as LiteRT skips them.)
3. finish: float32(acc) times the row's scale and the channel's weight scale in LiteRT's order
   (ops/qhybrid.py `_scale_out` / `_spatial_scale`), + bias, the fused clamp. This part is
   compiled without fast-math, so nothing is contracted into an FMA or reordered.

Not compiled (reference backend, with the reason in the plan): weights that are not constant,
-128 weights where LiteRT's SSE dot product mis-multiplies them (ops/qhybrid.py
`_minus128_error`), grouped convolutions, fused TANH / SIGN_BIT, BATCH_MATMUL with adj_x or a
broadcast input, and sums that could leave float32's exact range.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np

from tflite_jit.backends.numba_cpu.generators import GENERATORS, gemm, qconv, register_generator
from tflite_jit.backends.numba_cpu.generators import depthwise as fdw
from tflite_jit.backends.numba_cpu.quantized import no_epilogue
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Output, TensorArg, Unsupported
from tflite_jit.ops import expr as E
from tflite_jit.ops.qhybrid import HybridAttrs

F32 = np.dtype(np.float32)
#: float32 sums of integers are exact below this magnitude
EXACT = float(1 << 24)
#: bump when the generated hybrid code changes meaning (printed into every module)
HVERSION = "1"
_CLAMPS = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}
_PRECISE = "@numba.njit(cache=True, nogil=True, error_model='numpy', boundscheck=False)"

# The quantizer (also tconv.py's): ops/qhybrid.py quantize_rows for one row, in float32 / float64 exactly as there
# (no fast-math: every operation rounds where the NumPy reference rounds).
QUANT_SOURCE = _PRECISE + '''
def hq_row(x, xo, n, XQ, asym):
    lo = np.float32(0.0)
    hi = np.float32(0.0)
    for i in range(n):
        v = x[xo + i]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    zp = 0
    qlo = -127
    if not asym:
        rng = max(-lo, hi)
        if rng == np.float32(0.0):
            for i in range(n):
                XQ[xo + i] = np.float32(0.0)
            return np.float32(1.0)
        sf = np.float32(rng / np.float32(127.0))
        inv = np.float32(np.float32(127.0) / rng)
    else:
        if lo == hi:
            for i in range(n):
                XQ[xo + i] = np.float32(0.0)
            return np.float32(1.0)
        scale = np.float64(np.float32(hi - lo)) / 255.0
        rmin = np.float64(lo)
        rmax = np.float64(hi)
        if 128.0 + abs(rmin / scale) < 127.0 + abs(rmax / scale):
            zpd = -128.0 - rmin / scale
        else:
            zpd = 127.0 - rmax / scale
        if zpd <= -128.0:
            zp = -128
        elif zpd >= 127.0:
            zp = 127
        else:
            zp = int(np.sign(zpd) * np.floor(abs(zpd) + 0.5))
        sf = np.float32(scale)
        inv = np.float32(1.0 / np.float64(sf))
        qlo = -128
    head = n & ~7
    for i in range(n):
        y = np.float32(x[xo + i] * inv)
        if i < head:
            h = np.float32(-0.5) if y < np.float32(0.0) else np.float32(0.5)
            r = np.trunc(np.float32(y + h))
        else:
            d = np.float64(y)
            r = np.sign(d) * np.floor(abs(d) + 0.5)
        q = int(r) + zp
        q = min(max(q, qlo), 127)
        XQ[xo + i] = np.float32(q - zp)
    return sf
'''


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


def _check_exact(w_nk: np.ndarray, asym: bool, what: str) -> None:
    qmax = 255 if asym else 127
    worst = float(np.abs(w_nk.astype(np.int64)).sum(axis=1).max(initial=0)) * qmax
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


def _clamp_lines(act: str, var: str, ind: str) -> list[str]:
    lo, hi = _CLAMPS[act]
    out = []
    if lo is not None:
        out.append(f"{ind}{var} = max({var}, np.float32({lo}))")
    if hi is not None:
        out.append(f"{ind}{var} = min({var}, np.float32({hi}))")
    return out


def _shadow(req: KernelRequest, attrs, w_f32: np.ndarray) -> KernelRequest:
    """The float request the integer product runs as: input 0 is the centered scratch (same
    shape), the weights float32 integers, no bias, no activation, no epilogue."""
    x = req.inputs[0]
    ins = [TensorArg(tuple(x.shape), F32), TensorArg(tuple(w_f32.shape), F32, w_f32), None]
    out = TensorArg(tuple(req.out_shape), F32)
    return KernelRequest(req.op_name, attrs, ins, [], [Output(E.Var(0), out)], req.num_threads)


def _assemble(req: KernelRequest, core: KernelSource, rows: int, row_len: int, asym: bool,
              finish: list[str], consts: list[tuple[str, np.ndarray]]) -> KernelSource:
    """The module: the core kernel (renamed `hcore`), the quantizer, `hfinish(o0, SF, ...)` from
    `finish` (its body lines), and `hentry`, which runs the three in order."""
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
    src = core.source[:m.start()] + f"def hcore({m.group(1)}):" + core.source[m.end():]
    cnames = [n for n, _ in consts]
    src += (f"\n\n# tflite_jit hybrid {req.op_name} v{HVERSION}: {rows} rows of {row_len}, "
            f"{'asymmetric' if asym else 'symmetric'}\n\n" + QUANT_SOURCE + "\n\n")
    src += _PRECISE + f"\ndef hfinish({', '.join([out, 'SF'] + cnames)}):\n" + "\n".join(
        "    " + ln for ln in finish) + "\n\n\n"
    src += _PRECISE + f"\ndef hentry(xin, SF, {', '.join(cnames + params)}):\n"
    src += (f"    xf = xin.reshape({rows * row_len})\n"
            f"    for r in range({rows}):\n"
            f"        SF[r] = hq_row(xf, r * {row_len}, {row_len}, {xq}, {asym})\n"
            f"    hcore({', '.join(params)})\n"
            f"    hfinish({', '.join([f'{out}.reshape({math.prod(req.out_shape)})', 'SF'] + cnames)})\n")
    args = [Arg("input", 0), Arg("const", value=np.zeros(rows, F32))]
    args += [Arg("const", value=np.ascontiguousarray(v)) for _, v in consts]
    for i, a in enumerate(core.args):
        args.append(Arg("const", value=np.zeros(math.prod(req.inputs[0].shape), F32)) if i == xi[0] else a)
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


def _rowwise_finish(rows: int, n: int, bias: bool, act: str) -> list[str]:
    """o[r, c] = clamp(float32(o * float32(sf_r * sw_c)) + b_c): FULLY_CONNECTED, CONV_2D (rows =
    images of OH*OW*C values, the scale per image) and BATCH_MATMUL."""
    lines = [f"for r in range({rows}):",
             "    sf = SF[r]",
             f"    for c in range({n}):",
             "        s = np.float32(sf * SW[c])",
             f"        v = np.float32(o0[r * {n} + c] * s)"]
    if bias:
        lines.append("        v = np.float32(v + B[c])")
    lines += _clamp_lines(act, "v", "        ")
    lines.append(f"        o0[r * {n} + c] = v")
    return lines


def _finish_consts(sw: np.ndarray, bias: np.ndarray | None) -> list[tuple[str, np.ndarray]]:
    return [("SW", sw)] + ([("B", bias)] if bias is not None else [])


def _fixup_out(lines: list[str], rows_of: int, n: int) -> list[str]:
    """Conv outputs: `rows_of` output pixels share one row scale (the image's)."""
    return [ln.replace(f"o0[r * {n} + c]", f"o0[(r * {rows_of} + p) * {n} + c]") for ln in lines]


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
    _check_exact(w, a.asymmetric, "FULLY_CONNECTED")
    bias = _bias(req, units)
    shadow = _shadow(req, replace(a.base, activation="NONE"), w.astype(F32))
    core = gemm.fully_connected(shadow, tile)
    fin = _rowwise_finish(rows, units, bias is not None, act)
    return _assemble(req, core, rows, depth, a.asymmetric, fin, _finish_consts(_scales(a, units), bias))


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
    _check_exact(w_nk, a.asymmetric, "CONV_2D")
    bias = _bias(req, co)
    shadow = _shadow(req, replace(a.base, activation="NONE"), w.astype(F32))
    core = gemm.conv2d(shadow, tile)
    npix = math.prod(req.out_shape[1:3])
    fin = _rowwise_finish(nimg, co, bias is not None, act)
    fin = fin[:2] + [f"    for p in range({npix}):"] + ["    " + ln for ln in fin[2:]]
    fin = _fixup_out(fin, npix, co)
    return _assemble(req, core, nimg, h * wd * c, a.asymmetric, fin, _finish_consts(_scales(a, co), bias))


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
    head = co & ~3
    # blocks of 4 channels: (acc * sw) * sf; the last C mod 4: (acc * sf) * sw (ops/qhybrid.py)
    fin = [f"for r in range({nimg}):",
           "    sf = SF[r]",
           f"    for p in range({npix}):",
           f"        base = (r * {npix} + p) * {co}",
           f"        for c in range({co}):",
           "            v = o0[base + c]",
           f"            if c < {head}:",
           "                v = np.float32(np.float32(v * SW[c]) * sf)",
           "            else:",
           "                v = np.float32(np.float32(v * sf) * SW[c])"]
    if bias is not None:
        fin.append("            v = np.float32(v + B[c])")
    fin += _clamp_lines(act, "v", "            ")
    fin.append("            o0[base + c] = v")
    return _assemble(req, core, nimg, h * wd * c, a.asymmetric, fin, _finish_consts(_scales(a, co), bias))


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
    fin = _rowwise_finish(out_batch * m, n, False, "NONE")
    return _assemble(req, core, out_batch * m, k, a.asymmetric, fin, _finish_consts(_scales(a, n), None))


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
