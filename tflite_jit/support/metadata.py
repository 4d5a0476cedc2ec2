"""TFLite metadata tools: the API of `tflite_support.metadata`, without tflite_support.

`MetadataPopulator` packs a metadata buffer and associated files into a model;
`MetadataDisplayer` reads them back (`get_metadata_json` prints the same JSON as
tflite_support); `get_metadata_buffer` and `convert_to_json` are the module functions. Errors
are tflite_support's (ValueError for bad buffers, IOError for missing files), and a damaged
metadata buffer or zip archive raises a ValueError naming what was being read instead of
crashing or printing garbage.
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import Any

from tflite_jit.support import metadata_codec, packing
from tflite_jit.support.metadata_json import convert_to_json, to_json
from tflite_jit.support.metadata_schema_data import FILE_IDENTIFIER, SCHEMA_VERSION

__all__ = ["MetadataDisplayer", "MetadataParser", "MetadataPopulator", "MissingFileError",
           "convert_to_json", "get_metadata_buffer"]


class MissingFileError(FileNotFoundError, ValueError):
    """A file the caller named does not exist: an IOError, as tflite_support raises, and a
    ValueError, as every other bad input here raises."""


class MetadataParser:
    """The metadata schema version this library reads and writes."""

    VERSION = SCHEMA_VERSION


def get_metadata_buffer(model_buf: Any) -> bytes | None:
    """The metadata buffer of a model, or None when the model has none."""
    packing.assert_model_identifier(model_buf)
    return packing.get_metadata_buffer(model_buf)


def _read_file(path: Any) -> bytes:
    if hasattr(path, "read"):
        return path.read()
    _assert_file_exist(path)
    with open(path, "rb") as f:
        return f.read()


def _assert_file_exist(path: Any) -> None:
    if not os.path.exists(path):
        raise MissingFileError(f"File, '{path}', does not exist.")


class MetadataPopulator:
    """Packs a metadata buffer and associated files into a model file or buffer.

    `with_model_file` updates the file in place on `populate()`; `with_model_buffer` keeps the
    model in memory (`get_model_buffer()`). Loading metadata checks it against the model (one
    subgraph metadata, as many tensor metadata as the subgraph has inputs and outputs), stamps
    `min_parser_version` and keeps only the base name of every associated file, as
    tflite_support does. Packed files are stored uncompressed.
    """

    METADATA_FIELD_NAME = packing.METADATA_FIELD_NAME
    TFLITE_FILE_IDENTIFIER = packing.TFLITE_FILE_IDENTIFIER
    METADATA_FILE_IDENTIFIER = FILE_IDENTIFIER

    def __init__(self, model_file: Any = None, *, model_buf: Any = None):
        if model_file is not None:
            model_buf = _read_file(model_file)
        packing.assert_model_identifier(model_buf)
        self._model_file = model_file
        self._model_buf = bytes(model_buf)
        self._metadata_buf: bytes | None = None
        self._associated_files: dict[str, bytes] = {}

    @classmethod
    def with_model_file(cls, model_file: str | os.PathLike) -> MetadataPopulator:
        return cls(model_file)

    @classmethod
    def with_model_buffer(cls, model_buf: Any) -> MetadataPopulator:
        if not model_buf:
            raise ValueError("model_buf cannot be empty.")
        return cls(model_buf=model_buf)

    def get_model_buffer(self) -> bytes:
        """The model with the packed metadata and associated files."""
        return self._model_buf

    def get_packed_associated_file_list(self) -> list[str]:
        return packing.packed_file_names(self._model_buf)

    def get_recorded_associated_file_list(self) -> list[str]:
        """Names of the files the loaded metadata records (model, subgraph, tensors,
        tokenizers)."""
        if not self._metadata_buf:
            return []
        meta = metadata_codec.decode(self._metadata_buf)
        return [f.get("name", "") for f in metadata_codec.associated_files(meta)]

    def load_associated_file_buffers(self, associated_files: dict[str, Any]) -> None:
        """Files to pack, as {name: contents}; a path as the name packs under its base name."""
        self._associated_files.update(
            {os.path.basename(name): buf.encode("utf-8") if isinstance(buf, str) else bytes(buf)
             for name, buf in associated_files.items()})

    def load_associated_files(self, associated_files: list[str]) -> None:
        for path in associated_files:
            _assert_file_exist(path)
            with open(path, "rb") as f:
                self.load_associated_file_buffers({path: f.read()})

    def load_metadata_buffer(self, metadata_buf: Any) -> None:
        if not metadata_buf:
            raise ValueError("The metadata to be populated is empty.")
        meta = metadata_codec.decode(bytes(metadata_buf))
        self._validate_metadata(meta)
        meta["min_parser_version"] = metadata_codec.min_parser_version(meta)
        for f in metadata_codec.associated_files(meta):
            if f.get("name") is not None:
                f["name"] = os.path.basename(f["name"])
        self._metadata_buf = metadata_codec.encode(meta)

    def load_metadata_file(self, metadata_file: str | os.PathLike) -> None:
        _assert_file_exist(metadata_file)
        with open(metadata_file, "rb") as f:
            self.load_metadata_buffer(f.read())

    def load_metadata_and_associated_files(self, src_model_buf: Any) -> None:
        """Take the metadata and packed files of another model."""
        metadata_buf = get_metadata_buffer(src_model_buf)
        if metadata_buf:
            self.load_metadata_buffer(metadata_buf)
        self.load_associated_file_buffers(packing.read_packed_files(src_model_buf))

    def populate(self) -> None:
        """Write the loaded metadata and files into the model (and its file, if any)."""
        self._assert_validate()
        if self._metadata_buf is None:  # the archive after the model just grows
            self._model_buf = packing.append_files(self._model_buf, self._associated_files)
        else:  # a new flatbuffer: files packed earlier move behind it, then the new ones
            packed = packing.read_packed_files(self._model_buf)
            model = packing.set_metadata_buffer(self._model_buf, self._metadata_buf)
            self._model_buf = packing.append_files(model, {**packed, **self._associated_files})
        if self._model_file is not None and not hasattr(self._model_file, "read"):
            with open(self._model_file, "wb") as f:
                f.write(self._model_buf)

    # -- checks --------------------------------------------------------------------------------
    def _assert_validate(self) -> None:
        recorded = self.get_recorded_associated_file_list()
        packed = self.get_packed_associated_file_list()
        for name in recorded:
            if name not in self._associated_files and name not in packed:
                raise ValueError(f"File, '{name}', is recorded in the metadata, but has not been "
                                 "loaded into the populator.")
        for name in self._associated_files:
            if name in packed:
                raise ValueError(f"File, '{name}', has already been packed.")
            if name not in recorded:
                warnings.warn(f"File, '{name}', does not exist in the metadata. But packing it to "
                              "tflite model is still allowed.", stacklevel=2)

    def _validate_metadata(self, meta: dict[str, Any]) -> None:
        subgraphs = meta.get("subgraph_metadata") or []
        if len(subgraphs) != 1:
            raise ValueError("The number of SubgraphMetadata should be exactly one, but got "
                             f"{len(subgraphs)}.")
        n_in, n_out = packing.io_counts(self._model_buf)
        n_in_meta = len(subgraphs[0].get("input_tensor_metadata") or [])
        if n_in != n_in_meta:
            raise ValueError(f"The number of input tensors ({n_in}) should match the number of "
                             f"input tensor metadata ({n_in_meta})")
        n_out_meta = len(subgraphs[0].get("output_tensor_metadata") or [])
        if n_out != n_out_meta:
            raise ValueError(f"The number of output tensors ({n_out}) should match the number of "
                             f"output tensor metadata ({n_out_meta})")


class MetadataDisplayer:
    """Reads the metadata and packed files of a model.

    Construction checks the whole metadata buffer and that packed files are stored uncompressed
    (what TFLite's runtimes require), so a malformed model fails here with a ValueError naming
    the field or file rather than later.
    """

    def __init__(self, model_buffer: Any, metadata_buffer: Any, associated_file_list: list[str]):
        packing.assert_model_identifier(model_buffer)
        if not metadata_codec.has_identifier(metadata_buffer):
            raise ValueError("The metadata buffer does not have the expected identifier, and may "
                             "not be a valid TFLite Metadata.")
        self._model_buffer = bytes(model_buffer)
        self._metadata_buffer = bytes(metadata_buffer)
        self._metadata = metadata_codec.decode(self._metadata_buffer)
        self._associated_file_list = list(associated_file_list)

    @classmethod
    def with_model_file(cls, model_file: str | os.PathLike) -> MetadataDisplayer:
        _assert_file_exist(model_file)
        with open(model_file, "rb") as f:
            return cls.with_model_buffer(f.read())

    @classmethod
    def with_model_buffer(cls, model_buffer: Any) -> MetadataDisplayer:
        if not model_buffer:
            raise ValueError("model_buffer cannot be empty.")
        metadata_buffer = get_metadata_buffer(model_buffer)
        if not metadata_buffer:
            raise ValueError("The model does not have metadata.")
        packing.check_stored(model_buffer)
        return cls(model_buffer, metadata_buffer, packing.packed_file_names(model_buffer))

    def get_associated_file_buffer(self, filename: str) -> bytes:
        if filename not in self._associated_file_list:
            raise ValueError(f"The file, {filename}, does not exist in the model.")
        return packing.read_packed_file(self._model_buffer, filename)

    def get_metadata_buffer(self) -> bytes:
        return self._metadata_buffer

    def get_metadata_json(self) -> str:
        return to_json(self._metadata)

    def get_packed_associated_file_list(self) -> list[str]:
        return copy.copy(self._associated_file_list)

    def get_metadata(self) -> dict[str, Any]:
        """The metadata as a dict of its present fields (schema field names); a copy."""
        return copy.deepcopy(self._metadata)
