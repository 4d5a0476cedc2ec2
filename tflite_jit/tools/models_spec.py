"""Model arguments of the command line: a `.tflite` path, or a zoo name from tflite_jit.tools.models
with builder keywords (`mobilenet_v2:input_size=96,alpha=0.5`), so experiments need no files."""

from __future__ import annotations

import os
from typing import Any


class UserError(Exception):
    """A problem with the user's input (a flag, a file, a model): shown as one line, no traceback."""


def _value(v: str) -> Any:
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def load_model(spec: str) -> tuple[bytes, str]:
    """(model bytes, display name) for a path or a zoo spec; UserError naming the fix otherwise."""
    if os.path.exists(spec):
        if os.path.isdir(spec):
            raise UserError(f"Could not open '{spec}': it is a directory, not a .tflite file")
        try:
            with open(spec, "rb") as f:
                return f.read(), spec
        except OSError as e:
            raise UserError(f"Could not open '{spec}': {e.strerror}") from None
    from tflite_jit.tools.models import ZOO, build

    name, _, kw = spec.partition(":")
    if name in ZOO:
        kwargs = {}
        for item in filter(None, kw.split(",")):
            k, sep, v = item.partition("=")
            if not sep:
                raise UserError(f"model {spec!r}: {item!r} is not KEY=VALUE")
            kwargs[k.strip()] = _value(v.strip())
        try:
            return build(name, **kwargs), spec
        except TypeError as e:
            raise UserError(f"model {spec!r}: {e}") from None
    raise UserError(f"Could not open '{spec}': no such file, and not a built-in model name "
                    f"({', '.join(ZOO)})")
