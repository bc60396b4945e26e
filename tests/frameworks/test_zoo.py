"""Reference models: cached, keyed, deterministic."""

from __future__ import annotations

import importlib

import pytest

import aisec_lab as al


def test_cache_is_used_and_keyed(framework, zoo_models, run_dir, monkeypatch, tmp_path):
    zoo_models("digits_mlp", framework)  # make sure the shared run cache holds it
    backend = importlib.import_module(f"aisec_lab.zoo.{framework}")

    def no_training(*args, **kwargs):
        raise AssertionError("the cached model should have been loaded, not retrained")

    monkeypatch.setattr(backend, "train", no_training)
    cached = al.zoo.load("digits_mlp", framework)
    wrap = dict(input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1))
    assert al.wrap_model(cached, **wrap).weights_sha256 == al.wrap_model(zoo_models("digits_mlp", framework), **wrap).weights_sha256
    # a different seed, or a different cache folder, is a different key: training is attempted
    with pytest.raises(AssertionError, match="not retrained"):
        al.zoo.load("digits_mlp", framework, seed=1)
    monkeypatch.setenv("AISEC_LAB_CACHE", str(tmp_path))
    assert al.zoo.cache_dir() == tmp_path
    with pytest.raises(AssertionError, match="not retrained"):
        al.zoo.load("digits_mlp", framework)


def test_training_is_deterministic(framework, zoo_models, tmp_path):
    wrap = dict(input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1))
    shared = al.wrap_model(zoo_models("digits_mlp", framework), **wrap)
    retrained = al.wrap_model(al.zoo.load("digits_mlp", framework, cache=tmp_path, retrain=True), **wrap)
    assert retrained.weights_sha256 == shared.weights_sha256
    files = sorted(p.name for p in (tmp_path / "zoo").iterdir())
    assert len(files) == 2 and files[1].endswith(".json")  # weights + metadata, no temp files left


def test_zoo_target_and_describe(framework):
    target = al.zoo.target("digits_cnn", framework)
    assert target.name == f"digits_cnn ({framework})"
    card = al.zoo.describe("digits_cnn")
    assert card["input_shape"] == (1, 8, 8) and card["min_test_accuracy"] == 0.95
