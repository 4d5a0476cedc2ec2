"""Quantized (int8 / uint8) elementwise kernels: ADD and SUB (same shapes, or broadcasting), MUL,
PRELU and SQUARED_DIFFERENCE (broadcasting) and the table ops (LOGISTIC, TANH, GELU, ELU,
HARD_SWISH; LOGISTIC, TANH and GELU in int16 too, as 65536-entry gathers), bit-exact with
ops/qelementwise.py (LiteRT's optimized kernels). ADD, SUB and MUL take int16 (16x8 models) too:
their int64 element code holds for 16-bit values as it is (ADD's input rescale has 15 extra bits
instead of 20, an attrs field; int16 MUL's product needs 31 bits, so it keeps the int64 loop,
not qmulvec's 8-bit int32 decomposition).

Both inputs are rescaled to a common scale with 20 extra bits, summed, and requantized to the
output (QUANTIZATION.md §3.2): every multiplier and shift is a plan-time literal, so each element
is a handful of int64 operations that LLVM vectorizes. ADD's 16-element vector blocks round the
input rescale once (SRDHM of x << (20 + shift)), the scalar tail (the last n mod 16 elements) and
all of SUB round twice (MBQM), exactly as the reference does. Rounding divides by a power of two
are branchless: (t + 2**(rs-1) + (t >> 63)) >> rs rounds half away from zero (MBQM). Broadcast
operands (different shapes) round twice too, in nested loops with broadcast strides.
"""

from __future__ import annotations

import math

import numpy as np

from tflite_jit.backends.numba_cpu import emit, host
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.quantized import (
    no_epilogue,
    quantized_attrs,
    round_shift,
    round_shift_rt,
    shift_params,
)
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops.base import Quantized

#: serial elements per second assumed for the threading decision
SERIAL_ELEMS = 1e9


def _mbqm_lines(dst: str, src: str, m: int | str, shift: int) -> list[str]:
    """dst = MBQM(src, m, shift) on int64 values (src already a C int32 value)."""
    ls, rs = max(shift, 0), max(-shift, 0)
    v = f"np.int64(np.int32({src} << {ls}))" if ls else src
    lines = [f"{dst} = ({v} * {m} + {1 << 30}) >> 31"]
    if rs:
        lines.append(f"{dst} = {round_shift(dst, rs, away=True)}")
    return lines


#: ADD/SUB's run-time parameters (the QS argument), in order: zero points, multipliers, clamp
#: range, then per rescale (x, y: `v` the vector blocks' single left shift, and for the
#: two-rounding form `l` a left shift, `h`, `k`, `r` a rounding right shift's half, negative mask
#: and count; o: the output's l, h, k, r). Only the *signs* of the shifts stay in the code (they
#: choose its shape), so a retrained model whose scales moved reuses the kernel (issue #14).
_ADD_QS = ("z1, z2, m1, m2, mo, zo, lo, hi, xv_, xl_, xh_, xk_, xr_, yv_, yl_, yh_, yk_, yr_, "
           "ol_, oh_, ok_, or_")
_ADD_N = _ADD_QS.count(",") + 1


def _add_qs(a) -> np.ndarray:
    v = [a.z1, a.z2, a.m1[0], a.m2[0], a.mo[0], a.zo, a.act_min, a.act_max]
    for _m, sh in (a.m1, a.m2):
        v += [max(a.left_shift + sh, 0), *shift_params(sh)]
    return np.array(v + shift_params(a.mo[1]), np.int64)


def _mbqm_rt(dst: str, src: str, m: str, p: str, left: bool) -> list[str]:
    """dst = MBQM(src, m, shift) with the shift's amounts read from the QS locals `{p}l_` ...
    (`left`: the shift is a left shift, else a rounding right shift, possibly by 0)."""
    if left:
        return [f"{dst} = (np.int64(np.int32({src} << {p}l_)) * {m} + 1073741824) >> 31"]
    return [f"{dst} = ({src} * {m} + 1073741824) >> 31",
            f"{dst} = {round_shift_rt(dst, f'{p}h_', f'{p}k_', f'{p}r_')}"]


def _element(a, i: str, vector: bool, xi: str | None = None, yi: str | None = None) -> list[str]:
    """Lines computing out[i] from x[xi], y[yi] (xi, yi default to i; the _ADD_QS names are
    locals of the entry)."""
    lines = [f"xv = np.int64(ld(x, {xi or i})) - z1", f"yv = np.int64(ld(y, {yi or i})) - z2"]
    for var, p, m, sh in (("xv", "x", "m1", a.m1[1]), ("yv", "y", "m2", a.m2[1])):
        if vector and a.left_shift + sh >= 0:  # ADD's vector blocks: one rounding
            lines.append(f"{var} = (np.int64(np.int32({var} << {p}v_)) * {m} + 1073741824) >> 31")
        else:
            lines += _mbqm_rt(var, f"({var} << {a.left_shift})", m, p, sh > 0)
    lines.append("s = xv - yv" if a.sub else "s = xv + yv")
    lines.append("s = np.int64(np.int32(s))")
    lines += _mbqm_rt("r", "s", "mo", "o", a.mo[1] > 0)
    lines.append(f"st(o, {i}, min(max(r + zo, lo), hi))")
    return lines


def _generate(req: KernelRequest) -> KernelSource:
    a = quantized_attrs(req, "left_shift", "ADD/SUB node", int16=True)
    x, y = req.inputs[0], req.inputs[1]
    if x is None or y is None:
        raise Unsupported(f"quantized {req.op_name}: needs two inputs")
    for t in (x, y, req.outputs[0].arg):
        if np.dtype(t.dtype) != np.dtype(a.dtype):
            raise Unsupported(f"quantized {req.op_name}: mixed dtypes")
    if tuple(x.shape) != tuple(y.shape) or tuple(x.shape) != tuple(req.out_shape):
        return _generate_broadcast(req)
    n = math.prod(x.shape)
    head = n // 16 * 16 if not a.sub else 0
    parallel = emit.want_parallel(req, n / SERIAL_ELEMS) and head >= 16 * 64
    body = ["def entry(x, y, qs, o):", f"    {_ADD_QS} = " + ", ".join(f"qs[{k}]" for k in range(_ADD_N))]
    if head:
        nb = head // 16
        if parallel:
            chunks = 4 * req.num_threads
            per = -(-nb // chunks)
            body += ["    " + ln for ln in emit.prange_head("c", 0, chunks)]
            body += [f"        for i in range(c * {per * 16}, min(c * {per * 16} + {per * 16}, {head})):"]
            body += ["            " + ln for ln in _element(a, "i", True)]
        else:
            body += [f"    for i in range({head}):"] + ["        " + ln for ln in _element(a, "i", True)]
    if head < n:
        body += [f"    for i in range({head}, {n}):"] + ["        " + ln for ln in _element(a, "i", False)]
    src = (f"# quantized {req.op_name} ({a.dtype})\n"
           + emit.helper_import(host.SIMD, "ld", "st")
           + emit.module("\n".join(body) + "\n", parallel))
    return KernelSource(src, "entry", [Arg("input", 0), Arg("input", 1), Arg("const", value=_add_qs(a)),
                                       Arg("output", 0)], parallel)


def _generate_broadcast(req: KernelRequest) -> KernelSource:
    """Operands of different shapes: LiteRT's broadcast path rounds each input rescale twice
    (MBQM), as the reference does; nested loops with broadcast strides (`_loops`)."""
    a = req.attrs
    x, y = req.inputs[0], req.inputs[1]
    out = tuple(req.out_shape)
    if len(out) > 6 or len(x.shape) > len(out) or len(y.shape) > len(out):
        raise Unsupported(f"quantized {req.op_name}: rank > 6")
    body = _element(a, "i", False, "i0", "i1")
    lines = ["def entry(x, y, qs, o):", f"    {_ADD_QS} = " + ", ".join(f"qs[{k}]" for k in range(_ADD_N))]
    lines += ["    " + ln for ln in _loops(out, [tuple(x.shape), tuple(y.shape)], body)]
    src = (f"# quantized {req.op_name} ({a.dtype}), broadcasting\n" + emit.helper_import(host.SIMD, "ld", "st")
           + emit.module("\n".join(lines) + "\n", False))
    return KernelSource(src, "entry", [Arg("input", 0), Arg("input", 1), Arg("const", value=_add_qs(a)),
                                       Arg("output", 0)], False)


@register_generator("ADD")
def generate_add(req: KernelRequest) -> KernelSource:
    return _generate(req)


@register_generator("SUB")
def generate_sub(req: KernelRequest) -> KernelSource:
    return _generate(req)


# ---- MUL (with broadcasting) and the 8-bit table ops ---------------------------------------------


def _loops(out_shape: tuple[int, ...], operands: list[tuple[int, ...]], body: list[str]) -> list[str]:
    """Nested loops over out_shape (literal bounds); `i` is the flat output index and i<k> the
    flat index of operand k (broadcast dims: stride 0), both advanced by literal strides."""
    rank = len(out_shape)
    strides = []
    for shp in operands:
        pad = (1,) * (rank - len(shp)) + tuple(shp)
        st_, acc = [0] * rank, 1
        for d in range(rank - 1, -1, -1):
            st_[d] = 0 if pad[d] == 1 else acc
            acc *= pad[d]
        strides.append(st_)
    ostr, acc = [0] * rank, 1
    for d in range(rank - 1, -1, -1):
        ostr[d] = acc
        acc *= out_shape[d]
    lines: list[str] = []
    ind = ""
    terms: list[list[str]] = [[] for _ in range(len(operands) + 1)]
    for d in range(rank):
        lines.append(f"{ind}for d{d} in range({out_shape[d]}):")
        ind += "    "
        terms[0].append(f"d{d} * {ostr[d]}")
        for k, st_ in enumerate(strides):
            if st_[d]:
                terms[k + 1].append(f"d{d} * {st_[d]}")
    lines.append(f"{ind}i = {' + '.join(terms[0]) or '0'}")
    for k in range(len(operands)):
        lines.append(f"{ind}i{k} = {' + '.join(terms[k + 1]) or '0'}")
    return lines + [ind + ln for ln in body]


def _common(req: KernelRequest, field: str, int16: bool = False) -> None:
    """Checks shared by these kernels; `int16`: the node may also be int16 (the table ops, MUL)."""
    a = req.attrs
    if int16 and isinstance(a, Quantized) and hasattr(a, field) and np.dtype(a.dtype) == np.dtype(np.int16):
        no_epilogue(req, f"quantized {req.op_name}")
    else:
        a = quantized_attrs(req, field, "node of this kernel")
    if math.prod(req.out_shape) == 0:
        raise Unsupported(f"{req.op_name}: empty output")
    for t in (*req.inputs, req.outputs[0].arg):
        if t is None or np.dtype(t.dtype) != np.dtype(a.dtype):
            raise Unsupported(f"quantized {req.op_name}: mixed dtypes")


@register_generator("MUL")
def generate_mul(req: KernelRequest) -> KernelSource:
    """r = MBQM((x - z1) * (y - z2), M, shift) + zo, clamped (one float32-computed multiplier)."""
    _common(req, "m", int16=True)
    a = req.attrs
    x, y = req.inputs[0], req.inputs[1]
    out = tuple(req.out_shape)
    if len(out) > 6 or len(x.shape) > len(out) or len(y.shape) > len(out):
        raise Unsupported("quantized MUL: rank > 6")
    m, shift = a.m
    body = ["p = (np.int64(ld(x, i0)) - z1) * (np.int64(ld(y, i1)) - z2)"]
    if shift <= 0:  # a right shift (every 8-bit MUL seen): an argument too, rounded branchlessly
        body += ["r = (np.int64(np.int32(p)) * m + 1073741824) >> 31", f"r = {round_shift_rt('r', 'h', 'nm', 'rs')}"]
    else:
        body += _mbqm_lines("r", "np.int64(np.int32(p))", "m", shift)
    body.append("st(o, i, min(max(r + zo, lo), hi))")
    lines = _vector_mul(a, out, tuple(x.shape), tuple(y.shape), body) if qmulvec_ok(a) else None
    if lines is None:
        lines = ["def entry(x, y, o):"] + ["    " + ln for ln in _loops(out, [tuple(x.shape), tuple(y.shape)], body)]
    # the parameters are an argument (QS), read into locals first: only a left shift is printed
    lines = [lines[0].replace("(x, y, o)", "(x, y, qs, o)"),
             f"    {_MUL_QS} = " + ", ".join(f"qs[{k}]" for k in range(12))] + lines[1:]
    src = ("# quantized MUL\n" + emit.helper_import(host.SIMD, "ld", "st") + emit.helper_import(host.QMULVEC, "qmul16")
           + emit.module("\n".join(lines) + "\n", False))
    return KernelSource(src, "entry", [Arg("input", 0), Arg("input", 1), Arg("const", value=_mul_qs(a)),
                                       Arg("output", 0)], False)


#: MUL's run-time parameters (the QS argument), in order (host.split_multiplier's parts too,
#: and a right shift's count, half and negative-value mask: only a left shift is printed)
_MUL_QS = "z1, z2, m, ca, cc, cd, zo, lo, hi, h, nm, rs"


def _mul_qs(a) -> np.ndarray:
    m, shift = a.m
    ca, cc, cd = host.split_multiplier(m) if qmulvec_ok(a) else (0, 0, 0)
    _, h, nm, rs = shift_params(min(shift, 0))  # a left shift is printed (generate_mul)
    return np.array([a.z1, a.z2, m, ca, cc, cd, a.zo, a.act_min, a.act_max, h, nm, rs], np.int64)


@register_generator("PRELU")
def generate_prelu(req: KernelRequest) -> KernelSource:
    """d = x - zi; r = MBQM(d, M1) if d >= 0 else MBQM(d * (alpha - za), M2); + zo, clamped to
    the type (ops/qmath_ops.py; alpha broadcasts into the input, usually per channel)."""
    _common(req, "m2")
    a = req.attrs
    x, al = req.inputs[0], req.inputs[1]
    out = tuple(req.out_shape)
    if tuple(x.shape) != out or len(al.shape) > len(out) or len(out) > 6:
        raise Unsupported("quantized PRELU: alpha must broadcast into the input (rank <= 6)")
    info = np.iinfo(np.dtype(a.dtype))
    body = [f"d = np.int64(ld(x, i0)) - {a.zi}", "if d >= 0:"]
    body += ["    " + ln for ln in _mbqm_lines("r", "d", *a.m1)]
    body += ["else:", f"    p = d * (np.int64(ld(y, i1)) - {a.za})"]
    body += ["    " + ln for ln in _mbqm_lines("r", "np.int64(np.int32(p))", *a.m2)]
    body.append(f"st(o, i, min(max(r + {a.zo}, {info.min}), {info.max}))")
    lines = ["def entry(x, y, o):"] + ["    " + ln for ln in _loops(out, [tuple(x.shape), tuple(al.shape)], body)]
    src = ("# quantized PRELU\n" + emit.helper_import(host.SIMD, "ld", "st")
           + emit.module("\n".join(lines) + "\n", False))
    return KernelSource(src, "entry", [Arg("input", 0), Arg("input", 1), Arg("output", 0)], False)


def qmulvec_ok(a) -> bool:
    """The int32 vector MUL (qmulvec.py) applies: 8-bit operands and a multiplier without a left
    shift."""
    m, shift = a.m
    return USE_VECTOR_MUL and np.dtype(a.dtype).itemsize == 1 and shift <= 0 and 0 <= m < 2**31 and -shift <= 31


#: False forces the scalar (int64) MUL loops (tests and benchmarks compare the two)
USE_VECTOR_MUL = True


def _vector_mul(a, out: tuple[int, ...], xs: tuple[int, ...], ys: tuple[int, ...],
                scalar: list[str]) -> list[str] | None:
    """Entry lines for same-shape operands (one flat loop) or one operand broadcast along every
    dimension but the last (squeeze-and-excite: [1, H, W, C] * [1, 1, 1, C]): 16-lane qmul16
    steps and the scalar body for the tail; None for other shapes."""
    n = math.prod(out)
    rank = len(out)
    pad = [(1,) * (rank - len(s)) + tuple(s) for s in (xs, ys)]

    def call(xi: str, yi: str, oi: str, swap: bool) -> str:
        z1, z2 = ("z2", "z1") if swap else ("z1", "z2")
        first, second = ("y", "x") if swap else ("x", "y")
        return f"qmul16({first}, {xi}, {second}, {yi}, o, {oi}, {z1}, {z2}, ca, cc, cd, h, nm, rs, zo, lo, hi)"

    W = host.MUL_W
    if pad[0] == tuple(out) and pad[1] == tuple(out):
        head = n // W * W
        lines = ["def entry(x, y, o):"]
        if head:
            lines += [f"    for i in range(0, {head}, {W}):", "        " + call("i", "i", "i", False)]
        if head < n:
            lines += [f"    for i in range({head}, {n}):", "        i0 = i", "        i1 = i"]
            lines += ["        " + ln for ln in scalar]
        return lines
    C = out[-1] if rank else 1
    for full, bc in ((0, 1), (1, 0)):
        if pad[full] == tuple(out) and rank and pad[bc] == (1,) * (rank - 1) + (C,) and C >= W:
            P, head = n // C, C // W * W
            ix = "b + c"
            lines = ["def entry(x, y, o):", f"    for pp in range({P}):", f"        b = pp * {C}",
                     f"        for c in range(0, {head}, {W}):",
                     "            " + (call(ix, "c", ix, False) if full == 0 else call(ix, "c", ix, True))]
            if head < C:
                lines += [f"        for c in range({head}, {C}):", "            i = b + c"]
                lines += ["            i0 = i" if full == 0 else "            i0 = c",
                          "            i1 = c" if full == 0 else "            i1 = i"]
                lines += ["            " + ln for ln in scalar]
            return lines
    return None


def generate_table(req: KernelRequest) -> KernelSource:
    """out = table[x - qmin]: the op's table over every input value (ops/qelementwise.py; 65536
    entries for int16 LOGISTIC/TANH). 8-bit tables with AVX512-VBMI: 64 elements per vpermi2b
    step (qlut.py) and a scalar tail; otherwise a scalar gather."""
    _common(req, "table", int16=True)
    a = req.attrs
    dt = np.dtype(a.dtype)
    lo = {np.dtype(np.int8): -128, np.dtype(np.int16): -32768}.get(dt, 0)
    n = math.prod(req.out_shape)
    if tuple(req.inputs[0].shape) != tuple(req.out_shape):
        raise Unsupported(f"quantized {req.op_name}: input and output shapes differ")
    table = np.ascontiguousarray(np.asarray(a.table).astype(dt))
    byte = dt.itemsize == 1
    head = n // host.LUT_W * host.LUT_W if host.HAS_VBMI and byte else 0
    lines = ["def entry(x, tab, btab, o):"]
    if head:
        lines += [f"    for i in range(0, {head}, {host.LUT_W}):", "        lut64(btab, x, o, i)"]
    if head < n:
        lines += [f"    for i in range({head}, {n}):", f"        st(o, i, ld(tab, np.int64(ld(x, i)) - {lo}))"]
    src = (f"# quantized table op {req.op_name}\n" + emit.helper_import(host.SIMD, "ld", "st")
           + emit.helper_import(host.QLUT, "lut64")
           + emit.module("\n".join(lines) + "\n", False))
    return KernelSource(src, "entry", [Arg("input", 0), Arg("const", value=table),
                                       Arg("const", value=host.byte_table(table, dt) if byte else table[:1]),
                                       Arg("output", 0)], False)


@register_generator("SQUARED_DIFFERENCE")
def generate_squared_difference(req: KernelRequest) -> KernelSource:
    """int8 (ops/qmath_ops.py, LiteRT's squared_difference.cc): each input rescaled with a left
    shift of 7 (MBQM), the difference squared, requantized (MBQM); broadcasting loops."""
    a = quantized_attrs(req, "m1", "SQUARED_DIFFERENCE node")
    no_epilogue(req, "quantized SQUARED_DIFFERENCE")
    x, y = req.inputs[0], req.inputs[1]
    out = tuple(req.out_shape)
    if x is None or y is None or len(out) > 6 or len(x.shape) > len(out) or len(y.shape) > len(out):
        raise Unsupported("quantized SQUARED_DIFFERENCE: two inputs of rank <= 6")
    for t in (x, y, req.outputs[0].arg):
        if np.dtype(t.dtype) != np.dtype(np.int8):
            raise Unsupported("quantized SQUARED_DIFFERENCE: int8 only")
    # zero points, multipliers and shift amounts are run-time parameters (only the shifts' signs
    # are in the code): a re-quantized twin reuses the kernel (issue #14)
    names = "z1, z2, zo, m1, m2, mo, xl_, xh_, xk_, xr_, yl_, yh_, yk_, yr_, ol_, oh_, ok_, or_"
    qs = np.array([a.z1, a.z2, a.zo, a.m1[0], a.m2[0], a.mo[0],
                   *shift_params(a.m1[1]), *shift_params(a.m2[1]), *shift_params(a.mo[1])], np.int64)
    body = ["xv = np.int64(ld(x, i0)) - z1", "yv = np.int64(ld(y, i1)) - z2"]
    body += _mbqm_rt("xv", "(xv << 7)", "m1", "x", a.m1[1] > 0) + _mbqm_rt("yv", "(yv << 7)", "m2", "y", a.m2[1] > 0)
    body += ["dv = xv - yv"] + _mbqm_rt("r", "np.int64(np.int32(dv * dv))", "mo", "o", a.mo[1] > 0)
    body += ["st(o, i, min(max(r + zo, -128), 127))"]
    lines = (["def entry(x, y, qs, o):", f"    {names} = " + ", ".join(f"qs[{k}]" for k in range(len(qs)))]
             + ["    " + ln for ln in _loops(out, [tuple(x.shape), tuple(y.shape)], body)])
    src = ("# quantized SQUARED_DIFFERENCE (int8)\n" + emit.helper_import(host.SIMD, "ld", "st")
           + emit.module("\n".join(lines) + "\n", False))
    return KernelSource(src, "entry", [Arg("input", 0), Arg("input", 1), Arg("const", value=qs),
                                       Arg("output", 0)], False)


#: LiteRT's 8-bit table ops (ops/qelementwise.py QTableAttrs)
TABLE_OPS = ("LOGISTIC", "TANH", "GELU", "ELU", "HARD_SWISH")
for _name in TABLE_OPS:
    register_generator(_name)(generate_table)
