"""`tflite-jit` on a model with two signatures on two subgraphs, integer tensors and metadata."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tflite_jit.format.builder import ModelBuilder
from tflite_jit.tools.cli import main

FAST = ["--num_runs=2", "--min_secs=0", "--warmup_runs=1", "--warmup_min_secs=0"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    mb = ModelBuilder()
    g = mb.subgraph("add")
    x = g.input("x", [2, 3], np.int32)
    (o,) = g.apply("ADD", [x, x], out_name="twice")
    g.output(o)
    h = mb.subgraph("mul")
    y = h.input("y", [4], np.int32)
    (p,) = h.apply("MUL", [y, y], out_name="square")
    h.output(p)
    mb.signature("add", {"x": x}, {"out": o}, 0)
    mb.signature("mul", {"y": y}, {"out": p}, 1)
    mb.add_metadata("min_runtime_version", b"1.5.0")
    path = tmp_path_factory.mktemp("sig") / "two.tflite"
    path.write_bytes(mb.build())
    return str(path)


def test_several_signatures_need_a_choice(model, capsys) -> None:
    assert main(["bench", f"--graph={model}", *FAST]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "tflite-jit bench: error: The model has 2 signatures (add, mul): choose one with --signature_to_run_for"


@pytest.mark.parametrize("key", ["add", "mul"])
def test_signature_to_run_for(model, capsys, key) -> None:
    name = {"add": "x", "mul": "y"}[key]
    assert main(["bench", f"--graph={model}", f"--signature_to_run_for={key}",
                 f"--input_layer_value_range={name},3,3", "--json=-", *FAST]) == 0
    cap = capsys.readouterr()
    assert f"INFO: Signature to run: [{key}]" in cap.err
    assert json.loads(cap.out)["inference"]["count"] == 2


def test_list_signatures(model, capsys) -> None:
    assert main(["bench", f"--graph={model}", "--list_signatures=true"]) == 0
    out = capsys.readouterr().out
    assert re.findall(r"^INFO: Signature key: (\w+)", out, re.M) == ["add", "mul"]


def test_inspect_shows_signatures_metadata_and_types(model, capsys) -> None:
    assert main(["inspect", model]) == 0
    out = capsys.readouterr().out
    assert "Metadata: min_runtime_version = 1.5.0" in out
    assert "mul (subgraph 1): inputs ['y'] outputs ['out']" in out
    assert "Subgraph 1 'mul': 1 ops" in out and "Tensor types: int32=2" in out


def test_compare_integer_outputs_bit_exact(model, capsys) -> None:
    pytest.importorskip("ai_edge_litert")
    assert main(["compare", model, "--trials=2"]) == 0
    assert "PASS output 1 'twice' [2, 3] int32: max abs error 0, bit-exact 100.000%" in capsys.readouterr().out


def test_profiling_a_runner_signature_says_why_not(model, capsys) -> None:
    assert main(["bench", f"--graph={model}", "--signature_to_run_for=mul", "--enable_op_profiling=true",
                 *FAST]) == 0
    out = capsys.readouterr().out
    assert "no op profile is collected" in out and "Operator-wise" not in out
