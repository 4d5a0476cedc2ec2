"""Recurrent sequence ops (float32): UNIDIRECTIONAL_SEQUENCE_LSTM, BIDIRECTIONAL_SEQUENCE_LSTM,
UNIDIRECTIONAL_SEQUENCE_RNN and SVDF.

State convention (read by the runtime): these ops read recurrent state from inputs that are
variable tensors in the file (LSTM: 18 output_state, 19 cell_state; bidirectional LSTM: 35-38;
RNN: 4 hidden_state; SVDF: 4 activation_state). TFLite does not list the new state among the
outputs: the kernel writes it back into those input tensors, so it persists across invokes until
`reset_all_variables`. Each attrs object here carries `state_inputs`, the indices of those inputs,
and `reference` writes the new state into those input arrays IN PLACE (they are the executable's
persistent variable buffers). A read-only state array (a constant) is left unchanged.

Input layouts (the TFLite builtin contract; -1 marks an omitted optional input):

UNIDIRECTIONAL_SEQUENCE_LSTM (24): 0 input; 1-4 input_to_{input,forget,cell,output} weights
[n_cell, n_input] (input gate optional: CIFG when absent, i = 1 - f); 5-8 recurrent_to_{...}
weights [n_cell, n_output]; 9-11 peephole cell_to_{input,forget,output} [n_cell] (optional);
12-15 {input,forget,cell,output} gate bias [n_cell]; 16 projection weights [n_output, n_cell] and
17 projection bias [n_output] (optional); 18 output_state [batch, n_output]; 19 cell_state
[batch, n_cell]; 20-23 layer-norm coefficients {input,forget,cell,output} [n_cell] (optional).

BIDIRECTIONAL_SEQUENCE_LSTM (48): 0 input; 1-17 forward weights as LSTM 1-17; 18-34 backward
weights likewise; 35/36 forward output/cell state; 37/38 backward output/cell state; 39 aux input
(optional); 40-43 forward aux weights and 44-47 backward aux weights [n_cell, n_aux] (optional).
With an aux input but no aux weights the backward direction reads the aux input instead of input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.format.schema_data import TABLES
from tflite_jit.ops.base import Cost, InferCtx, OpError, ShapeDtype
from tflite_jit.ops.common import F32, activation_name, apply_activation, define, float_bytes, numel, shape_of

_LAYER_NORM_EPS = np.float32(1e-8)
LSTM_ACTS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH")


def options_with_defaults(table: str, options: dict[str, Any]) -> dict[str, Any]:
    """Options with the schema's defaults for the fields the file left out (or an empty table)."""
    fields = {name: default for name, _kind, default in TABLES[table]}
    return {**fields, **{k: v for k, v in (options or {}).items() if k in fields and v is not None}}


@dataclass(frozen=True)
class LstmAttrs:
    activation: str
    cell_clip: float
    proj_clip: float
    time_major: bool
    merge_outputs: bool = False
    diagonal_recurrent: bool = False
    state_inputs: tuple[int, ...] = (18, 19)
    #: how a hybrid node (int8 weights, ops/qhybrid.py) quantizes its float input; float ignores it
    asymmetric_quantize_inputs: bool = False


@dataclass(frozen=True)
class RnnAttrs:
    activation: str
    time_major: bool
    state_inputs: tuple[int, ...] = (4,)


@dataclass(frozen=True)
class SvdfAttrs:
    rank: int
    activation: str
    state_inputs: tuple[int, ...] = (4,)


def write_state(dst: np.ndarray | None, value: np.ndarray) -> None:
    """The new state into the persistent variable buffer (see the module docstring)."""
    if isinstance(dst, np.ndarray) and dst.flags.writeable and dst.shape == value.shape:
        np.copyto(dst, value.astype(dst.dtype, copy=False))


def _parse_lstm(o: dict[str, Any]) -> LstmAttrs:
    o = options_with_defaults("UnidirectionalSequenceLSTMOptions", o)
    act = activation_name(o["fused_activation_function"])
    return LstmAttrs(activation=act, cell_clip=float(o["cell_clip"]), proj_clip=float(o["proj_clip"]),
                     time_major=bool(o["time_major"]),
                     diagonal_recurrent=bool(o["diagonal_recurrent_tensors"]),
                     asymmetric_quantize_inputs=bool(o["asymmetric_quantize_inputs"]))


def _parse_bilstm(o: dict[str, Any]) -> LstmAttrs:
    o = options_with_defaults("BidirectionalSequenceLSTMOptions", o)
    act = activation_name(o["fused_activation_function"])
    return LstmAttrs(activation=act, cell_clip=float(o["cell_clip"]), proj_clip=float(o["proj_clip"]),
                     time_major=bool(o["time_major"]), merge_outputs=bool(o["merge_outputs"]),
                     state_inputs=(35, 36, 37, 38),
                     asymmetric_quantize_inputs=bool(o["asymmetric_quantize_inputs"]))


def _parse_rnn(o: dict[str, Any]) -> RnnAttrs:
    o = options_with_defaults("SequenceRNNOptions", o)
    return RnnAttrs(activation=activation_name(o["fused_activation_function"]),
                    time_major=bool(o["time_major"]))


def _parse_svdf(o: dict[str, Any]) -> SvdfAttrs:
    o = options_with_defaults("SVDFOptions", o)
    return SvdfAttrs(rank=int(o["rank"]), activation=activation_name(o["fused_activation_function"]))


# ---- shape rules ---------------------------------------------------------------------------------


def expect_f32(ctx: InferCtx, i: int, shape: tuple[int, ...], what: str, optional: bool = False) -> bool:
    """Check input i has this shape and is float32; False when it is an omitted optional input."""
    got = shape_of(ctx, i)
    if got is None:
        if optional:
            return False
        raise OpError(f"{ctx.op_name}: required input {i} ({what}) is missing")
    if got != tuple(shape):
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' (input {i}) has shape {list(got)}, "
                      f"expected {list(shape)}")
    if np.dtype(ctx.dtypes[i]) != F32:
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' (input {i}) is "
                      f"{np.dtype(ctx.dtypes[i]).name}; this node takes float32 here (a float32 "
                      "node: every tensor float32; a hybrid one, float32 input with int8 "
                      "input_to_output_weights: int8 weight matrices and peepholes, float32 biases, "
                      "states and layer-norm coefficients); store it as float32 or int8 accordingly")
    return True


def seq_dims(ctx: InferCtx, time_major: bool) -> tuple[int, int, int]:
    x = shape_of(ctx, 0)
    if x is None or len(x) != 3:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' must be 3-D "
                      f"([{'time, batch' if time_major else 'batch, time'}, features]), got "
                      f"{None if x is None else list(x)}")
    if np.dtype(ctx.dtypes[0]) != F32:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' must be float32, got {np.dtype(ctx.dtypes[0]).name}")
    t, b = (x[0], x[1]) if time_major else (x[1], x[0])
    return t, b, x[2]


def check_aux_input(ctx: InferCtx, i: int, n_time: int, n_batch: int, time_major: bool) -> None:
    """The optional aux input i, when given, is float32 [n_time, n_batch, n_aux] (time-major) or
    [n_batch, n_time, n_aux]."""
    aux = shape_of(ctx, i)
    if aux is None:
        return
    want = (n_time, n_batch) if time_major else (n_batch, n_time)
    if len(aux) != 3 or aux[:2] != want or np.dtype(ctx.dtypes[i]) != F32:
        raise OpError(f"{ctx.op_name}: aux_input '{ctx.name(i)}' must be float32 "
                      f"[{want[0]}, {want[1]}, n_aux], got {list(aux)}")


def check_lstm_direction(ctx: InferCtx, base: int, state: tuple[int, int], ln: int | None, n_batch: int,
                    n_input: int, diagonal: bool, aux: tuple[int, int] | None) -> tuple[int, int]:
    """Validate one direction's weights. base: index of input_to_input_weights (1 or 18).
    Returns (n_cell, n_output)."""
    w_f = shape_of(ctx, base + 1)
    if w_f is None or len(w_f) != 2:
        raise OpError(f"{ctx.op_name}: input_to_forget_weights (input {base + 1}) must be 2-D "
                      f"[n_cell, n_input], got {None if w_f is None else list(w_f)}")
    n_cell = w_f[0]
    rec = shape_of(ctx, base + 5)
    if rec is None:
        raise OpError(f"{ctx.op_name}: recurrent_to_forget_weights (input {base + 5}) is missing")
    if len(rec) != (1 if diagonal else 2):
        raise OpError(f"{ctx.op_name}: recurrent_to_forget_weights (input {base + 5}) must be "
                      f"{'1-D [n_cell] (diagonal_recurrent_tensors)' if diagonal else '2-D [n_cell, n_output]'}"
                      f", got {list(rec)}")
    n_output = rec[0] if diagonal else rec[1]
    cifg = not expect_f32(ctx, base + 0, (n_cell, n_input), "input_to_input_weights", optional=True)
    for k, name in ((1, "forget"), (2, "cell"), (3, "output")):
        expect_f32(ctx, base + k, (n_cell, n_input), f"input_to_{name}_weights")
    rec_shape = (n_cell,) if diagonal else (n_cell, n_output)
    has_ri = expect_f32(ctx, base + 4, rec_shape, "recurrent_to_input_weights", optional=True)
    if has_ri == cifg:
        raise OpError(f"{ctx.op_name}: input_to_input_weights and recurrent_to_input_weights must be "
                      "both present or both omitted (CIFG)")
    for k, name in ((5, "forget"), (6, "cell"), (7, "output")):
        expect_f32(ctx, base + k, rec_shape, f"recurrent_to_{name}_weights")
    peep = [expect_f32(ctx, base + 8 + k, (n_cell,), f"cell_to_{n}_weights", optional=True)
            for k, n in enumerate(("input", "forget", "output"))]
    if (peep[1] != peep[2]) or (peep[0] and cifg) or (not cifg and peep[1] and not peep[0]):
        raise OpError(f"{ctx.op_name}: peephole weights (inputs {base + 8}-{base + 10}) must be all "
                      "present (cell_to_input omitted with CIFG) or all omitted")
    has_ib = expect_f32(ctx, base + 11, (n_cell,), "input_gate_bias", optional=True)
    if has_ib == cifg:
        raise OpError(f"{ctx.op_name}: input_gate_bias (input {base + 11}) must be present exactly "
                      "when input_to_input_weights is")
    for k, name in ((12, "forget"), (13, "cell"), (14, "output")):
        expect_f32(ctx, base + k, (n_cell,), f"{name}_gate_bias")
    has_proj = expect_f32(ctx, base + 15, (n_output, n_cell), "projection_weights", optional=True)
    has_pb = expect_f32(ctx, base + 16, (n_output,), "projection_bias", optional=True)
    if has_pb and not has_proj:
        raise OpError(f"{ctx.op_name}: projection_bias (input {base + 16}) needs projection_weights")
    if not has_proj and n_output != n_cell:
        raise OpError(f"{ctx.op_name}: without projection weights n_output ({n_output}) must equal "
                      f"n_cell ({n_cell})")
    expect_f32(ctx, state[0], (n_batch, n_output), "output_state")
    expect_f32(ctx, state[1], (n_batch, n_cell), "cell_state")
    if ln is not None:
        have = [expect_f32(ctx, ln + k, (n_cell,), f"{n}_layer_norm_coefficients", optional=True)
                for k, n in enumerate(("input", "forget", "cell", "output"))]
        if any(have) and not (all(have[1:]) and have[0] == (not cifg)):
            raise OpError(f"{ctx.op_name}: layer-norm coefficients (inputs {ln}-{ln + 3}) must be all "
                          "present (input omitted with CIFG) or all omitted")
    if aux is not None:
        first, n_aux = aux
        have = [expect_f32(ctx, first + k, (n_cell, n_aux), "aux_input weights", optional=True)
                for k in range(4)]
        if any(have) and not (all(have[1:]) and have[0] == (not cifg)):
            raise OpError(f"{ctx.op_name}: aux input weights (inputs {first}-{first + 3}) must be all "
                          "present (input gate omitted with CIFG) or all omitted")
    return n_cell, n_output


def _lstm_infer(ctx: InferCtx) -> list[ShapeDtype]:
    a: LstmAttrs = ctx.attrs
    if len(ctx.shapes) not in (20, 24):
        raise OpError(f"{ctx.op_name}: expected 24 inputs (20 without layer norm), got {len(ctx.shapes)}")
    if a.activation not in LSTM_ACTS:
        raise OpError(f"{ctx.op_name}: unsupported fused activation {a.activation}")
    n_time, n_batch, n_input = seq_dims(ctx, a.time_major)
    _, n_output = check_lstm_direction(ctx, 1, (18, 19), 20 if len(ctx.shapes) == 24 else None, n_batch,
                                  n_input, a.diagonal_recurrent, None)
    out = (n_time, n_batch, n_output) if a.time_major else (n_batch, n_time, n_output)
    return [(out, F32)]


def _bilstm_infer(ctx: InferCtx) -> list[ShapeDtype]:
    a: LstmAttrs = ctx.attrs
    if len(ctx.shapes) != 48:
        raise OpError(f"{ctx.op_name}: expected 48 inputs, got {len(ctx.shapes)}")
    if a.activation not in LSTM_ACTS:
        raise OpError(f"{ctx.op_name}: unsupported fused activation {a.activation}")
    n_time, n_batch, n_input = seq_dims(ctx, a.time_major)
    aux = shape_of(ctx, 39)
    check_aux_input(ctx, 39, n_time, n_batch, a.time_major)
    aux_dims = None if aux is None else (40, aux[2])
    fw_cell, fw_out = check_lstm_direction(ctx, 1, (35, 36), None, n_batch, n_input, False, aux_dims)
    has_aux_w = aux is not None and shape_of(ctx, 41) is not None
    bw_in = n_input
    if aux is not None and not has_aux_w and aux[2] != n_input:
        raise OpError(f"{ctx.op_name}: without aux weights the backward direction reads aux_input "
                      f"'{ctx.name(39)}', whose size {aux[2]} must equal the input size {n_input}")
    bw_cell, bw_out = check_lstm_direction(ctx, 18, (37, 38), None, n_batch, bw_in, False,
                                      None if aux_dims is None else (44, aux_dims[1]))
    if (bw_cell, bw_out) != (fw_cell, fw_out):
        raise OpError(f"{ctx.op_name}: the backward direction's cell and output sizes ({bw_cell}, "
                      f"{bw_out}) must equal the forward direction's ({fw_cell}, {fw_out})")
    if has_aux_w != (shape_of(ctx, 45) is not None):
        raise OpError(f"{ctx.op_name}: forward and backward aux weights must be both present or both omitted")

    def shape(n: int) -> tuple[int, int, int]:
        return (n_time, n_batch, n) if a.time_major else (n_batch, n_time, n)

    if a.merge_outputs:
        return [(shape(fw_out + bw_out), F32)]
    return [(shape(fw_out), F32), (shape(bw_out), F32)]


def _rnn_infer(ctx: InferCtx) -> list[ShapeDtype]:
    a: RnnAttrs = ctx.attrs
    if len(ctx.shapes) != 5:
        raise OpError(f"{ctx.op_name}: expected 5 inputs (input, weights, recurrent_weights, bias, "
                      f"hidden_state), got {len(ctx.shapes)}")
    n_time, n_batch, n_input = seq_dims(ctx, a.time_major)
    w = shape_of(ctx, 1)
    if w is None or len(w) != 2:
        raise OpError(f"{ctx.op_name}: weights (input 1) must be 2-D [units, input_size]")
    units = w[0]
    expect_f32(ctx, 1, (units, n_input), "weights")
    expect_f32(ctx, 2, (units, units), "recurrent_weights")
    expect_f32(ctx, 3, (units,), "bias")
    expect_f32(ctx, 4, (n_batch, units), "hidden_state")
    out = (n_time, n_batch, units) if a.time_major else (n_batch, n_time, units)
    return [(out, F32)]


def _svdf_infer(ctx: InferCtx) -> list[ShapeDtype]:
    a: SvdfAttrs = ctx.attrs
    if len(ctx.shapes) != 5:
        raise OpError(f"{ctx.op_name}: expected 5 inputs (input, weights_feature, weights_time, bias, "
                      f"state), got {len(ctx.shapes)}")
    x = shape_of(ctx, 0)
    if x is None or len(x) != 2 or np.dtype(ctx.dtypes[0]) != F32:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' must be float32 [batch, input_size]")
    wf, wt = shape_of(ctx, 1), shape_of(ctx, 2)
    if wf is None or len(wf) != 2 or wt is None or len(wt) != 2:
        raise OpError(f"{ctx.op_name}: weights_feature and weights_time must be 2-D")
    n_filters, memory = wf[0], wt[1]
    if a.rank <= 0 or n_filters % a.rank:
        raise OpError(f"{ctx.op_name}: rank {a.rank} must be positive and divide num_filters {n_filters}")
    units = n_filters // a.rank
    expect_f32(ctx, 1, (n_filters, x[1]), "weights_feature")
    expect_f32(ctx, 2, (n_filters, memory), "weights_time")
    expect_f32(ctx, 3, (units,), "bias", optional=True)
    expect_f32(ctx, 4, (x[0], memory * n_filters), "state")
    return [((x[0], units), F32)]


# ---- reference kernels ---------------------------------------------------------------------------


def sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp overflow: 1 / (1 + inf) = 0, the right limit
        return (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32)


# LiteRT's LSTM kernels apply their gate functions through Eigen (tensor_utils'
# ApplySigmoidToVector / ApplyTanhToVector: `.array().logistic()` / `.tanh()`), whose float
# packet code is an approximation of its own. Probed against LiteRT 2.3 on x86 (every position
# of vectors of 5 to 1003 values, inputs N(0, 4)): equal to the bit with the formulas below,
# evaluated in float32 without fused multiply-adds. The hybrid LSTM uses them: its recurrence
# re-quantizes the state every step, where an ulp can move a quantized value.

_LOGISTIC_P = tuple(np.float32(c) for c in (4.1898667812347412109375e-2, 0.49999141693115234375,
                                            8.33471305668354034423828125e-3, 0.16666877269744873046875))
_TANH_ALPHA = tuple(np.float32(c) for c in (1.394553628e-8, 2.102733560e-5, 3.520756727e-3, 1.340216100e-1))
_TANH_BETA = tuple(np.float32(c) for c in (8.015776984e-7, 3.326951409e-4, 2.597254514e-2, 4.673548340e-1, 1.0))


def eigen_logistic(x: np.ndarray) -> np.ndarray:
    """Eigen's float logistic: exp(x) / (1 + exp(x)), exp(x) = exp(x/2)^2 with a Cephes-style
    range reduction and a degree-5 polynomial; 0 below -104, x clamped at 16.6355324."""
    f = np.float32
    x0 = np.asarray(x, f)
    xh = (np.minimum(x0, f(16.6355324)) * f(0.5)).astype(f)
    m = np.floor((xh * f(1.44269504088896341)).astype(f) + f(0.5)).astype(f)
    r = ((m * f(-0.693359375)).astype(f) + xh).astype(f)
    r = ((m * f(2.12194440e-4)).astype(f) + r).astype(f)
    r2 = (r * r).astype(f)
    p4, p2, p5, p3 = _LOGISTIC_P
    p_even = ((r2 * p4).astype(f) + p2).astype(f)
    p_odd = ((r2 * p5).astype(f) + p3).astype(f)
    p = ((r * p_odd).astype(f) + p_even).astype(f)
    p = ((r2 * p).astype(f) + (r + f(1)).astype(f)).astype(f)
    with np.errstate(over="ignore"):
        e = (p * np.exp2(m.astype(np.float64)).astype(f)).astype(f)  # exact: a power of two
        e = (e * e).astype(f)
        out = (e / (f(1) + e).astype(f)).astype(f)
    return np.where(x0 < f(-104), f(0), out).astype(f)


def eigen_logistic_scalar(x: np.ndarray) -> np.ndarray:
    """Eigen's scalar logistic (the elements its vector loop does not cover, see
    eigen_scalar_mask): e = expf(min(x, 16.6355324)), e / (1 + e)."""
    f = np.float32
    with np.errstate(over="ignore"):
        e = np.exp(np.minimum(np.asarray(x, f), f(16.6355324)).astype(np.float64)).astype(f)
        return (e / (f(1) + e).astype(f)).astype(f)


def eigen_scalar_mask(offset: int, length: int) -> np.ndarray:
    """Which elements of a vector Eigen's loop evaluates with the scalar function: LiteRT's SSE
    build runs 4-float packets from the first 16-byte-aligned element (the scratch buffer is
    aligned; `offset` is the vector's position in it, in floats) and scalars before and after.
    Probed (264 gate vectors: CIFG or not, batch 1-3, 1-22 cells): exact."""
    mask = np.zeros(length, bool)
    lead = min(length, (-offset) % 4)
    mask[:lead] = True
    mask[lead + (length - lead) // 4 * 4:] = True
    return mask


def gate_logistic(x: np.ndarray, scalar: np.ndarray | None) -> np.ndarray:
    """LiteRT's ApplySigmoidToVector on a gate's scratch vector x ([rows, n_cell], laid out
    row-major in the scratch): Eigen's packet logistic, its scalar one where `scalar` is set."""
    out = eigen_logistic(x)
    if scalar is not None and scalar.any():
        m = scalar.reshape(x.shape)
        out = np.where(m, eigen_logistic_scalar(x), out).astype(np.float32)
    return out


def eigen_tanh(x: np.ndarray) -> np.ndarray:
    """Eigen's float tanh (EIGEN_FAST_MATH): a 9/8-degree rational function of x clamped to
    +-7.90738964080810547, x * (1 + x^2 P(x^2)) / Q(x^2)."""
    f = np.float32
    xc = np.clip(np.asarray(x, f), f(-7.90738964080810547), f(7.90738964080810547)).astype(f)
    x2 = (xc * xc).astype(f)
    x3 = (x2 * xc).astype(f)
    p = np.full_like(xc, _TANH_ALPHA[0])
    for c in _TANH_ALPHA[1:]:
        p = ((p * x2).astype(f) + c).astype(f)
    q = np.full_like(xc, _TANH_BETA[0])
    for c in _TANH_BETA[1:]:
        q = ((q * x2).astype(f) + c).astype(f)
    p = ((x3 * p).astype(f) + xc).astype(f)
    return (p / q).astype(f)


def _layer_norm(x: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True, dtype=np.float32)
    var = np.square(x - mean).mean(axis=-1, keepdims=True, dtype=np.float32)
    return ((x - mean) / np.sqrt(var + _LAYER_NORM_EPS)).astype(np.float32)


def as_f32(v: np.ndarray | None) -> np.ndarray | None:
    return None if v is None else np.asarray(v, np.float32)


def litert_layer_norm(x: np.ndarray) -> np.ndarray:
    """LiteRT's MeanStddevNormalization (portable, which its x86 build runs) per row: float32
    sums in element order, mean = sum / n, variance likewise, then (x - mean) times
    1 / sqrt(variance + 1e-8)."""
    f = np.float32
    x = np.asarray(x, f)
    n = f(x.shape[-1])
    mean = (np.cumsum(x, axis=-1, dtype=f)[..., -1:] / n).astype(f)
    diff = (x - mean).astype(f)
    var = (np.cumsum((diff * diff).astype(f), axis=-1, dtype=f)[..., -1:] / n).astype(f)
    inv = (f(1) / np.sqrt((var + _LAYER_NORM_EPS).astype(f))).astype(f)
    return (diff * inv).astype(f)


def _gate_finish(pre: np.ndarray, ln: np.ndarray | None, bias: np.ndarray | None, use_ln: bool,
                 norm=_layer_norm) -> np.ndarray:
    """Bias (after layer normalisation and its coefficients, when the model has them; None: the
    pre-activation already holds it)."""
    if use_ln:
        return (norm(pre) * ln).astype(np.float32) + bias
    return pre if bias is None else pre + bias


def lstm_cell(pre: dict[int, np.ndarray], c: np.ndarray, peep: list, ln: list, bias: list, a: LstmAttrs,
              bias_added: bool, cell_gate: np.ndarray | None = None,
              eigen: dict[int, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One step's gate math from the gate pre-activations `pre` (0 input, 1 forget, 2 cell,
    3 output; no 0 with CIFG) and the old cell state: returns (o * act(new c) before any
    projection, new c). Shared by the float kernel below and the hybrid one (ops/qhybrid.py),
    whose pre-activations already hold the bias (`bias_added`, LiteRT's order without layer
    norm). `cell_gate`: the cell gate where a LiteRT quirk replaces it (see lstm_direction);
    `peep`: float32 peephole weights (dequantized for hybrid) or Nones. `eigen`: evaluate the
    gates' sigmoid and tanh as LiteRT does (eigen_logistic / eigen_tanh), with, per sigmoid gate
    (0, 1, 3), the mask of elements Eigen computes with its scalar function (eigen_scalar_mask)."""
    def sig(v: np.ndarray, gate: int) -> np.ndarray:
        return sigmoid(v) if eigen is None else gate_logistic(v, eigen.get(gate))

    def act_fn(v: np.ndarray) -> np.ndarray:
        return eigen_tanh(v) if eigen is not None and a.activation == "TANH" else apply_activation(v, a.activation)

    cifg = 0 not in pre
    use_ln = ln[1] is not None
    b = [None] * 4 if bias_added and not use_ln else bias
    for g, k in ((0, 0), (1, 1)):  # peepholes on the input and forget gates read the old cell
        if g in pre and peep[k] is not None:
            pre[g] = pre[g] + peep[k] * c
    act = a.activation
    norm = _layer_norm if eigen is None else litert_layer_norm
    f = sig(_gate_finish(pre[1], ln[1], b[1], use_ln, norm), 1)
    i = np.float32(1) - f if cifg else sig(_gate_finish(pre[0], ln[0], b[0], use_ln, norm), 0)
    g_ = cell_gate if cell_gate is not None else act_fn(_gate_finish(pre[2], ln[2], b[2], use_ln, norm))
    c = f * c + i * g_
    if a.cell_clip > 0:
        c = np.clip(c, np.float32(-a.cell_clip), np.float32(a.cell_clip))
    if peep[2] is not None:
        pre[3] = pre[3] + peep[2] * c
    o = sig(_gate_finish(pre[3], ln[3], b[3], use_ln, norm), 3)
    # LiteRT quirk, probed: with activation NONE its kernel leaves the scratch it would hold
    # act(c) in untouched, and that scratch still holds this step's cell gate: h = o * g
    h = o * (g_ if act == "NONE" else act_fn(c))
    return h.astype(np.float32), c.astype(np.float32)


def lstm_direction(xs: np.ndarray, w: list, h: np.ndarray, c: np.ndarray, ln: list, aux: np.ndarray | None,
                    aux_w: list, a: LstmAttrs, reverse: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One LSTM direction over a time-major sequence xs [T, B, I]. w: the 17 weights (input
    indices 1-17 of the unidirectional op, 0-based here); ln: 4 layer-norm coefficients or Nones;
    aux_w: 4 aux weights or Nones. Returns (outputs [T, B, n_output], h, c)."""
    w_x, w_h, peep, bias = w[0:4], w[4:8], w[8:11], w[11:15]
    proj_w, proj_b = w[15], w[16]
    cifg = w_x[0] is None
    use_ln = ln[1] is not None
    n_time = xs.shape[0]
    gates = range(1, 4) if cifg else range(4)
    # input (and aux input) contributions for every step at once: [T, B, n_cell] per gate
    xw = {g: np.matmul(xs, w_x[g].T) for g in gates}
    with_aux = aux is not None and aux_w[1] is not None
    if with_aux:
        for g in gates:
            xw[g] = xw[g] + np.matmul(aux, aux_w[g].T)
    act = a.activation
    outs = []
    h = h.astype(np.float32, copy=True)
    c = c.astype(np.float32, copy=True)
    for step in range(n_time):
        t = n_time - 1 - step if reverse else step
        pre = {}
        for g in gates:
            r = h * w_h[g] if a.diagonal_recurrent else np.matmul(h, w_h[g].T)
            pre[g] = xw[g][t] + r
        g_ = None
        if act == "NONE" and a.diagonal_recurrent:
            # LiteRT quirk, probed: with diagonal recurrent weights the cell gate only reaches
            # its buffer through the activation, which NONE skips: the buffer keeps its initial
            # value, the cell bias (zeros with layer norm, which adds the bias later)
            g_ = np.broadcast_to(np.zeros_like(bias[2]) if use_ln else bias[2], c.shape)
        elif act == "NONE" and with_aux:
            # likewise with aux weights: the cell gate keeps only its input, aux and bias terms
            g_ = xw[2][t] + bias[2]
        h, c = lstm_cell(pre, c, peep, ln, bias, a, False, g_)
        if proj_w is not None:
            h = np.matmul(h, proj_w.T)
            if proj_b is not None:
                h = h + proj_b
            if a.proj_clip > 0:
                h = np.clip(h, np.float32(-a.proj_clip), np.float32(a.proj_clip))
        h = h.astype(np.float32)
        outs.append(h)
    if reverse:
        outs.reverse()
    out = np.stack(outs) if outs else np.zeros((0,) + h.shape, np.float32)
    return out, h, c


def to_time_major(x: np.ndarray, time_major: bool) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x if time_major else np.swapaxes(x, 0, 1)


def from_time_major(y: np.ndarray, time_major: bool) -> np.ndarray:
    return np.ascontiguousarray(y if time_major else np.swapaxes(y, 0, 1), dtype=np.float32)


def _lstm_reference(inputs: Sequence[np.ndarray | None], a: LstmAttrs) -> list[np.ndarray]:
    ins = list(inputs) + [None] * (24 - len(inputs))
    xs = to_time_major(ins[0], a.time_major)
    w = [as_f32(v) for v in ins[1:18]]
    ln = [as_f32(v) for v in ins[20:24]]
    out, h, c = lstm_direction(xs, w, as_f32(ins[18]), as_f32(ins[19]), ln, None, [None] * 4, a, False)
    write_state(ins[18], h)
    write_state(ins[19], c)
    return [from_time_major(out, a.time_major)]


def _bilstm_reference(inputs: Sequence[np.ndarray | None], a: LstmAttrs) -> list[np.ndarray]:
    ins = list(inputs) + [None] * (48 - len(inputs))
    xs = to_time_major(ins[0], a.time_major)
    aux = None if ins[39] is None else to_time_major(ins[39], a.time_major)
    fw_w = [as_f32(v) for v in ins[1:18]]
    bw_w = [as_f32(v) for v in ins[18:35]]
    fw_aux = [as_f32(v) for v in ins[40:44]]
    bw_aux = [as_f32(v) for v in ins[44:48]]
    none4 = [None] * 4
    bw_x = xs
    if aux is not None and fw_aux[1] is None:
        bw_x, aux = aux, None  # no aux weights: the backward direction reads the aux input
    fw, fh, fc = lstm_direction(xs, fw_w, as_f32(ins[35]), as_f32(ins[36]), none4, aux, fw_aux, a, False)
    bw, bh, bc = lstm_direction(bw_x, bw_w, as_f32(ins[37]), as_f32(ins[38]), none4, aux, bw_aux, a, True)
    for k, v in zip((35, 36, 37, 38), (fh, fc, bh, bc)):
        write_state(ins[k], v)
    if a.merge_outputs:
        return [from_time_major(np.concatenate([fw, bw], axis=-1), a.time_major)]
    return [from_time_major(fw, a.time_major), from_time_major(bw, a.time_major)]


def _rnn_reference(inputs: Sequence[np.ndarray | None], a: RnnAttrs) -> list[np.ndarray]:
    xs = to_time_major(inputs[0], a.time_major)
    w, r, b = (np.asarray(v, np.float32) for v in inputs[1:4])
    h = np.asarray(inputs[4], np.float32).copy()
    xw = np.matmul(xs, w.T) + b
    outs = []
    for t in range(xs.shape[0]):
        h = apply_activation((xw[t] + np.matmul(h, r.T)).astype(np.float32), a.activation).astype(np.float32)
        outs.append(h)
    write_state(inputs[4], h)
    out = np.stack(outs) if outs else np.zeros((0,) + h.shape, np.float32)
    return [from_time_major(out, a.time_major)]


def _svdf_reference(inputs: Sequence[np.ndarray | None], a: SvdfAttrs) -> list[np.ndarray]:
    x, wf, wt = (np.asarray(v, np.float32) for v in inputs[:3])
    bias = as_f32(inputs[3])
    n_batch = x.shape[0]
    n_filters, memory = wt.shape
    state = np.asarray(inputs[4], np.float32).reshape(n_batch, n_filters, memory)
    # shift every filter's memory one step back and append this step's feature projection
    new_state = np.concatenate([state[:, :, 1:], np.matmul(x, wf.T)[:, :, None]], axis=2)
    per_filter = np.einsum("bfm,fm->bf", new_state, wt).astype(np.float32)
    y = per_filter.reshape(n_batch, n_filters // a.rank, a.rank).sum(axis=2, dtype=np.float32)
    if bias is not None:
        y = y + bias
    y = apply_activation(y.astype(np.float32), a.activation).astype(np.float32)
    write_state(inputs[4], new_state.reshape(n_batch, n_filters * memory))
    return [y]


# ---- costs ---------------------------------------------------------------------------------------


def recurrent_cost(in_shapes: list, out_shapes: list, attrs: Any) -> Cost:
    """Two flops per weight (2-D inputs) per time step and batch row; every tensor moved once."""
    weights = sum(numel(s) for s in in_shapes[1:] if s is not None and len(s) == 2)
    steps = numel(in_shapes[0][:2]) if in_shapes and in_shapes[0] is not None else 1
    return Cost(flops=2.0 * weights * steps, bytes=float_bytes([*in_shapes, *out_shapes]))


def _svdf_cost(in_shapes: list, out_shapes: list, attrs: Any) -> Cost:
    b = in_shapes[0][0]
    flops = 2.0 * b * (numel(in_shapes[1]) + numel(in_shapes[2]))
    return Cost(flops=flops, bytes=float_bytes([*in_shapes, *out_shapes]))


define("UNIDIRECTIONAL_SEQUENCE_LSTM", parse=_parse_lstm, infer=_lstm_infer, reference=_lstm_reference,
       cost=recurrent_cost)
define("BIDIRECTIONAL_SEQUENCE_LSTM", parse=_parse_bilstm, infer=_bilstm_infer, reference=_bilstm_reference,
       cost=recurrent_cost)
define("UNIDIRECTIONAL_SEQUENCE_RNN", parse=_parse_rnn, infer=_rnn_infer, reference=_rnn_reference,
       cost=recurrent_cost)
define("SVDF", parse=_parse_svdf, infer=_svdf_infer, reference=_svdf_reference, cost=_svdf_cost)
