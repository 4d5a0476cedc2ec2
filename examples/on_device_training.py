"""On-device training with tflite_jit: train, infer, save and restore a TF-converted model.

    pip install 'tflite-jit[flex]'
    python examples/on_device_training.py [MODEL.tflite]

The model (default: tests/data/training/conv_train.tflite, made by
tests/data/make_training_models.py) is a tf.Module with `train`, `infer`, `save` and `restore`
signatures, converted with SELECT_TF_OPS as TensorFlow's on-device training guide does. Its
gradient ops are TensorFlow (Flex) ops, which LiteRT's pip package cannot run; tflite_jit runs
them natively. The data is a small synthetic problem: classify 8x8 images by which quadrant is
brightest, so the loss visibly falls.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import numpy as np

import tflite_jit

DEFAULT = pathlib.Path(__file__).parents[1] / "tests" / "data" / "training" / "conv_train.tflite"


def batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Images with one bright quadrant; the label is the quadrant."""
    labels = rng.integers(0, 4, size=n)
    x = rng.normal(0, 0.3, size=(n, 8, 8, 1)).astype(np.float32)
    for i, q in enumerate(labels):
        r, c = divmod(int(q), 2)
        x[i, 4 * r:4 * r + 4, 4 * c:4 * c + 4, 0] += 1.0
    return x, np.eye(4, dtype=np.float32)[labels]


def main(model: str) -> None:
    rng = np.random.default_rng(0)
    it = tflite_jit.Interpreter(model_path=model)
    train = it.get_signature_runner("train")
    infer = it.get_signature_runner("infer")
    test_x, test_y = batch(rng, 256)

    def accuracy(interp: tflite_jit.Interpreter) -> float:
        out = interp.get_signature_runner("infer")(x=test_x)["output"]
        return float((out.argmax(1) == test_y.argmax(1)).mean())

    print(f"before training: accuracy {accuracy(it):.2f}")
    for epoch in range(8):
        losses = [float(train(x=x, y=y)["loss"]) for x, y in (batch(rng, 32) for _ in range(20))]
        print(f"epoch {epoch}: mean loss {np.mean(losses):.4f}")
    trained = accuracy(it)
    print(f"after training: accuracy {trained:.2f}")

    with tempfile.TemporaryDirectory() as d:
        ckpt = str(pathlib.Path(d) / "model.ckpt")  # TensorFlow's checkpoint format: tf.raw_ops.Restore reads it
        it.get_signature_runner("save")(checkpoint_path=np.array(ckpt.encode()))
        fresh = tflite_jit.Interpreter(model_path=model)
        print(f"a fresh interpreter: accuracy {accuracy(fresh):.2f}")
        fresh.get_signature_runner("restore")(checkpoint_path=np.array(ckpt.encode()))
        print(f"after restore: accuracy {accuracy(fresh):.2f} (trained: {trained:.2f})")
        same = np.array_equal(fresh.get_signature_runner("infer")(x=test_x)["output"],
                              infer(x=test_x)["output"])
        print("restored model gives the trained model's outputs bit for bit:", same)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(DEFAULT))
