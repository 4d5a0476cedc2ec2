"""Custom ops written in Python: a NumPy function or a Numba ``@njit`` function.

A model's custom op (``op.is_custom``, e.g. made by the converter with ``allow_custom_ops``) is
found like a builtin once registered, globally or for one interpreter::

    import numpy as np
    import tflite_jit

    def my_scale(x, options):            # one array per op input, then the decoded options
        return x * np.float32(options["alpha"])

    tflite_jit.register_custom_op("MyScale", kernel=my_scale)          # every interpreter
    it = tflite_jit.Interpreter(model_content=model)                     # finds MyScale

    it = tflite_jit.Interpreter(model_content=model,                     # this interpreter only
                                custom_ops={"MyScale": my_scale})
    it = tflite_jit.InterpreterWithCustomOps(                            # LiteRT's spelling
        custom_op_registerers=[tflite_jit.CustomOp("MyScale", my_scale)], model_content=model)

The kernel returns one array per output (a single array or a list/tuple). ``options`` is the
op's flexbuffer custom options decoded to a dict (``{}`` when there are none). An ``@njit``
kernel cannot take a dict: it gets the options as a namedtuple (``options.alpha``) holding the
scalar and array entries (lists become arrays; keys that are not identifiers are dropped).

Output shapes and dtypes: by default those the model declares for the op's output tensors;
``shape_fn(input_shapes, options) -> [shape per output]`` and ``dtype_fn(input_dtypes,
options) -> [numpy dtype per output]`` compute them instead (needed when inputs are resized).
A kernel that raises, or returns the wrong number, shape or dtype of outputs, fails the invoke
with a RuntimeError naming the node. A custom op nobody registered still fails at
``allocate_tensors()`` with LiteRT's 'Encountered unresolved custom op' RuntimeError.

MediaPipe's custom ops (Convolution2DTransposeBias, MaxPoolingWithArgmax2D, MaxUnpooling2D,
TransformTensorBilinear, TransformLandmarks, Landmarks2TransformMatrix) are built in
(``tflite_jit.ops.mediapipe``), as MediaPipe's own op resolver adds them; registering one of
those names overrides ours, and unregistering it brings ours back.

Custom ops run on the reference (NumPy) backend; they are never evaluated at plan time, even
on constant inputs.
"""

from __future__ import annotations

import collections
import keyword
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ir.model import BUILTIN_CODES
from tflite_jit.ops.base import InferCtx, OpDef, OpError, register, registered, unregister
from tflite_jit.ops.mediapipe import MEDIAPIPE_OPS


@dataclass(frozen=True)
class CustomOp:
    """A custom op specification: what `register_custom_op` registers, what `custom_ops=`
    and `custom_op_registerers=` accept."""

    name: str
    kernel: Callable[..., Any]
    shape_fn: Callable[[list[tuple[int, ...]], dict[str, Any]], Sequence[Sequence[int]]] | None = None
    dtype_fn: Callable[[list[np.dtype], dict[str, Any]], Sequence[Any]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"custom op name must be a non-empty string, got {self.name!r}")
        if not callable(self.kernel):
            raise TypeError(f"custom op {self.name}: kernel must be callable, got {type(self.kernel).__name__}")
        for what in ("shape_fn", "dtype_fn"):
            f = getattr(self, what)
            if f is not None and not callable(f):
                raise TypeError(f"custom op {self.name}: {what} must be callable")


@dataclass(frozen=True)
class CustomOpDef(OpDef):
    """The OpDef of a Python custom op (found by name like a builtin's); never evaluated at plan
    time, even on constant inputs."""

    foldable: bool = False


@dataclass
class _Attrs:
    options: dict[str, Any]
    njit_options: Any = None
    declared: list[tuple[tuple[int, ...], np.dtype]] | None = None


def _is_njit(f: Any) -> bool:
    return hasattr(f, "py_func") and hasattr(f, "signatures")  # a numba Dispatcher


def _njit_options(options: dict[str, Any]) -> Any:
    fields, values = [], []
    for k, v in options.items():
        if not (isinstance(k, str) and k.isidentifier() and not keyword.iskeyword(k)):
            continue
        if isinstance(v, (list, tuple)):
            v = np.asarray(v)
        if isinstance(v, (bool, int, float, str, np.ndarray, np.generic)):
            fields.append(k)
            values.append(v)
    return collections.namedtuple("CustomOptions", fields)(*values)


def _opdef(spec: CustomOp) -> CustomOpDef:
    name = spec.name
    njit = _is_njit(spec.kernel)

    def parse(options: dict[str, Any]) -> _Attrs:
        opts = dict(options)
        return _Attrs(opts, _njit_options(opts) if njit else None)

    def bind(a: _Attrs, ins: list, outs: list) -> _Attrs:
        return _Attrs(a.options, a.njit_options, [(tuple(t.shape), np.dtype(t.dtype)) for t in outs])

    def expected(a: _Attrs, shapes: list, dtypes: list) -> list[tuple[tuple[int, ...], np.dtype]]:
        declared = a.declared or []
        if spec.shape_fn is not None:
            got = [tuple(int(d) for d in s) for s in spec.shape_fn(list(shapes), dict(a.options))]
        else:
            got = [s for s, _ in declared]
        if spec.dtype_fn is not None:
            dts = [np.dtype(d) for d in spec.dtype_fn(list(dtypes), dict(a.options))]
        else:
            dts = [d for _, d in declared]
        if len(got) != len(dts):
            raise OpError(f"custom op {name}: shape_fn gives {len(got)} outputs, dtypes {len(dts)}")
        return list(zip(got, dts))

    def infer(ctx: InferCtx) -> list:
        try:
            return expected(ctx.attrs, [tuple(s) if s is not None else None for s in ctx.shapes],
                            list(ctx.dtypes))
        except OpError:
            raise
        except Exception as e:
            raise OpError(f"custom op {name}: shape_fn/dtype_fn raised {type(e).__name__}: {e}") from e

    def reference(inputs: Sequence[np.ndarray | None], a: _Attrs) -> list[np.ndarray]:
        try:
            out = spec.kernel(*inputs, a.njit_options if njit else dict(a.options))
        except Exception as e:
            raise OpError(f"custom op {name}: kernel raised {type(e).__name__}: {e}") from e
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        want = expected(a, [None if x is None else tuple(np.shape(x)) for x in inputs],
                        [None if x is None else np.asarray(x).dtype for x in inputs])
        if len(outs) != len(want):
            raise OpError(f"custom op {name}: kernel returned {len(outs)} outputs, the node has {len(want)}")
        result = []
        for j, (o, (shape, dtype)) in enumerate(zip(outs, want)):
            o = np.asarray(o)
            if o.shape != tuple(shape) or o.dtype != dtype:
                raise OpError(f"custom op {name}: kernel output {j} has shape {list(o.shape)} "
                              f"{o.dtype.name}, expected {list(shape)} {np.dtype(dtype).name}")
            result.append(o)
        return result

    return CustomOpDef(name=name, parse=parse, infer=infer, reference=reference, bind=bind)


def as_spec(name: str, value: Any) -> CustomOp:
    """A `custom_ops=` value: a CustomOp (its name must match) or a kernel callable."""
    if isinstance(value, CustomOp):
        if value.name != name:
            raise ValueError(f"custom_ops key {name!r} names a CustomOp called {value.name!r}")
        return value
    return CustomOp(name, value)


def opdefs(specs: Mapping[str, Any] | Sequence[CustomOp]) -> dict[str, CustomOpDef]:
    """name -> OpDef for an interpreter's own custom ops."""
    items = specs.items() if isinstance(specs, Mapping) else [(s.name, s) for s in specs]
    out = {}
    for name, value in items:
        spec = as_spec(name, value)
        out[spec.name] = _opdef(spec)
    return out


def register_custom_op(name: str, *, kernel: Callable[..., Any],
                       shape_fn: Callable[..., Any] | None = None,
                       dtype_fn: Callable[..., Any] | None = None) -> CustomOp:
    """Register a Python custom op for every interpreter (see the module docstring). Registering
    a name again replaces it; builtin op names are refused."""
    if name in BUILTIN_CODES:
        raise ValueError(f"{name} is a builtin op; custom ops need a name of their own")
    spec = CustomOp(name, kernel, shape_fn, dtype_fn)
    register(_opdef(spec))
    return spec


def unregister_custom_op(name: str) -> None:
    """Remove a custom op registered with `register_custom_op` (nothing if there is none); a
    built-in MediaPipe op of that name (tflite_jit.ops.mediapipe) comes back."""
    if isinstance(registered(name), CustomOpDef):
        unregister(name)
        builtin = MEDIAPIPE_OPS.get(name)
        if builtin is not None:
            register(builtin)
