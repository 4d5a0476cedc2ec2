"""LiteRT's int16 LOGISTIC and TANH, as a function of the input value: both ops are evaluated
once for all 65536 int16 inputs at plan time (`logistic16_table`, `tanh16_table`), so a kernel
is a gather (ops/qelementwise.py attaches them as table ops).

LiteRT (activations.cc) requires zero points 0 and an output scale of 2**-15, and has two paths:

* General input scale (the usual one: TF's 16x8 converter gives max|x| / 32767): the input is
  rescaled to units of 1/(3 * 4096) by an integer multiplier M < 32768 and a rounding right
  shift (`input_multiplier`, `input_left_shift`, found by doubling s * 3 * 4096 while it is at
  most 32767/2), then a 256-entry table of sigmoid(i / 24) in 0.16 fixed point is linearly
  interpolated (9 fractional bits for LOGISTIC, 8 for TANH, which uses
  tanh(x) = 2 sigmoid(2x) - 1). The table is not a rounding of the formula (44 entries differ
  by one from round(65536 sigmoid(i/24))): `SIGMOID_U16` was measured from LiteRT itself
  (tools/measure_int16_sigmoid_table.py; tests/ops/test_qsigmoid16.py re-measures it).
* Power-of-two input scale 2**-12 (LOGISTIC) or 2**-12 / 2**-11 (TANH): the optimized kernel
  runs gemmlowp's fixed-point logistic / tanh on int16 Q3.12 (`_Fx16`). Its x86 SIMD
  primitives round differently from the scalar ones (mulhrs rounds half up, avg_epu16 half
  sums), but over all 65536 inputs both give the same logistic and tanh, so one table serves
  LiteRT's vector blocks and its scalar tail (checked against LiteRT in the tests).
"""

from __future__ import annotations

import numpy as np

#: sigmoid(i / 24) in unsigned 0.16 fixed point as LiteRT's int16 kernels use it, measured from
#: LiteRT's TANH (an exact read-out: interpolation weight 0 gives the entry itself).
SIGMOID_U16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
], dtype=np.int64)

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int64)
_SIGMOID_U16_32 = SIGMOID_U16.astype(np.int32)


def input_rescale(scale: float, op: str) -> tuple[int, int]:
    """LiteRT's (input_multiplier, input_left_shift); multiplier 0 means the power-of-two path
    (the shift is then 0 for LOGISTIC, 0 or 1 for TANH)."""
    s = float(np.float32(scale))
    m, e = np.frexp(s)
    if m == 0.5:
        shift = 12 + int(e) - 1  # (15 - 3 integer bits) + log2(scale)
        if shift == 0 or (op == "TANH" and shift == 1):
            return 0, shift
    mult, shift = s * 4096.0 * 3.0, 0
    while mult <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        mult *= 2.0
    return int(mult), shift


def _interpolated(x: np.ndarray, mult: int, shift: int, op: str) -> np.ndarray:
    """The general path (reference_integer_ops::Logistic / Tanh for int16), in int32 as LiteRT
    computes it: int16 inputs times a multiplier below 2**15 and every later step stay inside
    int32, and NumPy's int32 wraps where C's would (a whole table in ~1 ms, half the int64 time:
    warm starts build one per int16 LOGISTIC / TANH)."""
    rnd = (1 << (shift - 1)) if shift > 0 else 0
    d = (x.astype(np.int32) * np.int32(mult) + np.int32(rnd)) >> np.int32(shift)
    a = np.abs(d)
    frac = 9 if op == "LOGISTIC" else 8
    uh, ut = a >> frac, a & ((1 << frac) - 1)
    i = np.minimum(uh, 254)
    ua, ub = _SIGMOID_U16_32[i], _SIGMOID_U16_32[i + 1]
    r = (ua << frac) + ut * (ub - ua)
    if op == "LOGISTIC":
        r = np.where(uh >= 255, 0x7FFF << 10, r)
        r = np.where(d >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1) >> 10
    else:
        r = np.where(uh >= 255, 0xFFFF << 8, r)
        r = np.where(d >= 0, r - (1 << 23) + (1 << 7), -r + (1 << 23) + (1 << 7) - 1) >> 8
    return ((r + 32768) & 0xFFFF) - 32768  # the int16 store


# ---- gemmlowp's int16 fixed point (the power-of-two path) -----------------------------------------

class _Fx16:
    """gemmlowp's int16 fixed-point primitives (the scalar flavour) on int64 arrays holding
    int16 values."""

    @staticmethod
    def wrap(x: np.ndarray) -> np.ndarray:
        return ((x + 32768) & 0xFFFF) - 32768

    def add(self, a, b):
        return self.wrap(a + b)

    def sub(self, a, b):
        return self.wrap(a - b)

    def neg(self, a):
        return self.wrap(-a)

    @staticmethod
    def sat_add(a, b):
        return np.clip(a + b, -32768, 32767)

    def mul(self, a, b):
        """SaturatingRoundingDoublingHighMul."""
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        p = a * b
        nudge = np.where(p >= 0, 1 << 14, 1 - (1 << 14))
        q = p + nudge
        r = np.where(q >= 0, q >> 15, -((-q) >> 15))  # C division truncates toward zero
        return self.wrap(np.where((a == -32768) & (b == -32768), 32767, r))

    def half_sum(self, a, b):
        s = a + b
        q = s + np.where(s >= 0, 1, -1)
        return self.wrap(np.where(q >= 0, q >> 1, -((-q) >> 1)))

    @staticmethod
    def rdbpot(x, e: int):
        mask = (1 << e) - 1
        thr = (mask >> 1) + (x < 0)
        return (x >> e) + ((x & mask) > thr)

    def pot(self, x, e: int):
        """SaturatingRoundingMultiplyByPOT<e>."""
        if e > 0:
            thr = (1 << (15 - e)) - 1
            return np.where(x > thr, 32767, np.where(x < -thr, -32768, self.wrap(x << e)))
        return self.rdbpot(x, -e) if e < 0 else x

    @staticmethod
    def const(raw32: int) -> int:
        """RescaleConstantInitializer: an int32 Q constant rounded to 16 bits."""
        return int(_Fx16.rdbpot(np.int64(raw32), 16))

    def exp_quarter(self, a):
        """exp on [-1/4, 0) for F0 input."""
        c = self.const(1895147668)
        third = self.const(715827883)
        x = self.add(a, 1 << 12)
        x2 = self.mul(x, x)
        x3 = self.mul(x2, x)
        x4 = self.mul(x2, x2)
        t = self.pot(self.add(self.mul(self.add(self.pot(x4, -2), x3), third), x2), -1)
        return self.sat_add(c, self.mul(c, self.add(x, t)))

    def exp_neg(self, a, ibits: int):
        """exp_on_negative_values for an input with `ibits` integer bits."""
        fbits = 15 - ibits
        quarter = 1 << (fbits - 2)
        amq = self.sub(a & (quarter - 1), quarter)
        result = self.exp_quarter(self.pot(amq, ibits))
        rem = self.sub(amq, a)
        for e, m in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                     (2, 39332535), (3, 720401), (4, 242)):
            if ibits > e:
                result = np.where(rem & (1 << (fbits + e)), self.mul(result, self.const(m)), result)
        if ibits > 5:  # exp(x) for x < -32 is 0 (int32 constant -32.0, rescaled to 16 bits)
            result = np.where(a < self.const(-(1 << (36 - ibits))), 0, result)
        return np.where(a == 0, 32767, result)

    def _newton(self, a):
        hd = self.half_sum(a, 32767)
        x = self.add(self.const(1515870810), self.mul(hd, self.const(-1010580540)))
        for _ in range(3):
            omh = self.sub(1 << 13, self.mul(hd, x))
            x = self.add(x, self.pot(self.mul(x, omh), 2))
        return x  # Q2.13

    def logistic(self, a):
        pos, zero = a > 0, a == 0
        mag = np.where(pos, a, self.neg(a))
        rp = self.pot(self._newton(self.exp_neg(self.neg(mag), 3)), 1)
        return np.where(zero, self.const(1 << 30), np.where(pos, rp, self.sub(32767, rp)))

    def tanh(self, a, ibits: int = 3):
        """gemmlowp's tanh of FixedPoint<int16, ibits> (exp of 2x: one more integer bit)."""
        negm, zero = a < 0, a == 0
        n = np.where(negm, a, self.neg(a))
        t = self.pot(self.sub(self._newton(self.exp_neg(n, ibits + 1)), 1 << 13), 2)
        return np.where(zero, 0, np.where(negm, self.neg(t), t))


def int16_table(op: str, scale: float) -> np.ndarray:
    """LiteRT's int16 `op` (LOGISTIC or TANH) for input scale `scale`: the output for every
    input value, indexed by input + 32768."""
    mult, shift = input_rescale(scale, op)
    if mult:
        return _interpolated(ALL_INT16, mult, shift, op).astype(np.int16)
    fx = _Fx16()
    if op == "LOGISTIC":
        return fx.logistic(ALL_INT16).astype(np.int16)
    return fx.tanh(fx.pot(ALL_INT16, 1) if shift == 1 else ALL_INT16).astype(np.int16)


def gemmlowp_logistic16_table() -> np.ndarray:
    """gemmlowp's scalar int16 logistic of a Q3.12 input (LiteRT's tensor_utils::ApplySigmoid, the
    integer LSTM's gates) for every input, indexed by input + 32768: the power-of-two path of
    `int16_table('LOGISTIC', 2**-12)`."""
    return _Fx16().logistic(ALL_INT16).astype(np.int16)


def gemmlowp_tanh16_table(integer_bits: int) -> np.ndarray:
    """gemmlowp's scalar int16 tanh of FixedPoint<int16, integer_bits> (LiteRT's
    tensor_utils::ApplyTanh, 0 to 6 integer bits) for every input, indexed by input + 32768."""
    if not 0 <= integer_bits <= 6:
        raise ValueError(f"gemmlowp int16 tanh takes 0 to 6 integer bits, not {integer_bits}")
    return _Fx16().tanh(ALL_INT16, integer_bits).astype(np.int16)
