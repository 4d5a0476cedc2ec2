"""Where metadata lives in a .tflite file, and the associated files zipped after it.

The metadata flatbuffer is the contents of the model buffer that the `Model.metadata` entry
named "TFLITE_METADATA" points at; associated files (labels, vocabularies) are an uncompressed
zip archive appended after the model's flatbuffer, which the flatbuffer ignores and zip readers
find from the end. The zip side uses the standard library's `zipfile`; the flatbuffer side the
project's bounds-checked reader and generic writer, so a damaged model raises a ValueError that
names what was being read.
"""

from __future__ import annotations

import io
import struct
import zipfile
from typing import Any

import numpy as np

from tflite_jit.format.flat import FlatReader
from tflite_jit.format.schema import FILE_IDENTIFIER as TFLITE_FILE_IDENTIFIER
from tflite_jit.format.schema_data import TABLES as TFLITE_TABLES
from tflite_jit.format.writer import write_root

METADATA_FIELD_NAME = "TFLITE_METADATA"
_NOT_TFLITE = ("The model provided does not have the expected identifier, and may not be a valid "
               "TFLite model.")
# Packed files get a fixed timestamp, so populating the same inputs gives the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, struct.error, ValueError, OSError,
               EOFError, NotImplementedError, UnicodeDecodeError)


def _sparse(keep: dict[str, set[str]]) -> dict[str, tuple]:
    """The TFLite tables reduced to the fields in `keep` (the others read as absent), so finding
    the metadata does not decode every operator of a large model."""
    return {t: tuple(f if f is not None and f[0] in names else None for f in TFLITE_TABLES[t])
            for t, names in keep.items()}


_SUMMARY_TABLES = _sparse({"Model": {"subgraphs", "buffers", "metadata"},
                           "SubGraph": {"inputs", "outputs"}, "Buffer": {"data", "offset", "size"},
                           "Metadata": {"name", "buffer"}})
_IO_TABLES = _sparse({"Model": {"subgraphs"}, "SubGraph": {"inputs", "outputs", "tensors"},
                      "Tensor": {"name", "type", "shape"}})


def has_model_identifier(buf: Any) -> bool:
    return buf is not None and len(buf) >= 8 and bytes(buf[4:8]) == TFLITE_FILE_IDENTIFIER


def assert_model_identifier(buf: Any) -> None:
    if not has_model_identifier(buf):
        raise ValueError(_NOT_TFLITE)


def model_summary(model_buf: Any) -> dict[str, Any]:
    """The model's subgraph inputs/outputs, buffers and metadata entries (nothing else)."""
    assert_model_identifier(model_buf)
    r = FlatReader(model_buf, tables=_SUMMARY_TABLES)
    return r.read_table(r.root(), "Model", "Model")


def io_counts(model_buf: Any) -> tuple[int, int]:
    """Number of inputs and outputs of the model's first subgraph."""
    subgraphs = model_summary(model_buf).get("subgraphs") or []
    if not subgraphs:
        raise ValueError("The model has no subgraph, so it has no input or output tensors to "
                         "describe.")
    sg = subgraphs[0]
    return len(sg.get("inputs", ())), len(sg.get("outputs", ()))


def io_tensors(model_buf: Any) -> tuple[list[dict], list[dict]]:
    """The first subgraph's input and output tensors, each {"index", "name", "type", "shape"}
    (type is the TensorType code), in the subgraph's order."""
    assert_model_identifier(model_buf)
    r = FlatReader(model_buf, tables=_IO_TABLES)
    subgraphs = r.read_table(r.root(), "Model", "Model").get("subgraphs") or []
    if not subgraphs:
        raise ValueError("The model has no subgraph, so it has no input or output tensors to "
                         "describe.")
    sg = subgraphs[0]
    tensors = sg.get("tensors") or []

    def one(kind: str) -> list[dict]:
        out = []
        for i, idx in enumerate(sg.get(kind, ())):
            idx = int(idx)
            if not 0 <= idx < len(tensors):
                raise ValueError(f"Model.subgraphs[0].{kind}[{i}] names tensor {idx}, but the "
                                 f"subgraph has {len(tensors)} tensors")
            t = tensors[idx]
            shape = t.get("shape")
            out.append({"index": idx, "name": t.get("name", ""), "type": int(t.get("type", 0)),
                        "shape": np.zeros(0, np.int32) if shape is None else shape})
        return out

    return one("inputs"), one("outputs")


def _buffer_data(model_buf: Any, buffers: list[dict], idx: int, what: str) -> bytes:
    if not 0 <= idx < len(buffers):
        raise ValueError(f"{what} points at buffer {idx}, but the model has {len(buffers)} "
                         "buffers")
    b = buffers[idx]
    if b.get("data") is not None:
        return b["data"].tobytes()
    off, size = int(b.get("offset", 0)), int(b.get("size", 0))
    if off > 1 and size:
        if off + size > len(model_buf):
            raise ValueError(f"{what}: buffer {idx} (offset {off}, size {size}) lies outside the "
                             f"{len(model_buf)}-byte model")
        return bytes(memoryview(model_buf)[off:off + size])
    return b""


def get_metadata_buffer(model_buf: Any, name: str = METADATA_FIELD_NAME) -> bytes | None:
    """The contents of the metadata entry `name`, or None when the model has none."""
    raw = model_summary(model_buf)
    for i, m in enumerate(raw.get("metadata") or []):
        if m.get("name") == name:
            return _buffer_data(model_buf, raw.get("buffers") or [], int(m.get("buffer", 0)),
                                f"Model.metadata[{i}] ('{name}')")
    return None


def set_metadata_buffer(model_buf: Any, data: bytes, name: str = METADATA_FIELD_NAME) -> bytes:
    """The model's flatbuffer rewritten with metadata entry `name` holding `data` (replacing an
    existing entry's buffer, else appending a buffer and an entry, as tflite_support does).

    Only the flatbuffer is returned: packed files after it are the caller's business."""
    assert_model_identifier(model_buf)
    r = FlatReader(model_buf)
    raw = r.read_table(r.root(), "Model", "Model")
    buffers = list(raw.get("buffers") or [])
    for i, b in enumerate(buffers):
        if b.get("data") is None and int(b.get("offset", 0)) > 1:
            raise ValueError(f"Model.buffers[{i}] is stored after the flatbuffer (offset/size, "
                             "the layout of models over 2 GiB); adding metadata would move it. "
                             "Add the metadata before the model is saved in that layout.")
    entry = {"data": np.frombuffer(data, np.uint8)}
    metadata = [dict(m) for m in raw.get("metadata") or []]
    found = [m for m in metadata if m.get("name") == name]
    for m in found:
        idx = int(m.get("buffer", 0))
        if not 0 <= idx < len(buffers):
            raise ValueError(f"metadata '{name}' points at buffer {idx}, but the model has "
                             f"{len(buffers)} buffers")
        buffers[idx] = entry
    if not found:
        buffers.append(entry)
        metadata.append({"name": name, "buffer": len(buffers) - 1})
    raw["buffers"], raw["metadata"] = buffers, metadata
    return write_root("Model", raw, file_identifier=TFLITE_FILE_IDENTIFIER)


# ---- the zip after the model -----------------------------------------------------------------

def packed_file_names(model_buf: Any) -> list[str]:
    """Names of the files zipped after the model ([] when there is no archive)."""
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(model_buf))) as zf:
            return zf.namelist()
    except zipfile.BadZipFile:
        return []
    except _ZIP_ERRORS as e:
        raise ValueError(f"The associated files zipped after the model are damaged: {e}") from e


def check_stored(model_buf: Any) -> None:
    """ValueError naming the first packed file that is compressed: TFLite's metadata extractor
    (and so every Task Library runtime) reads packed files in place and refuses compressed ones
    ("Expected uncompressed zip archive")."""
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(model_buf))) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile:
        return
    except _ZIP_ERRORS as e:
        raise ValueError(f"The associated files zipped after the model are damaged: {e}") from e
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(
                f"Associated file '{info.filename}' is packed compressed (zip method "
                f"{info.compress_type}); TFLite reads packed files uncompressed only. Pack it "
                "again with MetadataPopulator (which stores files uncompressed).")


def read_packed_file(model_buf: Any, name: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(model_buf))) as zf:
            return zf.read(name)
    except KeyError:
        raise ValueError(f"The file, {name}, does not exist in the model.") from None
    except _ZIP_ERRORS as e:
        raise ValueError(f"Associated file '{name}' cannot be read from the model: {e}") from e


def read_packed_files(model_buf: Any) -> dict[str, bytes]:
    return {n: read_packed_file(model_buf, n) for n in packed_file_names(model_buf)}


def append_files(model_buf: bytes, files: dict[str, bytes]) -> bytes:
    """`model_buf` with `files` zipped (uncompressed) after it; an archive already there gets
    the new entries, as zipfile's append mode gives tflite_support."""
    out = io.BytesIO(model_buf)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = 0o600 << 16  # what zipfile.writestr(name, ...) gives
            zf.writestr(info, bytes(data), compress_type=zipfile.ZIP_STORED)
    return out.getvalue()
