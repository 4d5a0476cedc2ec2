"""Helpers the metadata writers share: tensor facts of the model's first subgraph, file I/O."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tflite_jit.support import metadata_objects as fb
from tflite_jit.support import packing


def compute_flat_size(tensor_shape: Any) -> int:
    """Number of elements of a shape; 0 for None or an empty shape."""
    if tensor_shape is None or len(tensor_shape) == 0:
        return 0
    return int(math.prod(int(d) for d in tensor_shape))


def get_input_tensor_names(model_buffer: Any) -> list[str]:
    return [t["name"] for t in packing.io_tensors(model_buffer)[0]]


def get_output_tensor_names(model_buffer: Any) -> list[str]:
    return [t["name"] for t in packing.io_tensors(model_buffer)[1]]


def get_input_tensor_types(model_buffer: Any) -> list[int]:
    """TensorType codes of the inputs (`schema_py_generated.TensorType` names them)."""
    return [t["type"] for t in packing.io_tensors(model_buffer)[0]]


def get_output_tensor_types(model_buffer: Any) -> list[int]:
    return [t["type"] for t in packing.io_tensors(model_buffer)[1]]


def get_input_tensor_shape(model_buffer: Any, tensor_index: int) -> np.ndarray:
    inputs = packing.io_tensors(model_buffer)[0]
    if not 0 <= tensor_index < len(inputs):
        raise ValueError(f"input tensor {tensor_index} does not exist; the model has "
                         f"{len(inputs)} inputs")
    return inputs[tensor_index]["shape"]


def get_output_tensor_indices(model_buffer: Any) -> list[int]:
    """Tensor ids of the outputs, in the subgraph's order."""
    return [t["index"] for t in packing.io_tensors(model_buffer)[1]]


def load_file(file_path: str, mode: str = "rb") -> str | bytes:
    with open(file_path, mode) as f:
        return f.read()


def save_file(file_bytes: bytes | bytearray | str, save_to_path: str, mode: str = "wb") -> None:
    with open(save_to_path, mode) as f:
        f.write(file_bytes)


def get_tokenizer_associated_files(tokenizer_options: Any) -> list[Any]:
    """Names of the files a tokenizer options object records (vocabulary first, then the
    sentencepiece model)."""
    if not tokenizer_options:
        return []

    def names(files: Any) -> list[Any]:
        return [f.name for f in files or []]

    if isinstance(tokenizer_options, (fb.BertTokenizerOptionsT, fb.RegexTokenizerOptionsT)):
        return names(tokenizer_options.vocabFile)
    if isinstance(tokenizer_options, fb.SentencePieceTokenizerOptionsT):
        return names(tokenizer_options.vocabFile) + names(tokenizer_options.sentencePieceModel)
    return []


def first_input_type(model_buffer: Any) -> int:
    """TensorType code of the first input; ValueError when the model has none."""
    types = get_input_tensor_types(model_buffer)
    if not types:
        raise ValueError("The model has no input tensor to describe.")
    return types[0]


def first_output_type(model_buffer: Any) -> int:
    """TensorType code of the first output; ValueError when the model has none."""
    types = get_output_tensor_types(model_buffer)
    if not types:
        raise ValueError("The model has no output tensor to describe.")
    return types[0]
