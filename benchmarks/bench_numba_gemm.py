"""The Numba GEMM kernels (CONV_2D, FULLY_CONNECTED, BATCH_MATMUL) against NumPy and LiteRT.

    python benchmarks/bench_numba_gemm.py [--runs 200] [--threads 1,2] [--tile 7x2] [--cases stem,fc]
        [--no-xnnpack] [--cold]

Per case and thread count: the median time of our kernel (fused bias + ReLU6), of NumPy
(`A @ B + bias` then clip; pad + im2col for the stem conv; OpenBLAS with 1 thread unless
OPENBLAS_NUM_THREADS says otherwise) and of LiteRT's XNNPACK delegate on a one-op model
(num_threads=T), as µs and GF/s; "vs xnn" is t_xnn / t_ours (0.5 = half XNNPACK's speed).
"compile s" is our kernel's first load in the process: ~0.01 s from a warm on-disk cache,
a real compile with --cold (the first kernel of a process also pays ~0.2 s of Numba start-up).
Engines run in alternating blocks of calls (see ROUNDS) so machine noise hits them alike.
Numbers, not assertions: the CI box is a shared 2-core VM, and a 2-thread run is only
meaningful while no other process keeps a core busy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Before numpy/numba load: 1 BLAS thread (an OpenBLAS pool spinning next to Numba's omp pool
# slows both 10x, PERFORMANCE.md §1.4) and the omp threading layer the backend chooses.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_THREADING_LAYER", "omp")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.oracle (LiteRT models)

import numba  # noqa: E402
import numpy as np  # noqa: E402

from tflite_jit import ops  # noqa: E402
from tflite_jit.backends.numba_cpu import backend, modcache
from tflite_jit.backends.numba_cpu.generators import gemm
from tflite_jit.backends.request import KernelRequest, Output, TensorArg
from tflite_jit.ops import expr as E

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)

F32 = np.dtype(np.float32)
RELU6 = 3  # ActivationFunctionType
#: engines take turns in blocks, not call by call: XNNPACK's and Numba's worker threads both spin
#: after their parallel regions, and on 2 cores one engine's spinning pool slows the next one's
#: first calls by 10-50x (measured), which per-call interleaving would put into every sample
ROUNDS = 4


class Case:
    def __init__(self, name: str, op: str, options: dict, inputs: list, flops: float,
                 numpy_fn: Callable[[], np.ndarray]):
        self.name, self.op, self.options, self.inputs = name, op, options, inputs
        self.flops, self.numpy_fn = flops, numpy_fn


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def conv_case(name: str, h: int, ci: int, co: int, k: int = 1, s: int = 1) -> Case:
    r = _rng()
    x = r.standard_normal((1, h, h, ci)).astype(F32)
    f = (r.standard_normal((co, k, k, ci)) / np.sqrt(k * k * ci)).astype(F32)
    b = r.standard_normal(co).astype(F32)
    oh = -(-h // s)
    wt = np.ascontiguousarray(f.reshape(co, -1).T)
    if k == 1:
        def numpy_fn() -> np.ndarray:
            return np.clip(x.reshape(-1, ci) @ wt + b, 0, 6)
    else:
        pad = max((oh - 1) * s + k - h, 0)
        xp = np.zeros((1, h + pad, h + pad, ci), F32)

        def numpy_fn() -> np.ndarray:  # pad + im2col (strided view copied by reshape) + GEMM
            xp[:, pad // 2:pad // 2 + h, pad // 2:pad // 2 + h] = x
            win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::s, ::s]
            cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(oh * oh, k * k * ci)
            return np.clip(cols @ wt + b, 0, 6)
    return Case(name, "CONV_2D", {"padding": 0, "stride_h": s, "stride_w": s,
                                  "fused_activation_function": RELU6},
                [x, f, b], 2.0 * oh * oh * co * k * k * ci, numpy_fn)


def fc_case(name: str, m: int, k: int, n: int) -> Case:
    r = _rng()
    x = r.standard_normal((m, k)).astype(F32)
    w = (r.standard_normal((n, k)) / np.sqrt(k)).astype(F32)
    b = r.standard_normal(n).astype(F32)
    wt = np.ascontiguousarray(w.T)
    return Case(name, "FULLY_CONNECTED", {"fused_activation_function": RELU6}, [x, w, b],
                2.0 * m * k * n, lambda: np.clip(x @ wt + b, 0, 6))


def bmm_case(name: str, nb: int, m: int, k: int, n: int) -> Case:
    r = _rng()
    x = r.standard_normal((nb, m, k)).astype(F32)
    y = r.standard_normal((nb, k, n)).astype(F32)
    return Case(name, "BATCH_MATMUL", {}, [x, y], 2.0 * nb * m * k * n, lambda: x @ y)


CASES = {
    "1x1_112x112x32-16": lambda: conv_case("1x1 112x112x32->16", 112, 32, 16),
    "1x1_56x56x24-144": lambda: conv_case("1x1 56x56x24->144", 56, 24, 144),
    "1x1_14x14x96-576": lambda: conv_case("1x1 14x14x96->576", 14, 96, 576),
    "1x1_7x7x960-320": lambda: conv_case("1x1 7x7x960->320", 7, 960, 320),
    "stem": lambda: conv_case("3x3/2 224x224x3->32", 224, 3, 32, 3, 2),
    "fc": lambda: fc_case("FC 1x1280->1000", 1, 1280, 1000),
    "bmm": lambda: bmm_case("BMM 4x128x64 @ 4x64x128", 4, 128, 64, 128),
}


def request(case: Case, threads: int) -> KernelRequest:
    opdef = ops.get(case.op)
    attrs = opdef.parse(case.options)
    ref = opdef.reference(case.inputs, attrs)[0]
    ins = [TensorArg(case.inputs[0].shape, F32)]
    ins += [TensorArg(a.shape, F32, a) for a in case.inputs[1:]]
    if case.op == "BATCH_MATMUL":  # both operands are activations
        ins[1] = TensorArg(case.inputs[1].shape, F32)
    return KernelRequest(case.op, attrs, ins, [], [Output(E.Var(0), TensorArg(ref.shape, F32))], threads)


def ours(case: Case, threads: int, tile: tuple[int, int] | None) -> tuple[Callable[[], None], float, str]:
    req = request(case, threads)
    gen = {"CONV_2D": gemm.conv2d, "FULLY_CONNECTED": gemm.fully_connected,
           "BATCH_MATMUL": gemm.batch_matmul}[case.op]
    src = gen(req, tile)
    t0 = time.perf_counter()
    fn = modcache.load(src.source, src.entry)
    out = np.empty(req.out_shape, F32)
    args = backend.bind(src, case.inputs, [], [out])
    fn(*args)
    compile_s = time.perf_counter() - t0
    ref = ops.get(case.op).reference(case.inputs, req.attrs)[0]
    err = float(np.abs(out - ref).max()) / max(1.0, float(np.abs(ref).max()))
    assert err < 1e-4, f"{case.name}: relative error {err}"
    head = src.source.split("# tflite_jit gemm kernel: ", 1)[1].split("\n", 1)[0]
    tile_s = head.split("tile=")[1].split()[0] + (" par" if src.parallel else "")
    return (lambda: fn(*args)), compile_s, tile_s


def xnnpack(case: Case, threads: int) -> Callable[[], None] | None:
    try:
        from tests.oracle import litert_interpreter, one_op_model
    except ImportError:
        return None
    specs: list = [(case.inputs[0].shape, np.float32)]
    if case.op == "BATCH_MATMUL":
        specs.append((case.inputs[1].shape, np.float32))
    else:
        specs += case.inputs[1:]
    model = one_op_model(case.op, specs, **case.options)
    it = litert_interpreter(model, "xnnpack", num_threads=threads)
    it.allocate_tensors()
    for d, a in zip(it.get_input_details(), case.inputs):
        it.set_tensor(d["index"], a)
    return it.invoke


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--tile", default=None, help="force MRxNV (rows x vectors), e.g. 7x2")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--no-xnnpack", action="store_true")
    p.add_argument("--cold", action="store_true",
                   help="compile into a fresh kernel cache (TFLITE_JIT_CACHE_DIR) to time cold compiles")
    a = p.parse_args(argv)
    if a.cold:
        import tempfile

        os.environ["TFLITE_JIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_gemm_cache_")
    tile = tuple(int(v) for v in a.tile.split("x")) if a.tile else None
    print(f"numba {numba.__version__}, threading layer {numba.config.THREADING_LAYER}, "
          f"SIMD width {gemm.VW} floats; medians of {a.runs} runs")
    print(f"{'case':26s} {'T':>2s} {'tile':>10s} {'ours µs':>9s} {'GF/s':>6s} {'numpy µs':>9s} "
          f"{'GF/s':>6s} {'xnn µs':>8s} {'GF/s':>6s} {'vs xnn':>8s} {'compile s':>9s}")
    for key in a.cases.split(","):
        case = CASES[key]()
        for threads in (int(t) for t in a.threads.split(",")):
            numba.set_num_threads(threads)
            fn, compile_s, tile_s = ours(case, threads, tile)
            engines: dict[str, Callable] = {"ours": fn, "numpy": case.numpy_fn}
            x = None if a.no_xnnpack else xnnpack(case, threads)
            if x is not None:
                engines["xnn"] = x
            times: dict[str, list[float]] = {k: [] for k in engines}
            for _ in range(ROUNDS):  # blocks of consecutive calls per engine, engines alternating
                for k, f in engines.items():
                    for _ in range(5):
                        f()
                    for _ in range(max(1, a.runs // ROUNDS)):
                        t0 = time.perf_counter()
                        f()
                        times[k].append(time.perf_counter() - t0)
            med = {k: float(np.median(v)) for k, v in times.items()}

            def cols(k: str, med: dict = med, flops: float = case.flops) -> str:
                if k not in med:
                    return f"{'-':>9s} {'-':>6s}"
                return f"{med[k] * 1e6:9.1f} {flops / med[k] / 1e9:6.1f}"

            ratio = f"{med['xnn'] / med['ours']:8.2f}" if "xnn" in med else f"{'-':>8s}"
            print(f"{case.name:26s} {threads:2d} {tile_s:>10s} {cols('ours')} {cols('numpy')} "
                  f"{cols('xnn')[1:]} {ratio} {compile_s:9.2f}", flush=True)


if __name__ == "__main__":
    main()
