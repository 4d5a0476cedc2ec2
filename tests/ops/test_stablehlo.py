"""StableHLO structural ops (ops/stablehlo.py) against LiteRT's builtin kernels: STABLEHLO_PAD,
STABLEHLO_GATHER, STABLEHLO_SCATTER (with its update-computation subgraph),
STABLEHLO_REDUCE_WINDOW (with its body subgraph), STABLEHLO_CASE and STABLEHLO_COMPOSITE."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import assert_close, feed_run, litert_run
from tflite_jit.format.builder import ModelBuilder

pytest.importorskip("ai_edge_litert.interpreter")

F, I32, I64 = np.float32, np.int32, np.int64


def _ours(model: bytes, inputs: list[np.ndarray], backend: str = "numba") -> list[np.ndarray]:
    return feed_run(tflite_jit.Interpreter(model_content=model, backend=backend), inputs)


def _check(model: bytes, inputs: list[np.ndarray], backends: tuple[str, ...] = ("numba", "reference")) -> None:
    theirs = litert_run(model, inputs)
    for b in backends:
        ours = _ours(model, inputs, b)
        assert len(ours) == len(theirs)
        for j, (x, y) in enumerate(zip(ours, theirs)):
            assert_close(x, y, what=f"{b} output {j}")


def _rejects(model: bytes, inputs: list[np.ndarray], match: str) -> None:
    with pytest.raises((ValueError, RuntimeError), match=match):
        _ours(model, inputs, "reference")


def _binary_body(mb: ModelBuilder, op: str | None, dtype: Any) -> None:
    """A region subgraph (a, b) -> op(a, b) over scalars; op None: returns b (no op)."""
    s = mb.subgraph("body")
    a = s.input("a", (), dtype)
    b = s.input("b", (), dtype)
    if op is None:
        s.output(b)
        return
    o = s.tensor("o", (), dtype)
    s.op(op, [a, b], [o])
    s.output(o)


# ---- models -----------------------------------------------------------------------------------

def pad_model(shape: tuple, dtype: Any, lo: list, hi: list, interior: list, out_shape: tuple,
              pad_value: Any = 0) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", shape, dtype)
    pv = g.const("pv", np.array(pad_value, dtype))
    o = g.tensor("o", out_shape, dtype)
    g.op("STABLEHLO_PAD", [x, pv], [o], edge_padding_low=lo, edge_padding_high=hi,
         interior_padding=interior)
    g.output(o)
    return mb.build()


def gather_model(op_shape: tuple, dtype: Any, idx_shape: tuple, idx_dtype: Any, out_shape: tuple,
                 **dn: Any) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", op_shape, dtype)
    i = g.input("i", idx_shape, idx_dtype)
    o = g.tensor("o", out_shape, dtype)
    g.op("STABLEHLO_GATHER", [x, i], [o], **dn)
    g.output(o)
    return mb.build()


def scatter_model(op_shape: tuple, dtype: Any, idx_shape: tuple, idx_dtype: Any, upd_shape: tuple,
                  body: str | None, body_ops: int = 1, **dn: Any) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", op_shape, dtype)
    i = g.input("i", idx_shape, idx_dtype)
    u = g.input("u", upd_shape, dtype)
    o = g.tensor("o", op_shape, dtype)
    g.op("STABLEHLO_SCATTER", [x, i, u], [o], update_computation_subgraph_index=1, **dn)
    g.output(o)
    if body_ops == 2:
        s = mb.subgraph("body")
        a, b = s.input("a", (), dtype), s.input("b", (), dtype)
        t, o2 = s.tensor("t", (), dtype), s.tensor("o", (), dtype)
        s.op("STABLEHLO_ADD", [a, b], [t])
        s.op("STABLEHLO_ADD", [t, b], [o2])
        s.output(o2)
    else:
        _binary_body(mb, body, dtype)
    return mb.build()


def reduce_window_model(shape: tuple, dtype: Any, body: str, init: Any, out_shape: tuple,
                        **opts: Any) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", shape, dtype)
    iv = g.const("init", np.array(init, dtype))
    o = g.tensor("o", out_shape, dtype)
    g.op("STABLEHLO_REDUCE_WINDOW", [x, iv], [o], body_subgraph_index=1, **opts)
    g.output(o)
    _binary_body(mb, body, dtype)
    return mb.build()


def _out_shape(op: str, shapes: list, dtypes: list, **opts: Any) -> tuple:
    """Our shape rule's answer, for building the model's output tensor (ops that need no
    subgraph context to infer)."""
    from tests.oracle import raw_options
    from tflite_jit import ops

    d = ops.get(op)
    ctx = ops.InferCtx(op_name=op, attrs=d.parse(raw_options(opts)), shapes=shapes,
                       dtypes=[np.dtype(t) for t in dtypes], values=[None] * len(shapes))
    return d.infer(ctx)[0][0]


# ---- STABLEHLO_PAD ----------------------------------------------------------------------------

PAD_TYPES = [np.float32, np.float16, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8,
             np.bool_]


@st.composite
def _pad_case(draw: Any) -> tuple:
    r = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(0, 4)) for _ in range(r))
    interior = [draw(st.integers(0, 2)) for _ in range(r)]
    lo, hi = [], []
    for d, it in zip(shape, interior):
        full = d + max(d - 1, 0) * it
        a = draw(st.integers(-full, 3))
        low = -(full + a)  # lo + hi + full >= 0
        b = draw(st.integers(low, max(low, 3)))
        lo.append(a)
        hi.append(b)
    dtype = draw(st.sampled_from(PAD_TYPES))
    return shape, interior, lo, hi, dtype


def _values(shape: tuple, dtype: Any, rng: np.random.Generator) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    lo, hi = (0, 100) if dt.kind == "u" else (-100, 100)
    return rng.integers(lo, hi, size=shape).astype(dt)


@settings(max_examples=150, deadline=None)
@given(_pad_case(), st.integers(0, 2**31))
def test_pad_matches_litert(case: tuple, seed: int) -> None:
    shape, interior, lo, hi, dtype = case
    out = _out_shape("STABLEHLO_PAD", [shape, ()], [dtype, dtype], edge_padding_low=lo,
                     edge_padding_high=hi, interior_padding=interior)
    pv = True if np.dtype(dtype) == np.bool_ else 7
    model = pad_model(shape, dtype, lo, hi, interior, out, pv)
    _check(model, [_values(shape, dtype, np.random.default_rng(seed))])


def test_pad_negative_and_interior_example() -> None:
    x = np.arange(1, 7, dtype=F).reshape(2, 3)
    model = pad_model((2, 3), F, [1, -1], [0, 2], [1, 1], (4, 6), pad_value=-1)
    _check(model, [x])
    assert _ours(model, [x])[0][1].tolist() == [-1, 2, -1, 3, -1, -1]


def test_pad_rejects_bad_options() -> None:
    x = np.ones((2, 3), F)
    _rejects(pad_model((2, 3), F, [0], [0], [0], (2, 3)), [x], "edge_padding_low has 1 entries")
    _rejects(pad_model((2, 3), F, [0, 0], [0, 0], [-1, 0], (2, 3)), [x], "interior_padding")
    _rejects(pad_model((), F, [], [], [], ()), [np.ones((), F)], "rank must be 1..8")


def test_pad_overcropping_gives_all_zero_shape() -> None:
    # LiteRT: any output dimension <= 0 makes every dimension 0
    x = np.ones((2, 3), F)
    for lo, hi in (([-2, 0], [-1, 0]), ([-5, 0], [0, 1]), ([0, -3], [0, 0])):
        model = pad_model((2, 3), F, lo, hi, [0, 0], (0, 0))
        _check(model, [x])
        assert _ours(model, [x])[0].shape == (0, 0)
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", (2, 3), F)
    pv = g.const("pv", np.array(0, I32))
    o = g.tensor("o", (2, 3), F)
    g.op("STABLEHLO_PAD", [xi, pv], [o], edge_padding_low=[0, 0], edge_padding_high=[0, 0],
         interior_padding=[0, 0])
    g.output(o)
    _rejects(mb.build(), [x], "padding value")


# ---- STABLEHLO_GATHER -------------------------------------------------------------------------

#: the element types STABLEHLO_GATHER and STABLEHLO_SCATTER take
INDEXED_TYPES = [np.float32, np.float16, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8,
                 np.uint16, np.uint32, np.uint64, np.bool_]


def _draw_index_map(draw: Any) -> tuple[tuple[int, ...], int, list[int], list[int]]:
    """An operand shape (rank 1..3), the index vector's length k, the k operand dims it maps to,
    and a subset of those that the result drops (GATHER's collapsed_slice_dims, SCATTER's
    inserted_window_dims)."""
    r = draw(st.integers(1, 3))
    op_shape = tuple(draw(st.integers(1, 5)) for _ in range(r))
    k = draw(st.integers(1, r))
    mapped = draw(st.permutations(range(r)))[:k]
    dropped = sorted(draw(st.sets(st.sampled_from(mapped), max_size=k)))
    return op_shape, k, mapped, dropped


def _draw_index_shape(draw: Any, k: int, max_batch: int) -> tuple[list[int], int, tuple[int, ...]]:
    """Batch dims (0..2 of them, 1..max_batch each), index_vector_dim, and the indices' shape:
    the batch dims with the index vector (length k) at index_vector_dim."""
    nb = draw(st.integers(0, 2))
    batch = [draw(st.integers(1, max_batch)) for _ in range(nb)]
    ivd = draw(st.integers(0, nb))
    return batch, ivd, tuple(batch[:ivd] + [k] + batch[ivd:])


@st.composite
def _gather_case(draw: Any) -> tuple:
    op_shape, k, sim, collapsed = _draw_index_map(draw)
    r = len(op_shape)
    sizes = [1 if d in collapsed else draw(st.integers(0, op_shape[d])) for d in range(r)]
    batch, ivd, idx_shape = _draw_index_shape(draw, k, 3)
    out_rank = len(batch) + r - len(collapsed)
    offset = sorted(draw(st.permutations(range(out_rank)))[: r - len(collapsed)])
    dtype = draw(st.sampled_from(INDEXED_TYPES))
    idx_dtype = draw(st.sampled_from([I32, I64]))
    dn = dict(offset_dims=offset, collapsed_slice_dims=collapsed, start_index_map=list(sim),
              index_vector_dim=ivd, slice_sizes=sizes)
    return op_shape, idx_shape, dtype, idx_dtype, dn


@settings(max_examples=150, deadline=None)
@given(_gather_case(), st.integers(0, 2**31))
def test_gather_matches_litert(case: tuple, seed: int) -> None:
    op_shape, idx_shape, dtype, idx_dtype, dn = case
    rng = np.random.default_rng(seed)
    out = _out_shape("STABLEHLO_GATHER", [op_shape, idx_shape], [dtype, idx_dtype], **dn)
    model = gather_model(op_shape, dtype, idx_shape, idx_dtype, out, **dn)
    # indices beyond the operand on both sides: they are clamped
    idx = rng.integers(-3, max(op_shape) + 3, size=idx_shape).astype(idx_dtype)
    _check(model, [_values(op_shape, dtype, rng), idx])


def test_gather_torch_style_embedding() -> None:
    dn = dict(offset_dims=[1], collapsed_slice_dims=[0], start_index_map=[0], index_vector_dim=1,
              slice_sizes=[1, 4])
    x = np.arange(20, dtype=F).reshape(5, 4)
    idx = np.array([[4], [0], [9], [-2]], I32)
    model = gather_model((5, 4), F, (4, 1), I32, (4, 4), **dn)
    _check(model, [x, idx])
    assert _ours(model, [x, idx])[0][2].tolist() == x[4].tolist()  # 9 clamps to 4


def test_gather_rejects_bad_dimension_numbers() -> None:
    x, idx = np.ones((5, 4), F), np.zeros((3, 1), I32)
    base = dict(offset_dims=[1], collapsed_slice_dims=[0], start_index_map=[0], index_vector_dim=1,
                slice_sizes=[1, 4])
    _rejects(gather_model((5, 4), F, (3, 1), I32, (3, 4), **{**base, "slice_sizes": [1, 5]}), [x, idx],
             r"slice_sizes\[1\]")
    _rejects(gather_model((5, 4), F, (3, 1), I32, (3, 4), **{**base, "start_index_map": [2]}), [x, idx],
             "start_index_map")
    _rejects(gather_model((5, 4), F, (3, 1), I32, (3, 4), **{**base, "index_vector_dim": 3}), [x, idx],
             "index_vector_dim")
    # the spec's implicit index vector (index_vector_dim == rank): LiteRT reads out of bounds
    _rejects(gather_model((5, 4), F, (3,), I32, (3, 4), **{**base, "index_vector_dim": 1}),
             [x, np.zeros(3, I32)], "index_vector_dim")
    _rejects(gather_model((5, 4), F, (3, 1), I32, (3, 4), **{**base, "collapsed_slice_dims": [1]}),
             [x, idx], "collapsed")
    _rejects(gather_model((5, 4), F, (3, 1), I32, (3, 4), **{**base, "offset_dims": [1, 2]}), [x, idx],
             "offset_dims")
    _rejects(gather_model((5, 4), F, (3, 1), F, (3, 4), **base), [x, idx.astype(F)], "int32 or int64")


# ---- STABLEHLO_SCATTER ------------------------------------------------------------------------

SCATTER_BODIES = [None, "STABLEHLO_ADD", "STABLEHLO_MULTIPLY", "STABLEHLO_MAXIMUM", "STABLEHLO_MINIMUM"]


@st.composite
def _scatter_case(draw: Any) -> tuple:
    op_shape, k, sdod, inserted = _draw_index_map(draw)
    window_op_dims = [d for d in range(len(op_shape)) if d not in inserted]
    win_sizes = [draw(st.integers(0, op_shape[d])) for d in window_op_dims]
    batch, ivd, idx_shape = _draw_index_shape(draw, k, 4)
    upd_rank = len(batch) + len(window_op_dims)
    uwd = sorted(draw(st.permutations(range(upd_rank)))[: len(window_op_dims)])
    upd, bi, wi = [], iter(batch), iter(win_sizes)
    for d in range(upd_rank):
        upd.append(next(wi) if d in uwd else next(bi))
    dtype = draw(st.sampled_from(INDEXED_TYPES))
    idx_dtype = draw(st.sampled_from([I32, I64]))
    body = draw(st.sampled_from(SCATTER_BODIES))
    dn = dict(update_window_dims=uwd, inserted_window_dims=inserted,
              scatter_dims_to_operand_dims=list(sdod), index_vector_dim=ivd)
    return op_shape, idx_shape, tuple(upd), dtype, idx_dtype, body, dn


@settings(max_examples=200, deadline=None)
@given(_scatter_case(), st.integers(0, 2**31))
def test_scatter_matches_litert(case: tuple, seed: int) -> None:
    op_shape, idx_shape, upd_shape, dtype, idx_dtype, body, dn = case
    rng = np.random.default_rng(seed)
    model = scatter_model(op_shape, dtype, idx_shape, idx_dtype, upd_shape, body, **dn)
    # in range and past the end (skipped); repeated targets combine in order
    idx = rng.integers(0, max(op_shape) + 2, size=idx_shape).astype(idx_dtype)
    x = _values(op_shape, dtype, rng)
    u = _values(upd_shape, dtype, rng)
    if body == "STABLEHLO_MULTIPLY" and np.dtype(dtype).kind in "iu":
        u = (u % 3).astype(dtype)
    _check(model, [x, idx, u])


def test_scatter_duplicates_combine_in_order() -> None:
    dn = dict(update_window_dims=[1], inserted_window_dims=[0], scatter_dims_to_operand_dims=[0],
              index_vector_dim=1)
    x = np.zeros((3, 2), F)
    idx = np.array([[1], [1], [0], [1], [7]], I32)
    u = np.arange(10, dtype=F).reshape(5, 2) + 1
    for body in SCATTER_BODIES:
        _check(scatter_model((3, 2), F, (5, 1), I32, (5, 2), body, **dn), [x, idx, u])
    got = _ours(scatter_model((3, 2), F, (5, 1), I32, (5, 2), "STABLEHLO_ADD", **dn), [x, idx, u])[0]
    assert got.tolist() == [[5, 6], [1 + 3 + 7, 2 + 4 + 8], [0, 0]]


def test_scatter_rejects() -> None:
    dn = dict(update_window_dims=[1], inserted_window_dims=[0], scatter_dims_to_operand_dims=[0],
              index_vector_dim=1)
    x, u = np.zeros((3, 2), F), np.ones((2, 2), F)
    idx = np.array([[0], [1]], I32)
    # LiteRT supports only these combiners; it rejects others at prepare, as we do
    for model in (scatter_model((3, 2), F, (2, 1), I32, (2, 2), "STABLEHLO_DIVIDE", **dn),
                  scatter_model((3, 2), F, (2, 1), I32, (2, 2), None, body_ops=2, **dn)):
        with pytest.raises((ValueError, RuntimeError)):
            litert_run(model, [x, idx, u])
        _rejects(model, [x, idx, u], "update computation")
    ok = scatter_model((3, 2), F, (2, 1), I32, (2, 2), "STABLEHLO_ADD", **dn)
    _rejects(ok, [x, np.array([[0], [-1]], I32), u], "negative")
    _rejects(scatter_model((3, 2), F, (2, 1), I32, (2, 2), None,
                           **{**dn, "scatter_dims_to_operand_dims": [0, 1]}), [x, idx, u],
             "scatter_dims_to_operand_dims")
    _rejects(scatter_model((3, 2), F, (2, 1), I32, (2, 3), None, **dn), [x, idx, np.ones((2, 3), F)],
             "larger than operand")
    _rejects(scatter_model((3, 2), F, (2, 1), I32, (3, 2), None, **dn), [x, idx, np.ones((3, 2), F)],
             "batch dimensions")
    _rejects(scatter_model((3, 2), F, (2,), I32, (2, 2), None, **dn), [x, np.zeros(2, I32), u],
             "index_vector_dim")
    _rejects(scatter_model((3, 2), F, (2, 1), F, (2, 2), None, **dn), [x, idx.astype(F), u], "int32 or int64")


def test_scatter_nan_follows_std_max() -> None:
    # std::max(old, new) keeps old unless old < new: a NaN update never wins, a NaN operand stays
    dn = dict(update_window_dims=[1], inserted_window_dims=[0], scatter_dims_to_operand_dims=[0],
              index_vector_dim=1)
    x = np.array([[np.nan, 1], [2, 3], [4, 5]], F)
    u = np.array([[1, np.nan], [np.nan, 9]], F)
    for body in ("STABLEHLO_MAXIMUM", "STABLEHLO_MINIMUM"):
        _check(scatter_model((3, 2), F, (2, 1), I32, (2, 2), body, **dn), [x, np.array([[0], [1]], I32), u])


# ---- STABLEHLO_REDUCE_WINDOW ------------------------------------------------------------------

RW_BODIES = ["ADD", "STABLEHLO_ADD", "MUL", "STABLEHLO_MULTIPLY", "MAXIMUM", "STABLEHLO_MAXIMUM",
             "MINIMUM", "STABLEHLO_MINIMUM"]
RW_TYPES = [np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8]


@st.composite
def _rw_case(draw: Any) -> tuple:
    r = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(r))
    win = [draw(st.integers(1, 3)) for _ in range(r)]
    strides = [draw(st.integers(1, 3)) for _ in range(r)]
    bdil = [draw(st.integers(1, 2)) for _ in range(r)]
    wdil = [draw(st.integers(1, 2)) for _ in range(r)]
    pad = []
    for d, b in zip(shape, bdil):
        n = (d - 1) * b + 1
        lo = draw(st.integers(-(n - 1), 2))
        hi = draw(st.integers(-(n + lo - 1), 2))
        pad += [lo, hi]
    dtype = draw(st.sampled_from(RW_TYPES))
    body = draw(st.sampled_from(RW_BODIES))
    opts = dict(window_dimensions=win, window_strides=strides, base_dilations=bdil,
                window_dilations=wdil, padding=pad)
    return shape, dtype, body, opts


def _rw_out(shape: tuple, opts: dict) -> tuple:
    out = []
    r = len(shape)
    for d in range(r):
        n = (shape[d] - 1) * opts["base_dilations"][d] + 1 + opts["padding"][2 * d] + opts["padding"][2 * d + 1]
        dw = (opts["window_dimensions"][d] - 1) * opts["window_dilations"][d] + 1
        out.append(0 if n < dw else (n - dw) // opts["window_strides"][d] + 1)
    return tuple(out)


@settings(max_examples=200, deadline=None)
@given(_rw_case(), st.integers(0, 2**31))
def test_reduce_window_matches_litert(case: tuple, seed: int) -> None:
    shape, dtype, body, opts = case
    rng = np.random.default_rng(seed)
    x = _values(shape, dtype, rng)
    if "MUL" in body and np.dtype(dtype).kind in "iu":
        x = (x % 3).astype(dtype)
    init = {"ADD": 0, "MUL": 1, "MAX": -5, "MIN": 5}[next(k for k in ("ADD", "MUL", "MAX", "MIN") if k in body)]
    if np.dtype(dtype).kind == "u" and init < 0:
        init = 0
    model = reduce_window_model(shape, dtype, body, init, _rw_out(shape, opts), **opts)
    _check(model, [x])


@pytest.mark.parametrize("body", ["LOGICAL_AND", "LOGICAL_OR", "STABLEHLO_AND", "MAXIMUM", "MINIMUM"])
def test_reduce_window_bool(body: str) -> None:
    opts = dict(window_dimensions=[2, 2], window_strides=[1, 2], base_dilations=[1, 1],
                window_dilations=[1, 1], padding=[0, 1, 1, 0])
    x = np.random.default_rng(1).random((4, 5)) < 0.5
    init = "AND" in body or "MIN" in body
    _check(reduce_window_model((4, 5), np.bool_, body, init, _rw_out((4, 5), opts), **opts), [x])


def test_reduce_window_max_pool_example() -> None:
    opts = dict(window_dimensions=[1, 3, 3, 1], window_strides=[1, 2, 2, 1], base_dilations=[1, 1, 1, 1],
                window_dilations=[1, 1, 1, 1], padding=[0, 0, 1, 1, 1, 1, 0, 0])
    x = np.random.default_rng(0).standard_normal((1, 7, 7, 3)).astype(F)
    _check(reduce_window_model((1, 7, 7, 3), F, "STABLEHLO_MAXIMUM", -np.inf, (1, 4, 4, 3), **opts), [x])


def test_reduce_window_rejects() -> None:
    base = dict(window_dimensions=[2], window_strides=[1], base_dilations=[1], window_dilations=[1],
                padding=[0, 0])
    x = np.ones(4, F)
    _rejects(reduce_window_model((4,), F, "SUB", 0, (3,), **base), [x], "body subgraph")
    _rejects(reduce_window_model((4,), F, "ADD", 0, (3,), **{**base, "window_strides": [0]}), [x], "> 0")
    _rejects(reduce_window_model((4,), F, "ADD", 0, (3,), **{**base, "padding": [0]}), [x], "padding")
    _rejects(reduce_window_model((4,), F, "ADD", 0, (3,), **{**base, "padding": [-2, -2]}), [x], "empty")
    _rejects(reduce_window_model((4,), F, "ADD", 0, (3,), **{**base, "window_dimensions": [2, 2]}), [x],
             "window_dimensions")
    # LiteRT: 'unsupported kernel data type' at invoke
    for dt in (np.float16, np.uint16):
        model = reduce_window_model((4,), dt, "MAXIMUM", 0, (3,), **base)
        with pytest.raises(RuntimeError, match="unsupported kernel data type"):
            litert_run(model, [np.ones(4, dt)])
        _rejects(model, [np.ones(4, dt)], "not supported")
    # LiteRT adds bools as int8 (2 stored in a bool, 256 trues wrap to false): rejected
    _rejects(reduce_window_model((4,), np.bool_, "ADD", False, (3,), **base), [np.ones(4, np.bool_)],
             "bool")
    o7 = {k: [1] * 7 for k in ("window_dimensions", "window_strides", "base_dilations", "window_dilations")}
    _rejects(reduce_window_model((1,) * 7, F, "ADD", 0, (1,) * 7, **o7, padding=[0] * 14),
             [np.ones((1,) * 7, F)], "rank must be 1..6")


def test_reduce_window_empty_and_nan() -> None:
    base = dict(window_dimensions=[2], window_strides=[1], base_dilations=[1], window_dilations=[1],
                padding=[0, 0])
    _check(reduce_window_model((0,), F, "ADD", 0, (0,), **base), [np.ones(0, F)])
    x = np.array([np.nan, 1, 2, np.nan, 0], F)
    for body in ("MAXIMUM", "MINIMUM"):
        _check(reduce_window_model((5,), F, body, 0, (4,), **base), [x])


# ---- STABLEHLO_CASE / STABLEHLO_COMPOSITE -----------------------------------------------------

def case_model(n_branches: int = 3, index_dtype: Any = I32) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph("main")
    c = g.input("c", (), index_dtype)
    x = g.input("x", (3,), F)
    y = g.tensor("y", (3,), F)
    g.op("STABLEHLO_CASE", [c, x], [y], branch_subgraph_indices=list(range(1, n_branches + 1)))
    g.output(y)
    for k in range(n_branches):
        s = mb.subgraph(f"branch{k}")
        sx = s.input("x", (3,), F)
        sy = s.tensor("y", (3,), F)
        s.op("MUL", [sx, s.const("k", np.full(3, k + 2, F))], [sy])
        s.output(sy)
    return mb.build()


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_case_picks_branches(backend: str) -> None:
    model = case_model(3)
    x = np.array([1.0, -2.0, 0.5], F)
    for c in (0, 1, 2, 3, -1, 100):
        ins = [np.array(c, I32), x]
        theirs = litert_run(model, ins)
        assert_close(_ours(model, ins, backend)[0], theirs[0], what=f"index {c}")


def test_case_rejects_bad_branch_index() -> None:
    mb = ModelBuilder()
    g = mb.subgraph("main")
    c = g.input("c", (), I32)
    x = g.input("x", (3,), F)
    y = g.tensor("y", (3,), F)
    g.op("STABLEHLO_CASE", [c, x], [y], branch_subgraph_indices=[1, 5])
    g.output(y)
    s = mb.subgraph("b")
    sx = s.input("x", (3,), F)
    s.output(sx)
    _rejects(mb.build(), [np.array(0, I32), np.ones(3, F)], "not a valid subgraph index")
    _rejects(case_model(2, F), [np.array(0.0, F), np.ones(3, F)], "int32 scalar")


def composite_model(attributes: bool = True) -> bytes:
    from flatbuffers import flexbuffers

    mb = ModelBuilder()
    g = mb.subgraph("main")
    x = g.input("x", (2, 3), F)
    b = g.input("b", (3,), F)
    y = g.tensor("y", (2, 3), F)
    z = g.tensor("z", (2, 3), F)
    attrs = ({"composite_attributes": np.frombuffer(flexbuffers.Dumps({"k": 3}), np.uint8)}
             if attributes else {})
    g.op("STABLEHLO_COMPOSITE", [x, b], [y], decomposition_subgraph_index=1, version=1, **attrs)
    g.sg.ops[-1].options["name"] = "my.bias_relu"  # 'name' is also SubgraphBuilder.op's argument
    g.op("TANH", [y], [z])
    g.output(y, z)
    s = mb.subgraph("decomp")
    sx, sb = s.input("x", (2, 3), F), s.input("b", (3,), F)
    t, o = s.tensor("t", (2, 3), F), s.tensor("o", (2, 3), F)
    s.op("ADD", [sx, sb], [t])
    s.op("RELU", [t], [o])
    s.output(o)
    return mb.build()


def test_composite_runs_decomposition() -> None:
    rng = np.random.default_rng(3)
    _check(composite_model(), [rng.standard_normal((2, 3)).astype(F), rng.standard_normal(3).astype(F)])


def test_composite_requires_attributes() -> None:
    model = composite_model(attributes=False)
    x = [np.ones((2, 3), F), np.ones(3, F)]
    with pytest.raises(ValueError, match="composite_attributes"):
        litert_run(model, x)
    _rejects(model, x, "composite_attributes")


def test_composite_after_resize() -> None:
    model = composite_model()
    rng = np.random.default_rng(4)
    ins = [rng.standard_normal((5, 3)).astype(F), rng.standard_normal(3).astype(F)]
    theirs = litert_run(model, ins)
    for backend in ("numba", "reference"):
        for a, b in zip(_ours(model, ins, backend), theirs):
            assert_close(a, b, what=backend)


def test_case_branches_with_different_shapes() -> None:
    mb = ModelBuilder()
    g = mb.subgraph("main")
    c = g.input("c", (), I32)
    x = g.input("x", (3,), F)
    y = g.tensor("y", (3,), F, shape_signature=(-1,))
    g.op("STABLEHLO_CASE", [c, x], [y], branch_subgraph_indices=[1, 2])
    g.output(y)
    s = mb.subgraph("same")
    s.output(s.input("x", (3,), F))
    s = mb.subgraph("twice")
    sx = s.input("x", (3,), F)
    sy = s.tensor("y", (6,), F)
    s.op("CONCATENATION", [sx, sx], [sy], axis=0)
    s.output(sy)
    model = mb.build()
    for k in (0, 1, 5):
        ins = [np.array(k, I32), np.arange(3, dtype=F)]
        assert_close(_ours(model, ins)[0], litert_run(model, ins)[0], what=f"branch {k}")


def test_case_index_must_be_int32() -> None:
    model = case_model(2, I64)
    ins = [np.array(1, I64), np.ones(3, F)]
    with pytest.raises(RuntimeError, match="failed to prepare"):
        litert_run(model, ins)
    _rejects(model, ins, "int32 scalar")


def test_scatter_subgraph_index_and_wide_indices() -> None:
    dn = dict(update_window_dims=[1], inserted_window_dims=[0], scatter_dims_to_operand_dims=[0],
              index_vector_dim=1)
    mb = ModelBuilder()
    g = mb.subgraph()
    x, i, u = g.input("x", (3, 2), F), g.input("i", (2, 1), I32), g.input("u", (2, 2), F)
    o = g.tensor("o", (3, 2), F)
    g.op("STABLEHLO_SCATTER", [x, i, u], [o], update_computation_subgraph_index=0, **dn)
    g.output(o)
    ins = [np.zeros((3, 2), F), np.array([[0], [1]], I32), np.ones((2, 2), F)]
    with pytest.raises(RuntimeError, match="failed to prepare"):
        litert_run(mb.build(), ins)  # the main subgraph is no update computation
    _rejects(mb.build(), ins, "not a valid subgraph index")
    # int64 indices far past the end are skipped
    model = scatter_model((3, 2), F, (2, 1), I64, (2, 2), "STABLEHLO_ADD", **dn)
    _check(model, [np.zeros((3, 2), F), np.array([[2**40], [1]], I64), np.ones((2, 2), F)])
