"""benchmarks/isolated.py, the suite's timing harness: each engine in a worker process of its own.

A worker that dies (LiteRT aborts its process on some models) or hangs must become an error in
the model's row, with the other engines' numbers kept; a healthy run must give the same row
columns as the old one-process harness. Tiny models from the tests' builder, no TensorFlow.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.isolated import (
    BUILTIN,
    OURS,
    XNN,
    EngineFailed,
    EngineWorker,
    process_cpu_ns,
    time_isolated,
    wait_quiet,
)
from benchmarks.suite import report
from benchmarks.suite.run import measure
from tflite_jit.format.builder import ModelBuilder

HERE = "tests.test_suite_harness"


def _tiny_model() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4, 4, 3), np.float32)
    c = g.const("c", np.linspace(-1, 1, 3, dtype=np.float32))
    (y,) = g.apply("ADD", [x, c], fused_activation_function="RELU")
    (z,) = g.apply("MUL", [y, y])
    g.output(z)
    return mb.build()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("suite") / "tiny_f32.tflite"
    p.write_bytes(_tiny_model())
    return p


class _AbortsOnInvoke:
    """A LiteRT interpreter whose n-th invoke aborts the process, the way LiteRT's own fatal
    errors do (a message on stderr, then SIGABRT)."""

    def __init__(self, it: Any, n: int):
        self._it, self._left = it, n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._it, name)

    def invoke(self) -> None:
        self._left -= 1
        if self._left <= 0:
            os.write(2, b"fatal: the test engine aborts here\n")
            os.abort()
        self._it.invoke()


def aborts_in_timing(content: bytes, threads: int, backend: str, fusion: str | None) -> Any:
    """Survives the conformance invoke and the first warm-up, dies in the timing loop."""
    from benchmarks.side_by_side import litert_engine

    return _AbortsOnInvoke(litert_engine(content, threads, BUILTIN), 3)


def aborts_on_load(content: bytes, threads: int, backend: str, fusion: str | None) -> Any:
    os.write(2, b"fatal: cannot load\n")
    os.abort()


class _SpinsForever:
    """A LiteRT interpreter whose first invoke leaves a thread spinning for good (a pool with
    OMP_WAIT_POLICY=ACTIVE)."""

    def __init__(self, it: Any):
        self._it, self._spinning = it, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._it, name)

    def invoke(self) -> None:
        if not self._spinning:
            import threading

            def spin() -> None:
                while True:
                    pass
            threading.Thread(target=spin, daemon=True).start()
            self._spinning = True
        self._it.invoke()


def spins_forever(content: bytes, threads: int, backend: str, fusion: str | None) -> Any:
    from benchmarks.side_by_side import litert_engine

    return _SpinsForever(litert_engine(content, threads, BUILTIN))


def sleeps(it: Any) -> None:
    time.sleep(30)


def test_dying_workers_are_errors_in_the_row(tiny: Path) -> None:
    dies_timing, dies_loading = f"{HERE}:aborts_in_timing", f"{HERE}:aborts_on_load"
    (row,) = measure(tiny, [1], runs=6, kinds=(XNN, dies_loading, BUILTIN, dies_timing))
    errs = row["errors"]
    assert set(errs) == {dies_timing, dies_loading}
    assert "died during load" in errs[dies_loading] and "SIGABRT" in errs[dies_loading]
    assert "fatal: cannot load" in errs[dies_loading]
    assert "died during time" in errs[dies_timing] and "the test engine aborts here" in errs[dies_timing]
    assert set(row["median_ms"]) == {XNN, BUILTIN}  # the survivors are timed to the end
    assert row["xnnpack_vs_builtin"]["max_rel"] <= 1e-6
    assert row["harness"] == "isolated"


def test_isolated_row_has_the_shared_harness_columns(tiny: Path) -> None:
    (iso,) = measure(tiny, [1], runs=4, harness="isolated")
    (shared,) = measure(tiny, [1], runs=4, harness="shared")
    assert iso["errors"] == {} and shared["errors"] == {}
    for key in ("prepare_s", "first_invoke_s", "median_ms", "p90_ms", "conformance", "ops", "reference_ops",
                "xnnpack_vs_builtin", "dry_placement"):
        assert key in iso and key in shared, key
    assert set(iso["median_ms"]) == {OURS, XNN, BUILTIN}
    assert set(iso["settle_ms"]) == {OURS, XNN, BUILTIN}
    assert iso["conformance"]["against"] == BUILTIN and iso["conformance"]["max_rel"] <= 1e-6
    assert iso["ops"] == shared["ops"] and iso["reference_ops"] == shared["reference_ops"]
    assert iso["dry_placement"]["matches_real_plan"]
    md, data = report.build([iso], {"tiny_f32": {"family": "tiny", "mode": "f32"}}, "cmd")
    assert "Timing harness: isolated" in md and data["harness"] == ["isolated"]


def test_a_hung_worker_is_killed_and_reported(tiny: Path) -> None:
    w = EngineWorker(BUILTIN)
    try:
        w.load(str(tiny), 1)
        t0 = time.perf_counter()
        with pytest.raises(EngineFailed, match="gave no answer to call in 1s, killed"):
            w.request("call", f"{HERE}:sleeps", timeout=1.0)
        assert time.perf_counter() - t0 < 10
        with pytest.raises(EngineFailed, match="gave no answer"):  # and stays dead
            w.outputs()
        assert wait_quiet([w.pid]) < 1.0  # a dead process is quiet
    finally:
        w.close()


def test_engine_errors_keep_the_worker() -> None:
    w = EngineWorker(BUILTIN)
    try:
        with pytest.raises(EngineFailed, match="ValueError"):
            w.load(b"not a model", 1)
        with pytest.raises(EngineFailed, match="outputs before load"):
            w.outputs()
        assert w.dead is None
    finally:
        w.close()


def test_wait_quiet_waits_out_a_spinning_thread() -> None:
    """The settle wait sees every thread's CPU time, not just the main thread's: a process whose
    side thread spins 0.3 s (a pool after its parallel region) is waited for."""
    import subprocess
    import sys

    code = ("import threading, time\n"
            "def spin():\n"
            "    t = time.perf_counter()\n"
            "    while time.perf_counter() - t < 0.3:\n"
            "        pass\n"
            "threading.Thread(target=spin).start()\n"
            "time.sleep(3)\n")
    p = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.05)
        assert 0.15 < wait_quiet([p.pid]) < 0.9
        assert wait_quiet([p.pid]) < 0.05  # asleep now: one poll
    finally:
        p.kill()
        p.wait()


def test_a_pool_that_never_sleeps_is_stopped_between_its_turns(tiny: Path) -> None:
    workers = {k: EngineWorker(k) for k in (XNN, f"{HERE}:spins_forever")}
    spinner = workers[f"{HERE}:spins_forever"]
    try:
        for w in workers.values():
            w.load(str(tiny), 1)
            w.inputs(0)
        timing, errors = time_isolated(workers, runs=4, per_turn=2, max_settle_s=0.2)
        assert errors == {} and set(timing["median_ms"]) == set(workers)
        assert timing["paused_turns"] == {f"{HERE}:spins_forever": 2}  # after each of its turns
        assert timing["settle_ms"][f"{HERE}:spins_forever"] >= 200 and timing["settle_ms"][XNN] < 200
        assert spinner.paused
        c0 = process_cpu_ns(spinner.pid)
        time.sleep(0.1)
        assert process_cpu_ns(spinner.pid) - c0 < 5e6  # stopped: its spinning thread gets no CPU
        assert len(spinner.time(1)) == 1 and not spinner.paused  # a request resumes it
    finally:
        for w in workers.values():
            w.close()
