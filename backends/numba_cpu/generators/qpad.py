"""PAD and PADV2 with constant paddings, any element type (PAD on int8 / uint8 / int16 pads with
the output's zero point, as LiteRT does; float32 / int32 / bool with 0; PADV2 with its constant
value), equal to ops/shape.py's reference.

MobileNetV2 / EfficientNet pad before every stride-2 depthwise convolution; on int8 models the
reference's np.pad cost ~0.6 ms of MobileNetV2's 4.6 ms. The kernel walks the output one row of
its innermost dimensions at a time (trailing unpadded dimensions are merged into the row, so an
NHWC pad of H and W copies W*C... or C contiguous elements): rows outside the input are filled
with the pad value, the others get the left fill, the copied input row and the right fill. Every
bound and stride is a literal, so the copies vectorize. Paddings given at run time stay on the
reference backend (Unsupported).
"""

from __future__ import annotations

import math

import numpy as np

from tflite_jit.backends.numba_cpu import emit, host
from tflite_jit.backends.numba_cpu.generators import register_generator
from tflite_jit.backends.numba_cpu.quantized import no_epilogue
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops.base import Quantized


def _merge(shape: tuple[int, ...], pads: list[tuple[int, int]]) -> tuple[list[int], list[tuple[int, int]]]:
    """Merge trailing unpadded dimensions into the last padded one's row: (shape, pads) of at
    most the same rank whose last dimension is the longest contiguous copy."""
    shape, pads = list(shape), list(pads)
    while len(shape) > 1 and pads[-1] == (0, 0):
        last = shape.pop()
        pads.pop()
        lo, hi = pads[-1]
        shape[-1] *= last
        pads[-1] = (lo * last, hi * last)
    return shape, pads


def pad_value(req: KernelRequest) -> str:
    """The fill value as a literal of the output's type: PADV2's constant_values (known at plan
    time), else the zero point the reference pads with (0 for float and unquantized tensors)."""
    a = req.attrs
    base = a.base if isinstance(a, Quantized) else a
    dt = np.dtype(req.outputs[0].arg.dtype)
    c = req.inputs[2] if req.op_name == "PADV2" and len(req.inputs) > 2 else None
    if c is not None:
        if c.value is None or np.size(c.value) != 1:
            raise Unsupported("PADV2: constant_values known only at run time (runs on reference)")
        v = np.asarray(c.value).reshape(-1)[0]
    else:
        v = getattr(base, "zero_point", 0) or 0
    if dt.kind == "f":
        v = float(np.float32(v))
        if not math.isfinite(v):
            raise Unsupported(f"{req.op_name}: a non-finite pad value runs on reference")
        return repr(v)
    return str(int(bool(v)) if dt == np.bool_ else int(v))


@register_generator("PAD")
@register_generator("PADV2")
def generate_pad(req: KernelRequest) -> KernelSource:
    no_epilogue(req, req.op_name)
    x = req.inputs[0] if req.inputs else None
    p = req.inputs[1] if len(req.inputs) > 1 else None
    if x is None or p is None or p.value is None:
        raise Unsupported("PAD: paddings known only at run time (runs on reference)")
    shape = tuple(int(d) for d in x.shape)
    rank = len(shape)
    pv = np.asarray(p.value).astype(np.int64)
    if rank == 0 or pv.shape != (rank, 2) or (pv < 0).any():
        raise Unsupported("PAD: scalar input or invalid paddings (the reference reports it)")
    if np.dtype(x.dtype) != np.dtype(req.outputs[0].arg.dtype):
        raise Unsupported("PAD: input and output types differ (the reference reports it)")
    pads = [(int(a), int(b)) for a, b in pv]
    out = tuple(d + a + b for d, (a, b) in zip(shape, pads))
    if out != tuple(req.out_shape):
        raise Unsupported(f"PAD: output shape {req.out_shape} != padded shape {out}")
    if math.prod(out) == 0:
        raise Unsupported("PAD: empty output")
    value = pad_value(req)
    if math.prod(shape) == 0:
        body = ["def entry(x, o):", f"    for i in range({math.prod(out)}):", f"        st(o, i, {value})"]
    else:
        ms, mp = _merge(shape, pads)
        mo = [d + a + b for d, (a, b) in zip(ms, mp)]
        r = len(ms)
        L, OL = ms[-1], mo[-1]
        left, right = mp[-1]
        ind = "    "
        body = ["def entry(x, o):"]
        ob_terms, ib_terms, conds = [], [], []
        for d in range(r - 1):
            ostride, istride = math.prod(mo[d + 1:]), math.prod(ms[d + 1:])
            body.append(f"{ind}for d{d} in range({mo[d]}):")
            ind += "    "
            ob_terms.append(f"d{d} * {ostride}")
            ib_terms.append(f"(d{d} - {mp[d][0]}) * {istride}")
            if mp[d] != (0, 0):
                conds.append(f"{mp[d][0]} <= d{d} < {mp[d][0] + ms[d]}")
        body.append(f"{ind}ob = {' + '.join(ob_terms) or '0'}")
        copy = []
        if left:
            copy += [f"for c in range({left}):", f"    st(o, ob + c, {value})"]
        copy += [f"ib = {' + '.join(ib_terms) or '0'}", f"for c in range({L}):",
                 f"    st(o, ob + {left} + c, ld(x, ib + c))"]
        if right:
            copy += [f"for c in range({left + L}, {OL}):", f"    st(o, ob + c, {value})"]
        if conds:
            body.append(f"{ind}if {' and '.join(conds)}:")
            body += [ind + "    " + ln for ln in copy]
            body += [f"{ind}else:", f"{ind}    for c in range({OL}):", f"{ind}        st(o, ob + c, {value})"]
        else:
            body += [ind + ln for ln in copy]
    src = (f"# {req.op_name}\n" + emit.helper_import(host.SIMD, "ld", "st")
           + emit.module("\n".join(body) + "\n", False))
    return KernelSource(src, "entry", [Arg("input", 0), Arg("output", 0)], False)
