"""Metadata and label files for object detectors (SSD-style: one image in; locations,
categories, scores and the number of detections out, as TFLite_Detection_PostProcess emits)."""

from __future__ import annotations

import logging
from typing import Any

from tflite_jit.support import metadata_objects as fb
from tflite_jit.support.metadata_writers import metadata_info, metadata_writer, writer_utils

_MODEL_NAME = "ObjectDetector"
_MODEL_DESCRIPTION = ("Identify which of a known set of objects might be present and provide "
                      "information about their positions within the given image or a video "
                      "stream.")
_INPUT_NAME = "image"
_INPUT_DESCRIPTION = "Input image to be detected."
_OUTPUT_LOCATION_NAME = "location"
_OUTPUT_LOCATION_DESCRIPTION = "The locations of the detected boxes."
_OUTPUT_CATEGORY_NAME = "category"
_OUTPUT_CATEGORY_DESCRIPTION = "The categories of the detected boxes."
_OUTPUT_SCORE_NAME = "score"
_OUTPUT_SCORE_DESCRIPTION = "The scores of the detected boxes."
_OUTPUT_NUMBER_NAME = "number of detections"
_OUTPUT_NUMBER_DESCRIPTION = "The number of the detected boxes."
# Boxes are [1, N, 4]: their coordinates run along dimension 2 (tflite_support gives the
# category and score tensors the same range).
_CONTENT_VALUE_DIM = 2
# Detection boxes are [top, left, bottom, right]; BOUNDARIES' order is left, top, right, bottom.
_BOUNDING_BOX_INDEX = (1, 0, 3, 2)
_GROUP_NAME = "detection_result"
_WARN = ('The output name isn\'t the default string "%s". This may cause the model not work in '
         "the TFLite Task Library since the tensor name will be used to handle the output order "
         "in the TFLite Task Library.")
_log = logging.getLogger(__name__)


def _value_range(dim: int) -> Any:
    r = fb.ValueRangeT()
    r.min = r.max = dim
    return r


def _location_metadata(location_md: metadata_info.TensorMd) -> Any:
    t = location_md.create_metadata()
    content = fb.ContentT()
    content.contentPropertiesType = fb.ContentProperties.BoundingBoxProperties
    box = fb.BoundingBoxPropertiesT()
    box.index = list(_BOUNDING_BOX_INDEX)
    box.type = fb.BoundingBoxType.BOUNDARIES
    box.coordinateType = fb.CoordinateType.RATIO
    content.contentProperties = box
    content.range = _value_range(_CONTENT_VALUE_DIM)
    t.content = content
    return t


def _with_value_range(tensor_md: metadata_info.TensorMd) -> Any:
    t = tensor_md.create_metadata()
    t.content.range = _value_range(_CONTENT_VALUE_DIM)
    return t


def _add_new_files(paths: list[str], files: list[metadata_info.AssociatedFileMd] | None) -> None:
    for f in files or []:
        if f.file_path not in paths:
            paths.append(f.file_path)


class MetadataWriter(metadata_writer.MetadataWriter):
    """Writes object detector metadata."""

    @classmethod
    def create_from_metadata_info(
            cls, model_buffer: Any, general_md: metadata_info.GeneralMd | None = None,
            input_md: metadata_info.InputImageTensorMd | None = None,
            output_location_md: metadata_info.TensorMd | None = None,
            output_category_md: metadata_info.CategoryTensorMd | None = None,
            output_score_md: metadata_info.TensorMd | None = None,
            output_number_md: metadata_info.TensorMd | None = None) -> MetadataWriter:
        """The four outputs are matched to the model's outputs by tensor id: the post-process
        op creates them in the order location, category, score, number, so sorted ids give
        that order whatever order the subgraph lists them in."""
        general_md = general_md or metadata_info.GeneralMd(name=_MODEL_NAME,
                                                           description=_MODEL_DESCRIPTION)
        input_md = input_md or metadata_info.InputImageTensorMd(
            name=_INPUT_NAME, description=_INPUT_DESCRIPTION,
            color_space_type=fb.ColorSpaceType.RGB)
        if output_location_md is None:
            output_location_md = metadata_info.TensorMd(
                name=_OUTPUT_LOCATION_NAME, description=_OUTPUT_LOCATION_DESCRIPTION)
        elif output_location_md.name != _OUTPUT_LOCATION_NAME:
            _log.warning(_WARN, _OUTPUT_LOCATION_NAME)
        if output_category_md is None:
            output_category_md = metadata_info.CategoryTensorMd(
                name=_OUTPUT_CATEGORY_NAME, description=_OUTPUT_CATEGORY_DESCRIPTION)
        elif output_category_md.name != _OUTPUT_CATEGORY_NAME:
            _log.warning(_WARN, _OUTPUT_CATEGORY_NAME)
        if output_score_md is None:
            output_score_md = metadata_info.ClassificationTensorMd(
                name=_OUTPUT_SCORE_NAME, description=_OUTPUT_SCORE_DESCRIPTION)
        elif output_score_md.name != _OUTPUT_SCORE_NAME:
            _log.warning(_WARN, _OUTPUT_SCORE_NAME)
        if output_number_md is None:
            output_number_md = metadata_info.TensorMd(
                name=_OUTPUT_NUMBER_NAME, description=_OUTPUT_NUMBER_DESCRIPTION)
        elif output_number_md.name != _OUTPUT_NUMBER_NAME:
            _log.warning(_WARN, _OUTPUT_NUMBER_NAME)

        group = fb.TensorGroupT()
        group.name = _GROUP_NAME
        group.tensorNames = [output_location_md.name, output_category_md.name,
                             output_score_md.name]
        ids = writer_utils.get_output_tensor_indices(model_buffer)
        made = [_location_metadata(output_location_md), _with_value_range(output_category_md),
                _with_value_range(output_score_md), output_number_md.create_metadata()]
        if len(ids) != len(made):
            raise ValueError(f"An object detector has {len(made)} outputs (location, category, "
                             f"score, number of detections); the model has {len(ids)}.")
        by_id = dict(zip(sorted(ids), made))
        subgraph = fb.SubGraphMetadataT()
        subgraph.inputTensorMetadata = [input_md.create_metadata()]
        subgraph.outputTensorMetadata = [by_id[i] for i in ids]
        subgraph.outputTensorGroups = [group]
        model_metadata = general_md.create_metadata()
        model_metadata.subgraphMetadata = [subgraph]
        files: list[str] = []
        _add_new_files(files, output_category_md.associated_files)
        _add_new_files(files, output_score_md.associated_files)
        return cls(model_buffer, metadata_writer.pack_metadata(model_metadata),
                   associated_files=files)

    @classmethod
    def create_for_inference(cls, model_buffer: Any, input_norm_mean: list[float],
                             input_norm_std: list[float], label_file_paths: list[str],
                             score_calibration_md: metadata_info.ScoreCalibrationMd | None = None
                             ) -> MetadataWriter:
        input_md = metadata_info.InputImageTensorMd(
            name=_INPUT_NAME, description=_INPUT_DESCRIPTION, norm_mean=input_norm_mean,
            norm_std=input_norm_std, color_space_type=fb.ColorSpaceType.RGB,
            tensor_type=writer_utils.first_input_type(model_buffer))
        category_md = metadata_info.CategoryTensorMd(
            name=_OUTPUT_CATEGORY_NAME, description=_OUTPUT_CATEGORY_DESCRIPTION,
            label_files=[metadata_info.LabelFileMd(file_path=p) for p in label_file_paths])
        score_md = metadata_info.ClassificationTensorMd(
            name=_OUTPUT_SCORE_NAME, description=_OUTPUT_SCORE_DESCRIPTION,
            score_calibration_md=score_calibration_md)
        return cls.create_from_metadata_info(model_buffer, input_md=input_md,
                                             output_category_md=category_md,
                                             output_score_md=score_md)
