"""`tflite-jit inspect --metadata`: tflite_support's JSON, the packed files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from tflite_jit.tools.cli import main

GOLDENS = Path(__file__).resolve().parent.parent / "data" / "metadata" / "goldens"


def test_text_is_the_metadata_json_then_the_files(capsys):
    model = GOLDENS / "object_detector.tflite"
    assert main(["inspect", "--metadata", str(model)]) == 0
    out = capsys.readouterr().out
    expected = (GOLDENS / "object_detector.json").read_text()
    assert out.startswith(expected)
    assert out[len(expected):] == ("\nassociated files:\n  labels.txt (23 bytes)\n"
                                   "  calibration.csv (71 bytes)\n")


def test_json(capsys):
    model = GOLDENS / "image_classifier_float.tflite"
    assert main(["inspect", "--metadata", "--json", str(model)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metadata"] == json.loads((GOLDENS / "image_classifier_float.json").read_text())
    assert out["associated_files"] == [{"name": "labels.txt", "size": 23}]


def test_model_without_metadata_is_one_line(capsys):
    model = GOLDENS.parent / "models" / "audio.tflite"
    assert main(["inspect", "--metadata", str(model)]) == 1
    err = capsys.readouterr().err
    assert err == f"tflite-jit inspect: error: {model}: The model does not have metadata.\n"


def test_damaged_metadata_is_one_line(tmp_path, capsys):
    buf = bytearray((GOLDENS / "image_classifier_float.tflite").read_bytes())
    start = buf.index(b"M001") - 4
    buf[start:start + 4] = b"\xff\xff\x00\x00"  # the metadata's root offset points far away
    path = tmp_path / "bad.tflite"
    path.write_bytes(bytes(buf))
    assert main(["inspect", "--metadata", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tflite-jit inspect: error: {path}: The metadata is not a valid "
                          "Flatbuffer buffer: ModelMetadata.name vtable offset at offset 65535 "
                          "(+4 bytes) lies outside the 688-byte buffer")
    assert err.count("\n") == 1
