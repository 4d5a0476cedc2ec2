"""The Task API's contract beyond the goldens: bad input is a ValueError naming the problem
(never a crash), TensorImage's conversions, and the options' checks."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

from tflite_jit.support import task
from tflite_jit.support.task import core, image_scaling, processor, text, vision

DATA = Path(__file__).resolve().parent.parent / "data" / "task"
sys.path.insert(0, str(DATA))
import task_cases as cases  # noqa: E402  (metadata has a `cases` too)


def _clf(**opts) -> vision.ImageClassifier:
    return vision.ImageClassifier.create_from_options(vision.ImageClassifierOptions(
        base_options=core.BaseOptions(file_name=cases.model("classifier_float")),
        classification_options=processor.ClassificationOptions(**opts)))


def test_package_layout_matches_tflite_support() -> None:
    for sub in ("core", "processor", "vision", "text", "audio"):
        assert getattr(task, sub).__name__ == f"tflite_jit.support.task.{sub}"
    import tflite_jit.support as support

    assert support.task is task


def test_tensor_image() -> None:
    rgb = cases.image(3, 5, 7)
    im = vision.TensorImage.create_from_array(rgb[None])
    assert (im.height, im.width, im.color_space_type) == (5, 7, vision.ColorSpaceType.RGB)
    assert np.array_equal(im.buffer, rgb)
    gray = vision.TensorImage.create_from_array(cases.image(1, 4, 6, 1))
    assert gray.color_space_type == vision.ColorSpaceType.GRAYSCALE and gray.buffer.shape == (4, 6)
    with pytest.raises(ValueError, match="dtype=uint8"):
        vision.TensorImage.create_from_array(rgb.astype(np.float32))
    with pytest.raises(ValueError, match="Unsupported image shape"):
        vision.TensorImage.create_from_array(np.zeros((4, 4, 2), np.uint8))


def test_tensor_image_from_encoded_png() -> None:
    Image = pytest.importorskip("PIL.Image", reason="decoding needs Pillow (extra `image`)")
    rgba = cases.image(4, 6, 5, 4)
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    im = vision.TensorImage.create_from_buffer(buf.getvalue())
    assert im.color_space_type == vision.ColorSpaceType.RGBA and np.array_equal(im.buffer, rgba)
    with pytest.raises(ValueError, match="decoding failed"):
        vision.TensorImage.create_from_buffer(b"not an image")


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="max_results"):
        _clf(max_results=0)
    with pytest.raises(ValueError, match="mutually exclusive"):
        _clf(category_name_allowlist=["cat"], category_name_denylist=["dog"])
    with pytest.raises(ValueError, match="none match"):
        _clf(category_name_allowlist=["unicorn"])
    with pytest.raises(ValueError, match="model_file"):
        vision.ImageClassifier.create_from_options(vision.ImageClassifierOptions(
            base_options=core.BaseOptions()))
    with pytest.raises(ValueError, match="num_threads"):
        vision.ImageClassifier.create_from_options(vision.ImageClassifierOptions(
            base_options=core.BaseOptions(file_name=cases.model("classifier_float"),
                                          num_threads=0)))


def test_model_content_and_threads() -> None:
    content = Path(cases.model("classifier_float")).read_bytes()
    clf = vision.ImageClassifier.create_from_options(vision.ImageClassifierOptions(
        base_options=core.BaseOptions(file_content=content, num_threads=2)))
    im = vision.TensorImage.create_from_array(cases.image(0, 8, 8))
    assert clf.classify(im) == _clf().classify(im)


def test_bad_inputs_are_value_errors(tmp_path) -> None:
    clf = _clf()
    im = vision.TensorImage.create_from_array(cases.image(7, 20, 16))
    for box in (processor.BoundingBox(10, 0, 8, 8), processor.BoundingBox(-1, 0, 4, 4),
                processor.BoundingBox(0, 0, 0, 5)):
        with pytest.raises(ValueError, match="crop"):
            clf.classify(im, box)
    with pytest.raises(ValueError, match="Grayscale"):
        clf.classify(vision.TensorImage.create_from_array(cases.image(1, 8, 8, 1)))
    with pytest.raises(ValueError):
        clf.classify(cases.image(0, 8, 8))
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"garbage" * 10)
    with pytest.raises(ValueError):
        vision.ImageClassifier.create_from_file(str(bad))
    with pytest.raises(ValueError, match="4D tensors"):  # a text model is no detector
        vision.ObjectDetector.create_from_file(cases.model("nl_classifier"))
    with pytest.raises(ValueError):
        text.BertQuestionAnswerer.create_from_file(cases.model("bert_classifier"))


def test_results_compare_by_value() -> None:
    seg = vision.ImageSegmenter.create_from_file(cases.model("segmenter"))
    im = vision.TensorImage.create_from_array(cases.image(2, 13, 10))
    assert seg.segment(im) == seg.segment(im)
    assert seg.segment(im) != seg.segment(vision.TensorImage.create_from_array(cases.image(0, 8, 8)))


def test_scaling_identity_and_shapes() -> None:
    img = cases.image(5, 9, 17)
    assert np.array_equal(image_scaling.scale(img, 17, 9), img)
    for w, h in ((1, 1), (3, 9), (17, 4), (34, 18), (8, 27), (40, 3)):
        out = image_scaling.scale(img, w, h)
        assert out.shape == (h, w, 3) and out.dtype == np.uint8
    flat = np.full((6, 10, 4), 255, np.uint8)
    assert image_scaling.scale(flat, 5, 3).min() >= 253  # libyuv's 7-bit blend may lose 2 levels


def _dynamic_batch_classifier(tmp_path) -> str:
    from tflite_jit.format.builder import ModelBuilder
    from tflite_jit.support.metadata_writers import image_classifier

    rng = np.random.default_rng(3)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("input", (1, 8, 8, 3), np.float32, shape_signature=(-1, 8, 8, 3))
    flat = g.apply("RESHAPE", [x, g.const("shape", np.array([-1, 192], np.int32))])[0]
    w = g.const("w", (rng.standard_normal((5, 192)) * 0.2).astype(np.float32))
    b = g.const("b", np.zeros(5, np.float32))
    logits = g.apply("FULLY_CONNECTED", [flat, w, b])[0]
    g.output(g.apply("SOFTMAX", [logits], beta=1.0)[0])
    populated = image_classifier.MetadataWriter.create_for_inference(
        mb.build(), [127.5], [127.5], [str(DATA / "files" / "labels.txt")]).populate()
    path = tmp_path / "batch.tflite"
    path.write_bytes(populated)
    return str(path)


def test_classify_batch_equals_one_by_one(tmp_path) -> None:
    images = [vision.TensorImage.create_from_array(cases.image(s, h, w))
              for s, h, w in cases.IMAGES]
    for model in (_dynamic_batch_classifier(tmp_path), cases.model("classifier_float")):
        clf = vision.ImageClassifier.create_from_file(model)
        batch = clf.classify_batch(images)
        single = [clf.classify(im) for im in images]
        for a, b in zip(batch, single):
            for ca, cb in zip(a.classifications[0].categories, b.classifications[0].categories):
                assert (ca.index, ca.category_name) == (cb.index, cb.category_name)
                assert ca.score == pytest.approx(cb.score, abs=1e-6)
        assert clf.classify(images[0]) == single[0]  # the model is back at batch 1
    with pytest.raises(ValueError, match="bounding boxes"):
        clf.classify_batch(images, [None])


def _with_metadata(tmp_path, labels: str, calibration: str | None = None,
                   base: str = "image_classifier_float") -> str:
    """The base model with classifier metadata, packing `labels` and `calibration` as given:
    the metadata is written for well-formed files (the writers check them), then the files are
    swapped for the given ones, as a hand-made model could hold them."""
    from tflite_jit.support import metadata
    from tflite_jit.support import metadata_schema_py_generated as fb
    from tflite_jit.support.metadata_writers import image_classifier, metadata_info

    good, given = tmp_path / "good", tmp_path / "given"
    good.mkdir()
    given.mkdir()
    (good / "labels.txt").write_text(FIVE)
    (given / "labels.txt").write_text(labels)
    cal = None
    if calibration is not None:
        (good / "cal.csv").write_text("1,1,0\n" * 4 + "1,1,0")
        (given / "cal.csv").write_text(calibration)
        cal = metadata_info.ScoreCalibrationMd(fb.ScoreTransformationType.LOG, 0.1,
                                               str(good / "cal.csv"))
    base_model = (DATA / "base" / f"{base}.tflite").read_bytes()
    written = image_classifier.MetadataWriter.create_for_inference(
        base_model, [127.5], [127.5], [str(good / "labels.txt")], score_calibration_md=cal)
    meta = metadata.get_metadata_buffer(written.populate())
    path = tmp_path / "model.tflite"
    path.write_bytes(base_model)
    populator = metadata.MetadataPopulator.with_model_file(str(path))
    populator.load_metadata_buffer(meta)
    populator.load_associated_files([str(given / "labels.txt")]
                                    + ([str(given / "cal.csv")] if cal else []))
    populator.populate()
    return str(path)


FIVE = "a\nb\nc\nd\ne\n"


@pytest.mark.parametrize("labels, calibration, message", [
    ("a\nb\nc\n", None, "Got 5 class\\(es\\) for output index 0, expected 3"),
    (FIVE, "1,1,0\n1,1,0\n", "Mismatch between number of labels \\(5\\) and score calibration"),
    (FIVE, "1,1,0\n1,1\n1,1,0\n1,1,0\n1,1,0", "Expected 3 or 4 parameters"),
    (FIVE, "1,1,0\nx,1,0\n1,1,0\n1,1,0\n1,1,0", "Could not parse score calibration parameter"),
    (FIVE, "1,1,0\n-1,1,0\n1,1,0\n1,1,0\n1,1,0", "non-negative"),
])
def test_bad_metadata_is_a_value_error(tmp_path, labels, calibration, message) -> None:
    path = _with_metadata(tmp_path, labels, calibration)
    with pytest.raises(ValueError, match=message):
        vision.ImageClassifier.create_from_file(path)


def test_calibration_file_edge_cases(tmp_path) -> None:
    """An empty line means "default score" for that label; a 4th value is the minimum score."""
    path = _with_metadata(tmp_path, FIVE, "1,1,0\n\n1,1,0,0.99\n1,1,0\n1,1,0")
    clf = vision.ImageClassifier.create_from_file(path)
    result = clf.classify(vision.TensorImage.create_from_array(cases.image(0, 8, 8)))
    by_name = {c.category_name: c.score for c in result.classifications[0].categories}
    assert by_name["b"] == pytest.approx(0.1) and by_name["c"] == pytest.approx(0.1)
    assert all(0 <= s <= 1 for s in by_name.values())


def test_damaged_task_models_raise_value_or_runtime_errors() -> None:
    """Random byte changes in the metadata and the packed files of Task models: creating and
    running a task either works or raises ValueError/RuntimeError (tflite_support's two kinds),
    never anything else. (A one-off run of 800 such models: 571 ValueError, 55 RuntimeError,
    174 ran.)"""
    from tflite_jit.support import metadata

    makers = {
        "classifier_float": lambda b: vision.ImageClassifier.create_from_options(
            vision.ImageClassifierOptions(core.BaseOptions(file_content=b))).classify(
                vision.TensorImage.create_from_array(cases.image(0, 8, 8))),
        "detector_calibrated": lambda b: vision.ObjectDetector.create_from_options(
            vision.ObjectDetectorOptions(core.BaseOptions(file_content=b))).detect(
                vision.TensorImage.create_from_array(cases.image(2, 13, 10))),
        "nl_classifier": lambda b: text.NLClassifier.create_from_options(
            text.NLClassifierOptions(core.BaseOptions(file_content=b))).classify("the movie"),
        "bert_qa": lambda b: text.BertQuestionAnswerer.create_from_options(
            text.BertQuestionAnswererOptions(core.BaseOptions(file_content=b))).answer(
                "the cat sat on the mat", "where?"),
    }
    rng = np.random.default_rng(16)
    for name, run in makers.items():
        buf = Path(cases.model(name)).read_bytes()
        start = buf.find(metadata.get_metadata_buffer(buf))
        for trial in range(10):
            b = bytearray(buf)
            lo = start if trial % 2 else len(buf) - 400
            for _ in range(int(rng.integers(1, 6))):
                b[int(rng.integers(lo, len(b)))] = int(rng.integers(0, 256))
            try:
                run(bytes(b))
            except (ValueError, RuntimeError):
                pass
