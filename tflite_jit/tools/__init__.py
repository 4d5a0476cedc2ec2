"""The `tflite-jit` command and its helpers: benchmark, op profiling, inspection, comparison with
LiteRT, fusion experiments, the execution plan's renderers, and the synthetic model zoo they run.

Why apart from the engine: these sit on top of `tflite_jit.Interpreter` and use it as a user
would; nothing in the engine imports them (tests/test_layering.py: layer 9, above the engine's 8).
"""
