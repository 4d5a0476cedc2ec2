"""LOOP: a pure elementwise/broadcast cluster, one work-item per output element."""

from __future__ import annotations

from tflite_jit.backends.opencl.kernels.common import Gen, register
from tflite_jit.ops.common import numel


@register("LOOP")
def loop(g: Gen) -> tuple[list[str], int]:
    return g.epilogue("gid", "0.0f"), numel(g.req.out_shape)
