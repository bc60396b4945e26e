"""The ``privacy`` section: loss-threshold membership inference on members (training data) vs held-out samples.

Acceptance: the AUC of a deliberately overfitted model is above 0.5 with a CI excluding 0.5, and near 0.5
on a well-regularized one. Both canaries are torch MLPs (64 -> 256 -> 10) trained here, full batch, Adam:

* overfitted: 100 training samples (stratified from the digits train split), 300 epochs, no weight decay:
  100 % train accuracy, 0.898 on the 450 test digits. Measured (seed 0, loss score): AUC 0.680
  [0.643, 0.727] (no-leakage 95th percentile 0.549), advantage 0.442 [0.404, 0.491], but TPR at 1 % FPR
  only 0.01 [0, 0.04]: the loss threshold separates on average, not at low false-positive rates.
  Confidence score: AUC 0.668 [0.626, 0.716].
* well-regularized: the whole train split (1,347 samples), 200 epochs, AdamW weight decay 0.5; 450
  stratified members vs the 450 test digits. Measured: AUC 0.515 [0.479, 0.552], advantage 0.087
  (no-leakage 95th percentile 0.076), TPR at 1 % FPR 0.013. (The zoo models, for reference: digits_mlp
  AUC 0.509 [0.473, 0.550], advantage 0.047; digits_cnn AUC 0.520 [0.483, 0.554], advantage 0.051.)

Training both takes about 1.5 s once torch is imported; each section about 0.2 s (200 bootstrap
resamples and 200 permutations); the whole file about 12 s, most of it importing torch and ART.
"""

from __future__ import annotations

import numpy as np
import pytest

import aisec_lab as al
from aisec_lab.errors import ConfigError
from aisec_lab.sections import SectionContext, get_section, normalize_sections
from aisec_lab.sections import privacy as priv


def _mlp_target(train, *, epochs: int, weight_decay: float, seed: int = 0):
    import torch
    from torch import nn

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
        opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=weight_decay)
        x, y = torch.from_numpy(np.array(train.x)), torch.from_numpy(np.array(train.y))
        for _ in range(epochs):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    return al.wrap_model(net.eval(), input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0), name="mlp")


@pytest.fixture(scope="module")
def overfitted(digits_train):
    members = digits_train.stratified_sample(100, seed=0)
    return _mlp_target(members, epochs=300, weight_decay=0.0), members


@pytest.fixture(scope="module")
def regularized(digits_train):
    return _mlp_target(digits_train, epochs=200, weight_decay=0.5), digits_train


def _run(target, train, data, **params):
    spec = get_section("privacy")
    ctx = SectionContext(target=target, data=data, train_data=train, seed=0)
    return spec.compute(ctx, **{**spec.defaults, **params}), ctx


def test_overfitted_model_leaks_membership(overfitted, digits_test):
    target, members = overfitted
    s, ctx = _run(target, members, digits_test)
    assert s["member_accuracy"] == 1.0 and s["nonmember_accuracy"] < 0.95
    assert s["n_members"] == 100 and s["n_nonmembers"] == 450 and s["score"] == "loss"
    assert s["auc"] > 0.6 and s["auc_ci"][0] > 0.5, (s["auc"], s["auc_ci"])
    assert s["advantage"] > s["null_95"]["advantage"]
    for key in ("auc", "tpr_at_1pct_fpr", "advantage"):
        lo, hi = s[f"{key}_ci"]
        assert 0 <= lo <= hi <= 1
    assert s["n_nonmembers_at_1pct_fpr"] == 4  # floor(0.01 * 450)
    assert "4 most member-like of the 450" in s["n_nonmembers_at_1pct_fpr_note"]


def test_regularized_model_is_near_chance(regularized, digits_test):
    target, train = regularized
    s, _ = _run(target, train, digits_test)
    assert s["n_members"] == 450 and s["n_nonmembers"] == 450  # balanced by default
    assert s["members"]["n_available"] == train.n
    lo, hi = s["auc_ci"]
    assert lo <= 0.5 <= hi or abs(s["auc"] - 0.5) < 0.05, (s["auc"], s["auc_ci"])


def test_section_validates_renders_and_checks(overfitted, digits_test):
    from jsonschema import Draft202012Validator

    target, members = overfitted
    s, ctx = _run(target, members, digits_test, score="confidence", n_bootstrap=50)
    spec = get_section("privacy")
    Draft202012Validator.check_schema(spec.schema)
    Draft202012Validator(spec.schema).validate(s)
    assert s["score"] == "confidence" and s["auc_ci"][0] > 0.5 and s["n_bootstrap"] == 50
    rows = dict(spec.rows(s))
    assert rows["AUC"].startswith(f"{s['auc']:.3f} [") and "rests on 4 of 450 non-members" in rows["TPR @ 1% FPR"]
    assert rows["members / non-members"] == "100 / 450"
    assert [m["type"] for m in spec.model_card_metrics(s)] == [
        "membership_inference_auc", "membership_inference_tpr_at_1pct_fpr", "membership_advantage"]
    checks = {c.id: c for c in spec.checks(s, ctx)}
    assert checks["privacy_sample_size"].status == "warn"  # 4 false positives behind the 1 % threshold
    assert checks["privacy_disjoint_sets"].status == "pass"
    few, _ = _run(target, members, digits_test.subset(np.arange(60)), n_bootstrap=20)
    assert few["n_nonmembers_at_1pct_fpr"] == 0
    assert {c.id: c.status for c in spec.checks(few, ctx)}["privacy_sample_size"] == "fail"


def test_seeded(overfitted, digits_test):
    target, members = overfitted
    a, _ = _run(target, members, digits_test, n_bootstrap=30)
    b, _ = _run(target, members, digits_test, n_bootstrap=30)
    assert a == b


def test_overlapping_sets_refused(overfitted, digits_test):
    target, members = overfitted
    leaked = al.data.from_arrays(np.concatenate([members.x, digits_test.x[:3]]),
                                 np.concatenate([members.y, digits_test.y[:3]]), nb_classes=10)
    with pytest.raises(ConfigError, match="3 of the 450 evaluated"):
        _run(target, leaked, digits_test)


def test_missing_train_data_refused(overfitted, digits_test):
    target, _ = overfitted
    with pytest.raises(ConfigError, match="needs the model's training data"):
        normalize_sections(["privacy"], None, None)
    with pytest.raises(ConfigError, match="needs the model's training data"):
        priv.compute(SectionContext(target=target, data=digits_test))


@pytest.mark.parametrize("bad", [dict(score="entropy"), dict(n_members=0), dict(n_bootstrap=1.5),
                                 dict(n_nonmembers=True)])
def test_bad_parameters_refused(overfitted, digits_test, bad):
    target, members = overfitted
    with pytest.raises(ConfigError):
        _run(target, members, digits_test, **bad)


def test_statistics_match_sklearn():
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(1)
    s_in, s_out = rng.normal(0.4, 1, 300), rng.normal(0, 1, 700)
    stats = priv.attack_statistics(s_in, s_out)
    labels = np.r_[np.ones(300), np.zeros(700)]
    scores = np.r_[s_in, s_out]
    fpr, tpr, _ = roc_curve(labels, scores)
    assert stats["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert stats["advantage"] == pytest.approx(np.max(tpr - fpr), abs=1e-12)
    assert stats["tpr"] == pytest.approx(tpr[fpr <= 0.01].max(), abs=1e-12)
    assert stats["k"] == 7
    tied = priv.attack_statistics(np.zeros(10), np.zeros(10))
    assert tied["auc"] == 0.5 and tied["advantage"] == 0.0 and tied["tpr"] == 0.0


def test_confident_losses_stay_distinct():
    z = np.array([[40.0, 0.0, 0.0], [45.0, 0.0, 0.0], [60.0, 0.0, 0.0]])
    logp = priv._log_probabilities(z, probabilities=False)
    top = logp[:, 0]
    assert np.all(top < 0) and top[0] < top[1] < top[2]  # a naive log-softmax rounds all three to 0
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0)
