"""ops.expr and ops.elementwise: expression semantics, shape rules, and differential tests of the
reference kernels against LiteRT's builtin kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import (
    Const,
    assert_close,
    check_reference,
    infer,
    litert_run,
    one_op_model,
    run_both,
)
from tflite_jit.ops import elementwise
from tflite_jit.ops import expr as E
from tflite_jit.ops.base import OpError, PatternKind, get

HYP = settings(max_examples=25, deadline=None)
ACTS = ["NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT"]
BINARY = ["ADD", "SUB", "MUL", "DIV", "SQUARED_DIFFERENCE"]


@st.composite
def broadcast_pair(draw, max_rank: int = 6):
    """Two shapes that broadcast together (ranks may differ; dims may be 1 on either side)."""
    rank = draw(st.integers(0, max_rank))
    out = draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank))

    def side():
        r = draw(st.integers(0, rank))
        dims = out[rank - r:]
        return tuple(d if draw(st.booleans()) else 1 for d in dims)

    return side(), side()


def _rand(rng, shape, dtype=np.float32, scale=3.0):
    if np.dtype(dtype).kind == "f":
        return np.asarray(rng.standard_normal(shape) * scale).astype(dtype)
    info = np.iinfo(dtype)
    return np.asarray(rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape, dtype=dtype))


# ---- expr ----------------------------------------------------------------------------------------

def test_expr_vocabulary_and_validation():
    assert {"add", "sub", "mul", "div", "neg", "max", "min", "abs", "sqrt", "rsqrt", "exp", "log",
            "tanh", "erf", "erfc", "where", "lt", "gt", "le", "ge", "eq", "square"} <= set(E.FNS)
    with pytest.raises(ValueError, match="unknown expression function"):
        E.Call("pow", (E.Var(0), E.Const(2)))
    with pytest.raises(ValueError, match="takes 2"):
        E.Call("add", (E.Var(0),))
    e = E.add(E.Var(0), 1.5)
    assert e == E.Call("add", (E.Var(0), E.Const(1.5)))
    assert hash(e) == hash(E.Call("add", (E.Var(0), E.Const(1.5))))
    assert E.to_string(E.activation_expr(e, "RELU6")) == "min(max(add(x0, 1.5), 0), 6)"
    assert E.variables(E.mul(E.Var(0), E.Var(2))) == {0, 2}
    assert E.to_string(E.clamp_activation_expr(E.Var(0), "TANH")) == "min(max(x0, 'lowest'), 'highest')"
    with pytest.raises(ValueError):
        E.Const("inf")
    fused = E.substitute(E.maximum(E.Var(0), 0), {0: E.add(E.Var(0), E.Var(1))})
    assert E.to_string(fused) == "max(add(x0, x1), 0)"


def test_expr_float32_and_broadcast():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.float32([1, 2, 3])
    r = E.evaluate_numpy(E.div(E.mul(E.Var(0), 0.1), E.Var(1)), [a, b])
    assert r.dtype == np.float32 and r.shape == (2, 3)
    np.testing.assert_array_equal(r, (a * np.float32(0.1)) / b)
    # constant-only result is broadcast to the inputs' shape
    r = E.evaluate_numpy(E.Const(2.0), [a])
    assert r.shape == (2, 3) and r.dtype == np.float32
    c = E.evaluate_numpy(E.call("lt", E.Var(0), 2), [a])
    assert c.dtype == np.bool_
    w = E.evaluate_numpy(E.where(E.call("ge", E.Var(0), 3), E.Var(0), E.call("neg", E.Var(0))), [a])
    np.testing.assert_array_equal(w, np.where(a >= 3, a, -a))


def test_expr_integer_semantics():
    a = np.array([7, -7, 7, -7, 0, np.iinfo(np.int32).max], np.int32)
    b = np.array([2, 2, -2, -2, 5, 1], np.int32)
    np.testing.assert_array_equal(E.evaluate_numpy(E.div(E.Var(0), E.Var(1)), [a, b]),
                                  [3, -3, -3, 3, 0, np.iinfo(np.int32).max])
    r = E.evaluate_numpy(E.add(E.Var(0), E.Var(1)), [a, b])
    assert r.dtype == np.int32 and r[-1] == np.iinfo(np.int32).min  # wraps
    with pytest.raises(TypeError):
        E.evaluate_numpy(E.add(E.Var(0), 0.5), [a])
    lim = E.evaluate_numpy(E.maximum(E.minimum(E.Var(0), "highest"), "lowest"), [a])
    np.testing.assert_array_equal(lim, a)
    f = E.evaluate_numpy(E.minimum(E.Var(0), "highest"), [np.float32([np.inf, 1])])
    np.testing.assert_array_equal(f, [np.finfo(np.float32).max, 1])


def test_expr_erf_erfc_accuracy():
    x = np.concatenate([np.linspace(-9, 9, 20001), [0.0, 1e-30, -1e-8, 0.5, -0.5, 3e-3]])
    x32 = x.astype(np.float32)
    erf = E.evaluate_numpy(E.call("erf", E.Var(0)), [x32])
    erfc = E.evaluate_numpy(E.call("erfc", E.Var(0)), [x32])
    assert erf.dtype == np.float32
    ref_erf = np.array([math.erf(float(v)) for v in x32])
    ref_erfc = np.array([math.erfc(float(v)) for v in x32])
    nz = ref_erf != 0
    assert np.max(np.abs(erf[nz] - ref_erf[nz]) / np.abs(ref_erf[nz])) < 3e-7
    tiny = ref_erfc > 1e-37
    assert np.max(np.abs(erfc[tiny] - ref_erfc[tiny]) / ref_erfc[tiny]) < 3e-7


def test_every_elementwise_op_has_expr_kind_cost():
    for name in elementwise.ELEMENTWISE_OPS:
        opdef = get(name)
        assert opdef is not None and callable(opdef.expr)
        assert opdef.kind in (PatternKind.ELEMWISE, PatternKind.BROADCAST)
        attrs = opdef.parse({})
        assert isinstance(opdef.expr(attrs), (E.Var, E.Const, E.Call))
        c = opdef.cost([(2, 3), (2, 3)], [(2, 3)], attrs)
        assert c.flops > 0 and c.bytes > 0
    assert get("ADD").kind == PatternKind.BROADCAST and get("TANH").kind == PatternKind.ELEMWISE


def test_parse_defaults():
    assert get("ADD").parse({}).activation == "NONE"
    assert get("MUL").parse({"fused_activation_function": 3}).activation == "RELU6"
    assert get("LEAKY_RELU").parse({}).alpha == 0.0
    assert get("GELU").parse({}).approximate is False
    with pytest.raises(OpError):
        get("ADD").parse({"fused_activation_function": 9})


# ---- float binary ops ----------------------------------------------------------------------------

@HYP
@given(op=st.sampled_from(["ADD", "SUB", "MUL", "DIV"]), shapes=broadcast_pair(),
       act=st.sampled_from(ACTS), const_b=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_binary_float(op, shapes, act, const_b, seed):
    rng = np.random.default_rng(seed)
    a, b = _rand(rng, shapes[0]), _rand(rng, shapes[1])
    if op == "DIV":
        b = np.where(np.abs(b) < 0.1, np.float32(0.5), b).astype(np.float32)
    check_reference(op, [a, Const(b) if const_b else b], fused_activation_function=act)


@HYP
@given(shapes=broadcast_pair(), seed=st.integers(0, 2**31 - 1))
def test_squared_difference_float(shapes, seed):
    rng = np.random.default_rng(seed)
    check_reference("SQUARED_DIFFERENCE", [_rand(rng, shapes[0]), _rand(rng, shapes[1])])


def test_binary_rank7_and_8_broadcast():
    rng = np.random.default_rng(0)
    for sa, sb in [((2, 1, 2, 1, 2, 1, 2), (1, 2, 1, 2, 1, 2, 1)), ((3, 1, 2, 1, 1, 1, 1, 2), (2, 1, 1, 3, 1, 1, 1))]:
        for op in ("ADD", "MUL"):
            check_reference(op, [_rand(rng, sa), _rand(rng, sb)])


def test_binary_float_special_values():
    """LiteRT clamps ADD/SUB/MUL/DIV results to [-FLT_MAX, FLT_MAX] even with no activation."""
    a = np.float32([1, -1, 0, np.inf, 3, -np.inf, 3e38, np.nan, 2, -3e38])
    b = np.float32([0, 0, 0, np.inf, -0.0, 1, 3e38, 1, np.nan, 3e38])
    for op in BINARY:
        for act in ("NONE", "RELU", "TANH"):
            options = {} if op == "SQUARED_DIFFERENCE" else {"fused_activation_function": act}
            check_reference(op, [a, b], **options)
            check_reference(op, [a, b[3:4]], **options)
    ours, _ = run_both("ADD", [a, b])
    assert ours[0][3] == np.finfo(np.float32).max and ours[0][5] == np.finfo(np.float32).min
    ours, _ = run_both("SQUARED_DIFFERENCE", [a, b])
    assert np.isinf(ours[0][3 + 2])


# ---- integer binary ops --------------------------------------------------------------------------

@HYP
@given(op=st.sampled_from(["ADD", "SUB", "MUL", "SQUARED_DIFFERENCE", "DIV"]),
       dtype=st.sampled_from([np.int32, np.int64]), shapes=broadcast_pair(4),
       act=st.sampled_from(ACTS), big=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_binary_int(op, dtype, shapes, act, big, seed):
    if op in ("DIV", "SQUARED_DIFFERENCE") and dtype == np.int64:
        dtype = np.int32  # LiteRT: int32 only
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    lim = info.max if big else 50
    a = np.asarray(rng.integers(-lim, lim, size=shapes[0], dtype=dtype, endpoint=True))
    b = np.asarray(rng.integers(-lim, lim, size=shapes[1], dtype=dtype, endpoint=True))
    if op == "DIV":
        b = np.where(b == 0, dtype(3), b).astype(dtype)
    options = {} if op == "SQUARED_DIFFERENCE" else {"fused_activation_function": act}
    check_reference(op, [a, b], **options)


def test_int_div_truncates_and_rejects_zero():
    a = np.int32([7, -7, 7, -7, 5, 0])
    b = np.int32([2, 2, -2, -2, 7, 3])
    ours, theirs = run_both("DIV", [a, b])
    np.testing.assert_array_equal(ours[0], [3, -3, -3, 3, 0, 0])
    assert_close(ours[0], theirs[0])
    with pytest.raises(OpError, match="division by zero"):
        get("DIV").reference([a, np.int32([1, 1, 0, 1, 1, 1])], get("DIV").parse({}))
    with pytest.raises(RuntimeError):  # LiteRT fails at invoke too
        litert_run(one_op_model("DIV", [((6,), np.int32), ((6,), np.int32)]), [a, np.zeros(6, np.int32)])


def test_int_add_clamps_and_ignores_tanh():
    a = np.int32([7, -7, 0, -1, 2, -3])
    b = np.int32([2, 2, -2, -2, 7, 3])
    for act, expect in [("RELU6", [6, 0, 0, 0, 6, 0]), ("RELU_N1_TO_1", [1, -1, -1, -1, 1, 0]),
                        ("TANH", [9, -5, -2, -3, 9, 0])]:
        ours, theirs = run_both("ADD", [a, b], fused_activation_function=act)
        np.testing.assert_array_equal(ours[0], expect)
        assert_close(ours[0], theirs[0])


# ---- unary ops -----------------------------------------------------------------------------------

UNARY_FLOAT = ["RSQRT", "SQRT", "NEG", "LOGISTIC", "TANH", "RELU", "RELU6", "RELU_N1_TO_1",
               "HARD_SWISH"]


@HYP
@given(op=st.sampled_from(UNARY_FLOAT),
       shape=st.lists(st.integers(1, 5), min_size=0, max_size=6).map(tuple),
       scale=st.sampled_from([0.5, 4.0, 30.0]), seed=st.integers(0, 2**31 - 1))
def test_unary_float(op, shape, scale, seed):
    rng = np.random.default_rng(seed)
    x = _rand(rng, shape, scale=scale)
    if op in ("RSQRT", "SQRT"):
        x = np.abs(x) + np.float32(1e-3)
    check_reference(op, [x])


def test_unary_special_values():
    x = np.float32([0.0, -0.0, -1.0, np.inf, -np.inf, 1e-30, 100.0, -100.0, np.nan])
    for op in UNARY_FLOAT:
        check_reference(op, [x])


def test_unary_extremes():
    x = np.linspace(-60, 60, 2401).astype(np.float32)
    for op in ("LOGISTIC", "TANH", "HARD_SWISH", "GELU"):
        check_reference(op, [x])
    check_reference("GELU", [x], approximate=True)


@HYP
@given(alpha=st.floats(-3, 3, width=32), shape=st.lists(st.integers(1, 5), max_size=5).map(tuple),
       seed=st.integers(0, 2**31 - 1))
def test_leaky_relu(alpha, shape, seed):
    check_reference("LEAKY_RELU", [_rand(np.random.default_rng(seed), shape)], alpha=alpha)


@HYP
@given(approximate=st.booleans(), shape=st.lists(st.integers(1, 6), max_size=5).map(tuple),
       scale=st.sampled_from([1.0, 5.0]), seed=st.integers(0, 2**31 - 1))
def test_gelu(approximate, shape, scale, seed):
    check_reference("GELU", [_rand(np.random.default_rng(seed), shape, scale=scale)], approximate=approximate)


@HYP
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=5).map(tuple),
       dtype=st.sampled_from([np.float32, np.int32, np.int64]), seed=st.integers(0, 2**31 - 1))
def test_neg(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = _rand(rng, shape, dtype)
    if np.dtype(dtype).kind == "i":
        x.reshape(-1)[0] = np.iinfo(dtype).min  # wraps to itself
    check_reference("NEG", [x])


@st.composite
def prelu_shapes(draw):
    rank = draw(st.integers(1, 5))
    x = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    r = draw(st.integers(0, rank))
    alpha = tuple(d if draw(st.booleans()) else 1 for d in x[rank - r:])
    return x, alpha


@HYP
@given(shapes=prelu_shapes(), const_alpha=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_prelu(shapes, const_alpha, seed):
    rng = np.random.default_rng(seed)
    x, alpha = _rand(rng, shapes[0]), _rand(rng, shapes[1], scale=0.5)
    check_reference("PRELU", [x, Const(alpha) if const_alpha else alpha])


# ---- shape-rule errors ---------------------------------------------------------------------------

def test_infer_errors():
    f = np.zeros((2, 3), np.float32)
    with pytest.raises(OpError, match=r"ADD: shapes \[2, 3\] and \[4\] cannot be broadcast.*t0"):
        infer("ADD", [f, np.zeros(4, np.float32)])
    with pytest.raises(OpError, match="same type"):
        infer("MUL", [f, np.zeros((2, 3), np.int32)])
    with pytest.raises(OpError, match="int64.*supports float32, int32"):
        infer("DIV", [np.zeros(3, np.int64), np.zeros(3, np.int64)])
    with pytest.raises(OpError, match="RELU: input 't0' has type int32"):
        infer("RELU", [np.zeros(3, np.int32)])
    with pytest.raises(OpError, match="uint8"):
        infer("ADD", [np.zeros(3, np.uint8), np.zeros(3, np.uint8)])
    with pytest.raises(OpError, match="expected 2 inputs"):
        infer("SUB", [f])
    with pytest.raises(OpError, match="PRELU: alpha 't1'.*must broadcast into the input"):
        infer("PRELU", [np.zeros((1, 3), np.float32), np.zeros((2, 3), np.float32)])
    assert infer("ADD", [np.zeros((2, 1, 3), np.float32), np.zeros((4, 1), np.float32)]) == \
        [((2, 4, 3), np.dtype(np.float32))]
    assert infer("SQUARED_DIFFERENCE", [np.zeros((), np.int32), np.zeros((5,), np.int32)]) == \
        [((5,), np.dtype(np.int32))]
