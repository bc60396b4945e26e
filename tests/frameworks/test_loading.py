"""Loading model files: safe by default, pickles only with trust=True."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import aisec_lab as al


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(al.ConfigError, match="no such model file"):
        al.load_model(tmp_path / "nope.pt")
    (tmp_path / "m.weird").write_bytes(b"abc")
    with pytest.raises(al.ConfigError, match="framework='pytorch'"):
        al.load_model(tmp_path / "m.weird")


def test_plain_pickle_refused_without_trust(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(al.UnsafeFileError, match="trust=True") as info:
        al.load_model(path)
    assert isinstance(info.value, ValueError)
    assert al.load_model(path, trust=True) == {"weights": [1, 2, 3]}
    sneaky = tmp_path / "model.bin2"
    sneaky.write_bytes(pickle.dumps([1]))
    with pytest.raises(al.UnsafeFileError):
        al.load_model(sneaky)


class TestTorchFiles:
    torch = pytest.importorskip("torch")

    def test_state_dict_with_factory(self, tmp_path, zoo_models, digits_test):
        import torch

        from aisec_lab.zoo import MODELS
        from aisec_lab.zoo.pytorch import build

        net = zoo_models("digits_mlp", "pytorch")
        path = tmp_path / "mlp.pt"
        torch.save(net.state_dict(), path)
        entry = MODELS.get("digits_mlp")
        loaded = al.load_model(path, factory=lambda: build(entry, seed=5))
        t1 = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1))
        t2 = al.wrap_model(loaded, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1))
        assert t1.weights_sha256 == t2.weights_sha256
        np.testing.assert_allclose(t1.predict(digits_test.x[:5]), t2.predict(digits_test.x[:5]), atol=1e-6)
        with pytest.raises(al.ConfigError, match="factory="):
            al.load_model(path)
        with pytest.raises(al.IncompatibleModelError, match="do not fit"):
            al.load_model(path, factory=lambda: build(MODELS.get("digits_cnn")))

    def test_torchscript(self, tmp_path, zoo_models, digits_test):
        import torch

        net = zoo_models("digits_cnn", "pytorch")
        path = tmp_path / "cnn.ts"
        torch.jit.script(net).save(str(path))
        loaded = al.load_model(path)
        target = al.wrap_model(loaded, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1))
        assert target.accuracy(digits_test) >= 0.95
        pt_path = tmp_path / "cnn_script.pt"  # TorchScript under a .pt name is recognised too
        torch.jit.script(net).save(str(pt_path))
        assert isinstance(al.load_model(pt_path), torch.jit.ScriptModule)

    def test_full_module_pickle_refused(self, tmp_path, zoo_models):
        import torch

        path = tmp_path / "full.pt"
        torch.save(zoo_models("digits_mlp", "pytorch"), path)
        with pytest.raises(al.UnsafeFileError, match="pickled Python objects"):
            al.load_model(path)
        assert isinstance(al.load_model(path, trust=True), torch.nn.Module)

    def test_corrupt_torch_file(self, tmp_path, zoo_models):
        import torch

        path = tmp_path / "trunc.pt"
        torch.save(zoo_models("digits_mlp", "pytorch").state_dict(), path)
        path.write_bytes(path.read_bytes()[:200])
        with pytest.raises(al.IncompatibleModelError, match="not a readable torch file"):
            al.load_model(path, factory=lambda: None)


class TestKerasFiles:
    keras = pytest.importorskip("keras")

    def test_keras_round_trip(self, tmp_path, zoo_models, digits_test):
        net = zoo_models("digits_cnn", "tensorflow")
        path = tmp_path / "cnn.keras"
        net.save(path)
        loaded = al.load_model(path)
        target = al.wrap_model(loaded, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1))
        assert target.model_layout == "channels_last"
        assert target.accuracy(digits_test) >= 0.95

    def test_lambda_layer_refused_in_safe_mode(self, tmp_path):
        import keras

        inputs = keras.Input((64,))
        outputs = keras.layers.Dense(10)(keras.layers.Lambda(lambda t: t * 2.0)(inputs))
        path = tmp_path / "lambda.keras"
        keras.Model(inputs, outputs).save(path)
        with pytest.raises(al.UnsafeFileError, match="trust=True"):
            al.load_model(path)
        assert isinstance(al.load_model(path, trust=True), keras.Model)

    def test_legacy_h5_needs_trust(self, tmp_path):
        path = tmp_path / "old.h5"
        path.write_bytes(b"\x89HDF\r\n\x1a\n")
        with pytest.raises(al.UnsafeFileError, match="legacy HDF5"):
            al.load_model(path)
