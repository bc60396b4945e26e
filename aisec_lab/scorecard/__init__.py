"""The scorecard record (renderers, schema and exports build on it)."""

from __future__ import annotations

from .record import SCHEMA_VERSION, CheckResult, Scorecard

__all__ = ["Scorecard", "CheckResult", "SCHEMA_VERSION"]
