"""Quantized unary ops as tables derived from their reference (generators/qtable.py): every
input value of the type, bit-exact against LiteRT's builtin kernels, and really compiled."""

from __future__ import annotations

import numpy as np
import pytest

import tflite_jit
from tests.oracle import litert_interpreter
from tflite_jit.format.builder import ModelBuilder

I8, U8, I16 = np.int8, np.uint8, np.int16

# (op, dtype, (in scale, in zp), (out scale, out zp)); zero points 0 for int16 (LiteRT requires it)
CASES = [
    ("RSQRT", I8, (0.02, -128), (0.05, -128)), ("SQRT", I8, (0.03, -128), (0.02, -128)),
    ("LOG", I8, (0.05, -127), (0.04, 10)), ("EXP", I8, (0.02, 3), (0.05, -128)),
    ("ABS", I8, (0.03, 5), (0.02, -128)), ("NEG", I8, (0.03, 5), (0.03, -5)),
    ("ABS", I16, (0.001, 0), (0.0007, 0)), ("NEG", I16, (0.001, 0), (0.001, 0)),
    ("LEAKY_RELU", I8, (0.04, 2), (0.03, -7)), ("LEAKY_RELU", I16, (0.001, 0), (0.0008, 0)),
    ("RELU", I16, (0.001, 0), (0.0009, 0)), ("RELU6", I8, (0.05, -3), (0.03, -128)),
    ("LOGISTIC", I16, (0.0008, 0), (1 / 32768, 0)), ("TANH", I16, (0.0005, 0), (1 / 32768, 0)),
    ("LOGISTIC", I8, (0.06, 4), (1 / 256, -128)), ("HARD_SWISH", I8, (0.05, -2), (0.03, -60)),
]


def _model(op, dtype, qin, qout, n, **options) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, n), dtype, scale=qin[0], zero_point=qin[1])
    y = g.tensor("y", (1, n), dtype, scale=qout[0], zero_point=qout[1])
    g.op(op, [x], [y], **options)
    g.output(y)
    return mb.build()


@pytest.mark.parametrize("op,dtype,qin,qout", CASES, ids=[f"{c[0]}-{np.dtype(c[1]).name}" for c in CASES])
def test_table_matches_litert_on_every_input_value(op, dtype, qin, qout):
    info = np.iinfo(dtype)
    x = np.arange(info.min, info.max + 1, dtype=np.int64).astype(dtype).reshape(1, -1)
    if op == "RSQRT" or op in ("SQRT", "LOG"):
        x = x[:, x[0] > (qin[1] if dtype != I16 else 0)]  # positive reals only: LiteRT fails on the rest
    options = {"alpha": 0.2} if op == "LEAKY_RELU" else {}
    model = _model(op, dtype, qin, qout, x.shape[1], **options)
    theirs = litert_interpreter(model)
    theirs.allocate_tensors()
    theirs.set_tensor(theirs.get_input_details()[0]["index"], x)
    theirs.invoke()
    want = theirs.get_tensor(theirs.get_output_details()[0]["index"])
    ours = tflite_jit.Interpreter(model_content=model, backend="numba")
    ours.allocate_tensors()
    ours.set_tensor(ours.get_input_details()[0]["index"], x)
    ours.invoke()
    np.testing.assert_array_equal(ours.get_tensor(ours.get_output_details()[0]["index"]), want)
    assert [o["backend"] for o in ours.get_execution_plan()["ops"]] == ["numba_cpu"]


@pytest.mark.parametrize("dtype,qin", [(I8, (0.02, 0)), (I16, (0.001, 0))])
def test_an_op_whose_reference_rejects_some_values_stays_on_reference(dtype, qin):
    """RSQRT over a type whose values include negative reals: LiteRT fails such an invoke, so
    a table cannot stand in; the reference runs and reports as LiteRT does."""
    model = _model("RSQRT", dtype, qin, (0.05, -128) if dtype == I8 else (0.004, 0), 4)
    ours = tflite_jit.Interpreter(model_content=model, backend="numba")
    ours.allocate_tensors()
    assert [o["backend"] for o in ours.get_execution_plan()["ops"]] == ["reference"]
    x = np.array([[4, 9, -3, 1]], dtype)
    for it in (litert_interpreter(model), ours):
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        with pytest.raises(RuntimeError):
            it.invoke()


def _swish_model(dtype, qx, qs, qo, n, gate_input=False) -> bytes:
    """MUL(x, LOGISTIC(x)) -- Keras' swish in every int8 EfficientNet -- or, with `gate_input`,
    MUL(x, LOGISTIC(g)) of a second input g (a squeeze-and-excite gate: not a function of x)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, n), dtype, scale=qx[0], zero_point=qx[1])
    src = g.input("g", (1, n), dtype, scale=qx[0], zero_point=qx[1]) if gate_input else x
    s = g.tensor("s", (1, n), dtype, scale=qs[0], zero_point=qs[1])
    g.op("LOGISTIC", [src], [s])
    y = g.tensor("y", (1, n), dtype, scale=qo[0], zero_point=qo[1])
    g.op("MUL", [x, s], [y])
    g.output(y)
    return mb.build()


@pytest.mark.parametrize("dtype,qx,qs,qo", [(I8, (0.06, 4), (1 / 256, -128), (0.035, -120)),
                                            (U8, (0.05, 130), (1 / 256, 0), (0.03, 9))])
def test_swish_chain_is_one_table_on_every_input_value(dtype, qx, qs, qo):
    """A cluster of quantized element-wise nodes reading one 8-bit tensor is one table derived
    from the nodes' references (qtable.chain_table): one step, bit-exact with LiteRT."""
    info = np.iinfo(dtype)
    x = np.arange(info.min, info.max + 1, dtype=np.int64).astype(dtype).reshape(1, -1)
    model = _swish_model(dtype, qx, qs, qo, x.shape[1])
    theirs = litert_interpreter(model)
    theirs.allocate_tensors()
    theirs.set_tensor(theirs.get_input_details()[0]["index"], x)
    theirs.invoke()
    ours = tflite_jit.Interpreter(model_content=model, backend="numba")
    ours.allocate_tensors()
    ours.set_tensor(ours.get_input_details()[0]["index"], x)
    ours.invoke()
    np.testing.assert_array_equal(ours.get_tensor(ours.get_output_details()[0]["index"]),
                                  theirs.get_tensor(theirs.get_output_details()[0]["index"]))
    steps = ours.get_execution_plan()["clusters"]
    assert [(c["op_names"], c["backend"]) for c in steps] == [(["LOGISTIC", "MUL"], "numba_cpu")], steps


def test_a_gate_of_another_tensor_is_not_a_table():
    """MUL(x, LOGISTIC(g)) depends on two tensors: two kernels (each its own), still exact."""
    rng = np.random.default_rng(3)
    model = _swish_model(I8, (0.06, 4), (1 / 256, -128), (0.035, -120), 300, gate_input=True)
    xs = [rng.integers(-128, 128, (1, 300)).astype(I8) for _ in range(2)]
    ours = tflite_jit.Interpreter(model_content=model, backend="numba")
    ours.allocate_tensors()
    theirs = litert_interpreter(model)
    theirs.allocate_tensors()
    for it in (ours, theirs):
        for d, v in zip(it.get_input_details(), xs):
            it.set_tensor(d["index"], v)
        it.invoke()
    np.testing.assert_array_equal(ours.get_tensor(ours.get_output_details()[0]["index"]),
                                  theirs.get_tensor(theirs.get_output_details()[0]["index"]))
    assert all(len(c["op_names"]) == 1 for c in ours.get_execution_plan()["clusters"])
