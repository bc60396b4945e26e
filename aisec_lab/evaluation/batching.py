"""Automatic batch size (and CPU thread count): time a few settings on the target, keep the fastest.

The fastest batch is not the largest (measured here: ART's batch 32 ran 1.7x faster than full batch
on a 455k-parameter CNN), and on a shared CPU one torch thread can beat two by far (spin-waiting
OpenMP threads), so the engine measures instead of guessing.

Random starts are drawn per batch, so the batch size is part of what makes a run reproducible: the
choice is remembered per model and machine in the cache folder (``AISEC_LAB_CACHE``), so a second run
with the same seed uses the same batch size and gives the same numbers; ``batch_size=N`` pins it.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
import weakref

import numpy as np

log = logging.getLogger(__name__)

CANDIDATES = (32, 64, 128, 256, 512)
_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def choose_batch_size(target, n: int, candidates=CANDIDATES, repeats: int = 2) -> tuple[int, int | None]:
    """``(batch_size, threads)`` with the best samples/second for one attack step on ``target``."""
    oracle = target.oracle
    sizes = [c for c in candidates if c <= max(n, candidates[0])]
    thread_options = tuple(getattr(oracle, "thread_options", (None,)))
    try:
        cached = _CACHE.get(oracle)
    except TypeError:
        cached = None
    key = _disk_key(target, sizes, thread_options)
    if cached is None:
        cached = _disk_get(key)
    if cached is not None:
        return min(cached[0], max(sizes)), cached[1]
    rng = np.random.default_rng(0)
    lo, hi = np.asarray(oracle.clip_min, np.float32), np.asarray(oracle.clip_max, np.float32)
    best, best_rate = (sizes[0], thread_options[0]), 0.0
    q0, g0 = oracle.queries, getattr(oracle, "gradient_queries", 0)
    for threads in thread_options:
        with oracle.threads(threads):
            for size in sizes:
                xb = (lo + rng.random((size,) + tuple(oracle.input_shape), dtype=np.float32) * (hi - lo)).astype(np.float32)
                yb = rng.integers(0, oracle.nb_classes, size=size)
                call = (lambda: oracle.value_and_grad(xb, yb, loss="ce")) if oracle.has_gradients else \
                    (lambda: oracle.logits(xb))
                call()  # warm-up (tracing, allocation)
                t0 = time.perf_counter()
                for _ in range(repeats):
                    call()
                rate = size * repeats / max(time.perf_counter() - t0, 1e-9)
                if rate > best_rate * 1.05:  # prefer the earlier (smaller, default-thread) setting unless clearly faster
                    best, best_rate = (size, threads), rate
                if len(sizes) == 1:
                    break
    oracle.queries = q0  # timing probes are not attack queries
    if hasattr(oracle, "gradient_queries"):
        oracle.gradient_queries = g0
    try:
        _CACHE[oracle] = best
    except TypeError:
        pass
    _disk_put(key, best)
    log.info("automatic batch size %d with %s threads (%.0f samples/s)", best[0], best[1] or "default", best_rate)
    return best


def _disk_file():
    from ..zoo import cache_dir

    return cache_dir() / "batch_sizes.json"


def _disk_key(target, sizes, thread_options) -> str:
    model = target.weights_sha256 or f"{target.name}|{target.framework}"
    return "|".join(map(str, (model, tuple(target.input_shape), target.has_gradients, platform.node(),
                              os.cpu_count(), tuple(sizes), tuple(thread_options))))


def _disk_get(key: str):
    try:
        value = json.loads(_disk_file().read_text()).get(key)
    except (OSError, ValueError):
        return None
    return (int(value[0]), value[1]) if isinstance(value, list) and len(value) == 2 else None


def _disk_put(key: str, best) -> None:
    from .._io import atomic_write_text

    path = _disk_file()
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        data = {}
    data[key] = [best[0], best[1]]
    try:
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))
    except OSError as exc:  # a read-only cache folder only costs a re-measurement next time
        log.info("could not remember the batch size in %s: %s", path, exc)
