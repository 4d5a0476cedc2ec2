"""How the tools take their numbers: benchmark_model's timing loop and stats line, its random
inputs, resident memory and its peak, and how a plan's kernels were obtained (compiled, loaded
from the disk cache, already in memory).

Why a module of its own: `bench`, `compare` and `experiment` measure the same way, and none of
them should need the `bench` command to do it.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


class Stats:
    """benchmark_model's stats line: population std, integer µs except the average."""

    def __init__(self) -> None:
        self.values: list[int] = []

    def add(self, us: int) -> None:
        self.values.append(us)

    def line(self) -> str:
        v = self.values
        if not v:
            return "count=0"
        if min(v) == max(v):
            return f"count={len(v)} curr={v[-1]}(all same)"
        a = np.asarray(v, dtype=np.float64)
        return (f"count={len(v)} first={v[0]} curr={v[-1]} min={min(v)} max={max(v)} "
                f"avg={a.mean():g} std={int(round(a.std()))}")

    @property
    def avg(self) -> float:
        return float(np.mean(self.values)) if self.values else 0.0

    @property
    def median(self) -> float:
        return float(np.median(self.values)) if self.values else 0.0

    def to_dict(self) -> dict[str, Any]:
        v = np.asarray(self.values, dtype=np.float64)
        if not v.size:
            return {"count": 0}
        return {"count": int(v.size), "first": self.values[0], "curr": self.values[-1], "min": int(v.min()),
                "max": int(v.max()), "avg": float(v.mean()), "std": float(v.std()),
                "median": float(np.median(v)), "p5": float(np.percentile(v, 5)),
                "p95": float(np.percentile(v, 95))}


def random_input(shape: Sequence[int], dtype: Any, rng: np.random.Generator,
                 value_range: tuple[int, int] | None = None) -> np.ndarray:
    """benchmark_model's random input ranges, per dtype (an integer range overrides them)."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.uniform(-0.5, 0.5, size=shape).astype(dt)
    if dt == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if dt.kind in "SO":
        return np.full(shape, b"tflite_jit benchmark input string", dtype=object)
    lo, hi = value_range or {np.dtype(np.uint8): (0, 254), np.dtype(np.int8): (-127, 127)}.get(dt, (0, 99))
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64).astype(dt)


def run_loop(invoke: Callable[[], Any], set_inputs: Callable[[], None], min_runs: int, min_secs: float,
             max_secs: float, run_delay: float, run_frequency: float = -1.0,
             after: Callable[[], None] | None = None) -> Stats:
    """benchmark_model's loop: go on while (i < min_runs or elapsed < min_secs) and elapsed <=
    max_secs; inputs are copied in before each run, outside the timer. run_frequency (runs per
    second) overrides run_delay and catches up when behind."""
    stats = Stats()
    start = time.perf_counter()
    i = 0
    while True:
        elapsed = time.perf_counter() - start
        if not ((i < min_runs or elapsed < min_secs) and elapsed <= max_secs):
            break
        set_inputs()
        t0 = time.perf_counter_ns()
        invoke()
        stats.add((time.perf_counter_ns() - t0) // 1000)
        if after is not None:
            after()
        i += 1
        if run_frequency > 0:
            due = start + i / run_frequency
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        elif run_delay > 0:
            time.sleep(run_delay)
    return stats


# -- memory ----------------------------------------------------------------------------------------
def proc_status() -> dict[str, float]:
    """VmRSS, RssAnon, RssFile, RssShmem in MB from /proc/self/status (Linux; {} elsewhere)."""
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[k] = float(v.split()[0]) / 1024
    except OSError:
        pass
    return out


def rss_mb() -> float:
    return proc_status().get("VmRSS", 0.0)


class PeakMemory:
    """benchmark_model's peak monitor: a thread sampling the footprint every interval."""

    def __init__(self, interval_ms: float):
        self.interval = interval_ms / 1000
        self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


# -- kernels ---------------------------------------------------------------------------------------
def kernel_snapshot() -> dict[int, tuple[int, int]]:
    """Numba cache statistics (hits, misses) of every generated kernel loaded in this process, so
    the kernels of one allocation can be told apart: compiled, loaded from the disk cache, or
    already in memory (shared with an earlier interpreter)."""
    out: dict[int, tuple[int, int]] = {}
    for name, mod in list(sys.modules.items()):
        if not name.startswith("tflite_jit_k_") or mod is None:
            continue
        for v in list(vars(mod).values()):
            st = getattr(v, "stats", None) if hasattr(v, "py_func") else None
            if st is not None:
                out[id(v)] = (sum(st.cache_hits.values()), sum(st.cache_misses.values()))
    return out


def kernel_counts(ex: Any, before: dict[int, tuple[int, int]] | None = None) -> dict[str, int]:
    """Kernels of `ex` by how their machine code was obtained, from Numba's cache statistics
    (differences against `before`, a kernel_snapshot() taken before allocation)."""
    counts = {"compiled": 0, "loaded_from_cache": 0, "already_in_memory": 0, "not_compiled": 0}
    before = before or {}
    seen: set[int] = set()
    for step in ex.steps:
        fn = getattr(step.kernel, "fn", None)
        st = getattr(fn, "stats", None)
        if st is None:
            counts["not_compiled"] += 1
            continue
        h0, m0 = before.get(id(fn), (0, 0))
        if id(fn) in seen:  # two steps sharing one kernel: count the first only as compiled/loaded
            counts["already_in_memory"] += 1
        elif sum(st.cache_misses.values()) > m0:
            counts["compiled"] += 1
        elif sum(st.cache_hits.values()) > h0:
            counts["loaded_from_cache"] += 1
        else:
            counts["already_in_memory"] += 1
        seen.add(id(fn))
    return counts


def env_summary() -> dict[str, Any]:
    """Where the numbers came from (the meta of experiment results)."""
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
