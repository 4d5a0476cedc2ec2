"""Detail dicts on whole models against LiteRT (issue #18): get_input_details, get_output_details,
get_signature_list, every signature runner's details and get_tensor_details of every subgraph,
key by key, after construction, after allocate_tensors() and after the first invoke, on every
model the tests have or build (tests/data, the zoo and its quantized forms, the API, control-flow
and sparse test models), plus one model for each difference the issue found:

1. a sparse constant without block_map: LiteRT leaves the key out (with an empty one it lists it);
2. RESOURCE (VAR_HANDLE) tensors: dtype numpy.object_;
3. a slice by a computed size: LiteRT stops preparing at that node, so until invoke it and every
   later node keep the shape they had (the file's placeholder, or the last run's) and no memory;
4. kernel scratch tensors: LiteRT lists its kernels' temporaries after the model's tensors; we
   list only the model's tensors, whose dicts must equal LiteRT's restricted to the model's indices
   (docs/api-differences.md).

Found on the way and matched too: which ops LiteRT computes at Prepare (pinned op by op, since
that decides where it stops), DENSIFY renaming its output, the dtypes of FLOAT8 and BFLOAT16.
"""

from __future__ import annotations

import gc
import pathlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tflite_jit
from tests import test_control_flow as control_flow
from tests import test_interpreter_api as api
from tests.ops.test_sparse import encode
from tests.test_models_e2e import SMALL, small_model
from tflite_jit import quantizer
from tflite_jit.format.builder import ModelBuilder
from tflite_jit.format.reader import load_bytes
from tflite_jit.format.writer import write_model
from tflite_jit.ir.model import TENSOR_TYPE_CODES, Quantization, Sparsity

lite_rt = pytest.importorskip("ai_edge_litert.interpreter")

I32, F32 = np.int32, np.float32
DATA = pathlib.Path(__file__).parent / "data"

# ---- models showing each difference ------------------------------------------------------------


def sparse_model(block_map: tuple[int, ...] | None) -> bytes:
    """DENSIFY of a CSR constant; block_map None writes no block_map field at all (MediaPipe's
    sparse detectors), () an empty one, (1,) a 1x4-blocked layout."""
    dense = np.array([[0, 1, 0, 0, 0, 0, 0, 0], [2, 0, 0, 3, 4, 5, 6, 7]], F32)
    values, sp = encode(dense, 4 if block_map else 1)
    sp = Sparsity(sp.traversal_order, block_map, sp.dim_metadata)
    mb = ModelBuilder()
    g = mb.subgraph()
    w = g.tensor("w", dense.shape, F32, data=values, sparsity=sp)
    d = g.tensor("d", dense.shape, F32)
    g.op("DENSIFY", [w], [d])
    x = g.input("x", dense.shape, F32)
    (y,) = g.apply("ADD", [x, d])
    g.output(y)
    return mb.build()


def audio_model(n: int = 44032, frame: int = 512) -> bytes:
    """An audio front end as the converter writes one: frames = x[:, :(len // frame) * frame],
    the size computed from SHAPE (FLOOR_DIV, which LiteRT does not compute at Prepare), so the
    SLICE output and everything after it are written with placeholder shapes ([1, 1], -1 in
    shape_signature). `level` is a static node after the SLICE."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, n), F32, shape_signature=(1, -1))
    s = g.tensor("s", (2,), I32)
    g.op("SHAPE", [x], [s], out_type="INT32")
    length = g.tensor("length", (), I32)
    g.op("STRIDED_SLICE", [s, g.const("b", np.array([1], I32)), g.const("e", np.array([2], I32)),
                           g.const("st", np.array([1], I32))], [length], shrink_axis_mask=1)
    count = g.tensor("count", (), I32)
    g.op("FLOOR_DIV", [length, g.const("frame", np.array(frame, I32))], [count])
    used = g.tensor("used", (), I32)
    g.op("MUL", [count, g.const("frame2", np.array(frame, I32))], [used])
    size = g.tensor("size", (2,), I32)
    g.op("PACK", [g.const("one", np.array(1, I32)), used], [size], values_count=2, axis=0)
    y = g.tensor("y", (1, 1), F32, shape_signature=(1, -1))
    g.op("SLICE", [x, g.const("begin", np.zeros(2, I32)), size], [y])
    frames = g.tensor("frames", (1, 1, frame), F32, shape_signature=(1, -1, frame))
    g.op("RESHAPE", [y, g.const("fs", np.array([1, -1, frame], I32))], [frames])
    energy = g.tensor("energy", (1, 1), F32, shape_signature=(1, -1))
    g.op("SUM", [frames, g.const("ax", np.array([2], I32))], [energy], keep_dims=False)
    level = g.tensor("level", (1, n), F32, shape_signature=(1, -1))
    g.op("TANH", [x], [level])
    g.output(energy, level)
    return mb.build()


def hybrid(model: bytes) -> bytes:
    """The dynamic-range form of a float model, as the converter's weight-only quantization
    writes it: CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED weights int8 symmetric per output
    channel, activations float."""
    m = load_bytes(model)
    sg = m.subgraphs[0]
    axis = {"CONV_2D": 0, "FULLY_CONNECTED": 0, "DEPTHWISE_CONV_2D": 3}
    for op in sg.ops:
        if op.name not in axis or sg.tensors[op.inputs[1]].data is None:
            continue
        t = sg.tensors[op.inputs[1]]
        w = np.asarray(t.data, F32)
        other = tuple(a for a in range(w.ndim) if a != axis[op.name])
        scale = np.maximum(np.abs(w).max(axis=other), 1e-8) / 127
        q = np.clip(np.round(w / np.expand_dims(scale, other)), -127, 127).astype(np.int8)
        t.type, t.data = TENSOR_TYPE_CODES["INT8"], q
        t.quantization = Quantization(scales=scale.astype(F32), zero_points=np.zeros(scale.size, np.int64),
                                      quantized_dimension=axis[op.name])
    return write_model(m)


def quantized(model: bytes, activations: str) -> bytes:
    rng = np.random.default_rng(0)
    shape = tuple(load_bytes(model).subgraphs[0].tensors[load_bytes(model).subgraphs[0].inputs[0]].shape)
    return quantizer.quantize(model, [[rng.uniform(-1, 1, shape).astype(F32)] for _ in range(2)],
                              activations=activations)


# ---- the comparison ----------------------------------------------------------------------------


def own_tensor_counts(data: bytes) -> list[int]:
    return [len(sg.tensors) for sg in load_bytes(data).subgraphs]


def details(it: Any, counts: list[int]) -> dict[str, Any]:
    """Every detail dict the API offers. get_tensor_details keeps the model's own tensors only
    (difference 4). Subgraphs that only control flow runs (loop bodies, branches) are compared
    without shapes: LiteRT sizes them with each call, we report their file shapes (docs)."""
    out: dict[str, Any] = {"inputs": it.get_input_details(), "outputs": it.get_output_details(),
                           "signatures": it.get_signature_list()}
    own = {0}
    for key in it.get_signature_list():
        runner = it.get_signature_runner(key)
        out[f"runner {key}"] = (runner.get_input_details(), runner.get_output_details())
        own.add(runner._subgraph_index)
        del runner  # a live runner blocks invoke()
    for si, n in enumerate(counts):
        out[f"tensors {si}"] = [d if si in own else {k: v for k, v in d.items() if k != "shape"}
                                for d in it.get_tensor_details(si) if d["index"] < n]
    return out


def data_shapes(it: Any, n: int) -> dict[int, Any]:
    """The shape of tensor()/get_tensor() for each tensor of subgraph 0, or 'null' where there is
    no data. Strings are left out (LiteRT crashes reading an unset one), and so are sparse
    constants (LiteRT returns the stored values, we the dense tensor: docs)."""
    shapes = {}
    for d in it.get_tensor_details():
        if d["index"] >= n or np.dtype(d["dtype"]).kind in "SO" or d["sparsity_parameters"]:
            continue
        try:
            shapes[d["index"]] = it.get_tensor(d["index"]).shape
            assert it.tensor(d["index"])().shape == shapes[d["index"]]  # the view dies here
        except ValueError as e:
            assert "Tensor data is null" in str(e), e
            shapes[d["index"]] = "null"
    return shapes


def assert_same_data_shapes(ours: dict[int, Any], theirs: dict[int, Any], unused: set[int], where: str) -> None:
    """'null' wherever LiteRT has no data yet, and the same shape wherever both have data. Ours
    may have none where LiteRT's memory holds nothing defined: a tensor fused into a kernel, or
    one sized only when produced (LiteRT sizes it from placeholders). A tensor nothing reads
    has a zero buffer with us, none in LiteRT (which drops unread WHILE outputs, for one)."""
    assert ours.keys() == theirs.keys(), where
    for t, shape in theirs.items():
        if (ours[t] == "null" and shape != "null") or (t in unused and ours[t] != "null"):
            continue
        assert ours[t] == shape, f"{where}: tensor {t} data shape {ours[t]} != LiteRT {shape}"


def feed(it: Any, inputs: list[np.ndarray]) -> None:
    for d, x in zip(it.get_input_details(), inputs):
        it.set_tensor(d["index"], x)


def example_inputs(data: bytes) -> list[np.ndarray]:
    """Floats uniform in [-1, 1]; integers and booleans zero (loop counters, token ids, flags)."""
    rng = np.random.default_rng(0)
    it = api.make(lite_rt, data)
    return [rng.uniform(-1, 1, d["shape"]).astype(d["dtype"]) if np.dtype(d["dtype"]).kind == "f"
            else np.zeros(d["shape"], d["dtype"]) for d in it.get_input_details()]


def compare(data: bytes) -> tuple[Any, Any]:
    """Construct, allocate, invoke and run every signature on both interpreters, comparing every
    detail dict (and tensor data shapes) after each step. Returns both interpreters."""
    counts = own_tensor_counts(data)
    inputs = example_inputs(data)
    ours = tflite_jit.Interpreter(model_content=data, backend="reference")
    theirs = api.make(lite_rt, data)
    sg0 = load_bytes(data).subgraphs[0]
    read = {t for op in sg0.ops for t in op.inputs} | set(sg0.outputs)
    unused = set(range(counts[0])) - read

    def check(step: str, with_data: bool = True) -> None:
        api.deep_compare(details(ours, counts), details(theirs, counts), step)
        if with_data:
            assert_same_data_shapes(data_shapes(ours, counts[0]), data_shapes(theirs, counts[0]), unused, step)

    check("constructed", with_data=False)
    for it in (ours, theirs):
        it.allocate_tensors()
    check("allocated")
    for it in (ours, theirs):
        feed(it, inputs)
        it.invoke()
    check("invoked")
    by_index = {d["index"]: x for d, x in zip(theirs.get_input_details(), inputs)}
    for key in theirs.get_signature_list():
        runner = theirs.get_signature_runner(key)
        kwargs = {n: by_index[d["index"]] if runner._subgraph_index == 0 else np.zeros(d["shape"], d["dtype"])
                  for n, d in runner.get_input_details().items()}
        del runner
        gc.collect()
        for it in (ours, theirs):
            it.get_signature_runner(key)(**kwargs)
            gc.collect()
        check(f"signature {key} ran", with_data=False)
    return ours, theirs


# ---- the four differences ----------------------------------------------------------------------


@pytest.mark.parametrize("block_map", [None, (), (1,)], ids=["absent", "empty", "blocked"])
def test_sparsity_parameters_list_block_map_only_when_the_file_has_one(block_map: Any) -> None:
    ours, theirs = compare(sparse_model(block_map))
    (w,) = [d for d in ours.get_tensor_details() if d["sparsity_parameters"]]
    assert ("block_map" in w["sparsity_parameters"]) == (block_map is not None)


def test_sparsity_block_map_absence_round_trips() -> None:
    for block_map in (None, (), (1,)):
        (sp,) = [t.sparsity for t in load_bytes(sparse_model(block_map)).subgraphs[0].tensors if t.sparsity]
        assert sp.block_map == block_map


def test_resource_tensors_are_objects() -> None:
    ours, _ = compare(control_flow.variable_model())
    handle = next(d for d in ours.get_tensor_details() if d["name"] == "h")
    assert handle["dtype"] is np.object_
    ops = ours._get_ops_details()
    assert ops[1]["result_types"] == [np.object_] and ops[2]["operand_types"] == [np.object_]


@pytest.mark.parametrize("name", ["RESOURCE", "VARIANT", "FLOAT8_E4M3FN", "FLOAT8_E5M2", "BFLOAT16"])
def test_detail_dtype_of_types_numpy_lacks(name: str) -> None:
    """An unused tensor of each type: LiteRT names handles and variants numpy.object_, FLOAT8
    int8, and leaves BFLOAT16 tensors out of get_tensor_details (it cannot describe them)."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (2,), F32)
    (y,) = g.apply("RELU", [x])
    g.output(y)
    g.tensor("t", (2,), TENSOR_TYPE_CODES[name])
    compare(mb.build())


def test_run_time_shapes_before_and_after_invoke() -> None:
    """LiteRT sizes nodes in order until SLICE (its size is computed by FLOOR_DIV, known only at
    run time): SLICE and every later node, even the static TANH, keep the file's shapes and have
    no data until invoke; after invoke all have their run-time shapes; after a resize and a new
    allocation they keep the last run's shapes until the next invoke."""
    data = audio_model()
    ours, theirs = compare(data)
    placeholder = {"y": [1, 1], "frames": [1, 1, 512], "energy": [1, 1], "level": [1, 44032]}
    fresh = tflite_jit.Interpreter(model_content=data, backend="reference")
    fresh.allocate_tensors()
    shapes = {d["name"]: d["shape"].tolist() for d in fresh.get_tensor_details()}
    assert {k: shapes[k] for k in placeholder} == placeholder
    assert shapes["size"] == [2] and shapes["x"] == [1, 44032]
    for it in (ours, theirs):
        it.resize_tensor_input(0, [1, 2048])
        it.allocate_tensors()
    api.deep_compare(details(ours, own_tensor_counts(data)), details(theirs, own_tensor_counts(data)))
    last_run = {d["name"]: d["shape"].tolist() for d in ours.get_tensor_details()}
    assert last_run["frames"] == [1, 86, 512] and last_run["level"] == [1, 44032]
    for it in (ours, theirs):
        it.set_tensor(0, np.ones((1, 2048), F32))
        it.invoke()
    api.deep_compare(details(ours, own_tensor_counts(data)), details(theirs, own_tensor_counts(data)))
    assert ours.get_output_details()[0]["shape"].tolist() == [1, 4]


def test_run_time_shapes_through_a_signature_runner() -> None:
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 8), F32, shape_signature=(1, -1))
    half = g.tensor("half", (), I32)
    n = g.tensor("n", (), I32)
    s = g.tensor("s", (2,), I32)
    g.op("SHAPE", [x], [s], out_type="INT32")
    g.op("GATHER", [s, g.const("i", np.array(1, I32))], [n], axis=0)
    g.op("FLOOR_DIV", [n, g.const("two", np.array(2, I32))], [half])
    size = g.tensor("size", (1,), I32)
    g.op("RESHAPE", [half, g.const("one", np.array([1], I32))], [size])
    y = g.tensor("y", (1,), F32, shape_signature=(-1,))
    g.op("SLICE", [g.const("v", np.arange(8, dtype=F32)), g.const("b", np.zeros(1, I32)), size], [y])
    g.output(y)
    mb.signature("serving_default", {"x": x}, {"y": y})
    ours, theirs = compare(mb.build())
    assert ours.get_signature_runner().get_output_details()["y"]["shape"].tolist() == [4]


def _vector(g: Any, name: str, ins: list[int], shape: tuple[int, ...], dtype: Any = I32, **options: Any) -> int:
    return g.op(name, ins, [g.tensor(name.lower(), shape, dtype)], **options)[0]


def _c(g: Any, value: Any, dtype: Any = I32) -> int:
    return g.const(f"c{len(g.sg.tensors)}", np.array(value, dtype))


#: op -> a small positive int vector from s = SHAPE(x) = [3, 5, 7] through that op (LiteRT computes
#: it at Prepare, or not: _AT_PREPARE_IF_KNOWN in tflite_jit.interpreter).
CHAINS: dict[str, Callable[[Any, int], int]] = {
    "MUL": lambda g, s: _vector(g, "MUL", [s, _c(g, [1, 1, 1])], (3,)),
    "RESHAPE": lambda g, s: _vector(g, "RESHAPE", [s, _c(g, [3])], (3,)),
    "STRIDED_SLICE": lambda g, s: _vector(g, "STRIDED_SLICE", [s, _c(g, [1]), _c(g, [3]), _c(g, [1])], (2,)),
    "GATHER": lambda g, s: _vector(g, "GATHER", [s, _c(g, [2, 0])], (2,), axis=0),
    "CONCATENATION": lambda g, s: _vector(g, "CONCATENATION", [s, _c(g, [2])], (4,), axis=0),
    "TILE": lambda g, s: _vector(g, "TILE", [s, _c(g, [1])], (3,)),
    "BROADCAST_ARGS": lambda g, s: _vector(g, "BROADCAST_ARGS", [s, _c(g, [1])], (3,)),
    "REDUCE_PROD": lambda g, s: _vector(g, "REDUCE_PROD", [s, _c(g, [0])], (1,), keep_dims=True),
    "RANGE": lambda g, s: _vector(g, "RANGE", [_c(g, 1), _vector(g, "GATHER", [s, _c(g, 0)], (), axis=0),
                                               _c(g, 1)], (2,)),
    "ADD": lambda g, s: _vector(g, "ADD", [s, _c(g, [0, 0, 0])], (3,)),
    "SUB": lambda g, s: _vector(g, "SUB", [s, _c(g, [0, 0, 0])], (3,)),
    "FLOOR_DIV": lambda g, s: _vector(g, "FLOOR_DIV", [s, _c(g, [1, 1, 1])], (3,)),
    "MAXIMUM": lambda g, s: _vector(g, "MAXIMUM", [s, _c(g, [1, 1, 1])], (3,)),
    "SLICE": lambda g, s: _vector(g, "SLICE", [s, _c(g, [1]), _c(g, [2])], (2,)),
    "REDUCE_MAX": lambda g, s: _vector(g, "REDUCE_MAX", [s, _c(g, [0])], (1,), keep_dims=True),
    "PACK": lambda g, s: _vector(g, "PACK", [_vector(g, "GATHER", [s, _c(g, 0)], (), axis=0), _c(g, 2)], (2,),
                                 values_count=2, axis=0),
    "CAST": lambda g, s: _vector(g, "CAST", [s], (3,), np.int64),
}


@pytest.mark.parametrize("op", list(CHAINS))
def test_values_known_at_prepare_as_litert(op: str) -> None:
    """FILL(dims computed from SHAPE through `op`): static for LiteRT when it computes `op` at
    Prepare, else FILL and the later TANH keep their placeholders until invoke."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (3, 5, 7), F32)
    s = _vector(g, "SHAPE", [x], (3,), out_type="INT32")
    dims = CHAINS[op](g, s)
    rank = g.sg.tensors[dims].shape[0]
    filled = _vector(g, "FILL", [dims, g.const("one", np.array(1.0, F32))], (1,) * rank, F32)
    g.sg.tensors[filled].shape_signature = (-1,) * rank
    (t,) = g.apply("TANH", [x])
    g.output(filled, t)
    compare(mb.build())


def test_transpose_conv_reads_only_a_constant_output_shape() -> None:
    """TRANSPOSE_CONV sizes its output at Prepare from a constant output_shape only; computed at
    Prepare (GATHER of constants) is not enough, unlike every other shape input we measured."""
    mb = ModelBuilder()
    g = mb.subgraph()
    x = g.input("x", (1, 3, 3, 2), F32)
    shape = _vector(g, "GATHER", [_c(g, [1, 6, 6, 4]), _c(g, [0, 1, 2, 3])], (4,), axis=0)
    y = g.tensor("y", (1, 1, 1, 1), F32, shape_signature=(-1, -1, -1, -1))
    g.op("TRANSPOSE_CONV", [shape, g.const("w", np.ones((4, 3, 3, 2), F32)), x], [y], padding="SAME",
         stride_w=2, stride_h=2)
    g.output(y)
    compare(mb.build())


@pytest.mark.parametrize("form", ["hybrid", "int8", "int16"])
def test_scratch_tensors_are_not_listed(form: str) -> None:
    """LiteRT's kernels add temporaries (quantized inputs, scaling factors, im2col, accumulators)
    after the model's tensors at allocation; we list the model's tensors only, equal to LiteRT's
    restricted to the model's indices, so code indexing by position sees the same list."""
    float_model = small_model("mobilenet_v2")
    data = hybrid(float_model) if form == "hybrid" else quantized(float_model, form)
    ours, theirs = compare(data)
    n = own_tensor_counts(data)[0]
    mine, lite = ours.get_tensor_details(), theirs.get_tensor_details()
    assert [d["index"] for d in mine] == list(range(n))
    extra = lite[n:]
    assert extra and [d["index"] for d in extra] == list(range(n, n + len(extra)))  # after the model's
    with pytest.raises(ValueError, match=f"Invalid tensor index {n} exceeds max tensor index {n}"):
        ours.get_tensor(n)


# ---- the parity suite: every model the tests have or build -------------------------------------

BUILT: dict[str, Callable[[], bytes]] = {
    "api_two_io": lambda: api.TWO_IO, "api_dynamic": lambda: api.DYN, "api_dynamic_signature": lambda: api.DYN_SIG,
    "api_two_signatures": lambda: api.TWO_SIG, "api_quant": lambda: api.QUANT, "api_conv": lambda: api.CONV,
    "api_fc_no_bias": api.fc_no_bias_model, "api_variable": api.variable_model,
    "while": control_flow.while_model, "growing_while": control_flow.growing_while_model,
    "if": control_flow.if_model, "resource_variable": control_flow.variable_model,
    "two_signatures_loop": control_flow.two_signature_model,
    "sparse_absent": lambda: sparse_model(None), "sparse_empty": lambda: sparse_model(()),
    "sparse_blocked": lambda: sparse_model((1,)), "audio": audio_model,
    **{f"zoo_{name}": (lambda name=name: small_model(name)) for name in SMALL},  # SMALL: the whole zoo
    # MediaPipe's custom-op models are left out: LiteRT's builtin resolver cannot prepare them
    # (only its XNNPACK delegate runs Convolution2DTransposeBias); tests/test_mediapipe_ops.py
    # checks them against XNNPACK and against NumPy implementations of the ops
    **{f"tf_{p.stem}": (lambda p=p: p.read_bytes()) for p in sorted(DATA.glob("*.tflite"))
       if not p.stem.startswith("mediapipe_")},
}


@pytest.mark.parametrize("name", sorted(BUILT))
def test_details_match_litert(name: str) -> None:
    compare(BUILT[name]())
