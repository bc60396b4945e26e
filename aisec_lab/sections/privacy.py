"""The ``privacy`` section: does the model leak which samples it was trained on? (membership inference)

A score-threshold membership inference attack in the style of Yeom et al. (2018), "Privacy risk in
machine learning": the attacker queries the model with a sample and its true label and calls it a
*member* (part of the training data) when the score is high:

* ``score="loss"`` (default): the negative cross-entropy of the true label (members tend to have a
  lower loss than samples the model never saw);
* ``score="confidence"``: the largest softmax probability (needs no label).

**Members** are a sample of ``train_data`` -- the data the model was trained on, which the caller
vouches for; **non-members** are the evaluated samples (``ctx.data``), which must be held out. Before
anything runs, every evaluated sample is compared with *all* of ``train_data`` by a hash of its bytes;
any sample found in both is a :class:`~aisec_lab.errors.ConfigError` naming the count (a "non-member"
the model trained on makes every number below meaningless).

**Reported** (rates in [0, 1]):

* ``auc``: area under the attack's ROC curve (0.5 = no leakage; ties count one half);
* ``tpr_at_1pct_fpr``: the share of members flagged at the strictest threshold that flags at most 1 %
  of the non-members. That threshold is set by the ``n_nonmembers_at_1pct_fpr = floor(0.01 *
  n_nonmembers)`` most member-like non-members (the false positives it allows): with 450 non-members
  it rests on 4 samples, with fewer than 100 on none (it is then a TPR at zero false positives);
* ``advantage``: membership advantage, the largest ``TPR - FPR`` over all thresholds (Yeom et al.'s
  measure; an attacker who also knows the best threshold -- an upper bound for a threshold attack);
* ``member_accuracy`` / ``nonmember_accuracy``: the generalization gap the attack exploits;
* ``null_95``: the 95th percentile of each statistic when members and non-members are relabelled at
  random (a permutation null): the level a model that leaks nothing reaches at these sample sizes. The
  advantage, a maximum over thresholds, is biased upward on finite samples (about 0.05-0.1 with 450
  samples a side and no leakage at all); compare it with this reference, not with 0.

**Confidence intervals** are percentile bootstrap intervals (95 %, ``n_bootstrap`` resamples, seeded):
members and non-members are resampled separately, with replacement, keeping their counts.

A low AUC says this *attack* fails; stronger attacks (shadow models, LiRA) may still succeed. A high
one is strong evidence of leakage.
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any

import numpy as np

from ..errors import ConfigError
from . import SectionContext, SectionSpec, register_section

__all__ = ["compute", "attack_statistics", "membership_scores", "SPEC", "DEFAULTS", "SCORES"]

log = logging.getLogger(__name__)

DOC = "aisec_lab/sections/privacy.py"
SCORES = {
    "loss": "loss-threshold membership inference (Yeom et al. 2018): score = -cross-entropy of the true label; "
            "the attacker knows the true labels",
    "confidence": "confidence-threshold membership inference: score = the largest softmax probability; "
                  "the attacker needs no labels",
}
DEFAULTS: dict[str, Any] = {
    "n_members": None,  # None: as many as non-members (capped at the training data)
    "n_nonmembers": None,  # None: every evaluated sample
    "score": "loss",
    "n_bootstrap": 200,
    "batch_size": 512,
}
FPR_TARGET = 0.01
CI_LEVEL = 0.95
#: the 1 % FPR threshold should rest on at least this many non-member false positives
MIN_FALSE_POSITIVES = 10
#: below this many members or non-members the AUC's interval is wide
MIN_SET_SIZE = 100


# -- helpers -------------------------------------------------------------------------------------
def _count(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"privacy: {name} must be a positive integer or None", got=value,
                          fix=f"e.g. {name}=400, or None for the default")
    return int(value)


def _row_hashes(x: np.ndarray) -> list[bytes]:
    rows = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(len(x), -1))
    return [hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in rows]


def overlap_count(train_x: np.ndarray, x: np.ndarray) -> int:
    """How many rows of ``x`` also occur (byte-identical as float32) in ``train_x``."""
    seen = set(_row_hashes(train_x))
    return int(sum(h in seen for h in _row_hashes(x)))


def _take(data, n: int | None, seed: int, what: str):
    if n is None or n >= data.n:
        if n is not None and n > data.n:
            log.info("privacy: %s=%d is more than the %d available samples; using all of them", what, n, data.n)
        return data
    return data.stratified_sample(n, seed=seed)


def _logits(target, x: np.ndarray, batch_size: int) -> np.ndarray:
    if len(x) == 0:
        return np.zeros((0, target.nb_classes), dtype=np.float64)
    out = [np.asarray(target.oracle.logits(np.asarray(x[i:i + batch_size], np.float32)), dtype=np.float64)
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out)


def _log_probabilities(z: np.ndarray, probabilities: bool) -> np.ndarray:
    """Log-softmax of logits (or logs of renormalized probabilities), precise near 0 for confident rows.

    The top class's log-probability is ``-log1p(sum of exp(z_c - z_max) over the other classes)``, which
    keeps losses far below float64's epsilon distinct (a naive ``log(sum(exp))`` rounds them all to 0,
    and ties between confidently classified members and non-members hide the members' smaller losses).
    """
    if probabilities:  # the target returns probabilities: renormalize, then take logs
        p = np.clip(z, 1e-300, None)
        z = np.log(p / p.sum(axis=1, keepdims=True))
    z = np.asarray(z, dtype=np.float64)
    top = z.argmax(axis=1)
    shifted = z - z[np.arange(len(z)), top][:, None]
    rest = np.exp(shifted)
    rest[np.arange(len(z)), top] = 0.0
    return shifted - np.log1p(rest.sum(axis=1))[:, None]


def membership_scores(target, x: np.ndarray, y: np.ndarray, *, score: str = "loss",
                      batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, predicted labels)``: higher scores mean "more likely a member".

    ``"loss"``: the true label's log-probability (minus the cross-entropy); ``"confidence"``: the top
    class's log-probability (a monotone form of the largest softmax probability, with the same ROC).
    """
    probabilities = getattr(target, "output_type", "logits") == "probabilities" and \
        not getattr(target, "logits_from_probabilities", False)
    logp = _log_probabilities(_logits(target, x, batch_size), probabilities)
    if score == "loss":
        s = logp[np.arange(len(y)), np.asarray(y, dtype=np.int64)]
    else:
        s = logp.max(axis=1)
    return s, logp.argmax(axis=1)


def attack_statistics(s_in: np.ndarray, s_out: np.ndarray, fpr: float = FPR_TARGET) -> dict[str, float]:
    """AUC, TPR at ``fpr`` and membership advantage of a threshold attack on member / non-member scores.

    * AUC by the Mann-Whitney statistic (ties count one half);
    * TPR at ``fpr``: members scoring strictly above the ``k+1``-th highest non-member score,
      ``k = floor(fpr * len(s_out))`` (so at most ``k`` non-members, a rate <= ``fpr``, are flagged);
    * advantage: ``max_t TPR(t) - FPR(t)`` for the rule "member if score >= t" (0 for t above all scores).
    """
    s_in = np.asarray(s_in, dtype=np.float64)
    s_out = np.asarray(s_out, dtype=np.float64)
    m, n = len(s_in), len(s_out)
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([s_in, s_out]))
    auc = (ranks[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    k = int(math.floor(fpr * n + 1e-9))
    out_desc = np.sort(s_out)[::-1]
    threshold = out_desc[k] if k < n else -np.inf
    tpr = float(np.mean(s_in > threshold))
    sorted_in, sorted_out = np.sort(s_in), np.sort(s_out)
    cuts = np.unique(np.concatenate([s_in, s_out]))
    tprs = (m - np.searchsorted(sorted_in, cuts, side="left")) / m
    fprs = (n - np.searchsorted(sorted_out, cuts, side="left")) / n
    advantage = max(0.0, float(np.max(tprs - fprs)))
    return {"auc": float(auc), "tpr": tpr, "advantage": advantage, "threshold": float(threshold), "k": k}


def _bootstrap(s_in: np.ndarray, s_out: np.ndarray, n_bootstrap: int, seed: int) -> tuple[dict, dict]:
    """Percentile bootstrap intervals, and the 95th percentiles of the same statistics under no leakage.

    The null reference relabels members and non-members at random (a permutation test, same counts):
    what an attack on a model that leaks nothing would score at these sample sizes. It matters for the
    advantage, a maximum over thresholds that is biased upward on finite samples (never 0 in practice).
    """
    rng = np.random.default_rng(seed)
    m, n = len(s_in), len(s_out)
    keys = ("auc", "tpr", "advantage")
    draws: dict[str, list[float]] = {k: [] for k in keys}
    null: dict[str, list[float]] = {k: [] for k in keys}
    pooled = np.concatenate([s_in, s_out])
    for _ in range(n_bootstrap):
        stats = attack_statistics(s_in[rng.integers(0, m, m)], s_out[rng.integers(0, n, n)])
        perm = rng.permutation(m + n)
        shuffled = attack_statistics(pooled[perm[:m]], pooled[perm[m:]])
        for key in keys:
            draws[key].append(stats[key])
            null[key].append(shuffled[key])
    lo, hi = 100 * (1 - CI_LEVEL) / 2, 100 * (1 + CI_LEVEL) / 2
    ci = {key: [_round(np.percentile(v, lo)), _round(np.percentile(v, hi))] for key, v in draws.items()}
    null95 = {key: _round(np.percentile(v, 95)) for key, v in null.items()}
    return ci, null95


def _round(v: float, digits: int = 6) -> float:
    return float(round(float(v), digits))


# -- compute -------------------------------------------------------------------------------------
def compute(ctx: SectionContext, *, n_members: int | None = DEFAULTS["n_members"],
            n_nonmembers: int | None = DEFAULTS["n_nonmembers"], score: str = DEFAULTS["score"],
            n_bootstrap: int = DEFAULTS["n_bootstrap"], batch_size: int = DEFAULTS["batch_size"]) -> dict:
    """Membership inference of the target on ``ctx.train_data`` (members) vs ``ctx.data`` (non-members)."""
    if ctx.train_data is None:
        raise ConfigError("the 'privacy' section needs the model's training data", got="train_data=None",
                          fix="pass train_data=al.load_dataset(..., split='train') (the samples the model was trained "
                              "on), or drop 'privacy' from sections")
    if score not in SCORES:
        raise ConfigError("privacy: unknown score", got=score, fix=f"use one of {', '.join(SCORES)}")
    n_members = _count(n_members, "n_members")
    n_nonmembers = _count(n_nonmembers, "n_nonmembers")
    n_bootstrap = _count(n_bootstrap, "n_bootstrap")
    batch_size = _count(batch_size, "batch_size")
    target, train, data = ctx.target, ctx.train_data, ctx.data
    if target.oracle is None:
        raise ConfigError("privacy: the target has no oracle (native forward pass)", got=repr(target),
                          fix="wrap the model with al.wrap_model or al.wrap_predict")
    train_x = target.check_data(train.x, train.y, what="train_data")
    target.check_data(data.x, data.y, what="the evaluated data")
    if train.n == 0 or data.n == 0:
        raise ConfigError("privacy: members and non-members must both be non-empty",
                          got=f"{train.n} training samples, {data.n} evaluated samples",
                          fix="pass non-empty train_data and evaluated data")

    n_overlap = overlap_count(train_x, data.x)
    if n_overlap:
        raise ConfigError(
            f"privacy: member and non-member sets overlap: {n_overlap} of the {data.n} evaluated (non-member) samples "
            f"also appear in train_data", got=f"{n_overlap} shared sample(s)",
            fix="evaluate on held-out samples the model never trained on (e.g. split='test') and pass the model's "
                "training samples as train_data; remove duplicates across the two")

    nonmembers = _take(data, n_nonmembers, ctx.seed, "n_nonmembers")
    members = _take(train, nonmembers.n if n_members is None else n_members, ctx.seed, "n_members")
    log.info("privacy: %s attack on %d members vs %d non-members", score, members.n, nonmembers.n)
    s_in, pred_in = membership_scores(target, members.x, members.y, score=score, batch_size=batch_size)
    s_out, pred_out = membership_scores(target, nonmembers.x, nonmembers.y, score=score, batch_size=batch_size)
    stats = attack_statistics(s_in, s_out)
    ci, null95 = _bootstrap(s_in, s_out, n_bootstrap, ctx.seed)
    member_acc = float(np.mean(pred_in == members.y))
    nonmember_acc = float(np.mean(pred_out == nonmembers.y))
    if score == "loss":
        loss_in, loss_out = -s_in, -s_out
    else:
        loss_in, loss_out = (-membership_scores(target, d.x, d.y, score="loss", batch_size=batch_size)[0]
                             for d in (members, nonmembers))
    return {
        "attack": SCORES[score],
        "score": score,
        "auc": _round(stats["auc"]),
        "auc_ci": ci["auc"],
        "tpr_at_1pct_fpr": _round(stats["tpr"]),
        "tpr_at_1pct_fpr_ci": ci["tpr"],
        "fpr_target": FPR_TARGET,
        "n_nonmembers_at_1pct_fpr": stats["k"],
        "n_nonmembers_at_1pct_fpr_note": (f"the 1 % FPR threshold rests on the {stats['k']} most member-like of the "
                                          f"{nonmembers.n} non-members (floor(0.01 * n_nonmembers) false positives "
                                          "allowed)"),
        "advantage": _round(stats["advantage"]),
        "advantage_ci": ci["advantage"],
        "null_95": {"auc": null95["auc"], "tpr_at_1pct_fpr": null95["tpr"], "advantage": null95["advantage"],
                    "method": f"95th percentile over {n_bootstrap} random relabellings of members and non-members "
                              "(what a model that leaks nothing scores at these sample sizes)"},
        "ci_method": f"percentile bootstrap, members and non-members resampled separately, {n_bootstrap} resamples",
        "ci_level": CI_LEVEL,
        "n_bootstrap": n_bootstrap,
        "seed": ctx.seed,
        "n_members": members.n,
        "n_nonmembers": nonmembers.n,
        "member_accuracy": _round(member_acc),
        "nonmember_accuracy": _round(nonmember_acc),
        "generalization_gap": _round(member_acc - nonmember_acc),
        "mean_member_loss": _round(float(np.mean(loss_in))),
        "mean_nonmember_loss": _round(float(np.mean(loss_out))),
        "members": {"source": "train_data", "n_available": train.n, "sha256": train.sha256,
                    "selection": "all" if members.n == train.n else f"stratified by class, seed {ctx.seed}"},
        "nonmembers": {"source": "evaluated data", "n_available": data.n, "sha256": data.sha256,
                       "selection": "all" if nonmembers.n == data.n else f"stratified by class, seed {ctx.seed}"},
        "overlap": {"n_shared": 0, "compared": f"all {train.n} training samples against the {data.n} evaluated "
                                               "samples by a hash of their float32 bytes"},
    }


# -- checks ----------------------------------------------------------------------------------------
def _result(check_id: str, status: str, summary: str, **evidence: Any):
    from ..scorecard.record import CheckResult

    return CheckResult(id=check_id, status=status, summary=summary, evidence=evidence, doc=f"{DOC}#{check_id}")


def checks(section: dict, ctx: SectionContext | None = None) -> list:
    """``privacy_sample_size`` and ``privacy_disjoint_sets``."""
    k, n_in, n_out = section["n_nonmembers_at_1pct_fpr"], section["n_members"], section["n_nonmembers"]
    evidence = {"n_members": n_in, "n_nonmembers": n_out, "n_nonmembers_at_1pct_fpr": k,
                "min_false_positives": MIN_FALSE_POSITIVES, "min_set_size": MIN_SET_SIZE,
                "auc_ci": section.get("auc_ci")}
    if k == 0:
        size = _result("privacy_sample_size", "fail",
                       f"with {n_out} non-members the 1 % FPR threshold allows no false positive at all: "
                       f"tpr_at_1pct_fpr is a TPR at zero false positives; use at least "
                       f"{int(100 * MIN_FALSE_POSITIVES)} non-members", **evidence)
    elif k < MIN_FALSE_POSITIVES:
        size = _result("privacy_sample_size", "warn",
                       f"the 1 % FPR threshold rests on only {k} non-member false positive(s) of {n_out}: "
                       f"tpr_at_1pct_fpr is noisy; {int(100 * MIN_FALSE_POSITIVES)} non-members give "
                       f"{MIN_FALSE_POSITIVES}", **evidence)
    elif min(n_in, n_out) < MIN_SET_SIZE:
        size = _result("privacy_sample_size", "warn",
                       f"only {n_in} members / {n_out} non-members: the AUC's interval is wide", **evidence)
    else:
        size = _result("privacy_sample_size", "pass",
                       f"{n_in} members / {n_out} non-members; the 1 % FPR threshold rests on {k} non-members",
                       **evidence)
    overlap = section.get("overlap") or {}
    shared = overlap.get("n_shared")
    evidence = {"n_shared": shared, "compared": overlap.get("compared")}
    if shared is None:
        disjoint = _result("privacy_disjoint_sets", "warn", "the section does not record an overlap test", **evidence)
    elif shared:
        disjoint = _result("privacy_disjoint_sets", "fail",
                           f"{shared} non-member sample(s) also appear in the training data", **evidence)
    else:
        disjoint = _result("privacy_disjoint_sets", "pass",
                           "no evaluated (non-member) sample appears in the training data", **evidence)
    return [size, disjoint]


# -- display -----------------------------------------------------------------------------------------
def _ci(ci: Any) -> str:
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def rows(section: dict) -> list[tuple[str, str]]:
    k = section["n_nonmembers_at_1pct_fpr"]
    return [
        ("attack", section["attack"]),
        ("AUC", f"{section['auc']:.3f}{_ci(section.get('auc_ci'))}"),
        ("TPR @ 1% FPR", f"{section['tpr_at_1pct_fpr']:.3f}{_ci(section.get('tpr_at_1pct_fpr_ci'))} "
                         f"(threshold rests on {k} of {section['n_nonmembers']} non-members)"),
        ("membership advantage", f"{section['advantage']:.3f}{_ci(section.get('advantage_ci'))}"
                                 + (f" (no-leakage 95th percentile {section['null_95']['advantage']:.3f})"
                                    if section.get("null_95") else "")),
        ("members / non-members", f"{section['n_members']} / {section['n_nonmembers']}"),
        ("accuracy: members / non-members",
         f"{section['member_accuracy']:.3f} / {section['nonmember_accuracy']:.3f}"),
    ]


def model_card_metrics(section: dict) -> list[dict]:
    score = section["score"]
    return [
        {"type": "membership_inference_auc", "name": f"membership inference AUC ({score} threshold)",
         "value": section["auc"]},
        {"type": "membership_inference_tpr_at_1pct_fpr", "name": f"membership inference TPR at 1% FPR ({score} threshold)",
         "value": section["tpr_at_1pct_fpr"]},
        {"type": "membership_advantage", "name": f"membership advantage ({score} threshold)",
         "value": section["advantage"]},
    ]


_RATE = {"type": "number", "minimum": 0, "maximum": 1}
_CI = {"type": "array", "items": _RATE, "minItems": 2, "maxItems": 2}

SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "privacy section (membership inference)",
    "type": "object",
    "required": ["attack", "score", "auc", "auc_ci", "tpr_at_1pct_fpr", "tpr_at_1pct_fpr_ci",
                 "n_nonmembers_at_1pct_fpr", "advantage", "advantage_ci", "n_members", "n_nonmembers"],
    "properties": {
        "attack": {"type": "string", "minLength": 1},
        "score": {"enum": list(SCORES)},
        "auc": _RATE,
        "auc_ci": _CI,
        "tpr_at_1pct_fpr": _RATE,
        "tpr_at_1pct_fpr_ci": _CI,
        "fpr_target": _RATE,
        "n_nonmembers_at_1pct_fpr": {"type": "integer", "minimum": 0},
        "n_nonmembers_at_1pct_fpr_note": {"type": "string"},
        "advantage": _RATE,
        "advantage_ci": _CI,
        "ci_level": _RATE,
        "n_bootstrap": {"type": "integer", "minimum": 1},
        "seed": {"type": "integer"},
        "n_members": {"type": "integer", "minimum": 1},
        "n_nonmembers": {"type": "integer", "minimum": 1},
        "member_accuracy": _RATE,
        "nonmember_accuracy": _RATE,
        "generalization_gap": {"type": "number", "minimum": -1, "maximum": 1},
        "mean_member_loss": {"type": "number", "minimum": 0},
        "mean_nonmember_loss": {"type": "number", "minimum": 0},
        "members": {"type": "object"},
        "nonmembers": {"type": "object"},
        "overlap": {"type": "object", "properties": {"n_shared": {"type": "integer", "minimum": 0}}},
        "null_95": {"type": "object", "properties": {"auc": _RATE, "tpr_at_1pct_fpr": _RATE, "advantage": _RATE}},
    },
}

SPEC = register_section(SectionSpec(
    name="privacy",
    title="Privacy: membership inference",
    compute=compute,
    schema=SCHEMA,
    rows=rows,
    caveat="Measures one threshold attack (a lower bound on leakage: stronger attacks may do better); members are "
           "the training data you passed, non-members the evaluated held-out samples.",
    checks=checks,
    needs_train_data=True,
    model_card_metrics=model_card_metrics,
    defaults=dict(DEFAULTS),
))
