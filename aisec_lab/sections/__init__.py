"""Scorecard sections beyond evasion: ``certified``, ``privacy``, ``backdoor`` (and plugins).

A section answers one more question a security reviewer asks, on the same target and data as the
evaluation, and lands in the scorecard as ``sc.section(name)`` -- a plain JSON dict validated by the
section's own JSON schema, rendered by the generic section block of every renderer (title, caveat,
``rows``) and checked by the section's own validity checks.

```python
sc = al.evaluate(target, ds, eps=[0.1], sections=["certified", "privacy"], train_data=train_ds,
                 section_params={"certified": {"sigma": 0.25}})
sc.section("certified")["certified_accuracy"]
```

A section is registered with :func:`register_section` (or the ``aisec_lab.sections`` entry-point group).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ConfigError
from ..registry import Registry, merge_params

log = logging.getLogger(__name__)

__all__ = ["SECTIONS", "SectionSpec", "SectionContext", "register_section", "list_sections", "get_section",
           "run_sections", "BUILTIN"]

SECTIONS: Registry = Registry("section", entry_point_group="aisec_lab.sections")

#: built-in sections and the module that registers each (imported on first use)
BUILTIN = {"certified": "certified", "privacy": "privacy", "backdoor": "backdoor"}


@dataclass(frozen=True)
class SectionSpec:
    """What a section is: how to compute it, validate it, check it and show it.

    ``compute(ctx, **params) -> dict`` returns the JSON-ready section (floats in [0, 1] for rates,
    lists not arrays). ``schema`` is the JSON schema of that dict. ``checks(section, ctx) ->
    list[CheckResult]`` are the section's validity checks (ids prefixed with the section name).
    ``rows(section) -> list[(label, value)]`` are the display rows every renderer shows under
    ``title``; ``caveat`` is one sentence shown with it (e.g. "a guarantee of the smoothed classifier,
    not of the base model"). ``needs_train_data`` makes ``evaluate`` refuse to run it without
    ``train_data``. ``model_card_metrics(section) -> list[dict(type, name, value)]`` gives the metrics
    that have a standard name for model-card exports.
    """

    name: str
    title: str
    compute: Callable[..., dict]
    schema: dict
    rows: Callable[[dict], list]
    caveat: str = ""
    checks: Callable[..., list] | None = None
    needs_train_data: bool = False
    model_card_metrics: Callable[[dict], list] | None = None
    defaults: dict = field(default_factory=dict)


@dataclass
class SectionContext:
    """What a section sees: the evaluated target and samples, the training data and the evaluation's seed."""

    target: Any
    data: Any  # Dataset: the evaluated samples (after n_samples)
    train_data: Any = None  # Dataset or None
    seed: int = 0
    norm: str = "linf"
    eps: list = field(default_factory=list)
    progress: bool = False


def register_section(spec: SectionSpec, *, overwrite: bool = False) -> SectionSpec:
    if not isinstance(spec, SectionSpec):
        raise ConfigError("register_section takes a SectionSpec", got=type(spec).__name__,
                          fix="build aisec_lab.sections.SectionSpec(name=..., title=..., compute=..., schema=..., rows=...)")
    SECTIONS.register(spec.name, spec, overwrite=overwrite)
    return spec


def _load_builtins() -> None:
    for module in BUILTIN.values():
        importlib.import_module(f"{__name__}.{module}")


def list_sections() -> list[str]:
    _load_builtins()
    return SECTIONS.names()


def get_section(name: str) -> SectionSpec:
    if name in BUILTIN:
        importlib.import_module(f"{__name__}.{BUILTIN[name]}")
    elif name not in SECTIONS.names():
        _load_builtins()
    return SECTIONS.get(name)


def normalize_sections(sections: Any, section_params: Any, train_data: Any, *,
                       require_train_data: bool = True) -> list[tuple[SectionSpec, dict]]:
    """Validate ``sections`` / ``section_params`` up front; return (spec, params) pairs in the given order."""
    if sections is None:
        sections = []
    if isinstance(sections, str):
        sections = [sections]
    if not isinstance(sections, (list, tuple)) or not all(isinstance(s, str) for s in sections):
        raise ConfigError("sections must be a list of section names", got=sections,
                          fix=f"e.g. sections=['certified', 'privacy']; available: {', '.join(list_sections())}")
    if len(set(sections)) != len(sections):
        raise ConfigError("sections lists a name twice", got=list(sections), fix="list each section once")
    section_params = {} if section_params is None else section_params
    if not isinstance(section_params, dict):
        raise ConfigError("section_params must be a dict of {section name: {parameter: value}}", got=section_params,
                          fix="e.g. section_params={'certified': {'sigma': 0.25}}")
    stray = [k for k in section_params if k not in sections]
    if stray:
        raise ConfigError(f"section_params given for {stray[0]!r}, which is not in sections", got=sorted(section_params),
                          fix=f"add {stray[0]!r} to sections=[...] or drop its parameters")
    out = []
    for name in sections:
        spec = get_section(name)
        params = section_params.get(name, {})
        if not isinstance(params, dict):
            raise ConfigError(f"section_params[{name!r}] must be a dict", got=params, fix="e.g. {'sigma': 0.25}")
        params = merge_params("section", name, params, spec.defaults)
        if require_train_data and spec.needs_train_data and train_data is None:
            raise ConfigError(f"the {name!r} section needs the model's training data", got="train_data=None",
                              fix=f"pass train_data=al.load_dataset(..., split='train') (the samples the model was "
                                  f"trained on), or drop {name!r} from sections")
        out.append((spec, params))
    return out


def run_sections(pairs: list, ctx: SectionContext) -> tuple[dict, list]:
    """Compute every section; return ``({name: section dict}, [CheckResult, ...])``."""
    results: dict = {}
    checks: list = []
    for spec, params in pairs:
        section = spec.compute(ctx, **params)
        results[spec.name] = section
        if spec.checks is not None:
            checks.extend(spec.checks(section, ctx))
    return results, checks


def section_rows(name: str, section: dict) -> list[tuple[str, str]]:
    """Display rows of a section: its spec's ``rows``, or scalar entries for a section not registered here."""
    from ..errors import UnknownComponentError

    try:
        spec = get_section(name)
    except UnknownComponentError:
        return [(str(k), str(v)) for k, v in section.items() if isinstance(v, (str, int, float, bool)) or v is None]
    return [(str(label), str(value)) for label, value in spec.rows(section)]


def section_header(name: str) -> tuple[str, str]:
    """(title, caveat) of a section, with fallbacks for one not registered here."""
    from ..errors import UnknownComponentError

    try:
        spec = get_section(name)
    except UnknownComponentError:
        return name.replace("_", " ").capitalize(), "section not registered in this installation: shown as stored"
    return spec.title, spec.caveat
