"""Arena planning: tensor lifetimes -> offsets in one buffer.

Greedy by size, as TFLite's arena planner does: the largest tensor is placed first at the lowest
offset where no tensor with an overlapping lifetime sits. Lifetimes are inclusive step ranges
[first write, last read], so an op's output never shares memory with its own inputs (kernels may
read inputs while writing outputs). Offsets are 64-byte aligned (cache lines, AVX-512 loads).

The planned size is checked against runtime.limits before anything is allocated: the arena is
where a small damaged file's many huge, simultaneously live tensors would add up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tflite_jit.runtime import limits

ALIGN = 64


@dataclass(frozen=True)
class Interval:
    tensor: int
    nbytes: int
    first: int  # step that writes it
    last: int  # last step that reads it (>= first)


def lifetimes(steps: Sequence[tuple[Sequence[int], Sequence[int]]],
              views: Mapping[int, int]) -> tuple[dict[int, int], dict[int, int]]:
    """The step that first writes and the last step that reads each tensor, for steps given as
    (inputs, outputs) in run order (-1 inputs are omitted ones). `views` maps a tensor that is a
    view of another (RESHAPE of an intermediate) to the tensor it views: the viewed buffer stays
    alive until the view's last read, through chains of views."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for si, (inputs, outputs) in enumerate(steps):
        for t in inputs:
            if t >= 0:
                last[t] = si
        for t in outputs:
            first.setdefault(t, si)
            last.setdefault(t, si)

    def root(t: int) -> int:
        while t in views:
            t = views[t]
        return t

    for t in views:
        if t in last:
            r = root(t)
            last[r] = max(last.get(r, 0), last[t])
    return first, last


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan(intervals: list[Interval], *, limit: int | None = None, other_bytes: int = 0,
         where: str = "") -> tuple[dict[int, int], int]:
    """Offsets per tensor and the arena size in bytes. Raises limits.ResourceLimitError (a
    RuntimeError) when the arena plus `other_bytes` (the caller's buffers outside the arena)
    exceeds the byte limit (`limit`, else TFLITE_JIT_MAX_BYTES, else physical memory)."""
    # Cheap lower bound first: the largest tensor alone is in the arena, so a hostile model is
    # refused before the (quadratic) placement loop runs over its tensors.
    largest = _largest(intervals)
    budget_check(max((_align(max(iv.nbytes, 1)) for iv in intervals), default=0), other_bytes,
                 limit=limit, where=where, largest=largest)
    placed: list[tuple[int, int, Interval]] = []  # (offset, end, interval), kept sorted by offset
    offsets: dict[int, int] = {}
    size = 0
    for iv in sorted(intervals, key=lambda i: (-i.nbytes, i.first, i.tensor)):
        need = _align(max(iv.nbytes, 1))
        live = sorted((o, e) for o, e, other in placed if not (other.last < iv.first or iv.last < other.first))
        offset = 0
        for o, e in live:
            if offset + need <= o:
                break
            offset = max(offset, e)
        offsets[iv.tensor] = offset
        placed.append((offset, offset + need, iv))
        size = max(size, offset + need)
    budget_check(size, other_bytes, limit=limit, where=where, largest=largest)
    return offsets, size


def _largest(intervals: list[Interval]) -> str:
    """' (largest: tensors 3 (4294967296 bytes), 7 (...) and 9 more)' for the limit's message."""
    top = sorted(intervals, key=lambda i: -i.nbytes)[:3]
    if not top:
        return ""
    more = f" and {len(intervals) - 3} more" if len(intervals) > 3 else ""
    return " (largest: tensor " + ", ".join(f"{iv.tensor} ({iv.nbytes} bytes)" for iv in top) + more + ")"


def budget_check(arena_bytes: int, other_bytes: int = 0, *, limit: int | None = None,
                 where: str = "", largest: str = "") -> None:
    """The arena plus the caller's own buffers (graph inputs/outputs, variables, preserved
    tensors) against the byte limit. `where` prefixes the message (e.g. 'Subgraph 1: ')."""
    what = (f"Allocating tensors ({arena_bytes} bytes of intermediates in the arena{largest} + "
            f"{other_bytes} bytes of inputs, outputs and variables)" if other_bytes
            else f"Allocating the arena of intermediate tensors{largest}")
    limits.check(arena_bytes + other_bytes, what, limit, where=where)


def allocate(size: int) -> tuple[np.ndarray, int]:
    """A zeroed uint8 pool of `size` bytes plus alignment slack, and the offset of its first
    ALIGN-aligned byte. A MemoryError (the limit is set above what the OS will give) becomes
    limits.ResourceLimitError, LiteRT's RuntimeError type, instead of escaping."""
    try:
        pool = np.zeros(size + ALIGN, np.uint8)
    except MemoryError:
        raise limits.ResourceLimitError(
            f"Allocating the arena of intermediate tensors ({size} bytes) failed: out of memory. "
            f"Lower {limits.ENV} to refuse such models before allocating, or free memory.\n") from None
    return pool, (-pool.ctypes.data) % ALIGN
