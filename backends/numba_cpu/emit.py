"""The emitter toolkit every Numba kernel generator (generators/*) prints with.

* `njit_line` / `module`: the one decorator every kernel uses (PERFORMANCE.md §1.5/§5: fastmath
  without nnan/ninf, numpy error model, no bounds checks; `parallel` only for big kernels), and a
  complete kernel module (printer.PRELUDE, plus printer.EXP_PRELUDE when the body calls it).
* `Emitter`: prints a DAG of expression trees (the cluster's outputs) as straight-line code, one
  temporary per distinct node (common subexpressions shared between outputs are computed once),
  each node printed in its own operand dtype by `printer.NumbaOps`. So a float tree holding a
  comparison of int32 tensors prints its constants right, and integer arithmetic is wrapped back
  to its type (Numba types int32 + int32 as int64; truncating the result gives the
  two's-complement wrap-around ops/expr.py specifies).
* `Rows`: indexing through flat 1-D views with literal strides. Every kernel here iterates
  "rows" (outer indices) and one contiguous innermost dimension; per row it hoists the row's base
  offset and the inner loop reads `a[base + i]` (measured: 6x faster than hoisting a 1-D slice
  per row for short rows, e.g. 24 channels; slicing costs per row and blocks the vectorizer's
  alias checks). Broadcast arrays whose innermost dim is 1 hoist a scalar instead.
* `outputs_code`, `std_args` / `std_flats` / `signature`: the epilogue's stores and the entry
  function's parameters in the order every generator uses (root inputs, extras, outputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tflite_jit.backends.numba_cpu import printer
from tflite_jit.backends.numba_cpu.spec import Arg
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops.common import c_strides, numel
from tflite_jit.ops.expr import Call, Const, Expr, Var, variables

F32 = np.dtype(np.float32)
BOOL = np.dtype(np.bool_)
SUPPORTED_DTYPES = (F32, np.dtype(np.int32), np.dtype(np.int64), BOOL)

#: Serial work (estimated) below which a kernel stays serial: a parallel region costs ~5 µs in
#: real use and parallel=True triples compile time (PERFORMANCE.md §1.3-1.4).
PARALLEL_MIN_SECONDS = 50e-6

_CMP = frozenset(("lt", "gt", "le", "ge", "eq", "ne"))
_FLOAT_ONLY = frozenset(("sqrt", "rsqrt", "exp", "log", "tanh", "erf", "erfc", "floor", "ceil",
                         "atan2", "round_away", "quant_steps"))
_INT_ONLY = frozenset(("bitand", "bitxor", "rshift"))
_INT_WRAP = frozenset(("add", "sub", "mul", "div", "neg", "square", "abs", "max", "min",
                       "bitand", "bitxor", "rshift"))


def njit_line(parallel: bool, arcp: bool = True) -> str:
    fm = "{'reassoc', 'contract', 'nsz', 'arcp'}" if arcp else "{'reassoc', 'contract', 'nsz'}"
    return (f"@numba.njit(cache=True, nogil=True, fastmath={fm}, "
            f"error_model='numpy', boundscheck=False, parallel={bool(parallel)})")


def want_parallel(req: KernelRequest, serial_seconds: float) -> bool:
    return req.num_threads > 1 and serial_seconds >= PARALLEL_MIN_SECONDS


def prange_head(var: str, lo: int, hi: int) -> list[str]:
    """`for <var>_ in prange(lo, hi)` plus `<var>` clamped to [lo, hi - 1]: inside the outlined
    parallel loop the index has unknown bounds (and may be typed unsigned), so LLVM could not
    prove derived indices non-negative and would keep Numba's wrap-around selects."""
    rng = f"{hi}" if lo == 0 else f"{lo}, {hi}"
    return [f"for {var}_ in numba.prange({rng}):",
            f"    {var} = min(max(np.int64({var}_), {lo}), {hi - 1})"]


def module(body: str, parallel: bool, arcp: bool = True) -> str:
    """A complete kernel module: the printer's prelude (plus `_exp32` when the body calls it),
    then the entry function."""
    extra = printer.EXP_PRELUDE if uses_vector_libm(body) else ""
    return printer.PRELUDE + extra + "\n\n" + njit_line(parallel, arcp) + "\n" + body


def helper_import(module: str, *names: str) -> str:
    """The line a generated module imports helpers (intrinsics) with: `from <module> import ...`.
    Generators name the module by host.py's constants (importing it would import Numba, which a
    first result on the reference kernels must not wait for); tests/backends/test_numba_cache.py
    checks that each constant names an importable module."""
    return f"from {module} import {', '.join(names)}\n"


def uses_vector_libm(text: str) -> bool:
    """Whether printed code calls a helper of printer.EXP_PRELUDE (which must then be included)."""
    return any(f"{f}(" in text for f in printer.VECTOR_FNS.values())


def check_dtype(dt: np.dtype, what: str) -> np.dtype:
    dt = np.dtype(dt)
    if dt not in SUPPORTED_DTYPES:
        raise Unsupported(f"{what} has type {dt}; the Numba kernels handle float32, int32, int64, bool")
    return dt


# ---- expressions ------------------------------------------------------------------------------


class Emitter:
    """Straight-line code for the outputs' expression DAG. `var_loads[i]` is the source text that
    reads Var(i) at the current element (emitted once, on first use, as `_v<i>`)."""

    def __init__(self, var_loads: dict[int, str], var_dtypes: dict[int, np.dtype]):
        self.var_loads = var_loads
        self.var_dtypes = {k: np.dtype(v) for k, v in var_dtypes.items()}
        self.lines: list[str] = []
        self._memo: dict[Expr, str] = {}
        self._dt: dict[Expr, np.dtype] = {}

    def dtype(self, e: Expr) -> np.dtype | None:
        """The node's result dtype (None for a Const: it takes its context's)."""
        if isinstance(e, Var):
            if e.index not in self.var_dtypes:
                raise Unsupported(f"expression reads Var({e.index}), which this kernel does not have")
            return self.var_dtypes[e.index]
        if isinstance(e, Const):
            return None
        dt = self._dt.get(e)
        if dt is None:
            dt = BOOL if e.fn in _CMP else self._operand_dtype(e)
            self._dt[e] = dt
        return dt

    def _operand_dtype(self, e: Call) -> np.dtype:
        args = e.args[1:] if e.fn == "where" else e.args
        dts = {self.dtype(a) for a in args} - {None}
        if len(dts) > 1:
            raise Unsupported(f"{e.fn} mixes operand types {sorted(str(d) for d in dts)}")
        return dts.pop() if dts else F32

    def value(self, e: Expr, dtype: np.dtype | None = None) -> str:
        """Source text (a temporary's name or a literal) of `e`; `dtype` types a bare Const."""
        if isinstance(e, Const):
            return printer.const_literal(e.value, dtype if dtype is not None else F32)
        name = self._memo.get(e)
        if name is not None:
            return name
        if isinstance(e, Var):
            self.dtype(e)
            name = f"_v{e.index}"
            self.lines.append(f"{name} = {self.var_loads[e.index]}")
        else:
            od = self._operand_dtype(e)
            if od not in SUPPORTED_DTYPES:
                raise Unsupported(f"{e.fn} on {od}")
            if e.fn in _FLOAT_ONLY and od.kind != "f":
                raise Unsupported(f"{e.fn} on {od}")
            if e.fn in _INT_ONLY and od.kind not in "iu":
                raise Unsupported(f"{e.fn} on {od}")
            if od == BOOL and e.fn not in ("eq", "ne", "where", "and", "or", "not"):
                raise Unsupported(f"{e.fn} on bool operands")
            args = []
            for j, a in enumerate(e.args):
                cond = e.fn == "where" and j == 0
                if isinstance(a, Const) and not cond:
                    args.append(printer.const_literal(a.value, od))
                else:
                    args.append(self.value(a, BOOL if cond else od))
            # exp/erf/erfc/tanh of a float32 value: EXP_PRELUDE's helpers, not scalar libm
            vector_libm = e.fn in printer.VECTOR_FNS and not isinstance(e.args[0], Const)
            text = printer.NumbaOps(od, vector_libm).call(e.fn, args)
            if od.kind in "iu" and e.fn in _INT_WRAP:
                text = f"np.{od.name}({text})"
            name = f"_t{len(self._memo)}"
            self.lines.append(f"{name} = {text}")
        self._memo[e] = name
        return name


# ---- flat views and rows ----------------------------------------------------------------------


def flat_offset(shape: Sequence[int], dim_vars: Sequence[str | None]) -> str:
    """C-order offset of element (dim_vars...) of an array of `shape` broadcast to the iteration
    space: dims of size 1 contribute nothing (None: that dim is not iterated here)."""
    terms = []
    for d, (n, st) in enumerate(zip(shape, c_strides(shape))):
        v = dim_vars[d] if d < len(dim_vars) else None
        if n != 1 and v is not None:
            terms.append(v if st == 1 else f"{v} * {st}")
    return " + ".join(terms) if terms else "0"


class Rows:
    """Hoisted per-row access for arrays over an iteration space (outer dims..., inner dim).

    `dim_var(d)` gives the source name of outer coordinate d (emitting its definition on first
    use); `inner` names the inner loop variable. When `row` = (name, outer sizes) is given, an
    array that is full in every outer dim is addressed as `name * inner_len` directly."""

    def __init__(self, dim_var: Callable[[int], str], inner: str,
                 row: tuple[str, Sequence[int]] | None = None, prefix: str = ""):
        self.dim_var = dim_var
        self.inner = inner
        self.row = row
        self.prefix = prefix  # distinguishes the hoisted names of two Rows in one loop body
        self.hoist: list[str] = []  # per row
        self.pre: list[str] = []  # row-invariant (before the row loop)
        self._n = 0
        self._bases: dict[str, str] = {}

    def load(self, flat: str, shape: Sequence[int], store: bool = False) -> str:
        """Hoist this array's row; return the text that reads (`store`: writes) the current
        element."""
        shape = tuple(shape) or (1,)
        rank = len(shape)
        if self.row is not None and tuple(shape[:-1]) == tuple(self.row[1]) and numel(shape[:-1]) > 1:
            base = self.row[0] if shape[-1] == 1 else f"{self.row[0]} * {shape[-1]}"
        else:
            outer = [self.dim_var(d) if shape[d] != 1 else None for d in range(rank - 1)]
            base = flat_offset(shape, outer + [None])
        if shape[-1] == 1 and store:
            return f"{flat}[{base}]"
        if shape[-1] == 1:
            name = f"_r{self.prefix}{self._n}"
            self._n += 1
            (self.pre if base == "0" else self.hoist).append(f"{name} = {flat}[{base}]")
            return name
        if base == "0":
            return f"{flat}[{self.inner}]"
        b = self._bases.get(base)
        if b is None:
            b = self._bases[base] = f"_b{self.prefix}{len(self._bases)}"
            self.hoist.append(f"{b} = {base}")
        return f"{flat}[{b} + {self.inner}]"


def dim_decoder(outer: Sequence[int], var: str = "t") -> tuple[Callable[[int], str], list[str]]:
    """For rows numbered `var` over the C-order dims `outer`: a dim_var(d) callback for Rows that
    defines coordinate d (literal div/mod) on first use, appending to the returned lines."""
    ost = c_strides(outer)
    defined: dict[int, str] = {}
    lines: list[str] = []

    def dim_var(d: int) -> str:
        if len(outer) == 1:
            return var
        if d not in defined:
            if d == 0:
                expr = f"{var} // {ost[0]}"
            elif d == len(outer) - 1:
                expr = f"{var} % {outer[d]}"
            else:
                expr = f"({var} // {ost[d]}) % {outer[d]}"
            defined[d] = f"i{d}"
            lines.append(f"i{d} = {expr}")
        return defined[d]

    return dim_var, lines


def flat_views(pairs: Sequence[tuple[str, str, Sequence[int]]]) -> list[str]:
    """`flat = arg.reshape(n)` lines (1-D 'C' views of contiguous buffers)."""
    return [f"{flat} = {arg}.reshape({numel(shape)})" for flat, arg, shape in pairs]


def outputs_code(req: KernelRequest, rows: Rows, root: tuple[str, np.dtype] | None,
                 extra_flats: Sequence[str], out_flats: Sequence[str],
                 keep: Sequence[int] | None = None) -> list[str]:
    """Inner-loop statements that compute every output at the current element and store it:
    Var(0) = `root` (name, dtype), Var(k) = extras[k-1] read through `rows`. `keep`: the dims
    the iteration space keeps (the others have size 1 in the output and are dropped from every
    shape)."""

    def sq(shape: Sequence[int]) -> tuple[int, ...]:
        return tuple(shape) if keep is None else tuple(shape[d] for d in keep)

    used: set[int] = set()
    for o in req.outputs:
        used |= variables(o.expr)
    loads: dict[int, str] = {}
    dtypes: dict[int, np.dtype] = {}
    if root is not None:
        loads[0], dtypes[0] = root
    for k in sorted(used):
        if k == 0:
            continue
        if not 1 <= k <= len(req.extras):
            raise Unsupported(f"epilogue reads Var({k}) but the request has {len(req.extras)} extras")
        x = req.extras[k - 1]
        dtypes[k] = check_dtype(x.dtype, f"epilogue input {k - 1}")
        loads[k] = rows.load(extra_flats[k - 1], sq(x.shape))
    em = Emitter(loads, dtypes)
    stores = []
    for o, flat in zip(req.outputs, out_flats):
        check_dtype(o.arg.dtype, "output")
        val = em.value(o.expr, o.arg.dtype)
        stores.append(f"{rows.load(flat, sq(o.arg.shape), store=True)} = {val}")
    return em.lines + stores


def indent(lines: Sequence[str], n: int) -> list[str]:
    pad = "    " * n
    return [pad + ln if ln else ln for ln in lines]


def signature(args: Sequence[tuple[Arg, str]]) -> tuple[list[Arg], str]:
    return [a for a, _ in args], ", ".join(n for _, n in args)


def std_args(req: KernelRequest, first: Sequence[tuple[Arg, str]] = ()) -> list[tuple[Arg, str]]:
    """(Arg, parameter name) for `first`, then every extra (`e<k>`), then every output (`o<k>`)."""
    out = list(first)
    out += [(Arg("extra", k), f"e{k}") for k in range(len(req.extras))]
    out += [(Arg("output", k), f"o{k}") for k in range(len(req.outputs))]
    return out


def std_flats(req: KernelRequest) -> tuple[list[str], list[str], list[str]]:
    """Flat-view lines for extras and outputs, and their flat names."""
    ef = [f"fe{k}" for k in range(len(req.extras))]
    of = [f"fo{k}" for k in range(len(req.outputs))]
    lines = flat_views([(ef[k], f"e{k}", x.shape) for k, x in enumerate(req.extras)]
                       + [(of[k], f"o{k}", o.arg.shape) for k, o in enumerate(req.outputs)])
    return lines, ef, of


