"""One suite model, measured: tflite_jit vs LiteRT (XNNPACK, builtin kernels), plus where our ops
ran and whether our outputs match LiteRT's builtin kernels on the same seeded input.

Runs in its own process per model (`python -m benchmarks.suite _one PATH`), so a model that
exhausts memory or hangs costs one row, never the run. By default each engine also runs in a
worker process of its own and is timed alone (benchmarks/isolated.py: rounds of batches in
rotating order, a wait for the previous engine's thread pool to stop spinning before each turn),
so an engine that aborts its process is an error in the row and the 2-thread numbers are not the
engines' pools fighting; `harness="shared"` keeps the old loop (benchmarks/side_by_side.py's
time_engines: one process, invokes interleaved).
"""

from __future__ import annotations

import os
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.isolated import BUILTIN, OURS, XNN, Engine, EngineWorker, error_text, time_isolated
from benchmarks.side_by_side import time_engines
from tflite_jit import Interpreter
from tflite_jit.explain import execution_plan
from tflite_jit.tools import placement

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)

#: how the engines are timed (see measure)
HARNESSES = ("isolated", "shared")


def compare(ours: list[np.ndarray], ref: list[np.ndarray]) -> dict[str, Any]:
    """The project's contracts: float outputs within max|a-b| <= 1e-4 * max(1, max|ref|) of LiteRT
    (reported as that relative error), integer outputs bit-exact (reported as mismatch counts)."""
    out: dict[str, Any] = {"exact": True, "max_rel": 0.0, "int_mismatches": 0, "int_elements": 0,
                           "max_lsb": 0}
    for a, b in zip(ours, ref):
        if a.shape != b.shape or a.dtype != b.dtype:
            out.update(exact=False, error=f"output {a.shape} {a.dtype} vs LiteRT {b.shape} {b.dtype}")
            return out
        if not np.array_equal(a, b):
            out["exact"] = False
        if a.dtype.kind == "f":
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            if not (np.isfinite(a64).all() and np.isfinite(b64).all()):
                same = np.array_equal(np.isnan(a64), np.isnan(b64)) and np.array_equal(
                    a64[~np.isfinite(a64)], b64[~np.isfinite(b64)])
                if not same:
                    out["max_rel"] = float("inf")
                    continue
                fin = np.isfinite(a64)
                a64, b64 = a64[fin], b64[fin]
            if a64.size:
                scale = max(1.0, float(np.abs(b64).max()))
                out["max_rel"] = max(out["max_rel"], float(np.abs(a64 - b64).max()) / scale)
        elif a.dtype.kind in "iu":
            diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
            out["int_mismatches"] += int((diff != 0).sum())
            out["int_elements"] += int(diff.size)
            out["max_lsb"] = max(out["max_lsb"], int(diff.max()) if diff.size else 0)
    return out


def _plans(it: Interpreter) -> list[dict[str, Any]]:
    """Subgraph 0's plan and those of the control-flow subgraphs prepared by the invokes so far."""
    plans = [it.get_execution_plan(0)]
    for _, ex in it._interpreter.context.prepared_executables().items():
        plans.append(execution_plan(ex))
    return plans


def _placement_summary(plans: list[dict[str, Any]]) -> dict[str, Any]:
    ref = Counter()
    reasons: dict[str, str] = {}
    total = 0
    for p in plans:
        for o in p["ops"]:
            total += 1
            if o["backend"] == "reference":
                ref[o["name"]] += 1
                reasons.setdefault(o["name"], o["reason"])
    return {"ops": total, "reference_ops": dict(ref), "reference_reasons": reasons}


def placement_of(it: Interpreter) -> dict[str, Any]:
    """The row's placement columns, computed where the interpreter lives (a worker process)."""
    return _placement_summary(_plans(it))


def _engine(harness: str, workers: dict[str, EngineWorker], kind: str, path: Path, content: bytes,
            threads: int, backend: str, fusion: str | None) -> Engine | EngineWorker:
    """A prepared engine: in this process (shared) or in its worker, started or reused (isolated)."""
    if harness == "shared":
        return Engine(kind, content, threads, backend, fusion)
    w = workers.get(kind)
    if w is None or w.dead:
        if w is not None:
            w.close()
        w = workers[kind] = EngineWorker(kind)
    w.load(str(path), threads, backend, fusion)
    return w


def measure(path: Path, threads: list[int], runs: int, backend: str = "numba",
            fusion: str | None = None, harness: str = "isolated",
            kinds: tuple[str, ...] = (OURS, XNN, BUILTIN)) -> list[dict[str, Any]]:
    """One row per thread count (see report.py for the columns). harness 'isolated': each engine
    in its own worker process, timed one at a time (benchmarks/isolated.py); 'shared': all in this
    process, invokes interleaved (side_by_side.time_engines; at 2+ threads the pools compete)."""
    if harness not in HARNESSES:
        raise ValueError(f"harness {harness!r}: one of {', '.join(HARNESSES)}")
    content = path.read_bytes()
    rows = []
    dry: dict[str, Any] | None = None
    workers: dict[str, EngineWorker] = {}
    try:
        for n in threads:
            row: dict[str, Any] = {"model": path.stem, "threads": n, "harness": harness, "errors": {}}
            engines: dict[str, Engine | EngineWorker] = {}
            for k in kinds:
                try:
                    engines[k] = _engine(harness, workers, k, path, content, n, backend, fusion)
                    if k == OURS:
                        row["prepare_s"] = engines[k].prepare_s
                except Exception as e:
                    row["errors"][k] = error_text(e)
            xs: list[np.ndarray] | None = None
            outs: dict[str, list[np.ndarray]] = {}
            for k in list(engines):
                try:
                    if xs is None:  # the first engine's seeded inputs, given to all
                        xs = engines[k].inputs(0)
                    else:
                        engines[k].set_inputs(xs)
                    outs[k], first_s = engines[k].outputs()
                    if k == OURS:
                        row["first_invoke_s"] = first_s
                except Exception as e:
                    row["errors"][k] = error_text(e)
                    del engines[k]
            if OURS in engines:
                try:
                    row.update(engines[OURS].call("benchmarks.suite.run:placement_of"))
                except Exception as e:
                    row["errors"]["placement"] = error_text(e)
            ref_key = BUILTIN if BUILTIN in outs else XNN if XNN in outs else None
            if OURS in outs and ref_key:
                row["conformance"] = dict(compare(outs[OURS], outs[ref_key]), against=ref_key)
            if XNN in outs and BUILTIN in outs:
                row["xnnpack_vs_builtin"] = compare(outs[XNN], outs[BUILTIN])
            if engines and harness == "isolated":
                timing, failed = time_isolated(engines, runs)  # type: ignore[arg-type]
                row.update(timing)
                row["errors"].update(failed)
            elif engines and xs is not None:
                try:
                    row.update(time_engines({k: e.it for k, e in engines.items()}, xs, runs))  # type: ignore[union-attr]
                except Exception as e:  # an engine failing mid-loop is recorded, the row kept
                    row["errors"]["timing"] = error_text(e)
            if dry is None and OURS in engines:
                # the CI test's cheap placement (tflite_jit.tools.placement) against the real plan
                try:
                    dry = {"reference_ops": dict(placement.reference_ops(placement.placement(content, backend)))}
                except Exception as e:
                    dry = {"error": error_text(e)}
                dry["matches_real_plan"] = dry.get("reference_ops") == row.get("reference_ops")
            if dry is not None:
                row["dry_placement"] = dry
            rows.append(row)
    finally:
        for w in workers.values():
            w.close()
    return rows


def measure_safely(path: Path, threads: list[int], runs: int, backend: str, fusion: str | None,
                   harness: str = "isolated") -> list[dict]:
    try:
        return measure(path, threads, runs, backend, fusion, harness)
    except Exception as e:  # the runner's own bug: still a row per thread count, with the trace
        traceback.print_exc()
        return [{"model": path.stem, "threads": n, "harness": harness, "errors": {"runner": error_text(e)}}
                for n in threads]
