"""The interface native attack kernels see: a model as NumPy in, NumPy out.

Kernels (``attacks/kernels/``) are plain functions of ``(oracle, x, y, hyperparameters) -> x_adv``.
They never import a framework, ``attacks/`` or ``evaluation/``: data flows one way. The framework
backends (``aisec_lab/backends/pytorch.py``, ``backends/tensorflow.py``) implement this protocol with
one forward (and, for gradients, one backward) pass per call and parameter gradients switched off.

Loss conventions (every loss is per sample and is to be **maximised** by the attack):

``"ce"``      cross-entropy of the true label ``y``; targeted: ``-CE(z, y_target)``.
``"dlr"``     Croce & Hein's difference-of-logits ratio, ``-(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3 + 1e-12)``;
              targeted: ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)`` (needs >= 4 classes).
``"margin"``  ``max_{i!=y} z_i - z_y`` (Carlini-Wagner margin); targeted: ``z_t - max_{i!=t} z_i``.

``z_pi1 >= z_pi2 >= ...`` are the sorted logits. A sample is adversarial when ``margin > 0``
(untargeted: predicted label != y; targeted: predicted label == y_target).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Oracle", "LOSSES", "loss_from_logits", "is_adversarial"]

LOSSES = ("ce", "dlr", "margin")


@runtime_checkable
class Oracle(Protocol):
    nb_classes: int
    input_shape: tuple[int, ...]
    clip_min: np.ndarray  # float32, broadcastable to (n, *input_shape)
    clip_max: np.ndarray
    has_gradients: bool
    queries: int  # number of samples forwarded so far (each row of each call counts one)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``(n, nb_classes)`` float32 logits (or scores) for float32 ``x`` of shape ``(n, *input_shape)``."""

    def value_and_grad(self, x: np.ndarray, y: np.ndarray, *, loss: str = "ce",
                       y_target: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(loss (n,), d loss / d x (n, *input_shape), logits (n, K))`` from one forward + backward pass.

        The gradient is that of the *sum* of per-sample losses, so each row is that sample's own gradient.
        """


def loss_from_logits(z: np.ndarray, y: np.ndarray, *, loss: str = "margin",
                     y_target: np.ndarray | None = None) -> np.ndarray:
    """The losses above computed in NumPy from logits (for score-based kernels such as Square)."""
    z = np.asarray(z, dtype=np.float64)
    n, k = z.shape
    rows = np.arange(n)
    zy = z[rows, y]
    if loss == "ce":
        m = z.max(axis=1, keepdims=True)
        lse = (m[:, 0] + np.log(np.exp(z - m).sum(axis=1)))
        if y_target is None:
            return (lse - zy).astype(np.float32)
        return (z[rows, y_target] - lse).astype(np.float32)
    if loss == "margin":
        if y_target is None:
            other = np.where(np.arange(k)[None, :] == y[:, None], -np.inf, z).max(axis=1)
            return (other - zy).astype(np.float32)
        zt = z[rows, y_target]
        other = np.where(np.arange(k)[None, :] == y_target[:, None], -np.inf, z).max(axis=1)
        return (zt - other).astype(np.float32)
    if loss == "dlr":
        zs = np.sort(z, axis=1)[:, ::-1]
        if y_target is None:
            other = np.where(np.arange(k)[None, :] == y[:, None], -np.inf, z).max(axis=1)
            return (-(zy - other) / (zs[:, 0] - zs[:, 2] + 1e-12)).astype(np.float32)
        zt = z[rows, y_target]
        return (-(zy - zt) / (zs[:, 0] - 0.5 * (zs[:, 2] + zs[:, 3]) + 1e-12)).astype(np.float32)
    raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES}")


def is_adversarial(z: np.ndarray, y: np.ndarray, y_target: np.ndarray | None = None) -> np.ndarray:
    pred = np.asarray(z).argmax(axis=1)
    return pred == y_target if y_target is not None else pred != y
