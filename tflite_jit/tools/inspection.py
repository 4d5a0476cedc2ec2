"""`tflite-jit inspect`: what a model contains and what each backend can run.

Static facts come from the reader's IR (no kernels run); backend support needs concrete shapes,
so the model is planned once on the reference backend (no compilation) and every backend is asked
`supports(op, env)` for every op — the same question the planner asks.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np


def _tensor(sg: Any, tid: int) -> dict[str, Any]:
    from tflite_jit.ir.model import numpy_type

    t = sg.tensors[tid]
    d: dict[str, Any] = {"index": tid, "name": t.name, "shape": [int(s) for s in t.shape],
                         "dtype": np.dtype(numpy_type(t.type)).name}
    if t.shape_signature is not None and list(t.shape_signature) != list(t.shape):
        d["shape_signature"] = [int(s) for s in t.shape_signature]
    q = t.quantization
    if q is not None and q.scales.size:
        d["quantization"] = {"scale": [float(s) for s in q.scales[:8]],
                             "zero_point": [int(z) for z in q.zero_points[:8]],
                             "channels": int(q.scales.size), "axis": int(q.quantized_dimension)}
    return d


def inspect_model(content: bytes) -> dict[str, Any]:
    """Everything `tflite-jit inspect` prints, as plain data."""
    from tflite_jit.format.reader import load_bytes
    from tflite_jit.ir.model import numpy_type

    model = load_bytes(content)
    out: dict[str, Any] = {"version": model.version, "description": model.description,
                           "size_bytes": len(content), "subgraphs": []}
    out["metadata"] = {k: _meta(v) for k, v in model.metadata.items()}
    out["signatures"] = [{"key": s.key, "subgraph": s.subgraph_index, "inputs": dict(s.inputs),
                          "outputs": dict(s.outputs)} for s in model.signatures]
    for si, sg in enumerate(model.subgraphs):
        types = Counter(np.dtype(numpy_type(t.type)).name for t in sg.tensors)
        quant = sum(1 for t in sg.tensors if t.quantization is not None and t.quantization.scales.size)
        out["subgraphs"].append({
            "index": si, "name": sg.name, "ops": len(sg.ops), "tensors": len(sg.tensors),
            "inputs": [_tensor(sg, i) for i in sg.inputs], "outputs": [_tensor(sg, i) for i in sg.outputs],
            "op_histogram": dict(Counter(op.name for op in sg.ops).most_common()),
            "tensor_types": dict(types.most_common()), "quantized_tensors": quant})
    out["backends"] = backend_support(content)
    return out


def _meta(v: bytes) -> str:
    try:
        s = bytes(v).decode("utf-8")
        if s.isprintable() and len(s) <= 80:
            return s
    except UnicodeDecodeError:
        pass
    return f"<{len(v)} bytes>"


def backend_support(content: bytes) -> dict[str, Any]:
    """Per backend: ops of subgraph 0 it supports (by op name) and the reasons for those it does not.
    A model that cannot be planned (unsupported op, bad shapes) reports the error instead."""
    from tflite_jit import Interpreter
    from tflite_jit.backends import registry
    from tflite_jit.runtime.executable import PlanEnv

    try:
        it = Interpreter(model_content=content, backend="reference", fusion="none")
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        return {"error": " ".join(str(e).split())}
    ex = it._interpreter.execs[0]
    env = PlanEnv(ex.sg, ex.attrs, ex.infos, 1, extra_ops=ex.context.custom_ops)
    backends, missing = registry.available()
    # a host backend that cannot be built is news; a device backend without a driver is normal
    note = "; ".join(f"{name} unavailable: {why}" for name, why in missing.items()
                     if not registry.find(name).device)
    out: dict[str, Any] = {}
    for b in backends:
        ok: Counter[str] = Counter()
        no: dict[str, str] = {}
        for op in ex.sg.ops:
            try:
                yes, why = b.supports(op, env)
            except Exception as e:  # a backend's check failing is itself a "no", with the reason
                yes, why = False, f"{type(e).__name__}: {e}"
            if yes:
                ok[op.name] += 1
            else:
                no.setdefault(op.name, why)
        if b.name in out:
            continue
        out[b.name] = {"supported_ops": sum(ok.values()), "total_ops": len(ex.sg.ops),
                       "supported": dict(ok), "unsupported": no}
    if note:
        out["note"] = note
    return out


def format_text(info: dict[str, Any], name: str) -> str:
    """The human-readable report."""
    lines = [f"Model: {name} ({info['size_bytes'] / 1e6:.3f} MB, schema version {info['version']})"]
    if info["description"]:
        lines.append(f"Description: {info['description']}")
    for k, v in info["metadata"].items():
        lines.append(f"Metadata: {k} = {v}")
    if info["signatures"]:
        lines.append("Signatures:")
        for s in info["signatures"]:
            lines.append(f"  {s['key']} (subgraph {s['subgraph']}): inputs {list(s['inputs'])} "
                         f"outputs {list(s['outputs'])}")
    for sg in info["subgraphs"]:
        lines.append(f"Subgraph {sg['index']} {sg['name']!r}: {sg['ops']} ops, {sg['tensors']} tensors "
                     f"({sg['quantized_tensors']} quantized)")
        for what in ("inputs", "outputs"):
            for t in sg[what]:
                q = t.get("quantization")
                qs = (f" quant scale={t['quantization']['scale'][0]:g} zero_point="
                      f"{t['quantization']['zero_point'][0]}" if q and q["channels"] == 1 else
                      f" quant per-channel({q['channels']}, axis {q['axis']})" if q else "")
                lines.append(f"  {what[:-1]:6} {t['index']:4} {t['name']!r} {t['shape']} {t['dtype']}{qs}")
        lines.append("  Op histogram: " + ", ".join(f"{k}={v}" for k, v in sg["op_histogram"].items()))
        lines.append("  Tensor types: " + ", ".join(f"{k}={v}" for k, v in sg["tensor_types"].items()))
    b = info["backends"]
    if "error" in b:
        lines.append(f"Backends: the model cannot be planned: {b['error']}")
    else:
        lines.append("Backends (subgraph 0):")
        for bname, d in b.items():
            if bname == "note":
                lines.append(f"  note: {d}")
                continue
            lines.append(f"  {bname}: {d['supported_ops']}/{d['total_ops']} ops")
            for op, why in d["unsupported"].items():
                lines.append(f"    cannot run {op}: {why}")
    return "\n".join(lines) + "\n"
