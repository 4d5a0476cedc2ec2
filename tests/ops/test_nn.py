"""Differential tests of ops.nn against LiteRT's builtin kernels, plus its shape-rule errors.

Each case authors a one-op .tflite model, runs it on LiteRT (BUILTIN_WITHOUT_DEFAULT_DELEGATES)
and compares with the OpDef's reference kernel under the float contract (tests/oracle.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import assert_close, litert_run
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.schema import FIELD_ENUMS, enum_values, options_table_for, table_defaults
from tflite_jit.ops import nn
from tflite_jit.ops.base import InferCtx, OpDef, OpError, PatternKind

CLAMPS = ["NONE", "RELU", "RELU_N1_TO_1", "RELU6"]
ACTS = CLAMPS + ["TANH", "SIGN_BIT"]
HYP = settings(max_examples=25, deadline=None)


# ---- harness (also used by test_reduce) ---------------------------------------------------------


@dataclass
class Const:
    """Marks an input stored as a constant tensor in the model (graph inputs are plain arrays)."""

    value: np.ndarray


def raw_options(op: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options dict the reader would hand to parse(): schema defaults, enum names as ints."""
    found = options_table_for(op)
    raw = {k: v for k, v in table_defaults(found[1]).items() if v is not None} if found else {}
    for k, v in options.items():
        raw[k] = enum_values(FIELD_ENUMS[k])[v] if isinstance(v, str) and k in FIELD_ENUMS else v
    return raw


def infer(opdef: OpDef, inputs: Sequence[Any], **options: Any) -> list:
    """Run the shape rule on specs: arrays count as run-time inputs, Const as known values."""
    arrs = [None if s is None else (s.value if isinstance(s, Const) else np.asarray(s)) for s in inputs]
    ctx = InferCtx(op_name=opdef.name, attrs=opdef.parse(raw_options(opdef.name, options)),
                   shapes=[None if a is None else a.shape for a in arrs],
                   dtypes=[None if a is None else a.dtype for a in arrs],
                   values=[s.value if isinstance(s, Const) else None for s in inputs],
                   tensor_names=[f"t{i}" for i in range(len(inputs))])
    return opdef.infer(ctx)


def build(opdef: OpDef, inputs: Sequence[Any], out_specs: list | None = None, **options: Any) -> bytes:
    """A one-op model; output tensors come from our infer() unless given."""
    mb = ModelBuilder()
    g = mb.subgraph()
    ids = []
    for i, s in enumerate(inputs):
        if s is None:
            ids.append(-1)
        elif isinstance(s, Const):
            ids.append(g.const(f"t{i}", s.value))
        else:
            ids.append(g.input(f"t{i}", np.shape(s), np.asarray(s).dtype))
    outs = [g.tensor(f"out{j}", shape, dtype)
            for j, (shape, dtype) in enumerate(out_specs or infer(opdef, inputs, **options))]
    g.op(opdef.name, ids, outs, **options)
    g.output(*outs)
    return mb.build()


def run_both(opdef: OpDef, inputs: Sequence[Any], **options: Any) -> tuple[list, list]:
    """(ours, LiteRT's) outputs for one op on the given inputs."""
    theirs = litert_run(build(opdef, inputs, **options),
                        [s for s in inputs if s is not None and not isinstance(s, Const)])
    arrs = [s.value if isinstance(s, Const) else s for s in inputs]
    ours = opdef.reference(arrs, opdef.parse(raw_options(opdef.name, options)))
    return ours, theirs


def check(opdef: OpDef, inputs: Sequence[Any], **options: Any) -> None:
    ours, theirs = run_both(opdef, inputs, **options)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert_close(a, b, what=opdef.name)


def litert_rejects(opdef: OpDef, inputs: Sequence[Any], out_specs: list, **options: Any) -> str:
    """LiteRT's Prepare error message for a model it refuses (fails the test if it accepts)."""
    with pytest.raises(RuntimeError) as e:
        litert_run(build(opdef, inputs, out_specs, **options),
                   [s for s in inputs if s is not None and not isinstance(s, Const)])
    return str(e.value)


def rand(rng: np.random.Generator, shape: Sequence[int], scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# ---- strategies ---------------------------------------------------------------------------------


@st.composite
def window_cfg(draw: st.DrawFn, dilation: bool = True) -> dict[str, Any]:
    """Spatial geometry: input size, kernel, stride, dilation, padding; VALID may yield an empty
    axis (LiteRT allows that) but never a negative one."""
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    hw = (draw(st.integers(1, 10)), draw(st.integers(1, 10)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if padding == "VALID":
        for size, kk, dd, ss in zip(hw, k, d, s):
            assume(size + ss - ((kk - 1) * dd + 1) >= 0)
    return dict(hw=hw, k=k, s=s, d=d, padding=padding)


# ---- CONV_2D ------------------------------------------------------------------------------------


@HYP
@given(cfg=window_cfg(), n=st.integers(1, 2), cin=st.integers(1, 4), groups=st.integers(1, 2),
       cout_per_group=st.integers(1, 4), act=st.sampled_from(ACTS), seed=st.integers(0, 2**16))
def test_conv2d(cfg: dict, n: int, cin: int, groups: int, cout_per_group: int, act: str,
                seed: int) -> None:
    rng = np.random.default_rng(seed)
    cout = groups * cout_per_group
    x = rand(rng, (n, *cfg["hw"], cin * groups), 3)
    w = Const(rand(rng, (cout, *cfg["k"], cin)))
    b = Const(rand(rng, (cout,)))
    check(nn.CONV_2D, [x, w, b], padding=cfg["padding"], stride_h=cfg["s"][0], stride_w=cfg["s"][1],
          dilation_h_factor=cfg["d"][0], dilation_w_factor=cfg["d"][1], fused_activation_function=act)


def test_conv2d_larger_matches_tightly() -> None:
    """A realistic layer: the GEMM summation order differs, the error stays at float noise."""
    rng = np.random.default_rng(0)
    x = rand(rng, (1, 24, 24, 32))
    w, b = Const(rand(rng, (48, 3, 3, 32))), Const(rand(rng, (48,)))
    ours, theirs = run_both(nn.CONV_2D, [x, w, b], padding="SAME", stride_h=2, stride_w=2)
    assert_close(ours[0], theirs[0], rtol=1e-5)


def test_conv2d_non_constant_filter() -> None:
    rng = np.random.default_rng(1)
    check(nn.CONV_2D, [rand(rng, (1, 5, 6, 3)), rand(rng, (2, 2, 3, 3)), rand(rng, (2,))],
          padding="VALID", stride_h=1, stride_w=2)


def test_conv2d_bias_counted_by_elements() -> None:
    """LiteRT checks NumElements(bias), so a [2, 2] bias for 4 output channels is accepted."""
    rng = np.random.default_rng(2)
    check(nn.CONV_2D, [rand(rng, (1, 4, 4, 3)), Const(rand(rng, (4, 3, 3, 3))),
                       Const(rand(rng, (2, 2)))], padding="SAME", stride_h=1, stride_w=1)


# ---- DEPTHWISE_CONV_2D --------------------------------------------------------------------------


@HYP
@given(cfg=window_cfg(), n=st.integers(1, 2), c=st.integers(1, 4), m=st.integers(1, 3),
       act=st.sampled_from(ACTS), give_m=st.booleans(), seed=st.integers(0, 2**16))
def test_depthwise_conv2d(cfg: dict, n: int, c: int, m: int, act: str, give_m: bool,
                          seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rand(rng, (n, *cfg["hw"], c), 3)
    w = Const(rand(rng, (1, *cfg["k"], c * m)))
    b = Const(rand(rng, (c * m,)))
    check(nn.DEPTHWISE_CONV_2D, [x, w, b], padding=cfg["padding"], stride_h=cfg["s"][0],
          stride_w=cfg["s"][1], dilation_h_factor=cfg["d"][0], dilation_w_factor=cfg["d"][1],
          depth_multiplier=m if give_m else 0, fused_activation_function=act)


@pytest.mark.parametrize("dm", [0, 1, 5])
def test_depthwise_multiplier_option_ignored(dm: int) -> None:
    """LiteRT derives the multiplier from the filter/input channels; the option does not matter."""
    rng = np.random.default_rng(3)
    check(nn.DEPTHWISE_CONV_2D, [rand(rng, (1, 5, 5, 3)), Const(rand(rng, (1, 3, 3, 6))),
                                 Const(rand(rng, (6,)))],
          padding="VALID", stride_h=1, stride_w=1, depth_multiplier=dm)


# ---- FULLY_CONNECTED ----------------------------------------------------------------------------


@HYP
@given(batch=st.lists(st.integers(1, 4), min_size=0, max_size=3), depth=st.integers(1, 9),
       units=st.integers(1, 7), keep=st.booleans(), has_bias=st.booleans(),
       act=st.sampled_from(CLAMPS), const_w=st.booleans(), seed=st.integers(0, 2**16))
def test_fully_connected(batch: list, depth: int, units: int, keep: bool, has_bias: bool, act: str,
                         const_w: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rand(rng, (*batch, depth), 2)
    w = rand(rng, (units, depth))
    b = Const(rand(rng, (units,))) if has_bias else None
    check(nn.FULLY_CONNECTED, [x, Const(w) if const_w else w, b], keep_num_dims=keep,
          fused_activation_function=act)


def test_fc_flattens_leading_dims() -> None:
    """Without keep_num_dims the input is read as [size / depth, depth], whatever its shape."""
    rng = np.random.default_rng(4)
    x = rand(rng, (2, 3, 4))
    assert infer(nn.FULLY_CONNECTED, [x, Const(rand(rng, (5, 6))), None]) == [((4, 5), np.float32)]
    check(nn.FULLY_CONNECTED, [x, Const(rand(rng, (5, 6))), Const(rand(rng, (5,)))])


def test_fc_indivisible_input_truncates() -> None:
    """LiteRT does not require depth to divide the input size: batch = size // depth and the
    trailing elements are ignored. We do the same rather than reject a model LiteRT runs."""
    rng = np.random.default_rng(5)
    x = rand(rng, (2, 5))
    assert infer(nn.FULLY_CONNECTED, [x, Const(rand(rng, (3, 4))), None]) == [((2, 3), np.float32)]
    check(nn.FULLY_CONNECTED, [x, Const(rand(rng, (3, 4))), Const(rand(rng, (3,)))])


@pytest.mark.parametrize("act", ["TANH", "SIGN_BIT"])
def test_fc_rejects_non_clamp_activation(act: str) -> None:
    rng = np.random.default_rng(6)
    inputs = [rand(rng, (2, 4)), Const(rand(rng, (3, 4))), Const(rand(rng, (3,)))]
    litert_rejects(nn.FULLY_CONNECTED, inputs, [((2, 3), np.float32)], fused_activation_function=act)
    with pytest.raises(OpError, match=act):
        infer(nn.FULLY_CONNECTED, inputs, fused_activation_function=act)


def test_fc_rejects_shuffled_weights_format() -> None:
    with pytest.raises(OpError, match="weights_format"):
        nn.FULLY_CONNECTED.parse({"weights_format": 1})


# ---- BATCH_MATMUL -------------------------------------------------------------------------------


@st.composite
def bmm_shapes(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Batch dims that broadcast: a common shape, each side dropping leading dims or using 1s."""
    common = draw(st.lists(st.integers(1, 3), min_size=0, max_size=3))
    sides = []
    for _ in range(2):
        drop = draw(st.integers(0, len(common)))
        sides.append(tuple(1 if draw(st.booleans()) else d for d in common[drop:]))
    return sides[0], sides[1]


@HYP
@given(batches=bmm_shapes(), m=st.integers(1, 5), k=st.integers(1, 6), n=st.integers(1, 5),
       adj_x=st.booleans(), adj_y=st.booleans(), const_y=st.booleans(), seed=st.integers(0, 2**16))
def test_batch_matmul(batches: tuple, m: int, k: int, n: int, adj_x: bool, adj_y: bool,
                      const_y: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rand(rng, (*batches[0], *((k, m) if adj_x else (m, k))))
    y = rand(rng, (*batches[1], *((n, k) if adj_y else (k, n))))
    check(nn.BATCH_MATMUL, [x, Const(y) if const_y else y], adj_x=adj_x, adj_y=adj_y)


# ---- pooling ------------------------------------------------------------------------------------


@HYP
@given(cfg=window_cfg(dilation=False), n=st.integers(1, 2), c=st.integers(1, 4),
       act=st.sampled_from(ACTS), op=st.sampled_from([nn.AVERAGE_POOL_2D, nn.MAX_POOL_2D]),
       seed=st.integers(0, 2**16))
def test_pool2d(cfg: dict, n: int, c: int, act: str, op: OpDef, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rand(rng, (n, *cfg["hw"], c), 3)
    check(op, [x], padding=cfg["padding"], stride_h=cfg["s"][0], stride_w=cfg["s"][1],
          filter_height=cfg["k"][0], filter_width=cfg["k"][1], fused_activation_function=act)


def test_avg_pool_divides_by_in_image_taps() -> None:
    """A 3x3 SAME average at a corner of a ones image is 1, not 4/9."""
    out = nn.AVERAGE_POOL_2D.reference([np.ones((1, 4, 4, 1), np.float32)], nn.PoolAttrs(
        padding="SAME", stride_h=1, stride_w=1, filter_h=3, filter_w=3, activation="NONE"))[0]
    np.testing.assert_array_equal(out, np.ones((1, 4, 4, 1), np.float32))


def test_max_pool_ignores_padding_for_negative_inputs() -> None:
    x = -np.arange(1, 17, dtype=np.float32).reshape(1, 4, 4, 1)
    check(nn.MAX_POOL_2D, [x], padding="SAME", stride_h=2, stride_w=2, filter_height=3,
          filter_width=3)


# ---- LiteRT behaviours the shape rules and kernels copy ------------------------------------------


@pytest.mark.parametrize("op, extra", [
    (nn.CONV_2D, {}), (nn.DEPTHWISE_CONV_2D, {}),
    (nn.AVERAGE_POOL_2D, {"filter_height": 2, "filter_width": 2}),
    (nn.MAX_POOL_2D, {"filter_height": 2, "filter_width": 2}),
], ids=["conv", "depthwise", "avg_pool", "max_pool"])
@pytest.mark.parametrize("act", ["TANH", "SIGN_BIT"])
def test_unclamped_activation_ignored(op: OpDef, extra: dict, act: str) -> None:
    """LiteRT's float conv/depthwise/pool kernels only apply clamp activations; TANH and SIGN_BIT
    are silently skipped (their activation range is unbounded)."""
    rng = np.random.default_rng(7)
    x = rand(rng, (1, 5, 5, 3), 3)
    inputs = [x]
    if op is nn.CONV_2D:
        inputs += [Const(rand(rng, (4, 2, 2, 3))), Const(rand(rng, (4,)))]
    elif op is nn.DEPTHWISE_CONV_2D:
        inputs += [Const(rand(rng, (1, 2, 2, 3))), Const(rand(rng, (3,)))]
    opts = dict(padding="SAME", stride_h=1, stride_w=1, **extra)
    ours, theirs = run_both(op, inputs, fused_activation_function=act, **opts)
    plain, _ = run_both(op, inputs, **opts)
    assert_close(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[0], plain[0])


def test_valid_window_one_stride_too_big_gives_empty_output() -> None:
    """(in + stride - filter) / stride truncates to 0 in C++: LiteRT returns an empty tensor."""
    rng = np.random.default_rng(8)
    x = rand(rng, (1, 5, 5, 3))
    inputs = [x, Const(rand(rng, (4, 2, 6, 3))), Const(rand(rng, (4,)))]
    ours, theirs = run_both(nn.CONV_2D, inputs, padding="VALID", stride_h=1, stride_w=1)
    assert ours[0].shape == theirs[0].shape == (1, 4, 0, 4)
    ours, theirs = run_both(nn.MAX_POOL_2D, [x], padding="VALID", stride_h=2, stride_w=2,
                            filter_height=7, filter_width=7)
    assert ours[0].shape == theirs[0].shape == (1, 0, 0, 3)


def test_schema_defaults_when_options_absent() -> None:
    """An absent options table reads as the schema defaults: SAME, stride 0 (rejected by infer,
    as by LiteRT), dilation 1, no activation; pool filter 0 gives an empty output like LiteRT."""
    conv = nn.CONV_2D.parse({})
    assert (conv.padding, conv.stride, conv.dilation, conv.activation) == ("SAME", (0, 0), (1, 1),
                                                                           "NONE")
    x = np.zeros((1, 3, 3, 2), np.float32)
    with pytest.raises(OpError, match="stride_h"):
        nn.CONV_2D.infer(InferCtx("CONV_2D", conv, [x.shape, (2, 1, 1, 2), (2,)],
                                  [x.dtype] * 3, [None] * 3))
    pool = nn.MAX_POOL_2D.parse({"stride_h": 1, "stride_w": 1})
    assert nn.MAX_POOL_2D.infer(InferCtx("MAX_POOL_2D", pool, [x.shape], [x.dtype], [None])) == [
        ((1, 0, 0, 2), np.float32)]
    assert nn.FULLY_CONNECTED.parse({}) == nn.FcAttrs(activation="NONE", keep_num_dims=False)
    assert nn.BATCH_MATMUL.parse({}) == nn.BatchMatMulAttrs(adj_x=False, adj_y=False)


# ---- shape-rule errors: each is an OpError naming the tensor, and LiteRT refuses the same model --

F = np.float32
Z = np.zeros


ERROR_CASES = [
    # (id, op, inputs, options, dummy output spec, tensor the message must name, message fragment)
    ("conv-channels", nn.CONV_2D, [Z((1, 5, 5, 3), F), Const(Z((4, 3, 3, 2), F)), Const(Z(4, F))],
     dict(padding="SAME", stride_h=1, stride_w=1), (1, 5, 5, 4), "t1", "input channels"),
    ("conv-groups-out", nn.CONV_2D, [Z((1, 5, 5, 4), F), Const(Z((3, 3, 3, 2), F)), Const(Z(3, F))],
     dict(padding="SAME", stride_h=1, stride_w=1), (1, 5, 5, 3), "t1", "multiple of 2"),
    ("conv-bias-len", nn.CONV_2D, [Z((1, 5, 5, 3), F), Const(Z((4, 3, 3, 3), F)), Const(Z(5, F))],
     dict(padding="SAME", stride_h=1, stride_w=1), (1, 5, 5, 4), "t2", "4 output"),
    ("conv-no-bias", nn.CONV_2D, [Z((1, 5, 5, 3), F), Const(Z((4, 3, 3, 3), F)), None],
     dict(padding="SAME", stride_h=1, stride_w=1), (1, 5, 5, 4), "CONV_2D", "bias"),
    ("conv-rank", nn.CONV_2D, [Z((5, 5, 3), F), Const(Z((4, 3, 3, 3), F)), Const(Z(4, F))],
     dict(padding="SAME", stride_h=1, stride_w=1), (1, 5, 5, 4), "t0", "4-D"),
    ("conv-dilation0", nn.CONV_2D, [Z((1, 5, 5, 3), F), Const(Z((4, 3, 3, 3), F)), Const(Z(4, F))],
     dict(padding="SAME", stride_h=1, stride_w=1, dilation_w_factor=0), (1, 5, 5, 4), "CONV_2D",
     "dilation_w_factor"),
    ("conv-valid-negative", nn.CONV_2D, [Z((1, 5, 5, 3), F), Const(Z((4, 2, 7, 3), F)),
                                         Const(Z(4, F))],
     dict(padding="VALID", stride_h=1, stride_w=1), (1, 4, 1, 4), "t0", "exceeds"),
    ("conv-bias-int", nn.CONV_2D, [Z((1, 5, 5, 3), F), Const(Z((4, 3, 3, 3), F)),
                                   Const(Z(4, np.int32))],
     dict(padding="SAME", stride_h=1, stride_w=1), (1, 5, 5, 4), "t2", "float32"),
    ("dw-first-dim", nn.DEPTHWISE_CONV_2D, [Z((1, 5, 5, 3), F), Const(Z((2, 3, 3, 6), F)),
                                            Const(Z(6, F))],
     dict(padding="SAME", stride_h=1, stride_w=1), (1, 5, 5, 6), "t1", "[1, KH, KW"),
    ("dw-channels", nn.DEPTHWISE_CONV_2D, [Z((1, 5, 5, 3), F), Const(Z((1, 3, 3, 4), F)),
                                           Const(Z(4, F))],
     dict(padding="SAME", stride_h=1, stride_w=1), (1, 5, 5, 4), "t0", "multiple"),
    ("dw-bias-len", nn.DEPTHWISE_CONV_2D, [Z((1, 5, 5, 3), F), Const(Z((1, 3, 3, 6), F)),
                                           Const(Z(3, F))],
     dict(padding="SAME", stride_h=1, stride_w=1), (1, 5, 5, 6), "t2", "6 output"),
    ("fc-weights-rank", nn.FULLY_CONNECTED, [Z((2, 4), F), Const(Z((3, 4, 1), F)), Const(Z(3, F))],
     {}, (2, 3), "t1", "2-D"),
    ("fc-bias-len", nn.FULLY_CONNECTED, [Z((2, 4), F), Const(Z((3, 4), F)), Const(Z(2, F))],
     {}, (2, 3), "t2", "3 output"),
    ("fc-keep-dims", nn.FULLY_CONNECTED, [Z((2, 3, 4), F), Const(Z((3, 6), F)), Const(Z(3, F))],
     dict(keep_num_dims=True), (2, 3, 3), "t0", "keep_num_dims"),
    ("bmm-inner", nn.BATCH_MATMUL, [Z((2, 3), F), Z((4, 2), F)], {}, (2, 2), "t1", "inner"),
    ("bmm-batch", nn.BATCH_MATMUL, [Z((2, 2, 3), F), Z((3, 3, 2), F)], {}, (2, 2, 2), "t1",
     "broadcast"),
    ("bmm-rank1", nn.BATCH_MATMUL, [Z((3,), F), Z((3, 2), F)], {}, (2,), "t0", "rank 2 to 5"),
    ("bmm-rank6", nn.BATCH_MATMUL, [Z((1, 1, 1, 1, 2, 3), F), Z((3, 2), F)], {}, (1, 1, 1, 1, 2, 2),
     "t0", "rank 2 to 5"),
    ("pool-stride0", nn.MAX_POOL_2D, [Z((1, 5, 5, 3), F)],
     dict(padding="VALID", filter_height=2, filter_width=2), (1, 4, 4, 3), "MAX_POOL_2D", "stride_h"),
    ("pool-rank", nn.AVERAGE_POOL_2D, [Z((5, 5, 3), F)],
     dict(padding="VALID", stride_h=1, stride_w=1, filter_height=2, filter_width=2), (4, 4, 3), "t0",
     "4-D"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_shape_rule_errors(case: tuple) -> None:
    _, op, inputs, options, out_shape, names, fragment = case
    with pytest.raises(OpError) as e:
        infer(op, inputs, **options)
    assert names in str(e.value) and fragment in str(e.value), str(e.value)
    assert op.name in str(e.value)
    litert_rejects(op, inputs, [(out_shape, np.float32)], **options)


# ---- metadata -----------------------------------------------------------------------------------


def test_kinds_and_costs() -> None:
    for op in (nn.CONV_2D, nn.DEPTHWISE_CONV_2D, nn.FULLY_CONNECTED, nn.BATCH_MATMUL,
               nn.AVERAGE_POOL_2D, nn.MAX_POOL_2D):
        assert op.kind == PatternKind.OUT_ELEMWISE_FUSABLE
    attrs = nn.CONV_2D.parse({"stride_h": 1, "stride_w": 1})
    c = nn.CONV_2D.cost([(1, 8, 8, 3), (4, 3, 3, 3), (4,)], [(1, 8, 8, 4)], attrs)
    assert c.flops == 2 * 64 * 4 * 27 and c.bytes == 4 * (192 + 108 + 4 + 256)
    c = nn.FULLY_CONNECTED.cost([(5, 6), (3, 6), None], [(5, 3)], nn.FULLY_CONNECTED.parse({}))
    assert c.flops == 2 * 5 * 3 * 6 and c.bytes == 4 * (30 + 18 + 15)
    c = nn.BATCH_MATMUL.cost([(2, 4, 3), (3, 5)], [(2, 4, 5)], nn.BATCH_MATMUL.parse({"adj_x": False}))
    assert c.flops == 2 * 40 * 3


def test_missing_inputs_are_op_errors() -> None:
    """A malformed node (too few inputs) must give an OpError, never an IndexError."""
    x = np.zeros((1, 4, 4, 2), np.float32)
    with pytest.raises(OpError, match="filter"):
        infer(nn.CONV_2D, [x], padding="SAME", stride_h=1, stride_w=1)
    with pytest.raises(OpError, match="input 0"):
        infer(nn.FULLY_CONNECTED, [None, Const(np.zeros((2, 2), np.float32))])


@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D"])
@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_huge_dilation_without_huge_memory(op: str, backend: str) -> None:
    """A dilation of 30000 on a 6x6 image: the reference kernel gathers its windows instead of
    padding the input to the dilated extent (which took GBs for an 800-byte model)."""
    import resource

    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 6, 6, 2), np.float32)
    w = g.const("w", rng.standard_normal((3, 3, 3, 2) if op == "CONV_2D" else (1, 3, 3, 2)).astype(np.float32))
    b = g.const("b", np.zeros(3 if op == "CONV_2D" else 2, np.float32))
    (y,) = g.apply(op, [x, w, b], padding=0, stride_h=1, stride_w=1, dilation_h_factor=30000,
                   dilation_w_factor=30000)
    g.output(y)
    m = mb.build()
    xv = rng.standard_normal((1, 6, 6, 2)).astype(np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    it = tflite_jit.Interpreter(model_content=m, backend=backend)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], xv)
    it.invoke()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: < 200 MB
    assert_close(it.get_tensor(it.get_output_details()[0]["index"]), litert_run(m, [xv])[0])


@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D"])
def test_dilation_over_int16_rejected_like_litert(op: str) -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 6, 6, 2), np.float32)
    w = g.const("w", np.ones((3, 3, 3, 2) if op == "CONV_2D" else (1, 3, 3, 2), np.float32))
    b = g.const("b", np.zeros(3 if op == "CONV_2D" else 2, np.float32))
    y = g.tensor("y", (1, 6, 6, 3 if op == "CONV_2D" else 2))
    g.op(op, [x, w, b], [y], padding=0, stride_h=1, stride_w=1, dilation_h_factor=1, dilation_w_factor=32768)
    g.output(y)
    m = mb.build()
    with pytest.raises(RuntimeError, match="INT16_MAX"):
        litert_run(m, [np.ones((1, 6, 6, 2), np.float32)])
    with pytest.raises(RuntimeError, match="32767"):
        tflite_jit.Interpreter(model_content=m).allocate_tensors()
