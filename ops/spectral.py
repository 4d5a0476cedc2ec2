"""Complex numbers and the FFT: RFFT2D, REAL, IMAG, COMPLEX_ABS.

LiteRT facts these definitions follow (probed on ai_edge_litert, builtin kernels):
* RFFT2D: float32 input of rank >= 2 and an int32 [2] fft_length (fft_height, fft_width), each a
  power of two (LiteRT's fft2d library only does those); the output is complex64 with the input's
  leading dims and [fft_height, fft_width / 2 + 1], the 2-D real FFT of each innermost slice
  cropped or zero-padded to fft_length (computed in double, as LiteRT does, then rounded).
  fft_length may be a run-time tensor (the output is then sized when the op runs).
  fft_width == 1 passes LiteRT's power-of-two check but its fft2d routine returns garbage for
  it (and for 1x1); we reject a width below 2.
  A slice with an inf or NaN gives inf/NaN spread over its spectrum in a pattern that depends on
  the FFT algorithm's butterflies (LiteRT's Ooura fft2d vs NumPy's pocketfft); we do not try to
  reproduce which entries become NaN rather than inf. Finite inputs agree to float rounding.
* REAL / IMAG / COMPLEX_ABS: complex64 -> float32, complex128 -> float64; any other input type,
  or an output of the other precision, fails at prepare. COMPLEX_ABS is the hypotenuse (an
  infinite part gives inf).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tflite_jit.ir.validate import MAX_TENSOR_BYTES
from tflite_jit.ops.base import Cost, InferCtx, OpError, PatternKind, ShapeDtype
from tflite_jit.ops.common import C64, F32, F64, I32, define, elementwise_cost

_REAL_OF = {C64: F32, np.dtype(np.complex128): F64}


# ---- RFFT2D --------------------------------------------------------------------------------------

def _fft_lengths(value: Any) -> tuple[int, int]:
    v = np.asarray(value).reshape(-1)
    fh, fw = int(v[0]), int(v[1])
    for what, n in (("fft_height", fh), ("fft_width", fw)):
        if n <= 0 or n & (n - 1):
            raise OpError(f"RFFT2D: {what} is {n}; fft_length must hold powers of two")
    if fw < 2:  # LiteRT accepts it but its fft2d routine returns garbage for a width of 1
        raise OpError("RFFT2D: fft_width is 1; it must be at least 2 (a power of two)")
    return fh, fw


def _rfft2d_infer(ctx: InferCtx) -> list[ShapeDtype]:
    if len(ctx.shapes) != 2 or any(s is None for s in ctx.shapes):
        raise OpError(f"RFFT2D takes two inputs (input, fft_length), got {len(ctx.shapes)}")
    x, f = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
    if len(x) < 2:
        raise OpError(f"RFFT2D: input '{ctx.name(0)}' has shape {list(x)}; it must have rank >= 2")
    if np.dtype(ctx.dtypes[0]) != F32:
        raise OpError(f"RFFT2D: input '{ctx.name(0)}' is {np.dtype(ctx.dtypes[0]).name}; it must be "
                      "float32")
    if f != (2,):
        raise OpError(f"RFFT2D: fft_length '{ctx.name(1)}' has shape {list(f)}; it must be [2] "
                      "(fft_height, fft_width)")
    if np.dtype(ctx.dtypes[1]) != I32:
        raise OpError(f"RFFT2D: fft_length '{ctx.name(1)}' is {np.dtype(ctx.dtypes[1]).name}; it must "
                      "be int32")
    fh, fw = _fft_lengths(ctx.value(1, "fft_length"))
    return [(x[:-2] + (fh, fw // 2 + 1), C64)]


def _rfft2d_reference(inputs: Sequence[np.ndarray | None], attrs: Any) -> list[np.ndarray]:
    x = np.asarray(inputs[0])
    fh, fw = _fft_lengths(inputs[1])
    shape = x.shape[:-2] + (fh, fw // 2 + 1)
    nbytes = 16 * int(np.prod(shape, dtype=object))  # complex128 while computing
    if nbytes > MAX_TENSOR_BYTES:
        raise OpError(f"RFFT2D: fft_length {[fh, fw]} would make an output of shape {list(shape)}, over "
                      f"the {MAX_TENSOR_BYTES}-byte tensor limit")
    h, w = min(x.shape[-2], fh), min(x.shape[-1], fw)
    padded = np.zeros(x.shape[:-2] + (fh, fw), np.float64)
    padded[..., :h, :w] = x[..., :h, :w]
    return [np.fft.rfft2(padded).astype(C64)]


def _rfft2d_cost(in_shapes: list, out_shapes: list, attrs: Any) -> Cost:
    n = int(np.prod(out_shapes[0])) * 2
    return Cost(flops=5.0 * n * max(1.0, float(np.log2(max(n, 2)))), bytes=8.0 * n)


# ---- REAL / IMAG / COMPLEX_ABS -------------------------------------------------------------------

def _complex_infer(ctx: InferCtx) -> list[ShapeDtype]:
    if len(ctx.shapes) != 1 or ctx.shapes[0] is None:
        raise OpError(f"{ctx.op_name} takes one input, got {len(ctx.shapes)}")
    dt = np.dtype(ctx.dtypes[0])
    if dt not in _REAL_OF:
        raise OpError(f"{ctx.op_name}: input '{ctx.name(0)}' is {dt.name}; it must be complex64 or "
                      "complex128")
    return [(tuple(ctx.shapes[0]), _REAL_OF[dt])]


def _complex_reference(fn: Callable[[np.ndarray], np.ndarray]):
    def run(inputs: Sequence[np.ndarray | None], attrs: Any) -> list[np.ndarray]:
        x = np.asarray(inputs[0])
        return [np.asarray(fn(x)).astype(_REAL_OF[x.dtype], copy=True)]  # keeps 0-d as 0-d
    return run


define("RFFT2D", infer=_rfft2d_infer, reference=_rfft2d_reference, cost=_rfft2d_cost, shape_inputs=(1,))
define("REAL", infer=_complex_infer, reference=_complex_reference(np.real), kind=PatternKind.ELEMWISE,
       cost=elementwise_cost)
define("IMAG", infer=_complex_infer, reference=_complex_reference(np.imag), kind=PatternKind.ELEMWISE,
       cost=elementwise_cost)
define("COMPLEX_ABS", infer=_complex_infer, reference=_complex_reference(np.abs), kind=PatternKind.ELEMWISE,
       cost=elementwise_cost)
