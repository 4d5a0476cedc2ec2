"""Control flow and state: WHILE, IF, CALL_ONCE, VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE.

These ops need more than their inputs: other subgraphs of the model and state that lives as
long as the interpreter (resource variables, which CALL_ONCE initialisers have run). The design:

* Each is a `ContextOpDef`, an `OpDef` with an `attach(attrs, ctx, node) -> attrs` hook. When an
  `Executable` resolves its ops it calls `attach` with its `RunContext` and the node (subgraph, op)
  (`tflite_jit.runtime.executable.RunContext`, one per interpreter, shared by every subgraph it
  runs). From then on these ops are ordinary ops: `infer(ctx)` and `reference(inputs, attrs)`
  find the context in their attrs, so placement, fusion (stateful ops stay ordered singletons,
  see fusion.is_stateful) and the reference backend need no special case. `foldable=False`
  keeps the planner from evaluating them at plan time.
* A referenced subgraph runs as its own `Executable`, built on first use and prepared for the
  shapes flowing in; when those shapes change (a loop growing a tensor) it is re-prepared, so a
  buffer is never the wrong size. `RunContext.infer` gives shape rules the outputs of a
  subgraph for given input shapes without compiling it.
* WHILE / IF outputs are static when the body keeps its shapes (the loop is shape-invariant) or
  both branches agree; otherwise they are dynamic and sized when produced.
* Resource variables live in `RunContext.resources`, keyed by (container, shared_name) as
  VAR_HANDLE names them (an empty shared_name is unique to that node). A handle tensor holds
  the variable's integer id. READ_VARIABLE's output is dynamic (a variable may be reassigned
  with another shape). CALL_ONCE runs its init subgraph once per interpreter and init subgraph (whichever
  signature's node gets there first), as LiteRT's initialisation status map does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit.ops.base import Dynamic, InferCtx, OpDef, OpError
from tflite_jit.ops.common import define


@dataclass(frozen=True)
class ContextOpDef(OpDef):
    """An op that needs the running interpreter: `attach(attrs, ctx, node)` returns the attrs the
    other functions take, with `ctx` (a RunContext) reachable from them."""

    attach: Callable[[Any, Any], Any] | None = None
    foldable: bool = False  # it runs subgraphs or keeps state: never evaluated at plan time
    #: bind_buffers(attrs, input buffers, output buffers, general call) -> a zero-argument call
    #: running the node on those fixed buffers (calling `general` where it cannot), or None
    bind_buffers: Callable[..., Any] | None = None


@dataclass
class ContextAttrs:
    """The attrs of a context op: its options, and once attached the RunContext and the node."""

    options: dict[str, Any]
    ctx: Any = None
    node: Any = None  # (subgraph index, op index): identifies the node for CALL_ONCE / VAR_HANDLE


def parse_context(options: dict[str, Any]) -> ContextAttrs:
    return ContextAttrs(dict(options))


def attach_context(a: ContextAttrs, ctx: Any, node: Any = None) -> ContextAttrs:
    return ContextAttrs(a.options, ctx, node)


def run_context(a: Any, op: str) -> Any:
    """The RunContext attached to attrs `a` (any attrs with a `ctx`)."""
    if a.ctx is None:
        raise OpError(f"{op} needs an interpreter context (run it through tflite_jit.Interpreter)")
    return a.ctx


def check_subgraph(rc: Any, si: int, key: str, op: str) -> int:
    """`si` (from option `key`) names a subgraph of the model other than the main one."""
    if not 0 < si < len(rc.model.subgraphs):
        raise OpError(f"{op}: {key} {si} is not a valid subgraph index (the model has "
                      f"{len(rc.model.subgraphs)} subgraphs; 0 is the main one)")
    return si


def _subgraph_index(a: ContextAttrs, key: str, op: str) -> int:
    si = int(a.options.get(key, 0))
    return check_subgraph(run_context(a, op), si, key, op)


def _known(ctx: InferCtx) -> list[tuple[tuple[int, ...], Any]]:
    return [(tuple(s), d) for s, d in zip(ctx.shapes, ctx.dtypes)]


# ---- WHILE ---------------------------------------------------------------------------------------

def _while_infer(ctx: InferCtx) -> list:
    a = ctx.attrs
    rc = run_context(a, "WHILE")
    cond = _subgraph_index(a, "cond_subgraph_index", "WHILE")
    body = _subgraph_index(a, "body_subgraph_index", "WHILE")
    ins = _known(ctx)
    c = rc.infer(cond, ins, "WHILE cond")
    if len(c) != 1 or np.dtype(c[0][1]) != np.bool_:
        raise OpError(f"WHILE: the cond subgraph {cond} must produce one bool tensor, it produces "
                      f"{[np.dtype(d).name for _, d in c]}")
    outs = rc.infer(body, ins, "WHILE body")
    if len(outs) != len(ins):
        raise OpError(f"WHILE: the body subgraph {body} has {len(outs)} outputs for {len(ins)} inputs")
    if any(o[0] is None or o[0] != i[0] for o, i in zip(outs, ins)):
        raise Dynamic("WHILE: the body changes shapes across iterations")
    for j, (o, i) in enumerate(zip(outs, ins)):
        if np.dtype(o[1]) != np.dtype(i[1]):
            raise OpError(f"WHILE: body output {j} is {np.dtype(o[1]).name} but loop variable {j} is "
                          f"{np.dtype(i[1]).name}")
    return ins


def _while_run(inputs: list, a: ContextAttrs) -> list[np.ndarray]:
    rc = run_context(a, "WHILE")
    cond = _subgraph_index(a, "cond_subgraph_index", "WHILE")
    body = _subgraph_index(a, "body_subgraph_index", "WHILE")
    vals = [np.asarray(x) for x in inputs]
    if cond != body:
        done = rc.while_loop(cond, body, vals)  # shape-invariant loops: one prepared unit
        if done is not None:
            return done
    while True:
        c = rc.run(cond, vals)
        if len(c) != 1 or np.asarray(c[0]).size != 1 or np.asarray(c[0]).dtype != np.bool_:
            raise OpError(f"WHILE: the cond subgraph {cond} must produce one boolean scalar")
        if not bool(np.asarray(c[0]).reshape(-1)[0]):
            return vals
        vals = rc.run(body, vals)


def _while_bind(a: ContextAttrs, ins: list[np.ndarray], outs: list[np.ndarray],
                general: Callable[[], None]) -> Callable[[], None] | None:
    """WHILE on the node's own buffers: a shape-invariant loop runs compiled from the inputs
    straight into the outputs (no per-invoke checks, copies or result arrays: a recurrent
    model's invoke is one compiled call); anything else takes the general path."""
    rc = run_context(a, "WHILE")
    cond = _subgraph_index(a, "cond_subgraph_index", "WHILE")
    body = _subgraph_index(a, "body_subgraph_index", "WHILE")
    if cond == body or len(ins) != len(outs) or any(x is None for x in ins):
        return None

    def run() -> None:
        if not rc.while_into(cond, body, ins, outs):
            general()

    return run


# ---- IF ------------------------------------------------------------------------------------------

def _if_infer(ctx: InferCtx) -> list:
    a = ctx.attrs
    rc = run_context(a, "IF")
    then_ = _subgraph_index(a, "then_subgraph_index", "IF")
    else_ = _subgraph_index(a, "else_subgraph_index", "IF")
    if (not ctx.shapes or ctx.shapes[0] is None or int(np.prod(ctx.shapes[0])) != 1
            or np.dtype(ctx.dtypes[0]) != np.bool_):
        raise OpError("IF: input 0 (the condition) must be a bool scalar")
    ins = _known(ctx)[1:]
    t = rc.infer(then_, ins, "IF then")
    e = rc.infer(else_, ins, "IF else")
    if len(t) != len(e):
        raise OpError(f"IF: the branches have {len(t)} and {len(e)} outputs")
    if any(x[0] is None or x[0] != y[0] or np.dtype(x[1]) != np.dtype(y[1]) for x, y in zip(t, e)):
        raise Dynamic("IF: the branches produce different shapes")
    return t


def _if_run(inputs: list, a: ContextAttrs) -> list[np.ndarray]:
    rc = run_context(a, "IF")
    then_ = _subgraph_index(a, "then_subgraph_index", "IF")
    else_ = _subgraph_index(a, "else_subgraph_index", "IF")
    c = np.asarray(inputs[0])
    if c.size != 1:
        raise OpError(f"IF: the condition must be a scalar, got shape {list(c.shape)}")
    return rc.run(then_ if bool(c.reshape(-1)[0]) else else_, [np.asarray(x) for x in inputs[1:]])


# ---- CALL_ONCE -----------------------------------------------------------------------------------

def _call_once_infer(ctx: InferCtx) -> list:
    a = ctx.attrs
    si = _subgraph_index(a, "init_subgraph_index", "CALL_ONCE")
    sg = run_context(a, "CALL_ONCE").model.subgraphs[si]
    if sg.inputs or sg.outputs:
        raise OpError(f"CALL_ONCE: the init subgraph {si} must have no inputs and no outputs")
    return []


def _call_once_run(inputs: list, a: ContextAttrs) -> list[np.ndarray]:
    rc = run_context(a, "CALL_ONCE")
    si = _subgraph_index(a, "init_subgraph_index", "CALL_ONCE")
    # Keyed by the init subgraph, not the node: each signature's subgraph has its own CALL_ONCE
    # node naming the same initialiser, and LiteRT's initialisation status belongs to the
    # interpreter per init subgraph index, so preparing a second signature after training with
    # the first must not re-initialise the shared variables.
    if si not in rc.called_once:
        rc.run(si, [])
        rc.called_once.add(si)  # after success: a failed initialiser is retried next invoke
    return []


# ---- resource variables --------------------------------------------------------------------------

def _var_handle_infer(ctx: InferCtx) -> list:
    return [((), np.dtype(np.int32))]


def _var_handle_run(inputs: list, a: ContextAttrs) -> list[np.ndarray]:
    rc = run_context(a, "VAR_HANDLE")
    name = str(a.options.get("shared_name") or "")
    key = (str(a.options.get("container") or ""), name if name else ("#node", a.node))
    return [np.asarray(rc.resource_id(key), np.int32)]


def _handle(x: Any, rc: Any, op: str) -> int:
    h = np.asarray(x)
    if h.size != 1 or h.dtype.kind not in "iu":
        raise OpError(f"{op}: input 0 must be a resource handle from VAR_HANDLE")
    return int(h.reshape(-1)[0])


def _read_infer(ctx: InferCtx) -> list:
    raise Dynamic("READ_VARIABLE: the variable's shape is known when it is read")


def _read_run(inputs: list, a: ContextAttrs) -> list[np.ndarray]:
    rc = run_context(a, "READ_VARIABLE")
    h = _handle(inputs[0], rc, "READ_VARIABLE")
    value = rc.resources.get(h)
    if value is None:
        raise OpError("READ_VARIABLE: the resource variable has not been assigned a value "
                      "(no ASSIGN_VARIABLE or CALL_ONCE initialiser ran before it)")
    return [value.copy()]


def _assign_infer(ctx: InferCtx) -> list:
    if len(ctx.shapes) != 2:
        raise OpError(f"ASSIGN_VARIABLE takes 2 inputs (handle, value), got {len(ctx.shapes)}")
    return []


def _assign_run(inputs: list, a: ContextAttrs) -> list[np.ndarray]:
    rc = run_context(a, "ASSIGN_VARIABLE")
    h = _handle(inputs[0], rc, "ASSIGN_VARIABLE")
    value = np.array(inputs[1], copy=True)
    old = rc.resources.get(h)
    if old is not None and old.dtype != value.dtype:
        raise OpError(f"ASSIGN_VARIABLE: the variable holds {old.dtype.name}, cannot assign "
                      f"{value.dtype.name}")
    rc.resources[h] = value
    return []


for _name, _infer, _run in (("WHILE", _while_infer, _while_run), ("IF", _if_infer, _if_run),
                            ("CALL_ONCE", _call_once_infer, _call_once_run),
                            ("VAR_HANDLE", _var_handle_infer, _var_handle_run),
                            ("READ_VARIABLE", _read_infer, _read_run),
                            ("ASSIGN_VARIABLE", _assign_infer, _assign_run)):
    define(_name, parse=parse_context, infer=_infer, reference=_run, opdef=ContextOpDef, attach=attach_context,
           bind_buffers=_while_bind if _name == "WHILE" else None)
