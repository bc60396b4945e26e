"""Scorecard files: schema, validation messages, atomic confined save, refusing load, to_frame, render CLI.

Uses the small real scorecard in tests/data (no model runs). The renderers are replaced by stubs
here so these tests check the plumbing quickly; the renderers have their own tests.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import aisec_lab
import aisec_lab as al
from aisec_lab._io import confined_path
from aisec_lab.cli import main
from aisec_lab.errors import ScorecardFormatError
from aisec_lab.scorecard import io as scio
from aisec_lab.scorecard.record import SCHEMA_VERSION

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURE = DATA / "scorecard_small.json"
RENDER = "aisec_lab.scorecard.render"


@pytest.fixture(scope="module")
def base():
    """The fixture scorecard, loaded once (samples included)."""
    return al.Scorecard.load(FIXTURE)


@pytest.fixture
def sc(base):
    return al.Scorecard.from_dict(copy.deepcopy(base.to_dict()), dict(base.samples))


@pytest.fixture
def record(sc):
    return copy.deepcopy(sc.to_dict())


def _canonical(d: dict) -> str:
    return json.dumps(d, indent=2, sort_keys=True)


class Stubs:
    """Fake renderer modules in sys.modules; records how they were called."""

    def __init__(self, monkeypatch):
        self.calls = []
        self.plot_names = ["robustness_curve", "gallery"]
        self.plot_target = None  # override where save_plots writes (to test confinement)
        md = types.ModuleType(f"{RENDER}.markdown")
        md.render_markdown = lambda record: self._call("md", record) or f"# {record['model']['name']}\n"
        html = types.ModuleType(f"{RENDER}.html")

        def render_html(record, samples=None, *, embed_plots=True):
            self._call("html", record, samples, embed_plots)
            return f"<html>{record['model']['name']} {sorted(samples or {})} embed={embed_plots}</html>"

        html.render_html = render_html
        plots = types.ModuleType(f"{RENDER}.plots")

        def save_plots(record, samples, out_dir):
            self._call("plots", record, samples, out_dir)
            paths = []
            for name in self.plot_names:
                p = Path(self.plot_target or Path(out_dir) / "plots") / f"{name}.png"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(b"\x89PNG fake " + name.encode())
                paths.append(p)
            return paths

        plots.save_plots = save_plots
        for mod in (md, html, plots):
            monkeypatch.setitem(sys.modules, mod.__name__, mod)

    def _call(self, *args):
        self.calls.append(args)


@pytest.fixture
def stubs(monkeypatch):
    return Stubs(monkeypatch)


@pytest.fixture
def no_renderers(monkeypatch):
    for name in ("markdown", "html", "plots"):
        monkeypatch.setitem(sys.modules, f"{RENDER}.{name}", None)  # import raises ImportError


def _write(path: Path, record) -> Path:
    path.write_text(record if isinstance(record, str) else json.dumps(record), encoding="utf-8")
    return path


def _load_error(tmp_path, record) -> ScorecardFormatError:
    with pytest.raises(ScorecardFormatError) as info:
        al.Scorecard.load(_write(tmp_path / "scorecard.json", record))
    return info.value


# -- schema ------------------------------------------------------------------------------------
def test_schema_is_valid_draft_2020_12_and_shipped_as_package_data():
    from jsonschema import Draft202012Validator

    schema = scio.load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["required"]) >= {"schema_version", "model", "data", "threat_model", "clean_accuracy", "results",
                                       "checks", "per_class", "cost", "provenance", "complete", "incomplete_reason",
                                       "skipped_attacks"}
    pyproject = (Path(aisec_lab.__file__).parents[1] / "pyproject.toml").read_text()
    assert '"scorecard/*.json"' in pyproject
    assert SCHEMA_VERSION == "1.2.0"


def test_fixture_and_to_dict_validate(base, record):
    scio.validate(record)
    scio.validate(base)  # a Scorecard is accepted too
    raw = json.loads(FIXTURE.read_text())
    scio.validate(raw)  # the 0.x fixture has the same layout


def test_load_reads_json_file_and_samples_beside_it(base):
    raw = json.loads(FIXTURE.read_text())
    assert base.schema_version == raw["schema_version"] == "1.0.0"  # a 1.0.0 file still loads, as written
    assert _canonical({**base.to_dict(), "schema_version": raw["schema_version"]}) == _canonical(raw)
    assert {"y", "clean_correct", "first_attack", "broken_by_attack", "x", "x_adv"} <= set(base.samples)
    assert base.samples["first_attack"].shape == (3, 60)


# -- save / load round trip ----------------------------------------------------------------------
def test_save_load_round_trip_is_identical(sc, stubs, tmp_path):
    sc.samples["index_sha256"] = sc.data["sha256"]
    out = tmp_path / "run"
    path = sc.save(out)
    assert path == (out / "scorecard.json").resolve()
    assert path.read_text(encoding="utf-8") == _canonical(sc.to_dict())
    assert sorted(p.name for p in out.iterdir()) == ["plots", "samples.npz", "scorecard.html", "scorecard.json",
                                                     "scorecard.md"]
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["gallery.png", "robustness_curve.png"]
    assert (out / "scorecard.md").read_text() == "# digits_cnn (pytorch)\n"
    assert (out / "scorecard.html").read_text().startswith("<html>digits_cnn (pytorch)")
    for loaded in (al.Scorecard.load(out), al.Scorecard.load(path), scio.load(str(out))):
        assert _canonical(loaded.to_dict()) == _canonical(sc.to_dict())
        assert set(loaded.samples) == set(sc.samples)
        assert loaded.samples["index_sha256"] == sc.data["sha256"]
        for key, arr in sc.samples.items():
            if isinstance(arr, np.ndarray):
                got = loaded.samples[key]
                assert got.dtype == arr.dtype and got.shape == arr.shape
                assert np.array_equal(got, arr, equal_nan=arr.dtype.kind == "f"), key
    with np.load(out / "samples.npz", allow_pickle=False) as z:  # never needs pickle
        assert "x_adv" in z.files


def test_save_overwrites_atomically_and_removes_stale_files(sc, stubs, tmp_path):
    out = tmp_path / "run"
    sc.save(out)
    (out / "notes.txt").write_text("mine")  # not a scorecard file: kept
    sc.model["name"] = "second"
    stubs.plot_names = ["robustness_curve"]  # gallery.png is now stale
    sc.samples = {}  # samples.npz is now stale
    sc.save(out)
    assert json.loads((out / "scorecard.json").read_text())["model"]["name"] == "second"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "plots", "scorecard.html", "scorecard.json",
                                                     "scorecard.md"]
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["robustness_curve.png"]
    assert not list(out.rglob("*.tmp")) and not [p for p in out.iterdir() if p.name.startswith(".")]
    assert al.Scorecard.load(out).samples == {}


def test_save_without_renderers_writes_json_and_samples(sc, no_renderers, tmp_path, caplog):
    out = tmp_path / "run"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "old.png").write_bytes(b"old")
    (out / "scorecard.md").write_text("old")
    with caplog.at_level(logging.WARNING, logger="aisec_lab.scorecard.io"):
        sc.save(out)
    assert sorted(p.name for p in out.iterdir()) == ["plots", "samples.npz", "scorecard.json"]
    assert list((out / "plots").iterdir()) == []
    assert "scorecard.md not written" in caplog.text and "scorecard.html not written" in caplog.text


def test_save_normalizes_numpy_values_and_refuses_invalid_records(sc, stubs, tmp_path, caplog):
    sc.checks[0].evidence["gain"] = np.float32(0.25)
    sc.checks[0].evidence["probes"] = np.arange(3)
    sc.checks[0].evidence["ratio"] = float("nan")
    with caplog.at_level(logging.WARNING, logger="aisec_lab.scorecard.io"):
        path = sc.save(tmp_path / "ok")
    evidence = json.loads(path.read_text())["checks"][0]["evidence"]
    assert evidence["gain"] == 0.25 and evidence["probes"] == [0, 1, 2] and evidence["ratio"] is None
    assert "saved as null" in caplog.text
    sc.clean["accuracy"] = 100.0  # a percent
    with pytest.raises(ScorecardFormatError, match=r"\$\.clean_accuracy\.value.*fraction in \[0, 1\]"):
        sc.save(tmp_path / "bad")
    assert not (tmp_path / "bad" / "scorecard.json").exists()


def test_validate_names_non_json_values(record):
    record["results"][0]["robust_accuracy"] = float("nan")
    with pytest.raises(ScorecardFormatError, match=r"\$\.results\[0\]\.robust_accuracy is not plain JSON.*non-finite"):
        scio.validate(record)


# -- bad input: load ----------------------------------------------------------------------------
def test_missing_key_is_refused_with_its_path(tmp_path, record):
    del record["model"]
    err = _load_error(tmp_path, record)
    assert "missing key 'model' at $" in str(err) and "Fix:" in str(err)
    assert isinstance(err, al.ConfigError) and isinstance(err, ValueError)
    record = json.loads(FIXTURE.read_text())
    del record["results"][1]["robust_accuracy"]
    assert "missing key 'robust_accuracy' at $.results[1]" in str(_load_error(tmp_path, record))


def test_wrong_type_is_refused_with_expected_and_got(tmp_path, record):
    record["clean_accuracy"]["value"] = "100%"
    msg = str(_load_error(tmp_path, record))
    assert "wrong type at $.clean_accuracy.value: expected number" in msg and 'got string "100%"' in msg
    record = json.loads(FIXTURE.read_text())
    record["results"][0]["attacks"]["fgsm"]["queries"] = -3
    assert "$.results[0].attacks.fgsm.queries" in str(_load_error(tmp_path, record))
    record = json.loads(FIXTURE.read_text())
    record["checks"][0]["status"] = "ok"
    assert "expected one of pass, warn, fail" in str(_load_error(tmp_path, record))


def test_out_of_range_fraction_and_unknown_key(tmp_path, record):
    record["results"][1]["robust_accuracy"] = 58.3
    assert "fraction in [0, 1] (not a percent); got 58.3" in str(_load_error(tmp_path, record))
    record = json.loads(FIXTURE.read_text())
    record["results"][1]["robust_accuracy_ci"] = [0.7, 0.4]
    assert "lower bound above its upper bound" in str(_load_error(tmp_path, record))
    record = json.loads(FIXTURE.read_text())
    record["robust"] = 1
    assert "unexpected key 'robust' at $" in str(_load_error(tmp_path, record))


def test_unknown_major_version_is_refused(tmp_path, record):
    record["schema_version"] = "2.0.0"
    err = _load_error(tmp_path, record)
    assert "unknown major schema version 2" in str(err) and "got 2.0.0" in str(err) and "upgrade aisec-lab" in str(err)
    record["schema_version"] = "one"
    assert "semantic version" in str(_load_error(tmp_path, record))
    record["schema_version"] = 1
    assert "wrong type at $.schema_version" in str(_load_error(tmp_path, record))


def test_newer_minor_version_with_new_keys_is_read(tmp_path, record):
    record["schema_version"] = "1.4.0"
    record["new_section"] = {"x": 1}
    sc = al.Scorecard.load(_write(tmp_path / "scorecard.json", record))
    assert sc.schema_version == "1.4.0" and sc.clean_accuracy == 1.0


def test_truncated_empty_and_non_object_files_are_refused(tmp_path):
    text = FIXTURE.read_text()
    err = _load_error(tmp_path, text[: len(text) // 2])
    assert "not valid JSON (truncated or corrupted?)" in str(err) and "line" in str(err)
    assert "not valid JSON" in str(_load_error(tmp_path, ""))
    assert "must be a JSON object" in str(_load_error(tmp_path, "[1, 2]"))
    assert "non-standard JSON number" in str(_load_error(tmp_path, text.replace('"value": 1.0', '"value": NaN')))
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ScorecardFormatError, match="not UTF-8"):
        al.Scorecard.load(tmp_path / "bin.json")
    with pytest.raises(al.ConfigError, match="no scorecard file found"):
        al.Scorecard.load(tmp_path / "missing")


def test_stale_pickled_or_truncated_samples_are_refused(sc, stubs, tmp_path):
    out = tmp_path / "run"
    sc.save(out)
    npz = out / "samples.npz"
    good = npz.read_bytes()
    np.savez(npz, y=np.zeros(7, dtype=np.int64))
    with pytest.raises(ScorecardFormatError, match=r"does not match its scorecard: y should have shape \(60,\)"):
        al.Scorecard.load(out)
    np.savez(npz, y=np.array([object(), 1], dtype=object))
    with pytest.raises(ScorecardFormatError, match="cannot be read"):
        al.Scorecard.load(out)
    npz.write_bytes(good[: len(good) // 2])
    with pytest.raises(ScorecardFormatError, match="cannot be read"):
        al.Scorecard.load(out)
    samples = dict(sc.samples, index_sha256="0" * 64)
    np.savez(npz, **samples)
    with pytest.raises(ScorecardFormatError, match="belongs to other data"):
        al.Scorecard.load(out)
    flipped = dict(sc.samples)
    flipped["first_attack"] = np.where(sc.samples["first_attack"] == -1, 0, sc.samples["first_attack"])
    np.savez(npz, **flipped)
    with pytest.raises(ScorecardFormatError, match="samples robust, the scorecard says"):
        al.Scorecard.load(out)


def test_save_refuses_object_samples(sc, tmp_path, no_renderers):
    sc.samples["notes"] = np.array([{"a": 1}], dtype=object)
    with pytest.raises(al.ConfigError, match="pickle"):
        sc.save(tmp_path / "run")


# -- confinement -----------------------------------------------------------------------------------
def test_output_path_escaping_its_directory_is_refused(sc, stubs, tmp_path):
    with pytest.raises(al.ConfigError, match="escapes the output directory"):
        confined_path(tmp_path / "run", "../x")
    with pytest.raises(al.ConfigError, match="escapes the output directory"):
        confined_path(tmp_path / "run", tmp_path / "abs")
    # a scorecard file that is a symlink to somewhere else is not followed out of the directory
    out = tmp_path / "run"
    out.mkdir()
    victim = tmp_path / "victim.json"
    victim.write_text("keep")
    (out / "scorecard.json").symlink_to(victim)
    with pytest.raises(al.ConfigError, match="escapes the output directory"):
        sc.save(out)
    assert victim.read_text() == "keep"
    # a plot renderer writing outside the directory it was given is refused before anything is written
    (out / "scorecard.json").unlink()
    stubs.plot_target = tmp_path / "elsewhere"
    with pytest.raises(al.ConfigError, match="escapes the output directory"):
        sc.save(out)
    assert sorted(p.name for p in out.iterdir()) == []


def test_save_refuses_a_file_as_directory(sc, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(al.ConfigError, match="not a directory"):
        sc.save(f)
    with pytest.raises(al.ConfigError, match="needs a Scorecard"):
        scio.save({"not": "a scorecard"}, tmp_path)


# -- to_frame, notebook display ---------------------------------------------------------------------
def test_to_frame_exhaustive_and_cascade(sc):
    df = sc.to_frame()
    assert list(df.columns) == ["fgsm", "pgd", "square", "worst_case"]
    assert df.index.name == "eps" and list(df.index) == [0.05, 0.1, 0.2]
    assert df.loc[0.1, "pgd"] == pytest.approx(0.5833333333333334)
    assert df.loc[0.1, "worst_case"] == pytest.approx(sc.robust_accuracy(0.1))
    assert df.attrs["values"] == "robust_accuracy"
    sc.threat_model["exhaustive"] = False
    df = sc.to_frame()
    assert df.attrs["values"] == "broken_first"
    assert list(df.loc[0.1, ["fgsm", "pgd", "square"]]) == [22, 3, 0]


def test_repr_html_uses_renderer_without_plots_or_escapes_summary(sc, stubs, monkeypatch):
    assert sc._repr_html_().endswith("embed=False</html>")
    monkeypatch.setitem(sys.modules, f"{RENDER}.html", None)
    sc.model["name"] = "<script>alert(1)</script>"
    html = sc._repr_html_()
    assert html.startswith("<pre>") and "<script>" not in html and "&lt;script&gt;" in html


# -- render CLI ------------------------------------------------------------------------------------
def test_cli_render_md_html_to_stdout_and_file(stubs, tmp_path, capsys):
    assert main(["render", str(FIXTURE), "--format", "md"]) == 0
    assert capsys.readouterr().out == "# digits_cnn (pytorch)\n"
    out = tmp_path / "report.html"
    assert main(["render", str(FIXTURE), "--format", "html", "--out", str(out)]) == 0
    assert out.read_text().startswith("<html>digits_cnn (pytorch) ['adv_pred'")
    assert "written to" in capsys.readouterr().out


def test_cli_render_exports(monkeypatch, capsys):
    export = types.ModuleType("aisec_lab.export")
    export.model_index = lambda sc: f"model-index:\n- name: {sc.model['name']}\n"
    export.model_card_toolkit = lambda sc: {"model_details": {"name": sc.model["name"]}}
    monkeypatch.setitem(sys.modules, "aisec_lab.export", export)
    monkeypatch.setattr(aisec_lab, "export", export, raising=False)
    assert main(["render", str(FIXTURE), "--format", "model-index"]) == 0
    assert capsys.readouterr().out == "model-index:\n- name: digits_cnn (pytorch)\n"
    assert main(["render", str(FIXTURE), "--format", "mct"]) == 0
    assert json.loads(capsys.readouterr().out) == {"model_details": {"name": "digits_cnn (pytorch)"}}


def test_cli_render_bad_input_exits_2(no_renderers, tmp_path, capsys):
    assert main(["render", str(FIXTURE), "--format", "md"]) == 2
    assert "could not be imported" in capsys.readouterr().err
    bad = _write(tmp_path / "scorecard.json", FIXTURE.read_text()[:100])
    assert main(["render", str(bad), "--format", "md"]) == 2
    assert "truncated" in capsys.readouterr().err


def test_validate_without_jsonschema_still_checks_version_and_keys(record, monkeypatch):
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    scio._validator.cache_clear()
    try:
        scio.validate(record)
        bad = dict(record)
        del bad["results"]
        with pytest.raises(ScorecardFormatError, match="missing key 'results'"):
            scio.validate(bad)
        with pytest.raises(ScorecardFormatError, match="unknown major schema version 3"):
            scio.validate(dict(record, schema_version="3.0.0"))
    finally:
        monkeypatch.undo()
        scio._validator.cache_clear()
