"""PyTorch side of the model boundary: wrap an ``nn.Module`` into a :class:`Target`, load torch files."""

from __future__ import annotations

import hashlib
import logging
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, IncompatibleModelError, UnsafeFileError
from ..backends import count_estimator_queries
from ..backends.pytorch import TorchOracle
from .spec import Target, analyse_outputs, normalize_preprocessing, probe_inputs, resolve_layout

log = logging.getLogger(__name__)

__all__ = ["wrap", "is_model", "load_file", "weights_sha256", "count_params", "Boundary", "with_input_transform"]


def is_model(obj: Any) -> bool:
    return isinstance(obj, nn.Module)


class Boundary(nn.Module):
    """Adapts canonical float32 channels-first input to the wrapped module and its output to logits.

    * casts any input dtype to float32 (ART's HopSkipJump sends float64);
    * applies the ``(subtract, divide)`` preprocessing, so attacks work in the clip-values space;
    * rearranges to the model's layout (``channels_last`` or ``flat``);
    * expands a single binary logit ``z`` to ``[0, z]`` (softmax of which is ``[1 - σ(z), σ(z)]``);
    * with ``from_probabilities`` returns ``log(p)``, whose softmax is ``p`` again.
    """

    def __init__(self, model: nn.Module, layout: str = "channels_first", binary_single_logit: bool = False,
                 from_probabilities: bool = False, preprocessing=None):
        super().__init__()
        self.model = model
        self.layout = layout
        self.binary_single_logit = binary_single_logit
        self.from_probabilities = from_probabilities
        self.normalize = preprocessing is not None
        if self.normalize:
            self.register_buffer("mean", torch.as_tensor(preprocessing[0], dtype=torch.float32), persistent=False)
            self.register_buffer("std", torch.as_tensor(preprocessing[1], dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float32)
        if self.normalize:
            x = (x - self.mean) / self.std
        if self.layout == "channels_last":
            x = x.permute(0, *range(2, x.dim()), 1)
        elif self.layout == "flat":
            x = x.reshape(x.shape[0], -1)
        out = self.model(x)
        if out.dim() == 1:
            out = out[:, None]
        if self.binary_single_logit:
            if self.from_probabilities:
                p = out.clamp(1e-12, 1 - 1e-12)
                return torch.cat([torch.log1p(-p), torch.log(p)], dim=1)
            return torch.cat([torch.zeros_like(out), out], dim=1)
        if self.from_probabilities:
            return torch.log(out.clamp_min(1e-12))
        return out


def count_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def weights_sha256(model: nn.Module) -> str:
    """sha256 over every parameter and buffer (name, dtype, shape, bytes), in ``state_dict`` order."""
    h = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        if not isinstance(tensor, torch.Tensor):
            continue
        arr = tensor.detach().cpu().contiguous()
        h.update(f"{key}|{arr.dtype}|{tuple(arr.shape)}|".encode())
        h.update(arr.view(torch.uint8).numpy().tobytes() if arr.numel() else b"")
    return h.hexdigest()


def _resolve_device(device: str | None) -> tuple[str, str]:
    """Return (ART device_type, recorded device string)."""
    if device is None or str(device).lower() == "cpu":
        return "cpu", "cpu"
    d = str(device).lower()
    if d in ("cuda", "gpu") or d.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError("device='cuda' was asked for but torch sees no CUDA device", got=device,
                              fix="leave device=None to run on the CPU, or install a CUDA build of torch")
        if d.startswith("cuda:"):
            torch.cuda.set_device(int(d.split(":")[1]))
        return "gpu", f"cuda:{torch.cuda.current_device()}"
    raise ConfigError("unknown device", got=device, fix="use None/'cpu' or 'cuda'")


def wrap(model: nn.Module, *, input_shape: tuple[int, ...], nb_classes: int, clip_values, preprocessing=None,
         channels_first: bool | None = None, logits: bool = True, device: str | None = None,
         name: str | None = None) -> Target:
    from art.estimators.classification import PyTorchClassifier

    if not isinstance(model, nn.Module):
        raise IncompatibleModelError("expected a torch.nn.Module", got=type(model).__name__,
                                     fix="pass the nn.Module itself")
    model.eval()
    device_type, device_str = _resolve_device(device)
    layout = resolve_layout(input_shape, None, channels_first, default_channels_first=True)
    preprocessing = normalize_preprocessing(preprocessing, input_shape)
    boundary = Boundary(model, layout, preprocessing=preprocessing)
    probe = probe_inputs(input_shape, clip_values)
    if device_type == "gpu":
        model.to(device_str)
    param = next(model.parameters(), None)
    dev = param.device if param is not None else torch.device("cpu")
    try:
        with torch.no_grad():
            raw = boundary(torch.from_numpy(probe).to(dev)).detach().cpu().numpy()
    except Exception as exc:  # noqa: BLE001 - any failure of user code on the probe is re-raised as a clear error
        got = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        fix = (f"pass input_shape as one sample in channels-first layout (the data's ds.input_shape); "
               f"the model was fed a batch of shape {(len(probe),) + tuple(probe.shape[1:]) if layout == 'channels_first' else 'rearranged to ' + layout}")
        if channels_first is None and len(input_shape) == 3:
            fix += "; if the model expects channels-last input pass channels_first=False"
        raise IncompatibleModelError(f"the model failed on a probe batch of input_shape={input_shape}",
                                     got=got, fix=fix) from None
    analysis = analyse_outputs(raw, nb_classes, batch=len(probe))
    warnings_: list[str] = []
    output_type = "probabilities" if analysis.looks_like_probabilities and (logits is False or analysis.width > 1) else "logits"
    if logits is False:
        if not analysis.looks_like_probabilities:
            raise ConfigError("logits=False says the model returns probabilities, but its outputs are not "
                              "probabilities (values outside [0, 1] or rows not summing to 1)",
                              got=f"outputs in [{raw.min():.3g}, {raw.max():.3g}]",
                              fix="leave logits=True for a model that returns logits")
        output_type = "probabilities"
    elif output_type == "probabilities":
        msg = ("the model appears to return probabilities (softmax output) rather than logits; gradient "
               "attacks are weakened by saturated softmax. Remove the final softmax, or pass logits=False "
               "to attack log-probabilities")
        log.warning("%s (model %s)", msg, name or type(model).__name__)
        warnings_.append(msg)
    boundary = Boundary(model, layout, analysis.binary_single_logit, from_probabilities=logits is False,
                        preprocessing=preprocessing).to(dev)
    classifier = PyTorchClassifier(
        model=boundary,
        loss=nn.CrossEntropyLoss(reduction="sum"),
        input_shape=tuple(input_shape),
        nb_classes=nb_classes,
        channels_first=True,
        clip_values=clip_values,
        device_type=device_type,
    )
    oracle = TorchOracle(boundary, nb_classes, input_shape, clip_values, str(dev))
    count_estimator_queries(classifier, oracle)
    return Target(
        estimator=classifier, model=model, framework="pytorch", input_shape=tuple(input_shape),
        nb_classes=nb_classes, clip_values=clip_values, name=name or type(model).__name__,
        model_layout=layout, n_params=count_params(model), weights_sha256=weights_sha256(model),
        device=device_str, output_type=output_type, logits_from_probabilities=logits is False,
        binary_single_logit=analysis.binary_single_logit, has_gradients=True, preprocessing=preprocessing,
        warnings=tuple(warnings_), oracle=oracle,
    )



# -- defended targets ------------------------------------------------------------------------
class _StraightThrough(torch.autograd.Function):
    """Forward: a NumPy input transform (a preprocessing defense). Backward: the identity (BPDA)."""

    @staticmethod
    def forward(ctx, x, transform):  # noqa: D401 - torch API
        out = transform(x.detach().cpu().numpy())
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).to(x.device)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class DefendedBoundary(nn.Module):
    """``transform`` (NumPy, canonical layout) in front of an existing :class:`Boundary`, straight-through."""

    def __init__(self, transform: Callable, inner: nn.Module):
        super().__init__()
        self.transform = transform
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(_StraightThrough.apply(x.to(torch.float32), self.transform))


def with_input_transform(target: Target, transform: Callable, **changes: Any) -> Target:
    """A copy of ``target`` whose every forward pass first applies ``transform`` (gradients pass straight through)."""
    import dataclasses

    from art.estimators.classification import PyTorchClassifier

    module = DefendedBoundary(transform, target.oracle.module)
    classifier = PyTorchClassifier(
        model=module, loss=nn.CrossEntropyLoss(reduction="sum"), input_shape=tuple(target.input_shape),
        nb_classes=target.nb_classes, channels_first=True, clip_values=target.clip_values,
        device_type="gpu" if str(target.device).startswith("cuda") else "cpu")
    oracle = TorchOracle(module, target.nb_classes, target.input_shape, target.clip_values, str(target.oracle.device))
    count_estimator_queries(classifier, oracle)
    return dataclasses.replace(target, estimator=classifier, oracle=oracle, **changes)

# -- files ---------------------------------------------------------------------------------
def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in n or n.startswith("code/") for n in zf.namelist())


def load_file(path: Path, *, factory: Callable[[], nn.Module] | None = None, trust: bool = False,
              device: str | None = None, custom_objects: dict | None = None) -> nn.Module:
    """Load a torch model file without unpickling arbitrary objects unless ``trust=True``.

    * TorchScript archives (``torch.jit.save``) load with ``torch.jit.load``.
    * A ``state_dict`` file loads with ``torch.load(weights_only=True)`` into ``factory()``.
    * A whole pickled module (``torch.save(model)``) is refused unless ``trust=True``.
    """
    if custom_objects:
        raise ConfigError("custom_objects= applies to Keras files only", got=sorted(custom_objects),
                          fix="for a torch state_dict pass factory= that builds the architecture")
    map_location = "cpu" if device in (None, "cpu") else device
    if _is_torchscript(path):
        try:
            with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript but still loads it
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(path), map_location=map_location)
        except RuntimeError as exc:
            raise IncompatibleModelError(f"{path.name} is not a loadable TorchScript archive", got=str(exc)[:300],
                                         fix="re-export it with torch.jit.script(model).save(path)") from None
        return module.eval()
    try:
        obj = torch.load(str(path), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" not in str(exc).lower():
            raise IncompatibleModelError(f"{path.name} is not a readable torch file", got=str(exc).splitlines()[0][:200],
                                         fix="check the file; save with torch.save(model.state_dict(), path)") from None
        if not trust:
            raise UnsafeFileError(
                f"{path.name} holds pickled Python objects beyond tensors; loading it could run arbitrary code",
                got="a file that torch.load(weights_only=True) refuses",
                fix="save a state_dict (torch.save(model.state_dict(), path)) and pass factory=, export "
                    "TorchScript, or pass trust=True only if you trust the file's source") from None
        log.warning("loading %s with weights_only=False because trust=True was given", path)
        obj = torch.load(str(path), map_location=map_location, weights_only=False)
    except (RuntimeError, KeyError, EOFError, OSError, ValueError) as exc:
        raise IncompatibleModelError(f"{path.name} is not a readable torch file (truncated or another format)",
                                     got=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                                     fix="re-save it with torch.save(model.state_dict(), path) or torch.jit.save") from None
    if isinstance(obj, nn.Module):
        return obj.eval()
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if isinstance(obj, dict) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        if factory is None:
            raise ConfigError(f"{path.name} holds a state_dict (weights only); the architecture is needed",
                              got=f"{len(obj)} tensors", fix="pass factory=lambda: MyNet() that builds the model")
        module = factory()
        if not isinstance(module, nn.Module):
            raise IncompatibleModelError("factory() must return a torch.nn.Module", got=type(module).__name__,
                                         fix="make factory build and return the model")
        try:
            module.load_state_dict(obj)
        except RuntimeError as exc:
            raise IncompatibleModelError(f"the weights in {path.name} do not fit factory()'s architecture",
                                         got=str(exc).splitlines()[0][:300],
                                         fix="pass the factory of the architecture the weights were saved from") from None
        return module.eval()
    raise IncompatibleModelError(f"{path.name} holds neither a model nor a state_dict", got=type(obj).__name__,
                                 fix="save torch.save(model.state_dict(), path) or a TorchScript archive")

