"""Writes the benchmark suite's .tflite models (run under a Python that has tensorflow-cpu).

    python benchmarks/suite/generate.py --out DIR [--only NAME,...] [--skip-mediapipe]

This file imports TensorFlow and never tflite_jit, so it runs in a TensorFlow environment that
does not have our package installed (`python -m benchmarks.suite make --tf-python PATH` calls it
that way). Weights are random and seeded: the suite measures speed and conformance, not accuracy,
and skipping pretrained downloads keeps generation to a few minutes on two cores. Every attempt
is written to DIR/manifest.json, including the conversions the converter refuses (a refusal is a
fact about the converter, recorded with its message, not a silently missing row).

The MediaPipe models are the real, published .tflite files of the mediapipe 0.10.14 wheel (PyPI,
Apache-2.0): we `pip download --no-deps` the wheel for this platform and read the .tflite members
out of it with zipfile; mediapipe itself is never installed or imported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.keras = tf_keras: from_keras_model's home
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MEDIAPIPE_VERSION = "0.10.14"
APP_SIZE = 96  # px: small enough that generation and a 20-run benchmark stay short
APP_CLASSES = 100
QUANT_MODES = ("f32", "fp16", "dynamic", "int8", "int16x8")
REP_SAMPLES = 4

ModelFn = Callable[[], object]


def _tf():
    import tensorflow as tf

    return tf


def _keras():
    import tf_keras

    return tf_keras


# --- model definitions (each builds a tf_keras model with seeded random weights) ------------

def _app(ctor: str, **kw) -> ModelFn:
    def build():
        keras = _keras()
        keras.utils.set_random_seed(0)
        return getattr(keras.applications, ctor)(
            weights=None, input_shape=(APP_SIZE, APP_SIZE, 3), classes=APP_CLASSES, **kw)
    return build


def unet() -> object:
    keras = _keras()
    keras.utils.set_random_seed(0)
    L = keras.layers
    x = inp = keras.Input((128, 128, 3))
    skips = []
    for ch in (16, 32, 64):
        x = L.Conv2D(ch, 3, padding="same", activation="relu")(x)
        x = L.Conv2D(ch, 3, padding="same", activation="relu")(x)
        skips.append(x)
        x = L.MaxPooling2D()(x)
    x = L.Conv2D(128, 3, padding="same", activation="relu")(x)
    for i, ch in enumerate((64, 32, 16)):
        if i == 1:  # one bilinear upsampling (RESIZE_BILINEAR), the others learned (TRANSPOSE_CONV)
            x = L.UpSampling2D(interpolation="bilinear")(x)
            x = L.Conv2D(ch, 1)(x)
        else:
            x = L.Conv2DTranspose(ch, 2, strides=2, padding="same")(x)
        x = L.Concatenate()([x, skips.pop()])
        x = L.Conv2D(ch, 3, padding="same", activation="relu")(x)
    out = L.Conv2D(2, 1, activation="softmax")(x)
    return keras.Model(inp, out, name="unet")


def deeplab() -> object:
    keras = _keras()
    tf = _tf()
    keras.utils.set_random_seed(0)
    L = keras.layers
    x = inp = keras.Input((128, 128, 3))
    for ch in (16, 32, 64):  # output stride 8
        x = L.Conv2D(ch, 3, strides=2, padding="same", use_bias=False)(x)
        x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
    x = L.DepthwiseConv2D(3, padding="same", dilation_rate=2)(x)
    x = L.Conv2D(64, 1, activation="relu")(x)
    branches = [L.Conv2D(32, 1, activation="relu")(x)]
    for rate in (2, 4):  # atrous spatial pyramid
        branches.append(L.Conv2D(32, 3, padding="same", dilation_rate=rate, activation="relu")(x))
    pool = L.GlobalAveragePooling2D(keepdims=True)(x)
    pool = L.Conv2D(32, 1, activation="relu")(pool)
    pool = L.Lambda(lambda t: tf.image.resize(t[0], tf.shape(t[1])[1:3]))([pool, x])
    x = L.Concatenate()(branches + [pool])
    x = L.Conv2D(64, 1, activation="relu")(x)
    x = L.Conv2D(5, 1)(x)
    out = L.Lambda(lambda t: tf.image.resize(t, (128, 128), method="bilinear"))(x)
    return keras.Model(inp, out, name="deeplab")


SEQ_LEN, VOCAB = 32, 1000


def _text(rnn: str, unroll: bool = False) -> ModelFn:
    def build():
        keras = _keras()
        keras.utils.set_random_seed(0)
        L = keras.layers
        inp = keras.Input((SEQ_LEN,), batch_size=1, dtype="int32")
        x = L.Embedding(VOCAB, 32)(inp)
        if rnn == "lstm":
            x = L.LSTM(64, unroll=unroll)(x)
        elif rnn == "gru":
            x = L.GRU(64, unroll=unroll)(x)
        elif rnn == "bilstm":
            x = L.Bidirectional(L.LSTM(32))(x)
        elif rnn == "lstmcell":  # the generic RNN layer is not fused: a WHILE loop in the file
            x = L.RNN(L.LSTMCell(64))(x)
        x = L.Dense(4, activation="softmax")(x)
        return keras.Model(inp, x, name=f"text_{rnn}")
    return build


def transformer() -> object:
    keras = _keras()
    keras.utils.set_random_seed(0)
    L = keras.layers
    d = 64
    inp = keras.Input((SEQ_LEN,), batch_size=1, dtype="int32")
    x = L.Embedding(VOCAB, d)(inp)
    pos = L.Embedding(SEQ_LEN, d)(keras.backend.arange(SEQ_LEN)[None, :])
    x = x + pos
    for _ in range(2):
        a = L.MultiHeadAttention(num_heads=4, key_dim=d // 4)(x, x)
        x = L.LayerNormalization(epsilon=1e-6)(x + a)
        f = L.Dense(2 * d, activation="gelu")(x)
        f = L.Dense(d)(f)
        x = L.LayerNormalization(epsilon=1e-6)(x + f)
    x = L.GlobalAveragePooling1D()(x)
    out = L.Dense(4, activation="softmax")(x)
    return keras.Model(inp, out, name="transformer")


def keyword_spotter() -> object:
    """Conv net over a 49x40 log-mel spectrogram, the usual 'hey device' keyword model shape."""
    keras = _keras()
    keras.utils.set_random_seed(0)
    L = keras.layers
    x = inp = keras.Input((49, 40, 1))
    x = L.Conv2D(64, (10, 4), strides=(2, 2), padding="same", activation="relu")(x)
    for _ in range(4):
        x = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
        x = L.Conv2D(64, 1, activation="relu")(x)
    x = L.AveragePooling2D((25, 20))(x)
    x = L.Flatten()(x)
    out = L.Dense(12, activation="softmax")(x)
    return keras.Model(inp, out, name="kws")


# name -> (builder, modes)
APPS = {
    "mobilenet_v1": _app("MobileNet"),
    "mobilenet_v2": _app("MobileNetV2"),
    "mobilenet_v3_small": _app("MobileNetV3Small"),
    "mobilenet_v3_large": _app("MobileNetV3Large"),
    "efficientnet_b0": _app("EfficientNetB0"),
    "efficientnet_v2_b0": _app("EfficientNetV2B0"),
    "resnet50": _app("ResNet50"),
    "densenet121": _app("DenseNet121"),
    "nasnet_mobile": _app("NASNetMobile"),
}
# Small models first: a generation cut short (Ctrl-C, --only) still gives a varied suite.
MODELS: dict[str, tuple[ModelFn, tuple[str, ...]]] = {
    "kws_audio": (keyword_spotter, ("f32", "dynamic", "int8")),
    "text_lstm": (_text("lstm"), ("f32", "dynamic", "int8")),
    "text_lstm_unrolled": (_text("lstm", unroll=True), ("f32",)),
    "text_lstm_while": (_text("lstmcell"), ("f32", "dynamic")),
    "text_bilstm": (_text("bilstm"), ("f32", "dynamic")),
    "text_gru_while": (_text("gru"), ("f32", "dynamic")),
    "text_gru_unrolled": (_text("gru", unroll=True), ("f32",)),
    "transformer": (transformer, QUANT_MODES),
    "unet": (unet, ("f32", "dynamic", "int8")),
    "deeplab": (deeplab, ("f32", "dynamic", "int8")),
    **{k: (v, QUANT_MODES) for k, v in APPS.items()},
}


# --- conversion --------------------------------------------------------------------------------

def _representative(model) -> Callable:
    import numpy as np

    rng = np.random.default_rng(0)

    def gen():
        for _ in range(REP_SAMPLES):
            xs = []
            for t in model.inputs:
                shape = [1 if d is None else int(d) for d in t.shape]
                if t.dtype.is_integer:
                    xs.append(rng.integers(0, VOCAB if len(shape) == 2 else 10, shape).astype(np.int32))
                else:
                    xs.append(rng.uniform(-1, 1, shape).astype(np.float32))
            yield xs
    return gen


def convert(model, mode: str) -> bytes:
    tf = _tf()
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "f32":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "fp16":
        c.target_spec.supported_types = [tf.float16]
    elif mode in ("int8", "int16x8"):
        c.representative_dataset = _representative(model)
        ops = tf.lite.OpsSet
        c.target_spec.supported_ops = ([ops.TFLITE_BUILTINS_INT8] if mode == "int8" else
                                       [ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8])
        if mode == "int8" and all(t.dtype.is_floating for t in model.inputs):
            c.inference_input_type = tf.int8  # full integer: int8 in, int8 out
            c.inference_output_type = tf.int8
    return c.convert()


def fetch_mediapipe(dest: Path, wheel_dir: Path | None) -> list[dict]:
    """The mediapipe wheel's .tflite members, copied as published (pip download, then zipfile)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(wheel_dir) if wheel_dir else Path(tmp)
        wheels = sorted(where.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
        if not wheels:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(where),
                            f"mediapipe=={MEDIAPIPE_VERSION}"], check=True)
            wheels = sorted(where.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
        with zipfile.ZipFile(wheels[0]) as z:
            for member in sorted(z.namelist()):
                if not member.endswith(".tflite"):
                    continue
                name = "mp_" + Path(member).stem
                data = z.read(member)
                (dest / f"{name}.tflite").write_bytes(data)
                rows.append({"name": name, "family": "mediapipe", "mode": "published",
                             "source": f"mediapipe=={MEDIAPIPE_VERSION}:{member}",
                             "status": "ok", "bytes": len(data), "seconds": 0.0})
    return rows


def _jobs() -> list[tuple[str, str]]:
    """(family, mode) in generation order: the small families whole, then the Keras applications
    one mode at a time over all families, so a cut-short generation still covers every family."""
    jobs = [(f, m) for f, (_, modes) in MODELS.items() if f not in APPS for m in modes]
    return jobs + [(f, m) for m in ("f32", "int8", "dynamic", "fp16", "int16x8") for f in APPS]


def _done(rows: dict[str, dict], out: Path, name: str) -> bool:
    """Generated before (or refused by the converter, which would refuse again)."""
    st = rows.get(name, {}).get("status")
    return st == "converter_refused" or (st == "ok" and (out / f"{name}.tflite").exists())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--only", default="", help="comma-separated families (default: all)")
    p.add_argument("--skip-mediapipe", action="store_true")
    p.add_argument("--force", action="store_true", help="regenerate models that already exist")
    p.add_argument("--wheel-dir", default="", help="where a mediapipe wheel already is (else pip download)")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    rows: dict[str, dict] = {}
    if manifest_path.exists():
        rows = {r["name"]: r for r in json.loads(manifest_path.read_text())["models"]}

    def save():
        manifest_path.write_text(json.dumps({"models": sorted(rows.values(), key=lambda r: r["name"])},
                                            indent=1))

    only = set(filter(None, a.only.split(",")))
    t_all = time.perf_counter()
    if not a.skip_mediapipe and (not only or "mediapipe" in only):
        for r in fetch_mediapipe(out, Path(a.wheel_dir) if a.wheel_dir else None):
            rows[r["name"]] = r
            print(f"{r['name']:34s} ok (published)", flush=True)
        save()
    built: dict[str, object] = {}
    for family, mode in _jobs():
        name = f"{family}_{mode}"
        if (only and family not in only) or (not a.force and _done(rows, out, name)):
            continue
        row = {"name": name, "family": family, "mode": mode, "source": "generated (tf_keras, seed 0)"}
        t0 = time.perf_counter()
        try:
            if family not in built:
                built = {family: MODELS[family][0]()}  # one Keras model alive at a time
            data = convert(built[family], mode)
            (out / f"{name}.tflite").write_bytes(data)
            row.update(status="ok", bytes=len(data))
        except Exception as e:  # a refusal is recorded and the other models still run
            msg = str(e).strip()
            row.update(status="converter_refused", error=msg.splitlines()[-1][:500] if msg else repr(e))
            if family not in built:
                row["status"] = "build_failed"
                traceback.print_exc()
        row["seconds"] = round(time.perf_counter() - t0, 2)
        rows[name] = row
        save()
        print(f"{name:34s} {row['status']:18s} {row['seconds']:6.1f}s", flush=True)
    save()
    print(f"generated into {out} in {time.perf_counter() - t_all:.0f}s")


if __name__ == "__main__":
    main()
