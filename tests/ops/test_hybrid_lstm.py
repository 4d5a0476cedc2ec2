"""Hybrid (dynamic-range) UNIDIRECTIONAL/BIDIRECTIONAL_SEQUENCE_LSTM against LiteRT's builtin
kernel (ops/hybrid_lstm.py, generators/lstm.py): bit-exact, the gate sigmoid / tanh being
LiteRT's (Eigen's formulas, ops/sequence.py eigen_logistic / eigen_tanh). Every case runs twice
with the state carried, then again after a reset."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import assert_close, litert_interpreter
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.tools.placement import placement

F32 = np.float32
BACKENDS = ("reference", "numba")


def _weights(rng, shape, dtype=np.int8) -> np.ndarray:
    if dtype == np.uint8:
        return rng.integers(0, 256, size=shape).astype(np.uint8)
    return rng.integers(-127, 128, size=shape).astype(np.int8)


def _direction(g, rng, tag: str, i: int, n_cell: int, n_out: int, *, cifg: bool, peephole: bool,
               projection: bool, proj_bias: bool, wtype, types: dict) -> list[int]:
    """One direction's 17 weight inputs (the unidirectional op's inputs 1-17): int8 weight
    matrices, peepholes and projection (per-tensor scales), float32 biases; -1 where omitted.
    `types`: {input index (1-17): dtype} overrides (for the refusal tests)."""
    def q(name, shape, scale, k):
        dt = types.get(k, wtype)
        if np.dtype(dt) == F32:
            return g.const(name, rng.normal(size=shape).astype(F32) * scale * 60)
        return g.const(name, _weights(rng, shape, dt), scale=scale, zero_point=0)

    ids = []
    for k in range(1, 5):
        ids.append(-1 if cifg and k == 1 else q(f"{tag}wx{k}", (n_cell, i), float(rng.uniform(0.005, 0.03)), k))
    for k in range(5, 9):
        ids.append(-1 if cifg and k == 5 else q(f"{tag}wh{k}", (n_cell, n_out), float(rng.uniform(0.003, 0.02)), k))
    for k in range(9, 12):
        ids.append(q(f"{tag}p{k}", (n_cell,), 0.01, k) if peephole and not (cifg and k == 9) else -1)
    for k in range(12, 16):
        ids.append(-1 if cifg and k == 12 else g.const(f"{tag}b{k}", (rng.normal(size=n_cell) * 0.3).astype(F32)))
    ids.append(q(f"{tag}proj", (n_out, n_cell), 0.02, 16) if projection else -1)
    ids.append(g.const(f"{tag}pb", (rng.normal(size=n_out) * 0.2).astype(F32)) if projection and proj_bias else -1)
    return ids


def hybrid_lstm_model(rng, t, b, i, n_cell, n_out, *, time_major=False, cifg=False, peephole=False,
                      projection=False, proj_bias=False, layer_norm=False, act=4, cell_clip=0.0,
                      proj_clip=0.0, asym=False, wtype=np.int8, types=None) -> tuple[bytes, tuple]:
    """A one-op hybrid UNIDIRECTIONAL_SEQUENCE_LSTM: int8 weights (per-tensor scales), float32
    biases and states. (The wh6 etc. names the refusal tests match come from _direction.)"""
    mb = ModelBuilder()
    g = mb.subgraph()
    xs = (t, b, i) if time_major else (b, t, i)
    ins = [g.input("x", xs, F32)]
    ins += _direction(g, rng, "", i, n_cell, n_out, cifg=cifg, peephole=peephole, projection=projection,
                      proj_bias=proj_bias, wtype=wtype, types=types or {})
    ins.append(g.tensor("h", (b, n_out), F32, is_variable=True))
    ins.append(g.tensor("c", (b, n_cell), F32, is_variable=True))
    for k in range(20, 24):
        ins.append(g.const(f"ln{k}", (1 + 0.3 * rng.normal(size=n_cell)).astype(F32))
                   if layer_norm and not (cifg and k == 20) else -1)
    y = g.tensor("y", (t, b, n_out) if time_major else (b, t, n_out), F32)
    g.op("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [y], time_major=time_major, fused_activation_function=act,
         cell_clip=cell_clip, proj_clip=proj_clip, asymmetric_quantize_inputs=asym)
    g.output(y)
    return mb.build(), xs


def hybrid_bilstm_model(rng, t, b, i, n_cell, n_out, *, aux_mode="none", n_aux=3, time_major=False,
                        merge=False, cifg=False, peephole=False, projection=False, act=4, cell_clip=0.0,
                        asym=False, wtype=np.int8) -> tuple[bytes, list[tuple]]:
    """A one-op hybrid BIDIRECTIONAL_SEQUENCE_LSTM. aux_mode: 'none'; 'aux' (an aux input and no
    aux weights: the backward direction reads it); 'aux_w' (int8 aux weights in both)."""
    mb = ModelBuilder()
    g = mb.subgraph()

    def seq(n):
        return (t, b, n) if time_major else (b, t, n)

    feeds = [seq(i)]
    ins = [g.input("x", seq(i), F32)]
    kw = dict(cifg=cifg, peephole=peephole, projection=projection, proj_bias=True, wtype=wtype, types={})
    ins += _direction(g, rng, "fw", i, n_cell, n_out, **kw)
    ins += _direction(g, rng, "bw", i, n_cell, n_out, **kw)
    for tag in ("fw", "bw"):
        ins.append(g.tensor(f"{tag}h", (b, n_out), F32, is_variable=True))
        ins.append(g.tensor(f"{tag}c", (b, n_cell), F32, is_variable=True))
    if aux_mode == "none":
        ins += [-1] * 9
    else:
        if aux_mode == "aux":
            n_aux = i
        feeds.append(seq(n_aux))
        ins.append(g.input("aux", seq(n_aux), F32))
        for tag in ("fw", "bw"):
            for k in range(4):
                if aux_mode == "aux_w" and not (cifg and k == 0):
                    ins.append(g.const(f"{tag}aux{k}", _weights(rng, (n_cell, n_aux), wtype),
                                       scale=float(rng.uniform(0.005, 0.03)), zero_point=0))
                else:
                    ins.append(-1)
    outs = [g.tensor("y", seq(2 * n_out), F32)] if merge else [g.tensor("yf", seq(n_out), F32),
                                                              g.tensor("yb", seq(n_out), F32)]
    g.op("BIDIRECTIONAL_SEQUENCE_LSTM", ins, outs, time_major=time_major, fused_activation_function=act,
         cell_clip=cell_clip, proj_clip=0.0, merge_outputs=merge, asymmetric_quantize_inputs=asym)
    g.output(*outs)
    return mb.build(), feeds


def check_against_litert(model: bytes, xs, rng, backends=BACKENDS, zero_row: bool = True,
                         exact: bool = True) -> None:
    """xs: the input's shape, or a list of every graph input's shape. Three invokes (the state
    carried, then reset); every output equal to LiteRT's builtin kernel's, to the bit (`exact`),
    or within the float contract (random configurations: 5-7 in 1,000 differ by an ulp
    somewhere, see docs/quantization.md)."""
    shapes = xs if isinstance(xs, list) else [xs]
    theirs = litert_interpreter(model)
    theirs.allocate_tensors()
    ours = [tflite_jit.Interpreter(model_content=model, backend=be) for be in backends]
    for it in ours:
        it.allocate_tensors()
    for k in range(3):
        if k == 2:
            for it in (theirs, *ours):
                it.reset_all_variables()
        feeds = [(rng.normal(size=s) * rng.choice([0.3, 1.0, 3.0])).astype(F32) for s in shapes]
        if k == 1 and zero_row:
            feeds[0][0] = 0  # an all-zero batch row (batch-major) or step (time-major): products skipped
        for it in (theirs, *ours):
            for d, x in zip(it.get_input_details(), feeds):
                it.set_tensor(d["index"], x)
            it.invoke()
        for j, d in enumerate(theirs.get_output_details()):
            want = theirs.get_tensor(d["index"])
            for it, be in zip(ours, backends):
                got = it.get_tensor(it.get_output_details()[j]["index"])
                if exact:
                    np.testing.assert_array_equal(got, want, err_msg=f"invoke {k} output {j} {be}")
                else:
                    assert_close(got, want, what=f"invoke {k} output {j} {be}")


@settings(max_examples=40, deadline=None, derandomize=True)
@given(t=st.integers(1, 5), b=st.integers(1, 3), i=st.integers(1, 20), n_cell=st.integers(1, 12),
       time_major=st.booleans(), cifg=st.booleans(), peephole=st.booleans(), projection=st.booleans(),
       proj_bias=st.booleans(), layer_norm=st.booleans(), act=st.sampled_from([0, 1, 3, 4]),
       cell_clip=st.sampled_from([0.0, 0.8]), proj_clip=st.sampled_from([0.0, 0.3]), asym=st.booleans(),
       wtype=st.sampled_from([np.int8, np.int8, np.uint8]), seed=st.integers(0, 2**31 - 1))
def test_hybrid_lstm_reference(t, b, i, n_cell, time_major, cifg, peephole, projection, proj_bias,
                               layer_norm, act, cell_clip, proj_clip, asym, wtype, seed) -> None:
    rng = np.random.default_rng(seed)
    n_out = int(rng.integers(1, 8)) if projection else n_cell
    model, xs = hybrid_lstm_model(rng, t, b, i, n_cell, n_out, time_major=time_major, cifg=cifg,
                                  peephole=peephole, projection=projection, proj_bias=proj_bias,
                                  layer_norm=layer_norm, act=act, cell_clip=cell_clip,
                                  proj_clip=proj_clip if projection else 0.0, asym=asym, wtype=wtype)
    check_against_litert(model, xs, rng, backends=("reference",), exact=False)


@pytest.mark.parametrize("time_major,cifg,asym,act,cell_clip,b,n_cell", [
    (False, False, True, 4, 10.0, 1, 24),   # what TF's converter emits for a Keras LSTM
    (False, False, False, 4, 0.0, 1, 24),
    (True, False, True, 4, 0.0, 3, 24),
    (False, True, False, 1, 0.7, 2, 24),
    (True, True, True, 3, 0.0, 2, 24),
    # cell counts that are not multiples of 4: Eigen's scalar logistic on some gate elements
    (False, True, False, 4, 0.0, 3, 11),
    (True, False, True, 4, 0.5, 2, 13),
])
def test_hybrid_lstm_compiled(time_major, cifg, asym, act, cell_clip, b, n_cell) -> None:
    """The Numba kernel (generators/lstm.py) on the shapes the converter emits, and more:
    bit-exact, like the reference."""
    rng = np.random.default_rng(7)
    model, xs = hybrid_lstm_model(rng, 6, b, 20, n_cell, n_cell, time_major=time_major, cifg=cifg, asym=asym,
                                  act=act, cell_clip=cell_clip)
    check_against_litert(model, xs, rng)
    rows = [r for r in placement(model) if r["op"] == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert [(r["backend"], r["variant"]) for r in rows] == [("numba_cpu", "hybrid")], rows


def test_hybrid_lstm_mixed_weight_types_refused() -> None:
    """LiteRT reads every weight matrix of a hybrid LSTM as int8; a float32 one among int8 ones
    would be misread, so it is refused with the tensor's name and the fix."""
    rng = np.random.default_rng(0)
    model, _ = hybrid_lstm_model(rng, 2, 1, 3, 4, 4, types={6: np.float32})
    with pytest.raises(RuntimeError, match="recurrent_to_forget_weights 'wh6' .*int8"):
        tflite_jit.Interpreter(model_content=model).allocate_tensors()


def test_hybrid_lstm_per_channel_refused() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    rng = np.random.default_rng(0)
    ins = [g.input("x", (1, 2, 3), F32)]
    for k in range(1, 9):
        shape = (4, 3) if k < 5 else (4, 4)
        if k == 2:
            ins.append(g.const("w2", _weights(rng, shape), scale=[0.01] * 4, zero_point=[0] * 4))
        else:
            ins.append(g.const(f"w{k}", _weights(rng, shape), scale=0.01, zero_point=0))
    ins += [-1] * 3 + [g.const(f"b{k}", np.zeros(4, F32)) for k in range(4)] + [-1, -1]
    ins += [g.tensor("h", (1, 4), F32, is_variable=True), g.tensor("c", (1, 4), F32, is_variable=True)]
    y = g.tensor("y", (1, 2, 4), F32)
    g.op("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [y], fused_activation_function=4)
    g.output(y)
    with pytest.raises(RuntimeError, match="'w2' .*per channel"):
        tflite_jit.Interpreter(model_content=mb.build()).allocate_tensors()


@settings(max_examples=8, deadline=None, derandomize=True)
@given(t=st.integers(1, 4), b=st.integers(1, 3), i=st.integers(1, 24), n_cell=st.integers(1, 20),
       time_major=st.booleans(), cifg=st.booleans(), act=st.sampled_from([1, 2, 3, 4]),
       cell_clip=st.sampled_from([0.0, 0.6]), asym=st.booleans(), wtype=st.sampled_from([np.int8, np.uint8]),
       seed=st.integers(0, 2**31 - 1))
def test_hybrid_lstm_compiled_random(t, b, i, n_cell, time_major, cifg, act, cell_clip, asym, wtype, seed) -> None:
    """The compiled kernel on random shapes and options (each example compiles a kernel: few)."""
    rng = np.random.default_rng(seed)
    model, xs = hybrid_lstm_model(rng, t, b, i, n_cell, n_cell, time_major=time_major, cifg=cifg, act=act,
                                  cell_clip=cell_clip, asym=asym, wtype=wtype)
    check_against_litert(model, xs, rng, exact=False)
    rows = [r for r in placement(model) if r["op"] == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    # uint8 weights read as int8 may hold -128, which LiteRT's SSE dot mis-multiplies in blocks of
    # 16 columns: those nodes stay on the reference (which reproduces it)
    assert rows[0]["backend"] == "numba_cpu" or "-128" in rows[0]["reason"], rows


def test_hybrid_lstm_minus128_weights_stay_on_reference() -> None:
    rng = np.random.default_rng(3)
    model, xs = hybrid_lstm_model(rng, 3, 2, 20, 8, 8, wtype=np.uint8)
    rows = [r for r in placement(model) if r["op"] == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert rows[0]["backend"] == "reference" and "-128" in rows[0]["reason"], rows
    check_against_litert(model, xs, rng)


@pytest.mark.parametrize("name", ["tf_lstm_dynamic_range", "tf_bilstm_dynamic_range"])
def test_converter_hybrid_lstm_bit_exact(name: str) -> None:
    """TF's converter output (tests/data, make_tf_models.py): every LSTM node compiled, and every
    LSTM output equal to LiteRT's builtin kernel's over 30 invokes with the state carried."""
    import pathlib

    data = (pathlib.Path(__file__).parents[1] / "data" / f"{name}.tflite").read_bytes()
    rows = [r for r in placement(data) if r["op"] == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert rows and all((r["backend"], r["variant"]) == ("numba_cpu", "hybrid") for r in rows), rows
    theirs = litert_interpreter(data, experimental_preserve_all_tensors=True)
    ours = [tflite_jit.Interpreter(model_content=data, backend=be, experimental_preserve_all_tensors=True)
            for be in BACKENDS]
    for it in (theirs, *ours):
        it.allocate_tensors()
    lstm_outs = [op["outputs"][0] for op in theirs._get_ops_details()
                 if op["op_name"] == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    rng = np.random.default_rng(0)
    d = theirs.get_input_details()[0]
    for k in range(30):
        x = rng.integers(0, 50, size=d["shape"]).astype(d["dtype"])
        for it in (theirs, *ours):
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
        for i in lstm_outs:
            for it, be in zip(ours, BACKENDS):
                np.testing.assert_array_equal(it.get_tensor(i), theirs.get_tensor(i), err_msg=f"invoke {k} {be}")


@settings(max_examples=40, deadline=None, derandomize=True)
@given(t=st.integers(1, 4), b=st.integers(1, 3), i=st.integers(1, 12), n_cell=st.integers(2, 8),
       aux_mode=st.sampled_from(["none", "aux", "aux_w"]), time_major=st.booleans(), merge=st.booleans(),
       cifg=st.booleans(), peephole=st.booleans(), projection=st.booleans(), act=st.sampled_from([1, 4]),
       asym=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_hybrid_bidirectional_lstm(t, b, i, n_cell, aux_mode, time_major, merge, cifg, peephole, projection,
                                   act, asym, seed) -> None:
    rng = np.random.default_rng(seed)
    if merge and not time_major:
        b = 1  # LiteRT 2.3 writes a merged batch-major output wrongly for batch > 1 (test_sequence.py)
    n_out = int(rng.integers(1, 5)) if projection else n_cell
    model, feeds = hybrid_bilstm_model(rng, t, b, i, n_cell, n_out, aux_mode=aux_mode, time_major=time_major,
                                       merge=merge, cifg=cifg, peephole=peephole, projection=projection,
                                       act=act, asym=asym)
    check_against_litert(model, feeds, rng, backends=("reference",), exact=False)
