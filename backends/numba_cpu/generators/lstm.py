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
Weights are run-time arguments (the op's input buffers), not baked into the code: a retrained
model reuses the compiled kernel.
"""

from __future__ import annotations

import numpy as np

from tflite_jit.backends.numba_cpu import emit
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops import expr as E

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
