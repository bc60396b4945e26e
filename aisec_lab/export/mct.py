"""Model Card Toolkit (schema v0.0.2) JSON export of a scorecard.

The result is a plain dict ready for ``json.dump``; it validates against the toolkit's published
JSON schema v0.0.2, where metric values and confidence bounds are strings (written here as the
exact ``repr`` of the float, so nothing is lost). Graphics are embedded as base64 PNG when the
plotting module (matplotlib) is available, and left out otherwise.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
import sys
from typing import Any

from ._common import (
    ATLAS_TECHNIQUES,
    NIST_AI_RMF_FUNCTION,
    NIST_AI_RMF_TEXT,
    NIST_AI_RMF_URL,
    as_record,
    atlas_techniques,
    atlas_url,
    attack_labels,
    defense_limitation,
    eps_label,
    fnum,
    is_complete,
    norm_label,
    samples_of,
    section_metrics,
    threat_description,
)

__all__ = ["model_card_toolkit", "MCT_SCHEMA_VERSION"]

log = logging.getLogger(__name__)

MCT_SCHEMA_VERSION = "0.0.2"
_ARXIV = re.compile(r"arXiv:\s*(\d{4}\.\d{4,5})", re.IGNORECASE)


def _s(x: Any) -> str:
    """A number as the schema's string: the exact float repr (``0.5833333333333334``)."""
    return repr(fnum(x))


def _metric(mtype: str, value: Any, ci: Any, slice_: str) -> dict:
    return {"type": mtype, "value": _s(value), "slice": slice_,
            "confidence_interval": {"lower_bound": _s(ci[0]), "upper_bound": _s(ci[1])}}


def _ci_note(record: dict) -> str:
    clean = record["clean_accuracy"]
    level, method = clean.get("ci_level"), clean.get("ci_method")
    if level is None and method is None:
        return "confidence intervals"
    return " ".join(p for p in (f"{float(level):.0%}" if level is not None else "", str(method or ""),
                                "confidence intervals") if p)


def _performance_metrics(record: dict) -> list[dict]:
    data, clean = record["data"], record["clean_accuracy"]
    n = data.get("n", clean.get("n"))
    where = f"{data.get('name')} {data.get('split') or ''}".strip() + (f", n={n}" if n is not None else "")
    metrics = [_metric("accuracy", clean["value"], clean["ci"], f"clean ({where})")]
    exhaustive = bool(record["threat_model"].get("exhaustive"))
    for r in record["results"]:
        if r.get("robust_accuracy") is None:
            continue
        suffix = "" if is_complete(record, r) else " [incomplete run: upper bound]"
        metrics.append(_metric("robust_accuracy", r["robust_accuracy"], r["robust_accuracy_ci"],
                               threat_description(record, r) + suffix))
        if exhaustive:  # per-attack numbers are only meaningful when every attack saw every sample
            for label, a in (r.get("attacks") or {}).items():
                if a.get("robust_accuracy") is None or a.get("robust_accuracy_ci") is None:
                    continue
                metrics.append(_metric("robust_accuracy", a["robust_accuracy"], a["robust_accuracy_ci"],
                                       threat_description(record, r, attack=label) + suffix))
    for m in section_metrics(record):
        entry = {"type": str(m["type"]), "value": _s(m["value"]), "slice": f"{m['name']} ({where})"}
        if isinstance(m.get("ci"), (list, tuple)) and len(m["ci"]) == 2:
            entry["confidence_interval"] = {"lower_bound": _s(m["ci"][0]), "upper_bound": _s(m["ci"][1])}
        metrics.append(entry)
    return metrics


def _close(fig: Any) -> None:
    if "matplotlib.pyplot" in sys.modules:
        try:
            sys.modules["matplotlib.pyplot"].close(fig)
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


def _graphics(sc: Any, record: dict) -> dict | None:
    try:
        from ..scorecard.render.plots import figure_png_base64, figures
    except ImportError as exc:
        log.debug("model card graphics left out: the plotting module is not available (%s)", exc)
        return None
    figs: dict = {}
    try:
        figs = figures(record, samples_of(sc) or None) or {}
        collection = []
        for name, fig in figs.items():
            image = figure_png_base64(fig)
            if image.startswith("data:"):  # a data URI: keep the base64 payload only
                image = image.split(",", 1)[1]
            collection.append({"name": str(name), "image": image})
    except ImportError as exc:  # matplotlib is imported when a figure is drawn (extra `notebooks`)
        log.info("model card graphics left out: %s", exc)
        return None
    except Exception as exc:  # noqa: BLE001 - a plot that cannot be drawn must not lose the card
        log.warning("model card graphics left out: drawing the plots failed (%s: %s)", type(exc).__name__, exc)
        return None
    finally:
        for fig in figs.values():
            _close(fig)
    if not collection:
        return None
    return {"description": "Robustness plots of the aisec-lab scorecard (PNG, base64).", "collection": collection}


def _limitations(record: dict) -> list[dict]:
    out: list[str] = []
    defense = defense_limitation(record)
    if defense:
        out.append(defense)
    for c in record["checks"]:
        if c.get("status") in ("fail", "warn"):
            text = f"Validity check {c['id']} {str(c['status']).upper()}: {c.get('summary', '')}".rstrip(": ")
            if c.get("doc"):
                text += f" (see {c['doc']})"
            out.append(text + ".")
    if not record.get("complete", True):
        eps = [eps_label(r) for r in record["results"] if not is_complete(record, r)]
        text = f"The evaluation is incomplete: {record.get('incomplete_reason') or 'reason not recorded'}."
        if eps:
            text += f" Robust accuracy at ε={', '.join(eps)} is an upper bound."
        out.append(text)
    for s in record.get("skipped_attacks") or []:
        if isinstance(s, dict):
            out.append(f"Skipped: {s.get('attack', 'an attack')} ({s.get('reason', 'no reason recorded')}).")
        else:
            out.append(f"Skipped: {s}.")
    tm = record["threat_model"]
    n = record["data"].get("n", record["clean_accuracy"].get("n"))
    out.append(
        f"Robust accuracy is measured with the attacks {', '.join(attack_labels(record))} under the "
        f"{norm_label(tm['norm'])} threat model at the ε listed; it is an upper bound on the true robust accuracy "
        f"(a stronger attack may lower it) and says nothing about other norms, larger ε or other threats. "
        f"Numbers are estimated on n={n} samples; the {_ci_note(record)} show the sampling uncertainty."
    )
    return [{"description": t} for t in out]


def _technique_text(technique: str) -> str:
    name = ATLAS_TECHNIQUES.get(technique)
    return f"{technique} {name}" if name else technique


def _documentation(record: dict) -> str:
    tm, data, prov = record["threat_model"], record["data"], record.get("provenance") or {}
    attacks = "; ".join(
        f"{a['label']} ({a.get('knowledge', 'unknown knowledge')}, MITRE ATLAS {a.get('atlas_technique') or 'AML.T0043'})"
        for a in tm["attacks"])
    statuses = [c.get("status") for c in record["checks"]]
    check_line = (f"{len(statuses)} validity checks: {statuses.count('pass')} pass, {statuses.count('warn')} warn, "
                  f"{statuses.count('fail')} fail." if statuses else "No validity checks ran.")
    versions = prov.get("versions") or {}
    tool = f"aisec-lab {versions['aisec-lab']}" if versions.get("aisec-lab") else "aisec-lab"
    when = f" started {prov['started_at']}" if prov.get("started_at") else ""
    commit = f", git commit {prov['git_commit']}" if prov.get("git_commit") else ""
    return (
        f"Adversarial robustness evaluation of {record['model'].get('name')} on {data.get('name')} "
        f"({data.get('split')}, n={data.get('n')}, seed {tm.get('seed', data.get('seed'))}). "
        f"Threat model: {norm_label(tm['norm'])}, ε in {{{', '.join(eps_label(r) for r in record['results'])}}}, "
        f"{'targeted' if tm.get('targeted') else 'untargeted'}; attacks: {attacks}. "
        f"Robust accuracy is the worst case per sample over all attacks. {check_line} "
        f"This evaluation is evidence for {NIST_AI_RMF_FUNCTION} ({NIST_AI_RMF_TEXT}); the attacks are instances "
        f"of MITRE ATLAS {', '.join(_technique_text(t) for t in atlas_techniques(record))}. "
        f"Produced by {tool}{when}{commit}; the per-sample table beside scorecard.json makes every number auditable."
    )


def _overview(record: dict) -> str:
    clean = record["clean_accuracy"]
    parts = [f"clean accuracy {float(clean['value']):.4f}"]
    for r in record["results"]:
        if r.get("robust_accuracy") is None:
            continue
        parts.append(f"ε={eps_label(r)}: {float(r['robust_accuracy']):.4f}"
                     + ("" if is_complete(record, r) else " (upper bound)"))
    return (f"Adversarial robustness scorecard ({norm_label(record['threat_model']['norm'])}): "
            f"{parts[0]}; worst-case robust accuracy {', '.join(parts[1:]) or 'not measured'}.")


def _references(record: dict) -> list[dict]:
    urls: list[str] = []
    for a in record["threat_model"]["attacks"]:
        for arxiv_id in _ARXIV.findall(str(a.get("reference") or "")):
            urls.append(f"https://arxiv.org/abs/{arxiv_id}")
    urls += [atlas_url(t) for t in atlas_techniques(record)]
    urls.append(NIST_AI_RMF_URL)
    return [{"reference": u} for u in dict.fromkeys(urls)]


def _version(record: dict) -> dict | None:
    version: dict[str, str] = {}
    sha = record["model"].get("weights_sha256")
    if sha:
        version["name"] = f"weights sha256:{sha}"
    started = str((record.get("provenance") or {}).get("started_at") or "")
    try:
        version["date"] = _dt.date.fromisoformat(started[:10]).isoformat()
    except ValueError:
        pass
    return version or None


def _model_parameters(record: dict) -> dict:
    model, data = record["model"], record["data"]
    params: dict[str, Any] = {}
    arch = [str(model["framework"])] if model.get("framework") else []
    if model.get("n_params") is not None:
        arch.append(f"{int(model['n_params'])} parameters")
    if arch:
        params["model_architecture"] = ", ".join(arch)
    desc = [f"evaluation data, {data['split']} split" if data.get("split") else "evaluation data"]
    if data.get("n") is not None:
        desc.append(f"n={data['n']}")
    if data.get("seed") is not None:
        desc.append(f"seed {data['seed']}")
    if data.get("sha256"):
        desc.append(f"sha256 {data['sha256']}")
    params["data"] = [{"name": str(data.get("name") or "unknown"), "description": ", ".join(desc)}]
    shape = model.get("input_shape", data.get("input_shape"))
    if shape is not None:
        text = f"array of shape {list(shape)}"
        if model.get("model_layout"):
            text += f" ({model['model_layout']})"
        if model.get("clip_values"):
            lo, hi = model["clip_values"]
            text += f", values in [{lo}, {hi}]"
        params["input_format"] = text
    nb = model.get("nb_classes", data.get("nb_classes"))
    if nb is not None:
        params["output_format"] = f"{model.get('output_type') or 'scores'} over {nb} classes"
    return params


def model_card_toolkit(sc: Any, *, graphics: bool = True) -> dict:
    """The scorecard as a Model Card Toolkit JSON document (schema v0.0.2).

    ``quantitative_analysis.performance_metrics`` holds clean accuracy and the worst-case robust
    accuracy at each ε (plus each attack's own when the evaluation was exhaustive), each with its
    ``confidence_interval`` and a ``slice`` naming the threat model; ``considerations.limitations``
    lists failed and warned checks, an incomplete run and skipped attacks; ``model_details`` names
    NIST AI RMF MEASURE 2.7 and the attacks' MITRE ATLAS techniques. Plots are embedded as base64
    PNG when ``graphics`` is true and the plotting module can be imported.
    """
    record = as_record(sc)
    details: dict[str, Any] = {"name": str(record["model"].get("name") or "model"),
                               "overview": _overview(record), "documentation": _documentation(record)}
    version = _version(record)
    if version:
        details["version"] = version
    details["references"] = _references(record)
    citations = [{"style": "text", "citation": f"{a['label']}: {a['reference']}"}
                 for a in record["threat_model"]["attacks"] if a.get("reference")]
    if citations:
        details["citations"] = citations

    quantitative: dict[str, Any] = {"performance_metrics": _performance_metrics(record)}
    if graphics:
        g = _graphics(sc, record)
        if g is not None:
            quantitative["graphics"] = g

    techniques = atlas_techniques(record)
    risk = {
        "name": "Adversarial examples: MITRE ATLAS " + ", ".join(_technique_text(t) for t in techniques),
        "mitigation_strategy": (
            f"Measured, not mitigated, by this evaluation ({NIST_AI_RMF_FUNCTION}: {NIST_AI_RMF_TEXT}). "
            "Re-run the same evaluation after any defense (e.g. adversarial training) and compare."),
    }
    return {
        "schema_version": MCT_SCHEMA_VERSION,
        "model_details": details,
        "model_parameters": _model_parameters(record),
        "quantitative_analysis": quantitative,
        "considerations": {"limitations": _limitations(record), "ethical_considerations": [risk]},
    }
