"""``plot_history``: validation clean/robust accuracy per epoch of an adversarial-training run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aisec_lab.defenses.training.plots import plot_history
from aisec_lab.errors import ConfigError

matplotlib = pytest.importorskip("matplotlib")


def _history(n: int = 3) -> list[dict]:
    return [{"epoch": i, "lr": 1e-3, "train_loss": 1.0 / i, "train_adv_accuracy": 0.2 * i,
             "val_clean_accuracy": 0.9 + 0.01 * i, "val_robust_accuracy": [0.3, 0.5, 0.4][i - 1], "time_s": 1.0}
            for i in range(1, n + 1)]


def test_plots_clean_and_robust_accuracy_and_marks_the_best_epoch():
    from matplotlib.figure import Figure

    fig = plot_history(_history())
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:2] == ["validation, clean", "validation, robust (PGD at ε)"]
    assert "best epoch (2)" in labels  # highest robust validation accuracy
    robust = ax.get_lines()[1]
    assert list(robust.get_xdata()) == [1, 2, 3] and list(robust.get_ydata()) == [0.3, 0.5, 0.4]


def test_draws_into_a_given_axes_and_accepts_a_result():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    history = _history(2)
    history[1]["catastrophic_overfitting"] = {"epoch": 2}

    class Result:  # anything with .history, like a TrainingResult
        pass

    result = Result()
    result.history = history
    assert plot_history(result, ax=ax) is fig
    assert "catastrophic overfitting (2)" in [line.get_label() for line in ax.get_lines()]


@pytest.mark.parametrize("history,match", [
    ([], "history is empty"),
    ("history.json", "list of per-epoch dicts"),
    ([{"epoch": 1, "val_clean_accuracy": 0.9}], "lacks val_robust_accuracy"),
    ([3], "must be a dict"),
])
def test_bad_history_is_a_clear_error(history, match):
    with pytest.raises(ConfigError, match=match):
        plot_history(history)


def test_bad_axes_is_a_clear_error():
    with pytest.raises(ConfigError, match="ax must be a matplotlib Axes"):
        plot_history(_history(), ax="left")


def test_importing_the_plots_loads_no_framework_and_no_matplotlib():
    code = ("import sys, aisec_lab.defenses.training.plots\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tensorflow', 'keras', 'art', 'matplotlib'}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
