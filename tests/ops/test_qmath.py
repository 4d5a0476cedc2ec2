"""ops.qmath: the fixed-point primitives against their definitions in QUANTIZATION.md §2, on
exhaustive small ranges and random int32 values (exact Python-int arithmetic as the oracle)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tflite_jit.ops import qmath

RNG = np.random.default_rng(7)
X = np.concatenate([RNG.integers(qmath.INT32_MIN, qmath.INT32_MAX, 2000, endpoint=True),
                    np.arange(-600, 600), [qmath.INT32_MIN, qmath.INT32_MAX, 0, -1, 1]]).astype(np.int64)


def test_quantize_multiplier_known_values():
    assert qmath.quantize_multiplier(0.0) == (0, 0)
    assert qmath.quantize_multiplier(1.0) == (1 << 30, 1)
    assert qmath.quantize_multiplier(0.5) == (1 << 30, 0)
    assert qmath.quantize_multiplier(2.0**-40) == (0, 0)  # flushed to zero below 2**-31
    m, s = qmath.quantize_multiplier(0.1)
    assert m * 2.0 ** (s - 31) == pytest.approx(0.1, rel=1e-9) and 1 << 30 <= m < 1 << 31
    # a mantissa that rounds up to 2**31 moves to the next exponent
    m, s = qmath.quantize_multiplier(1.0 - 2.0**-40)
    assert (m, s) == (1 << 30, 1)


def test_srdhm_is_round_half_up_of_the_doubled_high_product():
    b = int(RNG.integers(1, qmath.INT32_MAX))
    want = [(int(a) * b + (1 << 30)) // (1 << 31) for a in X]
    np.testing.assert_array_equal(qmath.srdhm(X, b), want)
    assert qmath.srdhm(qmath.INT32_MIN, qmath.INT32_MIN) == qmath.INT32_MAX


@pytest.mark.parametrize("e", [0, 1, 2, 5, 12, 31])
def test_rdbpot_rounds_half_away_from_zero(e):
    def want(x: int) -> int:
        q = abs(x) / 2**e
        r = math.floor(abs(x) / 2**e + 0.5) if (abs(x) % 2**e) * 2 != 2**e else math.floor(q) + 1
        return int(math.copysign(r, x)) if x else 0

    got = qmath.rdbpot(X, e)
    np.testing.assert_array_equal(got, [want(int(x)) for x in X])


def test_rhu2_differs_from_mbqm_only_on_negative_ties():
    m, shift = qmath.quantize_multiplier(0.25)  # exact: every odd multiple of 2 is a tie
    x = np.arange(-4000, 4000, dtype=np.int64)
    a, b = qmath.mbqm(x, m, shift), qmath.rhu2(x, m, shift)
    diff = np.nonzero(a != b)[0]
    assert diff.size > 0
    assert np.all(b[diff] == a[diff] + 1)
    t = qmath.srdhm(x, m)  # the second rounding (divide by 2**1) sees a tie when t is odd
    assert np.array_equal(diff, np.nonzero((t < 0) & (t % 2 == 1))[0])


def test_mbqm64_uses_a_16_bit_multiplier():
    m, shift = qmath.quantize_multiplier(0.003)
    x = RNG.integers(-(1 << 40), 1 << 40, 500)
    m16 = (m + (1 << 15)) >> 16
    t = 15 - shift
    want = [(int(v) * m16 + (1 << (t - 1))) >> t for v in x]
    np.testing.assert_array_equal(qmath.mbqm64(x, m, shift), want)


def test_activation_range():
    assert qmath.activation_range("NONE", 0.1, 3, np.dtype(np.int8)) == (-128, 127)
    assert qmath.activation_range("RELU", 0.1, 3, np.dtype(np.int8)) == (3, 127)
    assert qmath.activation_range("RELU6", 0.1, -128, np.dtype(np.int8)) == (-128, -68)
    assert qmath.activation_range("RELU_N1_TO_1", 0.01, 0, np.dtype(np.int8)) == (-100, 100)


def test_lut8_logistic_matches_the_libm_formula():
    expf = qmath.libm_f32("expf")
    lut = qmath.lut8(lambda x: np.float32(1) / (np.float32(1) + expf(-x)), 0.1, 3, 1 / 256, -128,
                     np.dtype(np.int8))
    assert lut.dtype == np.int8 and lut.shape == (256,)
    assert lut[0] == -128 and lut[-1] == 127  # saturated tails
    assert np.all(np.diff(lut.astype(int)) >= 0)  # monotone
