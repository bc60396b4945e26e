"""The ``backdoor`` section: a planted-backdoor canary is found, the clean reference model is not flagged.

The canary (``plant_backdoor``) poisons 10 % of the bundled digits training set with a 2x2 corner
trigger relabelled to class 0 and trains ``digits_cnn`` on it. The scan never sees which samples were
poisoned; the tests compare its flagged samples with them (precision / recall).
"""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest

import aisec_lab as al
from aisec_lab.sections import SectionContext, get_section, normalize_sections, run_sections
from aisec_lab.sections import backdoor

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def canary():
    return backdoor.plant_backdoor("pytorch", model="digits_cnn", target_class=0, poison_fraction=0.1, seed=0)


@pytest.fixture(scope="module")
def canary_section(canary, digits_test):
    target, poisoned, _ = canary
    return backdoor.compute(SectionContext(target=target, data=digits_test, train_data=poisoned))


def _precision_recall(section: dict, poisoned: list[int]) -> tuple[float, float]:
    flagged = {i for row in section["evidence"]["per_class"] for i in row["flagged_indices"]}
    hits = len(flagged & set(poisoned))
    return hits / max(len(flagged), 1), hits / len(poisoned)


def _valid(section: dict) -> None:
    jsonschema.validate(json.loads(json.dumps(section, allow_nan=False)), backdoor.SPEC.schema)


def test_canary_backdoor_works(canary):
    _, poisoned, info = canary
    assert info["n_poisoned"] == len(info["poisoned_indices"]) == round(0.1 * poisoned.n)
    assert np.all(poisoned.y[info["poisoned_indices"]] == 0)
    assert info["attack_success_rate"] > 0.9, info
    assert info["clean_test_accuracy"] > 0.9, info


def test_scan_finds_the_planted_backdoor(canary, canary_section):
    _, poisoned, info = canary
    section = canary_section
    _valid(section)
    assert section["detected"] is True and section["suspicious_classes"] == [0]
    assert section["method"] == "spectral_signatures"
    precision, recall = _precision_recall(section, info["poisoned_indices"])
    row = section["evidence"]["per_class"][0]
    # measured: score 2.90, precision 1.00, recall 0.99 (135 poisoned of 1347)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall, row["score"])
    assert row["score"] > section["threshold"]
    assert set(row["top_indices"]) <= set(info["poisoned_indices"])  # the most extreme samples are poison
    others = [r["score"] for r in section["evidence"]["per_class"][1:]]
    assert max(others) < section["threshold"]
    assert section["representation"]["kind"] == "penultimate" and "Linear" in section["representation"]["layer"]
    assert section["label_agreement"]["kappa"] > 0.9  # the model fits its (poisoned) training data
    ids = {c.id: c.status for c in backdoor.checks(section)}
    assert ids == {"backdoor_sample_size": "pass", "backdoor_label_agreement": "pass",
                   "backdoor_representation": "pass"}
    rows = dict(backdoor.rows(section))
    assert rows["result"].startswith("BACKDOOR SUSPECTED in class(es) 0")


def test_clean_reference_model_is_not_flagged(zoo_targets, digits_train, digits_test):
    target = zoo_targets("digits_cnn", "pytorch")
    section = backdoor.compute(SectionContext(target=target, data=digits_test, train_data=digits_train))
    _valid(section)
    assert section["detected"] is False and section["suspicious_classes"] == [] and section["n_flagged"] == 0
    assert section["max_score"] < section["threshold"]  # measured: 1.13 against 2.0
    per_class = section["evidence"]["per_class"]
    assert [r["class"] for r in per_class] == list(range(10))
    for r in per_class:
        assert r["flagged_indices"] == [] and len(r["top_indices"]) == 10
        assert all(digits_train.y[i] == r["class"] for i in r["top_indices"])
    assert dict(backdoor.rows(section))["result"].startswith("no class suspicious")


def test_section_plumbing(zoo_targets, digits_train, digits_test):
    spec = get_section("backdoor")
    assert spec.needs_train_data and spec.model_card_metrics({}) == []
    with pytest.raises(al.ConfigError, match="needs the model's training data"):
        normalize_sections(["backdoor"], None, None)
    pairs = normalize_sections(["backdoor"], {"backdoor": {"method": "activation_clustering"}}, digits_train)
    ctx = SectionContext(target=zoo_targets("digits_cnn", "pytorch"), data=digits_test, train_data=digits_train,
                         seed=3)
    results, checks = run_sections(pairs, ctx)
    assert results["backdoor"]["method"] == "activation_clustering" and results["backdoor"]["seed"] == 3
    assert results["backdoor"]["detected"] is False
    assert checks and all(c.id.startswith("backdoor_") for c in checks)


def test_features_are_the_last_linear_input(zoo_targets, digits_train):
    target = zoo_targets("digits_cnn", "pytorch")
    feats = target.oracle.features(digits_train.x[:50])
    head = target.model[-1]
    with torch.no_grad():
        logits = head(torch.from_numpy(feats)).numpy()
    np.testing.assert_allclose(logits, target.oracle.logits(digits_train.x[:50]), rtol=1e-4, atol=1e-4)


def test_model_without_linear_layer(digits_train, digits_test):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 10, 8), torch.nn.Flatten())  # logits from a conv: no Linear
    target = al.wrap_model(net, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0.0, 1.0))
    with pytest.raises(al.IncompatibleModelError, match="nn.Linear"):
        target.oracle.features(digits_train.x[:4])
    # an untrained model does not fit the data: the label pre-check refuses it even with the logits fallback
    with pytest.raises(al.DataError, match="do not match the model's predictions"):
        backdoor.scan(target, digits_train, representation="logits")
    section = backdoor.scan(target, digits_train, representation="logits", min_label_agreement=-1.0)
    _valid(section)
    assert section["representation"] == {**section["representation"], "kind": "logits", "calibrated": False}
    status = {c.id: c.status for c in backdoor.checks(section)}
    assert status["backdoor_representation"] == "warn" and status["backdoor_label_agreement"] == "warn"


def test_labels_that_do_not_match_the_model(zoo_targets, digits_train):
    target = zoo_targets("digits_cnn", "pytorch")
    shifted = al.from_arrays(digits_train.x, (digits_train.y + 1) % 10, nb_classes=10)
    with pytest.raises(al.DataError, match="labels do not match the model's predictions") as info:
        backdoor.scan(target, shifted)
    assert "kappa" in str(info.value) and "Fix:" in str(info.value)
    wide = al.from_arrays(digits_train.x[:20], np.arange(20) % 12, nb_classes=12)
    with pytest.raises(al.DataError, match=r"labels do not match the model: it predicts 10 classes"):
        backdoor.scan(target, wide)
    flat = al.from_arrays(digits_train.x.reshape(digits_train.n, -1), digits_train.y, nb_classes=10)
    with pytest.raises(al.DataError, match="input shape"):
        backdoor.scan(target, flat)
    with pytest.raises(al.ConfigError, match="needs the model's training data"):
        backdoor.scan(target, None)


@pytest.mark.parametrize("params,match", [({"method": "pca"}, "unknown backdoor scan method"),
                                          ({"representation": "conv1"}, "unknown representation"),
                                          ({"threshold": 0}, "threshold must be a positive"),
                                          ({"n_top": -1}, "n_top must be an integer")])
def test_bad_parameters(zoo_targets, digits_train, params, match):
    with pytest.raises(al.ConfigError, match=match):
        backdoor.scan(zoo_targets("digits_cnn", "pytorch"), digits_train, **params)


def test_small_classes_are_reported(zoo_targets, digits_train):
    target = zoo_targets("digits_cnn", "pytorch")
    few = backdoor.scan(target, digits_train.stratified_sample(200, seed=0))
    assert {c.id: c.status for c in backdoor.checks(few)}["backdoor_sample_size"] == "warn"
    assert all("note" in r for r in few["evidence"]["per_class"])
    none = backdoor.scan(target, digits_train.stratified_sample(60, seed=0))
    assert none["n_classes_scored"] == 0 and none["detected"] is False
    assert {c.id: c.status for c in backdoor.checks(none)}["backdoor_sample_size"] == "fail"


def test_plant_backdoor_rejects_bad_settings():
    for kwargs, match in [({"poison_fraction": 0}, "strictly between 0 and 1"),
                          ({"target_class": 10}, "target_class"),
                          ({"trigger": "star"}, "unknown trigger"),
                          ({"model": "digits_vit"}, "digits_vit")]:
        with pytest.raises((al.ConfigError, al.UnknownComponentError), match=match):
            backdoor.plant_backdoor("pytorch", **kwargs)
    with pytest.raises(al.ConfigError, match="unknown framework"):
        backdoor.plant_backdoor("jax")


@pytest.mark.tensorflow
def test_keras_features_and_clean_model(zoo_targets, digits_train, digits_test):
    pytest.importorskip("tensorflow")
    target = zoo_targets("digits_cnn", "tensorflow")
    feats = target.oracle.features(digits_train.x[:50])
    dense = target.model.layers[-1]
    np.testing.assert_allclose(np.asarray(dense(feats)), target.oracle.logits(digits_train.x[:50]), rtol=1e-4,
                               atol=1e-4)
    assert "Dense(10)" in target.oracle.feature_layer
    section = backdoor.compute(SectionContext(target=target, data=digits_test, train_data=digits_train))
    _valid(section)
    assert section["detected"] is False  # measured: max class score 0.82


@pytest.mark.tensorflow
def test_keras_canary_is_detected(digits_test):
    pytest.importorskip("tensorflow")
    target, poisoned, info = backdoor.plant_backdoor("tensorflow", seed=0)
    assert info["attack_success_rate"] > 0.9, info
    section = backdoor.compute(SectionContext(target=target, data=digits_test, train_data=poisoned))
    _valid(section)
    assert section["detected"] is True and section["suspicious_classes"] == [0]
    precision, recall = _precision_recall(section, info["poisoned_indices"])
    assert precision >= 0.9 and recall >= 0.9, (precision, recall, section["max_score"])
