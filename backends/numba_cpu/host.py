"""What the generators need to know about the target and the kernel helper modules, without
importing Numba.

A first result runs on the reference kernels (runtime/tiers.py), so planning a model, printing
its kernels and hashing them into cache keys must not pay for `import numba` (0.11 s, a quarter of
a warm start): the generators import this module, never the helper modules their kernels import
(simd.py, qsimd.py, qdot.py, ...). Those helpers take their vector widths, host features and data
layouts from here, so the two sides agree by construction.

The target's CPU features are Numba's: NUMBA_CPU_NAME / NUMBA_CPU_FEATURES from the environment
(as numba.config reads them), else the host's as LLVM reports them.
"""

from __future__ import annotations

import functools
import os

import numpy as np

#: the helper modules generated kernels import (`emit.helper_import`), by name
SIMD = "tflite_jit.backends.numba_cpu.simd"
QSIMD = "tflite_jit.backends.numba_cpu.qsimd"
QDOT = "tflite_jit.backends.numba_cpu.qdot"
QLUT = "tflite_jit.backends.numba_cpu.qlut"
QMULVEC = "tflite_jit.backends.numba_cpu.qmulvec"
HYBRIDQ = "tflite_jit.backends.numba_cpu.hybridq"
MPTRANSFORM = "tflite_jit.backends.numba_cpu.mptransform"


@functools.cache
def _features() -> tuple[str, ...]:
    feats = os.environ.get("NUMBA_CPU_FEATURES")
    if feats is None and os.environ.get("NUMBA_CPU_NAME", "").lower() == "generic":
        feats = ""
    if feats is None:
        feats = _host_features_cached()
    return tuple(feats.split(","))


def _cpu_identity() -> str | None:
    """The first CPU's vendor, family, model, stepping and flags from /proc/cpuinfo (None off
    Linux): what LLVM's host feature detection reads too (CPUID)."""
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read(1 << 16).split("\n\n", 1)[0]
    except OSError:
        return None
    keys = ("vendor_id", "cpu family", "model", "model name", "stepping", "flags", "Features", "CPU part")
    kept = [ln for ln in first.splitlines() if ln.split(":", 1)[0].strip() in keys]
    return "\n".join(kept) or None


def _host_features_cached() -> str:
    """LLVM's host CPU features, remembered in the compile cache per CPU identity and llvmlite
    version: asking LLVM means loading llvmlite's shared library (16-20 ms), a tenth of a warm
    start's first result. A cache directory copied to another machine (a container image) misses,
    since its CPU's identity differs."""
    import hashlib

    from tflite_jit.backends.numba_cpu import modcache

    ident = _cpu_identity()
    path = None
    if ident is not None:
        try:
            key = hashlib.sha256(f"{ident}\0{modcache.dist_version('llvmlite')}".encode()).hexdigest()[:24]
            path = modcache.cache_dir() / f"host-{key}.txt"
            return path.read_text().strip()
        except Exception:  # noqa: BLE001 - no entry yet (or unreadable): ask LLVM
            pass
    import llvmlite.binding as ll

    feats = ll.get_host_cpu_features().flatten()
    if path is not None:
        try:
            modcache.write_text_atomic(path, feats + "\n")
        except OSError:
            pass
    return feats


def host_features() -> list[str]:
    """The target's LLVM CPU features (+avx512f, ...), as Numba compiles for them."""
    return list(_features())


AVX512 = "+avx512f" in _features()
#: float32 lanes per vector and vector registers of the target (zmm x 32 or ymm x 16)
VW = 16 if AVX512 else 8
NREGS = 32 if AVX512 else 16
#: int8 dot products of AVX512-VNNI (qsimd.py's vdot, generators/qconv.py's int_gemm)
HAS_VNNI = VW == 16 and "+avx512vnni" in _features() and "+avx512bw" in _features()
#: vpmaddwd (qsimd.pmaddwd) and its int32 lanes per instruction
HAS_PMADDWD = "+avx2" in _features()
PMADDWD_LANES = 16 if VW == 16 and "+avx512bw" in _features() else 8
#: int8 products as int16 pairs (vpmaddwd on x86) where VNNI is missing: qdot's tiles, qconv.int_gemm
PAIRS = not HAS_VNNI
#: the 64-byte table lookup of qlut.py (vpermi2b)
HAS_VBMI = all(f in _features() for f in ("+avx512f", "+avx512bw", "+avx512vbmi"))

#: printed into GEMM kernel headers with VW (the cache key covers the intrinsics' text itself)
SIMD_VERSION = "1"

#: rows of qsimd's per-channel parameter table QP: bias, multiplier, left shift, right shift, h+, h-
QROWS = 6
#: bytes per qlut.lut64 step
LUT_W = 64
#: lanes per qmulvec.qmul16 step
MUL_W = 16
#: qdot: columns per step (int32 lanes) and input bytes per lane per step
LANES, GROUP = 16, 4
#: output pixels per im2col block of qdot.hybrid_conv_i8 (their patches stay in L1/L2)
PIX_BLOCK = 64
#: serial multiply-adds per second assumed for the threading decision (2 ops each; measured
#: ~300 int8 MAC/ns on a 3x3 layer here)
SERIAL_OPS = 300e9


def pack_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """qdot's weight layout: w [N, K] int8 -> (packed [N/16, K/4, 16, 4] int8 flat, column sums
    int32 [N], k4, nb), N and K padded with zero weights (padding contributes nothing to any sum).
    Where `PAIRS`: [N/16, K/2, 16, 2] int16 instead (K still padded to 4), as its bytes."""
    n, k = w.shape
    nb, k4 = -(-n // LANES), -(-k // GROUP)
    kb = 2 if PAIRS else GROUP
    wp = np.zeros((nb * LANES, k4 * GROUP), np.int16 if PAIRS else np.int8)
    wp[:n, :k] = w
    packed = wp.reshape(nb, LANES, k4 * GROUP // kb, kb).transpose(0, 2, 1, 3)
    return (np.ascontiguousarray(packed).reshape(-1).view(np.int8), w.astype(np.int64).sum(axis=1).astype(np.int32),
            k4, nb)


def byte_table(table: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """qlut.lut64's table: the 256 output bytes indexed by the input's raw byte, table[x - qmin]
    for x of `dtype` (int8: byte b holds x = b - 256 for b >= 128, so the table is rotated by 128)."""
    t = np.asarray(table).astype(np.dtype(dtype)).view(np.uint8)
    assert t.shape == (256,)
    return np.ascontiguousarray(np.roll(t, -128) if np.dtype(dtype) == np.dtype(np.int8) else t)


def split_multiplier(m: int) -> tuple[int, int, int]:
    """qmulvec.qmul16's multiplier: (a, c, d) with m = a * 2**16 + c * 2**8 + d, 0 <= c, d < 256."""
    assert 0 <= m < 2**31
    return m >> 16, (m >> 8) & 255, m & 255
