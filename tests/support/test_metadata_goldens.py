"""tflite_jit.support against what tflite_support 0.4.4 wrote (tests/data/metadata/goldens,
made by make_goldens.py from the cases in cases.py): the same JSON before and after populating,
the same packed files, and our displayer reads tflite_support's models as tflite_support does."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tflite_jit.support import metadata

DATA = Path(__file__).resolve().parent.parent / "data" / "metadata"
GOLDENS = DATA / "goldens"
sys.path.insert(0, str(DATA))
import cases  # noqa: E402

sys.path.remove(str(DATA))
NAMES = sorted(cases.CASES)


@pytest.fixture(scope="module")
def ours():
    """Every case run through tflite_jit.support (paths relative to the data folder)."""
    import os

    cwd = os.getcwd()
    os.chdir(DATA)
    try:
        lib = cases.tflite_jit_lib()
        return {name: case(lib) for name, case in cases.CASES.items()}
    finally:
        os.chdir(cwd)


def test_every_case_has_a_golden():
    assert sorted(p.name[:-7] for p in GOLDENS.glob("*.tflite")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_json_before_populating(ours, name):
    assert ours[name][0] == (GOLDENS / f"{name}.pre.json").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_populated_model_matches(ours, name):
    d = metadata.MetadataDisplayer.with_model_buffer(ours[name][1])
    assert d.get_metadata_json() == (GOLDENS / f"{name}.json").read_text()
    files = json.loads((GOLDENS / f"{name}.files.json").read_text())
    assert d.get_packed_associated_file_list() == files
    theirs = metadata.MetadataDisplayer.with_model_buffer((GOLDENS / f"{name}.tflite").read_bytes())
    for f in files:
        assert d.get_associated_file_buffer(f) == theirs.get_associated_file_buffer(f)


@pytest.mark.parametrize("name", NAMES)
def test_metadata_buffer_is_byte_identical(ours, name):
    """The stored metadata flatbuffer itself is what tflite_support stores (same builder
    layout), except where CustomMetadata.data is aligned: we honour the schema's force_align 16,
    flatbuffers' Python builder ignores it."""
    theirs = metadata.get_metadata_buffer((GOLDENS / f"{name}.tflite").read_bytes())
    mine = metadata.get_metadata_buffer(ours[name][1])
    if name in ("populator_kitchen_sink",):
        assert metadata.convert_to_json(mine) == metadata.convert_to_json(theirs)
    else:
        assert mine == theirs


@pytest.mark.parametrize("name", NAMES)
def test_displayer_reads_tflite_support_models(name):
    buf = (GOLDENS / f"{name}.tflite").read_bytes()
    d = metadata.MetadataDisplayer.with_model_buffer(buf)
    assert d.get_metadata_json() == (GOLDENS / f"{name}.json").read_text()
    assert d.get_packed_associated_file_list() == json.loads(
        (GOLDENS / f"{name}.files.json").read_text())
    assert metadata.convert_to_json(metadata.get_metadata_buffer(buf)) == d.get_metadata_json()


@pytest.mark.skipif(importlib.util.find_spec("tflite_support") is None,
                    reason="tflite_support is not installed (it has no wheels for Python >= 3.12;"
                           " the committed goldens stand in for it)")
@pytest.mark.parametrize("name", NAMES)
def test_against_tflite_support_itself(ours, name):
    from tflite_support import metadata as theirs

    populated = ours[name][1]
    d = theirs.MetadataDisplayer.with_model_buffer(populated)
    assert d.get_metadata_json() == (GOLDENS / f"{name}.json").read_text()
    assert d.get_packed_associated_file_list() == metadata.MetadataDisplayer.with_model_buffer(
        populated).get_packed_associated_file_list()


@pytest.mark.parametrize("name", sorted(cases.RAW_CASES))
def test_json_of_odd_values(name):
    """Unnamed enum values, nan/-nan/inf, tiny floats, control characters print as flatc
    prints them."""
    buf = (GOLDENS / f"{name}.meta").read_bytes()
    assert metadata.convert_to_json(buf) == (GOLDENS / f"{name}.json").read_text()
    assert metadata.convert_to_json(cases.RAW_CASES[name](cases.tflite_jit_lib())) == (
        GOLDENS / f"{name}.json").read_text()


MEDIAPIPE = sorted(p.name[:-5] for p in (GOLDENS / "mediapipe").glob("*.meta"))


@pytest.mark.parametrize("name", MEDIAPIPE)
def test_json_of_published_mediapipe_models(name):
    """The metadata of the MediaPipe 0.10.14 wheel's models, printed by tflite_support."""
    buf = (GOLDENS / "mediapipe" / f"{name}.meta").read_bytes()
    assert metadata.convert_to_json(buf) == (GOLDENS / "mediapipe" / f"{name}.json").read_text()
