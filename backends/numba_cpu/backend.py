"""The Numba CPU backend: one generated, shape-specialised @njit kernel per cluster.

A cluster is a root op (conv, depthwise, FC, pool, reduction...) with its elementwise epilogue,
or a pure elementwise LOOP. `request_for` turns it into a `KernelRequest` through the backends'
shared builder (backends/request.py), with quantized nodes as roots; a generator (generators/*,
registered per root op name in generators.GENERATORS) prints a module;
`modcache.load` imports it from the on-disk cache; `compile_request` binds the arguments and
compiles eagerly for the concrete argument types, so allocate_tensors() pays the compile cost and
invoke() pays none.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_jit import ops
from tflite_jit.backends.base import Backend, Cluster, CompileEnv, Kernel, roofline_seconds
from tflite_jit.backends.numba_cpu import modcache
from tflite_jit.backends.numba_cpu.generators import GENERATORS, load_all, movement, qtable
from tflite_jit.backends.numba_cpu.spec import KernelSource
from tflite_jit.backends.request import KernelRequest, Request, Unsupported, build_request, is_loop_op
from tflite_jit.ir.model import Op
from tflite_jit.ops.qhybrid import HybridAttrs

#: ops whose quantized (ops.Quantized attrs) int8/uint8 nodes have a generator
#: (generators/qconv.py, qeltwise.py, qreduce.py, qpool.py, resize.py, qlstm.py); other quantized nodes run
#: on reference
QUANT_OPS = frozenset(("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL", "LOGISTIC",
                       "TANH", "GELU", "ELU", "HARD_SWISH", "MEAN", "AVERAGE_POOL_2D", "MAX_POOL_2D",
                       "SOFTMAX", "SQUARED_DIFFERENCE", "BATCH_MATMUL", "RESIZE_BILINEAR", "PRELU",
                       "TRANSPOSE_CONV", "UNIDIRECTIONAL_SEQUENCE_LSTM"))
_8BIT = frozenset(np.dtype(t) for t in (np.int8, np.uint8))
#: the activation types of QUANT_OPS' kernels where they are not int8 / uint8 (int16 LOGISTIC,
#: TANH, GELU: the 65536-entry table gathers)
QUANT_DTYPES = {"RESIZE_BILINEAR": frozenset(np.dtype(t) for t in (np.int8, np.int16)),
                "TRANSPOSE_CONV": _8BIT | {np.dtype(np.int16)},  # generators/tconv.py: 16x8 too
                **{op: _8BIT | {np.dtype(np.int16)} for op in ("LOGISTIC", "TANH", "GELU")},
                # 16x8: generators/q16conv.py
                **{op: _8BIT | {np.dtype(np.int16)} for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")}}
#: ops whose dynamic-range ("hybrid": float32 activations, int8 weights) nodes have a generator
#: (generators/hybrid.py, tconv.py)
HYBRID_OPS = frozenset(("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "TRANSPOSE_CONV",
                        "UNIDIRECTIONAL_SEQUENCE_LSTM"))
#: QUANT_DTYPES, continued: int16 (16x8 models) elementwise, pool, MEAN and SOFTMAX kernels (generators/qeltwise.py,
#: qpool.py, qreduce.py, qsoftmax.py)
QUANT_DTYPES.update({op: _8BIT | {np.dtype(np.int16)}
                     for op in ("ADD", "SUB", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "SOFTMAX")})
#: ops whose int8/uint8 outputs are not ops.Quantized nodes (their attrs carry the quantization,
#: or none is needed) but have generators: QUANTIZE (qquant.py); PAD is one of MOVE_OPS
QUANT_IO_OPS = frozenset(("QUANTIZE",))
#: ops that copy elements of any of MOVE_DTYPES as they are (generators/movement.py, qpad.py); their
#: quantized nodes too, where the op moves raw values (the generator refuses the others)
MOVE_OPS = frozenset((*movement.MOVEMENT_OPS, *movement.MULTI_OUTPUT_OPS, "PAD", "PADV2",
                      "SPACE_TO_BATCH_ND"))  # generators/space_batch.py pads with 0 or the zero point
MOVE_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.int8, np.uint8, np.int16, np.int32,
                                              np.int64, np.bool_))


def is_root(op: Op, attrs: Any) -> bool:
    """Whether a cluster's first op has its own generator rather than being part of a LOOP: every
    non-elementwise op, and quantized nodes (their integer kernels are not expressions)."""
    return not is_loop_op(op) or isinstance(attrs, ops.Quantized)


def request_for(cluster: Cluster, env: CompileEnv) -> Request:
    """The cluster as a request for this backend's generators (backends/request.py)."""
    return build_request(cluster, env, backend="Numba", roots=GENERATORS, is_root=is_root,
                         multi_output=movement.MULTI_OUTPUT_OPS)


def generate(req: KernelRequest) -> KernelSource:
    gen = GENERATORS.get(req.op_name)
    if gen is None:
        raise Unsupported(f"no Numba kernel for {req.op_name}")
    return gen(req)


def compile_request(req: KernelRequest) -> tuple[Callable[..., None], KernelSource]:
    src = generate(req)
    return modcache.load(src.source, src.entry), src


def bind(src: KernelSource, inputs: Sequence[np.ndarray | None], extras: Sequence[np.ndarray],
         outputs: Sequence[np.ndarray]) -> tuple:
    """The entry function's argument tuple for these buffers."""
    args: list[Any] = []
    for a in src.args:
        if a.kind == "input":
            args.append(inputs[a.index])
        elif a.kind == "extra":
            args.append(extras[a.index])
        elif a.kind == "output":
            args.append(outputs[a.index])
        else:
            args.append(a.value)
    return tuple(args)


def run_request(req: KernelRequest, inputs: Sequence[np.ndarray | None], extras: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Compile and run a request once on fresh output buffers (tests and tools)."""
    fn, src = compile_request(req)
    outs = [np.empty(o.arg.shape, o.arg.dtype) for o in req.outputs]
    extras = [np.ascontiguousarray(np.asarray(x).reshape(t.shape)) for x, t in zip(extras, req.extras)]
    fn(*bind(src, inputs, extras, outs))
    return outs


# Integer division by zero fails LiteRT's invoke; a generated loop cannot raise, so these run
# on the reference backend, which checks the divisor.
_CHECKED_INT_DIVISION = frozenset(("DIV", "FLOOR_DIV", "FLOOR_MOD"))


class NumbaBackend(Backend):
    name = "numba_cpu"

    def __init__(self, options: dict[str, Any] | None = None):
        super().__init__(options)
        load_all()  # each generator module registers itself in GENERATORS

    def supports(self, op: Op, env: CompileEnv) -> tuple[bool, str]:
        opdef = ops.get(op.name)
        if opdef is None:
            return False, f"no definition of {op.name}"
        quantized = isinstance(env.attrs_of(op), ops.Quantized)
        if op.name not in GENERATORS and not (is_loop_op(op, opdef) and "LOOP" in GENERATORS):
            return False, f"no Numba kernel for {op.name} yet (runs on reference)"
        if op.name in MOVE_OPS:
            return self._supports_move(op, env)
        if quantized and isinstance(env.attrs_of(op), HybridAttrs):
            if op.name not in HYBRID_OPS:
                return False, f"hybrid {op.name} has no Numba kernel yet (runs on reference)"
        elif quantized:
            a = env.attrs_of(op)
            dt = getattr(a, "dtype", None) or getattr(a, "in_dtype", None)
            table = op.name in qtable.DERIVED_TABLE_OPS and dt is not None and np.dtype(dt) in qtable.TABLE_DTYPES
            allowed = QUANT_DTYPES.get(op.name, _8BIT)
            if not table and (op.name not in QUANT_OPS or dt is None or np.dtype(dt) not in allowed):
                on = f" on {np.dtype(dt).name}" if dt is not None else ""
                return False, f"quantized {op.name}{on} has no Numba kernel yet (runs on reference)"
        if op.name in _CHECKED_INT_DIVISION and env.infos[op.inputs[0]].dtype.kind in "iu":
            return False, f"integer {op.name} must raise on a zero divisor (runs on reference)"
        for t in (*op.inputs, *op.outputs):
            if t >= 0 and env.infos[t].shape is None:
                return False, f"{op.name} has a dynamic shape (runs on reference)"
            if (t >= 0 and not quantized and t in op.outputs
                    and env.infos[t].dtype not in (np.float32, np.bool_, np.int32)
                    and not (op.name in QUANT_IO_OPS and env.infos[t].dtype in (np.int8, np.uint8, np.int16))):
                return False, f"{op.name} on {env.infos[t].dtype} (runs on reference)"
        return True, ""

    @staticmethod
    def _supports_move(op: Op, env: CompileEnv) -> tuple[bool, str]:
        for t in (*op.inputs, *op.outputs):
            if t >= 0 and env.infos[t].shape is None:
                return False, f"{op.name} has a dynamic shape (runs on reference)"
        for t in op.outputs:
            if env.infos[t].dtype not in MOVE_DTYPES:
                return False, f"{op.name} on {env.infos[t].dtype} (runs on reference)"
        if any(m is not None for m in getattr(env.attrs_of(op), "maps", ())):
            return False, f"{op.name}: a uint8 input that is rescaled (runs on reference)"
        for i in movement.VALUE_INPUTS.get(op.name, ()):
            if (op.name != "GATHER" and i < len(op.inputs) and op.inputs[i] >= 0
                    and env.infos[op.inputs[i]].value is None):  # GATHER: generators/gather.py checks them
                return False, f"{op.name}: indices known only at run time (runs on reference, which checks them)"
        return True, ""

    def cost(self, cluster: Cluster, env: CompileEnv) -> float:
        """The reference backend's roofline, four times faster: a placeholder until the CPU
        backends are calibrated (only the planner's device-vs-host choice reads it)."""
        return roofline_seconds(cluster, env) / 4.0

    def compile(self, cluster: Cluster, env: CompileEnv) -> Kernel:
        chain = qtable.chain_table(cluster, env)  # quantized element-wise chains of one input
        if chain is not None:
            rq, src = chain
            return NumbaKernel(None, src, rq.req, rq.extra_ids, rq.input_ids)
        rq = request_for(cluster, env)
        return NumbaKernel(None, generate(rq.req), rq.req, rq.extra_ids, rq.input_ids)


class NumbaKernel:
    """An in-place kernel: called with the cluster's buffers, writes its outputs."""

    in_place = True

    def __init__(self, fn: Callable[..., None] | None, src: KernelSource, req: KernelRequest,
                 extra_ids: list[int], input_ids: list[int] | None = None):
        self._fn, self.src, self.req, self.extra_ids = fn, src, req, extra_ids
        self.input_ids = input_ids  # the request's own input ids (a PAD folded into a conv)
        self.may_raise = src.may_raise  # the runtime wraps its call to report LiteRT's error
        self.module = modcache.module_name(src.source)

    @property
    def fn(self) -> Callable[..., None]:
        """The entry function; its module is imported on first use (written to the cache directory
        first), so a cold start that runs this step on a stand-in never imports it."""
        if self._fn is None:
            self._fn = modcache.load(self.src.source, self.src.entry)
        return self._fn

    def _args(self, buffers: Sequence[np.ndarray | None], root_inputs: Sequence[int],
              outputs: Sequence[int]) -> tuple:
        if self.input_ids is not None:  # they differ from the first op's when a PAD is folded in
            root_inputs = self.input_ids
        ins = [buffers[t] if t >= 0 else None for t in root_inputs]
        extras = [buffers[t].reshape(a.shape) for t, a in zip(self.extra_ids, self.req.extras)]
        outs = [buffers[t] for t in outputs]
        return bind(self.src, ins, extras, outs)

    def bind(self, buffers: Sequence[np.ndarray | None], root_inputs: Sequence[int],
             outputs: Sequence[int], *, cached_only: bool = False) -> Callable[[], None] | None:
        """A zero-argument callable over fixed buffers (the per-invoke path), compiled now, at
        allocate time, so invoke() never compiles. `cached_only`: only if the machine code is in
        the compile cache already (None otherwise; the tiered runtime compiles it elsewhere)."""
        args = self._args(buffers, root_inputs, outputs)
        if cached_only and not self.maybe_cached():
            return None
        fn = self.fn
        if cached_only and not modcache.load_cached(fn, modcache.signature(args)):
            return None
        # compiled at allocate time (or installed from the cache just above), so invoke() never
        # compiles; the call goes straight to the compiled code (no dispatcher, no Python frame):
        # the per-kernel cost of small models
        entry = modcache.compile_now(fn, args) or fn
        call = functools.partial(entry, *args)
        call.njit_call = (fn, args)  # lets a compiled driver call it from Numba (runtime/loops.py)
        return call

    def stand_in(self) -> TableLookup | None:
        """What runs this step until its machine code is in (runtime/tiers.py) when that can be
        faster than the reference kernels and still equal to them: a table kernel's lookup in
        NumPy (its table was computed with the nodes' own references on every input value). An
        int8 EfficientNet's 49 swish steps (LOGISTIC then MUL) are most of the time its first
        invoke spends outside the convolutions. None: the reference backend's kernel."""
        if self.src.lookup is None:
            return None
        table, offset = self.src.lookup
        return TableLookup(table, offset, self.input_ids)

    def in_memory(self) -> bool:
        """Whether this process has imported the kernel's module already (another interpreter of
        the same architecture): binding it then costs microseconds, not a load."""
        return self._fn is not None or self.module in sys.modules

    def maybe_cached(self) -> bool:
        """Whether the compile cache may hold this kernel's machine code, without importing its
        module (the tiers defer loading such kernels past the first invoke)."""
        if self._fn is not None:
            return True
        if self.src.shared:
            return modcache.helper_may_have_machine_code(self.src.shared)
        return modcache.may_have_machine_code(self.module)

    def compile_job(self, buffers: Sequence[np.ndarray | None], root_inputs: Sequence[int],
                    outputs: Sequence[int]) -> CompileJob:
        """What another process needs to compile this kernel into the shared cache."""
        modcache.write(self.src.source)
        return CompileJob(self.module, self.src.entry,
                          modcache.arg_types(self._args(buffers, root_inputs, outputs)),
                          str(modcache.cache_dir()), self.src.weight or self.src.source.count("\n"))


class TableLookup:
    """An in-place NumPy kernel: out = table[x - offset] (NumbaKernel.stand_in). 8-bit inputs
    index a 256-entry table by their raw byte (no widening copy of the input)."""

    in_place = True
    may_raise = False

    def __init__(self, table: np.ndarray, offset: int, input_ids: list[int] | None):
        self.input_ids = input_ids
        self.offset = offset
        self.table = table
        # indexed by the raw byte: int8 byte b holds b - 256 for b >= 128, so the table rotates
        self.bytes = (np.ascontiguousarray(np.roll(table, -offset)) if table.shape == (256,)
                      and offset in (-128, 0) else None)

    def bind(self, buffers: Sequence[np.ndarray | None], root_inputs: Sequence[int],
             outputs: Sequence[int], **_: Any) -> Callable[[], None]:
        x = buffers[(self.input_ids if self.input_ids is not None else root_inputs)[0]]
        o = buffers[outputs[0]]
        if not (x.flags.c_contiguous and o.flags.c_contiguous) or self.table.dtype != o.dtype:  # index and copy
            table, offset = self.table, self.offset
            return lambda: np.copyto(o, table[x.astype(np.int64) - offset])
        if self.bytes is not None:
            raw, tab = x.reshape(-1).view(np.uint8), self.bytes
            flat = o.reshape(-1)
            return lambda: np.take(tab, raw, out=flat)
        idx = np.empty(x.size, np.int64)
        table, offset, flat_x, flat = self.table, self.offset, x.reshape(-1), o.reshape(-1)

        def call() -> None:
            np.subtract(flat_x, offset, out=idx, casting="unsafe")
            np.take(table, idx, out=flat)

        return call


@dataclass(frozen=True)
class CompileJob:
    """One kernel to compile in a background process (runtime/tiers.py): the generated module
    (already written to the cache directory by the process that planned it), its entry function
    and the argument types. Picklable; `run()` compiles into Numba's on-disk cache."""

    module: str
    entry: str
    sig: tuple  # modcache.arg_types: the planning process need not have imported Numba
    directory: str  # the cache directory holding the module (the worker must use the same)
    #: lines of source: Numba's compile time grows with them (1.1 s for MobileNetV2's 260-line
    #: depthwise kernels, 0.2-0.5 s for its 170-line GEMMs), so the tiers compile the longest first
    weight: int = 0

    @property
    def key(self) -> str:
        return f"{self.directory}/{self.module}:{self.entry}:{self.sig}"

    def run(self) -> None:
        if str(modcache.cache_dir()) != self.directory:
            raise RuntimeError(f"compile cache is {modcache.cache_dir()} here, the kernel is in {self.directory}")
        modcache.compile_signature(modcache.load_module(self.module, self.entry), modcache.numba_types(self.sig))
