"""AudioClassifier: a fixed-length waveform in, one classification head per output."""

from __future__ import annotations

import dataclasses

import numpy as np

from tflite_jit.support import metadata_schema_py_generated as fb
from tflite_jit.support.task import classification, engine
from tflite_jit.support.task.audio.tensor_audio import AudioFormat, TensorAudio
from tflite_jit.support.task.core.base_options import BaseOptions
from tflite_jit.support.task.processor.options import ClassificationOptions
from tflite_jit.support.task.processor.results import ClassificationResult


@dataclasses.dataclass
class AudioClassifierOptions:
    base_options: BaseOptions
    classification_options: ClassificationOptions = dataclasses.field(
        default_factory=ClassificationOptions)


class AudioClassifier:
    def __init__(self, options: AudioClassifierOptions, model: engine.TaskModel) -> None:
        self._options = options
        self._model = model
        opts = options.classification_options or ClassificationOptions()
        classification.check_max_results(opts)
        self._classification_options = opts
        mds = model.input_metadata()
        md = mds[0] if mds else None
        content = (md or {}).get("content") or {}
        if content.get("content_properties_type") != fb.ContentProperties.AudioProperties:
            raise ValueError("Missing audio format metadata in the model: the input tensor "
                             "needs AudioProperties (sample rate, channels).")
        props = content.get("content_properties") or {}
        channels, rate = int(props.get("channels", 0)), int(props.get("sample_rate", 0))
        if channels <= 0 or rate <= 0:
            raise ValueError("Missing audio format metadata in the model.")
        self._format = AudioFormat(channels, rate)
        shape = [int(d) for d in model.inputs[0]["shape"]]
        for i, d in enumerate(shape):
            if d < 1:
                raise ValueError(f"Invalid size: {d} for input tensor dimension: {i}.")
        self._size = int(np.prod(shape))
        if self._size % channels:
            raise ValueError(f"Model input tensor size ({self._size}) should be a multiplier of "
                             f"the number of channels ({channels}).")
        out_mds = model.output_metadata()
        self._heads = [classification.ClassificationHead(
            model, i, out_mds[i] if out_mds and i < len(out_mds) else None,
            opts.display_names_locale) for i in range(len(model.outputs))]
        self._filters = [classification.ClassNameFilter(opts, [(h.name, h.labels)])
                         for h in self._heads]

    @classmethod
    def create_from_file(cls, file_path: str) -> AudioClassifier:
        return cls.create_from_options(AudioClassifierOptions(BaseOptions(file_name=file_path)))

    @classmethod
    def create_from_options(cls, options: AudioClassifierOptions) -> AudioClassifier:
        return cls(options, engine.TaskModel(options.base_options))

    def create_input_tensor_audio(self) -> TensorAudio:
        return TensorAudio(self._format, self._size)

    @property
    def required_input_buffer_size(self) -> int:
        return self._size

    @property
    def required_audio_format(self) -> AudioFormat:
        return self._format

    def classify(self, audio: TensorAudio) -> ClassificationResult:
        fmt = audio.format
        if fmt.channels != self._format.channels:
            raise ValueError(f"Input audio buffer channel number {fmt.channels} does not match "
                             f"the model required audio channel number {self._format.channels}.")
        if fmt.sample_rate != self._format.sample_rate:
            raise ValueError(f"Input audio sample rate {fmt.sample_rate} does not match the "
                             f"model required audio sample rate {self._format.sample_rate}.")
        if audio.buffer_size != self._size:
            raise ValueError(f"Input audio buffer size {audio.buffer_size} does not match the "
                             f"model required input size {self._size}.")
        data = np.asarray(audio.buffer, np.float32).reshape(-1)[: self._size]
        detail = self._model.inputs[0]
        outputs = self._model.run([data.reshape(detail["shape"]).astype(detail["dtype"])])
        return ClassificationResult(classifications=[
            head.classify(outputs[i], self._classification_options, self._filters[i], i,
                          head.name) for i, head in enumerate(self._heads)])

    @property
    def options(self) -> AudioClassifierOptions:
        return self._options
