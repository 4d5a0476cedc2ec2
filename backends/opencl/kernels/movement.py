"""PAD (zero fill) and TRANSPOSE: index remapping, one work-item per output element. Not in the
float op list of the issue, but models put them between convolutions and attention matmuls, and
a partition that must leave the device for them pays two transfers each."""

from __future__ import annotations

import numpy as np

from tflite_jit.backends.opencl.kernels.common import Gen, register
from tflite_jit.backends.opencl.printer import PrintError
from tflite_jit.ops.common import c_strides, numel


def _const(g: Gen, i: int, what: str) -> np.ndarray:
    t = g.req.inputs[i] if i < len(g.req.inputs) else None
    if t is None or t.value is None:
        raise PrintError(f"{g.req.op_name}: {what} known only at run time")
    return np.asarray(t.value)


def _coord(d: int, ostr: list[int], shape: tuple[int, ...]) -> str:
    c = f"(gid / {ostr[d]})" if ostr[d] > 1 else "gid"
    return f"({c} % {shape[d]})" if d > 0 else c


@register("PAD")
def pad(g: Gen) -> tuple[list[str], int]:
    pads = _const(g, 1, "paddings").reshape(-1, 2)
    ishape = tuple(g.req.inputs[0].shape)
    out = g.req.out_shape
    ostr, istr = c_strides(out), c_strides(ishape)
    body = ["int idx = 0;", "int inside = 1;"]
    for d in range(len(out)):
        body += [f"{{ const int c = {_coord(d, ostr, out)} - {int(pads[d][0])};",
                 f"  inside = inside && c >= 0 && c < {ishape[d]}; idx += c * {istr[d]}; }}"]
    body.append(f"const float v0 = inside ? {g.load('input', 0, 'idx')} : 0.0f;")
    return body + g.epilogue("gid", "v0"), numel(out)


@register("TRANSPOSE")
def transpose(g: Gen) -> tuple[list[str], int]:
    perm = [int(p) % len(g.req.inputs[0].shape) for p in _const(g, 1, "perm").reshape(-1)]
    out = g.req.out_shape
    ostr, istr = c_strides(out), c_strides(tuple(g.req.inputs[0].shape))
    terms = [f"{_coord(d, ostr, out)} * {istr[perm[d]]}" for d in range(len(out))]
    body = [f"const int idx = {' + '.join(terms) or '0'};", f"const float v0 = {g.load('input', 0, 'idx')};"]
    return body + g.epilogue("gid", "v0"), numel(out)
