"""Grid files: expansion, stable job ids, and the bad inputs load_grid refuses."""

from __future__ import annotations

import importlib.util
import textwrap

import pytest

import aisec_lab as al
from aisec_lab.batch import DEFAULT_NOTEBOOK, Grid, Job, load_grid

GRID_YAML = """
name: digits sweep
notebook: 01_scorecard
base:
  dataset: digits
  n_samples: 10
grid:
  model: [digits_cnn, digits_mlp]
  attacks: [fast, [fgsm, pgd]]
  eps: [[0.05], [0.1, 0.2]]
"""


def _has_check_parameters() -> bool:
    if importlib.util.find_spec("aisec_lab.notebooks") is None:
        return False
    import aisec_lab.notebooks as nb

    return hasattr(nb, "check_parameters")


needs_check = pytest.mark.skipif(not _has_check_parameters(),
                                 reason="aisec_lab.notebooks.check_parameters is not there yet")


def write(tmp_path, text, name="grid.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_expansion_is_the_cartesian_product_in_a_stable_order(tmp_path):
    grid = load_grid(write(tmp_path, GRID_YAML), validate=False)
    assert grid.name == "digits sweep" and grid.notebook == "01_scorecard"
    jobs = grid.jobs()
    assert len(jobs) == len(grid) == 8
    assert jobs[0].params == {"dataset": "digits", "n_samples": 10, "model": "digits_cnn", "attacks": "fast",
                              "eps": [0.05]}
    assert jobs[-1].params["model"] == "digits_mlp" and jobs[-1].params["attacks"] == ["fgsm", "pgd"]
    assert jobs[-1].params["eps"] == [0.1, 0.2]
    assert len({j.job_id for j in jobs}) == 8
    assert all(len(j.job_id) == 12 and int(j.job_id, 16) >= 0 for j in jobs)
    assert "model=\"digits_cnn\"" in jobs[0].label and "n_samples" not in jobs[0].label


def test_job_ids_are_stable_and_depend_only_on_notebook_and_parameters(tmp_path):
    a = load_grid(write(tmp_path, GRID_YAML), validate=False).jobs()
    reordered = """
    grid:
      eps: [[0.05], [0.1, 0.2]]
      model: [digits_cnn, digits_mlp]
      attacks: [fast, [fgsm, pgd]]
    base: {n_samples: 10, dataset: digits}
    notebook: 01_scorecard.ipynb
    name: another name
    """
    b = load_grid(write(tmp_path, reordered, "b.yaml"), validate=False).jobs()
    assert {j.job_id for j in a} == {j.job_id for j in b}
    # the id is a pure function of (notebook, params); tuples and lists are the same value
    job = Job("01_scorecard", {"model": "digits_cnn", "eps": [0.1]})
    assert job.job_id == Job("01_scorecard", {"eps": (0.1,), "model": "digits_cnn"}).job_id
    assert job.job_id != Job("01_scorecard", {"model": "digits_cnn", "eps": [0.2]}).job_id
    assert job.job_id != Job("02_other", {"model": "digits_cnn", "eps": [0.1]}).job_id
    assert job.job_id != Job("01_scorecard", {"model": "digits_cnn", "eps": [0.1], "seed": 1}).job_id


def test_job_id_is_the_sha256_of_the_canonical_json():
    import hashlib
    import json

    job = Job("01_scorecard", {"model": "m", "eps": [0.1]})
    text = json.dumps({"notebook": "01_scorecard", "params": {"eps": [0.1], "model": "m"}}, sort_keys=True,
                      separators=(",", ":"))
    assert job.job_id == hashlib.sha256(text.encode()).hexdigest()[:12]


def test_dict_input_defaults_and_duplicates():
    grid = load_grid({"base": {"model": "m"}}, validate=False)
    assert grid.notebook == DEFAULT_NOTEBOOK and len(grid.jobs()) == 1
    assert grid.jobs()[0].params == {"model": "m"}
    dup = load_grid({"grid": {"eps": [[0.1], [0.1], [0.2]]}}, validate=False)
    assert len(dup.jobs()) == 2
    assert load_grid(dup, validate=False) is dup


@pytest.mark.parametrize("text, match", [
    ("grids: {model: [a]}\n", "unknown top-level key 'grids'.*did you mean 'grid'"),
    ("basis: {model: a}\n", "did you mean 'base'"),
    ("model: a\n", "unknown top-level key 'model'.*under base"),
    ("grid: {eps: 0.1}\n", "grid.eps must be a list"),
    ("grid: {eps: []}\n", "empty list"),
    ("base: {eps: [0.1]}\ngrid: {eps: [[0.2]]}\n", "both in base and in grid"),
    ("base: {output_dir: x}\n", "'output_dir' is set by the batch"),
    ("base: [1, 2]\n", "base must be a mapping"),
    ("- a\n- b\n", "must hold a mapping"),
    ("grid: {model: [a}\n", "not valid YAML"),
    ("base: {when: 2024-01-01}\n", "not a plain value"),
    ("base: {eps: .nan}\n", "not a finite number"),
    ("notebook: 3\n", "notebook must be"),
])
def test_bad_grid_files(tmp_path, text, match):
    with pytest.raises(al.ConfigError, match=match):
        load_grid(write(tmp_path, text), validate=False)


def test_yaml_is_read_with_the_safe_loader(tmp_path):
    marker = tmp_path / "pwned"
    text = f"base: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(al.ConfigError, match="safe loader"):
        load_grid(write(tmp_path, text), validate=False)
    assert not marker.exists()


def test_missing_grid_file_and_wrong_types(tmp_path):
    with pytest.raises(al.ConfigError, match="grid file not found"):
        load_grid(tmp_path / "nope.yaml")
    with pytest.raises(al.ConfigError, match="not a file"):
        load_grid(tmp_path)
    with pytest.raises(al.ConfigError, match="YAML file path or a mapping"):
        load_grid(42)


def test_huge_grid_is_refused():
    with pytest.raises(al.ConfigError, match="expands to"):
        load_grid({"grid": {f"p{i}": list(range(10)) for i in range(6)}}, validate=False)


def test_relative_notebook_path_resolves_against_the_grid_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine.ipynb").write_text("{}")
    grid = load_grid(write(tmp_path, "notebook: sub/mine.ipynb\n"), validate=False)
    job = grid.jobs()[0]
    assert job.notebook == "sub/mine.ipynb"  # hashed as written: moving the folder keeps the ids
    assert job.notebook_ref == str((tmp_path / "sub" / "mine.ipynb").resolve())


@needs_check
def test_unknown_parameter_is_refused_with_the_job_named(tmp_path):
    match = "grid job 1 of 2 .*unknown parameter 'n_sampels'.*did you mean 'n_samples'"
    with pytest.raises(al.ConfigError, match=match):
        load_grid({"base": {"n_sampels": 10}, "grid": {"eps": [[0.1], [0.2]]}})


@needs_check
def test_ill_typed_parameter_is_refused(tmp_path):
    with pytest.raises(al.ConfigError):
        load_grid({"grid": {"eps": ["0.1"]}})


@needs_check
def test_missing_notebook_is_refused(tmp_path):
    with pytest.raises(al.AisecLabError):
        load_grid({"notebook": "99_no_such_notebook", "base": {}})
