"""Kernel generators; each module registers itself with backend.register_generator."""


def load_all() -> None:
    """Import every generator module (each registers itself); called when the backend is used."""
    import importlib
    import pkgutil

    for m in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{m.name}")
from tflite_jit.backends.numba_cpu.generators import depthwise  # noqa: F401, E402, I001
from tflite_jit.backends.numba_cpu.generators import loop  # noqa: F401, E402, I001
from tflite_jit.backends.numba_cpu.generators import pool  # noqa: F401, E402, I001
from tflite_jit.backends.numba_cpu.generators import reduce  # noqa: F401, E402, I001
from tflite_jit.backends.numba_cpu.generators import gemm  # noqa: F401, E402, I001
