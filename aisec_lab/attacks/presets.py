"""Built-in presets. Each is a function of the norm returning attack specs; the engine orders them
cheap -> expensive and keeps only those that apply to the target (recorded in the scorecard).

``quick``     FGSM, PGD-40: a smoke test, not an evaluation.
``standard``  an AutoAttack-style ensemble -- APGD-CE (100 steps), targeted APGD-DLR against the 9 most
              likely wrong classes (APGD-T), Square (5,000 queries) -- run as a cascade. It is *not*
              the standard AutoAttack (which also runs FAB-T and fixes its own hyperparameters), and
              is never called "AutoAttack".
``thorough``  every registered attack that applies to the target and norm, with its defaults, plus
              the untargeted and targeted APGD variants.
"""

from __future__ import annotations

from .registry import ATTACKS, attack, register_preset


def _quick(norm: str):
    return [attack("fgsm"), attack("pgd")]


def _standard(norm: str):
    return [attack("apgd_ce"), attack("apgd_dlr", targeted=True, target="top", n_target_classes=9),
            attack("square", max_iter=5000)]


def _thorough(norm: str):
    specs = [attack(name) for name in ATTACKS.names()]
    specs.append(attack("apgd_dlr", targeted=True, target="top", n_target_classes=9))
    return specs


register_preset("quick", _quick, description="fgsm, pgd: a smoke test")
register_preset("standard", _standard,
                description="AutoAttack-style cascade: apgd_ce, targeted apgd_dlr (top-9), square 5000 queries")
register_preset("thorough", _thorough, description="every applicable attack with its defaults")
