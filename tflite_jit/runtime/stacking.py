"""Same-weight FULLY_CONNECTEDs over the rows of one tensor become one FULLY_CONNECTED.

A Keras RNN converted with `unroll=True` multiplies every time step's input by the same kernel:
an UNPACK of the (steps, batch, features) input, then one FULLY_CONNECTED per step, each a
1-row matrix-vector product. Run one by one, each pays a kernel call and reads the weights
for one row (issue #13: text_gru_unrolled_f32 spent ~19 of its ~60 us in 32 such calls, and was
slower than LiteRT's builtin kernels). The rows are already consecutive in the UNPACK's input,
so one FULLY_CONNECTED over that input computes all of them at once, as a GEMM that reads the
weights once; a SPLIT along the rows hands each step its own output tensor. Both the UNPACK
and that SPLIT cut contiguous runs, so the executable makes their outputs views (no copies).

This is a graph rewrite for execution only: the interpreter's own model, op indices and detail
dicts stay the file's, and `Subgraph.origin` maps each rewritten op back to the file's ops it
computes (the execution plan reports those). Every original tensor keeps its id and its
values (the per-step outputs are views of the stacked one); the stacked output and the SPLIT's
axis/size constants are new tensors appended after the file's.

Results are those of the separate FCs: each output row of a FULLY_CONNECTED depends only on its
input row (float: the same products, summed in the order the kernel for the row count uses;
integer: exact; dynamic-range: the input is quantized per row, as LiteRT's hybrid kernel does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from tflite_jit.ir.model import BUILTIN_CODES, TENSOR_TYPE_CODES, Model, Op, Subgraph, Tensor

#: the fewest FCs worth a stacked kernel (fewer: the rewrite saves less than its SPLIT's bookkeeping)
MIN_ROWS = 2


def stack_row_fcs(model: Model) -> Model:
    """`model` with every run of same-weight FULLY_CONNECTEDs over consecutive UNPACK rows
    stacked; the same object when nothing applies."""
    subgraphs = [_rewrite(sg) for sg in model.subgraphs]
    if all(new is old for new, old in zip(subgraphs, model.subgraphs)):
        return model
    return dataclasses.replace(model, subgraphs=subgraphs)


def _rewrite(sg: Subgraph) -> Subgraph:
    consumers: dict[int, list[int]] = {}
    producer: dict[int, int] = {}
    for oi, op in enumerate(sg.ops):
        for t in op.inputs:
            if t >= 0:
                consumers.setdefault(t, []).append(oi)
        for t in op.outputs:
            producer[t] = oi
    tensors = list(sg.tensors)
    inserted: dict[int, list[tuple[Op, tuple[int, ...]]]] = {}  # after op -> [(new op, origin)]
    removed: set[int] = set()
    for ui, op in enumerate(sg.ops):
        for run in _runs(sg, ui, consumers, producer) if op.name == "UNPACK" else ():
            inserted.setdefault(ui, []).extend(_stack(sg, tensors, op, run))
            removed.update(fc for _, fc in run)
    if not removed:
        return sg
    ops: list[Op] = []
    origin: list[tuple[int, ...]] = []
    for oi, op in enumerate(sg.ops):
        if oi not in removed:
            ops.append(op)
            origin.append((oi,))
        for new_op, from_ops in inserted.get(oi, ()):
            ops.append(new_op)
            origin.append(from_ops)
    return dataclasses.replace(sg, tensors=tensors, ops=ops, origin=tuple(origin), source=sg)


def _runs(sg: Subgraph, ui: int, consumers: dict[int, list[int]],
          producer: dict[int, int]) -> Iterable[list[tuple[int, int]]]:
    """Runs of (row, FC op index) of UNPACK `ui`: same weights, bias and options, consecutive
    rows, each row's input its FC's data input, and the weights and bias known before the UNPACK
    runs (constants, or made by earlier ops: a DEQUANTIZE of float16 weights), because the
    stacked FC runs right after it."""
    unpack = sg.ops[ui]
    x = sg.tensors[unpack.inputs[0]]
    if not _static(x) or x.sparsity is not None or len(x.shape) < 2:
        return
    axis = int((unpack.options or {}).get("axis", 0) or 0)
    if axis % len(x.shape) != 0 or x.shape[0] != len(unpack.outputs):
        return
    groups: dict[tuple, list[tuple[int, int]]] = {}
    for row, t in enumerate(unpack.outputs):
        if t < 0 or sg.tensors[t].quantization != x.quantization:
            continue
        for ci in consumers.get(t, ()):
            key = _fc_key(sg, ci, t)
            if key is not None and all(p < 0 or producer.get(p, -1) < ui for p in sg.ops[ci].inputs[1:]):
                groups.setdefault(key, []).append((row, ci))
    for members in groups.values():
        run: list[tuple[int, int]] = []
        for row, ci in sorted(members):
            if run and row != run[-1][0] + 1:
                if len(run) >= MIN_ROWS:
                    yield run
                run = []
            if not run or row != run[-1][0]:  # one FC per row: a duplicate stays as it is
                run.append((row, ci))
        if len(run) >= MIN_ROWS:
            yield run


def _fc_key(sg: Subgraph, oi: int, row_tensor: int) -> tuple | None:
    """What must be equal for FCs to stack, or None if op `oi` cannot: a FULLY_CONNECTED whose
    data input is `row_tensor`, with dense 2-D weights of a static shape, rows kept flat (no
    keep_num_dims), one static output of (rows, units)."""
    op = sg.ops[oi]
    if op.name != "FULLY_CONNECTED" or len(op.outputs) != 1 or not op.inputs or op.inputs[0] != row_tensor:
        return None
    opts = op.options or {}
    w = sg.tensors[op.inputs[1]] if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
    if w is None or not _static(w) or w.sparsity is not None or len(w.shape) != 2 or opts.get("keep_num_dims"):
        return None
    if row_tensor in op.inputs[1:]:
        return None
    rows_in = int(np.prod(sg.tensors[row_tensor].shape, dtype=np.int64))
    out = sg.tensors[op.outputs[0]]
    if not _static(out) or rows_in % w.shape[1] or tuple(out.shape) != (rows_in // w.shape[1], w.shape[0]):
        return None
    q = out.quantization
    qkey = None if q is None else (q.scales.tobytes(), q.zero_points.tobytes(), q.quantized_dimension)
    return (op.inputs[1:], op.version, tuple(sorted((k, repr(v)) for k, v in opts.items())), out.type, qkey)


def _stack(sg: Subgraph, tensors: list[Tensor], unpack: Op,
           run: list[tuple[int, int]]) -> list[tuple[Op, tuple[int, ...]]]:
    """The ops replacing the FCs of `run`: [SPLIT_V of the UNPACK's input, when the run covers
    only some rows,] the stacked FULLY_CONNECTED, and the SPLIT giving each FC its output."""
    x_id = unpack.inputs[0]
    x = sg.tensors[x_id]
    first, n = run[0][0], len(run)
    fcs = tuple(ci for _, ci in run)
    fc0 = sg.ops[fcs[0]]
    out0 = sg.tensors[fc0.outputs[0]]
    new: list[tuple[Op, tuple[int, ...]]] = []

    def add(t: Tensor) -> int:
        tensors.append(t)
        return len(tensors) - 1

    def int32(name: str, value: list[int] | int) -> int:
        data = np.array(value, np.int32)
        return add(Tensor(name=name, type=TENSOR_TYPE_CODES["INT32"], shape=data.shape, data=data))

    rows_in = x_id
    if n != x.shape[0]:  # the run's rows only: a contiguous slice of the input, cut as a view
        sizes = [s for s in (first, n, x.shape[0] - first - n) if s]
        pieces = [add(dataclasses.replace(x, name=f"{x.name}/stacked_rows_{i}", shape=(s, *x.shape[1:]),
                                          shape_signature=None, buffer=0, data=None, is_variable=False))
                  for i, s in enumerate(sizes)]
        split_v = Op(name="SPLIT_V", inputs=(x_id, int32(f"{x.name}/stacked_sizes", sizes),
                                             int32(f"{x.name}/stacked_axis", 0)),
                     outputs=tuple(pieces), options={"num_splits": len(sizes)},
                     builtin_code=BUILTIN_CODES["SPLIT_V"], options_type="SplitVOptions")
        new.append((split_v, ()))
        rows_in = pieces[1 if first else 0]
    stacked = add(dataclasses.replace(out0, name=f"{out0.name}/stacked", shape=(n * out0.shape[0], out0.shape[1]),
                                      shape_signature=None, buffer=0, data=None, is_variable=False))
    fc = dataclasses.replace(fc0, inputs=(rows_in, *fc0.inputs[1:]), outputs=(stacked,),
                             options=dict(fc0.options or {}))
    new.append((fc, fcs))
    split = Op(name="SPLIT", inputs=(int32(f"{out0.name}/stacked_axis", 0), stacked),
               outputs=tuple(sg.ops[ci].outputs[0] for ci in fcs), options={"num_splits": n},
               builtin_code=BUILTIN_CODES["SPLIT"], options_type="SplitOptions")
    new.append((split, ()))
    return new


def _static(t: Tensor) -> bool:
    return bool(t.shape) and (t.shape_signature is None or tuple(t.shape_signature) == tuple(t.shape))
