"""Adversarial-input detectors for operational monitoring: flag inputs that look like attacks.

A detector is trained once per target on clean samples (label 0) and adversarial examples of one
attack (label 1), then scores new inputs with the probability that they are adversarial::

    det = al.defenses.train_detector(target, train, eps=0.1, n_samples=300)   # PGD L∞ examples
    det.predict(x)                               # True where an input is flagged
    sc.detection = det.evaluate(sc)              # false-positive and detection rates into the scorecard

Detectors are looked up by name in :data:`DETECTORS` (``list_detectors()``); a new one subclasses
:class:`Detector` and registers itself with ``DETECTORS.register("name", cls)``.

What the numbers mean. :func:`detection_section` measures the false-positive rate on every clean
sample evaluated and, per ε, the detection rate among the samples whose adversarial example broke the
model. The attacks that produced those examples knew nothing about the detector: an adaptive attacker
who optimises against model *and* detector evades such detectors far more often (Carlini & Wagner,
"Adversarial Examples Are Not Easily Detected", AISec 2017), so the section records ``adaptive: false``
and the renderers say so.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import math
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, DataError, IncompatibleModelError
from ..registry import Registry

__all__ = ["DETECTORS", "Detector", "BinaryInputDetector", "train_detector", "detection_section",
           "list_detectors"]

log = logging.getLogger(__name__)

#: name -> :class:`Detector` subclass
DETECTORS: Registry = Registry("detector")

_BATCH = 256


def list_detectors() -> list[str]:
    """Names of every registered detector."""
    return DETECTORS.names()


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _check_target(target: Any, what: str = "target") -> None:
    from ..models.spec import Target

    if not isinstance(target, Target):
        raise IncompatibleModelError(f"{what} must be a wrapped model (aisec_lab.Target)", got=type(target).__name__,
                                     fix="wrap the model first: target = al.wrap_model(model, ...)")


def _check_threshold(threshold: Any) -> float:
    if not _is_number(threshold) or not math.isfinite(threshold) or not 0 < threshold < 1:
        raise ConfigError("a detector threshold must be a probability strictly between 0 and 1", got=threshold,
                          fix="e.g. threshold=0.5 (higher flags fewer inputs: fewer false positives, fewer detections)")
    return float(threshold)


class Detector:
    """A trained adversarial-input detector for one target.

    Subclasses set ``name``, list their hyperparameters in ``defaults`` (each is an ``__init__``
    keyword), and implement :meth:`_fit` and :meth:`_score` over the feature rows of :meth:`features`.
    ``threshold`` (a probability, default 0.5) is a hyperparameter of every detector.
    """

    name: ClassVar[str] = ""
    #: hyperparameters and their defaults (``threshold`` included)
    defaults: ClassVar[dict[str, Any]] = {"threshold": 0.5}

    def __init__(self, target: Any, *, seed: int = 0, **params: Any):
        _check_target(target)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError("seed must be a non-negative integer", got=seed, fix="e.g. seed=0")
        unknown = [k for k in params if k not in self.defaults]
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(self.defaults), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"detector {self.name!r} has no hyperparameter {unknown[0]!r}", got=sorted(params),
                              fix=f"{hint}its hyperparameters: {', '.join(self.defaults)}")
        self.target = target
        self.seed = int(seed)
        self._params = {**self.defaults, **params}
        self._params["threshold"] = _check_threshold(self._params["threshold"])
        self._validate_params()
        self.trained_on: dict[str, Any] | None = None

    # -- to implement --------------------------------------------------------------------------------
    def _validate_params(self) -> None:
        """Raise :class:`ConfigError` on a bad hyperparameter (``self._params``)."""

    def _fit(self, features: np.ndarray, labels: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _fit()")

    def _score(self, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement _score()")

    # -- public --------------------------------------------------------------------------------------
    @property
    def threshold(self) -> float:
        return float(self._params["threshold"])

    @property
    def params(self) -> dict[str, Any]:
        """Every hyperparameter as used (plain JSON values)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self._params.items()}

    def features(self, x: Any) -> np.ndarray:
        """One row per sample: the flattened input followed by the target's logits (float64)."""
        x = self.target.check_data(x, what="x")
        logits = self.target.predict(x, batch_size=_BATCH)
        return np.concatenate([x.reshape(len(x), -1), logits], axis=1).astype(np.float64)

    def _require_trained(self) -> None:
        if self.trained_on is None:
            raise ConfigError(f"detector {self.name!r} is not trained", got="an untrained detector",
                              fix="create detectors with aisec_lab.defenses.train_detector(target, data, eps=...)")

    def score(self, x: Any) -> np.ndarray:
        """Probability that each input is adversarial, shape ``(n,)``, float64 in [0, 1]."""
        self._require_trained()
        feats = self.features(x)
        if len(feats) == 0:
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self._score(feats), dtype=np.float64).reshape(len(feats))

    def predict(self, x: Any) -> np.ndarray:
        """``True`` where an input is flagged as adversarial (``score(x) >= threshold``)."""
        return self.score(x) >= self.threshold

    def info(self) -> dict[str, Any]:
        """``{"detector", "params", "trained_on"}`` as plain JSON (what the scorecard section records)."""
        self._require_trained()
        return {"detector": self.name, "params": self.params, "trained_on": dict(self.trained_on)}

    def evaluate(self, scorecard: Any) -> dict[str, Any]:
        """The scorecard ``detection`` section for the adversarial examples of an evaluation.

        Needs the scorecard's per-sample arrays (``x``, ``x_adv``, ``first_attack``; a scorecard from
        ``evaluate`` or loaded with its ``samples.npz``). Attach the result with
        ``sc.detection = detector.evaluate(sc)``.
        """
        from ..scorecard import Scorecard

        if not isinstance(scorecard, Scorecard):
            raise ConfigError("evaluate needs a Scorecard", got=type(scorecard).__name__,
                              fix="pass the result of aisec_lab.evaluate (or Scorecard.load(dir))")
        missing = [k for k in ("x", "x_adv", "first_attack") if k not in scorecard.samples]
        if missing:
            raise ConfigError("the scorecard has no per-sample arrays " + ", ".join(missing),
                              got=sorted(scorecard.samples),
                              fix="use the scorecard returned by evaluate, or load it from its directory with "
                                  "samples.npz beside scorecard.json; or call detection_section with the arrays")
        sha = scorecard.model.get("weights_sha256")
        if sha and self.target.weights_sha256 and sha != self.target.weights_sha256:
            log.warning("detector %r was trained on target %r whose weights differ from the scorecard's model %r",
                        self.name, self.target.name, scorecard.model.get("name"))
        broken = np.asarray(scorecard.samples["first_attack"]) >= 0
        return detection_section(self, scorecard.samples["x"], scorecard.samples["x_adv"], broken, scorecard.eps,
                                 [r.get("eps_display") or f"{r['eps']:g}" for r in scorecard.results])

    def __repr__(self) -> str:
        state = "untrained" if self.trained_on is None else (
            f"trained on {self.trained_on['attack']} {self.trained_on['norm']} eps={self.trained_on['eps']:g}")
        return f"{type(self).__name__}(target={self.target.name!r}, {state}, threshold={self.threshold:g})"


@DETECTORS.register("binary_input")
class BinaryInputDetector(Detector):
    """Binary classifier (clean vs adversarial) on the raw input concatenated with the target's logits.

    The classifier is scikit-learn's ``MLPClassifier`` (one hidden layer of ``hidden_layer_sizes``
    ReLU units, L2 penalty ``alpha``, Adam for at most ``max_iter`` epochs, ``random_state=seed``)
    behind a ``StandardScaler``, so raw pixels and logits of very different scales weigh alike; the
    same seed gives the same detector. ART's ``BinaryInputDetector`` needs a framework network built
    for each target; this one is framework-neutral, it only calls ``target.predict`` for the logits.

    Measured on the bundled digits (``digits_cnn``, PyTorch, seed 0), trained on 300 training digits
    with PGD L∞ ε = 0.1 (about 1 s): on the 450 test digits, 6 false positives (1.3 %, 95 % CI
    0.5–2.9 %). Of the successful PGD examples of ``evaluate(eps=[0.1, 0.2])`` it flags 98 % at
    ε = 0.1 (203 of 207) and 99 % at ε = 0.2 (434 of 438). With ``eps=[0.05, 0.1, 0.2]`` it flags
    65 % at ε = 0.05 (32 of 49, below the training ε), 91 % at 0.1 and 96 % at 0.2: a sample broken at
    a smaller ε keeps that smaller, harder-to-detect example at the larger ones. A logistic
    regression on the same features scored within a few points here (the MLP can also weigh
    interactions between pixels and logits, which a linear model cannot). These examples came from
    attacks that ignore the detector (see the module docstring).
    """

    name = "binary_input"
    defaults: ClassVar[dict[str, Any]] = {"hidden_layer_sizes": (64,), "alpha": 1e-4, "max_iter": 500,
                                          "threshold": 0.5}

    def _validate_params(self) -> None:
        sizes = self._params["hidden_layer_sizes"]
        if _is_number(sizes):
            sizes = (sizes,)
        if (not isinstance(sizes, (list, tuple)) or not sizes
                or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes)):
            raise ConfigError("hidden_layer_sizes must be a non-empty tuple of positive integers",
                              got=self._params["hidden_layer_sizes"], fix="e.g. hidden_layer_sizes=(64,)")
        self._params["hidden_layer_sizes"] = tuple(int(s) for s in sizes)
        alpha = self._params["alpha"]
        if not _is_number(alpha) or not math.isfinite(alpha) or alpha < 0:
            raise ConfigError("alpha (the L2 penalty) must be a finite number >= 0", got=alpha, fix="e.g. alpha=1e-4")
        self._params["alpha"] = float(alpha)
        max_iter = self._params["max_iter"]
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
            raise ConfigError("max_iter must be a positive integer", got=max_iter, fix="e.g. max_iter=500")
        self._params["max_iter"] = int(max_iter)

    def _fit(self, features: np.ndarray, labels: np.ndarray) -> None:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        mlp = MLPClassifier(hidden_layer_sizes=self._params["hidden_layer_sizes"], alpha=self._params["alpha"],
                            max_iter=self._params["max_iter"], random_state=self.seed)
        self._model = make_pipeline(StandardScaler(), mlp)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self._model.fit(features, labels)
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            log.warning("detector %r: the classifier did not converge in max_iter=%d epochs; raise max_iter",
                        self.name, self._params["max_iter"])

    def _score(self, features: np.ndarray) -> np.ndarray:
        proba = self._model.predict_proba(features)
        return proba[:, list(self._model.classes_).index(1)]


# -- training ------------------------------------------------------------------------------------------
def _check_eps(eps: Any, norm: str, target: Any) -> float:
    from ..evaluation.metrics import validate_eps

    fix = "pass one positive ε in the model's input scale, e.g. eps=0.1 for inputs in [0, 1]"
    if not _is_number(eps) or not math.isfinite(eps) or eps <= 0:
        raise ConfigError("eps must be one finite number > 0", got=eps, fix=fix)
    return validate_eps(float(eps), norm=norm, clip_range=target.clip_range,
                        input_size=int(np.prod(target.input_shape)))[0]


def _attack_spec(attack: Any, target: Any, norm: str):
    from ..attacks import AttackSpec
    from ..attacks import attack as get_attack

    spec = get_attack(attack) if isinstance(attack, str) else attack
    if not isinstance(spec, AttackSpec):
        raise ConfigError("attack must be an attack name or an AttackSpec", got=type(attack).__name__,
                          fix="e.g. attack='pgd' or attack=al.attack('pgd', max_iter=100)")
    if spec.minimal:
        raise ConfigError(f"attack {spec.name!r} is a minimum-norm attack, which ignores ε", got=spec.name,
                          fix="train the detector on an ε-bounded attack such as 'pgd', 'fgsm' or 'apgd_ce'")
    if spec.targeted:
        raise ConfigError("a detector is trained on untargeted adversarial examples", got=spec.label,
                          fix="drop targeted=True from the attack")
    spec.check(target, norm)
    return spec


def _training_arrays(target: Any, train_data: Any) -> tuple[np.ndarray, np.ndarray]:
    from ..data.dataset import Dataset, normalize_labels

    if isinstance(train_data, Dataset):
        x, y = train_data.x, train_data.y
    elif isinstance(train_data, (tuple, list)) and len(train_data) == 2:
        x, y = train_data
    else:
        raise ConfigError("train_data must be a Dataset or an (x, y) pair", got=type(train_data).__name__,
                          fix="use al.load_dataset('digits', split='train') or (x_train, y_train)")
    x = target.check_data(x, y, what="train_data x")
    y = normalize_labels(y, target.nb_classes, n=len(x), what="train_data y")
    if len(x) < 2:
        raise DataError("a detector needs at least 2 training samples", got=f"{len(x)} sample(s)",
                        fix="pass more training data")
    return x, y


def _subsample(x: np.ndarray, y: np.ndarray, n_samples: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if n_samples is None:
        return x, y
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ConfigError("n_samples must be an integer >= 2 (or None for all the training data)", got=n_samples,
                          fix="e.g. n_samples=300")
    if n_samples >= len(x):
        if n_samples > len(x):
            log.info("n_samples=%d is more than the %d training samples: using all of them", n_samples, len(x))
        return x, y
    idx = np.sort(np.random.default_rng(seed).choice(len(x), size=int(n_samples), replace=False))
    return x[idx], y[idx]


def _sha256(x: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(repr((x.shape, str(x.dtype), y.shape, str(y.dtype))).encode())
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    return h.hexdigest()


def train_detector(target: Any, train_data: Any, *, name: str = "binary_input", attack: Any = "pgd",
                   norm: Any = "linf", eps: float, seed: int = 0, n_samples: int | None = None,
                   **params: Any) -> Detector:
    """Train the detector ``name`` for ``target`` on clean vs adversarial versions of ``train_data``.

    ``train_data`` is a :class:`~aisec_lab.data.Dataset` or an ``(x, y)`` pair (checked against the
    target); ``n_samples`` draws that many of its samples (with ``seed``), ``None`` uses them all.
    The attack (a name or an :class:`~aisec_lab.attacks.AttackSpec`, untargeted and ε-bounded) runs on
    every drawn sample at ``eps`` under ``norm``; the detector learns clean samples (label 0) against
    *all* the adversarial examples (label 1), whether or not each one fooled the model: a monitor
    should flag attack attempts, a failed example carries the same kind of perturbation, and both
    classes stay the same size. The attack's success rate is recorded in ``trained_on``. Nothing is
    held out: measure the detector on other data (``Detector.evaluate`` / :func:`detection_section`).
    ``params`` are the detector's hyperparameters (``threshold`` and, for ``binary_input``,
    ``hidden_layer_sizes``, ``alpha``, ``max_iter``). The same arguments give the same detector.
    """
    from ..attacks.spec import normalize_norm

    cls = DETECTORS.get(name)
    _check_target(target)
    norm = normalize_norm(norm)
    eps = _check_eps(eps, norm, target)
    detector = cls(target, seed=seed, **params)  # bad hyperparameters fail before the attack runs
    spec = _attack_spec(attack, target, norm)
    x, y = _subsample(*_training_arrays(target, train_data), n_samples, detector.seed)

    batch = spec.batch_size or _BATCH
    x_adv = np.concatenate([np.asarray(spec.run(target, x[i:i + batch], y[i:i + batch], norm=norm, eps=eps,
                                                seed=detector.seed + i // batch), dtype=np.float32)
                            for i in range(0, len(x), batch)])
    if x_adv.shape != x.shape:
        raise ConfigError(f"attack {spec.name!r} returned examples of shape {x_adv.shape}", got=x_adv.shape,
                          fix=f"an attack must return an array shaped like its input {x.shape}")
    success = float(np.mean(target.predict_labels(x_adv, batch_size=_BATCH) != y))
    log.info("detector %r: %s at %s eps=%g fooled the target on %.1f%% of %d training samples", name, spec.name,
             norm, eps, 100 * success, len(x))

    features = np.concatenate([detector.features(x), detector.features(x_adv)])
    labels = np.concatenate([np.zeros(len(x), dtype=np.int64), np.ones(len(x_adv), dtype=np.int64)])
    detector._fit(features, labels)
    detector.trained_on = {"attack": spec.name, "norm": norm, "eps": eps, "n_train": int(len(labels)),
                           "n_clean": int(len(x)), "n_adversarial": int(len(x_adv)),
                           "attack_success_rate": success, "attack_params": spec.params(), "seed": detector.seed,
                           "data_sha256": _sha256(x, y)}
    return detector


# -- the scorecard section -----------------------------------------------------------------------------
def _eps_values(eps_list: Any, n_eps: int) -> list[float]:
    try:
        values = [float(e) for e in eps_list]
    except (TypeError, ValueError):
        raise ConfigError("eps_list must be a list of numbers, one per ε of x_adv", got=eps_list,
                          fix="pass the evaluated ε, e.g. sc.eps") from None
    if len(values) != n_eps:
        raise ConfigError(f"eps_list has {len(values)} values but x_adv holds {n_eps} ε", got=values,
                          fix="pass one ε per first axis entry of x_adv")
    if any(not math.isfinite(e) or e < 0 for e in values):
        raise ConfigError("eps_list values must be finite and >= 0", got=values, fix="pass the evaluated ε")
    return values


def detection_section(detector: Detector, x_clean: Any, x_adv: Any, broken: Any, eps_list: Any,
                      eps_display: Any = None) -> dict[str, Any]:
    """The scorecard ``detection`` section for an evaluation's samples.

    ``x_clean`` ``(n, ...)`` are the evaluated clean samples; ``x_adv`` ``(E, n, ...)`` the
    evaluation's adversarial example of each sample at each of the ``E`` values of ``eps_list``;
    ``broken`` ``(E, n)`` bool marks the samples whose adversarial example counted (fooled the model)
    at that ε. The false-positive rate is measured on all ``n`` clean samples, the detection rate per
    ε among the broken samples only (``null`` when none was broken), each with its Clopper-Pearson
    95 % interval. ``eps_display`` (one string per ε) defaults to the plain or ``k/255`` form.
    ``adaptive`` is ``False``: the attacks did not know about the detector.
    """
    from ..evaluation.metrics import eps_display as display_of
    from ..evaluation.metrics import proportion_ci

    if not isinstance(detector, Detector):
        raise ConfigError("detection_section needs a trained Detector", got=type(detector).__name__,
                          fix="train one with aisec_lab.defenses.train_detector(target, data, eps=...)")
    info = detector.info()
    target = detector.target
    x_clean = target.check_data(x_clean, what="x_clean")
    n = len(x_clean)
    if n == 0:
        raise DataError("x_clean is empty: a false-positive rate needs clean samples", got="0 samples",
                        fix="pass the evaluated clean samples (sc.samples['x'])")
    x_adv = np.asarray(x_adv)
    if x_adv.ndim != 2 + len(target.input_shape) or x_adv.shape[1:] != x_clean.shape:
        raise DataError(f"x_adv must have shape (E, {n}, {', '.join(map(str, target.input_shape))}): one adversarial "
                        "example per ε and clean sample", got=f"shape {x_adv.shape}",
                        fix="pass the evaluation's x_adv (sc.samples['x_adv'])")
    n_eps = x_adv.shape[0]
    broken = np.asarray(broken)
    if broken.shape != (n_eps, n) or not (broken.dtype == bool or (broken.dtype.kind in "iu"
                                                                    and np.isin(broken, (0, 1)).all())):
        raise DataError(f"broken must be a boolean array of shape ({n_eps}, {n})",
                        got=f"dtype {broken.dtype}, shape {broken.shape}",
                        fix="pass sc.samples['first_attack'] >= 0")
    broken = broken.astype(bool)
    values = _eps_values(eps_list, n_eps)
    if eps_display is None:
        displays = [display_of(e, target.clip_range) for e in values]
    elif isinstance(eps_display, str) or len(eps_display) != n_eps:
        raise ConfigError("eps_display must be a list of strings, one per ε", got=eps_display,
                          fix="pass sc.threat_model['eps_display'], or leave it out")
    else:
        displays = [str(d) for d in eps_display]

    flagged_clean = detector.predict(x_clean)
    k_fp = int(flagged_clean.sum())
    per_eps = []
    for ei, e in enumerate(values):
        idx = np.flatnonzero(broken[ei])
        k = int(detector.predict(x_adv[ei][idx]).sum()) if len(idx) else 0
        per_eps.append({"eps": e, "eps_display": displays[ei],
                        "detection_rate": k / len(idx) if len(idx) else None,
                        "detection_rate_ci": list(proportion_ci(k, len(idx))), "n_adversarial": int(len(idx)),
                        "n_detected": k})
    trained = info["trained_on"]
    note = (f"Detector {info['detector']} trained on {trained['attack']} {trained['norm']} eps={trained['eps']:g} "
            "examples and evaluated on this evaluation's adversarial examples, which were crafted without knowledge "
            "of the detector (not adaptive): an attacker who also targets the detector usually evades it far more "
            "often. Detection rates count only the samples whose adversarial example broke the model at that eps; "
            "the false-positive rate counts every clean sample evaluated.")
    return {"detector": info["detector"], "params": info["params"], "trained_on": trained,
            "threshold": detector.threshold, "false_positive_rate": k_fp / n,
            "false_positive_rate_ci": list(proportion_ci(k_fp, n)), "n_clean": n, "n_false_positives": k_fp,
            "per_eps": per_eps, "adaptive": False, "note": note}
