"""PyTorch reference architectures and their deterministic training loop."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._io import atomic_write_bytes

WEIGHTS_SUFFIX = ".pt"


def build(entry, *, seed: int = 0) -> nn.Module:
    """The architecture of ``entry`` with seeded initial weights (channels-first input, logits out)."""
    c, h, w = entry.input_shape
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        if entry.architecture == "cnn":
            model = nn.Sequential(
                nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                nn.MaxPool2d(2), nn.Flatten(),
                nn.Linear(32 * (h // 2) * (w // 2), 64), nn.ReLU(),
                nn.Linear(64, entry.nb_classes),
            )
        elif entry.architecture == "mlp":
            model = nn.Sequential(
                nn.Flatten(), nn.Linear(c * h * w, 128), nn.ReLU(),
                nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, entry.nb_classes),
            )
        else:
            raise ValueError(f"unknown architecture {entry.architecture!r}")
    finally:
        torch.random.set_rng_state(gen_state)  # leave the caller's global RNG as it was
    return model.eval()


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, entry, *, seed: int = 0) -> nn.Module:
    """Adam on cross-entropy, batches in an order drawn from ``seed``; deterministic on a CPU."""
    rng = np.random.default_rng(seed)
    xt = torch.from_numpy(np.array(x, dtype=np.float32, copy=True))
    yt = torch.from_numpy(np.array(y, dtype=np.int64, copy=True))
    opt = torch.optim.Adam(model.parameters(), lr=entry.learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(entry.epochs):
        order = torch.from_numpy(rng.permutation(len(xt)))
        for i in range(0, len(order), entry.batch_size):
            idx = order[i:i + entry.batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def save_weights(model: nn.Module, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    atomic_write_bytes(path, buf.getvalue())


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    model.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
    return model.eval()
