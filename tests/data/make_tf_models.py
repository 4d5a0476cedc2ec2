"""Regenerate the TensorFlow-converted test models (needs `pip install tensorflow-cpu`).

The .tflite files next to this script were produced by it with TensorFlow's own converter and
random (seeded) weights; tests/test_tf_models.py runs them without TensorFlow installed.
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow as tf

HERE = pathlib.Path(__file__).parent


def convert(model: tf.keras.Model, name: str, dynamic_range: bool = False, *, float16: bool = False) -> None:
    """`dynamic_range`: int8 weights, float activations (LiteRT's hybrid kernels); `float16`: the
    converter's float16 weight quantization (weights stored as float16, each dequantized by a
    DEQUANTIZE node that LiteRT and tflite_jit evaluate once)."""
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if dynamic_range:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
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


def lstm_dynamic_range(bidirectional: bool, seq: int = 16, vocab: int = 50, units: int = 32) -> tf.keras.Model:
    """Embedding -> (Bidirectional) LSTM -> Dense, for Optimize.DEFAULT: the converter fuses the
    LSTM into UNIDIRECTIONAL_SEQUENCE_LSTM with int8 weights (hybrid; it quantizes only weights
    of at least 1024 elements, hence 32 x 32); Bidirectional becomes two of them and REVERSE_V2."""
    tokens = tf.keras.Input((seq,), batch_size=1, dtype=tf.int32, name="tokens")
    x = tf.keras.layers.Embedding(vocab, 32)(tokens)
    lstm = tf.keras.layers.LSTM(units)
    x = tf.keras.layers.Bidirectional(lstm)(x) if bidirectional else lstm(x)
    out = tf.keras.layers.Dense(2, activation="softmax")(x)
    return tf.keras.Model(tokens, out)


def convert_lstm_dynamic_range() -> None:
    tf.keras.utils.set_random_seed(0)
    convert(lstm_dynamic_range(False), "tf_lstm_dynamic_range", dynamic_range=True)
    convert(lstm_dynamic_range(True), "tf_bilstm_dynamic_range", dynamic_range=True)


class Trainable(tf.Module):
    """Two signatures sharing resource variables: `train` takes one plain-SGD step of a linear
    model (builtin ops only, no Flex), `infer` applies it. Each signature's subgraph starts with
    its own CALL_ONCE node naming the same initialiser subgraph."""

    def __init__(self) -> None:
        super().__init__()
        self.w = tf.Variable(tf.random.stateless_normal([4, 2], seed=[1, 2]), name="w")
        self.b = tf.Variable(tf.zeros([2]), name="b")

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x"),
                                  tf.TensorSpec([1, 2], tf.float32, name="y")])
    def train(self, x: tf.Tensor, y: tf.Tensor) -> dict:
        err = tf.matmul(x, self.w) + self.b - y
        self.w.assign_sub(tf.matmul(x, err, transpose_a=True) * 0.1)
        self.b.assign_sub(tf.reduce_sum(err, axis=0) * 0.1)
        return {"loss": tf.reduce_mean(err * err)}

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
    def infer(self, x: tf.Tensor) -> dict:
        return {"out": tf.matmul(x, self.w) + self.b}


def convert_trainable(name: str = "tf_trainable") -> None:
    m = Trainable()
    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [m.train.get_concrete_function(), m.infer.get_concrete_function()], m)
    conv.experimental_enable_resource_variables = True
    data = conv.convert()
    (HERE / f"{name}.tflite").write_bytes(data)
    print(name, len(data))


def int16x8_activations() -> tf.keras.Model:
    """A small conv net with the activations an EfficientNet has (swish = x * sigmoid(x), a
    squeeze-excite sigmoid gate) plus tanh, for the 16x8 quantizer."""
    x_in = tf.keras.Input((16, 16, 3), batch_size=1)
    x = tf.keras.layers.Conv2D(8, 3, padding="same")(x_in)
    x = tf.keras.layers.Activation("swish")(x)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = tf.keras.layers.Activation("sigmoid")(x)
    se = tf.keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    se = tf.keras.layers.Conv2D(8, 1, activation="sigmoid")(se)
    x = tf.keras.layers.Multiply()([x, se])
    x = tf.keras.layers.Conv2D(8, 1, activation="tanh")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    return tf.keras.Model(x_in, tf.keras.layers.Dense(4)(x))


def convert_int16x8(model: tf.keras.Model, name: str, shape: tuple[int, ...]) -> None:
    """Full-integer 16x8 (int16 activations, int8 weights) with float input and output."""
    rng = np.random.default_rng(0)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.standard_normal(shape).astype(np.float32)] for _ in range(16))
    conv.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    data = conv.convert()
    (HERE / f"{name}.tflite").write_bytes(data)
    print(name, len(data))
def lstm_int8(name: str, seq: int = 10, features: int = 6, units: int = 8, batch: int = 1,
              amplitude: float = 1.0) -> None:
    """A Keras LSTM (every step's output) converted full-integer (TFLITE_BUILTINS_INT8, int8
    input and output) with a representative dataset: the converter keeps it one
    UNIDIRECTIONAL_SEQUENCE_LSTM with int8 weights, int32 biases, an int16 cell state with a
    power-of-two scale and 5 intermediate tensors (LiteRT's EvalInteger8x8_16). `amplitude` is
    the calibration data's standard deviation: it decides the cell state's scale."""
    tf.keras.utils.set_random_seed(7)
    x_in = tf.keras.Input((seq, features), batch_size=batch)
    model = tf.keras.Model(x_in, tf.keras.layers.LSTM(units, return_sequences=True)(x_in))
    rng = np.random.default_rng(0)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: (
        [(rng.standard_normal((batch, seq, features)) * amplitude).astype(np.float32)] for _ in range(32))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    data = conv.convert()
    (HERE / f"{name}.tflite").write_bytes(data)
    print(name, len(data))


def unet(size: int = 32, c: int = 8) -> tf.keras.Model:
    """A two-level U-Net: Conv2DTranspose upsampling becomes TRANSPOSE_CONV. With dynamic-range
    quantization the converter gives the weights of 1024+ elements int8 (hybrid CONV_2D and
    TRANSPOSE_CONV) and keeps the small ones float."""
    layers = tf.keras.layers
    inp = tf.keras.Input((size, size, 3), batch_size=1)
    e1 = layers.Conv2D(c, 3, padding="same", activation="relu")(inp)
    e2 = layers.Conv2D(2 * c, 3, padding="same", activation="relu")(layers.MaxPooling2D()(e1))
    b = layers.Conv2D(4 * c, 3, padding="same", activation="relu")(layers.MaxPooling2D()(e2))
    u2 = layers.Conv2DTranspose(2 * c, 3, strides=2, padding="same")(b)
    d2 = layers.Conv2D(2 * c, 3, padding="same", activation="relu")(layers.Concatenate()([u2, e2]))
    u1 = layers.Conv2DTranspose(c, 2, strides=2, padding="same", activation="relu")(d2)
    d1 = layers.Conv2D(c, 3, padding="same", activation="relu")(layers.Concatenate()([u1, e1]))
    return tf.keras.Model(inp, layers.Conv2D(2, 1)(d1))


if __name__ == "__main__":
    tf.keras.utils.set_random_seed(0)
    convert(mobilenet_v2(), "tf_mobilenet_v2_035_96")
    convert(text_transformer(), "tf_text_transformer")
    convert(rnn_classifier("lstm"), "tf_lstm_classifier")
    convert(rnn_classifier("gru"), "tf_gru_classifier")
    convert_trainable()
    tf.keras.utils.set_random_seed(0)
    convert_int16x8(int16x8_activations(), "tf_int16x8_activations", (1, 16, 16, 3))
    lstm_int8("tf_lstm_int8")
    lstm_int8("tf_lstm_int8_batch2", seq=7, features=5, units=12, batch=2, amplitude=3.0)
    tf.keras.utils.set_random_seed(0)
    convert(unet(), "tf_unet_dynamic_range", dynamic_range=True)
    convert(mobilenet_v3_small(), "tf_mobilenet_v3_small_035_96_f16", float16=True)
    convert_lstm_dynamic_range()
