"""The ``certified`` section: randomized smoothing around the target (Cohen, Rosenfeld & Kolter 2019).

Acceptance on the bundled digits with the shared torch ``digits_cnn``: certified accuracy at >= 3 L2
radii, non-increasing in the radius. Kept fast: 40 samples x (50 + 200) noise draws.

Measured here (2 busy cores, torch 2.13 CPU, seed 0):
* test setting, n0=50, n=200, n_samples=40, sigma=0.25, radii [0.1, 0.2, 0.3, 0.4]: 1.0 s; certified
  accuracy 0.95 / 0.80 / 0.525 / 0.275, no abstentions (0.4 is within reach: n=200 certifies up to 0.456);
  the whole file about 8 s, most of it loading the zoo CNN.
* realistic setting, n0=100, n=1000, n_samples=100, sigma=0.25, default radii [0.125, 0.25, 0.375, 0.5]:
  10 s; certified accuracy 0.88 / 0.76 / 0.49 / 0.29, 3 abstentions, base clean accuracy 1.00 -> smoothed 0.98,
  median certified radius 0.378, largest certifiable radius 0.616.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from aisec_lab.errors import ConfigError
from aisec_lab.sections import SectionContext, get_section, normalize_sections
from aisec_lab.sections import certified as cert

RADII = [0.1, 0.2, 0.3, 0.4]
FAST = dict(sigma=0.25, n0=50, n=200, n_samples=40, radii=RADII)


@pytest.fixture(scope="module")
def cnn(zoo_targets):
    return zoo_targets("digits_cnn", "pytorch")


@pytest.fixture(scope="module")
def section(cnn, digits_test):
    spec = get_section("certified")
    ctx = SectionContext(target=cnn, data=digits_test, seed=0)
    start = time.perf_counter()
    out = spec.compute(ctx, **{**spec.defaults, **FAST})
    out["_seconds"] = time.perf_counter() - start
    return out, ctx


def test_certified_accuracy_at_three_radii_non_increasing(section):
    s, _ = section
    acc = s["certified_accuracy"]
    assert s["radii"] == RADII and len(acc) >= 3
    assert all(0.0 <= a <= 1.0 for a in acc)
    assert all(a >= b for a, b in zip(acc, acc[1:])), acc
    assert acc[0] > 0.5  # the smoothed CNN certifies most digits at a small radius
    assert all(lo <= a <= hi for a, (lo, hi) in zip(acc, s["certified_accuracy_ci"]))
    assert s["n_certified_samples"] == 40 and s["n_noise_samples"] == 200 and s["n0"] == 50
    assert s["sigma"] == 0.25 and s["alpha"] == 0.001 and s["noisy_inputs_clipped"] is False
    assert s["guarantee"] == "smoothed classifier" and "not of the base model" in s["label"]
    ab = s["abstentions"]
    assert ab["rate"] == pytest.approx(ab["count"] / 40)
    assert 0 <= s["smoothed_clean_accuracy"] <= 1 and 0 <= s["base_clean_accuracy"] <= 1
    assert s["accuracy_not_abstained"] >= acc[0]
    assert s["max_certifiable_radius"] == pytest.approx(0.25 * 1.8256, abs=1e-3)  # Phi^-1(0.001^(1/200))
    assert max(r for r in s["samples"]["radius"] if r is not None) <= s["max_certifiable_radius"] + 1e-9
    assert s["_seconds"] < 15


def test_section_validates_renders_and_checks(section):
    from jsonschema import Draft202012Validator

    s, ctx = section
    spec = get_section("certified")
    record = {k: v for k, v in s.items() if not k.startswith("_")}
    Draft202012Validator.check_schema(spec.schema)
    Draft202012Validator(spec.schema).validate(record)
    rows = dict(spec.rows(record))
    assert rows["certified accuracy @ r=0.2 (L2)"].startswith(f"{record['certified_accuracy'][1]:.3f}")
    assert rows["abstentions"] == f"{record['abstentions']['count']} / 40"
    metrics = spec.model_card_metrics(record)
    assert metrics[0]["type"] == "certified_accuracy" and metrics[0]["name"] == "certified accuracy (L2, r=0.1, sigma=0.25)"
    checks = {c.id: c for c in spec.checks(record, ctx)}
    assert set(checks) == {"certified_sample_size", "certified_sigma_scale"}
    assert checks["certified_sample_size"].status == "warn"  # 40 certified samples: wide intervals
    assert checks["certified_sigma_scale"].status == "pass"
    assert "not of the base model" in spec.caveat


def test_plumbing_registers_defaults():
    (spec, params), = normalize_sections(["certified"], {"certified": {"sigma": 0.5}}, None)
    assert spec.name == "certified" and not spec.needs_train_data
    assert params["sigma"] == 0.5 and params["n"] == 1000 and params["radii"] is None


@pytest.mark.parametrize("radii", [[0.0, 0.5], [-0.25], [0.5, float("nan")], [], "big", [0.25, 0.25]])
def test_bad_radii_refused(cnn, digits_test, radii):
    with pytest.raises(ConfigError, match="radii"):
        cert.compute(SectionContext(target=cnn, data=digits_test), radii=radii)


@pytest.mark.parametrize("sigma", [0, 0.0, -0.1, float("inf")])
def test_sigma_must_be_positive(cnn, digits_test, sigma):
    with pytest.raises(ConfigError, match="sigma"):
        cert.compute(SectionContext(target=cnn, data=digits_test), sigma=sigma)


def test_sigma_in_pixel_units_refused(cnn, digits_test):
    with pytest.raises(ConfigError, match="pixel units"):
        cert.compute(SectionContext(target=cnn, data=digits_test), sigma=64.0)


@pytest.mark.parametrize("bad", [dict(n=0), dict(n0=1.5), dict(alpha=0.0), dict(alpha=0.7), dict(n_samples=0),
                                 dict(batch_size=-1), dict(clip="yes")])
def test_bad_parameters_refused(cnn, digits_test, bad):
    with pytest.raises(ConfigError):
        cert.compute(SectionContext(target=cnn, data=digits_test), **bad)


def test_seeded_and_independent_of_batch_size(cnn, digits_test):
    x = np.asarray(digits_test.x[:5])
    kw = dict(sigma=0.25, n0=10, n=60, alpha=0.001, nb_classes=10, seed=3)
    a = cert.certify(cnn.oracle, x, batch_size=7, **kw)
    b = cert.certify(cnn.oracle, x, batch_size=1000, **kw)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    c = cert.certify(cnn.oracle, x, batch_size=7, **{**kw, "seed": 4})
    assert not np.array_equal(a["n_top"], c["n_top"]) or not np.array_equal(a["p_lower"], c["p_lower"])


class _Halfspace:
    """f(x) = 1 if x > 0 else 0 on one feature: the smoothed classifier's exact radius at x is |x|."""

    nb_classes, input_shape = 2, (1, 1, 1)
    clip_min, clip_max = np.zeros((1, 1, 1), np.float32) - 1, np.ones((1, 1, 1), np.float32)

    def logits(self, x):
        v = np.asarray(x).reshape(len(x))
        return np.stack([np.zeros_like(v), np.where(v > 0, 1.0, -1.0)], axis=1).astype(np.float32)


def test_certificate_is_a_lower_bound_of_the_exact_radius():
    x = np.array([0.3, -0.5, 0.05, 0.0], np.float32).reshape(-1, 1, 1, 1)
    out = cert.certify(_Halfspace(), x, sigma=0.25, n0=50, n=4000, alpha=0.001, nb_classes=2, seed=0)
    exact = np.abs(x.reshape(-1))
    assert list(out["prediction"][:2]) == [1, 0]
    assert np.all(out["radius"][:2] <= exact[:2]) and np.all(out["radius"][:2] >= exact[:2] - 0.05)
    assert out["prediction"][3] == -1 and np.isnan(out["radius"][3])  # a coin flip: abstain
    assert np.isnan(out["radius"][2]) or out["radius"][2] <= 0.05


def test_sample_size_and_sigma_checks_grade(cnn):
    base = {"sigma": 0.25, "alpha": 0.001, "radii": [0.25, 0.5, 1.0], "n_certified_samples": 500,
            "base_clean_accuracy": 0.98, "smoothed_clean_accuracy": 0.95}
    ctx = SectionContext(target=cnn, data=None)

    def grade(**changes):
        return {c.id: c for c in cert.checks({**base, **changes}, ctx)}

    tiny = grade(n_noise_samples=5)["certified_sample_size"]
    assert tiny.status == "fail" and tiny.evidence["max_certifiable_radius"] <= 0
    assert grade(n_noise_samples=50)["certified_sample_size"].status == "fail"
    short = grade(n_noise_samples=1000)["certified_sample_size"]
    assert short.status == "warn" and short.evidence["radii_beyond_reach"] == [1.0]
    assert short.evidence["max_certifiable_radius"] == pytest.approx(0.6158, abs=1e-3)
    assert grade(n_noise_samples=100000, radii=[0.25, 0.5])["certified_sample_size"].status == "pass"
    assert grade(n_noise_samples=1000, sigma=3.0)["certified_sigma_scale"].status == "fail"
    assert grade(n_noise_samples=1000, smoothed_clean_accuracy=0.3)["certified_sigma_scale"].status == "warn"
    assert grade(n_noise_samples=1000)["certified_sigma_scale"].status == "pass"
