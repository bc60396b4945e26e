"""The one framework boundary: native model (or file, or predict function) in, :class:`Target` out.

``wrap_model`` detects the framework from the object's class *without importing* torch or
tensorflow, then hands off to ``models/pytorch.py`` or ``models/tensorflow.py``. After this point the
rest of aisec-lab sees only the :class:`Target` (an ART estimator plus metadata) and NumPy arrays.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any, Callable

from .._optional import import_keras, import_torch
from ..errors import ConfigError, IncompatibleModelError, UnsafeFileError
from .blackbox import wrap_predict
from .spec import FRAMEWORKS, Target, check_input_shape, check_nb_classes, normalize_clip_values

__all__ = ["Target", "wrap_model", "wrap_predict", "load_model", "detect_framework", "FRAMEWORKS", "with_input_transform",
           "rewrap"]

log = logging.getLogger(__name__)

#: framework string -> module implementing ``wrap`` / ``load_file`` / ``is_model``.
_BACKENDS = {"pytorch": "aisec_lab.models.pytorch", "tensorflow": "aisec_lab.models.tensorflow"}
_IMPORTERS = {"pytorch": import_torch, "tensorflow": import_keras}

_PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".dill", ".cloudpickle"}
_TORCH_SUFFIXES = {".pt", ".pth", ".bin", ".ts", ".torchscript"}
_KERAS_SUFFIXES = {".keras", ".h5", ".hdf5"}


def detect_framework(model: Any) -> str | None:
    """``"pytorch"``, ``"tensorflow"`` or ``None``, read from the class hierarchy (imports nothing)."""
    for cls in type(model).__mro__:
        top = (cls.__module__ or "").split(".")[0]
        if top == "torch":
            return "pytorch"
        if top in ("keras", "tensorflow", "tf_keras"):
            return "tensorflow"
    return None


def _backend(framework: str):
    _IMPORTERS[framework](f"wrap a {framework} model")
    return importlib.import_module(_BACKENDS[framework])


def wrap_model(
    model: Any,
    *,
    input_shape: Any,
    nb_classes: int,
    clip_values: Any,
    preprocessing: Any = None,
    channels_first: bool | None = None,
    logits: bool = True,
    device: str | None = None,
    name: str | None = None,
) -> Target:
    """Wrap a ``torch.nn.Module`` or Keras 3 model once, into a :class:`Target`.

    Parameters
    ----------
    input_shape:
        Shape of ONE sample in the data's canonical layout (channels first), e.g. ``ds.input_shape``.
        Not the model's own layout: a channels-last Keras model is fed transposed data inside the
        target (the layout is read from the model, or given by ``channels_first``).
    nb_classes:
        Number of classes. A model with a single output and ``nb_classes=2`` is a binary
        classifier: its output is read as the positive-class logit (or probability with ``logits=False``).
    clip_values:
        ``(min, max)`` of valid inputs: scalars, one value per channel, or arrays broadcastable to
        ``input_shape``.
    preprocessing:
        ART's ``(subtract, divide)`` normalisation applied inside the target, so attacks work in the
        un-normalised ``clip_values`` space.
    channels_first:
        The *model's* layout; ``None`` reads it from the model (Keras) or assumes channels first (torch).
    logits:
        ``True`` (default) when the model returns logits. Models that return probabilities are
        detected and flagged (``target.output_type == "probabilities"``); pass ``logits=False`` to
        attack their log-probabilities instead.
    device:
        ``None``/``"cpu"`` (default) or ``"cuda"`` (an error if no GPU is available).
    name:
        Display name recorded in scorecards; defaults to the model's class or Keras name.

    Torch models are put in eval mode. Inputs are cast to float32 inside the target.
    """
    if isinstance(model, (str, os.PathLike)):
        raise IncompatibleModelError("wrap_model takes a model object, not a path", got=str(model),
                                     fix="load it first: model = aisec_lab.load_model(path, ...)")
    framework = detect_framework(model)
    if framework is None:
        fix = "pass a torch.nn.Module or a keras.Model"
        if callable(model):
            fix += "; for a model known only by a prediction function use wrap_predict(fn, ...)"
        if hasattr(model, "predict_proba"):
            fix += "; for a scikit-learn estimator use wrap_predict(est.predict_proba, ...)"
        raise IncompatibleModelError("the model is neither a PyTorch nor a Keras 3 model",
                                     got=f"an object of type {type(model).__module__}.{type(model).__qualname__}",
                                     fix=fix)
    input_shape = check_input_shape(input_shape)
    nb_classes = check_nb_classes(nb_classes)
    clip_values = normalize_clip_values(clip_values, input_shape)
    if not isinstance(logits, bool):
        raise ConfigError("logits must be True or False", got=logits, fix="logits=False for a model returning probabilities")
    backend = _backend(framework)
    if not backend.is_model(model):
        raise IncompatibleModelError(f"the {framework} object is not a model that can be wrapped",
                                     got=type(model).__qualname__,
                                     fix="pass a torch.nn.Module or a keras.Model (not a layer, tensor or optimizer)")
    return backend.wrap(model, input_shape=input_shape, nb_classes=nb_classes, clip_values=clip_values,
                        preprocessing=preprocessing, channels_first=channels_first, logits=logits, device=device,
                        name=name)


def _sniff_pickle(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(2)
    return len(head) == 2 and head[0] == 0x80 and head[1] <= 5  # pickle protocol 2-5 header


def load_model(
    path: str | os.PathLike,
    *,
    framework: str | None = None,
    factory: Callable[[], Any] | None = None,
    trust: bool = False,
    device: str | None = None,
    custom_objects: dict | None = None,
) -> Any:
    """Load a native model from a file, refusing anything that would unpickle code unless ``trust=True``.

    * ``.keras`` -> Keras 3, ``safe_mode=True`` (legacy ``.h5`` needs ``trust=True``);
    * TorchScript archive -> ``torch.jit.load``;
    * ``state_dict`` (``.pt``/``.pth``) -> ``torch.load(weights_only=True)`` into ``factory()``;
    * plain pickles (``.pkl``, ``.joblib``, a ``torch.save(model)`` file) -> refused unless ``trust=True``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("no such model file", got=str(path), fix="check the path")
    suffix = path.suffix.lower()
    if framework is not None and framework not in FRAMEWORKS:
        raise ConfigError("unknown framework", got=framework, fix=f"use one of {', '.join(FRAMEWORKS)}")
    if suffix in _PICKLE_SUFFIXES or (suffix not in _TORCH_SUFFIXES | _KERAS_SUFFIXES and _sniff_pickle(path)):
        if not trust:
            raise UnsafeFileError(f"{path.name} is a pickle; unpickling runs arbitrary code from the file",
                                  got=suffix or "a pickle header",
                                  fix="save weights in a safe format (.keras, a torch state_dict, TorchScript), "
                                      "or pass trust=True only if you trust the file's source")
        import pickle

        log.warning("unpickling %s because trust=True was given", path)
        with open(path, "rb") as fh:
            return pickle.load(fh)  # noqa: S301 - explicit trust=True
    if framework is None:
        if suffix in _KERAS_SUFFIXES:
            framework = "tensorflow"
        elif suffix in _TORCH_SUFFIXES:
            framework = "pytorch"
        else:
            raise ConfigError(f"cannot tell the framework of {path.name} from its suffix", got=suffix or "(none)",
                              fix="pass framework='pytorch' or framework='tensorflow'")
    return _backend(framework).load_file(path, factory=factory, trust=trust, device=device,
                                         custom_objects=custom_objects)


def with_input_transform(target: Target, transform: Callable, **changes: Any) -> Target:
    """A new target whose forward pass applies ``transform`` (NumPy, canonical layout) before the model.

    The transform is treated as the identity on the backward pass (straight-through / BPDA). ``changes``
    are other :class:`Target` fields to replace (``name``, ``defense``). ``target`` itself is unchanged.
    """
    if target.framework == "blackbox":
        from . import blackbox

        return blackbox.with_input_transform(target, transform, **changes)
    return _backend(target.framework).with_input_transform(target, transform, **changes)


def rewrap(target: Target, model: Any, *, name: str | None = None) -> Target:
    """Wrap ``model`` (same architecture as ``target.model``) with every setting ``target`` was wrapped with."""
    if target.framework not in FRAMEWORKS:
        raise IncompatibleModelError("only torch and Keras targets can be re-wrapped", got=target.framework,
                                     fix="wrap the new model with wrap_model / wrap_predict")
    layout = target.model_layout
    return wrap_model(model, input_shape=target.input_shape, nb_classes=target.nb_classes,
                      clip_values=target.clip_values, preprocessing=target.preprocessing,
                      channels_first=None if layout == "flat" else layout == "channels_first",
                      logits=not target.logits_from_probabilities,
                      device=None if target.device in ("cpu", None) else target.device,
                      name=name or target.name)
