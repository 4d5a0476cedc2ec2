"""Sequence ops (LSTM, bidirectional LSTM, RNN, SVDF) against LiteRT's builtin kernels.

Every model keeps its recurrent state in variable tensors, as converted models do. Each test runs
the model end to end through `tflite_jit.Interpreter(backend="reference")` and LiteRT side by side:
two invokes with different inputs (state carried across them), then `reset_all_variables` on both
and a third invoke, comparing every output each time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import State, assert_close, litert_interpreter, one_op_model
from tflite_jit import ops
from tflite_jit.format.builder import ModelBuilder


class Feed:
    """A graph input of this shape, fed with fresh values on every invoke."""

    def __init__(self, shape):
        self.shape = tuple(shape)


def sequence_model(op: str, specs: list, **options) -> bytes:
    """specs: None (omitted), ndarray (constant), State or Feed; every output of the op."""
    inputs = [(s.shape, np.float32) if isinstance(s, Feed) else s for s in specs]
    return one_op_model(op, inputs, n_outputs=None, **options)


def check_invokes(model: bytes, feed_shapes: list[tuple[int, ...]], rng, scale: float = 1.0,
                  backend: str = "reference") -> Any:
    """Invoke twice (state carried), reset, invoke again; outputs must match every time."""
    theirs = litert_interpreter(model)
    theirs.allocate_tensors()
    ours = tflite_jit.Interpreter(model_content=model, backend=backend)
    ours.allocate_tensors()
    t_in, o_in = theirs.get_input_details(), ours.get_input_details()
    assert [d["shape"].tolist() for d in t_in] == [d["shape"].tolist() for d in o_in]
    for k in range(3):
        if k == 2:
            theirs.reset_all_variables()
            ours.reset_all_variables()
        for dt, do, shape in zip(t_in, o_in, feed_shapes):
            x = (rng.standard_normal(shape) * scale).astype(np.float32)
            theirs.set_tensor(dt["index"], x)
            ours.set_tensor(do["index"], x)
        theirs.invoke()
        ours.invoke()
        t_out, o_out = theirs.get_output_details(), ours.get_output_details()
        assert len(t_out) == len(o_out)
        for j, (dt, do) in enumerate(zip(t_out, o_out)):
            assert_close(ours.get_tensor(do["index"]), theirs.get_tensor(dt["index"]),
                         what=f"invoke {k} output {j}")
    return ours


def weight(rng, *shape, scale=0.5) -> np.ndarray:
    """A random float32 weight tensor of this shape."""
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def lstm_weights(rng, n_input, n_cell, n_output, *, cifg, peephole, projection, proj_bias,
                 layer_norm, diagonal=False):
    """The 17 weight inputs (1-17) and, with layer_norm, the 4 coefficients (20-23).
    diagonal: recurrent weights as [n_cell] vectors (diagonal_recurrent_tensors)."""
    rec = (n_cell,) if diagonal else (n_cell, n_output)
    w = [None if cifg else weight(rng, n_cell, n_input)] + [weight(rng, n_cell, n_input) for _ in range(3)]
    w += [None if cifg else weight(rng, *rec)] + [weight(rng, *rec) for _ in range(3)]
    if peephole:
        w += [None if cifg else weight(rng, n_cell)] + [weight(rng, n_cell) for _ in range(2)]
    else:
        w += [None] * 3
    w += [None if cifg else weight(rng, n_cell, scale=0.2)]
    w += [weight(rng, n_cell, scale=0.2) for _ in range(3)]
    if projection:
        w += [weight(rng, n_output, n_cell), weight(rng, n_output, scale=0.2) if proj_bias else None]
    else:
        w += [None, None]
    ln = None
    if layer_norm:
        ln = [None if cifg else weight(rng, n_cell)] + [weight(rng, n_cell) for _ in range(3)]
    return w, ln


@settings(max_examples=15, deadline=None)
@given(st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans(),
       st.sampled_from(["TANH", "RELU", "RELU6", "NONE"]), st.sampled_from([0.0, 0.7]),
       st.sampled_from([0.0, 0.4]), st.data())
def test_unidirectional_lstm(time_major, cifg, peephole, projection, layer_norm, act, cell_clip,
                             proj_clip, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    n_batch, n_time = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    n_input, n_cell = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    n_output = data.draw(st.integers(1, 4)) if projection else n_cell
    diagonal = not projection and data.draw(st.booleans())
    w, ln = lstm_weights(rng, n_input, n_cell, n_output, cifg=cifg, peephole=peephole,
                         projection=projection, proj_bias=data.draw(st.booleans()), layer_norm=layer_norm,
                         diagonal=diagonal)
    x_shape = (n_time, n_batch, n_input) if time_major else (n_batch, n_time, n_input)
    specs = [Feed(x_shape), *w, State((n_batch, n_output)), State((n_batch, n_cell))]
    specs += ln if ln is not None else [None] * 4
    model = sequence_model("UNIDIRECTIONAL_SEQUENCE_LSTM", specs, fused_activation_function=act,
                           cell_clip=cell_clip, proj_clip=proj_clip if projection else 0.0,
                           time_major=time_major, diagonal_recurrent_tensors=diagonal)
    check_invokes(model, [x_shape], rng)


def test_keras_converter_lstm_configuration() -> None:
    """What the TF converter emits for a Keras LSTM: no peephole/projection/layer norm, TANH,
    batch-major, variable states; a longer sequence so the carried state matters."""
    rng = np.random.default_rng(7)
    n_batch, n_time, n_input, n_cell = 2, 12, 16, 8
    w, _ = lstm_weights(rng, n_input, n_cell, n_cell, cifg=False, peephole=False, projection=False,
                        proj_bias=False, layer_norm=False)
    x_shape = (n_batch, n_time, n_input)
    specs = [Feed(x_shape), *w, State((n_batch, n_cell)), State((n_batch, n_cell))] + [None] * 4
    model = sequence_model("UNIDIRECTIONAL_SEQUENCE_LSTM", specs, fused_activation_function="TANH",
                           cell_clip=10.0, proj_clip=0.0, time_major=False)
    check_invokes(model, [x_shape], rng)


@pytest.mark.parametrize("time_major,cifg,act,cell_clip,n_batch", [
    (False, False, "TANH", 10.0, 1), (False, False, "TANH", 0.0, 3), (True, True, "TANH", 0.5, 2),
    (False, True, "RELU6", 0.0, 2), (True, False, "RELU", 3.0, 1), (False, False, "RELU_N1_TO_1", 0.0, 2)])
def test_numba_lstm_kernel(time_major, cifg, act, cell_clip, n_batch) -> None:
    """The compiled time loop (backends/numba_cpu/generators/lstm.py) against LiteRT, state
    carried across invokes and reset; the op must really run compiled."""
    rng = np.random.default_rng(5)
    n_time, n_input, n_cell = 7, 5, 6
    w, _ = lstm_weights(rng, n_input, n_cell, n_cell, cifg=cifg, peephole=False, projection=False,
                        proj_bias=False, layer_norm=False)
    x_shape = (n_time, n_batch, n_input) if time_major else (n_batch, n_time, n_input)
    specs = [Feed(x_shape), *w, State((n_batch, n_cell)), State((n_batch, n_cell))] + [None] * 4
    model = sequence_model("UNIDIRECTIONAL_SEQUENCE_LSTM", specs, fused_activation_function=act,
                           cell_clip=cell_clip, proj_clip=0.0, time_major=time_major)
    ours = check_invokes(model, [x_shape], rng, backend="numba")
    assert [op["backend"] for op in ours.get_execution_plan()["ops"]] == ["numba_cpu"]


def test_numba_lstm_kernel_unpacked_weights(monkeypatch) -> None:
    """The per-cell dot-product loop, which run-time (non-constant) weights take, forced here for
    constant ones: it must still agree with LiteRT and run compiled."""
    from tflite_jit.backends.numba_cpu.generators import lstm

    monkeypatch.setattr(lstm, "_packed_float", lambda *a: None)
    rng = np.random.default_rng(6)
    w, _ = lstm_weights(rng, 5, 6, 6, cifg=False, peephole=False, projection=False,
                        proj_bias=False, layer_norm=False)
    specs = [Feed((2, 7, 5)), *w, State((2, 6)), State((2, 6))] + [None] * 4
    model = sequence_model("UNIDIRECTIONAL_SEQUENCE_LSTM", specs, fused_activation_function="TANH",
                           cell_clip=10.0, proj_clip=0.0, time_major=False)
    ours = check_invokes(model, [(2, 7, 5)], rng, backend="numba")
    assert [op["backend"] for op in ours.get_execution_plan()["ops"]] == ["numba_cpu"]


def _run_both_backends(model: bytes, x_shape: tuple[int, ...], rng, backend: str) -> None:
    theirs = litert_interpreter(model)
    theirs.allocate_tensors()
    ours = tflite_jit.Interpreter(model_content=model, backend=backend)
    ours.allocate_tensors()
    for k in range(3):
        if k == 2:
            theirs.reset_all_variables()
            ours.reset_all_variables()
        x = rng.standard_normal(x_shape).astype(np.float32)
        for it in (theirs, ours):
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
        assert_close(ours.get_tensor(ours.get_output_details()[0]["index"]),
                     theirs.get_tensor(theirs.get_output_details()[0]["index"]), what=f"invoke {k}")


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_keras_text_classifier_shape(backend: str) -> None:
    """LSTM (converter configuration) -> last step (STRIDED_SLICE) -> FULLY_CONNECTED -> SOFTMAX,
    as a converted Keras classifier runs it, on each backend and fusion default."""
    rng = np.random.default_rng(11)
    n_batch, n_time, n_input, n_cell, n_class = 1, 10, 12, 16, 3
    w, _ = lstm_weights(rng, n_input, n_cell, n_cell, cifg=False, peephole=False, projection=False,
                        proj_bias=False, layer_norm=False)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (n_batch, n_time, n_input), np.float32)
    ids = [x] + [-1 if v is None else g.const(f"w{i}", v) for i, v in enumerate(w)]
    ids += [g.tensor("h", (n_batch, n_cell), np.float32, is_variable=True),
            g.tensor("c", (n_batch, n_cell), np.float32, is_variable=True), -1, -1, -1, -1]
    (seq,) = g.apply("UNIDIRECTIONAL_SEQUENCE_LSTM", ids, fused_activation_function="TANH",
                     cell_clip=10.0, time_major=False)
    begin, end = g.const("begin", np.array([0, -1, 0], np.int32)), g.const("end", np.array([0, 0, 0], np.int32))
    strides = g.const("strides", np.array([1, 1, 1], np.int32))
    (last,) = g.apply("STRIDED_SLICE", [seq, begin, end, strides], begin_mask=5, end_mask=5,
                      shrink_axis_mask=2)
    fc_w, fc_b = g.const("fc_w", weight(rng, n_class, n_cell)), g.const("fc_b", weight(rng, n_class))
    (logits,) = g.apply("FULLY_CONNECTED", [last, fc_w, fc_b])
    (probs,) = g.apply("SOFTMAX", [logits], beta=1.0)
    g.output(probs)
    _run_both_backends(mb.build(), (n_batch, n_time, n_input), rng, backend)


@settings(max_examples=15, deadline=None)
@given(st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.sampled_from(["none", "aux", "aux_w"]),
       st.sampled_from(["TANH", "RELU", "NONE"]), st.data())
def test_bidirectional_lstm(time_major, merge, cifg, peephole, aux_mode, act, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    # LiteRT 2.3 writes a merged batch-major output wrongly for batch > 1: rows of batch
    # element 1+ hold garbage (sometimes NaN) or run-to-run different values, while a fresh
    # interpreter sometimes gets them right (probed: those equal ours). Batch 1 is exact.
    max_batch = 1 if merge and not time_major else 3
    n_batch, n_time = data.draw(st.integers(1, max_batch)), data.draw(st.integers(1, 4))
    n_input, n_aux = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    n_fw = n_bw = data.draw(st.integers(1, 4))  # LiteRT requires one cell size
    projection = data.draw(st.booleans())
    n_fw_out = n_bw_out = data.draw(st.integers(1, 3)) if projection else n_fw  # equal in LiteRT
    if aux_mode == "aux":  # no aux weights: the backward direction reads the aux input
        n_aux = n_input
    fw, _ = lstm_weights(rng, n_input, n_fw, n_fw_out, cifg=cifg, peephole=peephole,
                         projection=projection, proj_bias=True, layer_norm=False)
    bw, _ = lstm_weights(rng, n_input, n_bw, n_bw_out, cifg=cifg, peephole=peephole,
                         projection=projection, proj_bias=False, layer_norm=False)

    def seq(n):
        return (n_time, n_batch, n) if time_major else (n_batch, n_time, n)

    specs = [Feed(seq(n_input)), *fw, *bw, State((n_batch, n_fw_out)), State((n_batch, n_fw)),
             State((n_batch, n_bw_out)), State((n_batch, n_bw))]
    feeds = [seq(n_input)]
    if aux_mode == "none":
        specs += [None] * 9
    else:
        specs.append(Feed(seq(n_aux)))
        feeds.append(seq(n_aux))
        if aux_mode == "aux_w":
            for n_cell in (n_fw, n_bw):
                specs += [None if cifg else weight(rng, n_cell, n_aux)]
                specs += [weight(rng, n_cell, n_aux) for _ in range(3)]
        else:
            specs += [None] * 8
    model = sequence_model("BIDIRECTIONAL_SEQUENCE_LSTM", specs, fused_activation_function=act,
                           cell_clip=0.0, proj_clip=0.0, merge_outputs=merge, time_major=time_major)
    check_invokes(model, feeds, rng)


@settings(max_examples=15, deadline=None)
@given(st.booleans(), st.sampled_from(["NONE", "RELU", "RELU6", "TANH", "RELU_N1_TO_1"]), st.data())
def test_unidirectional_rnn(time_major, act, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    n_batch, n_time = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 5))
    n_input, units = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    x_shape = (n_time, n_batch, n_input) if time_major else (n_batch, n_time, n_input)
    specs = [Feed(x_shape), weight(rng, units, n_input), weight(rng, units, units, scale=0.3),
             weight(rng, units, scale=0.2), State((n_batch, units))]
    model = sequence_model("UNIDIRECTIONAL_SEQUENCE_RNN", specs, time_major=time_major,
                           fused_activation_function=act)
    check_invokes(model, [x_shape], rng)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 3), st.booleans(), st.sampled_from(["NONE", "RELU", "RELU6", "TANH"]), st.data())
def test_svdf(rank, bias, act, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    n_batch, n_input = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 5))
    units, memory = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    n_filters = units * rank
    specs = [Feed((n_batch, n_input)), weight(rng, n_filters, n_input), weight(rng, n_filters, memory),
             weight(rng, units) if bias else None, State((n_batch, memory * n_filters))]
    model = sequence_model("SVDF", specs, rank=rank, fused_activation_function=act)
    check_invokes(model, [(n_batch, n_input)], rng)


def test_empty_options_use_schema_defaults() -> None:
    assert ops.get("BIDIRECTIONAL_SEQUENCE_LSTM").parse({}).time_major is True
    a = ops.get("UNIDIRECTIONAL_SEQUENCE_LSTM").parse({})
    assert (a.time_major, a.activation, a.cell_clip, a.state_inputs) == (False, "NONE", 0.0, (18, 19))
    assert ops.get("UNIDIRECTIONAL_SEQUENCE_RNN").parse({}).state_inputs == (4,)
    assert ops.get("SVDF").parse({}).state_inputs == (4,)


def test_reference_writes_state_in_place() -> None:
    rng = np.random.default_rng(1)
    h = np.zeros((1, 3), np.float32)
    x = rng.standard_normal((1, 2, 2)).astype(np.float32)
    inputs = [x, weight(rng, 3, 2), weight(rng, 3, 3), weight(rng, 3), h]
    a = ops.get("UNIDIRECTIONAL_SEQUENCE_RNN").parse({"fused_activation_function": 4})
    (out,) = ops.get("UNIDIRECTIONAL_SEQUENCE_RNN").reference(inputs, a)
    np.testing.assert_array_equal(h, out[:, -1])


def test_svdf_rank_must_divide_filters() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ops.OpError, match="rank"):
        sequence_model("SVDF", [Feed((1, 2)), weight(rng, 3, 2), weight(rng, 3, 4), None, State((1, 12))],
                       rank=2)
