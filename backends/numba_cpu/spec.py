"""The contract between the Numba backend and its kernel generators.

A generator turns a `KernelRequest` (one cluster: a root op or a pure elementwise loop, plus the
elementwise epilogue fused onto it, all shapes concrete) into a `KernelSource`: the text of a
Python module with one `@njit` entry function, and the list of arguments to call it with. The
framework (backend.py / modcache.py) writes the module into the on-disk cache, imports it, and
binds the arguments; generators never touch files, imports or the runtime.

The request itself (and the epilogue convention: Var(0), Var(k) over reshaped extras) is
backends/request.py's, shared with the OpenCL backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Arg:
    """One argument of the entry function. kind: 'input' (root op input i, the runtime buffer),
    'extra' (extras[i]), 'output' (outputs[i]), 'const' (an array computed at plan time, e.g.
    packed weights; passed as an argument, never closed over, so the kernel stays cacheable)."""

    kind: str
    index: int = 0
    value: np.ndarray | None = field(default=None, compare=False)


@dataclass
class KernelSource:
    source: str  # a complete module: imports numba/numpy itself, defines `entry`
    entry: str
    args: list[Arg]
    parallel: bool = False  # uses prange (the framework sets the thread count before calling)
    may_raise: bool = False  # raises on bad run-time data (GATHER's indices): the runtime reports it
    #: (table, offset) when the kernel is out[i] = table[x[i] - offset] (generators/qtable.py): the
    #: tiers run that lookup in NumPy until the kernel is compiled (NumbaKernel.stand_in)
    lookup: tuple[np.ndarray, int] | None = None
    #: "module:function" when the module only re-exports a shared, shape-generic helper as its
    #: entry (shapes are arguments): its machine code is the helper's, compiled once per machine
    #: and argument types into the compile cache's helpers/ (helpercache.py), not per module
    shared: str | None = None
    #: what compiling it costs, in lines of generated kernel source (the tiers compile the
    #: heaviest first); None: the module's own line count
    weight: int | None = None
