"""The compiled engine end to end: every fusion strategy on the Numba backend gives the reference
backend's numbers; resizing re-plans; threads do not change results; the plan records fallbacks."""

from __future__ import annotations

import numpy as np
import pytest

from tests.oracle import assert_close
from tflite_jit import Interpreter
from tflite_jit.fusion import strategies
from tflite_jit.tools import models

MODELS = {
    "mobilenet_v2": lambda: models.mobilenet_v2(input_size=64, alpha=0.35, num_classes=10),
    "efficientnet_b0": lambda: models.efficientnet_b0(input_size=32, num_classes=10),
    "transformer": lambda: models.transformer_encoder(seq_len=16, d_model=32, num_heads=2, d_ff=64,
                                                      num_layers=1, vocab=50),
}
_cache: dict[str, bytes] = {}


def _model(name: str) -> bytes:
    if name not in _cache:
        _cache[name] = MODELS[name]()
    return _cache[name]


def _inputs(it: Interpreter, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for d in it.get_input_details():
        if np.dtype(d["dtype"]).kind in "iu":
            out.append(rng.integers(0, 50, d["shape"]).astype(d["dtype"]))
        else:
            out.append(rng.uniform(-1, 1, d["shape"]).astype(d["dtype"]))
    return out


def _run(it: Interpreter, xs: list[np.ndarray]) -> list[np.ndarray]:
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


@pytest.mark.parametrize("fusion", [s for s in strategies() if s in
                                    ("none", "epilogue", "elementwise", "rules", "greedy_cost")])
@pytest.mark.parametrize("name", list(MODELS))
def test_strategies_on_numba_match_reference(name: str, fusion: str) -> None:
    ref = Interpreter(model_content=_model(name), backend="reference")
    ours = Interpreter(model_content=_model(name), backend="numba", fusion=fusion)
    for it in (ref, ours):
        it.allocate_tensors()
    xs = _inputs(ref)
    for a, b in zip(_run(ours, xs), _run(ref, xs)):
        assert_close(a, b, what=f"{name}/{fusion}")
    steps = ours._interpreter.execs[0].steps
    assert sum(s.backend == "numba_cpu" for s in steps) >= len(steps) // 2, "most kernels should compile"


def test_resize_replans_and_shapes_are_cached() -> None:
    data = _model("mobilenet_v2")
    ours = Interpreter(model_content=data)
    ref = Interpreter(model_content=data, backend="reference")
    for batch in (1, 3, 1, 3):
        for it in (ours, ref):
            it.resize_tensor_input(0, [batch, 64, 64, 3])
            it.allocate_tensors()
        xs = _inputs(ref, seed=batch)
        for a, b in zip(_run(ours, xs), _run(ref, xs)):
            assert a.shape == (batch, 10)
            assert_close(a, b)


def test_threads_do_not_change_results() -> None:
    data = _model("efficientnet_b0")
    one = Interpreter(model_content=data, num_threads=1)
    two = Interpreter(model_content=data, num_threads=2)
    for it in (one, two):
        it.allocate_tensors()
    xs = _inputs(one)
    for a, b in zip(_run(one, xs), _run(two, xs)):
        assert_close(a, b)


def test_plan_records_backend_and_fallback_reason() -> None:
    it = Interpreter(model_content=_model("transformer"))
    it.allocate_tensors()
    plan = it._interpreter.execs[0].plan
    assert {p["backend"] for p in plan} <= {"numba_cpu", "reference", "alias (no copy)"}
    assert "numba_cpu" in {p["backend"] for p in plan}
    assert all(p["op_names"][0] in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SPLIT", "SPLIT_V", "UNPACK")
               for p in plan if p["backend"] == "alias (no copy)")
    assert all(p["fallback_reason"] for p in plan if p["backend"] == "reference")
    # an op with no Numba kernel (CAST) runs on reference, and the plan says why
    from tflite_jit.format.builder import ModelBuilder

    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (2, 3), np.float32)
    (y,) = g.apply("CAST", [x], out_data_type=2)
    g.output(y)
    it = Interpreter(model_content=mb.build())
    it.allocate_tensors()
    (step,) = it._interpreter.execs[0].plan
    assert step["backend"] == "reference" and "CAST" in step["fallback_reason"], step


def test_fused_intermediates_have_no_buffer_like_a_delegate() -> None:
    it = Interpreter(model_content=_model("mobilenet_v2"), fusion="epilogue")
    it.allocate_tensors()
    ex = it._interpreter.execs[0]
    fused = [t for s in ex.steps for i in s.cluster.ops[:-1] for t in ex.sg.ops[i].outputs
             if t not in s.cluster.outputs]
    assert fused, "epilogue fusion should fuse the residual ADDs"
    with pytest.raises(ValueError, match="Tensor data is null"):
        it.get_tensor(fused[0])
    with pytest.warns(UserWarning, match="preserve_all_tensors"):  # as LiteRT warns with AUTO
        keep = Interpreter(model_content=_model("mobilenet_v2"), experimental_preserve_all_tensors=True)
    keep.allocate_tensors()
    _run(keep, _inputs(keep))
    assert keep.get_tensor(fused[0]).shape == tuple(ex.infos[fused[0]].shape)


def test_self_doubling_chain_does_not_blow_up() -> None:
    """x = x + x sixty times: 60 shared expression nodes, 2^60 written out. Fusing must neither
    hang nor recurse exponentially; the result is exact (powers of two)."""
    from tflite_jit.format.builder import ModelBuilder

    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 8), np.float32)
    y = x
    for _ in range(60):
        (y,) = g.apply("ADD", [y, y])
    g.output(y)
    for fusion in ("elementwise", "rules", "greedy_cost"):
        it = Interpreter(model_content=mb.build(), fusion=fusion)
        it.allocate_tensors()
        xs = np.arange(8, dtype=np.float32).reshape(1, 8)
        (out,) = _run(it, [xs])
        np.testing.assert_array_equal(out, xs * np.float32(2.0**60))


def _split_model(batch: int) -> bytes:
    """x (batch, 24) + 1 -> SPLIT (axis 1) into 3 and SPLIT_V (axis 1) into [10, 14]; z (2, batch,
    6) + 1 -> UNPACK along axis 0 and along axis 2; every piece scaled by its own constant."""
    from tflite_jit.format.builder import ModelBuilder

    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (batch, 24), np.float32)
    z = g.input("z", (2, batch, 6), np.float32)
    (h,) = g.apply("ADD", [x, g.const("one", np.float32(1.0))])
    (hz,) = g.apply("ADD", [z, g.const("one_z", np.float32(1.0))])
    outs = list(g.apply("SPLIT", [g.const("axis", np.int32(1)), h], num_splits=3))
    outs += g.apply("SPLIT_V", [h, g.const("sizes", np.array([10, 14], np.int32)), g.const("axis2", np.int32(1))],
                    num_splits=2)
    outs += g.apply("UNPACK", [hz], num=2, axis=0)
    outs += g.apply("UNPACK", [hz], num=6, axis=2)
    for k, t in enumerate(outs):
        (y,) = g.apply("MUL", [t, g.const(f"s{k}", np.float32(k + 2))])
        g.output(y)
    return mb.build()


@pytest.mark.parametrize("batch", [1, 2])
def test_contiguous_splits_are_views(batch: int) -> None:
    """A SPLIT / SPLIT_V / UNPACK whose pieces are contiguous runs of its input (every axis before
    the split one of size 1) is no step: its outputs view the input's buffer. The others (batch 2
    along axis 1, UNPACK along the last axis) stay steps. Numbers equal LiteRT's either way."""
    from tests.oracle import litert_run

    data = _split_model(batch)
    it = Interpreter(model_content=data)
    it.allocate_tensors()
    plan = it._interpreter.execs[0].plan
    aliased = sorted(p["op_names"][0] for p in plan if p["backend"] == "alias (no copy)")
    assert aliased == (["SPLIT", "SPLIT_V", "UNPACK"] if batch == 1 else ["UNPACK"])
    rng = np.random.default_rng(batch)
    xs = [rng.standard_normal((batch, 24)).astype(np.float32), rng.standard_normal((2, batch, 6)).astype(np.float32)]
    ours = _run(it, xs)
    theirs = litert_run(data, xs)
    assert len(ours) == len(theirs) == 13
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
