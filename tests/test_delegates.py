"""The delegates API (LiteRT's load_delegate / experimental_delegates call shape) and delegated
partitions in the executable, with a NumPy device double: results equal the CPU's, partitions
run through compile_partition, a failing device falls back to the host with the reason kept,
and the one-line summary appears once when delegates were requested."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

import tflite_jit
from tests.oracle import assert_close
from tflite_jit import Interpreter
from tflite_jit.backends.base import Cluster, CompileEnv, Kernel, Partition
from tflite_jit.backends.reference.backend import ReferenceBackend
from tflite_jit.delegates import Delegate, load_delegate
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.tools import models


class NumpyDevice(ReferenceBackend):
    """A 'device' that is NumPy underneath: non-host, with a transfer cost, counting partitions."""

    name = "npdev"
    is_host = False

    def __init__(self, names: Sequence[str] = ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "RELU"),
                 fail: bool = False):
        self.names = set(names)
        self.fail = fail
        self.compiled: list[Partition] = []

    def supports(self, op: Any, env: CompileEnv) -> tuple[bool, str]:
        return (True, "") if op.name in self.names else (False, f"npdev has no {op.name} kernel")

    def cost(self, cluster: Cluster, env: CompileEnv) -> float:
        return super().cost(cluster, env) / 20.0

    def transfer_seconds(self, nbytes: int) -> float:
        return 1e-7 + nbytes / 1e11

    def compile_partition(self, partition: Partition, env: CompileEnv) -> Kernel:
        if self.fail:
            raise RuntimeError("device out of memory")
        self.compiled.append(partition)
        return super().compile_partition(partition, env)


def partitioned_model() -> bytes:
    # x -> ADD c -> RELU -> TANH -> MUL c -> ADD c   (TANH stays on the host)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (2, 8), np.float32)
    c = g.const("c", np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8))
    a = g.apply("ADD", [x, c])[0]
    r = g.apply("RELU", [a])[0]
    t = g.apply("TANH", [r])[0]
    m = g.apply("MUL", [t, c])[0]
    y = g.apply("ADD", [m, c])[0]
    g.output(y)
    return mb.build()


def _run(it: Interpreter, x: np.ndarray) -> np.ndarray:
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


X = np.random.default_rng(0).uniform(-2, 2, (2, 8)).astype(np.float32)


def test_delegated_partitions_match_the_cpu() -> None:
    dev = NumpyDevice()
    it = Interpreter(model_content=partitioned_model(), experimental_delegates=[Delegate.from_backend(dev)])
    ref = Interpreter(model_content=partitioned_model(), backend="reference")
    assert_close(_run(it, X), _run(ref, X))
    ex = it._interpreter.execs[0]
    assert [p.clusters[0].ops[0] for p in dev.compiled] == [0, 3]
    assert [s["backend"] for s in ex.plan] == ["npdev", "numba_cpu", "npdev"]
    assert [s["partition"] for s in ex.plan] == [0, None, 1]
    # a tensor inside a partition stays on the device: no host buffer, as LiteRT's delegates
    with pytest.raises(ValueError, match="Tensor data is null"):
        it.get_tensor(ex.sg.ops[0].outputs[0])


def test_mobilenet_with_a_device_matches_reference() -> None:
    m = models.mobilenet_v2(input_size=32, alpha=0.35, num_classes=10)
    dev = NumpyDevice()
    it = Interpreter(model_content=m, experimental_delegates=[Delegate.from_backend(dev)])
    ref = Interpreter(model_content=m, backend="reference")
    x = np.random.default_rng(1).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    assert_close(_run(it, x), _run(ref, x))
    plan = it.get_execution_plan()
    assert plan["summary"]["delegated_ops"] > len(plan["ops"]) // 2
    assert len(dev.compiled) == plan["summary"]["delegated_partitions"]


def test_device_failure_falls_back_to_the_host_with_the_reason() -> None:
    it = Interpreter(model_content=partitioned_model(),
                     experimental_delegates=[Delegate.from_backend(NumpyDevice(fail=True))])
    ref = Interpreter(model_content=partitioned_model(), backend="reference")
    assert_close(_run(it, X), _run(ref, X))
    plan = it.get_execution_plan()
    assert plan["summary"]["delegated_ops"] == 0
    assert all(o["backend"] != "npdev" for o in plan["ops"])
    assert "device out of memory" in plan["ops"][0]["reason"]
    assert plan["summary_line"].startswith("tflite_jit: WARNING: delegate npdev runs 0 of 5 ops")


def test_partition_limits_from_delegate_options() -> None:
    d = Delegate.from_backend(NumpyDevice(), {"min_nodes_per_partition": "3"})
    it = Interpreter(model_content=partitioned_model(), experimental_delegates=[d])
    _run(it, X)
    plan = it.get_execution_plan()
    assert plan["summary"]["delegated_partitions"] == 0
    assert "min_nodes_per_partition=3" in plan["ops"][0]["reason"]
    d = Delegate.from_backend(NumpyDevice(), {"max_delegated_partitions": 1})
    it = Interpreter(model_content=partitioned_model(), experimental_delegates=[d])
    _run(it, X)
    assert it.get_execution_plan()["summary"]["delegated_partitions"] == 1


def test_summary_line_printed_once_only_with_delegates(capsys: pytest.CaptureFixture[str]) -> None:
    it = Interpreter(model_content=partitioned_model(),
                     experimental_delegates=[Delegate.from_backend(NumpyDevice())])
    _run(it, X)
    _run(it, X)
    err = capsys.readouterr().err
    assert err.count("INFO: tflite_jit: delegate npdev runs 4 of 5 ops (80%) in 2 partition(s)") == 1
    assert "TANH x1: npdev: npdev has no TANH kernel" in err
    _run(Interpreter(model_content=partitioned_model()), X)
    assert "tflite_jit:" not in capsys.readouterr().err


def test_resize_replans_the_partitions() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4), np.float32, shape_signature=(-1, 4))
    y = g.apply("ADD", [x, x])[0]
    g.output(g.apply("RELU", [y])[0])
    content = mb.build()
    dev = NumpyDevice()
    it = Interpreter(model_content=content, experimental_delegates=[Delegate.from_backend(dev)])
    it.allocate_tensors()
    it.resize_tensor_input(0, [3, 4])
    x3 = np.arange(12, dtype=np.float32).reshape(3, 4) - 6
    np.testing.assert_array_equal(_run(it, x3), np.maximum(x3 + x3, 0))
    assert len(dev.compiled) == 2


# ---- load_delegate: names, options, native libraries -------------------------------------------

def test_unknown_option_and_bad_values_are_value_errors() -> None:
    with pytest.raises(ValueError, match=r"Failed to load delegate from opencl\nUnknown option 'precision'"):
        load_delegate("opencl", {"precision": "fp16"})
    with pytest.raises(ValueError, match="allow_fp16 .* must be true or false"):
        load_delegate("opencl", {"allow_fp16": "maybe"})
    with pytest.raises(ValueError, match="min_nodes_per_partition .* integer >= 0"):
        load_delegate("opencl", {"min_nodes_per_partition": "-1"})
    with pytest.raises(ValueError, match="Unknown option 'device'"):
        Delegate.from_backend(NumpyDevice(), {"device": "gpu"})


def test_native_library_paths_keep_litert_error_types() -> None:
    with pytest.raises(OSError, match="libnope.so: cannot open shared object file.*'opencl'"):
        load_delegate("/nonexistent/libnope.so")
    with pytest.raises(OSError, match="no tflite_jit delegate is called 'gpu'"):
        load_delegate("gpu")
    lib = next((p for p in ("/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6",
                            "/lib64/libm.so.6") if os.path.exists(p)), None)
    if lib is not None:
        with pytest.raises(ValueError, match="(?s)Failed to load delegate from .*cannot host native.*'opencl'"):
            tflite_jit.load_delegate(lib, {"device": "usb:0"})


def test_foreign_delegate_objects_and_duplicates_are_refused() -> None:
    class Native:
        def _get_native_delegate_pointer(self) -> int:
            return 1

    with pytest.raises(ValueError, match="cannot apply .*Native"):
        Interpreter(model_content=partitioned_model(), experimental_delegates=[Native()])
    d = Delegate.from_backend(NumpyDevice())
    with pytest.raises(ValueError, match="given twice"):
        Interpreter(model_content=partitioned_model(), experimental_delegates=[d, d])
    with pytest.raises(AttributeError):
        Interpreter(model_content=partitioned_model(), experimental_delegates=[object()])


def test_opencl_without_its_backend_is_a_clear_value_error(monkeypatch) -> None:
    """An install without the OpenCL backend (or a broken one): simulated by hiding the module."""
    import sys

    monkeypatch.setitem(sys.modules, "tflite_jit.backends.opencl", None)  # import raises ImportError
    with pytest.raises(ValueError, match="(?s)Failed to load delegate from opencl.*not available"):
        load_delegate("opencl", {"allow_fp16": "false"})


def test_opencl_delegate_runs_a_model_like_the_cpu() -> None:
    try:
        d = load_delegate("opencl", {"allow_fp16": "false", "min_nodes_per_partition": "1"})
    except ValueError as e:  # no OpenCL device on this machine
        pytest.skip(str(e))
    it = Interpreter(model_content=partitioned_model(), experimental_delegates=[d])
    assert_close(_run(it, X), _run(Interpreter(model_content=partitioned_model(), backend="reference"), X))
    assert d.backend.name == "opencl" and d.limits.min_nodes_per_partition == 1


def test_delegate_signature_matches_litert() -> None:
    import inspect

    assert list(inspect.signature(Delegate).parameters) == ["library", "options"]
    assert list(inspect.signature(load_delegate).parameters) == ["library", "options"]
    assert tflite_jit.Delegate is Delegate and tflite_jit.load_delegate is load_delegate


def test_preserve_all_tensors_keeps_partition_intermediates_readable() -> None:
    it = Interpreter(model_content=partitioned_model(), experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=tflite_jit.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                     experimental_delegates=[Delegate.from_backend(NumpyDevice())])
    _run(it, X)
    c = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)
    first = it._interpreter.execs[0].sg.ops[0].outputs[0]
    np.testing.assert_allclose(it.get_tensor(first), X + c)
    assert it.get_execution_plan()["summary"]["delegated_partitions"] == 2


def test_profiling_logs_predicted_against_measured(caplog: pytest.LogCaptureFixture) -> None:
    it = Interpreter(model_content=partitioned_model(),
                     experimental_delegates=[Delegate.from_backend(NumpyDevice())])
    _run(it, X)
    with caplog.at_level("INFO", logger="tflite_jit.planner"):
        plan = it.get_execution_plan(profile_runs=3)
    lines = [r.getMessage() for r in caplog.records if r.name == "tflite_jit.planner"]
    assert len(lines) == 2 and all("predicted" in m and "measured" in m for m in lines)
    assert all(p["measured_s"] > 0 for p in plan["partitions"] if p["delegated"])
    assert all(c["measured_s"] > 0 for c in plan["clusters"] if c["partition"] is None)


def test_control_flow_subgraphs_are_planned_with_the_delegates() -> None:
    from tests.test_control_flow import while_model

    dev = NumpyDevice(names=("ADD", "MUL", "RELU"))
    it = Interpreter(model_content=while_model(10), experimental_delegates=[Delegate.from_backend(dev)])
    ref = Interpreter(model_content=while_model(10), backend="reference")
    ins = [np.array(0, np.int32), np.array([1.0, -3.0], np.float32), np.array([0.25, 0.5], np.float32)]
    outs = []
    for x in (it, ref):
        x.allocate_tensors()
        for d, v in zip(x.get_input_details(), ins):
            x.set_tensor(d["index"], v)
        x.invoke()
        outs.append([x.get_tensor(d["index"]) for d in x.get_output_details()])
    for a, b in zip(*outs):
        assert_close(a, b)
    body = it._interpreter.context._execs[2]
    assert {s["backend"] for s in body.plan} == {"npdev"}  # the loop body's ops ran on the device
    assert it.get_execution_plan()["ops"][0]["backend"] != "npdev"  # WHILE itself stays on the host
