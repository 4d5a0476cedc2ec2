"""Numba CPU backend (installed as tflite_jit.backends.numba_cpu).

The threading layer is chosen before Numba compiles anything: omp costs ~1 µs per parallel region
where workqueue costs tens of µs (PERFORMANCE.md §1.4). A user's explicit NUMBA_THREADING_LAYER
wins.
"""

import os

os.environ.setdefault("NUMBA_THREADING_LAYER", "omp")
