"""Hand-written TensorFlow baselines: the same functions as :mod:`.loops_torch`, for Keras 3 models.

The best a user writes by hand: the data transposed to the model's channels-last layout once, the whole
PGD of a batch compiled into one ``tf.function`` (a ``tf.GradientTape`` with respect to the input only), the
adversarial-training step compiled likewise. TensorFlow's thread pools are fixed when it starts, so only the
batch size is searched.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np

from aisec_lab._optional import import_keras, import_tensorflow

tf = import_tensorflow()
keras = import_keras()

FRAMEWORK = "tensorflow"


def thread_options(device: str = "cpu") -> tuple:
    return (None,)


@contextlib.contextmanager
def threads(n: int | None):
    yield


def native_model(target):
    return target.model


def _to_model_layout(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(np.asarray(x, np.float32), (0, 2, 3, 1)))


class Data:
    def __init__(self, target, x: np.ndarray, y: np.ndarray):
        self.x = tf.constant(_to_model_layout(x))
        self.y = tf.constant(np.asarray(y, np.int64))

    def subset(self, idx: np.ndarray) -> "Data":
        out = copy.copy(self)
        out.x, out.y = tf.gather(self.x, idx), tf.gather(self.y, idx)
        return out

    def __len__(self) -> int:
        return int(self.x.shape[0])


_COMPILED: dict = {}


def _pgd_fn(model, eps: float, step: float, steps: int):
    key = (id(model), eps, step, steps)
    if key not in _COMPILED:
        @tf.function(reduce_retracing=True)
        def attack(x, y, noise):
            lo, hi = tf.maximum(x - eps, 0.0), tf.minimum(x + eps, 1.0)
            xa = tf.clip_by_value(x + noise, lo, hi)
            for _ in range(steps):
                with tf.GradientTape() as tape:
                    tape.watch(xa)
                    loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                        labels=y, logits=model(xa, training=False)))
                g = tape.gradient(loss, xa)
                xa = tf.clip_by_value(xa + step * tf.sign(g), lo, hi)
            return xa

        _COMPILED[key] = attack
    return _COMPILED[key]


def pgd(model, data: Data, *, eps: float, step: float, steps: int, batch_size: int, seed: int = 0):
    attack = _pgd_fn(model, float(eps), float(step), int(steps))
    rng = np.random.default_rng(seed)
    out = []
    for s in range(0, len(data), batch_size):
        x, y = data.x[s:s + batch_size], data.y[s:s + batch_size]
        noise = tf.constant(rng.uniform(-eps, eps, size=tuple(x.shape)).astype(np.float32))
        out.append(attack(x, y, noise))
    return tf.concat(out, axis=0)


def canonical(adv) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(adv.numpy(), (0, 3, 1, 2)).astype(np.float32))


class HandPGDAT:
    """One epoch of PGD-AT written by hand in TensorFlow: batch 64, PGD-10 in a compiled step, Adam on the mean
    cross-entropy of the adversarial batch. Weights are copied from ``model`` into a fresh clone."""

    def __init__(self, model, *, eps: float, steps: int = 10, batch_size: int = 64, lr: float = 1e-3):
        self.model = keras.models.clone_model(model)
        self.model.set_weights(model.get_weights())
        self.eps, self.steps, self.batch_size = eps, steps, batch_size
        self.step = 2.5 * eps / steps
        self.opt = keras.optimizers.Adam(learning_rate=lr)
        self.vars = self.model.trainable_variables
        self.opt.build(self.vars)
        self._train_step = tf.function(self._train_step_impl, reduce_retracing=True)

    def _train_step_impl(self, x, y, noise):
        m, eps, step = self.model, self.eps, self.step
        lo, hi = tf.maximum(x - eps, 0.0), tf.minimum(x + eps, 1.0)
        xa = tf.clip_by_value(x + noise, lo, hi)
        for _ in range(self.steps):
            with tf.GradientTape() as tape:
                tape.watch(xa)
                loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=m(xa, training=False)))
            xa = tf.clip_by_value(xa + step * tf.sign(tape.gradient(loss, xa)), lo, hi)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=m(xa, training=True)))
        self.opt.apply_gradients(zip(tape.gradient(loss, self.vars), self.vars))
        return loss

    def epoch(self, x, y, rng: np.random.Generator) -> float:
        order = rng.permutation(int(x.shape[0]))
        total = 0.0
        for s in range(0, len(order), self.batch_size):
            idx = tf.constant(order[s:s + self.batch_size])
            xb = tf.gather(x, idx)
            noise = tf.constant(rng.uniform(-self.eps, self.eps, size=tuple(xb.shape)).astype(np.float32))
            total += float(self._train_step(xb, tf.gather(y, idx), noise)) * int(idx.shape[0])
        return total / int(x.shape[0])

    @staticmethod
    def data(x: np.ndarray, y: np.ndarray):
        return tf.constant(_to_model_layout(x)), tf.constant(np.asarray(y, np.int64))


def library_trainer(target, recipe):
    from aisec_lab.defenses.training import tensorflow as backend
    from aisec_lab.models import rewrap

    return backend.Trainer(rewrap(target, backend.clone_model(target.model)), recipe)
