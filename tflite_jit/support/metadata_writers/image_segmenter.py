"""Metadata and label files for image segmenters (one image in, per-pixel class masks out)."""

from __future__ import annotations

from typing import Any

from tflite_jit.support import metadata_objects as fb
from tflite_jit.support.metadata_writers import metadata_info, metadata_writer, writer_utils

_MODEL_NAME = "ImageSegmenter"
_MODEL_DESCRIPTION = ("Semantic image segmentation predicts whether each pixel of an image is "
                      "associated with a certain class.")
_INPUT_NAME = "image"
_INPUT_DESCRIPTION = "Input image to be segmented."
_OUTPUT_NAME = "segmentation_masks"
_OUTPUT_DESCRIPTION = "Masks over the target objects with high accuracy."
# The masks' height and width are dimensions 1 and 2 (NHWC).
_CONTENT_DIM_MIN = 1
_CONTENT_DIM_MAX = 2


def _create_segmentation_masks_metadata(masks_md: metadata_info.TensorMd) -> Any:
    masks = masks_md.create_metadata()
    content = fb.ContentT()
    content.contentProperties = fb.ImagePropertiesT()
    content.contentProperties.colorSpace = fb.ColorSpaceType.GRAYSCALE
    content.contentPropertiesType = fb.ContentProperties.ImageProperties
    content.range = fb.ValueRangeT()
    content.range.min, content.range.max = _CONTENT_DIM_MIN, _CONTENT_DIM_MAX
    masks.content = content
    return masks


class MetadataWriter(metadata_writer.MetadataWriter):
    """Writes image segmenter metadata."""

    @classmethod
    def create_from_metadata_info(cls, model_buffer: Any,
                                  general_md: metadata_info.GeneralMd | None = None,
                                  input_md: metadata_info.InputImageTensorMd | None = None,
                                  output_md: metadata_info.TensorMd | None = None
                                  ) -> MetadataWriter:
        general_md = general_md or metadata_info.GeneralMd(name=_MODEL_NAME,
                                                           description=_MODEL_DESCRIPTION)
        input_md = input_md or metadata_info.InputImageTensorMd(
            name=_INPUT_NAME, description=_INPUT_DESCRIPTION,
            color_space_type=fb.ColorSpaceType.RGB)
        output_md = output_md or metadata_info.TensorMd(name=_OUTPUT_NAME,
                                                        description=_OUTPUT_DESCRIPTION)
        if output_md.associated_files is None:
            output_md.associated_files = []
        return super().create_from_metadata(
            model_buffer, model_metadata=general_md.create_metadata(),
            input_metadata=[input_md.create_metadata()],
            output_metadata=[_create_segmentation_masks_metadata(output_md)],
            associated_files=[f.file_path for f in output_md.associated_files])

    @classmethod
    def create_for_inference(cls, model_buffer: Any, input_norm_mean: list[float],
                             input_norm_std: list[float], label_file_paths: list[str]
                             ) -> MetadataWriter:
        input_md = metadata_info.InputImageTensorMd(
            name=_INPUT_NAME, description=_INPUT_DESCRIPTION, norm_mean=input_norm_mean,
            norm_std=input_norm_std, color_space_type=fb.ColorSpaceType.RGB,
            tensor_type=writer_utils.first_input_type(model_buffer))
        output_md = metadata_info.TensorMd(
            name=_OUTPUT_NAME, description=_OUTPUT_DESCRIPTION,
            associated_files=[metadata_info.LabelFileMd(file_path=p) for p in label_file_paths])
        return cls.create_from_metadata_info(model_buffer, input_md=input_md, output_md=output_md)
