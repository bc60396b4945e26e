"""Attack specifications: frozen, keyword-only records of *what* to run; execution happens late.

An :class:`AttackSpec` stores hyperparameters and nothing else (scikit-learn style). The engine
calls :meth:`AttackSpec.run` with a :class:`~aisec_lab.models.Target`, a batch, the norm and ε at run
time. Hyperparameter names follow ART where a value passes straight through (``max_iter``,
``eps_step``, ``targeted``, ``batch_size``, ...). Class-level attributes form the attack's card:
supported norms, knowledge, what it needs from the model, its cost rank, reference and MITRE ATLAS
technique.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, IncompatibleModelError

__all__ = ["AttackSpec", "normalize_norm", "NORMS", "ART_NORMS", "TARGET_MODES", "NEEDS", "KNOWLEDGE"]

#: canonical norm names and what ART calls them
ART_NORMS = {"linf": np.inf, "l2": 2, "l1": 1}
NORMS = tuple(ART_NORMS)
TARGET_MODES = ("random", "least_likely", "top")
NEEDS = ("gradients", "scores", "decisions")
KNOWLEDGE = ("white-box", "black-box", "baseline")

_NORM_ALIASES = {"linf": "linf", "inf": "linf", "l_inf": "linf", "l-inf": "linf", "l2": "l2", "2": "l2",
                 "l1": "l1", "1": "l1"}


def normalize_norm(norm: Any) -> str:
    """``"linf"``, ``"l2"`` or ``"l1"`` from our names or ART's (``np.inf``, ``2``, ``1``, ``"inf"``)."""
    if isinstance(norm, bool):
        raise ConfigError("unknown norm", got=norm, fix="use 'linf', 'l2' or 'l1' (or np.inf, 2, 1)")
    if isinstance(norm, (int, float, np.integer, np.floating)):
        if math.isinf(float(norm)) and float(norm) > 0:
            return "linf"
        if float(norm) in (1.0, 2.0):
            return f"l{int(norm)}"
    elif isinstance(norm, str) and norm.strip().lower() in _NORM_ALIASES:
        return _NORM_ALIASES[norm.strip().lower()]
    raise ConfigError("unknown norm", got=norm, fix="use 'linf', 'l2' or 'l1' (or np.inf, 2, 1)")


@dataclass(frozen=True, kw_only=True)
class AttackSpec:
    """Base class of every attack. Subclasses add hyperparameter fields and implement ``run``.

    Common fields
    -------------
    targeted:
        Run the attack towards target classes instead of away from the true class.
    target:
        Which classes when ``targeted``: ``"random"`` (one random wrong class per sample, from the
        evaluation seed), ``"least_likely"`` (the lowest clean logit), ``"top"`` (AutoAttack's APGD-T
        scheme: each of the ``n_target_classes`` most likely wrong classes in turn, a sample counts as
        broken if any succeeds) or an array of one class per sample.
    n_target_classes:
        How many classes ``target="top"`` tries.
    batch_size:
        Samples per call; ``None`` lets the engine choose (see ``evaluate(batch_size=...)``).
    """

    # -- card (class level) --------------------------------------------------------------------
    name: ClassVar[str] = ""
    norms: ClassVar[tuple[str, ...]] = ("linf", "l2")
    knowledge: ClassVar[str] = "white-box"
    needs: ClassVar[str] = "gradients"
    #: eps-independent minimum-norm attack: run once per sample, then checked against every ε
    minimal: ClassVar[bool] = False
    supports_targeted: ClassVar[bool] = True
    #: order in a cascade, cheap first (roughly: model calls per sample)
    cost_rank: ClassVar[int] = 50
    implementation: ClassVar[str] = "native"
    reference: ClassVar[str] = ""
    atlas_technique: ClassVar[str] = "AML.T0043.000"

    # -- common hyperparameters ------------------------------------------------------------------
    targeted: bool = False
    target: Any = None
    n_target_classes: int = 9
    batch_size: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.targeted, bool):
            raise ConfigError(f"{self.name}: targeted must be True or False", got=self.targeted, fix="targeted=True")
        if self.targeted and not self.supports_targeted:
            raise ConfigError(f"attack {self.name!r} has no targeted variant", got="targeted=True",
                              fix="drop targeted=True or pick an attack that supports it (apgd_dlr, pgd, square, ...)")
        if self.targeted and self.target is None:
            raise ConfigError(f"targeted {self.name!r} needs a target spec", got="target=None",
                              fix=f"pass target= one of {', '.join(TARGET_MODES)} or an array of class labels")
        if self.target is not None:
            if not self.targeted:
                raise ConfigError(f"{self.name}: target= is only used by a targeted attack", got=self.target,
                                  fix="also pass targeted=True")
            if isinstance(self.target, str) and self.target not in TARGET_MODES:
                raise ConfigError(f"{self.name}: unknown target mode", got=self.target,
                                  fix=f"use one of {', '.join(TARGET_MODES)} or an array of class labels")
            if not isinstance(self.target, str):
                arr = np.asarray(self.target)
                if arr.ndim != 1 or arr.dtype.kind not in "iu":
                    raise ConfigError(f"{self.name}: target must be a mode or a 1-D integer array",
                                      got=f"array of shape {arr.shape} and dtype {arr.dtype}",
                                      fix="pass one class label per sample")
        _check_int(self, "n_target_classes", minimum=1)
        if self.batch_size is not None:
            _check_int(self, "batch_size", minimum=1)
        for f in dataclasses.fields(self):
            if f.name not in ("target",):
                value = getattr(self, f.name)
                if isinstance(value, float) and not math.isfinite(value):
                    raise ConfigError(f"{self.name}: {f.name} must be finite", got=value, fix="pass a finite number")

    # -- description -----------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """Display name, e.g. ``apgd_dlr`` or ``apgd_dlr (targeted, top-9)``."""
        if not self.targeted:
            return self.name
        mode = self.target if isinstance(self.target, str) else "given"
        if mode == "top":
            mode = f"top-{self.n_target_classes}"
        return f"{self.name} (targeted, {mode})"

    def params(self) -> dict[str, Any]:
        """Every hyperparameter as run (JSON-friendly)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            out[f.name] = value
        return out

    @classmethod
    def card(cls) -> dict[str, Any]:
        defaults = {f.name: (f.default if f.default is not dataclasses.MISSING else None)
                    for f in dataclasses.fields(cls)}
        doc = (cls.__doc__ or "").strip()
        return {
            "name": cls.name, "norms": list(cls.norms), "knowledge": cls.knowledge, "needs": cls.needs,
            "minimal_norm": cls.minimal, "targeted_variant": cls.supports_targeted, "cost_rank": cls.cost_rank,
            "implementation": cls.implementation, "reference": cls.reference,
            "atlas_technique": cls.atlas_technique, "defaults": defaults,
            "summary": doc.splitlines()[0] if doc else "", "doc": doc,
        }

    def query_budget(self) -> int | None:
        """Model queries per sample this attack may spend, when it is fixed by its hyperparameters."""
        return None

    def with_params(self, **params: Any) -> AttackSpec:
        names = [f.name for f in dataclasses.fields(self)]
        unknown = [k for k in params if k not in names]
        if unknown:
            close = difflib.get_close_matches(unknown[0], names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"attack {self.name!r} has no hyperparameter {unknown[0]!r}", got=sorted(params),
                              fix=f"{hint}its hyperparameters: {', '.join(names)}")
        return dataclasses.replace(self, **params)

    # -- running ---------------------------------------------------------------------------------
    def check(self, target: Any, norm: str) -> None:
        """Raise if this attack cannot run on ``target`` under ``norm`` (capability mismatch)."""
        if norm not in self.norms:
            raise ConfigError(f"attack {self.name!r} does not support the {norm} norm", got=norm,
                              fix=f"use it with norm in {list(self.norms)}, or choose another attack")
        if self.needs == "gradients" and not getattr(target, "has_gradients", False):
            raise IncompatibleModelError(
                f"attack {self.name!r} needs gradients but target {target.name!r} only gives predictions",
                got=f"a {target.framework} target", fix="use score/decision-based attacks (square, hop_skip_jump, "
                "boundary, noise) or wrap the native model with wrap_model")

    def run(self, target: Any, x: np.ndarray, y: np.ndarray, *, norm: str, eps: float,
            y_target: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
        """Adversarial examples for ``x`` within ``eps`` (``minimal`` attacks ignore ``eps``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement run()")


def _check_int(spec: AttackSpec, field: str, *, minimum: int) -> None:
    value = getattr(spec, field)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{spec.name}: {field} must be an integer >= {minimum}", got=value,
                          fix=f"e.g. {field}={max(minimum, 1)}")


def check_int(spec: AttackSpec, field: str, minimum: int = 1) -> None:
    _check_int(spec, field, minimum=minimum)


def check_positive(spec: AttackSpec, field: str, *, allow_none: bool = False, allow_zero: bool = False) -> None:
    value = getattr(spec, field)
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{spec.name}: {field} must be a {'non-negative' if allow_zero else 'positive'} number",
                          got=value, fix=f"e.g. {field}=0.01")


def check_choice(spec: AttackSpec, field: str, choices: tuple[str, ...]) -> None:
    value = getattr(spec, field)
    if value not in choices:
        raise ConfigError(f"{spec.name}: {field} must be one of {', '.join(choices)}", got=value,
                          fix=f"e.g. {field}={choices[0]!r}")
