"""The metadata golden cases, written once against the tflite_support API.

Each case gets a `lib` namespace holding `metadata`, `fb` (metadata_schema_py_generated) and the
`metadata_writers` modules of either tflite_support (make_goldens.py records what it produces)
or tflite_jit.support (tests/support/test_metadata_goldens.py checks we produce the same), and
returns (metadata JSON before populating or None, populated model bytes). Paths are relative to
this folder (the caller changes into it), so both sides see the same names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent


def model(name: str) -> bytes:
    return (HERE / "models" / f"{name}.tflite").read_bytes()


def _writer(w: Any) -> tuple[str, bytes]:
    return w.get_metadata_json(), bytes(w.populate())


def image_classifier_float(lib: SimpleNamespace) -> tuple[str, bytes]:
    return _writer(lib.image_classifier.MetadataWriter.create_for_inference(
        model("image_float"), [127.5], [127.5], ["files/labels.txt"]))


def image_classifier_uint8_calibrated(lib: SimpleNamespace) -> tuple[str, bytes]:
    cal = lib.metadata_info.ScoreCalibrationMd(
        lib.fb.ScoreTransformationType.LOG, 0.2, "files/calibration.csv")
    return _writer(lib.image_classifier.MetadataWriter.create_for_inference(
        model("image_uint8"), [0.0, 10.5, 127.0], [255.0, 128.0, 1.0],
        ["files/labels.txt", "files/labels_fr.txt"], score_calibration_md=cal))


def image_classifier_from_info(lib: SimpleNamespace) -> tuple[str, bytes]:
    mi = lib.metadata_info
    general = mi.GeneralMd(name="Tiny classifier", version="v2", description="Für Tests ✓",
                           author="tflite_jit", licenses="Apache-2.0")
    inp = mi.InputImageTensorMd(name="picture", description="An image.", norm_mean=[0.5, 0.5, 0.5],
                                norm_std=[0.25, 0.5, 2.0],
                                color_space_type=lib.fb.ColorSpaceType.GRAYSCALE,
                                tensor_type=0)
    out = mi.ClassificationTensorMd(
        name="classes", description="Class scores.",
        label_files=[mi.LabelFileMd("files/labels.txt", locale="en"),
                     mi.LabelFileMd("files/labels_fr.txt", locale="fr")], tensor_type=0)
    return _writer(lib.image_classifier.MetadataWriter.create_from_metadata_info(
        model("image_float"), general_md=general, input_md=inp, output_md=out))


def object_detector(lib: SimpleNamespace) -> tuple[str, bytes]:
    cal = lib.metadata_info.ScoreCalibrationMd(
        lib.fb.ScoreTransformationType.INVERSE_LOGISTIC, 0.0, "files/calibration.csv")
    return _writer(lib.object_detector.MetadataWriter.create_for_inference(
        model("detector"), [127.5], [127.5], ["files/labels.txt"], score_calibration_md=cal))


def object_detector_defaults(lib: SimpleNamespace) -> tuple[str, bytes]:
    return _writer(lib.object_detector.MetadataWriter.create_from_metadata_info(
        model("detector")))


def image_segmenter(lib: SimpleNamespace) -> tuple[str, bytes]:
    return _writer(lib.image_segmenter.MetadataWriter.create_for_inference(
        model("segmenter"), [127.5], [127.5], ["files/labels.txt"]))


def nl_classifier(lib: SimpleNamespace) -> tuple[str, bytes]:
    tok = lib.metadata_info.RegexTokenizerMd(r"[^\w\']+", "files/vocab.txt")
    return _writer(lib.nl_classifier.MetadataWriter.create_for_inference(
        model("text"), tok, ["files/sentiment.txt"]))


def bert_nl_classifier_wordpiece(lib: SimpleNamespace) -> tuple[str, bytes]:
    tok = lib.metadata_info.BertTokenizerMd("files/vocab.txt")
    return _writer(lib.bert_nl_classifier.MetadataWriter.create_for_inference(
        model("bert"), tok, ["files/sentiment.txt"]))


def bert_nl_classifier_sentencepiece(lib: SimpleNamespace) -> tuple[str, bytes]:
    tok = lib.metadata_info.SentencePieceTokenizerMd("files/sp.model", "files/vocab.txt")
    return _writer(lib.bert_nl_classifier.MetadataWriter.create_for_inference(
        model("bert"), tok, ["files/sentiment.txt"]))


def audio_classifier(lib: SimpleNamespace) -> tuple[str, bytes]:
    cal = lib.metadata_info.ScoreCalibrationMd(
        lib.fb.ScoreTransformationType.IDENTITY, 0.5, "files/calibration.csv")
    return _writer(lib.audio_classifier.MetadataWriter.create_for_inference(
        model("audio"), 16000, 1, ["files/sounds.txt"], score_calibration_md=cal))


def audio_classifier_two_heads(lib: SimpleNamespace) -> tuple[str, bytes]:
    mi = lib.metadata_info
    heads = [mi.ClassificationTensorMd(name="binary", label_files=[mi.LabelFileMd(
                 "files/binary.txt")], tensor_type=0, tensor_name="head_b"),
             mi.ClassificationTensorMd(name="sounds", label_files=[mi.LabelFileMd(
                 "files/sounds.txt")], tensor_type=0, tensor_name="head_a")]
    inp = mi.InputAudioTensorMd("wave", "Mono audio.", 44100, 2)
    return _writer(lib.audio_classifier.MetadataWriter.create_from_metadata_info_for_multihead(
        model("audio_two_heads"), input_md=inp, output_md_list=heads))


def _kitchen_sink(fb: Any) -> Any:
    """Every table and union member of the schema, odd floats and strings included."""
    af = fb.AssociatedFileT()
    af.name, af.description, af.type, af.locale = "dir/labels.txt", "", 2, "en"
    cal = fb.AssociatedFileT()
    cal.name, cal.type, cal.version = "calibration.csv", 4, "3"
    scann = fb.AssociatedFileT()
    scann.name, scann.type = "index.scann", 6
    t = fb.TensorMetadataT()
    t.name, t.description = "image", "quote \" backslash \\ tab \t newline \n é ✓ \U0001F600"
    t.dimensionNames = ["batch", "height", "width", "channel"]
    t.content = fb.ContentT()
    t.content.contentPropertiesType = fb.ContentProperties.ImageProperties
    t.content.contentProperties = fb.ImagePropertiesT()
    t.content.contentProperties.colorSpace = fb.ColorSpaceType.RGB
    t.content.contentProperties.defaultSize = fb.ImageSizeT()
    t.content.contentProperties.defaultSize.width = 224
    t.content.contentProperties.defaultSize.height = 0
    t.content.range = fb.ValueRangeT()
    t.content.range.min, t.content.range.max = -1, 3
    norm = fb.ProcessUnitT()
    norm.optionsType = fb.ProcessUnitOptions.NormalizationOptions
    norm.options = fb.NormalizationOptionsT()
    norm.options.mean = [127.5, 0.1, 1e-7, 123456789.0, -0.0, 1 / 3]
    norm.options.std = []
    t.processUnits = [norm]
    t.stats = fb.StatsT()
    t.stats.max, t.stats.min = [1.0, 3.4e38], [0.000001234, -5e-7]
    t.associatedFiles = [af, scann]
    o = fb.TensorMetadataT()
    o.name = "probs"
    o.content = fb.ContentT()
    o.content.contentPropertiesType = fb.ContentProperties.FeatureProperties
    o.content.contentProperties = fb.FeaturePropertiesT()
    cal_unit = fb.ProcessUnitT()
    cal_unit.optionsType = fb.ProcessUnitOptions.ScoreCalibrationOptions
    cal_unit.options = fb.ScoreCalibrationOptionsT()
    cal_unit.options.scoreTransformation = fb.ScoreTransformationType.INVERSE_LOGISTIC
    cal_unit.options.defaultScore = 0.25
    thr = fb.ProcessUnitT()
    thr.optionsType = fb.ProcessUnitOptions.ScoreThresholdingOptions
    thr.options = fb.ScoreThresholdingOptionsT()
    thr.options.globalScoreThreshold = 0.5
    o.processUnits = [cal_unit, thr]
    o.associatedFiles = [cal]
    sg = fb.SubGraphMetadataT()
    sg.name, sg.description = "main", "the only subgraph"
    sg.inputTensorMetadata, sg.outputTensorMetadata = [t], [o]
    group = fb.TensorGroupT()
    group.name, group.tensorNames = "group", ["probs"]
    sg.outputTensorGroups = [group]
    sg.inputTensorGroups = []
    vocab = fb.AssociatedFileT()
    vocab.name, vocab.type = "some/where/vocab.txt", fb.AssociatedFileType.VOCABULARY
    regex = fb.ProcessUnitT()
    regex.optionsType = fb.ProcessUnitOptions.RegexTokenizerOptions
    regex.options = fb.RegexTokenizerOptionsT()
    regex.options.delimRegexPattern, regex.options.vocabFile = r"\s+", [vocab]
    sg.inputProcessUnits = [regex]
    sg.outputProcessUnits = []
    custom = fb.CustomMetadataT()
    custom.name, custom.data = "blob", [0, 1, 2, 255]
    sg.customMetadata = [custom]
    desc = fb.AssociatedFileT()
    desc.name, desc.type = "README.md", fb.AssociatedFileType.DESCRIPTIONS
    sg.associatedFiles = [desc]
    m = fb.ModelMetadataT()
    m.name, m.description, m.version = "kitchen sink", "", "1"
    m.author, m.license = "tflite_jit", "Apache-2.0"
    m.subgraphMetadata = [sg]
    return m


_SINK_FILES = {"labels.txt": b"a\nb\n", "calibration.csv": b"1,1,0\n",
               "index.scann": b"\x00\x01", "vocab.txt": b"x\ny\n", "README.md": b"# hi\n"}


def _pack(lib: SimpleNamespace, m: Any) -> bytes:
    import flatbuffers

    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), lib.metadata.MetadataPopulator.METADATA_FILE_IDENTIFIER)
    return bytes(b.Output())


def populator_kitchen_sink(lib: SimpleNamespace) -> tuple[str, bytes]:
    meta = _pack(lib, _kitchen_sink(lib.fb))
    p = lib.metadata.MetadataPopulator.with_model_buffer(model("image_float"))
    p.load_metadata_buffer(meta)
    p.load_associated_file_buffers(_SINK_FILES)
    p.populate()
    return lib.metadata.convert_to_json(meta), bytes(p.get_model_buffer())


def populator_repopulate(lib: SimpleNamespace) -> tuple[str, bytes]:
    """Populating a populated model: the metadata is replaced, packed files are kept, new ones
    are appended."""
    _, first = image_classifier_float(lib)
    m = lib.fb.ModelMetadataT.InitFromObj(lib.fb.ModelMetadata.GetRootAsModelMetadata(
        lib.metadata.get_metadata_buffer(first), 0))
    m.name = "renamed"
    extra = lib.fb.AssociatedFileT()
    extra.name, extra.type = "extra.txt", lib.fb.AssociatedFileType.DESCRIPTIONS
    m.associatedFiles = [extra]
    meta = _pack(lib, m)
    p = lib.metadata.MetadataPopulator.with_model_buffer(first)
    p.load_metadata_buffer(meta)
    p.load_associated_file_buffers({"extra.txt": b"more\n"})
    p.populate()
    return lib.metadata.convert_to_json(meta), bytes(p.get_model_buffer())


def _min_version_case(edit: Callable[[Any, Any], None]) -> Callable[[SimpleNamespace],
                                                                      tuple[str, bytes]]:
    def case(lib: SimpleNamespace) -> tuple[str, bytes]:
        fb = lib.fb
        sg = fb.SubGraphMetadataT()
        sg.inputTensorMetadata = [fb.TensorMetadataT()]
        sg.outputTensorMetadata = [fb.TensorMetadataT()]
        m = fb.ModelMetadataT()
        m.subgraphMetadata = [sg]
        files = edit(fb, m) or {}
        meta = _pack(lib, m)
        p = lib.metadata.MetadataPopulator.with_model_buffer(model("image_float"))
        p.load_metadata_buffer(meta)
        p.load_associated_file_buffers(files)
        p.populate()
        return lib.metadata.convert_to_json(meta), bytes(p.get_model_buffer())
    return case


def _file(fb: Any, name: str, type_: int = 0, version: str | None = None) -> Any:
    f = fb.AssociatedFileT()
    f.name, f.type, f.version = name, type_, version
    return f


def _v_vocab(fb, m):
    m.subgraphMetadata[0].outputTensorMetadata[0].associatedFiles = [_file(fb, "v.txt", 5)]
    return {"v.txt": b"v"}


def _v_bert(fb, m):
    u = fb.ProcessUnitT()
    u.optionsType, u.options = fb.ProcessUnitOptions.BertTokenizerOptions, fb.BertTokenizerOptionsT()
    m.subgraphMetadata[0].inputTensorMetadata[0].processUnits = [u]


def _v_output_units(fb, m):
    m.subgraphMetadata[0].outputProcessUnits = []


def _v_groups(fb, m):
    m.subgraphMetadata[0].inputTensorGroups = []


def _v_audio(fb, m):
    c = fb.ContentT()
    c.contentPropertiesType, c.contentProperties = (fb.ContentProperties.AudioProperties,
                                                    fb.AudioPropertiesT())
    m.subgraphMetadata[0].inputTensorMetadata[0].content = c


def _v_scann(fb, m):
    m.associatedFiles = [_file(fb, "i.scann", 6)]
    return {"i.scann": b"i"}


def _v_file_version(fb, m):
    m.subgraphMetadata[0].associatedFiles = [_file(fb, "a.txt", 1, "")]
    return {"a.txt": b"a"}


def _v_custom(fb, m):
    m.subgraphMetadata[0].customMetadata = []


def _v_tokenizer_file_ignored(fb, m):
    """A vocabulary file inside a tokenizer does not raise the version (tflite_support's rule
    looks at the tokenizer type only)."""
    u = fb.ProcessUnitT()
    u.optionsType = fb.ProcessUnitOptions.SentencePieceTokenizerOptions
    u.options = fb.SentencePieceTokenizerOptionsT()
    u.options.sentencePieceModel = [_file(fb, "sp.model", 6, "9")]
    m.subgraphMetadata[0].inputProcessUnits = [u]
    return {"sp.model": b"s"}


CASES: dict[str, Callable[[SimpleNamespace], tuple[str | None, bytes]]] = {
    "image_classifier_float": image_classifier_float,
    "image_classifier_uint8_calibrated": image_classifier_uint8_calibrated,
    "image_classifier_from_info": image_classifier_from_info,
    "object_detector": object_detector,
    "object_detector_defaults": object_detector_defaults,
    "image_segmenter": image_segmenter,
    "nl_classifier": nl_classifier,
    "bert_nl_classifier_wordpiece": bert_nl_classifier_wordpiece,
    "bert_nl_classifier_sentencepiece": bert_nl_classifier_sentencepiece,
    "audio_classifier": audio_classifier,
    "audio_classifier_two_heads": audio_classifier_two_heads,
    "populator_kitchen_sink": populator_kitchen_sink,
    "populator_repopulate": populator_repopulate,
    "min_version_vocabulary": _min_version_case(_v_vocab),
    "min_version_bert_tokenizer": _min_version_case(_v_bert),
    "min_version_output_process_units": _min_version_case(_v_output_units),
    "min_version_tensor_groups": _min_version_case(_v_groups),
    "min_version_audio": _min_version_case(_v_audio),
    "min_version_scann": _min_version_case(_v_scann),
    "min_version_file_version": _min_version_case(_v_file_version),
    "min_version_custom_metadata": _min_version_case(_v_custom),
    "min_version_tokenizer_files_ignored": _min_version_case(_v_tokenizer_file_ignored),
}


_WRITERS = ("audio_classifier", "bert_nl_classifier", "image_classifier", "image_segmenter",
            "metadata_info", "nl_classifier", "object_detector")


def _lib(root: str) -> SimpleNamespace:
    # tflite_support's package re-exports these as attributes, not as submodules of its own
    pkg = importlib.import_module(root)
    for sub in ("metadata", "metadata_schema_py_generated", "metadata_writers"):
        if not hasattr(pkg, sub):
            importlib.import_module(f"{root}.{sub}")
    writers = pkg.metadata_writers
    return SimpleNamespace(metadata=pkg.metadata, fb=pkg.metadata_schema_py_generated,
                           **{w: getattr(writers, w) for w in _WRITERS})


def tflite_support_lib() -> SimpleNamespace:
    return _lib("tflite_support")


def tflite_jit_lib() -> SimpleNamespace:
    return _lib("tflite_jit.support")


def raw_odd_values(lib: SimpleNamespace) -> bytes:
    """A metadata buffer (no model) with what the writers never produce: an enum value without
    a name, non-finite and tiny floats, an empty table, a control character."""
    fb = lib.fb
    m = _kitchen_sink(fb)
    t = m.subgraphMetadata[0].inputTensorMetadata[0]
    t.associatedFiles[0].type = 7
    t.stats.max = [float("nan"), float("inf"), float("-inf"), float("-nan"), 1e-30, -2.5e-6]
    t.name = "ctrl \x01 \x7f"
    m.subgraphMetadata[0].outputTensorMetadata.append(fb.TensorMetadataT())
    return _pack(lib, m)


RAW_CASES: dict[str, Callable[[SimpleNamespace], bytes]] = {"raw_odd_values": raw_odd_values}
