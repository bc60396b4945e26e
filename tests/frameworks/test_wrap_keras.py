"""Keras-specific boundary behaviour: softmax models, single-logit binary models, layout inference."""

from __future__ import annotations

import numpy as np
import pytest

import aisec_lab as al

keras = pytest.importorskip("keras")


def _softmax_cnn(base):
    inputs = keras.Input((8, 8, 1))
    return keras.Model(inputs, keras.layers.Softmax()(base(inputs)))


def test_probability_model_flagged_and_handled(zoo_models, digits_test):
    net = _softmax_cnn(zoo_models("digits_cnn", "tensorflow"))
    flagged = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0))
    assert flagged.output_type == "probabilities" and flagged.warnings
    handled = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0), logits=False)
    logp = handled.predict(digits_test.x[:20])
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, atol=1e-4)
    assert (logp.argmax(1) == flagged.predict(digits_test.x[:20]).argmax(1)).all()
    grad = handled.loss_gradient(digits_test.x[:4], digits_test.y[:4])
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_single_logit_binary_model(digits_test):
    inputs = keras.Input((64,))
    net = keras.Model(inputs, keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed=1))(inputs))
    target = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=2, clip_values=(0.0, 1.0))
    assert target.binary_single_logit and target.model_layout == "flat"
    x = digits_test.x[:10]
    z = np.asarray(net(x.reshape(10, -1)))[:, 0]
    logits = target.predict(x)
    p1 = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    np.testing.assert_allclose(p1, 1 / (1 + np.exp(-z)), rtol=1e-5)


def test_channels_first_keras_model_is_fed_as_is(digits_test):
    inputs = keras.Input((1, 8, 8))
    z = keras.layers.Flatten()(inputs)
    net = keras.Model(inputs, keras.layers.Dense(10)(z))
    target = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0))
    assert target.model_layout == "channels_first"
    np.testing.assert_allclose(target.predict(digits_test.x[:3]), np.asarray(net(digits_test.x[:3])), atol=1e-5)


def test_declared_shape_mismatch_is_explained(zoo_models):
    with pytest.raises(al.IncompatibleModelError, match=r"model input shape \(8, 8, 1\)"):
        al.wrap_model(zoo_models("digits_cnn", "tensorflow"), input_shape=(3, 8, 8), nb_classes=10,
                      clip_values=(0.0, 1.0))


def test_weights_hash_and_params(zoo_models, zoo_targets):
    net = zoo_models("digits_mlp", "tensorflow")
    target = zoo_targets("digits_mlp", "tensorflow")
    assert target.n_params == net.count_params() == 17226
    clone = keras.models.clone_model(net)
    clone.set_weights(net.get_weights())
    again = al.wrap_model(clone, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1))
    assert again.weights_sha256 == target.weights_sha256
    w = clone.get_weights()
    w[0][0, 0] += 1e-3
    clone.set_weights(w)
    changed = al.wrap_model(clone, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1))
    assert changed.weights_sha256 != target.weights_sha256
