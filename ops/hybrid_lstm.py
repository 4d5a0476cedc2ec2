"""Dynamic-range ("hybrid") UNIDIRECTIONAL_SEQUENCE_LSTM and BIDIRECTIONAL_SEQUENCE_LSTM: float32
input, states and biases, int8 weight matrices (what TF's converter emits for a Keras LSTM with
Optimize.DEFAULT).

LiteRT runs such a node through lstm_eval's EvalHybrid (its Prepare calls a node hybrid when the
input is float32 and input_to_output_weights int8 / uint8). Per time step (LstmStepHybrid):

* the step's input [n_batch, n_input] (and aux input), and the previous output state are each
  quantized per batch row (ops/qhybrid.py `quantize_rows`: symmetric, or asymmetric with the
  weights' row sums when the option `asymmetric_quantize_inputs` is set, as TF 2.21's converter
  sets it) -- once per step, shared by the four gates; a block whose values are ALL zero
  (the whole [n_batch, n] block, not a row) is not quantized and its products are skipped;
* each gate starts from its bias (zeros with layer norm), then += float32(int32 dot product) *
  float32(row scale * weight scale) for the input weights, the aux weights, then the recurrent
  weights (ops/qhybrid.py `quantized_matvec`, which also reproduces the SSE dot product's -128
  quirk);
* peephole weights are int8 too, dequantized (float32(q) * scale) and applied in float;
* the rest is the float LSTM's gate math (ops/sequence.py `lstm_cell`: layer norm, sigmoid,
  the cell activation, cell clip, LiteRT's activation-NONE quirk) with LiteRT's own gate
  functions (Eigen's logistic and tanh, and which elements get Eigen's scalar logistic:
  `gate_scalar_masks`) and layer norm, so that the re-quantized state matches to the bit;
* with projection weights (int8), o * act(c) is quantized per row (skipped when all zero) and
  multiplied into the projection bias (or zeros), then clipped.

Batch-major input runs each batch row as its own sequence (LiteRT's loop order), so the zero
checks above are per row there. BIDIRECTIONAL_SEQUENCE_LSTM runs the forward and the
backward direction so (LiteRT's bidirectional kernel calls the same EvalHybrid). Weights are
per-tensor quantized (LiteRT reads one scale); per-channel weights and diagonal recurrent
weights are refused with a message. The ops stay ONE definition each (ops/base.py
add_quantized): float nodes run ops/sequence.py as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops import base, qhybrid, sequence
from tflite_jit.ops.base import InferCtx, OpError, ShapeDtype
from tflite_jit.ops.common import F32, I8, U8
from tflite_jit.ops.quant import quant_params

OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"
#: inputs a hybrid node reads as int8: the 8 weight matrices, 3 peepholes, the projection
INT8_INPUTS = {1: "input_to_input_weights", 2: "input_to_forget_weights", 3: "input_to_cell_weights",
               4: "input_to_output_weights", 5: "recurrent_to_input_weights",
               6: "recurrent_to_forget_weights", 7: "recurrent_to_cell_weights",
               8: "recurrent_to_output_weights", 9: "cell_to_input_weights", 10: "cell_to_forget_weights",
               11: "cell_to_output_weights", 16: "projection_weights"}
BIOP = "BIDIRECTIONAL_SEQUENCE_LSTM"
#: the same for BIDIRECTIONAL_SEQUENCE_LSTM: both directions' and the aux weights
BI_INT8_INPUTS = {**{i: f"fw_{n}" for i, n in INT8_INPUTS.items()},
                  **{i + 17: f"bw_{n}" for i, n in INT8_INPUTS.items()},
                  **{40 + k: f"fw_aux_input_to_{g}_weights" for k, g in enumerate(("input", "forget", "cell", "output"))},
                  **{44 + k: f"bw_aux_input_to_{g}_weights" for k, g in enumerate(("input", "forget", "cell", "output"))}}


@dataclass(frozen=True)
class LstmHybridAttrs(qhybrid.HybridAttrs):
    """`w_scales`: the scale of every input by input index (0.0 where it has none: LiteRT then
    reads scale 0, so that product vanishes); `w_types`: each input's dtype name ('' when
    omitted); `per_channel`: the inputs quantized with more than one scale."""

    w_types: tuple[str, ...] = ()
    per_channel: tuple[int, ...] = ()

    @property
    def state_inputs(self) -> tuple[int, ...]:
        return self.base.state_inputs


def _bind(fa: Any, ins: list, outs: list) -> LstmHybridAttrs | None:
    """Hybrid when the input is float32 and (forward) input_to_output_weights int8 / uint8: the
    test LiteRT's Prepare makes (IsHybridOp)."""
    if len(ins) < 20 or ins[0] is None or ins[4] is None or not outs:
        return None
    if np.dtype(ins[0].dtype) != F32 or np.dtype(ins[4].dtype) not in (I8, U8):
        return None
    scales, types, multi = [], [], []
    for i, t in enumerate(ins):
        q = None if t is None else quant_params(t)
        scales.append(0.0 if q is None else float(q[0][0]))
        types.append("" if t is None else np.dtype(t.dtype).name)
        if q is not None and len(q[0]) > 1:
            multi.append(i)
    return LstmHybridAttrs(fa, tuple(scales), bool(fa.asymmetric_quantize_inputs), types[4], "float32", 0,
                           True, tuple(types), tuple(multi))


def _infer(prev: base.OpDef, int8_inputs: dict[int, str]) -> Callable[[InferCtx], list[ShapeDtype]]:
    def infer(ctx: InferCtx) -> list[ShapeDtype]:
        a: LstmHybridAttrs = ctx.attrs
        op = ctx.op_name
        if a.base.diagonal_recurrent:
            raise OpError(f"{op}: a hybrid node (int8 weights) with diagonal recurrent weights is not "
                          "supported; store the weights as float32")
        dts = list(ctx.dtypes)
        for i, what in int8_inputs.items():
            if i >= len(dts) or dts[i] is None or ctx.shapes[i] is None:
                continue
            dt = np.dtype(dts[i])
            if dt not in (I8, U8):
                raise OpError(f"{op}: {what} '{ctx.name(i)}' (input {i}) is {dt.name}, but "
                              f"input_to_output_weights '{ctx.name(4)}' is {a.w_dtype}: LiteRT's hybrid "
                              "LSTM (float32 input) reads every weight matrix, peephole and projection "
                              "as int8; quantize this one to int8 too (or store all weights as float32)")
            if i in a.per_channel:
                raise OpError(f"{op}: {what} '{ctx.name(i)}' (input {i}) is quantized per channel; "
                              "LiteRT's hybrid LSTM reads one scale per weight tensor: quantize it "
                              "per tensor")
            s = a.w_scales[i]
            if not np.isfinite(s) or s < 0:
                raise OpError(f"{op}: {what} '{ctx.name(i)}' (input {i}) has scale {s}; weight "
                              "scales must be finite and >= 0")
            dts[i] = np.dtype(F32)
        # biases, states and layer-norm coefficients stay float32: the float shape rule checks them
        return prev.infer(InferCtx(op, a.base, ctx.shapes, dts, ctx.values, ctx.tensor_names))
    return infer


def _as_int8(v: np.ndarray | None) -> np.ndarray | None:
    """LiteRT reads the weights through an int8 pointer (uint8 bytes >= 128 become negative)."""
    if v is None:
        return None
    v = np.asarray(v)
    return v.view(np.int8) if v.dtype == np.uint8 else v


def _accumulate(pre: dict[int, np.ndarray], v: np.ndarray, ws: list, scales: list[float],
                asymmetric: bool) -> None:
    """pre[g] += the hybrid product of v with ws[g], for every gate; skipped when v is all zero."""
    if not np.any(v != 0):
        return
    q, sf, zp = qhybrid.quantize_rows(v, asymmetric)
    for g in pre:
        pre[g] = (pre[g] + qhybrid.quantized_matvec(q, sf, zp, ws[g], scales[g], asymmetric)).astype(F32)


def gate_scalar_masks(cifg: bool, n_cell: int, n_batch: int, rows: int, row0: int) -> dict[int, np.ndarray]:
    """Per sigmoid gate (0 input, 1 forget, 3 output), which of this call's [rows, n_cell] gate
    values Eigen evaluates with its scalar logistic. EvalHybrid lays the gates out in one
    scratch buffer (CIFG: cell, forget, output; else input, cell, forget, output), each
    n_batch * n_cell floats; a batch-major row works on its slice, at row0 * n_cell."""
    slots = {1: 1, 3: 2} if cifg else {0: 0, 1: 2, 3: 3}
    return {g: sequence.eigen_scalar_mask(k * n_batch * n_cell + row0 * n_cell, rows * n_cell)
            for g, k in slots.items()}


def hybrid_direction(xs: np.ndarray, w: list, sc: Sequence[float], ln: list, aux: np.ndarray | None,
                     aux_w: list, aux_sc: Sequence[float], f: sequence.LstmAttrs, asymmetric: bool,
                     h: np.ndarray, c: np.ndarray, reverse: bool = False,
                     masks: dict[int, np.ndarray] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LstmStepHybrid over a time-major sequence xs [T, B, I] (all B rows in each step). w: the 17
    weights of one direction (the unidirectional op's inputs 1-17, 0-based here) with their
    scales `sc`; ln: 4 layer-norm coefficients or Nones; aux [T, B, n_aux] with its 4 weights
    and scales (or None); masks: gate_scalar_masks for these rows. Returns (outputs
    [T, B, n_output] in time order, h, c)."""
    w_x = [_as_int8(v) for v in w[0:4]]
    w_h = [_as_int8(v) for v in w[4:8]]
    peep = [None if w[k] is None else (_as_int8(w[k]).astype(F32) * np.float32(sc[k])).astype(F32)
            for k in (8, 9, 10)]
    bias = [sequence.as_f32(v) for v in w[11:15]]
    proj, proj_b = _as_int8(w[15]), sequence.as_f32(w[16])
    ln = [sequence.as_f32(v) for v in ln]
    aux_w = [_as_int8(v) for v in aux_w]
    use_ln = ln[1] is not None
    gates = range(1, 4) if w_x[0] is None else range(4)
    n_batch, n_cell = c.shape
    n_time = xs.shape[0]
    if masks is None:
        masks = gate_scalar_masks(w_x[0] is None, n_cell, n_batch, n_batch, 0)
    outs = []
    for step in range(n_time):
        t = n_time - 1 - step if reverse else step
        pre = {g: np.zeros((n_batch, n_cell), F32) if use_ln
               else np.broadcast_to(bias[g], (n_batch, n_cell)).astype(F32) for g in gates}
        _accumulate(pre, np.asarray(xs[t], F32), w_x, list(sc[0:4]), asymmetric)
        if aux is not None:
            _accumulate(pre, np.asarray(aux[t], F32), aux_w, list(aux_sc), asymmetric)
        _accumulate(pre, h, w_h, list(sc[4:8]), asymmetric)
        out, c = sequence.lstm_cell(pre, c, peep, ln, bias, f, True, eigen=masks)
        if proj is not None:
            p = {0: np.zeros((n_batch, proj.shape[0]), F32) if proj_b is None
                 else np.broadcast_to(proj_b, (n_batch, proj.shape[0])).astype(F32)}
            _accumulate(p, out, [proj], [sc[15]], asymmetric)
            out = p[0]
            if f.proj_clip > 0:
                out = np.clip(out, np.float32(-f.proj_clip), np.float32(f.proj_clip)).astype(F32)
        h = out
        outs.append(h)
    if reverse:
        outs.reverse()
    y = np.stack(outs) if outs else np.zeros((0,) + h.shape, F32)
    return y, h, c


def run_direction(xs: np.ndarray, w: list, sc: Sequence[float], ln: list, aux: np.ndarray | None,
                  aux_w: list, aux_sc: Sequence[float], f: sequence.LstmAttrs, asymmetric: bool,
                  state: tuple[Any, Any], reverse: bool = False) -> np.ndarray:
    """One direction from its state inputs (updated in place): time-major runs all batch rows in
    each step; batch-major runs each batch row as its own sequence, as LiteRT does (so its
    all-zero checks are per row). Returns the outputs [T, B, n_output]."""
    n_batch = xs.shape[1]
    h0 = np.asarray(state[0], F32).reshape(n_batch, -1)
    c0 = np.asarray(state[1], F32).reshape(n_batch, -1)
    if f.time_major:
        y, h, c = hybrid_direction(xs, w, sc, ln, aux, aux_w, aux_sc, f, asymmetric, h0.copy(), c0.copy(),
                                   reverse)
    else:
        cifg = w[0] is None
        n_cell = c0.shape[1]
        rows = [hybrid_direction(xs[:, b:b + 1], w, sc, ln, None if aux is None else aux[:, b:b + 1],
                                 aux_w, aux_sc, f, asymmetric, h0[b:b + 1].copy(), c0[b:b + 1].copy(), reverse,
                                 gate_scalar_masks(cifg, n_cell, n_batch, 1, b))
                for b in range(n_batch)]
        y = np.concatenate([r[0] for r in rows], axis=1) if rows else np.zeros(xs.shape[:2] + (h0.shape[1],), F32)
        h = np.concatenate([r[1] for r in rows]) if rows else h0
        c = np.concatenate([r[2] for r in rows]) if rows else c0
    sequence.write_state(state[0], h.reshape(np.shape(state[0])))
    sequence.write_state(state[1], c.reshape(np.shape(state[1])))
    return y


def _reference(inputs: Sequence[np.ndarray | None], a: LstmHybridAttrs) -> list[np.ndarray]:
    f: sequence.LstmAttrs = a.base
    ins = list(inputs) + [None] * (24 - len(inputs))
    xs = sequence.to_time_major(ins[0], f.time_major)
    y = run_direction(xs, ins[1:18], a.w_scales[1:18], ins[20:24], None, [None] * 4, [0.0] * 4, f,
                      a.asymmetric, (ins[18], ins[19]))
    return [sequence.from_time_major(y, f.time_major)]


def _bireference(inputs: Sequence[np.ndarray | None], a: LstmHybridAttrs) -> list[np.ndarray]:
    """BIDIRECTIONAL_SEQUENCE_LSTM (hybrid): the two directions as above; with an aux input and
    aux weights both read it (quantized like the input), without aux weights the backward
    direction reads the aux input instead of the input (LiteRT's non-stacking mode)."""
    f: sequence.LstmAttrs = a.base
    ins = list(inputs) + [None] * (48 - len(inputs))
    sc = a.w_scales
    xs = sequence.to_time_major(ins[0], f.time_major)
    aux = None if ins[39] is None else sequence.to_time_major(ins[39], f.time_major)
    bw_x = xs
    if aux is not None and ins[41] is None:
        bw_x, aux = aux, None
    none4 = [None] * 4
    fw = run_direction(xs, ins[1:18], sc[1:18], none4, aux, ins[40:44], sc[40:44], f, a.asymmetric,
                       (ins[35], ins[36]))
    bw = run_direction(bw_x, ins[18:35], sc[18:35], none4, aux, ins[44:48], sc[44:48], f, a.asymmetric,
                       (ins[37], ins[38]), reverse=True)
    if f.merge_outputs:
        return [sequence.from_time_major(np.concatenate([fw, bw], axis=-1), f.time_major)]
    return [sequence.from_time_major(fw, f.time_major), sequence.from_time_major(bw, f.time_major)]


base.add_quantized(OP, base.QuantizedKernel(bind=_bind, reference=_reference,
                                             infer=_infer(base.registered(OP), INT8_INPUTS)))
base.add_quantized(BIOP, base.QuantizedKernel(bind=_bind, reference=_bireference,
                                               infer=_infer(base.registered(BIOP), BI_INT8_INPUTS)))
