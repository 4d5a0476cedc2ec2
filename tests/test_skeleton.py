"""tflite_jit.tools.skeleton (weight-less model copies) and tflite_jit.tools.placement (where ops
run, without Numba compilation): the two halves of tests/test_suite_placement.py."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tflite_jit import Interpreter
from tflite_jit.explain import execution_plan
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.reader import load_bytes
from tflite_jit.tools import placement, skeleton

SUITE = Path(__file__).parent / "data" / "suite"


def _model() -> bytes:
    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 8, 8, 4), np.float32)
    w = g.const("w", rng.standard_normal((16, 3, 3, 4), dtype=np.float32))
    b = g.const("b", rng.standard_normal(16, dtype=np.float32))
    (y,) = g.apply("CONV_2D", [x, w, b], padding="SAME", stride_w=1, stride_h=1, fused_activation_function="RELU")
    pads = g.const("pads", np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32))
    (y,) = g.apply("PAD", [y, pads])
    shape = g.const("shape", np.array([1, -1], np.int32))
    (y,) = g.apply("RESHAPE", [y, shape])
    g.output(y)
    return mb.build()


def test_strip_drops_weights_keeps_small_constants_and_refill_restores_dtype_shape() -> None:
    content = _model()
    sk = skeleton.strip(content)
    assert len(gzip.compress(sk)) < len(content)
    before = {t.name: t for t in load_bytes(content).subgraphs[0].tensors}
    stripped = {t.name: t for t in load_bytes(sk).subgraphs[0].tensors}
    assert stripped["w"].data is None  # 2304 bytes of float weights: dropped
    np.testing.assert_array_equal(stripped["pads"].data, before["pads"].data)  # kept verbatim
    np.testing.assert_array_equal(stripped["shape"].data, before["shape"].data)
    np.testing.assert_array_equal(stripped["b"].data, before["b"].data)  # 64 bytes: kept
    refilled = {t.name: t for t in load_bytes(skeleton.refill(sk)).subgraphs[0].tensors}
    assert refilled["w"].data.dtype == before["w"].data.dtype
    assert refilled["w"].data.shape == before["w"].data.shape
    assert not np.array_equal(refilled["w"].data, np.zeros_like(refilled["w"].data))
    # seeded: the same skeleton refills to the same bytes
    assert skeleton.refill(sk) == skeleton.refill(sk)
    with pytest.raises(ValueError, match="not a skeleton"):
        skeleton.refill(content)


def _real_reference_ops(content: bytes) -> Counter:
    it = Interpreter(model_content=content)
    it.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        x = rng.integers(0, 10, d["shape"]) if np.dtype(d["dtype"]).kind in "iu" else rng.uniform(-1, 1, d["shape"])
        it.set_tensor(d["index"], x.astype(d["dtype"]))
    it.invoke()
    plans = [it.get_execution_plan()] + [execution_plan(ex) for ex in
                                         it._interpreter.context.prepared_executables().values()]
    return Counter(o["name"] for p in plans for o in p["ops"] if o["backend"] == "reference")


@pytest.mark.parametrize("name", ["kws_audio_int8", "text_gru_while_f32"])
def test_placement_without_compiling_equals_the_real_plan(name: str) -> None:
    """'supported and generated' implies 'compiled': the cheap answer the suite test relies on
    equals the plan of a real allocate_tensors (with Numba compilation), control flow included.
    (The suite runner repeats this comparison on every suite model.)"""
    content = skeleton.refill(gzip.decompress((SUITE / f"{name}.tflite.gz").read_bytes()))
    dry = placement.reference_ops(placement.placement(content))
    assert dry == _real_reference_ops(content)


def test_placement_rows_say_variant_and_reason() -> None:
    rows = placement.placement(_model())
    by_op = {r["op"]: r for r in rows}
    assert by_op["CONV_2D"]["backend"] == "numba_cpu" and by_op["CONV_2D"]["variant"] == "float"
    assert by_op["RESHAPE"]["backend"] in ("numba_cpu", placement.ALIAS, "reference")
    for r in rows:
        assert (r["backend"] == "reference") == bool(r["reason"]) or r["backend"] == placement.ALIAS
