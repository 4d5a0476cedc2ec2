"""Constant subgraphs folded once at plan time (issue #13, runtime/folding.py).

A float16-weight model (the converter's `supported_types=[tf.float16]`) dequantizes every weight
with a DEQUANTIZE node; those, and anything else computed from constants only, run once at
allocate_tensors and never again, and the convs they feed compile exactly as in the float32
model: same kernels, same packed weights, the same numbers to the bit.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import tflite_jit
from tests.oracle import assert_close, litert_interpreter, litert_run
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.reader import load_bytes
from tflite_jit.format.writer import write_model
from tflite_jit.runtime.folding import FOLDED

F32 = np.float32
F16_MODEL = pathlib.Path(__file__).parent / "data" / "tf_mobilenet_v3_small_035_96_f16.tflite"


def _exec(it: tflite_jit.Interpreter):
    return it._interpreter.execs[0]


def _run(content: bytes, x: np.ndarray, **kw) -> tuple[list[np.ndarray], tflite_jit.Interpreter]:
    it = tflite_jit.Interpreter(model_content=content, **kw)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()], it


def _float32_twin(content: bytes) -> bytes:
    """The same model with each DEQUANTIZE of a constant replaced by its float32 result stored
    as a constant: what the converter writes without float16 quantization."""
    model = load_bytes(content)
    for sg in model.subgraphs:
        keep = []
        for op in sg.ops:
            src = sg.tensors[op.inputs[0]] if op.inputs else None
            if op.name == "DEQUANTIZE" and src is not None and src.data is not None:
                q = src.quantization
                v = src.data.astype(F32)
                if q is not None and q.scales.size:  # int8 weights: scale * (q - zero point)
                    shape = [1] * v.ndim
                    if q.scales.size > 1:
                        shape[q.quantized_dimension] = -1
                    v = ((v - q.zero_points.reshape(shape).astype(F32)) * q.scales.reshape(shape)).astype(F32)
                sg.tensors[op.outputs[0]].data = v
            else:
                keep.append(op)
        sg.ops = keep
    return write_model(model)


def _kernels(it: tflite_jit.Interpreter) -> list[tuple[str, list]]:
    """Each step's generated source and its plan-time constant arguments (packed weights)."""
    out = []
    for s in _exec(it).steps:
        src = s.kernel.src
        out.append((src.source, [a.value for a in src.args if a.kind not in ("input", "extra", "output")]))
    return out


def _same_kernels(a: tflite_jit.Interpreter, b: tflite_jit.Interpreter) -> None:
    ka, kb = _kernels(a), _kernels(b)
    assert len(ka) == len(kb)
    for (sa, va), (sb, vb) in zip(ka, kb):
        assert sa == sb
        assert len(va) == len(vb)
        for x, y in zip(va, vb):
            if isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, y)
            else:
                assert x == y


def test_float16_model_runs_no_dequantize_and_matches_litert() -> None:
    content = F16_MODEL.read_bytes()
    x = np.random.default_rng(0).standard_normal((1, 96, 96, 3)).astype(F32)
    ours, it = _run(content, x)
    ex = _exec(it)
    sg = ex.sg
    deq = [oi for oi, op in enumerate(sg.ops) if op.name == "DEQUANTIZE"]
    assert len(deq) >= 50
    assert set(deq) <= ex.folded
    ran = [sg.ops[oi].name for s in ex.steps for oi in s.cluster.ops]
    assert "DEQUANTIZE" not in ran
    assert all(s.backend == "numba_cpu" for s in ex.steps)
    folded_entries = [p for p in ex.plan if p["backend"] == FOLDED]
    assert sorted(oi for p in folded_entries for oi in p["ops"]) == sorted(ex.folded)
    for o, t in zip(ours, litert_run(content, [x])):
        assert_close(o, t, what="float16 MobileNetV3-Small vs LiteRT builtin")
    for o, t in zip(ours, litert_run(content, [x], resolver="xnnpack")):
        assert_close(o, t, what="float16 MobileNetV3-Small vs LiteRT XNNPACK")


def test_float16_model_compiles_like_its_float32_twin_bit_for_bit() -> None:
    content = F16_MODEL.read_bytes()
    twin = _float32_twin(content)
    assert len(load_bytes(twin).subgraphs[0].ops) < len(load_bytes(content).subgraphs[0].ops)
    x = np.random.default_rng(1).standard_normal((1, 96, 96, 3)).astype(F32)
    a, ita = _run(content, x)
    b, itb = _run(twin, x)
    _same_kernels(ita, itb)
    for o, t in zip(a, b):
        np.testing.assert_array_equal(o, t)


def _int8_weights_model() -> bytes:
    """CONV_2D and FULLY_CONNECTED whose float weights are DEQUANTIZE(int8, per-channel scales),
    as some converters emit for float models (plus a TRANSPOSE of the dequantized FC weights,
    which folds too)."""
    rng = np.random.default_rng(2)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 8, 8, 4), F32)
    wq = g.const("conv_w_q", rng.integers(-127, 128, (6, 3, 3, 4)).astype(np.int8),
                 scale=(rng.random(6) * 0.05 + 0.01).astype(F32), zero_point=0, quantized_dimension=0)
    (w,) = g.apply("DEQUANTIZE", [wq])
    b = g.const("conv_b", rng.standard_normal(6).astype(F32))
    (y,) = g.apply("CONV_2D", [x, w, b], stride_w=1, stride_h=1, fused_activation_function=1)
    (y,) = g.apply("RESHAPE", [y, g.const("shape", np.array([1, 8 * 8 * 6], np.int32))])
    fq = g.const("fc_w_q", rng.integers(-127, 128, (8 * 8 * 6, 5)).astype(np.int8), scale=0.02, zero_point=3)
    (ft,) = g.apply("DEQUANTIZE", [fq])
    (fw,) = g.apply("TRANSPOSE", [ft, g.const("perm", np.array([1, 0], np.int32))])
    (z,) = g.apply("FULLY_CONNECTED", [y, fw, -1])
    g.output(z)
    return mb.build()


def test_int8_weight_dequantize_folds_and_matches_litert() -> None:
    content = _int8_weights_model()
    x = np.random.default_rng(3).standard_normal((1, 8, 8, 4)).astype(F32)
    ours, it = _run(content, x)
    ex = _exec(it)
    names = [ex.sg.ops[oi].name for s in ex.steps for oi in s.cluster.ops]
    assert names == ["CONV_2D", "FULLY_CONNECTED"]  # the RESHAPE is a view
    assert {ex.sg.ops[oi].name for oi in ex.folded} == {"DEQUANTIZE", "TRANSPOSE"}
    (theirs,) = litert_run(content, [x])
    assert_close(ours[0], theirs, what="int8-weight model vs LiteRT builtin")


@pytest.mark.parametrize("which", ["float16", "int8"])
def test_folded_tensor_reads_like_litert_after_invoke(which: str) -> None:
    """LiteRT dequantizes a constant once into a persistent tensor: after invoke get_tensor
    returns the float weights, and so do we (from the folded value itself). float16 -> float32
    is exact; int8 within LiteRT's 1 ulp (ops/quant.py: its optimized kernel rounds differently
    on some elements)."""
    if which == "float16":
        content, shape = F16_MODEL.read_bytes(), (1, 96, 96, 3)
    else:
        content, shape = _int8_weights_model(), (1, 8, 8, 4)
    x = np.random.default_rng(4).standard_normal(shape).astype(F32)
    _, ours = _run(content, x)
    theirs = litert_interpreter(content)
    theirs.allocate_tensors()
    theirs.set_tensor(theirs.get_input_details()[0]["index"], x)
    theirs.invoke()
    ex = _exec(ours)
    checked = 0
    for oi in sorted(ex.folded):
        t = ex.sg.ops[oi].outputs[0]
        if ex.sg.ops[oi].name == "DEQUANTIZE":
            if which == "float16":
                np.testing.assert_array_equal(ours.get_tensor(t), theirs.get_tensor(t))
            else:
                assert_close(ours.get_tensor(t), theirs.get_tensor(t), what=f"tensor {t}")
            checked += 1
        with pytest.raises(ValueError, match="is a constant"):
            ours.set_tensor(t, ours.get_tensor(t))
    assert checked >= 2
    n = len(ex.sg.tensors)  # LiteRT lists its kernels' scratch tensors after the model's
    assert [d["shape"].tolist() for d in ours.get_tensor_details()] == \
        [d["shape"].tolist() for d in theirs.get_tensor_details()[:n]]


def test_int8_weights_compile_like_their_float32_twin() -> None:
    content = _int8_weights_model()
    x = np.random.default_rng(5).standard_normal((1, 8, 8, 4)).astype(F32)
    a, ita = _run(content, x)
    b, itb = _run(_float32_twin(content), x)
    np.testing.assert_array_equal(a[0], b[0])


def test_no_fold_that_would_materialise_a_big_tensor_from_a_small_one() -> None:
    """TILE of a 4-element constant to 32768 elements stays a step run at invoke: folding
    it would keep a tensor far bigger than the file's constants alive for the interpreter's life."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (8192, 4), F32)
    c = g.const("c", np.arange(4, dtype=F32).reshape(1, 4))
    (big,) = g.apply("TILE", [c, g.const("multiples", np.array([8192, 1], np.int32))])
    (y,) = g.apply("ADD", [x, big])
    g.output(y)
    content = mb.build()
    xv = np.random.default_rng(6).standard_normal((8192, 4)).astype(F32)
    ours, it = _run(content, xv)
    ex = _exec(it)
    assert not ex.folded
    assert "TILE" in [ex.sg.ops[oi].name for s in ex.steps for oi in s.cluster.ops]
    assert_close(ours[0], litert_run(content, [xv])[0], what="TILE + ADD")


def test_constant_graph_output_still_runs() -> None:
    """A folded value that is a graph output keeps its own buffer (live tensor() views, as for
    every output): its op stays a step and writes it."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (2, 3), F32)
    w = g.const("w16", (np.arange(6).reshape(2, 3) / 3).astype(np.float16))
    (wf,) = g.apply("DEQUANTIZE", [w])
    (y,) = g.apply("MUL", [x, wf])
    g.output(y, wf)
    content = mb.build()
    xv = np.ones((2, 3), F32)
    ours, it = _run(content, xv)
    assert not _exec(it).folded
    for o, t in zip(ours, litert_run(content, [xv])):
        assert_close(o, t)


def test_prelu_with_folded_alpha_joins_the_conv_epilogue() -> None:
    """MediaPipe's pattern: CONV_2D -> ADD(residual) -> PRELU(alpha = DEQUANTIZE(float16)). With
    the alpha folded to a constant, PRELU is one more constant-operand op of the epilogue: one
    kernel instead of three (face_landmark: 77 -> 54 kernels)."""
    rng = np.random.default_rng(7)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 6, 6, 8), F32)
    (w,) = g.apply("DEQUANTIZE", [g.const("w16", rng.standard_normal((8, 3, 3, 8)).astype(np.float16))])
    (alpha,) = g.apply("DEQUANTIZE", [g.const("a16", (rng.random((1, 1, 8)) * 0.5).astype(np.float16))])
    b = g.const("b", rng.standard_normal(8).astype(F32))
    (y,) = g.apply("CONV_2D", [x, w, b], padding="SAME", stride_w=1, stride_h=1)
    (s,) = g.apply("ADD", [y, x])
    (z,) = g.apply("PRELU", [s, alpha])
    g.output(z)
    content = mb.build()
    xv = rng.standard_normal((1, 6, 6, 8)).astype(F32)
    ours, it = _run(content, xv)
    ex = _exec(it)
    assert [[ex.sg.ops[oi].name for oi in s.cluster.ops] for s in ex.steps] == [["CONV_2D", "ADD", "PRELU"]]
    assert ex.steps[0].backend == "numba_cpu"
    assert_close(ours[0], litert_run(content, [xv])[0], what="CONV_2D+ADD+PRELU")
    unfused, _ = _run(content, xv, fusion="none")
    np.testing.assert_array_equal(ours[0], unfused[0])
