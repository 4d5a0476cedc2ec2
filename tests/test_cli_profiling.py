"""Op profiling: benchmark_model's tables (stdout and CSV) parsed back, per-op attribution inside
fused kernels, and the Chrome/Perfetto trace."""

from __future__ import annotations

import json
import re

import pytest

from tflite_jit import Interpreter
from tflite_jit.tools.cli import main
from tflite_jit.tools.models import tiny_convnet
from tflite_jit.tools.profiling import Profiler, boundary_bytes, op_weights

FAST = ["--graph=tiny_convnet", "--num_runs=4", "--min_secs=0", "--warmup_runs=1", "--warmup_min_secs=0",
        "--enable_op_profiling=true"]


def _section(text: str, start: str, end: str) -> str:
    i = text.index(start)
    return text[i:text.index(end, i)]


def _run_order_rows(block: str) -> list[list[str]]:
    table = _section(block, "Run Order", "Top by Computation Time")
    rows = [ln.split("\t")[1:] for ln in table.splitlines() if ln.startswith("\t") and "[node type]" not in ln]
    return [[c.strip() for c in r] for r in rows]


@pytest.fixture(scope="module")
def prepared():
    it = Interpreter(model_content=tiny_convnet(), fusion="epilogue")
    it.allocate_tensors()
    return it, it._interpreter.execs[0]


def test_stdout_tables_parse_back(capsys) -> None:
    assert main(["bench", *FAST]) == 0
    out = capsys.readouterr().out
    runs = _section(out, "Operator-wise Profiling Info for Regular Benchmark Runs:", "Delegate internal:")
    kern = _run_order_rows(runs)
    assert kern and all(len(r) == 8 for r in kern)
    assert any("+" in r[0] for r in kern), "epilogue fusion should show a fused CONV_2D+ADD kernel"
    for r in kern:
        float(r[1]), float(r[2])
        assert r[3].endswith("%") and r[4].endswith("%") and r[6] == "1" and re.fullmatch(r"\[.*\]:\d+", r[7])
    assert abs(float(kern[-1][4].rstrip("%")) - 100) < 0.01
    hdr = next(ln for ln in runs.splitlines() if "[node type]" in ln)
    assert hdr == "\t             [node type]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]"
    assert re.search(r"^Timings \(microseconds\): count=4 ", out, re.M)
    assert f"Number of nodes executed: {len(kern)}" in runs and f"{len(kern)} nodes observed" in out
    summary = _section(runs, "Summary by node type", "Timings")
    assert re.search(r"^\t +CONV_2D\t +\d+\t +[\d.]+\t +[\d.]+%\t +[\d.]+%\t +0\.000\t +\d+$", summary, re.M)
    ops_rows = _run_order_rows(out[out.index("Delegate internal:"):])
    assert all("+" not in r[0] for r in ops_rows) and len(ops_rows) > len(kern)
    # attribution conserves time: the ops of a kernel share exactly its time
    k_total = sum(float(r[2]) for r in kern)
    o_total = sum(float(r[2]) for r in ops_rows)
    assert o_total == pytest.approx(k_total, abs=0.002 + 0.001 * len(ops_rows))


def test_csv_to_file(tmp_path, capsys) -> None:
    path = tmp_path / "prof.csv"
    assert main(["bench", *FAST, "--op_profiling_output_mode=csv", f"--op_profiling_output_file={path}"]) == 0
    assert f"Op profile (csv) written to {path}" in capsys.readouterr().out
    text = path.read_text()
    assert "node type, first, avg_ms, %, cdf%, mem KB, times called, name" in text
    assert "node type, count, avg_ms, avg %, cdf %, mem KB, times called" in text
    rows = [ln.split(", ") for ln in text.splitlines() if ln.startswith("CONV_2D, ")]
    assert rows and all(len(r) == 8 or len(r) == 7 for r in rows)


def test_deprecated_csv_flag(tmp_path, capsys) -> None:
    path = tmp_path / "old.csv"
    assert main(["bench", *FAST, f"--profiling_output_csv_file={path}"]) == 0
    assert "Run Order" in path.read_text()


def test_chrome_trace(tmp_path, capsys) -> None:
    path = tmp_path / "trace.json"
    assert main(["bench", *FAST, "--op_profiling_output_mode=trace", f"--op_profiling_output_file={path}"]) == 0
    events = json.loads(path.read_text())["traceEvents"]
    x = [e for e in events if e["ph"] == "X"]
    kernels = [e for e in x if e["cat"] == "kernel"]
    ops_ = [e for e in x if e["cat"] == "op"]
    assert kernels and ops_ and all(e["dur"] >= 0 and e["ts"] >= 0 for e in x)
    assert {e["args"]["run"] for e in kernels} == {0, 1, 2, 3}
    # ops lie inside their kernel's span
    k0 = [e for e in kernels if e["args"]["run"] == 0]
    for k in k0:
        inside = [o for o in ops_ if o["args"]["run"] == 0 and o["args"]["op_index"] in k["args"]["ops"]]
        assert inside[0]["ts"] == pytest.approx(k["ts"])
        assert sum(o["dur"] for o in inside) == pytest.approx(k["dur"])


def test_weights_and_bytes(prepared) -> None:
    it, ex = prepared
    for step in ex.steps:
        w = op_weights(ex, step.cluster.ops)
        assert len(w) == len(step.cluster.ops) and sum(w) == pytest.approx(1.0) and min(w) >= 0
        assert boundary_bytes(ex, step.cluster) > 0
    fused = next(s for s in ex.steps if len(s.cluster.ops) > 1)
    w = op_weights(ex, fused.cluster.ops)
    assert w[0] > w[-1]  # the convolution outweighs the ADD it absorbed


def test_profiler_install_and_remove(prepared) -> None:
    it, ex = prepared
    calls = list(ex._calls)
    prof = Profiler(ex)
    prof.install()
    for _ in range(3):
        it.invoke()
        prof.end_run()
    prof.remove()
    assert ex._calls == calls and len(prof.runs) == 3
    d = prof.to_dict()
    assert d["runs"] == 3 and len(d["kernels"]) == len(ex.steps)
    assert all(k["times_called"] == 1 for k in d["kernels"])
