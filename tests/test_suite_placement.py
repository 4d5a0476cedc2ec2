"""Every op of every benchmark-suite model runs compiled, or is on an explicit, reasoned list.

The suite (benchmarks/suite: Keras application families in five quantization modes, U-Net,
DeepLab-like, recurrent text models, a transformer, a keyword spotter and the published MediaPipe
models) cannot be downloaded or generated in CI (no TensorFlow). tests/data/suite holds a
*skeleton* of each model instead (tflite_jit.tools.skeleton: the .tflite with its bulk weights
dropped, gzip'ed); the test refills the weights with seeded random data and asks where each op
would run (tflite_jit.tools.placement: the backend's supports() and kernel generation, without
Numba's compilation, so 80 models cost seconds each instead of minutes). The suite's runner
checks that this answer equals the real plan for every model (`dry_placement.matches_real_plan`
in report.json).

An op on `reference` fails the test unless it is in ALLOWED_ON_REFERENCE (decided, with the
reason). A model whose failing ops are all open, named gaps (IN_PROGRESS: the issue and what is
missing) is xfail(strict=True) in BLOCKED: when the gap closes the model passes, the strict xfail
fails, and the entry is deleted. Any other op on `reference` fails outright.
Regenerate skeletons with `python -m benchmarks.suite skeletons` after `make`.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from tflite_jit.tools.placement import placement
from tflite_jit.tools.skeleton import refill

SUITE = Path(__file__).parent / "data" / "suite"
INDEX = json.loads((SUITE / "index.json").read_text()) if (SUITE / "index.json").exists() else {}

#: op -> why it runs on `reference` by decision, in every suite model
ALLOWED_ON_REFERENCE = {
    "WHILE": "control flow: the op only sequences its cond/body subgraphs, whose own ops are "
             "placed (and checked here) separately; the per-iteration cost is i13-rnn's measure",
    "IF": "control flow: runs one of two subgraphs, whose ops are placed and checked separately",
    "CALL_ONCE": "control flow: runs an initialisation subgraph once, whose ops are checked separately",
}

#: (op, variant) -> the open work that will make it compile (issue and what is missing); variant is
#: placement.variant's ('float', 'int8', 'int16', 'hybrid', 'constant', 'other') or '*' for a
#: model that fails to prepare on it. Empty since 2026-12-07: every op of the 82 models compiles.
IN_PROGRESS: dict[tuple[str, str], str] = {}
#: (quantization mode, variant) -> open work, for ops not named above
IN_PROGRESS_BY_MODE: dict[tuple[str, str], str] = {}

#: model -> its failing ops today, each an open gap above (regenerate with the suite's skeletons)
BLOCKED: dict[str, list[str]] = {}

#: model -> (node, words of the error): models LiteRT's builtin kernels refuse to prepare, which
#: we must refuse the same way (same node, LiteRT's check in the message), not run
REFUSED_AS_LITERT = {
    # LiteRT's quantized SQUARED_DIFFERENCE is int8-only
    "transformer_int16x8": ("SQUARED_DIFFERENCE", "takes int8 only"),
    # TF's 16x8 converter gives these RELU6 outputs scales of ~1e-9: 6 / scale leaves int32, and
    # LiteRT's CalculateActivationRangeQuantized refuses it (kernel_util.cc Quantize)
    "mobilenet_v1_int16x8": ("DEPTHWISE_CONV_2D", "no_integer_overflow_from_quantization was not true"),
    "mobilenet_v2_int16x8": ("DEPTHWISE_CONV_2D", "no_integer_overflow_from_quantization was not true"),
}

_PREPARE_FAILED = re.compile(r"Node number \d+ \(([^)]+)\) failed to prepare")
_UNRESOLVED = re.compile(r"unresolved custom op: (\w+)")


def blockers(content: bytes) -> list[str]:
    """'OP[variant]' for every op of the model on `reference` that is not allowed there, and
    'OP[*]' for an op the model fails to prepare on."""
    try:
        rows = placement(content)
    except RuntimeError as e:
        m = _UNRESOLVED.search(str(e)) or _PREPARE_FAILED.search(str(e))
        if m is None:
            raise
        return [f"{m.group(1)}[*]"]
    return sorted({f"{r['op']}[{r['variant']}]" for r in rows
                   if r["backend"] == "reference" and r["op"] not in ALLOWED_ON_REFERENCE})


def owner(blocker: str, mode: str) -> str | None:
    """The open work (issue, what is missing) for 'OP[variant]' in a model of this mode, or None."""
    op, variant = blocker[:-1].split("[")
    return (IN_PROGRESS.get((op, variant)) or IN_PROGRESS.get(("*", variant))
            or IN_PROGRESS_BY_MODE.get((mode, variant)))


def _params() -> list:
    out = []
    for name in sorted(INDEX):
        marks = []
        if name in BLOCKED:
            owners = sorted({owner(b, INDEX[name]["mode"]) or "?" for b in BLOCKED[name]})
            marks.append(pytest.mark.xfail(strict=True, raises=StillBlocked,
                                           reason=f"{'; '.join(owners)}: {' '.join(BLOCKED[name])}"))
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def test_suite_skeletons_present() -> None:
    assert len(INDEX) >= 40, "tests/data/suite must hold the suite's skeletons (python -m benchmarks.suite skeletons)"
    for name in INDEX:
        assert (SUITE / f"{name}.tflite.gz").exists(), name


def test_blocked_entries_are_in_progress() -> None:
    """BLOCKED may only hold models whose every failing op is an open, named gap."""
    for name, ops_ in BLOCKED.items():
        assert name in INDEX, f"BLOCKED names {name}, which is not in the suite"
        assert ops_, name
        unowned = [b for b in ops_ if owner(b, INDEX[name]["mode"]) is None]
        assert not unowned, f"{name}: {unowned} are not IN_PROGRESS anywhere; such a model must fail"


class StillBlocked(AssertionError):
    """The expected failure of a BLOCKED model: only ops listed for it are still on reference."""


@pytest.mark.parametrize("name", _params())
def test_suite_model_runs_compiled(name: str) -> None:
    content = refill(gzip.decompress((SUITE / f"{name}.tflite.gz").read_bytes()))
    if name in REFUSED_AS_LITERT:
        op, words = REFUSED_AS_LITERT[name]
        with pytest.raises(RuntimeError, match=rf"(?s){re.escape(words)}.*Node number \d+ \({op}\) failed to prepare"):
            placement(content)
        return
    found = blockers(content)
    what = f"{name} ({INDEX[name]['family']}, {INDEX[name]['mode']})"
    # a BLOCKED model's xfail covers only its listed ops: a new op falling back fails outright
    new = [b for b in found if b not in BLOCKED.get(name, ())]
    assert not new, f"{what}: ops on `reference` that are not on ALLOWED_ON_REFERENCE: {' '.join(new)}"
    if found:
        raise StillBlocked(f"{what}: still on `reference`: {' '.join(found)}")
