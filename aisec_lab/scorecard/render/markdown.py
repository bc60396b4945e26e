"""Markdown rendering of a scorecard: a section to paste into (or insert in) a model card.

:func:`render_markdown` is a pure function of the record (``Scorecard.to_dict()``): the same record
gives the same bytes. Every string taken from the record is escaped, so a model name such as
``<script>`` or ``a|b`` shows as text and cannot break a table.
"""

from __future__ import annotations

import re
from typing import Any

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
    ci_level_text,
    ci_text,
    compact_value,
    eps_long,
    eps_text,
    key_params,
    norm_text,
    num,
    pct,
)

__all__ = ["render_markdown", "md_escape"]

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~$])")


def md_escape(value: Any) -> str:
    """Escape a record string for Markdown (CommonMark/GFM): one line, HTML-significant characters as
    entities, and Markdown punctuation (including the table pipe) backslash-escaped."""
    text = "" if value is None else str(value)
    text = re.sub(r"[\r\n\t\v\f]+", " ", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _shape(shape: Any) -> str:
    if isinstance(shape, (list, tuple)) and shape:
        return "×".join(md_escape(s) for s in shape)
    return md_escape(shape) if shape not in (None, "") else "n/a"


def _yes_no(v: Any) -> str:
    return "yes" if v is True else "no" if v is False else "n/a"


def _defense_section(defense: dict) -> list[str]:
    out = ["### Defense", ""]
    chain = [s for s in defense.get("chain") or [] if isinstance(s, dict)]
    out.append(f"- Chain ({len(chain)} step{'s' if len(chain) != 1 else ''}, in application order):")
    for step in chain:
        params = step.get("params") or {}
        ptext = (", ".join(f"{md_escape(k)}={md_escape(compact_value(v))}" for k, v in params.items())
                 if isinstance(params, dict) else md_escape(params)) or "defaults"
        out.append(f"  - {md_escape(step.get('name'))} ({md_escape(step.get('implementation') or 'n/a')}): {ptext}; "
                   f"differentiable {_yes_no(step.get('differentiable'))}, "
                   f"randomized {_yes_no(step.get('randomized'))}")
    if defense.get("adaptive"):
        out.append(f"- Attacks: {md_escape(adaptation_text(defense))}")
    else:
        out.append(f"- Attacks: **{md_escape(NOT_ADAPTIVE_WARNING)}**")
    out.append(f"- EOT samples per gradient: {md_escape(defense.get('eot_samples'))}; undefended model weights sha256 "
               f"{md_escape(defense.get('base_model_sha256') or 'n/a')}")
    if defense.get("note"):
        out.append(f"- Note: {md_escape(defense.get('note'))}")
    out.append("")
    return out


def _detection_section(detection: dict, level: str, norm_of) -> list[str]:
    out = [f"### Adversarial-input detection: {md_escape(detection.get('detector'))}", ""]
    if not detection.get("adaptive"):
        out += [f"> **Not adaptive:** {md_escape(DETECTOR_NOT_ADAPTIVE_NOTE)}.", ""]
    out.append(f"| measure | rate | {level} | samples |")
    out.append("|:---|---:|---:|---:|")
    out.append(f"| false positives (clean samples flagged) | {pct(detection.get('false_positive_rate'))} | "
               f"{ci_text(detection.get('false_positive_rate_ci'))} | "
               f"{md_escape(num(detection.get('n_clean')))} clean |")
    for r in detection.get("per_eps") or []:
        if not isinstance(r, dict):
            continue
        out.append(f"| detected at ε = {md_escape(eps_text(r))} | {pct(r.get('detection_rate'))} | "
                   f"{ci_text(r.get('detection_rate_ci'))} | {md_escape(num(r.get('n_adversarial')))} adversarial |")
    out.append("")
    trained = detection.get("trained_on") if isinstance(detection.get("trained_on"), dict) else {}
    params = detection.get("params") or {}
    ptext = (", ".join(f"{md_escape(k)}={md_escape(compact_value(v))}" for k, v in params.items())
             if isinstance(params, dict) else md_escape(params)) or "defaults"
    eps = trained.get("eps")
    eps_str = md_escape(num(eps)) if isinstance(eps, (int, float)) else md_escape(eps)
    out.append(f"- Detector {md_escape(detection.get('detector'))} ({ptext}); flags a sample when its score is at "
               f"least {md_escape(num(detection.get('threshold')))}")
    out.append(f"- Trained on {md_escape(trained.get('attack'))} ({md_escape(norm_of(trained.get('norm')))}, "
               f"ε = {eps_str}) examples against clean "
               f"samples, {md_escape(num(trained.get('n_train')))} training samples in all")
    out.append("- Detection rate: among the samples whose adversarial example broke the model at that ε; false "
               "positives: among every clean sample evaluated")
    if detection.get("note"):
        out.append(f"- Note: {md_escape(detection.get('note'))}")
    out.append("")
    return out


def render_markdown(record: dict) -> str:
    """Render a scorecard record as a Markdown model-card section (ends with a newline)."""
    parts = sections(record)
    model, data, tm, clean = parts["model"], parts["data"], parts["tm"], parts["clean"]
    results, checks, attacks, exhaustive = parts["results"], parts["checks"], parts["attacks"], parts["exhaustive"]
    complete = bool(record.get("complete", True))
    status, hi, head = parts["status"], parts["hi"], parts["head"]
    level = ci_level_text(record)
    norm = norm_text(tm.get("norm"))

    out: list[str] = []
    add = out.append

    add(f"## Adversarial robustness: {md_escape(model.get('name'))} on {md_escape(data.get('name'))} "
        f"({md_escape(data.get('split'))} split, n = {md_escape(data.get('n'))})")
    add("")
    if not complete:
        reason = md_escape(record.get("incomplete_reason") or "no reason recorded")
        add(f"> **INCOMPLETE EVALUATION: {reason}.** Robust accuracies are upper bounds; do not rely on them.")
        add("")

    defense, detection = parts["defense"], parts["detection"]
    oblivious = defense is not None and not defense.get("adaptive")
    if oblivious:
        add(f"> **{md_escape(NOT_ADAPTIVE_WARNING)}.** Defense: {md_escape(defense_chain_text(defense))}.")
        add("")

    verdict = f"**Verdict:** clean accuracy **{pct(clean.get('value'))}** ({level} {ci_text(clean.get('ci'))})"
    if head is not None:
        bound = "" if head.get("complete", True) else " (upper bound: incomplete)"
        if oblivious:
            bound += " (upper bound: **NOT ADAPTIVE**)"
        verdict += (f"; worst-case robust accuracy at {norm} ε = {md_escape(eps_text(head))} "
                    f"**{pct(head.get('robust_accuracy'))}** ({level} {ci_text(head.get('robust_accuracy_ci'))})"
                    f"{bound} over {len(attacks)} attack{'s' if len(attacks) != 1 else ''}")
    n_pass = sum(1 for c in checks if c.get("status") == "pass")
    verdict += f"; validity checks **{status.upper()}** ({n_pass} of {len(checks)} pass)"
    if not complete:
        verdict += "; **INCOMPLETE**"
    add(verdict + ".")
    add("")
    if defense is not None and not oblivious:
        add(f"**Defense:** {md_escape(defense_chain_text(defense))}; {md_escape(adaptation_text(defense))}.")
        add("")

    # -- ε × attack table --------------------------------------------------------------------------
    add(f"### Robust accuracy by ε ({norm})")
    add("")
    labels = [a.get("label", a.get("name")) for a in attacks]
    if exhaustive:
        cols = [md_escape(lab) for lab in labels]
    else:
        cols = [f"{md_escape(lab)} (broke first)" for lab in labels]
    add("| ε | worst case | " + level + " | " + " | ".join(cols) + " |" if cols else f"| ε | worst case | {level} |")
    add("|" + "---:|" * 2 + ":---|" + "---:|" * len(cols))
    for r in results:
        mark = "" if r.get("complete", True) else " (incomplete)"
        cells = [md_escape(eps_text(r)) + (" (headline)" if r is head else ""),
                 pct(r.get("robust_accuracy")) + mark, ci_text(r.get("robust_accuracy_ci"))]
        per = r.get("attacks", {}) or {}
        for lab in labels:
            a = per.get(lab)
            if a is None or not a.get("ran", True):
                cells.append("not run")
            elif exhaustive:
                cells.append(pct(a.get("robust_accuracy")))
            else:
                cells.append(f"broke {num(a.get('broken_first', 0))} first")
        add("| " + " | ".join(cells) + " |")
    add("")
    add(f"Clean accuracy (ε = 0): {pct(clean.get('value'))} ({md_escape(clean.get('n_correct'))} of "
        f"{md_escape(clean.get('n'))}). Worst case: a sample counts as robust only if no attack broke it. "
        + ("Per-attack columns: each attack's own robust accuracy (exhaustive evaluation)."
           if exhaustive else
           "Per-attack columns: samples each attack broke first, in cascade order (later attacks only see "
           "what earlier ones left standing)."))
    add("")

    if defense is not None:
        out.extend(_defense_section(defense))
    if detection is not None:
        out.extend(_detection_section(detection, level, norm_text))
    for view in parts["sections"]:
        add(f"### {md_escape(view['title'])}")
        add("")
        if view["caveat"]:
            add(f"_{md_escape(view['caveat'])}_")
            add("")
        add("| measure | value |")
        add("|---|---|")
        for label, value in view["rows"]:
            add(f"| {md_escape(label)} | {md_escape(value)} |")
        add("")

    # -- checks --------------------------------------------------------------------------------------
    add(f"### Validity checks: {status.upper()}")
    add("")
    bad = [c for c in checks if c.get("status") != "pass"]
    if not checks:
        add("No validity checks ran: the robustness numbers are unverified.")
    elif not bad:
        add(f"All {len(checks)} checks pass: " + ", ".join(md_escape(c.get("id")) for c in checks) + ".")
    else:
        order = {"fail": 0, "warn": 1}
        for c in sorted(bad, key=lambda c: order.get(c.get("status"), 2)):
            add(f"- **{md_escape(str(c.get('status', '')).upper())}** {md_escape(c.get('id'))}: "
                f"{md_escape(c.get('summary'))} (see {md_escape(c.get('doc') or 'checks.md')})")
        passed = [c for c in checks if c.get("status") == "pass"]
        if passed:
            add(f"- Passed ({len(passed)}): " + ", ".join(md_escape(c.get("id")) for c in passed))
    add("")

    # -- threat model --------------------------------------------------------------------------------
    add("### Threat model")
    add("")
    eps_list = tm.get("eps", []) or []
    disp = tm.get("eps_display", []) or []
    eps_forms = [md_escape(eps_long(e, disp[i] if i < len(disp) else None)) for i, e in enumerate(eps_list)]
    add(f"- Norm: {norm}; ε: {', '.join(eps_forms) or 'none'}"
        + (f" (headline ε = {md_escape(eps_text(head))})" if head is not None else ""))
    kind = "targeted" if tm.get("targeted") else "untargeted"
    knowledge = ", ".join(md_escape(k) for k in tm.get("knowledge", []) or []) or "n/a"
    mode = ("exhaustive (every attack on every sample)" if exhaustive
            else "cascade (each attack on the samples earlier attacks left standing)")
    preset = f"; preset {md_escape(tm.get('preset'))}" if tm.get("preset") else ""
    add(f"- {kind.capitalize()}; attacker knowledge: {knowledge}; evaluation: {mode}{preset}; "
        f"seed {md_escape(tm.get('seed'))}")
    add("- Attacks:")
    for a in attacks:
        params = ", ".join(f"{md_escape(k)}={md_escape(v)}" for k, v in key_params(a)) or "defaults"
        ref = f"; {md_escape(a.get('reference'))}" if a.get("reference") else ""
        add(f"  - {md_escape(a.get('label'))} ({md_escape(a.get('name'))}, {md_escape(a.get('knowledge'))}, "
            f"{md_escape(a.get('implementation'))}): {params}; MITRE ATLAS {md_escape(atlas_text(a.get('atlas_technique')))}"
            f"{ref}")
    for s in record.get("skipped_attacks", []) or []:
        if isinstance(s, dict):
            add(f"- Skipped: {md_escape(s.get('attack'))}: {md_escape(s.get('reason'))}")
        else:
            add(f"- Skipped: {md_escape(s)}")
    add(f"- {NIST_LINE}")
    add("")

    # -- provenance ------------------------------------------------------------------------------------
    prov = record.get("provenance", {}) or {}
    cost = record.get("cost", {}) or {}
    add("### Provenance")
    add("")
    clip = model.get("clip_values")
    clip_text = (f"[{md_escape(num(clip[0]))}, {md_escape(num(clip[1]))}]"
                 if isinstance(clip, (list, tuple)) and len(clip) == 2 else "n/a")
    add(f"- Model: {md_escape(model.get('name'))}, {md_escape(model.get('framework'))}, "
        f"{md_escape(num(model.get('n_params'))) if model.get('n_params') is not None else 'n/a'} parameters, "
        f"input {_shape(model.get('input_shape'))}, {md_escape(model.get('nb_classes'))} classes, "
        f"clip values {clip_text}; weights sha256 {md_escape(model.get('weights_sha256') or 'n/a')}")
    add(f"- Data: {md_escape(data.get('name'))} ({md_escape(data.get('split'))}), n = {md_escape(data.get('n'))}, "
        f"seed {md_escape(data.get('seed'))}; sha256 {md_escape(data.get('sha256') or 'n/a')}")
    versions = prov.get("versions", {}) or {}
    add("- Versions: " + (", ".join(f"{md_escape(k)} {md_escape(v)}" for k, v in versions.items()) or "n/a"))
    add(f"- Seed {md_escape(prov.get('seed'))}; git commit {md_escape(prov.get('git_commit') or 'none')}; "
        f"started {md_escape(prov.get('started_at') or 'n/a')}")
    if prov.get("notebook_parameters"):
        nb = prov["notebook_parameters"]
        items = nb.items() if isinstance(nb, dict) else [("parameters", nb)]
        add("- Notebook parameters: " + ", ".join(f"{md_escape(k)}={md_escape(v)}" for k, v in items))
    if cost:
        wall = cost.get("wall_time_s")
        add(f"- Cost: {md_escape(num(round(float(wall), 1))) if isinstance(wall, (int, float)) else 'n/a'} s wall time, "
            f"{md_escape(num(cost.get('queries_total', 0)))} model queries")
    add(f"- Scorecard schema {md_escape(record.get('schema_version'))}; generated by aisec-lab")
    return "\n".join(out) + "\n"
