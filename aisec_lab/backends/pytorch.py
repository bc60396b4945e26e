"""PyTorch oracle: per-sample losses and input gradients in one forward + backward pass."""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import IncompatibleModelError
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


def _last_linear(module: torch.nn.Module) -> tuple[str, torch.nn.Linear] | None:
    """The last ``nn.Linear`` in module-registration order (the classifier head of ordinary models)."""
    found = None
    for name, sub in module.named_modules():
        if isinstance(sub, torch.nn.Linear):
            found = (name, sub)
    return found


class TorchOracle(BaseOracle):
    has_gradients = True
    #: the layer :meth:`features` read, as "name: layer" (set by its first call)
    feature_layer: str | None = None

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

    def features(self, x: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
        """Penultimate-layer representations: the input of the model's last ``nn.Linear``, shape ``(n, d)``.

        The layer is the last ``nn.Linear`` in module-registration order (for ``nn.Sequential`` heads
        and ordinary ``__init__`` code, the classifier layer); a forward hook records its input while
        the whole wrapped model (preprocessing, layout, any defense transform) runs. Raises
        :class:`~aisec_lab.errors.IncompatibleModelError` when the model has no ``nn.Linear`` or the
        hooked layer is not called on the forward pass. A layer called several times per forward
        pass gives the input of its last call.
        """
        found = _last_linear(self.module)
        if found is None:
            raise IncompatibleModelError(
                "penultimate-layer features need an nn.Linear layer in the model, and it has none",
                got=type(getattr(self.module, "model", self.module)).__name__,
                fix="give the model a final nn.Linear classifier layer, or use the model's logits as the "
                    "representation (representation='logits', a weaker signal)")
        name, layer = found
        captured: list = []

        def hook(_mod, inputs, _out):
            captured.append(inputs[0])

        handle = layer.register_forward_hook(hook)
        out = []
        try:
            with torch.inference_mode():
                for i in range(0, len(x), batch_size):
                    captured.clear()
                    xt = torch.from_numpy(_writable(x[i:i + batch_size], np.float32)).to(self.device)
                    self.module(xt)
                    self.queries += len(xt)
                    if not captured:
                        raise IncompatibleModelError(
                            f"the model's last nn.Linear ({name or 'the model itself'}) was not called on the forward pass",
                            got=f"{layer}", fix="use representation='logits', or make the classifier layer the last "
                                                "nn.Linear registered in the model")
                    out.append(captured[-1].reshape(len(xt), -1).float().cpu().numpy())
        finally:
            handle.remove()
        self.feature_layer = f"{name}: {layer}"
        return np.concatenate(out, axis=0) if out else np.zeros((0, layer.in_features), np.float32)
