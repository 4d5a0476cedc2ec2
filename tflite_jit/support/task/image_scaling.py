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


def _filter_cols(row: np.ndarray, dw: int, x: int, dx: int) -> np.ndarray:
    """Horizontal blend with 7-bit weights: (a * (127 ^ f) + b * f) >> 7."""
    xs = x + dx * np.arange(dw, dtype=np.int64)
    xi = xs >> 16
    xf = ((xs >> 9) & 0x7F)[:, None]
    a = row[xi].astype(np.int32)
    nxt = np.minimum(xi + 1, row.shape[0] - 1)  # beyond the edge the weight is 0
    b = row[nxt].astype(np.int32)
    return ((a * (0x7F ^ xf) + b * xf) >> 7).astype(np.uint8)


def _cols(row: np.ndarray, dw: int, x: int, dx: int) -> np.ndarray:
    xs = x + dx * np.arange(dw, dtype=np.int64)
    return row[xs >> 16]


def _interpolate(r0: np.ndarray, r1: np.ndarray, frac: int) -> np.ndarray:
    """Vertical blend with 8-bit weights and rounding; 128 is the rounded average."""
    if frac == 0:
        return r0.copy()
    a, b = r0.astype(np.int32), r1.astype(np.int32)
    if frac == 128:
        return ((a + b + 1) >> 1).astype(np.uint8)
    return ((a * (256 - frac) + b * frac + 128) >> 8).astype(np.uint8)


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
    if dx == 0x10000 and (x & 0xFFFF) == 0:
        max_y = ((sh - 1) << 16) - 1 if sh > 1 else 0
        for j in range(dh):
            y = min(y, max_y)
            yi = y >> 16
            frac = ((y >> 8) & 255) if f else 0
            nxt = src[min(yi + 1, sh - 1), x >> 16:(x >> 16) + dw]
            out[j] = _interpolate(src[yi, x >> 16:(x >> 16) + dw], nxt, frac)
            y += dy
        return out
    max_y = (sh - 1) << 16
    if f and dy < 65536:  # up vertically: blend two horizontally filtered rows
        y = min(y, max_y)
        for j in range(dh):
            y = min(y, max_y)
            yi = y >> 16
            r0 = _filter_cols(src[yi], dw, x, dx)
            r1 = _filter_cols(src[min(yi + 1, sh - 1)], dw, x, dx)
            out[j] = r0 if f == LINEAR else _interpolate(r0, r1, (y >> 8) & 255)
            y += dy
        return out
    if f:  # down vertically: blend two source rows, then filter horizontally
        y = min(y, max_y)
        for j in range(dh):
            yi = y >> 16
            if f == LINEAR:
                row = src[yi]
            else:
                row = _interpolate(src[yi], src[min(yi + 1, sh - 1)], (y >> 8) & 255)
            out[j] = _filter_cols(row, dw, x, dx)
            y = min(y + dy, max_y)
        return out
    for j in range(dh):
        out[j] = _cols(src[y >> 16], dw, x, dx)
        y += dy
    return out
