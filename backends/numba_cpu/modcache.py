"""Generated kernel modules on disk, so Numba's own cache (cache=True) works for them.

Numba caches only functions defined in real files, and re-imports a module by name when loading
a cached function; so each generated module is written to `<cache dir>/tflite_jit_k_<hash>.py`
(content-addressed: a file never changes in place, so no source stamp invalidates another
kernel), registered in sys.modules before it executes, then imported. Writes are atomic
(temp file + os.replace), so two processes compiling the same kernel at once are safe.

Numba's cache checks only the generated file itself, not the helper modules its functions call
(simd.py's intrinsics, qsimd.py...), so the key also covers the text of every tflite_jit module
the source imports from: a changed helper gets new module names instead of stale machine code.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import sys
import tempfile
import threading
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Bump when generated code changes meaning; part of every cache key.
CODE_VERSION = "1"

_lock = threading.Lock()
_dir: Path | None = None


def cache_dir() -> Path:
    """TFLITE_JIT_CACHE_DIR, else the user's cache directory (XDG), created on first use. An
    unwritable directory falls back to a private temporary one, with one warning."""
    global _dir
    if _dir is not None:
        return _dir
    env = os.environ.get("TFLITE_JIT_CACHE_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tflite_jit"
    try:
        base.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=base, prefix=".probe", delete=True)
        probe.close()
    except OSError as e:
        fallback = Path(tempfile.mkdtemp(prefix="tflite_jit_cache_"))
        warnings.warn(f"tflite_jit: compile cache {base} is not writable ({e}); compiling into "
                      f"{fallback} for this process only (set TFLITE_JIT_CACHE_DIR)", RuntimeWarning,
                      stacklevel=3)
        base = fallback
    _dir = base
    return base


#: `from <module> import ...` lines of generated source that name our helper modules
_HELPER_IMPORT = re.compile(r"^from (tflite_jit\.[\w.]+) import ", re.M)
_helper_digests: dict[str, str] = {}


def _helper_digest(module: str) -> str:
    """sha256 of a helper module's source and of the helpers it imports in turn (once per
    process)."""
    digest = _helper_digests.get(module)
    if digest is None:
        _helper_digests[module] = ""  # an import cycle ends here
        spec = importlib.util.find_spec(module)
        text = Path(spec.origin).read_text() if spec is not None and spec.origin else module
        deps = "".join(_helper_digest(m) for m in sorted(set(_HELPER_IMPORT.findall(text)) - {module}))
        digest = _helper_digests[module] = hashlib.sha256((text + deps).encode()).hexdigest()
    return digest


def module_name(source: str) -> str:
    import numba

    helpers = "".join(_helper_digest(m) for m in sorted(set(_HELPER_IMPORT.findall(source))))
    key = f"{CODE_VERSION}\0{numba.__version__}\0{helpers}\0{source}"
    return f"tflite_jit_k_{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def load(source: str, entry: str) -> Callable[..., Any]:
    """Import (writing first if needed) the module for `source` and return its `entry`."""
    name = module_name(source)
    with _lock:
        mod = sys.modules.get(name)
        if mod is None:
            path: Path | None = cache_dir() / f"{name}.py"
            try:
                current = path.read_text() if path.exists() else None
            except OSError:
                current = None
            if current != source:
                try:
                    _write_atomic(path, source)
                except OSError as e:  # the disk filled up or went read-only since start-up
                    path = _uncached(e) / f"{name}.py"
                    try:
                        _write_atomic(path, source)
                    except OSError:
                        path = None
            if path is None:  # nowhere to write at all: compile in memory, without Numba's cache
                mod = types.ModuleType(name)
                sys.modules[name] = mod
                try:
                    exec(compile(source.replace("cache=True", "cache=False"), f"<{name}>", "exec"),
                         mod.__dict__)
                except BaseException:
                    del sys.modules[name]
                    raise
                return getattr(mod, entry)
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod  # before exec: Numba's cache re-imports it by name
            try:
                spec.loader.exec_module(mod)
            except BaseException:
                del sys.modules[name]
                raise
    return getattr(mod, entry)


def _write_atomic(path: Path, source: str) -> None:
    """temp file + os.replace; the temp file is removed if anything fails (ENOSPC mid-write)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(source)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


_private: Path | None = None


def _uncached(e: OSError) -> Path:
    """The cache stopped taking writes: a private temporary directory from now on, one warning."""
    global _dir, _private
    if _private is None:
        _private = Path(tempfile.mkdtemp(prefix="tflite_jit_cache_"))
        warnings.warn(f"tflite_jit: compile cache {_dir} stopped accepting writes ({e}); compiling "
                      f"into {_private} for this process only (kernels will not be cached)",
                      RuntimeWarning, stacklevel=4)
    _dir = _private
    return _private


_warned_damage = False


def purge(module: str) -> None:
    """Delete Numba's cache files of one generated module (index and machine code)."""
    pyc = cache_dir() / "__pycache__"
    for f in pyc.glob(f"{module}.*") if pyc.is_dir() else ():
        try:
            f.unlink()
        except OSError:
            pass


def compile_now(fn: Any, args: tuple) -> None:
    """Compile `fn` for the types of `args`. A damaged cache entry (truncated or corrupted
    index/object file, a half-written file from a killed process) is deleted and the kernel
    recompiled, with one warning per process; it is never fatal."""
    import numba

    sig = tuple(numba.typeof(a) for a in args)
    del args  # a failed compile's traceback must not keep the interpreter's buffers alive
    try:
        fn.compile(sig)
        return
    except Exception as e:  # Numba surfaces a damaged cache as pickle/EOF/OS errors
        why = f"{type(e).__name__}: {e}"
    # Retried outside the except block: an error raised inside it would keep the first one (and
    # through its traceback this frame) in a reference cycle, so the buffers the caller's frames
    # hold would stay alive until the next garbage collection, and LiteRT's live-reference check
    # (Interpreter._ensure_safe) would fail every invoke after a kernel fell back to reference.
    global _warned_damage
    if not _warned_damage:
        _warned_damage = True
        warnings.warn(f"tflite_jit: damaged compile-cache entry for {fn.__module__} "
                      f"({why}); deleted it and recompiling", RuntimeWarning, stacklevel=2)
    purge(fn.__module__)
    fn.compile(sig)
