"""The Interpreter API, behaviour by behaviour (INTERPRETER_API.md §1-4, §7): every test runs the
SAME call sequence on LiteRT (`ai_edge_litert.interpreter`) and on `tflite_jit` and compares the
outcomes: return values deeply (dtype, shape, values, key order, type classes by identity), or the
exception type plus the message text (LiteRT's error reporter accumulates messages, so texts are
compared as substrings).
"""

from __future__ import annotations

import gc
import os
import pathlib
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tflite_jit
from tests.oracle import assert_close
from tflite_jit.format.builder import ModelBuilder

lite_rt = pytest.importorskip("ai_edge_litert.interpreter")

# ---- models ------------------------------------------------------------------------------------


def two_io_model() -> bytes:
    """Float, 2 inputs, 2 outputs, outputs listed in the opposite order to their creation."""
    mb = ModelBuilder()
    g = mb.subgraph("main")
    a = g.input("a", (1, 4), np.float32)
    b = g.input("b", (1, 4), np.float32)
    s = g.tensor("sum", (1, 4))
    r = g.tensor("relu", (1, 4))
    g.op("ADD", [a, b], [s])
    g.op("RELU", [s], [r])
    g.output(r, s)
    return mb.build()


def dynamic_model(signature: bool = False) -> bytes:
    """FULLY_CONNECTED + SOFTMAX with a -1 batch dimension in every shape_signature."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4), np.float32, shape_signature=(-1, 4))
    w = g.const("w", np.arange(12, dtype=np.float32).reshape(3, 4) / 10)
    b = g.const("b", np.array([0.1, -0.2, 0.3], np.float32))
    y = g.tensor("y", (1, 3), shape_signature=(-1, 3))
    g.op("FULLY_CONNECTED", [x, w, b], [y])
    z = g.tensor("z", (1, 3), shape_signature=(-1, 3))
    g.op("SOFTMAX", [y], [z], beta=1.0)
    g.output(z)
    if signature:
        mb.signature("serving_default", {"inp": x}, {"probs": z})
    return mb.build()


def two_signature_model() -> bytes:
    """Two subgraphs, one signature each: 'add' (subgraph 0) and 'scale' (subgraph 1)."""
    mb = ModelBuilder()
    g0 = mb.subgraph("add_graph")
    a = g0.input("a", (2,), np.float32, shape_signature=(-1,))
    b = g0.input("b", (2,), np.float32, shape_signature=(-1,))
    s = g0.tensor("s", (2,), shape_signature=(-1,))
    g0.op("ADD", [a, b], [s])
    g0.output(s)
    g1 = mb.subgraph("scale_graph")
    x = g1.input("x", (1, 3), np.float32, shape_signature=(-1, 3))
    k = g1.const("k", np.array([2.0, 3.0, 4.0], np.float32))
    y = g1.tensor("y", (1, 3), shape_signature=(-1, 3))
    g1.op("MUL", [x, k], [y])
    r = g1.tensor("r", (1, 3), shape_signature=(-1, 3))
    g1.op("RELU", [y], [r])
    g1.output(r)
    mb.signature("add", {"lhs": a, "rhs": b}, {"total": s}, subgraph_index=0)
    mb.signature("scale", {"x": x}, {"out": r}, subgraph_index=1)
    return mb.build()


def quant_model() -> bytes:
    """int8 per-tensor input, per-channel int8 constant; DEQUANTIZE both to float outputs."""
    mb = ModelBuilder()
    g = mb.subgraph()
    q = g.input("q", (1, 4), np.int8, scale=0.5, zero_point=-3)
    wq = g.const("wq", np.array([[1, -2, 3, -4], [5, 6, -7, 8], [-9, 10, 11, -12]], np.int8),
                 scale=[0.1, 0.2, 0.3], zero_point=[0, 0, 0], quantized_dimension=0)
    f = g.tensor("f", (1, 4))
    g.op("DEQUANTIZE", [q], [f])
    wf = g.tensor("wf", (3, 4))
    g.op("DEQUANTIZE", [wq], [wf])
    g.output(f, wf)
    return mb.build()


def fc_no_bias_model() -> bytes:
    """FULLY_CONNECTED with its optional bias omitted (-1)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (2, 4), np.float32)
    w = g.const("w", np.ones((3, 4), np.float32))
    y = g.tensor("y", (2, 3))
    g.op("FULLY_CONNECTED", [x, w, -1], [y])
    g.output(y)
    return mb.build()


def conv_model() -> bytes:
    rng = np.random.default_rng(1)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 6, 6, 3), np.float32, shape_signature=(-1, 6, 6, 3))
    w = g.const("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    b = g.const("b", rng.standard_normal(4).astype(np.float32))
    y = g.tensor("y", (1, 6, 6, 4), shape_signature=(-1, 6, 6, 4))
    g.op("CONV_2D", [x, w, b], [y], padding="SAME", stride_w=1, stride_h=1,
         fused_activation_function="RELU")
    r = g.tensor("r", (1, 144), shape_signature=(-1, 144))
    shape = g.const("shape", np.array([-1, 144], np.int32))
    g.op("RESHAPE", [y, shape], [r])
    g.output(r)
    return mb.build()


def custom_op_model(name: str = "MyCustomOp") -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 4), np.float32)
    y = g.tensor("y", (1, 4))
    g.op(name, [x], [y], custom=True)
    g.output(y)
    return mb.build()


def variable_model() -> bytes:
    """out = x + state, where `state` is a variable tensor (zero-initialised, reset by
    reset_all_variables)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 3), np.float32)
    v = g.tensor("state", (1, 3), np.float32, is_variable=True)
    y = g.tensor("y", (1, 3))
    g.op("ADD", [x, v], [y])
    g.output(y)
    return mb.build()


TWO_IO = two_io_model()
DYN = dynamic_model()
DYN_SIG = dynamic_model(signature=True)
TWO_SIG = two_signature_model()
QUANT = quant_model()
CONV = conv_model()

# ---- the comparison harness --------------------------------------------------------------------


class Raised:
    def __init__(self, e: BaseException):
        self.type = type(e)
        self.msg = str(e)

    def __repr__(self) -> str:
        return f"Raised({self.type.__name__}: {self.msg!r})"


def _outcome(f: Callable[[Any], Any], module: Any) -> Any:
    try:
        return f(module)
    except Exception as e:  # compared below
        return Raised(e)
    finally:
        gc.collect()


def deep_compare(ours: Any, theirs: Any, path: str = "", close: bool = False) -> None:
    where = path or "result"
    if isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray), f"{where}: {type(ours)} is not an ndarray"
        if close:
            assert_close(ours, theirs, what=where)
        else:
            assert ours.dtype == theirs.dtype, f"{where}: dtype {ours.dtype} != {theirs.dtype}"
            assert ours.shape == theirs.shape, f"{where}: shape {ours.shape} != {theirs.shape}"
            assert np.array_equal(ours, theirs), f"{where}: {ours} != {theirs}"
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{where}: {type(ours)} is not a dict"
        assert list(ours) == list(theirs), f"{where}: keys {list(ours)} != {list(theirs)}"
        for k in theirs:
            deep_compare(ours[k], theirs[k], f"{path}[{k!r}]", close)
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs), f"{where}: {type(ours)} != {type(theirs)}"
        assert len(ours) == len(theirs), f"{where}: length {len(ours)} != {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            deep_compare(a, b, f"{path}[{i}]", close)
    elif isinstance(theirs, type):
        assert ours is theirs, f"{where}: {ours} is not {theirs}"
    elif isinstance(theirs, (float, np.floating)) and close:
        assert type(ours) is type(theirs) and abs(ours - theirs) <= 1e-4 * max(1, abs(theirs)), where
    else:
        assert type(ours) is type(theirs), f"{where}: {type(ours)} != {type(theirs)} ({ours!r} vs {theirs!r})"
        assert ours == theirs, f"{where}: {ours!r} != {theirs!r}"


def same(f: Callable[[Any], Any], *, key: str | tuple[str, ...] | None = None, close: bool = False) -> Any:
    """Run f(module) on LiteRT and on tflite_jit; assert the same outcome. Errors: same type, and
    LiteRT's text inside ours (or ours inside LiteRT's accumulated text), or, with `key`, that
    phrase (each of those phrases) in both. Returns LiteRT's outcome."""
    theirs = _outcome(f, lite_rt)
    ours = _outcome(f, tflite_jit)
    if isinstance(theirs, Raised):
        assert isinstance(ours, Raised), f"LiteRT raised {theirs}, ours returned {ours!r}"
        assert ours.type is theirs.type, f"ours {ours} vs LiteRT {theirs}"
        if key is not None:
            for k in (key,) if isinstance(key, str) else key:
                assert k in theirs.msg, f"key {k!r} not in LiteRT's {theirs.msg!r}"
                assert k in ours.msg, f"key {k!r} not in ours {ours.msg!r}"
        else:
            assert theirs.msg.strip() in ours.msg or ours.msg.strip() in theirs.msg, \
                f"ours {ours.msg!r} vs LiteRT {theirs.msg!r}"
    else:
        assert not isinstance(ours, Raised), f"ours raised {ours}, LiteRT returned {theirs!r}"
        deep_compare(ours, theirs, close=close)
    return theirs


def make(m: Any, content: bytes = TWO_IO, resolver: str = "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
         **kw: Any) -> Any:
    return m.Interpreter(model_content=content,
                         experimental_op_resolver_type=getattr(m.OpResolverType, resolver), **kw)


def ready(m: Any, content: bytes = TWO_IO, **kw: Any) -> Any:
    it = make(m, content, **kw)
    it.allocate_tensors()
    return it


A = np.array([[1.0, -2.0, 3.0, -4.0]], np.float32)
B = np.array([[0.5, 0.5, -5.0, 1.0]], np.float32)


def _allocated(it: Any) -> Any:
    it.allocate_tensors()
    return it


def run_two_io(it: Any, a: np.ndarray = A, b: np.ndarray = B) -> list[np.ndarray]:
    it.set_tensor(0, a)
    it.set_tensor(1, b)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


# ---- §0 module surface -------------------------------------------------------------------------


def test_module_surface() -> None:
    for name in ("Interpreter", "InterpreterWithCustomOps", "SignatureRunner", "OpResolverType",
                 "Delegate", "load_delegate"):
        assert hasattr(tflite_jit, name), name
    same(lambda m: [(e.name, e.value) for e in m.OpResolverType])


# ---- §1.1 constructor --------------------------------------------------------------------------


def test_every_keyword_is_accepted() -> None:
    def f(m: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            it = m.Interpreter(
                model_path=None, model_content=TWO_IO, experimental_delegates=[], num_threads=2,
                experimental_op_resolver_type=m.OpResolverType.BUILTIN_REF,
                experimental_preserve_all_tensors=True,
                experimental_disable_delegate_clustering=True,
                experimental_default_delegate_latest_features=True,
                experimental_compress_quantization_zero_points=True,
                experimental_disable_delegate_node_fusion=True,
                experimental_force_delegate_node_profiling=True)
        it.allocate_tensors()
        return it.experimental_compress_quantization_zero_points, run_two_io(it)

    same(f, close=True)


def test_positional_arguments_follow_litert_order() -> None:
    same(lambda m: m.Interpreter(None, TWO_IO, None, 1).get_input_details())


def test_unknown_keyword_is_type_error() -> None:
    same(lambda m: m.Interpreter(model_content=TWO_IO, num_thread=2), key="num_thread")


def test_compress_zero_points_property_default_and_read_only() -> None:
    def f(m: Any) -> Any:
        it = make(m)
        try:
            it.experimental_compress_quantization_zero_points = True
        except AttributeError:
            return it.experimental_compress_quantization_zero_points, "read-only"
        return it.experimental_compress_quantization_zero_points, "writable"

    same(f)


@pytest.mark.parametrize("resolver", ["AUTO", "BUILTIN", "BUILTIN_REF", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"])
def test_every_resolver_runs(resolver: str) -> None:
    same(lambda m: run_two_io(ready(m, resolver=resolver)), close=True)


@pytest.mark.parametrize("bad", [5, "AUTO", None, 0])
def test_resolver_must_be_a_member(bad: Any) -> None:
    same(lambda m: m.Interpreter(model_content=TWO_IO, experimental_op_resolver_type=bad))


@pytest.mark.parametrize("n", [None, 1, 2, 4, True, 0, -1, 1.5, "2", np.int64(2), False])
def test_num_threads_rules(n: Any) -> None:
    same(lambda m: run_two_io(ready(m, num_threads=n)), close=True)


def test_model_path_str_bytes_and_pathlike(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "m.tflite"
    p.write_bytes(TWO_IO)
    for src in (str(p), os.fsencode(p), p):
        same(lambda m, src=src: run_two_io(_allocated(m.Interpreter(model_path=src))), close=True)


def test_bad_path_and_empty_file(tmp_path: pathlib.Path) -> None:
    same(lambda m: m.Interpreter(model_path="/nonexistent/x.tflite"))
    # a directory and an empty file: LiteRT's text names a file descriptor; compare the key phrase
    same(lambda m: m.Interpreter(model_path=str(tmp_path)), key="The model allocation is null/empty")
    (tmp_path / "empty.tflite").write_bytes(b"")
    same(lambda m: m.Interpreter(model_path=str(tmp_path / "empty.tflite")),
         key="The model allocation is null/empty")


@pytest.mark.parametrize("content", [b"garbage bytes that are no model", b"x", b"\0" * 64])
def test_garbage_bytes(content: bytes) -> None:
    same(lambda m: m.Interpreter(model_content=content), key="The model is not a valid Flatbuffer buffer")


def test_both_or_neither_source(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "m.tflite"
    p.write_bytes(TWO_IO)
    same(lambda m: m.Interpreter())
    same(lambda m: m.Interpreter(model_path=str(p), model_content=TWO_IO))
    # b'' counts as absent, on its own and next to a path
    same(lambda m: m.Interpreter(model_content=b""))
    same(lambda m: m.Interpreter(model_path=str(p), model_content=b"").get_input_details())


@pytest.mark.parametrize("content", [bytearray(TWO_IO), memoryview(TWO_IO), "text", np.frombuffer(TWO_IO[:1], np.uint8)])
def test_model_content_must_be_bytes(content: Any) -> None:
    # pybind's "incompatible function arguments" text lists the C++ signature; only the type and
    # the key phrase are comparable.
    same(lambda m: m.Interpreter(model_content=content), key="incompatible function arguments")


def test_model_source_is_decided_by_truthiness_first(tmp_path: pathlib.Path) -> None:
    p = tmp_path / "m.tflite"
    p.write_bytes(TWO_IO)
    # LiteRT tests `model_path and not model_content` before any type check
    same(lambda m: m.Interpreter(model_content=np.frombuffer(TWO_IO, np.uint8)))  # ambiguous truth value
    same(lambda m: m.Interpreter(model_path=str(p), model_content="text"))
    same(lambda m: m.Interpreter(model_path=""))
    same(lambda m: m.Interpreter(model_path=b"", model_content=TWO_IO).get_signature_list())
    same(lambda m: m.Interpreter(model_path=3))


@pytest.mark.parametrize("resolver,warns", [("AUTO", True), ("BUILTIN", True), ("BUILTIN_REF", False),
                                            ("BUILTIN_WITHOUT_DEFAULT_DELEGATES", False)])
def test_preserve_all_tensors_warning(resolver: str, warns: bool) -> None:
    def f(m: Any) -> Any:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            it = make(m, resolver=resolver, experimental_preserve_all_tensors=True)
        it.allocate_tensors()
        run_two_io(it)
        # every intermediate stays readable: 'sum' is both an output and an intermediate
        return [x.category for x in w], it.get_tensor(2)

    theirs = same(f, close=True)
    assert (theirs[0] == [UserWarning]) is warns


def test_no_warning_by_default() -> None:
    def f(m: Any) -> Any:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            m.Interpreter(model_content=TWO_IO)
        return [x.category for x in w]

    assert same(f) == []


def test_model_content_is_kept_referenced() -> None:
    def f(m: Any) -> Any:
        content = bytes(bytearray(DYN))
        it = m.Interpreter(model_content=content)
        del content
        gc.collect()
        it.allocate_tensors()
        it.set_tensor(0, np.ones((1, 4), np.float32))
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])

    same(f, close=True)


def test_non_delegate_object_is_attribute_error() -> None:
    same(lambda m: m.Interpreter(model_content=TWO_IO, experimental_delegates=[object()]),
         key="_get_native_delegate_pointer")


# ---- §3 delegates ------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # LiteRT's Delegate.__del__
def test_load_delegate_missing_library() -> None:
    same(lambda m: m.load_delegate("/nonexistent/libnope.so"), key="libnope.so")
    same(lambda m: m.load_delegate("/nonexistent/libnope.so", {"device": "usb:0"}), key="libnope.so")


# ---- §1.2 lazy allocation ----------------------------------------------------------------------


def test_set_and_get_before_allocate() -> None:
    same(lambda m: make(m).set_tensor(0, A))
    same(lambda m: make(m).get_tensor(0))
    same(lambda m: make(m).get_tensor(2))
    same(lambda m: make(m).tensor(0)())


def test_invoke_before_allocate() -> None:
    same(lambda m: make(m).invoke())


def test_invoke_after_resize_without_allocate() -> None:
    def f(m: Any) -> Any:
        it = ready(m, DYN)
        it.resize_tensor_input(0, [3, 4])
        it.invoke()

    same(f)


def test_resize_to_the_same_shape_keeps_ready() -> None:
    def f(m: Any) -> Any:
        it = ready(m, DYN)
        it.set_tensor(0, np.ones((1, 4), np.float32))
        it.resize_tensor_input(0, [1, 4])
        it.invoke()
        return it.get_tensor(4)

    same(f, close=True)


def test_repeated_invoke_errors_accumulate_as_substrings() -> None:
    def f(m: Any) -> Any:
        it = make(m)
        for _ in range(3):
            try:
                it.invoke()
            except RuntimeError as e:
                last = str(e)
        return last.count("Invoke called on model that is not ready.") >= 1

    same(f)


def test_output_shapes_update_only_after_allocate() -> None:
    def f(m: Any) -> Any:
        it = ready(m, DYN)
        it.resize_tensor_input(0, [5, 4])
        before = (it.get_input_details()[0]["shape"], it.get_output_details()[0]["shape"],
                  [d["shape"] for d in it.get_tensor_details()])
        it.allocate_tensors()
        after = (it.get_input_details()[0]["shape"], it.get_output_details()[0]["shape"],
                 [d["shape"] for d in it.get_tensor_details()])
        x = np.arange(20, dtype=np.float32).reshape(5, 4) / 7
        it.set_tensor(0, x)
        it.invoke()
        return before, after, it.get_tensor(4), it.get_tensor(3)

    same(f, close=True)


def test_allocate_is_idempotent_and_keeps_inputs() -> None:
    def f(m: Any) -> Any:
        it = ready(m)
        it.set_tensor(0, A)
        it.set_tensor(1, B)
        it.allocate_tensors()
        it.allocate_tensors()
        it.invoke()
        return it.get_tensor(2)

    same(f, close=True)


# ---- set_tensor --------------------------------------------------------------------------------


def test_invoke_results() -> None:
    same(lambda m: run_two_io(ready(m)), close=True)
    same(lambda m: run_two_io(ready(m, resolver="AUTO")), close=True)


@pytest.mark.parametrize("value", [
    A.astype(np.float64), A.astype(np.int32), A.astype(np.float16), A.astype(np.int8),
    A.astype(np.uint8), A.astype(np.int64), A.astype(bool), A.astype(np.complex64),
    [[1.0, 2.0, 3.0, 4.0]], [[1, 2, 3, 4]], [[True, False, True, False]],
])
def test_set_tensor_never_casts(value: Any) -> None:
    same(lambda m: ready(m).set_tensor(0, value))


def test_set_tensor_never_casts_into_int() -> None:
    same(lambda m: ready(m, QUANT).set_tensor(0, np.zeros((1, 4), np.float32)))
    same(lambda m: ready(m, QUANT).set_tensor(0, np.zeros((1, 4), np.uint8)))
    same(lambda m: ready(m, QUANT).set_tensor(0, [[1, 2, 3, 4]]))


@pytest.mark.parametrize("shape", [(4,), (1, 1, 4), (), (2, 4), (1, 3), (1, 5), (0, 4)])
def test_set_tensor_shape_must_match(shape: tuple[int, ...]) -> None:
    same(lambda m: ready(m).set_tensor(0, np.zeros(shape, np.float32)))


def test_set_tensor_scalar_value() -> None:
    same(lambda m: ready(m).set_tensor(0, np.float32(1.0)))
    same(lambda m: ready(m).set_tensor(0, 1.0))


def test_set_tensor_accepts_non_contiguous_arrays() -> None:
    big = np.arange(32, dtype=np.float32).reshape(4, 8)
    views = [big[:1, ::2], big[1:2, 4:], np.asfortranarray(np.ones((1, 4), np.float32)),
             big.T[::8, :4], A[:, ::-1]]
    for v in views:
        same(lambda m, v=v: run_two_io(ready(m), v, B), close=True)


@pytest.mark.parametrize("index", [9999, -1, 4, 5])
def test_set_tensor_bad_index(index: int) -> None:
    same(lambda m: ready(m).set_tensor(index, A))


def test_set_tensor_accepts_non_input_index() -> None:
    def f(m: Any) -> Any:
        it = ready(m)
        it.set_tensor(2, B)  # the 'sum' output / intermediate
        first = it.get_tensor(2)
        run_two_io(it)
        return first, it.get_tensor(2)

    same(f, close=True)


def test_set_tensor_copies_the_value() -> None:
    def f(m: Any) -> Any:
        it = ready(m)
        a = A.copy()
        it.set_tensor(0, a)
        a[...] = 100
        return it.get_tensor(0)

    same(f)


# ---- get_tensor --------------------------------------------------------------------------------


def test_get_tensor_returns_an_owning_writeable_copy() -> None:
    def f(m: Any) -> Any:
        it = ready(m)
        run_two_io(it)
        out = it.get_tensor(3)
        flags = (out.flags.writeable, out.flags.owndata, out.flags.c_contiguous, out.base is None)
        out[...] = 42
        return flags, it.get_tensor(3), it.get_tensor(0), it.get_tensor(3, 0)

    same(f, close=True)


def test_get_tensor_bad_indices() -> None:
    same(lambda m: ready(m).get_tensor(9999))
    same(lambda m: ready(m).get_tensor(-1))
    same(lambda m: ready(m).get_tensor(0, 1))
    same(lambda m: ready(m).get_tensor(0, -1))
    same(lambda m: ready(m, TWO_SIG).get_tensor(0, 2))


def test_get_tensor_of_constants() -> None:
    same(lambda m: [ready(m, DYN).get_tensor(i) for i in (1, 2)])
    same(lambda m: ready(m, QUANT).get_tensor(1))


def test_get_tensor_of_other_subgraph_before_it_runs() -> None:
    # subgraph 1 is only allocated by its signature runner: before that its data is null
    same(lambda m: ready(m, TWO_SIG).get_tensor(0, 1))

    def f(m: Any) -> Any:
        it = ready(m, TWO_SIG)
        it.get_signature_runner("scale")(x=np.ones((2, 3), np.float32))
        return it.get_tensor(0, 1), it.get_tensor(3, 1)

    same(f, close=True)


# ---- tensor(): views ---------------------------------------------------------------------------


def test_tensor_view_semantics() -> None:
    def f(m: Any) -> Any:
        it = ready(m)
        in0, in1, out = it.tensor(0), it.tensor(1), it.tensor(3)
        in0()[...] = A
        in1()[...] = B
        it.invoke()
        v = out()
        flags = (v.flags.writeable, v.flags.owndata, v.dtype, v.shape)
        result = v.copy()
        del v
        in0()[0, 0] = 10.0
        it.invoke()
        return flags, result, out().copy(), it.get_tensor(0)

    same(f, close=True)


def test_tensor_view_reflects_later_invokes() -> None:
    def f(m: Any) -> Any:
        it = ready(m)
        out = it.tensor(3)
        run_two_io(it)
        first = out().copy()
        run_two_io(it, B, A * 2)
        return first, out().copy()

    same(f, close=True)


@pytest.mark.parametrize("method", ["invoke", "allocate_tensors", "resize"])
def test_live_view_blocks_ensure_safe_methods(method: str) -> None:
    def f(m: Any) -> Any:
        it = ready(m)
        run_two_io(it)
        v = it.tensor(0)()
        call = {"invoke": it.invoke, "allocate_tensors": it.allocate_tensors,
                "resize": lambda: it.resize_tensor_input(0, [1, 4])}[method]
        try:
            call()
            blocked = None
        except RuntimeError as e:
            blocked = str(e)
        # set_tensor / get_tensor are not checked
        it.set_tensor(0, A)
        got = it.get_tensor(0)
        del v
        call()
        return blocked, got

    theirs = same(f)
    assert "There is at least 1 reference to internal data" in theirs[0]


def test_tensor_bad_index_raises_on_call() -> None:
    same(lambda m: callable(ready(m).tensor(9999)))
    same(lambda m: ready(m).tensor(9999)())


# ---- resize_tensor_input -----------------------------------------------------------------------


def test_resize_strict_allows_only_unknown_dims() -> None:
    def ok(m: Any) -> Any:
        it = ready(m, DYN)
        it.resize_tensor_input(0, [3, 4], strict=True)
        it.allocate_tensors()
        it.set_tensor(0, np.ones((3, 4), np.float32))
        it.invoke()
        return it.get_tensor(4)

    same(ok, close=True)
    same(lambda m: ready(m, DYN).resize_tensor_input(0, [1, 5], strict=True))
    same(lambda m: ready(m).resize_tensor_input(0, [2, 4], strict=True))
    # a rank change under strict
    same(lambda m: ready(m, DYN).resize_tensor_input(0, [1, 1, 4], strict=True),
         key="tensor->dims->size != dims.size() (2 != 3)")


def test_resize_non_strict_accepts_any_shape_and_fails_at_allocate() -> None:
    def f(m: Any) -> Any:
        it = ready(m)
        it.resize_tensor_input(0, [2, 1, 4])
        shapes = [d["shape"] for d in it.get_input_details()]
        it.allocate_tensors()
        a = np.arange(8, dtype=np.float32).reshape(2, 1, 4)
        return shapes, run_two_io(it, a, B)

    same(f, close=True)

    def bad(m: Any) -> Any:
        it = ready(m)
        it.resize_tensor_input(0, [3])
        it.allocate_tensors()

    same(bad, key="failed to prepare")


@pytest.mark.parametrize("size", [[1, -4], [-1, 4], [-2, 4]])
def test_resize_negative_dims(size: list[int]) -> None:
    same(lambda m: ready(m, DYN).resize_tensor_input(0, size))


@pytest.mark.parametrize("index", [9999, -1])
def test_resize_bad_index(index: int) -> None:
    same(lambda m: ready(m, DYN).resize_tensor_input(index, [1, 4]),
         key="tensor_index < context_.tensors_size && tensor_index >= 0 was not true.")


def test_resize_of_a_non_input_tensor() -> None:
    def f(m: Any) -> Any:
        it = ready(m, DYN)
        it.resize_tensor_input(3, [7, 3])  # an intermediate: allowed, and prepare recomputes it
        it.allocate_tensors()
        return [d["shape"] for d in it.get_tensor_details()]

    same(f)


@pytest.mark.parametrize("index", ["a", 0.0, None, 1.5])
def test_non_integer_indices_are_type_errors(index: Any) -> None:
    key = "incompatible function arguments"
    same(lambda m: ready(m).get_tensor(index), key=key)
    same(lambda m: ready(m).get_tensor(0, index), key=key)
    same(lambda m: ready(m).set_tensor(index, A), key=key)
    same(lambda m: ready(m).tensor(index)(), key=key)
    same(lambda m: ready(m, DYN).resize_tensor_input(index, [1, 4]), key=key)


def test_numpy_integer_indices_are_accepted() -> None:
    same(lambda m: run_two_io(ready(m)) and ready(m).get_tensor(np.int64(0), np.int32(0)).shape)
    same(lambda m: ready(m).get_tensor(True).shape)


@pytest.mark.parametrize("size", [[[1, 4]], 4, [], np.ones((1, 2))])
def test_resize_size_must_be_1d(size: Any) -> None:
    same(lambda m: ready(m, DYN).resize_tensor_input(0, size))


@pytest.mark.parametrize("size", [(3, 4), np.array([3, 4]), np.array([3, 4], np.int64), [3.0, 4.0]])
def test_resize_size_forms(size: Any) -> None:
    def f(m: Any) -> Any:
        it = ready(m, DYN)
        it.resize_tensor_input(0, size)
        it.allocate_tensors()
        return it.get_input_details()[0]["shape"], it.get_output_details()[0]["shape"]

    same(f)


def test_resize_zero_batch() -> None:
    def f(m: Any) -> Any:
        it = ready(m, DYN)
        it.resize_tensor_input(0, [0, 4])
        it.allocate_tensors()
        it.set_tensor(0, np.zeros((0, 4), np.float32))
        it.invoke()
        return it.get_tensor(4)

    same(f)


def test_resize_then_grow_and_shrink() -> None:
    def f(m: Any) -> Any:
        it = ready(m, CONV)
        outs = []
        for n in (3, 1, 2):
            it.resize_tensor_input(0, [n, 6, 6, 3])
            it.allocate_tensors()
            x = np.linspace(-1, 1, n * 108, dtype=np.float32).reshape(n, 6, 6, 3)
            it.set_tensor(0, x)
            it.invoke()
            outs.append(it.get_tensor(it.get_output_details()[0]["index"]))
        return outs

    same(f, close=True)


# ---- details -----------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [TWO_IO, DYN, QUANT, TWO_SIG, CONV], ids=["two_io", "dyn", "quant", "two_sig", "conv"])
def test_details_dicts(content: bytes) -> None:
    n = len(tflite_jit.Interpreter(model_content=content).get_tensor_details())

    def f(m: Any) -> Any:
        it = make(m, content)
        before = (it.get_input_details(), it.get_output_details(), it.get_tensor_details())
        it.allocate_tensors()
        after = it.get_tensor_details()
        # Deliberate difference: LiteRT kernels append unnamed scratch tensors at allocation (CONV_2D's
        # im2col); ours never add tensors, so only the model's own tensors are compared.
        assert all(d["name"] == "" for d in after[n:])
        return before, it.get_input_details(), it.get_output_details(), after[:n]

    same(f)


def test_detail_value_types() -> None:
    d = tflite_jit.Interpreter(model_content=QUANT).get_tensor_details()
    assert [list(x) for x in d][0] == ["name", "index", "shape", "shape_signature", "dtype", "quantization",
                                       "quantization_parameters", "sparsity_parameters"]
    per_tensor, per_channel = d[0], d[1]
    assert per_tensor["quantization"] == (0.5, -3)
    assert type(per_tensor["quantization"][0]) is float and type(per_tensor["quantization"][1]) is int
    assert per_channel["quantization"] == (0.0, 0)
    qp = per_channel["quantization_parameters"]
    assert list(qp) == ["scales", "zero_points", "quantized_dimension", "block_size"]
    assert qp["scales"].dtype == np.float32 and qp["scales"].shape == (3,)
    assert qp["zero_points"].dtype == np.int32 and type(qp["quantized_dimension"]) is int
    assert per_tensor["shape"].dtype == np.int32 and per_tensor["dtype"] is np.int8
    assert per_tensor["sparsity_parameters"] == {}


def test_compressed_zero_points() -> None:
    def f(m: Any) -> Any:
        it = make(m, QUANT, experimental_compress_quantization_zero_points=True)
        it.allocate_tensors()
        return it.get_tensor_details(), it.experimental_compress_quantization_zero_points

    same(f)


def test_get_tensor_details_subgraphs() -> None:
    same(lambda m: ready(m, TWO_SIG).get_tensor_details(1))
    same(lambda m: ready(m).get_tensor_details(1))
    same(lambda m: ready(m).get_tensor_details(-1))
    same(lambda m: ready(m, TWO_SIG).get_tensor_details(2))


def test_quantized_invoke() -> None:
    def f(m: Any) -> Any:
        it = ready(m, QUANT)
        it.set_tensor(0, np.array([[-128, -3, 0, 127]], np.int8))
        it.invoke()
        return [it.get_tensor(d["index"]) for d in it.get_output_details()]

    same(f, close=True)


# ---- signatures --------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [TWO_IO, DYN_SIG, TWO_SIG], ids=["none", "one", "two"])
def test_signature_lists(content: bytes) -> None:
    same(lambda m: make(m, content).get_signature_list())
    same(lambda m: make(m, content)._get_full_signature_list())
    same(lambda m: make(m, content).num_subgraphs())


@pytest.mark.parametrize("content", [TWO_IO, DYN_SIG, TWO_SIG], ids=["none", "one", "two"])
def test_get_signature_runner_none_key(content: bytes) -> None:
    same(lambda m: type(make(m, content).get_signature_runner()).__name__)
    same(lambda m: type(make(m, content).get_signature_runner(None)).__name__)


def test_get_signature_runner_unknown_key() -> None:
    same(lambda m: make(m, TWO_SIG).get_signature_runner("nope"))
    same(lambda m: make(m, TWO_IO).get_signature_runner("serving_default"))


def test_signature_runner_constructor_checks() -> None:
    same(lambda m: m.SignatureRunner())
    same(lambda m: m.SignatureRunner(interpreter=make(m, TWO_SIG)))
    same(lambda m: m.SignatureRunner(interpreter=make(m, TWO_SIG), signature_key="k"))
    same(lambda m: type(m.SignatureRunner(make(m, TWO_SIG), "scale")).__name__)


def test_signature_runner_call_varying_batch() -> None:
    def f(m: Any) -> Any:
        it = make(m, DYN_SIG)  # no allocate_tensors() needed
        run = it.get_signature_runner()
        outs = []
        for n in (1, 4, 2):
            x = np.linspace(-2, 2, n * 4, dtype=np.float32).reshape(n, 4)
            res = run(inp=x)
            outs.append((list(res), res["probs"], res["probs"].flags.owndata))
        details = (run.get_input_details(), run.get_output_details())
        shapes = (it.get_input_details()[0]["shape"], it.get_output_details()[0]["shape"])
        return outs, details, shapes

    same(f, close=True)


def test_signature_runner_outputs_are_copies() -> None:
    def f(m: Any) -> Any:
        run = make(m, DYN_SIG).get_signature_runner("serving_default")
        first = run(inp=np.ones((2, 4), np.float32))["probs"]
        keep = first.copy()
        run(inp=np.zeros((2, 4), np.float32))
        return keep, first

    same(f, close=True)


def test_signature_runner_argument_errors() -> None:
    x = np.ones((1, 4), np.float32)
    same(lambda m: make(m, DYN_SIG).get_signature_runner()())
    same(lambda m: make(m, DYN_SIG).get_signature_runner()(inp=x, other=x))
    same(lambda m: make(m, DYN_SIG).get_signature_runner()(x=x))
    same(lambda m: make(m, DYN_SIG).get_signature_runner()(inp=[[1.0, 2.0, 3.0, 4.0]]), key="shape")
    same(lambda m: make(m, DYN_SIG).get_signature_runner()(inp=x.astype(np.float64)))
    # FULLY_CONNECTED flattens its input into rows of 4: 5 or 3 elements are still accepted
    same(lambda m: make(m, DYN_SIG).get_signature_runner()(inp=np.ones((1, 5), np.float32)), close=True)
    same(lambda m: make(m, DYN_SIG).get_signature_runner()(inp=np.ones(3, np.float32)), close=True)


def test_two_signatures_on_two_subgraphs() -> None:
    def f(m: Any) -> Any:
        it = make(m, TWO_SIG)
        add, scale = it.get_signature_runner("add"), it.get_signature_runner("scale")
        r1 = add(lhs=np.array([1, 2, 3], np.float32), rhs=np.array([4, 5, 6], np.float32))
        r2 = scale(x=np.array([[1, -1, 2], [3, 4, -5]], np.float32))
        r3 = add(rhs=np.array([1.0], np.float32), lhs=np.array([2.0], np.float32))
        return (r1, r2, r3, add.get_input_details(), add.get_output_details(),
                scale.get_input_details(), scale.get_output_details())

    same(f, close=True)


def test_live_signature_runner_blocks_invoke() -> None:
    def f(m: Any) -> Any:
        it = ready(m, DYN_SIG)
        run = it.get_signature_runner()
        run(inp=np.ones((1, 4), np.float32))
        try:
            it.invoke()
            blocked = None
        except RuntimeError as e:
            blocked = str(e)
        del run
        it.allocate_tensors()
        it.set_tensor(0, np.ones((1, 4), np.float32))
        it.invoke()
        return blocked, it.get_tensor(4)

    theirs = same(f, close=True)
    assert "There is at least 1 reference to internal data" in theirs[0]


def test_invoke_after_a_signature_run_uses_its_shapes() -> None:
    # the runner allocated subgraph 0 for batch 3: the interpreter is ready at that shape
    def f(m: Any) -> Any:
        it = make(m, DYN_SIG)
        run = it.get_signature_runner()
        run(inp=np.ones((3, 4), np.float32))
        del run
        shapes = it.get_input_details()[0]["shape"], it.get_output_details()[0]["shape"]
        it.set_tensor(0, np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4))
        it.invoke()
        return shapes, it.get_tensor(4)

    same(f, close=True)


# ---- ops details -------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [TWO_IO, DYN, QUANT, CONV, TWO_SIG], ids=["two_io", "dyn", "quant", "conv", "two_sig"])
def test_ops_details(content: bytes) -> None:
    # LiteRT's default XNNPACK replaces the nodes by one DELEGATE node after allocation; we never
    # delegate, so we compare with LiteRT without default delegates (§1.2 _get_ops_details).
    def f(m: Any) -> Any:
        it = make(m, content)
        before = it._get_ops_details()
        it.allocate_tensors()
        return before, it._get_ops_details(), [it._get_op_details(i) for i in range(len(before))]

    same(f)


def test_ops_details_with_omitted_optional_input() -> None:
    same(lambda m: make(m, fc_no_bias_model())._get_ops_details())
    same(lambda m: run_fc(ready(m, fc_no_bias_model())), close=True)


def run_fc(it: Any) -> np.ndarray:
    it.set_tensor(0, np.arange(8, dtype=np.float32).reshape(2, 4))
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


@pytest.mark.parametrize("index", [2, 9999, -1])
def test_op_details_bad_index(index: int) -> None:
    same(lambda m: make(m)._get_op_details(index))


def test_custom_op_details_and_unresolved_error() -> None:
    # LiteRT joins the kernel's text and "Node number ..." without a separator; we put a newline
    # between them, so the two halves are compared separately.
    keys = ("Encountered unresolved custom op: MyCustomOp.\nSee instructions: "
            "https://www.tensorflow.org/lite/guide/ops_custom", "Node number 0 (MyCustomOp) failed to prepare.")
    same(lambda m: make(m, custom_op_model())._get_ops_details())
    same(lambda m: make(m, custom_op_model()).allocate_tensors(), key=keys)
    same(lambda m: make(m, custom_op_model(), resolver="AUTO").allocate_tensors(), key=keys)
    same(lambda m: make(m, custom_op_model()).invoke())

    def twice(m: Any) -> Any:
        it = make(m, custom_op_model())
        for _ in range(2):
            try:
                it.allocate_tensors()
            except RuntimeError:
                pass
        it.invoke()

    same(twice)


def test_flex_op_error() -> None:
    # LiteRT 2.x wording; ours also carries TF's older "Regular TensorFlow ops are not supported".
    same(lambda m: make(m, custom_op_model("FlexAddV2")).allocate_tensors(),
         key=("Select TensorFlow op(s), included in the given model, is(are) not supported by this "
              "interpreter. Make sure you apply/link the Flex delegate before inference.",
              "Node number 0 (FlexAddV2) failed to prepare."))
    with pytest.raises(RuntimeError, match="Regular TensorFlow ops are not supported by this interpreter"):
        make(tflite_jit, custom_op_model("FlexAddV2")).allocate_tensors()


# ---- variables ---------------------------------------------------------------------------------


def test_reset_all_variables() -> None:
    def f(m: Any) -> Any:
        it = ready(m, variable_model())
        x = np.array([[1.0, 2.0, 3.0]], np.float32)
        it.set_tensor(0, x)
        it.set_tensor(1, np.array([[10.0, 20.0, 30.0]], np.float32))  # the variable
        it.invoke()
        first = it.get_tensor(2)
        it.reset_all_variables()
        state = it.get_tensor(1)
        it.invoke()
        return first, state, it.get_tensor(2), it.reset_all_variables()

    same(f, close=True)


# ---- InterpreterWithCustomOps ------------------------------------------------------------------


def test_interpreter_with_custom_ops_without_registerers() -> None:
    def f(m: Any) -> Any:
        it = m.InterpreterWithCustomOps(custom_op_registerers=[], model_content=TWO_IO,
                                        experimental_op_resolver_type=m.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
        return run_two_io(it)

    same(f, close=True)


def test_interpreter_with_custom_ops_symbol_name_is_looked_up() -> None:
    same(lambda m: m.InterpreterWithCustomOps(custom_op_registerers=["NoSuchRegisterer"], model_content=TWO_IO),
         key="Looking up symbol 'NoSuchRegisterer' failed")


def test_interpreter_with_custom_ops_callable_registerer() -> None:
    # LiteRT calls it with a native resolver pointer; we have none and keep it unused. Either way
    # the model loads and runs.
    same(lambda m: run_two_io(_allocated(
        m.InterpreterWithCustomOps(custom_op_registerers=[lambda _ptr: None], model_content=TWO_IO))),
         close=True)


def test_public_signatures_match() -> None:
    import inspect

    def params(f: Any) -> list[tuple[str, Any, str]]:
        return [(p.name, p.kind, repr(p.default)) for p in inspect.signature(f).parameters.values()]

    for cls in ("Interpreter", "InterpreterWithCustomOps", "SignatureRunner", "Delegate"):
        theirs, ours = getattr(lite_rt, cls), getattr(tflite_jit, cls)
        for name in dir(theirs):
            if name.startswith("__") and name not in ("__init__", "__call__"):
                continue
            assert hasattr(ours, name), f"{cls}.{name} missing"
            f = getattr(theirs, name)
            if callable(f) and not isinstance(f, type):
                mine, lites = params(getattr(ours, name)), params(f)
                # ours may add keyword-only parameters with defaults after all of LiteRT's
                assert mine[:len(lites)] == lites, f"{cls}.{name}"
                assert all(kind == inspect.Parameter.KEYWORD_ONLY for _, kind, _ in mine[len(lites):]), name
    assert params(tflite_jit.load_delegate) == params(lite_rt.load_delegate)


def test_private_get_tensor_details_and_safe_to_run() -> None:
    def f(m: Any) -> Any:
        it = ready(m, TWO_SIG)
        v = it.tensor(0)()
        blocked = it._safe_to_run()
        del v
        return it._get_tensor_details(2, 1), it._get_tensor_details(1.0, 0), blocked, it._safe_to_run()

    same(f)
    same(lambda m: ready(m, TWO_SIG)._get_tensor_details(99, 0))
    # LiteRT reads out of bounds (crashes) on a bad subgraph index; ours is a ValueError
    with pytest.raises(ValueError, match="Invalid subgraph index 5"):
        ready(tflite_jit, TWO_SIG)._get_tensor_details(0, 5)


def test_native_handle_is_an_int() -> None:
    same(lambda m: type(make(m)._native_handle()))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_unset_num_threads_starts_no_threads() -> None:
    # §1.1.3: leaving num_threads unset means 1 thread: the process gains no OS threads.
    def f(m: Any) -> Any:
        before = len(os.listdir("/proc/self/task"))
        it = ready(m, resolver="AUTO")
        run_two_io(it)
        return len(os.listdir("/proc/self/task")) - before

    same(f)


# ---- deliberate differences --------------------------------------------------------------------


def test_intermediates_readable_even_with_default_resolver() -> None:
    # Deliberate difference: LiteRT's default XNNPACK leaves delegate-internal activations without a
    # buffer ('Tensor data is null'). We always behave like BUILTIN_WITHOUT_DEFAULT_DELEGATES, which
    # is what users reading intermediates want (INTERPRETER_API.md §1.5).
    it = ready(tflite_jit, CONV, resolver="AUTO")
    it.set_tensor(0, np.ones((1, 6, 6, 3), np.float32))
    it.invoke()
    ref = ready(lite_rt, CONV)
    ref.set_tensor(0, np.ones((1, 6, 6, 3), np.float32))
    ref.invoke()
    assert_close(it.get_tensor(3), ref.get_tensor(3))


def test_set_tensor_on_a_constant_is_refused() -> None:
    # LiteRT writes into the read-only model buffer (undefined behaviour); we refuse with ValueError.
    it = ready(tflite_jit, DYN)
    with pytest.raises(ValueError, match="constant"):
        it.set_tensor(1, np.zeros((3, 4), np.float32))


def test_unknown_builtin_fails_at_allocate() -> None:
    # An op we lack must fail at allocate_tensors() with LiteRT's
    # unresolved-op wording and the op's name, never at construction or as a crash.
    from tflite_jit import ops

    candidates = ["CONCAT_EMBEDDINGS", "CALL"]  # LiteRT's builtin resolver lacks these too
    name = next(c for c in candidates if ops.get(c) is None)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (4,), np.float32)
    y = g.tensor("y", (4, 4))
    g.op(name, [x], [y])
    g.output(y)
    it = tflite_jit.Interpreter(model_content=mb.build())
    assert it._get_ops_details()[0]["op_name"] == name
    with pytest.raises(RuntimeError, match=f"Didn't find op for builtin opcode '{name}'"):
        it.allocate_tensors()
    with pytest.raises(RuntimeError, match="Invoke called on model that is not ready"):
        it.invoke()


def test_load_delegate_of_an_existing_library_is_refused() -> None:
    # We cannot host native delegates; loading one is a ValueError naming the library, which is
    # what LiteRT raises when a delegate's create function fails.
    lib = next((p for p in ("/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6",
                            "/lib64/libm.so.6") if os.path.exists(p)), None)
    if lib is None:
        pytest.skip("no libm to load")
    with pytest.raises(ValueError, match="Failed to load delegate from"):
        tflite_jit.load_delegate(lib)


# ---- threads -----------------------------------------------------------------------------------


def test_two_interpreters_in_two_threads() -> None:
    x = np.linspace(-1, 1, 4 * 108, dtype=np.float32).reshape(4, 6, 6, 3)
    expected = None
    ref = ready(lite_rt, CONV)
    ref.resize_tensor_input(0, [4, 6, 6, 3])
    ref.allocate_tensors()
    ref.set_tensor(0, x)
    ref.invoke()
    expected = ref.get_tensor(ref.get_output_details()[0]["index"])
    results: dict[int, list[np.ndarray]] = {}

    def work(k: int) -> None:
        it = ready(tflite_jit, CONV)
        it.resize_tensor_input(0, [4, 6, 6, 3])
        it.allocate_tensors()
        outs = []
        for _ in range(20):
            it.set_tensor(0, x)
            it.invoke()
            outs.append(it.get_tensor(it.get_output_details()[0]["index"]))
        results[k] = outs

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        for out in results[k]:
            assert_close(out, expected)
    for a, b in zip(results[0], results[1]):
        assert np.array_equal(a, b)


def test_overlapping_invoke_on_one_interpreter_raises() -> None:
    it = ready(tflite_jit)
    run_two_io(it)
    it._lock.acquire()  # as if another thread were inside invoke()
    try:
        with pytest.raises(RuntimeError, match="one interpreter per thread"):
            it.invoke()
        with pytest.raises(RuntimeError, match="one interpreter per thread"):
            it.allocate_tensors()
        with pytest.raises(RuntimeError, match="one interpreter per thread"):
            it.resize_tensor_input(0, [1, 4])
    finally:
        it._lock.release()
    expected = run_two_io(ready(lite_rt))
    for o, e in zip(run_two_io(it), expected):
        assert_close(o, e)


def test_concurrent_invokes_never_corrupt() -> None:
    it = ready(tflite_jit, CONV)
    it.resize_tensor_input(0, [8, 6, 6, 3])
    it.allocate_tensors()
    x = np.linspace(-1, 1, 8 * 108, dtype=np.float32).reshape(8, 6, 6, 3)
    it.set_tensor(0, x)
    it.invoke()
    expected = it.get_tensor(it.get_output_details()[0]["index"])
    errors: list[str] = []
    done = [0]
    stop = time.monotonic() + 1.0

    def work() -> None:
        while time.monotonic() < stop:
            try:
                it.invoke()
                done[0] += 1
            except RuntimeError as e:
                errors.append(str(e))
            except Exception as e:  # pragma: no cover - reported below
                errors.append(f"UNEXPECTED {type(e).__name__}: {e}")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert done[0] > 0
    assert not [e for e in errors if "one interpreter per thread" not in e], errors[:3]
    it.invoke()  # no reference to the wrapper leaked by the refused calls (_ensure_safe passes)
    assert_close(it.get_tensor(it.get_output_details()[0]["index"]), expected)


def test_signature_names_are_listed_sorted_like_litert() -> None:
    # LiteRT keeps signature inputs/outputs in std::maps; a file listing 'zeta' before 'alpha'
    # is reported sorted by every signature API.
    mb = ModelBuilder()
    g = mb.subgraph()
    z = g.input("z", (2,), np.float32)
    a = g.input("a", (2,), np.float32)
    (s,) = g.apply("ADD", [z, a])
    (d,) = g.apply("SUB", [z, a])
    g.output(s, d)
    mb.signature("serving_default", {"zeta": z, "alpha": a}, {"sum": s, "diff": d})
    model = mb.build()

    def f(m: Any) -> Any:
        it = m.Interpreter(model_content=model)
        runner = it.get_signature_runner()
        return (it.get_signature_list(), it._get_full_signature_list(),
                list(runner.get_input_details()), list(runner.get_output_details()))

    same(f)


def test_allocate_tensors_again_is_a_no_op_as_in_litert() -> None:
    """Nothing resized: no re-plan (the same executable plan object), state kept, outputs kept;
    a resize makes the next allocate_tensors() plan again."""
    it = make(tflite_jit, TWO_IO)
    it.allocate_tensors()
    ex = it._interpreter.execs[0]
    plan = ex.plan
    it.allocate_tensors()
    assert it._interpreter.execs[0].plan is plan
    d = it.get_input_details()[0]
    it.resize_tensor_input(d["index"], [2, *d["shape"][1:]])
    it.allocate_tensors()
    assert it._interpreter.execs[0].plan is not plan
