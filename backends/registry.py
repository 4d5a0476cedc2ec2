"""Every backend by name: the one lookup the interpreter (`backend=`), the delegates
(`load_delegate(name)`) and the CLI's inspection use.

Backends are named by "module:Class" and imported on first use, so a missing optional
dependency (pyopencl, an OpenCL driver) fails only the backend that needs it, and importing
tflite_jit never imports Numba's or OpenCL's generators before they are asked for.

Two roles: a *host* backend runs ops in process memory and is chosen with
`Interpreter(backend=...)`; the host chain always ends with `reference`, which runs every op.
A *device* backend owns its memory and is reached through a delegate, which the planner gives
the partitions it wins on estimated time.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from tflite_jit.backends.base import Backend


@dataclass(frozen=True)
class BackendInfo:
    name: str  # Backend.name of what the factory builds
    factory: str  # "module:Class"; constructed as Class(options) (Backend.__init__)
    device: bool  # True: reached through a delegate; False: a host backend (backend=...)
    aliases: tuple[str, ...] = ()
    needs: str = ""  # what a user installs when the import fails


BACKENDS: tuple[BackendInfo, ...] = (
    BackendInfo("numba_cpu", "tflite_jit.backends.numba_cpu.backend:NumbaBackend", device=False,
                aliases=("numba",)),
    BackendInfo("reference", "tflite_jit.backends.reference.backend:ReferenceBackend", device=False),
    BackendInfo("opencl", "tflite_jit.backends.opencl:OpenCLBackend", device=True,
                needs="pyopencl and an OpenCL driver (e.g. `pip install 'pyopencl[pocl]'`)"),
)
#: the host backend that runs every op: last in every host chain
FALLBACK = "reference"


class BackendUnavailable(ValueError):
    """The backend is known but cannot be built here (its import or its constructor failed)."""


def find(name: str, *, device: bool | None = None) -> BackendInfo | None:
    """The backend called `name` (or one of its aliases) in that role, or None."""
    key = name.strip().lower()
    for info in BACKENDS:
        if (key == info.name or key in info.aliases) and (device is None or info.device == device):
            return info
    return None


def names(*, device: bool) -> list[str]:
    """The names users type for the backends of one role (the first alias where there is one)."""
    return [info.aliases[0] if info.aliases else info.name for info in BACKENDS if info.device == device]


def create(info: BackendInfo, options: dict[str, Any] | None = None) -> Backend:
    """Import and construct a backend. BackendUnavailable when it cannot be built here, with what
    to install; an unknown option is the backend's own ValueError."""
    module, cls = info.factory.split(":")
    try:
        factory = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as e:
        needs = f" It needs {info.needs}" if info.needs else ""
        raise BackendUnavailable(f"The {info.name} backend is not available in this installation ({e}).{needs}") from None
    return factory(options) if options else factory()


def host_chain(name: str) -> list[Backend]:
    """`Interpreter(backend=name)`'s backends in order of preference, ending with the fallback
    that runs every op."""
    info = find(name, device=False)
    if info is None:
        known = " or ".join(repr(n) for n in names(device=False))
        raise ValueError(f"Unknown backend {name!r}; use {known}")
    chain = [create(info)]
    if info.name != FALLBACK:
        chain.append(create(find(FALLBACK)))
    return chain


def available() -> tuple[list[Backend], dict[str, str]]:
    """One instance of every backend that can be built on this machine with default options,
    and, for the others, why not (a missing package, no device)."""
    built, missing = [], {}
    for info in BACKENDS:
        try:
            built.append(create(info))
        except Exception as e:  # not installed, no driver, no device: report, do not fail
            missing[info.name] = str(e)
    return built, missing
