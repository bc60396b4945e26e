"""The committed notebooks: stripped and thin, executed by papermill with tiny parameters, strict parameters.

``03_explore`` is executed by ``test_explore_notebook.py`` and ``02_adversarial_training`` by
``test_training_notebook.py``; every other packaged notebook must have a tiny run here (``TINY``), so a new
notebook cannot land without being executed in the suite.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest

import aisec_lab as al
from aisec_lab import notebooks as nbs
from aisec_lab.errors import ConfigError, NotebookExecutionError, UnknownComponentError

papermill = pytest.importorskip("papermill")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[2]
COMMITTED = sorted((REPO / "notebooks").glob("*.ipynb"))
TINY_SCORECARD = {"n_samples": 20, "attacks": ["fgsm"], "eps": [0.1]}
EXECUTED_ELSEWHERE = {"03_explore",  # tests/notebooks/test_explore_notebook.py
                      "02_adversarial_training"}  # tests/notebooks/test_training_notebook.py
EXECUTED_HERE = {"01_scorecard", "04_compare_scorecards"}
TIMEOUT_S = 300


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _outputs(nb: dict, cell_id: str) -> list[dict]:
    return next(c for c in nb["cells"] if c.get("id") == cell_id)["outputs"]


@pytest.fixture
def no_kernel(monkeypatch):
    """Fail the test if papermill is asked to execute anything: bad input must be refused before a kernel starts."""
    def boom(*args, **kwargs):
        raise AssertionError("papermill.execute_notebook was called")

    monkeypatch.setattr(papermill, "execute_notebook", boom)


# -- the committed files ----------------------------------------------------------------------------------
def test_committed_notebooks_are_found_and_packaged():
    assert COMMITTED, "no notebooks in notebooks/"
    assert nbs.list_notebooks() == [p.stem for p in COMMITTED]
    assert {"01_scorecard", "04_compare_scorecards"} <= set(nbs.list_notebooks())
    # the packaged folder (what the wheel ships) is the repository's notebooks/ folder
    assert nbs.notebook_path("01_scorecard").resolve() == (REPO / "notebooks" / "01_scorecard.ipynb").resolve()
    assert '"_notebooks/*.ipynb"' in (REPO / "pyproject.toml").read_text(encoding="utf-8")


def test_every_packaged_notebook_is_executed_in_the_suite():
    missing = set(nbs.list_notebooks()) - EXECUTED_HERE - EXECUTED_ELSEWHERE
    assert not missing, f"add a tiny papermill run for {sorted(missing)} to tests/notebooks/"


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_committed_notebook_is_stripped_and_thin(path):
    assert re.fullmatch(r"\d\d_[a-z0-9]+(_[a-z0-9]+)*", path.stem), "name notebooks NN_verb_object (lower case)"
    nb = _load(path)
    assert nb["cells"][0]["cell_type"] == "markdown", "start with a markdown cell explaining the notebook"
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name}: outputs not stripped"
            assert cell["execution_count"] is None, f"{path.name}: execution count not stripped"
        assert "attachments" not in cell or not cell["attachments"]
    tagged = [c for c in _code_cells(nb) if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell tagged 'parameters'"
    for cell in _code_cells(nb):
        source = "".join(cell["source"])
        for line in source.splitlines():
            stripped = line.strip()
            assert not re.match(r"(async\s+)?def\s|class\s", stripped), f"{path.name}: {line!r} (put it in the library)"
            assert not re.match(r"[!%]+\s*pip\b", stripped), f"{path.name}: {line!r} (dependencies go in pyproject)"
        tree = ast.parse("\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))))
        assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                                                ast.Lambda))], path.name
    # parameters: one per line, `name: type = literal  # help`, readable by papermill --help-notebook too
    src = "".join(tagged[0]["source"])
    lines = [ln for ln in src.splitlines() if ln.strip()]
    specs = nbs.notebook_parameters(path)
    assert len(lines) == len(specs), f"{path.name}: one parameter per line"
    for line, spec in zip(lines, specs.values()):
        assert isinstance(ast.parse(line).body[0], ast.AnnAssign), f"{path.name}: annotate {line!r}"
        assert spec.help, f"{path.name}: give {spec.name} a '# help' comment"
        assert spec.validate(spec.default) == spec.default or spec.default is None
    assert list(papermill.inspect_notebook(str(path))) == list(specs), "papermill must parse every parameter"


def test_scorecard_notebook_declares_the_promised_parameters():
    specs = nbs.notebook_parameters("01_scorecard")
    assert {"model", "framework", "dataset", "attacks", "norm", "eps", "n_samples", "seed", "output_dir"} <= set(specs)
    assert specs["model"].default == "digits_cnn"
    assert specs["eps"].validate([1, 0.5]) == [1.0, 0.5]
    assert specs["attacks"].validate("standard") == "standard"
    assert specs["attacks"].validate(["fgsm", "pgd"]) == ["fgsm", "pgd"]
    assert specs["n_samples"].validate(None) is None
    assert set(nbs.notebook_parameters("04_compare_scorecards")) == {"before", "after", "output_dir"}


# -- executed by papermill with tiny parameters -----------------------------------------------------------
@pytest.fixture(scope="module")
def scorecard_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nb") / "scorecard"
    sc = nbs.run_notebook("01_scorecard", dict(TINY_SCORECARD), out, timeout_s=TIMEOUT_S)
    return sc, out


@pytest.mark.slow
def test_scorecard_notebook_runs_and_its_scorecard_validates(scorecard_run):
    sc, out = scorecard_run
    assert isinstance(sc, al.Scorecard)
    for name in ("scorecard.json", "scorecard.html", "scorecard.md", "samples.npz", "01_scorecard.ipynb"):
        assert (out / name).is_file(), name
    assert list((out / "plots").glob("*.png"))
    again = al.Scorecard.load(out)  # schema-validated load from disk
    assert again.to_dict() == sc.to_dict()
    assert sc.data["n"] == 20 and sc.eps == [0.1] and sc.threat_model["norm"] == "linf"
    assert sc.checks, "validity checks run by default"
    # the parameters are recorded in provenance, all of them, as run
    recorded = sc.provenance["notebook_parameters"]
    assert set(recorded) == set(nbs.notebook_parameters("01_scorecard"))
    assert recorded["eps"] == [0.1] and recorded["attacks"] == ["fgsm"] and recorded["n_samples"] == 20
    assert recorded["output_dir"] == str(out.absolute())
    # the executed notebook is the evidence: outputs, no errors, the scorecard and its plots inline
    executed = _load(out / "01_scorecard.ipynb")
    assert not [o for c in _code_cells(executed) for o in c["outputs"] if o["output_type"] == "error"]
    assert any("text/html" in o.get("data", {}) for o in _outputs(executed, "scorecard"))
    assert "data:image/png;base64," in "".join(_outputs(executed, "plots")[0]["data"]["text/html"])
    assert executed["metadata"]["papermill"]["output_path"] == str(out.absolute() / "01_scorecard.ipynb")
    assert not list(out.glob(".*.tmp")), "no temporary files left behind"


@pytest.mark.slow
def test_compare_notebook_runs(scorecard_run, tmp_path):
    _, before = scorecard_run
    out = tmp_path / "compare"
    out.mkdir()
    shutil.copy(before / "scorecard.json", out / "scorecard.json")  # a stale scorecard is not "produced" by this run
    result = nbs.run_notebook("04_compare_scorecards", {"before": str(before), "after": str(before / "scorecard.json")},
                              out, timeout_s=TIMEOUT_S)
    assert result is None
    comparison = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert comparison["norm"] == "linf" and comparison["paired"] is True
    assert [r["eps"] for r in comparison["rows"]] == [None, 0.1]
    assert all(r["difference"] == 0 for r in comparison["rows"])
    assert "Comparison:" in (out / "comparison.txt").read_text(encoding="utf-8")
    executed = _load(out / "04_compare_scorecards.ipynb")
    assert any("text/html" in o.get("data", {}) for o in _outputs(executed, "table"))


@pytest.mark.slow
def test_a_failing_cell_names_the_cell_and_the_original_error(tmp_path):
    out = tmp_path / "fails"
    with pytest.raises(NotebookExecutionError) as info:
        nbs.run_notebook("01_scorecard", {**TINY_SCORECARD, "attacks": ["fgsmm"]}, out, timeout_s=TIMEOUT_S)
    err = info.value
    msg = str(err)
    assert "cell" in msg and "al.evaluate(" in msg  # which cell: its index and first line
    assert "UnknownComponentError" in msg and "fgsmm" in msg and "did you mean 'fgsm'" in msg
    assert err.ename == "UnknownComponentError" and isinstance(err.cell_index, int)
    assert "Traceback" in err.traceback or "UnknownComponentError" in err.traceback
    # the executed notebook is kept as evidence, holding the error; no scorecard was written
    executed = _load(out / "01_scorecard.ipynb")
    errors = [o for c in _code_cells(executed) for o in c["outputs"] if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "UnknownComponentError"
    assert not (out / "scorecard.json").exists()
    assert str(out / "01_scorecard.ipynb") in msg


# -- bad input, refused before a kernel starts ------------------------------------------------------------
def test_unknown_parameter_is_refused_with_did_you_mean(no_kernel, tmp_path):
    with pytest.raises(ConfigError, match=r"unknown parameter 'epss'.*did you mean 'eps'"):
        nbs.run_notebook("01_scorecard", {"epss": [0.1]}, tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("params,match", [
    ({"eps": "0.1"}, r"'eps' must be of type list\[float\]; got str '0.1'.*-p eps '\[0.1\]'"),
    ({"eps": [0.1, "big"]}, r"'eps' must be of type list\[float\]"),
    ({"n_samples": "20"}, r"'n_samples' must be of type"),
    ({"n_samples": True}, r"'n_samples' must be of type"),
    ({"attacks": 3}, r"'attacks' must be of type"),
    ({"seed": 1.5}, r"'seed' must be of type int"),
])
def test_wrong_type_is_refused(no_kernel, tmp_path, params, match):
    with pytest.raises(ConfigError, match=match):
        nbs.run_notebook("01_scorecard", params, tmp_path / "x")


def test_params_must_be_a_dict(no_kernel, tmp_path):
    with pytest.raises(ConfigError, match="must be a dict"):
        nbs.run_notebook("01_scorecard", [("eps", [0.1])], tmp_path / "x")


def test_missing_notebook(no_kernel, tmp_path):
    with pytest.raises(UnknownComponentError, match=r"unknown notebook '01_scorcard'.*did you mean '01_scorecard'"):
        nbs.run_notebook("01_scorcard", {}, tmp_path / "x")
    with pytest.raises(ConfigError, match="no such notebook file"):
        nbs.notebook_path(tmp_path / "nope" / "missing.ipynb")
    with pytest.raises(ConfigError, match="not a folder"):
        nbs.notebook_path(str(tmp_path) + "/")
    assert nbs.notebook_path("scorecard") == nbs.notebook_path("01_scorecard.ipynb") == nbs.notebook_path("01_scorecard")


def test_output_directory_that_is_a_file(no_kernel, tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    with pytest.raises(ConfigError, match="output directory is an existing file"):
        nbs.run_notebook("01_scorecard", {}, target)
    with pytest.raises(ConfigError, match="below a file"):
        nbs.run_notebook("01_scorecard", {}, target / "sub")
    assert target.read_text() == "keep me"


def test_output_dir_conflict_and_bad_options(no_kernel, tmp_path):
    with pytest.raises(ConfigError, match="different folders"):
        nbs.run_notebook("01_scorecard", {"output_dir": str(tmp_path / "a")}, tmp_path / "b")
    with pytest.raises(ConfigError, match="timeout_s"):
        nbs.run_notebook("01_scorecard", {}, tmp_path / "a", timeout_s=0)
    with pytest.raises(ConfigError, match="timeout_s"):
        nbs.run_notebook("01_scorecard", {}, tmp_path / "a", timeout_s="10")


@pytest.mark.parametrize("name,text,value", [
    ("eps", "[0.1]", [0.1]),
    ("eps", "[0.05, 0.1]", [0.05, 0.1]),
    ("attacks", "standard", "standard"),
    ("attacks", '["fgsm", "pgd"]', ["fgsm", "pgd"]),
    ("n_samples", "20", 20),
    ("n_samples", "None", None),
    ("n_samples", "null", None),
    ("seed", "3", 3),
    ("model", "digits_cnn", "digits_cnn"),
    ("model", "models/net.keras", "models/net.keras"),
    ("model", "123", "123"),  # a string parameter keeps the text
    ("output_dir", "runs/x", "runs/x"),
])
def test_parse_cli_value(name, text, value):
    assert nbs.parse_cli_value(nbs.notebook_parameters("01_scorecard")[name], text) == value


@pytest.mark.parametrize("name,text", [("eps", "0.1"), ("eps", "['a']"), ("seed", "x"), ("seed", "1.5"),
                                       ("n_samples", "all")])
def test_parse_cli_value_rejects(name, text):
    with pytest.raises(ConfigError, match=f"'{name}' must be of type"):
        nbs.parse_cli_value(nbs.notebook_parameters("01_scorecard")[name], text)


def test_module_entry_point_refuses_bad_input_without_a_kernel(no_kernel, tmp_path, capsys):
    assert nbs.main(["01_scorecard", str(tmp_path / "x"), "-p", "epss", "[0.1]"]) == 2
    assert "did you mean 'eps'" in capsys.readouterr().err
    assert nbs.main(["01_scorecard", str(tmp_path / "x"), "-p", "eps", "0.1"]) == 2
    assert "-p eps '[0.1]'" in capsys.readouterr().err
    assert nbs.main(["--list"]) == 0
    assert "01_scorecard" in capsys.readouterr().out


# -- parameters cells of other notebooks ------------------------------------------------------------------
def _notebook(tmp_path: Path, params_src: str | None, name: str = "t.ipynb") -> Path:
    cells = [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": "# t"}]
    if params_src is not None:
        cells.append({"cell_type": "code", "id": "p", "metadata": {"tags": ["parameters"]}, "source": params_src,
                      "outputs": [], "execution_count": None})
    path = tmp_path / name
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_parameter_declarations(tmp_path):
    path = _notebook(tmp_path, 'a: int | None = None  # maybe\nb: "dict[str, float]" = {"x": 1.0}\n'
                               'c = [1, 2]\nd: list[str] = []  # names\n')
    specs = nbs.notebook_parameters(path)
    assert [s.name for s in specs.values()] == ["a", "b", "c", "d"]
    assert specs["a"].help == "maybe" and specs["a"].validate(3) == 3 and specs["a"].validate(None) is None
    assert specs["b"].validate({"y": 2}) == {"y": 2.0}
    assert specs["c"].type == "list" and specs["c"].validate((1, 2)) == [1, 2]
    assert nbs.check_parameters(path, {"d": ("u", "v")}) == {"d": ["u", "v"]}
    with pytest.raises(ConfigError, match="'b' must be of type"):
        nbs.check_parameters(path, {"b": {"y": "z"}})


@pytest.mark.parametrize("src,match", [
    ("x: int = 1 + 1\n", "not a literal"),
    ("import os\n", "only 'name: type = literal' lines"),
    ("x: numpy.ndarray = None\n", "unsupported parameter type"),
    ("x: int = (\n", "not valid Python"),
])
def test_bad_parameters_cell(tmp_path, src, match):
    with pytest.raises(ConfigError, match=match):
        nbs.notebook_parameters(_notebook(tmp_path, src))


def test_notebook_without_parameters_takes_none(tmp_path):
    path = _notebook(tmp_path, None)
    assert nbs.notebook_parameters(path) == {}
    with pytest.raises(ConfigError, match="unknown parameter 'x'"):
        nbs.check_parameters(path, {"x": 1})


def test_load_target_unknown_model_has_did_you_mean():
    with pytest.raises(UnknownComponentError, match=r"neither a reference model nor an existing file.*did you mean 'digits_cnn'"):
        nbs.load_target("digits_cnm", "pytorch")


def test_load_target_file_and_framework_must_agree(tmp_path, digits_test):
    path = tmp_path / "net.keras"
    path.write_bytes(b"not really a keras file")
    with pytest.raises(ConfigError, match="is a tensorflow model file but framework='pytorch'"):
        nbs.load_target(path, "pytorch", digits_test)
    with pytest.raises(ConfigError, match="needs the data set"):
        nbs.load_target(path, "tensorflow")


@pytest.mark.pytorch
def test_load_target_from_a_model_file(tmp_path, zoo_models, digits_test):
    torch = pytest.importorskip("torch")
    path = tmp_path / "my_cnn.ts"
    torch.jit.script(zoo_models("digits_cnn", "pytorch")).save(str(path))
    target = nbs.load_target(str(path), "pytorch", digits_test)
    assert target.name == "my_cnn" and target.input_shape == digits_test.input_shape
    assert target.accuracy(digits_test) >= 0.95
    zoo = nbs.load_target("digits_cnn", "pytorch", digits_test)
    assert zoo.weights_sha256 == al.zoo.target("digits_cnn", "pytorch").weights_sha256
