"""Bilinear image scaling that reproduces the Task Library's, pixel for pixel.

The Task Library resizes with libyuv's ARGBScale(kFilterBilinear) (an RGB image goes through
ARGB; every channel is scaled alike). Its pixels follow from libyuv's fixed-point rules, restated
here from libyuv's documented behaviour (16.16 source positions; a filter reduced to linear or
nearest when a dimension does not change or shrinks exactly 3x; exact 2x and even shrinks
averaged in 2x2 boxes, as its x86 SIMD rounds them; 7-bit horizontal and 8-bit vertical blend
weights), so classification
scores on resized images match tflite_support's to float precision rather than within a pixel.
NumPy, one output row at a time.
"""

from __future__ import annotations

import numpy as np

NONE, LINEAR, BILINEAR = 0, 1, 2


def _reduce_filter(sw: int, sh: int, dw: int, dh: int) -> int:
    f = BILINEAR
    if sh == 1 or dh == sh or dh * 3 == sh:
        f = LINEAR
    if sw == 1:
        f = NONE
    if f == LINEAR and (sw == 1 or dw == sw or dw * 3 == sw):
        f = NONE
    return f


def _div(num: int, div: int) -> int:
    return int((num << 16) // div)


def _div1(num: int, div: int) -> int:
    return int(((num << 16) - 0x00010001) // (div - 1))


def _slope(sw: int, sh: int, dw: int, dh: int, f: int) -> tuple[int, int, int, int]:
    """Start positions and steps (16.16) per axis: x, y, dx, dy."""
    x = y = dx = dy = 0
    if f == BILINEAR or f == LINEAR:
        if dw <= sw:
            dx = _div(sw, dw)
            x = (dx >> 1) - 32768
        elif dw > 1:
            dx = _div1(sw, dw)
        if f == BILINEAR:
            if dh <= sh:
                dy = _div(sh, dh)
                y = (dy >> 1) - 32768
            elif dh > 1:
                dy = _div1(sh, dh)
        else:
            dy = _div(sh, dh)
            y = dy >> 1
    else:
        dx, dy = _div(sw, dw), _div(sh, dh)
        x, y = dx >> 1, dy >> 1
    return x, y, dx, dy


def _filter_cols(rows: np.ndarray, dw: int, x: int, dx: int) -> np.ndarray:
    """Horizontal blend of (..., W, C) rows with 7-bit weights: (a * (127 ^ f) + b * f) >> 7."""
    xs = x + dx * np.arange(dw, dtype=np.int64)
    xi = xs >> 16
    xf = ((xs >> 9) & 0x7F)[:, None]
    a = rows[..., xi, :].astype(np.int32)
    nxt = np.minimum(xi + 1, rows.shape[-2] - 1)  # beyond the edge the weight is 0
    b = rows[..., nxt, :].astype(np.int32)
    return ((a * (0x7F ^ xf) + b * xf) >> 7).astype(np.uint8)


def _interpolate(r0: np.ndarray, r1: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Vertical blend of row pairs (one 8-bit weight per row) with rounding. libyuv copies
    for weight 0 and averages for 128; the formula gives the same bytes for both."""
    f = np.asarray(frac, np.int32).reshape(-1, *([1] * (r0.ndim - 1)))
    a, b = r0.astype(np.int32), r1.astype(np.int32)
    return ((a * (256 - f) + b * f + 128) >> 8).astype(np.uint8)


def _box2(src: np.ndarray, y0: int, x0: int, dw: int, step: int) -> np.ndarray:
    """2x2 box averages. On x86 the Task Library's libyuv runs SSE2 for the first multiple of 4
    outputs of a row, averaging rows then columns with rounding at each step
    (avg(avg(a, c), avg(b, d))), and exact C for the rest ((a + b + c + d + 2) >> 2)."""
    cols = x0 + step * np.arange(dw)
    a, b = src[y0, cols].astype(np.int32), src[y0, cols + 1].astype(np.int32)
    c, d = src[y0 + 1, cols].astype(np.int32), src[y0 + 1, cols + 1].astype(np.int32)
    out = (a + b + c + d + 2) >> 2
    n = dw & ~3
    out[:n] = (((a[:n] + c[:n] + 1) >> 1) + ((b[:n] + d[:n] + 1) >> 1) + 1) >> 1
    return out.astype(np.uint8)


def scale(src: np.ndarray, dw: int, dh: int) -> np.ndarray:
    """Scale an (H, W, C) uint8 image to (dh, dw, C) as libyuv's ARGBScale (bilinear)."""
    sh, sw = src.shape[:2]
    f = _reduce_filter(sw, sh, dw, dh)
    x, y, dx, dy = _slope(sw, sh, dw, dh, f)
    out = np.empty((dh, dw, src.shape[2]), np.uint8)
    if ((dx | dy) & 0xFFFF) == 0:
        if not dx or not dy:
            f = NONE
        elif not (dx & 0x10000) and not (dy & 0x10000):
            step = dx >> 16  # 2x2 box averages (a filter reduced to LINEAR: 1x2)
            x0 = x >> 16
            for j in range(dh):
                y0 = (y >> 16) + j * (dy >> 16)
                if f == LINEAR:
                    cols = x0 + step * np.arange(dw)
                    out[j] = ((src[y0, cols].astype(np.int32) + src[y0, cols + 1] + 1)
                              >> 1).astype(np.uint8)
                else:
                    out[j] = _box2(src, y0, x0, dw, step)
            return out
        elif (dx & 0x10000) and (dy & 0x10000):
            f = NONE
            if dx == 0x10000 and dy == 0x10000:
                return src[y >> 16:(y >> 16) + dh, x >> 16:(x >> 16) + dw].copy()
    if dx == 0x10000 and (x & 0xFFFF) == 0:  # width unchanged: blend rows only
        max_y = ((sh - 1) << 16) - 1 if sh > 1 else 0
        ys = np.minimum(y + dy * np.arange(dh, dtype=np.int64), max_y)
        yi = ys >> 16
        frac = ((ys >> 8) & 255) if f else np.zeros(dh, np.int64)
        cols = slice(x >> 16, (x >> 16) + dw)
        return _interpolate(src[yi, cols], src[np.minimum(yi + 1, sh - 1), cols], frac)
    max_y = (sh - 1) << 16
    if f and dy < 65536:  # up vertically: blend two horizontally filtered rows
        ys = np.minimum(min(y, max_y) + dy * np.arange(dh, dtype=np.int64), max_y)
        yi = ys >> 16
        r0 = _filter_cols(src[yi], dw, x, dx)
        if f == LINEAR:
            return r0
        r1 = _filter_cols(src[np.minimum(yi + 1, sh - 1)], dw, x, dx)
        return _interpolate(r0, r1, (ys >> 8) & 255)
    if f:  # down vertically: blend two source rows, then filter horizontally
        ys = np.minimum(min(y, max_y) + dy * np.arange(dh, dtype=np.int64), max_y)
        yi = ys >> 16
        rows = src[yi] if f == LINEAR else _interpolate(
            src[yi], src[np.minimum(yi + 1, sh - 1)], (ys >> 8) & 255)
        return _filter_cols(rows, dw, x, dx)
    ys = y + dy * np.arange(dh, dtype=np.int64)
    xs = x + dx * np.arange(dw, dtype=np.int64)
    return src[(ys >> 16)[:, None], (xs >> 16)[None, :]]
