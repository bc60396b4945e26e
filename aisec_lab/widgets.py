"""Interactive explorer: pick an attack, slide ε, pick a sample; see what the attack does to it.

>>> explorer = al.widgets.Explorer(target, data, attacks=["fgsm", "pgd", "square"])   # doctest: +SKIP
>>> explorer                                    # in Jupyter: the widget            # doctest: +SKIP
>>> state = explorer.compute("pgd", 0.1, 7)     # the same computation, headless    # doctest: +SKIP
>>> fig = explorer.render(state)                # clean / adversarial / perturbation  # doctest: +SKIP

The widget (ipywidgets, matplotlib figures shown as PNG images) is a thin shell: every callback calls a
plain method -- :meth:`Explorer.compute` (one attack on one sample, cached per attack, ε and sample),
:meth:`Explorer.render` (a matplotlib figure of a state) and :meth:`Explorer.curve_figure` (the
robustness curve of a scorecard) -- so all of it runs and is tested without a browser.

ipywidgets is imported when an :class:`Explorer` is built, never by ``import aisec_lab``; matplotlib
when a figure is drawn.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._optional import require
from .attacks.registry import attack as _attack
from .attacks.registry import list_attacks
from .attacks.registry import PRESETS
from .attacks.spec import AttackSpec, normalize_norm
from .errors import ConfigError, DataError, IncompatibleModelError, UnknownComponentError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .scorecard.record import Scorecard

__all__ = ["Explorer", "ExplorerState", "FAST_DEFAULTS"]

log = logging.getLogger(__name__)

#: Hyperparameters the explorer uses for attacks given by name: one sample should take about a
#: second, not a minute. They apply only to fields the attack has; pass specs
#: (``al.attack("pgd", max_iter=100)``) or ``fast=False`` to run the catalog's defaults.
FAST_DEFAULTS: dict[str, dict[str, Any]] = {
    "pgd": {"max_iter": 20},
    "apgd_ce": {"max_iter": 20},
    "apgd_dlr": {"max_iter": 20},
    "square": {"max_iter": 200},
    "cw_l2": {"max_iter": 20, "binary_search_steps": 5, "initial_const": 0.1},
    "deepfool": {"max_iter": 20},
    "hop_skip_jump": {"max_iter": 10, "max_eval": 500, "init_eval": 20},
    "boundary": {"max_iter": 200},
}

#: default ε sweeps, as fractions of the input range (L∞), of range·√d (L2) and of range·d (L1)
_DEFAULT_EPS = {"linf": (0.05, 0.1, 0.2, 0.3), "l2": (0.03, 0.06, 0.125, 0.25), "l1": (0.01, 0.02, 0.05, 0.1)}
_BOUND_TOL = 1e-5
_DPI = 100
_CLEAN = "#2563eb"
_ADV = "#dc2626"


# -- the computed state ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ExplorerState:
    """What one attack did to one sample at one ε (all arrays are the single sample, no batch axis).

    ``success`` is the engine's notion of *broken*: the clean prediction was right, the adversarial one
    is wrong, and the example lies inside the ε-ball and the clip box. A minimum-norm attack
    (``minimal``) ignores ε; its example counts only when its norm is within ε (``within_eps``).
    """

    attack: str
    norm: str
    eps: float
    index: int
    label: int
    x: np.ndarray
    x_adv: np.ndarray
    perturbation: np.ndarray
    clean_probs: np.ndarray
    adv_probs: np.ndarray
    clean_pred: int
    adv_pred: int
    clean_conf: float
    adv_conf: float
    linf: float
    l2: float
    l1: float
    within_eps: bool
    in_clip: bool
    success: bool
    minimal: bool = False
    seconds: float = 0.0
    params: dict = dataclasses.field(default_factory=dict)

    @property
    def clean_correct(self) -> bool:
        return self.clean_pred == self.label

    @property
    def flipped(self) -> bool:
        """The adversarial prediction differs from the clean one."""
        return self.adv_pred != self.clean_pred

    @property
    def norm_value(self) -> float:
        """The perturbation's size in the threat model's norm."""
        return {"linf": self.linf, "l2": self.l2, "l1": self.l1}[self.norm]

    @property
    def verdict(self) -> str:
        if not self.clean_correct:
            return "misclassified without attack"
        if self.success:
            return "broken"
        if self.flipped and not self.within_eps:
            return f"fooled only outside ε ({self.norm} norm {self.norm_value:.4g} > {self.eps:.4g})"
        if not self.in_clip:
            return "invalid: adversarial example leaves the clip range"
        return "robust to this attack"

    def summary(self) -> str:
        return (f"sample {self.index} (label {self.label}) · {self.attack} at ε={self.eps:.4g} ({self.norm}): "
                f"clean {self.clean_pred} ({self.clean_conf:.1%}) → adversarial {self.adv_pred} "
                f"({self.adv_conf:.1%}); ‖δ‖∞={self.linf:.4g}, ‖δ‖₂={self.l2:.4g}; {self.verdict}")


# -- helpers ----------------------------------------------------------------------------------------------
def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _unpack_data(data: Any) -> tuple[np.ndarray, np.ndarray, tuple[str, ...] | None, Any]:
    from .data.dataset import Dataset

    if isinstance(data, Dataset):
        return np.asarray(data.x), np.asarray(data.y), data.class_names, data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = (np.asarray(v) for v in data)
        if len(x) != len(y):
            raise DataError("x and y have different lengths", got=f"{len(x)} samples, {len(y)} labels",
                            fix="pass one label per sample")
        return x, y, None, None
    raise ConfigError("data must be a Dataset or a pair (x, y)", got=type(data).__name__,
                      fix="e.g. al.load_dataset('digits', split='test') or (x, y) arrays in channels-first layout")


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _new_figure(width: float, height: float) -> "Figure":
    require("matplotlib", purpose="draw the explorer's figures", extra="notebooks")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _png(fig: "Figure") -> bytes:
    from .scorecard.render.plots import figure_png_bytes

    return figure_png_bytes(fig)


# -- the explorer -----------------------------------------------------------------------------------------
class Explorer:
    """An ipywidgets explorer of one target on one data set.

    Parameters
    ----------
    target:
        A wrapped model (:func:`aisec_lab.wrap_model`, :func:`aisec_lab.zoo.target`).
    data:
        A :class:`~aisec_lab.Dataset` or a pair ``(x, y)`` in the target's layout; the sample slider
        browses it.
    attacks:
        Attack names and/or specs for the dropdown, a preset name, or ``None`` for every registered attack
        that supports ``norm`` and the target. Attacks given by name get :data:`FAST_DEFAULTS` (unless
        ``fast=False``); specs run as given.
    norm:
        ``"linf"``, ``"l2"`` or ``"l1"``.
    eps_values:
        The ε sweep: the slider runs from 0 to its largest value, and the lazily computed robustness
        curve is evaluated at these ε. Default: a sweep scaled to the target's input range and size.
    scorecard:
        A :class:`~aisec_lab.Scorecard` (or the path of a saved one) whose robustness curve is shown.
        Without one, the curve of the selected attack is computed on demand by a tiny
        :func:`aisec_lab.evaluate` on ``curve_samples`` samples (the "robustness curve" button, or
        ``curve=True`` to compute it at once).
    seed:
        Seed of every attack run (and of the curve's sample draw).
    attack, eps, index:
        The initial selection (default: PGD when offered, else the first attack; the middle ε of the
        sweep; sample 0).
    fast:
        Apply :data:`FAST_DEFAULTS` to attacks given by name.
    curve:
        Compute and show the robustness curve at once (it is shown at once anyway when ``scorecard`` is
        given).
    curve_samples:
        Samples of the tiny evaluation behind a computed robustness curve (stratified, drawn with ``seed``).
    cache_size:
        How many computed (attack, ε, sample) results are kept.

    The controls are ``attack_dropdown``, ``eps_slider`` and ``index_slider``; ``widget`` is the whole
    ipywidgets container; ``state`` the last :class:`ExplorerState` shown (``error`` the last failure).
    """

    def __init__(self, target: Any, data: Any, *, attacks: Any = None, norm: Any = "linf",
                 eps_values: Any = None, scorecard: Any = None, seed: int = 0, attack: Any = None,
                 eps: float | None = None, index: int = 0, fast: bool = True, curve: bool = False,
                 curve_samples: int = 32, cache_size: int = 256) -> None:
        for attr in ("predict", "input_shape", "clip_values", "nb_classes"):
            if not hasattr(target, attr):
                raise IncompatibleModelError("the explorer needs a wrapped target", got=type(target).__name__,
                                             fix="wrap the model first: al.wrap_model(model, ...) or al.zoo.target(name)")
        if not _is_int(seed) or seed < 0:
            raise ConfigError("seed must be a non-negative integer", got=seed, fix="e.g. seed=0")
        if not _is_int(curve_samples) or curve_samples < 1:
            raise ConfigError("curve_samples must be a positive integer", got=curve_samples, fix="e.g. curve_samples=32")
        if not _is_int(cache_size) or cache_size < 1:
            raise ConfigError("cache_size must be a positive integer", got=cache_size, fix="e.g. cache_size=256")
        self.target = target
        self.norm = normalize_norm(norm)
        self.seed = int(seed)
        self.fast = bool(fast)
        self.curve_samples = int(curve_samples)
        x, y, self.class_names, self._dataset = _unpack_data(data)
        self.x = target.check_data(x, y, what="data") if hasattr(target, "check_data") else np.asarray(x, np.float32)
        self.y = np.asarray(y).astype(np.int64)
        if len(self.x) == 0:
            raise DataError("the explorer needs at least one sample", got="0 samples", fix="pass non-empty data")
        if self.y.ndim != 1:
            raise DataError("labels must be one integer class per sample", got=f"labels of shape {self.y.shape}",
                            fix="pass integer labels (not one-hot)")
        self.specs: dict[str, AttackSpec] = self._resolve(attacks)
        self.eps_values = self._resolve_eps(eps_values)
        self.scorecard = self._load_scorecard(scorecard)
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = int(cache_size)
        self._clean: dict[int, np.ndarray] = {}
        self._curve_cards: dict[str, Any] = {}
        self.state: ExplorerState | None = None
        self.error: Exception | None = None
        self.curve_error: Exception | None = None
        self._suspended = False

        if attack is None:  # PGD when offered: the usual first look; else the first (cheapest) attack
            attack = "pgd" if "pgd" in self.specs else next(iter(self.specs))
        first = self._label(attack)
        eps0 = self.eps_values[len(self.eps_values) // 2] if eps is None else self._check_eps(eps)
        index0 = self._check_index(index)
        self._build_widgets(first, eps0, index0)
        self.update()
        if curve or self.scorecard is not None:
            self.show_curve()

    # -- configuration ---------------------------------------------------------------------------------
    def _fast(self, name: str) -> AttackSpec:
        spec = _attack(name)
        if not self.fast:
            return spec
        names = {f.name for f in dataclasses.fields(spec)}
        params = {k: v for k, v in FAST_DEFAULTS.get(name, {}).items() if k in names}
        return spec.with_params(**params) if params else spec

    def _applies(self, spec: AttackSpec) -> str | None:
        try:
            spec.check(self.target, self.norm)
        except (ConfigError, IncompatibleModelError) as exc:
            return exc.what
        return None

    def _resolve(self, attacks: Any) -> dict[str, AttackSpec]:
        if attacks is None:
            candidates = [self._fast(n) for n in list_attacks(self.norm)]
            specs = [s for s in candidates if self._applies(s) is None]
            specs.sort(key=lambda s: (s.cost_rank, s.label))
            if not specs:
                raise ConfigError("no registered attack applies to this target and norm",
                                  got=f"norm={self.norm}, target {getattr(self.target, 'name', '?')!r}",
                                  fix="choose another norm or pass attack specs")
            return {s.label: s for s in specs}
        if isinstance(attacks, str):
            if attacks in PRESETS:
                candidates = PRESETS.get(attacks)(self.norm)
                specs = [self._fast(s.name) if s.params() == _attack(s.name).params() else s for s in candidates]
                specs = [s for s in specs if self._applies(s) is None]
                if not specs:
                    raise ConfigError(f"no attack of preset {attacks!r} applies to this target and norm",
                                      got=f"norm={self.norm}", fix="choose another preset or norm, or list attacks")
                return {s.label: s for s in specs}
            attacks = [attacks]
        if isinstance(attacks, AttackSpec):
            attacks = [attacks]
        if not isinstance(attacks, (list, tuple)) or not attacks:
            raise ConfigError("attacks must be None, a preset name, or a non-empty list of attack names/specs",
                              got=attacks, fix="e.g. attacks=['fgsm', 'pgd', al.attack('square', max_iter=500)]")
        out: dict[str, AttackSpec] = {}
        for a in attacks:
            if isinstance(a, str):
                spec = self._fast(a)  # unknown names raise UnknownComponentError with did-you-mean
            elif isinstance(a, AttackSpec):
                spec = a
            else:
                raise ConfigError("each attack must be a name or an attack spec", got=a,
                                  fix="e.g. 'pgd' or al.attack('pgd', max_iter=50)")
            reason = self._applies(spec)
            if reason is not None:
                spec.check(self.target, self.norm)  # re-raise with the full message
            if spec.label in out:
                raise ConfigError("the same attack is listed twice", got=spec.label, fix="list each attack once")
            out[spec.label] = spec
        return out

    def _resolve_eps(self, eps_values: Any) -> list[float]:
        from .evaluation.metrics import validate_eps

        size = int(np.prod(self.target.input_shape))
        clip_range = float(self.target.clip_range) if hasattr(self.target, "clip_range") else 1.0
        if eps_values is None:
            scale = {"linf": clip_range, "l2": clip_range * math.sqrt(size), "l1": clip_range * size}[self.norm]
            eps_values = [round(f * scale, 6) for f in _DEFAULT_EPS[self.norm]]
        values = validate_eps(eps_values, norm=self.norm, clip_range=clip_range, input_size=size)
        if max(values) <= 0:
            raise ConfigError("eps_values need at least one positive ε", got=values, fix="e.g. eps_values=[0.05, 0.1, 0.2]")
        return values

    def _load_scorecard(self, scorecard: Any):
        if scorecard is None:
            return None
        from .scorecard.record import Scorecard

        if isinstance(scorecard, (str, os.PathLike)):
            scorecard = Scorecard.load(scorecard)
        if not isinstance(scorecard, Scorecard):
            raise ConfigError("scorecard must be a Scorecard or the path of a saved one", got=type(scorecard).__name__,
                              fix="pass al.Scorecard.load('runs/x') or the result of al.evaluate(...)")
        norm = scorecard.threat_model.get("norm")
        if norm and normalize_norm(norm) != self.norm:
            log.warning("the scorecard was evaluated under the %s norm, the explorer uses %s", norm, self.norm)
        return scorecard

    def _label(self, attack: Any) -> str:
        if isinstance(attack, AttackSpec):
            if attack.label not in self.specs:
                self.specs[attack.label] = attack
                if hasattr(self, "attack_dropdown"):  # offer it in the dropdown too, keeping the selection
                    current, self._suspended = self.attack_dropdown.value, True
                    try:
                        self.attack_dropdown.options = list(self.specs)
                        self.attack_dropdown.value = current
                    finally:
                        self._suspended = False
            return attack.label
        if isinstance(attack, str) and attack in self.specs:
            return attack
        labels = list(self.specs)
        close = difflib.get_close_matches(str(attack), labels, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownComponentError(f"attack {attack!r} is not in this explorer",
                                    fix=f"{hint}available: {', '.join(labels)}")

    def _check_eps(self, eps: Any) -> float:
        if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(eps)) or eps < 0:
            raise ConfigError("ε must be a finite number >= 0", got=eps, fix="e.g. eps=0.1")
        return float(eps)

    def _check_index(self, index: Any) -> int:
        if not _is_int(index) or not 0 <= int(index) < len(self.x):
            raise ConfigError("sample index out of range", got=index, fix=f"use 0 <= index < {len(self.x)}")
        return int(index)

    # -- computing (plain methods: what the widget callbacks call) ---------------------------------------
    @property
    def attacks(self) -> list[str]:
        """The attack labels in the dropdown, in order."""
        return list(self.specs)

    def _clean_probs(self, index: int) -> np.ndarray:
        if index not in self._clean:
            self._clean[index] = _softmax(self.target.predict(self.x[index:index + 1])[0])
        return self._clean[index]

    def compute(self, attack: Any, eps: float, index: int) -> ExplorerState:
        """Run ``attack`` on sample ``index`` at ``eps`` (a batch of one); cached per (attack, ε, index).

        ε = 0 runs nothing: no perturbation is allowed, so the adversarial example is the clean input.
        A minimum-norm attack ignores ε; it runs once per sample and its example is judged against ε.
        """
        label = self._label(attack)
        spec = self.specs[label]
        eps = self._check_eps(eps)
        index = self._check_index(index)
        key = (label, None if spec.minimal and eps > 0 else round(eps, 12), index)
        x_adv, seconds = self._cache_get(key)
        if x_adv is None:
            x = self.x[index:index + 1]
            start = time.perf_counter()
            if eps == 0:
                x_adv = x.copy()
            else:
                out = spec.run(self.target, x, self.y[index:index + 1], norm=self.norm, eps=eps, seed=self.seed)
                x_adv = np.asarray(out, dtype=np.float32).reshape(x.shape)
            seconds = time.perf_counter() - start
            self._cache_put(key, (x_adv, seconds))
            log.info("explorer: %s on sample %d at eps=%g took %.2f s", label, index, eps, seconds)
        return self._state(spec, label, eps, index, x_adv[0], seconds)

    def _cache_get(self, key):
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        return None, 0.0

    def _cache_put(self, key, value) -> None:
        self._cache[key] = value
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _state(self, spec: AttackSpec, label: str, eps: float, index: int, x_adv: np.ndarray,
               seconds: float) -> ExplorerState:
        x = self.x[index]
        clean_probs = self._clean_probs(index)
        adv_probs = clean_probs if np.array_equal(x_adv, x) else _softmax(self.target.predict(x_adv[None])[0])
        delta = (x_adv.astype(np.float64) - x.astype(np.float64))
        flat = delta.reshape(-1)
        linf = float(np.abs(flat).max(initial=0.0))
        l2 = float(np.sqrt((flat * flat).sum()))
        l1 = float(np.abs(flat).sum())
        size = {"linf": linf, "l2": l2, "l1": l1}[self.norm]
        tol = _BOUND_TOL * max(1.0, eps)
        within = size <= eps + tol
        lo, hi = (np.asarray(v, dtype=np.float64) for v in self.target.clip_values)
        span = float(np.max(hi - lo)) if np.ndim(hi) else float(hi - lo)
        in_clip = bool(np.all(x_adv >= lo - 1e-6 * span) and np.all(x_adv <= hi + 1e-6 * span))
        clean_pred = int(np.argmax(clean_probs))
        adv_pred = int(np.argmax(adv_probs))
        y = int(self.y[index])
        success = clean_pred == y and adv_pred != y and within and in_clip
        return ExplorerState(
            attack=label, norm=self.norm, eps=eps, index=index, label=y, x=x.copy(), x_adv=x_adv.copy(),
            perturbation=delta.astype(np.float32), clean_probs=clean_probs, adv_probs=adv_probs,
            clean_pred=clean_pred, adv_pred=adv_pred, clean_conf=float(clean_probs[clean_pred]),
            adv_conf=float(adv_probs[adv_pred]), linf=linf, l2=l2, l1=l1, within_eps=bool(within),
            in_clip=in_clip, success=bool(success), minimal=bool(spec.minimal), seconds=float(seconds),
            params=spec.params())

    def _class(self, k: int) -> str:
        if self.class_names and 0 <= k < len(self.class_names) and str(self.class_names[k]) != str(k):
            return f"{k} ({self.class_names[k]})"
        return str(k)

    # -- drawing ---------------------------------------------------------------------------------------
    def render(self, state: ExplorerState) -> "Figure":
        """Clean / adversarial / amplified perturbation (three image axes) and the class probabilities."""
        from .scorecard.render.plots import _as_image, _plain

        fig = _new_figure(11.0, 3.3)
        axes = fig.subplots(1, 4, width_ratios=[1, 1, 1, 1.5])
        lo_v, hi_v = (np.asarray(v, dtype=np.float64) for v in self.target.clip_values)
        lo = float(np.min(lo_v))
        hi = float(np.max(hi_v))
        span = hi - lo if hi > lo else 1.0
        delta = np.asarray(state.perturbation, dtype=np.float64)
        amp = float(np.max(np.abs(delta))) if delta.size else 0.0
        titles = [
            f"clean: pred {self._class(state.clean_pred)} ({state.clean_conf:.1%})\nlabel {self._class(state.label)}",
            f"{_plain(state.attack)}, ε={state.eps:.4g}: pred {self._class(state.adv_pred)} "
            f"({state.adv_conf:.1%})",
            (f"perturbation ×{1 / (2 * amp):.3g}" if amp > 0 else "perturbation: none")
            + f"\n‖δ‖∞={state.linf:.3g}  ‖δ‖₂={state.l2:.3g}",
        ]
        clean_img = _as_image(state.x)
        if clean_img is not None:
            adv_img, _ = _as_image(state.x_adv)
            d_img, _ = _as_image(delta)
            gray = clean_img[1]
            shown_delta = 0.5 + d_img / (2 * amp) if amp > 0 else np.full_like(d_img, 0.5)
            panels = [(clean_img[0] - lo) / span, (adv_img - lo) / span, shown_delta]
            for ax, img, title in zip(axes[:3], panels, titles):
                ax.imshow(np.clip(img, 0.0, 1.0), cmap="gray" if gray else None, vmin=0.0, vmax=1.0,
                          interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
        else:  # not an image: draw the features as lines
            flat = [np.ravel(state.x), np.ravel(state.x_adv), np.ravel(delta)]
            for ax, values in zip(axes[:3], flat):
                ax.plot(values, linewidth=1.0)
                ax.grid(True, alpha=0.3)
        for k, (ax, title) in enumerate(zip(axes[:3], titles)):
            color = _ADV if (k == 1 and state.flipped) else "#111827"
            ax.set_title(title, fontsize=9, color=color)
        self._probabilities(axes[3], state)
        color = _ADV if state.success else "#111827"
        fig.suptitle(f"sample {state.index}: {state.verdict}", fontsize=10, color=color)
        return fig

    def _probabilities(self, ax, state: ExplorerState) -> None:
        k = len(state.clean_probs)
        show = np.arange(k)
        if k > 10:  # the classes that matter: the label, both predictions, then the most likely
            keep = {state.label, state.clean_pred, state.adv_pred}
            order = np.argsort(-(state.clean_probs + state.adv_probs))
            for c in order:
                if len(keep) >= 10:
                    break
                keep.add(int(c))
            show = np.array(sorted(keep))
        pos = np.arange(len(show))
        width = 0.4
        ax.bar(pos - width / 2, state.clean_probs[show], width, color=_CLEAN, label="clean")
        ax.bar(pos + width / 2, state.adv_probs[show], width, color=_ADV, label="adversarial")
        ax.set_xticks(pos)
        ax.set_xticklabels([str(int(c)) for c in show], fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("class")
        ax.set_ylabel("softmax probability")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")

    def robustness_scorecard(self, attack: Any = None) -> "Scorecard":
        """The scorecard behind the curve: the one given, or a tiny evaluation of ``attack`` (default: the
        selected one) at ``eps_values`` on ``curve_samples`` samples, computed once per attack."""
        if self.scorecard is not None:
            return self.scorecard
        label = self._label(attack if attack is not None else self.attack_dropdown.value)
        if label not in self._curve_cards:
            from .data.dataset import from_arrays
            from .evaluation import evaluate

            data = self._dataset if self._dataset is not None else from_arrays(
                self.x, self.y, nb_classes=int(self.target.nb_classes))
            n = min(self.curve_samples, len(self.x))
            eps = [e for e in self.eps_values if e > 0]
            self._curve_cards[label] = evaluate(self.target, data, attacks=[self.specs[label]], norm=self.norm,
                                                eps=eps, n_samples=n, seed=self.seed, progress=False)
        return self._curve_cards[label]

    def curve_figure(self, eps: float | None = None, attack: Any = None) -> "Figure":
        """The robustness curve (accuracy vs ε) of :meth:`robustness_scorecard`, with ``eps`` marked."""
        from .scorecard.render.plots import figures

        card = self.robustness_scorecard(attack)
        fig = figures(card.to_dict())["robustness_curve"]
        ax = fig.axes[0]
        if eps is not None:
            ax.axvline(float(eps), color=_ADV, linestyle="--", linewidth=1.2, zorder=1, label=f"explorer ε = {eps:.4g}")
            ax.legend(fontsize=8, loc="lower left", framealpha=0.9)
        source = "given scorecard" if self.scorecard is not None else (
            f"{self._label(attack if attack is not None else self.attack_dropdown.value)}, "
            f"{card.clean['n']} samples")
        fig.suptitle(f"robustness curve ({_plain_text(source)})", fontsize=10)
        return fig

    # -- the widget -------------------------------------------------------------------------------------
    def _build_widgets(self, attack: str, eps: float, index: int) -> None:
        widgets = require("ipywidgets", purpose="show the interactive explorer", extra="notebooks")
        top = max(self.eps_values)
        self.attack_dropdown = widgets.Dropdown(options=list(self.specs), value=attack, description="attack")
        self.eps_slider = widgets.FloatSlider(value=min(eps, top), min=0.0, max=top, step=top / 200,
                                              description=f"ε ({self.norm})", readout_format=".4g",
                                              continuous_update=False)
        self.index_slider = widgets.IntSlider(value=index, min=0, max=len(self.x) - 1, step=1, description="sample",
                                              continuous_update=False)
        self.status = widgets.HTML(value="")
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="100%", max_width="1100px"))
        label = "show robustness curve" if self.scorecard is not None else \
            f"compute robustness curve ({min(self.curve_samples, len(self.x))} samples)"
        self.curve_button = widgets.Button(description=label, layout=widgets.Layout(width="auto"),
                                           tooltip="a tiny al.evaluate of the selected attack at eps_values")
        self.curve_image = widgets.Image(format="png", layout=widgets.Layout(width="100%", max_width="760px",
                                                                              display="none"))
        self.curve_status = widgets.HTML(value="")
        for w in (self.attack_dropdown, self.eps_slider, self.index_slider):
            w.observe(self._on_change, names="value")
        self.curve_button.on_click(self._on_curve_click)
        self.widget = widgets.VBox([
            widgets.HBox([self.attack_dropdown, self.eps_slider, self.index_slider]),
            self.status, self.image,
            widgets.HBox([self.curve_button, self.curve_status]), self.curve_image,
        ])

    def _on_change(self, change: Any = None) -> None:
        if self._suspended:
            return
        self.update()
        if self._curve_shown():
            self.show_curve()

    def _on_curve_click(self, button: Any = None) -> None:
        self.show_curve()

    def _curve_shown(self) -> bool:
        return self.curve_image.layout.display != "none"

    def select(self, attack: Any = None, eps: float | None = None, index: int | None = None) -> ExplorerState | None:
        """Set the widget's values (as a user would) and return the state it computed."""
        label = self._label(attack) if attack is not None else None
        eps = self._check_eps(eps) if eps is not None else None
        index = self._check_index(index) if index is not None else None
        before = (self.attack_dropdown.value, self.eps_slider.value, self.index_slider.value)
        self._suspended = True  # one computation for all the changes, not one per control
        try:
            if label is not None:
                self.attack_dropdown.value = label
            if eps is not None:
                self.eps_slider.value = min(eps, self.eps_slider.max)
            if index is not None:
                self.index_slider.value = index
        finally:
            self._suspended = False
        if (self.attack_dropdown.value, self.eps_slider.value, self.index_slider.value) != before:
            self._on_change()
        return self.state

    def update(self) -> ExplorerState | None:
        """Recompute for the widget's current values and redraw (what every control's callback does)."""
        import html

        attack, eps, index = self.attack_dropdown.value, float(self.eps_slider.value), int(self.index_slider.value)
        self.status.value = f"<i>running {html.escape(attack)} on sample {index} at ε={eps:.4g}…</i>"
        try:
            state = self.compute(attack, eps, index)
            fig = self.render(state)
        except Exception as exc:  # noqa: BLE001 - a callback must not die silently: show the error
            log.exception("explorer: %s on sample %d at eps=%g failed", attack, index, eps)
            self.error = exc
            self.status.value = f"<span style='color:{_ADV}'>{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</span>"
            return None
        self.error = None
        self.state = state
        self.image.value = _png(fig)
        color = _ADV if state.success else "#111827"
        self.status.value = (f"<span style='color:{color}'>{html.escape(state.summary())}</span>"
                             f" <small>({state.seconds:.2f} s)</small>")
        return state

    def show_curve(self) -> "Figure | None":
        """Compute (once per attack) and show the robustness curve with the current ε marked."""
        import html

        self.curve_status.value = "<i>computing the robustness curve…</i>"
        try:
            fig = self.curve_figure(eps=float(self.eps_slider.value))
        except Exception as exc:  # noqa: BLE001
            log.exception("explorer: robustness curve failed")
            self.curve_error = exc
            self.curve_status.value = f"<span style='color:{_ADV}'>{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</span>"
            return None
        self.curve_error = None
        self.curve_image.value = _png(fig)
        self.curve_image.layout.display = None
        self.curve_status.value = ""
        return fig

    def display(self) -> None:
        """Show the explorer in the notebook (the widget, with a PNG of the current figure for static views)."""
        from IPython.display import display

        display(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        bundle = dict(self.widget._repr_mimebundle_() or {})
        if self.image.value:  # static viewers (nbconvert, GitHub) show this instead of the live widget
            import base64

            bundle["image/png"] = base64.b64encode(bytes(self.image.value)).decode("ascii")
        bundle["text/plain"] = repr(self)
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)

    def __repr__(self) -> str:
        return (f"Explorer(target={getattr(self.target, 'name', '?')!r}, samples={len(self.x)}, norm={self.norm!r}, "
                f"attacks={self.attacks}, eps_values={self.eps_values})")


def _plain_text(text: str) -> str:
    return str(text).replace("$", r"\$")
