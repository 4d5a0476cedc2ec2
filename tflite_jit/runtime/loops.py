"""WHILE loops run as one unit: cond and body prepared once, then iterated without the
per-call bookkeeping of a subgraph call — and, when every step of both is a compiled Numba
kernel, iterated inside one compiled driver, so an iteration costs the kernels' work plus
nanoseconds of calls instead of a Python pass over the body.

Why: a Keras GRU/LSTM converted by TF becomes a WHILE over a 20-op body. LiteRT runs a 32-step
loop of one in ~90 µs (XNNPACK ~35 µs); calling the body as a subgraph from Python cost us 80-440
µs per iteration (input checks, copies in and out, a Python call per op). The loop here keeps one
set of buffers: the loop variables live in the body's input buffers; after each pass the body's
outputs are copied onto them, and onto the cond's inputs that the cond reads, which is all the
state a shape-invariant loop needs. A variable the body passes through unchanged (the input
sequence, typically the largest) is copied once, before the first pass, never per iteration.

A WHILE node whose operands have fixed buffers (the usual case) is bound once (`bind`): the
driver then also copies the node's inputs in and the final values out to the node's output
buffers, so an invoke is one compiled call. The driver is compiled at allocate time with
jit='eager'; with jit='background' it compiles on a thread (LLVM's work, most of the time,
runs without the GIL) while the loop runs the same iteration from Python (`run_python`), and
is used from the first invoke after it is ready. The driver is a generated module in the compile
cache like a kernel (Numba's cache on), so a later process loads it in milliseconds.

A loop whose body changes shapes, or whose steps include a non-Numba kernel, runs the same
iteration in Python; the compiled driver is the same loop in Numba, built from the steps'
bound calls (`njit_call` on a NumbaKernel's callable).
"""

from __future__ import annotations

import atexit
import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

_DRIVERS: dict[tuple, Any] = {}  # cache: (callee ids, arity layout, argument types) -> dispatcher
_LOCK = threading.Lock()
_THREADS: list[threading.Thread] = []  # background driver builds, joined at exit


class PreparedLoop:
    """A WHILE's cond and body executables prepared for one set of loop-variable shapes."""

    def __init__(self, cond: Any, body: Any, shapes: tuple[tuple[int, ...], ...], jit: str = "eager"):
        self.cond, self.body, self.shapes = cond, body, shapes
        self.cond_in = [cond.buffers[t] for t in cond.sg.inputs]
        self.body_in = [body.buffers[t] for t in body.sg.inputs]
        self.flag = cond.buffers[cond.sg.outputs[0]]
        self.body_out = [body.buffers[t] for t in body.sg.outputs]
        self.calls = (tuple(cond._calls), tuple(body._calls))
        reads = _cond_reads(self)
        self.cond_reads = reads
        # before the first pass: every variable into the body's inputs and the cond's read ones
        self.entry = [(k, dst) for k in range(len(shapes))
                      for dst in (self.body_in[k], *((self.cond_in[k],) if reads[k] else ()))]
        # after a pass: variable k <- body output k, where the body changed it
        self.copies = [(dst, src) for k, src in enumerate(self.body_out)
                       for dst in (self.body_in[k], *((self.cond_in[k],) if reads[k] else ()))
                       if dst is not src and src is not self.body_in[k]]
        self._snapshot = any(np.shares_memory(src, d) for k, src in enumerate(self.body_out)
                             for j, d in enumerate(self.body_in) if j != k)
        self.parallel = cond._parallel or body._parallel
        self._bound: dict[tuple[int, ...], Callable[[], None]] = {}
        self._jit = jit
        self.driver: Any = None  # the compiled dispatcher, once built (None: not (yet) available)
        self._building = False
        if not self._snapshot and all(getattr(c, "njit_call", None) is not None
                                      for c in (*self.calls[0], *self.calls[1])):
            if jit == "background":
                self._build_in_background()
            else:
                self.driver = _driver(self)

    def valid_for(self, cond: Any, body: Any, shapes: tuple[tuple[int, ...], ...]) -> bool:
        """Still bound to what the executables hold (a re-prepare or a kernel swap rebinds)."""
        return (self.shapes == shapes and self.calls == (tuple(cond._calls), tuple(body._calls))
                and all(a is b for a, b in zip(self.body_in, (body.buffers[t] for t in body.sg.inputs))))

    # -- running ---------------------------------------------------------------------------------
    def run(self, values: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The loop on these values; the final values, fresh arrays."""
        outs = [np.empty(v.shape, v.dtype) for v in values]
        ins = [np.ascontiguousarray(v) for v in values]
        self.run_into(ins, outs, bound=False)
        return outs

    def run_into(self, ins: Sequence[np.ndarray], outs: Sequence[np.ndarray], bound: bool = True) -> None:
        """The loop from `ins` into `outs` (fixed buffers of the loop's shapes and dtypes when
        `bound`: the compiled call with those arguments is kept and reused)."""
        if self.parallel:
            import numba

            numba.set_num_threads(min(self.body.num_threads, numba.config.NUMBA_NUM_THREADS))
        if self.driver is not None:
            key = tuple(id(x) for x in (*ins, *outs))
            call = self._bound.get(key) if bound else None
            if call is None:
                call = _bind(self, ins, outs, entry_point=bound)
                if bound:
                    if len(self._bound) >= 4:  # the node's buffers were re-allocated: drop the old
                        self._bound.clear()
                    self._bound[key] = call
            try:
                call()
            except (IndexError, ValueError) as e:  # a kernel's check on run-time data (GATHER)
                raise RuntimeError(f"{e} (in the loop's cond or body)\n") from None
            return
        for k, dst in self.entry:
            np.copyto(dst, ins[k])
        self.run_python()
        for o, b in zip(outs, self.body_in):
            np.copyto(o, b)

    def run_python(self) -> None:
        cond_calls, body_calls = self.calls
        flag = self.flag.reshape(-1)
        copies = self.copies
        while True:
            for call in cond_calls:
                call()
            if not flag[0]:
                return
            for call in body_calls:
                call()
            if self._snapshot:
                copies_now = [(d, s.copy()) for d, s in copies]
            else:
                copies_now = copies
            for dst, src in copies_now:
                np.copyto(dst, src)

    # -- building the driver ---------------------------------------------------------------------
    def _build_in_background(self) -> None:
        self._building = True

        def build() -> None:
            try:
                self.driver = _driver(self)
            finally:
                self._building = False

        t = threading.Thread(target=build, name="tflite_jit-loop-driver", daemon=True)
        with _LOCK:
            _THREADS[:] = [x for x in _THREADS if x.is_alive()]
            if not _THREADS:
                atexit.register(_join_builds)
            _THREADS.append(t)
        t.start()

    def wait(self, timeout: float | None = None) -> bool:
        """True once no driver build is running (it may have produced no driver)."""
        if not self._building:
            return True
        for t in list(_THREADS):
            t.join(timeout)
        return not self._building

    @property
    def pending(self) -> bool:
        return self._building


def _join_builds() -> None:
    """At exit, let a driver still compiling finish: a thread killed inside LLVM at interpreter
    teardown can take the process down with it."""
    for t in list(_THREADS):
        t.join()


def _cond_reads(loop: PreparedLoop) -> list[bool]:
    """Which loop variables the cond reads. Only a cond made of compiled kernels is trusted to
    read nothing but its steps' inputs; otherwise every variable counts as read."""
    cond = loop.cond
    if not all(getattr(c, "njit_call", None) is not None for c in loop.calls[0]):
        return [True] * len(loop.cond_in)
    used = [cond.buffers[t] for s in cond.steps for t in s.cluster.inputs
            if t >= 0 and cond.buffers[t] is not None]
    used.append(loop.flag)
    return [any(np.shares_memory(ci, u) for u in used) for ci in loop.cond_in]


def _driver(loop: PreparedLoop) -> Any:
    """One compiled function running the whole loop (a Numba dispatcher), or None when Numba
    cannot type it (the Python loop is the same computation)."""
    cond_calls, body_calls = loop.calls
    bound = [c.njit_call for c in (*cond_calls, *body_calls)]
    fns = [fn for fn, _ in bound]
    args = [a for _, a in bound]
    nc = len(cond_calls)
    key = (tuple(id(f) for f in fns), nc, tuple(k for k, _ in loop.entry), len(loop.copies),
           tuple(tuple(_sig(x) for x in a) for a in args), _sig(loop.flag),
           tuple((_sig(d), _sig(s)) for d, s in loop.copies), tuple(_sig(b) for b in loop.body_in))
    with _LOCK:
        driver = _DRIVERS.get(key)
    if driver is not None:
        return driver
    try:  # compile (or load) for these argument types now, without running it (the buffers hold garbage)
        import numba

        driver = _build(fns, nc, [k for k, _ in loop.entry], len(loop.copies), len(loop.body_in))
        params = _params(loop, loop.body_in, loop.body_in)
        sig = tuple(numba.typeof(p) for p in params)
        if loop._jit == "off":  # never compiles: a driver some earlier process cached, or none
            from tflite_jit.backends.numba_cpu import modcache

            if not modcache.load_cached(driver, sig):
                return None
        else:
            driver.compile(sig)
    except Exception:  # Numba could not type it (or a kernel's module is gone): the same loop in Python
        return None
    with _LOCK:
        _DRIVERS[key] = driver
    return driver


def _params(loop: PreparedLoop, ins: Sequence[np.ndarray], outs: Sequence[np.ndarray]) -> tuple:
    cond_calls, body_calls = loop.calls
    args = [a for c in (*cond_calls, *body_calls) for a in (c.njit_call[1],)]
    return (*args, loop.flag.reshape(-1), *(x for _, dst in loop.entry for x in (dst,)), *ins,
            *(x for pair in loop.copies for x in pair), *loop.body_in, *outs)


def _bind(loop: PreparedLoop, ins: Sequence[np.ndarray], outs: Sequence[np.ndarray],
          entry_point: bool) -> Callable[[], None]:
    """The driver as a zero-argument call on these buffers: through the compiled overload's
    entry point (no per-call type matching) when the types are those it was compiled for."""
    params = _params(loop, ins, outs)
    fn = loop.driver
    if entry_point:
        import numba

        try:
            fn = loop.driver.compile(tuple(numba.typeof(p) for p in params))
        except Exception:  # other argument types than compiled for: the dispatcher matches them
            fn = loop.driver
    return functools.partial(fn, *params)


def _sig(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return (x.dtype.str, x.ndim, x.flags.c_contiguous)
    return type(x).__name__


def _build(fns: list[Callable[..., None]], n_cond: int, entry_vars: list[int], n_copies: int,
           n_vars: int) -> Any:
    """The driver: copy the variables in (`e{j} <- i{var}`), iterate, copy the final values out
    (`o{k} <- b{k}`, the body's input buffers). It is a generated module in the compile cache
    (modcache) that names its kernels' modules, with Numba's cache on: a later process (a warm
    start, a retrained twin) loads its machine code instead of compiling it again (3-4 s on the
    suite's GRU/LSTM models, on a thread of the interpreter's process)."""
    from tflite_jit.backends.numba_cpu import modcache

    names = [f"a{i}" for i in range(len(fns))]
    entry = [f"e{j}" for j in range(len(entry_vars))]
    ins = [f"i{k}" for k in range(n_vars)]
    copy_params = [p for k in range(n_copies) for p in (f"d{k}", f"s{k}")]
    finals = [f"b{k}" for k in range(n_vars)]
    outs = [f"o{k}" for k in range(n_vars)]
    params = [*names, "flag", *entry, *ins, *copy_params, *finals, *outs]
    lines = ['"""A WHILE loop\'s compiled driver (tflite_jit/runtime/loops.py)."""', "import sys", "",
             "import numba", ""]
    # the kernels' modules are loaded (the driver is built only once every step has its kernel)
    lines += [f"f{i} = sys.modules[{f.__module__!r}].{f.__name__}" for i, f in enumerate(fns)]
    lines += ["", "", "@numba.njit(nogil=True, inline='always')", "def _copy(dst, src):",
              "    d = dst.reshape(-1)", "    s = src.reshape(-1)", "    for i in range(d.size):",
              "        d[i] = s[i]", "", "", "@numba.njit(nogil=True, cache=True)",
              f"def driver({', '.join(params)}):"]
    lines += [f"    _copy(e{j}, i{k})" for j, k in enumerate(entry_vars)]
    lines += ["    while True:"]
    lines += [f"        f{i}(*a{i})" for i in range(n_cond)]
    lines += ["        if not flag[0]:", "            break"]
    lines += [f"        f{i}(*a{i})" for i in range(n_cond, len(fns))]
    lines += [f"        _copy(d{k}, s{k})" for k in range(n_copies)]
    lines += [f"    _copy(o{k}, b{k})" for k in range(n_vars)]
    return modcache.load("\n".join(lines) + "\n", "driver")
