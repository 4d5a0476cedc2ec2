"""TFLite metadata schema facts: enums and table field layouts, as data.

Written from the public `metadata_schema.fbs` of tensorflow/tflite-support (schema version 1.5.0,
file identifier "M001"). The slot order *is* the file format and the declaration order is the
order flatc's JSON printer walks, so both must match the .fbs exactly. Kinds follow
`tflite_jit.format.schema_data`: scalar codes (i8 u8 i32 u32 f32 ...), "str", "[x]" vectors,
"table:T", "union:Enum" (preceded by its "<name>_type" u8 field). Every scalar default in this
schema is 0.

Why data and not flatc-generated code: the same bounds-checked decoder (`format.flat`) and generic
builder (`format.writer.write_root`) that read and write .tflite files read and write metadata,
so a damaged metadata buffer raises a ValueError naming the field instead of a struct.error, and
the JSON printer and the object API are driven by the same table instead of thousands of
generated lines.
"""

from __future__ import annotations

FILE_IDENTIFIER = b"M001"
SCHEMA_VERSION = "1.5.0"
ROOT_TABLE = "ModelMetadata"

# fmt: off
ENUMS: dict[str, tuple[tuple[str, int], ...]] = {
    "AssociatedFileType": (("UNKNOWN", 0), ("DESCRIPTIONS", 1), ("TENSOR_AXIS_LABELS", 2),
                           ("TENSOR_VALUE_LABELS", 3), ("TENSOR_AXIS_SCORE_CALIBRATION", 4),
                           ("VOCABULARY", 5), ("SCANN_INDEX_FILE", 6)),
    "ColorSpaceType": (("UNKNOWN", 0), ("RGB", 1), ("GRAYSCALE", 2)),
    "BoundingBoxType": (("UNKNOWN", 0), ("BOUNDARIES", 1), ("UPPER_LEFT", 2), ("CENTER", 3)),
    "CoordinateType": (("RATIO", 0), ("PIXEL", 1)),
    "ContentProperties": (("NONE", 0), ("FeatureProperties", 1), ("ImageProperties", 2),
                          ("BoundingBoxProperties", 3), ("AudioProperties", 4)),
    "ScoreTransformationType": (("IDENTITY", 0), ("LOG", 1), ("INVERSE_LOGISTIC", 2)),
    "ProcessUnitOptions": (("NONE", 0), ("NormalizationOptions", 1), ("ScoreCalibrationOptions", 2),
                           ("ScoreThresholdingOptions", 3), ("BertTokenizerOptions", 4),
                           ("SentencePieceTokenizerOptions", 5), ("RegexTokenizerOptions", 6)),
}

_FILES = "[table:AssociatedFile]"
_UNITS = "[table:ProcessUnit]"

TABLES: dict[str, tuple[tuple[str, str, object], ...]] = {
    "AssociatedFile": (("name", "str", None), ("description", "str", None), ("type", "i8", 0),
                       ("locale", "str", None), ("version", "str", None)),
    "FeatureProperties": (),
    "ImageSize": (("width", "u32", 0), ("height", "u32", 0)),
    "ImageProperties": (("color_space", "i8", 0), ("default_size", "table:ImageSize", None)),
    "AudioProperties": (("sample_rate", "u32", 0), ("channels", "u32", 0)),
    "BoundingBoxProperties": (("index", "[u32]", None), ("type", "i8", 0),
                              ("coordinate_type", "i8", 0)),
    "ValueRange": (("min", "i32", 0), ("max", "i32", 0)),
    "Content": (("content_properties_type", "u8", 0),
                ("content_properties", "union:ContentProperties", None),
                ("range", "table:ValueRange", None)),
    "NormalizationOptions": (("mean", "[f32]", None), ("std", "[f32]", None)),
    "ScoreCalibrationOptions": (("score_transformation", "i8", 0), ("default_score", "f32", 0.0)),
    "ScoreThresholdingOptions": (("global_score_threshold", "f32", 0.0),),
    "BertTokenizerOptions": (("vocab_file", _FILES, None),),
    "SentencePieceTokenizerOptions": (("sentencePiece_model", _FILES, None),
                                      ("vocab_file", _FILES, None)),
    "RegexTokenizerOptions": (("delim_regex_pattern", "str", None), ("vocab_file", _FILES, None)),
    "ProcessUnit": (("options_type", "u8", 0), ("options", "union:ProcessUnitOptions", None)),
    "Stats": (("max", "[f32]", None), ("min", "[f32]", None)),
    "TensorGroup": (("name", "str", None), ("tensor_names", "[str]", None)),
    "TensorMetadata": (("name", "str", None), ("description", "str", None),
                       ("dimension_names", "[str]", None), ("content", "table:Content", None),
                       ("process_units", _UNITS, None), ("stats", "table:Stats", None),
                       ("associated_files", _FILES, None)),
    "CustomMetadata": (("name", "str", None), ("data", "[u8]", None)),
    "SubGraphMetadata": (("name", "str", None), ("description", "str", None),
                         ("input_tensor_metadata", "[table:TensorMetadata]", None),
                         ("output_tensor_metadata", "[table:TensorMetadata]", None),
                         ("associated_files", _FILES, None),
                         ("input_process_units", _UNITS, None),
                         ("output_process_units", _UNITS, None),
                         ("input_tensor_groups", "[table:TensorGroup]", None),
                         ("output_tensor_groups", "[table:TensorGroup]", None),
                         ("custom_metadata", "[table:CustomMetadata]", None)),
    "ModelMetadata": (("name", "str", None), ("description", "str", None), ("version", "str", None),
                      ("subgraph_metadata", "[table:SubGraphMetadata]", None),
                      ("author", "str", None), ("license", "str", None),
                      ("associated_files", _FILES, None), ("min_parser_version", "str", None)),
}
# fmt: on

#: (table, scalar field) -> the enum whose member names the value (what flatc prints).
FIELD_ENUMS: dict[tuple[str, str], str] = {
    ("AssociatedFile", "type"): "AssociatedFileType",
    ("ImageProperties", "color_space"): "ColorSpaceType",
    ("BoundingBoxProperties", "type"): "BoundingBoxType",
    ("BoundingBoxProperties", "coordinate_type"): "CoordinateType",
    ("Content", "content_properties_type"): "ContentProperties",
    ("ScoreCalibrationOptions", "score_transformation"): "ScoreTransformationType",
    ("ProcessUnit", "options_type"): "ProcessUnitOptions",
}
