"""Native fast paths: the :class:`~aisec_lab.attacks.oracle.Oracle` of each framework.

``pytorch.py`` and ``tensorflow.py`` implement the same small interface over a wrapped model (one
forward, and one backward pass for gradients, per call; no parameter gradients), so the NumPy attack
kernels in ``attacks/kernels/`` run unchanged on both. ``PredictFnOracle`` serves black-box targets.
"""

from __future__ import annotations

from typing import Callable

import contextlib

import numpy as np

from ..errors import IncompatibleModelError

__all__ = ["PredictFnOracle", "BaseOracle", "count_estimator_queries"]


def count_estimator_queries(estimator, oracle) -> None:
    """Make ART's entry points add to ``oracle``'s counters, so attacks run through ART report their queries."""
    import functools

    def counted(method, gradient: bool):
        @functools.wraps(method)
        def wrapper(x, *args, **kwargs):
            oracle.queries += len(x)
            if gradient:
                oracle.gradient_queries += len(x)
            return method(x, *args, **kwargs)

        return wrapper

    for name, gradient in (("predict", False), ("loss_gradient", True), ("class_gradient", True)):
        method = getattr(estimator, name, None)
        if method is not None:
            setattr(estimator, name, counted(method, gradient))


class BaseOracle:
    """Shared bookkeeping: shapes, clip bounds and the query counter."""

    has_gradients = False

    def __init__(self, nb_classes: int, input_shape: tuple[int, ...], clip_values):
        self.nb_classes = int(nb_classes)
        self.input_shape = tuple(input_shape)
        self.clip_min = np.broadcast_to(np.asarray(clip_values[0], dtype=np.float32), self.input_shape)
        self.clip_max = np.broadcast_to(np.asarray(clip_values[1], dtype=np.float32), self.input_shape)
        self.queries = 0
        self.gradient_queries = 0

    #: intra-op thread counts worth timing for this backend (None: leave the framework alone)
    thread_options: tuple = (None,)

    def threads(self, n: int | None):
        """Context in which the framework uses ``n`` intra-op threads (restored afterwards)."""
        return contextlib.nullcontext()

    def value_and_grad(self, x, y, *, loss="ce", y_target=None):
        raise IncompatibleModelError("this target has no gradients", got=type(self).__name__,
                                     fix="use a score- or decision-based attack")


class PredictFnOracle(BaseOracle):
    """Oracle over a NumPy prediction function (targets built by ``wrap_predict``)."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], nb_classes: int, input_shape, clip_values):
        super().__init__(nb_classes, input_shape, clip_values)
        self.fn = fn

    def logits(self, x: np.ndarray) -> np.ndarray:
        self.queries += len(x)
        return np.asarray(self.fn(np.asarray(x, dtype=np.float32)), dtype=np.float32)
