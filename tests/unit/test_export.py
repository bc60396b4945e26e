"""Exports of a scorecard: Hugging Face model-index, Model Card Toolkit JSON, in-place model-card update.

Fast (no model, no attack): everything is built from the small scorecard fixture. Nothing here uses
the network; huggingface_hub only builds and parses YAML.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import stat
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from urllib.parse import urlparse

import pytest

import aisec_lab as al
from aisec_lab import export

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "data" / "scorecard_small.json"
GOLDEN = REPO / "tests" / "data" / "golden" / "model_index_small.yaml"
SCHEMAS = REPO.parent / "shared" / "schemas"
MCT_SCHEMA = SCHEMAS / "mct_model_card_v0.0.2.schema.json"
START, END = export.START_MARKER, export.END_MARKER


@pytest.fixture()
def record() -> dict:
    with open(FIXTURE, encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture()
def sc(record):
    return al.Scorecard.from_dict(record)


@pytest.fixture()
def hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # belt and braces: nothing here may reach the Hub
    return pytest.importorskip("huggingface_hub")


def _incomplete(record: dict) -> dict:
    rec = copy.deepcopy(record)
    rec["complete"] = False
    rec["incomplete_reason"] = "time budget of 5 s exhausted"
    rec["results"][-1]["complete"] = False
    rec["checks"][0] = {**rec["checks"][0], "status": "fail", "summary": "doubling the iterations raises success"}
    rec["checks"][1] = {**rec["checks"][1], "status": "warn", "summary": "logits differ between passes"}
    rec["skipped_attacks"] = [{"attack": "square", "reason": "query budget"}]
    return rec


# -- import hygiene ----------------------------------------------------------------------------------------
def test_import_export_is_light():
    code = textwrap.dedent("""
        import sys, aisec_lab.export
        heavy = {'torch', 'tensorflow', 'keras', 'art', 'huggingface_hub', 'matplotlib'}
        print(','.join(sorted({m.split('.')[0] for m in sys.modules} & heavy)))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_missing_huggingface_hub_names_the_extra(sc, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # `import huggingface_hub` now raises ImportError
    with pytest.raises(al.MissingDependencyError) as info:
        export.model_index(sc)
    assert isinstance(info.value, ImportError)
    assert "pip install 'aisec-lab[export]'" in str(info.value)
    assert "huggingface_hub" in str(info.value)
    assert export.model_card_toolkit(sc, graphics=False)["schema_version"] == "0.0.2"  # needs no extra


# -- Hugging Face model-index ------------------------------------------------------------------------------
def test_model_index_golden(sc, hub):
    text = export.model_index(sc)
    if os.environ.get("AISEC_LAB_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.exists(), "run with AISEC_LAB_UPDATE_GOLDEN=1 to create the golden file"
    assert text == GOLDEN.read_text(encoding="utf-8"), \
        "model-index changed; if on purpose, rerun with AISEC_LAB_UPDATE_GOLDEN=1 and review the diff"


def _parse_card(hub, fragment: str):
    card = hub.ModelCard(f"---\n{fragment}---\n\n# A model\n\nText.\n")
    return card.data.model_name, card.data.eval_results


def test_model_index_reads_back_to_the_same_numbers(sc, hub):
    fragment = export.model_index(sc)
    name, results = _parse_card(hub, fragment)
    assert name == sc.model["name"]
    assert len(results) == 1 + len(sc.results)
    clean, robust = results[0], results[1:]
    assert clean.metric_type == "accuracy"
    assert clean.metric_value == sc.clean_accuracy
    assert tuple(clean.metric_args["ci"]) == sc.clean_accuracy_ci
    for r, res in zip(robust, sc.results):
        assert r.metric_type == "robust_accuracy"
        assert r.metric_value == sc.robust_accuracy(res["eps"])
        assert tuple(r.metric_args["ci"]) == sc.robust_accuracy_ci(res["eps"])
        assert r.metric_args["eps"] == res["eps"]
        assert res["eps_display"] in r.metric_name and "L∞" in r.metric_name
    for r in results:
        assert r.task_type == "image-classification"
        assert r.dataset_type == "digits" and r.dataset_split == "test"
        assert not r.verified  # self-reported numbers, never verified
    assert "verified" not in fragment and "verifyToken" not in fragment
    # the lower-level parser agrees
    import yaml

    name2, results2 = hub.repocard_data.model_index_to_eval_results(yaml.safe_load(fragment)["model-index"])
    assert name2 == name and [r.metric_value for r in results2] == [r.metric_value for r in results]


def test_model_index_args_describe_the_threat_model(sc, hub):
    _, results = _parse_card(hub, export.model_index(sc))
    for r in results[1:]:
        args = r.metric_args
        assert args["norm"] == "linf"
        assert args["attacks"] == ["fgsm", "pgd", "square"]
        assert args["n"] == 60 and args["seed"] == 0
        assert args["targeted"] is False and args["complete"] is True
        assert 0.0 <= args["ci"][0] <= r.metric_value <= args["ci"][1] <= 1.0
    assert results[0].metric_args["n"] == 60


def test_model_index_options_and_plain_record(sc, record, hub):
    text = export.model_index(record, task_type="image-classification", dataset_type="sklearn/digits",
                              model_name="my-org/digits-cnn")
    name, results = _parse_card(hub, text)
    assert name == "my-org/digits-cnn"
    assert {r.dataset_type for r in results} == {"sklearn/digits"}
    # a Scorecard and its record give the same YAML
    assert export.model_index(record) == export.model_index(sc)


@pytest.mark.parametrize("kwargs", [{"task_type": ""}, {"task_type": None}, {"dataset_type": 3},
                                    {"model_name": "  "}])
def test_model_index_bad_options(sc, hub, kwargs):
    with pytest.raises(al.ConfigError):
        export.model_index(sc, **kwargs)


def test_model_index_hostile_model_name_stays_data(record, hub):
    rec = copy.deepcopy(record)
    rec["model"]["name"] = "<script>alert(1)</script>\n---\nmodel-index: [oops: 'x'"
    name, results = _parse_card(hub, export.model_index(rec))
    assert name == rec["model"]["name"]
    assert [r.metric_value for r in results][0] == 1.0


def test_model_index_incomplete_run_says_upper_bound(record, hub):
    rec = _incomplete(record)
    _, results = _parse_card(hub, export.model_index(rec))
    last = results[-1]
    assert "upper bound" in last.metric_name and last.metric_args["complete"] is False
    assert all(r.metric_args["complete"] for r in results[1:-1])


def test_exports_refuse_what_is_not_a_scorecard(record, hub):
    with pytest.raises(al.ConfigError, match="Scorecard"):
        export.model_index(["not", "a", "scorecard"])
    broken = {k: v for k, v in record.items() if k != "results"}
    with pytest.raises(al.ConfigError, match="missing keys"):
        export.model_card_toolkit(broken, graphics=False)
    bad = copy.deepcopy(record)
    del bad["results"][0]["robust_accuracy_ci"]
    with pytest.raises(al.ConfigError, match="malformed"):
        export.model_index(bad)


# -- Model Card Toolkit JSON --------------------------------------------------------------------------------
def _validate_mct(doc: dict) -> None:
    if not MCT_SCHEMA.is_file():
        pytest.skip(f"the Model Card Toolkit schema is not available at {MCT_SCHEMA}")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(MCT_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    json.dumps(doc, allow_nan=False)  # plain JSON


def test_mct_validates_against_the_published_schema(sc):
    doc = export.model_card_toolkit(sc, graphics=False)
    _validate_mct(doc)
    assert doc["schema_version"] == "0.0.2"
    for ref in doc["model_details"]["references"]:
        url = urlparse(ref["reference"])
        assert url.scheme == "https" and url.netloc, ref


def test_mct_metrics_carry_the_numbers_and_cis(sc):
    doc = export.model_card_toolkit(sc, graphics=False)
    metrics = doc["quantitative_analysis"]["performance_metrics"]
    clean = metrics[0]
    assert clean["type"] == "accuracy" and float(clean["value"]) == sc.clean_accuracy
    assert (float(clean["confidence_interval"]["lower_bound"]),
            float(clean["confidence_interval"]["upper_bound"])) == sc.clean_accuracy_ci
    worst = [m for m in metrics if m["type"] == "robust_accuracy" and "worst case" in m["slice"]]
    assert len(worst) == len(sc.results)
    for m, res in zip(worst, sc.results):
        assert float(m["value"]) == sc.robust_accuracy(res["eps"])
        ci = m["confidence_interval"]
        assert (float(ci["lower_bound"]), float(ci["upper_bound"])) == sc.robust_accuracy_ci(res["eps"])
        assert f"ε={res['eps_display']}" in m["slice"] and "L∞" in m["slice"]
    # exhaustive run: each attack's own number is reported too, with its slice
    pgd = [m for m in metrics if "pgd only" in m["slice"]]
    assert [float(m["value"]) for m in pgd] == [sc.robust_accuracy(e, "pgd") for e in sc.eps]


def test_mct_names_nist_and_atlas(sc):
    doc = export.model_card_toolkit(sc, graphics=False)
    text = json.dumps(doc, ensure_ascii=False)
    assert "NIST AI RMF MEASURE 2.7" in doc["model_details"]["documentation"]
    for technique in {a["atlas_technique"] for a in sc.threat_model["attacks"]}:
        assert technique in doc["model_details"]["documentation"]
        assert f"https://atlas.mitre.org/techniques/{technique}" in text
    risk = doc["considerations"]["ethical_considerations"][0]
    assert "AML.T0043" in risk["name"] and "MEASURE 2.7" in risk["mitigation_strategy"]


def test_mct_limitations_from_checks_and_incomplete_run(record, sc):
    base = export.model_card_toolkit(sc, graphics=False)["considerations"]["limitations"]
    assert len(base) == 1 and "upper bound" in base[0]["description"]  # all checks pass: the general caveat only
    doc = export.model_card_toolkit(_incomplete(record), graphics=False)
    _validate_mct(doc)
    lims = [x["description"] for x in doc["considerations"]["limitations"]]
    assert any("convergence FAIL" in x for x in lims)
    assert any("determinism WARN" in x for x in lims)
    assert any("incomplete" in x and "time budget" in x and "ε=0.2" in x for x in lims)
    assert any("square" in x and "query budget" in x for x in lims)
    assert not any("eps_monotonic" in x for x in lims)  # passed checks are not limitations
    last = [m for m in doc["quantitative_analysis"]["performance_metrics"] if "ε=0.2" in m["slice"]]
    assert last and all("upper bound" in m["slice"] for m in last)


def test_mct_hostile_model_name_is_plain_data(record):
    rec = copy.deepcopy(record)
    rec["model"]["name"] = '<script>alert("x")</script>'
    doc = export.model_card_toolkit(rec, graphics=False)
    _validate_mct(doc)
    assert doc["model_details"]["name"] == rec["model"]["name"]


def test_mct_graphics_wiring_with_a_stand_in(sc, monkeypatch):
    """The graphics come from scorecard.render.plots; a stand-in checks the wiring, whatever its state."""
    png = b"\x89PNG\r\n\x1a\nfake"
    calls = []
    fake = types.ModuleType("aisec_lab.scorecard.render.plots")
    fake.figures = lambda record, samples=None: calls.append((record, samples)) or {"curve": "F1", "per_class": "F2"}
    fake.figure_png_base64 = lambda fig: base64.b64encode(png + fig.encode()).decode("ascii")
    monkeypatch.setitem(sys.modules, "aisec_lab.scorecard.render.plots", fake)
    doc = export.model_card_toolkit(sc)
    _validate_mct(doc)
    coll = doc["quantitative_analysis"]["graphics"]["collection"]
    assert [g["name"] for g in coll] == ["curve", "per_class"]
    assert base64.b64decode(coll[0]["image"]).startswith(png)
    assert calls and calls[0][0] == sc.to_dict()
    assert "graphics" not in export.model_card_toolkit(sc, graphics=False)["quantitative_analysis"]


def test_mct_without_plotting_module_skips_graphics(sc, monkeypatch):
    monkeypatch.setitem(sys.modules, "aisec_lab.scorecard.render.plots", None)  # import raises ImportError
    doc = export.model_card_toolkit(sc)
    _validate_mct(doc)
    assert "graphics" not in doc["quantitative_analysis"]


def test_mct_graphics_failure_keeps_the_card(sc, monkeypatch, caplog):
    fake = types.ModuleType("aisec_lab.scorecard.render.plots")

    def boom(record, samples=None):
        raise RuntimeError("no display")

    fake.figures, fake.figure_png_base64 = boom, lambda fig: ""
    monkeypatch.setitem(sys.modules, "aisec_lab.scorecard.render.plots", fake)
    doc = export.model_card_toolkit(sc)
    assert "graphics" not in doc["quantitative_analysis"]
    assert "no display" in caplog.text


def test_mct_without_matplotlib_skips_graphics_quietly(sc, monkeypatch, caplog):
    fake = types.ModuleType("aisec_lab.scorecard.render.plots")

    def no_matplotlib(record, samples=None):
        raise al.MissingDependencyError("matplotlib is required to draw plots but could not be imported")

    fake.figures, fake.figure_png_base64 = no_matplotlib, lambda fig: ""
    monkeypatch.setitem(sys.modules, "aisec_lab.scorecard.render.plots", fake)
    with caplog.at_level("WARNING"):
        doc = export.model_card_toolkit(sc)
    _validate_mct(doc)
    assert "graphics" not in doc["quantitative_analysis"]
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_mct_real_graphics_are_base64_png(sc):
    try:
        from aisec_lab.scorecard.render import plots  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"plotting module not importable: {exc}")
    doc = export.model_card_toolkit(sc)
    _validate_mct(doc)
    coll = doc["quantitative_analysis"]["graphics"]["collection"]
    assert coll
    for g in coll:
        assert base64.b64decode(g["image"], validate=True).startswith(b"\x89PNG\r\n\x1a\n"), g["name"]


# -- in-place model card update -----------------------------------------------------------------------------
def _stand_in_markdown(record: dict) -> str:
    return (f"## Adversarial robustness\n\nModel {record['model']['name']}: clean accuracy "
            f"{record['clean_accuracy']['value']}\n")


@pytest.fixture()
def fake_md(monkeypatch):
    """A deterministic stand-in for scorecard.render.markdown (the real one is tested separately)."""
    fake = types.ModuleType("aisec_lab.scorecard.render.markdown")
    fake.render_markdown = _stand_in_markdown
    monkeypatch.setitem(sys.modules, "aisec_lab.scorecard.render.markdown", fake)
    return fake


def _section(record: dict, nl: str = "\n") -> bytes:
    body = _stand_in_markdown(record).strip("\n")
    return f"{START}\n{body}\n{END}".replace("\n", nl).encode()


def test_update_creates_a_missing_card(tmp_path, sc, fake_md):
    path = tmp_path / "README.md"
    assert export.update_model_card(path, sc) is True
    assert path.read_bytes() == _section(sc.to_dict()) + b"\n"
    assert export.update_model_card(path, sc) is False


def test_update_appends_when_markers_are_absent(tmp_path, sc, fake_md):
    path = tmp_path / "README.md"
    original = "---\nlicense: mit\n---\n\n# My model\n\nSome text with ünïcode.\n".encode()
    path.write_bytes(original)
    assert export.update_model_card(str(path), sc) is True
    new = path.read_bytes()
    assert new.startswith(original)
    assert new == original + b"\n" + _section(sc.to_dict()) + b"\n"
    # no trailing newline in the original: a blank line still separates the section
    path.write_bytes(b"# Title")
    export.update_model_card(path, sc)
    assert path.read_bytes() == b"# Title\n\n" + _section(sc.to_dict()) + b"\n"


def test_update_replaces_between_markers_byte_for_byte(tmp_path, record, sc, fake_md):
    path = tmp_path / "README.md"
    before = b"---\nlicense: mit\n---\n# Card  \n\ttabs\xc2\xa0and trailing spaces   \n\n"
    after = b"\n\n## After\nno final newline"
    path.write_bytes(before + f"{START}\nold stuff\nmore old stuff\n{END}".encode() + after)
    stat_before = path.stat()
    assert export.update_model_card(path, sc) is True
    assert path.read_bytes() == before + _section(sc.to_dict()) + after
    # idempotent: the second call writes nothing
    mtime = path.stat().st_mtime_ns
    inode = path.stat().st_ino
    assert export.update_model_card(path, sc) is False
    assert path.stat().st_mtime_ns == mtime and path.stat().st_ino == inode
    # a new scorecard replaces only the section
    rec = copy.deepcopy(record)
    rec["clean_accuracy"]["value"] = 0.95
    assert export.update_model_card(path, rec) is True
    assert path.read_bytes() == before + _section(rec) + after
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(stat_before.st_mode)


def test_update_keeps_crlf_and_file_mode(tmp_path, sc, fake_md):
    path = tmp_path / "README.md"
    original = b"# Card\r\n\r\nText.\r\n"
    path.write_bytes(original)
    os.chmod(path, 0o644)
    assert export.update_model_card(path, sc) is True
    new = path.read_bytes()
    assert new == original + b"\r\n" + _section(sc.to_dict(), "\r\n") + b"\r\n"
    assert new.count(b"\n") == new.count(b"\r\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert export.update_model_card(path, sc) is False
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind


def test_update_follows_a_symlink(tmp_path, sc, fake_md):
    real = tmp_path / "docs" / "card.md"
    real.parent.mkdir()
    real.write_text("# Card\n")
    link = tmp_path / "README.md"
    link.symlink_to(real)
    assert export.update_model_card(link, sc) is True
    assert link.is_symlink()
    assert real.read_bytes().startswith(b"# Card\n\n" + START.encode())


@pytest.mark.parametrize("content", [
    f"# Card\n{START}\nsection\n",                          # start without end
    f"# Card\nsection\n{END}\n",                            # end without start
    f"{END}\nsection\n{START}\n",                           # wrong order
    f"{START}\na\n{END}\n{START}\nb\n{END}\n",              # duplicated section
    f"{START}\n{START}\na\n{END}\n",                        # duplicated start
])
def test_update_refuses_unbalanced_markers(tmp_path, sc, fake_md, content):
    path = tmp_path / "README.md"
    path.write_text(content)
    with pytest.raises(al.ConfigError, match="exactly one scorecard section") as info:
        export.update_model_card(path, sc)
    assert "line" in str(info.value)
    assert path.read_text() == content  # untouched


def test_update_bad_arguments(tmp_path, sc, fake_md):
    with pytest.raises(al.ConfigError, match="directory"):
        export.update_model_card(tmp_path, sc)
    path = tmp_path / "README.md"
    with pytest.raises(al.ConfigError):
        export.update_model_card(path, sc, start_marker="<!-- x -->", end_marker="<!-- x -->")
    with pytest.raises(al.ConfigError):
        export.update_model_card(path, sc, start_marker="")
    with pytest.raises(al.ConfigError):
        export.update_model_card(path, sc, start_marker="<!-- a\n-->")
    with pytest.raises(al.ConfigError):
        export.update_model_card(path, "not a scorecard")
    assert not path.exists()


def test_update_custom_markers(tmp_path, sc, fake_md):
    path = tmp_path / "README.md"
    path.write_text("intro\n<!-- s -->\nold\n<!-- e -->\noutro\n")
    assert export.update_model_card(path, sc, start_marker="<!-- s -->", end_marker="<!-- e -->") is True
    text = path.read_text()
    assert text.startswith("intro\n<!-- s -->\n## Adversarial robustness") and text.endswith("<!-- e -->\noutro\n")


def test_update_refuses_a_marker_inside_the_rendered_section(tmp_path, record, fake_md):
    rec = copy.deepcopy(record)
    rec["model"]["name"] = f"evil {END}"
    path = tmp_path / "README.md"
    path.write_text("# Card\n")
    with pytest.raises(al.ConfigError, match="marker"):
        export.update_model_card(path, rec)
    assert path.read_text() == "# Card\n"


def test_update_with_the_real_markdown_renderer(tmp_path, record, sc):
    try:
        from aisec_lab.scorecard.render.markdown import render_markdown
    except ImportError as exc:
        pytest.skip(f"markdown renderer not importable yet: {exc}")
    path = tmp_path / "README.md"
    before, after = b"# Card\n\nIntro.\n\n", b"\n\n## License\nMIT\n"
    path.write_bytes(before + f"{START}\n{END}".encode() + after)
    assert export.update_model_card(path, sc) is True
    new = path.read_bytes()
    assert new.startswith(before + START.encode()) and new.endswith(END.encode() + after)
    assert render_markdown(sc.to_dict()).strip("\n").encode() in new
    assert export.update_model_card(path, sc) is False
    # a hostile model name is escaped by the renderer and does not break the section
    rec = copy.deepcopy(record)
    rec["model"]["name"] = f"<script>alert(1)</script> {END}"
    assert export.update_model_card(path, rec) is True
    assert export.update_model_card(path, rec) is False
    assert path.read_bytes().count(END.encode()) == 1
