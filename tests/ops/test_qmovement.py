"""Quantized data movement against LiteRT's builtin kernels, bit for bit: the raw-moving ops on
int8/uint8/int16 tensors, RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR (integer and uint8 float
paths), CONCATENATION (uint8 rescaling, int8/int16 parameter checks), PAD/PADV2/MIRROR_PAD,
SPACE_TO_BATCH_ND (zero-point padding) and the Prepare-time parameter checks LiteRT makes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle import assert_bit_exact, assert_both_reject, litert_run, run_engine
from tflite_jit import ops
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.schema import options_table_for, table_defaults

HYP = settings(max_examples=25, deadline=None)
DTYPES = [np.int8, np.uint8, np.int16]


def qmodel(op, inputs, q, out_q=None, out=None, version=1, **options) -> bytes:
    """One-op model. inputs: ("in", shape, dtype, (scale, zp) | None) or ("const", array, q).
    Output shapes come from our shape rule (or `out`); integer outputs other than int32/int64
    get `out_q` (default `q`)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    ids = []
    for spec in inputs:
        qq = spec[3] if spec[0] == "in" else (spec[2] if len(spec) > 2 else None)
        kw = {} if qq is None else {"scale": qq[0], "zero_point": qq[1]}
        if spec[0] == "in":
            ids.append(g.input(f"x{len(ids)}", spec[1], spec[2], **kw))
        else:
            ids.append(g.const(f"c{len(ids)}", spec[1], **kw))
    if out is None:
        opdef = ops.get(op)
        found = options_table_for(op)
        raw = {**({k: v for k, v in table_defaults(found[1]).items() if v is not None} if found else {}),
               **options}
        ts = [g.sg.tensors[i] for i in ids]
        out = opdef.infer(ops.InferCtx(op, opdef.parse(raw), [t.shape for t in ts],
                                       [np.dtype(t.dtype) for t in ts], [t.data for t in ts],
                                       [t.name for t in ts]))
    oq = out_q or q
    outs = []
    for j, (shape, dt) in enumerate(out):
        quantized = np.dtype(dt) in (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))
        outs.append(g.tensor(f"y{j}", shape, dt, **({"scale": oq[0], "zero_point": oq[1]} if quantized else {})))
    g.op(op, ids, outs, version=version, **options)
    for o in outs:
        g.output(o)
    return mb.build()


def rand(rng, shape, dtype):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, size=shape).astype(dtype)


def qp(dtype, scale=0.05, zp=3):
    return (scale, 0) if dtype is np.int16 else (scale, zp)


def i32(v):
    return ("const", np.array(v, np.int32))


# ---- ops that move raw values -----------------------------------------------------------------------

def _raw_cases(dt):
    q = qp(dt)
    x = lambda s: ("in", s, dt, q)  # noqa: E731
    b = ("in", None, np.bool_, None)
    return {
        "RESHAPE": ([x((2, 3, 4)), i32([6, 4])], {}),
        "SQUEEZE": ([x((2, 1, 4))], {"squeeze_dims": [1]}),
        "EXPAND_DIMS": ([x((2, 4)), i32(1)], {}),
        "TRANSPOSE": ([x((2, 3, 4)), i32([2, 0, 1])], {}),
        "GATHER": ([x((5, 3)), i32([4, 0, 2, 4])], {"axis": 0}),
        "GATHER_ND": ([x((5, 3)), i32([[4, 1], [0, 2]])], {}),
        "SLICE": ([x((5, 3)), i32([1, 1]), i32([3, 2])], {}),
        "STRIDED_SLICE": ([x((5, 6)), i32([0, 1]), i32([5, 6]), i32([2, 2])], {}),
        "SPLIT": ([i32(1), x((2, 6))], {"num_splits": 3}),
        "SPLIT_V": ([x((2, 6)), i32([1, 5]), i32(1)], {"num_splits": 2}),
        "PACK": ([x((2, 3)), x((2, 3))], {"values_count": 2, "axis": 1}),
        "UNPACK": ([x((2, 3))], {"num": 3, "axis": 1}),
        "TILE": ([x((2, 3)), i32([2, 3])], {}),
        "BROADCAST_TO": ([x((1, 3)), i32([4, 3])], {"version": 2}),
        "SPACE_TO_DEPTH": ([x((1, 4, 4, 2))], {"block_size": 2}),
        "DEPTH_TO_SPACE": ([x((1, 2, 2, 8))], {"block_size": 2}),
        "BATCH_TO_SPACE_ND": ([x((4, 2, 2, 1)), i32([2, 2]), i32([[0, 0], [0, 1]])], {}),
        "SPACE_TO_BATCH_ND": ([x((1, 4, 3, 1)), i32([2, 2]), i32([[1, 1], [0, 1]])], {}),
        "REVERSE_V2": ([x((3, 4)), i32([1])], {}),
        "SELECT": ([("in", (3, 4), np.bool_, None), x((3, 4)), x((3, 4))], {}),
        "SELECT_V2": ([("in", (3, 1), np.bool_, None), x((1, 4)), x((3, 4))], {}),
        "FILL": ([i32([2, 3]), x(())], {}),
        "PAD": ([x((2, 3)), i32([[1, 1], [0, 2]])], {}),
        "PADV2": ([x((2, 3)), i32([[1, 1], [0, 2]]), ("const", np.array(7, dt), q)], {}),
        "MIRROR_PAD": ([x((3, 3)), i32([[1, 1], [0, 2]])], {"mode": 0}),
        "MAXIMUM": ([x((2, 3)), x((3,))], {}),
        "MINIMUM": ([x((2, 3)), x((3,))], {}),
    }, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", list(_raw_cases(np.int8)[0]))
def test_raw_moving_ops_bit_exact(op, dtype):
    rng = np.random.default_rng(len(op) * 7 + np.dtype(dtype).itemsize)
    inputs, options = _raw_cases(dtype)[0][op]
    options = dict(options)
    version = options.pop("version", 1)
    xs = [(rng.random(s[1]) > 0.5) if s[2] is np.bool_ else rand(rng, s[1], dtype)
          for s in inputs if s[0] == "in"]
    if op in ("SPACE_TO_DEPTH", "DEPTH_TO_SPACE") and dtype is np.int16:
        # LiteRT has no int16 kernel for these: both refuse the model at allocate time
        shape = (1, 2, 2, 8) if op == "SPACE_TO_DEPTH" else (1, 4, 4, 2)
        m = qmodel(op, inputs, qp(dtype), out=[(shape, np.dtype(dtype))], **options)
        return assert_both_reject(m, xs, "int16")
    m = qmodel(op, inputs, qp(dtype), version=version, **options)
    assert_bit_exact(m, xs, backends=(None, "reference"))


def test_space_to_batch_pads_with_zero_point():
    """LiteRT pads quantized SPACE_TO_BATCH_ND with the zero point (0.0 in real terms)."""
    q = (0.1, -7)
    m = qmodel("SPACE_TO_BATCH_ND", [("in", (1, 2, 3, 1), np.int8, q), i32([2, 2]), i32([[1, 1], [0, 1]])], q)
    x = np.arange(6, dtype=np.int8).reshape(1, 2, 3, 1)
    out = run_engine(m, [x])[0][0]
    assert (out == -7).sum() == out.size - 6
    assert_bit_exact(m, [x])


# ---- RESIZE ------------------------------------------------------------------------------------------

@HYP
@given(op=st.sampled_from(["RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"]), dtype=st.sampled_from(DTYPES),
       flags=st.sampled_from([(False, False), (True, False), (False, True), (True, True)]),
       ih=st.integers(1, 7), iw=st.integers(1, 7), oh=st.integers(1, 14), ow=st.integers(1, 14),
       seed=st.integers(0, 2**31 - 1))
def test_resize(op, dtype, flags, ih, iw, oh, ow, seed):
    if op == "RESIZE_BILINEAR" and flags == (True, True):
        flags = (False, True)
    rng = np.random.default_rng(seed)
    q = qp(dtype)
    m = qmodel(op, [("in", (2, ih, iw, 3), dtype, q), i32([oh, ow])], q,
               out=[((2, oh, ow, 3), np.dtype(dtype))], align_corners=flags[0], half_pixel_centers=flags[1])
    assert_bit_exact(m, [rand(rng, (2, ih, iw, 3), dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("half", [False, True])
def test_resize_bilinear_rounding_ties(dtype, half):
    """2x and 4x upsampling of alternating extremes puts many outputs exactly on .5 (the integer
    path rounds them half away from zero, the uint8 path truncates after +0.5)."""
    info = np.iinfo(dtype)
    x = np.where(np.indices((1, 4, 4, 2)).sum(0) % 2 == 0, info.min + 1, info.max).astype(dtype)
    x[..., 1] = np.where(x[..., 1] > 0, 3, -3) if dtype is not np.uint8 else np.where(x[..., 1] > 100, 3, 0)
    for size in ([8, 8], [16, 16], [6, 10]):
        m = qmodel("RESIZE_BILINEAR", [("in", x.shape, dtype, qp(dtype)), i32(size)], qp(dtype),
                   out=[((1, *size, 2), np.dtype(dtype))], half_pixel_centers=half)
        assert_bit_exact(m, [x], backends=(None, "reference"))


# ---- CONCATENATION ------------------------------------------------------------------------------------

@HYP
@given(ratio=st.sampled_from([0.5, 1.5, 0.25, 2.0, 0.37, 1.0, 3.1]), z1=st.integers(0, 255), zo=st.integers(0, 255),
       axis=st.sampled_from([0, 1, -1]), seed=st.integers(0, 2**31 - 1))
def test_concat_uint8_rescales(ratio, z1, zo, axis, seed):
    rng = np.random.default_rng(seed)
    so = float(np.float32(rng.uniform(0.01, 0.1)))
    shapes = [(3, 4, 5), (3, 4, 5)]
    shapes[1] = tuple(d * (2 if i == axis % 3 else 1) for i, d in enumerate(shapes[1]))
    q_in1 = (float(np.float32(so * ratio)), z1)
    m = qmodel("CONCATENATION", [("in", shapes[0], np.uint8, (so, zo)), ("in", shapes[1], np.uint8, q_in1)],
               (so, zo), axis=axis)
    xs = [rand(rng, shapes[0], np.uint8), rand(rng, shapes[1], np.uint8)]
    assert_bit_exact(m, xs, backends=(None, "reference"))


@pytest.mark.parametrize("dtype", [np.int8, np.int16])
def test_concat_int8_int16_copy(dtype):
    rng = np.random.default_rng(0)
    q = qp(dtype, 0.02, -4)
    m = qmodel("CONCATENATION", [("in", (2, 3), dtype, q), ("in", (2, 5), dtype, q)], q, axis=1)
    assert_bit_exact(m, [rand(rng, (2, 3), dtype), rand(rng, (2, 5), dtype)])


def test_concat_int8_needs_equal_params():
    m = qmodel("CONCATENATION", [("in", (2, 3), np.int8, (0.02, 1)), ("in", (2, 3), np.int8, (0.03, 1))],
               (0.02, 1), axis=0)
    assert_both_reject(m, [np.zeros((2, 3), np.int8)] * 2, "does not rescale")


def test_concat_int16_needs_zero_zero_point():
    m = qmodel("CONCATENATION", [("in", (2, 3), np.int16, (0.02, 3)), ("in", (2, 3), np.int16, (0.02, 3))],
               (0.02, 3), axis=0)
    assert_both_reject(m, [np.zeros((2, 3), np.int16)] * 2, "zero point 0")


# ---- Prepare-time parameter checks --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["PADV2", "MIRROR_PAD", "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "PACK",
                                "UNPACK", "EXPAND_DIMS", "FILL"])
def test_parameter_mismatch_rejected(op, dtype):
    cases, _ = _raw_cases(dtype)
    inputs, options = cases[op]
    options = dict(options)
    q, other = qp(dtype), qp(dtype, 0.03, -5 if dtype is np.int8 else 100)
    if op == "PADV2":  # the constant's parameters must equal the output's
        inputs = [inputs[0], inputs[1], ("const", np.array(7, dtype), other)]
        m = qmodel(op, inputs, q, **options)
    else:
        m = qmodel(op, inputs, q, out_q=other, **options)
    rng = np.random.default_rng(0)
    xs = [rand(rng, s[1], dtype) for s in inputs if s[0] == "in"]
    assert_both_reject(m, xs, "requires them to be equal")


def test_resize_rejects_mixed_types():
    m = qmodel("RESIZE_BILINEAR", [("in", (1, 2, 2, 1), np.int8, (0.1, 0)), i32([4, 4])], (0.1, 0),
               out=[((1, 4, 4, 1), np.dtype(np.uint8))])
    with pytest.raises(RuntimeError):
        run_engine(m, [np.zeros((1, 2, 2, 1), np.int8)])


def test_resize_rejects_bad_size():
    m = qmodel("RESIZE_NEAREST_NEIGHBOR", [("in", (1, 2, 2, 1), np.int8, (0.1, 0)), i32([0, 4])], (0.1, 0),
               out=[((1, 1, 4, 1), np.dtype(np.int8))])
    with pytest.raises((RuntimeError, ValueError), match=">= 1"):
        run_engine(m, [np.zeros((1, 2, 2, 1), np.int8)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [(2, 82), (3, 123), (2, 110)])
def test_resize_nearest_fixed_point_index(dtype, size):
    """LiteRT's optimized 8-bit kernel indexes with a 16.16 fixed-point scale, which differs from
    the float rule (int16 keeps) at these sizes."""
    i, o = size
    m = qmodel("RESIZE_NEAREST_NEIGHBOR", [("in", (1, i, i, 1), dtype, qp(dtype)), i32([o, o])], qp(dtype),
               out=[((1, o, o, 1), np.dtype(dtype))])
    assert_bit_exact(m, [np.arange(i * i).reshape(1, i, i, 1).astype(dtype)], backends=(None, "reference"))


@pytest.mark.parametrize("op", ["RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "CONCATENATION", "PADV2", "MIRROR_PAD",
                                "SPACE_TO_BATCH_ND", "PACK", "FILL"])
def test_float_path_unchanged(op):
    """The ops given integer kernels here still run their float definition on float32."""
    rng = np.random.default_rng(0)
    f = np.float32
    cases = {
        "RESIZE_BILINEAR": ([("in", (1, 3, 4, 2), f, None), i32([5, 7])], {}),
        "RESIZE_NEAREST_NEIGHBOR": ([("in", (1, 3, 4, 2), f, None), i32([5, 7])], {}),
        "CONCATENATION": ([("in", (2, 3), f, None), ("in", (2, 2), f, None)], {"axis": 1}),
        "PADV2": ([("in", (2, 3), f, None), i32([[1, 1], [0, 2]]), ("const", np.array(1.5, f))], {}),
        "MIRROR_PAD": ([("in", (3, 3), f, None), i32([[1, 1], [0, 2]])], {"mode": 1}),
        "SPACE_TO_BATCH_ND": ([("in", (1, 4, 3, 1), f, None), i32([2, 2]), i32([[1, 1], [0, 1]])], {}),
        "PACK": ([("in", (2, 3), f, None), ("in", (2, 3), f, None)], {"values_count": 2, "axis": 0}),
        "FILL": ([i32([2, 3]), ("in", (), f, None)], {}),
    }
    inputs, options = cases[op]
    m = qmodel(op, inputs, None, **options)
    xs = [rng.standard_normal(s[1]).astype(f) for s in inputs if s[0] == "in"]
    theirs, (ours, _) = litert_run(m, xs), run_engine(m, xs)
    for o, t in zip(ours, theirs):
        assert o.dtype == t.dtype
        np.testing.assert_allclose(o, t, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zeros_like_quantized_rejected_by_both(dtype):
    """LiteRT's ZEROS_LIKE has no 8/16-bit kernel (it fails at invoke); tflite_jit refuses at
    allocate time."""
    m = qmodel("ZEROS_LIKE", [("in", (2, 3), dtype, qp(dtype))], qp(dtype), out=[((2, 3), np.dtype(dtype))])
    assert_both_reject(m, [np.zeros((2, 3), dtype)], "ZEROS_LIKE")
