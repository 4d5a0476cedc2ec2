"""QUANTIZE (float32 -> int8 / uint8 / int16, per tensor; integer requantization) and DEQUANTIZE
(int8 / uint8 / int16 -> float32, per tensor or per channel), bit-exact with ops/quant.py
(LiteRT's optimized builtin kernels).

QUANTIZE is the first node of every int8 model with a float input and runs on the whole image,
so it must not stay on the NumPy reference. Its rounding depends on the element's position, as in
LiteRT: the 8-element vector blocks compute rint(x * float32(1 / s)) in float32 (round half to
even), the scalar tail (the last n mod 8 elements) round_half_away(double(x) / double(s)). NaN and
infinities saturate and NaN gives the zero point, as ops/quant.py does. (LiteRT itself converts
NaN and values beyond int32 to INT32_MIN, x86's conversion, then adds the zero point with int32
wrap-around: 1e30 with zero point 0 gives -128. Probed; reported, not reproduced here while the
reference and its tests keep the saturating contract.) DEQUANTIZE is
float32(double(s) * (q - z)).

The modules are compiled without fastmath: 'arcp' would turn the tail's division into a
multiplication and 'contract' could fuse the block multiply into the rounding, both of which
change bits. float32 -> int16 (the input of every 16x8 model) is the same kernel with int16's
clamp. Integer-to-integer requantization (int16 -> int16 between the blocks of 16x8 models, the
most frequent QUANTIZE there) is MBQM((q - zi), M) + zo with the multiplier of double(si) /
double(so), clamped; 8-bit -> 8-bit rounds its 16-element vector blocks half up (RHU2) and only
the tail half away, as ops/quant.py. Per-channel QUANTIZE stays on the reference backend (rare in
models; Unsupported says so in the plan).
"""

from __future__ import annotations

import math

import numpy as np

from tflite_jit.backends.numba_cpu import emit, host, printer
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.quantized import QDTYPES16, no_epilogue, round_shift
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops import qmath

F32 = np.dtype(np.float32)

#: exact IEEE arithmetic: no fastmath flag may reorder, contract or reciprocate
EXACT_NJIT = ("@numba.njit(cache=True, nogil=True, fastmath=False, error_model='numpy', "
              "boundscheck=False)")


def exact_module(comment: str, body: list[str]) -> str:
    """A kernel module (printer prelude, ld/st) whose entry is compiled without fastmath."""
    return (f"# {comment}\n" + emit.helper_import(host.SIMD, "ld", "st")
            + printer.PRELUDE + "\n\n" + EXACT_NJIT + "\n" + "\n".join(body) + "\n")


def _single_output(req: KernelRequest) -> None:
    no_epilogue(req, req.op_name)
    x = req.inputs[0] if req.inputs else None
    if x is None or tuple(x.shape) != tuple(req.out_shape):
        raise Unsupported(f"{req.op_name}: input and output shapes differ")
    if math.prod(req.out_shape) == 0:
        raise Unsupported(f"{req.op_name}: empty tensor")


@register_generator("QUANTIZE")
def generate_quantize(req: KernelRequest) -> KernelSource:
    a = req.attrs
    _single_output(req)
    src, dst = np.dtype(req.inputs[0].dtype), np.dtype(req.outputs[0].arg.dtype)
    if a.out_scales is None or len(a.out_scales) != 1:
        raise Unsupported("QUANTIZE: per-channel output runs on reference")
    if src in _REQUANT_SRC and dst in QDTYPES16:
        return _requantize(req, src, dst)
    if src != F32 or dst not in QDTYPES16:
        raise Unsupported(f"QUANTIZE {src.name} -> {dst.name} runs on reference (float32 -> int8 / "
                          "uint8 / int16 and requantization between those is compiled)")
    s = np.float32(a.out_scales[0])
    if not (np.isfinite(s) and s > 0):
        raise Unsupported("QUANTIZE: invalid scale (the reference reports it)")
    zp = int(a.out_zero_points[0])
    lo, hi = qmath.qrange(dst)
    n = math.prod(req.out_shape)
    head = n // 8 * 8
    # the scale and zero point are arguments, not code: a retrained model's kernel is the same
    qf = np.array([np.float32(1.0) / s], F32)
    qd = np.array([float(s)], np.float64)
    qz = np.array([zp + 2**31], np.int64)
    # ops/quant.py's conversion: NaN -> the zero point, out-of-range values saturate (clamping
    # the rounded value to [lo - zp, hi - zp] before the integer conversion is the same thing)
    # x86 float->int32: NaN, +-inf and out-of-range give INT32_MIN; + zp wraps in int32 (as LiteRT)
    to_int = ["        r = np.int64(v) if v >= -2147483648.0 and v < 2147483648.0 else np.int64(-2147483648)",
              "        r = ((r + zb) & 4294967295) - 2147483648",
              f"        st(o, i, min(max(r, {lo}), {hi}))"]
    body = ["def entry(x, qf, qd, qz, o):", "    inv = ld(qf, 0)", "    sd = ld(qd, 0)", "    zb = ld(qz, 0)"]
    # int16 with zero point 0 (every 16x8 model's input): the same result clamped in float32, so
    # the blocks convert 16 float32 lanes to int32 instead of 8 to int64 (out-of-range and NaN
    # give INT32_MIN above, i.e. -32768 here)
    f32_clamp = ["        c = min(max(v, np.float32(-32768.0)), np.float32(32767.0))",
                 "        c = c if v >= np.float32(-2147483648.0) and v < np.float32(2147483648.0) else np.float32(-32768.0)",
                 "        st(o, i, np.int32(c))"]
    block_int = f32_clamp if dst == np.dtype(np.int16) and zp == 0 else to_int
    if head:  # vector blocks: float32 multiply by the reciprocal, round half to even
        body += [f"    for i in range({head}):", "        v = np.rint(ld(x, i) * inv)"] + block_int
    if head < n:  # scalar tail: double division, round half away from zero
        body += [f"    for i in range({head}, {n}):",
                 "        d = np.float64(ld(x, i)) / sd",
                 "        f = np.floor(abs(d))",
                 "        v = (f + (1.0 if abs(d) - f >= 0.5 else 0.0)) * (-1.0 if d < 0 else 1.0)"] + to_int
    return KernelSource(exact_module(f"QUANTIZE float32 -> {dst.name}", body), "entry",
                        [Arg("input", 0), Arg("const", value=qf), Arg("const", value=qd),
                         Arg("const", value=qz), Arg("output", 0)], False)


#: integer QUANTIZE sources compiled (ops/quant.py checks which pairs LiteRT takes)
_REQUANT_SRC = (*QDTYPES16, np.dtype(np.int32))


def _requantize(req: KernelRequest, src: np.dtype, dst: np.dtype) -> KernelSource:
    """ops/quant.py `_requantize`: r = MBQM(q - zi, M, shift) + zo, clamped to the output type;
    8-bit -> 8-bit rounds the 16-element blocks half up (RHU2), the tail half away (MBQM)."""
    a = req.attrs
    if a.in_scale is None or not (np.isfinite(a.in_scale) and a.in_scale > 0):
        raise Unsupported("QUANTIZE: invalid input scale (the reference reports it)")
    s_out = float(np.float32(a.out_scales[0]))
    if not (np.isfinite(s_out) and s_out > 0):
        raise Unsupported("QUANTIZE: invalid scale (the reference reports it)")
    m, shift = qmath.quantize_multiplier(float(np.float32(a.in_scale)) / s_out)
    ls, rs = max(shift, 0), max(-shift, 0)
    if ls > 31 or rs > 31:
        raise Unsupported("QUANTIZE: multiplier out of range (runs on reference)")
    lo, hi = qmath.qrange(dst)
    n = math.prod(req.out_shape)
    head = n // 16 * 16 if src.itemsize == 1 and dst.itemsize == 1 else 0
    d = f"np.int64(np.int32((np.int64(ld(x, i)) - zi) << {ls}))" if ls else "(np.int64(ld(x, i)) - zi)"

    def loop(start: int, stop: int, away: bool) -> list[str]:
        return [f"    for i in range({start}, {stop}):", f"        t = ({d} * m + {1 << 30}) >> 31",
                f"        st(o, i, min(max(({round_shift('t', rs, away)}) + zo, {lo}), {hi}))"]

    # the zero points and the multiplier are arguments (a retrained model reuses the kernel)
    qs = np.array([int(a.in_zero_point), m, int(a.out_zero_points[0])], np.int64)
    body = ["def entry(x, qs, o):", "    zi = ld(qs, 0)", "    m = ld(qs, 1)", "    zo = ld(qs, 2)"]
    if head:
        body += loop(0, head, False)
    if head < n:
        body += loop(head, n, True)
    src_text = (f"# QUANTIZE {src.name} -> {dst.name} (requantization)\n" + emit.helper_import(host.SIMD, "ld", "st")
                + emit.module("\n".join(body) + "\n", False))
    return KernelSource(src_text, "entry", [Arg("input", 0), Arg("const", value=qs), Arg("output", 0)], False)


@register_generator("DEQUANTIZE")
def generate_dequantize(req: KernelRequest) -> KernelSource:
    a = req.attrs
    _single_output(req)
    x = req.inputs[0]
    if np.dtype(x.dtype) not in QDTYPES16 or np.dtype(req.outputs[0].arg.dtype) != F32:
        raise Unsupported(f"DEQUANTIZE from {np.dtype(x.dtype).name} runs on reference (int8 / uint8 "
                          "/ int16 are compiled)")
    if not a.bound:
        raise Unsupported("DEQUANTIZE: quantization not bound (the reference reports it)")
    shape = tuple(int(d) for d in x.shape)
    n = math.prod(shape)
    ns, nz = len(a.scales), len(a.zero_points)
    if ns == 1 and nz == 1:
        body = ["def entry(x, s, z, o):", "    sc = ld(s, 0)", "    zc = ld(z, 0)", f"    for i in range({n}):",
                "        st(o, i, np.float32(sc * np.float64(np.int64(ld(x, i)) - zc)))"]
        channels = 1
    else:
        if not 0 <= a.axis < len(shape) or shape[a.axis] != ns or nz not in (1, ns):
            raise Unsupported("DEQUANTIZE: per-channel parameters do not match (the reference "
                              "reports it)")
        channels = ns
        inner = math.prod(shape[a.axis + 1:])
        outer = math.prod(shape[:a.axis])
        body = ["def entry(x, s, z, o):", f"    for p in range({outer}):",
                f"        for c in range({channels}):", "            sc = ld(s, c)",
                "            zc = ld(z, c)", f"            b = (p * {channels} + c) * {inner}",
                f"            for i in range(b, b + {inner}):",
                "                st(o, i, np.float32(sc * np.float64(np.int64(ld(x, i)) - zc)))"]
    scales = np.asarray(a.scales, np.float64)
    zps = np.broadcast_to(np.asarray(a.zero_points, np.int64), (channels,)).copy()
    return KernelSource(exact_module(f"DEQUANTIZE {np.dtype(x.dtype).name} -> float32", body), "entry",
                        [Arg("input", 0), Arg("const", value=scales), Arg("const", value=zps),
                         Arg("output", 0)], False)
