"""The native oracles agree with ART's gradients and with the NumPy loss definitions."""

from __future__ import annotations

import numpy as np
import pytest

from aisec_lab.attacks.oracle import loss_from_logits


@pytest.mark.parametrize("loss", ["ce", "margin", "dlr"])
@pytest.mark.parametrize("targeted", [False, True])
def test_oracle_losses_match_numpy(zoo_targets, digits_test, framework, loss, targeted):
    oracle = zoo_targets("digits_cnn", framework).oracle
    x, y = np.array(digits_test.x[:16]), digits_test.y[:16]
    t = (y + 3) % 10 if targeted else None
    values, grad, z = oracle.value_and_grad(x, y, loss=loss, y_target=t)
    np.testing.assert_allclose(z, oracle.logits(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values, loss_from_logits(z, y, loss=loss, y_target=t), rtol=1e-4, atol=1e-5)
    assert grad.shape == x.shape and np.all(np.isfinite(grad))
    # directional derivative check: the gradient predicts the loss change along a small step
    d = np.random.default_rng(0).normal(size=x.shape).astype(np.float32) * 1e-3
    v2, _, _ = oracle.value_and_grad(x + d, y, loss=loss, y_target=t)
    pred = (grad * d).reshape(16, -1).sum(1)
    assert np.corrcoef(v2 - values, pred)[0, 1] > 0.9


def test_oracle_ce_gradient_matches_art(zoo_targets, digits_test, framework):
    target = zoo_targets("digits_mlp", framework)
    x, y = np.array(digits_test.x[:8]), digits_test.y[:8]
    _, grad, _ = target.oracle.value_and_grad(x, y, loss="ce")
    np.testing.assert_allclose(grad, target.loss_gradient(x, y), rtol=1e-4, atol=1e-6)


def test_oracle_counts_queries_and_applies_preprocessing(zoo_models, digits_test, framework):
    import aisec_lab as al

    target = al.wrap_model(zoo_models("digits_mlp", framework), input_shape=(1, 8, 8), nb_classes=10,
                           clip_values=(0.0, 1.0), preprocessing=(0.1, 0.9))
    before = target.oracle.queries
    z = target.oracle.logits(np.array(digits_test.x[:5]))
    assert target.oracle.queries == before + 5
    np.testing.assert_allclose(z, target.predict(digits_test.x[:5]), rtol=1e-5, atol=1e-5)
