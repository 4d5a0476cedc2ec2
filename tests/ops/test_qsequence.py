"""The fully-integer UNIDIRECTIONAL_SEQUENCE_LSTM (ops/qsequence.py) bit-exact against LiteRT's
builtin kernel (EvalInteger8x8_16).

Models: tf_lstm_int8*.tflite (a Keras LSTM converted full-integer by TensorFlow, make_tf_models.py)
and variants of it edited in the IR (CIFG, peepholes, projection, clips, time-major: forms the
Keras converter does not emit but LiteRT's kernel runs), and the benchmark suite's text_lstm_int8
(Embedding -> LSTM -> Dense, calibrated on tiny activations: its cell state scale 2**-19 sends
LiteRT's kernel down the path where its tanh returns without writing, see the module docstring).
Every test invokes several times with the state carried, resets, and requires equal bytes.
"""

from __future__ import annotations

import copy
import pathlib

import numpy as np
import pytest

import tflite_jit
from tests.oracle import litert_interpreter
from tflite_jit.format.reader import load_bytes
from tflite_jit.format.writer import write_model
from tflite_jit.ir.model import TENSOR_TYPE_CODES, Quantization, Tensor
from tflite_jit.ops import qsequence, qsigmoid16

DATA = pathlib.Path(__file__).parent.parent / "data"
LSTM = (DATA / "tf_lstm_int8.tflite").read_bytes()  # [1, 10, 6] -> [1, 10, 8], cell scale 2**-14
LSTM_B2 = (DATA / "tf_lstm_int8_batch2.tflite").read_bytes()  # [2, 7, 5] -> [2, 7, 12], 2**-13
SUITE = (DATA / "text_lstm_int8.tflite").read_bytes()


def _lstm_op(model):
    (op,) = [op for op in model.subgraphs[0].ops if op.name == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    return op


def _add_const(g, name: str, data: np.ndarray, scale: float) -> int:
    g.tensors.append(Tensor(name=name, type=TENSOR_TYPE_CODES[{np.int8: "INT8", np.int16: "INT16",
                                                               np.int32: "INT32"}[data.dtype.type]],
                            shape=data.shape, data=data,
                            quantization=Quantization(np.array([scale], np.float32), np.array([0], np.int64))))
    return len(g.tensors) - 1


def variant(content: bytes, *, cifg: bool = False, peephole: bool = False, projection: str | None = None,
            cell_clip: float | None = None, proj_clip: float = 0.0, time_major: bool = False,
            cell_log2: int | None = None, layer_norm: bool = False, flat_forget: bool = False,
            seed: int = 0) -> bytes:
    """The converted LSTM with LiteRT-supported forms the Keras converter does not produce:
    CIFG (inputs 1, 5, 12 dropped), int16 peephole weights, an int8 [n_cell, n_cell] projection
    ('bias' / 'nobias'), other clips, time-major layout, a cell state scale 2**cell_log2, int16
    layer-norm coefficients (with quantized intermediates 0-3: the gates' scales), forget-gate
    weights whose rows are equal but one element (its sums vary by a unit or so across cells:
    variance below 1, LiteRT's variance guard). Random weights from `seed`."""
    m = copy.deepcopy(load_bytes(content))
    g = m.subgraphs[0]
    op = _lstm_op(m)
    ins = list(op.inputs)
    n_cell = g.tensors[ins[2]].shape[0]
    rng = np.random.default_rng(seed)
    if cifg:
        ins[1] = ins[5] = ins[12] = -1
    if peephole:
        for k in (10, 11) if cifg else (9, 10, 11):
            ins[k] = _add_const(g, f"peephole{k}", rng.integers(-3000, 3000, n_cell).astype(np.int16), 1e-4)
    if projection:
        ins[16] = _add_const(g, "projection", rng.integers(-127, 128, (n_cell, n_cell)).astype(np.int8),
                             0.3 / 127)
        if projection == "bias":
            ins[17] = _add_const(g, "projection_bias", rng.integers(-3000, 3000, n_cell).astype(np.int32), 1e-5)
    if flat_forget:
        for k in (2, 6):
            t = g.tensors[ins[k]]
            w = np.repeat(t.data[:1], t.shape[0], axis=0)
            w[1, 0] = np.int8(max(-127, int(w[1, 0]) - 2))
            t.data = w
    if layer_norm:
        ins += [-1] * (24 - len(ins))
        for k in (21, 22, 23) if cifg else (20, 21, 22, 23):
            ins[k] = _add_const(g, f"layer_norm{k}", rng.integers(600, 1400, n_cell).astype(np.int16), 1e-3)
        for k, t in enumerate(op.intermediates[:4]):
            g.tensors[t].type = TENSOR_TYPE_CODES["INT16"]
            g.tensors[t].quantization = Quantization(np.array([(3.1e-4, 2.7e-4, 5.3e-4, 3.9e-4)[k]], np.float32),
                                                     np.array([0], np.int64))
    op.inputs = tuple(ins)
    op.options = dict(op.options, proj_clip=proj_clip, time_major=time_major)
    if cell_clip is not None:
        op.options["cell_clip"] = cell_clip
    if cell_log2 is not None:
        g.tensors[ins[19]].quantization = Quantization(np.array([2.0 ** cell_log2], np.float32),
                                                       np.array([0], np.int64))
    if time_major:
        for t in (ins[0], op.outputs[0]):
            b, s, f = g.tensors[t].shape
            g.tensors[t].shape = (s, b, f)
            g.tensors[t].shape_signature = None
    m.signatures = []
    return write_model(m)


def cut_lstm(content: bytes) -> bytes:
    """The model's LSTM node alone: its int8 input and output become the graph's."""
    m = copy.deepcopy(load_bytes(content))
    g = m.subgraphs[0]
    op = _lstm_op(m)
    g.ops, g.inputs, g.outputs = [op], (op.inputs[0],), (op.outputs[0],)
    m.signatures = []
    return write_model(m)


def check_bit_exact(content: bytes, feeds, backend: str = "reference") -> None:
    """Invoke LiteRT and tflite_jit on each feed in turn (state carried), reset both variables
    before the last; every output must have the same bytes. On numba_cpu the LSTM must have
    compiled (backends/numba_cpu/generators/qlstm.py), not fallen back."""
    theirs = litert_interpreter(content)
    theirs.allocate_tensors()
    ours = tflite_jit.Interpreter(model_content=content, backend=backend)
    ours.allocate_tensors()
    if backend != "reference":
        placed = {o["name"]: (o["backend"], o["reason"]) for o in ours.get_execution_plan()["ops"]}
        assert placed["UNIDIRECTIONAL_SEQUENCE_LSTM"][0] == backend, placed
    for k, x in enumerate(feeds):
        if k == len(feeds) - 1:
            theirs.reset_all_variables()
            ours.reset_all_variables()
        for it in (theirs, ours):
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
        a = ours.get_tensor(ours.get_output_details()[0]["index"])
        b = theirs.get_tensor(theirs.get_output_details()[0]["index"])
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b), (f"invoke {k}: {int((a != b).sum())} of {a.size} elements differ, "
                                      f"first at {np.argwhere(a != b)[0].tolist()}")


def int8_feeds(content: bytes, seed: int, n: int = 4, amplitude: float = 60.0) -> list[np.ndarray]:
    shape = tuple(load_bytes(content).subgraphs[0].tensors[_lstm_op(load_bytes(content)).inputs[0]].shape)
    rng = np.random.default_rng(seed)
    return [np.clip(np.round(rng.standard_normal(shape) * amplitude), -128, 127).astype(np.int8)
            for _ in range(n)]


BACKENDS = ["reference", "numba_cpu"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("content", [LSTM, LSTM_B2], ids=["b1", "b2"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_converted_lstm_bit_exact(content, seed, backend):
    check_bit_exact(content, int8_feeds(content, seed, amplitude=[20.0, 60.0, 200.0][seed]), backend)


@pytest.mark.parametrize("form", [
    dict(cifg=True),
    dict(peephole=True),
    dict(cifg=True, peephole=True),
    dict(projection="bias"),
    dict(projection="nobias", proj_clip=0.2),
    dict(cell_clip=0.3),
    dict(time_major=True),
    dict(cifg=True, peephole=True, projection="bias", cell_clip=0.5, proj_clip=0.1, time_major=True),
    dict(layer_norm=True),
    dict(layer_norm=True, cifg=True, peephole=True),
    dict(layer_norm=True, projection="bias", time_major=True),
    dict(layer_norm=True, flat_forget=True),
], ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
@pytest.mark.parametrize("base", [LSTM, LSTM_B2], ids=["b1", "b2"])
def test_lstm_forms_bit_exact(base, form):
    content = variant(base, **form, seed=3)
    check_bit_exact(content, int8_feeds(content, 5))
    if base is LSTM_B2:  # the compiled kernel on every form (one compile each: batch 2 only)
        check_bit_exact(content, int8_feeds(content, 5), "numba_cpu")


@pytest.mark.parametrize("cell_log2", [-17, -16, -15, -12, -11, -10, -9])
def test_cell_scales_bit_exact(cell_log2):
    """The cell state's tanh reads it with 15 + log2(scale) integer bits: gemmlowp's tanh for 0 to
    6 bits (6 and 5 clamp exp below -32), LiteRT's skipped tanh (the input gate reused) below 0."""
    content = variant(LSTM_B2, cell_log2=cell_log2, seed=4)
    check_bit_exact(content, int8_feeds(content, 6, amplitude=80.0))
    if cell_log2 in (-16, -12, -9):
        check_bit_exact(content, int8_feeds(content, 6, amplitude=80.0), "numba_cpu")


@pytest.mark.parametrize("backend", BACKENDS)
def test_cell_product_wraps_to_int16(backend):
    """Cell scale 2**-17: i * g >> 13 passes int16 and LiteRT stores it wrapped (a C cast), which
    the peepholes then read (without them the skipped tanh hides the cell state)."""
    content = variant(LSTM_B2, peephole=True, cell_log2=-17, seed=4)
    check_bit_exact(content, int8_feeds(content, 6, amplitude=80.0), backend)


def test_cifg_with_skipped_tanh_refused():
    """With CIFG the buffer LiteRT's skipped tanh leaves is never written: its hidden state would be
    whatever memory held before, so the model is refused with the reason."""
    content = variant(LSTM, cifg=True, cell_log2=-16)
    with pytest.raises(RuntimeError, match="uninitialised buffer"):
        tflite_jit.Interpreter(model_content=content, backend="reference").allocate_tensors()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_suite_text_lstm_int8(seed, backend):
    """The suite model end to end (GATHER -> LSTM -> STRIDED_SLICE -> FC -> SOFTMAX -> DEQUANTIZE)
    and its LSTM alone on int8 inputs of several sizes."""
    rng = np.random.default_rng(seed)
    vocab = load_bytes(SUITE).subgraphs[0].tensors[load_bytes(SUITE).subgraphs[0].ops[0].inputs[0]].shape[0]
    check_bit_exact(SUITE, [rng.integers(0, vocab, (1, 32)).astype(np.int32) for _ in range(3)], backend)
    check_bit_exact(cut_lstm(SUITE), int8_feeds(cut_lstm(SUITE), seed, n=3, amplitude=[1.0, 10.0, 100.0][seed]),
                    backend)


def test_suite_lstm_takes_litert_tanh_skip():
    """Cell scale 2**-19: 15 + log2(scale) = -4 integer bits, which LiteRT's ApplyTanh ignores, so
    the hidden state is output gate x input gate (about 1/4, far above the output's range): every
    output saturates at 127 whatever the input, in LiteRT and here."""
    content = cut_lstm(SUITE)
    ours = tflite_jit.Interpreter(model_content=content, backend="reference")
    ours.allocate_tensors()
    x = np.zeros((1, 32, 32), np.int8)
    ours.set_tensor(ours.get_input_details()[0]["index"], x)
    ours.invoke()
    assert np.all(ours.get_tensor(ours.get_output_details()[0]["index"]) == 127)


def test_int8_state_starts_and_resets_at_zero_point():
    """LiteRT's ResetVariableTensor fills an int8 variable with its zero point (a real zero),
    at allocation and on reset_all_variables; the int16 cell state with 0."""
    ours = tflite_jit.Interpreter(model_content=LSTM, backend="reference")
    ours.allocate_tensors()
    g = load_bytes(LSTM).subgraphs[0]
    op = _lstm_op(load_bytes(LSTM))
    h, c = op.inputs[18], op.inputs[19]
    zp = int(g.tensors[h].quantization.zero_points[0])
    assert zp != 0
    assert np.all(ours.get_tensor(h) == zp) and np.all(ours.get_tensor(c) == 0)
    ours.set_tensor(ours.get_input_details()[0]["index"], int8_feeds(LSTM, 0, n=1)[0])
    ours.invoke()
    ours.reset_all_variables()
    assert np.all(ours.get_tensor(h) == zp) and np.all(ours.get_tensor(c) == 0)


def test_tanh_tables_agree_with_int16_tanh():
    """gemmlowp's tanh of Q3.12 is what the int16 TANH op's power-of-two path computes (checked
    against LiteRT in test_qsigmoid16), and the logistic likewise."""
    assert np.array_equal(qsigmoid16.gemmlowp_tanh16_table(3), qsigmoid16.int16_table("TANH", 2.0 ** -12))
    assert np.array_equal(qsigmoid16.gemmlowp_logistic16_table(), qsigmoid16.int16_table("LOGISTIC", 2.0 ** -12))
    with pytest.raises(ValueError, match="0 to 6 integer bits"):
        qsigmoid16.gemmlowp_tanh16_table(7)


def test_checked_log2():
    assert qsequence.checked_log2(2.0 ** -19) == -19
    assert qsequence.checked_log2(float(np.float32(2.0 ** -11))) == -11
    assert qsequence.checked_log2(1.5e-4) is None


def _edited(content: bytes, edit) -> bytes:
    m = copy.deepcopy(load_bytes(content))
    edit(m.subgraphs[0], _lstm_op(m))
    m.signatures = []
    return write_model(m)


def _both_refuse(content: bytes, match: str) -> None:
    with pytest.raises(RuntimeError):
        litert_interpreter(content).allocate_tensors()
    with pytest.raises(RuntimeError, match=match):
        tflite_jit.Interpreter(model_content=content, backend="reference").allocate_tensors()


def test_cell_state_scale_must_be_power_of_two():
    """LiteRT's Prepare logs this failed check but ignores its status and runs with multipliers it
    never set; a drop-in refuses the model with the reason instead."""
    def edit(g, op):
        g.tensors[op.inputs[19]].quantization = Quantization(np.array([1.5e-4], np.float32), np.array([0]))
    with pytest.raises(RuntimeError, match="cell_state .*not a power of two"):
        tflite_jit.Interpreter(model_content=_edited(LSTM, edit), backend="reference").allocate_tensors()


def test_intermediates_required():
    def edit(g, op):
        op.intermediates = op.intermediates[:4]
    _both_refuse(_edited(LSTM, edit), "5 intermediate tensors")


def test_wrong_weight_type_names_input():
    def edit(g, op):
        t = g.tensors[op.inputs[13]]
        t.type, t.data = TENSOR_TYPE_CODES["INT8"], t.data.astype(np.int8)
    with pytest.raises(RuntimeError, match="forget_gate_bias .*needs int32"):
        tflite_jit.Interpreter(model_content=_edited(LSTM, edit), backend="reference").allocate_tensors()


def test_layer_norm_needs_quantized_gate_intermediates():
    """With layer normalisation the gate scales come from intermediates 0-3; LiteRT logs an
    unquantized one and runs with unset multipliers, we refuse with the reason."""
    def edit(g, op):
        ins = list(op.inputs) + [-1] * (24 - len(op.inputs))
        n_cell = g.tensors[ins[2]].shape[0]
        for k in (20, 21, 22, 23):
            ins[k] = _add_const(g, f"ln{k}", np.full(n_cell, 1000, np.int16), 1e-3)
        op.inputs = tuple(ins)
    with pytest.raises(RuntimeError, match="input gate .*intermediate 0.* must be quantized"):
        tflite_jit.Interpreter(model_content=_edited(LSTM, edit), backend="reference").allocate_tensors()
