"""Targets known only by a prediction function (black-box: decision- and score-based attacks only)."""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from ..backends import PredictFnOracle, count_estimator_queries
from ..errors import IncompatibleModelError
from .spec import Target, analyse_outputs, check_input_shape, check_nb_classes, normalize_clip_values, probe_inputs

log = logging.getLogger(__name__)


class _PredictFn:
    """Casts to float32, calls the user's function, checks the output shape, returns float32 scores."""

    def __init__(self, fn: Callable, nb_classes: int, binary: bool):
        self.fn = fn
        self.nb_classes = nb_classes
        self.binary = binary
        self.calls = 0
        self.samples = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        out = np.asarray(self.fn(x), dtype=np.float32)
        self.calls += 1
        self.samples += len(x)
        if out.ndim == 1:
            out = out[:, None]
        if self.binary:
            out = np.concatenate([1.0 - out, out], axis=1) if np.all((out >= 0) & (out <= 1)) else \
                np.concatenate([np.zeros_like(out), out], axis=1)
        if out.shape != (len(x), self.nb_classes):
            raise IncompatibleModelError("the prediction function returned the wrong shape",
                                         got=f"{out.shape} for a batch of {len(x)}",
                                         fix=f"return scores of shape (n, {self.nb_classes})")
        return out


def wrap_predict(fn: Callable[[np.ndarray], Any], *, input_shape, nb_classes: int, clip_values,
                 name: str | None = None) -> Target:
    """Wrap a model known only by ``fn(x) -> scores`` (logits or probabilities, shape ``(n, nb_classes)``).

    ``fn`` receives float32 batches in the canonical channels-first layout. Such a target has no
    gradients: only decision- and score-based attacks (and noise baselines) apply to it. A single
    score per sample with ``nb_classes=2`` is read as the positive class (a probability if it lies
    in [0, 1], otherwise a logit). Calls and queried samples are counted on ``target.estimator.predict_fn``.
    """
    from art.estimators.classification import BlackBoxClassifier

    if not callable(fn):
        raise IncompatibleModelError("wrap_predict expects a callable fn(x) -> scores", got=type(fn).__name__,
                                     fix="pass e.g. model.predict_proba, or use wrap_model for torch/Keras models")
    input_shape = check_input_shape(input_shape)
    nb_classes = check_nb_classes(nb_classes)
    clip_values = normalize_clip_values(clip_values, input_shape)
    probe = probe_inputs(input_shape, clip_values)
    try:
        raw = np.asarray(fn(probe), dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - any failure of user code on the probe is re-raised as a clear error
        raise IncompatibleModelError(f"the prediction function failed on a probe batch of shape {probe.shape}",
                                     got=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                                     fix="make fn accept float32 arrays of shape (n, *input_shape) in channels-first layout") from None
    analysis = analyse_outputs(raw, nb_classes, batch=len(probe))
    predict_fn = _PredictFn(fn, nb_classes, analysis.binary_single_logit)
    classifier = BlackBoxClassifier(predict_fn, tuple(input_shape), nb_classes, clip_values=clip_values)
    if analysis.looks_like_probabilities:
        log.info("prediction function %s returns probabilities; score-based attacks use them as scores", name or fn)
    oracle = PredictFnOracle(predict_fn, nb_classes, input_shape, clip_values)
    count_estimator_queries(classifier, oracle)
    return Target(
        estimator=classifier, model=fn, framework="blackbox", input_shape=input_shape, nb_classes=nb_classes,
        clip_values=clip_values, name=name or getattr(fn, "__name__", type(fn).__name__), model_layout="channels_first",
        n_params=None, weights_sha256=None, device="cpu",
        output_type="probabilities" if analysis.looks_like_probabilities else "logits",
        binary_single_logit=analysis.binary_single_logit, has_gradients=False,
        oracle=oracle,
    )



def with_input_transform(target: Target, transform: Callable, **changes: Any) -> Target:
    """A copy of a black-box ``target`` whose prediction function first applies ``transform``."""
    import dataclasses

    from art.estimators.classification import BlackBoxClassifier

    inner = target.oracle.fn

    def defended(x: np.ndarray) -> np.ndarray:
        return inner(np.asarray(transform(np.asarray(x, dtype=np.float32)), dtype=np.float32))

    classifier = BlackBoxClassifier(defended, tuple(target.input_shape), target.nb_classes,
                                    clip_values=target.clip_values)
    oracle = PredictFnOracle(defended, target.nb_classes, target.input_shape, target.clip_values)
    count_estimator_queries(classifier, oracle)
    return dataclasses.replace(target, estimator=classifier, oracle=oracle, **changes)
