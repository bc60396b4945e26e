"""Adapter from a ``tf.data.Dataset`` of ``(x, y)`` elements (batched or not)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._optional import import_tensorflow
from ..errors import DataError
from .dataset import Dataset, from_arrays


def from_tf_dataset(dataset: Any, *, max_samples: int | None = None, layout: str = "channels_last",
                    name: str = "tf_dataset", batched: bool | None = None, **kwargs: Any) -> Dataset:
    """Stream a ``tf.data.Dataset`` into a :class:`Dataset`, stopping after ``max_samples``.

    Images from TensorFlow are usually channels last, so ``layout`` defaults to
    ``"channels_last"`` and samples are transposed to the canonical channels-first layout.
    ``batched`` says whether elements are batches; by default it is read from the element spec of
    the labels (rank >= 1 integer labels mean batches). Other keyword arguments go to
    :func:`from_arrays`.
    """
    tf = import_tensorflow("read a tf.data.Dataset")
    if not isinstance(dataset, tf.data.Dataset):
        raise DataError("from_tf_dataset expects a tf.data.Dataset", got=type(dataset).__name__,
                        fix="use from_arrays for NumPy data or from_torch_loader for a DataLoader")
    spec = dataset.element_spec
    if isinstance(spec, dict):
        dataset = dataset.map(lambda d: (d.get("x", d.get("image")), d.get("y", d.get("label"))))
        spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) < 2:
        raise DataError("each tf.data element must be an (x, y) pair", got=str(spec),
                        fix="map the dataset to (image, label) pairs")
    if batched is None:
        batched = spec[1].shape.rank is not None and spec[1].shape.rank >= 1 and spec[1].dtype.is_integer
    xs, ys, seen = [], [], 0
    for bx, by in dataset.as_numpy_iterator():
        bx, by = np.asarray(bx), np.asarray(by)
        if not batched:
            bx, by = bx[None], by[None]
        if max_samples is not None:
            bx, by = bx[: max_samples - seen], by[: max_samples - seen]
        xs.append(bx)
        ys.append(by)
        seen += len(bx)
        if max_samples is not None and seen >= max_samples:
            break
    if not xs:
        raise DataError("the tf.data.Dataset yielded no elements", got=str(spec), fix="check the dataset")
    x = np.concatenate(xs)
    if layout == "channels_last" and x.ndim != 4:
        layout = "channels_first"  # non-image data has no channel axis to move
    return from_arrays(x, np.concatenate(ys), name=name, layout=layout, **kwargs)
