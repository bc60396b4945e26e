"""Reference models: small classifiers trained deterministically from bundled data, cached on disk.

>>> net = aisec_lab.zoo.load("digits_cnn", framework="pytorch")        # doctest: +SKIP
>>> target = aisec_lab.zoo.target("digits_mlp", framework="tensorflow") # doctest: +SKIP

Models are trained on first use (seconds on a CPU) and cached under the user cache dir
(``AISEC_LAB_CACHE`` overrides it), keyed by a hash of the training code, the architecture and
hyperparameters, the training data and the seed -- change any of them and the model is retrained.
Weights are stored as a torch ``state_dict`` or Keras ``.weights.h5`` file, never as a pickle, and
are loaded into an architecture built from code.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from .._optional import import_keras, import_torch
from ..errors import ConfigError
from ..models.spec import FRAMEWORKS
from ..registry import Registry

__all__ = ["ZooEntry", "MODELS", "load", "target", "list_models", "describe", "cache_dir"]

log = logging.getLogger(__name__)

_BACKENDS = {"pytorch": "aisec_lab.zoo.pytorch", "tensorflow": "aisec_lab.zoo.tensorflow"}
_IMPORTERS = {"pytorch": import_torch, "tensorflow": import_keras}


@dataclass(frozen=True, kw_only=True)
class ZooEntry:
    """Recipe of one reference model: architecture name, data and training hyperparameters."""

    name: str
    architecture: str
    description: str
    dataset: str = "digits"
    input_shape: tuple[int, ...] = (1, 8, 8)
    nb_classes: int = 10
    clip_values: tuple[float, float] = (0.0, 1.0)
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 2e-3
    min_test_accuracy: float = 0.95


MODELS: Registry = Registry("reference model")

MODELS.register("digits_cnn", ZooEntry(
    name="digits_cnn", architecture="cnn",
    description="2 conv (16, 32 filters, 3x3) + max-pool + dense 64 + dense 10 logits; ~38k parameters",
    epochs=20), description="small CNN on 8x8 digits, logits output")
MODELS.register("digits_mlp", ZooEntry(
    name="digits_mlp", architecture="mlp",
    description="flatten + dense 128 + dense 64 + dense 10 logits; ~17k parameters",
    epochs=30), description="MLP on 8x8 digits, logits output")


def list_models() -> list[str]:
    return MODELS.names()


def describe(name: str) -> dict[str, Any]:
    entry = MODELS.get(name)
    return asdict(entry)


def cache_dir() -> Path:
    """Where trained reference weights live: ``$AISEC_LAB_CACHE`` or the user cache dir."""
    env = os.environ.get("AISEC_LAB_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("aisec-lab", appauthor=False))


def _check_framework(framework: str) -> str:
    if framework not in FRAMEWORKS:
        raise ConfigError("unknown framework", got=framework, fix=f"use one of {', '.join(FRAMEWORKS)}")
    return framework


def _cache_key(entry: ZooEntry, framework: str, seed: int, data_sha: str, backend) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(asdict(entry), sort_keys=True).encode())
    h.update(f"|{framework}|{seed}|{data_sha}|".encode())
    h.update(Path(backend.__file__).read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def load(name: str, framework: str = "pytorch", *, seed: int = 0, cache: str | os.PathLike | None = None,
         retrain: bool = False) -> Any:
    """Return the trained native model (``torch.nn.Module`` or ``keras.Model``) for ``name``.

    Trains and caches it on first use; later calls load the cached weights. ``retrain=True`` forces
    training (and overwrites the cache entry atomically).
    """
    from ..data import load_dataset

    entry = MODELS.get(name)
    framework = _check_framework(framework)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError("seed must be a non-negative integer", got=seed, fix="e.g. seed=0")
    _IMPORTERS[framework](f"load the {framework} reference model {name!r}")
    backend = importlib.import_module(_BACKENDS[framework])
    train = load_dataset(entry.dataset, split="train", seed=0)
    key = _cache_key(entry, framework, seed, train.sha256, backend)
    folder = Path(cache) if cache is not None else cache_dir()
    weights = folder / "zoo" / f"{name}-{framework}-s{seed}-{key}{backend.WEIGHTS_SUFFIX}"
    model = backend.build(entry, seed=seed)
    if weights.is_file() and not retrain:
        log.info("loading cached reference model %s (%s) from %s", name, framework, weights)
        backend.load_weights(model, weights)
        return model
    log.info("training reference model %s (%s, seed %d); cached at %s", name, framework, seed, weights)
    start = time.perf_counter()
    backend.train(model, train.x, train.y, entry, seed=seed)
    seconds = time.perf_counter() - start
    backend.save_weights(model, weights)
    atomic_write_text(weights.with_name(weights.name + ".json"), json.dumps({
        "name": name, "framework": framework, "seed": seed, "key": key, "train_sha256": train.sha256,
        "train_seconds": round(seconds, 3), "entry": asdict(entry)}, indent=2, sort_keys=True))
    log.info("trained %s (%s) in %.1f s", name, framework, seconds)
    return model


def target(name: str, framework: str = "pytorch", *, seed: int = 0, **kwargs: Any):
    """The reference model ``name`` already wrapped into a :class:`~aisec_lab.models.Target`."""
    from ..models import wrap_model

    entry = MODELS.get(name)
    model = load(name, framework, seed=seed, **kwargs)
    return wrap_model(model, input_shape=entry.input_shape, nb_classes=entry.nb_classes,
                      clip_values=entry.clip_values, name=f"{name} ({framework})")
