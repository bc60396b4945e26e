"""Shared helpers of the exporters: the record every exporter reads, number and label formatting.

Every exporter is a function of the canonical record (:meth:`Scorecard.to_dict`); a :class:`Scorecard`
or that record as a plain dict (for example loaded from ``scorecard.json``) are both accepted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..scorecard.render._common import ATLAS_TECHNIQUES

__all__ = ["as_record", "samples_of", "norm_label", "eps_label", "threat_description", "attack_labels",
           "atlas_techniques", "ATLAS_TECHNIQUES", "NIST_AI_RMF_FUNCTION", "NIST_AI_RMF_URL", "atlas_url"]

#: The NIST AI RMF 1.0 subcategory a robustness evaluation is evidence for.
NIST_AI_RMF_FUNCTION = "NIST AI RMF MEASURE 2.7"
NIST_AI_RMF_TEXT = "AI system security and resilience are evaluated and documented"
NIST_AI_RMF_URL = "https://doi.org/10.6028/NIST.AI.100-1"

_NORMS = {"linf": "L∞", "l2": "L2", "l1": "L1", "l0": "L0"}
_REQUIRED = ("model", "data", "threat_model", "clean_accuracy", "results", "checks")


def as_record(sc: Any) -> dict:
    """The canonical record of ``sc``: a :class:`Scorecard` or its :meth:`~Scorecard.to_dict` output."""
    from ..scorecard import Scorecard

    if isinstance(sc, Scorecard):
        record = sc.to_dict()
    elif isinstance(sc, Mapping):
        record = dict(sc)
    else:
        raise ConfigError("expected a Scorecard or its to_dict() record", got=type(sc).__name__,
                          fix="pass the result of al.evaluate(...) or al.Scorecard.load(path)")
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise ConfigError("the scorecard record is missing keys", got=missing,
                          fix="export a complete record: al.Scorecard.load(path) validates one")
    try:
        for r in record["results"]:
            r["eps"], r["robust_accuracy"], r["robust_accuracy_ci"]  # noqa: B018 - presence check
        record["clean_accuracy"]["value"], record["clean_accuracy"]["ci"]  # noqa: B018
        record["threat_model"]["norm"], record["threat_model"]["attacks"]  # noqa: B018
    except (KeyError, TypeError) as exc:
        raise ConfigError("the scorecard record is malformed", got=f"{type(exc).__name__}: {exc}",
                          fix="export a record written by aisec-lab (al.Scorecard.load validates it)") from exc
    return record


def samples_of(sc: Any) -> dict:
    """The per-sample arrays of a :class:`Scorecard` (empty for a plain record)."""
    return dict(getattr(sc, "samples", None) or {})


def fnum(x: Any) -> float | None:
    """A plain Python float (``None`` stays ``None``); NumPy scalars become floats, so YAML stays plain."""
    if x is None:
        return None
    v = float(x)
    if not math.isfinite(v):
        raise ConfigError("a scorecard number is not finite", got=v, fix="re-run the evaluation")
    return v


def inum(x: Any) -> int | None:
    return None if x is None else int(x)


def norm_label(norm: str) -> str:
    return _NORMS.get(str(norm).lower(), str(norm))


def eps_label(result: Mapping) -> str:
    disp = result.get("eps_display")
    return str(disp) if disp not in (None, "") else f"{float(result['eps']):g}"


def attack_labels(record: Mapping) -> list[str]:
    return [str(a["label"]) for a in record["threat_model"]["attacks"]]


def atlas_techniques(record: Mapping) -> list[str]:
    """The distinct MITRE ATLAS technique ids of the evaluated attacks, sorted (``AML.T0043`` when none)."""
    ids = sorted({str(a["atlas_technique"]) for a in record["threat_model"]["attacks"] if a.get("atlas_technique")})
    return ids or ["AML.T0043"]


def atlas_url(technique: str) -> str:
    return f"https://atlas.mitre.org/techniques/{technique}"


def threat_description(record: Mapping, result: Mapping, attack: str | None = None) -> str:
    """One line naming the threat model of one ε (and one attack): ``L∞ ε=0.1, worst case over fgsm, pgd``."""
    tm = record["threat_model"]
    head = f"{norm_label(tm['norm'])} ε={eps_label(result)}"
    kind = "targeted" if tm.get("targeted") else "untargeted"
    if attack is not None:
        return f"{head}, {attack} only ({kind})"
    return f"{head}, worst case per sample over {', '.join(attack_labels(record))} ({kind})"


def is_complete(record: Mapping, result: Mapping) -> bool:
    """Whether one ε's numbers are final (an incomplete ε gives upper bounds on robust accuracy)."""
    return bool(result.get("complete", record.get("complete", True)))


def section_metrics(record: Mapping) -> list[dict]:
    """Model-card metrics of the further sections (certified, privacy, ...) that have a standard name.

    Each is ``{"section", "type", "name", "value"}`` plus ``"ci"`` where the section gives one; a section
    not registered in this installation contributes nothing.
    """
    from ..errors import UnknownComponentError
    from ..sections import get_section

    out = []
    for name, section in (record.get("sections") or {}).items():
        try:
            spec = get_section(name)
        except UnknownComponentError:
            continue
        if spec.model_card_metrics is None or not isinstance(section, dict):
            continue
        for m in spec.model_card_metrics(section):
            if fnum(m.get("value")) is None:
                continue
            out.append({"section": name, **m})
    return out


def defense_limitation(record: Mapping) -> str | None:
    """One sentence on the defense the model was evaluated behind, loud when the evaluation was not adaptive."""
    defense = record.get("defense")
    if not isinstance(defense, Mapping):
        return None
    chain = " -> ".join(str(c.get("name")) for c in defense.get("chain") or [] if isinstance(c, Mapping))
    if not defense.get("adaptive"):
        return (f"NOT ADAPTIVE: the model was evaluated behind the preprocessing defense {chain} with attacks "
                "crafted on the undefended model; its robust accuracy is an upper bound that adaptive attacks "
                "(BPDA/EOT) usually break.")
    how = ", ".join(defense.get("adaptation") or []) or "end-to-end gradients"
    return f"Evaluated behind the preprocessing defense {chain} with adaptive attacks ({how})."
