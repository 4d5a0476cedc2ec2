"""Quantized MEAN, SUM, REDUCE_MAX/MIN/PROD, SOFTMAX (8-bit and int16), LOG_SOFTMAX,
L2_NORMALIZATION and ARG_MAX/ARG_MIN against LiteRT's builtin kernels (no XNNPACK), bit for bit.

Power-of-two scales make the requantizations land on exact ties, so a wrong rounding choice
(half up vs half away, RHU2 vs MBQM in MEAN's optimized special case, C round vs rint) fails."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import assert_bit_exact, assert_both_reject, run_engine
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.ops import qmath

HYP = settings(max_examples=50, deadline=None)
I8, U8, I16 = np.int8, np.uint8, np.int16
BACKENDS = (None, "reference")  # the default chain, and NumPy alone

# (shape, axes, keep_dims): the 4-D keep_dims [1, 2] / [2, 1] cases take LiteRT's optimized MEAN
# kernel for int8/uint8 (16-channel blocks + a tail); the others its general integer formula
REDUCE_CASES = [((2, 3, 4), [1], False), ((2, 3, 4), [-1, 0], False), ((3, 4, 5), [0, 2], True),
                ((2, 2, 2, 5), [1, 2], True), ((1, 2, 2, 16), [1, 2], True), ((2, 2, 4, 37), [2, 1], True),
                ((1, 3, 3, 20), [1, 2], False), ((1, 3, 3, 20), [-3, -2], True), ((6,), [0], True),
                ((2, 4, 8), [1, 2, 1], False), ((3, 1), [1], False), ((2, 1, 3), [1], True)]


PROD_CASES = [((2, 3, 4), [1], False), ((2, 3, 4), [-1, 0], False), ((3, 4, 5), [2], True), ((6,), [0], True),
              ((2, 2, 2, 5), [1, 2], True), ((3, 1), [1], False), ((2, 1, 3), [1, 2], True)]


def reduce_model(op, dtype, shape, axes, keep, qi, qo) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", shape, dtype, **_q(qi))
    a = g.const("axis", np.array(axes, np.int32))
    rank = len(shape)
    red = {v % rank for v in axes}
    oshape = tuple(1 if i in red else d for i, d in enumerate(shape)) if keep else \
        tuple(d for i, d in enumerate(shape) if i not in red)
    y = g.tensor("y", oshape, dtype, **_q(qo))
    g.op(op, [x, a], [y], keep_dims=keep)
    g.output(y)
    return mb.build()


def unary_model(op, dtype, shape, qi, qo, out_dtype=None, **options) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", shape, dtype, **_q(qi))
    y = g.tensor("y", shape, out_dtype or dtype, **_q(qo))
    g.op(op, [x], [y], **options)
    g.output(y)
    return mb.build()


def _q(q):
    return {} if q is None else {"scale": q[0], "zero_point": q[1]}


def rand(rng, shape, dtype):
    lo, hi = qmath.qrange(np.dtype(dtype))
    return rng.integers(lo, hi + 1, size=shape).astype(dtype)


def qparams(rng, dtype, pot: bool):
    """A scale (a power of two when `pot`, to force rounding ties) and a zero point (0 for int16)."""
    s = 2.0 ** int(rng.integers(-9, -3)) if pot else float(np.float32(rng.uniform(0.002, 0.2)))
    if dtype is I16:
        return s / 64, 0
    lo, hi = qmath.qrange(np.dtype(dtype))
    return s, int(rng.integers(lo, hi + 1))


# ---- MEAN / SUM -------------------------------------------------------------------------------------

@HYP
@given(op=st.sampled_from(["MEAN", "SUM"]), dtype=st.sampled_from([I8, U8, I16]),
       case=st.sampled_from(REDUCE_CASES), pot=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_mean_sum(op, dtype, case, pot, seed):
    rng = np.random.default_rng(seed)
    shape, axes, keep = case
    qi = qparams(rng, dtype, pot)
    qo = qparams(rng, dtype, pot)
    if op == "SUM":
        qo = (qo[0] * 8, qo[1])  # keep most sums inside the output range
    assert_bit_exact(reduce_model(op, dtype, shape, axes, keep, qi, qo),
                     [rand(rng, shape, dtype)], backends=BACKENDS)


@pytest.mark.parametrize("dtype", [I8, U8])
@pytest.mark.parametrize("channels", [5, 16, 37])
def test_mean_global_pool_ties(dtype, channels):
    """Equal power-of-two scales and 2x2 pooling: every odd sum is an exact tie, which LiteRT's
    optimized kernel rounds half up on 16-channel blocks and half away from zero on the tail."""
    rng = np.random.default_rng(channels)
    zp = 3 if dtype is I8 else 131
    for keep, axes in ((True, [1, 2]), (False, [1, 2]), (True, [2, 1])):
        m = reduce_model("MEAN", dtype, (3, 2, 2, channels), axes, keep, (0.25, zp), (0.25, zp - 2))
        assert_bit_exact(m, [rand(rng, (3, 2, 2, channels), dtype)], backends=BACKENDS)


@pytest.mark.parametrize("dtype", [I8, U8, I16])
@pytest.mark.parametrize("axes", [[1, 2, 1], [2, 1, 2, -2], [1, -3, 2], [1, 1], [2, -2]])
def test_mean_keep_dims_repeated_axis_entries(dtype, axes):
    """An axis tensor with repeated entries that names exactly dims 1 and 2 still takes LiteRT's
    optimized int8/uint8 MEAN kernel (keep_dims, 4-D); [1, 1] names only dim 1 and does not.
    Random scales and two power-of-two pairs (exact ties) separate the two formulas."""
    rng = np.random.default_rng(len(axes))
    shape = (2, 3, 4, 37)
    for qi, qo in (((0.5, 0), (0.25, 0)), ((0.25, 3), (0.25, 1)), (qparams(rng, dtype, False),
                                                                  qparams(rng, dtype, False))):
        if dtype is I16:
            qi, qo = (qi[0], 0), (qo[0], 0)
        elif dtype is U8:
            qi, qo = (qi[0], qi[1] % 256), (qo[0], qo[1] % 256)
        m = reduce_model("MEAN", dtype, shape, axes, True, qi, qo)
        assert_bit_exact(m, [rand(rng, shape, dtype)], backends=BACKENDS)


@pytest.mark.parametrize("dtype", [I8, U8, I16])
def test_sum_half_ties_and_saturation(dtype):
    """si/so = 1/2 makes odd sums exact .5 ties (LiteRT rounds them away from zero); a large
    reduction saturates. Equal input/output parameters still take the rescaling formula."""
    rng = np.random.default_rng(7)
    zi = 0 if dtype is I16 else (5 if dtype is I8 else 130)
    lo, hi = qmath.qrange(np.dtype(dtype))
    small = np.clip(zi + rng.integers(-60, 61, size=(6, 4)), lo, hi).astype(dtype)
    for x in (small, rand(rng, (4, 9), dtype)):
        for qo in ((0.5, zi), (0.25, zi), (4.0, 0 if dtype is I16 else zi - 1)):
            assert_bit_exact(reduce_model("SUM", dtype, x.shape, [1], False, (0.25, zi), qo),
                             [x], backends=BACKENDS)


@pytest.mark.parametrize("dtype", [I8, I16])
def test_sum_float_overflow(dtype):
    """A rescaled sum beyond int32: LiteRT's conversion yields INT32_MIN and the zero point is
    added with int32 wraparound (so a negative zero point turns it into a large positive)."""
    hi = qmath.qrange(np.dtype(dtype))[1]
    for zo in ((-100, 0, 100) if dtype is I8 else (0,)):
        for fill in (hi, -hi - 1):
            m = reduce_model("SUM", dtype, (2, 500), [1], False, (1.0, 0), (1e-7, zo))
            assert_bit_exact(m, [np.full((2, 500), fill, dtype)], backends=BACKENDS)


def test_mean_empty_input_gives_zeros():
    m = reduce_model("MEAN", I8, (2, 0, 3), [1], False, (0.1, 3), (0.1, 5))
    assert_bit_exact(m, [np.zeros((2, 0, 3), np.int8)])


def test_sum_empty_input_rejected():
    """LiteRT leaves the output of an empty quantized SUM unwritten (garbage); we refuse it."""
    m = reduce_model("SUM", I8, (2, 0, 3), [1], False, (0.1, 3), (0.1, 5))
    with pytest.raises(RuntimeError, match="empty"):
        run_engine(m, [np.zeros((2, 0, 3), np.int8)])


# ---- REDUCE_MAX / REDUCE_MIN / REDUCE_PROD --------------------------------------------------------------

@HYP
@given(op=st.sampled_from(["REDUCE_MAX", "REDUCE_MIN"]), dtype=st.sampled_from([I8, U8, I16]),
       case=st.sampled_from(REDUCE_CASES), quantized=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_max_min(op, dtype, case, quantized, seed):
    rng = np.random.default_rng(seed)
    shape, axes, keep = case
    q = qparams(rng, dtype, False) if quantized else None
    assert_bit_exact(reduce_model(op, dtype, shape, axes, keep, q, q),
                     [rand(rng, shape, dtype)], backends=BACKENDS)


@HYP
@given(dtype=st.sampled_from([I8, I16]), case=st.sampled_from(PROD_CASES),
       pot=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_reduce_prod(dtype, case, pot, seed):
    """Inputs near the zero point so the products stay in range; the output scale follows the
    product's magnitude (each step is rescaled by si / so**(1/n) and rounded)."""
    rng = np.random.default_rng(seed)
    shape, axes, keep = case
    si, zi = qparams(rng, dtype, pot)
    lo, hi = qmath.qrange(np.dtype(dtype))
    spread = 4 if dtype is I8 else 40
    x = np.clip(zi + rng.integers(-spread, spread + 1, size=shape), lo, hi).astype(dtype)
    n = int(np.prod([shape[a % len(shape)] for a in set(v % len(shape) for v in axes)]))
    mag = (si * spread * 0.6) ** n
    so = 2.0 ** round(np.log2(mag / (hi / 4))) if pot else mag / (hi / 4) * float(rng.uniform(0.5, 2))
    zo = 0 if dtype is I16 else int(rng.integers(-20, 20))
    assert_bit_exact(reduce_model("REDUCE_PROD", dtype, shape, axes, keep, (si, zi), (so, zo)),
                     [x], backends=BACKENDS)


@pytest.mark.parametrize("dtype", [I8, U8, I16])
def test_reduce_prod_unquantized_wraps(dtype):
    """Without quantization parameters LiteRT multiplies in the element type (wrapping)."""
    rng = np.random.default_rng(2)
    for shape, axes, keep in PROD_CASES:
        x = rand(rng, shape, dtype)
        assert_bit_exact(reduce_model("REDUCE_PROD", dtype, shape, axes, keep, None, None),
                         [x], backends=BACKENDS)


def test_reduce_errors():
    x8 = np.zeros((2, 3), np.int8)
    # max/min need equal input and output parameters
    assert_both_reject(reduce_model("REDUCE_MAX", I8, (2, 3), [1], False, (0.1, 0), (0.2, 0)), [x8],
                       "same scale and zero point")
    assert_both_reject(reduce_model("REDUCE_MIN", I8, (2, 3), [1], False, (0.1, 0), (0.1, 1)), [x8],
                       "same scale and zero point")
    # quantized uint8 REDUCE_PROD has no LiteRT kernel
    assert_both_reject(reduce_model("REDUCE_PROD", U8, (2, 3), [1], False, (0.1, 0), (0.1, 0)),
                       [x8.astype(np.uint8)], "int8 or int16")
    # int16 needs zero points 0
    x16 = np.zeros((2, 3), np.int16)
    for op in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_PROD"):
        assert_both_reject(reduce_model(op, I16, (2, 3), [1], False, (0.1, 1), (0.1, 1)), [x16],
                           "zero point 0")
    # an out-of-range axis
    assert_both_reject(reduce_model("MEAN", I8, (2, 3), [2], False, (0.1, 0), (0.1, 0)), [x8], "out of range")


# ---- SOFTMAX / LOG_SOFTMAX ----------------------------------------------------------------------------

SOFTMAX_TYPES = [(I8, I8, (1 / 256, -128)), (U8, U8, (1 / 256, 0)), (I8, I16, (1 / 32768, 0)),
                 (U8, I16, (1 / 65536, -32768)), (I8, I8, (1 / 256 * 1.0005, -128))]


@HYP
@given(types=st.sampled_from(SOFTMAX_TYPES), beta=st.sampled_from([1.0, 0.5, 2.0, 0.37, 3.3]),
       shape=st.sampled_from([(4, 10), (2, 3, 33), (5, 1), (1, 256)]), pot=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_softmax_8bit(types, beta, shape, pot, seed):
    rng = np.random.default_rng(seed)
    dtype, out_dtype, qo = types
    qi = qparams(rng, dtype, pot)
    m = unary_model("SOFTMAX", dtype, shape, qi, qo, out_dtype, beta=beta)
    assert_bit_exact(m, [rand(rng, shape, dtype)], backends=BACKENDS)


def test_softmax_8bit_exact_halves():
    """Rows of equal values: every probability is exactly 256/k after scaling, a .5 tie for
    k = 512 (int8 rounds it away from zero, uint8 adds 0.5 and truncates)."""
    for dtype, qo in ((I8, (1 / 256, -128)), (U8, (1 / 256, 0))):
        for k in (1, 2, 3, 5, 16, 512):
            x = np.full((2, k), 7, dtype)
            assert_bit_exact(unary_model("SOFTMAX", dtype, (2, k), (0.1, 0), qo, beta=1.0),
                             [x], backends=BACKENDS)


@pytest.mark.parametrize("beta", [-1.0, -50.0, 0.0, 1e6])
def test_softmax_extreme_beta(beta):
    """Negative beta overflows the exp table to inf and the probabilities to NaN/inf; LiteRT's
    float -> int32 conversion gives INT32_MIN, and adding the int8 zero point wraps it to a large
    positive number (clamped to 127). Reproduced, not "fixed"."""
    rng = np.random.default_rng(11)
    for dtype, out_dtype, qo in SOFTMAX_TYPES[:4]:
        m = unary_model("SOFTMAX", dtype, (3, 7), (0.5, 0), qo, out_dtype, beta=beta)
        assert_bit_exact(m, [rand(rng, (3, 7), dtype)], backends=BACKENDS)
    m = unary_model("SOFTMAX", I16, (3, 7), (0.001, 0), (1 / 32768, 0), beta=beta)
    assert_bit_exact(m, [rand(rng, (3, 7), I16)], backends=BACKENDS)


@HYP
@given(beta=st.sampled_from([1.0, 0.5, 2.0]), si=st.sampled_from([1e-4, 3e-4, 1 / 2048, 0.002]),
       shape=st.sampled_from([(4, 10), (2, 200), (3, 1)]), seed=st.integers(0, 2**31 - 1))
def test_softmax_int16(beta, si, shape, seed):
    rng = np.random.default_rng(seed)
    m = unary_model("SOFTMAX", I16, shape, (si, 0), (1 / 32768, 0), beta=beta)
    assert_bit_exact(m, [rand(rng, shape, I16)], backends=BACKENDS)


@HYP
@given(dtype=st.sampled_from([I8, U8]), shape=st.sampled_from([(4, 10), (2, 3, 33), (5, 1)]),
       pot=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_log_softmax(dtype, shape, pot, seed):
    rng = np.random.default_rng(seed)
    qo = (16 / 256, 127 if dtype is I8 else 255)
    m = unary_model("LOG_SOFTMAX", dtype, shape, qparams(rng, dtype, pot), qo)
    assert_bit_exact(m, [rand(rng, shape, dtype)], backends=BACKENDS)


def test_softmax_errors():
    x8 = np.zeros((2, 4), np.int8)
    assert_both_reject(unary_model("SOFTMAX", I8, (2, 4), (0.1, 0), (1 / 256, -127), beta=1.0), [x8],
                       "zero point -128")
    assert_both_reject(unary_model("SOFTMAX", I8, (2, 4), (0.1, 0), (1 / 256 * 1.002, -128), beta=1.0),
                       [x8], "scale 1/256")
    x16 = np.zeros((2, 4), np.int16)
    assert_both_reject(unary_model("SOFTMAX", I16, (2, 4), (0.001, 0), (1 / 65536, 0), beta=1.0), [x16],
                       "1/32768")
    assert_both_reject(unary_model("LOG_SOFTMAX", I8, (2, 4), (0.1, 0), (16 / 256, 0)), [x8],
                       "zero point 127")
    assert_both_reject(unary_model("LOG_SOFTMAX", I16, (2, 4), (0.001, 0), (16 / 256, 0)), [x16],
                       "int16")
    # mixed 8-bit types: LiteRT has no kernel
    assert_both_reject(unary_model("SOFTMAX", I8, (2, 4), (0.1, 0), (1 / 256, 0), U8, beta=1.0), [x8],
                       "int8 or int16 output")
    assert_both_reject(unary_model("SOFTMAX", U8, (2, 4), (0.1, 0), (1 / 256, -128), I8, beta=1.0),
                       [x8.astype(np.uint8)], "uint8 or int16 output")


# ---- L2_NORMALIZATION ---------------------------------------------------------------------------------

@HYP
@given(dtype=st.sampled_from([I8, U8]), shape=st.sampled_from([(4, 7), (3, 1), (2, 64), (2, 2, 300)]),
       spread=st.sampled_from([0, 1, 3, 20, 255]), seed=st.integers(0, 2**31 - 1))
def test_l2_normalization(dtype, shape, spread, seed):
    """Small spreads around the zero point hit the inverse square root's small-sum branches
    (a zero or unit sum of squares) and its normalisation shifts."""
    rng = np.random.default_rng(seed)
    lo, hi = qmath.qrange(np.dtype(dtype))
    zi = int(rng.integers(lo, hi + 1))
    x = np.clip(zi + rng.integers(-spread, spread + 1, size=shape), lo, hi).astype(dtype)
    qo = (1 / 128, 0 if dtype is I8 else 128)
    assert_bit_exact(unary_model("L2_NORMALIZATION", dtype, shape, (0.05, zi), qo), [x], backends=BACKENDS)


@pytest.mark.parametrize("dtype", [I8, U8])
def test_l2_normalization_ties(dtype):
    """Long rows (sum of squares >= 2**21) make the final requantization shift right by one bit,
    so every small odd negative value lands on an exact tie (rounded half away from zero)."""
    zi = 0 if dtype is I8 else 128
    row = np.concatenate([np.full(130, -128), np.arange(-20, 21)]) + zi
    x = np.stack([row, row[::-1]]).astype(dtype)
    qo = (1 / 128, 0 if dtype is I8 else 128)
    assert_bit_exact(unary_model("L2_NORMALIZATION", dtype, x.shape, (0.05, zi), qo), [x], backends=BACKENDS)


def test_l2_normalization_errors():
    x8 = np.zeros((2, 4), np.int8)
    assert_both_reject(unary_model("L2_NORMALIZATION", I8, (2, 4), (0.1, 0), (1 / 64, 0)), [x8], "1/128")
    assert_both_reject(unary_model("L2_NORMALIZATION", U8, (2, 4), (0.1, 0), (1 / 128, 0)),
                       [x8.astype(np.uint8)], "zero point 128")
    assert_both_reject(unary_model("L2_NORMALIZATION", I16, (2, 4), (0.1, 0), (1 / 128, 0)),
                       [x8.astype(np.int16)], "int16")


# ---- ARG_MAX / ARG_MIN on quantized input (raw integer comparison) -------------------------------------

@pytest.mark.parametrize("op", ["ARG_MAX", "ARG_MIN"])
@pytest.mark.parametrize("dtype", [I8, U8])
def test_arg_max_min_quantized(op, dtype):
    rng = np.random.default_rng(3)
    for axis in (0, 1, -1):
        x = rand(rng, (4, 6, 5), dtype)
        x[0, :, 0] = x[0, 0, 0]  # ties: first index
        mb = ModelBuilder()
        g = mb.subgraph()
        xi = g.input("x", x.shape, dtype, scale=0.1, zero_point=3)
        a = g.const("axis", np.array([axis], np.int32))
        shape = tuple(d for i, d in enumerate(x.shape) if i != axis % 3)
        y = g.tensor("y", shape, np.int32)
        g.op(op, [xi, a], [y], output_type=2)
        g.output(y)
        assert_bit_exact(mb.build(), [x], backends=BACKENDS)


@pytest.mark.parametrize("op", ["MEAN", "SUM", "REDUCE_PROD", "REDUCE_MAX"])
def test_runtime_axis(op):
    """An axis fed at run time: checked before indexing (RuntimeError at invoke, as LiteRT)."""
    rng = np.random.default_rng(4)
    same = op == "REDUCE_MAX"
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (2, 3, 4), I8, scale=0.1, zero_point=2)
    a = g.input("axis", (1,), np.int32)
    y = g.tensor("y", (2, 4), I8, scale=0.1 if same else 0.3, zero_point=2 if same else -1)
    g.op(op, [x, a], [y], keep_dims=False)
    g.output(y)
    m = mb.build()
    xv = rand(rng, (2, 3, 4), I8)
    assert_bit_exact(m, [xv, np.array([1], np.int32)], backends=BACKENDS)
    assert_both_reject(m, [xv, np.array([5], np.int32)], "out of range")
