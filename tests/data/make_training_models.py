"""Regenerate the on-device training fixtures (needs `pip install tensorflow-cpu tf_keras`).

Run with ``TF_USE_LEGACY_KERAS=1 python tests/data/make_training_models.py``. For each model it
writes, under tests/data/training/:

* ``<name>.tflite`` — a tf.Module with ``train`` / ``infer`` / ``save`` / ``restore``
  signatures, converted as TensorFlow's on-device training guide does (resource variables,
  ``SELECT_TF_OPS``), so the gradient ops TFLite has no builtin for stay Flex ops;
* ``<name>.npz`` — the seeded training batches, TensorFlow's own loss for each ``train`` step,
  ``infer``'s output after training, and the trained weights;
* ``<name>.ckpt`` — the trained weights written by TensorFlow's own ``Save`` op (the V1
  tensor-slice checkpoint format), for checking that our ``Restore`` reads TensorFlow's files.

TensorFlow trains from the very weights the converter embedded (conversion happens first), so
its loss sequence is what our interpreter must reproduce step by step.
"""

from __future__ import annotations

import os
import pathlib

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.keras = Keras 2: variables with read_value()

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

OUT = pathlib.Path(__file__).parent / "training"
IMG = (8, 8, 1)
CLASSES = 4
STEPS = 12
BATCH = 6


class Scale(tf.keras.layers.Layer):
    """x * scale + shift with per-feature variables: its gradient needs BroadcastGradientArgs
    when the batch size is dynamic."""

    def build(self, shape):
        self.scale = self.add_weight(name="scale", shape=(shape[-1],), initializer="ones")
        self.shift = self.add_weight(name="shift", shape=(shape[-1],), initializer="zeros")

    def call(self, x):
        return x * self.scale + self.shift


def conv_layers() -> list:
    """conv + relu, conv + relu, then dense layers with tanh and sigmoid: ReluGrad,
    Conv2DBackpropFilter/Input, TanhGrad, SigmoidGrad and BroadcastGradientArgs in `train`."""
    return [tf.keras.layers.Conv2D(4, 3, activation="relu", input_shape=IMG),
            tf.keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu"),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(12, activation="tanh"),
            Scale(),
            tf.keras.layers.Dense(8, activation="sigmoid"),
            tf.keras.layers.Dense(CLASSES)]


def bn_layers() -> list:
    """conv, batch norm, depthwise + relu6: FusedBatchNormV3/GradV3, Relu6Grad and the
    depthwise backprops in `train`."""
    return [tf.keras.layers.Conv2D(4, 3, input_shape=IMG),
            tf.keras.layers.BatchNormalization(),
            tf.keras.layers.ReLU(),
            tf.keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu6"),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(CLASSES)]


class Trainable(tf.Module):
    def __init__(self, layers: list):
        super().__init__()
        self.model = tf.keras.Sequential(layers)
        self.model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=0.1),
                           loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True))

    @tf.function(input_signature=[tf.TensorSpec([None, *IMG], tf.float32),
                                  tf.TensorSpec([None, CLASSES], tf.float32)])
    def train(self, x, y):
        with tf.GradientTape() as tape:
            logits = self.model(x, training=True)
            loss = self.model.loss(y, logits)
        grads = tape.gradient(loss, self.model.trainable_variables)
        self.model.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        return {"loss": loss}

    @tf.function(input_signature=[tf.TensorSpec([None, *IMG], tf.float32)])
    def infer(self, x):
        logits = self.model(x)
        return {"output": tf.nn.softmax(logits, axis=-1), "logits": logits}

    @tf.function(input_signature=[tf.TensorSpec(shape=[], dtype=tf.string)])
    def save(self, checkpoint_path):
        names = [w.name for w in self.model.weights]
        values = [w.read_value() for w in self.model.weights]
        tf.raw_ops.Save(filename=checkpoint_path, tensor_names=names, data=values, name="save")
        return {"checkpoint_path": checkpoint_path}

    @tf.function(input_signature=[tf.TensorSpec(shape=[], dtype=tf.string)])
    def restore(self, checkpoint_path):
        restored = {}
        for var in self.model.weights:
            t = tf.raw_ops.Restore(file_pattern=checkpoint_path, tensor_name=var.name, dt=var.dtype,
                                   name="restore")
            var.assign(t)
            restored[var.name] = t
        return restored


def build(name: str, layers: list, seed: int) -> None:
    tf.keras.utils.set_random_seed(seed)
    m = Trainable(layers)
    sigs = {"train": m.train.get_concrete_function(), "infer": m.infer.get_concrete_function(),
            "save": m.save.get_concrete_function(), "restore": m.restore.get_concrete_function()}
    saved = OUT / f"_{name}_saved_model"
    tf.saved_model.save(m, str(saved), signatures=sigs)
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    conv.experimental_enable_resource_variables = True
    (OUT / f"{name}.tflite").write_bytes(conv.convert())
    tf.io.gfile.rmtree(str(saved))

    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((STEPS, BATCH, *IMG)).astype(np.float32)
    labels = rng.integers(0, CLASSES, size=(STEPS, BATCH))
    ys = np.eye(CLASSES, dtype=np.float32)[labels]
    losses = np.array([float(m.train(xs[i], ys[i])["loss"]) for i in range(STEPS)], np.float32)
    probe = rng.standard_normal((3, *IMG)).astype(np.float32)
    out = m.infer(probe)
    ckpt = OUT / f"{name}.ckpt"
    m.save(tf.constant(str(ckpt)))
    weights = {w.name: w.numpy() for w in m.model.weights}
    np.savez(OUT / f"{name}.npz", xs=xs, ys=ys, losses=losses, probe=probe,
             probe_output=out["output"].numpy(), probe_logits=out["logits"].numpy(),
             weight_names=np.array(list(weights)), **{f"w{i}": v for i, v in enumerate(weights.values())})
    print(name, "losses", losses)


def flex_cases() -> None:
    """Every Flex op we implement, run by TensorFlow itself on seeded inputs (raw ops, eager):
    ``flex_ops.npz`` holds each case's op, attributes (JSON), inputs and TF's outputs. The
    converter lowers some of these ops to builtins for the models above (Conv2DBackpropInput to
    TRANSPOSE_CONV, TanhGrad to arithmetic), so they are checked one by one here."""
    import json

    rng = np.random.default_rng(3)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    cases: list[tuple[str, dict, list]] = []
    edge = np.array([[-1.0, 0.0, 0.5, 6.0, 7.0, 3.0]], np.float32)
    cases.append(("ReluGrad", {}, [f32(2, 6), np.concatenate([edge, f32(1, 6)])]))
    cases.append(("Relu6Grad", {}, [f32(2, 6), np.concatenate([edge, 4 * f32(1, 6)])]))
    cases.append(("SigmoidGrad", {}, [1 / (1 + np.exp(-f32(3, 5))), f32(3, 5)]))
    cases.append(("TanhGrad", {}, [np.tanh(f32(3, 5)), f32(3, 5)]))
    for s0, s1 in [([2, 3, 1], [3, 4]), ([1], [5, 1]), ([4, 1, 6], [4, 1, 6]), ([], [2, 2]), ([1, 1], [1])]:
        cases.append(("BroadcastGradientArgs", {}, [np.array(s0, np.int32), np.array(s1, np.int32)]))
    conv = [({"strides": [1, 1, 1, 1], "padding": "VALID"}, (2, 7, 6, 3), (3, 3, 3, 4)),
            ({"strides": [1, 2, 2, 1], "padding": "SAME"}, (1, 8, 7, 2), (3, 2, 2, 5)),
            ({"strides": [1, 1, 2, 1], "padding": "SAME", "dilations": [1, 2, 1, 1]}, (2, 6, 6, 3), (2, 3, 3, 2)),
            ({"strides": [1, 2, 1, 1], "padding": "EXPLICIT",
              "explicit_paddings": [0, 0, 1, 2, 0, 1, 0, 0]}, (1, 5, 6, 2), (3, 3, 2, 3))]
    for attrs, xs, ws in conv:
        x, w = f32(*xs), f32(*ws)
        y = tf.raw_ops.Conv2D(input=x, filter=w, **attrs).numpy()
        dy = f32(*y.shape)
        cases.append(("Conv2DBackpropFilter", attrs, [x, np.array(ws, np.int32), dy]))
        cases.append(("Conv2DBackpropInput", attrs, [np.array(xs, np.int32), w, dy]))
    dw = [({"strides": [1, 1, 1, 1], "padding": "VALID"}, (2, 6, 5, 3), (3, 3, 3, 2)),
          ({"strides": [1, 2, 2, 1], "padding": "SAME"}, (1, 7, 8, 2), (3, 3, 2, 1)),
          ({"strides": [1, 1, 1, 1], "padding": "SAME", "dilations": [1, 2, 2, 1]}, (1, 6, 6, 2), (3, 3, 2, 2))]
    for attrs, xs, ws in dw:
        x, w = f32(*xs), f32(*ws)
        y = tf.raw_ops.DepthwiseConv2dNative(input=x, filter=w, **attrs).numpy()
        dy = f32(*y.shape)
        cases.append(("DepthwiseConv2dNativeBackpropFilter", attrs, [x, np.array(ws, np.int32), dy]))
        cases.append(("DepthwiseConv2dNativeBackpropInput", attrs, [np.array(xs, np.int32), w, dy]))
    x = 2 + 3 * f32(4, 3, 5, 6)
    scale, offset, mean, var = f32(6), f32(6), f32(6), np.abs(f32(6)) + 0.5
    for attrs in ({"is_training": True, "epsilon": 0.001}, {"is_training": True, "epsilon": 0.001,
                                                             "exponential_avg_factor": 0.01},
                  {"is_training": False, "epsilon": 0.0001}):
        cases.append(("FusedBatchNormV3", attrs, [x, scale, offset, mean, var]))
        out = tf.raw_ops.FusedBatchNormV3(x=x, scale=scale, offset=offset, mean=mean, variance=var, **attrs)
        dy = f32(*x.shape)
        gattrs = {k: v for k, v in attrs.items() if k != "exponential_avg_factor"}
        cases.append(("FusedBatchNormGradV3", gattrs, [dy, x, scale, out.reserve_space_1.numpy(),
                                                       out.reserve_space_2.numpy(),
                                                       out.reserve_space_3.numpy()]))
    names = {"ReluGrad": "gradients features", "Relu6Grad": "gradients features", "SigmoidGrad": "y dy",
             "TanhGrad": "y dy", "BroadcastGradientArgs": "s0 s1",
             "Conv2DBackpropFilter": "input filter_sizes out_backprop",
             "Conv2DBackpropInput": "input_sizes filter out_backprop",
             "DepthwiseConv2dNativeBackpropFilter": "input filter_sizes out_backprop",
             "DepthwiseConv2dNativeBackpropInput": "input_sizes filter out_backprop",
             "FusedBatchNormV3": "x scale offset mean variance",
             "FusedBatchNormGradV3": "y_backprop x scale reserve_space_1 reserve_space_2 reserve_space_3"}
    arrays, meta = {}, []
    for ci, (op, attrs, ins) in enumerate(cases):
        kwargs = {k: tf.constant(v) for k, v in zip(names[op].split(), ins)}
        outs = getattr(tf.raw_ops, op)(**kwargs, **attrs)
        outs = [outs] if isinstance(outs, tf.Tensor) else list(outs)
        for j, v in enumerate(ins):
            arrays[f"c{ci}_in{j}"] = v
        for k, v in enumerate(outs):
            arrays[f"c{ci}_out{k}"] = v.numpy()
        meta.append({"op": op, "attrs": attrs, "inputs": len(ins), "outputs": len(outs)})
    np.savez(OUT / "flex_ops.npz", meta=np.array(json.dumps(meta)), **arrays)
    print("flex cases", len(cases))


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    flex_cases()
    build("conv_train", conv_layers(), seed=7)
    build("bn_train", bn_layers(), seed=11)
