"""Metadata buffers <-> plain dicts, and the facts derived from them (minimum parser version,
associated file names).

A decoded metadata buffer is a dict of its present fields with the schema's snake_case names,
exactly as `format.flat.FlatReader.read_table` returns tables (unions carry `<name>_type` and
`<name>_table`; float/int vectors are numpy arrays). Encoding takes the same shape, so decode
followed by encode is the identity on the fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tflite_jit.format.flat import FlatReader
from tflite_jit.format.writer import write_root
from tflite_jit.support.metadata_schema_data import (
    ENUMS,
    FILE_IDENTIFIER,
    ROOT_TABLE,
    TABLES,
)

_SCALAR_KINDS = {"bool", "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "f32", "f64"}
_NOT_METADATA = ("The metadata buffer does not have the expected identifier, and may not be a "
                 "valid TFLite Metadata.")


def has_identifier(buf: Any) -> bool:
    return len(buf) >= 8 and bytes(buf[4:8]) == FILE_IDENTIFIER


def decode(buf: Any) -> dict[str, Any]:
    """Decode a metadata flatbuffer; ValueError naming the field for a damaged buffer."""
    if buf is None or len(buf) == 0:
        raise ValueError("The metadata buffer is empty.")
    if not has_identifier(buf):
        raise ValueError(_NOT_METADATA)
    r = FlatReader(bytes(buf), tables=TABLES, enums=ENUMS, subject="metadata")
    return r.read_table(r.root(), ROOT_TABLE, ROOT_TABLE)


def encode(meta: dict[str, Any]) -> bytes:
    """Serialize a metadata dict. Scalars equal to their default (0) are not written, as the
    flatbuffers Python builder that tflite_support packs with omits them (and flatc's JSON
    printer prints exactly the fields present, so this decides the JSON)."""
    return write_root(ROOT_TABLE, drop_defaults(ROOT_TABLE, meta),
                      file_identifier=FILE_IDENTIFIER, tables=TABLES)


def drop_defaults(table: str, values: dict[str, Any]) -> dict[str, Any]:
    """A copy of `values` without default-valued scalars and None fields, recursively."""
    out: dict[str, Any] = {}
    for f in TABLES[table]:
        name, kind, default = f
        v = values.get(name)
        if v is None:
            continue
        if kind in _SCALAR_KINDS:
            if v != default:
                out[name] = v
        elif kind.startswith("table:"):
            out[name] = drop_defaults(kind[6:], v)
        elif kind.startswith("union:"):
            sub = values.get(name + "_table")
            if sub is None:
                continue
            out[name] = drop_defaults(sub, v)
            out[name + "_table"] = sub
        elif kind.startswith("[table:"):
            out[name] = [drop_defaults(kind[7:-1], t) for t in v]
        else:
            out[name] = v
    return out


# ---- derived facts ---------------------------------------------------------------------------

def _version(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.split(".")]
    return (parts + [0, 0])[:3]  # type: ignore[return-value]


# When each schema member appeared (the schema's "Added in" notes; what tflite_support's
# metadata_version.cc checks, and only that).
_VOCABULARY, _SCANN = 5, 6
_FILE_TYPE_VERSIONS = {_VOCABULARY: "1.0.1", _SCANN: "1.4.0"}
_FILE_VERSION_FIELD = "1.4.1"
_UNIT_VERSIONS = {"BertTokenizerOptions": "1.1.0", "SentencePieceTokenizerOptions": "1.1.0",
                  "RegexTokenizerOptions": "1.2.1"}
_SUBGRAPH_FIELD_VERSIONS = {"input_process_units": "1.1.0", "output_process_units": "1.1.0",
                            "input_tensor_groups": "1.2.0", "output_tensor_groups": "1.2.0",
                            "custom_metadata": "1.5.0"}
_AUDIO_VERSION = "1.3.0"


def min_parser_version(meta: dict[str, Any]) -> str:
    """The oldest metadata parser that understands every member `meta` uses.

    Follows tflite_support's rule exactly, including what it does not look at (files inside
    tokenizer options, the content of tensor groups)."""
    found = {"1.0.0"}

    def files(lst: list[dict] | None) -> None:
        for f in lst or []:
            if f.get("type", 0) in _FILE_TYPE_VERSIONS:
                found.add(_FILE_TYPE_VERSIONS[f["type"]])
            if f.get("version") is not None:
                found.add(_FILE_VERSION_FIELD)

    def units(lst: list[dict] | None) -> None:
        for u in lst or []:
            if u.get("options_table") in _UNIT_VERSIONS:
                found.add(_UNIT_VERSIONS[u["options_table"]])

    for sg in meta.get("subgraph_metadata") or []:
        for t in (sg.get("input_tensor_metadata") or []) + (sg.get("output_tensor_metadata") or []):
            files(t.get("associated_files"))
            units(t.get("process_units"))
            content = t.get("content") or {}
            if content.get("content_properties_table") == "AudioProperties":
                found.add(_AUDIO_VERSION)
        files(sg.get("associated_files"))
        for field, version in _SUBGRAPH_FIELD_VERSIONS.items():
            if sg.get(field) is not None:
                found.add(version)
        units(sg.get("input_process_units"))
        units(sg.get("output_process_units"))
    files(meta.get("associated_files"))
    return ".".join(str(p) for p in max(_version(v) for v in found))


def associated_files(meta: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every AssociatedFile the metadata records, in tflite_support's order: the model's, then
    per subgraph its own, each input tensor's (and its tokenizers'), each output tensor's, then
    the subgraph's input and output process units' tokenizer files."""

    def tokenizer_files(units: list[dict] | None) -> Iterator[dict]:
        for u in units or []:
            opts = u.get("options") or {}
            if u.get("options_table") == "SentencePieceTokenizerOptions":
                yield from opts.get("sentencePiece_model") or []
            if u.get("options_table") in ("BertTokenizerOptions", "RegexTokenizerOptions",
                                          "SentencePieceTokenizerOptions"):
                yield from opts.get("vocab_file") or []

    yield from meta.get("associated_files") or []
    for sg in meta.get("subgraph_metadata") or []:
        yield from sg.get("associated_files") or []
        for t in (sg.get("input_tensor_metadata") or []) + (sg.get("output_tensor_metadata") or []):
            yield from t.get("associated_files") or []
            yield from tokenizer_files(t.get("process_units"))
        yield from tokenizer_files(sg.get("input_process_units"))
        yield from tokenizer_files(sg.get("output_process_units"))
