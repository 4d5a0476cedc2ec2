"""benchmarks/suite's report: every model is a row (failures too), and the summary lines are
computed from the rows the way docs/performance.md quotes them."""

from __future__ import annotations

import math

import numpy as np

from benchmarks.suite import report
from benchmarks.suite.run import compare


def _row(model: str, ours: float, xnn: float, builtin: float, threads: int = 1, **extra) -> dict:
    return {"model": model, "threads": threads, "errors": {}, "ops": 10, "reference_ops": {},
            "median_ms": {"tflite_jit": ours, "litert_xnnpack": xnn, "litert_builtin": builtin}, **extra}


def test_summary_and_rows_keep_failures() -> None:
    manifest = {"a_f32": {"family": "a", "mode": "f32"}, "a_int8": {"family": "a", "mode": "int8"},
                "b_f32": {"family": "b", "mode": "f32"},
                "c_int16x8": {"name": "c_int16x8", "status": "converter_refused", "error": "nope"}}
    rows = [_row("a_f32", 2.0, 1.0, 4.0), _row("a_int8", 9.0, 3.0, 6.0, reference_ops={"GATHER": 2}),
            {"model": "b_f32", "threads": 1, "errors": {"tflite_jit": "RuntimeError: boom"},
             "median_ms": {"litert_xnnpack": 1.0, "litert_builtin": 2.0}}]
    md, data = report.build(rows, manifest, "python -m benchmarks.suite run")
    s = data["summary"]["1"]
    assert s["models"] == 3 and s["timed"] == 2
    assert math.isclose(s["geomean_vs_xnnpack"], math.sqrt(2.0 * 3.0))
    assert math.isclose(s["geomean_vs_xnnpack_int8"], 3.0)
    assert s["worst"] == {"model": "a_int8", "ours_vs_xnnpack": 3.0}
    assert s["slower_than_builtin"] == ["a_int8"] and s["far_behind_xnnpack"] == ["a_int8"]
    assert s["ours_failed"] == ["b_f32"]
    for name in ("a_f32", "a_int8", "b_f32"):
        assert f"| {name} |" in md
    assert "RuntimeError: boom" in md and "2/10: GATHER×2" in md
    assert "c_int16x8: converter_refused: nope" in md


def test_compare_float_noise_and_integer_exactness() -> None:
    ref = [np.array([1.0, -2.0, 4.0], np.float32), np.array([1, 2, 3], np.int8)]
    same = compare([r.copy() for r in ref], ref)
    assert same["exact"] and same["max_rel"] == 0.0 and same["int_mismatches"] == 0
    off = compare([ref[0] + np.float32(4e-4), np.array([1, 2, 5], np.int8)], ref)
    assert not off["exact"]
    assert math.isclose(off["max_rel"], 1e-4, rel_tol=1e-2)  # |diff| / max(1, max|ref|) = 4e-4 / 4
    assert off["int_mismatches"] == 1 and off["int_elements"] == 3 and off["max_lsb"] == 2
    bad = compare([np.zeros(2, np.float32)], [np.zeros(3, np.float32)])
    assert not bad["exact"] and "error" in bad
