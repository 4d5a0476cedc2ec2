"""Control flow and state (ops/control.py) against LiteRT: WHILE, IF, CALL_ONCE and resource
variables (VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE), reset_all_variables and signature
runners over multi-subgraph models."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tflite_jit
from tests.oracle import assert_close, feed_run, litert_interpreter
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.ir.model import TENSOR_TYPE_CODES
from tools.fuzz_models import if_model

pytest.importorskip("ai_edge_litert.interpreter")

F, INT, B = np.float32, np.int32, np.bool_
RESOURCE = TENSOR_TYPE_CODES["RESOURCE"]
BACKENDS = ["reference", "numba"]


def _loop(mb: ModelBuilder, limit: int, cond_name: str = "cond", body_name: str = "body") -> None:
    """Adds cond (i < limit) and body (i + 1, x * [0.5, 2], acc + x) subgraphs over (i, x, acc)."""
    c = mb.subgraph(cond_name)
    ci = c.input("i", (), INT)
    c.input("x", (2,), F)
    c.input("acc", (2,), F)
    lim = c.const("lim", np.array(limit, INT))
    cb = c.tensor("lt", (), B)
    c.op("LESS", [ci, lim], [cb])
    c.output(cb)
    b = mb.subgraph(body_name)
    bi = b.input("i", (), INT)
    bx = b.input("x", (2,), F)
    bacc = b.input("acc", (2,), F)
    one = b.const("one", np.array(1, INT))
    k = b.const("k", np.array([0.5, 2.0], F))
    i1, x1, acc1 = b.tensor("i1", (), INT), b.tensor("x1", (2,), F), b.tensor("acc1", (2,), F)
    b.op("ADD", [bi, one], [i1])
    b.op("MUL", [bx, k], [x1])
    b.op("ADD", [bacc, bx], [acc1])
    b.output(i1, x1, acc1)


def _while_main(g: Any, cond: int, body: int) -> tuple[list[int], list[int]]:
    i0, x0, a0 = g.input("i", (), INT), g.input("x", (2,), F), g.input("acc", (2,), F)
    outs = [g.tensor("i_out", (), INT), g.tensor("x_out", (2,), F), g.tensor("acc_out", (2,), F)]
    y = g.tensor("y", (2,), F)
    g.op("WHILE", [i0, x0, a0], outs, cond_subgraph_index=cond, body_subgraph_index=body)
    g.op("RELU", [outs[2]], [y])  # a consumer after the loop
    return [i0, x0, a0], [*outs, y]


def while_model(limit: int = 10) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph("main")
    _, outs = _while_main(g, 1, 2)
    g.output(*outs)
    _loop(mb, limit)
    return mb.build()


def growing_while_model() -> bytes:
    """A loop whose carried tensor grows by one element per iteration (not shape-invariant)."""
    mb = ModelBuilder()
    g = mb.subgraph("main")
    i0 = g.input("i", (), INT)
    v0 = g.input("v", (1,), F, shape_signature=(-1,))
    io, vo = g.tensor("i_out", (), INT), g.tensor("v_out", (1,), F, shape_signature=(-1,))
    g.op("WHILE", [i0, v0], [io, vo], cond_subgraph_index=1, body_subgraph_index=2)
    g.output(io, vo)
    c = mb.subgraph("cond")
    ci = c.input("i", (), INT)
    c.input("v", (1,), F, shape_signature=(-1,))
    lim = c.const("lim", np.array(4, INT))
    cb = c.tensor("lt", (), B)
    c.op("LESS", [ci, lim], [cb])
    c.output(cb)
    b = mb.subgraph("body")
    bi = b.input("i", (), INT)
    bv = b.input("v", (1,), F, shape_signature=(-1,))
    one = b.const("one", np.array(1, INT))
    i1 = b.tensor("i1", (), INT)
    b.op("ADD", [bi, one], [i1])
    fi = b.tensor("fi", (), F)
    b.op("CAST", [i1], [fi])
    shp = b.const("shp", np.array([1], INT))
    fi1 = b.tensor("fi1", (1,), F)
    b.op("RESHAPE", [fi, shp], [fi1])
    v1 = b.tensor("v1", (2,), F, shape_signature=(-1,))
    b.op("CONCATENATION", [bv, fi1], [v1], axis=0)
    b.output(i1, v1)
    return mb.build()


def variable_model() -> bytes:
    """y = v + x; v = y: a resource variable initialised to [1, 2] by a CALL_ONCE subgraph."""
    mb = ModelBuilder()
    g = mb.subgraph("main")
    x = g.input("x", (2,), F)
    g.op("CALL_ONCE", [], [], init_subgraph_index=1)
    h = g.tensor("h", (), RESOURCE)
    g.op("VAR_HANDLE", [], [h], container="", shared_name="acc")
    v = g.tensor("v", (2,), F)
    g.op("READ_VARIABLE", [h], [v])
    y = g.tensor("y", (2,), F)
    g.op("ADD", [v, x], [y])
    g.op("ASSIGN_VARIABLE", [h, y], [])
    g.output(y)
    init = mb.subgraph("init")
    ih = init.tensor("h", (), RESOURCE)
    init.op("VAR_HANDLE", [], [ih], container="", shared_name="acc")
    init.op("ASSIGN_VARIABLE", [ih, init.const("v0", np.array([1.0, 2.0], F))], [])
    return mb.build()


def two_signature_model() -> bytes:
    """'scale': y = 3x on subgraph 0; 'loop': the WHILE model on subgraph 1 (cond 2, body 3)."""
    mb = ModelBuilder()
    g = mb.subgraph("scale")
    x = g.input("x", (2,), F)
    y = g.tensor("y", (2,), F)
    g.op("MUL", [x, g.const("three", np.full(2, 3, F))], [y])
    g.output(y)
    w = mb.subgraph("loop")
    ins, outs = _while_main(w, 2, 3)
    w.output(*outs)
    _loop(mb, 5)
    mb.signature("scale", {"x": x}, {"y": y}, subgraph_index=0)
    mb.signature("loop", dict(zip(("i", "x", "acc"), ins)),
                 dict(zip(("i_out", "x_out", "acc_out", "y"), outs)), subgraph_index=1)
    return mb.build()


def _pair(model: bytes, backend: str) -> tuple[Any, Any]:
    return tflite_jit.Interpreter(model_content=model, backend=backend), litert_interpreter(model)


def _same(ours: list, theirs: list) -> None:
    assert len(ours) == len(theirs)
    for j, (a, b) in enumerate(zip(ours, theirs)):
        assert_close(a, b, what=f"output {j}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("start", [0, 7, 10, 12])
def test_counting_while_accumulates(backend: str, start: int) -> None:
    model = while_model(10)
    ours, theirs = _pair(model, backend)
    inputs = [np.array(start, INT), np.array([1.0, -3.0], F), np.array([0.25, 0.5], F)]
    _same(feed_run(ours, inputs), feed_run(theirs, inputs))
    # shape-invariant: outputs planned with static shapes; the loop reruns with fresh inputs
    assert [tuple(d["shape"]) for d in ours.get_output_details()] == [(), (2,), (2,), (2,)]
    inputs[0] = np.array(3, INT)
    _same(feed_run(ours, inputs), feed_run(theirs, inputs))


@pytest.mark.parametrize("backend", BACKENDS)
def test_while_with_growing_tensor(backend: str) -> None:
    model = growing_while_model()
    ours, theirs = _pair(model, backend)
    for v in (np.array([9.0], F), np.array([5.0, 6.0, 7.0], F)):
        inputs = [np.array(0, INT), v]
        got = feed_run(ours, inputs)
        _same(got, feed_run(theirs, inputs))
        np.testing.assert_array_equal(got[1], np.concatenate([v, [1, 2, 3, 4]]).astype(F))
        assert tuple(ours.get_output_details()[1]["shape"]) == (len(v) + 4,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_if_picks_branch(backend: str) -> None:
    ours, theirs = _pair(if_model(variable=False), backend)
    x = np.array([1.0, -2.0, 3.5], F)
    for c in (True, False, True):
        inputs = [np.array(c), x]
        got = feed_run(ours, inputs)
        _same(got, feed_run(theirs, inputs))
        np.testing.assert_array_equal(got[0], x + 1 if c else x * 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_persists_across_invokes(backend: str) -> None:
    ours, theirs = _pair(variable_model(), backend)
    x = np.array([0.5, -1.0], F)
    seen = []
    for _ in range(3):
        got = feed_run(ours, [x])
        _same(got, feed_run(theirs, [x]))
        seen.append(got[0])
    np.testing.assert_array_equal(seen[-1], np.array([1.0, 2.0], F) + 3 * x)


def test_variables_are_per_interpreter() -> None:
    model = variable_model()
    a, b = (tflite_jit.Interpreter(model_content=model) for _ in range(2))
    x = np.array([1.0, 1.0], F)
    feed_run(a, [x])
    feed_run(a, [x])
    np.testing.assert_array_equal(feed_run(b, [x])[0], [2.0, 3.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_reset_all_variables_like_litert(backend: str) -> None:
    ours, theirs = _pair(variable_model(), backend)
    x = np.array([2.0, 3.0], F)
    for it in (ours, theirs):
        feed_run(it, [x])
        feed_run(it, [x])
    ours.reset_all_variables()
    theirs.reset_all_variables()
    for _ in range(2):
        ours.invoke()
        theirs.invoke()
        _same([ours.get_tensor(ours.get_output_details()[0]["index"])],
              [theirs.get_tensor(theirs.get_output_details()[0]["index"])])


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_signatures_one_with_a_loop(backend: str) -> None:
    ours, theirs = _pair(two_signature_model(), backend)
    def names(it: Any) -> dict:  # (LiteRT lists names sorted; compared as sets here)
        return {k: {io: sorted(v) for io, v in d.items()} for k, d in it.get_signature_list().items()}

    assert names(ours) == names(theirs)
    for it in (ours, theirs):
        it.allocate_tensors()
    x = np.array([1.5, -2.0], F)
    for _ in range(2):
        for key, kw in (("scale", {"x": x}),
                        ("loop", {"i": np.array(1, INT), "x": x, "acc": np.zeros(2, F)})):
            a = ours.get_signature_runner(key)(**kw)
            b = theirs.get_signature_runner(key)(**kw)
            assert sorted(a) == sorted(b)
            for name in b:
                assert_close(a[name], b[name], what=f"{key}.{name}")


def test_subgraph_failure_names_the_node() -> None:
    """An op failing inside a loop body surfaces as the WHILE node's invoke error."""
    mb = ModelBuilder()
    g = mb.subgraph("main")
    i0 = g.input("i", (), INT)
    io = g.tensor("i_out", (), INT)
    g.op("WHILE", [i0], [io], cond_subgraph_index=1, body_subgraph_index=2)
    g.output(io)
    c = mb.subgraph("cond")
    ci = c.input("i", (), INT)
    cb = c.tensor("lt", (), B)
    c.op("LESS", [ci, c.const("lim", np.array(3, INT))], [cb])
    c.output(cb)
    b = mb.subgraph("body")
    b.input("i", (), INT)
    h = b.tensor("h", (), RESOURCE)
    b.op("VAR_HANDLE", [], [h], container="", shared_name="never_set")
    v = b.tensor("v", (), INT)
    b.op("READ_VARIABLE", [h], [v])
    b.output(v)
    it = tflite_jit.Interpreter(model_content=mb.build())
    it.allocate_tensors()
    with pytest.raises(RuntimeError, match=r"(?s)has not been assigned.*Node number 0 \(WHILE\) failed to invoke"):
        it.invoke()
