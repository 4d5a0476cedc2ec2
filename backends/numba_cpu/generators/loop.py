"""The LOOP generator (pure elementwise/broadcast clusters) and the printing helpers that every
generator of this package shares.

Shared pieces:
* `njit_line`: the one decorator every kernel uses (PERFORMANCE.md §1.5/§5: fastmath without
  nnan/ninf, numpy error model, no bounds checks; `parallel` only for big kernels).
* `Emitter`: prints a DAG of expression trees (the cluster's outputs) as straight-line code, one
  temporary per distinct node (common subexpressions shared between outputs are computed once),
  each node printed in its own operand dtype with `printer.to_python` on a one-level tree. So a
  float tree holding a comparison of int32 tensors prints its constants right, and integer
  arithmetic is wrapped back to its type (Numba types int32 + int32 as int64; truncating the
  result gives the two's-complement wrap-around ops/expr.py specifies).
* `Rows`: indexing through flat 1-D views with literal strides. Every kernel here iterates
  "rows" (outer indices) and one contiguous innermost dimension; per row it hoists the row's base
  offset and the inner loop reads `a[base + i]` (measured: 6x faster than hoisting a 1-D slice
  per row for short rows, e.g. 24 channels; slicing costs per row and blocks the vectorizer's
  alias checks). Broadcast arrays whose innermost dim is 1 hoist a scalar instead.

LOOP kernels: the iteration shape is collapsed first (size-1 dims dropped, adjacent dims merged
where every operand is either full or broadcast in both), so e.g. a per-channel bias add over
NHWC becomes [H*W, C] and a scalar or same-shape add becomes one flat loop. Outer dims are walked
by one flat row index (decomposed with literal div/mod where an operand needs a coordinate);
big kernels prange over rows, or over chunks of a 1-D loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tflite_jit.backends.numba_cpu import printer
from tflite_jit.backends.numba_cpu.backend import register_generator
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
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
# rough serial cost per element, ns (measured here: ADD+RELU6 0.1, LOGISTIC with _exp32 0.25);
# tanh/erf/erfc are built on _exp32 (EXP_PRELUDE); log stays a scalar libm call (no SVML,
# PERFORMANCE.md §1.7)
_BASE_NS = 0.06
_NODE_NS = {"exp": 0.15, "log": 4.0, "atan2": 6.0, "tanh": 0.3, "erf": 0.4, "erfc": 0.4, "sqrt": 0.05,
            "rsqrt": 0.06, "div": 0.05}


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


#: A vectorizable float32 exp for generated modules that call `_exp32` (pasted into the module,
#: so its text is part of the kernel's content hash). libm's expf is a scalar call (no SVML in
#: pip llvmlite, PERFORMANCE.md §1.7): 2 ns per element here, 3x slower than NumPy. This is
#: Cody-Waite reduction by ln2, a degree-7 Taylor polynomial on |r| <= ln2/2 and the 2^n scale
#: built from exponent bits (an LLVM bitcast), applied as two factors so subnormal results and
#: results just below FLT_MAX stay exact. Measured over [-110, 95]: max error 0.91 ulp (NumPy's
#: float32 exp: 2.3 ulp), inf above ~88.72, 0 below ~-103.97, NaN passes through.
#: It is compiled as its own function with only 'contract': fast-math flags live on the
#: instructions, so after LLVM inlines it into a kernel compiled with 'reassoc' its scale
#: factors are still applied in order (reassociated, (p*2^64)*2^64 became p*inf).
EXP_PRELUDE = '''
from llvmlite import ir as _ir
from numba.core import types as _types
from numba.extending import intrinsic as _intrinsic


@_intrinsic
def _f32_from_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], _ir.FloatType())
    return _types.float32(_types.int32), codegen


@numba.njit(fastmath={'contract'}, error_model='numpy', nogil=True)
def _exp32(x):
    xc = x if x > np.float32(-104.0) else np.float32(-104.0)
    xc = xc if xc < np.float32(89.0) else np.float32(89.0)
    n = np.floor(xc * np.float32(1.4426950408889634) + np.float32(0.5))
    r = xc - n * np.float32(0.693359375)
    r = r - n * np.float32(-2.1219444005469057e-04)
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    ni = np.int32(n)
    h = np.int32(ni >> np.int32(1))
    s1 = _f32_from_bits(np.int32((h + np.int32(127)) << np.int32(23)))
    s2 = _f32_from_bits(np.int32((ni - h + np.int32(127)) << np.int32(23)))
    y = (p * s1) * s2
    return x if x != x else y


@numba.njit(fastmath={'contract'}, error_model='numpy', nogil=True, inline='always')
def _erfc32(x):
    # Numerical Recipes' erfcc Chebyshev fit (fractional error < 1.2e-7), the same formula the
    # NumPy reference evaluates in float64, here in float32 around the vectorizable _exp32.
    # Inlined at Numba IR level (13x faster measured: LLVM would not inline two call levels
    # and the loop stayed scalar); _exp32 itself stays a call so its flags are kept.
    z = abs(x)
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.5) * z)
    q = np.float32(0.17087277)
    q = q * t + np.float32(-0.82215223)
    q = q * t + np.float32(1.48851587)
    q = q * t + np.float32(-1.13520398)
    q = q * t + np.float32(0.27886807)
    q = q * t + np.float32(-0.18628806)
    q = q * t + np.float32(0.09678418)
    q = q * t + np.float32(0.37409196)
    q = q * t + np.float32(1.00002368)
    q = q * t + np.float32(-1.26551223)
    r = t * _exp32(q - z * z)
    return r if x >= np.float32(0.0) else np.float32(2.0) - r


@numba.njit(fastmath={'contract'}, error_model='numpy', nogil=True, inline='always')
def _erf32(x):
    return np.float32(1.0) - _erfc32(x)


@numba.njit(fastmath={'contract'}, error_model='numpy', nogil=True, inline='always')
def _tanh32(x):
    # tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1)); absolute error ~1e-7, far inside the float
    # contract, and vectorizable where libm's tanhf is a scalar call.
    e = _exp32(np.float32(2.0) * abs(x))
    y = np.float32(1.0) - np.float32(2.0) / (e + np.float32(1.0))
    y = y if x >= np.float32(0.0) else -y
    return x if x != x else y
'''

VECTOR_FNS = {"exp": "_exp32", "erfc": "_erfc32", "erf": "_erf32", "tanh": "_tanh32"}


def module(body: str, parallel: bool, arcp: bool = True) -> str:
    """A complete kernel module: the printer's prelude (plus `_exp32` when the body calls it),
    then the entry function."""
    extra = EXP_PRELUDE if any(f"{f}(" in body for f in VECTOR_FNS.values()) else ""
    return printer.PRELUDE + extra + "\n\n" + njit_line(parallel, arcp) + "\n" + body


def exprs_cost_ns(exprs: Sequence[Expr]) -> float:
    """Estimated serial ns per element to evaluate `exprs` (shared nodes counted once)."""
    seen: set = set()

    def walk(e: Expr) -> float:
        if not isinstance(e, Call) or e in seen:
            return 0.0
        seen.add(e)
        return _NODE_NS.get(e.fn, 0.02) + sum(walk(a) for a in e.args)

    return sum(walk(e) for e in exprs)


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
            if od == BOOL and e.fn not in ("eq", "ne", "where"):
                raise Unsupported(f"{e.fn} on bool operands")
            names: dict[int, str] = {}
            shallow: list[Expr] = []
            for j, a in enumerate(e.args):
                if isinstance(a, Const) and not (e.fn == "where" and j == 0):
                    shallow.append(a)
                else:
                    names[-1 - j] = self.value(a, BOOL if (e.fn == "where" and j == 0) else od)
                    shallow.append(Var(-1 - j))
            if e.fn in VECTOR_FNS and od == F32 and -1 in names:  # EXP_PRELUDE, not scalar libm
                text = f"{VECTOR_FNS[e.fn]}({names[-1]})"
            else:
                text = printer.to_python(Call(e.fn, tuple(shallow)), names, od)
            if od.kind in "iu" and e.fn in _INT_WRAP:
                text = f"np.{od.name}({text})"
            name = f"_t{len(self._memo)}"
            self.lines.append(f"{name} = {text}")
        self._memo[e] = name
        return name


# ---- flat views and rows ----------------------------------------------------------------------


def c_strides(shape: Sequence[int]) -> list[int]:
    out, s = [], 1
    for d in reversed(shape):
        out.append(s)
        s *= int(d)
    return out[::-1]


def numel(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


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


# ---- LOOP -------------------------------------------------------------------------------------


def _collapse(shape: tuple[int, ...], operands: Sequence[tuple[int, ...]]) -> tuple[list[int], list[tuple[int, ...]]]:
    """Collapsed iteration dims and each operand's collapsed shape (1 where it broadcasts)."""
    dims = [d for d in range(len(shape)) if shape[d] != 1]
    groups: list[list[int]] = []
    for d in dims:
        pat = tuple(s[d] != 1 for s in operands)
        if groups and tuple(s[groups[-1][-1]] != 1 for s in operands) == pat:
            groups[-1].append(d)
        else:
            groups.append([d])
    if not groups:
        return [1], [(1,) for _ in operands]
    sizes = [numel([shape[d] for d in g]) for g in groups]
    shapes = [tuple(n if s[g[0]] != 1 else 1 for g, n in zip(groups, sizes)) for s in operands]
    return sizes, shapes


@register_generator("LOOP")
def generate_loop(req: KernelRequest) -> KernelSource:
    shape = tuple(req.out_shape)
    for o in req.outputs:
        if tuple(o.arg.shape) != shape:
            raise Unsupported(f"LOOP outputs of different shapes {o.arg.shape} and {shape}")
        used = variables(o.expr)
        if 0 in used:
            raise Unsupported("LOOP expressions have no root value (Var(0))")
        if any(not 1 <= k <= len(req.extras) for k in used):
            raise Unsupported(f"LOOP expression reads Var({max(used)}) but there are {len(req.extras)} inputs")
        check_dtype(o.arg.dtype, "LOOP output")
    for k, x in enumerate(req.extras):
        check_dtype(x.dtype, f"LOOP input {k}")
        if len(x.shape) != len(shape) or any(a not in (1, b) for a, b in zip(x.shape, shape)):
            raise Unsupported(f"LOOP input {k} of shape {x.shape} does not broadcast to {shape}")
    n = numel(shape)
    sizes, cshapes = _collapse(shape, [tuple(x.shape) for x in req.extras])
    est = n * (_BASE_NS + exprs_cost_ns([o.expr for o in req.outputs])) * 1e-9
    parallel = want_parallel(req, est) and n >= 4096
    L = sizes[-1]
    outer = sizes[:-1]
    P = numel(outer)
    # a 1-D space (every operand full or a scalar) is split into chunks; else prange over rows
    chunked = parallel and len(sizes) == 1
    args = std_args(req)
    arglist, params = signature(args)
    ef = [f"fe{k}" for k in range(len(req.extras))]
    of = [f"fo{k}" for k in range(len(req.outputs))]
    body = [f"def entry({params}):"]
    pre = flat_views([(ef[k], f"e{k}", x.shape) for k, x in enumerate(req.extras)]
                     + [(of[k], f"o{k}", shape) for k in range(len(req.outputs))])
    body += indent(pre, 1)
    if n == 0:
        body.append("    return")
        return KernelSource(module("\n".join(body) + "\n", False), "entry", arglist, False)
    if chunked:
        # one long 1-D loop: prange over equal chunks (multiples of 16 elements)
        nt = max(2 * req.num_threads, min(64, -(-n // 16384)))
        ch = -(-n // nt)
        ch = -(-ch // 16) * 16
        nt = -(-n // ch)
        lines = [f"lo = t * {ch}", f"hi = min(lo + {ch}, {n})"]
        rows_hoist: list[str] = []
        loads: dict[int, str] = {}
        dtypes: dict[int, np.dtype] = {}
        used: set[int] = set()
        for o in req.outputs:
            used |= variables(o.expr)
        for k in sorted(used):
            x = req.extras[k - 1]
            dtypes[k] = np.dtype(x.dtype)
            if numel(x.shape) == 1:
                rows_hoist.append(f"_r{k} = {ef[k - 1]}[0]")
                loads[k] = f"_r{k}"
            else:
                loads[k] = f"{ef[k - 1]}[i]"
        em = Emitter(loads, dtypes)
        stores = []
        for j, o in enumerate(req.outputs):
            stores.append(f"{of[j]}[i] = {em.value(o.expr, o.arg.dtype)}")
        body += indent(prange_head("t", 0, nt), 1)
        body += indent(lines + rows_hoist + ["for i in range(lo, hi):"], 2)
        body += indent(em.lines + stores, 3)
        return KernelSource(module("\n".join(body) + "\n", True), "entry", arglist, True)

    # rows over the collapsed outer dims, one flat row index `t`
    dim_var, row_lines = dim_decoder(outer)
    rows = Rows(dim_var, "i", ("t", outer))
    used = set()
    for o in req.outputs:
        used |= variables(o.expr)
    loads = {k: rows.load(ef[k - 1], cshapes[k - 1]) for k in sorted(used)}
    dtypes = {k: np.dtype(req.extras[k - 1].dtype) for k in sorted(used)}
    em = Emitter(loads, dtypes)
    stores = []
    for j, o in enumerate(req.outputs):
        val = em.value(o.expr, o.arg.dtype)
        stores.append(f"{rows.load(of[j], tuple(sizes), store=True)} = {val}")
    inner = [f"for i in range({L}):"] + indent(em.lines + stores, 1)
    body += indent(rows.pre, 1)
    if P == 1:
        body += indent(rows.hoist + inner, 1)
        parallel = False
    else:
        if parallel:
            head = prange_head("t", 0, P)
        else:
            head = [f"for t in range({P}):"]
        body += indent(head, 1) + indent(row_lines + rows.hoist + inner, 2)
    return KernelSource(module("\n".join(body) + "\n", parallel), "entry", arglist, parallel)
