"""RFFT2D, REAL, IMAG and COMPLEX_ABS against LiteRT, complex64/complex128 through the
Interpreter's set_tensor/get_tensor."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import assert_close, litert_interpreter, litert_rejects, run_seq
from tflite_jit.format.builder import ModelBuilder

BACKENDS = ("numba", "reference")
REAL_OF = {np.complex64: np.float32, np.complex128: np.float64}


def close(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    """tests.oracle.assert_close, with complex values compared as (real, imag) pairs: the oracle's
    float path casts to float64, which would drop the imaginary parts."""
    if np.asarray(theirs).dtype.kind == "c":
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, f"{what}: {ours.dtype}{ours.shape}"
        ours, theirs = (np.stack([v.real, v.imag], axis=-1) for v in (ours, theirs))
    assert_close(ours, theirs, what=what)


def check(data: bytes, feeds: Sequence[np.ndarray]) -> list[np.ndarray]:
    (theirs,) = run_seq(litert_interpreter(data), [feeds])
    for b in BACKENDS:
        (ours,) = run_seq(tflite_jit.Interpreter(model_content=data, backend=b), [feeds])
        assert len(ours) == len(theirs)
        for j, (a, t) in enumerate(zip(ours, theirs)):
            close(a, t, what=f"{b} output {j}")
    return theirs


def rfft_model(in_shape: Sequence[int], fft: Sequence[int], runtime_length: bool = False,
               parts: bool = False, dtype=np.float32, length_dtype=np.int32,
               length_shape: Sequence[int] = (2,)) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", list(in_shape), dtype)
    value = np.resize(np.array(fft, length_dtype), length_shape)
    f = g.input("fft_length", list(length_shape), length_dtype) if runtime_length else g.const("fft_length", value)
    out_shape = list(in_shape[:-2]) + [fft[0], fft[1] // 2 + 1]
    o = g.tensor("spectrum", out_shape, np.complex64)
    g.op("RFFT2D", [x, f], [o])
    outs = [o]
    if parts:
        for op in ("REAL", "IMAG", "COMPLEX_ABS"):
            t = g.tensor(op.lower(), out_shape, np.float32)
            g.op(op, [o], [t])
            outs.append(t)
    g.output(*outs)
    return mb.build()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=0, max_size=2), st.integers(1, 9), st.integers(1, 9),
       st.sampled_from([1, 2, 4, 8, 16]), st.sampled_from([2, 4, 8, 16, 32]), st.booleans(), st.booleans(),
       st.integers(0, 2 ** 31 - 1))
def test_rfft2d_matches_litert(lead: list, h: int, w: int, fh: int, fw: int, runtime: bool, parts: bool,
                               seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((*lead, h, w)) * rng.choice([1.0, 100.0])).astype(np.float32)
    data = rfft_model(x.shape, (fh, fw), runtime_length=runtime, parts=parts)
    feeds = [x, np.array([fh, fw], np.int32)] if runtime else [x]
    spectrum = check(data, feeds)[0]
    assert spectrum.dtype == np.complex64 and spectrum.shape == (*lead, fh, fw // 2 + 1)


def test_rfft2d_large() -> None:
    x = np.random.default_rng(1).standard_normal((2, 64, 48)).astype(np.float32)
    check(rfft_model(x.shape, (64, 64), parts=True), [x])
    check(rfft_model(x.shape, (128, 16), parts=True), [x])


complex_values = st.one_of(st.floats(-1e6, 1e6, width=32), st.sampled_from([0.0, -0.0, np.inf, -np.inf, np.nan]))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["REAL", "IMAG", "COMPLEX_ABS"]), st.sampled_from([np.complex64, np.complex128]),
       st.lists(st.integers(0, 4), min_size=0, max_size=3), st.data())
def test_complex_parts_match_litert(op: str, dtype, shape: list, data) -> None:
    n = int(np.prod(shape))
    re = data.draw(st.lists(complex_values, min_size=n, max_size=n))
    im = data.draw(st.lists(complex_values, min_size=n, max_size=n))
    x = np.empty(n, dtype)
    x.real, x.imag = re, im  # (not re + 1j * im: 1j * inf has a NaN real part)
    x = x.reshape(shape)
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", shape, dtype)
    o = g.tensor("y", shape, REAL_OF[dtype])
    g.op(op, [xi], [o])
    g.output(o)
    model = mb.build()
    if n == 0:  # LiteRT's get_tensor refuses an empty tensor; check ours alone
        for b in BACKENDS:
            ((y,),) = run_seq(tflite_jit.Interpreter(model_content=model, backend=b), [[x]])
            assert y.shape == tuple(shape) and y.dtype == np.dtype(REAL_OF[dtype])
        return
    (y,) = check(model, [x])
    assert y.dtype == np.dtype(REAL_OF[dtype])


def test_complex_tensors_round_trip() -> None:
    # a complex graph input and output pass through set_tensor / get_tensor unchanged
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", [3], np.complex64)
    r = g.tensor("r", [3], np.float32)
    g.op("REAL", [x], [r])
    g.output(x, r)
    v = np.array([1 + 2j, -3j, 0.5], np.complex64)
    xs, rs = check(mb.build(), [v])
    assert np.array_equal(xs, v) and np.array_equal(rs, v.real)


# ---- errors --------------------------------------------------------------------------------------

def _ours_rejects(data: bytes, pattern: str, feeds: Sequence[np.ndarray] = ()) -> None:
    it = tflite_jit.Interpreter(model_content=data)
    with pytest.raises(RuntimeError, match=pattern):
        it.allocate_tensors()
        for d, x in zip(it.get_input_details(), feeds):
            it.set_tensor(d["index"], x)
        it.invoke()


@pytest.mark.parametrize("fft", [(3, 4), (4, 6), (0, 4), (4, -2)])
def test_rfft2d_lengths_must_be_powers_of_two(fft) -> None:
    x = np.ones((4, 4), np.float32)
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", [4, 4], np.float32)
    f = g.const("fft_length", np.array(fft, np.int32))
    o = g.tensor("spectrum", [4, 3], np.complex64)  # never used: prepare fails first
    g.op("RFFT2D", [xi, f], [o])
    g.output(o)
    data = mb.build()
    litert_rejects(data, [x])
    _ours_rejects(data, "RFFT2D.*powers of two", [x])
    # the same lengths at run time fail when the op runs
    rt = rfft_model(x.shape, (4, 4), runtime_length=True)
    litert_rejects(rt, [x, np.array(fft, np.int32)])
    _ours_rejects(rt, "RFFT2D.*powers of two", [x, np.array(fft, np.int32)])


def test_rfft2d_width_one_is_rejected() -> None:
    # LiteRT accepts fft_width 1 (a power of two) but returns garbage; we refuse it
    x = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    data = rfft_model(x.shape, (4, 1))
    ((theirs,),) = run_seq(litert_interpreter(data), [[x]])
    assert not np.allclose(theirs, np.fft.rfft2(x[:, :1]).astype(np.complex64), atol=1e-3)
    _ours_rejects(data, "RFFT2D: fft_width is 1", [x])


@pytest.mark.parametrize("kw,pattern", [
    ({"dtype": np.int32}, "float32"),
    ({"length_dtype": np.int64}, "int32"),
    ({"length_shape": (3,)}, r"\[2\]"),
])
def test_rfft2d_bad_inputs(kw, pattern) -> None:
    dtype = kw.get("dtype", np.float32)
    x = np.ones((4, 4), dtype)
    data = rfft_model(x.shape, (4, 4), **kw)
    litert_rejects(data, [x])
    _ours_rejects(data, f"RFFT2D.*{pattern}", [x])


def test_rfft2d_needs_rank_two() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", [4], np.float32)
    f = g.const("fft_length", np.array([4, 4], np.int32))
    o = g.tensor("spectrum", [4, 3], np.complex64)
    g.op("RFFT2D", [x, f], [o])
    g.output(o)
    data = mb.build()
    litert_rejects(data, [np.ones(4, np.float32)])
    _ours_rejects(data, "RFFT2D.*rank >= 2", [np.ones(4, np.float32)])


@pytest.mark.parametrize("op", ["REAL", "IMAG", "COMPLEX_ABS"])
@pytest.mark.parametrize("in_dtype,out_dtype,pattern", [
    (np.float32, np.float32, "complex64 or complex128"),
    (np.complex64, np.float64, "declared float64"),
    (np.complex128, np.float32, "declared float32"),
])
def test_complex_op_types(op, in_dtype, out_dtype, pattern) -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", [2], in_dtype)
    o = g.tensor("y", [2], out_dtype)
    g.op(op, [x], [o])
    g.output(o)
    data = mb.build()
    litert_rejects(data, [np.ones(2, in_dtype)])
    _ours_rejects(data, f"{op}.*{pattern}", [np.ones(2, in_dtype)])


def test_rfft2d_huge_runtime_length_is_rejected() -> None:
    x = np.ones((4, 4), np.float32)
    rt = rfft_model(x.shape, (4, 4), runtime_length=True)
    _ours_rejects(rt, "RFFT2D.*tensor limit", [x, np.array([2 ** 20, 2 ** 20], np.int32)])
