"""The attack and preset registries, and the user-facing helpers around them."""

from __future__ import annotations

import logging
from typing import Any, Callable

from ..errors import ConfigError, IncompatibleModelError
from ..registry import Registry
from .spec import AttackSpec

log = logging.getLogger(__name__)

__all__ = ["ATTACKS", "PRESETS", "register_attack", "attack", "list_attacks", "describe_attack", "resolve_attacks",
           "register_preset", "list_presets"]

#: attack name -> AttackSpec subclass. Plugins: entry-point group ``aisec_lab.attacks``.
ATTACKS: Registry = Registry("attack", entry_point_group="aisec_lab.attacks")
#: preset name -> callable(norm) -> list[AttackSpec]
PRESETS: Registry = Registry("attack preset")


def register_attack(name: str, *, overwrite: bool = False) -> Callable[[type], type]:
    """Class decorator adding an :class:`AttackSpec` subclass to the catalog under ``name``.

    >>> @register_attack("my_attack")           # doctest: +SKIP
    ... @dataclass(frozen=True, kw_only=True)
    ... class MyAttack(AttackSpec):
    ...     name = "my_attack"
    ...     def run(self, target, x, y, *, norm, eps, y_target=None, seed=0): ...
    """

    def deco(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, AttackSpec)):
            raise ConfigError("register_attack decorates AttackSpec subclasses", got=cls,
                              fix="subclass aisec_lab.attacks.AttackSpec and decorate it with @dataclass(frozen=True, kw_only=True)")
        if not getattr(cls, "__dataclass_params__", None) or not cls.__dataclass_params__.frozen:
            raise ConfigError(f"attack {name!r} must be a frozen dataclass", got=cls.__name__,
                              fix="decorate it with @dataclass(frozen=True, kw_only=True) below @register_attack")
        if cls.name != name:
            cls.name = name
        ATTACKS.register(name, cls, description=(cls.__doc__ or "").strip().split("\n")[0], overwrite=overwrite)
        return cls

    return deco


def attack(name: str, **params: Any) -> AttackSpec:
    """An attack spec by name with hyperparameter overrides, e.g. ``attack("square", max_iter=2000)``."""
    cls = ATTACKS.get(name)
    return cls().with_params(**params) if params else cls()


def list_attacks(norm: Any = None) -> list[str]:
    """Names of every registered attack (those supporting ``norm`` when given)."""
    from .spec import normalize_norm

    names = ATTACKS.names()
    if norm is None:
        return names
    n = normalize_norm(norm)
    return [a for a in names if n in ATTACKS.get(a).norms]


def describe_attack(name: str) -> dict[str, Any]:
    """The attack's card: norms, knowledge, needs, defaults, reference, MITRE ATLAS technique, docstring."""
    return ATTACKS.get(name).card()


def register_preset(name: str, builder: Callable[[str], list[AttackSpec]], *, description: str = "",
                    overwrite: bool = False) -> None:
    PRESETS.register(name, builder, description=description, overwrite=overwrite)


def list_presets() -> list[str]:
    return PRESETS.names()


def _applicable(specs: list[AttackSpec], target: Any, norm: str, strict: bool) -> list[AttackSpec]:
    out = []
    for spec in specs:
        try:
            spec.check(target, norm)
        except (ConfigError, IncompatibleModelError) as exc:
            if strict:
                raise
            log.info("skipping %s: %s", spec.label, exc)
            continue
        out.append(spec)
    return out


def resolve_attacks(attacks: Any, *, norm: str, target: Any) -> tuple[list[AttackSpec], str | None, list[dict]]:
    """Turn a preset name or a list of names/specs into checked specs, ordered cheap -> expensive.

    Returns ``(specs, preset_name_or_None, skipped)``. Attacks a user names explicitly must fit the
    norm and the target (an error otherwise); a preset keeps only the attacks that apply and records
    the rest in ``skipped``.
    """
    preset = None
    skipped: list[dict] = []
    if isinstance(attacks, str):
        if attacks in PRESETS:
            preset = attacks
            candidates = PRESETS.get(attacks)(norm)
            specs = _applicable(candidates, target, norm, strict=False)
            kept = {id(s) for s in specs}
            skipped = [{"attack": s.label, "reason": _reason(s, target, norm)} for s in candidates if id(s) not in kept]
            if not specs:
                raise ConfigError(f"no attack of preset {attacks!r} applies to this target and norm",
                                  got=f"norm={norm}, target={target.name!r} ({target.framework})",
                                  fix="choose another norm or preset, or list attacks explicitly")
        elif attacks in ATTACKS:
            specs = _applicable([attack(attacks)], target, norm, strict=True)
        else:
            combined: Registry = Registry("attack or preset")
            for n in PRESETS.names() + ATTACKS.names():
                combined.register(n, n)
            combined.get(attacks)  # raises UnknownComponentError with did-you-mean
    else:
        if not isinstance(attacks, (list, tuple)) or not attacks:
            raise ConfigError("attacks must be a preset name or a non-empty list of attack names/specs", got=attacks,
                              fix=f"e.g. attacks='standard' or attacks=['pgd', attack('square', max_iter=2000)]")
        specs = []
        for a in attacks:
            if isinstance(a, str):
                specs.append(attack(a))
            elif isinstance(a, AttackSpec):
                specs.append(a)
            else:
                raise ConfigError("each entry of attacks must be an attack name or an attack spec", got=a,
                                  fix="use attack('pgd', max_iter=50) for overrides")
        specs = _applicable(specs, target, norm, strict=True)
        labels = [s.label for s in specs]
        dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
        if dupes:
            raise ConfigError("the same attack is listed twice", got=dupes,
                              fix="list each attack once (give variants different hyperparameters via targeted=...)")
    specs = sorted(specs, key=lambda s: s.cost_rank)
    return specs, preset, skipped


def _reason(spec: AttackSpec, target: Any, norm: str) -> str:
    try:
        spec.check(target, norm)
    except (ConfigError, IncompatibleModelError) as exc:
        return exc.what
    return ""
