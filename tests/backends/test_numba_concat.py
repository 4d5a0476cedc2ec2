"""CONCATENATION on the Numba backend (generators/movement.py): the same bytes as the reference
and as LiteRT, for every axis, float32 / int32 / bool, constant and empty inputs."""

from __future__ import annotations

import numpy as np
import pytest

import tflite_jit
from tests.oracle import litert_run
from tflite_jit.format.builder import ModelBuilder


def _model(shapes: list[tuple[int, ...]], axis: int, dtype, const_last: bool) -> tuple[bytes, list[np.ndarray]]:
    rng = np.random.default_rng(len(shapes) + axis)

    def value(s):
        v = rng.standard_normal(s) * 10
        return (v > 0) if dtype == np.bool_ else v.astype(dtype)

    mb = ModelBuilder()
    g = mb.subgraph()
    ids, feeds = [], []
    for i, s in enumerate(shapes):
        if const_last and i == len(shapes) - 1:
            ids.append(g.const(f"c{i}", value(s)))
        else:
            ids.append(g.input(f"x{i}", s, dtype))
            feeds.append(value(s))
    (y,) = g.apply("CONCATENATION", ids, axis=axis)
    g.output(y)
    return mb.build(), feeds


def _ours(content: bytes, feeds: list[np.ndarray], backend: str):
    it = tflite_jit.Interpreter(model_content=content, backend=backend)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), feeds):
        it.set_tensor(d["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]), it._interpreter.execs[0].steps


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.bool_])
def test_concatenation_compiles_and_matches(axis: int, dtype) -> None:
    base = [2, 3, 4, 5]
    shapes = []
    for k in (1, 2, 3):
        s = list(base)
        s[axis] = k
        shapes.append(tuple(s))
    content, feeds = _model(shapes, axis, dtype, const_last=True)
    ours, steps = _ours(content, feeds, "numba")
    assert [s.backend for s in steps] == ["numba_cpu"]
    ref, _ = _ours(content, feeds, "reference")
    np.testing.assert_array_equal(ours, ref)
    assert ours.dtype == ref.dtype
    (theirs,) = litert_run(content, feeds)
    np.testing.assert_array_equal(ours, theirs)


def test_concatenation_with_an_empty_input() -> None:
    content, feeds = _model([(1, 0, 4), (1, 3, 4), (1, 2, 4)], 1, np.float32, const_last=False)
    ours, steps = _ours(content, feeds, "numba")
    assert steps[0].backend == "numba_cpu"
    np.testing.assert_array_equal(ours, np.concatenate(feeds, axis=1))
