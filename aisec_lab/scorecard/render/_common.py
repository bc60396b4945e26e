"""Helpers shared by the renderers: headline ε, number formats, check docs, ATLAS names.

Everything here is a pure function of the scorecard record (``Scorecard.to_dict()``) or of the packaged
``evaluation/checks.md``; nothing reads the clock or the environment.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = [
    "ATLAS_TECHNIQUES",
    "NIST_LINE",
    "NIST_FUNCTION",
    "headline_index",
    "headline_result",
    "overall_status",
    "pct",
    "ci_text",
    "ci_level_text",
    "norm_text",
    "eps_text",
    "eps_long",
    "key_params",
    "atlas_text",
    "compact_value",
    "compact_evidence",
    "check_explanation",
    "per_class_robust",
    "num",
]

#: MITRE ATLAS techniques an attack may carry (``threat_model.attacks[i].atlas_technique``).
ATLAS_TECHNIQUES = {
    "AML.T0043": "Craft Adversarial Data",
    "AML.T0043.000": "Craft Adversarial Data: White-Box Optimization",
    "AML.T0043.001": "Craft Adversarial Data: Black-Box Optimization",
    "AML.T0043.002": "Craft Adversarial Data: Black-Box Transfer",
    "AML.T0043.003": "Craft Adversarial Data: Manual Modification",
    "AML.T0043.004": "Craft Adversarial Data: Insert Backdoor Trigger",
}

NIST_FUNCTION = "MEASURE 2.7"
NIST_LINE = ("NIST AI RMF: this scorecard is evidence for MEASURE 2.7 "
             "(AI system security and resilience are evaluated and documented).")

_NORMS = {"linf": "L∞", "l2": "L2", "l1": "L1", "l0": "L0"}


def headline_index(record: dict) -> int | None:
    """Index in ``record["results"]`` of the headline ε: the middle positive ε of the sweep.

    The same rule as the validity checks' probes (``CheckContext.headline_eps``). ``None`` when no ε
    was evaluated.
    """
    results = record.get("results") or []
    if not results:
        return None
    pos = [i for i, r in enumerate(results) if float(r.get("eps", 0.0)) > 0]
    if not pos:
        return len(results) // 2
    return pos[len(pos) // 2]


def sections(record: dict) -> dict[str, Any]:
    """The record's parts every renderer reads, with empty defaults for missing ones."""
    tm = record.get("threat_model", {}) or {}
    results = record.get("results", []) or []
    hi = headline_index(record)
    return {
        "model": record.get("model", {}) or {},
        "data": record.get("data", {}) or {},
        "tm": tm,
        "clean": record.get("clean_accuracy", {}) or {},
        "results": results,
        "checks": record.get("checks", []) or [],
        "attacks": tm.get("attacks", []) or [],
        "exhaustive": bool(tm.get("exhaustive")),
        "status": overall_status(record),
        "hi": hi,
        "head": results[hi] if hi is not None else None,
        "defense": record.get("defense") if isinstance(record.get("defense"), dict) else None,
        "detection": record.get("detection") if isinstance(record.get("detection"), dict) else None,
        "sections": section_views(record),
    }


def section_views(record: dict) -> list[dict]:
    """Further sections (certified, privacy, backdoor, plugins) as plain text: name, title, caveat, rows."""
    from ...sections import section_header, section_rows

    out = []
    sections = record.get("sections") if isinstance(record.get("sections"), dict) else {}
    for name, section in sections.items():
        if not isinstance(section, dict):
            continue
        title, caveat = section_header(name)
        out.append({"name": str(name), "title": str(title), "caveat": str(caveat or ""),
                    "rows": section_rows(name, section)})
    return out


def headline_result(record: dict) -> dict | None:
    i = headline_index(record)
    return None if i is None else record["results"][i]


def overall_status(record: dict) -> str:
    """Worst check status (``fail`` > ``warn`` > ``pass``); at least ``warn`` when incomplete.

    Mirrors :attr:`Scorecard.status`.
    """
    statuses = {c.get("status") for c in record.get("checks", [])}
    if "fail" in statuses:
        return "fail"
    if "warn" in statuses or not record.get("complete", True):
        return "warn"
    return "pass"


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def pct(x: Any, digits: int = 1) -> str:
    """``0.5833 -> '58.3%'``; ``None`` (or NaN) -> ``'n/a'``."""
    if not _finite(x):
        return "n/a"
    return f"{100.0 * float(x):.{digits}f}%"


def ci_text(ci: Any, digits: int = 1) -> str:
    """``[0.449, 0.709] -> '44.9–70.9%'``."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or not all(_finite(v) for v in ci):
        return "n/a"
    lo, hi = (100.0 * float(v) for v in ci)
    return f"{lo:.{digits}f}–{hi:.{digits}f}%"


def ci_level_text(record: dict) -> str:
    """``'95% CI'`` (from ``clean_accuracy.ci_level``; 95 % when absent)."""
    level = record.get("clean_accuracy", {}).get("ci_level", 0.95)
    if not _finite(level):
        level = 0.95
    return f"{100.0 * float(level):g}% CI"


def norm_text(norm: Any) -> str:
    return _NORMS.get(str(norm).lower(), str(norm))


def eps_text(result_or_eps: Any) -> str:
    """The short display form of an ε (``'8/255'``, ``'0.1'``)."""
    if isinstance(result_or_eps, dict):
        disp = result_or_eps.get("eps_display")
        if disp not in (None, ""):
            return str(disp)
        return f"{float(result_or_eps['eps']):g}"
    return f"{float(result_or_eps):g}"


def eps_long(eps: float, display: str | None) -> str:
    """``'8/255 (0.03137)'`` when the display form differs from the plain number, else ``'0.1'``."""
    plain = f"{float(eps):.4g}"
    if display and display != plain and display != f"{float(eps):g}":
        return f"{display} ({plain})"
    return display or plain


def num(x: Any) -> str:
    """A compact, deterministic text form of a plain number."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return f"{x:,}" if abs(x) >= 10000 else str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if x == int(x) and abs(x) < 1e15:
            return str(int(x)) if abs(x) < 10000 else f"{int(x):,}"
        return f"{x:.4g}"
    return str(x)


def compact_value(v: Any, max_items: int = 6) -> str:
    """A short text form of an evidence value (numbers to 4 significant digits, long lists cut)."""
    if v is None:
        return "none"
    if isinstance(v, (bool, int, float)):
        return num(v)
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)):
        items = [compact_value(x, max_items) for x in v[:max_items]]
        more = f", … ({len(v)} in all)" if len(v) > max_items else ""
        return "[" + ", ".join(items) + more + "]"
    if isinstance(v, dict):
        items = [f"{k}: {compact_value(x, max_items)}" for k, x in list(v.items())[:max_items]]
        more = ", …" if len(v) > max_items else ""
        return "{" + ", ".join(items) + more + "}"
    return json.dumps(v, default=str)


def compact_evidence(evidence: Any) -> list[tuple[str, str]]:
    """``[(key, short value text), ...]`` in the record's key order."""
    if not isinstance(evidence, dict):
        return [("value", compact_value(evidence))] if evidence not in (None, "") else []
    return [(str(k), compact_value(v)) for k, v in evidence.items()]


def key_params(attack: dict) -> list[tuple[str, str]]:
    """The hyperparameters worth printing: set (not ``None``), not ``batch_size``, no target fields when
    untargeted."""
    params = attack.get("params") or {}
    skip = {"batch_size"}
    if not params.get("targeted"):
        skip |= {"targeted", "target", "n_target_classes"}
    return [(str(k), compact_value(v)) for k, v in sorted(params.items(), key=lambda kv: str(kv[0]))
            if k not in skip and v is not None]


def atlas_text(technique: Any) -> str:
    """``'AML.T0043.000 (Craft Adversarial Data: White-Box Optimization)'``."""
    if not technique:
        return "not recorded"
    name = ATLAS_TECHNIQUES.get(str(technique))
    return f"{technique} ({name})" if name else str(technique)


def per_class_robust(record: dict, eps: float) -> dict[str, tuple[float, float, int]]:
    """``{class: (clean accuracy, robust accuracy at eps, n)}`` from ``record["per_class"]``."""
    out: dict[str, tuple[float, float, int]] = {}
    for cls, entry in (record.get("per_class") or {}).items():
        robust = entry.get("robust_accuracy") or {}
        value = robust.get(f"{float(eps):g}")
        if value is None:
            for key, v in robust.items():
                try:
                    if abs(float(key) - float(eps)) <= 1e-9 * max(1.0, abs(float(eps))):
                        value = v
                        break
                except ValueError:
                    continue
        out[str(cls)] = (entry.get("clean_accuracy"), value, entry.get("n"))
    return out


# -- the packaged check explanations --------------------------------------------------------------
_ANCHOR = re.compile(r'<a id="([^"]+)"></a>')
_LABEL = re.compile(r"^\*\*(.+?)\*\*\s*")


@lru_cache(maxsize=1)
def _check_sections() -> dict[str, str]:
    try:
        text = resources.files("aisec_lab.evaluation").joinpath("checks.md").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError, OSError):
        return {}
    sections: dict[str, str] = {}
    marks = list(_ANCHOR.finditer(text))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[m.end():end].strip("\n")
        lines = body.splitlines()
        if lines and lines[0].startswith("#"):
            lines = lines[1:]
        sections[m.group(1)] = "\n".join(lines).strip()
    return sections


def check_explanation(check_id: str) -> list[dict]:
    """The explanation of ``check_id`` from ``checks.md``, as paragraphs.

    Each paragraph is ``{"label": "What it tests." | "", "parts": [(is_code, text), ...]}``: Markdown
    emphasis is dropped and backtick spans are marked as code, so a renderer can escape every piece.
    An unknown id (a user-registered check) gives ``[]``.
    """
    body = _check_sections().get(str(check_id))
    if not body:
        return []
    # a paragraph starts at a **Label.** line or after a blank line; wrapped lines join with a space
    paragraphs: list[list[str]] = []
    for line in body.splitlines():
        line = line.strip()
        if not line:
            paragraphs.append([])
            continue
        if _LABEL.match(line) or not paragraphs:
            paragraphs.append([line])
        else:
            paragraphs[-1].append(line)
    out = []
    for lines in paragraphs:
        if not lines:
            continue
        text = " ".join(lines)
        label = ""
        m = _LABEL.match(text)
        if m:
            label, text = m.group(1), text[m.end():]
        text = text.replace("**", "")
        pieces = text.split("`")
        parts = [(i % 2 == 1, piece) for i, piece in enumerate(pieces) if piece]
        out.append({"label": label, "parts": parts})
    return out
