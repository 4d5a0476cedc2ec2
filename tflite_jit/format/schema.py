"""Lookups over the schema facts: enums by name, options table per builtin op, field defaults."""

from __future__ import annotations

from functools import cache
from typing import Any

from tflite_jit.format.schema_data import ENUMS, TABLES

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3


@cache
def enum_values(enum: str) -> dict[str, int]:
    return dict(ENUMS[enum])


@cache
def enum_names(enum: str) -> dict[int, str]:
    return {v: k for k, v in ENUMS[enum]}


# Ops whose options table is not named after the op.
_OPTIONS_OVERRIDES = {
    "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions", "L2_POOL_2D": "Pool2DOptions",
    "L2_NORMALIZATION": "L2NormOptions", "MAXIMUM": "MaximumMinimumOptions",
    "MINIMUM": "MaximumMinimumOptions", "MEAN": "ReducerOptions", "SUM": "ReducerOptions",
    "REDUCE_PROD": "ReducerOptions", "REDUCE_MAX": "ReducerOptions", "REDUCE_MIN": "ReducerOptions",
    "REDUCE_ANY": "ReducerOptions", "REDUCE_ALL": "ReducerOptions",
    "UNIDIRECTIONAL_SEQUENCE_RNN": "SequenceRNNOptions", "RANDOM_STANDARD_NORMAL": "RandomOptions",
    "RANDOM_UNIFORM": "RandomOptions", "MULTINOMIAL": "RandomOptions",
    "CONV_3D_TRANSPOSE": "Conv3DOptions",
}


@cache
def options_table_for(op_name: str) -> tuple[str, str, int] | None:
    """(union field, table name, union index) carrying a builtin op's options, or None."""
    table = _OPTIONS_OVERRIDES.get(op_name)
    if table is None:
        lower = {t.lower(): t for t in TABLES}
        table = lower.get(op_name.replace("_", "").lower() + "options")
    if table is None:
        return None
    for union in ("BuiltinOptions", "BuiltinOptions2"):
        idx = enum_values(union).get(table)
        if idx is not None:
            field = "builtin_options" if union == "BuiltinOptions" else "builtin_options2"
            return field, table, idx
    return None


@cache
def table_defaults(table: str) -> dict[str, Any]:
    """Every scalar field of a table with its schema default (what a reader sees when absent)."""
    out: dict[str, Any] = {}
    for f in TABLES[table]:
        if f is None:
            continue
        name, kind, default = f
        if not kind.startswith(("[", "table:", "union:")) and kind != "str":
            out[name] = default
        else:
            out[name] = None
    return out


# Options fields whose integer values name members of an enum (the builder accepts the names).
FIELD_ENUMS = {
    "padding": "Padding",
    "fused_activation_function": "ActivationFunctionType",
    "out_type": "TensorType", "output_type": "TensorType", "idx_out_type": "TensorType",
    "in_data_type": "TensorType", "out_data_type": "TensorType", "quantized_bias_type": "TensorType",
    "mode": "MirrorPadMode", "weights_format": "FullyConnectedOptionsWeightsFormat",
    "kernel_type": "LSTMKernelType", "combiner": "CombinerType", "type": "LSHProjectionType",
}
