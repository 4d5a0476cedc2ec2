"""Audio tasks (tflite_support.task.audio)."""
