"""RANDOM_UNIFORM, RANDOM_STANDARD_NORMAL, MULTINOMIAL and STABLEHLO_RNG_BIT_GENERATOR against
LiteRT: the same numbers for the same seeds, over several consecutive invokes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import assert_close, litert_interpreter, litert_rejects, run_seq
from tflite_jit.format.builder import ModelBuilder

BACKENDS = ("numba", "reference")


def _interpreters(data: bytes) -> list:
    return [("litert", litert_interpreter(data))] + [
        (b, tflite_jit.Interpreter(model_content=data, backend=b)) for b in BACKENDS]


def check_against_litert(data: bytes, feeds: Sequence[Sequence[np.ndarray]]) -> list[list[np.ndarray]]:
    results = {name: run_seq(it, feeds) for name, it in _interpreters(data)}
    theirs = results.pop("litert")
    for name, ours in results.items():
        for k, (o, t) in enumerate(zip(ours, theirs)):
            for j, (a, b) in enumerate(zip(o, t)):
                assert_close(a, b, what=f"{name} invoke {k} output {j}")
    return theirs


def dist_model(op: str, shape: Sequence[int], seed: int, seed2: int, runtime_shape: bool = False) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    if runtime_shape:
        s = g.input("shape", [len(shape)], np.int32)
    else:
        s = g.const("shape", np.array(shape, np.int32).reshape(len(shape)))
    o = g.tensor("out", list(shape), np.float32)
    g.op(op, [s], [o], seed=seed, seed2=seed2)
    g.output(o)
    return mb.build()


def _nonzero_seeds(seed: int, seed2: int) -> bool:
    return (seed & 0xFFFFFFFF) != 0 or (seed2 & 0xFFFFFFFF) != 0  # (0, 0) draws a random seed


seeds = st.one_of(st.integers(-(2 ** 63), 2 ** 63 - 1), st.integers(-5, 5))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["RANDOM_UNIFORM", "RANDOM_STANDARD_NORMAL"]),
       st.lists(st.integers(1, 6), min_size=0, max_size=3), seeds, seeds, st.booleans())
def test_distributions_match_litert(op: str, shape: list, seed: int, seed2: int, runtime: bool) -> None:
    assume(_nonzero_seeds(seed, seed2))
    runtime = runtime or not shape  # an empty constant has no buffer: it would not be a constant
    data = dist_model(op, shape, seed, seed2, runtime_shape=runtime)
    feeds = [[np.array(shape, np.int32)]] * 3 if runtime else [[]] * 3
    outs = check_against_litert(data, feeds)
    assert outs[0][0].shape == tuple(shape)
    if int(np.prod(shape)) >= 4:  # the stream moves on between invokes
        assert not np.array_equal(outs[0][0], outs[1][0])


@pytest.mark.parametrize("op", ["RANDOM_UNIFORM", "RANDOM_STANDARD_NORMAL"])
def test_large_output_matches_litert(op: str) -> None:
    check_against_litert(dist_model(op, [3, 101, 7], 42, -7), [[]] * 2)


def test_seed_truncation_matches_litert() -> None:
    # LiteRT keeps the seeds as C ints: 2**32 + 5 behaves as 5, and the sign is extended
    a = dist_model("RANDOM_UNIFORM", [8], 2 ** 32 + 5, 7)
    b = dist_model("RANDOM_UNIFORM", [8], 5, 7)
    (x,), = check_against_litert(a, [[]])
    (y,), = check_against_litert(b, [[]])
    assert np.array_equal(x, y)
    check_against_litert(dist_model("RANDOM_UNIFORM", [8], 2 ** 31 + 3, -(2 ** 40) - 1), [[]])


def test_reallocate_continues_and_resize_reseeds() -> None:
    data = dist_model("RANDOM_UNIFORM", [3], 1, 2, runtime_shape=True)
    results = []
    for name, it in _interpreters(data):
        outs = run_seq(it, [[np.array([3], np.int32)]] * 2)
        it.allocate_tensors()  # nothing resized: the generator keeps going
        outs += run_seq(it, [[np.array([3], np.int32)]])
        it.resize_tensor_input(0, [2])  # a new shape: prepare runs again and re-seeds
        outs += run_seq(it, [[np.array([2, 2], np.int32)]] * 2)
        results.append((name, outs))
    (_, theirs), *ours = results
    assert not np.array_equal(theirs[2][0], theirs[0][0])  # the stream went on ...
    assert np.array_equal(theirs[3][0].reshape(-1)[:3], theirs[0][0])  # ... until the re-seed
    for name, o in ours:
        for k, (a, b) in enumerate(zip(o, theirs)):
            assert_close(a[0], b[0], what=f"{name} step {k}")


def test_resizing_another_input_reseeds_like_litert() -> None:
    """LiteRT re-prepares every node when any graph input changes shape, so a random op with a
    constant shape re-seeds even though its own inputs did not change."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", [2], np.float32)
    (y,) = g.apply("RELU", [x])
    o = g.tensor("out", [3], np.float32)
    g.op("RANDOM_UNIFORM", [g.const("shape", np.array([3], np.int32))], [o], seed=7, seed2=9)
    g.output(y, o)
    data = mb.build()
    results = []
    for name, it in _interpreters(data):
        outs = run_seq(it, [[np.ones(2, np.float32)]] * 2)
        it.resize_tensor_input(it.get_input_details()[0]["index"], [4])
        outs += run_seq(it, [[np.ones(4, np.float32)]])
        results.append((name, [o[1] for o in outs]))
    (_, theirs), *ours = results
    np.testing.assert_array_equal(theirs[2], theirs[0])  # re-seeded: the stream starts over
    for name, o in ours:
        for a, b in zip(o, theirs):
            assert_close(a, b, what=name)


def test_unseeded_is_random_but_well_distributed() -> None:
    # seed == seed2 == 0: LiteRT draws the seeds from /dev/urandom; only statistics can agree
    n = 20000
    u1, u2 = (run_seq(tflite_jit.Interpreter(model_content=dist_model("RANDOM_UNIFORM", [n], 0, 0)), [[]])[0][0]
              for _ in range(2))
    theirs = run_seq(litert_interpreter(dist_model("RANDOM_UNIFORM", [n], 0, 0)), [[]])[0][0]
    for u in (u1, u2, theirs):
        assert u.dtype == np.float32 and u.shape == (n,)
        assert u.min() >= 0.0 and u.max() < 1.0
        assert abs(float(u.mean()) - 0.5) < 0.02 and abs(float(u.var()) - 1 / 12) < 0.01
    assert not np.array_equal(u1, u2)
    z = run_seq(tflite_jit.Interpreter(model_content=dist_model("RANDOM_STANDARD_NORMAL", [n], 0, 0)), [[]])[0][0]
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1.0) < 0.05


def test_empty_output() -> None:
    it = tflite_jit.Interpreter(model_content=dist_model("RANDOM_UNIFORM", [0, 3], 1, 1))
    (out,), = run_seq(it, [[]])
    assert out.shape == (0, 3) and out.dtype == np.float32


# ---- MULTINOMIAL ---------------------------------------------------------------------------------

def multinomial_model(batch: int, classes: int, ns: int, dtype, seed: int, seed2: int,
                      runtime_ns: bool = False) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    logits = g.input("logits", [batch, classes], np.float32)
    n = g.input("n", [], np.int32) if runtime_ns else g.const("n", np.array(ns, np.int32))
    o = g.tensor("out", [batch, ns], dtype)
    g.op("MULTINOMIAL", [logits, n], [o], seed=seed, seed2=seed2)
    g.output(o)
    return mb.build()


special = st.sampled_from([0.0, 1.0, -1.0, 3.0, -50.0, 80.0, -np.inf, np.inf, np.nan])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 9), st.sampled_from([np.int32, np.int64]),
       seeds, seeds, st.booleans(), st.data())
def test_multinomial_matches_litert(batch: int, classes: int, ns: int, dtype, seed: int, seed2: int,
                                    runtime_ns: bool, data) -> None:
    assume(_nonzero_seeds(seed, seed2))
    logits = np.array(data.draw(st.lists(st.one_of(special, st.floats(-10, 10, width=32)),
                                         min_size=batch * classes, max_size=batch * classes)),
                      np.float32).reshape(batch, classes)
    model = multinomial_model(batch, classes, ns, dtype, seed, seed2, runtime_ns)
    feed = [logits, np.array(ns, np.int32)] if runtime_ns else [logits]
    outs = check_against_litert(model, [feed] * 3)
    assert outs[0][0].dtype == np.dtype(dtype)
    assert outs[0][0].min() >= 0 and outs[0][0].max() <= classes  # == classes: no finite logit


def test_multinomial_follows_the_probabilities() -> None:
    logits = np.log(np.array([[0.1, 0.2, 0.7]], np.float32))
    model = multinomial_model(1, 3, 3000, np.int64, 11, 12)
    (out,), = check_against_litert(model, [[logits]])
    freq = np.bincount(out[0], minlength=3) / 3000
    assert np.allclose(freq, [0.1, 0.2, 0.7], atol=0.03)


# ---- STABLEHLO_RNG_BIT_GENERATOR -----------------------------------------------------------------

ALGORITHMS = {"DEFAULT": 0, "PHILOX": 1, "THREEFRY": 2}  # the RngAlgorithm enum


def rbg_model(algorithm: str | int, state_size: int, out_shape: Sequence[int], dtype, state_dtype=np.uint64,
              n_outputs: int = 2) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    s = g.input("state", [state_size], state_dtype)
    k = g.tensor("new_state", [state_size], np.uint64)
    o = g.tensor("bits", list(out_shape), dtype)
    outs = [k, o][:n_outputs]
    g.op("STABLEHLO_RNG_BIT_GENERATOR", [s], outs, algorithm=ALGORITHMS.get(algorithm, algorithm))
    g.output(*outs)
    return mb.build()


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["DEFAULT", "PHILOX", "THREEFRY"]), st.sampled_from([2, 3]),
       st.lists(st.integers(1, 5), min_size=0, max_size=3),
       st.sampled_from([np.int32, np.uint32, np.int64, np.uint64]),
       st.lists(st.one_of(st.integers(0, 2 ** 64 - 1), st.sampled_from([0, 2 ** 64 - 1, 2 ** 32 - 1])),
                min_size=3, max_size=3))
def test_rng_bit_generator_matches_litert(algorithm: str, size: int, shape: list, dtype, words: list) -> None:
    if algorithm == "THREEFRY":
        size = 2
    state = np.array(words[:size], np.uint64)
    outs = check_against_litert(rbg_model(algorithm, size, shape, dtype), [[state]])
    new_state, bits = outs[0]
    assert new_state.dtype == np.uint64 and bits.shape == tuple(shape) and bits.dtype == np.dtype(dtype)


def test_rng_bit_generator_chains_its_state() -> None:
    # feeding the new state back gives the next numbers, as a model's loop would
    data = rbg_model("PHILOX", 2, [6], np.uint32)
    state = np.array([7, 2 ** 64 - 2], np.uint64)  # the 64-bit counter wraps without carrying
    feeds = []
    for _ in range(3):
        (new_state, _), = check_against_litert(data, [[state]])
        feeds.append(new_state)
        state = new_state
    assert len({int(f[1]) for f in feeds}) == 3


# ---- errors --------------------------------------------------------------------------------------

def _allocate(data: bytes) -> None:
    tflite_jit.Interpreter(model_content=data).allocate_tensors()


@pytest.mark.parametrize("op,shape,out_shape,out_dtype,match", [
    ("RANDOM_UNIFORM", np.array([2, 3], np.int64), [2, 3], np.float32, "RANDOM_UNIFORM.*int32"),
    ("RANDOM_UNIFORM", np.array([2, 3], np.float32), [2, 3], np.float32, "RANDOM_UNIFORM.*int32"),
    ("RANDOM_STANDARD_NORMAL", np.array([[2, 3]], np.int32), [2, 3], np.float32, "1-D"),
    ("RANDOM_UNIFORM", np.array([4], np.int32), [4], np.int32, "float32"),
], ids=["shape_input_int64", "shape_input_float32", "shape_input_2d", "output_int32"])
def test_shape_input_int32_1d_and_output_float32(op, shape, out_shape, out_dtype, match) -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    s = g.const("shape", shape)
    o = g.tensor("out", out_shape, out_dtype)
    g.op(op, [s], [o], seed=1, seed2=1)
    g.output(o)
    data = mb.build()
    litert_rejects(data)
    with pytest.raises(RuntimeError, match=match):
        _allocate(data)


def test_negative_runtime_dimension_is_rejected() -> None:
    # LiteRT dies silently on this; we raise naming the op and the fix
    it = tflite_jit.Interpreter(model_content=dist_model("RANDOM_UNIFORM", [2, 2], 1, 1, runtime_shape=True))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], np.array([-1, 2], np.int32))
    with pytest.raises(RuntimeError, match="RANDOM_UNIFORM.*negative dimension"):
        it.invoke()


def test_multinomial_errors() -> None:
    def model(logits_shape, logits_dtype=np.float32, ns=None, out_dtype=np.int64):
        ns = np.array(3, np.int32) if ns is None else ns
        mb = ModelBuilder()
        g = mb.subgraph()
        lg = g.input("logits", list(logits_shape), logits_dtype)
        n = g.const("n", ns)
        o = g.tensor("out", [1, 3], out_dtype)
        g.op("MULTINOMIAL", [lg, n], [o], seed=1, seed2=2)
        g.output(o)
        return mb.build()

    for data, feed, pattern in [(model([2, 3], np.int32), np.zeros([2, 3], np.int32), "float32"),
                                (model([2, 3], ns=np.array(3, np.int64)), np.zeros([2, 3], np.float32), "int32"),
                                (model([2, 3], out_dtype=np.float32), np.zeros([2, 3], np.float32), "int32/int64"),
                                (model([2, 0]), np.zeros([2, 0], np.float32), "no classes")]:
        litert_rejects(data, [feed])
        with pytest.raises(RuntimeError, match=f"MULTINOMIAL.*{pattern}"):
            _allocate(data)
    with pytest.raises(RuntimeError, match="MULTINOMIAL.*2-D"):
        _allocate(model([6]))
    with pytest.raises(RuntimeError, match="MULTINOMIAL.*scalar"):
        _allocate(model([2, 3], ns=np.array([3], np.int32)))
    with pytest.raises(RuntimeError, match="MULTINOMIAL.*>= 0"):
        _allocate(model([2, 3], ns=np.array(-1, np.int32)))


@pytest.mark.parametrize("algorithm,size,state_dtype,dtype,pattern", [
    ("THREEFRY", 3, np.uint64, np.int32, "THREEFRY needs a state of 2"),
    ("PHILOX", 4, np.uint64, np.int32, "2 or 3"),
    ("PHILOX", 2, np.int64, np.int32, "uint64"),
    ("DEFAULT", 2, np.uint64, np.float32, "int32, int64"),
])
def test_rng_bit_generator_errors(algorithm, size, state_dtype, dtype, pattern) -> None:
    data = rbg_model(algorithm, size, [4], dtype, state_dtype)
    litert_rejects(data, [np.ones(size, state_dtype)])
    with pytest.raises(RuntimeError, match=pattern):
        _allocate(data)


def test_rng_bit_generator_unknown_algorithm() -> None:
    data = rbg_model(7, 2, [4], np.int32)
    litert_rejects(data, [np.ones(2, np.uint64)])
    with pytest.raises(RuntimeError, match="unknown RNG algorithm 7"):
        _allocate(data)


def test_rng_bit_generator_needs_two_outputs() -> None:
    with pytest.raises(RuntimeError, match="2 outputs"):
        _allocate(rbg_model("PHILOX", 2, [4], np.int32, n_outputs=1))


def test_huge_runtime_shape_is_rejected() -> None:
    it = tflite_jit.Interpreter(model_content=dist_model("RANDOM_UNIFORM", [2, 2], 1, 1, runtime_shape=True))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], np.array([2 ** 20, 2 ** 20], np.int32))
    with pytest.raises(RuntimeError, match="RANDOM_UNIFORM.*tensor limit"):
        it.invoke()


@pytest.mark.parametrize("fusion", ["none", "elementwise", "rules", "greedy_cost"])
def test_random_feeding_fused_math(fusion: str) -> None:
    # the stateful op stays one step per invoke whatever the fusion strategy; consumers fuse freely
    mb = ModelBuilder()
    g = mb.subgraph()
    s = g.const("shape", np.array([4, 5], np.int32))
    u = g.tensor("u", [4, 5], np.float32)
    g.op("RANDOM_STANDARD_NORMAL", [s], [u], seed=9, seed2=10)
    x = g.input("x", [4, 5], np.float32)
    (y,) = g.apply("MUL", [u, x])
    (z,) = g.apply("ADD", [y, g.const("b", np.full([4, 5], 0.5, np.float32))])
    g.output(z)
    data = mb.build()
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    theirs = run_seq(litert_interpreter(data), [[x]] * 3)
    ours = run_seq(tflite_jit.Interpreter(model_content=data, fusion=fusion), [[x]] * 3)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert_close(a[0], b[0], what=f"invoke {k}")
