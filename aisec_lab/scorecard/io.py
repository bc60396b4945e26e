"""Scorecard files: schema validation, atomic save into a directory, and a refusing loader.

A saved scorecard is a directory::

    scorecard.json    canonical JSON (``json.dumps(record, indent=2, sort_keys=True)``), schema-valid
    samples.npz       the per-sample arrays (loads with ``allow_pickle=False``)
    scorecard.md      Markdown section for a model card      (when the renderers are available)
    scorecard.html    self-contained HTML report              (when the renderers are available)
    plots/*.png       robustness curve, gallery, ...          (when the renderers are available)

:func:`save` owns exactly these names: each is written to a temporary file and renamed over the old
one, every path is confined to the directory, and a file of a previous save that this save does not
produce (e.g. ``samples.npz`` when the scorecard has no per-sample arrays, or a plot of an ε no longer
evaluated) is removed, so a directory never mixes two runs.

:func:`load` takes the JSON file or its directory, refuses a truncated or invalid file, a missing
key, a wrong type or an unknown major ``schema_version`` with a :class:`ScorecardFormatError`, and
attaches the per-sample arrays saved beside the JSON (``samples.npz`` next to ``scorecard.json``,
``<stem>_samples.npz`` next to ``<stem>.json``) after checking that they belong to it.
"""

from __future__ import annotations

import functools
import importlib
import io as _stdio
import json
import logging
import math
import os
import re
import shutil
import tempfile
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, atomic_write_text, confined_path
from ..errors import ConfigError, ScorecardFormatError
from .record import SCHEMA_VERSION, Scorecard

__all__ = [
    "validate",
    "save",
    "load",
    "load_schema",
    "read_samples",
    "samples_path_for",
    "SCORECARD_JSON",
    "SAMPLES_NPZ",
    "SCORECARD_MD",
    "SCORECARD_HTML",
    "PLOTS_DIR",
    "SUPPORTED_MAJORS",
]

log = logging.getLogger(__name__)

SCORECARD_JSON = "scorecard.json"
SAMPLES_NPZ = "samples.npz"
SCORECARD_MD = "scorecard.md"
SCORECARD_HTML = "scorecard.html"
PLOTS_DIR = "plots"
SCHEMA_FILE = "scorecard.schema.json"

_SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
_CURRENT = tuple(int(p) for p in SCHEMA_VERSION.split(".")[:3])
#: Major schema versions this release reads (1.0.0 is the first published format).
SUPPORTED_MAJORS = (_CURRENT[0],)
_FIX_FILE = ("write the file again with Scorecard.save(dir) (it validates before writing), or correct it by hand; "
             "the format is aisec_lab/scorecard/scorecard.schema.json")


# -- schema ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _schema_text() -> str:
    return resources.files("aisec_lab.scorecard").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


def load_schema() -> dict:
    """The scorecard JSON Schema (draft 2020-12) shipped with the package, as a fresh dict."""
    return json.loads(_schema_text())


@functools.lru_cache(maxsize=1)
def _validator():
    try:
        from jsonschema import Draft202012Validator
    except ImportError:
        log.warning("jsonschema is not installed: scorecards are checked for their version, required keys and "
                    "numbers only; pip install jsonschema for full schema validation")
        return None
    return Draft202012Validator(load_schema())


def _json_path(parts) -> str:
    path = "$"
    for p in parts:
        if isinstance(p, int):
            path += f"[{p}]"
        elif isinstance(p, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", p):
            path += f".{p}"
        else:
            path += f"[{json.dumps(str(p), ensure_ascii=False)}]"
    return path


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__module__ + "." + type(value).__qualname__


def _where(source: str | os.PathLike | None) -> str:
    return f"scorecard {os.fspath(source)}" if source is not None else "scorecard"


def _error(source, what: str, got: Any, fix: str = _FIX_FILE) -> ScorecardFormatError:
    return ScorecardFormatError(f"{_where(source)}: {what}", got=got, fix=fix)


def _describe(err) -> tuple[str, str]:
    """(what was expected, what was got) for one jsonschema error, in words."""
    path = _json_path(err.absolute_path)
    kind, value, inst, schema = err.validator, err.validator_value, err.instance, err.schema
    if kind == "required":
        missing = [k for k in value if isinstance(inst, dict) and k not in inst] or list(value)
        return f"missing key {missing[0]!r} at {path}", "an object with the keys " + ", ".join(sorted(map(str, inst)))
    if kind == "additionalProperties":
        known = set(schema.get("properties", {}))
        extra = sorted(k for k in inst if k not in known) if isinstance(inst, dict) else []
        return (f"unexpected key {extra[0] if extra else '?'!r} at {path} (expected only: {', '.join(sorted(known))})",
                "keys " + ", ".join(map(str, extra)))
    if kind == "type":
        types = value if isinstance(value, list) else [value]
        return f"wrong type at {path}: expected {' or '.join(types)}", f"{_type_name(inst)} {_short(inst)}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if schema.get("minimum") == 0 and schema.get("maximum") == 1:
            expected = "a fraction in [0, 1] (not a percent)"
        elif kind == "minimum":
            expected = f"a number >= {value}"
        elif kind == "maximum":
            expected = f"a number <= {value}"
        elif kind == "exclusiveMinimum":
            expected = f"a number > {value}"
        else:
            expected = f"a number < {value}"
        return f"value out of range at {path}: expected {expected}", _short(inst)
    if kind == "enum":
        return f"invalid value at {path}: expected one of {', '.join(map(str, value))}", _short(inst)
    if kind in ("oneOf", "anyOf") and all(isinstance(alt, dict) and "type" in alt for alt in value):
        types = [t for alt in value for t in (alt["type"] if isinstance(alt["type"], list) else [alt["type"]])]
        return f"wrong type at {path}: expected {' or '.join(types)}", f"{_type_name(inst)} {_short(inst)}"
    if kind == "pattern" and "propertyNames" in err.absolute_schema_path:
        return f"invalid key {inst!r} in {path}: expected a key matching {value}", _short(inst)
    if kind == "pattern":
        hint = {r"^[0-9a-f]{64}$": "a 64-character lowercase hex sha256"}.get(value)
        if hint is None and value == _SEMVER.pattern:
            hint = "a semantic version like 1.0.0"
        return f"invalid string at {path}: expected {hint or 'a string matching ' + value}", _short(inst)
    if kind in ("minItems", "maxItems"):
        return f"wrong number of items at {path}: expected {'at least' if kind == 'minItems' else 'at most'} {value}", \
            f"{len(inst)} items: {_short(inst)}"
    return f"invalid value at {path}: {err.message}", _short(inst)


def _first_non_json(obj: Any, path: list) -> tuple[list, str] | None:
    """Path and reason of the first value JSON cannot carry faithfully (NaN, inf, NumPy scalar, ...)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return None
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (path, f"a non-finite number ({obj!r}); JSON has no NaN or infinity")
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                return path + [k], f"a non-string key {k!r}"
            found = _first_non_json(v, path + [k])
            if found:
                return found
        return None
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found = _first_non_json(v, path + [i])
            if found:
                return found
        return None
    return path, f"a {_type_name(obj)} value ({_short(obj)}); JSON carries only null, booleans, numbers, strings, " \
                 "arrays and objects"


def _parse_version(version: Any, source=None) -> tuple[int, int, int]:
    if not isinstance(version, str):
        raise _error(source, "wrong type at $.schema_version: expected a semantic version string like 1.0.0",
                     f"{_type_name(version)} {_short(version)}")
    m = _SEMVER.match(version)
    if not m:
        raise _error(source, "invalid string at $.schema_version: expected a semantic version like 1.0.0",
                     _short(version))
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def _check_version(record: dict, source=None) -> tuple[int, int, int] | None:
    if "schema_version" not in record:
        return None  # reported as a missing key by the schema
    version = _parse_version(record["schema_version"], source)
    if version[0] not in SUPPORTED_MAJORS:
        newer = version[0] > _CURRENT[0]
        raise _error(source, f"unknown major schema version {version[0]} (this aisec-lab reads "
                             f"{', '.join(f'{m}.x' for m in SUPPORTED_MAJORS)})", record["schema_version"],
                     fix=("upgrade aisec-lab to read it: pip install -U aisec-lab" if newer else
                          "re-run the evaluation with this aisec-lab to get a current scorecard"))
    return version


def _semantic_problem(record: dict) -> tuple[str, Any] | None:
    """Consistency the schema cannot express: CI bounds in order, results matching the threat model."""
    def ci_problem(ci, path):
        if isinstance(ci, list) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci) and ci[0] > ci[1]:
            return f"confidence interval at {path} has its lower bound above its upper bound", ci
        return None

    clean = record.get("clean_accuracy", {})
    found = ci_problem(clean.get("ci"), "$.clean_accuracy.ci")
    if found:
        return found
    if isinstance(clean.get("n_correct"), int) and isinstance(clean.get("n"), int) and clean["n_correct"] > clean["n"]:
        return "$.clean_accuracy.n_correct is larger than $.clean_accuracy.n", [clean["n_correct"], clean["n"]]
    results = record.get("results", [])
    for i, r in enumerate(results):
        found = ci_problem(r.get("robust_accuracy_ci"), f"$.results[{i}].robust_accuracy_ci")
        if found:
            return found
        for label, a in r.get("attacks", {}).items():
            found = ci_problem(a.get("robust_accuracy_ci"), _json_path(["results", i, "attacks", label,
                                                                        "robust_accuracy_ci"]))
            if found:
                return found
    found = _sections_problem(record, ci_problem)
    if found:
        return found
    eps = record.get("threat_model", {}).get("eps", [])
    got = [r.get("eps") for r in results]
    if len(got) != len(eps) or any(abs(float(a) - float(b)) > 1e-12 for a, b in zip(got, eps)):
        return "$.results does not hold one entry per ε of $.threat_model.eps, in the same order", \
            f"results at ε {got}, threat model ε {eps}"
    return None


def _sections_problem(record: dict, ci_problem) -> tuple[str, Any] | None:
    """Consistency of the optional ``defense`` and ``detection`` sections (schema 1.1)."""
    defense = record.get("defense")
    if isinstance(defense, dict) and defense.get("adaptive") is False and defense.get("adaptation"):
        return ("$.defense.adaptation must be empty when $.defense.adaptive is false (the attacks did not adapt "
                "to the defense)", defense["adaptation"])
    detection = record.get("detection")
    if not isinstance(detection, dict):
        return None
    found = ci_problem(detection.get("false_positive_rate_ci"), "$.detection.false_positive_rate_ci")
    if found:
        return found
    k, n = detection.get("n_false_positives"), detection.get("n_clean")
    if isinstance(k, int) and isinstance(n, int) and k > n:
        return "$.detection.n_false_positives is larger than $.detection.n_clean", [k, n]
    per_eps = detection.get("per_eps")
    for i, r in enumerate(per_eps if isinstance(per_eps, list) else []):
        if not isinstance(r, dict):
            continue
        found = ci_problem(r.get("detection_rate_ci"), f"$.detection.per_eps[{i}].detection_rate_ci")
        if found:
            return found
        k, n = r.get("n_detected"), r.get("n_adversarial")
        if isinstance(k, int) and isinstance(n, int) and k > n:
            return f"$.detection.per_eps[{i}].n_detected is larger than its n_adversarial", [k, n]
        if n == 0 and r.get("detection_rate") is not None:
            return (f"$.detection.per_eps[{i}].detection_rate must be null when n_adversarial is 0 (no example "
                    "to detect)", r.get("detection_rate"))
    return None


def validate(record: dict, *, source: str | os.PathLike | None = None) -> None:
    """Check ``record`` (``Scorecard.to_dict()`` output) against the shipped schema.

    Raises :class:`~aisec_lab.errors.ScorecardFormatError` naming the JSON path of the first
    problem, what was expected and what was found. A scorecard of a newer *minor* version of a
    known major is accepted with keys this release does not know.
    """
    if isinstance(record, Scorecard):
        record = record.to_dict()
    if not isinstance(record, dict):
        raise _error(source, "a scorecard must be a JSON object at $", f"{_type_name(record)} {_short(record)}")
    found = _first_non_json(record, [])
    if found:
        raise _error(source, f"value at {_json_path(found[0])} is not plain JSON", found[1])
    version = _check_version(record, source)
    newer_minor = version is not None and version[0] == _CURRENT[0] and version[1] > _CURRENT[1]
    validator = _validator()
    if validator is not None:
        errors = [e for e in validator.iter_errors(record)
                  if not (newer_minor and e.validator == "additionalProperties")]
        if errors:
            from jsonschema.exceptions import best_match

            what, got = _describe(best_match(errors))
            raise _error(source, what, got)
    else:  # minimal checks without jsonschema
        for key in load_schema()["required"]:
            if key not in record:
                raise _error(source, f"missing key {key!r} at $", "an object with the keys " + ", ".join(sorted(record)))
    problem = _semantic_problem(record)
    if problem:
        raise _error(source, problem[0], problem[1])
    _validate_sections(record, source)


def _validate_sections(record: dict, source) -> None:
    """Each entry of ``sections`` against its section's own schema (unknown sections: kept, not checked)."""
    sections = record.get("sections")
    if not isinstance(sections, dict) or not sections:
        return
    from ..errors import UnknownComponentError
    from ..sections import get_section

    for name, section in sections.items():
        try:
            spec = get_section(name)
        except UnknownComponentError:
            log.info("scorecard section %r is not registered here; it is kept but not validated", name)
            continue
        try:
            from jsonschema import Draft202012Validator
        except ImportError:
            return
        errors = list(Draft202012Validator(spec.schema).iter_errors(section))
        if errors:
            from jsonschema.exceptions import best_match

            err = best_match(errors)
            path = "$.sections." + name + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
            raise _error(source, f"{path}: {err.message}", _short(err.instance))


# -- per-sample arrays -------------------------------------------------------------------------
def samples_path_for(json_path: str | os.PathLike) -> Path | None:
    """The per-sample file saved beside a scorecard JSON, or ``None`` when there is none.

    ``samples.npz`` next to ``scorecard.json``; ``<stem>_samples.npz`` next to ``<stem>.json``.
    """
    p = Path(json_path)
    names = [f"{p.stem}_samples.npz"] + ([SAMPLES_NPZ] if p.name == SCORECARD_JSON else [])
    for name in names:
        candidate = p.parent / name
        if candidate.is_file():
            return candidate
    return None


def _samples_bytes(samples: dict) -> bytes | None:
    if not samples:
        return None
    arrays = {}
    for key, value in samples.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise ConfigError("per-sample array names must be non-empty strings without '/'", got=key,
                              fix="rename the entry in sc.samples")
        arr = np.array(value) if isinstance(value, str) else np.asarray(value)
        if arr.dtype.hasobject:
            raise ConfigError(f"sc.samples[{key!r}] holds Python objects, which samples.npz cannot store without "
                              "pickle", got=f"dtype {arr.dtype}", fix="store numeric, boolean or string arrays only")
        arrays[key] = arr
    buf = _stdio.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def read_samples(path: str | os.PathLike) -> dict:
    """Per-sample arrays from an ``.npz`` (never unpickles); 0-d string arrays come back as ``str``."""
    path = Path(path)
    fix = f"save the scorecard again with Scorecard.save(dir), or remove {path.name} to load without per-sample data"
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ScorecardFormatError(f"per-sample file {path} is not an .npz archive", got=type(z).__name__, fix=fix)
        with z:
            samples = {k: z[k] for k in z.files}
    except ScorecardFormatError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ScorecardFormatError(f"per-sample file {path} cannot be read (truncated, corrupted, or pickled data)",
                                   got=f"{type(exc).__name__}: {exc}", fix=fix) from exc
    for k, v in list(samples.items()):
        if v.ndim == 0 and v.dtype.kind == "U":
            samples[k] = str(v)
    return samples


def _check_samples(record: dict, samples: dict, source) -> None:
    """Refuse per-sample arrays that do not belong to ``record`` (another run, another data set)."""
    if not samples:
        return
    fix = ("save the scorecard again with Scorecard.save(dir), or move the stale per-sample file away "
           "to load without per-sample data")
    n = record["data"]["n"]
    n_eps = len(record["results"])
    n_att = len(record["threat_model"]["attacks"])
    sha = samples.get("index_sha256")
    if isinstance(sha, str) and sha != record["data"]["sha256"]:
        raise ScorecardFormatError(f"per-sample data {source} belongs to other data",
                                   got=f"index_sha256 {sha[:12]}..., scorecard data sha256 {record['data']['sha256'][:12]}...",
                                   fix=fix)
    expected = {"y": (n,), "clean_pred": (n,), "clean_correct": (n,), "first_attack": (n_eps, n), "linf": (n_eps, n),
                "l2": (n_eps, n), "adv_pred": (n_eps, n), "broken_by_attack": (n_att, n_eps, n)}
    for key, shape in expected.items():
        arr = samples.get(key)
        if arr is not None and np.shape(arr) != shape:
            raise ScorecardFormatError(f"per-sample data {source} does not match its scorecard: {key} should have shape "
                                       f"{shape} (n={n}, {n_eps} ε, {n_att} attacks)", got=np.shape(arr), fix=fix)
    for key, lead in (("x", (n,)), ("x_adv", (n_eps, n))):
        arr = samples.get(key)
        if arr is not None and np.shape(arr)[:len(lead)] != lead:
            raise ScorecardFormatError(f"per-sample data {source} does not match its scorecard: {key} should start "
                                       f"with the dimensions {lead}", got=np.shape(arr), fix=fix)
    if "clean_correct" in samples:
        k = int(np.sum(samples["clean_correct"]))
        if k != record["clean_accuracy"]["n_correct"]:
            raise ScorecardFormatError(f"per-sample data {source} does not match its scorecard: {k} samples correct, "
                                       f"the scorecard says {record['clean_accuracy']['n_correct']}",
                                       got=k, fix=fix)
    if "first_attack" in samples:
        for ei, r in enumerate(record["results"]):
            k = int(np.sum(np.asarray(samples["first_attack"])[ei] == -1))
            if "n_robust" in r and k != r["n_robust"]:
                raise ScorecardFormatError(f"per-sample data {source} does not match its scorecard at ε={r['eps']:g}: "
                                           f"{k} samples robust, the scorecard says {r['n_robust']}", got=k, fix=fix)


# -- save --------------------------------------------------------------------------------------
def _jsonable(obj: Any, path: list) -> Any:
    """Plain-JSON copy: NumPy scalars/arrays to Python, tuples to lists, non-finite floats to null."""
    if isinstance(obj, dict):
        return {(k if isinstance(k, str) else str(k) if isinstance(k, (int, np.integer)) else k):
                _jsonable(v, path + [k]) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, path + [i]) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist(), path)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        obj = float(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        log.warning("scorecard value at %s is %r; saved as null (JSON has no NaN or infinity)", _json_path(path), obj)
        return None
    return obj


def _renderer(module: str, attr: str, produces: str):
    try:
        mod = importlib.import_module(f"aisec_lab.scorecard.render.{module}")
        return getattr(mod, attr)
    except (ImportError, AttributeError) as exc:
        log.warning("%s not written: the renderer aisec_lab.scorecard.render.%s.%s is not available (%s)",
                    produces, module, attr, exc)
        return None


def _call_renderer(fn, produces: str, *args):
    try:
        return fn(*args)
    except ImportError as exc:  # MissingDependencyError (jinja2, matplotlib) included
        log.warning("%s not written: %s", produces, exc)
        return None


def _stage_plots(record: dict, samples: dict, out: Path, stage: Path) -> list[tuple[Path, Path]] | None:
    """Run the plot renderer into ``stage``; return (staged file, final path in ``out``) pairs."""
    fn = _renderer("plots", "save_plots", f"{PLOTS_DIR}/*.png")
    if fn is None:
        return None
    files = _call_renderer(fn, f"{PLOTS_DIR}/*.png", record, samples, stage)
    if files is None:
        return None
    stage_root = stage.resolve()
    moves = []
    for f in files:
        src = Path(f)
        if not src.is_absolute():
            src = stage / src if (stage / src).exists() else src
        src = src.resolve()
        try:
            rel = src.relative_to(stage_root)
        except ValueError:
            raise ConfigError("output path escapes the output directory", got=str(f),
                              fix="save_plots must write inside the directory it is given") from None
        if not src.is_file():
            raise ConfigError("save_plots returned a path that is not a file", got=str(f),
                              fix="return the paths of the files written")
        parts = rel.parts[1:] if rel.parts and rel.parts[0] == PLOTS_DIR else rel.parts
        moves.append((src, confined_path(out, Path(PLOTS_DIR, *parts))))
    return moves


def _remove_stale(path: Path) -> None:
    if path.is_file() or path.is_symlink():
        log.info("removing %s left by a previous save", path)
        path.unlink()


def save(sc: Scorecard, out_dir: str | os.PathLike) -> Path:
    """Write ``sc`` into ``out_dir`` (created if needed) and return the path of ``scorecard.json``.

    Validates first (nothing is written for an invalid scorecard), renders Markdown, HTML and plots
    when :mod:`aisec_lab.scorecard.render` is available (a missing renderer is skipped with a
    logged warning), then replaces each file atomically. See the module docstring for the layout.
    """
    if not isinstance(sc, Scorecard):
        raise ConfigError("save needs a Scorecard", got=type(sc).__name__, fix="pass the result of aisec_lab.evaluate")
    if out_dir is None or (isinstance(out_dir, str) and not out_dir.strip()):
        raise ConfigError("out_dir must be a directory path", got=out_dir, fix='e.g. sc.save("runs/digits")')
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError("out_dir exists and is not a directory", got=str(out), fix="choose a directory path")
    record = _jsonable(sc.to_dict(), [])
    validate(record)
    _check_samples(record, sc.samples, "sc.samples")
    text = json.dumps(record, indent=2, sort_keys=True, allow_nan=False)
    record = json.loads(text)  # render what a later load gives (sorted keys): files agree with `aisec-lab render`
    blob = _samples_bytes(sc.samples)

    out.mkdir(parents=True, exist_ok=True)
    targets = {name: confined_path(out, name) for name in (SCORECARD_JSON, SAMPLES_NPZ, SCORECARD_MD, SCORECARD_HTML)}
    render_md = _renderer("markdown", "render_markdown", SCORECARD_MD)
    render_html = _renderer("html", "render_html", SCORECARD_HTML)
    md = None if render_md is None else _call_renderer(render_md, SCORECARD_MD, record)
    html = None if render_html is None else _call_renderer(render_html, SCORECARD_HTML, record, sc.samples)
    stage = Path(tempfile.mkdtemp(prefix=".plots-", suffix=".tmp", dir=out))
    try:
        moves = _stage_plots(record, sc.samples, out, stage)
        plots = confined_path(out, PLOTS_DIR)
        if blob is not None:
            atomic_write_bytes(targets[SAMPLES_NPZ], blob)
        else:
            _remove_stale(targets[SAMPLES_NPZ])
        atomic_write_text(targets[SCORECARD_JSON], text)
        for name, content in ((SCORECARD_MD, md), (SCORECARD_HTML, html)):
            if content is not None:
                atomic_write_text(targets[name], content)
            else:
                _remove_stale(targets[name])
        written = set()
        for src, dst in moves or []:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            written.add(dst)
        if plots.is_dir():
            for old in plots.glob("*.png"):
                if old.resolve() not in written:
                    _remove_stale(old)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return targets[SCORECARD_JSON]


# -- load --------------------------------------------------------------------------------------
def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed")


def _parse(raw: bytes, source: Path) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(source, "file is not UTF-8 text (not a scorecard JSON?)", f"{type(exc).__name__}: {exc}") from exc
    try:
        record = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        tail = text[-40:]
        raise _error(source, f"file is not valid JSON (truncated or corrupted?): {exc.msg} at line {exc.lineno} "
                             f"column {exc.colno}", f"{len(raw)} bytes ending in {tail!r}",
                     fix="restore the file, or write it again with Scorecard.save(dir)") from exc
    except ValueError as exc:  # NaN / Infinity
        raise _error(source, "file holds a non-standard JSON number", str(exc)) from exc
    if not isinstance(record, dict):
        raise _error(source, "a scorecard must be a JSON object at $", f"{_type_name(record)} {_short(record)}")
    return record


def load(path: str | os.PathLike) -> Scorecard:
    """Read a scorecard saved by :func:`save`: the JSON file, or the directory holding ``scorecard.json``."""
    if path is None or (isinstance(path, str) and not path.strip()):
        raise ConfigError("a scorecard path is required", got=path, fix="pass runs/x or runs/x/scorecard.json")
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / SCORECARD_JSON
    if not p.is_file():
        raise ConfigError("no scorecard file found", got=os.fspath(path),
                          fix="pass the directory given to Scorecard.save(dir) or the scorecard.json inside it")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError("the scorecard file cannot be read", got=f"{type(exc).__name__}: {exc}",
                          fix="check the path and its permissions") from exc
    record = _parse(raw, p)
    validate(record, source=p)
    samples = {}
    sp = samples_path_for(p)
    if sp is not None:
        samples = read_samples(sp)
        _check_samples(record, samples, sp)
    try:
        return Scorecard.from_dict(record, samples)
    except (KeyError, TypeError, AttributeError) as exc:  # only reachable without jsonschema
        raise _error(p, "the scorecard cannot be rebuilt from this file", f"{type(exc).__name__}: {exc}") from exc
