"""Keras 3 reference architectures (channels-last, as Keras users build them) and their training loop."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .._optional import import_keras, import_tensorflow

tf = import_tensorflow()
keras = import_keras()

WEIGHTS_SUFFIX = ".weights.h5"


def build(entry, *, seed: int = 0) -> "keras.Model":
    """The architecture of ``entry``; every initializer is seeded, so no global RNG is touched.

    The CNN takes channels-last ``(H, W, C)`` input and the MLP flat ``(H*W*C,)`` input: aisec-lab's
    targets feed them canonical channels-first data and rearrange it at the boundary.
    """
    c, h, w = entry.input_shape
    k = iter(range(seed * 100, seed * 100 + 100))

    def dense(units, act=None):
        return keras.layers.Dense(units, activation=act, kernel_initializer=keras.initializers.GlorotUniform(seed=next(k)))

    if entry.architecture == "cnn":
        def conv(filters):
            return keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                       kernel_initializer=keras.initializers.GlorotUniform(seed=next(k)))
        inputs = keras.Input(shape=(h, w, c))
        z = conv(16)(inputs)
        z = conv(32)(z)
        z = keras.layers.MaxPooling2D(2)(z)
        z = keras.layers.Flatten()(z)
        z = dense(64, "relu")(z)
        outputs = dense(entry.nb_classes)(z)
    elif entry.architecture == "mlp":
        inputs = keras.Input(shape=(c * h * w,))
        z = dense(128, "relu")(inputs)
        z = dense(64, "relu")(z)
        outputs = dense(entry.nb_classes)(z)
    else:
        raise ValueError(f"unknown architecture {entry.architecture!r}")
    return keras.Model(inputs, outputs, name=entry.name)


def _to_model_layout(model, x: np.ndarray) -> np.ndarray:
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) == 1:
        return x.reshape(len(x), -1)
    return np.transpose(x, (0, 2, 3, 1))


def train(model, x: np.ndarray, y: np.ndarray, entry, *, seed: int = 0):
    """Adam on cross-entropy with a compiled step; batch order drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    xm = tf.constant(_to_model_layout(model, np.asarray(x, dtype=np.float32)))
    ym = tf.constant(np.asarray(y, dtype=np.int64))
    opt = keras.optimizers.Adam(learning_rate=entry.learning_rate)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(reduce_retracing=True)
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    for _ in range(entry.epochs):
        order = rng.permutation(len(y))
        for i in range(0, len(order), entry.batch_size):
            idx = tf.constant(order[i:i + entry.batch_size])
            step(tf.gather(xm, idx), tf.gather(ym, idx))
    return model


def save_weights(model, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=WEIGHTS_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        model.save_weights(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_weights(model, path: Path):
    model.load_weights(str(path))
    return model
