"""Engines timed one at a time, each in its own worker process.

Why: with tflite_jit, LiteRT-XNNPACK and LiteRT-builtin in one process and their invokes
interleaved, every engine's idle thread pool (Numba's OpenMP pool, XNNPACK's pthreadpool) spins
for a while after its parallel region and steals the cores from the engine that runs next; at
2 threads on a 2-core machine that made the 2-thread numbers a measurement of the contention,
not of the engines (docs/performance.md). Here each engine lives in a process of its own
(`python -m benchmarks.isolated`, requests and answers pickled over its stdin/stdout), the parent
asks one worker at a time for a batch of invokes, and before the next worker's turn it waits until
no worker has a runnable thread or uses CPU (the spinning pool has gone to sleep); how long that
took is reported as `settle_ms`. A worker whose pool never sleeps is stopped (SIGSTOP) until its
next turn. The side-by-side design stays: rounds of batches, engines in rotating order, so machine
drift hits all of them alike.

A worker that dies (LiteRT aborts the process on some models) or stops answering is an
`EngineFailed` with the exit signal and the last lines it wrote to stderr, never a crash of the
parent. `Engine` is the same engine in this process (the old shared harness uses it directly).
"""

from __future__ import annotations

import importlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TFLITE_JIT_JIT", "eager")  # time the compiled kernels, not the first tier (runtime/tiers.py)

OURS, XNN, BUILTIN = "tflite_jit", "litert_xnnpack", "litert_builtin"
ROOT = Path(__file__).resolve().parent.parent
#: invokes per turn of a worker (after one untimed warm-up invoke that wakes its pool)
PER_TURN = 5
#: a worker counts as quiet when it used less than this share of one CPU over a poll interval
QUIET_SHARE = 0.05
POLL_S = 0.002
#: stop waiting for quiet after this long (a pool that never sleeps is then stopped, SIGSTOP)
MAX_SETTLE_S = 1.0
#: seconds a worker may take to load a model (Numba compiles it) / to answer anything else
LOAD_TIMEOUT_S = 1800.0
REQUEST_TIMEOUT_S = 600.0


class EngineFailed(RuntimeError):
    """An engine raised (the message is its exception, formatted in the worker) or its worker
    process died or hung (the message says how)."""


def error_text(e: BaseException) -> str:
    """An exception as one report line: `Type: message`."""
    if isinstance(e, EngineFailed):
        return " ".join(str(e).split())[:400]
    return f"{type(e).__name__}: {' '.join(str(e).split())}"[:400]


def _factory(kind: str):
    """OURS, XNN, BUILTIN, or 'module:function' (a callable (content, threads, backend, fusion)
    -> an interpreter; the tests use it to make a worker die). Imports happen here, so that an
    engine's prepare time is the same in a fresh worker as in a process that imported it long ago."""
    if kind == OURS:
        from tflite_jit import Interpreter

        def make(content: bytes, threads: int, backend: str, fusion: str | None) -> Any:
            return Interpreter(model_content=content, num_threads=threads, backend=backend, fusion=fusion)
        return make
    if kind in (XNN, BUILTIN):
        import ai_edge_litert.interpreter  # noqa: F401

        from benchmarks.side_by_side import litert_engine

        def make_lite(content: bytes, threads: int, backend: str, fusion: str | None) -> Any:
            return litert_engine(content, threads, kind)
        return make_lite
    module, _, name = kind.partition(":")
    if not name:
        raise ValueError(f"unknown engine {kind!r}: {OURS}, {XNN}, {BUILTIN} or 'module:function'")
    return getattr(importlib.import_module(module), name)


class Engine:
    """One engine, prepared (constructed and allocated), with the inputs every invoke uses."""

    def __init__(self, kind: str, model: bytes | str, threads: int, backend: str = "numba",
                 fusion: str | None = None):
        content = model if isinstance(model, bytes) else Path(model).read_bytes()
        make = _factory(kind)
        t0 = time.perf_counter()
        self.it = make(content, threads, backend, fusion)
        self.it.allocate_tensors()
        self.prepare_s = time.perf_counter() - t0
        self.kind = kind
        self.xs: list[np.ndarray] = []

    def inputs(self, seed: int = 0) -> list[np.ndarray]:
        """benchmarks/side_by_side.py's seeded inputs for this model; also sets them."""
        from benchmarks.side_by_side import inputs_for

        self.xs = inputs_for(self.it, np.random.default_rng(seed))
        return self.xs

    def set_inputs(self, xs: list[np.ndarray]) -> None:
        self.xs = xs

    def _invoke(self) -> float:
        for d, x in zip(self.it.get_input_details(), self.xs):
            self.it.set_tensor(d["index"], x)
        t0 = time.perf_counter()
        self.it.invoke()
        return time.perf_counter() - t0

    def outputs(self) -> tuple[list[np.ndarray], float]:
        """One invoke's outputs (copies) and its time (the first invoke: compile, if lazy)."""
        dt = self._invoke()
        return [np.array(self.it.get_tensor(d["index"]), copy=True) for d in self.it.get_output_details()], dt

    def time(self, n: int, warmup: int = 0) -> list[float]:
        """Seconds of each of `n` invokes, after `warmup` untimed ones."""
        for _ in range(warmup):
            self._invoke()
        return [self._invoke() for _ in range(n)]

    def call(self, function: str) -> Any:
        """'module:function' applied to the interpreter (e.g. the suite's placement summary)."""
        module, _, name = function.partition(":")
        return getattr(importlib.import_module(module), name)(self.it)


def _serve(recv: Any, send: Any) -> None:
    """The worker's loop: ("load", args) makes the Engine, any other (method, args) calls it;
    answers ("ok", value) or ("err", 'Type: message')."""
    engine: Engine | None = None
    while True:
        try:
            op, args = recv.recv()
        except EOFError:
            return
        if op == "close":
            return
        try:
            if op == "load":
                engine = None  # free the previous model first
                engine = Engine(*args)
                value: Any = engine.prepare_s
            elif engine is None:
                raise RuntimeError(f"{op} before load")
            else:
                value = getattr(engine, op)(*args)
            send.send(("ok", value))
        except Exception as e:
            send.send(("err", error_text(e)))


def _worker_main() -> None:
    """`python -m benchmarks.isolated`: requests on stdin, answers on stdout, both pickled
    (multiprocessing's framing); anything else written to stdout goes to stderr, the log."""
    requests, answers = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    _serve(Connection(requests, writable=False), Connection(answers, readable=False))


def process_cpu_ns(pid: int) -> int | None:
    """CPU time of every thread of process `pid` (Linux's process CPU clock, ns), None if gone."""
    try:
        return time.clock_gettime_ns(((~pid) << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
    except OSError:
        return None


def runnable_threads(pid: int) -> int | None:
    """How many threads of `pid` are running or waiting for a CPU (state R in /proc), None where
    /proc cannot tell (not Linux, or the process is gone). A spinning thread the scheduler has not
    given a CPU for a while uses no CPU time, but it is still R."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    n = 0
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        end = stat.rfind(b")")  # the state follows the command name, which may hold spaces
        n += stat[end + 2:end + 3] == b"R"
    return n


def _quiet_poll(pids: Sequence[int]) -> tuple[list[int], float]:
    """One POLL_S interval: the pids that were busy in it (a thread in state R at its end, or CPU
    time at least QUIET_SHARE of the interval), and the interval's length."""
    before = [process_cpu_ns(p) for p in pids]
    t0 = time.perf_counter()
    time.sleep(POLL_S)
    after = [process_cpu_ns(p) for p in pids]
    dt = time.perf_counter() - t0
    busy = []
    for p, a, b in zip(pids, before, after):
        used = b - a if a is not None and b is not None else 0
        if used >= QUIET_SHARE * dt * 1e9 or (runnable_threads(p) or 0) > 0:
            busy.append(p)
    return busy, dt


def wait_quiet(pids: Sequence[int], max_s: float = MAX_SETTLE_S) -> float:
    """Wait until, over one POLL_S interval, none of the processes has a runnable thread or used
    QUIET_SHARE of a CPU (their thread pools have stopped spinning); returns the seconds waited,
    more than max_s if they never did. Where neither /proc nor the process CPU clock is available
    (not Linux), waits max_s / 10 instead."""
    t0 = time.perf_counter()
    if process_cpu_ns(os.getpid()) is None and runnable_threads(os.getpid()) is None:
        time.sleep(max_s / 10)
        return time.perf_counter() - t0
    while True:
        busy, _ = _quiet_poll(pids)
        t = time.perf_counter() - t0
        if not busy or t > max_s:
            return t


def _signal_name(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


class EngineWorker:
    """An Engine in a process of its own; the same methods, answered over a pipe."""

    def __init__(self, kind: str):
        self.kind = kind
        self._log = tempfile.TemporaryFile()  # the worker's stderr: quoted when it dies
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))  # the caller's imports
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "benchmarks.isolated"], stdin=to_child_r,
                                          stdout=from_child_w, stderr=self._log, env=env, cwd=ROOT)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self._send = Connection(to_child_w, readable=False)
        self._recv = Connection(from_child_r, writable=False)
        self.dead: str | None = None
        self.paused = False
        self.prepare_s = 0.0

    @property
    def pid(self) -> int:
        return self._proc.pid

    def pause(self) -> None:
        """Stop the process (SIGSTOP) until its next request: for a pool that never goes to sleep."""
        if not self.dead and not self.paused and self._proc.poll() is None:
            os.kill(self.pid, signal.SIGSTOP)
            self.paused = True

    def _resume(self) -> None:
        if self.paused:
            self.paused = False
            if self._proc.poll() is None:
                os.kill(self.pid, signal.SIGCONT)

    def _stderr_tail(self, lines: int = 3) -> str:
        """The worker's last lines on stderr, without LiteRT's INFO chatter."""
        self._log.seek(0, os.SEEK_END)
        self._log.seek(max(0, self._log.tell() - 8000))
        text = [ln.strip() for ln in self._log.read().decode(errors="replace").splitlines()]
        return " / ".join([ln for ln in text if ln and not ln.startswith("INFO:")][-lines:])

    def _die(self, why: str) -> EngineFailed:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        tail = self._stderr_tail()
        self.dead = f"{self.kind} worker {why} ({_signal_name(self._proc.returncode)})" + (
            f"; its stderr: {tail}" if tail else "")
        return EngineFailed(self.dead)

    def request(self, op: str, *args: Any, timeout: float = REQUEST_TIMEOUT_S) -> Any:
        if self.dead:
            raise EngineFailed(self.dead)
        self._resume()
        try:
            self._send.send((op, args))
            if not self._recv.poll(timeout):
                raise self._die(f"gave no answer to {op} in {timeout:.0f}s, killed")
            status, value = self._recv.recv()
        except (EOFError, OSError):
            raise self._die(f"died during {op}") from None
        if status == "err":
            raise EngineFailed(value)
        return value

    def load(self, model: bytes | str, threads: int, backend: str = "numba", fusion: str | None = None) -> float:
        self.prepare_s = self.request("load", self.kind, model, threads, backend, fusion, timeout=LOAD_TIMEOUT_S)
        return self.prepare_s

    def inputs(self, seed: int = 0) -> list[np.ndarray]:
        return self.request("inputs", seed)

    def set_inputs(self, xs: list[np.ndarray]) -> None:
        self.request("set_inputs", xs)

    def outputs(self) -> tuple[list[np.ndarray], float]:
        return self.request("outputs")

    def time(self, n: int, warmup: int = 0) -> list[float]:
        return self.request("time", n, warmup)

    def call(self, function: str) -> Any:
        return self.request("call", function)

    def close(self) -> None:
        self._resume()
        if self._proc.poll() is None:
            try:
                self._send.send(("close", ()))
                self._proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._send.close()
        self._recv.close()
        self._log.close()


def time_isolated(workers: dict[str, EngineWorker], runs: int, per_turn: int = PER_TURN, warmup: int = 1,
                  max_settle_s: float = MAX_SETTLE_S) -> tuple[dict[str, Any], dict[str, str]]:
    """Medians and p90s (ms) of `runs` invokes per worker, and each worker's median settle time
    (ms: how long the workers kept using CPU after its batch); plus {kind: error} for workers that
    failed on the way (their times are dropped, the others' kept). Each round gives every live
    worker one turn, in rotating order; a turn is `warmup` untimed invokes and up to `per_turn`
    timed ones, and every turn starts only after all workers have gone quiet. A worker still busy
    after max_settle_s (a pool that never sleeps, e.g. OMP_WAIT_POLICY=ACTIVE) is stopped with
    SIGSTOP until its next turn; `paused_turns` counts those turns per engine."""
    keys = list(workers)
    times: dict[str, list[float]] = {k: [] for k in keys}
    settle: dict[str, list[float]] = {k: [] for k in keys}
    paused: dict[str, int] = {}
    errors: dict[str, str] = {}

    def settle_all() -> float:
        live = {w.pid: k for k, w in workers.items() if not w.dead and not w.paused}
        waited = wait_quiet(list(live), max_settle_s)
        if waited > max_settle_s:
            for pid in _quiet_poll(list(live))[0]:
                workers[live[pid]].pause()
                paused[live[pid]] = paused.get(live[pid], 0) + 1
        return waited

    settle_all()
    for i in range(math.ceil(runs / max(1, per_turn))):
        live = [k for k in keys if k not in errors]
        if not live:
            break
        j = i % len(live)
        for k in live[j:] + live[:j]:
            try:
                times[k] += workers[k].time(min(per_turn, runs - len(times[k])), warmup)
            except EngineFailed as e:
                errors[k] = error_text(e)
            settle[k].append(settle_all())
    ok = [k for k in keys if k not in errors and times[k]]
    out: dict[str, Any] = {"median_ms": {k: float(np.median(times[k])) * 1e3 for k in ok},
                           "p90_ms": {k: float(np.percentile(times[k], 90)) * 1e3 for k in ok},
                           "settle_ms": {k: float(np.median(settle[k])) * 1e3 for k in ok}}
    if paused:
        out["paused_turns"] = paused
    return out, errors


if __name__ == "__main__":
    _worker_main()
