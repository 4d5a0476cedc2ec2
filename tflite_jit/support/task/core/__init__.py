"""Classes every task shares (tflite_support.task.core)."""

from tflite_jit.support.task.core.base_options import BaseOptions

__all__ = ["BaseOptions"]
