"""Adversarial-training recipes: fit on both frameworks, determinism, checkpoints and resume, cards, bad input."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import aisec_lab as al
from aisec_lab.defenses.training import driver

TINY = dict(eps=0.1, epochs=2, batch_size=64, max_iter=3, val_samples=60, val_attack_steps=3, patience=None)


@pytest.fixture(scope="module")
def small_train(digits_train):
    return digits_train.stratified_sample(240, seed=0)


@pytest.fixture(scope="module")
def small_test(digits_test):
    return digits_test.stratified_sample(60, seed=0)


@pytest.mark.parametrize("recipe", ["pgd_at", "trades", "fast_at"])
def test_fit_trains_a_copy_and_reports_before_after(zoo_targets, small_train, small_test, framework, recipe):
    t = zoo_targets("digits_mlp", framework)
    sha = t.weights_sha256
    kw = dict(TINY, max_iter=1) if recipe == "fast_at" else TINY
    res = al.recipes.get(recipe, **kw).fit(t, small_train, test_data=small_test, eval_attacks="quick",
                                           progress=False)
    assert t.weights_sha256 == sha and al.wrap_model(t.model, input_shape=(1, 8, 8), nb_classes=10,
                                                     clip_values=(0, 1)).weights_sha256 == sha  # untouched
    assert res.model is not t.model and res.target.model is res.model
    assert res.target.weights_sha256 != sha
    assert [h["epoch"] for h in res.history] == [1, 2]
    for h in res.history:
        assert 0 <= h["val_robust_accuracy"] <= h["val_clean_accuracy"] <= 1 and np.isfinite(h["train_loss"])
    assert res.scorecard_before.model["weights_sha256"] == sha
    assert res.scorecard_after.model["weights_sha256"] == res.target.weights_sha256
    assert res.comparison.rows[1].eps == pytest.approx(0.1)


def test_fit_is_deterministic_and_the_card_reproduces_it(zoo_targets, small_train, tmp_path):
    t = zoo_targets("digits_cnn", "pytorch")
    recipe = al.recipes.get("pgd_at", **TINY, seed=5)
    a = recipe.fit(t, small_train, progress=False)
    assert a.scorecard_before is None and a.comparison is None
    assert any("test_data" in n for n in a.notes)  # says why there are no scorecards
    a.save(tmp_path / "run")
    card = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())
    assert card["recipe"] == "pgd_at" and card["params"]["seed"] == 5 and card["params"]["max_iter"] == 3
    assert card["result"]["weights_sha256"] == a.target.weights_sha256
    again = al.recipes.from_card(tmp_path / "run" / "recipe.yaml")
    assert again == recipe
    b = again.fit(t, small_train, progress=False)
    assert b.target.weights_sha256 == a.target.weights_sha256
    # the saved state_dict loads back safely (weights_only) into the same architecture
    loaded = al.load_model(tmp_path / "run" / "model.pt", factory=lambda: copy.deepcopy(t.model))
    assert al.wrap_model(loaded, input_shape=(1, 8, 8), nb_classes=10,
                         clip_values=(0, 1)).weights_sha256 == a.target.weights_sha256


def test_keras_result_saves_a_safe_keras_file(zoo_targets, small_train, small_test, tmp_path):
    t = zoo_targets("digits_cnn", "tensorflow")
    res = al.recipes.get("pgd_at", **dict(TINY, epochs=1)).fit(t, small_train, test_data=small_test,
                                                                 eval_attacks=["fgsm"], progress=False)
    out = res.save(tmp_path / "k")
    for name in ("model.keras", "recipe.yaml", "history.json", "before/scorecard.json", "after/scorecard.json",
                 "comparison.json", "comparison.md"):
        assert (out / name).is_file(), name
    model = al.load_model(out / "model.keras")
    assert al.wrap_model(model, input_shape=(1, 8, 8), nb_classes=10, clip_values=(0, 1)).weights_sha256 \
        == res.target.weights_sha256


def test_keras_resume_matches_an_uninterrupted_run(zoo_targets, small_train, tmp_path, monkeypatch):
    """Keras: a crash after epoch 1 (simulated in-process) resumes to the same weights (tolerance 1e-6)."""
    t = zoo_targets("digits_mlp", "tensorflow")
    recipe = al.recipes.get("pgd_at", **dict(TINY, epochs=3))
    full = recipe.fit(t, small_train, progress=False)
    real = driver.time.perf_counter
    calls = {"n": 0}
    original_train_epoch = None

    import aisec_lab.defenses.training.tensorflow as tfmod

    original_train_epoch = tfmod.Trainer.train_epoch

    def crash_in_epoch_2(self, x, y, rng, *, epoch):
        calls["n"] += 1
        if epoch == 1:
            raise KeyboardInterrupt("killed mid-epoch")
        return original_train_epoch(self, x, y, rng, epoch=epoch)

    monkeypatch.setattr(tfmod.Trainer, "train_epoch", crash_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        recipe.fit(t, small_train, checkpoint_dir=tmp_path / "ck", progress=False)
    monkeypatch.setattr(tfmod.Trainer, "train_epoch", original_train_epoch)
    resumed = recipe.fit(t, small_train, checkpoint_dir=tmp_path / "ck", progress=False)
    assert resumed.resumed_from_epoch == 1 and real is driver.time.perf_counter
    for a, b in zip(full.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert [h["val_robust_accuracy"] for h in resumed.history] == [h["val_robust_accuracy"] for h in full.history]


_KILL_SCRIPT = textwrap.dedent("""
    import sys, aisec_lab as al
    from aisec_lab.defenses.training import pytorch as tmod
    ckpt, out, slow = sys.argv[1], sys.argv[2], sys.argv[3] == "slow"
    train = al.load_dataset("digits", split="train").stratified_sample(240, seed=0)
    t = al.zoo.target("digits_mlp", framework="pytorch")
    if slow:  # make epoch 2 slow enough to be killed in the middle of it
        import time
        real = tmod.Trainer.train_epoch
        def slow_epoch(self, x, y, rng, *, epoch):
            if epoch >= 1:
                open(out + ".in_epoch2", "w").close()
                time.sleep(60)
            return real(self, x, y, rng, epoch=epoch)
        tmod.Trainer.train_epoch = slow_epoch
    r = al.recipes.get("pgd_at", eps=0.1, epochs=3, max_iter=3, val_samples=60, val_attack_steps=3, patience=None)
    res = r.fit(t, train, checkpoint_dir=ckpt or None, progress=False)
    print("RESUMED", res.resumed_from_epoch)
    print("SHA", res.target.weights_sha256)
""")


def test_torch_kill_mid_epoch_then_rerun_resumes_to_identical_weights(tmp_path):
    """Acceptance: SIGKILL during epoch 2, re-run the same call: resumes after epoch 1, same weights bit for bit."""
    script = tmp_path / "train.py"
    script.write_text(_KILL_SCRIPT)
    env = dict(os.environ)
    ckpt, marker = tmp_path / "ckpt", tmp_path / "m"
    proc = subprocess.Popen([sys.executable, str(script), str(ckpt), str(marker), "slow"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not Path(str(marker) + ".in_epoch2").exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "training never reached epoch 2"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert (ckpt / "last.ckpt").is_file()
    resumed = subprocess.run([sys.executable, str(script), str(ckpt), str(marker), "fast"], env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    fresh = subprocess.run([sys.executable, str(script), "", str(marker), "fast"], env=env,
                           capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert "RESUMED 1" in resumed.stdout and "RESUMED None" in fresh.stdout
    sha = [line for line in resumed.stdout.splitlines() if line.startswith("SHA")]
    assert sha and sha == [line for line in fresh.stdout.splitlines() if line.startswith("SHA")]


class _ScriptedTrainer:
    """A fake framework trainer whose validation accuracies follow a script (tests the driver's decisions)."""

    script: list = []

    def __init__(self, target, recipe):
        self.w = 0

    def set_lr(self, lr):
        pass

    def train_epoch(self, x, y, rng, *, epoch):
        self.w = epoch + 1
        return {"train_loss": 1.0 / (epoch + 1), "train_adv_accuracy": 0.5}

    def evaluate(self, x, y, rng):
        return self.script[self.w - 1]

    def weights(self):
        return self.w

    def set_weights(self, w):
        self.w = w

    def save_checkpoint(self, path, meta):
        pass

    def write_weights(self, path, weights, meta):
        pass


@pytest.fixture
def scripted(monkeypatch):
    import types

    import aisec_lab.defenses.training as training

    real = training._framework

    def fake(framework):
        mod = real(framework)
        return types.SimpleNamespace(Trainer=_ScriptedTrainer, clone_model=mod.clone_model,
                                     architecture=mod.architecture, save_model=mod.save_model)

    monkeypatch.setattr(training, "_framework", fake)
    return _ScriptedTrainer


def test_catastrophic_overfitting_is_flagged_and_the_best_epoch_restored(scripted, zoo_targets, small_train):
    # robust accuracy collapses at epoch 3 while clean accuracy rises: Wong et al.'s failure mode of FGSM training
    scripted.script = [(0.90, 0.50), (0.92, 0.60), (0.97, 0.05), (0.98, 0.01)]
    res = al.recipes.get("fast_at", eps=0.1, epochs=4, patience=None).fit(
        zoo_targets("digits_mlp", "pytorch"), small_train, progress=False)
    co = res.catastrophic_overfitting
    assert co["epoch"] == 3 and co["best_epoch"] == 2 and co["best_val_robust_accuracy"] == 0.60
    assert res.best_epoch == 2 and len(res.history) == 3  # stopped at the collapse
    assert any("catastrophic overfitting" in n for n in res.notes) and "CATASTROPHIC" in res.summary()


def test_early_stopping_on_robust_validation_accuracy(scripted, zoo_targets, small_train):
    scripted.script = [(0.9, 0.5), (0.9, 0.6), (0.9, 0.58), (0.9, 0.59), (0.9, 0.57), (0.9, 0.7)]
    res = al.recipes.get("pgd_at", eps=0.1, epochs=6, patience=2).fit(
        zoo_targets("digits_mlp", "pytorch"), small_train, progress=False)
    assert res.stopped_early and len(res.history) == 4 and res.best_epoch == 2
    assert res.history[-1]["stop"] == "early_stopping"


# -- bad input -----------------------------------------------------------------------------------------
def test_recipe_on_a_blackbox_target_fails_up_front(small_train):
    bb = al.wrap_predict(lambda x: np.zeros((len(x), 10), np.float32) + np.arange(10), input_shape=(1, 8, 8),
                         nb_classes=10, clip_values=(0.0, 1.0))
    with pytest.raises(al.IncompatibleModelError, match="torch and Keras"):
        al.recipes.get("pgd_at", eps=0.1).fit(bb, small_train, progress=False)


def test_eps_in_pixel_units_is_refused(zoo_targets, small_train):
    with pytest.raises(al.ConfigError, match="pixel units"):
        al.recipes.get("pgd_at", eps=8).fit(zoo_targets("digits_mlp", "pytorch"), small_train, progress=False)


@pytest.mark.parametrize("epochs", [0, -1, 2.5])
def test_epochs_must_be_positive(epochs):
    with pytest.raises(al.ConfigError, match="epochs"):
        al.recipes.get("pgd_at", eps=0.1, epochs=epochs)


def test_unknown_recipe_and_hyperparameter():
    with pytest.raises(al.UnknownComponentError, match="trades"):
        al.recipes.get("trade", eps=0.1)
    with pytest.raises(al.ConfigError, match="max_iter"):
        al.recipes.get("pgd_at", eps=0.1, maxiter=3)
    with pytest.raises(al.ConfigError, match="needs eps"):
        al.recipes.get("pgd_at")


def test_resume_from_a_checkpoint_of_a_different_model(zoo_targets, small_train, tmp_path):
    recipe = al.recipes.get("pgd_at", **dict(TINY, epochs=1))
    recipe.fit(zoo_targets("digits_mlp", "pytorch"), small_train, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(al.ConfigError, match="different run") as err:
        recipe.fit(zoo_targets("digits_cnn", "pytorch"), small_train, checkpoint_dir=tmp_path, progress=False)
    assert "architecture" in str(err.value) and "new checkpoint_dir" in str(err.value)


def test_a_defended_target_is_refused(zoo_targets, small_train):
    d = al.defend(zoo_targets("digits_mlp", "pytorch"), "feature_squeezing")
    with pytest.raises(al.ConfigError, match="undefended"):
        al.recipes.get("pgd_at", eps=0.1).fit(d, small_train, progress=False)


def test_from_card_refuses_foreign_files(tmp_path):
    (tmp_path / "x.yaml").write_text("just: a mapping\n")
    with pytest.raises(al.ConfigError, match="not a recipe card"):
        al.recipes.from_card(tmp_path / "x.yaml")
    (tmp_path / "v.yaml").write_text("card_version: 99\nrecipe: pgd_at\nparams: {eps: 0.1}\n")
    with pytest.raises(al.ConfigError, match="version"):
        al.recipes.from_card(tmp_path / "v.yaml")
