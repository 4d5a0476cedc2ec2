"""FILL, RANGE, TILE, BROADCAST_TO/ARGS, SPLIT, SPLIT_V, REVERSE_V2, MIRROR_PAD, SPACE_TO_DEPTH,
DEPTH_TO_SPACE, SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND against LiteRT's builtin kernels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import Const, assert_close, check_reference, litert_interpreter, litert_run, one_op_model
from tests.shapes import draw_shape
from tflite_jit import Interpreter, ops
from tflite_jit.format.builder import ModelBuilder

DTYPES = [np.float32, np.int32, np.int64, np.int8, np.uint8]


def _arr(rng, shape, dtype) -> np.ndarray:
    if np.dtype(dtype) == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(0, 100, shape).astype(dtype)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(DTYPES + [np.bool_, np.int16]), st.sampled_from([np.int32, np.int64]), st.data())
def test_fill(dtype, dims_type, data) -> None:
    dims = np.array(draw_shape(data.draw, 0, 4, 0, 4), dims_type)
    value = _arr(np.random.default_rng(data.draw(st.integers(0, 99))), (), dtype)
    check_reference("FILL", [Const(dims), value])


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([np.int32, np.int64, np.float32]), st.data())
def test_range(dtype, data) -> None:
    start = data.draw(st.integers(-20, 20))
    delta = data.draw(st.integers(1, 5)) * data.draw(st.sampled_from([-1, 1]))
    # n >= 1: LiteRT's get_tensor fails ("Invalid tensor size") on an empty RANGE output
    limit = start + delta * data.draw(st.integers(1, 12)) + data.draw(st.integers(0, abs(delta) - 1)) * (1 if delta > 0 else -1)
    scale = 0.37 if dtype == np.float32 else 1
    vals = [np.array(v * scale, dtype) for v in (start, limit, delta)]
    check_reference("RANGE", [Const(v) for v in vals])


@pytest.mark.parametrize("start,limit,delta", [(0, 5, 0), (0, 5, -1), (5, 0, 1)])
def test_range_rejects_bad_delta(start, limit, delta) -> None:
    with pytest.raises(ops.OpError, match="RANGE"):
        one_op_model("RANGE", [np.array(v, np.int32) for v in (start, limit, delta)])


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(DTYPES + [np.bool_]), st.sampled_from([np.int32, np.int64]), st.data())
def test_tile(dtype, mtype, data) -> None:
    shape = draw_shape(data.draw)
    mult = np.array([data.draw(st.integers(0, 3)) for _ in shape], mtype)
    x = _arr(np.random.default_rng(data.draw(st.integers(0, 99))), shape, dtype)
    check_reference("TILE", [x, Const(mult)])


def _broadcast_to_model(x_shape, dtype, target) -> bytes:
    # LiteRT registers BROADCAST_TO from op version 2 only; one_op_model writes version 1
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", x_shape, dtype)
    s = g.const("shape", target)
    ctx = ops.InferCtx("BROADCAST_TO", None, [x_shape, target.shape], [np.dtype(dtype), target.dtype],
                       [None, target])
    ((oshape, odt),) = ops.get("BROADCAST_TO").infer(ctx)
    o = g.tensor("out", oshape, odt)
    g.op("BROADCAST_TO", [x, s], [o], version=2)
    g.output(o)
    return mb.build()


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(DTYPES + [np.bool_]), st.sampled_from([np.int32, np.int64]), st.data())
def test_broadcast_to(dtype, stype, data) -> None:
    target = draw_shape(data.draw, 1, 4, 1, 5)
    drop = data.draw(st.integers(0, len(target)))
    x_shape = tuple(d if data.draw(st.booleans()) else 1 for d in target[drop:])
    x = _arr(np.random.default_rng(data.draw(st.integers(0, 99))), x_shape, dtype)
    t = np.array(target, stype)
    (theirs,) = litert_run(_broadcast_to_model(x_shape, dtype, t), [x])
    (ours,) = ops.get("BROADCAST_TO").reference([x, t], None)
    assert_close(ours, theirs)


def test_broadcast_to_rejects_incompatible() -> None:
    with pytest.raises(ops.OpError, match="BROADCAST_TO.*cannot be broadcast"):
        _broadcast_to_model((3,), np.float32, np.array([2, 4], np.int32))


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([np.int32, np.int64]), st.data())
def test_broadcast_args(dtype, data) -> None:
    a = draw_shape(data.draw, 1, 4, 0, 4)
    drop = data.draw(st.integers(0, len(a)))
    b = tuple(d if data.draw(st.booleans()) else 1 for d in a[drop:])
    if data.draw(st.booleans()):
        a, b = b, a
    check_reference("BROADCAST_ARGS", [np.array(a, dtype), np.array(b, dtype)])


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(DTYPES + [np.int16]), st.data())
def test_split(dtype, data) -> None:
    shape = list(draw_shape(data.draw))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = data.draw(st.integers(1, 3))
    shape[axis] *= n
    x = _arr(np.random.default_rng(data.draw(st.integers(0, 99))), tuple(shape), dtype)
    atype = data.draw(st.sampled_from([np.int32, np.int64]))
    check_reference("SPLIT", [Const(np.array(axis, atype)), x], n_outputs=n, num_splits=n)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(DTYPES), st.data())
def test_split_v(dtype, data) -> None:
    sizes = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=4))
    shape = list(draw_shape(data.draw))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    shape[axis] = sum(sizes)
    given_sizes = list(sizes)
    if data.draw(st.booleans()):
        given_sizes[data.draw(st.integers(0, len(sizes) - 1))] = -1
    x = _arr(np.random.default_rng(data.draw(st.integers(0, 99))), tuple(shape), dtype)
    check_reference("SPLIT_V", [x, Const(np.array(given_sizes, np.int32)), Const(np.array(axis, np.int32))],
                     n_outputs=len(sizes), num_splits=len(sizes))


def test_split_errors() -> None:
    with pytest.raises(ops.OpError, match="SPLIT: dimension 1 .* not divisible"):
        one_op_model("SPLIT", [np.array(1, np.int32), ((2, 5), np.float32)], num_splits=2)
    with pytest.raises(ops.OpError, match="SPLIT_V: size_splits .* sum to 4"):
        one_op_model("SPLIT_V", [((2, 5), np.float32), np.array([1, 3], np.int32), np.array(1, np.int32)],
                     num_splits=2)
    with pytest.raises(ops.OpError, match="SPLIT: input .* bool"):
        one_op_model("SPLIT", [np.array(0, np.int32), ((2, 4), np.bool_)], num_splits=2)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(DTYPES + [np.bool_, np.int16]), st.data())
def test_reverse_v2(dtype, data) -> None:
    shape = draw_shape(data.draw)
    lo = data.draw(st.integers(0, len(shape) - 1))
    hi = data.draw(st.integers(lo, len(shape) - 1))
    axes = [a - len(shape) if data.draw(st.booleans()) else a for a in range(lo, hi + 1)]
    x = _arr(np.random.default_rng(data.draw(st.integers(0, 99))), shape, dtype)
    check_reference("REVERSE_V2", [x, Const(np.array(axes, np.int32))])


def test_reverse_v2_rejects_non_contiguous_axes() -> None:
    # LiteRT fails at invoke: "Non-contiguous `axes` not supported"
    with pytest.raises(ops.OpError, match="not contiguous"):
        one_op_model("REVERSE_V2", [((2, 3, 4), np.float32), np.array([0, 2], np.int32)])
    with pytest.raises(ops.OpError, match="not contiguous"):
        ops.get("REVERSE_V2").reference([np.zeros((2, 3, 4)), np.array([0, 2], np.int32)], None)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(DTYPES + [np.bool_, np.int16]), st.sampled_from([0, 1]),
       st.sampled_from([np.int32, np.int64]), st.data())
def test_mirror_pad(dtype, mode, ptype, data) -> None:
    shape = draw_shape(data.draw, 1, 4, 1, 4)
    pads = np.array([[data.draw(st.integers(0, d - 1 + mode)) for _ in range(2)] for d in shape],
                    ptype).reshape(len(shape), 2)
    x = _arr(np.random.default_rng(data.draw(st.integers(0, 99))), shape, dtype)
    check_reference("MIRROR_PAD", [x, Const(pads)], mode=mode)


def test_mirror_pad_rejects_too_wide() -> None:
    with pytest.raises(ops.OpError, match="REFLECT"):
        one_op_model("MIRROR_PAD", [((3,), np.float32), np.array([[3, 0]], np.int32)], mode=0)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([np.float32, np.int32, np.int64, np.int8, np.uint8]), st.data())
def test_space_depth(dtype, data) -> None:
    b = data.draw(st.integers(1, 3))
    n, h, w, c = (data.draw(st.integers(1, 3)) for _ in range(4))
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    check_reference("SPACE_TO_DEPTH", [_arr(rng, (n, h * b, w * b, c), dtype)], block_size=b)
    check_reference("DEPTH_TO_SPACE", [_arr(rng, (n, h, w, c * b * b), dtype)], block_size=b)


def test_space_depth_errors() -> None:
    with pytest.raises(ops.OpError, match="divisible by block_size 2"):
        one_op_model("SPACE_TO_DEPTH", [((1, 3, 4, 1), np.float32)], block_size=2)
    with pytest.raises(ops.OpError, match="int16"):
        one_op_model("DEPTH_TO_SPACE", [((1, 2, 2, 4), np.int16)], block_size=2)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(DTYPES + [np.bool_, np.int16]), st.integers(1, 2), st.data())
def test_space_batch_nd(dtype, m, data) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    block = [data.draw(st.integers(1, 3)) for _ in range(m)]
    pads, spatial = [], []
    for b in block:
        lo, hi = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))
        total = b * data.draw(st.integers(1, 3))
        if total < lo + hi:
            total += b * ((lo + hi) // b + 1)
        pads.append([lo, hi])
        spatial.append(total - lo - hi)
    n, rest = data.draw(st.integers(1, 2)), [data.draw(st.integers(1, 3))]  # rank is m + 2
    x = _arr(rng, tuple([n] + spatial + rest), dtype)
    bs = np.array(block, np.int32)
    check_reference("SPACE_TO_BATCH_ND", [x, Const(bs), Const(np.array(pads, np.int32))])
    y = _arr(rng, tuple([n * int(np.prod(block))] + [s + 1 for s in spatial] + rest), dtype)
    crops = []
    for (lo, hi), s, b in zip(pads, spatial, block):
        full = (s + 1) * b
        crops.append([min(lo, full), min(hi, full - min(lo, full))])
    check_reference("BATCH_TO_SPACE_ND", [y, Const(bs), Const(np.array(crops, np.int32))])


def test_space_batch_nd_errors() -> None:
    with pytest.raises(ops.OpError, match="not divisible by block_shape 2"):
        one_op_model("SPACE_TO_BATCH_ND", [((1, 3, 4, 1), np.float32), np.array([2, 2], np.int32),
                                           np.zeros((2, 2), np.int32)])
    with pytest.raises(ops.OpError, match="int64; it must be int32"):
        one_op_model("BATCH_TO_SPACE_ND", [((4, 3, 4, 1), np.float32), np.array([2, 2], np.int64),
                                           np.zeros((2, 2), np.int32)])
    with pytest.raises(ops.OpError, match="3-D or 4-D"):
        one_op_model("SPACE_TO_BATCH_ND", [((1, 2, 2, 2, 1), np.float32), np.array([1, 1, 1], np.int32),
                                           np.zeros((3, 2), np.int32)])


@pytest.mark.parametrize("op,inputs", [
    ("FILL", [np.array([2, 3], np.int16), ((), np.float32)]),
    ("TILE", [((2, 3), np.float32), np.array([1, 2], np.int16)]),
    ("MIRROR_PAD", [((2, 3), np.float32), np.zeros((2, 2), np.int8)]),
    ("BROADCAST_ARGS", [((2,), np.int16), ((2,), np.int16)]),
    ("RANGE", [np.array(0, np.int16), np.array(3, np.int16), np.array(1, np.int16)]),
    ("REVERSE_V2", [((2, 3), np.float32), np.array([0], np.int64)]),
])
def test_index_dtypes_litert_rejects(op, inputs) -> None:
    with pytest.raises(ops.OpError, match="int16|int8|int64|type"):
        one_op_model(op, inputs)


# ---- run-time sized outputs through the Interpreter ----------------------------------------------

def _range_model() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    s = g.const("start", np.array(2.5, np.float32))
    lim = g.input("limit", (), np.float32)
    d = g.input("delta", (), np.float32)
    o = g.tensor("out", (0,), np.float32)
    g.op("RANGE", [s, lim, d], [o])
    g.output(o)
    return mb.build()


@pytest.mark.parametrize("limit,delta", [(20.0, 3.0), (-4.0, -0.5), (2.5, 1.0)])
def test_range_with_run_time_bounds(limit, delta) -> None:
    model = _range_model()
    shapes, sigs, outs = [], [], []
    for ours, it in ((False, litert_interpreter(model)),
                     (True, Interpreter(model_content=model, backend="reference"))):
        it.allocate_tensors()
        ins = it.get_input_details()
        it.set_tensor(ins[0]["index"], np.array(limit, np.float32))
        it.set_tensor(ins[1]["index"], np.array(delta, np.float32))
        it.invoke()
        od = it.get_output_details()[0]
        shapes.append(tuple(od["shape"]))
        sigs.append(tuple(od["shape_signature"]))
        # LiteRT's get_tensor raises "Invalid tensor size" on the empty (unallocated) result
        outs.append(it.get_tensor(od["index"]) if ours or np.prod(od["shape"]) else None)
    assert shapes[1] == shapes[0] and sigs[1] == sigs[0]
    if outs[0] is None:
        assert shapes[0] == (0,) and outs[1] is not None and outs[1].shape == (0,)
    else:
        assert outs[1].shape == shapes[1]
        assert_close(outs[1], outs[0])
