"""Colour spaces a TensorImage can hold (tflite_support's ColorSpaceType)."""

from __future__ import annotations

import enum


@enum.unique
class ColorSpaceType(enum.Enum):
    GRAYSCALE = "GRAYSCALE"
    RGB = "RGB"
    RGBA = "RGBA"
