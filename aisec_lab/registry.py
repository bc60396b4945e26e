"""One generic name -> component registry, used for attacks, presets, checks, defenses and models.

Components are looked up by name (never by import path). Unknown names raise
:class:`~aisec_lab.errors.UnknownComponentError` with a did-you-mean suggestion and the list of
available names. Third-party packages can add entries through a package entry-point group.
"""

from __future__ import annotations

import difflib
import logging
import types
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import ConfigError, UnknownComponentError

__all__ = ["Registry"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of components of one kind.

    ``kind`` is the human word used in messages ("attack", "reference model", ...).
    ``entry_point_group`` (optional) names a package entry-point group whose entries are loaded the
    first time the registry is read; each entry point must resolve to an object that registers
    itself on import or is a component to register under the entry point's name.
    """

    def __init__(self, kind: str, *, entry_point_group: str | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        self._descriptions: dict[str, str] = {}
        self._plugins_loaded = entry_point_group is None

    # -- writing -------------------------------------------------------------------------
    def register(
        self,
        name: str,
        obj: T | None = None,
        *,
        description: str | None = None,
        overwrite: bool = False,
    ) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ConfigError(
                f"a {self.kind} name must be a non-empty string without surrounding spaces",
                got=name,
                fix="register it under a name such as 'my_component'",
            )

        def _do(item: T) -> T:
            if name in self._items and not overwrite:
                raise ConfigError(
                    f"a {self.kind} named {name!r} is already registered",
                    got=self._items[name],
                    fix="choose another name or pass overwrite=True",
                )
            self._items[name] = item
            doc = description if description is not None else (getattr(item, "__doc__", None) or "")
            self._descriptions[name] = doc.strip().splitlines()[0] if doc.strip() else ""
            return item

        if obj is None:
            return _do
        return _do(obj)

    def unregister(self, name: str) -> None:
        self.get(name)
        del self._items[name]
        self._descriptions.pop(name, None)

    # -- reading -------------------------------------------------------------------------
    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.entry_point_group):
            obj = ep.load()  # a module registers its components on import; an object is registered here
            if ep.name not in self._items and not isinstance(obj, types.ModuleType):
                self.register(ep.name, obj)
            log.debug("loaded %s plugin %r from %s", self.kind, ep.name, ep.value)

    def get(self, name: str) -> T:
        self._load_plugins()
        if not isinstance(name, str):
            raise ConfigError(f"a {self.kind} is looked up by its name (a string)", got=name,
                              fix=f"use one of: {', '.join(self.names())}")
        try:
            return self._items[name]
        except KeyError:
            pass
        close = difflib.get_close_matches(name, list(self._items), n=1, cutoff=0.6)
        lowered = {k.lower(): k for k in self._items}
        if not close and name.lower() in lowered:
            close = [lowered[name.lower()]]
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownComponentError(
            f"unknown {self.kind} {name!r}",
            fix=f"{hint}available: {', '.join(self.names()) or '(none registered)'}",
        )

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def describe(self, name: str) -> str:
        self.get(name)
        return self._descriptions.get(name, "")

    def items(self) -> Iterator[tuple[str, T]]:
        self._load_plugins()
        return iter(sorted(self._items.items()))

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} entries)"


def merge_params(kind: str, name: str, given: dict, defaults: dict) -> dict:
    """``defaults`` updated with ``given``; an unknown key raises ConfigError with a did-you-mean."""
    import difflib

    from .errors import ConfigError

    unknown = [k for k in given if k not in defaults]
    if unknown:
        hint = difflib.get_close_matches(unknown[0], list(defaults), n=1)
        raise ConfigError(f"{kind} {name!r} has no parameter {unknown[0]!r}"
                          + (f"; did you mean {hint[0]!r}?" if hint else ""), got=sorted(given),
                          fix=f"its parameters are: {', '.join(defaults) or '(none)'}")
    return {**defaults, **given}
