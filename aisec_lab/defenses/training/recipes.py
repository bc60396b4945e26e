"""Recipe specs and the framework-neutral training driver.

A :class:`Recipe` is a frozen, keyword-only record of every hyperparameter, in the model's input scale
(ε for [0, 1] images is 0.03, not 8). ``recipe.fit(target, train_data, ...)``:

1. copies the target's model (the target is never modified) and re-wraps the copy with the same settings;
2. trains it for ``epochs`` epochs with the recipe's adversarial examples, shuffling and drawing random
   starts from ``np.random.default_rng([seed, epoch])`` -- so every epoch is reproducible on its own;
3. after each epoch measures clean and robust (PGD-``val_attack_steps`` at ε) accuracy on the validation
   data, checkpoints (``last`` and ``best``), stops early when robust validation accuracy has not improved
   for ``patience`` epochs, and flags *catastrophic overfitting* (robust validation accuracy collapsing
   by more than ``overfit_drop`` while clean accuracy rises; the classic failure of FGSM training) --
   then stops and restores the best epoch;
4. returns a :class:`TrainingResult` with the trained native model, its target, the history and the
   before/after scorecards on ``test_data`` (``standard`` preset at the recipe's ε unless told otherwise).

Why not ART's trainers: ``AdversarialTrainerMadryPGD`` / TRADES / FBF run a whole fit inside one call
drawing from NumPy's global generator, with no per-epoch hook for validation, early stopping or
checkpoints, and TRADES/FBF exist for PyTorch only. The attack inside the training step is the same PGD
(sign steps, random start, projection onto the ε-ball and the clip box) as ART's and ours.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..._io import atomic_write_text
from ..._version import __version__
from ...errors import ConfigError
from ...registry import Registry

log = logging.getLogger(__name__)

__all__ = ["Recipe", "TrainingResult", "RECIPES", "get", "list_recipes", "describe", "from_card", "CARD_VERSION"]

CARD_VERSION = 1

RECIPES: Registry = Registry("recipe")

_DESCRIPTIONS = {
    "pgd_at": "PGD adversarial training (Madry et al. 2018): train on PGD-max_iter examples at eps.",
    "trades": "TRADES (Zhang et al. 2019): clean cross-entropy + beta * KL(clean || adversarial), "
              "adversarial examples maximise the KL term.",
    "fast_at": "Fast adversarial training (Wong et al. 2020): one FGSM step of size alpha from a uniform "
               "random start; watched for catastrophic overfitting.",
}

#: defaults per recipe; None means "derived from eps" (documented in Recipe)
_DEFAULTS: dict[str, dict[str, Any]] = {
    "pgd_at": {"max_iter": 10, "beta": None},
    "trades": {"max_iter": 10, "beta": 6.0},
    "fast_at": {"max_iter": 1, "beta": None},
}


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Every hyperparameter of an adversarial-training run, in the model's input scale.

    ``eps_step`` defaults to ``2.5 * eps / max_iter`` for ``pgd_at``/``trades`` (Madry et al.) and to
    ``1.25 * eps`` for ``fast_at`` (Wong et al.'s ``alpha``). ``lr`` defaults to 1e-3 (Adam) or 0.05 (SGD).
    ``val_fraction`` of the training data is held out (stratified, by ``seed``) when no ``val_data`` is
    given. ``patience=None`` disables early stopping.
    """

    name: str
    eps: float
    norm: str = "linf"
    epochs: int = 10
    batch_size: int = 64
    max_iter: int = 10
    eps_step: float | None = None
    beta: float | None = None
    optimizer: str = "adam"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    seed: int = 0
    val_fraction: float = 0.1
    val_samples: int = 200
    val_attack_steps: int = 10
    patience: int | None = 5
    restore_best: bool = True
    overfit_drop: float = 0.2

    # -- derived -------------------------------------------------------------------------------
    @property
    def step(self) -> float:
        if self.eps_step is not None:
            return float(self.eps_step)
        return 1.25 * self.eps if self.name == "fast_at" else 2.5 * self.eps / self.max_iter

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return 1e-3 if self.optimizer == "adam" else 0.05

    def lr_at(self, epoch: int) -> float:
        """Learning rate of ``epoch`` (0-based): constant or cosine-annealed per epoch."""
        if self.lr_schedule == "cosine":
            return self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))
        return self.learning_rate

    def params(self) -> dict[str, Any]:
        """Every hyperparameter (what the recipe card stores), ``name`` excluded."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "name"}

    def card(self) -> dict[str, Any]:
        return {"recipe": self.name, "params": self.params(),
                "derived": {"eps_step": self.step, "lr": self.learning_rate}}

    def __post_init__(self) -> None:
        _validate(self)

    # -- running -------------------------------------------------------------------------------
    def fit(self, target, train_data, *, val_data=None, test_data=None, checkpoint_dir: str | os.PathLike | None = None,
            eval_attacks: Any = "standard", eval_eps: Any = None, eval_n_samples: int | None = None,
            progress: bool = True) -> "TrainingResult":
        """Train a copy of ``target``'s model with this recipe; see the module docstring.

        ``checkpoint_dir`` keeps ``last`` and ``best`` checkpoints; re-running the same call after a crash
        resumes after the last finished epoch and ends with the same weights as an uninterrupted run
        (torch: bit for bit on the same machine; Keras: see ``training/tensorflow.py``). A checkpoint of a
        different model, data or recipe is refused. ``test_data`` adds before/after scorecards
        (``eval_attacks`` at ``eval_eps``, default the recipe's ε); without it they are ``None``.
        """
        from .driver import fit

        return fit(self, target, train_data, val_data=val_data, test_data=test_data, checkpoint_dir=checkpoint_dir,
                   eval_attacks=eval_attacks, eval_eps=eval_eps, eval_n_samples=eval_n_samples, progress=progress)

    def __repr__(self) -> str:
        return f"Recipe({self.name!r}, " + ", ".join(f"{k}={v!r}" for k, v in self.params().items()) + ")"


def _num(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)


def _validate(r: Recipe) -> None:
    if r.name not in _DEFAULTS:
        RECIPES.get(r.name)  # raises UnknownComponentError with did-you-mean
    if not _num(r.eps) or r.eps <= 0:
        raise ConfigError("eps must be a positive number in the model's input scale", got=r.eps,
                          fix="e.g. eps=0.1 for inputs in [0, 1] (8/255 = 0.0314 for '8 pixels')")
    if r.norm not in ("linf", "l2"):
        raise ConfigError("recipes train against an L-inf or L2 threat model", got=r.norm, fix="norm='linf' or 'l2'")
    if r.name == "fast_at" and r.norm != "linf":
        raise ConfigError("fast_at is defined for L-inf only", got=r.norm, fix="use norm='linf' or recipe 'pgd_at'")
    for key, lo in (("epochs", 1), ("batch_size", 1), ("max_iter", 1), ("val_samples", 1), ("val_attack_steps", 1)):
        v = getattr(r, key)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ConfigError(f"{key} must be an integer >= {lo}", got=v,
                              fix={"epochs": "e.g. epochs=10"}.get(key, f"e.g. {key}={max(lo, 10)}"))
    if r.name == "fast_at" and r.max_iter != 1:
        raise ConfigError("fast_at takes exactly one attack step", got=r.max_iter, fix="leave max_iter=1 or use pgd_at")
    if r.eps_step is not None and (not _num(r.eps_step) or r.eps_step <= 0):
        raise ConfigError("eps_step must be a positive number in the model's input scale", got=r.eps_step,
                          fix="leave eps_step=None for the recipe's default")
    if r.name == "trades" and (not _num(r.beta) or r.beta <= 0):
        raise ConfigError("trades needs beta > 0 (weight of the robustness term)", got=r.beta, fix="e.g. beta=6.0")
    if r.name != "trades" and r.beta is not None:
        raise ConfigError(f"beta is a trades hyperparameter; {r.name} has none", got=r.beta, fix="leave beta=None")
    if r.optimizer not in ("adam", "sgd"):
        raise ConfigError("optimizer must be 'adam' or 'sgd'", got=r.optimizer, fix="optimizer='adam'")
    if r.lr is not None and (not _num(r.lr) or r.lr <= 0):
        raise ConfigError("lr must be a positive number", got=r.lr, fix="e.g. lr=1e-3, or None for the default")
    for key in ("momentum", "weight_decay"):
        v = getattr(r, key)
        if not _num(v) or v < 0:
            raise ConfigError(f"{key} must be a non-negative number", got=v, fix=f"e.g. {key}=0.0")
    if r.lr_schedule not in ("constant", "cosine"):
        raise ConfigError("lr_schedule must be 'constant' or 'cosine'", got=r.lr_schedule, fix="lr_schedule='cosine'")
    if isinstance(r.seed, bool) or not isinstance(r.seed, (int, np.integer)) or r.seed < 0:
        raise ConfigError("seed must be a non-negative integer", got=r.seed, fix="e.g. seed=0")
    if not _num(r.val_fraction) or not 0 < r.val_fraction < 1:
        raise ConfigError("val_fraction must be in (0, 1)", got=r.val_fraction, fix="e.g. val_fraction=0.1")
    if r.patience is not None and (isinstance(r.patience, bool) or not isinstance(r.patience, (int, np.integer))
                                   or r.patience < 1):
        raise ConfigError("patience must be a positive integer or None (no early stopping)", got=r.patience,
                          fix="e.g. patience=5")
    if not isinstance(r.restore_best, bool):
        raise ConfigError("restore_best must be True or False", got=r.restore_best, fix="restore_best=True")
    if not _num(r.overfit_drop) or not 0 < r.overfit_drop <= 1:
        raise ConfigError("overfit_drop must be in (0, 1]", got=r.overfit_drop, fix="e.g. overfit_drop=0.2")


def check_eps_scale(recipe: Recipe, target) -> None:
    """Refuse ε (and its step) in pixel units for this target's input range."""
    from ...evaluation.metrics import validate_eps

    validate_eps([recipe.eps], norm=recipe.norm, clip_range=target.clip_range,
                 input_size=int(np.prod(target.input_shape)))
    if recipe.norm == "linf" and recipe.step > target.clip_range:
        raise ConfigError(f"eps_step={recipe.step:g} exceeds the input range width {target.clip_range:g}",
                          got=recipe.eps_step, fix="give eps_step in the model's input scale, e.g. eps / 4")


for _name in _DEFAULTS:
    RECIPES.register(_name, _name)


def list_recipes() -> list[str]:
    return RECIPES.names()


def describe(name: str) -> dict[str, Any]:
    """The recipe's description and default hyperparameters."""
    RECIPES.get(name)
    defaults = {f.name: f.default for f in dataclasses.fields(Recipe) if f.name not in ("name", "eps")}
    defaults.update(_DEFAULTS[name])
    return {"name": name, "description": _DESCRIPTIONS[name], "required": ["eps"], "defaults": defaults}


def get(name: str, **params: Any) -> Recipe:
    """The recipe ``name`` (``pgd_at``, ``trades``, ``fast_at``) with ``params`` overriding its defaults."""
    RECIPES.get(name)
    fields = {f.name for f in dataclasses.fields(Recipe)} - {"name"}
    unknown = sorted(set(params) - fields)
    if unknown:
        import difflib

        hint = difflib.get_close_matches(unknown[0], sorted(fields), n=1)
        raise ConfigError(f"recipe {name!r} has no hyperparameter {unknown[0]!r}"
                          + (f"; did you mean {hint[0]!r}?" if hint else ""), got=unknown,
                          fix=f"use al.recipes.describe({name!r}) to list them")
    if "eps" not in params:
        raise ConfigError(f"recipe {name!r} needs eps (in the model's input scale)", got=None,
                          fix=f"al.recipes.get({name!r}, eps=0.1)")
    merged = {**_DEFAULTS[name], **params}
    return Recipe(name=name, **merged)


def from_card(path: str | os.PathLike) -> Recipe:
    """The recipe a recipe card (``recipe.yaml`` written by :meth:`TrainingResult.save`) describes."""
    from ..._optional import require

    yaml = require("yaml", purpose="read a recipe card", extra="core")
    p = Path(path)
    if p.is_dir():
        p = p / "recipe.yaml"
    if not p.is_file():
        raise ConfigError("no recipe card at this path", got=str(path), fix="pass the recipe.yaml written by result.save(dir)")
    try:
        card = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p.name} is not valid YAML", got=str(exc).splitlines()[0],
                          fix="pass a recipe card written by result.save(dir)") from None
    if not isinstance(card, dict) or "recipe" not in card or not isinstance(card.get("params"), dict):
        raise ConfigError(f"{p.name} is not a recipe card (needs 'recipe' and 'params')",
                          got=sorted(card) if isinstance(card, dict) else type(card).__name__,
                          fix="pass a recipe card written by result.save(dir)")
    version = card.get("card_version")
    if version != CARD_VERSION:
        raise ConfigError(f"recipe card version {version!r} is not supported by aisec-lab {__version__}", got=version,
                          fix=f"this version reads card_version {CARD_VERSION}")
    return get(card["recipe"], **card["params"])


# -- result ----------------------------------------------------------------------------------------
@dataclass(eq=False)
class TrainingResult:
    """What :meth:`Recipe.fit` returns."""

    recipe: Recipe
    model: Any  # the trained native model (torch nn.Module / keras.Model)
    target: Any  # its wrapped form
    history: list  # one dict per epoch
    framework: str
    scorecard_before: Any = None
    scorecard_after: Any = None
    comparison: Any = None
    best_epoch: int | None = None
    stopped_early: bool = False
    catastrophic_overfitting: dict | None = None
    resumed_from_epoch: int | None = None
    notes: list = field(default_factory=list)
    info: dict = field(default_factory=dict)  # model/data fingerprints and versions (goes into the card)

    @property
    def epochs_run(self) -> int:
        return len(self.history)

    def card(self) -> dict[str, Any]:
        """The recipe card: every hyperparameter plus what is needed to check a reproduction."""
        return {"card_version": CARD_VERSION, **self.recipe.card(), "framework": self.framework,
                **self.info,
                "result": {"epochs_run": self.epochs_run, "best_epoch": self.best_epoch,
                           "stopped_early": self.stopped_early,
                           "catastrophic_overfitting": self.catastrophic_overfitting,
                           "weights_sha256": self.target.weights_sha256,
                           "final_val": {k: self.history[self.best_epoch - 1][k] for k in
                                         ("val_clean_accuracy", "val_robust_accuracy")} if self.best_epoch else None},
                "reproduce": "al.recipes.from_card('recipe.yaml').fit(target, train_data, val_data=..., test_data=...)"}

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write model file, ``recipe.yaml``, ``history.json``, ``before/`` and ``after/`` scorecards and the
        comparison (``comparison.json`` / ``.md``) into ``out_dir``; every file atomically."""
        from ..._optional import require
        from . import _framework

        yaml = require("yaml", purpose="write a recipe card", extra="core")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        model_file = _framework(self.framework).save_model(self.model, out)
        card = self.card()
        card["model_file"] = model_file.name
        atomic_write_text(out / "recipe.yaml", yaml.safe_dump(_plain(card), sort_keys=False, allow_unicode=True))
        atomic_write_text(out / "history.json", json.dumps(_plain(self.history), indent=2) + "\n")
        if self.scorecard_before is not None:
            self.scorecard_before.save(out / "before")
            self.scorecard_after.save(out / "after")
        if self.comparison is not None:
            atomic_write_text(out / "comparison.json", json.dumps(_plain(self.comparison.to_dict()), indent=2) + "\n")
            atomic_write_text(out / "comparison.md", "```\n" + self.comparison.summary() + "\n```\n")
        if self.notes:
            atomic_write_text(out / "NOTES.txt", "\n".join(self.notes) + "\n")
        return out

    def summary(self) -> str:
        lines = [f"TrainingResult: {self.recipe.name} on {self.framework}, {self.epochs_run} epoch(s), "
                 f"best epoch {self.best_epoch}" + (" (stopped early)" if self.stopped_early else "")]
        if self.catastrophic_overfitting:
            co = self.catastrophic_overfitting
            lines.append(f"  CATASTROPHIC OVERFITTING at epoch {co['epoch']}: robust val {co['val_robust_accuracy']:.3f} "
                         f"(best {co['best_val_robust_accuracy']:.3f}); restored epoch {self.best_epoch}")
        if self.comparison is not None:
            lines.append(self.comparison.summary())
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(_plain(payload), sort_keys=True, default=str).encode()).hexdigest()


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
