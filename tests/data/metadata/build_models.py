"""Builds the small base models the metadata goldens start from (run with the project's venv):

    python tests/data/metadata/build_models.py

They only need the input/output layout each Task model type has; the goldens are then written
by tflite_support itself (make_goldens.py, in a venv where tflite-support 0.4.4 installs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tflite_jit.format.builder import ModelBuilder

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"
rng = np.random.default_rng(16)


def _fc(g, x, n_in, n_out, name):
    w = g.const(name + "_w", rng.standard_normal((n_out, n_in)).astype(np.float32))
    b = g.const(name + "_b", np.zeros(n_out, np.float32))
    return g.apply("FULLY_CONNECTED", [x, w, b], out_name=name)[0]


def image_float() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("input", (1, 4, 4, 3), np.float32)
    flat = g.apply("RESHAPE", [x, g.const("shape", np.array([1, 48], np.int32))])[0]
    logits = _fc(g, flat, 48, 5, "logits")
    g.output(g.apply("SOFTMAX", [logits], beta=1.0, out_name="probs")[0])
    return mb.build()


def image_uint8() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("input", (1, 4, 4, 3), np.uint8, scale=1.0, zero_point=0)
    y = g.tensor("scores", (1, 48), np.uint8, scale=1.0, zero_point=0)
    g.op("RESHAPE", [x, g.const("shape", np.array([1, 48], np.int32))], [y])
    g.output(y)
    return mb.build()


def detector() -> bytes:
    """Outputs listed as score, location, number, category; their tensor ids ascend in the
    post-process op's order (location, category, score, number), which the writer relies on."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("input", (1, 4, 4, 3), np.float32)
    loc = g.apply("RESHAPE", [x, g.const("shape", np.array([1, 12, 4], np.int32))],
                  out_name="location")[0]
    axis2 = g.const("axis2", np.array([2], np.int32))
    cat = g.apply("REDUCE_MAX", [loc, axis2], keep_dims=False, out_name="category")[0]
    score = g.apply("SUM", [loc, axis2], keep_dims=False, out_name="score")[0]
    axes = g.const("axes", np.array([1, 2], np.int32))
    num = g.apply("REDUCE_MAX", [loc, axes], keep_dims=False, out_name="number")[0]
    g.output(score, loc, num, cat)
    return mb.build()


def segmenter() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("input", (1, 4, 4, 3), np.float32)
    g.output(g.apply("RELU", [x], out_name="masks")[0])
    return mb.build()


def text() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("input_ids", (1, 16), np.float32)
    g.output(g.apply("SOFTMAX", [_fc(g, x, 16, 2, "logits")], beta=1.0, out_name="probs")[0])
    return mb.build()


def bert() -> bytes:
    """The three inputs in an order other than ids, mask, segment (the writer reorders)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    mask = g.input("serving_default_input_mask:0", (1, 8), np.int32)
    ids = g.input("serving_default_input_word_ids:0", (1, 8), np.int32)
    seg = g.input("serving_default_input_type_ids:0", (1, 8), np.int32)
    s = g.apply("ADD", [g.apply("ADD", [ids, mask])[0], seg])[0]
    f = g.apply("CAST", [s], in_data_type="INT32", out_data_type="FLOAT32")[0]
    g.output(g.apply("SOFTMAX", [_fc(g, f, 8, 2, "logits")], beta=1.0, out_name="probs")[0])
    return mb.build()


def audio() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("waveform", (1, 32), np.float32)
    g.output(g.apply("SOFTMAX", [_fc(g, x, 32, 3, "logits")], beta=1.0, out_name="scores")[0])
    return mb.build()


def audio_two_heads() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("waveform", (1, 32), np.float32)
    a = g.apply("SOFTMAX", [_fc(g, x, 32, 3, "logits_a")], beta=1.0, out_name="head_a")[0]
    b = g.apply("LOGISTIC", [_fc(g, x, 32, 2, "logits_b")], out_name="head_b")[0]
    g.output(a, b)
    return mb.build()


BUILDERS = {"image_float": image_float, "image_uint8": image_uint8, "detector": detector,
            "segmenter": segmenter, "text": text, "bert": bert, "audio": audio,
            "audio_two_heads": audio_two_heads}


if __name__ == "__main__":
    MODELS.mkdir(exist_ok=True)
    for name, build in BUILDERS.items():
        (MODELS / f"{name}.tflite").write_bytes(build())
        print("wrote", MODELS / f"{name}.tflite")
