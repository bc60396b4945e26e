"""aisec-lab: adversarial robustness testing for PyTorch and Keras models, scorecards first.

Importing ``aisec_lab`` imports neither torch, tensorflow nor ART; they are loaded when a call
needs them.
"""

from __future__ import annotations

import logging

from . import errors, zoo
from .data import Dataset, from_arrays, from_tf_dataset, from_torch_loader, list_datasets, load_dataset, load_npz
from .errors import (
    AisecLabError,
    ConfigError,
    DataError,
    IncompatibleModelError,
    MissingDependencyError,
    NotebookExecutionError,
    UnknownComponentError,
    UnsafeFileError,
)
from .models import Target, load_model, wrap_model, wrap_predict
from .registry import Registry

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    "wrap_model",
    "wrap_predict",
    "load_model",
    "Target",
    "load_dataset",
    "list_datasets",
    "from_arrays",
    "load_npz",
    "from_torch_loader",
    "from_tf_dataset",
    "Dataset",
    "zoo",
    "errors",
    "Registry",
    "AisecLabError",
    "ConfigError",
    "DataError",
    "IncompatibleModelError",
    "MissingDependencyError",
    "NotebookExecutionError",
    "UnknownComponentError",
    "UnsafeFileError",
]
