"""PyTorch oracle: per-sample losses and input gradients in one forward + backward pass."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from . import BaseOracle

__all__ = ["TorchOracle", "per_sample_loss"]


def per_sample_loss(z: torch.Tensor, y: torch.Tensor, loss: str, y_target: torch.Tensor | None) -> torch.Tensor:
    """The losses of :mod:`aisec_lab.attacks.oracle`, to be maximised, one value per sample."""
    if loss == "ce":
        if y_target is None:
            return F.cross_entropy(z, y, reduction="none")
        return -F.cross_entropy(z, y_target, reduction="none")
    rows = torch.arange(z.shape[0], device=z.device)
    zy = z[rows, y]
    if loss == "margin":
        ref = y if y_target is None else y_target
        other = z.masked_fill(F.one_hot(ref, z.shape[1]).bool(), float("-inf")).amax(dim=1)
        return other - zy if y_target is None else z[rows, y_target] - other
    if loss == "dlr":
        zs, _ = z.sort(dim=1, descending=True)
        if y_target is None:
            other = z.masked_fill(F.one_hot(y, z.shape[1]).bool(), float("-inf")).amax(dim=1)
            return -(zy - other) / (zs[:, 0] - zs[:, 2] + 1e-12)
        return -(zy - z[rows, y_target]) / (zs[:, 0] - 0.5 * (zs[:, 2] + zs[:, 3]) + 1e-12)
    raise ValueError(f"unknown loss {loss!r}")


def _writable(a, dtype) -> np.ndarray:
    """A contiguous array torch may wrap without copying (read-only inputs, e.g. Dataset arrays, are copied)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a if a.flags.writeable else a.copy()


class TorchOracle(BaseOracle):
    has_gradients = True

    def __init__(self, module: torch.nn.Module, nb_classes: int, input_shape, clip_values, device: str = "cpu"):
        super().__init__(nb_classes, input_shape, clip_values)
        self.module = module
        self.device = torch.device(device)
        # On a busy CPU torch's OpenMP threads can spin-wait for each other: measured here, one thread
        # ran a tiny CNN's gradient step 60x faster than two while another process used a core.
        default = torch.get_num_threads()
        self.thread_options = (default, 1) if self.device.type == "cpu" and default > 1 else (None,)

    @contextlib.contextmanager
    def threads(self, n: int | None):
        if n is None or n == torch.get_num_threads():
            yield
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def logits(self, x: np.ndarray) -> np.ndarray:
        self.queries += len(x)
        with torch.inference_mode():
            xt = torch.from_numpy(_writable(x, np.float32)).to(self.device)
            return self.module(xt).float().cpu().numpy()

    def value_and_grad(self, x, y, *, loss="ce", y_target=None):
        self.queries += len(x)
        self.gradient_queries += len(x)
        xt = torch.from_numpy(np.array(x, dtype=np.float32)).to(self.device).requires_grad_(True)
        yt = torch.from_numpy(_writable(y, np.int64)).to(self.device)
        tt = None if y_target is None else torch.from_numpy(_writable(y_target, np.int64)).to(self.device)
        with torch.enable_grad():
            z = self.module(xt)
            values = per_sample_loss(z, yt, loss, tt)
            # only the input gradient is requested: autograd skips the parameters' gradients
            (grad,) = torch.autograd.grad(values.sum(), xt)
        return (values.detach().cpu().numpy().astype(np.float32), grad.cpu().numpy(),
                z.detach().cpu().numpy().astype(np.float32))
