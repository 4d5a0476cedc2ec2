"""`tflite-jit plan`: the execution plan (`tflite_jit.explain.execution_plan`) as text, JSON, SVG
or a self-contained HTML page.

The HTML page: an inline SVG of the op graph, one box per op coloured by backend, fusion clusters
outlined with a dashed line and delegated partitions with a solid one. The layout is a small
layered (Sugiyama style) layout written here: ops in layers by longest path from the graph inputs,
ordered within a layer by the mean position of their producers. No graph library on PyPI renders
SVG without Graphviz's native `dot` binary, which is not a Python dependency we can require.

`plan_main(argv)` is the `tflite-jit plan MODEL [--format text|json|html] [--output FILE]
[--delegate opencl] [--delegate-option KEY=VALUE] [--backend B] [--fusion F] [--profile N]`
command.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from html import escape
from typing import Any

from tflite_jit.delegates import load_delegate
from tflite_jit.interpreter import Interpreter
from tflite_jit.planner import format_seconds
from tflite_jit.runtime.folding import FOLDED

_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
            "#9c755f", "#bab0ac")
_FIXED_COLOURS = {"numba_cpu": "#4e79a7", "reference": "#bab0ac", "opencl": "#59a14f",
                  "alias (no copy)": "#ffffff", FOLDED: "#eeeeee"}


def render_json(plan: dict[str, Any]) -> str:
    return json.dumps(plan, indent=1, sort_keys=False)


def render_text(plan: dict[str, Any]) -> str:
    """A readable table: one row per step (cluster or delegated partition), then the partition
    candidates that were not delegated and why."""
    lines = [plan["summary_line"], ""]
    ops = plan["ops"]
    lines.append(f"{'step':>4}  {'backend':<16} {'part':>4}  {'predicted':>9}  {'measured':>9}  ops")
    steps: dict[int, list[dict[str, Any]]] = {}
    for c in plan["clusters"]:
        steps.setdefault(c["step"], []).append(c)
    parts = {p["id"]: p for p in plan["partitions"] if p["id"] is not None}
    for si in sorted(steps):
        cs = steps[si]
        pid = cs[0]["partition"]
        if pid is not None:
            p = parts[pid]
            pred, meas = p["predicted_s"], p["measured_s"]
        else:
            pred, meas = cs[0]["predicted_s"], cs[0]["measured_s"]
        parts_ = [" + ".join(f"{ops[i]['name']}#{i}" for i in c["ops"]) for c in cs]
        if len(parts_) > 8:  # a long partition: its ends and how many clusters lie between
            parts_ = [*parts_[:4], f"... {len(parts_) - 6} more clusters ...", *parts_[-2:]]
        desc = " | ".join(parts_)
        lines.append(f"{si:>4}  {cs[0]['backend']:<16} {'-' if pid is None else pid:>4}  "
                     f"{format_seconds(pred):>9}  {format_seconds(meas):>9}  {desc}")
        reason = cs[0]["reason"]
        if reason:
            lines.append(f"{'':>4}  why not a preferred backend: {reason}")
    rejected = [p for p in plan["partitions"] if not p["delegated"]]
    if rejected:
        lines += ["", "Partition candidates not delegated:"]
        for p in rejected:
            lines.append(f"  {p['backend']}: ops {_ranges(p['ops'])}: {p['reason']}")
    return "\n".join(lines) + "\n"


def _ranges(ops_: Sequence[int]) -> str:
    out, start, prev = [], None, None
    for i in sorted(ops_):
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = i
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(out)


def colours(plan: dict[str, Any]) -> dict[str, str]:
    """A colour per backend: fixed for the known ones, then the palette in order."""
    out: dict[str, str] = {}
    names = list(dict.fromkeys(list(plan["backends"]) + [o["backend"] for o in plan["ops"]]))
    free = [c for c in _PALETTE if c not in _FIXED_COLOURS.values()]
    for name in names:
        out[name] = _FIXED_COLOURS.get(name) or free[len([k for k in out if k not in _FIXED_COLOURS]) % len(free)]
    return out


_W, _H, _GX, _GY, _PAD = 150, 34, 24, 36, 20


def layout(plan: dict[str, Any]) -> dict[int, tuple[float, float]]:
    """Top-left corner of each op's box: layer = longest path from the graph inputs, order in a
    layer = mean x of the producers (one barycentre sweep), ties by op index."""
    ops = plan["ops"]
    producer = {t: o["index"] for o in ops for t in o["outputs"]}
    layer: dict[int, int] = {}
    for o in ops:  # ops are in a topological order (ir.validate checks it)
        preds = [producer[t] for t in o["inputs"] if t >= 0 and t in producer and producer[t] != o["index"]]
        layer[o["index"]] = 1 + max((layer.get(p, 0) for p in preds), default=-1)
    rows: dict[int, list[int]] = {}
    for oi, li in layer.items():
        rows.setdefault(li, []).append(oi)
    pos: dict[int, tuple[float, float]] = {}
    xs: dict[int, float] = {}
    for li in sorted(rows):
        row = rows[li]

        def bary(oi: int) -> tuple[float, int]:
            ps = [xs[producer[t]] for t in ops[oi]["inputs"] if t >= 0 and t in producer and producer[t] in xs]
            return (sum(ps) / len(ps) if ps else float(oi), oi)

        row.sort(key=bary)
        for k, oi in enumerate(row):
            xs[oi] = float(k)
            pos[oi] = (_PAD + k * (_W + _GX), _PAD + 30 + li * (_H + _GY))
    return pos


def render_svg(plan: dict[str, Any]) -> str:
    """The op graph as standalone SVG (valid XML)."""
    ops = plan["ops"]
    pos = layout(plan)
    col = colours(plan)
    tensors = plan["tensors"]
    producer = {t: o["index"] for o in ops for t in o["outputs"]}
    width = max((x for x, _ in pos.values()), default=0) + _W + 2 * _PAD
    height = max((y for _, y in pos.values()), default=0) + _H + 2 * _PAD
    width = max(width, 420) + 90  # room for edges bowing out to the right
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="11">']
    # legend
    lx = _PAD
    for name, c in col.items():
        if not any(o["backend"] == name for o in ops):
            continue
        out.append(f'<rect x="{lx}" y="{_PAD - 12}" width="12" height="12" fill="{c}" stroke="#333"/>'
                   f'<text x="{lx + 16}" y="{_PAD - 2}">{escape(name)}</text>')
        lx += 28 + 7 * len(name)
    # partitions (solid) and multi-op clusters (dashed): bounding boxes of their ops
    for p in plan["partitions"]:
        if p["delegated"]:
            out.append(_outline(pos, p["ops"], col.get(p["backend"], "#000"), 8, "", 2.5,
                                f"partition {p['id']} on {p['backend']}: {len(p['ops'])} ops, predicted "
                                f"{format_seconds(p['predicted_s'])}, measured {format_seconds(p['measured_s'])}"))
    for c in plan["clusters"]:
        if len(c["ops"]) > 1:
            out.append(_outline(pos, c["ops"], "#222", 4, ' stroke-dasharray="4 3"', 1.2,
                                f"cluster {c['id']} ({c['backend']}): {' + '.join(c['op_names'])}"))
    # edges
    for o in ops:
        x2, y2 = pos[o["index"]]
        for t in o["inputs"]:
            if t < 0 or t not in producer or producer[t] == o["index"]:
                continue
            x1, y1 = pos[producer[t]]
            tip = f"<title>{escape(_tensor_label(tensors[t]))}</title>"
            if y2 - y1 <= _H + _GY or x1 != x2:
                out.append(f'<line x1="{x1 + _W / 2:.0f}" y1="{y1 + _H:.0f}" x2="{x2 + _W / 2:.0f}" '
                           f'y2="{y2:.0f}" stroke="#777" stroke-width="1">{tip}</line>')
            else:  # skips layers in the same column: bow out to the right instead of crossing boxes
                bow = 30 + 4 * min(20, int((y2 - y1) // (_H + _GY)))
                ya, yb = y1 + _H / 2, y2 + _H / 2
                out.append(f'<path d="M {x1 + _W:.0f} {ya:.0f} C {x1 + _W + bow:.0f} {ya:.0f}, '
                           f'{x2 + _W + bow:.0f} {yb:.0f}, {x2 + _W:.0f} {yb:.0f}" fill="none" stroke="#777" '
                           f'stroke-width="1">{tip}</path>')
    # nodes
    for o in ops:
        x, y = pos[o["index"]]
        fill = col.get(o["backend"], "#ccc")
        tip = f"op {o['index']} {o['name']} on {o['backend']}"
        if o["partition"] is not None:
            tip += f" (partition {o['partition']})"
        if o["reason"]:
            tip += f"\nnot on a preferred backend: {o['reason']}"
        label = f"{o['name'][:18]} #{o['index']}"
        out.append(f'<g><title>{escape(tip)}</title><rect x="{x:.0f}" y="{y:.0f}" width="{_W}" height="{_H}" '
                   f'rx="5" fill="{fill}" stroke="#333"/><text x="{x + _W / 2:.0f}" y="{y + _H / 2 + 4:.0f}" '
                   f'text-anchor="middle" fill="{_ink(fill)}">{escape(label)}</text></g>')
    out.append("</svg>")
    return "\n".join(out)


def _tensor_label(t: dict[str, Any]) -> str:
    shape = "?" if t["shape"] is None else "x".join(str(d) for d in t["shape"]) or "scalar"
    return f"tensor {t['index']} {t['name']}: {t['dtype']} {shape}"


def _outline(pos: dict[int, tuple[float, float]], ops_: Sequence[int], colour: str, pad: int, extra: str,
             width: float, title: str) -> str:
    xs = [pos[i][0] for i in ops_]
    ys = [pos[i][1] for i in ops_]
    x0, y0 = min(xs) - pad, min(ys) - pad
    w, h = max(xs) + _W + pad - x0, max(ys) + _H + pad - y0
    return (f'<rect x="{x0:.0f}" y="{y0:.0f}" width="{w:.0f}" height="{h:.0f}" rx="8" fill="none" '
            f'stroke="{colour}" stroke-width="{width}"{extra}><title>{escape(title)}</title></rect>')


def _ink(fill: str) -> str:
    r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    return "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#fff"


def render_html(plan: dict[str, Any], title: str = "tflite_jit execution plan") -> str:
    """A self-contained page (no scripts, no external resources; also well-formed XML)."""
    text = render_text(plan)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>',
        f"<title>{escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1em}pre{background:#f6f6f6;padding:.5em;"
        "overflow-x:auto}.svg{overflow:auto;border:1px solid #ddd}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p id="summary">{escape(plan["summary_line"])}</p>',
        "<p>Boxes are ops coloured by backend (hover for details); dashed outlines are fusion "
        "clusters, solid outlines delegated partitions.</p>",
        f'<div class="svg">{render_svg(plan)}</div>',
        f"<h2>Steps</h2><pre>{escape(text)}</pre>",
        "</body></html>",
    ]) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "html": render_html}


# ---- tflite-jit plan ----------------------------------------------------------------------------

def plan_main(argv: Sequence[str] | None = None) -> int:
    """`tflite-jit plan MODEL ...`: prints or writes the model's execution plan. 0 on success,
    1 when the model cannot be planned (the message says why), 2 on bad arguments."""
    ap = argparse.ArgumentParser(prog="tflite-jit plan", description="Show how tflite_jit runs a model: "
                                 "backend per op, fusion clusters, delegated partitions and why.")
    ap.add_argument("model", help=".tflite file")
    ap.add_argument("--format", choices=sorted(RENDERERS), default="text")
    ap.add_argument("--output", "-o", help="write here instead of stdout")
    ap.add_argument("--delegate", action="append", default=[], help="a tflite_jit delegate, e.g. opencl")
    ap.add_argument("--delegate-option", action="append", default=[], metavar="KEY=VALUE",
                    help="an option for the delegates (device, allow_fp16, min_nodes_per_partition, "
                         "max_delegated_partitions)")
    ap.add_argument("--backend", default=None, help="host backend: numba or reference")
    ap.add_argument("--fusion", default=None, help="fusion strategy (tflite_jit.fusion)")
    ap.add_argument("--num-threads", type=int, default=None)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="invoke N times (zero inputs) and add measured times per step")
    try:
        args = ap.parse_args(list(argv) if argv is not None else None)
    except SystemExit as e:
        return int(e.code or 0)
    options: dict[str, str] = {}
    for kv in args.delegate_option:
        if "=" not in kv:
            print(f"tflite-jit plan: error: --delegate-option {kv!r} is not KEY=VALUE", file=sys.stderr)
            return 2
        k, v = kv.split("=", 1)
        options[k.strip()] = v.strip()
    try:
        delegates = [load_delegate(name, options) for name in args.delegate]
        it = Interpreter(model_path=args.model, experimental_delegates=delegates, num_threads=args.num_threads,
                         backend=args.backend, fusion=args.fusion)
        it.allocate_tensors()
        plan = it.get_execution_plan(profile_runs=args.profile)
    except (ValueError, RuntimeError, OSError) as e:
        print(f"tflite-jit plan: error: {e}", file=sys.stderr)
        return 1
    title = f"tflite_jit execution plan: {args.model}"
    text = render_html(plan, title) if args.format == "html" else RENDERERS[args.format](plan)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"tflite-jit plan: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
