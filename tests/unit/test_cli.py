from __future__ import annotations

import json

import pytest

from aisec_lab.cli import build_cli, main


def test_demo_prints_clean_accuracy(capsys):
    rc = main(["demo", "--frameworks", "pytorch", "--models", "digits_mlp", "--json", "--no-evaluate"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "digits_mlp" in out and "clean accuracy" in out
    rows = json.loads(out[out.index("["):])
    assert rows[0]["framework"] == "pytorch" and rows[0]["clean_accuracy"] >= 0.95


def test_bad_input_exits_2_with_a_message(capsys):
    rc = main(["demo", "--frameworks", "pytorch", "--models", "digits_cn"])
    err = capsys.readouterr().err
    assert rc == 2 and "did you mean 'digits_cnn'" in err


def test_info_lists_versions(capsys):
    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["aisec-lab"] and info["numpy"] and "cache_dir" in info


def test_evaluate_command_writes_json(tmp_path, capsys):
    out_json = tmp_path / "sc.json"
    rc = main(["scorecard", "--attacks", "fgsm,pgd", "--eps", "0.1", "--n-samples", "30", "--no-checks",
               "--no-progress", "--json", str(out_json), "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert rc == 0 and "robust accuracy" in out
    data = json.loads(out_json.read_text())
    assert {p.name for p in (tmp_path / "run").iterdir()} >= {"scorecard.json", "scorecard.html", "scorecard.md",
                                                              "samples.npz", "plots"}
    assert rc == main(["gate", str(tmp_path / "run"), "--eps", "0.1", "--min-robust-accuracy", "0.0"])
    assert data["threat_model"]["eps"] == [0.1] and 0 <= data["results"][0]["robust_accuracy"] <= 1
    rc = main(["scorecard", "--attacks", "pdg", "--eps", "0.1", "--no-progress"])
    assert rc == 2 and "did you mean 'pgd'" in capsys.readouterr().err


def test_list_and_describe(capsys):
    assert main(["list", "attacks", "--norm", "l2"]) == 0
    out = capsys.readouterr().out
    assert "cw_l2" in out and "square" in out
    assert main(["list", "presets"]) == 0 and "standard" in capsys.readouterr().out
    assert main(["describe", "pgd"]) == 0
    assert json.loads(capsys.readouterr().out)["defaults"]["max_iter"] == 40
    assert main(["describe", "pdg"]) == 2 and "did you mean 'pgd'" in capsys.readouterr().err
    assert main(["list", "things"]) == 2


def test_help_is_useful(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("scorecard", "train", "run", "batch", "render", "compare", "gate", "list", "describe", "demo"):
        assert command in out
    assert main(["gate", "--help"]) == 0 and "equality passes" in capsys.readouterr().out


@pytest.mark.pytorch
def test_train_writes_model_recipe_card_history_and_scorecards(tmp_path, capsys):
    pytest.importorskip("torch")
    import aisec_lab as al

    out = tmp_path / "at"
    rc = main(["train", "--recipe", "fast_at", "--eps", "0.1", "--epochs", "1", "--eval-attacks", "fgsm",
               "--eval-n-samples", "30", "--no-progress", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    for name in ("model.pt", "recipe.yaml", "history.json", "before/scorecard.json", "after/scorecard.json",
                 "comparison.json", "comparison.md"):
        assert (out / name).is_file(), name
    assert "TrainingResult: fast_at on pytorch, 1 epoch(s)" in printed and "Comparison:" in printed
    assert f"recipe card:          {out / 'recipe.yaml'}" in printed  # where the files went
    assert f"checkpoints:          {out / 'ckpt'}" in printed
    card = al.recipes.from_card(out / "recipe.yaml")
    assert (card.name, card.eps, card.epochs) == ("fast_at", 0.1, 1)
    assert al.Scorecard.load(out / "after").data["n"] == 30


@pytest.mark.parametrize("args,match", [
    (["--epochs", "0"], "error: epochs must be an integer >= 1"),
    (["--recipe", "pgd"], "did you mean 'pgd_at'"),
    (["--eps", "8"], "looks like pixel units"),
    (["--eval-attacks", "fgsm,pgdd"], "did you mean 'pgd'"),
    (["--framework", "torch"], "did you mean 'pytorch'"),
])
def test_train_bad_input_exits_2_with_one_line(tmp_path, capsys, args, match):
    out = tmp_path / "at"
    assert main(["train", *args, "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1, err
    assert not out.exists(), "refused before anything is trained or written"


def test_train_output_folder_that_is_a_file(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    assert main(["train", "--epochs", "1", "--out", str(taken)]) == 2
    assert "output directory is an existing file" in capsys.readouterr().err
    assert taken.read_text() == "keep me"


def test_train_defaults_are_the_notebook_defaults():
    from aisec_lab.notebooks import notebook_parameters

    options = {p.name: p.default for p in build_cli().commands["train"].params}
    specs = notebook_parameters("02_adversarial_training")
    for name in ("model", "framework", "dataset", "recipe", "eps", "epochs", "batch_size", "seed"):
        assert options[name] == specs[name].default, name
    assert options["eval_attacks"] == (specs["eval_attacks"].default,)
    assert int(options["eval_n_samples"]) == specs["eval_n_samples"].default
    assert options["out"] == specs["output_dir"].default
