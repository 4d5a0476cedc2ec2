"""The sorted-string table (LevelDB's table format) that TensorFlow's V1 checkpoints are written in.

A table is data blocks of prefix-compressed key/value entries, an (empty) meta-index block, an
index block mapping each data block's last-key separator to its offset, and a 48-byte footer
ending in a magic number. Each block carries a 5-byte trailer: a compression byte and a masked
CRC-32C of block + byte. We write uncompressed blocks as TensorFlow's checkpoint writer does
(256 KiB blocks, a restart point every 16 entries), so a checkpoint we write is the file
TensorFlow writes for the same tensors, byte for byte.

Written here rather than taken from a library: no maintained Python package reads or writes
this format, and it is small. CRC-32C comes from `google-crc32c` (extra ``flex``). A checkpoint is
user input, so the reader checks every length, offset and checksum and raises ValueError.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # two block handles padded to 2 * 20 bytes, then the 8-byte magic
BLOCK_SIZE = 262144  # TensorFlow's table::Options::block_size
RESTART_INTERVAL = 16
_MASK_DELTA = 0xA282EAD8


def _crc32c(data: bytes) -> int:
    try:
        import google_crc32c
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("TensorFlow checkpoints need google-crc32c: pip install 'tflite-jit[flex]'") from None
    return google_crc32c.value(data)


def masked_crc(data: bytes) -> int:
    """LevelDB stores CRCs rotated and offset, so a CRC of data holding CRCs stays meaningful."""
    c = _crc32c(data)
    return (((c >> 15) | (c << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(buf: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    n = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ValueError(f"{what}: truncated or invalid varint")
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, pos
        shift += 7


class _Block:
    def __init__(self) -> None:
        self.buf = bytearray()
        self.restarts = [0]
        self.count = 0
        self.last = b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.count < RESTART_INTERVAL:
            n = min(len(key), len(self.last))
            while shared < n and key[shared] == self.last[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buf))
            self.count = 0
        self.buf += _varint(shared) + _varint(len(key) - shared) + _varint(len(value))
        self.buf += key[shared:] + value
        self.last = key
        self.count += 1

    def size_estimate(self) -> int:
        return len(self.buf) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        return bytes(self.buf) + b"".join(struct.pack("<I", r) for r in self.restarts) + \
            struct.pack("<I", len(self.restarts))


def _separator(start: bytes, limit: bytes) -> bytes:
    """A short key >= start and < limit (LevelDB's BytewiseComparator::FindShortestSeparator)."""
    n = min(len(start), len(limit))
    i = 0
    while i < n and start[i] == limit[i]:
        i += 1
    if i < n and start[i] < 0xFF and start[i] + 1 < limit[i]:
        return start[:i] + bytes([start[i] + 1])
    return start


def _successor(key: bytes) -> bytes:
    """A short key >= key (FindShortSuccessor): the first byte that can grow, grown."""
    for i, b in enumerate(key):
        if b != 0xFF:
            return key[:i] + bytes([b + 1])
    return key


def write_table(entries: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The table holding `entries` (keys strictly increasing)."""
    out = bytearray()
    index = _Block()
    block = _Block()
    pending: tuple[bytes, int, int] | None = None  # (last key, offset, size) awaiting its index entry
    last = None

    def emit(data: bytes) -> tuple[int, int]:
        offset = len(out)
        out.extend(data)
        out.extend(b"\x00" + struct.pack("<I", masked_crc(data + b"\x00")))
        return offset, len(data)

    def handle(offset: int, size: int) -> bytes:
        return _varint(offset) + _varint(size)

    for key, value in entries:
        if last is not None and key <= last:
            raise ValueError(f"table keys must increase: {key!r} after {last!r}")
        if pending is not None:
            index.add(_separator(pending[0], key), handle(pending[1], pending[2]))
            pending = None
        block.add(key, value)
        last = key
        if block.size_estimate() >= BLOCK_SIZE:
            pending = (last, *emit(block.finish()))
            block = _Block()
    if block.count:
        pending = (last, *emit(block.finish()))
    if pending is not None:
        index.add(_successor(pending[0]), handle(pending[1], pending[2]))
    meta = emit(_Block().finish())
    idx = emit(index.finish())
    footer = handle(*meta) + handle(*idx)
    out += footer + b"\x00" * (40 - len(footer)) + struct.pack("<Q", MAGIC)
    return bytes(out)


def _block_entries(data: bytes, what: str) -> Iterator[tuple[bytes, bytes]]:
    if len(data) < 4:
        raise ValueError(f"{what}: block too short")
    (nrestarts,) = struct.unpack_from("<I", data, len(data) - 4)
    end = len(data) - 4 - 4 * nrestarts
    if nrestarts == 0 or end < 0:
        raise ValueError(f"{what}: bad restart count {nrestarts}")
    pos, key = 0, b""
    while pos < end:
        shared, pos = _read_varint(data, pos, end, what)
        unshared, pos = _read_varint(data, pos, end, what)
        vlen, pos = _read_varint(data, pos, end, what)
        if shared > len(key) or pos + unshared + vlen > end:
            raise ValueError(f"{what}: entry overruns its block")
        key = key[:shared] + data[pos:pos + unshared]
        pos += unshared
        yield key, data[pos:pos + vlen]
        pos += vlen


def _read_block(buf: bytes, handle: tuple[int, int], what: str) -> bytes:
    offset, size = handle
    if offset + size + 5 > len(buf):
        raise ValueError(f"{what}: block at {offset} (+{size}) runs past the end of the file")
    data = buf[offset:offset + size]
    kind = buf[offset + size]
    (crc,) = struct.unpack_from("<I", buf, offset + size + 1)
    if crc != masked_crc(data + bytes([kind])):
        raise ValueError(f"{what}: block at {offset} fails its checksum (the file is damaged)")
    if kind != 0:
        raise ValueError(f"{what}: block at {offset} is compressed (type {kind}); only uncompressed "
                         "tables are supported (TensorFlow writes checkpoints uncompressed)")
    return data


def read_table(buf: bytes, what: str = "table") -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of table `buf`, in key order."""
    if len(buf) < FOOTER_SIZE:
        raise ValueError(f"{what}: {len(buf)} bytes is too short for a table")
    footer = buf[-FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, 40)[0] != MAGIC:
        raise ValueError(f"{what}: not a TensorFlow table file (bad magic number)")
    pos = 0
    handles = []
    for _ in range(2):
        off, pos = _read_varint(footer, pos, 40, what)
        size, pos = _read_varint(footer, pos, 40, what)
        handles.append((off, size))
    index = _read_block(buf, handles[1], what)
    for _, value in _block_entries(index, what):
        off, p = _read_varint(value, 0, len(value), what)
        size, _ = _read_varint(value, p, len(value), what)
        yield from _block_entries(_read_block(buf, (off, size), what), what)
