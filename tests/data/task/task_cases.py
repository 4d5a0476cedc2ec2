"""The Task Library golden cases, written once against the tflite_support API.

`WRITERS` put metadata on the base models (build_models.py) with a `mlib` namespace of metadata
writers; make_goldens.py runs them with tflite_support's writers and commits the results under
models/. `CASES` run a Task API (`tlib`: `core`, `processor`, `vision`, `text`, `audio` of either
tflite_support.task or tflite_jit.support.task) on those models and return the results as plain
JSON (`jsonable`); make_goldens.py records tflite_support's answers in goldens/, and
tests/support/test_task_goldens.py checks ours against them. Paths are relative to this folder.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _attr(package: str, dotted: str) -> Any:
    """package.dotted as an attribute path (tflite_support re-exports its submodules as
    attributes), importing the submodule where the attribute is missing."""
    obj = importlib.import_module(package)
    for i, part in enumerate(dotted.split(".")):
        if not hasattr(obj, part):
            importlib.import_module(".".join([package, *dotted.split(".")[: i + 1]]))
        obj = getattr(obj, part)
    return obj


def writer_lib(package: str) -> SimpleNamespace:
    ns = SimpleNamespace(metadata=_attr(package, "metadata"),
                         fb=_attr(package, "metadata_schema_py_generated"))
    for w in ("image_classifier", "object_detector", "image_segmenter", "nl_classifier",
              "bert_nl_classifier", "audio_classifier", "metadata_info"):
        setattr(ns, w, _attr(package, f"metadata_writers.{w}"))
    # tflite_support does not re-export the generic writer: take it from where its writers live
    ns.metadata_writer = importlib.import_module(
        ns.image_classifier.__name__.rsplit(".", 1)[0] + ".metadata_writer")
    return ns


def task_lib(package: str) -> SimpleNamespace:
    return SimpleNamespace(**{p: _attr(package, f"task.{p}")
                              for p in ("core", "processor", "vision", "text", "audio")})


def base(name: str) -> bytes:
    return (HERE / "base" / f"{name}.tflite").read_bytes()


def model(name: str) -> str:
    return str(HERE / "models" / f"{name}.tflite")


def _f(name: str) -> str:
    return f"files/{name}"


# --- metadata (written by tflite_support's writers; the models are committed) ---------------

def classifier_float(m: SimpleNamespace) -> bytes:
    mi = m.metadata_info
    inp = mi.InputImageTensorMd(name="image", norm_mean=[127.5, 120.0, 100.0],
                                norm_std=[127.5, 60.0, 80.0],
                                color_space_type=m.fb.ColorSpaceType.RGB, tensor_type=0)
    out = mi.ClassificationTensorMd(
        name="probability", label_files=[mi.LabelFileMd(_f("labels.txt"), locale="en"),
                                         mi.LabelFileMd(_f("labels_fr.txt"), locale="fr")],
        tensor_type=0)
    return m.image_classifier.MetadataWriter.create_from_metadata_info(
        base("image_classifier_float"), input_md=inp, output_md=out).populate()


def classifier_uint8_calibrated(m: SimpleNamespace) -> bytes:
    cal = m.metadata_info.ScoreCalibrationMd(m.fb.ScoreTransformationType.LOG, 0.2,
                                             _f("calibration5.csv"))
    return m.image_classifier.MetadataWriter.create_for_inference(
        base("image_classifier_uint8"), [127.5], [127.5], [_f("labels.txt")],
        score_calibration_md=cal).populate()


def detector(m: SimpleNamespace) -> bytes:
    return m.object_detector.MetadataWriter.create_for_inference(
        base("object_detector"), [127.5], [127.5], [_f("labels.txt")]).populate()


def detector_calibrated(m: SimpleNamespace) -> bytes:
    cal = m.metadata_info.ScoreCalibrationMd(m.fb.ScoreTransformationType.INVERSE_LOGISTIC, 0.1,
                                             _f("calibration5.csv"))
    return m.object_detector.MetadataWriter.create_for_inference(
        base("object_detector"), [127.5], [127.5], [_f("labels.txt")],
        score_calibration_md=cal).populate()


def classifier_wide(m: SimpleNamespace) -> bytes:
    return m.image_classifier.MetadataWriter.create_for_inference(
        base("image_classifier_wide"), [127.5], [127.5], [_f("labels.txt")]).populate()


def segmenter(m: SimpleNamespace) -> bytes:
    return m.image_segmenter.MetadataWriter.create_for_inference(
        base("image_segmenter"), [127.5], [127.5], [_f("seg_labels.txt")]).populate()


def nl_classifier(m: SimpleNamespace) -> bytes:
    tok = m.metadata_info.RegexTokenizerMd(r"[^\w\']+", _f("regex_vocab.txt"))
    return m.nl_classifier.MetadataWriter.create_for_inference(
        base("nl_classifier"), tok, [_f("sentiment.txt")]).populate()


def bert_classifier(m: SimpleNamespace) -> bytes:
    return m.bert_nl_classifier.MetadataWriter.create_for_inference(
        base("bert_nl_classifier"), m.metadata_info.BertTokenizerMd(_f("bert_vocab.txt")),
        [_f("sentiment.txt")]).populate()


def bert_classifier_sp(m: SimpleNamespace) -> bytes:
    return m.bert_nl_classifier.MetadataWriter.create_for_inference(
        base("bert_nl_classifier"),
        m.metadata_info.SentencePieceTokenizerMd(_f("sp_tiny.model")),
        [_f("sentiment.txt")]).populate()


def bert_qa(m: SimpleNamespace) -> bytes:
    mi = m.metadata_info
    buf = base("bert_question_answerer")
    inp = mi.BertInputTensorsMd(buf, "serving_default_input_word_ids:0",
                                "serving_default_input_mask:0", "serving_default_input_type_ids:0",
                                tokenizer_md=mi.BertTokenizerMd(_f("bert_vocab.txt")))
    outs = [mi.TensorMd(name="end_logits", tensor_name="end_logits"),
            mi.TensorMd(name="start_logits", tensor_name="start_logits")]
    return m.metadata_writer.MetadataWriter.create_from_metadata(
        buf, mi.GeneralMd(name="BertQA").create_metadata(),
        input_metadata=inp.create_input_tesnor_metadata(),
        output_metadata=[o.create_metadata() for o in outs],
        associated_files=inp.get_tokenizer_associated_files(),
        input_process_units=inp.create_input_process_unit_metadata()).populate()


def audio(m: SimpleNamespace) -> bytes:
    return m.audio_classifier.MetadataWriter.create_for_inference(
        base("audio_classifier"), 16000, 1, [_f("sounds.txt")]).populate()


WRITERS: dict[str, Callable[[SimpleNamespace], bytes]] = {
    f.__name__: f for f in (classifier_float, classifier_uint8_calibrated, classifier_wide, detector,
                            detector_calibrated, segmenter, nl_classifier, bert_classifier,
                            bert_classifier_sp,
                            bert_qa, audio)}

# --- inputs ----------------------------------------------------------------------------------


_KEEP: dict[tuple[int, ...], np.ndarray] = {}


def image(seed: int, h: int, w: int, c: int = 3) -> np.ndarray:
    """A random image. Kept alive for the whole run: tflite_support's
    TensorImage.create_from_array keeps a pointer to the array's memory without a reference,
    so a freed array would be overwritten by the next one before it is classified."""
    key = (seed, h, w, c)
    if key not in _KEEP:
        shape = (h, w) if c == 1 else (h, w, c)
        _KEEP[key] = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    return _KEEP[key]


#: exact model size (no resize), larger and smaller (libyuv's bilinear resize), odd sizes
IMAGES = [(0, 8, 8), (1, 8, 8), (2, 13, 10), (3, 5, 7), (4, 32, 24), (5, 9, 17)]


def _images(t: SimpleNamespace) -> list[Any]:
    return [t.vision.TensorImage.create_from_array(image(s, h, w)) for s, h, w in IMAGES]


def jsonable(x: Any) -> Any:
    """A result as plain data: dataclasses as dicts, enums by name, arrays as lists."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, enum.Enum):
        return x.name
    if isinstance(x, np.ndarray):
        return {"dtype": str(x.dtype), "shape": list(x.shape), "data": x.ravel().tolist()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x


# --- Task cases ------------------------------------------------------------------------------

def classify_float(t: SimpleNamespace) -> Any:
    c = t.vision.ImageClassifier.create_from_file(model("classifier_float"))
    return [c.classify(im) for im in _images(t)]


#: every path of libyuv's ARGBScale that bilinear scaling to 8x8 reaches: 2x and 4x box
#: shrinks, odd integer shrinks (nearest), width unchanged (vertical only), height unchanged
#: and 3x (horizontal only), up in one axis and down in the other, 2-pixel sources (arrays
#: with a 1-pixel side are squeezed to another shape by create_from_array, in both libraries)
SCALING = [(20, 16, 16), (21, 32, 32), (22, 24, 24), (23, 20, 8), (24, 8, 20), (25, 24, 5),
           (26, 5, 24), (27, 2, 9), (28, 9, 2), (29, 2, 2), (30, 16, 40), (31, 48, 24)]


def classify_scaling(t: SimpleNamespace) -> Any:
    c = t.vision.ImageClassifier.create_from_file(model("classifier_float"))
    return [c.classify(t.vision.TensorImage.create_from_array(image(s, h, w)))
            for s, h, w in SCALING]


def classify_wide(t: SimpleNamespace) -> Any:
    """A 10-pixel-wide input: box shrinks whose rows end in a remainder of 2 pixels."""
    c = t.vision.ImageClassifier.create_from_file(model("classifier_wide"))
    return [c.classify(t.vision.TensorImage.create_from_array(image(s, h, w)))
            for s, h, w in ((40, 12, 20), (41, 24, 40), (42, 18, 30), (43, 7, 13))]


def classify_options(t: SimpleNamespace) -> Any:
    v, p = t.vision, t.processor
    out = []
    for opts in (p.ClassificationOptions(max_results=2),
                 p.ClassificationOptions(score_threshold=0.2),
                 p.ClassificationOptions(category_name_allowlist=["dog", "frog", "unknown"]),
                 p.ClassificationOptions(category_name_denylist=["cat"], max_results=3),
                 p.ClassificationOptions(display_names_locale="fr", max_results=3)):
        c = v.ImageClassifier.create_from_options(v.ImageClassifierOptions(
            base_options=t.core.BaseOptions(file_name=model("classifier_float")),
            classification_options=opts))
        out.append([c.classify(im) for im in _images(t)[:3]])
    return out


def classify_roi(t: SimpleNamespace) -> Any:
    c = t.vision.ImageClassifier.create_from_file(model("classifier_float"))
    im = t.vision.TensorImage.create_from_array(image(7, 20, 16))
    boxes = [t.processor.BoundingBox(origin_x=0, origin_y=0, width=8, height=8),
             t.processor.BoundingBox(origin_x=3, origin_y=5, width=8, height=8),
             t.processor.BoundingBox(origin_x=2, origin_y=1, width=11, height=17)]
    return [c.classify(im, b) for b in boxes]


def classify_uint8_calibrated(t: SimpleNamespace) -> Any:
    c = t.vision.ImageClassifier.create_from_file(model("classifier_uint8_calibrated"))
    return [c.classify(im) for im in _images(t)]


def classify_rgba(t: SimpleNamespace) -> Any:
    c = t.vision.ImageClassifier.create_from_file(model("classifier_float"))
    ims = [image(8, 8, 8, 4), image(9, 12, 9, 4)]
    return [c.classify(t.vision.TensorImage.create_from_array(a)) for a in ims]


def classify_gray(t: SimpleNamespace) -> Any:
    c = t.vision.ImageClassifier.create_from_file(model("classifier_float"))
    return c.classify(t.vision.TensorImage.create_from_array(image(10, 8, 8, 1)))


def detect(t: SimpleNamespace) -> Any:
    out = []
    for name in ("detector", "detector_calibrated"):
        d = t.vision.ObjectDetector.create_from_file(model(name))
        out.append([d.detect(im) for im in _images(t)])
    return out


def detect_options(t: SimpleNamespace) -> Any:
    v, p = t.vision, t.processor
    out = []
    for opts in (p.DetectionOptions(max_results=2), p.DetectionOptions(score_threshold=0.6),
                 p.DetectionOptions(category_name_allowlist=["dog", "bird"]),
                 p.DetectionOptions(category_name_denylist=["cat"])):
        d = v.ObjectDetector.create_from_options(v.ObjectDetectorOptions(
            base_options=t.core.BaseOptions(file_name=model("detector")), detection_options=opts))
        out.append([d.detect(im) for im in _images(t)[:3]])
    return out


def segment(t: SimpleNamespace) -> Any:
    v, p = t.vision, t.processor
    out = []
    for kind in (p.OutputType.CATEGORY_MASK, p.OutputType.CONFIDENCE_MASK):
        s = v.ImageSegmenter.create_from_options(v.ImageSegmenterOptions(
            base_options=t.core.BaseOptions(file_name=model("segmenter")),
            segmentation_options=p.SegmentationOptions(output_type=kind)))
        out.append([s.segment(im) for im in _images(t)])
    return out


def embed(t: SimpleNamespace) -> Any:
    v, p = t.vision, t.processor
    out = []
    for name in ("classifier_float", "classifier_uint8_calibrated"):
        for opts in (p.EmbeddingOptions(), p.EmbeddingOptions(l2_normalize=True),
                     p.EmbeddingOptions(l2_normalize=True, quantize=True)):
            e = v.ImageEmbedder.create_from_options(v.ImageEmbedderOptions(
                base_options=t.core.BaseOptions(file_name=model(name)), embedding_options=opts))
            results = [e.embed(im) for im in _images(t)]
            sims = [e.cosine_similarity(results[0].embeddings[0].feature_vector,
                                        r.embeddings[0].feature_vector) for r in results]
            out.append({"results": results, "similarities": sims,
                        "dimension": e.get_embedding_dimension(0),
                        "layers": e.number_of_output_layers})
    return out


def nl_classify(t: SimpleNamespace) -> Any:
    c = t.text.NLClassifier.create_from_file(model("nl_classifier"))
    return [c.classify(s) for s in TEXTS]


def bert_classify(t: SimpleNamespace) -> Any:
    c = t.text.BertNLClassifier.create_from_file(model("bert_classifier"))
    return [c.classify(s) for s in TEXTS]


def bert_classify_sentencepiece(t: SimpleNamespace) -> Any:
    c = t.text.BertNLClassifier.create_from_file(model("bert_classifier_sp"))
    return [c.classify(s) for s in TEXTS]


def bert_answer(t: SimpleNamespace) -> Any:
    q = t.text.BertQuestionAnswerer.create_from_file(model("bert_qa"))
    return [q.answer(ctx, question) for ctx, question in QA]


def audio_classify(t: SimpleNamespace) -> Any:
    c = t.audio.AudioClassifier.create_from_file(model("audio"))
    out = []
    for seed, n in ((0, 64), (1, 40), (2, 100)):
        wave = np.random.default_rng(seed).uniform(-1, 1, n).astype(np.float32)
        ta = c.create_input_tensor_audio()
        ta.load_from_array(wave.reshape(-1, 1))
        out.append(c.classify(ta))
    return out


TEXTS = ["The movie was great", "I loved it!", "not boring, not bad", "", "Unknown words here",
         "the the the the the the the the the the the the the the the the the the movie"]
QA = [("The cat sat on the mat. The dog is running fast in the park today.",
       "Where is the dog running?"),
      ("What is the sun? The sun is a cat.", "What is it?"),
      ("Cats playing, dogs running.", "Who is playing?")]

CASES: dict[str, Callable[[SimpleNamespace], Any]] = {
    f.__name__: f for f in (classify_float, classify_scaling, classify_wide, classify_options, classify_roi,
                            classify_uint8_calibrated, classify_rgba, classify_gray, detect,
                            detect_options, segment, embed, nl_classify, bert_classify,
                            bert_classify_sentencepiece, bert_answer,
                            audio_classify)}
