"""tflite_jit.fusion: the strategy API, the five shipped strategies and the shared validator.

Hand-made graphs check the clusters each strategy must produce; hypothesis-generated DAGs check
that every strategy's output passes the validator, is deterministic, and runs through
`Executable` (reference backend: a fused cluster runs op by op) to exactly the numbers of `none`;
the synthetic zoo models check the same numerics and report cluster counts per strategy.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tflite_jit import fusion
from tflite_jit.backends.base import Cluster, CompileEnv
from tflite_jit.backends.reference.backend import ReferenceBackend
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.reader import load_bytes
from tflite_jit.fusion import (
    FusionStrategy,
    cluster_kind,
    describe,
    get_strategy,
    make_cluster,
    register_strategy,
    validate_clusters,
)
from tflite_jit.ir.model import Model, Subgraph
from tflite_jit.runtime.executable import Executable, resolve_ops
from tflite_jit.runtime.shapes import TensorInfo, infer_subgraph
from tflite_jit.tools import models

STRATEGIES = ["none", "epilogue", "elementwise", "rules", "greedy_cost"]
FUSING = STRATEGIES[1:]
HYP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- harness ------------------------------------------------------------------------------------

class G:
    """A tiny graph-authoring helper over ModelBuilder (outputs from each op's shape rule)."""

    def __init__(self, seed: int = 0):
        self.mb = ModelBuilder()
        self.g = self.mb.subgraph("main")
        self.rng = np.random.default_rng(seed)

    def input(self, shape, dtype=np.float32) -> int:
        return self.g.input(f"in{len(self.g.sg.inputs)}", shape, dtype)

    def const(self, value, dtype=np.float32) -> int:
        return self.g.const(f"c{len(self.g.sg.tensors)}", np.asarray(value, dtype))

    def op(self, name: str, *inputs: int, **options) -> int:
        return self.g.apply(name, list(inputs), **options)[0]

    def conv(self, x: int, cout: int | None = None, k: int = 1, **opts) -> int:
        cin = self.g.sg.tensors[x].shape[-1]
        cout = cout or cin
        w = self.const(self.rng.standard_normal((cout, k, k, cin)) / np.sqrt(k * k * cin))
        b = self.const(self.rng.standard_normal(cout) * 0.1)
        return self.op("CONV_2D", x, w, b, padding="SAME", stride_w=1, stride_h=1, **opts)

    def dwconv(self, x: int, k: int = 3) -> int:
        c = self.g.sg.tensors[x].shape[-1]
        w = self.const(self.rng.standard_normal((1, k, k, c)) / k)
        b = self.const(self.rng.standard_normal(c) * 0.1)
        return self.op("DEPTHWISE_CONV_2D", x, w, b, padding="SAME", stride_w=1, stride_h=1,
                       depth_multiplier=1)

    def finish(self, *outputs: int) -> Model:
        self.g.output(*outputs)
        return self.mb.model()


def env_of(model: Model, si: int = 0) -> tuple[Subgraph, CompileEnv]:
    """The CompileEnv Executable.prepare builds: ops resolved, shapes inferred."""
    sg = model.subgraphs[si]
    opdefs, attrs = resolve_ops(model, si)
    infos = infer_subgraph(sg, {i: tuple(sg.tensors[i].shape) for i in sg.inputs}, attrs, opdefs)
    return sg, CompileEnv(sg, attrs, infos)


def manual_env(sg: Subgraph, dynamic: tuple[int, ...] = ()) -> CompileEnv:
    """An env from the declared shapes, for graphs with ops the registry does not define."""
    infos = [TensorInfo(None if i in dynamic else tuple(t.shape), np.dtype(t.dtype), t.data)
             for i, t in enumerate(sg.tensors)]
    return CompileEnv(sg, [None] * len(sg.ops), infos)


def plan(model: Model, strategy, **knobs) -> list[Cluster]:
    sg, env = env_of(model)
    return get_strategy(strategy, **knobs)(sg, env)


def groups(clusters: list[Cluster]) -> list[tuple[int, ...]]:
    return [c.ops for c in clusters]


def run_model(model: Model, strategy, inputs: list[np.ndarray]) -> list[np.ndarray]:
    sg = model.subgraphs[0]
    ex = Executable(model, 0, ReferenceBackend(), fusion=strategy)
    ex.prepare({i: tuple(sg.tensors[i].shape) for i in sg.inputs})
    for tid, v in zip(sg.inputs, inputs):
        ex.buffers[tid][...] = v
    ex.run()
    return [np.array(ex.buffers[t], copy=True) for t in sg.outputs]


def random_inputs(model: Model, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    sg = model.subgraphs[0]
    out = []
    for i in sg.inputs:
        t = sg.tensors[i]
        if np.dtype(t.dtype) == np.int32:
            out.append(rng.integers(0, 1000, t.shape, dtype=np.int32))
        elif "mask" in t.name:
            m = np.ones(t.shape, np.float32)
            m[..., -t.shape[-1] // 4:] = 0
            out.append(m)
        else:
            out.append(rng.uniform(-1, 1, t.shape).astype(np.float32))
    return out


def assert_same_numbers(model: Model, strategies=STRATEGIES, seed: int = 0) -> None:
    inputs = random_inputs(model, seed)
    ref = run_model(model, "none", inputs)
    for s in strategies:
        got = run_model(model, s, inputs)
        for a, b in zip(ref, got):
            np.testing.assert_array_equal(b, a, err_msg=f"strategy {s!r} changed the numbers")


# ---- the API ------------------------------------------------------------------------------------

def test_registry_names_and_aliases():
    assert set(STRATEGIES) <= set(fusion.strategies())
    for s in STRATEGIES:
        st_ = get_strategy(s)
        assert isinstance(st_, FusionStrategy) and st_.name == s
    assert get_strategy("rule_based").name == "rules"
    assert get_strategy("elementwise_chain").name == "elementwise"
    with pytest.raises(ValueError, match="Unknown fusion strategy 'nope'"):
        get_strategy("nope")
    with pytest.raises(TypeError, match="no option"):
        get_strategy("rules", max_dept=3)


def test_configs_are_knobs():
    s = get_strategy("rules", max_depth=4, deny_ops=["ADD"], stop_fusion="t")
    assert s.config.max_depth == 4 and s.config.cap == 4
    assert s.config.deny_ops == frozenset({"ADD"}) and s.config.stop_fusion == frozenset({"t"})
    s2 = get_strategy(s, max_ops=2)
    assert s2.config.cap == 2 and s.config.cap == 4  # a copy, not a mutation
    assert isinstance(get_strategy("greedy_cost").config, fusion.GreedyCostConfig)
    s3 = get_strategy("rules", fusion.FusionConfig(max_ops=5))  # a base config is widened
    assert isinstance(s3.config, fusion.RulesConfig) and s3.config.cap == 5
    with pytest.raises(ValueError, match="max_ops"):
        fusion.FusionConfig(max_ops=0)


def test_user_strategies_are_validated():
    b = G()
    x = b.input((1, 4, 4, 2))
    y = b.op("RELU", b.op("NEG", x))
    model = b.finish(y)
    sg, env = env_of(model)

    def together(sg, env):
        return [make_cluster(sg, range(len(sg.ops)))]

    register_strategy("test_together", together)
    assert groups(get_strategy("test_together")(sg, env)) == [(0, 1)]
    assert groups(get_strategy(together)(sg, env)) == [(0, 1)]
    assert_same_numbers(model, ["test_together", together])

    def bad(sg, env):  # forgets op 1
        return [Cluster((0,), tuple(sg.ops[0].inputs), tuple(sg.ops[0].outputs))]

    with pytest.raises(ValueError, match="fusion strategy 'bad'.*in no cluster"):
        get_strategy(bad)(sg, env)
    with pytest.raises(ValueError, match="'bad'"):
        Executable(model, 0, ReferenceBackend(), fusion=bad).prepare({0: (1, 4, 4, 2)})

    class Mine(FusionStrategy):
        name = "mine"

        def plan(self, sg, env):
            return [make_cluster(sg, [1]), make_cluster(sg, [0])]  # wrong order

    with pytest.raises(ValueError, match="'mine'.*not in a topological order"):
        Mine()(sg, env)
    with pytest.raises(ValueError, match="'mine'"):
        get_strategy(Mine)(sg, env)
    with pytest.raises(TypeError, match="implement plan"):
        class Sneaky(FusionStrategy):
            def __call__(self, sg, env):
                return []


# ---- hand-made graphs ---------------------------------------------------------------------------

def test_conv_bias_relu6_is_one_epilogue():
    b = G()
    x = b.input((1, 8, 8, 3))
    bias = b.const(np.full(4, 0.5))
    y = b.op("RELU6", b.op("ADD", b.conv(x, 4), bias))
    model = b.finish(y)
    sg = model.subgraphs[0]
    for s in FUSING:
        cl = plan(model, s)
        assert groups(cl) == [(0, 1, 2)], s
        c = cl[0]
        conv = sg.ops[0]
        assert c.inputs == (x, conv.inputs[1], conv.inputs[2], bias)
        assert c.outputs == (y,)
        assert cluster_kind(c, sg) == "epilogue"
    assert groups(plan(model, "none")) == [(0,), (1,), (2,)]
    assert_same_numbers(model)


def test_epilogue_folds_scale_and_activations_but_not_others():
    b = G()
    x = b.input((1, 6, 6, 4))
    y = b.op("MUL", b.conv(x), b.const(2.0))
    y = b.op("HARD_SWISH", b.op("SUB", y, b.const(np.ones(4))))
    z = b.op("NEG", y)  # not an epilogue op: stays out under epilogue, and under elementwise
    model = b.finish(z)   # unless element-wise groups may join a conv's (into_complex)
    assert groups(plan(model, "epilogue")) == [(0, 1, 2, 3), (4,)]
    assert groups(plan(model, "elementwise")) == [(0, 1, 2, 3), (4,)]
    assert groups(plan(model, "elementwise", into_complex=True)) == [(0, 1, 2, 3, 4)]
    assert groups(plan(model, "epilogue", activations=["RELU"])) == [(0, 1, 2), (3,), (4,)]


def test_residual_add_fused():
    b = G()
    x = b.input((1, 8, 8, 4))
    a = b.conv(x, 4)  # read by the second conv and by the ADD
    y = b.op("ADD", a, b.conv(a, 4))
    model = b.finish(b.op("RELU", y))
    sg = model.subgraphs[0]
    cl = plan(model, "epilogue")
    assert groups(cl) == [(0,), (1, 2, 3)]
    assert cl[1].inputs == (a, *sg.ops[1].inputs[1:])
    assert groups(plan(model, "epilogue", residual_ops=[])) == [(0,), (1,), (2,), (3,)]
    # the residual partner may not be a constant-shaped broadcast: a [4] tensor is a bias, fine;
    # a computed [1,1,1,4] tensor is not a residual of the same shape
    b = G()
    x = b.input((1, 8, 8, 4))
    s = b.op("MEAN", x, b.const([1, 2], np.int32), keep_dims=True)
    model = b.finish(b.op("ADD", b.conv(x), s))
    assert groups(plan(model, "epilogue")) == [(0,), (1,), (2,)]
    assert_same_numbers(model)


def test_multi_consumer_intermediate_blocks_epilogue_and_stays_an_output():
    b = G()
    x = b.input((1, 8, 8, 4))
    c = b.conv(x)
    r = b.op("RELU", c)
    m = b.op("MUL", c, b.const(3.0))  # second reader of the conv output
    model = b.finish(b.op("ADD", r, m))
    for s in ("epilogue",):
        assert groups(plan(model, s)) == [(0,), (1,), (2,), (3,)]
    # rules: the conv's post-dominator is the ADD, every path element-wise: one diamond cluster
    assert groups(plan(model, "rules")) == [(0, 1, 2, 3)]
    # a stop_fusion cut on the conv output keeps it a boundary tensor everywhere
    for s in FUSING:
        cl = plan(model, s, stop_fusion=[c])
        owner = [k for k, cc in enumerate(cl) if 0 in cc.ops][0]
        assert cl[owner].outputs == (c,), s
    assert_same_numbers(model)


def test_graph_output_intermediate_stays_a_cluster_output():
    b = G()
    x = b.input((1, 8, 8, 4))
    c = b.conv(x)
    y = b.op("RELU", c)
    model = b.finish(c, y)  # the conv output is itself a graph output
    assert groups(plan(model, "epilogue")) == [(0,), (1,)]
    assert groups(plan(model, "rules")) == [(0,), (1,)]
    for s in STRATEGIES:
        cl = plan(model, s)
        outs = {t for cc in cl for t in cc.outputs}
        assert {c, y} <= outs, s
    assert_same_numbers(model)


def test_elementwise_chains_and_swish_diamond():
    b = G()
    x = b.input((1, 8, 8, 4))
    c = b.conv(x)
    sw = b.op("MUL", c, b.op("LOGISTIC", c))  # swish: the conv output is read twice
    t = b.op("TANH", b.op("NEG", b.dwconv(sw)))
    model = b.finish(t)
    assert groups(plan(model, "epilogue")) == [(i,) for i in range(6)]  # NEG is no epilogue op
    # the swish and the NEG -> TANH tail become loops of their own (measured faster on
    # EfficientNet-B0 than inside the conv kernels: fusion/config.py ElementwiseConfig) ...
    assert groups(plan(model, "elementwise")) == [(0,), (1, 2), (3,), (4, 5)]
    # ... or join the convs when asked
    assert groups(plan(model, "elementwise", into_complex=True)) == [(0, 1, 2), (3, 4, 5)]
    assert groups(plan(model, "rules")) == [(0, 1, 2), (3, 4, 5)]
    assert groups(plan(model, "greedy_cost")) == [(0, 1, 2), (3, 4, 5)]
    assert_same_numbers(model)


def test_elementwise_does_not_recompute_a_growing_broadcast():
    b = G()
    x = b.input((1, 8, 8, 4))
    s = b.op("MEAN", x, b.const([1, 2], np.int32), keep_dims=True)
    g = b.op("LOGISTIC", b.op("NEG", s))  # [1,1,1,4]
    y = b.op("RELU", b.op("MUL", x, g))  # [1,8,8,4]
    model = b.finish(y)
    # NEG -> LOGISTIC chain fuses; LOGISTIC's small output is broadcast over the MUL: no join
    assert groups(plan(model, "elementwise")) == [(0,), (1, 2), (3, 4)]
    # rules (TVM) lets the broadcast-in edge fuse
    assert groups(plan(model, "rules")) == [(0,), (1, 2, 3, 4)]
    assert_same_numbers(model)


def test_rules_diamond_of_elementwise_ops():
    b = G()
    x = b.input((1, 4, 4, 4))
    a = b.op("NEG", x)
    y = b.op("ADD", b.op("RELU", a), b.op("TANH", a))
    z = b.op("MUL", y, b.const(np.arange(4)))
    model = b.finish(z)
    assert groups(plan(model, "rules")) == [(0, 1, 2, 3, 4)]
    assert groups(plan(model, "elementwise")) == [(0, 1, 2, 3, 4)]
    # a side exit in the middle (graph output) moves the post-dominator to the root
    b = G()
    x = b.input((1, 4, 4, 4))
    a = b.op("NEG", x)
    r = b.op("RELU", a)
    y = b.op("ADD", r, b.op("TANH", a))
    model = b.finish(y, r)
    cl = plan(model, "rules")
    assert (0,) in groups(cl) and all(r in c.outputs for c in cl if 1 in c.ops)
    assert_same_numbers(model)


def test_rules_reductions_are_sinks():
    b = G()
    x = b.input((1, 8, 8, 4))
    d = b.op("SQUARED_DIFFERENCE", b.op("NEG", x), b.const(np.ones(4)))
    m = b.op("MEAN", d, b.const([1, 2], np.int32), keep_dims=True)
    y = b.op("TANH", b.op("RSQRT", m))
    model = b.finish(y)
    sg = model.subgraphs[0]
    cl = plan(model, "rules")
    assert groups(cl) == [(0, 1, 2), (3, 4)]
    assert cluster_kind(cl[0], sg) == "reduce" and cluster_kind(cl[1], sg) == "loop"
    assert groups(plan(model, "rules", fuse_reduce_epilogue=True)) == [(0, 1, 2, 3, 4)]
    cl = plan(model, "greedy_cost")
    assert (0, 1, 2) in groups(cl) and (3, 4) in groups(cl)
    assert groups(plan(model, "greedy_cost", fuse_reduce_epilogue=True)) == [(0, 1, 2, 3, 4)]
    assert_same_numbers(model)


def test_rules_complex_ops_never_chain():
    b = G()
    x = b.input((1, 6, 6, 4))
    y = b.op("ADD", b.conv(x), b.conv(x))  # two convs, one element-wise consumer
    z = b.conv(b.op("RELU", y))  # relu -> conv: a complex consumer takes no prologue
    model = b.finish(z)
    sg = model.subgraphs[0]
    for s in FUSING:
        for c in plan(model, s):
            n_complex = sum(sg.ops[i].name == "CONV_2D" for i in c.ops)
            assert n_complex <= 1, (s, c.ops)
    assert groups(plan(model, "rules")) == [(1,), (0, 2, 3), (4,)]  # conv 1 runs first
    assert_same_numbers(model)


def test_rules_injective_phase():
    b = G()
    x = b.input((1, 4, 4, 4))
    r = b.op("RESHAPE", b.op("NEG", x), b.const([1, 16, 4], np.int32))
    t = b.op("TRANSPOSE", r, b.const([0, 2, 1], np.int32))
    model = b.finish(b.op("RELU", t))
    assert groups(plan(model, "rules")) == [(0, 1, 2, 3)]
    assert cluster_kind(plan(model, "rules")[0], model.subgraphs[0]) == "injective"
    assert groups(plan(model, "rules", allow_injective=False)) == [(0,), (1,), (2,), (3,)]
    assert groups(plan(model, "elementwise")) == [(0,), (1,), (2,), (3,)]
    assert_same_numbers(model)


def test_caps_and_depth():
    b = G()
    x = b.input((1, 4, 4, 4))
    y = x
    for i in range(10):
        y = b.op(["NEG", "RELU", "TANH"][i % 3], y)
    model = b.finish(y)
    for s in ("elementwise", "rules", "greedy_cost"):
        assert groups(plan(model, s)) == [tuple(range(10))], s
        cl = plan(model, s, max_ops=3)
        assert max(len(c.ops) for c in cl) <= 3 and len(cl) >= 4, s
    assert all(len(c.ops) == 1 for c in plan(model, "rules", max_depth=1))
    assert max(len(c.ops) for c in plan(model, "rules", max_depth=4)) == 4
    # max_args: a chain reading a new constant at each step
    b = G()
    y = b.input((1, 4, 4, 4))
    for i in range(6):
        y = b.op("ADD", y, b.const(float(i)))
    model = b.finish(y)
    for s in ("elementwise", "rules", "greedy_cost"):
        cl = plan(model, s, max_args=4)
        assert all(len(c.ops) == 1 or len(c.inputs) + len(c.outputs) <= 4 for c in cl), s
        assert any(len(c.ops) > 1 for c in cl), s
    assert_same_numbers(model)


def test_deny_ops_and_stop_fusion():
    b = G()
    x = b.input((1, 4, 4, 4))
    a = b.op("NEG", x)
    y = b.op("TANH", b.op("RELU", a))
    model = b.finish(y)
    for s in ("elementwise", "rules", "greedy_cost"):
        assert groups(plan(model, s, deny_ops={"RELU"})) == [(0,), (1,), (2,)], s
        assert groups(plan(model, s, stop_fusion={model.subgraphs[0].tensors[a].name})) == [(0,), (1, 2)], s


def test_greedy_cost_stops_without_benefit():
    b = G()
    x = b.input((1, 32, 32, 8))
    s = b.op("MEAN", x, b.const([1, 2], np.int32), keep_dims=True)
    g = b.op("LOGISTIC", s)  # tiny
    y = b.op("MUL", x, g)  # broadcasts it over 32x32: fusing would recompute LOGISTIC 1024 times
    model = b.finish(y)
    assert (1, 2) not in groups(plan(model, "greedy_cost", peak_flops=1e6))  # compute bound: no
    assert groups(plan(model, "greedy_cost", min_benefit_s=1.0)) == [(0,), (1,), (2,)]
    assert groups(plan(model, "greedy_cost", launch_s=0.0, peak_flops=1e6)) == [(0,), (1,), (2,)]


def test_stateful_and_opaque_ops_are_singletons_and_keep_order():
    mb = ModelBuilder()
    g = mb.subgraph("main")
    x = g.input("x", (1, 4), np.float32)
    h = g.tensor("h", (), np.int32)
    v = g.tensor("v", (1, 4), np.float32)
    a = g.tensor("a", (1, 4), np.float32)
    c = g.tensor("c", (1, 4), np.float32)
    y = g.tensor("y", (1, 4), np.float32)
    g.op("VAR_HANDLE", [], [h])  # 0
    g.op("NEG", [x], [a])  # 1
    g.op("ASSIGN_VARIABLE", [h, a], [])  # 2
    g.op("READ_VARIABLE", [h], [v])  # 3: after 2 only through the variable
    g.op("MyCustom", [v], [c], custom=True)  # 4
    g.op("RELU", [c], [y])  # 5
    g.output(y)
    sg = mb.model().subgraphs[0]
    env = manual_env(sg)
    for s in STRATEGIES:
        cl = get_strategy(s)(sg, env)
        assert all(len(cc.ops) == 1 for cc in cl if {0, 2, 3, 4} & set(cc.ops)), s
        order = [cc.ops[0] for cc in cl if len(cc.ops) == 1 and cc.ops[0] in (0, 2, 3, 4)]
        assert order == [0, 2, 3, 4], s
    one = [make_cluster(sg, [i]) for i in range(6)]
    with pytest.raises(ValueError, match="side effects"):
        validate_clusters(sg, [one[0], one[1], make_cluster(sg, [2, 3]), one[4], one[5]], strategy="t")
    with pytest.raises(ValueError, match="not in a topological order"):
        validate_clusters(sg, [one[0], one[1], one[3], one[2], one[4], one[5]], strategy="t")
    validate_clusters(sg, one, strategy="t")


def test_dynamic_shapes_are_not_fused():
    b = G()
    x = b.input((1, 4, 4, 4))
    a = b.op("NEG", x)
    y = b.op("TANH", b.op("RELU", a))
    sg = b.finish(y).subgraphs[0]
    env = manual_env(sg, dynamic=(a,))
    for s in FUSING:
        cl = get_strategy(s)(sg, env)
        assert (0,) in groups(cl) and (1,) in groups(cl), s
    with pytest.raises(ValueError, match="run time"):
        validate_clusters(sg, [make_cluster(sg, [0, 1]), make_cluster(sg, [2])], env=env)


# ---- the validator ------------------------------------------------------------------------------

def _diamond():
    b = G()
    x = b.input((1, 4, 4, 4))
    a = b.op("NEG", x)  # 0
    r = b.op("RELU", a)  # 1
    t = b.op("TANH", a)  # 2
    y = b.op("ADD", r, t)  # 3
    return b.finish(y).subgraphs[0], (x, a, r, t, y)


def test_validator_rejects_bad_partitions():
    sg, (x, a, r, t, y) = _diamond()
    one = [make_cluster(sg, [i]) for i in range(4)]
    validate_clusters(sg, one)
    validate_clusters(sg, [make_cluster(sg, [0, 1, 2, 3])])
    with pytest.raises(ValueError, match="'s': op 0 .* is in cluster #0 and in cluster #1"):
        validate_clusters(sg, [one[0], one[0], one[1], one[2], one[3]], strategy="s")
    with pytest.raises(ValueError, match=r"ops \[3\]"):
        validate_clusters(sg, one[:3])
    with pytest.raises(ValueError, match="not convex: op 2"):  # 0 -> 2 -> 3 leaves and re-enters
        validate_clusters(sg, [make_cluster(sg, [0, 1, 3]), one[2]])
    with pytest.raises(ValueError, match="lists outputs"):  # an intermediate read outside, hidden
        validate_clusters(sg, [Cluster((0, 1), (x,), (r,)), one[2], one[3]])
    with pytest.raises(ValueError, match="lists inputs"):
        validate_clusters(sg, [Cluster((0, 1), (x, x), (a, r)), one[2], one[3]])
    with pytest.raises(ValueError, match="not in a topological order"):
        validate_clusters(sg, [one[1], one[0], one[2], one[3]])
    with pytest.raises(ValueError, match="runs op 1 before op 0"):
        validate_clusters(sg, [Cluster((1, 0), (x,), (a, r)), one[2], one[3]])
    with pytest.raises(ValueError, match="over the cap of 3"):
        validate_clusters(sg, [make_cluster(sg, [0, 1, 2, 3])], fusion.FusionConfig(max_ops=3))
    with pytest.raises(ValueError, match="over the cap of 2 arguments"):
        validate_clusters(sg, [make_cluster(sg, [0, 1]), one[2], one[3]],
                          fusion.FusionConfig(max_args=2))


def test_validator_catches_cluster_cycles_between_convex_clusters():
    # a1 -> b2 and b1 -> a2: {a1, a2} and {b1, b2} are each convex but depend on each other
    b = G()
    x = b.input((1, 4))
    a1 = b.op("NEG", x)
    b1 = b.op("RELU", x)
    a2 = b.op("ADD", a1, b1)
    b2 = b.op("MUL", b1, a1)
    sg = b.finish(a2, b2).subgraphs[0]
    A, B = make_cluster(sg, [0, 2]), make_cluster(sg, [1, 3])
    for order in ([A, B], [B, A]):
        with pytest.raises(ValueError, match="topological order or form a cycle"):
            validate_clusters(sg, order)


def test_singletons_keep_positional_inputs():
    b = G()
    x = b.input((1, 4, 4, 4))
    y = b.op("MUL", x, x)  # repeated input: the kernel is called positionally
    model = b.finish(b.op("RELU", y))
    sg = model.subgraphs[0]
    assert make_cluster(sg, [0]).inputs == (x, x)
    assert make_cluster(sg, [0, 1]).inputs == (x,)
    assert_same_numbers(model)


def test_empty_subgraph():
    mb = ModelBuilder()
    g = mb.subgraph("main")
    x = g.input("x", (1, 4), np.float32)
    g.output(x)
    sg = mb.model().subgraphs[0]
    for s in STRATEGIES:
        assert get_strategy(s)(sg, manual_env(sg)) == []


def test_describe():
    b = G()
    x = b.input((1, 8, 8, 4))
    y = b.op("RELU", b.conv(x))
    model = b.finish(b.op("SOFTMAX", b.op("NEG", y), beta=1.0))
    sg = model.subgraphs[0]
    cl = plan(model, "elementwise", into_complex=True)
    d = describe(cl, sg)
    assert [e["kind"] for e in d] == ["epilogue", "single"]
    assert d[0]["op_names"] == ["CONV_2D", "RELU", "NEG"] and d[0]["size"] == 3
    assert fusion.summary(cl, sg)["clusters"] == 2


# ---- random DAGs --------------------------------------------------------------------------------

S4 = (1, 4, 4, 4)
SMALL = (1, 1, 1, 4)
FLAT = (1, 16, 4)
UNARY = ["RELU", "TANH", "NEG", "LOGISTIC", "RELU6", "HARD_SWISH"]
BINARY = ["ADD", "MUL", "SUB"]


@st.composite
def random_model(draw, n_max: int = 14) -> Model:
    b = G(seed=draw(st.integers(0, 1000)))
    pool: dict[tuple, list[int]] = {S4: [b.input(S4)], SMALL: [], FLAT: []}
    if draw(st.booleans()):
        pool[S4].append(b.input(S4))
    made: list[int] = []
    for _ in range(draw(st.integers(1, n_max))):
        shapes = [s for s in pool if pool[s]]
        shape = draw(st.sampled_from(shapes))
        pick = lambda s=shape: draw(st.sampled_from(pool[s]))  # noqa: E731
        kind = draw(st.sampled_from(["unary", "binary", "const", "bcast", "conv", "dw", "mean",
                                     "reshape", "transpose", "fc_like"]))
        if kind == "unary":
            y = b.op(draw(st.sampled_from(UNARY)), pick())
        elif kind == "binary":
            y = b.op(draw(st.sampled_from(BINARY)), pick(), pick())
        elif kind == "const":
            c = b.const(draw(st.sampled_from([0.5, -1.0, 2.0])) * np.ones(shape[-1]))
            y = b.op(draw(st.sampled_from(BINARY)), pick(), c)
        elif kind == "bcast" and pool[SMALL] and pool[S4]:
            shape = S4
            y = b.op(draw(st.sampled_from(BINARY)), pick(S4), pick(SMALL))
        elif kind in ("conv", "dw") and pool[S4]:
            shape = S4
            y = b.conv(pick(S4)) if kind == "conv" else b.dwconv(pick(S4))
        elif kind == "mean" and pool[S4]:
            shape = SMALL
            y = b.op("MEAN", pick(S4), b.const([1, 2], np.int32), keep_dims=True)
        elif kind == "reshape" and shape in (S4, FLAT):
            shape = FLAT if shape == S4 else S4
            y = b.op("RESHAPE", pick(), b.const(list(shape), np.int32))
        elif kind == "transpose" and pool[S4]:
            shape = S4
            y = b.op("TRANSPOSE", pick(S4), b.const([0, 2, 1, 3], np.int32))
        else:
            y = b.op("TANH", pick())
        pool[shape].append(y)
        made.append(y)
    outs = sorted(set(draw(st.lists(st.sampled_from(made), max_size=3))) | {made[-1]})
    return b.finish(*outs)


@HYP
@given(model=random_model(), max_ops=st.sampled_from([1, 2, 3, 256]),
       max_args=st.sampled_from([None, 3, 6]), stop=st.integers(0, 40))
def test_random_dags_validate_and_are_deterministic(model, max_ops, max_args, stop):
    sg, env = env_of(model)
    knobs = dict(max_ops=max_ops, max_args=max_args, stop_fusion={stop})
    for s in STRATEGIES:
        first = get_strategy(s, **knobs)(sg, env)  # validated inside
        again = get_strategy(s, **knobs)(sg, env)
        assert first == again, s
        assert sorted(i for c in first for i in c.ops) == list(range(len(sg.ops)))
        for c in first:
            assert len(c.ops) <= max_ops
            if len(c.ops) > 1 and max_args is not None:
                assert len(c.inputs) + len(c.outputs) <= max_args


@HYP
@given(model=random_model(), seed=st.integers(0, 3))
def test_random_dags_same_numbers_as_none(model, seed):
    assert_same_numbers(model, seed=seed)


# ---- the model zoo ------------------------------------------------------------------------------

ZOO = {
    "mobilenet_v2": dict(input_size=96, alpha=0.35),
    "efficientnet_b0": dict(input_size=64),
    "transformer_encoder": dict(seq_len=16, d_model=32, num_heads=2, d_ff=64, num_layers=1),
}


@functools.cache
def zoo_model(name: str) -> Model:
    return load_bytes(models.build(name, **ZOO[name]))


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_models_same_numbers_as_none(name):
    assert_same_numbers(zoo_model(name))


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_cluster_counts(name, capsys):
    model = zoo_model(name)
    counts = {s: len(plan(model, s)) for s in STRATEGIES}
    n = len(model.subgraphs[0].ops)
    assert counts["none"] == n
    for s in FUSING:
        assert counts[s] < n, (s, counts)
        assert plan(model, s) == plan(model, s)
    assert counts["elementwise"] <= counts["epilogue"]
    with capsys.disabled():
        print(f"\n{name}: {n} ops; clusters " + ", ".join(f"{s}={c}" for s, c in counts.items()))
