"""Post-training full-integer quantization: a float model plus calibration inputs -> an int8 (or
16x8) model, laid out the way TensorFlow's converter lays one out.

Why it is here: users who cannot (or would rather not) install TensorFlow still want int8 models,
and our own quantized kernels need models "quantized the way TF's converter does it" to be tested
against LiteRT. The rules follow the TFLite quantization spec (QUANTIZATION.md §1):

* activations: int8 asymmetric, one (scale, zero point) per tensor from the calibrated range
  widened to include 0; 16x8 mode: int16 symmetric (zero point 0);
* weights of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED: int8 symmetric in [-127, 127], per
  output channel (axis 0, or 3 for depthwise) unless `per_channel=False`;
* bias: int32 (int64 in 16x8 mode) with scale = input scale * weight scale, zero point 0;
* ops that only move data (RESHAPE, pools, CONCATENATION, PAD, ...) share one scale between their
  inputs and output; LOGISTIC / SOFTMAX / TANH / LOG_SOFTMAX / L2_NORMALIZATION get LiteRT's
  fixed output parameters;
* other float constants read by quantized ops are quantized per tensor from their own values.

Ops with no integer kernel stay float when `allow_float=True` (DEQUANTIZE / QUANTIZE are inserted
at the boundaries, as the converter does with fallback), otherwise the call fails naming them.
Graph inputs/outputs are int8 or stay float with a QUANTIZE / DEQUANTIZE at the edge, per
`inference_input_type` / `inference_output_type` (the converter's option names).
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from tflite_jit.format.reader import load_bytes
from tflite_jit.format.writer import write_model
from tflite_jit.ir.model import BUILTIN_CODES, Model, Op, Quantization, Tensor, type_code_of

F32 = np.dtype(np.float32)

# op -> (weight input index, per-channel axis); input 0 is the activation, input 2 the bias
_WEIGHTED = {"CONV_2D": (1, 0), "DEPTHWISE_CONV_2D": (1, 3), "FULLY_CONNECTED": (1, 0)}
# outputs whose parameters LiteRT fixes: (int8 scale, int8 zero point)
_FIXED = {"LOGISTIC": (1 / 256, -128), "SOFTMAX": (1 / 256, -128), "TANH": (1 / 128, 0),
          "LOG_SOFTMAX": (16 / 256, 127), "L2_NORMALIZATION": (1 / 128, 0)}
_FIXED_16 = {"LOGISTIC": (1 / 32768, 0), "SOFTMAX": (1 / 32768, 0), "TANH": (1 / 32768, 0)}
# data movers: inputs (the listed indices) and outputs share one scale
_SAME = {"RESHAPE": (0,), "SQUEEZE": (0,), "EXPAND_DIMS": (0,), "TRANSPOSE": (0,),
         "AVERAGE_POOL_2D": (0,), "MAX_POOL_2D": (0,), "PAD": (0,), "PADV2": (0, 2), "MIRROR_PAD": (0,),
         "GATHER": (0,), "GATHER_ND": (0,), "SLICE": (0,), "STRIDED_SLICE": (0,), "SPLIT": (1,),
         "SPLIT_V": (0,), "CONCATENATION": None, "PACK": None, "UNPACK": (0,), "TILE": (0,),
         "BROADCAST_TO": (0,), "RESIZE_BILINEAR": (0,), "RESIZE_NEAREST_NEIGHBOR": (0,),
         "MAXIMUM": (0, 1), "MINIMUM": (0, 1), "REDUCE_MAX": (0,), "REDUCE_MIN": (0,),
         "DEPTH_TO_SPACE": (0,), "SPACE_TO_DEPTH": (0,), "BATCH_TO_SPACE_ND": (0,),
         "SPACE_TO_BATCH_ND": (0,), "REVERSE_V2": (0,)}
# ops whose output gets its own calibrated range
_RANGE = {"ADD", "SUB", "MUL", "MEAN", "SUM", "HARD_SWISH", "LEAKY_RELU", "RELU", "RELU6",
          "RELU_N1_TO_1", "GELU", "ELU", "BATCH_MATMUL", "SQUARED_DIFFERENCE", "RSQRT", "SQRT",
          "ABS", "NEG", "EXP", "LOG", "PRELU", "REDUCE_PROD", *_WEIGHTED}
# ops with integer inputs we leave alone (their float inputs are quantized, outputs not float)
_NON_FLOAT_OUT = {"ARG_MAX", "ARG_MIN", "SHAPE", "EQUAL", "NOT_EQUAL", "LESS", "LESS_EQUAL",
                  "GREATER", "GREATER_EQUAL"}
QUANTIZABLE = frozenset({*_FIXED, *_SAME, *_RANGE, *_NON_FLOAT_OUT})


def _batches(data: Any) -> Iterable:
    return data() if callable(data) else data


def calibrate(model: bytes, representative_dataset: Iterable | Callable[[], Iterable], *,
              backend: str = "reference") -> dict[int, tuple[float, float]]:
    """Run the float model on every sample; return {tensor id: (min, max)} of subgraph 0's float
    tensors. A sample is a list of input arrays (input order) or a dict keyed by input name.
    Calibration keeps every tensor (no fusion), so compiling each op would cost more than a few
    NumPy runs: the reference backend is the default."""
    from tflite_jit.interpreter import Interpreter

    with warnings.catch_warnings():  # the "debugging only" note is for users, not for calibration
        warnings.simplefilter("ignore")
        it = Interpreter(model_content=model, experimental_preserve_all_tensors=True, backend=backend)
    it.allocate_tensors()
    inputs = it.get_input_details()
    float_ids = [d["index"] for d in it.get_tensor_details() if np.dtype(d["dtype"]) == F32]
    ranges: dict[int, tuple[float, float]] = {}
    n = 0
    for sample in _batches(representative_dataset):
        values = [sample[d["name"]] for d in inputs] if isinstance(sample, dict) else list(sample)
        if len(values) != len(inputs):
            raise ValueError(f"a calibration sample has {len(values)} arrays but the model has "
                             f"{len(inputs)} inputs")
        for d, v in zip(inputs, values):
            v = np.asarray(v, d["dtype"])
            if tuple(v.shape) != tuple(d["shape"]):
                it.resize_tensor_input(d["index"], list(v.shape))
                it.allocate_tensors()
            it.set_tensor(d["index"], v)
        it.invoke()
        for t in float_ids:
            try:
                v = it.get_tensor(t)
            except ValueError:  # no buffer (e.g. an unused tensor)
                continue
            finite = v[np.isfinite(v)] if v.size else v
            if finite.size:
                lo, hi = float(finite.min()), float(finite.max())
                old = ranges.get(t)
                ranges[t] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
        n += 1
    if n == 0:
        raise ValueError("the representative dataset yielded no samples; give at least one")
    return ranges


def affine_params(lo: float, hi: float, dtype: np.dtype) -> tuple[float, int]:
    """Scale and zero point for a real range, as TF's converter nudges them: the range is widened
    to contain 0 so that 0.0 is exactly representable (padding, ReLU)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if dtype == np.int16:
        m = max(-lo, hi)
        return (m / 32767.0 if m > 0 else 1.0), 0
    qmin, qmax = (-128, 127) if dtype == np.int8 else (0, 255)
    if hi == lo:
        return 1.0, qmin if dtype == np.uint8 else 0
    scale = (hi - lo) / (qmax - qmin)
    zp_real = qmin - lo / scale
    zp = qmin if zp_real < qmin else qmax if zp_real > qmax else int(np.round(zp_real))
    return float(np.float32(scale)), zp


class _Groups:
    """Union-find over tensor ids that must share quantization parameters."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, t: int) -> int:
        self.parent.setdefault(t, t)
        while self.parent[t] != t:
            self.parent[t] = self.parent[self.parent[t]]
            t = self.parent[t]
        return t

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def quantize(model: bytes, representative_dataset: Iterable | Callable[[], Iterable], *,
             activations: str = "int8", per_channel: bool = True,
             inference_input_type: Any = np.float32, inference_output_type: Any = np.float32,
             allow_float: bool = False) -> bytes:
    """Full-integer post-training quantization of subgraph 0. Returns the new model's bytes.

    activations: "int8" (TF's default) or "int16" (16x8: int16 activations, int8 weights, int64
    bias). inference_input_type / inference_output_type: np.float32 (QUANTIZE / DEQUANTIZE at
    the edges, the converter's default) or the activation type (int8 / int16) for an integer
    interface. allow_float: ops with no integer kernel stay float instead of failing."""
    act = {"int8": np.dtype(np.int8), "int16": np.dtype(np.int16)}.get(activations)
    if act is None:
        raise ValueError(f"activations must be 'int8' or 'int16', got {activations!r}")
    in_t, out_t = np.dtype(inference_input_type), np.dtype(inference_output_type)
    for what, t in (("inference_input_type", in_t), ("inference_output_type", out_t)):
        if t not in (F32, act):
            raise ValueError(f"{what} must be float32 or {act.name}, got {t.name}")
    src = load_bytes(model)
    if len(src.subgraphs) != 1:
        raise ValueError("quantize() handles single-subgraph models; this one has "
                         f"{len(src.subgraphs)} (control flow is not quantized)")
    ranges = calibrate(model, representative_dataset)
    return write_model(_Rewriter(src, ranges, act, per_channel, in_t, out_t, allow_float).run())


class _Rewriter:
    def __init__(self, src: Model, ranges: dict[int, tuple[float, float]], act: np.dtype,
                 per_channel: bool, in_t: np.dtype, out_t: np.dtype, allow_float: bool):
        self.src, self.ranges, self.act = src, ranges, act
        self.per_channel, self.in_t, self.out_t, self.allow_float = per_channel, in_t, out_t, allow_float
        self.sg = src.subgraphs[0]
        self.tensors: list[Tensor] = [copy.copy(t) for t in self.sg.tensors]

    # -- planning ----------------------------------------------------------------------------------
    def _is_float(self, t: int) -> bool:
        return t >= 0 and np.dtype(self.sg.tensors[t].dtype) == F32

    def _quantized_ops(self) -> list[bool]:
        flags = []
        for op in self.sg.ops:
            has_float = any(self._is_float(t) for t in (*op.inputs, *op.outputs))
            ok = op.name in QUANTIZABLE and not op.is_custom
            if has_float and not ok and not self.allow_float:
                raise ValueError(f"quantize: {op.name} has no integer kernel; pass allow_float=True "
                                 "to keep it in float32 with QUANTIZE/DEQUANTIZE around it")
            flags.append(has_float and ok)
        return flags

    def _params(self, qops: list[bool]) -> dict[int, Quantization]:
        """Quantization of every float activation tensor touched by a quantized op."""
        groups = _Groups()
        fixed: dict[int, tuple[float, int]] = {}
        table = _FIXED_16 if self.act == np.int16 else _FIXED
        weights, biases = set(), set()
        for op, q in zip(self.sg.ops, qops):
            if not q:
                continue
            if op.name in _WEIGHTED:
                wi, _ = _WEIGHTED[op.name]
                weights.add(op.inputs[wi])
                if len(op.inputs) > 2 and op.inputs[2] >= 0:
                    biases.add(op.inputs[2])
            if op.name in table and self._is_float(op.outputs[0]):
                fixed[op.outputs[0]] = table[op.name]
            if op.name in _SAME:
                idx = _SAME[op.name]
                ins = [t for i, t in enumerate(op.inputs) if (idx is None or i in idx) and self._is_float(t)]
                for t in ins + [t for t in op.outputs if self._is_float(t)]:
                    groups.union(t, op.outputs[0])
        members: dict[int, list[int]] = {}
        for t in list(groups.parent):
            members.setdefault(groups.find(t), []).append(t)
        out: dict[int, Quantization] = {}
        touched = {t for op, q in zip(self.sg.ops, qops) if q for t in (*op.inputs, *op.outputs)
                   if self._is_float(t) and t not in weights and t not in biases}
        for t in touched:
            out_q = None
            group = members.get(groups.find(t), [t])
            fixes = {fixed[m] for m in group if m in fixed}
            if len(fixes) > 1:
                raise ValueError(f"quantize: tensors {group} must share one scale but two ops fix "
                                 f"different output parameters {sorted(fixes)}")
            if fixes:
                s, z = fixes.pop()
            else:
                lo, hi = self._range_of(group)
                s, z = affine_params(lo, hi, self.act)
            out_q = Quantization(scales=np.array([s], np.float32), zero_points=np.array([z], np.int64))
            out[t] = out_q
        return out

    def _range_of(self, group: Sequence[int]) -> tuple[float, float]:
        lo, hi = 0.0, 0.0
        for t in group:
            data = self.sg.tensors[t].data
            r = (float(np.min(data)), float(np.max(data))) if data is not None and data.size else self.ranges.get(t)
            if r is not None:
                lo, hi = min(lo, r[0]), max(hi, r[1])
        return lo, hi

    # -- rewriting ---------------------------------------------------------------------------------
    def _new_tensor(self, like: int, dtype: np.dtype, q: Quantization | None, suffix: str) -> int:
        base = self.sg.tensors[like]
        self.tensors.append(Tensor(name=f"{base.name}{suffix}", type=type_code_of(dtype), shape=base.shape,
                                   shape_signature=base.shape_signature, quantization=q))
        return len(self.tensors) - 1

    @staticmethod
    def _op(name: str, inputs: Sequence[int], outputs: Sequence[int]) -> Op:
        return Op(name=name, inputs=tuple(inputs), outputs=tuple(outputs), builtin_code=BUILTIN_CODES[name])

    def _quantize_constant(self, t: int, q: Quantization, dtype: np.dtype) -> None:
        data = np.asarray(self.sg.tensors[t].data, np.float64)
        lo, hi = (-128, 127) if dtype == np.int8 else (-32768, 32767)
        v = np.clip(np.round(data / float(q.scales[0])) + int(q.zero_points[0]), lo, hi)
        self.tensors[t] = self._with(t, dtype, q, v.astype(dtype))

    def _with(self, t: int, dtype: np.dtype, q: Quantization, data: np.ndarray | None = None) -> Tensor:
        new = copy.copy(self.tensors[t])
        new.type = type_code_of(dtype)
        new.quantization = q
        if data is not None:
            new.data = data
            new.buffer = 0
        return new

    def _weights(self, op: Op, qin: Quantization) -> None:
        wi, axis = _WEIGHTED[op.name]
        w = np.asarray(self.sg.tensors[op.inputs[wi]].data, np.float64)
        if w is None or self.sg.tensors[op.inputs[wi]].data is None:
            raise ValueError(f"quantize: {op.name}'s weights are not a constant")
        if self.per_channel:
            red = tuple(i for i in range(w.ndim) if i != axis)
            m = np.max(np.abs(w), axis=red)
        else:
            m = np.array([np.max(np.abs(w))])
        scales = np.where(m > 0, m / 127.0, 1.0).astype(np.float32)
        shape = [1] * w.ndim
        if scales.size > 1:
            shape[axis] = -1
        wq = np.clip(np.round(w / scales.astype(np.float64).reshape(shape)), -127, 127).astype(np.int8)
        wqp = Quantization(scales=scales, zero_points=np.zeros(scales.size, np.int64),
                           quantized_dimension=axis if scales.size > 1 else 0)
        self.tensors[op.inputs[wi]] = self._with(op.inputs[wi], np.dtype(np.int8), wqp, wq)
        if len(op.inputs) > 2 and op.inputs[2] >= 0 and self.sg.tensors[op.inputs[2]].data is not None:
            b = np.asarray(self.sg.tensors[op.inputs[2]].data, np.float64).reshape(-1)
            bs = (np.float32(qin.scales[0]) * scales).astype(np.float32)
            bs = np.broadcast_to(bs, b.shape).astype(np.float32)
            bdt = np.dtype(np.int64) if self.act == np.int16 else np.dtype(np.int32)
            info = np.iinfo(bdt)
            bq = np.clip(np.round(b / bs.astype(np.float64)), info.min, info.max).astype(bdt)
            bqp = Quantization(scales=bs, zero_points=np.zeros(bs.size, np.int64))
            self.tensors[op.inputs[2]] = self._with(op.inputs[2], bdt, bqp, bq.reshape(self.sg.tensors[op.inputs[2]].shape))

    def run(self) -> Model:
        qops = self._quantized_ops()
        params = self._params(qops)
        graph_in = set(self.sg.inputs)
        # Which float tensors hold integers in the new graph: outputs of quantized ops, quantized
        # constants, and graph inputs given an integer interface.
        producer = {t: i for i, op in enumerate(self.sg.ops) for t in op.outputs}
        quantized_tensor = {}
        for t, q in params.items():
            p = producer.get(t)
            const = self.sg.tensors[t].data is not None
            if const or (p is not None and qops[p]) or (t in graph_in and self.in_t != F32):
                quantized_tensor[t] = q
        # 16x8 PRELU takes an int8 alpha (a weight; LiteRT's int16 kernel reads alpha as int8)
        int8_alpha = {op.inputs[1] for op, q in zip(self.sg.ops, qops)
                      if q and op.name == "PRELU" and self.act == np.int16 and len(op.inputs) > 1}
        for t, q in quantized_tensor.items():
            if self.sg.tensors[t].data is not None and t in int8_alpha:
                s8, z8 = affine_params(*self._range_of([t]), np.dtype(np.int8))
                q8 = Quantization(scales=np.array([s8], np.float32), zero_points=np.array([z8], np.int64))
                self._quantize_constant(t, q8, np.dtype(np.int8))
            elif self.sg.tensors[t].data is not None:
                self._quantize_constant(t, q, self.act)
            else:
                self.tensors[t] = self._with(t, self.act, q)
        for op, q in zip(self.sg.ops, qops):
            if q and op.name in _WEIGHTED:
                self._weights(op, params[op.inputs[0]])
        int_copy: dict[int, int] = {}  # float tensor -> its quantized twin (QUANTIZE output)
        float_copy: dict[int, int] = {}  # quantized tensor -> its float twin (DEQUANTIZE output)
        new_ops: list[Op] = []
        for op, q in zip(self.sg.ops, qops):
            ins = list(op.inputs)
            for j, t in enumerate(ins):
                if t < 0 or not self._is_float(t) or self.sg.tensors[t].data is not None and q:
                    continue
                if q and t not in quantized_tensor:  # float value into an integer op
                    if t not in int_copy:
                        int_copy[t] = self._new_tensor(t, self.act, params[t], "_int")
                        new_ops.append(self._op("QUANTIZE", [t], [int_copy[t]]))
                    ins[j] = int_copy[t]
                elif not q and t in quantized_tensor:  # integer value into a float op
                    if t not in float_copy:
                        float_copy[t] = self._new_tensor(t, F32, None, "_float")
                        new_ops.append(self._op("DEQUANTIZE", [t], [float_copy[t]]))
                    ins[j] = float_copy[t]
            new_ops.append(Op(**{**op.__dict__, "inputs": tuple(ins)}))
        outputs = list(self.sg.outputs)
        for k, t in enumerate(outputs):
            if t in quantized_tensor and self.out_t == F32:
                # the graph output keeps its id (signatures name it): rename the integer tensor
                twin = self._new_tensor(t, F32, None, "")
                self.tensors[twin], self.tensors[t] = self.tensors[t], self.tensors[twin]
                self.tensors[twin].name += "_int"
                self._retarget(new_ops, t, twin)
                new_ops.append(self._op("DEQUANTIZE", [twin], [t]))
            elif t not in quantized_tensor and self._is_float(t) and self.out_t != F32 and t in params:
                twin = self._new_tensor(t, self.act, params[t], "_int")
                new_ops.append(self._op("QUANTIZE", [t], [twin]))
                outputs[k] = twin
        renamed = dict(zip(self.sg.outputs, outputs))
        sg = copy.copy(self.sg)
        sg.tensors, sg.ops, sg.outputs = self.tensors, new_ops, tuple(outputs)
        out = copy.copy(self.src)
        out.subgraphs = [sg]
        out.signatures = [dataclasses.replace(s, outputs={k: renamed.get(v, v) for k, v in s.outputs.items()})
                          for s in self.src.signatures]
        out.source = None
        return out

    @staticmethod
    def _retarget(ops_: list[Op], old: int, new: int) -> None:
        for i, op in enumerate(ops_):
            if old in op.inputs or old in op.outputs:
                ops_[i] = Op(**{**op.__dict__,
                                "inputs": tuple(new if t == old else t for t in op.inputs),
                                "outputs": tuple(new if t == old else t for t in op.outputs)})
