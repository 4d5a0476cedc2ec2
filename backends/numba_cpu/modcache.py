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
import dataclasses
import functools
import hashlib
import importlib.util
import os
import re
import sys
import tempfile
import threading
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

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


def _helper_modules(text: str) -> set[str]:
    """The helper modules `text` imports (`_HELPER_IMPORT` at each line that starts with
    `from tflite_jit.`): str.find between candidates instead of a multi-line regex over the
    whole source (a GEMM kernel is ~20 KB; NASNet int8 hashes 567 sources at allocate)."""
    found: set[str] = set()
    start = 0
    while True:
        if text.startswith("from tflite_jit.", start):
            m = _HELPER_IMPORT.match(text, start)
            if m:
                found.add(m.group(1))
        nxt = text.find("\nfrom tflite_jit.", start)
        if nxt < 0:
            return found
        start = nxt + 1


def _helper_digest(module: str) -> str:
    """sha256 of a helper module's source and of the helpers it imports in turn (once per
    process)."""
    digest = _helper_digests.get(module)
    if digest is None:
        _helper_digests[module] = ""  # an import cycle ends here
        spec = importlib.util.find_spec(module)
        text = Path(spec.origin).read_text() if spec is not None and spec.origin else module
        deps = "".join(_helper_digest(m) for m in sorted(_helper_modules(text) - {module}))
        digest = _helper_digests[module] = hashlib.sha256((text + deps).encode()).hexdigest()
    return digest


@functools.cache
def dist_version(name: str) -> str:
    """An installed distribution's version without importing it: a cache key needs Numba's, and
    a first result on the reference kernels must not wait for `import numba` (0.11 s). Read from
    the `<name>-<version>.dist-info` folder beside the package (importlib.metadata, the fallback,
    costs 7-20 ms to import)."""
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.origin:
        found = list(Path(spec.origin).parent.parent.glob(f"{name}-*.dist-info"))
        if len(found) == 1:
            return found[0].name[len(name) + 1:-len(".dist-info")]
    from importlib.metadata import version

    return version(name)


def numba_version() -> str:
    return dist_version("numba")


def module_name(source: str) -> str:
    helpers = "".join(_helper_digest(m) for m in sorted(_helper_modules(source)))
    key = f"{CODE_VERSION}\0{numba_version()}\0{helpers}\0{source}"
    return f"tflite_jit_k_{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def write(source: str) -> str:
    """Write the module for `source` into the cache directory (if it is not there already) without
    importing it; its name. What a background compiler needs to find it (runtime/tiers.py)."""
    name = module_name(source)
    with _lock:
        path = cache_dir() / f"{name}.py"
        if name in sys.modules and path.exists():  # (imported from another cache directory: write it here)
            return name
        try:
            current = path.read_text() if path.exists() else None
        except OSError:
            current = None
        if current != source:
            prune_once()
            try:
                write_text_atomic(path, source)
            except OSError as e:  # full or read-only disk: the next load() copes (uncached)
                _uncached(e)
    return name


#: (directory, its modification time, the modules with an index file there) when it was last
#: listed: a warm start answers from one listing instead of one glob per kernel (a warm int8
#: EfficientNet-B0 asks 241 times), and a cold one lists again only when the directory changed (a
#: new listing per miss cost a cold int16x8 EfficientNetV2 0.2 s over 434 misses)
_indexed: tuple[Path, int, frozenset[str]] | None = None
#: a listing is trusted only while the directory's modification time is older than the listing by
#: this much: file systems stamp it from a coarse clock (ms), so a file written just after a
#: listing may leave the time unchanged
_SETTLED_NS = 50_000_000


def may_have_machine_code(name: str) -> bool:
    """False when Numba's cache certainly holds no machine code for module `name` (no index file
    of its functions): lets a cold start skip importing a module only to learn that."""
    global _indexed
    if name in sys.modules:
        return True
    pyc = cache_dir() / "__pycache__"
    try:
        mtime = os.stat(pyc).st_mtime_ns
    except OSError:
        return False
    if _indexed is None or _indexed[0] != pyc or _indexed[1] != mtime:
        listed_at = time.time_ns()
        try:
            found = frozenset(f.split(".", 1)[0] for f in os.listdir(pyc) if f.endswith(".nbi"))
        except OSError:
            return False
        # a directory that changed just before the listing is listed again next time
        _indexed = (pyc, mtime if listed_at - mtime > _SETTLED_NS else -1, found)
    return name in _indexed[2]


_helpers_seen: set[tuple[Path, str]] = set()


def helper_may_have_machine_code(shared: str) -> bool:
    """may_have_machine_code for a module that re-exports the shared helper `shared`
    ("module:function", KernelSource.shared): False when the helpers/ cache holds no index
    file for that function, without importing it (which imports Numba). A hit is remembered."""
    helpers = cache_dir() / HELPERS
    if (helpers, shared) in _helpers_seen:
        return True
    module, function = shared.split(":")
    prefix = f"{module.rsplit('.', 1)[-1]}.{function}-"
    try:
        subdirs = [helpers / d for d in os.listdir(helpers)]
        found = any(f.startswith(prefix) and f.endswith(".nbi") for d in subdirs for f in os.listdir(d))
    except OSError:
        return False
    if found:
        _helpers_seen.add((helpers, shared))
    return found


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
                prune_once()
                try:
                    write_text_atomic(path, source)
                except OSError as e:  # the disk filled up or went read-only since start-up
                    path = _uncached(e) / f"{name}.py"
                    try:
                        write_text_atomic(path, source)
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


def write_text_atomic(path: Path, source: str) -> None:
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
    """Delete Numba's cache files of one generated module (index and machine code), or of one
    helper module (all its specialisations in helpers/: a step bound to a shared entry)."""
    if module.startswith("tflite_jit."):
        pattern, where = f"*/{module.rsplit('.', 1)[-1]}.*", cache_dir() / HELPERS
        _helpers_seen.clear()
    else:
        pattern, where = f"{module}.*", cache_dir() / "__pycache__"
    for f in where.glob(pattern) if where.is_dir() else ():
        try:
            f.unlink()
        except OSError:
            pass


def signature(args: tuple) -> tuple:
    """The Numba argument types a kernel is compiled for."""
    import numba

    return tuple(numba.typeof(a) for a in args)


@dataclasses.dataclass(frozen=True)
class ArrayType:
    """An array argument's Numba type described without Numba: the fields numba.typeof reads."""

    dtype: str
    ndim: int
    layout: str  # "C", "F" or "A", as numba.np.numpy_support.map_layout
    readonly: bool


def arg_types(args: tuple) -> tuple:
    """`signature(args)` as Numba-free, picklable descriptions (arrays as ArrayType, scalars as a
    zero of their type, any other argument as itself): what a compile job carries to the background compiler, written by a
    process that has not imported Numba (runtime/tiers.py). `numba_types` turns them back."""
    out: list[Any] = []
    for a in args:
        if isinstance(a, np.ndarray) and type(a) is np.ndarray:
            layout = "C" if a.flags.c_contiguous else "F" if a.flags.f_contiguous else "A"
            out.append(ArrayType(a.dtype.str, a.ndim, layout, not a.flags.writeable))
        elif (type(a) in (bool, float) or isinstance(a, (np.bool_, np.number))
              or (type(a) is int and -(1 << 63) <= a < 1 << 63)):
            # a scalar's type is its part of the signature: one representative value, so steps
            # that differ only in scalar arguments (a shared entry's shapes) are one compile job
            out.append(type(a)(0))
        else:
            out.append(a)
    return tuple(out)


def numba_types(described: tuple) -> tuple:
    """The Numba signature for `arg_types`' descriptions (equal to `signature` of the arguments)."""
    import numba

    return tuple(numba.types.Array(numba.from_dtype(np.dtype(d.dtype)), d.ndim, d.layout, readonly=d.readonly)
                 if isinstance(d, ArrayType) else numba.typeof(d) for d in described)


def compile_now(fn: Any, args: tuple) -> Any:
    """Compile `fn` for the types of `args` and return the compiled overload's entry point: a C
    function taking exactly such arguments, which skips the dispatcher's per-call type matching
    (about a third of a small kernel's call cost)."""
    sig = signature(args)
    del args  # a failed compile's traceback must not keep the interpreter's buffers alive
    return compile_signature(fn, sig)


def compile_signature(fn: Any, sig: tuple) -> Any:
    """Compile `fn` for `sig` (loading it from Numba's cache when it is there); the entry point.
    A damaged cache entry (truncated or corrupted index/object file, a half-written file from a
    killed process) is deleted and the kernel recompiled, with one warning per process; it is
    never fatal."""
    try:
        return fn.compile(sig)
    except Exception as e:  # Numba surfaces a damaged cache as pickle/EOF/OS errors
        why = f"{type(e).__name__}: {e}"
        # the error may outlive this block (Numba keeps some): its traceback must not keep the
        # callers' frames, which hold the interpreter's buffers (Interpreter._ensure_safe)
        while e is not None:
            e.__traceback__ = None
            e = e.__cause__ or e.__context__
    # Retried outside the except block: an error raised inside it would keep the first one (and
    # through its traceback the callers' frames) in a reference cycle, so the buffers those frames
    # hold would stay alive until the next garbage collection, and LiteRT's live-reference check
    # (Interpreter._ensure_safe) would fail every invoke after a kernel fell back to reference.
    global _warned_damage
    if not _warned_damage:
        _warned_damage = True
        warnings.warn(f"tflite_jit: damaged compile-cache entry for {fn.__module__} "
                      f"({why}); deleted it and recompiling", RuntimeWarning, stacklevel=2)
    purge(fn.__module__)
    return fn.compile(sig)


_runtime_ready = False


def _load_overload(fn: Any, sig: tuple) -> Any:
    """Numba's Cache.load_overload without its target-context refresh: the refresh installs
    every typing and lowering registry Numba has (0.1 s, a fifth of a warm MobileNetV2 start),
    which compiling needs and loading machine code does not; loading needs Numba's runtime (NRT:
    the kernels' wrappers adapt NumPy arrays through it), initialised once here. A compile later
    in the process refreshes the context itself."""
    global _runtime_ready
    if not _runtime_ready:
        from numba.core.runtime import rtsys

        rtsys.initialize(fn.targetctx)
        _runtime_ready = True
    cache = fn._cache
    with cache._guard_against_spurious_io_errors():
        return cache._load_overload(sig, fn.targetctx)
    return None  # the guard swallowed an I/O error: a miss


def load_cached(fn: Any, sig: tuple) -> bool:
    """Install `fn`'s machine code for `sig` from Numba's on-disk cache if it is there, never
    compiling: True when `fn` is now callable for `sig` without a compile. This is what
    Dispatcher.compile does on a cache hit (Numba 0.6x), minus the compile on a miss; the
    background tier (runtime/tiers.py) uses it to pick up kernels another process compiled. A
    damaged entry is deleted and reported as a miss."""
    from numba.core import sigutils
    from numba.core.compiler_lock import global_compiler_lock

    # A miss without asking Numba when its index file is absent: its first cache lookup refreshes
    # the whole target context (seconds), which a cold start must not pay for nothing.
    index = getattr(getattr(getattr(fn, "_cache", None), "_cache_file", None), "_index_path", None)
    if index is not None and not fn.overloads and not os.path.exists(index):
        return False
    try:
        with global_compiler_lock:
            args, _ = sigutils.normalize_signature(sig)
            if fn.overloads.get(tuple(args)) is not None:
                return True
            cres = _load_overload(fn, sig)
            if cres is None:
                return False
            fn._cache_hits[sig] += 1
            if not cres.objectmode:
                fn.targetctx.insert_user_function(cres.entry_point, cres.fndesc, [cres.library])
            fn.add_overload(cres)
            return True
    except Exception:  # a damaged or half-written entry: treat as absent, let a compile redo it
        purge(fn.__module__)
        return False


def load_module(name: str, entry: str) -> Callable[..., Any]:
    """`entry` of a generated module already in the cache directory, by module name (how a
    background compiler process, which has no generator state, finds a kernel). The file's
    content must still hash to `name`, so a replaced or truncated file is refused."""
    path = cache_dir() / f"{name}.py"
    source = path.read_text()
    if module_name(source) != name:
        raise ValueError(f"{path} does not hold the module {name} (changed or damaged)")
    return load(source, entry)


# ---- size bound, listing and clearing (`tflite-jit cache`) ---------------------------------------

#: The cache's size bound when TFLITE_JIT_CACHE_MAX_BYTES is unset (a kernel takes ~150 KB).
DEFAULT_MAX_BYTES = 1 << 30


def max_bytes() -> int:
    """TFLITE_JIT_CACHE_MAX_BYTES (bytes; 0 = unbounded), else DEFAULT_MAX_BYTES."""
    raw = os.environ.get("TFLITE_JIT_CACHE_MAX_BYTES", "").strip()
    try:
        return max(0, int(raw)) if raw else DEFAULT_MAX_BYTES
    except ValueError:
        return DEFAULT_MAX_BYTES


#: the subdirectory Numba caches the helper modules' specialisations in (helpercache.py)
HELPERS = "helpers"
_NUMBA_FILE = re.compile(r"^(.*?)\.py\d+\.(?:\d+\.)?nb[ic]$")


def entries(directory: Path | None = None) -> dict[str, list[Path]]:
    """Our files in the cache, by generated module: its source and Numba's index and machine
    code files for it; and by helper function (`helpers/...`: Numba's index and machine code
    for the specialisations kernels compiled of qdot/hybridq/mptransform). Other files in the
    directory are not ours and are never touched."""
    base = directory or cache_dir()
    out: dict[str, list[Path]] = {}
    for f in base.glob("tflite_jit_k_*.py"):
        out.setdefault(f.stem, []).append(f)
    pyc = base / "__pycache__"
    for f in pyc.glob("tflite_jit_k_*") if pyc.is_dir() else ():
        out.setdefault(f.name.split(".", 1)[0], []).append(f)
    helpers = base / HELPERS
    for f in helpers.glob("*/*.nb[ic]") if helpers.is_dir() else ():
        m = _NUMBA_FILE.match(f.name)
        if m:
            out.setdefault(f"{HELPERS}/{f.parent.name}/{m.group(1)}", []).append(f)
    return out


def _size_and_age(files: list[Path]) -> tuple[int, float]:
    size, age = 0, 0.0
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        size += st.st_size
        age = max(age, st.st_atime, st.st_mtime)
    return size, age


def usage(directory: Path | None = None) -> dict[str, Any]:
    """What the cache holds: modules (generated kernels and loop drivers), helper
    specialisations, files, bytes, and the bound."""
    found = entries(directory)
    total = sum(_size_and_age(fs)[0] for fs in found.values())
    kernels = {k: fs for k, fs in found.items() if not k.startswith(HELPERS + "/")}
    return {"directory": str(directory or cache_dir()), "modules": len(kernels),
            "compiled": sum(any(f.suffix == ".nbi" for f in fs) for fs in kernels.values()),
            "helpers": len(found) - len(kernels),
            "files": sum(len(fs) for fs in found.values()), "bytes": total, "max_bytes": max_bytes()}


def _remove(files: list[Path]) -> None:
    # the index first: a reader then sees a miss, never an index pointing at deleted code
    for f in sorted(files, key=lambda f: (f.suffix != ".nbi", f.suffix == ".py")):
        with contextlib.suppress(OSError):
            f.unlink()


def prune(limit: int | None = None, directory: Path | None = None) -> int:
    """Delete the least recently used modules until the cache holds at most `limit` bytes
    (default: max_bytes(); 0 = unbounded). Returns the number of modules deleted. A process that
    has a deleted kernel loaded keeps running it; one that loads it later recompiles it."""
    limit = max_bytes() if limit is None else limit
    if limit <= 0:
        return 0
    found = [(name, fs, *_size_and_age(fs)) for name, fs in entries(directory).items()]
    total = sum(size for _, _, size, _ in found)
    removed = 0
    for _name, fs, size, _age in sorted(found, key=lambda e: e[3]):
        if total <= limit:
            break
        _remove(fs)
        total -= size
        removed += 1
    return removed


def clear(directory: Path | None = None) -> int:
    """Delete every module of ours (and every helper specialisation) from the cache; the number
    of kernel modules deleted."""
    found = entries(directory)
    for fs in found.values():
        _remove(fs)
    return sum(not k.startswith(HELPERS + "/") for k in found)


_pruned = False


def prune_once() -> None:
    """Keep the cache within its bound: checked once per process, when it first writes a new
    module (so a process that only loads cached kernels never scans the directory)."""
    global _pruned
    if not _pruned:
        _pruned = True
        with contextlib.suppress(OSError):
            prune()
