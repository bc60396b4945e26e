"""PyTorch training steps of the adversarial-training recipes (pgd_at, trades, fast_at).

Everything runs on the wrapped copy's boundary module (canonical channels-first input in the clip-values
space; layout and normalisation happen inside), so ε and every step are in the model's input scale.
Random starts and the batch order come from the NumPy generator the driver passes for each epoch;
dropout and other torch randomness is seeded per epoch, and the caller's global torch RNG is restored.
Deterministic on a CPU: a resumed run ends with bit-identical weights.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..._io import atomic_write_bytes
from ...errors import ConfigError, IncompatibleModelError

__all__ = ["Trainer", "clone_model", "architecture", "save_model"]


def clone_model(model: nn.Module) -> nn.Module:
    try:
        return copy.deepcopy(model)
    except Exception as exc:  # noqa: BLE001 - any deepcopy failure becomes one clear error
        raise IncompatibleModelError("the model could not be copied (fit never trains the model it is given)",
                                     got=f"{type(exc).__name__}: {exc}",
                                     fix="make the module deep-copyable (no open files or locks as attributes)") from None


def architecture(model: nn.Module) -> dict:
    """Parameter names and shapes: enough to tell a checkpoint of another model."""
    return {"class": type(model).__name__,
            "parameters": [[k, list(v.shape)] for k, v in model.state_dict().items()]}


def save_model(model: nn.Module, out_dir: Path) -> Path:
    """``model.pt``: a ``state_dict`` (load with ``al.load_model(path, factory=...)``, weights_only)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return atomic_write_bytes(Path(out_dir) / "model.pt", buf.getvalue())


class Trainer:
    def __init__(self, target, recipe):
        self.recipe = recipe
        self.module = target.oracle.module  # Boundary over the copied model
        self.model = target.model
        self.device = target.oracle.device
        self.lo = torch.from_numpy(np.array(np.broadcast_to(target.oracle.clip_min, target.input_shape), np.float32)).to(self.device)
        self.hi = torch.from_numpy(np.array(np.broadcast_to(target.oracle.clip_max, target.input_shape), np.float32)).to(self.device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise IncompatibleModelError("the model has no trainable parameters", got=type(self.model).__name__,
                                         fix="unfreeze the parameters to train (requires_grad=True)")
        if recipe.optimizer == "adam":
            self.opt = torch.optim.Adam(params, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
        else:
            self.opt = torch.optim.SGD(params, lr=recipe.learning_rate, momentum=recipe.momentum,
                                       weight_decay=recipe.weight_decay)

    # -- attacks inside training -------------------------------------------------------------------
    def _project(self, x, x_adv, eps):
        if self.recipe.norm == "linf":
            x_adv = torch.max(torch.min(x_adv, x + eps), x - eps)
        else:
            d = (x_adv - x).flatten(1)
            scale = torch.clamp(eps / (d.norm(dim=1) + 1e-12), max=1.0)
            x_adv = x + (d * scale[:, None]).view_as(x)
        return torch.max(torch.min(x_adv, self.hi), self.lo)

    def _step(self, g, step):
        if self.recipe.norm == "linf":
            return step * g.sign()
        n = g.flatten(1).norm(dim=1).clamp_min(1e-12)
        return step * g / n.view(-1, *([1] * (g.dim() - 1)))

    def _noise(self, rng, shape, eps):
        if self.recipe.norm == "linf":
            u = rng.uniform(-eps, eps, size=shape)
        else:
            u = rng.normal(size=shape)
            flat = u.reshape(shape[0], -1)
            r = rng.uniform(0, 1, size=(shape[0], 1)) ** (1.0 / flat.shape[1])
            u = (flat / np.linalg.norm(flat, axis=1, keepdims=True) * r * eps).reshape(shape)
        return torch.from_numpy(u.astype(np.float32)).to(self.device)

    def pgd(self, x, y, rng, *, eps, step, steps, random_init=True):
        """PGD on the cross-entropy in eval mode (random start from ``rng``); returns detached examples."""
        was_training = self.module.training
        self.module.eval()
        try:
            x_adv = self._project(x, x + self._noise(rng, tuple(x.shape), eps), eps) if random_init else x.clone()
            for _ in range(steps):
                x_adv.requires_grad_(True)
                with torch.enable_grad():
                    loss = F.cross_entropy(self.module(x_adv), y, reduction="sum")
                    (g,) = torch.autograd.grad(loss, x_adv)
                x_adv = self._project(x, x_adv.detach() + self._step(g, step), eps)
        finally:
            self.module.train(was_training)
        return x_adv.detach()

    def _trades_adv(self, x, rng, *, eps, step, steps):
        self.module.eval()
        with torch.no_grad():
            p_clean = F.softmax(self.module(x), dim=1)
        noise = torch.from_numpy((0.001 * rng.standard_normal(size=tuple(x.shape))).astype(np.float32)).to(self.device)
        x_adv = self._project(x, x + noise, eps)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            with torch.enable_grad():
                kl = F.kl_div(F.log_softmax(self.module(x_adv), dim=1), p_clean, reduction="sum")
                (g,) = torch.autograd.grad(kl, x_adv)
            x_adv = self._project(x, x_adv.detach() + self._step(g, step), eps)
        self.module.train()
        return x_adv.detach()

    # -- one epoch -----------------------------------------------------------------------------------
    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr

    def train_epoch(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, epoch: int) -> dict:
        r = self.recipe
        order = rng.permutation(len(x))
        saved = torch.random.get_rng_state()
        torch.manual_seed(int(rng.integers(2**31 - 1)))  # dropout etc. (restored below)
        total_loss = correct = seen = 0
        try:
            for s in range(0, len(x), r.batch_size):
                idx = order[s:s + r.batch_size]
                xb = torch.from_numpy(np.ascontiguousarray(x[idx], dtype=np.float32)).to(self.device)
                yb = torch.from_numpy(np.asarray(y[idx], dtype=np.int64)).to(self.device)
                if r.name == "trades":
                    x_adv = self._trades_adv(xb, rng, eps=r.eps, step=r.step, steps=r.max_iter)
                    self.module.train()
                    z_clean = self.module(xb)
                    z_adv = self.module(x_adv)
                    loss = F.cross_entropy(z_clean, yb) + r.beta * F.kl_div(
                        F.log_softmax(z_adv, dim=1), F.softmax(z_clean, dim=1), reduction="batchmean")
                    z = z_adv
                else:
                    x_adv = self.pgd(xb, yb, rng, eps=r.eps, step=r.step, steps=r.max_iter, random_init=True)
                    self.module.train()
                    z = self.module(x_adv)
                    loss = F.cross_entropy(z, yb)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                total_loss += float(loss.detach()) * len(idx)
                correct += int((z.detach().argmax(1) == yb).sum())
                seen += len(idx)
        finally:
            self.module.eval()
            torch.random.set_rng_state(saved)
        return {"train_loss": total_loss / seen, "train_adv_accuracy": correct / seen}

    def evaluate(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
        """Clean and PGD-``val_attack_steps`` robust accuracy at the recipe's ε (eval mode)."""
        r = self.recipe
        self.module.eval()
        clean = robust = 0
        steps = r.val_attack_steps
        for s in range(0, len(x), 256):
            xb = torch.from_numpy(np.array(x[s:s + 256], dtype=np.float32)).to(self.device)
            yb = torch.from_numpy(np.array(y[s:s + 256], dtype=np.int64)).to(self.device)
            with torch.no_grad():
                ok = self.module(xb).argmax(1) == yb
            clean += int(ok.sum())
            x_adv = self.pgd(xb, yb, rng, eps=r.eps, step=2.5 * r.eps / steps, steps=steps)
            with torch.no_grad():
                robust += int(((self.module(x_adv).argmax(1) == yb) & ok).sum())
        return clean / len(x), robust / len(x)

    # -- state -----------------------------------------------------------------------------------------
    def weights(self) -> dict:
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def set_weights(self, weights: dict) -> None:
        self.model.load_state_dict(weights)

    def save_checkpoint(self, path: Path, meta: dict) -> None:
        buf = io.BytesIO()
        torch.save({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                    "meta": json.dumps(meta, default=float)}, buf)
        atomic_write_bytes(path, buf.getvalue())

    def load_checkpoint(self, path: Path, check=None) -> dict:
        """Restore model and optimizer; ``check(meta)`` may refuse the checkpoint before anything is loaded."""
        state = _load(path)
        meta = json.loads(state["meta"])
        if check is not None:
            check(meta)
        try:
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ConfigError(f"{path} is a checkpoint of a different model", got=str(exc).splitlines()[0][:200],
                              fix="use a new checkpoint_dir for this model, or delete the old checkpoints") from None
        return meta

    def write_weights(self, path: Path, weights: dict, meta: dict) -> None:
        buf = io.BytesIO()
        torch.save({"model": weights, "meta": json.dumps(meta)}, buf)
        atomic_write_bytes(path, buf.getvalue())

    def read_weights(self, path: Path) -> dict:
        return _load(path)["model"]


def _load(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated/foreign files become one clear error
        raise ConfigError(f"{path} is not a readable aisec-lab checkpoint", got=f"{type(exc).__name__}: {exc}"[:300],
                          fix="delete it (and the checkpoint folder) to start the training afresh") from None
    if not isinstance(state, dict) or "model" not in state or "meta" not in state:
        raise ConfigError(f"{path} is not an aisec-lab checkpoint", got=type(state).__name__,
                          fix="use a checkpoint_dir written by recipe.fit")
    return state
