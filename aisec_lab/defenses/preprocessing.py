"""Preprocessing defenses, and the adaptive evaluation of a defended target.

``al.defend(target, "feature_squeezing", bit_depth=4)`` returns a new :class:`~aisec_lab.Target` whose
every forward pass first runs the defense (ART's preprocessor implementations, in the canonical
channels-first layout). Nothing of the original target is changed.

Adaptive by default (Athalye, Carlini & Wagner 2018; Tramer et al. 2020):

* **BPDA** -- a non-differentiable defense (squeezing, JPEG, median smoothing, TV minimisation) is
  replaced by the identity on the backward pass (straight-through), inside the framework, so every
  gradient attack -- native or ART's -- sees useful gradients.
* **EOT** -- for a randomised defense (Gaussian noise, TV minimisation's random mask) the native attacks
  average ``eot_samples`` gradients (and losses) per step, each through a fresh draw of the defense.
  Attacks run through ART (C&W, DeepFool, L1 variants) see one draw per gradient; the scorecard says so.
* Predictions of a randomised defense are single draws, as deployed: a sample counts as broken when the
  draw made while verifying its adversarial example misclassifies it.

``adaptive=False`` crafts every attack on the *undefended* model and only verifies the examples on the
defended one (a defense-oblivious, transfer evaluation). It exists to show how much a non-adaptive
evaluation overstates a defense; the scorecard and the ``adaptive_defense`` check mark it loudly.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .._seeding import numpy_global_seed
from ..errors import ConfigError, IncompatibleModelError
from ..registry import Registry, merge_params

log = logging.getLogger(__name__)

__all__ = ["DEFENSES", "DefenseEntry", "DefenseInfo", "defend", "register_defense", "list_defenses",
           "describe_defense", "EOTOracle", "DEFAULT_EOT_SAMPLES"]

#: gradients averaged per attack step for a randomised defense when ``eot_samples`` is not given
DEFAULT_EOT_SAMPLES = 8

DEFENSES: Registry = Registry("defense", entry_point_group="aisec_lab.defenses")


@dataclass(frozen=True)
class DefenseEntry:
    """A registered preprocessing defense: a builder of the ART preprocessor plus what it is."""

    name: str
    build: Callable[..., Callable[[np.ndarray], np.ndarray]]  # (target, **params) -> transform(x) -> x'
    defaults: dict
    randomized: bool
    differentiable: bool
    implementation: str
    description: str

    def params(self, given: dict) -> dict:
        return merge_params("defense", self.name, given, self.defaults)


def register_defense(name: str, *, defaults: dict, randomized: bool, differentiable: bool, implementation: str,
                     description: str, overwrite: bool = False) -> Callable:
    """Decorator registering ``build(target, **params) -> transform`` as a preprocessing defense.

    ``transform`` maps a float32 batch in the canonical (channels-first) layout to a batch of the same
    shape inside the target's clip values. Randomised transforms must draw from NumPy's global
    generator (ART's convention); aisec-lab seeds it around every call.
    """

    def deco(build: Callable) -> Callable:
        DEFENSES.register(name, DefenseEntry(name=name, build=build, defaults=dict(defaults), randomized=randomized,
                                             differentiable=differentiable, implementation=implementation,
                                             description=description), overwrite=overwrite)
        return build

    return deco


def list_defenses() -> list[str]:
    return DEFENSES.names()


def describe_defense(name: str) -> dict:
    e = DEFENSES.get(name)
    return {"name": e.name, "params": dict(e.defaults), "randomized": e.randomized,
            "differentiable": e.differentiable, "implementation": e.implementation, "description": e.description}


# -- parameter checks ------------------------------------------------------------------------------
def _scalar_clip(target, name: str) -> tuple[float, float]:
    lo, hi = (np.asarray(v) for v in target.clip_values)
    if lo.ndim or hi.ndim:
        if np.all(lo == lo.flat[0]) and np.all(hi == hi.flat[0]):
            return float(lo.flat[0]), float(hi.flat[0])
        raise IncompatibleModelError(f"{name} needs one (min, max) range for every feature",
                                     got="per-channel clip_values", fix="wrap the model with scalar clip_values")
    return float(lo), float(hi)


def _image(target, name: str) -> int:
    if len(target.input_shape) != 3:
        raise IncompatibleModelError(f"{name} applies to images (channels, height, width)",
                                     got=f"input_shape {target.input_shape}",
                                     fix="use feature_squeezing or gaussian_augmentation for non-image inputs")
    return target.input_shape[0]


def _int_param(value: Any, name: str, lo: int, hi: int, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be an integer in [{lo}, {hi}]", got=value, fix=f"e.g. {example}")
    return int(value)


def _scale_param(value: Any, name: str, target, example: str, *, allow_zero: bool = False) -> float:
    """A magnitude in the model's input scale (rejects pixel units such as sigma=8 on [0, 1] data)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) \
        and np.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ConfigError(f"{name} must be a positive finite number in the model's input scale", got=value,
                          fix=f"e.g. {example}")
    if value > target.clip_range:
        raise ConfigError(f"{name}={value:g} exceeds the input range width {target.clip_range:g}: it looks like "
                          f"pixel units", got=value,
                          fix=f"give it in the model's input scale (clip_values {target.clip_range:g} wide), e.g. {example}")
    return float(value)


# -- built-in defenses (ART's preprocessors) -------------------------------------------------------
def _art_call(obj) -> Callable[[np.ndarray], np.ndarray]:
    def transform(x: np.ndarray) -> np.ndarray:
        return np.asarray(obj(np.asarray(x, dtype=np.float32))[0], dtype=np.float32)

    return transform


@register_defense("feature_squeezing", defaults={"bit_depth": 4}, randomized=False, differentiable=False,
                  implementation="art.defences.preprocessor.FeatureSqueezing",
                  description="Reduce every feature to 2**bit_depth levels (Xu et al. 2018).")
def _feature_squeezing(target, *, bit_depth):
    from art.defences.preprocessor import FeatureSqueezing

    bit_depth = _int_param(bit_depth, "bit_depth", 1, 64, "bit_depth=4")
    return _art_call(FeatureSqueezing(clip_values=_scalar_clip(target, "feature_squeezing"), bit_depth=bit_depth,
                                      apply_fit=False, apply_predict=True))


@register_defense("jpeg_compression", defaults={"quality": 50}, randomized=False, differentiable=False,
                  implementation="art.defences.preprocessor.JpegCompression",
                  description="JPEG-compress every image at the given quality (Dziugaite et al. 2016).")
def _jpeg_compression(target, *, quality):
    from art.defences.preprocessor import JpegCompression

    channels = _image(target, "jpeg_compression")
    quality = _int_param(quality, "quality", 1, 100, "quality=50")
    lo, hi = _scalar_clip(target, "jpeg_compression")
    if lo != 0 or hi not in (1.0, 255.0) or channels not in (1, 3):
        raise IncompatibleModelError("jpeg_compression needs 1- or 3-channel images with clip_values (0, 1) or (0, 255)",
                                     got=f"{channels} channel(s), clip_values ({lo:g}, {hi:g})",
                                     fix="use feature_squeezing or spatial_smoothing for this input")
    return _art_call(JpegCompression(clip_values=(lo, hi), quality=quality, channels_first=True,
                                     apply_fit=False, apply_predict=True))


@register_defense("spatial_smoothing", defaults={"window_size": 3}, randomized=False, differentiable=False,
                  implementation="art.defences.preprocessor.SpatialSmoothing",
                  description="Median filter over a window_size x window_size neighbourhood (Xu et al. 2018).")
def _spatial_smoothing(target, *, window_size):
    from art.defences.preprocessor import SpatialSmoothing

    _image(target, "spatial_smoothing")
    window_size = _int_param(window_size, "window_size", 2, max(2, min(target.input_shape[1:])), "window_size=3")
    return _art_call(SpatialSmoothing(window_size=window_size, channels_first=True,
                                      clip_values=_scalar_clip(target, "spatial_smoothing"),
                                      apply_fit=False, apply_predict=True))


@register_defense("gaussian_augmentation", defaults={"sigma": 0.1}, randomized=True, differentiable=True,
                  implementation="art.defences.preprocessor.GaussianAugmentation",
                  description="Add N(0, sigma^2) noise to every input at inference, clipped to the valid range.")
def _gaussian_augmentation(target, *, sigma):
    from art.defences.preprocessor import GaussianAugmentation

    sigma = _scale_param(sigma, "sigma", target, "sigma=0.1 for [0, 1] inputs")
    return _art_call(GaussianAugmentation(sigma=sigma, augmentation=False, clip_values=_scalar_clip(target, "gaussian_augmentation"),
                                          apply_fit=False, apply_predict=True))


@register_defense("total_variance_minimization", defaults={"prob": 0.3, "norm": 2, "lamb": 0.5, "max_iter": 10},
                  randomized=True, differentiable=False,
                  implementation="art.defences.preprocessor.TotalVarMin",
                  description="Rebuild each image from a random subset of its pixels by total-variation "
                              "minimisation (Guo et al. 2018). Slow: one optimisation per image and channel.")
def _total_variance_minimization(target, *, prob, norm, lamb, max_iter):
    from art.defences.preprocessor import TotalVarMin

    _image(target, "total_variance_minimization")
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 < prob <= 1:
        raise ConfigError("prob must be in (0, 1]", got=prob, fix="e.g. prob=0.3")
    tvm = TotalVarMin(prob=float(prob), norm=_int_param(norm, "norm", 1, 2, "norm=2"),
                      lamb=_scale_param(lamb, "lamb", target, "lamb=0.5"),
                      max_iter=_int_param(max_iter, "max_iter", 1, 10_000, "max_iter=10"),
                      clip_values=_scalar_clip(target, "total_variance_minimization"), apply_fit=False,
                      apply_predict=True)

    def transform(x: np.ndarray) -> np.ndarray:  # ART's TotalVarMin wants channels last
        out = tvm(np.ascontiguousarray(np.moveaxis(np.asarray(x, np.float32), 1, -1)))[0]
        return np.ascontiguousarray(np.moveaxis(out, -1, 1), dtype=np.float32)

    return transform


# -- the chain applied in front of the model ------------------------------------------------------
class DefenseChain:
    """The defenses applied in order, as one NumPy transform; randomised ones draw from a seeded stream."""

    def __init__(self, steps: list[tuple[DefenseEntry, dict, Callable]], seed: int):
        self.steps = steps
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.calls = 0

    @property
    def randomized(self) -> bool:
        return any(e.randomized for e, _, _ in self.steps)

    @property
    def differentiable(self) -> bool:
        return all(e.differentiable for e, _, _ in self.steps)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        shape = x.shape
        self.calls += 1
        for entry, _, transform in self.steps:
            if entry.randomized:
                with numpy_global_seed(int(self.rng.integers(2**32 - 1))):
                    x = transform(x)
            else:
                x = transform(x)
            if x.shape != shape:
                raise IncompatibleModelError(f"defense {entry.name!r} changed the input shape", got=x.shape,
                                             fix="a preprocessing defense must return a batch shaped like its input")
        return np.asarray(x, dtype=np.float32)


class EOTOracle:
    """Expectation over transformation: each gradient call averages ``samples`` draws of a random defense.

    ``logits`` is one draw (a deployed randomised model answers once). Everything else is the wrapped
    oracle's, including the query counters (every draw counts).
    """

    def __init__(self, inner, samples: int):
        self.__dict__["inner"] = inner
        self.__dict__["eot_samples"] = int(samples)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value) -> None:
        setattr(self.inner, name, value)

    def logits(self, x):
        return self.inner.logits(x)

    def value_and_grad(self, x, y, *, loss="ce", y_target=None):
        v_sum = g_sum = z_sum = None
        for _ in range(self.eot_samples):
            v, g, z = self.inner.value_and_grad(x, y, loss=loss, y_target=y_target)
            v_sum = v.astype(np.float64) if v_sum is None else v_sum + v
            g_sum = g.astype(np.float64) if g_sum is None else g_sum + g
            z_sum = z.astype(np.float64) if z_sum is None else z_sum + z
        k = self.eot_samples
        return (v_sum / k).astype(np.float32), (g_sum / k).astype(np.float32), (z_sum / k).astype(np.float32)


@dataclass(frozen=True, eq=False)
class DefenseInfo:
    """What :func:`defend` applied: stored on the defended target (``target.defense``) and in its scorecard."""

    chain: tuple  # ({"name", "params", "implementation", "differentiable", "randomized"}, ...)
    adaptive: bool
    eot_samples: int
    seed: int
    base: Any = field(repr=False)  # the undefended Target

    @property
    def randomized(self) -> bool:
        return any(c["randomized"] for c in self.chain)

    @property
    def differentiable(self) -> bool:
        return all(c["differentiable"] for c in self.chain)

    @property
    def adaptation(self) -> list[str]:
        if not self.adaptive:
            return []
        out = [] if self.differentiable else ["BPDA"]
        if self.randomized and self.eot_samples > 1:
            out.append("EOT")
        return out

    def attack_target(self, defended):
        """The target attacks are crafted on: the defended one when adaptive, the undefended one otherwise."""
        return defended if self.adaptive else self.base

    def record(self) -> dict:
        names = " -> ".join(c["name"] for c in self.chain)
        if not self.adaptive:
            note = (f"NOT ADAPTIVE: attacks were crafted on the undefended model and only verified through {names}; "
                    "robust accuracy is an upper bound that adaptive attacks (BPDA/EOT) usually break.")
        else:
            parts = []
            if "BPDA" in self.adaptation:
                parts.append("non-differentiable steps are replaced by the identity on the backward pass (BPDA)")
            if "EOT" in self.adaptation:
                parts.append(f"native attacks average gradients over {self.eot_samples} random draws (EOT); "
                             "attacks run through ART see one draw per gradient")
            if self.randomized:
                parts.append("predictions are single random draws, as deployed")
            note = (f"Adaptive evaluation of {names}: " + ("; ".join(parts) if parts else
                    "the defense is differentiable and deterministic, attacked end to end") + ".")
        return {"chain": [dict(c) for c in self.chain], "adaptive": bool(self.adaptive),
                "adaptation": self.adaptation, "eot_samples": int(self.eot_samples),
                "base_model_sha256": self.base.weights_sha256, "note": note}


def defend(target, name: str, *, adaptive: bool = True, eot_samples: int | None = None, seed: int = 0,
           **params: Any):
    """Put the preprocessing defense ``name`` in front of ``target``; return the defended :class:`Target`.

    ``target`` is not modified. Defending an already defended target appends to its chain (applied in
    order). ``adaptive`` (default ``True``) makes every evaluation of the result use BPDA and, for
    randomised defenses, EOT with ``eot_samples`` draws per gradient (default
    :data:`DEFAULT_EOT_SAMPLES`; ``1`` for deterministic chains). ``seed`` seeds the defense's own
    randomness. ``al.list_defenses()`` / ``al.describe_defense(name)`` list the defenses and parameters.
    """
    from ..models import with_input_transform
    from ..models.spec import Target

    if not isinstance(target, Target):
        raise ConfigError("defend() takes a Target (from al.wrap_model)", got=type(target).__name__,
                          fix="wrap the model first: target = al.wrap_model(model, ...)")
    entry = DEFENSES.get(name)
    if not isinstance(adaptive, bool):
        raise ConfigError("adaptive must be True or False", got=adaptive,
                          fix="leave adaptive=True; adaptive=False only shows how a non-adaptive evaluation misleads")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError("seed must be a non-negative integer", got=seed, fix="e.g. seed=0")
    params = entry.params(params)
    previous = target.defense
    base = previous.base if previous is not None else target
    records = list(previous.chain) if previous is not None else []
    steps = []
    for rec in records:
        old = DEFENSES.get(rec["name"])
        steps.append((old, rec["params"], old.build(base, **rec["params"])))
    steps.append((entry, params, entry.build(base, **params)))
    records.append({"name": entry.name, "params": _plain(params), "implementation": entry.implementation,
                    "differentiable": entry.differentiable, "randomized": entry.randomized})
    chain = DefenseChain(steps, seed=int(seed))
    if eot_samples is None:
        eot_samples = DEFAULT_EOT_SAMPLES if chain.randomized else 1
    elif isinstance(eot_samples, bool) or not isinstance(eot_samples, (int, np.integer)) or eot_samples < 1:
        fix = ("a randomised defense needs gradients averaged over several draws, e.g. eot_samples=8"
               if chain.randomized else "leave eot_samples=None (1 for a deterministic defense)")
        raise ConfigError("eot_samples must be a positive integer (Expectation over Transformation draws per "
                          "gradient)", got=eot_samples, fix=fix)
    elif int(eot_samples) > 1 and not chain.randomized:
        log.info("eot_samples=%d on a deterministic defense only repeats identical gradients", eot_samples)
    info = DefenseInfo(chain=tuple(records), adaptive=adaptive, eot_samples=int(eot_samples), seed=int(seed), base=base)
    # make sure the chain works on this target before anything is built on it
    probe = np.asarray(base.clip_min, dtype=np.float32)[None]
    chain(probe)
    label = "+".join(r["name"] for r in records)
    defended = with_input_transform(base, chain, name=f"{base.name}+{label}", defense=info)
    if adaptive and chain.randomized and info.eot_samples > 1:
        defended = dataclasses.replace(defended, oracle=EOTOracle(defended.oracle, info.eot_samples))
    return defended


def _plain(params: dict) -> dict:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}
