"""Regenerate the TensorFlow-converted test models (needs `pip install tensorflow-cpu`).

The .tflite files next to this script were produced by it with TensorFlow's own converter and
random (seeded) weights; tests/test_tf_models.py runs them without TensorFlow installed.
"""

from __future__ import annotations

import pathlib

import tensorflow as tf

HERE = pathlib.Path(__file__).parent


def convert(model: tf.keras.Model, name: str, *, float16: bool = False) -> None:
    """`float16`: the converter's float16 weight quantization (weights stored as float16, each
    dequantized by a DEQUANTIZE node that LiteRT and tflite_jit evaluate once)."""
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if float16:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    data = conv.convert()
    (HERE / f"{name}.tflite").write_bytes(data)
    print(name, len(data))


def mobilenet_v2() -> tf.keras.Model:
    return tf.keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None,
                                             classes=10)


def mobilenet_v3_small() -> tf.keras.Model:
    """Converted with float16 weights (issue #13): 80 DEQUANTIZE nodes feeding the convs."""
    return tf.keras.applications.MobileNetV3Small(input_shape=(96, 96, 3), alpha=0.35, weights=None,
                                                  classes=10)


def text_transformer(seq: int = 16, vocab: int = 100, d: int = 32, heads: int = 2) -> tf.keras.Model:
    tokens = tf.keras.Input((seq,), dtype=tf.int32, name="tokens")
    x = tf.keras.layers.Embedding(vocab, d)(tokens)
    for _ in range(2):
        a = tf.keras.layers.MultiHeadAttention(heads, d // heads)(x, x)
        x = tf.keras.layers.LayerNormalization()(x + a)
        f = tf.keras.layers.Dense(2 * d, activation="gelu")(x)
        f = tf.keras.layers.Dense(d)(f)
        x = tf.keras.layers.LayerNormalization()(x + f)
    x = tf.keras.layers.GlobalAveragePooling1D()(x)
    out = tf.keras.layers.Dense(3, activation="softmax")(x)
    return tf.keras.Model(tokens, out)


def rnn_classifier(cell: str, seq: int = 12, vocab: int = 50, units: int = 16) -> tf.keras.Model:
    """A Keras text classifier: Embedding -> LSTM/GRU -> Dense. The converter fuses LSTM into
    UNIDIRECTIONAL_SEQUENCE_LSTM and exports GRU as a WHILE loop over subgraphs."""
    tokens = tf.keras.Input((seq,), batch_size=1, dtype=tf.int32, name="tokens")
    x = tf.keras.layers.Embedding(vocab, 8)(tokens)
    layer = tf.keras.layers.LSTM if cell == "lstm" else tf.keras.layers.GRU
    x = layer(units)(x)
    out = tf.keras.layers.Dense(2, activation="softmax")(x)
    return tf.keras.Model(tokens, out)


if __name__ == "__main__":
    tf.keras.utils.set_random_seed(0)
    convert(mobilenet_v2(), "tf_mobilenet_v2_035_96")
    convert(text_transformer(), "tf_text_transformer")
    convert(rnn_classifier("lstm"), "tf_lstm_classifier")
    convert(rnn_classifier("gru"), "tf_gru_classifier")
    convert(mobilenet_v3_small(), "tf_mobilenet_v3_small_035_96_f16", float16=True)
