"""pytest-benchmark suite: invoke() latency of the zoo models on tflite_jit and on LiteRT.

    .venv/bin/python -m pytest benchmarks/test_bench_models.py --benchmark-group-by=param:model

Not part of the default test run (testpaths = tests): timings are measured here, never asserted.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.side_by_side import _model, inputs_for
from tflite_jit import Interpreter

MODELS = ["one_op", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "resnet50", "transformer_encoder"]
ENGINES = ["tflite_jit", "litert_xnnpack", "litert_builtin"]


def _interpreter(engine: str, content: bytes, threads: int = 2):
    if engine == "tflite_jit":
        return Interpreter(model_content=content, num_threads=threads, backend="numba", fusion="epilogue")
    from ai_edge_litert import interpreter as lite

    kw = {} if engine == "litert_xnnpack" else {
        "experimental_op_resolver_type": lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    return lite.Interpreter(model_content=content, num_threads=threads, **kw)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("model", MODELS)
def test_invoke(benchmark, model: str, engine: str) -> None:
    it = _interpreter(engine, _model(model))
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), inputs_for(it, np.random.default_rng(0))):
        it.set_tensor(d["index"], x)
    it.invoke()
    benchmark(it.invoke)
