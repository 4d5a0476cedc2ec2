"""Importing this module registers every op family: each module of this package except the
infrastructure calls ops.base.register at import. New families need no list to be edited."""

import importlib
import pkgutil

from tflite_jit import ops as _pkg

_INFRASTRUCTURE = {"base", "expr", "qmath", "_load_all"}

for _m in pkgutil.iter_modules(_pkg.__path__):
    if _m.name not in _INFRASTRUCTURE:
        importlib.import_module(f"{_pkg.__name__}.{_m.name}")
