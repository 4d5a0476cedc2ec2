"""Quantized comparisons, SQUARED_DIFFERENCE, ABS, NEG, SQRT, RSQRT, EXP, LOG, BATCH_MATMUL,
TRANSPOSE_CONV and PRELU against LiteRT's builtin kernels, bit for bit (hypothesis over scales,
zero points, shapes; power-of-two scales put many results on rounding ties)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.ops.test_qmovement import qmodel, rand
from tests.oracle import assert_bit_exact, assert_both_reject, litert_run, run_engine
from tflite_jit.format.builder import ModelBuilder

HYP = settings(max_examples=25, deadline=None)
F32 = np.float32
BOOL = np.dtype(np.bool_)
CMP_OPS = ["EQUAL", "NOT_EQUAL", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL"]
SHAPES = st.sampled_from([((3, 17), (3, 17)), ((2, 3, 4), (4,)), ((1, 3, 1), (2, 1, 5)), ((5,), ())])


def f32(v: float) -> float:
    return float(F32(v))


def zp_for(dtype, rng, spread=30):
    if dtype is np.int16:
        return 0
    return int(rng.integers(-spread, spread)) + (128 if dtype is np.uint8 else 0)


# ---- comparisons ------------------------------------------------------------------------------------

@HYP
@given(op=st.sampled_from(CMP_OPS), dtype=st.sampled_from([np.int8, np.uint8]), shapes=SHAPES,
       ratio=st.sampled_from([1.0, 0.5, 2.0, 0.25, 0.3, 1.7]), pow2=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_comparisons_rescale_both_inputs(op, dtype, shapes, ratio, pow2, seed):
    rng = np.random.default_rng(seed)
    s1 = 2.0 ** -int(rng.integers(3, 9)) if pow2 else f32(rng.uniform(0.002, 0.3))
    q1, q2 = (s1, zp_for(dtype, rng)), (f32(s1 * ratio), zp_for(dtype, rng))
    out = np.broadcast_shapes(*shapes)
    m = qmodel(op, [("in", shapes[0], dtype, q1), ("in", shapes[1], dtype, q2)], q1, out=[(out, BOOL)])
    assert_bit_exact(m, [rand(rng, shapes[0], dtype), rand(rng, shapes[1], dtype)], backends=(None, "reference"))


def test_comparison_rescaling_is_not_raw():
    """Equal raw values with different scales compare unequal (and vice versa)."""
    q1, q2 = (0.1, 0), (0.05, 0)
    m = qmodel("EQUAL", [("in", (3,), np.int8, q1), ("in", (3,), np.int8, q2)], q1, out=[((3,), BOOL)])
    x, y = np.array([2, 4, 6], np.int8), np.array([4, 4, 12], np.int8)
    assert run_engine(m, [x, y])[0][0].tolist() == [True, False, True]
    assert_bit_exact(m, [x, y])


@pytest.mark.parametrize("op", CMP_OPS)
def test_comparisons_int16_match_or_both_reject(op):
    rng = np.random.default_rng(1)
    q = (0.001, 0)
    m = qmodel(op, [("in", (40,), np.int16, q), ("in", (40,), np.int16, (0.002, 0))], q, out=[((40,), BOOL)])
    xs = [rand(rng, (40,), np.int16), rand(rng, (40,), np.int16)]
    try:
        theirs = litert_run(m, xs)[0]
    except RuntimeError:
        with pytest.raises(RuntimeError, match="int16"):
            run_engine(m, xs)
        return
    np.testing.assert_array_equal(run_engine(m, xs)[0][0], theirs)


@pytest.mark.parametrize("op", CMP_OPS)
@pytest.mark.parametrize("s1,s2,z1,z2", [(3e-4, 2e-4, 0, 0), (0.02, 0.05, 3, -5), (2e-5, 7e-5, -100, 7)])
def test_comparisons_int16_near_equal_values(op, s1, s2, z1, z2):
    """Every int16 value against one that dequantizes to nearly the same real number: LiteRT's
    int16 EQUAL / NOT_EQUAL rescale both sides like int8 (values 0.1 % apart can be equal), its
    ordering comparisons compare raw values. Random inputs almost never hit these pairs."""
    x = np.arange(-32768, 32768).astype(np.int16)
    near = np.round((x.astype(np.float64) - z1) * s1 / s2) + z2 + np.random.default_rng(1).integers(-1, 2, x.size)
    y = np.clip(near, -32768, 32767).astype(np.int16)
    m = qmodel(op, [("in", x.shape, np.int16, (s1, z1)), ("in", x.shape, np.int16, (s2, z2))], (s1, z1),
               out=[(x.shape, BOOL)])
    assert_bit_exact(m, [x, y], backends=("numba", "reference"))


def test_comparison_scale_at_least_one_rejected():
    m = qmodel("LESS", [("in", (3,), np.int8, (1.5, 0)), ("in", (3,), np.int8, (0.5, 0))], (1.5, 0),
               out=[((3,), BOOL)])
    with pytest.raises(RuntimeError, match="scales below 1"):
        run_engine(m, [np.zeros(3, np.int8)] * 2)


# ---- SQUARED_DIFFERENCE -------------------------------------------------------------------------------

@HYP
@given(shapes=SHAPES, pow2=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_squared_difference_int8(shapes, pow2, seed):
    rng = np.random.default_rng(seed)
    if pow2:
        s1, s2, so = 2.0 ** -5, 2.0 ** -int(rng.integers(4, 7)), 2.0 ** -int(rng.integers(0, 3))
    else:
        s1, s2, so = f32(rng.uniform(0.01, 0.1)), f32(rng.uniform(0.01, 0.1)), f32(rng.uniform(0.05, 0.5))
    q1, q2, qo = (s1, zp_for(np.int8, rng)), (s2, zp_for(np.int8, rng)), (so, int(rng.integers(-128, -60)))
    out = np.broadcast_shapes(*shapes)
    m = qmodel("SQUARED_DIFFERENCE", [("in", shapes[0], np.int8, q1), ("in", shapes[1], np.int8, q2)], q1,
               out_q=qo, out=[(out, np.dtype(np.int8))])
    assert_bit_exact(m, [rand(rng, shapes[0], np.int8), rand(rng, shapes[1], np.int8)], backends=(None, "reference"))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16])
def test_squared_difference_other_types_rejected(dtype):
    q = (0.01, 0)
    m = qmodel("SQUARED_DIFFERENCE", [("in", (4,), dtype, q), ("in", (4,), dtype, q)], q,
               out=[((4,), np.dtype(dtype))])
    assert_both_reject(m, [np.zeros(4, dtype)] * 2, "int8 only")


# ---- unary ops ------------------------------------------------------------------------------------------

UNARY = ["ABS", "NEG", "SQRT", "RSQRT", "EXP", "LOG"]


@HYP
@given(op=st.sampled_from(UNARY), same_scale=st.booleans(), pow2=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_unary_int8_every_value(op, same_scale, pow2, seed):
    rng = np.random.default_rng(seed)
    si = 2.0 ** -int(rng.integers(3, 7)) if pow2 else f32(rng.uniform(0.005, 0.1))
    zi = int(rng.integers(-128, -90)) if op in ("SQRT", "RSQRT") else zp_for(np.int8, rng)
    so = si if same_scale else (2.0 ** -int(rng.integers(2, 7)) if pow2 else f32(rng.uniform(0.005, 0.2)))
    qi, qo = (si, zi), (so, zp_for(np.int8, rng, 100))
    x = np.arange(-128, 128)
    if op in ("SQRT", "RSQRT"):
        x = np.clip(x, zi, 127)
    x = x.astype(np.int8)
    m = qmodel(op, [("in", x.shape, np.int8, qi)], qi, out_q=qo, out=[(x.shape, np.dtype(np.int8))])
    assert_bit_exact(m, [x], backends=(None, "reference"))


@HYP
@given(op=st.sampled_from(["ABS", "NEG", "SQRT"]), same_scale=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_unary_int16(op, same_scale, seed):
    rng = np.random.default_rng(seed)
    si = f32(rng.uniform(1e-4, 1e-3))
    so = si if same_scale else f32(rng.uniform(1e-4, 1e-3))
    x = rand(rng, (300,), np.int16)
    if op == "SQRT":
        x = np.abs(x.astype(np.int64)).clip(0, 32767).astype(np.int16)
    m = qmodel(op, [("in", x.shape, np.int16, (si, 0))], (si, 0), out_q=(so, 0), out=[(x.shape, np.dtype(np.int16))])
    assert_bit_exact(m, [x], backends=(None, "reference"))


def test_abs_int16_without_quantization_is_plain_abs():
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (4,), np.int16)
    y = g.tensor("y", (4,), np.int16)
    g.op("ABS", [x], [y])
    g.output(y)
    m = mb.build()
    v = np.array([-32768, -5, 0, 7], np.int16)
    assert_bit_exact(m, [v])


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
@pytest.mark.parametrize("op", ["SQRT", "RSQRT"])
def test_negative_input_rejected_at_run_time(op, dtype):
    q = (0.05, 10) if dtype is np.int8 else (0.001, 0)
    m = qmodel(op, [("in", (3,), dtype, q)], q, out=[((3,), np.dtype(dtype))])
    x = np.array([10, 20, 5] if dtype is np.int8 else [10, 20, -5], dtype)  # a negative real value
    with pytest.raises(RuntimeError):
        litert_run(m, [x])
    with pytest.raises(RuntimeError, match="only defined for"):
        run_engine(m, [x])


@pytest.mark.parametrize("op", UNARY)
def test_unary_uint8_rejected(op):
    q = (0.05, 128)
    m = qmodel(op, [("in", (3,), np.uint8, q)], q, out=[((3,), np.dtype(np.uint8))])
    assert_both_reject(m, [np.full(3, 130, np.uint8)], "uint8")


@HYP
@given(op=st.sampled_from(["EXP", "LOG", "RSQRT"]), seed=st.integers(0, 2**31 - 1))
def test_unary_int16_tables_every_value(op, seed):
    """int16 EXP / LOG / RSQRT: LiteRT's 513-entry interpolated tables, over all 65536 inputs."""
    rng = np.random.default_rng(seed)
    si = f32(rng.uniform(1e-5, 1e-4)) if op == "EXP" else f32(rng.uniform(1e-4, 1e-3))
    so = f32(rng.uniform(1e-4, 1e-3))
    x = np.arange(0 if op == "RSQRT" else -32768, 32768).astype(np.int16)
    m = qmodel(op, [("in", x.shape, np.int16, (si, 0))], (si, 0), out_q=(so, 0), out=[(x.shape, np.dtype(np.int16))])
    assert_bit_exact(m, [x], backends=(None, "reference"))


@pytest.mark.parametrize("op", ["ABS", "SQRT", "RSQRT", "EXP", "LOG"])
def test_unary_int16_needs_zero_zero_point(op):
    q = (0.001, 5)
    m = qmodel(op, [("in", (3,), np.int16, q)], q, out_q=(0.001, 3), out=[((3,), np.dtype(np.int16))])
    assert_both_reject(m, [np.full(3, 10, np.int16)], "zero point 0")


# ---- BATCH_MATMUL -----------------------------------------------------------------------------------------

@HYP
@given(dtype=st.sampled_from([np.int8, np.int16]), adj=st.sampled_from([(False, False), (True, False), (False, True), (True, True)]),
       batch=st.sampled_from([((), ()), ((2,), (2,)), ((3, 1), (2,)), ((), (2,))]), k=st.integers(1, 9),
       pow2=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_batch_matmul(dtype, adj, batch, k, pow2, seed):
    rng = np.random.default_rng(seed)
    small = 1e-3 if dtype is np.int16 else 0.05
    if pow2:
        sx, sy = 2.0 ** -int(rng.integers(3, 8)), 2.0 ** -int(rng.integers(3, 8))
        so = sx * sy * 2.0 ** int(rng.integers(3, 9))
    else:
        sx, sy = f32(rng.uniform(small / 10, small)), f32(rng.uniform(small / 10, small))
        so = f32(sx * sy * rng.uniform(10, 300))
    qx, qy, qo = (sx, zp_for(dtype, rng)), (sy, zp_for(dtype, rng)), (so, zp_for(dtype, rng))
    m_, n_ = 3, 4
    xs = batch[0] + ((k, m_) if adj[0] else (m_, k))
    ys = batch[1] + ((n_, k) if adj[1] else (k, n_))
    out = np.broadcast_shapes(batch[0], batch[1]) + (m_, n_)
    m = qmodel("BATCH_MATMUL", [("in", xs, dtype, qx), ("in", ys, dtype, qy)], qx, out_q=qo,
               out=[(out, np.dtype(dtype))], adj_x=adj[0], adj_y=adj[1])
    assert_bit_exact(m, [rand(rng, xs, dtype), rand(rng, ys, dtype)], backends=(None, "reference"))


def test_batch_matmul_uint8_rejected():
    q = (0.05, 128)
    m = qmodel("BATCH_MATMUL", [("in", (2, 3), np.uint8, q), ("in", (3, 2), np.uint8, q)], q,
               out=[((2, 2), np.dtype(np.uint8))])
    assert_both_reject(m, [np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8)], "uint8")


def test_batch_matmul_int16_needs_zero_zero_point():
    q = (0.001, 3)
    m = qmodel("BATCH_MATMUL", [("in", (2, 3), np.int16, q), ("in", (3, 2), np.int16, q)], q,
               out=[((2, 2), np.dtype(np.int16))])
    with pytest.raises(RuntimeError, match="zero point 0"):
        run_engine(m, [np.zeros((2, 3), np.int16), np.zeros((3, 2), np.int16)])


# ---- TRANSPOSE_CONV -----------------------------------------------------------------------------------------

def tconv_model(rng, dtype, n_out, padding, stride, act, pow2, bias=True, cin=4, h=5, k=3):
    mb = ModelBuilder()
    g = mb.subgraph()
    oh = h * stride if padding == "SAME" else (h - 1) * stride + k
    os_ = g.const("os", np.array([1, oh, oh, n_out], np.int32))
    if pow2:
        sw = [2.0 ** -7] * n_out
        si = 2.0 ** -4 if dtype is np.int8 else 2.0 ** -12
    else:
        sw = [f32(v) for v in rng.uniform(0.002, 0.02, n_out)]
        si = f32(rng.uniform(0.01, 0.1)) if dtype is np.int8 else f32(rng.uniform(1e-4, 1e-3))
    zi = zp_for(dtype, rng, 20)
    so, zo = si * 4, zp_for(dtype, rng, 20)
    w = g.const("w", rng.integers(-127, 128, (n_out, k, k, cin)).astype(np.int8), scale=sw,
                zero_point=[0] * n_out, quantized_dimension=0)
    x = g.input("x", (1, h, h, cin), dtype, scale=si, zero_point=zi)
    ins = [os_, w, x]
    if bias:
        bdt = np.int32 if dtype is np.int8 else np.int64
        ins.append(g.const("b", rng.integers(-3000, 3000, n_out).astype(bdt), scale=[si * v for v in sw],
                           zero_point=[0] * n_out))
    y = g.tensor("y", (1, oh, oh, n_out), dtype, scale=so, zero_point=zo)
    g.op("TRANSPOSE_CONV", ins, [y], version=3, padding=padding, stride_h=stride, stride_w=stride,
         fused_activation_function=act)
    g.output(y)
    return mb.build()


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
@pytest.mark.parametrize("n_out", [3, 8, 11, 16])
@pytest.mark.parametrize("padding,stride", [("SAME", 1), ("SAME", 2), ("VALID", 1), ("VALID", 2)])
def test_transpose_conv(dtype, n_out, padding, stride):
    """Power-of-two scales give exact ties, where RHU2 (channel blocks of 8) and MBQM (the
    remaining channels) differ."""
    rng = np.random.default_rng(n_out * 10 + stride)
    for act, pow2, bias in ((0, True, True), (1, False, True), (0, False, False)):
        m = tconv_model(rng, dtype, n_out, padding, stride, act, pow2, bias)
        assert_bit_exact(m, [rand(rng, (1, 5, 5, 4), dtype)])


@pytest.mark.parametrize("cin,simd", [(4, True), (128, False)])
def test_transpose_conv_int8_kernel_choice(monkeypatch, cin, simd):
    """int8 takes the float-SIMD kernel while every partial sum is exact in float32 (below 2**24),
    the int64 loop beyond that (128 channels x 9 taps of |w| to 127 and |x - zi| to 255): both
    compiled, both bit-exact. The generators are watched, so a silent fall-back would show."""
    from tflite_jit.backends.numba_cpu.generators import tconv

    chosen = []
    real_simd, real_int = tconv._int8_simd, tconv._integer
    monkeypatch.setattr(tconv, "_int8_simd", lambda *a: chosen.append("simd") or real_simd(*a))
    monkeypatch.setattr(tconv, "_integer", lambda *a: chosen.append("int64") or real_int(*a))
    rng = np.random.default_rng(cin)
    m = tconv_model(rng, np.int8, 19, "SAME", 1, 0, False, True, cin=cin)
    feeds = [rand(rng, (1, 5, 5, cin), np.int8)]
    ours, backends = run_engine(m, feeds)
    assert backends == ["numba_cpu"]
    assert chosen == (["simd"] if simd else ["simd", "int64"])
    np.testing.assert_array_equal(ours[0], litert_run(m, feeds)[0])


def test_transpose_conv_bias_type_checked():
    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    g = mb.subgraph()
    os_ = g.const("os", np.array([1, 5, 5, 2], np.int32))
    w = g.const("w", np.ones((2, 3, 3, 1), np.int8), scale=[0.01, 0.01], zero_point=[0, 0])
    x = g.input("x", (1, 5, 5, 1), np.int8, scale=0.1, zero_point=0)
    b = g.const("b", np.zeros(2, np.int64), scale=[0.001, 0.001], zero_point=[0, 0])
    y = g.tensor("y", (1, 5, 5, 2), np.int8, scale=0.2, zero_point=0)
    g.op("TRANSPOSE_CONV", [os_, w, x, b], [y], version=3, padding="SAME", stride_h=1, stride_w=1)
    g.output(y)
    with pytest.raises(RuntimeError, match="int32 bias"):
        run_engine(mb.build(), [rand(rng, (1, 5, 5, 1), np.int8)])


# ---- PRELU ---------------------------------------------------------------------------------------------------

@HYP
@given(dtype=st.sampled_from([np.int8, np.uint8]), alpha_shape=st.sampled_from([(16,), (4, 16), (1, 1), ()]),
       pow2=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_prelu(dtype, alpha_shape, pow2, seed):
    rng = np.random.default_rng(seed)
    if pow2:
        si, sa, so = 2.0 ** -4, 2.0 ** -7, 2.0 ** -int(rng.integers(3, 7))
    else:
        si, sa, so = f32(rng.uniform(0.01, 0.1)), f32(rng.uniform(0.001, 0.02)), f32(rng.uniform(0.01, 0.1))
    qi, qa, qo = (si, zp_for(dtype, rng)), (sa, zp_for(dtype, rng)), (so, zp_for(dtype, rng))
    m = qmodel("PRELU", [("in", (2, 4, 16), dtype, qi), ("in", alpha_shape, dtype, qa)], qi, out_q=qo,
               out=[((2, 4, 16), np.dtype(dtype))])
    assert_bit_exact(m, [rand(rng, (2, 4, 16), dtype), rand(rng, alpha_shape, dtype)], backends=(None, "reference"))


@pytest.mark.parametrize("alpha_dtype,alpha_shape", [(np.int8, (1,)), (np.int8, (4,)), (np.int16, (4,)),
                                                      (np.int16, (1,))])
@pytest.mark.parametrize("si,sa,so,za", [(1e-3, 1e-3, 1e-3, 0), (3e-4, 2e-3, 5e-4, 3), (2e-4, 0.01, 3e-3, -4)])
def test_prelu_int16_every_input(alpha_dtype, alpha_shape, si, sa, so, za):
    """16x8 PRELU over all 65536 inputs: int8 alpha (the converter's), and an int16 alpha, whose
    bytes LiteRT's int16 kernel reads as int8 values (measured), as we do."""
    x = np.arange(-32768, 32768).astype(np.int16).reshape(-1, 4)
    lo, hi = (-128, 128) if alpha_dtype is np.int8 else (-300, 300)
    alpha = np.random.default_rng(int(si * 1e4)).integers(lo, hi, alpha_shape).astype(alpha_dtype)
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", x.shape, np.int16, scale=si, zero_point=0)
    a = g.const("alpha", alpha, scale=sa, zero_point=za)
    y = g.tensor("y", x.shape, np.int16, scale=so, zero_point=0)
    g.op("PRELU", [xi, a], [y])
    g.output(y)
    assert_bit_exact(mb.build(), [x], backends=("numba", "reference"))


@pytest.mark.parametrize("op", ["LESS", "ABS", "NEG", "SQRT", "EXP", "LOG", "RSQRT", "SQUARED_DIFFERENCE",
                                "BATCH_MATMUL", "PRELU"])
def test_float_path_unchanged(op):
    """The ops given integer kernels here still run their float definition on float32."""
    rng = np.random.default_rng(0)
    f = np.float32
    two = op in ("LESS", "SQUARED_DIFFERENCE", "BATCH_MATMUL", "PRELU")
    shapes = [(3, 4), (4, 2)] if op == "BATCH_MATMUL" else ([(3, 4), (4,)] if two else [(3, 4)])
    out = [((3, 2) if op == "BATCH_MATMUL" else (3, 4), BOOL if op == "LESS" else np.dtype(f))]
    m = qmodel(op, [("in", s, f, None) for s in shapes], None, out=out)
    xs = [rng.standard_normal(s).astype(f) for s in shapes]
    if op in ("SQRT", "LOG", "RSQRT"):
        xs = [np.abs(x) + f(0.1) for x in xs]
    theirs, ours = litert_run(m, xs)[0], run_engine(m, xs)[0][0]
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
