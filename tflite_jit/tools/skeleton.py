"""Model skeletons: a .tflite with its large weight buffers dropped, and the way back.

A skeleton keeps everything that decides how a model is planned — ops, options, tensor shapes,
dtypes, quantization parameters, sparsity metadata, signatures and every small constant
(shapes, axes, paddings, biases of a few KB) verbatim — and drops the bulk weights, so a
40-model benchmark suite fits in a few hundred KB of git and can be checked in CI without
TensorFlow or a download (tests/test_suite_placement.py). `refill` puts seeded random data of
each dropped buffer's dtype and shape back, which gives a runnable model whose placement is the
original's (placement never depends on weight values; numbers do, so skeletons are for plans,
not for conformance).

The list of dropped buffers travels inside the skeleton as a metadata entry (`METADATA_KEY`,
JSON), so one gzip'ed file is all there is.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from tflite_jit.format.reader import load_bytes
from tflite_jit.format.writer import write_model
from tflite_jit.ir.model import Model

METADATA_KEY = "tflite_jit.skeleton"
#: buffers at most this large are kept verbatim whatever their dtype
KEEP_BYTES = 512
#: integer (int32/int64) constants are shapes, indices, biases: kept unless larger than this
KEEP_INT_BYTES = 64 * 1024
#: metadata entries (labels, model cards) larger than this are dropped; they never affect a plan
KEEP_METADATA_BYTES = 1024


def _droppable(data: np.ndarray) -> bool:
    if data.dtype == object or data.nbytes <= KEEP_BYTES:
        return False
    if data.dtype.kind in "iu" and data.dtype.itemsize >= 4:
        return data.nbytes > KEEP_INT_BYTES
    return data.dtype.kind in "fiub"


def strip(content: bytes) -> bytes:
    """The skeleton of a .tflite model (uncompressed; callers gzip it)."""
    model = load_bytes(content)
    dropped: list[list[Any]] = []
    for si, sg in enumerate(model.subgraphs):
        for ti, t in enumerate(sg.tensors):
            if t.data is not None and _droppable(t.data):
                dropped.append([si, ti, t.data.dtype.str, list(t.data.shape)])
                t.data = np.zeros((0,), t.data.dtype)  # an empty buffer: written, never read back
    model.metadata = {k: v for k, v in model.metadata.items() if len(v) <= KEEP_METADATA_BYTES}
    model.metadata[METADATA_KEY] = json.dumps({"dropped": dropped}).encode()
    return write_model(model)


def _random(dtype: np.dtype, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if dtype.kind == "f":
        return (rng.standard_normal(shape, dtype=np.float32) * 0.05).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(dtype)
    info = np.iinfo(dtype)
    lo, hi = max(int(info.min), -1000), min(int(info.max), 1000)
    if dtype.itemsize == 1:
        lo, hi = int(info.min) + (1 if dtype.kind == "i" else 0), int(info.max)
    return rng.integers(lo, hi, shape, endpoint=True).astype(dtype)


def refill_model(skeleton: bytes, seed: int = 0) -> Model:
    """The skeleton as a model whose dropped buffers hold seeded random data again."""
    model = load_bytes(skeleton)
    raw = model.metadata.pop(METADATA_KEY, None)
    if raw is None:
        raise ValueError(f"not a skeleton: no '{METADATA_KEY}' metadata")
    for si, ti, dt, shape in json.loads(bytes(raw))["dropped"]:
        t = model.subgraphs[si].tensors[ti]
        rng = np.random.default_rng([seed, si, ti])
        t.data = _random(np.dtype(dt), tuple(shape), rng)
    return model


def refill(skeleton: bytes, seed: int = 0) -> bytes:
    """A runnable .tflite from a skeleton (random weights, same plan as the original)."""
    return write_model(refill_model(skeleton, seed))
