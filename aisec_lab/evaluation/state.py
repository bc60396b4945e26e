"""Resumable evaluation state: per-sample arrays saved after each (ε, attack) step, atomically."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, atomic_write_text
from ..errors import ConfigError

_ARRAYS = ("first", "by_attack", "linf", "l2", "adv_pred", "x_adv", "violations")


class EvaluationState:
    """``state_dir/state.json`` (fingerprint, finished steps, cost) + ``state_dir/state.npz`` (arrays)."""

    def __init__(self, folder: str | os.PathLike, fingerprint: str):
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self.meta_path = self.folder / "state.json"
        self.arrays_path = self.folder / "state.npz"

    def exists(self) -> bool:
        return self.meta_path.is_file() and self.arrays_path.is_file()

    def load_into(self, run: Any) -> None:
        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"the evaluation state in {self.folder} is unreadable", got=str(exc),
                              fix="delete the folder to start afresh") from None
        if meta.get("fingerprint") != self.fingerprint:
            raise ConfigError(f"{self.folder} holds the state of a different evaluation "
                              "(other model, data, attacks, ε or seed)",
                              got=f"fingerprint {str(meta.get('fingerprint'))[:12]}",
                              fix="use a new state_dir, or delete this one to start afresh")
        with np.load(self.arrays_path, allow_pickle=False) as arrays:
            for name in _ARRAYS:
                setattr(run, name, arrays[name].copy())
            for key in meta.get("minimal_cache", []):
                run.minimal_cache[str(key)] = (arrays[f"minimal_have_{key}"].copy(), arrays[f"minimal_x_{key}"].copy())
        run.done = {tuple(step) for step in meta["done"]}
        run.cost = meta.get("cost", {})
        run.step_cost = meta.get("step_cost", {})

    def save(self, run: Any) -> None:
        buf = io.BytesIO()
        extra = {}
        for key, (have, store) in run.minimal_cache.items():
            extra[f"minimal_have_{key}"] = have
            extra[f"minimal_x_{key}"] = store
        np.savez(buf, **{name: getattr(run, name) for name in _ARRAYS}, **extra)
        atomic_write_bytes(self.arrays_path, buf.getvalue())
        atomic_write_text(self.meta_path, json.dumps({
            "fingerprint": self.fingerprint, "done": sorted(list(s) for s in run.done), "cost": run.cost,
            "step_cost": run.step_cost, "minimal_cache": sorted(run.minimal_cache)}, indent=1))
