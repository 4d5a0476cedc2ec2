"""MediaPipe's custom ops, built in (ops/mediapipe.py).

Oracles: LiteRT runs MediaPipe's Convolution2DTransposeBias and MaxPoolingWithArgmax2D only through
its XNNPACK delegate (its builtin resolver lacks them), so the selfie-segmentation model and those
one-op models are compared with LiteRT + XNNPACK (the argmax indices excepted: XNNPACK stores
integer bit patterns in the float tensor, MediaPipe's CPU kernel `index + 0.1`). LiteRT cannot run
the others at all; they are compared with the independent NumPy implementations below, written
from the published semantics of MediaPipe's kernels as plain loops (not the engine's
vectorised references). Real data: tests/data/mediapipe_*.tflite (tests/data/README.md).
"""

from __future__ import annotations

import math
import pathlib
import struct

import numpy as np
import pytest

import tflite_jit
from tests.oracle import assert_close, litert_interpreter, run_engine, run_seq
from tflite_jit.format.builder import ModelBuilder

DATA = pathlib.Path(__file__).parent / "data"
SELFIE = DATA / "mediapipe_selfie_segmentation.tflite"
FACE_OPS = DATA / "mediapipe_face_attention_custom_ops.tflite"


# ---- independent implementations (loops over the published formulas) ---------------------------------

def np_tconv_bias(x, w, b, same: bool, sh: int, sw: int):
    n, h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    pad_h = max(0, kh - (h - 1) % sh - 1) if same else 0
    pad_w = max(0, kw - (wd - 1) % sw - 1) if same else 0
    oh, ow = sh * (h - 1) + kh - pad_h, sw * (wd - 1) + kw - pad_w
    out = np.zeros((n, oh, ow, o), np.float64) + b.astype(np.float64)
    for bi in range(n):
        for y in range(h):
            for xx in range(wd):
                for fy in range(kh):
                    for fx in range(kw):
                        oy, ox = y * sh - pad_h // 2 + fy, xx * sw - pad_w // 2 + fx
                        if 0 <= oy < oh and 0 <= ox < ow:
                            out[bi, oy, ox] += w[:, fy, fx, :].astype(np.float64) @ x[bi, y, xx].astype(np.float64)
    return out


def _tf_padding(stride, in_size, f, out_size):
    return max(((out_size - 1) * stride + f - in_size) // 2, 0)


def np_argmax_pool(x, same: bool, sh, sw, fh, fw):
    n, h, w, c = x.shape
    oh = (h + sh - 1) // sh if same else (h - fh + sh) // sh
    ow = (w + sw - 1) // sw if same else (w - fw + sw) // sw
    ph, pw = _tf_padding(sh, h, fh, oh), _tf_padding(sw, w, fw, ow)
    out, idx = np.zeros((n, oh, ow, c), np.float32), np.zeros((n, oh, ow, c), np.float32)
    for bi in range(n):
        for y in range(oh):
            for xx in range(ow):
                for ch in range(c):
                    best, arg = -np.finfo(np.float32).max, (0, 0)
                    for fy in range(fh):
                        for fx in range(fw):
                            iy, ix = y * sh - ph + fy, xx * sw - pw + fx
                            if 0 <= iy < h and 0 <= ix < w and x[bi, iy, ix, ch] > best:
                                best, arg = x[bi, iy, ix, ch], (fy, fx)
                    out[bi, y, xx, ch] = best
                    idx[bi, y, xx, ch] = arg[0] * fw + arg[1] + 0.1
    return out, idx


def np_unpool(x, ind, sh, sw, fh, fw):
    n, h, w, c = x.shape
    oh, ow = h * fh, w * fw
    ph, pw = _tf_padding(sh, oh, fh, h), _tf_padding(sw, ow, fw, w)
    out = np.zeros((n, oh, ow, c), np.float32)
    for bi in range(n):
        for y in range(h):
            for xx in range(w):
                for ch in range(c):
                    k = int(ind[bi, y, xx, ch])
                    mx, my = int(math.fmod(k, fw)), int(k / fw)
                    oy, ox = y * sh - ph + my, xx * sw - pw + mx
                    if 0 <= oy < oh and 0 <= ox < ow:
                        out[bi, oy, ox, ch] = x[bi, y, xx, ch]
    return out


def np_bilinear(data, m, oh, ow, align: bool):
    _, h, w, c = data.shape
    f = np.float32
    m = np.asarray(m, np.float32).reshape(-1)
    tx, ty = m[0:4].copy(), m[4:8].copy()
    if align:  # MediaPipe v2: sample pixel centres (shift by half a pixel on both sides)
        tx[3] = f(float(tx[3]) + float(tx[0]) * 0.5 + float(tx[1]) * 0.5 - 0.5)
        ty[3] = f(float(ty[3]) + float(ty[0]) * 0.5 + float(ty[1]) * 0.5 - 0.5)
    out = np.zeros((1, oh, ow, c))
    for y in range(oh):
        for xx in range(ow):  # the sample position is a float32 dot product in the kernel
            sx = float(f(f(f(tx[0] * f(xx)) + f(tx[1] * f(y))) + tx[3]))
            sy = float(f(f(f(ty[0] * f(xx)) + f(ty[1] * f(y))) + ty[3]))
            if sx < 0 or sx > w - 1 or sy < 0 or sy > h - 1:
                continue
            x0, y0 = math.floor(sx), math.floor(sy)
            ax, ay = sx - x0, sy - y0

            def px(yy, xq):
                return data[0, yy, xq].astype(np.float64) if yy < h and xq < w else np.zeros(c)
            top = (1 - ax) * px(y0, x0) + ax * px(y0, x0 + 1)
            bot = (1 - ax) * px(y0 + 1, x0) + ax * px(y0 + 1, x0 + 1)
            out[0, y, xx] = ay * bot + (1 - ay) * top
    return out


def np_transform_landmarks(lm, m):
    m = np.asarray(m, np.float64).reshape(4, 4)
    out = lm.astype(np.float64).copy()
    for i in range(lm.shape[1]):
        x, y = out[0, i, 0], out[0, i, 1]
        out[0, i, 0] = m[0, 0] * x + m[0, 1] * y + m[0, 3]
        out[0, i, 1] = m[1, 0] * x + m[1, 1] * y + m[1, 3]
    return out


def np_l2t_v2(lm, o):
    p = lm.reshape(-1, 3).astype(np.float64)
    left, right = p[o["left_rotation_idx"]], p[o["right_rotation_idx"]]
    rot = o["target_rotation_radians"] - math.atan2(right[1] - left[1], right[0] - left[0])
    idx = list(o["subset_idxs"])
    pts = p[idx, :2]
    r = np.array([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]])
    q = pts @ r.T
    lo, hi = q.min(0), q.max(0)
    size = hi - lo
    centre = r.T @ ((lo + hi) / 2)

    def affine(a, t):
        m = np.eye(4)
        m[:2, :2], m[:2, 3] = a, t
        return m
    ow, oh = o["output_width"], o["output_height"]
    t = (affine(np.eye(2), centre) @ affine(r.T, (0, 0))
         @ affine(np.diag([o["scale_x"] * size[0] / ow, o["scale_y"] * size[1] / oh]), (0, 0))
         @ affine(np.eye(2), (-ow / 2, -oh / 2)))
    return t[None]


# ---- helpers --------------------------------------------------------------------------------------------

def custom_model(name: str, ins: list, outs: list, options, version: int = 1) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    ids = [g.input(f"x{i}", s, np.float32) for i, s in enumerate(ins)]
    o = [g.tensor(f"y{j}", s, np.float32) for j, s in enumerate(outs)]
    g.op(name, ids, o, custom=True, custom_options=options, version=version)
    g.output(*o)
    return mb.build()


def ours(model: bytes, feeds: list, backend: str | None = None, **kw) -> list[np.ndarray]:
    return run_seq(tflite_jit.Interpreter(model_content=model, backend=backend, **kw), [feeds])[0]


def xnnpack(model: bytes, feeds: list) -> list[np.ndarray]:
    return run_seq(litert_interpreter(model, "xnnpack"), [feeds])[0]


def near(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """The float contract, against a float32 rounding of the oracle (the loops work in float64)."""
    assert_close(got, np.asarray(want, np.float32), what=what)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---- Convolution2DTransposeBias -------------------------------------------------------------------------

@pytest.mark.parametrize("same,stride,k,hw", [(True, 2, 2, (5, 7)), (True, 2, 3, (4, 4)), (False, 2, 3, (3, 5)),
                                               (True, 1, 3, (4, 3)), (False, 3, 2, (2, 3))])
def test_transpose_conv_bias(same: bool, stride: int, k: int, hw: tuple) -> None:
    rng = _rng(k)
    x = rng.standard_normal((2, *hw, 4)).astype(np.float32)
    w = rng.standard_normal((3, k, k, 4)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    want = np_tconv_bias(x, w, b, same, stride, stride)
    mb = ModelBuilder()
    g = mb.subgraph()
    xi = g.input("x", x.shape, np.float32)
    y = g.tensor("y", want.shape, np.float32)
    g.op("Convolution2DTransposeBias", [xi, g.const("w", w), g.const("b", b)], [y], custom=True,
         custom_options=struct.pack("<3i", 1 if same else 2, stride, stride))
    g.output(y)
    model = mb.build()
    for backend in ("numba", "reference"):
        (got,), ran = run_engine(model, [x], backend)
        assert ran == ["numba_cpu" if backend == "numba" else "reference"]  # compiled, not fallen back
        near(got, want, what=f"Convolution2DTransposeBias ({backend}) vs NumPy")
    (theirs,) = xnnpack(model, [x])
    near(got, theirs, what="Convolution2DTransposeBias vs LiteRT XNNPACK")


def test_selfie_segmentation_matches_litert_xnnpack() -> None:
    """The real model (ends in Convolution2DTransposeBias), which LiteRT runs only with XNNPACK."""
    data = SELFIE.read_bytes()
    rng = _rng(5)
    feeds = [[rng.uniform(0, 1, (1, 256, 256, 3)).astype(np.float32)] for _ in range(2)]
    theirs = run_seq(litert_interpreter(data, "xnnpack"), feeds)
    for backend in ("numba", "reference"):
        got = run_seq(tflite_jit.Interpreter(model_content=data, backend=backend), feeds)
        for o_run, t_run in zip(got, theirs):
            for o, t in zip(o_run, t_run):
                near(o, t, what=f"selfie segmentation ({backend}) vs LiteRT XNNPACK")


# ---- MaxPoolingWithArgmax2D / MaxUnpooling2D ------------------------------------------------------------

POOLS = [(True, 2, 2, 2, 2, (6, 6)), (True, 2, 2, 3, 3, (5, 7)), (False, 2, 1, 3, 2, (7, 5)),
         (True, 1, 1, 3, 3, (4, 4))]


@pytest.mark.parametrize("same,sh,sw,fh,fw,hw", POOLS)
def test_max_pool_with_argmax(same, sh, sw, fh, fw, hw) -> None:
    x = _rng(fh).standard_normal((2, *hw, 3)).astype(np.float32)
    x[0, 0, 0, 0] = x[0, 0, 1, 0]  # a tie: the first in window order wins
    want, idx = np_argmax_pool(x, same, sh, sw, fh, fw)
    model = custom_model("MaxPoolingWithArgmax2D", [x.shape], [want.shape, want.shape],
                         struct.pack("<6i", 1 if same else 2, sw, sh, fw, fh, 0))
    got = ours(model, [x])
    np.testing.assert_array_equal(got[0], want)
    np.testing.assert_array_equal(got[1], idx)
    if (sh, sw) == (fh, fw):  # LiteRT's XNNPACK delegate takes only windows equal to the strides
        near(got[0], xnnpack(model, [x])[0], what="pooled values vs LiteRT XNNPACK")


def test_max_pool_with_argmax_relu6() -> None:
    x = (_rng(1).standard_normal((1, 4, 4, 2)) * 8).astype(np.float32)
    want, _ = np_argmax_pool(x, True, 2, 2, 2, 2)
    model = custom_model("MaxPoolingWithArgmax2D", [x.shape], [want.shape] * 2, struct.pack("<6i", 1, 2, 2, 2, 2, 3))
    np.testing.assert_array_equal(ours(model, [x])[0], np.clip(want, 0, 6))


@pytest.mark.parametrize("sh,sw,fh,fw", [(2, 2, 2, 2), (2, 2, 3, 3), (1, 2, 2, 3)])
def test_max_unpooling(sh, sw, fh, fw) -> None:
    rng = _rng(fw)
    x = rng.standard_normal((2, 3, 4, 3)).astype(np.float32)
    ind = (rng.integers(-2, fh * fw + 3, x.shape) + 0.1).astype(np.float32)  # some out of range
    want = np_unpool(x, ind, sh, sw, fh, fw)
    model = custom_model("MaxUnpooling2D", [x.shape, x.shape], [want.shape], struct.pack("<6i", 1, sw, sh, fw, fh, 0))
    np.testing.assert_array_equal(ours(model, [x, ind])[0], want)


def test_argmax_then_unpool_round_trip() -> None:
    x = _rng(9).standard_normal((1, 6, 8, 2)).astype(np.float32)
    opts = struct.pack("<6i", 2, 2, 2, 2, 2, 0)
    pooled, idx = ours(custom_model("MaxPoolingWithArgmax2D", [x.shape], [(1, 3, 4, 2)] * 2, opts), [x])
    (back,) = ours(custom_model("MaxUnpooling2D", [pooled.shape] * 2, [x.shape], opts), [pooled, idx])
    blocks = x.reshape(1, 3, 2, 4, 2, 2).max(axis=(2, 4))
    placed = back != 0  # one value per 2x2 block, at its argmax, the rest zeros
    assert placed.sum() == blocks.size
    np.testing.assert_array_equal(back[placed], x[placed])
    np.testing.assert_array_equal(np.where(placed, back, -np.inf).reshape(1, 3, 2, 4, 2, 2).max(axis=(2, 4)),
                                  blocks)


# ---- the transform ops on face_landmark_with_attention's own nodes ----------------------------------------

def _face_feeds(seed: int) -> dict[str, np.ndarray]:
    rng = _rng(seed)
    it = tflite_jit.Interpreter(model_content=FACE_OPS.read_bytes())
    feeds = {}
    for d in it.get_input_details():
        shape = tuple(d["shape"])
        if shape == (1, 468, 3):  # face landmarks on the 48 x 48 feature map: a jittered face
            v = np.stack([rng.uniform(8, 40, 468), rng.uniform(8, 40, 468), rng.normal(0, 2, 468)], 1)
        elif shape == (1, 4, 4):  # an affine matrix: rotation, scale, shift
            a = rng.uniform(-0.6, 0.6)
            v = np.eye(4)
            v[:2, :2] = rng.uniform(0.5, 2) * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
            v[:2, 3] = rng.uniform(-20, 20, 2)
        else:
            v = rng.standard_normal(shape) * (4 if shape[-1] == 2 else 1)
        feeds[d["name"]] = v.reshape(shape).astype(np.float32)
    return feeds


@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_face_attention_custom_ops_match_numpy(backend: str, seed: int) -> None:
    from tflite_jit.format.reader import load_bytes

    data = FACE_OPS.read_bytes()
    model = load_bytes(data)
    sg = model.subgraphs[0]
    feeds = _face_feeds(seed)
    it = tflite_jit.Interpreter(model_content=data, backend=backend)
    got = run_seq(it, [[feeds[d["name"]] for d in it.get_input_details()]])[0]
    got = {d["name"]: g for d, g in zip(it.get_output_details(), got)}
    values = {sg.tensors[t].name: feeds[sg.tensors[t].name] for t in sg.inputs}
    for op in sg.ops:  # the independent implementations, node by node, on their own results
        ins = [values[sg.tensors[t].name] for t in op.inputs]
        out_name = sg.tensors[op.outputs[0]].name
        if op.name == "Landmarks2TransformMatrix":
            want = np_l2t_v2(ins[0], op.options)
        elif op.name == "TransformTensorBilinear":
            want = np_bilinear(ins[0], ins[1], op.options["output_height"], op.options["output_width"], True)
        else:
            want = np_transform_landmarks(ins[0], ins[1])
        near(got[out_name], want, what=f"{op.name} -> {out_name}")
        values[out_name] = want



def same_on_both(model: bytes, feeds: list, what: str) -> list[np.ndarray]:
    """The Numba kernels (generators/mediapipe.py, backends/numba_cpu/mptransform.py) compile
    every node and equal the NumPy reference bit for bit (NaN where it has NaN)."""
    got, ran = run_engine(model, feeds, "numba")
    assert set(ran) == {"numba_cpu"}, f"{what}: {ran}"  # compiled, not fallen back
    want, ran = run_engine(model, feeds, "reference")
    assert set(ran) == {"reference"}, f"{what}: {ran}"
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w, err_msg=what)
    return got


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_face_attention_custom_ops_compile_bit_exact(seed: int) -> None:
    """The model's 9 transform nodes on Numba, equal to the reference to the bit; seed 3 adds a
    matrix that sends part of each crop outside the input (zeros) and onto its last row."""
    data = FACE_OPS.read_bytes()
    feeds = _face_feeds(seed)
    it = tflite_jit.Interpreter(model_content=data)
    order = [d["name"] for d in it.get_input_details()]
    if seed == 3:
        for name in order:
            if feeds[name].shape == (1, 4, 4):
                feeds[name][0, :2, 3] = np.float32(-5), np.float32(10)
                feeds[name][0, 0, 0] = np.float32(3.0)
    same_on_both(data, [feeds[n] for n in order], f"face attention ops, seed {seed}")


def test_transform_ops_degenerate_inputs_compile_bit_exact() -> None:
    """NaN / inf matrices and landmarks, coincident eye landmarks (atan2(0, 0), a zero-size box):
    the compiled kernels give what the reference gives (zeros outside, NaN and inf through)."""
    rng = _rng(11)
    data = rng.standard_normal((1, 6, 5, 3)).astype(np.float32)
    for m in (np.full((1, 4, 4), np.nan, np.float32), np.diag([np.inf, 1, 1, 1]).astype(np.float32)[None],
              np.diag([1.0, 1, 1, 1]).astype(np.float32)[None]):
        bil = custom_model("TransformTensorBilinear", [data.shape, m.shape], [(1, 7, 6, 3)],
                           {"output_height": 7, "output_width": 6}, version=2)
        same_on_both(bil, [data, m], "TransformTensorBilinear, degenerate matrix")
        lm = rng.standard_normal((1, 9, 3)).astype(np.float32)
        lm[0, 2] = np.nan
        tl = custom_model("TransformLandmarks", [lm.shape, m.shape], [lm.shape], {}, version=2)
        same_on_both(tl, [lm, m], "TransformLandmarks, degenerate matrix")
    lm = rng.uniform(0, 40, (1, 12, 3)).astype(np.float32)
    opts = {"left_rotation_idx": 1, "right_rotation_idx": 4, "subset_idxs": [0, 2, 3, 5, 7],
            "output_height": 16, "output_width": 16, "scale_x": 1.5, "scale_y": 1.5,
            "target_rotation_radians": 0.25}
    l2t = custom_model("Landmarks2TransformMatrix", [lm.shape], [(1, 4, 4)], opts, version=2)
    same_on_both(l2t, [lm], "Landmarks2TransformMatrix v2")
    lm[0, 4] = lm[0, 1]  # coincident eyes
    same_on_both(l2t, [lm], "Landmarks2TransformMatrix v2, coincident eyes")
    lm[0, 3, 0] = np.nan
    same_on_both(l2t, [lm], "Landmarks2TransformMatrix v2, a NaN landmark")


def test_transform_tensor_bilinear_v1_and_edges() -> None:
    """v1 (name TransformTensor, options output_size, no half-pixel shift); samples that land
    outside the input are 0; a matrix mapping onto the exact last row/column reads the edge."""
    rng = _rng(3)
    data = rng.standard_normal((1, 6, 5, 2)).astype(np.float32)
    for m in (np.diag([0.8, 0.8, 1, 1]), np.array([[1.3, 0.2, 0, -1], [-0.1, 1.2, 0, 0.5], [0, 0, 1, 0], [0, 0, 0, 1]])):
        m = m.astype(np.float32)[None]
        model = custom_model("TransformTensor", [data.shape, m.shape], [(1, 7, 6, 2)],
                             {"mode": "bilinear", "output_size": [7, 6]})
        near(same_on_both(model, [data, m], "TransformTensor v1")[0], np_bilinear(data, m, 7, 6, False),
             what="TransformTensor v1")
        model = custom_model("TransformTensorBilinear", [data.shape, m.shape], [(1, 7, 6, 2)],
                             {"output_height": 7, "output_width": 6}, version=2)
        near(same_on_both(model, [data, m], "TransformTensorBilinear v2")[0], np_bilinear(data, m, 7, 6, True),
             what="TransformTensorBilinear v2")


def test_transform_landmarks_3d_keeps_z() -> None:
    lm = _rng(4).standard_normal((1, 9, 3)).astype(np.float32)
    m = np.array([[0.5, -1, 0, 3], [1, 0.5, 0, -2], [0, 0, 1, 0], [0, 0, 0, 1]], np.float32)[None]
    (got,) = ours(custom_model("TransformLandmarks", [lm.shape, m.shape], [lm.shape], {}, version=2), [lm, m])
    near(got, np_transform_landmarks(lm, m), what="TransformLandmarks 3D")
    np.testing.assert_array_equal(got[..., 2], lm[..., 2])


# ---- built in, yet overridable; bad input -----------------------------------------------------------------

def test_registered_kernel_overrides_the_builtin_and_unregistering_restores_it() -> None:
    data = FACE_OPS.read_bytes()
    feeds = _face_feeds(0)
    it = tflite_jit.Interpreter(model_content=data)
    order = [d["name"] for d in it.get_input_details()]
    builtin = run_seq(it, [[feeds[n] for n in order]])[0]
    tflite_jit.register_custom_op("TransformLandmarks", kernel=lambda lm, m, opts: np.zeros_like(lm))
    try:
        zeroed = run_seq(tflite_jit.Interpreter(model_content=data), [[feeds[n] for n in order]])[0]
    finally:
        tflite_jit.unregister_custom_op("TransformLandmarks")
    outs = tflite_jit.Interpreter(model_content=data).get_output_details()
    for d, b, z in zip(outs, builtin, zeroed):
        if d["name"].startswith("transform_landmarks"):
            assert not z.any() and b.any()
        else:
            np.testing.assert_array_equal(z, b)
    again = run_seq(tflite_jit.Interpreter(model_content=data), [[feeds[n] for n in order]])[0]
    for a, b in zip(again, builtin):
        np.testing.assert_array_equal(a, b)
    per_interpreter = run_seq(tflite_jit.Interpreter(
        model_content=data, custom_ops={"TransformLandmarks": lambda lm, m, opts: lm + 1}),
        [[feeds[n] for n in order]])[0]
    assert any(d["name"].startswith("transform_landmarks") and not np.array_equal(p, b)
               for d, p, b in zip(outs, per_interpreter, builtin))


@pytest.mark.parametrize("make,feeds,match", [
    (lambda: custom_model("Convolution2DTransposeBias", [(1, 2, 2, 1), (1, 2, 2, 1), (1,)], [(1, 4, 4, 1)],
                          b"\x01\x00\x00\x00"), [np.ones((1, 2, 2, 1), np.float32)] * 2 + [np.ones(1, np.float32)],
     "12-byte parameter struct"),
    (lambda: custom_model("MaxUnpooling2D", [(1, 2, 2, 1), (1, 2, 3, 1)], [(1, 4, 4, 1)],
                          struct.pack("<6i", 1, 2, 2, 2, 2, 0)),
     [np.ones((1, 2, 2, 1), np.float32), np.ones((1, 2, 3, 1), np.float32)], "indices"),
    (lambda: custom_model("Landmarks2TransformMatrix", [(1, 10, 3)], [(1, 4, 4)],
                          {"left_rotation_idx": 0, "right_rotation_idx": 12, "subset_idxs": [0, 1],
                           "output_height": 4, "output_width": 4, "scale_x": 1.0, "scale_y": 1.0,
                           "target_rotation_radians": 0.0}, version=2),
     [np.ones((1, 10, 3), np.float32)], "landmark 12 but .* holds 10"),
    (lambda: custom_model("TransformTensorBilinear", [(1, 4, 4, 1), (1, 2, 2)], [(1, 2, 2, 1)],
                          {"output_height": 2, "output_width": 2}, version=2),
     [np.ones((1, 4, 4, 1), np.float32), np.ones((1, 2, 2), np.float32)], "at least 8 floats"),
    (lambda: custom_model("TransformTensorBilinear", [(1, 4, 4, 1), (1, 4, 4)], [(1, 2, 2, 1)],
                          {"output_height": "two", "output_width": 2}, version=2),
     [np.ones((1, 4, 4, 1), np.float32), np.ones((1, 4, 4), np.float32)], "malformed custom options"),
    (lambda: custom_model("TransformTensor", [(1, 4, 4, 1), (1, 4, 4)], [(1, 2, 2, 1)],
                          {"output_size": 3}, version=1),
     [np.ones((1, 4, 4, 1), np.float32), np.ones((1, 4, 4), np.float32)], "malformed custom options"),
])
def test_bad_nodes_are_refused_with_the_reason(make, feeds, match) -> None:
    with pytest.raises(RuntimeError, match=match):
        ours(make(), feeds)


def test_a_kernel_that_fails_to_compile_falls_back_and_invoke_still_runs(monkeypatch) -> None:
    """Found while adding the Convolution2DTransposeBias kernel: when Numba fails to type a
    generated kernel, the op runs on reference, but Numba's cached error (in reference cycles
    with our frames) kept the interpreter's buffers referenced, so every invoke() raised
    LiteRT's 'reference to internal data' error until a garbage collection happened."""
    from tflite_jit.backends.numba_cpu import emit
    from tflite_jit.backends.numba_cpu.generators import GENERATORS, load_all
    from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource

    load_all()

    def untypable(req):
        body = "def entry(x, wt, b, out):\n    for r in undefined_name(3):\n        pass\n"
        return KernelSource(emit.module(body, False), "entry",
                            [Arg("input", 0), Arg("input", 1), Arg("input", 2), Arg("output", 0)], False)

    monkeypatch.setitem(GENERATORS, "Convolution2DTransposeBias", untypable)
    x = _rng(2).standard_normal((1, 3, 3, 2)).astype(np.float32)
    w = _rng(3).standard_normal((2, 2, 2, 2)).astype(np.float32)
    b = np.zeros(2, np.float32)
    model = custom_model("Convolution2DTransposeBias", [x.shape, w.shape, b.shape], [(1, 6, 6, 2)],
                         struct.pack("<3i", 1, 2, 2))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the damaged-cache warning of the retry
        it = tflite_jit.Interpreter(model_content=model, backend="numba")
        it.allocate_tensors()
    assert it.get_execution_plan()["ops"][0]["backend"] == "reference"
    for _ in range(2):
        (got,) = run_seq(it, [[x, w, b]])[0]
        near(got, np_tconv_bias(x, w, b, True, 2, 2), what="fallen back Convolution2DTransposeBias")


def test_cli_compare_points_to_xnnpack_for_custom_ops(capsys) -> None:
    """`tflite-jit compare` on a MediaPipe model: LiteRT's builtin resolver cannot load it, and
    the one-line error says which resolver can; with it the model passes."""
    from tflite_jit.tools.cli import main

    assert main(["compare", str(SELFIE), "--trials=1"]) != 0
    assert "--litert_resolver=xnnpack" in capsys.readouterr().err
    assert main(["compare", str(SELFIE), "--trials=1", "--litert_resolver=xnnpack"]) == 0
    assert "PASS: all outputs meet the correctness contract" in capsys.readouterr().out


def np_l2t_v1(lm, o):
    """Landmarks2TransformMatrix v1 in float64: rotate the subset by the eye-line angle, take its
    box, and compose to_absolute . rotation . scale . to_relative (a 3x3 affine in a 4x4)."""
    p = lm.reshape(-1, 3).astype(np.float64)
    left, right = p[o["left_rotation_idx"]], p[o["right_rotation_idx"]]
    a = -math.atan((right[1] - left[1]) / (right[0] - left[0]))
    pts = p[list(o["subset"]), :2]
    q = np.stack([pts[:, 0] * math.cos(a) - pts[:, 1] * math.sin(a), pts[:, 0] * math.sin(a) + pts[:, 1] * math.cos(a)], 1)
    lo, hi = q.min(0), q.max(0)
    rng, mult = o["landmarks_range"], o["bbox_size_multiplier"]
    box = (hi - lo) * mult
    mid = (hi + lo) / 2
    rm = np.array([[math.cos(-a), -math.sin(-a)], [math.sin(-a), math.cos(-a)]]) @ mid
    rot = np.array([[math.cos(-a), -math.sin(-a), rm[0] / rng * 2 - 1],
                    [math.sin(-a), math.cos(-a), rm[1] / rng * 2 - 1], [0, 0, 1]])
    (ih, iw), (oh, ow) = o["input_hw"], o["output_hw"]
    to_rel = np.array([[2 / (ow - 1), 0, -1], [0, 2 / (oh - 1), -1], [0, 0, 1]])
    to_abs = np.array([[(iw - 1) / 2, 0, (iw - 1) / 2], [0, (ih - 1) / 2, (ih - 1) / 2], [0, 0, 1]])
    m = to_abs @ rot @ np.diag([box[0] / rng, box[1] / rng, 1]) @ to_rel
    out = np.zeros((4, 4))
    out[0, [0, 1, 3]], out[1, [0, 1, 3]], out[2, :3], out[3, 3] = m[0], m[1], m[2], 1
    return out[None]


def test_landmarks_to_transform_matrix_v1() -> None:
    rng = _rng(6)
    lm = np.stack([rng.uniform(20, 200, 30), rng.uniform(20, 200, 30), rng.normal(0, 5, 30)], 1)
    lm = lm.reshape(1, 1, 1, 90).astype(np.float32)
    opts = {"input_hw": [64, 48], "output_hw": [16, 12], "dimensions": 3, "landmarks_range": 256,
            "bbox_size_multiplier": 1.5, "left_rotation_idx": 3, "right_rotation_idx": 11,
            "subset": [0, 4, 7, 9, 12, 20, 25]}  # odd: the last index pairs with itself
    model = custom_model("Landmarks2TransformMatrix", [lm.shape], [(1, 4, 4)], opts, version=1)
    (got,) = same_on_both(model, [lm], "Landmarks2TransformMatrix v1")
    near(got, np_l2t_v1(lm, opts), what="Landmarks2TransformMatrix v1")
    lm[0, 0, 0, 3 * 11:3 * 11 + 3] = lm[0, 0, 0, 9:12]  # coincident eyes: atan(0 / 0)
    same_on_both(model, [lm], "Landmarks2TransformMatrix v1, coincident eyes")


def test_transform_landmarks_v1_4d_with_scale() -> None:
    """v1: [1, H, W, C] landmarks, `dimensions` per landmark, the matrix's shift times `scale`."""
    lm = _rng(8).standard_normal((1, 2, 3, 6)).astype(np.float32)
    m = np.array([[0.5, -1, 0, 3], [1, 0.5, 0, -2], [0, 0, 1, 0], [0, 0, 0, 1]], np.float32)[None]
    (got,) = same_on_both(custom_model("TransformLandmarks", [lm.shape, m.shape], [lm.shape],
                                       {"dimensions": 2, "scale": 2.0}, version=1), [lm, m], "TransformLandmarks v1")
    scaled = m.copy()
    scaled[0, :2, 3] *= 2
    want = np_transform_landmarks(lm.reshape(1, -1, 2), scaled).reshape(lm.shape)
    near(got, want, what="TransformLandmarks v1")
