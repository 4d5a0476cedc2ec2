"""Threads: separate interpreters in separate threads give identical results (kernels release the
GIL; the speedup is measured by tools/bench_threads.py, never asserted here), and one interpreter
used from two threads at once refuses the overlapping call with a RuntimeError instead of
corrupting its buffers. tests/test_interpreter_api.py covers two interpreters x 20 invokes and
a simulated overlap; these add scale (8 threads x 200 invokes) and a real, deterministic overlap
(a custom op that blocks inside invoke)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tflite_jit
from tflite_jit.format.builder import ModelBuilder

THREADS, INVOKES = 8, 200


def tiny_model() -> bytes:
    """FC -> ADD -> TANH -> MUL (a signature too): cheap, several kernels, float math whose
    result would show any mixing of buffers between threads."""
    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 16), np.float32)
    w = g.const("w", rng.normal(size=(16, 16)).astype(np.float32))
    (h,) = g.apply("FULLY_CONNECTED", [x, w, -1])
    (a,) = g.apply("ADD", [h, g.const("b", rng.normal(size=(1, 16)).astype(np.float32))])
    (t,) = g.apply("TANH", [a])
    y = g.tensor("y", (1, 16))
    g.op("MUL", [t, x], [y])
    g.output(y)
    mb.signature("serving_default", {"x": x}, {"y": y})
    return mb.build()


TINY = tiny_model()


def _inputs(k: int) -> list[np.ndarray]:
    rng = np.random.default_rng(100 + k)
    return [rng.normal(size=(1, 16)).astype(np.float32) for _ in range(INVOKES)]


def _run_all(it: Any, xs: list[np.ndarray]) -> list[np.ndarray]:
    out = it.get_output_details()[0]["index"]
    res = []
    for x in xs:
        it.set_tensor(0, x)
        it.invoke()
        res.append(it.get_tensor(out))
    return res


def _in_threads(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(k) in n threads started together; re-raise the first failure here."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def body(k: int) -> None:
        try:
            barrier.wait()
            results[k] = work(k)
        except BaseException as e:  # noqa: BLE001 - reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_separate_interpreters_in_8_threads_match_one_thread(backend: str) -> None:
    inputs = [_inputs(k) for k in range(THREADS)]
    alone = tflite_jit.Interpreter(model_content=TINY, backend=backend)
    alone.allocate_tensors()
    expected = [_run_all(alone, xs) for xs in inputs]
    interpreters = []
    for _ in range(THREADS):
        it = tflite_jit.Interpreter(model_content=TINY, backend=backend)
        it.allocate_tensors()
        interpreters.append(it)
    got = _in_threads(THREADS, lambda k: _run_all(interpreters[k], inputs[k]))
    for k in range(THREADS):
        for a, b in zip(got[k], expected[k]):
            assert np.array_equal(a, b), f"thread {k} differs from the single-threaded run"


def test_interpreters_created_and_dropped_in_threads() -> None:
    """Construction, allocation (kernel compile / cache lookups) and release race-free."""
    x = _inputs(0)[:5]
    base = tflite_jit.Interpreter(model_content=TINY)
    base.allocate_tensors()
    expected = _run_all(base, x)

    def work(k: int) -> list[np.ndarray]:
        out = []
        for _ in range(5):
            it = tflite_jit.Interpreter(model_content=TINY, num_threads=1 + k % 2)
            it.allocate_tensors()
            out.extend(_run_all(it, x))
        return out

    for res in _in_threads(THREADS, work):
        for i, r in enumerate(res):
            assert np.array_equal(r, expected[i % 5])


def test_one_interpreter_from_8_threads_refuses_or_runs_never_corrupts() -> None:
    it = tflite_jit.Interpreter(model_content=TINY)
    it.allocate_tensors()
    x = _inputs(0)[0]
    it.set_tensor(0, x)
    it.invoke()
    out = it.get_output_details()[0]["index"]
    expected = it.get_tensor(out)
    busy = [0] * THREADS

    def work(k: int) -> None:
        for _ in range(INVOKES):
            try:
                it.invoke()
            except RuntimeError as e:
                assert "one interpreter per thread" in str(e), str(e)
                busy[k] += 1
            assert np.array_equal(it.get_tensor(out), expected)

    _in_threads(THREADS, work)
    assert sum(busy) < THREADS * INVOKES  # most calls ran
    it.invoke()
    assert np.array_equal(it.get_tensor(out), expected)


def _blocking_model() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (4,), np.float32)
    y = g.tensor("y", (4,))
    g.op("Block", [x], [y], custom=True)
    z = g.tensor("z", (4,))
    g.op("RELU", [y], [z])
    g.output(z)
    mb.signature("serving_default", {"x": x}, {"z": z})
    return mb.build()


def test_a_real_overlap_is_detected_and_the_first_call_completes() -> None:
    """Thread A sits inside invoke (a custom op waiting on an event); every call that plans or
    runs the interpreter from the main thread meanwhile raises; A then finishes correctly."""
    inside, release = threading.Event(), threading.Event()

    def block(x: np.ndarray, options: dict) -> np.ndarray:
        inside.set()
        assert release.wait(30)
        return x * 2

    it = tflite_jit.Interpreter(model_content=_blocking_model(), custom_ops={"Block": block})
    it.allocate_tensors()
    x = np.array([1, -2, 3, -4], np.float32)
    it.set_tensor(0, x)
    errors: list[BaseException] = []

    def a() -> None:
        try:
            it.invoke()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=a)
    t.start()
    try:
        assert inside.wait(30)
        for call in (it.invoke, it.allocate_tensors, lambda: it.resize_tensor_input(0, [4]),
                     lambda: it.get_signature_runner()(x=x)):
            with pytest.raises(RuntimeError, match="one interpreter per thread"):
                call()
    finally:
        release.set()
        t.join(30)
    assert not errors, errors
    assert np.array_equal(it.get_tensor(it.get_output_details()[0]["index"]), np.maximum(x * 2, 0))
    inside.clear()  # and the interpreter is usable again, from this thread
    it.invoke()


def test_signature_runners_in_threads() -> None:
    """One runner per thread on separate interpreters: the signature path is thread-safe too."""
    inputs = [_inputs(k)[:50] for k in range(THREADS)]
    alone = tflite_jit.Interpreter(model_content=TINY)
    expected = [[alone.get_signature_runner()(x=x)["y"] for x in xs] for xs in inputs]

    def work(k: int) -> list[np.ndarray]:
        run = tflite_jit.Interpreter(model_content=TINY).get_signature_runner()
        return [run(x=x)["y"] for x in inputs[k]]

    for got, exp in zip(_in_threads(THREADS, work), expected):
        for a, b in zip(got, exp):
            assert np.array_equal(a, b)
