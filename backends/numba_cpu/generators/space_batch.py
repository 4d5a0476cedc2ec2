"""SPACE_TO_BATCH_ND (4-D, constant block shape and paddings) as one copy kernel with padding.

Why its own kernel: DeepLab-style atrous convolutions are converted to SPACE_TO_BATCH_ND → conv
→ BATCH_TO_SPACE_ND, and the first one pads, which generators/movement.py's copy map (every
output element a copy of an input element) cannot express; on `reference` it kept DeepLab models
slower than LiteRT's builtin kernels.

Output batch `ob` takes the shift (dh, dw) = divmod(ob // B, bw) of input image ob % B (LiteRT's
and the reference's order): out[ob, oh, ow, :] = x[b, oh*bh + dh - top, ow*bw + dw - left, :], or
the padding value where that lands outside: 0, or the output zero point for quantized nodes
(ops/qmovement.py: LiteRT pads with it).
"""

from __future__ import annotations

import numpy as np

from tflite_jit.backends.numba_cpu import emit
from tflite_jit.backends.numba_cpu.generators import movement, register_generator
from tflite_jit.backends.numba_cpu.spec import Arg, KernelSource
from tflite_jit.backends.request import KernelRequest, Unsupported
from tflite_jit.ops import Quantized
from tflite_jit.ops import expr as E


def generate_space_to_batch(req: KernelRequest) -> KernelSource:
    x = req.inputs[0]
    block = req.inputs[1] if len(req.inputs) > 1 else None
    pads = req.inputs[2] if len(req.inputs) > 2 else None
    if x is None or len(x.shape) != 4 or block is None or block.value is None or pads is None or pads.value is None:
        raise Unsupported("SPACE_TO_BATCH_ND: 4-D input with constant block shape and paddings only")
    if req.extras or len(req.outputs) != 1 or not (isinstance(req.outputs[0].expr, E.Var)
                                                   and req.outputs[0].expr.index == 0):
        raise Unsupported("SPACE_TO_BATCH_ND: fused epilogues are not compiled")
    bs = [int(v) for v in np.asarray(block.value).reshape(-1)]
    pd = np.asarray(pads.value).reshape(-1, 2).astype(int)
    if len(bs) != 2 or pd.shape != (2, 2):
        raise Unsupported("SPACE_TO_BATCH_ND: two spatial dims only")
    B, H, W, C = (int(d) for d in x.shape)
    bh, bw = bs
    top, left = int(pd[0, 0]), int(pd[1, 0])
    OB, OH, OW, OC = (int(d) for d in req.out_shape)
    if OB != B * bh * bw or OC != C or OH * bh != H + int(pd[0].sum()) or OW * bw != W + int(pd[1].sum()):
        raise Unsupported(f"SPACE_TO_BATCH_ND: output shape {req.out_shape} does not match")
    a = req.attrs
    fill = int(a.zo) if isinstance(a, Quantized) else 0
    args = [(Arg("input", 0), "x"), (Arg("output", 0), "o0")]
    arglist, names = emit.signature(args)
    body = [f"def entry({names}):",
            f"    fx = x.reshape({B * H * W * C})",
            f"    fo = o0.reshape({OB * OH * OW * OC})",
            f"    for ob in range({OB}):",
            f"        b = ob % {B}",
            f"        dh = (ob // {B}) // {bw}",
            f"        dw = (ob // {B}) % {bw}",
            f"        for oh in range({OH}):",
            f"            h = oh * {bh} + dh - {top}",
            f"            for ow in range({OW}):",
            f"                w = ow * {bw} + dw - {left}",
            f"                dst = ((ob * {OH} + oh) * {OW} + ow) * {C}",
            f"                if h < 0 or h >= {H} or w < 0 or w >= {W}:",
            f"                    for c in range({C}):",
            f"                        fo[dst + c] = {fill}",
            "                else:",
            f"                    src = ((b * {H} + h) * {W} + w) * {C}",
            f"                    for c in range({C}):",
            "                        fo[dst + c] = fx[src + c]"]
    if OB * OH * OW * OC == 0:
        body = [f"def entry({names}):", "    return"]
    return KernelSource(emit.module("\n".join(body) + "\n", False), "entry", arglist, False)


@register_generator("SPACE_TO_BATCH_ND")
def generate(req: KernelRequest) -> KernelSource:
    """The padding kernel above; movement.py's copy map for what it does not cover (3-D)."""
    try:
        return generate_space_to_batch(req)
    except Unsupported:
        return movement.generate_movement(req)
