"""`tflite-jit compare`: ours against LiteRT on the same inputs, under the correctness contract.

The contract (shared/DESIGN.md, the rule tests/oracle.py asserts): a float output passes when
max|ours - LiteRT| <= 1e-4 * max(1, max|LiteRT|), with NaN and infinity positions equal; integer
and bool outputs must be bit-exact. The exit code is 0 only when every output of every trial
passes, so CI scripts can gate on it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tflite_jit.tools.models_spec import UserError

FLOAT_RTOL = 1e-4


def compare_output(ours: np.ndarray, theirs: np.ndarray, rtol: float = FLOAT_RTOL) -> dict[str, Any]:
    """Errors of one output and whether it meets the contract."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    r: dict[str, Any] = {"shape": list(theirs.shape), "dtype": theirs.dtype.name}
    if ours.shape != theirs.shape or ours.dtype != theirs.dtype:
        r.update(ok=False, why=f"ours {list(ours.shape)} {ours.dtype} vs LiteRT {list(theirs.shape)} {theirs.dtype}")
        return r
    if theirs.dtype.kind in "fc":
        nan_ok = np.array_equal(np.isnan(ours), np.isnan(theirs))
        fin = np.isfinite(theirs)
        inf = ~fin & ~np.isnan(theirs)
        inf_ok = np.array_equal(ours[inf], theirs[inf])
        err = float(np.max(np.abs(ours[fin].astype(np.complex128 if theirs.dtype.kind == "c" else np.float64)
                                  - theirs[fin]))) if fin.any() else 0.0
        if not np.isfinite(err):
            err = float("inf")
        scale = max(1.0, float(np.max(np.abs(theirs[fin])))) if fin.any() else 1.0
        r.update(max_abs_error=err, max_rel_error=err / scale, tolerance=rtol * scale)
        r["ok"] = bool(nan_ok and inf_ok and err <= rtol * scale)
        if not nan_ok:
            r["why"] = "NaN positions differ"
        elif not inf_ok:
            r["why"] = "infinities differ"
    else:
        if theirs.dtype.kind in "SO":
            same = np.array([a == b for a, b in zip(ours.ravel(), theirs.ravel())], dtype=bool)
            err = 0.0
        else:
            same = (ours == theirs).ravel()
            diff = np.abs(ours.astype(np.int64) - theirs.astype(np.int64)) if theirs.size else np.zeros(0)
            err = float(diff.max()) if diff.size else 0.0
        r.update(max_abs_error=err, bit_exact_rate=float(same.mean()) if same.size else 1.0,
                 ok=bool(same.all()))
    return r


def run_compare(content: bytes, *, trials: int = 3, seed: int = 0, backend: str | None = None,
                fusion: str | None = None, resolver: str = "builtin") -> dict[str, Any]:
    """Feed `trials` random input sets (benchmark_model's ranges) to both; per-output errors."""
    try:
        from ai_edge_litert import interpreter as lite
    except ImportError:
        raise UserError("compare needs ai-edge-litert (pip install ai-edge-litert)") from None
    from tflite_jit import Interpreter
    from tflite_jit.tools.measure import random_input

    rtype = {"builtin": lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
             "xnnpack": lite.OpResolverType.AUTO, "ref": lite.OpResolverType.BUILTIN_REF}[resolver]
    try:
        ours = Interpreter(model_content=content, backend=backend, fusion=fusion)
        ours.allocate_tensors()
    except (ValueError, RuntimeError, TypeError) as e:
        raise UserError(f"tflite_jit cannot run the model: {' '.join(str(e).split())}") from None
    try:
        theirs = lite.Interpreter(model_content=content, experimental_op_resolver_type=rtype)
        theirs.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        hint = ""
        if resolver == "builtin" and "unresolved custom op" in str(e):
            # MediaPipe's Convolution2DTransposeBias / argmax pooling: only XNNPACK has them
            hint = " (LiteRT's XNNPACK delegate has some custom ops its builtin resolver lacks: try --litert_resolver=xnnpack)"
        raise UserError(f"LiteRT cannot run the model: {' '.join(str(e).split())}{hint}") from None
    rng = np.random.default_rng(seed)
    ins = ours.get_input_details()
    outs = ours.get_output_details()
    results: list[dict[str, Any]] = [{"name": d["name"], "index": int(d["index"]), "trials": []} for d in outs]
    for _ in range(trials):
        values = [random_input(tuple(d["shape"]), d["dtype"], rng) for d in ins]
        for d, x in zip(ins, values):
            ours.set_tensor(d["index"], x)
            theirs.set_tensor(d["index"], x)
        try:
            ours.invoke()
        except (ValueError, RuntimeError) as e:
            raise UserError(f"tflite_jit failed to invoke: {' '.join(str(e).split())}") from None
        theirs.invoke()
        for r, d in zip(results, outs):
            r["trials"].append(compare_output(ours.get_tensor(d["index"]), theirs.get_tensor(d["index"])))
    for r in results:
        t = r["trials"]
        r["ok"] = all(x["ok"] for x in t)
        r["max_abs_error"] = max(x.get("max_abs_error", float("inf")) for x in t)
        if "max_rel_error" in t[0]:
            r["max_rel_error"] = max(x.get("max_rel_error", float("inf")) for x in t)
        if "bit_exact_rate" in t[0]:
            r["bit_exact_rate"] = float(np.mean([x.get("bit_exact_rate", 0.0) for x in t]))
        r["dtype"] = t[0]["dtype"]
        r["shape"] = t[0]["shape"]
        r["why"] = next((x["why"] for x in t if "why" in x), "")
    return {"ok": all(r["ok"] for r in results), "trials": trials, "seed": seed, "litert_resolver": resolver,
            "rtol": FLOAT_RTOL, "outputs": results}


def format_text(res: dict[str, Any], name: str) -> str:
    lines = [f"Comparing tflite_jit with LiteRT ({res['litert_resolver']}) on {name}: {res['trials']} random "
             f"input sets (seed {res['seed']})"]
    for r in res["outputs"]:
        if "bit_exact_rate" in r:
            fig = f"max abs error {r['max_abs_error']:g}, bit-exact {100 * r['bit_exact_rate']:.3f}%"
        else:
            fig = (f"max abs error {r['max_abs_error']:.3g}, max rel error {r.get('max_rel_error', 0):.3g} "
                   f"(limit {res['rtol']:g})")
        status = "PASS" if r["ok"] else "FAIL"
        why = f" ({r['why']})" if r["why"] else ""
        lines.append(f"  {status} output {r['index']} {r['name']!r} {r['shape']} {r['dtype']}: {fig}{why}")
    lines.append("PASS: all outputs meet the correctness contract" if res["ok"] else
                 "FAIL: some outputs differ from LiteRT beyond the correctness contract")
    return "\n".join(lines) + "\n"
