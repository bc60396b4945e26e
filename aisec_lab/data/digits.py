"""The bundled default data set: scikit-learn's ``load_digits`` (1,797 8x8 grey images, 10 classes).

It ships inside scikit-learn, so it needs no network. Pixels (0..16) are scaled to [0, 1] and laid
out channels first, ``(n, 1, 8, 8)``. The split is stratified with a test fraction of 0.25 (450 test
samples) by ``seed``; a validation split is carved, also stratified, from the training part.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .dataset import Dataset, _make

TEST_FRACTION = 0.25
DEFAULT_VAL_FRACTION = 0.2
SPLITS = ("train", "val", "test", "all")


def _check_fraction(val_fraction: float) -> float:
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ConfigError("val_fraction must be a number strictly between 0 and 1", got=val_fraction,
                          fix="e.g. val_fraction=0.2")
    return float(val_fraction)


def load_digits_split(split: str = "test", *, seed: int = 0, val_fraction: float | None = None) -> Dataset:
    """One split of the digits data.

    ``split="train"`` is the whole training part, unless ``val_fraction`` is given: then it is the
    training part minus the validation samples that ``split="val"`` with the same ``val_fraction``
    and ``seed`` returns (``val_fraction`` defaults to 0.2 for ``"val"``). ``"all"`` is every sample.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r} for 'digits'", got=split, fix=f"use one of {', '.join(SPLITS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError("seed must be a non-negative integer", got=seed, fix="e.g. seed=0")
    raw = load_digits()
    x = (raw.data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = raw.target.astype(np.int64)
    names = tuple(str(n) for n in raw.target_names)
    idx = np.arange(len(y))
    source = {"kind": "sklearn.datasets.load_digits", "test_fraction": TEST_FRACTION}
    if split == "all":
        chosen = idx
    else:
        train_idx, test_idx = train_test_split(idx, test_size=TEST_FRACTION, random_state=int(seed), stratify=y)
        if split == "test":
            chosen = test_idx
        elif split == "train" and val_fraction is None:
            chosen = train_idx
        else:
            frac = _check_fraction(DEFAULT_VAL_FRACTION if val_fraction is None else val_fraction)
            fit_idx, val_idx = train_test_split(train_idx, test_size=frac, random_state=int(seed), stratify=y[train_idx])
            chosen = val_idx if split == "val" else fit_idx
            source["val_fraction"] = frac
        chosen = np.sort(chosen)
    return _make(x[chosen], y[chosen], "digits", split, 10, (0.0, 1.0), names, int(seed), source)
