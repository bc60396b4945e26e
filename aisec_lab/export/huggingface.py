"""Hugging Face ``model-index`` export, built with ``huggingface_hub``'s :class:`EvalResult` / :class:`ModelCardData`.

Nothing here talks to the Hub: the fragment is plain YAML for the metadata header of a model card.
``huggingface_hub`` is an optional dependency (extra ``export``) imported only when called.
"""

from __future__ import annotations

from typing import Any

from .._optional import require
from ..errors import ConfigError
from ._common import as_record, attack_labels, eps_label, fnum, inum, is_complete, norm_label, section_metrics

__all__ = ["model_index", "eval_results"]

CLEAN_METRIC = "accuracy"
ROBUST_METRIC = "robust_accuracy"


def _hub(purpose: str):
    return require("huggingface_hub", purpose=purpose, extra="export")


def _check_str(name: str, value: Any, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must be a non-empty string", got=value,
                          fix=f"pass {name}='...'" + (" or leave it out" if optional else ""))


def _common_args(record: dict) -> dict:
    data, tm, clean = record["data"], record["threat_model"], record["clean_accuracy"]
    args: dict[str, Any] = {"n": inum(data.get("n", clean.get("n"))), "seed": inum(tm.get("seed", data.get("seed")))}
    return args


def _ci_args(ci: Any, clean: dict) -> dict:
    out: dict[str, Any] = {"ci": [fnum(ci[0]), fnum(ci[1])]}
    if "ci_method" in clean:
        out["ci_method"] = str(clean["ci_method"])
    if "ci_level" in clean:
        out["ci_level"] = fnum(clean["ci_level"])
    return out


def eval_results(sc: Any, *, task_type: str = "image-classification", dataset_type: str | None = None) -> list:
    """The scorecard as a list of ``huggingface_hub.EvalResult``: clean accuracy, then worst-case robust
    accuracy at each ε (ascending). ``verified`` is never set: these are self-reported numbers."""
    hub = _hub("export a Hugging Face model-index")
    record = as_record(sc)
    _check_str("task_type", task_type, optional=False)
    _check_str("dataset_type", dataset_type, optional=True)
    data, tm, clean = record["data"], record["threat_model"], record["clean_accuracy"]
    data_name = str(data.get("name") or "unknown")
    split = data.get("split")
    dataset = {
        "task_type": task_type,
        "dataset_type": dataset_type or data_name,
        "dataset_name": f"{data_name} ({split})" if split else data_name,
        "dataset_split": str(split) if split else None,
    }
    attacks = attack_labels(record)
    common = _common_args(record)
    provenance = record.get("provenance") or {}
    tool = (provenance.get("versions") or {}).get("aisec-lab")
    tool_arg = {"evaluated_with": f"aisec-lab {tool}" if tool else "aisec-lab"}

    results = [hub.EvalResult(
        **dataset, metric_type=CLEAN_METRIC, metric_value=fnum(clean["value"]), metric_name="Clean accuracy",
        metric_args={**common, **_ci_args(clean["ci"], clean), **tool_arg},
    )]
    for r in record["results"]:
        value = fnum(r.get("robust_accuracy"))
        if value is None:  # no number for this ε: report nothing rather than a made-up one
            continue
        complete = is_complete(record, r)
        name = f"Robust accuracy ({norm_label(tm['norm'])}, ε={eps_label(r)})"
        if not complete:
            name += " (upper bound: incomplete run)"
        args = {
            "norm": str(tm["norm"]),
            "eps": fnum(r["eps"]),
            "eps_display": eps_label(r),
            "attacks": attacks,
            "aggregation": "worst case per sample over the attacks",
            "targeted": bool(tm.get("targeted", False)),
            **common,
            **_ci_args(r["robust_accuracy_ci"], clean),
            "complete": complete,
            **tool_arg,
        }
        results.append(hub.EvalResult(**dataset, metric_type=ROBUST_METRIC, metric_value=value, metric_name=name,
                                      metric_args=args))
    for m in section_metrics(record):
        args = {"section": m["section"], **common, **tool_arg}
        if isinstance(m.get("ci"), (list, tuple)) and len(m["ci"]) == 2:
            args.update(_ci_args(m["ci"], clean))
        results.append(hub.EvalResult(**dataset, metric_type=str(m["type"]), metric_value=fnum(m["value"]),
                                      metric_name=str(m["name"]), metric_args=args))
    return results


def model_index(sc: Any, *, task_type: str = "image-classification", dataset_type: str | None = None,
                model_name: str | None = None) -> str:
    """A Hugging Face ``model-index`` YAML fragment for the metadata header of a model card.

    One metric for clean accuracy (type ``accuracy``) and one per ε for the worst-case robust
    accuracy over all attacks (type ``robust_accuracy``, named after the norm and ε), each with
    ``args`` describing the threat model (norm, ε, attacks, n, seed, confidence interval). Built
    with ``huggingface_hub`` (extra ``export``); never marked ``verified``; no network access.

    ``dataset_type`` defaults to the evaluated dataset's name (pass a Hub dataset id where one
    exists); ``model_name`` defaults to the model's name in the scorecard.
    """
    hub = _hub("export a Hugging Face model-index")
    record = as_record(sc)
    _check_str("model_name", model_name, optional=True)
    results = eval_results(record, task_type=task_type, dataset_type=dataset_type)
    name = model_name or str(record["model"].get("name") or "model")
    card_data = hub.ModelCardData(model_name=name, eval_results=results)
    return card_data.to_yaml() + "\n"
