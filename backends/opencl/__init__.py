"""OpenCL backend (installed as tflite_jit.backends.opencl): generated OpenCL C per cluster with
pyopencl; partitions keep their intermediates on the device. Runs on PoCL (CPU) and GPUs.
Importing this package needs no OpenCL runtime; constructing `OpenCLBackend` does."""

from tflite_jit.backends.opencl.backend import FP16_RTOL, OpenCLBackend

__all__ = ["FP16_RTOL", "OpenCLBackend"]
