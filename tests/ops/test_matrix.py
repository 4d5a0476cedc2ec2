"""MATRIX_DIAG, MATRIX_SET_DIAG and REVERSE_SEQUENCE against LiteRT's builtin kernels, through
tflite_jit.Interpreter (numba and reference backends) and the reference kernel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import Const, assert_close, litert_interpreter, one_op_model, raw_options
from tflite_jit import Interpreter, ops
from tflite_jit.format.builder import ModelBuilder

I32 = np.int32


def _model(op: str, specs: list, outs: list, **options) -> bytes:
    """One op; specs are graph inputs (arrays) or Const; outs are the declared (shape, dtype)s."""
    mb = ModelBuilder()
    g = mb.subgraph()
    ids = [g.const(f"c{i}", s.value) if isinstance(s, Const) else g.input(f"in{i}", s.shape, s.dtype)
           for i, s in enumerate(specs)]
    o = [g.tensor(f"out{j}", shape, dtype) for j, (shape, dtype) in enumerate(outs)]
    g.op(op, ids, o, **options)
    g.output(*o)
    return mb.build()


def _run(it, feeds: list) -> list:
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), feeds):
        it.set_tensor(d["index"], x)
    it.invoke()
    res = []
    for d in it.get_output_details():
        # LiteRT's get_tensor raises "Invalid tensor size" on an empty run-time sized result
        res.append(it.get_tensor(d["index"]) if np.prod(d["shape"]) else np.zeros(d["shape"], d["dtype"]))
    return res


def check_all(op: str, specs: list, n_outputs: int = 1, **options) -> list:
    """Reference kernel, and the interpreter on both backends, against LiteRT. Declared output
    shapes come from the reference (run-time sized outputs are resized by both runtimes)."""
    opdef = ops.get(op)
    arrays = [s.value if isinstance(s, Const) else s for s in specs]
    ours = opdef.reference(arrays, opdef.parse(raw_options(options)))
    model = _model(op, specs, [(a.shape, a.dtype) for a in ours], **options)
    feeds = [s for s in specs if not isinstance(s, Const)]
    theirs = _run(litert_interpreter(model), feeds)
    assert len(ours) == len(theirs) == n_outputs
    for a, b in zip(ours, theirs):
        assert_close(a, b, what=op)
    for backend in ("numba", "reference"):
        got = _run(Interpreter(model_content=model, backend=backend), feeds)
        for a, b in zip(got, theirs):
            assert_close(a, b, what=f"{op} ({backend})")
    return theirs


def _data(rng, shape, dtype, lo=-5, hi=6) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(lo, hi, shape).astype(dtype)


DIAG_TYPES = [np.float32, np.int8, np.uint8, np.int16, np.int32, np.int64]


def _shape(data, lo=1, hi=4, min_rank=1, max_rank=4) -> tuple[int, ...]:
    return tuple(data.draw(st.lists(st.integers(lo, hi), min_size=min_rank, max_size=max_rank)))


# ---- MATRIX_DIAG / MATRIX_SET_DIAG ---------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(st.sampled_from(DIAG_TYPES), st.data())
def test_matrix_diag(dtype, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    check_all("MATRIX_DIAG", [_data(rng, _shape(data, 1, 4, 1, 3), dtype)])


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(DIAG_TYPES), st.booleans(), st.data())
def test_matrix_set_diag(dtype, const_diag, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    shape = _shape(data, 1, 4, 2, 4)
    diag = _data(rng, shape[:-2] + (min(shape[-2:]),), dtype)
    check_all("MATRIX_SET_DIAG", [_data(rng, shape, dtype), Const(diag) if const_diag else diag])


def test_matrix_diag_errors() -> None:
    with pytest.raises(ops.OpError, match="rank >= 1"):
        one_op_model("MATRIX_DIAG", [((), np.float32)])
    for dt in (np.bool_, np.float16):  # LiteRT reads these as float32 words
        with pytest.raises(ops.OpError, match=np.dtype(dt).name):
            one_op_model("MATRIX_DIAG", [((2,), dt)])
    model = _model("MATRIX_DIAG", [np.zeros(2, np.bool_)], [((2, 2), np.bool_)])
    with pytest.raises(RuntimeError, match="MATRIX_DIAG.*bool"):
        Interpreter(model_content=model).allocate_tensors()


def test_matrix_set_diag_errors() -> None:
    with pytest.raises(ops.OpError, match="rank >= 2"):
        one_op_model("MATRIX_SET_DIAG", [((3,), np.float32), ((3,), np.float32)])
    # LiteRT reads batch * min(M, N) diagonal values without checking: too small = out of bounds
    with pytest.raises(ops.OpError, match=r"must be \[2\]"):
        one_op_model("MATRIX_SET_DIAG", [((3, 2), np.float32), ((1,), np.float32)])
    with pytest.raises(ops.OpError, match=r"must be \[4, 2\]"):
        one_op_model("MATRIX_SET_DIAG", [((4, 3, 2), np.float32), ((2,), np.float32)])
    with pytest.raises(ops.OpError, match="must match the input's type"):
        one_op_model("MATRIX_SET_DIAG", [((3, 2), np.float32), ((2,), np.int32)])
    model = _model("MATRIX_SET_DIAG", [np.zeros((3, 2), np.float32), np.zeros(1, np.float32)],
                   [((3, 2), np.float32)])
    with pytest.raises(RuntimeError, match="MATRIX_SET_DIAG.*diagonal"):
        Interpreter(model_content=model).allocate_tensors()


# ---- REVERSE_SEQUENCE ----------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.sampled_from([np.float32, np.uint8, np.int16, np.int32, np.int64]),
       st.sampled_from([np.int32, np.int64]), st.booleans(), st.data())
def test_reverse_sequence(dtype, ltype, const_lengths, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    shape = _shape(data, 1, 4, 2, 4)
    seq_dim, batch_dim = data.draw(st.permutations(range(len(shape))))[:2]
    # lengths from -1 (LiteRT: the row is left as is) to the full sequence
    lengths = rng.integers(-1, shape[seq_dim] + 1, shape[batch_dim]).astype(ltype)
    lengths[0] = min(int(lengths[0]), shape[seq_dim])
    x = _data(rng, shape, dtype, 0, 100)
    check_all("REVERSE_SEQUENCE", [x, Const(lengths) if const_lengths else lengths],
              seq_dim=int(seq_dim), batch_dim=int(batch_dim))


def test_reverse_sequence_errors() -> None:
    x = ((2, 3, 4), np.float32)
    with pytest.raises(ops.OpError, match="must differ"):
        one_op_model("REVERSE_SEQUENCE", [x, np.array([1, 1], I32)], seq_dim=0, batch_dim=0)
    with pytest.raises(ops.OpError, match="seq_dim = -1"):
        one_op_model("REVERSE_SEQUENCE", [x, np.array([1, 1], I32)], seq_dim=-1, batch_dim=0)
    with pytest.raises(ops.OpError, match="batch_dim = 3"):
        one_op_model("REVERSE_SEQUENCE", [x, np.array([1, 1], I32)], seq_dim=1, batch_dim=3)
    with pytest.raises(ops.OpError, match=r"must be \[2\]"):
        one_op_model("REVERSE_SEQUENCE", [x, np.array([1, 1, 1], I32)], seq_dim=1, batch_dim=0)
    with pytest.raises(ops.OpError, match="int8"):
        one_op_model("REVERSE_SEQUENCE", [((2, 3), np.int8), np.array([1, 1], I32)], seq_dim=1, batch_dim=0)
    with pytest.raises(ops.OpError, match="seq_lengths .* has type int16"):
        one_op_model("REVERSE_SEQUENCE", [x, np.array([1, 1], np.int16)], seq_dim=1, batch_dim=0)
    # LiteRT checks only seq_lengths[0] and writes garbage for a later, too long one
    with pytest.raises(ops.OpError, match=r"seq_lengths\[1\] = 4 exceeds the size 3"):
        one_op_model("REVERSE_SEQUENCE", [x, np.array([1, 4], I32)], seq_dim=1, batch_dim=0)
    model = _model("REVERSE_SEQUENCE", [np.zeros((2, 3, 4), np.float32), np.zeros(2, I32)],
                   [((2, 3, 4), np.float32)], seq_dim=1, batch_dim=0)
    feeds = [np.zeros((2, 3, 4), np.float32), np.array([1, 4], I32)]
    for backend in ("numba", "reference"):
        with pytest.raises(RuntimeError, match="REVERSE_SEQUENCE.*exceeds"):
            _run(Interpreter(model_content=model, backend=backend), feeds)
