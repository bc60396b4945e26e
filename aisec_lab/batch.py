"""Batch runs: a grid of notebook parameters, one job per grid point, resumable, with a ranked index.

A grid is YAML (read with ``yaml.safe_load`` only) or the same structure as a dict::

    name: digits-sweep            # optional, shown on the index page
    notebook: 01_scorecard        # default; a name under notebooks/ or a path to an .ipynb
    base:                         # parameters every job gets
      dataset: digits
      n_samples: 200
    grid:                         # parameters varied: the cartesian product of these lists
      model: [digits_cnn, digits_mlp]
      attacks: [fast, [fgsm, pgd]]
      eps: [[0.05], [0.1, 0.2]]   # a value may itself be a list

Each grid point is a :class:`Job`. Its ``job_id`` is a short sha256 of the canonical JSON of the
notebook and the parameters, and it runs into ``OUT/<job_id>/`` (the notebook's ``output_dir``), each
in its own process and notebook kernel: a local process pool (``workers``) by default, or a Dask
``distributed`` cluster when ``scheduler`` is given (an address such as ``tcp://host:8786``, a
``Client`` or a ``LocalCluster``; the workers must see ``OUT`` on a shared file system and have
aisec-lab installed).

A job folder holds what the notebook wrote (``scorecard.json``, ``scorecard.html``, the executed
notebook, ...) plus the batch's own files:

    job.json       the job: notebook and parameters (written when it starts)
    attempt.json   the process running the job (pid, host, start time)
    error.json     a failed job: exception type, message, the notebook cell, traceback text
    done.json      a finished job, written atomically and LAST; it carries the scorecard's summary

A job whose ``done.json`` exists is skipped when the same grid runs again into the same folder:
killing a batch (even with SIGKILL) and re-running it resumes it, and no finished job runs twice.
A failed job does not stop the others, and runs again on the next run. After each job and at the
end, ``OUT/index.md`` and ``OUT/index.html`` rank every run by its worst-case robust accuracy at its
headline ε (the middle ε of its sweep) and list the failed jobs with their errors.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.util
import itertools
import json
import logging
import math
import os
import pickle
import socket
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from ._io import atomic_write_text
from .errors import AisecLabError, ConfigError

__all__ = ["Grid", "Job", "BatchResult", "load_grid", "run_batch", "write_index", "GRID_KEYS", "DEFAULT_NOTEBOOK"]

log = logging.getLogger(__name__)

DEFAULT_NOTEBOOK = "01_scorecard"
#: The top-level keys a grid may have.
GRID_KEYS = ("name", "notebook", "base", "grid")
#: A grid larger than this is almost certainly a mistake (a list where a value was meant).
MAX_JOBS = 100_000

JOB_JSON = "job.json"
ATTEMPT_JSON = "attempt.json"
ERROR_JSON = "error.json"
DONE_JSON = "done.json"
BATCH_JSON = "batch.json"
INDEX_MD = "index.md"
INDEX_HTML = "index.html"
LOCK_FILE = ".batch.lock"
# parameters the batch sets itself (run_notebook's out_dir sets the notebook's output_dir)
_RESERVED = ("output_dir",)
_ID_LENGTH = 12
_FIX_GRID = ("a grid is a mapping with the keys notebook (optional), base (fixed parameters), grid (parameter -> "
             "list of values) and name (optional)")


# -- grid and jobs -----------------------------------------------------------------------------
def _canonical(value: Any, where: str) -> Any:
    """A plain-JSON copy of a parameter value (tuples become lists); refuse anything JSON cannot carry."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where} is not a finite number", got=value, fix="use a finite number")
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where} has a non-string key", got=k, fix="quote the key")
            out[k] = _canonical(v, f"{where}.{k}")
        return out
    # numpy scalars from a Python-built grid
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return _canonical(item(), where)
    raise ConfigError(f"{where} is not a plain value (null, boolean, number, string, list or mapping)",
                      got=f"{type(value).__name__} {value!r}",
                      fix="quote it in the YAML (e.g. a date: '2024-01-01'), or pass a plain Python value")


def _canonical_json(notebook: str, params: dict) -> str:
    return json.dumps({"notebook": notebook, "params": params}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=False)


def _short_json(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass(frozen=True)
class Job:
    """One grid point: a notebook and its parameters. ``job_id`` hashes both; the job runs into
    ``OUT/<job_id>/``."""

    notebook: str
    params: dict
    #: the grid keys (what varies between jobs), for labels; not part of the identity
    grid_keys: tuple = field(default=(), compare=False)
    #: the notebook as the runner is given it (a path resolved against the grid file's folder)
    notebook_ref: str | None = field(default=None, compare=False, repr=False)
    job_id: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        params = _canonical(dict(self.params), "parameters")
        object.__setattr__(self, "params", params)
        digest = hashlib.sha256(_canonical_json(self.notebook, params).encode("utf-8")).hexdigest()
        object.__setattr__(self, "job_id", digest[:_ID_LENGTH])

    @property
    def label(self) -> str:
        """The varying parameters, ``model=..., eps=[0.1]`` (all parameters when none vary)."""
        keys = [k for k in self.grid_keys if k in self.params] or list(self.params)
        return ", ".join(f"{k}={_short_json(self.params[k])}" for k in keys)

    def folder(self, out_dir: str | os.PathLike) -> Path:
        return Path(out_dir) / self.job_id

    def to_dict(self) -> dict:
        return {"job_id": self.job_id, "notebook": self.notebook, "params": self.params,
                "grid_keys": list(self.grid_keys)}


@dataclass(frozen=True)
class Grid:
    """A parsed grid (see the module docstring); :meth:`jobs` expands it."""

    notebook: str = DEFAULT_NOTEBOOK
    base: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    name: str | None = None
    #: the YAML file it came from (relative notebook paths resolve against its folder)
    source: str | None = None

    def __len__(self) -> int:
        return len(self.jobs())

    def jobs(self) -> list[Job]:
        """The cartesian product of the ``grid`` lists, each merged over ``base``, in a stable order
        (the first grid key varies slowest); identical grid points are kept once."""
        keys = tuple(self.grid)
        ref = _resolve_notebook(self.notebook, self.source)
        seen: dict[str, Job] = {}
        for combo in itertools.product(*(self.grid[k] for k in keys)):
            params = {**self.base, **dict(zip(keys, combo))}
            job = Job(self.notebook, params, grid_keys=keys, notebook_ref=ref)
            other = seen.get(job.job_id)
            if other is None:
                seen[job.job_id] = job
            elif other.params != job.params:  # a 48-bit prefix collision: never seen, but never silent
                raise ConfigError("two different grid points have the same job id", got=[other.label, job.label],
                                  fix="change one of the values slightly")
            else:
                log.warning("grid point %s appears more than once; it runs once", job.label)
        return list(seen.values())

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"notebook": self.notebook, "base": self.base, "grid": self.grid}
        if self.name is not None:
            out["name"] = self.name
        return out


def _resolve_notebook(notebook: str, source: str | None) -> str:
    """A relative notebook *path* in a grid file resolves against the file's folder when it exists there."""
    looks_like_path = notebook.endswith(".ipynb") or "/" in notebook or os.sep in notebook
    if source and looks_like_path and not os.path.isabs(notebook):
        candidate = Path(source).resolve().parent / notebook
        if candidate.is_file():
            return str(candidate)
    return notebook


def _did_you_mean(key: str, choices) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _read_yaml(path: Path) -> Any:
    from ._optional import require

    yaml = require("yaml", purpose="read a grid YAML file", extra="core")
    if not path.exists():
        raise ConfigError("grid file not found", got=str(path), fix="pass the path of a grid YAML file")
    if not path.is_file():
        raise ConfigError("the grid path is not a file", got=str(path), fix="pass the path of a grid YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("the grid file cannot be read as UTF-8 text", got=f"{type(exc).__name__}: {exc}",
                          fix="check the path and that it is a YAML file") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:  # syntax errors and tags the safe loader refuses (!!python/object, ...)
        raise ConfigError(f"grid file {path} is not valid YAML (or uses a tag the safe loader refuses)",
                          got=" ".join(str(exc).split()), fix="fix the YAML; only plain values are allowed") from exc


def load_grid(path_or_dict: str | os.PathLike | Mapping | Grid, *, validate: bool = True) -> Grid:
    """Read a grid from a YAML file (``yaml.safe_load``) or a dict, and check it.

    Refuses an unknown top-level key (with a did-you-mean), a grid entry that is not a non-empty
    list, a parameter both in ``base`` and ``grid``, and ``output_dir`` (the batch sets it). With
    ``validate`` (the default) every job's parameters are checked against the notebook's parameters
    cell by :func:`aisec_lab.notebooks.check_parameters` -- unknown names and wrong types fail here,
    before any job starts.
    """
    if isinstance(path_or_dict, Grid):
        grid = path_or_dict
        if validate:
            _validate_jobs(grid)
        return grid
    source = None
    if isinstance(path_or_dict, (str, os.PathLike)):
        if isinstance(path_or_dict, str) and not path_or_dict.strip():
            raise ConfigError("a grid path is required", got=path_or_dict, fix="pass the path of a grid YAML file")
        path = Path(path_or_dict).expanduser()
        raw = _read_yaml(path)
        source = str(path)
        where = f"grid file {path}"
    elif isinstance(path_or_dict, Mapping):
        raw = path_or_dict
        where = "grid"
    else:
        raise ConfigError("a grid must be a YAML file path or a mapping", got=type(path_or_dict).__name__,
                          fix=_FIX_GRID)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must hold a mapping at the top level", got=type(raw).__name__, fix=_FIX_GRID)

    for key in raw:
        if key not in GRID_KEYS:
            hint = _did_you_mean(str(key), GRID_KEYS)
            fix = (f"{hint}the top-level keys are {', '.join(GRID_KEYS)}; notebook parameters go under base: "
                   "(fixed) or grid: (a list of values each)")
            raise ConfigError(f"{where} has an unknown top-level key {key!r}", got=key, fix=fix)

    notebook = raw.get("notebook", DEFAULT_NOTEBOOK)
    if notebook is None:
        notebook = DEFAULT_NOTEBOOK
    if not isinstance(notebook, str) or not notebook.strip():
        raise ConfigError(f"{where}: notebook must be a notebook name or path", got=notebook,
                          fix=f"e.g. notebook: {DEFAULT_NOTEBOOK}")
    notebook = notebook.strip()
    if notebook.endswith(".ipynb") and "/" not in notebook and os.sep not in notebook:
        stem = notebook[: -len(".ipynb")]
        if source is None or not (Path(source).resolve().parent / notebook).is_file():
            notebook = stem  # "01_scorecard.ipynb" and "01_scorecard" are the same job

    name = raw.get("name")
    if name is not None and not isinstance(name, (str, int, float)):
        raise ConfigError(f"{where}: name must be a string", got=name, fix="e.g. name: digits-sweep")
    name = None if name is None else str(name)

    base = raw.get("base") or {}
    if not isinstance(base, Mapping):
        raise ConfigError(f"{where}: base must be a mapping of parameter -> value", got=_short_json(base)
                          if not isinstance(base, (set, bytes)) else type(base).__name__,
                          fix="e.g. base: {dataset: digits, n_samples: 200}")
    base = _canonical(base, "base")

    spec = raw.get("grid") or {}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: grid must be a mapping of parameter -> list of values",
                          got=type(spec).__name__, fix="e.g. grid: {model: [digits_cnn, digits_mlp]}")
    grid: dict[str, list] = {}
    for key, values in spec.items():
        if not isinstance(key, str):
            raise ConfigError(f"{where}: a grid parameter name must be a string", got=key, fix="quote it")
        if not isinstance(values, (list, tuple)):
            raise ConfigError(f"{where}: grid.{key} must be a list of values (one job per value)",
                              got=_short_json(_canonical(values, f"grid.{key}")),
                              fix=f"write {key}: [{_short_json(_canonical(values, key))}], or move {key} under base: "
                                  "for a fixed value")
        if not values:
            raise ConfigError(f"{where}: grid.{key} is an empty list, which makes zero jobs", got=[],
                              fix=f"give {key} at least one value, or remove it")
        grid[key] = _canonical(list(values), f"grid.{key}")

    both = sorted(set(base) & set(grid))
    if both:
        raise ConfigError(f"{where}: {both[0]!r} is both in base and in grid", got=both,
                          fix="keep it in one place: base for a fixed value, grid for a list of values")
    for key in _RESERVED:
        if key in base or key in grid:
            raise ConfigError(f"{where}: {key!r} is set by the batch (each job writes into OUT/<job id>/)",
                              got=key, fix=f"remove {key}; pass the output folder to run_batch / --out")
    n_jobs = math.prod(len(v) for v in grid.values())
    if n_jobs > MAX_JOBS:
        raise ConfigError(f"{where} expands to {n_jobs:,} jobs (more than {MAX_JOBS:,})",
                          got={k: len(v) for k, v in grid.items()},
                          fix="check that each grid entry lists values (a long list may belong under base)")
    out = Grid(notebook=notebook, base=base, grid=grid, name=name, source=source)
    if validate:
        _validate_jobs(out)
    return out


def _check_parameters_function() -> Callable | None:
    # TODO(lead): aisec_lab.notebooks is written in parallel; once it ships check_parameters this
    # always validates and the skip below goes away.
    if importlib.util.find_spec("aisec_lab.notebooks") is None:
        log.warning("aisec_lab.notebooks is not available: grid parameters are not validated before the run")
        return None
    from . import notebooks

    fn = getattr(notebooks, "check_parameters", None)
    if fn is None:
        log.warning("aisec_lab.notebooks has no check_parameters: grid parameters are not validated before the run")
    return fn


def _validate_jobs(grid: Grid) -> None:
    check = _check_parameters_function()
    if check is None:
        return
    jobs = grid.jobs()
    for i, job in enumerate(jobs):
        try:
            check(job.notebook_ref or job.notebook, dict(job.params))
        except AisecLabError as exc:
            what = f"grid job {i + 1} of {len(jobs)} ({job.label}): {exc.what}"
            try:
                new = type(exc)(what, got=exc.got, fix=exc.fix)
            except TypeError:  # a subclass with another constructor
                raise exc
            raise new from exc


# -- running one job (in a worker process) -----------------------------------------------------
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n")


def _read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


#: attributes a NotebookExecutionError carries about the failing cell (set by aisec_lab.notebooks.run_notebook)
_CELL_ATTRS = ("cell_index", "cell_source", "ename", "evalue", "traceback", "executed_notebook")


def _error_record(exc: BaseException, job: dict, started: float, where: str) -> dict:
    from .errors import NotebookExecutionError

    cell = None
    if isinstance(exc, NotebookExecutionError):
        cell = {a: _jsonable(getattr(exc, a)) for a in _CELL_ATTRS if getattr(exc, a, None) is not None}
        cell = cell or None
    message = str(exc)
    return {
        **job,
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": message,
        "cell": cell,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        "where": where,
        "failed_at": _now(),
        "duration_s": round(time.time() - started, 3),
    }


def _summary(record: dict) -> dict:
    """What the index shows of a scorecard record (Scorecard.to_dict())."""
    from .scorecard.render._common import headline_index, overall_status

    model = record.get("model") or {}
    data = record.get("data") or {}
    tm = record.get("threat_model") or {}
    results = record.get("results") or []
    hi = headline_index(record)
    head = results[hi] if hi is not None else {}
    return {
        "model": model.get("name"),
        "framework": model.get("framework"),
        "dataset": data.get("name"),
        "split": data.get("split"),
        "n": data.get("n"),
        "attacks": [a.get("label", a.get("name")) for a in tm.get("attacks") or []],
        "preset": tm.get("preset"),
        "norm": tm.get("norm"),
        "eps": [r.get("eps") for r in results],
        "eps_display": [r.get("eps_display") or f"{float(r.get('eps', 0)):g}" for r in results],
        "headline_eps": head.get("eps"),
        "headline_eps_display": head.get("eps_display") or (None if head.get("eps") is None
                                                           else f"{float(head['eps']):g}"),
        "clean_accuracy": (record.get("clean_accuracy") or {}).get("value"),
        "robust_accuracy": head.get("robust_accuracy"),
        "robust_accuracy_ci": head.get("robust_accuracy_ci"),
        "robust_complete": bool(head.get("complete", True)) if head else None,
        "status": overall_status(record),
        "complete": bool(record.get("complete", True)),
    }


def _report_file(folder: Path) -> str | None:
    for name in ("scorecard.html", "scorecard.md", "scorecard.json"):
        if (folder / name).is_file():
            return name
    return None


def _execute_job(runner: Callable, job: dict, notebook_ref: str, folder: str, token: str,
                 timeout_s: float | None) -> dict:
    """Run one job in this (worker) process; record the outcome in its folder; never raise for a job error.

    Returns ``{"job_id", "state": "finished" | "failed", "done" | "error": ...}``.
    """
    started = time.time()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (DONE_JSON, ERROR_JSON):
        if (out / stale).is_file():
            (out / stale).unlink()
    _write_json(out / JOB_JSON, job)
    _write_json(out / ATTEMPT_JSON, {"token": token, "pid": os.getpid(), "host": socket.gethostname(),
                                     "started_at": _now()})
    try:
        kwargs = {} if timeout_s is None else {"timeout_s": timeout_s}
        result = runner(notebook_ref, dict(job["params"]), str(out), **kwargs)
        from .scorecard import Scorecard

        if isinstance(result, Scorecard) and not (out / "scorecard.json").is_file():
            result.save(out)  # a custom runner that returned a scorecard without saving it
        summary = None
        if (out / "scorecard.json").is_file():
            summary = _summary(Scorecard.load(out).to_dict())  # the saved scorecard must validate
    except Exception as exc:  # noqa: BLE001 - a job's failure is recorded, not raised
        err = _error_record(exc, job, started, where=f"pid {os.getpid()} on {socket.gethostname()}")
        _write_json(out / ERROR_JSON, err)
        return {"job_id": job["job_id"], "state": "failed", "error": err}
    done = {**job, "finished_at": _now(), "duration_s": round(time.time() - started, 3),
            "scorecard": "scorecard.json" if summary is not None else None, "report": _report_file(out),
            "summary": summary}
    _write_json(out / DONE_JSON, done)  # LAST: its presence means the job is finished
    return {"job_id": job["job_id"], "state": "finished", "done": done}


# -- the batch ---------------------------------------------------------------------------------
@dataclass
class BatchResult:
    """What :func:`run_batch` did. ``finished``/``failed`` ran in this call; ``skipped`` were already
    finished by an earlier run."""

    jobs: list
    finished: list
    failed: list
    skipped: list
    index_path: Path
    index_md_path: Path
    out_dir: Path
    errors: dict = field(default_factory=dict)  # job_id -> "Type: message"

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        text = (f"{len(self.jobs)} jobs: {len(self.finished)} finished, {len(self.failed)} failed, "
                f"{len(self.skipped)} skipped (finished earlier). Index: {self.index_path}")
        for job in self.failed:
            text += f"\n  FAILED {job.job_id} ({job.label}): {self.errors.get(job.job_id, '')}"
        return text

    def __str__(self) -> str:
        return self.summary()


def _done_record(folder: Path) -> dict | None:
    """The job's done.json when it is finished and its scorecard is still there; else None."""
    done = _read_json(folder / DONE_JSON)
    if not isinstance(done, dict):
        return None
    if done.get("scorecard") and not (folder / str(done["scorecard"])).is_file():
        log.warning("%s: done.json names %s, which is missing; the job runs again", folder, done["scorecard"])
        return None
    return done


def _check_out_dir(out_dir) -> Path:
    if out_dir is None or (isinstance(out_dir, str) and not out_dir.strip()):
        raise ConfigError("out_dir must be a directory path", got=out_dir, fix="e.g. run_batch(grid, 'runs/grid')")
    if not isinstance(out_dir, (str, os.PathLike)):
        raise ConfigError("out_dir must be a directory path", got=type(out_dir).__name__,
                          fix="e.g. run_batch(grid, 'runs/grid')")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError("out_dir exists and is not a directory", got=str(out), fix="choose a directory path")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("out_dir cannot be created", got=f"{type(exc).__name__}: {exc}",
                          fix="choose a writable directory path") from exc
    return out.resolve()


class _Lock:
    """An exclusive lock on OUT (released by the OS when the process dies, SIGKILL included)."""

    def __init__(self, out: Path):
        self.path = out / LOCK_FILE
        self.fh = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # Windows: no lock
            return self
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            self.fh = None
            raise ConfigError("another batch is running into this folder", got=str(self.path.parent),
                              fix="wait for it to finish, or use another --out folder") from None
        return self

    def __exit__(self, *exc):
        if self.fh is not None:
            self.fh.close()  # closing releases the flock
            self.fh = None


def _default_runner() -> Callable:
    if importlib.util.find_spec("aisec_lab.notebooks") is None:
        raise ConfigError("the notebook runner aisec_lab.notebooks.run_notebook is not available",
                          got="no module aisec_lab.notebooks", fix="pass runner=... or update aisec-lab")
    from .notebooks import run_notebook

    return run_notebook


def _check_args(workers, timeout_s, runner, scheduler) -> Callable:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError("workers must be a whole number >= 1", got=workers, fix="e.g. workers=2")
    if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
                                  or not math.isfinite(timeout_s) or timeout_s <= 0):
        raise ConfigError("timeout_s must be a positive number of seconds or None", got=timeout_s,
                          fix="e.g. timeout_s=3600")
    if runner is None:
        runner = _default_runner()
    if not callable(runner):
        raise ConfigError("runner must be a function runner(notebook, params, out_dir, *, timeout_s=None)",
                          got=type(runner).__name__, fix="pass aisec_lab.notebooks.run_notebook or a similar function")
    if scheduler is None:
        try:  # a process pool sends the runner by reference
            pickle.loads(pickle.dumps(runner))
        except Exception as exc:  # noqa: BLE001 - PicklingError, AttributeError, TypeError ...
            raise ConfigError("runner must be a top-level (importable, picklable) function to run in worker "
                              "processes", got=f"{getattr(runner, '__qualname__', runner)!r}: "
                                               f"{type(exc).__name__}: {exc}",
                              fix="define it with def at the top level of a module (not a lambda or a nested "
                                  "function)") from exc
    return runner


class _Progress:
    """The parent's view of every job (rows of the index), updated as results arrive."""

    def __init__(self, grid: Grid, jobs: list[Job], out: Path):
        self.grid, self.jobs, self.out = grid, jobs, out
        self.state: dict[str, dict] = {}
        self.finished: list[Job] = []
        self.failed: list[Job] = []
        self.skipped: list[Job] = []
        self.errors: dict[str, str] = {}

    def record(self, job: Job, outcome: dict, *, skipped: bool = False) -> None:
        self.state[job.job_id] = outcome
        if skipped:
            self.skipped.append(job)
        elif outcome["state"] == "finished":
            self.finished.append(job)
            log.info("batch job %s finished (%s)", job.job_id, job.label)
        else:
            self.failed.append(job)
            err = outcome.get("error") or {}
            self.errors[job.job_id] = f"{err.get('type', 'Error')}: {_first_line(err.get('message', ''))}"
            log.warning("batch job %s failed (%s): %s", job.job_id, job.label, self.errors[job.job_id])

    def write_index(self) -> tuple[Path, Path]:
        return _write_index_files(self.out, self.grid, self.jobs, self.state)


def _first_line(text: str, limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _parent_failure(job: Job, folder: Path, exc: BaseException, started: float, where: str) -> dict:
    """Record a failure the worker could not record itself (crash, lost worker, pickling)."""
    done = _done_record(folder)
    if done is not None:  # it did finish; only the way back failed
        return {"job_id": job.job_id, "state": "finished", "done": done}
    err = _error_record(exc, job.to_dict(), started, where=where)
    try:
        _write_json(folder / ERROR_JSON, err)
    except OSError as write_exc:
        log.error("cannot write %s: %s", folder / ERROR_JSON, write_exc)
    return {"job_id": job.job_id, "state": "failed", "error": err}


def run_batch(grid: Grid | Mapping | str | os.PathLike, out_dir: str | os.PathLike, *, workers: int = 2,
              scheduler: Any = None, runner: Callable | None = None, timeout_s: float | None = None) -> BatchResult:
    """Run every job of ``grid`` into ``out_dir/<job_id>/``; skip jobs finished by an earlier run.

    ``workers`` processes run jobs side by side (a :class:`concurrent.futures.ProcessPoolExecutor`);
    with ``scheduler`` (a Dask scheduler address, ``distributed.Client`` or ``LocalCluster``) the jobs
    go to that cluster instead and ``workers`` is not used. ``runner(notebook, params, out_dir, *,
    timeout_s=None)`` runs one job (default :func:`aisec_lab.notebooks.run_notebook`, which starts its
    own kernel); it must be a top-level function. ``timeout_s`` is passed on to it. A failing job is
    recorded in its folder (``error.json``) and the others go on. Writes ``index.md`` and
    ``index.html`` after each job and at the end.
    """
    if not isinstance(grid, Grid):
        grid = load_grid(grid)
    out = _check_out_dir(out_dir)
    runner = _check_args(workers, timeout_s, runner, scheduler)
    jobs = grid.jobs()
    with _Lock(out):
        progress = _Progress(grid, jobs, out)
        _write_json(out / BATCH_JSON, {**grid.to_dict(), "source": grid.source,
                                       "jobs": [j.to_dict() for j in jobs]})
        todo = []
        for job in jobs:
            done = _done_record(job.folder(out))
            if done is not None:
                progress.record(job, {"job_id": job.job_id, "state": "finished", "done": done}, skipped=True)
            else:
                todo.append(job)
        if progress.skipped:
            log.info("batch: %d of %d jobs finished earlier and are skipped", len(progress.skipped), len(jobs))
        progress.write_index()
        if todo:
            if scheduler is None:
                _run_local(todo, out, runner, timeout_s, workers, progress)
            else:
                _run_dask(todo, out, runner, timeout_s, scheduler, progress)
        index_html, index_md = progress.write_index()
    return BatchResult(jobs=jobs, finished=progress.finished, failed=progress.failed, skipped=progress.skipped,
                       index_path=index_html, index_md_path=index_md, out_dir=out, errors=progress.errors)


def _run_local(todo: list[Job], out: Path, runner, timeout_s, workers: int, progress: _Progress) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # spawn: a fresh interpreter per worker (forking a process with threads -- a Jupyter kernel, a
    # loaded framework -- can deadlock)
    ctx = multiprocessing.get_context("spawn")
    queue = list(todo)
    suspects: set[str] = set()  # jobs in flight when a worker died alongside others: rerun alone
    stalls = 0
    while queue:
        isolate = [j for j in queue if j.job_id in suspects]
        round_jobs = isolate or queue
        n_workers = 1 if isolate else min(workers, len(queue))
        token = uuid.uuid4().hex
        started = time.time()
        broken = False
        pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx)
        try:
            futures = {pool.submit(_execute_job, runner, job.to_dict(), job.notebook_ref or job.notebook,
                                   str(job.folder(out)), token, timeout_s): job for job in round_jobs}
            for fut in as_completed(futures):
                job = futures[fut]
                try:
                    outcome = fut.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                except Exception as exc:  # noqa: BLE001 - e.g. an exception that cannot be pickled back
                    outcome = _parent_failure(job, job.folder(out), exc, started, where="batch process")
                progress.record(job, outcome)
                progress.write_index()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # interrupted: in-flight jobs end, queued ones never start
            progress.write_index()
            raise
        pool.shutdown(wait=True)
        queue = [j for j in queue if j.job_id not in progress.state]
        if not broken:
            continue
        # A worker process died and the pool with it. The jobs in flight wrote attempt.json with this
        # round's token; a job that was running alone is the one that died, and fails. Several in
        # flight: each reruns alone to find out. Jobs still queued run in a fresh pool.
        in_flight = [j for j in round_jobs if j.job_id not in progress.state
                     and (_read_json(j.folder(out) / ATTEMPT_JSON) or {}).get("token") == token]
        if not in_flight:
            stalls += 1
            if stalls < 2:
                continue
            in_flight = [j for j in round_jobs if j.job_id not in progress.state]  # no progress twice: give up
        stalls = 0
        for job in in_flight:
            if n_workers == 1 or len(in_flight) == 1 or job.job_id in suspects:
                exc = RuntimeError("the worker process running this job died (killed, out of memory, or crashed "
                                   "in native code) before it could record a result")
                progress.record(job, _parent_failure(job, job.folder(out), exc, started, where="batch process"))
            else:
                suspects.add(job.job_id)
        queue = [j for j in queue if j.job_id not in progress.state]
        progress.write_index()


def _dask_client(scheduler):
    from ._optional import require

    distributed = require("distributed", purpose="run a batch on a Dask cluster", extra="batch")
    if isinstance(scheduler, distributed.Client):
        return distributed, scheduler, False
    if isinstance(scheduler, str):
        if not scheduler.strip():
            raise ConfigError("scheduler must be a Dask scheduler address", got=scheduler,
                              fix="e.g. tcp://host:8786, or leave it out to use a local process pool")
        try:
            return distributed, distributed.Client(scheduler.strip(), timeout="30s"), True
        except OSError as exc:
            raise ConfigError("cannot connect to the Dask scheduler", got=f"{scheduler}: {exc}",
                              fix="check the address (tcp://host:8786) and that the scheduler is running") from exc
    if hasattr(scheduler, "scheduler_address"):  # a LocalCluster or another Cluster
        return distributed, distributed.Client(scheduler), True
    raise ConfigError("scheduler must be a Dask scheduler address, a distributed.Client or a cluster",
                      got=type(scheduler).__name__, fix="e.g. scheduler='tcp://host:8786'")


def _run_dask(todo: list[Job], out: Path, runner, timeout_s, scheduler, progress: _Progress) -> None:
    distributed, client, own = _dask_client(scheduler)
    token = uuid.uuid4().hex
    started = time.time()
    futures = []
    try:
        by_key = {}
        for job in todo:
            fut = client.submit(_execute_job, runner, job.to_dict(), job.notebook_ref or job.notebook,
                                str(job.folder(out)), token, timeout_s, key=f"aisec-lab-job-{job.job_id}-{token[:8]}",
                                pure=False)
            futures.append(fut)
            by_key[fut.key] = job
        for fut in distributed.as_completed(futures):
            job = by_key[fut.key]
            try:
                outcome = fut.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker, a lost connection, ...
                outcome = _parent_failure(job, job.folder(out), exc, started, where="Dask cluster")
            progress.record(job, outcome)
            progress.write_index()
    except BaseException:
        try:
            client.cancel(futures)
        finally:
            progress.write_index()
        raise
    finally:
        if own:
            client.close()


# -- the index ---------------------------------------------------------------------------------
def _rows(out: Path, jobs: list[Job], state: dict[str, dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """(ranked finished rows, failed rows, pending rows) as plain text values."""
    from .scorecard.render._common import ci_text, norm_text, pct

    ranked, failed, pending = [], [], []
    for job in jobs:
        st = state.get(job.job_id)
        base = {"job_id": job.job_id, "label": job.label, "folder": f"{job.job_id}/"}
        if st is None:
            pending.append(base)
            continue
        if st["state"] == "failed":
            err = st.get("error") or {}
            cell = err.get("cell") or {}
            cell_text = ""
            if cell.get("cell_index") is not None:
                cell_text = f"cell {cell['cell_index']}"
                if cell.get("cell_source"):
                    cell_text += f": {_first_line(str(cell['cell_source']), 80)}"
            failed.append({**base, "type": str(err.get("type", "Error")),
                           "message": _first_line(str(err.get("message", "")), 500), "cell": cell_text,
                           "error_link": f"{job.job_id}/{ERROR_JSON}"})
            continue
        done = st.get("done") or {}
        s = done.get("summary") or {}
        report = done.get("report")
        robust = s.get("robust_accuracy")
        clean = s.get("clean_accuracy")
        ranked.append({
            **base,
            "model": str(s.get("model") if s.get("model") is not None else job.params.get("model", "n/a")),
            "framework": str(s.get("framework") or ""),
            "attacks": ", ".join(str(a) for a in s.get("attacks") or []) or "n/a",
            "norm": norm_text(s.get("norm")) if s.get("norm") else "n/a",
            "eps": str(s.get("headline_eps_display") or "n/a"),
            "eps_all": ", ".join(str(e) for e in s.get("eps_display") or []),
            "clean": pct(clean),
            "robust": pct(robust) + ("" if s.get("robust_complete", True) else " (upper bound)"),
            "robust_ci": ci_text(s.get("robust_accuracy_ci")),
            "status": str(s.get("status") or "n/a"),
            "report_link": f"{job.job_id}/{report}" if report else None,
            "report_name": report or "",
            "duration": f"{float(done['duration_s']):.1f} s" if isinstance(done.get("duration_s"), (int, float))
            else "",
            "_key": (0 if isinstance(robust, (int, float)) else 1, -(robust or 0.0),
                     -(clean if isinstance(clean, (int, float)) else 0.0), job.job_id),
        })
    ranked.sort(key=lambda r: r["_key"])
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
        del r["_key"]
    return ranked, failed, pending


def _index_markdown(title: str, header: list[str], ranked, failed, pending) -> str:
    from .scorecard.render.markdown import md_escape as e

    lines = [f"# {e(title)}", ""]
    lines += [f"- {e(h)}" for h in header] + [""]
    lines += ["## Ranking", "",
              "Ranked by worst-case robust accuracy (over all attacks) at each run's headline ε (the middle ε "
              "of its sweep), highest first.", ""]
    if ranked:
        lines += ["| # | model | parameters | attacks | norm | ε | clean acc. | robust acc. | checks | scorecard |",
                  "|---:|---|---|---|---|---:|---:|---:|---|---|"]
        for r in ranked:
            link = f"[{e(r['report_name'])}]({r['report_link']})" if r["report_link"] else "none"
            eps = e(r["eps"]) + (f" (of {e(r['eps_all'])})" if r["eps_all"] and r["eps_all"] != r["eps"] else "")
            lines.append(f"| {r['rank']} | {e(r['model'])} | {e(r['label'])} | {e(r['attacks'])} | {e(r['norm'])} | "
                         f"{eps} | {e(r['clean'])} | {e(r['robust'])} | {e(r['status'].upper())} | {link} |")
    else:
        lines.append("No run has finished yet.")
    if failed:
        lines += ["", "## Failed", "", "| job | parameters | error | cell | details |", "|---|---|---|---|---|"]
        for r in failed:
            lines.append(f"| `{r['job_id']}` | {e(r['label'])} | {e(r['type'] + ': ' + r['message'])} | "
                         f"{e(r['cell']) or '–'} | [error.json]({r['error_link']}) |")
    if pending:
        lines += ["", "## Not finished", ""]
        lines += [f"- `{r['job_id']}`: {e(r['label'])}" for r in pending]
    return "\n".join(lines) + "\n"


_INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="aisec-lab">
<title>{{ title }}</title>
<style>
  body { margin: 0; padding: 24px 32px 48px; font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial,
         sans-serif; color: #111827; line-height: 1.45; font-size: 15px; }
  h1 { font-size: 1.5em; margin: 0 0 8px; word-break: break-word; }
  h2 { font-size: 1.2em; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #e5e7eb; }
  ul.meta { color: #6b7280; margin: 0; padding-left: 18px; }
  table { border-collapse: collapse; width: 100%; font-size: .92em; }
  th, td { border-bottom: 1px solid #e5e7eb; padding: 6px 8px; text-align: left; vertical-align: top;
           overflow-wrap: anywhere; }
  th { background: #f9fafb; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  .small { color: #6b7280; font-size: .85em; }
  .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: .8em; font-weight: 700;
           text-transform: uppercase; }
  .pass { background: #dcfce7; color: #15803d; } .warn { background: #fef3c7; color: #b45309; }
  .fail { background: #fee2e2; color: #b91c1c; }
  code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<ul class="meta">
{% for h in header %}
  <li>{{ h }}</li>
{% endfor %}
</ul>
<h2>Ranking</h2>
<p class="small">Ranked by worst-case robust accuracy (over all attacks) at each run's headline ε (the middle ε of
its sweep), highest first.</p>
{% if ranked %}
<table>
<thead><tr><th>#</th><th>model</th><th>parameters</th><th>attacks</th><th>norm</th><th>ε</th>
<th>clean acc.</th><th>robust acc.</th><th>checks</th><th>scorecard</th><th>time</th></tr></thead>
<tbody>
{% for r in ranked %}
<tr>
  <td class="num">{{ r.rank }}</td>
  <td>{{ r.model }}{% if r.framework %} <span class="small">{{ r.framework }}</span>{% endif %}</td>
  <td><code>{{ r.label }}</code></td>
  <td>{{ r.attacks }}</td>
  <td>{{ r.norm }}</td>
  <td class="num">{{ r.eps }}{% if r.eps_all and r.eps_all != r.eps %}
      <br><span class="small">of {{ r.eps_all }}</span>{% endif %}</td>
  <td class="num">{{ r.clean }}</td>
  <td class="num">{{ r.robust }}{% if r.robust_ci != "n/a" %}
      <br><span class="small">{{ r.robust_ci }}</span>{% endif %}</td>
  <td><span class="badge {{ r.status }}">{{ r.status }}</span></td>
  <td>{% if r.report_link %}<a href="{{ r.report_link }}">{{ r.report_name }}</a>{% else %}none{% endif %}
      <br><span class="small"><a href="{{ r.folder }}">{{ r.job_id }}</a></span></td>
  <td class="num">{{ r.duration }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>No run has finished yet.</p>
{% endif %}
{% if failed %}
<h2>Failed</h2>
<table>
<thead><tr><th>job</th><th>parameters</th><th>error</th><th>cell</th><th>details</th></tr></thead>
<tbody>
{% for r in failed %}
<tr>
  <td><code>{{ r.job_id }}</code></td>
  <td><code>{{ r.label }}</code></td>
  <td><strong>{{ r.type }}</strong>: {{ r.message }}</td>
  <td>{{ r.cell or "–" }}</td>
  <td><a href="{{ r.error_link }}">error.json</a></td>
</tr>
{% endfor %}
</tbody>
</table>
{% endif %}
{% if pending %}
<h2>Not finished</h2>
<ul>
{% for r in pending %}
  <li><code>{{ r.job_id }}</code>: <code>{{ r.label }}</code></li>
{% endfor %}
</ul>
{% endif %}
</body>
</html>
"""


def _index_html(title: str, header: list[str], ranked, failed, pending) -> str:
    from ._optional import require

    jinja2 = require("jinja2", purpose="write the batch index page", extra="core")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    return env.from_string(_INDEX_TEMPLATE).render(title=title, header=header, ranked=ranked, failed=failed,
                                                   pending=pending)


def _write_index_files(out: Path, grid: Grid, jobs: list[Job], state: dict[str, dict]) -> tuple[Path, Path]:
    ranked, failed, pending = _rows(out, jobs, state)
    title = f"Batch: {grid.name}" if grid.name else f"Batch: {grid.notebook}"
    header = [f"notebook: {grid.notebook}",
              f"{len(jobs)} jobs: {len(ranked)} finished, {len(failed)} failed, {len(pending)} not finished"]
    if grid.base:
        header.append("fixed parameters: " + ", ".join(f"{k}={_short_json(v)}" for k, v in grid.base.items()))
    if grid.grid:
        header.append("varied: " + ", ".join(f"{k} ({len(v)} values)" for k, v in grid.grid.items()))
    md_path = atomic_write_text(out / INDEX_MD, _index_markdown(title, header, ranked, failed, pending))
    html_path = atomic_write_text(out / INDEX_HTML, _index_html(title, header, ranked, failed, pending))
    return html_path, md_path


def write_index(out_dir: str | os.PathLike, grid: Grid | Mapping | str | os.PathLike | None = None) -> Path:
    """(Re)write ``index.md`` and ``index.html`` of a batch folder from what is on disk; return the HTML path.

    Without ``grid`` the folder's ``batch.json`` (written by :func:`run_batch`) says which jobs belong.
    """
    out = Path(out_dir).expanduser()
    if not out.is_dir():
        raise ConfigError("not a batch folder", got=str(out), fix="pass the --out folder of a batch run")
    if grid is None:
        manifest = _read_json(out / BATCH_JSON)
        if not isinstance(manifest, dict):
            raise ConfigError("the folder has no readable batch.json", got=str(out),
                              fix="pass the grid too: write_index(out_dir, grid)")
        grid = load_grid({k: manifest[k] for k in GRID_KEYS if k in manifest}, validate=False)
        if manifest.get("source"):
            grid = dataclasses.replace(grid, source=manifest["source"])
    elif not isinstance(grid, Grid):
        grid = load_grid(grid, validate=False)
    jobs = grid.jobs()
    state = {}
    for job in jobs:
        folder = job.folder(out)
        done = _done_record(folder)
        if done is not None:
            state[job.job_id] = {"job_id": job.job_id, "state": "finished", "done": done}
            continue
        err = _read_json(folder / ERROR_JSON)
        if isinstance(err, dict):
            state[job.job_id] = {"job_id": job.job_id, "state": "failed", "error": err}
    return _write_index_files(out.resolve(), grid, jobs, state)[0]
