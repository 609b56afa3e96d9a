"""Make the committed int8 models of tests/models/ with the real TensorFlow Lite converter.

Runs in the converter environment (bash tools/make_converter_env.sh: tensorflow-cpu 2.14,
never a dependency of qmac)::

    .venv-tf/bin/python tools/make_models.py

Three small networks on scikit-learn's 8×8 digits (shipped in the wheel), each converted with
full-integer post-training quantization (a representative dataset of training images, int8
input and output, TFLITE_BUILTINS_INT8 only):

* ``digits_cnn`` — qmac's own digits CNN (:func:`qmac.digits.train_cnn`, trained in numpy:
  3×3 convolution with 8 channels and ReLU, then 512 → 10), its weights copied into Keras.
* ``mobilenet_style`` — depthwise-separable blocks: a 3×3 convolution, a 3×3 depthwise
  convolution with depth multiplier 2, a 1×1 pointwise convolution, a strided 3×3 depthwise
  convolution, another pointwise one (ReLU6 everywhere), global average pooling (MEAN), a
  fully-connected layer and SOFTMAX.
* ``residual`` — a residual block (two 3×3 convolutions and a skip connection joined by ADD),
  2×2 average pooling, a grouped 1×1 convolution (2 groups), 2×2 max pooling, a
  fully-connected layer.

It writes ``tests/models/<name>.tflite`` and ``tests/models/data/digits_test.npz`` (the test
split's grey levels 0..16 as uint8, NHWC, and labels), which tools/record_model_oracle.py
feeds to the interpreter.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from model_files import GREY_LEVELS, MODELS_DIR, TEST_DATA  # noqa: E402

from qmac import digits  # noqa: E402

SEED = 0
CALIBRATION_IMAGES = 300
KERAS_EPOCHS = 40


def _digits_cnn(x_train, y_train):
    """qmac's digits CNN trained in numpy, as a Keras model with the same weights."""
    conv, dense = digits.train_cnn(x_train, y_train, seed=SEED)
    channels = conv.w.shape[0]
    model = tf.keras.Sequential([
        tf.keras.Input(shape=digits.IMAGE_SHAPE),
        tf.keras.layers.Conv2D(channels, 3, padding="same", activation="relu"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(digits.CLASSES),
    ])
    # qmac: w [C_out, KH·KW·C_in] (OHWI flattened); Keras: [KH, KW, C_in, C_out]
    kernel = conv.w.reshape(channels, 3, 3, 1).transpose(1, 2, 3, 0)
    model.layers[0].set_weights([kernel, conv.b])
    model.layers[2].set_weights([dense.w.T, dense.b])
    return model


def _mobilenet_style():
    layers = tf.keras.layers
    inputs = tf.keras.Input(shape=digits.IMAGE_SHAPE)
    x = layers.Conv2D(8, 3, padding="same")(inputs)
    x = layers.ReLU(6.0)(x)
    x = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)
    x = layers.ReLU(6.0)(x)
    x = layers.Conv2D(16, 1)(x)
    x = layers.ReLU(6.0)(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = layers.ReLU(6.0)(x)
    x = layers.Conv2D(24, 1)(x)
    x = layers.ReLU(6.0)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(digits.CLASSES)(x)
    outputs = layers.Softmax()(x)
    return tf.keras.Model(inputs, outputs, name="mobilenet_style")


def _residual():
    layers = tf.keras.layers
    inputs = tf.keras.Input(shape=digits.IMAGE_SHAPE)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    y = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    y = layers.Conv2D(8, 3, padding="same")(y)
    x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.AveragePooling2D(2)(x)
    x = layers.Conv2D(16, 1, groups=2, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(digits.CLASSES)(x)
    return tf.keras.Model(inputs, outputs, name="residual")


def _train(model, x, y):
    tf.keras.utils.set_random_seed(SEED)
    loss = tf.keras.losses.SparseCategoricalCrossentropy(
        from_logits=not isinstance(model.layers[-1], tf.keras.layers.Softmax))
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3), loss=loss, metrics=["accuracy"])
    model.fit(x, y, epochs=KERAS_EPOCHS, batch_size=32, verbose=0)
    return model


def convert(model, calibration):
    """Full-integer post-training quantization: int8 everywhere, int8 input and output."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def representative():
        for image in calibration:
            yield [image[None].astype(np.float32)]

    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def main():
    tf.keras.utils.set_random_seed(SEED)
    x_train, y_train, x_test, y_test = digits.load_digits_split(seed=SEED)
    images = x_train.reshape(-1, *digits.IMAGE_SHAPE)
    test_images = x_test.reshape(-1, *digits.IMAGE_SHAPE)
    calibration = images[:CALIBRATION_IMAGES]
    models = {
        "digits_cnn": _digits_cnn(x_train.reshape(len(x_train), -1), y_train),
        "mobilenet_style": _train(_mobilenet_style(), images, y_train),
        "residual": _train(_residual(), images, y_train),
    }
    MODELS_DIR.joinpath("data").mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        scores = model.predict(test_images, verbose=0)
        accuracy = float(np.mean(np.argmax(scores, axis=1) == y_test))
        flat = convert(model, calibration)
        path = MODELS_DIR / f"{name}.tflite"
        path.write_bytes(flat)
        print(f"{name}: float accuracy {accuracy:.4f}, wrote {path} ({len(flat)} bytes)")
    grey = np.rint(test_images * GREY_LEVELS).astype(np.uint8)
    np.savez_compressed(TEST_DATA, grey=grey, labels=y_test.astype(np.uint8))
    print(f"wrote {TEST_DATA}")


if __name__ == "__main__":
    main()
