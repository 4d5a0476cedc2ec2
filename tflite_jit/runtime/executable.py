"""One subgraph made runnable: ops resolved, shapes inferred, kernels compiled, buffers allocated.

`prepare()` is everything LiteRT does in AllocateTensors (and may raise its prepare errors);
`run()` is Invoke: the kernels in order over the tensor buffers. Buffers of graph inputs,
outputs and variables keep their identity across runs so that `Interpreter.tensor()` views stay
live, as they do in LiteRT.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tflite_jit import ops
from tflite_jit.backends.base import Backend, Cluster, CompileEnv
from tflite_jit.backends.request import Unsupported
from tflite_jit.fusion import FusionStrategy, get_strategy, single_cluster
from tflite_jit.ir.graph import OpGraph, group_order
from tflite_jit.ir.model import Model, Tensor
from tflite_jit.ops.base import OpError
from tflite_jit.planner import (
    Candidate,
    DelegationPlan,
    NoBackendError,
    PartitionLimits,
    is_host,
    plan_delegation,
)
from tflite_jit.runtime import arena, blas, tiers
from tflite_jit.runtime.folding import FOLDED, folded_ops, folded_tensors, without_folded
from tflite_jit.runtime.loops import PreparedLoop
from tflite_jit.runtime.shapes import (
    PrepareError,
    TensorInfo,
    infer_subgraph,
    prepare_message,
    unexpected_message,
)

# LiteRT 2.x's wording, then the older TF wording (INTERPRETER_API.md §4) so that both match.
_FLEX_MSG = ("Select TensorFlow op(s), included in the given model, is(are) not supported by this "
             "interpreter. Make sure you apply/link the Flex delegate before inference. See instructions: "
             "https://www.tensorflow.org/lite/guide/ops_select\n"
             "Regular TensorFlow ops are not supported by this interpreter. (tflite_jit runs the Flex ops listed in "
             "docs/ops.md natively; this one is not among them.)")


@dataclass
class Step:
    cluster: Cluster
    kernel: Any
    backend: str
    label: str  # "Node number 3 (CONV_2D)" or a range for fused clusters
    partition: int | None = None  # index into Executable.partitions for a delegated partition
    clusters: tuple[Cluster, ...] = ()  # a delegated partition's fusion clusters


def resolve_ops(model: Model, si: int, custom_ops: Mapping[str, ops.OpDef] | None = None,
                context: RunContext | None = None) -> tuple[list[ops.OpDef], list[Any]]:
    """Find each op's definition and parse its options; LiteRT's unresolved-op errors otherwise.
    `custom_ops` (per interpreter) come before the global registry for custom ops; ops that need
    the interpreter (ops.control.ContextOpDef) get `context` attached to their attrs."""
    sg = model.subgraphs[si]
    opdefs, attrs = [], []
    for oi, op in enumerate(sg.ops):
        opdef = (custom_ops or {}).get(op.name) if op.is_custom else None
        opdef = opdef or ops.get(op.name)
        if opdef is None:
            if op.is_custom and op.name.startswith("Flex"):
                msg = _FLEX_MSG
            elif op.is_custom:
                msg = (f"Encountered unresolved custom op: {op.name}.\nSee instructions: "
                       "https://www.tensorflow.org/lite/guide/ops_custom")
            else:
                msg = (f"Didn't find op for builtin opcode '{op.name}' version '{op.version}'. "
                       f"tflite_jit does not implement {op.name} yet (see docs/ops.md for the supported "
                       "ops); run this model with ai_edge_litert meanwhile")
            raise PrepareError(prepare_message(msg, oi, op.name))
        try:
            parse_op = getattr(opdef, "parse_op", None)  # ops that read the whole node (ops.mediapipe)
            a = parse_op(op) if parse_op is not None else opdef.parse(op.options)
            if opdef.bind is not None:
                a = opdef.bind(a, [sg.tensors[i] if i >= 0 else None for i in op.inputs],
                               [sg.tensors[i] for i in op.outputs])
            if getattr(opdef, "bind_intermediates", None) is not None:
                a = opdef.bind_intermediates(a, [sg.tensors[i] if i >= 0 else None for i in op.intermediates])
            attach = getattr(opdef, "attach", None)
            if attach is not None:
                a = attach(a, context, (si, oi))
        except OpError as e:
            raise PrepareError(prepare_message(str(e), oi, op.name)) from None
        except Exception as e:  # options of a damaged model the parser cannot expect
            raise PrepareError(prepare_message(unexpected_message(e, op), oi, op.name)) from e
        opdefs.append(opdef)
        attrs.append(a)
    return opdefs, attrs


def _drop_tracebacks(e: BaseException) -> None:
    """Forget the frames of `e` and of the exceptions chained to it (an object something else
    keeps, such as Numba's record of a failed compile, would otherwise keep them alive)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [e]
    while todo:
        x = todo.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        x.__traceback__ = None
        todo += [x.__cause__, x.__context__]


@dataclass
class PlanEnv(CompileEnv):
    """CompileEnv plus the interpreter's own custom ops (name -> OpDef), which are not in the
    global registry the backends otherwise read."""

    extra_ops: Mapping[str, Any] = field(default_factory=dict)


class RunContext:
    """What lives as long as an interpreter and is shared by all the subgraphs it runs: the
    model, per-interpreter custom ops, resource variables (id -> value, ids handed out per
    (container, shared_name)), the CALL_ONCE init subgraphs that have run, and one sub-`Executable` per
    subgraph that control flow calls (ops/control.py explains the design)."""

    def __init__(self, model: Model, backends: Backend | list[Backend], *, fusion: Any = "none",
                 num_threads: int = 1, custom_ops: Mapping[str, Any] | None = None,
                 partition_limits: Mapping[str, PartitionLimits] | None = None):
        self.model = model
        self.backends = backends
        self.partition_limits = dict(partition_limits or {})  # device backend name -> limits
        self.fusion = fusion
        self.num_threads = num_threads
        self.custom_ops = dict(custom_ops or {})
        self.resources: dict[int, np.ndarray] = {}
        self.max_bytes: int | None = None  # Interpreter(max_bytes=...); None: TFLITE_JIT_MAX_BYTES
        self.jit = "eager"  # Interpreter(jit=...): runtime/tiers.py
        self.invokes = 0  # the interpreter's finished invokes (tiers load cached kernels after the first)
        self.called_once: set[Any] = set()
        self._ids: dict[Any, int] = {}
        self._execs: dict[int, Executable] = {}
        self._prepared: dict[int, tuple] = {}
        self._active: set[int] = set()
        self._loops: dict[tuple[int, int], PreparedLoop] = {}  # (cond, body) -> its prepared loop
        # (cond, body) -> (ids of the WHILE node's input buffers, its loop, those buffers)
        self._fast_loops: dict[tuple[int, int], tuple[tuple[int, ...], PreparedLoop, list]] = {}

    def executables(self) -> list[Executable]:
        """The control-flow subgraphs' executables made so far."""
        return list(self._execs.values())

    def resource_id(self, key: Any) -> int:
        return self._ids.setdefault(key, len(self._ids))

    def reset(self) -> None:
        """reset_all_variables: resource variables keep their values (as in LiteRT, whose reset
        zeroes only is_variable tensors); sub-executables' variable tensors are zeroed."""
        for ex in self._execs.values():
            ex.reset_variables()

    def executable(self, si: int) -> Executable:
        ex = self._execs.get(si)
        if ex is None:
            try:
                ex = Executable(self.model, si, self.backends, fusion=self.fusion,
                                num_threads=self.num_threads, context=self)
            except PrepareError as e:
                raise OpError(f"subgraph {si}: {e}") from None
            self._execs[si] = ex
        return ex

    def prepared_executables(self) -> dict[int, Executable]:
        """The control-flow subgraphs' executables prepared so far (by subgraph index): what
        tools read to show where a WHILE body's ops run."""
        return {si: self._execs[si] for si in sorted(self._prepared)}

    def _check_inputs(self, si: int, ins: list[tuple[Any, Any]], what: str) -> Executable:
        ex = self.executable(si)
        sg = ex.sg
        if len(ins) != len(sg.inputs):
            raise OpError(f"{what} subgraph {si} takes {len(sg.inputs)} inputs, given {len(ins)}")
        for j, (t, (_, dtype)) in enumerate(zip(sg.inputs, ins)):
            want = np.dtype(sg.tensors[t].dtype)
            if np.dtype(dtype) != want:
                raise OpError(f"{what} subgraph {si}: input {j} ('{sg.tensors[t].name}') is "
                              f"{want.name}, given {np.dtype(dtype).name}")
        return ex

    def infer(self, si: int, ins: list[tuple[Any, Any]], what: str) -> list[tuple[Any, Any]]:
        """Shapes and dtypes of subgraph `si`'s outputs for these input shapes (None: dynamic)."""
        if si in self._active:
            raise OpError(f"{what}: subgraph {si} calls itself recursively")
        ex = self._check_inputs(si, ins, what)
        self._active.add(si)
        try:
            infos = infer_subgraph(ex.sg, {t: tuple(s) for t, (s, _) in zip(ex.sg.inputs, ins)},
                                   ex.attrs, ex.opdefs)
        except PrepareError as e:
            raise OpError(f"{what} subgraph {si}: {e}") from None
        finally:
            self._active.discard(si)
        return [(infos[t].shape, infos[t].dtype) for t in ex.sg.outputs]

    def _ready(self, si: int, values: list[np.ndarray], what: str) -> Executable:
        """Subgraph `si`'s executable, (re)prepared if these inputs' shapes differ from those
        it was last prepared for."""
        ex = self._check_inputs(si, [(v.shape, v.dtype) for v in values], what)
        shapes = tuple(tuple(v.shape) for v in values)
        if self._prepared.get(si) != shapes:
            self._prepared.pop(si, None)
            ex.prepare(dict(zip(ex.sg.inputs, shapes)))
            self._prepared[si] = shapes
        return ex

    def while_loop(self, cond: int, body: int, values: list[np.ndarray]) -> list[np.ndarray] | None:
        """Run WHILE(cond, body) on these loop variables as one prepared unit
        (runtime/loops.py); None when the body changes shapes (the caller iterates subgraph
        calls instead)."""
        with self._loop_guard(cond, body):
            loop = self._prepared_loop(cond, body, values)
            return None if loop is None else loop.run(values)

    def while_into(self, cond: int, body: int, ins: list[np.ndarray], outs: list[np.ndarray]) -> bool:
        """WHILE(cond, body) from the node's input buffers into its output buffers (fixed
        arrays: the compiled loop is bound to them once); False when the loop is not
        shape-invariant (the caller runs the general path)."""
        key = (cond, body)
        fast = self._fast_loops.get(key)
        if fast is not None and fast[0] == tuple(map(id, ins)) and self._still_valid(fast[1]):
            with self._loop_guard(cond, body):
                fast[1].run_into(ins, outs)
            return True
        with self._loop_guard(cond, body):
            loop = self._prepared_loop(cond, body, ins)
            if loop is None:
                return False
            self._fast_loops[key] = (tuple(map(id, ins)), loop, ins)
            loop.run_into(ins, outs)
            return True

    def _still_valid(self, loop: PreparedLoop) -> bool:
        c, b = loop.cond, loop.body
        return (self._prepared.get(c.si) == loop.shapes and self._prepared.get(b.si) == loop.shapes
                and not c.pending and not b.pending and self._loops.get((c.si, b.si)) is loop
                and loop.valid_for(c, b, loop.shapes))

    @contextlib.contextmanager
    def _loop_guard(self, cond: int, body: int) -> Iterator[None]:
        for si in (cond, body):
            if si in self._active:
                raise OpError(f"subgraph {si} calls itself recursively")
        self._active.update((cond, body))
        try:
            yield
        except RuntimeError as e:  # a node of cond or body failing to invoke
            raise OpError(f"in WHILE: {str(e).rstrip()}") from None
        finally:
            self._active.difference_update((cond, body))

    def _prepared_loop(self, cond: int, body: int, values: list[np.ndarray]) -> PreparedLoop | None:
        shapes = tuple(tuple(v.shape) for v in values)
        c = self._ready(cond, values, "WHILE cond")
        b = self._ready(body, values, "WHILE body")
        outs = [b.infos[t] for t in b.sg.outputs]
        flag = c.infos[c.sg.outputs[0]] if len(c.sg.outputs) == 1 else None
        if (flag is None or flag.shape is None or int(np.prod(flag.shape)) != 1 or flag.dtype != np.bool_
                or len(outs) != len(values)
                or any(o.shape != s or o.dtype != v.dtype for o, s, v in zip(outs, shapes, values))):
            return None
        for ex in (c, b):  # kernels the background compiler finished since the last pass
            if ex.pending:
                tiers.upgrade(ex)
        loop = self._loops.get((cond, body))
        if loop is None or not loop.valid_for(c, b, shapes):
            loop = self._loops[(cond, body)] = PreparedLoop(c, b, shapes, self.jit)
        return loop

    def refresh_loops(self) -> None:
        """Rebind every prepared loop whose cond or body swapped in compiled kernels since it was
        prepared (its compiled driver starts building now, not at the next invoke)."""
        for (ci, bi), loop in list(self._loops.items()):
            c, b = self._execs[ci], self._execs[bi]
            if not loop.valid_for(c, b, loop.shapes) and self._prepared.get(ci) == loop.shapes \
                    and self._prepared.get(bi) == loop.shapes:
                self._loops[(ci, bi)] = PreparedLoop(c, b, loop.shapes, self.jit)

    def loops_pending(self) -> int:
        """Prepared loops whose compiled driver is still building: until it is in, the WHILE
        runs its passes from Python (Interpreter.jit_status counts it as pending, so "full
        speed" is not declared while a loop still runs ~100x slower than it will)."""
        self.refresh_loops()
        return sum(loop.pending for loop in self._loops.values())

    def wait_for_loops(self, timeout: float | None = None) -> bool:
        """Bring every prepared loop up to date with its executables' kernels and wait for its
        compiled driver (Interpreter.wait_for_jit)."""
        self.refresh_loops()
        return all(loop.wait(timeout) for loop in self._loops.values())

    def run(self, si: int, values: list[np.ndarray]) -> list[np.ndarray]:
        """Run subgraph `si` on these inputs; its outputs, copied. The subgraph is (re)prepared
        whenever the input shapes differ from those it was last prepared for."""
        if si in self._active:
            raise OpError(f"subgraph {si} calls itself recursively")
        self._active.add(si)
        try:
            ex = self._ready(si, values, "control flow")
            for t, v in zip(ex.sg.inputs, values):
                np.copyto(ex.buffers[t], v)
            ex.run()
        except RuntimeError as e:  # PrepareError, or a node of the subgraph failing to invoke
            raise OpError(f"in subgraph {si}: {str(e).rstrip()}") from None
        finally:
            self._active.discard(si)
        return [np.array(ex.buffers[t], copy=True) for t in ex.sg.outputs]


def variable_reset_value(t: Tensor) -> int:
    """The value LiteRT gives a variable tensor when it allocates or resets it (ResetVariableTensor):
    an int8 tensor's zero point (a quantized zero state, as the integer LSTM expects), else 0."""
    if t.type_name == "INT8" and t.quantization is not None and t.quantization.zero_points.size:
        return ((int(t.quantization.zero_points[0]) + 128) & 0xFF) - 128  # memset of one byte
    return 0


class Executable:
    """One subgraph, planned for a list of backends in order of preference (the last one,
    `reference`, runs everything): each op goes to the first backend that supports it, the
    fusion strategy groups ops, clusters that mix backends or that a backend cannot compile are
    split, and every decision is kept in `self.plan` so it can be shown to the user."""

    def __init__(self, model: Model, subgraph_index: int, backends: Backend | list[Backend], *,
                 fusion: str | FusionStrategy = "none", num_threads: int = 1,
                 preserve_all_tensors: bool = False, context: RunContext | None = None):
        self.model = model
        self.si = subgraph_index
        self.sg = model.subgraphs[subgraph_index]
        self.backends = list(backends) if isinstance(backends, list) else [backends]
        # Preserving every intermediate means none may be fused away.
        self.fusion = get_strategy("none" if preserve_all_tensors else fusion)
        self.preserve_all_tensors = preserve_all_tensors
        self.num_threads = num_threads
        # Interpreter-wide state (variables, control-flow subgraphs); a stand-alone executable
        # gets its own.
        self.context = context or RunContext(model, self.backends, fusion=fusion, num_threads=num_threads)
        self.opdefs, self.attrs = resolve_ops(model, subgraph_index, self.context.custom_ops, self.context)
        n = len(self.sg.tensors)
        self.buffers: list[np.ndarray | None] = [None] * n
        self.infos: list[TensorInfo] = []
        self.steps: list[Step] = []
        self.plan: list[dict[str, Any]] = []
        self.arena_bytes = 0
        self._calls: list[Any] = []
        self._parallel = False
        self._on_reference = 0
        self.variables = [i for i, t in enumerate(self.sg.tensors) if t.is_variable]
        self.folded: frozenset[int] = frozenset()  # ops evaluated at plan time (runtime.folding)
        self._host = [is_host(b) for b in self.backends]
        self.partitions: list[dict[str, Any]] = []  # delegation candidates, delegated or not
        self.measured: list[float | None] = []  # seconds per step, filled by profile()
        self.pending: list[tiers.Pending] = []  # steps on a stand-in until their kernel compiles
        self.load_s = 0.0

    # -- AllocateTensors -------------------------------------------------------------------------
    def prepare(self, input_shapes: dict[int, tuple[int, ...]]) -> None:
        # LiteRT re-runs every node's Prepare when any graph input changed shape (stateful nodes
        # such as the random ops re-seed there); attrs that care expose `on_inputs_resized`.
        key = tuple(sorted(input_shapes.items()))
        if getattr(self, "_prepared_for", None) not in (None, key):
            for a in self.attrs:
                hook = getattr(a, "on_inputs_resized", None)
                if hook is not None:
                    hook()
        self._prepared_for = key
        infos = infer_subgraph(self.sg, input_shapes, self.attrs, self.opdefs)
        # constant subgraphs were evaluated by infer_subgraph: they never run (runtime.folding)
        self.folded = folded_ops(self.sg, infos, self.opdefs, self._own_buffers())
        self._fallbacks: dict[int, str] = {}
        env = PlanEnv(self.sg, self.attrs, infos, self.num_threads, extra_ops=self.context.custom_ops)
        dplan = self._place(env)
        placement, reasons = dplan.placement, dplan.reasons
        steps: list[Step] = []
        if dplan.partitions:
            units = self._units(env, dplan)
        else:  # host backends only: today's path, one unit per fusion cluster
            units = [(None, c) for c in self._clusters(env, placement)]
        with _progress(len(units), "compiling") as bar:
            for pi, unit in units:
                if pi is None:
                    steps.extend(self._compile(unit, env, placement))
                else:
                    steps.extend(self._compile_partition(pi, unit, dplan, env))
                bar.update(1)
        steps, aliases = self._aliases(steps, infos)
        self.infos, self.steps = infos, steps
        self.buffers = self._allocate(infos, steps, aliases)
        failed_compile = False
        with _progress(len(steps), "specialising") as bar:
            self._calls = []
            self.pending = []
            self.load_s = 0.0  # seconds loading cached kernels (tiers.warm_load_budget)
            for i, step in enumerate(steps):
                try:
                    steps[i], call, why = tiers.bind(self, i, step, env, self._bind)
                    for oi in step.cluster.ops if why else ():
                        self._note_fallback(oi, why)
                except Exception as e:  # a kernel that fails to compile runs on the reference backend
                    for oi in step.cluster.ops:
                        self._note_fallback(oi, f"{step.backend}: {type(e).__name__}: {e}")
                    # Numba keeps a failed signature's error object; its traceback runs through
                    # these frames up to the Interpreter, whose live-reference check would then
                    # refuse every invoke. The reason is recorded above; drop the frames.
                    _drop_tracebacks(e)
                    failed_compile = True
                    ref = self.backends[-1]
                    steps[i] = step = Step(step.cluster, ref.compile(step.cluster, env), ref.name, step.label)
                    call = self._bind(step)
                self._calls.append(call)
                bar.update(1)
        if failed_compile:
            # Numba's typing errors sit in reference cycles with their frames, which reach ours
            # (and the Interpreter's buffers); collect them now, not at some later invoke.
            gc.collect()
        # Only kernels generated with prange need the thread count set; touching Numba's threading
        # otherwise would start its pool (num_threads=1 must start no threads, as in LiteRT).
        self._parallel = any(getattr(getattr(s.kernel, "src", None), "parallel", False) for s in steps)
        # NumPy's BLAS pool is bounded by num_threads while any step runs on reference (runtime/blas.py)
        self._on_reference = sum(s.backend == self.backends[-1].name for s in steps)
        why = [self._fallbacks.get(i) or reasons[i] for i in range(len(self.sg.ops))]
        self.plan = [{"ops": list(s.cluster.ops), "op_names": [self.sg.ops[i].name for i in s.cluster.ops],
                      "backend": s.backend,
                      "fallback_reason": "; ".join(sorted({why[i] for i in s.cluster.ops if why[i]})),
                      "partition": s.partition,
                      "clusters": [list(c.ops) for c in s.clusters] or [list(s.cluster.ops)],
                      "predicted_s": self._predict(s, env, dplan)}
                     for s in steps]
        self.plan += [{"ops": [oi], "op_names": [self.sg.ops[oi].name], "backend": kind,
                       "fallback_reason": "", "partition": None, "clusters": [[oi]], "predicted_s": 0.0}
                      for kind, done in (("alias (no copy)", set(aliases.values())), (FOLDED, self.folded))
                      for oi in sorted(done)]
        self.partitions = [dict(c.as_dict(), id=i if c.delegated else None) for i, c in enumerate(dplan.partitions)]
        self.partitions += [dict(c.as_dict(), id=None) for c in dplan.rejected]
        self.measured = []

    def _place(self, env: CompileEnv) -> DelegationPlan:
        """Host ops on the first host backend that supports them; device backends (delegates) get
        the convex partitions the planner finds worth their transfers (tflite_jit.planner)."""
        try:
            return plan_delegation(self.sg, env, self.backends, self.context.partition_limits,
                                   preserve_all_tensors=self.preserve_all_tensors, folded=self.folded)
        except NoBackendError as e:
            op = self.sg.ops[e.op_index]
            raise PrepareError(prepare_message(e.reason, e.op_index, op.name)) from None

    def _clusters(self, env: CompileEnv, placement: list[Any]) -> list[Cluster]:
        out = []
        for c in self.fusion(self.sg, env):
            c = without_folded(self.sg, c, self.folded)
            if c is None:
                continue
            if len({placement[i] for i in c.ops}) == 1:
                out.append(c)
            else:
                out.extend(single_cluster(self.sg, i) for i in c.ops)
        return out

    def _units(self, env: CompileEnv, dplan: DelegationPlan) -> list[tuple[int | None, Any]]:
        """Fusion clusters grouped into what runs as one step: a delegated partition (with its
        clusters) or a host cluster, in a topological order of the collapsed graph."""
        part_of = dplan.partition_of()
        key = [("p", part_of[i]) if i in part_of else ("h", b) for i, b in enumerate(dplan.placement)]
        clusters = self._clusters(env, key)
        graph = OpGraph(self.sg)
        n_parts = len(dplan.partitions)
        for split in (False, True):
            inner: dict[int, list[Cluster]] = {}
            host: dict[tuple[int, ...], Cluster] = {}
            for c in clusters:
                pi = part_of.get(c.ops[0])
                if pi is not None:
                    inner.setdefault(pi, []).append(c)
                elif split and len(c.ops) > 1:  # a host cluster closing a cycle: run its ops singly
                    host.update({(i,): single_cluster(self.sg, i) for i in c.ops})
                else:
                    host[c.ops] = c
            hosted = list(host.values())
            groups = [sorted(p.ops) for p in dplan.partitions] + [sorted(c.ops) for c in hosted]
            if self.folded:  # never run; read only constants, so they close no cycle
                groups.append(sorted(self.folded))
            order = group_order(graph, groups)
            if order is None:
                continue
            return [(gi, tuple(inner[gi])) if gi < n_parts else (None, hosted[gi - n_parts])
                    for gi in order if gi < n_parts + len(hosted)]
        raise AssertionError("planner returned partitions forming a cycle")  # pragma: no cover

    def _compile_partition(self, pi: int, clusters: tuple[Cluster, ...], dplan: DelegationPlan,
                           env: CompileEnv) -> list[Step]:
        """One step running a delegated partition through its backend's compile_partition; if the
        device cannot compile it (even one op per cluster), its ops run on the host, reason kept."""
        cand: Candidate = dplan.partitions[pi]
        b = next(b for b in self.backends if b.name == cand.backend)
        whole = Cluster(cand.ops, cand.inputs, cand.outputs)
        label = f"Partition {pi} on {b.name} ({_label(self.sg, whole)})"
        tries = [clusters]
        if any(len(c.ops) > 1 for c in clusters):
            tries.append(tuple(single_cluster(self.sg, i) for c in clusters for i in c.ops))
        err = ""  # the text only: a kept exception would keep the interpreter's frames alive
        for cs in tries:
            try:
                kernel = b.compile_partition(cand.partition(cs), env)
            except Exception as e:  # a device failing to compile never fails the model
                err = f"{type(e).__name__}: {e}"
                continue
            return [Step(whole, kernel, b.name, label, partition=pi, clusters=cs)]
        why = f"{b.name}: partition {pi} failed to compile: {err}"
        cand.delegated, cand.reason = False, why
        for oi in cand.ops:
            self._note_fallback(oi, why)
        steps = []
        for c in clusters:
            steps.extend(self._compile(c, env, dplan.host_placement))
        return steps

    def _predict(self, step: Step, env: CompileEnv, dplan: DelegationPlan) -> float | None:
        """The cost model's seconds for one run of the step (None when it cannot say)."""
        if step.partition is not None:
            return dplan.partitions[step.partition].predicted_s
        b = next((b for b in self.backends if b.name == step.backend), None)
        try:
            return float(b.cost(step.cluster, env)) if b is not None else None
        except Exception:
            return None

    def _compile(self, cluster: Cluster, env: CompileEnv, placement: list[int]) -> list[Step]:
        """Compile on the placed backend; a multi-op cluster it cannot compile is split, and a
        single op falls back to the next backend (the plan records the reason)."""
        bi = placement[cluster.ops[0]]
        for b in [b for b, h in zip(self.backends[bi:], self._host[bi:]) if h]:
            try:
                kernel = b.compile(cluster, env)
            except Exception as e:  # Unsupported, or a generator bug: never fatal, fall back
                if len(cluster.ops) > 1:
                    steps = []
                    for i in cluster.ops:
                        steps.extend(self._compile(single_cluster(self.sg, i), env, placement))
                    return steps
                if b is self.backends[-1]:
                    raise
                # an Unsupported says why in its message; any other error (a generator bug) is
                # named by its type too, so an empty message never makes an empty reason
                said = str(e) if isinstance(e, Unsupported) and str(e) else f"{type(e).__name__}: {e}"
                self._note_fallback(cluster.ops[0], f"{b.name}: {said}")
                _drop_tracebacks(e)  # a cached compile error must not keep our frames alive (see prepare)
                continue
            return [Step(cluster, kernel, b.name, _label(self.sg, cluster))]
        raise AssertionError("unreachable")  # pragma: no cover

    def _note_fallback(self, oi: int, why: str) -> None:
        self._fallbacks[oi] = why

    def _own_buffers(self) -> set[int]:
        """Tensors that keep their own buffer across re-allocation: graph inputs, outputs and
        variables (live tensor() views, variable state)."""
        return set(self.sg.inputs) | set(self.sg.outputs) | set(self.variables)

    def _aliases(self, steps: list[Step], infos: list[TensorInfo]) -> tuple[list[Step], dict[int, int]]:
        """RESHAPE / SQUEEZE / EXPAND_DIMS of an intermediate only relabel its bytes, and a SPLIT /
        SPLIT_V / UNPACK whose pieces are contiguous runs of its input (every axis before the
        split one of size 1: a batch-1 LSTM/GRU gate split) only cuts them: drop their steps and
        let each output be a view of the input's buffer (TFLite does the same for RESHAPE in
        place). {output tensor: op index}; the views' element offsets go to self._view_offsets."""
        self._view_offsets: dict[int, int] = {}
        if self.preserve_all_tensors:
            return steps, {}
        keep_own = self._own_buffers()
        kept, aliases = [], {}
        for step in steps:
            c = step.cluster
            if len(c.ops) == 1 and is_alias(self.sg, c.ops[0], infos, keep_own):
                aliases[self.sg.ops[c.ops[0]].outputs[0]] = c.ops[0]
                continue
            pieces = split_views(self.sg, c.ops[0], infos, keep_own) if len(c.ops) == 1 else None
            if pieces is None:
                kept.append(step)
                continue
            for t, off in pieces.items():
                aliases[t] = c.ops[0]
                self._view_offsets[t] = off
        return kept, aliases

    def _allocate(self, infos: list[TensorInfo], steps: list[Step],
                  aliases: dict[int, int]) -> list[np.ndarray | None]:
        """Constants are the file's views; graph inputs/outputs, variables and (with
        preserve_all_tensors) every tensor get their own buffers, keeping their identity across
        re-allocation (live tensor() views, variable state); other intermediates share an arena;
        tensors fused inside a cluster get none."""
        sg = self.sg
        old = self.buffers
        buffers: list[np.ndarray | None] = [None] * len(infos)
        persistent = self._own_buffers()
        folded = folded_tensors(sg, self.folded)
        source = {t: sg.ops[oi].inputs[ALIAS_SOURCE.get(sg.ops[oi].name, 0)] for t, oi in aliases.items()}
        first, last = arena.lifetimes([(s.cluster.inputs, s.cluster.outputs) for s in steps], source)
        produced = {t for step in steps for i in step.cluster.ops for t in sg.ops[i].outputs}
        intervals = []
        fresh: list[int] = []  # own buffers to create (inputs, outputs, variables, strings)
        for tid, info in enumerate(infos):
            t = sg.tensors[tid]
            if t.data is not None and t.sparsity is None:
                buffers[tid] = t.data
            elif t.data is not None and info.value is not None:  # sparse constant, decoded at plan time
                buffers[tid] = info.value
            elif tid in folded:  # computed at plan time (runtime.folding), read-only like constants
                buffers[tid] = info.value
            elif info.shape is None or tid in source:
                continue  # dynamic: sized when produced; aliases: views, below
            elif tid in persistent or self.preserve_all_tensors or tid not in first:
                if tid in produced and tid not in first and tid not in persistent and not self.preserve_all_tensors:
                    continue  # fused away inside a cluster: no buffer (like a delegate's)
                prev = old[tid]
                if prev is not None and prev.shape == info.shape and prev.dtype == storage_dtype(info.dtype):
                    buffers[tid] = prev
                else:
                    fresh.append(tid)  # created after the byte limit is checked, below
            elif info.dtype.kind == "S":
                fresh.append(tid)  # strings: never in the arena
            else:
                nbytes = int(np.prod(info.shape, dtype=np.int64)) * info.dtype.itemsize
                intervals.append(arena.Interval(tid, nbytes, first[tid], last.get(tid, first[tid])))
        own = sum(int(np.prod(infos[t].shape, dtype=np.int64)) * storage_dtype(infos[t].dtype).itemsize
                  for t in fresh)
        offsets, size = arena.plan(intervals, other_bytes=own, where=f"Subgraph {self.si}: " if self.si else "",
                                   limit=getattr(self.context, "max_bytes", None))
        for tid in fresh:
            buffers[tid] = new_buffer(infos[tid].shape, infos[tid].dtype)
            if sg.tensors[tid].is_variable and buffers[tid].dtype != object:
                buffers[tid][...] = variable_reset_value(sg.tensors[tid])
        self.arena_bytes = size
        if intervals:
            pool, base = arena.allocate(size)
            for iv in intervals:
                info = infos[iv.tensor]
                o = base + offsets[iv.tensor]
                buffers[iv.tensor] = pool[o:o + iv.nbytes].view(info.dtype).reshape(info.shape)
        for t in sorted(source, key=lambda t: aliases[t]):  # in op order: chains resolve forward
            off = self._view_offsets.get(t, 0)
            n = int(np.prod(infos[t].shape, dtype=np.int64))
            buffers[t] = buffers[source[t]].reshape(-1)[off:off + n].reshape(infos[t].shape)
        return buffers

    def _bind(self, step: Step) -> Any:
        """The per-invoke callable for one step, bound to fixed buffers where possible."""
        c = step.cluster
        if getattr(step.kernel, "in_place", False):
            root = self.sg.ops[c.ops[0]]
            return tiers.reporting(step.kernel.bind(self.buffers, root.inputs, c.outputs), step)
        buffers, infos, label, kernel = self.buffers, self.infos, step.label, step.kernel
        sg = self.sg

        def call() -> None:
            args = [buffers[i] if i >= 0 else None for i in c.inputs]
            try:
                results = kernel(args)
            except OpError as e:
                raise RuntimeError(f"{e}\n{label} failed to invoke.\n") from None
            except Exception as e:  # a kernel tripping over a damaged node: still LiteRT's error type
                raise RuntimeError(f"{unexpected_message(e, sg.ops[c.ops[0]])}\n{label} failed to invoke.\n") from e
            for t, r in zip(c.outputs, results):
                dst = buffers[t]
                planned = infos[t]
                if planned.dtype.kind == "S" and r.dtype.kind == "S":
                    r = r.astype(object)  # strings live as object arrays of bytes
                if dst is not None and dst.shape == r.shape and dst.dtype == r.dtype:
                    np.copyto(dst, r)
                    continue
                if planned.shape is not None or r.dtype != storage_dtype(planned.dtype):
                    raise RuntimeError(
                        f"{label} produced tensor {t} ('{sg.tensors[t].name}') with shape "
                        f"{list(r.shape)} {r.dtype}, planned {planned.shape} {planned.dtype}: internal error, "
                        "please report it with the model\n")
                buffers[t] = np.array(r, copy=True)  # dynamic: sized when produced

        return self._bind_direct(step, call) or call

    def _bind_direct(self, step: Step, general: Any) -> Any:
        """A one-op step whose op binds itself to fixed buffers (`bind_buffers` on its OpDef: WHILE runs
        its compiled loop from the node's input buffers into its output buffers), falling back
        to `general` when the op says so at run time; None when the op has no such binding or
        a buffer is not fixed."""
        c = step.cluster
        if len(c.ops) != 1 or step.backend != self.backends[-1].name:
            return None
        op = self.sg.ops[c.ops[0]]
        bind = getattr(self.opdefs[c.ops[0]], "bind_buffers", None)
        ins = [self.buffers[t] if t >= 0 else None for t in op.inputs]
        outs = [self.buffers[t] for t in op.outputs]
        if bind is None or any(b is None or b.dtype == object for b in (*ins, *outs)):
            return None
        run = bind(self.attrs[c.ops[0]], ins, outs, general)
        if run is None:
            return None
        label = step.label

        def call() -> None:
            try:
                run()
            except OpError as e:
                raise RuntimeError(f"{e}\n{label} failed to invoke.\n") from None

        return call

    def swap(self, i: int, step: Step, call: Any) -> None:
        """Run step `i` with a kernel compiled since prepare() (runtime/tiers.py): same cluster,
        same buffers, another backend."""
        self.steps[i] = step
        self._on_reference = sum(s.backend == self.backends[-1].name for s in self.steps)
        self._calls[i] = call
        self.plan[i]["backend"] = step.backend
        self.plan[i]["fallback_reason"] = ""
        self._parallel = self._parallel or bool(getattr(getattr(step.kernel, "src", None), "parallel", False))

    def set_reason(self, i: int, why: str) -> None:
        self.plan[i]["fallback_reason"] = why

    def reset_variables(self) -> None:
        for tid in self.variables:
            b = self.buffers[tid]
            if b is not None:
                b[...] = b"" if b.dtype == object else variable_reset_value(self.sg.tensors[tid])

    # -- Invoke ----------------------------------------------------------------------------------
    def run(self) -> None:
        if self.pending:  # between invokes: swap in kernels the background compiler finished
            tiers.upgrade(self)
        if self._parallel:
            import numba

            numba.set_num_threads(min(self.num_threads, numba.config.NUMBA_NUM_THREADS))
        if self._on_reference:
            with blas.limited(self.num_threads):
                for call in self._calls:
                    call()
            return
        for call in self._calls:
            call()

    def profile(self, runs: int = 1) -> list[float]:
        """Run `runs` times timing each step (the same calls as run(), a clock read around each);
        the per-step medians go to `self.measured` and to the planner's log next to the
        predictions. Only called on request, so run() carries no timing cost."""
        import time

        if self._parallel:
            import numba

            numba.set_num_threads(min(self.num_threads, numba.config.NUMBA_NUM_THREADS))
        times: list[list[float]] = [[] for _ in self._calls]
        clock = time.perf_counter
        for _ in range(max(1, int(runs))):
            for i, call in enumerate(self._calls):
                t0 = clock()
                call()
                times[i].append(clock() - t0)
        self.measured = [float(np.median(t)) for t in times]
        import logging

        log = logging.getLogger("tflite_jit.planner")
        for step, entry, m in zip(self.steps, self.plan, self.measured):
            if step.partition is not None:
                log.info("%s: predicted %.3g s, measured %.3g s", step.label, entry["predicted_s"] or 0.0, m)
        return self.measured


def storage_dtype(dtype: Any) -> np.dtype:
    """How a tensor of this (declared) dtype is held: STRING tensors (numpy 'S') as object
    arrays of `bytes` — variable-length, never in the fixed-size arena, and what LiteRT's
    get_tensor returns for them — every other type as itself."""
    dtype = np.dtype(dtype)
    return np.dtype(object) if dtype.kind == "S" else dtype


def new_buffer(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A zeroed buffer; for strings, empty strings (LiteRT leaves unset string tensors null)."""
    if np.dtype(dtype).kind == "S":
        return np.full(shape, b"", dtype=object)
    return np.zeros(shape, dtype)


ALIAS_OPS = frozenset(("RESHAPE", "SQUEEZE", "EXPAND_DIMS"))
#: the input an alias views, where it is not input 0 (SPLIT's input 0 is the axis)
ALIAS_SOURCE = {"SPLIT": 1}
SPLIT_OPS = frozenset(("SPLIT", "SPLIT_V", "UNPACK"))


def split_views(sg: Any, oi: int, infos: list[TensorInfo], keep_own: set[int]) -> dict[int, int] | None:
    """{output tensor: element offset in the input} when op `oi` is a SPLIT / SPLIT_V / UNPACK
    whose outputs are consecutive contiguous runs of its input (known shapes, same dtype, every
    axis before the split one of size 1, no output that must keep its own buffer); else None."""
    op = sg.ops[oi]
    if op.name not in SPLIT_OPS or len(op.outputs) < 2:
        return None
    src = op.inputs[ALIAS_SOURCE.get(op.name, 0)] if len(op.inputs) > ALIAS_SOURCE.get(op.name, 0) else -1
    if src < 0 or infos[src].shape is None or sg.tensors[src].sparsity is not None:
        return None
    shape = tuple(infos[src].shape)
    outs = [infos[t] for t in op.outputs]
    if any(t < 0 or t in keep_own for t in op.outputs) or any(
            o.shape is None or o.dtype != infos[src].dtype for o in outs):
        return None
    sizes = [int(np.prod(o.shape, dtype=np.int64)) for o in outs]
    if min(sizes) == 0 or sum(sizes) != int(np.prod(shape, dtype=np.int64)):
        return None
    if op.name == "UNPACK":
        axis = int((op.options or {}).get("axis", 0) or 0) % max(len(shape), 1)
    else:
        first = tuple(outs[0].shape)
        diff = [d for d in range(min(len(shape), len(first))) if shape[d] != first[d]]
        if len(first) != len(shape) or not diff:
            return None
        axis = diff[0]
    if int(np.prod(shape[:axis], dtype=np.int64)) != 1:
        return None
    offsets, off = {}, 0
    for t, n in zip(op.outputs, sizes):
        offsets[t] = off
        off += n
    return offsets


def is_alias(sg: Any, oi: int, infos: list[TensorInfo], keep_own: set[int]) -> bool:
    """Whether op `oi`, alone in its step, becomes a view of its input instead of a step (a
    RESHAPE-like op of an intermediate with known shapes); `keep_own`: tensors that keep their
    own buffer (graph inputs, outputs, variables)."""
    op = sg.ops[oi]
    return (op.name in ALIAS_OPS and len(op.outputs) == 1 and op.outputs[0] not in keep_own
            and infos[op.outputs[0]].shape is not None and infos[op.inputs[0]].shape is not None
            and sg.tensors[op.inputs[0]].sparsity is None)


def _progress(total: int, what: str) -> Any:
    """A progress bar on stderr that appears only if the work takes over a second (a first
    compile of a large model; cached kernels load in milliseconds) and only on a terminal."""
    if not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return contextlib.nullcontext(_NoBar())  # tqdm would still start its monitor thread
    from tqdm import tqdm

    return tqdm(total=total, desc=f"tflite_jit: {what} kernels", unit="kernel", delay=1.0,
                leave=False)


class _NoBar:
    def update(self, n: int) -> None:
        pass


def _label(sg: Any, cluster: Cluster) -> str:
    first, last = cluster.ops[0], cluster.ops[-1]
    if first == last:
        return f"Node number {first} ({sg.ops[first].name})"
    return f"Nodes {first}..{last} ({sg.ops[first].name}..{sg.ops[last].name})"
