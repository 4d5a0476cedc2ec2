"""Dynamic-range ("hybrid") quantized kernels: float32 activations, int8 weights with per-tensor
or per-channel scales, float32 outputs (QUANTIZATION.md §6): FULLY_CONNECTED, CONV_2D,
DEPTHWISE_CONV_2D, BATCH_MATMUL, TRANSPOSE_CONV, UNIDIRECTIONAL_SEQUENCE_RNN, SVDF, and
EMBEDDING_LOOKUP with int8 / uint8 tables (float32 or float16 output).

LiteRT runs these nodes in integers: it quantizes each batch row of the float input on the fly,
multiplies with the int8 weights in int32 and scales the integer result back to float. The
numbers therefore differ from the float op on dequantized weights; the kernels here repeat
LiteRT's x86 steps and match its builtin kernels bit for bit (measured, tests/ops/test_qhybrid.py):

* input quantization per batch row (FC / BATCH_MATMUL / RNN: one row of `input_size` values;
  conv: one whole image), tensor_utils::BatchQuantizeFloats as built on x86 (the NEON code
  through NEON_2_SSE):
  - symmetric: range = max(|min|, |max|) in float32, sf = range / 127, q = round(x * (127 /
    range)), clipped to +-127; an all-zero row gives q = 0, sf = 1;
  - asymmetric (option `asymmetric_quantize_inputs` of FULLY_CONNECTED / BATCH_MATMUL / RNN;
    per-channel CONV_2D and DEPTHWISE_CONV_2D always): rmin = min(0, min x), rmax = max(0, max x),
    scale = double(float32(rmax - rmin)) / 255 (the subtraction in float32), the zero point from
    whichever end has the smaller error (double), nudged into [-128, 127]; sf = float(scale);
    q = round(x * float(1 / sf)) + zp (the zero point is added AFTER rounding), clipped;
  - rounding: blocks of 8 values per row use trunc(y +- 0.5) with the add in float32 (so
    0.49999997 rounds to 1), the row's last n mod 8 values std::round (half away from zero);
* integer accumulation, exact here, minus rowsum(w) * zp for asymmetric inputs; LiteRT's SSE dot
  product (FULLY_CONNECTED, RNN, per-tensor CONV_2D with C_out mod 4 != 0) mis-multiplies -128
  weights on blocks of 16 columns; reproduced (`_minus128_error`);
* back to float32 in LiteRT's multiplication order (per op, see `_scale_out`, `_spatial_scale`),
  then + bias and the fused activation;
* TRANSPOSE_CONV (reference_ops::HybridTransposeConv, which LiteRT runs for every kernel type)
  is the exception: it quantizes each image asymmetrically, then scatters in float32 — every
  product (q - zp) * w, exact in int32, becomes float32((float32(p) * sw[oc]) * sf_b) and is
  added to a float32 output that starts at zero, in the scatter's order (input row, column,
  channel; measured: any other order or product misses LiteRT by an ulp), then + bias, clamp.

The float ops (ops/nn.py, ops/image.py, ops/sequence.py) stay ONE OpDef each: `_extend` wraps the
registered definition so that nodes bound to `HybridAttrs` run here and every other node (float,
or integer from ops/qnn.py and other modules) runs as before. The `asymmetric_quantize_inputs`
option is not in the float ops' attrs, so their parse is wrapped to keep it (a subclass of the
float attrs; float kernels ignore the field).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tflite_jit.ops import base, image, nn, qnn, sequence  # noqa: F401  (float, int8 kernels first)
from tflite_jit.ops.base import InferCtx, OpError, Quantized, ShapeDtype
from tflite_jit.ops.common import CLAMPING_ACTIVATIONS, F16, F32, I8, U8, apply_activation
from tflite_jit.ops.quant import quant_params


@dataclass(frozen=True)
class HybridAttrs(Quantized):
    """`w_scales`: the weights' float32 scales (one, or one per output channel / table row);
    `asymmetric`: how the float input is quantized (see the module docstring)."""

    w_scales: tuple[float, ...]
    asymmetric: bool
    w_dtype: str = "int8"
    out_dtype: str = "float32"
    qdim: int = 0
    quantized: bool = True


@dataclass(frozen=True)
class FcOptions(nn.FcAttrs):
    asymmetric_quantize_inputs: bool = False


@dataclass(frozen=True)
class BmmOptions(nn.BatchMatMulAttrs):
    asymmetric_quantize_inputs: bool = False


@dataclass(frozen=True)
class RnnOptions(sequence.RnnAttrs):
    asymmetric_quantize_inputs: bool = False


@dataclass(frozen=True)
class SvdfOptions(sequence.SvdfAttrs):
    asymmetric_quantize_inputs: bool = False


@dataclass(frozen=True)
class SvdfHybridAttrs(HybridAttrs):
    """SVDF: `w_scales` is weights_feature's scale, `t_scale` the int8 weights_time's."""

    t_scale: float = 0.0
    t_dtype: str = "int8"

    @property
    def state_inputs(self) -> tuple[int, ...]:
        return self.base.state_inputs


@dataclass(frozen=True)
class RnnHybridAttrs(HybridAttrs):
    """UNIDIRECTIONAL_SEQUENCE_RNN: `w_scales` is the input weights' scale, `r_scale` the
    recurrent weights'."""

    r_scale: float = 0.0
    r_dtype: str = "int8"

    @property
    def state_inputs(self) -> tuple[int, ...]:
        return self.base.state_inputs


# ---- input quantization (portable_tensor_utils' Symmetric/AsymmetricQuantizeFloats) ----------------

def quantize_rows(x: np.ndarray, asymmetric: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x [B, n] float32 -> (q [B, n] int64, scale [B] float32, zero point [B] int64), as LiteRT's
    x86 build does it (the NEON code through NEON_2_SSE, tensor_utils::BatchQuantizeFloats)."""
    x = np.asarray(x, F32)
    b, n = x.shape
    if n == 0:
        return np.zeros(x.shape, np.int64), np.ones(b, F32), np.zeros(b, np.int64)
    lo = np.minimum(np.float32(0), x.min(axis=1)).astype(F32)
    hi = np.maximum(np.float32(0), x.max(axis=1)).astype(F32)
    if not asymmetric:
        rng = np.maximum(np.abs(lo), np.abs(hi)).astype(F32)
        zero = rng == 0
        safe = np.where(zero, np.float32(1), rng).astype(F32)
        sf = np.where(zero, np.float32(1), (safe / np.float32(127)).astype(F32)).astype(F32)
        inv = (np.float32(127) / safe).astype(F32)
        q = np.clip(_round_rows((x * inv[:, None]).astype(F32)), -127, 127)
        return np.where(zero[:, None], 0, q).astype(np.int64), sf, np.zeros(b, np.int64)
    same = lo == hi
    # (rmax - rmin) is a float32 subtraction; the rest of the scale / zero point math is double.
    scale = np.where(same, 1.0, (hi - lo).astype(F32).astype(np.float64) / 255.0)
    rmin, rmax = lo.astype(np.float64), hi.astype(np.float64)
    err_min = 128.0 + np.abs(rmin / scale)
    err_max = 127.0 + np.abs(rmax / scale)
    zpd = np.where(err_min < err_max, -128.0 - rmin / scale, 127.0 - rmax / scale)
    zp = np.where(zpd <= -128.0, -128, np.where(zpd >= 127.0, 127, _round_away(zpd))).astype(np.int64)
    sf = scale.astype(F32)
    inv = (1.0 / sf.astype(np.float64)).astype(F32)
    # The zero point is added after rounding (integer add), not before as the portable code does.
    q = np.clip(_round_rows((x * inv[:, None]).astype(F32)) + zp[:, None], -128, 127)
    q = np.where(same[:, None], 0, q).astype(np.int64)
    return q, np.where(same, np.float32(1), sf).astype(F32), np.where(same, 0, zp).astype(np.int64)


def _round_rows(y: np.ndarray) -> np.ndarray:
    """Round y [B, n] float32 to integers the way the quantizer does: blocks of 8 from the start
    of each row go through the vector RoundToNearest (trunc(y +- 0.5) with the add in float32, so
    0.49999997 becomes 1), the n mod 8 tail through std::round (half away from zero)."""
    head = y.shape[1] & ~7
    out = _round_away(y).astype(np.int64)
    if head:
        v = y[:, :head]
        half = np.where(v < 0, np.float32(-0.5), np.float32(0.5)).astype(F32)
        out[:, :head] = np.trunc((v + half).astype(F32)).astype(np.int64)
    return out


def _round_away(x: np.ndarray) -> np.ndarray:
    """C round() / roundf(): half away from zero. Computed in float64: in float32, |x| + 0.5
    itself rounds (0.49999997 + 0.5 -> 1.0), which C's roundf does not do."""
    x = np.asarray(x, np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _finish(y: np.ndarray, bias: np.ndarray | None, act: str, all_acts: bool = False) -> np.ndarray:
    """+ bias, then the fused activation: the clamps (convolutions ignore TANH / SIGN_BIT, as
    their float kernels do); `all_acts` (FULLY_CONNECTED's ApplyActivationToVector) also applies
    TANH and SIGN_BIT."""
    y = y.astype(F32, copy=False)
    if bias is not None:
        y = (y + bias.reshape(-1).astype(F32)).astype(F32)
    if act in CLAMPING_ACTIVATIONS or all_acts:
        y = apply_activation(y, act)
    return np.ascontiguousarray(y, dtype=F32)


# ---- binding --------------------------------------------------------------------------------------
# Binding records the weights' quantization; the shape rules check it against the shapes (the
# node's shapes may only be final at allocate time).

def _is_hybrid(ins: list, outs: list) -> bool:
    """float32 input and output with non-float weights: LiteRT's hybrid path (the weight type
    itself is checked by the shape rule, so unsupported types get a clear error)."""
    return (len(ins) > 1 and ins[0] is not None and ins[1] is not None and bool(outs)
            and np.dtype(ins[0].dtype) == F32 and np.dtype(outs[0].dtype) == F32
            and np.dtype(ins[1].dtype) not in (F32, F16))


def _bind_weights(fa: Any, t: Any, asymmetric: bool, out_dtype: str = "float32") -> HybridAttrs:
    q = quant_params(t)
    # Weights without quantization parameters: LiteRT reads the legacy scale, 0, so every
    # product vanishes (output = bias); we do the same. Weight zero points are never read by
    # LiteRT's hybrid kernels, so they are ignored here too.
    scales, qdim = ((0.0,), 0) if q is None else (q[0], q[2])
    return HybridAttrs(fa, tuple(float(x) for x in scales), asymmetric, np.dtype(t.dtype).name,
                       out_dtype, qdim, q is not None)


def _bind_fc(fa: Any, ins: list, outs: list) -> HybridAttrs | None:
    if not _is_hybrid(ins, outs):
        return None
    return _bind_weights(fa, ins[1], bool(getattr(fa, "asymmetric_quantize_inputs", False)))


def _bind_conv(op: str, fa: Any, ins: list, outs: list) -> HybridAttrs | None:
    if not _is_hybrid(ins, outs):
        return None
    h = _bind_weights(fa, ins[1], False)
    # Per-channel hybrid convolutions quantize the input asymmetrically (EvalHybridPerChannel);
    # per-tensor CONV_2D symmetrically (EvalHybrid). Hybrid depthwise is per-channel only.
    return replace(h, asymmetric=len(h.w_scales) > 1 or op == "DEPTHWISE_CONV_2D")


def _bind_bmm(fa: Any, ins: list, outs: list) -> HybridAttrs | None:
    if not _is_hybrid(ins, outs):
        return None
    return _bind_weights(fa, ins[1], bool(getattr(fa, "asymmetric_quantize_inputs", False)))


def _bind_embedding(fa: Any, ins: list, outs: list) -> HybridAttrs | None:
    if len(ins) < 2 or ins[1] is None or not outs or np.dtype(ins[1].dtype) in (F32, F16):
        return None
    if np.dtype(outs[0].dtype) not in (F32, F16) or np.dtype(ins[1].dtype) == np.dtype(outs[0].dtype):
        return None
    t = ins[1]
    q = quant_params(t)
    if q is not None and q[1][0] != 0:
        raise OpError(f"EMBEDDING_LOOKUP: table '{t.name}' has zero point {q[1][0]}; LiteRT's hybrid "
                      "lookup (quantized table, float output) supports symmetric quantization only "
                      "(zero point 0)")
    return _bind_weights(fa, t, False, np.dtype(outs[0].dtype).name)


# ---- shape rules ----------------------------------------------------------------------------------

_WEIGHT_TYPES = {
    # uint8 weights are read through an int8 pointer by FULLY_CONNECTED and CONV_2D (LiteRT runs
    # them, reinterpreting the bytes; so do we). DEPTHWISE_CONV_2D and BATCH_MATMUL reject them.
    "FULLY_CONNECTED": (I8, U8), "CONV_2D": (I8, U8), "DEPTHWISE_CONV_2D": (I8,),
    "BATCH_MATMUL": (I8,), "EMBEDDING_LOOKUP": (I8, U8)}


def _check_hybrid(ctx: InferCtx, n_out: int, what: str) -> None:
    """Weight type, bias type and the number of weight scales against the output channels."""
    a: HybridAttrs = ctx.attrs
    op = ctx.op_name
    wdt = np.dtype(a.w_dtype)
    ok = _WEIGHT_TYPES[op]
    if wdt not in ok:
        # (LiteRT's hybrid CONV_2D with int16 weights runs but silently returns the bias only.)
        raise OpError(f"{op}: weights '{ctx.name(1)}' are {wdt.name}; with a float32 input {op} runs "
                      f"LiteRT's hybrid kernel, which takes {' or '.join(d.name for d in ok)} weights; "
                      "quantize them to int8 (or store float32 weights)")
    for i in range(2, len(ctx.dtypes)):
        if ctx.dtypes[i] is not None and np.dtype(ctx.dtypes[i]) != F32:
            raise OpError(f"{op}: bias '{ctx.name(i)}' is {np.dtype(ctx.dtypes[i]).name}; a hybrid "
                          f"{op} (float32 input, int8 weights) takes a float32 bias")
    n = len(a.w_scales)
    if any(not np.isfinite(x) or x < 0 for x in a.w_scales):
        raise OpError(f"{op}: weights '{ctx.name(1)}' have scales {list(a.w_scales)[:4]}...; weight "
                      "scales must be finite and >= 0")
    if op == "DEPTHWISE_CONV_2D":
        if not a.quantized or n != n_out:
            raise OpError(f"{op}: int8 filter '{ctx.name(1)}' has {n if a.quantized else 'no'} "
                          f"scale(s); LiteRT's hybrid depthwise kernel needs per-channel quantization "
                          f"with one scale per output channel ({n_out}) on dimension 3")
    elif op == "CONV_2D":
        if n != 1 and n != n_out:
            raise OpError(f"{op}: filter '{ctx.name(1)}' has {n} scales for {n_out} output channels; "
                          "give one scale, or one per output channel (dimension 0)")
        groups = ctx.shapes[0][3] // max(ctx.shapes[1][3], 1)
        if groups != 1 and wdt != I8:
            raise OpError(f"{op}: grouped hybrid convolution ({groups} groups) takes int8 filters; "
                          f"filter '{ctx.name(1)}' is {wdt.name}")
        if n != 1 and wdt != I8:
            # LiteRT runs it, but its per-channel hybrid kernel does not read uint8 filters
            # consistently (neither as int8 nor as uint8 values); refused instead.
            raise OpError(f"{op}: filter '{ctx.name(1)}' is {wdt.name} with per-channel scales; "
                          "per-channel hybrid convolution takes int8 filters")
        if groups != 1 and n == 1:
            raise OpError(f"{op}: grouped hybrid convolution ({groups} groups) needs per-channel "
                          f"scales on filter '{ctx.name(1)}' (one per output channel, {n_out}); "
                          "LiteRT rejects a per-tensor scale here")
    elif n != 1 and n < n_out:
        # LiteRT indexes the scales by output channel whatever the quantized dimension: fewer
        # scales than channels would be read out of bounds there.
        raise OpError(f"{op}: weights '{ctx.name(1)}' have {n} scales (dimension {a.qdim}) but "
                      f"{n_out} {what}; per-channel weights need one scale per {what[:-1]}")


def _infer_fc(prev: base.OpDef) -> Callable[[InferCtx], list[ShapeDtype]]:
    def infer(ctx: InferCtx) -> list[ShapeDtype]:
        a: HybridAttrs = ctx.attrs
        # The hybrid kernel applies any fused activation to the float result (TANH and SIGN_BIT
        # too, which the float kernel rejects), so the float shape rule sees NONE.
        fa = replace(a, base=replace(a.base, activation="NONE"))
        fctx = InferCtx(ctx.op_name, fa, ctx.shapes, ctx.dtypes, ctx.values, ctx.tensor_names)
        out = _float_infer(prev, fctx)
        _check_hybrid(ctx, ctx.shapes[1][0], "output units")
        return out
    return infer


def _infer_conv(prev: base.OpDef) -> Callable[[InferCtx], list[ShapeDtype]]:
    def infer(ctx: InferCtx) -> list[ShapeDtype]:
        out = _float_infer(prev, ctx)
        axis = 3 if ctx.op_name == "DEPTHWISE_CONV_2D" else 0
        _check_hybrid(ctx, ctx.shapes[1][axis], "output channels")
        return out
    return infer


def _infer_bmm(prev: base.OpDef) -> Callable[[InferCtx], list[ShapeDtype]]:
    def infer(ctx: InferCtx) -> list[ShapeDtype]:
        out = _float_infer(prev, ctx)
        ys = ctx.shapes[1]
        n = ys[-2] if ctx.attrs.base.adj_y else ys[-1]
        _check_hybrid(ctx, n, "output columns")
        return out
    return infer


def infer_embedding(ctx: InferCtx) -> list[ShapeDtype]:
    a: HybridAttrs = ctx.attrs
    fctx = InferCtx(ctx.op_name, a.base, ctx.shapes, [ctx.dtypes[0], F32], ctx.values, ctx.tensor_names)
    ((shape, _),) = image.infer_embedding(fctx)
    wdt = np.dtype(a.w_dtype)
    if wdt not in (I8, U8):
        # LiteRT's hybrid lookup reads any such table through an int8 pointer with the row stride
        # of an int8 table: for int16 it returns bytes of the wrong rows. Rejected instead.
        raise OpError(f"EMBEDDING_LOOKUP: table '{ctx.name(1)}' is {wdt.name} and the output is "
                      f"{a.out_dtype}; a quantized table read into a float output must be int8 or "
                      "uint8 (LiteRT misreads other types)")
    rows = ctx.shapes[1][0]
    if len(a.w_scales) > 1 and (a.qdim != 0 or len(a.w_scales) != rows):
        raise OpError(f"EMBEDDING_LOOKUP: table '{ctx.name(1)}' has {len(a.w_scales)} scales along "
                      f"dimension {a.qdim}; per-row quantization needs one scale per row ({rows}) on "
                      "dimension 0")
    return [(shape, np.dtype(a.out_dtype))]


def _float_infer(prev: base.OpDef, ctx: InferCtx) -> list[ShapeDtype]:
    return prev.infer(InferCtx(ctx.op_name, ctx.attrs.base, ctx.shapes, ctx.dtypes, ctx.values,
                               ctx.tensor_names))


# ---- kernels --------------------------------------------------------------------------------------

def _channel_scale(a: HybridAttrs, n: int) -> np.ndarray:
    """The weight scale of each of n output channels (LiteRT indexes per-channel scales by output
    channel; the shape rule made sure there are at least n)."""
    sc = np.asarray(a.w_scales, F32)
    return np.broadcast_to(sc, (n,)) if sc.size == 1 else sc[:n]


def _int8(w: np.ndarray) -> np.ndarray:
    """The weights as LiteRT's hybrid kernels read them: through an int8 pointer (uint8 bytes
    >= 128 become negative)."""
    return w.view(np.int8) if w.dtype == np.uint8 else w


def _scale_out(acc: np.ndarray, sf: np.ndarray, a: HybridAttrs, n_out: int) -> np.ndarray:
    """float32(acc) * (sf_b * sw), LiteRT's order: per tensor it folds sw into sf_b first."""
    accf = acc.astype(F32)
    if len(a.w_scales) == 1:
        s = (sf * np.float32(a.w_scales[0])).astype(F32)
        return (accf * s[:, None]).astype(F32)
    sw = _channel_scale(a, n_out)
    s = (sf[:, None] * sw[None, :]).astype(F32)
    return (accf * s).astype(F32)


def _minus128_error(q: np.ndarray, w: np.ndarray) -> np.ndarray | int:
    """What LiteRT's x86 hybrid dot product adds to q [..., depth] @ w.T [units, depth] when w holds
    -128: its blocks of 16 columns multiply through a sign trick, |q| * int8(sign(q) * w), which
    wraps for w = -128 and q < 0, counting 128 * q instead of -128 * q (int8 weights are meant to
    lie in [-127, 127]; uint8 weights read as int8 reach -128). The last depth mod 16 columns
    are exact."""
    depth = w.shape[1]
    head = depth & ~15
    bad = w[:, :head] == -128
    if not head or not bad.any():
        return 0
    # q is [rows, depth] (FC) or the windows [N, OH, OW, KH, KW, C] (conv, patch order = filter's)
    lead = q.shape[:1] if q.ndim == 2 else q.shape[:3]
    qm = np.minimum(q.reshape(lead + (depth,)), 0)[..., :head].astype(np.float64)
    return 256 * np.rint(qm @ bad.T.astype(np.float64)).astype(np.int64)


def _fc_reference(inputs: Sequence[np.ndarray | None], a: HybridAttrs) -> list[np.ndarray]:
    x, w = inputs[0], _int8(inputs[1])
    b = inputs[2] if len(inputs) > 2 else None
    f = a.base
    units, depth = w.shape
    rows = x.size // depth
    xm = x.reshape(-1)[:rows * depth].reshape(rows, depth)
    q, sf, zp = quantize_rows(xm, a.asymmetric)
    wf = w.astype(np.float64)
    acc = np.rint(q.astype(np.float64) @ wf.T).astype(np.int64)
    # LiteRT's x86 int8 dot product runs blocks of 16 columns through a sign trick,
    # |q| * int8(sign(q) * w), which wraps for w = -128 and q < 0: such a product counts as
    # 128 * q instead of -128 * q (weights are meant to lie in [-127, 127]; uint8 weights read
    # as int8 reach -128). The last depth mod 16 columns are exact. Reproduced here.
    acc = acc + _minus128_error(q, w)
    if a.asymmetric:
        acc = acc - zp[:, None] * w.astype(np.int64).sum(axis=1)[None, :]
    y = _scale_out(acc, sf, a, units)
    if f.keep_num_dims:
        y = y.reshape(x.shape[:-1] + (units,))
    return [_finish(y, b, f.activation, all_acts=True)]


_FLOAT: dict[str, base.OpDef] = {}


def _image_quantize(x: np.ndarray, asymmetric: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = x.shape[0]
    q, sf, zp = quantize_rows(x.reshape(n, -1), asymmetric)
    return q.reshape(x.shape), sf, zp


def _conv_reference(inputs: Sequence[np.ndarray | None], a: HybridAttrs) -> list[np.ndarray]:
    x, w = inputs[0], _int8(inputs[1])
    b = inputs[2] if len(inputs) > 2 else None
    f: nn.ConvAttrs = a.base
    co, kh, kw, ci = w.shape
    groups = x.shape[3] // ci
    q, sf, zp = _image_quantize(x, a.asymmetric)
    # Taps outside the image are skipped by LiteRT, i.e. they contribute (zp - zp) * w = 0.
    centered = q.astype(np.float64) - zp[:, None, None, None].astype(np.float64)
    win = nn.windows(centered, (kh, kw), f.stride, f.dilation, f.padding, 0.0)
    acc = np.rint(nn.conv_windows(win, w.astype(np.float64), groups)).astype(np.int64)
    if not a.asymmetric and co % 4:
        # Per tensor, LiteRT multiplies the im2col rows with the FC routine: through ruy (exact)
        # when the output channels are a multiple of 4, else the SSE dot product whose -128
        # products go wrong (see _minus128_error).
        acc = acc + _minus128_error(win, w.reshape(co, -1))
    if groups != 1:  # grouped: LiteRT's reference HybridConvPerChannel, (acc * sw[c]) * sf_b
        y = ((acc.astype(F32) * _channel_scale(a, co)).astype(F32)
             * np.asarray(sf, F32).reshape(-1, 1, 1, 1)).astype(F32)
        return [_finish(y, b, f.activation)]
    return [_finish(_spatial_scale(acc, sf, a, co), b, f.activation)]


def _spatial_scale(acc: np.ndarray, sf: np.ndarray, a: HybridAttrs, co: int,
                   depthwise: bool = False) -> np.ndarray:
    """acc [N, OH, OW, C] -> float32 in the kernels' multiplication order (measured on LiteRT):
    CONV_2D float(acc) * (sf_b * sw[c]) (the per-tensor path folds sw into sf_b, the same
    product); DEPTHWISE_CONV_2D (float(acc) * sw[c]) * sf_b on blocks of 4 output channels
    and (float(acc) * sf_b) * sw[c] on the last C mod 4 channels (its scalar tail)."""
    accf = acc.astype(F32)
    sf = np.asarray(sf, F32).reshape(-1, 1, 1, 1)
    sw = _channel_scale(a, co)
    if not depthwise:
        return (accf * (sf * sw).astype(F32)).astype(F32)
    head = co & ~3
    out = np.empty(acc.shape, F32)
    out[..., :head] = ((accf[..., :head] * sw[:head]).astype(F32) * sf).astype(F32)
    out[..., head:] = ((accf[..., head:] * sf).astype(F32) * sw[head:]).astype(F32)
    return out


def _depthwise_reference(inputs: Sequence[np.ndarray | None], a: HybridAttrs) -> list[np.ndarray]:
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    f: nn.ConvAttrs = a.base
    _, kh, kw, co = w.shape
    c = x.shape[3]
    m = co // c
    q, sf, zp = _image_quantize(x, a.asymmetric)
    centered = q.astype(np.float64) - zp[:, None, None, None].astype(np.float64)
    win = nn.windows(centered, (kh, kw), f.stride, f.dilation, f.padding, 0.0)
    taps = w.astype(np.float64).reshape(kh, kw, c, m)
    acc = np.zeros(win.shape[:3] + (c, m), np.float64)
    for i in range(kh):
        for j in range(kw):
            acc += win[:, :, :, i, j, :, None] * taps[i, j]
    acc = np.rint(acc.reshape(acc.shape[:3] + (co,))).astype(np.int64)
    return [_finish(_spatial_scale(acc, sf, a, co, depthwise=True), b, f.activation)]


def _bmm_reference(inputs: Sequence[np.ndarray | None], a: HybridAttrs) -> list[np.ndarray]:
    x, y = inputs[0], inputs[1]
    f = a.base
    if f.adj_x:
        x = np.swapaxes(x, -1, -2)
    if f.adj_y:
        y = np.swapaxes(y, -1, -2)
    m, k = x.shape[-2:]
    n = y.shape[-1]
    batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    xb = np.broadcast_to(x, batch + (m, k)).reshape(-1, k)
    q, sf, zp = quantize_rows(np.ascontiguousarray(xb), a.asymmetric)
    q = q.reshape(batch + (m, k))
    yb = np.broadcast_to(y, batch + (k, n))
    acc = np.rint(np.matmul(q.astype(np.float64), yb.astype(np.float64))).astype(np.int64)
    if a.asymmetric:
        colsum = yb.astype(np.int64).sum(axis=-2)  # [..., n]
        acc = acc - zp.reshape(batch + (m, 1)) * colsum[..., None, :]
    sf = sf.reshape(batch + (m, 1))
    if len(a.w_scales) == 1:
        s = (sf * np.float32(a.w_scales[0])).astype(F32)
    else:
        s = (sf * _channel_scale(a, n)).astype(F32)
    return [np.ascontiguousarray((acc.astype(F32) * s).astype(F32), dtype=F32)]


def _embedding_reference(inputs: Sequence[np.ndarray | None], a: HybridAttrs) -> list[np.ndarray]:
    ids, table = np.asarray(inputs[0]).reshape(-1), np.asarray(inputs[1])
    image.check_ids(ids, table.shape[0], "EMBEDDING_LOOKUP")
    idx = ids.astype(np.int64)
    # LiteRT reads uint8 tables through an int8 pointer: values >= 128 come out negative.
    rows = table.view(np.int8)[idx].astype(F32)
    sc = np.asarray(a.w_scales, F32)
    s = sc[idx] if sc.size > 1 else np.full(idx.shape, sc[0], F32)
    out = (rows * s.reshape((-1,) + (1,) * (rows.ndim - 1))).astype(F32)
    return [np.ascontiguousarray(out.astype(np.dtype(a.out_dtype)))]


def _hybrid_matvec(v: np.ndarray, w: np.ndarray, w_scale: float, asymmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """One MatrixBatchVectorMultiplyAccumulate of the recurrent kernels: v [B, n] float32 is
    quantized per row, multiplied with int8 w [units, n]; returns (float32(acc) * (sf * sw)
    per row [B, units], rows that are all zero)."""
    q, sf, zp = quantize_rows(v, asymmetric)
    return quantized_matvec(q, sf, zp, w, w_scale, asymmetric), ~np.any(v != 0, axis=1)


def quantized_matvec(q: np.ndarray, sf: np.ndarray, zp: np.ndarray, w: np.ndarray, w_scale: float,
                     asymmetric: bool) -> np.ndarray:
    """The product half of `_hybrid_matvec` on rows quantize_rows already quantized (LiteRT
    quantizes a step's input once for all the gates that read it)."""
    acc = np.rint(q.astype(np.float64) @ w.astype(np.float64).T).astype(np.int64)
    acc = acc + _minus128_error(q, w)
    if asymmetric:
        acc = acc - zp[:, None] * w.astype(np.int64).sum(axis=1)[None, :]
    s = (sf * np.float32(w_scale)).astype(F32)
    return (acc.astype(F32) * s[:, None]).astype(F32)


def _rnn_reference(inputs: Sequence[np.ndarray | None], a: RnnHybridAttrs) -> list[np.ndarray]:
    """kernel_utils::RnnBatchStep (hybrid): out = bias; out += W x_t; out += R h; activation.
    Time-major runs all batches per step (a step whose whole input is zero skips its product);
    batch-major runs each batch row alone (the skip is per row)."""
    f = a.base
    xs = sequence.to_time_major(inputs[0], f.time_major)
    w, r = _int8(inputs[1]), _int8(inputs[2])
    b = np.asarray(inputs[3], F32)
    h = np.asarray(inputs[4], F32).copy()
    n_time, n_batch, _ = xs.shape
    outs = []
    for t in range(n_time):
        out = np.broadcast_to(b, h.shape).astype(F32)
        for v, wt, sc in ((xs[t], w, a.w_scales[0]), (h, r, a.r_scale)):
            prod, zero = _hybrid_matvec(np.asarray(v, F32), wt, sc, a.asymmetric)
            skip = zero if not f.time_major else np.full(n_batch, bool(zero.all()))
            out = np.where(skip[:, None], out, (out + prod).astype(F32)).astype(F32)
        h = apply_activation(out, f.activation).astype(F32)
        outs.append(h)
    sequence.write_state(inputs[4], h)
    out = np.stack(outs) if outs else np.zeros((0,) + h.shape, F32)
    return [sequence.from_time_major(out, f.time_major)]


def _bind_two_weights(cls: type, fa: Any, ins: list) -> Any:
    """Hybrid attrs (of type `cls`) of an op whose inputs 1 and 2 are both weights (RNN's input
    and recurrent weights, SVDF's feature and time weights): input 2's scale and type come last."""
    if len(ins) < 3 or ins[0] is None or ins[1] is None or ins[2] is None:
        return None
    if np.dtype(ins[0].dtype) != F32 or np.dtype(ins[1].dtype) in (F32, F16):
        return None
    h = _bind_weights(fa, ins[1], bool(getattr(fa, "asymmetric_quantize_inputs", False)))
    q2 = quant_params(ins[2])
    return cls(h.base, h.w_scales, h.asymmetric, h.w_dtype, h.out_dtype, h.qdim, h.quantized,
               0.0 if q2 is None else float(q2[0][0]), np.dtype(ins[2].dtype).name)


def _bind_rnn(fa: Any, ins: list, outs: list) -> RnnHybridAttrs | None:
    return _bind_two_weights(RnnHybridAttrs, fa, ins)


def _infer_rnn(prev: base.OpDef) -> Callable[[InferCtx], list[ShapeDtype]]:
    def infer(ctx: InferCtx) -> list[ShapeDtype]:
        a: RnnHybridAttrs = ctx.attrs
        op = ctx.op_name
        for i, dt in ((1, a.w_dtype), (2, a.r_dtype)):
            if np.dtype(dt) not in (I8, U8):
                raise OpError(f"{op}: weights '{ctx.name(i)}' (input {i}) are {dt}; a hybrid {op} "
                              "(float32 input) takes int8 weights for inputs 1 and 2")
        if len(a.w_scales) != 1:
            raise OpError(f"{op}: weights '{ctx.name(1)}' are quantized per channel; LiteRT's hybrid "
                          f"{op} uses one scale per weight tensor")
        if a.base.activation == "TANH":
            # LiteRT applies TANH with its own vectorised approximation; we match it only to an
            # ulp or two, and the recurrence re-quantizes the state every step, where one ulp
            # can move a quantized value and the difference then grows past the float contract.
            raise OpError(f"{op}: a hybrid {op} (int8 weights) with fused TANH is not supported "
                          "yet (its result cannot be matched to LiteRT within 1e-4); use float32 "
                          "weights, or a NONE / RELU / RELU6 / RELU_N1_TO_1 activation")
        dts = list(ctx.dtypes)
        dts[1] = dts[2] = np.dtype(F32)
        fctx = InferCtx(op, a.base, ctx.shapes, dts, ctx.values, ctx.tensor_names)
        return prev.infer(fctx)
    return infer


def _parse_rnn(o: dict[str, Any]) -> Any:
    fa = _FLOAT["UNIDIRECTIONAL_SEQUENCE_RNN"].parse(o)
    if o.get("asymmetric_quantize_inputs"):
        return RnnOptions(fa.activation, fa.time_major, fa.state_inputs, True)
    return fa


def _svdf_reference(inputs: Sequence[np.ndarray | None], a: SvdfHybridAttrs) -> list[np.ndarray]:
    """reference_ops::EvalHybridSVDF: the state shifts one step; the newest column is the hybrid
    product weights_feature x input (skipped, 0, when the whole input is zero); the time weights
    (int8 ones dequantized as float(q) * scale) are applied in float as the float SVDF does."""
    f = a.base
    x = np.asarray(inputs[0], F32)
    wf = _int8(inputs[1])
    wt = np.asarray(inputs[2])
    wt = (wt.astype(F32) * np.float32(a.t_scale)).astype(F32)
    bias = inputs[3]
    n_batch = x.shape[0]
    n_filters, memory = wt.shape
    state = np.asarray(inputs[4], F32).reshape(n_batch, n_filters, memory)
    newest = np.zeros((n_batch, n_filters), F32)
    if np.any(x != 0):
        prod, _ = _hybrid_matvec(x, wf, a.w_scales[0], a.asymmetric)
        newest = (newest + prod).astype(F32)
    new_state = np.concatenate([state[:, :, 1:], newest[:, :, None]], axis=2)
    per_filter = np.einsum("bfm,fm->bf", new_state, wt).astype(F32)
    y = per_filter.reshape(n_batch, n_filters // f.rank, f.rank).sum(axis=2, dtype=F32)
    if bias is not None:
        y = (y + np.asarray(bias, F32)).astype(F32)
    y = apply_activation(y.astype(F32), f.activation).astype(F32)
    sequence.write_state(inputs[4], new_state.reshape(n_batch, n_filters * memory))
    return [y]


def _bind_svdf(fa: Any, ins: list, outs: list) -> SvdfHybridAttrs | None:
    return _bind_two_weights(SvdfHybridAttrs, fa, ins)


def _infer_svdf(prev: base.OpDef) -> Callable[[InferCtx], list[ShapeDtype]]:
    def infer(ctx: InferCtx) -> list[ShapeDtype]:
        a: SvdfHybridAttrs = ctx.attrs
        op = ctx.op_name
        if np.dtype(a.w_dtype) not in (I8, U8):
            raise OpError(f"{op}: weights_feature '{ctx.name(1)}' is {a.w_dtype}; a hybrid {op} "
                          "(float32 input) takes int8 weights_feature")
        if np.dtype(a.t_dtype) != I8:
            # (LiteRT runs float32 weights_time here too, but does not read them as floats.)
            raise OpError(f"{op}: weights_time '{ctx.name(2)}' is {a.t_dtype}; a hybrid {op} (int8 "
                          "weights_feature) takes int8 weights_time")
        if len(a.w_scales) != 1:
            raise OpError(f"{op}: weights_feature '{ctx.name(1)}' is quantized per channel; LiteRT's "
                          f"hybrid {op} uses one scale")
        if len(ctx.dtypes) > 3 and ctx.dtypes[3] is not None and np.dtype(ctx.dtypes[3]) != np.dtype(F32):
            raise OpError(f"{op}: bias '{ctx.name(3)}' is {np.dtype(ctx.dtypes[3]).name}; a hybrid "
                          f"{op} takes a float32 bias")
        dts = list(ctx.dtypes)
        dts[1] = dts[2] = np.dtype(F32)
        return prev.infer(InferCtx(op, a.base, ctx.shapes, dts, ctx.values, ctx.tensor_names))
    return infer


def _parse_svdf(o: dict[str, Any]) -> Any:
    fa = _FLOAT["SVDF"].parse(o)
    if o.get("asymmetric_quantize_inputs"):
        return SvdfOptions(fa.rank, fa.activation, fa.state_inputs, True)
    return fa


# ---- TRANSPOSE_CONV -------------------------------------------------------------------------------
# Inputs: output_shape, weights [O, KH, KW, I], input [N, H, W, I], optional bias [O].

def _bind_tconv(fa: Any, ins: list, outs: list) -> HybridAttrs | None:
    if len(ins) < 3 or ins[1] is None or ins[2] is None or not outs:
        return None
    if np.dtype(ins[2].dtype) != F32 or np.dtype(outs[0].dtype) != F32 or np.dtype(ins[1].dtype) in (F32, F16):
        return None
    return _bind_weights(fa, ins[1], True)


def _infer_tconv(prev: base.OpDef) -> Callable[[InferCtx], list[ShapeDtype]]:
    def infer(ctx: InferCtx) -> list[ShapeDtype]:
        a: HybridAttrs = ctx.attrs
        op = ctx.op_name
        if np.dtype(a.w_dtype) != I8:
            raise OpError(f"{op}: weights '{ctx.name(1)}' are {a.w_dtype}; with a float32 input {op} runs "
                          "LiteRT's hybrid kernel, which takes int8 weights; quantize them to int8 (or "
                          "store float32 weights)")
        if not a.quantized:
            raise OpError(f"{op}: int8 weights '{ctx.name(1)}' have no quantization parameters; a hybrid "
                          f"{op} needs their scale (one, or one per output channel)")
        if any(not np.isfinite(x) or x < 0 for x in a.w_scales):
            raise OpError(f"{op}: weights '{ctx.name(1)}' have scales {list(a.w_scales)[:4]}...; weight "
                          "scales must be finite and >= 0")
        if len(ctx.dtypes) > 3 and ctx.dtypes[3] is not None and np.dtype(ctx.dtypes[3]) != F32:
            raise OpError(f"{op}: bias '{ctx.name(3)}' is {np.dtype(ctx.dtypes[3]).name}; a hybrid {op} "
                          "(float32 input, int8 weights) takes a float32 bias")
        dts = list(ctx.dtypes)
        dts[1] = np.dtype(F32)
        out = prev.infer(InferCtx(op, a.base, ctx.shapes, dts, ctx.values, ctx.tensor_names))
        n_out = ctx.shapes[1][0]
        n = len(a.w_scales)
        if n != 1 and (n != n_out or a.qdim != 0):
            raise OpError(f"{op}: weights '{ctx.name(1)}' have {n} scales along dimension {a.qdim} for "
                          f"{n_out} output channels; give one scale, or one per output channel "
                          "(dimension 0)")
        return out
    return infer


def tconv_geometry(a: Any, x_shape: Sequence[int], w_shape: Sequence[int],
                   out_shape: Sequence[int]) -> tuple[int, int]:
    """(pad_top, pad_left) of a TRANSPOSE_CONV, LiteRT's ComputePaddingHeightWidth over the output."""
    return (nn.axis_geometry(a.padding, out_shape[1], w_shape[1], a.stride_h, 1).pad_before,
            nn.axis_geometry(a.padding, out_shape[2], w_shape[2], a.stride_w, 1).pad_before)


def _tconv_reference(inputs: Sequence[np.ndarray | None], a: HybridAttrs) -> list[np.ndarray]:
    f = a.base
    out_shape = tuple(int(v) for v in np.asarray(inputs[0]).reshape(-1))
    w = np.asarray(inputs[1])
    x = np.asarray(inputs[2], F32)
    b = inputs[3] if len(inputs) > 3 else None
    n, h, wd, ci = x.shape
    o, kh, kw, _ = w.shape
    _, oh, ow, _ = out_shape
    sh, sw = f.stride_h, f.stride_w
    ph, pw = tconv_geometry(f, x.shape, w.shape, out_shape)
    q, sf, zp = _image_quantize(x, True)
    xc = (q - zp[:, None, None, None]).astype(np.int64)
    ws = _channel_scale(a, o)
    sfb = sf.reshape(-1, 1, 1, 1)
    full_h = max((h - 1) * sh + kh, ph + oh)
    full_w = max((wd - 1) * sw + kw, pw + ow)
    full = np.zeros((n, full_h, full_w, o), F32)
    # Per output element, LiteRT adds the contributions in input (row, column, channel) order:
    # later input rows reach it through earlier filter rows, hence the reversed taps.
    for i in reversed(range(kh)):
        for j in reversed(range(kw)):
            dst = full[:, i:i + (h - 1) * sh + 1:sh, j:j + (wd - 1) * sw + 1:sw, :]
            for c in range(ci):
                prod = (xc[..., c, None] * w[:, i, j, c].astype(np.int64)).astype(F32)
                dst += ((prod * ws).astype(F32) * sfb).astype(F32)
    return [_finish(full[:, ph:ph + oh, pw:pw + ow, :], b, f.activation)]


# ---- registration ---------------------------------------------------------------------------------

def _extend(name: str, bind: Callable, infer: Callable[[base.OpDef], Callable], reference: Callable,
            parse: Callable | None = None) -> base.OpDef:
    """Give the registered `name` its hybrid kernel: nodes whose bind yields HybridAttrs use these
    functions, all others (float, int8 from ops/qnn.py) keep the existing definition's."""
    prev = base.registered(name)
    _FLOAT[name] = prev
    return base.add_quantized(name, base.QuantizedKernel(bind=bind, reference=reference, infer=infer(prev),
                                                         parse=parse))


def _parse_fc(o: dict[str, Any]) -> Any:
    fa = _FLOAT["FULLY_CONNECTED"].parse(o)
    if o.get("asymmetric_quantize_inputs"):
        return FcOptions(fa.activation, fa.keep_num_dims, True)
    return fa


def _parse_bmm(o: dict[str, Any]) -> Any:
    fa = _FLOAT["BATCH_MATMUL"].parse(o)
    if o.get("asymmetric_quantize_inputs"):
        return BmmOptions(fa.adj_x, fa.adj_y, True)
    return fa


_extend("FULLY_CONNECTED", _bind_fc, _infer_fc, _fc_reference, _parse_fc)
_extend("CONV_2D", lambda fa, ins, outs: _bind_conv("CONV_2D", fa, ins, outs), _infer_conv,
        _conv_reference)
_extend("DEPTHWISE_CONV_2D", lambda fa, ins, outs: _bind_conv("DEPTHWISE_CONV_2D", fa, ins, outs),
        _infer_conv, _depthwise_reference)
_extend("BATCH_MATMUL", _bind_bmm, _infer_bmm, _bmm_reference, _parse_bmm)
_extend("UNIDIRECTIONAL_SEQUENCE_RNN", _bind_rnn, _infer_rnn, _rnn_reference, _parse_rnn)
_extend("SVDF", _bind_svdf, _infer_svdf, _svdf_reference, _parse_svdf)
_extend("EMBEDDING_LOOKUP", _bind_embedding, lambda prev: infer_embedding, _embedding_reference)
_extend("TRANSPOSE_CONV", _bind_tconv, _infer_tconv, _tconv_reference)
