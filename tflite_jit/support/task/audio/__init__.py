"""Audio tasks (tflite_support.task.audio)."""

from tflite_jit.support.task.audio.audio_classifier import AudioClassifier, AudioClassifierOptions
from tflite_jit.support.task.audio.tensor_audio import AudioFormat, TensorAudio

__all__ = ["AudioClassifier", "AudioClassifierOptions", "AudioFormat", "TensorAudio"]
