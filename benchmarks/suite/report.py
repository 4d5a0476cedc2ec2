"""The suite's report: every model a row (failures included), per thread count, in Markdown and
JSON, with the summary lines the performance claims are made from."""

from __future__ import annotations

import json
import math
from typing import Any

OURS, XNN, BUILTIN = "tflite_jit", "litert_xnnpack", "litert_builtin"
#: ours / XNNPACK above this counts as "far behind" in the summary
FAR_BEHIND = 2.5
#: quantization mode -> summary group
GROUPS = {"f32": "float", "fp16": "float", "published": "float", "dynamic": "dynamic-range",
          "int8": "int8", "int16x8": "int16x8"}


def _geomean(xs: list[float]) -> float | None:
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def enrich(row: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    m = row.get("median_ms", {})
    row = dict(row, family=meta.get("family", "?"), mode=meta.get("mode", "?"))
    row["group"] = GROUPS.get(row["mode"], row["mode"])
    if row["mode"] == "published" and meta.get("int8"):
        row["group"] = "int8"
    if OURS in m and XNN in m:
        row["ours_vs_xnnpack"] = m[OURS] / m[XNN]
    if OURS in m and BUILTIN in m:
        row["ours_vs_builtin"] = m[OURS] / m[BUILTIN]
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    timed = [r for r in rows if "ours_vs_xnnpack" in r]
    out: dict[str, Any] = {"models": len(rows), "timed": len(timed),
                           "ours_failed": sorted(r["model"] for r in rows if OURS in r.get("errors", {})),
                           "litert_failed": sorted(r["model"] for r in rows
                                                   if BUILTIN in r.get("errors", {}) or XNN in r.get("errors", {}))}
    out["geomean_vs_xnnpack"] = _geomean([r["ours_vs_xnnpack"] for r in timed])
    for g in sorted({r["group"] for r in timed}):
        out[f"geomean_vs_xnnpack_{g}"] = _geomean([r["ours_vs_xnnpack"] for r in timed if r["group"] == g])
    if timed:
        w = max(timed, key=lambda r: r["ours_vs_xnnpack"])
        out["worst"] = {"model": w["model"], "ours_vs_xnnpack": w["ours_vs_xnnpack"]}
    vs_b = [r for r in rows if "ours_vs_builtin" in r]
    out["slower_than_builtin"] = sorted(r["model"] for r in vs_b if r["ours_vs_builtin"] > 1.0)
    out["far_behind_xnnpack"] = sorted(r["model"] for r in timed if r["ours_vs_xnnpack"] > FAR_BEHIND)
    out["with_reference_ops"] = sum(1 for r in rows if r.get("reference_ops"))
    dry = [r["dry_placement"].get("matches_real_plan") for r in rows if "dry_placement" in r]
    out["placement_check"] = f"{sum(1 for d in dry if d)}/{len(dry)}"
    conf = [r["conformance"] for r in rows if "conformance" in r]
    out["conformance_checked"] = len(conf)
    return out


def _ms(m: dict[str, float], k: str) -> str:
    return f"{m[k]:.2f}" if k in m else "—"


def _conf(r: dict[str, Any]) -> str:
    c = r.get("conformance")
    if c is None:
        return "—"
    if "error" in c:
        return "MISMATCH: " + c["error"]
    if c["exact"]:
        return "bit-exact"
    parts = []
    if c["int_elements"]:
        parts.append(f"{c['int_mismatches']}/{c['int_elements']} differ (max {c['max_lsb']} LSB)")
    if c["max_rel"]:
        noise = r.get("xnnpack_vs_builtin", {}).get("max_rel")
        parts.append(f"rel {c['max_rel']:.1e}" + (f" (XNNPACK {noise:.1e})" if noise is not None else ""))
    return ", ".join(parts) or "differs"


def _ref_ops(r: dict[str, Any]) -> str:
    ref = r.get("reference_ops")
    if ref is None:
        return "—"
    if not ref:
        return f"0/{r['ops']}"
    names = ", ".join(f"{k}×{v}" if v > 1 else k for k, v in sorted(ref.items()))
    return f"{sum(ref.values())}/{r['ops']}: {names}"


def _status(r: dict[str, Any]) -> str:
    errs = r.get("errors", {})
    return "; ".join(f"{k}: {v}" for k, v in errs.items())


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


#: the timing harness named in a row (rows without one predate the isolated harness)
HARNESS_TEXT = {
    "isolated": "each engine in its own worker process, timed one engine at a time in rotating rounds, "
                "after the previous engine's thread pool stopped spinning (benchmarks/isolated.py)",
    "shared": "the three engines in one process, invokes interleaved (benchmarks/side_by_side.py "
              "time_engines): at 2+ threads their thread pools compete for the cores, so only the "
              "1-thread column is a clean measurement",
}


def harness_line(rows: list[dict[str, Any]]) -> str:
    """Which harness made the numbers, from the rows themselves (a merged results file can mix)."""
    used = sorted({r.get("harness", "shared") for r in rows})
    return "Timing harness: " + "; ".join(f"{h}: {HARNESS_TEXT.get(h, h)}" for h in used) + "."


def markdown(rows_by_threads: dict[int, list[dict[str, Any]]], summaries: dict[int, dict[str, Any]],
             command: str, note: str = "") -> str:
    lines = ["# tflite_jit benchmark suite", ""]
    if note:
        lines += [note, ""]
    lines += [f"Command: `{command}`", "",
              harness_line([r for rows in rows_by_threads.values() for r in rows]), "", "## Summary", "",
              "| | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in summaries) + " |",
              "|---|" + "---:|" * len(summaries)]

    def line(label: str, f) -> None:
        lines.append(f"| {label} | " + " | ".join(f(s) for s in summaries.values()) + " |")

    line("models (timed against XNNPACK)", lambda s: f"{s['models']} ({s['timed']})")
    line("geomean ours / XNNPACK, all", lambda s: _fmt(s["geomean_vs_xnnpack"]))
    groups = sorted({k[len("geomean_vs_xnnpack_"):] for s in summaries.values() for k in s
                     if k.startswith("geomean_vs_xnnpack_")})
    for g in groups:
        line(f"geomean ours / XNNPACK, {g} models", lambda s, g=g: _fmt(s.get(f"geomean_vs_xnnpack_{g}")))
    line("worst model (ours / XNNPACK)",
         lambda s: f"{s['worst']['model']} ({s['worst']['ours_vs_xnnpack']:.2f})" if "worst" in s else "—")
    line("slower than LiteRT builtin kernels", lambda s: str(len(s["slower_than_builtin"])))
    line(f"more than {FAR_BEHIND}× XNNPACK", lambda s: str(len(s["far_behind_xnnpack"])))
    line("models with ops on `reference`", lambda s: str(s["with_reference_ops"]))
    line("CI's cheap placement equals the real plan", lambda s: s.get("placement_check", "—"))
    line("failed in tflite_jit", lambda s: str(len(s["ours_failed"])))
    line("failed in LiteRT", lambda s: str(len(s["litert_failed"])))
    for t, rows in rows_by_threads.items():
        lines += ["", f"## {t} thread{'s' if t > 1 else ''}", "",
                  "| model | mode | ours ms | XNNPACK ms | builtin ms | ours/XNN | ours/builtin | "
                  "first run s | ops on reference | conformance vs builtin | errors |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---|---|---|"]
        for r in sorted(rows, key=lambda r: r["model"]):
            m = r.get("median_ms", {})
            first = (r["prepare_s"] + r.get("first_invoke_s", 0.0)) if "prepare_s" in r else None
            lines.append(f"| {r['model']} | {r['mode']} | {_ms(m, OURS)} | {_ms(m, XNN)} | {_ms(m, BUILTIN)} | "
                         f"{_fmt(r.get('ours_vs_xnnpack'))} | {_fmt(r.get('ours_vs_builtin'))} | "
                         f"{_fmt(first, '.1f')} | {_ref_ops(r)} | {_conf(r)} | {_status(r).replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def build(results: list[dict[str, Any]], manifest: dict[str, dict[str, Any]], command: str,
          note: str = "") -> tuple[str, dict[str, Any]]:
    by_t: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        by_t.setdefault(int(r["threads"]), []).append(enrich(r, manifest.get(r["model"], {})))
    by_t = dict(sorted(by_t.items()))
    sums = {t: summary(rows) for t, rows in by_t.items()}
    refused = [dict(m, name=n) for n, m in manifest.items() if m.get("status", "ok") != "ok"]
    md = markdown(by_t, sums, command, note)
    if refused:
        md += "\n## Not generated (the TensorFlow converter refused or the builder failed)\n\n"
        md += "\n".join(f"- {m['name']}: {m.get('status')}: {m.get('error', '')}" for m in refused) + "\n"
    data = {"command": command, "note": note, "harness": sorted({r.get("harness", "shared") for r in results}),
            "summary": {str(t): s for t, s in sums.items()},
            "rows": {str(t): rows for t, rows in by_t.items()}, "not_generated": refused}
    return md, data


def write(md_path: str, json_path: str, md: str, data: dict[str, Any]) -> None:
    with open(md_path, "w") as f:
        f.write(md)
    with open(json_path, "w") as f:
        json.dump(data, f, indent=1)
