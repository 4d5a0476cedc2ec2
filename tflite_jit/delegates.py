"""Delegates with LiteRT's call shape: `load_delegate(name, options)` gives a `Delegate` for
`Interpreter(experimental_delegates=[...])`.

LiteRT's delegates are native libraries; tflite_jit's are its own device backends, named instead
of loaded: `tflite_jit.load_delegate("opencl", options={"device": "gpu", "allow_fp16": False,
"min_nodes_per_partition": 2, "max_delegated_partitions": 4})`. Option values may be typed or,
as LiteRT passes them, strings ("true", "4"). A path to a native TFLite delegate (anything ending
.so/.dll/.dylib, or any existing file) is refused with LiteRT's error types: a missing file is an
OSError as from LiteRT's loader, an existing library a ValueError (LiteRT's type for a delegate
that failed to create), both saying which delegates tflite_jit has. Backends are imported lazily,
so a missing optional dependency (pyopencl) fails only the delegate that needs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tflite_jit.backends import registry
from tflite_jit.backends.base import Backend
from tflite_jit.planner import PartitionLimits

_LIB_SUFFIXES = (".so", ".dll", ".dylib")
_BACKEND_OPTIONS = ("device", "allow_fp16")  # the backend's; the partition limits are the planner's
_BOOL = {"true": True, "1": True, "yes": True, "on": True,
         "false": False, "0": False, "no": False, "off": False}


def _supported() -> str:
    names = ", ".join(f"'{n}'" for n in registry.names(device=True))
    return (f"tflite_jit's delegates are {names} (tflite_jit.load_delegate('opencl', "
            "options={...})); without a delegate every op runs on the CPU backends")


class Delegate:
    """A delegate for `Interpreter(experimental_delegates=[...])`: one tflite_jit device backend
    plus TFLite's partition limits (`min_nodes_per_partition`, `max_delegated_partitions`)."""

    #: the options every delegate takes
    OPTIONS = ("device", "allow_fp16", "min_nodes_per_partition", "max_delegated_partitions")

    def __init__(self, library: str, options: dict | None = None):
        self._library = library
        self._options = dict(options or {})
        name = os.fsdecode(library) if isinstance(library, (bytes, os.PathLike)) else str(library)
        key = name.strip().lower()
        info = registry.find(key, device=True)
        if info is None:
            if not os.path.exists(name):
                if key.endswith(_LIB_SUFFIXES) or ".so." in key or os.sep in name:
                    raise OSError(f"{name}: cannot open shared object file: No such file or directory. "
                                  f"tflite_jit cannot load native TFLite delegates; {_supported()}")
                raise OSError(f"{name}: cannot open shared object file: No such file or directory "
                              f"(no tflite_jit delegate is called {name!r}); {_supported()}")
            raise ValueError(f"tflite_jit cannot host native TFLite delegates ({name}): it runs models "
                             f"with its own backends. {_supported()}")
        parsed = parse_options(key, self._options)
        self.name = key
        self.options = parsed
        self.limits = PartitionLimits(parsed.get("min_nodes_per_partition", 0),
                                      parsed.get("max_delegated_partitions", 0))
        self.backend = _make_backend(info, parsed)

    @classmethod
    def from_backend(cls, backend: Backend, options: Mapping[str, Any] | None = None) -> Delegate:
        """A delegate for any tflite_jit Backend object (a device backend of your own, or a test
        double); `options` takes the partition limits."""
        self = cls.__new__(cls)
        self._library = backend.name
        self._options = dict(options or {})
        parsed = parse_options(backend.name, self._options, allowed=("min_nodes_per_partition",
                                                                     "max_delegated_partitions"))
        self.name = backend.name
        self.options = parsed
        self.limits = PartitionLimits(parsed.get("min_nodes_per_partition", 0),
                                      parsed.get("max_delegated_partitions", 0))
        self.backend = backend
        return self

    def _get_native_delegate_pointer(self) -> int:
        """LiteRT's hook; here an opaque id (there is no native object)."""
        return id(self)

    def __repr__(self) -> str:
        return f"Delegate({self.name!r}, options={self.options!r})"


def load_delegate(library: str, options: dict | None = None) -> Delegate:
    """LiteRT's load_delegate: a ValueError is re-raised as 'Failed to load delegate from
    {library}\\n{message}', other errors (OSError for a missing library) pass unchanged."""
    try:
        return Delegate(library, options)
    except ValueError as e:
        raise ValueError(f"Failed to load delegate from {library}\n{e}") from None


def parse_options(name: str, options: Mapping[str, Any],
                  allowed: tuple[str, ...] = Delegate.OPTIONS) -> dict[str, Any]:
    """Typed options from typed or string values; ValueError naming the option and the fix."""
    out: dict[str, Any] = {}
    for k, v in options.items():
        k = str(k)
        if k not in allowed:
            raise ValueError(f"Unknown option {k!r} for delegate {name!r}; it takes {', '.join(allowed)}")
        if k == "device":
            out[k] = str(v)
        elif k == "allow_fp16":
            b = v if isinstance(v, bool) else _BOOL.get(str(v).strip().lower())
            if b is None:
                raise ValueError(f"Option allow_fp16 of delegate {name!r} must be true or false, got {v!r}")
            out[k] = b
        else:
            try:
                i = int(str(v).strip()) if not isinstance(v, bool) else None
            except ValueError:
                i = None
            if i is None or i < 0:
                raise ValueError(f"Option {k} of delegate {name!r} must be an integer >= 0, got {v!r}")
            out[k] = i
    return out


def _make_backend(info: registry.BackendInfo, options: dict[str, Any]) -> Backend:
    backend_options = {k: v for k, v in options.items() if k in _BACKEND_OPTIONS}
    try:
        return registry.create(info, backend_options)
    except registry.BackendUnavailable as e:
        raise ValueError(str(e).replace(" backend ", " delegate ", 1)) from None
    except Exception as e:  # no device, driver error: LiteRT's "delegate create failed" type
        raise ValueError(f"Could not create the {info.name} delegate: {type(e).__name__}: {e}") from None
