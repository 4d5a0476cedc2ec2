"""tflite_jit"""
