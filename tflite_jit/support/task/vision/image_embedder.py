"""ImageEmbedder: one feature vector per output tensor, optionally L2-normalized and quantized
to bytes as the Task Library does (float32 norm; round(value * 128) clamped to int8)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tflite_jit.support.task import engine, image_preprocessing
from tflite_jit.support.task.core.base_options import BaseOptions
from tflite_jit.support.task.processor.options import EmbeddingOptions
from tflite_jit.support.task.processor.results import (
    BoundingBox,
    Embedding,
    EmbeddingResult,
    FeatureVector,
)
from tflite_jit.support.task.vision.tensor_image import TensorImage


@dataclasses.dataclass
class ImageEmbedderOptions:
    base_options: BaseOptions
    embedding_options: EmbeddingOptions = dataclasses.field(default_factory=EmbeddingOptions)


def _check_output(model: engine.TaskModel, i: int) -> int:
    d = model.outputs[i]
    shape = tuple(int(v) for v in d["shape"])
    if len(shape) == 4:
        if shape[1] != 1 or shape[2] != 1:
            raise ValueError(f"Unexpected WxH sizes for output index {i}: got "
                             f"{shape[2]}x{shape[1]}, expected 1x1.")
    elif len(shape) != 2:
        raise ValueError(f"Unexpected number of dimensions for output index {i}: got "
                         f"{len(shape)}D, expected either 2D (BxN with B=1) or 4D (BxHxWxN with "
                         "B=1, W=1, H=1).")
    if shape[0] != 1:
        raise ValueError("The output array is expected to have a batch size of 1. Got "
                         f"{shape[0]} for output index {i}.")
    if np.dtype(d["dtype"]) not in (np.uint8, np.float32):
        raise ValueError(f"Type mismatch for output tensor {d['name']}. Requested one of these "
                         "types: kTfLiteUint8/kTfLiteFloat32.")
    return shape[-1]


def feature_vector(output: np.ndarray, detail: dict, dim: int,
                   options: EmbeddingOptions) -> FeatureVector:
    flat = np.asarray(output).reshape(-1)[:dim]
    if flat.dtype == np.uint8:
        scale, zero_point = detail["quantization"]
        values = (np.float32(scale) * (flat.astype(np.int32) - int(zero_point))
                  .astype(np.float32)).astype(np.float32)
    else:
        values = flat.astype(np.float32)
    if options.l2_normalize:
        sq = np.float32(0)
        for v in values:  # float32 accumulation, in order
            sq = np.float32(sq + v * v)
        if sq != 0:
            inv = np.float32(1.0) / np.float32(math.sqrt(float(sq)))
            values = (values * inv).astype(np.float32)
    if options.quantize:
        q = np.clip(np.floor(np.abs(values * np.float32(128)) + np.float32(0.5))
                    * np.sign(values), -128, 127).astype(np.int8)
        return FeatureVector(value=q.view(np.uint8).copy())
    return FeatureVector(value=values.astype(np.float64))


def cosine_similarity(u: FeatureVector, v: FeatureVector) -> float:
    a, b = np.asarray(u.value), np.asarray(v.value)
    if a.dtype == np.uint8 and b.dtype == np.uint8:
        a, b = a.view(np.int8), b.view(np.int8)
    elif (a.dtype == np.uint8) != (b.dtype == np.uint8):
        raise ValueError("Quantized and float feature vectors can't be compared.")
    if a.size != b.size:
        raise ValueError(f"Cannot compute cosine similarity on feature vectors of different "
                         f"sizes ({a.size} vs {b.size})")
    if a.size == 0:
        raise ValueError("Cannot compute cosine similarity on empty feature vectors")
    a, b = a.astype(np.float64), b.astype(np.float64)
    nu, nv = float(np.dot(a, a)), float(np.dot(b, b))
    if nu <= 0 or nv <= 0:
        raise ValueError("Cannot compute cosine similarity on feature vector with 0 norm")
    return float(np.dot(a, b)) / math.sqrt(nu * nv)


class ImageEmbedder:
    def __init__(self, options: ImageEmbedderOptions, model: engine.TaskModel) -> None:
        self._options = options
        self._model = model
        self._embedding_options = options.embedding_options or EmbeddingOptions()
        self._preprocessor = image_preprocessing.ImagePreprocessor(model)
        self._dims = [_check_output(model, i) for i in range(len(model.outputs))]

    @classmethod
    def create_from_file(cls, file_path: str) -> ImageEmbedder:
        return cls.create_from_options(ImageEmbedderOptions(BaseOptions(file_name=file_path)))

    @classmethod
    def create_from_options(cls, options: ImageEmbedderOptions) -> ImageEmbedder:
        return cls(options, engine.TaskModel(options.base_options))

    def embed(self, image: TensorImage,
              bounding_box: BoundingBox | None = None) -> EmbeddingResult:
        pixels = image_preprocessing.check_image(image)
        outputs = self._model.run([self._preprocessor.tensor(pixels, bounding_box)])
        return EmbeddingResult(embeddings=[
            Embedding(feature_vector=feature_vector(outputs[i], self._model.outputs[i], dim,
                                                    self._embedding_options), output_index=i)
            for i, dim in enumerate(self._dims)])

    def get_embedding_by_index(self, result: EmbeddingResult, output_index: int) -> Embedding:
        if output_index < 0 or output_index >= len(result.embeddings):
            raise ValueError("Output index is out of bound.")
        return result.embeddings[output_index]

    def cosine_similarity(self, u: FeatureVector, v: FeatureVector) -> float:
        return cosine_similarity(u, v)

    def get_embedding_dimension(self, output_index: int) -> int:
        return self._dims[output_index] if 0 <= output_index < len(self._dims) else -1

    @property
    def number_of_output_layers(self) -> int:
        return len(self._dims)

    @property
    def options(self) -> ImageEmbedderOptions:
        return self._options
