"""NumPy's BLAS threads while reference steps run: at most the interpreter's num_threads.

The reference backend is NumPy, and NumPy's matrix products run on OpenBLAS (or MKL), whose
thread pool sizes itself to the machine and whose idle threads spin after every call. An
Interpreter with num_threads=1 (LiteRT's meaning: one thread) that runs a step on reference would
otherwise keep every core busy: measured on 2 cores, 50 reference invokes of MobileNetV2 spaced
50 ms apart took 3.9 CPU seconds for 0.7 s of invoking (0.85 s with one BLAS thread), and the
spinning took the cores the background compilers (runtime/tiers.py) needed, doubling a cold
model's wait for full speed. threadpoolctl sets the pool size for the duration of a run and
restores the user's setting after it, so NumPy code of the user's own keeps its threads.
"""

from __future__ import annotations

import contextlib
from typing import Any

_controller: Any = None


def _get_controller() -> Any:
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        except Exception:  # noqa: BLE001 - no threadpoolctl or an unreadable library: no limit
            _controller = False
    return _controller


def limited(num_threads: int) -> contextlib.AbstractContextManager:
    """A context in which NumPy's BLAS uses at most `num_threads` threads."""
    ctl = _get_controller()
    if not ctl:
        return contextlib.nullcontext()
    return ctl.limit(limits=max(1, int(num_threads)), user_api="blas")
