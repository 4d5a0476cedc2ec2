"""Op definitions (installed as tflite_jit.ops): one module per op family, one OpDef per op."""

from tflite_jit.ops.base import Cost, InferCtx, OpDef, OpError, PatternKind, Quantized, all_ops, get, register

__all__ = ["Cost", "InferCtx", "OpDef", "OpError", "PatternKind", "Quantized", "all_ops", "get", "register"]
