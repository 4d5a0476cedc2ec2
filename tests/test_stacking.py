"""Same-weight FULLY_CONNECTEDs over one tensor's rows run as one FC (issue #13,
runtime/stacking.py): an unrolled RNN's per-step input projections.

The rewrite is for execution only: the results are LiteRT's (float within its noise, integers
bit-exact), the detail dicts and the execution plan's ops are the file's, and a stacked FC is
one kernel whose cluster lists every FC it computes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import tflite_jit
from tests.oracle import assert_close, litert_run
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.reader import load_bytes
from tflite_jit.ir.model import BUILTIN_CODES, Op
from tflite_jit.runtime.stacking import stack_row_fcs

F32 = np.float32
T, K, UNITS = 6, 8, 12


def unrolled(*, rows: range = range(T), first_bias_only: bool = False, step_output: int | None = None,
             hybrid: bool = False, keep_num_dims: bool = False) -> bytes:
    """A Keras-style unrolled RNN: UNPACK the (T, 1, K) input, project each step with the same
    weights (the FCs of `rows`; other rows have weights of their own), and run a tanh recurrence
    h = tanh(x_t W + h U). `first_bias_only`: only the first step's FC has the bias (what the
    converter writes for an unrolled LSTM). `step_output`: that step's projection is a graph
    output too (its buffer is its own: the rows are copied out, not viewed)."""
    rng = np.random.default_rng(3)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (T, 1, K), F32)
    steps = g.apply("UNPACK", [x], num=T, axis=0)
    if hybrid:
        wq = rng.integers(-127, 128, (UNITS, K)).astype(np.int8)
        w = g.const("w", wq, scale=list(rng.uniform(0.005, 0.02, UNITS)), zero_point=0, quantized_dimension=0)
    else:
        w = g.const("w", rng.normal(0, 0.3, (UNITS, K)).astype(F32))
    b = g.const("b", rng.normal(0, 0.1, UNITS).astype(F32))
    u = g.const("u", rng.normal(0, 0.2, (UNITS, UNITS)).astype(F32))
    proj = g.const("proj", rng.normal(0, 0.3, (1, UNITS)).astype(F32))
    h = None
    outs = []
    for t, xt in enumerate(steps):
        if t in rows:
            bias = b if (t == rows[0] or not first_bias_only) else -1
            yt = g.tensor(f"xw{t}", (1, UNITS), F32)
            g.op("FULLY_CONNECTED", [xt, w, bias], [yt], keep_num_dims=keep_num_dims)
        else:
            own = g.const(f"w_own{t}", rng.normal(0, 0.3, (UNITS, K)).astype(F32))  # weights of its own
            (yt,) = g.apply("ADD", [g.apply("FULLY_CONNECTED", [xt, own, b])[0], proj])
        if t == step_output:
            outs.append(yt)
        if h is not None:
            (hu,) = g.apply("FULLY_CONNECTED", [h, u, -1])
            (yt,) = g.apply("ADD", [yt, hu])
        (h,) = g.apply("TANH", [yt])
    g.output(h, *outs)
    return mb.build()


def _inputs(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (T, 1, K)).astype(F32)


def _ours(content: bytes, x: np.ndarray, **kw) -> tuple[list[np.ndarray], tflite_jit.Interpreter]:
    it = tflite_jit.Interpreter(model_content=content, jit="eager", **kw)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()], it


def _stacked_clusters(it: tflite_jit.Interpreter) -> list[dict]:
    plan = it.get_execution_plan()
    return [c for c in plan["clusters"] if len(c["ops"]) > 1 and set(c["op_names"]) == {"FULLY_CONNECTED"}]


@pytest.mark.parametrize("case", ["all_rows", "first_bias_only", "middle_rows", "step_output"])
def test_stacked_fcs_give_litert_results(case: str) -> None:
    kw = {"all_rows": {}, "first_bias_only": {"first_bias_only": True},
          "middle_rows": {"rows": range(2, 5)}, "step_output": {"step_output": 3}}[case]
    content = unrolled(**kw)
    x = _inputs()
    ours, it = _ours(content, x)
    for o, ref in zip(ours, litert_run(content, [x])):
        assert_close(o, ref)
    # one kernel computes the run: all rows, or all but the first (its FC has the bias alone)
    n = {"all_rows": T, "first_bias_only": T - 1, "middle_rows": 3, "step_output": T}[case]
    (cluster,) = _stacked_clusters(it)
    assert len(cluster["ops"]) == n and cluster["backend"] == "numba_cpu"
    ex = it._interpreter.execs[0]
    assert ex.sg.source is it._model.subgraphs[0]
    # the API still shows the file: its ops, every op in the plan exactly once, its tensors
    plan = it.get_execution_plan()
    assert len(plan["ops"]) == len(it._get_ops_details()) == len(it._model.subgraphs[0].ops)
    assert [o["name"] for o in plan["ops"]] == [d["op_name"] for d in it._get_ops_details()]
    assert sorted(oi for c in plan["clusters"] for oi in c["ops"]) == list(range(len(plan["ops"])))
    assert len(plan["tensors"]) == len(it.get_tensor_details())


def test_stacked_steps_keep_their_values() -> None:
    """Each step's projection is still its own tensor, with the value it had unstacked: a view
    of the stacked output (get_tensor of an intermediate reads it, as LiteRT's does)."""
    content = unrolled()
    x = _inputs(1)
    _, it = _ours(content, x)
    _, plain = _ours(content, x, experimental_preserve_all_tensors=True)  # no rewrite: every tensor kept
    assert not _stacked_clusters(plain)
    for d in it.get_tensor_details():
        if d["name"].startswith("xw"):
            assert_close(it.get_tensor(d["index"]), plain.get_tensor(d["index"]))


def int8_unrolled() -> bytes:
    """The int8 form: every step's projection shares its output scale (a converter calibrates
    each step's tensor on its own; FCs whose output scales differ are not stacked)."""
    rng = np.random.default_rng(4)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (T, 1, K), np.int8, scale=0.02, zero_point=3)
    steps = [g.tensor(f"x{t}", (1, K), np.int8, scale=0.02, zero_point=3) for t in range(T)]
    g.op("UNPACK", [x], steps, num=T, axis=0)
    w_scale = rng.uniform(0.002, 0.01, UNITS)
    w = g.const("w", rng.integers(-127, 128, (UNITS, K)).astype(np.int8), scale=list(w_scale), zero_point=0)
    b = g.const("b", rng.integers(-2000, 2000, UNITS).astype(np.int32), scale=list(0.02 * w_scale), zero_point=0)
    acc = None
    for t, xt in enumerate(steps):
        yt = g.tensor(f"xw{t}", (1, UNITS), np.int8, scale=0.05, zero_point=-2)
        g.op("FULLY_CONNECTED", [xt, w, b], [yt], fused_activation_function="RELU")
        if acc is None:
            acc = yt
        else:
            nxt = g.tensor(f"sum{t}", (1, UNITS), np.int8, scale=0.1, zero_point=-5)
            g.op("ADD", [acc, yt], [nxt])
            acc = nxt
    g.output(acc)
    return mb.build()


def test_int8_stacked_fcs_are_bit_exact() -> None:
    content = int8_unrolled()
    x = np.random.default_rng(5).integers(-128, 128, (T, 1, K)).astype(np.int8)
    ours, it = _ours(content, x)
    (cluster,) = _stacked_clusters(it)
    assert len(cluster["ops"]) == T
    for o, ref in zip(ours, litert_run(content, [x])):
        np.testing.assert_array_equal(o, ref)
    _, plain = _ours(content, x, experimental_preserve_all_tensors=True)
    for d in it.get_tensor_details():
        if d["name"].startswith("xw"):
            np.testing.assert_array_equal(it.get_tensor(d["index"]), plain.get_tensor(d["index"]))


def test_hybrid_stacked_fcs_quantize_each_row_alone() -> None:
    """Dynamic-range FCs quantize their input per row (LiteRT's hybrid kernel): stacking the
    rows keeps each row's own scale, so the results equal the unstacked kernels' bit for bit."""
    content = unrolled(hybrid=True)
    x = _inputs(2)
    x[3] *= 40.0  # one step's row with a much larger range than the others
    ours, it = _ours(content, x)
    assert _stacked_clusters(it)
    plain, _ = _ours(content, x, experimental_preserve_all_tensors=True)
    for o, p, ref in zip(ours, plain, litert_run(content, [x])):
        np.testing.assert_array_equal(o, p)
        assert_close(o, ref)


def test_what_does_not_stack() -> None:
    """Different weights, keep_num_dims, or fewer than two rows: the graph is left as it is."""
    model = load_bytes(unrolled(keep_num_dims=True))
    assert stack_row_fcs(model) is model
    model = load_bytes(unrolled(rows=range(2, 3)))
    assert stack_row_fcs(model) is model
    # a bias computed after the UNPACK: the stacked FC, which runs right after it, could not read it
    late = load_bytes(unrolled())
    sg = late.subgraphs[0]
    fcs = [op for op in sg.ops if op.name == "FULLY_CONNECTED" and op.inputs[2] >= 0]
    bias = fcs[0].inputs[2]
    sg.tensors.append(dataclasses.replace(sg.tensors[bias], name="late_bias", data=None, buffer=0))
    late_bias = len(sg.tensors) - 1
    ui = next(i for i, op in enumerate(sg.ops) if op.name == "UNPACK")
    sg.ops.insert(ui + 1, Op(name="NEG", inputs=(bias,), outputs=(late_bias,), builtin_code=BUILTIN_CODES["NEG"]))
    for op in fcs:
        op.inputs = (op.inputs[0], op.inputs[1], late_bias)
    assert stack_row_fcs(late) is late
    stacked = stack_row_fcs(load_bytes(unrolled()))
    sg = stacked.subgraphs[0]
    assert sg.origin is not None and len(sg.origin) == len(sg.ops)
    fc = [i for i, op in enumerate(sg.ops) if op.name == "FULLY_CONNECTED" and len(sg.origin[i]) > 1]
    assert len(fc) == 1 and len(sg.origin[fc[0]]) == T
    # new tensors come after the file's: every file tensor keeps its id
    assert sg.tensors[:len(sg.source.tensors)] == sg.source.tensors


def test_stacking_can_be_turned_off(monkeypatch) -> None:
    monkeypatch.setenv("TFLITE_JIT_STACKING", "0")
    content = unrolled()
    x = _inputs(6)
    ours, it = _ours(content, x)
    assert not _stacked_clusters(it) and it._interpreter.execs[0].sg is it._model.subgraphs[0]
    for o, ref in zip(ours, litert_run(content, [x])):
        assert_close(o, ref)
