"""Measure the 256-entry sigmoid table of LiteRT's int16 LOGISTIC/TANH kernels from LiteRT itself
(needs `ai-edge-litert`); prints it as the Python literal kept in ops/qsigmoid16.py.

    .venv/bin/python -m tools.measure_int16_sigmoid_table

LiteRT's general-scale int16 TANH rescales the input to d = round(q * M / 2**shift) and, for
d >= 0, outputs table[d >> 8] - 32768 + ((d & 255) * (table[k + 1] - table[k]) + 128 >> 8).
With an input scale that makes M / 2**shift exactly 1 (M = 16384, shift 14) and then 2
(shift 13), d = q or 2q, and every input with d a multiple of 256 reads one entry out exactly
(interpolation weight 0): entries 0..254. Entry 255 is only ever interpolated towards; it is
solved from the largest input of the last segment (weight 254/256 resolves a difference of a
few units exactly)."""

from __future__ import annotations

import numpy as np

from tflite_jit.format.builder import ModelBuilder


def _tanh_model(scale: float, n: int) -> bytes:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (n,), np.int16, scale=scale, zero_point=0)
    y = g.tensor("y", (n,), np.int16, scale=1 / 32768, zero_point=0)
    g.op("TANH", [x], [y])
    g.output(y)
    return mb.build()


def litert_tanh(scale: float, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert import interpreter as lite

    it = lite.Interpreter(model_content=_tanh_model(scale, x.size),
                          experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).astype(np.int64)


def measure() -> np.ndarray:
    from tflite_jit.ops.qsigmoid16 import input_rescale

    q = np.arange(0, 32768, dtype=np.int64)
    table = np.full(256, -1, np.int64)
    for ratio, shift in ((1, 14), (2, 13)):
        # the float32 just above (4/3) * ratio / 2**14: M = 16384 (the doubling stops there)
        scale = float(np.nextafter(np.float32(4 / 3 / 2**14 * ratio), np.float32(1)))
        assert input_rescale(scale, "TANH") == (16384, shift)
        d = (q * 16384 + (1 << (shift - 1))) >> shift
        out = litert_tanh(scale, q.astype(np.int16))
        hit = (d % 256 == 0) & (d >> 8 < 255)
        table[d[hit] >> 8] = out[hit] + 32768
        if ratio == 2:
            k = int(np.flatnonzero(d >> 8 == 254)[-1])
            w, lo = int(d[k] & 255), int(table[254])
            table[255] = next(c for c in range(lo, 65536)
                              if lo - 32768 + ((w * (c - lo) + 128) >> 8) == out[k])
    assert (table >= 0).all(), "some entries were not observed"
    return table


if __name__ == "__main__":
    t = measure()
    print("SIGMOID_U16 = np.array([")
    for i in range(0, 256, 16):
        print("    " + ", ".join(str(int(v)) for v in t[i:i + 16]) + ",")
    print("], dtype=np.int64)")
