"""`tflite-jit classify|detect|segment` on the committed Task fixtures: the printed results are
the API's, errors are one line with exit code 1."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tflite_jit.support.task import core, processor, vision
from tflite_jit.tools.cli import main
from tflite_jit.tools.tasks_cli import plain

DATA = Path(__file__).resolve().parent.parent / "data" / "task"
sys.path.insert(0, str(DATA))
import task_cases as cases  # noqa: E402  (metadata has a `cases` too)

Image = pytest.importorskip("PIL.Image", reason="the CLI decodes images with Pillow (extra `image`)")


@pytest.fixture(scope="module")
def pngs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for seed, h, w in cases.IMAGES[:3]:
        p = folder / f"img{seed}.png"
        Image.fromarray(cases.image(seed, h, w)).save(p)
        paths.append(str(p))
    return paths


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[dict]:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_classify_json_is_the_api_result(capsys, pngs) -> None:
    model = cases.model("classifier_float")
    got = _json(capsys, ["classify", model, *pngs, "--json", "--max-results", "2",
                         "--locale", "fr"])
    clf = vision.ImageClassifier.create_from_options(vision.ImageClassifierOptions(
        base_options=core.BaseOptions(file_name=model),
        classification_options=processor.ClassificationOptions(max_results=2,
                                                               display_names_locale="fr")))
    want = [{"image": p, "result": plain(clf.classify(vision.TensorImage.create_from_file(p)))}
            for p in pngs]
    assert got == want
    assert got[0]["result"]["classifications"][0]["categories"][0]["display_name"] == "chat"


def test_detect_and_segment_json(capsys, pngs) -> None:
    det = _json(capsys, ["detect", cases.model("detector"), pngs[0], "--json",
                         "--score-threshold", "0.5"])
    want = vision.ObjectDetector.create_from_options(vision.ObjectDetectorOptions(
        base_options=core.BaseOptions(file_name=cases.model("detector")),
        detection_options=processor.DetectionOptions(score_threshold=0.5))).detect(
        vision.TensorImage.create_from_file(pngs[0]))
    assert det[0]["result"] == plain(want)
    seg = _json(capsys, ["segment", cases.model("segmenter"), pngs[0], "--json"])
    mask = seg[0]["result"]["segmentations"][0]["category_mask"]
    assert len(mask) == 8 and len(mask[0]) == 8


def test_text_output(capsys, pngs) -> None:
    assert main(["classify", cases.model("classifier_float"), pngs[1], "--max-results", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == pngs[1] and out[1].strip().startswith("1. ") and len(out) == 2
    assert main(["segment", cases.model("segmenter"), pngs[1]]) == 0
    out = capsys.readouterr().out
    assert "mask 8x8" in out and "road" in out and "% of pixels" in out


def test_errors_are_one_line(capsys, pngs, tmp_path) -> None:
    assert main(["detect", cases.model("classifier_float"), pngs[0]]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exactly 4 outputs" in err[0]
    assert main(["classify", cases.model("classifier_float"), str(tmp_path / "missing.png")]) == 1
    assert "missing.png" in capsys.readouterr().err
    assert main(["classify", cases.model("classifier_float"), pngs[0], "--allow", "cat",
                 "--deny", "dog"]) == 1
    assert "mutually exclusive" in capsys.readouterr().err
