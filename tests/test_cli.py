"""`tflite-jit bench`: benchmark_model's flags, loop rules and output lines, parsed back."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tflite_jit.cli import Stats, main
from tflite_jit.models import tiny_convnet

FAST = ["--num_runs=3", "--min_secs=0", "--warmup_runs=1", "--warmup_min_secs=0"]


def _timings(out: str) -> dict[str, float]:
    m = re.search(r"^INFO: Inference timings in us: (.*)$", out, re.M)
    assert m, out
    return {k.strip(): float(v) for k, v in (part.split(":") for part in m.group(1).split(","))}


def test_no_arguments_runs_the_demo_model(capsys) -> None:
    assert main(["bench", *FAST]) == 0
    out = capsys.readouterr().out
    assert "INFO: STARTING!" in out and "demo model" in out
    t = _timings(out)
    assert set(t) == {"Init", "First inference", "Warmup (avg)", "Inference (avg)"}
    assert all(v > 0 for v in t.values())
    stats = re.findall(r"^INFO: count=(\d+)", out, re.M)
    assert [int(s) for s in stats] == [1, 3]


def test_graph_flag_and_compare_litert(tmp_path, capsys) -> None:
    p = tmp_path / "m.tflite"
    p.write_bytes(tiny_convnet())
    assert main(["bench", f"--graph={p}", "--num_threads=1", "--compare_litert=true", *FAST]) == 0
    out = capsys.readouterr().out
    assert f"INFO: Graph: [{p}]" in out and "INFO: Num threads: [1]" in out
    assert re.search(r"Median latency tflite_jit / LiteRT: [\d.]+x", out)


def test_missing_model_fails_like_benchmark_model(tmp_path, capsys) -> None:
    assert main(["bench", f"--graph={tmp_path / 'nope.tflite'}"]) == 1
    assert "INFO: Benchmarking failed." in capsys.readouterr().out


def test_bad_flag_value_is_one_line_not_a_traceback() -> None:
    r = subprocess.run([sys.executable, "-m", "tflite_jit.cli", "bench", "--num_runs=abc"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "num_runs" in r.stderr


@pytest.mark.parametrize("values,line", [
    ([], "count=0"),
    ([5, 5], "count=2 curr=5(all same)"),
    ([10, 20, 30], "count=3 first=10 curr=30 min=10 max=30 avg=20 std=8"),
])
def test_stats_line_formats(values, line) -> None:
    s = Stats()
    for v in values:
        s.add(v)
    assert s.line() == line
