"""A short run of the model-bytes fuzzing campaign (tools/fuzz_models.py): every seed model x
every mutator, twice, through load -> allocate -> invoke in a worker process. Nothing may crash
(a signal, or an exception type other than ValueError / RuntimeError). tests/test_malformed.py
checks specific damage and its messages; this checks breadth. The long run is
`python -m tools.fuzz_models --cases 100000` (docs/robustness.md has its numbers)."""

from __future__ import annotations

import itertools
import random

import pytest

from tools import fuzz_models as fm

SEEDS_PER_PAIR = 3


@pytest.fixture(scope="module")
def pool():
    p = fm.Pool(backend="reference", timeout=5.0)
    yield p
    p.close()


def test_the_seed_models_run() -> None:
    for name in fm.SEEDS:
        data, _ = fm.seed_model(name)
        assert fm.classify(data)["outcome"] == "ran", name


def test_cases_are_replayable() -> None:
    for i in range(20):
        case = fm.campaign_case(5, i)
        assert case == fm.campaign_case(5, i)
        assert fm.Case.parse(case.id) == case
        assert case.bytes() == fm.Case.parse(case.id).bytes()
    assert len({fm.campaign_case(5, i).id for i in range(50)}) == 50
    with pytest.raises(ValueError, match="unknown case"):
        fm.Case.parse("nomodel/bitflip/1")


def test_the_harness_classifies_crashes_and_hangs(pool: fm.Pool) -> None:
    pool.timeout = 2.0
    try:
        assert pool.run("selftest:segv") == {"outcome": "crashed", "type": "worker died", "message": "signal 11"}
        assert pool.run("selftest:exit")["message"] == "exit code 7"
        assert pool.run("selftest:hang")["outcome"] == "hung"
        assert pool.run(fm.Case("mlp", "bitflip", 1))["outcome"] in ("rejected", "ran")  # restarted
        assert pool.restarts == 3
    finally:
        pool.timeout = 5.0
    assert fm._allowed(ValueError()) and fm._allowed(RuntimeError())
    assert not fm._allowed(RecursionError()) and not fm._allowed(UnicodeDecodeError("utf-8", b"", 0, 1, "x"))
    assert not fm._allowed(IndexError()) and not fm._allowed(MemoryError())


def test_short_campaign_nothing_crashes(pool: fm.Pool) -> None:
    rng = random.Random(8)
    cases = [fm.Case(model, mutator, rng.getrandbits(32))
             for model, mutator in itertools.product(sorted(fm.SEEDS), sorted(fm.MUTATORS))
             for _ in range(SEEDS_PER_PAIR)]
    report = fm.Report()
    for case in cases:
        report.add(case, pool.run(case))
    s = report.summary()
    crashes = {k: v for k, v in s["findings"].items() if k.startswith("crashed")}
    assert not crashes, crashes
    # The only hangs allowed are WHILE loops whose condition never becomes false (mutated loop
    # bounds / increments): LiteRT loops forever on those too.
    hangs = [c for k, v in report.findings.items() if k.startswith("hung") for c in v]
    assert all(c.startswith("while/") for c in hangs), hangs
    assert s["tried"] > 0.8 * len(cases) and s["rejected"] > 0.5 * s["tried"] and s["ran"] > 0


# ---- what the campaign found (replay: python -m tools.fuzz_models --replay <id>) ------------------


def test_inferred_dim_over_int32_is_rejected_cleanly() -> None:
    import numpy as np

    import tflite_jit
    from tflite_jit.format.builder import ModelBuilder

    mb = ModelBuilder()
    g = mb.subgraph()
    a = g.input("a", (1, 2**31 - 1), np.uint8)
    b = g.const("b", np.zeros((1, 2), np.uint8))
    y = g.tensor("y", (1, 4), np.uint8)
    g.op("CONCATENATION", [a, b], [y], axis=1)
    g.output(y)
    with pytest.raises(RuntimeError, match="CONCATENATION"):
        it = tflite_jit.Interpreter(model_content=mb.build(), backend="reference")
        it.allocate_tensors()
        it.get_output_details()
