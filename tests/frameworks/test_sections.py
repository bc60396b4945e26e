"""The sections plumbing: evaluate(sections=...), sc.section(), schema validation, rendering, bad input."""

from __future__ import annotations

import pytest

import aisec_lab as al
from aisec_lab.scorecard.record import CheckResult
from aisec_lab.sections import SECTIONS, SectionSpec, register_section

_SCHEMA = {"type": "object", "required": ["n", "rate"],
           "properties": {"n": {"type": "integer", "minimum": 0}, "rate": {"type": "number", "minimum": 0, "maximum": 1}}}


def _compute(ctx, *, scale=1.0, with_train=False):
    rate = min(1.0, 0.5 * scale)
    out = {"n": int(ctx.data.n), "rate": rate, "label": "<script>alert(1)</script>"}
    if with_train:
        out["n_train"] = int(ctx.train_data.n)
    return out


def _checks(section, ctx):
    return [CheckResult(id="toy_size", status="warn" if section["n"] < 50 else "pass", summary="toy sample size")]


@pytest.fixture(scope="module", autouse=True)
def toy_sections():
    register_section(SectionSpec(name="toy", title="Toy <section>", caveat="a caveat & more", compute=_compute,
                                 schema=_SCHEMA, rows=lambda s: [("rate", f"{s['rate']:.2f}"), ("label", s["label"])],
                                 checks=_checks, defaults={"scale": 1.0, "with_train": False},
                                 model_card_metrics=lambda s: [{"type": "toy_rate", "name": "toy rate", "value": s["rate"],
                                                                "ci": [0.0, 1.0]}]), overwrite=True)
    register_section(SectionSpec(name="toy_train", title="Toy needing training data", compute=_compute,
                                 schema=_SCHEMA, rows=lambda s: [], needs_train_data=True,
                                 defaults={"scale": 1.0, "with_train": True}), overwrite=True)
    yield
    for name in ("toy", "toy_train"):
        SECTIONS.unregister(name)


def _eval(target, data, **kw):
    return al.evaluate(target, data, attacks=["fgsm"], eps=[0.1], n_samples=30, progress=False, checks=False, **kw)


def test_section_is_computed_checked_saved_and_rendered(zoo_targets, digits_test, tmp_path):
    t = zoo_targets("digits_mlp", "pytorch")
    sc = _eval(t, digits_test, sections=["toy"], section_params={"toy": {"scale": 1.5}})
    assert sc.section("toy")["n"] == 30 and sc.section("toy")["rate"] == 0.75
    assert sc.check("toy_size").status == "warn"
    assert "toy:" in sc.summary()
    path = sc.save(tmp_path / "sc")
    loaded = al.Scorecard.load(path)
    assert loaded.sections == sc.sections and loaded.schema_version == "1.2.0"
    html = (tmp_path / "sc" / "scorecard.html").read_text()
    md = (tmp_path / "sc" / "scorecard.md").read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "Toy &lt;section&gt;" in html and "0.75" in html
    assert "Toy" in md and "0.75" in md


def test_section_needing_training_data(zoo_targets, digits_test, digits_train):
    t = zoo_targets("digits_mlp", "pytorch")
    with pytest.raises(al.ConfigError, match="train_data"):
        _eval(t, digits_test, sections=["toy_train"])
    sc = _eval(t, digits_test, sections=["toy_train"], train_data=digits_train)
    assert sc.section("toy_train")["n_train"] == digits_train.n


def test_invalid_section_output_is_refused_on_save(zoo_targets, digits_test, tmp_path):
    sc = _eval(zoo_targets("digits_mlp", "pytorch"), digits_test, sections=["toy"])
    sc.sections["toy"]["rate"] = 1.5
    with pytest.raises(al.ScorecardFormatError, match=r"sections\.toy\.rate"):
        sc.save(tmp_path / "bad")
    assert not (tmp_path / "bad" / "scorecard.json").exists()


def test_missing_section_names_what_there_is(zoo_targets, digits_test):
    sc = _eval(zoo_targets("digits_mlp", "pytorch"), digits_test, sections=["toy"])
    with pytest.raises(al.ConfigError, match="sections=\\['certified'\\]"):
        sc.section("certified")


@pytest.mark.parametrize("kw, match", [
    ({"sections": ["toyy"]}, "toy"),
    ({"sections": ["toy"], "section_params": {"toy": {"scal": 2}}}, "scale"),
    ({"sections": ["toy"], "section_params": {"toy_train": {}}}, "not in sections"),
    ({"sections": ["toy", "toy"]}, "twice"),
    ({"sections": "toy", "section_params": [1]}, "dict"),
])
def test_bad_section_arguments_fail_before_any_attack(zoo_targets, digits_test, kw, match):
    with pytest.raises((al.ConfigError, al.UnknownComponentError), match=match):
        _eval(zoo_targets("digits_mlp", "pytorch"), digits_test, **kw)


def test_section_metrics_reach_the_model_card_exports(zoo_targets, digits_test):
    sc = _eval(zoo_targets("digits_mlp", "pytorch"), digits_test, sections=["toy"])
    mct = al.export.model_card_toolkit(sc, graphics=False)
    toy = [m for m in mct["quantitative_analysis"]["performance_metrics"] if m["type"] == "toy_rate"]
    assert toy and toy[0]["value"] == repr(0.5) and "toy rate" in toy[0]["slice"]
    results = al.export.eval_results(sc)
    assert any(r.metric_type == "toy_rate" and r.metric_value == 0.5 for r in results)


def test_scorecard_with_every_builtin_section_validates_renders_and_round_trips(zoo_targets, digits_test,
                                                                                 digits_train, tmp_path):
    """Issue 8: certified, privacy and backdoor in one scorecard: schema-valid, rendered, reloaded equal."""
    t = zoo_targets("digits_cnn", "pytorch")
    sc = al.evaluate(t, digits_test, attacks=["fgsm"], eps=[0.1], n_samples=120, progress=False, seed=0,
                     sections=["certified", "privacy", "backdoor"], train_data=digits_train,
                     section_params={"certified": {"n": 200, "n0": 50, "n_samples": 30}})
    cert, priv, bd = sc.section("certified"), sc.section("privacy"), sc.section("backdoor")
    acc = cert["certified_accuracy"]
    assert len(cert["radii"]) >= 3 and all(a >= b for a, b in zip(acc, acc[1:]))
    assert 0 <= priv["auc"] <= 1 and priv["n_nonmembers"] == 120
    assert bd["detected"] is False and bd["method"]
    ids = {c.id for c in sc.checks}
    assert {"certified_sample_size", "privacy_disjoint_sets"} <= ids and any(i.startswith("backdoor_") for i in ids)
    loaded = al.Scorecard.load(sc.save(tmp_path / "all"))
    assert loaded.sections == sc.sections
    html = (tmp_path / "all" / "scorecard.html").read_text()
    md = (tmp_path / "all" / "scorecard.md").read_text()
    for spec_name in ("certified", "privacy", "backdoor"):
        title = al.sections.get_section(spec_name).title
        assert title.split()[0] in html and title.split()[0] in md
    assert "smoothed" in (html + md).lower()  # the guarantee is labelled as the smoothed classifier's
