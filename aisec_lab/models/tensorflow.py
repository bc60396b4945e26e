"""TensorFlow / Keras 3 side of the model boundary: wrap a ``keras.Model``, load ``.keras`` files."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import import_keras, import_tensorflow
from ..errors import ConfigError, IncompatibleModelError, UnsafeFileError
from ..backends import count_estimator_queries
from ..backends.tensorflow import TensorFlowOracle
from .spec import Target, analyse_outputs, normalize_preprocessing, probe_inputs, resolve_layout

tf = import_tensorflow()
keras = import_keras()

log = logging.getLogger(__name__)

__all__ = ["wrap", "is_model", "load_file", "weights_sha256", "Boundary", "with_input_transform"]


def is_model(obj: Any) -> bool:
    return isinstance(obj, keras.Model)


class Boundary(keras.Model):
    """Adapts canonical float32 channels-first input to the wrapped Keras model, and its output to logits.

    Mirrors :class:`aisec_lab.models.pytorch.Boundary`: float32 cast, layout change
    (``channels_last`` / ``flat``), single binary logit expansion, ``log`` of probabilities.
    """

    def __init__(self, inner: keras.Model, layout: str = "channels_first", binary_single_logit: bool = False,
                 from_probabilities: bool = False, preprocessing=None, **kwargs: Any):
        super().__init__(**kwargs)
        self.inner = inner
        self.layout = layout
        self.binary_single_logit = binary_single_logit
        self.from_probabilities = from_probabilities
        self.pre = None if preprocessing is None else (tf.constant(np.asarray(preprocessing[0], np.float32)),
                                                       tf.constant(np.asarray(preprocessing[1], np.float32)))

    def call(self, x, training=False):
        x = tf.cast(x, tf.float32)
        if self.pre is not None:
            x = (x - self.pre[0]) / self.pre[1]
        if self.layout == "channels_last":
            rank = len(x.shape)
            x = tf.transpose(x, [0] + list(range(2, rank)) + [1])
        elif self.layout == "flat":
            x = tf.reshape(x, [tf.shape(x)[0], -1])
        out = self.inner(x, training=training)
        if len(out.shape) == 1:
            out = out[:, None]
        if self.binary_single_logit:
            if self.from_probabilities:
                p = tf.clip_by_value(out, 1e-12, 1 - 1e-12)
                return tf.concat([tf.math.log1p(-p), tf.math.log(p)], axis=1)
            return tf.concat([tf.zeros_like(out), out], axis=1)
        if self.from_probabilities:
            return tf.math.log(tf.maximum(out, 1e-12))
        return out


def weights_sha256(model: keras.Model) -> str:
    """sha256 over every weight (position, dtype, shape, bytes) in the model's weight order.

    Variable names are left out: Keras numbers layers per session (``dense_3``), so the same weights
    would otherwise hash differently from one process to the next.
    """
    h = hashlib.sha256()
    for i, w in enumerate(model.weights):
        arr = np.ascontiguousarray(np.asarray(w.numpy()))
        h.update(f"{i}|{arr.dtype}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _declared_input_shape(model: keras.Model):
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    if len(inputs) != 1:
        raise IncompatibleModelError("only single-input models can be wrapped", got=f"{len(inputs)} inputs",
                                     fix="wrap a model with one image/feature input")
    shape = tuple(inputs[0].shape)[1:]
    return shape


def _resolve_device(device: str | None) -> str:
    gpus = tf.config.list_physical_devices("GPU")
    d = None if device is None else str(device).lower()
    if d in (None, "cpu"):
        if gpus:
            log.warning("TensorFlow places operations on the GPU by itself; set CUDA_VISIBLE_DEVICES='' to force the CPU")
            return "gpu:0"
        return "cpu"
    if d in ("cuda", "gpu") or d.startswith(("cuda:", "gpu:")):
        if not gpus:
            raise ConfigError(f"device={device!r} was asked for but TensorFlow sees no GPU", got=device,
                              fix="leave device=None to run on the CPU, or install a GPU build of TensorFlow")
        return "gpu:0"
    raise ConfigError("unknown device", got=device, fix="use None/'cpu' or 'cuda'")


def wrap(model: keras.Model, *, input_shape: tuple[int, ...], nb_classes: int, clip_values, preprocessing=None,
         channels_first: bool | None = None, logits: bool = True, device: str | None = None,
         name: str | None = None) -> Target:
    from art.estimators.classification import TensorFlowV2Classifier

    if not isinstance(model, keras.Model):
        raise IncompatibleModelError("expected a Keras 3 model (keras.Model)", got=type(model).__name__,
                                     fix="pass a keras.Model / keras.Sequential")
    device_str = _resolve_device(device)
    default_cf = keras.config.image_data_format() == "channels_first"
    layout = resolve_layout(input_shape, _declared_input_shape(model), channels_first, default_channels_first=default_cf)
    preprocessing = normalize_preprocessing(preprocessing, input_shape)
    probe = probe_inputs(input_shape, clip_values)
    try:
        raw = np.asarray(Boundary(model, layout, preprocessing=preprocessing)(probe, training=False))
    except Exception as exc:  # noqa: BLE001 - any failure of user code on the probe is re-raised as a clear error
        fix = "pass input_shape as one sample in channels-first layout (the data's ds.input_shape)"
        if channels_first is None and len(input_shape) == 3:
            fix += "; pass channels_first=True/False if the model's layout cannot be read from it"
        raise IncompatibleModelError(f"the model failed on a probe batch of input_shape={input_shape} "
                                     f"(fed to it as {layout})",
                                     got=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}", fix=fix) from None
    analysis = analyse_outputs(raw, nb_classes, batch=len(probe))
    warnings_: list[str] = []
    output_type = "probabilities" if analysis.looks_like_probabilities and (logits is False or analysis.width > 1) else "logits"
    if logits is False:
        if not analysis.looks_like_probabilities:
            raise ConfigError("logits=False says the model returns probabilities, but its outputs are not "
                              "probabilities (values outside [0, 1] or rows not summing to 1)",
                              got=f"outputs in [{raw.min():.3g}, {raw.max():.3g}]",
                              fix="leave logits=True for a model that returns logits")
        output_type = "probabilities"
    elif output_type == "probabilities":
        msg = ("the model appears to return probabilities (softmax output) rather than logits; gradient "
               "attacks are weakened by saturated softmax. Remove the final softmax, or pass logits=False "
               "to attack log-probabilities")
        log.warning("%s (model %s)", msg, name or model.name)
        warnings_.append(msg)
    boundary = Boundary(model, layout, analysis.binary_single_logit, from_probabilities=logits is False,
                        preprocessing=preprocessing)
    classifier = TensorFlowV2Classifier(
        model=boundary,
        nb_classes=nb_classes,
        input_shape=tuple(input_shape),
        loss_object=keras.losses.CategoricalCrossentropy(from_logits=True, reduction="sum"),
        channels_first=True,
        clip_values=clip_values,
    )
    oracle = TensorFlowOracle(boundary, nb_classes, input_shape, clip_values)
    count_estimator_queries(classifier, oracle)
    return Target(
        estimator=classifier, model=model, framework="tensorflow", input_shape=tuple(input_shape),
        nb_classes=nb_classes, clip_values=clip_values, name=name or model.name, model_layout=layout,
        n_params=int(model.count_params()), weights_sha256=weights_sha256(model), device=device_str,
        output_type=output_type, logits_from_probabilities=logits is False,
        binary_single_logit=analysis.binary_single_logit, has_gradients=True, preprocessing=preprocessing,
        warnings=tuple(warnings_), oracle=oracle,
    )


def _straight_through(x, transform):
    """``transform`` (NumPy) on the forward pass, the identity on the backward pass (BPDA)."""

    @tf.custom_gradient
    def op(t):
        out = tf.numpy_function(lambda a: np.ascontiguousarray(transform(a), dtype=np.float32), [t], tf.float32,
                                stateful=True)
        out.set_shape(t.shape)

        def grad(dy):
            return dy

        return out, grad

    return op(x)


class DefendedBoundary(keras.Model):
    """``transform`` (NumPy, canonical layout) in front of an existing :class:`Boundary`, straight-through."""

    def __init__(self, transform, inner: keras.Model, **kwargs: Any):
        super().__init__(**kwargs)
        self.transform = transform
        self.inner = inner

    def call(self, x, training=False):
        return self.inner(_straight_through(tf.cast(x, tf.float32), self.transform), training=training)


def with_input_transform(target: Target, transform, **changes: Any) -> Target:
    """A copy of ``target`` whose every forward pass first applies ``transform`` (gradients pass straight through)."""
    import dataclasses

    from art.estimators.classification import TensorFlowV2Classifier

    module = DefendedBoundary(transform, target.oracle.model)
    classifier = TensorFlowV2Classifier(
        model=module, nb_classes=target.nb_classes, input_shape=tuple(target.input_shape),
        loss_object=keras.losses.CategoricalCrossentropy(from_logits=True, reduction="sum"),
        channels_first=True, clip_values=target.clip_values)
    oracle = TensorFlowOracle(module, target.nb_classes, target.input_shape, target.clip_values)
    count_estimator_queries(classifier, oracle)
    return dataclasses.replace(target, estimator=classifier, oracle=oracle, **changes)


def load_file(path: Path, *, trust: bool = False, custom_objects: dict | None = None, factory: Any = None,
              device: str | None = None) -> keras.Model:
    """Load a ``.keras`` archive with ``safe_mode=True`` (no Lambda-layer bytecode) unless ``trust=True``.

    Legacy ``.h5`` / ``.hdf5`` full-model files bypass Keras' safe mode and are refused unless
    ``trust=True``.
    """
    if factory is not None:
        raise ConfigError("factory= applies to torch state_dict files only", got=factory,
                          fix="a .keras file holds its own architecture; pass custom_objects= for custom layers")
    _resolve_device(device)
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5") and not trust:
        raise UnsafeFileError(f"{path.name} is a legacy HDF5 model, which Keras loads without safe mode",
                              got=suffix, fix="re-save it as .keras (model.save('m.keras')) or pass trust=True "
                                              "only if you trust the file's source")
    try:
        model = keras.saving.load_model(str(path), safe_mode=not trust, custom_objects=custom_objects, compile=False)
    except ValueError as exc:
        text = str(exc)
        if "safe_mode" in text or "unsafe" in text.lower() or "lambda" in text.lower():
            raise UnsafeFileError(f"{path.name} contains a Lambda layer whose code Keras refuses to run in safe mode",
                                  got=text.splitlines()[0][:300],
                                  fix="pass trust=True only if you trust the file's source") from None
        raise IncompatibleModelError(f"{path.name} could not be loaded as a Keras model", got=text.splitlines()[0][:300],
                                     fix="pass custom_objects= for custom layers, or re-save with model.save('m.keras')") from None
    if not isinstance(model, keras.Model):
        raise IncompatibleModelError(f"{path.name} did not hold a keras.Model", got=type(model).__name__,
                                     fix="save a Keras model with model.save('m.keras')")
    return model
