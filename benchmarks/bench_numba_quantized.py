"""int8 kernels of the Numba backend against LiteRT (XNNPACK int8 and builtin int8), side by side.

    python benchmarks/bench_numba_quantized.py [--threads 1] [--runs 30] [--layers-only | --models-only]
                                               [--baseline]

Per layer: one-op int8 models (MobileNetV2 / EfficientNet-like CONV_2D 1x1 and 3x3,
DEPTHWISE_CONV_2D, FULLY_CONNECTED) run by tflite_jit (Numba backend), LiteRT with its default
XNNPACK delegate, and LiteRT's builtin kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES). Whole models:
`tflite_jit.quantizer.quantize` applied to `models.mobilenet_v2(224)` and `models.efficientnet_b0()`
with a few random calibration samples. Each round runs every engine once in rotating order (the
machine is shared), we report medians and the ratios ours / XNNPACK and ours / builtin, and check
that our outputs equal the builtin kernels' bit for bit on the layers (whole models: max LSB
difference of the int8 output before dequantization is not visible; we report max |diff|).
`--baseline` adds, in the same rounds, the models planned without the newer int8 kernels
(QUANTIZE / DEQUANTIZE / PAD / SOFTMAX on reference, scalar table lookups and MUL, whole-image
depthwise scratch, one-pixel MEAN): a before/after pair measured under the same load.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from tflite_jit import Interpreter
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.tools import models

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)

LAYERS = [  # (name, op, hw, ci, co, k, stride)
    ("stem 3x3 s2 224x3->32", "CONV_2D", 224, 3, 32, 3, 2),
    ("1x1 112x32->16", "CONV_2D", 112, 32, 16, 1, 1),
    ("1x1 56x24->144", "CONV_2D", 56, 24, 144, 1, 1),
    ("1x1 28x192->32", "CONV_2D", 28, 192, 32, 1, 1),
    ("1x1 14x96->576", "CONV_2D", 14, 96, 576, 1, 1),
    ("1x1 7x320->1280", "CONV_2D", 7, 320, 1280, 1, 1),
    ("3x3 56x64->64", "CONV_2D", 56, 64, 64, 3, 1),
    ("dw3x3 112x32", "DEPTHWISE_CONV_2D", 112, 32, 32, 3, 1),
    ("dw3x3 s2 112x96", "DEPTHWISE_CONV_2D", 112, 96, 96, 3, 2),
    ("dw3x3 56x144", "DEPTHWISE_CONV_2D", 56, 144, 144, 3, 1),
    ("dw3x3 14x576", "DEPTHWISE_CONV_2D", 14, 576, 576, 3, 1),
    ("dw5x5 14x480", "DEPTHWISE_CONV_2D", 14, 480, 480, 5, 1),
    ("dw3x3 7x960", "DEPTHWISE_CONV_2D", 7, 960, 960, 3, 1),
    ("fc 1x1280->1000", "FULLY_CONNECTED", 1, 1280, 1000, 1, 1),
]


def layer_model(op: str, hw: int, ci: int, co: int, k: int, stride: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    g = mb.subgraph()
    si, zi, so, zo = 0.0235, -128, 0.05, 3
    if op == "FULLY_CONNECTED":
        x_shape, w_shape, out_shape, axis = (1, ci), (co, ci), (1, co), 0
        w = rng.normal(0, 20, w_shape)
    else:
        oh = -(-hw // stride)
        x_shape, out_shape = (1, hw, hw, ci), (1, oh, oh, co)
        w_shape, axis = ((1, k, k, co), 3) if op == "DEPTHWISE_CONV_2D" else ((co, k, k, ci), 0)
        w = rng.normal(0, 40, w_shape)
    w = np.clip(np.rint(w), -127, 127).astype(np.int8)
    sw = rng.uniform(0.001, 0.01, co).astype(np.float32)
    x = g.input("x", x_shape, np.int8, scale=si, zero_point=zi)
    wi = g.const("w", w, scale=sw, zero_point=np.zeros(co, np.int64), quantized_dimension=axis)
    b = g.const("b", rng.integers(-2000, 2000, co).astype(np.int32), scale=np.float32(si) * sw,
                zero_point=np.zeros(co, np.int64))
    y = g.tensor("y", out_shape, np.int8, scale=so, zero_point=zo)
    opts: dict[str, Any] = {"fused_activation_function": 3}
    if op != "FULLY_CONNECTED":
        opts.update(padding=0, stride_h=stride, stride_w=stride)
    if op == "DEPTHWISE_CONV_2D":
        opts["depth_multiplier"] = 1
    g.op(op, [x, wi, b], [y], **opts)
    g.output(y)
    return mb.build()


#: the int8 kernels added after the first int8 benchmark: QUANTIZE / DEQUANTIZE / PAD / SOFTMAX
#: (previously on reference), the vector table lookup of LOGISTIC & co., the int32 vector MUL,
#: the depthwise row ring and the 4-pixel MEAN. `--baseline` also times an interpreter planned without them, in the
#: same rounds
NEW_KERNELS = ("QUANTIZE", "DEQUANTIZE", "PAD")


@contextlib.contextmanager
def _without_new_kernels() -> Iterator[None]:
    """Plan interpreters as before the new int8 kernels: their generators are unregistered,
    SOFTMAX gets its float-only generator back, table ops and MUL their scalar loops, depthwise
    its whole-image scratch, MEAN its one-pixel loop (all restored on exit)."""
    from tflite_jit.backends.numba_cpu import backend as nb
    from tflite_jit.backends.numba_cpu import generators, qlut
    from tflite_jit.backends.numba_cpu.generators import qconv, qeltwise, qreduce
    from tflite_jit.backends.numba_cpu.generators import reduce as float_reduce

    generators.load_all()
    saved = dict(nb.GENERATORS)
    flags = (qlut.HAS_VBMI, qeltwise.USE_VECTOR_MUL, qconv.DW_RING, qreduce.MEAN_UNROLL)
    for name in NEW_KERNELS:
        nb.GENERATORS.pop(name, None)
    nb.GENERATORS["SOFTMAX"] = float_reduce.generate_softmax
    qlut.HAS_VBMI = qeltwise.USE_VECTOR_MUL = qconv.DW_RING = qreduce.MEAN_UNROLL = False
    try:
        yield
    finally:
        nb.GENERATORS.clear()
        nb.GENERATORS.update(saved)
        qlut.HAS_VBMI, qeltwise.USE_VECTOR_MUL, qconv.DW_RING, qreduce.MEAN_UNROLL = flags


def engines(content: bytes, threads: int, baseline: bool = False) -> dict[str, Any]:
    from ai_edge_litert import interpreter as lite

    its: dict[str, Any] = {}
    if baseline:
        with _without_new_kernels():
            its["ours (before)"] = Interpreter(model_content=content, num_threads=threads)
            its["ours (before)"].allocate_tensors()
    t0 = time.perf_counter()
    ours = Interpreter(model_content=content, num_threads=threads)
    ours.allocate_tensors()
    prep = time.perf_counter() - t0
    xnn = lite.Interpreter(model_content=content, num_threads=threads)
    builtin = lite.Interpreter(model_content=content, num_threads=threads,
                               experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    for it in (xnn, builtin):
        it.allocate_tensors()
    return {**its, "ours": ours, "xnnpack": xnn, "builtin": builtin, "_prepare_s": prep}


def time_side_by_side(its: dict[str, Any], x: np.ndarray, runs: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    names = [n for n in its if not n.startswith("_")]
    times: dict[str, list[float]] = {n: [] for n in names}
    outs = {}
    for n in names:  # warm-up
        it = its[n]
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        outs[n] = it.get_tensor(it.get_output_details()[0]["index"]).copy()
    for r in range(runs):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            it = its[n]
            it.set_tensor(it.get_input_details()[0]["index"], x)
            t0 = time.perf_counter()
            it.invoke()
            times[n].append(time.perf_counter() - t0)
    return {n: float(np.median(v)) for n, v in times.items()}, outs


def bench_layers(threads: int, runs: int) -> None:
    print(f"\nint8 layers, {threads} thread(s), medians of {runs} (µs); ratio ours/XNNPACK, ours/builtin")
    print(f"{'layer':28s} {'ours':>9s} {'xnnpack':>9s} {'builtin':>9s} {'/xnn':>6s} {'/bltn':>6s} exact")
    for name, op, hw, ci, co, k, s in LAYERS:
        content = layer_model(op, hw, ci, co, k, s)
        its = engines(content, threads)
        rng = np.random.default_rng(1)
        x = rng.integers(-128, 128, its["ours"].get_input_details()[0]["shape"]).astype(np.int8)
        med, outs = time_side_by_side(its, x, runs)
        plan = its["ours"]._interpreter.execs[0].plan
        where = "" if all(p["backend"] == "numba_cpu" for p in plan) else " (NOT numba)"
        exact = np.array_equal(outs["ours"], outs["builtin"])
        print(f"{name:28s} {med['ours'] * 1e6:9.1f} {med['xnnpack'] * 1e6:9.1f} {med['builtin'] * 1e6:9.1f} "
              f"{med['ours'] / med['xnnpack']:6.2f} {med['ours'] / med['builtin']:6.2f} {exact}{where}")


def quantized_model(name: str, samples: int = 4) -> bytes:
    from tflite_jit.quantizer import quantize

    float_model = models.mobilenet_v2(input_size=224) if name == "mobilenet_v2" else models.efficientnet_b0()
    rng = np.random.default_rng(0)
    shape = (1, 224, 224, 3)
    data = [[rng.uniform(-1, 1, shape).astype(np.float32)] for _ in range(samples)]
    return quantize(float_model, data)


def bench_models(threads: int, runs: int, baseline: bool = False) -> None:
    print(f"\nint8 models (quantizer.quantize), {threads} thread(s), medians of {runs} (ms)")
    print(f"{'model':16s} {'ours':>8s} {'xnnpack':>8s} {'builtin':>8s} {'/xnn':>6s} {'/bltn':>6s} "
          f"{'prepare s':>9s} max|diff| vs builtin, ops not on numba")
    for name in ("mobilenet_v2", "efficientnet_b0"):
        t0 = time.perf_counter()
        content = quantized_model(name)
        qs = time.perf_counter() - t0
        its = engines(content, threads, baseline)
        rng = np.random.default_rng(1)
        x = rng.uniform(-1, 1, its["ours"].get_input_details()[0]["shape"]).astype(np.float32)
        med, outs = time_side_by_side(its, x, runs)
        if baseline:
            b = med["ours (before)"]
            print(f"{name:16s} without the newer int8 kernels: {b * 1e3:.2f} ms "
                  f"({b / med['xnnpack']:.2f}x XNNPACK), now {med['ours'] * 1e3:.2f} ms")
        plan = its["ours"]._interpreter.execs[0].plan
        off = sorted({n for p in plan if p["backend"] not in ("numba_cpu", "alias (no copy)") for n in p["op_names"]})
        diff = float(np.max(np.abs(outs["ours"].astype(np.float64) - outs["builtin"])))
        print(f"{name:16s} {med['ours'] * 1e3:8.2f} {med['xnnpack'] * 1e3:8.2f} {med['builtin'] * 1e3:8.2f} "
              f"{med['ours'] / med['xnnpack']:6.2f} {med['ours'] / med['builtin']:6.2f} "
              f"{its['_prepare_s']:9.1f} {diff:.3g} {off} (quantize {qs:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--layers-only", action="store_true")
    p.add_argument("--models-only", action="store_true")
    p.add_argument("--baseline", action="store_true",
                   help="also time the models planned without the newer int8 kernels (same run)")
    a = p.parse_args(argv)
    if not a.models_only:
        bench_layers(a.threads, a.runs)
    if not a.layers_only:
        bench_models(a.threads, max(5, a.runs // 3), a.baseline)


if __name__ == "__main__":
    main()
