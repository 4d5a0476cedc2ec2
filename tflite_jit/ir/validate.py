"""Structural validation: everything a kernel could trip over is rejected before planning.

Kernels (NumPy now, Numba later) do not bounds-check, so a tensor id out of range, a cycle, an
absurd size or a dtype contradiction must become a ValueError here, naming the op and tensor.
"""

from __future__ import annotations

import numpy as np

from tflite_jit.ir.model import TENSOR_TYPE_NAMES, Model, Subgraph, Tensor

#: Largest tensor the engine agrees to allocate (bytes). A 20-byte file must not ask for 1 TB.
MAX_TENSOR_BYTES = 1 << 32
MAX_RANK = 16


def validate(model: Model) -> None:
    if not model.subgraphs:
        raise ValueError("Model has no subgraphs")
    for si, sg in enumerate(model.subgraphs):
        _validate_subgraph(sg, si)
    for s in model.signatures:
        if not 0 <= s.subgraph_index < len(model.subgraphs):
            raise ValueError(f"Signature '{s.key}' refers to subgraph {s.subgraph_index}, but the model "
                             f"has {len(model.subgraphs)}")
        n = len(model.subgraphs[s.subgraph_index].tensors)
        for kind, m in (("input", s.inputs), ("output", s.outputs)):
            for name, tid in m.items():
                if not 0 <= tid < n:
                    raise ValueError(f"Signature '{s.key}' {kind} '{name}' refers to tensor {tid}, "
                                     f"but subgraph {s.subgraph_index} has {n} tensors")


def tensor_bytes(shape: tuple[int, ...], type_code: int) -> int:
    name = TENSOR_TYPE_NAMES.get(type_code, "")
    item = {"STRING": 1, "INT4": 1, "UINT4": 1, "INT2": 1}.get(name)
    if item is None:
        from tflite_jit.ir.model import numpy_type

        item = np.dtype(numpy_type(type_code)).itemsize
    n = 1
    for d in shape:
        n *= max(int(d), 1)
    return n * item


def _validate_subgraph(sg: Subgraph, si: int) -> None:
    n = len(sg.tensors)
    where = f" of subgraph {si}" if si else ""

    def tname(t: int) -> str:
        return f"tensor {t} ('{sg.tensors[t].name}')"

    for i, t in enumerate(sg.tensors):
        label = f"Tensor {i} ('{t.name}'){where}"
        if len(t.shape) > MAX_RANK:
            raise ValueError(f"{label} has rank {len(t.shape)}; at most {MAX_RANK} is supported")
        if any(d < 0 for d in t.shape):
            raise ValueError(f"{label} has a negative dimension in shape {list(t.shape)}")
        sig = t.shape_signature
        if sig is not None:
            if len(sig) != len(t.shape) or any(d < -1 for d in sig) or any(
                    s != -1 and s != d for s, d in zip(sig, t.shape)):
                raise ValueError(f"{label}: shape_signature {list(sig)} contradicts shape {list(t.shape)}")
        _validate_quantization(t, label)
        if tensor_bytes(t.shape, t.type) > MAX_TENSOR_BYTES:
            raise ValueError(f"{label} declares shape {list(t.shape)} "
                             f"({tensor_bytes(t.shape, t.type)} bytes), over the {MAX_TENSOR_BYTES}-byte limit")
    for kind, ids in (("input", sg.inputs), ("output", sg.outputs)):
        for t in ids:
            if not 0 <= t < n:
                raise ValueError(f"Subgraph {si} {kind} refers to tensor {t}, but it has {n} tensors")
    available = set(sg.inputs) | {i for i, t in enumerate(sg.tensors) if t.is_constant or t.is_variable}
    producer: dict[int, int] = {}
    for oi, op in enumerate(sg.ops):
        label = f"Node number {oi} ({op.name}){where}"
        for t in op.inputs:
            if t == -1:
                continue
            if not 0 <= t < n:
                raise ValueError(f"{label} has input tensor index {t} out of range [0, {n})")
            if t not in available:
                later = next((j for j, o in enumerate(sg.ops) if t in o.outputs), None)
                why = (f"produced only by later node {later}: the graph has a cycle or is out of order"
                       if later is not None else "never produced, not constant and not a graph input")
                raise ValueError(f"{label} reads {tname(t)}, which is {why}")
        for t in op.outputs:
            if not 0 <= t < n:
                raise ValueError(f"{label} has output tensor index {t} out of range [0, {n})")
            if sg.tensors[t].is_constant:
                raise ValueError(f"{label} writes constant {tname(t)}")
            if t in producer:
                raise ValueError(f"{label} writes {tname(t)}, already written by node {producer[t]}")
            if t in sg.inputs:
                raise ValueError(f"{label} writes graph input {tname(t)}")
            producer[t] = oi
            available.add(t)
        for t in op.intermediates:
            if not 0 <= t < n:
                raise ValueError(f"{label} has intermediate tensor index {t} out of range [0, {n})")
    for t in sg.outputs:
        if t not in available:
            raise ValueError(f"Subgraph {si} output {tname(t)} is never produced")


def _validate_quantization(t: Tensor, label: str) -> None:
    """LiteRT's load-time checks of affine quantization (its texts), so kernels and detail dicts
    can index scales and zero points freely."""
    q = t.quantization
    if q is None or not q.scales.size or q.details is not None:
        return
    ns, nz, qd = q.scales.size, q.zero_points.size, q.quantized_dimension
    why = None
    if nz != ns:
        why = (f"QuantizationParam has {nz} zero_point values and {ns} scale values. "
               "Must have same number.")
    elif ns > 1 and not 0 <= qd < len(t.shape):
        why = f"quantized_dimension must be in range [0, {len(t.shape)}). Was {qd}."
    elif ns > 1 and t.shape[qd] != ns:
        why = (f"num_scales must be 1 for per-layer quantization, or {t.shape[qd]} for per-axis "
               f"quantization, but got {ns}.")
    if why:
        raise ValueError(f"{why} {label} has invalid quantization parameters.")
