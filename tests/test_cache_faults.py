"""Compile-cache faults not covered by tests/backends/test_numba_cache.py (which has: reuse across
processes, two writers on an empty cache, garbage entries, an unwritable cache path): zero-length
entries (a full disk), an index whose machine code another process purged, Numba's __pycache__
blocked, a read-only cache that already holds every entry, writes failing mid-run (ENOSPC /
EROFS), and several processes repairing the same damaged cache at once. Each case runs the
same small model in fresh processes with their own cache directory; the engine must run on the
numba backend (recompiling or uncached) and warn at most once, never fail or fall back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends.test_numba_cache import SCRIPT

# Prepended to SCRIPT: every attempt to create or publish a cache file fails like a full (or
# read-only) disk. NamedTemporaryFile (the start-up probe) is left alone: the disk fills later.
_FAIL_WRITES = """
import errno, os, tempfile
_err = errno.{err}
def _fail(*a, **k):
    raise OSError(_err, os.strerror(_err))
tempfile.mkstemp = _fail
_real_replace = os.replace
os.replace = _fail
"""


def _run(cache: Path, prefix: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "TFLITE_JIT_CACHE_DIR": str(cache), "PYTHONWARNINGS": "default"}
    return subprocess.run([sys.executable, "-c", prefix + SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)


def _ok(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 0, r.stderr[-3000:]
    assert "PREPARE" in r.stdout


def _entries(cache: Path) -> dict[Path, int]:
    return {f: f.stat().st_mtime_ns for f in cache.rglob("*") if f.is_file()}


def test_zero_length_entries_are_recompiled(tmp_path: Path) -> None:
    _ok(_run(tmp_path))
    for f in tmp_path.rglob("*"):
        if f.is_file():
            f.write_bytes(b"")  # what a full disk leaves behind
    r = _run(tmp_path)
    _ok(r)
    assert r.stderr.count("damaged compile-cache entry") <= 1
    _ok(_run(tmp_path))  # and the repaired entries load


def test_index_whose_machine_code_was_purged(tmp_path: Path) -> None:
    _ok(_run(tmp_path))
    for f in (tmp_path / "__pycache__").glob("*.nbc"):
        f.unlink()  # another process's purge() ran between our index read and object load
    r = _run(tmp_path)
    _ok(r)
    assert r.stderr.count("damaged compile-cache entry") <= 1
    assert list((tmp_path / "__pycache__").glob("*.nbc")), "machine code was not written again"


def test_numba_cache_directory_blocked_by_a_file(tmp_path: Path) -> None:
    (tmp_path / "__pycache__").write_text("not a directory")
    _ok(_run(tmp_path))


def test_read_only_cache_holding_every_entry_loads_without_writing(tmp_path: Path) -> None:
    _ok(_run(tmp_path))
    before = _entries(tmp_path)
    r = _run(tmp_path, _FAIL_WRITES.format(err="EROFS"))
    _ok(r)
    assert _entries(tmp_path) == before
    assert "damaged" not in r.stderr


def test_processes_repairing_one_damaged_cache_at_once(tmp_path: Path) -> None:
    _ok(_run(tmp_path))
    for f in (tmp_path / "__pycache__").iterdir():
        f.write_bytes(os.urandom(32))
    env = {**os.environ, "TFLITE_JIT_CACHE_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        assert err.count("damaged compile-cache entry") <= 1
    _ok(_run(tmp_path))
    assert not list(tmp_path.rglob("*.tmp")), "a temporary file was left behind"


@pytest.mark.parametrize("err", ["ENOSPC", "EROFS"])
def test_cache_that_fills_up_later_runs_uncached_and_says_so_once(tmp_path: Path, err: str) -> None:
    r = _run(tmp_path, _FAIL_WRITES.format(err=err))
    _ok(r)  # SCRIPT asserts the kernel ran on numba_cpu, not on the reference fallback
    assert r.stderr.count("tflite_jit:") == 1, r.stderr[-2000:]
