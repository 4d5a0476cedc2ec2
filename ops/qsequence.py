"""The fully-integer UNIDIRECTIONAL_SEQUENCE_LSTM (int8 activations and weights, int16 cell
state: LiteRT's "8x8_16" kernel), bit-exact against LiteRT's builtin kernel.

Why a module of its own: the float op (ops/sequence.py) computes in float32; a model converted with
a representative dataset and TFLITE_BUILTINS_INT8 keeps the same op but feeds it int8, and LiteRT
then runs a different algorithm (lstm_eval.cc EvalInteger8x8_16) whose every rounding shows in the
output. This module attaches that algorithm to the op as its quantized kernel (ops.base
add_quantized): nodes with an int8 input bind `QLstmAttrs`, all others keep the float kernel.

The facts, read from LiteRT (unidirectional_sequence_lstm.cc Prepare, lstm_eval.cc,
portable_tensor_utils.cc; the x86 build routes every primitive used here to the portable one):

* Gate pre-activations live in int16 with scale 2**-12 (Q3.12), or the scale of the op's
  intermediate tensor 0-3 with layer normalisation. Each contribution is a matrix-vector product
  plus a precomputed bias (the gate bias folded with -zero_point * row sum of the weights),
  requantized by MultiplyByQuantizedMultiplier and added to the int16 gate with saturation, one
  contribution at a time: input, then recurrent, then peephole (cell state times an int16 weight).
* The effective scales are computed in float32 (weight scale * activation scale / gate scale) and
  encoded by QuantizeMultiplier; the hidden scale is 2**-15 * 2**-15 / scale of intermediate 4,
  in double.
* Gates: gemmlowp's int16 logistic on Q3.12 (input, forget, output) and tanh on Q3.12 (cell).
* Cell state: int16 with a power-of-two scale 2**cell_scale. c = f*c >> 15, plus i*g >> (30 +
  cell_scale) (both rounding shifts whose result is stored to int16 WITHOUT saturation), added
  with saturation, then clipped to the quantized cell clip. CIFG uses i = 32767 - f.
* Hidden: tanh of the cell state read as fixed point with 15 + cell_scale integer bits, times
  the output gate, requantized to int8 with the hidden zero point. LiteRT's ApplyTanh only
  handles 0..6 integer bits and otherwise silently returns without writing its output buffer,
  which still holds this step's input gate: with a cell scale below 2**-15 (calibration on tiny
  activations gives such models, the suite's text_lstm_int8 has 2**-19) LiteRT's hidden state is
  o * i. We reproduce that (and refuse the CIFG form, where the buffer holds stale memory).
* Projection: the hidden int8 is stored with -hidden_zero_point (sic, LiteRT's b/246629213), its
  row-sum correction uses +hidden_zero_point, then an int8 matrix-vector product into the output
  state, clipped to the quantized projection clip.

* Layer normalisation (int16 coefficients, inputs 20-23): the gate sums are in the scale of
  intermediate 0-3, the gate bias moves out of the folded bias into the normalisation
  (ApplyLayerNorm: mean and variance in fixed point with 10 extra bits, gemmlowp's inverse square
  root, coefficient times value plus bias, requantized by the coefficient's scale).

Not implemented (refused at prepare with the reason): diagonal recurrent weights and per-channel
weight scales (LiteRT reads the first scale only; no converter emits them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np

from tflite_jit.ops import base, qmath, qreduce, qsigmoid16
from tflite_jit.ops import sequence as _float_sequence
from tflite_jit.ops.base import InferCtx, OpError, Quantized, QuantizedKernel, add_quantized
from tflite_jit.ops.common import I8, I16, I32, shape_of

OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"
I64 = np.int64
_Q312 = 2.0 ** -12  # the gates' scale without layer normalisation

# input index -> (what, dtype) of the operands the integer kernel reads
_WEIGHTS = {1: "input_to_input_weights", 2: "input_to_forget_weights", 3: "input_to_cell_weights",
            4: "input_to_output_weights", 5: "recurrent_to_input_weights", 6: "recurrent_to_forget_weights",
            7: "recurrent_to_cell_weights", 8: "recurrent_to_output_weights"}
_PEEPHOLES = {9: "cell_to_input_weights", 10: "cell_to_forget_weights", 11: "cell_to_output_weights"}
_BIASES = {12: "input_gate_bias", 13: "forget_gate_bias", 14: "cell_gate_bias", 15: "output_gate_bias"}


@dataclass(frozen=True)
class QLstmAttrs(Quantized):
    """The quantization facts of one integer LSTM node (tensor scales and zero points as the file
    stores them); `integer_params` turns them into LiteRT's multipliers. `hidden` is intermediate
    4's (scale, zero point), bound from the node's intermediates (None until then)."""

    input_scale: float
    input_zp: int
    weight_scales: tuple[float | None, ...]  # inputs 1-11 (0-based 0-10), None where omitted
    projection_scale: float | None
    output_state_scale: float
    output_state_zp: int
    cell_scale: int  # log2 of the cell state's scale
    ln_scales: tuple[float | None, ...] | None = None  # inputs 20-23 with layer normalisation, else None
    hidden: tuple[float, int] | None = None
    gate_scales: tuple[float, ...] | None = None  # intermediates 0-3 (layer normalisation only)
    dtype = I8  # the activations' type (what backends ask a quantized node for); not a field


def _per_tensor(t: Any, what: str, index: int | str) -> tuple[float, int]:
    q = t.quantization
    where = f"input {index}" if isinstance(index, int) else index
    if q is None or q.scales.size == 0:
        raise OpError(f"{OP}: {what} '{t.name}' ({where}) of an integer LSTM must be quantized "
                      "(per-tensor scale and zero point); re-convert the model with full-integer quantization")
    if q.scales.size != 1:
        raise OpError(f"{OP}: {what} '{t.name}' ({where}) has {q.scales.size} per-channel scales; "
                      "the integer LSTM takes per-tensor quantization only (LiteRT reads the first scale)")
    scale = float(q.scales[0])
    if not (math.isfinite(scale) and scale > 0):
        raise OpError(f"{OP}: {what} '{t.name}' ({where}) has scale {scale}; scales must be positive")
    return scale, int(q.zero_points[0])


def checked_log2(scale: float) -> int | None:
    """LiteRT's CheckedLog2: round(log2(scale)) when scale is a power of two within 1e-3 in log2."""
    f32 = np.float32
    x = float(f32(np.log(f32(scale))) * (f32(1.0) / f32(np.log(f32(2.0)))))
    r = math.copysign(math.floor(abs(x) + 0.5), x)  # std::round: half away from zero
    return int(r) if abs(x - r) < 1e-3 else None


def _bind(fa: Any, ins: list, outs: list) -> QLstmAttrs | None:
    """Claim nodes whose input is int8 (LiteRT's is_integer); float and hybrid nodes stay with
    the kernels bound before."""
    if not isinstance(fa, _float_sequence.LstmAttrs) or not ins or ins[0] is None:
        return None
    if np.dtype(ins[0].dtype) != I8:
        return None
    ins = list(ins) + [None] * (24 - len(ins))
    # LiteRT: layer norm when the node has 24 inputs and the forget gate's coefficients
    use_ln = ins[21] is not None
    ln_scales = None
    if use_ln:
        ln_scales = tuple(None if ins[k] is None else _per_tensor(ins[k], f"layer-norm coefficients {k - 20}", k)[0]
                          for k in (20, 21, 22, 23))
    if fa.diagonal_recurrent:
        raise OpError(f"{OP}: integer LSTM with diagonal recurrent weights is not supported (LiteRT's "
                      "integer kernel has no diagonal form either)")
    for k in (18, 19):
        if ins[k] is None or not ins[k].is_variable:
            raise OpError(f"{OP}: {'output' if k == 18 else 'cell'}_state (input {k}) must be a variable "
                          "tensor (LiteRT keeps the recurrent state in it)")
    in_scale, in_zp = _per_tensor(ins[0], "input", 0)
    ws: list[float | None] = []
    for k in range(1, 12):
        if ins[k] is None:
            ws.append(None)
            continue
        # weight zero points are taken as 0, as LiteRT does (converters write symmetric weights)
        ws.append(_per_tensor(ins[k], _WEIGHTS.get(k) or _PEEPHOLES[k], k)[0])
    proj = None if ins[16] is None else _per_tensor(ins[16], "projection_weights", 16)[0]
    os_scale, os_zp = _per_tensor(ins[18], "output_state", 18)
    cs_scale, _ = _per_tensor(ins[19], "cell_state", 19)
    cell_scale = checked_log2(cs_scale)
    if cell_scale is None:
        # LiteRT logs this check's failure but ignores it and runs with unset multipliers
        raise OpError(f"{OP}: cell_state '{ins[19].name}' (input 19) has scale {cs_scale}, which is not a "
                      "power of two; the integer LSTM requires one (re-convert the model)")
    if not outs or outs[0].quantization is None or outs[0].quantization.scales.size == 0:
        raise OpError(f"{OP}: the output of an integer LSTM must be quantized")
    return QLstmAttrs(base=fa, input_scale=in_scale, input_zp=in_zp, weight_scales=tuple(ws),
                      projection_scale=proj, output_state_scale=os_scale, output_state_zp=os_zp,
                      cell_scale=cell_scale, ln_scales=ln_scales)


def bind_intermediates(a: Any, tensors: list) -> Any:
    """The hidden-state quantization from the node's intermediate 4 and, with layer
    normalisation, the gates' scales from intermediates 0-3 (LiteRT requires five intermediates
    on an integer LSTM)."""
    if not isinstance(a, QLstmAttrs):
        return a
    if len(tensors) != 5:
        raise OpError(f"{OP}: an integer LSTM needs 5 intermediate tensors (the gate and hidden "
                      f"quantization), the node has {len(tensors)}; re-convert the model")
    names = ("input gate", "forget gate", "cell gate", "output gate", "hidden state")
    for k in (0, 1, 2, 3, 4) if a.ln_scales is not None else (4,):
        if tensors[k] is None:
            raise OpError(f"{OP}: intermediate {k} (the {names[k]}'s quantization) is missing")
    hidden = _per_tensor(tensors[4], "hidden state", "intermediate 4")
    gates = None
    if a.ln_scales is not None:  # LiteRT logs a missing one and runs on: we refuse
        gates = tuple(_per_tensor(tensors[k], names[k], f"intermediate {k}")[0] for k in range(4))
    return replace(a, hidden=hidden, gate_scales=gates)


# ---- shape rule -----------------------------------------------------------------------------------


def _expect(ctx: InferCtx, i: int, shape: tuple[int, ...], dtype: np.dtype, what: str,
            optional: bool = False) -> bool:
    got = shape_of(ctx, i)
    if got is None:
        if optional:
            return False
        raise OpError(f"{ctx.op_name}: required input {i} ({what}) is missing")
    if got != tuple(shape):
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' (input {i}) has shape {list(got)}, "
                      f"expected {list(shape)}")
    if np.dtype(ctx.dtypes[i]) != dtype:
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' (input {i}) is {np.dtype(ctx.dtypes[i]).name}; "
                      f"an integer LSTM (int8 input) needs {dtype.name}")
    return True


def _infer(ctx: InferCtx) -> list:
    a: QLstmAttrs = ctx.attrs
    f = a.base
    if len(ctx.shapes) not in (20, 24):
        raise OpError(f"{ctx.op_name}: expected 24 inputs (20 without layer norm), got {len(ctx.shapes)}")
    if f.cell_clip < 0 or f.proj_clip < 0:
        raise OpError(f"{ctx.op_name}: cell_clip and proj_clip must be >= 0 (0: no clipping)")
    if a.hidden is None:
        raise OpError(f"{ctx.op_name}: integer LSTM without its intermediate tensors' quantization")
    x = shape_of(ctx, 0)
    if x is None or len(x) != 3:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' must be 3-D "
                      f"([{'time, batch' if f.time_major else 'batch, time'}, features]), got "
                      f"{None if x is None else list(x)}")
    n_time, n_batch = (x[0], x[1]) if f.time_major else (x[1], x[0])
    n_input = x[2]
    w_f = shape_of(ctx, 2)
    r_f = shape_of(ctx, 6)
    if w_f is None or len(w_f) != 2 or r_f is None or len(r_f) != 2:
        raise OpError(f"{ctx.op_name}: input_to_forget_weights (input 2) and recurrent_to_forget_weights "
                      "(input 6) must be 2-D")
    n_cell, n_output = w_f[0], r_f[1]
    cifg = not _expect(ctx, 1, (n_cell, n_input), I8, _WEIGHTS[1], optional=True)
    for k in (2, 3, 4):
        _expect(ctx, k, (n_cell, n_input), I8, _WEIGHTS[k])
    if _expect(ctx, 5, (n_cell, n_output), I8, _WEIGHTS[5], optional=True) == cifg:
        raise OpError(f"{ctx.op_name}: input_to_input_weights and recurrent_to_input_weights must be "
                      "both present or both omitted (CIFG)")
    for k in (6, 7, 8):
        _expect(ctx, k, (n_cell, n_output), I8, _WEIGHTS[k])
    peep = [_expect(ctx, k, (n_cell,), I16, _PEEPHOLES[k], optional=True) for k in (9, 10, 11)]
    if peep[1] != peep[2] or (peep[0] and cifg) or (not cifg and peep[1] and not peep[0]):
        raise OpError(f"{ctx.op_name}: peephole weights (inputs 9-11) must be all present (cell_to_input "
                      "omitted with CIFG) or all omitted")
    if _expect(ctx, 12, (n_cell,), I32, _BIASES[12], optional=True) == cifg:
        raise OpError(f"{ctx.op_name}: input_gate_bias (input 12) must be present exactly when "
                      "input_to_input_weights is")
    for k in (13, 14, 15):
        _expect(ctx, k, (n_cell,), I32, _BIASES[k])
    has_proj = _expect(ctx, 16, (n_output, n_cell), I8, "projection_weights", optional=True)
    if _expect(ctx, 17, (n_output,), I32, "projection_bias", optional=True) and not has_proj:
        raise OpError(f"{ctx.op_name}: projection_bias (input 17) needs projection_weights")
    if not has_proj and n_output != n_cell:
        raise OpError(f"{ctx.op_name}: without projection weights n_output ({n_output}) must equal "
                      f"n_cell ({n_cell})")
    _expect(ctx, 18, (n_batch, n_output), I8, "output_state")
    _expect(ctx, 19, (n_batch, n_cell), I16, "cell_state")
    if a.ln_scales is not None:
        have = [_expect(ctx, 20 + k, (n_cell,), I16, f"{g}_layer_norm_coefficients", optional=True)
                for k, g in enumerate(("input", "forget", "cell", "output"))]
        if not all(have[1:]) or have[0] == cifg:
            raise OpError(f"{ctx.op_name}: layer-norm coefficients (inputs 20-23) must be all present "
                          "(input omitted with CIFG) or all omitted")
    try:
        integer_params(a)
    except (ValueError, OverflowError, ZeroDivisionError) as e:
        raise OpError(f"{ctx.op_name}: the quantization parameters give no valid multiplier ({e})") from None
    ibits = 15 + a.cell_scale
    if cifg and not 0 <= ibits <= 6:
        raise OpError(f"{ctx.op_name}: cell state scale 2**{a.cell_scale} with CIFG: LiteRT's integer LSTM "
                      "computes the hidden state from an uninitialised buffer here (its tanh takes 0 to 6 "
                      "integer bits); re-calibrate the model")
    if not 0 <= 30 + a.cell_scale <= 31:
        raise OpError(f"{ctx.op_name}: cell state scale 2**{a.cell_scale} is outside LiteRT's range")
    out = (n_time, n_batch, n_output) if f.time_major else (n_batch, n_time, n_output)
    return [(out, I8)]


# ---- LiteRT's parameters (Prepare) ------------------------------------------------------------------


def _f32(x: float) -> np.float32:
    return np.float32(x)


def _gate_scale(w: float | None, act: float, gate: float) -> float:
    """weight scale * activation scale / gate scale, in float32 as LiteRT computes it."""
    if w is None:
        return 1.0
    return float(_f32(_f32(w) * _f32(act)) / _f32(gate))


@dataclass(frozen=True)
class IntegerParams:
    """LiteRT's IntegerLstmParameter (the multipliers as (M, shift) pairs)."""

    input_mult: tuple[tuple[int, int], ...]  # per gate i, f, c, o: input x weights
    ln_mult: tuple[tuple[int, int], ...]  # per gate: the layer-norm coefficients' scale
    variance_guard: tuple[int, ...]  # per gate: the variance used when it comes out below 1
    recurrent_mult: tuple[tuple[int, int], ...]  # per gate: output state x recurrent weights
    peephole_mult: tuple[tuple[int, int], ...]  # per gate i, f, o (cell state x peephole)
    hidden_mult: tuple[int, int]
    proj_mult: tuple[int, int]
    hidden_zp: int
    cell_clip: int
    proj_clip: int


@cache
def integer_params(a: QLstmAttrs) -> IntegerParams:
    f = a.base
    ws = a.weight_scales
    hs, hzp = a.hidden  # type: ignore[misc]
    qm = qmath.quantize_multiplier
    gs = a.gate_scales or (_Q312,) * 4
    in_m = tuple(qm(_gate_scale(ws[g], a.input_scale, gs[g])) for g in range(4))
    rec_m = tuple(qm(_gate_scale(ws[4 + g], a.output_state_scale, gs[g])) for g in range(4))
    peep_m = []
    for w, g in zip(ws[8:11], (0, 1, 3)):
        peep_m.append(qm(1.0 if w is None else float(_f32(2.0 ** a.cell_scale * float(_f32(w)) / float(_f32(gs[g]))))))
    lns = [1.0 if s is None else float(_f32(s)) for s in (a.ln_scales or (None,) * 4)]
    ln_m = tuple(qm(s) for s in lns)
    guard = tuple(max(1, int(_f32(10000) * _f32(s))) for s in lns)
    hidden = float(_f32(2.0 ** -15 / float(_f32(hs)) * 2.0 ** -15))
    proj = 1.0 if a.projection_scale is None else float(
        _f32(_f32(a.projection_scale) * _f32(hs)) / _f32(a.output_state_scale))
    cs = _f32(2.0 ** a.cell_scale)
    cell_clip = 0
    if f.cell_clip > 0:
        cell_clip = int(min(max(_f32(f.cell_clip) / cs, _f32(-32768.0)), _f32(32767.0)))
    proj_clip = 0
    if f.proj_clip > 0:
        proj_clip = int(min(max(_f32(f.proj_clip) / _f32(a.output_state_scale), _f32(-128.0)), _f32(127.0)))
    return IntegerParams(input_mult=in_m, ln_mult=ln_m, variance_guard=guard, recurrent_mult=rec_m,
                         peephole_mult=tuple(peep_m),
                         hidden_mult=qm(hidden), proj_mult=qm(proj), hidden_zp=hzp,
                         cell_clip=cell_clip, proj_clip=proj_clip)


@cache
def logistic_table() -> np.ndarray:
    """The gates' int16 logistic (gemmlowp, Q3.12 in) for every input, indexed by input + 32768."""
    return qsigmoid16.gemmlowp_logistic16_table().astype(I64)


@cache
def tanh_table(integer_bits: int) -> np.ndarray:
    """gemmlowp's int16 tanh of `integer_bits` integer bits, indexed by input + 32768."""
    return qsigmoid16.gemmlowp_tanh16_table(integer_bits).astype(I64)


# ---- the kernel ---------------------------------------------------------------------------------------


def _wrap16(x: np.ndarray) -> np.ndarray:
    return ((x + 32768) & 0xFFFF) - 32768


def _sat16(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -32768, 32767)


def _accumulate(gate: np.ndarray, v: np.ndarray, w: np.ndarray, bias: np.ndarray,
                mult: tuple[int, int]) -> np.ndarray:
    """MatrixBatchVectorMultiplyAccumulate into an int16 gate: the int32 product plus bias,
    requantized, added to the gate with saturation."""
    acc = qmath.wrap32(v @ w.T + bias)
    return _sat16(qmath.mbqm(acc, *mult) + gate)


def _tdiv(a: np.ndarray, d: int) -> np.ndarray:
    """C integer division (truncates toward zero) by a positive d."""
    q = np.abs(a) // d
    return np.where(a < 0, -q, q)


def layer_norm(x: np.ndarray, w: np.ndarray, bias: np.ndarray, mult: tuple[int, int], guard: int) -> np.ndarray:
    """LiteRT's integer ApplyLayerNorm over the last axis of x (int16 gate sums): mean and
    variance with 10 extra bits (2**20 / n in integer division: exact for power-of-two n only, as
    in LiteRT), x scaled by the inverse standard deviation, times the coefficient plus the bias,
    rounded to 1/1024 and requantized by the coefficients' scale (shift + 12)."""
    n = x.shape[-1]
    mean = qmath.wrap32(_tdiv(x.sum(axis=-1) * 1024, n))
    var = (x * x).sum(axis=-1) * ((1 << 20) // n) - mean * mean
    var = qmath.wrap32(_tdiv(var, 1 << 20))
    var = np.where(var < 1, guard, var)
    inv_m, inv_s = qreduce.inv_sqrt_multiplier(var)
    rescaled = qmath.mbqm(qmath.wrap32(1024 * x - mean[..., None]), inv_m[..., None], inv_s[..., None])
    v3 = qmath.wrap32(qmath.wrap32(rescaled * w) + bias)
    v4 = _tdiv(np.where(v3 > 0, v3 + 512, v3 - 512), 1024)
    return _sat16(qmath.mbqm(qmath.wrap32(v4), mult[0], mult[1] + 12))


def _lookup(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    return table[x + 32768]


def lstm_integer(xs: np.ndarray, w: list, h: np.ndarray, c: np.ndarray, lnw: list, a: QLstmAttrs
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The time loop over xs [T, B, n_input] (int8, time-major); w: inputs 1-17 (0-based 0-16),
    lnw: inputs 20-23; None where omitted. Returns (outputs [T, B, n_output] int8, output state,
    cell state)."""
    p = integer_params(a)
    w64 = [None if v is None else np.asarray(v).astype(I64) for v in w]
    w_x, w_h, peep, bias = w64[0:4], w64[4:8], w64[8:11], w64[11:15]
    ln = [None if v is None else np.asarray(v).astype(I64) for v in lnw] if a.ln_scales is not None else None
    proj_w, proj_b = w64[15], w64[16]
    cifg = w_x[0] is None
    gates = (1, 2, 3) if cifg else (0, 1, 2, 3)
    # Prepare's zero-point-folded biases: gate bias - input_zp * row sums (input side), and
    # -output_state_zp * row sums (recurrent side)
    # (with layer normalisation the gate bias is added inside the normalisation instead)
    in_bias = {g: (0 if bias[g] is None or ln is not None else bias[g]) - a.input_zp * w_x[g].sum(axis=1)
               for g in gates}
    rec_bias = {g: -a.output_state_zp * w_h[g].sum(axis=1) for g in gates}
    sig, tanh3 = logistic_table(), tanh_table(3)
    ibits = 15 + a.cell_scale
    tanh_c = tanh_table(ibits) if 0 <= ibits <= 6 else None
    hm, hs = p.hidden_mult
    h = np.asarray(h).astype(I64)
    c = np.asarray(c).astype(I64)
    xs64 = np.asarray(xs).astype(I64)
    outs = []
    for t in range(xs64.shape[0]):
        x = xs64[t]
        act = {}
        for g in gates[:-1]:  # the output gate comes after the cell update (its peephole reads it)
            pre = np.zeros(c.shape, I64)
            pre = _accumulate(pre, x, w_x[g], in_bias[g], p.input_mult[g])
            pre = _accumulate(pre, h, w_h[g], rec_bias[g], p.recurrent_mult[g])
            if g != 2 and peep[0 if g == 0 else 1] is not None:
                k = 0 if g == 0 else 1
                pre = _sat16(qmath.mbqm(peep[k] * c, *p.peephole_mult[k]) + pre)
            if ln is not None:
                pre = layer_norm(pre, ln[g], bias[g], p.ln_mult[g], p.variance_guard[g])
            act[g] = _lookup(tanh3 if g == 2 else sig, pre)
        o_pre = _accumulate(np.zeros(c.shape, I64), x, w_x[3], in_bias[3], p.input_mult[3])
        o_pre = _accumulate(o_pre, h, w_h[3], rec_bias[3], p.recurrent_mult[3])
        fc = _wrap16(qmath.rdbpot(act[1] * c, 15))
        i_gate = 32767 - act[1] if cifg else act[0]
        ig = _wrap16(qmath.rdbpot(i_gate * act[2], 30 + a.cell_scale))
        c = _sat16(fc + ig)
        if p.cell_clip > 0:
            c = np.clip(c, -p.cell_clip, p.cell_clip)
        if peep[2] is not None:
            o_pre = _sat16(qmath.mbqm(peep[2] * c, *p.peephole_mult[2]) + o_pre)
        if ln is not None:
            o_pre = layer_norm(o_pre, ln[3], bias[3], p.ln_mult[3], p.variance_guard[3])
        o = _lookup(sig, o_pre)
        # LiteRT's ApplyTanh leaves its buffer (the input gate's) untouched outside 0..6 bits
        tc = _lookup(tanh_c, c) if tanh_c is not None else act[0]
        prod = o * tc
        if proj_w is None:
            h = np.clip(qmath.mbqm(prod, hm, hs) + p.hidden_zp, -128, 127)
        else:
            hid = np.clip(qmath.mbqm(prod, hm, hs) - p.hidden_zp, -128, 127)
            pb = (0 if proj_b is None else proj_b) + p.hidden_zp * proj_w.sum(axis=1)
            acc = qmath.wrap32(hid @ proj_w.T + pb)
            h = np.clip(qmath.mbqm(acc, *p.proj_mult) + a.output_state_zp, -128, 127)
            if p.proj_clip > 0:
                h = np.clip(h, -p.proj_clip, p.proj_clip)
        outs.append(h)
    out = np.stack(outs) if outs else np.zeros((0,) + h.shape, I64)
    return out.astype(np.int8), h.astype(np.int8), c.astype(np.int16)


def _reference(inputs: Sequence[np.ndarray | None], a: QLstmAttrs) -> list[np.ndarray]:
    f = a.base
    ins = list(inputs) + [None] * (24 - len(inputs))
    xs = np.asarray(ins[0])
    xs = xs if f.time_major else np.swapaxes(xs, 0, 1)
    out, h, c = lstm_integer(xs, ins[1:18], ins[18], ins[19], ins[20:24], a)
    _float_sequence.write_state(ins[18], h)
    _float_sequence.write_state(ins[19], c)
    return [np.ascontiguousarray(out if f.time_major else np.swapaxes(out, 0, 1))]


add_quantized(OP, QuantizedKernel(bind=_bind, reference=_reference, infer=_infer))
base.register(replace(base.registered(OP), bind_intermediates=bind_intermediates))
