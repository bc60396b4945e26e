"""TensorFlow oracle: per-sample losses and input gradients in one compiled forward + backward pass."""

from __future__ import annotations

import numpy as np

from .._optional import import_tensorflow
from . import BaseOracle

tf = import_tensorflow()

__all__ = ["TensorFlowOracle", "per_sample_loss"]


def per_sample_loss(z, y, loss: str, y_target=None):
    """The losses of :mod:`aisec_lab.attacks.oracle`, to be maximised, one value per sample."""
    k = tf.shape(z)[1]
    if loss == "ce":
        if y_target is None:
            return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z)
        return -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_target, logits=z)
    zy = tf.gather(z, y, batch_dims=1)
    neg_inf = tf.fill(tf.shape(z), tf.constant(-np.inf, z.dtype))
    if loss == "margin":
        ref = y if y_target is None else y_target
        other = tf.reduce_max(tf.where(tf.one_hot(ref, k) > 0, neg_inf, z), axis=1)
        return other - zy if y_target is None else tf.gather(z, y_target, batch_dims=1) - other
    if loss == "dlr":
        zs = tf.sort(z, axis=1, direction="DESCENDING")
        if y_target is None:
            other = tf.reduce_max(tf.where(tf.one_hot(y, k) > 0, neg_inf, z), axis=1)
            return -(zy - other) / (zs[:, 0] - zs[:, 2] + 1e-12)
        zt = tf.gather(z, y_target, batch_dims=1)
        return -(zy - zt) / (zs[:, 0] - 0.5 * (zs[:, 2] + zs[:, 3]) + 1e-12)
    raise ValueError(f"unknown loss {loss!r}")


class TensorFlowOracle(BaseOracle):
    has_gradients = True

    def __init__(self, model, nb_classes: int, input_shape, clip_values):
        super().__init__(nb_classes, input_shape, clip_values)
        self.model = model
        self._forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        self._steps: dict = {}

    def _step(self, loss: str, targeted: bool):
        key = (loss, targeted)
        if key not in self._steps:
            model = self.model

            def step(x, y, t):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    z = model(x, training=False)
                    values = per_sample_loss(z, y, loss, t if targeted else None)
                    total = tf.reduce_sum(values)  # inside the tape, or the gradient is disconnected
                return values, tape.gradient(total, x), z

            self._steps[key] = tf.function(step, reduce_retracing=True)
        return self._steps[key]

    def logits(self, x: np.ndarray) -> np.ndarray:
        self.queries += len(x)
        return self._forward(tf.convert_to_tensor(np.asarray(x, dtype=np.float32))).numpy()

    def value_and_grad(self, x, y, *, loss="ce", y_target=None):
        self.queries += len(x)
        self.gradient_queries += len(x)
        xt = tf.convert_to_tensor(np.asarray(x, dtype=np.float32))
        yt = tf.convert_to_tensor(np.asarray(y, dtype=np.int64))
        tt = yt if y_target is None else tf.convert_to_tensor(np.asarray(y_target, dtype=np.int64))
        values, grad, z = self._step(loss, y_target is not None)(xt, yt, tt)
        return values.numpy(), grad.numpy(), z.numpy()
