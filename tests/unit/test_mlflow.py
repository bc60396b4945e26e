"""aisec_lab.integrations.mlflow: a scorecard logged into a temporary local tracking store and read back.

Built on the small real scorecard in tests/data (no model runs). The default-store test runs in a
temporary working directory with no tracking URI set, so it uses whatever backend the installed MLflow
defaults to (a ``mlflow.db`` sqlite file since MLflow 3); another points ``MLFLOW_TRACKING_URI`` at a
temporary store. No server is started.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import aisec_lab as al
from aisec_lab.integrations import mlflow as almlflow

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURE = DATA / "scorecard_small.json"


@pytest.fixture(scope="module")
def base():
    return al.Scorecard.load(FIXTURE)


@pytest.fixture
def sc(base):
    return al.Scorecard.from_dict(copy.deepcopy(base.to_dict()), dict(base.samples))


@pytest.fixture
def mlflow_mod():
    return pytest.importorskip("mlflow")


@pytest.fixture
def isolated(monkeypatch, tmp_path, mlflow_mod):
    """A temporary working directory, no tracking URI from the environment, no active run left behind."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow_mod.set_tracking_uri(None)  # forget a URI set by an earlier test: the default applies
    yield tmp_path
    while mlflow_mod.active_run() is not None:
        mlflow_mod.end_run()
    mlflow_mod.set_tracking_uri(None)


def _artifact_paths(client, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for item in client.list_artifacts(run_id, path):
        out |= _artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return out


def test_names_and_values_are_mlflow_safe(sc):
    params, metrics, tags = almlflow.scorecard_params(sc), almlflow.scorecard_metrics(sc), almlflow.scorecard_tags(sc)
    assert params["threat_model.norm"] == "linf"
    assert params["threat_model.eps"] == "0.05,0.1,0.2"
    assert params["threat_model.attacks"] == "fgsm,pgd,square"
    assert params["model.framework"] == "pytorch" and params["data.n"] == "60"
    assert metrics["clean_accuracy"] == pytest.approx(sc.clean_accuracy)
    for eps in sc.eps:
        assert metrics[f"robust_accuracy_eps_{eps:g}"] == pytest.approx(sc.robust_accuracy(eps))
    assert tags["aisec_lab.status"] == sc.status
    assert {k for k in tags if k.startswith("check.")} == {f"check.{c.id}" for c in sc.checks}
    for key in [*params, *metrics, *tags]:
        assert almlflow.metric_key(key) == key
    assert almlflow.metric_key("robust accuracy @ 8/255 (pgd)") == "robust accuracy _ 8/255 _pgd_"


def test_section_headlines_become_metrics(sc):
    sc.sections = {"privacy": {"auc": 0.61, "auc_ci": [0.55, 0.67], "score": "loss", "seed": 0},
                   "backdoor": {"detected": True, "n_flagged": 135, "max_score": 2.9},
                   "certified": {"radii": [0.25, 0.5], "certified_accuracy": [0.8, 0.6], "sigma": 0.25}}
    metrics = almlflow.scorecard_metrics(sc)
    assert metrics["privacy.auc"] == 0.61 and "privacy.seed" not in metrics and "privacy.score" not in metrics
    assert metrics["backdoor.detected"] == 1.0 and metrics["backdoor.n_flagged"] == 135.0
    assert metrics["certified.certified_accuracy_r_0.25"] == 0.8
    assert metrics["certified.certified_accuracy_r_0.5"] == 0.6


# MLflow's sqlite store trips a deprecation warning of SQLAlchemy 2.1 (not ours to fix)
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_log_into_default_local_store_reads_back(sc, isolated, mlflow_mod, tmp_path):
    from mlflow.tracking import MlflowClient

    notebook = tmp_path / "executed.ipynb"
    notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    with mlflow_mod.start_run() as active:
        mlflow_mod.log_param("seed", 42)  # the user's own training parameter must not collide
        run_id = almlflow.log(sc, notebook=notebook)
        assert run_id == active.info.run_id
        assert mlflow_mod.active_run().info.run_id == run_id  # the user's run stays open
    assert "://" in mlflow_mod.get_tracking_uri() or Path(mlflow_mod.get_tracking_uri()).exists()
    assert list(isolated.iterdir())  # the store was written inside the temporary working directory

    client = MlflowClient()
    data = client.get_run(run_id).data
    assert data.metrics["clean_accuracy"] == pytest.approx(sc.clean_accuracy)
    for eps in sc.eps:
        assert data.metrics[f"robust_accuracy_eps_{eps:g}"] == pytest.approx(sc.robust_accuracy(eps))
        lo, hi = sc.robust_accuracy_ci(eps)
        assert data.metrics[f"robust_accuracy_eps_{eps:g}_ci_lower"] == pytest.approx(lo)
    assert data.params["seed"] == "42"
    assert data.params["threat_model.norm"] == "linf" and data.params["threat_model.seed"] == "0"
    assert data.params["model.weights_sha256"] == sc.model["weights_sha256"]
    assert data.tags["aisec_lab.status"] == "pass"
    assert data.tags["check.eps_monotonic"] == "pass"
    files = _artifact_paths(client, run_id)
    assert {"scorecard/scorecard.json", "scorecard/samples.npz", "notebook/executed.ipynb"} <= files
    assert any(f.endswith(".html") for f in files) and any(f.endswith(".md") for f in files)
    saved = json.loads(Path(client.download_artifacts(run_id, "scorecard/scorecard.json", str(tmp_path))).read_text())
    assert saved["clean_accuracy"]["value"] == sc.clean_accuracy


def test_tracking_uri_from_environment_and_a_started_run(sc, isolated, mlflow_mod, monkeypatch, tmp_path):
    from mlflow.tracking import MlflowClient

    store = tmp_path / "elsewhere" / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the fast file store; MLflow 3 keeps it opt-in
    (tmp_path / "saved").mkdir()
    sc.save(tmp_path / "saved")
    (tmp_path / "saved" / "extra.txt").write_text("from the notebook run")

    assert mlflow_mod.active_run() is None
    run_id = almlflow.log(sc, artifacts_dir=tmp_path / "saved")
    assert mlflow_mod.active_run() is None  # started for the scorecard and ended again
    assert store.is_dir() and not (tmp_path / "mlflow.db").exists()

    client = MlflowClient(tracking_uri=store.as_uri())
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name.startswith("aisec-lab ")
    assert run.data.metrics["checks_failed"] == 0.0
    assert {"scorecard/scorecard.json", "scorecard/extra.txt"} <= _artifact_paths(client, run_id)

    again = almlflow.log(sc, run=run_id, artifacts_dir=tmp_path / "saved")  # an explicit run id
    assert again == run_id


def test_bad_arguments(sc, isolated, tmp_path):
    with pytest.raises(al.ConfigError, match="takes a Scorecard"):
        almlflow.log({"clean_accuracy": 0.9})
    with pytest.raises(al.ConfigError, match="notebook file not found"):
        almlflow.log(sc, notebook=tmp_path / "missing.ipynb")
    with pytest.raises(al.ConfigError, match="artifacts_dir folder not found"):
        almlflow.log(sc, artifacts_dir=tmp_path / "missing")


def test_missing_mlflow_names_the_extra(sc, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # makes `import mlflow` raise ImportError
    with pytest.raises(al.MissingDependencyError, match=r"pip install 'aisec-lab\[mlflow\]'") as info:
        almlflow.log(sc)
    assert isinstance(info.value, ImportError)


def test_import_stays_lazy():
    code = textwrap.dedent("""
        import sys, aisec_lab, aisec_lab.integrations
        from aisec_lab.integrations import mlflow as m
        assert callable(m.log)
        print(','.join(sorted({n.split('.')[0] for n in sys.modules} & {'mlflow', 'torch', 'tensorflow', 'art'})))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
