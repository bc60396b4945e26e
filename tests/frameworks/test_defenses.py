"""Preprocessing defenses: al.defend, adaptive evaluation (BPDA / EOT), the scorecard's defense section."""

from __future__ import annotations

import numpy as np
import pytest

import aisec_lab as al
from aisec_lab.defenses.preprocessing import EOTOracle
from aisec_lab.evaluation.engine import attack_target


def _names(sc, status):
    return {c.id for c in sc.checks if c.status == status}


def test_registry_lists_defenses_and_describes_them():
    names = al.list_defenses()
    for name in ("feature_squeezing", "jpeg_compression", "spatial_smoothing", "gaussian_augmentation",
                 "total_variance_minimization"):
        assert name in names
    d = al.describe_defense("gaussian_augmentation")
    assert d["randomized"] is True and d["params"] == {"sigma": 0.1}
    assert al.describe_defense("feature_squeezing")["differentiable"] is False


def test_unknown_defense_name_suggests_the_closest():
    with pytest.raises(al.UnknownComponentError, match="feature_squeezing"):
        al.describe_defense("feature_squezing")


def test_defend_leaves_the_target_alone_and_applies_the_transform(zoo_targets, digits_test, framework):
    t = zoo_targets("digits_cnn", framework)
    d = al.defend(t, "feature_squeezing", bit_depth=1)
    assert t.defense is None and d.defense is not None and d.defense.base is t
    x = digits_test.x[:64]
    # bit_depth=1 rounds every feature to 0 or 1: the defended model sees exactly the squeezed input
    np.testing.assert_allclose(d.predict(x), t.predict(np.round(x)), rtol=1e-5, atol=1e-5)
    assert d.weights_sha256 == t.weights_sha256 and "feature_squeezing" in d.name


def test_bpda_gradients_pass_straight_through(zoo_targets, digits_test, framework):
    t = zoo_targets("digits_cnn", framework)
    d = al.defend(t, "feature_squeezing", bit_depth=2)
    x, y = digits_test.x[:16], digits_test.y[:16]
    squeezed = np.round(x * 3) / 3
    _, g_def, _ = d.oracle.value_and_grad(x, y)
    _, g_ref, _ = t.oracle.value_and_grad(squeezed, y)
    # the straight-through gradient is the model's gradient at the squeezed input, not zero
    np.testing.assert_allclose(g_def, g_ref, rtol=1e-4, atol=1e-6)
    assert np.abs(g_def).sum() > 0
    # ART's estimator (used by C&W, DeepFool, ...) sees the same BPDA gradient
    np.testing.assert_allclose(d.loss_gradient(x, y), g_ref, rtol=1e-4, atol=1e-6)


def test_eot_averages_random_draws_and_is_seeded(zoo_targets, digits_test):
    t = zoo_targets("digits_cnn", "pytorch")
    a = al.defend(t, "gaussian_augmentation", sigma=0.2, eot_samples=4, seed=3)
    b = al.defend(t, "gaussian_augmentation", sigma=0.2, eot_samples=4, seed=3)
    assert isinstance(a.oracle, EOTOracle) and a.oracle.eot_samples == 4
    x, y = digits_test.x[:8], digits_test.y[:8]
    q0 = a.oracle.queries
    _, ga, _ = a.oracle.value_and_grad(x, y)
    assert a.oracle.queries - q0 == 4 * len(x)  # every draw is a query
    _, gb, _ = b.oracle.value_and_grad(x, y)
    np.testing.assert_array_equal(ga, gb)  # same seed, same draws
    # two single draws differ: the defense really is random
    one = al.defend(t, "gaussian_augmentation", sigma=0.2, eot_samples=1, seed=3)
    assert not np.allclose(one.oracle.logits(x), one.oracle.logits(x))


def test_feature_squeezing_adaptive_is_no_better_and_nonadaptive_is_flagged(zoo_targets, digits_test):
    """Acceptance: adaptive FS <= undefended + 5 points; a non-adaptive evaluation is visibly flagged."""
    t = zoo_targets("digits_cnn", "pytorch")
    kw = dict(attacks="quick", eps=[0.1], n_samples=120, progress=False, seed=0)
    undefended = al.evaluate(t, digits_test, **kw)
    adaptive = al.evaluate(al.defend(t, "feature_squeezing", bit_depth=4), digits_test, **kw)
    oblivious = al.evaluate(al.defend(t, "feature_squeezing", bit_depth=4, adaptive=False), digits_test, **kw)
    assert adaptive.robust_accuracy(0.1) <= undefended.robust_accuracy(0.1) + 0.05
    assert adaptive.defense["adaptive"] is True and adaptive.defense["adaptation"] == ["BPDA"]
    assert adaptive.check("adaptive_defense").status == "pass"
    assert oblivious.defense["adaptive"] is False and oblivious.defense["adaptation"] == []
    assert oblivious.check("adaptive_defense").status == "fail"
    assert oblivious.status == "fail" and not oblivious.trustworthy
    assert "NOT ADAPTIVE" in oblivious.summary()
    assert undefended.check("adaptive_defense").evidence["applicable"] is False
    limits = [x["description"] for x in al.export.model_card_toolkit(oblivious, graphics=False)
              ["considerations"]["limitations"]]
    assert any(t.startswith("NOT ADAPTIVE") for t in limits)


def test_nonadaptive_attacks_are_crafted_on_the_undefended_model(zoo_targets):
    t = zoo_targets("digits_cnn", "pytorch")
    d = al.defend(t, "jpeg_compression", quality=30, adaptive=False)
    assert attack_target(d) is t
    assert attack_target(al.defend(t, "jpeg_compression", quality=30)) is not t


def test_randomized_defense_scorecard_records_eot_and_checks_accept_it(zoo_targets, digits_test, tmp_path):
    t = zoo_targets("digits_mlp", "tensorflow")
    d = al.defend(t, "gaussian_augmentation", sigma=0.05, eot_samples=2)
    sc = al.evaluate(d, digits_test, attacks=["fgsm", "pgd"], eps=[0.1], n_samples=40, progress=False)
    assert sc.defense["adaptation"] == ["EOT"] and sc.defense["eot_samples"] == 2
    assert sc.check("determinism").status == "pass"  # random by design, attacked with EOT
    loaded = al.Scorecard.load(sc.save(tmp_path / "sc"))
    assert loaded.defense == sc.defense
    md = (tmp_path / "sc" / "scorecard.md").read_text()
    assert "gaussian\\_augmentation" in md and "EOT" in md  # Markdown escapes underscores


def test_defending_twice_chains_and_applies_in_order(zoo_targets):
    t = zoo_targets("digits_cnn", "pytorch")
    d = al.defend(al.defend(t, "spatial_smoothing", window_size=2), "feature_squeezing", bit_depth=3)
    assert [c["name"] for c in d.defense.chain] == ["spatial_smoothing", "feature_squeezing"]
    assert d.defense.base is t and d.defense.record()["adaptation"] == ["BPDA"]


def test_defense_on_a_blackbox_target(digits_test, zoo_targets):
    t = zoo_targets("digits_mlp", "pytorch")
    bb = al.wrap_predict(lambda x: t.predict(x), input_shape=t.input_shape, nb_classes=10, clip_values=(0.0, 1.0))
    d = al.defend(bb, "feature_squeezing", bit_depth=1)
    np.testing.assert_allclose(d.predict(digits_test.x[:8]), t.predict(np.round(digits_test.x[:8])), atol=1e-5)


# -- bad input ---------------------------------------------------------------------------------------
def test_unknown_defense_in_defend(zoo_targets):
    with pytest.raises(al.UnknownComponentError, match="jpeg_compression"):
        al.defend(zoo_targets("digits_cnn", "pytorch"), "jpeg_compresion")


def test_unknown_defense_parameter_suggests(zoo_targets):
    with pytest.raises(al.ConfigError, match="bit_depth"):
        al.defend(zoo_targets("digits_cnn", "pytorch"), "feature_squeezing", bitdepth=4)


def test_randomized_defense_with_zero_eot_samples(zoo_targets):
    with pytest.raises(al.ConfigError, match="eot_samples") as err:
        al.defend(zoo_targets("digits_cnn", "pytorch"), "gaussian_augmentation", sigma=0.1, eot_samples=0)
    assert "eot_samples=8" in str(err.value)


@pytest.mark.parametrize("kw, match", [
    ({"sigma": 8}, "pixel units"),
    ({"sigma": 0}, "positive"),
])
def test_noise_scale_in_pixel_units_or_zero(zoo_targets, kw, match):
    with pytest.raises(al.ConfigError, match=match):
        al.defend(zoo_targets("digits_cnn", "pytorch"), "gaussian_augmentation", **kw)


def test_image_defense_on_flat_inputs_is_refused(digits_test):
    bb = al.wrap_predict(lambda x: np.zeros((len(x), 3), np.float32) + np.arange(3), input_shape=(5,), nb_classes=3,
                         clip_values=(0.0, 1.0))
    with pytest.raises(al.IncompatibleModelError, match="images"):
        al.defend(bb, "spatial_smoothing")


def test_defend_needs_a_target():
    with pytest.raises(al.ConfigError, match="Target"):
        al.defend(object(), "feature_squeezing")
