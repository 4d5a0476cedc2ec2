"""UNIDIRECTIONAL_SEQUENCE_LSTM (float32) as one kernel: the whole time loop compiled.

Why: TF's converter turns a Keras LSTM (Keras 2 / tf_keras) into this one op; on `reference`
each time step is a handful of NumPy calls on tiny arrays (~20 us per step), where LiteRT's
kernel spends ~1 us. Here a step is, per batch row, the four gate pre-activations for all
cells (bias, then input x W_x, then recurrent h x W_h, accumulated in LiteRT's order), the
cell update and the output, with the state kept in the op's variable inputs (18: output
state, 19: cell state), which the kernel updates in place as LiteRT does.

Covered: float32 with or without CIFG, any clamping or TANH activation, cell clip, batch- or
time-major. Peepholes, projection, layer normalisation, diagonal recurrent weights and
activation NONE (whose LiteRT quirks the reference reproduces) stay on `reference`.
Constant weights (the converter's case) are packed at plan time (`_packed_float`): the gates of all
cells as one row of pre-activations, every input and recurrent value added as a unit-stride axpy
over it, the gate functions on the vectorizable _exp32 / _tanh32; run-time weights take the
per-cell dot products below. Either way the weights are kernel arguments, not code: a retrained
model reuses the compiled kernel.

The dynamic-range form (int8 weights, ops/hybrid_lstm.py) has its own generator below
(`generate_hybrid_lstm`): constant int8 weights packed at plan time, the per-step quantization
and LiteRT's gate functions from ../hybridq.py, bit-exact with the reference and LiteRT.
"""

from __future__ import annotations

import numpy as np

from tflite_jit.backends.numba_cpu import emit, host, printer
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops import expr as E
from tflite_jit.ops.base import Quantized
from tflite_jit.ops.hybrid_lstm import gate_scalar_masks
from tflite_jit.ops.qhybrid import HybridAttrs

_UNSUPPORTED_INPUTS = {9: "peepholes", 10: "peepholes", 11: "peepholes", 16: "projection", 17: "projection",
                       20: "layer normalisation", 21: "layer normalisation", 22: "layer normalisation",
                       23: "layer normalisation"}
_ACT = {"TANH": "np.tanh({})", "RELU": "max({}, np.float32(0.0))",
        "RELU6": "min(max({}, np.float32(0.0)), np.float32(6.0))",
        "RELU_N1_TO_1": "min(max({}, np.float32(-1.0)), np.float32(1.0))"}


def _input(req: KernelRequest, i: int):
    return req.inputs[i] if i < len(req.inputs) else None


@register_generator("UNIDIRECTIONAL_SEQUENCE_LSTM")
def generate_lstm(req: KernelRequest) -> KernelSource:
    a = req.attrs
    if isinstance(a, HybridAttrs):
        return generate_hybrid_lstm(req, a)
    if isinstance(a, Quantized):
        raise Unsupported("UNIDIRECTIONAL_SEQUENCE_LSTM with quantized weights runs on reference")
    for i, what in _UNSUPPORTED_INPUTS.items():
        if _input(req, i) is not None:
            raise Unsupported(f"UNIDIRECTIONAL_SEQUENCE_LSTM with {what} runs on reference")
    if a.diagonal_recurrent:
        raise Unsupported("UNIDIRECTIONAL_SEQUENCE_LSTM with diagonal recurrent weights runs on reference")
    if a.activation not in _ACT:
        raise Unsupported(f"UNIDIRECTIONAL_SEQUENCE_LSTM with activation {a.activation} runs on reference")
    if req.extras or len(req.outputs) != 1 or not (isinstance(req.outputs[0].expr, E.Var)
                                                   and req.outputs[0].expr.index == 0):
        raise Unsupported("UNIDIRECTIONAL_SEQUENCE_LSTM: fused epilogues are not compiled")
    needed = [0, 2, 3, 4, 6, 7, 8, 13, 14, 15, 18, 19]
    if any(_input(req, i) is None for i in needed):
        raise Unsupported("UNIDIRECTIONAL_SEQUENCE_LSTM: a required input is missing")
    cifg = _input(req, 1) is None
    if not cifg and (_input(req, 5) is None or _input(req, 12) is None):
        raise Unsupported("UNIDIRECTIONAL_SEQUENCE_LSTM: partial input gate")
    used = needed if cifg else sorted(needed + [1, 5, 12])
    for i in used:
        if np.dtype(req.inputs[i].dtype) != emit.F32:
            raise Unsupported(f"UNIDIRECTIONAL_SEQUENCE_LSTM: input {i} is {np.dtype(req.inputs[i].dtype).name} "
                              "(float32 only; hybrid and quantized forms run on reference)")
    x_shape = tuple(int(d) for d in req.inputs[0].shape)
    if len(x_shape) != 3:
        raise Unsupported("UNIDIRECTIONAL_SEQUENCE_LSTM: input must be rank 3")
    T, B = (x_shape[0], x_shape[1]) if a.time_major else (x_shape[1], x_shape[0])
    n_in = x_shape[2]
    n_cell = int(req.inputs[2].shape[0])
    n_out = int(req.inputs[6].shape[1])
    if n_out != n_cell or tuple(req.inputs[18].shape) != (B, n_out) or tuple(req.inputs[19].shape) != (B, n_cell):
        raise Unsupported("UNIDIRECTIONAL_SEQUENCE_LSTM: state shapes (no projection: n_output == n_cell)")
    if tuple(req.out_shape) != ((T, B, n_out) if a.time_major else (B, T, n_out)):
        raise Unsupported(f"UNIDIRECTIONAL_SEQUENCE_LSTM: output shape {req.out_shape}")
    packed = _packed_float(req, a, cifg, T, B, n_in, n_cell)
    if packed is not None:
        return packed
    names = {0: "x", 1: "wxi", 2: "wxf", 3: "wxc", 4: "wxo", 5: "whi", 6: "whf", 7: "whc", 8: "who",
             12: "bi", 13: "bf", 14: "bc", 15: "bo", 18: "hs", 19: "cs"}
    args = [(Arg("input", i), names[i]) for i in used] + [(Arg("output", 0), "o0")]
    arglist, params = emit.signature(args)
    gates = ["f", "c", "o"] if cifg else ["i", "f", "c", "o"]
    x_at = "x[t, b, k]" if a.time_major else "x[b, t, k]"
    o_at = "o0[t, b, n]" if a.time_major else "o0[b, t, n]"
    act = _ACT[a.activation]
    clip = float(a.cell_clip)
    body = [f"def entry({params}):",
            f"    h = np.empty(({B}, {n_cell}), np.float32)",
            f"    c = np.empty(({B}, {n_cell}), np.float32)",
            f"    pre = np.empty(({len(gates)}, {n_cell}), np.float32)",
            f"    for b in range({B}):",
            f"        for n in range({n_cell}):",
            "            h[b, n] = hs[b, n]",
            "            c[b, n] = cs[b, n]",
            f"    for t in range({T}):",
            f"        for b in range({B}):"]
    # gate pre-activations: bias, + x . W_x, + h . W_h (LiteRT's accumulation order)
    for gi, g in enumerate(gates):
        body += [f"            for n in range({n_cell}):",
                 f"                acc = b{g}[n]",
                 f"                for k in range({n_in}):",
                 f"                    acc += {x_at} * wx{g}[n, k]",
                 f"                for k in range({n_cell}):",
                 f"                    acc += h[b, k] * wh{g}[n, k]",
                 f"                pre[{gi}, n] = acc"]
    gi = {g: k for k, g in enumerate(gates)}
    one = "np.float32(1.0)"
    body += [f"            for n in range({n_cell}):",
             f"                f = {one} / ({one} + np.exp(-pre[{gi['f']}, n]))",
             (f"                i = {one} - f" if cifg else
              f"                i = {one} / ({one} + np.exp(-pre[{gi['i']}, n]))"),
             "                g = " + act.format(f"pre[{gi['c']}, n]"),
             "                cn = f * c[b, n] + i * g"]
    if clip > 0:
        body += [f"                cn = min(max(cn, np.float32({-clip!r})), np.float32({clip!r}))"]
    body += ["                c[b, n] = cn",
             f"                o = {one} / ({one} + np.exp(-pre[{gi['o']}, n]))",
             f"                pre[{gi['o']}, n] = o * {act.format('cn')}",
             f"            for n in range({n_cell}):",
             f"                h[b, n] = pre[{gi['o']}, n]",
             f"                {o_at} = h[b, n]"]
    body += [f"    for b in range({B}):",
             f"        for n in range({n_cell}):",
             "            hs[b, n] = h[b, n]",
             "            cs[b, n] = c[b, n]"]
    # 'arcp'-free: 1 / (1 + exp) must divide, as the reference does
    return KernelSource(emit.module("\n".join(body) + "\n", False, arcp=False), "entry", arglist, False)


def _packed_float(req: KernelRequest, a, cifg: bool, T: int, B: int, n_in: int, n_cell: int) -> KernelSource | None:
    """The float LSTM with its weights packed at plan time (None when they are not constant):
    the gates of all cells as one row of G * n_cell pre-activations, each input and recurrent
    value added as an axpy over that row (W_x and W_h transposed to [k, G * n_cell]: unit-stride,
    vectorized), the gate functions on the vectorizable _exp32 / _tanh32. 3-4x the per-cell
    dot products of `generate_lstm` on the suite's text models. Values, not code: a retrained
    model reuses the kernel."""
    gates = ["f", "c", "o"] if cifg else ["i", "f", "c", "o"]
    idx = {"i": (1, 5, 12), "f": (2, 6, 13), "c": (3, 7, 14), "o": (4, 8, 15)}
    if any(req.inputs[j].value is None for g in gates for j in idx[g]):
        return None
    G = len(gates)
    GN = G * n_cell
    wx = np.concatenate([np.asarray(req.inputs[idx[g][0]].value, np.float32) for g in gates], axis=0)  # [GN, n_in]
    wh = np.concatenate([np.asarray(req.inputs[idx[g][1]].value, np.float32) for g in gates], axis=0)  # [GN, n_cell]
    bias = np.concatenate([np.asarray(req.inputs[idx[g][2]].value, np.float32).reshape(n_cell) for g in gates])
    WX = np.ascontiguousarray(wx.T)
    WH = np.ascontiguousarray(wh.T)
    off = {g: k * n_cell for k, g in enumerate(gates)}
    x_at = "x[t, b, k]" if a.time_major else "x[b, t, k]"
    o_row = "o0[t, b]" if a.time_major else "o0[b, t]"
    act = {"TANH": "_tanh32({})", "RELU": "max({}, np.float32(0.0))",
           "RELU6": "min(max({}, np.float32(0.0)), np.float32(6.0))",
           "RELU_N1_TO_1": "min(max({}, np.float32(-1.0)), np.float32(1.0))"}[a.activation]
    one = "np.float32(1.0)"
    clip = float(a.cell_clip)
    body = [
        "def entry(x, WX, WH, BIAS, hs, cs, o0):",
        f"    pre = np.empty({GN}, np.float32)",
        f"    for t in range({T}):",
        f"        for b in range({B}):",
        f"            for j in range({GN}):",
        "                pre[j] = BIAS[j]",
        f"            for k in range({n_in}):",
        f"                xv = {x_at}",
        "                w = WX[k]",
        f"                for j in range({GN}):",
        "                    pre[j] += xv * w[j]",
        "            h = hs[b]",
        f"            for k in range({n_cell}):",
        "                hv = h[k]",
        "                w = WH[k]",
        f"                for j in range({GN}):",
        "                    pre[j] += hv * w[j]",
    ]
    body += [f"            p{g} = pre[{off[g]}:{off[g] + n_cell}]" for g in gates]
    body += ["            c = cs[b]",
             f"            out = {o_row}",
             f"            for n in range({n_cell}):",
             f"                f = {one} / ({one} + _exp32(-pf[n]))",
             (f"                i = {one} - f" if cifg else f"                i = {one} / ({one} + _exp32(-pi[n]))"),
             "                g = " + act.format("pc[n]"),
             "                cn = f * c[n] + i * g"]
    if clip > 0:
        body += [f"                cn = min(max(cn, np.float32({-clip!r})), np.float32({clip!r}))"]
    body += ["                c[n] = cn",
             f"                og = {one} / ({one} + _exp32(-po[n]))",
             f"                po[n] = og * {act.format('cn')}",
             f"            for n in range({n_cell}):",
             "                h[n] = po[n]",
             "                out[n] = po[n]"]
    args = [Arg("input", 0), Arg("const", value=WX), Arg("const", value=WH), Arg("const", value=bias),
            Arg("input", 18), Arg("input", 19), Arg("output", 0)]
    return KernelSource(emit.module("\n".join(body) + "\n", False, arcp=False), "entry", args, False)


# ---- hybrid (int8 weights, float32 activations) ---------------------------------------------------

#: no fast-math: the hybrid steps round where ops/hybrid_lstm.py rounds (no FMA contraction)
_PRECISE = "@numba.njit(cache=True, nogil=True, fastmath=False, error_model='numpy', boundscheck=False)"


def _int8_const(req: KernelRequest, i: int, what: str) -> np.ndarray:
    t = _input(req, i)
    if t is None or t.value is None:
        raise Unsupported(f"hybrid UNIDIRECTIONAL_SEQUENCE_LSTM: {what} (input {i}) must be constant")
    w = np.asarray(t.value)
    w = w.view(np.int8) if w.dtype == np.uint8 else w
    head = w.shape[1] & ~15
    if head and np.any(w[:, :head] == -128):
        # LiteRT's SSE dot product mis-multiplies these (ops/qhybrid.py `_minus128_error`)
        raise Unsupported("hybrid UNIDIRECTIONAL_SEQUENCE_LSTM: -128 weights (LiteRT's SSE dot product "
                          "mis-multiplies them; runs on reference)")
    return np.ascontiguousarray(w, dtype=np.int8)


def generate_hybrid_lstm(req: KernelRequest, a) -> KernelSource:
    """ops/hybrid_lstm.py's step as one kernel over the whole sequence: per step, the input rows
    and the state rows are quantized with hybridq.hq_row (skipped, with their products, when the
    block is all zero), the gate pre-activations are bias + float32(integer dot) * float32(sf * sw)
    for the input and then the recurrent weights, then the float gate math. Batch-major input
    runs each batch row as its own sequence (LiteRT's order: the zero checks are per row).

    The integer dot products run as axpys over the four gates' output rows at once (weights
    transposed to [k, 4 * n_cell], int8 so they stay in L1): float accumulators that hold exact
    integers (float32 while sum |w| * max|q| < 2**24, else float64), so no reduction is
    reassociated and the module needs no fast-math. The gate sigmoid and tanh are LiteRT's
    (Eigen's formulas, hybridq.eigen_logistic / eigen_tanh), so the kernel is bit-exact."""
    f = a.base
    for i, what in _UNSUPPORTED_INPUTS.items():
        if _input(req, i) is not None:
            raise Unsupported(f"hybrid UNIDIRECTIONAL_SEQUENCE_LSTM with {what} runs on reference")
    if f.diagonal_recurrent or f.activation not in _ACT:
        raise Unsupported(f"hybrid UNIDIRECTIONAL_SEQUENCE_LSTM with activation {f.activation} runs on reference")
    if req.extras or len(req.outputs) != 1 or not (isinstance(req.outputs[0].expr, E.Var)
                                                   and req.outputs[0].expr.index == 0):
        raise Unsupported("UNIDIRECTIONAL_SEQUENCE_LSTM: fused epilogues are not compiled")
    cifg = _input(req, 1) is None
    gates = [1, 2, 3] if cifg else [0, 1, 2, 3]
    for i in [0, 18, 19] + [12 + g for g in gates]:
        t = _input(req, i)
        if t is None or np.dtype(t.dtype) != emit.F32:
            raise Unsupported(f"hybrid UNIDIRECTIONAL_SEQUENCE_LSTM: input {i} must be float32")
    x_shape = tuple(int(d) for d in req.inputs[0].shape)
    if len(x_shape) != 3:
        raise Unsupported("UNIDIRECTIONAL_SEQUENCE_LSTM: input must be rank 3")
    T, B = (x_shape[0], x_shape[1]) if f.time_major else (x_shape[1], x_shape[0])
    n_in = x_shape[2]
    wx = np.concatenate([_int8_const(req, 1 + g, "input weights") for g in gates])  # [G * n_cell, n_in]
    wh = np.concatenate([_int8_const(req, 5 + g, "recurrent weights") for g in gates])
    G = len(gates)
    n_cell = wx.shape[0] // G
    if wh.shape != (G * n_cell, n_cell) or wx.shape[1] != n_in or \
            tuple(req.inputs[18].shape) != (B, n_cell) or tuple(req.inputs[19].shape) != (B, n_cell):
        raise Unsupported("hybrid UNIDIRECTIONAL_SEQUENCE_LSTM: state / weight shapes")
    if tuple(req.out_shape) != ((T, B, n_cell) if f.time_major else (B, T, n_cell)):
        raise Unsupported(f"UNIDIRECTIONAL_SEQUENCE_LSTM: output shape {req.out_shape}")
    if T * B * n_in == 0 or n_cell == 0:
        raise Unsupported("hybrid UNIDIRECTIONAL_SEQUENCE_LSTM: empty tensors run on reference")
    qmax = 255 if a.asymmetric else 127
    worst = max(float(np.abs(w.astype(np.int64)).sum(axis=1).max(initial=0)) for w in (wx, wh)) * qmax
    acc = "float32" if worst < float(1 << 24) else "float64"
    # which gate values LiteRT's Eigen loop computes with its scalar logistic (ops/hybrid_lstm.py)
    groups, rows = (1, B) if f.time_major else (B, 1)
    sm = np.zeros((G, B, n_cell), np.uint8)
    for b0 in range(0, B, rows):
        for g, m in gate_scalar_masks(cifg, n_cell, B, rows, b0).items():
            sm[gates.index(g), b0:b0 + rows] = m.reshape(rows, n_cell)
    swx = np.asarray([a.w_scales[1 + g] for g in gates], np.float32)
    swh = np.asarray([a.w_scales[5 + g] for g in gates], np.float32)
    names = {0: "x", 12: "bi", 13: "bf", 14: "bc", 15: "bo", 18: "hs", 19: "cs"}
    used = [0] + [12 + g for g in gates] + [18, 19]
    args = [(Arg("input", i), names[i]) for i in used] + [(Arg("output", 0), "o0")]
    args += [(Arg("const", value=np.ascontiguousarray(v)), n)
             for v, n in ((wx.T, "WXT"), (wh.T, "WHT"), (swx, "SWX"), (swh, "SWH"), (sm, "SM"))]
    arglist, params = emit.signature(args)
    gn = ["i", "f", "c", "o"]
    gi = {gn[g]: k for k, g in enumerate(gates)}
    GN = G * n_cell
    xo = f"(t * {B} + b) * {n_in}" if f.time_major else f"(b * {T} + t) * {n_in}"
    o_at = "o0[t, b, n]" if f.time_major else "o0[b, t, n]"
    asym = bool(a.asymmetric)
    act = "eigen_tanh({})" if f.activation == "TANH" else _ACT[f.activation]
    clip = float(f.cell_clip)
    one = "np.float32(1.0)"
    body = [f"def entry({params}):",
            f"    h = np.empty(({B}, {n_cell}), np.float32)",
            f"    c = np.empty(({B}, {n_cell}), np.float32)",
            f"    for b in range({B}):",
            f"        for n in range({n_cell}):",
            "            h[b, n] = hs[b, n]",
            "            c[b, n] = cs[b, n]",
            f"    xf = x.reshape({T * B * n_in})",
            f"    XQ = np.empty({T * B * n_in}, np.float32)",
            f"    hf = np.empty({B * n_cell}, np.float32)",
            f"    HQ = np.empty({B * n_cell}, np.float32)",
            f"    SX = np.ones({B}, np.float32)",
            f"    SH = np.ones({B}, np.float32)",
            f"    DX = np.empty({GN}, np.{acc})",
            f"    DH = np.empty({GN}, np.{acc})",
            f"    pre = np.empty(({G}, {n_cell}), np.float32)",
            f"    sg = np.empty(({G}, {n_cell}), np.float32)",
            f"    for grp in range({groups}):",
            f"        r0 = grp * {rows}",
            f"        for t in range({T}):",
            "            xnz = False",
            f"            for b in range(r0, r0 + {rows}):",
            f"                for k in range({n_in}):",
            f"                    if xf[{xo} + k] != np.float32(0.0):",
            "                        xnz = True",
            "            if xnz:",
            f"                for b in range(r0, r0 + {rows}):",
            f"                    SX[b] = hq_row(xf, {xo}, {n_in}, XQ, {asym})",
            "            hnz = False",
            f"            for b in range(r0, r0 + {rows}):",
            f"                for k in range({n_cell}):",
            f"                    hf[b * {n_cell} + k] = h[b, k]",
            "                    if h[b, k] != np.float32(0.0):",
            "                        hnz = True",
            "            if hnz:",
            f"                for b in range(r0, r0 + {rows}):",
            f"                    SH[b] = hq_row(hf, b * {n_cell}, {n_cell}, HQ, {asym})",
            f"            for b in range(r0, r0 + {rows}):",
            "                if xnz:",
            f"                    for r in range({GN}):",
            f"                        DX[r] = np.{acc}(0.0)",
            f"                    for k in range({n_in}):",
            f"                        qv = np.{acc}(XQ[{xo} + k])",
            f"                        for r in range({GN}):",
            f"                            DX[r] += qv * np.{acc}(WXT[k, r])",
            "                if hnz:",
            f"                    for r in range({GN}):",
            f"                        DH[r] = np.{acc}(0.0)",
            f"                    for k in range({n_cell}):",
            f"                        qv = np.{acc}(HQ[b * {n_cell} + k])",
            f"                        for r in range({GN}):",
            f"                            DH[r] += qv * np.{acc}(WHT[k, r])"]
    for k in range(G):
        body += [f"                sx = np.float32(SX[b] * SWX[{k}])",
                 f"                sh = np.float32(SH[b] * SWH[{k}])",
                 f"                for n in range({n_cell}):",
                 f"                    acc = b{gn[gates[k]]}[n]",
                 "                    if xnz:",
                 f"                        acc = np.float32(acc + np.float32(np.float32(DX[{k * n_cell} + n]) * sx))",
                 "                    if hnz:",
                 f"                        acc = np.float32(acc + np.float32(np.float32(DH[{k * n_cell} + n]) * sh))",
                 f"                    pre[{k}, n] = acc"]
    sig_gates = [gi[g] for g in (["f", "o"] if cifg else ["i", "f", "o"])]
    # the sigmoids: Eigen's packet logistic over the row (vectorized), then its scalar one where
    # LiteRT's loop runs scalars (SM)
    body += [f"                for n in range({n_cell}):"]
    body += [f"                    sg[{k}, n] = eigen_logistic(pre[{k}, n])" for k in sig_gates]
    body += [f"                for n in range({n_cell}):"]
    for k in sig_gates:
        body += [f"                    if SM[{k}, b, n]:",
                 f"                        sg[{k}, n] = eigen_logistic_scalar(pre[{k}, n])"]
    body += [f"                for n in range({n_cell}):",
             f"                    f = sg[{gi['f']}, n]",
             (f"                    i = np.float32({one} - f)" if cifg else f"                    i = sg[{gi['i']}, n]"),
             "                    g = np.float32(" + act.format(f"pre[{gi['c']}, n]") + ")",
             "                    cn = np.float32(np.float32(f * c[b, n]) + np.float32(i * g))"]
    if clip > 0:
        body += [f"                    cn = min(max(cn, np.float32({-clip!r})), np.float32({clip!r}))"]
    body += ["                    c[b, n] = cn",
             f"                    hn = np.float32(sg[{gi['o']}, n] * np.float32({act.format('cn')}))",
             "                    h[b, n] = hn",
             f"                    {o_at} = hn"]
    body += [f"    for b in range({B}):",
             f"        for n in range({n_cell}):",
             "            hs[b, n] = h[b, n]",
             "            cs[b, n] = c[b, n]"]
    src = (printer.PRELUDE + emit.helper_import(host.HYBRIDQ, "hq_row", "eigen_logistic", "eigen_logistic_scalar",
                                                "eigen_tanh") + "\n\n" + _PRECISE
           + "\n" + "\n".join(body) + "\n")
    return KernelSource(src, "entry", arglist, False)
