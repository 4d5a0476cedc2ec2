"""Tiered execution: a correct first result at once, compiled kernels as soon as they exist.

`Interpreter(jit=...)` (env `TFLITE_JIT_JIT`) picks one of three modes:

- "eager": allocate_tensors() compiles every kernel it lacks before returning (the engine as it
  was before tiers; what the test suite uses, since it is deterministic).
- "background" (the default): allocate_tensors() plans and generates kernels as before, loads
  those whose machine code is already in the compile cache, and runs every other step on the
  reference backend (NumPy: no per-model compile; it is the engine's oracle, so quantized steps
  stay bit-exact and float steps stay within LiteRT's noise). The missing kernels are compiled by
  a few background processes per interpreter process (`python -m tflite_jit.runtime.compile_worker`,
  one per core up to 4, TFLITE_JIT_COMPILE_WORKERS: Numba holds the GIL while it compiles, so a
  thread would stall invokes, and it compiles on one core) into the shared
  on-disk cache; before each invoke the executable asks which have finished and swaps them in,
  step by step (loading a cached kernel takes milliseconds).
- "off": never compiles. Kernels already in the cache (e.g. filled by `tflite-jit compile`) are
  used, every other step runs on the reference backend.

Faults never cost a result: a killed or crashed worker, a kernel that fails to compile, or a
cache that cannot be written (full disk) leave the affected steps on the reference backend with
the reason in the execution plan. Two processes compiling the same model write the same
content-addressed files atomically (modcache), so either's result serves both.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from typing import Any

MODES = ("eager", "background", "off")
DEFAULT_MODE = "background"


def mode_of(value: str | None) -> str:
    """The jit mode for an Interpreter's `jit=` keyword (None: TFLITE_JIT_JIT, else the default)."""
    chosen = value if value is not None else (os.environ.get("TFLITE_JIT_JIT") or DEFAULT_MODE)
    if chosen not in MODES:
        where = "jit" if value is not None else "TFLITE_JIT_JIT"
        raise ValueError(f"{where}={chosen!r} is not a jit mode: use 'background' (compile in another "
                         "process, run on the reference kernels meanwhile), 'eager' (compile in "
                         "allocate_tensors) or 'off' (never compile)")
    if chosen == "background":
        warm_load_budget()  # a bad setting fails here, at construction
    return chosen


@dataclasses.dataclass
class Pending:
    """A step running on its stand-in until its compiled kernel's machine code is ready."""

    index: int  # into Executable.steps / its calls
    step: Any  # the compiled (in-place) step waiting for its machine code
    job: Any  # the backend's compile job (CompileJob for numba_cpu)


def reporting(call: Any, step: Any) -> Any:
    """A compiled kernel that can raise on run-time data (an index out of range: `may_raise`)
    fails the invoke with LiteRT's RuntimeError naming the node; the bound call stays usable by
    a compiled loop driver (runtime/loops.py, through `njit_call`). Other calls as they are."""
    if call is None or not getattr(step.kernel, "may_raise", False):
        return call
    label = step.label

    def reported() -> None:
        try:
            call()
        except (IndexError, ValueError) as e:
            raise RuntimeError(f"{e}\n{label} failed to invoke.\n") from None

    reported.njit_call = getattr(call, "njit_call", None)
    return reported


#: what each invoke spends loading deferred cached kernels (see warm_load_budget)
INVOKE_LOAD_S = 0.05


def warm_load_budget() -> float:
    """Seconds allocate_tensors() spends loading kernels from the compile cache before it defers
    the rest to between invokes (TFLITE_JIT_WARM_LOAD_S, default 0; "inf": load them all).
    Loading one costs ~5 ms (LLVM links its machine code) and saves well under a millisecond of
    the first invoke on the reference kernels, so by default nothing is loaded before the first
    result: a warm start answers as fast as a cold one (DenseNet121's ~200 kernels took 1 s to
    load, twice its cold start), and the loading happens between the invokes after it."""
    raw = os.environ.get("TFLITE_JIT_WARM_LOAD_S", "")
    try:
        return float(raw) if raw else 0.0
    except ValueError:
        raise ValueError(f"TFLITE_JIT_WARM_LOAD_S={raw!r} is not a number of seconds") from None


def _cached_call(ex: Any, step: Any) -> Any:
    """`step`'s kernel bound to the executable's buffers from the compile cache, or None when its
    machine code is not there (never compiles)."""
    root = ex.sg.ops[step.cluster.ops[0]]
    return reporting(step.kernel.bind(ex.buffers, root.inputs, step.cluster.outputs, cached_only=True), step)


def _compile_job(ex: Any, step: Any) -> Any:
    root = ex.sg.ops[step.cluster.ops[0]]
    return step.kernel.compile_job(ex.buffers, root.inputs, step.cluster.outputs)


def bind(ex: Any, i: int, step: Any, env: Any, bind_step: Any) -> tuple[Any, Any, str]:
    """The step to run at index `i` of a prepared executable, its bound call, and a reason for the
    plan when it runs on a stand-in. `bind_step` is the executable's own binding of a step.
    `ex.load_s` (reset by each prepare) counts the seconds spent loading cached kernels."""
    mode = getattr(ex.context, "jit", "eager")
    kernel = step.kernel
    if mode == "eager" or not callable(getattr(kernel, "compile_job", None)):
        return step, bind_step(step), ""
    deferred = (mode == "background" and ex.load_s >= warm_load_budget()
                and callable(getattr(kernel, "maybe_cached", None)) and kernel.maybe_cached()
                and not (callable(getattr(kernel, "in_memory", None)) and kernel.in_memory()))
    if not deferred:
        t0 = time.perf_counter()
        call = _cached_call(ex, step)
        ex.load_s += time.perf_counter() - t0
        if call is not None:
            return step, call, ""
    ref = ex.backends[-1]
    # the reference backend's kernel, or one the compiled kernel knows to be equal and faster
    quick = kernel.stand_in() if callable(getattr(kernel, "stand_in", None)) else None
    stand_in = dataclasses.replace(step, kernel=quick or ref.compile(step.cluster, env), backend=ref.name)
    if deferred:
        ex.pending.append(Pending(i, step, None))
        why = f"{step.backend}: in the compile cache, loaded between invokes (runs on {ref.name} until then)"
    elif mode == "off":
        why = (f"{step.backend}: not in the compile cache and jit='off' (runs on {ref.name}; "
               "`tflite-jit compile MODEL` fills the cache)")
    else:
        job = _compile_job(ex, step)
        service().submit(job)
        ex.pending.append(Pending(i, step, job))
        why = f"{step.backend}: compiling in the background (runs on {ref.name} until then)"
    return stand_in, bind_step(stand_in), why


def upgrade(ex: Any, budget: float | None = INVOKE_LOAD_S) -> int:
    """Swap in every pending step whose kernel the background compiler has finished, and the
    cached kernels allocate_tensors() deferred for as long as `budget` seconds allow (None: all);
    a step whose compile failed stays on its stand-in for good, with the reason in the plan.
    Returns how many steps were swapped. Called between invokes only (Executable.run), so a run
    never mixes a half-swapped step. Before the interpreter's first result (`context.invokes`
    still 0) the deferred kernels wait: loading them costs more than running their steps once
    on the reference kernels."""
    if not ex.pending:
        return 0
    svc = _service
    if svc is not None and svc.pid != os.getpid():  # a forked child: the parent's compiler answers the parent only
        svc = service()
        for p in ex.pending:
            if p.job is not None:
                svc.submit(p.job)
    if budget is not None and not getattr(ex.context, "invokes", 1):
        budget = 0.0
    elif svc is not None:
        svc.grow()
    deadline = None if budget is None else time.perf_counter() + budget
    swapped = 0
    keep = []
    for p in ex.pending:
        if p.job is None:  # deferred at allocate: in the cache, loaded while the budget lasts
            if deadline is not None and time.perf_counter() >= deadline:
                keep.append(p)
                continue
        else:
            result = svc.result(p.job.key) if svc is not None else None
            if result is None:
                keep.append(p)
                continue
            ok, error = result
            if not ok:
                ex.set_reason(p.index, f"{p.step.backend}: background compile failed: {error} (runs on "
                                       f"{ex.steps[p.index].backend})")
                continue
        call = _cached_call(ex, p.step)
        if call is not None:
            ex.swap(p.index, p.step, call)
            swapped += 1
        elif p.job is None:  # gone from the cache since (cleared, or never complete): compile it
            svc = service()
            job = _compile_job(ex, p.step)
            svc.submit(job)
            keep.append(Pending(p.index, p.step, job))
            ex.set_reason(p.index, f"{p.step.backend}: compiling in the background (runs on "
                                   f"{ex.steps[p.index].backend} until then)")
        else:
            ex.set_reason(p.index, f"{p.step.backend}: background compile failed: the background compiler "
                                   "finished but the machine code is not in the compile cache (full or "
                                   f"read-only disk?) (runs on {ex.steps[p.index].backend})")
    ex.pending = keep
    return swapped


def wait(executables: list[Any], timeout: float | None = None) -> bool:
    """Block until no step of these executables is waiting for the background compiler (swapping
    each in as it finishes); False if `timeout` seconds passed first."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        for ex in executables:
            upgrade(ex, None)
        if not any(ex.pending for ex in executables):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def status(executables: list[Any]) -> dict[str, int]:
    """Steps by tier: compiled kernels, steps waiting for the background compiler, and steps on
    the reference backend for good (no compiled kernel, a failed compile, or jit='off')."""
    compiled = pending = reference = 0
    for ex in executables:
        waiting = {p.index for p in ex.pending}
        for i, s in enumerate(ex.steps):
            if i in waiting:
                pending += 1
            elif s.backend == ex.backends[-1].name:
                reference += 1
            else:
                compiled += 1
    return {"compiled": compiled, "pending": pending, "reference": reference}


# ---- the background compiler --------------------------------------------------------------------

def worker_argv() -> list[str]:
    """The background compiler's command line (tests replace it to inject faults)."""
    return [sys.executable, "-m", "tflite_jit.runtime.compile_worker"]


class _Worker:
    """One compiler process, with a writer thread (jobs to its stdin: the interpreter never
    blocks on a full pipe) and a reader thread (results from its stdout)."""

    def __init__(self, svc: CompileService, directory: str):
        env = dict(os.environ, TFLITE_JIT_CACHE_DIR=directory)
        self.proc = subprocess.Popen(worker_argv(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env)
        self.directory = directory
        self.keys: set[str] = set()
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._svc = svc
        threading.Thread(target=self._write, name="tflite_jit-jit-writer", daemon=True).start()
        threading.Thread(target=self._read, name="tflite_jit-jit-reader", daemon=True).start()

    def _write(self) -> None:
        stdin = self.proc.stdin
        try:
            while True:
                job = self.jobs.get()
                if job is None:
                    break
                pickle.dump(job, stdin, protocol=pickle.HIGHEST_PROTOCOL)
                stdin.flush()
        except (OSError, ValueError):  # the worker died: _read reports its jobs as failed
            pass
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("key") is not None:
                self._svc.finished(self, r["key"], bool(r.get("ok")), str(r.get("error") or ""),
                                   float(r.get("s") or 0.0))
        code = self.proc.wait()
        self._svc.died(self, f"the background compiler exited (code {code}) before finishing it")


def compile_workers() -> int:
    """How many compiler processes the background tier may run: TFLITE_JIT_COMPILE_WORKERS, else
    one per core this process may use, at most 4. Numba compiles on one core, so a second
    process halves a cold model's wait for full speed on 2 cores; more than 4 mostly adds
    memory (each worker holds its own Numba, ~150 MB)."""
    raw = os.environ.get("TFLITE_JIT_COMPILE_WORKERS", "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            pass
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


class CompileService:
    """The process's background compilers: jobs deduplicated by key (one compile per kernel per
    process, whichever interpreter asked), results kept for the process's life.

    Jobs wait in one queue and go to the workers one at a time (a worker holds at most one job),
    so a long kernel never holds up the others behind it in a worker's pipe; the heaviest
    (longest source) goes first. The first worker
    starts with the first job; another starts when the queue still holds more than the running
    workers can take and either a worker finishes a job or the interpreter's first result is
    out (`grow`), so the first invoke a user is waiting for never shares the machine with a
    crowd of starting compilers. A dead worker's job is reported failed (that step stays on the
    reference backend); the queue goes on in the others or in a new one."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._results: dict[str, tuple[bool, str]] = {}
        self._queue: list[Any] = []  # jobs not yet sent to a worker, oldest first
        self._queued: set[str] = set()
        self._workers: list[_Worker] = []
        self.max_workers = compile_workers()
        self.compile_s = 0.0  # seconds the workers spent on finished jobs
        self.workers_started = 0
        self.submitted = 0  # distinct jobs taken: kernels this process had compiled

    def submit(self, job: Any) -> None:
        with self._lock:
            if job.key in self._results or job.key in self._queued or \
                    any(job.key in w.keys for w in self._workers):
                return
            self._queue.append(job)
            self._queued.add(job.key)
            self.submitted += 1
            self._dispatch(grow=not self._workers)

    def _dispatch(self, grow: bool) -> None:
        """Send queued jobs to idle workers; with `grow`, start workers (up to max_workers) for
        what the idle ones cannot take. Holds self._lock."""
        while self._queue:
            # the longest compile first (a job's weight): the last worker to finish then finishes
            # soonest, and the slowest kernels are the ones the reference tier runs slowest
            at = max(range(len(self._queue)), key=lambda i: (getattr(self._queue[i], "weight", 0), -i))
            job = self._queue[at]
            stale = [w for w in self._workers if w.directory != job.directory]
            for w in stale:  # another cache directory (a test, a changed environment): retire
                w.jobs.put(None)
                self._workers.remove(w)
            w = next((w for w in self._workers if not w.keys and w.proc.poll() is None), None)
            if w is None:
                # no worker at all (none yet, or only other directories' just retired): start one
                if (not grow and self._workers) or len(self._workers) >= self.max_workers:
                    return
                try:
                    w = _Worker(self, job.directory)
                except OSError as e:  # cannot start a process at all: the steps stay on reference
                    for j in self._queue:
                        self._results[j.key] = (False, f"cannot start the background compiler: {e}")
                    self._queue.clear()
                    self._queued.clear()
                    return
                self._workers.append(w)
                self.workers_started += 1
            self._queue.pop(at)
            self._queued.discard(job.key)
            w.keys.add(job.key)
            w.jobs.put(job)

    def grow(self) -> None:
        """Start workers for the queued jobs the running ones cannot take (up to max_workers).
        The tiers call it once the interpreter's first result is out: until then a single worker
        compiles, so the first invoke does not share the cores with a crowd of starting compilers;
        after it there is no reason to wait for a job to finish first (MobileNetV2's time to full
        speed, A/B: 10.4 -> 10.2 s median)."""
        with self._lock:
            if self._queue and len(self._workers) < self.max_workers:
                self._dispatch(grow=True)

    def result(self, key: str) -> tuple[bool, str] | None:
        """(ok, error) once the job has finished or failed; None while it is queued or compiling."""
        return self._results.get(key)

    def finished(self, w: _Worker, key: str, ok: bool, error: str, seconds: float) -> None:
        with self._lock:
            self._results[key] = (ok, error)
            w.keys.discard(key)
            self.compile_s += seconds
            if w in self._workers:
                self._dispatch(grow=True)

    def died(self, w: _Worker, why: str) -> None:
        with self._lock:
            for key in w.keys:
                self._results.setdefault(key, (False, why))
            w.keys.clear()
            if w in self._workers:
                self._workers.remove(w)
                self._dispatch(grow=not self._workers)

    def busy(self) -> bool:
        return bool(self._queue) or any(w.keys for w in self._workers)

    def shutdown(self) -> None:
        """Kill the workers now: their jobs and the queued ones fail (their steps stay on
        reference)."""
        with self._lock:
            workers, self._workers = self._workers, []
            for job in self._queue:
                self._results.setdefault(job.key, (False, "the background compiler exited (shut down) "
                                                          "before finishing it"))
            self._queue.clear()
            self._queued.clear()
        for w in workers:
            w.proc.kill()
            w.proc.wait()


_service: CompileService | None = None
_service_lock = threading.Lock()


def service() -> CompileService:
    """The process's compile service, created on first use (and again in a forked child, which
    must not share its parent's pipes)."""
    global _service
    with _service_lock:
        if _service is None or _service.pid != os.getpid():
            _service = CompileService()
        return _service
