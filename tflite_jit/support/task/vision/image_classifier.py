"""ImageClassifier: one ClassificationResult per image, one Classifications per output head."""

from __future__ import annotations

import dataclasses

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

    @property
    def options(self) -> ImageClassifierOptions:
        return self._options
