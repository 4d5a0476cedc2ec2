"""The scalar helpers printed expressions call (`_max`, `_round_away`, ...), one module shared by
every generated kernel module (which imports them: printer.PRELUDE).

They used to be pasted into each kernel module, so every warm start created ~10 Numba
dispatchers per kernel (1,435 for an int8 EfficientNet-B0: 0.1-0.2 s of its 1 s warm start);
imported, they exist once per process, and Numba compiles only those a kernel calls. Their text
is part of each kernel's cache key all the same (modcache hashes the helper modules a kernel
imports), so editing one recompiles the kernels instead of loading stale machine code.
"""

import numba
import numpy as np


@numba.njit(inline="always")
def _max(a, b):
    return a if (a > b or a != a) else b


@numba.njit(inline="always")
def _min(a, b):
    return a if (a < b or a != a) else b


@numba.njit(inline="always")
def _tdiv(a, b):
    q = a // b
    return q + 1 if (q < 0 and q * b != a) else q


@numba.njit(inline="always")
def _floormod(a, b):
    r = np.fmod(a, b)
    return r + b if (r != 0 and ((r < 0) != (b < 0))) else r


@numba.njit(inline="always")
def _ipow_wrap(a, b):
    # a ** b (b >= 0) by squaring, wrapping around in a's type (ops/expr.py power_wrap)
    r = a - a + 1
    base = a
    while b > 0:
        if b & 1:
            r = r * base
        base = base * base
        b >>= 1
    return r


@numba.njit(inline="always")
def _ipow(a, b, lo, hi):
    # exact integer power (b >= 0) when it fits [lo, hi], else lo (ops/expr.py)
    if a == 0 or a == 1:
        return lo - lo + (a if b > 0 else 1)
    if a == -1:
        return lo - lo + (1 if b % 2 == 0 else -1)
    r = np.int64(1)
    base = np.int64(a)
    for _ in range(b):
        r = r * base
        if r > hi or r < lo:
            return lo
    return lo - lo + r


@numba.njit(inline="always")
def _rshift(a, b, hi):
    # a >> b with the count clamped to [0, hi] (ops/expr.py rshift)
    c = b if b > 0 else b - b
    c = c if c < hi else hi
    return a >> c


@numba.njit(inline="always")
def _round_away(x):
    # C's roundf: ties away from zero; NaN and +-inf pass through (ops/expr.py round_away)
    m = abs(x)
    w = np.floor(m)
    r = w + np.float32(1.0) if m - w >= np.float32(0.5) else w
    return r if x >= np.float32(0.0) else -r


@numba.njit(error_model="numpy", nogil=True, fastmath=False)
def _quant_steps(x, lo, inv):
    # roundf((x - lo) * inv). fastmath=False must be explicit (a callee without it inherits the
    # kernel's flags) and the function is not inlined by Numba, so its instructions carry no
    # fast-math flags even after LLVM inlines it: with 'reassoc'/'contract' LLVM turns the product
    # into an FMA of x * inv - lo * inv, and a last-bit change flips the rounding by a whole step
    p = (x - lo) * inv
    m = abs(p)
    w = np.floor(m)
    r = w + np.float32(1.0) if m - w >= np.float32(0.5) else w
    return r if p >= np.float32(0.0) else -r
