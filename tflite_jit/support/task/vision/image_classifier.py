"""ImageClassifier: one ClassificationResult per image, one Classifications per output head."""

from __future__ import annotations

import dataclasses

import numpy as np

from tflite_jit.support.task import classification, engine, image_preprocessing
from tflite_jit.support.task.core.base_options import BaseOptions
from tflite_jit.support.task.processor.options import ClassificationOptions
from tflite_jit.support.task.processor.results import BoundingBox, ClassificationResult
from tflite_jit.support.task.vision.tensor_image import TensorImage


@dataclasses.dataclass
class ImageClassifierOptions:
    base_options: BaseOptions
    classification_options: ClassificationOptions = dataclasses.field(
        default_factory=ClassificationOptions)


class ImageClassifier:
    """Classifies images with a model whose metadata describe its input and label its outputs."""

    def __init__(self, options: ImageClassifierOptions, model: engine.TaskModel) -> None:
        self._options = options
        self._model = model
        opts = options.classification_options or ClassificationOptions()
        classification.check_max_results(opts)
        self._classification_options = opts
        self._preprocessor = image_preprocessing.ImagePreprocessor(model)
        mds = model.output_metadata()
        n = len(model.outputs)
        if mds is not None and len(mds) != n:
            raise ValueError(f"Mismatch between number of output tensors ({n}) and output "
                             f"tensors metadata ({len(mds)}).")
        self._heads = [classification.ClassificationHead(
            model, i, mds[i] if mds else None, opts.display_names_locale) for i in range(n)]
        quantized = sum(h.dtype.kind == "u" for h in self._heads)
        if 0 < quantized < n:
            raise ValueError(f"Got {quantized} quantized output(s), expected {n} (i.e. all "
                             "provided outputs must be quantized).")
        self._filter = classification.ClassNameFilter(
            opts, [(h.name, h.labels) for h in self._heads], ("whitelist", "blacklist"))

    @classmethod
    def create_from_file(cls, file_path: str) -> ImageClassifier:
        return cls.create_from_options(ImageClassifierOptions(BaseOptions(file_name=file_path)))

    @classmethod
    def create_from_options(cls, options: ImageClassifierOptions) -> ImageClassifier:
        return cls(options, engine.TaskModel(options.base_options))

    def classify(self, image: TensorImage,
                 bounding_box: BoundingBox | None = None) -> ClassificationResult:
        pixels = image_preprocessing.check_image(image)
        outputs = self._model.run([self._preprocessor.tensor(pixels, bounding_box)])
        return ClassificationResult(classifications=[
            head.classify(outputs[i], self._classification_options, self._filter, i, "")
            for i, head in enumerate(self._heads)])

    def classify_batch(self, images: list[TensorImage],
                       bounding_boxes: list[BoundingBox | None] | None = None
                       ) -> list[ClassificationResult]:
        """Classify several images; one invoke when the model's batch dimension is dynamic
        (shape signature -1), else one per image. Not in tflite_support (its Task Library
        requires batch 1); each result equals `classify` on that image."""
        boxes = bounding_boxes if bounding_boxes is not None else [None] * len(images)
        if len(boxes) != len(images):
            raise ValueError(f"Got {len(boxes)} bounding boxes for {len(images)} images.")
        if not images:
            return []
        detail = self._model.inputs[0]
        sig = detail.get("shape_signature")
        if sig is None or len(sig) != 4 or int(sig[0]) != -1 or len(images) == 1:
            return [self.classify(im, b) for im, b in zip(images, boxes)]
        tensors = [self._preprocessor.tensor(image_preprocessing.check_image(im), b)
                   for im, b in zip(images, boxes)]
        batch = np.concatenate(tensors, axis=0)
        self._model.resize_input(0, batch.shape)
        try:
            outputs = self._model.run([batch])
        finally:
            self._model.resize_input(0, tensors[0].shape)
        return [ClassificationResult(classifications=[
            head.classify(outputs[i][k:k + 1], self._classification_options, self._filter, i, "")
            for i, head in enumerate(self._heads)]) for k in range(len(images))]

    @property
    def options(self) -> ImageClassifierOptions:
        return self._options
