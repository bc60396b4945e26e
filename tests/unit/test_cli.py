from __future__ import annotations

import json

from aisec_lab.cli import main


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
    for command in ("scorecard", "run", "batch", "render", "compare", "gate", "list", "describe", "demo"):
        assert command in out
    assert main(["gate", "--help"]) == 0 and "equality passes" in capsys.readouterr().out
