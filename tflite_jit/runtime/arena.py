"""Arena planning: tensor lifetimes -> offsets in one buffer.

Greedy by size, as TFLite's arena planner does: the largest tensor is placed first at the lowest
offset where no tensor with an overlapping lifetime sits. Lifetimes are inclusive step ranges
[first write, last read], so an op's output never shares memory with its own inputs (kernels may
read inputs while writing outputs). Offsets are 64-byte aligned (cache lines, AVX-512 loads).
"""

from __future__ import annotations

from dataclasses import dataclass

ALIGN = 64


@dataclass(frozen=True)
class Interval:
    tensor: int
    nbytes: int
    first: int  # step that writes it
    last: int  # last step that reads it (>= first)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan(intervals: list[Interval]) -> tuple[dict[int, int], int]:
    """Offsets per tensor and the arena size in bytes."""
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
    return offsets, size
