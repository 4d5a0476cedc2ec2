"""The drop-in Interpreter: LiteRT's Python API, behaviour by behaviour (INTERPRETER_API.md).

State machine, as LiteRT's: construction reads and validates the model but neither resolves ops
nor allocates; `allocate_tensors()` plans (resolve, infer shapes, compile, allocate); a resize
makes the interpreter "not ready" until the next allocation. Errors use LiteRT's exception types
and contain its message texts, so code written against LiteRT catches ours.
"""

from __future__ import annotations

import enum
import gc
import operator
import os
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tflite_jit import litert_prepare
from tflite_jit.backends import registry
from tflite_jit.delegates import Delegate, load_delegate  # noqa: F401 (LiteRT's module exports both)
from tflite_jit.explain import announce, execution_plan
from tflite_jit.format.reader import load_bytes, load_file
from tflite_jit.fusion import get_strategy
from tflite_jit.ir.model import TENSOR_TYPE_NAMES, Model, SignatureDef, Tensor, numpy_type
from tflite_jit.ir.validate import validate
from tflite_jit.runtime import tiers
from tflite_jit.runtime.executable import Executable, RunContext
from tflite_jit.runtime.shapes import PrepareError
from tflite_jit.runtime.stacking import stack_row_fcs

# Measured with benchmarks/side_by_side.py (docs/performance.md): compiled kernels with
# XNNPACK-style epilogue fusion are the fastest combination on the zoo models.
DEFAULT_BACKEND = "numba"
DEFAULT_FUSION = "elementwise"


def _device_backends(delegates: Sequence[Any]) -> tuple[list[Any], dict[str, Any]]:
    """The device backends of tflite_jit delegates, in list order (LiteRT applies delegates in
    order), and their partition limits by backend name."""
    devices, limits = [], {}
    for d in delegates:
        if not isinstance(d, Delegate):
            raise ValueError(f"tflite_jit cannot apply {type(d).__module__}.{type(d).__name__} (a native "
                             "delegate); use tflite_jit.load_delegate('opencl') for tflite_jit's own delegates")
        if d.backend.name in limits:
            raise ValueError(f"Delegate {d.backend.name!r} is given twice in experimental_delegates")
        devices.append(d.backend)
        limits[d.backend.name] = d.limits
    return devices, limits


class OpResolverType(enum.Enum):
    AUTO = 0
    BUILTIN = 1
    BUILTIN_REF = 2
    BUILTIN_WITHOUT_DEFAULT_DELEGATES = 3


_SAFE_MSG = ("There is at least 1 reference to internal data\n      in the interpreter in the form of a "
             "numpy array or slice. Be sure to\n      only hold the function returned from tensor() if you "
             "are using raw\n      data access.")


_BUSY_MSG = ("Interpreter called while another call on the same interpreter (invoke, allocate_tensors, "
             "resize_tensor_input or a signature runner) is running in another thread: use one "
             "interpreter per thread")


class _Exclusive:
    """Interpreter._exclusive's context manager: a plain class, because a generator-based one
    (contextlib) costs about 1 µs per invoke, as much as a small model's kernels."""

    __slots__ = ("lock",)

    def __init__(self, lock: Any):
        self.lock = lock

    def __enter__(self) -> None:
        if not self.lock.acquire(blocking=False):
            raise RuntimeError(_BUSY_MSG)

    def __exit__(self, *exc: Any) -> None:
        self.lock.release()


class _Wrapper:
    """Holds the native-side state. Views returned by tensor() reference it, which is how the
    `_ensure_safe` refcount rule (exactly LiteRT's) detects live views and signature runners."""

    __slots__ = ("model", "execs", "ready", "pending", "context", "held", "ran", "renamed", "__weakref__")

    def __init__(self, model: Model):
        self.model = model
        self.context: RunContext | None = None  # variables, control-flow subgraphs, custom ops
        self.execs: dict[int, Executable] = {}  # built at the first allocation of each subgraph
        self.ready: dict[int, bool] = {}
        self.pending: dict[int, dict[int, tuple[int, ...]]] = {}  # resized, not yet allocated
        # Tensors LiteRT leaves unprepared until the next invoke (litert_prepare.unprepared), with the
        # shape it still reports for each; and the subgraphs invoked at least once (before the
        # first invoke LiteRT has given those tensors no memory).
        self.held: dict[int, dict[int, tuple[int, ...]]] = {}
        self.ran: set[int] = set()
        self.renamed: dict[int, dict[int, str]] = {}  # names LiteRT's kernels give at Prepare


class _LiveView:
    """The base object of a tensor() array: keeps the wrapper referenced while the view lives."""

    __slots__ = ("_wrapper", "__array_interface__")

    def __init__(self, wrapper: _Wrapper, arr: np.ndarray):
        self._wrapper = wrapper
        self.__array_interface__ = arr.__array_interface__


def _byte_limit(value: int | str | None) -> int | None:
    """The `max_bytes` keyword as a limit for runtime.limits (0 = unlimited, None = environment)."""
    from tflite_jit.runtime import limits as byte_limits

    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = byte_limits.parse_bytes(value)
        except ValueError:
            raise ValueError(f"max_bytes={value!r} is not a byte count: use e.g. 1073741824, '512M', "
                             "'8G' or 'none' (no limit)") from None
        return 0 if parsed is None else parsed
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"max_bytes must be a non-negative int or a string like '512M', got {value!r}")
    return value


class Interpreter:
    """Interpreter interface for running TensorFlow Lite models, compiled by tflite_jit."""

    def __init__(self, model_path: str | os.PathLike | None = None, model_content: bytes | None = None,
                 experimental_delegates: Sequence[Any] | None = None, num_threads: int | None = None,
                 experimental_op_resolver_type: OpResolverType = OpResolverType.AUTO,
                 experimental_preserve_all_tensors: bool = False,
                 experimental_disable_delegate_clustering: bool = False,
                 experimental_default_delegate_latest_features: bool = False,
                 experimental_compress_quantization_zero_points: bool = False,
                 experimental_disable_delegate_node_fusion: bool = False,
                 experimental_force_delegate_node_profiling: bool = False, *,
                 backend: str | None = None, fusion: Any = None,
                 custom_ops: dict[str, Any] | None = None, max_bytes: int | str | None = None,
                 jit: str | None = None):
        # `backend`, `fusion`, `custom_ops` and `max_bytes` are tflite_jit's own (keyword-only,
        # after all of LiteRT's): backend 'numba' (compiled, with 'reference' as the fallback per
        # op) or 'reference' (NumPy only); fusion: a strategy name from tflite_jit.fusion or a
        # strategy object; custom_ops: {name: kernel or tflite_jit.CustomOp} for this interpreter
        # only (tflite_jit.custom_ops); max_bytes: the tensor-memory limit checked before every
        # allocation (bytes, or '512M' / '8G' / 'none'), else TFLITE_JIT_MAX_BYTES (docs/robustness.md).
        # jit: 'background' (default; env TFLITE_JIT_JIT) runs steps whose kernels are not compiled
        # yet on the reference backend while another process compiles them, 'eager' compiles in
        # allocate_tensors(), 'off' never compiles (runtime/tiers.py, docs/performance.md).
        if not isinstance(experimental_op_resolver_type, OpResolverType):
            raise ValueError(f"Unrecognized passed in op resolver type: {experimental_op_resolver_type}")
        self._resolver = experimental_op_resolver_type
        self._preserve_all_tensors = bool(experimental_preserve_all_tensors)
        if self._preserve_all_tensors and experimental_op_resolver_type in (
                OpResolverType.AUTO, OpResolverType.BUILTIN):
            warnings.warn("Warning: Enabling `experimental_preserve_all_tensors` with the BUILTIN or "
                          "AUTO op resolver is intended for debugging purposes only. Be aware that this "
                          "can significantly increase memory usage by storing all intermediate tensors.",
                          UserWarning, stacklevel=2)
        if num_threads is not None:
            if not isinstance(num_threads, int):
                raise ValueError("type of num_threads should be int")
            if num_threads < 1:
                raise ValueError("num_threads should >= 1")
        self._num_threads = int(num_threads or 1)
        self._compress_zero_points = bool(experimental_compress_quantization_zero_points)
        # LiteRT decides by truthiness first ('' and b'' are absent) and only then hands the content
        # to the native loader, which rejects non-bytes with a TypeError.
        if model_path and not model_content:
            model = load_file(model_path)
        elif model_content and not model_path:
            if not isinstance(model_content, bytes):
                raise TypeError(
                    "CreateWrapperFromBuffer(): incompatible function arguments. model_content must "
                    f"be bytes, got {type(model_content).__name__}")
            self._model_content = model_content  # kept referenced: constants are views into it
            model = load_bytes(model_content)
        elif not model_content and not model_path:
            raise ValueError("`model_path` or `model_content` must be specified.")
        else:
            raise ValueError("Can't both provide `model_path` and `model_content`")
        validate(model)
        self._interpreter = _Wrapper(model)
        self._model = model
        self._delegates = []
        for d in experimental_delegates or ():
            d._get_native_delegate_pointer()  # AttributeError for non-delegates, as LiteRT
            self._delegates.append(d)
        devices, limits = _device_backends(self._delegates)
        self._backend_name = backend or os.environ.get("TFLITE_JIT_BACKEND") or DEFAULT_BACKEND
        self._backends = devices + registry.host_chain(self._backend_name)
        self._plan_summary_shown = False
        self._fusion = fusion or os.environ.get("TFLITE_JIT_FUSION") or DEFAULT_FUSION
        get_strategy(self._fusion)  # an unknown name fails here, at construction
        from tflite_jit import custom_ops as _custom

        self._custom_ops = dict(custom_ops or {})  # as given: what a pickle carries (__reduce__)
        specs = dict(self._custom_ops)
        specs.update(getattr(self, "_registered_custom_ops", {}))
        # what runs: the file's graph, with same-weight FCs over one tensor's rows stacked
        # (runtime/stacking.py; TFLITE_JIT_STACKING=0 turns it off, for A/B measurements); the
        # API's ops and tensors stay the file's
        stack = not self._preserve_all_tensors and os.environ.get("TFLITE_JIT_STACKING", "1") != "0"
        self._exec_model = stack_row_fcs(model) if stack else model
        self._interpreter.context = RunContext(self._exec_model, self._backends, fusion=self._fusion,
                                               num_threads=self._num_threads,
                                               custom_ops=_custom.opdefs(specs), partition_limits=limits)
        self._interpreter.context.max_bytes = _byte_limit(max_bytes)
        self._interpreter.context.jit = tiers.mode_of(jit)
        self._lock = threading.Lock()
        self._guard = _Exclusive(self._lock)
        # LiteRT keeps signature inputs/outputs in std::maps: every listing is sorted by name.
        self._signature_defs = {s.key: SignatureDef(s.key, s.subgraph_index, dict(sorted(s.inputs.items())),
                                                    dict(sorted(s.outputs.items())))
                                for s in model.signatures}

    # -- pickling --------------------------------------------------------------------------------
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """An interpreter pickles as its model bytes plus its constructor options, and unpickles as
        a freshly constructed interpreter: tensors not allocated, no resize, no variable state
        (LiteRT's interpreters do not pickle at all). Kernels come from the compile cache
        (TFLITE_JIT_CACHE_DIR) on the other side. A model opened from a path travels as its
        bytes: the file need not exist where it is unpickled (docs/scale-out.md)."""
        return _unpickle, (type(self), self._pickle_options())

    def _pickle_options(self) -> dict[str, Any]:
        import pickle

        delegates = []
        for d in self._delegates:
            if type(d) is not Delegate or registry.find(d.name, device=True) is None:
                raise TypeError(f"cannot pickle an Interpreter with delegate {getattr(d, 'name', d)!r}: "
                                "a delegate built from a backend object does not travel; open the "
                                "interpreter in the worker with tflite_jit.load_delegate(name) instead")
            delegates.append((d.name, dict(d.options)))
        custom = dict(self._custom_ops)
        custom.update(getattr(self, "_registered_custom_ops", {}))
        for name, spec in custom.items():
            try:
                pickle.dumps(spec)
            except Exception as e:
                raise TypeError(f"cannot pickle an Interpreter with custom op {name!r}: its kernel or "
                                f"shape/dtype function does not pickle ({e}); define them at module "
                                "level") from None
        if not isinstance(self._fusion, str):
            try:
                pickle.dumps(self._fusion)
            except Exception as e:
                raise TypeError(f"cannot pickle an Interpreter with fusion strategy {self._fusion!r}: "
                                f"it does not pickle ({e}); pass a strategy name") from None
        return {"model_content": bytes(self._model.source), "num_threads": self._num_threads,
                "experimental_op_resolver_type": self._resolver,
                "experimental_preserve_all_tensors": self._preserve_all_tensors,
                "experimental_compress_quantization_zero_points": self._compress_zero_points,
                "backend": self._backend_name, "fusion": self._fusion,
                "max_bytes": self._interpreter.context.max_bytes, "jit": self._interpreter.context.jit,
                "custom_ops": custom,
                "delegates": delegates}

    # -- helpers ---------------------------------------------------------------------------------
    def _safe_to_run(self) -> bool:
        # Same rule as LiteRT: only `self._interpreter` and getrefcount's argument may refer to the
        # wrapper; any tensor() view or live SignatureRunner adds a reference.
        return sys.getrefcount(self._interpreter) == 2

    def _ensure_safe(self) -> None:
        if not self._safe_to_run():
            # A reference held only by garbage (a reference cycle through a caught exception's
            # frames, e.g. a kernel that failed to compile and fell back) is not the user's: collect
            # once before refusing. A live tensor() view is no garbage and still refuses.
            gc.collect()
            if not self._safe_to_run():
                raise RuntimeError(_SAFE_MSG)

    def _exclusive(self) -> _Exclusive:
        """Held by every call that plans or runs (allocate, invoke, resize, signature runs).

        LiteRT corrupts its state when two threads use one interpreter at once; we refuse the
        overlap instead. It is checked before `_ensure_safe` because a running call's frames hold
        extra references to the wrapper, which would otherwise be misreported as a live view.
        """
        return self._guard

    def _check_subgraph(self, si: Any) -> int:
        # LiteRT's texts name the count, not the last valid index ("index 1 exceeds max ... 1").
        si = _index(si, "subgraph_index")
        n = len(self._model.subgraphs)
        if not 0 <= si < n:
            raise ValueError(f"Invalid subgraph index {si} exceeds max subgraph index {n}")
        return si

    def _check_tensor(self, tensor_index: Any, si: int = 0) -> int:
        tensor_index = _index(tensor_index, "tensor_index")
        n = len(self._model.subgraphs[si].tensors)
        if not 0 <= tensor_index < n:
            raise ValueError(f"Invalid tensor index {tensor_index} exceeds max tensor index {n}")
        return tensor_index

    def _allocate(self, si: int) -> None:
        w = self._interpreter
        sg = self._model.subgraphs[si]
        ex = w.execs.get(si)
        shapes = {i: tuple(sg.tensors[i].shape) for i in sg.inputs}
        if ex is not None and ex.infos:
            shapes.update({i: ex.infos[i].shape for i in sg.inputs})
        shapes.update(w.pending.get(si, {}))
        reported = [self._current_shape(t, si) for t in range(len(sg.tensors))]
        try:
            if ex is None:
                ex = Executable(self._exec_model, si, self._backends, num_threads=self._num_threads,
                                fusion=self._fusion, preserve_all_tensors=self._preserve_all_tensors,
                                context=w.context)
                w.execs[si] = ex
            ex.prepare(shapes)
        except PrepareError as e:
            # A kept exception's traceback keeps this frame: it must not pin the wrapper
            # (_safe_to_run's refcount rule would refuse every later call).
            w = None
            raise RuntimeError(str(e)) from None
        except BaseException:
            w = None
            raise
        w.pending.pop(si, None)
        w.held[si] = {t: reported[t] for t in litert_prepare.unprepared(ex)}
        w.renamed.setdefault(si, {}).update(litert_prepare.kernel_names(sg, skip=w.held[si]))
        w.ready[si] = True

    def _current_shape(self, tid: int, si: int = 0) -> tuple[int, ...]:
        w = self._interpreter
        ex = w.execs.get(si)
        t = self._model.subgraphs[si].tensors[tid]
        if tid in w.pending.get(si, {}):
            return w.pending[si][tid]
        if tid in w.held.get(si, {}):
            return w.held[si][tid]
        if ex is not None:
            if ex.infos:
                b = ex.buffers[tid]
                if b is not None:
                    return tuple(b.shape)
                if ex.infos[tid].shape is not None:
                    return ex.infos[tid].shape
        return tuple(t.shape)

    def _buffer(self, tid: int, si: int = 0) -> np.ndarray | None:
        w = self._interpreter
        ex = w.execs.get(si)
        if ex is None or not ex.infos or (si not in w.ran and tid in w.held.get(si, {})):
            return None
        return ex.buffers[tid]

    def _tensor_details(self, tid: int, si: int = 0) -> dict[str, Any]:
        t = self._model.subgraphs[si].tensors[tid]
        shape = np.array(self._current_shape(tid, si), dtype=np.int32)
        sig = np.array(t.shape_signature if t.shape_signature is not None else shape, dtype=np.int32)
        q = t.quantization
        if q is not None and q.scales.size:
            scales = q.scales.astype(np.float32)
            zps = q.zero_points.astype(np.int32)
            if self._compress_zero_points and zps.size > 1 and np.all(zps == zps[0]):
                zps = zps[:1]
            quant = (float(scales[0]), int(zps[0])) if scales.size == 1 else (0.0, 0)
            qdim = int(q.quantized_dimension)
        else:
            scales, zps, quant, qdim = np.array([], np.float32), np.array([], np.int32), (0.0, 0), 0
        return {
            "name": self._interpreter.renamed.get(si, {}).get(tid, t.name),
            "index": int(tid),
            "shape": shape,
            "shape_signature": sig,
            "dtype": _detail_type(t.type),
            "quantization": quant,
            "quantization_parameters": {"scales": scales, "zero_points": zps,
                                        "quantized_dimension": qdim, "block_size": 0},
            "sparsity_parameters": _sparsity_details(t),
        }

    # -- the public API --------------------------------------------------------------------------
    def allocate_tensors(self) -> None:
        with self._exclusive():
            self._ensure_safe()
            # LiteRT's AllocateTensors is a no-op while the subgraph is invokable and no input was
            # resized (no re-plan, variables untouched); re-planning here cost a MobileNetV2 ~120 ms
            # per call, which batch loops calling it per batch paid every time
            if not self._interpreter.ready.get(0):
                self._allocate(0)
        if self._delegates and not self._plan_summary_shown:
            # A CPU fallback is never silent: one line, like LiteRT's "Created ... delegate" INFO.
            self._plan_summary_shown = True
            announce(self.get_execution_plan())

    def get_execution_plan(self, subgraph_index: int = 0, *, profile_runs: int = 0) -> dict[str, Any]:
        """The plan of an allocated subgraph as plain dicts (tflite_jit.explain documents the
        keys): every op with its backend, cluster, partition and the reason it is not on a
        preferred backend; clusters and delegated partitions with predicted seconds; rejected
        partition candidates with their reason; a one-line summary. `profile_runs` > 0 first
        invokes that many times timing each step (current inputs), adding `measured_s`."""
        si = self._check_subgraph(subgraph_index)
        ex = self._interpreter.execs.get(si)
        if ex is None or not self._interpreter.ready.get(si):
            raise ValueError(f"Execution plan of subgraph {si} unavailable: call allocate_tensors() first "
                             "(signature subgraphs: run their SignatureRunner once)")
        if profile_runs > 0:
            with self._exclusive():
                self._ensure_safe()
                ex.profile(profile_runs)
        return execution_plan(ex, delegates=[getattr(d, "name", "?") for d in self._delegates])

    def jit_status(self) -> dict[str, Any]:
        """Where the allocated steps run now (tflite_jit's own): {'mode', 'compiled', 'pending',
        'reference'} — compiled kernels, steps waiting for the background compiler (running on
        the reference backend meanwhile), and steps on the reference backend for good. A WHILE
        whose compiled loop driver is still building counts as pending, not reference."""
        with self._exclusive():
            execs = self._executables()
            for ex in execs:
                tiers.upgrade(ex)
            st = tiers.status(execs)
            loops = min(self._interpreter.context.loops_pending(), st["reference"])
            st["pending"] += loops
            st["reference"] -= loops
            return {"mode": self._interpreter.context.jit, **st}

    def wait_for_jit(self, timeout: float | None = None) -> bool:
        """Block until every step waiting for the background compiler runs its compiled kernel
        (or its compile failed: it stays on reference); False if `timeout` seconds passed first.
        With jit='eager' or 'off' there is nothing to wait for. WHILE loops prepared so far are
        brought up to date and their compiled drivers waited for too (runtime/loops.py)."""
        with self._exclusive():
            done = tiers.wait(self._executables(), timeout)
            return self._interpreter.context.wait_for_loops(timeout) and done

    def _executables(self) -> list[Executable]:
        w = self._interpreter
        return [ex for si, ex in w.execs.items() if w.ready.get(si)] + w.context.executables()

    def invoke(self) -> None:
        with self._exclusive():
            self._ensure_safe()
            if not self._interpreter.ready.get(0):
                raise RuntimeError("Invoke called on model that is not ready.")
            self._interpreter.execs[0].run()
            self._interpreter.context.invokes += 1
            self._ran(0)

    def get_input_details(self) -> list[dict[str, Any]]:
        return [self._tensor_details(i) for i in self._model.subgraphs[0].inputs]

    def get_output_details(self) -> list[dict[str, Any]]:
        return [self._tensor_details(i) for i in self._model.subgraphs[0].outputs]

    def _ran(self, si: int) -> None:
        """After an invoke every tensor has its run-time shape and memory, as in LiteRT. Called on
        every invoke: returns at once unless an allocation happened since the last one."""
        w = self._interpreter
        if si in w.ran and si not in w.held:
            return
        w.held.pop(si, None)
        w.ran.add(si)
        w.renamed.setdefault(si, {}).update(litert_prepare.kernel_names(self._model.subgraphs[si]))

    def _get_tensor_details(self, tensor_index: int, subgraph_index: int) -> dict[str, Any]:
        """LiteRT's private one-tensor getter (tools call it). Indices go through int() as there;
        a bad subgraph index is a ValueError (LiteRT reads out of bounds)."""
        si = self._check_subgraph(int(subgraph_index))
        return self._tensor_details(self._check_tensor(int(tensor_index), si), si)

    def get_tensor_details(self, subgraph_index: int = 0) -> list[dict[str, Any]]:
        subgraph_index = _index(subgraph_index, "subgraph_index")
        n = len(self._model.subgraphs)
        if not 0 <= subgraph_index < n:
            raise ValueError(f"subgraph_index is out of range: {subgraph_index} for the model, which "
                             f"has {n} subgraphs.")
        out = []
        for tid in range(len(self._model.subgraphs[subgraph_index].tensors)):
            try:
                out.append(self._tensor_details(tid, subgraph_index))
            except ValueError:
                continue
        return out

    def set_tensor(self, tensor_index: int, value: Any) -> None:
        self._set_tensor(tensor_index, value, 0)

    def _set_tensor(self, tensor_index: int, value: Any, si: int, label: str = "input") -> None:
        tensor_index = self._check_tensor(tensor_index, si)
        arr = np.asarray(value)
        t = self._model.subgraphs[si].tensors[tensor_index]
        buf = self._buffer(tensor_index, si)
        if buf is None:
            raise ValueError("Cannot set tensor: Tensor is unallocated. Try calling allocate_tensors() first")
        expected = np.dtype(numpy_type(t.type))
        if expected.kind == "S" and arr.dtype.kind in "SUO":
            arr = _strings_value(arr)  # LiteRT takes bytes, str (UTF-8) and object arrays of them
        elif arr.dtype != expected:
            raise ValueError(
                f"Cannot set tensor: Got value of type {_type_name(arr.dtype)} but expected type "
                f"{_type_name(expected)} for {label} {tensor_index}, name: {t.name} ")
        if arr.ndim != buf.ndim:
            raise ValueError(f"Cannot set tensor: Dimension mismatch. Got {arr.ndim} but expected "
                             f"{buf.ndim} for {label} {tensor_index}.")
        for d, (got, want) in enumerate(zip(arr.shape, buf.shape)):
            if got != want:
                raise ValueError(f"Cannot set tensor: Dimension mismatch. Got {got} but expected {want} "
                                 f"for dimension {d} of {label} {tensor_index}.")
        if not buf.flags.writeable:
            raise ValueError(f"Cannot set tensor: tensor {tensor_index} ('{t.name}') is a constant")
        np.copyto(buf, arr)

    def get_tensor(self, tensor_index: int, subgraph_index: int = 0) -> np.ndarray:
        subgraph_index = self._check_subgraph(subgraph_index)
        tensor_index = self._check_tensor(tensor_index, subgraph_index)
        buf = self._buffer(tensor_index, subgraph_index)
        if buf is None:
            raise ValueError("Tensor data is null. Run allocate_tensors() first")
        return np.array(buf, copy=True)

    def tensor(self, tensor_index: int) -> Callable[[], np.ndarray]:
        return lambda: self._tensor_view(tensor_index)

    def _tensor_view(self, tensor_index: int) -> np.ndarray:
        tensor_index = self._check_tensor(tensor_index)
        buf = self._buffer(tensor_index)
        if buf is None:
            raise ValueError("Tensor data is null. Run allocate_tensors() first")
        if buf.dtype == object:  # LiteRT crashes here: a string buffer has no fixed-size view
            t = self._model.subgraphs[0].tensors[tensor_index]
            raise ValueError(f"tensor() cannot view string tensor {tensor_index} ('{t.name}'): strings "
                             "have no fixed-size buffer; use get_tensor() / set_tensor() instead")
        return np.asarray(_LiveView(self._interpreter, buf))

    def resize_tensor_input(self, input_index: int, tensor_size: Any, strict: bool = False) -> None:
        with self._exclusive():
            self._ensure_safe()
            self._resize(input_index, tensor_size, strict, 0)

    def _resize(self, input_index: int, tensor_size: Any, strict: bool, si: int) -> None:
        sg = self._model.subgraphs[si]
        input_index = _index(input_index, "input_index")
        dims = np.array(tensor_size, dtype=np.int32)
        if dims.ndim != 1:
            raise ValueError(f"Shape should be 1D instead of {dims.ndim}.")
        if not 0 <= input_index < len(sg.tensors):
            raise RuntimeError(f"Invalid tensor index {input_index}: tensor_index < "
                               "context_.tensors_size && tensor_index >= 0 was not true.")
        new = tuple(int(d) for d in dims)
        if any(d < 0 for d in new):
            raise RuntimeError("tflite/util.cc BytesRequired number of elements overflowed.\n")
        t = sg.tensors[input_index]
        current = self._current_shape(input_index, si)
        if strict:
            sig = t.signature
            if len(sig) != len(new):
                raise RuntimeError(
                    f"tensorflow/lite/core/subgraph.cc tensor->dims->size != dims.size() "
                    f"({len(current)} != {len(new)})Node number -1 failed to resize.")
            for d, (s, cur, want) in enumerate(zip(sig, current, new)):
                if s != -1 and cur != want:
                    raise RuntimeError(
                        f"Attempting to resize dimension {d} of tensor {input_index} with value {cur} to "
                        f"{want}. ResizeInputTensorStrict only allows mutating unknown dimensions "
                        "identified by -1.")
        from tflite_jit.ir.validate import MAX_TENSOR_BYTES, tensor_bytes

        if tensor_bytes(new, t.type) > MAX_TENSOR_BYTES:
            raise RuntimeError(f"Cannot resize tensor {input_index} ('{t.name}') to {list(new)}: "
                               f"{tensor_bytes(new, t.type)} bytes is over the {MAX_TENSOR_BYTES}-byte limit")
        w = self._interpreter
        if new != current or input_index in w.pending.get(si, {}):
            w.pending.setdefault(si, {})[input_index] = new
            w.ready[si] = False

    def get_signature_list(self) -> dict[str, dict[str, list[str]]]:
        return {s.key: {"inputs": list(s.inputs), "outputs": list(s.outputs)}
                for s in self._signature_defs.values()}

    def _get_full_signature_list(self) -> dict[str, dict[str, dict[str, int]]]:
        return {s.key: {"inputs": dict(s.inputs), "outputs": dict(s.outputs)}
                for s in self._signature_defs.values()}

    def get_signature_runner(self, signature_key: str | None = None) -> SignatureRunner:
        if signature_key is None:
            n = len(self._model.signatures)
            if n != 1:
                raise ValueError(
                    f"SignatureDef signature_key is None and model has {n} Signatures. None is only "
                    "allowed when the model has 1 SignatureDef")
            signature_key = self._model.signatures[0].key
        return SignatureRunner(interpreter=self, signature_key=signature_key)

    def num_subgraphs(self) -> int:
        return len(self._model.subgraphs)

    def reset_all_variables(self) -> None:
        with self._exclusive():  # zeroing state under a running invoke would corrupt it
            for ex in self._interpreter.execs.values():
                ex.reset_variables()
            self._interpreter.context.reset()

    @property
    def experimental_compress_quantization_zero_points(self) -> bool:
        return self._compress_zero_points

    def _get_op_details(self, op_index: int) -> dict[str, Any]:
        sg = self._model.subgraphs[0]
        op_index = _index(op_index, "op_index")
        if not 0 <= op_index < len(sg.ops):
            raise ValueError(f"Invalid node index {op_index} exceeds max node index {len(sg.ops) - 1}")
        op = sg.ops[op_index]

        def types(ids: Sequence[int]) -> list[Any]:
            return [_DETAIL_TYPES.get(sg.tensors[i].type_name) or numpy_type(sg.tensors[i].type)
                    for i in ids if i >= 0]

        return {"index": int(op_index), "op_name": op.name,
                "inputs": np.array(op.inputs, dtype=np.int32),
                "outputs": np.array(op.outputs, dtype=np.int32),
                "operand_types": types(op.inputs), "result_types": types(op.outputs)}

    def _get_ops_details(self) -> list[dict[str, Any]]:
        return [self._get_op_details(i) for i in range(len(self._model.subgraphs[0].ops))]

    def _native_handle(self) -> int:
        return id(self._interpreter)


class SignatureRunner:
    """Runs one SignatureDef: resizes to the given inputs, allocates and invokes on every call."""

    def __init__(self, interpreter: Interpreter | None = None, signature_key: str | None = None):
        if interpreter is None:
            raise ValueError("None interpreter provided.")
        if signature_key is None:
            raise ValueError("None signature_key provided.")
        self._interpreter = interpreter
        self._interpreter_wrapper = interpreter._interpreter  # blocks invoke() while alive, as LiteRT
        self._signature_key = signature_key
        sig = interpreter._signature_defs.get(signature_key)
        if sig is None:
            raise ValueError(f'Invalid signature_key provided: "{signature_key}".')
        self._sig = sig
        self._subgraph_index = sig.subgraph_index

    def __call__(self, **kwargs: Any) -> dict[str, np.ndarray]:
        sig = self._sig
        if len(kwargs) != len(sig.inputs):
            raise ValueError("Invalid number of inputs provided for running a SignatureDef, expected "
                             f"{len(sig.inputs)} vs provided {len(kwargs)}")
        for name in kwargs:
            if name not in sig.inputs:
                raise ValueError(f"Invalid Input name ({name}) for SignatureDef")
        it = self._interpreter
        si = self._subgraph_index
        with it._exclusive():
            for name, value in kwargs.items():
                it._resize(sig.inputs[name], value.shape, False, si)
            if not it._interpreter.ready.get(si):  # LiteRT's AllocateTensors: a no-op when nothing changed
                it._allocate(si)
            for name, value in kwargs.items():
                it._set_tensor(sig.inputs[name], value, si)
            ex = it._interpreter.execs[si]
            ex.run()
            it._interpreter.context.invokes += 1
            it._ran(si)
            return {name: np.array(ex.buffers[tid], copy=True) for name, tid in sig.outputs.items()}

    def get_input_details(self) -> dict[str, dict[str, Any]]:
        return {n: self._interpreter._tensor_details(t, self._subgraph_index) for n, t in self._sig.inputs.items()}

    def get_output_details(self) -> dict[str, dict[str, Any]]:
        return {n: self._interpreter._tensor_details(t, self._subgraph_index) for n, t in self._sig.outputs.items()}


class CustomOpResolver:
    """What a callable in `custom_op_registerers` is called with (LiteRT passes a native
    MutableOpResolver pointer): `add(name, kernel, shape_fn=None, dtype_fn=None)` or
    `add(CustomOp)` registers a Python custom op for that interpreter (tflite_jit.custom_ops).
    Registerers written for LiteRT that ignore their argument still work."""

    def __init__(self) -> None:
        self.specs: dict[str, Any] = {}

    def add(self, name: Any, kernel: Any = None, shape_fn: Any = None, dtype_fn: Any = None) -> None:
        from tflite_jit.custom_ops import CustomOp

        spec = name if isinstance(name, CustomOp) else CustomOp(name, kernel, shape_fn, dtype_fn)
        self.specs[spec.name] = spec


class InterpreterWithCustomOps(Interpreter):
    """LiteRT's variant taking custom-op registerers. Each registerer may be a
    `tflite_jit.CustomOp`, or a callable, called with a `CustomOpResolver` to add Python custom
    ops to (tflite_jit.custom_ops). Native registerers cannot apply here: one given by symbol
    name fails like a symbol LiteRT cannot find (ValueError) instead of being dropped silently.
    """

    def __init__(self, custom_op_registerers: Sequence[Any] | None = None, **kwargs: Any):
        from tflite_jit.custom_ops import CustomOp

        self._custom_op_registerers = list(custom_op_registerers or ())
        resolver = CustomOpResolver()
        for r in self._custom_op_registerers:
            if isinstance(r, CustomOp):
                resolver.add(r)
            elif callable(r):
                r(resolver)
        self._registered_custom_ops = resolver.specs
        super().__init__(**kwargs)
        for r in self._custom_op_registerers:
            if isinstance(r, str):
                raise ValueError(f"Looking up symbol '{r}' failed: tflite_jit cannot load native "
                                 "custom-op registerers; the model's custom ops stay unresolved")


def _unpickle(cls: type[Interpreter], options: dict[str, Any]) -> Interpreter:
    """The other side of Interpreter.__reduce__: a fresh interpreter with the same options. The
    preserve-all-tensors warning was shown where the interpreter was first made, not again here."""
    from tflite_jit.custom_ops import as_spec

    options = dict(options)
    delegates = [load_delegate(name, opts) for name, opts in options.pop("delegates")]
    custom = options.pop("custom_ops")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Warning: Enabling `experimental_preserve_all_tensors`")
        if issubclass(cls, InterpreterWithCustomOps):
            return cls(custom_op_registerers=[as_spec(n, v) for n, v in custom.items()],
                       experimental_delegates=delegates, **options)
        return cls(experimental_delegates=delegates, custom_ops=custom, **options)


_TYPE_NAMES = {np.dtype(np.float32): "FLOAT32", np.dtype(np.float64): "FLOAT64",
               np.dtype(np.float16): "FLOAT16", np.dtype(np.int32): "INT32", np.dtype(np.int64): "INT64",
               np.dtype(np.int8): "INT8", np.dtype(np.uint8): "UINT8", np.dtype(np.int16): "INT16",
               np.dtype(np.uint16): "UINT16", np.dtype(np.uint32): "UINT32", np.dtype(np.uint64): "UINT64",
               np.dtype(np.bool_): "BOOL", np.dtype(np.complex64): "COMPLEX64",
               np.dtype(np.complex128): "COMPLEX128"}


def _index(value: Any, what: str) -> int:
    """An index argument as the native binding takes it: ints and numpy integers, TypeError else."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"incompatible function arguments: {what} must be an int, got "
                        f"{type(value).__name__} {value!r}") from None


def _type_name(dt: np.dtype) -> str:
    if dt.kind in "SU":
        return "STRING"
    return _TYPE_NAMES.get(np.dtype(dt), str(dt).upper())


def _strings_value(arr: np.ndarray) -> np.ndarray:
    """A value for a STRING tensor as the object array of bytes we hold: bytes as they are, str
    UTF-8 encoded (as LiteRT's set_tensor), anything else refused with LiteRT's ValueError."""
    out = np.empty(arr.shape, dtype=object)
    flat = out.reshape(-1)
    for i, v in enumerate(arr.reshape(-1).tolist()):
        if isinstance(v, str):
            v = v.encode("utf-8")
        elif not isinstance(v, (bytes, bytearray)):
            raise ValueError(f"Cannot set tensor: PyBytes_AsStringAndSize() failed: element {i} is "
                             f"{type(v).__name__}, a string tensor takes bytes or str")
        flat[i] = bytes(v)
    return out


def _sparsity_details(t: Tensor) -> dict[str, Any]:
    s = t.sparsity
    if s is None:
        return {}
    dims = []
    for d in s.dim_metadata:
        if d["format"] == "DENSE":
            dims.append({"format": 0, "dense_size": d["dense_size"]})
        else:
            dims.append({"format": 1, "array_segments": np.asarray(d["array_segments"], np.int32),
                         "array_indices": np.asarray(d["array_indices"], np.int32)})
    out: dict[str, Any] = {"traversal_order": np.array(s.traversal_order, np.int32)}
    if s.block_map is not None:  # LiteRT lists it only when the file has one (even empty)
        out["block_map"] = np.array(s.block_map, np.int32)
    out["dim_metadata"] = dims
    return out


# What LiteRT's detail dicts report where it differs from the buffer type (ir.model.numpy_type):
# handles and variants are Python objects to it, FLOAT8 is int8; BFLOAT16 it cannot describe at
# all, so get_tensor_details() leaves such tensors out (measured on ai_edge_litert 2.3).
_DETAIL_TYPES = {"RESOURCE": np.object_, "VARIANT": np.object_, "FLOAT8_E4M3FN": np.int8,
                 "FLOAT8_E5M2": np.int8}


def _detail_type(type_code: int) -> Any:
    """The `dtype` of a detail dict; ValueError (LiteRT's text) for a type LiteRT cannot name."""
    name = TENSOR_TYPE_NAMES.get(type_code)
    if name == "BFLOAT16":
        raise ValueError("Could not get tensor details")
    return _DETAIL_TYPES.get(name) or numpy_type(type_code)
