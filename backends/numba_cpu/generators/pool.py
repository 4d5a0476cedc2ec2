"""AVERAGE_POOL_2D and MAX_POOL_2D on the windowed-kernel emitter of depthwise.py.

TFLite semantics (ops/nn.py): only in-image taps take part; the average divides by their count
(a literal per block, computed at run time on the generic border path), the maximum never sees
padding (an empty window gives -inf, as the reference's -inf padding does). The fused
activation is LiteRT's clamp; then the epilogue.
"""

from __future__ import annotations

import numpy as np

from tflite_jit.backends.numba_cpu import emit
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.generators.depthwise import Window, geometry, window_source
from tflite_jit.backends.numba_cpu.spec import KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported


def _pool(req: KernelRequest, kind: str) -> KernelSource:
    a = req.attrs
    x = req.inputs[0] if req.inputs else None
    if x is None or np.dtype(x.dtype) != emit.F32 or len(x.shape) != 4:
        raise Unsupported(f"{req.op_name}: 4-D float32 input only")
    n, h, w, c = x.shape
    if a.stride_h < 1 or a.stride_w < 1:
        raise Unsupported(f"{req.op_name}: stride < 1")
    oh, ow, pt, pl = geometry(a.padding, h, w, a.filter_h, a.filter_w, a.stride_h, a.stride_w, 1, 1)
    win = Window(kind, n, h, w, c, max(a.filter_h, 0), max(a.filter_w, 0), a.stride_h, a.stride_w,
                 1, 1, 1, max(oh, 0), max(ow, 0), pt, pl)
    return window_source(req, win, [])


@register_generator("AVERAGE_POOL_2D")
def generate_average_pool(req: KernelRequest) -> KernelSource:
    return _pool(req, "avg")


@register_generator("MAX_POOL_2D")
def generate_max_pool(req: KernelRequest) -> KernelSource:
    return _pool(req, "max")
