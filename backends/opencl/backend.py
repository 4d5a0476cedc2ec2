"""The OpenCL backend: one generated OpenCL C kernel per cluster, built with pyopencl; a
partition (a convex run of clusters) is one enqueued sequence over device buffers, so only its
inputs and outputs cross between host and device, and the queue is finished once per run
(PERFORMANCE.md §3: enqueue+finish per kernel costs ~77 µs on PoCL, an enqueue ~6 µs).

Clusters become requests through the backends' shared builder (backends/request.py: a root op +
an elementwise epilogue composed from the ops' shared expression trees, or a pure LOOP), and
kernels/*.py print them as OpenCL C 1.2 with every shape baked in.

Caching: programs are kept per source text in the backend object (a second cluster with the
same shapes builds nothing), and on disk by the driver: pyopencl skips its own binary cache for
PoCL and NVIDIA because those drivers cache builds themselves (PoCL in $POCL_CACHE_DIR or
~/.cache/pocl), and uses its own cache for other drivers. Cost-model constants are measured once
per device and cached as JSON (calibrate.py).

Options (`OpenCLBackend(options)`):
* `device`: 'gpu' / 'cpu' / 'accelerator' (a device type), an index into all devices,
  'platform:device' (PYOPENCL_CTX's syntax) or part of a device name; default PYOPENCL_CTX, else the first GPU, else the first device, that can compile
  a kernel (probed at construction: a listed device may be unable to, see device.py).
* `allow_fp16` (default False): weights and on-device intermediates are stored in half precision
  (vload_half/vstore_half: core OpenCL 1.2, so every device has it, cl_khr_fp16 or not) while
  arithmetic and accumulation stay float32; partition inputs and outputs stay float32. This halves
  the memory traffic of weights and intermediates at the price of one fp16 rounding (relative
  error <= 2^-11) per stored value, so the float contract is relaxed from 1e-4 to
  `FP16_RTOL` = 1e-2 of the output's largest magnitude (tests/backends/test_opencl.py checks it;
  measured 3e-4 on tiny_convnet, 8e-4 on MobileNetV2 64/0.5, 1.2e-3 on a small transformer
  encoder). Stored values beyond half's range saturate to +-65504 instead of becoming inf (so an
  additive -1e9 attention mask still masks). It is a permission, as in TFLite's GPU delegate:
  on CPU devices the backend keeps float32 unless `fp16_on_cpu=True` (a testing knob), because
  PoCL converts half in software: MobileNetV2 224 ran 246 ms with half storage vs 32 ms without
  (benchmarks/bench_opencl.py --allow-fp16). Half *arithmetic* (cl_khr_fp16) is not used: PoCL
  on x86 does not offer it, so it could not be tested here; `has_khr_fp16` records the device's
  support for a later step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tflite_jit import ops
from tflite_jit.backends.base import Backend, Cluster, CompileEnv, Kernel, Partition
from tflite_jit.backends.opencl import calibrate, device, printer
from tflite_jit.backends.opencl.kernels import generate
from tflite_jit.backends.opencl.kernels.common import KERNEL_NAME
from tflite_jit.backends.request import Request, Unsupported, build_request, is_loop_op
from tflite_jit.ir.model import Op
from tflite_jit.ops.common import numel

#: relative tolerance of the allow_fp16 contract (of the output's largest magnitude)
FP16_RTOL = 1e-2
BUILD_OPTIONS = ["-cl-std=CL1.2"]
_MAX_ELEMENTS = 2**31 - 1  # kernels index with C int
#: ops with an OpenCL root kernel (kernels/*.py registers a generator for each)
ROOTS = frozenset(("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL",
                   "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "SUM", "SOFTMAX", "PAD", "TRANSPOSE"))
#: ops that only relabel their input's bytes: a device buffer alias, no kernel
VIEWS = frozenset(("RESHAPE", "SQUEEZE", "EXPAND_DIMS"))
_F32, _BOOL = np.dtype(np.float32), np.dtype(np.bool_)


class OpenCLBackend(Backend):
    name = "opencl"

    OPTIONS = ("device", "allow_fp16", "fp16_on_cpu")

    def __init__(self, options: dict[str, Any] | None = None):
        super().__init__(options)
        options = dict(options or {})
        self.cl = device.import_pyopencl()
        self.device = device.choose_device(self.cl, options.get("device"))
        try:
            self.ctx = self.cl.Context([self.device])
            self.queue = self.cl.CommandQueue(self.ctx)
        except Exception as e:
            raise RuntimeError(f"OpenCL backend: cannot open device {device.describe(self.device)} "
                               f"({type(e).__name__}: {e}); {device.INSTALL_HINT}") from None
        self.has_khr_fp16 = "cl_khr_fp16" in self.device.extensions
        is_cpu = bool(self.device.type & self.cl.device_type.CPU)
        #: half storage in use: allowed, and on a CPU device only when forced (it is slower there)
        self.allow_fp16 = bool(options.get("allow_fp16", False)) and (
            not is_cpu or bool(options.get("fp16_on_cpu", False)))
        self._roofline: calibrate.Roofline | None = None
        self._programs: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"OpenCLBackend({device.describe(self.device)!r}, allow_fp16={self.allow_fp16})"

    # -- capability --------------------------------------------------------------------------------
    def supports(self, op: Op, env: CompileEnv) -> tuple[bool, str]:
        opdef = ops.get(op.name)
        if opdef is None:
            return False, f"no definition of {op.name}"
        if isinstance(env.attrs_of(op), ops.Quantized):
            return False, f"quantized {op.name}: int8 not supported by the OpenCL backend"
        loop = is_loop_op(op)
        if op.name not in ROOTS and op.name not in VIEWS and not loop:
            return False, f"no OpenCL kernel for {op.name}"
        shape_ins = opdef.shape_inputs  # read at plan time: never device data
        for j, t in enumerate(op.inputs):
            if t < 0:
                continue
            info = env.infos[t]
            if info.shape is None:
                return False, f"{op.name} has a dynamic shape"
            if j in shape_ins:
                if op.name not in VIEWS and info.value is None:
                    return False, f"{op.name}: input {j} (axes/paddings/perm) known only at run time"
                continue
            if info.dtype != _F32 and not (loop and info.dtype == _BOOL):
                return False, f"{op.name} on {info.dtype.name} input: the OpenCL backend runs float32 only"
            if numel(info.shape) > _MAX_ELEMENTS:
                return False, f"{op.name}: tensor {t} has 2^31 elements or more"
        for t in op.outputs:
            info = env.infos[t]
            if info.shape is None:
                return False, f"{op.name} has a dynamic output shape"
            if info.dtype != _F32 and not (loop and info.dtype == _BOOL):
                return False, f"{op.name} producing {info.dtype.name}: the OpenCL backend runs float32 only"
        if loop:
            try:
                printer.emit([opdef.expr(env.attrs_of(op))], {i: f"a{i}" for i in range(len(op.inputs))})
            except (printer.PrintError, ValueError) as e:
                return False, f"{op.name}: {e}"
        return True, ""

    # -- cost model --------------------------------------------------------------------------------
    @property
    def roofline(self) -> calibrate.Roofline:
        if self._roofline is None:
            self._roofline = calibrate.load_or_measure(self.cl, self.ctx, self.queue, self.device)
        return self._roofline

    def cost(self, cluster: Cluster, env: CompileEnv) -> float:
        """Roofline of the fused kernel: its FLOPs at peak, the bytes crossing its boundary (fused
        intermediates never reach memory) at the measured bandwidth, plus one launch."""
        sg = env.subgraph
        flops = 0.0
        views_only = True
        for oi in cluster.ops:
            op = sg.ops[oi]
            views_only &= op.name in VIEWS
            opdef = ops.get(op.name)
            if opdef is None or opdef.cost is None:
                continue
            shapes_in = [env.infos[i].shape if i >= 0 else None for i in op.inputs]
            shapes_out = [env.infos[i].shape for i in op.outputs]
            if any(s is None for s in shapes_out):
                continue
            flops += opdef.cost(shapes_in, shapes_out, env.attrs[oi]).flops
        if views_only:
            return 0.0
        nbytes = 0
        for t in (*cluster.inputs, *cluster.outputs):
            if t >= 0 and env.infos[t].shape is not None:
                nbytes += numel(env.infos[t].shape) * env.infos[t].dtype.itemsize
        return self.roofline.seconds(flops, nbytes, 1)

    def transfer_seconds(self, nbytes: int) -> float:
        return self.roofline.transfer(nbytes)

    # -- compile -----------------------------------------------------------------------------------
    def compile(self, cluster: Cluster, env: CompileEnv) -> Kernel:
        inputs = tuple(t for t in cluster.inputs)
        return self.compile_partition(Partition(self.name, (cluster,), inputs, cluster.outputs), env)

    def compile_partition(self, partition: Partition, env: CompileEnv) -> Kernel:
        return PartitionKernel(self, partition, env)

    def program(self, source: str) -> Any:
        """A built program for `source` (built once per backend; the driver caches on disk)."""
        prg = self._programs.get(source)
        if prg is None:
            try:
                prg = self.cl.Program(self.ctx, source).build(options=BUILD_OPTIONS)
            except Exception as e:
                raise Unsupported(f"OpenCL build failed: {type(e).__name__}: {e}") from None
            self._programs[source] = prg
        return prg


class PartitionKernel:
    """Arrays for partition.inputs in, arrays for partition.outputs out; everything else stays
    in device buffers allocated once. `transfers` counts host<->device copies (tests)."""

    def __init__(self, backend: OpenCLBackend, partition: Partition, env: CompileEnv):
        cl = backend.cl
        self.cl, self.queue, self.partition = cl, backend.queue, partition
        self.label = " + ".join(env.subgraph.ops[oi].name for c in partition.clusters for oi in c.ops)
        self.transfers = 0
        infos, sg = env.infos, env.subgraph
        self.infos = infos
        # views: output tensor -> viewed tensor (same device buffer)
        source: dict[int, int] = {}
        requests = []
        for c in partition.clusters:
            first = sg.ops[c.ops[0]]
            if len(c.ops) == 1 and first.name in VIEWS:
                for t in (*first.inputs[:1], *first.outputs):
                    if infos[t].shape is None or infos[t].dtype not in (_F32, _BOOL):
                        raise Unsupported(f"{first.name}: view of a dynamic or non-float tensor")
                source[first.outputs[0]] = first.inputs[0]
                continue
            requests.append(request_for(c, env))

        def root(t: int) -> int:
            while t in source:
                t = source[t]
            return t

        self.root = root
        const = {t for t in range(len(infos)) if infos[t].value is not None}
        boundary = {root(t) for t in (*partition.inputs, *partition.outputs) if t >= 0 and t not in const}
        self.host_inputs = [t for t in partition.inputs if t >= 0 and t not in const]

        def fmt(t: int) -> str:
            r = root(t)
            if infos[r].dtype == _BOOL:
                return "u8"
            if backend.allow_fp16 and r not in boundary:
                return "f16"
            return "f32"

        self.buffers: dict[int, Any] = {}
        self._consts: list[Any] = []

        def buffer(t: int) -> Any:
            r = root(t)
            buf = self.buffers.get(r)
            if buf is None:
                f = fmt(r)
                item = {"f32": 4, "f16": 2, "u8": 1}[f]
                nbytes = max(numel(infos[r].shape) * item, 4)
                buf = cl.Buffer(backend.ctx, cl.mem_flags.READ_WRITE, nbytes)
                if r in const:
                    cl.enqueue_copy(self.queue, buf, _to_storage(infos[r].value, f))
                self.buffers[r] = buf
            return buf

        self.launches: list[tuple[Any, int]] = []
        for rq in requests:
            ids = {"input": rq.input_ids, "extra": rq.extra_ids, "output": rq.output_ids}
            storage = {(k, i): fmt(t) for k, lst in ids.items() for i, t in enumerate(lst) if t >= 0}
            if backend.allow_fp16:
                storage.update({("const", i): "f16" for i in range(4)})  # packed weights
            try:
                src = generate(rq.req, storage)
            except (printer.PrintError, ValueError) as e:
                raise Unsupported(str(e)) from None
            if src.global_size == 0:
                continue
            kernel = cl.Kernel(backend.program(src.source), KERNEL_NAME)
            args = []
            for a in src.args:
                if a.kind == "const":
                    value = _to_storage(a.value, storage.get(("const", a.index), "f32"))
                    buf = cl.Buffer(backend.ctx, cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR,
                                    hostbuf=value)
                    self._consts.append(buf)  # set_args keeps no reference: a freed buffer crashes PoCL
                    args.append(buf)
                else:
                    args.append(buffer(ids[a.kind][a.index]))
            kernel.set_args(*args)
            self.launches.append((kernel, src.global_size))
        # the first enqueue of a kernel compiles its work-group function (PoCL: 13-83 ms):
        # pay it here, at allocate time, not in the first invoke (the buffers hold garbage)
        for kernel, size in self.launches:
            cl.enqueue_nd_range_kernel(self.queue, kernel, (size,), None)
        self.queue.finish()

    def __call__(self, inputs: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        cl, q = self.cl, self.queue
        values = dict(zip(self.partition.inputs, inputs))
        try:
            keep = []
            for t in self.host_inputs:
                if t not in self.buffers:
                    continue  # only read on the host side (a view passed straight through)
                info = self.infos[t]
                arr = np.ascontiguousarray(values[t], dtype=info.dtype)  # a view if already so
                if arr.size != numel(info.shape):
                    raise ValueError(f"OpenCL partition ({self.label}): input tensor {t} has "
                                     f"{arr.size} elements, planned shape {list(info.shape)}; call "
                                     f"allocate_tensors() after resizing inputs")
                if arr.dtype == _BOOL:
                    arr = arr.view(np.uint8)
                if arr.size == 0:
                    continue
                keep.append(arr)
                cl.enqueue_copy(q, self.buffers[t], arr, is_blocking=False)
                self.transfers += 1
            for kernel, size in self.launches:
                cl.enqueue_nd_range_kernel(q, kernel, (size,), None)
            outs = []
            for t in self.partition.outputs:
                info = self.infos[t]
                r = self.root(t)
                if r in values and r not in self.buffers:
                    outs.append(np.array(values[r], copy=True).reshape(info.shape))
                    continue
                out = np.empty(info.shape, np.uint8 if info.dtype == _BOOL else info.dtype)
                if out.size:
                    cl.enqueue_copy(q, out, self.buffers[r], is_blocking=False)
                    self.transfers += 1
                outs.append(out)
            q.finish()
        except cl.Error as e:
            raise RuntimeError(f"OpenCL kernel for {self.label} failed: {e}") from None
        return [o.view(np.bool_) if self.infos[t].dtype == _BOOL else o
                for o, t in zip(outs, self.partition.outputs)]


def request_for(cluster: Cluster, env: CompileEnv) -> Request:
    """The cluster as a request for kernels/*.py; int8 nodes never reach a device kernel."""
    for oi in cluster.ops:
        if isinstance(env.attrs[oi], ops.Quantized):
            raise Unsupported(f"quantized {env.subgraph.ops[oi].name}: int8 not supported by the OpenCL backend")
    return build_request(cluster, env, backend="OpenCL", roots=ROOTS)


def _to_storage(value: np.ndarray, fmt: str) -> np.ndarray:
    v = np.asarray(value)
    if fmt == "f16":  # saturating, like the kernels' stores (NaN stays NaN)
        return np.ascontiguousarray(np.clip(v, -65504.0, 65504.0), np.float16)
    if fmt == "u8":
        return np.ascontiguousarray(v, np.bool_).view(np.uint8)
    return np.ascontiguousarray(v, np.float32)
