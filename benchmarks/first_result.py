"""Time to first result: LiteRT against tflite_jit cold, warm and on a retrained twin, each in a
fresh process (issue #14).

    python benchmarks/first_result.py [--models mobilenet_v2,face_landmark,efficientnet_b0_int8,tiny_convnet]
        [--jit background] [--eager-baseline] [--json out.json]
    python benchmarks/first_result.py --suite $TFLITE_JIT_SUITE_DIR [--suite-models a,b] [--cold-only] [--json out.json]

The machine is shared (2 cores, often a load average far above 2): besides wall-clock seconds,
each row records the process's own CPU seconds to its first result (`first_cpu_s`), which
contention inflates much less, and the 1-minute load average at its start.

Per model, each line is one fresh Python process timing `import` + constructor +
allocate_tensors() + set_tensor + the first invoke() (interpreter start-up itself excluded, the
same for both engines):
- litert: ai_edge_litert's Interpreter (XNNPACK, its default);
- cold: tflite_jit with an empty TFLITE_JIT_CACHE_DIR; the process then keeps invoking until no
  step waits for the background compiler and reports when that happened (`steady_s`, from the
  process start) and the invoke latency before (`first_invoke_ms`, on the reference tier) and
  after (`steady_ms`, median of 10);
- warm: the same model again on that cache;
- twin: the same architecture with other weights (zoo models: another seed; files: `retrained`,
  float constants scaled by 1.01, integer weights moved by one step and every scale by 1 %) on
  the cache the original filled: how much it has to compile again (`compiled_after_first`) and
  how long its first result takes;
- eager (with --eager-baseline): today's behaviour, everything compiled in allocate_tensors()
  on an empty cache — the full compile the steady-state target is measured against.
Models: zoo names (tflite_jit.tools.models), `NAME_int8` (quantized with tflite_jit.quantizer on
4 random samples), `face_landmark` (MediaPipe's file from /work/mpmodels or $MP_MODELS), or paths.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_CHILD = r"""
import time, os, resource
t0 = time.perf_counter()
load0 = os.getloadavg()[0]
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
import json, sys
engine, path, jit = sys.argv[1], sys.argv[2], sys.argv[3]
first_only = len(sys.argv) > 4 and sys.argv[4] == "first"
import numpy as np
if engine == "litert":
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=path)
else:
    from tflite_jit import Interpreter
    it = Interpreter(model_path=path, jit=jit)
t_import = time.perf_counter() - t0
it.allocate_tensors()
t_alloc = time.perf_counter() - t0
rng = np.random.default_rng(0)
for d in it.get_input_details():
    if d["dtype"] in (np.float32,):
        x = rng.uniform(-1, 1, d["shape"])
    elif d["dtype"] in (np.int32, np.int64):  # token ids, indices: small and non-negative
        x = rng.integers(0, 10, d["shape"])
    else:
        info = np.iinfo(d["dtype"])
        x = rng.integers(max(info.min, -100), min(info.max, 100), d["shape"])
    it.set_tensor(d["index"], x.astype(d["dtype"]))
t1 = time.perf_counter()
it.invoke()
out = it.get_tensor(it.get_output_details()[0]["index"])
t_first = time.perf_counter() - t0
r = {"import_s": t_import, "allocate_s": t_alloc - t_import, "first_s": t_first, "first_cpu_s": cpu(),
     "first_invoke_ms": (time.perf_counter() - t1) * 1e3, "loadavg": load0}
if engine != "litert" and first_only:
    r["at_first"] = it.jit_status()
elif engine != "litert":
    st = it.jit_status()
    r["at_first"] = st
    steady = t_first
    while st["pending"]:
        time.sleep(0.05)
        it.invoke()
        st = it.jit_status()
        steady = time.perf_counter() - t0
    r["steady_s"] = steady
    from tflite_jit.runtime import tiers
    # kernels compiled for this process (deferred loads of cached kernels are not compiles)
    r["compiled_after_first"] = tiers._service.submitted if tiers._service is not None else 0
    r["final"] = st
    r["steady_cpu_s"] = cpu()  # this process only: the compiler's CPU time is in another
lat = []
for _ in range(0 if first_only else 10):
    t = time.perf_counter(); it.invoke(); lat.append(time.perf_counter() - t)
r["steady_ms"] = float(np.median(lat)) * 1e3 if lat else None
print("RESULT " + json.dumps(r), flush=True)
if engine != "litert":  # the next measurement must not share the cores with our idle compilers
    from tflite_jit.runtime import tiers
    tiers.service().shutdown()
"""


def _mp_model(name: str) -> bytes:
    base = Path(os.environ.get("MP_MODELS", "/work/mpmodels"))
    return (base / f"{name}.tflite").read_bytes()


def build(name: str, twin: bool = False) -> bytes:
    """The model's bytes; `twin`: the same architecture with other weights."""
    from tflite_jit.tools import models

    int8 = name.endswith("_int8")
    base = name[:-5] if int8 else name
    if base in models.ZOO:
        data = models.build(base, seed=1 if twin else 0)
    else:
        data = Path(base).read_bytes() if os.path.exists(base) else _mp_model(base)
        if twin:
            data = retrained(data)
    if int8:
        from tflite_jit import Interpreter, quantizer

        d = Interpreter(model_content=data, backend="reference").get_input_details()[0]
        rng = np.random.default_rng(1 if twin else 0)
        data = quantizer.quantize(data, [[rng.uniform(-1, 1, d["shape"]).astype(np.float32)] for _ in range(4)])
    return data


def retrained(data: bytes, requantized: bool = True) -> bytes:
    """Same graph, other weights, as fine-tuning and re-quantization leave it: float constants
    scaled by 1.01; integer weights moved by -1/0/+1 and their scales (and their biases') by 1 %;
    with `requantized`, every activation scale moved by 1 % too, except the fixed output scales
    LiteRT requires (LOGISTIC's 1/256, TANH's 1/128, their int16 forms) and powers of two (an
    integer LSTM's cell state must have one)."""
    from tflite_jit.format.reader import load_bytes
    from tflite_jit.format.writer import write_model

    fixed = {np.float32(1 / 256), np.float32(1 / 128), np.float32(1 / 32768), np.float32(1 / 65536)}
    rng = np.random.default_rng(7)
    m = load_bytes(data)
    for sg in m.subgraphs:
        for t in sg.tensors:
            q = t.quantization
            if t.data is not None and t.data.dtype in (np.float32, np.float16) and t.data.size > 16:
                t.data = (t.data * t.data.dtype.type(1.01)).astype(t.data.dtype)
            elif t.data is not None and t.data.dtype in (np.int8, np.int16) and q is not None and t.data.size > 16:
                info = np.iinfo(t.data.dtype)
                moved = t.data.astype(np.int32) + rng.integers(-1, 2, t.data.shape)
                t.data = np.clip(moved, -info.max, info.max).astype(t.data.dtype)
                q.scales = (q.scales * np.float32(1.01)).astype(np.float32)
            elif t.data is not None and t.data.dtype in (np.int32, np.int64) and q is not None and q.scales.size:
                # a bias: its scale is input scale x weight scale, both moved
                q.scales = (q.scales * np.float32(1.01 * (1.01 if requantized else 1.0))).astype(np.float32)
            elif (requantized and t.data is None and q is not None and q.scales.size == 1 and q.scales[0] not in fixed
                  and not float(np.log2(q.scales[0])).is_integer()):  # an integer LSTM's power-of-two cell scale stays
                q.scales = (q.scales * np.float32(1.01)).astype(np.float32)
    return write_model(m)


def litert_accepts(path: str) -> bool:
    """Whether LiteRT prepares the model (a twin whose moved scales break one of its checks is
    made again with its activation scales kept)."""
    code = ("import sys; from ai_edge_litert.interpreter import Interpreter; "
            "Interpreter(model_path=sys.argv[1]).allocate_tensors()")
    return subprocess.run([sys.executable, "-c", code, path], capture_output=True, timeout=300).returncode == 0


def child(engine: str, path: str, cache: str, jit: str, first_only: bool = False, tolerate: bool = False) -> dict:
    env = {**os.environ, "TFLITE_JIT_CACHE_DIR": cache}
    argv = [sys.executable, "-c", _CHILD, engine, path, jit] + (["first"] if first_only else [])
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if r.returncode or not line:
        if tolerate:  # a suite sweep reports the failure in its row and goes on
            return {"error": (r.stderr.strip().splitlines() or ["no output"])[-1][:200]}
        raise SystemExit(f"{engine} {path}: {r.stderr[-3000:]}")
    return json.loads(line[0][7:])


def _twin_file(path: str, out: str) -> str:
    """Write `path`'s retrained twin to `out`: re-quantized if LiteRT accepts that, else with the
    activation scales kept. Returns which."""
    data = Path(path).read_bytes()
    Path(out).write_bytes(retrained(data, requantized=True))
    if litert_accepts(out):
        return "requantized"
    Path(out).write_bytes(retrained(data, requantized=False))
    return "weights" if litert_accepts(out) else "weights (LiteRT refuses it too)"


def _fmt(r: dict, key: str = "first_s") -> str:
    return r["error"] if "error" in r else f"{r[key]:.2f}"


def suite_sweep(directory: str, out_json: str | None, models: list[str] | None = None, cold_only: bool = False) -> None:
    """--suite: for every model of a generated suite (benchmarks/suite), each in a fresh process:
    LiteRT's first result; ours on an empty cache, then invoking until every kernel is in
    (`steady_s`); ours again on that cache (warm); and the model's retrained twin on that cache
    (its first result, and how many kernels it compiled). Every row is printed, failures
    included. `cold_only`: the first result on an empty cache only, compilers shut down at once."""
    manifest = json.loads((Path(directory) / "manifest.json").read_text())["models"]
    names = [m["name"] for m in manifest if m.get("status") == "ok" and (Path(directory) / f"{m['name']}.tflite").exists()]
    if models:
        names = [n for n in names if n in models]
    rows = []
    with tempfile.TemporaryDirectory(prefix="tj_first_") as tmp:
        for name in names:
            path = str(Path(directory) / f"{name}.tflite")
            cache = os.path.join(tmp, f"cache_{name}")
            row = {"model": name, "litert": child("litert", path, os.path.join(tmp, "unused"), "background", True, True)}
            row["cold"] = child("ours", path, cache, "background", cold_only, True)
            line = f"{name:<36} litert {_fmt(row['litert'])} | cold {_fmt(row['cold'])}"
            if "error" not in row["cold"]:
                c = row["cold"]
                line += f" (import {c['import_s']:.2f}, allocate {c['allocate_s']:.2f}, invoke {c['first_invoke_ms']:.0f} ms)"
                if not cold_only:
                    line += f", steady at {c['steady_s']:.1f} s ({c['steady_ms']:.2f} ms/invoke)"
            if not cold_only and "error" not in row["cold"]:
                row["warm"] = child("ours", path, cache, "background", True, True)
                twin = os.path.join(tmp, f"{name}_twin.tflite")
                row["twin_kind"] = _twin_file(path, twin)
                row["twin"] = child("ours", twin, cache, "background", False, True)
                t = row["twin"]
                line += f" | warm {_fmt(row['warm'])} | twin ({row['twin_kind']}) {_fmt(t)}"
                if "error" not in t:
                    line += f", {t['compiled_after_first']} kernels compiled"
                shutil.rmtree(cache, ignore_errors=True)
            rows.append(row)
            print(line, flush=True)
    print(summarize(rows), flush=True)
    if out_json:
        Path(out_json).write_text(json.dumps(rows, indent=1))


def markdown(rows: list[dict]) -> str:
    """The sweep as a Markdown table, every row (failures with their error)."""
    def cell(r: dict | None, key: str = "first_s", fmt: str = "{:.2f}") -> str:
        if r is None:
            return ""
        if "error" in r:
            return "error: " + r["error"].replace("|", "/")[:80]
        v = r.get(key)
        return "" if v is None else fmt.format(v)

    out = ["| model | LiteRT s | cold s | warm s | twin s | twin: kernels compiled | full speed after s "
           "| twin at full speed after s | invoke ms at full speed |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        c, t = r.get("cold"), r.get("twin")
        out.append(f"| {r['model']} | {cell(r.get('litert'))} | {cell(c)} | {cell(r.get('warm'))} | {cell(t)} "
                   f"| {cell(t, 'compiled_after_first', '{}')} | {cell(c, 'steady_s', '{:.1f}')} "
                   f"| {cell(t, 'steady_s', '{:.2f}')} | {cell(c, 'steady_ms', '{:.2f}')} |")
    return "\n".join(out)


def summarize(rows: list[dict]) -> str:
    """The sweep's summary lines: median / max / count over each target, per measurement."""
    out = []
    for key, field, target in (("cold", "first_s", 2.0), ("warm", "first_s", 0.5), ("twin", "first_s", 0.5),
                               ("cold", "steady_s", None), ("twin", "steady_s", None)):
        ok = [(r["model"], r[key][field]) for r in rows if key in r and "error" not in r[key] and r[key].get(field) is not None]
        if not ok:
            continue
        worst = max(ok, key=lambda x: x[1])
        label = f"{key} first result" if field == "first_s" else "steady state" if key == "cold" else \
            "twin at steady state (every cached kernel loaded)"
        over = f", over {target} s: {sum(v > target for _, v in ok)}" if target else ""
        out.append(f"{label}: {len(ok)} of {len(rows)} models, median {np.median([v for _, v in ok]):.2f} s, "
                   f"max {worst[1]:.2f} s ({worst[0]}){over}")
    twins = [r for r in rows if "twin" in r and "error" not in r["twin"]]
    if twins:
        comp = [r["model"] for r in twins if r["twin"]["compiled_after_first"]]
        out.append(f"twins compiling anything: {len(comp)} of {len(twins)}" + (f" ({', '.join(comp)})" if comp else ""))
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mobilenet_v2,face_landmark,efficientnet_b0_int8,tiny_convnet")
    p.add_argument("--jit", default="background")
    p.add_argument("--eager-baseline", action="store_true")
    p.add_argument("--json")
    p.add_argument("--suite", help="a generated suite's folder: every model cold (to steady state), warm and twin")
    p.add_argument("--suite-models", help="with --suite: only these (comma-separated names)")
    p.add_argument("--cold-only", action="store_true", help="with --suite: the cold first result only")
    p.add_argument("--markdown", help="with --suite: also write the table here; alone with --json: "
                                      "render an earlier sweep's JSON")
    a = p.parse_args()
    if a.suite:
        suite_sweep(a.suite, a.json, a.suite_models.split(",") if a.suite_models else None, a.cold_only)
    if a.markdown and a.json:  # the sweep's JSON (just written, or an earlier one) as a table
        rows = json.loads(Path(a.json).read_text())
        Path(a.markdown).write_text(markdown(rows) + "\n\n" + summarize(rows) + "\n")
    if a.suite or a.markdown:
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="tj_first_") as tmp:
        for name in a.models.split(","):
            paths = {}
            for twin in (False, True):
                paths[twin] = os.path.join(tmp, f"{os.path.basename(name)}{'_twin' if twin else ''}.tflite")
                Path(paths[twin]).write_bytes(build(name, twin))
            cache = os.path.join(tmp, f"cache_{os.path.basename(name)}")
            row = {"model": name, "litert": child("litert", paths[False], cache, a.jit)}
            row["cold"] = child("ours", paths[False], cache, a.jit)
            row["warm"] = child("ours", paths[False], cache, a.jit)
            row["twin"] = child("ours", paths[True], cache, a.jit)
            if a.eager_baseline:
                row["eager"] = child("ours", paths[False], cache + "_eager", "eager")
            rows.append(row)
            c, w, t = row["cold"], row["warm"], row["twin"]
            lr = row["litert"]
            line = (f"{name:<22} litert {lr['first_s']:.2f} s (cpu {lr['first_cpu_s']:.2f}) | cold {c['first_s']:.2f} s "
                    f"(cpu {c['first_cpu_s']:.2f}, load {c['loadavg']:.0f}; import {c['import_s']:.2f}, allocate "
                    f"{c['allocate_s']:.2f}, invoke {c['first_invoke_ms']:.0f} ms), steady at {c['steady_s']:.1f} s "
                    f"({c['steady_ms']:.1f} ms/invoke) | warm {w['first_s']:.2f} s (cpu {w['first_cpu_s']:.2f}) | "
                    f"twin {t['first_s']:.2f} s (cpu {t['first_cpu_s']:.2f}), {t['compiled_after_first']} kernels "
                    f"recompiled, steady at {t['steady_s']:.1f} s")
            if "eager" in row:
                e = row["eager"]
                line += f" | eager cold {e['first_s']:.1f} s (cpu {e['first_cpu_s']:.1f})"
            print(line, flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
