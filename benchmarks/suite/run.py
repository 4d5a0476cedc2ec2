"""One suite model, measured: tflite_jit vs LiteRT (XNNPACK, builtin kernels), plus where our ops
ran and whether our outputs match LiteRT's builtin kernels on the same seeded input.

Runs in its own process per model (`python -m benchmarks.suite _one PATH`), so a model that
exhausts memory or hangs costs one row, never the run; the timing loop itself is
benchmarks/side_by_side.py's (rotating order, medians).
"""

from __future__ import annotations

import os
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.side_by_side import inputs_for, litert_engines, time_engines
from tflite_jit import Interpreter
from tflite_jit.explain import execution_plan
from tflite_jit.tools import placement

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)

OURS, XNN, BUILTIN = "tflite_jit", "litert_xnnpack", "litert_builtin"


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"[:400]


def _outputs(it: Any, xs: list[np.ndarray]) -> list[np.ndarray]:
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


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


def measure(path: Path, threads: list[int], runs: int, backend: str = "numba",
            fusion: str | None = None) -> list[dict[str, Any]]:
    """One row per thread count (see report.py for the columns)."""
    content = path.read_bytes()
    rows = []
    dry: dict[str, Any] | None = None
    for n in threads:
        row: dict[str, Any] = {"model": path.stem, "threads": n, "errors": {}}
        engines: dict[str, Any] = {}
        t0 = time.perf_counter()
        try:
            ours = Interpreter(model_content=content, num_threads=n, backend=backend, fusion=fusion)
            ours.allocate_tensors()
            row["prepare_s"] = time.perf_counter() - t0
            engines[OURS] = ours
        except Exception as e:
            row["errors"][OURS] = _error(e)
        try:
            lite = litert_engines(content, n)
        except Exception as e:
            lite = {}
            row["errors"][XNN] = row["errors"][BUILTIN] = _error(e)
        for k, it in lite.items():
            try:
                it.allocate_tensors()
                engines[k] = it
            except Exception as e:
                row["errors"][k] = _error(e)
        if not engines:
            rows.append(row)
            continue
        xs = inputs_for(next(iter(engines.values())), np.random.default_rng(0))
        outs: dict[str, list[np.ndarray]] = {}
        for k in list(engines):
            try:
                t1 = time.perf_counter()
                outs[k] = [np.array(o, copy=True) for o in _outputs(engines[k], xs)]
                if k == OURS:
                    row["first_invoke_s"] = time.perf_counter() - t1
            except Exception as e:
                row["errors"][k] = _error(e)
                del engines[k]
        if OURS in engines:
            row.update(_placement_summary(_plans(engines[OURS])))
        ref_key = BUILTIN if BUILTIN in outs else XNN if XNN in outs else None
        if OURS in outs and ref_key:
            row["conformance"] = dict(compare(outs[OURS], outs[ref_key]), against=ref_key)
        if XNN in outs and BUILTIN in outs:
            row["xnnpack_vs_builtin"] = compare(outs[XNN], outs[BUILTIN])
        if engines:
            try:
                row.update(time_engines(engines, xs, runs))
            except Exception as e:  # an engine failing mid-loop is recorded, the row kept
                row["errors"]["timing"] = _error(e)
        if dry is None and OURS in engines:
            # the CI test's cheap placement (tflite_jit.tools.placement) against the real plan
            try:
                dry = {"reference_ops": dict(placement.reference_ops(placement.placement(content, backend)))}
            except Exception as e:
                dry = {"error": _error(e)}
            dry["matches_real_plan"] = dry.get("reference_ops") == row.get("reference_ops")
        if dry is not None:
            row["dry_placement"] = dry
        rows.append(row)
    return rows


def measure_safely(path: Path, threads: list[int], runs: int, backend: str, fusion: str | None) -> list[dict]:
    try:
        return measure(path, threads, runs, backend, fusion)
    except Exception as e:  # the runner's own bug: still a row per thread count, with the trace
        traceback.print_exc()
        return [{"model": path.stem, "threads": n, "errors": {"runner": _error(e)}} for n in threads]
