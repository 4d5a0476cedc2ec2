"""Fuzzing campaign over model bytes: load -> allocate -> invoke of mutated models, one worker
process per campaign, every case replayable from its id.

    .venv/bin/python -m tools.fuzz_models --cases 100000 --seed 1          # a campaign
    .venv/bin/python -m tools.fuzz_models --replay while/subgraph/123456    # one case, in-process

A case is `model/mutator/seed`: a valid seed model from our writer (format.builder, models.py,
the quantizer) and one mutation drawn with `random.Random(seed)`, so the same id gives the same
bytes on every machine. Campaign case i of master seed S draws its id from `Random(f"{S}-{i}")`.

Why a hand-written, structure-aware mutator (not atheris, not hypothesis): atheris (libFuzzer)
needs a native wheel and finds its way through coverage of C code, while our parser is Python and
most interesting damage is structural (an index one past the end, a WHILE naming its own
subgraph, a flexbuffer cut short) that random bytes reach only by luck; hypothesis runs cases in
the test process, so a segfault or a hang would kill the run instead of being counted, and its
shrinking is of little use when the input is a whole model. Cases run in a separate worker
process that is restarted after a crash (a signal, the worker dying) or a hang (killed after
`--timeout` seconds), so every outcome is counted:

- rejected: ValueError / RuntimeError (or the engine's own subclasses) - the contract;
- ran: load, allocate and invoke succeeded (the mutation left a valid model);
- crashed: the worker died (signal) or any other exception type escaped (IndexError, TypeError,
  MemoryError, and subclasses of ValueError/RuntimeError from elsewhere such as RecursionError or
  UnicodeDecodeError, whose messages do not follow the contract);
- hung: no answer within the time limit (replay the case to tell an endless WHILE loop from a
  merely slow one).

Rejections whose message is only the engine's generic wrapper ("this node ... cannot be handled:
IndexError") are counted separately as `rejected_generic`: clean, but a rule did not anticipate
the damage, so the message does not say what to fix.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import multiprocessing as mp
import os
import random
import shutil
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FEED_LIMIT = 1 << 22  # elements: legal but huge models are allocated, not fed and invoked
OUTCOMES = ("rejected", "ran", "crashed", "hung")

# ---- seed models -------------------------------------------------------------------------------

F, I32, B = np.float32, np.int32, np.bool_


def mlp_model() -> bytes:
    """ADD(x, const) -> RELU -> FULLY_CONNECTED -> SOFTMAX, with a signature (also
    tests/test_malformed.py's model to damage)."""
    from tflite_jit.format.builder import ModelBuilder

    mb = ModelBuilder()
    g = mb.subgraph("main")
    x = g.input("x", (1, 4), F)
    c = g.const("c", np.array([[1.0, -2.0, 3.0, -4.0]], F))
    s = g.tensor("s", (1, 4))
    g.op("ADD", [x, c], [s])
    r = g.tensor("r", (1, 4))
    g.op("RELU", [s], [r])
    w = g.const("w", np.arange(8, dtype=F).reshape(2, 4) / 8)
    b = g.const("b", np.array([0.5, -0.5], F))
    y = g.tensor("y", (1, 2))
    g.op("FULLY_CONNECTED", [r, w, b], [y])
    z = g.tensor("z", (1, 2))
    g.op("SOFTMAX", [y], [z], beta=1.0)
    g.output(z)
    mb.signature("serving_default", {"x": x}, {"z": z})
    return mb.build()


def _conv() -> bytes:
    """CONV_2D -> DEPTHWISE_CONV_2D -> MAX_POOL_2D -> RESHAPE -> FULLY_CONNECTED (small)."""
    from tflite_jit.format.builder import ModelBuilder

    rng = np.random.default_rng(0)
    mb = ModelBuilder()
    g = mb.subgraph("main")
    x = g.input("x", (1, 6, 6, 2), F)
    w = g.const("w", rng.normal(size=(3, 3, 3, 2)).astype(F))
    b = g.const("b", np.zeros(3, F))
    (c,) = g.apply("CONV_2D", [x, w, b], padding="SAME", stride_w=1, stride_h=1,
                   fused_activation_function="RELU6")
    dw = g.const("dw", rng.normal(size=(1, 3, 3, 3)).astype(F))
    db = g.const("db", np.zeros(3, F))
    (d,) = g.apply("DEPTHWISE_CONV_2D", [c, dw, db], padding="VALID", stride_w=1, stride_h=1,
                   depth_multiplier=1)
    (p,) = g.apply("MAX_POOL_2D", [d], padding="VALID", stride_w=2, stride_h=2, filter_width=2,
                   filter_height=2)
    shape = g.const("shape", np.array([1, 12], I32))
    r = g.tensor("r", (1, 12))
    g.op("RESHAPE", [p, shape], [r])
    fw = g.const("fw", rng.normal(size=(5, 12)).astype(F))
    (y,) = g.apply("FULLY_CONNECTED", [r, fw, -1])
    g.output(y)
    return mb.build()


def _quant() -> bytes:
    """The conv model, full-integer quantized (per-channel int8 weights, int32 biases)."""
    from tflite_jit.quantizer import quantize

    rng = np.random.default_rng(1)
    return quantize(_conv(), [[rng.normal(size=(1, 6, 6, 2)).astype(F)] for _ in range(4)])


def _while() -> bytes:
    """WHILE (i < 5: i + 1, x * 2) followed by a consumer."""
    from tflite_jit.format.builder import ModelBuilder

    mb = ModelBuilder()
    g = mb.subgraph("main")
    i0, x0 = g.input("i", (), I32), g.input("x", (2,), F)
    io, xo = g.tensor("i_out", (), I32), g.tensor("x_out", (2,), F)
    g.op("WHILE", [i0, x0], [io, xo], cond_subgraph_index=1, body_subgraph_index=2)
    y = g.tensor("y", (2,), F)
    g.op("RELU", [xo], [y])
    g.output(io, y)
    c = mb.subgraph("cond")
    ci = c.input("i", (), I32)
    c.input("x", (2,), F)
    cb = c.tensor("lt", (), B)
    c.op("LESS", [ci, c.const("lim", np.array(5, I32))], [cb])
    c.output(cb)
    b = mb.subgraph("body")
    bi, bx = b.input("i", (), I32), b.input("x", (2,), F)
    i1, x1 = b.tensor("i1", (), I32), b.tensor("x1", (2,), F)
    b.op("ADD", [bi, b.const("one", np.array(1, I32))], [i1])
    b.op("MUL", [bx, b.const("two", np.array([2.0, 2.0], F))], [x1])
    b.output(i1, x1)
    return mb.build()


def if_model(variable: bool = True) -> bytes:
    """IF(c, x): then x + 1, else x * 2; with `variable`, a CALL_ONCE-initialised resource variable
    accumulates the result (tests/test_control_flow.py runs the IF alone)."""
    from tflite_jit.format.builder import ModelBuilder
    from tflite_jit.ir.model import TENSOR_TYPE_CODES

    mb = ModelBuilder()
    g = mb.subgraph("main")
    c = g.input("c", (), B)
    x = g.input("x", (3,), F)
    y = g.tensor("y", (3,), F)
    g.op("IF", [c, x], [y], then_subgraph_index=1, else_subgraph_index=2)
    if variable:
        g.op("CALL_ONCE", [], [], init_subgraph_index=3)
        h = g.tensor("h", (), TENSOR_TYPE_CODES["RESOURCE"])
        g.op("VAR_HANDLE", [], [h], container="", shared_name="acc")
        v = g.tensor("v", (3,), F)
        g.op("READ_VARIABLE", [h], [v])
        z = g.tensor("z", (3,), F)
        g.op("ADD", [v, y], [z])
        g.op("ASSIGN_VARIABLE", [h, z], [])
        y = z
    g.output(y)
    t = mb.subgraph("then")
    tx, ty = t.input("x", (3,), F), t.tensor("y", (3,), F)
    t.op("ADD", [tx, t.const("one", np.ones(3, F))], [ty])
    t.output(ty)
    e = mb.subgraph("else")
    ex, ey = e.input("x", (3,), F), e.tensor("y", (3,), F)
    e.op("MUL", [ex, e.const("two", np.full(3, 2, F))], [ey])
    e.output(ey)
    if variable:
        init = mb.subgraph("init")
        ih = init.tensor("h", (), TENSOR_TYPE_CODES["RESOURCE"])
        init.op("VAR_HANDLE", [], [ih], container="", shared_name="acc")
        init.op("ASSIGN_VARIABLE", [ih, init.const("v0", np.array([1, 2, 3], F))], [])
    return mb.build()


def _custom() -> bytes:
    """TFLite_Detection_PostProcess: a custom op whose options are a flexbuffer map."""
    from tflite_jit.format.builder import ModelBuilder

    n, cols = 6, 3
    options = {"max_detections": 3, "max_classes_per_detection": 1, "detections_per_class": 2,
               "use_regular_nms": False, "nms_score_threshold": 0.1, "nms_iou_threshold": 0.5,
               "num_classes": 2, "y_scale": 10.0, "x_scale": 10.0, "h_scale": 5.0, "w_scale": 5.0}
    mb = ModelBuilder()
    g = mb.subgraph()
    anchors = np.tile(np.array([[0.5, 0.5, 0.2, 0.2]], F), (n, 1))
    ins = [g.input("boxes", (1, n, 4)), g.input("scores", (1, n, cols)), g.const("anchors", anchors)]
    outs = [g.tensor("det_boxes", (1, 3, 4)), g.tensor("det_classes", (1, 3)),
            g.tensor("det_scores", (1, 3)), g.tensor("num_det", (1,))]
    g.op("TFLite_Detection_PostProcess", ins, outs, custom=True, custom_options=options)
    g.output(*outs)
    return mb.build()


def _strings() -> bytes:
    """GATHER from a STRING constant by int32 indices, then RESHAPE of the strings."""
    from tflite_jit.format.builder import ModelBuilder

    mb = ModelBuilder()
    g = mb.subgraph()
    words = g.const("words", np.array([b"alpha", b"", b"\xc3\xa9t\xc3\xa9"], dtype=object))
    idx = g.input("idx", (2,), I32)
    y = g.tensor("y", (2,), np.bytes_)
    g.op("GATHER", [words, idx], [y], axis=0)
    z = g.tensor("z", (1, 2), np.bytes_)
    g.op("RESHAPE", [y, g.const("shape", np.array([1, 2], I32))], [z])
    g.output(z)
    return mb.build()


def _shapes() -> bytes:
    """Shape arithmetic from values: FILL(dims const), SHAPE -> BROADCAST_TO, TILE (multiples
    const): mutated values ask for arbitrary sizes at allocate time, not in declared shapes."""
    from tflite_jit.format.builder import ModelBuilder

    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (2, 3), F)
    f = g.tensor("f", (2, 3), F)
    g.op("FILL", [g.const("dims", np.array([2, 3], I32)), g.const("val", np.array(1.5, F))], [f])
    s = g.tensor("s", (2, 3), F)
    g.op("ADD", [x, f], [s])
    shp = g.tensor("shp", (2,), I32)
    g.op("SHAPE", [s], [shp], out_type=I32)
    bt = g.tensor("bt", (2, 3), F)
    g.op("BROADCAST_TO", [g.const("row", np.array([1, 2, 3], F)), shp], [bt])
    t = g.tensor("t", (4, 3), F)
    g.op("TILE", [bt, g.const("mult", np.array([2, 1], I32))], [t])
    g.output(t)
    return mb.build()


def _gather() -> bytes:
    """GATHER with run-time indices and a quantized (uint8) CONCATENATION."""
    from tflite_jit.format.builder import ModelBuilder

    mb = ModelBuilder()
    g = mb.subgraph()
    p = g.const("params", np.arange(12, dtype=F).reshape(4, 3))
    i = g.input("idx", (2,), I32)
    y = g.tensor("y", (2, 3))
    g.op("GATHER", [p, i], [y], axis=0)
    a = g.input("a", (1, 2), np.uint8, scale=0.5, zero_point=3)
    bq = g.const("bq", np.array([[7, 9]], np.uint8), scale=0.5, zero_point=3)
    cq = g.tensor("cq", (1, 4), np.uint8, scale=0.5, zero_point=3)
    g.op("CONCATENATION", [a, bq], [cq], axis=1)
    g.output(y, cq)
    return mb.build()


SEEDS: dict[str, Callable[[], bytes]] = {
    "mlp": mlp_model, "conv": _conv, "quant": _quant, "while": _while, "if": if_model, "custom": _custom,
    "strings": _strings, "shapes": _shapes, "gather": _gather,
}
_SEED_CACHE: dict[str, tuple[bytes, Any]] = {}


def seed_model(name: str) -> tuple[bytes, Any]:
    """(bytes, IR read back from them) of a seed model; built once per process."""
    if name not in _SEED_CACHE:
        from tflite_jit.format.reader import load_bytes

        data = SEEDS[name]()
        _SEED_CACHE[name] = (data, load_bytes(data))
    return _SEED_CACHE[name]


# ---- mutators ----------------------------------------------------------------------------------
# Each takes (rng, seed bytes, seed IR) and returns the mutated bytes, or None when the mutation
# does not apply to this model or the writer cannot express it (counted as 'unwritable').

_EDGE_WORDS = [0, 1, 2, 3, 4, 7, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
               0xFFFFFFFF, 0xFFFFFFFE, 2**30, 2**24]
_EDGE_INTS = [-2**31, -2**31 + 1, -65536, -2, -1, 0, 1, 2, 3, 7, 255, 256, 65535, 65536,
              2**24, 2**30, 2**31 - 1]
_HUGE_DIMS = [0, 1, 2, 3, 255, 4096, 65536, 2**20, 2**24, 2**31 - 1, -1, -2, -2**31]


def _write(m: Any) -> bytes | None:
    from tflite_jit.format.writer import write_model

    try:
        return write_model(m)
    except Exception:  # the writer refuses some combinations (an option value out of its range)
        return None


def mut_truncate(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    return data[:rng.randrange(len(data))]


def mut_bitflip(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def mut_bytes(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    out = bytearray(data)
    lo = rng.choice([0, 0, len(out) // 2])  # the header and tables sit near the start
    for _ in range(rng.randint(1, 16)):
        out[rng.randrange(lo, len(out))] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    return bytes(out)


def mut_word(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randrange(0, len(out) - 3) & ~3
        struct.pack_into("<I", out, pos, rng.choice(_EDGE_WORDS))
    return bytes(out)


def mut_splice(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    """Duplicate, drop or append a chunk (lengths and offsets then disagree with the content)."""
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.choice([1, 4, 8, 16, 64, 256]))
    r = rng.random()
    if r < 0.4:
        return data[:a] + data[a:b] + data[a:]
    if r < 0.8:
        return data[:a] + data[b:]
    return data + bytes(rng.randrange(256) for _ in range(rng.choice([1, 4, 16, 1024])))


def _copy_sg(rng: random.Random, m: Any) -> tuple[Any, Any]:
    """A deep copy of the model to mutate, and one of its subgraphs, drawn."""
    m = copy.deepcopy(m)
    return m, rng.choice(m.subgraphs)


def mut_index(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    """Tensor indices out of range, negative, or pointing at another (valid) tensor."""
    m, sg = _copy_sg(rng, m)
    n = len(sg.tensors)
    bad = rng.choice([-1, -2, -7, n, n + 1, 2**31 - 1, -2**31, rng.randrange(max(n, 1))])
    where = rng.choice(["op_in", "op_out", "sg_in", "sg_out", "signature", "intermediate"])
    if where in ("op_in", "op_out", "intermediate") and sg.ops:
        op = rng.choice(sg.ops)
        attr = {"op_in": "inputs", "op_out": "outputs", "intermediate": "intermediates"}[where]
        ids = list(getattr(op, attr))
        if ids and rng.random() < 0.7:
            ids[rng.randrange(len(ids))] = bad
        else:
            ids.append(bad)
        setattr(op, attr, tuple(ids))
    elif where == "signature" and m.signatures:
        s = m.signatures[0]
        mapping = rng.choice([s.inputs, s.outputs])
        if mapping:
            mapping[rng.choice(list(mapping))] = bad
        else:
            s.subgraph_index = rng.choice([-1, len(m.subgraphs), 2**31 - 1])
    else:
        attr = "inputs" if where == "sg_in" else "outputs"
        ids = list(getattr(sg, attr))
        if ids and rng.random() < 0.6:
            ids[rng.randrange(len(ids))] = bad
        elif ids and rng.random() < 0.5:
            ids.pop(rng.randrange(len(ids)))
        else:
            ids.append(bad)
        setattr(sg, attr, tuple(ids))
    return _write(m)


def mut_dims(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    """Huge, negative or zero dims, other ranks, contradicting shape signatures."""
    m, sg = _copy_sg(rng, m)
    if not sg.tensors:
        return None
    for _ in range(rng.randint(1, 3)):
        t = rng.choice(sg.tensors)
        r = rng.random()
        if r < 0.5 and t.shape:
            shape = list(t.shape)
            shape[rng.randrange(len(shape))] = rng.choice(_HUGE_DIMS)
            t.shape = tuple(shape)
        elif r < 0.7:
            t.shape = tuple(rng.choice(_HUGE_DIMS[:6]) for _ in range(rng.choice([0, 1, 2, 4, 6, 17])))
        elif r < 0.85:
            t.shape_signature = tuple(rng.choice([-1, -1, -2, 0, 5, 2**31 - 1]) for _ in t.shape)
        else:
            t.shape = tuple(rng.choice([2**16, 2**20, 2**31 - 1]) for _ in range(rng.randint(2, 4)))
        if t.shape_signature is not None and len(t.shape_signature) != len(t.shape) and rng.random() < 0.8:
            t.shape_signature = None
    return _write(m)


def mut_bufsize(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    """A constant's buffer shorter, longer or empty compared with its declared shape."""
    m = copy.deepcopy(m)
    consts = [t for sg in m.subgraphs for t in sg.tensors if t.data is not None]
    if not consts:
        return None
    t = rng.choice(consts)
    raw = np.ascontiguousarray(t.data).view(np.uint8).reshape(-1) if t.data.dtype != object else None
    if raw is None:
        from tflite_jit.format.writer import encode_strings

        raw = np.frombuffer(encode_strings(t.data), np.uint8)
    n = raw.size
    new = rng.choice([0, 1, max(n - 1, 0), max(n // 2, 1), n + 1, n + 3, n * 2, n + 4096])
    # (a STRING constant given raw uint8 data is written as those bytes: a damaged string buffer)
    t.data = np.resize(raw, new).astype(np.uint8) if new else np.zeros(0, np.uint8)
    return _write(m)


def mut_cycle(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    """Cycles and bad order: an op reads its own or a later op's output; ops swapped."""
    m, sg = _copy_sg(rng, m)
    if len(sg.ops) < 1:
        return None
    r = rng.random()
    if r < 0.4 and len(sg.ops) >= 2:
        i, j = sorted(rng.sample(range(len(sg.ops)), 2))
        sg.ops[i], sg.ops[j] = sg.ops[j], sg.ops[i]
    else:
        i = rng.randrange(len(sg.ops))
        later = [t for op in sg.ops[i:] for t in op.outputs]
        op = sg.ops[i]
        if not later or not op.inputs:
            return None
        ins = list(op.inputs)
        ins[rng.randrange(len(ins))] = rng.choice(later)
        op.inputs = tuple(ins)
    return _write(m)


def mut_opswap(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    """An op replaced by another builtin (options and arity no longer fit)."""
    from tflite_jit import ops
    from tflite_jit.ir.model import BUILTIN_CODES

    names = sorted(n for n in ops.all_ops() if n in BUILTIN_CODES)
    m, sg = _copy_sg(rng, m)
    if not sg.ops:
        return None
    op = rng.choice(sg.ops)
    op.name = rng.choice(names)
    op.builtin_code = BUILTIN_CODES[op.name]
    op.custom_code, op.custom_options = None, None
    if rng.random() < 0.5:
        op.options, op.options_type = {}, None
    return _write(m)


def mut_options(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    """Builtin option values set to edge values (enums out of range, zero strides, ...)."""
    m, sg = _copy_sg(rng, m)
    cands = [op for op in sg.ops if op.options and not op.is_custom]
    if not cands:
        return None
    op = rng.choice(cands)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(list(op.options))
        v = op.options[key]
        if isinstance(v, bool):
            op.options[key] = not v
        elif isinstance(v, float):
            op.options[key] = rng.choice([0.0, -1.0, float("nan"), float("inf"), 1e30, -1e-30])
        elif isinstance(v, int):
            op.options[key] = rng.choice(_EDGE_INTS + [-128, 127])
            if _write(m) is None:  # a narrower field (byte enums): its own edge values
                op.options[key] = rng.choice([-128, -1, 0, 1, 2, 5, 6, 7, 100, 127])
        elif isinstance(v, str):
            op.options[key] = rng.choice(["", "x" * 300, "\x00", "é"])
    return _write(m)


def mut_custom(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    """Custom options damaged (truncated / flipped / random flexbuffers), or ops made custom."""
    m, sg = _copy_sg(rng, m)
    if not sg.ops:
        return None
    custom = [op for op in sg.ops if op.is_custom]
    if custom and rng.random() < 0.85:
        op = rng.choice(custom)
        raw = op.custom_options
        if raw is None:
            import flatbuffers.flexbuffers as flex

            raw = bytes(flex.Dumps(op.options)) if op.options else b""
        raw = bytearray(raw)
        r = rng.random()
        if r < 0.3 and raw:
            raw = raw[:rng.randrange(len(raw))]
        elif r < 0.6 and raw:
            for _ in range(rng.randint(1, 6)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        elif r < 0.8:
            import flatbuffers.flexbuffers as flex

            value = rng.choice([[1, 2, 3], 7, "text", {"max_detections": rng.choice(_EDGE_INTS)},
                                {**op.options, rng.choice(list(op.options) or ["k"]): rng.choice(
                                    [-1, 0, 2**31 - 1, 1e30, "s", [1]])}])
            raw = bytearray(flex.Dumps(value))
        else:
            raw = bytearray(rng.randrange(256) for _ in range(rng.choice([1, 3, 8, 40])))
        op.custom_options, op.options = bytes(raw), {}
    else:
        op = rng.choice(sg.ops)
        op.custom_code = rng.choice(["TFLite_Detection_PostProcess", "FlexAddV2", "MyOp", op.name, ""])
        op.name, op.builtin_code = op.custom_code, 32
        op.options, op.options_type = {}, None
        op.custom_options = bytes(rng.randrange(256) for _ in range(rng.choice([0, 2, 16])))
    return _write(m)


def mut_quant(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    """Quantization arrays of mismatched length, bad quantized_dimension, absurd scales and zero
    points, quantization added to float tensors or removed from quantized ones."""
    from tflite_jit.ir.model import Quantization

    m, sg = _copy_sg(rng, m)
    if not sg.tensors:
        return None
    quantized = [t for t in sg.tensors if t.quantization is not None and t.quantization.scales.size]
    t = rng.choice(quantized) if quantized and rng.random() < 0.8 else rng.choice(sg.tensors)
    q = t.quantization
    if q is None or not q.scales.size:
        q = Quantization(scales=np.array([0.1], np.float32), zero_points=np.array([0], np.int64))
    scales, zps, dim = q.scales.copy(), q.zero_points.copy(), q.quantized_dimension
    r = rng.random()
    if r < 0.25:
        zps = np.resize(zps, rng.choice([0, 1, zps.size + 1, max(zps.size - 1, 0)]))
    elif r < 0.45:
        scales = np.resize(scales, rng.choice([2, 3, scales.size + 1, 64]))
        zps = np.resize(zps, scales.size)
    elif r < 0.6:
        dim = rng.choice([-1, len(t.shape), len(t.shape) + 5, 2**31 - 1])
    elif r < 0.8:
        scales = scales.copy()
        scales[rng.randrange(scales.size)] = rng.choice([0.0, -1.0, np.nan, np.inf, 1e-45, 1e38])
    elif r < 0.95:
        zps = zps.copy()
        zps[rng.randrange(zps.size)] = rng.choice([-129, 128, 256, -2**31, 2**40])
    else:
        t.quantization = None
        return _write(m)
    t.quantization = Quantization(scales=scales.astype(np.float32), zero_points=zps.astype(np.int64),
                                  quantized_dimension=int(dim))
    return _write(m)


def mut_subgraph(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    """WHILE / IF / CALL_ONCE naming bad subgraphs (out of range, negative, themselves, each
    other), callee subgraphs with other arity, dropped subgraphs."""
    m = copy.deepcopy(m)
    n = len(m.subgraphs)
    calls = [(sg, op, k) for sg in m.subgraphs for op in sg.ops
             for k in op.options if k.endswith("subgraph_index")]
    r = rng.random()
    if calls and r < 0.6:
        sg, op, k = rng.choice(calls)
        op.options[k] = rng.choice([-1, -2**31, n, n + 1, 2**31 - 1, 0, m.subgraphs.index(sg),
                                    rng.randrange(n)])
    elif calls and r < 0.75:
        sg, op, k = rng.choice(calls)
        others = [k2 for k2 in op.options if k2.endswith("subgraph_index")]
        if len(others) >= 2:
            a, b = others[:2]
            op.options[a], op.options[b] = op.options[b], op.options[a]
        else:
            op.options[k] = 0
    elif n > 1 and r < 0.9:
        callee = m.subgraphs[rng.randrange(1, n)]
        attr = rng.choice(["inputs", "outputs"])
        ids = list(getattr(callee, attr))
        if ids and rng.random() < 0.6:
            ids.pop(rng.randrange(len(ids)))
        elif callee.tensors:
            ids.append(rng.randrange(len(callee.tensors)))
        setattr(callee, attr, tuple(ids))
    elif n > 1:
        del m.subgraphs[rng.randrange(1, n)]
    else:  # no control flow here: make an op a WHILE / IF / CALL_ONCE naming bad subgraphs
        from tflite_jit.format.schema import options_table_for
        from tflite_jit.ir.model import BUILTIN_CODES

        sg = m.subgraphs[0]
        if not sg.ops:
            return None
        op = rng.choice(sg.ops)
        name = rng.choice(["WHILE", "IF", "CALL_ONCE"])
        keys = {"WHILE": ["cond_subgraph_index", "body_subgraph_index"],
                "IF": ["then_subgraph_index", "else_subgraph_index"],
                "CALL_ONCE": ["init_subgraph_index"]}[name]
        op.name, op.builtin_code = name, BUILTIN_CODES[name]
        op.custom_code = op.custom_options = None
        op.options_type = options_table_for(name)[1]
        op.options = {k: rng.choice([-1, 0, 1, 2**31 - 1]) for k in keys}
    return _write(m)


def mut_strings(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    """STRING buffers with bad counts / offsets, and STRING type on numeric tensors."""
    from tflite_jit.format.writer import encode_strings
    from tflite_jit.ir.model import TENSOR_TYPE_CODES

    string = TENSOR_TYPE_CODES["STRING"]
    m = copy.deepcopy(m)
    consts = [t for sg in m.subgraphs for t in sg.tensors if t.data is not None and t.type == string]
    if consts and rng.random() < 0.7:
        t = rng.choice(consts)
        raw = bytearray(encode_strings(t.data) if t.data.dtype == object else t.data.tobytes())
        word = rng.randrange(max(1, min(len(raw) // 4, 6)))
        struct.pack_into("<i", raw, 4 * word, rng.choice([-1, 0, 1, 2, 3, 1000, 2**31 - 1, len(raw) + 1]))
        t.data = np.frombuffer(bytes(raw), np.uint8)
    else:
        sg = rng.choice(m.subgraphs)
        if not sg.tensors:
            return None
        t = rng.choice(sg.tensors)
        if t.data is not None:
            t.data = np.frombuffer(np.ascontiguousarray(t.data).tobytes(), np.uint8)
        t.type = string
    return _write(m)


def mut_dtype(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    """Tensor types changed, including exotic and unknown codes (constants keep their bytes)."""
    m, sg = _copy_sg(rng, m)
    if not sg.tensors:
        return None
    t = rng.choice(sg.tensors)
    t.type = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                         22, 23, 99, 127, -1])
    if t.data is not None:
        t.data = np.frombuffer(np.ascontiguousarray(t.data).tobytes()
                               if t.data.dtype != object else b"\x00" * 8, np.uint8)
    return _write(m)


def mut_values(rng: random.Random, data: bytes, m: Any) -> bytes | None:
    """Constant values changed: shape operands (FILL dims, RESHAPE shape, TILE multiples), gather
    indices and axes to huge / negative values, float weights to NaN / inf."""
    m = copy.deepcopy(m)
    consts = [t for sg in m.subgraphs for t in sg.tensors
              if t.data is not None and t.data.dtype != object and t.data.size]
    if not consts:
        return None
    t = rng.choice(consts)
    arr = np.array(t.data, copy=True)
    flat = arr.reshape(-1)
    for _ in range(rng.randint(1, 2)):
        i = rng.randrange(flat.size)
        if arr.dtype.kind == "f":
            flat[i] = rng.choice([np.nan, np.inf, -np.inf, 0.0, 1e38, -1e38])
        elif arr.dtype.kind in "iu":
            info = np.iinfo(arr.dtype)
            v = rng.choice([-1, 0, 2, 65536, 2**20, 2**31 - 1, -2**31, info.max, info.min])
            flat[i] = np.clip(v, info.min, info.max)
        elif arr.dtype.kind == "b":
            flat[i] = not flat[i]
    t.data = arr
    return _write(m)


MUTATORS: dict[str, Callable[[random.Random, bytes, Any], bytes | None]] = {
    "truncate": mut_truncate, "bitflip": mut_bitflip, "bytes": mut_bytes, "word": mut_word,
    "splice": mut_splice, "index": mut_index, "dims": mut_dims, "bufsize": mut_bufsize,
    "cycle": mut_cycle, "opswap": mut_opswap, "options": mut_options, "custom": mut_custom,
    "quant": mut_quant, "subgraph": mut_subgraph, "strings": mut_strings, "dtype": mut_dtype,
    "values": mut_values,
}


@dataclass(frozen=True)
class Case:
    model: str
    mutator: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.model}/{self.mutator}/{self.seed}"

    @staticmethod
    def parse(text: str) -> Case:
        model, mutator, seed = text.split("/")
        if model not in SEEDS or mutator not in MUTATORS:
            raise ValueError(f"unknown case {text!r}: models {sorted(SEEDS)}, mutators {sorted(MUTATORS)}")
        return Case(model, mutator, int(seed))

    def bytes(self) -> bytes | None:
        data, ir = seed_model(self.model)
        return MUTATORS[self.mutator](random.Random(self.seed), data, ir)


def campaign_case(master_seed: int, i: int, models: list[str] | None = None,
                  mutators: list[str] | None = None) -> Case:
    """Case i of a campaign: a pure function of (master_seed, i), so runs are replayable."""
    rng = random.Random(f"{master_seed}-{i}")
    return Case(rng.choice(models or sorted(SEEDS)), rng.choice(mutators or sorted(MUTATORS)),
                rng.getrandbits(32))


# ---- running one case --------------------------------------------------------------------------


def _feed(d: dict[str, Any]) -> np.ndarray:
    if np.dtype(d["dtype"]).kind == "S":
        return np.full(tuple(d["shape"]), b"ab", dtype=object)
    return np.ones(tuple(d["shape"]), d["dtype"])


def run_model(content: bytes, backend: str | None = "reference", invoke_twice: bool = True) -> None:
    """Everything a user does with a model: load, inspect, allocate, feed, invoke, read, and a
    second invoke (state, CALL_ONCE). tests/test_malformed.py runs damaged models through it with
    the default backend and one invoke."""
    import tflite_jit

    it = tflite_jit.Interpreter(model_content=content, backend=backend)
    it.get_input_details()
    it.get_output_details()
    it.get_tensor_details()
    it.get_signature_list()
    it._get_ops_details()
    it.allocate_tensors()
    if any(np.prod(d["shape"], dtype=np.int64) > FEED_LIMIT for d in it.get_tensor_details()):
        return  # legal but huge (up to the per-tensor limit): feeding it only costs time
    for d in it.get_input_details():
        it.set_tensor(d["index"], _feed(d))
    it.invoke()
    for d in it.get_output_details():
        it.get_tensor(d["index"])
    if invoke_twice:
        it.invoke()


def _allowed(e: BaseException) -> bool:
    """The contract's exception types: ValueError / RuntimeError themselves or the engine's own
    subclasses - not RecursionError, UnicodeDecodeError, numpy's AxisError and the like."""
    t = type(e)
    return t in (ValueError, RuntimeError) or (
        issubclass(t, (ValueError, RuntimeError)) and t.__module__.startswith("tflite_jit"))


def classify(content: bytes | None, backend: str = "reference") -> dict[str, Any]:
    """Run one case in this process: {'outcome', 'type', 'message', 'where'}."""
    if content is None:
        return {"outcome": "unwritable"}
    try:
        run_model(content, backend)
    except Exception as e:
        msg = str(e)
        if _allowed(e):
            generic = "cannot be handled: " in msg
            return {"outcome": "rejected", "generic": generic, "type": type(e).__name__,
                    "message": msg[:400], "where": _where(e) if generic else ""}
        return {"outcome": "crashed", "type": type(e).__name__, "message": msg[:400], "where": _where(e)}
    return {"outcome": "ran"}


def _where(e: BaseException) -> str:
    """The innermost frame of ours where the exception (or its cause) was raised."""
    e = e.__cause__ or e
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "tflite_jit" in f.filename
              or "/ops/" in f.filename or "/backends/" in f.filename]
    f = frames[-1] if frames else (traceback.extract_tb(e.__traceback__) or [None])[-1]
    return f"{os.path.relpath(f.filename)}:{f.lineno} ({f.name})" if f else ""


# ---- worker pool (one process, restarted after a crash or a hang) -------------------------------


def _orphan_watch(parent: int) -> None:
    """Exit when the campaign process dies (killed mid-case: the worker may be in an endless
    WHILE loop and would never read the closed pipe)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(3)


def _worker(conn: Any, backend: str, max_as: int, parent: int) -> None:
    import threading

    threading.Thread(target=_orphan_watch, args=(parent,), daemon=True).start()
    if max_as:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (max_as, max_as))
    import warnings

    warnings.simplefilter("ignore")
    while True:
        try:
            text = conn.recv()
        except EOFError:
            return
        if text.startswith("selftest:"):  # the harness's own test: crash / hang / raise on demand
            _selftest(text[9:])
            conn.send(classify(None))
            continue
        case = Case.parse(text)
        try:
            content = case.bytes()
        except Exception as e:  # a mutator bug: reported, never counted against the engine
            conn.send({"outcome": "unwritable", "type": type(e).__name__, "message": str(e)[:200]})
            continue
        conn.send(classify(content, backend))


def _selftest(what: str) -> None:
    import signal

    if what == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif what == "exit":
        os._exit(7)
    elif what == "hang":
        time.sleep(3600)


@dataclass
class Pool:
    """One worker process; `run(case)` returns its result dict, restarting the worker after a
    crash (the process died: signal or exit code) or a hang (no answer within `timeout`).
    The worker is spawned (not forked: no inherited Numba/OpenMP threads), so a script using
    a Pool needs the usual `if __name__ == "__main__":` guard."""

    backend: str = "reference"
    timeout: float = 3.0
    max_as: int = 16 << 30
    restarts: int = 0
    _proc: Any = None
    _conn: Any = None
    _env: dict[str, str] = field(default_factory=dict)

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        old = {k: os.environ.get(k) for k in self._env}
        os.environ.update(self._env)
        try:
            self._proc = ctx.Process(target=_worker, args=(child, self.backend, self.max_as, os.getpid()),
                                     daemon=True)
            self._proc.start()
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        self._conn = parent

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
            self._conn.close()
        self._proc = self._conn = None

    def run(self, case: Case | str) -> dict[str, Any]:
        if self._proc is None or not self._proc.is_alive():
            if self._proc is not None:
                self._kill()
                self.restarts += 1
            self._start()
        self._conn.send(case if isinstance(case, str) else case.id)
        if not self._conn.poll(self.timeout):
            self._kill()
            self.restarts += 1
            return {"outcome": "hung", "message": f"no answer in {self.timeout:g} s"}
        try:
            return self._conn.recv()
        except (EOFError, ConnectionError):
            self._proc.join(5)
            code = self._proc.exitcode
            self._kill()
            self.restarts += 1
            sig = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            return {"outcome": "crashed", "type": "worker died", "message": sig}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # the worker sees EOF and returns
        if self._proc is not None:
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()
        self._proc = self._conn = None


# ---- the campaign ------------------------------------------------------------------------------


@dataclass
class Report:
    tried: int = 0
    counts: collections.Counter = field(default_factory=collections.Counter)
    by_mutator: dict[str, collections.Counter] = field(default_factory=lambda: collections.defaultdict(collections.Counter))
    by_model: dict[str, collections.Counter] = field(default_factory=lambda: collections.defaultdict(collections.Counter))
    findings: dict[str, list[str]] = field(default_factory=dict)  # signature -> case ids
    generic: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, case: Case, res: dict[str, Any]) -> None:
        out = res["outcome"]
        self.counts[out] += 1
        self.by_mutator[case.mutator][out] += 1
        self.by_model[case.model][out] += 1
        if out != "unwritable":
            self.tried += 1
        if out in ("crashed", "hung"):
            sig = f"{out}: {res.get('type', '')}: {_squash(res.get('message', ''))} @ {res.get('where', '')}"
            self.findings.setdefault(sig, []).append(case.id)
        elif out == "rejected" and res.get("generic"):
            self.counts["rejected_generic"] += 1
            sig = f"{_squash(res.get('message', ''))} @ {res.get('where', '')}"
            self.generic.setdefault(sig, []).append(case.id)

    def summary(self) -> dict[str, Any]:
        c = self.counts
        return {"tried": self.tried, **{k: c[k] for k in OUTCOMES},
                "rejected_generic": c["rejected_generic"], "unwritable": c["unwritable"],
                "seconds": round(self.seconds, 1),
                "by_mutator": {k: dict(v) for k, v in sorted(self.by_mutator.items())},
                "by_model": {k: dict(v) for k, v in sorted(self.by_model.items())},
                # every hang is listed: replay tells an endless WHILE from a merely slow case
                "findings": {k: {"count": len(v), "replay": v if k.startswith("hung") else v[:3]}
                             for k, v in self.findings.items()},
                "generic_rejections": {k: {"count": len(v), "replay": v[:3]}
                                       for k, v in sorted(self.generic.items(), key=lambda kv: -len(kv[1]))[:40]}}


def _squash(msg: str) -> str:
    """A finding's signature: the message's first line with numbers removed, so one bug is one
    entry however many cases hit it."""
    import re

    first = (msg.strip().splitlines() or [""])[0]
    return re.sub(r"-?\d+(\.\d+)?", "N", first)[:160]


def run_campaign(cases: Iterator[Case], *, backend: str = "reference", timeout: float = 3.0,
                 progress: Callable[[Report], None] | None = None, every: int = 1000,
                 max_as: int = 16 << 30) -> Report:
    report = Report()
    cache = tempfile.mkdtemp(prefix="tflite_jit_fuzz_cache_")
    pool = Pool(backend=backend, timeout=timeout, max_as=max_as,
                _env={"TFLITE_JIT_CACHE_DIR": cache, "TFLITE_JIT_BACKEND": backend})
    start = time.monotonic()
    try:
        for n, case in enumerate(cases, 1):
            report.add(case, pool.run(case))
            report.seconds = time.monotonic() - start
            if progress is not None and n % every == 0:
                progress(report)
    finally:
        pool.close()
        shutil.rmtree(cache, ignore_errors=True)
        report.seconds = time.monotonic() - start
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="master seed: case i is a function of (seed, i)")
    p.add_argument("--start", type=int, default=0, help="first case index (resume a campaign)")
    p.add_argument("--backend", default="reference", choices=["reference", "numba"])
    p.add_argument("--timeout", type=float, default=3.0, help="seconds before a case counts as hung")
    p.add_argument("--models", default="", help="comma-separated seed models (default: all)")
    p.add_argument("--mutators", default="", help="comma-separated mutators (default: all)")
    p.add_argument("--max-as-gib", type=float, default=16, help="worker address-space limit (0: none)")
    p.add_argument("--json", default="", help="write the final report here")
    p.add_argument("--replay", default="", help="run one case id (model/mutator/seed) in this process")
    p.add_argument("--dump", default="", help="with --replay: also write the case's bytes here")
    a = p.parse_args(argv)
    if a.replay:
        case = Case.parse(a.replay)
        content = case.bytes()
        if a.dump and content is not None:
            with open(a.dump, "wb") as f:
                f.write(content)
        if content is None:
            print("unwritable: the mutation does not apply to this model")
            return 0
        run_model(content, a.backend)  # let the exception and its traceback through
        print("ran")
        return 0
    models = [s for s in a.models.split(",") if s] or None
    mutators = [s for s in a.mutators.split(",") if s] or None

    def progress(r: Report) -> None:
        if a.json:  # findings so far, so a long run can be inspected (and replayed) while it runs
            with open(a.json, "w") as f:
                json.dump(r.summary(), f, indent=1)
        c = r.counts
        print(f"[{r.seconds:7.0f}s] tried {r.tried}  rejected {c['rejected']} (generic "
              f"{c['rejected_generic']})  ran {c['ran']}  crashed {c['crashed']}  hung {c['hung']}  "
              f"unwritable {c['unwritable']}  findings {len(r.findings)}", flush=True)

    cases = (campaign_case(a.seed, i, models, mutators) for i in range(a.start, a.start + a.cases))
    report = run_campaign(cases, backend=a.backend, timeout=a.timeout, progress=progress,
                          every=max(1, min(1000, a.cases // 20)), max_as=int(a.max_as_gib * (1 << 30)))
    summary = report.summary()
    text = json.dumps(summary, indent=1)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text)
    print(text)
    return 1 if report.counts["crashed"] or report.counts["hung"] else 0


if __name__ == "__main__":
    sys.exit(main())
