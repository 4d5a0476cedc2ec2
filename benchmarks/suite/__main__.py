"""The real-model benchmark suite: one command to make the models, one to measure them.

    python -m benchmarks.suite make [--tf-python PATH] [--only FAMILY,...]
    python -m benchmarks.suite run [--threads 1,2] [--runs 20] [--models NAME,...] [--resume]
        [--harness isolated|shared]
    python -m benchmarks.suite report
    python -m benchmarks.suite skeletons [--dest tests/data/suite]

`make` needs tensorflow-cpu and tf_keras (`pip install tensorflow-cpu tf_keras`) in the Python
given by --tf-python (default: this one); the generator (generate.py) imports no tflite_jit, so
that Python needs nothing else. It also downloads the mediapipe 0.10.14 wheel with pip and copies
its published .tflite models out of it. `run` needs this project with its test extra
(ai-edge-litert). Models, results and the report go to $TFLITE_JIT_SUITE_DIR (default
~/.cache/tflite_jit/suite): report.md and report.json, every model a row. Each engine is timed
in a worker process of its own, one engine at a time (benchmarks/isolated.py; `--harness shared`
is the old one-process loop, whose 2-thread numbers are the engines' thread pools competing).

`skeletons` writes the weight-less, gzip'ed copies that tests/test_suite_placement.py checks in CI
(tflite_jit.tools.skeleton).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_DIR = Path(os.environ.get("TFLITE_JIT_SUITE_DIR", "~/.cache/tflite_jit/suite")).expanduser()
SKELETON_DIR = ROOT / "tests" / "data" / "suite"
#: a model whose subprocess runs longer than this is a row with a timeout error
MODEL_TIMEOUT_S = 3600


def _manifest(d: Path) -> dict[str, dict]:
    p = d / "manifest.json"
    if not p.exists():
        raise SystemExit(f"no suite in {d}: run `python -m benchmarks.suite make` first")
    return {m["name"]: m for m in json.loads(p.read_text())["models"]}


def cmd_make(a: argparse.Namespace) -> None:
    cmd = [a.tf_python, str(HERE / "generate.py"), "--out", str(a.dir)]
    if a.only:
        cmd += ["--only", a.only]
    if a.force:
        cmd.append("--force")
    if a.wheel_dir:
        cmd += ["--wheel-dir", a.wheel_dir]
    raise SystemExit(subprocess.call(cmd))


def _models(a: argparse.Namespace) -> list[str]:
    man = _manifest(a.dir)
    names = [n for n, m in sorted(man.items()) if m.get("status") == "ok"]
    if a.models:
        want = a.models.split(",")
        unknown = [w for w in want if w not in man]
        if unknown:
            raise SystemExit(f"not in the suite: {', '.join(unknown)}")
        names = [n for n in names if n in want]
    return names


def cmd_run(a: argparse.Namespace) -> None:
    results = a.dir / "results.jsonl"
    done = set()
    if a.resume and results.exists():
        done = {json.loads(line)["model"] for line in results.read_text().splitlines() if line.strip()}
    elif results.exists() and not a.models:
        results.unlink()
    names = [n for n in _models(a) if n not in done]
    for i, name in enumerate(names):
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "benchmarks.suite", "_one", str(a.dir / f"{name}.tflite"),
               "--threads", a.threads, "--runs", str(a.runs), "--backend", a.backend, "--harness", a.harness]
        if a.fusion:
            cmd += ["--fusion", a.fusion]
        try:
            p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=MODEL_TIMEOUT_S)
            rows = [json.loads(line[len("ROW "):]) for line in p.stdout.splitlines() if line.startswith("ROW ")]
            if not rows:
                why = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
                rows = [{"model": name, "threads": int(t), "harness": a.harness,
                         "errors": {"process": f"exit {p.returncode}: {why}"}} for t in a.threads.split(",")]
        except subprocess.TimeoutExpired:
            rows = [{"model": name, "threads": int(t), "harness": a.harness,
                     "errors": {"process": f"timeout after {MODEL_TIMEOUT_S}s"}} for t in a.threads.split(",")]
        with open(results, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        ratios = " ".join(f"t{r['threads']}:{_ratio(r)}" for r in rows)
        print(f"[{i + 1}/{len(names)}] {name:34s} {ratios}  ({time.perf_counter() - t0:.0f}s)", flush=True)
    cmd_report(a)


def _ratio(r: dict) -> str:
    m = r.get("median_ms", {})
    if "tflite_jit" in m and "litert_xnnpack" in m:
        return f"{m['tflite_jit'] / m['litert_xnnpack']:.2f}x"
    return "error" if r.get("errors") else "-"


def cmd_one(a: argparse.Namespace) -> None:
    from benchmarks.suite.run import measure_safely

    for r in measure_safely(Path(a.path), [int(t) for t in a.threads.split(",")], a.runs, a.backend, a.fusion,
                            a.harness):
        print("ROW " + json.dumps(r), flush=True)


def cmd_report(a: argparse.Namespace) -> None:
    from benchmarks.suite import report

    results = a.dir / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    command = getattr(a, "command_line", None) or "python -m benchmarks.suite run"
    md, data = report.build(rows, _manifest(a.dir), command, a.note)
    report.write(str(a.dir / "report.md"), str(a.dir / "report.json"), md, data)
    print(f"report: {a.dir / 'report.md'} and report.json ({len(rows)} rows)")


def cmd_skeletons(a: argparse.Namespace) -> None:
    from tflite_jit.tools.skeleton import strip

    man = _manifest(a.dir)
    dest = Path(a.dest)
    dest.mkdir(parents=True, exist_ok=True)
    index = {}
    for name in _models(a):
        sk = strip((a.dir / f"{name}.tflite").read_bytes())
        (dest / f"{name}.tflite.gz").write_bytes(gzip.compress(sk, 9, mtime=0))
        index[name] = {k: man[name].get(k) for k in ("family", "mode", "source")}
    (dest / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in dest.glob("*.gz"))
    print(f"{len(index)} skeletons in {dest} ({total / 1024:.0f} KiB)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="models, results, report")
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="generate the models (needs tensorflow-cpu)")
    m.add_argument("--tf-python", default=sys.executable)
    m.add_argument("--only", default="")
    m.add_argument("--force", action="store_true")
    m.add_argument("--wheel-dir", default="", help="a folder already holding the mediapipe wheel")
    r = sub.add_parser("run", help="measure every model and write the report")
    r.add_argument("--threads", default="1,2")
    r.add_argument("--runs", type=int, default=20)
    r.add_argument("--models", default="")
    r.add_argument("--backend", default="numba")
    r.add_argument("--fusion", default="")
    r.add_argument("--harness", default="isolated", choices=("isolated", "shared"),
                   help="isolated: each engine in its own worker process, timed one at a time (default); "
                        "shared: one process, invokes interleaved (the old harness; pools compete at 2+ threads)")
    r.add_argument("--resume", action="store_true", help="keep results.jsonl and skip models in it")
    r.add_argument("--note", default="", help="a line printed at the top of the report")
    rep = sub.add_parser("report", help="rewrite report.md/json from results.jsonl")
    rep.add_argument("--note", default="")
    rep.add_argument("--command-line", default="")
    s = sub.add_parser("skeletons", help="write the CI skeletons of the suite")
    s.add_argument("--dest", default=str(SKELETON_DIR))
    s.add_argument("--models", default="")
    one = sub.add_parser("_one")  # internal: one model in its own process
    one.add_argument("path")
    one.add_argument("--threads", default="1,2")
    one.add_argument("--runs", type=int, default=20)
    one.add_argument("--backend", default="numba")
    one.add_argument("--fusion", default=None)
    one.add_argument("--harness", default="isolated")
    a = p.parse_args(argv)
    if a.cmd == "run":
        a.command_line = "python -m benchmarks.suite run " + " ".join(
            f"--{k} {v}" for k, v in (("threads", a.threads), ("runs", a.runs), ("harness", a.harness)))
    {"make": cmd_make, "run": cmd_run, "report": cmd_report, "skeletons": cmd_skeletons,
     "_one": cmd_one}[a.cmd](a)


if __name__ == "__main__":
    main()
