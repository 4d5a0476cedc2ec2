"""Drop-in replacement for the `tflite_support` package's metadata tools.

Change `tflite_support` to `tflite_jit.support` in the imports:
`from tflite_jit.support import metadata`, `from tflite_jit.support import
metadata_schema_py_generated as _metadata_fb`, `from tflite_jit.support.metadata_writers import
image_classifier`. See docs/metadata.md.
"""
