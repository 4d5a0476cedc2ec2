"""What the quantized (8-bit) generators share: the activation types they compile, the checks a
request passes before one of them prints anything, and LiteRT's rounding shift as source text.

A quantized kernel computes one node: its integer arithmetic is not an expression tree, so
nothing is fused onto it (backends/request.py keeps quantized roots alone) and a request with an
epilogue is refused with a reason the plan shows.
"""

from __future__ import annotations

import numpy as np

from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops import expr as E
from tflite_jit.ops.base import Quantized

#: the activation types the quantized generators compile
QDTYPES = (np.dtype(np.int8), np.dtype(np.uint8))
#: ... and int16 (16x8 models, zero point 0) for the kernels whose int64 arithmetic holds for
#: 16-bit values as it is (ADD, SUB, MUL, the pools, MEAN: `int16=True` below)
QDTYPES16 = (*QDTYPES, np.dtype(np.int16))


def no_epilogue(req: KernelRequest, what: str) -> None:
    """Refuse a request whose single output is not the node's own result (`what` names the
    node in the reason)."""
    if len(req.outputs) != 1 or req.extras or req.outputs[0].expr != E.Var(0):
        raise Unsupported(f"{what}: fused epilogues are not compiled")


def check_8bit(req: KernelRequest, dtype, note: str = "", int16: bool = False) -> None:
    """Refuse activation types the kernel does not compile (`int16`: it compiles int16 too)."""
    if np.dtype(dtype) not in (QDTYPES16 if int16 else QDTYPES):
        raise Unsupported(f"quantized {req.op_name} on {dtype}{note} runs on reference")


def quantized_attrs(req: KernelRequest, field: str, node: str, note: str = "", int16: bool = False) -> Quantized:
    """The request's attrs, checked: a quantized `node` of this kernel (its attrs carry
    `field`), on 8-bit activations (`note` qualifies them in the reason; `int16`: int16 too),
    without an epilogue."""
    a = req.attrs
    if not isinstance(a, Quantized) or not hasattr(a, field):
        raise Unsupported(f"{req.op_name}: not a quantized {node}")
    check_8bit(req, a.dtype, note, int16)
    no_epilogue(req, f"quantized {req.op_name}")
    return a


def round_shift(var: str, rs: int, away: bool) -> str:
    """`var` >> rs rounded half up (RHU2) or half away from zero (MBQM), branchless: adding
    (var >> 63), -1 for negative values, turns round-half-up into round-half-away."""
    if not rs:
        return var
    neg = f" + ({var} >> 63)" if away else ""
    return f"({var} + {1 << (rs - 1)}{neg}) >> {rs}"


def shift_params(shift: int) -> list[int]:
    """A MBQM shift as run-time kernel parameters (l, h, k, r): left shift, the rounding half of
    the right shift, its negative-value mask (-1, or 0 when there is no right shift) and its
    count. Kernels that take them as arguments print only the shift's sign (`round_shift_rt`),
    so a retrained model whose scales moved reuses the kernel."""
    ls, rs = max(shift, 0), max(-shift, 0)
    return [ls, (1 << rs) >> 1, -1 if rs else 0, rs]


def round_shift_rt(var: str, h: str, k: str | None, r: str) -> str:
    """round_shift with the amounts in run-time variables (`shift_params`): half up, or half away
    from zero with the mask `k`; a count of 0 (h = k = 0) leaves `var` as it is."""
    neg = f" + (({var} >> 63) & {k})" if k else ""
    return f"({var} + {h}{neg}) >> {r}"
