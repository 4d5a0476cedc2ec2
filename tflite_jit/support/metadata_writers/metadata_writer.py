"""The writer every model-type writer builds on: metadata objects in, populated model out."""

from __future__ import annotations

import collections
from typing import Any

import flatbuffers

from tflite_jit.support import metadata as _metadata
from tflite_jit.support import metadata_objects as fb
from tflite_jit.support import packing
from tflite_jit.support.metadata_writers import metadata_info, writer_utils


def pack_metadata(model_metadata: Any) -> bytes:
    """A `ModelMetadataT` as a metadata buffer (identifier M001)."""
    b = flatbuffers.Builder(0)
    b.Finish(model_metadata.Pack(b), _metadata.MetadataPopulator.METADATA_FILE_IDENTIFIER)
    return bytes(b.Output())


class MetadataWriter:
    """Holds a model, its metadata buffer and the paths of the files to pack with it."""

    def __init__(self, model_buffer: Any, metadata_buffer: Any = None,
                 associated_files: list[str] | None = None):
        self._model_buffer = model_buffer
        self._metadata_buffer = metadata_buffer
        self._associated_files = associated_files if associated_files else []
        self._populated_model_buffer: bytes | None = None

    @classmethod
    def create_from_metadata_info(cls, model_buffer: Any,
                                  general_md: metadata_info.GeneralMd | None = None,
                                  input_md: list[metadata_info.TensorMd] | None = None,
                                  output_md: list[metadata_info.TensorMd] | None = None,
                                  associated_files: list[str] | None = None) -> MetadataWriter:
        """Metadata from `metadata_info` containers; tensor metadata that name their model
        tensor (`tensor_name`) are put in the model's tensor order."""
        general_md = general_md or metadata_info.GeneralMd()
        input_md = _order_tensor_metadata(input_md or [],
                                          writer_utils.get_input_tensor_names(model_buffer))
        output_md = _order_tensor_metadata(output_md or [],
                                           writer_utils.get_output_tensor_names(model_buffer))
        return cls.create_from_metadata(
            model_buffer, general_md.create_metadata(), [m.create_metadata() for m in input_md],
            [m.create_metadata() for m in output_md], associated_files)

    @classmethod
    def create_from_metadata(cls, model_buffer: Any, model_metadata: Any = None,
                             input_metadata: list[Any] | None = None,
                             output_metadata: list[Any] | None = None,
                             associated_files: list[str] | None = None,
                             input_process_units: list[Any] | None = None,
                             output_process_units: list[Any] | None = None) -> MetadataWriter:
        """Metadata from the object API; missing tensor metadata become empty ones (so the
        populator's tensor count check passes) and unnamed ones take the model tensor's name."""
        inputs, outputs = packing.io_tensors(model_buffer)
        if not input_metadata:
            input_metadata = [fb.TensorMetadataT() for _ in inputs]
        if not output_metadata:
            output_metadata = [fb.TensorMetadataT() for _ in outputs]
        for md, t in zip(input_metadata, inputs):
            md.name = md.name or t["name"]
        for md, t in zip(output_metadata, outputs):
            md.name = md.name or t["name"]
        subgraph = fb.SubGraphMetadataT()
        subgraph.inputTensorMetadata = input_metadata
        subgraph.outputTensorMetadata = output_metadata
        subgraph.inputProcessUnits = input_process_units
        subgraph.outputProcessUnits = output_process_units
        if model_metadata is None:
            model_metadata = fb.ModelMetadataT()
        model_metadata.subgraphMetadata = [subgraph]
        return cls(model_buffer, pack_metadata(model_metadata), associated_files)

    def populate(self) -> bytes:
        """The model with the metadata and associated files packed (computed once)."""
        if self._populated_model_buffer:
            return self._populated_model_buffer
        populator = _metadata.MetadataPopulator.with_model_buffer(self._model_buffer)
        if self._model_buffer is not None:
            populator.load_metadata_buffer(self._metadata_buffer)
        if self._associated_files:
            populator.load_associated_files(self._associated_files)
        populator.populate()
        self._populated_model_buffer = populator.get_model_buffer()
        return self._populated_model_buffer

    def get_metadata_json(self) -> str:
        """The metadata as written, before populating adds min_parser_version and reduces file
        paths to base names."""
        return _metadata.convert_to_json(bytes(self._metadata_buffer))

    def get_populated_metadata_json(self) -> str:
        """The metadata as it is in the populated model."""
        return _metadata.MetadataDisplayer.with_model_buffer(self.populate()).get_metadata_json()


def _order_tensor_metadata(tensor_md: list[metadata_info.TensorMd],
                           names_in_model: list[str]) -> list[metadata_info.TensorMd]:
    names = [md.tensor_name for md in tensor_md if md.tensor_name is not None]
    if not names:
        return tensor_md
    if collections.Counter(names) != collections.Counter(names_in_model):
        raise ValueError(f"The tensor names from arguments ({names}) do not match the tensor "
                         f"names read from the model ({names_in_model}).")
    by_name = dict(zip(names, tensor_md))
    return [by_name[n] for n in names_in_model]
