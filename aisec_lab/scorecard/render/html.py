"""Self-contained HTML rendering of a scorecard (one page, inline CSS, images as data URIs).

The page comes from ``scorecard/templates/scorecard.html.j2`` rendered by jinja2 with autoescaping on:
every string from the record (model name, attack labels, check summaries, evidence, provenance) is
escaped. The view model built here holds text only; the template adds all markup. No JavaScript, no
external URL.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from ..._optional import require
from ..defense_text import (
    DETECTOR_NOT_ADAPTIVE_NOTE,
    NOT_ADAPTIVE_WARNING,
    adaptation_text,
    defense_chain_text,
)
from ._common import (
    sections,
    NIST_LINE,
    atlas_text,
    check_explanation,
    ci_level_text,
    ci_text,
    compact_evidence,
    compact_value,
    eps_long,
    eps_text,
    key_params,
    norm_text,
    num,
    pct,
)

__all__ = ["render_html", "TEMPLATE_NAME"]

TEMPLATE_NAME = "scorecard.html.j2"
_TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

_PLOT_TITLES = {
    "robustness_curve": "Robust accuracy vs ε",
    "perturbation_norms": "Perturbation norms",
    "per_class": "Per-class accuracy at the headline ε",
    "gallery": "Adversarial examples",
}


@lru_cache(maxsize=1)
def _environment():
    jinja2 = require("jinja2", purpose="render a scorecard as HTML", extra="notebooks")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATE_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _text(v: Any, default: str = "n/a") -> str:
    if v is None or v == "":
        return default
    return compact_value(v) if not isinstance(v, str) else v


def _params(params: Any) -> list[tuple[str, str]]:
    if isinstance(params, dict):
        return [(str(k), compact_value(v)) for k, v in params.items()]
    return [] if params in (None, "") else [("value", compact_value(params))]


def _yes_no(v: Any) -> str:
    return "yes" if v is True else "no" if v is False else "n/a"


def _defense_view(defense: dict | None) -> dict | None:
    if defense is None:
        return None
    return {
        "oblivious": not defense.get("adaptive"), "warning": NOT_ADAPTIVE_WARNING,
        "chain": defense_chain_text(defense), "adaptation": adaptation_text(defense),
        "steps": [{"name": _text(st.get("name")), "implementation": _text(st.get("implementation")),
                   "params": _params(st.get("params")), "differentiable": _yes_no(st.get("differentiable")),
                   "randomized": _yes_no(st.get("randomized"))}
                  for st in defense.get("chain") or [] if isinstance(st, dict)],
        "eot_samples": _text(defense.get("eot_samples")),
        "base_model_sha256": _text(defense.get("base_model_sha256"), "none"),
        "note": _text(defense.get("note"), ""),
    }


def _detection_view(detection: dict | None) -> dict | None:
    if detection is None:
        return None
    trained = detection.get("trained_on") if isinstance(detection.get("trained_on"), dict) else {}
    return {
        "detector": _text(detection.get("detector")), "params": _params(detection.get("params")),
        "threshold": _text(detection.get("threshold")),
        "trained_on": (f"{_text(trained.get('attack'))} ({norm_text(trained.get('norm'))}, "
                       f"ε = {_text(trained.get('eps'))}) "
                       f"examples against clean samples, {_text(trained.get('n_train'))} training samples in all"),
        "fpr": pct(detection.get("false_positive_rate")), "fpr_ci": ci_text(detection.get("false_positive_rate_ci")),
        "n_clean": _text(detection.get("n_clean")),
        "rows": [{"eps": eps_text(r), "rate": pct(r.get("detection_rate")), "ci": ci_text(r.get("detection_rate_ci")),
                  "n": _text(r.get("n_adversarial"))}
                 for r in detection.get("per_eps") or [] if isinstance(r, dict)],
        "adaptive": bool(detection.get("adaptive")), "not_adaptive_note": DETECTOR_NOT_ADAPTIVE_NOTE,
        "note": _text(detection.get("note"), ""),
    }


def _view(record: dict) -> dict:
    """Everything the template shows, as plain strings and lists (no markup)."""
    parts = sections(record)
    model, data, tm, clean = parts["model"], parts["data"], parts["tm"], parts["clean"]
    results, checks, attacks, exhaustive = parts["results"], parts["checks"], parts["attacks"], parts["exhaustive"]
    status, hi, head = parts["status"], parts["hi"], parts["head"]
    labels = [str(a.get("label", a.get("name"))) for a in attacks]

    rows = []
    for i, r in enumerate(results):
        per = r.get("attacks", {}) or {}
        cells = []
        for lab in labels:
            a = per.get(lab)
            if a is None or not a.get("ran", True):
                cells.append({"main": "not run", "sub": ""})
            elif exhaustive:
                cells.append({"main": pct(a.get("robust_accuracy")), "sub": ci_text(a.get("robust_accuracy_ci")),
                              "note": f"broke {num(a.get('broken_first', 0))} first"})
            else:
                cells.append({"main": f"broke {num(a.get('broken_first', 0))} first",
                              "sub": f"success {pct(a.get('success_rate'))}"})
        rows.append({
            "eps": eps_text(r), "headline": i == hi, "complete": bool(r.get("complete", True)),
            "robust": pct(r.get("robust_accuracy")), "ci": ci_text(r.get("robust_accuracy_ci")),
            "n_robust": _text(r.get("n_robust")), "success": pct(r.get("attack_success_rate")),
            "linf_median": _text(r.get("linf_median"), "–"), "l2_median": _text(r.get("l2_median"), "–"),
            "cells": cells,
        })

    order = {"fail": 0, "warn": 1, "pass": 2}
    check_rows = [{
        "id": str(c.get("id")), "status": str(c.get("status")), "summary": _text(c.get("summary"), ""),
        "evidence": compact_evidence(c.get("evidence", {})), "doc": _text(c.get("doc"), ""),
        "explanation": check_explanation(str(c.get("id"))),
    } for c in sorted(checks, key=lambda c: (order.get(c.get("status"), 3), str(c.get("id"))))]
    counts = {s: sum(1 for c in checks if c.get("status") == s) for s in ("pass", "warn", "fail")}

    eps_list = tm.get("eps", []) or []
    disp = tm.get("eps_display", []) or []
    attack_rows = [{
        "label": str(a.get("label")), "name": _text(a.get("name")), "knowledge": _text(a.get("knowledge")),
        "needs": _text(a.get("needs")), "implementation": _text(a.get("implementation")),
        "params": key_params(a), "atlas": atlas_text(a.get("atlas_technique")),
        "reference": _text(a.get("reference"), ""),
    } for a in attacks]

    cost = record.get("cost", {}) or {}
    cost_rows = [{"attack": str(k), "time": _text(v.get("time_s")), "queries": _text(v.get("queries")),
                  "gradient_queries": _text(v.get("gradient_queries")),
                  "samples": _text(v.get("samples_attacked"))}
                 for k, v in (cost.get("attacks", {}) or {}).items() if isinstance(v, dict)]
    prov = record.get("provenance", {}) or {}
    nb = prov.get("notebook_parameters")
    clip = model.get("clip_values")
    shape = model.get("input_shape")

    return {
        "title": f"Robustness scorecard: {_text(model.get('name'))} on {_text(data.get('name'))}",
        "model_name": _text(model.get("name")),
        "data_name": _text(data.get("name")), "data_split": _text(data.get("split")), "data_n": _text(data.get("n")),
        "status": status,
        "complete": bool(record.get("complete", True)),
        "incomplete_reason": _text(record.get("incomplete_reason"), "no reason recorded"),
        "level": ci_level_text(record),
        "norm": norm_text(tm.get("norm")),
        "clean": pct(clean.get("value")), "clean_ci": ci_text(clean.get("ci")),
        "clean_counts": f"{_text(clean.get('n_correct'))} of {_text(clean.get('n'))}",
        "ci_method": _text(clean.get("ci_method"), "exact"),
        "head": None if head is None else {
            "eps": eps_text(head), "robust": pct(head.get("robust_accuracy")),
            "ci": ci_text(head.get("robust_accuracy_ci")), "complete": bool(head.get("complete", True)),
            "n_robust": _text(head.get("n_robust")),
        },
        "n_attacks": len(attacks),
        "counts": counts, "n_checks": len(checks),
        "exhaustive": exhaustive,
        "labels": labels, "rows": rows,
        "checks": check_rows,
        "tm": {
            "eps": [eps_long(e, disp[i] if i < len(disp) else None) for i, e in enumerate(eps_list)],
            "targeted": bool(tm.get("targeted")), "knowledge": [str(k) for k in tm.get("knowledge", []) or []],
            "preset": _text(tm.get("preset"), ""), "seed": _text(tm.get("seed")),
            "batch_size": _text(tm.get("batch_size")),
            "query_budget": [(str(k), _text(v)) for k, v in (tm.get("query_budget") or {}).items()],
        },
        "attacks": attack_rows,
        "skipped": [(_text(s.get("attack")), _text(s.get("reason"), "")) if isinstance(s, dict) else (_text(s), "")
                    for s in record.get("skipped_attacks", []) or []],
        "nist": NIST_LINE,
        "cost": {
            "wall": _text(cost.get("wall_time_s")), "queries": _text(cost.get("queries_total")),
            "rss": _text(cost.get("peak_rss_mb")), "batch_size": _text(cost.get("batch_size")),
            "threads": _text(cost.get("cpu_threads")), "rows": cost_rows,
        },
        "model": [
            ("name", _text(model.get("name"))), ("framework", _text(model.get("framework"))),
            ("parameters", _text(model.get("n_params"))),
            ("input shape", "×".join(str(s) for s in shape) if isinstance(shape, (list, tuple)) else _text(shape)),
            ("classes", _text(model.get("nb_classes"))),
            ("clip values", _text(clip)), ("output", _text(model.get("output_type"))),
            ("weights sha256", _text(model.get("weights_sha256"), "none")),
        ],
        "data": [
            ("name", _text(data.get("name"))), ("split", _text(data.get("split"))), ("n", _text(data.get("n"))),
            ("seed", _text(data.get("seed"))), ("sha256", _text(data.get("sha256"), "none")),
        ],
        "provenance": [
            ("started at", _text(prov.get("started_at"))), ("seed", _text(prov.get("seed"))),
            ("git commit", _text(prov.get("git_commit"), "none")), ("platform", _text(prov.get("platform"))),
            ("framework", _text(prov.get("framework"))),
        ] + ([("notebook parameters", _text(nb))] if nb else []),
        "versions": [(str(k), _text(v)) for k, v in (prov.get("versions", {}) or {}).items()],
        "schema_version": _text(record.get("schema_version")),
        "defense": _defense_view(parts["defense"]),
        "detection": _detection_view(parts["detection"]),
        "sections": parts["sections"],
    }


def render_html(record: dict, samples: dict | None = None, *, embed_plots: bool = True) -> str:
    """Render a scorecard record as one self-contained HTML page.

    With ``embed_plots`` (the default) the plots are embedded as base64 PNG data URIs: the
    record-based ones always, the sample-based ones (norm histograms, example gallery) when ``samples``
    is given. Needs jinja2 (and matplotlib for the plots): ``pip install 'aisec-lab[notebooks]'``.
    """
    view = _view(record)
    plots = []
    if embed_plots:
        from .plots import figure_png_base64, figures

        for key, fig in figures(record, samples).items():
            plots.append({"key": key, "title": _PLOT_TITLES.get(key, key),
                          "src": "data:image/png;base64," + figure_png_base64(fig)})
    view["plots"] = plots
    return _environment().get_template(TEMPLATE_NAME).render(**view)
