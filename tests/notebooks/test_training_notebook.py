"""``02_adversarial_training`` runs headless under papermill with tiny parameters; bad parameters are refused
by the library before a kernel starts (types, names with did-you-mean, ranges, ε in pixel units)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import aisec_lab as al
from aisec_lab import notebooks as nbs
from aisec_lab.errors import ConfigError, UnknownComponentError

papermill = pytest.importorskip("papermill")
pytest.importorskip("ipykernel")
pytest.importorskip("torch")

NAME = "02_adversarial_training"
TINY = {"epochs": 1, "eval_attacks": "quick", "eval_n_samples": 60, "framework": "pytorch"}
TIMEOUT_S = 300


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _outputs(nb: dict, cell_id: str) -> list[dict]:
    return next(c for c in nb["cells"] if c.get("id") == cell_id)["outputs"]


def _data(nb: dict, cell_id: str) -> dict:
    merged: dict = {}
    for o in _outputs(nb, cell_id):
        merged.update(o.get("data", {}))
    return merged


@pytest.fixture
def no_kernel(monkeypatch):
    """Fail the test if papermill is asked to execute anything: bad input must be refused before a kernel starts."""
    def boom(*args, **kwargs):
        raise AssertionError("papermill.execute_notebook was called")

    monkeypatch.setattr(papermill, "execute_notebook", boom)


def test_declares_the_promised_parameters():
    specs = nbs.notebook_parameters(NAME)
    assert list(specs) == ["model", "framework", "dataset", "recipe", "eps", "epochs", "batch_size", "seed",
                           "eval_attacks", "eval_eps", "eval_n_samples", "progress", "output_dir"]
    defaults = {k: s.default for k, s in specs.items()}
    assert defaults == {"model": "digits_cnn", "framework": "pytorch", "dataset": "digits", "recipe": "pgd_at",
                        "eps": 0.1, "epochs": 10, "batch_size": 64, "seed": 0, "eval_attacks": "standard",
                        "eval_eps": None, "eval_n_samples": 200, "progress": True,
                        "output_dir": "runs/adversarial_training"}
    # the defaults pass the library's value checks, and give the recipe the notebook trains with
    spec = nbs.check_training_parameters(**{k: v for k, v in defaults.items() if k not in ("progress", "output_dir")})
    assert spec == al.recipes.get("pgd_at", eps=0.1, epochs=10, batch_size=64, seed=0)
    assert specs["eval_attacks"].validate(["fgsm", "pgd"]) == ["fgsm", "pgd"]
    assert specs["eval_eps"].validate([0.05, 1]) == [0.05, 1.0]


# -- executed by papermill with tiny parameters -----------------------------------------------------------
@pytest.fixture(scope="module")
def training_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nb") / "at"
    returned = nbs.run_notebook(NAME, dict(TINY), out, timeout_s=TIMEOUT_S)
    return returned, out


@pytest.mark.slow
def test_notebook_trains_and_writes_model_card_history_and_scorecards(training_run):
    returned, out = training_run
    assert returned is None  # no top-level scorecard.json: the scorecards are before/ and after/
    for name in ("recipe.yaml", "model.pt", "history.json", "before/scorecard.json", "after/scorecard.json",
                 "comparison.json", "comparison.md", f"{NAME}.ipynb"):
        assert (out / name).is_file(), name
    assert (out / "ckpt").is_dir() and list((out / "ckpt").iterdir()), "checkpoints go to output_dir/ckpt"
    history = json.loads((out / "history.json").read_text(encoding="utf-8"))
    assert [row["epoch"] for row in history] == [1]
    assert 0 <= history[0]["val_robust_accuracy"] <= history[0]["val_clean_accuracy"] <= 1
    card = al.recipes.from_card(out / "recipe.yaml")
    assert (card.name, card.eps, card.epochs, card.batch_size, card.seed) == ("pgd_at", 0.1, 1, 64, 0)
    before, after = al.Scorecard.load(out / "before"), al.Scorecard.load(out / "after")
    assert before.eps == after.eps == [0.1] and before.data["n"] == after.data["n"] == 60
    assert nbs.notebook_outputs(NAME, out)[0] == ("model (PyTorch)", out / "model.pt")


@pytest.mark.slow
def test_executed_notebook_shows_each_step_without_errors(training_run):
    _, out = training_run
    executed = json.loads((out / f"{NAME}.ipynb").read_text(encoding="utf-8"))
    errors = [o for c in _code_cells(executed) for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, errors
    assert "'description'" in "".join(_data(executed, "recipe")["text/plain"])  # al.recipes.describe
    assert "val_robust_accuracy" in "".join(_data(executed, "history")["text/html"])  # the pandas table
    assert "image/png" in _data(executed, "plot")  # plot_history's figure, inline
    summary = "".join("".join(o.get("text", "")) for o in _outputs(executed, "comparison"))
    assert "Comparison:" in summary and "robust accuracy" in summary
    assert "Robustness scorecard" in "".join(_data(executed, "scorecard")["text/html"])  # the after scorecard
    assert executed["metadata"]["papermill"]["parameters"]["output_dir"] == str(out.absolute())


# -- bad input, refused before a kernel starts ------------------------------------------------------------
@pytest.mark.parametrize("params,error,match", [
    ({"epochs": 0}, ConfigError, r"epochs must be an integer >= 1; got 0"),
    ({"recipe": "pgd"}, UnknownComponentError, r"unknown recipe 'pgd'.*did you mean 'pgd_at'"),
    ({"eps": 8.0}, ConfigError, r"looks like pixel units: did you mean 0.03137"),
    ({"eval_eps": [0.1, 25]}, ConfigError, r"looks like pixel units"),
    ({"eps": 0.0}, ConfigError, r"eps must be a positive number"),
    ({"epochs": 1.5}, ConfigError, r"'epochs' must be of type int"),
    ({"eval_attacks": "standrd"}, UnknownComponentError, r"did you mean 'standard'"),
    ({"eval_attacks": ["fgsm", "pgdd"]}, UnknownComponentError, r"did you mean 'pgd'"),
    ({"model": "digits_cn"}, UnknownComponentError, r"did you mean 'digits_cnn'"),
    ({"framework": "torch"}, ConfigError, r"did you mean 'pytorch'"),
    ({"dataset": "data.npz"}, ConfigError, r"an .npz file has no splits"),
    ({"eval_n_samples": 0}, ConfigError, r"eval_n_samples must be a positive integer"),
    ({"eval_n_samples": 10_000}, ConfigError, r"larger than the digits test split"),
    ({"epoch": 2}, ConfigError, r"unknown parameter 'epoch'.*did you mean 'epochs'"),
])
def test_bad_parameters_fail_fast_with_the_library_error(no_kernel, tmp_path, params, error, match):
    with pytest.raises(error, match=match):
        nbs.run_notebook(NAME, params, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_module_entry_point_refuses_bad_values_in_one_line(no_kernel, tmp_path, capsys):
    assert nbs.main([NAME, str(tmp_path / "x"), "-p", "epochs", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: epochs must be an integer >= 1") and err.count("\n") == 1
    assert nbs.main([NAME, str(tmp_path / "x"), "-p", "recipe", "pgd"]) == 2
    assert "did you mean 'pgd_at'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_output_dir_is_the_runner_folder(no_kernel, tmp_path):
    with pytest.raises(ConfigError, match="different folders"):
        nbs.run_notebook(NAME, {"output_dir": str(tmp_path / "a")}, tmp_path / "b")
