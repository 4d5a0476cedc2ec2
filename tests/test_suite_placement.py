"""Every op of every benchmark-suite model runs compiled, or is on an explicit, reasoned list.

The suite (benchmarks/suite: Keras application families in five quantization modes, U-Net,
DeepLab-like, recurrent text models, a transformer, a keyword spotter and the published MediaPipe
models) cannot be downloaded or generated in CI (no TensorFlow). tests/data/suite holds a
*skeleton* of each model instead (tflite_jit.tools.skeleton: the .tflite with its bulk weights
dropped, gzip'ed); the test refills the weights with seeded random data and asks where each op
would run (tflite_jit.tools.placement: the backend's supports() and kernel generation, without
Numba's compilation, so 80 models cost seconds each instead of minutes). The suite's runner
checks that this answer equals the real plan for every model (`dry_placement.matches_real_plan`
in report.json).

An op on `reference` fails the test unless it is in ALLOWED_ON_REFERENCE (decided, with the
reason). A model whose failing ops are all being made to compile on another branch is
xfail(strict=True) in BLOCKED, naming the branch: when that work lands the model passes, the
strict xfail fails, and the entry is deleted. A model whose failing ops nobody is fixing fails.
Regenerate skeletons with `python -m benchmarks.suite skeletons` after `make`.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from tflite_jit.tools.placement import placement
from tflite_jit.tools.skeleton import refill

SUITE = Path(__file__).parent / "data" / "suite"
INDEX = json.loads((SUITE / "index.json").read_text()) if (SUITE / "index.json").exists() else {}

#: op -> why it runs on `reference` by decision, in every suite model
ALLOWED_ON_REFERENCE = {
    "WHILE": "control flow: the op only sequences its cond/body subgraphs, whose own ops are "
             "placed (and checked here) separately; the per-iteration cost is i13-rnn's measure",
    "IF": "control flow: runs one of two subgraphs, whose ops are placed and checked separately",
    "CALL_ONCE": "control flow: runs an initialisation subgraph once, whose ops are checked separately",
}

#: (op, variant) -> the branch making it compile; variant is placement.variant's ('float',
#: 'int8', 'int16', 'hybrid', 'constant', 'other') or '*' for a model that fails to prepare on it;
#: op '*': any op of that variant
_DATA_MOVEMENT = ("PRELU", "PAD", "PADV2", "MIRROR_PAD", "CONCATENATION", "SPLIT", "SPLIT_V", "STRIDED_SLICE",
                  "SLICE", "GATHER", "TRANSPOSE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "SELECT",
                  "SELECT_V2", "DEPTHWISE_CONV_2D", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "PACK", "UNPACK",
                  "TILE", "BROADCAST_TO", "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "DEPTH_TO_SPACE",
                  "SPACE_TO_DEPTH")
IN_PROGRESS: dict[tuple[str, str], str] = {
    **{(op, v): "i13-ops" for op in _DATA_MOVEMENT for v in ("float", "int8", "int16", "other")},
    **{(op, "hybrid"): "i13-hybrid" for op in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D",
                                                "BATCH_MATMUL", "TRANSPOSE_CONV", "EMBEDDING_LOOKUP")},
    **{("TRANSPOSE_CONV", v): "i13-hybrid" for v in ("float", "int8", "int16", "*")},  # '*': issue #15 defect 3
    **{(op, v): "i13-rnn" for op in ("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM",
                                     "UNIDIRECTIONAL_SEQUENCE_RNN", "SVDF")
       for v in ("float", "int8", "int16", "hybrid", "*")},
    ("*", "constant"): "i13-fold",  # any foldable op on constants runs once at prepare time
    **{(op, "*"): "i15-mp" for op in ("Convolution2DTransposeBias", "MaxPoolingWithArgmax2D",
                                      "MaxUnpooling2D", "Landmarks2TransformMatrix", "TransformLandmarks",
                                      "TransformTensorBilinear")},
    # int16 LOGISTIC/TANH kernels; and every op LiteRT runs in int16x8 must prepare (see below)
    **{(op, "int16"): "i15-mp" for op in ("LOGISTIC", "TANH")},
}
#: (quantization mode, variant) -> branch, for ops not named above: i15-mp audits every int16x8 op
#: that fails to prepare
IN_PROGRESS_BY_MODE: dict[tuple[str, str], str] = {("int16x8", "*"): "i15-mp"}

#: model -> its failing ops today, every one IN_PROGRESS (generated from the suite; see the module doc)
BLOCKED: dict[str, list[str]] = {
    "deeplab_dynamic": ["BATCH_TO_SPACE_ND[float]", "CONCATENATION[float]", "CONV_2D[hybrid]",
        "RESIZE_BILINEAR[float]", "SPACE_TO_BATCH_ND[float]"],
    "deeplab_f32": ["BATCH_TO_SPACE_ND[float]", "CONCATENATION[float]", "RESIZE_BILINEAR[float]",
        "SPACE_TO_BATCH_ND[float]"],
    "densenet121_f32": ["CONCATENATION[float]"],
    "efficientnet_b0_f32": ["PACK[constant]", "SHAPE[constant]", "STRIDED_SLICE[constant]"],
    "efficientnet_b0_int8": ["PACK[constant]", "SHAPE[constant]", "STRIDED_SLICE[constant]"],
    "efficientnet_v2_b0_f32": ["PACK[constant]", "SHAPE[constant]", "STRIDED_SLICE[constant]"],
    "kws_audio_dynamic": ["CONV_2D[hybrid]"],
    "mobilenet_v1_f32": ["PACK[constant]", "SHAPE[constant]", "STRIDED_SLICE[constant]"],
    "mobilenet_v1_fp16": ["DEQUANTIZE[constant]", "PACK[constant]", "SHAPE[constant]",
        "STRIDED_SLICE[constant]"],
    "mobilenet_v1_int8": ["PACK[constant]", "SHAPE[constant]", "STRIDED_SLICE[constant]"],
    "mp_face_detection_full_range_sparse": ["DENSIFY[constant]", "DEPTH_TO_SPACE[float]",
        "DEQUANTIZE[constant]", "RESHAPE[float]", "RESIZE_BILINEAR[float]"],
    "mp_face_detection_short_range": ["CONCATENATION[float]", "DEQUANTIZE[constant]"],
    "mp_face_landmark": ["DEQUANTIZE[constant]"],
    "mp_face_landmark_with_attention": ["Landmarks2TransformMatrix[*]"],
    "mp_hand_landmark_full": ["DEQUANTIZE[constant]"],
    "mp_hand_landmark_lite": ["DEQUANTIZE[constant]"],
    "mp_hand_recrop": ["STRIDED_SLICE[float]"],
    "mp_iris_landmark": ["RESHAPE[float]"],
    "mp_palm_detection_full": ["CONCATENATION[float]", "DEQUANTIZE[constant]", "RESIZE_BILINEAR[float]"],
    "mp_palm_detection_lite": ["CONCATENATION[float]", "DEQUANTIZE[constant]", "RESIZE_BILINEAR[float]"],
    "mp_pose_detection": ["CONCATENATION[float]", "DENSIFY[constant]", "DEPTH_TO_SPACE[float]",
        "DEQUANTIZE[constant]", "RESIZE_BILINEAR[float]"],
    "mp_pose_landmark_full": ["DEQUANTIZE[constant]", "RESHAPE[float]", "RESIZE_BILINEAR[float]"],
    "mp_selfie_segmentation": ["Convolution2DTransposeBias[*]"],
    "mp_selfie_segmentation_landscape": ["Convolution2DTransposeBias[*]"],
    "nasnet_mobile_f32": ["CONCATENATION[float]", "STRIDED_SLICE[float]"],
    "text_bilstm_dynamic": ["UNIDIRECTIONAL_SEQUENCE_LSTM[*]"],
    "text_gru_unrolled_f32": ["GATHER[float]", "SPLIT[float]", "SPLIT_V[float]", "UNPACK[float]"],
    "text_gru_while_dynamic": ["FULLY_CONNECTED[hybrid]", "GATHER[float]", "GATHER[int8]", "RESHAPE[float]",
        "SPLIT[float]", "STRIDED_SLICE[float]"],
    "text_gru_while_f32": ["GATHER[float]", "RESHAPE[float]", "SPLIT[float]", "STRIDED_SLICE[float]"],
    "text_lstm_dynamic": ["UNIDIRECTIONAL_SEQUENCE_LSTM[*]"],
    "text_lstm_f32": ["GATHER[float]", "STRIDED_SLICE[float]", "UNIDIRECTIONAL_SEQUENCE_LSTM[float]"],
    "text_lstm_int8": ["UNIDIRECTIONAL_SEQUENCE_LSTM[*]"],
    "text_lstm_unrolled_f32": ["GATHER[float]", "SPLIT[float]", "UNPACK[float]"],
    "text_lstm_while_dynamic": ["FULLY_CONNECTED[hybrid]", "GATHER[float]", "GATHER[int8]", "RESHAPE[float]",
        "SPLIT[float]", "STRIDED_SLICE[float]"],
    "text_lstm_while_f32": ["GATHER[float]", "RESHAPE[float]", "SPLIT[float]", "STRIDED_SLICE[float]"],
    "transformer_dynamic": ["FULLY_CONNECTED[hybrid]", "GATHER[int8]", "TRANSPOSE[float]"],
    "transformer_f32": ["GATHER[float]", "TRANSPOSE[float]"],
    "transformer_fp16": ["DEQUANTIZE[constant]", "GATHER[float]", "TRANSPOSE[float]"],
    "transformer_int16x8": ["SQUARED_DIFFERENCE[*]"],
    "unet_dynamic": ["TRANSPOSE_CONV[*]"],
    "unet_f32": ["CONCATENATION[float]", "PACK[constant]", "RESIZE_BILINEAR[float]", "SHAPE[constant]",
        "STRIDED_SLICE[constant]", "TRANSPOSE_CONV[float]"],
    "unet_int8": ["CONCATENATION[int8]", "PACK[constant]", "RESIZE_BILINEAR[int8]", "SHAPE[constant]",
        "STRIDED_SLICE[constant]", "TRANSPOSE_CONV[int8]"],
}

_PREPARE_FAILED = re.compile(r"Node number \d+ \(([^)]+)\) failed to prepare")
_UNRESOLVED = re.compile(r"unresolved custom op: (\w+)")


def blockers(content: bytes) -> list[str]:
    """'OP[variant]' for every op of the model on `reference` that is not allowed there, and
    'OP[*]' for an op the model fails to prepare on."""
    try:
        rows = placement(content)
    except RuntimeError as e:
        m = _UNRESOLVED.search(str(e)) or _PREPARE_FAILED.search(str(e))
        if m is None:
            raise
        return [f"{m.group(1)}[*]"]
    return sorted({f"{r['op']}[{r['variant']}]" for r in rows
                   if r["backend"] == "reference" and r["op"] not in ALLOWED_ON_REFERENCE})


def owner(blocker: str, mode: str) -> str | None:
    """The branch fixing 'OP[variant]' in a model of this quantization mode, or None."""
    op, variant = blocker[:-1].split("[")
    return (IN_PROGRESS.get((op, variant)) or IN_PROGRESS.get(("*", variant))
            or IN_PROGRESS_BY_MODE.get((mode, variant)))


def _params() -> list:
    out = []
    for name in sorted(INDEX):
        marks = []
        if name in BLOCKED:
            owners = sorted({owner(b, INDEX[name]["mode"]) or "?" for b in BLOCKED[name]})
            marks.append(pytest.mark.xfail(strict=True, raises=StillBlocked,
                                           reason=f"{', '.join(owners)}: {' '.join(BLOCKED[name])}"))
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def test_suite_skeletons_present() -> None:
    assert len(INDEX) >= 40, "tests/data/suite must hold the suite's skeletons (python -m benchmarks.suite skeletons)"
    for name in INDEX:
        assert (SUITE / f"{name}.tflite.gz").exists(), name


def test_blocked_entries_are_in_progress() -> None:
    """BLOCKED may only hold models whose every failing op another branch is fixing."""
    for name, ops_ in BLOCKED.items():
        assert name in INDEX, f"BLOCKED names {name}, which is not in the suite"
        assert ops_, name
        unowned = [b for b in ops_ if owner(b, INDEX[name]["mode"]) is None]
        assert not unowned, f"{name}: {unowned} are not IN_PROGRESS anywhere; such a model must fail"


class StillBlocked(AssertionError):
    """The expected failure of a BLOCKED model: only ops listed for it are still on reference."""


@pytest.mark.parametrize("name", _params())
def test_suite_model_runs_compiled(name: str) -> None:
    content = refill(gzip.decompress((SUITE / f"{name}.tflite.gz").read_bytes()))
    found = blockers(content)
    what = f"{name} ({INDEX[name]['family']}, {INDEX[name]['mode']})"
    # a BLOCKED model's xfail covers only its listed ops: a new op falling back fails outright
    new = [b for b in found if b not in BLOCKED.get(name, ())]
    assert not new, f"{what}: ops on `reference` that are not on ALLOWED_ON_REFERENCE: {' '.join(new)}"
    if found:
        raise StillBlocked(f"{what}: still on `reference`: {' '.join(found)}")
