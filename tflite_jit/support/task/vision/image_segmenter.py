"""ImageSegmenter: a per-pixel class mask (or per-class confidence masks) at the output size."""

from __future__ import annotations

import dataclasses

import numpy as np

from tflite_jit.support import metadata_schema_py_generated as fb
from tflite_jit.support.task import engine, image_preprocessing, labels
from tflite_jit.support.task.core.base_options import BaseOptions
from tflite_jit.support.task.processor.options import OutputType, SegmentationOptions
from tflite_jit.support.task.processor.results import (
    ColoredLabel,
    ConfidenceMask,
    Segmentation,
    SegmentationResult,
)
from tflite_jit.support.task.vision.tensor_image import TensorImage

MAX_CLASSES = 256


def label_color(i: int) -> tuple[int, int, int]:
    """The Pascal VOC palette the Task Library colours labels with: the bits of the index,
    three at a time, fill each channel from its most significant bit down."""
    r = g = b = 0
    for k in range(8):
        r |= ((i >> (3 * k)) & 1) << (7 - k)
        g |= ((i >> (3 * k + 1)) & 1) << (7 - k)
        b |= ((i >> (3 * k + 2)) & 1) << (7 - k)
    return r, g, b


@dataclasses.dataclass
class ImageSegmenterOptions:
    base_options: BaseOptions
    segmentation_options: SegmentationOptions = dataclasses.field(
        default_factory=SegmentationOptions)


class ImageSegmenter:
    def __init__(self, options: ImageSegmenterOptions, model: engine.TaskModel) -> None:
        self._options = options
        self._model = model
        opts = options.segmentation_options or SegmentationOptions()
        self._output_type = opts.output_type or OutputType.CATEGORY_MASK
        if self._output_type == OutputType.UNSPECIFIED:
            raise ValueError("ImageSegmenterOptions: `output_type` must not be UNSPECIFIED.")
        self._preprocessor = image_preprocessing.ImagePreprocessor(model)
        if len(model.outputs) != 1:
            raise ValueError("Image segmentation models are expected to have only 1 output, "
                             f"found {len(model.outputs)}")
        detail = model.outputs[0]
        shape = tuple(int(d) for d in detail["shape"])
        if len(shape) != 4:
            raise ValueError(f"Output tensor is expected to have 4 dimensions, found {len(shape)}.")
        if shape[0] != 1:
            raise ValueError(f"Expected batch size of 1, found {shape[0]}.")
        _, self._height, self._width, self._depth = shape
        if self._depth > MAX_CLASSES:
            raise ValueError(f"Expected at most {MAX_CLASSES} output classes, found {self._depth}")
        self._dtype = np.dtype(detail["dtype"])
        if self._dtype not in (np.float32, np.uint8):
            raise ValueError("Type mismatch for output tensor. Requested one of these types: "
                             f"kTfLiteUint8/kTfLiteFloat32, got {str(self._dtype).upper()}.")
        scale, zero_point = detail["quantization"]
        self._scale, self._zero_point = np.float32(scale), int(zero_point)
        mds = model.output_metadata()
        items: list[labels.LabelItem] = []
        if mds is not None:
            if len(mds) != 1:
                raise ValueError("Mismatch between number of output tensors (1) and output "
                                 f"tensors metadata ({len(mds)}).")
            items = labels.label_map(model, mds[0], fb.AssociatedFileType.TENSOR_AXIS_LABELS,
                                     opts.display_names_locale)
        if not items:
            items = [labels.LabelItem() for _ in range(self._depth)]
        if len(items) > MAX_CLASSES:
            raise ValueError(f"Expected at most {MAX_CLASSES} labels, found {len(items)}.")
        self._colored = [ColoredLabel(color=label_color(i), category_name=it.name,
                                      display_name=it.display_name) for i, it in enumerate(items)]

    @classmethod
    def create_from_file(cls, file_path: str) -> ImageSegmenter:
        return cls.create_from_options(ImageSegmenterOptions(BaseOptions(file_name=file_path)))

    @classmethod
    def create_from_options(cls, options: ImageSegmenterOptions) -> ImageSegmenter:
        return cls(options, engine.TaskModel(options.base_options))

    def segment(self, image: TensorImage) -> SegmentationResult:
        pixels = image_preprocessing.check_image(image)
        out = self._model.run([self._preprocessor.tensor(pixels)])[0][0]
        if self._dtype == np.uint8:
            conf = self._scale * (out.astype(np.int32) - self._zero_point).astype(np.float32)
        else:
            conf = out.astype(np.float32)
        labels_ = [dataclasses.replace(c) for c in self._colored]
        if self._output_type == OutputType.CATEGORY_MASK:
            # the first class whose confidence beats all before it and 0 (ties keep the first)
            best = np.argmax(conf, axis=-1)
            top = np.take_along_axis(conf, best[..., None], -1)[..., 0]
            mask = np.where(top > 0, best, 0).astype(np.uint8)
            seg = Segmentation(height=self._height, width=self._width, colored_labels=labels_,
                               category_mask=mask)
        else:
            seg = Segmentation(height=self._height, width=self._width, colored_labels=labels_,
                               confidence_masks=[ConfidenceMask(value=conf[:, :, d].astype(np.float64))
                                                 for d in range(self._depth)])
        return SegmentationResult(segmentations=[seg])

    @property
    def options(self) -> ImageSegmenterOptions:
        return self._options
