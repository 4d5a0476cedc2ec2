"""Resource limits: how many bytes one interpreter may allocate for tensors, checked before
anything is allocated.

A model file is untrusted input and a small one can declare enormous tensors: ir.validate caps
each declared tensor at MAX_TENSOR_BYTES (4 GiB), but many tensors of 4 GiB that are live at the
same time (a CONCATENATION / ADD_N of 250 broadcasts, say) still ask for a terabyte. The arena
planner knows the real total (intermediates share memory by lifetime), so the total is checked
there, against a limit that is:

1. the `max_bytes` argument when a caller passes one (the Interpreter keyword, if adopted),
2. else the environment variable TFLITE_JIT_MAX_BYTES (bytes, or with a K/M/G/T suffix:
   "512M", "8G"; "0" or "none" disables the check),
3. else the machine's physical memory: a model that needs more than the RAM there is cannot
   run here anyway, and numpy would either fail with a MemoryError or, through lazy
   overcommitted pages, succeed until the first invoke touches them and the OOM killer ends
   the process.

The check raises ResourceLimitError, a RuntimeError (LiteRT's AllocateTensors error type) whose
message says how many bytes, for what, and how to raise the limit.
"""

from __future__ import annotations

import functools
import os
import re

from tflite_jit.runtime.shapes import PrepareError

ENV = "TFLITE_JIT_MAX_BYTES"
#: When the physical memory cannot be read (not Linux/macOS): a generous fixed default.
FALLBACK_MAX_BYTES = 16 << 30

_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class ResourceLimitError(PrepareError):
    """Allocating the model's tensors would exceed the configured byte limit."""


def parse_bytes(text: str) -> int | None:
    """'1073741824', '512M', '8G', '1.5T' (binary units, optional trailing 'B'/'iB') -> bytes;
    '0', 'none', 'off' or 'unlimited' -> None (no limit). ValueError naming the variable
    otherwise, so a typo is not silently ignored."""
    s = text.strip().upper().replace("_", "")
    if s in ("0", "NONE", "OFF", "UNLIMITED", "INF"):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", s)
    if not m:
        raise ValueError(f"{ENV}={text!r} is not a byte count: use e.g. 1073741824, 512M, 8G or "
                         "'none' (no limit)")
    n = int(float(m.group(1)) * _SUFFIX[m.group(2)])
    return n if n > 0 else None


@functools.lru_cache(maxsize=1)
def physical_memory() -> int:
    """Total RAM in bytes (FALLBACK_MAX_BYTES when the platform does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return FALLBACK_MAX_BYTES


def max_bytes(override: int | None = None) -> int | None:
    """The limit in force (None: unlimited). Read on every call - the environment may change
    between interpreters - and cheap (one getenv)."""
    if override is not None:
        return None if override <= 0 else int(override)
    env = os.environ.get(ENV)
    if env is not None and env.strip():
        return parse_bytes(env)
    return physical_memory()


def _fmt(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def check(nbytes: int, what: str, limit: int | None = None, *, where: str = "") -> None:
    """Raise ResourceLimitError when `nbytes` (for `what`) is over the limit in force."""
    cap = max_bytes(limit)
    if cap is None or nbytes <= cap:
        return
    source = ("the max_bytes argument" if limit is not None
              else f"{ENV}" if os.environ.get(ENV, "").strip() else "the machine's physical memory")
    raise ResourceLimitError(
        f"{where}{what} needs {nbytes} bytes ({_fmt(nbytes)}), over the {cap}-byte ({_fmt(cap)}) "
        f"limit set by {source}. The model declares (or its shapes infer) tensors larger than this "
        f"machine should allocate; if it really needs that much memory, raise the limit, e.g. "
        f"{ENV}={_suggest(nbytes)} (or 'none').\n")


def _suggest(nbytes: int) -> str:
    g = -(-nbytes // (1 << 30))
    return f"{g}G"
