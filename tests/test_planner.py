"""The delegate planner with synthetic backends and cost models: partitions are convex, every op
lands somewhere, TFLite's partition limits hold, choices follow estimated time (not node count)
and transfer costs keep small islands on the host."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest

from tflite_jit.backends.base import Backend, Cluster, CompileEnv
from tflite_jit.backends.reference.backend import ReferenceBackend
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.reader import load_bytes
from tflite_jit.ir.graph import OpGraph, components, is_convex, is_cyclic, waves
from tflite_jit.planner import (
    NoBackendError,
    PartitionLimits,
    is_host,
    plan_delegation,
)
from tflite_jit.runtime.executable import resolve_ops
from tflite_jit.runtime.shapes import infer_subgraph


class Host(Backend):
    """Runs everything; 1 s per op."""

    name = "host"

    def supports(self, op: Any, env: CompileEnv) -> tuple[bool, str]:
        return True, ""

    def cost(self, cluster: Cluster, env: CompileEnv) -> float:
        return float(len(cluster.ops))

    def compile(self, cluster: Cluster, env: CompileEnv) -> Any:
        return ReferenceBackend().compile(cluster, env)


class Dev(Host):
    """A device: supports the op names given, costs per op name, transfers latency + bytes/bw."""

    name = "dev"

    def __init__(self, names: Iterable[str], op_cost: dict[str, float] | None = None,
                 latency: float = 0.0, bandwidth: float = 1e12, name: str = "dev"):
        self.names = set(names)
        self.op_cost = op_cost or {}
        self.latency = latency
        self.bandwidth = bandwidth
        self.name = name

    def supports(self, op: Any, env: CompileEnv) -> tuple[bool, str]:
        return (True, "") if op.name in self.names else (False, f"{self.name} lacks {op.name}")

    def cost(self, cluster: Cluster, env: CompileEnv) -> float:
        return sum(self.op_cost.get(env.subgraph.ops[i].name, 0.1) for i in cluster.ops)

    def transfer_seconds(self, nbytes: int) -> float:
        return self.latency + nbytes / self.bandwidth


def _env(content: bytes) -> tuple[Any, CompileEnv]:
    model = load_bytes(content)
    sg = model.subgraphs[0]
    opdefs, attrs = resolve_ops(model, 0)
    infos = infer_subgraph(sg, {i: tuple(sg.tensors[i].shape) for i in sg.inputs}, attrs, opdefs)
    return sg, CompileEnv(sg, attrs, infos)


def _chain(names: list[str], shape: tuple[int, ...] = (4,)) -> bytes:
    """x -> names[0] -> names[1] -> ... (binary ops take a constant second input)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    t = g.input("x", shape, np.float32)
    for i, name in enumerate(names):
        ins = [t] if name in ("RELU", "TANH", "LOGISTIC", "ABS") else [t, g.const(f"c{i}", np.ones(shape, np.float32))]
        t = g.apply(name, ins)[0]
    g.output(t)
    return mb.build()


def _random_dag(seed: int, n: int = 14) -> tuple[bytes, list[str]]:
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    g = mb.subgraph()
    ts = [g.input("x", (3,), np.float32), g.input("y", (3,), np.float32)]
    names = []
    for _ in range(n):
        name = str(rng.choice(["ADD", "MUL", "SUB", "MAXIMUM"]))
        a, b = rng.choice(len(ts), 2)
        ts.append(g.apply(name, [ts[a], ts[b]])[0])
        names.append(name)
    g.output(ts[-1])
    return mb.build(), names


def test_host_detection() -> None:
    assert is_host(Host()) and is_host(ReferenceBackend())
    assert not is_host(Dev([], latency=1e-6))
    flagged = Dev([])
    flagged.is_host = False
    assert not is_host(flagged)


@pytest.mark.parametrize("seed", range(25))
def test_waves_give_convex_groups_covering_the_supported_ops(seed: int) -> None:
    content, _ = _random_dag(seed)
    sg, _ = _env(content)
    idx = OpGraph(sg)
    supported = set(np.random.default_rng(seed + 100).choice(len(sg.ops), len(sg.ops) // 2, replace=False).tolist())
    groups = waves(idx, supported)
    assert sorted(i for g in groups for i in g) == sorted(supported)
    comps = [c for g in groups for c in components(idx, g)]
    for part in [*groups, *comps]:
        assert is_convex(idx, part), part
    assert not is_cyclic(idx, comps)


@pytest.mark.parametrize("seed", range(15))
def test_random_plans_are_convex_acyclic_and_complete(seed: int) -> None:
    content, _ = _random_dag(seed, n=16)
    sg, env = _env(content)
    rng = np.random.default_rng(seed)
    d1 = Dev(["ADD", "MUL"], name="d1", latency=float(rng.uniform(0, 0.3)))
    d2 = Dev(["SUB", "MAXIMUM", "ADD"], name="d2", latency=float(rng.uniform(0, 0.3)))
    plan = plan_delegation(sg, env, [d1, d2, Host()])
    idx = OpGraph(sg)
    assert len(plan.placement) == len(sg.ops)
    assert all(0 <= b < 3 for b in plan.placement)
    for p in plan.partitions:
        assert is_convex(idx, p.ops)
        assert all(plan.placement[i] == (0 if p.backend == "d1" else 1) for i in p.ops)
    assert not is_cyclic(idx, [p.ops for p in plan.partitions])
    delegated = {i for p in plan.partitions for i in p.ops}
    assert all(plan.placement[i] == 2 for i in range(len(sg.ops)) if i not in delegated)


def test_non_convex_group_is_split_into_waves() -> None:
    # op0 (ADD, device) feeds op1 (RELU, host) and op2 (MUL, device); op1 feeds op2 too:
    # {0, 2} is not convex (0 -> 1 -> 2 leaves and re-enters), so they become two partitions.
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (4,), np.float32)
    a = g.apply("ADD", [x, x])[0]
    b = g.apply("RELU", [a])[0]
    c = g.apply("MUL", [a, b])[0]
    g.output(c)
    sg, env = _env(mb.build())
    plan = plan_delegation(sg, env, [Dev(["ADD", "MUL"]), Host()])
    assert [p.ops for p in plan.partitions] == [(0,), (2,)]
    assert plan.placement == [0, 1, 0]
    assert "dev lacks RELU" in plan.reasons[1]


def test_cpu_fallback_when_the_device_supports_nothing() -> None:
    sg, env = _env(_chain(["ADD", "MUL", "RELU"]))
    plan = plan_delegation(sg, env, [Dev([]), Host()])
    assert plan.placement == [1, 1, 1] and plan.partitions == []
    assert all("dev lacks" in r for r in plan.reasons)


def test_no_backend_names_the_op() -> None:
    class Nothing(Host):
        name = "nothing"

        def supports(self, op: Any, env: CompileEnv) -> tuple[bool, str]:
            return False, "refuses all"

    sg, env = _env(_chain(["ADD", "MUL"]))
    with pytest.raises(NoBackendError, match="refuses all") as e:
        plan_delegation(sg, env, [Dev(["MUL"]), Nothing()])
    assert e.value.op_index == 0


def test_device_only_op_is_delegated_even_at_a_loss() -> None:
    class HostNoMul(Host):
        def supports(self, op: Any, env: CompileEnv) -> tuple[bool, str]:
            return (op.name != "MUL"), "host lacks MUL"

    sg, env = _env(_chain(["ADD", "MUL"]))
    plan = plan_delegation(sg, env, [Dev(["MUL"], op_cost={"MUL": 50.0}), HostNoMul()])
    assert plan.placement == [1, 0]


def test_min_nodes_per_partition() -> None:
    # ADD | RELU | ADD MUL SUB : device islands of 1 and 3 ops
    sg, env = _env(_chain(["ADD", "RELU", "ADD", "MUL", "SUB"]))
    dev = Dev(["ADD", "MUL", "SUB"])
    plan = plan_delegation(sg, env, [dev, Host()])
    assert [p.ops for p in plan.partitions] == [(0,), (2, 3, 4)]
    plan = plan_delegation(sg, env, [dev, Host()], {"dev": PartitionLimits(min_nodes_per_partition=2)})
    assert [p.ops for p in plan.partitions] == [(2, 3, 4)]
    assert plan.placement[0] == 1
    assert "min_nodes_per_partition=2" in plan.reasons[0]
    assert [r.ops for r in plan.rejected] == [(0,)]


def test_max_delegated_partitions_keeps_the_biggest_saving_not_the_biggest_partition() -> None:
    # islands: {0} one MUL (device 0.01 s vs host 1 s: saves 0.99 s) and {2,3,4} three ADDs
    # (device 0.9 s each vs 1 s: saves 0.3 s). TFLite's node-count rule would take the ADDs.
    sg, env = _env(_chain(["MUL", "RELU", "ADD", "ADD", "ADD"]))
    dev = Dev(["ADD", "MUL"], op_cost={"MUL": 0.01, "ADD": 0.9})
    plan = plan_delegation(sg, env, [dev, Host()], {"dev": PartitionLimits(max_delegated_partitions=1)})
    assert [p.ops for p in plan.partitions] == [(0,)]
    assert "max_delegated_partitions=1" in plan.reasons[2]
    assert plan.partitions[0].gain_s == pytest.approx(0.99)


def test_cost_model_keeps_an_expensive_device_op_on_the_host() -> None:
    sg, env = _env(_chain(["ADD", "MUL"]))
    plan = plan_delegation(sg, env, [Dev(["ADD", "MUL"], op_cost={"ADD": 5.0, "MUL": 5.0}), Host()])
    assert plan.partitions == [] and plan.placement == [1, 1]
    assert "estimated slower on dev" in plan.reasons[0]


def test_transfer_cost_makes_a_small_island_not_worth_delegating() -> None:
    # MUL | RELU | ADD ADD ADD ADD: each island moves one input and one output of 4 KiB.
    content = _chain(["MUL", "RELU", "ADD", "ADD", "ADD", "ADD"], shape=(1024,))
    sg, env = _env(content)
    cheap = plan_delegation(sg, env, [Dev(["ADD", "MUL"]), Host()])
    assert [p.ops for p in cheap.partitions] == [(0,), (2, 3, 4, 5)]
    # 4 KiB at 8 KB/s ~ 0.5 s a tensor: the 1-op island (saves 0.9 s) would pay ~1 s of transfers;
    # the 4-op island (saves 3.6 s) still wins.
    slow = Dev(["ADD", "MUL"], latency=0.0, bandwidth=8192.0)
    plan = plan_delegation(sg, env, [slow, Host()])
    assert [p.ops for p in plan.partitions] == [(2, 3, 4, 5)]
    assert plan.placement[0] == 1
    assert "transfers" in plan.reasons[0]
    cand = plan.rejected[0]
    assert cand.transfer_s == pytest.approx(2 * 4096 / 8192.0) and cand.gain_s < 0


def test_constants_are_not_counted_as_transfers() -> None:
    sg, env = _env(_chain(["ADD"], shape=(256,)))  # x + const
    plan = plan_delegation(sg, env, [Dev(["ADD"], bandwidth=1e6), Host()])
    p = plan.partitions[0]
    assert p.transfer_s == pytest.approx(2 * 1024 / 1e6)  # x in, result out; the constant is not moved


def test_two_devices_in_preference_order() -> None:
    sg, env = _env(_chain(["ADD", "MUL", "SUB"]))
    d1, d2 = Dev(["ADD", "MUL"], name="d1"), Dev(["ADD", "MUL", "SUB"], name="d2")
    plan = plan_delegation(sg, env, [d1, d2, Host()])
    assert [(p.backend, p.ops) for p in plan.partitions] == [("d1", (0, 1)), ("d2", (2,))]
    assert plan.placement == [0, 0, 1]


def test_candidates_that_would_form_a_cycle_are_refused() -> None:
    # a1 -> b1, b2 -> a2, a1,a2 -> a3, b1,b2 -> b3: A = {a1,a2,a3} and B = {b1,b2,b3} are each
    # convex and connected, but collapsing both makes A -> B -> A.
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (4,), np.float32)
    a1 = g.apply("ADD", [x, x])[0]          # op0 (A)
    b2 = g.apply("MUL", [x, x])[0]          # op1 (B)
    b1 = g.apply("MUL", [a1, a1])[0]        # op2 (B)
    a2 = g.apply("ADD", [b2, b2])[0]        # op3 (A)
    a3 = g.apply("ADD", [a1, a2])[0]        # op4 (A)
    b3 = g.apply("MUL", [b1, b2])[0]        # op5 (B)
    g.output(a3, b3)
    sg, env = _env(mb.build())
    idx = OpGraph(sg)
    assert is_convex(idx, [0, 3, 4]) and is_convex(idx, [1, 2, 5])
    assert is_cyclic(idx, [[0, 3, 4], [1, 2, 5]])
    plan = plan_delegation(sg, env, [Dev(["ADD"], name="da"), Dev(["MUL"], name="db"), Host()])
    assert not is_cyclic(idx, [p.ops for p in plan.partitions])
    assert any("cyclic" in r.reason for r in plan.rejected)


def test_cost_model_failure_is_a_reason_not_a_crash() -> None:
    class Broken(Dev):
        def cost(self, cluster: Cluster, env: CompileEnv) -> float:
            raise RuntimeError("no calibration")

    sg, env = _env(_chain(["ADD"]))
    plan = plan_delegation(sg, env, [Broken(["ADD"]), Host()])
    assert plan.placement == [1] and "no calibration" in plan.reasons[0]


def test_preserve_all_tensors_makes_every_intermediate_a_partition_output() -> None:
    sg, env = _env(_chain(["ADD", "MUL", "SUB"]))
    plan = plan_delegation(sg, env, [Dev(["ADD", "MUL", "SUB"]), Host()], preserve_all_tensors=True)
    (p,) = plan.partitions
    assert set(p.outputs) == {t for i in p.ops for t in sg.ops[i].outputs}
    plan = plan_delegation(sg, env, [Dev(["ADD", "MUL", "SUB"]), Host()])
    assert plan.partitions[0].outputs == tuple(sg.outputs)
