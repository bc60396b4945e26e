"""The ``certified`` section: L2 certified accuracy by randomized smoothing (Cohen, Rosenfeld & Kolter 2019).

The base model ``f`` (the wrapped target) is turned into the *smoothed classifier*

    g(x) = argmax_c P(f(x + N(0, sigma^2 I)) = c)

and for every evaluated sample the CERTIFY procedure of Cohen et al. (Algorithm "CERTIFY") runs around
the target with NumPy and ``target.oracle.logits`` (framework-neutral):

1. ``n0`` noisy copies select the candidate class ``cA`` (the most frequent prediction);
2. ``n`` fresh, independent noisy copies count the votes ``nA`` for ``cA``;
3. ``pA_lower`` is the one-sided Clopper-Pearson lower bound on ``P(f(x + noise) = cA)`` at confidence
   ``1 - alpha`` (``scipy.stats.beta.ppf(alpha, nA, n - nA + 1)``);
4. if ``pA_lower < 0.5`` the sample is an *abstention*; otherwise ``g`` predicts ``cA`` with certified
   L2 radius ``sigma * Phi^-1(pA_lower)``: with probability at least ``1 - alpha`` over the noise draws,
   ``g`` returns ``cA`` on every input within that radius.

**What is guaranteed.** The certificate is a property of the smoothed classifier ``g``, not of the base
model: an attacker who queries ``f`` directly is not bound by it, and deploying the guarantee means
deploying ``g`` (a Monte Carlo vote at prediction time).

**Certified accuracy at radius r** is the fraction of certified samples whose smoothed prediction is
correct, not abstained, and certified at a radius ``>= r``; it is non-increasing in ``r`` by construction.
Each value carries a two-sided 95 % Clopper-Pearson interval over the evaluated samples (the sampling
error of the sample set; the noise's error is bounded separately by ``alpha``).

**Choices made here** (recorded in the section):

* *Samples*: ``n_samples`` of the evaluated samples, drawn stratified by class with the evaluation's
  seed (all of them when ``n_samples`` is ``None`` or not smaller than the evaluated set).
* *Noise* is Gaussian in the model's input scale (``sigma`` in the units of ``clip_values``), drawn from
  ``np.random.default_rng(seed)`` -- the selection draws first, then the estimation draws, so they are
  independent; results do not depend on ``batch_size``.
* *No clipping* by default, as in Cohen et al.: noisy inputs may leave ``clip_values``. With
  ``clip=True`` they are clipped to ``clip_values`` first; the certificate then holds for the smoothed
  classifier of ``f(clip(.))`` (clipping is part of the base classifier, the guarantee is unchanged in
  form), which is the classifier you must deploy.
* ``smoothed_clean_accuracy`` is the accuracy of ``g``'s Monte Carlo prediction (the majority of the
  ``n`` estimation votes, no abstention): set against ``base_clean_accuracy`` it shows what the noise
  costs on clean accuracy. ``accuracy_not_abstained`` counts abstentions as errors.
* Default radii are ``[0.5, 1, 1.5, 2] * sigma``: larger radii need ``pA_lower`` close to 1 and so many
  noise samples (the largest radius ``n`` votes can certify is ``sigma * Phi^-1(alpha^(1/n))``, 0.62 for
  ``sigma=0.25, n=1000, alpha=0.001``). Radii must be > 0 (radius 0 certifies nothing; it is the
  ``accuracy_not_abstained``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from ..errors import ConfigError
from . import SectionContext, SectionSpec, register_section

__all__ = ["compute", "certify", "max_certifiable_radius", "SPEC", "DEFAULTS", "LABEL"]

log = logging.getLogger(__name__)

LABEL = "guarantee of the smoothed classifier g(x) = argmax P(f(x + N(0, sigma^2 I)) = c), not of the base model"
GUARANTEE = "smoothed classifier"
METHOD = "randomized smoothing, CERTIFY of Cohen, Rosenfeld & Kolter (2019)"
DOC = "aisec_lab/sections/certified.py"

DEFAULTS: dict[str, Any] = {
    "sigma": 0.25,
    "n0": 100,
    "n": 1000,
    "alpha": 0.001,
    "radii": None,  # None: [0.5, 1, 1.5, 2] * sigma
    "n_samples": 100,
    "batch_size": 500,
    "clip": False,
}
DEFAULT_RADII_IN_SIGMA = (0.5, 1.0, 1.5, 2.0)

#: below this many estimation votes the certificate is a formality: the check fails
MIN_NOISE_SAMPLES = 100
#: below this many certified samples the certified accuracy's interval is wider than about +-0.1
MIN_CERTIFIED_SAMPLES = 100
CI_LEVEL = 0.95


# -- parameter validation ------------------------------------------------------------------------
def _positive_int(value: Any, name: str, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"certified: {name} must be a positive integer", got=value, fix=f"e.g. {name}={example}")
    return int(value)


def _check_sigma(sigma: Any, clip_range: float) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(sigma)) or sigma <= 0:
        raise ConfigError("certified: sigma (the smoothing noise's standard deviation) must be a finite number > 0",
                          got=sigma, fix="pass sigma in the model's input scale, e.g. sigma=0.25 for inputs in [0, 1]")
    sigma = float(sigma)
    if sigma > clip_range:
        raise ConfigError(
            f"certified: sigma={sigma:g} is larger than the model's whole input range ({clip_range:g}); "
            "it looks like pixel units", got=sigma,
            fix=f"pass sigma in the model's input scale (e.g. 0.25 for inputs in [0, 1], "
                f"that is {0.25 * clip_range:g} for this target)")
    return sigma


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0 < float(alpha) < 0.5:
        raise ConfigError("certified: alpha (the certificate's failure probability) must lie in (0, 0.5)", got=alpha,
                          fix="e.g. alpha=0.001 (99.9 % confidence, as in Cohen et al.)")
    return float(alpha)


def _check_radii(radii: Any, sigma: float) -> list[float]:
    fix = "pass L2 radii > 0 in the model's input scale, e.g. radii=[0.125, 0.25, 0.5]"
    if radii is None:
        return [round(k * sigma, 12) for k in DEFAULT_RADII_IN_SIGMA]
    if isinstance(radii, (int, float, np.integer, np.floating)) and not isinstance(radii, bool):
        radii = [radii]
    try:
        values = [float(r) for r in radii]
    except (TypeError, ValueError):
        raise ConfigError("certified: radii must be a list of numbers", got=radii, fix=fix) from None
    if not values:
        raise ConfigError("certified: radii is empty", got=radii, fix=fix)
    bad = [r for r in values if not math.isfinite(r) or r <= 0]
    if bad:
        raise ConfigError("certified: radii must be finite and > 0 (radius 0 certifies nothing; the share of "
                          "correct, non-abstained predictions is reported as accuracy_not_abstained)",
                          got=bad, fix=fix)
    if len(set(values)) != len(values):
        raise ConfigError("certified: radii lists a value twice", got=values, fix="list each radius once")
    return sorted(values)


# -- the procedure -------------------------------------------------------------------------------
def max_certifiable_radius(sigma: float, n: int, alpha: float) -> float:
    """The largest radius ``n`` votes can certify: ``sigma * Phi^-1(alpha^(1/n))`` (all ``n`` votes agree).

    ``alpha^(1/n)`` is the one-sided Clopper-Pearson lower bound for ``n`` successes out of ``n``.
    Zero or negative means ``n`` is too small to certify anything at confidence ``1 - alpha``.
    """
    from scipy.stats import norm

    return float(sigma * norm.ppf(alpha ** (1.0 / n)))


def _vote_counts(oracle, x: np.ndarray, n_draws: int, sigma: float, rng: np.random.Generator, *, batch_size: int,
                 nb_classes: int, clip: bool, bar=None) -> np.ndarray:
    """``(len(x), nb_classes)`` counts of the base model's predictions on ``n_draws`` noisy copies of each sample.

    Rows are laid out sample by sample (sample ``i`` owns rows ``i*n_draws .. (i+1)*n_draws-1``) and cut
    into batches of ``batch_size`` rows, so the noise stream, and the result, do not depend on ``batch_size``.
    """
    counts = np.zeros((len(x), nb_classes), dtype=np.int64)
    total = len(x) * n_draws
    lo = np.asarray(oracle.clip_min, np.float32)
    hi = np.asarray(oracle.clip_max, np.float32)
    for start in range(0, total, batch_size):
        rows = np.arange(start, min(start + batch_size, total))
        owner = rows // n_draws
        noisy = x[owner] + rng.standard_normal((len(rows),) + x.shape[1:], dtype=np.float32) * np.float32(sigma)
        if clip:
            noisy = np.clip(noisy, lo, hi)
        pred = np.asarray(oracle.logits(noisy.astype(np.float32, copy=False))).argmax(axis=1)
        np.add.at(counts, (owner, pred), 1)
        if bar is not None:
            bar.update(len(rows))
    return counts


def certify(oracle, x: np.ndarray, *, sigma: float, n0: int, n: int, alpha: float, nb_classes: int, seed: int = 0,
            batch_size: int = 500, clip: bool = False, progress: bool = False) -> dict[str, np.ndarray]:
    """Cohen et al.'s CERTIFY on every row of ``x`` (canonical layout, float32).

    Returns per-sample arrays: ``prediction`` (``-1`` for an abstention), ``radius`` (``nan`` for an
    abstention), ``p_lower`` (the Clopper-Pearson lower bound on the top class's probability), ``n_top``
    (votes for the selected class among the ``n`` estimation draws) and ``majority`` (the most frequent
    class among the ``n`` estimation draws: the Monte Carlo prediction of the smoothed classifier).
    """
    from scipy.stats import beta, norm
    from tqdm.auto import tqdm

    x = np.asarray(x, dtype=np.float32)
    rng = np.random.default_rng(seed)
    with tqdm(total=len(x) * (n0 + n), desc="certify", unit="query", disable=not progress or None,
              leave=False) as bar:
        selection = _vote_counts(oracle, x, n0, sigma, rng, batch_size=batch_size, nb_classes=nb_classes, clip=clip,
                                 bar=bar)
        estimation = _vote_counts(oracle, x, n, sigma, rng, batch_size=batch_size, nb_classes=nb_classes, clip=clip,
                                  bar=bar)
    candidate = selection.argmax(axis=1)
    n_top = estimation[np.arange(len(x)), candidate]
    with np.errstate(invalid="ignore"):
        p_lower = np.where(n_top > 0, beta.ppf(alpha, np.maximum(n_top, 1), n - n_top + 1), 0.0)
    certified = p_lower >= 0.5
    radius = np.where(certified, sigma * norm.ppf(np.clip(p_lower, 0.5, 1.0)), np.nan)
    return {
        "prediction": np.where(certified, candidate, -1).astype(np.int64),
        "radius": radius.astype(np.float64),
        "p_lower": p_lower.astype(np.float64),
        "n_top": n_top.astype(np.int64),
        "majority": estimation.argmax(axis=1).astype(np.int64),
    }


def _select(data, n_samples: Any, seed: int) -> tuple[Any, np.ndarray]:
    """The samples to certify and their indices into ``data`` (stratified by class, seeded)."""
    if n_samples is None or n_samples >= data.n:
        if n_samples is not None and n_samples > data.n:
            log.info("certified: n_samples=%d is more than the %d evaluated samples; certifying all of them",
                     n_samples, data.n)
        return data, np.arange(data.n)
    from sklearn.model_selection import train_test_split

    counts = np.bincount(data.y)
    stratify = data.y if (counts[counts > 0].min() >= 2 and n_samples >= (counts > 0).sum()) else None
    idx, _ = train_test_split(np.arange(data.n), train_size=int(n_samples), random_state=seed, stratify=stratify)
    idx = np.sort(idx)
    return data.subset(idx), idx


def _round(v: float, digits: int = 6) -> float:
    return float(round(float(v), digits))


def compute(ctx: SectionContext, *, sigma: float = DEFAULTS["sigma"], n0: int = DEFAULTS["n0"],
            n: int = DEFAULTS["n"], alpha: float = DEFAULTS["alpha"], radii: Any = DEFAULTS["radii"],
            n_samples: int | None = DEFAULTS["n_samples"], batch_size: int = DEFAULTS["batch_size"],
            clip: bool = DEFAULTS["clip"]) -> dict:
    """Certified accuracy of the smoothed target at L2 ``radii`` (see the module docstring)."""
    from ..evaluation.metrics import proportion_ci

    target = ctx.target
    sigma = _check_sigma(sigma, target.clip_range)
    n0 = _positive_int(n0, "n0", 100)
    n = _positive_int(n, "n", 1000)
    alpha = _check_alpha(alpha)
    radii = _check_radii(radii, sigma)
    batch_size = _positive_int(batch_size, "batch_size", 500)
    if n_samples is not None:
        n_samples = _positive_int(n_samples, "n_samples", 100)
    if not isinstance(clip, bool):
        raise ConfigError("certified: clip must be True or False", got=clip,
                          fix="clip=False (Cohen et al.) or clip=True to clip noisy inputs to clip_values")
    if target.oracle is None:
        raise ConfigError("certified: the target has no oracle (native forward pass)", got=repr(target),
                          fix="wrap the model with al.wrap_model or al.wrap_predict")
    target.check_data(ctx.data.x, ctx.data.y, what="the evaluated data")
    data, index = _select(ctx.data, n_samples, ctx.seed)
    if data.n == 0:
        raise ConfigError("certified: there are no samples to certify", got="0 samples", fix="evaluate at least one sample")
    x = np.asarray(data.x, dtype=np.float32)
    y = np.asarray(data.y, dtype=np.int64)
    log.info("certified: %d samples x (%d + %d) noise draws at sigma=%g", len(x), n0, n, sigma)

    base_pred = np.concatenate([np.asarray(target.oracle.logits(x[i:i + batch_size])).argmax(axis=1)
                                for i in range(0, len(x), batch_size)])
    out = certify(target.oracle, x, sigma=sigma, n0=n0, n=n, alpha=alpha, nb_classes=target.nb_classes,
                  seed=ctx.seed, batch_size=batch_size, clip=clip, progress=ctx.progress)
    total = len(x)
    abstained = out["prediction"] < 0
    correct = (out["prediction"] == y) & ~abstained
    radius = np.where(correct, out["radius"], -np.inf)
    certified_counts = [int(np.sum(radius >= r)) for r in radii]
    certified_acc = [_round(k / total) for k in certified_counts]
    correct_radii = out["radius"][correct]
    max_radius = max_certifiable_radius(sigma, n, alpha)
    base_acc = float(np.mean(base_pred == y))
    smoothed_acc = float(np.mean(out["majority"] == y))
    return {
        "method": METHOD,
        "guarantee": GUARANTEE,
        "label": LABEL,
        "norm": "l2",
        "radii": radii,
        "certified_accuracy": certified_acc,
        "certified_accuracy_ci": [[_round(v) for v in proportion_ci(k, total, CI_LEVEL)] for k in certified_counts],
        "n_certified_correct": certified_counts,
        "ci_level": CI_LEVEL,
        "ci_method": "clopper-pearson over the certified samples",
        "sigma": sigma,
        "n_noise_samples": n,
        "n0": n0,
        "alpha": alpha,
        "confidence": _round(1.0 - alpha, 12),
        "noisy_inputs_clipped": clip,
        "n_certified_samples": total,
        "sample_selection": ("all evaluated samples" if total == ctx.data.n
                             else f"{total} of {ctx.data.n} evaluated samples, stratified by class, seed {ctx.seed}"),
        "seed": ctx.seed,
        "abstentions": {"count": int(abstained.sum()), "rate": _round(abstained.mean())},
        "base_clean_accuracy": _round(base_acc),
        "smoothed_clean_accuracy": _round(smoothed_acc),
        "clean_accuracy_drop": _round(base_acc - smoothed_acc),
        "accuracy_not_abstained": _round(correct.mean()),
        "median_radius": _round(np.median(correct_radii)) if len(correct_radii) else None,
        "average_certified_radius": _round(np.where(correct, out["radius"], 0.0).mean()),
        "max_certifiable_radius": _round(max_radius),
        # unanimous votes: these samples' radii are capped by n, not by the model
        "n_at_max_certifiable_radius": int(np.sum(correct & (out["n_top"] == n))),
        "samples": {
            "index": index.tolist(),
            "label": y.tolist(),
            "prediction": out["prediction"].tolist(),
            "radius": [None if not np.isfinite(r) else _round(r) for r in out["radius"]],
            "n_top": out["n_top"].tolist(),
        },
    }


# -- checks ----------------------------------------------------------------------------------------
def _result(check_id: str, status: str, summary: str, **evidence: Any):
    from ..scorecard.record import CheckResult

    return CheckResult(id=check_id, status=status, summary=summary, evidence=evidence, doc=f"{DOC}#{check_id}")


def checks(section: dict, ctx: SectionContext | None = None) -> list:
    """``certified_sample_size`` and ``certified_sigma_scale``."""
    sigma, n, alpha = section["sigma"], section["n_noise_samples"], section["alpha"]
    radii = section["radii"]
    max_radius = max_certifiable_radius(sigma, n, alpha)
    total = section["n_certified_samples"]
    beyond = [r for r in radii if r > max_radius]
    evidence = {"n_noise_samples": n, "alpha": alpha, "sigma": sigma, "max_certifiable_radius": _round(max_radius),
                "radii_beyond_reach": beyond, "n_certified_samples": total,
                "n_at_max_certifiable_radius": section.get("n_at_max_certifiable_radius"),
                "min_noise_samples": MIN_NOISE_SAMPLES, "min_certified_samples": MIN_CERTIFIED_SAMPLES}
    if max_radius <= 0:
        size = _result("certified_sample_size", "fail",
                       f"n={n} noise samples cannot certify any radius at confidence {1 - alpha:g}: even unanimous "
                       f"votes give pA_lower={alpha ** (1 / n):.3f} < 0.5; use n >= {MIN_NOISE_SAMPLES}", **evidence)
    elif n < MIN_NOISE_SAMPLES:
        size = _result("certified_sample_size", "fail",
                       f"n={n} noise samples is below the minimum {MIN_NOISE_SAMPLES}: the largest certifiable radius "
                       f"is {max_radius:.3g}", **evidence)
    elif beyond:
        size = _result("certified_sample_size", "warn",
                       f"radii {', '.join(f'{r:g}' for r in beyond)} exceed the largest radius n={n} votes can certify "
                       f"({max_radius:.3g}); certified accuracy there is 0 by construction -- raise n or drop them",
                       **evidence)
    elif total < MIN_CERTIFIED_SAMPLES:
        size = _result("certified_sample_size", "warn",
                       f"only {total} samples were certified: the certified accuracies' 95 % intervals are wide "
                       f"(see certified_accuracy_ci); certify at least {MIN_CERTIFIED_SAMPLES}", **evidence)
    else:
        size = _result("certified_sample_size", "pass",
                       f"n={n} noise samples reach radius {max_radius:.3g} >= every requested radius; "
                       f"{total} samples certified", **evidence)

    clip_range = float(ctx.target.clip_range) if ctx is not None and ctx.target is not None else None
    base, smoothed = section["base_clean_accuracy"], section["smoothed_clean_accuracy"]
    evidence = {"sigma": sigma, "clip_range": clip_range,
                "sigma_over_range": None if not clip_range else _round(sigma / clip_range),
                "base_clean_accuracy": base, "smoothed_clean_accuracy": smoothed}
    if sigma <= 0 or (clip_range is not None and sigma > clip_range):
        scale = _result("certified_sigma_scale", "fail",
                        f"sigma={sigma:g} is outside the data scale (input range {clip_range}); it looks like pixel "
                        "units -- pass sigma in the model's input scale", **evidence)
    elif base > 0 and smoothed < 0.5 * base:
        scale = _result("certified_sigma_scale", "warn",
                        f"the noise at sigma={sigma:g} costs more than half the clean accuracy ({base:.3f} -> "
                        f"{smoothed:.3f}): the certificates describe a much weaker classifier -- lower sigma or train "
                        "the model with Gaussian noise augmentation at this sigma", **evidence)
    else:
        scale = _result("certified_sigma_scale", "pass",
                        f"sigma={sigma:g} is within the input range; smoothed clean accuracy {smoothed:.3f} "
                        f"(base {base:.3f})", **evidence)
    return [size, scale]


# -- display -----------------------------------------------------------------------------------------
def rows(section: dict) -> list[tuple[str, str]]:
    total = section["n_certified_samples"]
    out = [("guarantee", section["label"]),
           ("smoothing", f"sigma={section['sigma']:g}, n0={section['n0']}, n={section['n_noise_samples']}, "
                         f"alpha={section['alpha']:g} (confidence {1 - section['alpha']:g})"
                         + (", noisy inputs clipped" if section.get("noisy_inputs_clipped") else ""))]
    for r, acc, ci in zip(section["radii"], section["certified_accuracy"],
                          section.get("certified_accuracy_ci") or [None] * len(section["radii"])):
        value = f"{acc:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
        out.append((f"certified accuracy @ r={r:g} (L2)", value))
    ab = section["abstentions"]
    out += [("abstentions", f"{ab['count']} / {total}"),
            ("clean accuracy: base -> smoothed",
             f"{section['base_clean_accuracy']:.3f} -> {section['smoothed_clean_accuracy']:.3f}"),
            ("median certified radius (correct)",
             "-" if section.get("median_radius") is None else f"{section['median_radius']:.3f}"),
            ("largest certifiable radius", f"{section['max_certifiable_radius']:.3f}"
             + (f" (reached by {section['n_at_max_certifiable_radius']} samples: raise n to certify them further)"
                if section.get("n_at_max_certifiable_radius") else "")),
            ("samples certified", str(total))]
    return out


def model_card_metrics(section: dict) -> list[dict]:
    sigma = section["sigma"]
    metrics = [{"type": "certified_accuracy", "name": f"certified accuracy (L2, r={r:g}, sigma={sigma:g})",
                "value": acc, "args": {"norm": "l2", "radius": r, "sigma": sigma, "alpha": section["alpha"],
                                       "n": section["n_noise_samples"]}}
               for r, acc in zip(section["radii"], section["certified_accuracy"])]
    metrics.append({"type": "accuracy", "name": f"smoothed classifier clean accuracy (sigma={sigma:g})",
                    "value": section["smoothed_clean_accuracy"]})
    return metrics


_RATE = {"type": "number", "minimum": 0, "maximum": 1}
_CI = {"type": "array", "items": _RATE, "minItems": 2, "maxItems": 2}

SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "certified section (randomized smoothing)",
    "type": "object",
    "required": ["guarantee", "label", "norm", "radii", "certified_accuracy", "sigma", "n_noise_samples", "n0",
                 "alpha", "n_certified_samples", "abstentions", "base_clean_accuracy", "smoothed_clean_accuracy",
                 "median_radius", "max_certifiable_radius"],
    "properties": {
        "method": {"type": "string"},
        "guarantee": {"const": GUARANTEE},
        "label": {"type": "string", "minLength": 1},
        "norm": {"const": "l2"},
        "radii": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 1},
        "certified_accuracy": {"type": "array", "items": _RATE, "minItems": 1},
        "certified_accuracy_ci": {"type": "array", "items": _CI},
        "n_certified_correct": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "ci_level": _RATE,
        "sigma": {"type": "number", "exclusiveMinimum": 0},
        "n_noise_samples": {"type": "integer", "minimum": 1},
        "n0": {"type": "integer", "minimum": 1},
        "alpha": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "confidence": _RATE,
        "noisy_inputs_clipped": {"type": "boolean"},
        "n_certified_samples": {"type": "integer", "minimum": 1},
        "seed": {"type": "integer"},
        "abstentions": {"type": "object", "required": ["count", "rate"],
                        "properties": {"count": {"type": "integer", "minimum": 0}, "rate": _RATE}},
        "base_clean_accuracy": _RATE,
        "smoothed_clean_accuracy": _RATE,
        "clean_accuracy_drop": {"type": "number", "minimum": -1, "maximum": 1},
        "accuracy_not_abstained": _RATE,
        "median_radius": {"type": ["number", "null"], "minimum": 0},
        "average_certified_radius": {"type": "number", "minimum": 0},
        "max_certifiable_radius": {"type": "number"},
        "n_at_max_certifiable_radius": {"type": "integer", "minimum": 0},
        "samples": {"type": "object"},
    },
}

SPEC = register_section(SectionSpec(
    name="certified",
    title="Certified robustness (randomized smoothing, L2)",
    compute=compute,
    schema=SCHEMA,
    rows=rows,
    caveat="A guarantee of the smoothed classifier (majority vote of the model under Gaussian noise), "
           "not of the base model: it holds only where the smoothed classifier is what is deployed.",
    checks=checks,
    needs_train_data=False,
    model_card_metrics=model_card_metrics,
    defaults=dict(DEFAULTS),
))
