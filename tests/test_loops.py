"""WHILE loops as one prepared unit (tflite_jit/runtime/loops.py): the compiled driver, the
Python loop it falls back to, aliasing between loop variables, and errors inside the loop —
each against LiteRT."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tflite_jit
from tests.oracle import litert_interpreter
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.runtime import tiers

F, INT, B = np.float32, np.int32, np.bool_


def _run(it, values):
    it.allocate_tensors()
    for d, v in zip(it.get_input_details(), values):
        it.set_tensor(d["index"], v)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def _loops(it):
    return it._interpreter.context._loops


def time_loop_model(steps: int = 6, feat: int = 5) -> bytes:
    """A recurrent cell as TF's converter writes it: WHILE over (i, h, seq); the body reads step
    i of the sequence with GATHER(seq, i), h = tanh(x * w + h * 0.5)."""
    mb = ModelBuilder()
    g = mb.subgraph("main")
    seq = g.input("seq", (steps, feat), F)
    i0 = g.const("i0", np.array(0, INT))
    h0 = g.const("h0", np.zeros(feat, F))
    io, ho, so = g.tensor("i_out", (), INT), g.tensor("h_out", (feat,), F), g.tensor("s_out", (steps, feat), F)
    g.op("WHILE", [i0, h0, seq], [io, ho, so], cond_subgraph_index=1, body_subgraph_index=2)
    g.output(ho)
    c = mb.subgraph("cond")
    ci = c.input("i", (), INT)
    c.input("h", (feat,), F)
    c.input("seq", (steps, feat), F)
    lt = c.tensor("lt", (), B)
    c.op("LESS", [ci, c.const("n", np.array(steps, INT))], [lt])
    c.output(lt)
    b = mb.subgraph("body")
    bi, bh, bs = b.input("i", (), INT), b.input("h", (feat,), F), b.input("seq", (steps, feat), F)
    x, xw, hh, s, h1, i1 = (b.tensor("x", (feat,), F), b.tensor("xw", (feat,), F), b.tensor("hh", (feat,), F),
                            b.tensor("s", (feat,), F), b.tensor("h1", (feat,), F), b.tensor("i1", (), INT))
    b.op("GATHER", [bs, bi], [x], axis=0)
    b.op("MUL", [x, b.const("w", np.linspace(-1, 1, feat).astype(F))], [xw])
    b.op("MUL", [bh, b.const("half", np.array(0.5, F))], [hh])
    b.op("ADD", [xw, hh], [s])
    b.op("TANH", [s], [h1])
    b.op("ADD", [bi, b.const("one", np.array(1, INT))], [i1])
    b.output(i1, h1, bs)
    return mb.build()


def test_time_loop_runs_in_the_compiled_driver_and_matches_litert():
    model = time_loop_model()
    seq = np.random.default_rng(0).standard_normal((6, 5)).astype(F)
    want = _run(litert_interpreter(model), [seq])
    it = tflite_jit.Interpreter(model_content=model)
    got = _run(it, [seq])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6, atol=1e-6)
    (loop,) = _loops(it).values()
    assert loop.driver is not None, "every step of cond and body is a Numba kernel: the loop must be compiled"
    for _ in range(3):  # again: the driver reuses its buffers, results do not drift
        it.invoke()
        np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]), got[0])


def test_driver_and_python_loop_agree_bit_for_bit():
    model = time_loop_model(steps=9, feat=7)
    seq = np.random.default_rng(1).standard_normal((9, 7)).astype(F)
    it = tflite_jit.Interpreter(model_content=model)
    fast = _run(it, [seq])[0]
    (loop,) = _loops(it).values()
    loop.driver = None  # the same loop, iterated from Python
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]), fast)


def test_gather_index_out_of_range_inside_the_loop_fails_the_invoke():
    """The sequence has 4 steps, the loop runs 6: step 4 reads past the end. LiteRT fails the
    invoke; so do we, before reading out of bounds, naming GATHER and the WHILE node."""
    mb = ModelBuilder()
    g = mb.subgraph("main")
    seq = g.input("seq", (4, 3), F)
    i0, h0 = g.const("i0", np.array(0, INT)), g.const("h0", np.zeros(3, F))
    outs = [g.tensor("i_out", (), INT), g.tensor("h_out", (3,), F), g.tensor("s_out", (4, 3), F)]
    g.op("WHILE", [i0, h0, seq], outs, cond_subgraph_index=1, body_subgraph_index=2)
    g.output(outs[1])
    c = mb.subgraph("cond")
    ci = c.input("i", (), INT)
    c.input("h", (3,), F)
    c.input("seq", (4, 3), F)
    lt = c.tensor("lt", (), B)
    c.op("LESS", [ci, c.const("n", np.array(6, INT))], [lt])
    c.output(lt)
    b = mb.subgraph("body")
    bi, bh, bs = b.input("i", (), INT), b.input("h", (3,), F), b.input("seq", (4, 3), F)
    x, h1, i1 = b.tensor("x", (3,), F), b.tensor("h1", (3,), F), b.tensor("i1", (), INT)
    b.op("GATHER", [bs, bi], [x], axis=0)
    b.op("ADD", [bh, x], [h1])
    b.op("ADD", [bi, b.const("one", np.array(1, INT))], [i1])
    b.output(i1, h1, bs)
    model = mb.build()
    seq_v = np.ones((4, 3), F)
    with pytest.raises(RuntimeError, match="gather index out of bounds"):
        _run(litert_interpreter(model), [seq_v])
    it = tflite_jit.Interpreter(model_content=model)
    with pytest.raises(RuntimeError, match=r"(?s)gather index out of bounds.*Node number 0 \(WHILE\) failed to invoke"):
        _run(it, [seq_v])
    # the interpreter stays usable: the error is reported, nothing was corrupted
    with pytest.raises(RuntimeError, match="gather index out of bounds"):
        it.invoke()


def test_body_swapping_its_loop_variables():
    """body(a, b) = (b, a + b): an output buffer is another variable's input buffer, so the
    copy back must not read what it already overwrote."""
    mb = ModelBuilder()
    g = mb.subgraph("main")
    i0, a0, b0 = g.input("i", (), INT), g.input("a", (3,), F), g.input("b", (3,), F)
    outs = [g.tensor("i_out", (), INT), g.tensor("a_out", (3,), F), g.tensor("b_out", (3,), F)]
    g.op("WHILE", [i0, a0, b0], outs, cond_subgraph_index=1, body_subgraph_index=2)
    g.output(*outs)
    c = mb.subgraph("cond")
    ci = c.input("i", (), INT)
    c.input("a", (3,), F)
    c.input("b", (3,), F)
    lt = c.tensor("lt", (), B)
    c.op("LESS", [ci, c.const("n", np.array(7, INT))], [lt])
    c.output(lt)
    b = mb.subgraph("body")
    bi, ba, bb = b.input("i", (), INT), b.input("a", (3,), F), b.input("b", (3,), F)
    s, i1 = b.tensor("s", (3,), F), b.tensor("i1", (), INT)
    b.op("ADD", [ba, bb], [s])
    b.op("ADD", [bi, b.const("one", np.array(1, INT))], [i1])
    b.output(i1, bb, s)
    model = mb.build()
    vals = [np.array(0, INT), np.array([1, 0, 2], F), np.array([1, 1, -1], F)]
    want = _run(litert_interpreter(model), vals)
    got = _run(tflite_jit.Interpreter(model_content=model), vals)
    for w, x in zip(want, got):
        np.testing.assert_array_equal(x, w)


def test_zero_iterations_return_the_inputs():
    from tests.test_control_flow import while_model

    model = while_model(limit=5)
    vals = [np.array(9, INT), np.array([1.5, -2], F), np.array([3, 4], F)]  # i >= limit: no pass
    want = _run(litert_interpreter(model), vals)
    it = tflite_jit.Interpreter(model_content=model)
    got = _run(it, vals)
    for w, x in zip(want, got):
        np.testing.assert_array_equal(x, w)
    np.testing.assert_array_equal(got[2], vals[2])
    assert next(iter(_loops(it).values())).driver is not None


@pytest.mark.parametrize("params_shape,idx_shape,axis,batch_dims,idx_type", [
    ((6, 4), (), 0, 0, np.int32),           # one time step, as a recurrent body reads it
    ((2, 5, 3), (4,), 1, 0, np.int64),
    ((3, 4, 2), (3, 2), 1, 1, np.int32),     # batch dims
    ((5,), (2, 2), 0, 0, np.int16),
    ((2, 3, 4), (1,), -1, 0, np.int32),
])
def test_gather_with_run_time_indices_is_compiled(params_shape, idx_shape, axis, batch_dims, idx_type):
    from tests.oracle import litert_run, one_op_model, run_engine

    rng = np.random.default_rng(4)
    params = rng.standard_normal(params_shape).astype(F)
    n = params_shape[axis]
    idx = rng.integers(0, n, size=idx_shape).astype(idx_type)
    model = one_op_model("GATHER", [(params.shape, F), (idx.shape, idx.dtype)], axis=axis, batch_dims=batch_dims)
    (want,) = litert_run(model, [params, idx])
    outs, steps = run_engine(model, [params, idx], "numba")
    np.testing.assert_array_equal(outs[0], want)
    assert set(steps) == {"numba_cpu"}, steps


def limit_loop_model(steps: int = 5) -> bytes:
    """WHILE over (i, n, acc, seq) where the cond reads `n`, a variable the body passes through
    unchanged (copied into the cond once, before the first pass), and never reads `acc` or `seq`
    (never copied into the cond at all)."""
    mb = ModelBuilder()
    g = mb.subgraph("main")
    n = g.input("n", (), INT)
    seq = g.input("seq", (steps, 3), F)
    i0, a0 = g.const("i0", np.array(0, INT)), g.const("a0", np.zeros(3, F))
    outs = [g.tensor("i_out", (), INT), g.tensor("n_out", (), INT), g.tensor("a_out", (3,), F),
            g.tensor("s_out", (steps, 3), F)]
    g.op("WHILE", [i0, n, a0, seq], outs, cond_subgraph_index=1, body_subgraph_index=2)
    g.output(outs[0], outs[2])
    c = mb.subgraph("cond")
    ci, cn = c.input("i", (), INT), c.input("n", (), INT)
    c.input("acc", (3,), F)
    c.input("seq", (steps, 3), F)
    lt = c.tensor("lt", (), B)
    c.op("LESS", [ci, cn], [lt])
    c.output(lt)
    b = mb.subgraph("body")
    bi, bn, ba, bs = b.input("i", (), INT), b.input("n", (), INT), b.input("acc", (3,), F), b.input("seq", (steps, 3), F)
    x, a1, i1 = b.tensor("x", (3,), F), b.tensor("a1", (3,), F), b.tensor("i1", (), INT)
    b.op("GATHER", [bs, bi], [x], axis=0)
    b.op("ADD", [ba, x], [a1])
    b.op("ADD", [bi, b.const("one", np.array(1, INT))], [i1])
    b.output(i1, bn, a1, bs)
    return mb.build()


@pytest.mark.parametrize("limit", [0, 3, 5])
def test_cond_reading_a_passed_through_variable_matches_litert(limit):
    """The loop copies into the cond only what the cond reads, and a variable the body passes
    through only once: the results must not notice, for any trip count, invoke after invoke."""
    model = limit_loop_model()
    seq = np.arange(15, dtype=F).reshape(5, 3)
    vals = [np.array(limit, INT), seq]
    want = _run(litert_interpreter(model), vals)
    it = tflite_jit.Interpreter(model_content=model)
    for _ in range(2):
        got = _run(it, vals)
        for w, g in zip(want, got):
            np.testing.assert_array_equal(g, w)
    (loop,) = _loops(it).values()
    assert loop.driver is not None
    assert loop.cond_reads == [True, True, False, False]
    it.set_tensor(it.get_input_details()[0]["index"], np.array(2, INT))  # another trip count, same plan
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[1]["index"]), seq[:2].sum(0))


def test_background_jit_reaches_the_compiled_loop():
    """jit='background' (the default): the first invokes run the body on the reference kernels
    and the loop from Python; once the body's kernels are compiled the loop rebinds to them and
    its driver builds on a thread; wait_for_jit() waits for both. Results equal the eager run."""
    model = time_loop_model(steps=7, feat=4)
    seq = np.random.default_rng(2).standard_normal((7, 4)).astype(F)
    eager = _run(tflite_jit.Interpreter(model_content=model, jit="eager"), [seq])[0]
    it = tflite_jit.Interpreter(model_content=model, jit="background")
    np.testing.assert_array_equal(_run(it, [seq])[0], eager)
    assert it.wait_for_jit(timeout=300)
    it.invoke()
    (loop,) = _loops(it).values()
    assert loop.driver is not None
    assert all(s.backend == "numba_cpu" for s in loop.body.steps)
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]), eager)


def test_jit_status_counts_a_building_loop_driver_as_pending(monkeypatch):
    """Until a WHILE's compiled driver is in, the loop runs its passes from Python (~100x slower
    on a recurrent model): jit_status() must not report full speed then, or benchmarks and
    `bench` measure the Python loop. The build is held on an event to see that window."""
    from tflite_jit.runtime import loops

    release = threading.Event()
    real = loops._driver

    def held(loop):
        release.wait(60)
        return real(loop)

    model = time_loop_model(steps=5, feat=3)
    seq = np.random.default_rng(4).standard_normal((5, 3)).astype(F)
    eager = _run(tflite_jit.Interpreter(model_content=model, jit="eager"), [seq])[0]
    monkeypatch.setattr(loops, "_driver", held)
    it = tflite_jit.Interpreter(model_content=model, jit="background")
    _run(it, [seq])
    ctx = it._interpreter.context
    assert tiers.wait(ctx.executables(), 300)  # the body's kernels, not yet the driver
    st = it.jit_status()
    assert st["pending"] == 1 and st["reference"] == 0, st
    (loop,) = _loops(it).values()
    assert loop.pending and loop.driver is None
    release.set()
    assert it.wait_for_jit(timeout=300)
    assert it.jit_status() == {"mode": "background", "compiled": st["compiled"], "pending": 0, "reference": 1}
    it.invoke()
    (loop,) = _loops(it).values()
    assert loop.driver is not None
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]), eager)


_DRIVER_RUN = """
import json, sys, numpy as np, tflite_jit
it = tflite_jit.Interpreter(model_path=sys.argv[1], jit=sys.argv[2])
it.allocate_tensors()
it.set_tensor(it.get_input_details()[0]["index"], np.ones((4, 3), np.float32))
it.invoke()
(loop,) = it._interpreter.context._loops.values()
d = loop.driver
print(json.dumps({"driver": d is not None, "hits": sum(d._cache_hits.values()) if d else 0,
                  "misses": sum(d._cache_misses.values()) if d else 0,
                  "module": d.py_func.__module__ if d else None,
                  "out": it.get_tensor(it.get_output_details()[0]["index"]).tolist()}))
"""


def _driver_run(model, cache, jit):
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, TFLITE_JIT_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", _DRIVER_RUN, str(model), jit], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def test_jit_off_never_compiles_a_driver_but_loads_a_cached_one(tmp_path):
    """jit='off' compiles nothing, the loop driver included: on a cache holding the kernels but
    not the driver the loop runs from Python (same result); once a driver is cached it is used."""
    model = tmp_path / "loop.tflite"
    model.write_bytes(time_loop_model(steps=4, feat=3))
    cache = tmp_path / "cache"
    eager = _driver_run(model, cache, "eager")
    assert eager["driver"] and eager["misses"] >= 1
    off = _driver_run(model, cache, "off")
    assert off["driver"] and off["hits"] >= 1 and off["misses"] == 0 and off["out"] == eager["out"]
    for f in (cache / "__pycache__").glob(eager["module"] + ".*"):
        f.unlink()
    off = _driver_run(model, cache, "off")
    assert not off["driver"]
    np.testing.assert_allclose(off["out"], eager["out"], rtol=1e-6)


def test_compiled_driver_is_cached_across_processes(tmp_path):
    """The driver is a generated module in the compile cache with Numba's cache on: a second
    process (a warm start) loads its machine code instead of compiling it again."""
    model = tmp_path / "loop.tflite"
    model.write_bytes(time_loop_model(steps=4, feat=3))
    runs = [_driver_run(model, tmp_path / "cache", "eager") for _ in range(2)]
    assert runs[0]["misses"] >= 1 and runs[0]["hits"] == 0, runs[0]
    assert runs[1]["hits"] >= 1 and runs[1]["misses"] == 0, runs[1]
    assert runs[0]["module"] == runs[1]["module"] and runs[0]["module"].startswith("tflite_jit_k_")
    assert runs[0]["out"] == runs[1]["out"]
