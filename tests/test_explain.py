"""The plan made visible: Interpreter.get_execution_plan() as plain data, rendered as text, JSON
and a self-contained HTML page with an SVG graph; `plan_main` (the `tflite-jit plan` command).

No Chromium is installed here (nor installable without downloading a browser build), so the HTML
and its SVG are checked with an XML parser: well-formed, one box per op, colours per backend,
cluster and partition outlines. A Chromium test runs when a binary is on PATH."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from tests.test_delegates import NumpyDevice, partitioned_model
from tflite_jit import Interpreter
from tflite_jit.delegates import Delegate
from tflite_jit.tools import models
from tflite_jit.tools.plan import colours, plan_main, render_html, render_json, render_svg, render_text

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def plan() -> dict:
    it = Interpreter(model_content=partitioned_model(),
                     experimental_delegates=[Delegate.from_backend(NumpyDevice())])
    it.allocate_tensors()
    return it.get_execution_plan(profile_runs=2)


@pytest.fixture(scope="module")
def fused_plan() -> dict:
    m = models.mobilenet_v2(input_size=32, alpha=0.35, num_classes=10)
    it = Interpreter(model_content=m, fusion="elementwise",
                     experimental_delegates=[Delegate.from_backend(NumpyDevice(names=("CONV_2D", "ADD")))])
    it.allocate_tensors()
    return it.get_execution_plan()


def test_plan_is_plain_data(plan: dict) -> None:
    assert json.loads(json.dumps(plan)) == plan  # only plain types
    assert [o["backend"] for o in plan["ops"]] == ["npdev", "npdev", "numba_cpu", "npdev", "npdev"]
    assert [o["partition"] for o in plan["ops"]] == [0, 0, None, 1, 1]
    assert plan["ops"][2]["reason"].startswith("npdev: npdev has no TANH kernel")
    delegated = [p for p in plan["partitions"] if p["delegated"]]
    assert [p["ops"] for p in delegated] == [[0, 1], [3, 4]]
    for p in delegated:
        assert p["predicted_s"] > 0 and p["measured_s"] > 0
        assert p["predicted_s"] == pytest.approx(p["device_s"] + p["transfer_s"])
        assert p["host_predicted_s"] > p["predicted_s"]
    assert plan["summary"] == {**plan["summary"], "ops": 5, "delegated_ops": 4, "delegated_partitions": 2}
    assert plan["backends"] == ["npdev", "numba_cpu", "reference"]
    assert plan["tensors"][plan["inputs"][0]]["shape"] == [2, 8]


def test_plan_before_allocation_is_a_value_error() -> None:
    it = Interpreter(model_content=partitioned_model())
    with pytest.raises(ValueError, match="call allocate_tensors"):
        it.get_execution_plan()
    it.allocate_tensors()
    plan = it.get_execution_plan()
    assert plan["delegates"] == [] and plan["summary_line"].endswith("(no delegates requested)")
    with pytest.raises(ValueError, match="Invalid subgraph index 3"):
        it.get_execution_plan(3)


def test_text(plan: dict) -> None:
    text = render_text(plan)
    assert text.splitlines()[0] == plan["summary_line"]
    assert "npdev" in text and "TANH#2" in text and "why not a preferred backend: npdev" in text


def test_json_roundtrip(plan: dict) -> None:
    assert json.loads(render_json(plan)) == plan


def test_svg_is_valid_and_shows_backends_clusters_and_partitions(fused_plan: dict) -> None:
    root = ET.fromstring(render_svg(fused_plan))
    assert root.tag == f"{SVG}svg"
    col = colours(fused_plan)
    boxes = [g.find(f"{SVG}rect") for g in root.iter(f"{SVG}g")]
    assert len(boxes) == len(fused_plan["ops"])
    for o, box in zip(fused_plan["ops"], boxes):
        assert box.get("fill") == col[o["backend"]]
    outlines = [r for r in root.iter(f"{SVG}rect") if r.get("fill") == "none"]
    dashed = [r for r in outlines if r.get("stroke-dasharray")]
    assert len(dashed) == sum(len(c["ops"]) > 1 for c in fused_plan["clusters"]) > 0
    assert len(outlines) - len(dashed) == fused_plan["summary"]["delegated_partitions"] > 0
    edges = list(root.iter(f"{SVG}line")) + list(root.iter(f"{SVG}path"))
    assert len(edges) > len(fused_plan["ops"]) - 2
    assert list(root.iter(f"{SVG}path"))  # residual connections bow around the boxes


def test_html_is_self_contained_and_well_formed(plan: dict, tmp_path: Path) -> None:
    html = render_html(plan, title="t <&>")
    root = ET.fromstring(html.split("\n", 1)[1])  # past the DOCTYPE line
    assert root.find(".//{http://www.w3.org/1999/xhtml}title").text == "t <&>"
    assert root.find(f".//{SVG}svg") is not None
    for bad in ("<script", "http://", "https://"):
        assert bad not in html.replace("http://www.w3.org/", "")
    assert plan["summary_line"].split(";")[0] in html


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
                    reason="no Chromium on this machine: the page is validated with an XML parser instead")
def test_html_renders_in_headless_chromium(plan: dict, tmp_path: Path) -> None:  # pragma: no cover
    exe = next(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b))
    page = tmp_path / "plan.html"
    page.write_text(render_html(plan))
    out = subprocess.run([exe, "--headless", "--disable-gpu", "--no-sandbox", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=60)
    assert "<svg" in out.stdout and "npdev" in out.stdout


# ---- tflite-jit plan ----------------------------------------------------------------------------

def test_plan_main_writes_each_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(partitioned_model())
    assert plan_main([str(model)]) == 0
    out = capsys.readouterr().out
    assert "(no delegates requested)" in out and "ADD#0" in out
    assert plan_main([str(model), "--format", "json", "--profile", "1", "--backend", "reference"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {o["backend"] for o in data["ops"]} == {"reference"}
    assert all(c["measured_s"] is not None for c in data["clusters"])
    page = tmp_path / "p.html"
    assert plan_main([str(model), "--format=html", "-o", str(page), "--fusion", "elementwise"]) == 0
    assert "wrote" in capsys.readouterr().err
    ET.fromstring(page.read_text().split("\n", 1)[1])


def test_plan_main_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_main([str(tmp_path / "missing.tflite")]) == 1
    assert "error: Could not open" in capsys.readouterr().err
    model = tmp_path / "m.tflite"
    model.write_bytes(partitioned_model())
    assert plan_main([str(model), "--delegate", "gpu"]) == 1
    assert "'opencl'" in capsys.readouterr().err
    assert plan_main([str(model), "--delegate", "opencl", "--delegate-option", "nokv"]) == 2
    assert plan_main([str(model), "--format", "pdf"]) == 2
    assert plan_main([str(model), "--delegate", "opencl", "--delegate-option", "precision=fp16"]) == 1
    assert "Unknown option 'precision'" in capsys.readouterr().err


def test_layout_handles_wide_and_deep_graphs() -> None:
    m = models.transformer_encoder(seq_len=8, d_model=16, num_heads=2, d_ff=32, num_layers=1, vocab=20)
    it = Interpreter(model_content=m, backend="reference")
    it.allocate_tensors()
    root = ET.fromstring(render_svg(it.get_execution_plan()))
    xs = {(float(g.find(f"{SVG}rect").get("x")), float(g.find(f"{SVG}rect").get("y")))
          for g in root.iter(f"{SVG}g")}
    assert len(xs) == len(it._get_ops_details())  # no two ops share a box position
    assert np.isfinite(float(root.get("width"))) and np.isfinite(float(root.get("height")))
