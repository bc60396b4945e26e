"""PyTorch models of the benchmark rows: the zoo's ``digits_cnn`` and a LeNet-size CNN for 28x28 digits.

The LeNet is Caffe's MNIST LeNet (conv 20 @5x5, pool, conv 50 @5x5, pool, dense 500, dense 10; ReLU after each
hidden layer): 431,080 parameters. It is *trained* for two epochs on upsampled digits (a few seconds), not left at
random weights: a random model misclassifies most inputs, and attacks that skip already-misclassified samples
(aisec-lab's, ART's) would then do almost no work and flatter the comparison.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import workloads

LENET_EPOCHS = 2


def lenet(seed: int = 0) -> nn.Module:
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(50 * 4 * 4, 500), nn.ReLU(), nn.Linear(500, 10),
        )
    finally:
        torch.random.set_rng_state(state)
    return model


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int = LENET_EPOCHS, seed: int = 0) -> nn.Module:
    """Adam, batch 64, cross-entropy; batch order from ``seed``."""
    rng = np.random.default_rng(seed)
    xt, yt = torch.from_numpy(np.array(x, np.float32)), torch.from_numpy(np.array(y, np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(xt)))
        for i in range(0, len(order), 64):
            idx = order[i:i + 64]
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def lenet_target(device: str = "cpu"):
    """The trained LeNet wrapped with ``al.wrap_model`` (canonical (1, 28, 28) input in [0, 1])."""
    import aisec_lab as al

    x, y = workloads.digits28(3 * 1347, split="train", seed=1)
    model = train(lenet(), x, y)
    return al.wrap_model(model, input_shape=(1, 28, 28), nb_classes=10, clip_values=(0.0, 1.0), device=device,
                         name="lenet28 (pytorch)")


def zoo_target(name: str = "digits_cnn", device: str = "cpu"):
    """A zoo reference model wrapped on ``device`` (``al.zoo.target`` always wraps on the CPU)."""
    import aisec_lab as al

    if device == "cpu":
        return al.zoo.target(name, framework="pytorch")
    entry = al.zoo.MODELS.get(name)
    return al.wrap_model(al.zoo.load(name, "pytorch"), input_shape=entry.input_shape, nb_classes=entry.nb_classes,
                         clip_values=entry.clip_values, device=device, name=f"{name} (pytorch)")
