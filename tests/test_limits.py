"""Resource limits (runtime/limits.py, runtime/arena.py): the total a model allocates is checked
against a configurable byte limit before anything is allocated, so a small file cannot ask for a
terabyte, and the refusal is LiteRT's RuntimeError naming the limit and how to raise it."""

from __future__ import annotations

import numpy as np
import pytest

import tflite_jit
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.runtime import arena, limits


def broadcast_model(k: int, n: int) -> bytes:
    """x (1,) -> k x BROADCAST_TO (n,) -> ADD_N -> SUM -> scalar: k + 1 float32 tensors of n
    elements, all live at once (ADD_N reads them together), all intermediates (in the arena)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1,), np.float32)
    shape = g.const("shape", np.array([n], np.int32))
    ts = []
    for i in range(k):
        t = g.tensor(f"b{i}", (n,))
        g.op("BROADCAST_TO", [x, shape], [t])
        ts.append(t)
    s = g.tensor("s", (n,))
    g.op("ADD_N", ts, [s])
    y = g.tensor("y", ())
    g.op("SUM", [s, g.const("axis", np.array([0], np.int32))], [y])
    g.output(y)
    return mb.build()


# ---- parsing and the limit in force ------------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ("1073741824", 1 << 30), ("512M", 512 << 20), ("8G", 8 << 30), ("8GiB", 8 << 30), ("8gb", 8 << 30),
    ("1.5K", 1536), (" 2T ", 2 << 40), ("64k", 64 << 10), ("0", None), ("none", None), ("Unlimited", None),
])
def test_parse_bytes(text: str, value: int | None) -> None:
    assert limits.parse_bytes(text) == value


@pytest.mark.parametrize("text", ["lots", "-5", "8X", "1e9", "G"])
def test_parse_bytes_rejects_typos(text: str) -> None:
    with pytest.raises(ValueError, match="TFLITE_JIT_MAX_BYTES"):
        limits.parse_bytes(text)


def test_limit_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(limits.ENV, raising=False)
    assert limits.max_bytes() == limits.physical_memory() > 0
    monkeypatch.setenv(limits.ENV, "3M")
    assert limits.max_bytes() == 3 << 20
    assert limits.max_bytes(1000) == 1000  # an explicit argument wins
    assert limits.max_bytes(0) is None  # ... and 0 disables
    monkeypatch.setenv(limits.ENV, "none")
    assert limits.max_bytes() is None


# ---- the arena planner -------------------------------------------------------------------------


def test_plan_checks_the_total_not_each_tensor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(limits.ENV, raising=False)
    chain = [arena.Interval(i, 1 << 20, i, i + 1) for i in range(10)]  # ping-pong: 2 MiB live
    offsets, size = arena.plan(chain, limit=3 << 20)
    assert size == 2 << 20 and len(offsets) == 10
    together = [arena.Interval(i, 1 << 20, 0, 5) for i in range(10)]  # all live: 10 MiB
    with pytest.raises(limits.ResourceLimitError, match=r"10485760 bytes.*over the 3145728-byte"):
        arena.plan(together, limit=3 << 20)
    assert issubclass(limits.ResourceLimitError, RuntimeError)
    with pytest.raises(RuntimeError, match="inputs, outputs and variables"):
        arena.plan(chain, limit=3 << 20, other_bytes=2 << 20)


def test_plan_refuses_a_huge_tensor_before_placing() -> None:
    many = [arena.Interval(i, 1 << 32, 0, 1) for i in range(5000)]
    with pytest.raises(RuntimeError, match=r"largest: tensor \d+ \(4294967296 bytes\).*and 4997 more"):
        arena.plan(many, limit=1 << 30)


def test_allocate_aligns() -> None:
    pool, base = arena.allocate(1000)
    assert (pool.ctypes.data + base) % arena.ALIGN == 0 and pool.size - base >= 1000


# ---- through the Interpreter -------------------------------------------------------------------


def test_a_small_file_cannot_ask_for_a_terabyte(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(limits.ENV, raising=False)
    content = broadcast_model(256, 1 << 30)  # 257 tensors of 4 GiB (each under the per-tensor cap)
    assert len(content) < 32 << 10
    # fusion "none": the 256 intermediates are the point (a fused chain needs none of them)
    it = tflite_jit.Interpreter(model_content=content, backend="reference", fusion="none")
    with pytest.raises(RuntimeError) as info:
        it.allocate_tensors()
    msg = str(info.value)
    del info  # its traceback holds the interpreter's frames (and so a reference to its wrapper)
    assert "1.0 TiB" in msg and "TFLITE_JIT_MAX_BYTES=" in msg and "physical memory" in msg
    with pytest.raises(RuntimeError, match="not ready"):
        it.invoke()


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_env_limit_refuses_then_allows(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    content = broadcast_model(4, 1 << 16)  # 5 x 256 KiB intermediates, 4 live together
    monkeypatch.setenv(limits.ENV, "512K")
    it = tflite_jit.Interpreter(model_content=content, backend=backend, fusion="none")
    with pytest.raises(RuntimeError, match=r"over the 524288-byte \(512.0 KiB\) limit set by TFLITE_JIT_MAX_BYTES"):
        it.allocate_tensors()
    monkeypatch.setenv(limits.ENV, "16M")
    it.allocate_tensors()  # the same interpreter, once the limit is raised
    it.set_tensor(0, np.array([0.5], np.float32))
    it.invoke()
    assert it.get_tensor(it.get_output_details()[0]["index"]) == np.float32(0.5 * 4 * (1 << 16))


def test_a_malformed_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(limits.ENV, "plenty")
    it = tflite_jit.Interpreter(model_content=broadcast_model(2, 16), backend="reference")
    with pytest.raises(ValueError, match="TFLITE_JIT_MAX_BYTES='plenty' is not a byte count"):
        it.allocate_tensors()


def test_resize_into_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An input resized so that the intermediates grow past the limit fails at allocate."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (4,), np.float32, shape_signature=(-1,))
    a = g.tensor("a", (4,))
    g.op("RELU", [x], [a])
    b = g.tensor("b", (4,))
    g.op("NEG", [a], [b])
    y = g.tensor("y", (4,))
    g.op("RELU", [b], [y])
    g.output(y)
    monkeypatch.setenv(limits.ENV, "1M")
    it = tflite_jit.Interpreter(model_content=mb.build(), backend="reference", fusion="none")
    it.allocate_tensors()
    it.resize_tensor_input(0, [1 << 20])  # 4 MiB a tensor
    with pytest.raises(RuntimeError, match="limit set by TFLITE_JIT_MAX_BYTES"):
        it.allocate_tensors()


def test_inputs_and_outputs_count_too(monkeypatch: pytest.MonkeyPatch) -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1 << 20,), np.float32)
    y = g.tensor("y", (1 << 20,))
    g.op("RELU", [x], [y])
    g.output(y)
    monkeypatch.setenv(limits.ENV, "1M")
    it = tflite_jit.Interpreter(model_content=mb.build(), backend="reference")
    with pytest.raises(RuntimeError, match="TFLITE_JIT_MAX_BYTES"):
        it.allocate_tensors()


def test_a_kept_allocate_error_does_not_block_the_next_allocate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(limits.ENV, "64K")
    it = tflite_jit.Interpreter(model_content=broadcast_model(4, 1 << 16), backend="reference")
    try:
        it.allocate_tensors()
    except RuntimeError as e:
        kept = e  # as a server logging the error later would
    monkeypatch.setenv(limits.ENV, "16M")
    it.allocate_tensors()
    assert kept is not None


def test_max_bytes_keyword_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    content = broadcast_model(4, 1 << 16)
    monkeypatch.setenv(limits.ENV, "16M")
    it = tflite_jit.Interpreter(model_content=content, backend="reference", fusion="none", max_bytes="512K")
    with pytest.raises(RuntimeError, match="limit set by the max_bytes argument"):
        it.allocate_tensors()
    monkeypatch.setenv(limits.ENV, "512K")
    it = tflite_jit.Interpreter(model_content=content, backend="reference", fusion="none", max_bytes=0)
    it.allocate_tensors()  # 0 (or 'none'): no limit, whatever the environment says
    it = tflite_jit.Interpreter(model_content=content, backend="reference", fusion="none", max_bytes=16 << 20)
    it.allocate_tensors()


@pytest.mark.parametrize("bad", [-1, "plenty", 1.5, True])
def test_max_bytes_keyword_rejects_bad_values(bad) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        tflite_jit.Interpreter(model_content=broadcast_model(1, 4), max_bytes=bad)
