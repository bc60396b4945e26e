"""Keras 3 / TensorFlow training steps of the adversarial-training recipes (pgd_at, trades, fast_at).

ART has no Keras adversarial trainers for TRADES or fast AT (and its Madry trainer assumes 0-255
pixels), so the loop is ours: the same algorithms as ``pytorch.py``, compiled with ``tf.function``,
on the wrapped copy's boundary model (canonical channels-first input in the clip-values space).
Random starts and the batch order come from the NumPy generator of each epoch.

Determinism: on a CPU the TensorFlow kernels used by the reference models are deterministic, and a
resumed run ends with the same weights as an uninterrupted one (tested with a tolerance of 1e-6
absolute, which it meets with exact equality here). Models with dropout draw from Keras' own seed
generators, whose state is not checkpointed: their resumed runs are reproducible in distribution only.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..._io import atomic_write_bytes
from ..._optional import import_keras, import_tensorflow
from ...errors import ConfigError, IncompatibleModelError

tf = import_tensorflow()
keras = import_keras()

__all__ = ["Trainer", "clone_model", "architecture", "save_model"]


def clone_model(model):
    try:
        clone = keras.models.clone_model(model)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise IncompatibleModelError("the Keras model could not be cloned (fit never trains the model it is given)",
                                     got=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                                     fix="build the model as keras.Sequential or with the functional API, or give "
                                         "the subclass get_config/from_config") from None
    clone.set_weights(model.get_weights())
    return clone


def architecture(model) -> dict:
    return {"class": type(model).__name__, "parameters": [[i, list(w.shape)] for i, w in enumerate(model.weights)]}


def save_model(model, out_dir: Path) -> Path:
    """``model.keras`` (load with ``al.load_model(path)``, safe_mode), written atomically."""
    out_dir = Path(out_dir)
    fd, tmp = tempfile.mkstemp(prefix=".model.", suffix=".keras", dir=out_dir)
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, out_dir / "model.keras")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_dir / "model.keras"


class Trainer:
    def __init__(self, target, recipe):
        self.recipe = recipe
        self.module = target.oracle.model  # Boundary over the copied model
        self.model = target.model
        self.lo = tf.constant(np.broadcast_to(target.oracle.clip_min, target.input_shape), tf.float32)
        self.hi = tf.constant(np.broadcast_to(target.oracle.clip_max, target.input_shape), tf.float32)
        self.vars = list(self.model.trainable_variables)
        if not self.vars:
            raise IncompatibleModelError("the model has no trainable weights", got=self.model.name,
                                         fix="set layer.trainable = True for the layers to train")
        wd = recipe.weight_decay or None
        if recipe.optimizer == "adam":
            self.opt = keras.optimizers.Adam(learning_rate=recipe.learning_rate, weight_decay=wd)
        else:
            self.opt = keras.optimizers.SGD(learning_rate=recipe.learning_rate, momentum=recipe.momentum,
                                            weight_decay=wd)
        self.opt.build(self.vars)
        self._train_step = tf.function(self._train_step_impl, reduce_retracing=True)
        self._pgd = tf.function(self._pgd_impl, reduce_retracing=True)

    # -- attacks inside training -------------------------------------------------------------------
    def _project(self, x, x_adv, eps):
        if self.recipe.norm == "linf":
            x_adv = tf.clip_by_value(x_adv, x - eps, x + eps)
        else:
            d = tf.reshape(x_adv - x, [tf.shape(x)[0], -1])
            scale = tf.minimum(1.0, eps / (tf.norm(d, axis=1) + 1e-12))
            x_adv = x + tf.reshape(d * scale[:, None], tf.shape(x))
        return tf.minimum(tf.maximum(x_adv, self.lo), self.hi)

    def _step(self, g, step):
        if self.recipe.norm == "linf":
            return step * tf.sign(g)
        n = tf.maximum(tf.norm(tf.reshape(g, [tf.shape(g)[0], -1]), axis=1), 1e-12)
        return step * g / tf.reshape(n, [-1] + [1] * (len(g.shape) - 1))

    def _noise(self, rng, shape, eps):
        if self.recipe.norm == "linf":
            return rng.uniform(-eps, eps, size=shape).astype(np.float32)
        u = rng.normal(size=shape).reshape(shape[0], -1)
        r = rng.uniform(0, 1, size=(shape[0], 1)) ** (1.0 / u.shape[1])
        return (u / np.linalg.norm(u, axis=1, keepdims=True) * r * eps).reshape(shape).astype(np.float32)

    def _pgd_impl(self, x, y, noise, eps, step, steps: int, kl_target=None):
        x_adv = self._project(x, x + noise, eps)
        for _ in range(steps):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                z = self.module(x_adv, training=False)
                if kl_target is None:
                    loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z))
                else:
                    loss = tf.reduce_sum(kl_target * (tf.math.log(kl_target + 1e-12) - tf.nn.log_softmax(z)))
            g = tape.gradient(loss, x_adv)
            x_adv = self._project(x, x_adv + self._step(g, step), eps)
        return tf.stop_gradient(x_adv)

    def _train_step_impl(self, x, y, noise):
        r = self.recipe
        eps = tf.constant(r.eps, tf.float32)
        step = tf.constant(r.step, tf.float32)
        if r.name == "trades":
            p_clean = tf.nn.softmax(self.module(x, training=False))
            x_adv = self._pgd_impl(x, y, noise, eps, step, r.max_iter, kl_target=p_clean)
            with tf.GradientTape() as tape:
                z_clean = self.module(x, training=True)
                z_adv = self.module(x_adv, training=True)
                p = tf.nn.softmax(z_clean)
                kl = tf.reduce_sum(p * (tf.nn.log_softmax(z_clean) - tf.nn.log_softmax(z_adv))) / tf.cast(tf.shape(x)[0], tf.float32)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z_clean)) + r.beta * kl
            z = z_adv
        else:
            x_adv = self._pgd_impl(x, y, noise, eps, step, r.max_iter)
            with tf.GradientTape() as tape:
                z = self.module(x_adv, training=True)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=z))
        grads = tape.gradient(loss, self.vars)
        self.opt.apply_gradients(zip(grads, self.vars))
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(z, axis=1), y), tf.int64))
        return loss, correct

    # -- one epoch -----------------------------------------------------------------------------------
    def set_lr(self, lr: float) -> None:
        self.opt.learning_rate.assign(lr)

    def train_epoch(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, epoch: int) -> dict:
        r = self.recipe
        order = rng.permutation(len(x))
        total_loss = 0.0
        correct = seen = 0
        for s in range(0, len(x), r.batch_size):
            idx = order[s:s + r.batch_size]
            xb = np.ascontiguousarray(x[idx], dtype=np.float32)
            noise = (0.001 * rng.standard_normal(size=xb.shape)).astype(np.float32) if r.name == "trades" \
                else self._noise(rng, xb.shape, r.eps)
            loss, ok = self._train_step(tf.constant(xb), tf.constant(np.asarray(y[idx], np.int64)), tf.constant(noise))
            total_loss += float(loss) * len(idx)
            correct += int(ok)
            seen += len(idx)
        return {"train_loss": total_loss / seen, "train_adv_accuracy": correct / seen}

    def evaluate(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
        r = self.recipe
        steps = r.val_attack_steps
        clean = robust = 0
        for s in range(0, len(x), 256):
            xb = np.ascontiguousarray(x[s:s + 256], dtype=np.float32)
            yb = np.asarray(y[s:s + 256], np.int64)
            ok = np.argmax(self.module(xb, training=False).numpy(), axis=1) == yb
            clean += int(ok.sum())
            adv = self._pgd(tf.constant(xb), tf.constant(yb), tf.constant(self._noise(rng, xb.shape, r.eps)),
                            tf.constant(r.eps, tf.float32), tf.constant(2.5 * r.eps / steps, tf.float32), steps)
            robust += int(((np.argmax(self.module(adv, training=False).numpy(), axis=1) == yb) & ok).sum())
        return clean / len(x), robust / len(x)

    # -- state -----------------------------------------------------------------------------------------
    def weights(self) -> list:
        return [np.array(w) for w in self.model.get_weights()]

    def set_weights(self, weights: list) -> None:
        self.model.set_weights(weights)

    def _write(self, path: Path, arrays: dict, meta: dict) -> None:
        import io

        buf = io.BytesIO()
        np.savez(buf, __meta__=np.frombuffer(json.dumps(meta, default=float).encode(), dtype=np.uint8), **arrays)
        atomic_write_bytes(path, buf.getvalue())

    def _read(self, path: Path) -> tuple[dict, dict]:
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta = json.loads(arrays.pop("__meta__").tobytes().decode())
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{path} is not a readable aisec-lab checkpoint", got=f"{type(exc).__name__}: {exc}"[:300],
                              fix="delete it (and the checkpoint folder) to start the training afresh") from None
        return arrays, meta

    def save_checkpoint(self, path: Path, meta: dict) -> None:
        arrays = {f"w{i}": w for i, w in enumerate(self.weights())}
        arrays.update({f"o{i}": np.array(keras.ops.convert_to_numpy(v)) for i, v in enumerate(self.opt.variables)})
        self._write(path, arrays, meta)

    def load_checkpoint(self, path: Path, check=None) -> dict:
        """Restore model and optimizer; ``check(meta)`` may refuse the checkpoint before anything is loaded."""
        arrays, meta = self._read(path)
        if check is not None:
            check(meta)
        weights = [arrays[f"w{i}"] for i in range(sum(k.startswith("w") for k in arrays))]
        opt_vals = [arrays[f"o{i}"] for i in range(sum(k.startswith("o") for k in arrays))]
        shapes = [tuple(w.shape) for w in self.model.get_weights()]
        if [tuple(w.shape) for w in weights] != shapes or len(opt_vals) != len(self.opt.variables):
            raise ConfigError(f"{path} is a checkpoint of a different model",
                              got=f"{len(weights)} weight arrays {[tuple(w.shape) for w in weights][:3]}...",
                              fix="use a new checkpoint_dir for this model, or delete the old checkpoints")
        self.model.set_weights(weights)
        for var, val in zip(self.opt.variables, opt_vals):
            var.assign(val)
        return meta

    def write_weights(self, path: Path, weights: list, meta: dict) -> None:
        self._write(path, {f"w{i}": w for i, w in enumerate(weights)}, meta)

    def read_weights(self, path: Path) -> list:
        arrays, _ = self._read(path)
        return [arrays[f"w{i}"] for i in range(len(arrays))]
