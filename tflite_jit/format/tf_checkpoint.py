"""TensorFlow's V1 checkpoint format: what the ``Save`` op writes and the ``Restore`` op reads.

The on-device training guide's ``save``/``restore`` signatures call these two TF ops (Flex ops in
the .tflite), so a checkpoint written by our interpreter must be one TensorFlow reads and vice
versa. The file is a sorted-string table (`tflite_jit.format.sstable`): the empty key holds a
``SavedTensorSlices`` with the metadata (each tensor's name, shape, dtype and slices, sorted by
name), and one entry per tensor slice, keyed by TF's ordered encoding of (name, slice), holds
the values in a ``TensorProto``'s typed repeated field. We write whole tensors as one slice each,
as ``Save`` does; the reader also assembles tensors saved in several slices.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Mapping

import numpy as np

from tflite_jit.format import sstable, tf_proto

CHECKPOINT_VERSION = 1  # TF_CHECKPOINT_VERSION, the producer version TensorFlow records
_MAX_BYTES = (1 << 31) - (1 << 20)  # a protobuf message must stay under 2 GiB


def _num_increasing(v: int) -> bytes:
    """OrderedCode's unsigned encoding: a length byte, then big-endian bytes (0 is one byte)."""
    body = v.to_bytes((v.bit_length() + 7) // 8, "big") if v else b""
    return bytes([len(body)]) + body


def _signed_small(v: int) -> bytes:
    """OrderedCode's signed encoding for -64 <= v < 64, the only values a whole-tensor slice
    key needs (start 0, length -1 = 'all')."""
    if not -64 <= v < 64:
        raise ValueError(f"slice bound {v} needs OrderedCode's long form, which is not implemented")
    return bytes([(0x80 ^ v) & 0xFF])


def _escape(s: bytes) -> bytes:
    out = bytearray()
    for b in s:
        out += b"\x00\xff" if b == 0 else b"\xff\x00" if b == 0xFF else bytes([b])
    return bytes(out)


def slice_key(name: str, ndim: int) -> bytes:
    """The table key of a whole tensor `name` of rank `ndim` (EncodeTensorNameSlice)."""
    return _num_increasing(0) + _escape(name.encode()) + b"\x00\x01" + _num_increasing(ndim) + \
        (_signed_small(0) + _signed_small(-1)) * ndim


def _shape(proto: object, shape: tuple[int, ...]) -> None:
    proto.SetInParent()
    for d in shape:
        proto.dim.add(size=int(d))


def encode(tensors: Mapping[str, np.ndarray]) -> bytes:
    """The checkpoint file holding `tensors` (name -> array), as TensorFlow's Save writes it."""
    m = tf_proto.messages()
    meta = m["SavedTensorSlices"]()
    meta.meta.versions.producer = CHECKPOINT_VERSION
    entries = []
    for name in sorted(tensors, key=lambda n: n.encode()):
        arr = np.require(tensors[name], requirements="C")  # keeps 0-d arrays 0-d
        if arr.nbytes > _MAX_BYTES:
            raise ValueError(f"tensor '{name}' ({arr.nbytes} bytes) is too large for a V1 checkpoint")
        t = meta.meta.tensor.add(name=name, type=tf_proto.dtype_number(arr.dtype))
        _shape(t.shape, arr.shape)
        full = t.slice.add()
        for _ in range(arr.ndim):
            full.extent.add()
        data = m["SavedTensorSlices"]()
        data.data.name = name
        data.data.slice.SetInParent()
        for _ in range(arr.ndim):
            data.data.slice.extent.add()
        data.data.data.SetInParent()
        tf_proto.fill_values(data.data.data, arr)
        entries.append((slice_key(name, arr.ndim), data.SerializeToString()))
    return sstable.write_table([(b"", meta.SerializeToString()), *entries])


def save(path: str | os.PathLike, tensors: Mapping[str, np.ndarray]) -> None:
    """Write a checkpoint atomically (a temporary file renamed into place, as TF does), so a
    crash never leaves a half-written checkpoint under `path`."""
    data = encode(tensors)
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=os.path.basename(path) + ".tempstate")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def decode(buf: bytes, what: str = "checkpoint") -> dict[str, np.ndarray]:
    """Every tensor of checkpoint file contents `buf`, assembled from its slices."""
    from google.protobuf.message import DecodeError

    m = tf_proto.messages()
    metas: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    parts: list[tuple[str, list, object]] = []
    for key, value in sstable.read_table(buf, what):
        msg = m["SavedTensorSlices"]()
        try:
            msg.ParseFromString(value)
        except DecodeError as e:
            raise ValueError(f"{what}: entry {key!r} is not a SavedTensorSlices message ({e})") from None
        if key == b"":
            for t in msg.meta.tensor:
                shape = tuple(int(d.size) for d in t.shape.dim)
                metas[t.name] = (shape, tf_proto.numpy_dtype(t.type, f"{what} tensor '{t.name}'"))
        elif msg.HasField("data"):
            parts.append((msg.data.name, list(msg.data.slice.extent), msg.data.data))
    out: dict[str, np.ndarray] = {}
    for name, extents, proto in parts:
        if name not in metas:
            raise ValueError(f"{what}: tensor '{name}' has data but no metadata entry")
        shape, dtype = metas[name]
        if name not in out:
            out[name] = np.zeros(shape, dtype=dtype) if dtype.kind != "O" else np.full(shape, b"", dtype=object)
        if extents and len(extents) != len(shape):
            raise ValueError(f"{what}: tensor '{name}' has a slice of rank {len(extents)}, its shape "
                             f"{list(shape)} has rank {len(shape)}")
        region = []
        for d, e in zip(shape, extents or [None] * len(shape)):
            start = int(e.start) if e is not None else 0
            length = int(e.length) if e is not None and e.HasField("length") else d - start
            if not (0 <= start and 0 <= length and start + length <= d):
                raise ValueError(f"{what}: tensor '{name}' has a slice outside its shape {list(shape)}")
            region.append(slice(start, start + length))
        sub = tuple(s.stop - s.start for s in region)
        out[name][tuple(region)] = tf_proto.to_numpy(proto, dtype, sub, f"{what} tensor '{name}'")
    for name in metas:
        out.setdefault(name, np.zeros(metas[name][0], dtype=metas[name][1]))
    return out


def files(pattern: str) -> list[str]:
    """The files a checkpoint pattern names (TF's Restore takes a glob, for sharded files)."""
    found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else ([pattern] if os.path.isfile(pattern) else [])
    if not found:
        raise FileNotFoundError(f"Unsuccessful TensorSliceReader constructor: Failed to find any matching "
                                f"files for {pattern}")
    return found


def load(pattern: str) -> dict[str, np.ndarray]:
    """Every tensor in the checkpoint file(s) matching `pattern`."""
    out: dict[str, np.ndarray] = {}
    for path in files(pattern):
        with open(path, "rb") as f:
            out.update(decode(f.read(), f"checkpoint {path}"))
    return out
