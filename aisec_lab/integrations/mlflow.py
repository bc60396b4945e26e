"""Log a :class:`~aisec_lab.scorecard.Scorecard` to MLflow: metrics, threat-model parameters, check
statuses and the scorecard files, in the run a team already tracks its experiment in.

>>> import mlflow                                              # doctest: +SKIP
>>> with mlflow.start_run():                                   # doctest: +SKIP
...     train(model)
...     sc = al.evaluate(target, ds, attacks="standard", eps=[0.1])
...     al.integrations.mlflow.log(sc, notebook="runs/demo/01_scorecard.ipynb")

**Which run.** ``run=None`` logs into the *active* run (``mlflow.active_run()``); when no run is active
one is started for the scorecard (named after the model) and ended again before :func:`log` returns.
``run`` may also be a run id or an MLflow ``Run`` / ``ActiveRun``. The run lives wherever MLflow's
tracking URI points: ``MLFLOW_TRACKING_URI`` / ``mlflow.set_tracking_uri()`` when set, otherwise the
installed MLflow's default local store (a ``mlflow.db`` sqlite file in the working directory since
MLflow 3; no server is needed). Returns the run id.

**What is logged** (names are MLflow-safe: letters, digits, ``_ - . /`` and spaces):

* parameters, from the threat model and the record, under dotted names mirroring the scorecard JSON
  (``threat_model.norm``, ``threat_model.eps``, ``threat_model.attacks``, ``threat_model.preset``,
  ``threat_model.seed``, ``data.n``, ``model.name``, ``model.framework``, ``model.weights_sha256``, ...),
  so they do not collide with a training run's own ``seed`` or ``eps`` (MLflow refuses to change a
  parameter's value);
* metrics: ``clean_accuracy`` (and its ``_ci_lower`` / ``_ci_upper``), ``robust_accuracy_eps_<ε>``
  (with its interval) and ``attack_success_rate_eps_<ε>`` per evaluated ε (``<ε>`` as ``%g``: ``0.1``,
  ``0.0313725``), ``checks_failed`` / ``checks_warned``, and the numeric headline values of each
  scorecard section (``<section>.<key>``, e.g. ``privacy.auc``, ``backdoor.detected`` as 0/1;
  ``certified.certified_accuracy_r_<radius>`` per radius);
* tags: ``aisec_lab.status`` (the worst check status: pass / warn / fail), ``aisec_lab.trustworthy``,
  ``aisec_lab.complete``, one ``check.<id>`` = pass / warn / fail per validity check, and the schema and
  library versions;
* artifacts: the scorecard files under ``scorecard/`` (``artifacts_dir``'s files when given -- e.g. the
  folder the scorecard notebook wrote -- otherwise the scorecard is saved into a temporary folder first
  with :meth:`Scorecard.save`) and the executed notebook under ``notebook/`` when ``notebook`` is given.

Needs the ``mlflow`` extra: ``pip install 'aisec-lab[mlflow]'`` (a
:class:`~aisec_lab.errors.MissingDependencyError` says so when it is missing).
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import ConfigError

__all__ = ["log", "scorecard_params", "scorecard_metrics", "scorecard_tags", "metric_key"]

_log = logging.getLogger(__name__)

#: MLflow's parameter values may be longer in recent versions; this keeps every supported version happy
MAX_PARAM_LENGTH = 500
#: MLflow's log_batch limits (per request)
_BATCH = {"metrics": 1000, "params": 100, "tags": 100}
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")
#: section keys that are identifiers or settings, not results
_SKIP_SECTION_KEYS = {"seed"}


def metric_key(name: str) -> str:
    """``name`` with every character MLflow refuses in a key replaced by ``_``."""
    return _UNSAFE.sub("_", str(name))


def _eps_key(eps: float) -> str:
    return f"{float(eps):g}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = float(value)
        return value if math.isfinite(value) else None
    try:  # numpy scalars
        import numpy as np

        if isinstance(value, (np.integer, np.floating)):
            value = float(value)
            return value if math.isfinite(value) else None
    except ImportError:  # pragma: no cover - numpy is a core dependency
        pass
    return None


def _text(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _check_scorecard(sc: Any) -> None:
    needed = ("threat_model", "model", "data", "clean", "results", "checks", "save")
    if not all(hasattr(sc, a) for a in needed):
        raise ConfigError("log() takes a Scorecard", got=type(sc).__name__,
                          fix="pass the result of al.evaluate(...) or al.Scorecard.load(path)")


def scorecard_params(sc: Any) -> dict[str, str]:
    """The run parameters of ``sc``: its threat model, data and model identity (values as strings)."""
    tm, model, data = sc.threat_model, sc.model, sc.data
    params: dict[str, Any] = {
        "threat_model.norm": tm.get("norm"),
        "threat_model.eps": [float(e) for e in tm.get("eps", [r["eps"] for r in sc.results])],
        "threat_model.eps_display": tm.get("eps_display"),
        "threat_model.preset": tm.get("preset"),
        "threat_model.attacks": [a.get("label", a.get("name")) for a in tm.get("attacks", [])],
        "threat_model.seed": tm.get("seed", (sc.provenance or {}).get("seed")),
        "threat_model.targeted": tm.get("targeted"),
        "threat_model.exhaustive": tm.get("exhaustive"),
        "threat_model.knowledge": tm.get("knowledge"),
        "threat_model.batch_size": tm.get("batch_size"),
        "data.name": data.get("name"),
        "data.split": data.get("split"),
        "data.n": data.get("n"),
        "data.sha256": data.get("sha256"),
        "model.name": model.get("name"),
        "model.framework": model.get("framework"),
        "model.weights_sha256": model.get("weights_sha256"),
        "model.n_params": model.get("n_params"),
        "model.output_type": model.get("output_type"),
    }
    if getattr(sc, "defense", None):
        params["defense.chain"] = [step.get("name") for step in sc.defense.get("chain", [])]
        params["defense.adaptive"] = sc.defense.get("adaptive")
    out = {}
    for key, value in params.items():
        text = _text(value)
        if len(text) > MAX_PARAM_LENGTH:
            _log.warning("MLflow parameter %s is %d characters long; logged its first %d", key, len(text),
                         MAX_PARAM_LENGTH)
            text = text[:MAX_PARAM_LENGTH - 3] + "..."
        out[metric_key(key)] = text
    return out


def _sections(sc: Any) -> dict[str, dict]:
    sections = getattr(sc, "sections", None)
    out = dict(sections) if isinstance(sections, dict) else {}
    detection = getattr(sc, "detection", None)
    if isinstance(detection, dict) and "detection" not in out:
        out["detection"] = detection
    return out


def _section_metrics(name: str, section: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in section.items():
        if key in _SKIP_SECTION_KEYS:
            continue
        number = _number(value)
        if number is not None:
            out[metric_key(f"{name}.{key}")] = number
    radii, accuracy = section.get("radii"), section.get("certified_accuracy")
    if isinstance(radii, list) and isinstance(accuracy, list) and len(radii) == len(accuracy):
        for r, a in zip(radii, accuracy):
            number = _number(a)
            if number is not None and _number(r) is not None:
                out[metric_key(f"{name}.certified_accuracy_r_{_eps_key(r)}")] = number
    return out


def scorecard_metrics(sc: Any) -> dict[str, float]:
    """The run metrics of ``sc``: clean and robust accuracy per ε, check counts, section headlines."""
    clean = sc.clean
    metrics: dict[str, float] = {"clean_accuracy": float(clean["accuracy"])}
    ci = clean.get("ci")
    if ci:
        metrics["clean_accuracy_ci_lower"], metrics["clean_accuracy_ci_upper"] = float(ci[0]), float(ci[1])
    for r in sc.results:
        e = _eps_key(r["eps"])
        metrics[metric_key(f"robust_accuracy_eps_{e}")] = float(r["robust_accuracy"])
        if r.get("robust_accuracy_ci"):
            lo, hi = r["robust_accuracy_ci"]
            metrics[metric_key(f"robust_accuracy_eps_{e}_ci_lower")] = float(lo)
            metrics[metric_key(f"robust_accuracy_eps_{e}_ci_upper")] = float(hi)
        if _number(r.get("attack_success_rate")) is not None:
            metrics[metric_key(f"attack_success_rate_eps_{e}")] = float(r["attack_success_rate"])
    statuses = [c.status for c in sc.checks]
    metrics["checks_failed"] = float(statuses.count("fail"))
    metrics["checks_warned"] = float(statuses.count("warn"))
    for name, section in _sections(sc).items():
        if isinstance(section, dict):
            metrics.update(_section_metrics(name, section))
    return metrics


def scorecard_tags(sc: Any) -> dict[str, str]:
    """The run tags of ``sc``: overall status, one ``check.<id>`` per validity check, versions."""
    from .._version import __version__

    tags = {
        "aisec_lab.status": str(sc.status),
        "aisec_lab.trustworthy": str(bool(sc.trustworthy)).lower(),
        "aisec_lab.complete": str(bool(sc.complete)).lower(),
        "aisec_lab.schema_version": str(sc.schema_version),
        "aisec_lab.version": __version__,
    }
    for check in sc.checks:
        tags[metric_key(f"check.{check.id}")] = check.status
    return tags


def _resolve_run(mlflow: Any, client: Any, run: Any, sc: Any) -> tuple[str, bool]:
    """``(run_id, started_here)``."""
    from mlflow.exceptions import MlflowException

    if run is None:
        active = mlflow.active_run()
        if active is not None:
            return active.info.run_id, False
        name = metric_key(f"aisec-lab {sc.model.get('name', 'model')}")[:250]
        started = mlflow.start_run(run_name=name)
        _log.info("no active MLflow run: started run %s (%s) for the scorecard", started.info.run_id, name)
        return started.info.run_id, True
    run_id = getattr(getattr(run, "info", None), "run_id", run)
    if not isinstance(run_id, str) or not run_id:
        raise ConfigError("run must be None (the active run), a run id, or an MLflow Run", got=type(run).__name__,
                          fix="pass run=mlflow.active_run() or run='<run id>', or leave it out")
    try:
        client.get_run(run_id)
    except MlflowException as exc:
        raise ConfigError(f"no MLflow run {run_id!r} at the tracking URI {mlflow.get_tracking_uri()!r}",
                          got=str(exc).splitlines()[0][:200],
                          fix="pass the id of an existing run, or leave run out to use/start the active run") from None
    return run_id, False


def _existing(path: Any, what: str, *, folder: bool) -> Path | None:
    if path is None:
        return None
    p = Path(os.fspath(path)).expanduser()
    ok = p.is_dir() if folder else p.is_file()
    if not ok:
        raise ConfigError(f"{what} {'folder' if folder else 'file'} not found", got=str(p),
                          fix=f"pass the path of an existing {'folder' if folder else 'file'}, or leave {what} out")
    return p


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def log(sc: Any, *, run: Any = None, artifacts_dir: str | os.PathLike | None = None,
        notebook: str | os.PathLike | None = None, artifact_path: str = "scorecard") -> str:
    """Log ``sc`` to MLflow (see the module docstring); return the run id."""
    mlflow = require("mlflow", purpose="log a scorecard to MLflow", extra="mlflow")
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    _check_scorecard(sc)
    artifacts = _existing(artifacts_dir, "artifacts_dir", folder=True)
    notebook_path = _existing(notebook, "notebook", folder=False)
    params = scorecard_params(sc)
    metrics = scorecard_metrics(sc)
    tags = scorecard_tags(sc)

    client = MlflowClient()
    run_id, started = _resolve_run(mlflow, client, run, sc)
    try:
        now = int(time.time() * 1000)
        for batch in _chunks([Param(k, v) for k, v in params.items()], _BATCH["params"]):
            client.log_batch(run_id, params=batch)
        for batch in _chunks([Metric(k, v, now, 0) for k, v in metrics.items()], _BATCH["metrics"]):
            client.log_batch(run_id, metrics=batch)
        for batch in _chunks([RunTag(k, v) for k, v in tags.items()], _BATCH["tags"]):
            client.log_batch(run_id, tags=batch)
        if artifacts is not None:
            client.log_artifacts(run_id, str(artifacts), artifact_path=artifact_path)
        else:
            with tempfile.TemporaryDirectory(prefix="aisec-lab-mlflow-") as tmp:
                sc.save(tmp)
                client.log_artifacts(run_id, tmp, artifact_path=artifact_path)
        if notebook_path is not None:
            client.log_artifact(run_id, str(notebook_path), artifact_path="notebook")
    except BaseException:
        if started:
            mlflow.end_run(status="FAILED")
        raise
    if started:
        mlflow.end_run()
    _log.info("logged scorecard of %s to MLflow run %s (%d metrics, %d params, %d tags) at %s",
              sc.model.get("name"), run_id, len(metrics), len(params), len(tags), mlflow.get_tracking_uri())
    return run_id
