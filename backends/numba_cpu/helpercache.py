"""Numba's on-disk cache for the shared helper modules (qdot, hybridq, mptransform), kept in the
compile cache directory beside the kernels instead of next to the package.

Why: those helpers are compiled once per argument signature (per literal shape where a generated
kernel passes literals; the hybrid CONV_2D / FULLY_CONNECTED steps call qdot's entries directly, one
signature for all shapes), so
their cache grows with the models a machine has run, exactly like the kernels'. Numba's default
puts it in the package's `__pycache__` (or ~/.cache/numba): `tflite-jit cache clear` and the
size bound did not see it, and a measurement "with an empty TFLITE_JIT_CACHE_DIR" still found
every specialisation an earlier run had compiled (the first-result sweep's dynamic-range rows
looked 50 % slower after an edit to qdot.py only because that edit invalidated them).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numba
from numba.core.caching import (
    CompileResultCacheImpl,
    FunctionCache,
    _CacheLocator,
    _SourceFileBackedLocatorMixin,
)

from tflite_jit.backends.numba_cpu import modcache


class _Locator(_SourceFileBackedLocatorMixin, _CacheLocator):
    """<cache_dir>/helpers/<Numba's per-source-file subdirectory> (modcache lists, bounds and
    clears it with the kernels); a stale entry is recognised by the source file's stamp, as by
    Numba's own locators."""

    def __init__(self, py_func: Any, py_file: str):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = os.path.join(modcache.cache_dir(), modcache.HELPERS,
                                        self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self) -> str:
        return self._cache_path


class _Impl(CompileResultCacheImpl):
    _locator_classes = [_Locator]


class _Cache(FunctionCache):
    _impl_class = _Impl


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """numba.njit(**options), with cache=True meaning the compile cache directory. Where that
    directory cannot hold it, the helper compiles in memory (Numba raises no error for that)."""
    cache = options.pop("cache", False)

    def wrap(fn: Callable[..., Any]) -> Any:
        disp = numba.njit(**options)(fn)
        if cache:
            try:
                disp._cache = _Cache(disp.py_func)
            except RuntimeError:  # no usable location: stay uncached
                pass
        return disp

    return wrap
