"""What every OpenCL generator shares: the argument list, loads/stores in each storage format,
and the epilogue store.

A generator gets a `Gen` (the request plus how each tensor is stored on the device) and returns
the body of one `__kernel` whose work-items each produce one output element (or one row, for
SOFTMAX). Shapes, strides and constants are printed as literals, so the device compiler folds
the index arithmetic (PERFORMANCE.md §1.1 measured the same for Numba). Indices are C `int`:
`supports` refuses tensors of 2^31 elements or more.

Storage: 'f32' (float), 'f16' (half, read with vload_half / written with vstore_half, which are
core OpenCL 1.2 and need no cl_khr_fp16: the `allow_fp16` storage mode) and 'u8' (bool tensors:
one byte 0/1, NumPy's bool layout).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tflite_jit.backends.opencl import printer
from tflite_jit.backends.request import KernelRequest
from tflite_jit.ops.common import c_strides

KERNEL_NAME = "tj_kernel"


@dataclass(frozen=True)
class KArg:
    """One kernel parameter: a root input, an epilogue extra, an output, or a constant array the
    generator derived at plan time (uploaded once)."""

    kind: str  # 'input' | 'extra' | 'output' | 'const'
    index: int = 0
    value: np.ndarray | None = field(default=None, compare=False)


@dataclass
class ClSource:
    source: str
    global_size: int  # work-items (1-D NDRange)
    args: list[KArg]


GENERATORS: dict[str, Callable[[Gen], tuple[list[str], int]]] = {}


def register(*names: str) -> Callable:
    def deco(fn: Callable[[Gen], tuple[list[str], int]]) -> Callable:
        for n in names:
            GENERATORS[n] = fn
        return fn
    return deco


class Gen:
    """Generation state for one kernel."""

    def __init__(self, req: KernelRequest, storage: dict[tuple[str, int], str]):
        self.req = req
        self.storage = storage
        self.params: list[str] = []
        self.args: list[KArg] = []
        self._names: dict[tuple[str, int], str] = {}

    def fmt(self, kind: str, index: int) -> str:
        return self.storage.get((kind, index), "f32")

    def param(self, kind: str, index: int, value: np.ndarray | None = None) -> str:
        """The C name of a buffer parameter (declared once)."""
        key = (kind, index)
        if key in self._names:
            return self._names[key]
        name = {"input": "in", "extra": "x", "output": "out", "const": "c"}[kind] + str(index)
        fmt = self.fmt(kind, index)
        ctype = {"f32": "float", "f16": "half", "u8": "uchar"}[fmt]
        qual = "" if kind == "output" else "const "
        self.params.append(f"__global {qual}{ctype}* restrict {name}")
        self.args.append(KArg(kind, index, value))
        self._names[key] = name
        return name

    def load(self, kind: str, index: int, idx: str) -> str:
        """A float (or, for u8, int) expression reading element `idx`."""
        name = self.param(kind, index)
        fmt = self.fmt(kind, index)
        if fmt == "f16":
            return f"vload_half({idx}, {name})"
        if fmt == "u8":
            return f"((int){name}[{idx}])"
        return f"{name}[{idx}]"

    def load8(self, kind: str, index: int, idx: str) -> str:
        """A float8 expression reading elements idx..idx+7 (float32 or half storage)."""
        name = self.param(kind, index)
        fmt = self.fmt(kind, index)
        if fmt == "u8":
            raise printer.PrintError("vector load of a bool tensor")
        return f"vload_half8(0, {name} + {idx})" if fmt == "f16" else f"vload8(0, {name} + {idx})"

    def store(self, index: int, idx: str, value: str) -> str:
        name = self.param("output", index)
        fmt = self.fmt("output", index)
        if fmt == "f16":
            # saturate: a float beyond half's range (a -1e9 attention mask) must not become inf
            return f"vstore_half(tj_sat_half({value}), {idx}, {name});"
        if fmt == "u8":
            return f"{name}[{idx}] = (uchar)(({value}) ? 1 : 0);"
        return f"{name}[{idx}] = {value};"

    def epilogue(self, flat: str, v0: str) -> list[str]:
        """Statements that apply the cluster's epilogue to the root value `v0` at output element
        `flat` (a C int expression) and store every output there."""
        shape = self.req.out_shape
        ostr = c_strides(shape)
        lines: list[str] = []
        names = {0: v0}
        var_bool = {}
        for k, x in enumerate(self.req.extras):
            if x.dtype not in (np.float32, np.bool_):
                raise printer.PrintError(f"epilogue input of type {x.dtype} (float32 only)")
            xs = c_strides(x.shape)
            if tuple(x.shape) == tuple(shape):
                idx = flat
            else:
                terms = []
                for d, (xd, od) in enumerate(zip(x.shape, shape)):
                    if xd != 1:
                        coord = f"({flat} / {ostr[d]})" if ostr[d] > 1 else f"({flat})"
                        if d > 0:
                            coord = f"({coord} % {od})"
                        terms.append(f"{coord} * {xs[d]}" if xs[d] != 1 else coord)
                idx = " + ".join(terms) or "0"
            names[k + 1] = f"xv{k}"
            var_bool[k + 1] = x.dtype == np.bool_
            lines.append(f"const {'int' if var_bool[k + 1] else 'float'} xv{k} = {self.load('extra', k, idx)};")
        stmts, results = printer.emit([o.expr for o in self.req.outputs], names, var_bool)
        lines += stmts
        for j, (o, r) in enumerate(zip(self.req.outputs, results)):
            if o.arg.dtype not in (np.float32, np.bool_):
                raise printer.PrintError(f"output of type {o.arg.dtype} (float32 only)")
            lines.append(self.store(j, flat, r))
        return lines

    def source(self, body: list[str], global_size: int) -> ClSource:
        head = printer.PRELUDE + f"__kernel void {KERNEL_NAME}({', '.join(self.params)}) {{\n"
        head += "    const int gid = get_global_id(0);\n"
        text = head + "".join(f"    {line}\n" for line in body) + "}\n"
        return ClSource(text, global_size, self.args)


def activation_clamp(v: str, act: str) -> str:
    """A root op's own fused activation (ops.common.apply_activation: NONE/RELU/RELU6/RELU_N1_TO_1),
    printed with NaN-propagating selects like the epilogue's max/min."""
    if act == "NONE":
        return v
    lo, hi = {"RELU": ("0.0f", None), "RELU6": ("0.0f", "6.0f"), "RELU_N1_TO_1": ("-1.0f", "1.0f")}[act]
    r = f"(({v}) < {lo} ? {lo} : ({v}))"
    if hi is not None:
        r = f"(({r}) > {hi} ? {hi} : ({r}))"
    return r


def generate(req: KernelRequest, storage: dict[tuple[str, int], str]) -> ClSource:
    """The OpenCL program for one request (Unsupported-style ValueError when it cannot)."""
    gen = GENERATORS.get(req.op_name)
    if gen is None:
        raise printer.PrintError(f"no OpenCL kernel for {req.op_name}")
    g = Gen(req, storage)
    body, size = gen(g)
    return g.source(body, size)
