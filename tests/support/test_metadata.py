"""tflite_jit.support.metadata: round trips, the object API, the populator's rules, populated
models still running, and malformed input failing with a ValueError that names the problem."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import flatbuffers
import numpy as np
import pytest

from tflite_jit.support import metadata, metadata_codec, packing
from tflite_jit.support import metadata_schema_py_generated as fb

DATA = Path(__file__).resolve().parent.parent / "data" / "metadata"
sys.path.insert(0, str(DATA))
import cases  # noqa: E402

sys.path.remove(str(DATA))
BASE = cases.model("image_float")  # one input, one output


def _pack(m) -> bytes:
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), b"M001")
    return bytes(b.Output())


def _minimal(n_in: int = 1, n_out: int = 1, **files: str):
    sg = fb.SubGraphMetadataT()
    sg.inputTensorMetadata = [fb.TensorMetadataT() for _ in range(n_in)]
    sg.outputTensorMetadata = [fb.TensorMetadataT() for _ in range(n_out)]
    for where, name in files.items():
        f = fb.AssociatedFileT()
        f.name, f.type = name, fb.AssociatedFileType.TENSOR_AXIS_LABELS
        getattr(sg, where)[0].associatedFiles = [f]
    m = fb.ModelMetadataT()
    m.name = "m"
    m.subgraphMetadata = [sg]
    return m


def _populated(m=None, files=None) -> bytes:
    p = metadata.MetadataPopulator.with_model_buffer(BASE)
    p.load_metadata_buffer(_pack(m or _minimal()))
    p.load_associated_file_buffers(files or {})
    p.populate()
    return p.get_model_buffer()


# ---- round trips -----------------------------------------------------------------------------

def test_decode_encode_round_trip_keeps_every_field():
    buf = _pack(cases._kitchen_sink(fb))
    d = metadata_codec.decode(buf)
    again = metadata_codec.decode(metadata_codec.encode(d))
    assert metadata.convert_to_json(metadata_codec.encode(again)) == metadata.convert_to_json(buf)
    assert d["subgraph_metadata"][0]["input_tensor_metadata"][0]["dimension_names"] == [
        "batch", "height", "width", "channel"]


def test_object_api_round_trip_and_readers():
    buf = _pack(cases._kitchen_sink(fb))
    root = fb.ModelMetadata.GetRootAsModelMetadata(buf, 0)
    assert fb.ModelMetadata.ModelMetadataBufferHasIdentifier(buf, 0)
    assert root.Name() == b"kitchen sink"
    assert root.SubgraphMetadataLength() == 1
    tensor = root.SubgraphMetadata(0).InputTensorMetadata(0)
    assert tensor.DimensionNames(2) == b"width"
    assert tensor.Content().ContentPropertiesType() == fb.ContentProperties.ImageProperties
    props = fb.ImageProperties()
    union = tensor.Content().ContentProperties()
    props.Init(union.Bytes, union.Pos)
    assert props.DefaultSize().Width() == 224
    np.testing.assert_array_equal(tensor.Stats().MaxAsNumpy(), np.float32([1.0, 3.4e38]))
    assert tensor.Stats().MinIsNone() is False and tensor.Stats().MinLength() == 2
    with pytest.raises(IndexError, match="dimension_names"):
        tensor.DimensionNames(9)
    obj = fb.ModelMetadataT.InitFromObj(root)
    assert obj.subgraphMetadata[0].inputTensorMetadata[0].name == b"image"
    assert _pack(obj) == buf  # decoding and packing again gives the same bytes
    assert fb.ModelMetadataT.InitFromPackedBuf(buf) == obj
    creator = fb.ContentPropertiesCreator(fb.ContentProperties.ImageProperties, union)
    assert creator.defaultSize.width == 224


def test_pack_refuses_the_wrong_object_in_a_field():
    m = _minimal()
    m.subgraphMetadata[0].inputTensorMetadata = [fb.AssociatedFileT()]
    with pytest.raises(ValueError, match="inputTensorMetadata.*TensorMetadataT"):
        _pack(m)


def test_populate_then_display():
    model = _populated(_minimal(outputTensorMetadata="dir/labels.txt"),
                       {"dir/labels.txt": b"a\nb\n"})
    d = metadata.MetadataDisplayer.with_model_buffer(model)
    assert d.get_packed_associated_file_list() == ["labels.txt"]
    assert d.get_associated_file_buffer("labels.txt") == b"a\nb\n"
    meta = d.get_metadata()
    assert meta["min_parser_version"] == "1.0.0"
    # the recorded name is reduced to the base name, like the packed file
    assert meta["subgraph_metadata"][0]["output_tensor_metadata"][0]["associated_files"][0][
        "name"] == "labels.txt"
    with zipfile.ZipFile(io.BytesIO(model)) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    assert metadata.get_metadata_buffer(model) == d.get_metadata_buffer()


def test_populating_is_deterministic():
    files = {"labels.txt": b"x\n"}
    m = _minimal(outputTensorMetadata="labels.txt")
    assert _populated(m, files) == _populated(m, files)


def test_with_model_file_updates_the_file(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(BASE)
    label = tmp_path / "labels.txt"
    label.write_bytes(b"a\n")
    meta = tmp_path / "m.meta"
    meta.write_bytes(_pack(_minimal(outputTensorMetadata=str(label))))
    p = metadata.MetadataPopulator.with_model_file(str(path))
    p.load_metadata_file(str(meta))
    p.load_associated_files([str(label)])
    assert p.get_recorded_associated_file_list() == ["labels.txt"]
    p.populate()
    d = metadata.MetadataDisplayer.with_model_file(str(path))
    assert d.get_packed_associated_file_list() == ["labels.txt"]
    assert p.get_model_buffer() == path.read_bytes()


def test_populated_model_runs_like_the_original():
    """The model's flatbuffer is rewritten around the new buffer; LiteRT and our interpreter
    give the populated model's outputs to the bit."""
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    from tflite_jit import Interpreter

    model = _populated(cases._kitchen_sink(fb), cases._SINK_FILES)
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 3)).astype(np.float32)
    outs = []
    for cls, buf in ((LiteRT, BASE), (LiteRT, model), (Interpreter, model)):
        it = cls(model_content=buf)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        outs.append(it.get_tensor(it.get_output_details()[0]["index"]))
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_allclose(outs[2], outs[0], rtol=1e-5, atol=1e-6)


def test_load_metadata_and_associated_files_from_another_model():
    src = _populated(_minimal(outputTensorMetadata="labels.txt"), {"labels.txt": b"q\n"})
    p = metadata.MetadataPopulator.with_model_buffer(BASE)
    p.load_metadata_and_associated_files(src)
    p.populate()
    d = metadata.MetadataDisplayer.with_model_buffer(p.get_model_buffer())
    assert d.get_associated_file_buffer("labels.txt") == b"q\n"
    assert d.get_metadata_json() == metadata.MetadataDisplayer.with_model_buffer(
        src).get_metadata_json()


# ---- the populator's rules -------------------------------------------------------------------

def test_recorded_file_must_be_loaded():
    p = metadata.MetadataPopulator.with_model_buffer(BASE)
    p.load_metadata_buffer(_pack(_minimal(outputTensorMetadata="labels.txt")))
    with pytest.raises(ValueError, match="'labels.txt', is recorded in the metadata, but has not "
                                         "been loaded"):
        p.populate()


def test_file_cannot_be_packed_twice():
    model = _populated(_minimal(outputTensorMetadata="labels.txt"), {"labels.txt": b"a"})
    p = metadata.MetadataPopulator.with_model_buffer(model)
    p.load_associated_file_buffers({"labels.txt": b"b"})
    with pytest.raises(ValueError, match="'labels.txt', has already been packed"):
        p.populate()


def test_unrecorded_file_warns_and_is_packed():
    p = metadata.MetadataPopulator.with_model_buffer(BASE)
    p.load_metadata_buffer(_pack(_minimal()))
    p.load_associated_file_buffers({"notes.txt": b"n"})
    with pytest.warns(UserWarning, match="'notes.txt', does not exist in the metadata"):
        p.populate()
    assert p.get_packed_associated_file_list() == ["notes.txt"]


@pytest.mark.parametrize("n_in,n_out,match", [
    (2, 1, r"number of input tensors \(1\) should match the number of input tensor metadata \(2\)"),
    (1, 0, r"number of output tensors \(1\) should match the number of output tensor metadata "
           r"\(0\)"),
])
def test_tensor_count_must_match_the_model(n_in, n_out, match):
    p = metadata.MetadataPopulator.with_model_buffer(BASE)
    with pytest.raises(ValueError, match=match):
        p.load_metadata_buffer(_pack(_minimal(n_in, n_out)))


def test_exactly_one_subgraph_metadata():
    m = _minimal()
    m.subgraphMetadata = m.subgraphMetadata * 2
    with pytest.raises(ValueError, match="exactly one, but got 2"):
        metadata.MetadataPopulator.with_model_buffer(BASE).load_metadata_buffer(_pack(m))


def test_missing_files_are_ioerrors_and_valueerrors(tmp_path):
    p = metadata.MetadataPopulator.with_model_buffer(BASE)
    with pytest.raises(OSError, match="'nope.txt', does not exist"):
        p.load_associated_files(["nope.txt"])
    with pytest.raises(ValueError, match="does not exist"):
        metadata.MetadataDisplayer.with_model_file(str(tmp_path / "missing.tflite"))


# ---- malformed input -------------------------------------------------------------------------

def test_not_a_model():
    with pytest.raises(ValueError, match="expected identifier, and may not be a valid TFLite"):
        metadata.MetadataPopulator.with_model_buffer(b"\0" * 64)
    with pytest.raises(ValueError, match="cannot be empty"):
        metadata.MetadataDisplayer.with_model_buffer(b"")


def test_model_without_metadata():
    with pytest.raises(ValueError, match="The model does not have metadata."):
        metadata.MetadataDisplayer.with_model_buffer(BASE)
    assert metadata.get_metadata_buffer(BASE) is None


def test_bad_metadata_identifier():
    buf = bytearray(_pack(_minimal()))
    buf[4:8] = b"XXXX"
    with pytest.raises(ValueError, match="metadata buffer does not have the expected identifier"):
        metadata.MetadataPopulator.with_model_buffer(BASE).load_metadata_buffer(bytes(buf))
    with pytest.raises(ValueError, match="expected identifier"):
        metadata.convert_to_json(bytes(buf))


def test_empty_metadata():
    with pytest.raises(ValueError, match="The metadata to be populated is empty."):
        metadata.MetadataPopulator.with_model_buffer(BASE).load_metadata_buffer(b"")


def test_truncated_metadata_names_the_field():
    buf = _pack(cases._kitchen_sink(fb))
    with pytest.raises(ValueError, match=r"The metadata is not a valid Flatbuffer buffer: "
                                         r"ModelMetadata\.\w+"):
        metadata.convert_to_json(buf[: len(buf) // 2])


def test_truncated_metadata_inside_a_model_is_refused_by_the_displayer():
    model = packing.set_metadata_buffer(BASE, _pack(cases._kitchen_sink(fb))[:200])
    with pytest.raises(ValueError, match="The metadata is not a valid Flatbuffer buffer"):
        metadata.MetadataDisplayer.with_model_buffer(model)


def test_metadata_entry_pointing_past_the_buffers():
    from tflite_jit.format.flat import FlatReader
    from tflite_jit.format.writer import write_root

    r = FlatReader(BASE)
    raw = r.read_table(r.root(), "Model", "Model")
    raw["metadata"] = [{"name": "TFLITE_METADATA", "buffer": 99}]
    model = write_root("Model", raw, file_identifier=b"TFL3")
    with pytest.raises(ValueError, match=r"Model.metadata\[0\] \('TFLITE_METADATA'\) points at "
                                         r"buffer 99, but the model has \d+ buffers"):
        metadata.MetadataDisplayer.with_model_buffer(model)


def test_compressed_packed_file_is_refused():
    model = _populated()
    out = io.BytesIO(model)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("labels.txt", b"a\n" * 100)
    with pytest.raises(ValueError, match="'labels.txt' is packed compressed.*uncompressed only"):
        metadata.MetadataDisplayer.with_model_buffer(out.getvalue())


def test_damaged_zip_is_a_valueerror():
    model = _populated(_minimal(outputTensorMetadata="labels.txt"), {"labels.txt": b"abc" * 50})
    bad = bytearray(model)
    pos = bad.index(b"abc" * 50)
    bad[pos] ^= 0xFF  # the file's bytes no longer match its CRC
    d = metadata.MetadataDisplayer.with_model_buffer(bytes(bad))
    with pytest.raises(ValueError, match="'labels.txt' cannot be read"):
        d.get_associated_file_buffer("labels.txt")
    with pytest.raises(ValueError, match="The file, other.txt, does not exist in the model."):
        d.get_associated_file_buffer("other.txt")


def test_random_damage_never_crashes():
    """Byte flips and truncations anywhere in a populated model: reading it either works or
    raises ValueError, nothing else."""
    model = _populated(cases._kitchen_sink(fb), cases._SINK_FILES)
    rng = np.random.default_rng(16)
    outcomes = {"ok": 0, "ValueError": 0}
    for i in range(400):
        buf = bytearray(model)
        if i % 4 == 0:
            buf = buf[: rng.integers(8, len(buf))]
        else:
            for pos in rng.integers(0, len(buf), size=rng.integers(1, 4)):
                buf[pos] = rng.integers(0, 256)
        try:
            d = metadata.MetadataDisplayer.with_model_buffer(bytes(buf))
            d.get_metadata_json()
            for name in d.get_packed_associated_file_list():
                d.get_associated_file_buffer(name)
            outcomes["ok"] += 1
        except ValueError:
            outcomes["ValueError"] += 1
    assert outcomes["ok"] and outcomes["ValueError"]


def test_external_buffer_models_are_refused_with_a_reason():
    from tflite_jit.format.reader import load_bytes
    from tflite_jit.format.writer import write_model

    ext = write_model(load_bytes(BASE), external_buffers=True)
    with pytest.raises(ValueError, match="stored after the flatbuffer"):
        packing.set_metadata_buffer(ext, _pack(_minimal()))


def test_schema_version():
    assert metadata.MetadataParser.VERSION == "1.5.0"


@pytest.mark.parametrize("table,attr,value,match", [
    ("AssociatedFileT", "type", 300, r"AssociatedFileT.type = 300 is not a valid i8 value"),
    ("StatsT", "max", ["a"], r"StatsT.max = \['a'\] is not a valid \[f32\] value"),
    ("StatsT", "min", 3.0, r"StatsT.min = 3.0 is not a valid \[f32\] value: a list of numbers"),
    ("BoundingBoxPropertiesT", "index", [-1], r"index = \[-1\] is not a valid \[u32\] value"),
])
def test_pack_checks_field_values(table, attr, value, match):
    obj = getattr(fb, table)()
    setattr(obj, attr, value)
    with pytest.raises(ValueError, match=match):
        obj.Pack(flatbuffers.Builder(0))


def test_bytes_are_accepted_for_byte_vectors():
    c = fb.CustomMetadataT()
    c.name, c.data = "blob", b"\x00\x07\xff"
    b = flatbuffers.Builder(0)
    b.Finish(c.Pack(b))
    back = fb.CustomMetadataT.InitFromPackedBuf(bytes(b.Output()))
    assert list(back.data) == [0, 7, 255]


def test_package_attributes_load_submodules_like_tflite_support():
    import tflite_jit.support as tflite_support

    assert tflite_support.metadata.MetadataPopulator is metadata.MetadataPopulator
    assert tflite_support.metadata_writers.image_classifier.INPUT_NAME == "image"
    assert tflite_support.schema_py_generated.TensorType.UINT8 == 3
    with pytest.raises(AttributeError):
        tflite_support.task_library_is_not_here  # noqa: B018
