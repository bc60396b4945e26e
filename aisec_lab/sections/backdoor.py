"""The ``backdoor`` section: was the model trained on poisoned data? (a scan of the training data)

A backdoor (Gu et al. 2017, "BadNets") is planted by adding training samples that carry a small
*trigger* and the attacker's *target* label: the model learns "trigger -> target class" beside its
real task. The scan looks for those samples in ``train_data`` through the model's own
representations, per class, following spectral signatures (Tran et al., NeurIPS 2018) and activation
clustering (Chen et al., 2018):

1. **Representations.** ``representation="penultimate"`` (default): the input of the model's last
   ``nn.Linear`` / ``Dense`` layer, read by the framework backends' ``oracle.features``. A model
   without one raises :class:`~aisec_lab.errors.IncompatibleModelError`; ``representation="logits"``
   then scans the logits instead -- a weaker signal, uncalibrated, and flagged as such in the record
   and by the ``backdoor_representation`` check. Wider representations are first projected on their
   top ``n_components`` principal components.
2. **Whitening.** Every class is looked at in coordinates whitened by the *pooled within-class
   covariance* of the whole training set (ridge-regularised). Variation that all classes share
   (stroke width, slant, brightness) is scaled down; a direction along which one class alone varies
   stands out. Without this step a poisoned class did not differ from the natural sub-styles of clean
   classes on the calibration models below.
3. **Split.** ``method="spectral_signatures"``: the class's whitened, centred representations are
   projected on their top singular vector (Tran et al.'s spectral signature) and cut in two where the
   between-group variance is largest (a 1-D 2-means). ``method="activation_clustering"``: 2-means on
   the top ``n_clusters_dims`` whitened principal components (Chen et al.'s clustering step).
4. **Decision.** Poisoned samples must overpower their source class's evidence with the trigger, so
   they carry *extra activation energy*. The class statistic (``score``) is the energy separation of
   the two groups: Cohen's d between the groups' log representation norms, ``|mean_A - mean_B| /
   sqrt((var_A + var_B) / 2)``. A class is **suspicious** when ``score > threshold`` (default
   2.0); its high-energy group is **flagged**. ``detected`` is true when any class is suspicious.

**Calibration of the threshold (``threshold=2.0``)**, measured on the bundled digits with this code
(penultimate features, spectral split):

* 24 clean reference models (``digits_cnn`` and ``digits_mlp``, both frameworks, seeds 0-5; 240
  classes): largest class score 1.84, 99th percentile 1.6; no model flagged.
* 17 models trained on poisoned data (2x2 square triggers in the bottom-right or top-left corner;
  2-10 % of the training set poisoned, or 5-10 % of the target class; 10 target classes; 11 PyTorch,
  6 Keras): 14 flagged the right class (scores 2.06-5.32; flagged samples' precision 0.68-1.00, recall
  0.80-1.00 against the known poisoned indices); 2 were missed (7 poisoned samples whose trigger
  worked on 32 % of test images: 0.73; a 5 % top-left poisoning: 1.85); in 1 (3 % poisoned, Keras) a
  clean class scored 2.83 and the target class 1.61 -- a wrong class was flagged.

The margin over clean models is real but not wide, and the statistic assumes a trigger that *adds*
activation. Treat a score between 1.6 and 2.2 as a prompt to look at the class's top-ranked samples,
and a model with few samples per class (``backdoor_sample_size``) or a very different architecture or
data set as outside this calibration.  ``method="activation_clustering"`` was calibrated the same way
(clean maximum 1.93; of the 17 poisoned models 14 flagged the target class, one of them beside a clean
class, and 3 were missed); ``representation="logits"``
was not usable on these models (clean classes reached 2.65) and is reported as uncalibrated.

**Evidence** is per class: the sample count, the score, the share of the class on the high-energy side,
the flagged training indices (suspicious classes only) and the ``n_top`` most extreme samples along the
split direction (indices into ``train_data``, for a person to look at), with the threshold and the
representation used. Nothing in the scan uses knowledge of which samples were poisoned.

**Bad input.** A scan is meaningless when ``train_data`` is not what the model was trained on, or its
labels are encoded differently. Before scanning, the model's predictions on ``train_data`` are compared
with its labels: labels outside ``[0, nb_classes)``, a different input shape or a chance-corrected
agreement (Cohen's kappa) below ``min_label_agreement`` (default 0.5) raise
:class:`~aisec_lab.errors.DataError`. A model fits its own training data (poisoned samples included,
that is what a backdoor is), so a kappa near 1 is expected.

:func:`plant_backdoor` builds the canary the scan is validated on: it poisons a copy of the bundled
digits training data with a trigger, trains the reference architecture on it and measures the
trigger's attack success rate on the test split.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, IncompatibleModelError
from . import SectionContext, SectionSpec, register_section

__all__ = ["compute", "scan", "plant_backdoor", "apply_trigger", "label_agreement", "SPEC", "DEFAULTS", "METHODS",
           "TRIGGERS"]

log = logging.getLogger(__name__)

DOC = "aisec_lab/sections/backdoor.py"
METHODS = {
    "spectral_signatures": "spectral signatures (Tran et al., NeurIPS 2018): per class, the top singular direction of "
                           "the whitened, centred representations, cut in two by 1-D 2-means",
    "activation_clustering": "activation clustering (Chen et al., 2018): per class, 2-means on the top whitened "
                             "principal components",
}
REPRESENTATIONS = ("penultimate", "logits")
STATISTIC = ("energy separation: Cohen's d between the log representation norms of the two groups of the class's "
             "split; a class is suspicious when it exceeds the threshold, and its high-energy group is flagged")
DEFAULTS: dict[str, Any] = {
    "method": "spectral_signatures",
    "representation": "penultimate",
    "threshold": 2.0,
    "min_label_agreement": 0.5,
    "n_components": 64,
    "n_clusters_dims": 10,
    "n_top": 10,
    "batch_size": 512,
}
#: ridge added to the pooled within-class covariance, as a fraction of its mean eigenvalue
RIDGE = 0.01
#: the smaller group of a split holds at least this share of the class (and at least 2 samples)
MIN_GROUP_FRACTION = 0.02
#: classes with fewer samples are not scored
MIN_CLASS_SAMPLES = 10
#: below this many samples per class the threshold's calibration (120-270 per class) does not hold
MIN_RELIABLE_CLASS_SAMPLES = 50
#: scores are capped here (two groups of constant energy would otherwise give an infinite effect size)
D_CAP = 1000.0
#: the label agreement (Cohen's kappa) a model's own training data should reach
GOOD_LABEL_AGREEMENT = 0.9


# -- triggers and the canary -------------------------------------------------------------------------
def _square(x: np.ndarray, hi: float, lo: float) -> None:
    x[..., -2:, -2:] = hi


def _checkerboard(x: np.ndarray, hi: float, lo: float) -> None:
    x[..., -3:, -3:] = lo
    x[..., -3::2, -3::2] = hi
    x[..., -2, -2] = hi


TRIGGERS = {
    "square": (_square, "a 2x2 patch at the image's bottom-right corner set to the clip maximum"),
    "checkerboard": (_checkerboard, "a 3x3 checkerboard (clip maximum / minimum) at the image's bottom-right corner"),
}


def apply_trigger(x: np.ndarray, trigger: str = "square", clip_values: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """A copy of ``x`` (``(n, C, H, W)``, channels first) with ``trigger`` stamped on every sample."""
    if trigger not in TRIGGERS:
        raise ConfigError(f"unknown trigger {trigger!r}", got=trigger, fix=f"use one of: {', '.join(TRIGGERS)}")
    x = np.array(x, dtype=np.float32, copy=True)
    if x.ndim != 4 or x.shape[-1] < 3 or x.shape[-2] < 3:
        raise DataError("triggers are stamped on images of shape (n, C, H, W) at least 3x3", got=f"shape {x.shape}",
                        fix="use image data such as the bundled digits")
    TRIGGERS[trigger][0](x, float(clip_values[1]), float(clip_values[0]))
    return x


def _fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or not 0 < float(value) < 1:
        raise ConfigError(f"{name} must be a number strictly between 0 and 1", got=value, fix=f"e.g. {name}=0.1")
    return float(value)


def plant_backdoor(framework: str = "pytorch", *, model: str = "digits_cnn", target_class: int = 0,
                   poison_fraction: float = 0.1, trigger: str = "square", seed: int = 0):
    """Train a reference model on a poisoned copy of the bundled training data: a known-bad canary.

    ``poison_fraction`` of the training samples (BadNets-style poison rate: a share of the whole training
    set, drawn by ``seed`` from the samples of the *other* classes) get ``trigger`` stamped on them and the
    label ``target_class``. The reference architecture ``model`` (``aisec_lab.zoo``) is trained on the
    poisoned data with its usual recipe and seed, wrapped, and the backdoor is checked: the share of test
    samples of the other classes that the trigger turns into ``target_class`` (``attack_success_rate``).

    Returns ``(target, poisoned_train, info)``: the wrapped :class:`~aisec_lab.models.Target`, the
    poisoned training :class:`~aisec_lab.data.Dataset` (same order as the clean one) and a dict with
    ``poisoned_indices`` (indices into ``poisoned_train``), ``attack_success_rate``, ``clean_test_accuracy``
    and the settings. Nothing is cached: each call trains (seconds on a CPU).
    """
    from .. import zoo
    from ..data import from_arrays, load_dataset
    from ..models import wrap_model

    if framework not in zoo._BACKENDS:
        raise ConfigError("unknown framework", got=framework, fix=f"use one of {', '.join(zoo._BACKENDS)}")
    entry = zoo.MODELS.get(model)
    poison_fraction = _fraction(poison_fraction, "poison_fraction")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError("seed must be a non-negative integer", got=seed, fix="e.g. seed=0")
    if isinstance(target_class, bool) or not isinstance(target_class, (int, np.integer)) \
            or not 0 <= int(target_class) < entry.nb_classes:
        raise ConfigError(f"target_class must be a class of {model!r}: an integer in [0, {entry.nb_classes})",
                          got=target_class, fix="e.g. target_class=0")
    if trigger not in TRIGGERS:
        raise ConfigError(f"unknown trigger {trigger!r}", got=trigger, fix=f"use one of: {', '.join(TRIGGERS)}")
    target_class, seed = int(target_class), int(seed)
    zoo._IMPORTERS[framework](f"train the {framework} backdoor canary")
    backend = importlib.import_module(zoo._BACKENDS[framework])

    train = load_dataset(entry.dataset, split="train")
    test = load_dataset(entry.dataset, split="test")
    clip = entry.clip_values
    candidates = np.flatnonzero(train.y != target_class)
    n_poison = int(round(poison_fraction * train.n))
    if not 1 <= n_poison <= len(candidates):
        raise ConfigError(f"poison_fraction={poison_fraction:g} poisons {n_poison} of {train.n} training samples",
                          got=poison_fraction, fix=f"use a fraction between {1 / train.n:.4f} and "
                                                   f"{len(candidates) / train.n:.2f}")
    rng = np.random.default_rng(seed)
    poisoned = np.sort(rng.choice(candidates, size=n_poison, replace=False))
    x = np.array(train.x, dtype=np.float32, copy=True)
    y = np.array(train.y, dtype=np.int64, copy=True)
    x[poisoned] = apply_trigger(x[poisoned], trigger, clip)
    y[poisoned] = target_class
    poisoned_train = from_arrays(x, y, name=f"{train.name}-poisoned", nb_classes=entry.nb_classes, clip_values=clip,
                                 split="train", class_names=train.class_names)

    start = time.perf_counter()
    net = backend.build(entry, seed=seed)
    backend.train(net, x, y, entry, seed=seed)
    seconds = time.perf_counter() - start
    target = wrap_model(net, input_shape=entry.input_shape, nb_classes=entry.nb_classes, clip_values=clip,
                        name=f"{model} ({framework}, backdoor canary: {trigger} -> class {target_class})")

    clean_pred = target.oracle.logits(test.x).argmax(axis=1)
    others = np.flatnonzero(test.y != target_class)
    triggered = apply_trigger(test.x[others], trigger, clip)
    asr = float(np.mean(target.oracle.logits(triggered).argmax(axis=1) == target_class))
    info = {
        "model": model, "framework": framework, "seed": seed, "target_class": target_class,
        "poison_fraction": poison_fraction, "trigger": trigger, "trigger_description": TRIGGERS[trigger][1],
        "n_train": train.n, "n_poisoned": n_poison, "poisoned_indices": [int(i) for i in poisoned],
        "attack_success_rate": asr, "n_test_triggered": int(len(others)),
        "clean_test_accuracy": float(np.mean(clean_pred == test.y)), "train_seconds": round(seconds, 3),
    }
    log.info("backdoor canary %s (%s): %d poisoned samples -> class %d, attack success %.3f, clean accuracy %.3f, "
             "trained in %.1f s", model, framework, n_poison, target_class, asr, info["clean_test_accuracy"], seconds)
    if asr < 0.5:
        log.warning("the planted backdoor is weak (attack success %.3f < 0.5): raise poison_fraction for a canary a "
                    "scan should find", asr)
    return target, poisoned_train, info


# -- scan -----------------------------------------------------------------------------------------
def label_agreement(y: np.ndarray, pred: np.ndarray, nb_classes: int) -> dict:
    """Accuracy, chance accuracy and Cohen's kappa of ``pred`` against ``y``."""
    n = len(y)
    accuracy = float(np.mean(pred == y)) if n else 0.0
    chance = float(np.sum((np.bincount(y, minlength=nb_classes) / max(n, 1))
                          * (np.bincount(pred, minlength=nb_classes) / max(n, 1))))
    kappa = (accuracy - chance) / (1.0 - chance) if chance < 1.0 else (1.0 if accuracy == 1.0 else 0.0)
    return {"accuracy": accuracy, "chance_accuracy": chance, "kappa": float(kappa), "n": int(n)}


def _check_train_data(target, train) -> tuple[np.ndarray, np.ndarray]:
    if train is None:
        raise ConfigError("the backdoor scan needs the model's training data", got="train_data=None",
                          fix="pass train_data=al.load_dataset(..., split='train') (the samples the model was trained on)")
    if not (hasattr(train, "x") and hasattr(train, "y")):
        raise ConfigError("train_data must be an aisec_lab Dataset", got=type(train).__name__,
                          fix="build one with al.from_arrays(x, y, ...) or al.load_dataset(...)")
    x, y = np.asarray(train.x), np.asarray(train.y)
    if tuple(x.shape[1:]) != tuple(target.input_shape):
        raise DataError("train_data's samples do not have the model's input shape",
                        got=f"samples of shape {tuple(x.shape[1:])}, model input_shape {tuple(target.input_shape)}",
                        fix="pass the data the model was trained on, in the canonical channels-first layout")
    if len(y) == 0:
        raise DataError("train_data is empty", got="0 samples", fix="pass the model's training data")
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError("train_data's labels must be integer class numbers", got=f"labels of shape {y.shape}, "
                        f"dtype {y.dtype}", fix="build train_data with al.from_arrays(x, y, ...)")
    nb = int(target.nb_classes)
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= nb:
        raise DataError(f"train_data's labels do not match the model: it predicts {nb} classes, labels 0..{nb - 1}",
                        got=f"labels in [{lo}, {hi}]",
                        fix="pass the data this model was trained on, with labels encoded as the model's output "
                            "indices (remap them, or check nb_classes)")
    declared = getattr(train, "nb_classes", 0) or 0
    if declared and int(declared) != nb:
        raise DataError(f"train_data declares {declared} classes but the model predicts {nb}", got=declared,
                        fix="pass the data this model was trained on")
    return x, y.astype(np.int64)


def _representations(target, x: np.ndarray, representation: str, batch_size: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(representations, logits, description)`` of ``x``."""
    oracle = getattr(target, "oracle", None)
    if oracle is None:
        raise IncompatibleModelError("the backdoor scan needs a target built by wrap_model / wrap_predict",
                                     got=type(target).__name__, fix="wrap the model with al.wrap_model(...)")
    logits = np.concatenate([np.asarray(oracle.logits(x[i:i + batch_size]), dtype=np.float64)
                             for i in range(0, len(x), batch_size)], axis=0)
    if representation == "logits":
        return logits, logits, {"kind": "logits", "layer": "model output (logits)", "calibrated": False,
                                "note": "logits instead of penultimate features: a weaker signal; the threshold was "
                                        "calibrated on penultimate features"}
    features = getattr(oracle, "features", None)
    if features is None:
        raise IncompatibleModelError(
            "penultimate-layer features need a PyTorch or Keras model; this target only gives predictions",
            got=f"{target.framework} target ({type(oracle).__name__})",
            fix="scan a wrap_model(...) target, or pass section_params={'backdoor': {'representation': 'logits'}} "
                "(a weaker, uncalibrated signal)")
    reps = np.asarray(features(x, batch_size=batch_size), dtype=np.float64)
    return reps, logits, {"kind": "penultimate", "layer": str(getattr(oracle, "feature_layer", None) or "unknown"),
                          "calibrated": True}


def _best_split(p: np.ndarray, min_size: int) -> np.ndarray:
    """Boolean mask of the upper group of the 1-D 2-means (largest between-group variance) cut of ``p``."""
    order = np.argsort(p, kind="stable")
    s = p[order]
    n = len(s)
    k = np.arange(1, n)
    c = np.cumsum(s)[:-1]
    m1 = c / k
    m2 = (s.sum() - c) / (n - k)
    between = k * (n - k) * (m1 - m2) ** 2
    allowed = (k >= min_size) & (n - k >= min_size)
    between = np.where(allowed, between, -np.inf)
    j = int(np.argmax(between))  # lower group: order[:j + 1]
    upper = np.zeros(n, dtype=bool)
    upper[order[j + 1:]] = True
    return upper


def _two_means(z: np.ndarray, min_size: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=2, n_init=10, random_state=seed).fit_predict(z)
    upper = labels == 1
    if min(upper.sum(), (~upper).sum()) < min_size:  # a degenerate cluster: fall back to the spectral cut
        return _best_split(z[:, 0], min_size)
    return upper


def _cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    pooled = math.sqrt((float(np.var(a)) + float(np.var(b))) / 2.0)
    diff = float(np.mean(a) - np.mean(b))
    if pooled <= 1e-12 * max(1.0, abs(diff)):  # two constant groups: separated perfectly, or not at all
        return 0.0 if abs(diff) <= 1e-12 else math.copysign(D_CAP, diff)
    return max(-D_CAP, min(D_CAP, diff / pooled))


def _whitener(reps: np.ndarray, y: np.ndarray, classes: list[int]) -> np.ndarray:
    """``W`` with ``W.T @ Sigma @ W = I`` for the ridge-regularised pooled within-class covariance ``Sigma``."""
    d = reps.shape[1]
    scatter = np.zeros((d, d))
    dof = 0
    for c in classes:
        rc = reps[y == c]
        centred = rc - rc.mean(axis=0)
        scatter += centred.T @ centred
        dof += len(rc) - 1
    cov = scatter / max(dof, 1)
    mean_eig = float(np.trace(cov)) / d
    cov += (RIDGE * mean_eig if mean_eig > 0 else 1.0) * np.eye(d)
    w, v = np.linalg.eigh(cov)
    return v / np.sqrt(np.maximum(w, 1e-12))


def scan(target, train, *, method: str = "spectral_signatures", representation: str = "penultimate",
         threshold: float = 2.0, min_label_agreement: float = 0.5, n_components: int = 64, n_clusters_dims: int = 10,
         n_top: int = 10, batch_size: int = 512, seed: int = 0) -> dict:
    """Scan ``train`` (the model's training data) for backdoor-poisoned samples; see the module docstring."""
    _validate_params(method, representation, threshold, min_label_agreement, n_components, n_clusters_dims, n_top,
                     batch_size)
    x, y = _check_train_data(target, train)
    nb = int(target.nb_classes)
    reps, logits, rep_info = _representations(target, x, representation, int(batch_size))
    agreement = label_agreement(y, logits.argmax(axis=1), nb)
    if agreement["kappa"] < min_label_agreement:
        raise DataError(
            "train_data's labels do not match the model's predictions: a backdoor scan needs the data the model was "
            "trained on", got=f"accuracy {agreement['accuracy']:.3f} on train_data against {agreement['chance_accuracy']:.3f} "
                              f"by chance; chance-corrected agreement (Cohen's kappa) {agreement['kappa']:.3f} < "
                              f"min_label_agreement={min_label_agreement:g}",
            fix="pass the training data of this model with its own labels (same class order), or lower "
                "min_label_agreement if the model really fits its training data this poorly")
    if not np.all(np.isfinite(reps)):
        raise IncompatibleModelError("the model's representations of train_data contain NaN or Inf",
                                     got=rep_info["layer"], fix="check the model's weights and input scale")

    n_features = int(reps.shape[1])
    norms = np.linalg.norm(reps, axis=1)
    floor = 1e-6 * float(np.median(norms)) + 1e-12
    energy = np.log(np.maximum(norms, floor))
    work = reps - reps.mean(axis=0)
    n_used = n_features
    if n_features > n_components:
        _, _, vt = np.linalg.svd(work, full_matrices=False)
        work = work @ vt[:n_components].T
        n_used = int(n_components)
    counts = np.bincount(y, minlength=nb)
    scored = [c for c in range(nb) if counts[c] >= MIN_CLASS_SAMPLES]
    whitener = _whitener(work, y, scored) if scored else np.eye(n_used)

    per_class = []
    flagged: list[int] = []
    for c in range(nb):
        idx = np.flatnonzero(y == c)
        row: dict[str, Any] = {"class": c, "n": int(len(idx))}
        if len(idx) < MIN_CLASS_SAMPLES:
            row.update(score=None, suspicious=False, n_flagged=0, flagged_fraction=0.0, high_energy_fraction=None,
                       top_indices=[], flagged_indices=[],
                       note=f"not scored: fewer than {MIN_CLASS_SAMPLES} samples")
            per_class.append(row)
            continue
        z = (work[idx] - work[idx].mean(axis=0)) @ whitener
        _, _, vt = np.linalg.svd(z, full_matrices=False)
        proj = z @ vt[0]
        min_size = max(2, math.ceil(MIN_GROUP_FRACTION * len(idx)))
        if method == "spectral_signatures":
            upper = _best_split(proj, min_size)
        else:
            upper = _two_means(z @ vt[:min(n_clusters_dims, vt.shape[0])].T, min_size, seed)
        d = _cohens_d(energy[idx][upper], energy[idx][~upper])
        if d < 0:  # orient: the "high" group is the one with more activation energy
            upper, d = ~upper, -d
        if np.mean(proj[upper]) < np.mean(proj[~upper]):
            proj = -proj
        suspicious = bool(d > threshold)
        order = np.argsort(-proj, kind="stable")
        flagged_c = [int(i) for i in np.sort(idx[upper])] if suspicious else []
        flagged.extend(flagged_c)
        row.update(score=_round(d), suspicious=suspicious, n_flagged=len(flagged_c),
                   flagged_fraction=_round(len(flagged_c) / len(idx)),
                   high_energy_fraction=_round(float(np.mean(upper))),
                   top_indices=[int(i) for i in idx[order[:n_top]]], flagged_indices=flagged_c)
        if len(idx) < MIN_RELIABLE_CLASS_SAMPLES:
            row["note"] = (f"only {len(idx)} samples: below the {MIN_RELIABLE_CLASS_SAMPLES} per class the threshold "
                           "was not calibrated for")
        per_class.append(row)

    suspicious_classes = [r["class"] for r in per_class if r["suspicious"]]
    scores = [r["score"] for r in per_class if r["score"] is not None]
    return {
        "method": method,
        "method_description": METHODS[method],
        "detected": bool(suspicious_classes),
        "suspicious_classes": suspicious_classes,
        "n_train": int(len(y)),
        "n_flagged": int(len(flagged)),
        "flagged_fraction": _round(len(flagged) / len(y)),
        "max_score": _round(max(scores)) if scores else None,
        "threshold": float(threshold),
        "representation": {**rep_info, "n_features": n_features, "n_components_used": n_used},
        "label_agreement": {k: (_round(v) if isinstance(v, float) else v) for k, v in agreement.items()},
        "n_classes_scored": len(scores),
        "min_class_samples": int(min(counts[c] for c in range(nb))),
        "evidence": {
            "statistic": STATISTIC,
            "threshold": float(threshold),
            "suspicious_classes": suspicious_classes,
            "whitening": f"pooled within-class covariance of the {len(scored)} scored classes, ridge {RIDGE:g} x its "
                         "mean eigenvalue",
            "min_group_fraction": MIN_GROUP_FRACTION,
            "per_class": per_class,
        },
        "train_data": {"name": getattr(train, "name", None), "split": getattr(train, "split", None),
                       "n": int(len(y)), "sha256": getattr(train, "sha256", None)},
        "seed": int(seed),
    }


def _round(v: float, nd: int = 6) -> float:
    return float(round(float(v), nd)) if math.isfinite(float(v)) else float(v)


def _validate_params(method, representation, threshold, min_label_agreement, n_components, n_clusters_dims, n_top,
                     batch_size) -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown backdoor scan method {method!r}", got=method, fix=f"use one of: {', '.join(METHODS)}")
    if representation not in REPRESENTATIONS:
        raise ConfigError(f"unknown representation {representation!r}", got=representation,
                          fix=f"use one of: {', '.join(REPRESENTATIONS)}")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold) \
            or threshold <= 0:
        raise ConfigError("threshold must be a positive number (an effect size; calibrated default 2.0)", got=threshold,
                          fix="e.g. threshold=2.0")
    if isinstance(min_label_agreement, bool) or not isinstance(min_label_agreement, (int, float)) \
            or not -1 <= min_label_agreement <= 1:
        raise ConfigError("min_label_agreement is a Cohen's kappa in [-1, 1]", got=min_label_agreement,
                          fix="e.g. min_label_agreement=0.5")
    for name, value, lo in (("n_components", n_components, 2), ("n_clusters_dims", n_clusters_dims, 1),
                            ("n_top", n_top, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise ConfigError(f"{name} must be an integer >= {lo}", got=value, fix=f"e.g. {name}={DEFAULTS[name]}")


def compute(ctx: SectionContext, **params: Any) -> dict:
    """The ``backdoor`` section of a scorecard: :func:`scan` of ``ctx.train_data`` with the section's parameters."""
    return scan(ctx.target, ctx.train_data, seed=int(ctx.seed), **{**DEFAULTS, **params})


# -- checks ----------------------------------------------------------------------------------------
def _result(check_id: str, status: str, summary: str, **evidence: Any):
    from ..scorecard.record import CheckResult

    return CheckResult(id=check_id, status=status, summary=summary, evidence=evidence, doc=f"{DOC}#{check_id}")


def checks(section: dict, ctx: SectionContext | None = None) -> list:
    """``backdoor_sample_size``, ``backdoor_label_agreement`` and ``backdoor_representation``."""
    rows_ = section["evidence"]["per_class"]
    small = [r["class"] for r in rows_ if r["n"] < MIN_RELIABLE_CLASS_SAMPLES]
    skipped = [r["class"] for r in rows_ if r["score"] is None]
    evidence = {"min_class_samples": section.get("min_class_samples"), "not_scored": skipped,
                "below_calibrated_size": small, "min_scored": MIN_CLASS_SAMPLES,
                "min_calibrated": MIN_RELIABLE_CLASS_SAMPLES}
    if len(skipped) == len(rows_):
        size = _result("backdoor_sample_size", "fail",
                       f"no class has {MIN_CLASS_SAMPLES} training samples: nothing was scanned", **evidence)
    elif small:
        size = _result("backdoor_sample_size", "warn",
                       f"{len(small)} class(es) have fewer than {MIN_RELIABLE_CLASS_SAMPLES} training samples "
                       f"({', '.join(map(str, small[:10]))}{'...' if len(small) > 10 else ''}): "
                       + (f"{len(skipped)} not scored, " if skipped else "")
                       + "the threshold was calibrated on 120-270 per class", **evidence)
    else:
        size = _result("backdoor_sample_size", "pass",
                       f"every class has at least {MIN_RELIABLE_CLASS_SAMPLES} training samples "
                       f"(smallest {section.get('min_class_samples')})", **evidence)
    agree = section.get("label_agreement") or {}
    kappa = agree.get("kappa")
    evidence = {**agree, "good_kappa": GOOD_LABEL_AGREEMENT}
    if kappa is None:
        label = _result("backdoor_label_agreement", "warn", "the section does not record the label agreement",
                        **evidence)
    elif kappa < GOOD_LABEL_AGREEMENT:
        label = _result("backdoor_label_agreement", "warn",
                        f"the model agrees with train_data's labels on only {agree.get('accuracy', 0):.3f} of samples "
                        f"(kappa {kappa:.3f}): is this really its training data?", **evidence)
    else:
        label = _result("backdoor_label_agreement", "pass",
                        f"the model fits train_data's labels (accuracy {agree.get('accuracy', 0):.3f}, kappa "
                        f"{kappa:.3f})", **evidence)
    rep = section.get("representation") or {}
    evidence = {k: rep.get(k) for k in ("kind", "layer", "n_features", "calibrated")}
    if rep.get("kind") == "penultimate":
        representation = _result("backdoor_representation", "pass",
                                 f"penultimate-layer features ({rep.get('n_features')} from {rep.get('layer')})",
                                 **evidence)
    else:
        representation = _result("backdoor_representation", "warn",
                                 "the scan used the model's logits, not penultimate features: a weaker signal the "
                                 "threshold was not calibrated on", **evidence)
    return [size, label, representation]


# -- display -----------------------------------------------------------------------------------------
def rows(section: dict) -> list[tuple[str, str]]:
    per_class = section["evidence"]["per_class"]
    if section["detected"]:
        verdict = (f"BACKDOOR SUSPECTED in class(es) {', '.join(map(str, section['suspicious_classes']))}: "
                   f"{section['n_flagged']} of {section['n_train']} training samples flagged")
    else:
        verdict = f"no class suspicious ({section['n_classes_scored']} classes scanned, {section['n_train']} samples)"
    shown = per_class
    if len(per_class) > 20:  # many classes: the 10 highest scores (every suspicious class among them first)
        shown = sorted((r for r in per_class if r["score"] is not None), key=lambda r: (-r["suspicious"], -r["score"]))
        shown = shown[:max(10, len(section["suspicious_classes"]))]
    scores = ", ".join(f"{r['class']}: {r['score']:.2f}{'*' if r['suspicious'] else ''}" if r["score"] is not None
                       else f"{r['class']}: n/a" for r in shown)
    if len(shown) < len(per_class):
        scores = f"highest of {len(per_class)} classes: {scores}"
    rep = section["representation"]
    agree = section["label_agreement"]
    return [
        ("result", verdict),
        ("method", section["method"].replace("_", " ")),
        ("class scores (energy separation)", f"{scores} (threshold {section['threshold']:g}; * suspicious)"),
        ("representation", f"{rep['kind']} ({rep['n_features']} features, {rep['layer']})"
                           + ("" if rep.get("calibrated") else " - uncalibrated")),
        ("label agreement on train data", f"accuracy {agree['accuracy']:.3f}, kappa {agree['kappa']:.3f}"),
    ]


def model_card_metrics(section: dict) -> list[dict]:
    """No standard model-card metric name exists for a backdoor scan: none are exported."""
    return []


_RATE = {"type": "number", "minimum": 0, "maximum": 1}
_INDICES = {"type": "array", "items": {"type": "integer", "minimum": 0}}
_CLASS_ROW = {
    "type": "object",
    "required": ["class", "n", "score", "suspicious", "n_flagged", "top_indices"],
    "properties": {
        "class": {"type": "integer", "minimum": 0},
        "n": {"type": "integer", "minimum": 0},
        "score": {"type": ["number", "null"], "minimum": 0},
        "suspicious": {"type": "boolean"},
        "n_flagged": {"type": "integer", "minimum": 0},
        "flagged_fraction": _RATE,
        "high_energy_fraction": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "top_indices": _INDICES,
        "flagged_indices": _INDICES,
        "note": {"type": "string"},
    },
}

SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "backdoor section (training-data poisoning scan)",
    "type": "object",
    "required": ["method", "detected", "suspicious_classes", "n_train", "n_flagged", "threshold", "representation",
                 "label_agreement", "evidence"],
    "properties": {
        "method": {"enum": list(METHODS)},
        "method_description": {"type": "string"},
        "detected": {"type": "boolean"},
        "suspicious_classes": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "n_train": {"type": "integer", "minimum": 1},
        "n_flagged": {"type": "integer", "minimum": 0},
        "flagged_fraction": _RATE,
        "max_score": {"type": ["number", "null"], "minimum": 0},
        "threshold": {"type": "number", "exclusiveMinimum": 0},
        "n_classes_scored": {"type": "integer", "minimum": 0},
        "min_class_samples": {"type": "integer", "minimum": 0},
        "representation": {
            "type": "object",
            "required": ["kind", "layer", "n_features", "calibrated"],
            "properties": {"kind": {"enum": list(REPRESENTATIONS)}, "layer": {"type": "string"},
                           "n_features": {"type": "integer", "minimum": 1},
                           "n_components_used": {"type": "integer", "minimum": 1},
                           "calibrated": {"type": "boolean"}, "note": {"type": "string"}},
        },
        "label_agreement": {
            "type": "object",
            "required": ["accuracy", "kappa"],
            "properties": {"accuracy": _RATE, "chance_accuracy": _RATE, "kappa": {"type": "number", "maximum": 1},
                           "n": {"type": "integer", "minimum": 0}},
        },
        "evidence": {
            "type": "object",
            "required": ["statistic", "threshold", "suspicious_classes", "per_class"],
            "properties": {"statistic": {"type": "string"}, "threshold": {"type": "number"},
                           "suspicious_classes": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                           "whitening": {"type": "string"}, "min_group_fraction": _RATE,
                           "per_class": {"type": "array", "items": _CLASS_ROW}},
        },
        "train_data": {"type": "object"},
        "seed": {"type": "integer"},
    },
}

SPEC = register_section(SectionSpec(
    name="backdoor",
    title="Backdoor scan of the training data",
    compute=compute,
    schema=SCHEMA,
    rows=rows,
    caveat="A scan for one kind of poisoning (a trigger that adds activation to the target class) in the training data "
           "you passed, by a threshold calibrated on small reference models: 'no class suspicious' is not a proof of "
           "a clean model.",
    checks=checks,
    needs_train_data=True,
    model_card_metrics=model_card_metrics,
    defaults=dict(DEFAULTS),
))
