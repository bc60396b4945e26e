"""The :class:`Scorecard`: the typed record an evaluation produces.

It holds plain JSON-ready sections (model, data, threat model, clean accuracy, per-ε results, checks,
cost, provenance; since schema 1.1 optionally the ``defense`` the model was evaluated behind and the
``detection`` results of an adversarial-input detector) plus per-sample NumPy arrays so every number can
be audited. Accuracies, rates and confidence bounds are floats in [0, 1]; times, counts and norms carry
their unit in the key name.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .defense_text import defense_line, detection_line, section_line

__all__ = ["Scorecard", "CheckResult", "SCHEMA_VERSION", "STATUSES"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1.2.0"
#: The first schema version with the optional ``defense`` and ``detection`` sections.
_SECTIONS_SINCE = (1, 1)
#: The first schema version with the optional ``sections`` (certified, privacy, backdoor, plugins).
_EXTRA_SECTIONS_SINCE = (1, 2)
STATUSES = ("pass", "warn", "fail")


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one validity check: a fixed ``id``, a ``status`` and the evidence behind it."""

    id: str
    status: str
    summary: str
    evidence: dict = field(default_factory=dict)
    doc: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ConfigError("a check status must be pass, warn or fail", got=self.status,
                              fix="return one of " + ", ".join(STATUSES))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "summary": self.summary, "evidence": self.evidence,
                "doc": self.doc}

    def __repr__(self) -> str:
        return f"CheckResult({self.id}: {self.status.upper()} - {self.summary})"


@dataclass(eq=False)
class Scorecard:
    """Result of :func:`aisec_lab.evaluate`. See the module docstring for the conventions."""

    model: dict
    data: dict
    threat_model: dict
    clean: dict
    results: list  # one dict per ε, ascending
    checks: list  # CheckResult
    cost: dict
    provenance: dict
    per_class: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict, repr=False)  # per-sample arrays
    complete: bool = True
    incomplete_reason: str | None = None
    skipped_attacks: list = field(default_factory=list)
    schema_version: str = SCHEMA_VERSION
    #: the preprocessing defense in front of the model, and whether the attacks adapted to it (BPDA/EOT);
    #: ``None`` for an undefended model
    defense: dict | None = None
    #: an adversarial-input detector's false-positive and detection rates
    #: (:func:`aisec_lab.defenses.detection_section`); ``None`` when no detector was evaluated
    detection: dict | None = None
    #: further questions answered on the same model and data (``evaluate(..., sections=[...])``):
    #: {"certified": {...}, "privacy": {...}, "backdoor": {...}}; see :mod:`aisec_lab.sections`
    sections: dict = field(default_factory=dict)

    def section(self, name: str) -> dict:
        """The section ``name`` (``"certified"``, ``"privacy"``, ``"backdoor"``, ...) as a plain dict."""
        if name in self.sections:
            return self.sections[name]
        have = ", ".join(sorted(self.sections)) or "none"
        raise ConfigError(f"this scorecard has no {name!r} section", got=f"sections: {have}",
                          fix=f"evaluate with sections=[{name!r}] (and train_data=... for privacy / backdoor)")

    # -- headline numbers ------------------------------------------------------------------------
    @property
    def clean_accuracy(self) -> float:
        return float(self.clean["accuracy"])

    @property
    def clean_accuracy_ci(self) -> tuple[float, float]:
        lo, hi = self.clean["ci"]
        return (float(lo), float(hi))

    @property
    def eps(self) -> list[float]:
        return [r["eps"] for r in self.results]

    @property
    def attacks(self) -> list[str]:
        return [a["label"] for a in self.threat_model["attacks"]]

    @property
    def exhaustive(self) -> bool:
        return bool(self.threat_model.get("exhaustive"))

    def _result(self, eps: float) -> dict:
        if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)) or not math.isfinite(eps):
            raise ConfigError("eps must be a number", got=eps, fix=f"use one of the evaluated ε: {self.eps}")
        for r in self.results:
            if abs(r["eps"] - float(eps)) <= 1e-9:
                return r
        raise ConfigError(f"ε={eps:g} was not evaluated", got=eps,
                          fix=f"use one of the evaluated ε: {', '.join(f'{e:g}' for e in self.eps)}, or evaluate it")

    def _attack_label(self, attack: str) -> str:
        labels = self.attacks
        if attack in labels:
            return attack
        matches = [lab for lab in labels if lab.split(" ")[0] == attack]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ConfigError(f"several runs of {attack!r} were evaluated", got=matches, fix="pass the full label")
        raise ConfigError(f"attack {attack!r} was not part of this evaluation", got=attack,
                          fix=f"use one of: {', '.join(labels)}")

    def robust_accuracy(self, eps: float, attack: str | None = None) -> float:
        """Worst-case robust accuracy at ``eps`` over all attacks (per sample); or one attack's own.

        Per-attack numbers need ``evaluate(..., exhaustive=True)``: in a cascade an attack only sees
        the samples the cheaper attacks left standing. On an incomplete scorecard the value is an
        upper bound (a warning is logged).
        """
        r = self._result(eps)
        if not r.get("complete", True):
            log.warning("robust accuracy at eps=%g is an upper bound: the evaluation was incomplete (%s)", eps,
                        self.incomplete_reason)
        if attack is None:
            return float(r["robust_accuracy"])
        label = self._attack_label(attack)
        if not self.exhaustive:
            raise ConfigError(f"per-attack robust accuracy of {label!r} needs exhaustive=True",
                              got="a cascade evaluation (exhaustive=False)",
                              fix="re-run evaluate(..., exhaustive=True), or use broken_by(eps) for cascade counts")
        return float(r["attacks"][label]["robust_accuracy"])

    def robust_accuracy_ci(self, eps: float, attack: str | None = None) -> tuple[float, float]:
        r = self._result(eps)
        if attack is None:
            return tuple(r["robust_accuracy_ci"])
        self.robust_accuracy(eps, attack)
        return tuple(r["attacks"][self._attack_label(attack)]["robust_accuracy_ci"])

    def broken_by(self, eps: float) -> dict[str, int]:
        """How many samples each attack broke *first* at ``eps`` (in cascade order)."""
        r = self._result(eps)
        return {label: int(a["broken_first"]) for label, a in r["attacks"].items()}

    def check(self, check_id: str) -> CheckResult:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise ConfigError(f"no check {check_id!r} in this scorecard", got=check_id,
                          fix=f"use one of: {', '.join(c.id for c in self.checks)}")

    @property
    def status(self) -> str:
        """Worst check status (``fail`` > ``warn`` > ``pass``); at least ``warn`` when incomplete."""
        statuses = {c.status for c in self.checks}
        if "fail" in statuses:
            return "fail"
        if "warn" in statuses or not self.complete:
            return "warn"
        return "pass"

    @property
    def trustworthy(self) -> bool:
        return self.complete and all(c.status != "fail" for c in self.checks)

    @property
    def adaptive(self) -> bool | None:
        """Whether the attacks knew about the defense (BPDA/EOT); ``None`` for an undefended model.

        ``False`` means the robust accuracies are upper bounds: adaptive attacks usually break such a
        defense.
        """
        return None if self.defense is None else bool(self.defense.get("adaptive"))

    # -- serialisation -------------------------------------------------------------------------
    def _record_version(self) -> str:
        """``schema_version`` as written: a 1.0 scorecard that gained a defense or detection section is 1.1."""
        if self.sections:
            needed = _EXTRA_SECTIONS_SINCE
        elif self.defense is not None or self.detection is not None:
            needed = _SECTIONS_SINCE
        else:
            return self.schema_version
        m = re.match(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.", str(self.schema_version))
        if m and int(m.group(1)) == needed[0] and int(m.group(2)) < needed[1]:
            return SCHEMA_VERSION
        return self.schema_version

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON record; ``defense`` and ``detection`` are left out when ``None``."""
        record = {
            "schema_version": self._record_version(),
            "model": self.model,
            "data": self.data,
            "threat_model": self.threat_model,
            "clean_accuracy": {"value": self.clean["accuracy"], "ci": list(self.clean["ci"]),
                               "n_correct": self.clean["n_correct"], "n": self.clean["n"],
                               **{k: self.clean[k] for k in ("ci_method", "ci_level") if k in self.clean}},
            "results": self.results,
            "checks": [c.to_dict() for c in self.checks],
            "per_class": self.per_class,
            "cost": self.cost,
            "provenance": self.provenance,
            "complete": self.complete,
            "incomplete_reason": self.incomplete_reason,
            "skipped_attacks": self.skipped_attacks,
        }
        if self.defense is not None:
            record["defense"] = self.defense
        if self.detection is not None:
            record["detection"] = self.detection
        if self.sections:
            record["sections"] = self.sections
        return record

    @classmethod
    def from_dict(cls, d: dict[str, Any], samples: dict | None = None) -> "Scorecard":
        """Rebuild a scorecard from :meth:`to_dict` output (validated by the schema in ``scorecard.io``)."""
        clean_acc = d["clean_accuracy"]
        clean = {"accuracy": clean_acc["value"], "ci": list(clean_acc["ci"]), "n_correct": clean_acc["n_correct"],
                 "n": clean_acc["n"]}
        for key in ("ci_method", "ci_level"):
            if key in clean_acc:
                clean[key] = clean_acc[key]
        checks = [CheckResult(id=c["id"], status=c["status"], summary=c["summary"], evidence=c.get("evidence", {}),
                              doc=c.get("doc", "")) for c in d["checks"]]
        return cls(model=d["model"], data=d["data"], threat_model=d["threat_model"], clean=clean,
                   results=d["results"], checks=checks, cost=d["cost"], provenance=d["provenance"],
                   per_class=d.get("per_class", {}), samples=dict(samples or {}), complete=d["complete"],
                   incomplete_reason=d.get("incomplete_reason"), skipped_attacks=d.get("skipped_attacks", []),
                   schema_version=d["schema_version"], defense=d.get("defense"), detection=d.get("detection"),
                   sections=dict(d.get("sections") or {}))

    # -- files, tables, notebooks ----------------------------------------------------------------
    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write ``scorecard.json``, ``samples.npz`` (and Markdown, HTML, plots when the renderers are
        available) into ``out_dir``, atomically, replacing a previous save; return the JSON path."""
        from .io import save

        return save(self, out_dir)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Scorecard":
        """Read a saved scorecard: the ``scorecard.json`` file or the directory holding it. Refuses a
        truncated or invalid file and an unknown major schema version (``ScorecardFormatError``)."""
        from .io import load

        return load(path)

    def to_frame(self):
        """pandas DataFrame indexed by ε: one column per attack plus ``worst_case`` (robust accuracy).

        Per-attack columns hold each attack's own robust accuracy when the evaluation was exhaustive,
        otherwise the number of samples it broke *first* in the cascade (``df.attrs["values"]`` says
        which).
        """
        from .._optional import require

        pd = require("pandas", purpose="build a DataFrame from a scorecard", extra="notebooks")
        key = "robust_accuracy" if self.exhaustive else "broken_first"
        columns = [*self.attacks, "worst_case"]
        rows = []
        for r in self.results:
            row = {label: r["attacks"].get(label, {}).get(key, math.nan) for label in self.attacks}
            row["worst_case"] = float(r["robust_accuracy"])
            rows.append(row)
        frame = pd.DataFrame(rows, index=pd.Index(self.eps, name="eps", dtype=float), columns=columns)
        frame.attrs.update(values=key, worst_case="robust_accuracy", norm=self.threat_model.get("norm"))
        return frame

    def _repr_html_(self) -> str:
        import html

        fallback = f"<pre>{html.escape(self.summary())}</pre>"
        try:
            from .render.html import render_html
        except ImportError:
            return fallback
        try:
            return render_html(self.to_dict(), self.samples, embed_plots=False)
        except ImportError:  # a missing optional renderer dependency (jinja2)
            return fallback

    def summary(self) -> str:
        lines = [f"Scorecard: {self.model.get('name')} on {self.data.get('name')}/{self.data.get('split')} "
                 f"(n={self.data.get('n')}), {self.threat_model['norm']}, attacks: {', '.join(self.attacks)}",
                 f"  clean accuracy {self.clean_accuracy:.4f} [{self.clean_accuracy_ci[0]:.3f}, {self.clean_accuracy_ci[1]:.3f}]"]
        if self.defense is not None:  # next to the headline numbers: a non-adaptive defense inflates them
            lines.insert(1, "  " + defense_line(self.defense))
        oblivious = self.adaptive is False
        for r in self.results:
            flag = "" if r.get("complete", True) else "  (INCOMPLETE: upper bound)"
            if oblivious:
                flag += "  (NOT ADAPTIVE: upper bound)"
            lines.append(f"  eps={r['eps_display']:<8} robust accuracy {r['robust_accuracy']:.4f} "
                         f"[{r['robust_accuracy_ci'][0]:.3f}, {r['robust_accuracy_ci'][1]:.3f}]{flag}")
        if self.detection is not None:
            lines.append("  " + detection_line(self.detection))
        for name, section in self.sections.items():
            lines.append("  " + section_line(name, section))
        bad = [c for c in self.checks if c.status != "pass"]
        lines.append(f"  checks: {self.status.upper()}" + "".join(f"\n    {c.status.upper()} {c.id}: {c.summary}" for c in bad))
        if not self.complete:
            lines.append(f"  INCOMPLETE: {self.incomplete_reason}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()
