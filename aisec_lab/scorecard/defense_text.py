"""The optional ``defense`` and ``detection`` sections of a scorecard record, in words.

``Scorecard.summary()`` and both renderers describe these sections with the same sentences, so the
warning on a defense evaluated without adaptive attacks reads the same everywhere. Everything here is
a pure function of the section dicts (see ``scorecard.schema.json`` for their shape) and returns plain,
unescaped text: each renderer escapes it.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "NOT_ADAPTIVE_WARNING",
    "DETECTOR_NOT_ADAPTIVE_NOTE",
    "ADAPTATIONS",
    "defense_adaptive",
    "defense_step_text",
    "defense_chain_text",
    "adaptation_text",
    "defense_line",
    "detection_line",
]

#: The loud warning shown next to the headline numbers of a defense evaluated with defense-oblivious attacks.
NOT_ADAPTIVE_WARNING = ("NOT ADAPTIVE: attacks were crafted without knowledge of the defense; robust accuracy is "
                        "an upper bound that adaptive attacks (BPDA/EOT) usually break")

#: What a detection rate measured with attacks that ignore the detector does (and does not) say.
DETECTOR_NOT_ADAPTIVE_NOTE = ("the detector was evaluated against attacks that do not know about it; an attacker "
                              "who also targets the detector usually evades it far more often")

#: The adaptations a defended evaluation may record (``defense.adaptation``).
ADAPTATIONS = ("BPDA", "EOT")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and math.isfinite(v):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_value(x)}" for k, x in v.items()) + "}"
    return "none" if v is None else str(v)


def defense_adaptive(defense: Any) -> bool | None:
    """``True``/``False`` from ``defense["adaptive"]``; ``None`` when there is no defense section."""
    if not isinstance(defense, dict):
        return None
    return bool(defense.get("adaptive"))


def defense_step_text(step: Any) -> str:
    """``'feature_squeezing(bit_depth=4)'``; a step without parameters is its name alone."""
    if not isinstance(step, dict):
        return _value(step)
    params = step.get("params") or {}
    inner = ", ".join(f"{k}={_value(v)}" for k, v in params.items()) if isinstance(params, dict) else _value(params)
    name = _value(step.get("name"))
    return f"{name}({inner})" if inner else name


def defense_chain_text(defense: dict) -> str:
    """The preprocessing chain in application order: ``'jpeg(quality=75) → feature_squeezing(bit_depth=4)'``."""
    chain = defense.get("chain") or []
    return " → ".join(defense_step_text(s) for s in chain) or "no steps recorded"


def adaptation_text(defense: dict) -> str:
    """``'adaptive: BPDA, EOT with 8 samples'``, ``'adaptive (differentiable, deterministic chain: plain
    gradients)'`` or the :data:`NOT_ADAPTIVE_WARNING`."""
    if not defense.get("adaptive"):
        return NOT_ADAPTIVE_WARNING
    methods = [str(m) for m in defense.get("adaptation") or []]
    if not methods:
        return "adaptive (differentiable, deterministic chain: attacks use its exact gradients)"
    text = "adaptive: " + ", ".join(methods)
    n = defense.get("eot_samples")
    if "EOT" in methods and isinstance(n, int) and not isinstance(n, bool):
        text += f" with {n} sample{'s' if n != 1 else ''}"
    return text


def defense_line(defense: dict) -> str:
    """One line: the chain and how the attacks treated it."""
    return f"defense: {defense_chain_text(defense)}; {adaptation_text(defense)}"


def _rate(x: Any) -> str:
    return f"{float(x):.3f}" if _finite(x) else "n/a"


def _ci(ci: Any) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_finite(v) for v in ci):
        return f"[{float(ci[0]):.3f}, {float(ci[1]):.3f}]"
    return "[n/a]"


def _trained_on(trained: Any) -> str:
    if not isinstance(trained, dict):
        return "unknown attacks"
    eps = trained.get("eps")
    eps_text = f"{float(eps):g}" if _finite(eps) else _value(eps)
    return f"{_value(trained.get('attack'))} {_value(trained.get('norm'))} eps={eps_text}"


def detection_line(detection: dict) -> str:
    """One line: detector, false-positive rate and the detection rate at each ε."""
    rates = "; ".join(
        f"eps={_value(r.get('eps_display', r.get('eps')))} {_rate(r.get('detection_rate'))} "
        f"{_ci(r.get('detection_rate_ci'))} (n={_value(r.get('n_adversarial'))})"
        for r in detection.get("per_eps") or [] if isinstance(r, dict))
    text = (f"detection: {_value(detection.get('detector'))} (trained on {_trained_on(detection.get('trained_on'))}): "
            f"false positives {_rate(detection.get('false_positive_rate'))} "
            f"{_ci(detection.get('false_positive_rate_ci'))} of {_value(detection.get('n_clean'))} clean; "
            f"detected {rates or 'no ε'}")
    if not detection.get("adaptive"):
        text += f" (not adaptive: {DETECTOR_NOT_ADAPTIVE_NOTE})"
    return text


def section_line(name: str, section: dict) -> str:
    """One line for a further section (certified, privacy, backdoor, plugins) in ``Scorecard.summary()``."""
    from ..sections import section_rows

    rows = section_rows(name, section)
    shown = "; ".join(f"{label} {value}" for label, value in rows[:4])
    return f"{name}: {shown}" if shown else f"{name}: (no rows)"
