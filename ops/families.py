"""The op families: every module of this package except the infrastructure below defines ops
(each calls `define` at import). New families need no list to be edited."""

import importlib
import pkgutil
from functools import cache

INFRASTRUCTURE = frozenset({"base", "common", "expr", "families", "qmath", "qsigmoid16"})


@cache
def load_all() -> None:
    """Import every op family, in name order, so that each registers its ops. The registry's
    lookups call this on every lookup, so it runs once (a family that fails to import is retried
    by the next lookup)."""
    for m in pkgutil.iter_modules(importlib.import_module(__package__).__path__):
        if m.name not in INFRASTRUCTURE:
            importlib.import_module(f"{__package__}.{m.name}")
