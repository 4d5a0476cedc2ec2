"""The Numba backend's int16 (16x8 models) kernels other than the convolutions: ADD, SUB, MUL
(generators/qeltwise.py), QUANTIZE float32 -> int16 and integer requantization, DEQUANTIZE int16
(qquant.py), AVERAGE_POOL_2D / MAX_POOL_2D (qpool.py), MEAN (qreduce.py) and int16 SOFTMAX
(qsoftmax.py). Every case runs the default chain, the reference backend and LiteRT's builtin
kernels and asserts the three equal to the last bit, and the plan proves the node ran on
numba_cpu (no silent fallback). Power-of-two scales put the rescales on exact rounding ties
(half up versus half away from zero), full-range inputs and tiny output scales saturate, and
MUL scales with s1 * s2 > so give multipliers with a left shift."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import litert_run
from tflite_jit.format.builder import ModelBuilder

HYP = settings(max_examples=6, deadline=None)
I16 = np.int16


def run(model: bytes, xs: list[np.ndarray], backend: str | None = None, threads: int | None = None):
    it = tflite_jit.Interpreter(model_content=model, backend=backend, num_threads=threads)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy(), it._interpreter.execs[0]


def check(model: bytes, xs: list[np.ndarray], threads: int | None = None):
    """Ours (default chain, on numba_cpu) == reference == LiteRT builtin, dtype and shape included;
    returns our output and the executable."""
    ours, ex = run(model, xs, threads=threads)
    assert {p["backend"] for p in ex.plan} == {"numba_cpu"}, ex.plan
    ref, _ = run(model, xs, backend="reference")
    theirs = litert_run(model, xs)[0]
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ref, theirs, err_msg="reference")
    np.testing.assert_array_equal(ours, theirs, err_msg="numba_cpu")
    return ours, ex


def r16(rng, shape) -> np.ndarray:
    x = rng.integers(-32768, 32768, size=shape).astype(I16)
    flat = x.reshape(-1)
    flat[:4] = [-32768, 32767, 0, -1][:flat.size]  # the extremes saturate
    return x


def scale(rng, pow2: bool, lo: float, hi: float) -> float:
    return 2.0 ** float(np.round(np.log2(rng.uniform(lo, hi)))) if pow2 else float(np.float32(rng.uniform(lo, hi)))


def binary(op: str, shape, shape2, s1, s2, so, act: int, swap: bool = False) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    sa, sb = (shape2, shape) if swap else (shape, shape2)
    a = g.input("a", sa, I16, scale=s1, zero_point=0)
    b = g.input("b", sb, I16, scale=s2, zero_point=0)
    y = g.tensor("y", shape, I16, scale=so, zero_point=0)
    g.op(op, [a, b], [y], fused_activation_function=act)
    g.output(y)
    return mb.build()


def unary(op: str, x_spec, y_spec, const=None, **options) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", x_spec[0], x_spec[1], **x_spec[2])
    ins = [x] + ([g.const("c", const)] if const is not None else [])
    y = g.tensor("y", y_spec[0], y_spec[1], **y_spec[2])
    g.op(op, ins, [y], **options)
    g.output(y)
    return mb.build()


# ---- ADD / SUB / MUL ---------------------------------------------------------------------------------

SHAPES = st.lists(st.integers(1, 9), min_size=1, max_size=4)


@HYP
@given(op=st.sampled_from(["ADD", "SUB", "MUL"]), shape=SHAPES, data=st.data(), pow2=st.booleans(),
       act=st.sampled_from([0, 1, 3]), seed=st.integers(0, 2**31 - 1))
def test_binary_int16(op, shape, data, pow2, act, seed):
    """Same shapes (ADD's 16-element blocks round once, the tail twice) or a broadcast operand on
    either side."""
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    k = data.draw(st.integers(0, len(shape)))
    shape2 = tuple(d if data.draw(st.booleans()) else 1 for d in shape[len(shape) - k:]) \
        if data.draw(st.booleans()) else shape
    s1, s2 = scale(rng, pow2, 1e-4, 1e-2), scale(rng, pow2, 1e-4, 1e-2)
    so = scale(rng, pow2, 1e-6, 1e-3) if op == "MUL" else scale(rng, pow2, 1e-4, 2e-2)
    if op in ("ADD", "SUB") and pow2:
        s1 *= 1.5  # all three powers of two take LiteRT's shift-only int16 path, which we reject
    swap = data.draw(st.booleans())
    m = binary(op, shape, shape2, s1, s2, so, act, swap)
    xs = [r16(rng, shape2 if swap else shape), r16(rng, shape if swap else shape2)]
    check(m, xs)


@pytest.mark.parametrize("op,shape,shape2", [
    ("ADD", (1, 14, 14, 40), (1, 14, 14, 40)), ("SUB", (1, 5, 5, 19), (1, 5, 5, 19)),
    ("MUL", (1, 7, 7, 96), (1, 1, 1, 96)), ("MUL", (2, 3, 37), (2, 3, 37)),
])
def test_binary_int16_suite_shapes(op, shape, shape2):
    """Block-sized tensors (ADD: 16-element blocks plus a tail; MUL: squeeze-and-excite broadcast),
    with multipliers that shift left (s1 * s2 > so for MUL) and saturate."""
    rng = np.random.default_rng(7)
    so = 3e-5 if op != "MUL" else 2e-6
    check(binary(op, shape, shape2, 4.7e-4, 2.1e-4, so, 0), [r16(rng, shape), r16(rng, shape2)])


def test_add_int16_parallel():
    """Two threads: ADD's 16-element blocks split over a parallel loop, the same bits."""
    rng = np.random.default_rng(11)
    shape = (1, 56, 56, 24)
    _, ex = check(binary("ADD", shape, shape, 4.7e-4, 2.1e-4, 3e-4, 0), [r16(rng, shape), r16(rng, shape)], threads=2)
    assert any(getattr(getattr(s.kernel, "src", None), "parallel", False) for s in ex.steps)


# ---- QUANTIZE / DEQUANTIZE -----------------------------------------------------------------------------

@pytest.mark.parametrize("src,dst,zi,zo", [
    (np.int16, np.int16, 0, 0), (np.int16, np.int8, 0, -3), (np.int8, np.int16, 5, 0),
    (np.int8, np.int8, -7, 3), (np.uint8, np.int16, 130, 0), (np.int32, np.int16, 0, 0),
])
@pytest.mark.parametrize("pow2", [False, True])
def test_requantize(src, dst, zi, zo, pow2):
    """MBQM everywhere, except 8-bit -> 8-bit (RHU2 on 16-element blocks): 37 elements put a tail
    after two blocks; power-of-two scale ratios put every odd value on a tie."""
    rng = np.random.default_rng(3)
    info = np.iinfo(src)
    x = rng.integers(max(info.min, -(1 << 20)), min(info.max, 1 << 20) + 1, (1, 37)).astype(src)
    si = 2.0 ** -10 if pow2 else 3.1e-4
    # a ratio of 1/8: the multiplier 2**30 with a right shift of 2, so odd SRDHM results are ties
    so = si * (8.0 if pow2 else 0.77) * (256 if np.dtype(dst).itemsize < np.dtype(src).itemsize else 1)
    m = unary("QUANTIZE", (x.shape, src, dict(scale=si, zero_point=zi)), (x.shape, dst, dict(scale=so, zero_point=zo)))
    check(m, [x])


@pytest.mark.parametrize("shape", [(1, 19), (2, 8, 8, 3)])
def test_quantize_float_to_int16(shape):
    """The 8-element blocks round half to even, the tail half away; beyond-range values saturate."""
    rng = np.random.default_rng(5)
    s = 2.0 ** -9
    k = rng.integers(-40000, 40000, size=shape)
    x = ((k + 0.5) * s).astype(np.float32)
    x.reshape(-1)[:4] = [100.0, -100.0, 63.99, -64.0]
    check(unary("QUANTIZE", (shape, np.float32, {}), (shape, I16, dict(scale=s, zero_point=0))), [x])


def test_quantize_float_to_int16_non_finite():
    """NaN, infinities and values beyond int32 in the 8-element blocks and the tail: LiteRT's x86
    conversion gives INT32_MIN, clamped to -32768 (the blocks clamp in float32 instead)."""
    x = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 3e9, -3e9, 1e9, 0, 2.5, -2.5, 32767.5, -32768.5,
                  32768.0, -32769.0, 3.5, np.nan, np.inf, -np.inf, 3e9, 40000.0], np.float32)
    check(unary("QUANTIZE", (x.shape, np.float32, {}), (x.shape, I16, dict(scale=1.0, zero_point=0))), [x])


def test_dequantize_int16():
    rng = np.random.default_rng(6)
    x = r16(rng, (2, 5, 7))
    m = unary("DEQUANTIZE", (x.shape, I16, dict(scale=3.3e-4, zero_point=0)), (x.shape, np.float32, {}))
    ours, ex = run(m, [x])
    assert {p["backend"] for p in ex.plan} == {"numba_cpu"}, ex.plan
    np.testing.assert_array_equal(ours, run(m, [x], backend="reference")[0])
    np.testing.assert_array_equal(ours, litert_run(m, [x])[0])


# ---- pools / MEAN ------------------------------------------------------------------------------------

@HYP
@given(op=st.sampled_from(["AVERAGE_POOL_2D", "MAX_POOL_2D"]), h=st.integers(1, 9), w=st.integers(1, 9),
       c=st.integers(1, 20), f=st.integers(1, 4), stride=st.integers(1, 3), padding=st.sampled_from([0, 1]),
       act=st.sampled_from([0, 1, 3]), seed=st.integers(0, 2**31 - 1))
def test_pools_int16(op, h, w, c, f, stride, padding, act, seed):
    rng = np.random.default_rng(seed)
    fh, fw = (min(f, h), min(f, w)) if padding == 1 else (f, f)
    oh = -(-h // stride) if padding == 0 else (h - fh) // stride + 1
    ow = -(-w // stride) if padding == 0 else (w - fw) // stride + 1
    q = dict(scale=2.0 ** -12, zero_point=0)
    m = unary(op, ((1, h, w, c), I16, q), ((1, oh, ow, c), I16, q), padding=padding, stride_h=stride,
              stride_w=stride, filter_height=fh, filter_width=fw, fused_activation_function=act)
    check(m, [r16(rng, (1, h, w, c))])


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("shape,axis", [((1, 7, 7, 35), (1, 2)), ((2, 3, 5, 18), (2, 1)), ((2, 6, 40), (1,)),
                                        ((1, 5, 6, 20), (1, 2, 1)), ((1, 4, 5, 17), (-3, -2))])
def test_mean_int16(shape, axis, keep):
    """int16 MEAN is LiteRT's reference formula, keep_dims or not (no optimized 8-bit case)."""
    rng = np.random.default_rng(8)
    red = {a % len(shape) for a in axis}
    out = tuple(1 if i in red else d for i, d in enumerate(shape)) if keep else \
        tuple(d for i, d in enumerate(shape) if i not in red)
    for so in (2.0 ** -12, 1.3e-4, 2.0 ** -16):  # ties, general, saturating
        m = unary("MEAN", (shape, I16, dict(scale=2.0 ** -12, zero_point=0)), (out, I16, dict(scale=so, zero_point=0)),
                  const=np.array(axis, np.int32), keep_dims=keep)
        check(m, [r16(rng, shape)])


# ---- SOFTMAX -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,si,beta", [((1, 1000), 3e-4, 1.0), ((3, 17), 2.0 ** -9, 1.0),
                                            ((2, 2, 9), 1e-3, 0.5), ((4, 1), 1e-3, 1.0)])
def test_softmax_int16(shape, si, beta):
    rng = np.random.default_rng(9)
    x = r16(rng, shape)
    x.reshape(-1, shape[-1])[0, :] = 1234  # a row of equal values
    m = unary("SOFTMAX", (shape, I16, dict(scale=si, zero_point=0)), (shape, I16, dict(scale=1 / 32768, zero_point=0)),
              beta=beta)
    check(m, [x])
