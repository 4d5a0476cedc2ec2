"""Image -> input tensor, as the Task Library's ImagePreprocessor.

The input tensor's metadata give the colour space (RGB only, as the Task Library) and the
normalization of float inputs; the image is cropped to the region of interest, scaled to the
tensor's size with libyuv's bilinear rules (image_scaling) and normalized in float32 as
`(1 / std) * (pixel - mean)`, so the tensor is bit-identical to tflite_support's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tflite_jit.support import metadata_schema_py_generated as fb
from tflite_jit.support.task import engine, image_scaling
from tflite_jit.support.task.processor.results import BoundingBox

_TYPE_NAMES = {np.dtype(np.int8): "INT8", np.dtype(np.int16): "INT16",
               np.dtype(np.int32): "INT32", np.dtype(np.int64): "INT64",
               np.dtype(np.float16): "FLOAT16", np.dtype(np.bool_): "BOOL"}


class ImagePreprocessor:
    """Checks the model's image input once; `tensor()` turns an image into its input."""

    def __init__(self, model: engine.TaskModel):
        self.model = model
        mds = model.input_metadata()
        md = mds[0] if mds else None
        normalization = None
        if md is not None:
            content = md.get("content") or {}
            if content.get("content_properties_type") == fb.ContentProperties.ImageProperties:
                space = (content.get("content_properties") or {}).get("color_space", 0)
                if space != fb.ColorSpaceType.RGB:
                    raise ValueError("Only RGB color space is supported for now.")
            norm = engine.process_unit(md, engine.PU_NORMALIZATION)
            if norm is not None:
                mean = [float(v) for v in norm.get("mean", [])]
                std = [float(v) for v in norm.get("std", [])]
                if len(mean) != len(std):
                    raise ValueError("NormalizationOptions: expected mean and std of same "
                                     f"dimension, got {len(mean)} and {len(std)}.")
                if len(mean) not in (1, 3):
                    raise ValueError("NormalizationOptions: only 1 or 3 mean and std values "
                                     f"are supported, got {len(mean)}.")
                normalization = (np.array(mean * (3 // len(mean)), np.float32),
                                 np.array(std * (3 // len(std)), np.float32))
        if len(model.inputs) != 1:
            raise ValueError("Models are assumed to have a single input.")
        detail = model.inputs[0]
        shape = tuple(int(d) for d in detail["shape"])
        if len(shape) != 4:
            raise ValueError("Only 4D tensors in BHWD layout are supported.")
        self.dtype = np.dtype(detail["dtype"])
        if self.dtype not in (np.uint8, np.float32):
            raise ValueError(f"Type mismatch for input tensor {detail['name']}. Requested one of "
                             "these types: kTfLiteUint8/kTfLiteFloat32, got "
                             f"{_TYPE_NAMES.get(self.dtype, str(self.dtype).upper())}.")
        batch, height, width, depth = shape
        if batch != 1 or depth != 3:
            raise ValueError("The input tensor should have dimensions 1 x height x width x 3. "
                             f"Got {batch} x {height} x {width} x {depth}.")
        if self.dtype == np.float32:
            if normalization is None:
                raise ValueError("Input tensor has type kTfLiteFloat32: it requires specifying "
                                 "NormalizationOptions metadata to preprocess input images.")
            mean, std = normalization
            if np.any(np.abs(std) < np.finfo(np.float32).eps):
                raise ValueError("NormalizationOptions.std_values can't be 0. Please check if "
                                 "the tensor metadata has been populated correctly.")
            self.mean, self.inv_std = mean, (np.float32(1.0) / std).astype(np.float32)
        if width <= 0 or height <= 0:
            raise ValueError(f"The input tensor has an invalid size {height} x {width}.")
        sig = detail.get("shape_signature")
        sig = tuple(int(d) for d in sig) if sig is not None and len(sig) else shape
        self.height_mutable = sig[1] == -1
        self.width_mutable = sig[2] == -1
        self.height, self.width = height, width

    def pixels(self, image: np.ndarray, roi: BoundingBox | None) -> np.ndarray:
        """The (H, W, 3) uint8 pixels the model sees."""
        h, w, c = image.shape
        if roi is None:
            roi = BoundingBox(origin_x=0, origin_y=0, width=w, height=h)
        full = (roi.origin_x, roi.origin_y, roi.width, roi.height) == (0, 0, w, h)
        out_h = roi.height if self.height_mutable else self.height
        out_w = roi.width if self.width_mutable else self.width
        if full and c == 3 and (w, h) == (out_w, out_h):
            return image
        if c == 1:
            raise ValueError("Grayscale format does not convert to other formats.")
        x0, y0 = int(roi.origin_x), int(roi.origin_y)
        if (roi.width <= 0 or roi.height <= 0 or x0 < 0 or y0 < 0 or x0 + roi.width > w
                or y0 + roi.height > h):
            raise ValueError(f"Invalid crop coordinates: the region of interest (origin "
                             f"{x0},{y0}, size {roi.width}x{roi.height}) must lie inside the "
                             f"{w}x{h} image.")
        crop = image[y0:y0 + roi.height, x0:x0 + roi.width]
        if crop.shape[:2] != (out_h, out_w):
            crop = image_scaling.scale(crop, out_w, out_h)
        return np.ascontiguousarray(crop[:, :, :3])

    def tensor(self, image: np.ndarray, roi: BoundingBox | None = None) -> np.ndarray:
        px = self.pixels(image, roi)
        shape = (1, px.shape[0], px.shape[1], 3)
        if self.height_mutable or self.width_mutable:
            self.model.resize_input(0, shape)
        if self.dtype == np.uint8:
            return px.reshape(shape)
        return (self.inv_std * (px.astype(np.float32) - self.mean)).astype(np.float32).reshape(shape)


def check_image(image: Any) -> np.ndarray:
    pixels = getattr(image, "pixels", None)
    if pixels is None:
        raise ValueError(f"Expected a TensorImage, got {type(image).__name__}.")
    return pixels()
