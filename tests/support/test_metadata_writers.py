"""The metadata writers' own checks (the outputs themselves are compared with tflite_support's in
test_metadata_goldens.py): bad arguments fail before anything is written, with a message naming
the argument."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tflite_jit.support import metadata
from tflite_jit.support import metadata_schema_py_generated as fb
from tflite_jit.support import schema_py_generated as schema_fb
from tflite_jit.support.metadata_writers import (
    audio_classifier,
    bert_nl_classifier,
    image_classifier,
    metadata_info,
    nl_classifier,
    object_detector,
    writer_utils,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "metadata"
sys.path.insert(0, str(DATA))
import cases  # noqa: E402

sys.path.remove(str(DATA))
LABELS = str(DATA / "files" / "labels.txt")


def test_writer_utils_read_the_model():
    buf = cases.model("bert")
    assert writer_utils.get_input_tensor_names(buf) == [
        "serving_default_input_mask:0", "serving_default_input_word_ids:0",
        "serving_default_input_type_ids:0"]
    assert writer_utils.get_input_tensor_types(buf) == [schema_fb.TensorType.INT32] * 3
    assert writer_utils.get_output_tensor_types(buf) == [schema_fb.TensorType.FLOAT32]
    assert list(writer_utils.get_input_tensor_shape(buf, 1)) == [1, 8]
    assert writer_utils.compute_flat_size([1, 8, 3]) == 24
    assert writer_utils.compute_flat_size(None) == 0
    with pytest.raises(ValueError, match="input tensor 3 does not exist; the model has 3"):
        writer_utils.get_input_tensor_shape(buf, 3)
    det = cases.model("detector")
    assert writer_utils.get_output_tensor_names(det) == ["score", "location", "number", "category"]


def test_tokenizer_files(tmp_path):
    sp = metadata_info.SentencePieceTokenizerMd("a/sp.model", "b/vocab.txt").create_metadata()
    assert writer_utils.get_tokenizer_associated_files(sp.options) == ["b/vocab.txt",
                                                                       "a/sp.model"]
    assert writer_utils.get_tokenizer_associated_files(None) == []
    path = tmp_path / "f.bin"
    writer_utils.save_file(b"xy", str(path))
    assert writer_utils.load_file(str(path)) == b"xy"


def test_image_classifier_populates_and_reads_back():
    w = image_classifier.MetadataWriter.create_for_inference(
        cases.model("image_float"), [127.5], [127.5], [LABELS])
    d = metadata.MetadataDisplayer.with_model_buffer(w.populate())
    assert d.get_associated_file_buffer("labels.txt") == Path(LABELS).read_bytes()
    assert w.get_populated_metadata_json() == d.get_metadata_json()
    out = d.get_metadata()["subgraph_metadata"][0]["output_tensor_metadata"][0]
    assert list(out["stats"]["max"]) == [1.0]  # float32 scores lie in [0, 1]


def test_norm_mean_and_std_must_have_the_same_length():
    with pytest.raises(ValueError, match="same dim. But got 3 and 1"):
        image_classifier.MetadataWriter.create_for_inference(
            cases.model("image_float"), [1.0, 2.0, 3.0], [1.0], [LABELS])


def test_missing_label_file():
    w = image_classifier.MetadataWriter.create_for_inference(
        cases.model("image_float"), [127.5], [127.5], ["no/such/labels.txt"])
    with pytest.raises(ValueError, match="'no/such/labels.txt', does not exist"):
        w.populate()


def test_score_calibration_file_is_checked(tmp_path):
    bad = tmp_path / "cal.csv"
    bad.write_text("1.0,2.0\n")
    with pytest.raises(ValueError, match="3 or 4 parameters per line.*got 2"):
        metadata_info.ScoreCalibrationMd(fb.ScoreTransformationType.LOG, 0.1, str(bad))
    bad.write_text("-1.0,2.0,3.0\n")
    with pytest.raises(ValueError, match="scale to be a non-negative value, but got -1.0"):
        metadata_info.ScoreCalibrationMd(fb.ScoreTransformationType.LOG, 0.1, str(bad))
    bad.write_text("x,2.0,3.0\n")
    with pytest.raises(ValueError, match="line 1: scale 'x' is not a number"):
        metadata_info.ScoreCalibrationMd(fb.ScoreTransformationType.LOG, 0.1, str(bad))


@pytest.mark.parametrize("rate,channels,match", [(0, 1, "sample_rate should be positive"),
                                                 (16000, -1, "channels should be positive")])
def test_audio_needs_positive_rate_and_channels(rate, channels, match):
    with pytest.raises(ValueError, match=match):
        audio_classifier.MetadataWriter.create_for_inference(cases.model("audio"), rate,
                                                             channels, [LABELS])


def test_bert_input_names_must_match_the_model():
    with pytest.raises(ValueError, match="input tensor names .* do not match"):
        bert_nl_classifier.MetadataWriter.create_for_inference(
            cases.model("bert"), metadata_info.BertTokenizerMd("vocab.txt"), [LABELS],
            ids_name="ids")


def test_tensor_names_given_must_match_the_model():
    heads = [metadata_info.ClassificationTensorMd(name="x", tensor_name="nope")]
    with pytest.raises(ValueError, match=r"tensor names from arguments \(\['nope'\]\) do not match"):
        audio_classifier.MetadataWriter.create_from_metadata_info_for_multihead(
            cases.model("audio_two_heads"), output_md_list=heads)


def test_object_detector_needs_four_outputs():
    with pytest.raises(ValueError, match="object detector has 4 outputs.*the model has 1"):
        object_detector.MetadataWriter.create_from_metadata_info(cases.model("image_float"))


def test_nl_classifier_refuses_a_bert_tokenizer():
    md = metadata_info.InputTextTensorMd(tokenizer_md=metadata_info.BertTokenizerMd("v.txt"))
    with pytest.raises(ValueError, match="type of tokenizer_options.*unsupported"):
        nl_classifier.MetadataWriter.create_from_metadata_info(cases.model("text"), input_md=md)


def test_wrong_tensor_count_from_metadata_objects():
    with pytest.raises(ValueError, match=r"number of output tensors \(1\) should match the number"
                                         r" of output tensor metadata \(2\)"):
        image_classifier.MetadataWriter.create_from_metadata(
            cases.model("image_float"),
            output_metadata=[fb.TensorMetadataT(), fb.TensorMetadataT()]).populate()


def test_model_without_outputs():
    import numpy as np

    from tflite_jit.format.builder import ModelBuilder

    mb = ModelBuilder()
    g = mb.subgraph()
    g.input("x", (1, 4), np.float32)
    with pytest.raises(ValueError, match="no output tensor to describe"):
        image_classifier.MetadataWriter.create_for_inference(mb.build(), [0.0], [1.0], [LABELS])
