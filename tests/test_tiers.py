"""Tiered execution (runtime/tiers.py): with jit='background' the first invoke runs at once on the
reference backend (no per-model compile) and compiled kernels are swapped in as a separate
process finishes them; 'off' never compiles; and every fault — a killed compiler, a cache that
cannot be written, two processes compiling the same model — leaves correct results on the tier
the interpreter has. Models are one or two ops so the background compiles take seconds; each test
uses its own width, because a kernel compiled once stays loaded in this process."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tflite_jit
from tests.oracle import litert_run
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.runtime import tiers


def cv(n: int) -> np.ndarray:
    return np.linspace(-1, 1, n, dtype=np.float32)


def xs(n: int) -> list[np.ndarray]:
    return [np.random.default_rng(n).standard_normal((4, n)).astype(np.float32)]


def float_model(n: int) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (4, n), np.float32)
    (y,) = g.apply("ADD", [x, g.const("c", cv(n))], fused_activation_function="RELU6")
    (z,) = g.apply("LOGISTIC", [y])
    g.output(z)
    return mb.build()


def quant_model() -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    a = g.input("a", (2, 17), np.int8, scale=0.05, zero_point=-3)
    b = g.input("b", (2, 17), np.int8, scale=0.11, zero_point=7)
    y = g.tensor("y", (2, 17), np.int8, scale=0.13, zero_point=2)
    g.op("ADD", [a, b], [y], fused_activation_function=1)
    g.output(y)
    return mb.build()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private cache directory for this process and its background compiler."""
    from tflite_jit.backends.numba_cpu import modcache

    monkeypatch.setenv("TFLITE_JIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(modcache, "_dir", None)
    yield tmp_path
    svc = tiers.service()
    svc.shutdown()


def want(n: int) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(xs(n)[0] + cv(n), 0, 6)))


def run(it, inputs):
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def test_background_runs_reference_first_then_compiled(cache) -> None:
    it = tflite_jit.Interpreter(model_content=float_model(33), jit="background")
    it.allocate_tensors()
    plan = it.get_execution_plan()
    assert {c["backend"] for c in plan["clusters"]} == {"reference"}
    assert all("compiling in the background" in c["reason"] for c in plan["clusters"])
    first = run(it, xs(33))
    np.testing.assert_allclose(first, want(33), atol=1e-6)
    status = it.jit_status()
    assert status["mode"] == "background" and status["compiled"] + status["pending"] >= 1
    n = len(plan["clusters"])
    assert it.wait_for_jit(timeout=240)
    assert it.jit_status() == {"mode": "background", "compiled": n, "pending": 0, "reference": 0}
    plan = it.get_execution_plan()
    assert [(c["backend"], c["reason"]) for c in plan["clusters"]] == [("numba_cpu", "")] * n
    np.testing.assert_allclose(run(it, xs(33)), want(33), atol=1e-6)
    # a second interpreter of the same model in a warm cache loads the kernel at allocate time
    again = tflite_jit.Interpreter(model_content=float_model(33), jit="background")
    again.allocate_tensors()
    assert again.jit_status()["compiled"] == n


def test_quantized_steps_are_bit_exact_on_every_tier(cache) -> None:
    rng = np.random.default_rng(1)
    inputs = [rng.integers(-128, 128, (2, 17)).astype(np.int8) for _ in range(2)]
    want = litert_run(quant_model(), inputs)[0]
    it = tflite_jit.Interpreter(model_content=quant_model(), jit="background")
    it.allocate_tensors()
    assert it.get_execution_plan()["clusters"][0]["backend"] == "reference"
    np.testing.assert_array_equal(run(it, inputs), want)
    assert it.wait_for_jit(timeout=240)
    assert it.get_execution_plan()["clusters"][0]["backend"] == "numba_cpu"
    np.testing.assert_array_equal(run(it, inputs), want)


def test_off_never_compiles_but_uses_the_cache(cache) -> None:
    started = tiers.service().workers_started
    it = tflite_jit.Interpreter(model_content=float_model(34), jit="off")
    it.allocate_tensors()
    clusters = it.get_execution_plan()["clusters"]
    assert clusters[0]["backend"] == "reference" and "jit='off'" in clusters[0]["reason"]
    np.testing.assert_allclose(run(it, xs(34)), want(34), atol=1e-6)
    assert tiers.service().workers_started == started and not it._executables()[0].pending
    n = len(clusters)
    assert it.jit_status() == {"mode": "off", "compiled": 0, "pending": 0, "reference": n}
    # filled by another process (what `tflite-jit compile` does), 'off' picks it up
    env = {**os.environ, "TFLITE_JIT_CACHE_DIR": str(cache), "TFLITE_JIT_JIT": "eager"}
    code = ("import tflite_jit, tests.test_tiers as t; "
            "tflite_jit.Interpreter(model_content=t.float_model(34)).allocate_tensors()")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    fresh = tflite_jit.Interpreter(model_content=float_model(34), jit="off")
    fresh.allocate_tensors()
    assert {c["backend"] for c in fresh.get_execution_plan()["clusters"]} == {"numba_cpu"}


def test_killed_compiler_leaves_the_reference_tier(cache) -> None:
    it = tflite_jit.Interpreter(model_content=float_model(35), jit="background")
    it.allocate_tensors()
    tiers.service().shutdown()  # before it can have finished: importing Numba alone takes longer
    assert it.wait_for_jit(timeout=60)
    np.testing.assert_allclose(run(it, xs(35)), want(35), atol=1e-6)
    c = it.get_execution_plan()["clusters"][0]
    assert c["backend"] == "reference" and "background compile failed" in c["reason"]
    assert "exited" in c["reason"]
    assert it.jit_status()["compiled"] == 0


# The worker's writes fail like a full disk (ENOSPC), as in tests/test_cache_faults.py.
_FULL_DISK = textwrap.dedent("""
    import errno, os, tempfile
    def _fail(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    tempfile.mkstemp = _fail
    os.replace = _fail
    import builtins
    _open = builtins.open
    def _open_ro(f, mode="r", *a, **k):
        if any(c in mode for c in "wax+"):
            _fail()
        return _open(f, mode, *a, **k)
    builtins.open = _open_ro
    from tflite_jit.runtime.compile_worker import main
    raise SystemExit(main())
""")


def test_full_disk_in_the_compiler_keeps_the_reference_tier(cache, monkeypatch) -> None:
    monkeypatch.setattr(tiers, "worker_argv", lambda: [sys.executable, "-c", _FULL_DISK])
    it = tflite_jit.Interpreter(model_content=float_model(36), jit="background")
    it.allocate_tensors()
    assert it.wait_for_jit(timeout=240)
    c = it.get_execution_plan()["clusters"][0]
    assert c["backend"] == "reference" and "background compile failed" in c["reason"], c
    np.testing.assert_allclose(run(it, xs(36)), want(36), atol=1e-6)


_TWO = textwrap.dedent("""
    import numpy as np, tflite_jit, tests.test_tiers as t
    it = tflite_jit.Interpreter(model_content=t.float_model(37), jit="background")
    it.allocate_tensors()
    np.testing.assert_allclose(t.run(it, t.xs(37)), t.want(37), atol=1e-6)
    assert it.wait_for_jit(timeout=240)
    assert {c["backend"] for c in it.get_execution_plan()["clusters"]} == {"numba_cpu"}
    np.testing.assert_allclose(t.run(it, t.xs(37)), t.want(37), atol=1e-6)
    print("OK")
""")


def test_two_processes_compiling_the_same_model(cache) -> None:
    env = {**os.environ, "TFLITE_JIT_CACHE_DIR": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-c", _TWO], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and "OK" in out, err[-3000:]


def test_jit_keyword_checked_and_pickled(monkeypatch) -> None:
    with pytest.raises(ValueError, match="not a jit mode"):
        tflite_jit.Interpreter(model_content=float_model(38), jit="lazy")
    monkeypatch.setenv("TFLITE_JIT_JIT", "sometimes")
    with pytest.raises(ValueError, match="TFLITE_JIT_JIT"):
        tflite_jit.Interpreter(model_content=float_model(38))
    monkeypatch.setenv("TFLITE_JIT_JIT", "eager")
    it = tflite_jit.Interpreter(model_content=float_model(38), jit="off")
    assert pickle.loads(pickle.dumps(it))._interpreter.context.jit == "off"
    assert tflite_jit.Interpreter(model_content=float_model(38))._interpreter.context.jit == "eager"


def chain_model(n: int, ops: int) -> bytes:
    """`ops` steps that do not fuse into one kernel (a MEAN between element-wise ADDs), so the
    background tier has several jobs for its workers."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (4, n), np.float32)
    for k in range(ops):
        (x,) = g.apply("ADD", [x, g.const(f"c{k}", cv(n) * (k + 1))], fused_activation_function="RELU6")
        (x,) = g.apply("MEAN", [x, g.const(f"a{k}", np.array([0], np.int32))], keep_dims=True)
    g.output(x)
    return mb.build()


def test_compile_workers_setting(monkeypatch) -> None:
    monkeypatch.setenv("TFLITE_JIT_COMPILE_WORKERS", "3")
    assert tiers.compile_workers() == 3
    monkeypatch.setenv("TFLITE_JIT_COMPILE_WORKERS", "0")
    assert tiers.compile_workers() == 1
    monkeypatch.setenv("TFLITE_JIT_COMPILE_WORKERS", "many")
    assert 1 <= tiers.compile_workers() <= 4
    monkeypatch.delenv("TFLITE_JIT_COMPILE_WORKERS")
    assert 1 <= tiers.compile_workers() <= max(1, min(os.cpu_count() or 1, 4))


def test_several_compilers_share_the_queue(cache, monkeypatch) -> None:
    """Two workers: the second starts once the first result is out with more queued, each
    holds one job at a time, and every step ends compiled with the reference tier's numbers."""
    monkeypatch.setenv("TFLITE_JIT_COMPILE_WORKERS", "2")
    monkeypatch.setattr(tiers, "_service", None)
    it = tflite_jit.Interpreter(model_content=chain_model(39, 4), jit="background")
    it.allocate_tensors()
    svc = tiers.service()
    assert svc.max_workers == 2 and len(svc._workers) == 1  # one to start with: the first invoke's
    first = run(it, xs(39))
    status = it.jit_status()  # between invokes after the first result: the queue gets a second
    assert status["pending"] >= 3, status
    assert svc.workers_started == 2
    assert all(len(w.keys) <= 1 for w in svc._workers)
    assert it.wait_for_jit(timeout=240)
    assert svc.workers_started == 2 and not svc.busy()
    assert it.jit_status()["reference"] == 0
    np.testing.assert_allclose(run(it, xs(39)), first, rtol=1e-6, atol=1e-6)


def test_reference_steps_bound_numpy_blas_threads(cache) -> None:
    """A reference step runs with NumPy's BLAS pool at most num_threads wide (its idle threads
    spin and took the background compilers' cores), and the user's own setting is back after."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen = []

    def probe(x, options):
        seen.append([i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"])
        return x

    tflite_jit.register_custom_op("TiersBlasProbe", kernel=probe)
    try:
        mb = ModelBuilder()
        g = mb.subgraph()
        x = g.input("x", (2, 3), np.float32)
        y = g.tensor("y", (2, 3), np.float32)
        g.op("TiersBlasProbe", [x], [y], custom=True)
        g.output(y)
        before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        for threads in (1, 2):
            it = tflite_jit.Interpreter(model_content=mb.build(), backend="reference", num_threads=threads)
            it.allocate_tensors()
            it.set_tensor(it.get_input_details()[0]["index"], np.ones((2, 3), np.float32))
            it.invoke()
            assert seen[-1] and all(n <= threads for n in seen[-1]), seen  # NumPy's wheels bundle OpenBLAS
        after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        assert after == before
    finally:
        tflite_jit.unregister_custom_op("TiersBlasProbe")


def compiled(width: int) -> tflite_jit.Interpreter:
    """float_model(width) on the background tier, waited for until every kernel is in."""
    it = tflite_jit.Interpreter(model_content=float_model(width), jit="background")
    it.allocate_tensors()
    assert it.wait_for_jit(timeout=240)
    return it


def test_idle_worker_exits_cleanly_when_its_pipe_closes(cache, monkeypatch) -> None:
    """At EOF (the interpreter's process is done) a compiler exits at once with status 0,
    skipping its interpreter teardown; what it compiled stays in the cache."""
    monkeypatch.setattr(tiers, "_service", None)
    compiled(40)
    svc = tiers.service()
    (w,) = svc._workers
    w.jobs.put(None)  # what the writer thread does when the service retires a worker
    assert w.proc.wait(timeout=60) == 0
    again = tflite_jit.Interpreter(model_content=float_model(40), jit="off")
    again.allocate_tensors()
    assert again.jit_status()["reference"] == 0


def test_a_new_cache_directory_retires_idle_workers_and_starts_its_own(cache, monkeypatch, tmp_path_factory) -> None:
    """An idle worker of another cache directory (a previous interpreter's, with another
    TFLITE_JIT_CACHE_DIR) is retired and the job still gets a worker (it used to wait forever)."""
    from tflite_jit.backends.numba_cpu import modcache

    monkeypatch.setattr(tiers, "_service", None)
    compiled(51)
    svc = tiers.service()
    (old,) = svc._workers
    other = tmp_path_factory.mktemp("other_cache")
    monkeypatch.setenv("TFLITE_JIT_CACHE_DIR", str(other))
    monkeypatch.setattr(modcache, "_dir", None)
    second = compiled(52)
    assert second.jit_status()["reference"] == 0 and old not in svc._workers
    assert old.proc.wait(timeout=60) == 0
    np.testing.assert_allclose(run(second, xs(52)), want(52), atol=1e-6)


def as_a_new_process(monkeypatch) -> None:
    """Forget the generated modules this process imported, as a new process on the same cache
    would not have them (a module already imported binds at allocate time: no load to defer)."""
    for name in [n for n in sys.modules if n.startswith("tflite_jit_k_")]:
        monkeypatch.delitem(sys.modules, name)


def test_warm_start_defers_loading_past_its_budget(cache, monkeypatch) -> None:
    """Loading cached kernels costs ~5 ms each: past TFLITE_JIT_WARM_LOAD_S (default 0),
    allocate_tensors() leaves them on the reference kernels, the first invoke runs there, and
    each invoke after it loads some (nothing is compiled)."""
    tflite_jit.Interpreter(model_content=float_model(45), jit="eager").allocate_tensors()  # fills the cache
    started = tiers.service().workers_started
    as_a_new_process(monkeypatch)
    monkeypatch.delenv("TFLITE_JIT_WARM_LOAD_S", raising=False)
    it = tflite_jit.Interpreter(model_content=float_model(45), jit="background")
    it.allocate_tensors()
    clusters = it.get_execution_plan()["clusters"]
    assert {c["backend"] for c in clusters} == {"reference"}
    assert all("in the compile cache, loaded between invokes" in c["reason"] for c in clusters)
    np.testing.assert_allclose(run(it, xs(45)), want(45), atol=1e-6)  # the first result: nothing loaded
    assert {c["backend"] for c in it.get_execution_plan()["clusters"]} == {"reference"}
    np.testing.assert_allclose(run(it, xs(45)), want(45), atol=1e-6)  # loads before it runs
    assert it.jit_status() == {"mode": "background", "compiled": len(clusters), "pending": 0, "reference": 0}
    monkeypatch.setenv("TFLITE_JIT_WARM_LOAD_S", "inf")  # everything loaded in allocate_tensors()
    as_a_new_process(monkeypatch)
    it = tflite_jit.Interpreter(model_content=float_model(45), jit="background")
    it.allocate_tensors()
    assert it.jit_status()["compiled"] == len(clusters)
    assert tiers.service().workers_started == started
    monkeypatch.setenv("TFLITE_JIT_WARM_LOAD_S", "soon")
    with pytest.raises(ValueError, match="TFLITE_JIT_WARM_LOAD_S"):
        tflite_jit.Interpreter(model_content=float_model(45), jit="background")


def test_deferred_kernel_missing_from_the_cache_compiles_after_all(cache, monkeypatch) -> None:
    from tflite_jit.backends.numba_cpu import modcache

    tflite_jit.Interpreter(model_content=float_model(46), jit="eager").allocate_tensors()
    as_a_new_process(monkeypatch)
    it = tflite_jit.Interpreter(model_content=float_model(46), jit="background")
    it.allocate_tensors()
    np.testing.assert_allclose(run(it, xs(46)), want(46), atol=1e-6)  # the first result loads nothing
    real, misses = modcache.load_cached, []

    def vanished(fn, sig):  # the cache was cleared between allocate and the first invoke
        if not misses:
            misses.append(sig)
            return False
        return real(fn, sig)

    monkeypatch.setattr(modcache, "load_cached", vanished)
    np.testing.assert_allclose(run(it, xs(46)), want(46), atol=1e-6)
    assert misses and any("compiling in the background" in c["reason"] for c in it.get_execution_plan()["clusters"])
    assert it.wait_for_jit(timeout=240)
    assert it.jit_status()["compiled"] == len(it.get_execution_plan()["clusters"])
    np.testing.assert_allclose(run(it, xs(46)), want(46), atol=1e-6)


_NO_NUMBA = r"""
import sys
import numpy as np
import tflite_jit

model, inputs, expected = sys.argv[1], np.load(sys.argv[2]), np.load(sys.argv[3])
it = tflite_jit.Interpreter(model_path=model, jit="background")
it.allocate_tensors()
it.set_tensor(it.get_input_details()[0]["index"], inputs)
it.invoke()
np.testing.assert_allclose(it.get_tensor(it.get_output_details()[0]["index"]), expected, rtol=1e-5, atol=1e-5)
assert "numba" not in sys.modules, "the first result imported Numba"
assert it.wait_for_jit(timeout=600)
it.invoke()
np.testing.assert_allclose(it.get_tensor(it.get_output_details()[0]["index"]), expected, rtol=1e-5, atol=1e-5)
assert it.jit_status()["reference"] == 0 and it.jit_status()["compiled"] > 0, it.jit_status()
assert "numba" in sys.modules
print("OK")
"""


def test_first_result_never_imports_numba(cache, tmp_path) -> None:
    """Planning, printing and hashing kernels and sending compile jobs need no Numba
    (backends/numba_cpu/host.py, modcache.arg_types): a first result, cold or warm, does not pay
    for `import numba` (0.11 s); the kernels it loads afterwards do."""
    rng = np.random.default_rng(5)
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 6, 6, 3), np.float32)
    w = g.const("w", rng.standard_normal((8, 3, 3, 3)).astype(np.float32))
    (y,) = g.apply("CONV_2D", [x, w, g.const("b", rng.standard_normal(8).astype(np.float32))], padding="SAME",
                   stride_w=1, stride_h=1, fused_activation_function="RELU6")
    dw = g.const("dw", rng.standard_normal((1, 3, 3, 8)).astype(np.float32))
    (z,) = g.apply("DEPTHWISE_CONV_2D", [y, dw, g.const("db", np.zeros(8, np.float32))], padding="SAME",
                   stride_w=2, stride_h=2, depth_multiplier=1)
    (o,) = g.apply("LOGISTIC", [z])
    g.output(o)
    path, xin, want_path = tmp_path / "m.tflite", tmp_path / "x.npy", tmp_path / "want.npy"
    path.write_bytes(mb.build())
    x0 = rng.standard_normal((1, 6, 6, 3)).astype(np.float32)
    np.save(xin, x0)
    np.save(want_path, litert_run(path.read_bytes(), [x0])[0])
    env = {**os.environ, "TFLITE_JIT_CACHE_DIR": str(cache)}
    env.pop("TFLITE_JIT_JIT", None)
    for start in ("cold", "warm"):
        r = subprocess.run([sys.executable, "-c", _NO_NUMBA, str(path), str(xin), str(want_path)], env=env,
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0 and "OK" in r.stdout, f"{start}: {r.stderr[-3000:]}"


def test_compile_jobs_describe_numba_signatures_exactly() -> None:
    from tflite_jit.backends.numba_cpu import modcache

    base = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    readonly = np.zeros(5, np.int8)
    readonly.flags.writeable = False
    args = (base, base[:, :, ::2], np.asfortranarray(base), base[0, 0], np.float32(2.5), np.int32(-3), 7, 0.5,
            True, None, readonly, np.zeros((), np.int16), np.zeros((1, 1), np.uint8), np.zeros(3, np.bool_),
            np.zeros(2, np.int64))
    described = modcache.arg_types(args)
    assert pickle.loads(pickle.dumps(described)) == described
    assert modcache.numba_types(described) == modcache.signature(args)


def swish_int8_model(dtype=np.int8) -> bytes:
    """x -> x * LOGISTIC(x), int8: the quantized chain generators/qtable.py turns into one table."""
    mb = ModelBuilder()
    g = mb.subgraph()
    if dtype == np.int16:  # 16x8: symmetric activations, LOGISTIC's output fixed at 1/32768
        x = g.input("x", (2, 9, 9, 5), dtype, scale=0.0004, zero_point=0)
        s = g.tensor("s", (2, 9, 9, 5), dtype, scale=1 / 32768, zero_point=0)
        y = g.tensor("y", (2, 9, 9, 5), dtype, scale=0.0003, zero_point=0)
    else:
        zp = 3 if dtype == np.int8 else 131
        x = g.input("x", (2, 9, 9, 5), dtype, scale=0.07, zero_point=zp)
        s = g.tensor("s", (2, 9, 9, 5), dtype, scale=1 / 256, zero_point=-128 if dtype == np.int8 else 0)
        y = g.tensor("y", (2, 9, 9, 5), dtype, scale=0.05, zero_point=zp - 2)
    g.op("LOGISTIC", [x], [s])
    g.op("MUL", [x, s], [y])
    g.output(y)
    return mb.build()


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_table_kernels_stand_in_as_numpy_lookups(cache, dtype) -> None:
    """A table kernel (a quantized element-wise chain) runs its table in NumPy until it is
    compiled: LiteRT's numbers on every tier, faster than the chain's reference kernels."""
    from tflite_jit.backends.numba_cpu.backend import TableLookup

    model = swish_int8_model(dtype)
    info = np.iinfo(dtype)
    x = (np.arange(2 * 9 * 9 * 5).reshape(2, 9, 9, 5) * (1 if info.bits == 8 else 97)
         % (int(info.max) - int(info.min) + 1) + int(info.min)).astype(dtype)
    want = litert_run(model, [x])[0]
    it = tflite_jit.Interpreter(model_content=model, jit="background")
    it.allocate_tensors()
    steps = it._interpreter.execs[0].steps
    assert any(isinstance(s.kernel, TableLookup) for s in steps), [type(s.kernel) for s in steps]
    np.testing.assert_array_equal(run(it, [x]), want)
    assert it.wait_for_jit(timeout=240)
    assert it.jit_status()["reference"] == 0
    np.testing.assert_array_equal(run(it, [x]), want)


def hybrid_convs(shapes: list[tuple[int, int, int, int]], seed: int) -> bytes:
    """Dynamic-range CONV_2D nodes (int8 weights, float32 activations) of other shapes, one per
    (size, c_in, c_out, kernel) in `shapes`, each on an input of its own."""
    from tests.ops.test_qhybrid import quant_kw

    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    g = mb.subgraph()
    for i, (h, ci, co, k) in enumerate(shapes):
        x = g.input(f"x{i}", (1, h, h, ci), np.float32)
        w = g.const(f"w{i}", rng.integers(-127, 128, (co, k, k, ci)).astype(np.int8),
                    **quant_kw(rng.uniform(0.001, 0.05, co).astype(np.float32), 0))
        y = g.tensor(f"y{i}", (1, h, h, co), np.float32)
        g.op("CONV_2D", [x, w, g.const(f"b{i}", rng.standard_normal(co).astype(np.float32))], [y], padding=0,
             stride_h=1, stride_w=1, fused_activation_function=3)
        g.output(y)
    return mb.build()


_HYBRID_WARM = r"""
import sys
import numpy as np
import tflite_jit
from tflite_jit.runtime import tiers

model, want = open(sys.argv[1], "rb").read(), np.load(sys.argv[2])
it = tflite_jit.Interpreter(model_content=model, jit="background")
it.allocate_tensors()
reasons = {c["reason"] for c in it.get_execution_plan()["clusters"]}
assert all("in the compile cache" in r for r in reasons), reasons
for d in it.get_input_details():
    it.set_tensor(d["index"], np.linspace(-2, 3, int(np.prod(d["shape"])), dtype=np.float32).reshape(d["shape"]))
it.invoke()
assert it.wait_for_jit(timeout=300)
it.invoke()
got = np.concatenate([it.get_tensor(d["index"]).ravel() for d in it.get_output_details()])
np.testing.assert_array_equal(got, want)
assert it.jit_status()["compiled"] == 3 and tiers.service().submitted == 0, (it.jit_status(), tiers.service().submitted)
print("OK")
"""


def test_hybrid_convolutions_of_any_shape_share_one_compile(cache, tmp_path) -> None:
    """Dynamic-range CONV_2D steps call one shape-generic entry (generators/hybrid.py `_shared`):
    three nodes of three shapes are one background compile, and a model of shapes never seen
    before, in a new process, finds that machine code in the cache and compiles nothing."""
    feeds = lambda m: [np.linspace(-2, 3, int(np.prod(d["shape"])), dtype=np.float32).reshape(d["shape"])  # noqa: E731
                       for d in tflite_jit.Interpreter(model_content=m).get_input_details()]
    first = hybrid_convs([(9, 5, 7, 3), (6, 16, 24, 1), (5, 33, 4, 3)], 1)
    before = tiers.service().submitted
    it = tflite_jit.Interpreter(model_content=first, jit="background")
    it.allocate_tensors()
    assert tiers.service().submitted == before + 1
    for d, x in zip(it.get_input_details(), feeds(first)):
        it.set_tensor(d["index"], x)
    it.invoke()
    assert it.wait_for_jit(timeout=300)
    assert it.jit_status()["compiled"] == 3, [c["reason"] for c in it.get_execution_plan()["clusters"]]
    it.invoke()
    theirs = litert_run(first, feeds(first))
    for d, want in zip(it.get_output_details(), theirs):
        np.testing.assert_array_equal(it.get_tensor(d["index"]), want)
    other = hybrid_convs([(7, 3, 9, 3), (4, 40, 12, 1), (8, 6, 6, 3)], 2)
    (tmp_path / "other.tflite").write_bytes(other)
    np.save(tmp_path / "want.npy", np.concatenate([t.ravel() for t in litert_run(other, feeds(other))]))
    env = {**os.environ, "TFLITE_JIT_CACHE_DIR": str(cache)}
    env.pop("TFLITE_JIT_JIT", None)
    r = subprocess.run([sys.executable, "-c", _HYBRID_WARM, str(tmp_path / "other.tflite"), str(tmp_path / "want.npy")],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "OK" in r.stdout, r.stdout[-2000:] + r.stderr[-3000:]
