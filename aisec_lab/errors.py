"""The aisec-lab exception tree.

Every error the library raises on bad input is an :class:`AisecLabError`. Each subclass also
derives from the built-in exception a Python user would expect (``ValueError`` for bad values,
``TypeError`` for the wrong kind of object, ``KeyError`` for unknown names, ``ImportError`` for
missing packages), so ``except ValueError`` keeps working.

Messages follow one pattern -- *what* was wrong, what was *got*, and *how to fix* it -- built by
:func:`format_message`.
"""

from __future__ import annotations

__all__ = [
    "AisecLabError",
    "ConfigError",
    "DataError",
    "UnsafeFileError",
    "ScorecardFormatError",
    "IncompatibleModelError",
    "UnknownComponentError",
    "MissingDependencyError",
    "NotebookExecutionError",
    "format_message",
]


def format_message(what: str, got: object | None = None, fix: str | None = None) -> str:
    """Build a ``what; got ...; fix`` message.

    >>> format_message("eps must be positive", got=-0.1, fix="pass eps=0.1")
    'eps must be positive; got -0.1. Fix: pass eps=0.1'
    """
    msg = what
    if got is not None:
        got_text = got if isinstance(got, str) else repr(got)
        msg += f"; got {got_text}"
    if fix:
        msg += f". Fix: {fix}"
    return msg


class AisecLabError(Exception):
    """Base class of every error aisec-lab raises on purpose."""

    def __init__(self, what: str, got: object | None = None, fix: str | None = None):
        self.what = what
        self.got = got
        self.fix = fix
        super().__init__(format_message(what, got, fix))

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0] if self.args else ""


class ConfigError(AisecLabError, ValueError):
    """An argument has a wrong value (shape, range, option, combination)."""


class DataError(ConfigError):
    """Data is unusable: NaN/Inf, out of the clip range, bad labels, wrong shape."""


class UnsafeFileError(ConfigError):
    """A file would run arbitrary code when loaded (a pickle) and ``trust=True`` was not given."""


class ScorecardFormatError(ConfigError):
    """A scorecard file (JSON or its per-sample arrays) is truncated, invalid, or of an unknown schema version."""


class IncompatibleModelError(AisecLabError, TypeError):
    """The object given as a model is not one aisec-lab can wrap, or does not match its description."""


class UnknownComponentError(AisecLabError, KeyError):
    """A name (attack, preset, defense, reference model, ...) is not in its registry."""


class MissingDependencyError(AisecLabError, ImportError):
    """An optional package is needed for this call and is not installed."""


class NotebookExecutionError(AisecLabError, RuntimeError):
    """A notebook cell failed while running under papermill."""
