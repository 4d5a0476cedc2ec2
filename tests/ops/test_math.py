"""Elementwise math/logic, CAST, ADD_N, LOG_SOFTMAX, L2_NORMALIZATION and LRN against LiteRT's
builtin kernels (reference backend), plus the elementwise ones compiled by the Numba backend."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import (
    Const,
    assert_close,
    chain_model,
    check_one_fused_kernel,
    litert_run,
    one_op_model,
    run_both,
    run_engine,
)
from tests.shapes import draw_broadcast_pair, draw_shape
from tflite_jit import Interpreter, ops
from tflite_jit.format.builder import ModelBuilder

F32, I32, I64, I16, I8, U8, BOOL = (np.float32, np.int32, np.int64, np.int16, np.int8, np.uint8,
                                    np.bool_)

UNARY = [("ABS", F32), ("ABS", I32), ("CEIL", F32), ("FLOOR", F32), ("ROUND", F32), ("SIGN", F32),
         ("SIGN", I32), ("EXP", F32), ("LOG", F32), ("SIN", F32), ("COS", F32), ("SQUARE", F32),
         ("ELU", F32), ("LOGICAL_NOT", BOOL), ("ZEROS_LIKE", F32), ("ZEROS_LIKE", I32),
         ("ZEROS_LIKE", I64)]
BINARY = [("POW", F32), ("POW", I32), ("FLOOR_DIV", F32), ("FLOOR_DIV", I32), ("FLOOR_DIV", I16),
          ("FLOOR_DIV", I8), ("FLOOR_MOD", F32), ("FLOOR_MOD", I32), ("FLOOR_MOD", I64),
          ("FLOOR_MOD", I16), ("FLOOR_MOD", I8), ("LOGICAL_AND", BOOL), ("LOGICAL_OR", BOOL)]
BINARY += [(op, dt) for op in ("MAXIMUM", "MINIMUM") for dt in (F32, I32, I64, I16, I8, U8)]
CASTABLE = [F32, I32, I64, I16, I8, U8, BOOL]


def _unary_values(rng, op: str, shape, dtype) -> np.ndarray:
    if dtype == BOOL:
        return rng.integers(0, 2, shape).astype(BOOL)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-50, 50, shape).astype(dtype)
    x = rng.uniform(-6, 6, shape)
    if op == "ROUND":
        x = np.round(x * 2) / 2  # many exact halves: ties to even
    if x.size and op in ("LOG", "SIGN", "ABS", "ELU"):
        x.flat[0] = 0.0
        x.flat[-1] = np.nan if op != "ELU" else x.flat[-1]
    return x.astype(dtype)


def _binary_values(rng, op: str, a_shape, b_shape, dtype) -> tuple[np.ndarray, np.ndarray]:
    if dtype == BOOL:
        return rng.integers(0, 2, a_shape).astype(BOOL), rng.integers(0, 2, b_shape).astype(BOOL)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if op == "POW":
        if info is not None:  # include results beyond int32 (LiteRT gives INT_MIN)
            return (rng.integers(-12, 13, a_shape).astype(dtype), rng.integers(0, 11, b_shape).astype(dtype))
        return (rng.uniform(0, 4, a_shape).astype(dtype), rng.uniform(-3, 3, b_shape).astype(dtype))
    if info is not None:
        lo, hi = max(info.min, -100), min(info.max, 100)
        a, b = rng.integers(lo, hi + 1, a_shape).astype(dtype), rng.integers(lo, hi + 1, b_shape).astype(dtype)
        if op in ("FLOOR_DIV", "FLOOR_MOD"):
            b = np.where(b == 0, dtype(7), b).astype(dtype)
            b = np.where(rng.integers(0, 2, b_shape) == 1, b, b % 9 + 1).astype(dtype)  # small divisors
        return a, b
    a, b = rng.uniform(-20, 20, a_shape), rng.uniform(-5, 5, b_shape)
    if op in ("FLOOR_DIV", "FLOOR_MOD"):
        b = np.round(b * 2) / 2  # halves: exact multiples occur
        b = np.where(b == 0, 1.5, b)
        a = np.round(a)
    if op in ("MAXIMUM", "MINIMUM") and a.size and b.size:
        a.flat[0] = np.nan
        b.flat[-1] = np.nan
    return a.astype(dtype), b.astype(dtype)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(UNARY), st.data())
def test_unary(case, data) -> None:
    op, dtype = case
    x = _unary_values(np.random.default_rng(data.draw(st.integers(0, 999))), op,
                      draw_shape(data.draw, min_rank=0), dtype)
    ours, theirs = run_both(op, [x])
    assert_close(ours[0], theirs[0], what=op)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(BINARY), st.data())
def test_binary_broadcasting(case, data) -> None:
    op, dtype = case
    a_shape, b_shape = draw_broadcast_pair(data.draw)
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    a, b = _binary_values(rng, op, a_shape, b_shape, dtype)
    ours, theirs = run_both(op, [a, b])
    assert_close(ours[0], theirs[0], what=f"{op} {np.dtype(dtype).name}")


def test_special_values() -> None:
    f = lambda *v: np.array(v, F32)  # noqa: E731
    nan, inf = np.nan, np.inf
    cases = [("ROUND", [f(-0.5, 0.5, 1.5, 2.5, -3.5, nan, 1e9)]),
             ("SIGN", [f(nan, -0.0, inf, -inf)]),
             ("LOG", [f(0, -1, 1, inf)]),
             ("MAXIMUM", [f(nan, 1, nan, -0.0), f(1, nan, nan, 0.0)]),
             ("MINIMUM", [f(nan, 1, nan, -0.0), f(1, nan, nan, 0.0)]),
             ("FLOOR_MOD", [f(-7, 7, -7.5, 5, -0.0, 1e-8, 1), f(2, -2, -2, inf, 3, -3, 0)]),
             ("FLOOR_DIV", [f(-7, 7, -7.5, 5, -0.0), f(2, -2, -2, inf, 3)]),
             ("POW", [f(-2, 0, -8, 2, nan, 1), f(0.5, -1, 1 / 3, 200, 0, nan)]),
             ("POW", [np.array([2, 3, -2, 2**16, -1, 0, 1], I32), np.array([31, 40, 3, 3, 7, 0, 99], I32)]),
             # a one-element exponent broadcast: LiteRT's integer power wraps instead
             ("POW", [np.array([12, -3, 2, 5], I32), np.array([21], I32)]),
             ("POW", [np.array([[12]], I32), np.array(10, I32)]),
             ("POW", [np.array([12], I32), np.array([10], I32)]),
             ("FLOOR_DIV", [np.array([-7, 7, -7, 7, 0], I32), np.array([2, -2, -2, 2, 3], I32)]),
             ("FLOOR_MOD", [np.array([-7, 7, -7, 7, 0], I32), np.array([2, -2, -2, 2, 3], I32)]),
             ("ELU", [f(-1e-8, -100, nan, 2, 0)]),
             ("LOG_SOFTMAX", [f(1, 2, inf)]),
             ("LOG_SOFTMAX", [f(1, 2, -inf)])]
    for op, xs in cases:
        ours, theirs = run_both(op, xs)
        assert_close(ours[0], theirs[0], what=op)


# ---- CAST ----------------------------------------------------------------------------------------

def _cast_values(rng, src, dst, shape) -> np.ndarray:
    if src == BOOL:
        return rng.integers(0, 2, shape).astype(BOOL)
    if np.dtype(src).kind == "f":
        x = rng.uniform(-300, 300, shape)
        if x.size >= 2 and dst in (I32, I16, I8, U8):  # saturation (and NaN for int32)
            x.flat[0], x.flat[-1] = 1e10, -1e10
            if dst == I32 and x.size >= 3:
                x.flat[1] = np.nan
        if x.size and dst == BOOL:
            x.flat[0] = 0.0
        return x.astype(src)
    info = np.iinfo(src)
    return rng.integers(max(info.min, -70000), min(info.max, 70000) + 1, shape).astype(src)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(CASTABLE), st.sampled_from(CASTABLE), st.data())
def test_cast_all_pairs(src, dst, data) -> None:
    shape = draw_shape(data.draw, min_rank=0)
    x = _cast_values(np.random.default_rng(data.draw(st.integers(0, 999))), src, dst, shape)
    ours, theirs = run_both("CAST", [x], in_data_type=src, out_data_type=dst)
    assert_close(ours[0], theirs[0], what=f"CAST {np.dtype(src).name}->{np.dtype(dst).name}")


@pytest.mark.parametrize("src,dst", [(F32, I32), (I32, BOOL), (I64, F32), (BOOL, U8)])
def test_cast_without_options_uses_the_output_type(src, dst) -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    i = g.input("x", (2, 3), src)
    o = g.tensor("y", (2, 3), dst)
    g.op("CAST", [i], [o])  # no CastOptions table at all
    g.output(o)
    model = mb.build()
    x = _cast_values(np.random.default_rng(0), src, dst, (2, 3))
    (theirs,) = litert_run(model, [x])
    it = Interpreter(model_content=model, backend="reference")
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    assert_close(it.get_tensor(it.get_output_details()[0]["index"]), theirs)


# ---- ADD_N and the row-wise ops ------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(st.integers(2, 5), st.sampled_from([F32, I32]), st.data())
def test_add_n(n: int, dtype, data) -> None:
    shape = draw_shape(data.draw, min_rank=0)
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    xs = [(rng.uniform(-5, 5, shape) if dtype == F32 else rng.integers(-2**30, 2**30, shape)).astype(dtype)
          for _ in range(n)]  # int32 sums wrap
    ours, theirs = run_both("ADD_N", xs)
    assert_close(ours[0], theirs[0])


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_log_softmax_and_l2_normalization(data) -> None:
    shape = draw_shape(data.draw)
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    x = (rng.standard_normal(shape) * data.draw(st.sampled_from([1e-7, 1.0, 30.0]))).astype(F32)
    for op in ("LOG_SOFTMAX", "L2_NORMALIZATION"):
        ours, theirs = run_both(op, [x])
        assert_close(ours[0], theirs[0], what=op)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 4), st.floats(0.0, 2.0, width=32, allow_subnormal=False),
       st.floats(0.0, 1.0, width=32, allow_subnormal=False), st.floats(0.0, 1.0, width=32), st.data())
def test_local_response_normalization(radius, bias, alpha, beta, data) -> None:
    shape = draw_shape(data.draw, min_rank=4, max_rank=4)[:3] + (data.draw(st.integers(1, 9)),)
    x = np.random.default_rng(data.draw(st.integers(0, 999))).uniform(-2, 2, shape).astype(F32)
    # bias 0 with an all-zero window divides 0 by 0; tiny bias/alpha put the base in float32's
    # subnormal range, where LiteRT's rounding differs from ours by more than the tolerance
    bias, alpha = max(bias, 1e-3), (alpha if alpha == 0.0 else max(alpha, 1e-3))
    ours, theirs = run_both("LOCAL_RESPONSE_NORMALIZATION", [x], radius=radius, bias=bias,
                            alpha=alpha, beta=beta)
    assert_close(ours[0], theirs[0])


# ---- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("op,specs,options,match", [
    ("FLOOR_DIV", [((2,), F32), ((2,), I32)], {}, "same type"),
    ("FLOOR_DIV", [((2,), I64), ((2,), I64)], {}, "int64"),
    ("MAXIMUM", [((2, 3), F32), ((4,), F32)], {}, "broadcast"),
    ("EXP", [((2,), I32)], {}, "int32"),
    ("LOGICAL_AND", [((2,), F32), ((2,), F32)], {}, "float32"),
    ("SIGN", [((2,), I64)], {}, "int64"),
    ("ADD_N", [((2,), F32)], {}, "at least 2"),
    ("ADD_N", [((2,), F32), ((1,), F32)], {}, "broadcast"),
    ("ADD_N", [((2,), F32), ((2,), I32)], {}, "share one type"),
    ("L2_NORMALIZATION", [((), F32)], {}, "scalar"),
    ("L2_NORMALIZATION", [((2, 3), F32)], {"fused_activation_function": "RELU"}, "activation"),
    ("LOCAL_RESPONSE_NORMALIZATION", [((1, 8), F32)], {"radius": 1}, "4-D"),
    ("LOCAL_RESPONSE_NORMALIZATION", [((1, 1, 1, 3), F32)], {"radius": -1}, "radius"),
    ("LOG_SOFTMAX", [((3,), I32)], {}, "int32"),
    ("LOG_SOFTMAX", [((), F32)], {}, "scalar"),  # LiteRT returns garbage
    ("LOG_SOFTMAX", [((2, 0), F32)], {}, "empty"),  # LiteRT segfaults
])
def test_shape_and_type_errors(op, specs, options, match) -> None:
    with pytest.raises(ops.OpError, match=match):
        one_op_model(op, specs, **options)


@pytest.mark.parametrize("op,a,b,match", [
    ("FLOOR_DIV", np.array([1, 2], I32), np.array([1, 0], I32), "division by zero"),
    ("FLOOR_DIV", np.array([1, 2], F32), np.array([0, 1], F32), "division by zero"),
    ("FLOOR_MOD", np.array([1, 2], I32), np.array([0, 1], I32), "division by zero"),
    ("POW", np.array([2, 2], I32), np.array([1, -1], I32), "negative exponent"),
])
def test_data_dependent_errors_match_litert_failures(op, a, b, match) -> None:
    model = one_op_model(op, [(a.shape, a.dtype), (b.shape, b.dtype)])
    with pytest.raises(RuntimeError):
        litert_run(model, [a, b])
    with pytest.raises(ops.OpError, match=match):
        ops.get(op).reference([a, b], ops.get(op).parse({}))


def test_float_floor_mod_by_zero_is_nan_like_litert() -> None:
    ours, theirs = run_both("FLOOR_MOD", [np.array([1, 2], F32), Const(np.array([0, 1], F32))])
    assert_close(ours[0], theirs[0])


# ---- the Numba backend ---------------------------------------------------------------------------

# one compiled kernel per entry (the logical ops too: a WHILE cond is often LESS + LOGICAL_AND,
# and a compiled loop needs every cond op compiled)
NUMBA_CASES = [("ABS", F32), ("CEIL", F32), ("FLOOR", F32), ("ROUND", F32), ("SIGN", F32),
               ("EXP", F32), ("LOG", F32), ("SIN", F32), ("COS", F32), ("ELU", F32),
               ("ZEROS_LIKE", F32), ("POW", F32), ("POW", I32), ("POW_SCALAR", I32),
               ("FLOOR_DIV", F32), ("FLOOR_DIV", I32), ("FLOOR_MOD", F32), ("FLOOR_MOD", I32), ("MAXIMUM", F32),
               ("MINIMUM", I32), ("ADD_N", F32), ("LOGICAL_AND", BOOL), ("LOGICAL_OR", BOOL),
               ("LOGICAL_NOT", BOOL)]


@pytest.mark.parametrize("op,dtype", NUMBA_CASES)
def test_numba_backend_matches_litert(op: str, dtype) -> None:
    rng = np.random.default_rng(1)
    if op == "ADD_N":
        xs = [rng.uniform(-5, 5, (3, 17)).astype(dtype) for _ in range(3)]
    elif op == "POW_SCALAR":  # the wrapping integer power (one-element exponent, broadcast)
        op, xs = "POW", [rng.integers(-12, 13, (3, 17)).astype(dtype), np.array([13], dtype)]
    elif (op, dtype) in BINARY:
        xs = list(_binary_values(rng, op, (3, 17), (17,), dtype))
        if op in ("FLOOR_MOD", "FLOOR_DIV") and dtype == F32:
            xs[0][0, :3] = [-0.0, 5.0, -5.0]
            xs[1][:3] = [np.inf, -np.inf, 0.0 if op == "FLOOR_MOD" else 3.0]  # mod 0 -> NaN
    else:
        xs = [_unary_values(rng, op, (3, 17), dtype)]
    model = one_op_model(op, [(x.shape, x.dtype) for x in xs])
    (theirs,) = litert_run(model, xs)
    outs, steps = run_engine(model, xs, "numba")
    assert_close(outs[0], theirs, what=op)
    backends = set(steps)
    # integer division (which must raise on a zero divisor) stays on reference
    on_reference = op in ("FLOOR_DIV", "FLOOR_MOD") and np.dtype(dtype).kind in "iu"
    assert backends == ({"reference"} if on_reference else {"numba_cpu"}), backends


def test_numba_fuses_a_chain_of_math_ops() -> None:
    model = chain_model({"x": ((4, 9), F32), "y": ((9,), F32)},
                        [("ROUND", "x"), ("SIN", "t"), ("MAXIMUM", "t", "y"), ("FLOOR_MOD", "t", "y"),
                         ("ELU", "t"), ("SIGN", "t")])
    rng = np.random.default_rng(3)
    xs = [rng.uniform(-4, 4, (4, 9)).astype(F32), (rng.uniform(0.3, 1, (9,)) * rng.choice([-1, 1], 9)).astype(F32)]
    check_one_fused_kernel(model, xs)


@pytest.mark.parametrize("op,dtype", [("MAXIMUM", I8), ("CAST", I32)])
def test_numba_backend_falls_back_for_unprintable_forms(op, dtype) -> None:
    rng = np.random.default_rng(2)
    if op == "MAXIMUM":
        xs = list(_binary_values(rng, op, (2, 5), (5,), dtype))
        model = one_op_model(op, [(x.shape, x.dtype) for x in xs])
    elif op == "CAST":
        xs = [rng.integers(-300, 300, (2, 5)).astype(dtype)]
        model = one_op_model(op, [((2, 5), dtype)], out_data_type=I8)
    else:
        xs = [rng.integers(0, 2, (2, 5)).astype(dtype)]
        model = one_op_model(op, [((2, 5), dtype)])
    (theirs,) = litert_run(model, xs)
    assert_close(run_engine(model, xs, "numba")[0][0], theirs, what=op)
