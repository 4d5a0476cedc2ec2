"""MediaPipe's transform ops (ops/mediapipe.py) as Numba functions, compiled once (cache=True) and
called by the small modules generators/mediapipe.py prints: TransformTensorBilinear (the face
landmark model's attention crops, the op that costs), TransformLandmarks and
Landmarks2TransformMatrix (a few hundred points, a dozen scalars: compiled so that the model's
plan has no reference step between its kernels, not for their own cost).

Each function repeats the reference's arithmetic step for step, in the same precision (float32
where the reference rounds to float32, float64 where it computes in double, libm's atan / atan2 /
cos / sin), so the results equal the reference bit for bit (tests/test_mediapipe_ops.py). No
fast-math anywhere: nothing is reassociated or contracted into an FMA. modcache keys the
generated modules on this file's text.
"""

from __future__ import annotations

import math

import numpy as np

from tflite_jit.backends.numba_cpu.helpercache import njit as helper_njit

_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy", boundscheck=False)
F0 = np.float32(0.0)
F1 = np.float32(1.0)


@helper_njit(**_JIT)
def transform_landmarks(x, m, out, count, dims, scale):
    """x, out: `count` landmarks of `dims` floats; x' = m[0]x + m[1]y + m[2]*0 + (m[3]*scale)*1
    and likewise y' from m's second row, in float32 in that order; the rest copied."""
    t0, t1, t2, t3 = m[0], m[1], m[2], np.float32(m[3] * scale)
    u0, u1, u2, u3 = m[4], m[5], m[6], np.float32(m[7] * scale)
    for i in range(count):
        b = i * dims
        px = x[b]
        py = x[b + 1]
        for d in range(2, dims):
            out[b + d] = x[b + d]
        v = np.float32(np.float32(t0 * px) + np.float32(t1 * py))
        v = np.float32(np.float32(v + np.float32(t2 * F0)) + np.float32(t3 * F1))
        out[b] = v
        v = np.float32(np.float32(u0 * px) + np.float32(u1 * py))
        v = np.float32(np.float32(v + np.float32(u2 * F0)) + np.float32(u3 * F1))
        out[b + 1] = v


@helper_njit(**_JIT)
def transform_bilinear(x, m, out, h, w, c, oh, ow, align):
    """out [oh, ow, c]: each output pixel's source (cx, cy) = first two rows of m times (ox, oy,
    0, 1) in float32 (v2: the half-pixel shift folded into m's last column in double first);
    outside [0, w-1] x [0, h-1] it is 0, else the bilinear blend with float32 weights and row
    blends, the arithmetic around them in double; neighbours past the last row / column read 0."""
    t0, t1, t2, t3 = m[0], m[1], m[2], m[3]
    u0, u1, u2, u3 = m[4], m[5], m[6], m[7]
    if align:
        t3 = np.float32(np.float64(t3) + (np.float64(t0) * 0.5 + np.float64(t1) * 0.5 - 0.5))
        u3 = np.float32(np.float64(u3) + (np.float64(u0) * 0.5 + np.float64(u1) * 0.5 - 0.5))
    wl = np.float32(w - 1)
    hl = np.float32(h - 1)
    for oy in range(oh):
        fy_ = np.float32(oy)
        for ox in range(ow):
            fx_ = np.float32(ox)
            cx = np.float32(np.float32(np.float32(t0 * fx_) + np.float32(t1 * fy_)) + np.float32(t2 * F0))
            cx = np.float32(cx + t3)
            cy = np.float32(np.float32(np.float32(u0 * fx_) + np.float32(u1 * fy_)) + np.float32(u2 * F0))
            cy = np.float32(cy + u3)
            ob = (oy * ow + ox) * c
            if not (cx >= F0 and cx <= wl and cy >= F0 and cy <= hl):
                for k in range(c):
                    out[ob + k] = F0
                continue
            fx = math.floor(np.float64(cx))
            fy = math.floor(np.float64(cy))
            x0 = int(fx)
            y0 = int(fy)
            rc = np.float64(np.float32(np.float64(cx) - fx))
            lc = np.float64(np.float32(np.float64(cy) - fy))
            okx = x0 + 1 < w
            oky = y0 + 1 < h
            b00 = (y0 * w + x0) * c
            b01 = b00 + c
            b10 = b00 + w * c
            b11 = b10 + c
            for k in range(c):
                v00 = np.float64(x[b00 + k])
                v01 = np.float64(x[b01 + k]) if okx else 0.0
                v10 = np.float64(x[b10 + k]) if oky else 0.0
                v11 = np.float64(x[b11 + k]) if okx and oky else 0.0
                upper = np.float64(np.float32((1.0 - rc) * v00 + rc * v01))
                lower = np.float64(np.float32((1.0 - rc) * v10 + rc * v11))
                out[ob + k] = np.float32(lc * lower + (1.0 - lc) * upper)


@helper_njit(**_JIT)
def _matmul(a, b, n, out):
    """Row-major n x n float32 product, each sum from 0 in order (MediaPipe's Mat3 / Mat4)."""
    for r in range(n):
        for col in range(n):
            s = F0
            for k in range(n):
                s = np.float32(s + np.float32(a[r * n + k] * b[k * n + col]))
            out[r * n + col] = s


@helper_njit(**_JIT)
def _mul4(t, b):
    tmp = np.empty(16, np.float32)
    _matmul(t, b, 4, tmp)
    t[:] = tmp


@helper_njit(**_JIT)
def _lmax(v):
    """Python's max over a list: the first element, replaced by each later one that is greater
    (a NaN first stays; a NaN later is skipped)."""
    r = v[0]
    for i in range(1, v.size):
        if v[i] > r:
            r = v[i]
    return r


@helper_njit(**_JIT)
def _lmin(v):
    r = v[0]
    for i in range(1, v.size):
        if v[i] < r:
            r = v[i]
    return r


@helper_njit(**_JIT)
def l2t_v2(lm, subset, out, left, right, target, out_h, out_w, scale_x, scale_y):
    """Landmarks2TransformMatrix v2 (ops/mediapipe.py `_l2t_v2`): lm [N * 3], subset: the
    flattened index pairs, out: the 4x4 matrix (16 floats)."""
    lx, ly = lm[left * 3], lm[left * 3 + 1]
    rx, ry = lm[right * 3], lm[right * 3 + 1]
    ang = np.float32(math.atan2(np.float64(np.float32(ry - ly)), np.float64(np.float32(rx - lx))))
    rot = np.float32(target - ang)
    c, s = np.float32(math.cos(np.float64(rot))), np.float32(math.sin(np.float64(rot)))
    cn, sn = np.float32(math.cos(np.float64(-rot))), np.float32(math.sin(np.float64(-rot)))
    k = subset.size
    xs = np.empty(k, np.float32)
    ys = np.empty(k, np.float32)
    for i in range(k):
        qx, qy = lm[subset[i] * 3], lm[subset[i] * 3 + 1]
        xs[i] = np.float32(np.float32(np.float32(c * qx) + np.float32(-s * qy)) + F0)
        ys[i] = np.float32(np.float32(np.float32(s * qx) + np.float32(c * qy)) + F0)
    xmax, xmin, ymax, ymin = _lmax(xs), _lmin(xs), _lmax(ys), _lmin(ys)
    w = np.float32(xmax - xmin)
    h = np.float32(ymax - ymin)
    two = np.float32(2.0)
    mx = np.float32(np.float32(xmin + xmax) / two)
    my = np.float32(np.float32(ymin + ymax) / two)
    cx = np.float32(np.float32(np.float32(cn * mx) + np.float32(-sn * my)) + F0)
    cy = np.float32(np.float32(np.float32(sn * mx) + np.float32(cn * my)) + F0)
    t = np.zeros(16, np.float32)
    for i in range(4):
        t[i * 5] = F1
    b = np.zeros(16, np.float32)
    for i in range(4):
        b[i * 5] = F1
    b[3], b[7] = cx, cy
    _mul4(t, b)
    r = -rot
    cr, sr = np.float32(math.cos(np.float64(r))), np.float32(math.sin(np.float64(r)))
    b[3], b[7] = F0, F0
    b[0], b[1], b[4], b[5] = cr, -sr, sr, cr
    _mul4(t, b)
    ow, oh = np.float32(out_w), np.float32(out_h)
    b[1], b[4] = F0, F0
    b[0] = np.float32(np.float32(np.float32(scale_x) * w) / ow)
    b[5] = np.float32(np.float32(np.float32(scale_y) * h) / oh)
    _mul4(t, b)
    b[0], b[5] = F1, F1
    b[3] = np.float32(-1.0 * (np.float64(ow) / 2.0))
    b[7] = np.float32(-1.0 * (np.float64(oh) / 2.0))
    _mul4(t, b)
    out[:] = t


@helper_njit(**_JIT)
def l2t_v1(lm, subset, out, left, right, in_h, in_w, out_h, out_w, lm_range, mult):
    """Landmarks2TransformMatrix v1 (ops/mediapipe.py `_l2t_v1`): the box of the subset rotated
    by the eye-line angle, composed as to_absolute . rotation . scale . to_relative (3x3)."""
    lx, ly = lm[left * 3], lm[left * 3 + 1]
    rx, ry = lm[right * 3], lm[right * 3 + 1]
    alpha = np.float32(-math.atan(np.float64(np.float32(np.float32(ry - ly) / np.float32(rx - lx)))))
    ca, sa = math.cos(np.float64(alpha)), math.sin(np.float64(alpha))
    k = subset.size
    xs = np.empty(k + 1, np.float32)
    ys = np.empty(k + 1, np.float32)
    ns = np.empty(k + 1, np.float32)
    nys = np.empty(k + 1, np.float32)
    xs[0], ys[0] = np.float32(-100000.0), np.float32(-100000.0)
    ns[0], nys[0] = np.float32(100000.0), np.float32(100000.0)
    for i in range(k):
        qx, qy = np.float64(lm[subset[i] * 3]), np.float64(lm[subset[i] * 3 + 1])
        xs[i + 1] = ns[i + 1] = np.float32(qx * ca - qy * sa)
        ys[i + 1] = nys[i + 1] = np.float32(qx * sa + qy * ca)
    mxx, mnx, mxy, mny = _lmax(xs), _lmin(ns), _lmax(ys), _lmin(nys)
    bw = np.float32(np.float64(np.float32(mxx - mnx)) * mult)
    bh = np.float32(np.float64(np.float32(mxy - mny)) * mult)
    rng = np.float64(lm_range)
    scale = np.zeros(9, np.float32)
    scale[0], scale[4], scale[8] = np.float32(np.float64(bw) / rng), np.float32(np.float64(bh) / rng), F1
    midx = np.float32((np.float64(mxx) + np.float64(mnx)) / 2.0)
    midy = np.float32((np.float64(mxy) + np.float64(mny)) / 2.0)
    cm, sm = math.cos(-np.float64(alpha)), math.sin(-np.float64(alpha))
    rmx = np.float32(np.float64(midx) * cm - np.float64(midy) * sm)
    rmy = np.float32(np.float64(midx) * sm + np.float64(midy) * cm)
    rotation = np.zeros(9, np.float32)
    rotation[0], rotation[1] = np.float32(cm), np.float32(-sm)
    rotation[2] = np.float32((np.float64(rmx) / rng) * 2.0 - 1.0)
    rotation[3], rotation[4] = np.float32(sm), np.float32(cm)
    rotation[5] = np.float32((np.float64(rmy) / rng) * 2.0 - 1.0)
    rotation[8] = F1
    ow, oh, iw, ih = np.float64(out_w), np.float64(out_h), np.float64(in_w), np.float64(in_h)
    to_rel = np.zeros(9, np.float32)
    to_rel[0], to_rel[2] = np.float32(2.0 / (ow - 1.0)), np.float32(-1.0)
    to_rel[4], to_rel[5], to_rel[8] = np.float32(2.0 / (oh - 1.0)), np.float32(-1.0), F1
    to_abs = np.zeros(9, np.float32)
    to_abs[0] = to_abs[2] = np.float32((iw - 1.0) / 2.0)
    to_abs[4] = to_abs[5] = np.float32((ih - 1.0) / 2.0)
    to_abs[8] = F1
    a = np.empty(9, np.float32)
    b = np.empty(9, np.float32)
    _matmul(to_abs, rotation, 3, a)
    _matmul(a, scale, 3, b)
    _matmul(b, to_rel, 3, a)
    out[:] = F0
    out[0], out[1], out[3] = a[0], a[1], a[2]
    out[4], out[5], out[7] = a[3], a[4], a[5]
    out[8], out[9], out[10] = a[6], a[7], a[8]
    out[15] = F1
