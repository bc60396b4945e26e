"""Accuracies with confidence intervals, and ε bookkeeping."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["proportion_ci", "CI_METHOD", "CI_LEVEL", "validate_eps", "eps_display", "perturbation_norms"]

#: Clopper-Pearson ("exact") intervals: conservative, never narrower than the data allow.
CI_METHOD = "clopper-pearson"
CI_LEVEL = 0.95


def proportion_ci(k: int, n: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Two-sided Clopper-Pearson interval for ``k`` successes out of ``n`` (``(0, 1)`` when ``n == 0``)."""
    if n <= 0:
        return (0.0, 1.0)
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return (float(ci.low), float(ci.high))


def eps_display(eps: float, clip_range: float = 1.0) -> str:
    """A human form of ε: ``8/255`` where ε is a whole number of 1/255 steps of a [0, 1] input range and
    has no short decimal form; otherwise the plain number (``0.1``)."""
    if eps == 0:
        return "0"
    if round(eps, 4) == eps:
        return f"{eps:g}"
    steps = eps / clip_range * 255
    if abs(steps - round(steps)) < 1e-6 and round(steps) >= 1:
        return f"{int(round(steps))}/255" if clip_range == 1.0 else f"{int(round(steps))}/255 of the input range"
    return f"{eps:.4g}"


def validate_eps(eps: Any, *, norm: str, clip_range: float, input_size: int) -> list[float]:
    """Check the ε list before anything runs; return it sorted ascending.

    Refuses empty, negative, NaN/Inf or duplicate values, and ε that look like pixel units on a
    model whose inputs span ``clip_range``: L∞ ε >= the range, L2 ε >= range·√d, L1 ε >= range·d
    (those would allow replacing the whole input).
    """
    fix = "pass ε in the model's input scale, e.g. eps=[8/255] for images in [0, 1]"
    if isinstance(eps, (int, float, np.integer, np.floating)) and not isinstance(eps, bool):
        eps = [eps]
    try:
        values = [float(e) for e in eps]
    except (TypeError, ValueError):
        raise ConfigError("eps must be a number or a list of numbers", got=eps, fix=fix) from None
    if not values:
        raise ConfigError("eps is empty", got=eps, fix=fix)
    bad = [e for e in values if not math.isfinite(e) or e < 0]
    if bad:
        raise ConfigError("eps values must be finite and >= 0", got=bad, fix=fix)
    if len(set(values)) != len(values):
        raise ConfigError("eps lists the same value twice", got=values, fix="list each ε once")
    limit = {"linf": clip_range, "l2": clip_range * math.sqrt(input_size), "l1": clip_range * input_size}[norm]
    too_big = [e for e in values if e >= limit]
    if too_big:
        hint = f" (ε={too_big[0]:g} looks like pixel units: did you mean {too_big[0] / 255:.4g}?)" if too_big[0] >= 1 else ""
        raise ConfigError(f"{norm} ε must be smaller than {limit:g} for inputs spanning {clip_range:g}{hint}",
                          got=too_big, fix=fix)
    return sorted(values)


def perturbation_norms(x: np.ndarray, x_adv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample L∞ and L2 norms of ``x_adv - x`` (float64)."""
    d = (np.asarray(x_adv, np.float64) - np.asarray(x, np.float64)).reshape(len(x), -1)
    return np.abs(d).max(axis=1, initial=0.0), np.sqrt((d * d).sum(axis=1))
