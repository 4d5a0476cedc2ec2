"""A zoo of synthetic float32 models with random weights, authored with format.builder.

Why: tests, benchmarks and the CLI demo need realistic graphs (the op sequences the TF converter
emits for MobileNet, EfficientNet, ResNet and BERT) without downloading anything. The topologies
follow the published architectures; BatchNorm is treated as already folded into conv weights and
biases, as it is in converted models. Weights are random normal, scaled like an analytic BatchNorm:
the builder tracks each tensor's expected RMS and scales every conv/FC so its pre-activation output
has a chosen RMS (1, or 0.5 at the end of residual branches, as trained BN gammas effectively are).
So activations stay O(1) through 50+ layers, even with swish-like activations whose plain He-style
gains drift, and outputs are finite and informative rather than all-equal or NaN.

Every builder is deterministic in `seed` and returns .tflite bytes:

    data = build("mobilenet_v2", input_size=96, alpha=0.35)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tflite_jit.format.builder import ModelBuilder

#: Fused activations (an option on conv/FC/add); anything else is emitted as separate ops.
_FUSED = {"NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH"}
#: The activations as functions, only to compute their output RMS (see _act_rms).
_ACT_FN: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "NONE": lambda x: x, "RELU": lambda x: np.maximum(x, 0), "RELU6": lambda x: np.clip(x, 0, 6),
    "HARD_SWISH": lambda x: x * np.clip(x + 3, 0, 6) / 6, "SWISH": lambda x: x / (1 + np.exp(-x)),
    "LOGISTIC": lambda x: 1 / (1 + np.exp(-x)), "HARD_SIGMOID": lambda x: np.clip(x + 3, 0, 6) / 6,
    "GELU": lambda x: 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3))),
}
#: RMS of a global average over a feature map relative to the map's RMS: the per-channel means of
#: rectified features survive averaging, their spatial noise does not. A rough constant suffices.
_POOL_RMS = 0.6
#: Input images are uniform in [-1, 1].
_IMAGE_RMS = 1 / math.sqrt(3)
#: Logit RMS: a softmax that clearly prefers some classes, without being one-hot.
_LOGIT_RMS = 2.5


@functools.lru_cache(maxsize=None)
def _act_rms(act: str, pre_rms: float) -> float:
    """sqrt(E[act(x)^2]) for x ~ N(0, pre_rms^2), by Gauss-Hermite quadrature."""
    z, w = np.polynomial.hermite_e.hermegauss(64)
    return float(np.sqrt(np.sum(w * _ACT_FN[act](pre_rms * z) ** 2) / np.sum(w)))


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channel counts the way the MobileNet/EfficientNet papers do (multiples of 8, never
    dropping more than 10%), so width-multiplied models have the real channel counts."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _taps(size: int, k: int, stride: int, same: bool) -> float:
    """Mean number of kernel taps (along one axis) that fall inside the input, over output positions."""
    out = -(-size // stride) if same else (size - k) // stride + 1
    pad = max((out - 1) * stride + k - size, 0) // 2 if same else 0
    starts = np.arange(out) * stride - pad
    return float(np.mean(np.minimum(starts + k, size) - np.maximum(starts, 0)))


class Net:
    """One subgraph under construction plus a seeded RNG and the shared layer helpers."""

    def __init__(self, scope: str, seed: int):
        self.mb = ModelBuilder(description=f"tflite_jit.models.{scope}")
        self.g = self.mb.subgraph("main")
        self.rng = np.random.default_rng(seed)
        self.scope = scope
        self._consts: dict[tuple, int] = {}
        self._n = 0
        #: expected RMS of each activation tensor; ops not listed keep their first input's RMS
        self.rms: dict[int, float] = {}

    # ---- plumbing ----------------------------------------------------------------------------
    def shape(self, t: int) -> tuple[int, ...]:
        return self.g.sg.tensors[t].shape

    def uname(self, name: str) -> str:
        """A unique, converter-like tensor name ("scope/layer/Op")."""
        self._n += 1
        return f"{self.scope}/{name};{self._n}"

    def op(self, op: str, inputs: Sequence[int], name: str = "", *, rms: float | None = None,
           **opts: Any) -> int:
        """Apply one builtin op; the output shape comes from the op's own shape rule. `rms`: the
        output's expected RMS (default: the first input's, right for pad/pool/reshape/transpose)."""
        y = self.g.apply(op, inputs, out_name=self.uname(name or op.lower()), **opts)[0]
        self.rms[y] = self.rms.get(inputs[0], 1.0) if rms is None else rms
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

    def bias(self, n: int, name: str) -> int:
        return self.const(self.normal((n,), 0.02), name)

    # ---- layers --------------------------------------------------------------------------------
    def act(self, x: int, act: str, name: str = "") -> int:
        """Non-fusable activations, as the converter spells them."""
        rms = _act_rms(act, self.rms.get(x, 1.0))
        if act == "NONE":
            return x
        if act in ("HARD_SWISH", "RELU", "RELU6", "LOGISTIC", "GELU"):
            return self.op(act, [x], f"{name}/{act.lower()}", rms=rms)
        if act == "SWISH":  # x * sigmoid(x): LOGISTIC + MUL
            return self.op("MUL", [x, self.op("LOGISTIC", [x], f"{name}/Sigmoid")], f"{name}/mul", rms=rms)
        if act == "HARD_SIGMOID":  # relu6(x + 3) / 6: ADD, RELU6, MUL
            y = self.op("ADD", [x, self.small(3.0)], f"{name}/add")
            y = self.op("RELU6", [y], f"{name}/Relu6")
            return self.op("MUL", [y, self.small(1 / 6)], f"{name}/mul", rms=rms)
        raise ValueError(f"unknown activation {act}")

    def pad(self, x: int, before: int, after: int, name: str) -> int:
        """ZeroPadding2D(((b, a), (b, a))): the PAD Keras puts before VALID stride-2 convs."""
        pads = [[0, 0], [before, after], [before, after], [0, 0]]
        return self.op("PAD", [x, self.small(pads, np.int32)], f"{name}/Pad")

    def conv(self, x: int, cout: int, k: int = 1, stride: int = 1, act: str = "NONE", *,
             name: str, depthwise: bool = False, padding: str = "SAME", out_rms: float = 1.0,
             keras_pad: bool = False) -> int:
        """CONV_2D / DEPTHWISE_CONV_2D with folded-BN bias and the activation fused when possible.

        out_rms: the pre-activation output RMS the weights are scaled for (what BN would set).
        keras_pad: stride-2 convs get an explicit PAD + VALID, as Keras' correct_pad emits."""
        in_rms = self.rms.get(x, 1.0)
        _, h, w, cin = self.shape(x)
        if keras_pad and stride == 2:
            x = self.pad(x, k // 2 - (1 - h % 2), k // 2, name)
            padding = "VALID"
        fused = act if act in _FUSED else "NONE"
        # fan-in counts only the taps that land inside the image: on small maps most of a 5x5
        # kernel reads padding, and ignoring that makes activations fade at low resolution
        same = padding == "SAME" or keras_pad
        taps = _taps(h, k, stride, same) * _taps(w, k, stride, same)
        std = out_rms / (in_rms * math.sqrt(taps * (1 if depthwise else cin)))
        if depthwise:
            w = self.const(self.normal((1, k, k, cin), std), f"{name}/depthwise_weights")
            y = self.op("DEPTHWISE_CONV_2D", [x, w, self.bias(cin, f"{name}/bias")], f"{name}/depthwise",
                        padding=padding, stride_w=stride, stride_h=stride, depth_multiplier=1,
                        fused_activation_function=fused)
        else:
            w = self.const(self.normal((cout, k, k, cin), std), f"{name}/weights")
            y = self.op("CONV_2D", [x, w, self.bias(cout, f"{name}/bias")], f"{name}/Conv2D",
                        padding=padding, stride_w=stride, stride_h=stride, fused_activation_function=fused)
        return self._activate(y, act, out_rms, name)

    def _activate(self, y: int, act: str, pre_rms: float, name: str) -> int:
        """Record the output RMS of a conv/FC and emit its activation if it could not be fused."""
        self.rms[y] = pre_rms
        if act in _FUSED:
            self.rms[y] = _act_rms(act, pre_rms)
            return y
        return self.act(y, act, name)

    def dense(self, x: int, n: int, act: str = "NONE", *, name: str, out_rms: float = 1.0,
              keep_num_dims: bool = False) -> int:
        """FULLY_CONNECTED with (out, in) weights; keep_num_dims keeps [B, S, n] for transformers."""
        cin = self.shape(x)[-1]
        std = out_rms / (self.rms.get(x, 1.0) * math.sqrt(cin))
        w = self.const(self.normal((n, cin), std), f"{name}/kernel")
        y = self.op("FULLY_CONNECTED", [x, w, self.bias(n, f"{name}/bias")], f"{name}/MatMul",
                    fused_activation_function=act if act in _FUSED else "NONE", keep_num_dims=keep_num_dims)
        return self._activate(y, act, out_rms, name)

    def add(self, a: int, b: int, act: str = "NONE", name: str = "add") -> int:
        """Residual ADD: independent summands, so the RMS adds in quadrature."""
        rms = math.hypot(self.rms.get(a, 1.0), self.rms.get(b, 1.0))
        return self.op("ADD", [a, b], name, fused_activation_function=act, rms=_act_rms(act, rms))

    def global_pool(self, x: int, keep_dims: bool = False, name: str = "avg_pool") -> int:
        """GlobalAveragePooling2D: the converter emits MEAN over H and W."""
        return self.op("MEAN", [x, self.small([1, 2], np.int32)], f"{name}/Mean", keep_dims=keep_dims,
                       rms=self.rms.get(x, 1.0) * _POOL_RMS)

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
        s = self.conv(s, c, 1, act=gate, name=f"{name}/expand")  # gates vary around 0.5
        return self.op("MUL", [x, s], f"{name}/excite", rms=self.rms[x] * self.rms[s])

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
        return self.op("ADD", [self.op("MUL", [x, inv], f"{name}/mul_1"), shift], f"{name}/add_1", rms=1.0)

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
        x = self.g.input("serving_default_input:0", (1, size, size, channels), np.float32)
        self.rms[x] = _IMAGE_RMS
        return x

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
    _, h, w, _ = n.shape(x)
    x = n.op("AVERAGE_POOL_2D", [x], "global_pool/AvgPool", padding="VALID", stride_w=1, stride_h=1,
             filter_width=w, filter_height=h, rms=n.rms[x] * _POOL_RMS)
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
            if b == 1:
                shortcut = n.conv(x, 4 * filters, 1, s, name=f"{name}_0_conv")
            else:
                shortcut = x
            y = n.conv(x, filters, 1, s, "RELU", name=f"{name}_1_conv")
            y = n.conv(y, filters, 3, 1, "RELU", name=f"{name}_2_conv")
            y = n.conv(y, 4 * filters, 1, name=f"{name}_3_conv", out_rms=0.5)
            x = n.add(shortcut, y, "RELU", name=f"{name}_add")
    y = n.classifier(n.global_pool(x), num_classes)
    return n.finish({"input": inp}, {"output_0": y})


def tiny_convnet(num_classes: int = 10, seed: int = 0) -> bytes:
    """The demo model `tflite-jit bench` runs by default: a 1x64x64x3 input through conv, depthwise,
    pointwise, MAX_POOL_2D, a residual ADD, AVERAGE_POOL_2D, RESHAPE, FC, SOFTMAX (~30k params),
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
             filter_width=8, filter_height=8, rms=n.rms[x] * _POOL_RMS)
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
    ids = n.g.input("serving_default_input_ids:0", (1, seq_len), np.int32)
    inputs = {"input_ids": ids}
    bias = None
    if mask:
        m = n.g.input("serving_default_attention_mask:0", (1, seq_len), np.float32)
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
