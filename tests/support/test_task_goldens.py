"""tflite_jit.support.task against tflite_support 0.4.4's Task Library.

tests/data/task: tiny models with metadata written by tflite_support's writers (models/), the
cases written once against the tflite_support API (cases.py) and what its Task Library returned
(goldens/, make_goldens.py). Each case runs here on our Task API and Interpreter: categories,
indices, names, boxes, masks and answers must be equal, scores within 1e-5; a case where
tflite_support raised must raise the same exception type. Where tflite_support itself imports,
the cases also run on it directly.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "task"
sys.path.insert(0, str(DATA))
import task_cases as cases  # noqa: E402  (metadata has a `cases` too)

SCORE_TOL = 1e-5


def differences(ours: Any, theirs: Any, path: str = "") -> list[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if set(ours) != set(theirs):
            return [f"{path}: fields {sorted(ours)} != {sorted(theirs)}"]
        return [d for k in ours for d in differences(ours[k], theirs[k], f"{path}.{k}")]
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{path}: {len(ours)} items != {len(theirs)}"]
        return [d for i, (a, b) in enumerate(zip(ours, theirs))
                for d in differences(a, b, f"{path}[{i}]")]
    if isinstance(ours, float) or isinstance(theirs, float):
        if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)) and abs(
                ours - theirs) <= SCORE_TOL:
            return []
        return [f"{path}: {ours!r} != {theirs!r}"]
    return [] if ours == theirs else [f"{path}: {ours!r} != {theirs!r}"]


def run_case(lib: Any, name: str) -> Any:
    try:
        return cases.jsonable(cases.CASES[name](lib))
    except Exception as e:  # noqa: BLE001 - the golden may be an error
        return {"error": [type(e).__name__, str(e)]}


@pytest.fixture(scope="module")
def ours() -> Any:
    return cases.task_lib("tflite_jit.support")


@pytest.mark.parametrize("name", sorted(cases.CASES))
def test_same_results_as_tflite_support(ours: Any, name: str) -> None:
    golden = json.loads((DATA / "goldens" / f"{name}.json").read_text())
    result = run_case(ours, name)
    if "error" in golden:
        assert isinstance(result, dict) and "error" in result, f"tflite_support raised {golden}"
        assert result["error"][0] == golden["error"][0], (result, golden)
        return
    assert not (isinstance(result, dict) and "error" in result), result
    diffs = differences(result, golden)
    assert not diffs, "\n".join(diffs[:20])


def test_goldens_cover_every_case() -> None:
    assert {p.stem for p in (DATA / "goldens").glob("*.json")} == set(cases.CASES)


@pytest.mark.skipif(importlib.util.find_spec("tflite_support") is None,
                    reason="tflite_support is not installed (no wheels for Python >= 3.12); "
                           "see docs/tasks.md for running this against it in a 3.11 venv")
@pytest.mark.parametrize("name", sorted(cases.CASES))
def test_against_tflite_support_itself(ours: Any, name: str) -> None:
    theirs = run_case(cases.task_lib("tflite_support"), name)
    result = run_case(ours, name)
    if isinstance(theirs, dict) and "error" in theirs:
        assert isinstance(result, dict) and result.get("error", [None])[0] == theirs["error"][0]
        return
    diffs = differences(result, theirs)
    assert not diffs, "\n".join(diffs[:20])
