"""Adapter from a ``torch.utils.data.DataLoader`` (or any iterable of ``(x, y)`` tensor batches)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._optional import import_torch
from ..errors import DataError
from .dataset import Dataset, from_arrays


def _to_numpy(t: Any) -> np.ndarray:
    if hasattr(t, "detach"):
        return t.detach().cpu().numpy()
    return np.asarray(t)


def from_torch_loader(loader: Any, *, max_samples: int | None = None, name: str = "torch_loader",
                      **kwargs: Any) -> Dataset:
    """Stream ``(x, y)`` batches from ``loader`` into a :class:`Dataset`, stopping after ``max_samples``.

    Batches are read one at a time and only the first ``max_samples`` samples are kept, so a huge
    loader is never materialised whole. ``x`` must already be channels first (torch convention);
    other keyword arguments go to :func:`from_arrays` (``nb_classes``, ``clip_values``, ...).
    """
    import_torch("read a torch DataLoader")
    xs, ys, seen = [], [], 0
    for i, batch in enumerate(loader):
        if isinstance(batch, dict):
            batch = (batch.get("x", batch.get("image")), batch.get("y", batch.get("label")))
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise DataError("each DataLoader batch must be an (x, y) pair", got=f"batch {i}: {type(batch).__name__}",
                            fix="use a Dataset whose __getitem__ returns (input, label)")
        bx, by = _to_numpy(batch[0]), _to_numpy(batch[1])
        if max_samples is not None:
            keep = max_samples - seen
            bx, by = bx[:keep], by[:keep]
        xs.append(bx)
        ys.append(by)
        seen += len(bx)
        if max_samples is not None and seen >= max_samples:
            break
    if not xs:
        raise DataError("the DataLoader yielded no batches", got=loader, fix="check the loader's dataset")
    return from_arrays(np.concatenate(xs), np.concatenate(ys), name=name, **kwargs)
