"""Python custom ops (tflite_jit.custom_ops): global and per-interpreter registration, decoded
flexbuffer options, shape_fn / dtype_fn, @njit kernels, and the errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from flatbuffers import flexbuffers

import tflite_jit
from tflite_jit.format.builder import ModelBuilder

F = np.float32


def custom_model(name: str = "MyScale", options: dict | None = None, in_shape: tuple = (2, 3),
                 out_shape: tuple | None = None, n_out: int = 1, signature: tuple | None = None) -> bytes:
    """x -> custom op -> RELU (a builtin consumer after it)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", in_shape, F, shape_signature=signature)
    out_sig = None if signature is None else (*signature[:-1], (out_shape or in_shape)[-1])
    outs = [g.tensor(f"c{j}", out_shape or in_shape, F, shape_signature=out_sig) for j in range(n_out)]
    raw = bytes(flexbuffers.Dumps(options)) if options is not None else None
    g.op(name, [x], outs, custom=True, custom_options=raw)
    y = g.tensor("y", out_shape or in_shape, F, shape_signature=out_sig)
    g.op("RELU", [outs[0]], [y])
    g.output(y, *outs[1:])
    return mb.build()


def _run(it: Any, x: np.ndarray) -> list[np.ndarray]:
    d = it.get_input_details()[0]
    if tuple(d["shape"]) != x.shape:
        it.resize_tensor_input(d["index"], list(x.shape))
    it.allocate_tensors()
    it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(o["index"]) for o in it.get_output_details()]


def scale(x: np.ndarray, options: dict) -> np.ndarray:
    return x * F(options["alpha"]) + F(options.get("beta", 0.0))


@pytest.fixture
def registered() -> Iterator[str]:
    name = "TestGlobalScale"
    tflite_jit.register_custom_op(name, kernel=scale)
    yield name
    tflite_jit.unregister_custom_op(name)


X = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]], F)


def test_unregistered_custom_op_fails_at_allocate() -> None:
    it = tflite_jit.Interpreter(model_content=custom_model("NobodyRegisteredThis", {"alpha": 1.0}))
    with pytest.raises(RuntimeError, match="Encountered unresolved custom op: NobodyRegisteredThis"):
        it.allocate_tensors()


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_global_registration_and_options(registered: str, backend: str) -> None:
    it = tflite_jit.Interpreter(model_content=custom_model(registered, {"alpha": 2.5, "beta": -1.0}),
                                backend=backend)
    (y,) = _run(it, X)
    np.testing.assert_allclose(y, np.maximum(X * 2.5 - 1.0, 0))
    tflite_jit.unregister_custom_op(registered)
    with pytest.raises(RuntimeError, match="unresolved custom op"):
        tflite_jit.Interpreter(model_content=custom_model(registered, {"alpha": 1.0})).allocate_tensors()


def test_builtin_names_are_refused() -> None:
    with pytest.raises(ValueError, match="builtin"):
        tflite_jit.register_custom_op("ADD", kernel=scale)


def test_per_instance_registration() -> None:
    model = custom_model("LocalScale", {"alpha": 3.0})
    it = tflite_jit.Interpreter(model_content=model, custom_ops={"LocalScale": scale})
    np.testing.assert_allclose(_run(it, X)[0], np.maximum(X * 3, 0))
    spec = tflite_jit.CustomOp("LocalScale", lambda x, o: x - F(o["alpha"]))
    it = tflite_jit.Interpreter(model_content=model, custom_ops={"LocalScale": spec})
    np.testing.assert_allclose(_run(it, X)[0], np.maximum(X - 3, 0))
    with pytest.raises(RuntimeError, match="unresolved custom op: LocalScale"):  # not global
        tflite_jit.Interpreter(model_content=model).allocate_tensors()


def test_interpreter_with_custom_ops_registerers() -> None:
    model = custom_model("LocalScale", {"alpha": 2.0})
    it = tflite_jit.InterpreterWithCustomOps(custom_op_registerers=[tflite_jit.CustomOp("LocalScale", scale)],
                                             model_content=model)
    np.testing.assert_allclose(_run(it, X)[0], np.maximum(X * 2, 0))

    def registerer(resolver: Any) -> None:
        resolver.add("LocalScale", kernel=lambda x, o: -x * F(o["alpha"]))

    it = tflite_jit.InterpreterWithCustomOps(custom_op_registerers=[registerer], model_content=model)
    np.testing.assert_allclose(_run(it, X)[0], np.maximum(-X * 2, 0))


def test_options_decoding_types() -> None:
    seen = {}

    def kernel(x: np.ndarray, options: dict) -> np.ndarray:
        seen.update(options)
        return x

    opts = {"i": 7, "f": 0.25, "s": "hello", "b": True, "v": [1, 2, 3]}
    it = tflite_jit.Interpreter(model_content=custom_model("Probe", opts), custom_ops={"Probe": kernel})
    _run(it, X)
    assert seen["i"] == 7 and seen["f"] == 0.25 and seen["s"] == "hello" and seen["b"] is True
    assert list(seen["v"]) == [1, 2, 3]
    seen.clear()
    it = tflite_jit.Interpreter(model_content=custom_model("Probe", None), custom_ops={"Probe": kernel})
    _run(it, X)
    assert seen == {}


def test_shape_fn_and_dtype_fn_follow_resized_inputs() -> None:
    def tile2(x: np.ndarray, options: dict) -> np.ndarray:
        return np.concatenate([x, x], axis=-1)

    spec = tflite_jit.CustomOp("Tile2", tile2, shape_fn=lambda shapes, o: [(*shapes[0][:-1], 2 * shapes[0][-1])],
                               dtype_fn=lambda dtypes, o: [dtypes[0]])
    model = custom_model("Tile2", {}, in_shape=(1, 3), out_shape=(1, 6), signature=(-1, 3))
    it = tflite_jit.Interpreter(model_content=model, custom_ops={"Tile2": spec})
    (y,) = _run(it, X)  # resized from (1, 3) to (2, 3): the declared (1, 6) no longer holds
    assert y.shape == (2, 6)
    np.testing.assert_allclose(y, np.maximum(np.concatenate([X, X], -1), 0))
    assert tuple(it.get_output_details()[0]["shape"]) == (2, 6)


def test_njit_kernel_with_options_namedtuple() -> None:
    from numba import njit

    @njit(cache=False)
    def clipped_scale(x, options):  # noqa: ANN001, ANN202
        out = np.empty_like(x)
        for i in range(x.size):
            v = x.flat[i] * options.alpha
            out.flat[i] = min(v, options.limit)
        return out

    model = custom_model("NjitScale", {"alpha": 2.0, "limit": 5.0})
    it = tflite_jit.Interpreter(model_content=model, custom_ops={"NjitScale": clipped_scale})
    np.testing.assert_allclose(_run(it, X)[0], np.maximum(np.minimum(X * 2, 5), 0))


def test_multiple_outputs() -> None:
    spec = tflite_jit.CustomOp("Split2", lambda x, o: (x + 1, x * 2))
    it = tflite_jit.Interpreter(model_content=custom_model("Split2", {}, n_out=2), custom_ops={"Split2": spec})
    y, second = _run(it, X)
    np.testing.assert_allclose(y, np.maximum(X + 1, 0))
    np.testing.assert_allclose(second, X * 2)


def test_kernel_raising_names_the_node() -> None:
    def broken(x: np.ndarray, options: dict) -> np.ndarray:
        raise ZeroDivisionError("boom")

    it = tflite_jit.Interpreter(model_content=custom_model("Broken", {}), custom_ops={"Broken": broken})
    it.allocate_tensors()
    with pytest.raises(RuntimeError, match=r"(?s)ZeroDivisionError: boom.*Node number 0 \(Broken\) failed to invoke"):
        it.invoke()


@pytest.mark.parametrize("result", [lambda x: x[:1], lambda x: x.astype(np.float64), lambda x: (x, x)])
def test_wrong_outputs_are_runtime_errors(result: Any) -> None:
    it = tflite_jit.Interpreter(model_content=custom_model("Wrong", {}),
                                custom_ops={"Wrong": lambda x, o: result(x)})
    it.allocate_tensors()
    with pytest.raises(RuntimeError, match=r"(?s)custom op Wrong: kernel .*Node number 0 \(Wrong\) failed to invoke"):
        it.invoke()


def test_bad_specs_are_refused() -> None:
    with pytest.raises(TypeError):
        tflite_jit.CustomOp("X", kernel=42)
    with pytest.raises(ValueError, match="names a CustomOp called"):
        tflite_jit.Interpreter(model_content=custom_model("A", {}),
                               custom_ops={"A": tflite_jit.CustomOp("B", scale)})
