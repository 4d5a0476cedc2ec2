"""Drop-in for tflite_support's Task Library (`tflite_support.task`), on tflite_jit's Interpreter.

`from tflite_jit.support.task import vision` then `vision.ImageClassifier.create_from_file(...)`:
the same classes, options and result dataclasses as tflite_support 0.4.4, the same numbers
(tests/support/test_task_goldens.py compares against its recorded results). See docs/tasks.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("core", "processor", "vision", "text", "audio")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_SUBMODULES))
