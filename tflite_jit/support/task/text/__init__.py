"""Text tasks (tflite_support.task.text)."""
