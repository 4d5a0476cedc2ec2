"""`tflite-jit compile` and `tflite-jit cache info|clear`, and the cache's size bound
(modcache.prune: least recently used modules go first, only our files are touched)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.test_tiers import float_model
from tflite_jit.backends.numba_cpu import modcache
from tflite_jit.tools.cli import main


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("TFLITE_JIT_CACHE_DIR", str(d))
    monkeypatch.setattr(modcache, "_dir", None)
    return d


def test_compile_then_info_then_clear(cache, tmp_path, capsys) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(float_model(41))
    assert main(["compile", str(model), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["cache"] == str(cache)
    row = first["models"][0]
    n = row["steps"]
    assert n >= 1 and row | {"seconds": 0} == {"model": str(model), "steps": n, "cached": 0, "compiled": n,
                                                "reference": 0, "seconds": 0}
    assert main(["compile", str(model)]) == 0
    out = capsys.readouterr().out
    assert f"0 kernels compiled, {n} already cached, 0 on reference" in out
    assert main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["modules"] == n and info["compiled"] == n and info["bytes"] > 0
    (cache / "notes.txt").write_text("not ours")
    assert main(["cache", "clear"]) == 0
    assert f"deleted {n} kernel modules" in capsys.readouterr().out
    assert main(["cache", "info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["modules"] == 0
    assert (cache / "notes.txt").read_text() == "not ours"


def test_helper_specialisations_live_in_the_cache_and_clear_with_it(cache, tmp_path, capsys) -> None:
    """A dynamic-range kernel calls qdot/hybridq helpers that Numba compiles once per literal
    shape: that machine code goes to <cache>/helpers (backends/numba_cpu/helpercache.py), so
    `cache info` counts it and `cache clear` removes it, and an empty cache really is cold. The
    compile runs in a fresh process: helpers bind their cache directory when first imported."""
    from tests.ops.test_qhybrid import fc_model

    rng = np.random.default_rng(5)
    w = rng.integers(-127, 128, (8, 12)).astype(np.int8)
    model = tmp_path / "hybrid.tflite"
    model.write_bytes(fc_model(w, np.full(1, 0.02, np.float32), (2, 12), (2, 8), None))
    code = f"from tflite_jit.tools.cli import main; raise SystemExit(main(['compile', {str(model)!r}]))"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                   env=dict(os.environ, TFLITE_JIT_CACHE_DIR=str(cache)))
    helper_files = list((cache / modcache.HELPERS).glob("*/*.nb[ic]"))
    assert any(f.name.startswith("qdot.") for f in helper_files), helper_files
    assert main(["cache", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["helpers"] >= 1 and info["modules"] >= 1
    assert info["files"] == sum(len(fs) for fs in modcache.entries().values()) >= len(helper_files)
    assert main(["cache", "clear"]) == 0
    capsys.readouterr()
    assert not list((cache / modcache.HELPERS).glob("*/*.nb[ic]"))
    assert modcache.usage()["helpers"] == 0 and modcache.usage()["modules"] == 0


def test_compile_reports_a_bad_model_in_one_line(cache, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\0" * 64)
    assert main(["compile", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tflite-jit compile: error:") and len(err.splitlines()) == 1


def test_prune_deletes_least_recently_used_modules(cache, monkeypatch) -> None:
    cache.mkdir()
    (cache / "__pycache__").mkdir()
    now = time.time()
    for i in range(4):  # module i last used i hours ago... reversed: module 0 is the oldest
        src = cache / f"tflite_jit_k_{i:032x}.py"
        src.write_text("x" * 1000)
        nbc = cache / "__pycache__" / f"tflite_jit_k_{i:032x}.entry-1.py311.1.nbc"
        nbc.write_bytes(b"\0" * 9000)
        for f in (src, nbc):
            os.utime(f, (now - 3600 * (4 - i), now - 3600 * (4 - i)))
    (cache / "other.bin").write_bytes(b"\0" * 100000)
    assert modcache.usage()["bytes"] == 40000
    assert modcache.prune(25000) == 2
    left = sorted(modcache.entries())
    assert left == [f"tflite_jit_k_{i:032x}" for i in (2, 3)]
    assert (cache / "other.bin").exists()
    monkeypatch.setenv("TFLITE_JIT_CACHE_MAX_BYTES", "0")
    assert modcache.prune() == 0  # 0: unbounded


def test_bench_reports_the_jit_tiers(cache, capsys) -> None:
    """`tflite-jit bench --jit=off` on an empty cache: every step on reference, said in --json."""
    rc = main(["bench", "--graph=tiny_convnet", "--num_runs=1", "--min_secs=0", "--warmup_runs=1",
               "--warmup_min_secs=0", "--jit=off", "--json=-"])
    out = capsys.readouterr().out
    assert rc == 0
    at_init = json.loads(out)["jit"]["at_init"]
    assert at_init["mode"] == "off" and at_init["compiled"] == 0 and at_init["pending"] == 0
    assert at_init["reference"] >= 1


def test_compile_goes_on_past_a_bad_model(cache, tmp_path, capsys) -> None:
    """A batch (a container image's cache fill) compiles every model it can; each refused one is
    a line on stderr, and the exit status is 1."""
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\0" * 64)
    model = tmp_path / "m.tflite"
    model.write_bytes(float_model(47))
    assert main(["compile", str(bad), str(model), "--json"]) == 1
    captured = capsys.readouterr()
    rows = json.loads(captured.out)["models"]
    assert "error" in rows[0] and rows[1]["compiled"] >= 1
    assert captured.err.count("tflite-jit compile: error:") == 1
