"""Scorecard plots with matplotlib (Agg), as :class:`matplotlib.figure.Figure` objects.

No pyplot state is touched: each figure is built directly, so rendering is safe in notebooks, threads
and headless CI. :func:`figures` gives the record-based plots always and the sample-based ones
(``perturbation_norms``, ``gallery``) only when the per-sample arrays are given.
"""

from __future__ import annotations

import base64
import io
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..._io import atomic_write_bytes
from ..._optional import require
from ._common import eps_text, headline_index, norm_text, per_class_robust

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["figures", "save_plots", "figure_png_base64", "figure_png_bytes", "PLOT_KEYS"]

log = logging.getLogger(__name__)

#: every key :func:`figures` can return, in display order
PLOT_KEYS = ("robustness_curve", "perturbation_norms", "per_class", "gallery")
_SAMPLE_PLOTS = ("perturbation_norms", "gallery")

_WORST = "#1f2937"
_CLEAN = "#2563eb"
_ROBUST = "#dc2626"
_DPI = 100


def _figure_cls():
    require("matplotlib", purpose="draw scorecard plots", extra="notebooks")
    from matplotlib.figure import Figure

    return Figure


def _new_figure(width: float, height: float) -> "Figure":
    fig = _figure_cls()(figsize=(width, height), dpi=_DPI, layout="constrained")
    return fig


def _plain(text: object) -> str:
    """A record string as literal matplotlib text: ``$`` would start mathtext (and can fail to parse)."""
    return str(text).replace("$", r"\$")


def _percent_axis(ax, axis: str = "y") -> None:
    from matplotlib.ticker import PercentFormatter

    getattr(ax, f"{axis}axis").set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))


def _message(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11, color="#555555",
            wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _ci(value: Any) -> tuple[float, float]:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(v is not None for v in value):
        return float(value[0]), float(value[1])
    return (math.nan, math.nan)


def _val(v: Any) -> float:
    return math.nan if v is None else float(v)


# -- record-based plots ----------------------------------------------------------------------------------
def _robustness_curve(record: dict) -> "Figure":
    tm = record.get("threat_model", {}) or {}
    results = record.get("results", []) or []
    clean = record.get("clean_accuracy", {}) or {}
    norm = norm_text(tm.get("norm"))
    fig = _new_figure(7.5, 4.6)
    ax = fig.add_subplot()
    if not results:
        _message(ax, "no ε was evaluated")
        return fig
    eps = [0.0] + [float(r["eps"]) for r in results]
    c_lo, c_hi = _ci(clean.get("ci"))
    worst = [_val(clean.get("value"))] + [_val(r.get("robust_accuracy")) for r in results]
    w_ci = [(c_lo, c_hi)] + [_ci(r.get("robust_accuracy_ci")) for r in results]

    if tm.get("exhaustive"):
        cmap = ["#0ea5e9", "#f59e0b", "#10b981", "#8b5cf6", "#ec4899", "#84cc16", "#f97316", "#14b8a6"]
        for k, a in enumerate(tm.get("attacks", []) or []):
            label = a.get("label", a.get("name"))
            ys = [_val(clean.get("value"))]
            for r in results:
                entry = (r.get("attacks") or {}).get(label) or {}
                ys.append(_val(entry.get("robust_accuracy")) if entry.get("ran", True) else math.nan)
            color = cmap[k % len(cmap)]
            # drawn above the worst-case line, so an attack that is the worst case stays visible
            ax.plot(eps, ys, marker="o", markersize=4, linewidth=1.3, color=color, label=_plain(label), zorder=5)

    lo = [c[0] for c in w_ci]
    hi = [c[1] for c in w_ci]
    ax.fill_between(eps, lo, hi, color=_WORST, alpha=0.18, linewidth=0, zorder=2, label="95% CI (worst case)")
    ax.plot(eps, worst, color=_WORST, linewidth=3.0, marker="o", markersize=6, zorder=4,
            label="worst case over attacks")
    ax.plot([0.0], [worst[0]], marker="s", markersize=8, color=_CLEAN, linestyle="none", zorder=6,
            label="clean accuracy (ε = 0)")
    incomplete = [(e, w) for e, w, r in zip(eps[1:], worst[1:], results) if not r.get("complete", True)]
    if incomplete:
        ax.plot([p[0] for p in incomplete], [p[1] for p in incomplete], marker="o", markersize=12,
                markerfacecolor="none", markeredgecolor=_ROBUST, linestyle="none", zorder=6,
                label="incomplete: upper bound")
    hi_idx = headline_index(record)
    if hi_idx is not None:
        h = results[hi_idx]
        ax.axvline(float(h["eps"]), color="#6b7280", linestyle=":", linewidth=1.2, zorder=0)
        ax.annotate(f"headline ε = {eps_text(h)}", xy=(float(h["eps"]), 1.02), xycoords=("data", "axes fraction"),
                    ha="center", va="bottom", fontsize=8, color="#4b5563")
    ax.set_xlabel(f"ε ({norm})")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(left=-0.02 * max(eps[-1], 1e-12))
    ax.set_xticks(eps)
    ax.set_xticklabels(["0"] + [eps_text(r) for r in results], fontsize=8)
    _percent_axis(ax)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left", framealpha=0.9)
    return fig


def _per_class(record: dict) -> "Figure":
    results = record.get("results", []) or []
    hi_idx = headline_index(record)
    fig = _new_figure(7.5, 3.8)
    ax = fig.add_subplot()
    if hi_idx is None or not record.get("per_class"):
        _message(ax, "no per-class results in this scorecard")
        return fig
    head = results[hi_idx]
    table = per_class_robust(record, float(head["eps"]))

    def _key(c: str):
        return (0, int(c), c) if c.lstrip("-").isdigit() else (1, 0, c)

    classes = sorted(table, key=_key)
    x = np.arange(len(classes))
    clean = [_val(table[c][0]) for c in classes]
    robust = [_val(table[c][1]) for c in classes]
    width = 0.4
    ax.bar(x - width / 2, clean, width, color=_CLEAN, label="clean accuracy")
    ax.bar(x + width / 2, robust, width, color=_ROBUST,
           label=f"robust accuracy at ε = {eps_text(head)} (worst case)")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{c}\nn={table[c][2]}" if table[c][2] is not None else c for c in classes],
                       fontsize=8 if len(classes) <= 20 else 6)
    ax.set_xlabel("class")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    _percent_axis(ax)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, frameon=False)
    return fig


# -- sample-based plots ----------------------------------------------------------------------------------
def _has(samples: Any, *keys: str) -> bool:
    if samples is None:
        return False
    try:
        names = set(samples.keys()) if hasattr(samples, "keys") else set(samples.files)
    except Exception:  # noqa: BLE001 - an odd mapping: treat as unusable
        return False
    return all(k in names for k in keys)


def _perturbation_norms(record: dict, samples: Any) -> "Figure":
    tm = record.get("threat_model", {}) or {}
    results = record.get("results", []) or []
    first = np.asarray(samples["first_attack"])
    fig = _new_figure(9.0, 3.8)
    axes = fig.subplots(1, 2)
    cmap = ["#0ea5e9", "#f59e0b", "#dc2626", "#10b981", "#8b5cf6", "#ec4899", "#84cc16", "#f97316"]
    for ax, key, name in zip(axes, ("linf", "l2"), ("L∞", "L2")):
        values = np.asarray(samples[key], dtype=float)
        is_norm = str(tm.get("norm", "")).lower() == key
        # the counted examples of each ε: samples broken there, with a finite recorded norm
        per_eps = []
        for ei, r in enumerate(results[:len(first)]):
            v = values[ei][(first[ei] >= 0) & np.isfinite(values[ei])]
            per_eps.append((ei, r, v))
        top = max([float(v.max()) for _, _, v in per_eps if v.size] + ([float(r["eps"]) for r in results] if is_norm else [])
                  + [0.0])
        bins = np.linspace(0.0, top * 1.05 if top > 0 else 1.0, 41)
        drawn = False
        for ei, r, v in per_eps:
            if v.size == 0:
                continue
            color = cmap[ei % len(cmap)]
            ax.hist(v, bins=bins, histtype="stepfilled", alpha=0.45, color=color, edgecolor=color, linewidth=1.2,
                    label=f"ε = {eps_text(r)} (n = {v.size})")
            if is_norm:
                ax.axvline(float(r["eps"]), color=color, linestyle="--", linewidth=1)
            drawn = True
        ax.set_title(f"{name} norm of counted adversarial examples", fontsize=10)
        ax.set_xlabel(f"‖δ‖ ({name})")
        ax.set_ylabel("samples")
        if drawn:
            ax.legend(fontsize=8)
            ax.grid(True, alpha=0.3)
        else:
            _message(ax, "no adversarial examples")
    return fig


def _as_image(x: np.ndarray) -> tuple[np.ndarray, bool] | None:
    """One sample as (H, W) or (H, W, 3) float array; ``None`` when it is not an image."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 2:
        return x, True
    if x.ndim == 3:
        if x.shape[0] in (1, 3) and x.shape[-1] not in (1, 3):
            x = np.moveaxis(x, 0, -1)
        elif x.shape[0] in (1, 3) and x.shape[-1] in (1, 3):
            x = np.moveaxis(x, 0, -1)  # ambiguous (e.g. 3×H×3): the record's layout is channels-first
        if x.shape[-1] == 1:
            return x[..., 0], True
        if x.shape[-1] == 3:
            return x, False
    return None


def _gallery(record: dict, samples: Any, max_samples: int = 8) -> "Figure":
    results = record.get("results", []) or []
    labels = [a.get("label", a.get("name")) for a in (record.get("threat_model", {}) or {}).get("attacks", [])]
    hi_idx = headline_index(record)
    clip = (record.get("model", {}) or {}).get("clip_values") or [0.0, 1.0]
    lo, hi = float(clip[0]), float(clip[1])
    span = hi - lo if hi > lo else 1.0
    first = np.asarray(samples["first_attack"])
    idx = np.flatnonzero(first[hi_idx] >= 0)[:max_samples] if hi_idx is not None and hi_idx < len(first) else []
    x, x_adv = samples["x"], samples["x_adv"]
    y, adv_pred = np.asarray(samples["y"]), np.asarray(samples["adv_pred"])
    clean_pred = np.asarray(samples["clean_pred"]) if _has(samples, "clean_pred") else y
    ok = len(idx) > 0 and _as_image(np.asarray(x[int(idx[0])])) is not None
    cols = max(1, len(idx)) if ok else 1
    fig = _new_figure(max(4.0, 1.35 * cols + 0.8), 4.6)
    if not ok:
        ax = fig.add_subplot()
        head = f" at ε = {eps_text(results[hi_idx])}" if hi_idx is not None else ""
        _message(ax, f"no broken sample{head}" if len(idx) == 0 else "inputs are not images: no gallery")
        return fig
    axes = np.asarray(fig.subplots(3, cols, squeeze=False))
    for j, i in enumerate(int(k) for k in idx):
        clean_img, gray = _as_image(np.asarray(x[i]))
        adv_img, _ = _as_image(np.asarray(x_adv[hi_idx][i]))
        delta = adv_img - clean_img
        amp = float(np.max(np.abs(delta)))
        shown_delta = 0.5 + delta / (2 * amp) if amp > 0 else np.full_like(delta, 0.5)
        cmap = "gray" if gray else None
        by = int(first[hi_idx][i])
        attack = _plain(labels[by]) if 0 <= by < len(labels) else "?"
        panels = [
            ((clean_img - lo) / span, f"y={int(y[i])}, pred {int(clean_pred[i])}"),
            ((adv_img - lo) / span, f"{int(y[i])} → {int(adv_pred[hi_idx][i])}\n{attack}"),
            (shown_delta, f"δ ×{1 / (2 * amp):.3g}" if amp > 0 else "δ = 0"),
        ]
        for row, (img, title) in enumerate(panels):
            ax = axes[row, j]
            ax.imshow(np.clip(img, 0.0, 1.0), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_title(title, fontsize=8, color=_ROBUST if row == 1 else "#111827")
            ax.set_xticks([])
            ax.set_yticks([])
    for row, name in enumerate(("clean", "adversarial", "perturbation\n(amplified)")):
        axes[row, 0].set_ylabel(name, fontsize=9)
    fig.suptitle(f"Broken samples at ε = {eps_text(results[hi_idx])} (first {len(idx)}): "
                 f"label → adversarial prediction", fontsize=10)
    return fig


# -- public API -------------------------------------------------------------------------------------------
def figures(record: dict, samples: Any = None) -> dict[str, "Figure"]:
    """The scorecard's plots, keyed ``robustness_curve``, ``perturbation_norms``, ``per_class``, ``gallery``.

    ``perturbation_norms`` and ``gallery`` need ``samples`` (the per-sample arrays: a dict or an opened
    ``.npz``); without them, or when an array they need is missing, they are left out.
    """
    out: dict[str, Figure] = {"robustness_curve": _robustness_curve(record)}
    if _has(samples, "first_attack", "linf", "l2"):
        out["perturbation_norms"] = _perturbation_norms(record, samples)
    elif samples is not None:
        log.info("perturbation_norms plot skipped: samples lack first_attack/linf/l2")
    out["per_class"] = _per_class(record)
    if _has(samples, "first_attack", "x", "x_adv", "y", "adv_pred"):
        out["gallery"] = _gallery(record, samples)
    elif samples is not None:
        log.info("gallery plot skipped: samples lack first_attack/x/x_adv/y/adv_pred")
    return out


def figure_png_bytes(fig: "Figure") -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def figure_png_base64(fig: "Figure") -> str:
    """The figure as a base64 PNG (ASCII, without the ``data:`` prefix)."""
    return base64.b64encode(figure_png_bytes(fig)).decode("ascii")


def save_plots(record: dict, samples: Any, out_dir: str | Path) -> list[Path]:
    """Write ``out_dir/plots/<key>.png`` for each figure atomically; return the paths in display order."""
    plots_dir = Path(out_dir) / "plots"
    paths = []
    for key, fig in figures(record, samples).items():
        paths.append(atomic_write_bytes(plots_dir / f"{key}.png", figure_png_bytes(fig)))
    return paths
