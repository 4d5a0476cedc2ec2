"""Shared by the examples: where the demo models are and how to get an image."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEMO_MODELS = REPO / "tests" / "data" / "task" / "models"


def demo_model(name: str) -> str:
    """A tiny model with real Task Library metadata from this repository's test fixtures
    (random weights: the pipeline is real, the predictions are not). Pass --model for yours."""
    path = DEMO_MODELS / f"{name}.tflite"
    if not path.exists():
        sys.exit(f"{path} not found: run the example from a tflite_jit source checkout, or "
                 "pass --model with a model that carries Task Library metadata.")
    return str(path)


def demo_image(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth synthetic RGB image (gradients and a disc), uint8."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    disc = ((x - width * 0.6) ** 2 + (y - height * 0.4) ** 2) < (min(height, width) * 0.25) ** 2
    rgb = np.stack([255 * x / max(width - 1, 1), 255 * y / max(height - 1, 1),
                    np.where(disc, 230.0, 40.0)], axis=-1)
    noise = np.random.default_rng(seed).normal(0, 8, rgb.shape)
    return np.clip(rgb + noise, 0, 255).astype(np.uint8)
