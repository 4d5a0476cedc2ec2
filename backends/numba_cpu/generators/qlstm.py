"""The integer (8x8_16) UNIDIRECTIONAL_SEQUENCE_LSTM as one kernel: the whole time loop compiled,
bit-exact with ops/qsequence.py (LiteRT's EvalInteger8x8_16).

Why: on `reference` each time step is a few dozen NumPy calls on [batch, n_cell] arrays; a
32-step sequence costs milliseconds where LiteRT spends microseconds. Here a step is, per batch
row and cell, the gate sums in int64 (the folded bias, then input x weights, requantized and
saturated to int16, then recurrent x weights likewise, then the peephole), the gemmlowp logistic
and tanh as lookups in the reference's own 64 K tables (passed in, never re-derived), the cell
update with its wrapping int16 stores and the clip, the layer normalisation when the model has
it (a pass over each gate's sums before its activation), and the hidden / projected output.

Every number comes from the reference: the multipliers are `qsequence.integer_params` baked into
the source, the tables `qsequence` builds; the arithmetic below is qmath's (MultiplyByQuantized
Multiplier with double rounding, RoundingDivideByPOT) written out for scalars. Weights and
biases are run-time arguments (the op's input buffers), so a retrained model reuses the kernel;
the zero-point-folded biases are recomputed per invoke (n_cell x n_input adds, nothing next to
the T x n_cell x (n_input + n_output) of the loop).
"""

from __future__ import annotations

import numpy as np

from tflite_jit.backends.numba_cpu import emit
from tflite_jit.backends.numba_cpu.generators import GENERATORS, register_generator
from tflite_jit.backends.numba_cpu.generators import lstm as _float_lstm  # noqa: F401  (registers first)
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops import expr as E
from tflite_jit.ops import qsequence

_HELPERS = '''

@numba.njit(inline="always")
def _wrap32(x):
    return ((x + 2147483648) & 4294967295) - 2147483648


@numba.njit(inline="always")
def _wrap16(x):
    return ((x + 32768) & 65535) - 32768


@numba.njit(inline="always")
def _sat(x, lo, hi):
    return lo if x < lo else (hi if x > hi else x)


@numba.njit(inline="always")
def _rdbpot(x, e):
    mask = (np.int64(1) << e) - 1
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if (x & mask) > thr else 0)


@numba.njit(inline="always")
def _srdhm(a, b):
    if a == -2147483648 and b == -2147483648:
        return np.int64(2147483647)
    return (a * b + 1073741824) >> 31


@numba.njit(inline="always")
def _sat_shl(x, k):
    return _sat(x << k, -2147483648, 2147483647)


@numba.njit
def _inv_sqrt(v):
    # GetInvSqrtQuantizedMultiplierExp(v, reverse_shift=-1): (multiplier, left shift)
    if v <= 1:
        return np.int64(2147483647), np.int64(0)
    shift = np.int64(11)
    while v >= (1 << 29):
        v //= 4
        shift += 1
    bits = 0
    t = v
    while t > 0:
        bits += 1
        t >>= 1
    pairs = (32 - bits - 1) // 2 - 1
    shift -= pairs
    v <<= 2 * pairs
    half_in = _rdbpot(v >> 1, 1)
    x = np.int64(1 << 28)
    for _ in range(5):
        x3 = _sat_shl(_srdhm(_srdhm(x, x), x), 6)
        x = _sat_shl(_wrap32(_srdhm(402653184, x) - _srdhm(half_in, x3)), 3)
    x = _srdhm(x, 1518500250)
    if shift < 0:
        x = _wrap32(x << -shift)
        shift = 0
    return x, -shift


@numba.njit(inline="always")
def _mbqm(x, m, ls, rs):
    a = _wrap32(x << ls)
    if a == -2147483648 and m == -2147483648:
        t = np.int64(2147483647)
    else:
        t = (a * m + 1073741824) >> 31
    return _rdbpot(t, rs) if rs > 0 else t


@numba.njit
def _layer_norm(gate, g, w, bias, m, s, guard, n):
    # ApplyLayerNorm of gate[g, :n] in place (int16 sums in, int16 out)
    total = np.int64(0)
    sq = np.int64(0)
    for j in range(n):
        total += gate[g, j]
        sq += gate[g, j] * gate[g, j]
    mean = _wrap32(_tdiv(total * 1024, n))
    var = _wrap32(_tdiv(sq * ((1 << 20) // n) - mean * mean, 1 << 20))
    if var < 1:
        var = guard
    im, ish = _inv_sqrt(var)
    for j in range(n):
        r = _mbqm(_wrap32(1024 * gate[g, j] - mean), im, max(ish, 0), max(-ish, 0))
        v3 = _wrap32(_wrap32(r * w[j]) + bias[j])
        v4 = _tdiv(v3 + 512 if v3 > 0 else v3 - 512, 1024)
        gate[g, j] = _sat(_mbqm(_wrap32(v4), m, max(s, 0), max(-s, 0)), -32768, 32767)
'''


class _Params:
    """The kernel's quantization constants as run-time values (the `qp` argument, unpacked into
    locals q0, q1, ... at entry): a re-quantized twin has other multipliers, shifts, zero points
    and clips but runs the same module (issue #14). Only which of them are zero or present
    (peepholes, clips, projection) shapes the code."""

    def __init__(self) -> None:
        self.values: list[int] = []

    def __call__(self, value: int) -> str:
        self.values.append(int(value))
        return f"q{len(self.values) - 1}"

    def mult(self, mult: tuple[int, int]) -> str:
        """(M, shift) as the `m, ls, rs` arguments of _mbqm."""
        m, shift = mult
        return f"{self(m)}, {self(max(shift, 0))}, {self(max(-shift, 0))}"


def _present(req: KernelRequest, i: int) -> bool:
    return i < len(req.inputs) and req.inputs[i] is not None


#: the op's generator registered before this module (float, and any other form): nodes that are
#: not integer go to it
_PREVIOUS = GENERATORS["UNIDIRECTIONAL_SEQUENCE_LSTM"]


@register_generator("UNIDIRECTIONAL_SEQUENCE_LSTM")
def generate(req: KernelRequest) -> KernelSource:
    """The op's kernel: integer nodes here, the others the generator registered before."""
    if isinstance(req.attrs, qsequence.QLstmAttrs):
        return generate_qlstm(req)
    return _PREVIOUS(req)


def generate_qlstm(req: KernelRequest) -> KernelSource:
    a: qsequence.QLstmAttrs = req.attrs
    f = a.base
    if req.extras or len(req.outputs) != 1 or not (isinstance(req.outputs[0].expr, E.Var)
                                                   and req.outputs[0].expr.index == 0):
        raise Unsupported("integer UNIDIRECTIONAL_SEQUENCE_LSTM: fused epilogues are not compiled")
    if a.hidden is None:
        raise Unsupported("integer UNIDIRECTIONAL_SEQUENCE_LSTM: intermediates not bound")
    p = qsequence.integer_params(a)
    x_shape = tuple(int(d) for d in req.inputs[0].shape)
    T, B = (x_shape[0], x_shape[1]) if f.time_major else (x_shape[1], x_shape[0])
    n_in = x_shape[2]
    n_cell = int(req.inputs[2].shape[0])
    n_out = int(req.inputs[6].shape[1])
    cifg = not _present(req, 1)
    gates = (1, 2, 3) if cifg else (0, 1, 2, 3)
    peep = {0: _present(req, 9), 1: _present(req, 10), 3: _present(req, 11)}
    proj = _present(req, 16)
    proj_bias = _present(req, 17)
    ibits = 15 + a.cell_scale
    skip_tanh = not 0 <= ibits <= 6
    if skip_tanh and cifg:
        raise Unsupported("integer LSTM: CIFG with a skipped tanh is refused by the shape rule")

    used = [0] + [g + 1 for g in gates] + [g + 5 for g in gates] + [g + 12 for g in gates]
    used += [k for k, g in ((9, 0), (10, 1), (11, 3)) if peep[g]]
    use_ln = a.ln_scales is not None
    used += [16] * proj + [17] * proj_bias + [18, 19] + ([g + 20 for g in gates] if use_ln else [])
    names = {0: "x", 18: "hs", 19: "cs", 16: "pw", 17: "pb"}
    names.update({g + 1: f"wx{g}" for g in range(4)})
    names.update({g + 5: f"wh{g}" for g in range(4)})
    names.update({g + 12: f"b{g}" for g in range(4)})
    names.update({9: "pp0", 10: "pp1", 11: "pp3"})
    names.update({g + 20: f"ln{g}" for g in range(4)})
    tanh_c = np.zeros(1, np.int16) if skip_tanh else qsequence.tanh_table(ibits).astype(np.int16)
    args = [(Arg("input", i), names[i]) for i in sorted(used)]
    args += [(Arg("const", value=qsequence.logistic_table().astype(np.int16)), "sig"),
             (Arg("const", value=qsequence.tanh_table(3).astype(np.int16)), "tnh3"),
             (Arg("const", value=tanh_c), "tnhc")]
    q = _Params()
    x_at = "x[t, b, k]" if f.time_major else "x[b, t, k]"
    o_at = "o0[t, b, n]" if f.time_major else "o0[b, t, n]"
    L = ["def entry(...):",  # the signature and qp's unpacking are filled in at the end
         f"    h = np.empty(({B}, {n_out}), np.int64)",
         f"    c = np.empty(({B}, {n_cell}), np.int64)",
         f"    gate = np.empty((4, {n_cell}), np.int64)",
         f"    hid = np.empty({n_cell}, np.int64)",
         f"    ib = np.zeros((4, {n_cell}), np.int64)",
         f"    rb = np.zeros((4, {n_cell}), np.int64)",
         f"    for b in range({B}):",
         f"        for n in range({n_out}):",
         "            h[b, n] = hs[b, n]",
         f"        for n in range({n_cell}):",
         "            c[b, n] = cs[b, n]"]
    # Prepare's folded biases: bias - input_zp * row sums; -output_state_zp * row sums
    for g in gates:
        L += [f"    for n in range({n_cell}):",
              "        s = np.int64(0)",
              f"        for k in range({n_in}):",
              f"            s += wx{g}[n, k]",
              f"        ib[{g}, n] = {'0' if use_ln else f'np.int64(b{g}[n])'} - {q(a.input_zp)} * s",
              "        s = np.int64(0)",
              f"        for k in range({n_out}):",
              f"            s += wh{g}[n, k]",
              f"        rb[{g}, n] = -{q(a.output_state_zp)} * s"]
    if proj:
        L += [f"    pbias = np.zeros({n_out}, np.int64)",
              f"    for n in range({n_out}):",
              "        s = np.int64(0)",
              f"        for k in range({n_cell}):",
              "            s += pw[n, k]",
              f"        pbias[n] = {'np.int64(pb[n]) + ' if proj_bias else ''}{q(p.hidden_zp)} * s"]
    L += [f"    for t in range({T}):",
          f"        for b in range({B}):"]

    def gate_sum(g: int, indent: str) -> list[str]:
        out = [f"{indent}acc = ib[{g}, n]",
               f"{indent}for k in range({n_in}):",
               f"{indent}    acc += np.int64({x_at}) * wx{g}[n, k]",
               f"{indent}v = _sat(_mbqm(_wrap32(acc), {q.mult(p.input_mult[g])}), -32768, 32767)",
               f"{indent}acc = rb[{g}, n]",
               f"{indent}for k in range({n_out}):",
               f"{indent}    acc += h[b, k] * wh{g}[n, k]",
               f"{indent}v = _sat(_mbqm(_wrap32(acc), {q.mult(p.recurrent_mult[g])}) + v, -32768, 32767)"]
        if g != 2 and peep[g]:
            k = {0: 0, 1: 1, 3: 2}[g]
            out += [f"{indent}v = _sat(_mbqm(np.int64(pp{g}[n]) * c[b, n], {q.mult(p.peephole_mult[k])}) + v, "
                    "-32768, 32767)"]
        return out

    ind = "                "
    act = {g: "tnh3" if g == 2 else "sig" for g in gates}

    def normalise(g: int) -> list[str]:  # layer norm of gate g's sums, in place, before its activation
        if not use_ln:
            return []
        m, sh = p.ln_mult[g]
        return [f"            _layer_norm(gate, {g}, ln{g}, b{g}, {q(m)}, {q(sh + 12)}, {q(p.variance_guard[g])}, "
                f"{n_cell})"]

    L += [f"            for n in range({n_cell}):"]
    for g in gates[:-1]:
        L += gate_sum(g, ind) + [f"{ind}gate[{g}, n] = v"]
    for g in gates[:-1]:
        L += normalise(g)
    L += [f"            for n in range({n_cell}):"]
    L += [f"{ind}gate[{g}, n] = {act[g]}[gate[{g}, n] + 32768]" for g in gates[:-1]]
    i_gate = "32767 - gate[1, n]" if cifg else "gate[0, n]"
    L += [f"{ind}fc = _wrap16(_rdbpot(gate[1, n] * c[b, n], 15))",
          f"{ind}ig = _wrap16(_rdbpot(({i_gate}) * gate[2, n], {q(30 + a.cell_scale)}))",
          f"{ind}cn = _sat(fc + ig, -32768, 32767)"]
    if p.cell_clip > 0:
        clip = q(p.cell_clip)
        L += [f"{ind}cn = _sat(cn, -{clip}, {clip})"]
    L += [f"{ind}c[b, n] = cn"]
    L += gate_sum(3, ind) + [f"{ind}gate[3, n] = v"]
    L += normalise(3)
    tc = "gate[0, n]" if skip_tanh else "tnhc[c[b, n] + 32768]"
    hm = q.mult(p.hidden_mult)
    sign = "-" if proj else "+"  # LiteRT's projection path stores the hidden state with -zero point
    L += [f"            for n in range({n_cell}):",
          f"{ind}hid[n] = _sat(_mbqm(np.int64(sig[gate[3, n] + 32768]) * {tc}, {hm}) {sign} {q(p.hidden_zp)}, "
          "-128, 127)"]
    if proj:
        L += [f"            for n in range({n_out}):",
              "                acc = pbias[n]",
              f"                for k in range({n_cell}):",
              "                    acc += hid[k] * pw[n, k]",
              f"                v = _sat(_mbqm(_wrap32(acc), {q.mult(p.proj_mult)}) + {q(a.output_state_zp)}, -128, 127)"]
        if p.proj_clip > 0:
            clip = q(p.proj_clip)
            L += [f"                v = _sat(v, -{clip}, {clip})"]
        L += ["                h[b, n] = v", f"                {o_at} = v"]
    else:
        L += [f"            for n in range({n_out}):",
              "                h[b, n] = hid[n]",
              f"                {o_at} = hid[n]"]
    L += [f"    for b in range({B}):",
          f"        for n in range({n_out}):",
          "            hs[b, n] = h[b, n]",
          f"        for n in range({n_cell}):",
          "            cs[b, n] = c[b, n]"]
    args += [(Arg("const", value=np.array(q.values or [0], np.int64)), "qp"), (Arg("output", 0), "o0")]
    arglist, params = emit.signature(args)
    L[0] = f"def entry({params}):"
    L[1:1] = [f"    q{i} = qp[{i}]" for i in range(len(q.values))]
    src = emit.module("\n".join(L) + "\n", False)
    src = src.replace(emit.njit_line(False), _HELPERS + "\n\n# integer UNIDIRECTIONAL_SEQUENCE_LSTM (8x8_16)\n"
                      + emit.njit_line(False), 1)
    return KernelSource(src, "entry", arglist, False)
