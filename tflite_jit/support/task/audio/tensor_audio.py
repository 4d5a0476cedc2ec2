"""TensorAudio: a fixed-size float32 ring of the most recent samples, as tflite_support's."""

from __future__ import annotations

import dataclasses
import wave

import numpy as np


@dataclasses.dataclass(frozen=True)
class AudioFormat:
    channels: int
    sample_rate: int


class TensorAudio:
    def __init__(self, audio_format: AudioFormat, buffer_size: int) -> None:
        self._format = audio_format
        self._buffer_size = int(buffer_size)
        self._buffer = np.zeros([self._buffer_size, self._format.channels], np.float32)

    def clear(self) -> None:
        self._buffer.fill(0)

    @classmethod
    def create_from_wav_file(cls, file_name: str, sample_count: int,
                             offset: int = 0) -> TensorAudio:
        """The first `sample_count` frames after `offset` of a 16-bit PCM WAV file, as floats
        in [-1, 1) (sample / 32768), zero-padded when the file is shorter."""
        if offset < 0:
            raise ValueError("offset cannot be negative")
        try:
            with wave.open(str(file_name), "rb") as w:
                if w.getsampwidth() != 2:
                    raise ValueError(f"{file_name}: only 16-bit PCM WAV files are supported, "
                                     f"this one has {8 * w.getsampwidth()}-bit samples.")
                channels, rate, frames = w.getnchannels(), w.getframerate(), w.getnframes()
                w.setpos(min(offset, frames))
                raw = w.readframes(sample_count)
        except (wave.Error, EOFError, OSError) as e:
            raise ValueError(f"Could not read the WAV file {file_name}: {e}") from e
        data = np.frombuffer(raw, "<i2").astype(np.float32) / np.float32(32768.0)
        data = data.reshape(-1, channels)
        out = np.zeros((sample_count, channels), np.float32)
        out[: len(data)] = data[:sample_count]
        tensor = cls(AudioFormat(channels, rate), sample_count)
        tensor.load_from_array(out)
        return tensor

    def load_from_array(self, src: np.ndarray, offset: int = 0, size: int = -1) -> None:
        src = np.asarray(src)
        if src.ndim != 2 or src.shape[1] != self._format.channels:
            raise ValueError("Input audio contains an invalid number of channels. Expect "
                             f"{self._format.channels}.")
        if size < 0:
            size = len(src)
        if offset < 0 or offset + size > len(src):
            raise ValueError(f"Index out of range. offset {offset} + size {size} should be <= "
                             f"src's length: {len(src)}")
        if len(src) >= len(self._buffer):
            start = offset + size - len(self._buffer)
            self._buffer = src[start:start + len(self._buffer)].astype(np.float32)
        elif size:
            self._buffer = np.roll(self._buffer, -size, axis=0)
            self._buffer[-size:, :] = src[offset:offset + size]

    @property
    def format(self) -> AudioFormat:
        return self._format

    @property
    def buffer_size(self) -> int:
        return self._buffer_size

    @property
    def buffer(self) -> np.ndarray:
        return self._buffer
