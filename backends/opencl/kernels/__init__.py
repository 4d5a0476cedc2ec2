"""OpenCL C generators, one module per op family; importing this package registers them all."""

from tflite_jit.backends.opencl.kernels import conv, loop, matmul, movement, pool, reduce  # noqa: F401
from tflite_jit.backends.opencl.kernels.common import GENERATORS, ClSource, KArg, generate

__all__ = ["GENERATORS", "ClSource", "KArg", "generate"]
