"""Adversarial-input detectors: training, detection above the false-positive rate, errors, scorecard section.

Uses the shared digits_cnn (PyTorch) reference model and the bundled digits. Measured here (seed 0,
300 training digits, PGD L∞ ε = 0.1; evaluate(eps=[0.1, 0.2])): on the 450 test digits 6 false
positives (1.3 %, CI 0.5-2.9 %); of the evaluation's successful PGD examples 203 of 207 flagged at
ε = 0.1 (98 %, CI 95.1-99.5 %) and 434 of 438 at ε = 0.2 (99 %). The assertions leave wide margins.
"""

from __future__ import annotations

import numpy as np
import pytest

import aisec_lab as al
from aisec_lab.defenses import DETECTORS, Detector, detection_section, list_detectors, train_detector
from aisec_lab.scorecard import io as scio

pytest.importorskip("torch")

pytestmark = pytest.mark.pytorch


@pytest.fixture(scope="module")
def cnn(zoo_targets):
    return zoo_targets("digits_cnn", "pytorch")


@pytest.fixture(scope="module")
def detector(cnn, digits_train):
    return train_detector(cnn, digits_train, eps=0.1, n_samples=300, seed=0)


@pytest.fixture(scope="module")
def card(cnn, digits_test):
    return al.evaluate(cnn, digits_test, attacks=["pgd"], eps=[0.1, 0.2], seed=0, checks=False, progress=False)


def test_registry_and_info(detector):
    assert "binary_input" in list_detectors() and DETECTORS.get("binary_input").name == "binary_input"
    assert isinstance(detector, Detector) and detector.name == "binary_input" and detector.threshold == 0.5
    info = detector.info()
    assert info["detector"] == "binary_input"
    assert info["params"] == {"hidden_layer_sizes": [64], "alpha": 0.0001, "max_iter": 500, "threshold": 0.5}
    trained = info["trained_on"]
    assert (trained["attack"], trained["norm"], trained["eps"], trained["n_train"]) == ("pgd", "linf", 0.1, 600)
    assert trained["n_clean"] == trained["n_adversarial"] == 300 and 0 < trained["attack_success_rate"] < 1
    assert trained["attack_params"]["max_iter"] == 40 and len(trained["data_sha256"]) == 64


def test_detects_pgd_well_above_its_false_positive_rate(detector, card, digits_test):
    scores = detector.score(digits_test.x[:10])
    assert scores.shape == (10,) and scores.dtype == np.float64 and np.all((scores >= 0) & (scores <= 1))
    assert detector.predict(digits_test.x[:10]).dtype == bool
    section = detector.evaluate(card)
    fpr = section["false_positive_rate"]
    at = {r["eps"]: r for r in section["per_eps"]}
    assert section["n_clean"] == 450 and fpr < 0.08
    assert at[0.1]["n_adversarial"] > 100 and at[0.1]["detection_rate"] - fpr > 0.6
    assert at[0.2]["detection_rate"] - fpr > 0.6
    assert at[0.1]["detection_rate_ci"][0] > section["false_positive_rate_ci"][1]  # separated, not by chance
    # the adversarial examples themselves: the detector flags what PGD produced, not the samples' identity
    broken = card.samples["first_attack"][0] >= 0
    assert np.mean(detector.predict(card.samples["x_adv"][0][broken])) == at[0.1]["detection_rate"]


def test_same_seed_same_detector(cnn, digits_train, digits_test, detector):
    again = train_detector(cnn, (digits_train.x, digits_train.y), eps=0.1, n_samples=300, seed=0)
    assert np.array_equal(again.score(digits_test.x), detector.score(digits_test.x))
    assert again.info() == detector.info()


def test_section_validates_in_a_scorecard(detector, card):
    section = detector.evaluate(card)
    assert section["adaptive"] is False and "not adaptive" in section["note"]
    samples = card.samples
    direct = detection_section(detector, samples["x"], samples["x_adv"], samples["first_attack"] >= 0, card.eps, None)
    assert direct == section  # the display form is computed when not given
    record = card.to_dict()
    record["detection"] = section
    scio.validate(record)
    sc = al.Scorecard.from_dict(record, {})
    assert "detection: binary_input" in sc.summary()


def test_threshold_is_a_parameter(cnn, digits_train, digits_test, detector):
    strict = train_detector(cnn, digits_train, eps=0.1, n_samples=300, seed=0, threshold=0.9)
    assert strict.threshold == 0.9 and strict.info()["params"]["threshold"] == 0.9
    assert strict.predict(digits_test.x).sum() <= detector.predict(digits_test.x).sum()


def test_bad_inputs_give_clear_errors(cnn, digits_train, detector, card):
    for eps in (0, -0.1, float("nan"), float("inf"), "0.1", None):
        with pytest.raises(al.ConfigError, match="eps must be one finite number > 0"):
            train_detector(cnn, digits_train, eps=eps)
    with pytest.raises(al.ConfigError, match="smaller than 1"):
        train_detector(cnn, digits_train, eps=8)
    with pytest.raises(al.UnknownComponentError, match="did you mean 'binary_input'"):
        train_detector(cnn, digits_train, name="binary_inptu", eps=0.1)
    with pytest.raises(al.UnknownComponentError, match="did you mean 'pgd'"):
        train_detector(cnn, digits_train, attack="pdg", eps=0.1)
    with pytest.raises(al.ConfigError, match="no hyperparameter 'hiden_layer_sizes'.*did you mean 'hidden_layer_sizes'"):
        train_detector(cnn, digits_train, eps=0.1, hiden_layer_sizes=(8,))
    with pytest.raises(al.ConfigError, match="threshold must be a probability"):
        train_detector(cnn, digits_train, eps=0.1, threshold=1.5)
    with pytest.raises(al.DataError, match=r"expected \(n, 1, 8, 8\)"):
        train_detector(cnn, (digits_train.x.reshape(len(digits_train.x), -1), digits_train.y), eps=0.1)
    with pytest.raises(al.DataError, match="labels|y"):
        train_detector(cnn, (digits_train.x, digits_train.y[:5]), eps=0.1)
    with pytest.raises(al.ConfigError, match="Dataset or an \\(x, y\\) pair"):
        train_detector(cnn, digits_train.x, eps=0.1)
    with pytest.raises(al.IncompatibleModelError, match="wrapped model"):
        train_detector(object(), digits_train, eps=0.1)
    with pytest.raises(al.ConfigError, match="minimum-norm"):
        train_detector(cnn, digits_train, attack="deepfool", eps=0.1)
    with pytest.raises(al.DataError, match="expected"):
        detector.score(np.zeros((3, 64), dtype=np.float32))
    with pytest.raises(al.ConfigError, match="not trained"):
        DETECTORS.get("binary_input")(cnn).score(card.samples["x"][:2])
    s = card.samples
    with pytest.raises(al.DataError, match="x_adv must have shape"):
        detection_section(detector, s["x"], s["x_adv"][0], s["first_attack"] >= 0, card.eps)
    with pytest.raises(al.DataError, match="broken must be a boolean array"):
        detection_section(detector, s["x"], s["x_adv"], s["first_attack"], card.eps)
    with pytest.raises(al.ConfigError, match="eps_list has 1 values"):
        detection_section(detector, s["x"], s["x_adv"], s["first_attack"] >= 0, [0.1])
    with pytest.raises(al.ConfigError, match="needs a Scorecard"):
        detector.evaluate(card.to_dict())
