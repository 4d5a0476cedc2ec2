"""DENSIFY of sparse constants (plain CSR and 1xB-blocked, as pruned FC weights are stored)
against LiteRT."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import assert_close, litert_run
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.ir.model import Sparsity


def encode(dense: np.ndarray, block: int) -> tuple[np.ndarray, Sparsity]:
    """Rows DENSE, (block-)columns SPARSE_CSR, then the dense block: TFLite's layout."""
    rows, cols = dense.shape
    blocks = dense.reshape(rows, cols // block, block)
    keep = np.abs(blocks).sum(axis=2) != 0
    segments = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int32)
    indices = np.nonzero(keep)[1].astype(np.int32)
    values = blocks[keep].reshape(-1)
    dims = [{"format": "DENSE", "dense_size": rows, "array_segments": None, "array_indices": None},
            {"format": "SPARSE_CSR", "dense_size": 0, "array_segments": segments, "array_indices": indices}]
    if block > 1:
        dims.append({"format": "DENSE", "dense_size": block, "array_segments": None, "array_indices": None})
        return values, Sparsity(traversal_order=(0, 1, 2), block_map=(1,), dim_metadata=dims)
    return values, Sparsity(traversal_order=(0, 1), block_map=(), dim_metadata=dims)


def model(dense: np.ndarray, block: int) -> bytes:
    values, sp = encode(dense, block)
    mb = ModelBuilder()
    g = mb.subgraph()
    w = g.tensor("w", dense.shape, np.float32, data=values, sparsity=sp)
    x = g.input("x", dense.shape, np.float32)
    d = g.tensor("d", dense.shape, np.float32)
    g.op("DENSIFY", [w], [d])
    (y,) = g.apply("ADD", [x, d])
    g.output(y)
    return mb.build()


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 5), st.integers(1, 4), st.sampled_from([1, 4]), st.floats(0.0, 1.0), st.integers(0, 99))
def test_densify_matches_litert(rows: int, col_blocks: int, block: int, density: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((rows, col_blocks * block)).astype(np.float32)
    mask = rng.random((rows, col_blocks)) < density
    mask[0, 0] = True  # no stored values = an empty buffer = not a constant: LiteRT rejects it too
    dense *= np.repeat(mask, block, axis=1)
    data = model(dense, block)
    x = rng.standard_normal(dense.shape).astype(np.float32)
    (theirs,) = litert_run(data, [x])
    it = tflite_jit.Interpreter(model_content=data)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    ours = it.get_tensor(it.get_output_details()[0]["index"])
    assert_close(ours, theirs)
    np.testing.assert_array_equal(ours, x + dense)


def test_damaged_segments_are_a_prepare_error() -> None:
    dense = np.array([[0, 1.0], [2.0, 0]], np.float32)
    values, sp = encode(dense, 1)
    sp.dim_metadata[1]["array_segments"] = np.array([0, 5, 2], np.int32)  # points past the indices
    mb = ModelBuilder()
    g = mb.subgraph()
    w = g.tensor("w", dense.shape, np.float32, data=values, sparsity=sp)
    d = g.tensor("d", dense.shape, np.float32)
    g.op("DENSIFY", [w], [d])
    x = g.input("x", dense.shape, np.float32)
    (y,) = g.apply("ADD", [x, d])
    g.output(y)
    it = tflite_jit.Interpreter(model_content=mb.build())
    with pytest.raises(RuntimeError, match="DENSIFY.*damaged"):
        it.allocate_tensors()


def sparse_fc_model(dense: np.ndarray, block: int, rows: int, quantized: bool = False) -> bytes:
    """FULLY_CONNECTED reading sparse weights directly (no DENSIFY), as LiteRT's kernel allows."""
    values, sp = encode(dense, block)
    mb = ModelBuilder()
    g = mb.subgraph()
    if quantized:
        w = g.tensor("w", dense.shape, np.int8, data=values, sparsity=sp, scale=0.02, zero_point=0)
        x = g.input("x", (rows, dense.shape[1]), np.int8, scale=0.05, zero_point=3)
        y = g.tensor("y", (rows, dense.shape[0]), np.int8, scale=0.1, zero_point=-2)
    else:
        w = g.tensor("w", dense.shape, np.float32, data=values, sparsity=sp)
        x = g.input("x", (rows, dense.shape[1]), np.float32)
        y = g.tensor("y", (rows, dense.shape[0]), np.float32)
    g.op("FULLY_CONNECTED", [x, w], [y])
    g.output(y)
    return mb.build()


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.sampled_from([1, 4]), st.floats(0.0, 1.0), st.integers(0, 99),
       st.sampled_from(["numba", "reference"]))
def test_fully_connected_with_sparse_weights(units, col_blocks, block, density, seed, backend):
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((units, col_blocks * block)).astype(np.float32)
    blocks = dense.reshape(units, col_blocks, block)
    blocks[rng.random((units, col_blocks)) > density] = 0
    blocks[0, 0, 0] = 1.0  # an all-zero matrix stores no values, hence no buffer at all
    m = sparse_fc_model(dense, block, rows=3)
    x = rng.standard_normal((3, col_blocks * block)).astype(np.float32)
    it = tflite_jit.Interpreter(model_content=m, backend=backend)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    assert_close(it.get_tensor(it.get_output_details()[0]["index"]), litert_run(m, [x])[0])


def test_int8_fully_connected_with_sparse_weights_bit_exact():
    rng = np.random.default_rng(5)
    dense = rng.integers(-127, 128, (8, 64)).astype(np.int8)
    dense.reshape(8, 4, 16)[:, 1::2] = 0  # LiteRT's int8 sparse kernel takes 1x16 blocks
    m = sparse_fc_model(dense, 16, rows=2, quantized=True)
    x = rng.integers(-128, 128, (2, 64)).astype(np.int8)
    it = tflite_jit.Interpreter(model_content=m)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]), litert_run(m, [x])[0])
