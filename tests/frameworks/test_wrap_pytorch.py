"""Torch-specific boundary behaviour: probabilities, binary logits, eval mode, layouts, per-channel clips."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import aisec_lab as al

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from ._models import torch_models  # noqa: E402


def test_probability_model_is_flagged_and_logits_false_handles_it(zoo_models, digits_test, caplog):
    SoftmaxNet, _, _ = torch_models()
    net = SoftmaxNet(zoo_models("digits_cnn", "pytorch"))
    with caplog.at_level(logging.WARNING):
        flagged = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0))
    assert flagged.output_type == "probabilities" and flagged.outputs_probabilities
    assert any("probabilities" in w for w in flagged.warnings)
    assert "probabilities" in caplog.text
    handled = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0), logits=False)
    assert handled.logits_from_probabilities
    x = digits_test.x[:20]
    logp = handled.predict(x)
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, atol=1e-4)  # log-probabilities
    assert (logp.argmax(1) == flagged.predict(x).argmax(1)).all()


def test_logits_false_on_a_logit_model_is_an_error(zoo_models):
    with pytest.raises(al.ConfigError, match="not probabilities"):
        al.wrap_model(zoo_models("digits_cnn", "pytorch"), input_shape=(1, 8, 8), nb_classes=10,
                      clip_values=(0.0, 1.0), logits=False)


def test_single_logit_binary_model(digits_test):
    _, BinaryNet, _ = torch_models()
    net = BinaryNet()
    target = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=2, clip_values=(0.0, 1.0))
    assert target.binary_single_logit
    x = digits_test.x[:10]
    logits = target.predict(x)
    assert logits.shape == (10, 2)
    with torch.no_grad():
        z = net(torch.from_numpy(np.array(x))).numpy()[:, 0]
    p1 = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    np.testing.assert_allclose(p1, 1 / (1 + np.exp(-z)), rtol=1e-5)
    grad = target.loss_gradient(x, (z > 0).astype(int))
    assert grad.shape == x.shape


def test_model_is_put_in_eval_mode(digits_test):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Dropout(0.5), nn.Linear(32, 10))
    net.train()
    target = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0))
    assert not net.training
    x = digits_test.x[:16]
    np.testing.assert_array_equal(target.predict(x), target.predict(x))


def test_channels_last_torch_model_and_per_channel_clips():
    _, _, ChannelsLastNet = torch_models()
    net = ChannelsLastNet()
    rng = np.random.default_rng(0)
    x = rng.random((6, 3, 4, 4)).astype(np.float32) * np.array([1, 2, 3], dtype=np.float32)[None, :, None, None]
    with pytest.raises(al.IncompatibleModelError, match="channels_first=False"):
        al.wrap_model(net, input_shape=(3, 4, 4), nb_classes=5, clip_values=(0.0, 1.0))
    target = al.wrap_model(net, input_shape=(3, 4, 4), nb_classes=5, clip_values=([0, 0, 0], [1, 2, 3]),
                           channels_first=False)
    assert target.model_layout == "channels_last"
    assert target.predict(x).shape == (6, 5) and net.seen_shape[1:] == (4, 4, 3)
    assert target.clip_values[1].shape == (3, 1, 1)
    bad = x.copy()
    bad[0, 0] = 1.5  # channel 0 only allows [0, 1]
    with pytest.raises(al.DataError, match="outside the target's clip_values"):
        target.predict(bad)


def test_preprocessing_is_applied_inside_the_target(zoo_models, digits_test):
    net = zoo_models("digits_mlp", "pytorch")
    plain = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0))
    shifted = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0),
                            preprocessing=(0.5, 2.0))
    x = digits_test.x[:5]
    with torch.no_grad():
        native = net(torch.from_numpy((np.array(x) - 0.5) / 2.0)).numpy()
    np.testing.assert_allclose(shifted.predict(x), native, atol=1e-5)
    assert not np.allclose(plain.predict(x), native, atol=1e-3)


def test_weights_hash_follows_the_weights(zoo_models):
    import copy

    net = copy.deepcopy(zoo_models("digits_mlp", "pytorch"))
    a = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1)).weights_sha256
    b = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1)).weights_sha256
    with torch.no_grad():
        net[1].weight[0, 0] += 1e-3
    c = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1)).weights_sha256
    assert a == b != c
