"""Data for the benchmark rows, all derived from the bundled digits (no downloads), deterministic by seed.

* :func:`digits` -- the stratified sample of the test split that ``al.evaluate(n_samples=n, seed=0)`` draws.
* :func:`digits28` -- digits upsampled to 28x28 (``scipy.ndimage.zoom``, bilinear), each copy shifted by up to
  2 pixels and lightly noised, for the LeNet-size rows (the 450 test digits yield 1,000 distinct images).
* :func:`jittered` -- ``n`` 8x8 digits made by shifting and noising the bundled ones (the peak-RSS row).
"""

from __future__ import annotations

import numpy as np


def digits(n: int | None = 300, split: str = "test", seed: int = 0):
    """The bundled digits' ``split``, stratified down to ``n`` samples (``None``: all of them)."""
    import aisec_lab as al

    ds = al.load_dataset("digits", split=split)
    return ds if n is None or n >= ds.n else ds.stratified_sample(n, seed=seed)


def _jitter(x: np.ndarray, rng: np.random.Generator, max_shift: int, noise: float) -> np.ndarray:
    """Shift each (1, H, W) image by up to ``max_shift`` pixels (zero fill) and add Gaussian noise, clipped to [0, 1]."""
    from scipy import ndimage

    out = np.empty_like(x)
    shifts = rng.integers(-max_shift, max_shift + 1, size=(len(x), 2))
    for i, (dy, dx) in enumerate(shifts):
        out[i, 0] = ndimage.shift(x[i, 0], (dy, dx), order=0, mode="constant", cval=0.0)
    out += rng.normal(0.0, noise, size=out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def upsample28(x8: np.ndarray) -> np.ndarray:
    """(n, 1, 8, 8) -> (n, 1, 28, 28), bilinear, clipped to [0, 1]."""
    from scipy import ndimage

    return np.clip(ndimage.zoom(np.asarray(x8, np.float32), (1, 1, 3.5, 3.5), order=1), 0.0, 1.0).astype(np.float32)


def digits28(n: int, split: str = "test", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` digits at 28x28 from ``split``, cycling through it; every image shifted/noised (so none repeats)."""
    ds = digits(None, split=split)
    idx = np.arange(n) % ds.n
    rng = np.random.default_rng(seed)
    x = _jitter(upsample28(ds.x[idx]), rng, max_shift=2, noise=0.03)
    return x, np.asarray(ds.y[idx], dtype=np.int64)


def jittered(n: int, seed: int = 0):
    """A Dataset of ``n`` 8x8 digits: the 1,797 bundled ones (train + test) cycled, shifted by up to 1 pixel
    and noised (sigma 0.05)."""
    import aisec_lab as al

    train, test = digits(None, "train"), digits(None, "test")
    x0 = np.concatenate([train.x, test.x]).astype(np.float32)
    y0 = np.concatenate([train.y, test.y]).astype(np.int64)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(n) % len(x0)
    x = _jitter(x0[idx], rng, max_shift=1, noise=0.05)
    return al.from_arrays(x, y0[idx], nb_classes=10, clip_values=(0.0, 1.0), name=f"digits-jittered-{n}")
