"""Keras 3 models of the benchmark rows: the zoo's ``digits_cnn`` and the LeNet-size CNN of :mod:`.models_torch`.

Channels-last, as Keras users build them (aisec-lab's target feeds canonical channels-first data and rearranges it
at its boundary; the hand-written baselines feed channels-last data directly). The LeNet has the same 431,080
parameters as the torch one and is trained the same way (two epochs on upsampled digits, a few seconds).
"""

from __future__ import annotations

import numpy as np

from aisec_lab._optional import import_keras, import_tensorflow

from . import workloads

tf = import_tensorflow()
keras = import_keras()

LENET_EPOCHS = 2


def lenet(seed: int = 0):
    init = iter(range(seed * 10, seed * 10 + 10))

    def glorot():
        return keras.initializers.GlorotUniform(seed=next(init))

    inputs = keras.Input(shape=(28, 28, 1))
    z = keras.layers.Conv2D(20, 5, activation="relu", kernel_initializer=glorot())(inputs)
    z = keras.layers.MaxPooling2D(2)(z)
    z = keras.layers.Conv2D(50, 5, activation="relu", kernel_initializer=glorot())(z)
    z = keras.layers.MaxPooling2D(2)(z)
    z = keras.layers.Flatten()(z)
    z = keras.layers.Dense(500, activation="relu", kernel_initializer=glorot())(z)
    outputs = keras.layers.Dense(10, kernel_initializer=glorot())(z)
    return keras.Model(inputs, outputs, name="lenet28")


def train(model, x: np.ndarray, y: np.ndarray, *, epochs: int = LENET_EPOCHS, seed: int = 0):
    """Adam, batch 64, cross-entropy (``model.fit``); x is canonical channels-first."""
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(np.transpose(x, (0, 2, 3, 1)), y, batch_size=64, epochs=epochs, shuffle=True, verbose=0)
    return model


def lenet_target(device: str = "cpu"):
    import aisec_lab as al

    x, y = workloads.digits28(3 * 1347, split="train", seed=1)
    model = train(lenet(), x, y)
    return al.wrap_model(model, input_shape=(1, 28, 28), nb_classes=10, clip_values=(0.0, 1.0),
                         name="lenet28 (tensorflow)")


def zoo_target(name: str = "digits_cnn", device: str = "cpu"):
    import aisec_lab as al

    return al.zoo.target(name, framework="tensorflow")
