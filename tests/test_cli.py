"""`tflite-jit bench`: benchmark_model's flags, loop rules and output lines, parsed back."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from tflite_jit.tools.cli import main
from tflite_jit.tools.measure import Stats, random_input
from tflite_jit.tools.models import tiny_convnet

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
    r = subprocess.run([sys.executable, "-m", "tflite_jit.tools.cli", "bench", "--num_runs=abc"],
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


# -- benchmark_model's flag set ---------------------------------------------------------------------
IN = "serving_default_input:0"


def _bench(capsys, *flags: str) -> tuple[int, str, str]:
    rc = main(["bench", "--graph=tiny_convnet", *FAST, *flags])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_input_layer_shape_resizes_before_allocation(capsys) -> None:
    # reference backend: the resize semantics are the same, and a new shape needs no compile
    rc, out, _ = _bench(capsys, f"--input_layer={IN}", "--input_layer_shape=1,72,72,3", "--backend=reference")
    assert rc == 0 and "INFO: Input shapes: [1,72,72,3]" in out and "Inference timings in us" in out


@pytest.mark.parametrize("flags,msg", [
    ([f"--input_layer={IN},other"], "list all of them"),
    ([f"--input_layer={IN}", "--input_layer_shape=1,-1,64,3"], "-1 is not allowed"),
    ([f"--input_layer={IN}", "--input_layer_shape=1,64,64"], "rank 4"),
    ([f"--input_layer={IN}", "--input_layer_shape=1,32,32,3"], "Node number 10 (RESHAPE) failed to prepare"),
    ([f"--input_layer_value_range={IN.replace(':', '::')},0,5"], "integer inputs only"),
    (["--input_layer_value_range=nope,0,5"], "not an input of the model"),
    (["--signature_to_run_for=nope"], "Signature 'nope' not found"),
    (["--op_profiling_output_mode=proto"], "not supported"),
])
def test_bad_input_flags_fail_in_one_line(capsys, flags, msg) -> None:
    rc, out, err = _bench(capsys, *flags)
    assert rc == 1 and "INFO: Benchmarking failed." in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tflite-jit bench: error: ") and msg in lines[0], err


def test_value_file_feeds_raw_bytes_and_checks_size(tmp_path, capsys) -> None:
    good = tmp_path / "x.raw"
    good.write_bytes(np.full((1, 64, 64, 3), 0.25, np.float32).tobytes())
    rc, out, _ = _bench(capsys, f"--input_layer_value_files={IN.replace(':', '::')}:{good}")
    assert rc == 0
    bad = tmp_path / "short.raw"
    bad.write_bytes(b"\0" * 12)
    rc, _, err = _bench(capsys, f"--input_layer_value_files={IN.replace(':', '::')}:{bad}")
    assert rc == 1 and "has 12 bytes but the tensor [1, 64, 64, 3] float32 needs 49152" in err


def test_value_range_applies_to_integer_inputs() -> None:
    x = random_input((1000,), np.int32, np.random.default_rng(0), (5, 7))
    assert x.dtype == np.int32 and set(np.unique(x)) == {5, 6, 7}
    assert random_input((1000,), np.int8, np.random.default_rng(0)).min() >= -127


def test_dry_run_list_signatures_and_no_effect_flags(capsys) -> None:
    rc, out, _ = _bench(capsys, "--dry_run=true", "--use_nnapi=false")
    assert rc == 0 and [int(s) for s in re.findall(r"^INFO: count=(\d+)", out, re.M)] == [0, 0]
    assert "--use_nnapi has no effect" in out
    rc, out, _ = _bench(capsys, "--list_signatures=true")
    assert rc == 0 and "Signature key: serving_default, inputs: ['input'], outputs: ['output_0']" in out
    assert "Inference timings" not in out


def test_peak_memory_and_footprint_lines(capsys) -> None:
    rc, out, _ = _bench(capsys, "--report_peak_memory_footprint=true", "--memory_footprint_check_interval_ms=5")
    assert rc == 0
    m = re.search(r"^INFO: Memory footprint delta from the start of the tool \(MB\): init=(\S+) overall=(\S+)$",
                  out, re.M)
    assert m and float(m.group(2)) >= 0 or m
    assert re.search(r"^INFO: Overall peak memory footprint \(MB\) via periodic monitoring: [\d.e+]+$", out, re.M)


def test_use_gpu_without_a_delegate_says_so_and_runs_on_cpu(capsys, monkeypatch) -> None:
    import tflite_jit

    def unavailable(name, options=None):
        raise OSError("no OpenCL platform")

    monkeypatch.setattr(tflite_jit, "load_delegate", unavailable)
    rc, out, _ = _bench(capsys, "--use_gpu=true")
    assert rc == 0
    lines = [ln for ln in out.splitlines() if "GPU acceleration is unavailable" in ln]
    assert len(lines) == 1 and "no OpenCL platform" in lines[0] and "running on the CPU" in lines[0]


def test_json_to_stdout_moves_the_log_to_stderr(capsys) -> None:
    rc, out, err = _bench(capsys, "--json=-")
    assert rc == 0 and "INFO: Inference timings in us:" in err
    data = json.loads(out)
    assert data["inference"]["count"] == 3 and data["init_us"] > 0
    assert data["plan"]["kernels"] >= 1 and set(data["plan"]["compile"]) == {
        "compiled", "loaded_from_cache", "already_in_memory", "not_compiled"}
    assert {"median", "p5", "p95", "std"} <= set(data["inference"])


def test_compile_and_cache_line(capsys) -> None:
    rc, out, _ = _bench(capsys)
    assert re.search(r"^INFO: tflite_jit: compile: \d+ kernels compiled, \d+ loaded from the compile cache", out,
                     re.M)
