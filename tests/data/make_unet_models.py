"""Regenerate the small U-Net-like segmentation models (needs `pip install tensorflow-cpu`).

unet_f32.tflite and unet_int8.tflite were produced by this script with TensorFlow's own
converter and random (seeded) weights, float32 and full-integer int8 (int8 input and output,
calibrated on seeded random images). They exercise the ops landmark and segmentation models are
made of: PRELU, 5x5 depthwise convolutions, MAX_POOL_2D, RESIZE_BILINEAR, CONCATENATION, SPLIT, and
TILE between RESHAPEs (what Keras 3's nearest-neighbour UpSampling2D converts to);
tests/test_real_models.py runs them against LiteRT without TensorFlow installed.
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow as tf

HERE = pathlib.Path(__file__).parent
L = tf.keras.layers


def block(x, ch: int):
    x = L.Conv2D(ch, 3, padding="same")(x)
    x = L.PReLU(shared_axes=[1, 2])(x)
    y = L.DepthwiseConv2D(5, padding="same")(x)
    y = L.Conv2D(ch, 1)(y)
    return L.PReLU(shared_axes=[1, 2])(L.Add()([x, y]))


def unet(size: int = 64) -> tf.keras.Model:
    inp = tf.keras.Input((size, size, 3), batch_size=1, name="image")
    e1 = block(inp, 16)                                           # 64
    p = L.ZeroPadding2D(((0, 1), (0, 1)))(e1)
    e2 = block(L.DepthwiseConv2D(3, strides=2)(p), 24)            # 32
    e3 = block(L.MaxPooling2D()(e2), 32)                          # 16
    d2 = L.UpSampling2D(interpolation="bilinear")(e3)             # 32
    d2 = block(L.Concatenate()([d2, e2]), 24)
    d1 = L.UpSampling2D(interpolation="nearest")(d2)              # 64
    d1 = block(L.Concatenate()([d1, e1]), 16)
    a, b = tf.keras.ops.split(d1, 2, axis=-1)
    out = L.Conv2D(1, 1, activation="sigmoid", name="mask")(L.Concatenate()([b, a]))
    return tf.keras.Model(inp, out)


def convert(model: tf.keras.Model, name: str, int8: bool) -> None:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(0)

        def rep():
            for _ in range(16):
                yield [rng.uniform(-1, 1, (1, *model.input_shape[1:])).astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    data = conv.convert()
    (HERE / f"{name}.tflite").write_bytes(data)
    print(name, len(data))


if __name__ == "__main__":
    tf.keras.utils.set_random_seed(0)
    m = unet()
    convert(m, "unet_f32", int8=False)
    convert(m, "unet_int8", int8=True)
