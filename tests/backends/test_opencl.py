"""The OpenCL backend (backends/opencl) on PoCL, against the reference backend.

* every root op it claims (one-op models compiled with backend.compile), with its options;
* every elementwise op with an expression tree, printed as OpenCL C (one LOOP program holds them
  all, so the sweep costs one build), including NaN/inf inputs;
* fused epilogues and partitions: intermediates stay on the device (host transfers counted);
* the synthetic models (tiny_convnet, mobilenet_v2 64/0.5, a small transformer) within the float
  contract, and with allow_fp16 within FP16_RTOL;
* the cost model's calibration cache, and the errors when no OpenCL runtime/device is usable.

The backend is built once per module: OpenCL programs are cached per source text in it. Skipped
(with the reason) where no OpenCL device can compile kernels.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.oracle import Const, assert_close, one_op_model
from tflite_jit import models, ops
from tflite_jit.backends.base import Cluster
from tflite_jit.backends.reference.backend import ReferenceBackend
from tflite_jit.backends.request import KernelRequest, Output, TensorArg
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.reader import load_bytes
from tflite_jit.ir.model import Model
from tflite_jit.ops import expr as E
from tflite_jit.ops.base import PatternKind
from tflite_jit.runtime.one_backend import GraphKernel, env_of, single_cluster

F32 = np.float32
TRANSFORMER = dict(seq_len=16, d_model=32, num_heads=2, d_ff=64, num_layers=1, vocab=50)
ACT = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}


@pytest.fixture(scope="module")
def cl_backend():
    from tflite_jit.backends.opencl import OpenCLBackend

    try:
        # tests must run on PoCL (the CPU driver CI installs), whatever else is installed
        return OpenCLBackend({"device": "Portable Computing Language"})
    except RuntimeError as e:
        pytest.skip(f"no usable OpenCL device: {e}")


def rnd(shape, seed=0, scale=1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(F32)


# ---- running graphs: clusters -> partitions of consecutive OpenCL clusters ---------------------

def run_graph(model: Model, inputs: list[np.ndarray], backend=None, fusion: str = "epilogue") -> tuple[list, dict]:
    g = GraphKernel(model, backend, fusion)
    outs = g(inputs)
    return outs, {**g.stats, "transfers": g.transfers()}


def check_model(data: bytes, inputs: list[np.ndarray], backend, *, fusion="epilogue", rtol=1e-4,
                all_ops=True) -> dict:
    model = load_bytes(data)
    want, _ = run_graph(model, inputs, None, "none")
    got, stats = run_graph(model, inputs, backend, fusion)
    for g, w in zip(got, want):
        assert_close(g, w, rtol=rtol)
    if all_ops:
        assert stats["opencl_ops"] == len(model.subgraphs[0].ops), stats
    return stats


def one_op(op: str, inputs: list, backend, rtol=1e-4, **options) -> dict:
    """One-op model: ndarray inputs in `Const` are constants, plain arrays are graph inputs."""
    specs = [None if x is None else x.value if isinstance(x, Const) else (x.shape, x.dtype) for x in inputs]
    feeds = [x for x in inputs if isinstance(x, np.ndarray)]
    return check_model(one_op_model(op, specs, **options), feeds, backend, fusion="none", rtol=rtol)


# ---- root ops ------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", [
    dict(x=(1, 9, 9, 3), f=(8, 3, 3, 3), padding="SAME", s=2, d=1, act="RELU6"),
    dict(x=(2, 7, 6, 4), f=(6, 2, 3, 2), padding="VALID", s=1, d=2, act="NONE"),  # grouped, dilated
    dict(x=(1, 5, 5, 8), f=(16, 1, 1, 8), padding="SAME", s=1, d=1, act="RELU"),
])
def test_conv2d(cl_backend, case):
    co = case["f"][0]
    one_op("CONV_2D", [rnd(case["x"]), Const(rnd(case["f"], 1)), Const(rnd((co,), 2))], cl_backend,
           padding=case["padding"], stride_h=case["s"], stride_w=case["s"], dilation_h_factor=case["d"],
           dilation_w_factor=case["d"], fused_activation_function=ACT[case["act"]])


def test_conv_fc_runtime_weights(cl_backend):
    """Weights produced at run time take the untiled kernels (no packing at plan time)."""
    one_op("CONV_2D", [rnd((1, 6, 6, 4)), rnd((5, 3, 3, 4), 1), Const(rnd((5,), 2))], cl_backend,
           padding="SAME", stride_h=1, stride_w=1, fused_activation_function=ACT["RELU"])
    one_op("FULLY_CONNECTED", [rnd((3, 12)), rnd((5, 12), 1), None], cl_backend)


@pytest.mark.parametrize("c,mult,padding,stride", [(5, 1, "SAME", 2), (5, 2, "VALID", 1), (16, 1, "SAME", 1)])
def test_depthwise(cl_backend, c, mult, padding, stride):
    one_op("DEPTHWISE_CONV_2D", [rnd((1, 8, 7, c)), Const(rnd((1, 3, 3, c * mult), 1)),
                                 Const(rnd((c * mult,), 2))], cl_backend,
           padding=padding, stride_h=stride, stride_w=stride, depth_multiplier=mult,
           fused_activation_function=ACT["RELU_N1_TO_1"])


def test_fully_connected(cl_backend):
    one_op("FULLY_CONNECTED", [rnd((3, 20)), Const(rnd((7, 20), 1)), Const(rnd((7,), 2))], cl_backend,
           fused_activation_function=ACT["RELU"])
    one_op("FULLY_CONNECTED", [rnd((2, 3, 10)), Const(rnd((4, 10), 1)), None], cl_backend,
           keep_num_dims=True)


@pytest.mark.parametrize("xs,ys,adj_x,adj_y", [((2, 3, 5), (2, 5, 4), False, False),
                                                ((2, 1, 5, 3), (3, 4, 5), True, True)])
def test_batch_matmul(cl_backend, xs, ys, adj_x, adj_y):
    one_op("BATCH_MATMUL", [rnd(xs), rnd(ys, 1)], cl_backend, adj_x=adj_x, adj_y=adj_y)


@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool(cl_backend, op):
    one_op(op, [rnd((2, 7, 9, 3))], cl_backend, padding="SAME", stride_h=2, stride_w=2,
           filter_height=3, filter_width=2, fused_activation_function=ACT["RELU6"])


@pytest.mark.parametrize("op,axes,keep", [("MEAN", [1, 2], True), ("SUM", [-1, 0], False), ("MEAN", [1], False)])
def test_reduce(cl_backend, op, axes, keep):
    one_op(op, [rnd((2, 5, 6, 3)), Const(np.array(axes, np.int32))], cl_backend, keep_dims=keep)


def test_softmax(cl_backend):
    one_op("SOFTMAX", [rnd((2, 3, 17), scale=4)], cl_backend, beta=0.7)


def test_pad_transpose(cl_backend):
    one_op("PAD", [rnd((1, 4, 5, 3)), Const(np.array([[0, 0], [1, 2], [0, 1], [0, 0]], np.int32))], cl_backend)
    one_op("TRANSPOSE", [rnd((2, 3, 4, 5)), Const(np.array([0, 2, 1, 3], np.int32))], cl_backend)


# ---- every elementwise expression ------------------------------------------------------------------

def _bool_vars(e: E.Expr) -> set[int]:
    """Inputs used as truth values (where's condition, logic operands)."""
    out = set()
    for n in E.nodes(e):
        if isinstance(n, E.Call):
            args = n.args[:1] if n.fn == "where" else n.args if n.fn in ("and", "or", "not") else ()
            out |= {a.index for a in args if isinstance(a, E.Var)}
    return out


def _elementwise_exprs() -> dict[str, E.Expr]:
    special = {"FAKE_QUANT": {"min": -1.0, "max": 1.0, "num_bits": 8}, "LEAKY_RELU": {"alpha": 0.2},
               "GELU": {"approximate": True}}
    out = {}
    for name, opdef in sorted(ops.all_ops().items()):
        if opdef.expr is None or opdef.kind not in (PatternKind.ELEMWISE, PatternKind.BROADCAST):
            continue
        try:
            e = opdef.expr(opdef.parse(special.get(name, {})))
        except Exception:
            continue  # needs bind-time attrs (ADD_N's arity)
        if E.variables(e):
            out[name] = e
    out["GELU_exact"] = ops.get("GELU").expr(ops.get("GELU").parse({}))
    return out


def test_every_elementwise_expression(cl_backend):
    from tflite_jit.backends.opencl import printer
    from tflite_jit.backends.opencl.kernels import generate
    from tflite_jit.backends.opencl.kernels.common import KERNEL_NAME

    shape = (4, 64)
    rng = np.random.default_rng(0)
    xf = [rng.uniform(-3, 3, shape).astype(F32) for _ in range(3)]
    xf[0][0, :8] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 2.5, -2.5, 1e30]
    xf[1][0, :8] = [1.0, 2.0, np.nan, 1.0, 1.0, 0.5, -0.5, 1e30]
    xb = [rng.integers(0, 2, shape).astype(np.bool_) for _ in range(3)]
    outputs, names, refused = [], [], []
    extras: list[np.ndarray] = xf + xb  # Var(1..3) floats, Var(4..6) bools
    for name, e in _elementwise_exprs().items():
        try:
            printer.emit([e], {i: "a" for i in E.variables(e)})
        except printer.PrintError:
            refused.append(name)
            continue
        bools = _bool_vars(e)
        e1 = E.substitute(e, {i: E.Var(1 + i + (3 if i in bools else 0)) for i in E.variables(e)})
        dt = np.bool_ if printer.is_bool(e1, {4: True, 5: True, 6: True}) else F32
        outputs.append(Output(e1, TensorArg(shape, np.dtype(dt))))
        names.append(name)
    integer_only = {"BITWISE_XOR", "RIGHT_SHIFT", "STABLEHLO_AND"}
    assert set(refused) <= integer_only, refused
    assert len(names) >= 45, names
    req = KernelRequest("LOOP", None, [], [TensorArg(shape, x.dtype) for x in extras], outputs)
    storage = {("extra", k): "u8" for k in range(3, 6)}
    storage.update({("output", j): "u8" for j, o in enumerate(outputs) if o.arg.dtype == np.bool_})
    src = generate(req, storage)
    cl = cl_backend.cl
    kernel = cl.Kernel(cl_backend.program(src.source), KERNEL_NAME)
    mf = cl.mem_flags
    bufs, results = [], []
    for a in src.args:
        if a.kind == "extra":
            x = extras[a.index]
            bufs.append(cl.Buffer(cl_backend.ctx, mf.READ_ONLY | mf.COPY_HOST_PTR,
                                  hostbuf=np.ascontiguousarray(x.view(np.uint8) if x.dtype == np.bool_ else x)))
        else:
            o = outputs[a.index]
            results.append((a.index, np.empty(shape, np.uint8 if o.arg.dtype == np.bool_ else F32)))
            bufs.append(cl.Buffer(cl_backend.ctx, mf.WRITE_ONLY, results[-1][1].nbytes))
    kernel.set_args(*bufs)
    cl.enqueue_nd_range_kernel(cl_backend.queue, kernel, (src.global_size,), None)
    out_bufs = [b for a, b in zip(src.args, bufs) if a.kind == "output"]
    for (_, host), buf in zip(results, out_bufs):
        cl.enqueue_copy(cl_backend.queue, host, buf)
    for j, host in results:
        o = outputs[j]
        want = E.evaluate_numpy(o.expr, [xf[0], *extras], dtype=F32)
        got = host.view(np.bool_) if o.arg.dtype == np.bool_ else host
        assert_close(got, np.broadcast_to(want, shape).astype(o.arg.dtype), what=names[j])


# ---- fusion, partitions, device residency ---------------------------------------------------------

def _chain_model() -> bytes:
    """conv(RELU) -> +bias-like const broadcast -> tanh; -> depthwise -> mul by a graph input
    broadcast over channels -> mean; graph outputs: both ends."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 8, 8, 3), F32)
    s = g.input("s", (1, 1, 1, 6), F32)
    w = g.const("w", rnd((6, 3, 3, 3), 1))
    b = g.const("b", rnd((6,), 2))
    (y,) = g.apply("CONV_2D", [x, w, b], padding="SAME", stride_h=1, stride_w=1, fused_activation_function=1)
    (y,) = g.apply("ADD", [y, g.const("k", rnd((1, 1, 8, 6), 3))])
    (y,) = g.apply("TANH", [y])
    (z,) = g.apply("DEPTHWISE_CONV_2D", [y, g.const("dw", rnd((1, 3, 3, 6), 4)), g.const("db", rnd((6,), 5))],
                   padding="VALID", stride_h=2, stride_w=2, depth_multiplier=1)
    (z,) = g.apply("MUL", [z, s])
    (m,) = g.apply("MEAN", [z, g.const("ax", np.array([1, 2], np.int32))], keep_dims=False)
    (r,) = g.apply("RESHAPE", [m, g.const("shape", np.array([2, 3], np.int32))])
    (sm,) = g.apply("SOFTMAX", [r], beta=1.0)
    g.output(y, sm)
    return mb.build()


def test_partition_keeps_intermediates_on_device(cl_backend):
    inputs = [rnd((1, 8, 8, 3), 7), rnd((1, 1, 1, 6), 8)]
    for fusion in ("none", "epilogue"):
        stats = check_model(_chain_model(), inputs, cl_backend, fusion=fusion)
        # one partition: 2 inputs up, 2 outputs down, nothing else crosses
        assert stats["partitions"] == 1 and stats["transfers"] == 4, stats
    # conv+add+tanh, depthwise, mul (a graph input: not an XNNPACK-style epilogue), mean, softmax;
    # the reshape is a view of the mean's buffer
    assert stats["kernels"] == 5, stats


def test_fused_epilogue_is_one_kernel(cl_backend):
    model = load_bytes(_chain_model())
    env = env_of(model)
    sg = env.subgraph
    c = Cluster((0, 1, 2), tuple(sorted({sg.ops[0].inputs[0], *sg.ops[0].inputs[1:], sg.ops[1].inputs[1]})),
                (sg.ops[2].outputs[0],))
    k = cl_backend.compile(c, env)
    assert len(k.launches) == 1
    x = rnd((1, 8, 8, 3), 7)
    got = k([x if t == sg.inputs[0] else sg.tensors[t].data for t in c.inputs])[0]
    ref = ReferenceBackend().compile(c, env)([x if t == sg.inputs[0] else sg.tensors[t].data for t in c.inputs])[0]
    assert_close(got, ref)


def test_long_fused_epilogue(cl_backend):
    """A conv whose epilogue is 30 fused ops (over 64 expression nodes: the tiled kernel then
    prints it for one pixel per work-item, 8 lanes)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 6, 6, 4), F32)
    (y,) = g.apply("CONV_2D", [x, g.const("w", rnd((8, 3, 3, 4), 1, 0.3)), g.const("b", rnd((8,), 2))],
                   padding="SAME", stride_h=1, stride_w=1)
    for i in range(15):
        (y,) = g.apply("MUL", [y, g.const(f"m{i}", np.float32(0.9 + 0.01 * i).reshape(1))])
        (y,) = g.apply("ADD", [y, g.const(f"a{i}", rnd((8,), 10 + i, 0.1))])
    g.output(y)
    stats = check_model(mb.build(), [rnd((1, 6, 6, 4), 3)], cl_backend)
    assert stats["kernels"] == 1, stats


def test_through_executable(cl_backend):
    """The runtime's path: Executable(backends=[opencl, reference]) plans, compiles and runs."""
    from tflite_jit.runtime.executable import Executable

    model = load_bytes(_chain_model())
    sg = model.subgraphs[0]
    inputs = [rnd((1, 8, 8, 3), 7), rnd((1, 1, 1, 6), 8)]
    ex = Executable(model, 0, [cl_backend, ReferenceBackend()], fusion="epilogue")
    ex.prepare({i: tuple(sg.tensors[i].shape) for i in sg.inputs})
    for tid, v in zip(sg.inputs, inputs):
        ex.buffers[tid][...] = v
    ex.run()
    want, _ = run_graph(model, inputs)
    for t, w in zip(sg.outputs, want):
        assert_close(ex.buffers[t], w)


def test_supports_reasons(cl_backend):
    data = one_op_model("ADD", [((2, 3), np.int32), ((2, 3), np.int32)])
    env = env_of(load_bytes(data))
    ok, why = cl_backend.supports(env.subgraph.ops[0], env)
    assert not ok and "float32 only" in why
    data = one_op_model("GATHER", [((4, 3), F32), np.array([0, 2], np.int32)], axis=0)
    env = env_of(load_bytes(data))
    ok, why = cl_backend.supports(env.subgraph.ops[0], env)
    assert not ok and why == "no OpenCL kernel for GATHER"


# ---- models -----------------------------------------------------------------------------------------

def _model_inputs(model: Model, seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in model.subgraphs[0].inputs:
        t = model.subgraphs[0].tensors[i]
        if np.dtype(t.dtype) == np.int32:
            out.append(rng.integers(0, 50, t.shape, dtype=np.int32))
        elif "mask" in t.name:
            m = np.ones(t.shape, F32)
            m[..., -2:] = 0
            out.append(m)
        else:
            out.append(rng.standard_normal(t.shape).astype(F32))
    return out


@pytest.mark.parametrize("name,kw", [
    ("tiny_convnet", {}),
    ("mobilenet_v2", dict(input_size=64, alpha=0.5)),
    ("transformer_encoder", TRANSFORMER),
])
def test_models(cl_backend, name, kw):
    data = models.build(name, **kw)
    model = load_bytes(data)
    stats = check_model(data, _model_inputs(model), cl_backend, all_ops=False)
    n_ops = len(model.subgraphs[0].ops)
    # everything but the int32 GATHER of token ids runs on the device
    assert stats["opencl_ops"] >= n_ops - 1, stats


def _small_convnet() -> bytes:
    """conv 3x3 -> depthwise (16 channels: the float8 path) -> 1x1 conv -> mean -> FC -> softmax."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 12, 12, 3), F32)
    (y,) = g.apply("CONV_2D", [x, g.const("w1", rnd((16, 3, 3, 3), 1, 0.5)), g.const("b1", rnd((16,), 2))],
                   padding="SAME", stride_h=2, stride_w=2, fused_activation_function=3)
    (y,) = g.apply("DEPTHWISE_CONV_2D", [y, g.const("w2", rnd((1, 3, 3, 16), 3, 0.5)), g.const("b2", rnd((16,), 4))],
                   padding="SAME", stride_h=1, stride_w=1, depth_multiplier=1, fused_activation_function=3)
    (y,) = g.apply("CONV_2D", [y, g.const("w3", rnd((24, 1, 1, 16), 5, 0.3)), g.const("b3", rnd((24,), 6))],
                   padding="SAME", stride_h=1, stride_w=1)
    (y,) = g.apply("MEAN", [y, g.const("ax", np.array([1, 2], np.int32))], keep_dims=False)
    (y,) = g.apply("FULLY_CONNECTED", [y, g.const("w4", rnd((10, 24), 7, 0.3)), g.const("b4", rnd((10,), 8))])
    (y,) = g.apply("SOFTMAX", [y], beta=1.0)
    g.output(y)
    return mb.build()


def test_fp16_storage_contract(cl_backend):
    """allow_fp16: weights and in-partition intermediates in half precision, float32 math; the
    contract is FP16_RTOL of the largest output magnitude (docs: backends/opencl/backend.py)."""
    from tflite_jit.backends.opencl import FP16_RTOL, OpenCLBackend

    x = [rnd((1, 12, 12, 3), 9)]
    # on a CPU device allow_fp16 alone keeps float32 (half is converted in software there)
    b = OpenCLBackend({"device": "Portable Computing Language", "allow_fp16": True})
    if b.device.type & b.cl.device_type.CPU:
        assert not b.allow_fp16
        b = OpenCLBackend({"device": "Portable Computing Language", "allow_fp16": True, "fp16_on_cpu": True})
    assert b.allow_fp16
    check_model(_small_convnet(), x, b, rtol=FP16_RTOL)
    half, _ = run_graph(load_bytes(_small_convnet()), x, b)
    full, _ = run_graph(load_bytes(_small_convnet()), x, cl_backend)
    assert_close(full[0], run_graph(load_bytes(_small_convnet()), x)[0][0])
    assert not np.array_equal(half[0], full[0])  # half storage is really used
    # a -1e9 additive attention mask saturates to -65504 in half storage instead of inf/NaN
    mb = ModelBuilder()
    g = mb.subgraph()
    scores, mask = g.input("scores", (1, 2, 4, 8), F32), g.input("mask", (1, 1, 1, 8), F32)
    (bias,) = g.apply("SUB", [g.const("one", np.ones((1,), F32)), mask])
    (bias,) = g.apply("MUL", [bias, g.const("big", np.array([-1e9], F32))])
    (y,) = g.apply("SOFTMAX", [g.apply("ADD", [scores, bias])[0]], beta=1.0)
    g.output(y)
    m = (np.arange(8) < 6).astype(F32).reshape(1, 1, 1, 8)
    check_model(mb.build(), [rnd((1, 2, 4, 8), 10), m], b, fusion="none", rtol=FP16_RTOL)


# ---- cost model -------------------------------------------------------------------------------------

def test_cost_and_calibration_cache(cl_backend, tmp_path, monkeypatch):
    from tflite_jit.backends.opencl import calibrate

    monkeypatch.setenv("TFLITE_JIT_CACHE_DIR", str(tmp_path))
    cl_backend._roofline = None
    small = env_of(load_bytes(one_op_model("CONV_2D", [((1, 8, 8, 4), F32), rnd((8, 3, 3, 4)), rnd((8,))],
                                           padding="SAME", stride_h=1, stride_w=1)))
    big = env_of(load_bytes(one_op_model("CONV_2D", [((1, 64, 64, 16), F32), rnd((32, 3, 3, 16)), rnd((32,))],
                                         padding="SAME", stride_h=1, stride_w=1)))
    cs = cl_backend.cost(single_cluster(small.subgraph, 0), small)
    cb = cl_backend.cost(single_cluster(big.subgraph, 0), big)
    assert 0 < cs < cb
    files = list((tmp_path / "opencl").glob("calibration-*.json"))
    assert len(files) == 1
    r = json.loads(files[0].read_text())
    assert r["flops_per_s"] > 1e8 and r["bytes_per_s"] > 1e8 and 0 < r["launch_s"] < 1e-2
    assert cl_backend.transfer_seconds(1 << 20) > cl_backend.transfer_seconds(1 << 10) > 0
    # a second backend reads the cached constants instead of measuring
    monkeypatch.setattr(calibrate, "measure", lambda *a: (_ for _ in ()).throw(AssertionError("re-measured")))
    cl_backend._roofline = None
    assert cl_backend.cost(single_cluster(small.subgraph, 0), small) == pytest.approx(cs)
    cl_backend._roofline = None


# ---- no OpenCL runtime ------------------------------------------------------------------------------

def _need_devices() -> None:
    """Skip unless pyopencl imports and lists at least one device (compiling or not)."""
    from tflite_jit.backends.opencl import device

    try:
        device.list_devices(device.import_pyopencl())
    except RuntimeError as e:
        pytest.skip(str(e))


def test_missing_pyopencl(monkeypatch):
    from tflite_jit.backends.opencl import OpenCLBackend

    monkeypatch.setitem(sys.modules, "pyopencl", None)  # import pyopencl -> ImportError
    with pytest.raises(RuntimeError, match="pyopencl cannot be imported.*pip install"):
        OpenCLBackend({})
    # the package itself imports without pyopencl (only constructing the backend needs it)
    code = ("import sys; sys.modules['pyopencl'] = None\n"
            "import tflite_jit.backends.opencl as m\n"
            "try:\n    m.OpenCLBackend({})\nexcept RuntimeError as e:\n    print('RuntimeError', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("RuntimeError OpenCL backend unavailable"), r.stderr


def test_no_platform_and_bad_device(monkeypatch):
    from tflite_jit.backends.opencl import OpenCLBackend, device

    class NoPlatform:
        class LogicError(Exception):
            pass

        @staticmethod
        def get_platforms():
            raise NoPlatform.LogicError("clGetPlatformIDs failed: PLATFORM_NOT_FOUND_KHR")

    monkeypatch.setattr(device, "import_pyopencl", lambda: NoPlatform)
    with pytest.raises(RuntimeError, match="no OpenCL platform found"):
        OpenCLBackend({})
    monkeypatch.undo()
    _need_devices()
    with pytest.raises(RuntimeError, match="matches no device"):
        OpenCLBackend({"device": "no such device xyz"})
    with pytest.raises(RuntimeError, match="matches no device"):
        OpenCLBackend({"device": "99"})
    with pytest.raises(ValueError, match="unknown option"):
        OpenCLBackend({"fp16": True})


def test_device_that_cannot_compile(monkeypatch):
    from tflite_jit.backends.opencl import OpenCLBackend, device

    _need_devices()
    monkeypatch.setattr(device, "builds", lambda cl, d: "error: unknown target CPU 'generic'")
    with pytest.raises(RuntimeError, match="cannot compile kernels.*unknown target CPU"):
        OpenCLBackend({})
