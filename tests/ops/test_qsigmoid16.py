"""int16 LOGISTIC and TANH (ops/qsigmoid16.py), GELU and EXP (interpolated int16 tables) against
LiteRT's builtin kernels, bit for bit, over all 65536 inputs: the general-scale path (interpolated table), the power-of-two paths
(gemmlowp fixed point), input scales large enough to wrap LiteRT's int32 rescale, and lengths
that leave LiteRT's SIMD loops a scalar tail; on both of our backends."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ops.test_qelementwise import model
from tests.oracle import assert_bit_exact, assert_both_reject, run_engine
from tflite_jit.ops import qsigmoid16

ALL = np.arange(-32768, 32768).astype(np.int16)
SCALES = [2**-12, 2**-11, 2**-13, 3.1e-4, 1e-3, 2.5e-5, 1.234e-4, 1e-6, 0.01, 0.5, 3.0, 100.0]


def test_sigmoid_table_is_litert_s() -> None:
    from tools.measure_int16_sigmoid_table import measure

    np.testing.assert_array_equal(measure(), qsigmoid16.SIGMOID_U16)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("op", ["LOGISTIC", "TANH"])
def test_every_int16_input(op: str, scale: float) -> None:
    m = model(op, np.int16, [((ALL.size,), (scale, 0))], (ALL.size,), (1 / 32768, 0))
    assert_bit_exact(m, [ALL], backends=("numba", "reference"))


@pytest.mark.parametrize("n", [1, 7, 15, 23, 1001])
@pytest.mark.parametrize("op,scale", [("LOGISTIC", 2**-12), ("TANH", 2**-12), ("TANH", 2**-11),
                                      ("LOGISTIC", 3.1e-4)])
def test_tails(op: str, scale: float, n: int) -> None:
    x = np.random.default_rng(n).permutation(ALL)[:n].reshape(1, n)
    m = model(op, np.int16, [((1, n), (scale, 0))], (1, n), (1 / 32768, 0))
    assert_bit_exact(m, [x], backends=("numba", "reference"))


def test_compiled_on_numba() -> None:
    m = model("TANH", np.int16, [((64,), (3.1e-4, 0))], (64,), (1 / 32768, 0))
    _, backends = run_engine(m, [ALL[:64]], "numba")
    assert backends == ["numba_cpu"]


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH"])
@pytest.mark.parametrize("in_zp,out_q", [(0, (1 / 256, 0)), (3, (1 / 32768, 0)), (0, (1 / 32768, 5))])
def test_wrong_parameters_rejected_like_litert(op: str, in_zp: int, out_q: tuple) -> None:
    m = model(op, np.int16, [((4,), (1e-3, in_zp))], (4,), out_q)
    assert_both_reject(m, [ALL[:4]], "zero point 0 and output scale 1/32768")


@pytest.mark.parametrize("approximate", [False, True])
@pytest.mark.parametrize("si,zi,so,zo", [(3e-4, 0, 2e-4, 0), (1e-3, 0, 1 / 32768, 0), (0.05, 0, 0.01, 0),
                                         (1e-3, 5, 1e-3, -7)])
def test_int16_gelu_every_input(approximate: bool, si: float, zi: int, so: float, zo: int) -> None:
    """LiteRT's int16 GELU (LUTPopulate<int16_t> + LUTLookup), found missing by the int16 audit."""
    m = model("GELU", np.int16, [((ALL.size,), (si, zi))], (ALL.size,), (so, zo), approximate=approximate)
    assert_bit_exact(m, [ALL], backends=("numba", "reference"))


@pytest.mark.parametrize("si,so", [(0.05, 0.01), (0.1, 1.0), (0.005, 3.0)])
def test_int16_exp_past_float32_range(si: float, so: float) -> None:
    """exp overflows float32 over part of the input range: LiteRT's table holds what its float
    arithmetic gives there (inf, and inf - inf = NaN cast to int16); this used to raise."""
    m = model("EXP", np.int16, [((ALL.size,), (si, 0))], (ALL.size,), (so, 0))
    assert_bit_exact(m, [ALL], backends=("reference",))
