"""ops.shape: shape rules and differential tests of the reference kernels against LiteRT's builtin
kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES). Movement ops must match exactly, for every dtype."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.oracle import (
    Const,
    assert_close,
    check_reference,
    declared_op_model,
    infer,
    litert_run,
    one_op_model,
)
from tflite_jit.ops import shape as shape_ops
from tflite_jit.ops.base import Dynamic, OpError, PatternKind, get

HYP = settings(max_examples=25, deadline=None)
DTYPES = [np.float32, np.int32, np.int64, np.bool_, np.int8, np.uint8, np.int16, np.float16]


def data(rng, shape, dtype) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return np.asarray(rng.random(shape) < 0.5)
    if dt.kind == "f":
        return np.asarray(rng.standard_normal(shape) * 10).astype(dt)
    info = np.iinfo(dt)
    return np.asarray(rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True))


shapes = st.lists(st.integers(1, 5), min_size=0, max_size=5).map(tuple)
seeds = st.integers(0, 2**31 - 1)
dtypes = st.sampled_from(DTYPES)


def test_registry_kinds_and_shape_inputs():
    expect = {"RESHAPE": (1,), "SQUEEZE": (), "EXPAND_DIMS": (1,), "TRANSPOSE": (1,),
              "CONCATENATION": (), "PAD": (1,), "PADV2": (1,), "STRIDED_SLICE": (1, 2, 3),
              "SLICE": (1, 2), "GATHER": (), "SHAPE": (), "PACK": (), "UNPACK": ()}
    for name, si in expect.items():
        opdef = get(name)
        assert opdef.shape_inputs == si, name
        assert opdef.kind == (PatternKind.OPAQUE if name == "SHAPE" else PatternKind.INJECTIVE)
        assert opdef.cost([(2, 3)], [(2, 3)], opdef.parse({})).bytes > 0
        hash(opdef.parse({}))


# ---- RESHAPE -------------------------------------------------------------------------------------

@st.composite
def reshape_case(draw):
    shape = draw(shapes)
    n = int(np.prod(shape))
    # factor n into a random target
    target, rest = [], n
    for _ in range(draw(st.integers(0, 4))):
        divs = [d for d in range(1, rest + 1) if rest % d == 0]
        d = draw(st.sampled_from(divs))
        target.append(d)
        rest //= d
    target.append(rest)
    draw(st.randoms()).shuffle(target)
    if draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return shape, target


@HYP
@given(case=reshape_case(), how=st.sampled_from(["tensor", "options", "both"]), dtype=dtypes,
       seed=seeds)
def test_reshape(case, how, dtype, seed):
    shape, target = case
    x = data(np.random.default_rng(seed), shape, dtype)
    if how == "options":
        check_reference("RESHAPE", [x], new_shape=target)
    elif how == "tensor":
        check_reference("RESHAPE", [x, Const(np.array(target, np.int32))])
    else:  # the tensor wins over the option
        check_reference("RESHAPE", [x, Const(np.array(target, np.int32))], new_shape=[int(np.prod(shape))])


def test_reshape_sources_and_legacy_forms():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    # int64 or 2-D shape tensors are ignored by LiteRT: the option decides
    out = check_reference("RESHAPE", [x, Const(np.array([4, 6], np.int64))], new_shape=[24])
    assert out[0].shape == (24,)
    out = check_reference("RESHAPE", [x, Const(np.array([[4, 6]], np.int32))], new_shape=[6, 4])
    assert out[0].shape == (6, 4)
    one = np.ones(1, np.float32)
    assert check_reference("RESHAPE", [one], new_shape=[0])[0].shape == ()  # legacy [0] = scalar
    assert check_reference("RESHAPE", [one, Const(np.zeros(0, np.int32))])[0].shape == ()
    # a shape known only at run time: infer() says Dynamic, the kernel still runs
    with pytest.raises(Dynamic):
        infer("RESHAPE", [x, np.array([6, -1], np.int32)])
    shp = np.array([6, -1], np.int32)
    theirs = litert_run(declared_op_model("RESHAPE", [x, shp], [((6, 4), np.float32)]), [x, shp])
    ours = get("RESHAPE").reference([x, shp], get("RESHAPE").parse({}))
    assert_close(ours[0], theirs[0])


@pytest.mark.parametrize("in_shape,target", [((0, 3, 4), [0, -1]), ((0, 3, 4), [2, 0, -1]),
                                             ((0, 3, 4), [5, 0, -1]), ((0,), [0, -1]),
                                             ((0, 6), [4, 0, -1]), ((0, 3), [-1, 3])])
def test_reshape_empty(in_shape, target):
    check_reference("RESHAPE", [np.zeros(in_shape, np.float32), Const(np.array(target, np.int32))])


def test_reshape_errors():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(OpError, match=r"num_input_elements != num_output_elements \(12 != 10\)"):
        infer("RESHAPE", [x, Const(np.array([5, 2], np.int32))])
    with pytest.raises(OpError, match="num_input_elements != num_output_elements"):
        infer("RESHAPE", [x, Const(np.array([5, -1], np.int32))])
    with pytest.raises(OpError, match="more than one -1"):
        infer("RESHAPE", [x, Const(np.array([-1, -1], np.int32))])
    with pytest.raises(OpError, match="negative"):
        infer("RESHAPE", [x, Const(np.array([-2, -6], np.int32))])
    with pytest.raises(OpError, match="num_input_elements"):
        infer("RESHAPE", [x])  # no shape anywhere: a scalar
    with pytest.raises(RuntimeError, match="num_input_elements != num_output_elements"):
        litert_run(_bad_reshape_model(), [x])


def _bad_reshape_model() -> bytes:
    return declared_op_model("RESHAPE", [np.zeros((4, 3), np.float32), Const(np.array([5, 2], np.int32))],
                              [((5, 2), np.float32)])


# ---- SQUEEZE / EXPAND_DIMS -----------------------------------------------------------------------

@HYP
@given(shape=st.lists(st.integers(1, 3), min_size=0, max_size=6).map(tuple), dtype=dtypes,
       seed=seeds, data_=st.data())
def test_squeeze(shape, dtype, seed, data_):
    ones = [i for i, d in enumerate(shape) if d == 1]
    dims = data_.draw(st.lists(st.sampled_from(ones), max_size=len(ones)) if ones else st.just([]))
    dims = [d - len(shape) if data_.draw(st.booleans()) else d for d in dims]
    x = data(np.random.default_rng(seed), shape, dtype)
    check_reference("SQUEEZE", [x], squeeze_dims=dims)


@HYP
@given(shape=shapes, dtype=dtypes, seed=seeds, data_=st.data(),
       axis_dtype=st.sampled_from([np.int32, np.int64]))
def test_expand_dims(shape, dtype, seed, data_, axis_dtype):
    r = len(shape)
    axis = data_.draw(st.integers(-r - 1, r))
    x = data(np.random.default_rng(seed), shape, dtype)
    ax = np.array([axis] if data_.draw(st.booleans()) else axis, axis_dtype)
    out = check_reference("EXPAND_DIMS", [x, Const(ax)])
    assert out[0].shape == np.expand_dims(x, axis).shape


def test_squeeze_expand_errors():
    x = np.zeros((1, 3, 1), np.float32)
    with pytest.raises(OpError, match="SQUEEZE: cannot squeeze dimension 1 of 't0'.*size is 3"):
        infer("SQUEEZE", [x], squeeze_dims=[1])
    with pytest.raises(OpError, match="out of range"):
        infer("SQUEEZE", [x], squeeze_dims=[-4])
    assert infer("SQUEEZE", [x])[0][0] == (3,)
    assert infer("SQUEEZE", [x], squeeze_dims=[0, 0])[0][0] == (3, 1)
    with pytest.raises(OpError, match="axis 4 is out of range"):
        infer("EXPAND_DIMS", [x, Const(np.array(4, np.int32))])
    with pytest.raises(OpError, match="exactly one value"):
        infer("EXPAND_DIMS", [x, Const(np.array([1, 2], np.int32))])
    with pytest.raises(OpError, match="float32"):
        infer("EXPAND_DIMS", [x, Const(np.array(1, np.float32))])
    with pytest.raises(Dynamic):
        infer("EXPAND_DIMS", [x, np.array(1, np.int32)])


# ---- TRANSPOSE -----------------------------------------------------------------------------------

@HYP
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=6).map(tuple), dtype=dtypes,
       seed=seeds, data_=st.data())
def test_transpose(shape, dtype, seed, data_):
    r = len(shape)
    perm = data_.draw(st.permutations(list(range(r))))
    perm = [p - r if data_.draw(st.booleans()) else p for p in perm]
    x = data(np.random.default_rng(seed), shape, dtype)
    out = check_reference("TRANSPOSE", [x, Const(np.array(perm, np.int32).reshape(r))])
    np.testing.assert_array_equal(out[0], np.transpose(x, [p % r for p in perm]))


def test_transpose_scalar():
    # LiteRT's kernel leaves a rank-0 output uninitialised; ours is the identity
    x = np.float32(3.5).reshape(())
    out = get("TRANSPOSE").reference([x, np.zeros(0, np.int32)], get("TRANSPOSE").parse({}))[0]
    assert out.shape == () and out == x


def test_transpose_errors():
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(OpError, match="not a permutation"):
        infer("TRANSPOSE", [x, Const(np.array([0, 0, 1], np.int32))])
    with pytest.raises(OpError, match="3 entries but the input 't0' has rank 3|2 entries"):
        infer("TRANSPOSE", [x, Const(np.array([0, 1], np.int32))])
    with pytest.raises(OpError, match="perm entry 3 is out of range"):
        infer("TRANSPOSE", [x, Const(np.array([0, 1, 3], np.int32))])
    with pytest.raises(OpError, match="int64.*must be int32"):
        infer("TRANSPOSE", [x, Const(np.array([0, 2, 1], np.int64))])


# ---- CONCATENATION -------------------------------------------------------------------------------

@HYP
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=5).map(tuple), dtype=dtypes,
       n=st.integers(1, 4), seed=seeds, data_=st.data())
def test_concatenation(shape, dtype, n, seed, data_):
    r = len(shape)
    axis = data_.draw(st.integers(-r, r - 1))
    rng = np.random.default_rng(seed)
    xs = []
    for _ in range(n):
        s = list(shape)
        s[axis] = data_.draw(st.integers(0 if n > 1 else 1, 3))
        xs.append(data(rng, tuple(s), dtype))
    assume(any(x.size for x in xs))
    specs = [Const(x) if data_.draw(st.booleans()) and x.size else x for x in xs]
    assume(any(isinstance(s, np.ndarray) for s in specs))
    check_reference("CONCATENATION", specs, axis=axis)


def test_concatenation_errors():
    a, b = np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)
    with pytest.raises(OpError, match="fused activation RELU"):
        infer("CONCATENATION", [a, a], axis=0, fused_activation_function="RELU")
    with pytest.raises(OpError, match="'t1' has shape \\[2, 4\\], incompatible"):
        infer("CONCATENATION", [a, b], axis=0)
    assert infer("CONCATENATION", [a, b], axis=-1)[0][0] == (2, 7)
    with pytest.raises(OpError, match="same type"):
        infer("CONCATENATION", [a, a.astype(np.int32)], axis=0)
    with pytest.raises(OpError, match="axis 2 is out of range"):
        infer("CONCATENATION", [a, a], axis=2)
    with pytest.raises(OpError, match="scalar"):
        infer("CONCATENATION", [np.float32(1), np.float32(2)], axis=0)


# ---- PAD / PADV2 ---------------------------------------------------------------------------------

@HYP
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=5).map(tuple), dtype=dtypes,
       v2=st.booleans(), pad_dtype=st.sampled_from([np.int32, np.int64]), seed=seeds, data_=st.data())
def test_pad(shape, dtype, v2, pad_dtype, seed, data_):
    rng = np.random.default_rng(seed)
    pads = np.array(data_.draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                                        min_size=len(shape), max_size=len(shape))),
                    pad_dtype).reshape(len(shape), 2)
    x = data(rng, shape, dtype)
    if v2:
        value = data(rng, (1,) if data_.draw(st.booleans()) else (), dtype)
        specs = [x, Const(pads), Const(value) if data_.draw(st.booleans()) else value]
        out = check_reference("PADV2", specs)
    else:
        out = check_reference("PAD", [x, Const(pads)])
    assert out[0].shape == tuple(d + int(p.sum()) for d, p in zip(shape, pads))


def test_pad_errors_and_zero_point():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(OpError, match="negative"):
        infer("PAD", [x, Const(np.array([[0, 0], [-1, 0]], np.int32))])
    with pytest.raises(OpError, match=r"must be \[2, 2\]"):
        infer("PAD", [x, Const(np.zeros((3, 2), np.int32))])
    with pytest.raises(OpError, match="rank <= 5"):
        infer("PAD", [np.zeros((1,) * 6, np.float32), Const(np.zeros((6, 2), np.int32))])
    with pytest.raises(OpError, match="exactly one"):
        infer("PADV2", [x, Const(np.zeros((2, 2), np.int32)), Const(np.zeros(2, np.float32))])
    with pytest.raises(OpError, match="same|must match"):
        infer("PADV2", [x, Const(np.zeros((2, 2), np.int32)), Const(np.zeros(1, np.int32))])
    with pytest.raises(Dynamic):
        infer("PAD", [x, np.zeros((2, 2), np.int32)])
    # quantized PAD pads with the output zero point, bound through OpDef.bind

    class Q:
        zero_points = np.array([-5])

    class T:
        quantization = Q()

    opdef = get("PAD")
    attrs = opdef.bind(opdef.parse({}), [None, None], [T()])
    assert attrs.zero_point == -5
    out = opdef.reference([np.ones((1, 2), np.int8), np.array([[1, 0], [0, 0]], np.int32)], attrs)[0]
    np.testing.assert_array_equal(out, [[-5, -5], [1, 1]])


def test_pad_quantized_zero_point_against_litert():
    from tflite_jit.format.builder import ModelBuilder

    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (2, 3), np.int8, scale=0.5, zero_point=-7)
    p = g.const("p", np.array([[1, 0], [0, 2]], np.int32))
    y = g.tensor("y", (3, 5), np.int8, scale=0.5, zero_point=-7)
    g.op("PAD", [x, p], [y])
    g.output(y)
    xv = np.arange(6, dtype=np.int8).reshape(2, 3)
    theirs = litert_run(mb.build(), [xv])[0]
    opdef = get("PAD")
    attrs = opdef.bind(opdef.parse({}), list(mb.model().subgraphs[0].tensors[:2]),
                       [mb.model().subgraphs[0].tensors[y]])
    ours = opdef.reference([xv, np.array([[1, 0], [0, 2]], np.int32)], attrs)[0]
    assert_close(ours, theirs)


# ---- STRIDED_SLICE -------------------------------------------------------------------------------

@st.composite
def strided_slice_case(draw):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=5)))
    r = len(shape)
    offset = draw(st.booleans())  # then every dimension must be listed, no ellipsis / new axis
    n_new = 0 if offset else draw(st.integers(0, 2))
    use_ellipsis = draw(st.booleans()) and not offset
    n_consume = r if offset else draw(st.integers(0 if use_ellipsis else 1, r - 1 if use_ellipsis else r))
    kinds = ["idx"] * n_consume + ["new"] * n_new + (["ell"] if use_ellipsis else [])
    kinds = draw(st.permutations(kinds))
    begin, end, strides = [], [], []
    masks = dict(begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0, shrink_axis_mask=0)
    # which input dim each idx entry addresses (for sensible ranges)
    dim_iter, before_ell = 0, True
    for i, k in enumerate(kinds):
        bit = 1 << i
        if k == "ell":
            masks["ellipsis_mask"] |= bit
            dim_iter = r - sum(1 for kk in kinds[i + 1:] if kk == "idx")
            before_ell = False
            begin.append(0), end.append(0), strides.append(1)
            continue
        if k == "new":
            masks["new_axis_mask"] |= bit
            if draw(st.booleans()):
                masks["shrink_axis_mask"] |= bit  # new axis wins
            begin.append(0), end.append(draw(st.integers(0, 2))), strides.append(1)
            continue
        dim = shape[dim_iter]
        dim_iter += 1
        if draw(st.integers(0, 4)) == 0:  # shrink
            masks["shrink_axis_mask"] |= bit
            begin.append(draw(st.integers(-dim, dim - 1)))
            end.append(draw(st.integers(-dim - 1, dim + 1)))
            strides.append(draw(st.integers(1, 3)))
            if draw(st.integers(0, 4)) == 0:
                masks["begin_mask"] |= bit
            continue
        s = draw(st.sampled_from([-3, -2, -1, 1, 2, 3]))
        begin.append(draw(st.integers(-dim - 2, dim + 2)))
        end.append(draw(st.integers(0, dim + 1)) if offset else draw(st.integers(-dim - 2, dim + 2)))
        strides.append(s)
        if draw(st.booleans()):
            masks["begin_mask"] |= bit
        if not offset and draw(st.booleans()):
            masks["end_mask"] |= bit
    del before_ell
    return shape, begin, end, strides, masks, offset


@HYP
@given(case=strided_slice_case(), dtype=st.sampled_from([np.float32, np.int32, np.bool_, np.int8]),
       seed=seeds)
def test_strided_slice(case, dtype, seed):
    shape, begin, end, strides, masks, offset = case
    x = data(np.random.default_rng(seed), shape, dtype)
    c = [Const(np.array(v, np.int32)) for v in (begin, end, strides)]
    if offset:
        try:
            infer("STRIDED_SLICE", [x, *c], **masks, offset=offset)
        except OpError as e:  # an offset slice running past the end: LiteRT reads garbage
            assert "with offset=true" in str(e)
            assume(False)
    check_reference("STRIDED_SLICE", [x, *c], **masks, offset=offset)


def test_strided_slice_matches_numpy_indexing():
    x = np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5)
    c = lambda *v: [Const(np.array(a, np.int32)) for a in v]  # noqa: E731
    cases = [
        (c([0, 1], [0, 3], [1, 1]), dict(ellipsis_mask=1), x[..., 1:3]),
        (c([1, 0, 0], [2, 0, 0], [1, 1, 1]), dict(ellipsis_mask=2, new_axis_mask=4), x[1:2, ..., None]),
        (c([-1, 0, 4], [0, 0, 0], [1, 1, -2]), dict(shrink_axis_mask=1, ellipsis_mask=2, end_mask=4),
         x[-1, ..., 4::-2]),
        (c([0, 0, 0, 0], [2, 3, 4, 5], [-1, -1, -1, -1]), dict(begin_mask=15, end_mask=15),
         x[::-1, ::-1, ::-1, ::-1]),
        (c([1, 2, 0, 1], [1, 1, 4, 3], [1, 1, 1, 2]), dict(offset=True), x[1:2, 2:3, 0:4, 1:4:2]),
    ]
    for consts, opts, expect in cases:
        out = check_reference("STRIDED_SLICE", [x, *consts], **opts)
        np.testing.assert_array_equal(out[0], expect)


def test_strided_slice_errors():
    x = np.zeros((2, 3), np.float32)
    c = lambda *v: [Const(np.array(a, np.int32)) for a in v]  # noqa: E731
    with pytest.raises(OpError, match="stride of slice entry 1 is 0"):
        infer("STRIDED_SLICE", [x, *c([0, 0], [1, 1], [1, 0])])
    with pytest.raises(OpError, match="same length"):
        infer("STRIDED_SLICE", [x, *c([0, 0], [1, 1, 1], [1, 1])])
    with pytest.raises(OpError, match="out of bounds"):
        infer("STRIDED_SLICE", [x, *c([0, 3], [1, 4], [1, 1])], shrink_axis_mask=2)
    with pytest.raises(OpError, match="stride -1"):
        infer("STRIDED_SLICE", [x, *c([0, 1], [1, 0], [1, -1])], shrink_axis_mask=2)
    with pytest.raises(OpError, match="more than one ellipsis"):
        infer("STRIDED_SLICE", [x, *c([0, 0, 0], [1, 1, 1], [1, 1, 1])], ellipsis_mask=5)
    with pytest.raises(OpError, match="covers no dimension"):
        infer("STRIDED_SLICE", [x, *c([0, 0, 1], [0, 1, 3], [1, 1, 1])], ellipsis_mask=1)
    with pytest.raises(OpError, match="at most 2"):
        infer("STRIDED_SLICE", [x, *c([0, 0, 0], [1, 1, 1], [1, 1, 1])])
    with pytest.raises(OpError, match="offset=true.*every dimension"):
        infer("STRIDED_SLICE", [x, *c([0], [1], [1])], offset=True)
    with pytest.raises(OpError, match="offset=true, slice entry 1 ends at 2 \\+ 2 = 4"):
        infer("STRIDED_SLICE", [x, *c([0, 2], [1, 2], [1, 1])], offset=True)
    with pytest.raises(OpError, match="beyond"):
        infer("STRIDED_SLICE", [x, *c([1], [2], [1])], new_axis_mask=2)
    with pytest.raises(OpError, match="int64.*must be int32"):
        infer("STRIDED_SLICE", [x, *[Const(np.array(v, np.int64)) for v in ([0], [1], [1])]])
    with pytest.raises(Dynamic):
        infer("STRIDED_SLICE", [x, np.zeros(2, np.int32), *c([1, 1], [1, 1])])


# ---- SLICE ---------------------------------------------------------------------------------------

@HYP
@given(shape=st.lists(st.integers(1, 5), min_size=0, max_size=5).map(tuple), dtype=dtypes,
       idx_dtype=st.sampled_from([np.int32, np.int64]), seed=seeds, data_=st.data())
def test_slice(shape, dtype, idx_dtype, seed, data_):
    begin = [data_.draw(st.integers(0, d)) for d in shape]
    size = [data_.draw(st.integers(-1, d - b)) for d, b in zip(shape, begin)]
    x = data(np.random.default_rng(seed), shape, dtype)
    r = len(shape)
    check_reference("SLICE", [x, Const(np.array(begin, idx_dtype).reshape(r)),
                              Const(np.array(size, idx_dtype).reshape(r))])


def test_slice_errors():
    x = np.zeros((2, 3), np.float32)
    c = lambda *v: [Const(np.array(a, np.int32)) for a in v]  # noqa: E731
    with pytest.raises(OpError, match="negative"):
        infer("SLICE", [x, *c([-1, 0], [1, 1])])
    with pytest.raises(OpError, match="size must be >= 0 or -1"):
        infer("SLICE", [x, *c([0, 0], [-2, 1])])
    with pytest.raises(OpError, match="runs past dimension 1"):
        infer("SLICE", [x, *c([0, 2], [1, 2])])
    with pytest.raises(OpError, match="one value per dimension"):
        infer("SLICE", [x, *c([0], [1])])
    assert infer("SLICE", [x, *c([1, 1], [-1, -1])])[0][0] == (1, 2)


# ---- GATHER --------------------------------------------------------------------------------------

@st.composite
def gather_case(draw):
    pshape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    r = len(pshape)
    axis = draw(st.integers(0, r - 1))
    bd = draw(st.integers(0, axis))
    ishape = pshape[:bd] + tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    neg_axis = draw(st.booleans())
    neg_bd = draw(st.booleans()) and bd > 0 and len(ishape) > 0
    return pshape, ishape, axis - r if neg_axis else axis, bd - len(ishape) if neg_bd else bd, axis


@HYP
@given(case=gather_case(), dtype=dtypes, idx_dtype=st.sampled_from([np.int16, np.int32, np.int64]),
       const_idx=st.booleans(), seed=seeds)
def test_gather(case, dtype, idx_dtype, const_idx, seed):
    pshape, ishape, axis, bd, real_axis = case
    rng = np.random.default_rng(seed)
    params = data(rng, pshape, dtype)
    idx = np.asarray(rng.integers(0, pshape[real_axis], size=ishape)).astype(idx_dtype)
    check_reference("GATHER", [params, Const(idx) if const_idx else idx], axis=axis, batch_dims=bd)


def test_gather_out_of_range_and_errors():
    p = np.arange(12, dtype=np.float32).reshape(4, 3)
    opdef = get("GATHER")
    for bad in (4, -1):
        idx = np.array([0, bad], np.int32)
        with pytest.raises(OpError, match=f"GATHER: gather index out of bounds: index {bad}"):
            opdef.reference([p, idx], opdef.parse({}))
        with pytest.raises(RuntimeError, match="gather index out of bounds"):
            litert_run(one_op_model("GATHER", [((4, 3), np.float32), ((2,), np.int32)]), [p, idx])
    with pytest.raises(OpError, match="axis 2 is out of range"):
        infer("GATHER", [p, np.zeros(2, np.int32)], axis=2)
    with pytest.raises(OpError, match=r"batch_dims \(1\) must be <= axis \(0\)"):
        infer("GATHER", [p, np.zeros((4, 2), np.int32)], axis=0, batch_dims=1)
    with pytest.raises(OpError, match="batch"):
        infer("GATHER", [p, np.zeros((3, 2), np.int32)], axis=1, batch_dims=1)
    with pytest.raises(OpError, match="float32.*int16, int32 or int64"):
        infer("GATHER", [p, np.zeros(2, np.float32)])
    assert infer("GATHER", [p, np.zeros((), np.int32)], axis=-1)[0][0] == (4,)


# ---- SHAPE ---------------------------------------------------------------------------------------

@HYP
@given(shape=shapes, dtype=dtypes, out_type=st.sampled_from(["INT32", "INT64"]), seed=seeds)
def test_shape(shape, dtype, out_type, seed):
    assume(len(shape) > 0)  # LiteRT's Python binding cannot return the empty result of a scalar
    out = check_reference("SHAPE", [data(np.random.default_rng(seed), shape, dtype)], out_type=out_type)
    assert out[0].tolist() == list(shape)


def test_shape_errors():
    with pytest.raises(OpError, match="Unknown shape output data type"):
        infer("SHAPE", [np.zeros(3, np.float32)])
    with pytest.raises(OpError, match="out_type 0"):
        infer("SHAPE", [np.zeros(3, np.float32)], out_type=0)
    assert infer("SHAPE", [np.zeros((2, 3), np.float32)], out_type=4) == [((2,), np.dtype(np.int64))]
    assert get("SHAPE").reference([np.zeros(()), None], get("SHAPE").parse({"out_type": 2}))[0].shape == (0,)


# ---- PACK / UNPACK -------------------------------------------------------------------------------

@HYP
@given(shape=shapes, dtype=st.sampled_from([d for d in DTYPES if d not in (np.bool_, np.float16)]),
       n=st.integers(1, 4), seed=seeds, data_=st.data())
def test_pack(shape, dtype, n, seed, data_):
    r = len(shape)
    axis = data_.draw(st.integers(-r - 1, r))
    rng = np.random.default_rng(seed)
    xs = [data(rng, shape, dtype) for _ in range(n)]
    specs = [Const(x) if i and data_.draw(st.booleans()) else x for i, x in enumerate(xs)]
    out = check_reference("PACK", specs, values_count=n, axis=axis)
    np.testing.assert_array_equal(out[0], np.stack(xs, axis=axis))


@HYP
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=5).map(tuple),
       dtype=st.sampled_from([d for d in DTYPES if d != np.int64]), seed=seeds, data_=st.data())
def test_unpack(shape, dtype, seed, data_):
    r = len(shape)
    axis = data_.draw(st.integers(-r, r - 1))
    x = data(np.random.default_rng(seed), shape, dtype)
    num = shape[axis]
    outs = check_reference("UNPACK", [x], n_outputs=num, num=num, axis=axis)
    assert len(outs) == num


def test_pack_unpack_errors():
    a = np.zeros((2, 3), np.float32)
    with pytest.raises(OpError, match="values_count is 3 but the op has 2 inputs"):
        infer("PACK", [a, a], values_count=3)
    with pytest.raises(OpError, match="values_count is 0"):
        infer("PACK", [a, a])
    with pytest.raises(OpError, match="same shape and type"):
        infer("PACK", [a, a.T], values_count=2)
    with pytest.raises(OpError, match="axis 3 is out of range"):
        infer("PACK", [a, a], values_count=2, axis=3)
    with pytest.raises(OpError, match="num is 3 but dimension 0"):
        infer("UNPACK", [a], num=3)
    with pytest.raises(OpError, match="num is 0"):
        infer("UNPACK", [a])
    assert infer("UNPACK", [a], num=3, axis=-1) == [((2,), np.dtype(np.float32))] * 3


def test_module_exports():
    assert shape_ops.bind_pad_zero_point(shape_ops.PadAttrs(), object()) == shape_ops.PadAttrs()
