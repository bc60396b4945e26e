"""Hand-written PyTorch baselines (the floor aisec-lab is measured against) and torchattacks' attacks.

What a competent user writes by hand: tensors prepared once, ``torch.autograd.grad`` with respect to the input
only (no parameter gradients), a summed loss, sign steps, projection with ``min``/``max``; nothing else.
:mod:`.loops_tensorflow` implements the same functions for Keras models.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import torch
import torch.nn.functional as F

FRAMEWORK = "pytorch"


def thread_options(device: str = "cpu") -> tuple:
    """Intra-op thread counts worth trying (``None`` = leave torch's default)."""
    if device != "cpu" or torch.get_num_threads() <= 1:
        return (None,)
    return (None, 1)


@contextlib.contextmanager
def threads(n: int | None):
    if n is None or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def native_model(target):
    """The user's own module (not aisec-lab's boundary wrapper), in eval mode."""
    return target.model.eval()


# -- PGD (P1) ------------------------------------------------------------------------------------------------
class Data:
    """x and y as tensors on the model's device, prepared once (outside the timed region)."""

    def __init__(self, target, x: np.ndarray, y: np.ndarray):
        self.device = torch.device(target.oracle.device)
        self.x = torch.from_numpy(np.array(x, np.float32)).to(self.device)
        self.y = torch.from_numpy(np.array(y, np.int64)).to(self.device)

    def subset(self, idx: np.ndarray) -> "Data":
        out = copy.copy(self)
        t = torch.from_numpy(np.asarray(idx, np.int64)).to(self.device)
        out.x, out.y = self.x[t], self.y[t]
        return out

    def __len__(self) -> int:
        return len(self.x)


def pgd(model, data: Data, *, eps: float, step: float, steps: int, batch_size: int, seed: int = 0):
    """PGD-``steps`` L-inf with one uniform random start, per batch; returns the adversarial tensor."""
    gen = torch.Generator(device=data.device).manual_seed(seed)
    out = []
    for s in range(0, len(data.x), batch_size):
        x, y = data.x[s:s + batch_size], data.y[s:s + batch_size]
        noise = torch.rand(x.shape, generator=gen, device=data.device) * (2 * eps) - eps
        lo, hi = (x - eps).clamp_min(0.0), (x + eps).clamp_max(1.0)
        xa = torch.min(torch.max(x + noise, lo), hi)
        for _ in range(steps):
            xa.requires_grad_(True)
            loss = F.cross_entropy(model(xa), y, reduction="sum")
            (g,) = torch.autograd.grad(loss, xa)
            xa = torch.min(torch.max(xa.detach() + step * g.sign(), lo), hi)
        out.append(xa.detach())
    result = torch.cat(out)
    if result.is_cuda:
        torch.cuda.synchronize()
    return result


def canonical(adv) -> np.ndarray:
    """An attack's output as canonical (n, C, H, W) float32 NumPy."""
    return adv.detach().cpu().numpy().astype(np.float32)


def torchattacks_pgd(model, data: Data, *, eps: float, step: float, steps: int, batch_size: int, seed: int = 0):
    import torchattacks

    torch.manual_seed(seed)  # torchattacks draws its random start from torch's global generator
    atk = torchattacks.PGD(model, eps=eps, alpha=step, steps=steps, random_start=True)
    return torch.cat([atk(data.x[s:s + batch_size], data.y[s:s + batch_size])
                      for s in range(0, len(data.x), batch_size)])


def torchattacks_autoattack(model, x: np.ndarray, y: np.ndarray, *, eps: float, seed: int = 0) -> np.ndarray:
    """torchattacks' standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square 5,000 queries) on all of ``x`` at once."""
    import torchattacks

    dev = next(model.parameters()).device
    atk = torchattacks.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=10, seed=seed)
    adv = atk(torch.from_numpy(np.array(x, np.float32)).to(dev), torch.from_numpy(np.array(y, np.int64)).to(dev))
    return canonical(adv)


# -- PGD adversarial training (P4) -------------------------------------------------------------------------------
class HandPGDAT:
    """One epoch of Madry PGD-AT written by hand: per batch of 64, PGD-10 (random start, eval mode), then one Adam
    step on the mean cross-entropy of the adversarial batch (train mode). The recipe ``pgd_at`` with its defaults."""

    def __init__(self, model, *, eps: float, steps: int = 10, batch_size: int = 64, lr: float = 1e-3):
        self.model = copy.deepcopy(model)
        self.eps, self.steps, self.batch_size = eps, steps, batch_size
        self.step = 2.5 * eps / steps
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)

    def epoch(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> float:
        m, eps = self.model, self.eps
        order = torch.from_numpy(rng.permutation(len(x)))
        total = 0.0
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            xb, yb = x[idx], y[idx]
            lo, hi = (xb - eps).clamp_min(0.0), (xb + eps).clamp_max(1.0)
            noise = torch.from_numpy(rng.uniform(-eps, eps, size=tuple(xb.shape)).astype(np.float32))
            xa = torch.min(torch.max(xb + noise, lo), hi)
            m.eval()
            for _ in range(self.steps):
                xa.requires_grad_(True)
                (g,) = torch.autograd.grad(F.cross_entropy(m(xa), yb, reduction="sum"), xa)
                xa = torch.min(torch.max(xa.detach() + self.step * g.sign(), lo), hi)
            m.train()
            loss = F.cross_entropy(m(xa), yb)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += float(loss.detach()) * len(idx)
        m.eval()
        return total / len(x)

    @staticmethod
    def data(x: np.ndarray, y: np.ndarray):
        return torch.from_numpy(np.array(x, np.float32)), torch.from_numpy(np.array(y, np.int64))


def library_trainer(target, recipe):
    """aisec-lab's own PGD-AT epoch, exactly as ``recipe.fit`` builds it (on a copy of the model)."""
    from aisec_lab.defenses.training import pytorch as backend
    from aisec_lab.models import rewrap

    return backend.Trainer(rewrap(target, backend.clone_model(target.model)), recipe)
