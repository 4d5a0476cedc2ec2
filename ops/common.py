"""What the op families share: `define` (the one way an op is registered), the dtypes they name,
the attrs of ops without options, fused activations, cost formulas, and the checks shape rules
make on an InferCtx.

A helper lives here when families that have nothing else in common use it; one that belongs to a
family (ops.nn's window geometry, ops.sequence's recurrent state) stays in that family's module,
public when another family uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops.base import Cost, InferCtx, OpDef, OpError, PatternKind, ShapeDtype, register

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
I8, I16, I32, I64 = (np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
U8, U16, U32, U64 = (np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64))
BOOL = np.dtype(np.bool_)
C64 = np.dtype(np.complex64)
INDEX_TYPES = (I32, I64)


# ---- attrs and registration ----------------------------------------------------------------------

@dataclass(frozen=True)
class NoAttrs:
    """The attrs of an op that has no options."""


def parse_none(options: dict[str, Any]) -> NoAttrs:
    return NoAttrs()


def define(name: str, *, infer: Callable[[InferCtx], list[ShapeDtype]],
           reference: Callable[[Sequence[np.ndarray | None], Any], list[np.ndarray]],
           parse: Callable[[dict[str, Any]], Any] = parse_none, kind: PatternKind = PatternKind.OPAQUE,
           cost: Callable[[list, list, Any], Cost] | None = None, expr: Any = None,
           shape_inputs: tuple[int, ...] = (), bind: Callable[[Any, list, list], Any] | None = None,
           opdef: type[OpDef] = OpDef, **fields: Any) -> OpDef:
    """Register op `name` and return its definition (see OpDef for what each part means).
    Keyword arguments only, so that a definition reads as a table; an op without options leaves
    out `parse` (its attrs are NoAttrs). `opdef` picks a subclass (ops.control.ContextOpDef);
    `fields` are the rarer fields (foldable, the subclass's own)."""
    return register(opdef(name=name, parse=parse, infer=infer, reference=reference, kind=kind,
                          cost=cost, expr=expr, shape_inputs=shape_inputs, bind=bind, **fields))


# ---- fused activations ---------------------------------------------------------------------------

ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
# LiteRT's kernels turn a fused activation into a clamp range (CalculateActivationRange); TANH and
# SIGN_BIT have none, so kernels that only clamp skip them (or reject them, FULLY_CONNECTED)
CLAMPING_ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6")


def clamping_activation(act: str) -> str:
    """The clamp a kernel applies for fused activation `act` ("NONE" for TANH and SIGN_BIT)."""
    return act if act in CLAMPING_ACTIVATIONS else "NONE"


def activation_name(code: int) -> str:
    try:
        return ACTIVATIONS[int(code)]
    except KeyError:
        raise OpError(f"unknown fused activation function {code}") from None


def apply_activation(x: np.ndarray, act: str) -> np.ndarray:
    """TFLite's fused activation: a clamp (or tanh/sign) applied after bias, in float."""
    if act == "NONE":
        return x
    if act == "RELU":
        return np.maximum(x, x.dtype.type(0))
    if act == "RELU6":
        return np.clip(x, np.float32(0), np.float32(6))
    if act == "RELU_N1_TO_1":
        return np.clip(x, np.float32(-1), np.float32(1))
    if act == "TANH":
        return np.tanh(x)
    if act == "SIGN_BIT":
        return np.signbit(x).astype(x.dtype)
    raise OpError(f"unsupported fused activation {act}")


# ---- sizes and costs -----------------------------------------------------------------------------

def numel(shape: Sequence[int] | None) -> int:
    """Element count of a shape; 0 for an omitted (None) tensor."""
    return 0 if shape is None else int(np.prod(shape, dtype=np.int64))


def c_strides(shape: Sequence[int]) -> list[int]:
    """Element strides of a C-order (row-major) array of `shape`: what generated kernels index
    flat buffers with."""
    out, n = [], 1
    for d in reversed(shape):
        out.append(n)
        n *= int(d)
    return out[::-1]


def float_bytes(shapes: Iterable[Sequence[int] | None]) -> float:
    """Bytes of float32 tensors of these shapes (omitted ones count 0): what a kernel that reads
    its inputs and writes its outputs once moves."""
    return 4.0 * sum(numel(s) for s in shapes)


def elementwise_cost(in_shapes: list, out_shapes: list, attrs: Any, flops_per: float = 1.0) -> Cost:
    n_out = sum(int(np.prod(s)) for s in out_shapes)
    n_in = sum(int(np.prod(s)) for s in in_shapes if s is not None)
    return Cost(flops=flops_per * n_out, bytes=4.0 * (n_in + n_out))


def movement_cost(in_shapes: list, out_shapes: list, attrs: Any) -> Cost:
    n_out = sum(int(np.prod(s)) for s in out_shapes)
    return Cost(flops=0.0, bytes=8.0 * n_out)


# ---- shape rules ---------------------------------------------------------------------------------

def broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...], op_name: str) -> tuple[int, ...]:
    """NumPy/TFLite broadcasting, with an OpError naming the shapes (never a numpy traceback)."""
    n = max(len(a), len(b))
    a2 = (1,) * (n - len(a)) + tuple(a)
    b2 = (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a2, b2):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise OpError(f"{op_name}: shapes {list(a)} and {list(b)} cannot be broadcast")
    return tuple(out)


def need(ctx: InferCtx, n: int, what: str = "") -> None:
    """The first n inputs are present."""
    if len(ctx.shapes) < n or any(ctx.shapes[i] is None for i in range(n)):
        raise OpError(f"{ctx.op_name}: expected {n} input(s){what}, got "
                      f"{sum(s is not None for s in ctx.shapes)}")


def shape_of(ctx: InferCtx, i: int) -> tuple[int, ...] | None:
    """Input i's shape; None when it is omitted or past the op's inputs."""
    return tuple(ctx.shapes[i]) if i < len(ctx.shapes) and ctx.shapes[i] is not None else None


def type_names(types: Iterable[Any]) -> str:
    return ", ".join(np.dtype(t).name for t in types)


def check_type(ctx: InferCtx, i: int, what: str, types: Sequence[Any]) -> np.dtype:
    """Input i's dtype, which must be one of `types`."""
    dt = np.dtype(ctx.dtypes[i])
    if dt not in types:
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' has type {dt.name}; supported: {type_names(types)}")
    return dt


def int_values(ctx: InferCtx, i: int, what: str, types: tuple[np.dtype, ...] = INDEX_TYPES) -> np.ndarray:
    """The value of integer input i (Dynamic when only known at run time), as int64."""
    dt = np.dtype(ctx.dtypes[i])
    if dt not in types:
        raise OpError(f"{ctx.op_name}: {what} '{ctx.name(i)}' has type {dt.name}; it must be "
                      f"{' or '.join(t.name for t in types)}")
    return np.asarray(ctx.value(i, what)).astype(np.int64)


def norm_axis(axis: int, rank: int, op: str, what: str = "axis") -> int:
    """A possibly negative axis as an index in [0, rank)."""
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise OpError(f"{op}: {what} {axis} is out of range for a rank-{rank} input "
                      f"(valid: {-rank}..{rank - 1})")
    return a


def same_dtype_out(ctx: InferCtx, shape: Sequence[int]) -> list[ShapeDtype]:
    """One output of this shape with input 0's dtype."""
    return [(tuple(int(d) for d in shape), np.dtype(ctx.dtypes[0]))]


def ctx_from_arrays(name: str, attrs: Any, inputs: Sequence[Any]) -> InferCtx:
    """An InferCtx over concrete arrays, so that reference() reuses the shape rule (infer() and
    reference() then never disagree)."""
    arrs = [None if a is None else np.asarray(a) for a in inputs]
    return InferCtx(op_name=name, attrs=attrs,
                    shapes=[None if a is None else a.shape for a in arrs],
                    dtypes=[None if a is None else a.dtype for a in arrs],
                    values=arrs)


def contig(x: Any) -> np.ndarray:
    """A C-contiguous copy that keeps rank 0 (np.ascontiguousarray would make it 1-D)."""
    return np.array(x, order="C", copy=True)
