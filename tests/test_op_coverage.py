"""Issue #4's promise, checked: every builtin LiteRT's builtin resolver runs is defined here, and
the few we lack LiteRT lacks too (so a model LiteRT runs never stops at an op we reject)."""

from __future__ import annotations

import numpy as np

from tests.oracle import litert_interpreter
from tflite_jit import ops
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.schema_data import ENUMS

_NOT_OPS = {"CUSTOM", "DELEGATE", "PLACEHOLDER_FOR_GREATER_OP_CODES"}


def _litert_resolves(name: str) -> bool:
    mb = ModelBuilder()
    g = mb.subgraph()
    a = g.input("a", (2, 2), np.float32)
    b = g.input("b", (2, 2), np.float32)
    y = g.tensor("y", (2, 2), np.float32)
    g.op(name, [a, b], [y])
    g.output(y)
    try:
        litert_interpreter(mb.build()).allocate_tensors()
    except (RuntimeError, ValueError) as e:  # a resolved op may still reject this toy node
        return "Didn't find op for builtin opcode" not in str(e)
    return True


def test_every_builtin_litert_resolves_is_registered() -> None:
    registry = ops.all_ops()
    missing = [n for n, _ in ENUMS["BuiltinOperator"] if n not in registry and n not in _NOT_OPS]
    assert len(missing) <= 40, missing
    resolved_by_litert = [n for n in missing if _litert_resolves(n)]
    assert resolved_by_litert == [], f"LiteRT runs these builtins but tflite_jit lacks them: {resolved_by_litert}"
