"""tflite_jit: runs TensorFlow Lite models by compiling them.

Drop-in for `ai_edge_litert.interpreter`: `from tflite_jit import Interpreter`.
"""

from tflite_jit import batch
from tflite_jit.custom_ops import CustomOp, register_custom_op, unregister_custom_op
from tflite_jit.delegates import Delegate, load_delegate
from tflite_jit.interpreter import (
    Interpreter,
    InterpreterWithCustomOps,
    OpResolverType,
    SignatureRunner,
)

__version__ = "0.1.0"
__all__ = ["batch", "CustomOp", "register_custom_op", "unregister_custom_op", "Delegate", "Interpreter", "InterpreterWithCustomOps", "OpResolverType", "SignatureRunner",
           "load_delegate", "__version__"]
