"""A PAD that feeds only a VALID convolution, and equals the SAME padding of that convolution, is
folded into it (fusion.epilogue.pad_pass + backends.request.folds_pad): one Numba kernel reading
the unpadded input, outputs equal to LiteRT's (float within the contract, int8 bit for bit).
Pads that do not equal SAME padding (symmetric pads before a stride-2 window, channel pads) keep
their own step."""

from __future__ import annotations

import numpy as np
import pytest

from tests.oracle import assert_close, litert_run, run_engine
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.ops import nn

RNG = np.random.default_rng(5)


def model(op: str, hw: int, c: int, k: int, stride: int, pads, dtype=np.float32, act: str = "NONE") -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    q8 = dtype is np.int8
    qx = dict(scale=0.05, zero_point=-6) if q8 else {}
    x = g.input("x", (1, hw, hw, c), dtype, **qx)
    p = g.const("pads", np.array(pads, np.int32))
    ph, pw = hw + sum(pads[1]), hw + sum(pads[2])
    t = g.tensor("padded", (1, ph, pw, c), dtype, **qx)
    g.op("PAD", [x, p], [t])
    co = c if op == "DEPTHWISE_CONV_2D" else 12
    wshape = (1, k, k, c) if op == "DEPTHWISE_CONV_2D" else (co, k, k, c)
    oh, ow = (ph - k) // stride + 1, (pw - k) // stride + 1
    if q8:
        ws = [0.01 + 0.002 * i for i in range(co)]
        w = g.const("w", RNG.integers(-127, 128, wshape).astype(np.int8), scale=ws, zero_point=[0] * co,
                    quantized_dimension=3 if op == "DEPTHWISE_CONV_2D" else 0)
        b = g.const("b", RNG.integers(-300, 300, co).astype(np.int32), scale=[0.05 * s for s in ws],
                    zero_point=[0] * co)
        y = g.tensor("y", (1, oh, ow, co), np.int8, scale=0.1, zero_point=4)
    else:
        w = g.const("w", RNG.standard_normal(wshape).astype(np.float32))
        b = g.const("b", RNG.standard_normal(co).astype(np.float32))
        y = g.tensor("y", (1, oh, ow, co), np.float32)
    opts = {"depth_multiplier": 1} if op == "DEPTHWISE_CONV_2D" else {}
    g.op(op, [t, w, b], [y], padding="VALID", stride_w=stride, stride_h=stride, fused_activation_function=act, **opts)
    g.output(y)
    return mb.build()


def check(m: bytes, x: np.ndarray, steps_expected: int) -> None:
    (theirs,) = litert_run(m, [x])
    (ours,), steps = run_engine(m, [x])
    assert steps == ["numba_cpu"] * steps_expected, steps
    if ours.dtype.kind == "f":
        assert_close(ours, theirs)
    else:
        np.testing.assert_array_equal(ours, theirs)


SAME_LIKE = [  # (op, hw, k, stride, pads): MediaPipe stride-1 pads, MobileNet's stride-2 bottom/right
    ("DEPTHWISE_CONV_2D", 12, 3, 1, [[0, 0], [1, 1], [1, 1], [0, 0]]),
    ("DEPTHWISE_CONV_2D", 12, 5, 1, [[0, 0], [2, 2], [2, 2], [0, 0]]),
    ("DEPTHWISE_CONV_2D", 12, 3, 2, [[0, 0], [0, 1], [0, 1], [0, 0]]),
    ("CONV_2D", 11, 3, 2, [[0, 0], [1, 1], [1, 1], [0, 0]]),  # odd input: SAME pads 1 and 1
    ("CONV_2D", 10, 3, 1, [[0, 0], [1, 1], [1, 1], [0, 0]]),
]


@pytest.mark.parametrize("op,hw,k,stride,pads", SAME_LIKE)
@pytest.mark.parametrize("dtype", [np.float32, np.int8])
def test_pad_folds_into_convolution(op, hw, k, stride, pads, dtype):
    m = model(op, hw, 8, k, stride, pads, dtype, act="RELU6" if dtype is np.float32 else "NONE")
    x = RNG.standard_normal((1, hw, hw, 8)).astype(np.float32) if dtype is np.float32 else \
        RNG.integers(-128, 128, (1, hw, hw, 8)).astype(np.int8)
    check(m, x, 1)


@pytest.mark.parametrize("op,hw,k,stride,pads", [
    ("DEPTHWISE_CONV_2D", 12, 3, 2, [[0, 0], [1, 1], [1, 1], [0, 0]]),  # pose_detection's stride-2 pads
    ("DEPTHWISE_CONV_2D", 12, 3, 1, [[0, 0], [2, 0], [1, 1], [0, 0]]),  # shifted window
])
def test_pads_that_are_not_same_padding_keep_their_step(op, hw, k, stride, pads):
    m = model(op, hw, 8, k, stride, pads)
    check(m, RNG.standard_normal((1, hw, hw, 8)).astype(np.float32), 2)


def test_pad_folds_into_geometry():
    a = nn.ConvAttrs("VALID", 2, 2, 1, 1, "NONE")
    assert nn.pad_folds_into(a, [[0, 0], [0, 1], [0, 1], [0, 0]], (1, 8, 8, 4), (3, 3))
    assert not nn.pad_folds_into(a, [[0, 0], [1, 1], [1, 1], [0, 0]], (1, 8, 8, 4), (3, 3))
    assert nn.pad_folds_into(a, [[0, 0], [1, 1], [1, 1], [0, 0]], (1, 9, 9, 4), (3, 3))
    assert not nn.pad_folds_into(nn.ConvAttrs("SAME", 1, 1, 1, 1, "NONE"), [[0, 0], [1, 1], [1, 1], [0, 0]],
                                 (1, 8, 8, 4), (3, 3))
    assert not nn.pad_folds_into(nn.ConvAttrs("VALID", 1, 1, 1, 1, "NONE"), [[1, 0], [1, 1], [1, 1], [0, 0]],
                                 (1, 8, 8, 4), (3, 3))
    assert not nn.pad_folds_into(nn.ConvAttrs("VALID", 1, 1, 1, 1, "NONE"), [[0, 0], [1, 1], [1, 1], [0, 2]],
                                 (1, 8, 8, 4), (3, 3))  # channel pads (BlazeFace's residuals)
