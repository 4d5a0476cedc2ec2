"""Kernel generators, one module per op family, and their registry: each module registers its
generators by root op name (or 'LOOP') with `register_generator`; backend.py looks them up in
GENERATORS after `load_all`."""

from __future__ import annotations

from collections.abc import Callable

from tflite_jit.backends.numba_cpu.spec import KernelSource
from tflite_jit.backends.request import KernelRequest

#: root op name (or 'LOOP') -> generator
GENERATORS: dict[str, Callable[[KernelRequest], KernelSource]] = {}


def register_generator(name: str) -> Callable:
    def deco(fn: Callable[[KernelRequest], KernelSource]) -> Callable[[KernelRequest], KernelSource]:
        GENERATORS[name] = fn
        return fn

    return deco


def load_all() -> None:
    """Import every generator module (each registers itself); called when the backend is used."""
    import importlib
    import pkgutil

    for m in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{m.name}")
