"""End-to-end checks of the synthetic model zoo (tflite_jit.tools.models).

Each model is run on LiteRT (builtin kernels and XNNPACK) to check that the graph is valid and the
random weights give informative outputs (finite, not constant), then on our Interpreter, which must
match LiteRT's builtin kernels under the float contract (tests.oracle.assert_close). Reduced sizes
keep the run short; full-size models are only built and allocated.
"""

from __future__ import annotations

import functools
import time
from collections import Counter

import numpy as np
import pytest

from tests.oracle import assert_close, litert_interpreter, litert_run
from tflite_jit.format.reader import load_bytes
from tflite_jit.format.schema import enum_values
from tflite_jit.tools import models

#: Reduced configurations: same topology, small enough for a quick test run.
SMALL: dict[str, dict] = {
    "tiny_convnet": {},
    "mobilenet_v1": dict(input_size=96, alpha=0.25),
    "mobilenet_v2": dict(input_size=96, alpha=0.35),
    "mobilenet_v3_small": dict(input_size=96),
    "efficientnet_b0": dict(input_size=64),
    "resnet50": dict(input_size=64),
    "transformer_encoder": dict(seq_len=32, d_model=64, num_heads=4, d_ff=128, num_layers=2),
}

#: Ops each topology must contain, as the TF converter emits them.
EXPECTED_OPS: dict[str, set[str]] = {
    "tiny_convnet": {"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "ADD", "AVERAGE_POOL_2D", "RESHAPE",
                     "FULLY_CONNECTED", "SOFTMAX"},
    "mobilenet_v1": {"CONV_2D", "DEPTHWISE_CONV_2D", "PAD", "AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX"},
    "mobilenet_v2": {"CONV_2D", "DEPTHWISE_CONV_2D", "PAD", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"},
    "mobilenet_v3_small": {"CONV_2D", "DEPTHWISE_CONV_2D", "PAD", "HARD_SWISH", "RELU6", "MEAN",
                           "ADD", "MUL", "RESHAPE", "SOFTMAX"},
    "efficientnet_b0": {"CONV_2D", "DEPTHWISE_CONV_2D", "PAD", "LOGISTIC", "MUL", "MEAN", "RESHAPE", "ADD",
                        "FULLY_CONNECTED", "SOFTMAX"},
    "resnet50": {"PAD", "CONV_2D", "MAX_POOL_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX"},
    "transformer_encoder": {"GATHER", "ADD", "SUB", "MUL", "EXPAND_DIMS", "RESHAPE", "MEAN",
                            "SQUARED_DIFFERENCE", "RSQRT", "FULLY_CONNECTED", "TRANSPOSE", "BATCH_MATMUL",
                            "SOFTMAX", "GELU"},
}

CLASSIFIERS = set(SMALL) - {"transformer_encoder"}


@functools.cache
def small_model(name: str) -> bytes:
    return models.build(name, **SMALL[name])


def make_inputs(model: bytes, seed: int = 1) -> list[np.ndarray]:
    """Images uniform in [-1, 1]; token ids in [0, 1000); an attention mask with the last quarter off."""
    rng = np.random.default_rng(seed)
    it = litert_interpreter(model)
    out = []
    for d in it.get_input_details():
        shape = tuple(d["shape"])
        if d["dtype"] == np.int32:
            out.append(rng.integers(0, 1000, shape, dtype=np.int32))
        elif "mask" in d["name"]:
            mask = np.ones(shape, np.float32)
            mask[:, -shape[1] // 4:] = 0
            out.append(mask)
        else:
            out.append(rng.uniform(-1, 1, shape).astype(np.float32))
    return out


def ours_run(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run subgraph 0 on our Interpreter, driven exactly as tests.oracle.litert_run drives LiteRT."""
    from tflite_jit import Interpreter

    it = Interpreter(model_content=model)
    details = it.get_input_details()
    it.allocate_tensors()
    for d, x in zip(details, inputs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def check_sane(name: str, y: np.ndarray) -> None:
    assert np.isfinite(y).all(), f"{name}: non-finite outputs"
    assert float(np.std(y)) > 0, f"{name}: constant output"
    if name in CLASSIFIERS:
        np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-4)
        # informative: the top class stands out from a uniform distribution
        assert y.max() > 2.0 / y.shape[-1], f"{name}: softmax is nearly uniform"
    else:
        assert 0.1 < float(np.std(y)) < 10, f"{name}: hidden state std {np.std(y)} is not O(1)"


# ---- the zoo itself ---------------------------------------------------------------------------

def test_registry() -> None:
    assert set(models.ZOO) == set(SMALL)
    with pytest.raises(ValueError, match="unknown model"):
        models.build("nope")


def test_deterministic_in_seed() -> None:
    assert models.tiny_convnet(seed=3) == models.tiny_convnet(seed=3)
    assert models.tiny_convnet(seed=3) != models.tiny_convnet(seed=4)
    kw = SMALL["transformer_encoder"]
    assert models.transformer_encoder(**kw, seed=5) == models.transformer_encoder(**kw, seed=5)


def test_tiny_convnet_is_a_fast_small_demo() -> None:
    t0 = time.perf_counter()
    data = models.tiny_convnet()
    assert time.perf_counter() - t0 < 1.0
    assert len(data) < 1_000_000


def test_make_divisible() -> None:
    assert [models.make_divisible(v) for v in (32 * 0.35, 16 * 0.35, 1280, 72, 4)] == [16, 8, 1280, 72, 8]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_topology(name: str) -> None:
    """The graph uses the ops the converter emits for this architecture and loads on LiteRT."""
    it = litert_interpreter(small_model(name))
    it.allocate_tensors()
    ops = {o["op_name"] for o in it._get_ops_details()}
    assert EXPECTED_OPS[name] <= ops, f"{name} lacks {sorted(EXPECTED_OPS[name] - ops)}"
    assert list(it.get_signature_list()) == ["serving_default"]
    assert it.get_signature_list()["serving_default"]["outputs"] == ["output_0"]


def test_mobilenet_v2_block_structure() -> None:
    """17 inverted residual blocks; ADD exactly where stride is 1 and channels match (10 of them)."""
    it = litert_interpreter(models.mobilenet_v2(input_size=96, alpha=1.0))
    names = [o["op_name"] for o in it._get_ops_details()]
    assert names.count("ADD") == 10
    assert names.count("DEPTHWISE_CONV_2D") == 17
    assert names.count("PAD") == 4
    assert names[-3:] == ["MEAN", "FULLY_CONNECTED", "SOFTMAX"]


def test_resnet50_block_structure() -> None:
    """53 convs (stem + 16 bottlenecks * 3 + 4 projection shortcuts); RELU fused where the
    converter fuses it: every ADD, the stem and the first two convs of each bottleneck."""
    graph = load_bytes(models.resnet50(input_size=64)).subgraphs[0]
    fused = Counter((o.name, o.options.get("fused_activation_function")) for o in graph.ops)
    relu = enum_values("ActivationFunctionType")["RELU"]
    assert fused[("CONV_2D", relu)] == 1 + 16 * 2
    assert fused[("CONV_2D", 0)] == 16 + 4
    assert fused[("ADD", relu)] == 16


# ---- LiteRT sanity and our interpreter against LiteRT -------------------------------------------

@pytest.mark.parametrize("resolver", ["builtin", "xnnpack"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_litert_outputs_are_sane(name: str, resolver: str) -> None:
    data = small_model(name)
    inputs = make_inputs(data)
    (y,) = litert_run(data, inputs, resolver=resolver)
    check_sane(name, y)
    if resolver == "xnnpack":  # different kernels, same model: close to the builtin result
        (ref,) = litert_run(data, inputs, resolver="builtin")
        assert_close(y, ref, rtol=1e-3, what=f"{name} xnnpack vs builtin")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_ours_matches_litert(name: str) -> None:
    data = small_model(name)
    inputs = make_inputs(data)
    theirs = litert_run(data, inputs, resolver="builtin")
    ours = ours_run(data, inputs)
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert_close(a, b, what=f"{name} output {i}")
        # softmax outputs are far below 1, where the contract's absolute floor is lenient: hold
        # them to 1e-4 of their own scale too (about 1e-4 absolute on the logits)
        assert_close(a / np.abs(b).max(), b / np.abs(b).max(), what=f"{name} output {i} (scaled)")


def test_transformer_mask_hides_tokens() -> None:
    """Masked-out tokens cannot influence the unmasked positions: (1 - mask) * -1e9 zeroes their
    attention weights exactly."""
    data = small_model("transformer_encoder")
    ids, mask = make_inputs(data)
    keep = mask[0] > 0
    ids2 = ids.copy()
    ids2[0, ~keep] = (ids2[0, ~keep] + 1) % 1000
    for run in (lambda d, x: litert_run(d, x, resolver="builtin"), ours_run):
        (a,), (b,) = run(data, [ids, mask]), run(data, [ids2, mask])
        np.testing.assert_allclose(a[:, keep], b[:, keep], rtol=0, atol=1e-5)
        assert not np.allclose(a[:, ~keep], b[:, ~keep])


@pytest.mark.parametrize("name", ["mobilenet_v2", "transformer_encoder"])
def test_serving_default_signature(name: str) -> None:
    """The serving_default signature runs by input name on both interpreters, like a converted model."""
    from tflite_jit import Interpreter

    data = small_model(name)
    inputs = make_inputs(data)
    names = ["input"] if len(inputs) == 1 else ["input_ids", "attention_mask"]
    kwargs = dict(zip(names, inputs))
    theirs = litert_interpreter(data).get_signature_runner("serving_default")(**kwargs)
    ours = Interpreter(model_content=data).get_signature_runner("serving_default")(**kwargs)
    assert set(theirs) == set(ours) == {"output_0"}
    assert_close(ours["output_0"], theirs["output_0"], what=f"{name} serving_default")


def test_transformer_without_mask() -> None:
    data = models.transformer_encoder(**SMALL["transformer_encoder"], mask=False)
    inputs = make_inputs(data)
    assert len(inputs) == 1
    (theirs,) = litert_run(data, inputs)
    check_sane("transformer_encoder", theirs)
    assert_close(ours_run(data, inputs)[0], theirs, what="transformer_encoder (no mask)")


# ---- full-size models: build, load and allocate only (invoking them all would be slow) ----------

FULL_SHAPES = {
    "tiny_convnet": ((1, 64, 64, 3), (1, 10)),
    "mobilenet_v1": ((1, 224, 224, 3), (1, 1000)),
    "mobilenet_v2": ((1, 224, 224, 3), (1, 1000)),
    "mobilenet_v3_small": ((1, 224, 224, 3), (1, 1000)),
    "efficientnet_b0": ((1, 224, 224, 3), (1, 1000)),
    "resnet50": ((1, 224, 224, 3), (1, 1000)),
    "transformer_encoder": ((1, 128), (1, 128, 256)),
}


@pytest.mark.parametrize("name", sorted(FULL_SHAPES))
def test_full_size_builds_and_allocates(name: str) -> None:
    data = models.build(name)
    it = litert_interpreter(data)
    it.allocate_tensors()
    inp, out = FULL_SHAPES[name]
    assert tuple(it.get_input_details()[0]["shape"]) == inp
    assert tuple(it.get_output_details()[0]["shape"]) == out
