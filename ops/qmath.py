"""LiteRT's integer arithmetic, vectorised in NumPy: the one place quantized ops get their numbers.

Every quantized kernel in LiteRT reduces to a handful of fixed-point primitives (gemmlowp's
SRDHM and rounding shifts, the multiplier encoding of quantization_util.cc, lookup tables built
with C libm). Getting LiteRT's outputs *to the bit* means copying the primitives' rounding
exactly, including where two kernels of the same op round differently (QUANTIZATION.md §2):

* `mbqm`  -- MultiplyByQuantizedMultiplier, "double rounding": SRDHM (round half up) then a
  rounding divide by a power of two (round half away from zero). The reference kernels.
* `rhu2`  -- the optimized x86 kernels' variant (ruy, NEON-on-SSE): the second rounding is half
  up as well. Differs from `mbqm` only on negative exact ties.
* `mbqm64` -- the int64-accumulator overload (16x8 kernels): a 16-bit reduced multiplier.

All functions take and return int64 arrays (so intermediate products cannot overflow) and
accept per-channel multipliers as arrays broadcast against `x`. Integer-valued inputs of any
integer dtype are fine. The functions are plain NumPy so backends can call them at plan time
(tables, multipliers) and the reference kernels at run time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from collections.abc import Callable
from functools import cache, lru_cache

import numpy as np

from tflite_jit.ops.base import OpError

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
I64 = np.int64

DTYPE_RANGE = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255),
               np.dtype(np.int16): (-32768, 32767), np.dtype(np.int32): (INT32_MIN, INT32_MAX)}


def qrange(dtype: np.dtype) -> tuple[int, int]:
    return DTYPE_RANGE[np.dtype(dtype)]


# ---- multipliers (quantization_util.cc) ----------------------------------------------------------

def quantize_multiplier(m: float) -> tuple[int, int]:
    """A real multiplier m >= 0 (a Python float = C double) as (M, shift): m ~ M * 2**(shift - 31),
    M in [2**30, 2**31). Rounds half away from zero like std::round; tiny m flush to zero."""
    if m == 0.0:
        return 0, 0
    q, e = math.frexp(m)
    big = q * (1 << 31)
    M = int(math.floor(big + 0.5)) if big >= 0 else -int(math.floor(-big + 0.5))
    if M == 1 << 31:
        M //= 2
        e += 1
    if e < -31:
        return 0, 0
    return M, e


def quantize_multipliers(ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """quantize_multiplier of every element of an array of doubles (>= 0), as int64 arrays: the
    same arithmetic vectorised (frexp, the product by 2**31 and floor(x + 0.5) are exact in
    double, as in the scalar form), for per-channel weights (a conv's thousand channels)."""
    m = np.asarray(ms, np.float64).reshape(-1)
    q, e = np.frexp(m)
    big = np.floor(q * float(1 << 31) + 0.5).astype(I64)
    e = e.astype(I64)
    top = big == (1 << 31)
    big = np.where(top, big // 2, big)
    e = np.where(top, e + 1, e)
    zero = (m == 0.0) | (e < -31)
    return np.where(zero, 0, big).astype(I64), np.where(zero, 0, e).astype(I64)


# ---- gemmlowp primitives (fixedpoint.h) ----------------------------------------------------------

def wrap32(x: np.ndarray) -> np.ndarray:
    """C int32 wraparound of an int64 value (what `x * (1 << ls)` does in the kernels)."""
    return ((np.asarray(x, I64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def srdhm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul: floor((a*b + 2**30) / 2**31), INT32_MIN**2 saturating."""
    a = np.asarray(a, I64)
    b = np.asarray(b, I64)
    out = (a * b + (1 << 30)) >> 31
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, out)


def rdbpot(x: np.ndarray, e: np.ndarray | int) -> np.ndarray:
    """RoundingDivideByPOT: x / 2**e rounded half away from zero (0 <= e <= 31)."""
    x = np.asarray(x, I64)
    e = np.asarray(e, I64)
    mask = (np.int64(1) << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (x < 0)
    return (x >> e) + (rem > thr)


def saturating_shl(x: np.ndarray, k: int) -> np.ndarray:
    """Saturating left shift of int32 values by k bits."""
    x = np.asarray(x, I64)
    return np.clip(x << k, INT32_MIN, INT32_MAX)


def mbqm(x: np.ndarray, M: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """MultiplyByQuantizedMultiplier, double rounding (TFLITE_SINGLE_ROUNDING=0, the pip build)."""
    shift = np.asarray(shift, I64)
    ls = np.maximum(shift, 0)
    rs = np.maximum(-shift, 0)
    return rdbpot(srdhm(wrap32(np.asarray(x, I64) << ls), M), rs)


def rhu2(x: np.ndarray, M: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """The optimized kernels' requantize: SRDHM, then a rounding right shift that adds 2**(rs-1)
    (round half up). Equal to `mbqm` except on negative exact ties (one more)."""
    shift = np.asarray(shift, I64)
    ls = np.maximum(shift, 0)
    rs = np.maximum(-shift, 0)
    t = srdhm(wrap32(np.asarray(x, I64) << ls), M)
    half = np.where(rs > 0, np.int64(1) << np.maximum(rs - 1, 0), 0)
    return (t + half) >> rs


def mbqm64(x: np.ndarray, M: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """The int64-input MultiplyByQuantizedMultiplier (16x8 kernels with int64 bias): the
    multiplier is reduced to 16 bits and the product rounded half up by 2**(15 - shift)."""
    M = np.asarray(M, I64)
    shift = np.asarray(shift, I64)
    m16 = np.where(M < 0x7FFF0000, (M + (1 << 15)) >> 16, 0x7FFF)
    t = 15 - shift
    x = np.asarray(x, I64)
    return (x * m16 + (np.int64(1) << (t - 1))) >> t


# ---- float rounding as C does it -------------------------------------------------------------------

def round_half_away(x: np.ndarray) -> np.ndarray:
    """C round()/roundf(): half away from zero (NumPy's round is half to even). Computed as
    floor(|x|) + (frac >= 0.5), both exact, because |x| + 0.5 itself rounds (0.49999997f + 0.5f
    is 1.0f in float32)."""
    x = np.asarray(x)
    a = np.abs(x)
    f = np.floor(a)
    with np.errstate(invalid="ignore"):  # inf - inf: the sign * f term already gives +-inf
        return (np.sign(x) * (f + (a - f >= 0.5))).astype(x.dtype)


def activation_range(act: str, scale: float, zero_point: int, dtype: np.dtype) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: the clamp bounds of a fused activation, computed with a
    float32 division and roundf, then clipped to the type's range. Memoized: a quantized model
    asks for the same few (activation, scale, zero point) hundreds of times while it is planned
    (NASNet int8: 485 calls, ~10 ms of its first result)."""
    return _activation_range(act, float(np.float32(scale)), int(zero_point), np.dtype(dtype))


@lru_cache(maxsize=4096)
def _activation_range(act: str, scale: float, zero_point: int, dtype: np.dtype) -> tuple[int, int]:
    lo, hi = qrange(dtype)
    s = np.float32(scale)

    def q(f: float) -> int:
        # LiteRT's Quantize (kernel_util.cc) refuses a bound whose f / scale leaves int32: a
        # RELU6 on an output scale of ~1e-9 (TF's 16x8 converter writes such scales) fails to
        # prepare there, so it does here, with LiteRT's words
        t = round_half_away(np.float32(f) / s)
        if not (np.float32(-2.0**31) <= t <= np.float32(2.0**31)) or not np.isfinite(t):
            raise OpError(f"no_integer_overflow_from_quantization was not true: the fused {act}'s bound "
                          f"{f} / output scale {float(s):.3g} = {float(t):.4g} does not fit int32 (LiteRT "
                          "refuses this node too; requantize the model with a larger output scale)")
        return int(zero_point) + int(t)

    if act == "RELU":
        return max(lo, q(0.0)), hi
    if act == "RELU6":
        return max(lo, q(0.0)), min(hi, q(6.0))
    if act == "RELU_N1_TO_1":
        return max(lo, q(-1.0)), min(hi, q(1.0))
    if act == "NONE":
        return lo, hi
    raise ValueError(f"fused activation {act} is not supported on quantized tensors")


# ---- lookup tables (LUTPopulateInt8 in kernels/internal/common.h) ---------------------------------

@cache
def _libm() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    for name in ("expf", "tanhf", "erfcf", "expm1f", "logf", "sqrtf"):
        fn = getattr(lib, name)
        fn.restype = ctypes.c_float
        fn.argtypes = [ctypes.c_float]
    return lib


def libm_f32(name: str) -> Callable[[float], np.float32]:
    """A float32 function of C libm (LiteRT builds its tables with these; NumPy's own float32
    transcendental functions may differ by an ulp, which moves table entries)."""
    fn = getattr(_libm(), name)
    return lambda x: np.float32(fn(float(x)))


def lut8(f: Callable[[np.float32], np.float32], in_scale: float, in_zp: int, out_scale: float,
         out_zp: int, dtype: np.dtype) -> np.ndarray:
    """A 256-entry table indexed by (q - qmin): lut[q] = clamp(roundf(f(si*(q-zi)) * (1/so)) + zo),
    every step in float32 as LiteRT's LUTPopulate<int8/uint8> does. Only `f` is applied element
    by element (it is C libm's, for LiteRT's last bit); the rest is array arithmetic, the same
    float32 operations in the same order (an int8 EfficientNet-B0 builds 65 tables at every
    start: 0.2 s as a scalar loop)."""
    lo, hi = qrange(dtype)
    si = np.float32(in_scale)
    inv = np.float32(np.float32(1.0) / np.float32(out_scale))
    x = si * (np.arange(lo, hi + 1, dtype=I64) - int(in_zp)).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # inf clamps below, as in LiteRT's float math
        y = np.array([f(v) for v in x], np.float32) * inv
        y = np.where(np.isfinite(y), np.clip(y, np.float32(-2.0**31), np.float32(2.0**31 - 128)),
                     np.sign(y) * np.float32(2.0**31)).astype(np.float32)
    if np.isnan(y).any():
        raise ValueError(f"lut8: {getattr(f, '__name__', f)} is NaN inside the input range")
    out = round_half_away(y).astype(I64) + int(out_zp)
    return np.clip(out, lo, hi).astype(dtype)


# ---- int16 tables (LUTPopulate<int16_t>, float32 arithmetic) -------------------------------------------------

def lut16(f, si: float, zi: int, so: float, zo: int) -> np.ndarray:
    """LiteRT's 513-entry int16 table: 512 samples of f over the input range, each corrected by
    half the midpoint interpolation error, plus the end point; every step in float32 with roundf
    (half away from zero). `f` maps a float32 to a float32."""
    def rnd(v: np.float32) -> np.float32:
        if not math.isfinite(float(v)):  # roundf keeps inf and NaN (exp overflowing float32)
            return np.float32(v)
        return np.float32(math.copysign(math.floor(abs(float(v)) + 0.5), float(v)))

    def to16(v: np.float32) -> int:
        """std::min<float>(std::max<float>(v, -32768), 32767) then the cast: NaN (inf - inf in
        the bias) passes both comparisons, and x86's conversion gives 0x80000000, whose low
        16 bits are 0."""
        v = float(v)
        return 0 if math.isnan(v) else int(min(max(v, -32768.0), 32767.0))

    in_min = np.float32(np.float32(si) * np.float32(-32768 - zi))
    in_max = np.float32(np.float32(si) * np.float32(32767 - zi))
    out_min = np.float32(np.float32(so) * np.float32(-32768 - zo))
    out_max = np.float32(np.float32(so) * np.float32(32767 - zo))
    step = np.float32((in_max - in_min) / np.float32(512))
    half = np.float32(step / np.float32(2))
    inv = np.float32(np.float32(65536) / np.float32(out_max - out_min))
    lut = np.empty(513, I64)
    with np.errstate(over="ignore", invalid="ignore"):  # exp past float32: inf, as in C
        for i in range(512):
            x0 = np.float32(in_min + np.float32(np.float32(i) * step))
            v = f(x0)
            vm = f(np.float32(x0 + half))
            vn = f(np.float32(in_min + np.float32(np.float32(i + 1) * step)))
            sample = rnd(np.float32(v * inv))
            interp = rnd(np.float32(np.float32(np.float32(vn * inv) + rnd(np.float32(v * inv))) / np.float32(2)))
            mid = rnd(np.float32(vm * inv))
            bias = rnd(np.float32(np.float32(interp - mid) / np.float32(2)))
            lut[i] = to16(np.float32(sample - bias))
        lut[512] = to16(rnd(np.float32(f(in_max) * inv)))
    return lut


def lut16_lookup(x: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Interpolated lookup: index 256 + (x >> 7), 7-bit linear interpolation rounded half up."""
    v = x.astype(I64)
    idx = 256 + (v >> 7)
    base = lut[idx]
    slope = wrap32(lut[idx + 1] - base)
    slope = ((slope + 32768) & 0xFFFF) - 32768  # stored as int16
    delta = (slope * (v & 127) + 64) >> 7
    return (((base + delta) + 32768) & 0xFFFF) - 32768
