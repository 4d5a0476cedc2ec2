"""MATRIX_DIAG, MATRIX_SET_DIAG and REVERSE_SEQUENCE against LiteRT's builtin kernels, through
tflite_jit.Interpreter (numba and reference backends) and the reference kernel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import (
    Const,
    check_all_backends,
    declared_op_model,
    one_op_model,
    rand_data,
    run_interpreter,
)
from tests.shapes import draw_shape
from tflite_jit import Interpreter, ops

I32 = np.int32


DIAG_TYPES = [np.float32, np.int8, np.uint8, np.int16, np.int32, np.int64]


# ---- MATRIX_DIAG / MATRIX_SET_DIAG ---------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(st.sampled_from(DIAG_TYPES), st.data())
def test_matrix_diag(dtype, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    check_all_backends("MATRIX_DIAG", [rand_data(rng, draw_shape(data.draw, 1, 4, 1, 3), dtype)])


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(DIAG_TYPES), st.booleans(), st.data())
def test_matrix_set_diag(dtype, const_diag, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    shape = draw_shape(data.draw, 1, 4, 2, 4)
    diag = rand_data(rng, shape[:-2] + (min(shape[-2:]),), dtype)
    check_all_backends("MATRIX_SET_DIAG", [rand_data(rng, shape, dtype), Const(diag) if const_diag else diag])


def test_matrix_diag_errors() -> None:
    with pytest.raises(ops.OpError, match="rank >= 1"):
        one_op_model("MATRIX_DIAG", [((), np.float32)])
    for dt in (np.bool_, np.float16):  # LiteRT reads these as float32 words
        with pytest.raises(ops.OpError, match=np.dtype(dt).name):
            one_op_model("MATRIX_DIAG", [((2,), dt)])
    model = declared_op_model("MATRIX_DIAG", [np.zeros(2, np.bool_)], [((2, 2), np.bool_)])
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
    model = declared_op_model("MATRIX_SET_DIAG", [np.zeros((3, 2), np.float32), np.zeros(1, np.float32)],
                   [((3, 2), np.float32)])
    with pytest.raises(RuntimeError, match="MATRIX_SET_DIAG.*diagonal"):
        Interpreter(model_content=model).allocate_tensors()


# ---- REVERSE_SEQUENCE ----------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.sampled_from([np.float32, np.uint8, np.int16, np.int32, np.int64]),
       st.sampled_from([np.int32, np.int64]), st.booleans(), st.data())
def test_reverse_sequence(dtype, ltype, const_lengths, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    shape = draw_shape(data.draw, 1, 4, 2, 4)
    seq_dim, batch_dim = data.draw(st.permutations(range(len(shape))))[:2]
    # lengths from -1 (LiteRT: the row is left as is) to the full sequence
    lengths = rng.integers(-1, shape[seq_dim] + 1, shape[batch_dim]).astype(ltype)
    lengths[0] = min(int(lengths[0]), shape[seq_dim])
    x = rand_data(rng, shape, dtype, 0, 100)
    check_all_backends("REVERSE_SEQUENCE", [x, Const(lengths) if const_lengths else lengths],
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
    model = declared_op_model("REVERSE_SEQUENCE", [np.zeros((2, 3, 4), np.float32), np.zeros(2, I32)],
                   [((2, 3, 4), np.float32)], seq_dim=1, batch_dim=0)
    feeds = [np.zeros((2, 3, 4), np.float32), np.array([1, 4], I32)]
    for backend in ("numba", "reference"):
        with pytest.raises(RuntimeError, match="REVERSE_SEQUENCE.*exceeds"):
            run_interpreter(Interpreter(model_content=model, backend=backend), feeds)
