"""Hand a scorecard to the tools teams already use. Each integration loads its package on first use.

>>> al.integrations.mlflow.log(sc)   # doctest: +SKIP

``aisec_lab.integrations.mlflow`` needs the ``mlflow`` extra (``pip install 'aisec-lab[mlflow]'``);
importing ``aisec_lab`` or this package imports none of them.
"""

from __future__ import annotations

import importlib

__all__ = ["mlflow"]

_MODULES = ("mlflow",)


def __getattr__(name: str):
    """``aisec_lab.integrations.mlflow`` loads on first access (the MLflow package itself only when logging)."""
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
