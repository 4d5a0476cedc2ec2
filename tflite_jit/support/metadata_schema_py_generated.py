"""Drop-in name for `tflite_support.metadata_schema_py_generated`: the metadata schema's object
API (`ModelMetadataT`, `TensorMetadataT`, ..., readers and enum classes). Built from the schema
facts in `metadata_objects`; see there for what it covers."""

from tflite_jit.support.metadata_objects import *  # noqa: F403
from tflite_jit.support.metadata_objects import __all__  # noqa: F401
