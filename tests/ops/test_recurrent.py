"""LSTM (FULL and BASIC kernels), RNN and BIDIRECTIONAL_SEQUENCE_RNN against LiteRT's builtin kernels.

Stateful models keep their recurrent state in variable tensors, as converted models do; each test
invokes twice (state carried), resets the variables and invokes again, comparing every output
with LiteRT each time (helpers shared with test_sequence.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.ops.test_sequence import Feed, check_invokes, lstm_weights, sequence_model, weight
from tests.oracle import Const, State, assert_close, litert_interpreter, one_op_model, run_both
from tflite_jit import ops
from tflite_jit.format.builder import ModelBuilder


@settings(max_examples=20, deadline=None)
@given(st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans(),
       st.sampled_from(["TANH", "RELU", "RELU6", "RELU_N1_TO_1", "NONE"]), st.sampled_from([0.0, 0.7]),
       st.sampled_from([0.0, 0.4]), st.data())
def test_lstm_full(cifg, peephole, projection, layer_norm, n24, act, cell_clip, proj_clip, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    n_batch, n_input, n_cell = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    n_output = data.draw(st.integers(1, 4)) if projection else n_cell
    w, ln = lstm_weights(rng, n_input, n_cell, n_output, cifg=cifg, peephole=peephole, projection=projection,
                         proj_bias=data.draw(st.booleans()), layer_norm=layer_norm)
    specs = [Feed((n_batch, n_input)), *w, State((n_batch, n_output)), State((n_batch, n_cell))]
    if layer_norm:
        specs += ln
    elif n24:
        specs += [None] * 4
    model = sequence_model("LSTM", specs, fused_activation_function=act, cell_clip=cell_clip,
                           proj_clip=proj_clip if projection else 0.0)
    check_invokes(model, [(n_batch, n_input)], rng)


def test_lstm_full_numba_backend() -> None:
    """The default backend (falling back to the reference kernel) keeps state across invokes too."""
    rng = np.random.default_rng(5)
    w, _ = lstm_weights(rng, 3, 4, 4, cifg=False, peephole=False, projection=False, proj_bias=False,
                        layer_norm=False)
    model = sequence_model("LSTM", [Feed((2, 3)), *w, State((2, 4)), State((2, 4))],
                           fused_activation_function="TANH")

    theirs = litert_interpreter(model)
    theirs.allocate_tensors()
    ours = tflite_jit.Interpreter(model_content=model)
    ours.allocate_tensors()
    for k in range(3):
        if k == 2:
            theirs.reset_all_variables()
            ours.reset_all_variables()
        x = rng.standard_normal((2, 3)).astype(np.float32)
        for it in (theirs, ours):
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
        assert_close(ours.get_tensor(ours.get_output_details()[0]["index"]),
                     theirs.get_tensor(theirs.get_output_details()[0]["index"]), what=f"invoke {k}")


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(0, 999))
def test_lstm_basic(n_batch, n_input, n_out, seed) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_batch, n_input)).astype(np.float32)
    prev_act = rng.standard_normal((n_batch, n_out)).astype(np.float32)
    weights = weight(rng, 4 * n_out, n_input + n_out)
    bias = weight(rng, 4 * n_out)
    prev_state = rng.standard_normal((n_batch, n_out)).astype(np.float32)
    ours, theirs = run_both("LSTM", [x, prev_act, Const(weights), Const(bias), prev_state], n_outputs=4,
                            fused_activation_function="TANH", kernel_type="BASIC")
    assert len(theirs) == 4
    for j, (o, t) in enumerate(zip(ours, theirs)):
        assert_close(o, t, what=f"output {j}")
    model = one_op_model("LSTM", [(x.shape, np.float32), (prev_act.shape, np.float32), weights, bias,
                                  (prev_state.shape, np.float32)], n_outputs=4, fused_activation_function="TANH",
                         kernel_type="BASIC")
    for backend in ("numba", "reference"):
        it = tflite_jit.Interpreter(model_content=model, backend=backend)
        it.allocate_tensors()
        for d, v in zip(it.get_input_details(), (x, prev_act, prev_state)):
            it.set_tensor(d["index"], v)
        it.invoke()
        for j, (d, t) in enumerate(zip(it.get_output_details(), theirs)):
            assert_close(it.get_tensor(d["index"]), t, what=f"{backend} output {j}")


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(["NONE", "RELU", "RELU6", "TANH", "RELU_N1_TO_1"]), st.data())
def test_rnn(act, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    n_batch, n_input, units = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    specs = [Feed((n_batch, n_input)), weight(rng, units, n_input), weight(rng, units, units, scale=0.3),
             weight(rng, units, scale=0.2), State((n_batch, units))]
    check_invokes(sequence_model("RNN", specs, fused_activation_function=act), [(n_batch, n_input)], rng)


@settings(max_examples=25, deadline=None)
@given(st.booleans(), st.booleans(), st.sampled_from(["none", "aux", "aux_w"]),
       st.sampled_from(["NONE", "RELU", "TANH", "RELU6"]), st.data())
def test_bidirectional_rnn(time_major, merge, aux_mode, act, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    n_time, n_batch = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
    n_input, fw_units, bw_units = (data.draw(st.integers(1, 4)) for _ in range(3))
    # time-major aux inputs must have the input's size (see ops/recurrent.py)
    n_aux = n_input if time_major else data.draw(st.integers(1, 4))

    def seq(n):
        return (n_time, n_batch, n) if time_major else (n_batch, n_time, n)

    specs = [Feed(seq(n_input))]
    for units in (fw_units, bw_units):
        specs += [weight(rng, units, n_input), weight(rng, units, units, scale=0.3),
                  weight(rng, units, scale=0.2),
                  State((n_batch, units))]
    feeds = [seq(n_input)]
    if aux_mode == "none":
        specs += [None] * 3
    else:
        specs.append(Feed(seq(n_aux)))
        feeds.append(seq(n_aux))
        specs += ([weight(rng, fw_units, n_aux), weight(rng, bw_units, n_aux)] if aux_mode == "aux_w"
                  else [None, None])
    model = sequence_model("BIDIRECTIONAL_SEQUENCE_RNN", specs, fused_activation_function=act,
                           time_major=time_major, merge_outputs=merge)
    check_invokes(model, feeds, rng)


def test_state_conventions() -> None:
    assert ops.get("LSTM").parse({}).state_inputs == (18, 19)
    assert ops.get("LSTM").parse({"kernel_type": 1}).state_inputs == ()
    assert ops.get("RNN").parse({}).state_inputs == (4,)
    assert ops.get("BIDIRECTIONAL_SEQUENCE_RNN").parse({}).state_inputs == (4, 8)
    rng = np.random.default_rng(1)
    h = np.zeros((1, 3), np.float32)
    x = rng.standard_normal((1, 2)).astype(np.float32)
    (out,) = ops.get("RNN").reference([x, weight(rng, 3, 2), weight(rng, 3, 3), weight(rng, 3), h],
                                      ops.get("RNN").parse({"fused_activation_function": 4}))
    np.testing.assert_array_equal(h, out)


def test_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ops.OpError, match="2-D"):
        sequence_model("RNN", [Feed((1, 2, 3)), weight(rng, 4, 3), weight(rng, 4, 4), weight(rng, 4),
                               State((1, 4))])
    with pytest.raises(ops.OpError, match="recurrent_weights"):
        sequence_model("RNN", [Feed((2, 3)), weight(rng, 4, 3), weight(rng, 4, 3), weight(rng, 4),
                               State((2, 4))])
    with pytest.raises(ops.OpError, match="hidden_state"):
        sequence_model("RNN", [Feed((2, 3)), weight(rng, 4, 3), weight(rng, 4, 4), weight(rng, 4),
                               State((1, 4))])
    w, _ = lstm_weights(rng, 3, 4, 4, cifg=False, peephole=False, projection=False, proj_bias=False,
                        layer_norm=False)
    with pytest.raises(ops.OpError, match="24 inputs"):
        sequence_model("LSTM", [Feed((2, 3)), *w, State((2, 4))])
    with pytest.raises(ops.OpError, match="cell_state"):
        sequence_model("LSTM", [Feed((2, 3)), *w, State((2, 4)), State((2, 5))])
    with pytest.raises(ops.OpError, match="TANH"):
        sequence_model("LSTM", [Feed((1, 2)), Feed((1, 3)), weight(rng, 12, 5), weight(rng, 12),
                                Feed((1, 3))],
                       fused_activation_function="RELU", kernel_type="BASIC")
    with pytest.raises(ops.OpError, match="weights"):
        sequence_model("LSTM", [Feed((1, 2)), Feed((1, 3)), weight(rng, 12, 4), weight(rng, 12),
                                Feed((1, 3))],
                       fused_activation_function="TANH", kernel_type="BASIC")
    # bidirectional: time-major aux input of another size than the input (LiteRT misreads it)
    specs = [Feed((2, 1, 3))]
    for units in (2, 2):
        specs += [weight(rng, units, 3), weight(rng, units, units), weight(rng, units), State((1, units))]
    with pytest.raises(ops.OpError, match="aux_input"):
        sequence_model("BIDIRECTIONAL_SEQUENCE_RNN",
                       specs + [Feed((2, 1, 2)), weight(rng, 2, 2), weight(rng, 2, 2)],
                       time_major=True)
    with pytest.raises(ops.OpError, match="both present"):
        sequence_model("BIDIRECTIONAL_SEQUENCE_RNN", specs + [Feed((2, 1, 3)), weight(rng, 2, 3), None],
                       time_major=True)


def test_bad_model_is_a_value_error() -> None:
    """A model our shape rule rejects fails in allocate_tensors with a ValueError/RuntimeError."""
    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (2, 3), np.float32)
    ids = [x, g.const("w", weight(rng, 4, 3)), g.const("r", weight(rng, 4, 5)), g.const("b", weight(rng, 4)),
           g.tensor("h", (2, 4), np.float32, is_variable=True)]
    out = g.tensor("out", (2, 4), np.float32)
    g.op("RNN", ids, [out], fused_activation_function="TANH")
    g.output(out)
    it = tflite_jit.Interpreter(model_content=mb.build())
    with pytest.raises((ValueError, RuntimeError), match="RNN.*recurrent_weights"):
        it.allocate_tensors()
