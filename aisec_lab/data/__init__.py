"""Data in: the bundled digits, arrays, ``.npz`` files, torch DataLoaders and ``tf.data`` datasets.

Every source ends as a :class:`Dataset` in the canonical layout: channels first, float32 samples,
integer labels. The framework adapters (``from_torch_loader``, ``from_tf_dataset``) import their
framework only when called.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UnknownComponentError
from ..registry import Registry
from .dataset import Dataset, from_arrays, load_npz, normalize_labels, save_npz

__all__ = ["Dataset", "load_dataset", "from_arrays", "load_npz", "save_npz", "from_torch_loader",
           "from_tf_dataset", "list_datasets", "DATASETS", "normalize_labels"]

#: Bundled data sets by name. Each entry is ``loader(split, seed=..., **kwargs) -> Dataset``.
DATASETS: Registry = Registry("dataset")


@DATASETS.register("digits", description="scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), offline")
def _digits(split: str, *, seed: int = 0, **kwargs: Any) -> Dataset:
    from .digits import load_digits_split

    return load_digits_split(split, seed=seed, **kwargs)


def list_datasets() -> list[str]:
    return DATASETS.names()


def load_dataset(name: str | os.PathLike = "digits", split: str = "test", *, seed: int = 0, **kwargs: Any) -> Dataset:
    """Load a bundled data set by name, or an ``.npz`` file by path.

    >>> ds = load_dataset("digits", split="test")   # doctest: +SKIP
    >>> ds.x.shape, ds.input_shape                  # doctest: +SKIP
    ((450, 1, 8, 8), (1, 8, 8))
    """
    if isinstance(name, os.PathLike) or (isinstance(name, str) and name.endswith(".npz")):
        return load_npz(Path(name), **kwargs)
    if not isinstance(name, str):
        raise ConfigError("dataset must be a name or an .npz path", got=name, fix=f"e.g. 'digits'")
    try:
        loader = DATASETS.get(name)
    except UnknownComponentError as exc:
        raise UnknownComponentError(exc.what, fix=f"{exc.fix}; or pass a path to an .npz file") from None
    return loader(split, seed=seed, **kwargs)


def from_torch_loader(loader: Any, **kwargs: Any) -> Dataset:
    from .pytorch import from_torch_loader as _impl

    return _impl(loader, **kwargs)


from_torch_loader.__doc__ = "Stream a torch DataLoader into a Dataset (see aisec_lab.data.pytorch)."


def from_tf_dataset(dataset: Any, **kwargs: Any) -> Dataset:
    from .tensorflow import from_tf_dataset as _impl

    return _impl(dataset, **kwargs)


from_tf_dataset.__doc__ = "Stream a tf.data.Dataset into a Dataset (see aisec_lab.data.tensorflow)."
