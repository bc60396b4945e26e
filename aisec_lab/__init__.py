"""aisec-lab: adversarial robustness testing for PyTorch and Keras models, scorecards first.

Importing ``aisec_lab`` imports neither torch, tensorflow nor ART; they are loaded when a call
needs them.
"""

from __future__ import annotations

import logging

from . import defenses, errors, export, zoo
from .data import Dataset, from_arrays, from_tf_dataset, from_torch_loader, list_datasets, load_dataset, load_npz
from .errors import (
    AisecLabError,
    ConfigError,
    DataError,
    IncompatibleModelError,
    MissingDependencyError,
    NotebookExecutionError,
    ScorecardFormatError,
    UnknownComponentError,
    UnsafeFileError,
)
from .attacks import (
    AttackSpec,
    attack,
    describe_attack,
    list_attacks,
    list_presets,
    register_attack,
    register_preset,
)
from .evaluation import evaluate
from .defenses import defend, describe_defense, list_defenses, register_defense
from .defenses import training as recipes
from .evaluation.checks import list_checks, register_check
from .models import Target, load_model, wrap_model, wrap_predict
from .registry import Registry
from .scorecard import CheckResult, Scorecard
from .scorecard.compare import Comparison, GateResult, compare, gate

from ._version import __version__  # noqa: E402

logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY_MODULES = ("widgets", "notebooks", "batch", "integrations", "sections")


def __getattr__(name: str):
    """``al.widgets``, ``al.notebooks``, ``al.batch``, ``al.integrations``, ``al.sections`` and ``al.run_notebook``
    load on first use."""
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "run_notebook":
        return importlib.import_module(f"{__name__}.notebooks").run_notebook
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "evaluate",
    "defend",
    "list_defenses",
    "describe_defense",
    "register_defense",
    "recipes",
    "defenses",
    "Scorecard",
    "CheckResult",
    "compare",
    "gate",
    "Comparison",
    "GateResult",
    "export",
    "ScorecardFormatError",
    "widgets",
    "notebooks",
    "batch",
    "integrations",
    "sections",
    "run_notebook",
    "attack",
    "AttackSpec",
    "list_attacks",
    "describe_attack",
    "register_attack",
    "list_presets",
    "register_preset",
    "list_checks",
    "register_check",
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
