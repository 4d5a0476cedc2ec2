"""Where a cold (or warm) first allocation's time goes, phase by phase, in a fresh process.

    python benchmarks/compile_breakdown.py [--models mobilenet_v2,...] [--warm] [--json out.json]

Each model runs in its own subprocess with an empty TFLITE_JIT_CACHE_DIR (`--warm`: the same
directory a second time, so every kernel loads from the cache). Phases: importing tflite_jit
(and Numba), reading + validating the model, and inside allocate_tensors(): shape inference,
placement, fusion, generating + importing the kernel modules (`NumbaBackend.compile`), and
compiling / loading the machine code (`modcache.compile_now`, split with Numba's own timers into
the compiler lock — typing and lowering — and the LLVM lock — optimisation and code generation).
It also counts kernels, distinct generated modules (identical sources compile once per process)
and the sources that differ only in their constants (what a generic kernel would share).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

_CHILD = r"""
import json, re, sys, time
t0 = time.perf_counter()
import numpy as np
import tflite_jit
from tflite_jit.backends.numba_cpu import backend as nb, modcache
import numba
t_import = time.perf_counter() - t0
from tflite_jit.tools import models
from tflite_jit.runtime import executable as ex_mod
name = sys.argv[1]
data = models.build(name) if not name.endswith(".tflite") else open(name, "rb").read()
if len(sys.argv) > 2 and sys.argv[2] == "int8":
    from tflite_jit import quantizer
    rng = np.random.default_rng(0)
    it = tflite_jit.Interpreter(model_content=data, backend="reference")
    d = it.get_input_details()[0]
    samples = [rng.uniform(-1, 1, d["shape"]).astype(np.float32) for _ in range(4)]
    data = quantizer.quantize(data, samples)
phase = {"infer": 0.0, "place": 0.0, "fusion": 0.0, "generate": 0.0, "machine_code": 0.0,
         "compiler_lock": 0.0, "llvm_lock": 0.0}
sources = []
def timed(key, f):
    def g(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            phase[key] += time.perf_counter() - t
    return g
ex_mod.infer_subgraph = timed("infer", ex_mod.infer_subgraph)
ex_mod.Executable._place = timed("place", ex_mod.Executable._place)
ex_mod.Executable._clusters = timed("fusion", ex_mod.Executable._clusters)
real_compile = nb.NumbaBackend.compile
def compile_(self, cluster, env):
    t = time.perf_counter()
    try:
        k = real_compile(self, cluster, env)
        sources.append(k.src.source)
        return k
    finally:
        phase["generate"] += time.perf_counter() - t
nb.NumbaBackend.compile = compile_
real_now = modcache.compile_now
seen = set()
def now(fn, args):
    t = time.perf_counter()
    real_now(fn, args)
    phase["machine_code"] += time.perf_counter() - t
    sig = tuple(numba.typeof(a) for a in args)
    first = (id(fn), sig) not in seen
    seen.add((id(fn), sig))
    timers = fn.get_metadata(sig).get("timers", {}) if first and fn._cache_misses.get(sig) else {}
    phase["compiler_lock"] += timers.get("compiler_lock", 0.0)
    phase["llvm_lock"] += timers.get("llvm_lock", 0.0)
modcache.compile_now = now
t1 = time.perf_counter()
it = tflite_jit.Interpreter(model_content=data, **({"jit": "eager"} if "jit" in tflite_jit.Interpreter.__init__.__code__.co_varnames else {}))
t_open = time.perf_counter() - t1
t2 = time.perf_counter()
it.allocate_tensors()
t_alloc = time.perf_counter() - t2
for d in it.get_input_details():
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
t3 = time.perf_counter()
it.invoke()
t_invoke = time.perf_counter() - t3
shape_free = {re.sub(r"-?\d+(\.\d*)?(e-?\d+)?", "N", s) for s in sources}
print(json.dumps({"model": name, "import_s": t_import, "open_s": t_open, "allocate_s": t_alloc,
                  "first_invoke_s": t_invoke, "phases_s": phase, "kernels": len(sources),
                  "distinct_modules": len(set(sources)), "distinct_ignoring_numbers": len(shape_free)}))
"""


def run(model: str, cache: str, int8: bool) -> dict:
    env = {**os.environ, "TFLITE_JIT_CACHE_DIR": cache}
    args = [sys.executable, "-c", _CHILD, model] + (["int8"] if int8 else [])
    r = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800)
    if r.returncode:
        raise SystemExit(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="tiny_convnet,mobilenet_v2")
    p.add_argument("--int8", action="store_true", help="quantize each model first (tflite_jit.quantizer)")
    p.add_argument("--warm", action="store_true", help="also run each model a second time on its cache")
    p.add_argument("--json")
    a = p.parse_args()
    rows = []
    for m in a.models.split(","):
        with tempfile.TemporaryDirectory(prefix="tj_breakdown_") as cache:
            rows.append(dict(run(m, cache, a.int8), cache="cold"))
            if a.warm:
                rows.append(dict(run(m, cache, a.int8), cache="warm"))
        r = rows[-1]
        for r in rows[-2 if a.warm else -1:]:
            ph = r["phases_s"]
            print(f"{r['model']:<22} {r['cache']:<4} import {r['import_s']:.2f}  open {r['open_s']:.2f}  "
                  f"allocate {r['allocate_s']:.2f} (infer {ph['infer']:.2f}, place {ph['place']:.2f}, "
                  f"fusion {ph['fusion']:.2f}, generate {ph['generate']:.2f}, machine code "
                  f"{ph['machine_code']:.2f} = typing+lowering {ph['compiler_lock'] - ph['llvm_lock']:.2f} "
                  f"+ llvm {ph['llvm_lock']:.2f})  invoke {r['first_invoke_s']:.3f}  kernels {r['kernels']} "
                  f"modules {r['distinct_modules']} shapes-only {r['distinct_ignoring_numbers']}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
