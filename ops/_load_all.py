"""Importing this module registers every op family (each module calls ops.base.register)."""

from tflite_jit.ops import compare, elementwise, nn, quant, reduce, shape  # noqa: F401
