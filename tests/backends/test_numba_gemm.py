"""The Numba GEMM generators (CONV_2D, FULLY_CONNECTED, BATCH_MATMUL) against the ops' NumPy
references, with fused epilogues, under the float contract (tests/oracle.py).

Compile time is the budget here (CI: 2 cores): every case is a distinct kernel, so the grid is
kept to ~25 kernels that each cover several things at once (padding, strides, activation,
masked column tails, partial row tiles, epilogue kinds). Numba's on-disk cache makes reruns fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from tests.oracle import assert_close
from tflite_jit import ops
from tflite_jit.backends.numba_cpu import backend
from tflite_jit.backends.numba_cpu.generators import gemm
from tflite_jit.backends.request import KernelRequest, Output, TensorArg, Unsupported
from tflite_jit.ops import expr as E

F32 = np.dtype(np.float32)
ACT = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4, "SIGN_BIT": 5}
V0 = E.Var(0)


def _rand(rng: np.random.Generator, shape: Sequence[int], scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(F32)


def check(op: str, options: dict, inputs: list[np.ndarray | None], const: Sequence[int],
          extras: Sequence[np.ndarray] = (), exprs: Sequence[E.Expr] = (V0,),
          out_dtypes: Sequence[np.dtype] | None = None, threads: int = 1) -> KernelRequest:
    """Build the request (inputs in `const` carry their values), run it, compare every output
    with the op's reference followed by the epilogue evaluated in NumPy."""
    opdef = ops.get(op)
    attrs = opdef.parse(options)
    ref = opdef.reference(inputs, attrs)[0]
    rank = ref.ndim
    extras = [np.ascontiguousarray(x.reshape((1,) * (rank - x.ndim) + x.shape)) for x in extras]
    out_dtypes = out_dtypes or [F32] * len(exprs)
    req = KernelRequest(
        op, attrs,
        [None if a is None else TensorArg(a.shape, a.dtype, a if i in const else None)
         for i, a in enumerate(inputs)],
        [TensorArg(x.shape, x.dtype, None) for x in extras],
        [Output(e, TensorArg(ref.shape, np.dtype(dt))) for e, dt in zip(exprs, out_dtypes)],
        threads)
    outs = backend.run_request(req, inputs, extras)
    for q, (e, dt) in enumerate(zip(exprs, out_dtypes)):
        want = E.evaluate_numpy(e, [ref, *extras], F32).astype(dt)
        assert_close(outs[q], want, what=f"{op} output {q}")
    return req


def conv(rng, x_shape, co, k, stride=1, padding="SAME", act="RELU6", dilation=1, const=(1, 2),
         extras=(), exprs=(V0,), threads=1, out_dtypes=None, kw=None):
    ci = x_shape[-1]
    kh, kw = (k, k) if kw is None else (k, kw)
    x = _rand(rng, x_shape)
    f = _rand(rng, (co, kh, kw, ci), 1.0 / np.sqrt(kh * kw * ci))
    b = _rand(rng, (co,))
    opts = {"padding": 0 if padding == "SAME" else 1, "stride_h": stride, "stride_w": stride,
            "dilation_h_factor": dilation, "dilation_w_factor": dilation,
            "fused_activation_function": ACT[act]}
    return check("CONV_2D", opts, [x, f, b], const, extras, exprs, out_dtypes, threads)


# ---- CONV_2D ------------------------------------------------------------------------------------

# 1x1 convs at MobileNetV2 shapes: expansion (small K, wide N), projection (N = 24, 40: masked
# column tails), the last expansion (N = 960), and a batch of 2; one activation each.
@pytest.mark.parametrize("x_shape,co,act", [
    ((1, 56, 56, 24), 144, "RELU6"),
    ((1, 28, 28, 144), 24, "NONE"),
    ((1, 14, 14, 64), 40, "RELU"),
    ((1, 7, 7, 160), 960, "RELU_N1_TO_1"),
    ((2, 5, 3, 16), 16, "TANH"),  # TANH is ignored by LiteRT's float conv (ops/nn.py)
])
def test_conv_1x1(x_shape, co, act):
    conv(np.random.default_rng(1), x_shape, co, 1, act=act)


# Spatial convs: stride 1/2, SAME/VALID, odd/even sizes (SAME pads after only, or both sides),
# dilation 2, non-square and large (7x7: looped taps) filters, batch 2.
@pytest.mark.parametrize("x_shape,co,k,stride,padding,dilation,act,kw", [
    ((1, 224, 224, 3), 32, 3, 2, "SAME", 1, "RELU6", None),  # MobileNet stem, pads after only
    ((1, 15, 13, 8), 20, 3, 2, "SAME", 1, "RELU", None),  # odd sizes: pads both sides
    ((2, 10, 9, 16), 24, 3, 1, "SAME", 1, "NONE", None),
    ((1, 16, 12, 5), 7, 3, 2, "VALID", 1, "RELU_N1_TO_1", None),  # VALID leaves a column unread
    ((1, 17, 16, 8), 16, 3, 1, "SAME", 2, "SIGN_BIT", None),  # dilation 2; SIGN_BIT ignored
    ((1, 20, 20, 3), 8, 7, 2, "SAME", 1, "RELU6", None),
    ((1, 9, 11, 4), 12, 1, 1, "SAME", 1, "RELU", 5),  # 1x5
])
def test_conv_spatial(x_shape, co, k, stride, padding, dilation, act, kw):
    conv(np.random.default_rng(2), x_shape, co, k, stride, padding, act, dilation, kw=kw)


def test_conv_epilogues():
    """Residual ADD of a full-shape extra then a RELU6 clamp expression; per-channel MUL by a
    constant (1, 1, 1, C) extra; two outputs from one kernel."""
    rng = np.random.default_rng(3)
    res = _rand(rng, (1, 14, 14, 32))
    scale = _rand(rng, (32,))
    e0 = E.minimum(E.maximum(E.add(V0, E.Var(1)), 0.0), 6.0)
    e1 = E.mul(V0, E.Var(2))
    conv(rng, (1, 14, 14, 96), 32, 1, act="NONE", extras=[res, scale], exprs=[e0, e1])


def test_conv_scalar_epilogue_and_bool_output():
    """Expressions with no vector form (tanh, comparison -> bool output) take the scalar path;
    a broadcast extra varying along H only (general row offsets)."""
    rng = np.random.default_rng(4)
    rowb = _rand(rng, (1, 9, 1, 1))
    e0 = E.call("tanh", E.mul(V0, E.Var(1)))
    e1 = E.call("gt", V0, E.Var(1))
    conv(rng, (1, 9, 9, 8), 20, 3, 1, "SAME", "RELU", extras=[rowb], exprs=[e0, e1],
         out_dtypes=[F32, np.bool_])


def test_conv_runtime_filter_and_bias_reused():
    """A filter and bias that are not constants are packed by the kernel at run time; the padded
    input scratch and the packed weights are rebuilt on every call (second call, new data)."""
    rng = np.random.default_rng(5)
    req = conv(rng, (1, 12, 12, 8), 24, 3, 2, "SAME", "RELU6", const=())
    fn, src = backend.compile_request(req)
    attrs = req.attrs
    for _ in range(2):
        x, f, b = _rand(rng, (1, 12, 12, 8)), _rand(rng, (24, 3, 3, 8), 0.3), _rand(rng, (24,))
        out = np.empty(req.out_shape, F32)
        fn(*backend.bind(src, [x, f, b], [], [out]))
        assert_close(out, ops.get("CONV_2D").reference([x, f, b], attrs)[0])


def test_conv_parallel():
    """Enough work to prange over tasks (num_threads=2), with a residual extra."""
    rng = np.random.default_rng(6)
    res = _rand(rng, (1, 28, 28, 192))
    req = conv(rng, (1, 28, 28, 32), 192, 1, act="RELU6", extras=[res],
               exprs=[E.add(V0, E.Var(1))], threads=2)
    assert backend.compile_request(req)[1].parallel


# ---- FULLY_CONNECTED ---------------------------------------------------------------------------


def fc(rng, x_shape, units, depth, bias=True, act="NONE", keep=False, const=(1, 2), threads=1,
       extras=(), exprs=(V0,)):
    x = _rand(rng, x_shape)
    w = _rand(rng, (units, depth), 1.0 / np.sqrt(depth))
    b = _rand(rng, (units,)) if bias else None
    opts = {"fused_activation_function": ACT[act], "keep_num_dims": keep}
    return check("FULLY_CONNECTED", opts, [x, w, b], const, extras, exprs, threads=threads)


def test_fc_bias_flattened():
    fc(np.random.default_rng(7), (2, 3, 64), 100, 64, bias=True, act="RELU6")


def test_fc_no_bias_keep_num_dims():
    fc(np.random.default_rng(8), (2, 5, 48), 40, 48, bias=False, act="RELU", keep=True)


def test_fc_indivisible_input_truncates():
    """LiteRT: rows = size // depth, trailing elements ignored (ops/nn.py)."""
    fc(np.random.default_rng(9), (3, 10), 17, 4, act="RELU_N1_TO_1")


def test_fc_gemv_mobilenet_head_parallel():
    """1x1280 -> 1000 (weight-bound GEMV: parallel over panels at 2 threads)."""
    req = fc(np.random.default_rng(10), (1, 1280), 1000, 1280, threads=2)
    assert backend.compile_request(req)[1].parallel


def test_fc_runtime_weights_with_epilogue():
    rng = np.random.default_rng(11)
    fc(rng, (7, 33), 21, 33, const=(), extras=[_rand(rng, (21,))],
       exprs=[E.mul(E.add(V0, E.Var(1)), 0.5)])


# ---- BATCH_MATMUL ------------------------------------------------------------------------------


@pytest.mark.parametrize("adj_x,adj_y,x_shape,y_shape,const_y", [
    (False, False, (4, 128, 64), (4, 64, 128), False),
    (True, False, (2, 1, 8, 5), (3, 8, 6), False),  # batch broadcast both ways
    (False, True, (3, 7, 20), (1, 35, 20), True),  # constant y, broadcast
    (True, True, (5, 9), (2, 3, 17, 5), False),
])
def test_batch_matmul(adj_x, adj_y, x_shape, y_shape, const_y):
    rng = np.random.default_rng(12)
    x, y = _rand(rng, x_shape), _rand(rng, y_shape)
    check("BATCH_MATMUL", {"adj_x": adj_x, "adj_y": adj_y}, [x, y], (1,) if const_y else ())


def test_batch_matmul_epilogue_general_broadcast():
    """An extra broadcast over batch and column dims (attention-style scale per query row)."""
    rng = np.random.default_rng(13)
    x, y = _rand(rng, (2, 3, 10, 8)), _rand(rng, (2, 3, 8, 12))
    s = _rand(rng, (2, 1, 10, 1))
    check("BATCH_MATMUL", {}, [x, y], (), [s], [E.mul(V0, E.Var(1))])


# ---- contract details --------------------------------------------------------------------------


def test_unsupported_cases():
    rng = np.random.default_rng(14)
    attrs = ops.get("CONV_2D").parse({"padding": 0, "stride_h": 1, "stride_w": 1})
    grouped = KernelRequest("CONV_2D", attrs,
                            [TensorArg((1, 4, 4, 8), F32), TensorArg((8, 1, 1, 4), F32, _rand(rng, (8, 1, 1, 4))),
                             TensorArg((8,), F32, _rand(rng, (8,)))], [],
                            [Output(V0, TensorArg((1, 4, 4, 8), F32))])
    with pytest.raises(Unsupported, match="grouped"):
        gemm.conv2d(grouped)
    i8 = np.dtype(np.int8)
    quant = KernelRequest("FULLY_CONNECTED", ops.get("FULLY_CONNECTED").parse({}),
                          [TensorArg((2, 4), i8), TensorArg((3, 4), i8, np.zeros((3, 4), i8)), None], [],
                          [Output(V0, TensorArg((2, 3), i8))])
    with pytest.raises(Unsupported, match="float32"):
        gemm.fully_connected(quant)


def test_generated_source_follows_the_rules():
    """Literals baked in, float constants as np.float32, weights as arguments (cacheable), no
    allocation inside the kernel; packed weights are NR-wide panels padded with zeros."""
    rng = np.random.default_rng(15)
    x, f, b = _rand(rng, (1, 6, 6, 8)), _rand(rng, (24, 3, 3, 8)), _rand(rng, (24,))
    attrs = ops.get("CONV_2D").parse({"padding": 0, "stride_h": 1, "stride_w": 1,
                                      "fused_activation_function": ACT["RELU6"]})
    req = KernelRequest("CONV_2D", attrs, [TensorArg(x.shape, F32), TensorArg(f.shape, F32, f),
                                           TensorArg(b.shape, F32, b)], [],
                        [Output(V0, TensorArg((1, 6, 6, 24), F32))])
    src = gemm.conv2d(req)
    assert "cache=True" in src.source and "np.empty" not in src.source
    assert "np.float32(6.0)" in src.source and "parallel=False" in src.source
    wp = [a.value for a in src.args if a.kind == "const"][0]
    nr = int(src.source.split("tile=")[1].split()[0].split("x")[1])
    npan = -(-24 // nr)
    full = np.zeros((npan * nr, 3 * 3 * 8), F32)
    full[:24] = f.reshape(24, -1)
    np.testing.assert_array_equal(wp.reshape(npan, 3 * 3 * 8, nr),
                                  full.reshape(npan, nr, -1).transpose(0, 2, 1))


def test_choose_tile():
    vw = gemm.VW
    mr, nv = gemm.choose_tile(1, 1, 1000)  # GEMV: one row, several vectors
    assert mr == 1 and nv >= 2
    mr, nv = gemm.choose_tile(1, 12544, vw)  # one vector of columns: many rows
    assert nv == 1 and mr >= 8
    mr, nv = gemm.choose_tile(3, 5, 64)  # short runs: a tile never spans two
    assert mr <= 5
