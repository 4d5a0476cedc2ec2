"""Machine constants for the OpenCL cost model, measured once per device and cached on disk.

The planner compares backends by estimated seconds, so the roofline needs this device's real
numbers: peak float32 throughput (a multiply-add chain kernel), memory bandwidth (a copy
kernel), the cost of one kernel launch in an enqueued sequence, and host<->device transfer
bandwidth and latency. The micro-benchmark takes well under a second; the result is stored as
JSON under $TFLITE_JIT_CACHE_DIR (default ~/.cache/tflite_jit, next to the Numba cache) in
`opencl/`, keyed by platform, device and driver version, so later processes read it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: bump when the benchmark changes, so stale constants are re-measured
VERSION = 2


@dataclass(frozen=True)
class Roofline:
    flops_per_s: float
    bytes_per_s: float
    launch_s: float
    h2d_bytes_per_s: float
    d2h_bytes_per_s: float
    transfer_latency_s: float

    def seconds(self, flops: float, nbytes: float, launches: int = 1) -> float:
        return flops / self.flops_per_s + nbytes / self.bytes_per_s + launches * self.launch_s

    def transfer(self, nbytes: int) -> float:
        bw = min(self.h2d_bytes_per_s, self.d2h_bytes_per_s)
        return self.transfer_latency_s + nbytes / bw


def cache_root() -> Path:
    env = os.environ.get("TFLITE_JIT_CACHE_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tflite_jit"
    return base / "opencl"


def device_key(device: Any) -> str:
    ident = "|".join(str(x).strip() for x in (device.platform.name, device.platform.version, device.name,
                                               device.driver_version, device.max_compute_units, VERSION))
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


_BENCH_SRC = """
__kernel void copy(__global const float4* restrict a, __global float4* restrict b) {
    const int i = get_global_id(0);
    b[i] = a[i];
}
__kernel void fma_chain(__global float* restrict out, const float s) {
    const int i = get_global_id(0);
    float4 x = (float4)(i, i + 1, i + 2, i + 3) * 1e-7f;
    float4 y = x + 0.5f;
    for (int k = 0; k < 256; k++) { x = x * s + 0.25f; y = y * s + 0.125f; }
    out[i] = x.s0 + x.s1 + x.s2 + x.s3 + y.s0 + y.s1 + y.s2 + y.s3;
}
__kernel void touch(__global float* restrict out) { out[get_global_id(0)] = 0.0f; }
"""


def _best(fn: Any, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(cl: Any, ctx: Any, queue: Any) -> Roofline:
    """Run the micro-benchmark (about 0.3-1 s on PoCL)."""
    prg = cl.Program(ctx, _BENCH_SRC).build()
    copy, chain, nop = cl.Kernel(prg, "copy"), cl.Kernel(prg, "fma_chain"), cl.Kernel(prg, "touch")
    mf = cl.mem_flags
    n = 1 << 22  # 16 MiB of float32
    host = np.ones(n, np.float32)
    back = np.empty_like(host)
    a = cl.Buffer(ctx, mf.READ_WRITE, host.nbytes)
    b = cl.Buffer(ctx, mf.READ_WRITE, host.nbytes)
    cl.enqueue_copy(queue, a, host)
    copy.set_args(a, b)
    nop.set_args(b)
    items = 1 << 16
    chain.set_args(b, np.float32(0.999))

    def run_copy() -> None:
        cl.enqueue_nd_range_kernel(queue, copy, (n // 4,), None)
        queue.finish()

    def run_chain() -> None:
        cl.enqueue_nd_range_kernel(queue, chain, (items,), None)
        queue.finish()

    launches = 50

    def run_nops() -> None:
        for _ in range(launches):
            cl.enqueue_nd_range_kernel(queue, nop, (1024,), None)
        queue.finish()

    def h2d() -> None:
        cl.enqueue_copy(queue, a, host)
        queue.finish()

    def d2h() -> None:
        cl.enqueue_copy(queue, back, a)

    def tiny() -> None:
        cl.enqueue_copy(queue, back[:16], a)

    for f in (run_copy, run_chain, run_nops):  # first enqueue compiles the work-group function
        f()
    t_copy, t_chain, t_nops = _best(run_copy), _best(run_chain), _best(run_nops)
    t_h2d, t_d2h, t_tiny = _best(h2d), _best(d2h), _best(tiny, 10)
    flops = items * 4 * 2 * 2 * 256
    return Roofline(flops_per_s=flops / t_chain, bytes_per_s=2 * host.nbytes / t_copy,
                    launch_s=t_nops / launches, h2d_bytes_per_s=host.nbytes / t_h2d,
                    d2h_bytes_per_s=host.nbytes / t_d2h, transfer_latency_s=t_tiny)


def load_or_measure(cl: Any, ctx: Any, queue: Any, device: Any) -> Roofline:
    """Cached constants for `device`, measuring (and caching) them the first time."""
    path = cache_root() / f"calibration-{device_key(device)}.json"
    try:
        data = json.loads(path.read_text())
        return Roofline(**{k: float(data[k]) for k in Roofline.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        pass
    r = measure(cl, ctx, queue)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
            json.dump(asdict(r), f, indent=1)
        os.replace(f.name, path)
    except OSError:
        pass  # an unwritable cache only costs re-measuring next time
    return r
