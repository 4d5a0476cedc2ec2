"""Drop-in name for `tflite_support.schema_py_generated`, as far as the metadata writers' users
need it: the TFLite schema's enums as classes of ints (`TensorType.UINT8`, ...), built from
`tflite_jit.format.schema_data`. The TFLite object API itself is not provided; read models with
`tflite_jit.format.reader` or the Interpreter."""

from tflite_jit.format.schema_data import ENUMS

for _enum, _members in ENUMS.items():
    globals()[_enum] = type(_enum, (), dict(_members, __doc__=f"TFLite enum {_enum}"))

__all__ = sorted(ENUMS)
