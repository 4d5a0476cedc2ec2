"""Hypothesis draws of tensor shapes shared by the op tests. `draw` is a @st.composite draw
function or `data.draw` of an st.data() argument."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

Draw = Callable[[st.SearchStrategy], Any]


def draw_shape(draw: Draw, lo: int = 1, hi: int = 4, min_rank: int = 1, max_rank: int = 4) -> tuple[int, ...]:
    """A shape of min_rank..max_rank dims, each lo..hi."""
    return tuple(draw(st.lists(st.integers(lo, hi), min_size=min_rank, max_size=max_rank)))


def draw_broadcast_pair(draw: Draw, max_rank: int = 4, swap: bool = True) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that broadcast together: a shape of rank 0..max_rank, and a tail of it with some
    dims set to 1; `swap`: either may come first."""
    shape = draw_shape(draw, min_rank=0, max_rank=max_rank)
    other = [d if draw(st.booleans()) else 1 for d in shape]
    a, b = shape, tuple(other[draw(st.integers(0, len(other))):])
    return (a, b) if not swap or draw(st.booleans()) else (b, a)
