"""The Numba backend's data-movement kernels (generators/movement.py) and RESIZE_BILINEAR
(generators/resize.py) against LiteRT's builtin kernels: moved values bit for bit on every element
type (float32, int32, int64, bool, and quantized int8 / uint8 / int16 where the op moves raw
values), float bilinear within the float contract, int8 / int16 bilinear bit for bit; each case
also checks that the step ran on numba_cpu (and the cases that must stay on the reference do)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.oracle import Const, assert_close, litert_run, run_engine, spec_model
from tflite_jit import ops
from tflite_jit.backends.numba_cpu.generators import movement
from tflite_jit.backends.request import KernelRequest, Output, TensorArg, Unsupported
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.ops import expr as E

RNG = np.random.default_rng(7)
X4 = (2, 5, 6, 8)


def f32(shape):
    return RNG.standard_normal(shape).astype(np.float32)


def c32(v):
    return Const(np.array(v, np.int32))


def check(op: str, specs: list, n_outputs: int = 1, backend: str = "numba_cpu", **options) -> list:
    """Ours (default chain) equal to LiteRT, every output; every step ran on `backend`."""
    model, feeds = spec_model(op, specs, n_outputs, **options)
    theirs = litert_run(model, feeds)
    ours, steps = run_engine(model, feeds)
    assert set(steps) == {backend}, steps
    assert len(ours) == len(theirs) == n_outputs
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
        np.testing.assert_array_equal(a, b)
    return ours


# ---- float movement ops ---------------------------------------------------------------------------

@pytest.mark.parametrize("perm", [[0, 3, 1, 2], [0, 2, 1, 3], [3, 2, 1, 0], [1, 0, 2, 3]])
def test_transpose(perm):
    check("TRANSPOSE", [f32(X4), c32(perm)])


def test_transpose_5d():
    check("TRANSPOSE", [f32((2, 3, 1, 4, 5)), c32([4, 0, 3, 2, 1])])


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
def test_concatenation(axis):
    shapes = []
    for k in (3, 1, 2):
        s = list(X4)
        s[axis] = k
        shapes.append(tuple(s))
    check("CONCATENATION", [f32(shapes[0]), Const(f32(shapes[1])), f32(shapes[2])], axis=axis)


def test_concatenation_fused_activation_stays_exact():
    check("CONCATENATION", [f32((1, 4, 4, 3)), f32((1, 4, 4, 5))], axis=3)


@pytest.mark.parametrize("axis", [1, -1, 0])
def test_split(axis):
    check("SPLIT", [c32(axis), f32((4, 6, 8))], 2, num_splits=2)


def test_split_v_negative_and_inferred_size():
    check("SPLIT_V", [f32((3, 10, 4)), c32([2, -1, 5]), c32(-2)], 3, num_splits=3)


def test_unpack_and_pack():
    check("UNPACK", [f32((3, 4, 5))], 4, num=4, axis=1)
    check("PACK", [f32((3, 4)), f32((3, 4)), Const(f32((3, 4)))], values_count=3, axis=-1)


@pytest.mark.parametrize("begin,end,strides,masks", [
    ([0, 1, 0, 2], [2, 4, 6, 8], [1, 1, 2, 3], {}),
    ([0, 4, 5, 0], [2, 0, 0, 8], [1, -1, -2, 1], {}),
    ([1, 0, 0, 0], [2, 5, 6, 8], [1, 2, 1, 1], dict(shrink_axis_mask=1, end_mask=14)),
    ([0, -3, 0, 0], [0, -1, 0, 0], [1, 1, 1, 1], dict(begin_mask=13, end_mask=13)),
])
def test_strided_slice(begin, end, strides, masks):
    check("STRIDED_SLICE", [f32(X4), c32(begin), c32(end), c32(strides)], **masks)


def test_slice():
    check("SLICE", [f32(X4), c32([1, 1, 0, 3]), c32([-1, 3, 6, 4])])


@pytest.mark.parametrize("axis,idx,bd", [(2, [[3, 1], [0, 0]], 0), (-1, [7, 0, 3], 0), (0, [1], 0),
                                         (1, [[0, 4, 2], [1, 1, 3]], 1)])
def test_gather_constant_indices(axis, idx, bd):
    check("GATHER", [f32(X4), c32(idx)], axis=axis, batch_dims=bd)


def test_gather_runtime_indices_use_the_checked_kernel():
    """Indices known only at invoke run generators/gather.py's bounds-checked loop (LiteRT
    fails out-of-range ones; tests/test_loops.py checks that error)."""
    check("GATHER", [f32(X4), np.array([1, 0], np.int32)], axis=1)


def test_gather_nd_constant_indices():
    check("GATHER_ND", [f32(X4), c32([[1, 2], [0, 4], [1, 0]])])


@pytest.mark.parametrize("op", ["DEPTH_TO_SPACE", "SPACE_TO_DEPTH"])
def test_depth_space(op):
    x = f32((2, 4, 6, 8)) if op == "SPACE_TO_DEPTH" else f32((2, 3, 5, 8))
    check(op, [x], block_size=2)


@pytest.mark.parametrize("mode", ["REFLECT", "SYMMETRIC"])
def test_mirror_pad(mode):
    check("MIRROR_PAD", [f32(X4), c32([[0, 1], [2, 3], [1, 2], [0, 0]])], mode=mode)


@pytest.mark.parametrize("flags", [{}, dict(align_corners=True), dict(half_pixel_centers=True)])
@pytest.mark.parametrize("size", [[10, 12], [3, 4], [7, 5]])
def test_resize_nearest(flags, size):
    check("RESIZE_NEAREST_NEIGHBOR", [f32(X4), c32(size)], **flags)


def test_tile_broadcast_reverse():
    check("TILE", [f32((2, 3, 4)), c32([2, 1, 3])])
    # LiteRT registers BROADCAST_TO from op version 2 (one_op_model writes 1)
    x = f32((3, 1, 4))
    mb = ModelBuilder()
    g = mb.subgraph()
    y = g.tensor("y", (2, 3, 5, 4), np.float32)
    g.op("BROADCAST_TO", [g.input("x", x.shape, np.float32), g.const("s", np.array([2, 3, 5, 4], np.int32))],
         [y], version=2)
    g.output(y)
    qcheck(mb.build(), [x])
    check("REVERSE_V2", [f32(X4), c32([1, 2])])


def test_batch_to_space():
    check("BATCH_TO_SPACE_ND", [f32((4, 3, 3, 2)), c32([2, 2]), c32([[0, 1], [1, 0]])])


def test_reshape_of_a_graph_input_is_a_copy():
    """RESHAPE of an intermediate is a view; of a graph input to a graph output it is a step."""
    check("RESHAPE", [f32(X4), c32([10, 48])])


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_, np.uint8, np.int8, np.int16])
def test_plain_integer_types(dtype):
    x = RNG.integers(0, 2 if dtype is np.bool_ else 100, X4).astype(dtype)
    check("TRANSPOSE", [x, c32([0, 2, 3, 1])])
    check("CONCATENATION", [x, x], axis=1)


# ---- quantized ------------------------------------------------------------------------------------

QTYPES = [np.int8, np.uint8, np.int16]


def qrand(shape, dtype):
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max + 1, shape).astype(dtype)


def qmodel(op, xs, outs, consts=(), **options) -> bytes:
    """xs: [(shape, dtype, (scale, zp))] graph inputs, then `consts` (arrays); outs likewise."""
    mb = ModelBuilder()
    g = mb.subgraph()
    ids = [g.input(f"x{k}", s, d, scale=q[0], zero_point=q[1]) for k, (s, d, q) in enumerate(xs)]
    ids += [g.const(f"c{k}", c) for k, c in enumerate(consts)]
    ys = [g.tensor(f"y{k}", s, d, scale=q[0], zero_point=q[1]) for k, (s, d, q) in enumerate(outs)]
    g.op(op, ids, ys, **options)
    for y in ys:
        g.output(y)
    return mb.build()


def qcheck(model: bytes, feeds, backend: str = "numba_cpu") -> None:
    theirs = litert_run(model, feeds)
    ours, steps = run_engine(model, feeds)
    assert set(steps) == {backend}, steps
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def qp(dtype, scale=0.05, zp=3):
    return (scale, 0) if dtype is np.int16 else (scale, zp)


@pytest.mark.parametrize("dtype", QTYPES)
def test_quantized_concatenation_same_params(dtype):
    q = qp(dtype)
    a, b = qrand((1, 4, 4, 3), dtype), qrand((1, 4, 4, 5), dtype)
    m = qmodel("CONCATENATION", [(a.shape, dtype, q), (b.shape, dtype, q)], [((1, 4, 4, 8), dtype, q)], axis=3)
    qcheck(m, [a, b])


def test_uint8_concatenation_that_rescales_stays_on_reference():
    a, b = qrand((1, 4, 4, 3), np.uint8), qrand((1, 4, 4, 5), np.uint8)
    m = qmodel("CONCATENATION", [(a.shape, np.uint8, (0.05, 3)), (b.shape, np.uint8, (0.1, 7))],
               [((1, 4, 4, 8), np.uint8, (0.08, 5))], axis=3)
    qcheck(m, [a, b], backend="reference")


@pytest.mark.parametrize("dtype", QTYPES)
def test_quantized_moves(dtype):
    q = qp(dtype)
    x = qrand((1, 6, 6, 4), dtype)
    inp = [(x.shape, dtype, q)]
    qcheck(qmodel("TRANSPOSE", inp, [((1, 4, 6, 6), dtype, q)], [np.array([0, 3, 1, 2], np.int32)]), [x])
    qcheck(qmodel("MIRROR_PAD", inp, [((1, 9, 8, 4), dtype, q)],
                  [np.array([[0, 0], [1, 2], [1, 1], [0, 0]], np.int32)], mode="SYMMETRIC"), [x])
    if dtype is not np.int16:  # LiteRT's DEPTH_TO_SPACE has no int16 kernel
        qcheck(qmodel("DEPTH_TO_SPACE", inp, [((1, 12, 12, 1), dtype, q)], block_size=2), [x])
    qcheck(qmodel("STRIDED_SLICE", inp, [((1, 3, 6, 4), dtype, q)],
                  [np.array(v, np.int32) for v in ([0, 0, 0, 0], [1, 6, 6, 4], [1, 2, 1, 1])]), [x])
    axis = np.array(3, np.int32)
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", x.shape, dtype, scale=q[0], zero_point=q[1])
    ys = [g.tensor(f"y{k}", (1, 6, 6, 2), dtype, scale=q[0], zero_point=q[1]) for k in range(2)]
    g.op("SPLIT", [g.const("axis", axis), xi], ys, num_splits=2)
    for y in ys:
        g.output(y)
    qcheck(mb.build(), [x])


@pytest.mark.parametrize("dtype", QTYPES)
@pytest.mark.parametrize("flags", [{}, dict(align_corners=True), dict(half_pixel_centers=True)])
def test_quantized_resize_nearest(dtype, flags):
    q = qp(dtype)
    x = qrand((1, 5, 7, 3), dtype)
    m = qmodel("RESIZE_NEAREST_NEIGHBOR", [(x.shape, dtype, q)], [((1, 11, 9, 3), dtype, q)],
               [np.array([11, 9], np.int32)], **flags)
    qcheck(m, [x])


# ---- RESIZE_BILINEAR ------------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [{}, dict(align_corners=True), dict(half_pixel_centers=True)])
@pytest.mark.parametrize("shape,size", [((1, 8, 8, 16), [16, 16]), ((2, 5, 7, 3), [11, 4]),
                                        ((1, 9, 6, 1), [4, 3]), ((1, 1, 1, 5), [3, 2])])
def test_resize_bilinear_float(flags, shape, size):
    model, feeds = spec_model("RESIZE_BILINEAR", [f32(shape), c32(size)], **flags)
    theirs = litert_run(model, feeds)
    ours, steps = run_engine(model, feeds)
    assert steps == ["numba_cpu"]
    assert_close(ours[0], theirs[0], what="RESIZE_BILINEAR")


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
@pytest.mark.parametrize("flags", [{}, dict(align_corners=True), dict(half_pixel_centers=True)])
@pytest.mark.parametrize("shape,size", [((1, 8, 8, 16), [16, 16]), ((2, 5, 7, 3), [11, 4]), ((1, 9, 6, 2), [4, 3])])
def test_resize_bilinear_quantized(dtype, flags, shape, size):
    q = qp(dtype)
    x = qrand(shape, dtype)
    m = qmodel("RESIZE_BILINEAR", [(shape, dtype, q)], [((shape[0], *size, shape[3]), dtype, q)],
               [np.array(size, np.int32)], **flags)
    qcheck(m, [x])


def test_resize_bilinear_uint8_stays_on_reference():
    x = qrand((1, 4, 4, 3), np.uint8)
    m = qmodel("RESIZE_BILINEAR", [(x.shape, np.uint8, (0.05, 3))], [((1, 8, 8, 3), np.uint8, (0.05, 3))],
               [np.array([8, 8], np.int32)])
    qcheck(m, [x], backend="reference")


# ---- the generator itself ----------------------------------------------------------------------------

def _req(op, inputs, outs, **options):
    attrs = ops.get(op).parse(options)
    return KernelRequest(op, attrs, inputs, [], [Output(E.Var(0), TensorArg(s, np.dtype(np.float32))) for s in outs])


def test_concat_channels_is_one_contiguous_copy_per_pixel_and_input():
    """Axes contiguous in source and destination merge: each input is one loop over pixels with
    a literal-bounded contiguous inner copy, no index tables."""
    f = np.dtype(np.float32)
    req = _req("CONCATENATION", [TensorArg((1, 4, 4, 3), f), TensorArg((1, 4, 4, 5), f)], [(1, 4, 4, 8)], axis=3)
    src = movement.generate_movement(req)
    assert [a.kind for a in src.args] == ["input", "input", "output"]
    assert "for i1 in range(3):" in src.source and "for i1 in range(5):" in src.source
    assert "for i0 in range(16):" in src.source


def test_epilogue_and_runtime_values_are_refused():
    f = np.dtype(np.float32)
    req = _req("TRANSPOSE", [TensorArg((2, 3), f), TensorArg((2,), np.dtype(np.int32))], [(3, 2)])
    with pytest.raises(Unsupported, match="run time"):
        movement.generate_movement(req)


# ---- PAD / PADV2 (generators/qpad.py) ----------------------------------------------------------------

PADS = np.array([[0, 1], [2, 0], [1, 3], [0, 0]], np.int32)


@pytest.mark.parametrize("dtype,value", [(np.float32, 1.5), (np.float32, -0.0), (np.int32, -7), (np.int64, 9)])
def test_padv2_plain(dtype, value):
    x = f32(X4).astype(dtype) if dtype is np.float32 else RNG.integers(-50, 50, X4).astype(dtype)
    check("PADV2", [x, Const(PADS), Const(np.array([value], dtype))])


@pytest.mark.parametrize("dtype", QTYPES)
@pytest.mark.parametrize("op", ["PAD", "PADV2"])
def test_quantized_pad(dtype, op):
    q = qp(dtype, zp=137 if dtype is np.uint8 else -9)
    x = qrand((1, 5, 6, 4), dtype)
    mb = ModelBuilder()
    g = mb.subgraph()
    ins = [g.input("x", x.shape, dtype, scale=q[0], zero_point=q[1]), g.const("p", PADS)]
    if op == "PADV2":
        ins.append(g.const("v", np.array([np.iinfo(dtype).max - 3], dtype), scale=q[0], zero_point=q[1]))
    y = g.tensor("y", (1, 8, 7, 4), dtype, scale=q[0], zero_point=q[1])
    g.op(op, ins, [y])
    g.output(y)
    qcheck(mb.build(), [x])


# ---- SPACE_TO_BATCH_ND with padding (generators/space_batch.py) -----------------------------------

@pytest.mark.parametrize("shape,block,pads", [
    ((1, 5, 6, 3), [2, 2], [[1, 0], [0, 2]]), ((2, 6, 6, 4), [2, 3], [[1, 1], [0, 3]]),
    ((1, 4, 4, 2), [2, 2], [[0, 0], [0, 0]]), ((1, 9, 7, 5), [3, 2], [[3, 3], [1, 2]])])
def test_space_to_batch_with_padding_is_compiled(shape, block, pads):
    """DeepLab's atrous convolutions: SPACE_TO_BATCH_ND pads, which the copy map refuses."""
    check("SPACE_TO_BATCH_ND", [f32(shape), c32(block), c32(pads)])


@pytest.mark.parametrize("dtype", QTYPES)
def test_quantized_space_to_batch_pads_with_the_zero_point(dtype):
    q = qp(dtype, zp=-7 if dtype is np.int8 else 9)
    x = qrand((1, 5, 6, 3), dtype)
    block, pads = np.array([2, 2], np.int32), np.array([[1, 0], [0, 2]], np.int32)
    m = qmodel("SPACE_TO_BATCH_ND", [(x.shape, dtype, q)], [((4, 3, 4, 3), dtype, q)], consts=(block, pads))
    qcheck(m, [x])
