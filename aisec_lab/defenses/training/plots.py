"""Plots of an adversarial-training run: validation clean and robust accuracy per epoch.

```python
from aisec_lab.defenses.training.plots import plot_history
fig = plot_history(result.history)          # or plot_history(result), or plot_history(history, ax=my_ax)
```

matplotlib is imported when a plot is drawn, never when this module is imported. Without ``ax`` the figure
is a plain :class:`matplotlib.figure.Figure` (not registered with pyplot): it shows once as a cell's result in
Jupyter and is freed with its last reference, also in long loops.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import ConfigError

__all__ = ["plot_history"]

#: (history key, legend label, line style); the validation curves first, then the training one
_SERIES = (
    ("val_clean_accuracy", "validation, clean", "-"),
    ("val_robust_accuracy", "validation, robust (PGD at ε)", "-"),
    ("train_adv_accuracy", "training, adversarial", ":"),
)
_REQUIRED = ("epoch", "val_clean_accuracy", "val_robust_accuracy")


def _rows(history: Any) -> list[Mapping]:
    rows = getattr(history, "history", history)  # a TrainingResult, or its history
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise ConfigError("plot_history takes a training history: a list of per-epoch dicts",
                          got=type(history).__name__, fix="pass result.history (or the result itself)")
    if not rows:
        raise ConfigError("the training history is empty: no epoch has finished", got="[]",
                          fix="plot after recipe.fit(...) has run at least one epoch")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ConfigError("each entry of the history must be a dict of one epoch's metrics",
                              got=f"entry {i}: {type(row).__name__}", fix="pass result.history unchanged")
        missing = [k for k in _REQUIRED if k not in row]
        if missing:
            raise ConfigError(f"history entry {i} lacks {', '.join(missing)}", got=sorted(row),
                              fix="pass result.history (or history.json) as written by recipe.fit")
    return list(rows)


def _value(row: Mapping, key: str) -> float:
    v = row.get(key)
    if v is None or isinstance(v, bool):
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _best_epoch(rows: list[Mapping]) -> int:
    """The epoch with the highest robust validation accuracy, ties to the higher clean one (fit's rule)."""
    best = max(rows, key=lambda r: (_value(r, "val_robust_accuracy"), _value(r, "val_clean_accuracy")))
    return int(best["epoch"])


def plot_history(history: Any, ax: Any = None):
    """Validation clean and robust accuracy per epoch (and the training accuracy on adversarial examples).

    ``history`` is ``result.history`` (the list of per-epoch dicts :meth:`Recipe.fit` returns, also what
    ``history.json`` holds) or the :class:`TrainingResult` itself. The best epoch (highest robust
    validation accuracy) is marked, and so is an epoch flagged for catastrophic overfitting. Draws into
    ``ax`` when given; returns the :class:`matplotlib.figure.Figure`.
    """
    rows = _rows(history)
    from ..._optional import require

    require("matplotlib", purpose="plot a training history", extra="core")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        fig = Figure(figsize=(6.0, 3.6), layout="constrained")
        ax = fig.add_subplot()
    elif not hasattr(ax, "plot") or getattr(ax, "figure", None) is None:
        raise ConfigError("ax must be a matplotlib Axes", got=type(ax).__name__,
                          fix="pass ax=fig.add_subplot() or leave ax=None for a new figure")
    else:
        fig = ax.figure
    epochs = [int(r["epoch"]) for r in rows]
    for key, label, style in _SERIES:
        values = [_value(r, key) for r in rows]
        if all(math.isnan(v) for v in values):
            continue
        ax.plot(epochs, values, style, marker="o", markersize=4, label=label)
    best = _best_epoch(rows)
    ax.axvline(best, color="0.5", linewidth=1, linestyle="--", label=f"best epoch ({best})")
    overfit = [int(r["epoch"]) for r in rows if r.get("catastrophic_overfitting")]
    for epoch in overfit:
        ax.axvline(epoch, color="tab:red", linewidth=1.5, label=f"catastrophic overfitting ({epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0.0, 1.02)
    if len(epochs) == 1:
        ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    ax.set_title("adversarial training: accuracy per epoch")
    return fig
