"""STRING tensors end to end (the file's string buffer format, set_tensor / get_tensor / detail
dicts through the Interpreter) and SKIP_GRAM, against LiteRT's builtin kernels."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import assert_same, feed_run, litert_interpreter, litert_run
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.reader import load_bytes
from tflite_jit.format.writer import encode_strings

BACKENDS = ("numba", "reference")


def ours_run(model: bytes, inputs: list, backend: str = "numba") -> list[np.ndarray]:
    return feed_run(tflite_jit.Interpreter(model_content=model, backend=backend), inputs)


def passthrough_model(n: int = 2) -> bytes:
    """A string input reshaped to a string output, plus a constant string output."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (n,), np.bytes_)
    s = g.const("s", np.array([n], np.int32))
    y = g.tensor("y", (n,), np.bytes_)
    g.op("RESHAPE", [x, s], [y])
    c = g.const("c", np.array([b"ab", b"", b"x y\x00z"], dtype=object))
    g.output(y, c)
    return mb.build()


# ---- the format ----------------------------------------------------------------------------------

def test_string_buffer_layout():
    raw = encode_strings(np.array([b"ab", b"", b"xyz"], dtype=object))
    assert raw == struct.pack("<5i", 3, 20, 22, 22, 25) + b"abxyz"


@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(max_size=6), min_size=0, max_size=6), st.booleans())
def test_string_constant_round_trip(values, two_d):
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    if two_d and len(values) % 2 == 0 and values:
        arr = arr.reshape(2, -1)
    mb = ModelBuilder()
    g = mb.subgraph()
    c = g.const("c", arr)
    g.output(c)
    data = mb.build()
    t = load_bytes(data).subgraphs[0].tensors[0]
    assert t.data.dtype == object and t.data.shape == arr.shape and t.data.tolist() == arr.tolist()
    it = tflite_jit.Interpreter(model_content=data)
    it.allocate_tensors()
    theirs = litert_interpreter(data)
    theirs.allocate_tensors()
    assert_same([it.get_tensor(0)], [theirs.get_tensor(0)])


@pytest.mark.parametrize("raw, why", [
    (struct.pack("<i", 5), "holds 5 strings"),
    (b"\x01", "no element count"),
    (struct.pack("<i", 2) + struct.pack("<2i", 16, 17), "too short"),
    (struct.pack("<4i", 2, 16, 30, 17) + b"a", "not increasing"),
    (struct.pack("<4i", 2, 4, 16, 17) + b"a", "not increasing"),
])
def test_damaged_string_buffer_is_a_value_error(raw, why):
    mb = ModelBuilder()
    g = mb.subgraph()
    c = g.tensor("c", (2,), np.bytes_, data=np.frombuffer(raw, np.uint8))
    g.output(c)
    with pytest.raises(ValueError, match=why):
        tflite_jit.Interpreter(model_content=mb.build())


# ---- the Interpreter API -------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_string_input_output_like_litert(backend):
    data = passthrough_model()
    ours = tflite_jit.Interpreter(model_content=data, backend=backend)
    theirs = litert_interpreter(data)
    for key in ("get_input_details", "get_output_details"):
        a, b = getattr(ours, key)(), getattr(theirs, key)()
        assert [d["dtype"] for d in a] == [d["dtype"] for d in b] == [np.bytes_] * len(a)
        assert [d["shape"].tolist() for d in a] == [d["shape"].tolist() for d in b]
    ours.allocate_tensors()
    theirs.allocate_tensors()
    for value in (np.array([b"hi", b"there"]), np.array(["h\u00e9", "x"]),
                  np.array([b"a", b"bb"], dtype=object), np.array(["a", b"b\x00c"], dtype=object),
                  np.array([b"", b""]), np.array([b"a", b"b"], dtype="S5")):
        ours.set_tensor(0, value)
        theirs.set_tensor(0, value)
        ours.invoke()
        theirs.invoke()
        assert_same([ours.get_tensor(2), ours.get_tensor(3)], [theirs.get_tensor(2), theirs.get_tensor(3)])
        assert_same([ours.get_tensor(0)], [theirs.get_tensor(0)])


@pytest.mark.parametrize("value, match", [
    (np.array([1, 2], np.int32), "Got value of type INT32 but expected type STRING"),
    (np.array([1, b"a"], dtype=object), "PyBytes_AsStringAndSize"),
    (np.array([b"a", b"b", b"c"]), "Dimension mismatch"),
    (np.array([[b"a", b"b"]]), "Dimension mismatch"),
])
def test_bad_string_values_are_value_errors_like_litert(value, match):
    data = passthrough_model()
    ours = tflite_jit.Interpreter(model_content=data)
    theirs = litert_interpreter(data)
    ours.allocate_tensors()
    theirs.allocate_tensors()
    with pytest.raises(ValueError, match=match):
        theirs.set_tensor(0, value)
    with pytest.raises(ValueError, match=match):
        ours.set_tensor(0, value)


def test_string_tensor_view_is_refused_not_a_crash():
    # LiteRT's tensor() on a string tensor crashes the process; we refuse it.
    it = tflite_jit.Interpreter(model_content=passthrough_model())
    it.allocate_tensors()
    with pytest.raises(ValueError, match="string tensor 0"):
        it.tensor(0)()


def test_unset_string_input_reads_as_empty_strings():
    # (LiteRT's get_tensor crashes on a string tensor nobody set: its data is null.)
    it = tflite_jit.Interpreter(model_content=passthrough_model())
    it.allocate_tensors()
    got = it.get_tensor(0)
    assert got.dtype == object and got.tolist() == [b"", b""]


@pytest.mark.parametrize("backend", BACKENDS)
def test_string_input_resize_and_signature_runner(backend):
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (2,), np.bytes_, shape_signature=(-1,))
    y = g.tensor("y", (2,), np.bytes_)
    g.op("SKIP_GRAM", [x], [y], ngram_size=1, max_skip_size=0, include_all_ngrams=False)
    g.output(y)
    mb.signature("serve", {"x": x}, {"y": y})
    data = mb.build()
    value = np.array([b"one two three", b"ignored"])
    ours = tflite_jit.Interpreter(model_content=data, backend=backend)
    theirs = litert_interpreter(data)
    a = ours.get_signature_runner()(x=value)
    b = theirs.get_signature_runner()(x=value)
    assert_same([a["y"]], [b["y"]])
    assert_same(ours_run(data, [np.array([b"p q", b"r", b"s"])], backend),
                litert_run(data, [np.array([b"p q", b"r", b"s"])]))


# ---- SKIP_GRAM -----------------------------------------------------------------------------------

def skip_gram_model(shape: tuple[int, ...], **options) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", shape, np.bytes_)
    y = g.tensor("y", (0,), np.bytes_)
    g.op("SKIP_GRAM", [x], [y], **options)
    g.output(y)
    return mb.build()


words = st.sampled_from([b"a", b"bb", b"c", b"dd d", b"\xc3\xa9", b"x\x00y"])
spaces = st.sampled_from([b" ", b"  ", b"\t", b"\n", b" \r\n", b"\v", b"\f"])


@st.composite
def sentences(draw):
    parts = draw(st.lists(st.tuples(words, spaces), min_size=0, max_size=6))
    text = b"".join(w + s for w, s in parts)
    if draw(st.booleans()):
        text = draw(spaces) + text  # LiteRT's leading-whitespace quirk
    if draw(st.booleans()):
        text = text.rstrip()
    return text


@settings(max_examples=60, deadline=None)
@given(sentences(), st.integers(-1, 4), st.integers(-1, 3), st.booleans(), st.integers(1, 3))
def test_skip_gram_matches_litert(text, n, skip, include_all, count):
    data = skip_gram_model((count,), ngram_size=n, max_skip_size=skip, include_all_ngrams=include_all)
    inputs = [np.array([text] + [b"other words here"] * (count - 1), dtype=object)]
    theirs = litert_run(data, inputs)
    for backend in BACKENDS:
        assert_same(ours_run(data, inputs, backend), theirs)


@pytest.mark.parametrize("text", [b"", b" ", b"  ", b" x", b" a b", b"a", b"a  b  ", b"\ta\tb c"])
def test_skip_gram_edge_strings(text):
    data = skip_gram_model((1,), ngram_size=2, max_skip_size=1, include_all_ngrams=True)
    inputs = [np.array([text], dtype=object)]
    assert_same(ours_run(data, inputs), litert_run(data, inputs))


def test_skip_gram_2d_input_uses_first_string():
    data = skip_gram_model((2, 2), ngram_size=2, max_skip_size=0, include_all_ngrams=False)
    inputs = [np.array([[b"a b c", b"x y"], [b"p q", b"r s"]], dtype=object)]
    assert_same(ours_run(data, inputs), litert_run(data, inputs))


def test_skip_gram_empty_input_is_refused():
    # LiteRT reads string 0 of an empty tensor out of bounds; we raise at invoke.
    data = skip_gram_model((0,), ngram_size=1, max_skip_size=0, include_all_ngrams=False)
    it = tflite_jit.Interpreter(model_content=data)
    it.allocate_tensors()
    with pytest.raises(RuntimeError, match="SKIP_GRAM: the input has no string"):
        it.invoke()


@pytest.mark.parametrize("in_type, out_type", [(np.int32, np.bytes_), (np.bytes_, np.int32)])
def test_skip_gram_non_string_tensors_fail_at_prepare_like_litert(in_type, out_type):
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1,), in_type)
    y = g.tensor("y", (1,), out_type)
    g.op("SKIP_GRAM", [x], [y], ngram_size=1, max_skip_size=0, include_all_ngrams=False)
    g.output(y)
    data = mb.build()
    with pytest.raises(RuntimeError, match="SKIP_GRAM"):
        litert_interpreter(data).allocate_tensors()
    with pytest.raises(RuntimeError, match="must be a STRING tensor"):
        tflite_jit.Interpreter(model_content=data).allocate_tensors()


def test_scalar_string_values():
    # LiteRT copies a 0-d object array's pointer bytes and a 0-d str array's raw UCS-4 bytes into
    # the tensor (garbage); 0-d bytes arrays it takes correctly. We take all three as their value.
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (), np.bytes_)
    g.output(x)
    data = mb.build()
    theirs = litert_interpreter(data)
    theirs.allocate_tensors()
    theirs.set_tensor(0, np.array(b"abc"))
    it = tflite_jit.Interpreter(model_content=data)
    it.allocate_tensors()
    it.set_tensor(0, np.array(b"abc"))
    assert_same([it.get_tensor(0)], [theirs.get_tensor(0)])
    for value in (np.array(b"abc", dtype=object), np.array("abc"), np.array("abc", dtype=object)):
        it.set_tensor(0, value)
        got = it.get_tensor(0)
        assert got.dtype == object and got.shape == () and got.item() == b"abc"
