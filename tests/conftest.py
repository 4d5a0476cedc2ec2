"""The test suite runs with jit='eager' unless a test asks otherwise: every kernel is compiled in
allocate_tensors(), so which backend ran a step never depends on a background process's timing
(tests/test_tiers.py covers 'background' and 'off' explicitly). Set before any test imports
tflite_jit; subprocesses started by tests inherit it."""

import os

os.environ.setdefault("TFLITE_JIT_JIT", "eager")
