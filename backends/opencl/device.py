"""Finding an OpenCL device, with errors a user can act on.

pyopencl is imported here and nowhere at module level elsewhere in the package, so
`import tflite_jit.backends.opencl` works without it and only constructing the backend fails,
with a RuntimeError that says what to install.
"""

from __future__ import annotations

import os
from typing import Any

INSTALL_HINT = ("install the OpenCL extra: pip install 'tflite-jit[opencl]' (pyopencl and PoCL, "
                "a CPU OpenCL driver), or a GPU vendor's OpenCL driver")


def import_pyopencl() -> Any:
    try:
        import pyopencl as cl
    except Exception as e:  # ImportError, or a broken ICD loader raising on import
        raise RuntimeError(f"OpenCL backend unavailable: pyopencl cannot be imported "
                           f"({type(e).__name__}: {e}); {INSTALL_HINT}") from None
    return cl


def list_devices(cl: Any) -> list[Any]:
    """Every device of every platform, in platform order."""
    try:
        platforms = cl.get_platforms()
    except Exception as e:  # cl.LogicError PLATFORM_NOT_FOUND_KHR when no ICD is installed
        raise RuntimeError(f"OpenCL backend unavailable: no OpenCL platform found ({e}); "
                           f"{INSTALL_HINT}") from None
    devices = []
    for p in platforms:
        try:
            devices.extend(p.get_devices())
        except Exception:  # a platform with no devices raises DEVICE_NOT_FOUND
            continue
    if not devices:
        raise RuntimeError(f"OpenCL backend unavailable: the OpenCL platforms "
                           f"({', '.join(p.name for p in platforms) or 'none'}) have no devices; "
                           f"{INSTALL_HINT}")
    return devices


def describe(d: Any) -> str:
    return f"{d.platform.name.strip()} / {d.name.strip()}"


_PROBE = "__kernel void tj_probe(__global float* a) { a[get_global_id(0)] = exp(a[0]); }"


_built: dict[Any, str] = {}  # cache: device -> builds() answer (one probe per process)


def builds(cl: Any, d: Any) -> str:
    """'' if `d` compiles a trivial kernel, else why not. A driver can list a device it cannot
    compile for: PoCL 3.0 (pyopencl's bundled copy, LLVM 14) fails every build with "unknown
    target CPU 'generic'" on CPUs newer than its LLVM, e.g. AMD Zen 5."""
    if d not in _built:
        try:
            cl.Program(cl.Context([d]), _PROBE).build()
            _built[d] = ""
        except Exception as e:
            lines = [ln.strip() for ln in str(e).splitlines() if "error" in ln.lower()]
            _built[d] = lines[-1] if lines else f"{type(e).__name__}: {str(e)[:200]}"
    return _built[d]


def choose_device(cl: Any, spec: Any = None) -> Any:
    """The device named by `spec`: 'gpu', 'cpu' or 'accelerator' (the first of that type that can
    compile), an index into all devices, 'P:D' (platform, device: the PYOPENCL_CTX syntax) or a
    case-insensitive substring of the device or platform name (the first match that can
    compile). With no spec, PYOPENCL_CTX if set, else the first GPU that can
    compile a kernel, else the first device that can. A chosen device that cannot compile is a
    RuntimeError naming the cause (never a failure per kernel later)."""
    d = _select(cl, spec)
    why = builds(cl, d)
    if why:
        raise RuntimeError(f"OpenCL backend: device {describe(d)} cannot compile kernels ({why}); "
                           f"choose another with the 'device' option or PYOPENCL_CTX, or install "
                           f"a driver that supports this machine (e.g. a newer PoCL)")
    return d


def _select(cl: Any, spec: Any) -> Any:
    devices = list_devices(cl)
    if spec is None:
        env = os.environ.get("PYOPENCL_CTX")
        if env:
            try:
                return cl.create_some_context(interactive=False).devices[0]
            except Exception as e:
                raise RuntimeError(f"OpenCL backend: PYOPENCL_CTX={env!r} does not name a device "
                                   f"({e}); available: {_names(devices)}") from None
        gpus = [d for d in devices if d.type & cl.device_type.GPU]
        return _first_building(cl, gpus + [d for d in devices if d not in gpus])
    text = str(spec).strip()
    kinds = {"gpu": cl.device_type.GPU, "cpu": cl.device_type.CPU, "accelerator": cl.device_type.ACCELERATOR}
    if text.lower() in kinds:
        typed = [d for d in devices if d.type & kinds[text.lower()]]
        if typed:
            return _first_building(cl, typed)
    elif text.isdigit():
        i = int(text)
        if i < len(devices):
            return devices[i]
    elif ":" in text and all(part.isdigit() for part in text.split(":", 1)):
        pi, di = (int(p) for p in text.split(":", 1))
        try:
            return cl.get_platforms()[pi].get_devices()[di]
        except Exception:
            pass
    else:
        hits = [d for d in devices if text.lower() in describe(d).lower()]
        if hits:
            return _first_building(cl, hits)
    raise RuntimeError(f"OpenCL backend: device option {spec!r} matches no device; use 'gpu', 'cpu', an "
                       f"index, 'platform:device' or part of a name from: {_names(devices)}")


def _first_building(cl: Any, candidates: list[Any]) -> Any:
    """The first candidate that compiles; else the first (choose_device then says why not)."""
    for d in candidates:
        if not builds(cl, d):
            return d
    return candidates[0]


def _names(devices: list[Any]) -> str:
    return "; ".join(f"{i}: {describe(d)}" for i, d in enumerate(devices))
