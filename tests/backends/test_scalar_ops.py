"""The scalar vocabulary (ops/expr.py) is one typed interface, `ScalarOps`, and every renderer
implements all of it: a function is implemented or refused explicitly (`refused`, raising the
renderer's own error), never missing. Adding a function to the vocabulary without teaching every
renderer fails here (and the renderer cannot be instantiated: it stays abstract)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from tflite_jit.backends.numba_cpu import printer as numba_printer
from tflite_jit.backends.opencl import printer as opencl_printer
from tflite_jit.ops import expr as E

#: every renderer of the project, with an instance to call
RENDERERS = {
    E.NumpyOps: E.NumpyOps(),
    numba_printer.NumbaOps: numba_printer.NumbaOps(np.float32),
    numba_printer.VecOps: numba_printer.VecOps(),
    opencl_printer.OpenCLOps: opencl_printer.OpenCLOps(),
}


def _all_subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _all_subclasses(sub)
    return out


def test_the_vocabulary_is_the_interface() -> None:
    abstract = {m for m, v in vars(E.ScalarOps).items() if getattr(v, "__isabstractmethod__", False)}
    assert {E.method_name(fn) for fn in E.FNS} == abstract
    for fn, arity in E.FNS.items():
        params = list(inspect.signature(getattr(E.ScalarOps, E.method_name(fn))).parameters)
        assert len(params) - 1 == arity, fn


def test_every_renderer_is_listed_here() -> None:
    """A new renderer is checked too: list it in RENDERERS."""
    found = {c for c in _all_subclasses(E.ScalarOps) if not c.__module__.startswith("tests.")}
    assert found <= set(RENDERERS), found - set(RENDERERS)


@pytest.mark.parametrize("cls", list(RENDERERS), ids=lambda c: c.__name__)
def test_renderer_implements_or_refuses_every_function(cls: type) -> None:
    assert not inspect.isabstract(cls), f"{cls.__name__} lacks {sorted(cls.__abstractmethods__)}"
    unknown = set(cls.refused) - set(E.FNS)
    assert not unknown, f"{cls.__name__} refuses functions outside the vocabulary: {unknown}"
    for fn in E.FNS:
        own = next(c for c in cls.__mro__ if E.method_name(fn) in vars(c))
        assert own is not E.ScalarOps, f"{cls.__name__}.{E.method_name(fn)} is not defined"


@pytest.mark.parametrize("cls", list(RENDERERS), ids=lambda c: c.__name__)
def test_refusals_raise_the_renderers_error_with_a_message(cls: type) -> None:
    ops = RENDERERS[cls]
    for fn in cls.refused:
        with pytest.raises(cls.error, match=fn):
            ops.call(fn, ["x"] * E.FNS[fn])


PRINTERS = [RENDERERS[c] for c in RENDERERS if c is not E.NumpyOps] + [numba_printer.NumbaOps(np.int32)]


@pytest.mark.parametrize("ops", PRINTERS, ids=lambda o: type(o).__name__)
def test_printers_print_every_function_they_do_not_refuse(ops: E.ScalarOps) -> None:
    """Every function prints its operands, or raises the printer's own error (refused outright,
    or for this dtype: NumbaOps' rshift on floats)."""
    cls = type(ops)
    for fn, arity in E.FNS.items():
        if fn in cls.refused:
            continue
        args = [f"a{i}" for i in range(arity)]
        try:
            text = ops.call(fn, args)
        except cls.error:
            continue
        assert isinstance(text, str) and all(a in text for a in args), (fn, text)


def test_numpy_evaluates_every_function() -> None:
    ops = RENDERERS[E.NumpyOps]
    x = np.array([0.5, 1.5, 2.0], np.float32)
    i = np.array([5, 3, 2], np.int32)
    b = np.array([True, False, True])
    for fn, arity in E.FNS.items():
        if fn in ("and", "or", "not"):
            args = [b] * arity
        elif fn in ("bitand", "bitxor", "rshift"):
            args = [i] * arity
        else:
            args = [x] * arity
        assert np.asarray(ops.call(fn, args)).shape == (3,), fn


def test_a_missing_function_is_caught() -> None:
    """What the checks above rely on: a renderer without one of the methods is abstract, and a
    refusal of a function outside the vocabulary is rejected when the class is defined."""

    class Missing(E.ScalarOps):
        def add(self, a, b):
            return a

    assert inspect.isabstract(Missing) and "quant_steps" in Missing.__abstractmethods__
    with pytest.raises(TypeError):
        Missing()
    with pytest.raises(TypeError, match="not in the vocabulary"):
        type("Bad", (E.NumpyOps,), {"refused": {"fma": "no"}})
    with pytest.raises(TypeError, match="twice"):
        type("Twice", (E.NumpyOps,), {"refused": {"add": "no"}, "add": lambda self, a, b: a})
