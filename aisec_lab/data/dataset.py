"""The in-memory :class:`Dataset` record, label handling and validation (NumPy only)."""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError

__all__ = ["Dataset", "from_arrays", "load_npz", "save_npz", "normalize_labels", "check_finite"]

log = logging.getLogger(__name__)

LAYOUT_CHOICES = ("channels_first", "channels_last")


def check_finite(x: np.ndarray, what: str = "x") -> None:
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = ~np.isfinite(x.reshape(len(x), -1)) if x.ndim > 1 else ~np.isfinite(x)[:, None]
        rows = np.flatnonzero(bad.any(axis=1))
        raise DataError(f"{what} contains NaN or Inf values",
                        got=f"{int(bad.sum())} non-finite values in {len(rows)} sample(s), first at index {int(rows[0])}",
                        fix="drop or impute those samples before evaluating")


def normalize_labels(y: Any, nb_classes: int | None, *, n: int | None = None, what: str = "y") -> np.ndarray:
    """Return integer labels (int64, shape ``(n,)``) from integer or one-hot labels, validated."""
    y = np.asarray(y)
    if y.dtype.kind not in "iubf":
        raise DataError(f"{what} must hold integer class labels or one-hot rows", got=f"dtype {y.dtype}",
                        fix="pass integer labels 0..nb_classes-1")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 2:
        if nb_classes is not None and y.shape[1] != nb_classes:
            raise DataError(f"one-hot {what} has {y.shape[1]} columns but nb_classes={nb_classes}",
                            got=f"shape {y.shape}", fix=f"pass one-hot rows of width {nb_classes} or integer labels")
        ok = np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)
        if not ok:
            raise DataError(f"2-D {what} must be one-hot rows (one 1, the rest 0)",
                            got="soft or multi-hot rows", fix="pass integer labels or np.eye(nb_classes)[labels]")
        y = y.argmax(axis=1)
    elif y.ndim != 1:
        raise DataError(f"{what} must be 1-D integer labels or 2-D one-hot rows", got=f"shape {y.shape}",
                        fix="pass labels of shape (n,)")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{what} must hold whole class numbers", got="non-integer values",
                            fix="pass integer labels 0..nb_classes-1")
    y = y.astype(np.int64)
    if n is not None and len(y) != n:
        raise DataError(f"{what} has {len(y)} labels but there are {n} samples", got=len(y),
                        fix="pass one label per sample")
    if len(y):
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or (nb_classes is not None and hi >= nb_classes):
            raise DataError(f"{what} has labels outside [0, {nb_classes})" if nb_classes else f"{what} has negative labels",
                            got=f"labels in [{lo}, {hi}]",
                            fix="labels must be 0..nb_classes-1; check nb_classes or remap the labels")
    return y


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Samples in the canonical layout (channels first, float32) with integer labels.

    ``x`` and ``y`` are read-only copies. ``clip_values`` is the range the data is declared to lie
    in (checked on construction when given). ``sha256`` fingerprints the exact arrays, so a
    scorecard can say which data it was computed on.
    """

    x: np.ndarray
    y: np.ndarray
    name: str = "arrays"
    split: str | None = None
    nb_classes: int = 0
    clip_values: tuple[float, float] | None = None
    class_names: tuple[str, ...] | None = None
    seed: int | None = None
    source: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def n(self) -> int:
        return int(len(self.x))

    def __len__(self) -> int:
        return self.n

    @cached_property
    def sha256(self) -> str:
        h = hashlib.sha256()
        h.update(repr((self.x.shape, str(self.x.dtype), self.y.shape, str(self.y.dtype))).encode())
        h.update(np.ascontiguousarray(self.x).tobytes())
        h.update(np.ascontiguousarray(self.y).tobytes())
        return h.hexdigest()

    def subset(self, indices: Any, *, split: str | None = None) -> Dataset:
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return _make(self.x[idx], self.y[idx], self.name, split or self.split, self.nb_classes,
                     self.clip_values, self.class_names, self.seed, dict(self.source, subset_of=self.sha256))

    def stratified_sample(self, n: int, *, seed: int = 0) -> Dataset:
        """``n`` samples drawn without replacement, stratified by class, reproducible by ``seed``."""
        from sklearn.model_selection import train_test_split

        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError("n_samples must be a positive integer", got=n, fix="e.g. n_samples=300")
        if n > self.n:
            raise ConfigError(f"n_samples={n} is larger than the data ({self.n} samples)", got=n,
                              fix=f"pass n_samples <= {self.n} or None for all samples")
        if n == self.n:
            return self
        counts = np.bincount(self.y, minlength=max(self.nb_classes, 1))
        stratify = self.y if (counts[counts > 0].min() >= 2 and n >= (counts > 0).sum()) else None
        idx, _ = train_test_split(np.arange(self.n), train_size=int(n), random_state=seed, stratify=stratify)
        return self.subset(np.sort(idx))

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "split": self.split, "n": self.n, "seed": self.seed,
                "input_shape": list(self.input_shape), "nb_classes": self.nb_classes, "sha256": self.sha256}

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, split={self.split!r}, n={self.n}, input_shape={self.input_shape}, "
                f"nb_classes={self.nb_classes})")


def _make(x, y, name, split, nb_classes, clip_values, class_names, seed, source) -> Dataset:
    x = np.array(x, dtype=np.float32, copy=True)
    y = np.array(y, dtype=np.int64, copy=True)
    x.setflags(write=False)
    y.setflags(write=False)
    return Dataset(x=x, y=y, name=name, split=split, nb_classes=nb_classes, clip_values=clip_values,
                   class_names=class_names, seed=seed, source=source)


def from_arrays(
    x: Any,
    y: Any,
    *,
    name: str = "arrays",
    nb_classes: int | None = None,
    clip_values: tuple[float, float] | None = None,
    layout: str = "channels_first",
    split: str | None = None,
    class_names: Any = None,
) -> Dataset:
    """Build a validated :class:`Dataset` from arrays.

    ``x``: ``(n, *sample_shape)``; images in channels-first layout unless ``layout="channels_last"``
    (then ``(n, H, W, C)`` is transposed to ``(n, C, H, W)``). ``y``: integer labels or one-hot rows
    (stored as integers). ``nb_classes`` defaults to the one-hot width or ``max(y) + 1``.
    ``clip_values``: the declared valid range; data outside it is rejected.
    """
    if layout not in LAYOUT_CHOICES:
        raise ConfigError("layout must be 'channels_first' or 'channels_last'", got=layout,
                          fix="pass layout='channels_last' for (n, H, W, C) images")
    try:
        x = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise DataError("x could not be read as an array", got=f"{type(x).__name__}: {exc}",
                        fix="pass a NumPy array of shape (n, ...)") from None
    if x.dtype.kind not in "fiub":
        raise DataError("x must be numeric", got=f"dtype {x.dtype}", fix="convert it with np.asarray(x, dtype=np.float32)")
    if x.ndim < 2:
        raise DataError("x must have a batch axis and at least one feature axis", got=f"shape {x.shape}",
                        fix="reshape to (n, features) or (n, C, H, W)")
    if layout == "channels_last":
        if x.ndim != 4:
            raise DataError("layout='channels_last' expects images of shape (n, H, W, C)", got=f"shape {x.shape}",
                            fix="pass 4-D image arrays or layout='channels_first'")
        x = np.transpose(x, (0, 3, 1, 2))
    x = x.astype(np.float32)
    check_finite(x, "x")
    if nb_classes is not None:
        if isinstance(nb_classes, bool) or not isinstance(nb_classes, (int, np.integer)) or nb_classes < 2:
            raise ConfigError("nb_classes must be an integer >= 2", got=nb_classes, fix="e.g. nb_classes=10")
        nb_classes = int(nb_classes)
    y_arr = np.asarray(y)
    labels = normalize_labels(y_arr, nb_classes, n=len(x), what="y")
    if nb_classes is None:
        nb_classes = int(y_arr.shape[1]) if (y_arr.ndim == 2 and y_arr.shape[1] > 1) else int(labels.max(initial=0)) + 1
        nb_classes = max(nb_classes, 2)
    if clip_values is not None:
        if len(clip_values) != 2 or not (float(clip_values[0]) < float(clip_values[1])):
            raise ConfigError("clip_values must be (min, max) with min < max", got=clip_values, fix="e.g. (0.0, 1.0)")
        clip_values = (float(clip_values[0]), float(clip_values[1]))
        if len(x) and (x.min() < clip_values[0] - 1e-6 or x.max() > clip_values[1] + 1e-6):
            raise DataError(f"x has values outside clip_values {clip_values}",
                            got=f"range [{float(x.min()):g}, {float(x.max()):g}]",
                            fix="rescale the data (e.g. x / 255.0) or declare the range it really has")
    if class_names is not None:
        class_names = tuple(str(c) for c in class_names)
        if len(class_names) != nb_classes:
            raise ConfigError(f"class_names has {len(class_names)} names but nb_classes={nb_classes}",
                              got=class_names, fix="give one name per class")
    return _make(x, labels, name, split, nb_classes, clip_values, class_names, None, {"kind": "arrays"})


def load_npz(path: str | os.PathLike, *, x_key: str = "x", y_key: str = "y", name: str | None = None,
             **kwargs: Any) -> Dataset:
    """Load a dataset from an ``.npz`` file holding arrays ``x_key`` and ``y_key`` (pickles refused)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("no such .npz file", got=str(path), fix="check the path")
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            missing = [k for k in (x_key, y_key) if k not in keys]
            if missing:
                raise DataError(f"{path.name} lacks the array(s) {missing}", got=f"arrays {keys}",
                                fix="pass x_key=/y_key= naming the arrays that hold samples and labels")
            x, y = data[x_key], data[y_key]
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, ValueError) and "pickle" in str(exc).lower():
            raise DataError(f"{path.name} stores object arrays, which would need unpickling", got=str(exc),
                            fix="save plain numeric arrays with np.savez(path, x=x, y=y)") from None
        raise DataError(f"{path.name} is not a readable .npz file", got=f"{type(exc).__name__}: {exc}",
                        fix="re-create it with np.savez(path, x=x, y=y)") from None
    ds = from_arrays(x, y, name=name or path.stem, **kwargs)
    return Dataset(x=ds.x, y=ds.y, name=ds.name, split=ds.split, nb_classes=ds.nb_classes,
                   clip_values=ds.clip_values, class_names=ds.class_names, seed=None,
                   source={"kind": "npz", "path": str(path)})


def save_npz(ds: Dataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` as an ``.npz`` (arrays ``x``, ``y``) atomically."""
    from .._io import atomic_write_bytes
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, x=ds.x, y=ds.y)
    return atomic_write_bytes(Path(path), buf.getvalue())
