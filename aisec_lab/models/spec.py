"""Framework-neutral part of the model boundary: the :class:`Target` record and argument checks.

Nothing here imports torch or tensorflow. The framework files (``pytorch.py``, ``tensorflow.py``)
build an ART estimator whose input is always the *canonical layout* -- channels first,
``(n, *input_shape)`` float32 -- and hand it to :class:`Target` with the metadata below.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, IncompatibleModelError

__all__ = [
    "Target",
    "FRAMEWORKS",
    "check_input_shape",
    "check_nb_classes",
    "normalize_clip_values",
    "normalize_preprocessing",
    "analyse_outputs",
    "OutputAnalysis",
    "probe_inputs",
    "resolve_layout",
]

log = logging.getLogger(__name__)

#: Framework strings used everywhere (scorecards, zoo, CLI). Predict-function targets use "blackbox".
FRAMEWORKS = ("pytorch", "tensorflow")

#: Layouts a model may expect, relative to the canonical channels-first data layout.
LAYOUTS = ("channels_first", "channels_last", "flat")

_PROB_ATOL = 1e-3


def check_input_shape(input_shape: Any) -> tuple[int, ...]:
    """Validate ``input_shape`` (one sample, canonical channels-first layout) and return it as a tuple."""
    fix = "pass the shape of ONE sample in channels-first layout, e.g. input_shape=ds.input_shape or (1, 8, 8)"
    if isinstance(input_shape, (int, np.integer)):
        input_shape = (int(input_shape),)
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) == 0:
        raise ConfigError("input_shape must be a non-empty tuple of positive integers", got=input_shape, fix=fix)
    out = []
    for dim in input_shape:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or int(dim) <= 0:
            raise ConfigError("input_shape must be a non-empty tuple of positive integers", got=input_shape, fix=fix)
        out.append(int(dim))
    if len(out) > 4:
        raise ConfigError("input_shape has more than 4 dimensions; did it include the batch axis?",
                          got=tuple(out), fix=fix)
    return tuple(out)


def check_nb_classes(nb_classes: Any) -> int:
    if isinstance(nb_classes, bool) or not isinstance(nb_classes, (int, np.integer)) or int(nb_classes) < 2:
        raise ConfigError("nb_classes must be an integer >= 2 (a single-logit binary model is nb_classes=2)",
                          got=nb_classes, fix="pass the number of classes the model predicts, e.g. nb_classes=10")
    return int(nb_classes)


def _feature_array(value: Any, input_shape: tuple[int, ...], what: str, fix: str):
    """A float, or a float32 array broadcastable to ``input_shape`` (per-channel 1-D arrays become (C, 1, 1))."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be numbers or numeric arrays", got=value, fix=fix) from None
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{what} must be finite (no NaN or Inf)", got=value, fix=fix)
    if arr.ndim == 0:
        return float(arr)
    if arr.ndim == 1 and len(input_shape) > 1 and arr.shape[0] == input_shape[0] and arr.shape[0] != input_shape[-1]:
        arr = arr.reshape((arr.shape[0],) + (1,) * (len(input_shape) - 1))
    try:
        full = np.broadcast_shapes(arr.shape, input_shape)
    except ValueError:
        full = None
    if full != tuple(input_shape):
        raise ConfigError(f"{what} arrays must be scalars, one value per channel ({input_shape[0]}), "
                          f"or broadcastable to input_shape {input_shape}",
                          got=f"an array of shape {arr.shape}", fix=fix)
    return arr.astype(np.float32)


def normalize_clip_values(clip_values: Any, input_shape: tuple[int, ...]):
    """Validate ``(min, max)`` and return them as floats or float32 arrays broadcastable to ``input_shape``.

    Scalars apply to every feature. A 1-D array with one value per channel (length
    ``input_shape[0]``) is reshaped to ``(C, 1, 1)`` so it broadcasts over the canonical layout; any
    array already broadcastable to ``input_shape`` is accepted as is.
    """
    fix = "pass the range valid inputs lie in as (min, max) with min < max, e.g. clip_values=(0.0, 1.0)"
    if clip_values is None:
        raise ConfigError("clip_values is required: attacks must know the valid input range", got=None, fix=fix)
    if isinstance(clip_values, np.ndarray) and clip_values.ndim >= 1 and clip_values.shape[0] == 2:
        clip_values = (clip_values[0], clip_values[1])
    if not isinstance(clip_values, (tuple, list)) or len(clip_values) != 2:
        raise ConfigError("clip_values must be a pair (min, max)", got=clip_values, fix=fix)
    lo, hi = (_feature_array(v, input_shape, "clip_values", fix) for v in clip_values)
    if np.any(np.asarray(lo) >= np.asarray(hi)):
        raise ConfigError("clip_values are reversed or empty: min must be < max everywhere",
                          got=f"(min={_short(lo)}, max={_short(hi)})", fix=fix)
    return lo, hi


def normalize_preprocessing(preprocessing: Any, input_shape: tuple[int, ...]):
    """Validate ART-style ``(subtract, divide)`` normalisation; ``None`` when it is the identity."""
    if preprocessing is None:
        return None
    fix = "pass (mean, std) as scalars or one value per channel, e.g. preprocessing=((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))"
    if not isinstance(preprocessing, (tuple, list)) or len(preprocessing) != 2:
        raise ConfigError("preprocessing must be a pair (subtract, divide)", got=preprocessing, fix=fix)
    mean, std = (_feature_array(v, input_shape, "preprocessing", fix) for v in preprocessing)
    if np.any(np.asarray(std) <= 0):
        raise ConfigError("preprocessing's divisor must be positive", got=preprocessing, fix=fix)
    if np.all(np.asarray(mean) == 0) and np.all(np.asarray(std) == 1):
        return None
    return mean, std


def _short(v: Any) -> str:
    arr = np.asarray(v)
    if arr.ndim == 0:
        return repr(float(arr))
    return f"array{arr.shape} in [{float(arr.min()):g}, {float(arr.max()):g}]"


def probe_inputs(input_shape: tuple[int, ...], clip_values, n: int = 8, seed: int = 0) -> np.ndarray:
    """A small deterministic batch inside the clip range: uniform noise plus both corners."""
    rng = np.random.default_rng(seed)
    lo = np.broadcast_to(np.asarray(clip_values[0], dtype=np.float32), input_shape)
    hi = np.broadcast_to(np.asarray(clip_values[1], dtype=np.float32), input_shape)
    u = rng.random((n,) + tuple(input_shape), dtype=np.float32)
    x = lo + u * (hi - lo)
    x[0] = lo
    x[1] = hi
    return x.astype(np.float32)


@dataclass(frozen=True)
class OutputAnalysis:
    """What a probe forward pass tells about a model's raw outputs."""

    width: int
    binary_single_logit: bool
    looks_like_probabilities: bool


def analyse_outputs(raw: np.ndarray, nb_classes: int, *, batch: int) -> OutputAnalysis:
    """Check the model's raw output against ``nb_classes`` and detect probability outputs."""
    raw = np.asarray(raw)
    if raw.ndim == 1 and raw.shape[0] == batch:
        raw = raw[:, None]
    if raw.ndim != 2 or raw.shape[0] != batch:
        raise IncompatibleModelError(
            "the model must return one row of scores per sample, shape (n, nb_classes)",
            got=f"output of shape {raw.shape} for a batch of {batch}",
            fix="make the model return logits of shape (n, nb_classes) (add a Flatten/Linear head)")
    width = raw.shape[1]
    binary = width == 1 and nb_classes == 2
    if width != nb_classes and not binary:
        raise IncompatibleModelError(
            f"the model outputs {width} scores per sample but nb_classes={nb_classes}",
            got=f"output shape {raw.shape}",
            fix=f"pass nb_classes={width} if the model has {width} classes, or wrap the right model")
    if not np.all(np.isfinite(raw)):
        raise IncompatibleModelError(
            "the model returned NaN or Inf on valid inputs inside clip_values",
            got=f"{int((~np.isfinite(raw)).sum())} non-finite values in a probe batch",
            fix="check the model's weights and its expected input scale (clip_values/preprocessing)")
    if binary:
        probs = bool(np.all((raw >= 0) & (raw <= 1)))
    else:
        probs = bool(np.all(raw >= -1e-6) and np.all(raw <= 1 + 1e-6)
                     and np.allclose(raw.sum(axis=1), 1.0, atol=_PROB_ATOL))
    return OutputAnalysis(width=width, binary_single_logit=binary, looks_like_probabilities=probs)


def resolve_layout(
    input_shape: tuple[int, ...],
    model_shape: Sequence[int | None] | None,
    channels_first: bool | None,
    *,
    default_channels_first: bool,
) -> str:
    """Decide how canonical (channels-first) data must be rearranged for the model.

    ``model_shape`` is the per-sample input shape the model declares (``None`` where unknown, or
    ``None`` entries for free dimensions). Returns one of ``"channels_first"`` (no change),
    ``"channels_last"`` (move the channel axis last) or ``"flat"`` (flatten each sample).
    """
    image = len(input_shape) == 3
    cl_shape = input_shape[1:] + input_shape[:1] if image else None

    def fits(declared: Sequence[int | None], shape: tuple[int, ...]) -> bool:
        return len(declared) == len(shape) and all(d is None or int(d) == s for d, s in zip(declared, shape))

    if channels_first is not None and not isinstance(channels_first, bool):
        raise ConfigError("channels_first must be True, False or None (auto)", got=channels_first,
                          fix="pass channels_first=False for a model that expects (n, H, W, C) input")
    if model_shape is None:
        if channels_first is None:
            channels_first = default_channels_first
        return "channels_first" if (channels_first or not image) else "channels_last"

    model_shape = tuple(model_shape)
    candidates = []
    if fits(model_shape, input_shape):
        candidates.append("channels_first")
    if image and fits(model_shape, cl_shape):
        candidates.append("channels_last")
    if len(input_shape) > 1 and fits(model_shape, (int(np.prod(input_shape)),)):
        candidates.append("flat")
    if not candidates:
        alts = f"{input_shape} (channels first)"
        if image:
            alts += f", {cl_shape} (channels last)"
        raise IncompatibleModelError(
            f"input_shape={input_shape} does not match the model's declared input shape in any layout",
            got=f"model input shape {tuple(model_shape)}; accepted forms: {alts} or flat",
            fix="pass input_shape as ONE sample of your data in channels-first layout (ds.input_shape)")
    if channels_first is not None:
        wanted = "channels_first" if channels_first else "channels_last"
        if wanted in candidates:
            return wanted
        if "flat" in candidates:
            return "flat"
        raise IncompatibleModelError(
            f"channels_first={channels_first} contradicts the model's declared input shape",
            got=f"model input shape {tuple(model_shape)} for input_shape {input_shape}",
            fix="leave channels_first=None to detect the layout from the model")
    if len(candidates) > 1:
        preferred = "channels_first" if default_channels_first else "channels_last"
        return preferred if preferred in candidates else candidates[0]
    return candidates[0]


@dataclass(frozen=True, eq=False, repr=False)
class Target:
    """A model wrapped once: an ART estimator plus the metadata every later step records.

    Every target takes data in the *canonical layout* (channels first, ``(n, *input_shape)``,
    float32 in ``clip_values``) whatever its framework; the conversion to the model's own layout
    (``model_layout``) happens inside the estimator. Outputs are logits of width ``nb_classes``.

    Input gradients are computed with a *summed* cross-entropy, so a sample's gradient does not
    depend on how many other samples share its batch (a mean loss scales them by 1/batch).
    """

    estimator: Any
    model: Any
    framework: str
    input_shape: tuple[int, ...]
    nb_classes: int
    clip_values: tuple[Any, Any]
    name: str
    model_layout: str = "channels_first"
    n_params: int | None = None
    weights_sha256: str | None = None
    device: str = "cpu"
    output_type: str = "logits"  # what the raw model returns: "logits" or "probabilities"
    logits_from_probabilities: bool = False  # True when logits=False: log-probabilities are used
    binary_single_logit: bool = False
    has_gradients: bool = True
    preprocessing: Any = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    oracle: Any = None  # native fast path (aisec_lab.backends), the same boundary module as the estimator
    defense: Any = None  # aisec_lab.defenses.preprocessing.DefenseInfo on a target built by al.defend()

    # -- metadata ------------------------------------------------------------------------
    @property
    def clip_min(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.clip_values[0], dtype=np.float32), self.input_shape)

    @property
    def clip_max(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.clip_values[1], dtype=np.float32), self.input_shape)

    @property
    def clip_range(self) -> float:
        """Smallest width of the valid input range over all features (used to sanity-check ε)."""
        return float(np.min(np.asarray(self.clip_values[1]) - np.asarray(self.clip_values[0])))

    @property
    def outputs_probabilities(self) -> bool:
        """True when the raw model returns probabilities (flagged: attacks work best on logits)."""
        return self.output_type == "probabilities"

    def info(self) -> dict[str, Any]:
        """Plain-JSON description of the target (what a scorecard's ``model`` section records)."""

        def clip(v):
            arr = np.asarray(v)
            return float(arr) if arr.ndim == 0 else arr.reshape(-1).tolist()

        return {
            "name": self.name,
            "framework": self.framework,
            "input_shape": list(self.input_shape),
            "model_layout": self.model_layout,
            "nb_classes": self.nb_classes,
            "clip_values": [clip(self.clip_values[0]), clip(self.clip_values[1])],
            "n_params": self.n_params,
            "weights_sha256": self.weights_sha256,
            "device": self.device,
            "output_type": self.output_type,
            "logits_from_probabilities": self.logits_from_probabilities,
            "binary_single_logit": self.binary_single_logit,
            "has_gradients": self.has_gradients,
            "warnings": list(self.warnings),
        }

    def __repr__(self) -> str:
        params = "?" if self.n_params is None else f"{self.n_params:,}"
        defended = "" if self.defense is None else \
            f", defense={'+'.join(c['name'] for c in self.defense.chain)!r}, adaptive={self.defense.adaptive}"
        return (f"Target(name={self.name!r}, framework={self.framework!r}, input_shape={self.input_shape}, "
                f"nb_classes={self.nb_classes}, params={params}, layout={self.model_layout!r}, "
                f"device={self.device!r}, output={self.output_type!r}{defended})")

    # -- data checks ---------------------------------------------------------------------
    def check_data(self, x: Any, y: Any = None, *, what: str = "x") -> np.ndarray:
        """Validate ``x`` (and ``y``) against this target; return ``x`` as float32.

        ``x`` may be a :class:`~aisec_lab.data.Dataset`, in which case its labels are checked too.
        Raises :class:`~aisec_lab.errors.DataError` on a shape mismatch, NaN/Inf, values outside
        ``clip_values`` or labels outside ``[0, nb_classes)``.
        """
        from ..data.dataset import Dataset, check_finite, normalize_labels

        if isinstance(x, Dataset):
            if y is None:
                y = x.y
            x = x.x
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise DataError(f"{what} must be a numeric array", got=f"dtype {x.dtype}",
                            fix="convert it with np.asarray(x, dtype=np.float32)")
        if x.shape[1:] != self.input_shape:
            hint = "pass a batch in channels-first layout"
            if x.shape[1:] == tuple(self.input_shape[1:]) + tuple(self.input_shape[:1]):
                hint = "the data looks channels-last: use x.transpose(0, 3, 1, 2) or from_arrays(x, y, layout='channels_last')"
            elif x.shape == self.input_shape:
                hint = "add the batch axis: x[None]"
            raise DataError(
                f"{what} has shape {x.shape}, expected (n, {', '.join(map(str, self.input_shape))}) "
                f"for target {self.name!r}", got=f"per-sample shape {x.shape[1:]}", fix=hint)
        x = x.astype(np.float32, copy=False)
        check_finite(x, what)
        lo, hi = self.clip_values
        tol = 1e-5 * max(1.0, self.clip_range)
        below = x < np.asarray(lo) - tol
        above = x > np.asarray(hi) + tol
        if below.any() or above.any():
            n_bad = int(np.any((below | above).reshape(len(x), -1), axis=1).sum())
            raise DataError(
                f"{what} has values outside the target's clip_values {_short(lo)}..{_short(hi)}",
                got=f"range [{float(x.min()):g}, {float(x.max()):g}] in {n_bad} sample(s)",
                fix="scale the data to the model's input range (e.g. divide 0-255 pixels by 255) "
                    "or wrap the model with the clip_values it really accepts")
        if y is not None:
            labels = normalize_labels(y, self.nb_classes, n=len(x), what="y")
            del labels
        return x

    # -- running -------------------------------------------------------------------------
    def predict(self, x: Any, *, batch_size: int = 256) -> np.ndarray:
        """Logits for ``x`` (canonical layout), shape ``(n, nb_classes)``, float32."""
        x = self.check_data(x)
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ConfigError("batch_size must be a positive integer", got=batch_size, fix="e.g. batch_size=256")
        if len(x) == 0:
            return np.zeros((0, self.nb_classes), dtype=np.float32)
        out = [np.asarray(self.estimator.predict(x[i:i + batch_size], batch_size=batch_size), dtype=np.float32)
               for i in range(0, len(x), batch_size)]
        return np.concatenate(out, axis=0)

    def predict_labels(self, x: Any, *, batch_size: int = 256) -> np.ndarray:
        return self.predict(x, batch_size=batch_size).argmax(axis=1)

    def accuracy(self, x: Any, y: Any = None, *, batch_size: int = 256) -> float:
        """Clean accuracy on ``x``/``y`` (or a Dataset) as a float in [0, 1]."""
        from ..data.dataset import Dataset, normalize_labels

        if isinstance(x, Dataset):
            x, y = x.x, x.y if y is None else y
        if y is None:
            raise ConfigError("accuracy needs labels", got=None, fix="pass y=... or a Dataset")
        labels = normalize_labels(y, self.nb_classes, n=len(x), what="y")
        if len(labels) == 0:
            raise DataError("accuracy of an empty set is undefined", got="0 samples", fix="pass at least one sample")
        return float(np.mean(self.predict_labels(x, batch_size=batch_size) == labels))

    def loss_gradient(self, x: Any, y: Any) -> np.ndarray:
        """Gradient of the summed cross-entropy w.r.t. ``x`` (canonical layout). Needs a gradient target."""
        from ..data.dataset import normalize_labels

        if not self.has_gradients:
            raise IncompatibleModelError(
                "this target has no gradients (it was built with wrap_predict)", got=self.name,
                fix="use a decision- or score-based attack, or wrap the native model with wrap_model")
        x = self.check_data(x)
        labels = normalize_labels(y, self.nb_classes, n=len(x), what="y")
        onehot = np.eye(self.nb_classes, dtype=np.float32)[labels]
        return np.asarray(self.estimator.loss_gradient(x, onehot), dtype=np.float32)

