"""The optional ``defense`` and ``detection`` sections (schema 1.1): validation, round trip, rendering.

Built on the small real scorecard in tests/data (a 1.0.0 file, no model runs); the sections are the
shapes ``aisec_lab.defenses`` produces.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import pytest

import aisec_lab as al
from aisec_lab.errors import ScorecardFormatError
from aisec_lab.scorecard import io as scio
from aisec_lab.scorecard.defense_text import NOT_ADAPTIVE_WARNING

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURE = DATA / "scorecard_small.json"
HOSTILE = "<script>alert(1)</script>"


def defense_section(*, adaptive: bool) -> dict:
    return {
        "chain": [{"name": "feature_squeezing", "params": {"bit_depth": 4},
                   "implementation": "art.defences.preprocessor.FeatureSqueezing",
                   "differentiable": False, "randomized": False},
                  {"name": "gaussian_augmentation", "params": {"sigma": 0.05},
                   "implementation": "art.defences.preprocessor.GaussianAugmentation",
                   "differentiable": True, "randomized": True}],
        "adaptive": adaptive,
        "adaptation": ["BPDA", "EOT"] if adaptive else [],
        "eot_samples": 8 if adaptive else 1,
        "base_model_sha256": "ab" * 32,
        "note": "attacks ran on the undefended model" if not adaptive else "BPDA through the squeezer, EOT over noise",
    }


def detection_section() -> dict:
    return {
        "detector": "binary_input", "params": {"hidden_layer_sizes": [64], "alpha": 0.0001, "max_iter": 500,
                                               "threshold": 0.5},
        "trained_on": {"attack": "pgd", "norm": "linf", "eps": 0.1, "n_train": 600, "seed": 0},
        "threshold": 0.5,
        "false_positive_rate": 0.05, "false_positive_rate_ci": [0.0104, 0.1392], "n_clean": 60, "n_false_positives": 3,
        "per_eps": [{"eps": 0.05, "eps_display": "0.05", "detection_rate": None, "detection_rate_ci": [0.0, 1.0],
                     "n_adversarial": 0, "n_detected": 0},
                    {"eps": 0.1, "eps_display": "0.1", "detection_rate": 0.88, "detection_rate_ci": [0.688, 0.975],
                     "n_adversarial": 25, "n_detected": 22}],
        "adaptive": False,
        "note": "evaluated on attacks that ignore the detector",
    }


@pytest.fixture(scope="module")
def base():
    return al.Scorecard.load(FIXTURE)


@pytest.fixture
def sc(base):
    card = al.Scorecard.from_dict(copy.deepcopy(base.to_dict()), dict(base.samples))
    card.defense = defense_section(adaptive=False)
    card.detection = detection_section()
    return card


@pytest.fixture
def no_renderers(monkeypatch):
    for name in ("markdown", "html", "plots"):
        monkeypatch.setitem(sys.modules, f"aisec_lab.scorecard.render.{name}", None)


def _canonical(d: dict) -> str:
    return json.dumps(d, indent=2, sort_keys=True)


# -- record, schema, files ----------------------------------------------------------------------------
def test_sections_validate_save_and_load_back_equal(sc, no_renderers, tmp_path):
    record = sc.to_dict()
    assert record["schema_version"] == "1.2.0"  # a 1.0.0 scorecard that gains a section is written in the current version
    scio.validate(record)
    path = sc.save(tmp_path / "run")
    loaded = al.Scorecard.load(path)
    assert loaded.defense == sc.defense and loaded.detection == sc.detection
    assert _canonical(loaded.to_dict()) == _canonical(record) == path.read_text(encoding="utf-8")
    assert loaded.adaptive is False


def test_absent_sections_leave_a_1_0_0_record_unchanged(base):
    raw = json.loads(FIXTURE.read_text())
    assert "defense" not in raw and "detection" not in raw and raw["schema_version"] == "1.0.0"
    record = base.to_dict()
    assert "defense" not in record and "detection" not in record and record["schema_version"] == "1.0.0"
    assert base.defense is None and base.detection is None and base.adaptive is None
    scio.validate(dict(record, defense=None, detection=None))  # null is accepted as absent


def test_schema_ships_both_sections():
    schema = scio.load_schema()
    assert {"defense", "detection"} <= set(schema["properties"])
    assert not {"defense", "detection"} & set(schema["required"])  # optional: 1.0.0 files stay valid
    assert "1.2.0" in schema["$id"]


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["detection"].update(false_positive_rate=1.5),
     r"\$\.detection\.false_positive_rate.*fraction in \[0, 1\]"),
    (lambda r: r["detection"]["per_eps"][1].update(detection_rate=1.5),
     r"\$\.detection\.per_eps\[1\]\.detection_rate.*fraction in \[0, 1\]"),
    (lambda r: r["detection"].pop("n_clean"), r"missing key 'n_clean' at \$\.detection"),
    (lambda r: r["detection"]["per_eps"][1].update(detection_rate_ci=[0.9]), r"detection_rate_ci.*at least 2"),
    (lambda r: r["detection"]["per_eps"][1].update(detection_rate_ci=[0.9, 0.5]), r"lower bound above"),
    (lambda r: r["detection"]["trained_on"].update(eps=0), r"\$\.detection\.trained_on\.eps"),
    (lambda r: r["detection"]["per_eps"][0].update(detection_rate=0.5), r"must be null when n_adversarial is 0"),
    (lambda r: r["defense"].pop("adaptive"), r"missing key 'adaptive' at \$\.defense"),
    (lambda r: r["defense"]["chain"][0].pop("differentiable"), r"missing key 'differentiable' at \$\.defense\.chain\[0\]"),
    (lambda r: r["defense"].update(adaptation=["PGD"]), r"\$\.defense\.adaptation\[0\].*BPDA, EOT"),
    (lambda r: r["defense"].update(eot_samples=0), r"\$\.defense\.eot_samples"),
    (lambda r: r["defense"].update(adaptation=["BPDA"]), r"adaptation must be empty when \$\.defense\.adaptive is false"),
    (lambda r: r["defense"].update(chain=[]), r"\$\.defense\.chain.*at least 1"),
    (lambda r: r.update(defense="feature_squeezing"), r"\$\.defense: expected object or null"),
])
def test_invalid_sections_are_refused(sc, mutate, message):
    record = copy.deepcopy(sc.to_dict())
    mutate(record)
    with pytest.raises(ScorecardFormatError, match=message):
        scio.validate(record)


def test_invalid_section_is_refused_on_load_and_before_save(sc, no_renderers, tmp_path):
    record = copy.deepcopy(sc.to_dict())
    record["detection"]["false_positive_rate"] = 1.5
    path = tmp_path / "scorecard.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ScorecardFormatError, match="fraction in"):
        al.Scorecard.load(path)
    del sc.defense["note"]
    with pytest.raises(ScorecardFormatError, match="missing key 'note' at \\$\\.defense"):
        sc.save(tmp_path / "bad")
    assert not (tmp_path / "bad" / "scorecard.json").exists()


# -- summary ----------------------------------------------------------------------------------------------
def test_summary_warns_when_not_adaptive_and_names_the_adaptation(sc):
    text = sc.summary()
    lines = text.splitlines()
    assert NOT_ADAPTIVE_WARNING in lines[1]  # right under the title, above the numbers
    assert "feature_squeezing(bit_depth=4) → gaussian_augmentation(sigma=0.05)" in lines[1]
    assert "robust accuracy 0.5833" in text and "(NOT ADAPTIVE: upper bound)" in text
    det = next(ln for ln in lines if ln.strip().startswith("detection:"))
    assert "false positives 0.050 [0.010, 0.139] of 60 clean" in det and "eps=0.1 0.880" in det
    assert "eps=0.05 n/a" in det and "not adaptive" in det
    sc.defense = defense_section(adaptive=True)
    text = sc.summary()
    assert "NOT ADAPTIVE" not in text and "adaptive: BPDA, EOT with 8 samples" in text


# -- renderers ----------------------------------------------------------------------------------------------
def _hostile(sc) -> dict:
    record = copy.deepcopy(sc.to_dict())
    record["defense"]["chain"][0]["name"] = HOSTILE
    record["defense"]["chain"][0]["params"] = {"<b>": "</td><script>x</script>"}
    record["defense"]["note"] = "a | b <img src=x onerror=alert(2)>"
    record["detection"]["detector"] = HOSTILE
    record["detection"]["note"] = "<script>y</script>"
    record["detection"]["per_eps"][1]["eps_display"] = "<i>0.1</i>"
    return record


def test_markdown_shows_warning_sections_and_escapes(sc):
    from aisec_lab.scorecard.render import render_markdown

    md = render_markdown(sc.to_dict())
    head = md.split("### Robust accuracy")[0]  # the warning sits next to the headline numbers
    assert f"> **{NOT_ADAPTIVE_WARNING}.**" in head and "(upper bound: **NOT ADAPTIVE**)" in head
    assert "### Defense" in md and "### Adversarial-input detection: binary\\_input" in md
    assert "| false positives (clean samples flagged) | 5.0% | 1.0–13.9% | 60 clean |" in md
    assert "| detected at ε = 0.1 | 88.0% | 68.8–97.5% | 25 adversarial |" in md
    assert "| detected at ε = 0.05 | n/a | 0.0–100.0% | 0 adversarial |" in md
    assert "evaluated against attacks that do not know about it" in md

    sc.defense = defense_section(adaptive=True)
    md = render_markdown(sc.to_dict())
    assert "NOT ADAPTIVE" not in md
    assert ("**Defense:** feature\\_squeezing(bit\\_depth=4) → gaussian\\_augmentation(sigma=0.05); "
            "adaptive: BPDA, EOT with 8 samples.") in md

    md = render_markdown(_hostile(sc))
    assert "<script" not in md and "<img" not in md and "<b>" not in md and "<i>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    detection_table = md.split("### Adversarial-input detection")[1].split("\n\n- ")[0]
    rows = [ln for ln in detection_table.splitlines() if ln.startswith("|")]
    assert len(rows) == 2 + 3 and len({len(re.findall(r"(?<!\\)\|", ln)) for ln in rows}) == 1


def test_html_shows_warning_sections_and_escapes(sc):
    pytest.importorskip("jinja2")
    from aisec_lab.scorecard.render import render_html

    page = render_html(sc.to_dict(), None, embed_plots=False)
    header = page.split("</header>")[0]
    assert f'<div class="banner" role="alert">{NOT_ADAPTIVE_WARNING}.' in header
    assert "(upper bound: NOT ADAPTIVE)" in header
    assert 'id="defense"' in page and 'id="detection"' in page and "art.defences.preprocessor.FeatureSqueezing" in page
    assert "5.0%" in page and "1.0–13.9%" in page and "88.0%" in page and "68.8–97.5%" in page
    assert "25 adversarial" in page and "60 clean" in page
    assert "evaluated against attacks that do not know about it" in page

    sc.defense = defense_section(adaptive=True)
    page = render_html(sc.to_dict(), None, embed_plots=False)
    assert "NOT ADAPTIVE" not in page and "adaptive: BPDA, EOT with 8 samples" in page.split("</header>")[0]

    page = render_html(_hostile(sc), None, embed_plots=False)
    assert "<script" not in page.lower() and "<img src=x" not in page and "<i>0.1" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;/td&gt;&lt;script&gt;x&lt;/script&gt;" in page and "&lt;b&gt;" in page


def test_renderers_without_sections_are_unchanged(base):
    from aisec_lab.scorecard.render import render_markdown

    golden = (DATA / "golden" / "scorecard_small.md").read_text(encoding="utf-8")
    assert render_markdown(base.to_dict()) == golden
    assert "Defense" not in golden and "detection" not in golden.lower()
