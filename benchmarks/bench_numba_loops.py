"""Benchmark: Numba LOOP / depthwise / reduce / softmax kernels against NumPy (the ops' reference
kernels) and LiteRT's XNNPACK (one-op models), at 1 and 2 threads.

    .venv/bin/python benchmarks/bench_numba_loops.py [--repeat-s 0.4] [--threads 1,2] [--warm-cache]

Times are medians (and 10th percentiles) of back-to-back calls of each kernel on fixed buffers,
each contender in its own block after an idle gap (Numba: the compiled entry called from Python,
~0.5 µs of dispatch included; LiteRT: Interpreter.invoke(); NumPy: the reference function). Numba kernels for T threads are compiled with num_threads=T (so 1 thread
gets serial kernels, 2 threads parallel ones where the work is big enough) and run under
numba.set_num_threads(T). Compile time is measured cold in a private cache directory unless
--warm-cache (a kernel shared by both thread counts compiles once: 0.00 s the second time).
The machine is shared: when another process holds the second core, 2-thread OpenMP regions stall
~8 ms at the barrier (a descheduled worker) and medians show it; compare the p10 column then.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)


def timings(fns: dict, budget_s: float) -> dict:
    """{name: (median µs, p10 µs)}, each contender timed in its own block after an idle gap: the
    thread pools spin after a call (XNNPACK's pthreadpool, Numba's OpenMP workers), so timing
    them interleaved at 2 threads makes each steal the other's second core."""
    out = {}
    for k, fn in fns.items():
        time.sleep(0.05)
        fn()
        ts = []
        t_end = time.perf_counter() + budget_s
        while len(ts) < 20 or (time.perf_counter() < t_end and len(ts) < 20000):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        out[k] = (float(np.median(ts)) * 1e6, float(np.percentile(ts, 10)) * 1e6)
    return out


def cases():
    """(label, op, graph inputs (arrays), const inputs {index: array}, options, epilogue)"""
    rng = np.random.default_rng(0)

    def r(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    dw = dict(padding="SAME", dilation_h_factor=1, dilation_w_factor=1, depth_multiplier=1,
              fused_activation_function="RELU6")
    out = []
    for (h, c, s) in [(112, 96, 2), (56, 144, 1), (14, 576, 1)]:
        out.append((f"depthwise 3x3 s{s} {h}x{h}x{c} +relu6", "DEPTHWISE_CONV_2D", [r(1, h, h, c)],
                    {1: r(1, 3, 3, c), 2: r(c)}, dict(dw, stride_h=s, stride_w=s)))
    out.append(("MEAN [1,2] 7x7x1280", "MEAN", [r(1, 7, 7, 1280)],
                {1: np.array([1, 2], np.int32)}, dict(keep_dims=False)))
    out.append(("ADD+RELU6 56x56x24", "ADD", [r(1, 56, 56, 24), r(1, 56, 56, 24)], {},
                dict(fused_activation_function="RELU6")))
    out.append(("LOGISTIC 1M", "LOGISTIC", [r(1, 1000, 1000, scale=4.0)], {}, {}))
    out.append(("SOFTMAX 1x1000", "SOFTMAX", [r(1, 1000, scale=3.0)], {}, dict(beta=1.0)))
    out.append(("SOFTMAX 4x128x128", "SOFTMAX", [r(4, 128, 128, scale=3.0)], {}, dict(beta=1.0)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat-s", type=float, default=0.4, help="seconds of timing per measurement")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--warm-cache", action="store_true", help="use the normal kernel cache")
    args = ap.parse_args()
    if not args.warm_cache:
        os.environ["TFLITE_JIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_numba_loops_")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    import numba

    from tests.oracle import assert_close, litert_interpreter, one_op_model
    from tflite_jit import ops
    from tflite_jit.backends.numba_cpu import backend
    from tflite_jit.backends.numba_cpu.generators import depthwise, loop, reduce  # noqa: F401
    from tflite_jit.backends.request import KernelRequest, Output, TensorArg
    from tflite_jit.format.schema import FIELD_ENUMS, enum_values
    from tflite_jit.ops import expr as E

    threads = [int(t) for t in args.threads.split(",")]
    print(f"numba {numba.__version__}, threading layer env {os.environ.get('NUMBA_THREADING_LAYER')}, "
          f"cores {os.cpu_count()}")
    rows = []
    for label, op, graph_in, consts, opts in cases():
        opdef = ops.get(op)
        raw = {k: (enum_values(FIELD_ENUMS[k])[v] if isinstance(v, str) and k in FIELD_ENUMS else v)
               for k, v in opts.items()}
        attrs = opdef.parse(raw)
        n_in = len(graph_in) + len(consts)
        full = []
        gi = iter(graph_in)
        for i in range(n_in):
            full.append(consts[i] if i in consts else next(gi))
        ref = opdef.reference(full, attrs)[0]
        model = one_op_model(op, [consts[i] if i in consts else (full[i].shape, full[i].dtype)
                                  for i in range(n_in)], **opts)
        for nt in threads:
            # ours
            if opdef.expr is not None:  # elementwise: a LOOP over the op's expression
                e = E.substitute(opdef.expr(attrs), {i: E.Var(i + 1) for i in range(n_in)})
                req = KernelRequest("LOOP", None, [], [TensorArg(x.shape, x.dtype) for x in full],
                                    [Output(e, TensorArg(ref.shape, ref.dtype))], nt)
                ins, extras = [], full
            else:
                req = KernelRequest(op, attrs, [TensorArg(x.shape, x.dtype, x if i in consts else None)
                                                for i, x in enumerate(full)], [],
                                    [Output(E.Var(0), TensorArg(ref.shape, ref.dtype))], nt)
                ins, extras = full, []
            t0 = time.perf_counter()
            fn, src = backend.compile_request(req)
            outs = [np.empty(ref.shape, ref.dtype)]
            bound = backend.bind(src, ins, extras, outs)
            numba.set_num_threads(nt)
            fn(*bound)
            compile_s = time.perf_counter() - t0
            assert_close(outs[0], ref, what=label)
            # LiteRT XNNPACK
            it = litert_interpreter(model, "xnnpack", num_threads=nt)
            it.allocate_tensors()
            for d, x in zip(it.get_input_details(), graph_in):
                it.set_tensor(d["index"], x)
            it.invoke()
            theirs = it.get_tensor(it.get_output_details()[0]["index"])
            assert_close(outs[0], theirs, what=f"{label} vs LiteRT")
            t = timings({"numba": lambda f=fn, b=bound: f(*b),
                         "numpy": lambda r=opdef.reference, x=full, a=attrs: r(x, a),
                         "xnn": it.invoke}, args.repeat_s)
            rows.append((label, nt, t["numba"], t["numpy"], t["xnn"], compile_s, src.parallel))
            print(f"{label:36s} T={nt} numba {t['numba'][0]:9.1f} us  numpy {t['numpy'][0]:9.1f} us  "
                  f"xnnpack {t['xnn'][0]:9.1f} us  (p10: {t['numba'][1]:.1f} / {t['numpy'][1]:.1f} / "
                  f"{t['xnn'][1]:.1f})  compile {compile_s:5.2f} s  parallel={src.parallel}", flush=True)
            del it
    print("\n| case | threads | numba µs | numpy µs | XNNPACK µs | numba/XNNPACK | p10 numba / XNNPACK µs "
          "| compile s |")
    print("|---|---|---|---|---|---|---|---|")
    for label, nt, o, n, x, c, par in rows:
        print(f"| {label} | {nt} | {o[0]:.1f} | {n[0]:.1f} | {x[0]:.1f} | {o[0] / x[0]:.2f} | "
              f"{o[1]:.1f} / {x[1]:.1f} | {c:.2f}{' (parallel)' if par else ''} |")
    print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
