"""The op definition record and the registry every backend reads.

One `OpDef` per builtin: how to read its options, its shape/dtype rule, its NumPy reference
kernel (the oracle and the fallback), its fusion pattern kind and its cost. Backends never
re-derive semantics; they look the op up here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tflite_jit.ops.families import load_all


class OpError(Exception):
    """An op cannot run with these inputs/attributes. The caller adds node index and op name
    and re-raises as the exception type LiteRT uses at that stage."""


class PatternKind(enum.IntEnum):
    """TVM-style fusion pattern kinds, ordered from most to least fusable."""

    ELEMWISE = 0
    BROADCAST = 1
    INJECTIVE = 2
    REDUCTION = 3
    OUT_ELEMWISE_FUSABLE = 4  # conv / fc / matmul / pool: accepts an elementwise epilogue
    OPAQUE = 8


@dataclass(frozen=True)
class Cost:
    flops: float
    bytes: float


@dataclass
class InferCtx:
    """What a shape rule may look at: the op's inputs as shapes, dtypes and, where known at plan
    time, values (constants and folded shape arithmetic)."""

    op_name: str
    attrs: Any
    shapes: list[tuple[int, ...] | None]  # None for an omitted optional input
    dtypes: list[Any]  # numpy dtype objects (None for omitted)
    values: list[np.ndarray | None]  # known values, else None
    tensor_names: list[str] = field(default_factory=list)

    def value(self, i: int, what: str) -> np.ndarray:
        """A value the output shape depends on; raises Dynamic if it is only known at run time."""
        if i >= len(self.values) or self.values[i] is None:
            raise Dynamic(f"{self.op_name}: output shape depends on the run-time value of {what}")
        return self.values[i]

    def name(self, i: int) -> str:
        return self.tensor_names[i] if i < len(self.tensor_names) else f"input {i}"


class Dynamic(Exception):
    """Raised by a shape rule whose answer depends on data not known at plan time."""


ShapeDtype = tuple[tuple[int, ...], Any]


@dataclass(frozen=True)
class OpDef:
    name: str
    # options dict (schema field names, as read) -> attrs object the other functions take
    parse: Callable[[dict[str, Any]], Any]
    # -> [(shape, numpy dtype)] per output; raises OpError on contradictions, Dynamic if unknowable
    infer: Callable[[InferCtx], list[ShapeDtype]]
    # (inputs as ndarrays, None for omitted optional inputs, attrs) -> outputs
    reference: Callable[[Sequence[np.ndarray | None], Any], list[np.ndarray]]
    kind: PatternKind = PatternKind.OPAQUE
    # (input shapes, output shapes, attrs) -> Cost
    cost: Callable[[list, list, Any], Cost] | None = None
    # scalar expression for elementwise ops (see ops.expr), read by code-generating backends
    expr: Any = None
    # Shape inputs: the indices of the inputs read only for their value, whole and on the host,
    # because it decides the output shape, the axes or the paddings (RESHAPE's shape, MEAN's and
    # CUMSUM's axes, PAD's paddings, SPLIT's axis, RANGE's bounds); never inputs whose elements the
    # kernel computes on, even when their values decide the output shape too (WHERE's condition,
    # UNIQUE's input, SEGMENT_SUM's ids). The shape rule reads them with ctx.value; backends keep
    # them host-side (a kernel bakes their value in) and the planner does not count them as data
    # moved to a device.
    shape_inputs: tuple[int, ...] = ()
    # (attrs, input Tensors, output Tensors) -> attrs: binds what the options table does not
    # carry but the kernel needs, e.g. quantization parameters (DEQUANTIZE, quantized ops)
    bind: Callable[[Any, list, list], Any] | None = None
    # False for ops with state or side effects (random numbers, control flow, custom ops): the
    # planner never evaluates them at plan time, even on constant inputs
    foldable: bool = True
    # (attrs, the node's intermediate Tensors) -> attrs, after bind: for nodes whose file lists
    # `intermediates` carrying quantization the kernel needs (the integer LSTM's hidden scale)
    bind_intermediates: Callable[[Any, list], Any] | None = None


_REGISTRY: dict[str, OpDef] = {}


def register(opdef: OpDef) -> OpDef:
    """Make `opdef` the definition of its name (replacing any earlier one)."""
    _REGISTRY[opdef.name] = opdef
    return opdef


def unregister(name: str) -> None:
    """Forget the definition of `name` (nothing if there is none)."""
    _REGISTRY.pop(name, None)


def registered(name: str) -> OpDef | None:
    """The definition registered under `name` so far, without loading the op families: for a
    family that extends an op defined by a module it imports (the order in which families attach
    quantized kernels is their import order, so looking an op up must not import the others)."""
    return _REGISTRY.get(name)


@dataclass(frozen=True)
class Quantized:
    """Base of the attrs a quantized kernel binds: `base` is the float op's attrs (the shape rule
    and options are shared), subclasses add the integer parameters the kernel needs."""

    base: Any


@dataclass(frozen=True)
class QuantizedKernel:
    """The integer semantics of an op whose float definition is registered already.

    `bind(float_attrs, input Tensors, output Tensors)` returns a `Quantized` attrs object when the
    node is quantized (else None: the float kernel runs); `check(ctx)` adds the quantized
    shape/parameter checks (ctx.attrs is the Quantized object) after the float shape rule ran;
    `reference` computes the outputs from the integer arrays; `infer`, when given, is the whole
    shape rule of quantized nodes (for float rules that reject integer types)."""

    bind: Callable[[Any, list, list], Quantized | None]
    reference: Callable[[Sequence[np.ndarray | None], Any], list[np.ndarray]]
    check: Callable[[InferCtx], None] | None = None
    # replaces the float shape rule for quantized nodes (when the float rule rejects int types)
    infer: Callable[[InferCtx], list] | None = None
    # replaces the op's parse, for options only the quantized kernel reads (hybrid ops'
    # asymmetric_quantize_inputs); must return attrs the float functions still accept
    parse: Callable[[dict[str, Any]], Any] | None = None


def add_quantized(name: str, qk: QuantizedKernel) -> OpDef:
    """Give the registered op `name` its quantized kernel. The op stays ONE definition: parse,
    shape rule, kind and cost are the float op's; bind decides per node which kernel runs, and
    infer/reference/cost dispatch on the attrs type, so backends that only know float kernels see
    an ordinary op (the Numba backend leaves integer outputs to `reference`)."""
    f = _REGISTRY[name]
    owned: set[type] = set()  # the attrs types THIS kernel bound (kernels may be stacked)

    def bind(a: Any, ins: list, outs: list) -> Any:
        fa = f.bind(a, ins, outs) if f.bind else a
        if isinstance(fa, Quantized):  # a kernel attached earlier claimed the node
            return fa
        q = qk.bind(fa, ins, outs)
        if q is None:
            return fa
        owned.add(type(q))
        return q

    def infer(ctx: InferCtx) -> list:
        if type(ctx.attrs) not in owned:
            return f.infer(ctx)
        if qk.infer is not None:
            return qk.infer(ctx)
        fctx = InferCtx(ctx.op_name, ctx.attrs.base, ctx.shapes, ctx.dtypes, ctx.values, ctx.tensor_names)
        out = f.infer(fctx)
        if qk.check is not None:
            qk.check(ctx)
        return out

    def reference(inputs: Sequence[np.ndarray | None], a: Any) -> list[np.ndarray]:
        return qk.reference(inputs, a) if type(a) in owned else f.reference(inputs, a)

    def cost(ins: list, outs: list, a: Any) -> Cost:
        return f.cost(ins, outs, a.base) if type(a) in owned else f.cost(ins, outs, a)

    def expr(a: Any) -> Any:
        if isinstance(a, Quantized):
            raise OpError(f"{name}: a quantized node has no float expression")
        return f.expr(a)

    merged = replace(f, parse=qk.parse or f.parse, bind=bind, infer=infer, reference=reference,
                     cost=None if f.cost is None else cost, expr=None if f.expr is None else expr)
    _REGISTRY[name] = merged
    return merged


def get(name: str) -> OpDef | None:
    """The definition of op `name`, every op family loaded (None if no family defines it)."""
    load_all()
    return _REGISTRY.get(name)


def all_ops() -> dict[str, OpDef]:
    load_all()
    return dict(_REGISTRY)
