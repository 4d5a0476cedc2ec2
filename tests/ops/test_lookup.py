"""EMBEDDING_LOOKUP_SPARSE and LSH_PROJECTION against LiteRT's builtin kernels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import Const, assert_close, check_differential, one_op_model, run_engine
from tflite_jit import ops
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.ops.lookup import fingerprint64

# ---- EMBEDDING_LOOKUP_SPARSE -----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["SUM", "MEAN", "SQRTN"]), st.integers(0, 9), st.integers(1, 3),
       st.lists(st.integers(1, 3), min_size=1, max_size=2), st.sampled_from(["sorted", "random", "runs"]),
       st.data())
def test_embedding_lookup_sparse(combiner, n, lookup_rank, emb_dims, order, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    rows = data.draw(st.integers(1, 6))
    dense = [data.draw(st.integers(1, 3)) for _ in range(lookup_rank - 1)] + [max(n, 1)]
    ids = rng.integers(0, rows, n).astype(np.int32)
    pos = np.stack([rng.integers(0, d, n) for d in dense[:-1]] + [np.arange(n)], axis=1) if n else \
        np.zeros((0, lookup_rank), np.int64)
    if order == "sorted" and n:
        pos = pos[np.lexsort(pos.T[::-1])]
    elif order == "runs" and n:  # one bucket revisited after another: LiteRT re-divides the row
        pos[:, :-1] = pos[0, :-1]
        pos[n // 2: n // 2 + 1, :-1] = 0
    indices = pos.astype(np.int32)
    weights = (rng.random(n) + 0.25).astype(np.float32) * rng.choice([-1, 1], n).astype(np.float32)
    value = rng.standard_normal((rows, *emb_dims)).astype(np.float32)
    check_differential("EMBEDDING_LOOKUP_SPARSE", [ids, indices, Const(np.array(dense, np.int32)), weights,
                                                   Const(value)], combiner=combiner)


def test_embedding_lookup_sparse_errors() -> None:
    i32 = np.int32
    good = [((3,), i32), ((3, 2), i32), np.array([2, 3], i32), ((3,), np.float32), np.zeros((4, 2), np.float32)]
    with pytest.raises(ops.OpError, match="one entry per lookup"):
        one_op_model("EMBEDDING_LOOKUP_SPARSE", [((2,), i32)] + good[1:])
    with pytest.raises(ops.OpError, match="dense_shape .* 3 values"):
        one_op_model("EMBEDDING_LOOKUP_SPARSE", good[:2] + [np.array([2, 3, 1], i32)] + good[3:])
    with pytest.raises(ops.OpError, match="at least 2-D"):
        one_op_model("EMBEDDING_LOOKUP_SPARSE", good[:4] + [np.zeros(4, np.float32)])
    with pytest.raises(ops.OpError, match="weights .* must be float32"):
        one_op_model("EMBEDDING_LOOKUP_SPARSE", good[:3] + [((3,), i32)] + good[4:])
    model = one_op_model("EMBEDDING_LOOKUP_SPARSE", good)
    idx = np.array([[0, 0], [1, 1], [1, 2]], i32)
    w = np.ones(3, np.float32)
    with pytest.raises((ValueError, RuntimeError), match="EMBEDDING_LOOKUP_SPARSE.*ids\\[1\\] = 4"):
        run_engine(model, [np.array([0, 4, 1], i32), idx, w], "reference")
    with pytest.raises((ValueError, RuntimeError), match="EMBEDDING_LOOKUP_SPARSE.*indices\\[2, 0\\] = 2"):
        run_engine(model, [np.array([0, 1, 1], i32), np.array([[0, 0], [1, 1], [2, 2]], i32), w], "reference")


def test_embedding_lookup_sparse_runtime_dense_shape() -> None:
    from tests.oracle import litert_run

    mb = ModelBuilder()
    g = mb.subgraph()
    ids = [g.input("ids", (3,), np.int32), g.input("idx", (3, 2), np.int32), g.input("shape", (2,), np.int32),
           g.input("w", (3,), np.float32), g.const("v", np.arange(8, dtype=np.float32).reshape(4, 2))]
    out = g.tensor("out", (2, 2), np.float32)
    g.op("EMBEDDING_LOOKUP_SPARSE", ids, [out], combiner="MEAN")
    g.output(out)
    model = mb.build()
    feeds = [np.array([0, 3, 1], np.int32), np.array([[0, 0], [2, 0], [2, 1]], np.int32),
             np.array([3, 2], np.int32), np.array([1.0, 2.0, 0.5], np.float32)]
    theirs = litert_run(model, feeds)
    assert theirs[0].shape == (3, 2)
    assert_close(run_engine(model, feeds, "reference")[0][0], theirs[0])


# ---- LSH_PROJECTION --------------------------------------------------------------------------------

_LSH_DTYPES = [np.float32, np.int32, np.int8, np.uint8, np.int16, np.int64, np.float64, np.bool_]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["SPARSE", "DENSE"]), st.integers(1, 4), st.integers(1, 8),
       st.lists(st.integers(1, 12), min_size=1, max_size=3), st.sampled_from(_LSH_DTYPES), st.booleans(),
       st.booleans(), st.data())
def test_lsh_projection(kind, num_hash, num_bits, shape, dtype, weighted, const_input, data) -> None:
    """Item sizes from 1 to ~900 bytes cover every FarmHash length class (<=16, <=32, <=64, longer)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 999)))
    seeds = rng.standard_normal((num_hash, num_bits)).astype(np.float32)
    x = (rng.standard_normal(shape) * 50).astype(dtype)
    specs = [Const(seeds), Const(x) if const_input else x]
    if weighted:
        specs.append(rng.standard_normal(shape[0]).astype(np.float32))
    check_differential("LSH_PROJECTION", specs, type=kind)


def test_lsh_projection_32_bits() -> None:
    """num_bits 32: the packed signature wraps into the int32 sign bit and the row offset is
    row * (1 << 32), which LiteRT computes as row * 1 (x86 shift semantics)."""
    rng = np.random.default_rng(4)
    seeds = rng.standard_normal((3, 32)).astype(np.float32)
    check_differential("LSH_PROJECTION", [Const(seeds), rng.standard_normal((2, 70)).astype(np.float32)], type="SPARSE")


def test_fingerprint64_known_values() -> None:
    # FarmHash Fingerprint64 of the empty string is its constant k2; every length class gives a
    # 64-bit value that depends on every byte (the differential tests pin the exact values)
    assert fingerprint64(b"") == 0x9AE16A3B2F90404F
    for n in (1, 3, 4, 8, 16, 17, 32, 33, 64, 65, 128, 129, 300):
        s = bytes(i * 7 % 256 for i in range(n))
        h = fingerprint64(s)
        assert 0 <= h < 2**64
        assert fingerprint64(s[:-1] + bytes([s[-1] ^ 1])) != h
        assert fingerprint64(bytes([s[0] ^ 1]) + s[1:]) != h


def test_lsh_projection_errors() -> None:
    with pytest.raises(ops.OpError, match="at most 32"):
        one_op_model("LSH_PROJECTION", [np.zeros((2, 33), np.float32), ((3, 2), np.float32)], type="SPARSE")
    with pytest.raises(ops.OpError, match="2-D"):
        one_op_model("LSH_PROJECTION", [np.zeros(4, np.float32), ((3, 2), np.float32)], type="SPARSE")
    with pytest.raises(ops.OpError, match="one value per input item"):
        one_op_model("LSH_PROJECTION", [np.zeros((2, 3), np.float32), ((3, 2), np.float32), ((2,), np.float32)],
                     type="DENSE")
    with pytest.raises(ops.OpError, match="no items"):
        one_op_model("LSH_PROJECTION", [np.zeros((2, 3), np.float32), ((0, 2), np.float32)], type="DENSE")
    with pytest.raises(ops.OpError, match="hash .* must be float32"):
        one_op_model("LSH_PROJECTION", [np.zeros((2, 3), np.int32), ((3, 2), np.float32)], type="DENSE")
    with pytest.raises(ops.OpError, match="projection type 0"):
        ops.get("LSH_PROJECTION").parse({"type": 0})
    mb = ModelBuilder()
    g = mb.subgraph()
    h, x = g.const("h", np.zeros((2, 3), np.float32)), g.input("x", (0, 2), np.float32)
    out = g.tensor("out", (2,), np.int32)
    g.op("LSH_PROJECTION", [h, x], [out], type="SPARSE")
    g.output(out)
    it = tflite_jit.Interpreter(model_content=mb.build())
    with pytest.raises((ValueError, RuntimeError), match="LSH_PROJECTION"):
        it.allocate_tensors()
