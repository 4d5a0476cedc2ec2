"""WHILE loops run as one unit: cond and body prepared once, then iterated without the
per-call bookkeeping of a subgraph call — and, when every step of both is a compiled Numba
kernel, iterated inside one compiled driver, so an iteration costs the kernels' work plus
nanoseconds of calls instead of a Python pass over the body.

Why: a Keras GRU/LSTM converted by TF becomes a WHILE over a 20-op body. LiteRT runs a 12-step
loop of one in ~15 µs; calling the body as a subgraph from Python cost us 80-440 µs per
iteration (input checks, copies in and out, a Python call per op). The loop here keeps one
set of buffers: the loop variables live in the body's input buffers; after each pass the
body's outputs are copied onto them (and onto the cond's inputs), which is all the state a
shape-invariant loop needs.

A loop whose body changes shapes, or whose steps include a non-Numba kernel, runs the same
iteration in Python (`PreparedLoop.run_python`); the compiled driver is the same loop in
Numba, built from the steps' bound calls (`njit_call` on a NumbaKernel's callable).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

_DRIVERS: dict[tuple, Callable[..., None]] = {}  # cache: (callee ids, arity layout) -> driver


class PreparedLoop:
    """A WHILE's cond and body executables prepared for one set of loop-variable shapes."""

    def __init__(self, cond: Any, body: Any, shapes: tuple[tuple[int, ...], ...]):
        self.cond, self.body, self.shapes = cond, body, shapes
        self.cond_in = [cond.buffers[t] for t in cond.sg.inputs]
        self.body_in = [body.buffers[t] for t in body.sg.inputs]
        self.flag = cond.buffers[cond.sg.outputs[0]]
        self.body_out = [body.buffers[t] for t in body.sg.outputs]
        self.calls = (tuple(cond._calls), tuple(body._calls))
        # after a pass: loop variable k <- body output k, into the body's and the cond's inputs
        self.copies = [(dst, src) for k, src in enumerate(self.body_out)
                       for dst in (self.body_in[k], self.cond_in[k]) if dst is not src]
        self._snapshot = any(np.shares_memory(src, d) for k, src in enumerate(self.body_out)
                             for j, d in enumerate(self.body_in) if j != k)
        self.parallel = cond._parallel or body._parallel
        self.driver = _driver(self) if not self._snapshot else None

    def valid_for(self, cond: Any, body: Any, shapes: tuple[tuple[int, ...], ...]) -> bool:
        """Still bound to what the executables hold (a re-prepare or a kernel swap rebinds)."""
        return (self.shapes == shapes and self.calls == (tuple(cond._calls), tuple(body._calls))
                and all(a is b for a, b in zip(self.body_in, (body.buffers[t] for t in body.sg.inputs))))

    def run(self, values: Sequence[np.ndarray]) -> list[np.ndarray]:
        for k, v in enumerate(values):
            np.copyto(self.body_in[k], v)
            np.copyto(self.cond_in[k], v)
        if self.parallel:
            import numba

            numba.set_num_threads(min(self.body.num_threads, numba.config.NUMBA_NUM_THREADS))
        if self.driver is not None:
            try:
                self.driver()
            except (IndexError, ValueError) as e:  # a kernel's check on run-time data (GATHER)
                raise RuntimeError(f"{e} (in the loop's cond or body)\n") from None
        else:
            self.run_python()
        return [np.array(b, copy=True) for b in self.body_in]

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


def _driver(loop: PreparedLoop) -> Callable[[], None] | None:
    """One compiled function running the whole loop, or None when a step is not a Numba kernel
    (or Numba cannot type the driver: the Python loop is the same computation)."""
    cond_calls, body_calls = loop.calls
    bound = [getattr(c, "njit_call", None) for c in (*cond_calls, *body_calls)]
    if any(b is None for b in bound):
        return None
    fns = [fn for fn, _ in bound]
    args = [a for _, a in bound]
    nc = len(cond_calls)
    key = (tuple(id(f) for f in fns), nc, len(loop.copies),
           tuple(tuple(_sig(x) for x in a) for a in args), _sig(loop.flag),
           tuple((_sig(d), _sig(s)) for d, s in loop.copies))
    driver = _DRIVERS.get(key)
    if driver is None:
        driver = _build(fns, nc, len(loop.copies))
        if driver is None:
            return None
        _DRIVERS[key] = driver
    flat_copies = [x for pair in loop.copies for x in pair]
    params = (*args, loop.flag.reshape(-1), *flat_copies)
    try:  # compile for these argument types now, without running it (the buffers hold garbage)
        import numba

        driver.compile(tuple(numba.typeof(p) for p in params))
    except Exception:  # Numba could not type it: run the same loop in Python
        _DRIVERS.pop(key, None)
        return None
    return lambda: driver(*params)


def _sig(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return (x.dtype.str, x.ndim, x.flags.c_contiguous)
    return type(x).__name__


def _build(fns: list[Callable[..., None]], n_cond: int, n_copies: int) -> Callable[..., None] | None:
    import numba

    names = [f"a{i}" for i in range(len(fns))]
    copy_params = [p for k in range(n_copies) for p in (f"d{k}", f"s{k}")]
    lines = [f"def driver({', '.join([*names, 'flag', *copy_params])}):", "    while True:"]
    lines += [f"        f{i}(*a{i})" for i in range(n_cond)]
    lines += ["        if not flag[0]:", "            return"]
    lines += [f"        f{i}(*a{i})" for i in range(n_cond, len(fns))]
    lines += [f"        _copy(d{k}, s{k})" for k in range(n_copies)]
    scope: dict[str, Any] = {f"f{i}": f for i, f in enumerate(fns)}
    scope["_copy"] = _copy_kernel()
    exec("\n".join(lines), scope)  # noqa: S102 - generated from our own names only
    return numba.njit(nogil=True)(scope["driver"])


@functools.cache
def _copy_kernel() -> Any:
    """The compiled element copy a driver uses for `dst[...] = src` (built once per process)."""
    import numba

    @numba.njit(nogil=True, inline="always")
    def copy(dst, src):  # pragma: no cover - compiled
        d = dst.reshape(-1)
        s = src.reshape(-1)
        for i in range(d.size):
            d[i] = s[i]

    return copy
