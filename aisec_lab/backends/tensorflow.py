"""TensorFlow oracle: per-sample losses and input gradients in one compiled forward + backward pass."""

from __future__ import annotations

import numpy as np

from .._optional import import_tensorflow
from ..errors import IncompatibleModelError
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


def _last_dense(model) -> tuple[str, object] | None:
    """The last ``keras.layers.Dense`` met in a depth-first walk of ``model``'s layers (its classifier head)."""
    from .._optional import import_keras

    keras = import_keras()

    found = None
    seen: set = set()

    def walk(layer, path: str) -> None:
        nonlocal found
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if isinstance(layer, keras.layers.Dense):
            found = (path, layer)
        for sub in getattr(layer, "layers", None) or ():
            walk(sub, f"{path}/{sub.name}" if path else sub.name)

    walk(model, "")
    return found


class TensorFlowOracle(BaseOracle):
    has_gradients = True
    #: the layer :meth:`features` read, as "path: class(units)" (set by its first call)
    feature_layer: str | None = None

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

    def features(self, x: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
        """Penultimate-layer representations: the input of the model's last ``Dense`` layer, shape ``(n, d)``.

        The layer is the last ``keras.layers.Dense`` in a depth-first walk of the wrapped model's
        ``layers`` (Sequential, functional and subclassed models alike). Its ``call`` is wrapped for
        the duration of an eager forward pass of the whole wrapped model (preprocessing, layout, any
        defense transform), which records the layer's input. Raises
        :class:`~aisec_lab.errors.IncompatibleModelError` when there is no ``Dense`` layer or it is not
        called. A layer called several times per forward pass gives the input of its last call.
        """
        found = _last_dense(self.model)
        if found is None:
            raise IncompatibleModelError(
                "penultimate-layer features need a Dense layer in the model, and it has none",
                got=type(getattr(self.model, "inner", self.model)).__name__,
                fix="give the model a final keras.layers.Dense classifier layer, or use the model's logits as "
                    "the representation (representation='logits', a weaker signal)")
        path, layer = found
        captured: list = []
        original = layer.call

        def recording_call(inputs, *args, **kwargs):
            captured.append(inputs)
            return original(inputs, *args, **kwargs)

        out = []
        object.__setattr__(layer, "call", recording_call)  # an instance attribute, outside Keras' tracking
        try:
            for i in range(0, len(x), batch_size):
                captured.clear()
                xb = tf.convert_to_tensor(np.asarray(x[i:i + batch_size], dtype=np.float32))
                self.model(xb, training=False)
                self.queries += int(xb.shape[0])
                if not captured:
                    raise IncompatibleModelError(
                        f"the model's last Dense layer ({path}) was not called on the forward pass",
                        got=f"{type(layer).__name__}({layer.units})",
                        fix="use representation='logits', or make the classifier the model's last Dense layer")
                out.append(np.asarray(captured[-1], dtype=np.float32).reshape(int(xb.shape[0]), -1))
        finally:
            object.__delattr__(layer, "call")
        self.feature_layer = f"{path}: {type(layer).__name__}({layer.units})"
        return np.concatenate(out, axis=0) if out else np.zeros((0, 0), np.float32)
