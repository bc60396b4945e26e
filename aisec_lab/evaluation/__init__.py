"""Evaluation: the cascade engine, metrics with confidence intervals, validity checks, resumable state."""

from __future__ import annotations

from .engine import evaluate

__all__ = ["evaluate"]
