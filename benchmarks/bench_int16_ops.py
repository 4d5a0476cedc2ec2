"""One int16 (16x8) node at a time, at the shapes the suite's int16x8 models run them: our
compiled kernel against LiteRT's builtin kernel, 1 thread, medians in the same process.

    TFLITE_JIT_JIT=eager taskset -c 1 python -m benchmarks.bench_int16_ops
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from tflite_jit.format.builder import ModelBuilder

I16 = np.int16


def _model(op: str, ins: list, out: tuple, const=None, **options) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    ids = [g.input(f"x{i}", shape, dt, **q) for i, (shape, dt, q) in enumerate(ins)]
    if const is not None:
        ids.append(g.const("c", const))
    y = g.tensor("y", out[0], out[1], **out[2])
    g.op(op, ids, [y], **options)
    g.output(y)
    return mb.build()


def _q(s: float) -> dict:
    return dict(scale=s, zero_point=0)


CASES = {
    "MUL swish 1x112x112x32": _model("MUL", [((1, 112, 112, 32), I16, _q(3e-4)), ((1, 112, 112, 32), I16, _q(3.1e-5))],
                                     ((1, 112, 112, 32), I16, _q(2e-4))),
    "MUL SE 1x56x56x96 * 1x1x1x96": _model("MUL", [((1, 56, 56, 96), I16, _q(3e-4)), ((1, 1, 1, 96), I16, _q(3.1e-5))],
                                           ((1, 56, 56, 96), I16, _q(2e-4))),
    "ADD 1x56x56x24": _model("ADD", [((1, 56, 56, 24), I16, _q(3e-4)), ((1, 56, 56, 24), I16, _q(4e-4))],
                             ((1, 56, 56, 24), I16, _q(5e-4))),
    "QUANTIZE i16->i16 1x56x56x128": _model("QUANTIZE", [((1, 56, 56, 128), I16, _q(3e-4))], ((1, 56, 56, 128), I16, _q(4.4e-4))),
    "QUANTIZE f32->i16 1x224x224x3": _model("QUANTIZE", [((1, 224, 224, 3), np.float32, {})], ((1, 224, 224, 3), I16, _q(1e-4))),
    "AVERAGE_POOL 3x3 s1 1x28x28x88": _model("AVERAGE_POOL_2D", [((1, 28, 28, 88), I16, _q(3e-4))], ((1, 28, 28, 88), I16, _q(3e-4)),
                                             padding=0, stride_h=1, stride_w=1, filter_height=3, filter_width=3),
    "MAX_POOL 3x3 s2 1x112x112x64": _model("MAX_POOL_2D", [((1, 112, 112, 64), I16, _q(3e-4))], ((1, 56, 56, 64), I16, _q(3e-4)),
                                           padding=0, stride_h=2, stride_w=2, filter_height=3, filter_width=3),
    "MEAN 1x7x7x1280": _model("MEAN", [((1, 7, 7, 1280), I16, _q(3e-4))], ((1, 1280), I16, _q(1e-4)),
                              const=np.array([1, 2], np.int32), keep_dims=False),
    "SOFTMAX 1x1000": _model("SOFTMAX", [((1, 1000), I16, _q(3e-4))], ((1, 1000), I16, _q(1 / 32768)), beta=1.0),
    "DEQUANTIZE 1x1000": _model("DEQUANTIZE", [((1, 1000), I16, _q(3e-4))], ((1, 1000), np.float32, {})),
}


def _median_us(fn, runs: int) -> float:
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        ts.append((time.perf_counter_ns() - t0) / 1e3)
    return statistics.median(ts)


def main() -> int:
    import ai_edge_litert.interpreter as lite

    import tflite_jit

    rng = np.random.default_rng(0)
    print(f"{'node':34s} {'LiteRT builtin us':>18s} {'ours us':>9s} {'ratio':>6s}  exact  backend")
    for name, m in CASES.items():
        theirs = lite.Interpreter(model_content=m, num_threads=1,
                                  experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        ours = tflite_jit.Interpreter(model_content=m, num_threads=1)
        for it in (theirs, ours):
            it.allocate_tensors()
        for d in ours.get_input_details():
            dt = np.dtype(d["dtype"])
            x = (rng.standard_normal(d["shape"]).astype(dt) * 3 if dt.kind == "f"
                 else rng.integers(-32768, 32768, d["shape"]).astype(dt))
            for it in (theirs, ours):
                it.set_tensor(d["index"], x)
        theirs.invoke()
        ours.invoke()
        exact = np.array_equal(ours.get_tensor(ours.get_output_details()[0]["index"]),
                               theirs.get_tensor(theirs.get_output_details()[0]["index"]))
        backend = {p["backend"] for p in ours._interpreter.execs[0].plan}
        runs = 200
        t_l = _median_us(theirs.invoke, runs)
        t_o = _median_us(ours.invoke, runs)
        print(f"{name:34s} {t_l:18.1f} {t_o:9.1f} {t_l / t_o:6.2f}  {exact!s:5s}  {','.join(sorted(backend))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
