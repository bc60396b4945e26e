"""Attack catalog: frozen specs looked up by name, presets, and the native kernels behind them.

>>> al.list_attacks()                                  # doctest: +SKIP
>>> al.describe_attack("pgd")                          # doctest: +SKIP
>>> al.attack("square", max_iter=2000)                 # doctest: +SKIP
"""

from __future__ import annotations

from . import catalog, presets  # noqa: F401  (registers the built-in attacks and presets)
from .registry import (
    ATTACKS,
    PRESETS,
    attack,
    describe_attack,
    list_attacks,
    list_presets,
    register_attack,
    register_preset,
    resolve_attacks,
)
from .spec import AttackSpec, normalize_norm

__all__ = ["AttackSpec", "ATTACKS", "PRESETS", "attack", "describe_attack", "list_attacks", "list_presets",
           "register_attack", "register_preset", "resolve_attacks", "normalize_norm"]
