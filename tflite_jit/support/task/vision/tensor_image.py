"""TensorImage: an 8-bit grayscale, RGB or RGBA image held as a NumPy array.

Files and encoded buffers are decoded with Pillow (the optional `image` extra). tflite_support
decodes with stb_image: PNG, BMP and GIF pixels are the same; JPEG pixels may differ by a few
levels because the two decoders' IDCTs differ (docs/tasks.md).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from tflite_jit.support.task.vision.color_space_type import ColorSpaceType

_CHANNELS = {1: ColorSpaceType.GRAYSCALE, 3: ColorSpaceType.RGB, 4: ColorSpaceType.RGBA}


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError("Decoding image files needs Pillow: pip install "
                          "'tflite-jit[image]' (or pillow).") from e
    return Image


def _decode(image: Any) -> np.ndarray:
    """Pillow image -> uint8 array in the colour space the file stores (stb_image's choice:
    gray stays gray, alpha is kept, palettes expand)."""
    mode = image.mode
    if mode in ("L", "1", "I", "I;16", "F"):
        image = image.convert("L")
    elif mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    else:
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


class TensorImage:
    """An image for the vision tasks, as tflite_support's TensorImage."""

    def __init__(self, image_data: np.ndarray, is_from_numpy_array: bool = True) -> None:
        data = np.ascontiguousarray(image_data, dtype=np.uint8)
        if data.ndim == 2:
            data = data[:, :, None]
        if data.ndim != 3 or data.shape[2] not in _CHANNELS or 0 in data.shape:
            raise ValueError(f"Unsupported image shape {tuple(image_data.shape)}: expected "
                             "(h, w) for GRAYSCALE, (h, w, 3) for RGB or (h, w, 4) for RGBA "
                             "images, optionally with a leading batch dimension of 1.")
        self._data = data
        self._is_from_numpy_array = is_from_numpy_array

    @classmethod
    def create_from_file(cls, file_name: str) -> TensorImage:
        Image = _pillow()
        try:
            with Image.open(file_name) as im:
                return cls(_decode(im), is_from_numpy_array=False)
        except OSError as e:
            raise ValueError(f"Image decoding failed for {file_name}: {e}") from e

    @classmethod
    def create_from_array(cls, array: np.ndarray) -> TensorImage:
        array = np.asarray(array)
        if array.dtype != np.uint8:
            raise ValueError("Expect numpy array with dtype=uint8.")
        return cls(np.squeeze(array))

    @classmethod
    def create_from_buffer(cls, buffer: bytes) -> TensorImage:
        Image = _pillow()
        try:
            with Image.open(io.BytesIO(bytes(buffer))) as im:
                return cls(_decode(im), is_from_numpy_array=False)
        except OSError as e:
            raise ValueError(f"Image decoding failed: {e}") from e

    @property
    def buffer(self) -> np.ndarray:
        """The pixels: (h, w, channels) uint8 (tflite_support returns gray images as (h, w))."""
        return self._data[:, :, 0] if self._data.shape[2] == 1 else self._data

    @property
    def height(self) -> int:
        return int(self._data.shape[0])

    @property
    def width(self) -> int:
        return int(self._data.shape[1])

    @property
    def color_space_type(self) -> ColorSpaceType:
        return _CHANNELS[self._data.shape[2]]

    def pixels(self) -> np.ndarray:
        """(h, w, channels), always 3-D."""
        return self._data
