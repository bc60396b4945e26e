"""The model boundary, run for both frameworks on the shared reference models."""

from __future__ import annotations

import numpy as np
import pytest

import aisec_lab as al

MODELS = ["digits_cnn", "digits_mlp"]


@pytest.mark.parametrize("name", MODELS)
def test_reference_models_reach_accuracy(zoo_targets, digits_test, framework, name):
    target = zoo_targets(name, framework)
    assert target.framework == framework
    acc = target.accuracy(digits_test)
    assert acc >= 0.95, f"{name}/{framework}: clean test accuracy {acc:.3f} < 0.95"


def test_same_canonical_data_feeds_both_frameworks(zoo_targets, digits_test):
    pt = zoo_targets("digits_cnn", "pytorch")
    tf_ = zoo_targets("digits_cnn", "tensorflow")
    assert pt.model_layout == "channels_first" and tf_.model_layout == "channels_last"
    assert zoo_targets("digits_mlp", "tensorflow").model_layout == "flat"
    x = digits_test.x[:32]
    assert pt.predict(x).shape == tf_.predict(x).shape == (32, 10)
    agree = np.mean(pt.predict_labels(digits_test) == tf_.predict_labels(digits_test))
    assert agree > 0.93  # two independently trained models mostly agree on the same canonical input


def test_predictions_match_the_native_model(zoo_models, zoo_targets, digits_test, framework):
    target = zoo_targets("digits_cnn", framework)
    net = zoo_models("digits_cnn", framework)
    x = digits_test.x[:16]
    if framework == "pytorch":
        import torch

        with torch.no_grad():
            native = net(torch.from_numpy(np.array(x))).numpy()
    else:
        native = np.asarray(net(np.transpose(x, (0, 2, 3, 1)), training=False))
    np.testing.assert_allclose(target.predict(x), native, rtol=1e-4, atol=1e-4)


def test_metadata_is_recorded(zoo_targets, framework):
    target = zoo_targets("digits_cnn", framework)
    info = target.info()
    assert info["framework"] == framework and info["nb_classes"] == 10
    assert info["input_shape"] == [1, 8, 8] and info["clip_values"] == [0.0, 1.0]
    assert target.n_params == 38282
    assert len(target.weights_sha256) == 64 and target.device == "cpu"
    assert target.output_type == "logits" and target.has_gradients and not target.warnings


def test_float64_and_one_hot_inputs(zoo_targets, digits_test, framework):
    target = zoo_targets("digits_mlp", framework)
    x64 = digits_test.x[:10].astype(np.float64)
    np.testing.assert_allclose(target.predict(x64), target.predict(digits_test.x[:10]), atol=1e-6)
    grad = target.loss_gradient(x64, np.eye(10)[digits_test.y[:10]])
    assert grad.shape == (10, 1, 8, 8) and grad.dtype == np.float32
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0
    grad_int = target.loss_gradient(digits_test.x[:10], digits_test.y[:10])
    np.testing.assert_allclose(grad, grad_int, rtol=1e-5, atol=1e-7)


def test_gradients_do_not_depend_on_batch_size(zoo_targets, digits_test, framework):
    target = zoo_targets("digits_cnn", framework)
    x, y = digits_test.x[:8], digits_test.y[:8]
    one = target.loss_gradient(x[:1], y[:1])
    many = target.loss_gradient(x, y)[:1]
    np.testing.assert_allclose(one, many, rtol=1e-4, atol=1e-6)


# -- bad input ------------------------------------------------------------------------------
def test_wrong_input_shape(zoo_models, framework):
    net = zoo_models("digits_cnn", framework)
    with pytest.raises(al.IncompatibleModelError, match="input_shape") as info:
        al.wrap_model(net, input_shape=(3, 32, 32), nb_classes=10, clip_values=(0.0, 1.0))
    assert "channels-first" in str(info.value)


def test_nb_classes_mismatch(zoo_models, framework):
    net = zoo_models("digits_cnn", framework)
    with pytest.raises(al.IncompatibleModelError, match="outputs 10 scores per sample but nb_classes=7"):
        al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=7, clip_values=(0.0, 1.0))
    with pytest.raises(al.ConfigError, match="nb_classes must be an integer >= 2"):
        al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=1, clip_values=(0.0, 1.0))


@pytest.mark.parametrize("clip,match", [((1.0, 0.0), "reversed"), ((float("nan"), 1.0), "finite")])
def test_bad_clip_values(zoo_models, framework, clip, match):
    net = zoo_models("digits_mlp", framework)
    with pytest.raises(al.ConfigError, match=match):
        al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=10, clip_values=clip)


def test_bad_data_is_rejected_at_the_target(zoo_targets, digits_test, framework):
    target = zoo_targets("digits_mlp", framework)
    x = np.array(digits_test.x[:4])
    with pytest.raises(al.DataError, match="outside the target's clip_values") as info:
        target.predict(x * 255)
    assert "divide 0-255 pixels by 255" in str(info.value)
    x_nan = x.copy()
    x_nan[2, 0, 3, 3] = np.nan
    with pytest.raises(al.DataError, match="NaN or Inf"):
        target.predict(x_nan)
    with pytest.raises(al.DataError, match=r"expected \(n, 1, 8, 8\)") as info:
        target.predict(np.transpose(x, (0, 2, 3, 1)))
    assert "channels-last" in str(info.value)
    with pytest.raises(al.DataError, match=r"labels outside \[0, 10\)"):
        target.accuracy(x, [0, 1, 2, 10])
    with pytest.raises(al.DataError, match="one-hot y has 9 columns"):
        target.check_data(x, np.eye(9)[[0, 1, 2, 3]])
    other = al.from_arrays(np.zeros((2, 1, 4, 4)), [0, 1])
    with pytest.raises(al.DataError, match="does not match|expected"):
        target.check_data(other)


@pytest.mark.parametrize("obj,hint", [
    (object(), "torch.nn.Module or a keras.Model"),
    (lambda x: x, "wrap_predict"),
    ("model.pt", "load_model"),
])
def test_not_a_model(obj, hint):
    with pytest.raises(al.IncompatibleModelError, match=hint):
        al.wrap_model(obj, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0))


def test_sklearn_estimator_gets_wrap_predict_hint(digits_train):
    from sklearn.linear_model import LogisticRegression

    est = LogisticRegression(max_iter=200).fit(digits_train.x.reshape(digits_train.n, -1), digits_train.y)
    with pytest.raises(al.IncompatibleModelError, match="predict_proba"):
        al.wrap_model(est, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0))
    target = al.wrap_predict(lambda x: est.predict_proba(x.reshape(len(x), -1)), input_shape=(1, 8, 8),
                             nb_classes=10, clip_values=(0.0, 1.0), name="logreg")
    assert target.framework == "blackbox" and not target.has_gradients
    assert target.output_type == "probabilities"
    assert target.accuracy(al.load_dataset("digits")) > 0.9
    with pytest.raises(al.IncompatibleModelError, match="no gradients"):
        target.loss_gradient(digits_train.x[:2], digits_train.y[:2])


def test_wrap_predict_checks_output_width():
    with pytest.raises(al.IncompatibleModelError, match="outputs 3 scores per sample but nb_classes=10"):
        al.wrap_predict(lambda x: np.zeros((len(x), 3)), input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1))
    with pytest.raises(al.IncompatibleModelError, match="failed on a probe batch"):
        al.wrap_predict(lambda x: x.reshape(3, -1), input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1))


def test_cuda_request_without_gpu(zoo_models, framework):
    if framework == "pytorch":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
    else:
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            pytest.skip("a GPU is present")
    with pytest.raises(al.ConfigError, match="no (CUDA device|GPU)"):
        al.wrap_model(zoo_models("digits_mlp", framework), input_shape=(1, 8, 8), nb_classes=10,
                      clip_values=(0.0, 1.0), device="cuda")
