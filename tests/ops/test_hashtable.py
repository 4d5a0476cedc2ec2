"""HASHTABLE / HASHTABLE_IMPORT / HASHTABLE_FIND / HASHTABLE_SIZE (per-interpreter static hash
tables, int64 <-> string) and HASHTABLE_LOOKUP against LiteRT's builtin kernels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tflite_jit
from tests.oracle import assert_same, feed_run, litert_interpreter
from tflite_jit.format.builder import ModelBuilder

RES = 13  # TensorType RESOURCE
INT64, STRING = 4, 5
BACKENDS = ("numba", "reference")


def interpreters(data: bytes) -> list:
    return [litert_interpreter(data)] + [tflite_jit.Interpreter(model_content=data, backend=b)
                                         for b in BACKENDS]


def table_model(string_keys: bool, kshape, qshape, dshape=(), *, table_id: int = 1,
                order=("import", "find", "size"), kd=None, vd=None) -> bytes:
    """Graph inputs keys, values, queries, default; HASHTABLE then the ops in `order`;
    outputs: the lookup result and the size."""
    kt, vt = (np.bytes_, np.int64) if string_keys else (np.int64, np.bytes_)
    mb = ModelBuilder()
    g = mb.subgraph()
    k = g.input("keys", kshape, kt)
    v = g.input("values", kshape, vt)
    q = g.input("queries", qshape, kt)
    d = g.input("default", dshape, vt)
    out = g.tensor("found", qshape, vt)
    sz = g.tensor("size", (1,), np.int64)
    h = g.tensor("handle", (1,), RES)
    g.op("HASHTABLE", [], [h], table_id=table_id,
         key_dtype=(STRING if string_keys else INT64) if kd is None else kd,
         value_dtype=(INT64 if string_keys else STRING) if vd is None else vd)
    for name in order:
        if name == "import":
            g.op("HASHTABLE_IMPORT", [h, k, v], [])
        elif name == "find":
            g.op("HASHTABLE_FIND", [h, q, d], [out])
        else:
            g.op("HASHTABLE_SIZE", [h], [sz])
    g.output(out, sz)
    return mb.build()


str_keys = st.sampled_from([b"", b"a", b"b", b"cat", b"dog", b"\xc3\xa9", b"x\x00y"])
int_keys = st.integers(-3, 3) | st.sampled_from([2**63 - 1, -2**63, 2**40])


def as_strings(xs) -> np.ndarray:
    out = np.empty(len(xs), dtype=object)
    out[:] = xs
    return out


@settings(max_examples=40, deadline=None)
@given(st.booleans(), st.data())
def test_import_find_size_match_litert(string_keys, data):
    n = data.draw(st.integers(1, 6))
    m = data.draw(st.integers(0, 6))
    if string_keys:
        keys = as_strings(data.draw(st.lists(str_keys, min_size=n, max_size=n)))
        values = np.array(data.draw(st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n)),
                          np.int64)
        queries = as_strings(data.draw(st.lists(str_keys, min_size=m, max_size=m)))
        default = np.array(data.draw(st.integers(-5, 5)), np.int64)
    else:
        keys = np.array(data.draw(st.lists(int_keys, min_size=n, max_size=n)), np.int64)
        values = as_strings(data.draw(st.lists(str_keys, min_size=n, max_size=n)))
        queries = np.array(data.draw(st.lists(int_keys, min_size=m, max_size=m)), np.int64)
        default = np.array(b"<none>")  # (LiteRT misreads 0-d object arrays: see test_strings)
    two_d = data.draw(st.booleans()) and m % 2 == 0 and m > 0
    if two_d:
        queries = queries.reshape(2, -1)
    model = table_model(string_keys, keys.shape, queries.shape)
    inputs = [keys, values, queries, default]
    theirs, *ours = (feed_run(it, inputs) for it in interpreters(model))
    for o in ours:
        assert_same(o, theirs)


def test_table_persists_and_imports_once():
    model = table_model(True, (4,), (3,))
    its = interpreters(model)
    results = []
    for it in its:
        got = []
        for vals in ([1, 2, 3, 4], [10, 20, 30, 40]):
            got.append(feed_run(it, [np.array([b"a", b"b", b"a", b"c"]), np.array(vals, np.int64),
                                     np.array([b"a", b"c", b"z"]), np.array(-1, np.int64)]))
        it.reset_all_variables()  # tables are not variables: they survive it in LiteRT
        it.invoke()
        got.append([it.get_tensor(d["index"]) for d in it.get_output_details()])
        results.append(got)
    for ours in results[1:]:
        for a, b in zip(ours, results[0]):
            assert_same(a, b)
    assert results[0][1][0].tolist() == [1, 4, -1]  # first import wins, first duplicate wins


def test_two_interpreters_have_separate_tables():
    model = table_model(False, (2,), (2,))
    a = tflite_jit.Interpreter(model_content=model)
    b = tflite_jit.Interpreter(model_content=model)
    ra = feed_run(a, [np.array([1, 2], np.int64), np.array([b"x", b"y"]), np.array([2, 3], np.int64),
                      np.array(b"-")])
    rb = feed_run(b, [np.array([1, 2], np.int64), np.array([b"p", b"q"]), np.array([2, 3], np.int64),
                      np.array(b"-")])
    assert ra[0].tolist() == [b"y", b"-"] and rb[0].tolist() == [b"q", b"-"]


@pytest.mark.parametrize("table_id", [0, -5, 12345])
def test_any_table_id_and_size_before_import(table_id):
    model = table_model(True, (2,), (2,), table_id=table_id, order=("size", "import", "find"))
    inputs = [np.array([b"a", b"b"]), np.array([7, 8], np.int64), np.array([b"b", b"q"]),
              np.array(0, np.int64)]
    theirs, *ours = (feed_run(it, inputs) for it in interpreters(model))
    for o in ours:
        assert_same(o, theirs)
    assert theirs[1].tolist() == [0]


def test_default_uses_its_first_element():
    model = table_model(True, (2,), (2,), dshape=(3,))
    inputs = [np.array([b"a", b"b"]), np.array([7, 8], np.int64), np.array([b"b", b"q"]),
              np.array([-7, -8, -9], np.int64)]
    theirs, *ours = (feed_run(it, inputs) for it in interpreters(model))
    for o in ours:
        assert_same(o, theirs)


# ---- errors --------------------------------------------------------------------------------------

def check_both_raise(model: bytes, inputs: list, stage: str, match: str) -> None:
    """LiteRT and we raise RuntimeError: both when a node fails to prepare ('prepare': we at
    allocate_tensors; LiteRT prepares the nodes after a HASHTABLE — whose RESOURCE output is a
    dynamic tensor — only at invoke), or both at invoke ('invoke')."""
    for it in interpreters(model):
        ours = isinstance(it, tflite_jit.Interpreter)
        if stage == "prepare" and ours:
            with pytest.raises(RuntimeError, match=match):
                it.allocate_tensors()
        elif stage == "prepare":
            with pytest.raises(RuntimeError, match="failed to prepare"):
                it.allocate_tensors()
                it.invoke()
        else:
            with pytest.raises(RuntimeError, match=match if ours else "failed to invoke"):
                feed_run(it, inputs)


S_INPUTS = [np.array([b"a", b"b"]), np.array([1, 2], np.int64), np.array([b"a", b"z"]),
            np.array(-1, np.int64)]


@pytest.mark.parametrize("kd, vd", [(INT64, INT64), (STRING, STRING), (2, STRING), (STRING, 2)])
def test_bad_key_value_dtypes_fail_at_prepare(kd, vd):
    check_both_raise(table_model(True, (2,), (2,), kd=kd, vd=vd), S_INPUTS, "prepare",
                     "HASHTABLE: key_dtype")


def test_find_before_import_fails_at_invoke():
    check_both_raise(table_model(True, (2,), (2,), order=("find", "import", "size")), S_INPUTS,
                     "invoke", "initialized before using")


def test_table_type_mismatch_fails_at_invoke():
    # The table is int64 -> string but the graph looks strings up in it.
    check_both_raise(table_model(True, (2,), (2,), kd=INT64, vd=STRING), S_INPUTS, "invoke",
                     "the keys are STRING but the table's keys are INT64")


def handle_input_model(htype, hshape=(1,)) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    hh = g.input("hh", hshape, htype)
    q = g.input("q", (2,), np.bytes_)
    d = g.input("d", (), np.int64)
    out = g.tensor("out", (2,), np.int64)
    h = g.tensor("h", (1,), RES)
    g.op("HASHTABLE", [], [h], table_id=1, key_dtype=STRING, value_dtype=INT64)
    g.op("HASHTABLE_FIND", [hh, q, d], [out])
    g.output(out)
    return mb.build()


@pytest.mark.parametrize("htype", [np.int32, np.int64])
def test_non_resource_handle_fails_at_prepare(htype):
    check_both_raise(handle_input_model(htype), [], "prepare", "must be a RESOURCE tensor")


def test_handle_output_must_be_resource_and_size_int64():
    mb = ModelBuilder()
    g = mb.subgraph()
    h = g.tensor("h", (1,), np.int32)
    g.op("HASHTABLE", [], [h], table_id=7, key_dtype=STRING, value_dtype=INT64)
    g.output(h)
    check_both_raise(mb.build(), [], "prepare", "must be a RESOURCE tensor")
    mb = ModelBuilder()
    g = mb.subgraph()
    h = g.tensor("h", (1,), RES)
    s = g.tensor("s", (1,), np.int32)
    g.op("HASHTABLE", [], [h], table_id=7, key_dtype=STRING, value_dtype=INT64)
    g.op("HASHTABLE_SIZE", [h], [s])
    g.output(s)
    check_both_raise(mb.build(), [], "prepare", "declared int32 but the op produces int64")


def test_empty_default_is_refused_not_a_crash():
    # LiteRT reads element 0 of an empty default tensor (a crash): we refuse at prepare.
    model = table_model(True, (2,), (2,), dshape=(0,))
    it = tflite_jit.Interpreter(model_content=model)
    with pytest.raises(RuntimeError, match="default value 'default' is empty"):
        it.allocate_tensors()


def test_import_shape_mismatch_and_unknown_handle_are_errors():
    mb = ModelBuilder()
    g = mb.subgraph()
    k = g.input("k", (3,), np.bytes_)
    v = g.input("v", (2,), np.int64)
    h = g.tensor("h", (1,), RES)
    g.op("HASHTABLE", [], [h], table_id=1, key_dtype=STRING, value_dtype=INT64)
    g.op("HASHTABLE_IMPORT", [h, k, v], [])
    check_both_raise(mb.build(), [], "prepare", "must have the same shape")
    # A RESOURCE handle fed from outside that names no table: LiteRT's lookup finds nothing.
    mb = ModelBuilder()
    g = mb.subgraph()
    hh = g.input("hh", (1,), RES)
    s = g.tensor("s", (1,), np.int64)
    g.op("HASHTABLE_SIZE", [hh], [s])
    g.output(s)
    it = tflite_jit.Interpreter(model_content=mb.build())
    it.allocate_tensors()
    with pytest.raises(RuntimeError, match="no hash table with id 0"):
        it.invoke()


# ---- HASHTABLE_LOOKUP ----------------------------------------------------------------------------

def lookup_model(lshape, kshape, vshape, vdtype) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    look = g.input("lookup", lshape, np.int32)
    k = g.input("keys", kshape, np.int32)
    v = g.input("values", vshape, vdtype)
    o = g.tensor("out", (0,), vdtype)
    hits = g.tensor("hits", (0,), np.uint8)
    g.op("HASHTABLE_LOOKUP", [look, k, v], [o, hits])
    g.output(o, hits)
    return mb.build()


i32 = st.integers(-8, 8) | st.sampled_from([2**31 - 1, -2**31, 2**30])


@settings(max_examples=50, deadline=None)
@given(st.data(), st.sampled_from(["float32", "int32", "int64", "uint8", "int8", "bool", "string"]),
       st.booleans())
def test_hashtable_lookup_matches_litert(data, vtype, sort_keys):
    n = data.draw(st.integers(1, 6))
    m = data.draw(st.integers(0, 7))
    keys = np.array(data.draw(st.lists(i32, min_size=n, max_size=n, unique=sort_keys)), np.int32)
    if sort_keys:
        keys = np.sort(keys)
    lookups = np.array(data.draw(st.lists(i32 | st.sampled_from(keys.tolist()), min_size=m, max_size=m)),
                       np.int32)
    if vtype == "string":
        values = as_strings(data.draw(st.lists(str_keys, min_size=n, max_size=n)))
        vdtype = np.bytes_
    else:
        rest = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
        values = (np.arange(n * int(np.prod(rest))) * 3 + 1).astype(vtype).reshape((n, *rest))
        vdtype = values.dtype
    model = lookup_model(lookups.shape, keys.shape, values.shape, vdtype)
    inputs = [lookups, keys, values]
    theirs, *ours = (feed_run(it, inputs) for it in interpreters(model))
    for o in ours:
        assert_same(o, theirs)


@pytest.mark.parametrize("keys", [[-5, 2**31 - 1], [2**31 - 1, -1], [-2**31, 2**31 - 1, 0]])
def test_hashtable_lookup_extreme_keys(keys):
    # LiteRT's comparator is an int32 subtraction (it would wrap) but compares exactly as built.
    lookups = np.array([2**31 - 1, -2**31, 5, -1, 0], np.int32)
    keys = np.array(keys, np.int32)
    values = np.arange(keys.size, dtype=np.int32) + 10
    model = lookup_model(lookups.shape, keys.shape, values.shape, np.int32)
    theirs, *ours = (feed_run(it, [lookups, keys, values]) for it in interpreters(model))
    for o in ours:
        assert_same(o, theirs)


def test_hashtable_lookup_errors():
    # No keys: LiteRT refuses at invoke (it would divide by the row count).
    check_both_raise(lookup_model((1,), (0,), (0,), np.int32),
                     [np.array([1], np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32)],
                     "invoke", "num_rows != 0")
    for lshape, kshape, vshape, vdtype, match in [
        ((2,), (2,), (2, 1), np.bytes_, "string values 'values' must be 1-D"),
        ((2,), (3,), (2,), np.int32, "3 keys but 2 value rows"),
        ((2, 1), (2,), (2,), np.int32, "must be a 1-D INT32 tensor"),
        ((2,), (2, 1), (2,), np.int32, "must be a 1-D INT32 tensor"),
        ((2,), (2,), (), np.int32, "at least 1 dimension"),
    ]:
        check_both_raise(lookup_model(lshape, kshape, vshape, vdtype), [], "prepare", match)
    mb = ModelBuilder()
    g = mb.subgraph()
    look = g.input("lookup", (2,), np.int64)
    k = g.input("keys", (2,), np.int32)
    v = g.input("values", (2,), np.float32)
    o = g.tensor("out", (2,), np.float32)
    hits = g.tensor("hits", (2,), np.uint8)
    g.op("HASHTABLE_LOOKUP", [look, k, v], [o, hits])
    g.output(o, hits)
    check_both_raise(mb.build(), [], "prepare", "must be a 1-D INT32 tensor")


# ---- the converter's pattern: constant keys/values, every fusion strategy --------------------------

@pytest.mark.parametrize("fusion", ["none", "epilogue", "elementwise", "rules", "greedy_cost"])
def test_constant_table_through_every_fusion_strategy(fusion):
    # tf.lookup.StaticHashTable(KeyValueTensorInitializer(...)) converts to constant keys/values;
    # IMPORT and FIND share no data edge, so the op order must survive every strategy.
    mb = ModelBuilder()
    g = mb.subgraph()
    q = g.input("words", (2, 2), np.bytes_)
    k = g.const("vocab", np.array([b"the", b"cat", b"sat", b"\xc3\xa9t\xc3\xa9"], dtype=object))
    v = g.const("ids", np.array([3, 1, 4, 1], np.int64))
    d = g.const("oov", np.array(-1, np.int64))
    one = g.const("one", np.array(1, np.int64))
    h = g.tensor("handle", (1,), RES)
    found = g.tensor("found", (2, 2), np.int64)
    plus = g.tensor("plus", (2, 2), np.int64)
    g.op("HASHTABLE", [], [h], table_id=3, key_dtype=STRING, value_dtype=INT64)
    g.op("HASHTABLE_IMPORT", [h, k, v], [])
    g.op("HASHTABLE_FIND", [h, q, d], [found])
    g.op("ADD", [found, one], [plus])
    g.output(plus)
    model = mb.build()
    words = np.array([[b"cat", b"dog"], ["\u00e9t\u00e9", b"the"]], dtype=object)
    theirs = feed_run(litert_interpreter(model), [words])
    ours = feed_run(tflite_jit.Interpreter(model_content=model, fusion=fusion), [words])
    assert_same(ours, theirs)
    assert theirs[0].tolist() == [[2, 0], [2, 4]]
