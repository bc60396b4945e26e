"""Lazy, guarded imports of the heavy optional frameworks.

``import aisec_lab`` must import neither torch nor tensorflow (nor ART, which imports torch when
present). Code that needs one calls the matching function here at run time; a missing package
becomes a :class:`~aisec_lab.errors.MissingDependencyError` that names the extra to install.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["import_torch", "import_tensorflow", "import_keras", "import_art", "require"]

# package import name -> (extra that provides it, human name)
_EXTRAS = {
    "torch": ("torch", "PyTorch"),
    "tensorflow": ("tensorflow", "TensorFlow"),
    "keras": ("tensorflow", "Keras 3"),
    "art": ("core", "adversarial-robustness-toolbox (ART)"),
}


def require(module: str, *, purpose: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra_name, human = _EXTRAS.get(top, (extra or top, top))
        extra_name = extra or extra_name
        if extra_name == "core":
            fix = "reinstall aisec-lab: pip install aisec-lab (it is a core dependency)"
        else:
            fix = f"install it with: pip install 'aisec-lab[{extra_name}]'"
        raise MissingDependencyError(
            f"{human} is required to {purpose} but could not be imported",
            got=f"ImportError: {exc}",
            fix=fix,
        ) from exc


def import_torch(purpose: str = "use a PyTorch model") -> ModuleType:
    return require("torch", purpose=purpose)


def _quiet_tensorflow_env() -> None:
    # Both variables must be set before tensorflow is imported for the C++ start-up noise to go.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def import_tensorflow(purpose: str = "use a TensorFlow/Keras model") -> ModuleType:
    already = "tensorflow" in __import__("sys").modules
    if not already:
        _quiet_tensorflow_env()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        tf = require("tensorflow", purpose=purpose)
    if not already:
        tf.get_logger().setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)
    return tf


def import_keras(purpose: str = "use a Keras model") -> ModuleType:
    import_tensorflow(purpose)
    keras = require("keras", purpose=purpose)
    major = int(str(keras.__version__).split(".")[0])
    if major < 3:
        raise MissingDependencyError(
            "Keras 3 is required",
            got=f"keras {keras.__version__}",
            fix="pip install 'keras>=3' (and do not set TF_USE_LEGACY_KERAS=1)",
        )
    return keras


def import_art(submodule: str = "art", purpose: str = "build an ART estimator") -> ModuleType:
    return require(submodule, purpose=purpose)
