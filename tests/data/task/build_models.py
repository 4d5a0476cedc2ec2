"""Builds the tiny base models the Task Library goldens start from (run with the project's venv):

    python tests/data/task/build_models.py

Each has the input/output layout its Task model type expects and weights that make every input
pixel or token matter, so pre-processing mistakes change the results. Metadata is then written by
tflite_support's own writers and the goldens recorded by its Task Library (make_goldens.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tflite_jit.format.builder import ModelBuilder

HERE = Path(__file__).resolve().parent
BASE = HERE / "base"
rng = np.random.default_rng(1616)

SIDE = 8  # image models take 1x8x8x3


def _fc(g, x, n_in: int, n_out: int, name: str, scale: float = 0.05) -> int:
    w = g.const(name + "_w", (rng.standard_normal((n_out, n_in)) * scale).astype(np.float32))
    b = g.const(name + "_b", (rng.standard_normal(n_out) * 0.1).astype(np.float32))
    return g.apply("FULLY_CONNECTED", [x, w, b], out_name=name)[0]


def image_classifier_float() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("input", (1, SIDE, SIDE, 3), np.float32)
    flat = g.apply("RESHAPE", [x, g.const("shape", np.array([1, SIDE * SIDE * 3], np.int32))])[0]
    logits = _fc(g, flat, SIDE * SIDE * 3, 5, "logits", 0.2)
    g.output(g.apply("SOFTMAX", [logits], beta=1.0, out_name="probs")[0])
    return mb.build()


def image_classifier_uint8() -> bytes:
    """uint8 in, uint8 out (asymmetric quantization, LiteRT's uint8 FULLY_CONNECTED)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    n = SIDE * SIDE * 3
    x = g.input("input", (1, SIDE, SIDE, 3), np.uint8, scale=1 / 255, zero_point=0)
    flat = g.tensor("flat", (1, n), np.uint8, scale=1 / 255, zero_point=0)
    g.op("RESHAPE", [x, g.const("shape", np.array([1, n], np.int32))], [flat])
    w = g.const("w", rng.integers(0, 256, (5, n)).astype(np.uint8), scale=0.004, zero_point=128)
    b = g.const("b", rng.integers(-2000, 2000, 5).astype(np.int32), scale=0.004 / 255)
    out = g.tensor("scores", (1, 5), np.uint8, scale=0.02, zero_point=120)
    g.op("FULLY_CONNECTED", [flat, w, b], [out])
    g.output(out)
    return mb.build()


def object_detector() -> bytes:
    """1x1 convolutions give box encodings and class logits per pixel (64 anchors);
    TFLite_Detection_PostProcess decodes and suppresses them. Outputs in the order the Task
    Library's metadata writer expects (location, category, score, number)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    n = SIDE * SIDE
    x = g.input("input", (1, SIDE, SIDE, 3), np.float32)
    wb = g.const("box_w", (rng.standard_normal((4, 1, 1, 3)) * 0.5).astype(np.float32))
    bb = g.const("box_b", np.zeros(4, np.float32))
    enc = g.apply("CONV_2D", [x, wb, bb], padding="VALID", stride_w=1, stride_h=1)[0]
    enc = g.apply("RESHAPE", [enc, g.const("enc_shape", np.array([1, n, 4], np.int32))],
                  out_name="box_encodings")[0]
    ws = g.const("cls_w", (rng.standard_normal((6, 1, 1, 3)) * 1.5).astype(np.float32))
    bs = g.const("cls_b", (rng.standard_normal(6) - 1.0).astype(np.float32))
    logits = g.apply("CONV_2D", [x, ws, bs], padding="VALID", stride_w=1, stride_h=1)[0]
    logits = g.apply("RESHAPE", [logits, g.const("cls_shape", np.array([1, n, 6], np.int32))])[0]
    scores = g.apply("LOGISTIC", [logits], out_name="class_predictions")[0]
    yy, xx = np.meshgrid((np.arange(SIDE) + 0.5) / SIDE, (np.arange(SIDE) + 0.5) / SIDE,
                         indexing="ij")
    anchors = np.stack([yy.ravel(), xx.ravel(), np.full(n, 0.3), np.full(n, 0.25)], 1)
    anc = g.const("anchors", anchors.astype(np.float32))
    k = 6
    outs = [g.tensor("location", (1, k, 4)), g.tensor("category", (1, k)),
            g.tensor("score", (1, k)), g.tensor("number of detections", (1,))]
    g.op("TFLite_Detection_PostProcess", [enc, scores, anc], outs, custom=True, custom_options={
        "max_detections": k, "max_classes_per_detection": 1, "detections_per_class": 10,
        "use_regular_nms": False, "nms_score_threshold": 0.2, "nms_iou_threshold": 0.5,
        "num_classes": 5, "y_scale": 10.0, "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0})
    g.output(*outs)
    return mb.build()


def image_segmenter() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("input", (1, SIDE, SIDE, 3), np.float32)
    w = g.const("w", (rng.standard_normal((4, 1, 1, 3)) * 2.0).astype(np.float32))
    b = g.const("b", (rng.standard_normal(4) * 0.3).astype(np.float32))
    y = g.apply("CONV_2D", [x, w, b], padding="VALID", stride_w=1, stride_h=1)[0]
    g.output(g.apply("SOFTMAX", [y], beta=1.0, out_name="masks")[0])
    return mb.build()


def nl_classifier() -> bytes:
    """int32 token ids in (the regex tokenizer's output), two class probabilities out."""
    mb = ModelBuilder()
    g = mb.subgraph()
    ids = g.input("input_text", (1, 16), np.int32)
    f = g.apply("CAST", [ids], out_name="ids_f")[0]
    g.output(g.apply("SOFTMAX", [_fc(g, f, 16, 2, "logits", 0.3)], beta=1.0,
                     out_name="probability")[0])
    return mb.build()


def _bert_inputs(g, seq: int) -> tuple[int, int, int]:
    return (g.input("serving_default_input_word_ids:0", (1, seq), np.int32),
            g.input("serving_default_input_mask:0", (1, seq), np.int32),
            g.input("serving_default_input_type_ids:0", (1, seq), np.int32))


def bert_nl_classifier() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    ids, mask, seg = _bert_inputs(g, 16)
    f = g.apply("CAST", [ids], out_name="ids_f")[0]
    m = g.apply("CAST", [mask], out_name="mask_f")[0]
    s = g.apply("CAST", [seg], out_name="seg_f")[0]
    both = g.apply("CONCATENATION", [f, m, s], axis=1)[0]
    g.output(g.apply("SOFTMAX", [_fc(g, both, 48, 2, "logits", 0.3)], beta=1.0,
                     out_name="probability")[0])
    return mb.build()


def bert_question_answerer() -> bytes:
    """Start and end logits per token from elementwise functions of the ids, mask and segment
    ids (the Task Library fixes the sequence length at 384, too long for dense weights)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    ids, mask, seg = _bert_inputs(g, 384)
    f = g.apply("CAST", [ids], out_name="ids_f")[0]
    m = g.apply("CAST", [mask], out_name="mask_f")[0]
    s = g.apply("CAST", [seg], out_name="seg_f")[0]

    def logits(freq: float, seg_weight: float, name: str) -> int:
        w = g.apply("MUL", [f, g.const(name + "_freq", np.array(freq, np.float32))])[0]
        wave = g.apply("SIN", [w])[0]
        masked = g.apply("MUL", [wave, m])[0]
        # a different offset per position, so no two spans score alike (the Task Library
        # sorts answers with an unstable sort)
        pos = g.const(name + "_pos", (rng.standard_normal((1, 384)) * 0.5).astype(np.float32))
        masked = g.apply("ADD", [masked, pos])[0]
        shifted = g.apply("MUL", [s, g.const(name + "_seg", np.array(seg_weight, np.float32))])[0]
        return g.apply("ADD", [masked, shifted], out_name=name)[0]

    g.output(logits(0.37, 0.5, "end_logits"), logits(0.23, 0.8, "start_logits"))
    return mb.build()


def audio_classifier() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("waveform", (1, 64), np.float32)
    g.output(g.apply("SOFTMAX", [_fc(g, x, 64, 3, "logits", 1.0)], beta=1.0,
                     out_name="scores")[0])
    return mb.build()


def image_classifier_wide() -> bytes:
    """6 x 10 input: rows of 10 pixels exercise libyuv's SIMD-plus-C split (8 + 2)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("input", (1, 6, 10, 3), np.float32)
    flat = g.apply("RESHAPE", [x, g.const("shape", np.array([1, 180], np.int32))])[0]
    g.output(g.apply("SOFTMAX", [_fc(g, flat, 180, 5, "logits", 0.2)], beta=1.0,
                     out_name="probs")[0])
    return mb.build()


MODELS = {f.__name__: f for f in (image_classifier_float, image_classifier_uint8, object_detector,
                                  image_segmenter, nl_classifier, bert_nl_classifier,
                                  bert_question_answerer, audio_classifier,
                                  image_classifier_wide)}

if __name__ == "__main__":
    BASE.mkdir(exist_ok=True)
    for name, build in MODELS.items():
        (BASE / f"{name}.tflite").write_bytes(build())
        print(name)
