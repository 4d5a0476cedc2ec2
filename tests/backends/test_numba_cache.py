"""The compile cache: reused across processes, safe with two writers, damage recompiled, an
unwritable directory tolerated. Each case runs in a fresh process with its own cache dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import time, numpy as np
    from tflite_jit.format.builder import ModelBuilder
    mb = ModelBuilder(); g = mb.subgraph()
    x = g.input("x", (4, 33), np.float32)
    cv = np.linspace(-1, 1, 33, dtype=np.float32)
    c = g.const("c", cv)
    (y,) = g.apply("ADD", [x, c], fused_activation_function="RELU6")
    (z,) = g.apply("LOGISTIC", [y])
    g.output(z)
    from tflite_jit import Interpreter
    it = Interpreter(model_content=mb.build(), backend="numba", fusion="elementwise")
    t = time.perf_counter(); it.allocate_tensors(); t = time.perf_counter() - t
    xv = np.random.default_rng(0).standard_normal((4, 33)).astype(np.float32)
    it.set_tensor(0, xv); it.invoke()
    want = 1 / (1 + np.exp(-np.clip(xv + cv, 0, 6)))
    assert np.allclose(it.get_tensor(it.get_output_details()[0]["index"]), want, atol=1e-6)
    assert [s.backend for s in it._interpreter.execs[0].steps] == ["numba_cpu"], "kernel fell back"
    print(f"PREPARE {t:.3f}")
""")


def _run(cache: Path, **env: str) -> subprocess.CompletedProcess:
    e = {**os.environ, "TFLITE_JIT_CACHE_DIR": str(cache), **env}
    return subprocess.run([sys.executable, "-c", SCRIPT], env=e, capture_output=True, text=True, timeout=300)


def _prepare_s(r: subprocess.CompletedProcess) -> float:
    assert r.returncode == 0, r.stderr
    return float(r.stdout.split("PREPARE")[1])


def test_second_process_loads_from_cache(tmp_path) -> None:
    _prepare_s(_run(tmp_path))
    files = list((tmp_path / "__pycache__").glob("*.nbc"))
    assert files, "Numba wrote no machine code to the cache"
    stamps = {f: f.stat().st_mtime_ns for f in files}
    _prepare_s(_run(tmp_path))
    assert {f: f.stat().st_mtime_ns for f in files} == stamps, "cached code was recompiled"


def test_two_processes_compiling_at_once(tmp_path) -> None:
    env = {**os.environ, "TFLITE_JIT_CACHE_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert _run(tmp_path).returncode == 0


def test_damaged_entries_are_recompiled_with_one_warning(tmp_path) -> None:
    _prepare_s(_run(tmp_path))
    for f in (tmp_path / "__pycache__").iterdir():
        f.write_bytes(b"\x80garbage" if f.suffix == ".nbi" else os.urandom(64))
    for f in tmp_path.glob("*.py"):
        f.write_text(f.read_text()[:40])  # a truncated generated module is rewritten
    r = _run(tmp_path)
    _prepare_s(r)
    assert r.stderr.count("damaged compile-cache entry") <= 1


def test_unwritable_cache_path_falls_back(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = _run(blocker / "cache")
    _prepare_s(r)
    assert "not writable" in r.stderr


def test_index_listing_is_reused_until_the_directory_changes(tmp_path, monkeypatch) -> None:
    """may_have_machine_code lists Numba's index files once and lists again only when the
    directory changed (a cold start asked once per kernel), or when it changed so shortly before
    the listing that a file written right after might not have moved its timestamp."""
    from tflite_jit.backends.numba_cpu import modcache

    monkeypatch.setenv("TFLITE_JIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(modcache, "_dir", None)
    monkeypatch.setattr(modcache, "_indexed", None)
    pyc = tmp_path / "__pycache__"
    pyc.mkdir()
    listings = []
    real = os.listdir
    monkeypatch.setattr(modcache.os, "listdir", lambda p: listings.append(p) or real(p))
    assert not modcache.may_have_machine_code("tflite_jit_k_a")
    (pyc / "tflite_jit_k_a.hentry-1.py311.nbi").write_bytes(b"")  # within the same clock tick, maybe
    assert modcache.may_have_machine_code("tflite_jit_k_a")
    os.utime(pyc, ns=(10**18, 10**18 - 10**9))  # settled: a second before any listing
    listings.clear()
    for _ in range(5):
        assert not modcache.may_have_machine_code("tflite_jit_k_b")
    assert len(listings) == 1
    (pyc / "tflite_jit_k_b.hentry-1.py311.nbi").write_bytes(b"")
    os.utime(pyc, ns=(10**18, 10**18 - 10**9 + 1))
    assert modcache.may_have_machine_code("tflite_jit_k_b") and len(listings) == 2


def test_host_names_the_helper_modules_generated_kernels_import() -> None:
    """Generators print `from <host constant> import ...` without importing the module (that
    would import Numba before a first result): each constant must name a real helper module."""
    import importlib

    from tflite_jit.backends.numba_cpu import host

    names = [host.SIMD, host.QSIMD, host.QDOT, host.QLUT, host.QMULVEC, host.HYBRIDQ, host.MPTRANSFORM]
    for name in names:
        assert importlib.import_module(name).__name__ == name
    assert importlib.import_module(host.SIMD).VW == host.VW


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="CPU identity is read from /proc/cpuinfo (Linux)")
def test_host_features_are_remembered_per_cpu(tmp_path) -> None:
    """host.py asks LLVM for the CPU's features once per CPU identity and llvmlite version and
    keeps the answer in the compile cache: a later process neither loads llvmlite's library for
    it nor gets another answer."""
    code = ("import sys, json; from tflite_jit.backends.numba_cpu import host; "
            "print(json.dumps([host.host_features(), 'llvmlite.binding' in sys.modules]))")
    env = dict(os.environ, TFLITE_JIT_CACHE_DIR=str(tmp_path))
    env.pop("NUMBA_CPU_FEATURES", None)
    env.pop("NUMBA_CPU_NAME", None)
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                                      text=True).stdout) for _ in range(2)]
    import llvmlite.binding as ll

    assert runs[0] == [ll.get_host_cpu_features().flatten().split(","), True]
    assert runs[1] == [runs[0][0], False]
    assert len(list(tmp_path.glob("host-*.txt"))) == 1


@pytest.mark.parametrize("name", ["numba", "llvmlite", "numpy"])
def test_dist_version_matches_the_installed_metadata(name) -> None:
    """Cache keys carry Numba's version, read from its dist-info folder without importing Numba
    or importlib.metadata; it must be the version the metadata reports."""
    from importlib.metadata import version

    from tflite_jit.backends.numba_cpu import modcache

    assert modcache.dist_version(name) == version(name)


@pytest.mark.parametrize("text", ["", "x = 1\n", "from tflite_jit.a import b\nx\nfrom tflite_jit.c.d import e\n",
                                  "from tflite_jit.q import r", "y\nfrom tflite_jit.q import r\n# from tflite_jit.z import w\n",
                                  "from tflite_jit.a import b\nfrom tflite_jit.a import c\nfrom numpy import x\n"])
def test_helper_modules_are_the_import_lines(text) -> None:
    """The helper modules a source imports (part of its cache key), found line by line with
    str.find: the same set the multi-line regex finds."""
    from tflite_jit.backends.numba_cpu import modcache

    assert modcache._helper_modules(text) == set(modcache._HELPER_IMPORT.findall(text))
