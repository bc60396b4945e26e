"""The cascade engine: pinned API, worst case, reproducibility, bad input, checks, resume and budgets."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

import aisec_lab as al

from ._models import torch_models, torch_quantized

QUICK = dict(progress=False, checks=False)


@pytest.fixture(scope="module")
def cnn(zoo_targets):
    return zoo_targets("digits_cnn", "pytorch")


@pytest.fixture(scope="module")
def quick_card(cnn, digits_test):
    return al.evaluate(cnn, digits_test, attacks=["fgsm", "pgd"], eps=[0.05, 0.1], n_samples=120, seed=0,
                       progress=False)


def test_pinned_api(quick_card):
    sc = quick_card
    assert isinstance(sc.clean_accuracy, float) and 0.9 <= sc.clean_accuracy <= 1.0
    lo, hi = sc.clean_accuracy_ci
    assert lo <= sc.clean_accuracy <= hi and 0 <= lo and hi <= 1
    assert isinstance(sc.robust_accuracy(eps=0.1), float)
    assert sc.robust_accuracy(eps=0.1 + 1e-12) == sc.robust_accuracy(eps=0.1)  # matched within 1e-9
    with pytest.raises(al.ConfigError, match="ε=0.3 was not evaluated"):
        sc.robust_accuracy(eps=0.3)
    with pytest.raises(al.ConfigError, match="exhaustive=True"):
        sc.robust_accuracy(eps=0.1, attack="pgd")
    counts = sc.broken_by(eps=0.1)
    assert set(counts) == {"fgsm", "pgd"}
    n_correct = sc.clean["n_correct"]
    assert sum(counts.values()) == n_correct - round(sc.robust_accuracy(eps=0.1) * sc.data["n"])
    assert {c.id for c in sc.checks} >= {"logits_output", "determinism", "gradient_health",
                                        "iterative_beats_single_step", "whitebox_beats_blackbox",
                                        "whitebox_beats_noise", "eps_monotonic", "large_eps", "convergence",
                                        "perturbation_bounds"}
    for c in sc.checks:
        assert c.status in ("pass", "warn", "fail") and c.evidence and c.doc.endswith(f"#{c.id}")
    tm = sc.threat_model
    assert tm["norm"] == "linf" and tm["eps"] == [0.05, 0.1] and tm["seed"] == 0
    assert tm["attacks"][1]["params"]["max_iter"] == 40
    assert all(a["atlas_technique"].startswith("AML.T0043") for a in tm["attacks"])
    json.dumps(sc.to_dict())  # plain JSON


def test_same_seed_same_numbers(cnn, digits_test, quick_card):
    again = al.evaluate(cnn, digits_test, attacks=["fgsm", "pgd"], eps=[0.05, 0.1], n_samples=120, seed=0, **QUICK)
    assert again.data["sha256"] == quick_card.data["sha256"]
    assert again.results[1]["robust_accuracy"] == quick_card.results[1]["robust_accuracy"]
    np.testing.assert_array_equal(again.samples["first_attack"], quick_card.samples["first_attack"])
    other = al.evaluate(cnn, digits_test, attacks=["fgsm"], eps=[0.1], n_samples=120, seed=1, **QUICK)
    assert other.data["sha256"] != quick_card.data["sha256"]


@pytest.mark.parametrize("name,n", [("pytorch", 100), ("tensorflow", 60)])
def test_worst_case_below_every_attack_and_monotone(zoo_targets, digits_test, name, n):
    target = zoo_targets("digits_cnn", name)
    eps = [0.05, 0.1, 0.15]
    sc = al.evaluate(target, digits_test, attacks=["fgsm", "pgd", al.attack("square", max_iter=200)], eps=eps,
                     n_samples=n, seed=0, exhaustive=True, **QUICK)
    worst = [sc.robust_accuracy(eps=e) for e in eps]
    assert worst == sorted(worst, reverse=True)
    for e in eps:
        for label in sc.attacks:
            assert sc.robust_accuracy(eps=e) <= sc.robust_accuracy(eps=e, attack=label)
    assert sc.robust_accuracy(eps=0.15) < sc.clean_accuracy


def test_norm_aliases_and_eps_zero(cnn, digits_test):
    a = al.evaluate(cnn, digits_test, attacks=["fgsm"], norm=np.inf, eps=[0.0, 0.1], n_samples=50, **QUICK)
    b = al.evaluate(cnn, digits_test, attacks=["fgsm"], norm=2, eps=[0.5], n_samples=50, **QUICK)
    assert a.threat_model["norm"] == "linf" and b.threat_model["norm"] == "l2"
    assert a.robust_accuracy(eps=0.0) == a.clean_accuracy


@pytest.mark.parametrize("eps,match", [
    ([-0.1], "finite and >= 0"), ([float("nan")], "finite and >= 0"), ([], "empty"),
    ([8], "pixel units"), ([1.0], "smaller than 1"), ([0.1, 0.1], "twice"), ("big", "number"),
])
def test_bad_eps(cnn, digits_test, eps, match):
    with pytest.raises(al.ConfigError, match=match):
        al.evaluate(cnn, digits_test, attacks=["fgsm"], eps=eps, **QUICK)


def test_l2_eps_limit_scales_with_dimension(cnn, digits_test):
    al.evaluate(cnn, digits_test, attacks=["fgsm"], norm="l2", eps=[2.0], n_samples=20, **QUICK)  # > 1 is fine in L2
    with pytest.raises(al.ConfigError, match="l2 ε must be smaller than 8"):
        al.evaluate(cnn, digits_test, attacks=["fgsm"], norm="l2", eps=[8.0], **QUICK)


def test_bad_configuration(cnn, digits_test):
    with pytest.raises(al.UnknownComponentError, match="did you mean 'standard'"):
        al.evaluate(cnn, digits_test, attacks="standrd", eps=[0.1], **QUICK)
    with pytest.raises(al.UnknownComponentError, match="did you mean 'pgd'"):
        al.evaluate(cnn, digits_test, attacks=["pdg"], eps=[0.1], **QUICK)
    with pytest.raises(al.ConfigError, match="needs a target spec"):
        al.attack("apgd_dlr", targeted=True)
    with pytest.raises(al.ConfigError, match="larger than the data"):
        al.evaluate(cnn, digits_test, attacks=["fgsm"], eps=[0.1], n_samples=10_000, **QUICK)
    with pytest.raises(al.ConfigError, match="does not support the linf norm"):
        al.evaluate(cnn, digits_test, attacks=["cw_l2"], norm="linf", eps=[0.1], **QUICK)
    with pytest.raises(al.ConfigError, match="unknown norm"):
        al.evaluate(cnn, digits_test, attacks=["fgsm"], norm="l3", eps=[0.1], **QUICK)
    wrong_shape = al.from_arrays(np.zeros((4, 1, 4, 4)), [0, 1, 2, 3], nb_classes=10)
    with pytest.raises(al.DataError, match="expected"):
        al.evaluate(cnn, wrong_shape, attacks=["fgsm"], eps=[0.1], **QUICK)
    with pytest.raises(al.ConfigError, match="listed twice"):
        al.evaluate(cnn, digits_test, attacks=["fgsm", "fgsm"], eps=[0.1], **QUICK)


def test_predictions_only_target(cnn, digits_test):
    bb = al.wrap_predict(cnn.oracle.logits, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1),
                         name="black box")
    with pytest.raises(al.IncompatibleModelError, match="needs gradients"):
        al.evaluate(bb, digits_test, attacks=["pgd"], eps=[0.1], **QUICK)
    sc = al.evaluate(bb, digits_test, attacks="standard", eps=[0.1], n_samples=20, **QUICK)
    assert sc.attacks == ["square"]
    assert {s["attack"] for s in sc.skipped_attacks} == {"apgd_ce", "apgd_dlr (targeted, top-9)", "validity checks"}
    assert sc.threat_model["query_budget"] == {"square": 5001}  # (max_iter + 1) queries per restart


def test_targeted_attacks(cnn, digits_test):
    sc = al.evaluate(cnn, digits_test, attacks=[al.attack("pgd", targeted=True, target="least_likely"),
                                                al.attack("apgd_dlr", targeted=True, target="top", n_target_classes=3)],
                     eps=[0.15], n_samples=40, **QUICK)
    assert sc.robust_accuracy(eps=0.15) < sc.clean_accuracy
    assert sc.threat_model["targeted"]
    with pytest.raises(al.ConfigError, match="one class per evaluated sample"):
        al.evaluate(cnn, digits_test, attacks=[al.attack("pgd", targeted=True, target=np.zeros(3, dtype=int))],
                    eps=[0.1], n_samples=40, **QUICK)


def test_minimum_norm_attack_is_projected(cnn, digits_test):
    sc = al.evaluate(cnn, digits_test, attacks=[al.attack("deepfool", max_iter=20)], norm="l2", eps=[0.5, 1.5],
                     n_samples=40, **QUICK)
    counted = sc.samples["first_attack"] >= 0
    for ei, e in enumerate(sc.eps):
        d = (sc.samples["x_adv"][ei] - sc.samples["x"]).reshape(40, -1)
        assert np.all(np.linalg.norm(d[counted[ei]], axis=1) <= e * (1 + 1e-6) + 1e-6)
    assert sc.robust_accuracy(eps=1.5) <= sc.robust_accuracy(eps=0.5) < sc.clean_accuracy


# -- the checks flag what they should --------------------------------------------------------------
def test_softmax_model_is_flagged(zoo_models, digits_test):
    Softmax, _, _ = torch_models()
    target = al.wrap_model(Softmax(zoo_models("digits_cnn", "pytorch")), input_shape=(1, 8, 8), nb_classes=10,
                           clip_values=(0, 1))
    sc = al.evaluate(target, digits_test, attacks=["fgsm"], eps=[0.1], n_samples=60, progress=False, probe_samples=40)
    assert sc.check("logits_output").status == "fail"
    assert sc.status == "fail" and not sc.trustworthy


def test_quantized_model_is_flagged(zoo_models, digits_test):
    target = al.wrap_model(torch_quantized(zoo_models("digits_cnn", "pytorch")), input_shape=(1, 8, 8), nb_classes=10,
                           clip_values=(0, 1))
    sc = al.evaluate(target, digits_test, attacks=["pgd"], eps=[0.1], n_samples=60, progress=False, probe_samples=40)
    assert sc.check("gradient_health").status == "fail"
    assert sc.check("gradient_health").evidence["zero_gradient_samples_ce"] > 30
    assert sc.check("large_eps").status != "pass" or sc.check("whitebox_beats_blackbox").status != "pass"
    assert sc.status == "fail"


def test_reference_model_checks_pass(quick_card):
    statuses = {c.id: c.status for c in quick_card.checks}
    assert statuses["gradient_health"] == statuses["logits_output"] == statuses["perturbation_bounds"] == "pass"
    assert statuses["determinism"] == statuses["large_eps"] == "pass"


@dataclass(frozen=True, kw_only=True)
class BuggyOvershoot(al.AttackSpec):
    """A deliberately broken attack: steps 3·ε (outside the threat model)."""

    norms = ("linf",)
    needs = "gradients"

    def run(self, target, x, y, *, norm, eps, y_target=None, seed=0):
        _, grad, _ = target.oracle.value_and_grad(x, y, loss="ce")
        return np.clip(x + 3 * eps * np.sign(grad), 0, 1).astype(np.float32)


def test_out_of_bounds_attack_output_is_discarded_and_fails_the_check(cnn, digits_test):
    al.register_attack("test_buggy_overshoot")(BuggyOvershoot)  # registered here only: the contract suite
    try:                                                      # must not collect a deliberately broken attack
        sc = al.evaluate(cnn, digits_test, attacks=["test_buggy_overshoot"], eps=[0.05], n_samples=60,
                         progress=False, probe_samples=20)
    finally:
        al.attacks.ATTACKS.unregister("test_buggy_overshoot")
    assert sc.robust_accuracy(eps=0.05) == sc.clean_accuracy  # nothing invalid was counted
    check = sc.check("perturbation_bounds")
    assert check.status == "fail" and check.evidence["out_of_bounds_outputs_discarded"] > 0
    assert sc.results[0]["attacks"]["test_buggy_overshoot"]["out_of_bounds_discarded"] > 0


# -- resume, budgets, interrupts ---------------------------------------------------------------------
def test_resume_from_state_dir(cnn, digits_test, tmp_path, monkeypatch):
    args = dict(attacks=["fgsm", "pgd"], eps=[0.05, 0.1], n_samples=80, seed=3, **QUICK)
    partial = al.evaluate(cnn, digits_test, state_dir=tmp_path, time_budget_s=1e-9, **args)
    assert not partial.complete and "time budget" in partial.incomplete_reason
    assert not partial.results[0]["complete"]
    full = al.evaluate(cnn, digits_test, state_dir=tmp_path, **args)
    assert full.complete and full.incomplete_reason is None
    fresh = al.evaluate(cnn, digits_test, **args)
    assert full.robust_accuracy(eps=0.1) == fresh.robust_accuracy(eps=0.1)
    # everything is done now: a re-run must not attack again
    from aisec_lab.attacks.catalog import FGSM, PGD

    def boom(*a, **k):
        raise AssertionError("a finished step was recomputed")

    monkeypatch.setattr(FGSM, "run", boom)
    monkeypatch.setattr(PGD, "run", boom)
    again = al.evaluate(cnn, digits_test, state_dir=tmp_path, **args)
    assert again.robust_accuracy(eps=0.1) == full.robust_accuracy(eps=0.1)
    monkeypatch.undo()
    with pytest.raises(al.ConfigError, match="different evaluation"):
        al.evaluate(cnn, digits_test, state_dir=tmp_path, **dict(args, seed=4))


def test_interrupt_yields_a_partial_scorecard(cnn, digits_test, monkeypatch, caplog):
    from aisec_lab.attacks.catalog import PGD

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(PGD, "run", interrupted)
    sc = al.evaluate(cnn, digits_test, attacks=["fgsm", "pgd"], eps=[0.1], n_samples=40, **QUICK)
    assert not sc.complete and "interrupted" in sc.incomplete_reason
    assert sc.results[0]["attacks"]["fgsm"]["ran"] and not sc.results[0]["attacks"]["pgd"]["ran"]
    assert sc.status == "warn" and "INCOMPLETE" in sc.summary()
    with caplog.at_level("WARNING"):
        sc.robust_accuracy(eps=0.1)
    assert "upper bound" in caplog.text


def test_attack_registry_cards():
    assert set(al.list_attacks()) >= {"fgsm", "pgd", "apgd_ce", "apgd_dlr", "cw_l2", "deepfool", "square",
                                      "hop_skip_jump", "boundary", "uniform_noise", "gaussian_noise"}
    assert "cw_l2" not in al.list_attacks(norm="linf")
    card = al.describe_attack("pgd")
    assert card["norms"] == ["linf", "l2", "l1"] and card["knowledge"] == "white-box"
    assert card["defaults"]["max_iter"] == 40 and "Madry" in card["reference"]
    assert al.describe_attack("square")["needs"] == "scores"
    assert set(al.list_presets()) == {"quick", "standard", "thorough"}
    with pytest.raises(al.ConfigError, match="did you mean 'max_iter'"):
        al.attack("pgd", max_iters=5)


# -- regressions from review -------------------------------------------------------------------------
def test_black_box_state_is_not_reused_for_another_model(zoo_targets, digits_test, tmp_path):
    args = dict(attacks=[al.attack("square", max_iter=50)], eps=[0.1], n_samples=30, **QUICK)
    one = al.wrap_predict(zoo_targets("digits_cnn", "pytorch").oracle.logits, input_shape=(1, 8, 8), nb_classes=10,
                          clip_values=(0, 1))
    two = al.wrap_predict(zoo_targets("digits_mlp", "pytorch").oracle.logits, input_shape=(1, 8, 8), nb_classes=10,
                          clip_values=(0, 1))
    al.evaluate(one, digits_test, state_dir=tmp_path, **args)
    with pytest.raises(al.ConfigError, match="different evaluation"):
        al.evaluate(two, digits_test, state_dir=tmp_path, **args)


def test_art_attacks_report_their_queries(cnn, digits_test):
    sc = al.evaluate(cnn, digits_test, attacks=[al.attack("deepfool", max_iter=10)], norm="l2", eps=[1.0],
                     n_samples=20, **QUICK)
    assert sc.cost["attacks"]["deepfool"]["queries"] > 0
    assert sc.results[0]["attacks"]["deepfool"]["queries"] > 0


def test_unreached_eps_inherit_broken_samples(cnn, digits_test, monkeypatch):
    from aisec_lab.attacks.catalog import PGD

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(PGD, "run", interrupted)
    sc = al.evaluate(cnn, digits_test, attacks=["fgsm", "pgd"], eps=[0.1, 0.2], n_samples=60, **QUICK)
    acc = [r["robust_accuracy"] for r in sc.results]
    assert not sc.complete and acc[1] <= acc[0] < sc.clean_accuracy


def test_a_crashing_check_does_not_discard_the_evaluation(cnn, digits_test):
    @al.register_check("test_crashing_check")
    def crashing(ctx):
        return {}["missing"]

    try:
        sc = al.evaluate(cnn, digits_test, attacks=["fgsm"], eps=[0.1], n_samples=30, progress=False,
                         probe_samples=10)
    finally:
        from aisec_lab.evaluation.checks import CHECKS

        CHECKS.unregister("test_crashing_check")
    check = sc.check("test_crashing_check")
    assert check.status == "warn" and "KeyError" in check.summary


def test_bad_target_array_is_refused_before_any_attack_runs(cnn, digits_test, monkeypatch):
    from aisec_lab.attacks.catalog import FGSM

    def boom(*a, **k):
        raise AssertionError("an attack ran before the configuration was checked")

    monkeypatch.setattr(FGSM, "run", boom)
    sub = digits_test.stratified_sample(30, seed=0)
    with pytest.raises(al.ConfigError, match="equal the true labels"):
        al.evaluate(cnn, sub, attacks=["fgsm", al.attack("pgd", targeted=True, target=np.array(sub.y))],
                    eps=[0.1], **QUICK)
