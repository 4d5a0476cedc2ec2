"""`tflite-jit experiment`: every model x fusion strategy, measured the same way.

Why interleaved: the machine's speed drifts (other processes, frequency scaling, caches). Timing
strategy A for a while and then B puts that drift into the A/B difference; running one invoke of
each strategy per round, in an order rotated every round, spreads it over all of them alike. The
spread reported is the interquartile range, which one slow outlier cannot move.

Per row: kernel count and cluster sizes (structure), estimated bytes moved (every tensor crossing
a kernel boundary, tflite_jit.tools.profiling.boundary_bytes: what fusion saves), compile time (the
first allocate_tensors, with how many kernels came from the compile cache), latency median and
IQR, and the max relative error of the outputs against the `none` strategy on the same inputs.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tflite_jit.tools.measure import env_summary, kernel_counts, kernel_snapshot, random_input
from tflite_jit.tools.models_spec import UserError, load_model

COLUMNS = ["model", "strategy", "kernels", "ops", "mean_cluster", "max_cluster", "bytes_moved_mb",
           "compile_s", "compiled", "cached", "shared", "median_us", "p25_us", "p75_us", "iqr_us", "runs",
           "max_rel_err_vs_none"]


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    if a.dtype.kind not in "fciub" or b.dtype.kind not in "fciub":
        return 0.0 if np.array_equal(a, b) else float("inf")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    fin = np.isfinite(b64)
    if not fin.any():
        return 0.0
    err = float(np.max(np.abs(a64[fin] - b64[fin])))
    return err / max(1.0, float(np.max(np.abs(b64[fin]))))


def _prepare(content: bytes, strategy: str, backend: str | None, inputs: list[np.ndarray] | None,
             seed: int) -> dict[str, Any]:
    from tflite_jit import Interpreter
    from tflite_jit.tools.profiling import boundary_bytes

    before = kernel_snapshot()
    t0 = time.perf_counter()
    try:
        it = Interpreter(model_content=content, backend=backend, fusion=strategy)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise UserError(f"strategy {strategy}: {' '.join(str(e).split())}") from None
    compile_s = time.perf_counter() - t0
    ex = it._interpreter.execs[0]
    details = it.get_input_details()
    if inputs is None:
        rng = np.random.default_rng(seed)
        inputs = [random_input(tuple(d["shape"]), d["dtype"], rng) for d in details]
    sizes = [len(s.cluster.ops) for s in ex.steps]
    counts = kernel_counts(ex, before)
    return {"it": it, "details": details, "inputs": inputs, "compile_s": compile_s,
            "kernels": len(ex.steps), "ops": len((ex.sg.source or ex.sg).ops), "sizes": sizes,
            "bytes_moved": sum(boundary_bytes(ex, s.cluster) for s in ex.steps),
            "compiled": counts["compiled"], "cached": counts["loaded_from_cache"],
            "shared": counts["already_in_memory"]}


def _invoke(p: dict[str, Any]) -> int:
    it = p["it"]
    for d, x in zip(p["details"], p["inputs"]):
        it.set_tensor(d["index"], x)
    t0 = time.perf_counter_ns()
    it.invoke()
    return (time.perf_counter_ns() - t0) // 1000


def _outputs(p: dict[str, Any]) -> list[np.ndarray]:
    _invoke(p)
    return [p["it"].get_tensor(d["index"]) for d in p["it"].get_output_details()]


def run_experiment(models: Sequence[str], strategies: Sequence[str], *, runs: int = 20, warmup: int = 2,
                   backend: str | None = None, seed: int = 0,
                   log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """One row (COLUMNS) per model x strategy."""
    from tflite_jit.fusion import strategies as known

    for s in strategies:
        if s not in known():
            raise UserError(f"unknown fusion strategy {s!r}; known: {', '.join(known())}")
    from tflite_jit.backends import registry

    registry.host_chain(backend or "numba")  # one-time imports stay out of the first strategy's compile time
    rows = []
    for spec in models:
        content, name = load_model(spec)
        log(f"{name}: compiling {len(strategies)} strategies ...")
        base = _prepare(content, "none", backend, None, seed)
        inputs = base["inputs"]
        preps = {s: (base if s == "none" else _prepare(content, s, backend, inputs, seed)) for s in strategies}
        ref = _outputs(base)
        errs = {s: max((_rel_err(o, r) for o, r in zip(_outputs(p), ref)), default=0.0)
                for s, p in preps.items()}
        for p in preps.values():
            for _ in range(warmup):
                _invoke(p)
        times: dict[str, list[int]] = {s: [] for s in strategies}
        order = list(strategies)
        for r in range(runs):
            k = r % len(order)
            for s in order[k:] + order[:k]:  # rotate: no strategy always goes first
                times[s].append(_invoke(preps[s]))
        for s in strategies:
            p, t = preps[s], np.asarray(times[s], dtype=np.float64)
            p25, med, p75 = (float(x) for x in np.percentile(t, [25, 50, 75])) if t.size else (0.0,) * 3
            rows.append({"model": name, "strategy": s, "kernels": p["kernels"], "ops": p["ops"],
                         "mean_cluster": round(float(np.mean(p["sizes"])) if p["sizes"] else 0.0, 3),
                         "max_cluster": max(p["sizes"], default=0),
                         "bytes_moved_mb": round(p["bytes_moved"] / 1e6, 4),
                         "compile_s": round(p["compile_s"], 4), "compiled": p["compiled"], "cached": p["cached"],
                         "shared": p["shared"],
                         "median_us": med, "p25_us": p25, "p75_us": p75, "iqr_us": p75 - p25, "runs": int(t.size),
                         "max_rel_err_vs_none": errs[s], "cluster_sizes": p["sizes"]})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    hdr = (f"{'model':<28} {'strategy':<12} {'kernels':>7} {'max_cl':>6} {'MB moved':>9} {'compile s':>9} "
           f"{'median us':>10} {'IQR us':>8} {'vs none':>7} {'rel err':>9}")
    lines = [hdr, "-" * len(hdr)]
    base = {r["model"]: r["median_us"] for r in rows if r["strategy"] == "none"}
    for r in rows:
        speed = f"{base[r['model']] / r['median_us']:.2f}x" if r["model"] in base and r["median_us"] else "-"
        lines.append(f"{r['model'][:28]:<28} {r['strategy']:<12} {r['kernels']:>7} {r['max_cluster']:>6} "
                     f"{r['bytes_moved_mb']:>9.3f} {r['compile_s']:>9.2f} {r['median_us']:>10.0f} "
                     f"{r['iqr_us']:>8.0f} {speed:>7} {r['max_rel_err_vs_none']:>9.2g}")
    return "\n".join(lines)


def write_results(rows: list[dict[str, Any]], out_dir: str, meta: dict[str, Any]) -> list[str]:
    """results.csv, results.json and (with matplotlib) results.png; returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    p = os.path.join(out_dir, "results.csv")
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    paths.append(p)
    p = os.path.join(out_dir, "results.json")
    with open(p, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
    paths.append(p)
    png = plot(rows, os.path.join(out_dir, "results.png"))
    if png:
        paths.append(png)
    return paths


def plot(rows: list[dict[str, Any]], path: str) -> str | None:
    """Median latency (IQR whiskers) and bytes moved per strategy, one group per model; None
    when matplotlib (an optional extra) is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    models = list(dict.fromkeys(r["model"] for r in rows))
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4 + 0.2 * len(models)))
    width = 0.8 / max(len(strategies), 1)
    for k, s in enumerate(strategies):
        rs = [next((r for r in rows if r["model"] == m and r["strategy"] == s), None) for m in models]
        xs = [i + k * width for i in range(len(models))]
        med = [r["median_us"] if r else 0 for r in rs]
        err = [[r["median_us"] - r["p25_us"] if r else 0 for r in rs], [r["p75_us"] - r["median_us"] if r else 0
                                                                       for r in rs]]
        axes[0].bar(xs, med, width, yerr=err, label=s, capsize=2)
        axes[1].bar(xs, [r["bytes_moved_mb"] if r else 0 for r in rs], width, label=s)
    for ax, title in zip(axes, ("median latency (us), IQR whiskers", "estimated MB moved per invoke")):
        ax.set_xticks([i + width * (len(strategies) - 1) / 2 for i in range(len(models))])
        ax.set_xticklabels(models, rotation=15, fontsize=8)
        ax.set_title(title)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def meta() -> dict[str, Any]:
    """Where the numbers came from."""
    import numba

    return env_summary() | {"numba": numba.__version__,
                            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
