"""Drop-in replacement for the `tflite_support` package's metadata tools.

Change `tflite_support` to `tflite_jit.support` in the imports:
`from tflite_jit.support import metadata`, `from tflite_jit.support import
metadata_schema_py_generated as _metadata_fb`, `from tflite_jit.support.metadata_writers import
image_classifier`. See docs/metadata.md. The Task Library: `from tflite_jit.support.task import
vision` (docs/tasks.md).

As with tflite_support, `import tflite_jit.support as tflite_support` then
`tflite_support.metadata...` works: the submodules load on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("metadata", "metadata_schema_py_generated", "schema_py_generated",
               "metadata_writers", "task")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_SUBMODULES))
