"""Seeding helpers shared by code that calls ART (which draws from NumPy's global generator)."""

from __future__ import annotations

import contextlib

import numpy as np

__all__ = ["numpy_global_seed"]


@contextlib.contextmanager
def numpy_global_seed(seed: int):
    """Seed NumPy's global generator for the block, then restore the caller's state."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)
