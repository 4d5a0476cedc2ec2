"""The contract between the Numba backend and its kernel generators.

A generator turns a `KernelRequest` (one cluster: a root op or a pure elementwise loop, plus the
elementwise epilogue fused onto it, all shapes concrete) into a `KernelSource`: the text of a
Python module with one `@njit` entry function, and the list of arguments to call it with. The
framework (backend.py / modcache.py) writes the module into the on-disk cache, imports it, and
binds the arguments; generators never touch files, imports or the runtime.

Epilogues: the cluster's outputs are expressions (ops/expr.py trees) over
  Var(0)         the root op's result at the current output element (for LOOP clusters: unused),
  Var(k), k >= 1 the element of `extras[k-1]` at the same output position.
Extras are already reshaped by the framework to the output's rank with broadcasting dims of
size 1 (so a per-channel bias of an NHWC output has shape (1, 1, 1, C)): a generator indexes an
extra with its output loop variables, using 0 on size-1 dims (see printer.index_expr).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflite_jit.ops.expr import Expr


@dataclass(frozen=True)
class TensorArg:
    shape: tuple[int, ...]
    dtype: np.dtype
    value: np.ndarray | None = None  # known at plan time (weights, constants)


@dataclass(frozen=True)
class Output:
    expr: Expr  # over Var(0) (root result) and Var(k >= 1) (extras)
    arg: TensorArg  # its shape equals the cluster's iteration shape


@dataclass
class KernelRequest:
    op_name: str  # root op ('CONV_2D', ...), or 'LOOP' for a pure elementwise/broadcast cluster
    attrs: Any  # the root op's parsed attrs (None for LOOP)
    inputs: list[TensorArg | None]  # root op's inputs in op order (None: omitted optional input)
    extras: list[TensorArg]  # epilogue inputs, reshaped to the output rank
    outputs: list[Output]  # at least one; all of the iteration shape
    num_threads: int = 1
    # LOOP clusters: the iteration shape; ops' results are not involved (Var(0) unused)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.outputs[0].arg.shape


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
