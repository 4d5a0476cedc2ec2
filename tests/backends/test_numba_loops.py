"""Numba generators for LOOP, DEPTHWISE_CONV_2D, AVERAGE/MAX_POOL_2D, MEAN, SUM and SOFTMAX,
against the ops' NumPy references (ops.*.reference + ops.expr.evaluate_numpy for epilogues and
LOOP expressions), both as hand-built KernelRequests and through backend.request_for on small
built graphs.

Compile time is the budget here (CI: 2 cores): every distinct kernel costs 0.2-1 s (parallel
ones more), so the cases are few and each one covers several features; the file compiles about
30 kernels.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.oracle import assert_close
from tflite_jit import ops
from tflite_jit.backends.base import Cluster, CompileEnv
from tflite_jit.backends.numba_cpu import backend
from tflite_jit.backends.numba_cpu.generators import depthwise, loop, pool, reduce  # noqa: F401
from tflite_jit.backends.request import KernelRequest, Output, TensorArg
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.ops import expr as E
from tflite_jit.runtime.executable import resolve_ops
from tflite_jit.runtime.shapes import infer_subgraph

F32 = np.float32
V = E.Var
ACT = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4}


def rnd(shape, seed=0, scale=1.0, dtype=F32) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def targ(a: np.ndarray, const: bool = False) -> TensorArg:
    return TensorArg(tuple(a.shape), a.dtype, a if const else None)


def loop_req(extras: list[np.ndarray], outs: list[tuple[E.Expr, type]], shape, num_threads=1) -> KernelRequest:
    return KernelRequest("LOOP", None, [], [targ(x) for x in extras],
                         [Output(e, TensorArg(tuple(shape), np.dtype(dt))) for e, dt in outs], num_threads)


def check_loop(extras, outs, shape, num_threads=1, exact=False):
    req = loop_req(extras, outs, shape, num_threads)
    got = backend.run_request(req, [], extras)
    for (e, dt), g in zip(outs, got):
        # Var(0) is unused in LOOP trees: the first extra stands in for it
        want = E.evaluate_numpy(e, [extras[0], *extras], dtype=extras[0].dtype if extras[0].dtype != np.bool_ else F32)
        want = np.broadcast_to(want, shape).astype(dt)
        if exact:
            np.testing.assert_array_equal(g, want)
        else:
            assert_close(g, want, what=E.to_string(e))
    return req


def root_req(op: str, attrs, inputs: list[np.ndarray | None], const_from: int, out_shape,
             epilogue: list[tuple[E.Expr, type]] | None = None, extras=(), num_threads=1) -> KernelRequest:
    ins = [None if x is None else targ(x, const=i >= const_from) for i, x in enumerate(inputs)]
    outs = epilogue or [(V(0), F32)]
    return KernelRequest(op, attrs, ins, [targ(x) for x in extras],
                         [Output(e, TensorArg(tuple(out_shape), np.dtype(dt))) for e, dt in outs], num_threads)


def check_root(op: str, options: dict, inputs: list, const_from: int = 1, epilogue=None, extras=(),
               num_threads=1, exact=False):
    opdef = ops.get(op)
    attrs = opdef.parse(options)
    ref = opdef.reference(inputs, attrs)[0]
    req = root_req(op, attrs, inputs, const_from, ref.shape, epilogue, extras, num_threads)
    got = backend.run_request(req, inputs, list(extras))
    for o, g in zip(req.outputs, got):
        want = E.evaluate_numpy(o.expr, [ref, *[np.asarray(x) for x in extras]], dtype=F32).astype(o.arg.dtype)
        if exact:
            np.testing.assert_array_equal(g, want)
        else:
            assert_close(g, want, what=f"{op} {E.to_string(o.expr)}")
    return req


# ---- LOOP ---------------------------------------------------------------------------------------


def test_loop_broadcasts_multi_output_and_compare():
    shape = (2, 5, 6, 7)
    x = rnd(shape, 1)
    s = rnd((1, 1, 1, 1), 2)  # scalar
    c = rnd((1, 1, 1, 7), 3)  # per-channel
    r = rnd((1, 1, 6, 7), 4)  # row (W x C)
    b = rnd((2, 1, 1, 1), 5)  # per-batch
    y = E.sub(E.add(E.mul(V(1), V(2)), V(3)), V(4))
    relu6 = E.minimum(E.maximum(y, 0), 6)
    outs = [(relu6, F32), (E.call("lt", V(1), V(3)), np.bool_), (E.mul(y, V(5)), F32)]
    req = check_loop([x, s, c, r, b], outs, shape)
    assert not backend.GENERATORS["LOOP"](req).parallel


def test_loop_select_v2_and_leaky_relu():
    shape = (3, 4, 8)
    cond = rnd((1, 4, 1), 6) > 0
    x, y = rnd(shape, 7), rnd((1, 1, 8), 8)
    select = E.substitute(ops.get("SELECT_V2").expr(None), {0: V(1), 1: V(2), 2: V(3)})
    leaky = ops.get("LEAKY_RELU").expr(ops.get("LEAKY_RELU").parse({"alpha": 0.2}))
    outs = [(select, F32), (E.substitute(leaky, {0: select}), F32)]
    req = loop_req([cond, x, y], outs, shape)
    got = backend.run_request(req, [], [cond, x, y])
    sel = np.where(cond, x, y)
    assert_close(got[0], sel)
    assert_close(got[1], np.where(sel > 0, sel, sel * F32(0.2)))


def test_loop_gelu_erf_tanh_hard_swish():
    shape = (4, 33)
    x = rnd(shape, 9, scale=3.0)
    x[0, :3] = [0.0, -0.0, 1e-30]
    gelu = ops.get("GELU")
    exact = gelu.expr(gelu.parse({"approximate": False}))
    approx = gelu.expr(gelu.parse({"approximate": True}))
    hswish = ops.get("HARD_SWISH").expr(None)
    outs = [(E.substitute(e, {0: V(1)}), F32) for e in (exact, approx, hswish)]
    req = check_loop([x], outs, shape)
    src = backend.GENERATORS["LOOP"](req).source
    assert "_erfc32(" in src and "_tanh32(" in src  # vectorizable float32 forms, not scalar libm


def test_loop_exp_is_vectorized_and_accurate():
    """exp prints as printer.py's _exp32 (libm's expf is scalar): < 1 ulp where the result is normal,
    the right inf/0/NaN at the edges, subnormals within one subnormal step."""
    x = np.concatenate([np.linspace(-110, 95, 200_001, dtype=F32),
                        np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 88.72, 88.7228, 88.73,
                                  -87.3, -103.9, -104.5, 1e-30], F32)])
    req = loop_req([x], [(E.call("exp", V(1)), F32)], x.shape)
    assert "_exp32(" in backend.GENERATORS["LOOP"](req).source
    got = backend.run_request(req, [], [x])[0]
    exact = np.exp(x.astype(np.float64))
    with np.errstate(over="ignore"):
        exact32 = exact.astype(F32)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(exact32))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(exact32))
    normal = np.isfinite(exact32) & (exact32 >= np.finfo(F32).tiny)
    ulps = np.abs(got[normal] - exact[normal]) / np.spacing(exact32[normal])
    assert ulps.max() < 1.0
    sub = (exact32 < np.finfo(F32).tiny) & ~np.isnan(exact32)
    assert np.abs(got[sub] - exact[sub]).max() <= np.finfo(F32).smallest_subnormal


def test_loop_int32_wraps_and_truncates():
    shape = (3, 17)
    rng = np.random.default_rng(10)
    x = rng.integers(-2**31, 2**31 - 1, shape, dtype=np.int32)
    y = rng.integers(1, 1000, (1, 17), dtype=np.int32) * rng.choice([-1, 1], (1, 17)).astype(np.int32)
    outs = [(E.add(E.mul(V(1), V(2)), V(1)), np.int32),  # overflows: wraps around
            (E.div(V(1), V(2)), np.int32),  # truncates toward zero
            (E.call("square", E.sub(V(1), V(2))), np.int32),
            (E.call("ge", E.call("neg", V(1)), 7), np.bool_)]
    with np.errstate(over="ignore"):
        check_loop([x, y], outs, shape, exact=True)


def test_loop_scalar_output():
    a, b = np.array(2.5, F32).reshape(()), np.array(-1.0, F32).reshape(())
    req = loop_req([a, b], [(E.div(V(1), V(2)), F32)], ())
    got = backend.run_request(req, [], [a, b])
    assert got[0].shape == () and got[0] == F32(-2.5)


@pytest.mark.parametrize("case", ["chunks", "rows"])
def test_loop_parallel(case):
    if case == "chunks":  # one long 1-D loop: prange over chunks
        x = rnd((1000, 1000), 11, scale=4.0)
        logistic = E.substitute(ops.get("LOGISTIC").expr(None), {0: V(1)})
        req = check_loop([x], [(logistic, F32)], x.shape, num_threads=2)
    else:  # per-channel broadcast: prange over rows
        x, c = rnd((4, 112, 112, 24), 12), rnd((1, 1, 1, 24), 13)
        req = check_loop([x, c], [(E.minimum(E.maximum(E.add(V(1), V(2)), 0), 6), F32)], x.shape,
                         num_threads=2)
    assert backend.GENERATORS["LOOP"](req).parallel


def test_loop_unsupported():
    x = rnd((4,), 0).astype(np.float64)
    with pytest.raises(backend.Unsupported):
        backend.GENERATORS["LOOP"](loop_req([x], [(E.add(V(1), 1), np.float64)], (4,)))
    y = rnd((4,), 0)
    with pytest.raises(backend.Unsupported):  # Var(0) has no meaning in a LOOP
        backend.GENERATORS["LOOP"](loop_req([y], [(E.add(V(0), V(1)), F32)], (4,)))
    with pytest.raises(backend.Unsupported):  # no such input
        backend.GENERATORS["LOOP"](loop_req([y], [(E.add(V(2), V(1)), F32)], (4,)))


# ---- DEPTHWISE_CONV_2D --------------------------------------------------------------------------


def dw_opts(pad="SAME", s=1, d=1, act="NONE", m=0):
    return {"padding": 0 if pad == "SAME" else 1, "stride_h": s, "stride_w": s, "dilation_h_factor": d,
            "dilation_w_factor": d, "fused_activation_function": ACT[act], "depth_multiplier": m}


def dw_inputs(n, h, w, c, k, m=1, seed=0):
    return [rnd((n, h, w, c), seed), rnd((1, k, k, c * m), seed + 1), rnd((c * m,), seed + 2)]


def test_depthwise_3x3_s1_relu6_epilogue():
    inputs = dw_inputs(1, 9, 11, 20, 3, seed=20)
    res, bias = rnd((1, 9, 11, 20), 23), rnd((1, 1, 1, 20), 24)
    epi = [(E.add(E.mul(V(0), V(2)), V(1)), F32), (E.call("gt", V(0), V(1)), np.bool_)]
    check_root("DEPTHWISE_CONV_2D", dw_opts(act="RELU6"), inputs, epilogue=epi, extras=[res, bias])


@pytest.mark.parametrize("cfg", [
    dict(n=2, h=9, w=10, c=5, k=3, m=2, o=dw_opts(s=2)),  # stride 2, depth multiplier, batch
    dict(n=1, h=10, w=11, c=6, k=3, m=1, o=dw_opts(d=2, act="RELU")),  # dilation: more border bands
    dict(n=1, h=8, w=9, c=7, k=5, m=1, o=dw_opts(act="RELU_N1_TO_1")),  # 5x5: generic border path
    dict(n=1, h=10, w=7, c=4, k=4, m=3, o=dw_opts("VALID", s=2, act="TANH")),  # TANH is ignored
])
def test_depthwise_configs(cfg):
    check_root("DEPTHWISE_CONV_2D", cfg["o"], dw_inputs(cfg["n"], cfg["h"], cfg["w"], cfg["c"], cfg["k"],
                                                        cfg["m"], seed=30))


def test_depthwise_parallel_with_generic_border_chunks():
    inputs = dw_inputs(1, 28, 28, 64, 5, seed=40)
    req = check_root("DEPTHWISE_CONV_2D", dw_opts(act="RELU6"), inputs, num_threads=2)
    src = backend.GENERATORS["DEPTHWISE_CONV_2D"](req)
    assert src.parallel and src.source.count("numba.prange") == 2


def test_depthwise_needs_constant_weights():
    inputs = dw_inputs(1, 4, 4, 3, 3)
    attrs = ops.get("DEPTHWISE_CONV_2D").parse(dw_opts())
    req = root_req("DEPTHWISE_CONV_2D", attrs, inputs, const_from=3, out_shape=(1, 4, 4, 3))
    with pytest.raises(backend.Unsupported):
        backend.GENERATORS["DEPTHWISE_CONV_2D"](req)


# ---- pools --------------------------------------------------------------------------------------


def pool_opts(k, s, pad="SAME", act="NONE"):
    return {"padding": 0 if pad == "SAME" else 1, "stride_h": s, "stride_w": s, "filter_height": k,
            "filter_width": k, "fused_activation_function": ACT[act]}


@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("k,s,act", [(3, 2, "RELU6"), (5, 1, "RELU")])
def test_pools(op, k, s, act):
    x = rnd((2, 9, 10, 5), 50, scale=3.0)
    check_root(op, pool_opts(k, s, act=act), [x], const_from=1)


def test_global_average_pool_with_epilogue():
    x = rnd((1, 7, 7, 32), 51)
    scale = rnd((1, 1, 1, 32), 52)
    check_root("AVERAGE_POOL_2D", pool_opts(7, 1, "VALID"), [x],
               epilogue=[(E.mul(V(0), V(1)), F32)], extras=[scale])


# ---- MEAN / SUM / SOFTMAX -------------------------------------------------------------------------


def test_global_mean_is_bit_exact():
    x = rnd((2, 7, 7, 96), 60, scale=5.0)
    check_root("MEAN", {"keep_dims": False}, [x, np.array([1, 2], np.int32)], exact=True)


@pytest.mark.parametrize("op,axes,keep", [
    ("SUM", [0, 2], True),  # kept inner group, strided outer reduction
    ("MEAN", [-1, 1], False),  # reduced inner group (scalar sums)
    ("SUM", [0, 1, 2, 3], False),  # everything: rank-0 output
])
def test_reduce_generic_axes(op, axes, keep):
    x = rnd((3, 4, 5, 6), 61)
    check_root(op, {"keep_dims": keep}, [x, np.array(axes, np.int32)])


def test_reduce_parallel_rows():
    x = rnd((600, 1000), 62)
    req = check_root("SUM", {"keep_dims": True}, [x, np.array([1], np.int32)], num_threads=2)
    assert backend.GENERATORS["SUM"](req).parallel


def test_softmax_with_epilogue():
    x = rnd((3, 7, 10), 63, scale=4.0)
    extra = rnd((1, 1, 10), 64)
    epi = [(E.call("gt", V(0), V(1)), np.bool_), (E.mul(V(0), V(1)), F32)]  # e parked in output 1
    check_root("SOFTMAX", {"beta": 0.7}, [x], epilogue=epi, extras=[extra])


def test_softmax_bool_only_output_uses_scratch():
    x = rnd((2, 9), 66, scale=2.0)
    req = check_root("SOFTMAX", {"beta": 1.0}, [x], epilogue=[(E.call("gt", V(0), 0.1), np.bool_)])
    assert len(backend.GENERATORS["SOFTMAX"](req).args) == 3  # x, scratch, output


def test_softmax_parallel_negative_beta():
    x = rnd((8, 128, 128), 65, scale=2.0)
    req = check_root("SOFTMAX", {"beta": -1.5}, [x], num_threads=2)
    assert backend.GENERATORS["SOFTMAX"](req).parallel


def test_mean_needs_constant_axes():
    x = rnd((1, 4, 4, 3), 0)
    attrs = ops.get("MEAN").parse({"keep_dims": False})
    req = root_req("MEAN", attrs, [x, np.array([1, 2], np.int32)], const_from=2, out_shape=(1, 3))
    with pytest.raises(backend.Unsupported):
        backend.GENERATORS["MEAN"](req)


# ---- composition: request_for on built graphs ------------------------------------------------------


def graph_env(mb: ModelBuilder, num_threads: int = 1):
    model = mb.model()
    opdefs, attrs = resolve_ops(model, 0)
    sg = model.subgraphs[0]
    infos = infer_subgraph(sg, {}, attrs, opdefs)
    return CompileEnv(sg, attrs, infos, num_threads), opdefs


def reference_values(env: CompileEnv, opdefs, feeds: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    vals = dict(feeds)
    for t, info in enumerate(env.infos):
        if info.value is not None:
            vals.setdefault(t, info.value)
    for op, opdef, a in zip(env.subgraph.ops, opdefs, env.attrs):
        for t, y in zip(op.outputs, opdef.reference([None if i < 0 else vals[i] for i in op.inputs], a)):
            vals[t] = y
    return vals


def run_cluster(env, opdefs, feeds, op_ids, outputs):
    cluster = Cluster(ops=tuple(op_ids), inputs=(), outputs=tuple(outputs))
    rq = backend.request_for(cluster, env)
    req = rq.req
    vals = reference_values(env, opdefs, feeds)
    ins = [None if t < 0 else vals[t] for t in rq.input_ids]
    extras = [vals[t] for t in rq.extra_ids]
    got = backend.run_request(req, ins, extras)
    for t, g in zip(outputs, got):
        assert_close(g, vals[t], what=f"tensor {t}")
    return req


def test_graph_depthwise_add_relu6():
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 12, 12, 16), F32)
    w, b = g.const("w", rnd((1, 3, 3, 16), 70)), g.const("b", rnd((16,), 71))
    (y,) = g.apply("DEPTHWISE_CONV_2D", [x, w, b], padding="SAME", stride_h=2, stride_w=2,
                   depth_multiplier=1, fused_activation_function="NONE")
    (z,) = g.apply("ADD", [y, g.const("c", rnd((16,), 72))], fused_activation_function="NONE")
    (r,) = g.apply("RELU6", [z])
    g.output(r)
    env, opdefs = graph_env(mb)
    req = run_cluster(env, opdefs, {x: rnd((1, 12, 12, 16), 73)}, [0, 1, 2], [r])
    assert req.op_name == "DEPTHWISE_CONV_2D" and len(req.extras) == 1


def test_graph_loop_chain_broadcasting_two_outputs():
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (2, 6, 5, 8), F32)
    y = g.input("y", (6, 1, 8), F32)
    (a,) = g.apply("ADD", [x, g.const("c", rnd((8,), 80))], fused_activation_function="RELU")
    (m,) = g.apply("MUL", [a, y], fused_activation_function="NONE")
    (s,) = g.apply("LOGISTIC", [m])
    g.output(m, s)
    env, opdefs = graph_env(mb, num_threads=2)  # small: stays serial regardless
    req = run_cluster(env, opdefs, {x: rnd((2, 6, 5, 8), 81), y: rnd((6, 1, 8), 82)}, [0, 1, 2], [m, s])
    assert req.op_name == "LOOP" and not backend.GENERATORS["LOOP"](req).parallel


def test_graph_mean_with_epilogue():
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 7, 7, 40), F32)
    (mn,) = g.apply("MEAN", [x, g.const("axes", np.array([1, 2], np.int32))], keep_dims=False)
    (z,) = g.apply("SUB", [mn, g.const("c", rnd((40,), 90))], fused_activation_function="RELU6")
    g.output(z)
    env, opdefs = graph_env(mb)
    run_cluster(env, opdefs, {x: rnd((1, 7, 7, 40), 91, scale=3.0)}, [0, 1], [z])
