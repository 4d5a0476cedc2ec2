"""`tflite-jit inspect`, `compare`, `experiment` and `plan`: output parsed back, exit codes, and
one-line errors (never a traceback)."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
import types

import numpy as np
import pytest

from tflite_jit.tools.cli import main
from tflite_jit.tools.compare import compare_output


def test_inspect_text(capsys) -> None:
    assert main(["inspect", "tiny_convnet"]) == 0
    out = capsys.readouterr().out
    assert "serving_default (subgraph 0): inputs ['input'] outputs ['output_0']" in out
    assert "input     0 'serving_default_input:0' [1, 64, 64, 3] float32" in out
    assert "Op histogram: CONV_2D=4" in out
    assert "reference: 14/14 ops" in out and "numba_cpu:" in out


def test_inspect_json_quantized(capsys) -> None:
    from tflite_jit.tools.models import ZOO  # noqa: F401  (the zoo spec syntax is what is tested)

    assert main(["inspect", "tiny_convnet", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    sg = info["subgraphs"][0]
    assert sg["op_histogram"]["CONV_2D"] == 4 and sg["tensor_types"]["float32"] >= 1
    assert info["backends"]["reference"]["supported_ops"] == sg["ops"]
    assert info["signatures"][0]["key"] == "serving_default"


def test_inspect_reports_quantization(tmp_path, capsys) -> None:
    from tflite_jit.quantizer import quantize
    from tflite_jit.tools.models import tiny_convnet

    rng = np.random.default_rng(0)
    q = quantize(tiny_convnet(), [[rng.uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)] for _ in range(2)],
                 inference_input_type=np.int8, inference_output_type=np.int8)
    p = tmp_path / "q.tflite"
    p.write_bytes(q)
    assert main(["inspect", str(p), "--json"]) == 0
    sg = json.loads(capsys.readouterr().out)["subgraphs"][0]
    assert sg["quantized_tensors"] > 0 and "quantization" in sg["inputs"][0]
    assert sg["inputs"][0]["dtype"] == "int8"
    if importlib.util.find_spec("ai_edge_litert") is not None:  # integer outputs: bit-exact rate, exit code
        rc = main(["compare", str(p), "--trials=1", "--json", "--backend=reference"])
        res = json.loads(capsys.readouterr().out)
        assert rc == (0 if res["ok"] else 1) and "bit_exact_rate" in res["outputs"][0]


def test_compare_passes(capsys) -> None:
    pytest.importorskip("ai_edge_litert")
    assert main(["compare", "tiny_convnet", "--trials=2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["ok"] and res["outputs"][0]["max_rel_error"] <= 1e-4


def test_compare_fails_with_exit_1(capsys, monkeypatch) -> None:
    pytest.importorskip("ai_edge_litert")
    from tflite_jit.interpreter import Interpreter

    real = Interpreter.get_tensor
    monkeypatch.setattr(Interpreter, "get_tensor", lambda self, i, si=0: real(self, i, si) + np.float32(0.01))
    assert main(["compare", "tiny_convnet", "--trials=1"]) == 1
    out = capsys.readouterr().out
    assert "FAIL output 33 'StatefulPartitionedCall:0'" in out and out.rstrip().endswith("correctness contract")


def test_compare_output_integer_bit_exact_rate() -> None:
    a = np.array([1, 2, 3, 4], np.int8)
    r = compare_output(a, np.array([1, 2, 3, 5], np.int8))
    assert not r["ok"] and r["bit_exact_rate"] == 0.75 and r["max_abs_error"] == 1
    assert compare_output(a, a.copy())["ok"]
    assert not compare_output(a, a.astype(np.int16))["ok"]
    f = np.array([1.0, np.nan], np.float32)
    assert compare_output(f, f.copy())["ok"]
    assert not compare_output(f, np.array([1.0, 0.0], np.float32))["ok"]


def test_experiment_writes_csv_json_and_table(tmp_path, capsys) -> None:
    out_dir = tmp_path / "exp"
    assert main(["experiment", "--models", "tiny_convnet", "--strategies", "none", "epilogue", "--runs", "3",
                 "--warmup", "1", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["model", "strategy", "kernels"]
    with open(out_dir / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["strategy"] for r in rows] == ["none", "epilogue"]
    none, epi = rows
    assert int(epi["kernels"]) < int(none["kernels"]) and int(epi["max_cluster"]) > 1
    assert float(epi["bytes_moved_mb"]) < float(none["bytes_moved_mb"])
    assert float(none["max_rel_err_vs_none"]) == 0 and float(epi["max_rel_err_vs_none"]) <= 1e-4
    assert all(int(r["runs"]) == 3 and float(r["median_us"]) > 0 for r in rows)
    data = json.loads((out_dir / "results.json").read_text())
    assert data["meta"]["runs"] == 3 and data["rows"][1]["cluster_sizes"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "plot skipped: matplotlib is not installed" in out
    else:
        assert (out_dir / "results.png").stat().st_size > 0


@pytest.mark.parametrize("argv,msg", [
    (["experiment", "--models", "tiny_convnet", "--strategies", "nope", "--runs", "1"], "unknown fusion strategy"),
    (["experiment", "--models", "tiny_convnet:bogus=1", "--runs", "1"], "bogus"),
    (["experiment", "--models", "nope.tflite"], "Could not open 'nope.tflite'"),
    (["inspect", "missing.tflite"], "Could not open 'missing.tflite'"),
    (["compare", "missing.tflite"], "Could not open 'missing.tflite'"),
])
def test_errors_are_one_line(capsys, argv, msg) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"tflite-jit {argv[0]}: error: ") and msg in err[0]


def test_invalid_model_file(tmp_path, capsys) -> None:
    p = tmp_path / "bad.tflite"
    p.write_bytes(b"not a flatbuffer at all")
    for cmd in ("inspect", "compare"):
        assert main([cmd, str(p)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "not a valid Flatbuffer" in err[0]


def test_plan_calls_explain(monkeypatch) -> None:
    seen = []
    mod = types.ModuleType("tflite_jit.tools.plan")
    mod.plan_main = lambda argv: seen.append(argv) or 3
    monkeypatch.setitem(sys.modules, "tflite_jit.tools.plan", mod)
    assert main(["plan", "m.tflite", "--fusion=rules", "--help"]) == 3
    assert seen == [["m.tflite", "--fusion=rules", "--help"]]


def test_plan_missing_module_is_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "tflite_jit.tools.plan", None)  # import fails
    assert main(["plan", "m.tflite"]) == 1
    assert capsys.readouterr().err.strip() == (
        "tflite-jit plan: error: `plan` is not available in this build (tflite_jit.tools.plan is missing)")


def test_no_traceback_from_the_command_line(tmp_path) -> None:
    r = subprocess.run([sys.executable, "-m", "tflite_jit.tools.cli", "inspect", str(tmp_path / "x.tflite")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([sys.executable, "-m", "tflite_jit.tools.cli", "compare"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
