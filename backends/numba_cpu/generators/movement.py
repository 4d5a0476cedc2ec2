"""Data-movement ops (TRANSPOSE, SLICE, STRIDED_SLICE, CONCATENATION, SPLIT, GATHER with constant
indices, DEPTH_TO_SPACE, MIRROR_PAD, RESIZE_NEAREST_NEIGHBOR, ...) as shape-specialised copy
loops, for every element type (quantized ones included when the op moves raw values).

The op's semantics are not re-derived here: at plan time the generator runs the op's own
reference (ops/) on *index* arrays — data input k holds `base_k + arange(n_k)` as int64 — so the
reference's output says, for every output element, which input element it copies. That map is
then cut into pieces (one per input region of each output: a box) and each piece factored into one
table per output axis (source offset = base + T_0[i_0] + ... + T_r[i_r]), checked against the map
element by element. Axes whose table is affine (i * step) become literal strides, and adjacent
affine axes that are contiguous in both source and destination merge, so a concatenation along
channels is one contiguous copy per pixel per input and a transpose that keeps the innermost axis
copies whole rows. A map that is not separable (multi-dimensional GATHER indices) is copied
through a flat index table. Anything the reference rejects at plan time (bad indices, a type its
rule refuses) stays on the reference backend, which reports it at invoke as LiteRT does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tflite_jit import ops
from tflite_jit.backends.numba_cpu import emit, host
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops import expr as E
from tflite_jit.ops.common import c_strides

#: ops whose output elements are copies of input elements (the map is computed from the op's
#: reference); single-output ones first, then SPLIT / SPLIT_V / UNPACK
MOVEMENT_OPS = ("TRANSPOSE", "SLICE", "STRIDED_SLICE", "CONCATENATION", "PACK", "GATHER", "GATHER_ND",
                "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "MIRROR_PAD", "RESIZE_NEAREST_NEIGHBOR", "TILE",
                "BROADCAST_TO", "REVERSE_V2", "BATCH_TO_SPACE_ND", "RESHAPE", "SQUEEZE", "EXPAND_DIMS")
MULTI_OUTPUT_OPS = ("SPLIT", "SPLIT_V", "UNPACK")

#: inputs read for their values although the op's definition does not list them as shape inputs
#: (they must be constant for a compiled kernel)
VALUE_INPUTS = {"GATHER": (1,), "GATHER_ND": (1,)}

#: largest output (elements) whose index map is computed at plan time (an int64 map of this many
#: elements is 32 MiB; the factoring holds a few arrays of its size)
MAX_MAP_ELEMENTS = 1 << 22
#: most (output elements x data inputs) the per-input box search may scan at plan time
MAX_MAP_WORK = 1 << 26
#: largest flat index table of a non-separable piece
MAX_TABLE_ELEMENTS = 1 << 22


@dataclass
class Piece:
    """One box of one output copied from one input: dst offset = dst_base + sum(i_d * dst_step_d),
    src offset = src_base + sum(T_d[i_d]) (T_d affine: i_d * src_step_d, else a table)."""

    out: int
    src: int
    sizes: list[int]
    dst_base: int
    dst_steps: list[int]
    src_base: int
    src_steps: list[int | None]  # None: tables[d]
    tables: list[np.ndarray | None]
    flat: np.ndarray | None = None  # non-separable: the source offset of every box element


def data_inputs(op_name: str, n_inputs: int) -> list[int]:
    """The inputs whose elements the op moves (the others are read for their values)."""
    opdef = ops.get(op_name)
    skip = set(getattr(opdef, "shape_inputs", ()) or ()) | set(VALUE_INPUTS.get(op_name, ()))
    return [i for i in range(n_inputs) if i not in skip]


def index_maps(req: KernelRequest) -> tuple[list[int], list[int], list[np.ndarray]]:
    """(data input indices, their base codes, per output the int64 map of source codes)."""
    data = [i for i in data_inputs(req.op_name, len(req.inputs)) if req.inputs[i] is not None]
    if not data:
        raise Unsupported(f"{req.op_name}: no data input")
    total = sum(math.prod(o.arg.shape) for o in req.outputs)
    if total > MAX_MAP_ELEMENTS:
        raise Unsupported(f"{req.op_name}: {total} output elements (> {MAX_MAP_ELEMENTS}) runs on reference")
    arrays: list[np.ndarray | None] = []
    bases: list[int] = []
    base = 0
    for i, t in enumerate(req.inputs):
        if t is None:
            arrays.append(None)
        elif i in data:
            n = math.prod(t.shape)
            arrays.append(np.arange(base, base + n, dtype=np.int64).reshape(t.shape))
            bases.append(base)
            base += n
        elif t.value is None:
            raise Unsupported(f"{req.op_name}: input {i} is known only at run time (runs on reference)")
        else:
            arrays.append(np.asarray(t.value))
    try:
        maps = ops.get(req.op_name).reference(arrays, req.attrs)
    except Exception as e:  # the reference reports it at invoke, with LiteRT's error
        raise Unsupported(f"{req.op_name}: {e}") from None
    if len(maps) != len(req.outputs):
        raise Unsupported(f"{req.op_name}: {len(maps)} results for {len(req.outputs)} outputs")
    out = []
    for m, o in zip(maps, req.outputs):
        m = np.asarray(m)
        if m.dtype != np.int64 or tuple(m.shape) != tuple(o.arg.shape):
            raise Unsupported(f"{req.op_name}: the reference does not move elements as they are "
                              f"(result {m.dtype}{list(m.shape)})")
        if m.size and (m.min() < 0 or m.max() >= base):
            raise Unsupported(f"{req.op_name}: output elements not copied from an input")
        out.append(m)
    return data, bases, out


def _separable(local: np.ndarray) -> tuple[int, list[np.ndarray]] | None:
    """local == base + sum_d T_d[i_d] for per-axis tables T_d (T_d[0] = 0), or None."""
    r = local.ndim
    base = int(local.reshape(-1)[0])
    tabs = []
    acc = np.full(local.shape, base, np.int64)
    for d in range(r):
        idx = [0] * r
        idx[d] = slice(None)
        t = local[tuple(idx)] - base
        tabs.append(t)
        acc = acc + t.reshape([-1 if k == d else 1 for k in range(r)])
    return (base, tabs) if np.array_equal(acc, local) else None


def _affine_step(t: np.ndarray) -> int | None:
    if t.size <= 1:
        return 0
    step = int(t[1])
    return step if np.array_equal(t, np.arange(t.size, dtype=np.int64) * step) else None


def make_piece(out: int, src: int, out_shape: Sequence[int], lo: Sequence[int], local: np.ndarray) -> Piece:
    """The piece that fills box [lo, lo + local.shape) of output `out` from input `src`."""
    ost = c_strides(tuple(out_shape))
    dst_base = sum(a * s for a, s in zip(lo, ost))
    sep = _separable(local) if local.ndim else (int(local), [])
    if sep is None:
        if local.size > MAX_TABLE_ELEMENTS:
            raise Unsupported(f"index table of {local.size} elements (> {MAX_TABLE_ELEMENTS})")
        return Piece(out, src, list(local.shape), dst_base, list(ost), 0, [], [],
                     np.ascontiguousarray(local.reshape(-1)))
    base, tabs = sep
    sizes, dsteps, ssteps, tables = [], [], [], []
    for n, ds, t in zip(local.shape, ost, tabs):
        if n == 1:
            continue
        step = _affine_step(t)
        if (sizes and step is not None and ssteps[-1] is not None
                and ssteps[-1] == n * step and dsteps[-1] == n * ds):
            # contiguous with the previous axis in source and destination: one longer axis
            sizes[-1] *= n
            dsteps[-1], ssteps[-1] = ds, step
            continue
        sizes.append(int(n))
        dsteps.append(int(ds))
        ssteps.append(step)
        tables.append(None if step is not None else np.ascontiguousarray(t))
    return Piece(out, src, sizes, dst_base, dsteps, base, ssteps, tables)


def pieces_of(out: int, m: np.ndarray, data: Sequence[int], bases: Sequence[int],
              sizes: Sequence[int]) -> list[Piece]:
    """Cut output `out`'s map into one box per source input."""
    if m.size == 0:
        return []
    pieces = []
    for k, (b, n) in enumerate(zip(bases, sizes)):
        mask = (m >= b) & (m < b + n)
        cnt = int(mask.sum())
        if cnt == 0:
            continue
        if cnt == m.size:
            lo = [0] * m.ndim
            box = m
        else:
            nz = np.nonzero(mask)
            lo = [int(a.min()) for a in nz]
            hi = [int(a.max()) + 1 for a in nz]
            if math.prod(h - a for a, h in zip(lo, hi)) != cnt:
                raise Unsupported("an input's elements do not form a box of the output")
            box = m[tuple(slice(a, h) for a, h in zip(lo, hi))]
        pieces.append(make_piece(out, data[k], m.shape, lo, box - b))
    return pieces


def _piece_code(p: Piece, k: int) -> tuple[list[str], list[tuple[Arg, str]]]:
    """Lines (indented for the entry body) and table arguments of piece k."""
    x, o = f"x{p.src}", f"o{p.out}"
    args: list[tuple[Arg, str]] = []
    if p.flat is not None:
        name = f"t{k}"
        args.append((Arg("const", value=p.flat), name))
        ost = c_strides(tuple(p.sizes))
        lines = []
        ind = ""
        for d, n in enumerate(p.sizes):
            lines.append(f"{ind}for i{d} in range({n}):")
            ind += "    "
        dst = " + ".join([str(p.dst_base)] + [f"i{d} * {s}" for d, s in enumerate(p.dst_steps)])
        src = " + ".join(["0"] + [f"i{d} * {s}" for d, s in enumerate(ost)])
        lines.append(f"{ind}st({o}, {dst}, ld({x}, ld({name}, {src})))")
        return [f"    {ln}" for ln in lines], args
    lines: list[str] = []
    r = len(p.sizes)
    if r == 0:
        return [f"    st({o}, {p.dst_base}, ld({x}, {p.src_base}))"], args
    prev_s, prev_d = str(p.src_base), str(p.dst_base)
    ind = "    "
    for d in range(r):
        var = f"i{d}"
        if p.src_steps[d] is None:
            name = f"t{k}_{d}"
            args.append((Arg("const", value=p.tables[d]), name))
            s_term = f"ld({name}, {var})"
        else:
            s_term = f"{var} * {p.src_steps[d]}"
        d_term = f"{var} * {p.dst_steps[d]}"
        lines.append(f"{ind}for {var} in range({p.sizes[d]}):")
        ind += "    "
        if d < r - 1:
            lines.append(f"{ind}s{d} = {prev_s} + {s_term}")
            lines.append(f"{ind}d{d} = {prev_d} + {d_term}")
            prev_s, prev_d = f"s{d}", f"d{d}"
        else:
            lines.append(f"{ind}st({o}, {prev_d} + {d_term}, ld({x}, {prev_s} + {s_term}))")
    return lines, args


def check_plain(req: KernelRequest) -> None:
    """Refuse a request with a fused epilogue or a type conversion (the op moves raw values)."""
    for o in req.outputs:
        if o.expr != E.Var(0):
            raise Unsupported(f"{req.op_name}: fused epilogues are not compiled")
    if req.extras:
        raise Unsupported(f"{req.op_name}: fused epilogues are not compiled")


def generate_movement(req: KernelRequest) -> KernelSource:
    check_plain(req)
    data, bases, maps = index_maps(req)
    dts = {np.dtype(req.inputs[i].dtype) for i in data} | {np.dtype(o.arg.dtype) for o in req.outputs}
    if len(dts) != 1:
        raise Unsupported(f"{req.op_name}: input and output types differ {sorted(map(str, dts))}")
    sizes = [math.prod(req.inputs[i].shape) for i in data]
    if sum(m.size for m in maps) * len(data) > MAX_MAP_WORK:
        raise Unsupported(f"{req.op_name}: {len(data)} inputs x {sum(m.size for m in maps)} elements "
                          "is too much plan-time work (runs on reference)")
    pieces: list[Piece] = []
    for j, m in enumerate(maps):
        pieces += pieces_of(j, m, data, bases, sizes)
    used = sorted({p.src for p in pieces})
    params: list[tuple[Arg, str]] = [(Arg("input", i), f"a{i}") for i in used]
    params += [(Arg("output", j), f"b{j}") for j in range(len(req.outputs))]
    body: list[str] = []
    for i in used:
        body.append(f"    x{i} = a{i}.reshape({math.prod(req.inputs[i].shape)})")
    for j, o in enumerate(req.outputs):
        body.append(f"    o{j} = b{j}.reshape({math.prod(o.arg.shape)})")
    for k, p in enumerate(pieces):
        lines, targs = _piece_code(p, k)
        body += lines
        params += targs
    if not pieces:
        body.append("    return")
    args, sig = emit.signature(params)
    src = (f"# {req.op_name}\n" + emit.helper_import(host.SIMD, "ld", "st")
           + emit.module(f"def entry({sig}):\n" + "\n".join(body) + "\n", False))
    return KernelSource(src, "entry", args, False)


for _name in (*MOVEMENT_OPS, *MULTI_OUTPUT_OPS):
    register_generator(_name)(generate_movement)
