"""A zoo of synthetic float32 models with random weights, authored with format.builder.

Why: tests, benchmarks and the CLI demo need realistic graphs (the op sequences the TF converter
emits for MobileNet, EfficientNet, ResNet and BERT) without downloading anything. The topologies
follow the published architectures, with BatchNorm folded into conv/FC weights and biases as it is
in converted models.

Weights are random, then BatchNorm is folded *for real*: while the graph is built, every op is run
eagerly on a batch of random calibration inputs with the ops' NumPy reference kernels, and each
conv/FC is rescaled so its pre-activation output has RMS ~`gamma` and small random per-channel
means (gamma = 1, or 0.5 at the end of residual branches, as trained BN gammas effectively are).
Fixed He-style gains cannot do this: with swish-like activations, squeeze-excite gates,
padding-dominated small maps and residual sums, activations drift by ~10% per layer and end up
fading or blowing up. Calibrated, activations stay O(1) through 50+ layers at any input size, on
inputs other than the calibration batch too, and outputs are finite and informative (not
all-equal, not NaN).

Every builder is deterministic in `seed` and returns .tflite bytes:

    data = build("mobilenet_v2", input_size=96, alpha=0.35)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tflite_jit import ops
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.schema import enum_values

#: Fused activations (an option on conv/FC/add); anything else is emitted as separate ops.
_FUSED = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH")
#: Pre-activation RMS multiplier per activation. Swish-like activations are ~x/2 near 0 and ~x for
#: large x, so at RMS 1 they amplify differences in scale between inputs (each layer by ~1.2x:
#: after 16 blocks one random image's activations were 25x another's). At RMS 2 they act mostly
#: like ReLU, which is scale-neutral.
_ACT_SCALE = {"SWISH": 2.0, "HARD_SWISH": 2.0}
#: Logit RMS: a softmax that clearly prefers some classes without being one-hot.
_LOGIT_RMS = 2.5
#: Calibration batch: 4 inputs, more below 64x64 so that late layers (2x2 maps) still see enough
#: samples. Costs 4 eager forward passes at build time. The model itself has batch 1.
_CALIB_POSITIONS = 4 * 64 * 64


def _calib_batch(positions: int) -> int:
    return min(64, max(4, math.ceil(_CALIB_POSITIONS / positions)))


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channel counts the way the MobileNet/EfficientNet papers do (multiples of 8, never
    dropping more than 10%), so width-multiplied models have the real channel counts."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _fused_activation(x: np.ndarray, act: str) -> np.ndarray:
    if act == "RELU":
        return np.maximum(x, 0)
    if act == "RELU6":
        return np.clip(x, 0, 6)
    if act == "RELU_N1_TO_1":
        return np.clip(x, -1, 1)
    return np.tanh(x) if act == "TANH" else x


class Net:
    """One subgraph under construction, a seeded RNG, the eager calibration values, and the
    shared layer helpers."""

    def __init__(self, scope: str, seed: int):
        # The description names the zoo as it was named before it moved to tools/: built models
        # stay byte-identical (and so do `tflite-jit inspect` reports of them).
        self.mb = ModelBuilder(description=f"tflite_jit.models.{scope}")
        self.g = self.mb.subgraph("main")
        self.rng = np.random.default_rng(seed)
        self.calib_rng = np.random.default_rng([seed, 1])
        self.scope = scope
        self.values: dict[int, np.ndarray] = {}  # calibration value of every activation tensor
        self._consts: dict[tuple, int] = {}
        self._n = 0

    # ---- plumbing ----------------------------------------------------------------------------
    def shape(self, t: int) -> tuple[int, ...]:
        return self.g.sg.tensors[t].shape

    def uname(self, name: str) -> str:
        """A unique, converter-like tensor name ("scope/layer/Op;n")."""
        self._n += 1
        return f"{self.scope}/{name};{self._n}"

    def input(self, name: str, shape: Sequence[int], dtype: Any, calib: np.ndarray) -> int:
        t = self.g.input(name, shape, dtype)
        self.values[t] = calib
        return t

    def retain(self, *tids: int | None) -> None:
        """Drop the calibration values of everything but these tensors and the graph inputs: call
        at block boundaries, so a full-size build holds a few activations, not all of them."""
        keep = {*self.g.sg.inputs, *(t for t in tids if t is not None)}
        self.values = {t: v for t, v in self.values.items() if t in keep}

    def op(self, op: str, inputs: Sequence[int], name: str = "", **opts: Any) -> int:
        """Apply one builtin op (output shape from the op's own shape rule) and run it eagerly."""
        y = self.g.apply(op, inputs, out_name=self.uname(name or op.lower()), **opts)[0]
        o = self.g.sg.ops[-1]
        opdef = ops.get(op)
        args = [None if i < 0 else self.values.get(i, self.g.sg.tensors[i].data) for i in o.inputs]
        if op == "RESHAPE":  # calibration values carry the calibration batch, not the model's 1
            args[1] = np.array([len(args[0]), *args[1][1:]], np.int32)
        self.values[y] = opdef.reference(args, opdef.parse(dict(o.options)))[0]
        return y

    def const(self, value: np.ndarray, name: str) -> int:
        return self.g.const(self.uname(name), value)

    def small(self, value: Any, dtype: Any = np.float32) -> int:
        """A small shared constant (axes, shapes, scalars); deduplicated like the converter does."""
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            self._consts[key] = self.g.const(f"{self.scope}/const_{len(self._consts)}", arr)
        return self._consts[key]

    def normal(self, shape: Sequence[int], std: float) -> np.ndarray:
        w = self.rng.standard_normal(tuple(shape), dtype=np.float32)
        w *= np.float32(std)
        return w

    def _linear(self, op: str, x: int, w: np.ndarray, out_axis: int, act: str, out_rms: float,
                name: str, **opts: Any) -> int:
        """Conv/FC followed by folded BatchNorm: run it with zero bias, then rescale the weights
        and set the bias so the pre-activation output has RMS ~out_rms and small random means;
        finally fuse the activation (or emit it as separate ops)."""
        n = w.shape[out_axis]
        wt = self.const(w, f"{name}/weights")
        bt = self.const(np.zeros(n, np.float32), f"{name}/bias")
        y = self.op(op, [x, wt, bt], f"{name}/{op.title().replace('_', '')}", **opts)
        # one mean and RMS per tensor, not per channel: per-channel statistics from a few images
        # divide by channels' small within-image spread and amplify differences between images
        v = self.values[y].astype(np.float64)
        mean, sd = v.mean(), v.std() + 1e-12
        out_rms *= _ACT_SCALE.get(act, 1.0)
        gamma = out_rms * np.exp(0.1 * self.rng.standard_normal(n))  # channels differ a little
        beta = 0.1 * out_rms * self.rng.standard_normal(n)
        scale = gamma / sd
        tensors = self.g.sg.tensors
        bshape = [1] * w.ndim
        bshape[out_axis] = n
        tensors[wt].data = (w * scale.reshape(bshape)).astype(np.float32)
        tensors[bt].data = (beta - mean * scale).astype(np.float32)
        self.values[y] = ((self.values[y] - mean) * scale + beta).astype(np.float32)
        if act in _FUSED:
            self.g.sg.ops[-1].options["fused_activation_function"] = enum_values("ActivationFunctionType")[act]
            self.values[y] = _fused_activation(self.values[y], act)
            return y
        return self.act(y, act, name)

    # ---- layers --------------------------------------------------------------------------------
    def act(self, x: int, act: str, name: str = "") -> int:
        """Non-fusable activations, as the converter spells them."""
        if act == "NONE":
            return x
        if act in ("HARD_SWISH", "RELU", "RELU6", "LOGISTIC", "GELU"):
            return self.op(act, [x], f"{name}/{act.lower()}")
        if act == "SWISH":  # x * sigmoid(x): LOGISTIC + MUL
            return self.op("MUL", [x, self.op("LOGISTIC", [x], f"{name}/Sigmoid")], f"{name}/mul")
        if act == "HARD_SIGMOID":  # relu6(x + 3) / 6: ADD, RELU6, MUL
            y = self.op("ADD", [x, self.small(3.0)], f"{name}/add")
            y = self.op("RELU6", [y], f"{name}/Relu6")
            return self.op("MUL", [y, self.small(1 / 6)], f"{name}/mul")
        raise ValueError(f"unknown activation {act}")

    def pad(self, x: int, before: int, after: int, name: str) -> int:
        """ZeroPadding2D(((b, a), (b, a))): the PAD Keras puts before VALID stride-2 convs."""
        pads = [[0, 0], [before, after], [before, after], [0, 0]]
        return self.op("PAD", [x, self.small(pads, np.int32)], f"{name}/Pad")

    def conv(self, x: int, cout: int, k: int = 1, stride: int = 1, act: str = "NONE", *,
             name: str, depthwise: bool = False, padding: str = "SAME", out_rms: float = 1.0,
             keras_pad: bool = False) -> int:
        """CONV_2D / DEPTHWISE_CONV_2D (cout ignored) with folded BN and the activation fused when
        possible. keras_pad: stride-2 convs get an explicit PAD + VALID, as Keras' correct_pad emits."""
        _, h, _, cin = self.shape(x)
        if keras_pad and stride == 2:
            x = self.pad(x, k // 2 - (1 - h % 2), k // 2, name)
            padding = "VALID"
        opts = dict(padding=padding, stride_w=stride, stride_h=stride)
        if depthwise:
            w = self.normal((1, k, k, cin), 1 / k)
            return self._linear("DEPTHWISE_CONV_2D", x, w, 3, act, out_rms, f"{name}/depthwise",
                                depth_multiplier=1, **opts)
        w = self.normal((cout, k, k, cin), 1 / math.sqrt(k * k * cin))
        return self._linear("CONV_2D", x, w, 0, act, out_rms, name, **opts)

    def dense(self, x: int, n: int, act: str = "NONE", *, name: str, out_rms: float = 1.0,
              keep_num_dims: bool = False) -> int:
        """FULLY_CONNECTED with (out, in) weights; keep_num_dims keeps [B, S, n] for transformers."""
        w = self.normal((n, self.shape(x)[-1]), 1 / math.sqrt(self.shape(x)[-1]))
        return self._linear("FULLY_CONNECTED", x, w, 0, act, out_rms, name, keep_num_dims=keep_num_dims)

    def add(self, a: int, b: int, act: str = "NONE", name: str = "add") -> int:
        return self.op("ADD", [a, b], name, fused_activation_function=act)

    def global_pool(self, x: int, keep_dims: bool = False, name: str = "avg_pool") -> int:
        """GlobalAveragePooling2D: the converter emits MEAN over H and W."""
        return self.op("MEAN", [x, self.small([1, 2], np.int32)], f"{name}/Mean", keep_dims=keep_dims)

    def reshape(self, x: int, shape: Sequence[int], name: str = "reshape") -> int:
        return self.op("RESHAPE", [x, self.small(list(shape), np.int32)], f"{name}/Reshape")

    def squeeze_excite(self, x: int, reduced: int, inner: str, gate: str, *, name: str,
                       keep_dims: bool = True) -> int:
        """SE: global MEAN, 1x1 conv down (+inner act), 1x1 conv up (+gate), broadcast MUL."""
        c = self.shape(x)[-1]
        s = self.global_pool(x, keep_dims=keep_dims, name=f"{name}/squeeze")
        if not keep_dims:  # Keras EfficientNet: GAP then Reshape((1, 1, C))
            s = self.reshape(s, (self.shape(x)[0], 1, 1, c), f"{name}/squeeze")
        s = self.conv(s, reduced, 1, act=inner, name=f"{name}/reduce")
        # gates vary mildly around 0.5: strongly input-dependent gates, stacked over 16 blocks,
        # make the activation scale itself input-dependent (x * gate(mean(x)) feeds back)
        s = self.conv(s, c, 1, act=gate, name=f"{name}/expand", out_rms=0.5)
        return self.op("MUL", [x, s], f"{name}/excite")

    def classifier(self, x: int, num_classes: int, name: str = "predictions") -> int:
        logits = self.dense(x, num_classes, name=name, out_rms=_LOGIT_RMS)
        return self.op("SOFTMAX", [logits], f"{name}/Softmax", beta=1.0)

    def layer_norm(self, x: int, name: str, eps: float = 1e-12) -> int:
        """LayerNorm over the last axis as the TF converter emits it:
        inv = rsqrt(mean((x - mean)^2) + eps) * gamma;  y = x * inv + (beta - mean * inv)."""
        d = self.shape(x)[-1]
        axis = self.small([-1], np.int32)
        mean = self.op("MEAN", [x, axis], f"{name}/moments/mean", keep_dims=True)
        var = self.op("MEAN", [self.op("SQUARED_DIFFERENCE", [x, mean], f"{name}/moments/SquaredDifference"),
                               axis], f"{name}/moments/variance", keep_dims=True)
        inv = self.op("RSQRT", [self.op("ADD", [var, self.small(eps)], f"{name}/add")], f"{name}/Rsqrt")
        gamma = self.const(1.0 + self.normal((d,), 0.05), f"{name}/gamma")
        beta = self.const(self.normal((d,), 0.05), f"{name}/beta")
        inv = self.op("MUL", [inv, gamma], f"{name}/mul")
        shift = self.op("SUB", [beta, self.op("MUL", [mean, inv], f"{name}/mul_2")], f"{name}/sub")
        return self.op("ADD", [self.op("MUL", [x, inv], f"{name}/mul_1"), shift], f"{name}/add_1")

    def attention(self, x: int, num_heads: int, mask_bias: int | None, name: str) -> int:
        """Multi-head self-attention: FC Q/K/V, RESHAPE+TRANSPOSE into heads, BATCH_MATMUL
        (adj_y) scores scaled by 1/sqrt(dk), optional additive mask, SOFTMAX, BATCH_MATMUL,
        TRANSPOSE+RESHAPE back, FC output projection."""
        b, s, d = self.shape(x)
        dk = d // num_heads
        perm = self.small([0, 2, 1, 3], np.int32)

        def heads(what: str) -> int:
            t = self.dense(x, d, name=f"{name}/{what}", keep_num_dims=True)
            t = self.reshape(t, (b, s, num_heads, dk), f"{name}/{what}")
            return self.op("TRANSPOSE", [t, perm], f"{name}/{what}/transpose")

        q, k, v = heads("query"), heads("key"), heads("value")
        scores = self.op("BATCH_MATMUL", [q, k], f"{name}/scores", adj_y=True)
        scores = self.op("MUL", [scores, self.small(1 / math.sqrt(dk))], f"{name}/scale")
        if mask_bias is not None:
            scores = self.add(scores, mask_bias, name=f"{name}/mask")
        probs = self.op("SOFTMAX", [scores], f"{name}/Softmax", beta=1.0)
        ctx = self.op("BATCH_MATMUL", [probs, v], f"{name}/context")
        ctx = self.reshape(self.op("TRANSPOSE", [ctx, perm], f"{name}/context/transpose"), (b, s, d),
                           f"{name}/context")
        return self.dense(ctx, d, name=f"{name}/output", keep_num_dims=True, out_rms=0.5)

    # ---- finishing -----------------------------------------------------------------------------
    def image_input(self, size: int, channels: int = 3) -> int:
        """The image input; calibrated on uniform [-1, 1] pixels (the usual preprocessing)."""
        batch = _calib_batch(size * size)
        calib = self.calib_rng.uniform(-1, 1, (batch, size, size, channels)).astype(np.float32)
        return self.input("serving_default_input:0", (1, size, size, channels), np.float32, calib)

    def finish(self, inputs: dict[str, int], outputs: dict[str, int]) -> bytes:
        """Name outputs like the converter, declare graph I/O and the serving_default signature."""
        for i, t in enumerate(outputs.values()):
            self.g.sg.tensors[t].name = f"StatefulPartitionedCall:{i}"
        self.g.output(*outputs.values())
        self.mb.signature("serving_default", inputs, outputs)
        return self.mb.build()


# ---- convnets -----------------------------------------------------------------------------------

def mobilenet_v1(input_size: int = 224, alpha: float = 0.25, num_classes: int = 1000,
                 seed: int = 0) -> bytes:
    """MobileNetV1: conv stem then 13 depthwise-separable blocks (RELU6 fused), AVERAGE_POOL_2D
    over the final map, 1x1 conv classifier, RESHAPE, SOFTMAX (the classic hosted .tflite)."""
    n = Net("mobilenet_v1", seed)
    x = inp = n.image_input(input_size)
    x = n.conv(x, int(32 * alpha), 3, 2, "RELU6", name="conv1")
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for i, (c, s) in enumerate(blocks, 1):
        x = n.conv(x, 0, 3, s, "RELU6", name=f"conv_dw_{i}", depthwise=True, keras_pad=True)
        x = n.conv(x, int(c * alpha), 1, 1, "RELU6", name=f"conv_pw_{i}")
        n.retain(x)
    _, h, w, _ = n.shape(x)
    x = n.op("AVERAGE_POOL_2D", [x], "global_pool/AvgPool", padding="VALID", stride_w=1, stride_h=1,
             filter_width=w, filter_height=h)
    x = n.conv(x, num_classes, 1, name="conv_preds", out_rms=_LOGIT_RMS)
    x = n.reshape(x, (1, num_classes), "flatten")
    y = n.op("SOFTMAX", [x], "predictions/Softmax", beta=1.0)
    return n.finish({"input": inp}, {"output_0": y})


def mobilenet_v2(input_size: int = 224, alpha: float = 1.0, num_classes: int = 1000, seed: int = 0) -> bytes:
    """MobileNetV2 as converted from Keras: CONV_2D s2 stem (RELU6 fused); inverted residual
    blocks (1x1 expand + RELU6, PAD + VALID depthwise for stride 2 else SAME, + RELU6, linear 1x1
    project, ADD when stride 1 and channels match); 1x1 conv to 1280; MEAN; FC; SOFTMAX."""
    n = Net("mobilenetv2", seed)
    x = inp = n.image_input(input_size)
    x = n.conv(x, make_divisible(32 * alpha), 3, 2, "RELU6", name="Conv1")
    table = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
             (6, 320, 1, 1)]
    block = 0
    for t, c, reps, stride in table:
        cout = make_divisible(c * alpha)
        for r in range(reps):
            s = stride if r == 0 else 1
            cin = n.shape(x)[-1]
            name = f"block_{block}"
            y = n.conv(x, cin * t, 1, 1, "RELU6", name=f"{name}_expand") if t != 1 else x
            y = n.conv(y, 0, 3, s, "RELU6", name=f"{name}_depthwise", depthwise=True, keras_pad=True)
            residual = s == 1 and cin == cout
            y = n.conv(y, cout, 1, name=f"{name}_project", out_rms=0.5 if residual else 1.0)
            x = n.add(x, y, name=f"{name}_add") if residual else y
            n.retain(x)
            block += 1
    x = n.conv(x, make_divisible(1280 * alpha) if alpha > 1.0 else 1280, 1, 1, "RELU6", name="Conv_1")
    y = n.classifier(n.global_pool(x), num_classes)
    return n.finish({"input": inp}, {"output_0": y})


def mobilenet_v3_small(input_size: int = 224, num_classes: int = 1000, seed: int = 0) -> bytes:
    """MobileNetV3-Small: HARD_SWISH (the converter's fused op) and RELU blocks; squeeze-excite
    via MEAN(keep_dims) + 1x1 conv + RELU + 1x1 conv + hard-sigmoid (ADD 3, RELU6, MUL 1/6) and a
    broadcasting MUL; head 1x1 conv 576, MEAN, 1x1 conv 1024 + HARD_SWISH, 1x1 classifier
    conv, RESHAPE, SOFTMAX."""
    n = Net("MobilenetV3small", seed)
    x = inp = n.image_input(input_size)
    x = n.conv(x, 16, 3, 2, "HARD_SWISH", name="Conv")
    # (expansion, out channels, kernel, stride, squeeze-excite, activation)
    table = [(1, 16, 3, 2, True, "RELU"), (72 / 16, 24, 3, 2, False, "RELU"),
             (88 / 24, 24, 3, 1, False, "RELU"), (4, 40, 5, 2, True, "HARD_SWISH"),
             (6, 40, 5, 1, True, "HARD_SWISH"), (6, 40, 5, 1, True, "HARD_SWISH"),
             (3, 48, 5, 1, True, "HARD_SWISH"), (3, 48, 5, 1, True, "HARD_SWISH"),
             (6, 96, 5, 2, True, "HARD_SWISH"), (6, 96, 5, 1, True, "HARD_SWISH"),
             (6, 96, 5, 1, True, "HARD_SWISH")]
    for i, (e, c, k, s, se, act) in enumerate(table):
        name = f"expanded_conv_{i}" if i else "expanded_conv"
        cin = n.shape(x)[-1]
        y = n.conv(x, make_divisible(cin * e), 1, 1, act, name=f"{name}/expand") if i else x
        y = n.conv(y, 0, k, s, act, name=f"{name}/depthwise", depthwise=True, keras_pad=True)
        if se:
            y = n.squeeze_excite(y, make_divisible(n.shape(y)[-1] / 4), "RELU", "HARD_SIGMOID",
                                 name=f"{name}/squeeze_excite")
        residual = s == 1 and cin == c
        y = n.conv(y, c, 1, name=f"{name}/project", out_rms=0.5 if residual else 1.0)
        x = n.add(x, y, name=f"{name}/Add") if residual else y
        n.retain(x)
    x = n.conv(x, make_divisible(n.shape(x)[-1] * 6), 1, 1, "HARD_SWISH", name="Conv_1")
    x = n.global_pool(x, keep_dims=True)
    x = n.conv(x, 1024, 1, 1, "HARD_SWISH", name="Conv_2")
    x = n.conv(x, num_classes, 1, name="Logits", out_rms=_LOGIT_RMS)
    x = n.reshape(x, (1, num_classes), "flatten")
    y = n.op("SOFTMAX", [x], "Predictions/Softmax", beta=1.0)
    return n.finish({"input": inp}, {"output_0": y})


def efficientnet_b0(input_size: int = 224, num_classes: int = 1000, seed: int = 0) -> bytes:
    """EfficientNet-B0: PAD + VALID s2 stem conv with swish (MUL(x, LOGISTIC(x))); MBConv blocks
    (1x1 expand + swish, depthwise + swish, squeeze-excite with MEAN + RESHAPE + 1x1 convs + LOGISTIC
    gate, linear 1x1 project, ADD residual); head 1x1 conv 1280 + swish; MEAN; FC; SOFTMAX."""
    n = Net("efficientnetb0", seed)
    x = inp = n.image_input(input_size)
    x = n.conv(x, 32, 3, 2, "SWISH", name="stem_conv", keras_pad=True)
    # (kernel, repeats, out channels, expansion, stride); squeeze-excite ratio 0.25 everywhere
    table = [(3, 1, 16, 1, 1), (3, 2, 24, 6, 2), (5, 2, 40, 6, 2), (3, 3, 80, 6, 2), (5, 3, 112, 6, 1),
             (5, 4, 192, 6, 2), (3, 1, 320, 6, 1)]
    for b, (k, reps, cout, e, stride) in enumerate(table, 1):
        for r in range(reps):
            name, s, cin = f"block{b}{'abcd'[r]}", stride if r == 0 else 1, n.shape(x)[-1]
            y = n.conv(x, cin * e, 1, 1, "SWISH", name=f"{name}_expand_conv") if e != 1 else x
            y = n.conv(y, 0, k, s, "SWISH", name=f"{name}_dwconv", depthwise=True, keras_pad=True)
            y = n.squeeze_excite(y, max(1, int(cin * 0.25)), "SWISH", "LOGISTIC", name=f"{name}_se",
                                 keep_dims=False)
            residual = s == 1 and cin == cout
            y = n.conv(y, cout, 1, name=f"{name}_project_conv", out_rms=0.5 if residual else 1.0)
            x = n.add(x, y, name=f"{name}_add") if residual else y
            n.retain(x)
    x = n.conv(x, 1280, 1, 1, "SWISH", name="top_conv")
    y = n.classifier(n.global_pool(x), num_classes)
    return n.finish({"input": inp}, {"output_0": y})


def resnet50(input_size: int = 224, num_classes: int = 1000, seed: int = 0) -> bytes:
    """ResNet50 (v1, Keras layout): PAD 3 + CONV 7x7 s2 VALID + RELU, PAD 1 + MAX_POOL 3x3 s2;
    bottleneck blocks (stride on the first 1x1, projection shortcut on each stage's first block),
    ADD with RELU fused; MEAN; FC; SOFTMAX."""
    n = Net("resnet50", seed)
    x = inp = n.image_input(input_size)
    x = n.conv(n.pad(x, 3, 3, "conv1_pad"), 64, 7, 2, "RELU", name="conv1_conv", padding="VALID")
    x = n.op("MAX_POOL_2D", [n.pad(x, 1, 1, "pool1_pad")], "pool1_pool/MaxPool", padding="VALID",
             stride_w=2, stride_h=2, filter_width=3, filter_height=3)
    for stage, (filters, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], 2):
        for b in range(1, blocks + 1):
            name, s = f"conv{stage}_block{b}", stride if b == 1 else 1
            shortcut = n.conv(x, 4 * filters, 1, s, name=f"{name}_0_conv") if b == 1 else x
            y = n.conv(x, filters, 1, s, "RELU", name=f"{name}_1_conv")
            y = n.conv(y, filters, 3, 1, "RELU", name=f"{name}_2_conv")
            y = n.conv(y, 4 * filters, 1, name=f"{name}_3_conv", out_rms=0.5)
            x = n.add(shortcut, y, "RELU", name=f"{name}_add")
            n.retain(x)
    y = n.classifier(n.global_pool(x), num_classes)
    return n.finish({"input": inp}, {"output_0": y})


def tiny_convnet(num_classes: int = 10, seed: int = 0) -> bytes:
    """The demo model `tflite-jit bench` runs by default: a 1x64x64x3 input through conv, depthwise,
    pointwise, MAX_POOL_2D, a residual ADD, AVERAGE_POOL_2D, RESHAPE, FC, SOFTMAX (~13k params),
    built in milliseconds."""
    n = Net("tiny_convnet", seed)
    x = inp = n.image_input(64)
    x = n.conv(x, 16, 3, 2, "RELU6", name="conv1")  # 32x32
    x = n.conv(x, 0, 3, 1, "RELU6", name="dw1", depthwise=True)
    x = n.conv(x, 32, 1, 1, "RELU6", name="pw1")
    x = n.op("MAX_POOL_2D", [x], "pool1/MaxPool", padding="VALID", stride_w=2, stride_h=2,
             filter_width=2, filter_height=2)  # 16x16
    x = n.conv(x, 0, 3, 2, "RELU6", name="dw2", depthwise=True)  # 8x8
    x = n.conv(x, 64, 1, 1, "RELU6", name="pw2")
    y = n.conv(n.conv(x, 0, 3, 1, "RELU6", name="dw3", depthwise=True), 64, 1, name="pw3", out_rms=0.5)
    x = n.add(x, y, "RELU", name="res_add")
    x = n.op("AVERAGE_POOL_2D", [x], "pool2/AvgPool", padding="VALID", stride_w=8, stride_h=8,
             filter_width=8, filter_height=8)
    x = n.reshape(x, (1, 64), "flatten")
    x = n.dense(x, 64, "RELU", name="fc1")
    y = n.classifier(x, num_classes)
    return n.finish({"input": inp}, {"output_0": y})


# ---- transformer --------------------------------------------------------------------------------

def transformer_encoder(seq_len: int = 128, d_model: int = 256, num_heads: int = 4, d_ff: int = 1024,
                        num_layers: int = 2, vocab: int = 1000, mask: bool = True, seed: int = 0) -> bytes:
    """A BERT-style post-LN encoder. Inputs: int32 token ids [1, seq_len] and, if `mask`, a float
    attention mask [1, seq_len] (1 = attend) turned into an additive bias (1 - mask) * -1e9 via
    SUB/MUL and EXPAND_DIMS + RESHAPE to [1, 1, 1, seq_len]. GATHER token embeddings + position
    embeddings, LayerNorm; per layer: attention, residual ADD, LayerNorm, FC d_ff + GELU, FC back,
    residual ADD, LayerNorm. Output: the last hidden state [1, seq_len, d_model]."""
    if d_model % num_heads:
        raise ValueError(f"d_model {d_model} is not a multiple of num_heads {num_heads}")
    n = Net("bert", seed)
    batch = min(64, max(4, -(-512 // seq_len)))  # at least 512 calibration tokens
    calib_ids = n.calib_rng.integers(0, vocab, (batch, seq_len), dtype=np.int32)
    ids = n.input("serving_default_input_ids:0", (1, seq_len), np.int32, calib_ids)
    inputs = {"input_ids": ids}
    bias = None
    if mask:
        calib_mask = np.repeat((np.arange(seq_len) < seq_len - seq_len // 4).astype(np.float32)[None],
                               batch, axis=0)
        m = n.input("serving_default_attention_mask:0", (1, seq_len), np.float32, calib_mask)
        inputs["attention_mask"] = m
        bias = n.op("MUL", [n.op("SUB", [n.small(1.0), m], "mask/sub"), n.small(-1e9)], "mask/mul")
        bias = n.op("EXPAND_DIMS", [bias, n.small(1, np.int32)], "mask/ExpandDims")
        bias = n.reshape(bias, (1, 1, 1, seq_len), "mask")
    table = n.const(n.normal((vocab, d_model), 1.0), "embeddings/word_embeddings")
    x = n.op("GATHER", [table, ids], "embeddings/Gather", axis=0, batch_dims=0)
    x = n.add(x, n.const(n.normal((1, seq_len, d_model), 0.5), "embeddings/position_embeddings"),
              name="embeddings/add")
    x = n.layer_norm(x, "embeddings/LayerNorm")
    for i in range(num_layers):
        name = f"encoder/layer_{i}"
        x = n.layer_norm(n.add(x, n.attention(x, num_heads, bias, f"{name}/attention"), name=f"{name}/add"),
                         f"{name}/attention/LayerNorm")
        h = n.dense(x, d_ff, "GELU", name=f"{name}/intermediate", keep_num_dims=True)
        h = n.dense(h, d_model, name=f"{name}/output", keep_num_dims=True, out_rms=0.5)
        x = n.layer_norm(n.add(x, h, name=f"{name}/output/add"), f"{name}/output/LayerNorm")
        n.retain(x, bias)
    return n.finish(inputs, {"output_0": x})


ZOO: dict[str, Callable[..., bytes]] = {
    "tiny_convnet": tiny_convnet,
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_small": mobilenet_v3_small,
    "efficientnet_b0": efficientnet_b0,
    "resnet50": resnet50,
    "transformer_encoder": transformer_encoder,
}


def build(name: str, **kw: Any) -> bytes:
    """Build a zoo model by name; keyword arguments go to its builder."""
    try:
        fn = ZOO[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(ZOO)}") from None
    return fn(**kw)
