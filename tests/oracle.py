"""LiteRT as the test oracle: run models on its kernels and compare under the correctness contract.

Float contract (DESIGN.md): relative max error <= 1e-4, i.e. max|ours - theirs| <= 1e-4 * max(1, max|theirs|).
Integer and bool outputs must match exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

FLOAT_RTOL = 1e-4


def _litert():
    from ai_edge_litert import interpreter as lite

    return lite


def litert_interpreter(model: bytes, resolver: str = "builtin", **kw: Any):
    lite = _litert()
    rtype = {"builtin": lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
             "xnnpack": lite.OpResolverType.AUTO,
             "ref": lite.OpResolverType.BUILTIN_REF}[resolver]
    return lite.Interpreter(model_content=model, experimental_op_resolver_type=rtype, **kw)


def litert_run(model: bytes, inputs: Sequence[np.ndarray], resolver: str = "builtin") -> list[np.ndarray]:
    """Run subgraph 0 on LiteRT with the given inputs (resized to their shapes); return outputs."""
    return feed_run(litert_interpreter(model, resolver), inputs)


def feed_run(it: Any, inputs: Sequence[Any]) -> list[np.ndarray]:
    """Resize to the inputs' shapes, allocate, set, invoke; the outputs. Works on LiteRT's
    interpreter and ours alike."""
    details = it.get_input_details()
    for d, x in zip(details, inputs):
        if tuple(d["shape"]) != np.shape(x):
            it.resize_tensor_input(d["index"], list(np.shape(x)))
    it.allocate_tensors()
    for d, x in zip(details, inputs):
        it.set_tensor(d["index"], np.asarray(x))
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def assert_close(ours: np.ndarray, theirs: np.ndarray, rtol: float = FLOAT_RTOL, what: str = "") -> None:
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{what} shape {ours.shape} != LiteRT {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what} dtype {ours.dtype} != LiteRT {theirs.dtype}"
    if theirs.dtype.kind in "fc":
        assert np.array_equal(np.isnan(ours), np.isnan(theirs)), f"{what} NaN positions differ"
        fin = np.isfinite(theirs)
        assert np.array_equal(ours[~fin & ~np.isnan(theirs)], theirs[~fin & ~np.isnan(theirs)]), \
            f"{what} infinities differ"
        if fin.any():
            wide = np.complex128 if theirs.dtype.kind == "c" else np.float64  # keep imaginary parts
            err = float(np.max(np.abs(ours[fin].astype(wide) - theirs[fin])))
            scale = max(1.0, float(np.max(np.abs(theirs[fin]))))
            assert err <= rtol * scale, f"{what} max abs error {err:.3g} > {rtol:g} * {scale:.3g}"
    else:
        assert np.array_equal(ours, theirs), f"{what} differs: {np.count_nonzero(ours != theirs)} elements"


def assert_same(ours: Sequence[np.ndarray], theirs: Sequence[np.ndarray]) -> None:
    """Exact equality of output lists, dtype and shape included (strings, integers)."""
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype, (a.dtype, b.dtype)
        assert a.shape == b.shape, (a.shape, b.shape)
        assert a.tolist() == b.tolist(), (a, b)


def raw_options(options: dict[str, Any]) -> dict[str, Any]:
    """Builder-style options (enum names allowed) as the raw ints an options table holds."""
    from tflite_jit.format.schema import FIELD_ENUMS, enum_values

    return {k: (enum_values(FIELD_ENUMS[k])[v] if isinstance(v, str) and k in FIELD_ENUMS else v)
            for k, v in options.items()}


@dataclass
class Const:
    """An input stored as a constant tensor (plain arrays are graph inputs fed at run time)."""

    value: np.ndarray


def spec_model(op: str, specs: list, n_outputs: int = 1, **options: Any) -> tuple[bytes, list[np.ndarray]]:
    """The one-op model for specs (arrays are graph inputs, Const constants, None omitted inputs;
    output shapes from our shape rule) and the feeds for its graph inputs."""
    specs = [s if s is None or isinstance(s, Const) else np.asarray(s) for s in specs]
    model_inputs = [None if s is None else s.value if isinstance(s, Const) else (s.shape, s.dtype)
                    for s in specs]
    model = one_op_model(op, model_inputs, n_outputs=n_outputs, **options)
    return model, [s for s in specs if isinstance(s, np.ndarray)]


def run_both(op: str, specs: list, n_outputs: int = 1, **options: Any) -> tuple[list, list]:
    """(our reference kernel's outputs, LiteRT builtin's outputs) for one op on these inputs."""
    from tflite_jit.ops import get

    theirs = litert_run(*spec_model(op, specs, n_outputs, **options))
    opdef = get(op)
    arrays = [None if s is None else s.value if isinstance(s, Const) else np.asarray(s) for s in specs]
    ours = opdef.reference(arrays, opdef.parse(raw_options(options)))
    return ours, theirs


def check_reference(op: str, specs: list, n_outputs: int = 1, **options: Any) -> list:
    """Our reference kernel against LiteRT's builtin (run_both); our outputs."""
    ours, theirs = run_both(op, specs, n_outputs=n_outputs, **options)
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        assert_close(o, t, what=op)
    return ours


@dataclass
class State:
    """A zero-initialised variable tensor of this shape (an op's recurrent state, as converted
    models keep it)."""

    shape: tuple[int, ...]
    dtype: Any = np.float32


def one_op_model(op_name: str, inputs: Sequence[Any], n_outputs: int | None = 1, *,
                 custom: bool = False, outputs: Sequence[tuple[Any, Any]] | None = None,
                 **options: Any) -> bytes:
    """A model with one op. Each input is (shape, dtype) for a graph input, an ndarray for a
    constant, a State for a variable tensor, or None for an omitted optional input. Output shapes
    come from the op's infer() (the first n_outputs, None: all), or are the declared `outputs`
    (shape, dtype)s (for inputs our shape rule rejects, so that the error shows at allocate
    time)."""
    from tflite_jit import ops
    from tflite_jit.format.builder import ModelBuilder

    mb = ModelBuilder()
    g = mb.subgraph()
    ids, shapes, dtypes, values = [], [], [], []
    for i, spec in enumerate(inputs):
        if spec is None:
            ids.append(-1)
            shapes.append(None)
            dtypes.append(None)
            values.append(None)
        elif isinstance(spec, np.ndarray):
            ids.append(g.const(f"c{i}", spec))
            shapes.append(spec.shape)
            dtypes.append(spec.dtype)
            values.append(spec)
        elif isinstance(spec, State):
            ids.append(g.tensor(f"state{i}", spec.shape, spec.dtype, is_variable=True))
            shapes.append(tuple(spec.shape))
            dtypes.append(np.dtype(spec.dtype))
            values.append(None)
        else:
            shape, dtype = spec
            ids.append(g.input(f"in{i}", shape, dtype))
            shapes.append(tuple(shape))
            dtypes.append(np.dtype(dtype))
            values.append(None)
    if outputs is None:
        opdef = ops.get(op_name)
        ctx = ops.InferCtx(op_name=op_name, attrs=opdef.parse(raw_options(options)), shapes=shapes,
                           dtypes=dtypes, values=values)
        outputs = opdef.infer(ctx)[:n_outputs]
    outs = [g.tensor(f"out{j}", shape, dtype) for j, (shape, dtype) in enumerate(outputs)]
    g.op(op_name, ids, outs, custom=custom, **options)
    g.output(*outs)
    return mb.build()


def infer(op: str, specs: list, **options: Any) -> list:
    """Our shape rule on specs: arrays count as run-time inputs, Const as known values, None as an
    omitted input."""
    from tflite_jit.ops import InferCtx, get

    opdef = get(op)
    arrs = [None if s is None else s.value if isinstance(s, Const) else np.asarray(s) for s in specs]
    ctx = InferCtx(op_name=op, attrs=opdef.parse(raw_options(options)),
                   shapes=[None if a is None else a.shape for a in arrs],
                   dtypes=[None if a is None else a.dtype for a in arrs],
                   values=[s.value if isinstance(s, Const) else None for s in specs],
                   tensor_names=[f"t{i}" for i in range(len(specs))])
    return opdef.infer(ctx)


# ---- declared-output models, runs of our interpreter, checks on both backends ----------------

def declared_op_model(op: str, specs: list, outs: list, **options) -> bytes:
    """One op; specs are graph inputs (arrays) or Const; outs are the declared (shape, dtype)s
    (unlike one_op_model, which asks the op's shape rule)."""
    inputs = [s.value if isinstance(s, Const) else (s.shape, s.dtype) for s in specs]
    return one_op_model(op, inputs, outputs=outs, **options)


def run_interpreter(it, feeds: list) -> list:
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), feeds):
        it.set_tensor(d["index"], x)
    it.invoke()
    res = []
    for d in it.get_output_details():
        # LiteRT's get_tensor raises "Invalid tensor size" on an empty run-time sized result
        res.append(it.get_tensor(d["index"]) if np.prod(d["shape"]) else np.zeros(d["shape"], d["dtype"]))
    return res


def run_seq(it: Any, feeds: Sequence[Sequence[np.ndarray]]) -> list[list[np.ndarray]]:
    """Allocate (at the declared shapes), then one invoke per entry of feeds; every output after
    each (state carries over between invokes). Works on LiteRT's interpreter and ours alike."""
    it.allocate_tensors()
    outs = []
    for feed in feeds:
        for d, x in zip(it.get_input_details(), feed):
            it.set_tensor(d["index"], x)
        it.invoke()
        outs.append([it.get_tensor(d["index"]) for d in it.get_output_details()])
    return outs


def run_engine(model: bytes, feeds: Sequence[np.ndarray], backend: str | None = None,
               **kw: Any) -> tuple[list[np.ndarray], list[str]]:
    """Our interpreter on one model (backend None: the default chain, as a user gets it),
    allocated at its declared shapes (no resize: a feed of another shape is an error), fed,
    invoked once. Returns every output and the backend that ran each step of subgraph 0, which is
    how a test tells what compiled from what fell back."""
    from tflite_jit import Interpreter

    it = Interpreter(model_content=model, backend=backend, **kw)
    (outs,) = run_seq(it, [feeds])
    return outs, [s.backend for s in it._interpreter.execs[0].steps]


def chain_model(inputs: dict[str, tuple[Any, Any]], steps: Sequence[tuple]) -> bytes:
    """Graph inputs {name: (shape, dtype)} and a chain of ops, each step (op, *operands[, options
    dict]) where an operand names an input or "t", the previous step's result; the last result is
    the one output. Output shapes come from the ops' shape rules."""
    from tflite_jit.format.builder import ModelBuilder

    mb = ModelBuilder()
    g = mb.subgraph()
    env = {name: g.input(name, shape, dtype) for name, (shape, dtype) in inputs.items()}
    for op, *operands in steps:
        options = operands.pop() if operands and isinstance(operands[-1], dict) else {}
        (env["t"],) = g.apply(op, [env[a] for a in operands], **options)
    g.output(env["t"])
    return mb.build()


def check_one_fused_kernel(model: bytes, feeds: Sequence[np.ndarray]) -> None:
    """A chain of element-wise ops under `fusion="elementwise"`: LiteRT's single output, computed
    by one Numba kernel."""
    (theirs,) = litert_run(model, feeds)
    outs, steps = run_engine(model, feeds, "numba", fusion="elementwise")
    assert_close(outs[0], theirs)
    assert steps == ["numba_cpu"], "the chain should be one Numba kernel"


def check_backends(op: str, feeds: Sequence[np.ndarray], **options: Any) -> set[str]:
    """One op on graph inputs: the Numba and the reference backend against LiteRT; the backends
    that ran the Numba run's steps (for the caller's compiled-or-not assertion)."""
    model = one_op_model(op, [(x.shape, x.dtype) for x in feeds], **options)
    (theirs,) = litert_run(model, feeds)
    outs, steps = run_engine(model, feeds, "numba")
    assert_close(outs[0], theirs, what=f"{op} numba")
    outs, _ = run_engine(model, feeds, "reference")
    assert_close(outs[0], theirs, what=f"{op} reference")
    return set(steps)


def check_differential(op: str, specs: list, n_outputs: int = 1, **options: Any) -> None:
    """LiteRT vs our reference kernel vs both interpreter backends, on the model one_op_model
    builds (output shapes from our shape rule). specs as for run_both."""
    ours, theirs = run_both(op, specs, n_outputs=n_outputs, **options)
    for o, t in zip(ours, theirs):
        assert_close(o, t, what=f"{op} reference")
    model, feeds = spec_model(op, specs, n_outputs, **options)
    for backend in ("numba", "reference"):
        for o, t in zip(run_engine(model, feeds, backend)[0], theirs):
            assert_close(o, t, what=f"{op} {backend}")


def litert_rejects(model: bytes, feeds: Sequence[np.ndarray] = ()) -> None:
    """LiteRT refuses the model: allocate, feed or invoke raises."""
    it = litert_interpreter(model)
    with pytest.raises(RuntimeError):
        it.allocate_tensors()
        for d, x in zip(it.get_input_details(), feeds):
            it.set_tensor(d["index"], x)
        it.invoke()


def both_reject(model: bytes, feeds: Sequence[np.ndarray], match: str, litert_too: bool = True, *,
                backends: Sequence[str | None] = ("numba", "reference"),
                errors: Any = (ValueError, RuntimeError)) -> None:
    """Each of our `backends` rejects the model (at allocate or invoke) with `errors` whose message
    matches `match`; `litert_too`: LiteRT rejects it as well (else it runs undefined behaviour,
    e.g. reads out of bounds)."""
    if litert_too:
        litert_rejects(model, feeds)
    for backend in backends:
        with pytest.raises(errors, match=match):
            run_engine(model, feeds, backend)


def assert_both_reject(model: bytes, feeds: Sequence[np.ndarray], match: str) -> None:
    """The quantized kernels' contract: LiteRT refuses the model (at prepare or invoke); our
    default interpreter refuses it with a RuntimeError whose message names the problem."""
    both_reject(model, feeds, match, backends=(None,), errors=RuntimeError)


def assert_bit_exact(model: bytes, feeds: Sequence[np.ndarray],
                     backends: Sequence[str | None] = (None,)) -> None:
    """Every output equal to LiteRT's, dtype and shape included (integer kernels), on each of our
    backends (None: the default chain)."""
    theirs = litert_run(model, feeds)
    for backend in backends:
        ours, _ = run_engine(model, feeds, backend)
        assert len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            assert o.dtype == t.dtype and o.shape == t.shape, (backend, o.dtype, o.shape, t.dtype, t.shape)
            np.testing.assert_array_equal(o, t, err_msg=f"backend {backend or 'default'}")


def check_all_backends(op: str, specs: list, n_outputs: int = 1, **options) -> list:
    """Reference kernel, and the interpreter on both backends, against LiteRT. Declared output
    shapes come from the reference (run-time sized outputs are resized by both runtimes)."""
    from tflite_jit import Interpreter, ops

    opdef = ops.get(op)
    arrays = [s.value if isinstance(s, Const) else s for s in specs]
    ours = opdef.reference(arrays, opdef.parse(raw_options(options)))
    model = declared_op_model(op, specs, [(a.shape, a.dtype) for a in ours], **options)
    feeds = [s for s in specs if not isinstance(s, Const)]
    theirs = run_interpreter(litert_interpreter(model), feeds)
    assert len(ours) == len(theirs) == n_outputs
    for a, b in zip(ours, theirs):
        assert_close(a, b, what=op)
    for backend in ("numba", "reference"):
        got = run_interpreter(Interpreter(model_content=model, backend=backend), feeds)
        for a, b in zip(got, theirs):
            assert_close(a, b, what=f"{op} ({backend})")
    return theirs


def rand_data(rng, shape, dtype, lo=-5, hi=6) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(lo, hi, shape).astype(dtype)
