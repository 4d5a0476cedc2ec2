"""Single-step and bidirectional recurrent ops (float32): LSTM, RNN, BIDIRECTIONAL_SEQUENCE_RNN.

State follows the convention of ops/sequence.py: the recurrent state lives in variable input
tensors, `attrs.state_inputs` names them and `reference` writes the new state into them in place.

LSTM, kernel_type FULL (20 or 24 inputs, one output [batch, n_output]): the same input layout as
UNIDIRECTIONAL_SEQUENCE_LSTM (see ops/sequence.py) with a 2-D input [batch, n_input], one time
step; state in inputs 18 (output_state) and 19 (cell_state).
LSTM, kernel_type BASIC (5 inputs, 4 outputs): 0 input [batch, n_input], 1 prev_activation
[batch, n_out], 2 weights [4 * n_out, n_input + n_out], 3 bias [4 * n_out], 4 prev_state
[batch, n_out]; outputs activation, state, concat [batch, n_input + n_out] and the gate
pre-activations [batch, 4 * n_out]. Stateless (state is passed in and out explicitly); gate
order input, cell, forget, output.
RNN (5 inputs): 0 input [batch, n_input], 1 weights [units, n_input], 2 recurrent_weights
[units, units], 3 bias [units], 4 hidden_state [batch, units] (state); output [batch, units].
BIDIRECTIONAL_SEQUENCE_RNN (12 inputs): 0 input (3-D, time_major or batch-major); 1-4 forward
weights, recurrent weights, bias, hidden state; 5-8 the same backward; 9 aux_input (optional);
10/11 forward/backward aux weights [units, n_aux] (optional). With an aux input but no aux
weights the backward direction reads the aux input instead of the input (TF's stacking without
cross links). Outputs: forward and backward sequences, or one concatenation with merge_outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops.base import InferCtx, OpError, ShapeDtype
from tflite_jit.ops.common import F32, activation_name, apply_activation, define, shape_of
from tflite_jit.ops.sequence import (
    LSTM_ACTS,
    LstmAttrs,
    as_f32,
    check_aux_input,
    check_lstm_direction,
    expect_f32,
    from_time_major,
    lstm_direction,
    options_with_defaults,
    recurrent_cost,
    seq_dims,
    sigmoid,
    to_time_major,
    write_state,
)


def _input_2d(ctx: InferCtx) -> tuple[int, int]:
    x = shape_of(ctx, 0)
    if x is None or len(x) != 2:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' must be 2-D [batch, input_size], got "
                      f"{None if x is None else list(x)}")
    if np.dtype(ctx.dtypes[0]) != F32:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' must be float32, got {np.dtype(ctx.dtypes[0]).name}")
    return x[0], x[1]


# ---- LSTM ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FullLstmAttrs:
    activation: str
    cell_clip: float
    proj_clip: float
    basic: bool
    state_inputs: tuple[int, ...] = (18, 19)


def _parse_lstm(o: dict[str, Any]) -> FullLstmAttrs:
    o = options_with_defaults("LSTMOptions", o)
    kt = int(o["kernel_type"])
    if kt not in (0, 1):
        raise OpError(f"LSTM: unknown kernel_type {kt} (0 FULL, 1 BASIC)")
    return FullLstmAttrs(activation=activation_name(o["fused_activation_function"]),
                         cell_clip=float(o["cell_clip"]), proj_clip=float(o["proj_clip"]), basic=kt == 1,
                         state_inputs=() if kt == 1 else (18, 19))


def _basic_lstm_infer(ctx: InferCtx) -> list[ShapeDtype]:
    a: FullLstmAttrs = ctx.attrs
    if len(ctx.shapes) != 5:
        raise OpError(f"{ctx.op_name}: the BASIC kernel takes 5 inputs (input, prev_activation, weights, "
                      f"bias, prev_state), got {len(ctx.shapes)}")
    if a.activation != "TANH" or a.cell_clip != 0 or a.proj_clip != 0:
        raise OpError(f"{ctx.op_name}: the BASIC kernel needs fused activation TANH and no cell/projection "
                      f"clipping (got {a.activation}, cell_clip {a.cell_clip}, proj_clip {a.proj_clip})")
    n_batch, n_input = _input_2d(ctx)
    w = shape_of(ctx, 2)
    if w is None or len(w) != 2 or w[0] % 4:
        raise OpError(f"{ctx.op_name}: weights (input 2) must be 2-D [4 * output_depth, input_depth + "
                      f"output_depth], got {None if w is None else list(w)}")
    n_out = w[0] // 4
    expect_f32(ctx, 1, (n_batch, n_out), "prev_activation")
    expect_f32(ctx, 2, (4 * n_out, n_input + n_out), "weights")
    expect_f32(ctx, 3, (4 * n_out,), "bias")
    expect_f32(ctx, 4, (n_batch, n_out), "prev_state")
    return [((n_batch, n_out), F32), ((n_batch, n_out), F32), ((n_batch, n_input + n_out), F32),
            ((n_batch, 4 * n_out), F32)]


def _lstm_infer(ctx: InferCtx) -> list[ShapeDtype]:
    a: FullLstmAttrs = ctx.attrs
    if a.basic:
        return _basic_lstm_infer(ctx)
    if len(ctx.shapes) not in (20, 24):
        raise OpError(f"{ctx.op_name}: expected 24 inputs (20 without layer norm), got {len(ctx.shapes)}")
    if a.activation not in LSTM_ACTS:
        raise OpError(f"{ctx.op_name}: unsupported fused activation {a.activation}")
    n_batch, n_input = _input_2d(ctx)
    _, n_output = check_lstm_direction(ctx, 1, (18, 19), 20 if len(ctx.shapes) == 24 else None, n_batch, n_input,
                                  False, None)
    return [((n_batch, n_output), F32)]


def _basic_lstm_reference(inputs: Sequence[np.ndarray | None], a: FullLstmAttrs) -> list[np.ndarray]:
    x, prev_act, w, b, prev_state = (np.asarray(v, np.float32) for v in inputs[:5])
    n = prev_act.shape[1]
    concat = np.concatenate([x, prev_act], axis=1)
    pre = (np.matmul(concat, w.T) + b).astype(np.float32)
    i = sigmoid(pre[:, :n])
    g = np.tanh(pre[:, n:2 * n])
    f = sigmoid(pre[:, 2 * n:3 * n])
    o = sigmoid(pre[:, 3 * n:])
    state = (i * g + f * prev_state).astype(np.float32)
    act = (o * np.tanh(state)).astype(np.float32)
    return [act, state, concat.astype(np.float32), pre]


def _lstm_reference(inputs: Sequence[np.ndarray | None], a: FullLstmAttrs) -> list[np.ndarray]:
    if a.basic:
        return _basic_lstm_reference(inputs, a)
    ins = list(inputs) + [None] * (24 - len(inputs))
    xs = np.asarray(ins[0], np.float32)[None]  # one time step
    w = [as_f32(v) for v in ins[1:18]]
    ln = [as_f32(v) for v in ins[20:24]]
    la = LstmAttrs(activation=a.activation, cell_clip=a.cell_clip, proj_clip=a.proj_clip, time_major=True)
    out, h, c = lstm_direction(xs, w, as_f32(ins[18]), as_f32(ins[19]), ln, None, [None] * 4, la, False)
    write_state(ins[18], h)
    write_state(ins[19], c)
    return [np.ascontiguousarray(out[0], dtype=np.float32)]


# ---- RNN -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RnnAttrs:
    activation: str
    time_major: bool = True
    merge_outputs: bool = False
    state_inputs: tuple[int, ...] = (4,)


def _parse_rnn(o: dict[str, Any]) -> RnnAttrs:
    o = options_with_defaults("RNNOptions", o)
    return RnnAttrs(activation=activation_name(o["fused_activation_function"]))


def _rnn_infer(ctx: InferCtx) -> list[ShapeDtype]:
    if len(ctx.shapes) != 5:
        raise OpError(f"{ctx.op_name}: expected 5 inputs (input, weights, recurrent_weights, bias, "
                      f"hidden_state), got {len(ctx.shapes)}")
    n_batch, n_input = _input_2d(ctx)
    w = shape_of(ctx, 1)
    if w is None or len(w) != 2:
        raise OpError(f"{ctx.op_name}: weights (input 1) must be 2-D [units, input_size], got "
                      f"{None if w is None else list(w)}")
    units = w[0]
    expect_f32(ctx, 1, (units, n_input), "weights")
    expect_f32(ctx, 2, (units, units), "recurrent_weights")
    expect_f32(ctx, 3, (units,), "bias")
    expect_f32(ctx, 4, (n_batch, units), "hidden_state")
    return [((n_batch, units), F32)]


def _rnn_step(xw: np.ndarray, h: np.ndarray, r: np.ndarray, act: str) -> np.ndarray:
    return apply_activation((xw + np.matmul(h, r.T)).astype(np.float32), act).astype(np.float32)


def _rnn_reference(inputs: Sequence[np.ndarray | None], a: RnnAttrs) -> list[np.ndarray]:
    x, w, r, b, h = (np.asarray(v, np.float32) for v in inputs[:5])
    out = _rnn_step(np.matmul(x, w.T) + b, h, r, a.activation)
    write_state(inputs[4], out)
    return [np.ascontiguousarray(out)]


# ---- BIDIRECTIONAL_SEQUENCE_RNN ----------------------------------------------------------------------


def _parse_birnn(o: dict[str, Any]) -> RnnAttrs:
    o = options_with_defaults("BidirectionalSequenceRNNOptions", o)
    return RnnAttrs(activation=activation_name(o["fused_activation_function"]), time_major=bool(o["time_major"]),
                    merge_outputs=bool(o["merge_outputs"]), state_inputs=(4, 8))


def _birnn_dir(ctx: InferCtx, base: int, n_batch: int, n_input: int, n_aux: int | None, aux_w: int,
               name: str) -> int:
    w = shape_of(ctx, base)
    if w is None or len(w) != 2:
        raise OpError(f"{ctx.op_name}: {name} weights (input {base}) must be 2-D [units, input_size], got "
                      f"{None if w is None else list(w)}")
    units = w[0]
    expect_f32(ctx, base, (units, n_input), f"{name} weights")
    expect_f32(ctx, base + 1, (units, units), f"{name} recurrent_weights")
    expect_f32(ctx, base + 2, (units,), f"{name} bias")
    expect_f32(ctx, base + 3, (n_batch, units), f"{name} hidden_state")
    if n_aux is not None:
        expect_f32(ctx, aux_w, (units, n_aux), f"{name} aux_input weights")
    return units


def _birnn_infer(ctx: InferCtx) -> list[ShapeDtype]:
    a: RnnAttrs = ctx.attrs
    if len(ctx.shapes) != 12:
        raise OpError(f"{ctx.op_name}: expected 12 inputs, got {len(ctx.shapes)}")
    n_time, n_batch, n_input = seq_dims(ctx, a.time_major)
    aux = shape_of(ctx, 9)
    has_fw_aux_w, has_bw_aux_w = shape_of(ctx, 10) is not None, shape_of(ctx, 11) is not None
    if has_fw_aux_w != has_bw_aux_w:
        raise OpError(f"{ctx.op_name}: forward and backward aux weights (inputs 10, 11) must be both present "
                      "or both omitted")
    if has_fw_aux_w and aux is None:
        raise OpError(f"{ctx.op_name}: aux weights (inputs 10, 11) are given but aux_input (input 9) is omitted")
    check_aux_input(ctx, 9, n_time, n_batch, a.time_major)
    n_aux = None
    if aux is not None:
        if has_fw_aux_w:
            n_aux = aux[2]
        # LiteRT's time-major kernel steps through the aux input with the input's row size
        # (input_size * batch per time step), and without aux weights its backward direction
        # reads the aux input through the input's geometry: with another feature size that
        # reads the wrong elements or past the end of the tensor. Reject those layouts. (The
        # batch-major kernel never reads an aux input without aux weights, see the reference.)
        if aux[2] != n_input and a.time_major:
            raise OpError(f"{ctx.op_name}: aux_input '{ctx.name(9)}' has {aux[2]} features but the input has "
                          f"{n_input}; LiteRT's kernel only reads an aux input correctly here when the sizes "
                          "are equal in a time-major model (use a batch-major model for other sizes)")
    fw_units = _birnn_dir(ctx, 1, n_batch, n_input, n_aux, 10, "fw")
    bw_units = _birnn_dir(ctx, 5, n_batch, n_input, n_aux, 11, "bw")

    def shape(n: int) -> tuple[int, int, int]:
        return (n_time, n_batch, n) if a.time_major else (n_batch, n_time, n)

    if a.merge_outputs:
        return [(shape(fw_units + bw_units), F32)]
    return [(shape(fw_units), F32), (shape(bw_units), F32)]


def _rnn_sequence(xw: np.ndarray, h: np.ndarray, r: np.ndarray, act: str, reverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """xw: input contributions incl. bias, time-major [T, B, units]."""
    n_time = xw.shape[0]
    outs = [None] * n_time
    h = h.astype(np.float32, copy=True)
    for step in range(n_time):
        t = n_time - 1 - step if reverse else step
        h = _rnn_step(xw[t], h, r, act)
        outs[t] = h
    out = np.stack(outs) if n_time else np.zeros((0,) + h.shape, np.float32)
    return out, h


def _birnn_reference(inputs: Sequence[np.ndarray | None], a: RnnAttrs) -> list[np.ndarray]:
    ins = list(inputs) + [None] * (12 - len(inputs))
    xs = to_time_major(ins[0], a.time_major)
    aux = None if ins[9] is None else to_time_major(ins[9], a.time_major)
    fw_aux_w, bw_aux_w = as_f32(ins[10]), as_f32(ins[11])
    bw_x = xs
    if aux is not None and fw_aux_w is None:
        # no aux weights: TF's stacking without cross links, where the backward direction reads
        # the aux input. LiteRT quirk, probed: only its time-major kernel does that; the
        # batch-major one runs the backward direction on the input and ignores the aux input.
        if a.time_major:
            bw_x = aux
        aux = None
    results = []
    for x_dir, base, aux_w, reverse in ((xs, 1, fw_aux_w, False), (bw_x, 5, bw_aux_w, True)):
        w, r, b = (np.asarray(v, np.float32) for v in ins[base:base + 3])
        xw = np.matmul(x_dir, w.T) + b
        if aux is not None and aux_w is not None:
            xw = xw + np.matmul(aux, aux_w.T)
        out, h = _rnn_sequence(xw.astype(np.float32), np.asarray(ins[base + 3], np.float32), r, a.activation,
                               reverse)
        write_state(ins[base + 3], h)
        results.append(out)
    if a.merge_outputs:
        return [from_time_major(np.concatenate(results, axis=-1), a.time_major)]
    return [from_time_major(results[0], a.time_major), from_time_major(results[1], a.time_major)]


define("LSTM", parse=_parse_lstm, infer=_lstm_infer, reference=_lstm_reference, cost=recurrent_cost)
define("RNN", parse=_parse_rnn, infer=_rnn_infer, reference=_rnn_reference, cost=recurrent_cost)
define("BIDIRECTIONAL_SEQUENCE_RNN", parse=_parse_birnn, infer=_birnn_infer, reference=_birnn_reference,
       cost=recurrent_cost)
