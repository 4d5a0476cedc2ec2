"""Damaged models through the whole Interpreter path (construct -> allocate_tensors -> invoke).

A model file is untrusted input. Whatever is wrong with it, only ValueError (load / validation) or
RuntimeError (prepare / invoke) may escape, with a message naming the problem (op, tensor, field),
and nothing may crash or hang. LiteRT itself is not run on these files: some of them crash it.
"""

from __future__ import annotations

import copy
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tflite_jit
from tflite_jit import ops
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.flat import FlatReader
from tflite_jit.format.reader import load_bytes
from tflite_jit.format.schema_data import TABLES
from tflite_jit.format.writer import write_model
from tflite_jit.ir.model import BUILTIN_CODES, TENSOR_TYPE_CODES
from tools.fuzz_models import mlp_model, run_model

# ---- helpers -----------------------------------------------------------------------------------


def run_through(content: bytes) -> None:
    """Everything a user does with a model: load, inspect, allocate, feed, invoke, read (legal but
    huge models, up to 4 GiB a tensor, are allocated and not fed: feeding them only costs time)."""
    run_model(content, backend=None, invoke_twice=False)


def fails(content: bytes, exc: type[Exception], *phrases: str) -> str:
    """Assert that run_through fails with `exc` (ValueError or RuntimeError) naming every phrase."""
    with pytest.raises(Exception) as info:
        run_through(content)
    e = info.value
    assert type(e) is exc, f"{type(e).__name__}: {e}"
    for p in phrases:
        assert p in str(e), f"{p!r} not in {str(e)!r}"
    return str(e)


def _slot(table: str, name: str) -> tuple[int, str]:
    for i, f in enumerate(TABLES[table]):
        if f and f[0] == name:
            return i, f[1]
    raise KeyError(f"{table}.{name}")


def field_pos(data: bytes, *path: Any) -> tuple[int, str]:
    """Absolute position and kind of a stored scalar field, e.g.
    field_pos(m, ("subgraphs", 0), ("operators", 1), "opcode_index"); a final int indexes into a
    scalar vector: field_pos(m, ("subgraphs", 0), ("operators", 0), "inputs", 1)."""
    r = FlatReader(data)
    pos, table = r.root(), "Model"
    steps = list(path)
    while steps and isinstance(steps[0], tuple):
        name, idx = steps.pop(0)
        slot, kind = _slot(table, name)
        fp = r.field_pos(pos, slot, name)
        assert fp, f"{table}.{name} is not stored"
        if kind.startswith("table:"):
            pos, table = r.uoffset(fp, name), kind[6:]
            continue
        start, n = r.vector(fp, 4, name)
        assert idx < n
        pos, table = r.uoffset(start + 4 * idx, name), kind[7:-1]
    name = steps.pop(0)
    slot, kind = _slot(table, name)
    fp = r.field_pos(pos, slot, name)
    assert fp, f"{table}.{name} is not stored (default value): pick a non-default field to patch"
    if steps:  # an element of a scalar vector
        elem = kind[1:-1]
        size = {"i32": 4, "u32": 4, "i8": 1, "u8": 1, "i64": 8}[elem]
        start, n = r.vector(fp, size, name)
        assert steps[0] < n
        return start + size * steps[0], elem
    return fp, kind


_FMT = {"i32": "<i", "u32": "<I", "i8": "<b", "u8": "<B", "u64": "<Q", "i64": "<q"}


def patch(data: bytes, value: int, *path: Any) -> bytes:
    pos, kind = field_pos(data, *path)
    out = bytearray(data)
    struct.pack_into(_FMT[kind], out, pos, value)
    return bytes(out)


# ---- models ------------------------------------------------------------------------------------


SMALL = mlp_model()  # ADD(x, const) -> RELU -> FULLY_CONNECTED -> SOFTMAX


def one_op(op: str, inputs: list[tuple], out_shape: tuple, out_dtype: Any = np.float32, *,
           custom: bool = False, **options: Any) -> bytes:
    """inputs: ('in', shape, dtype) graph inputs or ('const', array)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    ids = []
    for i, spec in enumerate(inputs):
        if spec[0] == "in":
            ids.append(g.input(f"in{i}", spec[1], spec[2]))
        else:
            ids.append(g.const(f"c{i}", spec[1]))
    y = g.tensor("out", out_shape, out_dtype)
    g.op(op, ids, [y], custom=custom, **options)
    g.output(y)
    return mb.build()


def test_the_small_model_is_valid() -> None:
    run_through(SMALL)


# ---- file-level damage -------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 4, 7, 8, 12, 16, 32, 64, 100, len(SMALL) // 2, len(SMALL) - 40])
def test_truncated(n: int) -> None:
    fails(SMALL[:n], ValueError, "The model is not a valid Flatbuffer buffer" if n else "must be specified")


def test_wrong_identifier() -> None:
    fails(SMALL[:4] + b"XXXX" + SMALL[8:], ValueError, "The model is not a valid Flatbuffer buffer")


def test_root_offset_out_of_range() -> None:
    fails(struct.pack("<I", 0x7FFFFFF0) + SMALL[4:], ValueError, "The model is not a valid Flatbuffer buffer")


def test_garbage_after_identifier() -> None:
    fails(b"\x10\x00\x00\x00TFL3" + bytes(range(256)) * 4, ValueError, "The model is not a valid Flatbuffer buffer")


# ---- structural damage (validate) --------------------------------------------------------------


def test_op_input_index_out_of_range() -> None:
    fails(patch(SMALL, 99, ("subgraphs", 0), ("operators", 1), "inputs", 0), ValueError,
          "Node number 1 (RELU)", "input tensor index 99")


def test_op_input_negative_index() -> None:
    fails(patch(SMALL, -7, ("subgraphs", 0), ("operators", 0), "inputs", 1), ValueError,
          "Node number 0 (ADD)", "-7")


def test_op_output_index_out_of_range() -> None:
    fails(patch(SMALL, 1234, ("subgraphs", 0), ("operators", 2), "outputs", 0), ValueError,
          "Node number 2 (FULLY_CONNECTED)", "output tensor index 1234")


def test_graph_input_and_output_index_out_of_range() -> None:
    fails(patch(SMALL, 50, ("subgraphs", 0), "inputs", 0), ValueError, "input", "50")
    fails(patch(SMALL, 50, ("subgraphs", 0), "outputs", 0), ValueError, "output", "50")


def test_cyclic_graph() -> None:
    # RELU (node 1) now reads 'z', produced by the later SOFTMAX (node 3)
    z = 7
    fails(patch(SMALL, z, ("subgraphs", 0), ("operators", 1), "inputs", 0), ValueError,
          "Node number 1 (RELU)", "'z'", "later node 3")


def test_self_loop() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4))
    y = g.tensor("y", (1, 4))
    g.op("ADD", [x, y], [y])
    g.output(y)
    fails(mb.build(), ValueError, "Node number 0 (ADD)", "'y'")


def test_op_writes_a_graph_input() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4))
    g.op("RELU", [x], [x])
    g.output(x)
    fails(mb.build(), ValueError, "Node number 0 (RELU)", "'x'")


def test_two_writers() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4))
    y = g.tensor("y", (1, 4))
    g.op("RELU", [x], [y])
    g.op("RELU", [x], [y])
    g.output(y)
    fails(mb.build(), ValueError, "Node number 1 (RELU)", "'y'", "already written by node 0")


def test_output_never_produced() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4))
    y = g.tensor("y", (1, 4))
    g.output(x, y)
    fails(mb.build(), ValueError, "'y'", "never produced")


@pytest.mark.parametrize("shape", [(2**30, 2**30), (2**31 - 1, 2**31 - 1, 2**31 - 1), (65536, 65536, 4)])
def test_huge_declared_shapes(shape: tuple[int, ...]) -> None:
    fails(one_op("RELU", [("in", shape, np.float32)], shape), ValueError, "'in0'", "over the")


def test_huge_intermediate_shape() -> None:
    fails(one_op("RELU", [("in", (1, 4), np.float32)], (2**30, 2**30)), ValueError, "'out'", "over the")


@pytest.mark.parametrize("shape", [(-2, 4), (1, -4), (-2147483648,)])
def test_negative_dims(shape: tuple[int, ...]) -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4))
    y = g.tensor("y", shape)
    g.op("RELU", [x], [y])
    g.output(y)
    fails(mb.build(), ValueError, "'y'", "negative dimension")


def test_negative_dim_in_a_patched_file() -> None:
    fails(patch(SMALL, -3, ("subgraphs", 0), ("tensors", 0), "shape", 1), ValueError, "'x'", "negative")


def test_shape_signature_contradicting_shape() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4), shape_signature=(-1, 5))
    y = g.tensor("y", (1, 4))
    g.op("RELU", [x], [y])
    g.output(y)
    fails(mb.build(), ValueError, "'x'", "shape_signature")


def test_rank_too_large() -> None:
    shape = (1,) * 40
    fails(one_op("RELU", [("in", shape, np.float32)], shape), ValueError, "'in0'", "rank 40")


def test_constant_buffer_size_mismatch() -> None:
    # 'c' declares shape (1, 4) float32 (16 bytes); make the shape (1, 5) so the buffer is short
    fails(patch(SMALL, 5, ("subgraphs", 0), ("tensors", 1), "shape", 1), ValueError, "'c'", "buffer holds 16 bytes")


def test_constant_buffer_too_long() -> None:
    fails(patch(SMALL, 3, ("subgraphs", 0), ("tensors", 1), "shape", 1), ValueError, "'c'", "buffer holds 16 bytes")


def test_buffer_index_out_of_range() -> None:
    fails(patch(SMALL, 999, ("subgraphs", 0), ("tensors", 1), "buffer"), ValueError, "'c'", "buffer 999")


def test_opcode_index_out_of_range() -> None:
    fails(patch(SMALL, 77, ("subgraphs", 0), ("operators", 1), "opcode_index"), ValueError,
          "operator 1", "opcode index 77")


def test_unknown_tensor_type() -> None:
    # 'c' is float32 (type 0, not stored); tensor 'w' is float32 too. Use the int32 RESHAPE shape.
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (2, 3))
    s = g.const("s", np.array([3, 2], np.int32))
    y = g.tensor("y", (3, 2))
    g.op("RESHAPE", [x, s], [y])
    g.output(y)
    fails(patch(mb.build(), 99, ("subgraphs", 0), ("tensors", 1), "type"), ValueError, "'s'", "type code 99")


def test_unknown_builtin_code() -> None:
    # opcode 1 is RELU (builtin 19): make it a code no schema knows
    bad = patch(SMALL, 250, ("operator_codes", 1), "builtin_code")
    fails(bad, RuntimeError, "250", "Node number 1", "failed to prepare")


def test_no_subgraphs() -> None:
    bad = patch(SMALL, 0, "subgraphs", ) if False else None  # noqa: F841 (the vector length is not a field)
    r = FlatReader(SMALL)
    slot, _ = _slot("Model", "subgraphs")
    fp = r.field_pos(r.root(), slot, "subgraphs")
    start = r.uoffset(fp, "subgraphs")
    data = bytearray(SMALL)
    struct.pack_into("<I", data, start, 0)
    fails(bytes(data), ValueError, "subgraphs")


def test_vector_length_beyond_the_file() -> None:
    r = FlatReader(SMALL)
    slot, _ = _slot("Model", "buffers")
    start = r.uoffset(r.field_pos(r.root(), slot, "buffers"), "buffers")
    data = bytearray(SMALL)
    struct.pack_into("<I", data, start, 0x3FFFFFFF)
    fails(bytes(data), ValueError, "The model is not a valid Flatbuffer buffer", "buffers")


# ---- signatures --------------------------------------------------------------------------------


def _sig_model(subgraph_index: int = 0, in_tensor: int | None = None, out_tensor: int | None = None) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4))
    y = g.tensor("y", (1, 4))
    g.op("RELU", [x], [y])
    g.output(y)
    mb.signature("serving_default", {"x": x if in_tensor is None else in_tensor},
                 {"y": y if out_tensor is None else out_tensor}, subgraph_index=subgraph_index)
    return mb.build()


def test_signature_with_bad_subgraph() -> None:
    fails(_sig_model(subgraph_index=5), ValueError, "serving_default", "subgraph 5")


def test_signature_with_bad_tensors() -> None:
    fails(_sig_model(in_tensor=42), ValueError, "serving_default", "'x'", "tensor 42")
    fails(_sig_model(out_tensor=9), ValueError, "serving_default", "'y'", "tensor 9")


# ---- prepare-time contradictions (allocate_tensors -> RuntimeError) -----------------------------


def test_add_of_float_and_int() -> None:
    m = one_op("ADD", [("in", (2, 3), np.float32), ("in", (2, 3), np.int32)], (2, 3))
    fails(m, RuntimeError, "ADD", "float32", "int32", "Node number 0 (ADD) failed to prepare")


def test_output_dtype_contradicts_op() -> None:
    m = one_op("ADD", [("in", (2, 3), np.float32), ("in", (2, 3), np.float32)], (2, 3), np.int32)
    fails(m, RuntimeError, "'out'", "Node number 0 (ADD) failed to prepare")


def test_broadcast_contradiction() -> None:
    m = one_op("ADD", [("in", (2, 3), np.float32), ("in", (4, 3), np.float32)], (2, 3))
    fails(m, RuntimeError, "Node number 0 (ADD) failed to prepare")


def test_conv_filter_channels_differ_from_input_channels() -> None:
    m = one_op("CONV_2D", [("in", (1, 5, 5, 3), np.float32), ("const", np.ones((4, 3, 3, 2), np.float32)),
                           ("const", np.zeros(4, np.float32))], (1, 5, 5, 4),
               padding="SAME", stride_w=1, stride_h=1)
    fails(m, RuntimeError, "Node number 0 (CONV_2D) failed to prepare")


def test_conv_with_missing_inputs() -> None:
    m = one_op("CONV_2D", [("in", (1, 5, 5, 3), np.float32)], (1, 5, 5, 4), padding="SAME")
    fails(m, RuntimeError, "Node number 0 (CONV_2D) failed to prepare")


@pytest.mark.parametrize("w_shape,b_shape,what", [((3, 4), (5,), "bias"), ((3, 4, 1), (3,), "2-D")])
def test_fully_connected_weight_mismatch(w_shape: tuple, b_shape: tuple, what: str) -> None:
    # (an input whose size is not a multiple of the weights' depth is NOT an error: LiteRT
    # flattens it into rows and so do we)
    m = one_op("FULLY_CONNECTED", [("in", (2, 4), np.float32), ("const", np.ones(w_shape, np.float32)),
                                   ("const", np.ones(b_shape, np.float32))], (2, 3))
    fails(m, RuntimeError, what, "Node number 0 (FULLY_CONNECTED) failed to prepare")


def test_reshape_element_count_mismatch() -> None:
    m = one_op("RESHAPE", [("in", (2, 3), np.float32), ("const", np.array([4, 2], np.int32))], (4, 2))
    fails(m, RuntimeError, "RESHAPE", "failed to prepare")


def test_reshape_output_shape_contradiction_at_allocate() -> None:
    # the declared output shape (4, 2) is only a hint: a valid reshape plan wins; the graph runs
    m = one_op("RESHAPE", [("in", (2, 4), np.float32), ("const", np.array([2, 2, 2], np.int32))], (4, 2))
    it = tflite_jit.Interpreter(model_content=m)
    it.allocate_tensors()
    it.set_tensor(0, np.ones((2, 4), np.float32))
    it.invoke()
    assert it.get_tensor(2).shape == (2, 2, 2)


def test_softmax_wrong_arity() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4))
    y1 = g.tensor("y1", (1, 4))
    y2 = g.tensor("y2", (1, 4))
    g.op("SOFTMAX", [x], [y1, y2], beta=1.0)
    g.output(y1, y2)
    fails(mb.build(), RuntimeError, "SOFTMAX", "failed to prepare")


@pytest.mark.parametrize("op,n_in", [("SOFTMAX", 0), ("ADD", 1), ("RELU", 0), ("FULLY_CONNECTED", 1),
                                     ("CONV_2D", 0), ("RESHAPE", 0)])
def test_wrong_arity(op: str, n_in: int) -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4, 4, 2))
    y = g.tensor("y", (1, 4, 4, 2))
    g.op(op, [x] * n_in, [y])
    g.output(y)
    fails(mb.build(), RuntimeError, f"Node number 0 ({op}) failed to prepare")


def test_extra_inputs_never_escape_as_other_errors() -> None:
    # RELU given three inputs: whatever the op does with the extras, only RuntimeError may escape
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4))
    c = g.const("c", np.ones(3, np.float32))
    y = g.tensor("y", (1, 4))
    g.op("RELU", [x, c, x], [y])
    g.output(y)
    try:
        run_through(mb.build())
    except RuntimeError as e:
        assert "RELU" in str(e)


@pytest.mark.parametrize("field", ["stride_w", "dilation_h_factor"])
def test_conv_zero_stride_or_dilation(field: str) -> None:
    opts = {"padding": "SAME", "stride_w": 1, "stride_h": 1, field: 0}
    m = one_op("CONV_2D", [("in", (1, 5, 5, 3), np.float32), ("const", np.ones((4, 3, 3, 3), np.float32)),
                           ("const", np.zeros(4, np.float32))], (1, 5, 5, 4), **opts)
    fails(m, RuntimeError, "CONV_2D", "failed to")


def test_resize_into_a_contradiction_fails_at_allocate() -> None:
    it = tflite_jit.Interpreter(model_content=SMALL)
    it.resize_tensor_input(0, [1, 5])
    with pytest.raises(RuntimeError, match="failed to prepare"):
        it.allocate_tensors()
    with pytest.raises(RuntimeError, match="Invoke called on model that is not ready"):
        it.invoke()
    it.resize_tensor_input(0, [1, 4])
    it.allocate_tensors()
    it.set_tensor(0, np.ones((1, 4), np.float32))
    it.invoke()


# ---- unsupported ops ---------------------------------------------------------------------------


def test_unresolved_custom_op() -> None:
    m = one_op("X", [("in", (1, 4), np.float32)], (1, 4), custom=True)
    fails(m, RuntimeError, "Encountered unresolved custom op: X.", "Node number 0 (X) failed to prepare")


def test_flex_op() -> None:
    m = one_op("FlexAddV2", [("in", (1, 4), np.float32), ("in", (1, 4), np.float32)], (1, 4), custom=True)
    fails(m, RuntimeError, "Regular TensorFlow ops are not supported", "FlexAddV2")


def test_unsupported_builtin() -> None:
    candidates = ["CONCAT_EMBEDDINGS", "CALL"]  # builtins LiteRT's resolver lacks too
    name = next(c for c in candidates if ops.get(c) is None)
    m = one_op(name, [("in", (4,), np.float32)], (4, 4))
    fails(m, RuntimeError, f"'{name}'", f"Node number 0 ({name}) failed to prepare")


# ---- run-time failures (invoke -> RuntimeError) ------------------------------------------------


def test_gather_index_out_of_range_at_invoke() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    p = g.const("params", np.arange(12, dtype=np.float32).reshape(4, 3))
    i = g.input("idx", (2,), np.int32)
    y = g.tensor("y", (2, 3))
    g.op("GATHER", [p, i], [y], axis=0)
    g.output(y)
    it = tflite_jit.Interpreter(model_content=mb.build())
    it.allocate_tensors()
    it.set_tensor(1, np.array([1, 7], np.int32))
    with pytest.raises(RuntimeError, match="GATHER"):
        it.invoke()
    it.set_tensor(1, np.array([1, 3], np.int32))
    it.invoke()
    assert np.array_equal(it.get_tensor(2), np.arange(12, dtype=np.float32).reshape(4, 3)[[1, 3]])


# ---- fuzz --------------------------------------------------------------------------------------


def _run_mutated(data: bytes) -> None:
    try:
        run_through(data)
    except (ValueError, RuntimeError):
        pass


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(SMALL) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_fuzz_byte_mutations(edits: list[tuple[int, int]]) -> None:
    data = bytearray(SMALL)
    for pos, val in edits:
        data[pos] = val
    _run_mutated(bytes(data))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SMALL) - 4), st.sampled_from([0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x7FFFFFFF,
                                                         0x80000000, 0xFFFFFFFF, 0x10000, 2**30]))
def test_fuzz_word_mutations(pos: int, value: int) -> None:
    # offsets, lengths, indices and dims are 32-bit words: overwrite whole words with edge values
    data = bytearray(SMALL)
    struct.pack_into("<I", data, pos & ~3, value)
    _run_mutated(bytes(data))


# Structure-aware: damage the IR the way a buggy converter would (ops swapped for other ops, so
# options and arity no longer fit; indices, shapes, types and option values changed) and write it.
_IR_MODELS = [load_bytes(SMALL)]
_OP_NAMES = sorted(n for n in ops.all_ops() if n in BUILTIN_CODES)  # builtins only: the fuzzer writes builtin codes
_TYPES = [TENSOR_TYPE_CODES[k] for k in ("FLOAT32", "INT32", "INT8", "UINT8", "INT64", "BOOL", "FLOAT16")]


def _mutate_ir(rng: Any) -> bytes | None:
    m = copy.deepcopy(rng.choice(_IR_MODELS))
    sg = m.subgraphs[0]
    for _ in range(rng.randint(1, 3)):
        op, t = rng.choice(sg.ops), rng.choice(sg.tensors)
        r = rng.random()
        if r < 0.3:
            op.name = rng.choice(_OP_NAMES)
            op.builtin_code = BUILTIN_CODES[op.name]
        elif r < 0.45:
            op.inputs = tuple(rng.choice([-1, *range(len(sg.tensors))]) for _ in range(rng.randint(0, 4)))
        elif r < 0.55:
            op.outputs = tuple(rng.randrange(len(sg.tensors)) for _ in range(rng.randint(0, 2)))
        elif r < 0.75 and op.options:
            op.options[rng.choice(list(op.options))] = rng.choice([0, 1, 2, 3, -1, 7, 100, 2**31 - 1, -2**31])
        elif r < 0.9 and t.data is None:
            t.shape = tuple(rng.choice([0, 1, 2, 3, 4, 5, 100]) for _ in range(rng.randint(0, 5)))
            t.shape_signature = None
        elif t.data is None:
            t.type = rng.choice(_TYPES)
    try:
        return write_model(m)
    except Exception:  # the writer rejects some combinations (e.g. an option value out of range)
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_fuzz_ir_mutations(rng: Any) -> None:
    data = _mutate_ir(rng)
    if data is not None:
        _run_mutated(data)
